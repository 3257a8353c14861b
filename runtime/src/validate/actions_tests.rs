//! Every statement and action the 0.2 contract has: each refused input
//! checked for the words of its error and its place, each accepted one
//! for the IR (and text) it becomes.

use super::super::{Invalid, Options, validate};
use crate::bindings::wit::{self, Action as A, Matcher as M, Statement as S};
use crate::ir;

fn m(matcher: M) -> wit::MatchExpr {
    wit::MatchExpr {
        matcher,
        negate: false,
    }
}

fn rule(matches: Vec<M>, statements: Vec<S>, action: A) -> wit::Rule {
    wit::Rule {
        matches: matches.into_iter().map(m).collect(),
        statements,
        action,
        comment: None,
    }
}

fn base(name: &str, hook: wit::Hook, type_: wit::ChainType, priority: i32) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: Some(wit::BaseChain {
            hook,
            type_,
            priority: wit::Priority::Number(priority),
            policy: wit::ChainPolicy::Accept,
        }),
        rules: vec![],
    }
}

fn with(mut chain: wit::Chain, rules: Vec<wit::Rule>) -> wit::Chain {
    chain.rules = rules;
    chain
}

fn filter(name: &str, hook: wit::Hook, priority: i32, rules: Vec<wit::Rule>) -> wit::Chain {
    with(base(name, hook, wit::ChainType::Filter, priority), rules)
}

fn nat(name: &str, hook: wit::Hook, rules: Vec<wit::Rule>) -> wit::Chain {
    let priority = if hook == wit::Hook::Postrouting {
        100
    } else {
        -100
    };
    with(base(name, hook, wit::ChainType::Nat, priority), rules)
}

fn input(rules: Vec<wit::Rule>) -> wit::Chain {
    filter("input", wit::Hook::Input, 0, rules)
}

fn regular(name: &str, rules: Vec<wit::Rule>) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: None,
        rules,
    }
}

fn ruleset(chains: Vec<wit::Chain>) -> wit::Ruleset {
    wit::Ruleset {
        chains,
        sets: vec![],
        maps: vec![],
        counters: vec![wit::NamedCounter {
            name: "hits".into(),
        }],
        limits: vec![],
        ct_helpers: vec![wit::CtHelper {
            name: "ftp".into(),
            helper: "ftp".into(),
            protocol: wit::Transport::Tcp,
        }],
        flowtables: vec![wit::Flowtable {
            name: "ft".into(),
            priority: 0,
            devices: vec!["lan0".into()],
            hardware_offload: false,
            counter: false,
        }],
        sysctls: vec![],
    }
}

fn ports(protocol: wit::Transport, first: u16, last: u16) -> wit::Ports {
    wit::Ports {
        protocol,
        first,
        last,
    }
}

fn tcp(port: u16) -> M {
    M::Dport(ports(wit::Transport::Tcp, port, port))
}

fn udp(port: u16) -> M {
    M::Dport(ports(wit::Transport::Udp, port, port))
}

fn syn() -> M {
    M::TcpFlags(wit::TcpFlagsTest {
        flags: wit::TcpFlags::SYN,
        mask: wit::TcpFlags::FIN | wit::TcpFlags::SYN | wit::TcpFlags::RST,
    })
}

fn target(address: &str, last: Option<&str>, ports: Option<(u16, u16)>) -> wit::NatTarget {
    wit::NatTarget {
        address: address.into(),
        last_address: last.map(Into::into),
        ports: ports.map(|(first, last)| wit::PortRange { first, last }),
        flags: wit::NatFlags::empty(),
    }
}

fn rate(amount: u64, bytes: bool, per: wit::TimeUnit, burst: u32) -> wit::Rate {
    wit::Rate {
        amount,
        bytes,
        per,
        burst,
    }
}

fn log(limit: Option<wit::Rate>) -> S {
    S::Log(wit::Log {
        prefix: None,
        level: None,
        limit,
    })
}

