//! Every rejected input has a test here that checks the error names both the
//! place and the problem.

use super::*;
use crate::bindings::v01::wit::{self, Action as A, Matcher as M};
use crate::ir::SetElements;

/// These tests write 0.1 answers: validation sees them through the 0.1
/// conversion, as it sees a 0.1 component's.
fn validate(answer: &wit::Ruleset, opts: &Options) -> Result<ir::Ruleset, Invalid> {
    super::validate(
        &crate::sandbox::v01::ruleset(answer.clone()),
        opts,
        &crate::world::Features::default().to_wit(),
    )
}

fn opts() -> Options {
    Options {
        budget: crate::validate::budget::PolicyBudget {
            rules: 100,
            ..Default::default()
        },
        max_set_elements: 10,
        sysctls: AllowList::new(&[]).unwrap(),
        max_sysctls: 50,
        local_time: LocalTime::UTC,
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

fn rule(matches: Vec<wit::MatchExpr>, action: A) -> wit::Rule {
    wit::Rule {
        matches,
        action,
        counter: false,
        log_prefix: None,
        comment: None,
    }
}

fn base(name: &str, hook: wit::Hook, type_: wit::ChainType, rules: Vec<wit::Rule>) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: Some(wit::BaseChain {
            hook,
            type_,
            priority: 0,
            policy: wit::ChainPolicy::Accept,
        }),
        rules,
    }
}

fn filter_input(rules: Vec<wit::Rule>) -> wit::Chain {
    base("input", wit::Hook::Input, wit::ChainType::Filter, rules)
}

fn nat_pre(rules: Vec<wit::Rule>) -> wit::Chain {
    base("pre", wit::Hook::Prerouting, wit::ChainType::Nat, rules)
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
        sysctls: vec![],
    }
}

fn tcp(port: u16) -> M {
    M::Dport(wit::Ports {
        protocol: wit::Transport::Tcp,
        first: port,
        last: port,
    })
}

fn dnat(addr: &str, port: Option<u16>) -> A {
    A::Dnat(wit::NatTarget {
        address: addr.into(),
        port,
    })
}

/// Validates and expects exactly one problem, at `at`, whose message contains
/// every one of `needles`.
#[track_caller]
fn rejects(rs: wit::Ruleset, at: &str, needles: &[&str]) {
    let err = validate(&rs, &opts()).expect_err("expected a validation error");
    assert_eq!(err.problems.len(), 1, "expected one problem, got: {err}");
    let p = &err.problems[0];
    assert_eq!(p.at, at, "wrong place in: {p}");
    for n in needles {
        assert!(p.message.contains(n), "{p:?} does not mention {n:?}");
    }
}

#[test]
fn accepts_the_seed_ruleset() {
    let rs = wit::Ruleset {
        chains: vec![
            filter_input(vec![rule(
                vec![m(M::Daddr("127.0.0.1".into())), m(tcp(4000))],
                A::Accept,
            )]),
            nat_pre(vec![rule(
                vec![
                    m(M::Iifname("lan0".into())),
                    not(M::Saddr("192.168.0.9".into())),
                    m(tcp(80)),
                ],
                dnat("127.0.0.1", Some(4000)),
            )]),
        ],
        sets: vec![],
        sysctls: vec![wit::Sysctl {
            key: "net.ipv4.conf.lan0.route_localnet".into(),
            value: "1".into(),
        }],
    };
    let ir = validate(&rs, &opts()).unwrap();
    assert_eq!(ir.rule_count(), 2);
    assert_eq!(ir.sysctls.len(), 1);
}

#[test]
fn bad_prefix() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Saddr("192.168.0.300/24".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["192.168.0.300/24", "not an IPv4 or IPv6"],
    );
}

#[test]
fn prefix_length_too_long() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Daddr("10.0.0.0/33".into()))],
        A::Accept,
    )])]);
    rejects(rs, "chain \"input\" rule 1 match 1", &["10.0.0.0/33"]);
}

#[test]
fn prefix_with_host_bits() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Saddr("192.168.0.1/24".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["host bits", "192.168.0.0/24"],
    );
}

