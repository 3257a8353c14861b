//! Every match encoded as nft 1.0.6 encodes it: for each, the expressions
//! `nft --debug=netlink -c` printed for the rule nft makes of its text
//! (pasted from a run in a throwaway network namespace), against the
//! expressions the runtime sends (stand-ins put in place); and the inline
//! sets' messages against the attributes nft sent (`nft --debug=mnl`).

use super::super::inline::{KernelSet, test_set};
use super::super::nft_debug::expressions;
use crate::ir::*;

fn only(m: Match) -> Rule {
    Rule {
        matches: vec![m],
        statements: Vec::new(),
        action: Action::Accept,
        comment: None,
        cut_flows: false,
    }
}

/// The match lists as `listed` and sends nft's expressions (one per line
/// as nft printed them, the verdict left out).
#[track_caller]
fn encodes(m: Match, listed: &str, nft: &str) {
    let r = only(m);
    assert_eq!(r.to_string(), format!("{listed} accept"), "text");
    let mut want: String = nft
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    want.push_str("[ immediate reg 0 accept ]\n");
    assert_eq!(expressions(&r), want, "expressions of {listed}");
}

fn test(fields: Vec<Field>, against: Against, negate: bool) -> Match {
    Match::Test {
        fields,
        against,
        negate,
    }
}

fn one(fields: Vec<Field>, v: Value) -> Match {
    test(fields, Against::One(v), false)
}

fn set(elements: Vec<Vec<Value>>, intervals: bool) -> Against {
    Against::Set(InlineSet {
        elements: elements.into_iter().map(Element).collect(),
        intervals,
    })
}

fn addr(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn prefix(s: &str) -> Value {
    Value::Prefix(s.parse().unwrap())
}

const TCP_DPORT: Field = Field::Dport(Transport::Tcp);
const IP_SADDR: Field = Field::Saddr(Family::V4);
const IP_DADDR: Field = Field::Daddr(Family::V4);

#[test]
fn interfaces_protocols_and_families() {
    encodes(
        Match::Iifname {
            name: "eth*".into(),
            negate: false,
        },
        "iifname \"eth*\"",
        "[ meta load iifname => reg 1 ]
         [ cmp eq reg 1 0x00687465 ]",
    );
    encodes(
        Match::Oifname {
            name: "eth*".into(),
            negate: true,
        },
        "oifname != \"eth*\"",
        "[ meta load oifname => reg 1 ]
         [ cmp neq reg 1 0x00687465 ]",
    );
    encodes(
        Match::L4Proto {
            proto: L4Proto::from_number(47),
            negate: false,
        },
        "meta l4proto gre",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x0000002f ]",
    );
    encodes(
        Match::Nfproto {
            family: Family::V6,
            negate: true,
        },
        "meta nfproto != ipv6",
        "[ meta load nfproto => reg 1 ]
         [ cmp neq reg 1 0x0000000a ]",
    );
    encodes(
        Match::Port {
            dir: Dir::Destination,
            proto: Transport::Sctp,
            first: 22,
            last: 22,
            negate: false,
        },
        "sctp dport 22",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000084 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00001600 ]",
    );
}

