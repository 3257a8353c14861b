//! What a transaction does to a table, by the kernel's rules: the in-memory
//! fake kernel applies transactions with it, and the runtime uses it to
//! predict the table after its own batch, so the next reconcile need not
//! read the whole table back.
//!
//! It refuses what the kernel refuses: deleting what is not there, a rule
//! whose chain, set, object, flowtable or position is missing, a jump to a
//! base chain (from a rule or a verdict map's element), a map element
//! added over one of the same key with other data, and a chain, set,
//! object or flowtable deleted while a rule (or, a chain, a map element)
//! still refers to it.

use super::model::{ChainKind, ObservedChain, ObservedRule, ObservedSet, ObservedTable, Ref};
use super::{Op, Position, Transaction, element_references, objects, references};
use crate::ir::SetElements;

/// The operation the simulated kernel refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} refused: {reason}")]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
}

/// Applies `tx` to `table` (None: absent). `handle_for(i)` gives the handle
/// of the rule that operation `i` adds. On a refusal the table is gone with
/// the error: callers that need all-or-nothing pass a copy.
pub fn simulate(
    table: Option<ObservedTable>,
    tx: &Transaction,
    handle_for: &mut dyn FnMut(usize) -> Option<u64>,
) -> Result<Option<ObservedTable>, Rejected> {
    let mut table = table;
    for (index, op) in tx.ops.iter().enumerate() {
        step(&mut table, op, index, handle_for).map_err(|reason| Rejected { index, reason })?;
    }
    Ok(table)
}

fn step(
    table: &mut Option<ObservedTable>,
    op: &Op,
    index: usize,
    handle_for: &mut dyn FnMut(usize) -> Option<u64>,
) -> Result<(), String> {
    match op {
        Op::AddTable => {
            table.get_or_insert_with(|| ObservedTable {
                owned: true,
                ..ObservedTable::default()
            });
            return Ok(());
        }
        Op::DeleteTable => {
            return match table.take() {
                Some(_) => Ok(()),
                None => Err("no such table".into()),
            };
        }
        _ => {}
    }
    let t = table.as_mut().ok_or("no such table")?;
    if objects::simulate(t, op)? {
        return Ok(());
    }
    match op {
        Op::AddTable | Op::DeleteTable => unreachable!("handled above"),
        Op::AddChain { name, base } => {
            let kind = ChainKind::of(*base);
            match t.chains.iter_mut().find(|c| c.name == *name) {
                None => t.chains.push(ObservedChain {
                    name: name.clone(),
                    kind,
                    rules: Vec::new(),
                }),
                // An existing chain is updated: only a base chain's policy
                // may change.
                Some(c) => match (&mut c.kind, kind) {
                    (ChainKind::Regular, ChainKind::Regular) => {}
                    (ChainKind::Base(have), ChainKind::Base(want))
                        if (have.hook, have.chain_type, have.priority)
                            == (want.hook, want.chain_type, want.priority) =>
                    {
                        have.policy = want.policy;
                    }
                    _ => return Err(format!("chain {name} exists with another hook or type")),
                },
            }
        }
        Op::SetChainPolicy { name, base, .. } => match chain_mut(t, name)?.kind {
            ChainKind::Base(ref mut have)
                if (have.hook, have.chain_type, have.priority)
                    == (base.hook, base.chain_type, base.priority) =>
            {
                have.policy = base.policy;
            }
            _ => return Err(format!("chain {name} is not that base chain")),
        },
        Op::DeleteChain { name } => {
            let at = t
                .chains
                .iter()
                .position(|c| c.name == *name)
                .ok_or_else(|| format!("no chain {name}"))?;
            let target = Ref::Chain(name.clone());
            // The chain's own rules go with it; rules elsewhere must not
            // refer to it.
            if referenced(t, &target, Some(at)) {
                return Err(format!("chain {name} is in use"));
            }
            t.chains.remove(at);
        }
        Op::AddSet { name, elements } => {
            if t.set(name).is_some() {
                return Err(format!("set {name} exists"));
            }
            jumps_exist(t, elements)?;
            t.sets.push(ObservedSet::of(name.clone(), elements.clone()));
        }
        Op::DeleteSet { name } => {
            let at = t
                .sets
                .iter()
                .position(|s| s.name == *name)
                .ok_or_else(|| format!("no set {name}"))?;
            if referenced(t, &Ref::Set(name.clone()), None) {
                return Err(format!("set {name} is in use"));
            }
            t.sets.remove(at);
        }
        Op::AddElements { set, elements } | Op::DeleteElements { set, elements } => {
            let add = matches!(op, Op::AddElements { .. });
            if add {
                jumps_exist(t, elements)?;
            }
            let s = t
                .sets
                .iter_mut()
                .find(|s| s.name == *set)
                .ok_or_else(|| format!("no set {set}"))?;
            let have = s
                .elements
                .as_ref()
                .ok_or_else(|| format!("set {set} has another key type"))?;
            if !add && !have.contains_all(elements) {
                return Err(format!("an element to delete is not in set {set}"));
            }
            if add && let Some(e) = have.clash(elements) {
                let e = e.text(&elements.kind);
                return Err(format!("set {set} holds the key of {e} with other data"));
            }
            let merged = have
                .combined(elements, add)
                .ok_or_else(|| format!("set {set} has another key type"))?;
            s.elements = Some(merged);
        }
        Op::AddRule {
            chain,
            rule,
            tag,
            position,
        } => {
            let refs = references(rule);
            for r in &refs {
                exists(t, r)?;
            }
            let handle = handle_for(index).ok_or("no handle for the new rule")?;
            let c = chain_mut(t, chain)?;
            let new = ObservedRule {
                handle,
                tag: Some(tag.clone()),
                refs,
            };
            match position {
                Position::Append => c.rules.push(new),
                Position::Before(h) => {
                    let at = c
                        .rules
                        .iter()
                        .position(|r| r.handle == *h)
                        .ok_or_else(|| format!("no rule with handle {h} in {chain}"))?;
                    c.rules.insert(at, new);
                }
            }
        }
        Op::AddObject { .. }
        | Op::DeleteObject { .. }
        | Op::AddFlowtable { .. }
        | Op::DeleteFlowtableDevices { .. }
        | Op::DeleteFlowtable { .. } => unreachable!("simulated in objects"),
        Op::DeleteRule { chain, handle, .. } => {
            let c = chain_mut(t, chain)?;
            let at = c
                .rules
                .iter()
                .position(|r| r.handle == *handle)
                .ok_or_else(|| format!("no rule with handle {handle} in {chain}"))?;
            c.rules.remove(at);
        }
    }
    Ok(())
}

