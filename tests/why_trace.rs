//! `wasmwall why` and `wasmwall trace` agree: a corpus of first packets,
//! generated against the rules of a running daemon (the port-forward
//! policy of the seed's laptop, and the home-router policy of a router with
//! a LAN, a WAN and a port forward), both families, TCP, UDP and echo
//! requests, to the router and through it, is judged by `why` from the
//! daemon's applied table and then sent for real while `trace` follows it
//! in the kernel. For every packet the two must give the same verdict and
//! the same deciding rule (the last rule, or chain policy, in wasmwall's
//! table that ended its path with accept or drop: a filter rule, a chain's
//! policy, or the NAT rule that let it through last).
//!
//! The corpus is generated from a fixed seed, so a failure can be run
//! again; each failure names the packet and both answers.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use wasmwall_e2e::{
    Child, Netns, Probe, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir, files_in,
    policy_wasm, run, run_unchecked, send_first_packet, skip_unless_root, temp_dir, toml_path,
    toml_string, veth_pair, wait_until, wasmwall_bin, wasmwall_in,
};

/// From starting a trace to its rule being in.
const TRACE_START: Duration = Duration::from_secs(10);
/// Between two packets of the corpus: the trace tells packets apart by
/// their headers, the pause keeps the kernel's trace events in order.
const GAP: Duration = Duration::from_millis(2);
/// After the last packet, for its events to arrive.
const SETTLE: Duration = Duration::from_secs(1);
/// Packets of each router's corpus.
const CORPUS: usize = 160;

/// A small deterministic generator (xorshift64*): the corpus is the same
/// at every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// One packet of the corpus.
#[derive(Debug, Clone)]
struct Packet {
    probe: Probe,
    from: SocketAddr,
    to: SocketAddr,
    /// The router's interface it comes in by.
    iif: &'static str,
    /// Which sender namespace sends it (an index into the lab's senders).
    sender: usize,
}

impl Packet {
    /// As `why` takes it.
    fn why_text(&self) -> String {
        match self.probe {
            Probe::Tcp => format!("tcp {} -> {} in {}", self.from, self.to, self.iif),
            Probe::Udp => format!("udp {} -> {} in {}", self.from, self.to, self.iif),
            Probe::Echo => {
                let proto = if self.to.is_ipv4() { "icmp" } else { "icmpv6" };
                format!(
                    "{proto} {} -> {} type echo-request in {}",
                    self.from.ip(),
                    self.to.ip(),
                    self.iif
                )
            }
        }
    }

    /// The key `trace` gives it: protocol, source, destination, as its
    /// JSON writes them.
    fn key(&self) -> (String, String, String) {
        let end = |a: SocketAddr| match self.probe {
            Probe::Echo => a.ip().to_string(),
            _ => a.to_string(),
        };
        let proto = match (self.probe, self.to.is_ipv4()) {
            (Probe::Tcp, _) => "tcp",
            (Probe::Udp, _) => "udp",
            (Probe::Echo, true) => "icmp",
            (Probe::Echo, false) => "icmpv6",
        };
        (proto.to_string(), end(self.from), end(self.to))
    }
}

/// What decided a packet: its verdict, and the last rule (chain and nft
/// text, comment left out) or chain policy that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    verdict: &'static str,
    by: String,
}

/// A rule's text without its comment (the two tools may show it apart).
fn without_comment(rule: &str) -> String {
    match rule.find(" comment \"") {
        Some(i) => rule[..i].to_string(),
        None => rule.to_string(),
    }
}

/// `why --json`'s answer reduced to a decision; None when it could not tell.
fn why_decision(report: &serde_json::Value) -> Option<Decision> {
    let verdict = match report["verdict"].as_str()? {
        "accepted" => "accept",
        "dropped" | "rejected" => "drop",
        _ => return None,
    };
    let mut by = None;
    for step in report["steps"].as_array()? {
        match step["step"].as_str()? {
            "rule" => {
                let action = step["action"].as_str()?;
                if matches!(
                    action,
                    "accept" | "drop" | "reject" | "dnat" | "snat" | "masquerade" | "redirect"
                ) {
                    by = Some(format!(
                        "{}: {}",
                        step["chain"].as_str()?,
                        without_comment(step["rule"].as_str()?)
                    ));
                }
            }
            "chain-policy" => {
                by = Some(format!("{}: policy", step["chain"].as_str()?));
            }
            // The routing's own drop decides over any rule before it.
            "routing-drop" => by = Some("routing".to_string()),
            _ => {}
        }
    }
    Some(Decision { verdict, by: by? })
}

