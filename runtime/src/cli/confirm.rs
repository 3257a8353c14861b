//! `wasmwall apply --confirm-within` and `wasmwall confirm`: a one-shot
//! apply that waits in the foreground for confirmation and rolls back when
//! none comes in time (or the owner's health check fails, or it is
//! interrupted), and the command that confirms, over the daemon's control
//! socket when a daemon runs, else through the record in the state
//! directory.
//!
//! The waiter stays in the foreground rather than leaving something behind
//! to roll back later: a process that is killed meanwhile leaves the
//! record, and the next `apply`, `run` or `cleanup` rolls back first, so
//! nothing else (a timer unit, a forked child) has to be trusted to.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::ConfigArgs;
use crate::config::{self, Config};
use crate::confirm::record::{self, Confirmed};
use crate::confirm::{self, ConfirmSettings, Confirmation, Streak, Verdict, Waiter, health};
use crate::daemon::control::{self, Empty, Request};
use crate::engine::{Evaluation, Firewall, Target};
use crate::kernel::Kernel;

/// How often the waiter looks whether the change was confirmed.
const POLL: Duration = Duration::from_millis(100);
/// How long `confirm` waits for the daemon's answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);

/// `apply`'s arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Roll back to the rules and sysctls live before unless `wasmwall
    /// confirm` comes within DURATION (e.g. 120s, 2m, 1m30s). The command
    /// waits in the foreground until then; Ctrl-C rolls back at once. The
    /// health checks of the config's `[confirm]` (check_tcp, check_command)
    /// confirm or roll back by themselves. Exit status 4 when it rolled
    /// back. Killed meanwhile, the next `apply`, `run` or `cleanup` rolls
    /// back first.
    #[arg(long, value_name = "DURATION", value_parser = parse_within)]
    pub confirm_within: Option<Duration>,
}

fn parse_within(text: &str) -> Result<Duration, String> {
    confirm::settings::within(text)
}

/// `confirm`'s arguments: as `cleanup`'s, where the change waits.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The configuration file; gives the table, state directory, netns and
    /// the daemon's control socket.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The network namespace /run/netns/NAME the change was made in.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Directory of the state file (default: from the config, else /run/wasmwall).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The table (default: from the config, else "wasmwall").
    #[arg(long)]
    pub table: Option<String>,
}

/// Applies `evaluation` held to confirmation within `within`, and waits:
/// whether it was confirmed (else it was rolled back).
pub fn apply_and_wait<K: Kernel>(
    firewall: &mut Firewall<K>,
    evaluation: &mut Evaluation,
    settings: &ConfirmSettings,
    config_path: &std::path::Path,
    within: Duration,
) -> Result<bool> {
    let what = format!("apply of {}", config_path.display());
    let c = firewall.hold_for_confirmation(evaluation, &what, Waiter::Apply, within)?;
    if let Err(e) = firewall.reconcile(evaluation, "apply (held to confirmation)", true) {
        roll_back(firewall, &format!("{what} failed: {e}"))?;
        return Err(e.into());
    }
    let seconds = within.as_secs_f64().ceil() as u64;
    let mut confirm_cmd = format!("wasmwall confirm -c {}", config_path.display());
    if let Some(ns) = &firewall.target().netns {
        confirm_cmd.push_str(&format!(" --netns {ns}"));
    }
    eprintln!(
        "wasmwall: applied; run `{confirm_cmd}` within {seconds} s or it rolls back at {}{}",
        confirm::local_time(c.deadline_ms),
        if settings.has_checks() {
            " (the health check of [confirm] may confirm or roll back first)"
        } else {
            ""
        }
    );
    let outcome = wait(firewall.target(), &c, settings)?;
    match outcome {
        Verdict::Confirmed(how) => {
            eprintln!("wasmwall: confirmed ({how}); the new rules stay");
            Ok(true)
        }
        Verdict::RollBack(reason) => {
            roll_back(firewall, &reason)?;
            eprintln!("wasmwall: rolled back: {reason}");
            Ok(false)
        }
        Verdict::Wait => unreachable!("the wait ends with a verdict"),
    }
}

/// Claims the record and rolls back; a record already gone was confirmed.
fn roll_back<K: Kernel>(firewall: &mut Firewall<K>, reason: &str) -> Result<()> {
    let state_path = firewall.target().state_path.clone();
    match record::claim(&state_path)? {
        Some(c) => {
            firewall.roll_back_claimed(&c, reason)?;
        }
        None => tracing::info!("confirmed just before the rollback; the new rules stay"),
    }
    Ok(())
}

