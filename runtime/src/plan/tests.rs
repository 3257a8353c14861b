//! The planner's transactions for hand-made cases, compared as nft text, and
//! by property on random tables disturbed at random: every plan converges
//! on the simulated kernel and never touches a kept policy's rules.

use proptest::prelude::*;

use super::*;
use crate::ir::*;

const T: &str = "ww";

fn rule(matches: Vec<Match>, action: Action) -> Rule {
    Rule {
        matches,
        statements: vec![],
        action,
        comment: None,
        cut_flows: false,
    }
}

fn dport(port: u16) -> Match {
    Match::Port {
        dir: Dir::Destination,
        proto: Transport::Tcp,
        first: port,
        last: port,
        negate: false,
    }
}

fn input(policy: ChainPolicy) -> Option<BaseChain> {
    Some(BaseChain {
        hook: Hook::Input,
        chain_type: ChainType::Filter,
        priority: 0,
        policy,
    })
}

fn ports(n: &[u16]) -> SetElements {
    SetElements::ports(n.to_vec())
}

/// One policy "pf": an input chain of `ports` accepts, a regular chain, and
/// a port set.
fn table(policy: ChainPolicy, input_ports: &[u16], set: &[u16]) -> DesiredTable {
    let mut rules: Vec<Rule> = input_ports
        .iter()
        .map(|p| rule(vec![dport(*p)], Action::Accept))
        .collect();
    rules.push(rule(
        vec![Match::PortInSet {
            dir: Dir::Destination,
            proto: Transport::Tcp,
            set: "allowed".into(),
        }],
        Action::Jump("more".into()),
    ));
    DesiredTable::from_policies(&[PolicyRules {
        policy: "pf".into(),
        rules: Ruleset {
            chains: vec![
                Chain {
                    name: "input".into(),
                    base: input(policy),
                    rules,
                },
                Chain {
                    name: "more".into(),
                    base: None,
                    rules: vec![rule(vec![], Action::Accept)],
                },
            ],
            sets: vec![NamedSet {
                name: "allowed".into(),
                elements: ports(set),
            }],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: vec![],
        },
    }])
}

/// A fake kernel: the simulated table and its handle counter.
struct Fake {
    table: Option<ObservedTable>,
    next: u64,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            table: None,
            next: 1,
        }
    }

    fn apply(&mut self, tx: &Transaction) -> Result<(), Rejected> {
        let mut next = self.next;
        self.table = simulate(self.table.clone(), tx, &mut |_| {
            next += 1;
            Some(next)
        })?;
        self.next = next;
        Ok(())
    }

    fn converge(&mut self, desired: &DesiredTable) -> Transaction {
        let tx = plan(T, desired, self.table.as_ref()).unwrap();
        self.apply(&tx).unwrap_or_else(|e| panic!("{e}\n{tx}"));
        tx
    }
}

/// The text with handles and hashes masked, so goldens do not depend on
/// hash values.
fn masked(tx: &Transaction) -> String {
    tx.to_string()
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, h)) if l.contains("  # ") && h.len() == 16 => format!("{head} <hash>"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_absent_table_is_created_whole() {
    let tx = plan(T, &table(ChainPolicy::Drop, &[22], &[80, 443]), None).unwrap();
    let expected = "\
add table inet ww
add set inet ww pf/allowed { type inet_service; }
add element inet ww pf/allowed { 80, 443 }
add chain inet ww pf/input { type filter hook input priority filter; policy drop; }
add chain inet ww pf/more
add rule inet ww pf/input tcp dport 22 accept  # pf <hash>
add rule inet ww pf/input tcp dport @pf/allowed jump pf/more  # pf <hash>
add rule inet ww pf/more accept  # pf <hash>";
    assert_eq!(masked(&tx), expected, "got:\n{tx}");
}

#[test]
fn nothing_is_planned_when_the_kernel_already_matches() {
    let mut fake = Fake::new();
    let desired = table(ChainPolicy::Drop, &[22, 80], &[1]);
    fake.converge(&desired);
    let again = plan(T, &desired, fake.table.as_ref()).unwrap();
    assert!(again.is_empty(), "{again}");
    assert_eq!(again.summary(), "no changes");
}

#[test]
fn one_changed_rule_is_one_delete_and_one_insert_in_place() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[1, 2, 3, 4, 5], &[]));
    let handle_of_4 = fake
        .table
        .as_ref()
        .unwrap()
        .chain("pf/input")
        .unwrap()
        .rules[3]
        .handle;
    let handle_of_3 = handle_of_4 - 1;
    let tx = fake.converge(&table(ChainPolicy::Drop, &[1, 2, 33, 4, 5], &[]));
    let expected = format!(
        "delete rule inet ww pf/input handle {handle_of_3}  # pf <hash>\n\
         insert rule inet ww pf/input position {handle_of_4} tcp dport 33 accept  # pf <hash>"
    );
    assert_eq!(masked(&tx), expected);
}