#[test]
fn fields_against_one_value() {
    encodes(
        one(vec![TCP_DPORT], Value::Range(1024, 65535)),
        "tcp dport 1024-65535",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp gte reg 1 0x00000004 ]
         [ cmp lte reg 1 0x0000ffff ]",
    );
    encodes(
        one(
            vec![IP_SADDR],
            Value::AddrRange("10.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()),
        ),
        "ip saddr 10.0.0.1-10.0.0.5",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 4b @ network header + 12 => reg 1 ]
         [ cmp gte reg 1 0x0100000a ]
         [ cmp lte reg 1 0x0500000a ]",
    );
    encodes(
        one(vec![Field::Mark], Value::Number(5)),
        "meta mark 0x00000005",
        "[ meta load mark => reg 1 ]
         [ cmp eq reg 1 0x00000005 ]",
    );
    encodes(
        one(vec![Field::CtMark], Value::Number(0x10)),
        "ct mark 0x00000010",
        "[ ct load mark => reg 1 ]
         [ cmp eq reg 1 0x00000010 ]",
    );
    encodes(
        one(vec![Field::Dscp(Family::V4)], Value::Number(46)),
        "ip dscp ef",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 1b @ network header + 1 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x000000fc ) ^ 0x00000000 ]
         [ cmp eq reg 1 0x000000b8 ]",
    );
    encodes(
        one(vec![Field::Dscp(Family::V6)], Value::Number(46)),
        "ip6 dscp ef",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ payload load 2b @ network header + 0 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x0000c00f ) ^ 0x00000000 ]
         [ cmp eq reg 1 0x0000800b ]",
    );
    encodes(
        one(
            vec![Field::EtherSaddr],
            Value::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
        ),
        "ether saddr 52:54:00:12:34:56",
        "[ meta load iiftype => reg 1 ]
         [ cmp eq reg 1 0x00000001 ]
         [ payload load 6b @ link header + 6 => reg 1 ]
         [ cmp eq reg 1 0x12005452 0x00005634 ]",
    );
    encodes(
        one(vec![Field::IcmpType], Value::Number(8)),
        "icmp type echo-request",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000001 ]
         [ payload load 1b @ transport header + 0 => reg 1 ]
         [ cmp eq reg 1 0x00000008 ]",
    );
    encodes(
        test(
            vec![Field::Icmpv6Code],
            Against::One(Value::Number(1)),
            false,
        ),
        "icmpv6 code admin-prohibited",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x0000003a ]
         [ payload load 1b @ transport header + 1 => reg 1 ]
         [ cmp eq reg 1 0x00000001 ]",
    );
}

#[test]
fn fields_in_inline_sets() {
    encodes(
        test(
            vec![IP_DADDR, TCP_DPORT],
            set(vec![vec![addr("10.0.0.2"), Value::Number(80)]], false),
            false,
        ),
        "ip daddr . tcp dport { 10.0.0.2 . 80 }",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 4b @ network header + 16 => reg 1 ]
         [ payload load 2b @ transport header + 2 => reg 9 ]
         [ lookup reg 1 set __set%d ]",
    );
    encodes(
        test(
            vec![TCP_DPORT],
            set(
                vec![vec![Value::Number(22)], vec![Value::Number(80)]],
                false,
            ),
            true,
        ),
        "tcp dport != { 22, 80 }",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ lookup reg 1 set __set%d 0x1 ]",
    );
    encodes(
        test(
            vec![Field::Iifname, IP_SADDR],
            set(
                vec![vec![Value::Name("lan0".into()), addr("10.0.0.1")]],
                false,
            ),
            false,
        ),
        "iifname . ip saddr { \"lan0\" . 10.0.0.1 }",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load iifname => reg 1 ]
         [ payload load 4b @ network header + 12 => reg 2 ]
         [ lookup reg 1 set __set%d ]",
    );
    encodes(
        test(
            vec![Field::EtherSaddr, IP_SADDR],
            set(
                vec![vec![
                    Value::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                    addr("10.0.0.1"),
                ]],
                false,
            ),
            false,
        ),
        "ether saddr . ip saddr { 52:54:00:12:34:56 . 10.0.0.1 }",
        "[ meta load iiftype => reg 1 ]
         [ cmp eq reg 1 0x00000001 ]
         [ payload load 2b @ link header + 12 => reg 1 ]
         [ cmp eq reg 1 0x00000008 ]
         [ payload load 6b @ link header + 6 => reg 1 ]
         [ payload load 4b @ network header + 12 => reg 10 ]
         [ lookup reg 1 set __set%d ]",
    );
    encodes(
        test(
            vec![Field::Mark, Field::CtMark],
            set(vec![vec![Value::Number(1), Value::Number(2)]], false),
            false,
        ),
        "meta mark . ct mark { 0x00000001 . 0x00000002 }",
        "[ meta load mark => reg 1 ]
         [ ct load mark => reg 9 ]
         [ lookup reg 1 set __set%d ]",
    );
    encodes(
        Match::InSet {
            fields: vec![IP_DADDR, TCP_DPORT],
            set: "allowed".into(),
            negate: true,
        },
        "ip daddr . tcp dport != @allowed",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 4b @ network header + 16 => reg 1 ]
         [ payload load 2b @ transport header + 2 => reg 9 ]
         [ lookup reg 1 set allowed 0x1 ]",
    );
}

