//! The two sides the planner compares: what the policies want (in kernel
//! names, each rule with its tag) and what the kernel holds.

use super::KernelName;
use super::objects::{self, DesiredFlowtable, DesiredObject, ObservedFlowtable, ObservedObject};
use crate::ir::{
    Action, BaseChain, Data, MapSource, Match, PolicyRules, Rule, SetElement, SetElements,
    Statement,
};

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
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DesiredTable {
    pub chains: Vec<DesiredChain>,
    pub sets: Vec<DesiredSet>,
    pub objects: Vec<DesiredObject>,
    pub flowtables: Vec<DesiredFlowtable>,
    /// Policies whose chains and sets stay exactly as the kernel holds them
    /// (their last known good rules), because their evaluation failed.
    pub kept: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredChain {
    pub name: KernelName,
    pub base: Option<BaseChain>,
    pub rules: Vec<DesiredRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredRule {
    /// The rule, with the chains and sets it refers to in kernel names.
    pub rule: Rule,
    pub tag: RuleTag,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredSet {
    pub name: KernelName,
    pub elements: SetElements,
}

impl DesiredTable {
    /// Places every policy's chains and sets in one table, renaming them to
    /// kernel names and tagging every rule.
    pub fn from_policies(policies: &[PolicyRules]) -> DesiredTable {
        let (objects, flowtables) = objects::desired(policies);
        let mut table = DesiredTable {
            objects,
            flowtables,
            ..DesiredTable::default()
        };
        for p in policies {
            for set in &p.rules.sets {
                let mut elements = set.elements.clone();
                verdicts_to_kernel_names(&p.policy, &mut elements);
                table.sets.push(DesiredSet {
                    name: KernelName::new(&p.policy, &set.name),
                    elements,
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

    /// The table with each kept policy (one whose rules stay as the kernel
    /// holds them) given the chains, sets, objects and flowtables it had in
    /// `last`, the table applied before: what the kernel holds once this
    /// table is applied. A kept policy `last` does not know stays kept.
    pub fn with_kept_resolved(&self, last: Option<&DesiredTable>) -> DesiredTable {
        let Some(last) = last else {
            return self.clone();
        };
        let mut table = self.clone();
        table.kept.clear();
        for policy in &self.kept {
            let ours = |name: &KernelName| name.policy() == Some(policy.as_str());
            let known = last.chains.iter().any(|c| ours(&c.name))
                || last.sets.iter().any(|s| ours(&s.name))
                || last.objects.iter().any(|o| ours(&o.name))
                || last.flowtables.iter().any(|f| ours(&f.name));
            if !known && !last.kept.contains(policy) {
                table.kept.push(policy.clone());
                continue;
            }
            if last.kept.contains(policy) {
                table.kept.push(policy.clone());
            }
            table
                .chains
                .extend(last.chains.iter().filter(|c| ours(&c.name)).cloned());
            table
                .sets
                .extend(last.sets.iter().filter(|s| ours(&s.name)).cloned());
            table
                .objects
                .extend(last.objects.iter().filter(|o| ours(&o.name)).cloned());
            table
                .flowtables
                .extend(last.flowtables.iter().filter(|f| ours(&f.name)).cloned());
        }
        table
    }

    /// The table as the kernel would show it once the desired state is
    /// applied (handles aside): what the planner must converge to.
    pub fn expected(&self) -> ObservedTable {
        let (objects, flowtables) = objects::expected(&self.objects, &self.flowtables);
        ObservedTable {
            owned: true,
            objects,
            flowtables,
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
                .map(|s| ObservedSet::of(s.name.clone(), s.elements.clone()))
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
    match &mut rule.action {
        Action::Jump(c) | Action::Goto(c) => *c = KernelName::new(policy, c).to_string(),
        Action::Vmap(lookup)
        | Action::DnatMap(crate::ir::NatMap { lookup, .. })
        | Action::SnatMap(crate::ir::NatMap { lookup, .. }) => match &mut lookup.map {
            MapSource::Named(map) => *map = KernelName::new(policy, map).to_string(),
            MapSource::Inline(elements) => verdicts_to_kernel_names(policy, elements),
        },
        _ => {}
    }
    rule
}

/// Rewrites the chains a verdict map's elements continue in into kernel
/// names.
fn verdicts_to_kernel_names(policy: &str, map: &mut SetElements) {
    for e in &mut map.elements {
        if let Some(Data::Verdict(v)) = &mut e.data
            && let Some(chain) = v.chain_mut()
        {
            *chain = KernelName::new(policy, chain).to_string();
        }
    }
}

/// A chain a rule jumps to, a set it looks up, an object or a flowtable it
/// names: the kernel counts these, and such a thing cannot be deleted
/// while the rule exists.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Ref {
    Chain(KernelName),
    Set(KernelName),
    /// A counter, limit or helper, by the kernel's type (NFT_OBJECT_*).
    Object {
        type_id: u32,
        name: KernelName,
    },
    Flowtable(KernelName),
}

/// The chains, sets, objects and flowtables a rule refers to, sorted: the
/// chains its inline map jumps to too (the kernel counts those).
pub fn references(rule: &Rule) -> Vec<Ref> {
    let mut refs: Vec<Ref> = rule
        .matches
        .iter()
        .filter_map(|m| match m {
            Match::LimitNamed(l) => Some(objects::object_ref(crate::ir::OBJECT_LIMIT, l)),
            _ => m.set().map(|set| Ref::Set(set.into())),
        })
        .collect();
    refs.extend(rule.statements.iter().filter_map(|s| match s {
        Statement::CounterNamed(c) => Some(objects::object_ref(crate::ir::OBJECT_COUNTER, c)),
        Statement::CtHelper(h) => Some(objects::object_ref(crate::ir::OBJECT_CT_HELPER, h)),
        Statement::Offload(f) => Some(Ref::Flowtable(f.as_str().into())),
        _ => None,
    }));
    match &rule.action {
        Action::Jump(c) | Action::Goto(c) => refs.push(Ref::Chain(c.as_str().into())),
        Action::Vmap(lookup)
        | Action::DnatMap(crate::ir::NatMap { lookup, .. })
        | Action::SnatMap(crate::ir::NatMap { lookup, .. }) => match &lookup.map {
            MapSource::Named(map) => refs.push(Ref::Set(map.as_str().into())),
            MapSource::Inline(elements) => refs.extend(element_references(&elements.elements)),
        },
        _ => {}
    }
    refs.sort();
    refs.dedup();
    refs
}

/// The chains set elements continue in (a verdict map's jumps and gotos):
/// such a chain cannot be deleted while the element exists.
pub fn element_references(elements: &[SetElement]) -> impl Iterator<Item = Ref> + '_ {
    elements.iter().filter_map(|e| match &e.data {
        Some(Data::Verdict(v)) => v.chain().map(|c| Ref::Chain(c.into())),
        _ => None,
    })
}

/// The runtime's table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ObservedTable {
    /// Whether the table carries the runtime's marker. A table of the same
    /// name without it belongs to someone else and is never touched.
    pub owned: bool,
    pub chains: Vec<ObservedChain>,
    pub sets: Vec<ObservedSet>,
    #[serde(default)]
    pub objects: Vec<ObservedObject>,
    #[serde(default)]
    pub flowtables: Vec<ObservedFlowtable>,
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

    /// The table with every handle set to 0, chains, sets, objects and
    /// flowtables sorted by name: two tables with the same content compare
    /// equal.
    pub fn normalized(&self) -> ObservedTable {
        let mut t = self.clone();
        t.chains.sort_by(|a, b| a.name.cmp(&b.name));
        t.sets.sort_by(|a, b| a.name.cmp(&b.name));
        t.objects
            .sort_by(|a, b| (&a.name, a.type_id).cmp(&(&b.name, b.type_id)));
        t.flowtables.sort_by(|a, b| a.name.cmp(&b.name));
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
    /// device's hook, an unknown type, ...): made by hand, and always
    /// replaced.
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
    /// `None` when the set is of a kind the runtime never makes, or holds
    /// elements the runtime never writes.
    pub elements: Option<SetElements>,
    /// Whether it is a verdict map, whose elements may jump to chains
    /// (known even of one the runtime does not read).
    #[serde(default)]
    pub verdicts: bool,
}

impl ObservedSet {
    /// A set as the runtime made it.
    pub fn of(name: KernelName, elements: SetElements) -> ObservedSet {
        ObservedSet {
            name,
            verdicts: elements.kind.is_verdict_map(),
            elements: Some(elements),
        }
    }

    /// Whether deleting it must come before deleting chains.
    pub fn refers_to_chains(&self) -> bool {
        self.verdicts
    }
}

/// The difference between two sorted, duplicate-free lists: (in `want` but
/// not in `have`, in `have` but not in `want`).
fn sorted_difference<T: Ord + Clone>(want: &[T], have: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut add, mut del) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < have.len() {
        match (want.get(i), have.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                add.push(a.clone());
                i += 1;
            }
            (Some(a), None) => {
                add.push(a.clone());
                i += 1;
            }
            (_, Some(b)) => {
                del.push(b.clone());
                j += 1;
            }
            (None, None) => unreachable!("the loop condition excludes it"),
        }
    }
    (add, del)
}

impl SetElements {
    /// Whether both are of the same kind (key, data, flags, timeout, size).
    pub fn same_kind(&self, other: &SetElements) -> bool {
        self.kind == other.kind
    }

    /// (elements to add, elements to delete) to turn `have` into `self`;
    /// `None` if the two are of different kinds. A map element whose data
    /// changed is deleted and added again: the kernel changes no element
    /// in place.
    pub fn difference(&self, have: &SetElements) -> Option<(SetElements, SetElements)> {
        if !self.same_kind(have) {
            return None;
        }
        let (add, del) = sorted_difference(&self.elements, &have.elements);
        let with = |elements| SetElements {
            kind: self.kind.clone(),
            elements,
        };
        Some((with(add), with(del)))
    }

    /// `self` with `other`'s elements added (`add`) or removed; `None` if the
    /// two are of different kinds.
    pub fn combined(&self, other: &SetElements, add: bool) -> Option<SetElements> {
        if !self.same_kind(other) {
            return None;
        }
        let elements = if add {
            self.elements
                .iter()
                .chain(&other.elements)
                .cloned()
                .collect()
        } else {
            self.elements
                .iter()
                .filter(|x| other.elements.binary_search(x).is_err())
                .cloned()
                .collect()
        };
        Some(SetElements::new(self.kind.clone(), elements))
    }

    /// Whether every element of `other` is in `self`.
    pub fn contains_all(&self, other: &SetElements) -> bool {
        other
            .difference(self)
            .is_some_and(|(missing, _)| missing.is_empty())
    }

    /// An element of `other` whose key `self` holds with other data: the
    /// kernel refuses to add it.
    pub fn clash<'a>(&self, other: &'a SetElements) -> Option<&'a SetElement> {
        other.elements.iter().find(|e| {
            self.elements
                .iter()
                .any(|have| have.key == e.key && have.data != e.data)
        })
    }
}
