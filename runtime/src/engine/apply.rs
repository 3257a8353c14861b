//! One reconcile: the state file written before anything changes, the
//! table made to hold exactly what the policies want in one batch, the
//! sysctls set (and those no policy wants any more restored); a policy whose
//! rules or sysctls the kernel refuses is isolated and the rest applied
//! again; and the same planned without changing anything.

use std::collections::HashSet;
use std::time::Instant;

use crate::flows::Cut;
use crate::kernel::{ApplyReport, Kernel};
use crate::plan::Transaction;
use crate::state::{self, SavedSysctl, State};
use crate::sysctl;

use super::error::{EngineError, PolicyError, PolicyFailure};
use super::evaluate::{Evaluation, log_failure};
use super::{Firewall, FlowsCut, sysctls};

/// What one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub kernel: Option<ApplyReport>,
    pub summary: String,
    pub read_table: bool,
    pub rules: usize,
    pub sysctls_set: Vec<String>,
    pub sysctls_restored: Vec<String>,
    /// The conntrack entries the change concerned, cut after the batch.
    pub flows: FlowsCut,
}

impl Applied {
    /// Netlink messages sent.
    pub fn messages(&self) -> usize {
        self.kernel.as_ref().map_or(0, |k| k.messages)
    }

    /// Whether anything in the kernel or a sysctl changed.
    pub fn changed(&self) -> bool {
        self.messages() > 0 || !self.sysctls_set.is_empty() || !self.sysctls_restored.is_empty()
    }

    /// What changed, in words: "2 rule adds; sysctls set: k=v".
    pub fn changes(&self) -> String {
        let mut parts = Vec::new();
        if self.messages() > 0 || !self.changed() {
            parts.push(self.summary.clone());
        }
        if !self.sysctls_set.is_empty() {
            parts.push(format!("sysctls set: {}", self.sysctls_set.join(" ")));
        }
        if !self.sysctls_restored.is_empty() {
            parts.push(format!(
                "sysctls restored: {}",
                self.sysctls_restored.join(" ")
            ));
        }
        parts.join("; ")
    }
}

/// One reconcile's figures, for the log and `status`.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub messages: usize,
    pub changes: String,
    pub elapsed_us: u64,
    /// Whether anything in the kernel or a sysctl changed.
    pub changed: bool,
    /// Conntrack entries cut after the batch.
    pub flows_cut: usize,
}

/// What `apply` would change, found without changing anything.
#[derive(Debug)]
pub struct Pending {
    pub tx: Transaction,
    /// `key: current -> wanted` for sysctls to set or restore.
    pub sysctls: Vec<String>,
    /// The conntrack entries the change would cut, or why that is not
    /// known.
    pub flows: Result<Vec<Cut>, String>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty() && self.sysctls.is_empty()
    }
}

