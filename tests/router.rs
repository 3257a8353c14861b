//! wasmwall as a home router's firewall, end to end: the real daemon
//! (`wasmwall run`), the real `home-router` policy, a real dnsmasq and a real
//! DHCP client (busybox `udhcpc`), real packets.
//!
//! The lab, all of it in network namespaces made for the test and removed
//! afterwards, also when it fails:
//!
//! ```text
//!  client               router                       wan
//!  eth0 ------------- lan0 192.168.1.1/24
//!  192.168.1.50/24      wan0 203.0.113.1/24 ------- eth0 203.0.113.2/24
//!  (or a DHCP lease)                                 HTTP server on :80
//! ```
//!
//! The wan host has no route to the LAN, so the client reaches it only
//! through the router's masquerade, and the server sees the router's
//! address. wasmwall is started from a fourth, throwaway namespace with the
//! router's named in its config, so a daemon that ignored `netns` would
//! firewall that one (and the test would fail), never the host.
//!
//! Covered (issue 4): WAN up opens the masquerade and WAN down removes it; a
//! DHCP lease opens a port forward to the host by name and its release
//! closes it, with leases reported by dnsmasq's `dhcp-script`
//! (`contrib/dnsmasq-hook`) and, separately, read from dnsmasq's lease file;
//! the policy file replaced 20 times under continuous traffic loses no
//! request, and a broken one is rejected with one log line while traffic
//! goes on.

use std::ffi::OsStr;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Child, ContinuousClient, Dnsmasq, HttpServer, NetError, Netns, START_TIMEOUT, STOP_TIMEOUT,
    TempDir, Udhcpc, compile_cache_dir, find_line, http_get, policy_wasm, replace_file, repo_root,
    run, run_unchecked, skip_unless_root, tcp_connect, temp_dir, toml_path, toml_string, veth_pair,
    wait_until, wasmwall_bin, without_counter_values, write_script,
};

const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const WAN_HOST_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The client's address when it is not from DHCP.
const CLIENT_IP: &str = "192.168.1.50";
/// What dnsmasq hands out.
const DHCP_RANGE: &str = "192.168.1.100,192.168.1.200,255.255.255.0,1h";
/// The client's DHCP host name, which the port forward names.
const HOSTNAME: &str = "nas";
const FORWARD: &str = "tcp 8080 nas 80";
const FORWARD_PORT: u16 = 8080;
const POLICY: &str = "router";

/// From an event (a link going up, a lease) to the rules working: it takes
/// milliseconds; the rest is slack for a loaded machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A DHCP exchange on a veth pair.
const LEASE_TIMEOUT: Duration = Duration::from_secs(20);
/// One request while waiting for a path to open: short, so the wait sees
/// the moment it opens (a SYN that was dropped is resent only after 1 s).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// One request on a path that should work.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// How the client gets its address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientAddress {
    /// 192.168.1.50/24, default route via the router.
    Static,
    /// None: a DHCP client will get one.
    Dhcp,
}