/// On a kernel with flowtables and every helper the runtime knows.
fn check(rs: &wit::Ruleset) -> Result<ir::Ruleset, Invalid> {
    let features = crate::world::Features {
        flowtables: true,
        hardware_offload: Vec::new(),
        ct_helpers: crate::world::CT_HELPERS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect(),
    };
    validate(rs, &Options::default(), &features.to_wit())
}

/// Validates and expects exactly one problem, at `at`, whose message
/// contains every one of `needles`.
#[track_caller]
fn rejects(rs: wit::Ruleset, at: &str, needles: &[&str]) {
    let err = check(&rs).expect_err("expected a validation error");
    assert_eq!(err.problems.len(), 1, "expected one problem, got: {err}");
    let p = &err.problems[0];
    assert_eq!(p.at, at, "wrong place in: {p}");
    for n in needles {
        assert!(p.message.contains(n), "{p:?} does not mention {n:?}");
    }
}

/// The first rule of the first chain, validated.
#[track_caller]
fn accepted(rs: wit::Ruleset) -> ir::Rule {
    let ir = check(&rs).unwrap_or_else(|e| panic!("refused: {e}"));
    ir.chains[0].rules[0].clone()
}

const AT: &str = "chain \"input\" rule 1";
const AT_S1: &str = "chain \"input\" rule 1 statement 1";

#[test]
fn statements_keep_their_order_and_read_as_nft_lists_them() {
    let r = accepted(ruleset(vec![input(vec![rule(
        vec![tcp(22)],
        vec![
            S::Counter,
            S::CounterNamed("hits".into()),
            S::Mark(wit::MarkUpdate::Masked(wit::MaskedMark {
                value: 0x100,
                mask: 0xff00,
            })),
            S::CtMark(wit::MarkUpdate::Or(0x1)),
            S::Dscp(wit::DscpUpdate {
                family: wit::IpFamily::Ipv4,
                value: 46,
            }),
            S::Log(wit::Log {
                prefix: Some("ssh ".into()),
                level: Some(wit::LogLevel::Info),
                limit: Some(rate(10, false, wit::TimeUnit::Minute, 0)),
            }),
        ],
        A::Continue,
    )])]));
    assert_eq!(
        r.to_string(),
        "tcp dport 22 counter counter name \"hits\" meta mark set meta mark & 0xffff01ff | 0x00000100 ct mark set ct mark | 0x00000001 ip dscp set ef limit rate 10/minute log prefix \"ssh \" level info continue"
    );
}

#[test]
fn unknown_counter() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![S::CounterNamed("misses".into())],
        A::Accept,
    )])]);
    rejects(rs, AT_S1, &["unknown counter", "\"misses\""]);
}

#[test]
fn log_level_warn_is_the_default() {
    let level = |level| {
        let r = accepted(ruleset(vec![input(vec![rule(
            vec![],
            vec![S::Log(wit::Log {
                prefix: None,
                level,
                limit: None,
            })],
            A::Accept,
        )])]));
        r.to_string()
    };
    assert_eq!(level(Some(wit::LogLevel::Warn)), "log accept");
    assert_eq!(level(None), "log accept");
    assert_eq!(level(Some(wit::LogLevel::Emerg)), "log level emerg accept");
    assert_eq!(level(Some(wit::LogLevel::Debug)), "log level debug accept");
}

#[test]
fn limited_log_needs_continue() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![log(Some(rate(1, false, wit::TimeUnit::Second, 0)))],
        A::Drop,
    )])]);
    rejects(rs, AT_S1, &["limited log", "continue"]);
}

#[test]
fn statement_after_a_limited_log() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![
            S::Counter,
            log(Some(rate(1, false, wit::TimeUnit::Second, 0))),
            S::Counter,
        ],
        A::Continue,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 statement 3",
        &["follows the limited log of statement 2", "before the log"],
    );
}

#[test]
fn log_rate_of_zero() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![log(Some(rate(0, true, wit::TimeUnit::Second, 0)))],
        A::Continue,
    )])]);
    rejects(rs, AT_S1, &["rate is 0", "refuses"]);
}