/// Waits for the end of the change's wait: `confirm` (its record gone), a
/// verdict of the health checks, the deadline, or a signal.
fn wait(target: &Target, c: &Confirmation, settings: &ConfirmSettings) -> Result<Verdict> {
    let rt = crate::world::runtime()?;
    let pending = record::pending_path(&target.state_path);
    let deadline = Instant::now()
        + Duration::from_millis(
            c.deadline_ms
                .saturating_sub(confirm::epoch_ms(SystemTime::now())),
        );
    let mut next_check = settings
        .has_checks()
        .then(|| Instant::now() + settings.check_interval);
    let mut streak = Streak::default();
    let countdown = std::io::IsTerminal::is_terminal(&std::io::stderr());
    rt.block_on(async {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut last_shown = u64::MAX;
        loop {
            if !pending.exists() {
                return Ok(Verdict::Confirmed("by `wasmwall confirm`".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Verdict::RollBack(confirm::deadline_reason(c, &streak)));
            }
            if let Some(at) = next_check
                && now >= at
            {
                let result = health::check(settings);
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "health check failed");
                }
                match streak.record(result, settings) {
                    Verdict::Wait => next_check = Some(Instant::now() + settings.check_interval),
                    Verdict::Confirmed(how) => {
                        return Ok(match record::confirm(&target.state_path)? {
                            Confirmed::Done(_) => Verdict::Confirmed(how),
                            Confirmed::TooLate(_) | Confirmed::Nothing => {
                                Verdict::Confirmed("by `wasmwall confirm`".into())
                            }
                        });
                    }
                    Verdict::RollBack(why) => {
                        return Ok(Verdict::RollBack(format!("{}: {why}", c.what)));
                    }
                }
            }
            let left = (deadline - now).as_secs();
            if countdown && left != last_shown {
                eprint!("\rwasmwall: {left:>5} s left to confirm ");
                last_shown = left;
            }
            tokio::select! {
                _ = int.recv() => return Ok(Verdict::RollBack(format!("{} was interrupted (SIGINT) before it was confirmed", c.what))),
                _ = term.recv() => return Ok(Verdict::RollBack(format!("{} was stopped (SIGTERM) before it was confirmed", c.what))),
                _ = hup.recv() => return Ok(Verdict::RollBack(format!("{} lost its terminal (SIGHUP) before it was confirmed", c.what))),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
    .inspect(|_| {
        if countdown {
            eprintln!();
        }
    })
}

/// `wasmwall confirm`.
pub fn confirm(args: ConfirmArgs) -> Result<ExitCode> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let netns = args
        .netns
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.netns.clone()));
    let table = args
        .table
        .or_else(|| config.as_ref().map(|c| c.table.clone()))
        .unwrap_or_else(|| config::DEFAULT_TABLE.to_string());
    let state_dir = args
        .state_dir
        .or_else(|| config.as_ref().map(|c| c.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR));
    // The state file is named after the namespace; the namespace need not
    // be entered to find it (as `status` finds the socket).
    let target = Target::new(&table, netns.as_deref(), &state_dir);
    let socket = config.as_ref().map_or_else(
        || target.state_path.with_extension("sock"),
        |c| control::socket_path(c, &target.state_path),
    );
    if socket.exists() {
        let req = Request {
            confirm: Some(Empty {}),
            ..Request::default()
        };
        match control::request(&socket, &req, DAEMON_TIMEOUT) {
            Ok(answer) if answer.ok => {
                println!("{}", answer.message.unwrap_or_else(|| "confirmed".into()));
                return Ok(ExitCode::SUCCESS);
            }
            Ok(answer) => bail!("{}", answer.error.unwrap_or_default()),
            // No daemon behind a stale socket: the record decides.
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "no daemon answers; confirming through the state directory")
            }
        }
    }
    match record::confirm(&target.state_path)? {
        Confirmed::Done(c) => {
            println!("{}", c.confirmed_text());
            Ok(ExitCode::SUCCESS)
        }
        Confirmed::TooLate(c) => bail!(
            "too late: {} (pid {}) is being rolled back; it was due at {}",
            c.what,
            c.pid,
            confirm::local_time(c.deadline_ms)
        ),
        Confirmed::Nothing => bail!(
            "nothing waits for confirmation in inet {table}{} (no {})",
            netns
                .as_deref()
                .map(|n| format!(" of namespace {n}"))
                .unwrap_or_default(),
            record::pending_path(&target.state_path).display()
        ),
    }
}
