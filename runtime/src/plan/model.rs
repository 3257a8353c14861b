//! The two sides the planner compares: what the policies want (in kernel
//! names, each rule with its tag) and what the kernel holds.

use super::KernelName;
use crate::ir::{Action, BaseChain, Match, PolicyRules, Rule, SetElements, Statement};

/// Identity stored in a rule's userdata: which policy made it and the hash of
/// its canonical text.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct RuleTag {
    pub policy: String,
    pub hash: String,
}

/// The runtime's whole table as the policies want it. Every name is a kernel
/// name (`<policy>/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredTable {
    pub chains: Vec<DesiredChain>,
    pub sets: Vec<DesiredSet>,
    /// Policies whose chains and sets stay exactly as the kernel holds them
    /// (their last known good rules), because their evaluation failed.
    pub kept: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredChain {
    pub name: KernelName,
    pub base: Option<BaseChain>,
    pub rules: Vec<DesiredRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRule {
    /// The rule, with the chains and sets it refers to in kernel names.
    pub rule: Rule,
    pub tag: RuleTag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSet {
    pub name: KernelName,
    pub elements: SetElements,
}

impl DesiredTable {
    /// Places every policy's chains and sets in one table, renaming them to
    /// kernel names and tagging every rule.
    pub fn from_policies(policies: &[PolicyRules]) -> DesiredTable {
        let mut table = DesiredTable::default();
        for p in policies {
            for set in &p.rules.sets {
                table.sets.push(DesiredSet {
                    name: KernelName::new(&p.policy, &set.name),
                    elements: set.elements.clone(),
                });
            }
            for chain in &p.rules.chains {
                let rules = chain
                    .rules
                    .iter()
                    .map(|rule| {
                        let rule = to_kernel_names(&p.policy, rule);
                        let hash = crate::ir::rule_hash(&rule.to_string());
                        DesiredRule {
                            rule,
                            tag: RuleTag {
                                policy: p.policy.clone(),
                                hash,
                            },
                        }
                    })
                    .collect();
                table.chains.push(DesiredChain {
                    name: KernelName::new(&p.policy, &chain.name),
                    base: chain.base,
                    rules,
                });
            }
        }
        table
    }

    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    /// Whether the kernel object `name` belongs to a kept policy.
    pub fn is_kept(&self, name: &KernelName) -> bool {
        name.policy()
            .is_some_and(|policy| self.kept.iter().any(|k| k == policy))
    }

    /// The table as the kernel would show it once the desired state is
    /// applied (handles aside): what the planner must converge to.
    pub fn expected(&self) -> ObservedTable {
        ObservedTable {
            owned: true,
            chains: self
                .chains
                .iter()
                .map(|c| ObservedChain {
                    name: c.name.clone(),
                    kind: ChainKind::of(c.base),
                    rules: c
                        .rules
                        .iter()
                        .map(|r| ObservedRule {
                            handle: 0,
                            tag: Some(r.tag.clone()),
                            refs: references(&r.rule),
                        })
                        .collect(),
                })
                .collect(),
            sets: self
                .sets
                .iter()
                .map(|s| ObservedSet {
                    name: s.name.clone(),
                    elements: Some(s.elements.clone()),
                })
                .collect(),
        }
    }
}

/// Rewrites the chain and set names a rule refers to into kernel names.
fn to_kernel_names(policy: &str, rule: &Rule) -> Rule {
    let mut rule = rule.clone();
    for set in rule.matches.iter_mut().filter_map(Match::set_mut) {
        *set = KernelName::new(policy, set).to_string();
    }
    for name in rule.statements.iter_mut().filter_map(Statement::object_mut) {
        *name = KernelName::new(policy, name).to_string();
    }
    for name in rule.matches.iter_mut().filter_map(Match::object_mut) {
        *name = KernelName::new(policy, name).to_string();
    }
    if let Action::Jump(c) | Action::Goto(c) = &mut rule.action {
        *c = KernelName::new(policy, c).to_string();
    }
    rule
}

/// A chain a rule jumps to or a set it looks up: the kernel counts these,
/// and such a chain or set cannot be deleted while the rule exists.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Ref {
    Chain(KernelName),
    Set(KernelName),
}

/// The chains and sets a rule refers to, sorted.
pub fn references(rule: &Rule) -> Vec<Ref> {
    let mut refs: Vec<Ref> = rule
        .matches
        .iter()
        .filter_map(|m| m.set().map(|set| Ref::Set(set.into())))
        .collect();
    if let Action::Jump(c) | Action::Goto(c) = &rule.action {
        refs.push(Ref::Chain(c.as_str().into()));
    }
    refs.sort();
    refs.dedup();
    refs
}

/// The runtime's table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ObservedTable {
    /// Whether the table carries the runtime's marker. A table of the same
    /// name without it belongs to someone else and is never touched.
    pub owned: bool,
    pub chains: Vec<ObservedChain>,
    pub sets: Vec<ObservedSet>,
}

