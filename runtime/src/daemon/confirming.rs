//! Changes of the daemon held to confirmation (`[confirm] within`): a
//! config reload or a policy swap is applied, its record written first
//! (see [`crate::confirm`]), and the daemon goes on following events with
//! the new policies while it waits. `wasmwall confirm` (over the control
//! socket), or the health checks passing `check_passes` times in a row,
//! confirm it; its deadline, or the checks failing `check_failures` times
//! in a row, roll it back: the daemon goes back to the config and policies
//! it ran before (it still has them) and reconciles, in one batch, logged
//! at warn with the reason, and `status` lists it until the next change.
//!
//! Decisions:
//! - A change is held to the `[confirm]` of the config running when it
//!   arrives, so a reload that removes `[confirm]` is itself confirmed.
//! - A second change while one waits joins it: same deadline, and a
//!   rollback goes back to before the first.
//! - After a restart that rolled back a change a dead daemon left waiting,
//!   the config on disk may be that very change. The start's apply is then
//!   held to confirmation too (when `[confirm] within` is set); the daemon
//!   has nothing older in memory, so if it is not confirmed it rolls back to
//!   the rules recorded before it and stops without clean-up (exit status
//!   4), leaving the claimed record, so that a restart by a supervisor
//!   again holds its start to confirmation instead of locking the owner out
//!   for good.

use std::time::{Duration, Instant, SystemTime};

use super::control::Response;
use super::core::{Daemon, epoch_of};
use super::status::ConfirmationStatus;
use super::timers::Timer;
use crate::config::Config;
use crate::confirm::{
    self, ConfirmSettings, Confirmation, Streak, Verdict, Waiter, health, record,
};
use crate::engine::Policies;
use crate::kernel::Kernel;
use crate::text::error_chain;
use crate::world::Event;

/// What the daemon ran before a change: what a rollback goes back to.
pub(super) struct Fallback {
    pub config: Config,
    pub policies: Policies,
}

/// A change to hold to confirmation at the next reconcile.
pub(super) struct ToConfirm {
    pub what: String,
    /// None: nothing older in memory (a start after a rollback).
    pub fallback: Option<Fallback>,
}

/// A change waiting for confirmation.
pub(super) struct Waiting {
    record: Confirmation,
    fallback: Option<Fallback>,
    settings: ConfirmSettings,
    streak: Streak,
    /// A health check is running off the loop.
    checking: bool,
}

/// A health check to run off the loop; its result goes to
/// [`Daemon::health_checked`].
pub struct HealthJob {
    settings: ConfirmSettings,
}

impl HealthJob {
    pub fn run(self) -> Result<(), String> {
        health::check(&self.settings)
    }
}

impl<K: Kernel> Daemon<K> {
    /// What runs now, which a rollback of the next change goes back to;
    /// None when changes are not held to confirmation.
    pub(super) fn fallback_now(&self) -> Option<Fallback> {
        self.config.confirm.within.is_some().then(|| Fallback {
            config: self.config.clone(),
            policies: self.firewall.policies().clone(),
        })
    }

    /// A change (`what`) was taken: hold it to confirmation at the next
    /// reconcile, going back to `fallback` ([`Daemon::fallback_now`] before
    /// the change) if it is not confirmed. None: `[confirm] within` is not
    /// set.
    pub(super) fn change_arrives(&mut self, what: &str, fallback: Option<Fallback>) {
        let Some(fallback) = fallback else {
            return;
        };
        if self.confirming.is_some() || self.to_confirm.is_some() {
            tracing::info!(change = %what, "joins the change already waiting for confirmation");
            return;
        }
        self.to_confirm = Some(ToConfirm {
            what: what.to_string(),
            fallback: Some(fallback),
        });
    }

    /// At start, after a rollback of a change a dead daemon left waiting:
    /// the start's apply is held to confirmation too.
    pub fn hold_start_to_confirmation(&mut self) {
        if self.config.confirm.within.is_some() {
            self.to_confirm = Some(ToConfirm {
                what: format!(
                    "start of `wasmwall run` with {} after a rollback",
                    self.config_path.display()
                ),
                fallback: None,
            });
        }
    }

