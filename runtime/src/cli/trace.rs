//! `wasmwall trace`: follows the packets a filter picks through the
//! namespace's nftables chains and prints each packet's path, with the
//! policy and rule that decided; and the removal of the trace tables of
//! traces that died (`kill -9`), by `cleanup` and by the next trace.
//!
//! The trace rule lives in a table of the trace's own (see
//! [`crate::trace::table`]). While it exists, the trace holds the lock of
//! that table's name (in [`lock::LOCK_DIR`], keyed by the namespace): the
//! lock file is the record clean-up finds after a crash, since a lock
//! whose holder died can be taken, and one whose holder lives cannot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use super::resolve;
use crate::config::{self, Config};
use crate::kernel::{Kernel, Netlink, TraceKind, TraceSocket};
use crate::lock::{self, LockError};
use crate::netns;
use crate::trace::filter::{Filter, FilterSpec};
use crate::trace::path::{self, Names, Tracker};
use crate::trace::table;

/// How long a receive waits before the loop looks at the clock and the
/// signals again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
#[command(after_help = "\
Example, from the laptop of the seed scenario (the phone's request to port 80, \
forwarded to 127.0.0.1:4000):

  wasmwall trace --netns laptop --proto tcp --saddr 192.168.0.2 --dport 80 --count 1

Every filter option narrows the packets traced; at least one is needed. \
The trace rule is removed when the trace ends (after --count packets, after \
--timeout, or at SIGINT/SIGTERM); after `kill -9`, `wasmwall cleanup` or the \
next trace removes it.")]
pub struct TraceArgs {
    /// The configuration file; gives the table, state directory and netns.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trace in the network namespace /run/netns/NAME.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Directory of the state file, beside which the record of the applied
    /// rules is read (default: from the config, else /run/wasmwall).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// wasmwall's table, whose rules are named (default: from the config,
    /// else "wasmwall").
    #[arg(long)]
    pub table: Option<String>,

    /// Only packets of this protocol: tcp, udp, sctp, icmp or icmpv6.
    #[arg(long, value_name = "PROTO")]
    pub proto: Option<String>,
    /// Only packets from this address or network (192.168.0.2, 10.0.0.0/8).
    #[arg(long, value_name = "ADDR")]
    pub saddr: Option<String>,
    /// Only packets to this address or network, as they come in (before
    /// any DNAT).
    #[arg(long, value_name = "ADDR")]
    pub daddr: Option<String>,
    /// Only packets from this port or range (needs --proto tcp, udp or sctp).
    #[arg(long, value_name = "PORT")]
    pub sport: Option<String>,
    /// Only packets to this port or range, as they come in (needs --proto).
    #[arg(long, value_name = "PORT")]
    pub dport: Option<String>,
    /// Only packets that come in on this interface ('*' at the end matches
    /// every name that starts with the rest). Packets the machine sends
    /// itself are then not traced.
    #[arg(long, value_name = "NAME")]
    pub iif: Option<String>,

    /// End after N packets.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// End after this long (e.g. 30s, 2m, 1m30s).
    #[arg(long, value_name = "DURATION", value_parser = crate::confirm::settings::parse_duration)]
    pub timeout: Option<Duration>,
    /// Print one JSON object per packet, per line, instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The signal that asked the trace to end, 0 while none did.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    STOP.store(signal, Ordering::SeqCst);
}

/// SIGINT and SIGTERM end the trace (the loop sees [`STOP`] within
/// [`POLL`]); without SA_RESTART, a receive they interrupt returns at once.
fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the sigaction struct is zeroed and complete.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(signal, &raw const action, std::ptr::null_mut());
        }
    }
}