impl ObservedTable {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    pub fn chain(&self, name: &str) -> Option<&ObservedChain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&ObservedSet> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// The table with every handle set to 0, chains and sets sorted by name:
    /// two tables with the same content compare equal.
    pub fn normalized(&self) -> ObservedTable {
        let mut t = self.clone();
        t.chains.sort_by(|a, b| a.name.cmp(&b.name));
        t.sets.sort_by(|a, b| a.name.cmp(&b.name));
        for rule in t.chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
            rule.handle = 0;
        }
        t
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedChain {
    pub name: KernelName,
    pub kind: ChainKind,
    /// In kernel order.
    pub rules: Vec<ObservedRule>,
}

/// What kind of chain the kernel holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChainKind {
    Regular,
    Base(BaseChain),
    /// A base chain the runtime never makes (another family's hook, a
    /// `route` chain, ...): made by hand, and always replaced.
    Foreign,
}

impl ChainKind {
    pub fn of(base: Option<BaseChain>) -> ChainKind {
        match base {
            None => ChainKind::Regular,
            Some(b) => ChainKind::Base(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedRule {
    /// The kernel's handle: how a rule is deleted or used as a position.
    pub handle: u64,
    /// `None` for a rule the runtime did not write (added by hand).
    pub tag: Option<RuleTag>,
    /// Chains it jumps to and sets it looks up, sorted.
    pub refs: Vec<Ref>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedSet {
    pub name: KernelName,
    /// `None` when the set is of a kind the runtime never makes (another key
    /// type, intervals, a map, ...).
    pub elements: Option<SetElements>,
}

/// The difference between two sorted, duplicate-free lists: (in `want` but
/// not in `have`, in `have` but not in `want`).
fn sorted_difference<T: Ord + Copy>(want: &[T], have: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut add, mut del) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < have.len() {
        match (want.get(i), have.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                add.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                add.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                del.push(*b);
                j += 1;
            }
            (None, None) => unreachable!("the loop condition excludes it"),
        }
    }
    (add, del)
}

/// A sorted, duplicate-free union or removal.
fn sorted_merge<T: Ord + Copy>(a: &[T], b: &[T], keep_b: bool) -> Vec<T> {
    if keep_b {
        let mut out: Vec<T> = a.iter().chain(b).copied().collect();
        out.sort();
        out.dedup();
        out
    } else {
        a.iter()
            .filter(|x| b.binary_search(x).is_err())
            .copied()
            .collect()
    }
}

impl SetElements {
    /// Whether both hold the same kind of key.
    pub fn same_kind(&self, other: &SetElements) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// An empty list of the same kind.
    pub fn empty_like(&self) -> SetElements {
        match self {
            SetElements::Ipv4(_) => SetElements::Ipv4(Vec::new()),
            SetElements::Ipv6(_) => SetElements::Ipv6(Vec::new()),
            SetElements::Ports(_) => SetElements::Ports(Vec::new()),
        }
    }

    /// (elements to add, elements to delete) to turn `have` into `self`;
    /// `None` if the two are of different kinds.
    pub fn difference(&self, have: &SetElements) -> Option<(SetElements, SetElements)> {
        use SetElements::*;
        Some(match (self, have) {
            (Ipv4(w), Ipv4(h)) => {
                let (a, d) = sorted_difference(w, h);
                (Ipv4(a), Ipv4(d))
            }
            (Ipv6(w), Ipv6(h)) => {
                let (a, d) = sorted_difference(w, h);
                (Ipv6(a), Ipv6(d))
            }
            (Ports(w), Ports(h)) => {
                let (a, d) = sorted_difference(w, h);
                (Ports(a), Ports(d))
            }
            _ => return None,
        })
    }

    /// `self` with `other`'s elements added (`add`) or removed; `None` if the
    /// two are of different kinds.
    pub fn combined(&self, other: &SetElements, add: bool) -> Option<SetElements> {
        use SetElements::*;
        Some(match (self, other) {
            (Ipv4(a), Ipv4(b)) => Ipv4(sorted_merge(a, b, add)),
            (Ipv6(a), Ipv6(b)) => Ipv6(sorted_merge(a, b, add)),
            (Ports(a), Ports(b)) => Ports(sorted_merge(a, b, add)),
            _ => return None,
        })
    }

    /// Whether every element of `other` is in `self`.
    pub fn contains_all(&self, other: &SetElements) -> bool {
        other
            .difference(self)
            .is_some_and(|(missing, _)| missing.is_empty())
    }
}
