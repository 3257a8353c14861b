//! `wasmwall event` and `wasmwall status`: the commands that talk to the
//! running daemon over its control socket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::daemon::control::{self, Empty, LeaseRequest, Request};

/// How long a command waits for the daemon's answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);

/// How a command finds the running daemon.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DaemonAddress {
    /// The daemon's configuration file (gives its control socket).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
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
        // As the daemon found its state file: by the namespace's name, also
        // when this runs inside it (`ip netns exec`).
        let target = super::resolve::target(&config.table, netns, &config.state_dir)?;
        Ok(control::socket_path(&config, &target.state_path))
    }
}

#[derive(Debug, Args)]
pub struct EventArgs {
    #[command(subcommand)]
    pub kind: EventKind,
}

#[derive(Debug, Subcommand)]
pub enum EventKind {
    /// A DHCP or DHCPv6 lease was handed out, renewed or released.
    ///
    /// A DHCPv4 lease names the client's --mac; a DHCPv6 lease its --duid
    /// and --iaid (and --mac when the server knows it).
    ///
    /// Works as dnsmasq's `dhcp-script` (see contrib/dnsmasq-hook): the
    /// interface and expiry default to dnsmasq's DNSMASQ_INTERFACE and
    /// DNSMASQ_LEASE_EXPIRES, a DHCPv6 lease's IAID and MAC to
    /// DNSMASQ_IAID and DNSMASQ_MAC, and dnsmasq's other actions (init,
    /// tftp, arp-add, arp-del, relay-snoop, and, when called by dnsmasq,
    /// any it adds later) are accepted and ignored.
    Lease(LeaseArgs),
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// add, old (or renew), or del (released or expired).
    pub action: String,
    /// The client's hardware address (required for a DHCPv4 lease)
    /// [default for a DHCPv6 lease: $DNSMASQ_MAC].
    #[arg(long)]
    pub mac: Option<String>,
    /// A DHCPv6 lease: the client's DUID, hex pairs joined by ':'.
    #[arg(long)]
    pub duid: Option<String>,
    /// A DHCPv6 lease: its identity association ID; "T" before it (as
    /// dnsmasq writes it) marks a temporary address [default:
    /// $DNSMASQ_IAID].
    #[arg(long, requires = "duid")]
    pub iaid: Option<String>,
    /// The leased address (an IPv6 one for a DHCPv6 lease).
    #[arg(long)]
    pub ip: String,
    /// The host name the client sent.
    #[arg(long)]
    pub hostname: Option<String>,
    /// The interface the lease was served on [default: $DNSMASQ_INTERFACE,
    /// else the daemon's interface whose prefix holds the address].
    #[arg(long)]
    pub iface: Option<String>,
    /// Expiry, seconds since the Unix epoch; 0 for none [default:
    /// $DNSMASQ_LEASE_EXPIRES].
    #[arg(long)]
    pub expires: Option<u64>,
    /// Return only once the daemon applied the change to the kernel.
    #[arg(long)]
    pub wait: bool,
    /// The namespace the daemon was started for with `--netns`: the default
    /// socket's name includes it (not needed with --socket).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(flatten)]
    pub daemon: DaemonAddress,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// The namespace the daemon was started for with `--netns`: the default
    /// socket's name includes it (not needed with --socket).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(flatten)]
    pub daemon: DaemonAddress,
}

pub fn event(args: EventArgs) -> Result<ExitCode> {
    let EventKind::Lease(args) = args.kind;
    // dnsmasq's other actions (and any it adds later: its manual asks
    // scripts to ignore what they do not know) change no lease.
    let from_dnsmasq = [
        "DNSMASQ_INTERFACE",
        "DNSMASQ_LEASE_EXPIRES",
        "DNSMASQ_TIME_REMAINING",
        "DNSMASQ_IAID",
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
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (mac, iaid, temporary) = match &args.duid {
        None => (args.mac, None, false),
        Some(_) => {
            let Some(text) = args.iaid.or_else(|| env("DNSMASQ_IAID")) else {
                bail!("a DHCPv6 lease (--duid) needs its --iaid (or DNSMASQ_IAID)");
            };
            let (temporary, number) = match text.strip_prefix('T') {
                Some(n) => (true, n),
                None => (false, text.as_str()),
            };
            let iaid: u32 = number
                .parse()
                .with_context(|| format!("IAID {text:?} is not a number (optionally after T)"))?;
            (
                args.mac.or_else(|| env("DNSMASQ_MAC")),
                Some(iaid),
                temporary,
            )
        }
    };
    let req = Request {
        lease: Some(LeaseRequest {
            action: args.action,
            mac,
            duid: args.duid,
            iaid,
            temporary,
            ip: args.ip,
            hostname: args.hostname,
            iface,
            expires,
        }),
        status: None,
        confirm: None,
        wait: args.wait,
    };
    let answer = control::request(
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

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let req = Request {
        status: Some(Empty {}),
        ..Request::default()
    };
    let answer = control::request(
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
        println!("{}", status.json()?);
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