/// The namespaces, wired; a temporary directory with wasmwall's config, the
/// policy file it runs (a copy, which a test may replace), its state and
/// every process's output.
struct Lab {
    // Fields drop in order: namespaces (with anything still inside), then
    // the directory.
    client: Netns,
    wan: Netns,
    router: Netns,
    launcher: Netns,
    config: PathBuf,
    policy: PathBuf,
    socket: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new(client_address: ClientAddress) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let wan = Netns::new("wan");
        let client = Netns::new("client");
        let launcher = Netns::new("launcher");
        let client_cidr = match client_address {
            ClientAddress::Static => format!("{CLIENT_IP}/24"),
            ClientAddress::Dhcp => String::new(),
        };
        veth_pair(
            (&router, "lan0", &format!("{ROUTER_LAN_IP}/24")),
            (&client, "eth0", &client_cidr),
        );
        veth_pair(
            (&router, "wan0", &format!("{ROUTER_WAN_IP}/24")),
            (&wan, "eth0", &format!("{WAN_HOST_IP}/24")),
        );
        if client_address == ClientAddress::Static {
            client.run([
                "ip",
                "route",
                "add",
                "default",
                "via",
                &ROUTER_LAN_IP.to_string(),
            ]);
        }
        let policy = dir.path().join(format!("policies/{POLICY}.wasm"));
        let socket = dir.path().join("state/wasmwall.sock");
        Lab {
            client,
            wan,
            router,
            launcher,
            config: dir.path().join("wasmwall.toml"),
            policy,
            socket,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes wasmwall's config: the home-router policy on lan0 and wan0
    /// with these port forwards, and dnsmasq's lease file to watch if any.
    fn configure(&self, forwards: &[&str], lease_file: Option<&Path>) {
        // The policy file the daemon watches: a copy in a directory of the
        // test's own, so replacing it leaves target/policies alone.
        let policies = self.policy.parent().expect("a directory");
        fs::create_dir_all(policies).expect("create the policies directory");
        fs::copy(policy_wasm("home-router"), &self.policy).expect("copy the policy");
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
             forward = [{forwards}]\n",
            netns = toml_string(self.router.name()),
            state = toml_path(&self.path("state")),
            socket = toml_path(&self.socket),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&self.policy),
            forwards = forwards.join(", "),
        );
        fs::write(&self.config, toml).expect("write wasmwall.toml");
    }

    /// `wasmwall ARGS...`, started from the launcher namespace.
    fn wasmwall<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.launcher.command(wasmwall_bin());
        cmd.args(args);
        cmd
    }

    /// Starts `wasmwall run -c <config>` and waits until it follows events.
    fn start(&self) -> Child {
        let mut run = self.wasmwall([OsStr::new("run"), OsStr::new("-c"), self.config.as_os_str()]);
        let mut daemon = Child::spawn(&mut run, self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// `wasmwall event lease add` for the client at its static address, as
    /// a DHCP server's hook would send it; returns once it is applied.
    fn give_static_client_a_lease(&self) {
        self.give_lease("02:00:00:00:01:50", CLIENT_IP);
    }

    /// `wasmwall event lease add` of `ip` to host "nas" (MAC `mac`) on
    /// lan0; returns once it is applied.
    fn give_lease(&self, mac: &str, ip: &str) {
        let mut event = self.wasmwall(["event", "lease", "add"]);
        event
            .args(["--mac", mac, "--ip", ip])
            .args(["--hostname", HOSTNAME, "--iface", "lan0", "--wait"])
            .arg("--socket")
            .arg(&self.socket);
        run(&mut event);
    }

    /// `nft list table inet wasmwall` in the router; empty when there is no
    /// such table.
    fn table(&self) -> String {
        self.router.table("inet", "wasmwall").unwrap_or_default()
    }

    /// Waits until the router's table satisfies `check` (given the listing).
    fn wait_for_table(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_until(what, CHANGE_TIMEOUT, || {
            let table = self.table();
            if check(&table) {
                Ok(table)
            } else {
                Err(format!("the table is:\n{table}"))
            }
        })
    }

    fn ip_forward(&self) -> String {
        self.router.sysctl("net/ipv4/ip_forward")
    }

    /// Stops the daemon with SIGTERM: it must exit 0 and take its table.
    fn stop(&self, mut daemon: Child) {
        daemon.stop_cleanly(STOP_TIMEOUT);
        assert!(
            !self.router.has_table("inet", "wasmwall"),
            "the table is still there after SIGTERM\n{}",
            self.table()
        );
    }
}

/// Waits until `GET /` from `from` to `to` is answered by `server`; returns
/// how long it took.
fn wait_for_answer(from: &Netns, to: SocketAddr, server: &HttpServer, what: &str) -> Duration {
    let started = Instant::now();
    wait_until(what, CHANGE_TIMEOUT, || {
        match http_get(from, to, PROBE_TIMEOUT) {
            Ok(body) if body == server.token() => Ok(()),
            Ok(body) => Err(format!("answered by another server: {body:?}")),
            Err(e) => Err(e.to_string()),
        }
    });
    started.elapsed()
}

/// Waits until `GET /` from `from` to `to` fails.
fn wait_for_no_answer(from: &Netns, to: SocketAddr, what: &str) {
    wait_until(what, CHANGE_TIMEOUT, || {
        match http_get(from, to, PROBE_TIMEOUT) {
            Ok(body) => Err(format!("still answered: {body:?}")),
            Err(_) => Ok(()),
        }
    });
}

#[test]
fn wan_up_opens_masquerade_and_wan_down_removes_it() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(ClientAddress::Static);
    let server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let to_server = addr(WAN_HOST_IP, 80);
    lab.router.run(["ip", "link", "set", "wan0", "down"]);
    let original_ip_forward = lab.ip_forward();
    assert_eq!(original_ip_forward, "0", "a new namespace does not forward");
    lab.configure(&[], None);
    let daemon = lab.start();

    // WAN down: the policy's filter rules, no NAT, no forwarding.
    let table = lab.wait_for_table("the policy's table", |t| !t.is_empty());
    assert!(
        !table.contains("masquerade"),
        "masquerade while the WAN is down\n{table}"
    );
    assert_eq!(lab.ip_forward(), "0");
    assert!(http_get(&lab.client, to_server, PROBE_TIMEOUT).is_err());

    // WAN up: the masquerade comes, the client reaches the server, which
    // sees the router.
    let up = Instant::now();
    lab.router.run(["ip", "link", "set", "wan0", "up"]);
    lab.wait_for_table("the masquerade after wan0 came up", |t| {
        t.contains("masquerade")
    });
    eprintln!(
        "wan0 up -> the masquerade in the kernel in {} ms",
        up.elapsed().as_millis()
    );
    let took = wait_for_answer(
        &lab.client,
        to_server,
        &server,
        "the client to reach the wan server after wan0 came up",
    );
    eprintln!(
        "then the client's request answered in {} ms more",
        took.as_millis()
    );
    let peers = server.peers();
    assert!(!peers.is_empty());
    for peer in &peers {
        assert_eq!(
            peer.ip(),
            IpAddr::V4(ROUTER_WAN_IP),
            "the server saw {peer}, not the router (all peers: {peers:?})"
        );
    }
    let table = lab.table();
    assert!(
        find_line(table.lines(), &["oifname \"wan0\"", "masquerade"]).is_some(),
        "no masquerade on wan0\n{table}"
    );
    assert_eq!(lab.ip_forward(), "1");

    // WAN down: the masquerade and the NAT chains go, forwarding is off
    // again.
    lab.router.run(["ip", "link", "set", "wan0", "down"]);
    let table = lab.wait_for_table("the NAT rules to go after wan0 went down", |t| {
        !t.contains("masquerade") && !t.contains("type nat hook")
    });
    assert!(!table.is_empty(), "the whole table went with the WAN");
    wait_until(
        "net.ipv4.ip_forward to be restored",
        CHANGE_TIMEOUT,
        || match lab.ip_forward() {
            v if v == original_ip_forward => Ok(()),
            v => Err(format!("it is {v}")),
        },
    );

    lab.stop(daemon);
    assert_eq!(lab.ip_forward(), original_ip_forward);
}