/// One `trace --json` packet reduced to a decision, for wasmwall's table
/// `table`.
fn trace_decision(packet: &serde_json::Value, table: &str) -> Option<Decision> {
    let verdict = match packet["verdict"].as_str()? {
        "accept" => "accept",
        "drop" => "drop",
        _ => return None,
    };
    let mut by = None;
    for step in packet["steps"].as_array()? {
        if step["table"].as_str() != Some(table) {
            continue;
        }
        let chain = step["chain"].as_str()?;
        match step["type"].as_str()? {
            "rule" if matches!(step["verdict"].as_str(), Some("accept" | "drop")) => {
                by = Some(format!(
                    "{chain}: {}",
                    without_comment(step["rule"].as_str().unwrap_or("?"))
                ));
            }
            "policy" => by = Some(format!("{chain}: policy")),
            _ => {}
        }
    }
    Some(Decision { verdict, by: by? })
}

/// A router under test: the namespace wasmwall runs in, the hosts that
/// send the corpus, and the daemon.
struct Router {
    router: Netns,
    senders: Vec<Netns>,
    launcher: Netns,
    config: PathBuf,
    /// `trace`'s filter: the packets that come in by these interfaces.
    iif: &'static str,
    dir: TempDir,
}

impl Router {
    fn wasmwall(&self, subcommand: &str) -> std::process::Command {
        wasmwall_in(&self.launcher, &self.router, subcommand, &self.config)
    }

    fn start_daemon(&self) -> Child {
        let mut daemon = Child::spawn(&mut self.wasmwall("run"), self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        self.wait_for_applied_record();
        daemon
    }

    /// Waits until the daemon's record of its applied table is on disk
    /// (it writes it at most once a second).
    fn wait_for_applied_record(&self) {
        let state = self.dir.path().join("state");
        wait_until("the applied table's record", START_TIMEOUT, || {
            let records: Vec<_> = files_in(&state)
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "applied"))
                .collect();
            if records.is_empty() {
                Err(format!("none in {}", state.display()))
            } else {
                Ok(())
            }
        });
    }

    /// `why --applied --json` of `packet`, run in the router's namespace
    /// (its interfaces and sysctls are the ones `why` reads).
    fn why(&self, packet: &Packet) -> serde_json::Value {
        let mut cmd = self.router.command(wasmwall_bin());
        cmd.arg("why")
            .arg("--config")
            .arg(&self.config)
            .args(["--applied", "--json"])
            .arg(packet.why_text());
        let out = run_unchecked(&mut cmd);
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "why {}: not JSON ({e})\nstdout: {}\nstderr: {}",
                packet.why_text(),
                out.stdout,
                out.stderr
            )
        })
    }

    /// Sends `corpus` while a trace follows it; the trace's packets as
    /// JSON, by key, the first of each key (a closed SYN's reset and a
    /// retransmission come later with the same key).
    fn trace(&self, corpus: &[Packet]) -> HashMap<(String, String, String), serde_json::Value> {
        let mut cmd = self.wasmwall("trace");
        cmd.args(["--json", "--timeout", "60s", "--iif", self.iif]);
        let mut trace = Child::spawn(&mut cmd, self.dir.path(), "trace");
        trace.wait_for_stderr("the trace rule to be in", "tracing packets", TRACE_START);
        for packet in corpus {
            send_first_packet(
                &self.senders[packet.sender],
                packet.probe,
                packet.from,
                packet.to,
            );
            thread::sleep(GAP);
        }
        thread::sleep(SETTLE);
        trace.signal(libc::SIGINT);
        let status = trace.wait_timeout(STOP_TIMEOUT);
        assert!(
            status.success(),
            "trace should end 0 on SIGINT: {status}\n{trace}"
        );
        let mut seen = HashMap::new();
        for line in trace.stdout().lines() {
            let packet: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("trace: not JSON ({e}): {line}"));
            let key = (
                packet["proto"].as_str().unwrap_or("").to_string(),
                packet["src"].as_str().unwrap_or("").to_string(),
                packet["dst"].as_str().unwrap_or("").to_string(),
            );
            seen.entry(key).or_insert(packet);
        }
        seen
    }

    /// Judges `corpus` with `why`, sends it under `trace`, and asserts that
    /// they agree on every packet; prints the tally.
    /// `required`: the verdicts and families the corpus must hold.
    fn assert_agree(&self, name: &str, corpus: &[Packet], required: &[(&str, &str)]) {
        let judged: Vec<(Packet, serde_json::Value)> =
            corpus.iter().map(|p| (p.clone(), self.why(p))).collect();
        let traced = self.trace(corpus);
        let mut tally: HashMap<String, usize> = HashMap::new();
        let mut failures = Vec::new();
        for (packet, report) in &judged {
            let Some(expected) = why_decision(report) else {
                failures.push(format!(
                    "{}: why could not tell: {report}",
                    packet.why_text()
                ));
                continue;
            };
            let Some(seen) = traced.get(&packet.key()) else {
                failures.push(format!(
                    "{}: no trace of it (why: {expected:?}; key {:?}; traced e.g. {:?})",
                    packet.why_text(),
                    packet.key(),
                    traced.keys().take(3).collect::<Vec<_>>()
                ));
                continue;
            };
            let got = trace_decision(seen, "wasmwall");
            if got.as_ref() != Some(&expected) {
                failures.push(format!(
                    "{}:\n    why:   {expected:?}\n    trace: {got:?}\n    trace's packet: {seen}",
                    packet.why_text()
                ));
                continue;
            }
            let nat = report["steps"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["step"] == "dnat" || s["step"] == "snat"));
            let family = if packet.to.is_ipv4() { "IPv4" } else { "IPv6" };
            let class = match (report["verdict"].as_str().unwrap_or(""), nat) {
                (v, true) => format!("{v} with NAT, {family}"),
                (v, false) => format!("{v}, {family}"),
            };
            *tally.entry(class).or_default() += 1;
        }
        let mut classes: Vec<_> = tally.iter().collect();
        classes.sort();
        println!(
            "{name}: {} packets, {} agree: {classes:?}",
            corpus.len(),
            corpus.len() - failures.len()
        );
        assert!(
            failures.is_empty(),
            "{name}: why and trace disagree on {} of {} packets:\n{}",
            failures.len(),
            corpus.len(),
            failures.join("\n")
        );
        for (class, family) in required {
            assert!(
                tally
                    .keys()
                    .any(|k| k.starts_with(class) && k.ends_with(family)),
                "{name}: the corpus should hold {class} {family} packets: {classes:?}"
            );
        }
    }
}

