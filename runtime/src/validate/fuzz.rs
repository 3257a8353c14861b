//! Property tests of the validator on arbitrary answers: names and strings
//! from a pool of good and nasty ones (empty, too long, path tricks, other
//! policies' names, NULs, non-ASCII, megabytes), any numbers, jump graphs
//! with loops and long paths. Whatever a policy returns, validation must not
//! panic; what it accepts must be consistent (every reference resolves, no
//! jump loop, every limit held) and must converge on the fake kernel; what
//! it rejects must come with a bounded error.
//!
//! `cargo test` runs a few hundred cases; run more with
//! `PROPTEST_CASES=20000 cargo test -p wasmwall --lib validate::fuzz`.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::bindings::v01::wit;
use crate::engine::Reconciler;
use crate::ir::{PolicyRules, SetElements};
use crate::kernel::Fake;
use crate::plan::DesiredTable;

/// The generated answers are 0.1 answers: validation sees them through the
/// 0.1 conversion, as it sees a 0.1 component's.
fn validate(answer: &wit::Ruleset, opts: &Options) -> Result<ir::Ruleset, Invalid> {
    super::validate(
        &crate::sandbox::v01::ruleset(answer.clone()),
        opts,
        &crate::world::Features::default().to_wit(),
    )
}

const MAX_RULES: usize = 40;
const MAX_SET_ELEMENTS: usize = 8;

fn opts() -> Options {
    Options {
        budget: crate::validate::budget::PolicyBudget {
            rules: MAX_RULES,
            ..Default::default()
        },
        max_set_elements: MAX_SET_ELEMENTS,
        sysctls: AllowList::new(&[]).expect("the default allow-list is valid"),
        max_sysctls: DEFAULT_MAX_SYSCTLS,
        local_time: LocalTime::UTC,
    }
}

/// For jump graphs: room for their rules.
fn graph_opts() -> Options {
    Options {
        budget: crate::validate::budget::PolicyBudget {
            rules: 1_000,
            ..Default::default()
        },
        ..opts()
    }
}

/// Chain and set names: mostly a few valid ones (so references often
/// resolve), sometimes anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c", "input", "d-1", "e_2"]).prop_map(String::from),
        1 => nasty_string(),
    ]
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "a/b",
            "port-forward/input",
            "../../etc",
            "a\0b",
            "ünïcode",
            "a b",
            "lo",
            "eth0",
            "0123456789abcdef",
            "0123456789abcde",
            "x-32-bytes-long-name-0123456789a",
            "x-33-bytes-long-name-0123456789ab",
        ])
        .prop_map(String::from),
        "\\PC{0,40}",
        (0usize..3).prop_map(|i| "z".repeat([200, 70_000, 1 << 20][i])),
    ]
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "10.0.0.1",
            "10.0.0.0/8",
            "10.1.2.3/8",
            "0.0.0.0/0",
            "192.168.0.255/32",
            "192.168.0.0/33",
            "fd00::/8",
            "fd00::1",
            "::/0",
            "::1/129",
            "300.1.2.3",
            "10.0.0.1/",
            "/8",
            "fe80::1%eth0",
        ])
        .prop_map(String::from),
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        (any::<[u8; 4]>(), 0u8..40)
            .prop_map(|(o, len)| format!("{}.{}.{}.{}/{len}", o[0], o[1], o[2], o[3])),
        nasty_string(),
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(1), Just(65535), any::<u16>()]
}

fn transport() -> impl Strategy<Value = wit::Transport> {
    prop_oneof![Just(wit::Transport::Tcp), Just(wit::Transport::Udp)]
}

fn ports() -> impl Strategy<Value = wit::Ports> {
    (transport(), port(), port()).prop_map(|(protocol, first, last)| wit::Ports {
        protocol,
        first,
        last,
    })
}

fn ifname() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["lan0", "eth0", "wg0", "br-lan", "eth0.100"])
            .prop_map(String::from),
        nasty_string(),
    ]
}

