//! The planner's values as nft text: a transaction as the commands it
//! sends (what `wasmwall plan` prints, and how a refused message is named),
//! and the table the policies want as the nft text it is in the kernel once
//! applied: every object, set, map, flowtable and chain under its kernel
//! name, and every reference too, so the text loads with `nft -f` as it
//! is, then the sysctls the policies asked for, as comments (what `wasmwall
//! eval` prints and what fixtures expect).

use std::fmt::{self, Write as _};

use super::{DesiredSet, DesiredTable, Op, Position, RuleTag, Transaction, objects};
use crate::ir::{self, BaseChain, PolicyRules, SetElements};

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
    // nft lists a table's objects first (in the kernel's order: the
    // order they were added in), then sets and maps (in the same order),
    // flowtables and chains.
    for object in &desired.objects {
        separate(&mut out);
        objects::write_object(&mut out, object);
    }
    for set in &desired.sets {
        separate(&mut out);
        set_text(&mut out, set);
    }
    for flowtable in &desired.flowtables {
        separate(&mut out);
        objects::write_flowtable(&mut out, flowtable);
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

/// A set or map as `nft list ruleset` shows it: its type, size, flags and
/// timeout, then its elements, broken into lines as nft breaks them (a
/// timeout set's elements without the `expires` nft adds to each).
fn set_text(out: &mut String, set: &DesiredSet) {
    let s = &set.elements;
    let word = if s.kind.is_map() { "map" } else { "set" };
    let _ = writeln!(out, "\t{word} {} {{", set.name);
    let _ = writeln!(out, "\t\ttype {}", s.kind.type_text());
    if let Some(size) = s.kind.size {
        let _ = writeln!(out, "\t\tsize {size}");
    }
    if let Some(flags) = s.kind.flags_text() {
        let _ = writeln!(out, "\t\tflags {flags}");
    }
    if let Some(timeout) = s.kind.timeout {
        let _ = writeln!(out, "\t\ttimeout {}", ir::duration_text(timeout));
    }
    if !s.is_empty() {
        let per_line = ir::elements_per_line(&s.kind.key);
        out.push_str("\t\telements = { ");
        for (i, e) in s.listed().iter().enumerate() {
            if i > 0 {
                out.push_str(if i % per_line == 0 {
                    ",\n\t\t\t     "
                } else {
                    ", "
                });
            }
            out.push_str(&e.text(&s.kind));
        }
        out.push_str(" }\n");
    }
    out.push_str("\t}\n");
}

/// `type ipv4_addr; flags interval; timeout 1m; size 100;`
fn kind_text(kind: &ir::SetKind) -> String {
    let mut out = format!("type {};", kind.type_text());
    if let Some(flags) = kind.flags_text() {
        out.push_str(&format!(" flags {flags};"));
    }
    if let Some(timeout) = kind.timeout {
        out.push_str(&format!(" timeout {};", ir::duration_text(timeout)));
    }
    if let Some(size) = kind.size {
        out.push_str(&format!(" size {size};"));
    }
    out
}

/// Elements named in the text of one element operation.
const ELEMENTS_SHOWN: usize = 8;

/// "a, b, c" or "a, b, ... (10 more)".
pub fn elements_text<K: fmt::Display>(keys: &[K], shown: usize) -> String {
    let mut out: Vec<String> = keys.iter().take(shown).map(K::to_string).collect();
    if keys.len() > shown {
        out.push(format!("... ({} more)", keys.len() - shown));
    }
    out.join(", ")
}

/// `type filter hook input priority filter; policy drop;`
fn base_chain_text(b: &BaseChain) -> String {
    format!(
        "type {} hook {} priority {}; policy {};",
        b.chain_type.as_str(),
        b.hook.as_str(),
        b.priority_text(),
        b.policy.as_str()
    )
}

fn tag_text(tag: Option<&RuleTag>) -> String {
    match tag {
        Some(t) => format!("{} {}", t.policy, t.hash),
        None => "not made by wasmwall".into(),
    }
}

impl Op {
    /// The operation as one nft-like command on table `t`, without the
    /// comment `Display` adds: for a new set the set alone (its elements are
    /// messages of their own), for an element change all its elements
    /// (abbreviated). The kernel adapter names a refused message with it.
    pub fn command(&self, t: &str) -> String {
        let elements_line = |verb: &str, set: &str, elements: &SetElements| {
            format!(
                "{verb} element inet {t} {set} {{ {} }}",
                elements_text(&elements.texts(), ELEMENTS_SHOWN)
            )
        };
        match self {
            Op::AddTable => format!("add table inet {t}"),
            Op::DeleteTable => format!("delete table inet {t}"),
            Op::AddChain { name, base: None } => format!("add chain inet {t} {name}"),
            Op::AddChain {
                name,
                base: Some(base),
            }
            | Op::SetChainPolicy { name, base, .. } => {
                format!("add chain inet {t} {name} {{ {} }}", base_chain_text(base))
            }
            Op::DeleteChain { name } => format!("delete chain inet {t} {name}"),
            Op::AddSet { name, elements } => {
                let word = if elements.kind.is_map() { "map" } else { "set" };
                format!(
                    "add {word} inet {t} {name} {{ {} }}",
                    kind_text(&elements.kind)
                )
            }
            Op::DeleteSet { name } => format!("delete set inet {t} {name}"),
            Op::AddElements { set, elements } => elements_line("add", set, elements),
            Op::DeleteElements { set, elements } => elements_line("delete", set, elements),
            Op::AddRule {
                chain,
                rule,
                position,
                ..
            } => {
                let text = rule.to_string();
                match position {
                    Position::Append => format!("add rule inet {t} {chain} {text}"),
                    Position::Before(h) => {
                        format!("insert rule inet {t} {chain} position {h} {text}")
                    }
                }
            }
            Op::DeleteRule { chain, handle, .. } => {
                format!("delete rule inet {t} {chain} handle {handle}")
            }
            Op::AddObject { .. }
            | Op::DeleteObject { .. }
            | Op::AddFlowtable { .. }
            | Op::DeleteFlowtableDevices { .. }
            | Op::DeleteFlowtable { .. } => {
                objects::command(self, t).expect("an object or flowtable operation")
            }
        }
    }
}

impl fmt::Display for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.table;
        for op in &self.ops {
            let command = op.command(t);
            match op {
                Op::SetChainPolicy { was, .. } => {
                    writeln!(f, "{command}  # policy was {}", was.as_str())?
                }
                Op::AddSet { name, elements } => {
                    writeln!(f, "{command}")?;
                    if !elements.is_empty() {
                        let add = Op::AddElements {
                            set: name.clone(),
                            elements: elements.clone(),
                        };
                        writeln!(f, "{}", add.command(t))?;
                    }
                }
                Op::AddRule { tag, .. } => writeln!(f, "{command}  # {}", tag_text(Some(tag)))?,
                Op::DeleteRule { tag, .. } => {
                    writeln!(f, "{command}  # {}", tag_text(tag.as_ref()))?
                }
                _ => writeln!(f, "{command}")?,
            }
        }
        Ok(())
    }
}
