//! `wasmwall run`: the daemon that keeps the kernel in line with the
//! policies while the network changes.
//!
//! Inputs, all in one tokio task: rtnetlink notifications (interfaces and
//! addresses of the namespace), the control socket (DHCP lease events from a
//! server's hook, status requests), dnsmasq's lease file, the policy and
//! config files (hot swap), lease expiry, nftables change notifications
//! (drift repair) and a timer. Each input only updates the world state and
//! notes why; whatever else is ready is drained too, and then the policies
//! are evaluated once and the difference applied in one batch. A burst of
//! events (an interface flapping, a thousand leases) so makes few
//! reconciles, and the last one sees the final state.

pub mod control;
pub mod leases;
pub mod links;
pub mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::config::Config;
use crate::kernel::{Monitor, Netlink};
use crate::runtime::{
    self, Candidate, Evaluation, Policies, Reconciler, RuntimeError, Slot, Target,
};
use crate::snapshot::SnapshotFile;
use crate::world::{self, Event, Interface, WorldState};
use control::{Command, Incoming, Response};
use leases::Leases;
use status::{PolicyStatus, ReconcileStatus, Status};

/// Wait after a change notification of nftables, so that someone's script
/// of nft commands leads to one repair.
const DRIFT_SETTLE: Duration = Duration::from_millis(50);
/// Wait after a file change, so that a file written in several steps is
/// read once, whole.
const FILE_SETTLE: Duration = Duration::from_millis(20);
/// Wait after an interface or address notification: `ip` commands and
/// link flaps come in runs; the interfaces are read once per run.
const LINK_SETTLE: Duration = Duration::from_millis(20);
/// Reconciles during a burst of events are at least this far apart; the
/// first event after a quiet spell is reconciled at once.
const MIN_GAP: Duration = Duration::from_millis(10);
/// The lease table is written to disk at most this often (after the
/// reconcile that took a change in, so never in an event's way).
const LEASES_SAVE_GAP: Duration = Duration::from_secs(1);
/// Requests waiting for the daemon's loop at most; more wait in the socket.
const QUEUE: usize = 1024;

/// One reconcile's figures, for the log and `status`.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub messages: usize,
    pub changes: String,
    pub elapsed_us: u64,
}

/// One reconcile, logged at info when something was sent (or `always`), at
/// debug when the kernel already matched. A policy whose rules the kernel
/// refused is moved to the evaluation's failures.
pub fn reconcile_logged(
    kernel: &mut Netlink,
    reconciler: &mut Reconciler,
    config: &Config,
    target: &Target,
    evaluation: &mut Evaluation,
    reason: &str,
    always: bool,
) -> Result<Outcome, RuntimeError> {
    let started = std::time::Instant::now();
    let (applied, narrowed) =
        runtime::apply_isolating(kernel, reconciler, target, &config.sysctls, evaluation)?;
    if let Some(narrowed) = narrowed {
        *evaluation = narrowed;
    }
    let messages = applied.kernel.as_ref().map_or(0, |k| k.messages);
    let changed =
        messages > 0 || !applied.sysctls_set.is_empty() || !applied.sysctls_restored.is_empty();
    let elapsed_us = started.elapsed().as_micros() as u64;
    macro_rules! report {
        ($level:ident, $what:literal) => {
            tracing::$level!(
                reason,
                table = %format!("inet {}", target.table),
                netns = target.netns.as_deref().unwrap_or("(current)"),
                policies = evaluation.rules.len(),
                failed = evaluation.failed.len(),
                rules = applied.rules,
                messages,
                changes = %applied.summary,
                read_table = applied.read_table,
                sysctls_set = %applied.sysctls_set.join(" "),
                sysctls_restored = %applied.sysctls_restored.join(" "),
                elapsed_us,
                $what
            )
        };
    }
    match (changed, always) {
        (true, _) => report!(info, "reconciled: changes applied in one batch"),
        (false, true) => report!(info, "reconciled: nothing to change"),
        (false, false) => report!(debug, "reconciled: nothing to change"),
    }
    Ok(Outcome {
        messages,
        changes: applied.summary,
        elapsed_us,
    })
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn epoch_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The short name of an event, for reasons and counts.
fn kind(e: &Event) -> &'static str {
    match e {
        Event::Startup => "startup",
        Event::ConfigChanged => "config-changed",
        Event::InterfaceUp(_) => "interface-up",
        Event::InterfaceDown(_) => "interface-down",
        Event::AddressAdded { .. } => "address-added",
        Event::AddressRemoved { .. } => "address-removed",
        Event::LeaseAdded(_) => "lease-added",
        Event::LeaseRenewed(_) => "lease-renewed",
        Event::LeaseExpired(_) => "lease-expired",
    }
}

