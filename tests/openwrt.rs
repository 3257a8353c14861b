//! OpenWrt's firewall config (`/etc/config/firewall`) run by the `openwrt`
//! policy in the real daemon (`wasmwall run`), end to end with real
//! packets: masquerade, the zones' verdicts, a port forward with NAT
//! reflection, a guest zone, a time rule, an ipset blocklist, SYN flood
//! protection, and an edit of the file while the daemon follows it.
//!
//! The lab, all of it in network namespaces made for the test and removed
//! afterwards, also when it fails:
//!
//! ```text
//!  nas 192.168.1.50 --+ br0 (in "client")
//!  client 192.168.1.51 +-------- lan0 192.168.1.1/24     router
//!  guest (DHCP) ---------------- guest0 192.168.2.1/24
//!                                wan0 203.0.113.1/24 ----- wan 203.0.113.2/24
//!                                                              203.0.113.66 (blocklisted)
//! ```
//!
//! The config is OpenWrt's default (`policies/openwrt/examples/firewall.default`)
//! with the additions [`firewall_config`] writes. The wan host has no route
//! to the LAN or the guest network: it reaches them only through the
//! router's NAT. wasmwall is started from a throwaway namespace with the
//! router's named in its config (see `tests/router.rs`), and follows the
//! firewall file through `[policy.files]`.
//!
//! Covered (issue 14), one test each: LAN to WAN masqueraded; the router
//! refusing the WAN (a reset) and serving the LAN; Allow-Ping answering the
//! WAN but not a blocklisted address; the port forward from the WAN and,
//! by reflection, from the LAN; the guest zone (DHCP and DNS to the router,
//! the WAN, nothing else); SYN flood protection cutting a burst at the
//! configured rate; the time rule within and outside its window; an edit
//! of one rule sending only that rule, and cutting the open connection it
//! now refuses (issue 16).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmwall_e2e::{
    Child, Dnsmasq, EchoConnection, EchoServer, HttpServer, NetError, Netns, START_TIMEOUT,
    STOP_TIMEOUT, TempDir, Udhcpc, compile_cache_dir, http_get, logged_field, ping, policy_wasm,
    replace_file, repo_root, skip_unless_root, syn_burst, tcp_connect, temp_dir, toml_path,
    toml_string, veth_pair, wait_until, wasmwall_bin,
};

const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const ROUTER_GUEST_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 1);
const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The LAN host the port forward goes to.
const NAS_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 50);
/// The LAN host of the time rule; the reflection's client.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 51);
const WAN_HOST_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The wan host's second address, in the blocklist.
const BLOCKED_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
const GUEST_RANGE: &str = "192.168.2.100,192.168.2.150,255.255.255.0,1h";
const FORWARD_PORT: u16 = 8080;
/// A port the router serves to every zone; only the LAN may reach it.
const ROUTER_SERVICE_PORT: u16 = 8081;
const ECHO_PORT: u16 = 7;
const POLICY: &str = "openwrt";
const DEVICES: &str = "lan=lan0 wan=wan0 wan6=wan0 guest=guest0";
/// The SYN flood limit the config sets, per second and burst.
const SYNFLOOD_RATE: usize = 20;
const SYNFLOOD_BURST: usize = 20;

/// From a change (the daemon's start, an edit of the file) to the rules
/// working: milliseconds; the rest is slack for a loaded machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
const LEASE_TIMEOUT: Duration = Duration::from_secs(20);
/// One try on a path that should be dropped, or while waiting for a path to
/// open (a SYN that was dropped is sent again only after 1 s).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// One try on a path that should work, or be refused.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// When the time rule (the client rejected towards the WAN) applies,
/// relative to the moment the config is written.
#[derive(Clone, Copy, Debug)]
enum Window {
    /// From an hour ago to an hour from now.
    IncludesNow,
    /// From two to three hours from now.
    ExcludesNow,
}

impl Window {
    /// `start_time` and `stop_time`, UTC, as UCI writes them. A window may
    /// cross midnight (start after stop), as fw4 allows.
    fn times(self) -> (String, String) {
        const DAY: u64 = 24 * 3600;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            % DAY;
        let (start, stop) = match self {
            Window::IncludesNow => (now + DAY - 3600, now + 3600),
            Window::ExcludesNow => (now + 2 * 3600, now + 3 * 3600),
        };
        let hms = |t: u64| {
            let t = t % DAY;
            format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
        };
        (hms(start), hms(stop))
    }
}