fn hex(bytes: &[u8]) -> String {
    crate::text::hex(bytes)
}

/// The sets nft sent for `ip daddr . tcp dport { 10.0.0.2 . 80 }`,
/// `ip saddr { 10.0.0.0/8, 1.1.1.1 }`, `ip daddr . tcp dport {
/// 10.0.0.0/8 . 1-1024, 1.2.3.4 . 5 }`, `ip6 dscp { 1, 2 }` and `meta
/// mark { 1, 2 }` (`nft --debug=mnl`).
#[test]
fn inline_sets_are_sent_as_nft_sends_them() {
    let elements = |s: &KernelSet| -> Vec<String> {
        s.elements
            .iter()
            .map(|e| {
                let end = e.key_end.as_ref().map(|k| format!(" - {}", hex(k)));
                format!("{}{} : {}", hex(&e.key), end.unwrap_or_default(), e.flags)
            })
            .collect()
    };
    let InlineSetOf(concat) = InlineSetOf::new(
        vec![IP_DADDR, TCP_DPORT],
        vec![vec![addr("10.0.0.2"), Value::Number(80)]],
        false,
    );
    assert_eq!(
        (concat.key_type, concat.key_len, concat.byteorder),
        (0x1cd, 8, 0)
    );
    assert_eq!(elements(&concat), ["0a00000200500000 : 0"]);

    let InlineSetOf(intervals) = InlineSetOf::new(
        vec![IP_SADDR],
        vec![vec![addr("1.1.1.1")], vec![prefix("10.0.0.0/8")]],
        true,
    );
    assert_eq!(
        (intervals.key_type, intervals.key_len, intervals.byteorder),
        (7, 4, 2)
    );
    assert_eq!(
        elements(&intervals),
        [
            "00000000 : 1",
            "01010101 : 0",
            "01010102 : 1",
            "0a000000 : 0",
            "0b000000 : 1"
        ]
    );

    let InlineSetOf(both) = InlineSetOf::new(
        vec![IP_DADDR, TCP_DPORT],
        vec![
            vec![prefix("10.0.0.0/8"), Value::Range(1, 1024)],
            vec![addr("1.2.3.4"), Value::Number(5)],
        ],
        true,
    );
    assert_eq!(both.field_lens, [4, 2]);
    assert_eq!(
        elements(&both),
        [
            "0a00000000010000 - 0affffff04000000 : 0",
            "0102030400050000 - 0102030400050000 : 0"
        ]
    );

    let InlineSetOf(dscp) = InlineSetOf::new(
        vec![Field::Dscp(Family::V6)],
        vec![vec![Value::Number(1)], vec![Value::Number(2)]],
        false,
    );
    assert_eq!((dscp.key_type, dscp.key_len, dscp.byteorder), (36, 2, 2));
    assert_eq!(elements(&dscp), ["0040 : 0", "0080 : 0"]);

    let InlineSetOf(marks) = InlineSetOf::new(
        vec![Field::Mark],
        vec![vec![Value::Number(1)], vec![Value::Number(2)]],
        false,
    );
    assert_eq!((marks.key_type, marks.key_len, marks.byteorder), (19, 4, 1));
    assert_eq!(
        elements(&marks),
        [
            hex(&1u32.to_ne_bytes()) + " : 0",
            hex(&2u32.to_ne_bytes()) + " : 0"
        ]
    );
}