#[test]
fn a_moved_rule_moves_alone() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[1, 2, 3, 4], &[]));
    // 4 to the front: one delete, one insert before rule 1.
    let tx = fake.converge(&table(ChainPolicy::Drop, &[4, 1, 2, 3], &[]));
    assert_eq!(tx.summary(), "1 rule delete, 1 rule add", "{tx}");
    assert!(matches!(
        tx.ops[1],
        Op::AddRule {
            position: Position::Before(_),
            ..
        }
    ));
}

#[test]
fn set_changes_are_element_operations() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[22], &[80, 443]));
    let tx = fake.converge(&table(ChainPolicy::Drop, &[22], &[80, 8080]));
    assert_eq!(
        tx.to_string(),
        "delete element inet ww pf/allowed { 443 }\nadd element inet ww pf/allowed { 8080 }\n"
    );
}

#[test]
fn a_policy_change_updates_the_chain_and_keeps_its_rules() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[22], &[]));
    let tx = fake.converge(&table(ChainPolicy::Accept, &[22], &[]));
    assert_eq!(
        tx.to_string(),
        "add chain inet ww pf/input { type filter hook input priority filter; policy accept; }  # policy was drop\n"
    );
}

#[test]
fn a_changed_hook_makes_the_chain_again() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[22], &[]));
    let mut desired = table(ChainPolicy::Drop, &[22], &[]);
    desired.chains[0].base.as_mut().unwrap().priority = 10;
    let tx = fake.converge(&desired);
    assert_eq!(
        tx.summary(),
        "1 rule delete, 1 chain delete, 1 chain add, 2 rule adds",
        "{tx}"
    );
}

#[test]
fn a_set_of_another_kind_is_made_again_with_the_rules_using_it() {
    let mut fake = Fake::new();
    fake.converge(&table(ChainPolicy::Drop, &[22], &[80]));
    // Someone replaced the set by one with addresses.
    let t = fake.table.as_mut().unwrap();
    t.sets[0].elements = Some(SetElements::ipv4(vec![]));
    let tx = fake.converge(&table(ChainPolicy::Drop, &[22], &[80]));
    assert_eq!(
        tx.summary(),
        "1 rule delete, 1 set delete, 1 set add, 1 rule add",
        "{tx}"
    );
}

#[test]
fn rules_made_by_hand_are_replaced_and_foreign_chains_removed() {
    let mut fake = Fake::new();
    let desired = table(ChainPolicy::Drop, &[22], &[]);
    fake.converge(&desired);
    let t = fake.table.as_mut().unwrap();
    t.chains[0].rules.insert(
        0,
        ObservedRule {
            handle: 900,
            tag: None,
            refs: vec![],
        },
    );
    t.chains.push(ObservedChain {
        name: "mine".into(),
        kind: ChainKind::Foreign,
        rules: vec![],
    });
    let tx = fake.converge(&desired);
    assert_eq!(
        tx.to_string(),
        "delete rule inet ww pf/input handle 900  # not made by wasmwall\ndelete chain inet ww mine\n"
    );
}