/// The kernel took a packet rate of 1/week with a burst of 30000 and
/// refused 30501, refused a byte rate near 2^64, and took 1 byte/week with
/// a burst of 30000 (measured with nft -f on kernel 6.18).
#[test]
fn log_rate_the_kernel_cannot_count() {
    let over = |r: wit::Rate| {
        let rs = ruleset(vec![input(vec![rule(
            vec![],
            vec![log(Some(r))],
            A::Continue,
        )])]);
        rejects(rs, AT_S1, &["more than the kernel's limit can count"]);
    };
    over(rate(1, false, wit::TimeUnit::Week, 30_501));
    over(rate(u64::MAX - 5, false, wit::TimeUnit::Second, 6));
    over(rate(u64::MAX - 5, true, wit::TimeUnit::Second, 0));
    over(rate(1, true, wit::TimeUnit::Week, u32::MAX));
    for fine in [
        rate(1, false, wit::TimeUnit::Week, 30_000),
        rate(u64::MAX - 5, false, wit::TimeUnit::Second, 5),
        rate(1, true, wit::TimeUnit::Week, 30_000),
    ] {
        let r = accepted(ruleset(vec![input(vec![rule(
            vec![],
            vec![log(Some(fine))],
            A::Continue,
        )])]));
        assert!(matches!(
            r.statements[0],
            ir::Statement::Log { limit: Some(_), .. }
        ));
    }
}

#[test]
fn a_packet_rate_without_burst_gets_the_kernels_default() {
    let r = accepted(ruleset(vec![input(vec![rule(
        vec![],
        vec![log(Some(rate(3, false, wit::TimeUnit::Hour, 0)))],
        A::Continue,
    )])]));
    let ir::Statement::Log {
        limit: Some(rate), ..
    } = r.statements[0]
    else {
        panic!("{r:?}");
    };
    assert_eq!(rate.burst, 5);
    assert_eq!(r.to_string(), "limit rate 3/hour log continue");
}

fn mark_rule(update: wit::MarkUpdate) -> wit::Ruleset {
    ruleset(vec![input(vec![rule(
        vec![],
        vec![S::Mark(update)],
        A::Accept,
    )])])
}

#[test]
fn mark_value_outside_its_mask() {
    let rs = mark_rule(wit::MarkUpdate::Masked(wit::MaskedMark {
        value: 0x1ff,
        mask: 0xff,
    }));
    rejects(rs, AT_S1, &["0x1ff", "outside its mask 0xff"]);
}

#[test]
fn mark_update_that_changes_nothing() {
    for update in [
        wit::MarkUpdate::And(u32::MAX),
        wit::MarkUpdate::Or(0),
        wit::MarkUpdate::Xor(0),
        wit::MarkUpdate::Masked(wit::MaskedMark { value: 0, mask: 0 }),
    ] {
        rejects(mark_rule(update), AT_S1, &["mark update changes no bit"]);
    }
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![S::CtMark(wit::MarkUpdate::Or(0))],
        A::Accept,
    )])]);
    rejects(rs, AT_S1, &["ct mark update changes no bit"]);
}

#[test]
fn mark_updates_become_the_kernels_mask_and_xor() {
    let b = |mask, xor| ir::MarkUpdate::Bitwise { mask, xor };
    for (update, ir) in [
        (wit::MarkUpdate::Set(7), ir::MarkUpdate::Set(7)),
        (wit::MarkUpdate::And(0xff), b(0xff, 0)),
        (wit::MarkUpdate::Or(0x100), b(0xffff_feff, 0x100)),
        (wit::MarkUpdate::Xor(0x3), b(u32::MAX, 0x3)),
        (
            wit::MarkUpdate::Masked(wit::MaskedMark {
                value: 0x100,
                mask: 0xff00,
            }),
            b(0xffff_00ff, 0x100),
        ),
        // Every bit given is a plain set.
        (
            wit::MarkUpdate::Masked(wit::MaskedMark {
                value: 5,
                mask: u32::MAX,
            }),
            ir::MarkUpdate::Set(5),
        ),
    ] {
        let r = accepted(mark_rule(update));
        assert_eq!(r.statements, [ir::Statement::Mark(ir)]);
    }
}