#[test]
fn port_zero() {
    let rs = ruleset(vec![filter_input(vec![rule(vec![m(tcp(0))], A::Accept)])]);
    rejects(rs, "chain \"input\" rule 1 match 1", &["port 0"]);
}

#[test]
fn empty_port_range() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Dport(wit::Ports {
            protocol: wit::Transport::Udp,
            first: 2000,
            last: 1000,
        }))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["2000-1000", "empty"],
    );
}

#[test]
fn negated_port_range() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![not(M::Dport(wit::Ports {
            protocol: wit::Transport::Tcp,
            first: 1,
            last: 1024,
        }))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["range cannot be negated"],
    );
}

#[test]
fn interface_name_too_long() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Iifname("a-very-long-ifname".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["a-very-long-ifname", "at most 15 bytes"],
    );
}

#[test]
fn interface_name_with_slash() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Iifname("eth/0".into()))],
        A::Accept,
    )])]);
    rejects(rs, "chain \"input\" rule 1 match 1", &["eth/0", "'/'"]);
}

#[test]
fn interface_name_dot_dot() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Iifname("..".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["interface name \"..\" is not a valid interface name"],
    );
}

#[test]
fn empty_interface_name() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Iifname("".into()))],
        A::Accept,
    )])]);
    rejects(rs, "chain \"input\" rule 1 match 1", &["empty"]);
}

#[test]
fn oifname_on_input_hook() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::Oifname("wan0".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["oifname", "input hook"],
    );
}

#[test]
fn mixed_address_families() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![
            m(M::Saddr("10.0.0.1".into())),
            m(M::Daddr("fd00::1".into())),
        ],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 2",
        &["mixes IPv4 and IPv6"],
    );
}

#[test]
fn contradictory_protocols() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::L4proto(wit::L4Protocol::Udp)), m(tcp(80))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 2",
        &["tcp", "already matches udp"],
    );
}

#[test]
fn empty_ct_state() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::CtState(vec![]))],
        A::Accept,
    )])]);
    rejects(rs, "chain \"input\" rule 1 match 1", &["no state"]);
}

#[test]
fn negated_ct_state() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![not(M::CtState(vec![wit::CtState::New]))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["ct-state", "cannot be negated"],
    );
}

#[test]
fn unknown_set() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::SaddrIn("friends".into()))],
        A::Accept,
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["unknown set \"friends\""],
    );
}

#[test]
fn set_of_wrong_kind() {
    let mut rs = ruleset(vec![filter_input(vec![rule(
        vec![m(M::SaddrIn("web".into()))],
        A::Accept,
    )])]);
    rs.sets.push(wit::NamedSet {
        name: "web".into(),
        elements: wit::SetElements::Ports(vec![80]),
    });
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["\"web\"", "holds ports"],
    );
}

#[test]
fn negated_set_membership() {
    let mut rs = ruleset(vec![filter_input(vec![rule(
        vec![not(M::SaddrIn("ok".into()))],
        A::Accept,
    )])]);
    rs.sets.push(wit::NamedSet {
        name: "ok".into(),
        elements: wit::SetElements::Ipv4(vec!["10.0.0.1".into()]),
    });
    rejects(
        rs,
        "chain \"input\" rule 1 match 1",
        &["set membership cannot be negated"],
    );
}

#[test]
fn bad_set_element() {
    let mut rs = ruleset(vec![]);
    rs.sets.push(wit::NamedSet {
        name: "hosts".into(),
        elements: wit::SetElements::Ipv4(vec!["10.0.0.1".into(), "fd00::1".into()]),
    });
    rejects(
        rs,
        "set \"hosts\" element 2",
        &["\"fd00::1\"", "not an IPv4 address"],
    );
}

#[test]
fn set_port_zero() {
    let mut rs = ruleset(vec![]);
    rs.sets.push(wit::NamedSet {
        name: "p".into(),
        elements: wit::SetElements::Ports(vec![0, 80]),
    });
    rejects(rs, "set \"p\" element 1", &["port 0"]);
}

