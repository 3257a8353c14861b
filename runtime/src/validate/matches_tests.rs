//! The 0.2 matchers through validation: what each becomes (as the rule's
//! text, which is what nft lists), and every refusal with its place and
//! its words.

use crate::bindings::wit::{self, Matcher as M};
use crate::validate::{LocalTime, Options, Problem};

/// Validates with the default world's kernel features (matches need none).
fn validate(
    rs: &wit::Ruleset,
    opts: &Options,
) -> Result<crate::ir::Ruleset, crate::validate::Invalid> {
    crate::validate::validate(rs, opts, &crate::world::Features::default().to_wit())
}

fn opts() -> Options {
    Options {
        local_time: LocalTime::UTC,
        ..Options::default()
    }
}

fn m(matcher: M) -> wit::MatchExpr {
    wit::MatchExpr {
        matcher,
        negate: false,
    }
}

fn not(matcher: M) -> wit::MatchExpr {
    wit::MatchExpr {
        matcher,
        negate: true,
    }
}

fn chain(name: &str, hook: wit::Hook, type_: wit::ChainType, rules: Vec<wit::Rule>) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: Some(wit::BaseChain {
            hook,
            type_,
            priority: wit::Priority::Number(0),
            policy: wit::ChainPolicy::Accept,
        }),
        rules,
    }
}

fn rule(matches: Vec<wit::MatchExpr>, action: wit::Action) -> wit::Rule {
    wit::Rule {
        matches,
        statements: Vec::new(),
        action,
        comment: None,
    }
}

fn set(name: &str, key: Vec<wit::KeyType>, dynamic: bool) -> wit::NamedSet {
    wit::NamedSet {
        name: name.into(),
        key,
        intervals: false,
        timeout: dynamic.then_some(60),
        dynamic,
        size: dynamic.then_some(100),
        elements: Vec::new(),
    }
}

fn answer(hook: wit::Hook, matches: Vec<wit::MatchExpr>) -> wit::Ruleset {
    wit::Ruleset {
        chains: vec![chain(
            "c",
            hook,
            wit::ChainType::Filter,
            vec![rule(matches, wit::Action::Accept)],
        )],
        sets: vec![set("v4", vec![wit::KeyType::Ipv4Addr], false)],
        ..wit::Ruleset::empty()
    }
}

/// The text of the one rule `matches` make, in a filter chain on input.
fn text(matches: Vec<wit::MatchExpr>) -> String {
    text_on(wit::Hook::Input, matches)
}

fn text_on(hook: wit::Hook, matches: Vec<wit::MatchExpr>) -> String {
    let ir = validate(&answer(hook, matches), &opts()).unwrap_or_else(|e| panic!("{e}"));
    ir.chains[0].rules[0].to_string()
}

fn problems(hook: wit::Hook, matches: Vec<wit::MatchExpr>) -> Vec<Problem> {
    validate(&answer(hook, matches), &opts())
        .map(|r| panic!("accepted: {}", r.chains[0].rules[0]))
        .unwrap_err()
        .problems
}

/// The answer is refused with one problem at `at` that says all of `words`.
fn refused(matches: Vec<wit::MatchExpr>, at: &str, words: &[&str]) {
    refused_on(wit::Hook::Input, matches, at, words);
}

fn refused_on(hook: wit::Hook, matches: Vec<wit::MatchExpr>, at: &str, words: &[&str]) {
    let problems = problems(hook, matches);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].at,
        format!("chain \"c\" rule 1 {at}"),
        "{problems:?}"
    );
    for w in words {
        assert!(
            problems[0].message.contains(w),
            "{:?} lacks {w:?}",
            problems[0]
        );
    }
}

fn test(fields: Vec<wit::Field>, any_of: Vec<Vec<wit::Value>>) -> M {
    M::Test(wit::Test { fields, any_of })
}

fn num(n: u32) -> wit::Value {
    wit::Value::Number(n)
}

fn addr(a: &str) -> wit::Value {
    wit::Value::Address(a.into())
}

fn name(n: &str) -> wit::Value {
    wit::Value::Name(n.into())
}

const TCP_DPORT: wit::Field = wit::Field::Dport(wit::Transport::Tcp);
const IP_SADDR: wit::Field = wit::Field::Saddr(wit::IpFamily::Ipv4);
const IP_DADDR: wit::Field = wit::Field::Daddr(wit::IpFamily::Ipv4);

