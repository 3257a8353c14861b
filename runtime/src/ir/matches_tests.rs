//! The text of each match, pinned to what `nft list ruleset` (nft 1.0.6)
//! prints for the rule nft itself makes of it.

use super::*;

fn addr(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn test(fields: Vec<Field>, against: Against, negate: bool) -> Match {
    Match::Test {
        fields,
        against,
        negate,
    }
}

fn set(elements: Vec<Vec<Value>>, intervals: bool) -> Against {
    Against::Set(InlineSet {
        elements: elements.into_iter().map(Element).collect(),
        intervals,
    })
}

fn text(m: Match) -> String {
    m.to_string()
}

#[test]
fn protocols_and_families_read_as_nft_lists_them() {
    let l4 = |n, negate| {
        text(Match::L4Proto {
            proto: L4Proto::from_number(n),
            negate,
        })
    };
    assert_eq!(l4(6, false), "meta l4proto tcp");
    assert_eq!(l4(58, false), "meta l4proto ipv6-icmp");
    assert_eq!(l4(47, false), "meta l4proto gre");
    assert_eq!(l4(50, true), "meta l4proto != esp");
    assert_eq!(l4(136, false), "meta l4proto udplite");
    assert_eq!(l4(253, false), "meta l4proto 253");
    assert_eq!(L4Proto::from_number(6), L4Proto::Tcp);
    assert_eq!(L4Proto::from_number(132), Transport::Sctp.l4());
    assert_eq!(
        text(Match::Nfproto {
            family: Family::V6,
            negate: true
        }),
        "meta nfproto != ipv6"
    );
    assert_eq!(
        text(Match::Iifname {
            name: "eth*".into(),
            negate: true
        }),
        "iifname != \"eth*\""
    );
}

#[test]
fn tests_read_as_nft_lists_them() {
    let dport = Field::Dport(Transport::Tcp);
    assert_eq!(
        text(test(
            vec![dport],
            Against::One(Value::Range(1024, 65535)),
            false
        )),
        "tcp dport 1024-65535"
    );
    assert_eq!(
        text(test(
            vec![Field::Saddr(Family::V4)],
            Against::One(Value::AddrRange(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.5".parse().unwrap()
            )),
            false
        )),
        "ip saddr 10.0.0.1-10.0.0.5"
    );
    assert_eq!(
        text(test(
            vec![dport],
            set(
                vec![vec![Value::Number(22)], vec![Value::Number(80)]],
                false
            ),
            true
        )),
        "tcp dport != { 22, 80 }"
    );
    assert_eq!(
        text(test(
            vec![Field::Daddr(Family::V4), dport],
            set(
                vec![
                    vec![addr("10.0.0.2"), Value::Number(80)],
                    vec![addr("10.0.0.3"), Value::Number(443)]
                ],
                false
            ),
            false
        )),
        "ip daddr . tcp dport { 10.0.0.2 . 80, 10.0.0.3 . 443 }"
    );
    assert_eq!(
        text(test(
            vec![Field::Icmpv6Type, Field::Icmpv6Code],
            set(vec![vec![Value::Number(1), Value::Number(0)]], false),
            false
        )),
        "icmpv6 type . icmpv6 code { destination-unreachable . no-route }"
    );
    assert_eq!(
        text(test(
            vec![Field::Mark],
            Against::One(Value::Number(5)),
            false
        )),
        "meta mark 0x00000005"
    );
    assert_eq!(
        text(test(
            vec![Field::Dscp(Family::V6)],
            set(vec![vec![Value::Number(5)], vec![Value::Number(8)]], false),
            false
        )),
        "ip6 dscp { 0x05, cs1 }"
    );
    assert_eq!(
        text(test(
            vec![Field::EtherSaddr],
            Against::One(Value::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
            false
        )),
        "ether saddr 52:54:00:12:34:56"
    );
    assert_eq!(
        text(Match::InSet {
            fields: vec![Field::Daddr(Family::V4), dport],
            set: "allowed".into(),
            negate: true
        }),
        "ip daddr . tcp dport != @allowed"
    );
}

/// As nft 1.0.6 lists `ip daddr . tcp dport { 10.0.0.3 . 80, 10.0.0.2 .
/// 443, 10.0.0.2 . 22 }` and the others here.
#[test]
fn inline_sets_list_in_nfts_order() {
    let key = |types: &[KeyType]| Key(types.to_vec());
    let order = |k: &Key, es: Vec<Vec<Value>>| -> Vec<String> {
        listing_order(k, es.into_iter().map(Element).collect())
            .iter()
            .map(|e| e.text(k))
            .collect()
    };
    let k = key(&[KeyType::Ipv4Addr, KeyType::InetService]);
    assert_eq!(
        order(
            &k,
            vec![
                vec![addr("10.0.0.3"), Value::Number(80)],
                vec![addr("10.0.0.2"), Value::Number(443)],
                vec![addr("10.0.0.2"), Value::Number(22)],
            ]
        ),
        ["10.0.0.2 . 22", "10.0.0.3 . 80", "10.0.0.2 . 443"]
    );
    let name = |s: &str| Value::Name(s.into());
    assert_eq!(
        order(
            &key(&[KeyType::Ifname]),
            vec![vec![name("b")], vec![name("ab")], vec![name("a")]]
        ),
        ["\"a\"", "\"b\"", "\"ab\""]
    );
    assert_eq!(
        order(
            &key(&[KeyType::Mark]),
            vec![
                vec![Value::Number(256)],
                vec![Value::Number(1)],
                vec![Value::Number(2)]
            ]
        ),
        ["0x00000001", "0x00000002", "0x00000100"]
    );
    assert_eq!(
        order(
            &key(&[KeyType::IcmpType, KeyType::IcmpCode]),
            vec![
                vec![Value::Number(3), Value::Number(1)],
                vec![Value::Number(3), Value::Number(0)],
                vec![Value::Number(0), Value::Number(0)],
                vec![Value::Number(11), Value::Number(0)],
            ]
        ),
        [
            "echo-reply . net-unreachable",
            "destination-unreachable . net-unreachable",
            "time-exceeded . net-unreachable",
            "destination-unreachable . host-unreachable"
        ]
    );
    assert_eq!(
        order(
            &key(&[KeyType::Ipv4Addr]),
            vec![
                vec![addr("10.0.0.3")],
                vec![addr("10.0.0.1")],
                vec![addr("9.0.0.1")]
            ]
        ),
        ["9.0.0.1", "10.0.0.1", "10.0.0.3"]
    );
}

#[test]
fn masks_read_as_nft_lists_them() {
    let masked = |field, mask, value, negate| {
        text(Match::Masked {
            field,
            mask,
            value,
            negate,
        })
    };
    let n = Value::Number;
    assert_eq!(
        masked(
            Field::Daddr(Family::V6),
            addr("::ffff:ffff:ffff:ffff"),
            addr("::1234"),
            false
        ),
        "ip6 daddr & ::ffff:ffff:ffff:ffff == ::1234"
    );
    assert_eq!(
        masked(Field::Mark, n(0xff), n(1), false),
        "meta mark & 0x000000ff == 0x00000001"
    );
    assert_eq!(
        masked(Field::Mark, n(0xff), n(1), true),
        "meta mark & 0x000000ff != 0x00000001"
    );
    assert_eq!(
        masked(Field::Mark, n(0xffff_0000), n(0x1_0000), false),
        "meta mark 0x00010000/16"
    );
    assert_eq!(
        masked(Field::CtMark, n(0xffff_0000), n(0x1_0000), true),
        "ct mark != 0x00010000/16"
    );
    assert_eq!(
        masked(Field::Mark, n(0x8000_0000), n(0x8000_0000), false),
        "meta mark 0x80000000/1"
    );
    assert_eq!(
        masked(Field::Mark, n(1), n(1), false),
        "meta mark & 0x00000001 == 0x00000001"
    );
    assert_eq!(
        masked(Field::Mark, n(u32::MAX), n(1), false),
        "meta mark 0x00000001"
    );
    assert_eq!(
        masked(
            Field::Saddr(Family::V4),
            addr("255.255.0.0"),
            addr("10.1.0.0"),
            false
        ),
        "ip saddr 10.1.0.0/16"
    );
    assert_eq!(
        masked(
            Field::Saddr(Family::V4),
            addr("255.255.255.255"),
            addr("10.0.0.1"),
            false
        ),
        "ip saddr 10.0.0.1"
    );
    assert_eq!(
        masked(
            Field::Saddr(Family::V4),
            addr("0.0.255.0"),
            addr("0.0.1.0"),
            true
        ),
        "ip saddr & 0.0.255.0 != 0.0.1.0"
    );
    assert_eq!(
        masked(
            Field::Saddr(Family::V6),
            addr("ffff:ffff::"),
            addr("fd00::"),
            true
        ),
        "ip6 saddr != fd00::/32"
    );
    let dport = Field::Dport(Transport::Tcp);
    assert_eq!(
        masked(dport, n(0xff00), n(0x100), false),
        "tcp dport & 65280 == 256"
    );
    assert_eq!(
        masked(Field::Sport(Transport::Udp), n(0xfffc), n(0x400), true),
        "udp sport & 65532 != 1024"
    );
    assert_eq!(masked(dport, n(0xffff), n(0x100), false), "tcp dport 256");
}

/// Every shape nft 1.0.6 lists a `tcp flags & mask == flags` test in.
#[test]
fn tcp_flags_read_as_nft_lists_each_shape() {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    let flags = |flags, mask, negate| {
        text(Match::TcpFlags {
            flags,
            mask,
            negate,
        })
    };
    let fsra = FIN | SYN | RST | ACK;
    assert_eq!(flags(SYN, fsra, false), "tcp flags syn / fin,syn,rst,ack");
    assert_eq!(flags(SYN, fsra, true), "tcp flags != syn / fin,syn,rst,ack");
    assert_eq!(flags(SYN, SYN, false), "tcp flags & syn == syn");
    assert_eq!(flags(SYN, SYN, true), "tcp flags & syn != syn");
    assert_eq!(
        flags(SYN | ACK, SYN | ACK, false),
        "tcp flags syn,ack / syn,ack"
    );
    assert_eq!(
        flags(SYN | ACK, SYN | ACK, true),
        "tcp flags != syn,ack / syn,ack"
    );
    assert_eq!(flags(0, SYN | ACK, false), "tcp flags ! syn,ack");
    assert_eq!(flags(0, SYN | ACK, true), "tcp flags syn,ack");
    assert_eq!(flags(0, SYN, false), "tcp flags ! syn");
    assert_eq!(flags(ACK, SYN | ACK, false), "tcp flags ack / syn,ack");
    assert_eq!(flags(SYN, SYN | ACK, true), "tcp flags != syn / syn,ack");
    assert_eq!(flags(SYN, 0xff, false), "tcp flags == syn");
    assert_eq!(flags(SYN, 0xff, true), "tcp flags != syn");
    assert_eq!(flags(0, 0xff, false), "tcp flags == 0x0");
    assert_eq!(flags(SYN | ACK, 0xff, false), "tcp flags == 0x12");
    assert_eq!(flags(0xff, 0xff, true), "tcp flags != 0xff");
}

#[test]
fn status_route_and_time_read_as_nft_lists_them() {
    assert_eq!(
        text(Match::CtStatus {
            bits: 0x20,
            negate: false
        }),
        "ct status dnat"
    );
    assert_eq!(
        text(Match::CtStatus {
            bits: 0x30,
            negate: true
        }),
        "ct status ! snat,dnat"
    );
    let fib = |check, negate| text(Match::Fib { check, negate });
    assert_eq!(
        fib(FibCheck::ReversePathMissing, false),
        "fib saddr . iif oif missing"
    );
    assert_eq!(
        fib(FibCheck::ReversePathMissing, true),
        "fib saddr . iif oif != missing"
    );
    assert_eq!(
        fib(FibCheck::ReversePathMissingMark, false),
        "fib saddr . mark . iif oif missing"
    );
    assert_eq!(fib(FibCheck::DaddrLocal, false), "fib daddr type local");
    assert_eq!(fib(FibCheck::DaddrLocal, true), "fib daddr type != local");
    assert_eq!(
        text(Match::Hour(HourRange {
            utc: (25_200, 75_600),
            local: (25_200, 75_600),
            negate: true
        })),
        "meta hour != \"07:00\"-\"21:00\""
    );
    assert_eq!(
        text(Match::Hour(HourRange {
            utc: (36_030, 39_600),
            local: (36_030, 39_600),
            negate: false
        })),
        "meta hour \"10:00:30\"-\"11:00\""
    );
    assert_eq!(text(Match::Day(vec![0])), "meta day \"Sunday\"");
    assert_eq!(
        text(Match::Day(vec![1, 5])),
        "meta day { \"Monday\", \"Friday\" }"
    );
    let jan1 = 1_767_225_600;
    assert_eq!(
        text(Match::Date(DateRange {
            utc_ns: (0, 0),
            local: (jan1, jan1 + 364 * 86_400 + 86_399)
        })),
        "meta time \"2026-01-01 00:00:00\"-\"2026-12-31 23:59:59\""
    );
}

#[test]
fn reads_name_the_checks_before_each_load() {
    let icmp = test(vec![Field::IcmpType], Against::One(Value::Number(8)), false);
    assert_eq!(
        icmp.reads(),
        [Read {
            family: Some(Family::V4),
            l4: Some(L4Proto::Icmp),
            header: Some(Header::Transport)
        }]
    );
    assert_eq!(icmp.family(), Some(Family::V4));
    let l4 = Match::L4Proto {
        proto: L4Proto::Icmpv6,
        negate: false,
    };
    assert_eq!(l4.family(), Some(Family::V6));
    let mark = test(vec![Field::Mark], Against::One(Value::Number(1)), false);
    assert_eq!(mark.family(), None);
    assert_eq!(
        mark.reads(),
        [Read {
            family: None,
            l4: None,
            header: None
        }]
    );
}
