//! What can go wrong in the engine, by step, and why one policy failed.
//! Typed until the edge that prints them (with [`crate::text::error_chain`]
//! or `{:#}`), so a caller can tell a deadline from a trap from an invalid
//! answer, and isolation never depends on the wording of a message.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::kernel::KernelError;
use crate::perms::PermError;
use crate::plan::NotOwned;
use crate::sandbox::HostError;
use crate::state::StateError;
use crate::validate::Invalid;
use crate::validate::budget::TableOverrun;

/// A step of the engine that failed as a whole (not one policy).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot set up the WebAssembly engine")]
    Sandbox(#[source] HostError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    NotOwned(#[from] NotOwned),
    /// The kernel refused the batch or could not be reached; nothing of the
    /// batch was applied.
    #[error("applying the ruleset to the kernel failed")]
    Kernel {
        #[source]
        source: KernelError,
        /// The policy whose object the kernel refused, when it refused one.
        policy: Option<String>,
    },
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// Two policies want different values of one key (each evaluation is
    /// settled before it is applied, so this is a defence only).
    #[error("policy {policy}: {conflict}", policy = .0.policy, conflict = .0)]
    SysctlConflict(Box<SysctlConflict>),
    #[error(transparent)]
    Applied(#[from] crate::applied::AppliedError),
    #[error(transparent)]
    Confirmation(#[from] crate::confirm::RecordError),
    /// A change cannot be held to confirmation: what is live could not be
    /// put back.
    #[error(
        "table inet {table} holds rules wasmwall has no record of ({record} is missing: the table was made by an older wasmwall, or adopted after a crash), so a rollback could not put them back; apply once without confirmation first (or run `wasmwall cleanup`)"
    )]
    NoRecordOfTable { table: String, record: String },
}

impl From<KernelError> for EngineError {
    fn from(source: KernelError) -> Self {
        EngineError::Kernel {
            source,
            policy: None,
        }
    }
}

/// A sysctl that could not be checked, read, written or restored.
#[derive(Debug, Error)]
#[error("sysctl {key}: cannot {action} {}", path.display())]
pub struct SysctlError {
    pub key: String,
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A policy wants a value of a sysctl that a policy earlier in the config
/// holds with another value: the later policy fails as a whole.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub struct SysctlConflict {
    pub key: String,
    /// The later policy, that fails.
    pub policy: String,
    pub wanted: String,
    /// The earlier policy, that keeps the key.
    pub holder: String,
    pub held: String,
    /// Whether the holder is failing and its value its last known good.
    pub holder_kept: bool,
}

impl std::fmt::Display for SysctlConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sysctl {}: wants {:?}, but policy {} (earlier in the config{}) wants {:?}; the earlier policy keeps the key and none of this policy's sysctls is written",
            self.key,
            self.wanted,
            self.holder,
            if self.holder_kept {
                ", failing: its last known good"
            } else {
                ""
            },
            self.held
        )
    }
}

/// Why a policy file could not be made a running policy.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Permissions(#[from] PermError),
    #[error(transparent)]
    Sandbox(#[from] HostError),
    /// A policy set made without an engine (clean-up runs no policy).
    #[error("this command runs no policies")]
    NoEngine,
}

/// Why one policy produced no usable ruleset. The others go on.
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot load")]
    Load(#[source] LoadError),
    #[error("evaluation failed")]
    Evaluate(#[source] HostError),
    /// On one line: it goes to the log.
    #[error("{0:#}")]
    Invalid(Invalid),
    #[error("chain {chain:?}, with the policy's priority_offset {offset}: {problem}")]
    PriorityOffset {
        chain: String,
        offset: i32,
        problem: String,
    },
    #[error("the kernel refused its rules")]
    Refused(#[source] KernelError),
    #[error("{0}")]
    OverTableBudget(TableOverrun),
    #[error(transparent)]
    Sysctl(SysctlError),
    #[error(transparent)]
    SysctlConflict(Box<SysctlConflict>),
}

/// A policy that produced no usable ruleset this time, and why.
#[derive(Debug, Clone)]
pub struct PolicyFailure {
    pub policy: String,
    pub error: Arc<PolicyError>,
}

impl PolicyFailure {
    pub fn new(policy: &str, error: PolicyError) -> Self {
        PolicyFailure {
            policy: policy.to_string(),
            error: Arc::new(error),
        }
    }

    /// The whole cause without the policy's name, e.g. "evaluation failed:
    /// policy exceeded its deadline of 200ms".
    pub fn cause(&self) -> String {
        crate::text::error_chain(&*self.error)
    }
}

/// "policy NAME: cause: cause", as the log and `status` show it.
impl std::fmt::Display for PolicyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy {}: {}", self.policy, self.cause())
    }
}
