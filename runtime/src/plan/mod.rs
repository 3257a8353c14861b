//! Pure planning: from the desired table and the table the kernel holds to a
//! [`Transaction`] of only the kernel operations that differ. No I/O happens
//! here.
//!
//! Rules are matched by their tag (policy and hash of the canonical text)
//! within each chain, keeping the order: the longest run of observed rules
//! that already appears in the desired order stays, everything else is
//! deleted by handle or inserted at its position. A rule without a tag (made
//! by hand) is never kept. The transaction prints as nft-like text, so it can
//! be shown before it is applied and compared in tests.

mod model;
mod name;
mod objects;
mod simulate;
mod text;

use std::collections::{HashMap, HashSet, VecDeque};

use crate::ir::{BaseChain, ChainPolicy, Flowtable, Object, Rule, SetElements};

pub use model::{
    ChainKind, DesiredChain, DesiredRule, DesiredSet, DesiredTable, ObservedChain, ObservedRule,
    ObservedSet, ObservedTable, Ref, RuleTag, element_references, references,
};
pub use name::KernelName;
pub use objects::{DesiredFlowtable, DesiredObject, ObservedFlowtable, ObservedObject, object_ref};
pub use simulate::{Rejected, simulate};
pub use text::{elements_text, table_text};

/// Where a new rule goes in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// At the end.
    Append,
    /// Just before the rule with this handle.
    Before(u64),
}

/// One kernel operation. Every name is a kernel name (`<policy>/<name>`), and
/// every chain or set a rule refers to is a kernel name too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create the table (no error if it exists).
    AddTable,
    /// Delete the table and everything in it.
    DeleteTable,
    AddChain {
        name: KernelName,
        base: Option<BaseChain>,
    },
    /// Change an existing base chain's policy.
    SetChainPolicy {
        name: KernelName,
        base: BaseChain,
        was: ChainPolicy,
    },
    /// Delete a chain and the rules left in it.
    DeleteChain {
        name: KernelName,
    },
    /// Create a set and add its elements.
    AddSet {
        name: KernelName,
        elements: SetElements,
    },
    DeleteSet {
        name: KernelName,
    },
    AddElements {
        set: KernelName,
        elements: SetElements,
    },
    DeleteElements {
        set: KernelName,
        elements: SetElements,
    },
    /// Create a counter, limit or conntrack helper.
    AddObject {
        name: KernelName,
        object: Object,
    },
    /// Delete an object of the kernel's type `type_id` (NFT_OBJECT_*).
    DeleteObject {
        name: KernelName,
        type_id: u32,
    },
    /// Create a flowtable, or give an existing one (of the same priority
    /// and hardware offload) the devices it lacks and this counter flag.
    AddFlowtable {
        name: KernelName,
        flowtable: Flowtable,
    },
    /// Take these devices out of a flowtable of this priority.
    DeleteFlowtableDevices {
        name: KernelName,
        priority: i32,
        devices: Vec<String>,
    },
    DeleteFlowtable {
        name: KernelName,
    },
    AddRule {
        chain: KernelName,
        rule: Rule,
        tag: RuleTag,
        position: Position,
    },
    DeleteRule {
        chain: KernelName,
        handle: u64,
        /// The tag the rule carried, if any (for the text only).
        tag: Option<RuleTag>,
    },
}

/// An ordered list of operations on one `inet` table, applied by the kernel
/// adapter in one atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub table: String,
    pub ops: Vec<Op>,
}

/// The table exists but is not the runtime's (it has no marker).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "table inet {0} exists but was not made by wasmwall; it is left alone (choose another `table` in the config, or delete it yourself)"
)]
pub struct NotOwned(pub String);

impl Transaction {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many operations of each kind, for logs: "2 rule adds, 1 rule delete".
    pub fn summary(&self) -> String {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for op in &self.ops {
            let kind = match op {
                Op::AddTable => "table add",
                Op::DeleteTable => "table delete",
                Op::AddChain { .. } => "chain add",
                Op::SetChainPolicy { .. } => "chain policy change",
                Op::DeleteChain { .. } => "chain delete",
                Op::AddSet { .. } => "set add",
                Op::DeleteSet { .. } => "set delete",
                Op::AddElements { elements, .. } => {
                    bump(&mut counts, "element add", elements.len());
                    continue;
                }
                Op::DeleteElements { elements, .. } => {
                    bump(&mut counts, "element delete", elements.len());
                    continue;
                }
                Op::AddObject { .. } => "object add",
                Op::DeleteObject { .. } => "object delete",
                Op::AddFlowtable { .. } => "flowtable add",
                Op::DeleteFlowtableDevices { .. } => "flowtable device delete",
                Op::DeleteFlowtable { .. } => "flowtable delete",
                Op::AddRule { .. } => "rule add",
                Op::DeleteRule { .. } => "rule delete",
            };
            bump(&mut counts, kind, 1);
        }
        if counts.is_empty() {
            return "no changes".into();
        }
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn bump(counts: &mut Vec<(&'static str, usize)>, kind: &'static str, n: usize) {
    match counts.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, c)) => *c += n,
        None => counts.push((kind, n)),
    }
}

