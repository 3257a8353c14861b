//! Tests of the conversions: each SDK value reaches the contract field for
//! field, and the state and event arrive in the SDK the same way.

use super::*;
use crate::{IcmpType, Icmpv6Type};

fn addr(a: &str) -> w::Value {
    w::Value::Address(a.into())
}

fn plain_set(name: &str, key: w::KeyType, values: Vec<w::Value>) -> w::NamedSet {
    w::NamedSet {
        name: name.into(),
        key: vec![key],
        intervals: false,
        timeout: None,
        dynamic: false,
        size: None,
        elements: values.into_iter().map(|v| vec![v]).collect(),
    }
}

#[test]
fn a_ruleset_reaches_the_contract_field_for_field() {
    let ruleset = Ruleset::new()
        .chain(
            Chain::nat("pre", Hook::Prerouting, -100).rule(
                Rule::new()
                    .not_iifname("wan0")
                    .sport_range(Transport::Udp, 1000, 2000)
                    .tcp_dport(80)
                    .dport_in(Transport::Udp, "ports")
                    .sport_in(Transport::Tcp, "other")
                    .saddr_in("hosts")
                    .daddr_in("servers")
                    .l4proto(L4Protocol::Icmpv6)
                    .ct_state([CtState::New, CtState::Untracked])
                    .counter()
                    .log("in ")
                    .comment("all of it")
                    .dnat("[fd00::5]:8080"),
            ),
        )
        .chain(
            Chain::filter("out", Hook::Output, 5)
                .policy(ChainPolicy::Drop)
                .rule(
                    Rule::new()
                        .oifname("lo")
                        .saddr("::1")
                        .daddr("::1")
                        .goto("audit"),
                ),
        )
        .chain(Chain::regular("audit").rule(Rule::new().return_()))
        .set(NamedSet::ipv4("hosts", ["10.0.0.1"]))
        .set(NamedSet::ipv6("servers", ["fd00::5"]))
        .set(NamedSet::ports("ports", [53, 123]))
        .sysctl("net.ipv4.ip_forward", "1");
    let m = |matcher, negate| w::MatchExpr { matcher, negate };
    let expected = w::Ruleset {
        chains: vec![
            w::Chain {
                name: "pre".into(),
                base: Some(w::BaseChain {
                    hook: w::Hook::Prerouting,
                    type_: w::ChainType::Nat,
                    priority: w::Priority::Number(-100),
                    policy: w::ChainPolicy::Accept,
                }),
                rules: vec![w::Rule {
                    matches: vec![
                        m(w::Matcher::Iifname("wan0".into()), true),
                        m(
                            w::Matcher::Sport(w::Ports {
                                protocol: w::Transport::Udp,
                                first: 1000,
                                last: 2000,
                            }),
                            false,
                        ),
                        m(
                            w::Matcher::Dport(w::Ports {
                                protocol: w::Transport::Tcp,
                                first: 80,
                                last: 80,
                            }),
                            false,
                        ),
                        m(
                            w::Matcher::DportIn(w::PortSetRef {
                                protocol: w::Transport::Udp,
                                set: "ports".into(),
                            }),
                            false,
                        ),
                        m(
                            w::Matcher::SportIn(w::PortSetRef {
                                protocol: w::Transport::Tcp,
                                set: "other".into(),
                            }),
                            false,
                        ),
                        m(w::Matcher::SaddrIn("hosts".into()), false),
                        m(w::Matcher::DaddrIn("servers".into()), false),
                        m(w::Matcher::L4proto(w::L4Protocol::Icmpv6), false),
                        m(
                            w::Matcher::CtState(vec![w::CtState::New, w::CtState::Untracked]),
                            false,
                        ),
                    ],
                    statements: vec![
                        w::Statement::Counter,
                        w::Statement::Log(w::Log {
                            prefix: Some("in ".into()),
                            level: None,
                            limit: None,
                        }),
                    ],
                    action: w::Action::Dnat(w::NatTarget {
                        address: "fd00::5".into(),
                        last_address: None,
                        ports: Some(w::PortRange {
                            first: 8080,
                            last: 8080,
                        }),
                        flags: w::NatFlags::empty(),
                    }),
                    comment: Some("all of it".into()),
                }],
            },
            w::Chain {
                name: "out".into(),
                base: Some(w::BaseChain {
                    hook: w::Hook::Output,
                    type_: w::ChainType::Filter,
                    priority: w::Priority::Number(5),
                    policy: w::ChainPolicy::Drop,
                }),
                rules: vec![w::Rule {
                    matches: vec![
                        m(w::Matcher::Oifname("lo".into()), false),
                        m(w::Matcher::Saddr("::1".into()), false),
                        m(w::Matcher::Daddr("::1".into()), false),
                    ],
                    action: w::Action::Goto("audit".into()),
                    statements: vec![],
                    comment: None,
                }],
            },
            w::Chain {
                name: "audit".into(),
                base: None,
                rules: vec![w::Rule {
                    matches: vec![],
                    action: w::Action::Return,
                    statements: vec![],
                    comment: None,
                }],
            },
        ],
        sets: vec![
            plain_set("hosts", w::KeyType::Ipv4Addr, vec![addr("10.0.0.1")]),
            plain_set("servers", w::KeyType::Ipv6Addr, vec![addr("fd00::5")]),
            plain_set(
                "ports",
                w::KeyType::InetService,
                vec![w::Value::Number(53), w::Value::Number(123)],
            ),
        ],
        maps: vec![],
        counters: vec![],
        limits: vec![],
        ct_helpers: vec![],
        flowtables: vec![],
        sysctls: vec![w::Sysctl {
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        }],
    };
    assert_eq!(ruleset.into_wit(), expected);
}

