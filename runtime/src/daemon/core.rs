//! The daemon's logic without its I/O loop: the world it follows
//! (interfaces, leases, neighbours), the work pending for the next reconcile and its
//! deadlines, the firewall, and what `status` shows. The loop
//! ([`super::run`]) feeds it what its sources bring and calls
//! [`Daemon::settle`] after each wake. Generic over [`Kernel`]: hot swap,
//! config reload, coalescing and waiters are tested on the fake kernel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::confirming::{ToConfirm, Waiting};
use super::control::{Command, Incoming, Response};
use super::keeper::LeaseKeeper;
use super::leases::{self, Leases};
use super::links;
use super::neighbours::Neighbours;
use super::pending::{Due, Pending};
use super::status::{PolicyStatus, ReconcileStatus, Status};
use super::timers::{self, Timer, Timers};
use crate::config::Config;
use crate::engine::{EngineError, Evaluation, Firewall, log_failure};
use crate::files::{self, Kind};
use crate::kernel::Kernel;
use crate::text::error_chain;
use crate::world::{self, Event, Interface, NeighbourTable, WorldError, WorldState};

pub(super) fn epoch_now() -> u64 {
    epoch_of(SystemTime::now())
}

pub(super) fn epoch_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The reconciles so far, for `status`.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// The last reconcile of any kind, and the last that changed something.
    pub last: Option<ReconcileStatus>,
    pub last_change: Option<ReconcileStatus>,
    pub reconciles: u64,
    pub events: u64,
    pub started_at: u64,
    /// When the last reconcile for events ended (the burst gap counts from
    /// there).
    pub last_for_events: Option<Instant>,
}

pub struct Daemon<K: Kernel> {
    pub(super) config_path: PathBuf,
    pub(super) config: Config,
    pub(super) firewall: Firewall<K>,
    pub(super) evaluation: Evaluation,
    pub(super) interfaces: Vec<Interface>,
    /// The kernel's optional features, found at start; the hardware
    /// offload of each interface is asked again when the interfaces are
    /// read.
    pub(super) features: world::Features,
    pub(super) leases: Leases,
    /// Lease-file lines (or reads) that could not be used, as last seen.
    pub(super) lease_problems: Vec<String>,
    /// The kernel's neighbour table as last read (`[neighbours]`).
    pub(super) neighbours: Neighbours,
    pub(super) pending: Pending,
    pub(super) timers: Timers,
    /// Failures as last logged, so that a failing policy is logged when it
    /// fails or its error changes, not at every event.
    pub(super) logged_failures: BTreeMap<String, String>,
    /// Rejected new versions (policy or config) not superseded yet.
    pub(super) rejected: BTreeMap<String, String>,
    pub(super) record: Record,
    /// The newest compile started per policy: an older one that finishes
    /// later (a big component, then a quick fix) is dropped.
    pub(super) compile_seq: HashMap<String, u64>,
    pub(super) keeper: LeaseKeeper,
    /// A change to hold to confirmation at the next reconcile, and the one
    /// that waits (see `confirming`).
    pub(super) to_confirm: Option<ToConfirm>,
    pub(super) confirming: Option<Waiting>,
    /// The files to watch changed outside a reload (a rollback).
    pub(super) rewatch: bool,
    /// A start held to confirmation was not confirmed: stop, no clean-up.
    pub(super) stop_rolled_back: bool,
}

impl<K: Kernel> Daemon<K> {
    /// A daemon for `config` (read from `config_path`), acting through
    /// `firewall`; nothing is evaluated or applied before [`Daemon::start`].
    pub fn new(config_path: &Path, config: Config, firewall: Firewall<K>, now: Instant) -> Self {
        let keeper = LeaseKeeper::new(
            firewall.target().state_path.with_extension("leases"),
            config.leases.dnsmasq_file.is_none(),
        );
        let mut timers = Timers::default();
        if let Some(every) = config.reconcile_interval {
            timers.set(Timer::Tick, now + every);
        }
        timers.set(Timer::Sysctls, now + timers::SYSCTL_CHECK);
        Daemon {
            config_path: config_path.to_path_buf(),
            leases: Leases::new(config.leases.max),
            neighbours: Neighbours::new(config.neighbours.max),
            config,
            firewall,
            evaluation: Evaluation::default(),
            interfaces: Vec::new(),
            features: world::Features::default(),
            lease_problems: Vec::new(),
            pending: Pending::default(),
            timers,
            logged_failures: BTreeMap::new(),
            rejected: BTreeMap::new(),
            record: Record {
                started_at: epoch_now(),
                ..Record::default()
            },
            compile_seq: HashMap::new(),
            keeper,
            to_confirm: None,
            confirming: None,
            rewatch: false,
            stop_rolled_back: false,
        }
    }