impl Op {
    /// The policy whose object this operation adds or changes (a flowtable
    /// losing devices is changed), if it does:
    /// when the kernel refuses such an operation, it is that policy's rules
    /// it refuses. Deletes and the table itself belong to no policy.
    pub fn added_by(&self) -> Option<&str> {
        match self {
            Op::AddChain { name, .. }
            | Op::SetChainPolicy { name, .. }
            | Op::AddSet { name, .. }
            | Op::AddObject { name, .. }
            | Op::AddFlowtable { name, .. }
            | Op::DeleteFlowtableDevices { name, .. } => name.policy(),
            Op::AddElements { set, .. } => set.policy(),
            Op::AddRule { chain, .. } => chain.policy(),
            Op::AddTable
            | Op::DeleteTable
            | Op::DeleteChain { .. }
            | Op::DeleteSet { .. }
            | Op::DeleteElements { .. }
            | Op::DeleteObject { .. }
            | Op::DeleteFlowtable { .. }
            | Op::DeleteRule { .. } => None,
        }
    }
}

/// Operations grouped by phase; the phases run in an order the kernel
/// accepts: references are dropped before what they refer to is deleted,
/// and what a rule refers to exists before the rule is added. A verdict
/// map's elements refer to the chains they jump to: they (and the map)
/// go before the chains are deleted, and after they are made.
#[derive(Default)]
struct Phases {
    table: Vec<Op>,
    delete_rules: Vec<Op>,
    delete_verdicts: Vec<Op>,
    delete_chains: Vec<Op>,
    delete_sets: Vec<Op>,
    delete_objects: Vec<Op>,
    add_sets: Vec<Op>,
    add_objects: Vec<Op>,
    add_chains: Vec<Op>,
    add_verdicts: Vec<Op>,
    elements: Vec<Op>,
    add_rules: Vec<Op>,
}

