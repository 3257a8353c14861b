//! A policy's counters, limits, conntrack helpers and flowtables: names
//! unique among everything its rules name (sets, maps, objects and
//! flowtables), each definition checked against what this kernel has (the
//! world's kernel features), and converted to the IR.

use std::collections::HashMap;

use super::actions::convert_rate;
use super::{Ctx, check_name};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{CtHelper, Flowtable, NamedFlowtable, NamedObject, Object, Transport};
use crate::text::quote;
use crate::world;

/// Longest conntrack helper name (NF_CT_HELPER_NAME_LEN, with its NUL).
pub const CT_HELPER_NAME_MAX: usize = 15;
/// Most devices of one flowtable (the kernel's NFT_NETDEVICE_MAX).
pub const FLOWTABLE_DEVICES_MAX: usize = 256;

/// A policy's objects and flowtables, converted.
pub(super) struct Converted {
    pub objects: Vec<NamedObject>,
    pub flowtables: Vec<NamedFlowtable>,
}

pub(super) fn convert_objects(
    ctx: &mut Ctx,
    ruleset: &wit::Ruleset,
    features: &wit::KernelFeatures,
) -> Converted {
    unique_names(ctx, ruleset);
    let mut objects = Vec::new();
    for counter in &ruleset.counters {
        let at = format!("counter {:?}", counter.name);
        if check_name(ctx, &at, "counter", &counter.name) {
            objects.push(NamedObject {
                name: counter.name.clone(),
                object: Object::Counter,
            });
        }
    }
    for limit in &ruleset.limits {
        let at = format!("limit {:?}", limit.name);
        if !check_name(ctx, &at, "limit", &limit.name) {
            continue;
        }
        if let Some(rate) = convert_rate(ctx, &at, "the limit's", &limit.limit.rate) {
            objects.push(NamedObject {
                name: limit.name.clone(),
                object: Object::Limit {
                    rate,
                    over: limit.limit.over,
                },
            });
        }
    }
    for helper in &ruleset.ct_helpers {
        let at = format!("ct helper {:?}", helper.name);
        if !check_name(ctx, &at, "ct helper", &helper.name) {
            continue;
        }
        if let Some(h) = ct_helper(ctx, &at, helper, features) {
            objects.push(NamedObject {
                name: helper.name.clone(),
                object: Object::CtHelper(h),
            });
        }
    }
    let flowtables = ruleset
        .flowtables
        .iter()
        .filter_map(|ft| {
            let at = format!("flowtable {:?}", ft.name);
            if !check_name(ctx, &at, "flowtable", &ft.name) {
                return None;
            }
            Some(NamedFlowtable {
                name: ft.name.clone(),
                flowtable: flowtable(ctx, &at, ft, ruleset, features)?,
            })
        })
        .collect();
    Converted {
        objects,
        flowtables,
    }
}

/// One error for each name of an object or flowtable that another set,
/// map, object or flowtable of the policy has already, naming both. Sets
/// and maps among themselves are `sets`' and `maps`' to check.
fn unique_names(ctx: &mut Ctx, ruleset: &wit::Ruleset) {
    let named = [
        (
            "set",
            ruleset.sets.iter().map(|s| &s.name).collect::<Vec<_>>(),
        ),
        ("map", ruleset.maps.iter().map(|m| &m.name).collect()),
        (
            "counter",
            ruleset.counters.iter().map(|c| &c.name).collect(),
        ),
        ("limit", ruleset.limits.iter().map(|l| &l.name).collect()),
        (
            "ct helper",
            ruleset.ct_helpers.iter().map(|h| &h.name).collect(),
        ),
        (
            "flowtable",
            ruleset.flowtables.iter().map(|f| &f.name).collect(),
        ),
    ];
    let mut first: HashMap<&str, &str> = HashMap::new();
    for (kind, names) in named {
        for name in names {
            match first.get(name.as_str()) {
                None => {
                    first.insert(name, kind);
                }
                Some(_) if matches!(kind, "set" | "map") => {}
                Some(&other) if other == kind => {
                    ctx.err(format!("{kind} {name:?}"), "defined twice");
                }
                Some(&other) => ctx.err(
                    format!("{kind} {name:?}"),
                    format!(
                        "{other} {name:?} has the same name; a policy's sets, maps, counters, limits, ct helpers and flowtables need names of their own"
                    ),
                ),
            }
        }
    }
}