#[test]
fn each_verdict_reaches_the_contract_as_its_action() {
    let target = |address: &str, port: Option<u16>| w::NatTarget {
        address: address.into(),
        last_address: None,
        ports: port.map(|p| w::PortRange { first: p, last: p }),
        flags: w::NatFlags::empty(),
    };
    for (rule, action) in [
        (Rule::new().accept(), w::Action::Accept),
        (Rule::new().drop(), w::Action::Drop),
        (Rule::new().reject(), w::Action::Reject(None)),
        (Rule::new().jump("a"), w::Action::Jump("a".into())),
        (Rule::new().goto("b"), w::Action::Goto("b".into())),
        (Rule::new().return_(), w::Action::Return),
        (
            Rule::new().dnat("10.0.0.5"),
            w::Action::Dnat(target("10.0.0.5", None)),
        ),
        (
            Rule::new().snat("10.0.0.6:99"),
            w::Action::Snat(target("10.0.0.6", Some(99))),
        ),
        (Rule::new().masquerade(), w::Action::Masquerade(None)),
        (Rule::new().continue_(), w::Action::Continue),
        (
            Rule::new().reject_with(RejectWith::TcpReset),
            w::Action::Reject(Some(w::RejectWith::TcpReset)),
        ),
        (
            Rule::new().reject_with(RejectWith::Icmp(IcmpReject::HostProhibited)),
            w::Action::Reject(Some(w::RejectWith::Icmp(w::IcmpReject::HostProhibited))),
        ),
        (
            Rule::new().reject_with(RejectWith::Icmpv6(Icmpv6Reject::PolicyFail)),
            w::Action::Reject(Some(w::RejectWith::Icmpv6(w::Icmpv6Reject::PolicyFail))),
        ),
        (
            Rule::new().reject_with(RejectWith::Icmpx(IcmpxReject::AdminProhibited)),
            w::Action::Reject(Some(w::RejectWith::Icmpx(w::IcmpxReject::AdminProhibited))),
        ),
        (
            Rule::new().dnat_to(
                NatTarget::range("10.0.0.5", "10.0.0.9")
                    .with_ports(8000..=8099)
                    .with_flags(NatFlags::RANDOM | NatFlags::PERSISTENT),
            ),
            w::Action::Dnat(w::NatTarget {
                address: "10.0.0.5".into(),
                last_address: Some("10.0.0.9".into()),
                ports: Some(w::PortRange {
                    first: 8000,
                    last: 8099,
                }),
                flags: w::NatFlags::RANDOM | w::NatFlags::PERSISTENT,
            }),
        ),
        (
            Rule::new().snat_to(NatTarget::new("fd00::1").with_flags(NatFlags::FULLY_RANDOM)),
            w::Action::Snat(w::NatTarget {
                address: "fd00::1".into(),
                last_address: None,
                ports: None,
                flags: w::NatFlags::FULLY_RANDOM,
            }),
        ),
        (
            Rule::new().masquerade_to(1024..=65535),
            w::Action::Masquerade(Some(w::PortRange {
                first: 1024,
                last: 65535,
            })),
        ),
        (Rule::new().redirect(), w::Action::Redirect(None)),
        (
            Rule::new().redirect_to(3128),
            w::Action::Redirect(Some(w::PortRange {
                first: 3128,
                last: 3128,
            })),
        ),
    ] {
        assert_eq!(rule.into_wit().action, action);
    }
}