fn matcher() -> impl Strategy<Value = wit::Matcher> {
    use wit::Matcher as M;
    prop_oneof![
        ifname().prop_map(M::Iifname),
        ifname().prop_map(M::Oifname),
        address().prop_map(M::Saddr),
        address().prop_map(M::Daddr),
        prop_oneof![
            Just(wit::L4Protocol::Tcp),
            Just(wit::L4Protocol::Udp),
            Just(wit::L4Protocol::Icmp),
            Just(wit::L4Protocol::Icmpv6),
        ]
        .prop_map(M::L4proto),
        ports().prop_map(M::Sport),
        ports().prop_map(M::Dport),
        prop::collection::vec(
            prop_oneof![
                Just(wit::CtState::New),
                Just(wit::CtState::Established),
                Just(wit::CtState::Related),
                Just(wit::CtState::Invalid),
                Just(wit::CtState::Untracked),
            ],
            0..4
        )
        .prop_map(M::CtState),
        name().prop_map(M::SaddrIn),
        name().prop_map(M::DaddrIn),
        (transport(), name())
            .prop_map(|(protocol, set)| M::SportIn(wit::PortSetRef { protocol, set })),
        (transport(), name())
            .prop_map(|(protocol, set)| M::DportIn(wit::PortSetRef { protocol, set })),
    ]
}

fn nat_target() -> impl Strategy<Value = wit::NatTarget> {
    (address(), prop::option::of(port()))
        .prop_map(|(address, port)| wit::NatTarget { address, port })
}

fn action() -> impl Strategy<Value = wit::Action> {
    use wit::Action as A;
    prop_oneof![
        1 => Just(A::Accept),
        1 => Just(A::Drop),
        1 => Just(A::Reject),
        1 => Just(A::Return),
        1 => Just(A::Continue),
        1 => Just(A::Masquerade),
        3 => name().prop_map(A::Jump),
        2 => name().prop_map(A::Goto),
        1 => nat_target().prop_map(A::Dnat),
        1 => nat_target().prop_map(A::Snat),
    ]
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        3 => "[a-z ]{0,20}",
        1 => nasty_string(),
    ])
}

fn rule() -> impl Strategy<Value = wit::Rule> {
    let match_expr = || {
        (matcher(), prop::bool::weighted(0.2))
            .prop_map(|(matcher, negate)| wit::MatchExpr { matcher, negate })
    };
    (
        prop_oneof![
            6 => prop::collection::vec(match_expr(), 0..4),
            1 => prop::collection::vec(match_expr(), 20..30),
        ],
        action(),
        any::<bool>(),
        text(),
        text(),
    )
        .prop_map(
            |(matches, action, counter, log_prefix, comment)| wit::Rule {
                matches,
                action,
                counter,
                log_prefix,
                comment,
            },
        )
}

fn base_chain() -> impl Strategy<Value = wit::BaseChain> {
    (
        prop_oneof![
            Just(wit::Hook::Prerouting),
            Just(wit::Hook::Input),
            Just(wit::Hook::Forward),
            Just(wit::Hook::Output),
            Just(wit::Hook::Postrouting),
        ],
        prop_oneof![Just(wit::ChainType::Filter), Just(wit::ChainType::Nat)],
        prop_oneof![
            Just(0),
            Just(-100),
            Just(100),
            Just(i32::MIN),
            Just(i32::MAX),
            any::<i32>()
        ],
        prop_oneof![Just(wit::ChainPolicy::Accept), Just(wit::ChainPolicy::Drop)],
    )
        .prop_map(|(hook, type_, priority, policy)| wit::BaseChain {
            hook,
            type_,
            priority,
            policy,
        })
}

fn chain() -> impl Strategy<Value = wit::Chain> {
    (
        name(),
        prop::option::of(base_chain()),
        prop::collection::vec(rule(), 0..6),
    )
        .prop_map(|(name, base, rules)| wit::Chain { name, base, rules })
}

fn named_set() -> impl Strategy<Value = wit::NamedSet> {
    let elements = prop_oneof![
        prop::collection::vec(address(), 0..10).prop_map(wit::SetElements::Ipv4),
        prop::collection::vec(address(), 0..10).prop_map(wit::SetElements::Ipv6),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["fd00::1", "::", "2001:db8::ff"]).prop_map(String::from),
                any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
            ],
            0..10
        )
        .prop_map(wit::SetElements::Ipv6),
        prop::collection::vec(port(), 0..10).prop_map(wit::SetElements::Ports),
    ];
    (name(), elements).prop_map(|(name, elements)| wit::NamedSet { name, elements })
}