#[test]
fn a_kept_policy_keeps_its_last_known_good_rules() {
    let mut fake = Fake::new();
    let mut both = table(ChainPolicy::Drop, &[22], &[80]);
    let other = DesiredTable::from_policies(&[PolicyRules {
        policy: "other".into(),
        rules: Ruleset {
            chains: vec![Chain {
                name: "input".into(),
                base: input(ChainPolicy::Accept),
                rules: vec![rule(vec![dport(1)], Action::Drop)],
            }],
            sets: vec![],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: vec![],
        },
    }]);
    both.chains.extend(other.chains.clone());
    fake.converge(&both);
    // "pf" failed this time: only "other" is evaluated, and it changed.
    let mut next = DesiredTable::from_policies(&[PolicyRules {
        policy: "other".into(),
        rules: Ruleset {
            chains: vec![Chain {
                name: "input".into(),
                base: input(ChainPolicy::Accept),
                rules: vec![rule(vec![dport(2)], Action::Drop)],
            }],
            sets: vec![],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: vec![],
        },
    }]);
    next.kept = vec!["pf".into()];
    let tx = fake.converge(&next);
    assert_eq!(tx.summary(), "1 rule delete, 1 rule add", "{tx}");
    let t = fake.table.as_ref().unwrap();
    assert_eq!(t.chain("pf/input").unwrap().rules.len(), 2, "pf untouched");
    assert!(t.set("pf/allowed").is_some());
}

#[test]
fn a_table_without_the_marker_is_refused() {
    let foreign = ObservedTable::default();
    let err = plan(T, &DesiredTable::default(), Some(&foreign)).unwrap_err();
    assert!(err.to_string().contains("not made by wasmwall"), "{err}");
    assert!(remove_table(T, Some(&foreign)).is_err());
    assert!(remove_table(T, None).unwrap().is_empty());
}

#[test]
fn longest_increasing_run() {
    let member = longest_increasing(&[3, 0, 1, 4, 2]);
    assert_eq!(member, vec![false, true, true, false, true]);
    assert!(longest_increasing(&[]).is_empty());
}

// ---- Property test: random (desired, observed) pairs against the fake. ----