/// The inline set a test of `fields` makes.
struct InlineSetOf(KernelSet);

impl InlineSetOf {
    fn new(fields: Vec<Field>, elements: Vec<Vec<Value>>, intervals: bool) -> InlineSetOf {
        let set = InlineSet {
            elements: elements.into_iter().map(Element).collect(),
            intervals,
        };
        InlineSetOf(test_set(&fields, &set, 1))
    }
}

/// The NEWSET nft sent for `ip daddr . tcp dport { 10.0.0.0/8 . 1-1024,
/// 1.2.3.4 . 5 }`, attribute for attribute, but for its userdata (nft
/// records the key's expressions there too; the runtime only its byte
/// order, which nft's listing reads).
#[test]
fn a_concatenation_of_intervals_describes_its_parts() {
    let InlineSetOf(set) = InlineSetOf::new(
        vec![IP_DADDR, TCP_DPORT],
        vec![
            vec![prefix("10.0.0.0/8"), Value::Range(1, 1024)],
            vec![addr("1.2.3.4"), Value::Number(5)],
        ],
        true,
    );
    let attrs = set.newset("t");
    let text: Vec<String> = crate::kernel::wire::attributes(&attrs)
        .map(|(ty, v)| format!("{ty}: {}", hex(v)))
        .collect();
    assert_eq!(
        text,
        [
            "1: 7400",
            "2: 5f5f736574256400",
            "3: 00000087",
            "4: 000001cd",
            "5: 00000008",
            "10: 00000001",
            // size 2; concat: field lengths 4 and 2
            "9: 08000100000000021c0002800c00018008000100000000040c0001800800010000000002",
            "13: 000400000000",
        ]
        .map(String::from)
    );
}

#[test]
fn masks_flags_and_status() {
    encodes(
        Match::Masked {
            field: Field::Daddr(Family::V6),
            mask: addr("::ffff:ffff:ffff:ffff"),
            value: addr("::1234"),
            negate: false,
        },
        "ip6 daddr & ::ffff:ffff:ffff:ffff == ::1234",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ payload load 16b @ network header + 24 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x00000000 0x00000000 0xffffffff 0xffffffff ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]
         [ cmp eq reg 1 0x00000000 0x00000000 0x00000000 0x34120000 ]",
    );
    encodes(
        Match::Masked {
            field: Field::Mark,
            mask: Value::Number(0xff),
            value: Value::Number(1),
            negate: true,
        },
        "meta mark & 0x000000ff != 0x00000001",
        "[ meta load mark => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x000000ff ) ^ 0x00000000 ]
         [ cmp neq reg 1 0x00000001 ]",
    );
    encodes(
        Match::TcpFlags {
            flags: 0x02,
            mask: 0x17,
            negate: false,
        },
        "tcp flags syn / fin,syn,rst,ack",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 1b @ transport header + 13 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x00000017 ) ^ 0x00000000 ]
         [ cmp eq reg 1 0x00000002 ]",
    );
    encodes(
        Match::CtStatus {
            bits: 0x20,
            negate: false,
        },
        "ct status dnat",
        "[ ct load status => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
         [ cmp neq reg 1 0x00000000 ]",
    );
    encodes(
        Match::CtStatus {
            bits: 0x30,
            negate: true,
        },
        "ct status ! snat,dnat",
        "[ ct load status => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x00000030 ) ^ 0x00000000 ]
         [ cmp eq reg 1 0x00000000 ]",
    );
}