#[test]
fn too_many_set_elements() {
    let mut rs = ruleset(vec![]);
    rs.sets.push(wit::NamedSet {
        name: "p".into(),
        elements: wit::SetElements::Ports((1..=11).collect()),
    });
    rejects(rs, "set \"p\"", &["11 elements", "limit is 10"]);
}

#[test]
fn duplicate_set() {
    let mut rs = ruleset(vec![]);
    for _ in 0..2 {
        rs.sets.push(wit::NamedSet {
            name: "p".into(),
            elements: wit::SetElements::Ports(vec![80]),
        });
    }
    rejects(rs, "set \"p\"", &["defined twice"]);
}

#[test]
fn set_elements_are_sorted_and_deduplicated() {
    let mut rs = ruleset(vec![]);
    rs.sets.push(wit::NamedSet {
        name: "h".into(),
        elements: wit::SetElements::Ipv4(vec![
            "10.0.0.2".into(),
            "10.0.0.1".into(),
            "10.0.0.2".into(),
        ]),
    });
    let ir = validate(&rs, &opts()).unwrap();
    assert_eq!(
        ir.sets[0].elements,
        SetElements::ipv4(vec![
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap()
        ])
    );
}

#[test]
fn bad_chain_name() {
    let rs = ruleset(vec![regular("in put", vec![])]);
    rejects(
        rs,
        "chain \"in put\"",
        &["invalid chain name", "letters, digits"],
    );
}

#[test]
fn chain_name_too_long() {
    let name = "c".repeat(33);
    let rs = ruleset(vec![regular(&name, vec![])]);
    rejects(rs, &format!("chain {name:?}"), &["invalid chain name"]);
}

#[test]
fn duplicate_chain() {
    let rs = ruleset(vec![regular("a", vec![]), regular("a", vec![])]);
    rejects(rs, "chain \"a\"", &["defined twice"]);
}

#[test]
fn nat_chain_on_forward() {
    let rs = ruleset(vec![base(
        "fwd",
        wit::Hook::Forward,
        wit::ChainType::Nat,
        vec![],
    )]);
    rejects(rs, "chain \"fwd\"", &["nat chain cannot hook forward"]);
}

#[test]
fn nat_chain_with_policy_drop() {
    let mut chain = nat_pre(vec![]);
    if let Some(b) = chain.base.as_mut() {
        b.policy = wit::ChainPolicy::Drop;
    }
    rejects(
        ruleset(vec![chain]),
        "chain \"pre\"",
        &["a nat chain cannot have policy drop"],
    );
}

/// A named priority is the kernel's value for the name plus the offset; a
/// sum beyond an s32 is refused. 0.2 answers only: 0.1 has numbers alone.
#[test]
fn named_priority_offset_out_of_range() {
    use crate::bindings::wit as w;
    let chain = |name: &str, priority: w::PriorityName, offset: i32| w::Chain {
        name: name.into(),
        base: Some(w::BaseChain {
            hook: w::Hook::Input,
            type_: w::ChainType::Filter,
            priority: w::Priority::Named(w::NamedPriority {
                name: priority,
                offset,
            }),
            policy: w::ChainPolicy::Accept,
        }),
        rules: vec![],
    };
    let rs = w::Ruleset {
        chains: vec![
            chain("high", w::PriorityName::Security, i32::MAX),
            chain("low", w::PriorityName::Raw, i32::MIN),
        ],
        ..w::Ruleset::empty()
    };
    let err =
        super::validate(&rs, &opts(), &crate::world::Features::default().to_wit()).unwrap_err();
    let got: Vec<(&str, &str)> = err
        .problems
        .iter()
        .map(|p| (p.at.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "chain \"high\"",
                "priority offset 2147483647 is out of range"
            ),
            (
                "chain \"low\"",
                "priority offset -2147483648 is out of range"
            ),
        ]
    );
}

#[test]
fn jump_to_missing_chain() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![],
        A::Jump("nowhere".into()),
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1",
        &["jump to unknown chain \"nowhere\""],
    );
}