impl<K: Kernel> Firewall<K> {
    /// Makes the kernel hold exactly what the policies want in the runtime's
    /// table, changing only what differs, and the sysctls hold what they
    /// asked for. A failed policy's chains and sets stay as they are, and
    /// while any policy is failing no sysctl is restored (which sysctl a
    /// failed policy relied on is not known).
    ///
    /// Order matters for clean-up: the state file records every sysctl's
    /// current value (and whether the table existed) before anything is
    /// written. A sysctl is written after the batch, so that, e.g.,
    /// forwarding is never on before the forward chain is in place.
    pub fn apply(&mut self, evaluation: &Evaluation) -> Result<Applied, EngineError> {
        let target = self.target.clone();
        let mut read_first = false;
        let mut state = match state::load(&target.state_path)? {
            Some(s) => s,
            None => {
                let (seen, read) = self.reconciler.observe(&mut self.kernel)?;
                read_first = read;
                State::new(
                    target.netns.clone(),
                    target.table.clone(),
                    seen.table.is_some(),
                )
            }
        };

        let wanted = sysctls::wanted(&self.allow, &evaluation.rules)?;
        let mut changed_state = false;
        let mut recorded = state.sysctl_index();
        for w in &wanted {
            let i = match recorded.get(&w.key) {
                Some(&i) => i,
                None => {
                    let saved = sysctls::record(&mut self.kernel, &self.allow, w)?;
                    recorded.insert(w.key.clone(), state.sysctls.len());
                    state.sysctls.push(saved);
                    changed_state = true;
                    state.sysctls.len() - 1
                }
            };
            changed_state |= sysctls::hold(&mut state.sysctls[i], evaluation, &w.policy, &w.value);
        }
        if changed_state || !target.state_path.exists() {
            state::save(&target.state_path, &state)?;
        }

        let desired = evaluation.desired();
        let done = self.reconciler.reconcile(&mut self.kernel, desired)?;
        // `self.applied()` is the table before this batch until here.
        let flows = self.after_batch(&done.tx, desired);
        self.remember_applied(desired);
        if !done.tx.is_empty() {
            tracing::debug!(transaction = %done.tx, "applied");
        }
        let mut applied = Applied {
            rules: desired.rule_count(),
            summary: done.tx.summary(),
            read_table: read_first || done.read_table,
            kernel: Some(done.report),
            flows,
            ..Applied::default()
        };

        for w in &wanted {
            let current = sysctls::read(&mut self.kernel, &w.key, &w.path)?;
            if !sysctl::holds(&current, &w.value) {
                sysctls::write(&mut self.kernel, w)?;
                applied.sysctls_set.push(format!("{}={}", w.key, w.value));
            }
        }
        // Sysctls no policy wants any more go back to what they were.
        let wanted_keys: HashSet<&str> = wanted.iter().map(|w| sysctl::setting(&w.key)).collect();
        let stale: Vec<SavedSysctl> = state
            .sysctls
            .iter()
            .filter(|_| evaluation.failed.is_empty())
            .filter(|s| !wanted_keys.contains(sysctl::setting(&s.key)))
            .cloned()
            .collect();
        if !stale.is_empty() {
            for s in &stale {
                let restored = sysctls::restore(&mut self.kernel, &self.allow, s)?;
                applied.sysctls_restored.extend(restored);
            }
            state
                .sysctls
                .retain(|s| wanted_keys.contains(sysctl::setting(&s.key)));
            state::save(&target.state_path, &state)?;
        }
        Ok(applied)
    }

    /// [`Firewall::apply`], with one more line of defence for "one policy's
    /// failure never stops the others". Validation should let through only
    /// what can be applied, but if the kernel still refuses an object of one
    /// policy (and with it the whole batch), or a sysctl a policy asked for
    /// cannot be read or written (an interface that does not exist), that
    /// policy fails like one whose evaluation failed: logged, its last known
    /// good rules kept, and the rest applied again without it. Such a policy
    /// is moved to `evaluation`'s failures, to be used from then on.
    ///
    /// When a sysctl write or a late read fails, the failing policy's new
    /// rules are already in the kernel.
    pub fn apply_isolating(&mut self, evaluation: &mut Evaluation) -> Result<Applied, EngineError> {
        // Settled already when it came from [`Firewall::evaluate`]; the
        // state may have changed since.
        self.settle(evaluation);
        self.hold_table_budget(evaluation)?;
        loop {
            let e = match self.apply(evaluation) {
                Ok(applied) => return Ok(applied),
                Err(e) => e,
            };
            let failure = match e {
                EngineError::Kernel {
                    source,
                    policy: Some(policy),
                } if evaluation.rules.iter().any(|r| r.policy == policy) => {
                    PolicyFailure::new(&policy, PolicyError::Refused(source))
                }
                EngineError::Sysctl(error) => {
                    let Some(owner) = evaluation
                        .rules
                        .iter()
                        .find(|r| r.rules.sysctls.iter().any(|s| s.key == error.key))
                    else {
                        return Err(EngineError::Sysctl(error));
                    };
                    PolicyFailure::new(&owner.policy.clone(), PolicyError::Sysctl(error))
                }
                EngineError::SysctlConflict(c) => {
                    PolicyFailure::new(&c.policy.clone(), PolicyError::SysctlConflict(c))
                }
                other => return Err(other),
            };
            log_failure(&failure);
            *evaluation = evaluation.without(failure);
        }
    }