#[test]
fn interface_wildcards_are_one_trailing_star_after_a_character() {
    assert_eq!(
        text(vec![m(M::Iifname("eth*".into()))]),
        "iifname \"eth*\" accept"
    );
    assert_eq!(
        text(vec![not(M::Iifname("br-*".into()))]),
        "iifname != \"br-*\" accept"
    );
    assert_eq!(
        text(vec![m(test(
            vec![wit::Field::Iifname],
            vec![vec![name("wg*")]]
        ))]),
        "iifname \"wg*\" accept"
    );
    refused(
        vec![m(M::Iifname("*".into()))],
        "match 1",
        &["\"*\"", "at least one character before it"],
    );
    refused(
        vec![m(M::Iifname("e*th".into()))],
        "match 1",
        &["\"e*th\"", "'*'"],
    );
    refused(
        vec![m(M::Iifname("eth**".into()))],
        "match 1",
        &["\"eth**\"", "'*'"],
    );
    refused(
        vec![m(M::Iifname("123456789012345*".into()))],
        "match 1",
        &["is 16 bytes long", "at most 15 bytes with its '*'"],
    );
    refused(
        vec![m(test(
            vec![wit::Field::Iifname],
            vec![vec![name("wg*")], vec![name("lan0")]],
        ))],
        "match 1 value 1",
        &["wildcard", "only a plain comparison"],
    );
}

#[test]
fn every_protocol_and_family_reads_as_nft_lists_it() {
    let l4 = |p| text(vec![m(M::L4proto(p))]);
    assert_eq!(l4(wit::L4Protocol::Tcp), "meta l4proto tcp accept");
    assert_eq!(l4(wit::L4Protocol::Icmpv6), "meta l4proto ipv6-icmp accept");
    assert_eq!(l4(wit::L4Protocol::Igmp), "meta l4proto igmp accept");
    assert_eq!(l4(wit::L4Protocol::Gre), "meta l4proto gre accept");
    assert_eq!(l4(wit::L4Protocol::Esp), "meta l4proto esp accept");
    assert_eq!(l4(wit::L4Protocol::Ah), "meta l4proto ah accept");
    assert_eq!(l4(wit::L4Protocol::Sctp), "meta l4proto sctp accept");
    assert_eq!(l4(wit::L4Protocol::Udplite), "meta l4proto udplite accept");
    assert_eq!(
        text(vec![not(M::L4protoNumber(253))]),
        "meta l4proto != 253 accept"
    );
    assert_eq!(
        text(vec![m(M::L4protoNumber(6))]),
        "meta l4proto tcp accept"
    );
    assert_eq!(
        text(vec![m(test(
            vec![wit::Field::L4proto],
            vec![vec![num(47)]]
        ))]),
        "meta l4proto gre accept"
    );
    assert_eq!(
        text(vec![not(M::Nfproto(wit::IpFamily::Ipv6))]),
        "meta nfproto != ipv6 accept"
    );
    assert_eq!(
        text(vec![m(M::Dport(wit::Ports {
            protocol: wit::Transport::Sctp,
            first: 5060,
            last: 5060
        }))]),
        "sctp dport 5060 accept"
    );
}

#[test]
fn tests_are_comparisons_or_inline_sets() {
    assert_eq!(
        text(vec![m(test(
            vec![TCP_DPORT],
            vec![vec![wit::Value::NumberRange((1024, 65535))]]
        ))]),
        "tcp dport 1024-65535 accept"
    );
    assert_eq!(
        text(vec![not(test(
            vec![IP_SADDR],
            vec![vec![addr("10.0.0.0/8")]]
        ))]),
        "ip saddr != 10.0.0.0/8 accept"
    );
    assert_eq!(
        text(vec![not(test(
            vec![TCP_DPORT],
            vec![vec![num(80)], vec![num(22)], vec![num(80)]]
        ))]),
        "tcp dport != { 22, 80 } accept"
    );
    // One-part intervals merge as nft merges them.
    assert_eq!(
        text(vec![m(test(
            vec![IP_SADDR],
            vec![
                vec![addr("10.128.0.0/9")],
                vec![addr("192.168.1.1")],
                vec![addr("10.0.0.0/9")]
            ]
        ))]),
        "ip saddr { 10.0.0.0/8, 192.168.1.1 } accept"
    );
    // A concatenation is always a set, also of one element.
    assert_eq!(
        text(vec![m(test(
            vec![IP_DADDR, TCP_DPORT],
            vec![vec![addr("10.0.0.2"), num(80)]]
        ))]),
        "ip daddr . tcp dport { 10.0.0.2 . 80 } accept"
    );
    assert_eq!(
        text(vec![m(test(
            vec![wit::Field::Icmpv6Type, wit::Field::Icmpv6Code],
            vec![vec![num(128), num(0)], vec![num(1), num(0)]]
        ))]),
        "icmpv6 type . icmpv6 code { destination-unreachable . no-route, echo-request . no-route } accept"
    );
    assert_eq!(
        text(vec![m(test(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![addr("10.0.0.0/8"), wit::Value::NumberRange((1, 1024))],
                vec![addr("1.2.3.4"), num(5)]
            ]
        ))]),
        // In nft's order of a concatenation's elements (by the last
        // byte first), which the kernel then lists them in.
        "ip daddr . tcp dport { 10.0.0.0/8 . 1-1024, 1.2.3.4 . 5 } accept"
    );
}

