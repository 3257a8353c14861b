//! The `wasmwall` command: parses the command line, sets up the log and
//! dispatches to the subcommands in [`wasmwall::cli`]; prints an error with
//! its causes and maps it to the exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wasmwall::cli::cleanup::CleanupArgs;
use wasmwall::cli::client::{EventArgs, StatusArgs};
use wasmwall::cli::confirm::{ApplyArgs, ConfirmArgs};
use wasmwall::cli::eval::{EvalArgs, TestArgs};
use wasmwall::cli::trace::TraceArgs;
use wasmwall::cli::why::WhyArgs;
use wasmwall::cli::{self, ConfigArgs};

/// Run firewall policies written as sandboxed WebAssembly components.
///
/// A policy receives the network state (interfaces, addresses, DHCP leases)
/// and an event, and returns the rules and sysctls it wants. wasmwall puts
/// them into the kernel (nftables, in its own `inet` table only), sending
/// only what differs from what is there, in one atomic batch; it repairs
/// hand edits of its table, and on exit removes it and restores every sysctl
/// it changed. A policy that fails keeps its last known good rules; the
/// others go on.
#[derive(Debug, Parser)]
#[command(name = "wasmwall", version, propagate_version = true)]
struct Cli {
    /// Log level or tracing filter. A bare level ("debug") applies to
    /// wasmwall's own logs (others stay at "warn"); a filter such as
    /// "wasmwall=trace,wasmtime=info" is used as given. The WASMWALL_LOG
    /// environment variable does the same.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate one policy and print the rules it returns as nft text.
    ///
    /// Needs no root and touches no kernel: use it to try a policy, to test it
    /// in CI, or to see what it would do for a given state and event. The
    /// answer is judged as `wasmwall run` judges it (with --config, by that
    /// config's rules); the text is the table as `nft list ruleset` shows it
    /// once applied, and loads with `nft -f`.
    Eval(EvalArgs),
    /// Evaluate the configured policies and apply what differs from the
    /// kernel, in one atomic batch.
    ///
    /// Only the difference is sent: with nothing to change, nothing is
    /// written. The rules stay in place after the command exits;
    /// `wasmwall cleanup` removes them and restores the sysctls.
    ///
    /// With --confirm-within, the command waits in the foreground and rolls
    /// back to the rules and sysctls live before (in one batch) unless
    /// `wasmwall confirm` comes in time: for changes made over SSH that
    /// could lock you out. A change left waiting by a process that ended is
    /// rolled back first, by this and by `run` and `cleanup`.
    Apply(ApplyArgs),
    /// Show what `apply` would change against the live kernel, changing
    /// nothing.
    ///
    /// Prints the operations as nft-like text (handles are the kernel's
    /// current ones) and the sysctls that would change. Exit status: 0 when
    /// nothing is pending, 2 when changes are pending, 1 on error.
    Plan(ConfigArgs),
    /// Run as a daemon: apply the policies and keep the kernel in line with
    /// them as the network changes, until SIGINT or SIGTERM; then remove
    /// wasmwall's table and restore every sysctl it changed.
    ///
    /// The policies are evaluated again, and only the difference applied in
    /// one batch, when an interface goes up or down or an address changes
    /// (rtnetlink), when a DHCP lease is added, renewed, released or expires
    /// (`wasmwall event lease` over the control socket, e.g. from dnsmasq's
    /// dhcp-script, and/or dnsmasq's lease file, `[leases] dnsmasq_file`),
    /// and when a policy file or the config changes (hot swap: the new
    /// version is compiled and tried on the current state first; a broken one
    /// is rejected with one log line and the running one stays). Bursts of
    /// events are coalesced. Hand edits of the table are repaired at once
    /// (nftables notifications) and every `reconcile_interval_s` seconds; a
    /// sysctl a policy asked for and someone changed is put back within half
    /// a second. `wasmwall status` shows what the daemon is doing.
    ///
    /// Signals: SIGTERM and SIGINT stop and clean up. SIGHUP reads the config
    /// and every policy file again now, as the file watcher would (closing
    /// the terminal that runs it does not stop it). SIGQUIT stops at once
    /// without clean-up (exit status 3): the rules and sysctls stay, as after
    /// a crash; `wasmwall cleanup` removes them, the next `wasmwall run`
    /// adopts them. A closed log pipe (SIGPIPE) costs the log, not the
    /// daemon. Any other signal that ends a process (SIGKILL, SIGUSR1, ...)
    /// is a crash: the rules stay (fail closed).
    Run(ConfigArgs),
    /// Confirm the change that waits for confirmation (`apply
    /// --confirm-within`, or a config reload or policy swap of `run` with
    /// `[confirm] within`), so that it stays.
    ///
    /// Tells the running daemon over its control socket when one runs, else
    /// removes the record beside the state file, which the waiting `apply`
    /// sees. Prints which change it confirmed. Exit status 1 when nothing
    /// waits (or it is too late: the rollback has begun).
    Confirm(ConfirmArgs),
    /// Tell the running daemon about an event (for DHCP server hooks).
    Event(EventArgs),
    /// Show the running daemon's policies, world state, reconciles and
    /// pending errors.
    ///
    /// Exit status: 0 when there is no pending error, 2 when there are
    /// (a failing policy, a rejected new version, a failed reconcile, lease
    /// file lines that could not be used), 1 when the daemon cannot be asked.
    Status(StatusArgs),
    /// Remove wasmwall's table and restore the sysctls recorded in the state
    /// file. Safe to run at any time, also after a crash or `kill -9`, and
    /// finds the state of a run however the namespace was entered.
    Cleanup(CleanupArgs),
    /// Check a policy against fixtures: inputs with the ruleset (or error)
    /// each must give.
    ///
    /// FIXTURES_DIR holds one directory per fixture, each with a fixture.toml
    /// (world state, event, config) and the expected outcome in expected.nft
    /// (the ruleset as `wasmwall eval` prints it) or expected.err. The answer
    /// is judged as `wasmwall run` judges it (with --config, by that config's
    /// rules). Each mismatch is shown as a diff; the exit status is 1 when
    /// any fixture fails. Needs no root and touches no kernel.
    Test(TestArgs),
    /// Show the path a packet takes through the ruleset, and why it is
    /// accepted or dropped.
    ///
    /// Walks the packet through the hooks in the kernel's order (prerouting
    /// and its destination NAT, the routing as local or forwarded from the
    /// state's addresses, input or forward, postrouting; output for the
    /// router's own packets) and prints each chain entered, each rule that
    /// matched (as nft lists it, with the policy that made it), the NAT,
    /// the sysctls the routing depends on and the verdict; when the
    /// kernel's routing drops it (a DNAT to 127.0.0.1 without
    /// route_localnet, forwarding off) it names the sysctl that fixes it.
    /// With --state it needs no root and touches no kernel.
    Why(WhyArgs),
    /// Follow packets through the chains and print each one's path, with
    /// the policy and rule that decided.
    ///
    /// Adds a rule that marks the packets the filter picks for tracing
    /// (`meta nftrace set 1`) in a table of its own (`inet
    /// <table>-trace-<pid>`, at priority -350, before every other
    /// chain), reads the kernel's trace events, and prints per packet: its
    /// addresses and ports, every rule that matched (with the policy it
    /// came from and its nft text), the end of a chain and its policy, the
    /// NAT seen between hooks, and the verdict. The trace rule is removed
    /// when the trace ends (--count, --timeout, SIGINT or SIGTERM); after
    /// `kill -9`, `wasmwall cleanup` and the next trace remove it. A
    /// running `wasmwall run` is not disturbed: its table is not touched.
    Trace(TraceArgs),
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("WASMWALL_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    // A bare level is meant for wasmwall's own logs: wasmtime and rustables
    // are very chatty at debug.
    let filter = match filter.parse::<tracing::Level>() {
        Ok(level) => format!("warn,wasmwall={level}"),
        Err(_) => filter,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line that cannot be written (the pipe the log went to was
        // closed) is lost; reporting that on stderr would panic.
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let done = match cli.command {
        Command::Eval(args) => cli::eval::eval(args),
        Command::Apply(args) => cli::oneshot::apply(&args),
        Command::Plan(args) => cli::oneshot::plan(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Confirm(args) => cli::confirm::confirm(args),
        Command::Event(args) => cli::client::event(args),
        Command::Status(args) => cli::client::status(args),
        Command::Cleanup(args) => cli::cleanup::cleanup(args),
        Command::Test(args) => cli::eval::test(args),
        Command::Why(args) => cli::why::why(args),
        Command::Trace(args) => cli::trace::trace(args),
    };
    match done {
        Ok(code) => code,
        Err(e) => {
            // The chain can hold what a policy or a file said: what a policy
            // said is escaped where it is quoted, and this is the last guard
            // against control characters. Line breaks are wasmwall's own
            // (the list of problems in an answer, one per line).
            let text = format!("{e:#}");
            let lines: Vec<_> = text.lines().map(wasmwall::text::escape).collect();
            eprintln!("wasmwall: error: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}
