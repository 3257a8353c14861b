//! `wasmwall run`: the daemon that keeps the kernel in line with the
//! policies while the network changes. This file is its loop and only wires
//! the parts together: it subscribes to every source, hands what arrives to
//! the daemon's logic ([`Daemon`], in `core`), and sleeps until the next
//! input or deadline.
//!
//! Inputs, all in one tokio task: rtnetlink notifications (interfaces and
//! addresses of the namespace, and its neighbour table), the control socket (DHCP lease events from
//! a server's hook, status requests), the watched files (config, policies,
//! dnsmasq's lease file), nftables change notifications (drift repair),
//! signals, finished compiles and the deadlines of `timers`. Each input only
//! updates the world and notes why; whatever else is ready is drained too,
//! and then the policies are evaluated once and the difference applied in
//! one batch. A burst of events (an interface flapping, a thousand leases)
//! so makes few reconciles, and the last one sees the final state.
//!
//! Signals: SIGTERM and SIGINT stop the daemon and it cleans up; SIGHUP
//! reads the config and every policy file again now (as the watcher would);
//! SIGQUIT stops it at once without clean-up, as a crash would (the rules
//! stay: fail closed). SIGPIPE is ignored (Rust's default), so a closed log
//! pipe costs the log, not the firewall.

mod confirming;
pub mod control;
mod core;
mod keeper;
pub mod leases;
pub mod links;
mod metrics_http;
pub mod neighbours;
mod pending;
pub mod status;
mod swap;
mod timers;
mod watch;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Instant;

use futures::StreamExt as _;
use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::engine::{EngineError, Firewall, Policies, Target};
use crate::kernel::{KernelError, Monitor, Netlink};
use crate::world::{self, WorldError};
use control::Incoming;
pub use core::Daemon;
pub use swap::{CompileJob, Compiled, FilesChanged};
use timers::Timer;
use watch::Watch;

/// Requests waiting for the daemon's loop at most; more wait in the socket.
const QUEUE: usize = 1024;