#[test]
fn bad_tests_are_named() {
    refused(
        vec![m(test(vec![TCP_DPORT], vec![]))],
        "match 1",
        &["no value never matches"],
    );
    refused(
        vec![m(test(vec![], vec![vec![num(1)]]))],
        "match 1",
        &["names no field"],
    );
    refused(
        vec![not(test(
            vec![TCP_DPORT],
            vec![vec![wit::Value::NumberRange((1024, 65535))]],
        ))],
        "match 1",
        &["a range cannot be negated"],
    );
    refused(
        vec![not(test(
            vec![IP_SADDR],
            vec![vec![wit::Value::AddressRange((
                "10.0.0.1".into(),
                "10.0.0.9".into(),
            ))]],
        ))],
        "match 1",
        &["a range cannot be negated"],
    );
    refused(
        vec![m(test(
            vec![TCP_DPORT],
            vec![vec![num(22)], vec![addr("10.0.0.1")]],
        ))],
        "match 1 value 2",
        &["\"10.0.0.1\" is not a port"],
    );
    refused(
        vec![m(test(
            vec![IP_DADDR, TCP_DPORT],
            vec![vec![addr("10.0.0.1")]],
        ))],
        "match 1 value 1",
        &["has 1 value(s); the key (ipv4_addr . inet_service) has 2"],
    );
    refused(
        vec![m(test(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![addr("10.0.0.0/8"), wit::Value::NumberRange((1, 1024))],
                vec![addr("10.1.0.0/16"), num(80)],
            ],
        ))],
        "match 1",
        &["10.0.0.0/8 . 1-1024", "10.1.0.0/16 . 80", "overlap"],
    );
    refused(
        vec![m(test(
            vec![wit::Field::Dscp(wit::IpFamily::Ipv4), TCP_DPORT],
            vec![vec![num(46), num(22)]],
        ))],
        "match 1",
        &["ip dscp . tcp dport: a DSCP cannot be part of a concatenation"],
    );
    let v6 = wit::Field::Saddr(wit::IpFamily::Ipv6);
    refused(
        vec![m(test(
            vec![v6, v6, v6, v6, v6],
            vec![vec![
                addr("::1"),
                addr("::1"),
                addr("::1"),
                addr("::1"),
                addr("::1"),
            ]],
        ))],
        "match 1",
        &["takes 80 bytes", "at most 64"],
    );
    refused(
        vec![m(test(
            vec![IP_SADDR, wit::Field::Daddr(wit::IpFamily::Ipv6)],
            vec![vec![addr("10.0.0.1"), addr("::1")]],
        ))],
        "match 1",
        &["mixes IPv4 and IPv6"],
    );
    refused(
        vec![
            m(test(vec![TCP_DPORT], vec![vec![num(22)]])),
            m(test(
                vec![wit::Field::Sport(wit::Transport::Udp)],
                vec![vec![num(53)]],
            )),
        ],
        "match 2",
        &["matches protocol udp but the rule already matches tcp"],
    );
}

/// A value of a test is checked against its field's type, at its match.
#[test]
fn ranges_in_a_test_are_checked_at_their_match() {
    refused(
        vec![m(test(
            vec![TCP_DPORT],
            vec![vec![wit::Value::NumberRange((2000, 1000))]],
        ))],
        "match 1",
        &["range 2000-1000 is empty (last < first)"],
    );
    refused(
        vec![m(test(
            vec![wit::Field::Mark],
            vec![vec![wit::Value::NumberRange((1, 5))]],
        ))],
        "match 1",
        &["a range of marks cannot be looked up"],
    );
}

