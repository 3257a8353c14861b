//! The 0.2 matches against the real kernel (run as root).
//!
//! Each construct is applied, listed by nft exactly as the runtime's text,
//! read back with nothing to send, and repaired after a hand edit (the
//! round trip of `common`). Where a match decides over packets, real
//! packets cross it: the test thread's own fresh namespace is the
//! firewall, between a client and a server namespace it makes (named
//! `wwm-<pid>-<n>-<role>`) and always removes, also when a test fails.
//!
//! A limit object is the objects' part of the runtime: until it makes
//! them, the test that names one makes it by hand with nft in the
//! runtime's table before the runtime fills it, and leaves it out of the
//! comparison. A keyed limit needs a dynamic set, the sets' part: it is
//! not applied here until the runtime makes those.

mod common;

use common::*;
use wasmwall::ir::*;

fn accept(matches: Vec<Match>) -> Rule {
    rule(matches, Action::Accept)
}

fn test(fields: Vec<Field>, against: Against, negate: bool) -> Match {
    Match::Test {
        fields,
        against,
        negate,
    }
}

fn one(field: Field, v: Value) -> Match {
    test(vec![field], Against::One(v), false)
}

fn set(fields: Vec<Field>, elements: Vec<Vec<Value>>, intervals: bool, negate: bool) -> Match {
    let key = key_of(&fields);
    let elements: Vec<Element> = elements.into_iter().map(Element).collect();
    // As validation leaves them: one-part intervals merged, the rest in
    // nft's order.
    let elements = if intervals && !key.is_concatenation() {
        let values: Vec<Value> = elements.into_iter().map(|e| e.0[0].clone()).collect();
        merge_intervals(key.0[0], &values)
            .into_iter()
            .map(|v| Element(vec![v]))
            .collect()
    } else {
        listing_order(&key, elements)
    };
    test(
        fields,
        Against::Set(InlineSet {
            elements,
            intervals,
        }),
        negate,
    )
}

fn n(v: u32) -> Value {
    Value::Number(v)
}

