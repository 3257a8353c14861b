//! A policy's named sets, and what sets and maps share: the kind of a set
//! (key, flags, timeout, size) checked against what the kernel takes, and
//! elements parsed, put in one canonical form (a one-part interval set's
//! merged as nft's auto-merge merges them), sorted and without duplicates,
//! with the overlaps, clashes and counts the kernel would refuse named.

use std::collections::HashSet;

use super::values::{self, Allow};
use super::{Ctx, Options, PORT_SET_ELEMENTS_MAX, check_name};
use crate::bindings::wit;
use crate::ir::{self, Data, Element, Key, KeyType, SetElement, SetKind, Value};

/// Longest key (and map data) the kernel takes, in bytes
/// (NFT_DATA_VALUE_MAXLEN): a concatenation of four IPv6 addresses.
pub const KEY_BYTES_MAX: usize = 64;
/// Pairs of concatenated intervals compared for overlaps at most, per set:
/// past it the kernel's own check names what it refuses.
const OVERLAP_CHECKS_MAX: usize = 4_000_000;

pub(super) fn convert_sets(
    ctx: &mut Ctx,
    opts: &Options,
    sets: &[wit::NamedSet],
) -> Vec<ir::NamedSet> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for set in sets {
        let at = format!("set {:?}", set.name);
        if !check_name(ctx, &at, "set", &set.name) {
            continue;
        }
        if !seen.insert(set.name.as_str()) {
            ctx.err(&at, "defined twice");
            continue;
        }
        if !element_count(ctx, &at, opts, set.elements.len()) {
            continue;
        }
        let before = ctx.problems.len();
        let Some(key) = key(ctx, &at, "key", &set.key) else {
            continue;
        };
        let kind = SetKind {
            key,
            data: None,
            intervals: set.intervals,
            timeout: set.timeout,
            dynamic: set.dynamic,
            size: set.size,
        };
        check_kind(ctx, &at, &kind);
        if ctx.problems.len() != before {
            continue;
        }
        if bitmap_backed(&kind) && set.elements.len() > PORT_SET_ELEMENTS_MAX {
            ctx.err(
                &at,
                format!(
                    "has {} ports; a set of ports holds at most {PORT_SET_ELEMENTS_MAX} (the kernel's set of ports costs the square of its size to load)",
                    set.elements.len()
                ),
            );
            continue;
        }
        let allow = Allow {
            intervals: kind.intervals,
            wildcard: false,
        };
        let keys: Vec<(usize, Element)> = set
            .elements
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let at = format!("{at} element {}", i + 1);
                values::element(ctx, &at, &kind.key, e, allow).map(|k| (i, k))
            })
            .collect();
        if ctx.problems.len() != before {
            continue;
        }
        let elements = keys
            .into_iter()
            .map(|(i, key)| (i, SetElement::key(key)))
            .collect();
        if let Some(elements) = canonical(ctx, &at, &kind, elements) {
            out.push(ir::NamedSet {
                name: set.name.clone(),
                elements: ir::SetElements::new(kind, elements),
            });
        }
    }
    out
}

/// Whether `count` elements fit the per-set limit of the config.
pub(super) fn element_count(ctx: &mut Ctx, at: &str, opts: &Options, count: usize) -> bool {
    if count > opts.max_set_elements {
        ctx.err(
            at,
            format!(
                "has {count} elements; the limit is {} (limits.max_set_elements)",
                opts.max_set_elements
            ),
        );
        return false;
    }
    true
}

/// Whether the kernel keeps a set of this kind in its bitmap backend: a
/// plain set of ports, whose load costs the square of its size.
fn bitmap_backed(kind: &SetKind) -> bool {
    kind.holds_ports() && !kind.intervals && kind.timeout.is_none() && !kind.dynamic
}