#[test]
fn maps_in_verdicts_reach_the_contract() {
    let rules = [
        Rule::new().vmap(MapLookup::inline(
            [Field::Iifname, Field::Oifname],
            [
                MapElement::new(
                    [Value::name("lan0"), Value::name("wan0")],
                    MapVerdict::Accept,
                ),
                MapElement::new([Value::name("a"), Value::name("b")], MapVerdict::Drop),
                MapElement::new(
                    [Value::name("c"), Value::name("d")],
                    MapVerdict::Jump("j".into()),
                ),
                MapElement::new(
                    [Value::name("e"), Value::name("f")],
                    MapVerdict::Goto("g".into()),
                ),
                MapElement::new([Value::name("h"), Value::name("i")], MapVerdict::Return),
            ],
        )),
        Rule::new().vmap(MapLookup::named([Field::Saddr(IpFamily::V6)], "zones")),
        Rule::new().dnat_map(
            IpFamily::V4,
            MapLookup::inline(
                [Field::Dport(Transport::Tcp)],
                [MapElement::new(
                    [Value::from(8080u16)],
                    [Value::address("192.168.1.10"), Value::from(80u16)],
                )],
            ),
        ),
        Rule::new().snat_map(
            IpFamily::V6,
            MapLookup::named([Field::Saddr(IpFamily::V6)], "sources"),
        ),
    ];
    let names = |a: &str, b: &str| vec![w::Value::Name(a.into()), w::Value::Name(b.into())];
    let verdict = |key, v| w::MapElement {
        key,
        data: w::MapData::Verdict(v),
    };
    let expected = [
        w::Action::Vmap(w::MapLookup {
            key: vec![w::Field::Iifname, w::Field::Oifname],
            map: w::MapSource::Inline(vec![
                verdict(names("lan0", "wan0"), w::Verdict::Accept),
                verdict(names("a", "b"), w::Verdict::Drop),
                verdict(names("c", "d"), w::Verdict::Jump("j".into())),
                verdict(names("e", "f"), w::Verdict::Goto("g".into())),
                verdict(names("h", "i"), w::Verdict::Return),
            ]),
        }),
        w::Action::Vmap(w::MapLookup {
            key: vec![w::Field::Saddr(w::IpFamily::Ipv6)],
            map: w::MapSource::Named("zones".into()),
        }),
        w::Action::DnatMap(w::NatMap {
            family: w::IpFamily::Ipv4,
            lookup: w::MapLookup {
                key: vec![w::Field::Dport(w::Transport::Tcp)],
                map: w::MapSource::Inline(vec![w::MapElement {
                    key: vec![w::Value::Number(8080)],
                    data: w::MapData::Values(vec![addr("192.168.1.10"), w::Value::Number(80)]),
                }]),
            },
        }),
        w::Action::SnatMap(w::NatMap {
            family: w::IpFamily::Ipv6,
            lookup: w::MapLookup {
                key: vec![w::Field::Saddr(w::IpFamily::Ipv6)],
                map: w::MapSource::Named("sources".into()),
            },
        }),
    ];
    let actions: Vec<w::Action> = rules.into_iter().map(|r| r.into_wit().action).collect();
    assert_eq!(actions, expected);
}