/// Why the daemon could not start or go on.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot catch signals")]
    Signals(#[source] std::io::Error),
    #[error("cannot subscribe to interface and address changes (rtnetlink)")]
    Subscribe(#[source] std::io::Error),
    #[error("cannot subscribe to neighbour table changes (rtnetlink)")]
    SubscribeNeighbours(#[source] std::io::Error),
    #[error("cannot watch nftables notifications")]
    Monitor(#[source] KernelError),
    #[error("cannot watch nftables notifications")]
    MonitorFd(#[source] std::io::Error),
    #[error("cannot make the control socket {path}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {listen} (`[metrics] listen`)")]
    Metrics {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch the policy and config files")]
    Watch(#[source] notify::Error),
    #[error("cannot open the kernel adapter")]
    Kernel(#[source] KernelError),
    #[error(transparent)]
    Interfaces(#[from] WorldError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGTERM or SIGINT: the caller cleans up.
    CleanUp(&'static str),
    /// SIGQUIT: stop without clean-up; the rules stay.
    Quit,
    /// Its start, held to confirmation after a rollback, was not
    /// confirmed: rolled back, stopped without clean-up.
    RolledBack,
}

/// What woke the loop, when it is more than a flag to set.
enum Woke {
    Stop(Stopped),
    Reload,
    Compiled(Compiled),
    Checked(Result<(), String>),
    Other,
}

/// The daemon's signals.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    quit: Signal,
}

impl Signals {
    fn catch() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }
}

/// Runs the daemon until a signal stops it; the caller cleans up when told.
///
/// The loop waits for input inside the async runtime and does the work
/// (evaluating policies, reconciling) outside it: a policy's WASI calls
/// (a flush of its stdout) block on an async runtime of their own, which
/// cannot run inside this one. While the work is done, the socket server
/// and the rtnetlink reader wait; what arrives meanwhile is taken in at the
/// next wait, together.
/// `hold_start`: a change a dead daemon left waiting for confirmation was
/// rolled back just before; the start is held to confirmation too (see
/// `confirming`).
pub fn run(
    config_path: &Path,
    config: Config,
    target: Target,
    hold_start: bool,
) -> Result<Stopped, DaemonError> {
    let rt = world::runtime().map_err(DaemonError::Runtime)?;
    let entered = rt.enter();
    // Catch the signals before the first write, so that one arriving while
    // the rules go in still leads to a clean-up.
    let mut signals = Signals::catch().map_err(DaemonError::Signals)?;

    // Subscribe to every source before reading anything, so that no change
    // after a reading goes unseen.
    let (links_conn, _links_handle, mut links) = rtnetlink::new_multicast_connection(&[
        rtnetlink::MulticastGroup::Link,
        rtnetlink::MulticastGroup::Ipv4Ifaddr,
        rtnetlink::MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(DaemonError::Subscribe)?;
    rt.spawn(links_conn);
    // The neighbour table on a connection of its own: its churn (a busy
    // LAN) must not overrun the interfaces' socket buffer. An overrun
    // (ENOBUFS) arrives as a message like any other and costs a reading.
    let mut neigh = if config.neighbours.enabled {
        let (conn, _handle, messages) =
            rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Neigh])
                .map_err(DaemonError::SubscribeNeighbours)?;
        rt.spawn(conn);
        Some(messages)
    } else {
        None
    };
    let mut monitor = {
        let monitor = Monitor::new().map_err(DaemonError::Monitor)?;
        // SAFETY: the Monitor owns its socket for its whole life, closes it
        // only when dropped, and always returns the same descriptor.
        unsafe { tokio::io::unix::AsyncFd::register(monitor) }
            .map_err(|e| DaemonError::MonitorFd(e.into_parts().1))?
    };
    let socket_path = control::socket_path(&config, &target.state_path);
    let listener = control::bind(&socket_path).map_err(|source| DaemonError::Socket {
        path: socket_path.display().to_string(),
        source,
    })?;
    let (control_tx, mut control_rx) = mpsc::channel::<Incoming>(QUEUE);
    let server = rt.spawn(control::serve(listener, control_tx));
    let metrics_listen = config.metrics.as_ref().map(|m| m.listen.clone());
    let (metrics_tx, mut metrics_rx) = mpsc::channel::<metrics_http::Scrape>(QUEUE);
    let metrics_server = match &metrics_listen {
        Some(listen) => {
            let shown = match listen {
                crate::config::MetricsListen::Tcp(a) => a.to_string(),
                crate::config::MetricsListen::Unix { path, .. } => {
                    format!("unix:{}", path.display())
                }
            };
            let bound = metrics_http::bind(listen).map_err(|source| DaemonError::Metrics {
                listen: shown.clone(),
                source,
            })?;
            tracing::info!(listen = %shown, "serving Prometheus metrics at GET /metrics");
            Some(rt.spawn(metrics_http::serve(bound, metrics_tx)))
        }
        None => {
            drop(metrics_tx);
            None
        }
    };
    let mut metrics_open = metrics_server.is_some();
    drop(entered);

    let mut kernel = Netlink::new().map_err(DaemonError::Kernel)?;
    kernel
        .mute_while_applying(monitor.get_ref())
        .map_err(DaemonError::Kernel)?;
    let policies = Policies::compile(&config)?;
    let mut firewall =
        Firewall::new(kernel, target, config.sysctls.clone(), policies).with_snapshot(true);
    firewall.set_cut_flows(config.cut_flows);
    let mut daemon = Daemon::new(config_path, config, firewall, Instant::now());
    let mut watch = if daemon.config().watch_files {
        let mut w = Watch::new().map_err(DaemonError::Watch)?;
        rewatch(&mut w, &daemon)?;
        Some(w)
    } else {
        None
    };
    let interfaces = rt.block_on(world::read_interfaces())?;
    if daemon.config().neighbours.enabled {
        let max = daemon.config().neighbours.max;
        daemon.start_neighbours(rt.block_on(world::read_neighbours(&interfaces, max)));
    }
    if hold_start {
        daemon.hold_start_to_confirmation();
    }
    daemon.start(interfaces, Instant::now())?;
    // From here on the table is kept in memory; writing the snapshot at
    // every change would cost each event a serialization of the table. The
    // one written at start goes stale (and unused) at the first change.
    daemon.firewall_mut().stop_saving_snapshot();
    // Likewise the applied table: written at most once a second.
    daemon.firewall_mut().defer_applied_saves();
    tracing::info!(
        socket = %socket_path.display(),
        interval_s = daemon.config().reconcile_interval.map(|d| d.as_secs()),
        watch_files = daemon.config().watch_files,
        leases_file = ?daemon.config().leases.dnsmasq_file,
        neighbours = daemon.config().neighbours.enabled,
        "running: following interfaces, neighbours, leases and policy files; SIGINT or SIGTERM stops and cleans up, SIGHUP reloads"
    );

    let mut compiles: JoinSet<Compiled> = JoinSet::new();
    let mut checks: JoinSet<Result<(), String>> = JoinSet::new();
    let mut links_open = true;
    let mut neigh_open = neigh.is_some();
    let stopped = loop {
        let deadline = daemon.next_deadline().map(tokio::time::Instant::from_std);
        let woke = rt.block_on(async {
            tokio::select! {
                _ = signals.term.recv() => Woke::Stop(Stopped::CleanUp("SIGTERM")),
                _ = signals.int.recv() => Woke::Stop(Stopped::CleanUp("SIGINT")),
                _ = signals.quit.recv() => Woke::Stop(Stopped::Quit),
                _ = signals.hup.recv() => Woke::Reload,
                Some(incoming) = control_rx.recv() => {
                    daemon.handle(incoming);
                    Woke::Other
                }
                scrape = metrics_rx.recv(), if metrics_open => {
                    match scrape {
                        Some(reply) => {
                            let _ = reply.send(daemon.metrics_text());
                        }
                        None => metrics_open = false,
                    }
                    Woke::Other
                }
                message = links.next(), if links_open => {
                    if message.is_some() {
                        daemon.links_changed(Instant::now());
                    } else {
                        links_open = false;
                        tracing::error!("the rtnetlink subscription ended: interface changes are now seen only at the reconcile timer");
                    }
                    Woke::Other
                }
                message = next_message(neigh.as_mut()), if neigh_open => {
                    match message {
                        Some(m) => neighbour_notified(&mut daemon, &m),
                        None => {
                            neigh_open = false;
                            tracing::error!("the rtnetlink neighbour subscription ended: neighbour changes are now seen only at the reconcile timer");
                        }
                    }
                    Woke::Other
                }
                _ = changed(watch.as_ref()) => {
                    daemon.files_notified(Instant::now());
                    Woke::Other
                }
                Some(done) = compiles.join_next(), if !compiles.is_empty() => match done {
                    Ok(done) => Woke::Compiled(done),
                    Err(e) => {
                        tracing::error!(error = %e, "a policy compile task failed");
                        Woke::Other
                    }
                },
                Some(done) = checks.join_next(), if !checks.is_empty() => match done {
                    Ok(result) => Woke::Checked(result),
                    Err(e) => Woke::Checked(Err(format!("the health check task failed: {e}"))),
                },
                ready = monitor.readable_mut() => {
                    let Ok(mut guard) = ready else {
                        tracing::error!("the nftables monitor failed; stopping");
                        return Woke::Stop(Stopped::CleanUp("nftables monitor failure"));
                    };
                    let _ = guard.get_inner_mut().drain();
                    guard.clear_ready();
                    daemon.nftables_changed(Instant::now());
                    Woke::Other
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => Woke::Other,
            }
        });
        match woke {
            Woke::Stop(stopped) => break stopped,
            Woke::Reload => {
                let out = daemon.reload_all();
                start(&mut compiles, out.jobs, &rt);
                if out.config_reloaded
                    && let Some(w) = watch.as_mut()
                {
                    rewatch_or_warn(w, &daemon);
                }
            }
            Woke::Compiled(done) => daemon.compiled(done),
            Woke::Checked(result) => daemon.health_checked(result),
            Woke::Other => {}
        }
        let due = daemon.fire_due(Instant::now());
        if due.contains(&Timer::HealthCheck)
            && let Some(job) = daemon.health_job()
        {
            checks.spawn_blocking_on(move || job.run(), rt.handle());
        }
        if due.contains(&Timer::Files)
            && let Some(w) = watch.as_mut()
        {
            let out = daemon.files_changed(&w.take_changed());
            start(&mut compiles, out.jobs, &rt);
            if out.config_reloaded {
                rewatch_or_warn(w, &daemon);
            }
        }
        // Take in whatever else is ready: a burst makes one reconcile.
        while let Ok(incoming) = control_rx.try_recv() {
            daemon.handle(incoming);
        }
        while let Ok(_message) = links.try_recv() {
            daemon.links_changed(Instant::now());
        }
        if let Some(neigh) = neigh.as_mut() {
            while let Ok(m) = neigh.try_recv() {
                neighbour_notified(&mut daemon, &m);
            }
        }
        if daemon.wants_interfaces() {
            daemon.interfaces_read(rt.block_on(world::read_interfaces()));
        }
        // After the interfaces: the table names them by index.
        if daemon.wants_neighbours() {
            let max = daemon.config().neighbours.max;
            let read = rt.block_on(world::read_neighbours(daemon.interfaces(), max));
            daemon.neighbours_read(read);
        }
        daemon.settle(Instant::now());
        // The monitor hears nothing while a batch of ours is in the kernel;
        // what someone else did meanwhile is checked for as if notified.
        if daemon.firewall_mut().kernel_mut().take_missed() {
            daemon.nftables_changed(Instant::now());
        }
        if daemon.take_rewatch()
            && let Some(w) = watch.as_mut()
        {
            rewatch_or_warn(w, &daemon);
        }
        if daemon.stop_rolled_back() {
            break Stopped::RolledBack;
        }
    };
    if matches!(stopped, Stopped::CleanUp(_)) {
        daemon.drop_confirmation();
    }
    server.abort();
    let _ = std::fs::remove_file(&socket_path);
    if let Some(m) = metrics_server {
        m.abort();
    }
    if let Some(listen) = &metrics_listen {
        metrics_http::unbind(listen);
    }
    daemon.finish();
    Ok(stopped)
}

/// A message of the neighbour subscription: a change, or an overrun of the
/// socket buffer (changes lost); either way the table is read again.
fn neighbour_notified<K: crate::kernel::Kernel>(
    daemon: &mut Daemon<K>,
    message: &(
        rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    ),
) {
    if let rtnetlink::packet_core::NetlinkPayload::Overrun(_) = message.0.payload {
        tracing::debug!(
            "neighbour notifications overran the socket buffer; the next reading catches up"
        );
    }
    daemon.neighbours_changed(Instant::now());
}

/// The next message of a subscription; never without one.
async fn next_message<T>(
    rx: Option<&mut futures::channel::mpsc::UnboundedReceiver<T>>,
) -> Option<T> {
    match rx {
        Some(rx) => rx.next().await,
        None => std::future::pending().await,
    }
}

/// Wakes when a watched file changed; never without a watch.
async fn changed(watch: Option<&Watch>) {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Starts compiles on blocking threads: the running versions serve
/// meanwhile.
fn start(compiles: &mut JoinSet<Compiled>, jobs: Vec<CompileJob>, rt: &tokio::runtime::Runtime) {
    for job in jobs {
        compiles.spawn_blocking_on(move || job.run(), rt.handle());
    }
}

/// After a config reload the daemon goes on even if the new files cannot
/// be watched.
fn rewatch_or_warn<K: crate::kernel::Kernel>(watch: &mut Watch, daemon: &Daemon<K>) {
    if let Err(e) = rewatch(watch, daemon) {
        tracing::warn!(error = %crate::text::error_chain(&e), "cannot watch the files of the new config");
    }
}

/// Watches the files of the daemon's config as it is now.
fn rewatch<K: crate::kernel::Kernel>(
    watch: &mut Watch,
    daemon: &Daemon<K>,
) -> Result<(), DaemonError> {
    let files = daemon.watched_files();
    let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    watch.set_files(&files).map_err(DaemonError::Watch)
}
