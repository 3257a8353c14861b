//! The table's budget held at every apply and plan, before anything is
//! sent: a policy whose answer would take the whole table over its budget
//! of kernel objects fails alone (its last known good rules stay), the
//! policies earlier in the config served first.

use crate::kernel::Kernel;
use crate::plan::{ChainKind, ObservedTable};
use crate::validate::budget::{self, Counts};

use super::Firewall;
use super::error::{EngineError, PolicyError, PolicyFailure};
use super::evaluate::{Evaluation, log_failure};

/// What the kernel holds for `policy` in the runtime's table.
fn held(table: Option<&ObservedTable>, policy: &str) -> Counts {
    let mut c = Counts::default();
    let Some(table) = table else {
        return c;
    };
    for chain in table
        .chains
        .iter()
        .filter(|ch| ch.name.policy() == Some(policy))
    {
        c.chains += 1;
        c.rules += chain.rules.len();
        if let ChainKind::Base(base) = chain.kind {
            c.add_base_chain(base.hook);
        }
    }
    for set in table
        .sets
        .iter()
        .filter(|s| s.name.policy() == Some(policy))
    {
        c.sets += 1;
        c.elements += set.elements.as_ref().map_or(0, |e| e.len());
    }
    for object in table
        .objects
        .iter()
        .filter(|o| o.name.policy() == Some(policy))
    {
        c.add_object(object.type_id);
    }
    c.flowtables = table
        .flowtables
        .iter()
        .filter(|f| f.name.policy() == Some(policy))
        .count();
    c
}

impl<K: Kernel> Firewall<K> {
    /// Moves every policy whose answer the table's budget cannot take to
    /// `evaluation`'s failures, each logged on one line. Costs a count of
    /// the objects. What the policies hold is counted on the table as last
    /// known, without asking the kernel again: the reconcile that follows
    /// checks its generation, and a hand edit since (root's) is what that
    /// reconcile repairs. The table is read only when nothing is known.
    pub(super) fn hold_table_budget(
        &mut self,
        evaluation: &mut Evaluation,
    ) -> Result<(), EngineError> {
        if self.reconciler.last_known().is_none() {
            self.reconciler.observe(&mut self.kernel)?;
        }
        let table = self
            .reconciler
            .last_known()
            .and_then(|seen| seen.table.as_ref());
        let order: Vec<&str> = self
            .policies
            .slots()
            .iter()
            .map(|s| s.config.name.as_str())
            .collect();
        // Policies the evaluation knows but the config does not (tests build
        // evaluations by hand) come last.
        let mut names = order.clone();
        for r in &evaluation.rules {
            if !names.contains(&r.policy.as_str()) {
                names.push(&r.policy);
            }
        }
        let entries: Vec<(&str, Counts, Option<Counts>)> = names
            .iter()
            .map(|name| {
                let wanted = evaluation
                    .rules
                    .iter()
                    .find(|r| r.policy == *name)
                    .map(|r| Counts::of_ruleset(&r.rules));
                (*name, held(table, name), wanted)
            })
            .collect();
        let overruns = budget::table_overruns(&entries, self.policies.table_budget());
        for overrun in overruns {
            let failure = PolicyFailure::new(
                &overrun.policy,
                PolicyError::OverTableBudget(overrun.clone()),
            );
            log_failure(&failure);
            *evaluation = evaluation.without(failure);
        }
        Ok(())
    }
}