/// OpenWrt's default firewall config with this lab's additions: SYN flood
/// protection at a low rate; a guest zone (input and forward REJECT,
/// forwarding to the wan, DHCP and DNS to the router allowed); an ipset
/// blocklist of the wan host's second address dropped from the wan (before
/// the default rules, so that Allow-Ping does not accept it first); a
/// port forward from the wan's 8080 to the NAS's 80 with reflection; and
/// the client rejected towards the wan within `window`.
fn firewall_config(window: Window) -> String {
    let default = repo_root().join("policies/openwrt/examples/firewall.default");
    let default = fs::read_to_string(&default)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", default.display()));
    let syn_flood = "\toption syn_flood '1'\n";
    assert!(default.contains(syn_flood), "{default}");
    let default = default.replace(
        syn_flood,
        &format!(
            "{syn_flood}\toption synflood_rate '{SYNFLOOD_RATE}/second'\n\
             \toption synflood_burst '{SYNFLOOD_BURST}'\n"
        ),
    );
    let first_rule = default.find("\nconfig rule\n").expect("the default rules") + 1;
    let (zones, rules) = default.split_at(first_rule);
    let (start, stop) = window.times();
    format!(
        "{zones}\
config zone
\toption name 'guest'
\tlist network 'guest'
\toption input 'REJECT'
\toption output 'ACCEPT'
\toption forward 'REJECT'

config forwarding
\toption src 'guest'
\toption dest 'wan'

config ipset
\toption name 'blocklist'
\tlist match 'src_net'
\tlist entry '{BLOCKED_IP}'

config rule
\toption name 'Drop-Blocklist'
\toption src 'wan'
\toption proto 'all'
\toption ipset 'blocklist'
\toption target 'DROP'

{rules}
config rule
\toption name 'Guest-DHCP'
\toption src 'guest'
\toption proto 'udp'
\toption dest_port '67'
\toption target 'ACCEPT'

config rule
\toption name 'Guest-DNS'
\toption src 'guest'
\toption proto 'tcp udp'
\toption dest_port '53'
\toption target 'ACCEPT'

config redirect
\toption name 'NAS-Web'
\toption src 'wan'
\toption proto 'tcp'
\toption src_dport '{FORWARD_PORT}'
\toption dest 'lan'
\toption dest_ip '{NAS_IP}'
\toption dest_port '80'
\toption target 'DNAT'
\toption reflection '1'

config rule
\toption name 'Client-Bedtime'
\toption src 'lan'
\toption src_ip '{CLIENT_IP}'
\toption dest 'wan'
\toption start_time '{start}'
\toption stop_time '{stop}'
\toption utc_time '1'
\toption target 'REJECT'
"
    )
}

/// The namespaces, wired; a temporary directory with wasmwall's config,
/// the firewall file it follows, its state and every process's output.
struct Lab {
    // Fields drop in order: namespaces (with anything still inside), then
    // the directory.
    nas: Netns,
    client: Netns,
    guest: Netns,
    wan: Netns,
    router: Netns,
    launcher: Netns,
    config: PathBuf,
    firewall: PathBuf,
    dir: TempDir,
}

impl Lab {
    /// The lab and the config with the time rule's `window`; nothing of
    /// wasmwall's runs yet.
    fn new(window: Window) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let client = Netns::new("client");
        let nas = Netns::new("nas");
        let guest = Netns::new("guest");
        let wan = Netns::new("wan");
        let launcher = Netns::new("launcher");
        // The LAN: a bridge in the client's namespace joins the router's
        // lan0 and the NAS; the client's address is the bridge's.
        veth_pair(
            (&router, "lan0", &format!("{ROUTER_LAN_IP}/24")),
            (&client, "eth0", ""),
        );
        veth_pair(
            (&client, "sw1", ""),
            (&nas, "eth0", &format!("{NAS_IP}/24")),
        );
        client.run(["ip", "link", "add", "br0", "type", "bridge"]);
        for port in ["eth0", "sw1"] {
            client.run(["ip", "link", "set", port, "master", "br0"]);
        }
        client.run([
            "ip",
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "br0",
        ]);
        client.run(["ip", "link", "set", "br0", "up"]);
        for host in [&client, &nas] {
            host.run([
                "ip",
                "route",
                "add",
                "default",
                "via",
                &ROUTER_LAN_IP.to_string(),
            ]);
        }
        // The guest's address comes from DHCP, in the test that needs it.
        veth_pair(
            (&router, "guest0", &format!("{ROUTER_GUEST_IP}/24")),
            (&guest, "eth0", ""),
        );
        veth_pair(
            (&router, "wan0", &format!("{ROUTER_WAN_IP}/24")),
            (&wan, "eth0", &format!("{WAN_HOST_IP}/24")),
        );
        wan.run([
            "ip",
            "addr",
            "add",
            &format!("{BLOCKED_IP}/24"),
            "dev",
            "eth0",
        ]);
        let lab = Lab {
            nas,
            client,
            guest,
            wan,
            router,
            launcher,
            config: dir.path().join("wasmwall.toml"),
            firewall: dir.path().join("firewall"),
            dir,
        };
        lab.write_firewall(window);
        lab.configure();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the firewall file (replacing it, as an editor saving it would).
    fn write_firewall(&self, window: Window) {
        replace_file(&self.firewall, firewall_config(window).as_bytes());
    }

