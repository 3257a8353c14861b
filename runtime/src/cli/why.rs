//! `wasmwall why`: the path of one packet through the ruleset, step by
//! step (see [`crate::why`]), and the verdict. The ruleset is either the
//! configured policies evaluated on a world state (no root, no kernel with
//! `--state`), or, with `--applied`, the one a running daemon last applied
//! (its record beside its state file), which is what the kernel holds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::CacheArgs;
use super::resolve::parse_key_value;
use crate::config::Config;
use crate::engine::Policies;
use crate::plan::DesiredTable;
use crate::why::{self, PACKET_SYNTAX, StateNetwork, Sysctls, Verdict};
use crate::world::{self, EVENT_SYNTAX, Event, Interface, WorldState};

/// Exit status when the walk cannot tell.
const UNKNOWN_STATUS: u8 = 2;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples (quote the packet: `->` is a redirection to the shell):
  wasmwall why -c /etc/wasmwall.toml --state lan.json 'tcp 192.168.0.2:5000 -> 192.168.0.9:80 in lan0'
  wasmwall why -c /etc/wasmwall.toml --applied 'icmp 192.168.0.2 -> 192.168.0.9 type echo-request'
  wasmwall why -c wasmwall.toml --state lan.json --ct-state established 'udp [fd00::2]:5000 -> [fd00::9]:53 in lan0'

Sysctls: the kernel's routing drops a packet DNATed to 127.0.0.0/8 that came
in by another interface unless net.ipv4.conf.<iif>.route_localnet (or .all.)
is 1, and forwards only with net.ipv4.ip_forward (IPv6:
net.ipv6.conf.all.forwarding) = 1. `why` takes their values from --sysctl,
else from what the policies ask for (the runtime sets those), else (with
--applied) from this machine's /proc/sys, else the kernel's default (0), and
says which it took.

Exit status: 0 accepted, 1 dropped or rejected (and on an error, which
`wasmwall: error:` on stderr tells apart), 2 when it cannot be told (a rule
tests what is not known, such as the packet mark, or no route is known).")]
pub struct WhyArgs {
    /// The configuration file (TOML): its policies, as `plan` and `run`
    /// evaluate them.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The packet: tcp|udp SRC[:PORT] -> DST:PORT [in IFACE], or
    /// icmp|icmpv6 SRC -> DST [type TYPE] [code N] [in IFACE]. IPv6 in
    /// brackets when a port follows ([2001:db8::2]:5000). Without `in`, the
    /// interface is the one the route back to the source leaves by; a
    /// source that is the router's own address is its own packet (output).
    #[arg(required = true, num_args = 1.., value_name = "PACKET", allow_hyphen_values = true, long_help = format!("The packet: {PACKET_SYNTAX}. Without `in IFACE`, the interface is the one the route back to the source leaves by; a source that is one of the router's own addresses makes it the router's own packet (output hook)."))]
    pub packet: Vec<String>,
    /// World state as JSON (as `eval --state`): the interfaces, their
    /// addresses and prefixes, which give the routes. Without it, this
    /// machine's interfaces (read-only, no root needed), or those of the
    /// config's `netns` (entering it needs root).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The event the policies are evaluated for.
    #[arg(long, default_value = "startup", value_name = "EVENT", long_help = format!("The event the policies are evaluated for: {EVENT_SYNTAX}"))]
    pub event: Event,
    /// Walk the ruleset a running daemon (`wasmwall run` or `apply` with
    /// this config) last applied, as recorded beside its state file,
    /// instead of evaluating the policies; in the config's `netns`, if it
    /// names one. Reading it needs root.
    #[arg(long, conflicts_with = "event")]
    pub applied: bool,
    /// The packet's conntrack state: new (a connection's first packet),
    /// established, related, invalid, untracked.
    #[arg(long, default_value = "new", value_parser = why::parse_ct_state, value_name = "STATE")]
    pub ct_state: u32,
    /// A sysctl's value, as `net.ipv4.ip_forward=1`; repeatable. Overrides
    /// what the policies ask for.
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub sysctls: Vec<(String, String)>,
    /// The interface of the default route (the state gives only the
    /// interfaces' own prefixes); without it, a destination outside them
    /// has no route known.
    #[arg(long, value_name = "IFACE")]
    pub default_via: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Use a config or policy file others could have written (as `plan`).
    #[arg(long)]
    pub insecure_permissions: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// The sysctls `why` looks at, for these interfaces.
fn keys(interfaces: &[Interface]) -> Vec<String> {
    let mut keys = vec![
        "net.ipv4.ip_forward".to_string(),
        "net.ipv4.conf.all.forwarding".to_string(),
        "net.ipv4.conf.all.route_localnet".to_string(),
        "net.ipv6.conf.all.forwarding".to_string(),
    ];
    for i in interfaces {
        keys.push(format!("net.ipv4.conf.{}.route_localnet", i.name));
        keys.push(format!("net.ipv4.conf.{}.forwarding", i.name));
    }
    keys
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn why(args: WhyArgs) -> Result<ExitCode> {
    let asked = why::parse(&args.packet)?;
    let mut config = Config::load_for_policies(&args.config, args.insecure_permissions)?;
    config.cache = args.cache.settings(config.cache);
    // The daemon's own namespace: its interfaces and sysctls, when they
    // are read rather than given (entering one needs root).
    if (args.applied || args.state.is_none())
        && let Some(ns) = &config.netns
    {
        crate::netns::enter(ns)?;
    }
    let world = match &args.state {
        Some(path) => world::load_json(path)?,
        None => WorldState {
            interfaces: world::read_interfaces_now()?,
            ..WorldState::default()
        },
    };
    let mut sysctls = Sysctls::default();
    let table: DesiredTable = if args.applied {
        let target =
            super::resolve::target(&config.table, config.netns.as_deref(), &config.state_dir)?;
        let table = crate::applied::load(&target.state_path, &target.table)?.with_context(|| {
            format!(
                "no record of an applied table {} beside {} (is a daemon running with this config?)",
                target.table,
                target.state_path.display()
            )
        })?;
        // The kernel's values, as this machine has them now.
        for key in keys(&world.interfaces) {
            let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
            if let Ok(value) = std::fs::read_to_string(&path) {
                sysctls.read(&key, &value);
            }
        }
        table
    } else {
        let policies = Policies::compile(&config)?;
        let evaluation = policies.evaluate(&world, &args.event);
        for f in &evaluation.failed {
            eprintln!(
                "wasmwall: policy {} failed ({f}); the walk leaves out its rules",
                f.policy
            );
        }
        for p in &evaluation.rules {
            for s in &p.rules.sysctls {
                sysctls.from_policy(&p.policy, &s.key, &s.value);
            }
        }
        evaluation.desired().clone()
    };
    for (key, value) in &args.sysctls {
        sysctls.given(key, value);
    }
    if let Some(iif) = &asked.iif
        && !world.interfaces.iter().any(|i| &i.name == iif)
    {
        bail!("packet: no interface {iif} in the state");
    }
    let mut network = StateNetwork::new(&world.interfaces, args.default_via.clone(), &sysctls);
    let report = why::explain(&table, &asked, args.ct_state, &mut network, now_ns());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
    } else {
        print!("{}", report.text());
    }
    Ok(match report.verdict {
        Verdict::Accepted => ExitCode::SUCCESS,
        Verdict::Dropped | Verdict::Rejected => ExitCode::FAILURE,
        Verdict::Unknown => ExitCode::from(UNKNOWN_STATUS),
    })
}
