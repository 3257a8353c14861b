//! The engine: one type, [`Firewall`], that holds the policy set and keeps
//! the kernel's table and sysctls in line with what the policies want, and
//! undoes it all at clean-up. The daemon and the one-shot commands call the
//! same methods; generic over [`Kernel`], so the daemon's logic is tested
//! on [`crate::kernel::Fake`] without root.
//!
//! - [`policies`]: the policy set, loading and swapping versions;
//! - [`evaluate`]: the one evaluation path, and its outcome;
//! - [`reconciler`]: the table, observed or predicted, planned and applied;
//! - `apply`: one reconcile with the sysctls and the isolation of a policy
//!   the kernel refuses; `flows`: the conntrack entries the change
//!   concerns, cut after the batch; `cleanup`: removing it all;
//! - `confirm`: the table as last applied, remembered, and a change held
//!   to confirmation: what was live before it recorded, and rolled back to.

mod apply;
mod budget;
mod cleanup;
mod confirm;
pub mod error;
pub mod evaluate;
mod flows;
pub mod policies;
pub mod reconciler;
mod sysctls;

use std::path::{Path, PathBuf};

use crate::kernel::Kernel;
use crate::snapshot::SnapshotFile;
use crate::sysctl::AllowList;
use crate::world::{Event, WorldState};

pub use apply::{Applied, Outcome, Pending};
pub use cleanup::CleanedUp;
pub use confirm::RolledBack;
pub use error::{EngineError, LoadError, PolicyError, PolicyFailure, SysctlConflict, SysctlError};
pub use evaluate::{Evaluate, Evaluation, evaluate_policy, log_failure};
pub use flows::FlowsCut;
pub use policies::{Candidate, Loader, Policies, Slot, component_hash};
pub use reconciler::{Reconciled, Reconciler};

/// Where the runtime acts: its table, the namespace and the state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub table: String,
    pub netns: Option<String>,
    pub state_path: PathBuf,
}

impl Target {
    pub fn new(table: &str, netns: Option<&str>, state_dir: &Path) -> Self {
        Target {
            table: table.to_string(),
            netns: netns.map(str::to_string),
            state_path: crate::state::path(state_dir, netns, table),
        }
    }
}

/// The policies, and the kernel they are kept in line with.
pub struct Firewall<K: Kernel> {
    kernel: K,
    target: Target,
    allow: AllowList,
    reconciler: Reconciler,
    policies: Policies,
    flows: flows::FlowCutter,
    /// The table as last applied (see [`crate::applied`]); outer `None`:
    /// not read from its file yet.
    applied: Option<Option<crate::plan::DesiredTable>>,
    /// Write the applied table later ([`Firewall::save_applied`]), not at
    /// each apply (the daemon); and whether what is in memory is unsaved.
    defer_applied: bool,
    applied_unsaved: bool,
}

impl<K: Kernel> Firewall<K> {
    /// A firewall acting on `target` through `kernel`; sysctls are held to
    /// `allow`.
    pub fn new(kernel: K, target: Target, allow: AllowList, policies: Policies) -> Self {
        Firewall {
            reconciler: Reconciler::new(&target.table),
            kernel,
            target,
            allow,
            policies,
            flows: flows::FlowCutter::default(),
            applied: None,
            defer_applied: false,
            applied_unsaved: false,
        }
    }

    /// Starts from the table snapshot a previous process left beside the
    /// state file, when it is provably current; `writable`: keep it up to
    /// date (only the lock holder may).
    pub fn with_snapshot(mut self, writable: bool) -> Self {
        let snapshot = SnapshotFile::beside(&self.target.state_path, writable);
        self.reconciler = Reconciler::new(&self.target.table).with_snapshot(snapshot);
        self
    }

    /// Stops writing the snapshot: from now on the table is kept in memory
    /// (it is still removed by clean-up).
    pub fn stop_saving_snapshot(&mut self) {
        self.reconciler.stop_saving_snapshot();
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    pub fn policies_mut(&mut self) -> &mut Policies {
        &mut self.policies
    }

    /// Uses a new policy set and allow-list (a changed config) from now on.
    pub fn reconfigure(&mut self, policies: Policies, allow: AllowList) {
        self.policies = policies;
        self.allow = allow;
    }

    /// Evaluates every policy, and settles who holds each sysctl (see
    /// [`Firewall::settle`]); each failure is logged.
    pub fn evaluate(&self, world: &WorldState, event: &Event) -> Evaluation {
        let mut evaluation = self.policies.evaluate(world, event);
        self.settle(&mut evaluation);
        evaluation
    }
}

#[cfg(test)]
mod tests;
