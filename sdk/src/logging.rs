//! The policy's one way out: lines in the runtime's log.

use crate::export::IntoWit;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Level {
    /// Step by step detail.
    Trace,
    /// Detail for whoever debugs the policy.
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator should look at.
    Warn,
    /// Something failed.
    Error,
}

/// Writes to the runtime's log; the runtime tags the line with the policy's
/// name, truncates long lines and rate-limits floods.
pub fn log(level: Level, message: &str) {
    crate::wit::wasmwall::policy::log::log(level.into_wit(), message);
}