/// Adds `addresses` (CIDR) to `ifname` of `ns`, IPv6 ones without
/// duplicate address detection (so they are usable at once).
fn add_addresses(ns: &Netns, ifname: &str, addresses: &[String]) {
    for cidr in addresses {
        let mut argv = vec!["ip", "addr", "add", cidr.as_str(), "dev", ifname];
        if cidr.contains(':') {
            argv.push("nodad");
        }
        ns.run(argv);
    }
}

fn host(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("an address"), port)
}

/// A corpus from `senders` (each with its addresses, the interface its
/// packets come in by, and where they may go), with source ports counting
/// up from 20001 so that every TCP and UDP packet is its own, and
/// each echo request from a source address of its own.
fn corpus(
    rng: &mut Rng,
    senders: &[(usize, &'static str, Vec<String>, Vec<String>)],
    ports: &[u16],
    count: usize,
) -> Vec<Packet> {
    let mut packets = Vec::new();
    let mut sport = 20000u16;
    let mut echoed: Vec<(String, String)> = Vec::new();
    while packets.len() < count {
        let (sender, iif, sources, destinations) =
            &senders[(rng.next() % senders.len() as u64) as usize];
        let family_v4 = rng.next().is_multiple_of(2);
        let of_family = |list: &Vec<String>| -> Vec<String> {
            list.iter()
                .filter(|a| a.contains(':') != family_v4)
                .cloned()
                .collect()
        };
        let (sources, destinations) = (of_family(sources), of_family(destinations));
        if sources.is_empty() || destinations.is_empty() {
            continue;
        }
        let src = sources[(rng.next() % sources.len() as u64) as usize].clone();
        let dst = destinations[(rng.next() % destinations.len() as u64) as usize].clone();
        let probe = rng.pick(&[Probe::Tcp, Probe::Tcp, Probe::Udp, Probe::Udp, Probe::Echo]);
        let (from, to) = match probe {
            Probe::Echo => {
                // Its key must be its own: an echo reply of another
                // request, the other way, has the same addresses.
                if echoed
                    .iter()
                    .any(|(s, d)| (*s == src && *d == dst) || (*s == dst && *d == src))
                {
                    continue;
                }
                echoed.push((src.clone(), dst.clone()));
                (host(&src, 0), host(&dst, 0))
            }
            _ => {
                sport += 1;
                // Random ports stay clear of the source ports, so that no
                // answer has the key of a later packet.
                let dport = if rng.next().is_multiple_of(4) {
                    match 1 + (rng.next() % 65535) as u16 {
                        p if (20000..30000).contains(&p) => p + 10000,
                        p => p,
                    }
                } else {
                    rng.pick(ports)
                };
                (host(&src, sport), host(&dst, dport))
            }
        };
        packets.push(Packet {
            probe,
            from,
            to,
            iif,
            sender: *sender,
        });
    }
    packets
}

fn write_config(dir: &Path, router: &Netns, policy: &str, config: &str) -> PathBuf {
    let path = dir.join("wasmwall.toml");
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
         name = \"{policy}\"\n\
         path = {wasm}\n\
         \n\
         [policy.config]\n\
         {config}",
        netns = toml_string(router.name()),
        state = toml_path(&dir.join("state")),
        socket = toml_path(&dir.join("state/wasmwall.sock")),
        cache = toml_path(&compile_cache_dir()),
        wasm = toml_path(&policy_wasm(policy)),
    );
    fs::write(&path, toml).expect("write wasmwall.toml");
    path
}

/// The seed: the phone (several addresses of both families) and the laptop
/// that runs the port-forward policy (port 80 to 127.0.0.1:4000).
#[test]
fn why_and_trace_agree_on_the_seeds_port_forward() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let laptop = Netns::new("laptop");
    let phone = Netns::new("phone");
    let launcher = Netns::new("launcher");
    veth_pair(
        (&phone, "veth-p", "192.168.0.2/24"),
        (&laptop, "veth-l", "192.168.0.9/24"),
    );
    let phone_addresses: Vec<String> = (2..8)
        .flat_map(|i| [format!("192.168.0.{i}"), format!("fd00::{i}")])
        .collect();
    let extra: Vec<String> = phone_addresses
        .iter()
        .filter(|a| *a != "192.168.0.2")
        .map(|a| format!("{a}/{}", if a.contains(':') { 64 } else { 24 }))
        .collect();
    add_addresses(&phone, "veth-p", &extra);
    add_addresses(&laptop, "veth-l", &["fd00::9/64".to_string()]);
    // The laptop's rules drop every input but port 80, the phone's
    // neighbour solicitations too: the phone is told its MAC beforehand.
    let mac = laptop.run(["cat", "/sys/class/net/veth-l/address"]).stdout;
    phone.run([
        "ip",
        "-6",
        "neigh",
        "add",
        "fd00::9",
        "lladdr",
        mac.trim(),
        "dev",
        "veth-p",
        "nud",
        "permanent",
    ]);
    let config = write_config(
        dir.path(),
        &laptop,
        "port-forward",
        "lan_interface = \"veth-l\"\n",
    );
    let lab = Router {
        router: laptop,
        senders: vec![phone],
        launcher,
        config,
        iif: "veth-l",
        dir,
    };
    let mut daemon = lab.start_daemon();
    let mut rng = Rng(0x5eed_0001);
    let senders = [(
        0,
        "veth-l",
        phone_addresses,
        vec!["192.168.0.9".to_string(), "fd00::9".to_string()],
    )];
    let corpus = corpus(&mut rng, &senders, &[80, 80, 4000, 8081, 22, 53], CORPUS);
    // The policy forwards one IPv4 port and drops everything else.
    let required = [
        ("accepted with NAT", "IPv4"),
        ("dropped", "IPv4"),
        ("dropped", "IPv6"),
    ];
    lab.assert_agree("port-forward", &corpus, &required);
    daemon.stop_cleanly(STOP_TIMEOUT);
}