fn dscp(family: wit::IpFamily, value: u8) -> S {
    S::Dscp(wit::DscpUpdate { family, value })
}

#[test]
fn dscp_out_of_range() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![dscp(wit::IpFamily::Ipv6, 64)],
        A::Accept,
    )])]);
    rejects(rs, AT_S1, &["DSCP 64", "0-63"]);
}

#[test]
fn dscp_of_the_other_family() {
    let rs = ruleset(vec![input(vec![rule(
        vec![M::Daddr("fd00::1".into())],
        vec![dscp(wit::IpFamily::Ipv4, 10)],
        A::Accept,
    )])]);
    rejects(rs, AT_S1, &["sets the ip DSCP", "ipv6 packets only"]);
}

#[test]
fn dscp_keeps_a_nat_rules_family_check_where_nft_lists_it() {
    let pre = nat(
        "pre",
        wit::Hook::Prerouting,
        vec![rule(
            vec![tcp(80)],
            vec![dscp(wit::IpFamily::Ipv4, 10)],
            A::Dnat(target("10.0.0.2", None, None)),
        )],
    );
    let r = accepted(ruleset(vec![pre]));
    assert_eq!(r.implied_nfproto(), None);
    assert_eq!(
        r.to_string(),
        "tcp dport 80 ip dscp set af11 dnat ip to 10.0.0.2"
    );
}

fn notrack_in(chain: wit::Chain) -> wit::Ruleset {
    ruleset(vec![with(
        chain,
        vec![rule(vec![], vec![S::Notrack], A::Accept)],
    )])
}

#[test]
fn notrack_where_conntrack_ran_already_or_never_runs() {
    let chain = |hook, priority| base("raw", hook, wit::ChainType::Filter, priority);
    let at = "chain \"raw\" rule 1 statement 1";
    rejects(
        notrack_in(chain(wit::Hook::Prerouting, 0)),
        at,
        &[
            "notrack is only allowed in chains on prerouting or output that run before connection tracking (priority below -200)",
            "filter prerouting at priority 0",
        ],
    );
    rejects(
        notrack_in(chain(wit::Hook::Prerouting, -200)),
        at,
        &["filter prerouting at priority -200"],
    );
    rejects(
        notrack_in(chain(wit::Hook::Input, -300)),
        at,
        &["filter input at priority -300"],
    );
    for hook in [wit::Hook::Prerouting, wit::Hook::Output] {
        let r = check(&notrack_in(chain(hook, -300))).unwrap();
        assert_eq!(r.chains[0].rules[0].to_string(), "notrack accept");
    }
}

#[test]
fn notrack_in_a_chain_reached_from_before_and_after_conntrack() {
    let raw = with(
        base("raw", wit::Hook::Prerouting, wit::ChainType::Filter, -300),
        vec![rule(vec![], vec![], A::Jump("untrack".into()))],
    );
    let late = with(
        base("late", wit::Hook::Prerouting, wit::ChainType::Filter, -150),
        vec![rule(vec![], vec![], A::Jump("untrack".into()))],
    );
    let untrack = regular("untrack", vec![rule(vec![], vec![S::Notrack], A::Return)]);
    assert!(check(&ruleset(vec![raw.clone(), untrack.clone()])).is_ok());
    rejects(
        ruleset(vec![raw, late, untrack]),
        "chain \"untrack\" rule 1 statement 1",
        &["runs in: filter prerouting at priority -150"],
    );
}

#[test]
fn notrack_in_a_chain_no_base_chain_reaches() {
    let rs = ruleset(vec![regular(
        "alone",
        vec![rule(vec![], vec![S::Notrack], A::Return)],
    )]);
    rejects(
        rs,
        "chain \"alone\" rule 1 statement 1",
        &[
            "notrack needs a chain on prerouting or output",
            "not reached from any base chain",
        ],
    );
}