    /// Before the reconcile of the current evaluation: writes the record of
    /// a change to hold to confirmation. A change that cannot be recorded
    /// is not applied: the daemon goes back to what it ran.
    pub(super) fn record_change(&mut self) {
        let Some(change) = self.to_confirm.take() else {
            return;
        };
        let settings = self.config.confirm.clone();
        let Some(within) = settings.within else {
            return;
        };
        match self.firewall.hold_for_confirmation(
            &self.evaluation,
            &change.what,
            Waiter::Daemon,
            within,
        ) {
            Ok(record) => {
                let now = Instant::now();
                self.timers.set(Timer::Confirm, now + within);
                if settings.has_checks() {
                    self.timers
                        .set(Timer::HealthCheck, now + settings.check_interval);
                }
                tracing::warn!(
                    change = %change.what,
                    within_s = within.as_secs(),
                    health_checks = %checks_text(&settings),
                    "applying a change held to confirmation: run `wasmwall confirm` in time, or it rolls back"
                );
                self.confirming = Some(Waiting {
                    record,
                    fallback: change.fallback,
                    settings,
                    streak: Streak::default(),
                    checking: false,
                });
            }
            Err(e) => {
                tracing::error!(change = %change.what, error = %error_chain(&e), "cannot hold the change to confirmation; it is not applied");
                if let Some(fallback) = change.fallback {
                    self.go_back(fallback);
                }
            }
        }
    }

    /// Runs the config and policies of before again (a reconcile follows).
    fn go_back(&mut self, fallback: Fallback) {
        let allow = fallback.config.sysctls.clone();
        self.config = fallback.config;
        self.firewall.reconfigure(fallback.policies, allow);
        self.rewatch = true;
        self.evaluation = self.evaluate_all(&Event::ConfigChanged, &Default::default());
    }

    /// `wasmwall confirm` over the control socket.
    pub(super) fn confirm_now(&mut self) -> Response {
        let Some(waiting) = self.confirming.take() else {
            return Response::error("nothing waits for confirmation");
        };
        self.end_wait();
        let path = &self.firewall.target().state_path;
        match record::confirm(path) {
            Ok(record::Confirmed::TooLate(_)) => {
                Response::error("too late: the rollback has begun")
            }
            Ok(_) => {
                let text = waiting.record.confirmed_text();
                tracing::info!(change = %waiting.record.what, "confirmed: the change stays");
                Response {
                    ok: true,
                    message: Some(text),
                    ..Response::default()
                }
            }
            Err(e) => {
                let e = error_chain(&e);
                tracing::error!(error = %e, "cannot remove the record of the confirmed change");
                Response::error(format!("confirmed, but its record stays: {e}"))
            }
        }
    }

    fn end_wait(&mut self) {
        self.timers.cancel(Timer::Confirm);
        self.timers.cancel(Timer::HealthCheck);
    }

    /// The deadline passed.
    pub(super) fn confirm_deadline(&mut self) {
        let Some(waiting) = &self.confirming else {
            return;
        };
        let reason = confirm::deadline_reason(&waiting.record, &waiting.streak);
        self.roll_back_change(&reason);
    }

    /// A health check to start now, if one is due and none runs.
    pub fn health_job(&mut self) -> Option<HealthJob> {
        let waiting = self.confirming.as_mut()?;
        if waiting.checking {
            return None;
        }
        waiting.checking = true;
        Some(HealthJob {
            settings: waiting.settings.clone(),
        })
    }

    /// A health check finished.
    pub fn health_checked(&mut self, result: Result<(), String>) {
        let Some(waiting) = self.confirming.as_mut() else {
            return;
        };
        waiting.checking = false;
        if let Err(e) = &result {
            tracing::warn!(error = %e, change = %waiting.record.what, "health check failed");
        }
        match waiting.streak.record(result, &waiting.settings) {
            Verdict::Wait => {
                let at = Instant::now() + waiting.settings.check_interval;
                self.timers.set(Timer::HealthCheck, at);
            }
            Verdict::Confirmed(how) => {
                let answer = self.confirm_now();
                if answer.ok {
                    tracing::info!("confirmed by the health check: {how}");
                }
            }
            Verdict::RollBack(why) => {
                let reason = format!("{}: {why}", waiting.record.what);
                self.roll_back_change(&reason);
            }
        }
    }