/// A home router (its interfaces r-lan and r-wan, which one trace filter
/// names as r-*): a LAN host (several addresses of both families) and a
/// WAN host (likewise), the home-router policy with a port forward to a
/// LAN host by its lease, and packets to the router and through it both
/// ways.
#[test]
fn why_and_trace_agree_on_the_home_router() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let router = Netns::new("router");
    let lan = Netns::new("lan");
    let wan = Netns::new("wan");
    let launcher = Netns::new("launcher");
    veth_pair(
        (&router, "r-lan", "192.168.1.1/24"),
        (&lan, "eth0", "192.168.1.50/24"),
    );
    veth_pair(
        (&router, "r-wan", "203.0.113.1/24"),
        (&wan, "eth0", "203.0.113.2/24"),
    );
    add_addresses(&router, "r-lan", &["fd00:1::1/64".to_string()]);
    add_addresses(&router, "r-wan", &["2001:db8:ff::1/64".to_string()]);
    let lan_addresses: Vec<String> = (50..55)
        .flat_map(|i| [format!("192.168.1.{i}"), format!("fd00:1::{i}")])
        .collect();
    let wan_addresses: Vec<String> = (2..7)
        .flat_map(|i| [format!("203.0.113.{i}"), format!("2001:db8:ff::{i}")])
        .collect();
    let cidr = |a: &String, v4: u8| format!("{a}/{}", if a.contains(':') { 64 } else { v4 });
    add_addresses(
        &lan,
        "eth0",
        &lan_addresses
            .iter()
            .filter(|a| *a != "192.168.1.50")
            .map(|a| cidr(a, 24))
            .collect::<Vec<_>>(),
    );
    add_addresses(
        &wan,
        "eth0",
        &wan_addresses
            .iter()
            .filter(|a| *a != "203.0.113.2")
            .map(|a| cidr(a, 24))
            .collect::<Vec<_>>(),
    );
    lan.run(["ip", "route", "add", "default", "via", "192.168.1.1"]);
    lan.run(["ip", "-6", "route", "add", "default", "via", "fd00:1::1"]);
    // The WAN host may send to the LAN (the router is to drop it).
    wan.run(["ip", "route", "add", "192.168.1.0/24", "via", "203.0.113.1"]);
    wan.run([
        "ip",
        "-6",
        "route",
        "add",
        "fd00:1::/64",
        "via",
        "2001:db8:ff::1",
    ]);
    let config = write_config(
        dir.path(),
        &router,
        "home-router",
        "lan = \"r-lan\"\nwan = \"r-wan\"\nforward = [\"tcp 8080 nas 80\", \"udp 5353 nas 53\"]\n",
    );
    let lab = Router {
        router,
        senders: vec![lan, wan],
        launcher,
        config,
        iif: "r-*",
        dir,
    };
    let mut daemon = lab.start_daemon();
    // The NAS's lease makes the forward's DNAT (the NAS itself need not
    // answer: what the rules do is decided before).
    let mut lease = lab.launcher.command(wasmwall_bin());
    lease
        .args([
            "event",
            "lease",
            "add",
            "--mac",
            "02:00:00:00:01:60",
            "--ip",
        ])
        .args([
            "192.168.1.60",
            "--hostname",
            "nas",
            "--iface",
            "r-lan",
            "--wait",
        ])
        .arg("--socket")
        .arg(lab.dir.path().join("state/wasmwall.sock"));
    run(&mut lease);
    lab.wait_for_applied_record();
    let mut rng = Rng(0x5eed_0002);
    let router_addresses = |wan_side: bool| -> Vec<String> {
        if wan_side {
            vec!["203.0.113.1".into(), "2001:db8:ff::1".into()]
        } else {
            vec!["192.168.1.1".into(), "fd00:1::1".into()]
        }
    };
    let mut lan_destinations = router_addresses(false);
    lan_destinations.extend(wan_addresses.iter().cloned());
    let mut wan_destinations = router_addresses(true);
    wan_destinations.extend(lan_addresses.iter().cloned());
    let senders = [
        (0, "r-lan", lan_addresses, lan_destinations),
        (1, "r-wan", wan_addresses, wan_destinations),
    ];
    let corpus = corpus(
        &mut rng,
        &senders,
        &[22, 53, 67, 80, 123, 443, 547, 5353, 8080],
        CORPUS,
    );
    let required = [
        ("accepted with NAT", "IPv4"),
        ("accepted", "IPv6"),
        ("dropped", "IPv4"),
        ("dropped", "IPv6"),
        ("rejected", "IPv4"),
        ("rejected", "IPv6"),
    ];
    lab.assert_agree("home-router", &corpus, &required);
    daemon.stop_cleanly(STOP_TIMEOUT);
}
