//! DHCP for the tests: a real server (dnsmasq, DHCPv4, DHCPv6 and router
//! advertisements) and a real DHCPv4 client (busybox udhcpc), each in a
//! namespace, each with files of its own and nothing of the host's (no
//! config file, no resolv.conf, no syslog). The DHCPv6 client is in
//! `dhcp6.rs`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::Child;
use crate::command::shell_quote;
use crate::files::write_script;
use crate::netns::Netns;
use crate::wait::wait_until;

/// How long a DHCP server or client gets to start, or to stop after SIGTERM.
const DHCP_PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// dnsmasq serving DHCP (and no DNS) on one interface of a namespace, in the
/// foreground, with its own lease file and no config file of the host's.
/// Killed on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    lease_file: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq in `netns` on `iface` handing out `range` (dnsmasq's
    /// `--dhcp-range` value, e.g. "192.168.1.100,192.168.1.200,1h") and
    /// running `script`, if any, as its `--dhcp-script` (`script ACTION MAC
    /// IP [HOSTNAME]` for each lease added, renewed or deleted), with `env`
    /// added to its environment (dnsmasq passes its environment on to the
    /// script). Its lease file, pid file and output go to `dir`. Returns once
    /// it serves. [`Dnsmasq::options`] says more (DHCPv6, router
    /// advertisements).
    pub fn start(
        netns: &Netns,
        iface: &str,
        range: &str,
        script: Option<&Path>,
        env: &[(&str, &OsStr)],
        dir: &Path,
    ) -> Dnsmasq {
        let mut options = Dnsmasq::options(iface).dhcp_range(range);
        if let Some(script) = script {
            options = options.script(script);
        }
        for (key, value) in env {
            options = options.env(key, value);
        }
        options.start(netns, dir)
    }

    /// What a dnsmasq on `iface` will serve: nothing yet; add DHCPv4 and
    /// DHCPv6 ranges, router advertisements and a script, then
    /// [`DnsmasqOptions::start`] it.
    pub fn options(iface: &str) -> DnsmasqOptions {
        DnsmasqOptions {
            iface: iface.to_string(),
            ranges: Vec::new(),
            router_advertisements: None,
            script: None,
            script_on_renewal: false,
            env: Vec::new(),
        }
    }

    /// Its lease file (`--dhcp-leasefile`).
    pub fn lease_file(&self) -> &Path {
        &self.lease_file
    }

    /// Its log so far (each DHCP exchange, the script's output).
    pub fn log(&self) -> String {
        self.child.stderr()
    }
}

impl fmt::Display for Dnsmasq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.child.fmt(f)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // Its lease-script helper exits with it; Child's Drop kills it if
        // SIGTERM was not enough.
        self.child.terminate_within(DHCP_PROCESS_TIMEOUT);
    }
}

/// A dnsmasq's command line, built up: its DHCPv4 and DHCPv6 ranges,
/// router advertisements, lease script. [`Dnsmasq::options`] makes one.
#[derive(Debug, Clone)]
#[must_use = "it does nothing until started"]
pub struct DnsmasqOptions {
    iface: String,
    ranges: Vec<String>,
    /// `--ra-param`'s interval and router lifetime, in seconds.
    router_advertisements: Option<(u32, u32)>,
    script: Option<PathBuf>,
    script_on_renewal: bool,
    env: Vec<(String, OsString)>,
}

impl DnsmasqOptions {
    /// One `--dhcp-range`, as dnsmasq spells it, IPv4 or IPv6.
    pub fn dhcp_range(mut self, range: &str) -> DnsmasqOptions {
        self.ranges.push(range.to_string());
        self
    }

