//! wasmwall as a dual-stack home router's firewall, end to end (issue 15):
//! the real daemon, the real `home-router` policy, a real dnsmasq serving
//! DHCPv4, DHCPv6 and router advertisements, a real DHCPv6 client
//! (dhcpcd) and a host that only uses SLAAC, real packets.
//!
//! ```text
//!  nas   (dhcpcd: DHCPv6 + DHCPv4 + SLAAC) --+
//!                                            switch -- lan0 router wan0 -- eth0 wan
//!  slaac (SLAAC only, known MAC) ------------+   2001:db8:1::1/64   2001:db8:ff::1/64  ::2/64
//!                                                (then 2001:db8:2::1/64)
//! ```
//!
//! The port forwards name the hosts by identity (the NAS by its DHCP host
//! name, the SLAAC host by its MAC); their IPv6 pinholes follow whatever
//! addresses the hosts hold: from the WAN each host's forwarded port
//! answers over IPv6 and its other port does not; the router's LAN prefix
//! is replaced, the hosts take addresses in the new one, and within a
//! second the pinholes point at them (the old addresses gone, no rule
//! replaced: only set elements change); a blocked host loses IPv6 too.
//! The DHCPv6 lease reaches the daemon through dnsmasq's hook
//! (`contrib/dnsmasq-hook`) and, in a test of its own, through dnsmasq's
//! lease file alone.
//!
//! Every namespace is made by the test and removed on drop, also when it
//! fails; wasmwall is started from a launcher namespace of its own with the
//! router's named in its config.

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Child, Dhcpcd, DhcpcdFamilies, Dnsmasq, HttpServer, Ipv6Prefix, Netns, START_TIMEOUT,
    STOP_TIMEOUT, Switch, TempDir, compile_cache_dir, http_get, ipv6_host_sysctls,
    ipv6_router_sysctls, policy_wasm, repo_root, run, skip_unless_root, temp_dir, toml_path,
    toml_string, veth_pair, wait_for_slaac, wait_until, wasmwall_bin,
};

const OLD_PREFIX: Ipv6Prefix = Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64);
const NEW_PREFIX: Ipv6Prefix = Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0), 64);
const WAN_PREFIX: Ipv6Prefix =
    Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0), 64);
const SLAAC_MAC: &str = "02:00:00:00:5a:ac";
const NAS_MAC: &str = "02:00:00:00:0a:5a";
const DHCP_RANGE: &str = "192.168.1.100,192.168.1.200,255.255.255.0,1h";
const POLICY: &str = "router";
/// The port each forward opens (no NAT in IPv6: the host's own port).
const OPEN_PORT: u16 = 80;
/// Another port each host serves, which no forward opens.
const CLOSED_PORT: u16 = 81;
/// A DHCP exchange, a router advertisement: about a second each.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// From a host holding an address (and the router knowing it) to the
/// pinhole pointing at it: the issue's bound.
const FOLLOW_WITHIN: Duration = Duration::from_secs(1);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn cidr(prefix: Ipv6Prefix, host: u128) -> String {
    format!("{}/{}", prefix.host(host), prefix.len)
}

fn at(addr: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::from((addr, port))
}

/// How the daemon learns of DHCP leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseSource {
    /// dnsmasq's `dhcp-script`, `contrib/dnsmasq-hook`.
    Hook,
    /// dnsmasq's lease file, watched.
    File,
}