#[test]
fn each_matcher_reaches_the_contract() {
    let rule = Rule::new()
        .l4proto(L4Protocol::Gre)
        .l4proto(L4Protocol::Other(41))
        .nfproto(IpFamily::V6)
        .icmp_type(IcmpType::EchoRequest)
        .icmpv6_types([Icmpv6Type::NdNeighborSolicit, Icmpv6Type::PacketTooBig])
        .not_test(Field::Sport(Transport::Sctp), [1024u16..=65535])
        .test_concat(
            [Field::Daddr(IpFamily::V4), Field::Dport(Transport::Udp)],
            [[Value::address("10.0.0.0/8"), Value::from(53u16)]],
        )
        .test(
            Field::Saddr(IpFamily::V4),
            [Value::address_range("10.0.0.1", "10.0.0.9")],
        )
        .test(Field::EtherSaddr, [Value::mac("02:00:00:00:00:01")])
        .in_set([Field::Saddr(IpFamily::V4), Field::Iifname], "pairs")
        .masked(Field::Mark, 0xffu32, 0x1u32)
        .masked(
            Field::Daddr(IpFamily::V6),
            Value::address("::ffff:ffff:ffff:ffff"),
            Value::address("::1234"),
        )
        .tcp_flags(TcpFlags::SYN, TcpFlags::SYN | TcpFlags::ACK)
        .ct_status(CtStatus::DNAT | CtStatus::SNAT)
        .fib(FibCheck::ReversePathMissingMark)
        .hour(TimeOfDay::hm(21, 0), TimeOfDay::hms(7, 0, 30))
        .day([Weekday::Saturday, Weekday::Sunday])
        .date(
            Date::ymd(2025, 12, 24),
            Date::ymd(2025, 12, 26).at(23, 59, 59),
        )
        .limit(Rate::per_second(10).burst(5))
        .limit_over(Rate::bytes_per_minute(1_000_000))
        .limit_named("shared")
        .keyed_limit(
            [Field::Saddr(IpFamily::V4)],
            "meter",
            RateLimit::over(Rate::per_minute(3)),
        )
        .drop();
    let m = |matcher| w::MatchExpr {
        matcher,
        negate: false,
    };
    let numbers = |field, ns: &[u32]| w::Test {
        fields: vec![field],
        any_of: ns.iter().map(|&n| vec![w::Value::Number(n)]).collect(),
    };
    let expected = vec![
        m(w::Matcher::L4proto(w::L4Protocol::Gre)),
        m(w::Matcher::L4protoNumber(41)),
        m(w::Matcher::Nfproto(w::IpFamily::Ipv6)),
        m(w::Matcher::Test(numbers(w::Field::IcmpType, &[8]))),
        m(w::Matcher::Test(numbers(w::Field::Icmpv6Type, &[135, 2]))),
        w::MatchExpr {
            matcher: w::Matcher::Test(w::Test {
                fields: vec![w::Field::Sport(w::Transport::Sctp)],
                any_of: vec![vec![w::Value::NumberRange((1024, 65535))]],
            }),
            negate: true,
        },
        m(w::Matcher::Test(w::Test {
            fields: vec![
                w::Field::Daddr(w::IpFamily::Ipv4),
                w::Field::Dport(w::Transport::Udp),
            ],
            any_of: vec![vec![addr("10.0.0.0/8"), w::Value::Number(53)]],
        })),
        m(w::Matcher::Test(w::Test {
            fields: vec![w::Field::Saddr(w::IpFamily::Ipv4)],
            any_of: vec![vec![w::Value::AddressRange((
                "10.0.0.1".into(),
                "10.0.0.9".into(),
            ))]],
        })),
        m(w::Matcher::Test(w::Test {
            fields: vec![w::Field::EtherSaddr],
            any_of: vec![vec![w::Value::Mac("02:00:00:00:00:01".into())]],
        })),
        m(w::Matcher::InSet(w::SetTest {
            fields: vec![w::Field::Saddr(w::IpFamily::Ipv4), w::Field::Iifname],
            set: "pairs".into(),
        })),
        m(w::Matcher::Masked(w::MaskedTest {
            field: w::Field::Mark,
            mask: w::Value::Number(0xff),
            value: w::Value::Number(1),
        })),
        m(w::Matcher::Masked(w::MaskedTest {
            field: w::Field::Daddr(w::IpFamily::Ipv6),
            mask: addr("::ffff:ffff:ffff:ffff"),
            value: addr("::1234"),
        })),
        m(w::Matcher::TcpFlags(w::TcpFlagsTest {
            flags: w::TcpFlags::SYN,
            mask: w::TcpFlags::SYN | w::TcpFlags::ACK,
        })),
        m(w::Matcher::CtStatus(w::CtStatus::DNAT | w::CtStatus::SNAT)),
        m(w::Matcher::Fib(w::FibCheck::ReversePathMissingMark)),
        m(w::Matcher::Hour(w::TimeOfDay {
            from: "21:00".into(),
            to: "07:00:30".into(),
        })),
        m(w::Matcher::Day(vec![
            w::Weekday::Saturday,
            w::Weekday::Sunday,
        ])),
        m(w::Matcher::Date(w::DateRange {
            from: "2025-12-24".into(),
            to: "2025-12-26 23:59:59".into(),
        })),
        m(w::Matcher::Limit(w::RateLimit {
            rate: w::Rate {
                amount: 10,
                bytes: false,
                per: w::TimeUnit::Second,
                burst: 5,
            },
            over: false,
        })),
        m(w::Matcher::Limit(w::RateLimit {
            rate: w::Rate {
                amount: 1_000_000,
                bytes: true,
                per: w::TimeUnit::Minute,
                burst: 0,
            },
            over: true,
        })),
        m(w::Matcher::LimitNamed("shared".into())),
        m(w::Matcher::KeyedLimit(w::KeyedLimit {
            fields: vec![w::Field::Saddr(w::IpFamily::Ipv4)],
            set: "meter".into(),
            limit: w::RateLimit {
                rate: w::Rate {
                    amount: 3,
                    bytes: false,
                    per: w::TimeUnit::Minute,
                    burst: 0,
                },
                over: true,
            },
        })),
    ];
    assert_eq!(rule.into_wit().matches, expected);
}