#[test]
fn route_lookups() {
    encodes(
        Match::Fib {
            check: FibCheck::ReversePathMissing,
            negate: false,
        },
        "fib saddr . iif oif missing",
        "[ fib saddr . iif oif present => reg 1 ]
         [ cmp eq reg 1 0x00000000 ]",
    );
    encodes(
        Match::Fib {
            check: FibCheck::ReversePathMissingMark,
            negate: true,
        },
        "fib saddr . mark . iif oif != missing",
        "[ fib saddr . mark . iif oif present => reg 1 ]
         [ cmp neq reg 1 0x00000000 ]",
    );
    encodes(
        Match::Fib {
            check: FibCheck::DaddrLocal,
            negate: false,
        },
        "fib daddr type local",
        "[ fib daddr type => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]",
    );
}

#[test]
fn time() {
    encodes(
        Match::Hour(HourRange {
            utc: (7 * 3600, 21 * 3600),
            local: (7 * 3600, 21 * 3600),
            negate: true,
        }),
        "meta hour != \"07:00\"-\"21:00\"",
        "[ meta load hour => reg 1 ]
         [ byteorder reg 1 = hton(reg 1, 4, 4) ]
         [ range neq reg 1 0x70620000 0x50270100 ]",
    );
    encodes(
        Match::Hour(HourRange {
            utc: (36_030, 39_600),
            local: (36_030, 39_600),
            negate: false,
        }),
        "meta hour \"10:00:30\"-\"11:00\"",
        "[ meta load hour => reg 1 ]
         [ byteorder reg 1 = hton(reg 1, 4, 4) ]
         [ cmp gte reg 1 0xbe8c0000 ]
         [ cmp lte reg 1 0xb09a0000 ]",
    );
    encodes(
        Match::Day(vec![0]),
        "meta day \"Sunday\"",
        "[ meta load day => reg 1 ]
         [ cmp eq reg 1 0x00000000 ]",
    );
    encodes(
        Match::Day(vec![1, 5]),
        "meta day { \"Monday\", \"Friday\" }",
        "[ meta load day => reg 1 ]
         [ lookup reg 1 set __set%d ]",
    );
    let jan1 = 1_767_225_600;
    let dec31 = jan1 + 364 * 86_400 + 86_399;
    encodes(
        Match::Date(DateRange {
            utc_ns: (jan1 as u64 * 1_000_000_000, dec31 as u64 * 1_000_000_000),
            local: (jan1, dec31),
        }),
        "meta time \"2026-01-01 00:00:00\"-\"2026-12-31 23:59:59\"",
        "[ meta load time => reg 1 ]
         [ byteorder reg 1 = hton(reg 1, 8, 8) ]
         [ cmp gte reg 1 0x51728618 0x0000faed ]
         [ cmp lte reg 1 0x247cf618 0x003602e0 ]",
    );
}

#[test]
fn rate_limits() {
    let rate = |amount, bytes, per, burst| Rate {
        amount,
        bytes,
        per,
        burst,
    };
    encodes(
        Match::Limit {
            rate: rate(10, false, TimeUnit::Second, 5),
            over: true,
        },
        "limit rate over 10/second",
        "[ limit rate 10/second burst 5 type packets flags 0x1 ]",
    );
    encodes(
        Match::Limit {
            rate: rate(102_400, true, TimeUnit::Second, 1000),
            over: true,
        },
        "limit rate over 100 kbytes/second burst 1000 bytes",
        "[ limit rate 102400/second burst 1000 type bytes flags 0x1 ]",
    );
    encodes(
        Match::LimitNamed("l1".into()),
        "limit name \"l1\"",
        "[ objref type 4 name l1 ]",
    );
    encodes(
        Match::KeyedLimit {
            fields: vec![IP_SADDR],
            set: "d".into(),
            rate: rate(3, false, TimeUnit::Minute, 5),
            over: true,
        },
        "add @d { ip saddr limit rate over 3/minute }",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 4b @ network header + 12 => reg 1 ]
         [ dynset add reg_key 1 set d expr [ limit rate 3/minute burst 5 type packets flags 0x1 ] ]",
    );
}