/// A small deterministic generator, driven by proptest's seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A random table of one or two policies, from a small pool of rules so
/// that two draws overlap (duplicates within a chain included).
fn random_desired(g: &mut Gen) -> DesiredTable {
    let mut policies = Vec::new();
    for policy in ["p", "q"] {
        if g.chance(25) {
            continue;
        }
        let set_kind = g.below(3);
        let has_set = g.chance(70);
        let elements =
            match set_kind {
                0 => SetElements::ports(sorted((0..g.below(5)).map(|_| 1 + g.below(6) as u16))),
                1 => SetElements::ipv4(sorted(
                    (0..g.below(5)).map(|_| std::net::Ipv4Addr::new(10, 0, 0, g.below(6) as u8)),
                )),
                _ => SetElements::ipv6(sorted((0..g.below(5)).map(|_| {
                    std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, g.below(6) as u16)
                }))),
            };
        let mut pool = vec![
            rule(vec![], Action::Accept),
            rule(vec![], Action::Drop),
            rule(vec![dport(1)], Action::Accept),
            rule(vec![dport(2)], Action::Drop),
            rule(vec![], Action::Jump("a".into())),
            rule(vec![], Action::Jump("b".into())),
        ];
        if has_set {
            pool.push(rule(
                vec![match set_kind {
                    0 => Match::PortInSet {
                        dir: Dir::Destination,
                        proto: Transport::Tcp,
                        set: "s".into(),
                    },
                    1 => Match::AddrInSet {
                        dir: Dir::Source,
                        family: Family::V4,
                        set: "s".into(),
                    },
                    _ => Match::AddrInSet {
                        dir: Dir::Source,
                        family: Family::V6,
                        set: "s".into(),
                    },
                }],
                Action::Accept,
            ));
        }
        let draw = |g: &mut Gen, no_jumps_to: &[&str]| -> Vec<Rule> {
            (0..g.below(7))
                .map(|_| pool[g.below(pool.len())].clone())
                .filter(
                    |r| !matches!(&r.action, Action::Jump(c) if no_jumps_to.contains(&c.as_str())),
                )
                .collect()
        };
        let base = |g: &mut Gen, hook| BaseChain {
            hook,
            chain_type: ChainType::Filter,
            priority: [0, 10][g.below(2)],
            policy: [ChainPolicy::Accept, ChainPolicy::Drop][g.below(2)],
        };
        let mut chains = vec![
            Chain {
                name: "in".into(),
                base: Some(base(g, Hook::Input)),
                rules: draw(g, &[]),
            },
            Chain {
                name: "a".into(),
                base: None,
                rules: draw(g, &["a"]),
            },
            Chain {
                name: "b".into(),
                base: None,
                rules: draw(g, &["a", "b"]),
            },
        ];
        if g.chance(50) {
            chains.push(Chain {
                name: "fwd".into(),
                base: Some(base(g, Hook::Forward)),
                rules: draw(g, &[]),
            });
        }
        let with_c = g.chance(50);
        if with_c {
            chains.push(Chain {
                name: "c".into(),
                base: None,
                rules: draw(g, &["a", "b"]),
            });
        }
        let mut sets = if has_set {
            vec![NamedSet {
                name: "s".into(),
                elements,
            }]
        } else {
            vec![]
        };
        maps_and_intervals(g, with_c, &mut sets, &mut chains[0].rules);
        policies.push(PolicyRules {
            policy: policy.into(),
            rules: Ruleset {
                chains,
                sets,
                objects: Vec::new(),
                flowtables: Vec::new(),
                sysctls: vec![],
            },
        });
    }
    DesiredTable::from_policies(&policies)
}

/// Random maps and interval sets, and vmap rules in the base chain (whose
/// verdicts jump to "a", "b" and, when it exists, "c"): kinds whose
/// elements refer to chains that come and go, and data that changes.
fn maps_and_intervals(g: &mut Gen, with_c: bool, sets: &mut Vec<NamedSet>, base: &mut Vec<Rule>) {
    let port = |g: &mut Gen| Element(vec![Value::Number(1 + g.below(5) as u32)]);
    let mut verdicts = vec![
        Verdict::Accept,
        Verdict::Drop,
        Verdict::Jump("a".into()),
        Verdict::Goto("b".into()),
    ];
    if with_c {
        verdicts.push(Verdict::Jump("c".into()));
    }
    let verdict_elements = |g: &mut Gen| -> Vec<SetElement> {
        let mut seen = std::collections::HashSet::new();
        (0..g.below(5))
            .map(|_| (port(g), verdicts[g.below(verdicts.len())].clone()))
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(key, v)| SetElement {
                key,
                data: Some(Data::Verdict(v)),
            })
            .collect()
    };
    let verdict_kind = SetKind {
        data: Some(MapData::Verdict),
        ..SetKind::plain(Key(vec![KeyType::InetService]))
    };
    if g.chance(60) {
        let elements = verdict_elements(g);
        sets.push(NamedSet {
            name: "vm".into(),
            elements: SetElements::new(verdict_kind.clone(), elements),
        });
        base.push(rule(
            vec![],
            Action::Vmap(MapLookup {
                fields: vec![Field::Dport(Transport::Tcp)],
                map: MapSource::Named("vm".into()),
            }),
        ));
    }
    let inline = verdict_elements(g);
    if !inline.is_empty() && g.chance(40) {
        base.push(rule(
            vec![],
            Action::Vmap(MapLookup {
                fields: vec![Field::Dport(Transport::Tcp)],
                map: MapSource::Inline(SetElements::new(verdict_kind, inline)),
            }),
        ));
    }
    if g.chance(50) {
        let mut seen = std::collections::HashSet::new();
        let elements = (0..g.below(5))
            .map(|_| (port(g), 1 + g.below(3) as u8))
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(key, host)| SetElement {
                key,
                data: Some(Data::Values(Element(vec![Value::Addr(
                    std::net::Ipv4Addr::new(192, 168, 0, host).into(),
                )]))),
            })
            .collect();
        let kind = SetKind {
            data: Some(MapData::Values(Key(vec![KeyType::Ipv4Addr]))),
            ..SetKind::plain(Key(vec![KeyType::InetService]))
        };
        sets.push(NamedSet {
            name: "dm".into(),
            elements: SetElements::new(kind, elements),
        });
    }
    if g.chance(50) {
        let nets: Vec<Value> = (0..g.below(4))
            .map(|_| {
                let n = g.below(4) as u8;
                Value::Prefix(
                    format!("10.{n}.0.0/{}", [15, 16][g.below(2)])
                        .parse()
                        .unwrap(),
                )
            })
            .collect();
        let elements = merge_intervals(KeyType::Ipv4Addr, &nets)
            .into_iter()
            .map(|v| SetElement::key(Element(vec![v])))
            .collect();
        let kind = SetKind {
            intervals: true,
            ..SetKind::plain(Key(vec![KeyType::Ipv4Addr]))
        };
        sets.push(NamedSet {
            name: "iv".into(),
            elements: SetElements::new(kind, elements),
        });
    }
}

