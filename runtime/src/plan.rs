//! Pure planning: from the desired rules of every policy to a [`Transaction`]
//! of kernel operations. No I/O happens here.
//!
//! The transaction prints as nft-like text, so it can be shown before it is
//! applied and compared in tests.

use std::fmt;

use crate::ir::{self, Action, BaseChain, Match, PolicyRules, Rule, SetElements};

/// Identity stored in a rule's userdata: which policy made it and the hash of
/// its canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleTag {
    pub policy: String,
    pub hash: String,
}

/// One kernel operation. Every name is a kernel name (`<policy>/<name>`), and
/// every chain or set a rule refers to is a kernel name too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create the table if it does not exist (no error if it does).
    AddTable,
    /// Delete the table and everything in it.
    DeleteTable,
    AddChain {
        name: String,
        base: Option<BaseChain>,
    },
    /// Create a set and add its elements.
    AddSet { name: String, elements: SetElements },
    /// Append a rule to a chain.
    AddRule {
        chain: String,
        rule: Rule,
        tag: RuleTag,
    },
}

/// An ordered list of operations on one `inet` table, applied by the kernel
/// adapter in one atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub table: String,
    pub ops: Vec<Op>,
}

impl Transaction {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl fmt::Display for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.table;
        for op in &self.ops {
            match op {
                Op::AddTable => writeln!(f, "add table inet {t}")?,
                Op::DeleteTable => writeln!(f, "delete table inet {t}")?,
                Op::AddChain { name, base: None } => writeln!(f, "add chain inet {t} {name}")?,
                Op::AddChain {
                    name,
                    base: Some(b),
                } => writeln!(
                    f,
                    "add chain inet {t} {name} {{ type {} hook {} priority {}; policy {}; }}",
                    b.chain_type.as_str(),
                    b.hook.as_str(),
                    b.priority,
                    b.policy.as_str()
                )?,
                Op::AddSet { name, elements } => {
                    writeln!(
                        f,
                        "add set inet {t} {name} {{ type {}; }}",
                        elements.type_name()
                    )?;
                    if !elements.is_empty() {
                        writeln!(
                            f,
                            "add element inet {t} {name} {{ {} }}",
                            elements.texts().join(", ")
                        )?;
                    }
                }
                Op::AddRule { chain, rule, tag } => writeln!(
                    f,
                    "add rule inet {t} {chain} {}  # {} {}",
                    rule.render(&|c| c.to_string()),
                    tag.policy,
                    tag.hash
                )?,
            }
        }
        Ok(())
    }
}

/// Rewrites the chain and set names a rule refers to into kernel names.
fn to_kernel_names(policy: &str, rule: &Rule) -> Rule {
    let mut rule = rule.clone();
    for m in &mut rule.matches {
        match m {
            Match::AddrInSet { set, .. } | Match::PortInSet { set, .. } => {
                *set = ir::kernel_name(policy, set);
            }
            _ => {}
        }
    }
    if let Action::Jump(c) | Action::Goto(c) = &mut rule.action {
        *c = ir::kernel_name(policy, c);
    }
    rule
}

/// The operations that create every policy's chains, sets and rules in an
/// empty table, in dependency order: sets and chains before the rules that
/// refer to them.
fn populate(policies: &[PolicyRules]) -> Vec<Op> {
    let mut ops = Vec::new();
    for p in policies {
        for set in &p.rules.sets {
            ops.push(Op::AddSet {
                name: ir::kernel_name(&p.policy, &set.name),
                elements: set.elements.clone(),
            });
        }
        for chain in &p.rules.chains {
            ops.push(Op::AddChain {
                name: ir::kernel_name(&p.policy, &chain.name),
                base: chain.base,
            });
        }
    }
    for p in policies {
        for chain in &p.rules.chains {
            let chain_name = ir::kernel_name(&p.policy, &chain.name);
            for rule in &chain.rules {
                let rule = to_kernel_names(&p.policy, rule);
                let hash = ir::rule_hash(&rule.render(&|c| c.to_string()));
                ops.push(Op::AddRule {
                    chain: chain_name.clone(),
                    rule,
                    tag: RuleTag {
                        policy: p.policy.clone(),
                        hash,
                    },
                });
            }
        }
    }
    ops
}

/// Replaces the whole table atomically: whatever it held (if anything) is
/// gone and the desired content is in place, in one batch, with no moment in
/// between where neither is live.
pub fn replace_table(table: &str, policies: &[PolicyRules]) -> Transaction {
    // "add" first so that "delete" cannot fail on a missing table.
    let mut ops = vec![Op::AddTable, Op::DeleteTable, Op::AddTable];
    ops.extend(populate(policies));
    Transaction {
        table: table.to_string(),
        ops,
    }
}

/// Removes the table and everything in it (no error if it is absent).
pub fn remove_table(table: &str) -> Transaction {
    Transaction {
        table: table.to_string(),
        ops: vec![Op::AddTable, Op::DeleteTable],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::*;

    fn sample() -> Vec<PolicyRules> {
        vec![PolicyRules {
            policy: "pf".into(),
            rules: Ruleset {
                chains: vec![
                    Chain {
                        name: "input".into(),
                        base: Some(BaseChain {
                            hook: Hook::Input,
                            chain_type: ChainType::Filter,
                            priority: 0,
                            policy: ChainPolicy::Drop,
                        }),
                        rules: vec![Rule {
                            matches: vec![Match::AddrInSet {
                                dir: Dir::Source,
                                family: Family::V4,
                                set: "friends".into(),
                            }],
                            counter: false,
                            log_prefix: None,
                            action: Action::Jump("allowed".into()),
                            comment: None,
                        }],
                    },
                    Chain {
                        name: "allowed".into(),
                        base: None,
                        rules: vec![Rule {
                            matches: vec![],
                            counter: true,
                            log_prefix: None,
                            action: Action::Accept,
                            comment: None,
                        }],
                    },
                ],
                sets: vec![NamedSet {
                    name: "friends".into(),
                    elements: SetElements::Ipv4(vec!["192.168.0.2".parse().unwrap()]),
                }],
                sysctls: vec![],
            },
        }]
    }

    #[test]
    fn replace_table_golden() {
        let tx = replace_table("wasmwall", &sample());
        let expected = "\
add table inet wasmwall
delete table inet wasmwall
add table inet wasmwall
add set inet wasmwall pf/friends { type ipv4_addr; }
add element inet wasmwall pf/friends { 192.168.0.2 }
add chain inet wasmwall pf/input { type filter hook input priority 0; policy drop; }
add chain inet wasmwall pf/allowed
add rule inet wasmwall pf/input ip saddr @pf/friends jump pf/allowed  # pf 8a3f3c4a1ee2c3b2
add rule inet wasmwall pf/allowed counter accept  # pf 0ba2b3c0e3b0c7d8
";
        let got = tx.to_string();
        // Hashes are checked separately; compare the text with them masked.
        let mask = |s: &str| {
            s.lines()
                .map(|l| match l.rsplit_once(' ') {
                    Some((head, h)) if l.contains("  # ") && h.len() == 16 => {
                        format!("{head} <hash>")
                    }
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(mask(&got), mask(expected), "got:\n{got}");
    }

    #[test]
    fn hashes_depend_on_content_not_position() {
        let tx = replace_table("t", &sample());
        let hashes: Vec<&str> = tx
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::AddRule { tag, .. } => Some(tag.hash.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(hashes.len(), 2);
        assert_ne!(hashes[0], hashes[1]);
        assert_eq!(
            hashes[1],
            rule_hash("counter accept"),
            "a rule's hash is the hash of its canonical text"
        );
    }
}