#[test]
fn jump_to_base_chain() {
    let rs = ruleset(vec![
        filter_input(vec![]),
        base(
            "fwd",
            wit::Hook::Forward,
            wit::ChainType::Filter,
            vec![rule(vec![], A::Goto("input".into()))],
        ),
    ]);
    rejects(
        rs,
        "chain \"fwd\" rule 1",
        &["goto to base chain \"input\""],
    );
}

#[test]
fn jump_loop() {
    let rs = ruleset(vec![
        filter_input(vec![rule(vec![], A::Jump("a".into()))]),
        regular("a", vec![rule(vec![], A::Jump("b".into()))]),
        regular("b", vec![rule(vec![], A::Goto("a".into()))]),
    ]);
    let err = validate(&rs, &opts()).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let msg = err.problems[0].to_string();
    assert!(
        msg.contains("jump loop") && msg.contains("a -> b -> a"),
        "{msg}"
    );
}

#[test]
fn dnat_in_filter_chain() {
    let rs = ruleset(vec![filter_input(vec![rule(
        vec![m(tcp(80))],
        dnat("10.0.0.1", Some(80)),
    )])]);
    rejects(
        rs,
        "chain \"input\" rule 1",
        &["dnat is only allowed in nat chains", "filter input"],
    );
}

#[test]
fn dnat_in_regular_chain_reached_from_filter() {
    let rs = ruleset(vec![
        filter_input(vec![rule(vec![], A::Jump("fw".into()))]),
        regular("fw", vec![rule(vec![m(tcp(80))], dnat("10.0.0.1", None))]),
    ]);
    rejects(rs, "chain \"fw\" rule 1", &["dnat", "filter input"]);
}

#[test]
fn dnat_in_unreachable_chain() {
    let rs = ruleset(vec![regular(
        "fw",
        vec![rule(vec![], dnat("10.0.0.1", None))],
    )]);
    rejects(
        rs,
        "chain \"fw\" rule 1",
        &["not reached from any base chain"],
    );
}

#[test]
fn masquerade_on_prerouting() {
    let rs = ruleset(vec![nat_pre(vec![rule(vec![], A::Masquerade)])]);
    rejects(
        rs,
        "chain \"pre\" rule 1",
        &["masquerade", "postrouting", "nat prerouting"],
    );
}

#[test]
fn reject_in_nat_chain() {
    let rs = ruleset(vec![nat_pre(vec![rule(vec![], A::Reject)])]);
    rejects(
        rs,
        "chain \"pre\" rule 1",
        &["reject is only allowed in filter chains"],
    );
}

#[test]
fn nat_target_not_an_address() {
    let rs = ruleset(vec![nat_pre(vec![rule(
        vec![m(tcp(80))],
        dnat("laptop.lan", Some(80)),
    )])]);
    rejects(
        rs,
        "chain \"pre\" rule 1",
        &["\"laptop.lan\"", "not an IPv4 or IPv6 address"],
    );
}

#[test]
fn nat_port_without_transport_match() {
    let rs = ruleset(vec![nat_pre(vec![rule(
        vec![],
        dnat("10.0.0.1", Some(80)),
    )])]);
    rejects(rs, "chain \"pre\" rule 1", &["needs a tcp or udp match"]);
}

#[test]
fn nat_target_port_zero() {
    let rs = ruleset(vec![nat_pre(vec![rule(
        vec![m(tcp(80))],
        dnat("10.0.0.1", Some(0)),
    )])]);
    rejects(rs, "chain \"pre\" rule 1", &["port 0"]);
}

#[test]
fn nat_target_of_other_family() {
    let rs = ruleset(vec![nat_pre(vec![rule(
        vec![m(M::Saddr("10.0.0.0/8".into())), m(tcp(80))],
        dnat("fd00::1", Some(80)),
    )])]);
    rejects(rs, "chain \"pre\" rule 1", &["fd00::1", "address family"]);
}

#[test]
fn comment_too_long() {
    let mut r = rule(vec![], A::Accept);
    r.comment = Some("x".repeat(128));
    rejects(
        ruleset(vec![filter_input(vec![r])]),
        "chain \"input\" rule 1",
        &["comment is 128 bytes", "at most 127"],
    );
}

