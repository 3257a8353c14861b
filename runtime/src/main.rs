//! The `wasmwall` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use wasmwall::cache::{self, CacheSettings};
use wasmwall::config::{self, Config};
use wasmwall::fixtures;
use wasmwall::host::{Limits, PolicyEngine};
use wasmwall::ir::{PolicyRules, TableView};
use wasmwall::kernel::Netlink;
use wasmwall::runtime::{self, Evaluation, Policies, Reconciler, Target};
use wasmwall::snapshot::SnapshotFile;
use wasmwall::state;
use wasmwall::sysctl::AllowList;
use wasmwall::validate;
use wasmwall::world::{self, EVENT_SYNTAX, Event, WorldState};

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
    /// Evaluate one policy and print the rules it returns as nft-like text.
    ///
    /// Needs no root and touches no kernel: use it to try a policy, to test it
    /// in CI, or to see what it would do for a given state and event.
    Eval(EvalArgs),
    /// Evaluate the configured policies and apply what differs from the
    /// kernel, in one atomic batch.
    ///
    /// Only the difference is sent: with nothing to change, nothing is
    /// written. The rules stay in place after the command exits;
    /// `wasmwall cleanup` removes them and restores the sysctls.
    Apply(ConfigArgs),
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
    /// (nftables notifications) and every `reconcile_interval_s` seconds.
    /// `wasmwall status` shows what the daemon is doing.
    Run(ConfigArgs),
    /// Tell the running daemon about an event (for DHCP server hooks).
    Event(EventArgs),
    /// Show the running daemon's policies, world state, last reconcile and
    /// pending errors.
    ///
    /// Exit status: 0 when there is no pending error, 2 when there are
    /// (a failing policy, a rejected new version, a failed reconcile, lease
    /// file lines that could not be used), 1 when the daemon cannot be asked.
    Status(StatusArgs),
    /// Remove wasmwall's table and restore the sysctls recorded in the state
    /// file. Safe to run at any time, also after a crash or `kill -9`.
    Cleanup(CleanupArgs),
    /// Check a policy against fixtures: inputs with the ruleset (or error)
    /// each must give.
    ///
    /// FIXTURES_DIR holds one directory per fixture, each with a fixture.toml
    /// (world state, event, config) and the expected outcome in expected.nft
    /// (the ruleset as `wasmwall eval` prints it) or expected.err. Each
    /// mismatch is shown as a diff; the exit status is 1 when any fixture
    /// fails. Needs no root and touches no kernel.
    Test(TestArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The policy component (.wasm).
    policy: PathBuf,
    /// The directory of fixtures.
    fixtures: PathBuf,
    /// Record the current outcome as the expectation of every fixture that
    /// does not match (or has none yet), instead of failing.
    #[arg(long)]
    bless: bool,
    /// The policy's name (prefix of its chains in the expected rulesets);
    /// defaults to the file name.
    #[arg(long)]
    name: Option<String>,
    /// Run only this fixture (a directory name); repeatable.
    #[arg(long = "fixture", value_name = "NAME")]
    only: Vec<String>,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct CacheArgs {
    /// Keep compiled policies in DIR (it must be 0700 and the user's own).
    /// Default: `[cache] dir` of the config, else /var/lib/wasmwall/cache
    /// for root and $XDG_CACHE_HOME/wasmwall or ~/.cache/wasmwall for others.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile policies at every load; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    fn settings(&self, default: CacheSettings) -> CacheSettings {
        if self.no_cache {
            CacheSettings::disabled()
        } else if let Some(dir) = &self.cache_dir {
            CacheSettings {
                dir: Some(dir.clone()),
                ..default
            }
        } else {
            default
        }
    }

    /// For commands run by users, without a config file.
    fn user_settings(&self) -> CacheSettings {
        self.settings(CacheSettings {
            dir: cache::user_dir(),
            max_bytes: cache::DEFAULT_MAX_BYTES,
        })
    }
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// The policy component (.wasm).
    policy: PathBuf,
    /// The event to evaluate.
    #[arg(long, default_value = "startup", value_name = "EVENT", long_help = format!("The event to evaluate: {EVENT_SYNTAX}"))]
    event: Event,
    /// World state as JSON: {"interfaces": [{"name", "index", "up", "mac",
    /// "addresses": ["192.168.0.9/24"]}], "leases": [{"mac", "ip",
    /// "hostname", "iface", "expires"}]}. Without it (and without --local)
    /// the state is empty.
    #[arg(long, value_name = "FILE", conflicts_with = "local")]
    state: Option<PathBuf>,
    /// Use this machine's interfaces and addresses as the state (read-only;
    /// no root needed).
    #[arg(long)]
    local: bool,
    /// A policy config setting; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    settings: Vec<(String, String)>,
    /// The policy's name (prefix of its chains); defaults to the file name.
    #[arg(long)]
    name: Option<String>,
    /// Name of the table to show the rules in.
    #[arg(long, default_value = config::DEFAULT_TABLE)]
    table: String,
    /// Deadline for the evaluation, in milliseconds.
    #[arg(long, default_value_t = Limits::default().deadline.as_millis() as u64)]
    deadline_ms: u64,
    /// Memory cap for the policy, in MiB.
    #[arg(long, default_value_t = (Limits::default().memory_bytes >> 20) as u64)]
    memory_mib: u64,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Act in the network namespace /run/netns/NAME (overrides `netns` in the
    /// config).
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Use a config or policy file even if someone other than root (or the
    /// user running wasmwall) could have written it or a directory above it.
    /// Without this, such files are refused, as sshd's StrictModes does.
    #[arg(long)]
    insecure_permissions: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// How a command finds the running daemon.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct DaemonAddress {
    /// The daemon's configuration file (gives its control socket).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl DaemonAddress {
    /// `netns`: the daemon's `--netns`, which names its default socket.
    fn socket(&self, netns: Option<&str>) -> Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let path = self.config.as_ref().expect("clap requires one of the two");
        let config = Config::load(path)?;
        let netns = netns.or(config.netns.as_deref());
        let state = state::path(&config.state_dir, netns, &config.table);
        Ok(wasmwall::daemon::control::socket_path(&config, &state))
    }
}

#[derive(Debug, Args)]
struct EventArgs {
    #[command(subcommand)]
    kind: EventKind,
}

#[derive(Debug, Subcommand)]
enum EventKind {
    /// A DHCP lease was handed out, renewed or released.
    ///
    /// Works as dnsmasq's `dhcp-script` (see contrib/dnsmasq-hook): the
    /// interface and expiry default to dnsmasq's DNSMASQ_INTERFACE and
    /// DNSMASQ_LEASE_EXPIRES, and dnsmasq's other actions (init, tftp,
    /// arp-add, arp-del, relay-snoop, and, when called by dnsmasq, any it
    /// adds later) are accepted and ignored.
    Lease(LeaseArgs),
}

#[derive(Debug, Args)]
struct LeaseArgs {
    /// add, old (or renew), or del (released or expired).
    action: String,
    /// The client's hardware address.
    #[arg(long)]
    mac: String,
    /// The leased address.
    #[arg(long)]
    ip: String,
    /// The host name the client sent.
    #[arg(long)]
    hostname: Option<String>,
    /// The interface the lease was served on [default: $DNSMASQ_INTERFACE,
    /// else the daemon's interface whose prefix holds the address].
    #[arg(long)]
    iface: Option<String>,
    /// Expiry, seconds since the Unix epoch; 0 for none [default:
    /// $DNSMASQ_LEASE_EXPIRES].
    #[arg(long)]
    expires: Option<u64>,
    /// Return only once the daemon applied the change to the kernel.
    #[arg(long)]
    wait: bool,
    /// The namespace the daemon was started for with `--netns`: the default
    /// socket's name includes it (not needed with --socket).
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    #[command(flatten)]
    daemon: DaemonAddress,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// The namespace the daemon was started for with `--netns`: the default
    /// socket's name includes it (not needed with --socket).
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    #[command(flatten)]
    daemon: DaemonAddress,
}

#[derive(Debug, Args)]
struct CleanupArgs {
    /// The configuration file; gives the table, state directory and netns.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Act in the network namespace /run/netns/NAME.
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Directory of the state file (default: from the config, else /run/wasmwall).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The table to remove (default: from the config, else "wasmwall").
    #[arg(long)]
    table: Option<String>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Moves the whole process into /run/netns/NAME. Must run before any thread
/// is started: setns affects only the calling thread, and threads started
/// later inherit it.
fn enter_netns(name: &str) -> Result<()> {
    if !config::valid_netns(name) {
        bail!("{name:?} is not a valid network namespace name");
    }
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path)
        .with_context(|| format!("cannot open network namespace {name:?} ({path})"))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("cannot enter network namespace {name:?} (needs root)"))?;
    Ok(())
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmwall: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    let done = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Eval(args) => done(eval(args)),
        Command::Apply(args) => {
            let (config, target) = load_config(&args)?;
            let _lock = state::lock(&target.state_path)?;
            let mut kernel = Netlink::new()?;
            let mut reconciler = Reconciler::new(&target.table)
                .with_snapshot(SnapshotFile::beside(&target.state_path, true));
            let rt = tokio_runtime()?;
            let (_, evaluation) = apply_once(&rt, &config, &target, &mut kernel, &mut reconciler)?;
            done(failures(&evaluation))
        }
        Command::Plan(args) => {
            let (config, target) = load_config(&args)?;
            plan(&config, &target)
        }
        Command::Run(args) => {
            let (config, target) = load_config(&args)?;
            done(run(&args, config, &target))
        }
        Command::Event(EventArgs {
            kind: EventKind::Lease(args),
        }) => lease_event(args),
        Command::Status(args) => status(args),
        Command::Cleanup(args) => done(cleanup(args)),
        Command::Test(args) => done(test(args)),
    }
}