fn sysctl() -> impl Strategy<Value = wit::Sysctl> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "net.ipv4.ip_forward",
            "net.ipv4.conf.lan0.route_localnet",
            "net.ipv4.conf.eth0/100.forwarding",
            "net.ipv6.conf.all.forwarding",
            "net.core.rmem_max",
            "kernel.core_pattern",
            "net/../../kernel/core_pattern",
            "net.ipv4.conf.../route_localnet",
            "net.ipv4.conf.a-very-long-interface-name.forwarding",
            "net.ipv4..ip_forward",
            "net",
        ])
        .prop_map(String::from),
        nasty_string(),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "2",
            "-1",
            "4096 87380 6291456",
            "",
            "1; reboot",
            "|/bin/sh"
        ])
        .prop_map(String::from),
        nasty_string(),
    ];
    (key, value).prop_map(|(key, value)| wit::Sysctl { key, value })
}

/// Answers an honest policy might give: valid names, addresses and ports,
/// sets, jumps. They still go wrong in the ways a careless one does (a jump
/// to a base chain, a missing set, a masquerade in the wrong chain), but
/// most are accepted.
fn clean_ruleset() -> impl Strategy<Value = wit::Ruleset> {
    use wit::{Action as A, Matcher as M};
    let names = || prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from);
    let matcher = prop_oneof![
        prop::sample::select(vec!["lan0", "wan0", "lo"]).prop_map(|n| M::Iifname(n.into())),
        prop::sample::select(vec!["10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"])
            .prop_map(|a| M::Saddr(a.into())),
        (1u16..1024, 0u16..64).prop_map(|(first, span)| M::Dport(wit::Ports {
            protocol: wit::Transport::Tcp,
            first,
            last: first + span,
        })),
        Just(M::CtState(vec![
            wit::CtState::Established,
            wit::CtState::Related
        ])),
        names().prop_map(M::SaddrIn),
        names().prop_map(|set| M::DportIn(wit::PortSetRef {
            protocol: wit::Transport::Tcp,
            set,
        })),
    ];
    let action = prop_oneof![
        3 => Just(A::Accept),
        2 => Just(A::Drop),
        1 => Just(A::Return),
        1 => Just(A::Masquerade),
        1 => Just(A::Dnat(wit::NatTarget {
            address: "10.0.0.2".into(),
            port: Some(8080),
        })),
        2 => names().prop_map(A::Jump),
    ];
    let rule = (
        prop::collection::vec(
            matcher.prop_map(|matcher| wit::MatchExpr {
                matcher,
                negate: false,
            }),
            0..3,
        ),
        action,
        any::<bool>(),
    )
        .prop_map(|(matches, action, counter)| wit::Rule {
            matches,
            action,
            counter,
            log_prefix: None,
            comment: counter.then(|| "counted".to_string()),
        });
    let base = prop::sample::select(vec![
        (wit::Hook::Input, wit::ChainType::Filter),
        (wit::Hook::Forward, wit::ChainType::Filter),
        (wit::Hook::Prerouting, wit::ChainType::Nat),
        (wit::Hook::Postrouting, wit::ChainType::Nat),
    ])
    .prop_map(|(hook, type_)| wit::BaseChain {
        hook,
        type_,
        priority: 0,
        policy: wit::ChainPolicy::Accept,
    });
    let chain = (
        names(),
        prop::option::weighted(0.4, base),
        prop::collection::vec(rule, 0..4),
    )
        .prop_map(|(name, base, rules)| wit::Chain { name, base, rules });
    let set = (
        names(),
        prop_oneof![
            prop::collection::vec(
                any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
                0..6
            )
            .prop_map(wit::SetElements::Ipv4),
            prop::collection::vec(1u16.., 0..6).prop_map(wit::SetElements::Ports),
        ],
    )
        .prop_map(|(name, elements)| wit::NamedSet { name, elements });
    let sysctl = prop::sample::select(vec![
        "net.ipv4.ip_forward",
        "net.ipv4.conf.lan0.route_localnet",
    ])
    .prop_map(|key| wit::Sysctl {
        key: key.into(),
        value: "1".into(),
    });
    (
        prop::collection::vec(chain, 0..5),
        prop::collection::vec(set, 0..3),
        prop::collection::vec(sysctl, 0..2),
    )
        .prop_map(|(chains, sets, sysctls)| wit::Ruleset {
            chains,
            sets,
            sysctls,
        })
}