#[test]
fn log_prefix_with_nul() {
    let mut r = rule(vec![], A::Accept);
    r.log_prefix = Some("a\0b".into());
    rejects(
        ruleset(vec![filter_input(vec![r])]),
        "chain \"input\" rule 1 statement 1",
        &["log prefix has '\\0' at byte 1"],
    );
}

#[test]
fn log_prefix_too_long() {
    let mut r = rule(vec![], A::Accept);
    r.log_prefix = Some("x".repeat(128));
    rejects(
        ruleset(vec![filter_input(vec![r])]),
        "chain \"input\" rule 1 statement 1",
        &["log prefix is 128 bytes long; at most 127 allowed"],
    );
}

/// What nft would list unquoted or read as its own syntax: the comment of
/// issue 12 (a quote, then a table and base chain of the policy's
/// choosing), an interface name with a quote, a `$` in a log prefix, and
/// control and non-ASCII characters, each named in the problem.
#[test]
fn strings_nft_would_not_list_back_are_refused() {
    let inject = "x\" accept; }} table inet evil { chain input { type filter hook input priority -500; policy drop; }} #";
    let cases: Vec<(wit::Rule, &str)> = vec![
        (
            wit::Rule {
                comment: Some(inject.into()),
                ..rule(vec![], A::Accept)
            },
            "comment has '\"' at byte 1",
        ),
        (
            wit::Rule {
                comment: Some("a\u{1b}[2Jb".into()),
                ..rule(vec![], A::Accept)
            },
            "comment has '\\u{1b}' at byte 1",
        ),
        (
            wit::Rule {
                comment: Some("caf\u{e9}".into()),
                ..rule(vec![], A::Accept)
            },
            "comment has '\u{e9}' at byte 3",
        ),
        (
            wit::Rule {
                log_prefix: Some("cost $5".into()),
                ..rule(vec![], A::Accept)
            },
            "log prefix has '$' at byte 5",
        ),
        (
            wit::Rule {
                log_prefix: Some(String::new()),
                ..rule(vec![], A::Accept)
            },
            "log prefix is empty",
        ),
        (
            wit::Rule {
                log_prefix: Some("line\n".into()),
                ..rule(vec![], A::Accept)
            },
            "log prefix has '\\n' at byte 4",
        ),
        (
            rule(vec![m(M::Iifname("lan\"0".into()))], A::Accept),
            "match 1: interface name \"lan\\\"0\" has '\"'",
        ),
        (
            // A '*' is a wildcard only at the end.
            rule(vec![m(M::Iifname("w*an".into()))], A::Accept),
            "match 1: interface name \"w*an\" has '*'",
        ),
    ];
    for (r, fragment) in cases {
        let invalid =
            validate(&ruleset(vec![filter_input(vec![r])]), &Options::default()).unwrap_err();
        let shown = invalid.problems[0].to_string();
        assert!(
            shown.starts_with("chain \"input\" rule 1") && shown.contains(fragment),
            "{shown} does not say {fragment:?}"
        );
    }
}

/// A value an error quotes is cut: a 1 MB interface name gives a short
/// problem, with the name's length.
#[test]
fn a_huge_interface_name_is_quoted_cut() {
    let name = "e".repeat(1 << 20);
    let invalid = validate(
        &ruleset(vec![filter_input(vec![rule(
            vec![m(M::Iifname(name))],
            A::Accept,
        )])]),
        &Options::default(),
    )
    .unwrap_err();
    let message = &invalid.problems[0].message;
    assert!(message.len() < 200, "{} bytes", message.len());
    assert!(message.contains("... (1048576 bytes)"), "{message}");
}

#[test]
fn too_many_matches() {
    let r = rule(
        (0..25).map(|_| m(M::Iifname("lan0".into()))).collect(),
        A::Accept,
    );
    rejects(
        ruleset(vec![filter_input(vec![r])]),
        "chain \"input\" rule 1",
        &["25 matches", "at most 24"],
    );
}