fn sorted<T: Ord>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = it.collect();
    v.sort();
    v.dedup();
    v
}

/// Hand edits and leftovers on a table the runtime made: what drift and an
/// earlier policy version leave behind.
fn disturb(g: &mut Gen, fake: &mut Fake) {
    let Some(t) = fake.table.as_mut() else { return };
    for _ in 0..g.below(6) {
        fake.next += 1;
        let handle = fake.next;
        match g.below(8) {
            0 if !t.chains.is_empty() => {
                // A rule deleted by hand.
                let c = g.below(t.chains.len());
                if !t.chains[c].rules.is_empty() {
                    let r = g.below(t.chains[c].rules.len());
                    t.chains[c].rules.remove(r);
                }
            }
            1 if !t.chains.is_empty() => {
                // A rule added by hand, without a tag.
                let c = g.below(t.chains.len());
                let at = g.below(t.chains[c].rules.len() + 1);
                t.chains[c].rules.insert(
                    at,
                    ObservedRule {
                        handle,
                        tag: None,
                        refs: vec![],
                    },
                );
            }
            2 if !t.chains.is_empty() => {
                // Two rules swapped.
                let c = g.below(t.chains.len());
                let n = t.chains[c].rules.len();
                if n > 1 {
                    t.chains[c].rules.swap(g.below(n), g.below(n));
                }
            }
            3 => {
                // A chain made by hand.
                t.chains.push(ObservedChain {
                    name: format!("hand{handle}").into(),
                    kind: if g.chance(50) {
                        ChainKind::Foreign
                    } else {
                        ChainKind::Regular
                    },
                    rules: vec![ObservedRule {
                        handle,
                        tag: None,
                        refs: vec![],
                    }],
                });
            }
            6 if !t.sets.is_empty() => {
                // A map element's data changed by hand.
                let s = g.below(t.sets.len());
                if let Some(e) = t.sets[s].elements.as_mut()
                    && let Some(first) = e.elements.first_mut()
                    && let Some(Data::Values(v)) = &mut first.data
                {
                    v.0 = vec![Value::Addr("192.168.0.99".parse().unwrap())];
                }
            }
            4 if !t.sets.is_empty() => {
                // Elements removed or added by hand.
                let s = g.below(t.sets.len());
                if let Some(e) = t.sets[s].elements.as_mut() {
                    let changed = if e.kind.holds_ports() {
                        let mut elements: Vec<SetElement> =
                            e.elements.iter().skip(1).cloned().collect();
                        elements.push(SetElement::key(Element(vec![Value::Number(99)])));
                        SetElements::new(e.kind.clone(), elements)
                    } else {
                        e.empty_like()
                    };
                    *e = changed;
                }
            }
            5 => {
                // Every base chain's policy set to accept by hand.
                for c in &mut t.chains {
                    if let ChainKind::Base(b) = &mut c.kind {
                        b.policy = ChainPolicy::Accept;
                    }
                }
            }
            _ => {
                // A set made by hand, of a kind the runtime never makes.
                t.sets.push(ObservedSet {
                    name: format!("hand{handle}").into(),
                    elements: None,
                    verdicts: false,
                });
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plans_converge_on_the_fake_kernel(seed in 1u64..) {
        let mut g = Gen(seed);
        let mut fake = Fake::new();
        if g.chance(80) {
            let before = random_desired(&mut g);
            fake.converge(&before);
            disturb(&mut g, &mut fake);
        }
        let desired = random_desired(&mut g);
        let tx = plan(T, &desired, fake.table.as_ref()).unwrap();
        fake.apply(&tx).map_err(|e| TestCaseError::fail(format!("{e}\n{tx}")))?;
        let got = fake.table.as_ref().expect("the table exists").normalized();
        prop_assert_eq!(got, desired.expected().normalized(), "{}", tx);
        let again = plan(T, &desired, fake.table.as_ref()).unwrap();
        prop_assert!(again.is_empty(), "second plan not empty:\n{}", again);
    }

    #[test]
    fn a_kept_rule_is_never_touched(seed in 1u64..) {
        // Rules present in both, in the same relative order, are kept: the
        // plan never deletes more than it must.
        let mut g = Gen(seed);
        let mut fake = Fake::new();
        let before = random_desired(&mut g);
        fake.converge(&before);
        let tx = plan(T, &before, fake.table.as_ref()).unwrap();
        prop_assert!(tx.is_empty());
        // Append one rule to every chain: only adds.
        let mut after = before.clone();
        for c in &mut after.chains {
            c.rules.push(DesiredRule {
                rule: rule(vec![dport(7)], Action::Drop),
                tag: RuleTag { policy: "p".into(), hash: "0000000000000007".into() },
            });
        }
        let tx = plan(T, &after, fake.table.as_ref()).unwrap();
        prop_assert!(tx.ops.iter().all(|op| matches!(op, Op::AddRule { .. })), "{}", tx);
        prop_assert_eq!(tx.ops.len(), after.chains.len());
    }
}

/// A rule's named limit and its keyed limit's set are what it refers to,
/// by their kernel names; its inline sets are its own.
#[test]
fn a_rule_refers_to_its_limit_object_and_its_keyed_limits_set() {
    let rate = Rate {
        amount: 3,
        bytes: false,
        per: TimeUnit::Minute,
        burst: Rate::DEFAULT_PACKET_BURST,
    };
    let limited = rule(
        vec![
            Match::Test {
                fields: vec![Field::Dport(Transport::Tcp)],
                against: Against::Set(InlineSet {
                    elements: vec![
                        Element(vec![Value::Number(22)]),
                        Element(vec![Value::Number(80)]),
                    ],
                    intervals: false,
                }),
                negate: false,
            },
            Match::LimitNamed("ssh".into()),
            Match::KeyedLimit {
                fields: vec![Field::Saddr(Family::V4)],
                set: "guard".into(),
                rate,
                over: true,
            },
        ],
        Action::Drop,
    );
    let desired = DesiredTable::from_policies(&[PolicyRules {
        policy: "p".into(),
        rules: Ruleset {
            chains: vec![Chain {
                name: "c".into(),
                base: None,
                rules: vec![limited],
            }],
            ..Ruleset::default()
        },
    }]);
    assert_eq!(
        model::references(&desired.chains[0].rules[0].rule),
        [
            Ref::Set("p/guard".into()),
            objects::object_ref(OBJECT_LIMIT, "p/ssh"),
        ]
    );
}
