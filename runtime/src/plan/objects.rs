//! The planner's stateful objects (counters, limits, conntrack helpers) and
//! flowtables: both sides of the comparison, the operations that turn one
//! into the other, what those operations do to a table (for the fake
//! kernel), and their nft text.
//!
//! The kernel identifies an object by its type and name. It updates none
//! of the runtime's kinds in place: a new definition sent for an existing
//! limit or helper is ignored (nf_tables_newobj returns success when the
//! type has no update, EOPNOTSUPP with NLM_F_REPLACE). So an object whose
//! definition changed is deleted and added again in the batch, and the
//! rules that use it with it (the kernel refuses to delete an object a
//! rule uses). A counter's packets and bytes are the kernel's, never a
//! change.
//!
//! A flowtable's devices change in place: a NEWFLOWTABLE for an existing
//! flowtable adds the devices it does not have yet and sets the counter
//! flag (nft_flowtable_update), and a DELFLOWTABLE that lists devices
//! removes only those (nft_delflowtable_hook). Its priority and hardware
//! offload cannot change (EOPNOTSUPP): the flowtable is made again.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::model::{ObservedTable, Ref};
use super::{KernelName, Op};
use crate::ir::{Flowtable, Object, PolicyRules, object_keyword};

/// A policy's object, by kernel name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredObject {
    pub name: KernelName,
    pub object: Object,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredFlowtable {
    pub name: KernelName,
    pub flowtable: Flowtable,
}

/// An object in the runtime's table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedObject {
    pub name: KernelName,
    /// The kernel's type (NFT_OBJECT_*).
    pub type_id: u32,
    /// Its definition as the text of [`Object::definition`]; `None` when
    /// it is not one the runtime makes (a quota, a limit with flags nft
    /// has no words for, ...).
    pub definition: Option<Vec<String>>,
}

/// A flowtable in the runtime's table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedFlowtable {
    pub name: KernelName,
    /// `None` when it is not one the runtime makes (another hook, flags it
    /// does not know).
    pub flowtable: Option<Flowtable>,
}

/// Every policy's objects and flowtables under kernel names, policy by
/// policy in the order given.
pub(super) fn desired(policies: &[PolicyRules]) -> (Vec<DesiredObject>, Vec<DesiredFlowtable>) {
    let mut objects = Vec::new();
    let mut flowtables = Vec::new();
    for p in policies {
        for o in &p.rules.objects {
            objects.push(DesiredObject {
                name: KernelName::new(&p.policy, &o.name),
                object: o.object.clone(),
            });
        }
        for f in &p.rules.flowtables {
            flowtables.push(DesiredFlowtable {
                name: KernelName::new(&p.policy, &f.name),
                flowtable: f.flowtable.clone(),
            });
        }
    }
    (objects, flowtables)
}

/// The objects and flowtables as the kernel shows them once applied.
pub(super) fn expected(
    objects: &[DesiredObject],
    flowtables: &[DesiredFlowtable],
) -> (Vec<ObservedObject>, Vec<ObservedFlowtable>) {
    (
        objects
            .iter()
            .map(|o| ObservedObject {
                name: o.name.clone(),
                type_id: o.object.type_id(),
                definition: Some(o.object.definition()),
            })
            .collect(),
        flowtables
            .iter()
            .map(|f| ObservedFlowtable {
                name: f.name.clone(),
                flowtable: Some(f.flowtable.clone()),
            })
            .collect(),
    )
}

/// What a rule refers to when it names an object of this type.
pub fn object_ref(type_id: u32, name: &str) -> Ref {
    Ref::Object {
        type_id,
        name: name.into(),
    }
}

/// The operations of the object and flowtable phases.
#[derive(Default)]
pub(super) struct ObjectOps {
    /// Deletes of objects and flowtables, and devices leaving flowtables:
    /// after the rules that used them are deleted.
    pub delete: Vec<Op>,
    /// New objects and flowtables, and changed flowtables: before the
    /// rules that use them are added.
    pub add: Vec<Op>,
}