    /// Stateful DHCPv6 from the interface's own /64: addresses `first` to
    /// `last` (host parts such as "::100") in whatever prefix the interface
    /// has at the moment (dnsmasq's `constructor:`, so a new prefix gets a
    /// new range), leased for `lease` (e.g. "1h"; dnsmasq's minimum is 2
    /// minutes). Its router advertisements, if on, set the M flag and,
    /// with `slaac`, the A flag too, so hosts without DHCPv6 make their own
    /// address in the prefix.
    pub fn dhcpv6_range(self, first: &str, last: &str, slaac: bool, lease: &str) -> DnsmasqOptions {
        let mode = if slaac { ",slaac" } else { "" };
        let iface = self.iface.clone();
        self.dhcp_range(&format!(
            "{first},{last},constructor:{iface}{mode},64,{lease}"
        ))
    }

    /// Router advertisements on the interface (`--enable-ra`), unsolicited
    /// every `interval` (dnsmasq sends them more often for a while after a
    /// change, and one about a second after the interface's prefix
    /// changes), the router valid for `lifetime`.
    pub fn router_advertisements(
        mut self,
        interval: Duration,
        lifetime: Duration,
    ) -> DnsmasqOptions {
        let seconds = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        self.router_advertisements = Some((seconds(interval), seconds(lifetime)));
        self
    }

    /// Runs `script` as its `--dhcp-script`: `script ACTION MAC-OR-DUID IP
    /// [HOSTNAME]`, with the lease's details in `DNSMASQ_*` variables, for
    /// each lease added, deleted and (once at start) already held.
    pub fn script(mut self, script: &Path) -> DnsmasqOptions {
        self.script = Some(script.to_path_buf());
        self
    }

    /// Also runs the script (action `old`) when a client renews a lease
    /// unchanged (`--script-on-renewal`).
    pub fn script_on_renewal(mut self) -> DnsmasqOptions {
        self.script_on_renewal = true;
        self
    }

    /// Adds `key=value` to its environment, which dnsmasq passes on to the
    /// script.
    pub fn env(mut self, key: &str, value: &OsStr) -> DnsmasqOptions {
        self.env.push((key.to_string(), value.to_os_string()));
        self
    }

    /// Starts it in `netns`, in the foreground, with its lease file, pid
    /// file and output in `dir`; returns once it serves DHCP.
    pub fn start(self, netns: &Netns, dir: &Path) -> Dnsmasq {
        assert!(!self.ranges.is_empty(), "dnsmasq needs a DHCP range");
        let iface = &self.iface;
        let lease_file = dir.join("dnsmasq.leases");
        let mut cmd = netns.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            // No DNS: only DHCP (and router advertisements).
            "--port=0",
            &format!("--interface={iface}"),
            "--bind-interfaces",
        ])
        .args(
            self.ranges
                .iter()
                .map(|range| format!("--dhcp-range={range}")),
        );
        if let Some((interval, lifetime)) = self.router_advertisements {
            cmd.arg("--enable-ra")
                .arg(format!("--ra-param={iface},{interval},{lifetime}"));
        }
        cmd.arg(flag("--dhcp-leasefile=", &lease_file)).args(
            self.script
                .as_deref()
                .map(|script| flag("--dhcp-script=", script)),
        );
        if self.script_on_renewal {
            cmd.arg("--script-on-renewal");
        }
        cmd.args([
            "--user=root",
            // Offer at once, without first pinging the address.
            "--no-ping",
            "--log-dhcp",
            // Its log to stderr (our file), not the host's syslog.
            "--log-facility=-",
        ])
        .arg(flag("--pid-file=", &dir.join("dnsmasq.pid")))
        .arg("--dhcp-authoritative");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let mut child = Child::spawn(&mut cmd, dir, "dnsmasq");
        // Its first range's line: "DHCP, IP range ..." or "DHCPv6, IP range".
        child.wait_for_stderr("dnsmasq to serve DHCP", ", IP range", DHCP_PROCESS_TIMEOUT);
        Dnsmasq { child, lease_file }
    }
}

fn flag(name: &str, path: &Path) -> OsString {
    let mut flag = OsString::from(name);
    flag.push(path);
    flag
}