pub fn trace(args: TraceArgs) -> Result<ExitCode> {
    let filter = Filter::new(&FilterSpec {
        proto: args.proto.clone(),
        saddr: args.saddr.clone(),
        daddr: args.daddr.clone(),
        sport: args.sport.clone(),
        dport: args.dport.clone(),
        iif: args.iif.clone(),
    })?;
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let netns = args
        .netns
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.netns.clone()));
    if let Some(ns) = &netns {
        netns::enter(ns)?;
    }
    let table = args
        .table
        .clone()
        .or_else(|| config.as_ref().map(|c| c.table.clone()))
        .unwrap_or_else(|| config::DEFAULT_TABLE.to_string());
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| config.as_ref().map(|c| c.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR));
    let target = resolve::target(&table, netns.as_deref(), &state_dir)?;

    let mut kernel = Netlink::new()?;
    remove_stale(&mut kernel, &table)?;
    let trace_table = table::name(&table, std::process::id());
    let _lock = lock::acquire(
        Path::new(lock::LOCK_DIR),
        netns::current()?,
        &trace_table,
        &target.state_path,
    )?;
    // Subscribed before the rule exists, so the first packet is not missed.
    let mut socket = TraceSocket::open(POLL)?;
    catch_stop_signals();
    kernel
        .apply(&table::create(&trace_table, &filter), None)
        .with_context(|| format!("cannot add the trace rule (table inet {trace_table})"))?;
    tracing::info!(
        table = %format!("inet {trace_table}"),
        "tracing packets matching `{filter}`; SIGINT ends"
    );
    let followed = follow(
        &args,
        &mut kernel,
        &mut socket,
        &table,
        &trace_table,
        &target.state_path,
    );
    let removed = kernel.apply(&table::delete(&trace_table), None);
    let packets = followed?;
    removed.with_context(|| {
        format!("cannot remove the trace table inet {trace_table}; `wasmwall cleanup` removes it")
    })?;
    tracing::info!(
        table = %format!("inet {trace_table}"),
        "trace ended: {packets} packet(s) traced; trace rule removed"
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads trace events and prints each of our packets when it is complete,
/// until the count, the timeout or a signal; returns how many it printed.
fn follow(
    args: &TraceArgs,
    kernel: &mut Netlink,
    socket: &mut TraceSocket,
    table: &str,
    trace_table: &str,
    state_path: &Path,
) -> Result<u64> {
    let started = Instant::now();
    let mut names = read_names(kernel, table, state_path);
    let mut tracker = Tracker::default();
    let mut printed = 0u64;
    let mut lost_warned = false;
    let mut interface = |index: u32| kernel_interface(index);
    loop {
        let signal = STOP.load(Ordering::SeqCst);
        let timed_out = args.timeout.is_some_and(|t| started.elapsed() >= t);
        let received = socket.receive()?;
        if received.lost && !lost_warned {
            tracing::warn!("trace events were lost (too many at once): some paths are incomplete");
            lost_warned = true;
        }
        let now = Instant::now();
        for event in received.events {
            tracing::debug!(id = event.id, kind = ?event.kind, table = %event.table, chain = %event.chain, handle = ?event.handle, verdict = ?event.verdict, policy = ?event.policy, headers = event.network_header.is_some(), "trace event");
            // The trace rule's own event (by its handle): the kernel also
            // reports the end of the trace chain, as a rule event without
            // a handle, which starts nothing.
            let starts = event.table == trace_table
                && event.kind == TraceKind::Rule
                && event.handle.is_some();
            tracker.push(event, now, starts);
        }
        let ending = signal != 0 || timed_out;
        let done = if ending {
            tracker.flush()
        } else {
            tracker.finished(now)
        };
        for events in done {
            // Every process subscribed sees every trace of the namespace:
            // ours are the packets our trace rule marked (it is their first
            // event).
            if events.first().is_none_or(|e| e.table != trace_table) {
                continue;
            }
            if names.misses(table, &events) {
                names = read_names(kernel, table, state_path);
            }
            printed += 1;
            let report = path::report(
                printed as usize,
                &events,
                &names,
                &table::prefix(table),
                &mut interface,
            );
            if args.json {
                println!("{}", report.json());
            } else {
                println!("{}", report.text());
            }
            if args.count.is_some_and(|n| printed >= n) {
                return Ok(printed);
            }
        }
        if signal != 0 {
            tracing::info!(signal, "trace stopped by signal");
            return Ok(printed);
        }
        if timed_out {
            return Ok(printed);
        }
    }
}

fn kernel_interface(index: u32) -> Option<String> {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|n| n.into_string().ok())
}

/// The runtime's rules as the kernel holds them now, named through the
/// record of what was applied; empty (rules then shown by handle) when
/// either cannot be read.
fn read_names(kernel: &mut Netlink, table: &str, state_path: &Path) -> Names {
    let observed = match kernel.observe(table) {
        Ok(o) => o.table,
        Err(e) => {
            tracing::warn!(error = %crate::text::error_chain(&e), "cannot read table inet {table}; rules are shown by handle");
            None
        }
    };
    let applied = crate::applied::load(state_path, table).unwrap_or_else(|e| {
        tracing::warn!(error = %crate::text::error_chain(&e), "cannot read the record of the applied rules; rules are shown by policy");
        None
    });
    match observed {
        Some(o) => Names::new(table, &o, applied.as_ref()),
        None => Names::default(),
    }
}

/// Removes the trace tables, beside the runtime's `table` in the current
/// namespace, of traces that ended without removing them (killed): those
/// whose lock can be taken. A live trace's table is left alone. Returns
/// the tables removed.
pub fn remove_stale(kernel: &mut Netlink, table: &str) -> Result<Vec<String>> {
    let here = netns::current()?;
    let start = format!("ns-{}-{}.{}", here.dev, here.ino, table::prefix(table));
    let entries = match std::fs::read_dir(lock::LOCK_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(format!("cannot read {}", lock::LOCK_DIR)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&start)
            .and_then(|rest| rest.strip_suffix(".lock"))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let trace_table = format!("{}{pid}", table::prefix(table));
        let lock = match lock::acquire(Path::new(lock::LOCK_DIR), here, &trace_table, Path::new(""))
        {
            Ok(lock) => lock,
            Err(LockError::Busy { .. }) => {
                tracing::info!(table = %format!("inet {trace_table}"), "a trace is running (pid {pid}); its table is left to it");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let observed = kernel.observe(&trace_table)?;
        if observed.table.as_ref().is_some_and(|t| t.owned) {
            kernel
                .apply(&table::delete(&trace_table), None)
                .with_context(|| format!("cannot remove the trace table inet {trace_table}"))?;
            tracing::info!(table = %format!("inet {trace_table}"), "removed the trace table of a trace that did not end (pid {pid})");
            removed.push(trace_table);
        }
        drop(lock);
    }
    Ok(removed)
}