/// A key (or a map's data) of these types, when the kernel takes one.
pub(super) fn key(ctx: &mut Ctx, at: &str, what: &str, types: &[wit::KeyType]) -> Option<Key> {
    if types.is_empty() {
        ctx.err(at, format!("has no {what} type"));
        return None;
    }
    let key = Key(types.iter().map(|t| values::key_type(*t)).collect());
    if key.len() > KEY_BYTES_MAX {
        ctx.err(
            at,
            format!(
                "its {what} ({key}) takes {} bytes in the kernel; at most {KEY_BYTES_MAX} fit (each part of a concatenation takes whole 4-byte registers)",
                key.len()
            ),
        );
        return None;
    }
    Some(key)
}

/// The problems the kernel (or the runtime's interval handling) has with
/// a set of this kind.
pub(super) fn check_kind(ctx: &mut Ctx, at: &str, kind: &SetKind) {
    if kind.intervals
        && let [one] = kind.key.0.as_slice()
        && matches!(one, KeyType::Ifname | KeyType::Mark | KeyType::EtherAddr)
    {
        ctx.err(
            at,
            format!(
                "intervals on a key of {} alone: its values have no ranges or prefixes; leave intervals off",
                one.name()
            ),
        );
    }
    if kind.timeout == Some(0) {
        ctx.err(
            at,
            "timeout 0: leave the timeout out for elements that do not expire",
        );
    }
    if kind.size == Some(0) {
        ctx.err(at, "size 0: leave the size out for no limit");
    }
    if kind.dynamic {
        if kind.intervals {
            ctx.err(
                at,
                "a dynamic set cannot have intervals (the kernel has no backend that rules can add intervals to)",
            );
        }
        if kind.size.is_none() {
            ctx.err(
                at,
                "a dynamic set needs a size: the most elements rules may add",
            );
        }
    }
}

/// Elements (each with the index the policy gave it) in canonical form:
/// one-part intervals of a set merged; every interval written in one way
/// (a prefix where it is one); sorted, without duplicates. Refuses what
/// the kernel would: a map's key twice with different data, overlapping
/// intervals of a map or of a concatenation, more elements than the size.
pub(super) fn canonical(
    ctx: &mut Ctx,
    at: &str,
    kind: &SetKind,
    elements: Vec<(usize, SetElement)>,
) -> Option<Vec<SetElement>> {
    let before = ctx.problems.len();
    let mut elements: Vec<(usize, SetElement)> = if kind.intervals {
        elements
            .into_iter()
            .map(|(i, e)| (i, with_canonical_intervals(kind, e)))
            .collect()
    } else {
        elements
    };
    if kind.intervals && !kind.key.is_concatenation() && !kind.is_map() {
        let ty = kind.key.0[0];
        let values: Vec<Value> = elements.into_iter().flat_map(|(_, e)| e.key.0).collect();
        elements = ir::merge_intervals(ty, &values)
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i, SetElement::key(Element(vec![v]))))
            .collect();
    }
    elements.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    elements.dedup_by(|later, earlier| later.1 == earlier.1);
    if kind.is_map() {
        for pair in elements.windows(2) {
            let ((i, a), (j, b)) = (&pair[0], &pair[1]);
            if a.key == b.key {
                ctx.err(
                    format!("{at} element {}", i.max(j) + 1),
                    format!(
                        "maps key {} to other data than element {} does",
                        a.key.text(&kind.key),
                        i.min(j) + 1
                    ),
                );
            }
        }
    }
    if kind.intervals && (kind.is_map() || kind.key.is_concatenation()) {
        overlaps(ctx, at, kind, &elements);
    }
    if let Some(size) = kind.size
        && elements.len() > size as usize
    {
        ctx.err(
            at,
            format!(
                "holds {} elements; its size is {size} (the kernel refuses more)",
                elements.len()
            ),
        );
    }
    (ctx.problems.len() == before).then(|| elements.into_iter().map(|(_, e)| e).collect())
}

