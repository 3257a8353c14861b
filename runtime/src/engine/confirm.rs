//! The engine's part of apply with confirmation: the table as last applied,
//! remembered after every apply (in memory and in [`crate::applied`]); the
//! record of what is live before a change, written before its batch is
//! sent; and the rollback to it: one batch through the reconciler, the
//! sysctls written back, the state file and the record of the applied
//! table put back as they were.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::applied;
use crate::confirm::{self, Confirmation, Waiter, epoch_ms, record};
use crate::kernel::Kernel;
use crate::plan::{self, DesiredTable};
use crate::state::{self, SavedSysctl, SpreadSysctl};
use crate::sysctl;

use super::error::EngineError;
use super::evaluate::Evaluation;
use super::{Firewall, sysctls};

/// What a rollback did.
#[derive(Debug, Default)]
pub struct RolledBack {
    /// The batch, in words ("2 rule adds, 2 rule deletes").
    pub changes: String,
    pub messages: usize,
    /// The table was removed (there was none before the change).
    pub table_removed: bool,
    pub sysctls_restored: Vec<String>,
    /// Sysctls that could not be written back (logged; the state file keeps
    /// their originals for clean-up).
    pub sysctls_failed: Vec<String>,
}

impl<K: Kernel> Firewall<K> {
    /// The table as last applied, every rule of it: from memory, else from
    /// its record beside the state file. For code that needs what was live
    /// before a change (call it before the change is applied).
    pub fn applied(&mut self) -> Result<Option<&DesiredTable>, EngineError> {
        if self.applied.is_none() {
            let t = &self.target;
            self.applied = Some(applied::load(&t.state_path, &t.table)?);
        }
        Ok(self.applied.as_ref().and_then(Option::as_ref))
    }