fn helper_rule(matches: Vec<M>, name: &str) -> wit::Rule {
    rule(matches, vec![S::CtHelper(name.into())], A::Accept)
}

#[test]
fn ct_helper_after_conntrack_on_prerouting_or_output() {
    let chain = |hook, priority, r| {
        with(
            base("helpers", hook, wit::ChainType::Filter, priority),
            vec![r],
        )
    };
    let at = "chain \"helpers\" rule 1 statement 1";
    let r = check(&ruleset(vec![chain(
        wit::Hook::Prerouting,
        0,
        helper_rule(vec![tcp(21)], "ftp"),
    )]))
    .unwrap();
    assert_eq!(
        r.chains[0].rules[0].to_string(),
        "tcp dport 21 ct helper set \"ftp\" accept"
    );
    rejects(
        ruleset(vec![chain(
            wit::Hook::Prerouting,
            -300,
            helper_rule(vec![tcp(21)], "ftp"),
        )]),
        at,
        &[
            "run after connection tracking (priority above -200)",
            "filter prerouting at priority -300",
        ],
    );
    rejects(
        ruleset(vec![chain(
            wit::Hook::Input,
            0,
            helper_rule(vec![tcp(21)], "ftp"),
        )]),
        at,
        &[
            "ct-helper is only allowed in chains on prerouting or output",
            "filter input at priority 0",
        ],
    );
}

#[test]
fn unknown_ct_helper() {
    let rs = ruleset(vec![filter(
        "pre",
        wit::Hook::Prerouting,
        0,
        vec![helper_rule(vec![tcp(21)], "sip")],
    )]);
    rejects(
        rs,
        "chain \"pre\" rule 1 statement 1",
        &["unknown ct helper \"sip\""],
    );
}

#[test]
fn ct_helper_of_another_protocol() {
    let rs = ruleset(vec![filter(
        "pre",
        wit::Hook::Prerouting,
        0,
        vec![helper_rule(vec![udp(21)], "ftp")],
    )]);
    rejects(
        rs,
        "chain \"pre\" rule 1 statement 1",
        &["\"ftp\" follows tcp but the rule matches udp"],
    );
}

fn mss_rule(matches: Vec<M>, clamp: wit::MssClamp) -> wit::Rule {
    rule(matches, vec![S::Mss(clamp)], A::Accept)
}

fn forward(rules: Vec<wit::Rule>) -> wit::Chain {
    filter("fwd", wit::Hook::Forward, 0, rules)
}

#[test]
fn mss_clamp_without_a_syn_match() {
    let at = "chain \"fwd\" rule 1 statement 1";
    for matches in [vec![], vec![tcp(80)]] {
        let rs = ruleset(vec![forward(vec![mss_rule(
            matches,
            wit::MssClamp::PathMtu,
        )])]);
        rejects(rs, at, &["match TCP SYNs", "tcp-flags match with syn"]);
    }
    let not_syn = M::TcpFlags(wit::TcpFlagsTest {
        flags: wit::TcpFlags::ACK,
        mask: wit::TcpFlags::SYN | wit::TcpFlags::ACK,
    });
    let rs = ruleset(vec![forward(vec![mss_rule(
        vec![not_syn],
        wit::MssClamp::Size(1400),
    )])]);
    let err = check(&rs).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.at == at && p.message.contains("match TCP SYNs")),
        "{err}"
    );
}

/// Whether the rule is accepted also depends on the tcp-flags match
/// itself (converted with the matches): only the statement's own checks
/// are asserted here.
#[test]
fn mss_clamp_after_a_syn_match_passes_its_checks() {
    let at = "chain \"fwd\" rule 1 statement 1";
    for clamp in [wit::MssClamp::PathMtu, wit::MssClamp::Size(1400)] {
        let rs = ruleset(vec![forward(vec![mss_rule(vec![syn()], clamp)])]);
        if let Err(err) = check(&rs) {
            assert!(err.problems.iter().all(|p| p.at != at), "{err}");
        }
    }
}