    /// Takes in the world as it is at start (the interfaces read, the kept
    /// leases, the lease file), evaluates every policy on `startup` and
    /// applies the difference. An error here stops the daemon.
    pub fn start(&mut self, interfaces: Vec<Interface>, now: Instant) -> Result<(), EngineError> {
        self.interfaces = interfaces;
        self.features = crate::kernel::detect_features(
            self.firewall.kernel_mut(),
            &world::interface_names(&self.interfaces),
        );
        self.keeper.restore(&mut self.leases, epoch_now());
        self.read_lease_file();
        self.pending = Pending::default();
        self.evaluation = self.evaluate_all(&Event::Startup, &BTreeSet::new());
        self.record_change();
        self.reconcile("start".into(), true, false, now)?;
        self.arm_expiry(now);
        Ok(())
    }

    pub fn world(&self) -> WorldState {
        WorldState {
            interfaces: self.interfaces.clone(),
            leases: self.leases.list(),
            dhcpv6_leases: self.leases.list6(),
            neighbours: self.neighbours.list().to_vec(),
            features: self.features.clone(),
        }
    }

    /// The interfaces as last read (the neighbour table is read with them).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn firewall(&self) -> &Firewall<K> {
        &self.firewall
    }

    pub fn firewall_mut(&mut self) -> &mut Firewall<K> {
        &mut self.firewall
    }

    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// The files to watch: the config, the policies, their input files and
    /// the lease file.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config_path.clone()];
        for p in &self.config.policies {
            files.push(p.path.clone());
            files.extend(p.files.iter().map(|f| f.path.clone()));
        }
        files.extend(self.config.leases.dnsmasq_file.clone());
        files
    }

    /// The earliest deadline: when the loop should wake at the latest.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A run of interface or address notifications began or goes on.
    pub fn links_changed(&mut self, now: Instant) {
        self.timers
            .set_once(Timer::Links, now + timers::LINK_SETTLE);
    }

    /// A run of neighbour notifications began or goes on.
    pub fn neighbours_changed(&mut self, now: Instant) {
        if self.config.neighbours.enabled {
            self.timers
                .set_once(Timer::Neighbours, now + timers::NEIGHBOUR_SETTLE);
        }
    }

    /// nftables sent a change notification (ours or someone else's).
    pub fn nftables_changed(&mut self, now: Instant) {
        self.timers
            .set_once(Timer::Drift, now + timers::DRIFT_SETTLE);
    }

    /// A watched file changed; it is read once changes settled.
    pub fn files_notified(&mut self, now: Instant) {
        self.timers
            .set_once(Timer::Files, now + timers::FILE_SETTLE);
    }

    /// Handles the deadlines that are due; returns them (the loop takes the
    /// changed files itself when [`Timer::Files`] is among them).
    pub fn fire_due(&mut self, now: Instant) -> Vec<Timer> {
        let due = self.timers.take_due(now);
        for timer in &due {
            match timer {
                Timer::Links => self.pending.links = true,
                Timer::Neighbours => self.pending.neighbours = true,
                Timer::Files | Timer::Burst => {}
                Timer::Drift => {
                    self.pending.because("nftables changed");
                    self.pending.reconcile = true;
                }
                Timer::SaveLeases => {
                    if let Some(at) = self.keeper.save_if_due(&self.leases, now) {
                        self.timers.set(Timer::SaveLeases, at);
                    }
                }
                Timer::Expiry => {
                    for e in self.leases.expire(epoch_now()) {
                        self.record.events += 1;
                        self.pending.event(e);
                    }
                }
                Timer::Tick => {
                    self.pending.because("timer");
                    self.pending.links = true;
                    self.pending.neighbours = true;
                    self.pending.lease_file = self.config.leases.dnsmasq_file.is_some();
                    self.pending.reconcile = true;
                    if let Some(every) = self.config.reconcile_interval {
                        self.timers.set(Timer::Tick, now + every);
                    }
                }
                Timer::Confirm => self.confirm_deadline(),
                Timer::SaveApplied => self.firewall.save_applied(),
                // The loop starts the check off the loop (`health_job`).
                Timer::HealthCheck => {}
                Timer::Sysctls => {
                    self.check_sysctls();
                    self.timers.set(Timer::Sysctls, now + timers::SYSCTL_CHECK);
                }
            }
        }
        due
    }

    /// Whether the interfaces should be read again before [`Daemon::settle`].
    pub fn wants_interfaces(&self) -> bool {
        self.pending.links
    }

    /// Whether the neighbour table should be read again (after the
    /// interfaces, when they are wanted too) before [`Daemon::settle`].
    pub fn wants_neighbours(&self) -> bool {
        self.pending.neighbours && self.config.neighbours.enabled
    }

    /// The interfaces as read now: what changed becomes events.
    pub fn interfaces_read(&mut self, now: Result<Vec<Interface>, WorldError>) {
        self.pending.links = false;
        match now {
            Ok(now) => {
                let events = links::interface_events(&self.interfaces, &now);
                let indexes = |l: &[Interface]| -> Vec<(u32, String)> {
                    l.iter().map(|i| (i.index, i.name.clone())).collect()
                };
                if !events.is_empty() || indexes(&self.interfaces) != indexes(&now) {
                    // The neighbours' interfaces are found by index.
                    self.pending.neighbours = true;
                }
                self.interfaces = now;
                if !events.is_empty() {
                    let names = world::interface_names(&self.interfaces);
                    match self.firewall.kernel_mut().hardware_offload(&names) {
                        Ok(offload) => self.features.hardware_offload = offload,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read which interfaces offload flows in hardware; keeping the last reading")
                        }
                    }
                }
                if !events.is_empty() && self.config.leases.dnsmasq_file.is_some() {
                    // Which interface holds a lease of the file may have changed.
                    self.pending.lease_file = true;
                }
                self.record.events += events.len() as u64;
                for e in events {
                    self.pending.event(e);
                }
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot read the interfaces; keeping the last reading")
            }
        }
    }

    /// The neighbour table as read at start, before [`Daemon::start`]: the
    /// start's evaluation sees it on `startup`, with no events of its own.
    pub fn start_neighbours(&mut self, read: Result<NeighbourTable, WorldError>) {
        let _events = self.take_neighbours(read);
    }

    /// The neighbour table as read now: what changed becomes events.
    pub fn neighbours_read(&mut self, read: Result<NeighbourTable, WorldError>) {
        self.pending.neighbours = false;
        let events = self.take_neighbours(read);
        self.record.events += events.len() as u64;
        for e in events {
            self.pending.event(e);
        }
    }

    /// Holds a reading (a failed one keeps the last) and logs what the cap
    /// asks for; returns the events.
    fn take_neighbours(&mut self, read: Result<NeighbourTable, WorldError>) -> Vec<Event> {
        match read {
            Ok(table) => {
                let taken = self.neighbours.take(table);
                if let Some(w) = taken.warning {
                    tracing::warn!("{w}");
                }
                if taken.fits_again {
                    tracing::info!(
                        max = self.config.neighbours.max,
                        "the neighbour table fits `neighbours.max` again"
                    );
                }
                taken.events
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot read the neighbour table; keeping the last reading");
                Vec::new()
            }
        }
    }

    /// Someone changed a sysctl a policy asked for: repair it now, not at
    /// the next timer tick.
    fn check_sysctls(&mut self) {
        let drifted = self.firewall.sysctls_drifted(&self.evaluation);
        if !drifted.is_empty() {
            tracing::info!(sysctls = %drifted.join(", "), "a sysctl was changed by hand; putting it back");
            self.pending
                .because(format!("sysctl changed ({})", drifted.join(", ")));
            self.pending.reconcile = true;
        }
    }

    /// A lease told without its interface gets the one whose prefix holds
    /// its address.
    fn resolve_iface(&self, lease: &mut leases::AnyLease) -> Result<(), String> {
        if !lease.iface().is_empty() {
            return Ok(());
        }
        let ip = crate::fields::ip(lease.ip())?;
        let iface = leases::interface_holding(&self.interfaces, ip).ok_or_else(|| {
            format!(
                "lease for {}: no interface given, and none has a prefix holding the address",
                lease.ip()
            )
        })?;
        lease.set_iface(iface);
        Ok(())
    }

    /// A request of the control socket.
    pub fn handle(&mut self, incoming: Incoming) {
        match incoming.command {
            Command::Status => {
                let mut status = self.status();
                let table = status.table.clone();
                match self.firewall.kernel_mut().counters(&table) {
                    Ok(c) => status.counters = c,
                    Err(e) => status.counters_error = Some(error_chain(&e)),
                }
                let _ = incoming.reply.send(Response {
                    ok: true,
                    status: Some(Box::new(status)),
                    ..Response::default()
                });
            }
            Command::Confirm => {
                let _ = incoming.reply.send(self.confirm_now());
            }
            Command::Lease {
                action,
                mut lease,
                wait,
            } => match self
                .resolve_iface(&mut lease)
                .and_then(|()| self.leases.apply(action, lease, epoch_now()))
            {
                Err(e) => {
                    tracing::warn!("{e}");
                    let _ = incoming.reply.send(Response::error(e));
                }
                Ok(event) => {
                    self.record.events += 1;
                    if let Some(e) = event {
                        self.pending.event(e);
                    }
                    if wait {
                        self.pending.waiters.push(incoming.reply);
                    } else {
                        let _ = incoming.reply.send(Response::ok());
                    }
                }
            },
        }
    }

    pub(super) fn read_lease_file(&mut self) {
        let Some(path) = self.config.leases.dnsmasq_file.clone() else {
            return;
        };
        let interfaces = &self.interfaces;
        let max = self.config.leases.max;
        let read = files::Opened::open(&path, Kind::LeaseFile).and_then(|mut file| {
            let found = leases::parse_dnsmasq(BufReader::new(file.reader()), interfaces, max)
                .map_err(|e| file.read_error(e))?;
            if file.past_max() {
                return Err(file.too_large());
            }
            Ok(found)
        });
        let found = match read {
            Ok(found) => found,
            // No file yet: no leases from it.
            Err(e) if e.not_found() => leases::LeaseFile::default(),
            // Not read: the leases it gave stay until it can be.
            Err(e) => {
                let problem = error_chain(&e);
                if !self.lease_problems.contains(&problem) {
                    tracing::warn!("{problem}");
                }
                self.lease_problems = vec![problem];
                return;
            }
        };
        let (events, refused) = self.leases.sync_file(found.leases, epoch_now());
        let mut problems = found.problems;
        problems.extend(refused);
        let problems: Vec<String> = problems
            .lines()
            .into_iter()
            .map(|p| format!("lease file {}: {p}", path.display()))
            .collect();
        for p in problems.iter().filter(|p| !self.lease_problems.contains(p)) {
            tracing::warn!("{p}");
        }
        self.lease_problems = problems;
        self.record.events += events.len() as u64;
        for e in events {
            self.pending.event(e);
        }
    }

    /// Evaluates every policy; a policy just loaded (`fresh`) sees
    /// `startup`, the others `event`. Failures are logged when new or
    /// changed.
    pub(super) fn evaluate_all(&mut self, event: &Event, fresh: &BTreeSet<String>) -> Evaluation {
        let startup = Event::Startup;
        let world = self.world();
        let mut evaluation = self.firewall.policies().evaluate_each(&world, |name| {
            if fresh.contains(name) {
                &startup
            } else {
                event
            }
        });
        self.firewall
            .settle_with(self.firewall.policies(), &mut evaluation);
        let now: BTreeMap<String, String> = evaluation
            .failed
            .iter()
            .map(|f| (f.policy.clone(), f.to_string()))
            .collect();
        for f in &evaluation.failed {
            if self.logged_failures.get(&f.policy) != now.get(&f.policy) {
                log_failure(f);
            }
        }
        for policy in self.logged_failures.keys() {
            if !now.contains_key(policy) {
                tracing::info!(policy = %policy, "policy works again");
            }
        }
        self.logged_failures = now;
        evaluation
    }

    /// Does what is pending: reads the lease file again if asked, evaluates
    /// if the world or a policy changed, reconciles, and answers the
    /// requests that waited for it. In a burst, waits for the gap instead.
    /// The interfaces, when asked for ([`Daemon::wants_interfaces`]), must
    /// have been read first.
    pub fn settle(&mut self, now: Instant) {
        if std::mem::take(&mut self.pending.lease_file) {
            self.read_lease_file();
        }
        match self.pending.due(now, self.record.last_for_events) {
            Due::Nothing => answer(std::mem::take(&mut self.pending.waiters), None),
            Due::At(at) => self.timers.set(Timer::Burst, at),
            Due::Now => {
                let pending = std::mem::take(&mut self.pending);
                let reason = pending.reason();
                let span = tracing::info_span!("reconcile", reason = %reason);
                let _entered = span.enter();
                if pending.evaluate {
                    // A swap alone is no event: the others see `startup` too.
                    let event = pending.last.clone().unwrap_or(Event::Startup);
                    self.evaluation = self.evaluate_all(&event, &pending.fresh);
                }
                self.record_change();
                let error = self
                    .reconcile(reason, false, pending.evaluate, now)
                    .err()
                    .map(|e| {
                        let e = error_chain(&e);
                        tracing::error!(error = %e, "reconcile failed; the kernel keeps its last rules; retrying at the next change or tick");
                        e
                    });
                if pending.has_lease_events() {
                    self.keeper.changed();
                }
                answer(pending.waiters, error);
            }
        }
        if self.firewall.applied_unsaved() && !self.timers.is_set(Timer::SaveApplied) {
            self.timers
                .set(Timer::SaveApplied, now + timers::SAVE_APPLIED);
        }
        if !self.timers.is_set(Timer::SaveLeases)
            && let Some(at) = self.keeper.save_if_due(&self.leases, now)
        {
            self.timers.set(Timer::SaveLeases, at);
        }
        self.arm_expiry(now);
    }

    /// One reconcile of the current evaluation, recorded for `status`.
    pub(super) fn reconcile(
        &mut self,
        reason: String,
        always: bool,
        for_events: bool,
        now: Instant,
    ) -> Result<(), EngineError> {
        let result = self
            .firewall
            .reconcile(&mut self.evaluation, &reason, always);
        self.record.reconciles += 1;
        if for_events {
            self.record.last_for_events = Some(now);
        }
        let mut record = ReconcileStatus {
            reason,
            at: epoch_now(),
            ..ReconcileStatus::default()
        };
        let metrics = crate::metrics::global();
        match &result {
            Ok(o) => {
                metrics.reconciled(Duration::from_micros(o.elapsed_us), o.messages, o.flows_cut);
                // Nothing the policies want changed: the change put back
                // what someone else edited.
                if o.changed && is_drift_check(&record.reason) {
                    metrics.drift_repairs.inc();
                }
                record.duration_us = o.elapsed_us;
                record.messages = o.messages;
                record.changes = o.changes.clone();
                if o.changed {
                    self.record.last_change = Some(record.clone());
                }
            }
            Err(e) => {
                metrics.reconcile_failures.inc();
                record.error = Some(error_chain(e));
            }
        }
        self.record.last = Some(record);
        result.map(|_| ())
    }

    /// The expiry deadline follows the earliest lease expiry.
    fn arm_expiry(&mut self, now: Instant) {
        match self.leases.next_expiry() {
            Some(at) => {
                let wait = Duration::from_secs(at.saturating_sub(epoch_now()));
                self.timers.set(Timer::Expiry, now + wait);
            }
            None => self.timers.cancel(Timer::Expiry),
        }
    }

    /// Writes what is pending to disk; the daemon is stopping.
    pub fn finish(&mut self) {
        self.keeper.finish(&self.leases);
        self.firewall.save_applied();
    }

    /// The text of a metrics scrape: what was counted, and the rule
    /// counters, leases and neighbours as they are now.
    pub fn metrics_text(&mut self) -> String {
        let table = self.firewall.target().table.clone();
        let rules = match self.firewall.kernel_mut().counters(&table) {
            Ok(c) => c.rules,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "metrics: cannot read the rule counters");
                Vec::new()
            }
        };
        let world = self.world();
        crate::metrics::global().encode(&crate::metrics::Snapshot {
            rules,
            leases_v4: world.leases.len(),
            leases_v6: world.dhcpv6_leases.len(),
            neighbours: world.neighbours.len(),
        })
    }

    pub fn status(&self) -> Status {
        let mut errors: Vec<String> = self
            .evaluation
            .failed
            .iter()
            .map(|f| f.to_string())
            .collect();
        errors.extend(self.rejected.values().cloned());
        if let Some(e) = self.record.last.as_ref().and_then(|r| r.error.clone()) {
            errors.push(format!("last reconcile failed: {e}"));
        }
        errors.extend(self.lease_problems.iter().cloned());
        errors.extend(self.neighbours.over_cap());
        let target = self.firewall.target();
        Status {
            pid: std::process::id(),
            started_at: self.record.started_at,
            table: target.table.clone(),
            netns: target.netns.clone(),
            policies: self
                .firewall
                .policies()
                .slots()
                .iter()
                .map(|s| PolicyStatus {
                    name: s.config.name.clone(),
                    path: s.config.path.display().to_string(),
                    files: s
                        .config
                        .files
                        .iter()
                        .map(|f| (f.key.clone(), f.path.display().to_string()))
                        .collect(),
                    hash: s.hash.clone(),
                    loaded_at: s.loaded_at.map(epoch_of),
                    last_result: match (
                        self.evaluation
                            .rules
                            .iter()
                            .find(|r| r.policy == s.config.name),
                        self.evaluation.failure(&s.config.name),
                    ) {
                        (Some(r), _) => format!("ok: {} rules", r.rules.rule_count()),
                        (_, Some(f)) => format!("failed: {f}"),
                        _ => "not evaluated yet".into(),
                    },
                })
                .collect(),
            world: self.world(),
            last_reconcile: self.record.last.clone(),
            last_change: self.record.last_change.clone(),
            errors,
            reconciles: self.record.reconciles,
            events: self.record.events,
            confirmation: self.confirmation_status(),
            ..Status::default()
        }
    }
}

/// Whether a reconcile's reason is only checks for drift (a change
/// notification, the timer, a changed sysctl), not a change the policies
/// asked for.
fn is_drift_check(reason: &str) -> bool {
    reason
        .split("; ")
        .all(|r| r == "nftables changed" || r == "timer" || r.starts_with("sysctl changed"))
}

/// Answers the requests that waited for a reconcile.
fn answer(waiters: Vec<tokio::sync::oneshot::Sender<Response>>, error: Option<String>) {
    for w in waiters {
        let _ = w.send(match &error {
            None => Response::ok(),
            Some(e) => Response::error(format!("reconcile failed: {e}")),
        });
    }
}

#[cfg(test)]
mod drift_tests {
    use super::is_drift_check;

    #[test]
    fn only_reasons_that_are_all_drift_checks_count_as_repairs() {
        assert!(is_drift_check("nftables changed"));
        assert!(is_drift_check(
            "timer; sysctl changed (net.ipv4.ip_forward)"
        ));
        assert!(!is_drift_check("lease add 192.168.1.7; nftables changed"));
        assert!(!is_drift_check("policy home swapped"));
        assert!(!is_drift_check("start"));
    }
}
