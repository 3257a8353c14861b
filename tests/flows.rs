//! Conntrack follows the rules (issue 16), end to end: the real daemon and
//! the home-router policy, real TCP connections and UDP flows through the
//! router, and the kernel's conntrack table.
//!
//! ```text
//!  nas 192.168.1.23 ----+
//!                       +-- switch -- lan0 192.168.1.1   router   wan0 203.0.113.1 -- internet 203.0.113.2
//!  printer 192.168.1.40 +
//! ```
//!
//! Forwards: tcp 8080 and udp 5000 to the NAS, tcp 9000 to the printer.
//! Leases are told over the control socket, as dnsmasq's hook does.
//! Without the runtime cutting flows, each test fails: an established
//! conntrack entry keeps its translation (and its acceptance) whatever the
//! rules say, and an un-NATed UDP entry keeps its packets un-NATed.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wasmwall::daemon::control::{self, LeaseRequest, Request};
use wasmwall_e2e::{
    Child, EchoConnection, EchoServer, Netns, START_TIMEOUT, STOP_TIMEOUT, Switch, TempDir,
    compile_cache_dir, policy_wasm, skip_unless_root, temp_dir, toml_path, toml_string, veth_pair,
    wait_until, wasmwall_in,
};

const ROUTER_WAN: &str = "203.0.113.1";
const INTERNET: &str = "203.0.113.2";
const NAS: &str = "192.168.1.23";
const PRINTER: &str = "192.168.1.40";
const ROUTER_LAN: &str = "192.168.1.1";
const FORWARDS: [&str; 3] = [
    "tcp 8080 nas 80",
    "udp 5000 nas 5000",
    "tcp 9000 printer 9000",
];
/// A change takes milliseconds; the rest is slack for a loaded machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

