//! Measures what conntrack-exact apply (issue 16) costs a reconcile: the
//! daemon (`wasmwall run`, home-router policy) with N conntrack entries in
//! its namespace (UDP flows from a LAN host out to the internet, forwarded
//! and masqueraded, so each is a confirmed entry), and a change that
//! concerns none of them (a lease opening a port forward, then its
//! release). For each N, once with `[conntrack] cut_flows = true` and once
//! with it off (what every other firewall does: nothing), in a lab of its
//! own per run:
//!
//! - the reconcile's own time (`elapsed_us` of its log line) and the part
//!   reading, judging and cutting took (`flows_us`);
//! - `conntrack -L` of the same table (the conntrack tool dumping it: the
//!   peer for the reading part);
//! - the daemon's VmHWM after.
//!
//! The kernel holds each entry in about 320 bytes: 50,000 are about 16 MiB.
//!
//! Run (as root; release builds):
//!   cargo build --release -p wasmwall
//!   scripts/build-policies --quiet --no-install
//!   cargo run --release -p wasmwall-e2e --example bench-flows
//! `WASMWALL_BIN` picks another binary; `BENCH_RUNS` (default 3) the runs;
//! `BENCH_FLOWS` (default "1000,10000,50000") the table sizes.

use std::fs;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmwall::daemon::control::{self, LeaseRequest, Request};
use wasmwall_e2e::{
    Child, Netns, compile_cache_dir, logged_field, policy_wasm, release_bin, require_root,
    temp_dir, toml_path, veth_pair, wait_until,
};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Lab {
    lan: Netns,
    _internet: Netns,
    router: Netns,
    launcher: Netns,
    dir: wasmwall_e2e::TempDir,
}

fn lab() -> Lab {
    let router = Netns::new("router");
    let lan = Netns::new("lan");
    let internet = Netns::new("internet");
    veth_pair(
        (&router, "lan0", "192.168.1.1/24"),
        (&lan, "eth0", "192.168.1.23/24"),
    );
    veth_pair(
        (&router, "wan0", "203.0.113.1/24"),
        (&internet, "eth0", "203.0.113.2/24"),
    );
    lan.run(["ip", "route", "add", "default", "via", "192.168.1.1"]);
    Lab {
        lan,
        _internet: internet,
        router,
        launcher: Netns::new("launcher"),
        dir: temp_dir(),
    }
}

fn start(lab: &Lab, cut: bool) -> (Child, PathBuf) {
    let socket = lab.dir.path().join("state/wasmwall.sock");
    let config = lab.dir.path().join("wasmwall.toml");
    let toml = format!(
        "netns = \"{netns}\"\nstate_dir = {state}\ncontrol_socket = {socket}\nreconcile_interval_s = 0\n\
         [conntrack]\ncut_flows = {cut}\n[neighbours]\nenabled = false\n[cache]\ndir = {cache}\n\
         [[policy]]\nname = \"router\"\npath = {policy}\n[policy.config]\nlan = \"lan0\"\nwan = \"wan0\"\n\
         forward = [\"udp 5000 nas 5000\"]\n",
        netns = lab.router.name(),
        state = toml_path(&lab.dir.path().join("state")),
        socket = toml_path(&socket),
        cache = toml_path(&compile_cache_dir()),
        policy = toml_path(&policy_wasm("home-router")),
    );
    fs::write(&config, toml).expect("write the config");
    let mut cmd = lab.launcher.command(release_bin());
    let log = std::env::var("WASMWALL_LOG").unwrap_or_else(|_| "info".into());
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .env("WASMWALL_LOG", log);
    let mut daemon = Child::spawn(&mut cmd, lab.dir.path(), "wasmwall-run");
    daemon.wait_until_running(TIMEOUT);
    (daemon, socket)
}

fn lease(socket: &std::path::Path, action: &str) {
    let request = Request {
        lease: Some(LeaseRequest {
            action: action.into(),
            mac: Some("02:00:00:00:00:23".into()),
            ip: "192.168.1.23".into(),
            hostname: Some("nas".into()),
            iface: Some("lan0".into()),
            expires: None,
            ..LeaseRequest::default()
        }),
        status: None,
        confirm: None,
        wait: true,
    };
    control::request(socket, &request, TIMEOUT).expect("lease event");
}

/// N UDP flows from the LAN host, one datagram each to its own port.
fn make_flows(lab: &Lab, n: usize) {
    let socket = lab
        .lan
        .enter(|| UdpSocket::bind("192.168.1.23:40000"))
        .expect("bind");
    for i in 0..n {
        let port = 1024 + (i % 60000) as u16;
        let host = 2 + i / 60000;
        let _ = socket.send_to(b"x", format!("203.0.113.{host}:{port}"));
    }
    wait_until("the flows in conntrack", TIMEOUT, || {
        let count = lab.router.sysctl("net/netfilter/nf_conntrack_count");
        match count.trim().parse::<usize>() {
            Ok(c) if c >= n => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// The figures of the last reconcile whose reason starts with `reason`.
fn reconcile_figures(log: &str, reason: &str) -> (f64, f64) {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(&format!("reason=\"{reason}")) && l.contains("reconciled:"))
        .unwrap_or_else(|| panic!("no reconcile for {reason}:\n{log}"));
    let field = |f| {
        logged_field(line, f)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field("elapsed_us") / 1000.0, field("flows_us") / 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    require_root();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let sizes: Vec<usize> = std::env::var("BENCH_FLOWS")
        .unwrap_or_else(|_| "1000,10000,50000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_FLOWS: numbers"))
        .collect();
    println!(
        "| flows | cut_flows | reconcile (lease added) | of it flows | reconcile (lease released) | of it flows | `conntrack -L` | VmHWM |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &n in &sizes {
        for cut in [true, false] {
            let (mut add, mut add_f, mut del, mut del_f, mut list, mut hwm) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for _ in 0..runs {
                let lab = lab();
                let (mut daemon, socket) = start(&lab, cut);
                make_flows(&lab, n);
                let t = Instant::now();
                let listed = lab.router.run(["conntrack", "-L"]);
                list.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(listed.stdout.lines().count() >= n);
                lease(&socket, "add");
                lease(&socket, "del");
                hwm.push(daemon.memory_kib("VmHWM") as f64 / 1024.0);
                daemon.stop_cleanly(TIMEOUT);
                let log = daemon.stderr();
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    log.lines()
                        .filter(|l| l.contains("judged"))
                        .for_each(|l| eprintln!("{l}"));
                }
                let (a, af) = reconcile_figures(&log, "lease-added");
                let (d, df) = reconcile_figures(&log, "lease-expired");
                add.push(a);
                add_f.push(af);
                del.push(d);
                del_f.push(df);
            }
            println!(
                "| {n} | {cut} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB |",
                median(add),
                median(add_f),
                median(del),
                median(del_f),
                median(list),
                median(hwm)
            );
        }
    }
}