    /// Writes wasmwall's config: the openwrt policy following the
    /// firewall file, with the lab's devices.
    fn configure(&self) {
        let toml = format!(
            "netns = {netns}\n\
             state_dir = {state}\n\
             control_socket = {socket}\n\
             reconcile_interval_s = 0\n\
             \n\
             [cache]\n\
             dir = {cache}\n\
             \n\
             [[policy]]\n\
             name = \"{POLICY}\"\n\
             path = {policy}\n\
             \n\
             [policy.config]\n\
             devices = \"{DEVICES}\"\n\
             \n\
             [policy.files]\n\
             uci = {firewall}\n",
            netns = toml_string(self.router.name()),
            state = toml_path(&self.path("state")),
            socket = toml_path(&self.path("state/wasmwall.sock")),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm(POLICY)),
            firewall = toml_path(&self.firewall),
        );
        fs::write(&self.config, toml).expect("write wasmwall.toml");
    }

    /// Starts `wasmwall run` (logging each reconcile) from the launcher
    /// namespace and waits until its rules are in and it follows events.
    fn start(&self) -> Daemon {
        let mut run = self.launcher.command(wasmwall_bin());
        run.args(["run", "--log", "info", "-c"]).arg(&self.config);
        let mut daemon = Daemon(Child::spawn(&mut run, self.dir.path(), "wasmwall-run"));
        daemon.0.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// `nft list table inet wasmwall` in the router; empty when there is no
    /// such table.
    fn table(&self) -> String {
        self.router.table("inet", "wasmwall").unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM: it must exit 0 and take its table.
    fn stop(&self, mut daemon: Daemon) {
        daemon.0.stop_cleanly(STOP_TIMEOUT);
        assert!(
            !self.router.has_table("inet", "wasmwall"),
            "the table is still there after SIGTERM\n{}",
            self.table()
        );
    }
}

/// A `wasmwall run` that is stopped with SIGTERM when the test ends
/// however it ends, so that it cleans up after itself also when the test
/// fails (its lock file under /run stays behind after the SIGKILL of a bare
/// [`Child`]'s drop).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_status().is_none() && !self.0.terminate_within(STOP_TIMEOUT) {
            eprintln!("the daemon did not stop within {STOP_TIMEOUT:?} of SIGTERM");
        }
    }
}

/// `GET /` from `from` to `to`, answered by `server`, within a few tries
/// (the first packets of a new lab may meet neighbour discovery).
fn wait_for_answer(from: &Netns, to: SocketAddr, server: &HttpServer, what: &str) {
    wait_until(what, CHANGE_TIMEOUT, || {
        match http_get(from, to, PROBE_TIMEOUT) {
            Ok(body) if body == server.token() => Ok(()),
            Ok(body) => Err(format!("answered by another server: {body:?}")),
            Err(e) => Err(e.to_string()),
        }
    });
}

/// A TCP connection from `from` to `to`, which must be refused (a reset)
/// well before it could time out.
fn assert_refused(from: &Netns, to: SocketAddr, what: &str) {
    let started = Instant::now();
    let result = tcp_connect(from, to, ANSWER_TIMEOUT);
    assert_eq!(result, Err(NetError::Refused), "{what}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{what}: the refusal came only after {:?}",
        started.elapsed()
    );
}

#[test]
fn lan_to_wan_is_masqueraded() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    let server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let daemon = lab.start();
    wait_for_answer(
        &lab.nas,
        addr(WAN_HOST_IP, 80),
        &server,
        "the NAS to reach the wan",
    );
    let peers = server.peers();
    assert!(
        peers.iter().all(|p| p.ip() == IpAddr::V4(ROUTER_WAN_IP)),
        "the wan server saw others than the router: {peers:?}"
    );
    lab.stop(daemon);
}