/// Where the daemon learns about the DHCP lease from.
#[derive(Clone, Copy, Debug)]
enum LeaseSource {
    /// dnsmasq's `dhcp-script`: `contrib/dnsmasq-hook` calling `wasmwall
    /// event lease` over the control socket.
    Hook,
    /// dnsmasq's lease file, watched (`[leases] dnsmasq_file`).
    LeaseFile,
}

/// A real dnsmasq in the router serves DHCP on lan0; the client gets a
/// lease for host name "nas" from a real udhcpc; the forward to "nas" opens
/// for the wan host, and closes when the client releases the lease.
fn lease_opens_and_release_closes_the_forward(source: LeaseSource) {
    let lab = Lab::new(ClientAddress::Dhcp);
    let dnsmasq_dir = lab.path("dnsmasq");
    fs::create_dir(&dnsmasq_dir).expect("create dnsmasq's directory");
    let lease_file = dnsmasq_dir.join("dnsmasq.leases");
    let hook = repo_root().join("contrib/dnsmasq-hook");
    let (watched, script) = match source {
        LeaseSource::Hook => (None, Some(hook.as_path())),
        LeaseSource::LeaseFile => (Some(lease_file.as_path()), None),
    };
    lab.configure(&[FORWARD], watched);
    let nas = HttpServer::start(&lab.client, SocketAddr::from(([0, 0, 0, 0], 80)));
    let forwarded = addr(ROUTER_WAN_IP, FORWARD_PORT);

    let daemon = lab.start();
    // dnsmasq's environment reaches the hook (dnsmasq(8): "The environment
    // is inherited from the invoker of dnsmasq").
    let bin = wasmwall_bin();
    let env = [
        ("WASMWALL_SOCKET", lab.socket.as_os_str()),
        ("WASMWALL", bin.as_os_str()),
    ];
    let dnsmasq = Dnsmasq::start(&lab.router, "lan0", DHCP_RANGE, script, &env, &dnsmasq_dir);
    assert_eq!(dnsmasq.lease_file(), lease_file);
    assert!(
        http_get(&lab.wan, forwarded, PROBE_TIMEOUT).is_err(),
        "the forward is open before any lease"
    );

    let mut udhcpc = Udhcpc::start(&lab.client, "eth0", HOSTNAME, lab.dir.path());
    let ip = udhcpc.wait_for_lease(LEASE_TIMEOUT);
    let took = wait_for_answer(
        &lab.wan,
        forwarded,
        &nas,
        &format!("the forward to {HOSTNAME} ({ip}) to open ({source:?})"),
    );
    eprintln!(
        "{source:?}: lease of {ip} -> the forward answers in {} ms (after udhcpc's script)",
        took.as_millis()
    );
    // The forward is one element of the policy's NAT map, keyed by port.
    let element = format!("{FORWARD_PORT} : {ip} . 80");
    let table = lab.table();
    assert!(
        table.contains(&element),
        "no element {element:?} in the forwards' map\n{table}"
    );

    udhcpc.release();
    let table = lab.wait_for_table("the map element to go after the lease was released", |t| {
        !t.contains(&element)
    });
    assert!(!table.contains(&ip), "{ip} still in the table\n{table}");
    assert!(
        find_line(table.lines(), &["dnat ip to tcp dport map"]).is_some(),
        "the rule that looks forwards up is kept without elements\n{table}"
    );
    wait_for_no_answer(&lab.wan, forwarded, "the forward to close");
    let log = dnsmasq.log();
    assert!(
        log.contains("DHCPRELEASE"),
        "dnsmasq saw no release\n{dnsmasq}"
    );

    lab.stop(daemon);
}