#[test]
fn each_statement_reaches_the_contract_in_the_order_written() {
    let rule = Rule::new()
        .log_with(
            Log::with_prefix("drop ")
                .at_level(LogLevel::Notice)
                .at_most(Rate::per_hour(6)),
        )
        .counter()
        .counter_named("dropped")
        .log_with(Log::new())
        .mark_set(1)
        .mark_update(MarkUpdate::And(0xff))
        .mark_update(MarkUpdate::Or(0x100))
        .mark_update(MarkUpdate::Xor(0x3))
        .ct_mark_set(7)
        .ct_mark_update(MarkUpdate::Masked {
            value: 0x10,
            mask: 0xf0,
        })
        .dscp_set(IpFamily::V4, Dscp::CS1)
        .notrack()
        .ct_helper("ftp-helper")
        .mss_clamp_to_pmtu()
        .mss_clamp(1360)
        .offload("ft")
        .continue_();
    let expected = vec![
        w::Statement::Log(w::Log {
            prefix: Some("drop ".into()),
            level: Some(w::LogLevel::Notice),
            limit: Some(w::Rate {
                amount: 6,
                bytes: false,
                per: w::TimeUnit::Hour,
                burst: 0,
            }),
        }),
        w::Statement::Counter,
        w::Statement::CounterNamed("dropped".into()),
        w::Statement::Log(w::Log {
            prefix: None,
            level: None,
            limit: None,
        }),
        w::Statement::Mark(w::MarkUpdate::Set(1)),
        w::Statement::Mark(w::MarkUpdate::And(0xff)),
        w::Statement::Mark(w::MarkUpdate::Or(0x100)),
        w::Statement::Mark(w::MarkUpdate::Xor(0x3)),
        w::Statement::CtMark(w::MarkUpdate::Set(7)),
        w::Statement::CtMark(w::MarkUpdate::Masked(w::MaskedMark {
            value: 0x10,
            mask: 0xf0,
        })),
        w::Statement::Dscp(w::DscpUpdate {
            family: w::IpFamily::Ipv4,
            value: 8,
        }),
        w::Statement::Notrack,
        w::Statement::CtHelper("ftp-helper".into()),
        w::Statement::Mss(w::MssClamp::PathMtu),
        w::Statement::Mss(w::MssClamp::Size(1360)),
        w::Statement::Offload("ft".into()),
    ];
    let rule = rule.into_wit();
    assert_eq!(rule.statements, expected);
    assert_eq!(rule.action, w::Action::Continue);
}