/// `--name`, else the file name; either must be a valid policy name.
fn policy_name(name: &Option<String>, path: &std::path::Path) -> Result<String> {
    let name = match name {
        Some(n) => n.clone(),
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy")
            .to_string(),
    };
    if !config::valid_policy_name(&name) {
        bail!(
            "policy name {name:?} must be 1-24 lower-case letters, digits or '-' (set one with --name)"
        );
    }
    Ok(name)
}

fn test(args: TestArgs) -> Result<()> {
    let name = policy_name(&args.name, &args.policy)?;
    let mut engine = PolicyEngine::new(Limits::default())?;
    engine.set_cache(args.cache.user_settings().open());
    let policy = engine.load(&name, &args.policy)?;
    println!(
        "testing {} (policy {name}) against {}",
        args.policy.display(),
        args.fixtures.display()
    );
    let summary = fixtures::run(
        &engine,
        &policy,
        &name,
        &args.fixtures,
        &args.only,
        args.bless,
        &mut std::io::stdout(),
    )?;
    if summary.blessed > 0 {
        println!("blessed {} fixture(s)", summary.blessed);
    }
    println!(
        "fixtures: {} passed, {} failed",
        summary.passed, summary.failed
    );
    if summary.failed > 0 {
        bail!(
            "{} of {} fixture(s) failed",
            summary.failed,
            summary.passed + summary.failed + summary.blessed
        );
    }
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let name = policy_name(&args.name, &args.policy)?;
    let world = if let Some(path) = &args.state {
        world::load_json(path)?
    } else if args.local {
        WorldState {
            interfaces: tokio_runtime()?.block_on(world::read_interfaces())?,
            leases: Vec::new(),
        }
    } else {
        WorldState::default()
    };
    let limits = Limits {
        deadline: std::time::Duration::from_millis(args.deadline_ms),
        memory_bytes: (args.memory_mib as usize) << 20,
        ..Limits::default()
    };
    let mut engine = PolicyEngine::new(limits)?;
    engine.set_cache(args.cache.user_settings().open());
    let policy = engine.load(&name, &args.policy)?;
    let answer = engine
        .evaluate(
            &policy,
            &world.to_wit(),
            &args.event.to_wit(),
            &args.settings,
        )
        .with_context(|| format!("policy {name}: evaluation failed"))?;
    let options = validate::Options {
        max_rules: 100_000,
        max_set_elements: 100_000,
        sysctls: AllowList::new(&[])?,
    };
    let rules =
        validate::validate(&answer, &options).map_err(|e| anyhow::anyhow!("policy {name}: {e}"))?;
    let policies = [PolicyRules {
        policy: name,
        rules,
    }];
    print!(
        "{}",
        TableView {
            table: &args.table,
            policies: &policies
        }
    );
    Ok(())
}