#[test]
fn named_set_lookups_match_the_sets_key() {
    let in_set = |fields, set: &str| {
        M::InSet(wit::SetTest {
            fields,
            set: set.into(),
        })
    };
    assert_eq!(
        text(vec![m(in_set(vec![IP_SADDR], "v4"))]),
        "ip saddr @v4 accept"
    );
    // The 0.1 form lists as it did.
    assert_eq!(
        text(vec![m(M::SaddrIn("v4".into()))]),
        "ip saddr @v4 accept"
    );
    refused(
        vec![m(in_set(vec![TCP_DPORT], "v4"))],
        "match 1",
        &["set \"v4\" has key ipv4_addr; tcp dport is inet_service"],
    );
    refused(
        vec![m(in_set(vec![IP_SADDR], "nope"))],
        "match 1",
        &["unknown set \"nope\""],
    );
    // A set of a concatenation: the sets' part of validation does not
    // take one yet, so the answer fails there, and only there.
    let mut pairs = answer(
        wit::Hook::Input,
        vec![
            not(in_set(vec![IP_DADDR, TCP_DPORT], "pairs")),
            m(M::SaddrIn("pairs".into())),
        ],
    );
    pairs.sets.push(set(
        "pairs",
        vec![wit::KeyType::Ipv4Addr, wit::KeyType::InetService],
        false,
    ));
    let problems = validate(&pairs, &opts()).unwrap_err().problems;
    let of_rule: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.at.starts_with("chain"))
        .collect();
    assert_eq!(of_rule.len(), 1, "{problems:?}");
    assert_eq!(of_rule[0].at, "chain \"c\" rule 1 match 2");
    assert!(
        of_rule[0]
            .message
            .contains("set \"pairs\" does not hold addresses"),
        "{problems:?}"
    );
}

/// The 0.1 port-set lookups name a plain set of ports: each other set,
/// an unknown one and a negation are refused at the match.
#[test]
fn port_set_lookups_name_a_set_of_ports() {
    let sport_in = |set: &str| {
        M::SportIn(wit::PortSetRef {
            protocol: wit::Transport::Tcp,
            set: set.into(),
        })
    };
    let dport_in = |set: &str| {
        M::DportIn(wit::PortSetRef {
            protocol: wit::Transport::Udp,
            set: set.into(),
        })
    };
    let with_sets = |matches| {
        let mut a = answer(wit::Hook::Input, matches);
        a.sets
            .push(set("ports", vec![wit::KeyType::InetService], false));
        a.sets.push(set("names", vec![wit::KeyType::Ifname], false));
        a.sets.push(set("marks", vec![wit::KeyType::Mark], false));
        a
    };
    let refused_with_sets = |matches, words: &str| {
        let problems = validate(&with_sets(matches), &opts())
            .map(|r| panic!("accepted: {}", r.chains[0].rules[0]))
            .unwrap_err()
            .problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].at, "chain \"c\" rule 1 match 1", "{problems:?}");
        assert!(problems[0].message.contains(words), "{problems:?}");
    };
    assert_eq!(
        validate(&with_sets(vec![m(dport_in("ports"))]), &opts())
            .unwrap_or_else(|e| panic!("{e}"))
            .chains[0]
            .rules[0]
            .to_string(),
        "udp dport @ports accept"
    );
    refused_with_sets(
        vec![not(dport_in("ports"))],
        "a set membership cannot be negated",
    );
    refused_with_sets(
        vec![not(sport_in("ports"))],
        "a set membership cannot be negated",
    );
    refused_with_sets(
        vec![m(dport_in("v4"))],
        "set \"v4\" holds addresses, not ports",
    );
    refused_with_sets(
        vec![m(sport_in("v4"))],
        "set \"v4\" holds addresses, not ports",
    );
    refused_with_sets(
        vec![m(dport_in("names"))],
        "set \"names\" does not hold ports",
    );
    refused_with_sets(
        vec![m(dport_in("marks"))],
        "set \"marks\" does not hold ports",
    );
    refused_with_sets(vec![m(dport_in("nope"))], "unknown set \"nope\"");
}

fn masked(field: wit::Field, mask: wit::Value, value: wit::Value) -> M {
    M::Masked(wit::MaskedTest { field, mask, value })
}