/// An event in a few words, e.g. "lease-added 192.168.1.23 (nas)".
fn describe(e: &Event) -> String {
    match e {
        Event::InterfaceUp(n) | Event::InterfaceDown(n) => format!("{} {n}", kind(e)),
        Event::AddressAdded { iface, address } | Event::AddressRemoved { iface, address } => {
            format!("{} {iface} {address}", kind(e))
        }
        Event::LeaseAdded(l) | Event::LeaseRenewed(l) | Event::LeaseExpired(l) => format!(
            "{} {} {}{}",
            kind(e),
            l.ip,
            l.mac,
            l.hostname
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        ),
        Event::Startup | Event::ConfigChanged => kind(e).to_string(),
    }
}

/// What happened since the last reconcile: bounded whatever the burst (a
/// count per kind, the last event, the reasons that are not events).
#[derive(Default)]
struct Pending {
    counts: BTreeMap<&'static str, usize>,
    last: Option<Event>,
    other: BTreeSet<String>,
    /// Evaluate the policies again (the world or a policy changed).
    evaluate: bool,
    /// Reconcile even if nothing was evaluated (drift, timer).
    reconcile: bool,
    /// Read the interfaces again.
    links: bool,
    /// Read the lease file again.
    lease_file: bool,
    /// Policies just (re)loaded: they see `startup`.
    fresh: BTreeSet<String>,
    waiters: Vec<oneshot::Sender<Response>>,
}

impl Pending {
    fn event(&mut self, e: Event) {
        *self.counts.entry(kind(&e)).or_default() += 1;
        self.last = Some(e);
        self.evaluate = true;
    }

    fn because(&mut self, reason: impl Into<String>) {
        self.other.insert(reason.into());
    }