#[test]
fn dhcp_lease_opens_and_release_closes_the_port_forward() {
    if skip_unless_root() {
        return;
    }
    lease_opens_and_release_closes_the_forward(LeaseSource::Hook);
}

#[test]
fn dhcp_lease_file_opens_and_release_closes_the_port_forward() {
    if skip_unless_root() {
        return;
    }
    lease_opens_and_release_closes_the_forward(LeaseSource::LeaseFile);
}

/// How many swaps, and how many answered requests each version must see
/// once it is in (so traffic flows through every version, not just past
/// the swaps).
const SWAPS: usize = 20;
const ANSWERS_PER_VERSION: usize = 5;
const SWAP_TIMEOUT: Duration = Duration::from_secs(30);

/// The hex SHA-256 of a file, as the daemon logs a policy's hash.
fn sha256(file: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(file));
    out.stdout
        .split_whitespace()
        .next()
        .expect("sha256sum prints the hash")
        .to_string()
}

/// The "policy swapped" lines of a daemon's log, with their hashes.
fn swaps(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("policy swapped"))
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("hash="))
                .unwrap_or("(no hash)")
                .to_string()
        })
        .collect()
}

/// The second version of the policy: `home-router-counters` (the same rules
/// with a counter on each) when it is built, otherwise a stand-in that
/// behaves the same and has another hash: home-router with a custom section
/// appended, which any component may carry and the runtime ignores.
fn second_version(lab: &Lab) -> Vec<u8> {
    let counters = repo_root().join("target/policies/home-router-counters.wasm");
    if counters.is_file() {
        return fs::read(&counters).expect("read home-router-counters.wasm");
    }
    eprintln!(
        "note: {} is not built; swapping with a stand-in (home-router plus a custom section)",
        counters.display()
    );
    let mut bytes = fs::read(&lab.policy).expect("read the policy");
    let name = b"wasmwall-test-version";
    let payload = b"2";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 sizes");
    bytes.push(0); // custom section
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

/// Waits until `client` has `count` more answers than now; panics at once,
/// with the details, on any failed request.
fn wait_for_answers(client: &ContinuousClient, after: &str, count: usize) {
    let answered = client.tally().successes;
    wait_until(
        &format!("{count} answers after {after}"),
        SWAP_TIMEOUT,
        || match client.tally() {
            tally if !tally.failures.is_empty() => {
                panic!("requests failed after {after}: {tally}")
            }
            tally if tally.successes - answered >= count => Ok(()),
            tally => Err(format!("{} so far", tally.successes - answered)),
        },
    );
}

#[test]
fn hot_swap_under_traffic_loses_no_request() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(ClientAddress::Static);
    lab.configure(&[FORWARD], None);
    let nas = HttpServer::start(&lab.client, SocketAddr::from(([0, 0, 0, 0], 80)));
    let forwarded = addr(ROUTER_WAN_IP, FORWARD_PORT);
    let mut daemon = lab.start();
    lab.give_static_client_a_lease();
    wait_for_answer(
        &lab.wan,
        forwarded,
        &nas,
        "the forward to the static client",
    );

    let first = fs::read(&lab.policy).expect("read the policy");
    let second = second_version(&lab);
    let first_hash = sha256(&lab.policy);
    let second_file = lab.path("second.wasm");
    fs::write(&second_file, &second).expect("write the second version");
    let second_hash = sha256(&second_file);
    assert_ne!(first_hash, second_hash);

    let client = ContinuousClient::start(
        &lab.wan,
        forwarded,
        nas.token(),
        ANSWER_TIMEOUT,
        Duration::from_millis(5),
    );
    let started = Instant::now();
    for n in 1..=SWAPS {
        let (bytes, hash) = if n % 2 == 1 {
            (&second, &second_hash)
        } else {
            (&first, &first_hash)
        };
        replace_file(&lab.policy, bytes);
        wait_until(&format!("swap {n} to be logged"), SWAP_TIMEOUT, || {
            if let Some(status) = daemon.try_status() {
                panic!("`wasmwall run` exited: {status}\n{daemon}");
            }
            let log = daemon.stderr();
            let swaps = swaps(&log);
            match swaps.as_slice() {
                [.., last] if swaps.len() == n && last == hash => Ok(()),
                _ if log.contains("rejected") => panic!("a good version was rejected\n{daemon}"),
                _ => Err(format!("{} swap(s) logged: {swaps:?}", swaps.len())),
            }
        });
        wait_for_answers(&client, &format!("swap {n}"), ANSWERS_PER_VERSION);
    }
    let swapping = started.elapsed();
    assert_eq!(sha256(&lab.policy), first_hash, "an even number of swaps");

    // A broken version: a core WebAssembly module, not a component.
    let before = without_counter_values(&lab.table());
    replace_file(&lab.policy, b"\0asm\x01\0\0\0");
    daemon.wait_for_stderr(
        "the broken version to be rejected",
        "rejected",
        SWAP_TIMEOUT,
    );
    // Traffic goes on meanwhile; a second log line would come now.
    wait_for_answers(&client, "the rejection", 2 * ANSWERS_PER_VERSION);
    thread::sleep(Duration::from_millis(500));
    let tally = client.stop();
    let log = daemon.stderr();
    let rejected: Vec<&str> = log.lines().filter(|l| l.contains("rejected")).collect();
    assert_eq!(
        rejected.len(),
        1,
        "one log line for the rejection\n{daemon}"
    );
    eprintln!("the broken version: {}", rejected[0]);
    assert!(
        rejected[0].contains(&format!("policy {POLICY}")),
        "the line names the policy: {}",
        rejected[0]
    );
    assert_eq!(
        without_counter_values(&lab.table()),
        before,
        "the table changed with the broken version"
    );
    assert!(daemon.try_status().is_none(), "the daemon died\n{daemon}");
    let status = run_unchecked(lab.wasmwall(["status", "--socket"]).arg(&lab.socket));
    assert_eq!(
        status.status.code(),
        Some(2),
        "status reports the error\n{status}"
    );
    assert!(status.stdout.contains("rejected"), "{status}");

    eprintln!(
        "{SWAPS} swaps in {} ms under traffic, then a broken version: {tally}",
        swapping.as_millis()
    );
    assert!(tally.failures.is_empty(), "requests failed: {tally}");
    assert!(
        tally.successes >= (SWAPS + 2) * ANSWERS_PER_VERSION,
        "{tally}"
    );
    lab.stop(daemon);
}