#[test]
fn masks_are_checked() {
    assert_eq!(
        text(vec![m(masked(
            wit::Field::Daddr(wit::IpFamily::Ipv6),
            addr("::ffff:ffff:ffff:ffff"),
            addr("::1234")
        ))]),
        "ip6 daddr & ::ffff:ffff:ffff:ffff == ::1234 accept"
    );
    assert_eq!(
        text(vec![not(masked(wit::Field::Mark, num(0xff), num(1)))]),
        "meta mark & 0x000000ff != 0x00000001 accept"
    );
    refused(
        vec![m(masked(wit::Field::Mark, num(0xff), num(0x100)))],
        "match 1",
        &["value 0x00000100 has bits outside the mask 0x000000ff"],
    );
    refused(
        vec![m(masked(wit::Field::CtMark, num(0), num(0)))],
        "match 1",
        &["a mask of no bits tests nothing"],
    );
    refused(
        vec![m(masked(
            IP_SADDR,
            addr("255.255.0.0/16"),
            addr("10.0.0.0"),
        ))],
        "match 1",
        &["mask \"255.255.0.0/16\" is not an IPv4 address (without prefix)"],
    );
    refused(
        vec![m(masked(IP_SADDR, num(0xff), addr("10.0.0.0")))],
        "match 1",
        &["mask 255 is not an IPv4 address"],
    );
    refused(
        vec![m(masked(TCP_DPORT, num(0x1_0000), num(1)))],
        "match 1",
        &["mask 65536 is out of range for inet_service (0-65535)"],
    );
    refused(
        vec![m(masked(wit::Field::Mark, addr("10.0.0.1"), num(1)))],
        "match 1",
        &["mask \"10.0.0.1\" is not a number"],
    );
    refused(
        vec![m(masked(wit::Field::Iifname, num(1), num(1)))],
        "match 1",
        &["iifname cannot be masked; a mask applies to addresses, marks and ports"],
    );
}

fn tcp_flags(flags: wit::TcpFlags, mask: wit::TcpFlags) -> M {
    M::TcpFlags(wit::TcpFlagsTest { flags, mask })
}

#[test]
fn tcp_flags_and_ct_status_are_checked() {
    use wit::TcpFlags as F;
    assert_eq!(
        text(vec![m(tcp_flags(
            F::SYN,
            F::FIN | F::SYN | F::RST | F::ACK
        ))]),
        "tcp flags syn / fin,syn,rst,ack accept"
    );
    refused(
        vec![m(tcp_flags(F::SYN, F::empty()))],
        "match 1",
        &["empty mask"],
    );
    refused(
        vec![m(tcp_flags(F::SYN | F::ACK, F::SYN))],
        "match 1",
        &["flags ack are outside the mask syn"],
    );
    refused(
        vec![
            m(test(
                vec![wit::Field::Dport(wit::Transport::Udp)],
                vec![vec![num(53)]],
            )),
            m(tcp_flags(F::SYN, F::SYN)),
        ],
        "match 2",
        &["matches protocol tcp but the rule already matches udp"],
    );
    assert_eq!(
        text(vec![not(M::CtStatus(
            wit::CtStatus::DNAT | wit::CtStatus::SNAT
        ))]),
        "ct status ! snat,dnat accept"
    );
    refused(
        vec![m(M::CtStatus(wit::CtStatus::empty()))],
        "match 1",
        &["no status bit never matches"],
    );
}

#[test]
fn reverse_path_checks_run_where_the_kernel_lets_them() {
    let rp = || m(M::Fib(wit::FibCheck::ReversePathMissing));
    for hook in [wit::Hook::Prerouting, wit::Hook::Input, wit::Hook::Forward] {
        assert_eq!(
            text_on(hook, vec![rp()]),
            "fib saddr . iif oif missing accept"
        );
    }
    refused_on(
        wit::Hook::Output,
        vec![rp()],
        "match 1",
        &["prerouting, input and forward", "runs on output"],
    );
    refused_on(
        wit::Hook::Postrouting,
        vec![not(M::Fib(wit::FibCheck::ReversePathMissingMark))],
        "match 1",
        &["runs on postrouting"],
    );
    assert_eq!(
        text_on(
            wit::Hook::Output,
            vec![not(M::Fib(wit::FibCheck::DaddrLocal))]
        ),
        "fib daddr type != local accept"
    );
}