#[test]
fn wan_to_the_router_is_rejected_and_lan_to_the_router_accepted() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    // Something listens, so a refusal is the firewall's.
    let service = HttpServer::start(
        &lab.router,
        addr(Ipv4Addr::UNSPECIFIED, ROUTER_SERVICE_PORT),
    );
    let daemon = lab.start();
    wait_for_answer(
        &lab.client,
        addr(ROUTER_LAN_IP, ROUTER_SERVICE_PORT),
        &service,
        "the LAN (input ACCEPT) to reach the router's service",
    );
    assert_refused(
        &lab.wan,
        addr(ROUTER_WAN_IP, ROUTER_SERVICE_PORT),
        "the wan (input REJECT) to the router's service",
    );
    lab.stop(daemon);
}

#[test]
fn ping_from_the_wan_is_answered_unless_blocklisted() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    // Without a firewall the router answers both of the wan's addresses.
    for from in [WAN_HOST_IP, BLOCKED_IP] {
        ping(&lab.wan, from, ROUTER_WAN_IP, ANSWER_TIMEOUT)
            .unwrap_or_else(|e| panic!("without wasmwall, ping from {from}: {e}"));
    }
    let daemon = lab.start();
    ping(&lab.wan, WAN_HOST_IP, ROUTER_WAN_IP, ANSWER_TIMEOUT)
        .unwrap_or_else(|e| panic!("Allow-Ping: ping from {WAN_HOST_IP}: {e}\n{}", lab.table()));
    assert_eq!(
        ping(&lab.wan, BLOCKED_IP, ROUTER_WAN_IP, PROBE_TIMEOUT),
        Err(NetError::TimedOut),
        "the blocklisted address's ping was answered\n{}",
        lab.table()
    );
    lab.stop(daemon);
}

#[test]
fn the_port_forward_reaches_the_nas_from_the_wan_and_by_reflection_from_the_lan() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    let nas = HttpServer::start(&lab.nas, addr(Ipv4Addr::UNSPECIFIED, 80));
    let forwarded = addr(ROUTER_WAN_IP, FORWARD_PORT);
    let daemon = lab.start();
    wait_for_answer(&lab.wan, forwarded, &nas, "the forward from the wan");
    // The client is the time rule's, rejected towards the wan now: the
    // reflected connection goes to the LAN, which the rule does not name.
    wait_for_answer(
        &lab.client,
        forwarded,
        &nas,
        "the forward from the LAN, on the wan address",
    );
    let peers = nas.peers();
    assert!(
        peers.iter().any(|p| p.ip() == IpAddr::V4(WAN_HOST_IP)),
        "the wan client was not seen as itself: {peers:?}"
    );
    // Reflection masquerades the LAN client as the router, so that the
    // NAS's answers go back through the router and are translated back.
    assert!(
        peers.iter().any(|p| p.ip() == IpAddr::V4(ROUTER_LAN_IP)),
        "the reflected connection was not seen from the router: {peers:?}"
    );
    assert!(
        !peers.iter().any(|p| p.ip() == IpAddr::V4(CLIENT_IP)),
        "the NAS saw the LAN client itself: {peers:?}"
    );
    lab.stop(daemon);
}