fn ruleset() -> impl Strategy<Value = wit::Ruleset> {
    (
        prop::collection::vec(chain(), 0..7),
        prop::collection::vec(named_set(), 0..4),
        prop::collection::vec(sysctl(), 0..3),
    )
        .prop_map(|(chains, sets, sysctls)| wit::Ruleset {
            chains,
            sets,
            sysctls,
        })
}

/// Chains `c0`..`cN` in layers: those of the first layer are base chains,
/// each of the others is jumped to from the layer before (so the deepest is
/// as many jumps deep as there are layers after the first, now and then
/// more than the kernel allows), with more jumps forward across layers
/// (diamonds), and now and then one backward (a loop when there is a way
/// back, a jump to a base chain) or to a missing chain.
fn jump_graph() -> impl Strategy<Value = wit::Ruleset> {
    (
        1usize..200,
        1usize..20,
        prop::collection::vec(any::<u16>(), 200),
        prop::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 0..100),
        prop::option::weighted(0.3, (any::<u16>(), any::<u16>(), any::<bool>())),
    )
        .prop_map(|(n, layers, callers, forward, odd)| {
            let layers = layers.min(n);
            let layer = |i: usize| i * layers / n;
            // The chains of each layer: [start, end).
            let first_of = |l: usize| (l * n).div_ceil(layers);
            let mut answer = bare_chains(n);
            for (i, pick) in callers.iter().take(n).enumerate() {
                let l = layer(i);
                if l == 0 {
                    answer.chains[i].base = answer.chains[0].base;
                    continue;
                }
                let (start, end) = (first_of(l - 1), first_of(l));
                let caller = start + usize::from(*pick) % (end - start);
                answer.chains[caller]
                    .rules
                    .push(jump(&format!("c{i}"), i % 2 == 0));
            }
            for (a, b, goto) in forward {
                let (a, b) = (usize::from(a) % n, usize::from(b) % n);
                let (from, to) = (a.min(b), a.max(b));
                if layer(from) < layer(to) {
                    answer.chains[from]
                        .rules
                        .push(jump(&format!("c{to}"), goto));
                }
            }
            if let Some((from, to, backward)) = odd {
                let from = usize::from(from) % n;
                let to = if backward {
                    usize::from(to) % (from + 1)
                } else {
                    n + usize::from(to) % 3
                };
                answer.chains[from]
                    .rules
                    .push(jump(&format!("c{to}"), false));
            }
            answer
        })
}

fn jump(target: &str, goto: bool) -> wit::Rule {
    wit::Rule {
        matches: vec![],
        action: if goto {
            wit::Action::Goto(target.into())
        } else {
            wit::Action::Jump(target.into())
        },
        counter: false,
        log_prefix: None,
        comment: None,
    }
}

/// What must hold of any answer, accepted or not.
fn check(answer: &wit::Ruleset, options: &Options) -> Result<(), TestCaseError> {
    let first = validate(answer, options);
    prop_assert_eq!(
        &first,
        &validate(answer, options),
        "validation is deterministic"
    );
    match first {
        Ok(rules) => check_accepted(&rules, options),
        Err(invalid) => {
            prop_assert!(!invalid.problems.is_empty());
            let text = invalid.to_string();
            let shown = invalid.problems.len().min(PROBLEMS_SHOWN);
            // Header, at most PROBLEMS_SHOWN cut lines and the "more" line.
            let bound = 64 + (shown + 1) * (PROBLEM_TEXT_MAX + 32);
            prop_assert!(
                text.len() <= bound,
                "error of {} bytes: {}",
                text.len(),
                text
            );
            // The log's form: one line, as short.
            let line = format!("{invalid:#}");
            prop_assert!(!line.contains('\n'), "a line break in {:?}", line);
            prop_assert!(line.len() <= bound);
            Ok(())
        }
    }
}

