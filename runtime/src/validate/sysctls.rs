//! The sysctls a policy asks for: at most `max_sysctls` of them, keys on the
//! allow-list, values numbers (kept in their canonical form), no key (or
//! setting under another name, see [`sysctl::setting`]) asked twice with two
//! values. Linear in the number of keys.

use std::collections::HashMap;

use super::{Ctx, Options};
use crate::bindings::wit;
use crate::ir;
use crate::sysctl;

pub(super) fn convert_sysctls(
    ctx: &mut Ctx,
    opts: &Options,
    sysctls: &[wit::Sysctl],
) -> Vec<ir::Sysctl> {
    if sysctls.len() > opts.max_sysctls {
        // One line, and no key looked at: the count alone refuses it.
        ctx.err(
            "",
            format!(
                "the ruleset has {} sysctls; the limit is {}",
                sysctls.len(),
                opts.max_sysctls
            ),
        );
        return Vec::new();
    }
    let mut out: Vec<ir::Sysctl> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(sysctls.len());
    for (i, s) in sysctls.iter().enumerate() {
        let at = format!("sysctl {}", i + 1);
        let key_ok = opts
            .sysctls
            .check(&s.key)
            .map_err(|e| ctx.err(&at, e.to_string()))
            .is_ok();
        let value = sysctl::canonical_value(&s.value)
            .map_err(|e| ctx.err(&at, format!("{}: {e}", s.key)))
            .ok();
        let (true, Some(value)) = (key_ok, value) else {
            continue;
        };
        match seen.get(sysctl::setting(&s.key)) {
            Some(&first) if out[first].value != value => ctx.err(
                &at,
                format!(
                    "{} is requested twice with different values ({:?} and {:?})",
                    s.key, out[first].value, value
                ),
            ),
            Some(_) => {}
            None => {
                seen.insert(sysctl::setting(&s.key), out.len());
                out.push(ir::Sysctl {
                    key: s.key.clone(),
                    value,
                });
            }
        }
    }
    out
}
