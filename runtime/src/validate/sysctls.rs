//! The sysctls a policy asks for: keys on the allow-list, values numbers,
//! no key asked twice with two values.

use super::{Ctx, Options};
use crate::bindings::wit;
use crate::ir;
use crate::sysctl;

pub(super) fn convert_sysctls(
    ctx: &mut Ctx,
    opts: &Options,
    sysctls: &[wit::Sysctl],
) -> Vec<ir::Sysctl> {
    let mut out: Vec<ir::Sysctl> = Vec::new();
    for (i, s) in sysctls.iter().enumerate() {
        let at = format!("sysctl {}", i + 1);
        let mut ok = true;
        if let Err(e) = opts.sysctls.check(&s.key) {
            ctx.err(&at, e.to_string());
            ok = false;
        }
        if let Err(e) = sysctl::check_value(&s.value) {
            ctx.err(&at, format!("{}: {e}", s.key));
            ok = false;
        }
        if !ok {
            continue;
        }
        match out.iter().find(|o| o.key == s.key) {
            Some(o) if o.value != s.value => ctx.err(
                &at,
                format!(
                    "{} is requested twice with different values ({:?} and {:?})",
                    s.key, o.value, s.value
                ),
            ),
            Some(_) => {}
            None => out.push(ir::Sysctl {
                key: s.key.clone(),
                value: s.value.clone(),
            }),
        }
    }
    out
}