#[test]
fn too_many_rules() {
    let rules = (0..101).map(|_| rule(vec![], A::Accept)).collect();
    let err = validate(&ruleset(vec![filter_input(rules)]), &opts()).unwrap_err();
    assert!(
        err.to_string().contains("101 rules; the limit is 100"),
        "{err}"
    );
}

#[test]
fn sysctl_outside_net() {
    let mut rs = ruleset(vec![]);
    rs.sysctls.push(wit::Sysctl {
        key: "kernel.core_pattern".into(),
        value: "1".into(),
    });
    rejects(rs, "sysctl 1", &["kernel.core_pattern", "not under `net.`"]);
}

#[test]
fn sysctl_path_trick() {
    let mut rs = ruleset(vec![]);
    rs.sysctls.push(wit::Sysctl {
        key: "net/../../kernel/core_pattern".into(),
        value: "1".into(),
    });
    rejects(rs, "sysctl 1", &["net/../../kernel/core_pattern"]);
}

#[test]
fn sysctl_malformed_key() {
    let mut rs = ruleset(vec![]);
    rs.sysctls.push(wit::Sysctl {
        key: "net.ipv4..ip_forward".into(),
        value: "1".into(),
    });
    rejects(
        rs,
        "sysctl 1",
        &["sysctl key \"net.ipv4..ip_forward\" is malformed"],
    );
}

#[test]
fn sysctl_not_allowed() {
    let mut rs = ruleset(vec![]);
    rs.sysctls.push(wit::Sysctl {
        key: "net.core.rmem_max".into(),
        value: "1".into(),
    });
    rejects(rs, "sysctl 1", &["net.core.rmem_max", "allow-list"]);
}

#[test]
fn sysctl_bad_value() {
    let mut rs = ruleset(vec![]);
    rs.sysctls.push(wit::Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "yes".into(),
    });
    rejects(
        rs,
        "sysctl 1",
        &["net.ipv4.ip_forward", "\"yes\" is not a number"],
    );
}