    /// Rolls the waiting change back, for `reason`.
    fn roll_back_change(&mut self, reason: &str) {
        let Some(waiting) = self.confirming.take() else {
            return;
        };
        self.end_wait();
        let path = self.firewall.target().state_path.clone();
        match record::claim(&path) {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::info!(change = %waiting.record.what, "confirmed (its record is gone); the change stays");
                return;
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "cannot claim the record of the change; rolling back anyway");
            }
        }
        let line = format!("change rolled back: {reason}");
        self.rejected.insert("confirm".into(), line);
        match waiting.fallback {
            Some(fallback) => {
                tracing::warn!(
                    reason,
                    "rolling back: the config and policies of before run again"
                );
                self.go_back(fallback);
                self.pending.because("rollback");
                let result = self.reconcile("rollback".into(), true, false, Instant::now());
                match result {
                    Ok(()) => {
                        tracing::warn!(
                            reason,
                            "rolled back to the rules and sysctls of before, in one batch"
                        )
                    }
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), "the rollback's reconcile failed; retrying at the next change or tick")
                    }
                }
                if let Err(e) = record::remove(&path) {
                    tracing::warn!(error = %error_chain(&e), "cannot remove the record of the rolled back change");
                }
            }
            None => {
                // Nothing older to run: back to the recorded rules, and stop.
                match self.firewall.roll_back(&waiting.record) {
                    Ok(done) => tracing::error!(
                        reason,
                        messages = done.messages,
                        changes = %done.changes,
                        sysctls_restored = %done.sysctls_restored.join(" "),
                        "rolled back to the rules and sysctls of before the start; the config on disk was not confirmed, so the daemon stops and leaves them in place (a restart holds its start to confirmation again)"
                    ),
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), "the rollback failed; stopping, the next start rolls back")
                    }
                }
                self.stop_rolled_back = true;
            }
        }
    }

    /// The change waiting for confirmation, for `status`.
    pub(super) fn confirmation_status(&self) -> Option<ConfirmationStatus> {
        let w = self.confirming.as_ref()?;
        Some(ConfirmationStatus {
            what: w.record.what.clone(),
            deadline: epoch_of(
                SystemTime::UNIX_EPOCH + Duration::from_millis(w.record.deadline_ms),
            ),
            checks: checks_text(&w.settings),
        })
    }

    /// The daemon stops without clean-up, its start not confirmed.
    pub fn stop_rolled_back(&self) -> bool {
        self.stop_rolled_back
    }

    /// The files to watch changed (a rollback to the config of before).
    pub fn take_rewatch(&mut self) -> bool {
        std::mem::take(&mut self.rewatch)
    }

    /// The daemon stops and cleans up: nothing is left to confirm.
    pub(super) fn drop_confirmation(&mut self) {
        if self.confirming.take().is_some() {
            tracing::info!("the change waiting for confirmation is dropped: the daemon stops");
            if let Err(e) = record::remove(&self.firewall.target().state_path) {
                tracing::warn!(error = %error_chain(&e), "cannot remove the record of a change waiting for confirmation");
            }
        }
    }
}

/// The health checks in words.
fn checks_text(s: &ConfirmSettings) -> String {
    let mut parts = Vec::new();
    if let Some(a) = s.check_tcp {
        parts.push(format!("TCP connect to {a}"));
    }
    if !s.check_command.is_empty() {
        parts.push(format!("command `{}`", s.check_command.join(" ")));
    }
    if parts.is_empty() {
        return "none".into();
    }
    format!(
        "{} every {} ms ({} passes confirm, {} failures roll back)",
        parts.join(" and "),
        s.check_interval.as_millis(),
        s.check_passes,
        s.check_failures
    )
}