impl Phases {
    fn into_ops(self) -> Vec<Op> {
        [
            self.table,
            self.delete_rules,
            self.delete_verdicts,
            self.delete_chains,
            self.delete_sets,
            self.delete_objects,
            self.add_sets,
            self.add_objects,
            self.add_chains,
            self.add_verdicts,
            self.elements,
            self.add_rules,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Deletes a set; a verdict map before the chains.
    fn delete_set(&mut self, name: &KernelName, verdicts: bool) {
        let op = Op::DeleteSet { name: name.clone() };
        if verdicts {
            self.delete_verdicts.push(op);
        } else {
            self.delete_sets.push(op);
        }
    }

    /// Makes a set with its elements; a verdict map empty, with its
    /// elements after the chains (so sets and maps are made in the
    /// policies' order, the order nft lists them in).
    fn add_set(&mut self, set: &DesiredSet) {
        let verdicts = set.elements.kind.is_verdict_map();
        let made = if verdicts {
            set.elements.empty_like()
        } else {
            set.elements.clone()
        };
        self.add_sets.push(Op::AddSet {
            name: set.name.clone(),
            elements: made,
        });
        if verdicts && !set.elements.is_empty() {
            self.add_verdicts.push(Op::AddElements {
                set: set.name.clone(),
                elements: set.elements.clone(),
            });
        }
    }

    /// Element deletes and adds of one set (those of a verdict map around
    /// the chains' changes); nothing for an empty list.
    fn elements(&mut self, set: &KernelName, add: SetElements, delete: SetElements) {
        let verdicts = add.kind.is_verdict_map();
        if !delete.is_empty() {
            let op = Op::DeleteElements {
                set: set.clone(),
                elements: delete,
            };
            if verdicts {
                self.delete_verdicts.push(op);
            } else {
                self.elements.push(op);
            }
        }
        if !add.is_empty() {
            let op = Op::AddElements {
                set: set.clone(),
                elements: add,
            };
            if verdicts {
                self.add_verdicts.push(op);
            } else {
                self.elements.push(op);
            }
        }
    }

    /// Deletes a chain. Its rules that refer to other chains or sets go
    /// first, one by one: the kernel drops the rest with the chain, but a
    /// chain that another deleted chain still jumps to could not be deleted.
    fn delete_chain(&mut self, chain: &ObservedChain) {
        for r in chain.rules.iter().filter(|r| !r.refs.is_empty()) {
            self.delete_rule(&chain.name, r);
        }
        self.delete_chains.push(Op::DeleteChain {
            name: chain.name.clone(),
        });
    }

    fn delete_rule(&mut self, chain: &KernelName, r: &ObservedRule) {
        self.delete_rules.push(Op::DeleteRule {
            chain: chain.clone(),
            handle: r.handle,
            tag: r.tag.clone(),
        });
    }

    fn add_chain(&mut self, chain: &DesiredChain) {
        self.add_chains.push(Op::AddChain {
            name: chain.name.clone(),
            base: chain.base,
        });
        for r in &chain.rules {
            self.add_rule(&chain.name, r, Position::Append);
        }
    }

    fn add_rule(&mut self, chain: &KernelName, r: &DesiredRule, position: Position) {
        self.add_rules.push(Op::AddRule {
            chain: chain.clone(),
            rule: r.rule.clone(),
            tag: r.tag.clone(),
            position,
        });
    }
}

/// The operations that turn `observed` (None: the table does not exist)
/// into `desired`, and nothing else: the chains and sets of kept policies
/// are left as they are. Refuses a table that is not owned.
pub fn plan(
    table: &str,
    desired: &DesiredTable,
    observed: Option<&ObservedTable>,
) -> Result<Transaction, NotOwned> {
    let mut phases = Phases::default();
    let empty = ObservedTable {
        owned: true,
        ..ObservedTable::default()
    };
    let observed = match observed {
        None => {
            phases.table.push(Op::AddTable);
            &empty
        }
        Some(t) if !t.owned => return Err(NotOwned(table.to_string())),
        Some(t) => t,
    };

    // Sets and maps. One whose kind changed is made again, and the rules
    // using it with it. In a dynamic set, the elements rules added are not
    // the policy's: none is deleted.
    let mut recreated: HashSet<Ref> = HashSet::new();
    for want in &desired.sets {
        let Some(have) = observed.set(&want.name) else {
            phases.add_set(want);
            continue;
        };
        match have
            .elements
            .as_ref()
            .and_then(|h| want.elements.difference(h))
        {
            Some((add, delete)) => {
                let delete = if want.elements.kind.dynamic {
                    delete.empty_like()
                } else {
                    delete
                };
                phases.elements(&want.name, add, delete);
            }
            None => {
                phases.delete_set(&want.name, have.refers_to_chains());
                phases.add_set(want);
                recreated.insert(Ref::Set(want.name.clone()));
            }
        }
    }
    let wanted_sets: HashSet<&str> = desired.sets.iter().map(|s| s.name.as_str()).collect();
    for have in &observed.sets {
        if !wanted_sets.contains(have.name.as_str()) && !desired.is_kept(&have.name) {
            phases.delete_set(&have.name, have.refers_to_chains());
        }
    }

    // Objects and flowtables, made again like sets.
    let object_ops = objects::plan(
        &desired.objects,
        &desired.flowtables,
        observed,
        &|name| desired.is_kept(name),
        &mut recreated,
    );
    phases.delete_objects = object_ops.delete;
    phases.add_objects = object_ops.add;

    // Chains.
    let observed_chains: HashMap<&str, &ObservedChain> = observed
        .chains
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for want in &desired.chains {
        let Some(have) = observed_chains.get(want.name.as_str()) else {
            phases.add_chain(want);
            continue;
        };
        match (have.kind, want.base) {
            (ChainKind::Regular, None) => {}
            (ChainKind::Base(h), Some(w))
                if (h.hook, h.chain_type, h.priority) == (w.hook, w.chain_type, w.priority) =>
            {
                if h.policy != w.policy {
                    phases.add_chains.push(Op::SetChainPolicy {
                        name: want.name.clone(),
                        base: w,
                        was: h.policy,
                    });
                }
            }
            // Hook, type or priority cannot change in place.
            _ => {
                phases.delete_chain(have);
                phases.add_chain(want);
                continue;
            }
        }
        diff_rules(&mut phases, want, have, &recreated);
    }
    let wanted_chains: HashSet<&str> = desired.chains.iter().map(|c| c.name.as_str()).collect();
    for have in &observed.chains {
        if !wanted_chains.contains(have.name.as_str()) && !desired.is_kept(&have.name) {
            phases.delete_chain(have);
        }
    }

    Ok(Transaction {
        table: table.to_string(),
        ops: phases.into_ops(),
    })
}

/// Deletes and inserts that turn the rules of `have` into those of `want`,
/// keeping the longest common run of tagged rules in place.
fn diff_rules(
    phases: &mut Phases,
    want: &DesiredChain,
    have: &ObservedChain,
    recreated: &HashSet<Ref>,
) {
    // A rule using a set or object that is made again must be made again
    // too.
    let stale = |r: &DesiredRule| {
        !recreated.is_empty() && references(&r.rule).iter().any(|x| recreated.contains(x))
    };
    // The common case, checked in one pass: nothing changed in this chain.
    let same = want.rules.len() == have.rules.len()
        && want
            .rules
            .iter()
            .zip(&have.rules)
            .all(|(w, h)| h.tag.as_ref() == Some(&w.tag) && !stale(w));
    if same {
        return;
    }
    // The k-th desired occurrence of a tag pairs with the k-th observed one.
    let mut by_tag: HashMap<&RuleTag, VecDeque<usize>> = HashMap::new();
    for (i, r) in have.rules.iter().enumerate() {
        if let Some(tag) = &r.tag {
            by_tag.entry(tag).or_default().push_back(i);
        }
    }
    let paired: Vec<Option<usize>> = want
        .rules
        .iter()
        .map(|r| {
            if stale(r) {
                return None;
            }
            by_tag.get_mut(&r.tag).and_then(VecDeque::pop_front)
        })
        .collect();
    // Of the pairs, keep the longest run whose observed positions increase.
    let pairs: Vec<(usize, usize)> = paired
        .iter()
        .enumerate()
        .filter_map(|(w, h)| h.map(|h| (w, h)))
        .collect();
    let in_run = longest_increasing(&pairs.iter().map(|&(_, h)| h).collect::<Vec<_>>());
    let mut kept_want = vec![None; want.rules.len()];
    let mut kept_have = vec![false; have.rules.len()];
    for (&(w, h), keep) in pairs.iter().zip(in_run) {
        if keep {
            kept_want[w] = Some(h);
            kept_have[h] = true;
        }
    }

    for (r, kept) in have.rules.iter().zip(&kept_have) {
        if !kept {
            phases.delete_rule(&have.name, r);
        }
    }
    // Each new rule goes just before the next kept one, or at the end.
    let mut positions = vec![Position::Append; want.rules.len()];
    let mut next = Position::Append;
    for w in (0..want.rules.len()).rev() {
        match kept_want[w] {
            Some(h) => next = Position::Before(have.rules[h].handle),
            None => positions[w] = next,
        }
    }
    for (w, r) in want.rules.iter().enumerate() {
        if kept_want[w].is_none() {
            phases.add_rule(&want.name, r, positions[w]);
        }
    }
}

/// Marks the members of one longest strictly increasing subsequence of
/// `seq` (patience sorting, O(n log n)).
fn longest_increasing(seq: &[usize]) -> Vec<bool> {
    // tails[k]: index in seq of the smallest tail of a run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < v);
        prev[i] = k.checked_sub(1).map(|p| tails[p]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut member = vec![false; seq.len()];
    let mut at = tails.last().copied();
    while let Some(i) = at {
        member[i] = true;
        at = prev[i];
    }
    member
}

/// Replaces the whole table in one batch, whatever it held: for tests and
/// benchmarks of the kernel adapter. The runtime itself plans a difference.
pub fn replace_table(table: &str, desired: &DesiredTable) -> Transaction {
    // "add" first so that "delete" cannot fail on a missing table.
    let mut ops = vec![Op::AddTable, Op::DeleteTable];
    let fresh = plan(table, desired, None).expect("an absent table is never foreign");
    ops.extend(fresh.ops);
    Transaction {
        table: table.to_string(),
        ops,
    }
}

/// Removes the table if it exists and is the runtime's.
pub fn remove_table(
    table: &str,
    observed: Option<&ObservedTable>,
) -> Result<Transaction, NotOwned> {
    let ops = match observed {
        None => Vec::new(),
        Some(t) if !t.owned => return Err(NotOwned(table.to_string())),
        Some(_) => vec![Op::DeleteTable],
    };
    Ok(Transaction {
        table: table.to_string(),
        ops,
    })
}

#[cfg(test)]
mod tests;