#[test]
fn mss_of_zero() {
    let rs = ruleset(vec![forward(vec![mss_rule(
        vec![syn()],
        wit::MssClamp::Size(0),
    )])]);
    let err = check(&rs).unwrap_err();
    let p = err
        .problems
        .iter()
        .find(|p| p.at == "chain \"fwd\" rule 1 statement 1")
        .expect("a problem at the statement");
    assert!(p.message.contains("MSS of 0"), "{p}");
}

#[test]
fn mss_clamp_to_the_path_mtu_before_routing() {
    let rs = ruleset(vec![filter(
        "pre",
        wit::Hook::Prerouting,
        -150,
        vec![mss_rule(vec![syn()], wit::MssClamp::PathMtu)],
    )]);
    let err = check(&rs).unwrap_err();
    let p = err
        .problems
        .iter()
        .find(|p| p.at == "chain \"pre\" rule 1 statement 1")
        .expect("a problem at the statement");
    assert!(
        p.message.contains(
            "an MSS clamp to the path MTU is only allowed in chains on forward or output or postrouting"
        ) && p.message.contains("filter prerouting"),
        "{p}"
    );
}

#[test]
fn offload_outside_forward() {
    let rs = ruleset(vec![input(vec![rule(
        vec![],
        vec![S::Offload("ft".into())],
        A::Accept,
    )])]);
    rejects(
        rs,
        AT_S1,
        &[
            "offload is only allowed in filter chains on forward",
            "filter input",
        ],
    );
}