struct Lab {
    nas: Netns,
    printer: Netns,
    internet: Netns,
    router: Netns,
    launcher: Netns,
    _switch: Switch,
    config: PathBuf,
    socket: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let internet = Netns::new("internet");
        let nas = Netns::new("nas");
        let printer = Netns::new("printer");
        let launcher = Netns::new("launcher");
        let switch = Switch::new("lan");
        switch.connect((&router, "lan0", &format!("{ROUTER_LAN}/24")), None);
        switch.connect((&nas, "eth0", &format!("{NAS}/24")), None);
        switch.connect((&printer, "eth0", &format!("{PRINTER}/24")), None);
        for host in [&nas, &printer] {
            host.run(["ip", "route", "add", "default", "via", ROUTER_LAN]);
        }
        veth_pair(
            (&router, "wan0", &format!("{ROUTER_WAN}/24")),
            (&internet, "eth0", &format!("{INTERNET}/24")),
        );
        let socket = dir.path().join("state/wasmwall.sock");
        let lab = Lab {
            nas,
            printer,
            internet,
            router,
            launcher,
            _switch: switch,
            config: dir.path().join("wasmwall.toml"),
            socket,
            dir,
        };
        lab.configure("22,53,2222", "53,67,123,547");
        lab
    }

    /// The home-router policy with the forwards, and `lan_tcp`, `lan_udp`
    /// open to the LAN on the router.
    fn configure(&self, lan_tcp: &str, lan_udp: &str) {
        let forwards: Vec<String> = FORWARDS.iter().map(|f| toml_string(f)).collect();
        let toml = format!(
            "state_dir = {state}\n\
             control_socket = {socket}\n\
             reconcile_interval_s = 0\n\
             [cache]\n\
             dir = {cache}\n\
             [[policy]]\n\
             name = \"router\"\n\
             path = {policy}\n\
             [policy.config]\n\
             lan = \"lan0\"\n\
             wan = \"wan0\"\n\
             lan_tcp = {lan_tcp}\n\
             lan_udp = {lan_udp}\n\
             forward = [{forwards}]\n",
            state = toml_path(&self.dir.path().join("state")),
            socket = toml_path(&self.socket),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm("home-router")),
            lan_tcp = toml_string(lan_tcp),
            lan_udp = toml_string(lan_udp),
            forwards = forwards.join(", "),
        );
        // Written whole and renamed, so the daemon never reads half of it.
        let next = self.dir.path().join("wasmwall.toml.next");
        fs::write(&next, toml).expect("write the config");
        fs::rename(&next, &self.config).expect("replace the config");
    }

    fn start(&self) -> Child {
        let mut run = wasmwall_in(&self.launcher, &self.router, "run", &self.config);
        let mut daemon = Child::spawn(&mut run, self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// A lease event for `host` at `ip`, applied when this returns.
    fn lease(&self, action: &str, ip: &str, host: &str) {
        let mac = if host == "nas" {
            "02:00:00:00:00:23"
        } else {
            "02:00:00:00:00:40"
        };
        let request = Request {
            lease: Some(LeaseRequest {
                action: action.into(),
                mac: Some(mac.into()),
                ip: ip.into(),
                hostname: Some(host.into()),
                iface: Some("lan0".into()),
                expires: None,
                ..LeaseRequest::default()
            }),
            status: None,
            confirm: None,
            wait: true,
        };
        let answer = control::request(&self.socket, &request, CHANGE_TIMEOUT)
            .unwrap_or_else(|e| panic!("lease {action} {host}: {e:#}"));
        assert!(answer.error.is_none(), "lease {action} {host}: {answer:?}");
    }

    fn table(&self) -> String {
        self.router.table("inet", "wasmwall").unwrap_or_default()
    }

    /// The router's conntrack entries, as `conntrack -L` prints them.
    fn conntrack(&self) -> String {
        let out = self.router.run_unchecked(["conntrack", "-L"]);
        out.stdout
    }

    fn stop(&self, mut daemon: Child) -> String {
        daemon.stop_cleanly(STOP_TIMEOUT);
        assert!(
            !self.router.has_table("inet", "wasmwall"),
            "the table stayed"
        );
        daemon.stderr()
    }
}

/// A UDP server inside a namespace that counts the datagrams it gets, and
/// from which source address the last one came.
struct UdpCounter {
    count: Arc<AtomicUsize>,
    last_from: Arc<std::sync::Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpCounter {
    fn start(netns: &Netns, at: SocketAddr) -> UdpCounter {
        let socket = netns
            .enter(|| UdpSocket::bind(at))
            .expect("bind the UDP server");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let last_from = Arc::new(std::sync::Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (count, last_from, stop) = (count.clone(), last_from.clone(), stop.clone());
            move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = socket.recv_from(&mut buf) {
                        count.fetch_add(1, Ordering::Relaxed);
                        *last_from.lock().unwrap() = Some(from);
                    }
                }
            }
        });
        UdpCounter {
            count,
            last_from,
            stop,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn last_from(&self) -> Option<SocketAddr> {
        *self.last_from.lock().unwrap()
    }
}

impl Drop for UdpCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP flow: datagrams every 20 ms from one source port to `to`, from
/// inside a namespace, until dropped.
struct UdpFlow {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpFlow {
    fn start(netns: &Netns, from: SocketAddr, to: SocketAddr) -> UdpFlow {
        let socket = netns
            .enter(|| UdpSocket::bind(from))
            .expect("bind the UDP client");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = socket.send_to(b"ping", to);
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
        UdpFlow {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `counter` gets datagrams again (more than it has now).
fn wait_for_datagrams(counter: &UdpCounter, what: &str) {
    let before = counter.count();
    wait_until(what, CHANGE_TIMEOUT, || {
        if counter.count() > before + 3 {
            Ok(())
        } else {
            Err(format!("{} datagrams", counter.count() - before))
        }
    });
}

/// How many datagrams `counter` gets in `window`.
fn datagrams_within(counter: &UdpCounter, window: Duration) -> usize {
    let before = counter.count();
    thread::sleep(window);
    counter.count() - before
}

fn round_trips(conn: &mut EchoConnection, what: &str) {
    conn.round_trip("hello")
        .unwrap_or_else(|e| panic!("{what}: the connection should carry on: {e}"));
}

/// The count of the last "cut the flows" line of the daemon's log.
fn cut_counts(log: &str) -> Vec<usize> {
    log.lines()
        .filter(|l| l.contains("cut the flows the change"))
        .filter_map(|l| wasmwall_e2e::logged_field(l, "count")?.parse().ok())
        .collect()
}

#[test]
fn a_released_lease_cuts_its_forwards_flows_and_nothing_else() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let _web = EchoServer::start(&lab.nas, addr("0.0.0.0", 80));
    let nas_udp = UdpCounter::start(&lab.nas, addr("0.0.0.0", 5000));
    let _printing = EchoServer::start(&lab.printer, addr("0.0.0.0", 9000));
    // The router's own service, which the LAN may reach (port 22).
    let _ssh = EchoServer::start(&lab.router, addr(ROUTER_LAN, 22));
    let daemon = lab.start();
    lab.lease("add", NAS, "nas");
    lab.lease("add", PRINTER, "printer");

    let mut to_nas = EchoConnection::open(&lab.internet, addr(ROUTER_WAN, 8080), IO_TIMEOUT)
        .expect("connect through the forward to the NAS");
    round_trips(&mut to_nas, "internet -> NAS");
    let _udp = UdpFlow::start(&lab.internet, addr(INTERNET, 40000), addr(ROUTER_WAN, 5000));
    wait_for_datagrams(&nas_udp, "the UDP flow through the forward");
    let mut to_printer = EchoConnection::open(&lab.internet, addr(ROUTER_WAN, 9000), IO_TIMEOUT)
        .expect("connect through the forward to the printer");
    round_trips(&mut to_printer, "internet -> printer");
    let mut ssh = EchoConnection::open(&lab.nas, addr(ROUTER_LAN, 22), IO_TIMEOUT)
        .expect("connect to the router's own service");
    round_trips(&mut ssh, "NAS -> router");
    let before = lab.conntrack();
    assert!(
        before.contains(&format!("src={NAS} dst={INTERNET} sport=80")),
        "{before}"
    );

    lab.lease("del", NAS, "nas");

    // Both of the NAS's flows are gone at once: the TCP client's next
    // message finds no connection, the UDP server hears nothing more.
    assert!(
        to_nas.round_trip("still there?").is_err(),
        "the TCP connection through the closed forward still works"
    );
    let heard = datagrams_within(&nas_udp, Duration::from_millis(500));
    assert_eq!(
        heard, 0,
        "the NAS still gets the UDP flow after its forward closed"
    );
    let after = lab.conntrack();
    assert!(
        !after.contains(&format!("src={NAS} dst={INTERNET}")),
        "{after}"
    );
    // The other forward's flow and the router's own session carry on.
    round_trips(
        &mut to_printer,
        "internet -> printer, after the NAS's lease went",
    );
    round_trips(&mut ssh, "NAS -> router, after the NAS's lease went");
    assert!(
        after.contains(&format!("src={PRINTER} dst={INTERNET} sport=9000")),
        "{after}"
    );

    let log = lab.stop(daemon);
    assert_eq!(
        cut_counts(&log),
        vec![2],
        "one reconcile cut the NAS's two flows:\n{log}"
    );
}

#[test]
fn a_udp_flow_that_began_before_its_forward_reaches_the_host_once_it_opens() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    // The router itself answers UDP 5000 to the LAN, until the NAS's
    // forward of that port takes it over (NAT reflection: the printer
    // sends to the router's WAN address).
    lab.configure("22,53", "53,67,123,547,5000");
    let nas_udp = UdpCounter::start(&lab.nas, addr("0.0.0.0", 5000));
    let router_udp = UdpCounter::start(&lab.router, addr("0.0.0.0", 5000));
    let daemon = lab.start();
    let _udp = UdpFlow::start(&lab.printer, addr(PRINTER, 40001), addr(ROUTER_WAN, 5000));
    wait_for_datagrams(&router_udp, "the flow at the router");
    assert_eq!(datagrams_within(&nas_udp, Duration::from_millis(300)), 0);

    lab.lease("add", NAS, "nas");
    wait_for_datagrams(&nas_udp, "the flow's next packets at the NAS");
    assert_eq!(
        datagrams_within(&router_udp, Duration::from_millis(300)),
        0,
        "the router still gets the flow its forward took over"
    );
    let log = lab.stop(daemon);
    assert_eq!(cut_counts(&log), vec![1], "{log}");
}

#[test]
fn a_new_wan_address_under_a_masqueraded_flow_moves_it() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let server = UdpCounter::start(&lab.internet, addr(INTERNET, 7000));
    let daemon = lab.start();
    let _udp = UdpFlow::start(&lab.nas, addr(NAS, 40002), addr(INTERNET, 7000));
    wait_for_datagrams(&server, "the masqueraded flow");
    assert_eq!(
        server.last_from().map(|a| a.ip().to_string()),
        Some(ROUTER_WAN.to_string())
    );

    // The ISP renumbers the router: a new address in the same subnet
    // (promoted when the old one goes, as most distributions configure).
    lab.router
        .set_sysctl("net/ipv4/conf/wan0/promote_secondaries", "1");
    lab.router
        .run(["ip", "addr", "add", "203.0.113.9/24", "dev", "wan0"]);
    lab.router.run([
        "ip",
        "addr",
        "del",
        &format!("{ROUTER_WAN}/24"),
        "dev",
        "wan0",
    ]);
    wait_until(
        "the flow from the new address",
        CHANGE_TIMEOUT,
        || match server.last_from() {
            Some(a) if a.ip().to_string() == "203.0.113.9" => Ok(()),
            other => Err(format!("last from {other:?}")),
        },
    );
    let ct = lab.conntrack();
    assert!(
        !ct.contains(&format!("dst={ROUTER_WAN} sport=7000")),
        "a stale entry stayed:\n{ct}"
    );
    // Who cut it: the kernel's masquerade drops the entries of an address
    // that goes by itself; wasmwall cuts what is left when it reconciles.
    let log = lab.stop(daemon);
    eprintln!("entries wasmwall cut: {:?}", cut_counts(&log));
}

#[test]
fn an_allowed_port_closed_cuts_only_its_own_flows() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let _ssh = EchoServer::start(&lab.router, addr(ROUTER_LAN, 22));
    let _alt = EchoServer::start(&lab.router, addr(ROUTER_LAN, 2222));
    let daemon = lab.start();
    let mut ssh = EchoConnection::open(&lab.nas, addr(ROUTER_LAN, 22), IO_TIMEOUT).unwrap();
    let mut alt = EchoConnection::open(&lab.nas, addr(ROUTER_LAN, 2222), IO_TIMEOUT).unwrap();
    let mut alt2 = EchoConnection::open(&lab.printer, addr(ROUTER_LAN, 2222), IO_TIMEOUT).unwrap();
    for (c, what) in [
        (&mut ssh, "22"),
        (&mut alt, "2222"),
        (&mut alt2, "2222 from the printer"),
    ] {
        round_trips(c, what);
    }

    // Port 2222 no longer served to the LAN: the config changes.
    lab.configure("22,53", "53,67,123,547");
    wait_until("the config taken", CHANGE_TIMEOUT, || {
        let t = lab.table();
        if t.contains("elements = { 22, 53 }") {
            Ok(())
        } else {
            Err(t)
        }
    });
    wait_until("the port-2222 sessions cut", CHANGE_TIMEOUT, || {
        let ct = lab.conntrack();
        if ct.contains("dport=2222") {
            Err(ct)
        } else {
            Ok(())
        }
    });
    assert!(alt.round_trip("still there?").is_err());
    assert!(alt2.round_trip("still there?").is_err());
    round_trips(&mut ssh, "22, after 2222 closed");
    let log = lab.stop(daemon);
    assert_eq!(cut_counts(&log), vec![2], "{log}");
}

#[test]
fn plan_lists_the_flows_a_change_would_cut() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let _ssh = EchoServer::start(&lab.router, addr(ROUTER_LAN, 2222));
    let daemon = lab.start();
    let mut alt = EchoConnection::open(&lab.nas, addr(ROUTER_LAN, 2222), IO_TIMEOUT).unwrap();
    round_trips(&mut alt, "2222");
    let log = lab.stop(daemon);
    assert!(cut_counts(&log).is_empty(), "{log}");
    // The daemon is gone, the table with it; apply once, then plan the
    // change with the connection open.
    let mut apply = wasmwall_in(&lab.launcher, &lab.router, "apply", &lab.config);
    wasmwall_e2e::run(&mut apply);
    round_trips(&mut alt, "2222, after apply");
    lab.configure("22,53", "53,67,123,547");
    let mut plan = wasmwall_in(&lab.launcher, &lab.router, "plan", &lab.config);
    let out = wasmwall_e2e::run_unchecked(&mut plan);
    eprintln!("plan:\n{}", out.stdout);
    let started = Instant::now();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("cut flow "))
        .unwrap_or_else(|| {
            panic!(
                "no flow to cut in the plan:\n{}\n{}",
                out.stdout, out.stderr
            )
        })
        .to_string();
    assert!(
        line.contains(&format!("tcp {NAS}:")) && line.contains(&format!("-> {ROUTER_LAN}:2222")),
        "{line}"
    );
    assert!(line.contains("no longer accepted"), "{line}");
    assert!(started.elapsed() < CHANGE_TIMEOUT);
    // Planning cut nothing.
    round_trips(&mut alt, "2222, after plan");
    let mut cleanup = wasmwall_in(&lab.launcher, &lab.router, "cleanup", &lab.config);
    wasmwall_e2e::run(&mut cleanup);
}