#[test]
fn the_objects_reach_the_contract_field_for_field() {
    let ruleset = Ruleset::new()
        .chain(Chain::route("reroute", PriorityName::Mangle))
        .chain(Chain::filter(
            "late",
            Hook::Forward,
            Priority::named(PriorityName::Filter, 10),
        ))
        .set(
            NamedSet::keyed("meter", [KeyType::Ipv4Addr])
                .dynamic(65535)
                .timeout_secs(60),
        )
        .set(
            NamedSet::keyed("open", [KeyType::Ipv6Addr, KeyType::InetService])
                .intervals()
                .max_size(100)
                .extend([
                    [Value::address("fd00::/64"), Value::from(80u16)],
                    [Value::address("fd01::1"), Value::from(1u16..=1023)],
                ]),
        )
        .map(
            NamedMap::verdict_map("zones", [KeyType::Ifname])
                .element([Value::name("lan0")], MapVerdict::Jump("lan".into())),
        )
        .map(
            NamedMap::data_map(
                "forwards",
                [KeyType::InetService],
                [KeyType::Ipv4Addr, KeyType::InetService],
            )
            .intervals()
            .extend([MapElement::new(
                [Value::from(8000u16..=8099)],
                [Value::address("192.168.1.10"), Value::from(80u16)],
            )]),
        )
        .named_counter("dropped")
        .named_limit("icmp", RateLimit::within(Rate::per_second(5).burst(10)))
        .ct_helper(CtHelper::new("ftp-helper", "ftp", Transport::Tcp))
        .flowtable(
            Flowtable::new("ft", ["lan0", "wan0"])
                .with_priority(-10)
                .offload_in_hardware()
                .with_counter(),
        )
        .flowtable(Flowtable::new("soft", ["lan1"]));
    let base = |hook, type_, priority| w::BaseChain {
        hook,
        type_,
        priority,
        policy: w::ChainPolicy::Accept,
    };
    let expected = w::Ruleset {
        chains: vec![
            w::Chain {
                name: "reroute".into(),
                base: Some(base(
                    w::Hook::Output,
                    w::ChainType::Route,
                    w::Priority::Named(w::NamedPriority {
                        name: w::PriorityName::Mangle,
                        offset: 0,
                    }),
                )),
                rules: vec![],
            },
            w::Chain {
                name: "late".into(),
                base: Some(base(
                    w::Hook::Forward,
                    w::ChainType::Filter,
                    w::Priority::Named(w::NamedPriority {
                        name: w::PriorityName::Filter,
                        offset: 10,
                    }),
                )),
                rules: vec![],
            },
        ],
        sets: vec![
            w::NamedSet {
                name: "meter".into(),
                key: vec![w::KeyType::Ipv4Addr],
                intervals: false,
                timeout: Some(60),
                dynamic: true,
                size: Some(65535),
                elements: vec![],
            },
            w::NamedSet {
                name: "open".into(),
                key: vec![w::KeyType::Ipv6Addr, w::KeyType::InetService],
                intervals: true,
                timeout: None,
                dynamic: false,
                size: Some(100),
                elements: vec![
                    vec![addr("fd00::/64"), w::Value::Number(80)],
                    vec![addr("fd01::1"), w::Value::NumberRange((1, 1023))],
                ],
            },
        ],
        maps: vec![
            w::NamedMap {
                name: "zones".into(),
                key: vec![w::KeyType::Ifname],
                data: None,
                intervals: false,
                elements: vec![w::MapElement {
                    key: vec![w::Value::Name("lan0".into())],
                    data: w::MapData::Verdict(w::Verdict::Jump("lan".into())),
                }],
            },
            w::NamedMap {
                name: "forwards".into(),
                key: vec![w::KeyType::InetService],
                data: Some(vec![w::KeyType::Ipv4Addr, w::KeyType::InetService]),
                intervals: true,
                elements: vec![w::MapElement {
                    key: vec![w::Value::NumberRange((8000, 8099))],
                    data: w::MapData::Values(vec![addr("192.168.1.10"), w::Value::Number(80)]),
                }],
            },
        ],
        counters: vec![w::NamedCounter {
            name: "dropped".into(),
        }],
        limits: vec![w::NamedLimit {
            name: "icmp".into(),
            limit: w::RateLimit {
                rate: w::Rate {
                    amount: 5,
                    bytes: false,
                    per: w::TimeUnit::Second,
                    burst: 10,
                },
                over: false,
            },
        }],
        ct_helpers: vec![w::CtHelper {
            name: "ftp-helper".into(),
            helper: "ftp".into(),
            protocol: w::Transport::Tcp,
        }],
        flowtables: vec![
            w::Flowtable {
                name: "ft".into(),
                priority: -10,
                devices: vec!["lan0".into(), "wan0".into()],
                hardware_offload: true,
                counter: true,
            },
            w::Flowtable {
                name: "soft".into(),
                priority: 0,
                devices: vec!["lan1".into()],
                hardware_offload: false,
                counter: false,
            },
        ],
        sysctls: vec![],
    };
    assert_eq!(ruleset.into_wit(), expected);
}

#[test]
fn each_flag_reaches_its_wit_flag() {
    let tcp = [
        (TcpFlags::FIN, w::TcpFlags::FIN),
        (TcpFlags::SYN, w::TcpFlags::SYN),
        (TcpFlags::RST, w::TcpFlags::RST),
        (TcpFlags::PSH, w::TcpFlags::PSH),
        (TcpFlags::ACK, w::TcpFlags::ACK),
        (TcpFlags::URG, w::TcpFlags::URG),
        (TcpFlags::ECN, w::TcpFlags::ECN),
        (TcpFlags::CWR, w::TcpFlags::CWR),
    ];
    for (sdk, wit) in tcp {
        assert_eq!(sdk.into_wit(), wit, "{sdk:?}");
    }
    let ct = [
        (CtStatus::EXPECTED, w::CtStatus::EXPECTED),
        (CtStatus::SEEN_REPLY, w::CtStatus::SEEN_REPLY),
        (CtStatus::ASSURED, w::CtStatus::ASSURED),
        (CtStatus::CONFIRMED, w::CtStatus::CONFIRMED),
        (CtStatus::SNAT, w::CtStatus::SNAT),
        (CtStatus::DNAT, w::CtStatus::DNAT),
        (CtStatus::DYING, w::CtStatus::DYING),
    ];
    for (sdk, wit) in ct {
        assert_eq!(sdk.into_wit(), wit, "{sdk:?}");
    }
    let nat = [
        (NatFlags::RANDOM, w::NatFlags::RANDOM),
        (NatFlags::FULLY_RANDOM, w::NatFlags::FULLY_RANDOM),
        (NatFlags::PERSISTENT, w::NatFlags::PERSISTENT),
    ];
    for (sdk, wit) in nat {
        assert_eq!(sdk.into_wit(), wit, "{sdk:?}");
    }
    // Every SDK flag is one of the contract's: all of them is all of those.
    let all = |flags: &[u16]| flags.iter().fold(0, |a, b| a | b);
    let tcp_bits: Vec<u16> = tcp.iter().map(|(_, w)| w.bits().into()).collect();
    assert_eq!(u16::from(TcpFlags::all().into_wit().bits()), all(&tcp_bits));
    let ct_bits: Vec<u16> = ct.iter().map(|(_, w)| w.bits().into()).collect();
    assert_eq!(u16::from(CtStatus::all().into_wit().bits()), all(&ct_bits));
    let nat_bits: Vec<u16> = nat.iter().map(|(_, w)| w.bits().into()).collect();
    assert_eq!(u16::from(NatFlags::all().into_wit().bits()), all(&nat_bits));
    assert_eq!(TcpFlags::empty().into_wit(), w::TcpFlags::empty());
}