#[test]
fn sysctl_conflict() {
    let mut rs = ruleset(vec![]);
    for v in ["1", "0"] {
        rs.sysctls.push(wit::Sysctl {
            key: "net.ipv4.ip_forward".into(),
            value: v.into(),
        });
    }
    rejects(rs, "sysctl 2", &["requested twice", "\"1\"", "\"0\""]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let rs = ruleset(vec![filter_input(vec![
        rule(vec![m(tcp(0))], A::Accept),
        rule(vec![], A::Jump("missing".into())),
    ])]);
    let err = validate(&rs, &opts()).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    assert_eq!(err.problems[0].at, "chain \"input\" rule 1 match 1");
    assert_eq!(err.problems[1].at, "chain \"input\" rule 2");
}

#[test]
fn an_answer_over_its_budget_is_refused_before_conversion_naming_each_key() {
    let options = Options {
        budget: crate::validate::budget::PolicyBudget {
            rules: 100,
            chains: 3,
            base_chains: 1,
            sets: 2,
            elements: 10,
            ..Default::default()
        },
        ..opts()
    };
    let base = |name: &str| wit::Chain {
        name: name.into(),
        base: Some(wit::BaseChain {
            hook: wit::Hook::Input,
            type_: wit::ChainType::Filter,
            priority: 0,
            policy: wit::ChainPolicy::Accept,
        }),
        rules: vec![],
    };
    let set = |name: &str, n: u16| wit::NamedSet {
        name: name.into(),
        elements: wit::SetElements::Ports((1..=n).collect()),
    };
    let answer = wit::Ruleset {
        chains: vec![base("a"), base("b"), base("c"), base("d")],
        sets: vec![set("s1", 4), set("s2", 4), set("s3", 4)],
        sysctls: vec![],
    };
    let err = validate(&answer, &options).unwrap_err();
    let text = err.to_string();
    for expected in [
        "4 chains; the limit is 3 (limits.max_chains)",
        "4 base chains; the limit is 1 (limits.max_base_chains)",
        "3 sets; the limit is 2 (limits.max_sets)",
        "12 set elements (all its sets together); the limit is 10 (limits.max_elements)",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    assert_eq!(err.problems.len(), 4, "{text}");
    // Within every budget, the same shape passes.
    let fits = wit::Ruleset {
        chains: vec![base("a")],
        sets: vec![set("s1", 4), set("s2", 4)],
        sysctls: vec![],
    };
    assert!(validate(&fits, &options).is_ok());
}

#[test]
fn a_set_of_ports_holds_at_most_4096() {
    let ports = |n: u16| wit::Ruleset {
        chains: vec![],
        sets: vec![wit::NamedSet {
            name: "p".into(),
            elements: wit::SetElements::Ports((1..=n).collect()),
        }],
        sysctls: vec![],
    };
    let options = Options {
        max_set_elements: 100_000,
        ..Options::default()
    };
    assert!(validate(&ports(4_096), &options).is_ok());
    let err = validate(&ports(4_097), &options).unwrap_err().to_string();
    assert!(
        err.contains("has 4097 ports; a set of ports holds at most 4096"),
        "{err}"
    );
    let invalid = validate(&ports(4_097), &options).unwrap_err();
    assert_eq!(invalid.problems.len(), 1, "{invalid}");
    assert_eq!(invalid.problems[0].at, "set \"p\"", "{invalid}");
}

fn many_sysctls(n: usize) -> wit::Ruleset {
    let mut rs = ruleset(vec![]);
    rs.sysctls = (0..n)
        .map(|i| wit::Sysctl {
            key: format!("net.ipv4.conf.if{i}.forwarding"),
            value: "1".into(),
        })
        .collect();
    rs
}

#[test]
fn sysctls_beyond_the_cap_are_refused_in_one_line_without_looking_at_them() {
    let started = std::time::Instant::now();
    let err = validate(&many_sysctls(60_000), &Options::default()).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(
        format!("{err:#}").contains("the ruleset has 60000 sysctls; the limit is 1024"),
        "{err:#}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn sysctls_at_the_cap_are_checked_in_linear_time() {
    // At the highest cap a config may set: a quadratic check of 16,384 keys
    // would compare 134 million pairs.
    let options = Options {
        max_sysctls: crate::config::MAX_SYSCTLS_CEILING,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let rules = validate(&many_sysctls(options.max_sysctls), &options).unwrap();
    assert_eq!(rules.sysctls.len(), options.max_sysctls);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut twice = many_sysctls(options.max_sysctls);
    twice.sysctls[options.max_sysctls - 1].key = "net.ipv4.conf.if0.forwarding".into();
    twice.sysctls[options.max_sysctls - 1].value = "0".into();
    let err = validate(&twice, &options).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].at, "sysctl 16384");
    assert!(
        err.problems[0]
            .message
            .contains("requested twice with different values (\"1\" and \"0\")")
    );
}

#[test]
fn sysctl_values_are_kept_canonical() {
    let mut rs = ruleset(vec![]);
    for (key, value) in [
        ("net.ipv4.ip_forward", " 1"),
        ("net.ipv4.conf.lan0.route_localnet", "01"),
        ("net.ipv4.conf.lan0.rp_filter", "-0"),
        ("net.ipv4.conf.lan0.forwarding", "1\t"),
        // The same value twice, written two ways: no conflict.
        ("net.ipv4.ip_forward", "1"),
    ] {
        rs.sysctls.push(wit::Sysctl {
            key: key.into(),
            value: value.into(),
        });
    }
    let ir = validate(&rs, &opts()).unwrap();
    let values: Vec<&str> = ir.sysctls.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(values, ["1", "1", "0", "1"]);
}

#[test]
fn one_setting_asked_under_its_two_names_with_two_values_is_refused() {
    let mut rs = ruleset(vec![]);
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.forwarding", "0"),
    ] {
        rs.sysctls.push(wit::Sysctl {
            key: key.into(),
            value: value.into(),
        });
    }
    rejects(
        rs,
        "sysctl 2",
        &[
            "net.ipv4.conf.all.forwarding is requested twice",
            "\"1\" and \"0\"",
        ],
    );
}
