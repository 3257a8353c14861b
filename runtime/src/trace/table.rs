//! The table a trace puts its rule in, and the transactions that make and
//! remove it.
//!
//! Each trace has a table of its own, `inet <table>-trace-<pid>`, rather
//! than a chain in the runtime's table: a running daemon repairs drift in
//! its table and would delete a chain it did not ask for, and two traces
//! at once (different pids) never touch each other's rules. The table is
//! the runtime's (it carries the marker), so clean-up may delete it.
//!
//! Its base chains run before every chain of the runtime's table and
//! before conntrack (-200) and DNAT (-100), after defragmentation (-400):
//! at -350 (`raw - 50`, listed as -350) the trace rule sees the packet as it came in or
//! was sent, and marks it (`meta nftrace set 1`) for every later chain of
//! every table to report.

use crate::ir::{Action, BaseChain, ChainPolicy, ChainType, Hook, Rule, Statement, rule_hash};
use crate::plan::{KernelName, Op, Position, RuleTag, Transaction};

use super::filter::Filter;

/// The priority of the trace chains: below every priority wasmwall's
/// policies may use in practice (raw is -300).
pub const PRIORITY: i32 = -350;
/// The tag's policy part of the trace rule.
pub const TAG_POLICY: &str = "trace";

/// The trace table of process `pid` beside the runtime's `table`.
pub fn name(table: &str, pid: u32) -> String {
    format!("{table}-trace-{pid}")
}

/// The trace table's name prefix beside the runtime's `table`; clean-up
/// looks for locks of tables named so.
pub fn prefix(table: &str) -> String {
    format!("{table}-trace-")
}

/// The rule that marks the filter's packets.
pub fn rule(filter: &Filter) -> Rule {
    Rule {
        matches: filter.matches().to_vec(),
        statements: vec![Statement::Nftrace],
        action: Action::Continue,
        comment: Some("wasmwall trace".into()),
        cut_flows: false,
    }
}

fn chain_name(hook: Hook) -> KernelName {
    KernelName::new(TAG_POLICY, hook.as_str())
}

/// Makes the table, one chain per hook of the filter and the rule in each:
/// in one batch, so the table is never there without its rule.
pub fn create(trace_table: &str, filter: &Filter) -> Transaction {
    let rule = rule(filter);
    let tag = RuleTag {
        policy: TAG_POLICY.into(),
        hash: rule_hash(&rule.to_string()),
    };
    let mut ops = vec![Op::AddTable];
    for hook in filter.hooks() {
        ops.push(Op::AddChain {
            name: chain_name(hook),
            base: Some(BaseChain {
                hook,
                chain_type: ChainType::Filter,
                priority: PRIORITY,
                policy: ChainPolicy::Accept,
            }),
        });
    }
    for hook in filter.hooks() {
        ops.push(Op::AddRule {
            chain: chain_name(hook),
            rule: rule.clone(),
            tag: tag.clone(),
            position: Position::Append,
        });
    }
    Transaction {
        table: trace_table.to_string(),
        ops,
    }
}

/// Removes the table with its chains and rule.
pub fn delete(trace_table: &str) -> Transaction {
    Transaction {
        table: trace_table.to_string(),
        ops: vec![Op::DeleteTable],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::filter::FilterSpec;

    #[test]
    fn the_trace_table_marks_the_filtered_packets_before_everything() {
        let filter = Filter::new(&FilterSpec {
            proto: Some("tcp".into()),
            dport: Some("80".into()),
            ..FilterSpec::default()
        })
        .unwrap();
        let tx = create(&name("wasmwall", 42), &filter);
        assert_eq!(tx.table, "wasmwall-trace-42");
        let text = tx.to_string();
        assert!(text.contains("hook prerouting priority -350;"), "{text}");
        assert!(
            text.contains("tcp dport 80 meta nftrace set 1 continue comment \"wasmwall trace\""),
            "{text}"
        );
        assert_eq!(
            tx.ops
                .iter()
                .filter(|o| matches!(o, Op::AddRule { .. }))
                .count(),
            2
        );
        assert!(name("wasmwall", 42).starts_with(&prefix("wasmwall")));
        assert_eq!(delete("wasmwall-trace-42").ops, vec![Op::DeleteTable]);
    }
}