#[test]
fn each_field_and_protocol_reaches_the_contract() {
    for (field, wit) in [
        (Field::Iifname, w::Field::Iifname),
        (Field::Oifname, w::Field::Oifname),
        (Field::L4proto, w::Field::L4proto),
        (
            Field::Saddr(IpFamily::V4),
            w::Field::Saddr(w::IpFamily::Ipv4),
        ),
        (
            Field::Daddr(IpFamily::V6),
            w::Field::Daddr(w::IpFamily::Ipv6),
        ),
        (
            Field::Sport(Transport::Udp),
            w::Field::Sport(w::Transport::Udp),
        ),
        (
            Field::Dport(Transport::Sctp),
            w::Field::Dport(w::Transport::Sctp),
        ),
        (Field::IcmpType, w::Field::IcmpType),
        (Field::IcmpCode, w::Field::IcmpCode),
        (Field::Icmpv6Type, w::Field::Icmpv6Type),
        (Field::Icmpv6Code, w::Field::Icmpv6Code),
        (Field::Mark, w::Field::Mark),
        (Field::CtMark, w::Field::CtMark),
        (Field::Dscp(IpFamily::V6), w::Field::Dscp(w::IpFamily::Ipv6)),
        (Field::EtherSaddr, w::Field::EtherSaddr),
    ] {
        assert_eq!(field.into_wit(), wit);
    }
    for (protocol, wit) in [
        (L4Protocol::Tcp, w::L4Protocol::Tcp),
        (L4Protocol::Udp, w::L4Protocol::Udp),
        (L4Protocol::Icmp, w::L4Protocol::Icmp),
        (L4Protocol::Icmpv6, w::L4Protocol::Icmpv6),
        (L4Protocol::Igmp, w::L4Protocol::Igmp),
        (L4Protocol::Gre, w::L4Protocol::Gre),
        (L4Protocol::Esp, w::L4Protocol::Esp),
        (L4Protocol::Ah, w::L4Protocol::Ah),
        (L4Protocol::Sctp, w::L4Protocol::Sctp),
        (L4Protocol::Udplite, w::L4Protocol::Udplite),
    ] {
        assert_eq!(protocol.into_wit(), w::Matcher::L4proto(wit));
    }
    assert_eq!(
        L4Protocol::Other(254).into_wit(),
        w::Matcher::L4protoNumber(254)
    );
}