fn a(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn p(s: &str) -> Value {
    Value::Prefix(s.parse().unwrap())
}

fn l4(number: u8) -> Match {
    Match::L4Proto {
        proto: L4Proto::from_number(number),
        negate: false,
    }
}

const TCP_DPORT: Field = Field::Dport(Transport::Tcp);
const IP_SADDR: Field = Field::Saddr(Family::V4);
const IP_DADDR: Field = Field::Daddr(Family::V4);
const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

fn filter(hook: Hook) -> Option<BaseChain> {
    base(hook, ChainType::Filter, 0, ChainPolicy::Accept)
}

fn rate(amount: u64, bytes: bool, per: TimeUnit, burst: u32) -> Rate {
    Rate {
        amount,
        bytes,
        per,
        burst,
    }
}

/// One policy with every match the runtime encodes, each in a chain of a
/// hook it may run on.
fn every_match() -> Vec<PolicyRules> {
    let mut input: Vec<Rule> = [1, 2, 6, 17, 47, 50, 51, 58, 132, 136, 253]
        .into_iter()
        .map(|p| accept(vec![l4(p)]))
        .collect();
    input.extend([
        accept(vec![Match::Iifname {
            name: "eth*".into(),
            negate: false,
        }]),
        accept(vec![Match::Iifname {
            name: "br-*".into(),
            negate: true,
        }]),
        accept(vec![Match::Nfproto {
            family: Family::V6,
            negate: false,
        }]),
        accept(vec![Match::Nfproto {
            family: Family::V4,
            negate: true,
        }]),
        accept(vec![
            Match::Nfproto {
                family: Family::V4,
                negate: false,
            },
            one(TCP_DPORT, n(22)),
        ]),
        accept(vec![one(TCP_DPORT, Value::Range(1024, 65535))]),
        accept(vec![one(Field::Sport(Transport::Sctp), n(5060))]),
        accept(vec![one(
            IP_SADDR,
            Value::AddrRange("10.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()),
        )]),
        accept(vec![test(
            vec![Field::Saddr(Family::V6)],
            Against::One(p("fd00::/8")),
            true,
        )]),
        accept(vec![one(Field::Mark, n(5))]),
        accept(vec![one(Field::CtMark, n(0x10))]),
        accept(vec![one(Field::Dscp(Family::V4), n(46))]),
        accept(vec![one(Field::Dscp(Family::V6), n(5))]),
        accept(vec![one(Field::Dscp(Family::V4), Value::Range(0x10, 0x18))]),
        accept(vec![one(Field::EtherSaddr, Value::Mac(MAC))]),
        accept(vec![one(Field::IcmpType, n(8))]),
        accept(vec![one(Field::IcmpCode, n(7))]),
        accept(vec![one(Field::Icmpv6Type, n(200))]),
        accept(vec![one(Field::Icmpv6Code, n(1))]),
        accept(vec![one(Field::IcmpType, Value::Range(0, 3))]),
        // Inline sets.
        accept(vec![set(
            vec![TCP_DPORT],
            vec![vec![n(80)], vec![n(22)]],
            false,
            true,
        )]),
        accept(vec![set(
            vec![IP_SADDR],
            vec![
                vec![p("10.0.0.0/9")],
                vec![a("192.168.1.1")],
                vec![p("10.128.0.0/9")],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![Field::Saddr(Family::V6)],
            vec![vec![a("::2")], vec![a("::1")], vec![p("fe80::/10")]],
            true,
            false,
        )]),
        accept(vec![set(
            vec![TCP_DPORT],
            vec![
                vec![Value::Range(1, 10)],
                vec![n(20)],
                vec![Value::Range(5, 15)],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![a("10.0.0.3"), n(80)],
                vec![a("10.0.0.2"), n(443)],
                vec![a("10.0.0.2"), n(22)],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![p("10.0.0.0/8"), Value::Range(1, 1024)],
                vec![p("9.0.0.0/8"), n(2000)],
                vec![a("1.2.3.4"), n(5)],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![Field::Icmpv6Type, Field::Icmpv6Code],
            vec![vec![n(128), n(0)], vec![n(1), n(0)], vec![n(1), n(4)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::IcmpType],
            vec![vec![n(8)], vec![n(0)], vec![n(3)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Iifname],
            vec![
                vec![Value::Name("b".into())],
                vec![Value::Name("ab".into())],
                vec![Value::Name("a".into())],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Mark],
            vec![vec![n(256)], vec![n(1)], vec![n(2)]],
            false,
            true,
        )]),
        accept(vec![set(
            vec![Field::Dscp(Family::V6)],
            vec![vec![n(8)], vec![n(5)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::EtherSaddr],
            vec![vec![Value::Mac(MAC)], vec![Value::Mac([2, 0, 0, 0, 0, 3])]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::EtherSaddr, IP_SADDR],
            vec![vec![Value::Mac(MAC), a("10.0.0.1")]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::L4proto],
            vec![vec![n(17)], vec![n(6)], vec![n(1)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Iifname, IP_SADDR],
            vec![
                vec![Value::Name("b".into()), a("1.1.1.1")],
                vec![Value::Name("ab".into()), a("1.1.1.1")],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Mark, Field::CtMark],
            vec![vec![n(1), n(2)], vec![n(3), n(1)]],
            false,
            false,
        )]),
        // Named sets.
        accept(vec![Match::InSet {
            fields: vec![IP_SADDR],
            set: "friends".into(),
            negate: true,
        }]),
        accept(vec![Match::InSet {
            fields: vec![TCP_DPORT],
            set: "services".into(),
            negate: false,
        }]),
        // Masks.
        accept(vec![Match::Masked {
            field: Field::Daddr(Family::V6),
            mask: a("::ffff:ffff:ffff:ffff"),
            value: a("::1234"),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: Field::Mark,
            mask: n(0xff),
            value: n(1),
            negate: true,
        }]),
        accept(vec![Match::Masked {
            field: Field::CtMark,
            mask: n(0xffff_0000),
            value: n(0x1_0000),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: IP_SADDR,
            mask: a("255.255.0.0"),
            value: a("10.1.0.0"),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: TCP_DPORT,
            mask: n(0xff00),
            value: n(0x100),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: TCP_DPORT,
            mask: n(0xffff),
            value: n(0x100),
            negate: true,
        }]),
    ]);
    // TCP flags, every shape nft lists.
    for (flags, mask, negate) in [
        (0x02, 0x17, false),
        (0x02, 0x17, true),
        (0x02, 0x02, false),
        (0x12, 0x12, true),
        (0x00, 0x12, false),
        (0x00, 0x12, true),
        (0x10, 0x12, false),
        (0x02, 0xff, false),
        (0x12, 0xff, true),
        (0x00, 0xff, false),
    ] {
        input.push(accept(vec![Match::TcpFlags {
            flags,
            mask,
            negate,
        }]));
    }
    input.extend([
        accept(vec![Match::CtStatus {
            bits: 0x20,
            negate: false,
        }]),
        accept(vec![Match::CtStatus {
            bits: 0x231,
            negate: true,
        }]),
        accept(vec![Match::Day(vec![0])]),
        accept(vec![Match::Day(vec![1, 5, 6])]),
        accept(vec![Match::Limit {
            rate: rate(10, false, TimeUnit::Second, 5),
            over: false,
        }]),
        rule(
            vec![Match::Limit {
                rate: rate(3, false, TimeUnit::Minute, 20),
                over: true,
            }],
            Action::Drop,
        ),
        rule(
            vec![Match::Limit {
                rate: rate(102_400, true, TimeUnit::Second, 1000),
                over: true,
            }],
            Action::Drop,
        ),
        accept(vec![Match::Limit {
            rate: rate(1_048_576, true, TimeUnit::Second, 0),
            over: false,
        }]),
    ]);
    let forward = vec![
        accept(vec![Match::Oifname {
            name: "wg*".into(),
            negate: false,
        }]),
        accept(vec![Match::Fib {
            check: FibCheck::ReversePathMissing,
            negate: false,
        }]),
    ];
    let prerouting = vec![
        rule(
            vec![Match::Fib {
                check: FibCheck::ReversePathMissing,
                negate: false,
            }],
            Action::Drop,
        ),
        accept(vec![Match::Fib {
            check: FibCheck::ReversePathMissingMark,
            negate: true,
        }]),
        accept(vec![Match::Fib {
            check: FibCheck::DaddrLocal,
            negate: false,
        }]),
    ];
    let output = vec![accept(vec![Match::Fib {
        check: FibCheck::DaddrLocal,
        negate: true,
    }])];
    policy(
        "pm",
        vec![
            chain("input", filter(Hook::Input), input),
            chain("forward", filter(Hook::Forward), forward),
            chain("prerouting", filter(Hook::Prerouting), prerouting),
            chain("output", filter(Hook::Output), output),
        ],
        vec![
            NamedSet {
                name: "friends".into(),
                elements: SetElements::ipv4(["192.168.0.2".parse().unwrap()]),
            },
            NamedSet {
                name: "services".into(),
                elements: SetElements::ports([53, 123]),
            },
        ],
    )
}

#[test]
fn every_match_lists_as_its_text_reads_back_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, &every_match());
}

/// Time rules list in nft's local zone (its process's, which is this
/// test's): these are built in UTC, for a machine in UTC.
#[test]
fn time_matches_list_as_their_text() {
    if (wasmwall::validate::LocalTime::system().offset_now)() != 0 {
        eprintln!(
            "skipped: time_matches_list_as_their_text builds its rules in UTC; the local zone is not"
        );
        return;
    }
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let hour = |from: u32, to: u32, negate| {
        accept(vec![Match::Hour(HourRange {
            utc: (from, to),
            local: (from, to),
            negate,
        })])
    };
    let jan1: i64 = 1_767_225_600;
    let dec31 = jan1 + 364 * 86_400 + 86_399;
    let rules = vec![
        hour(7 * 3600, 21 * 3600, true),
        hour(36_030, 39_600, false),
        accept(vec![Match::Date(DateRange {
            utc_ns: (jan1 as u64 * 1_000_000_000, dec31 as u64 * 1_000_000_000),
            local: (jan1, dec31),
        })]),
    ];
    round_trip(
        &mut kernel,
        &policy(
            "pm",
            vec![chain("input", filter(Hook::Input), rules)],
            vec![],
        ),
    );
}

/// A rule naming a limit object the policy declares: the round trip.
#[test]
fn a_named_limit_lists_as_its_text_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut policies = policy(
        "pm",
        vec![chain(
            "input",
            filter(Hook::Input),
            vec![rule(
                vec![one(TCP_DPORT, n(22)), Match::LimitNamed("ssh".into())],
                Action::Drop,
            )],
        )],
        vec![],
    );
    policies[0].rules.objects.push(NamedObject {
        name: "ssh".into(),
        object: Object::Limit {
            rate: Rate {
                amount: 3,
                bytes: false,
                per: TimeUnit::Minute,
                burst: Rate::DEFAULT_PACKET_BURST,
            },
            over: true,
        },
    });
    round_trip(&mut kernel, &policies);
}