/// The NAS of the reflection test: a second host on the client's LAN.
const NAS_IP: &str = "192.168.1.60";

/// Puts a second LAN host, "nas" at 192.168.1.60, beside the client: the
/// client's namespace becomes the LAN's switch (a bridge `br0` of its link
/// to the router and a link to the NAS), and the client's address moves
/// onto the bridge. Returns the NAS's namespace.
fn add_nas_beside_the_client(lab: &Lab) -> Netns {
    let nas = Netns::new("nas");
    veth_pair(
        (&lab.client, "sw1", ""),
        (&nas, "eth0", &format!("{NAS_IP}/24")),
    );
    nas.run([
        "ip",
        "route",
        "add",
        "default",
        "via",
        &ROUTER_LAN_IP.to_string(),
    ]);
    let client = &lab.client;
    client.run(["ip", "link", "add", "br0", "type", "bridge"]);
    client.run([
        "ip",
        "addr",
        "del",
        &format!("{CLIENT_IP}/24"),
        "dev",
        "eth0",
    ]);
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
    client.run([
        "ip",
        "route",
        "add",
        "default",
        "via",
        &ROUTER_LAN_IP.to_string(),
    ]);
    nas
}

/// NAT reflection: a LAN client reaches a port forward on the router's WAN
/// address and is answered by the LAN host the forward names, which sees
/// the router as the client (so its answers go back through the router and
/// are translated back); a WAN client of the same forward is seen as
/// itself. Without the reflected connection's masquerade the NAS would
/// answer the client directly, from an address it never asked, and the
/// connection would not open.
#[test]
fn nat_reflection_answers_a_lan_client_on_the_wan_address() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(ClientAddress::Static);
    let nas_ns = add_nas_beside_the_client(&lab);
    lab.configure(&[FORWARD], None);
    let nas = HttpServer::start(&nas_ns, SocketAddr::from(([0, 0, 0, 0], 80)));
    let forwarded = addr(ROUTER_WAN_IP, FORWARD_PORT);
    let daemon = lab.start();
    lab.give_lease("02:00:00:00:01:60", NAS_IP);

    wait_for_answer(&lab.wan, forwarded, &nas, "the forward from the WAN");
    wait_for_answer(
        &lab.client,
        forwarded,
        &nas,
        "the forward from the LAN, on the WAN address",
    );
    let peers = nas.peers();
    let wan_host = IpAddr::V4(WAN_HOST_IP);
    let router_lan = IpAddr::V4(ROUTER_LAN_IP);
    assert!(
        peers.iter().any(|p| p.ip() == wan_host),
        "the WAN client was not seen as itself: {peers:?}"
    );
    assert!(
        peers.iter().any(|p| p.ip() == router_lan),
        "the reflected connection was not seen from the router: {peers:?}"
    );
    let client_ip: IpAddr = CLIENT_IP.parse().expect("an address");
    assert!(
        !peers.iter().any(|p| p.ip() == client_ip),
        "the NAS saw the LAN client itself: {peers:?}"
    );
    lab.stop(daemon);
}