/// Refuses a reference to a chain, set, object or flowtable that is not
/// there, or a jump to a base chain.
fn exists(t: &ObservedTable, r: &Ref) -> Result<(), String> {
    match r {
        Ref::Chain(c) => match t.chain(c).map(|c| c.kind) {
            Some(ChainKind::Regular) => Ok(()),
            Some(_) => Err(format!("cannot jump to base chain {c}")),
            None => Err(format!("no chain {c} to jump to")),
        },
        Ref::Set(s) if t.set(s).is_none() => Err(format!("no set {s}")),
        Ref::Set(_) => Ok(()),
        Ref::Object { .. } | Ref::Flowtable(_) => match objects::missing(t, r) {
            Some(problem) => Err(problem),
            None => Ok(()),
        },
    }
}

/// Refuses elements that jump to a chain that is not there.
fn jumps_exist(t: &ObservedTable, elements: &SetElements) -> Result<(), String> {
    element_references(&elements.elements).try_for_each(|r| exists(t, &r))
}

fn chain_mut<'a>(t: &'a mut ObservedTable, name: &str) -> Result<&'a mut ObservedChain, String> {
    t.chains
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no chain {name}"))
}

/// Whether any rule (outside chain number `except`) or map element refers
/// to `target`.
fn referenced(t: &ObservedTable, target: &Ref, except: Option<usize>) -> bool {
    let by_rule = t
        .chains
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != except)
        .flat_map(|(_, c)| &c.rules)
        .any(|r| r.refs.contains(target));
    by_rule
        || t.sets
            .iter()
            .filter_map(|s| s.elements.as_ref())
            .any(|e| element_references(&e.elements).any(|r| r == *target))
}
