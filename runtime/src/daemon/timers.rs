//! The daemon's deadlines in one place: one per kind at a time; the loop
//! sleeps until the earliest and takes all that are due together. Pure: the
//! time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// A run of rtnetlink notifications settled: read the interfaces.
    Links,
    /// A run of neighbour notifications settled: read the neighbour table.
    Neighbours,
    /// Watched files settled: read them.
    Files,
    /// nftables notifications settled: check the table.
    Drift,
    /// The burst gap is over: the next reconcile for events may run.
    Burst,
    /// Write the kept leases.
    SaveLeases,
    /// The earliest lease expires.
    Expiry,
    /// The periodic check of the table (`reconcile_interval_s`).
    Tick,
    /// The periodic check of the sysctls the policies asked for.
    Sysctls,
    /// A change waiting for confirmation rolls back.
    Confirm,
    /// The next health check of a change waiting for confirmation.
    HealthCheck,
    /// Write the applied table (see `Firewall::defer_applied_saves`).
    SaveApplied,
}

/// Wait after an interface or address notification: `ip` commands and
/// link flaps come in runs; the interfaces are read once per run.
pub const LINK_SETTLE: Duration = Duration::from_millis(20);
/// Wait after a neighbour notification: a host coming up, a burst of
/// traffic or an `ip -batch` change many entries at once; the table is read
/// once per run.
pub const NEIGHBOUR_SETTLE: Duration = Duration::from_millis(20);
/// Wait after a file change, so that a file written in several steps is
/// read once, whole.
pub const FILE_SETTLE: Duration = Duration::from_millis(20);
/// Wait after a change notification of nftables, so that someone's script
/// of nft commands leads to one repair.
pub const DRIFT_SETTLE: Duration = Duration::from_millis(50);
/// How often the sysctls the policies asked for are read back: a hand
/// change is repaired within this (a few reads of /proc each time).
pub const SYSCTL_CHECK: Duration = Duration::from_millis(500);
/// How long the applied table may stay unwritten after a change: a burst
/// of events costs one serialization of the table.
pub const SAVE_APPLIED: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Timers {
    due: BTreeMap<Timer, Instant>,
}

impl Timers {
    /// Sets `timer` to `at`, replacing what it was.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.due.insert(timer, at);
    }

    /// Sets `timer` to `at` unless it is set already: the first of a run of
    /// changes starts the wait, the others join it.
    pub fn set_once(&mut self, timer: Timer, at: Instant) {
        self.due.entry(timer).or_insert(at);
    }

    pub fn cancel(&mut self, timer: Timer) {
        self.due.remove(&timer);
    }

    pub fn is_set(&self, timer: Timer) -> bool {
        self.due.contains_key(&timer)
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// Removes and returns the deadlines at or before `now`, in the order
    /// of [`Timer`].
    pub fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let due: Vec<Timer> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in &due {
            self.due.remove(t);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_deadline_wakes_and_a_run_joins_the_first() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set_once(Timer::Links, t0 + ms(20));
        timers.set_once(Timer::Links, t0 + ms(25));
        timers.set(Timer::Tick, t0 + ms(30));
        timers.set(Timer::Burst, t0 + ms(10));
        assert_eq!(timers.next(), Some(t0 + ms(10)));
        assert_eq!(timers.take_due(t0 + ms(5)), []);
        assert_eq!(timers.take_due(t0 + ms(20)), [Timer::Links, Timer::Burst]);
        assert!(!timers.is_set(Timer::Links));
        assert_eq!(timers.next(), Some(t0 + ms(30)));
        timers.set(Timer::Tick, t0 + ms(40));
        timers.cancel(Timer::Tick);
        assert_eq!(timers.next(), None);
    }
}