/// An accepted ruleset: every reference resolves, nothing exceeds a limit,
/// there is no jump loop, and it converges on the fake kernel.
fn check_accepted(rules: &ir::Ruleset, options: &Options) -> Result<(), TestCaseError> {
    let chains: HashMap<&str, &ir::Chain> =
        rules.chains.iter().map(|c| (c.name.as_str(), c)).collect();
    prop_assert_eq!(chains.len(), rules.chains.len(), "chain names are unique");
    let sets: HashMap<&str, &SetElements> = rules
        .sets
        .iter()
        .map(|s| (s.name.as_str(), &s.elements))
        .collect();
    prop_assert_eq!(sets.len(), rules.sets.len(), "set names are unique");
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.len() <= NAME_MAX
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    for name in chains.keys().chain(sets.keys()) {
        prop_assert!(valid_name(name), "accepted name {:?}", name);
    }
    for (name, elements) in &sets {
        prop_assert!(elements.len() <= options.max_set_elements, "set {}", name);
        if elements.kind.holds_ports() {
            let zero = ir::SetElement::key(ir::Element(vec![ir::Value::Number(0)]));
            prop_assert!(
                !elements.elements.contains(&zero),
                "set {} holds port 0",
                name
            );
        }
    }
    let total: usize = rules.chains.iter().map(|c| c.rules.len()).sum();
    prop_assert!(total <= options.budget.rules);

    for chain in &rules.chains {
        for rule in &chain.rules {
            prop_assert!(rule.matches.len() <= MATCHES_MAX);
            let prefixes = rule.statements.iter().filter_map(|s| match s {
                ir::Statement::Log { prefix, .. } => prefix.as_ref(),
                _ => None,
            });
            for text in rule.comment.iter().chain(prefixes) {
                prop_assert!(text.len() <= COMMENT_MAX.max(LOG_PREFIX_MAX) && !text.contains('\0'));
            }
            for m in &rule.matches {
                match m {
                    ir::Match::Iifname { name, .. } | ir::Match::Oifname { name, .. } => {
                        prop_assert!(
                            !name.is_empty() && name.len() < libc::IFNAMSIZ,
                            "ifname {:?}",
                            name
                        );
                        prop_assert!(!name.contains(['/', '\0', ' ']), "ifname {:?}", name);
                    }
                    ir::Match::Port { first, last, .. } => {
                        prop_assert!(*first != 0 && first <= last, "ports {}-{}", first, last);
                    }
                    ir::Match::AddrInSet { set, family, .. } => {
                        let kind_ok = sets
                            .get(set.as_str())
                            .is_some_and(|s| s.address_family() == Some(*family));
                        prop_assert!(kind_ok, "address set {:?}", set);
                    }
                    ir::Match::PortInSet { set, .. } => {
                        prop_assert!(
                            sets.get(set.as_str()).is_some_and(|s| s.kind.holds_ports()),
                            "port set {:?}",
                            set
                        );
                    }
                    _ => {}
                }
            }
            match &rule.action {
                ir::Action::Jump(target) | ir::Action::Goto(target) => {
                    let regular = chains
                        .get(target.as_str())
                        .is_some_and(|c| c.base.is_none());
                    prop_assert!(regular, "jump from {} to {:?}", chain.name, target);
                }
                ir::Action::Dnat(t) | ir::Action::Snat(t) => {
                    prop_assert!(t.ports.is_none_or(|p| p.first != 0));
                    let nat = chain
                        .base
                        .is_none_or(|b| b.chain_type == ir::ChainType::Nat);
                    prop_assert!(nat, "NAT in filter chain {}", chain.name);
                }
                ir::Action::Masquerade(_) => {
                    let nat = chain
                        .base
                        .is_none_or(|b| b.chain_type == ir::ChainType::Nat);
                    prop_assert!(nat, "masquerade in filter chain {}", chain.name);
                }
                _ => {}
            }
        }
    }
    let depth = jump_depth(&rules.chains);
    prop_assert!(depth.is_some(), "accepted a jump loop");
    prop_assert!(
        depth <= Some(JUMP_DEPTH_MAX),
        "accepted a chain {:?} jumps deep",
        depth
    );
    for chain in &rules.chains {
        if let Some(b) = chain.base
            && b.chain_type == ir::ChainType::Nat
        {
            prop_assert!(
                b.priority > NAT_PRIORITY_FLOOR,
                "nat chain at {}",
                b.priority
            );
        }
    }
    for s in &rules.sysctls {
        prop_assert!(options.sysctls.check(&s.key).is_ok(), "sysctl {:?}", s.key);
        prop_assert!(
            crate::sysctl::canonical_value(&s.value).as_deref() == Ok(s.value.as_str()),
            "sysctl value {:?} (accepted values are canonical)",
            s.value
        );
    }

    // What was accepted prints, plans and converges.
    let policies = [PolicyRules {
        policy: "p".into(),
        rules: rules.clone(),
    }];
    let _ = crate::plan::table_text("ww", &policies);
    let desired = DesiredTable::from_policies(&policies);
    let mut fake = Fake::new();
    let mut reconciler = Reconciler::new("ww");
    reconciler.reconcile(&mut fake, &desired).map_err(|e| {
        TestCaseError::fail(format!("the fake kernel refused an accepted ruleset: {e}"))
    })?;
    reconciler.forget();
    let again = reconciler
        .plan(&mut fake, &desired)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(again.is_empty(), "not converged:\n{}", again);
    Ok(())
}