/// The element with each interval value in its one form: a range that is
/// a prefix as the prefix, a range of one value as the value.
fn with_canonical_intervals(kind: &SetKind, mut e: SetElement) -> SetElement {
    for (v, ty) in e.key.0.iter_mut().zip(&kind.key.0) {
        if v.is_interval()
            && let [one] = ir::merge_intervals(*ty, std::slice::from_ref(v)).as_slice()
        {
            *v = one.clone();
        }
    }
    e
}

/// An element's key as one inclusive span of numbers per part.
fn spans(e: &SetElement, key: &Key) -> Vec<(u128, u128)> {
    e.key
        .0
        .iter()
        .zip(&key.0)
        .map(|(v, ty)| {
            let first = crate::kernel::key_bytes(&Key(vec![*ty]), &Element(vec![v.clone()]));
            let last = crate::kernel::last_key_bytes(&Key(vec![*ty]), &Element(vec![v.clone()]));
            (number(&first), number(&last))
        })
        .collect()
}

/// Bytes as a big-endian number (a key part is at most 16 bytes).
fn number(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0, |n, b| (n << 8) | u128::from(*b))
}

/// An element, with the index the policy gave it and its spans.
struct Boxed<'a> {
    index: usize,
    element: &'a SetElement,
    spans: Vec<(u128, u128)>,
}

/// Names the first pair of elements whose intervals overlap in every part:
/// the kernel refuses such elements in a map and in a set of concatenated
/// intervals (sorted by their first part, each compared with those after
/// it that its first part still overlaps).
fn overlaps(ctx: &mut Ctx, at: &str, kind: &SetKind, elements: &[(usize, SetElement)]) {
    let mut boxes: Vec<Boxed> = elements
        .iter()
        .map(|(index, element)| Boxed {
            index: *index,
            element,
            spans: spans(element, &kind.key),
        })
        .collect();
    boxes.sort_by_key(|b| b.spans[0]);
    let mut checks = 0;
    for (n, a) in boxes.iter().enumerate() {
        for b in &boxes[n + 1..] {
            if b.spans[0].0 > a.spans[0].1 || checks >= OVERLAP_CHECKS_MAX {
                break;
            }
            checks += 1;
            let all = a
                .spans
                .iter()
                .zip(&b.spans)
                .all(|(x, y)| x.0 <= y.1 && y.0 <= x.1);
            if all {
                let (first, second) = if a.index < b.index { (a, b) } else { (b, a) };
                ctx.err(
                    format!("{at} element {}", second.index + 1),
                    format!(
                        "{} overlaps element {} ({}); the kernel refuses overlapping intervals here",
                        second.element.key.text(&kind.key),
                        first.index + 1,
                        first.element.key.text(&kind.key)
                    ),
                );
                return;
            }
        }
    }
}

/// The data elements of a map hold, as the policy wrote them, checked
/// against the map's data kind.
pub(super) fn data(
    ctx: &mut Ctx,
    at: &str,
    kind: &SetKind,
    data: &wit::MapData,
    chains: &super::maps::Chains,
) -> Option<Data> {
    match (&kind.data, data) {
        (Some(ir::MapData::Verdict), wit::MapData::Verdict(v)) => {
            super::maps::verdict(ctx, at, v, chains).map(Data::Verdict)
        }
        (Some(ir::MapData::Values(types)), wit::MapData::Values(values)) => {
            if values.len() != types.0.len() {
                ctx.err(
                    at,
                    format!(
                        "has {} data value(s); the map's data ({types}) has {}",
                        values.len(),
                        types.0.len()
                    ),
                );
                return None;
            }
            values::element(ctx, at, types, values, Allow::default()).map(Data::Values)
        }
        (Some(ir::MapData::Verdict), wit::MapData::Values(_)) => {
            ctx.err(at, "has data values; this map maps keys to verdicts");
            None
        }
        (Some(ir::MapData::Values(types)), wit::MapData::Verdict(_)) => {
            ctx.err(at, format!("has a verdict; this map maps keys to {types}"));
            None
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests;
