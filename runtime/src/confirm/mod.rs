//! Apply with confirmation: a change (`wasmwall apply --confirm-within`, or
//! a config reload or policy swap of `run` with `[confirm]`) is rolled back
//! to the ruleset and sysctls that were live before it unless `wasmwall
//! confirm` arrives in time, or a health check the owner configured says
//! so first. This module holds the record of such a change and the
//! decisions about it; the engine (`engine::confirm`) rolls back, the CLI
//! and the daemon wait.
//!
//! The record ([`Confirmation`], in [`record`]) is written beside the state
//! file before the change's batch is sent, so that a process killed while
//! waiting leaves it behind and the next `apply`, `run` or `cleanup` rolls
//! back first. Whoever ends the wait takes the record away atomically:
//! `confirm` by deleting it, the waiter whose deadline passed by renaming
//! it to the claimed name (so a confirmation that comes a moment too late is
//! told so, and a rollback cut short by a crash is done again at the next
//! start).
//!
//! - [`record`]: the record's file (I/O);
//! - [`settings`]: `[confirm]` of the config and durations such as `120s`
//!   (pure);
//! - [`health`]: the owner's health checks (I/O);
//! - this file: the record's type and the pure decisions on it.

pub mod health;
pub mod record;
pub mod settings;

use serde::{Deserialize, Serialize};

use crate::plan::DesiredTable;
use crate::state::{SavedSysctl, State};

pub use record::{Found, RecordError};
pub use settings::{ConfirmSettings, parse_duration};

/// 1: the first.
pub const VERSION: u32 = 1;

/// Exit status of `apply --confirm-within` when the change was rolled back.
pub const ROLLED_BACK_STATUS: u8 = 4;

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Who made a change and waits for its confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Waiter {
    /// `wasmwall apply --confirm-within`, in the foreground.
    Apply,
    /// `wasmwall run`, for a config reload or a policy swap.
    Daemon,
}

/// A change waiting for `wasmwall confirm`, and everything needed to undo
/// it: what was live before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    pub version: u32,
    /// The inet table.
    pub table: String,
    /// The change in words: "apply of /etc/wasmwall/wasmwall.toml",
    /// "config reloaded", "policy router swapped".
    pub what: String,
    pub waiter: Waiter,
    /// The process that waits.
    pub pid: u32,
    /// When the change was applied and when it rolls back, in milliseconds
    /// since the Unix epoch (wall clock: the deadline holds across a crash
    /// and a restart of the waiter).
    pub applied_at_ms: u64,
    pub deadline_ms: u64,
    /// The table as it was, every rule of it; `None`: there was none (a
    /// rollback removes it, as clean-up does).
    pub previous: Option<DesiredTable>,
    /// The state file as it was; `None`: there was none. Put back as it
    /// was, so that a later clean-up still restores the true originals.
    pub previous_state: Option<State>,
    /// Every sysctl the change may write (those it wants and those it
    /// restores), with the value each held before it (and what an `all`
    /// key spread to): written back in reverse order.
    pub sysctls: Vec<SavedSysctl>,
}

impl Confirmation {
    /// "confirmed: apply of ... (applied at 10:02:03 by pid 42); it stays".
    pub fn confirmed_text(&self) -> String {
        format!(
            "confirmed: {} (applied at {} by pid {}); it stays",
            self.what,
            local_time(self.applied_at_ms),
            self.pid
        )
    }
}

/// A wall-clock time (milliseconds since the epoch) as the local
/// `HH:MM:SS`, in the zone the C library gives this process.
pub fn local_time(ms: u64) -> String {
    let t = (ms / 1000) as libc::time_t;
    // SAFETY: an all-zero tm is a valid value for localtime_r to fill.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types.
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() {
        return format!("{} s after the epoch", ms / 1000);
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// What to do with a record found when a process starts (`apply`, `run`,
/// `cleanup`): it holds the lock, so the process that wrote the record has
/// ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtStart {
    /// Nothing pending.
    Nothing,
    /// Roll back, for this reason (logged).
    RollBack(String),
}

/// The decision on a record found at start. `claimed`: the rollback had
/// begun and was cut short.
pub fn at_start(found: Option<(&Confirmation, bool)>, now_ms: u64) -> AtStart {
    let Some((c, claimed)) = found else {
        return AtStart::Nothing;
    };
    let when = if claimed {
        "its rollback was cut short"
    } else if now_ms >= c.deadline_ms {
        "its deadline passed"
    } else {
        "not confirmed yet"
    };
    AtStart::RollBack(format!(
        "{} (pid {}) was left pending by a process that ended ({when})",
        c.what, c.pid
    ))
}

/// Where a wait stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on waiting.
    Wait,
    /// Confirmed by the health checks.
    Confirmed(String),
    /// Roll back, for this reason.
    RollBack(String),
}

/// The health checks' results so far: so many passes in a row confirm, so
/// many failures in a row roll back. Pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streak {
    passes: u32,
    failures: u32,
    last_failure: Option<String>,
}

impl Streak {
    /// Takes one check's result (`Err`: why it failed) and says what it
    /// means under `settings`.
    pub fn record(&mut self, result: Result<(), String>, settings: &ConfirmSettings) -> Verdict {
        match result {
            Ok(()) => {
                self.passes += 1;
                self.failures = 0;
            }
            Err(e) => {
                self.failures += 1;
                self.passes = 0;
                self.last_failure = Some(e);
            }
        }
        if self.failures >= settings.check_failures {
            Verdict::RollBack(format!(
                "the health check failed {} time(s) in a row: {}",
                self.failures,
                self.last_failure.as_deref().unwrap_or("")
            ))
        } else if self.passes >= settings.check_passes {
            Verdict::Confirmed(format!(
                "the health check passed {} time(s) in a row",
                self.passes
            ))
        } else {
            Verdict::Wait
        }
    }

    /// The last failure, for the reason of a rollback at the deadline.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }
}

/// The reason of a rollback at the deadline.
pub fn deadline_reason(c: &Confirmation, streak: &Streak) -> String {
    let seconds = c.deadline_ms.saturating_sub(c.applied_at_ms).div_ceil(1000);
    match streak.last_failure() {
        None => format!("{} was not confirmed within {seconds} s", c.what),
        Some(e) => format!(
            "{} was not confirmed within {seconds} s (last health check failure: {e})",
            c.what
        ),
    }
}

#[cfg(test)]
mod tests;