fn load_config(args: &ConfigArgs) -> Result<(Config, Target)> {
    if !args.insecure_permissions {
        wasmwall::perms::check(&args.config, "config file")?;
    }
    let mut config = Config::load(&args.config)?;
    config.insecure_permissions = args.insecure_permissions;
    config.cache = args.cache.settings(config.cache);
    let netns = args.netns.clone().or_else(|| config.netns.clone());
    if let Some(ns) = &netns {
        enter_netns(ns)?;
    }
    let target = Target::new(&config.table, netns.as_deref(), &config.state_dir);
    Ok((config, target))
}

/// Loads the policies and evaluates them on the current world.
fn evaluate(rt: &tokio::runtime::Runtime, config: &Config) -> Result<(Policies, Evaluation)> {
    let policies = Policies::load(config)?;
    let world = WorldState {
        interfaces: rt.block_on(world::read_interfaces())?,
        leases: Vec::new(),
    };
    let evaluation = policies.evaluate(&world, &Event::Startup);
    Ok((policies, evaluation))
}

/// Reads the world, evaluates, applies the difference. Returns the loaded
/// policies and the evaluation for reuse.
fn apply_once(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    target: &Target,
    kernel: &mut Netlink,
    reconciler: &mut Reconciler,
) -> Result<(Policies, Evaluation)> {
    let (policies, mut evaluation) = evaluate(rt, config)?;
    wasmwall::daemon::reconcile_logged(
        kernel,
        reconciler,
        config,
        target,
        &mut evaluation,
        "start",
        true,
    )?;
    Ok((policies, evaluation))
}

