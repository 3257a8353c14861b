//! Clean-up: the runtime's table deleted and every recorded sysctl put back,
//! from the state file alone, so that it also undoes what a crashed runtime
//! left behind.

use crate::kernel::{Kernel, KernelError};
use crate::plan;
use crate::state;

use super::error::EngineError;
use super::reconciler::ATTEMPTS;
use super::{Firewall, sysctls};

/// What clean-up did.
#[derive(Debug, Default)]
pub struct CleanedUp {
    pub had_state_file: bool,
    /// Whether the table was there and was deleted.
    pub table_removed: bool,
    /// A table of that name exists but is not the runtime's: left alone.
    pub table_not_owned: bool,
    pub restored: Vec<String>,
    pub failed: Vec<String>,
}

impl<K: Kernel> Firewall<K> {
    /// Deletes the runtime's table and restores every recorded sysctl;
    /// removes the state file once everything is restored.
    pub fn cleanup(&mut self) -> Result<CleanedUp, EngineError> {
        let target = self.target.clone();
        let state = state::load(&target.state_path)?;
        let mut done = CleanedUp {
            had_state_file: state.is_some(),
            ..CleanedUp::default()
        };
        match self.remove_table()? {
            Some(removed) => done.table_removed = removed,
            None => done.table_not_owned = true,
        }
        crate::applied::remove(&target.state_path);
        self.applied = Some(None);
        self.applied_unsaved = false;
        let Some(mut state) = state else {
            return Ok(done);
        };
        // Undo in reverse order of change; a key an `all` write spread to
        // after the `all` key, which would overwrite it.
        for s in state.sysctls.iter().rev() {
            match sysctls::restore(&mut self.kernel, &self.allow, s) {
                Ok(restored) => done.restored.extend(restored),
                Err(e) => {
                    tracing::error!(error = %crate::text::error_chain(&e), "could not restore a sysctl; it stays in the state file");
                    done.failed.push(s.key.clone());
                }
            }
        }
        if done.failed.is_empty() {
            state::remove(&target.state_path)?;
        } else {
            state.sysctls.retain(|s| done.failed.contains(&s.key));
            state::save(&target.state_path, &state)?;
        }
        Ok(done)
    }

    /// Deletes the runtime's table in one batch: whether it was there, or
    /// `None` when a table of that name is not the runtime's (left alone).
    pub(super) fn remove_table(&mut self) -> Result<Option<bool>, EngineError> {
        let table = self.target.table.clone();
        let mut attempt = 0;
        let removed = loop {
            let seen = self.kernel.observe(&table)?;
            let tx = match plan::remove_table(&table, seen.table.as_ref()) {
                Ok(tx) => tx,
                Err(e) => {
                    tracing::warn!("{e}");
                    break None;
                }
            };
            match self.kernel.apply(&tx, Some(seen.generation)) {
                Err(KernelError::Changed) if attempt + 1 < ATTEMPTS => attempt += 1,
                other => {
                    other?;
                    break Some(!tx.is_empty());
                }
            }
        };
        self.reconciler.forget();
        // The table is gone (or not ours): a snapshot of it would be stale.
        crate::snapshot::remove(&self.target.state_path);
        Ok(removed)
    }
}