/// busybox's DHCP client `udhcpc` on one interface of a namespace, in the
/// foreground, with a script of ours (never the system's, which would write
/// the host's /etc/resolv.conf): it puts the leased address and default
/// route on the interface with `ip`, removes them on `deconfig`, and records
/// every event. With `-R`, SIGTERM makes it release its lease first; that
/// happens on [`Udhcpc::release`] and on drop.
#[derive(Debug)]
pub struct Udhcpc {
    child: Child,
    events: PathBuf,
}

impl Udhcpc {
    /// Starts `udhcpc` in `netns` on `iface` (up, without an address),
    /// sending `hostname` in its requests; its script, event record and
    /// output go to `dir`.
    pub fn start(netns: &Netns, iface: &str, hostname: &str, dir: &Path) -> Udhcpc {
        let script = dir.join(format!("udhcpc-{iface}.script"));
        let events = dir.join(format!("udhcpc-{iface}.events"));
        write_script(&script, &udhcpc_script(&events));
        let mut cmd = netns.command("udhcpc");
        cmd.args(["-f", "-i", iface, "-s"])
            .arg(&script)
            .args(["-x", &format!("hostname:{hostname}")])
            // Release the lease on SIGTERM; 5 discovers 1 s apart, then a
            // pause and again.
            .args(["-R", "-t", "5", "-T", "1"]);
        let child = Child::spawn(&mut cmd, dir, &format!("udhcpc-{iface}"));
        Udhcpc { child, events }
    }

    /// The script's events so far, one per line: "EVENT [IP]" (`deconfig`,
    /// `bound 192.168.1.123`, `renew ...`, `leasefail`, `nak`).
    pub fn events(&self) -> Vec<String> {
        match fs::read_to_string(&self.events) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.events.display()),
        }
    }

    /// The address it holds now: that of its last `bound` or `renew`, unless
    /// a `deconfig` came after it.
    pub fn address(&self) -> Option<String> {
        let events = self.events();
        let last = events
            .iter()
            .rev()
            .find(|e| e.starts_with("bound ") || e.starts_with("renew ") || e == &"deconfig")?;
        last.split_once(' ').map(|(_, ip)| ip.to_string())
    }

    /// Waits until it holds a lease, and returns the address.
    pub fn wait_for_lease(&mut self, timeout: Duration) -> String {
        wait_until("udhcpc to get a lease", timeout, || {
            if let Some(status) = self.child.try_status() {
                panic!("udhcpc exited: {status}\n{}", self.child);
            }
            self.address()
                .ok_or_else(|| format!("events so far: {:?}", self.events()))
        })
    }

    /// Releases the lease (a DHCPRELEASE to the server), unconfigures the
    /// interface and exits: SIGTERM, as it runs with `-R`. Panics unless it
    /// exits within a few seconds.
    pub fn release(&mut self) {
        assert!(
            self.child.terminate_within(DHCP_PROCESS_TIMEOUT),
            "udhcpc did not exit on SIGTERM\n{}",
            self.child
        );
    }
}

impl fmt::Display for Udhcpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.child.fmt(f)?;
        write!(f, "\n--- script events ---\n{}", self.events().join("\n"))
    }
}

impl Drop for Udhcpc {
    fn drop(&mut self) {
        self.child.terminate_within(DHCP_PROCESS_TIMEOUT);
    }
}

/// The script udhcpc runs for each event, with `$1` the event and the
/// lease's details in the environment (`interface`, `ip`, `mask` as a prefix
/// length, `router`).
fn udhcpc_script(events: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Written by the wasmwall tests' harness for udhcpc -s: configures the
# interface in this network namespace, and nothing else of the host's.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound | renew)
    ip addr replace "$ip/${{mask:-24}}" dev "$interface"
    if [ -n "$router" ]; then
      ip route replace default via "${{router%% *}}" dev "$interface"
    fi
    ;;
esac
echo "$1${{ip:+ $ip}}" >> {events}
"#,
        events = shell_quote(events.as_os_str())
    )
}