/// The operations that turn `observed`'s objects and flowtables into
/// `desired`'s, leaving those of kept policies (`is_kept`) alone. Each one
/// made again is put in `recreated`: the rules that use it must be.
pub(super) fn plan(
    desired_objects: &[DesiredObject],
    desired_flowtables: &[DesiredFlowtable],
    observed: &ObservedTable,
    is_kept: &dyn Fn(&KernelName) -> bool,
    recreated: &mut HashSet<Ref>,
) -> ObjectOps {
    let mut ops = ObjectOps::default();
    let mut wanted: HashSet<(u32, &str)> = HashSet::new();
    for want in desired_objects {
        let type_id = want.object.type_id();
        wanted.insert((type_id, want.name.as_str()));
        let have = observed
            .objects
            .iter()
            .find(|o| o.type_id == type_id && o.name == want.name);
        let add = Op::AddObject {
            name: want.name.clone(),
            object: want.object.clone(),
        };
        match have {
            None => ops.add.push(add),
            Some(h) if h.definition.as_ref() == Some(&want.object.definition()) => {}
            Some(_) => {
                ops.delete.push(Op::DeleteObject {
                    name: want.name.clone(),
                    type_id,
                });
                ops.add.push(add);
                recreated.insert(object_ref(type_id, &want.name));
            }
        }
    }
    for have in &observed.objects {
        if !wanted.contains(&(have.type_id, have.name.as_str())) && !is_kept(&have.name) {
            ops.delete.push(Op::DeleteObject {
                name: have.name.clone(),
                type_id: have.type_id,
            });
        }
    }

    for want in desired_flowtables {
        let have = observed.flowtables.iter().find(|f| f.name == want.name);
        let add = Op::AddFlowtable {
            name: want.name.clone(),
            flowtable: want.flowtable.clone(),
        };
        let Some(have) = have else {
            ops.add.push(add);
            continue;
        };
        match &have.flowtable {
            Some(h) if h == &want.flowtable => {}
            Some(h)
                if (h.priority, h.hardware_offload)
                    == (want.flowtable.priority, want.flowtable.hardware_offload) =>
            {
                let gone: Vec<String> = h
                    .devices
                    .iter()
                    .filter(|d| !want.flowtable.devices.contains(d))
                    .cloned()
                    .collect();
                if !gone.is_empty() {
                    ops.delete.push(Op::DeleteFlowtableDevices {
                        name: want.name.clone(),
                        priority: h.priority,
                        devices: gone,
                    });
                }
                let new_devices = want
                    .flowtable
                    .devices
                    .iter()
                    .any(|d| !h.devices.contains(d));
                if new_devices || h.counter != want.flowtable.counter {
                    ops.add.push(add);
                }
            }
            _ => {
                ops.delete.push(Op::DeleteFlowtable {
                    name: want.name.clone(),
                });
                ops.add.push(add);
                recreated.insert(Ref::Flowtable(want.name.clone()));
            }
        }
    }
    let wanted: HashSet<&str> = desired_flowtables.iter().map(|f| f.name.as_str()).collect();
    for have in &observed.flowtables {
        if !wanted.contains(have.name.as_str()) && !is_kept(&have.name) {
            ops.delete.push(Op::DeleteFlowtable {
                name: have.name.clone(),
            });
        }
    }
    ops
}