#[test]
fn time_tests_are_checked() {
    let hour = |from: &str, to: &str| {
        M::Hour(wit::TimeOfDay {
            from: from.into(),
            to: to.into(),
        })
    };
    assert_eq!(
        text(vec![m(hour("21:00", "07:00"))]),
        "meta hour != \"07:00\"-\"21:00\" accept"
    );
    assert_eq!(
        text(vec![not(hour("21:00", "07:00"))]),
        "meta hour \"07:00\"-\"21:00\" accept"
    );
    refused(
        vec![m(hour("7:00", "08:00"))],
        "match 1",
        &["\"7:00\" is not a time of day"],
    );
    use wit::Weekday as D;
    assert_eq!(
        text(vec![m(M::Day(vec![D::Friday, D::Monday, D::Friday]))]),
        "meta day { \"Monday\", \"Friday\" } accept"
    );
    assert_eq!(
        text(vec![m(M::Day(vec![D::Sunday]))]),
        "meta day \"Sunday\" accept"
    );
    refused(
        vec![not(M::Day(vec![D::Sunday]))],
        "match 1",
        &["a day test cannot be negated"],
    );
    refused(
        vec![m(M::Day(vec![]))],
        "match 1",
        &["no day never matches"],
    );
    let date = |from: &str, to: &str| {
        M::Date(wit::DateRange {
            from: from.into(),
            to: to.into(),
        })
    };
    assert_eq!(
        text(vec![m(date("2026-01-01", "2026-12-31 23:59:59"))]),
        "meta time \"2026-01-01 00:00:00\"-\"2026-12-31 23:59:59\" accept"
    );
    refused(
        vec![not(date("2026-01-01", "2027-01-01"))],
        "match 1",
        &["a date test cannot be negated"],
    );
    refused(
        vec![m(date("2026-02-30", "2027-01-01"))],
        "match 1",
        &["\"2026-02-30\" is not a date"],
    );
}

/// Time and date ranges that are empty or before 1970 in UTC are refused
/// at their match.
#[test]
fn empty_and_early_time_ranges_are_refused_at_their_match() {
    refused(
        vec![m(M::Hour(wit::TimeOfDay {
            from: "08:00".into(),
            to: "08:00".into(),
        }))],
        "match 1",
        &["the time range starts and ends at the same time"],
    );
    let date = |from: &str, to: &str| {
        M::Date(wit::DateRange {
            from: from.into(),
            to: to.into(),
        })
    };
    refused(
        vec![m(date("2027-01-01", "2026-01-01"))],
        "match 1",
        &["the date range \"2027-01-01\"-\"2026-01-01\" is empty or a single moment"],
    );
    refused(
        vec![m(date("2026-01-01", "2026-01-01"))],
        "match 1",
        &["is empty or a single moment"],
    );
    // East of UTC, midnight of 1970-01-01 local is before the epoch.
    let east = Options {
        local_time: LocalTime {
            offset_now: || 3600,
            offset_at: |_| 3600,
        },
        ..opts()
    };
    let problems = validate(
        &answer(wit::Hook::Input, vec![m(date("1970-01-01", "2027-01-01"))]),
        &east,
    )
    .unwrap_err()
    .problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].at, "chain \"c\" rule 1 match 1", "{problems:?}");
    assert!(
        problems[0]
            .message
            .contains("\"1970-01-01\" is before 1970-01-01 00:00:00 UTC"),
        "{problems:?}"
    );
}

/// nft leaves out of its listing a family or protocol check that a later
/// match implies: the runtime's text (and kernel form) does the same.
#[test]
fn checks_a_later_match_implies_read_as_nft_lists_them() {
    let nfproto4 = || m(M::Nfproto(wit::IpFamily::Ipv4));
    let l4 = |p| m(M::L4proto(p));
    let icmp_type = || m(test(vec![wit::Field::IcmpType], vec![vec![num(8)]]));
    assert_eq!(
        text(vec![
            l4(wit::L4Protocol::Tcp),
            m(M::Iifname("x".into())),
            m(test(vec![TCP_DPORT], vec![vec![num(22)]]))
        ]),
        "iifname \"x\" tcp dport 22 accept"
    );
    assert_eq!(
        text(vec![
            nfproto4(),
            m(test(vec![IP_SADDR], vec![vec![addr("1.2.3.4")]]))
        ]),
        "ip saddr 1.2.3.4 accept"
    );
    assert_eq!(
        text(vec![nfproto4(), nfproto4(), m(M::Saddr("1.2.3.4".into()))]),
        "ip saddr 1.2.3.4 accept"
    );
    assert_eq!(
        text(vec![
            nfproto4(),
            m(test(vec![TCP_DPORT], vec![vec![num(22)]]))
        ]),
        "meta nfproto ipv4 tcp dport 22 accept"
    );
    assert_eq!(
        text(vec![nfproto4(), icmp_type()]),
        "icmp type echo-request accept"
    );
    assert_eq!(
        text(vec![nfproto4(), l4(wit::L4Protocol::Icmp), icmp_type()]),
        "icmp type echo-request accept"
    );
    assert_eq!(
        text(vec![
            l4(wit::L4Protocol::Icmp),
            m(M::Saddr("1.2.3.4".into())),
            icmp_type()
        ]),
        "ip saddr 1.2.3.4 icmp type echo-request accept"
    );
    // Kept: nothing after them implies them.
    assert_eq!(
        text(vec![m(M::Saddr("1.2.3.4".into())), nfproto4()]),
        "ip saddr 1.2.3.4 meta nfproto ipv4 accept"
    );
    assert_eq!(
        text(vec![nfproto4(), l4(wit::L4Protocol::Tcp)]),
        "meta nfproto ipv4 meta l4proto tcp accept"
    );
    assert_eq!(
        text(vec![
            not(M::L4proto(wit::L4Protocol::Tcp)),
            m(test(vec![TCP_DPORT], vec![vec![num(22)]]))
        ]),
        "meta l4proto != tcp tcp dport 22 accept"
    );
    // nft would list the pair as `meta l4proto icmp`, which matches more.
    refused(
        vec![nfproto4(), l4(wit::L4Protocol::Icmp)],
        "match 1",
        &[
            "nft lists `meta nfproto ipv4 meta l4proto icmp` as `meta l4proto icmp` alone",
            "leave out `meta nfproto ipv4`",
        ],
    );
}

