//! A policy's named sets: names, sizes and elements checked, elements
//! parsed, sorted and without duplicates.

use std::collections::{BTreeSet, HashSet};

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
        let count = match &set.elements {
            wit::SetElements::Ipv4(v) | wit::SetElements::Ipv6(v) => v.len(),
            wit::SetElements::Ports(v) => v.len(),
        };
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
        if matches!(set.elements, wit::SetElements::Ports(_)) && count > PORT_SET_ELEMENTS_MAX {
            ctx.err(
                &at,
                format!(
                    "has {count} ports; a set of ports holds at most {PORT_SET_ELEMENTS_MAX} (the kernel's set of ports costs the square of its size to load)"
                ),
            );
            continue;
        }
        let before = ctx.problems.len();
        let elements = match &set.elements {
            wit::SetElements::Ipv4(v) => {
                let mut addrs = BTreeSet::new();
                for (i, e) in v.iter().enumerate() {
                    match e.parse::<std::net::Ipv4Addr>() {
                        Ok(a) => {
                            addrs.insert(a);
                        }
                        Err(_) => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!("{e:?} is not an IPv4 address"),
                        ),
                    }
                }
                SetElements::Ipv4(addrs.into_iter().collect())
            }
            wit::SetElements::Ipv6(v) => {
                let mut addrs = BTreeSet::new();
                for (i, e) in v.iter().enumerate() {
                    match e.parse::<std::net::Ipv6Addr>() {
                        Ok(a) => {
                            addrs.insert(a);
                        }
                        Err(_) => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!("{e:?} is not an IPv6 address"),
                        ),
                    }
                }
                SetElements::Ipv6(addrs.into_iter().collect())
            }
            wit::SetElements::Ports(v) => {
                if v.contains(&0) {
                    ctx.err(&at, "port 0 is not a valid port (use 1-65535)");
                }
                let ports: BTreeSet<u16> = v.iter().copied().filter(|p| *p != 0).collect();
                SetElements::Ports(ports.into_iter().collect())
            }
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
