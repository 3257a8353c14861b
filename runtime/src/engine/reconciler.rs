//! Keeps the kernel's table in line with a desired one: observe (or trust
//! what is known), plan, apply in one batch, and predict the table after
//! the batch so that the next reconcile need not read it back.

use crate::kernel::{ApplyReport, Kernel, KernelError, Observation, next_generation};
use crate::plan::{self, DesiredTable, Op, Transaction};
use crate::snapshot::SnapshotFile;

use super::error::EngineError;

/// How many times a batch is planned again when someone else changed the
/// ruleset between reading and writing.
pub(super) const ATTEMPTS: usize = 3;

/// Keeps the kernel's table in line with a desired one. It remembers the
/// table as of its last read or its own last batch, with the ruleset
/// generation that proves it current: while nobody else changes the ruleset,
/// a reconcile costs one generation query instead of a read of the table.
#[derive(Debug)]
pub struct Reconciler {
    table: String,
    known: Option<Observation>,
    /// The table as a previous process left it (see `snapshot`), and the
    /// generation last written there.
    snapshot: Option<SnapshotFile>,
    saved: Option<u32>,
}

/// What one reconcile did.
#[derive(Debug)]
pub struct Reconciled {
    pub tx: Transaction,
    pub report: ApplyReport,
    /// Whether the table had to be read from the kernel (someone else
    /// changed the ruleset, or nothing was known yet).
    pub read_table: bool,
    /// Batches refused because the ruleset changed meanwhile.
    pub retries: usize,
}

impl Reconciler {
    pub fn new(table: &str) -> Self {
        Reconciler {
            table: table.to_string(),
            known: None,
            snapshot: None,
            saved: None,
        }
    }

    /// Starts from the snapshot a previous process left, when it is
    /// provably current, and (if `writable`) keeps it up to date: written
    /// after every read of the table and every batch whose result is known.
    pub fn with_snapshot(mut self, snapshot: Option<SnapshotFile>) -> Self {
        if let Some(seen) = snapshot.as_ref().and_then(|s| s.load(&self.table)) {
            self.saved = Some(seen.generation);
            self.known = Some(seen);
        }
        self.snapshot = snapshot;
        self
    }

    /// The table as of the last read or batch, not checked against the
    /// kernel's generation (what [`Reconciler::observe`] does).
    pub fn last_known(&self) -> Option<&Observation> {
        self.known.as_ref()
    }

    /// Forgets what is known: the next look reads the whole table.
    pub fn forget(&mut self) {
        self.known = None;
    }

    /// Stops writing the snapshot (it is still removed by clean-up).
    pub fn stop_saving_snapshot(&mut self) {
        if let Some(file) = &mut self.snapshot {
            file.writable = false;
        }
    }

    /// Writes what is known to the snapshot, if it changed since.
    fn save_snapshot(&mut self) {
        let (Some(file), Some(known)) = (&self.snapshot, &self.known) else {
            return;
        };
        if !file.writable || self.saved == Some(known.generation) {
            return;
        }
        match file.save(&self.table, known) {
            Ok(()) => self.saved = Some(known.generation),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the table snapshot; the next start reads the table")
            }
        }
    }

    /// The table as the kernel holds it now, and whether it had to be read.
    pub fn observe<K: Kernel>(
        &mut self,
        kernel: &mut K,
    ) -> Result<(&Observation, bool), KernelError> {
        let current = match &self.known {
            Some(k) => kernel.generation()? == k.generation,
            None => false,
        };
        if !current {
            self.known = Some(kernel.observe(&self.table)?);
            self.save_snapshot();
        }
        Ok((self.known.as_ref().expect("just set"), !current))
    }

    /// What would change, against the kernel as it is now.
    pub fn plan<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &DesiredTable,
    ) -> Result<Transaction, EngineError> {
        let table = self.table.clone();
        let (seen, _) = self.observe(kernel)?;
        Ok(plan::plan(&table, desired, seen.table.as_ref())?)
    }

    /// Makes the table hold exactly `desired`, in one batch (none if
    /// nothing differs).
    pub fn reconcile<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &DesiredTable,
    ) -> Result<Reconciled, EngineError> {
        let mut retries = 0;
        let table = self.table.clone();
        loop {
            let (seen, read_table) = self.observe(kernel)?;
            let generation = seen.generation;
            let tx = plan::plan(&table, desired, seen.table.as_ref())?;
            if tx.is_empty() {
                return Ok(Reconciled {
                    tx,
                    report: ApplyReport::default(),
                    read_table,
                    retries,
                });
            }
            match kernel.apply(&tx, Some(generation)) {
                Ok(report) => {
                    self.predict(&tx, &report);
                    return Ok(Reconciled {
                        tx,
                        report,
                        read_table,
                        retries,
                    });
                }
                Err(KernelError::Changed) if retries + 1 < ATTEMPTS => {
                    tracing::info!("the ruleset changed while the batch was sent; planning again");
                    self.forget();
                    retries += 1;
                }
                Err(source) => {
                    self.forget();
                    // Which policy's object was refused: the planner's
                    // types know, from the operation's index.
                    let policy = source
                        .op_index()
                        .and_then(|i| tx.ops.get(i))
                        .and_then(Op::added_by)
                        .map(str::to_string);
                    return Err(EngineError::Kernel { source, policy });
                }
            }
        }
    }

    /// After our own batch the kernel holds the old table with the
    /// transaction applied, at the next generation. Without the new rules'
    /// handles that cannot be known, and the next look reads the table.
    fn predict(&mut self, tx: &Transaction, report: &ApplyReport) {
        let Some(known) = self.known.take() else {
            return;
        };
        let Some(handles) = &report.rule_handles else {
            return;
        };
        let mut handles = handles.iter().copied();
        match plan::simulate(known.table, tx, &mut |_| handles.next()) {
            Ok(table) => {
                self.known = Some(Observation {
                    generation: next_generation(known.generation),
                    table,
                });
                self.save_snapshot();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot predict the table after the batch; it will be read again")
            }
        }
    }
}