/// How many jumps deep the deepest chain reachable from a base chain is;
/// None when the jumps loop. Kahn's algorithm, independent of the
/// validator's own searches.
fn jump_depth(chains: &[ir::Chain]) -> Option<usize> {
    let index: HashMap<&str, usize> = chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut edges: Vec<HashSet<usize>> = vec![HashSet::new(); chains.len()];
    let mut incoming = vec![0usize; chains.len()];
    for (i, c) in chains.iter().enumerate() {
        for r in &c.rules {
            if let ir::Action::Jump(t) | ir::Action::Goto(t) = &r.action
                && let Some(&j) = index.get(t.as_str())
                && edges[i].insert(j)
            {
                incoming[j] += 1;
            }
        }
    }
    let mut depth: Vec<Option<usize>> = chains.iter().map(|c| c.base.map(|_| 0)).collect();
    let mut ready: Vec<usize> = (0..chains.len()).filter(|&i| incoming[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = ready.pop() {
        seen += 1;
        for &j in &edges[i] {
            if let Some(d) = depth[i] {
                depth[j] = Some(depth[j].map_or(d + 1, |old| old.max(d + 1)));
            }
            incoming[j] -= 1;
            if incoming[j] == 0 {
                ready.push(j);
            }
        }
    }
    (seen == chains.len()).then(|| depth.iter().flatten().copied().max().unwrap_or(0))
}

proptest! {
    #[test]
    fn any_answer_is_validated_without_panic(answer in ruleset()) {
        check(&answer, &opts())?;
    }

    #[test]
    fn an_honest_looking_answer_is_validated_without_panic(answer in clean_ruleset()) {
        check(&answer, &opts())?;
    }

    #[test]
    fn any_jump_graph_is_validated_without_panic(answer in jump_graph()) {
        check(&answer, &graph_opts())?;
    }
}

#[test]
fn jumps_may_nest_as_deep_as_the_kernel_allows_and_no_deeper() {
    let limits = Options {
        budget: crate::validate::budget::PolicyBudget {
            rules: 10_000,
            chains: 10_000,
            ..Default::default()
        },
        ..opts()
    };
    // c0 (base) -> c1 -> ... -> c15: 15 jumps deep.
    assert!(validate(&chains_with_base(16), &limits).is_ok());
    let err = validate(&chains_with_base(17), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "chain \"c16\": reached through 16 nested jumps or gotos (c0 -> c1 -> c2 -> ... -> c14 -> c15 -> c16); the kernel allows at most 15"
        ),
        "{err}"
    );
    // Far deeper, and a loop at the end of it.
    let mut answer = chains_with_base(5_000);
    assert!(validate(&answer, &limits).is_err());
    answer.chains[4_999].rules.push(jump("c1", true));
    let err = validate(&answer, &limits).unwrap_err().to_string();
    assert!(err.contains("jump loop"), "{}", &err[..err.len().min(500)]);
    assert!(
        err.len() < 4_000,
        "the loop is shown cut: {} bytes",
        err.len()
    );
}

#[test]
fn a_nat_chain_must_run_after_conntrack() {
    let nat_at = |priority| wit::Ruleset {
        chains: vec![wit::Chain {
            name: "pre".into(),
            base: Some(wit::BaseChain {
                hook: wit::Hook::Prerouting,
                type_: wit::ChainType::Nat,
                priority,
                policy: wit::ChainPolicy::Accept,
            }),
            rules: vec![],
        }],
        sets: vec![],
        sysctls: vec![],
    };
    assert!(validate(&nat_at(-199), &opts()).is_ok());
    let err = validate(&nat_at(-200), &opts()).unwrap_err().to_string();
    assert!(
        err.contains("chain \"pre\": a nat chain needs a priority above -200 (connection tracking runs at -200); this one has -200"),
        "{err}"
    );
}

#[test]
fn thousands_of_problems_make_a_short_error() {
    let answer = wit::Ruleset {
        chains: vec![],
        sets: vec![wit::NamedSet {
            name: "s".into(),
            elements: wit::SetElements::Ipv4(vec!["7".repeat(1 << 20); 5]),
        }],
        sysctls: (0..1000)
            .map(|i| wit::Sysctl {
                key: format!("kernel.x{i}"),
                value: "1".into(),
            })
            .collect(),
    };
    let invalid = validate(&answer, &opts()).unwrap_err();
    assert_eq!(invalid.problems.len(), 5 + 1000);
    let text = invalid.to_string();
    assert!(
        text.starts_with("1005 problem(s) in the returned ruleset"),
        "{text}"
    );
    assert!(text.ends_with("  - ... and 985 more"), "{text}");
    // Each megabyte-long element is named by its start and its length.
    assert!(text.contains("\"... (1048576 bytes)"), "{text}");
    assert!(text.len() < 8_000, "{} bytes", text.len());
    let line = format!("{invalid:#}");
    assert!(!line.contains('\n'), "{line}");
    assert!(line.ends_with("; ... and 985 more"), "{line}");
    assert!(line.len() < 8_000, "{} bytes", line.len());
}

/// Chains `c0` (a filter base chain) to `c<n-1>`, each jumping to the next.
fn chains_with_base(n: usize) -> wit::Ruleset {
    let mut answer = bare_chains(n);
    for i in 1..n {
        answer.chains[i - 1]
            .rules
            .push(jump(&format!("c{i}"), false));
    }
    answer
}

/// Chains `c0` (a filter base chain) to `c<n-1>`, with no rules.
fn bare_chains(n: usize) -> wit::Ruleset {
    let mut chains: Vec<wit::Chain> = (0..n)
        .map(|i| wit::Chain {
            name: format!("c{i}"),
            base: None,
            rules: Vec::new(),
        })
        .collect();
    chains[0].base = Some(wit::BaseChain {
        hook: wit::Hook::Input,
        type_: wit::ChainType::Filter,
        priority: 0,
        policy: wit::ChainPolicy::Accept,
    });
    wit::Ruleset {
        chains,
        sets: vec![],
        sysctls: vec![],
    }
}

/// The properties of accepted answers are only worth something if the
/// generators reach them: a fair share of the honest-looking answers and
/// jump graphs must pass.
#[test]
fn the_generators_produce_accepted_answers_too() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut accepted = [0usize; 3];
    let mut too_deep = 0;
    const DRAWS: usize = 500;
    for _ in 0..DRAWS {
        let answer = ruleset().new_tree(&mut runner).expect("a value").current();
        accepted[0] += usize::from(validate(&answer, &opts()).is_ok());
        let answer = clean_ruleset()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        accepted[1] += usize::from(validate(&answer, &opts()).is_ok());
        let graph = jump_graph()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        match validate(&graph, &graph_opts()) {
            Ok(_) => accepted[2] += 1,
            Err(e) if e.to_string().contains("nested jumps") => too_deep += 1,
            Err(_) => {}
        }
    }
    assert!(too_deep > 0, "no jump graph too deep");
    eprintln!(
        "accepted of {DRAWS}: any {}, honest-looking {}, jump graphs {} ({too_deep} too deep)",
        accepted[0], accepted[1], accepted[2]
    );
    // The fully random answers are for the rejecting side; a few pass.
    assert!(accepted[0] > 0, "{accepted:?} of {DRAWS}");
    assert!(
        accepted[1..].iter().all(|&n| n >= DRAWS / 10),
        "{accepted:?} of {DRAWS}"
    );
}