#[test]
fn offload_to_an_unknown_flowtable() {
    let rs = ruleset(vec![forward(vec![rule(
        vec![],
        vec![S::Offload("fast".into())],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"fwd\" rule 1 statement 1",
        &["unknown flowtable \"fast\""],
    );
    let ok = ruleset(vec![forward(vec![rule(
        vec![],
        vec![S::Offload("ft".into())],
        A::Accept,
    )])]);
    assert_eq!(accepted(ok).to_string(), "flow add @ft accept");
}

fn reject_rule(matches: Vec<M>, with: Option<wit::RejectWith>) -> wit::Ruleset {
    ruleset(vec![input(vec![rule(matches, vec![], A::Reject(with))])])
}

#[test]
fn reject_with_tcp_reset_needs_tcp() {
    rejects(
        reject_rule(vec![udp(53)], Some(wit::RejectWith::TcpReset)),
        AT,
        &["tcp-reset answers TCP only", "must match tcp"],
    );
    let r = accepted(reject_rule(vec![tcp(22)], Some(wit::RejectWith::TcpReset)));
    assert_eq!(r.to_string(), "tcp dport 22 reject with tcp reset");
}

#[test]
fn reject_with_icmp_needs_its_family() {
    let icmp = Some(wit::RejectWith::Icmp(wit::IcmpReject::HostUnreachable));
    let icmpv6 = Some(wit::RejectWith::Icmpv6(wit::Icmpv6Reject::AdminProhibited));
    rejects(
        reject_rule(vec![], icmp),
        AT,
        &["icmp answers ipv4 packets only", "icmpx"],
    );
    rejects(
        reject_rule(vec![M::Saddr("fd00::/8".into())], icmp),
        AT,
        &["must match ipv4"],
    );
    rejects(
        reject_rule(vec![M::Saddr("10.0.0.0/8".into())], icmpv6),
        AT,
        &["icmpv6 answers ipv6 packets only"],
    );
    let r = accepted(reject_rule(vec![M::Saddr("10.0.0.0/8".into())], icmp));
    assert_eq!(
        r.to_string(),
        "ip saddr 10.0.0.0/8 reject with icmp host-unreachable"
    );
    let r = accepted(reject_rule(vec![M::Saddr("fd00::1".into())], icmpv6));
    assert_eq!(
        r.to_string(),
        "ip6 saddr fd00::1 reject with icmpv6 admin-prohibited"
    );
}

#[test]
fn reject_defaults_and_icmpx() {
    let text = |matches, with| accepted(reject_rule(matches, with)).to_string();
    assert_eq!(
        text(vec![tcp(22)], None),
        "tcp dport 22 reject with tcp reset"
    );
    assert_eq!(text(vec![udp(53)], None), "udp dport 53 reject");
    assert_eq!(
        text(
            vec![],
            Some(wit::RejectWith::Icmpx(wit::IcmpxReject::PortUnreachable))
        ),
        "reject"
    );
    assert_eq!(
        text(
            vec![],
            Some(wit::RejectWith::Icmpx(wit::IcmpxReject::NoRoute))
        ),
        "reject with icmpx no-route"
    );
}

#[test]
fn reject_in_a_nat_chain() {
    let rs = ruleset(vec![nat(
        "pre",
        wit::Hook::Prerouting,
        vec![rule(
            vec![],
            vec![],
            A::Reject(Some(wit::RejectWith::TcpReset)),
        )],
    )]);
    let err = check(&rs).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    assert!(
        err.problems[0]
            .message
            .contains("reject is only allowed in filter chains")
    );
    assert!(err.problems[1].message.contains("must match tcp"));
}

fn dnat_rule(matches: Vec<M>, t: wit::NatTarget) -> wit::Ruleset {
    ruleset(vec![nat(
        "pre",
        wit::Hook::Prerouting,
        vec![rule(matches, vec![], A::Dnat(t))],
    )])
}

const AT_PRE: &str = "chain \"pre\" rule 1";

#[test]
fn nat_address_ranges() {
    rejects(
        dnat_rule(vec![], target("10.0.0.9", Some("10.0.0.2"), None)),
        AT_PRE,
        &["NAT range 10.0.0.9-10.0.0.2 is empty"],
    );
    rejects(
        dnat_rule(vec![], target("10.0.0.1", Some("fd00::2"), None)),
        AT_PRE,
        &["mixes IPv4 and IPv6"],
    );
    rejects(
        dnat_rule(vec![], target("10.0.0.1", Some("10.0.0"), None)),
        AT_PRE,
        &["NAT range end \"10.0.0\" is not an IPv4 or IPv6 address"],
    );
    rejects(
        dnat_rule(
            vec![M::Daddr("fd00::1".into())],
            target("10.0.0.1", Some("10.0.0.5"), None),
        ),
        AT_PRE,
        &["not of the address family the rule matches"],
    );
    let r = accepted(dnat_rule(
        vec![],
        target("10.0.0.1", Some("10.0.0.5"), None),
    ));
    assert_eq!(
        r.to_string(),
        "meta nfproto ipv4 dnat ip to 10.0.0.1-10.0.0.5"
    );
    let r = accepted(dnat_rule(
        vec![],
        target("10.0.0.1", Some("10.0.0.1"), None),
    ));
    assert_eq!(r.to_string(), "meta nfproto ipv4 dnat ip to 10.0.0.1");
}

#[test]
fn nat_port_ranges() {
    rejects(
        dnat_rule(vec![tcp(80)], target("10.0.0.1", None, Some((90, 80)))),
        AT_PRE,
        &["NAT target port range 90-80 is empty"],
    );
    rejects(
        dnat_rule(vec![tcp(80)], target("10.0.0.1", None, Some((0, 80)))),
        AT_PRE,
        &["port 0"],
    );
    rejects(
        dnat_rule(
            vec![M::L4proto(wit::L4Protocol::Icmp)],
            target("10.0.0.1", None, Some((80, 80))),
        ),
        AT_PRE,
        &["NAT target port needs a tcp or udp match"],
    );
    let mut t = target("fd00::1", Some("fd00::5"), Some((8080, 8090)));
    t.flags = wit::NatFlags::RANDOM | wit::NatFlags::PERSISTENT;
    let r = accepted(dnat_rule(vec![tcp(80)], t));
    assert_eq!(
        r.to_string(),
        "meta nfproto ipv6 tcp dport 80 dnat ip6 to [fd00::1]-[fd00::5]:8080-8090 random,persistent"
    );
}

#[test]
fn snat_ranges_and_flags() {
    let mut t = target("203.0.113.1", Some("203.0.113.4"), Some((1000, 2000)));
    t.flags = wit::NatFlags::FULLY_RANDOM;
    let rs = ruleset(vec![nat(
        "post",
        wit::Hook::Postrouting,
        vec![rule(vec![udp(53)], vec![], A::Snat(t))],
    )]);
    assert_eq!(
        accepted(rs).to_string(),
        "meta nfproto ipv4 udp dport 53 snat ip to 203.0.113.1-203.0.113.4:1000-2000 fully-random"
    );
}

fn post(rules: Vec<wit::Rule>) -> wit::Chain {
    nat("post", wit::Hook::Postrouting, rules)
}

#[test]
fn masquerade_to_ports() {
    let ports = |first, last| Some(wit::PortRange { first, last });
    rejects(
        ruleset(vec![post(vec![rule(
            vec![],
            vec![],
            A::Masquerade(ports(1000, 2000)),
        )])]),
        "chain \"post\" rule 1",
        &["a masquerade port needs a tcp or udp match"],
    );
    rejects(
        ruleset(vec![post(vec![rule(
            vec![tcp(80)],
            vec![],
            A::Masquerade(ports(2000, 1000)),
        )])]),
        "chain \"post\" rule 1",
        &["masquerade port range 2000-1000 is empty"],
    );
    let rs = ruleset(vec![post(vec![rule(
        vec![tcp(80)],
        vec![],
        A::Masquerade(ports(1000, 2000)),
    )])]);
    assert_eq!(
        accepted(rs).to_string(),
        "tcp dport 80 masquerade to :1000-2000"
    );
    rejects(
        ruleset(vec![nat(
            "pre",
            wit::Hook::Prerouting,
            vec![rule(vec![], vec![], A::Masquerade(None))],
        )]),
        AT_PRE,
        &[
            "masquerade is only allowed in nat chains on postrouting",
            "nat prerouting",
        ],
    );
}

#[test]
fn redirect_to_ports() {
    let ports = |first, last| Some(wit::PortRange { first, last });
    rejects(
        ruleset(vec![post(vec![rule(vec![], vec![], A::Redirect(None))])]),
        "chain \"post\" rule 1",
        &[
            "redirect is only allowed in nat chains on prerouting or output",
            "nat postrouting",
        ],
    );
    rejects(
        ruleset(vec![nat(
            "pre",
            wit::Hook::Prerouting,
            vec![rule(vec![udp(53)], vec![], A::Redirect(ports(0, 0)))],
        )]),
        AT_PRE,
        &["redirect port 0"],
    );
    let text = |p| {
        let rs = ruleset(vec![nat(
            "pre",
            wit::Hook::Prerouting,
            vec![rule(vec![tcp(80)], vec![], A::Redirect(p))],
        )]);
        accepted(rs).to_string()
    };
    assert_eq!(text(None), "tcp dport 80 redirect");
    assert_eq!(text(ports(8080, 8080)), "tcp dport 80 redirect to :8080");
    assert_eq!(
        text(ports(8080, 8090)),
        "tcp dport 80 redirect to :8080-8090"
    );
}

#[test]
fn cut_flows_is_a_flag_of_the_rule_not_a_kernel_statement() {
    let plain = accepted(ruleset(vec![input(vec![rule(
        vec![udp(51820)],
        vec![S::Counter],
        A::Accept,
    )])]));
    let flagged = accepted(ruleset(vec![input(vec![rule(
        vec![udp(51820)],
        vec![S::CutFlows, S::Counter],
        A::Accept,
    )])]));
    assert!(flagged.cut_flows && !plain.cut_flows);
    // The same rule in the kernel: same text, same statements.
    assert_eq!(flagged.to_string(), plain.to_string());
    assert_eq!(flagged.statements, plain.statements);
    rejects(
        ruleset(vec![input(vec![rule(
            vec![],
            vec![S::CutFlows, S::CutFlows],
            A::Accept,
        )])]),
        AT,
        &["`cut-flows` more than once"],
    );
}