/// An error that sums up the policies that failed (each was logged).
fn failures(evaluation: &Evaluation) -> Result<()> {
    match evaluation.failed.as_slice() {
        [] => Ok(()),
        [one] => bail!("{}", one.error),
        many => bail!(
            "{} policies failed ({}); the others were applied",
            many.len(),
            many.iter()
                .map(|f| f.policy.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn plan(config: &Config, target: &Target) -> Result<ExitCode> {
    let (_, evaluation) = evaluate(&tokio_runtime()?, config)?;
    let mut kernel = Netlink::new()?;
    let pending = runtime::pending(&mut kernel, target, &config.sysctls, &evaluation)?;
    print!("{}", pending.tx);
    for s in &pending.sysctls {
        println!("sysctl {s}");
    }
    if !evaluation.failed.is_empty() {
        eprintln!("wasmwall: the plan leaves the failed policies' rules as they are");
        failures(&evaluation)?;
    }
    if pending.is_empty() {
        eprintln!("wasmwall: nothing to change");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "wasmwall: pending: {}{}",
            pending.tx.summary(),
            match pending.sysctls.len() {
                0 => String::new(),
                n => format!(", {n} sysctl(s)"),
            }
        );
        Ok(ExitCode::from(2))
    }
}

fn run(args: &ConfigArgs, config: Config, target: &Target) -> Result<()> {
    let _lock = state::lock(&target.state_path)?;
    let signal = wasmwall::daemon::run(&args.config, config.clone(), target.clone())?;
    tracing::info!(signal, "stopping; cleaning up");
    cleanup_target(target, &config.sysctls)
}

/// How long a command waits for the daemon's answer.
const DAEMON_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn lease_event(args: LeaseArgs) -> Result<ExitCode> {
    use wasmwall::daemon::control::{LeaseRequest, Request, request};
    // dnsmasq's other actions (and any it adds later: its manual asks
    // scripts to ignore what they do not know) change no lease.
    let from_dnsmasq = [
        "DNSMASQ_INTERFACE",
        "DNSMASQ_LEASE_EXPIRES",
        "DNSMASQ_TIME_REMAINING",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    let known = matches!(args.action.as_str(), "add" | "old" | "renew" | "del");
    let dnsmasq_only = matches!(
        args.action.as_str(),
        "init" | "tftp" | "arp-add" | "arp-del" | "arp-old" | "relay-snoop"
    );
    if dnsmasq_only || (!known && from_dnsmasq) {
        tracing::debug!(action = %args.action, "not a lease change; ignored");
        return Ok(ExitCode::SUCCESS);
    }
    // Without it, the daemon takes its interface whose prefix holds the
    // address (dnsmasq does not name it for the leases it reports again
    // when it restarts).
    let iface = args
        .iface
        .or_else(|| std::env::var("DNSMASQ_INTERFACE").ok())
        .filter(|i| !i.is_empty());
    let expires = match args.expires {
        Some(e) => Some(e),
        None => match std::env::var("DNSMASQ_LEASE_EXPIRES") {
            Ok(v) => Some(v.trim().parse::<u64>().with_context(|| {
                format!("DNSMASQ_LEASE_EXPIRES {v:?} is not a number of seconds")
            })?),
            Err(_) => None,
        },
    };
    let req = Request {
        lease: Some(LeaseRequest {
            action: args.action,
            mac: args.mac,
            ip: args.ip,
            hostname: args.hostname,
            iface,
            expires,
        }),
        status: None,
        wait: args.wait,
    };
    let answer = request(
        &args.daemon.socket(args.netns.as_deref())?,
        &req,
        DAEMON_TIMEOUT,
    )?;
    if !answer.ok {
        bail!(
            "the daemon refused the event: {}",
            answer.error.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status(args: StatusArgs) -> Result<ExitCode> {
    use wasmwall::daemon::control::{Empty, Request, request};
    let req = Request {
        status: Some(Empty {}),
        ..Request::default()
    };
    let answer = request(
        &args.daemon.socket(args.netns.as_deref())?,
        &req,
        DAEMON_TIMEOUT,
    )?;
    let Some(status) = answer.status.filter(|_| answer.ok) else {
        bail!(
            "the daemon gave no status: {}",
            answer.error.unwrap_or_default()
        );
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        print!("{}", status.render(now));
    }
    Ok(if status.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn cleanup(args: CleanupArgs) -> Result<()> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let netns = args
        .netns
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.netns.clone()));
    if let Some(ns) = &netns {
        enter_netns(ns)?;
    }
    let table = args
        .table
        .or_else(|| config.as_ref().map(|c| c.table.clone()))
        .unwrap_or_else(|| config::DEFAULT_TABLE.to_string());
    let state_dir = args
        .state_dir
        .or_else(|| config.as_ref().map(|c| c.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR));
    let allow = match &config {
        Some(c) => c.sysctls.clone(),
        None => AllowList::new(&[])?,
    };
    let target = Target::new(&table, netns.as_deref(), &state_dir);
    let _lock = state::lock(&target.state_path)?;
    cleanup_target(&target, &allow)
}

fn cleanup_target(target: &Target, allow: &AllowList) -> Result<()> {
    let mut kernel = Netlink::new()?;
    let done = runtime::cleanup(&mut kernel, target, allow)?;
    if done.table_not_owned {
        tracing::warn!(
            table = %format!("inet {}", target.table),
            "a table of that name exists but was not made by wasmwall; left alone"
        );
    }
    if !done.had_state_file {
        tracing::warn!(
            state_file = %target.state_path.display(),
            "no state file: table removed, but there is no record of sysctls to restore"
        );
    }
    tracing::info!(
        table = %format!("inet {}", target.table),
        restored = %done.restored.join(" "),
        "clean-up done: table removed, sysctls restored"
    );
    if !done.failed.is_empty() {
        bail!(
            "could not restore {} (kept in {})",
            done.failed.join(", "),
            target.state_path.display()
        );
    }
    Ok(())
}
