//! The table the policies want, as the nft text it is in the kernel once
//! applied: every chain and set under its kernel name, and every reference
//! too, so the text loads with `nft -f` as it is. Then the sysctls the
//! policies asked for, as comments. What `wasmwall eval` prints and what
//! fixtures expect.

use std::fmt::Write as _;

use super::{DesiredTable, base_chain_text};
use crate::ir::PolicyRules;

/// The text of `table` holding `policies`' rules.
pub fn table_text(table: &str, policies: &[PolicyRules]) -> String {
    let desired = DesiredTable::from_policies(policies);
    let mut out = format!("table inet {table} {{\n");
    let mut first = true;
    let mut separate = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push('\n');
        }
    };
    for set in &desired.sets {
        separate(&mut out);
        let _ = writeln!(out, "\tset {} {{", set.name);
        let _ = writeln!(out, "\t\ttype {}", set.elements.type_name());
        if !set.elements.is_empty() {
            let _ = writeln!(
                out,
                "\t\telements = {{ {} }}",
                set.elements.texts().join(", ")
            );
        }
        out.push_str("\t}\n");
    }
    for chain in &desired.chains {
        separate(&mut out);
        let _ = writeln!(out, "\tchain {} {{", chain.name);
        if let Some(b) = &chain.base {
            let _ = writeln!(out, "\t\t{}", base_chain_text(b));
        }
        for r in &chain.rules {
            let _ = writeln!(out, "\t\t{}", r.rule);
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    for p in policies {
        for s in &p.rules.sysctls {
            let _ = writeln!(
                out,
                "# sysctl {} = {} (policy {})",
                s.key, s.value, p.policy
            );
        }
    }
    out
}
