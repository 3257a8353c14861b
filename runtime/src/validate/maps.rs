//! A policy's named maps (verdict maps and data maps), the inline maps of
//! its rules, and the actions that look a key up in one (`vmap`,
//! `dnat-map`, `snat-map`): the key's fields checked against the map's key,
//! the data against the use, verdicts against the chains, and the chains a
//! map's verdicts continue in, which are part of the jump graph.

use std::collections::{HashMap, HashSet};

use super::rules::{RuleFacts, SetKinds};
use super::sets::{self, canonical, check_kind, element_count};
use super::values::{self, Allow};
use super::{ChainInfo, Ctx, Options, check_name};
use crate::bindings::wit;
use crate::ir::{
    self, Action, Family, Field, Key, KeyType, L4Proto, MapData, MapLookup, MapSource, NatMap,
    SetElement, SetElements, SetKind, Verdict,
};
use crate::text::quote;

/// The policy's chains by name.
pub(super) type Chains<'a> = HashMap<&'a str, ChainInfo>;

/// Each named map's chains (those its verdicts jump or go to).
pub(super) type MapTargets<'a> = HashMap<&'a str, Vec<&'a str>>;

pub(super) fn convert_maps(
    ctx: &mut Ctx,
    opts: &Options,
    maps: &[wit::NamedMap],
    chains: &Chains,
    sets: &[ir::NamedSet],
) -> Vec<ir::NamedSet> {
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    for map in maps {
        let at = format!("map {:?}", map.name);
        if !check_name(ctx, &at, "map", &map.name) {
            continue;
        }
        if !seen.insert(map.name.as_str()) {
            ctx.err(&at, "defined twice (sets and maps share names)");
            continue;
        }
        if !element_count(ctx, &at, opts, map.elements.len()) {
            continue;
        }
        let before = ctx.problems.len();
        let key = sets::key(ctx, &at, "key", &map.key);
        let data = match &map.data {
            None => Some(MapData::Verdict),
            Some(types) => sets::key(ctx, &at, "data", types).map(MapData::Values),
        };
        let (Some(key), Some(data)) = (key, data) else {
            continue;
        };
        let kind = SetKind {
            data: Some(data),
            intervals: map.intervals,
            ..SetKind::plain(key)
        };
        check_kind(ctx, &at, &kind);
        if ctx.problems.len() != before {
            continue;
        }
        if let Some(elements) = elements(ctx, &at, &kind, &map.elements, chains) {
            out.push(ir::NamedSet {
                name: map.name.clone(),
                elements: SetElements::new(kind, elements),
            });
        }
    }
    out
}

/// A map's elements of `kind`, in canonical form.
fn elements(
    ctx: &mut Ctx,
    at: &str,
    kind: &SetKind,
    elements: &[wit::MapElement],
    chains: &Chains,
) -> Option<Vec<SetElement>> {
    let before = ctx.problems.len();
    let allow = Allow {
        intervals: kind.intervals,
        wildcard: false,
    };
    let converted: Vec<(usize, SetElement)> = elements
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let at = format!("{at} element {}", i + 1);
            let key = values::element(ctx, &at, &kind.key, &e.key, allow);
            let data = sets::data(ctx, &at, kind, &e.data, chains);
            Some((i, SetElement { key: key?, data }))
        })
        .collect();
    if ctx.problems.len() != before {
        return None;
    }
    canonical(ctx, at, kind, converted)
}

/// A verdict of a map's element; a jump or goto must name a regular chain
/// of the policy (the kernel refuses a jump to a base chain).
pub(super) fn verdict(
    ctx: &mut Ctx,
    at: &str,
    v: &wit::Verdict,
    chains: &Chains,
) -> Option<Verdict> {
    let (verb, target) = match v {
        wit::Verdict::Accept => return Some(Verdict::Accept),
        wit::Verdict::Drop => return Some(Verdict::Drop),
        wit::Verdict::Return => return Some(Verdict::Return),
        wit::Verdict::Jump(c) => ("jump", c),
        wit::Verdict::Goto(c) => ("goto", c),
    };
    jumpable(ctx, at, verb, target, chains).then(|| {
        if verb == "jump" {
            Verdict::Jump(target.clone())
        } else {
            Verdict::Goto(target.clone())
        }
    })
}

/// Whether a jump or goto (`verb`) to `target` names a regular chain of the
/// policy, as the kernel needs (it refuses a jump to a base chain); if not,
/// the problem is in `ctx`.
pub(super) fn jumpable(ctx: &mut Ctx, at: &str, verb: &str, target: &str, chains: &Chains) -> bool {
    match chains.get(target) {
        None => {
            ctx.err(at, format!("{verb} to unknown chain {}", quote(target)));
            false
        }
        Some(ChainInfo { base: Some(_) }) => {
            ctx.err(
                at,
                format!("{verb} to base chain {target:?}; only regular chains can be jumped to"),
            );
            false
        }
        Some(_) => true,
    }
}

