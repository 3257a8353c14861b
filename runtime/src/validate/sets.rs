//! A policy's named sets: names, sizes and elements checked, elements
//! parsed, sorted and without duplicates.

use std::collections::{BTreeSet, HashSet};

use super::rules::not_yet;
use super::values;
use super::{Ctx, Options, PORT_SET_ELEMENTS_MAX, check_name};
use crate::bindings::wit;
use crate::ir::{self, SetElements};

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
        let count = set.elements.len();
        if count > opts.max_set_elements {
            ctx.err(
                &at,
                format!(
                    "has {count} elements; the limit is {} (limits.max_set_elements)",
                    opts.max_set_elements
                ),
            );
            continue;
        }
        let key = match set.key.as_slice() {
            [k @ (wit::KeyType::Ipv4Addr | wit::KeyType::Ipv6Addr | wit::KeyType::InetService)] => {
                *k
            }
            _ => {
                not_yet(ctx, &at, "this key type");
                continue;
            }
        };
        if set.intervals || set.timeout.is_some() || set.dynamic || set.size.is_some() {
            not_yet(ctx, &at, "intervals, timeouts, dynamic sets and sizes");
            continue;
        }
        if key == wit::KeyType::InetService && count > PORT_SET_ELEMENTS_MAX {
            ctx.err(
                &at,
                format!(
                    "has {count} ports; a set of ports holds at most {PORT_SET_ELEMENTS_MAX} (the kernel's set of ports costs the square of its size to load)"
                ),
            );
            continue;
        }
        let before = ctx.problems.len();
        let ir_key = ir::Key(vec![values::key_type(key)]);
        let mut v4s = BTreeSet::new();
        let mut v6s = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for (i, e) in set.elements.iter().enumerate() {
            let at = format!("{at} element {}", i + 1);
            if let Some(ir::Element(v)) =
                values::element(ctx, &at, &ir_key, e, values::Allow::default())
            {
                match v.as_slice() {
                    [ir::Value::Addr(std::net::IpAddr::V4(a))] => {
                        v4s.insert(*a);
                    }
                    [ir::Value::Addr(std::net::IpAddr::V6(a))] => {
                        v6s.insert(*a);
                    }
                    [ir::Value::Number(p)] => {
                        ports.insert(*p as u16);
                    }
                    _ => unreachable!("a single value of the set's key"),
                }
            }
        }
        let elements = match key {
            wit::KeyType::Ipv4Addr => SetElements::Ipv4(v4s.into_iter().collect()),
            wit::KeyType::Ipv6Addr => SetElements::Ipv6(v6s.into_iter().collect()),
            _ => SetElements::Ports(ports.into_iter().collect()),
        };
        if ctx.problems.len() == before {
            out.push(ir::NamedSet {
                name: set.name.clone(),
                elements,
            });
        }
    }
    out
}