#[test]
fn the_guest_reaches_the_wan_and_the_routers_dhcp_and_dns_only() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    let wan_server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let _nas = HttpServer::start(&lab.nas, addr(Ipv4Addr::UNSPECIFIED, 80));
    let _service = HttpServer::start(
        &lab.router,
        addr(Ipv4Addr::UNSPECIFIED, ROUTER_SERVICE_PORT),
    );
    // A stand-in for the router's DNS over TCP: something that listens.
    let _dns = EchoServer::start(&lab.router, addr(ROUTER_GUEST_IP, 53));
    let daemon = lab.start();

    // DHCP through the firewall (Guest-DHCP): a real dnsmasq on guest0, a
    // real udhcpc in the guest.
    let dhcp_dir = lab.path("dhcp");
    fs::create_dir(&dhcp_dir).expect("create dnsmasq's directory");
    let _dnsmasq = Dnsmasq::start(&lab.router, "guest0", GUEST_RANGE, None, &[], &dhcp_dir);
    let mut udhcpc = Udhcpc::start(&lab.guest, "eth0", "guest", &dhcp_dir);
    let ip = udhcpc.wait_for_lease(LEASE_TIMEOUT);
    assert!(ip.starts_with("192.168.2."), "{ip}");

    wait_for_answer(
        &lab.guest,
        addr(WAN_HOST_IP, 80),
        &wan_server,
        "the guest to reach the wan",
    );
    assert!(
        wan_server
            .peers()
            .iter()
            .all(|p| p.ip() == IpAddr::V4(ROUTER_WAN_IP)),
        "the guest was not masqueraded: {:?}",
        wan_server.peers()
    );
    tcp_connect(&lab.guest, addr(ROUTER_GUEST_IP, 53), ANSWER_TIMEOUT)
        .unwrap_or_else(|e| panic!("Guest-DNS: the guest to the router's port 53: {e}"));
    assert_refused(
        &lab.guest,
        addr(ROUTER_GUEST_IP, ROUTER_SERVICE_PORT),
        "the guest to another service of the router (input REJECT)",
    );
    assert_refused(
        &lab.guest,
        addr(ROUTER_LAN_IP, ROUTER_SERVICE_PORT),
        "the guest to the router's LAN address (input REJECT)",
    );
    assert_refused(
        &lab.guest,
        addr(NAS_IP, 80),
        "the guest to the LAN (forward REJECT, no forwarding to lan)",
    );
    lab.stop(daemon);
}

#[test]
fn a_syn_flood_from_the_wan_is_cut_at_the_configured_rate() {
    if skip_unless_root() {
        return;
    }
    const SYNS: usize = 200;
    // Under the 1 s after which the kernel sends a SYN again.
    const WINDOW: Duration = Duration::from_millis(800);
    let lab = Lab::new(Window::IncludesNow);
    let to = SocketAddrV4::new(ROUTER_WAN_IP, ROUTER_SERVICE_PORT);
    // Without a firewall every SYN is answered (a reset: nothing listens).
    let unlimited = syn_burst(&lab.wan, to, SYNS, WINDOW);
    assert_eq!(unlimited.answered, SYNS, "without wasmwall: {unlimited:?}");
    let daemon = lab.start();
    // A REJECT of the wan's input answers each SYN that passes the limit
    // with a reset; the limit's bucket is full after a second without SYNs.
    thread::sleep(Duration::from_secs(1));
    let burst = syn_burst(&lab.wan, to, SYNS, WINDOW);
    // The bucket holds `burst` SYNs and refills at `rate` while they come.
    let most =
        SYNFLOOD_BURST + (SYNFLOOD_RATE as f64 * burst.sending.as_secs_f64()).ceil() as usize;
    // One more for where the kernel's and this process's clocks cut.
    let margin = 1;
    eprintln!("SYN flood: {burst:?}; at most {most} (+{margin}) expected");
    assert!(
        burst.answered >= SYNFLOOD_BURST && burst.answered <= most + margin,
        "{burst:?}: not between the burst ({SYNFLOOD_BURST}) and {most} (+{margin})\n{}",
        lab.table()
    );
    lab.stop(daemon);
}

#[test]
fn the_time_rule_rejects_the_client_within_its_window_only() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    let server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let to_server = addr(WAN_HOST_IP, 80);
    let daemon = lab.start();
    wait_for_answer(
        &lab.nas,
        to_server,
        &server,
        "the NAS (not in the rule) to reach the wan",
    );
    assert_refused(
        &lab.client,
        to_server,
        "the client within the rule's window",
    );
    lab.stop(daemon);

    lab.write_firewall(Window::ExcludesNow);
    let daemon = lab.start();
    wait_for_answer(
        &lab.client,
        to_server,
        &server,
        "the client outside the rule's window",
    );
    lab.stop(daemon);
}

/// The `changes=` of a reconcile's log line (a list with spaces, up to the
/// next field).
fn logged_changes(line: &str) -> Option<&str> {
    let rest = &line[line.find(" changes=")? + " changes=".len()..];
    Some(&rest[..rest.find(" read_table=")?])
}

/// The daemon's log lines of reconciles that changed something.
fn applied_reconciles(daemon: &Daemon) -> Vec<String> {
    daemon
        .0
        .stderr()
        .lines()
        .filter(|l| l.contains("reconciled: changes applied"))
        .map(str::to_string)
        .collect()
}