#[test]
fn a_nat_rule_needs_no_family_check_a_match_implies() {
    let nat = |matches| wit::Ruleset {
        chains: vec![chain(
            "c",
            wit::Hook::Prerouting,
            wit::ChainType::Nat,
            vec![rule(
                matches,
                wit::Action::Dnat(wit::NatTarget {
                    address: "10.0.0.1".into(),
                    last_address: None,
                    ports: None,
                    flags: wit::NatFlags::empty(),
                }),
            )],
        )],
        ..wit::Ruleset::empty()
    };
    let text = |matches| {
        validate(&nat(matches), &opts())
            .unwrap_or_else(|e| panic!("{e}"))
            .chains[0]
            .rules[0]
            .to_string()
    };
    assert_eq!(
        text(vec![m(M::L4proto(wit::L4Protocol::Icmp))]),
        "meta l4proto icmp dnat ip to 10.0.0.1"
    );
    assert_eq!(
        text(vec![m(test(
            vec![IP_SADDR, TCP_DPORT],
            vec![vec![addr("1.1.1.1"), num(22)]]
        ))]),
        "ip saddr . tcp dport { 1.1.1.1 . 22 } dnat ip to 10.0.0.1"
    );
    assert_eq!(
        text(vec![m(masked(wit::Field::Mark, num(0xff), num(1)))]),
        "meta nfproto ipv4 meta mark & 0x000000ff == 0x00000001 dnat ip to 10.0.0.1"
    );
}

#[test]
fn inline_sets_count_in_the_budget() {
    let two_sets = answer(
        wit::Hook::Input,
        vec![
            m(test(vec![TCP_DPORT], vec![vec![num(22)], vec![num(80)]])),
            m(M::Day(vec![wit::Weekday::Monday, wit::Weekday::Friday])),
        ],
    );
    // A named set and two inline ones, of 2 elements each.
    let mut options = opts();
    options.budget.sets = 3;
    options.budget.elements = 4;
    assert!(validate(&two_sets, &options).is_ok());
    options.budget.sets = 2;
    let err = validate(&two_sets, &options).unwrap_err().to_string();
    assert!(
        err.contains("the ruleset has 3 sets; the limit is 2"),
        "{err}"
    );
    options.budget.sets = 3;
    options.budget.elements = 3;
    let err = validate(&two_sets, &options).unwrap_err().to_string();
    assert!(err.contains("has 4 set elements"), "{err}");
}

/// The answer's one rule has no problem, and reads `listed` when the rest
/// of the answer (objects and sets other parts of validation check) has
/// none either.
#[track_caller]
fn accepted_where_it_is(answer: &wit::Ruleset, listed: &str) {
    match validate(answer, &opts()) {
        Ok(r) => assert_eq!(r.chains[0].rules[0].to_string(), listed),
        Err(e) => assert!(
            e.problems.iter().all(|p| !p.at.starts_with("chain")),
            "{:?}",
            e.problems
        ),
    }
}

fn rate(amount: u64, per: wit::TimeUnit) -> wit::Rate {
    wit::Rate {
        amount,
        bytes: false,
        per,
        burst: 0,
    }
}

fn limit(amount: u64, over: bool) -> M {
    M::Limit(wit::RateLimit {
        rate: rate(amount, wit::TimeUnit::Second),
        over,
    })
}