    /// One reconcile of `evaluation` (isolating a policy the kernel refuses,
    /// see [`Firewall::apply_isolating`]), logged at info when something was
    /// sent or changed (or `always`), at debug when the kernel already
    /// matched.
    pub fn reconcile(
        &mut self,
        evaluation: &mut Evaluation,
        reason: &str,
        always: bool,
    ) -> Result<Outcome, EngineError> {
        let started = Instant::now();
        let applied = self.apply_isolating(evaluation)?;
        let messages = applied.messages();
        let changed = applied.changed();
        let elapsed_us = started.elapsed().as_micros() as u64;
        let target = &self.target;
        macro_rules! report {
            ($level:ident, $what:literal) => {
                tracing::$level!(
                    reason,
                    table = %format!("inet {}", target.table),
                    netns = target.netns.as_deref().unwrap_or("(current)"),
                    policies = evaluation.rules.len(),
                    failed = evaluation.failed.len(),
                    rules = applied.rules,
                    messages,
                    changes = %applied.summary,
                    read_table = applied.read_table,
                    sysctls_set = %applied.sysctls_set.join(" "),
                    sysctls_restored = %applied.sysctls_restored.join(" "),
                    flows_cut = applied.flows.cut,
                    flows_us = applied.flows.elapsed_us,
                    elapsed_us,
                    $what
                )
            };
        }
        match (changed, always) {
            (true, _) => report!(info, "reconciled: changes applied in one batch"),
            (false, true) => report!(info, "reconciled: nothing to change"),
            (false, false) => report!(debug, "reconciled: nothing to change"),
        }
        if applied.flows.cut > 0 {
            tracing::info!(
                reason,
                count = applied.flows.cut,
                kept = applied.flows.kept,
                first = %applied.flows.examples.join("; "),
                "cut the flows the change no longer allows or would send elsewhere"
            );
        }
        Ok(Outcome {
            messages,
            changes: applied.changes(),
            elapsed_us,
            changed,
            flows_cut: applied.flows.cut,
        })
    }

    /// What [`Firewall::apply`] would change against the live kernel and
    /// sysctls, changing nothing.
    /// A policy over the table's budget is moved to `evaluation`'s failures,
    /// as `apply` would.
    pub fn pending(&mut self, evaluation: &mut Evaluation) -> Result<Pending, EngineError> {
        self.hold_table_budget(evaluation)?;
        let tx = self
            .reconciler
            .plan(&mut self.kernel, evaluation.desired())?;
        let wanted = sysctls::wanted(&self.allow, &evaluation.rules)?;
        let mut changes = Vec::new();
        for w in &wanted {
            let current = sysctls::read(&mut self.kernel, &w.key, &w.path)?;
            if !sysctl::holds(&current, &w.value) {
                changes.push(format!("{}: {current} -> {}", w.key, w.value));
            }
        }
        let wanted_keys: HashSet<&str> = wanted.iter().map(|w| sysctl::setting(&w.key)).collect();
        if let Some(state) = state::load(&self.target.state_path)?
            && evaluation.failed.is_empty()
        {
            let stale = state
                .sysctls
                .iter()
                .filter(|s| !wanted_keys.contains(sysctl::setting(&s.key)));
            for s in stale {
                let spread = s.spread.iter().map(|p| (&p.key, &p.original));
                for (key, original) in std::iter::once((&s.key, &s.original)).chain(spread) {
                    let path = sysctls::checked_path(&self.allow, key)?;
                    let Ok(current) = self.kernel.read_sysctl(&path) else {
                        continue;
                    };
                    if !sysctl::holds(&current, original) {
                        changes.push(format!("{key}: {current} -> {original} (restored)"));
                    }
                }
            }
        }
        let flows = self.pending_flows(&tx, evaluation.desired());
        Ok(Pending {
            tx,
            sysctls: changes,
            flows,
        })
    }

    /// The sysctls `evaluation` wants that hold another value now (someone
    /// changed them by hand), as `key: current -> wanted`. Cheap: a read of
    /// each, nothing else.
    pub fn sysctls_drifted(&mut self, evaluation: &Evaluation) -> Vec<String> {
        let Ok(wanted) = sysctls::wanted(&self.allow, &evaluation.rules) else {
            return Vec::new();
        };
        wanted
            .iter()
            .filter_map(|w| match self.kernel.read_sysctl(&w.path) {
                Ok(current) if !sysctl::holds(&current, &w.value) => {
                    Some(format!("{}: {current} -> {}", w.key, w.value))
                }
                _ => None,
            })
            .collect()
    }
}