/// An edit of one rule while the daemon follows the file: it sends the
/// kernel that rule's change and nothing else, the change works at once
/// (the time rule moves from the client to the NAS), and it works on
/// connections too: the NAS's connection that was open before the rule
/// named it is cut (with fw4 it would go on, the rules letting an
/// established connection pass before any zone's rule), and only the
/// NAS's connections are.
#[test]
fn an_edit_of_one_rule_sends_only_that_rule_and_cuts_the_connections_it_now_refuses() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(Window::IncludesNow);
    let server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let _echo = EchoServer::start(&lab.wan, addr(WAN_HOST_IP, ECHO_PORT));
    let to_server = addr(WAN_HOST_IP, 80);
    let daemon = lab.start();
    wait_for_answer(&lab.nas, to_server, &server, "the NAS to reach the wan");
    assert_refused(&lab.client, to_server, "the client, in the time rule");
    let mut open = EchoConnection::open(&lab.nas, addr(WAN_HOST_IP, ECHO_PORT), ANSWER_TIMEOUT)
        .unwrap_or_else(|e| panic!("the NAS's connection to the wan's echo server: {e}"));
    open.round_trip("before the edit")
        .expect("the open connection");

    // The rule's kernel rules (fw4 makes one per protocol of the rule's
    // default "tcp udp"): those that name the client.
    let rule_lines = |table: &str, ip: Ipv4Addr| -> Vec<String> {
        let saddr = format!("ip saddr {ip} ");
        table
            .lines()
            .filter(|l| l.contains(&saddr) && l.contains("Client-Bedtime"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let old_rules = rule_lines(&lab.table(), CLIENT_IP);
    assert!(
        !old_rules.is_empty(),
        "no rule of the client\n{}",
        lab.table()
    );

    let before = applied_reconciles(&daemon).len();
    let text = fs::read_to_string(&lab.firewall).expect("the firewall file");
    let client_rule = format!("\toption src_ip '{CLIENT_IP}'\n");
    assert_eq!(text.matches(&client_rule).count(), 1, "{text}");
    let edited = text.replace(&client_rule, &format!("\toption src_ip '{NAS_IP}'\n"));
    let edited_at = Instant::now();
    replace_file(&lab.firewall, edited.as_bytes());
    let reconcile = wait_until(
        "the edit's reconcile",
        CHANGE_TIMEOUT,
        || match applied_reconciles(&daemon).get(before) {
            Some(line) => Ok(line.clone()),
            None => Err(daemon.0.stderr()),
        },
    );
    eprintln!(
        "the edit reconciled within {} ms: {reconcile}",
        edited_at.elapsed().as_millis()
    );
    // Each of the rule's kernel rules is deleted and its new version added
    // where it was, and nothing else is sent (the batch's begin and end are
    // not counted).
    let table = lab.table();
    let new_rules = rule_lines(&table, NAS_IP);
    assert_eq!(new_rules.len(), old_rules.len(), "{table}");
    assert!(rule_lines(&table, CLIENT_IP).is_empty(), "{table}");
    let n = old_rules.len();
    let plural = if n == 1 { "" } else { "s" };
    let messages = (2 * n).to_string();
    assert_eq!(
        logged_field(&reconcile, "messages"),
        Some(messages.as_str()),
        "{reconcile}"
    );
    let mut changes: Vec<&str> = logged_changes(&reconcile)
        .unwrap_or_else(|| panic!("no changes= in {reconcile}"))
        .split(", ")
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        [
            format!("{n} rule add{plural}"),
            format!("{n} rule delete{plural}")
        ],
        "{reconcile}"
    );

    assert!(
        open.round_trip("after the edit").is_err(),
        "the NAS's open connection goes on though the rule now refuses the NAS"
    );
    let cut = daemon
        .0
        .stderr()
        .lines()
        .find(|l| l.contains("cut the flows the change"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no flow cut:\n{}", daemon.0));
    assert!(
        cut.contains(&format!("{NAS_IP}:"))
            && cut.contains(&format!("-> {WAN_HOST_IP}:{ECHO_PORT}")),
        "{cut}"
    );
    assert!(!cut.contains(&format!("{CLIENT_IP}:")), "{cut}");
    wait_for_answer(
        &lab.client,
        to_server,
        &server,
        "the client, no longer in the rule",
    );
    assert_refused(
        &lab.nas,
        to_server,
        "a new connection of the NAS, now in the rule",
    );
    // One reconcile for the edit, and no other since.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        applied_reconciles(&daemon).len(),
        before + 1,
        "{}",
        daemon.0
    );
    lab.stop(daemon);
}