/// What an object or flowtable operation does to `t`, by the kernel's
/// rules; `Ok(false)` for an operation of another kind.
pub(super) fn simulate(t: &mut ObservedTable, op: &Op) -> Result<bool, String> {
    match op {
        Op::AddObject { name, object } => {
            let type_id = object.type_id();
            // An object sent again is left as it is: the kernel does not
            // update these types.
            if !t
                .objects
                .iter()
                .any(|o| o.type_id == type_id && o.name == *name)
            {
                t.objects.push(ObservedObject {
                    name: name.clone(),
                    type_id,
                    definition: Some(object.definition()),
                });
            }
        }
        Op::DeleteObject { name, type_id } => {
            let keyword = object_keyword(*type_id);
            let at = t
                .objects
                .iter()
                .position(|o| o.type_id == *type_id && o.name == *name)
                .ok_or_else(|| format!("no {keyword} {name}"))?;
            if referenced(t, &object_ref(*type_id, name)) {
                return Err(format!("{keyword} {name} is in use"));
            }
            t.objects.remove(at);
        }
        Op::AddFlowtable { name, flowtable } => {
            match t.flowtables.iter_mut().find(|f| f.name == *name) {
                None => t.flowtables.push(ObservedFlowtable {
                    name: name.clone(),
                    flowtable: Some(flowtable.clone()),
                }),
                Some(have) => {
                    let h = have
                        .flowtable
                        .as_mut()
                        .ok_or_else(|| format!("flowtable {name} is not one wasmwall makes"))?;
                    if (h.priority, h.hardware_offload)
                        != (flowtable.priority, flowtable.hardware_offload)
                    {
                        return Err(format!(
                            "flowtable {name} cannot change its priority or hardware offload"
                        ));
                    }
                    for d in &flowtable.devices {
                        if !h.devices.contains(d) {
                            h.devices.push(d.clone());
                        }
                    }
                    h.devices.sort();
                    h.counter = flowtable.counter;
                }
            }
        }
        Op::DeleteFlowtableDevices { name, devices, .. } => {
            let h = t
                .flowtables
                .iter_mut()
                .find(|f| f.name == *name)
                .and_then(|f| f.flowtable.as_mut())
                .ok_or_else(|| format!("no flowtable {name}"))?;
            if let Some(d) = devices.iter().find(|d| !h.devices.contains(d)) {
                return Err(format!("flowtable {name} has no device {d}"));
            }
            h.devices.retain(|d| !devices.contains(d));
        }
        Op::DeleteFlowtable { name } => {
            let at = t
                .flowtables
                .iter()
                .position(|f| f.name == *name)
                .ok_or_else(|| format!("no flowtable {name}"))?;
            if referenced(t, &Ref::Flowtable(name.clone())) {
                return Err(format!("flowtable {name} is in use"));
            }
            t.flowtables.remove(at);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Whether a rule that refers to an object or flowtable finds it in `t`.
pub(super) fn missing(t: &ObservedTable, r: &Ref) -> Option<String> {
    match r {
        Ref::Object { type_id, name } => (!t
            .objects
            .iter()
            .any(|o| o.type_id == *type_id && o.name == *name))
        .then(|| format!("no {} {name}", object_keyword(*type_id))),
        Ref::Flowtable(name) => {
            (!t.flowtables.iter().any(|f| f.name == *name)).then(|| format!("no flowtable {name}"))
        }
        Ref::Chain(_) | Ref::Set(_) => None,
    }
}

fn referenced(t: &ObservedTable, target: &Ref) -> bool {
    t.chains
        .iter()
        .flat_map(|c| &c.rules)
        .any(|r| r.refs.contains(target))
}

/// An object's block in the table text.
pub(super) fn write_object(out: &mut String, o: &DesiredObject) {
    let keyword = object_keyword(o.object.type_id());
    block(
        out,
        &format!("{keyword} {}", o.name),
        &o.object.definition(),
    );
}

/// A flowtable's block in the table text.
pub(super) fn write_flowtable(out: &mut String, f: &DesiredFlowtable) {
    block(
        out,
        &format!("flowtable {}", f.name),
        &f.flowtable.definition(),
    );
}

fn block(out: &mut String, head: &str, lines: &[String]) {
    let _ = writeln!(out, "\t{head} {{");
    for line in lines {
        let _ = writeln!(out, "\t\t{line}");
    }
    out.push_str("\t}\n");
}

/// `{ a; b; }`, or nothing for no lines.
fn inline(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(" {{ {}; }}", lines.join("; "))
    }
}

/// The nft command of an object or flowtable operation on table `t`;
/// `None` for an operation of another kind.
pub(super) fn command(op: &Op, t: &str) -> Option<String> {
    Some(match op {
        Op::AddObject { name, object } => format!(
            "add {} inet {t} {name}{}",
            object_keyword(object.type_id()),
            inline(&object.definition())
        ),
        Op::DeleteObject { name, type_id } => {
            format!("delete {} inet {t} {name}", object_keyword(*type_id))
        }
        Op::AddFlowtable { name, flowtable } => {
            format!(
                "add flowtable inet {t} {name}{}",
                inline(&flowtable.definition())
            )
        }
        Op::DeleteFlowtableDevices { name, devices, .. } => format!(
            "delete flowtable inet {t} {name} {{ devices = {{ {} }}; }}",
            devices.join(", ")
        ),
        Op::DeleteFlowtable { name } => format!("delete flowtable inet {t} {name}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
