//! DHCP for the tests: a real server (dnsmasq) and a real client (busybox
//! udhcpc), each in a namespace, each with files of its own and nothing of
//! the host's (no config file, no resolv.conf, no syslog).

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
    /// it serves.
    pub fn start(
        netns: &Netns,
        iface: &str,
        range: &str,
        script: Option<&Path>,
        env: &[(&str, &OsStr)],
        dir: &Path,
    ) -> Dnsmasq {
        let lease_file = dir.join("dnsmasq.leases");
        let mut cmd = netns.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            // No DNS: only DHCP.
            "--port=0",
            &format!("--interface={iface}"),
            "--bind-interfaces",
            &format!("--dhcp-range={range}"),
        ])
        .arg(flag("--dhcp-leasefile=", &lease_file))
        .args(script.map(|script| flag("--dhcp-script=", script)))
        .args([
            "--user=root",
            // Offer at once, without first pinging the address.
            "--no-ping",
            "--log-dhcp",
            // Its log to stderr (our file), not the host's syslog.
            "--log-facility=-",
        ])
        .arg(flag("--pid-file=", &dir.join("dnsmasq.pid")))
        .arg("--dhcp-authoritative");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = Child::spawn(&mut cmd, dir, "dnsmasq");
        child.wait_for_stderr(
            "dnsmasq to serve DHCP",
            "DHCP, IP range",
            DHCP_PROCESS_TIMEOUT,
        );
        Dnsmasq { child, lease_file }
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