/// The chains each named map's verdicts continue in.
pub(super) fn map_targets(maps: &[wit::NamedMap]) -> MapTargets<'_> {
    maps.iter()
        .map(|m| {
            let targets = m.elements.iter().filter_map(|e| element_target(&e.data));
            (m.name.as_str(), targets.collect())
        })
        .collect()
}

fn element_target(data: &wit::MapData) -> Option<&str> {
    match data {
        wit::MapData::Verdict(wit::Verdict::Jump(c) | wit::Verdict::Goto(c)) => Some(c),
        _ => None,
    }
}

/// The chains a rule continues in: its jump or goto, and the verdicts of
/// the map its `vmap` looks up.
pub(super) fn rule_targets<'a>(rule: &'a wit::Rule, maps: &MapTargets<'a>) -> Vec<&'a str> {
    match &rule.action {
        wit::Action::Jump(t) | wit::Action::Goto(t) => vec![t.as_str()],
        wit::Action::Vmap(lookup) => match &lookup.map {
            wit::MapSource::Named(name) => maps.get(name.as_str()).cloned().unwrap_or_default(),
            wit::MapSource::Inline(elements) => elements
                .iter()
                .filter_map(|e| element_target(&e.data))
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// What a map action needs of the rest of the rule and of the policy.
pub(super) struct Context<'a, 'b> {
    pub facts: &'a RuleFacts,
    pub sets: &'a SetKinds<'b>,
    pub chains: &'a Chains<'b>,
}

/// A `vmap`, `dnat-map` or `snat-map` action; `nat_allowed` checks that a
/// NAT action suits the hooks the rule runs in (and names them if not).
pub(super) fn map_action(
    ctx: &mut Ctx,
    at: &str,
    action: &wit::Action,
    cx: &Context,
    nat_allowed: &mut dyn FnMut(&mut Ctx, &str) -> bool,
) -> Option<Action> {
    match action {
        wit::Action::Vmap(lookup) => {
            let fields = fields(ctx, at, &lookup.key)?;
            let (map, _) = source(ctx, at, "vmap", &fields, &lookup.map, Use::Verdict, cx)?;
            Some(Action::Vmap(MapLookup { fields, map }))
        }
        wit::Action::DnatMap(nat) | wit::Action::SnatMap(nat) => {
            let what = if matches!(action, wit::Action::DnatMap(_)) {
                "dnat"
            } else {
                "snat"
            };
            let ok = nat_allowed(ctx, what);
            let family = super::matches::family(nat.family);
            if let Some(f) = cx.facts.family
                && f != family
            {
                ctx.err(
                    at,
                    format!(
                        "{what} {} translates {} packets, but the rule matches {} packets",
                        family.keyword(),
                        family_name(family),
                        family_name(f)
                    ),
                );
                return None;
            }
            let fields = fields(ctx, at, &nat.lookup.key)?;
            if fields
                .iter()
                .any(|f| f.family().is_some_and(|f| f != family))
            {
                ctx.err(
                    at,
                    format!(
                        "{what} {} translates {} packets, but its key reads {} fields",
                        family.keyword(),
                        family_name(family),
                        family_name(other(family))
                    ),
                );
                return None;
            }
            let usage = Use::Nat { what, family };
            let (map, data) = source(ctx, at, what, &fields, &nat.lookup.map, usage, cx)?;
            let nat = NatMap {
                family,
                lookup: MapLookup { fields, map },
                ports: matches!(data, MapData::Values(Key(t)) if t.len() == 2),
            };
            if !ok {
                return None;
            }
            Some(if what == "dnat" {
                Action::DnatMap(nat)
            } else {
                Action::SnatMap(nat)
            })
        }
        _ => None,
    }
}

fn other(f: Family) -> Family {
    match f {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// What a looked-up map's data is for.
#[derive(Clone, Copy)]
enum Use<'a> {
    Verdict,
    /// An address, or an address and a port, of `family`.
    Nat {
        what: &'a str,
        family: Family,
    },
}

impl Use<'_> {
    /// Whether `data` suits this use, and if not what would.
    fn fits(self, data: &MapData) -> Result<(), String> {
        match (self, data) {
            (Use::Verdict, MapData::Verdict) => Ok(()),
            (Use::Verdict, MapData::Values(_)) => Err("vmap needs a map to verdicts".into()),
            (Use::Nat { what, family }, data) => {
                let addr = match family {
                    Family::V4 => KeyType::Ipv4Addr,
                    Family::V6 => KeyType::Ipv6Addr,
                };
                match data {
                    MapData::Values(Key(types))
                        if types.as_slice() == [addr]
                            || types.as_slice() == [addr, KeyType::InetService] =>
                    {
                        Ok(())
                    }
                    _ => Err(format!(
                        "{what} {} needs a map to {} or {} . inet_service",
                        family.keyword(),
                        addr.name(),
                        addr.name()
                    )),
                }
            }
        }
    }
}

/// The map a lookup by `fields` finds, checked against its use, and its
/// data: a named map of the policy whose key the fields fit, or inline
/// elements.
fn source(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    fields: &[Field],
    map: &wit::MapSource,
    usage: Use,
    cx: &Context,
) -> Option<(MapSource, MapData)> {
    let key = ir::key_of(fields);
    let out = match map {
        wit::MapSource::Named(name) => {
            let Some(kind) = cx.sets.get(name.as_str()) else {
                ctx.err(at, format!("{what} looks up unknown map {}", quote(name)));
                return None;
            };
            let Some(data) = &kind.data else {
                ctx.err(
                    at,
                    format!("{what} looks up {}, which is a set, not a map", quote(name)),
                );
                return None;
            };
            if let Err(needs) = usage.fits(data) {
                ctx.err(
                    at,
                    format!("map {} maps {}; {needs}", quote(name), kind.type_text()),
                );
                return None;
            }
            if kind.key != key {
                ctx.err(
                    at,
                    format!(
                        "the key {} ({key}) does not fit map {} (key {})",
                        ir::fields_text(fields),
                        quote(name),
                        kind.key
                    ),
                );
                return None;
            }
            let data = data.clone();
            ports_matched(ctx, at, what, fields, &data, cx)?;
            return Some((MapSource::Named(name.clone()), data));
        }
        wit::MapSource::Inline(elements) => inline(ctx, at, what, key, elements, usage, cx)?,
    };
    let data = out.kind.data.clone().expect("an inline map has data");
    ports_matched(ctx, at, what, fields, &data, cx)?;
    Some((MapSource::Inline(out), data))
}

/// NAT to a port needs a tcp or udp match in the rule, or a tcp or udp port
/// among the key's fields (nft and the kernel translate ports of those).
fn ports_matched(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    fields: &[Field],
    data: &MapData,
    cx: &Context,
) -> Option<()> {
    let with_port = matches!(data, MapData::Values(Key(t)) if t.len() == 2);
    let keyed_by_port = fields
        .iter()
        .any(|f| matches!(f, Field::Sport(_) | Field::Dport(_)));
    let matched = matches!(cx.facts.l4, Some(L4Proto::Tcp | L4Proto::Udp));
    if with_port && !keyed_by_port && !matched {
        ctx.err(
            at,
            format!("{what} to a port needs a tcp or udp match in the rule, or a port in the key"),
        );
        return None;
    }
    Some(())
}

/// An inline map: its key of the fields' types, its data of the use (for
/// NAT an address, and a port when its elements hold two values), and
/// intervals when an element holds a prefix or range.
fn inline(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    key: Key,
    elements: &[wit::MapElement],
    usage: Use,
    cx: &Context,
) -> Option<SetElements> {
    let at_map = format!("{at} {what} map");
    if elements.is_empty() {
        ctx.err(&at_map, "has no elements");
        return None;
    }
    let data = match usage {
        Use::Verdict => MapData::Verdict,
        Use::Nat { family, .. } => {
            let addr = match family {
                Family::V4 => KeyType::Ipv4Addr,
                Family::V6 => KeyType::Ipv6Addr,
            };
            let parts = match &elements[0].data {
                wit::MapData::Values(v) if v.len() == 2 => vec![addr, KeyType::InetService],
                _ => vec![addr],
            };
            MapData::Values(Key(parts))
        }
    };
    let intervals = elements.iter().any(|e| e.key.iter().any(is_interval));
    let kind = SetKind {
        data: Some(data),
        intervals,
        ..SetKind::plain(key)
    };
    let before = ctx.problems.len();
    check_kind(ctx, &at_map, &kind);
    if ctx.problems.len() != before {
        return None;
    }
    let elements = self::elements(ctx, &at_map, &kind, elements, cx.chains)?;
    Some(SetElements::new(kind, elements))
}

/// Whether a value as the policy wrote it stands for more than one key.
fn is_interval(v: &wit::Value) -> bool {
    match v {
        wit::Value::NumberRange((a, b)) => a != b,
        wit::Value::AddressRange((a, b)) => a != b,
        wit::Value::Address(a) => {
            values::prefix(a).is_ok_and(|net| net.prefix() < if net.is_ipv4() { 32 } else { 128 })
        }
        _ => false,
    }
}

/// The fields of a map's key.
fn fields(ctx: &mut Ctx, at: &str, fields: &[wit::Field]) -> Option<Vec<Field>> {
    if fields.is_empty() {
        ctx.err(at, "a map lookup needs at least one field in its key");
        return None;
    }
    let before = ctx.problems.len();
    let out: Vec<Field> = fields.iter().map(super::matches::field).collect();
    let families: HashSet<Family> = out.iter().filter_map(|f| f.family()).collect();
    if families.len() > 1 {
        ctx.err(at, "the map's key mixes IPv4 and IPv6 fields");
    }
    if out.iter().any(|f| matches!(f, Field::Dscp(_))) {
        // The kernel compares a DSCP in the header's bits, shifted: a
        // map's keys are of the DSCP's type, not of those bits.
        ctx.err(
            at,
            "a map cannot be keyed by a DSCP (match DSCP values with a test instead)",
        );
    }
    (ctx.problems.len() == before).then_some(out)
}