    fn reason(&self) -> String {
        let events: usize = self.counts.values().sum();
        let mut parts: Vec<String> = Vec::new();
        match (&self.last, events) {
            (Some(e), 1) => parts.push(describe(e)),
            (_, 0) => {}
            (_, n) => parts.push(format!(
                "{n} events ({})",
                self.counts
                    .iter()
                    .map(|(k, c)| format!("{k} x{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        parts.extend(self.other.iter().cloned());
        parts.join("; ")
    }
}

/// The watched files: a change of any of them reaches the loop.
struct Watched {
    /// Canonical path as the watcher reports it -> the path as configured.
    paths: Mutex<HashMap<PathBuf, PathBuf>>,
    changed: Mutex<BTreeSet<PathBuf>>,
    notify: Notify,
}

/// The directories to watch for `files` (editors and `mv` replace a file,
/// which a watch on the file itself would not follow), and the map of the
/// paths the watcher will report.
fn watch_map(files: &[&Path]) -> (BTreeSet<PathBuf>, HashMap<PathBuf, PathBuf>) {
    let mut dirs = BTreeSet::new();
    let mut map = HashMap::new();
    for file in files {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Ok(dir) = std::fs::canonicalize(&dir) else {
            continue;
        };
        if let Some(name) = file.file_name() {
            map.insert(dir.join(name), file.to_path_buf());
            dirs.insert(dir);
        }
    }
    (dirs, map)
}

struct Daemon {
    config_path: PathBuf,
    config: Config,
    target: Target,
    kernel: Netlink,
    reconciler: Reconciler,
    policies: Policies,
    evaluation: Evaluation,
    interfaces: Vec<Interface>,
    leases: Leases,
    lease_problems: Vec<String>,
    pending: Pending,
    /// Failures as last logged, so that a failing policy is logged when it
    /// fails or its error changes, not at every event.
    logged_failures: BTreeMap<String, String>,
    /// Rejected new versions (policy or config) not superseded yet.
    rejected: BTreeMap<String, String>,
    last_reconcile: Option<ReconcileStatus>,
    reconciles: u64,
    events: u64,
    started_at: u64,
    watched: Arc<Watched>,
    watcher: Option<notify::RecommendedWatcher>,
    watched_dirs: BTreeSet<PathBuf>,
    /// The newest compile started per policy: an older one that finishes
    /// later (a big component, then a quick fix) is dropped.
    compile_seq: HashMap<String, u64>,
    /// When the last reconcile for events ended, and when the next may start.
    last_reconcile_at: Option<Instant>,
    settle_due: Option<Instant>,
    /// Where the leases told over the socket are kept across restarts, and
    /// when they were last written.
    leases_path: PathBuf,
    leases_dirty: bool,
    leases_saved_at: Option<Instant>,
    save_due: Option<Instant>,
    keeper: Keeper,
}

/// Writes the newest lease table to its file on a thread of its own, one
/// write at a time; a newer table replaces one not written yet.
struct Keeper {
    shared: Arc<(Mutex<KeeperState>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct KeeperState {
    next: Option<Vec<u8>>,
    stop: bool,
}

impl Keeper {
    fn new(path: PathBuf) -> Keeper {
        let shared: Arc<(Mutex<KeeperState>, std::sync::Condvar)> = Arc::default();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lease-keeper".into())
            .spawn(move || {
                let (lock, wake) = &*theirs;
                loop {
                    let (bytes, stop) = {
                        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while state.next.is_none() && !state.stop {
                            state = wake.wait(state).unwrap_or_else(|e| e.into_inner());
                        }
                        (state.next.take(), state.stop)
                    };
                    if let Some(bytes) = bytes
                        && let Err(e) = crate::state::write_private(&path, &bytes)
                    {
                        tracing::warn!(file = %path.display(), error = %e, "cannot keep the leases for a restart");
                    }
                    if stop {
                        return;
                    }
                }
            })
            .ok();
        Keeper { shared, thread }
    }

    fn keep(&self, bytes: Vec<u8>) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).next = Some(bytes);
        wake.notify_one();
    }

    /// Writes what is pending and stops.
    fn finish(&mut self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What woke the daemon's loop, when it is more than a flag to set.
enum Woke {
    Stop(&'static str),
    /// A new version of a policy finished compiling.
    Compiled(String, Result<Candidate, String>),
    /// Watched files changed (and settled).
    Files,
    Other,
}

type Compiles = tokio::task::JoinSet<(String, u64, Result<Candidate, String>)>;

/// Runs the daemon until SIGINT or SIGTERM; returns the signal's name. The
/// caller cleans up.
///
/// The loop waits for input inside the async runtime and does the work
/// (evaluating policies, reconciling) outside it: a policy's WASI calls
/// (a flush of its stdout) block on an async runtime of their own, which
/// cannot run inside this one. While the work is done, the socket server
/// and the rtnetlink reader wait; what arrives meanwhile is taken in at the
/// next wait, together.
pub fn run(config_path: &Path, config: Config, target: Target) -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let entered = rt.enter();
    // Catch the signals before the first write, so that one arriving while
    // the rules go in still leads to a clean-up.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    // Subscribe to every source before reading anything, so that no change
    // after a reading goes unseen.
    let (links_conn, _links_handle, mut links) = rtnetlink::new_multicast_connection(&[
        rtnetlink::MulticastGroup::Link,
        rtnetlink::MulticastGroup::Ipv4Ifaddr,
        rtnetlink::MulticastGroup::Ipv6Ifaddr,
    ])
    .context("cannot subscribe to interface and address changes (rtnetlink)")?;
    rt.spawn(links_conn);
    let mut monitor = {
        let monitor = Monitor::new()?;
        // SAFETY: the Monitor owns its socket for its whole life, closes it
        // only when dropped, and always returns the same descriptor.
        unsafe { tokio::io::unix::AsyncFd::register(monitor) }
            .map_err(|e| e.into_parts().1)
            .context("cannot watch nftables notifications")?
    };
    let socket_path = control::socket_path(&config, &target.state_path);
    let listener = control::bind(&socket_path)
        .with_context(|| format!("cannot make the control socket {}", socket_path.display()))?;
    let (control_tx, mut control_rx) = mpsc::channel::<Incoming>(QUEUE);
    let server = rt.spawn(control::serve(listener, control_tx));
    drop(entered);

    let watched = Arc::new(Watched {
        paths: Mutex::new(HashMap::new()),
        changed: Mutex::new(BTreeSet::new()),
        notify: Notify::new(),
    });
    let mut kernel = Netlink::new()?;
    // The daemon remembers its table: have every new rule's handle echoed.
    kernel.echo_all_rules();
    let policies = Policies::load(&config)?;
    let reconciler = Reconciler::new(&target.table)
        .with_snapshot(SnapshotFile::beside(&target.state_path, true));
    let leases_path = target.state_path.with_extension("leases");
    let mut daemon = Daemon {
        config_path: config_path.to_path_buf(),
        leases: Leases::new(config.leases.max),
        config,
        target,
        kernel,
        reconciler,
        policies,
        evaluation: Evaluation::default(),
        interfaces: Vec::new(),
        lease_problems: Vec::new(),
        pending: Pending::default(),
        logged_failures: BTreeMap::new(),
        rejected: BTreeMap::new(),
        last_reconcile: None,
        reconciles: 0,
        events: 0,
        started_at: epoch_now(),
        watched: watched.clone(),
        watcher: None,
        watched_dirs: BTreeSet::new(),
        compile_seq: HashMap::new(),
        last_reconcile_at: None,
        settle_due: None,
        leases_path: leases_path.clone(),
        leases_dirty: false,
        leases_saved_at: None,
        save_due: None,
        keeper: Keeper::new(leases_path.clone()),
    };
    if daemon.config.watch_files {
        daemon.start_watching()?;
    }
    daemon.interfaces = rt.block_on(world::read_interfaces())?;
    daemon.restore_leases();
    daemon.read_lease_file();
    daemon.pending = Pending::default();
    daemon.evaluation = daemon.evaluate_all(&Event::Startup, &BTreeSet::new());
    let mut evaluation = std::mem::take(&mut daemon.evaluation);
    reconcile_logged(
        &mut daemon.kernel,
        &mut daemon.reconciler,
        &daemon.config,
        &daemon.target,
        &mut evaluation,
        "start",
        true,
    )?;
    daemon.evaluation = evaluation;
    // From here on the table is kept in memory; writing the snapshot at
    // every change would cost each event a serialization of the table. The
    // one written at start goes stale (and unused) at the first change.
    daemon.reconciler.stop_saving_snapshot();
    tracing::info!(
        socket = %socket_path.display(),
        interval_s = daemon.config.reconcile_interval.map(|d| d.as_secs()),
        watch_files = daemon.config.watch_files,
        leases_file = ?daemon.config.leases.dnsmasq_file,
        "running: following interfaces, leases and policy files; SIGINT or SIGTERM stops and cleans up"
    );

    let mut timer = {
        let _entered = rt.enter();
        let period = daemon
            .config
            .reconcile_interval
            .unwrap_or(Duration::from_secs(u64::MAX >> 2));
        let mut timer = tokio::time::interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    };
    let mut compiles = Compiles::new();
    let mut files_due: Option<Instant> = None;
    let mut drift_due: Option<Instant> = None;
    let mut links_due: Option<Instant> = None;
    let mut links_open = true;
    let far = || Instant::now() + Duration::from_secs(86_400);

    let signal = loop {
        let expiry_at = daemon
            .leases
            .next_expiry()
            .map(|e| Instant::now() + Duration::from_secs(e.saturating_sub(epoch_now())));
        let woke = rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Woke::Stop("SIGTERM"),
                _ = int.recv() => Woke::Stop("SIGINT"),
                Some(incoming) = control_rx.recv() => {
                    daemon.handle(incoming);
                    Woke::Other
                }
                message = links.next(), if links_open => {
                    if message.is_some() {
                        links_due.get_or_insert_with(|| Instant::now() + LINK_SETTLE);
                    } else {
                        links_open = false;
                        tracing::error!("the rtnetlink subscription ended: interface changes are now seen only at the reconcile timer");
                    }
                    Woke::Other
                }
                _ = tokio::time::sleep_until(links_due.unwrap_or_else(far)), if links_due.is_some() => {
                    links_due = None;
                    daemon.pending.links = true;
                    Woke::Other
                }
                _ = tokio::time::sleep_until(daemon.save_due.unwrap_or_else(far)), if daemon.save_due.is_some() => {
                    daemon.save_due = None;
                    daemon.save_leases();
                    Woke::Other
                }
                _ = tokio::time::sleep_until(daemon.settle_due.unwrap_or_else(far)), if daemon.settle_due.is_some() => {
                    daemon.settle_due = None;
                    Woke::Other
                }
                _ = watched.notify.notified() => {
                    files_due.get_or_insert_with(|| Instant::now() + FILE_SETTLE);
                    Woke::Other
                }
                _ = tokio::time::sleep_until(files_due.unwrap_or_else(far)), if files_due.is_some() => {
                    files_due = None;
                    Woke::Files
                }
                Some(done) = compiles.join_next(), if !compiles.is_empty() => match done {
                    Ok((name, seq, candidate)) if daemon.compile_seq.get(&name) == Some(&seq) => {
                        Woke::Compiled(name, candidate)
                    }
                    Ok((name, _, _)) => {
                        tracing::debug!(policy = %name, "an older compile finished after a newer one started; dropped");
                        Woke::Other
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a policy compile task failed");
                        Woke::Other
                    }
                },
                ready = monitor.readable_mut() => {
                    let Ok(mut guard) = ready else { return Woke::Stop("nftables monitor failure") };
                    let _ = guard.get_inner_mut().drain();
                    guard.clear_ready();
                    drift_due.get_or_insert_with(|| Instant::now() + DRIFT_SETTLE);
                    Woke::Other
                }
                _ = tokio::time::sleep_until(drift_due.unwrap_or_else(far)), if drift_due.is_some() => {
                    drift_due = None;
                    daemon.pending.because("nftables changed");
                    daemon.pending.reconcile = true;
                    Woke::Other
                }
                _ = timer.tick(), if daemon.config.reconcile_interval.is_some() => {
                    daemon.pending.because("timer");
                    daemon.pending.links = true;
                    daemon.pending.lease_file = daemon.config.leases.dnsmasq_file.is_some();
                    daemon.pending.reconcile = true;
                    Woke::Other
                }
                _ = tokio::time::sleep_until(expiry_at.unwrap_or_else(far)), if expiry_at.is_some() => {
                    for e in daemon.leases.expire(epoch_now()) {
                        daemon.pending.event(e);
                    }
                    Woke::Other
                }
            }
        });
        match woke {
            Woke::Stop(signal) => break signal,
            Woke::Compiled(name, candidate) => daemon.compiled(&name, candidate),
            Woke::Files => daemon.files_changed(&mut compiles, rt.handle()),
            Woke::Other => {}
        }
        // Take in whatever else is ready: a burst makes one reconcile.
        while let Ok(incoming) = control_rx.try_recv() {
            daemon.handle(incoming);
        }
        while let Ok(_message) = links.try_recv() {
            links_due.get_or_insert_with(|| Instant::now() + LINK_SETTLE);
        }
        daemon.settle(&rt);
    };
    server.abort();
    let _ = std::fs::remove_file(&socket_path);
    if daemon.leases_dirty {
        daemon.save_leases();
    }
    daemon.keeper.finish();
    Ok(signal)
}

impl Daemon {
    fn world(&self) -> WorldState {
        WorldState {
            interfaces: self.interfaces.clone(),
            leases: self.leases.list(),
        }
    }

    /// Evaluates every policy; a policy just loaded (`fresh`) sees
    /// `startup`, the others `event`. Failures are logged when new or
    /// changed.
    fn evaluate_all(&mut self, event: &Event, fresh: &BTreeSet<String>) -> Evaluation {
        let startup = Event::Startup;
        let evaluation = self.policies.evaluate_each(&self.world(), |name| {
            if fresh.contains(name) {
                &startup
            } else {
                event
            }
        });
        let now: BTreeMap<String, String> = evaluation
            .failed
            .iter()
            .map(|f| (f.policy.clone(), f.error.clone()))
            .collect();
        for (policy, error) in &now {
            if self.logged_failures.get(policy) != Some(error) {
                runtime::log_failure(policy, error);
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

    /// A lease told without its interface gets the one whose prefix holds
    /// its address.
    fn resolve_iface(&self, lease: &mut world::Lease) -> Result<(), String> {
        if !lease.iface.is_empty() {
            return Ok(());
        }
        let ip = world::fields::ip(&lease.ip)?;
        lease.iface = leases::interface_holding(&self.interfaces, ip).ok_or_else(|| {
            format!(
                "lease for {}: no interface given, and none has a prefix holding the address",
                lease.ip
            )
        })?;
        Ok(())
    }

    fn handle(&mut self, incoming: Incoming) {
        match incoming.command {
            Command::Status => {
                let status = self.status();
                let _ = incoming.reply.send(Response {
                    ok: true,
                    error: None,
                    status: Some(Box::new(status)),
                });
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
                    self.events += 1;
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

    /// Applies what is pending: reads interfaces and the lease file again
    /// if asked, evaluates if the world or a policy changed, reconciles, and
    /// answers the requests that waited for it.
    fn settle(&mut self, rt: &tokio::runtime::Runtime) {
        if std::mem::take(&mut self.pending.links) {
            match rt.block_on(world::read_interfaces()) {
                Ok(now) => {
                    let events = links::interface_events(&self.interfaces, &now);
                    self.interfaces = now;
                    if !events.is_empty() && self.config.leases.dnsmasq_file.is_some() {
                        // Which interface holds a lease of the file may have changed.
                        self.pending.lease_file = true;
                    }
                    self.events += events.len() as u64;
                    for e in events {
                        self.pending.event(e);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the interfaces; keeping the last reading")
                }
            }
        }
        if std::mem::take(&mut self.pending.lease_file) {
            self.read_lease_file();
        }
        if !self.pending.evaluate && !self.pending.reconcile {
            self.answer_waiters(None);
            return;
        }
        // Only reconciles for events count: a drift check (which follows
        // each of the daemon's own batches) must not hold up the next event.
        if self.pending.evaluate
            && let Some(at) = self.last_reconcile_at
            && at.elapsed() < MIN_GAP
        {
            // In a burst: gather more before the next reconcile.
            self.settle_due = Some(at + MIN_GAP);
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let reason = pending.reason();
        let span = tracing::info_span!("reconcile", reason = %reason);
        let _entered = span.enter();
        if pending.evaluate {
            // A swap alone is no event: the others see `startup` too.
            let event = pending.last.clone().unwrap_or(Event::Startup);
            self.evaluation = self.evaluate_all(&event, &pending.fresh);
        }
        let mut evaluation = std::mem::take(&mut self.evaluation);
        let result = reconcile_logged(
            &mut self.kernel,
            &mut self.reconciler,
            &self.config,
            &self.target,
            &mut evaluation,
            &reason,
            false,
        );
        self.evaluation = evaluation;
        self.reconciles += 1;
        if pending.evaluate {
            self.last_reconcile_at = Some(Instant::now());
        }
        let mut record = ReconcileStatus {
            reason: reason.clone(),
            at: epoch_now(),
            ..ReconcileStatus::default()
        };
        let error = match result {
            Ok(o) => {
                record.duration_us = o.elapsed_us;
                record.messages = o.messages;
                record.changes = o.changes;
                None
            }
            Err(e) => {
                let e = runtime::error_chain(&e);
                tracing::error!(error = %e, "reconcile failed; the kernel keeps its last rules; retrying at the next change or tick");
                record.error = Some(e.clone());
                Some(e)
            }
        };
        self.last_reconcile = Some(record);
        self.pending.waiters = pending.waiters;
        self.answer_waiters(error);
        if pending.counts.keys().any(|k| k.starts_with("lease-")) {
            self.leases_dirty = true;
        }
        if self.leases_dirty && self.save_due.is_none() {
            match self.leases_saved_at {
                Some(at) if at.elapsed() < LEASES_SAVE_GAP => {
                    self.save_due = Some(at + LEASES_SAVE_GAP);
                }
                _ => self.save_leases(),
            }
        }
    }

    /// Keeps the leases across a restart of wasmwall: dnsmasq reports a
    /// lease to its hook once, not again when wasmwall restarts. Written
    /// root-only beside the state file; only when no lease file is
    /// configured (then the lease file, which dnsmasq keeps, is the truth).
    fn save_leases(&mut self) {
        if self.config.leases.dnsmasq_file.is_some() {
            self.leases_dirty = false;
            return;
        }
        match serde_json::to_vec(&self.leases.list()) {
            // Written (and synced) off the loop: never in an event's way.
            Ok(bytes) => {
                self.keeper.keep(bytes);
                self.leases_dirty = false;
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize the leases"),
        }
        self.leases_saved_at = Some(Instant::now());
    }

    /// Takes in the leases a previous run kept (expired ones dropped, each
    /// checked again), unless a lease file is configured.
    fn restore_leases(&mut self) {
        if self.config.leases.dnsmasq_file.is_some() {
            return;
        }
        let text = match std::fs::read(&self.leases_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(file = %self.leases_path.display(), error = %e, "cannot read the kept leases");
                return;
            }
        };
        let kept: Vec<world::Lease> = match serde_json::from_slice(&text) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(file = %self.leases_path.display(), error = %e, "the kept leases are not valid; ignored");
                return;
            }
        };
        let now = epoch_now();
        let mut restored = 0;
        for lease in kept {
            match lease
                .checked()
                .and_then(|l| self.leases.apply(leases::LeaseAction::Add, l, now))
            {
                Ok(Some(_)) => restored += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(file = %self.leases_path.display(), "kept lease ignored: {e}")
                }
            }
        }
        tracing::info!(file = %self.leases_path.display(), restored, "leases kept by the previous run restored");
    }

    fn answer_waiters(&mut self, error: Option<String>) {
        for w in self.pending.waiters.drain(..) {
            let _ = w.send(match &error {
                None => Response::ok(),
                Some(e) => Response::error(format!("reconcile failed: {e}")),
            });
        }
    }

    fn read_lease_file(&mut self) {
        let Some(path) = self.config.leases.dnsmasq_file.clone() else {
            return;
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // No file yet: no leases from it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                let problem = format!("cannot read the lease file {}: {e}", path.display());
                if !self.lease_problems.contains(&problem) {
                    tracing::warn!("{problem}");
                }
                self.lease_problems = vec![problem];
                return;
            }
        };
        let (found, mut problems) = leases::parse_dnsmasq(&text, &self.interfaces);
        let (events, refused) = self.leases.sync_file(found, epoch_now());
        problems.extend(refused);
        let problems: Vec<String> = problems
            .into_iter()
            .map(|p| format!("lease file {}: {p}", path.display()))
            .collect();
        for p in problems.iter().filter(|p| !self.lease_problems.contains(p)) {
            tracing::warn!("{p}");
        }
        self.lease_problems = problems;
        self.events += events.len() as u64;
        for e in events {
            self.pending.event(e);
        }
    }

    fn start_watching(&mut self) -> Result<()> {
        let watched = self.watched.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let paths = watched.paths.lock().unwrap_or_else(|e| e.into_inner());
            let mut hit = false;
            for p in &event.paths {
                if let Some(configured) = paths.get(p) {
                    watched
                        .changed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(configured.clone());
                    hit = true;
                }
            }
            if hit {
                watched.notify.notify_one();
            }
        })
        .context("cannot watch the policy and config files")?;
        self.watcher = Some(watcher);
        self.rewatch()
    }

    /// Watches the directories of the config, the policy files and the
    /// lease file as configured now.
    fn rewatch(&mut self) -> Result<()> {
        use notify::Watcher as _;
        let mut files: Vec<&Path> = vec![&self.config_path];
        files.extend(self.config.policies.iter().map(|p| p.path.as_path()));
        if let Some(f) = &self.config.leases.dnsmasq_file {
            files.push(f);
        }
        let (dirs, map) = watch_map(&files);
        for file in files.iter().filter(|f| !map.values().any(|m| m == *f)) {
            tracing::warn!(
                file = %file.display(),
                "its directory does not exist: changes to this file are not followed (restart wasmwall once it exists)"
            );
        }
        *self.watched.paths.lock().unwrap_or_else(|e| e.into_inner()) = map;
        let Some(watcher) = self.watcher.as_mut() else {
            return Ok(());
        };
        for gone in self.watched_dirs.difference(&dirs) {
            let _ = watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.watched_dirs) {
            watcher
                .watch(new, notify::RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", new.display()))?;
        }
        self.watched_dirs = dirs;
        Ok(())
    }

    /// Files changed: the config is read again, policies compiled off the
    /// loop, the lease file read.
    fn files_changed(&mut self, compiles: &mut Compiles, rt: &tokio::runtime::Handle) {
        let changed = std::mem::take(
            &mut *self
                .watched
                .changed
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if changed.contains(&self.config_path) {
            self.reload_config();
        }
        if let Some(f) = &self.config.leases.dnsmasq_file
            && changed.contains(f)
        {
            self.pending.lease_file = true;
        }
        for slot in self.policies.slots() {
            if !changed.contains(&slot.config.path) || slot.config.path == self.config_path {
                continue;
            }
            let engine = self.policies.engine();
            let config = slot.config.clone();
            let insecure = self.config.insecure_permissions;
            let seq = self.compile_seq.entry(config.name.clone()).or_default();
            *seq += 1;
            let seq = *seq;
            compiles.spawn_blocking_on(
                move || {
                    let candidate = runtime::load_candidate(&engine, &config, insecure);
                    (config.name, seq, candidate)
                },
                rt,
            );
        }
    }

    fn reject(&mut self, what: &str, error: &str, keeps: &str) {
        let line = format!("{what}: new version rejected: {error}; the running {keeps} stays");
        tracing::error!("{line}");
        self.rejected.insert(what.to_string(), line);
    }

    /// A new version of a policy file is compiled: try it on the current
    /// world, and swap it in only if it gives a valid ruleset.
    fn compiled(&mut self, name: &str, candidate: Result<Candidate, String>) {
        let what = format!("policy {name}");
        let prefix = format!("{what}: ");
        let candidate = match candidate {
            Ok(c) => c,
            Err(e) => {
                let e = e.strip_prefix(&prefix).unwrap_or(&e).to_string();
                return self.reject(&what, &e, "version");
            }
        };
        let Some(slot) = self.policies.slots().iter().find(|s| s.config.name == name) else {
            return;
        };
        if slot.hash.as_deref() == Some(candidate.hash.as_str()) {
            tracing::debug!(policy = %name, "policy file touched, content unchanged");
            return;
        }
        if let Err(e) =
            self.policies
                .try_candidate(name, &candidate, &self.world(), &Event::Startup)
        {
            let e = e.strip_prefix(&prefix).unwrap_or(&e).to_string();
            return self.reject(&what, &e, "version");
        }
        tracing::info!(policy = %name, hash = %candidate.hash, "policy swapped: the new version passed on the current state");
        self.policies.swap(name, candidate);
        self.rejected.remove(&what);
        self.pending.fresh.insert(name.to_string());
        self.pending.because(format!("policy {name} swapped"));
        self.pending.evaluate = true;
    }

    /// The config file changed: read it, load what changed, evaluate on the
    /// current world, and only then use it.
    fn reload_config(&mut self) {
        let what = format!("config {}", self.config_path.display());
        let result = (|| -> Result<(Policies, Evaluation, Config), String> {
            if !self.config.insecure_permissions {
                crate::perms::check(&self.config_path, "config file")
                    .map_err(|e| format!("{e:#}"))?;
            }
            let mut new = Config::load(&self.config_path).map_err(|e| runtime::error_chain(&e))?;
            new.insecure_permissions = self.config.insecure_permissions;
            new.cache = self.config.cache.clone();
            if let Some(key) = self.config.restart_only_difference(&new) {
                return Err(format!("changing `{key}` needs a restart of wasmwall"));
            }
            let engine = self.policies.engine();
            let slots: Vec<Slot> = new
                .policies
                .iter()
                .map(|p| {
                    match self.policies.slots().iter().find(|s| {
                        s.config.name == p.name && s.config.path == p.path && s.policy.is_ok()
                    }) {
                        Some(old) => Slot {
                            config: p.clone(),
                            ..old.clone()
                        },
                        None => Slot::load(&engine, p, new.insecure_permissions),
                    }
                })
                .collect();
            let candidate = self.policies.with_slots(&new, slots);
            let evaluation = candidate.evaluate_each(&self.world(), |_| &Event::ConfigChanged);
            let was_failing: BTreeSet<&str> = self
                .evaluation
                .failed
                .iter()
                .map(|f| f.policy.as_str())
                .collect();
            if let Some(f) = evaluation
                .failed
                .iter()
                .find(|f| !was_failing.contains(f.policy.as_str()))
            {
                return Err(f.error.clone());
            }
            Ok((candidate, evaluation, new))
        })();
        match result {
            Err(e) => self.reject(&what, &e, "config"),
            Ok((policies, _evaluation, new)) => {
                tracing::info!(
                    policies = new.policies.len(),
                    "config reloaded: the new config passed on the current state"
                );
                self.rejected.remove(&what);
                self.policies = policies;
                self.config = new;
                if let Err(e) = self.rewatch() {
                    tracing::warn!(error = %format!("{e:#}"), "cannot watch the files of the new config");
                }
                self.pending.last = Some(Event::ConfigChanged);
                self.pending.because("config changed");
                self.pending.evaluate = true;
            }
        }
    }

    fn status(&self) -> Status {
        let mut errors: Vec<String> = self
            .evaluation
            .failed
            .iter()
            .map(|f| f.error.clone())
            .collect();
        errors.extend(self.rejected.values().cloned());
        if let Some(e) = self.last_reconcile.as_ref().and_then(|r| r.error.clone()) {
            errors.push(format!("last reconcile failed: {e}"));
        }
        errors.extend(self.lease_problems.iter().cloned());
        Status {
            pid: std::process::id(),
            started_at: self.started_at,
            table: self.target.table.clone(),
            netns: self.target.netns.clone(),
            policies: self
                .policies
                .slots()
                .iter()
                .map(|s| PolicyStatus {
                    name: s.config.name.clone(),
                    path: s.config.path.display().to_string(),
                    hash: s.hash.clone(),
                    loaded_at: s.loaded_at.map(epoch_of),
                    last_result: match (
                        self.evaluation
                            .rules
                            .iter()
                            .find(|r| r.policy == s.config.name),
                        self.evaluation
                            .failed
                            .iter()
                            .find(|f| f.policy == s.config.name),
                    ) {
                        (Some(r), _) => format!("ok: {} rules", r.rules.rule_count()),
                        (_, Some(f)) => format!("failed: {}", f.error),
                        _ => "not evaluated yet".into(),
                    },
                })
                .collect(),
            world: self.world(),
            last_reconcile: self.last_reconcile.clone(),
            errors,
            reconciles: self.reconciles,
            events: self.events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Lease;

    fn lease(ip: &str) -> Lease {
        Lease {
            mac: "02:00:00:00:00:01".into(),
            ip: ip.into(),
            hostname: Some("nas".into()),
            iface: "lan0".into(),
            expires: None,
        }
    }

    #[test]
    fn a_burst_is_summed_up_in_one_reason() {
        let mut p = Pending::default();
        assert_eq!(p.reason(), "");
        p.event(Event::LeaseAdded(lease("10.0.0.1")));
        assert_eq!(p.reason(), "lease-added 10.0.0.1 02:00:00:00:00:01 (nas)");
        assert!(p.evaluate);
        for i in 2..=1000 {
            p.event(Event::LeaseAdded(lease(&format!(
                "10.0.{}.{}",
                i / 250,
                i % 250
            ))));
        }
        p.event(Event::InterfaceUp("wan0".into()));
        p.because("nftables changed");
        p.because("nftables changed");
        assert_eq!(
            p.reason(),
            "1001 events (interface-up x1, lease-added x1000); nftables changed"
        );
        // Bounded whatever the burst: a count per kind and the last event.
        assert_eq!(p.counts.len(), 2);
        assert_eq!(p.last, Some(Event::InterfaceUp("wan0".into())));
    }

    #[test]
    fn watched_paths_map_to_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wasm");
        let cfg = dir.path().join("w.toml");
        let (dirs, map) = watch_map(&[&a, &cfg, Path::new("/nonexistent-dir/x")]);
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            dirs.into_iter().collect::<Vec<_>>(),
            vec![canonical.clone()]
        );
        assert_eq!(map.get(&canonical.join("a.wasm")), Some(&a));
        assert_eq!(map.get(&canonical.join("w.toml")), Some(&cfg));
        assert_eq!(map.len(), 2);
    }
}