#[test]
fn the_state_and_event_arrive_field_for_field() {
    let lease = w::Lease {
        mac: "52:54:00:12:34:56".into(),
        ip: "192.168.1.23".into(),
        hostname: Some("nas".into()),
        iface: "lan0".into(),
        expires: Some(1_700_000_000),
    };
    let v6_lease = w::Dhcpv6Lease {
        ip: "2001:db8:0:1::23".into(),
        duid: "00:03:00:01:52:54:00:12:34:56".into(),
        iaid: 9,
        temporary: true,
        hostname: Some("nas".into()),
        mac: Some("52:54:00:12:34:56".into()),
        iface: "lan0".into(),
        expires: None,
    };
    let neighbour = w::Neighbour {
        ip: "fe80::5054:ff:fe12:3456".into(),
        mac: "52:54:00:12:34:56".into(),
        iface: "lan0".into(),
        state: w::NeighbourState::Stale,
    };
    let state = w::WorldState {
        interfaces: vec![w::NetworkInterface {
            name: "lan0".into(),
            index: 7,
            up: true,
            mac: Some("02:00:00:00:00:01".into()),
            addresses: vec!["192.168.1.1/24".into()],
        }],
        leases: vec![lease.clone()],
        dhcpv6_leases: vec![v6_lease.clone()],
        neighbours: vec![neighbour.clone()],
        features: w::KernelFeatures {
            flowtables: true,
            hardware_offload: vec!["lan0".into()],
            ct_helpers: vec!["ftp".into(), "sip".into()],
        },
    }
    .into_sdk();
    let f = &state.features;
    assert!(f.has_flowtables());
    assert_eq!(f.hardware_offload, ["lan0"]);
    assert!(f.can_offload_in_hardware("lan0") && !f.can_offload_in_hardware("wan0"));
    assert_eq!(f.ct_helpers, ["ftp", "sip"]);
    assert!(f.has_ct_helper("sip") && !f.has_ct_helper("tftp"));
    let lan = &state.interfaces[0];
    assert_eq!(
        (lan.name.as_str(), lan.index, lan.up, lan.mac.as_deref()),
        ("lan0", 7, true, Some("02:00:00:00:00:01"))
    );
    assert_eq!(lan.addresses, ["192.168.1.1/24"]);
    let l = &state.leases[0];
    assert_eq!(
        (
            l.mac.as_str(),
            l.ip.as_str(),
            l.hostname.as_deref(),
            l.iface.as_str(),
            l.expires
        ),
        (
            "52:54:00:12:34:56",
            "192.168.1.23",
            Some("nas"),
            "lan0",
            Some(1_700_000_000)
        )
    );
    let d = &state.dhcpv6_leases[0];
    assert_eq!(
        (
            d.ip.as_str(),
            d.duid.as_str(),
            d.iaid,
            d.temporary,
            d.hostname.as_deref(),
            d.mac.as_deref(),
            d.iface.as_str(),
            d.expires
        ),
        (
            "2001:db8:0:1::23",
            "00:03:00:01:52:54:00:12:34:56",
            9,
            true,
            Some("nas"),
            Some("52:54:00:12:34:56"),
            "lan0",
            None
        )
    );
    let n = &state.neighbours[0];
    assert_eq!(
        (n.ip.as_str(), n.mac.as_str(), n.iface.as_str(), n.state),
        (
            "fe80::5054:ff:fe12:3456",
            "52:54:00:12:34:56",
            "lan0",
            NeighbourState::Stale
        )
    );
    for (wit, sdk) in [
        (w::NeighbourState::Reachable, NeighbourState::Reachable),
        (w::NeighbourState::Stale, NeighbourState::Stale),
        (w::NeighbourState::Delay, NeighbourState::Delay),
        (w::NeighbourState::Probe, NeighbourState::Probe),
        (w::NeighbourState::Permanent, NeighbourState::Permanent),
    ] {
        let mut each = neighbour.clone();
        each.state = wit;
        assert_eq!(each.into_sdk().state, sdk);
    }

    let change = || w::AddressChange {
        iface: "lan0".into(),
        address: "192.168.1.1/24".into(),
    };
    let sdk_change = AddressChange::new("lan0", "192.168.1.1/24");
    for (event, expected) in [
        (w::Event::Startup, Event::Startup),
        (w::Event::ConfigChanged, Event::ConfigChanged),
        (
            w::Event::InterfaceUp("a".into()),
            Event::InterfaceUp("a".into()),
        ),
        (
            w::Event::InterfaceDown("b".into()),
            Event::InterfaceDown("b".into()),
        ),
        (
            w::Event::AddressAdded(change()),
            Event::AddressAdded(sdk_change.clone()),
        ),
        (
            w::Event::AddressRemoved(change()),
            Event::AddressRemoved(sdk_change.clone()),
        ),
        (
            w::Event::LeaseAdded(lease.clone()),
            Event::LeaseAdded(l.clone()),
        ),
        (
            w::Event::LeaseRenewed(lease.clone()),
            Event::LeaseRenewed(l.clone()),
        ),
        (
            w::Event::LeaseExpired(lease.clone()),
            Event::LeaseExpired(l.clone()),
        ),
        (
            w::Event::Dhcpv6LeaseAdded(v6_lease.clone()),
            Event::Dhcpv6LeaseAdded(d.clone()),
        ),
        (
            w::Event::Dhcpv6LeaseRenewed(v6_lease.clone()),
            Event::Dhcpv6LeaseRenewed(d.clone()),
        ),
        (
            w::Event::Dhcpv6LeaseExpired(v6_lease.clone()),
            Event::Dhcpv6LeaseExpired(d.clone()),
        ),
        (
            w::Event::NeighbourAdded(neighbour.clone()),
            Event::NeighbourAdded(n.clone()),
        ),
        (
            w::Event::NeighbourChanged(neighbour.clone()),
            Event::NeighbourChanged(n.clone()),
        ),
        (
            w::Event::NeighbourRemoved(neighbour.clone()),
            Event::NeighbourRemoved(n.clone()),
        ),
    ] {
        assert_eq!(event.into_sdk(), expected);
    }
}