/// Towards the LAN the router refuses what it does not serve (a TCP reset,
/// at once); towards the WAN it says nothing (the chain's policy drops).
#[test]
fn closed_ports_are_refused_to_the_lan_and_dropped_to_the_wan() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(ClientAddress::Static);
    lab.configure(&[], None);
    // Something listens on both sides, so a refusal is the firewall's.
    let _lan_server = HttpServer::start(&lab.router, addr(ROUTER_LAN_IP, 8081));
    let _wan_server = HttpServer::start(&lab.router, addr(ROUTER_WAN_IP, 8081));
    let daemon = lab.start();
    lab.wait_for_table("the policy's table", |t| {
        t.contains("reject with tcp reset")
    });
    let started = Instant::now();
    let from_lan = tcp_connect(&lab.client, addr(ROUTER_LAN_IP, 8081), ANSWER_TIMEOUT);
    assert_eq!(from_lan, Err(NetError::Refused), "from the LAN");
    assert!(
        started.elapsed() < ANSWER_TIMEOUT,
        "the refusal came only after {:?}",
        started.elapsed()
    );
    let from_wan = tcp_connect(&lab.wan, addr(ROUTER_WAN_IP, 8081), PROBE_TIMEOUT);
    assert_eq!(from_wan, Err(NetError::TimedOut), "from the WAN");
    lab.stop(daemon);
}