fn ct_helper(
    ctx: &mut Ctx,
    at: &str,
    helper: &wit::CtHelper,
    features: &wit::KernelFeatures,
) -> Option<CtHelper> {
    let name = &helper.helper;
    let printable = name.chars().all(|c| c.is_ascii_graphic() && c != '"');
    if name.is_empty() || name.len() > CT_HELPER_NAME_MAX || !printable {
        ctx.err(
            at,
            format!(
                "helper {} is not a conntrack helper name (1-{CT_HELPER_NAME_MAX} printable characters, no '\"')",
                quote(name)
            ),
        );
        return None;
    }
    if !features.ct_helpers.iter().any(|h| h == name) {
        let has = if features.ct_helpers.is_empty() {
            "none".to_string()
        } else {
            features.ct_helpers.join(", ")
        };
        ctx.err(
            at,
            format!(
                "this kernel has no conntrack helper {} (kernel-features.ct-helpers: {has})",
                quote(name)
            ),
        );
        return None;
    }
    let protocol = match helper.protocol {
        wit::Transport::Tcp => Transport::Tcp,
        wit::Transport::Udp => Transport::Udp,
        wit::Transport::Sctp => {
            ctx.err(
                at,
                "no conntrack helper follows sctp (the kernel's helpers follow tcp or udp)",
            );
            return None;
        }
    };
    if let Some(follows) = world::ct_helper_protocols(name)
        && !follows.contains(&protocol)
    {
        let names: Vec<&str> = follows.iter().map(|t| t.as_str()).collect();
        ctx.err(
            at,
            format!(
                "the kernel's {} helper follows {}, not {}",
                quote(name),
                names.join(" and "),
                protocol.as_str()
            ),
        );
        return None;
    }
    Some(CtHelper {
        helper: name.clone(),
        protocol,
    })
}

fn flowtable(
    ctx: &mut Ctx,
    at: &str,
    ft: &wit::Flowtable,
    ruleset: &wit::Ruleset,
    features: &wit::KernelFeatures,
) -> Option<Flowtable> {
    let before = ctx.problems.len();
    if !features.flowtables {
        ctx.err(
            at,
            "this kernel has no flowtables (it is built without CONFIG_NF_FLOW_TABLE; kernel-features.flowtables is false)",
        );
        return None;
    }
    if ft.devices.is_empty() {
        ctx.err(
            at,
            "lists no devices; a flowtable takes the packets of at least one interface",
        );
    }
    if ft.devices.len() > FLOWTABLE_DEVICES_MAX {
        ctx.err(
            at,
            format!(
                "lists {} devices; the kernel takes at most {FLOWTABLE_DEVICES_MAX}",
                ft.devices.len()
            ),
        );
        return None;
    }
    for (i, device) in ft.devices.iter().enumerate() {
        if let Some(p) = fields::ifname_problem(device) {
            ctx.err(
                format!("{at} device {}", i + 1),
                format!("interface name {} {p}", quote(device)),
            );
        }
    }
    // The kernel takes a device in one flowtable of a table only.
    for other in &ruleset.flowtables {
        if other.name == ft.name {
            break;
        }
        if let Some(shared) = ft.devices.iter().find(|d| other.devices.contains(d)) {
            ctx.err(
                at,
                format!(
                    "device {} is in flowtable {:?} already; a device can be in one flowtable only",
                    quote(shared),
                    other.name
                ),
            );
        }
    }
    if ft.hardware_offload {
        let cannot: Vec<String> = ft
            .devices
            .iter()
            .filter(|d| !features.hardware_offload.contains(d))
            .map(|d| quote(d))
            .collect();
        if !cannot.is_empty() {
            ctx.err(
                at,
                format!(
                    "hardware offload needs devices whose driver offloads flows (hw-tc-offload on; kernel-features.hardware-offload); {} cannot",
                    cannot.join(", ")
                ),
            );
        }
    }
    if ctx.problems.len() != before {
        return None;
    }
    let mut devices = ft.devices.clone();
    devices.sort();
    devices.dedup();
    Some(Flowtable {
        priority: ft.priority,
        devices,
        hardware_offload: ft.hardware_offload,
        counter: ft.counter,
    })
}

#[cfg(test)]
mod tests;