#[test]
fn rate_limits_are_checked() {
    assert_eq!(
        text(vec![m(limit(10, true))]),
        "limit rate over 10/second accept"
    );
    assert_eq!(
        text(vec![m(M::Limit(wit::RateLimit {
            rate: wit::Rate {
                amount: 1024,
                bytes: true,
                per: wit::TimeUnit::Second,
                burst: 2048,
            },
            over: false,
        }))]),
        "limit rate 1 kbytes/second burst 2 kbytes accept"
    );
    refused(
        vec![not(limit(10, false))],
        "match 1",
        &["a rate limit (use `over`) cannot be negated"],
    );
    refused(
        vec![m(limit(0, false))],
        "match 1",
        &["rate is 0 per second"],
    );

    let mut with_limit = answer(wit::Hook::Input, vec![m(M::LimitNamed("ssh".into()))]);
    with_limit.limits.push(wit::NamedLimit {
        name: "ssh".into(),
        limit: wit::RateLimit {
            rate: rate(3, wit::TimeUnit::Minute),
            over: true,
        },
    });
    // The limit objects are validated (and made) by their own part: only
    // the rule's place is looked at here.
    accepted_where_it_is(&with_limit, "limit name \"ssh\" accept");
    refused(
        vec![m(M::LimitNamed("nope".into()))],
        "match 1",
        &["unknown limit \"nope\""],
    );
}

#[test]
fn a_named_limit_cannot_be_negated() {
    let mut a = answer(wit::Hook::Input, vec![not(M::LimitNamed("ssh".into()))]);
    a.limits.push(wit::NamedLimit {
        name: "ssh".into(),
        limit: wit::RateLimit {
            rate: rate(3, wit::TimeUnit::Minute),
            over: true,
        },
    });
    let problems = validate(&a, &opts()).unwrap_err().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].at, "chain \"c\" rule 1 match 1", "{problems:?}");
    assert!(
        problems[0]
            .message
            .contains("a rate limit (use `over`) cannot be negated"),
        "{problems:?}"
    );
}

fn keyed(fields: Vec<wit::Field>, set: &str) -> M {
    M::KeyedLimit(wit::KeyedLimit {
        fields,
        set: set.into(),
        limit: wit::RateLimit {
            rate: rate(3, wit::TimeUnit::Minute),
            over: true,
        },
    })
}

#[test]
fn a_keyed_limit_needs_a_dynamic_set_with_a_timeout_and_its_key() {
    let with_sets = |matches| {
        let mut a = answer(wit::Hook::Input, matches);
        a.sets
            .push(set("guard", vec![wit::KeyType::Ipv4Addr], true));
        a
    };
    // The dynamic set is made by the sets' part of validation, which does
    // not take one yet: only the rule's place is looked at here.
    accepted_where_it_is(
        &with_sets(vec![m(keyed(vec![IP_SADDR], "guard"))]),
        "add @guard { ip saddr limit rate over 3/minute } accept",
    );
    let rule_problems = |matches| -> Vec<Problem> {
        validate(&with_sets(matches), &opts())
            .unwrap_err()
            .problems
            .into_iter()
            .filter(|p| p.at.starts_with("chain"))
            .collect()
    };
    let p = rule_problems(vec![m(keyed(vec![IP_SADDR], "v4"))]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].at, "chain \"c\" rule 1 match 1");
    assert!(
        p[0].message.contains(
            "set \"v4\", which is not dynamic (rules cannot add to it) and has no timeout"
        ),
        "{p:?}"
    );
    let p = rule_problems(vec![m(keyed(vec![TCP_DPORT], "guard"))]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].at, "chain \"c\" rule 1 match 1");
    assert!(
        p[0].message
            .contains("has key ipv4_addr; tcp dport is inet_service"),
        "{p:?}"
    );
    let p = rule_problems(vec![m(keyed(vec![IP_SADDR], "none"))]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].at, "chain \"c\" rule 1 match 1");
    assert!(p[0].message.contains("unknown set \"none\""), "{p:?}");
    let p = rule_problems(vec![not(keyed(vec![IP_SADDR], "guard"))]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].at, "chain \"c\" rule 1 match 1");
    assert!(
        p[0].message
            .contains("a rate limit (use `over`) cannot be negated"),
        "{p:?}"
    );
}

#[test]
fn an_output_interface_is_unknown_before_routing_in_every_matcher() {
    refused_on(
        wit::Hook::Prerouting,
        vec![m(test(vec![wit::Field::Oifname], vec![vec![name("wan0")]]))],
        "match 1",
        &["oifname is unknown on the prerouting hook"],
    );
    refused_on(
        wit::Hook::Output,
        vec![m(test(
            vec![wit::Field::Iifname, TCP_DPORT],
            vec![vec![name("lan0"), num(22)]],
        ))],
        "match 1",
        &["iifname is unknown on the output hook"],
    );
}