/// `contrib/dnsmasq-hook` turns dnsmasq's calls into `wasmwall event lease`
/// with the daemon's socket, and ignores dnsmasq's other actions. A script
/// recording its arguments stands in for wasmwall.
#[test]
fn dnsmasq_hook_passes_leases_on_and_ignores_other_actions() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    // In a namespace of its own with a LAN, for the hook's route look-up.
    let router = Netns::new("router");
    router.add_interface("lan0", "192.168.1.1/24");
    router.run([
        "ip",
        "-6",
        "addr",
        "add",
        "fd00::1/64",
        "dev",
        "lan0",
        "nodad",
    ]);
    let record = dir.path().join("calls");
    let stand_in = dir.path().join("wasmwall");
    write_script(
        &stand_in,
        &format!(
            "#!/bin/sh\n\
             printf '%s|' \"$@\" >> '{record}'\n\
             printf 'DNSMASQ_INTERFACE=%s\\n' \"$DNSMASQ_INTERFACE\" >> '{record}'\n",
            record = record.display()
        ),
    );
    let hook = repo_root().join("contrib/dnsmasq-hook");
    let call = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = router.command(&hook);
        cmd.args(args)
            .env("WASMWALL", &stand_in)
            .env("WASMWALL_SOCKET", "/run/test.sock")
            .env_remove("DNSMASQ_INTERFACE")
            .env_remove("DNSMASQ_IAID");
        for (key, value) in env {
            cmd.env(key, value);
        }
        run(&mut cmd);
    };
    let lan = [("DNSMASQ_INTERFACE", "lan0")];
    call(&["add", "02:00:00:00:00:23", "192.168.1.23", "nas"], &lan);
    call(&["old", "02:00:00:00:00:23", "192.168.1.23"], &lan);
    // dnsmasq's "old" at its start has no interface: the route's is taken.
    call(&["old", "02:00:00:00:00:24", "192.168.1.24", "tv"], &[]);
    call(&["del", "02:00:00:00:00:23", "192.168.1.23", "nas"], &lan);
    for ignored in [
        "init",
        "tftp",
        "arp-add",
        "arp-del",
        "relay-snoop",
        "whatever",
    ] {
        call(&[ignored, "x", "y"], &[]);
    }
    // A DHCPv6 lease: the DUID in the MAC's place; `wasmwall event lease`
    // reads DNSMASQ_IAID and DNSMASQ_MAC itself.
    call(
        &["add", "00:01:00:01:aa:bb", "fd00::23", "nas"],
        &[("DNSMASQ_IAID", "1"), ("DNSMASQ_INTERFACE", "lan0")],
    );
    // dnsmasq's "old" at its start has no interface: the IPv6 route's.
    call(
        &["old", "00:01:00:01:aa:bb", "fd00::23"],
        &[("DNSMASQ_IAID", "1")],
    );
    let calls = fs::read_to_string(&record).expect("the stand-in was called");
    let socket = "--socket|/run/test.sock|";
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            format!(
                "event|lease|add|--mac|02:00:00:00:00:23|--ip|192.168.1.23|--hostname|nas|{socket}DNSMASQ_INTERFACE=lan0"
            ),
            format!(
                "event|lease|old|--mac|02:00:00:00:00:23|--ip|192.168.1.23|{socket}DNSMASQ_INTERFACE=lan0"
            ),
            format!(
                "event|lease|old|--mac|02:00:00:00:00:24|--ip|192.168.1.24|--hostname|tv|{socket}DNSMASQ_INTERFACE=lan0"
            ),
            format!(
                "event|lease|del|--mac|02:00:00:00:00:23|--ip|192.168.1.23|--hostname|nas|{socket}DNSMASQ_INTERFACE=lan0"
            ),
            format!(
                "event|lease|add|--duid|00:01:00:01:aa:bb|--ip|fd00::23|--hostname|nas|{socket}DNSMASQ_INTERFACE=lan0"
            ),
            format!(
                "event|lease|old|--duid|00:01:00:01:aa:bb|--ip|fd00::23|{socket}DNSMASQ_INTERFACE=lan0"
            ),
        ]
    );
}

