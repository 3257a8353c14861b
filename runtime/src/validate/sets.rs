//! A policy's named sets: names, sizes and elements checked, elements
//! parsed, sorted and without duplicates.

use std::collections::{BTreeSet, HashSet};

use super::rules::not_yet;
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
        // Each element holds one value, of the key's type.
        let mut values = Vec::new();
        for (i, e) in set.elements.iter().enumerate() {
            match e.as_slice() {
                [v] => values.push(v),
                _ => ctx.err(
                    format!("{at} element {}", i + 1),
                    format!("has {} values; the key has 1", e.len()),
                ),
            }
        }
        let elements = match key {
            wit::KeyType::Ipv4Addr | wit::KeyType::Ipv6Addr => {
                let v4 = key == wit::KeyType::Ipv4Addr;
                let (mut v4s, mut v6s) = (BTreeSet::new(), BTreeSet::new());
                for (i, e) in values.iter().enumerate() {
                    let parsed = match e {
                        wit::Value::Address(a) => a.parse::<std::net::IpAddr>().ok(),
                        _ => None,
                    };
                    match parsed {
                        Some(std::net::IpAddr::V4(a)) if v4 => {
                            v4s.insert(a);
                        }
                        Some(std::net::IpAddr::V6(a)) if !v4 => {
                            v6s.insert(a);
                        }
                        _ => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!(
                                "{} is not an {} address",
                                value_text(e),
                                if v4 { "IPv4" } else { "IPv6" }
                            ),
                        ),
                    }
                }
                if v4 {
                    SetElements::Ipv4(v4s.into_iter().collect())
                } else {
                    SetElements::Ipv6(v6s.into_iter().collect())
                }
            }
            _ => {
                let mut ports = BTreeSet::new();
                for (i, e) in values.iter().enumerate() {
                    match e {
                        wit::Value::Number(0) => {
                            ctx.err(&at, "port 0 is not a valid port (use 1-65535)")
                        }
                        wit::Value::Number(p) if *p <= u32::from(u16::MAX) => {
                            ports.insert(*p as u16);
                        }
                        _ => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!("{} is not a port (1-65535)", value_text(e)),
                        ),
                    }
                }
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

/// A value as the policy wrote it, for an error message.
fn value_text(v: &wit::Value) -> String {
    match v {
        wit::Value::Number(n) => n.to_string(),
        wit::Value::NumberRange((a, b)) => format!("{a}-{b}"),
        wit::Value::Address(a) | wit::Value::Name(a) | wit::Value::Mac(a) => crate::text::quote(a),
        wit::Value::AddressRange((a, b)) => {
            format!("{}-{}", crate::text::quote(a), crate::text::quote(b))
        }
    }
}