/// The namespaces, wired; a directory with wasmwall's config and state and
/// every process's output.
struct Lab {
    // Fields drop in order: processes' namespaces, then the directory.
    nas: Netns,
    slaac: Netns,
    wan: Netns,
    router: Netns,
    switch: Switch,
    launcher: Netns,
    config: PathBuf,
    socket: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let lab = Lab {
            nas: Netns::new("nas"),
            slaac: Netns::new("slaac"),
            wan: Netns::new("wan"),
            router: Netns::new("router"),
            switch: Switch::new("switch"),
            launcher: Netns::new("launcher"),
            config: dir.path().join("wasmwall.toml"),
            socket: dir.path().join("state/wasmwall.sock"),
            dir,
        };
        ipv6_router_sysctls(&lab.router);
        // The router starts as a new namespace does: not forwarding; the
        // policy asks for it.
        lab.router
            .run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"]);
        lab.router.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
        for host in [&lab.wan, &lab.nas, &lab.slaac] {
            ipv6_host_sysctls(host);
        }
        lab.switch
            .connect((&lab.router, "lan0", "192.168.1.1/24"), None);
        lab.router.run([
            "ip",
            "-6",
            "addr",
            "add",
            &cidr(OLD_PREFIX, 1),
            "dev",
            "lan0",
        ]);
        veth_pair(
            (&lab.router, "wan0", "203.0.113.1/24"),
            (&lab.wan, "eth0", "203.0.113.2/24"),
        );
        lab.router.run([
            "ip",
            "-6",
            "addr",
            "add",
            &cidr(WAN_PREFIX, 1),
            "dev",
            "wan0",
        ]);
        lab.wan.run([
            "ip",
            "-6",
            "addr",
            "add",
            &cidr(WAN_PREFIX, 2),
            "dev",
            "eth0",
        ]);
        let via = WAN_PREFIX.host(1).to_string();
        for prefix in [OLD_PREFIX, NEW_PREFIX] {
            lab.wan
                .run(["ip", "-6", "route", "add", &prefix.to_string(), "via", &via]);
        }
        lab
    }

    /// Writes wasmwall's config: the home-router policy with these
    /// forwards and `extra` policy config lines, and the lease file to
    /// watch, if any.
    fn configure(&self, forwards: &[&str], extra: &str, lease_file: Option<&Path>) {
        let leases = match lease_file {
            Some(file) => format!("[leases]\ndnsmasq_file = {}\n", toml_path(file)),
            None => String::new(),
        };
        let forwards: Vec<String> = forwards.iter().map(|f| toml_string(f)).collect();
        let toml = format!(
            "netns = {netns}\n\
             state_dir = {state}\n\
             control_socket = {socket}\n\
             reconcile_interval_s = 0\n\
             \n\
             {leases}\
             \n\
             [cache]\n\
             dir = {cache}\n\
             \n\
             [[policy]]\n\
             name = \"{POLICY}\"\n\
             path = {policy}\n\
             \n\
             [policy.config]\n\
             lan = \"lan0\"\n\
             wan = \"wan0\"\n\
             forward = [{forwards}]\n\
             {extra}\n",
            netns = toml_string(self.router.name()),
            state = toml_path(&self.dir.path().join("state")),
            socket = toml_path(&self.socket),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm("home-router")),
            forwards = forwards.join(", "),
        );
        // Written whole and renamed, so the daemon never reads half of it.
        let next = self.config.with_extension("next");
        fs::write(&next, toml).expect("write wasmwall.toml");
        fs::rename(&next, &self.config).expect("rename wasmwall.toml");
    }

    fn wasmwall<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.launcher.command(wasmwall_bin());
        cmd.args(args);
        cmd
    }

    fn start(&self) -> Child {
        let mut run = self.wasmwall([OsStr::new("run"), OsStr::new("-c"), self.config.as_os_str()]);
        let mut daemon = Child::spawn(&mut run, self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// dnsmasq on lan0: DHCPv4, DHCPv6 from lan0's prefix (with the A
    /// flag for SLAAC when `slaac`), router advertisements, and the hook
    /// when leases come through it.
    fn dnsmasq(&self, source: LeaseSource, slaac: bool) -> Dnsmasq {
        let mut options = Dnsmasq::options("lan0")
            .dhcp_range(DHCP_RANGE)
            .dhcpv6_range("::100", "::1ff", slaac, "1h")
            .router_advertisements(Duration::from_secs(4), Duration::from_secs(60));
        if source == LeaseSource::Hook {
            options = options
                .script(&repo_root().join("contrib/dnsmasq-hook"))
                .script_on_renewal()
                .env("WASMWALL", wasmwall_bin().as_os_str())
                .env("WASMWALL_SOCKET", self.socket.as_os_str());
        }
        options.start(&self.router, self.dir.path())
    }

    fn table(&self) -> String {
        self.router.table("inet", "wasmwall").unwrap_or_default()
    }

    /// Waits until the table satisfies `check`; returns it and how long it
    /// took.
    fn wait_for_table(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let started = Instant::now();
        let table = wait_until(what, timeout, || {
            let table = self.table();
            if check(&table) {
                Ok(table)
            } else {
                Err(format!("the table is:\n{table}"))
            }
        });
        (table, started.elapsed())
    }

    /// The table's rules with their handles, without set and map
    /// elements: what must stay when only addresses change.
    fn rules_with_handles(&self) -> Vec<String> {
        let out = self
            .router
            .run(["nft", "-a", "list", "table", "inet", "wasmwall"]);
        let mut rules = Vec::new();
        let mut in_chain = false;
        for line in out.stdout.lines() {
            let line = line.trim();
            if line.starts_with("chain ") {
                in_chain = true;
            } else if line.starts_with("set ") || line.starts_with("map ") || line == "}" {
                in_chain = in_chain && line != "}";
            } else if in_chain && line.contains("# handle") {
                rules.push(line.to_string());
            }
        }
        rules
    }

    fn stop(&self, mut daemon: Child) {
        daemon.stop_cleanly(STOP_TIMEOUT);
        assert!(
            !self.router.has_table("inet", "wasmwall"),
            "the table is still there after SIGTERM\n{}",
            self.table()
        );
        assert_eq!(
            self.router.sysctl("net/ipv6/conf/all/forwarding"),
            "0",
            "IPv6 forwarding put back"
        );
    }
}

/// The host at `from` sends one datagram to the router from `source`, as
/// any host that talks does: the router learns the address (its neighbour
/// table), which is how a SLAAC host becomes known.
fn talk_to_router(host: &Netns, source: Ipv6Addr, router: Ipv6Addr) {
    host.enter(|| {
        let socket = UdpSocket::bind(SocketAddr::from((source, 0))).expect("bind");
        socket
            .send_to(b"hello", SocketAddr::from((router, 53)))
            .expect("send to the router");
    });
}

fn answers(from: &Netns, to: SocketAddr, server: &HttpServer) -> Result<(), String> {
    match http_get(from, to, PROBE_TIMEOUT) {
        Ok(body) if body == server.token() => Ok(()),
        Ok(body) => Err(format!("answered by another server: {body:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn wait_for_answer(from: &Netns, to: SocketAddr, server: &HttpServer, what: &str) {
    wait_until(what, CHANGE_TIMEOUT, || answers(from, to, server));
}

fn assert_no_answer(from: &Netns, to: SocketAddr, what: &str) {
    if let Ok(body) = http_get(from, to, PROBE_TIMEOUT) {
        panic!("{what}: answered ({body:?})");
    }
}

/// A host's HTTP servers: one on the forwarded port, one on another.
struct Servers {
    open: HttpServer,
    closed: HttpServer,
}

impl Servers {
    fn start(host: &Netns) -> Servers {
        Servers {
            open: HttpServer::start(host, "[::]:80".parse().unwrap()),
            closed: HttpServer::start(host, "[::]:81".parse().unwrap()),
        }
    }
}

#[test]
fn ipv6_pinholes_follow_hosts_by_identity_across_a_prefix_change() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    // Over IPv4 each forward needs a WAN port of its own; over IPv6 each
    // opens its host's own port.
    let forwards = [
        format!("tcp 8080 nas {OPEN_PORT}"),
        format!("tcp 8081 {SLAAC_MAC} {OPEN_PORT}"),
    ];
    let forwards: Vec<&str> = forwards.iter().map(String::as_str).collect();
    lab.configure(&forwards, "", None);
    let daemon = lab.start();
    let dnsmasq = lab.dnsmasq(LeaseSource::Hook, true);
    let nas_servers = Servers::start(&lab.nas);
    let slaac_servers = Servers::start(&lab.slaac);
    let router_old = OLD_PREFIX.host(1);
    let router_new = NEW_PREFIX.host(1);

    // The SLAAC host: an address from the router's advertisement; the
    // router knows it once it talks.
    lab.switch
        .connect((&lab.slaac, "eth0", ""), Some(SLAAC_MAC));
    let slaac_old = wait_for_slaac(&lab.slaac, "eth0", OLD_PREFIX, STEP_TIMEOUT);
    let slaac_v6 = lab.wait_for_table("the router's table", STEP_TIMEOUT, |t| !t.is_empty());
    assert!(
        !slaac_v6.0.contains(&slaac_old.to_string()),
        "a host the router has not heard from is not known\n{}",
        slaac_v6.0
    );
    assert_no_answer(
        &lab.wan,
        at(slaac_old, OPEN_PORT),
        "the SLAAC host before the router knows it",
    );
    talk_to_router(&lab.slaac, slaac_old, router_old);
    let (_, took) = lab.wait_for_table(
        "the SLAAC host's pinhole (its neighbour entry)",
        FOLLOW_WITHIN,
        |t| t.contains(&slaac_old.to_string()),
    );
    eprintln!("slaac host talked -> pinhole in {} ms", took.as_millis());

    // The NAS: a DHCPv6 lease with its host name, told by dnsmasq's hook.
    lab.switch.connect((&lab.nas, "eth0", ""), Some(NAS_MAC));
    let mut dhcpcd = Dhcpcd::start(
        &lab.nas,
        "eth0",
        "nas",
        DhcpcdFamilies::Ipv4AndIpv6,
        lab.dir.path(),
    );
    let nas_old = dhcpcd.wait_for_lease6(OLD_PREFIX, STEP_TIMEOUT);
    let (_, took) =
        lab.wait_for_table("the NAS's pinhole (its DHCPv6 lease)", FOLLOW_WITHIN, |t| {
            t.contains(&nas_old.to_string())
        });
    eprintln!(
        "nas DHCPv6 lease {nas_old} -> pinhole in {} ms",
        took.as_millis()
    );

    // From the WAN: each host's forwarded port, and nothing else.
    wait_for_answer(
        &lab.wan,
        at(nas_old, OPEN_PORT),
        &nas_servers.open,
        "wan -> the NAS's forwarded port over IPv6",
    );
    wait_for_answer(
        &lab.wan,
        at(slaac_old, OPEN_PORT),
        &slaac_servers.open,
        "wan -> the SLAAC host's forwarded port over IPv6",
    );
    // The other port is served (on the LAN, which the router does not
    // filter), just not opened to the WAN.
    answers(&lab.slaac, at(nas_old, CLOSED_PORT), &nas_servers.closed)
        .expect("the NAS serves its other port on the LAN");
    answers(&lab.nas, at(slaac_old, CLOSED_PORT), &slaac_servers.closed)
        .expect("the SLAAC host serves its other port on the LAN");
    for (what, addr) in [("NAS", nas_old), ("SLAAC host", slaac_old)] {
        assert_no_answer(
            &lab.wan,
            at(addr, CLOSED_PORT),
            &format!("wan -> the {what}'s port {CLOSED_PORT}, which no forward opens"),
        );
    }
    assert_no_answer(
        &lab.wan,
        at(router_old, 22),
        "wan -> the router's own ssh over IPv6",
    );
    assert_eq!(
        lab.router.sysctl("net/ipv6/conf/all/forwarding"),
        "1",
        "the policy turned IPv6 forwarding on with the WAN up"
    );
    let rules_before = lab.rules_with_handles();

    // The prefix changes: the router's LAN /64 replaced by another.
    lab.router.run([
        "ip",
        "-6",
        "addr",
        "del",
        &cidr(OLD_PREFIX, 1),
        "dev",
        "lan0",
    ]);
    lab.router.run([
        "ip",
        "-6",
        "addr",
        "add",
        &cidr(NEW_PREFIX, 1),
        "dev",
        "lan0",
    ]);
    // The old addresses leave the pinholes at once: the router has no
    // prefix holding them.
    let (table, took) = lab.wait_for_table("the old addresses gone", FOLLOW_WITHIN, |t| {
        !t.contains(&slaac_old.to_string()) && !t.contains(&nas_old.to_string())
    });
    eprintln!(
        "prefix replaced -> old addresses gone in {} ms",
        took.as_millis()
    );
    assert!(!table.contains("2001:db8:1:"), "{table}");

    let slaac_new = wait_for_slaac(&lab.slaac, "eth0", NEW_PREFIX, STEP_TIMEOUT);
    talk_to_router(&lab.slaac, slaac_new, router_new);
    let (_, took) = lab.wait_for_table(
        "the SLAAC host's new address in its pinhole",
        FOLLOW_WITHIN,
        |t| t.contains(&slaac_new.to_string()),
    );
    eprintln!(
        "slaac host's new address -> pinhole in {} ms",
        took.as_millis()
    );
    // dhcpcd renews at T1 (30 min); a renewal now gets the new prefix.
    dhcpcd.renew();
    let nas_new = dhcpcd.wait_for_lease6(NEW_PREFIX, STEP_TIMEOUT);
    let (table, took) = lab.wait_for_table(
        "the NAS's new DHCPv6 address in its pinhole",
        FOLLOW_WITHIN,
        |t| t.contains(&nas_new.to_string()),
    );
    eprintln!(
        "nas's new lease {nas_new} -> pinhole in {} ms",
        took.as_millis()
    );
    assert!(
        !table.contains(&nas_old.to_string()) && !table.contains(&slaac_old.to_string()),
        "{table}"
    );
    assert_eq!(
        lab.rules_with_handles(),
        rules_before,
        "a prefix change changes set elements, never a rule"
    );
    wait_for_answer(
        &lab.wan,
        at(nas_new, OPEN_PORT),
        &nas_servers.open,
        "wan -> the NAS at its new address",
    );
    wait_for_answer(
        &lab.wan,
        at(slaac_new, OPEN_PORT),
        &slaac_servers.open,
        "wan -> the SLAAC host at its new address",
    );
    assert_no_answer(
        &lab.wan,
        at(nas_new, CLOSED_PORT),
        "wan -> the NAS's other port at its new address",
    );

    // The NAS is blocked: no IPv6 either way, the SLAAC host unaffected.
    lab.configure(&forwards, "block = [\"nas\"]", None);
    let (table, _) = lab.wait_for_table("the NAS in the blocked set", CHANGE_TIMEOUT, |t| {
        t.lines()
            .skip_while(|l| !l.contains("set router/blocked-v6"))
            .take(6)
            .any(|l| l.contains(&nas_new.to_string()))
    });
    assert_no_answer(
        &lab.wan,
        at(nas_new, OPEN_PORT),
        "wan -> the blocked NAS over IPv6",
    );
    let wan_server = HttpServer::start(&lab.wan, at(WAN_PREFIX.host(2), 80));
    assert!(
        http_get(&lab.nas, at(WAN_PREFIX.host(2), 80), PROBE_TIMEOUT).is_err(),
        "the blocked NAS reached the WAN over IPv6\n{table}"
    );
    answers(&lab.slaac, at(WAN_PREFIX.host(2), 80), &wan_server)
        .expect("the SLAAC host still reaches the WAN over IPv6");
    answers(&lab.wan, at(slaac_new, OPEN_PORT), &slaac_servers.open)
        .expect("the SLAAC host is still reachable over IPv6");

    drop(dhcpcd);
    drop(dnsmasq);
    lab.stop(daemon);
}

/// A DHCPv6 lease alone (no SLAAC on the LAN) opens the NAS's pinhole and
/// its release closes it, the daemon told by `source` only.
fn dhcpv6_lease_opens_and_release_closes_the_pinhole(source: LeaseSource) {
    let lab = Lab::new();
    let dnsmasq_dir = lab.dir.path().join("dnsmasq");
    fs::create_dir_all(&dnsmasq_dir).expect("dnsmasq's directory");
    let lease_file = dnsmasq_dir.join("dnsmasq.leases");
    let watched = (source == LeaseSource::File).then_some(lease_file.as_path());
    lab.configure(&[&format!("tcp {OPEN_PORT} nas")], "", watched);
    let daemon = lab.start();
    let dnsmasq = {
        let mut options = Dnsmasq::options("lan0")
            .dhcp_range(DHCP_RANGE)
            .dhcpv6_range("::100", "::1ff", false, "1h")
            .router_advertisements(Duration::from_secs(4), Duration::from_secs(60));
        if source == LeaseSource::Hook {
            options = options
                .script(&repo_root().join("contrib/dnsmasq-hook"))
                .env("WASMWALL", wasmwall_bin().as_os_str())
                .env("WASMWALL_SOCKET", lab.socket.as_os_str());
        }
        options.start(&lab.router, &dnsmasq_dir)
    };
    assert_eq!(dnsmasq.lease_file(), lease_file);
    let servers = Servers::start(&lab.nas);
    lab.switch.connect((&lab.nas, "eth0", ""), Some(NAS_MAC));
    let mut dhcpcd = Dhcpcd::start(
        &lab.nas,
        "eth0",
        "nas",
        DhcpcdFamilies::Ipv6,
        lab.dir.path(),
    );
    let lease = dhcpcd.wait_for_lease6(OLD_PREFIX, STEP_TIMEOUT);
    let (_, took) = lab.wait_for_table("the NAS's pinhole", CHANGE_TIMEOUT, |t| {
        t.contains(&lease.to_string())
    });
    eprintln!(
        "{source:?}: lease {lease} -> pinhole in {} ms",
        took.as_millis()
    );
    wait_for_answer(
        &lab.wan,
        at(lease, OPEN_PORT),
        &servers.open,
        "wan -> the NAS's forwarded port",
    );
    dhcpcd.release();
    lab.wait_for_table(
        "the pinhole closed after the release",
        CHANGE_TIMEOUT,
        |t| !t.contains(&lease.to_string()),
    );
    let status = run(lab
        .wasmwall(["status", "--json", "--socket"])
        .arg(&lab.socket));
    let status: serde_json::Value =
        serde_json::from_str(&status.stdout).expect("status --json is JSON");
    assert_eq!(
        status["world"]["dhcpv6_leases"].as_array().map(Vec::len),
        Some(0),
        "{status}"
    );
    drop(dnsmasq);
    lab.stop(daemon);
}

#[test]
fn dhcpv6_lease_from_the_hook_opens_and_release_closes_the_pinhole() {
    if skip_unless_root() {
        return;
    }
    dhcpv6_lease_opens_and_release_closes_the_pinhole(LeaseSource::Hook);
}

#[test]
fn dhcpv6_lease_from_the_lease_file_opens_and_release_closes_the_pinhole() {
    if skip_unless_root() {
        return;
    }
    dhcpv6_lease_opens_and_release_closes_the_pinhole(LeaseSource::File);
}