    /// Remembers `desired` as the table the kernel holds now, after a
    /// successful batch; a kept policy with the rules it kept (see
    /// [`DesiredTable::with_kept_resolved`]). Written to its file only when it
    /// changed (later, see [`Firewall::defer_applied_saves`]).
    pub(super) fn remember_applied(&mut self, desired: &DesiredTable) {
        let last = match self.applied() {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(error = %crate::text::error_chain(&e), "the record of the applied table is unreadable; writing it again");
                None
            }
        };
        if desired.kept.is_empty() && last == Some(desired) {
            return;
        }
        let now = desired.with_kept_resolved(last);
        if last == Some(&now) {
            return;
        }
        self.applied = Some(Some(now));
        if self.defer_applied {
            // On disk: the current table or none, never a stale one.
            if !self.applied_unsaved {
                applied::remove(&self.target.state_path);
                self.applied_unsaved = true;
            }
            return;
        }
        self.applied_unsaved = true;
        self.save_applied();
    }

    /// From now on the applied table is written by [`Firewall::save_applied`]
    /// only, not at each apply: serializing a large table costs a reconcile
    /// milliseconds (BENCHMARKS.md), and the daemon applies at every event.
    /// Its file is removed at the first change and written again when saved,
    /// so it never describes an older table.
    pub fn defer_applied_saves(&mut self) {
        self.defer_applied = true;
    }

    /// Whether the applied table in memory is not written yet.
    pub fn applied_unsaved(&self) -> bool {
        self.applied_unsaved
    }

    /// Writes the applied table if it changed since it was last written. A
    /// record that cannot be written is removed, so that no rollback ever
    /// goes back to a stale one.
    pub fn save_applied(&mut self) {
        if !std::mem::take(&mut self.applied_unsaved) {
            return;
        }
        let t = &self.target;
        let Some(Some(table)) = &self.applied else {
            return;
        };
        if let Err(e) = applied::save(&t.state_path, &t.table, table) {
            tracing::warn!(error = %crate::text::error_chain(&e), "cannot record the applied table; a change cannot be held to confirmation by a later process until it can");
            applied::remove(&t.state_path);
        }
    }

    /// Records what is live now, before a change to `evaluation` that
    /// waits `within` for confirmation: the table (every rule, from the
    /// record of the last apply), the state file, and the value of every
    /// sysctl the change may write (those `evaluation` wants, and those of
    /// the state file, which it may restore). Written beside the state file
    /// before it returns; apply the change only after.
    ///
    /// Refused when the kernel holds the runtime's table and no record of
    /// its rules exists: a rollback could not put them back.
    pub fn hold_for_confirmation(
        &mut self,
        evaluation: &Evaluation,
        what: &str,
        waiter: Waiter,
        within: Duration,
    ) -> Result<Confirmation, EngineError> {
        let (seen, _) = self.reconciler.observe(&mut self.kernel)?;
        let exists = seen.table.as_ref().is_some_and(|t| t.owned);
        let observed = seen.table.clone();
        let previous = if exists {
            let Some(previous) = self.applied()?.cloned() else {
                return Err(EngineError::NoRecordOfTable {
                    table: self.target.table.clone(),
                    record: applied::path_beside(&self.target.state_path)
                        .display()
                        .to_string(),
                });
            };
            if !plan::plan(&self.target.table, &previous, observed.as_ref())?.is_empty() {
                tracing::warn!(
                    "the table differs from what wasmwall last applied (edited by hand?); a rollback puts back what wasmwall applied"
                );
            }
            Some(previous)
        } else {
            None
        };
        let previous_state = state::load(&self.target.state_path)?;

        let mut saved: Vec<SavedSysctl> = Vec::new();
        let mut seen_keys: HashSet<String> = HashSet::new();
        for w in sysctls::wanted(&self.allow, &evaluation.rules)? {
            // One the kernel does not have fails its policy at the apply.
            if let Ok(s) = sysctls::record(&mut self.kernel, &self.allow, &w) {
                seen_keys.insert(sysctl::setting(&s.key).to_string());
                saved.push(s);
            }
        }
        for s in previous_state.iter().flat_map(|s| &s.sysctls) {
            if seen_keys.contains(sysctl::setting(&s.key)) {
                continue;
            }
            if let Some(now) = self.live_value(s) {
                saved.push(now);
            }
        }

        let now = SystemTime::now();
        let c = Confirmation {
            version: confirm::VERSION,
            table: self.target.table.clone(),
            what: what.to_string(),
            waiter,
            pid: std::process::id(),
            applied_at_ms: epoch_ms(now),
            deadline_ms: epoch_ms(now + within),
            previous,
            previous_state,
            sysctls: saved,
        };
        record::save(&self.target.state_path, &c)?;
        Ok(c)
    }

    /// A recorded sysctl (and what it spread to) with the values it holds
    /// now; `None` when it cannot be read (its interface is gone).
    fn live_value(&mut self, s: &SavedSysctl) -> Option<SavedSysctl> {
        let read = |kernel: &mut K, key: &str| {
            let path = sysctls::checked_path(&self.allow, key).ok()?;
            kernel.read_sysctl(&path).ok()
        };
        let mut now = SavedSysctl::new(&s.key, &read(&mut self.kernel, &s.key)?);
        for spread in &s.spread {
            if let Some(v) = read(&mut self.kernel, &spread.key) {
                now.spread.push(SpreadSysctl {
                    key: spread.key.clone(),
                    original: v,
                });
            }
        }
        Some(now)
    }

    /// Puts back what was live before the change `c` recorded: the table
    /// in one batch (planned against the kernel as it is now; removed when
    /// there was none), the sysctls in reverse order, the state file and the
    /// record of the applied table as they were. Does not touch the record
    /// of the change itself (the caller claimed it and removes it).
    pub fn roll_back(&mut self, c: &Confirmation) -> Result<RolledBack, EngineError> {
        let mut done = RolledBack::default();
        match &c.previous {
            Some(previous) => {
                let applied = self.reconciler.reconcile(&mut self.kernel, previous)?;
                done.changes = applied.tx.summary();
                done.messages = applied.report.messages;
            }
            None => {
                done.table_removed = self.remove_table()? == Some(true);
                done.changes = if done.table_removed {
                    "table delete".into()
                } else {
                    "no changes".into()
                };
            }
        }
        for s in c.sysctls.iter().rev() {
            match sysctls::restore(&mut self.kernel, &self.allow, s) {
                Ok(restored) => done.sysctls_restored.extend(restored),
                Err(e) => {
                    tracing::error!(error = %crate::text::error_chain(&e), "could not write a sysctl back in the rollback");
                    done.sysctls_failed.push(s.key.clone());
                }
            }
        }
        let path = &self.target.state_path;
        let mut previous_state = c.previous_state.clone();
        if !done.sysctls_failed.is_empty()
            && let Some(now) = state::load(path)?
        {
            // A key still at the change's value keeps its true original,
            // for clean-up.
            let kept = previous_state.get_or_insert_with(|| {
                state::State::new(
                    now.netns.clone(),
                    now.table.clone(),
                    now.table_existed_before,
                )
            });
            for s in now.sysctls {
                if done.sysctls_failed.contains(&s.key)
                    && !kept.sysctls.iter().any(|k| k.key == s.key)
                {
                    kept.sysctls.push(s);
                }
            }
        }
        match &previous_state {
            Some(s) => state::save(path, s)?,
            None => state::remove(path)?,
        }
        match &c.previous {
            Some(previous) => applied::save(path, &self.target.table, previous)?,
            None => applied::remove(path),
        }
        self.applied = Some(c.previous.clone());
        self.applied_unsaved = false;
        Ok(done)
    }

    /// Rolls back the change `c`, whose record the caller claimed (or found
    /// claimed), for `reason`; removes the record once done, and logs it at
    /// warn with the reason and what was done.
    pub fn roll_back_claimed(
        &mut self,
        c: &Confirmation,
        reason: &str,
    ) -> Result<RolledBack, EngineError> {
        let done = self.roll_back(c)?;
        record::remove(&self.target.state_path)?;
        tracing::warn!(
            reason,
            table = %format!("inet {}", self.target.table),
            netns = self.target.netns.as_deref().unwrap_or("(current)"),
            messages = done.messages,
            changes = %done.changes,
            sysctls_restored = %done.sysctls_restored.join(" "),
            "rolled back to the rules and sysctls live before the change, in one batch"
        );
        Ok(done)
    }

    /// At start (`apply`, `run`, `cleanup`; the caller holds the lock, so
    /// the process that wrote a record found now has ended): rolls back a
    /// change left waiting for confirmation, or whose rollback was cut
    /// short. Returns the reason when it did.
    pub fn roll_back_left_pending(&mut self) -> Result<Option<String>, EngineError> {
        let path = self.target.state_path.clone();
        let found = record::find(&path)?;
        let now = epoch_ms(SystemTime::now());
        let found_ref = found.as_ref().map(|f| (&f.confirmation, f.claimed));
        let confirm::AtStart::RollBack(reason) = confirm::at_start(found_ref, now) else {
            return Ok(None);
        };
        let found = found.expect("a decision to roll back has a record");
        if !found.claimed {
            record::claim(&path)?;
        }
        self.roll_back_claimed(&found.confirmation, &reason)?;
        Ok(Some(reason))
    }
}

#[cfg(test)]
#[path = "confirm_tests.rs"]
mod tests;