/// The lab itself, without wasmwall, so a failure of the tests above is
/// not a failure of dnsmasq, udhcpc or the harness: dnsmasq gives udhcpc a
/// lease and calls its script with add and del; the continuous client
/// counts; a masquerade written by hand makes the client reach the server
/// with the router's address.
#[test]
fn lab_check_without_wasmwall() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(ClientAddress::Dhcp);
    let dnsmasq_dir = lab.path("dnsmasq");
    fs::create_dir(&dnsmasq_dir).expect("create dnsmasq's directory");
    let record = lab.path("hook-calls");
    let hook = lab.path("hook");
    write_script(
        &hook,
        &format!(
            "#!/bin/sh\necho \"$* iface=$DNSMASQ_INTERFACE env=$LAB_MARK\" >> '{}'\n",
            record.display()
        ),
    );
    let env = [("LAB_MARK", OsStr::new("inherited"))];
    let dnsmasq = Dnsmasq::start(
        &lab.router,
        "lan0",
        DHCP_RANGE,
        Some(&hook),
        &env,
        &dnsmasq_dir,
    );
    let mut udhcpc = Udhcpc::start(&lab.client, "eth0", HOSTNAME, lab.dir.path());
    let ip = udhcpc.wait_for_lease(LEASE_TIMEOUT);
    let calls = || fs::read_to_string(&record).unwrap_or_default();
    wait_until("the hook's add", CHANGE_TIMEOUT, || {
        let calls = calls();
        match calls.lines().find(|l| l.starts_with("add ")) {
            Some(line) => Ok(line.to_string()),
            None => Err(calls),
        }
    });
    let add = calls();
    let add = add.lines().next().unwrap();
    let words: Vec<&str> = add.split_whitespace().collect();
    assert_eq!(words[0], "add", "{add}");
    assert_eq!(words[2], ip, "{add}");
    assert_eq!(words[3], HOSTNAME, "{add}");
    assert_eq!(words[4], "iface=lan0", "{add}");
    assert_eq!(
        words[5], "env=inherited",
        "dnsmasq passes its environment on: {add}"
    );
    let lease_file = fs::read_to_string(dnsmasq.lease_file()).expect("the lease file");
    assert!(
        lease_file.contains(&format!("{ip} {HOSTNAME}")),
        "{lease_file}"
    );
    let client_addresses = lab.client.run(["ip", "-4", "addr", "show", "eth0"]).stdout;
    assert!(
        client_addresses.contains(&format!("{ip}/24")),
        "{client_addresses}"
    );

    // A hand-made masquerade: the client reaches the wan server as the
    // router.
    let server = HttpServer::start(&lab.wan, addr(WAN_HOST_IP, 80));
    let rules = lab.path("masquerade.nft");
    fs::write(
        &rules,
        "table ip lab {\n\
         \tchain postrouting {\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"wan0\" masquerade\n\
         \t}\n\
         }\n",
    )
    .expect("write the ruleset");
    lab.router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.router
        .run([OsStr::new("nft"), OsStr::new("-f"), rules.as_os_str()]);
    let client = ContinuousClient::start(
        &lab.client,
        addr(WAN_HOST_IP, 80),
        server.token(),
        ANSWER_TIMEOUT,
        Duration::from_millis(5),
    );
    wait_until("20 answers", CHANGE_TIMEOUT, || match client.tally() {
        t if t.successes >= 20 => Ok(()),
        t => Err(t.to_string()),
    });
    let tally = client.stop();
    assert!(tally.failures.is_empty(), "{tally}");
    let peers = server.peers();
    assert!(peers.len() >= 20, "{peers:?}");
    assert!(
        peers.iter().all(|p| p.ip() == IpAddr::V4(ROUTER_WAN_IP)),
        "{peers:?}"
    );

    // Failures are counted with their cause: nothing listens on port 81.
    let client = ContinuousClient::start(
        &lab.client,
        addr(WAN_HOST_IP, 81),
        server.token(),
        ANSWER_TIMEOUT,
        Duration::from_millis(5),
    );
    wait_until("failures", CHANGE_TIMEOUT, || match client.tally() {
        t if t.failures.len() >= 3 => Ok(()),
        t => Err(t.to_string()),
    });
    let tally = client.stop();
    assert_eq!(tally.successes, 0);
    assert!(tally.failures[0].contains("connection refused"), "{tally}");

    // The release: dnsmasq sees it and calls the hook with del.
    udhcpc.release();
    wait_until("the hook's del", CHANGE_TIMEOUT, || {
        let calls = calls();
        if calls
            .lines()
            .any(|l| l.starts_with(&format!("del {}", words[1])))
        {
            Ok(())
        } else {
            Err(calls)
        }
    });
    assert!(
        udhcpc.events().last().is_some_and(|e| e == "deconfig"),
        "{udhcpc}"
    );
    let client_addresses = lab.client.run(["ip", "-4", "addr", "show", "eth0"]).stdout;
    assert!(!client_addresses.contains(&ip), "{client_addresses}");
}

/// The example files in contrib/ are valid: the config for wasmwall's own
/// parser and its policy settings for home-router, the dnsmasq config for
/// dnsmasq's syntax check.
#[test]
fn contrib_examples_are_valid() {
    let contrib = repo_root().join("contrib");
    let toml = fs::read_to_string(contrib.join("wasmwall.toml")).expect("contrib/wasmwall.toml");
    let config = wasmwall::config::Config::parse(&toml, "contrib/wasmwall.toml", &contrib)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.policies.len(), 1);
    assert_eq!(
        config.leases.dnsmasq_file.as_deref(),
        Some(Path::new("/var/lib/misc/dnsmasq.leases"))
    );
    // Its policy settings are the home-router policy's.
    let mut eval = Command::new(wasmwall_bin());
    eval.arg("eval").arg(policy_wasm("home-router"));
    for (key, value) in &config.policies[0].config {
        eval.arg("--set").arg(format!("{key}={value}"));
    }
    run(&mut eval);
    run(Command::new("dnsmasq").arg("--test").arg(format!(
        "--conf-file={}",
        contrib.join("dnsmasq.conf").display()
    )));
}
