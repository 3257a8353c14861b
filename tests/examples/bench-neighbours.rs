//! Measures the daemon (`wasmwall run`, home-router policy) following the
//! kernel's neighbour table under churn (issue 15), in a network namespace
//! of its own per run:
//!
//! - 1,000 neighbours appearing (500 IPv4, 500 IPv6 on lan0, one
//!   `ip -batch`, as permanent entries);
//! - then 10,000 state changes (one `ip -batch`: ten passes over the
//!   thousand, stale and reachable in turn, so each line is a change and the
//!   last pass leaves them all reachable).
//!
//! For each phase: how long `ip -batch` took (the kernel doing the changes,
//! the peer), the time from the start of the batch until the daemon's world
//! (`status`) equals the table as read here, the reconciles and events it
//! took, and the daemon's resident memory (VmRSS, VmHWM) before and after.
//! Medians over the runs.
//!
//! The kernel's neighbour tables are global per family (gc_thresh3 = 1024
//! entries by default, shared by every namespace), so this stays at 500 per
//! family and changes no sysctl of the root namespace; inside its own
//! namespace it turns lan0's reachable time and garbage collection up to an
//! hour, so that no entry changes by itself while it measures. Permanent
//! entries are not counted against gc_thresh3.
//!
//! Run (as root; release builds):
//!   cargo build --release -p wasmwall
//!   scripts/build-policies --quiet --no-install
//!   cargo run --release -p wasmwall-e2e --example bench-neighbours
//! `WASMWALL_BIN` picks another binary; `BENCH_RUNS` (default 5) the runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmwall::daemon::control::{self, Request};
use wasmwall::daemon::status::Status;
use wasmwall::world::{self, Neighbour};
use wasmwall_e2e::{
    Child, Netns, compile_cache_dir, files_in, policy_wasm, release_bin, require_root, temp_dir,
    toml_path, wait_until,
};

const PER_FAMILY: usize = 500;
const PASSES: usize = 10;
const POLL: Duration = Duration::from_millis(5);
const TIMEOUT: Duration = Duration::from_secs(120);

fn v4(i: usize) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 2)
}

fn v6(i: usize) -> String {
    format!("2001:db8:1::{:x}", i + 2)
}

fn mac(family: usize, i: usize) -> String {
    format!("02:00:00:{family:02x}:{:02x}:{:02x}", i >> 8, i & 255)
}

struct Lab {
    router: Netns,
    dir: wasmwall_e2e::TempDir,
    daemon: Child,
}

impl Lab {
    fn start() -> Lab {
        let dir = temp_dir();
        let router = Netns::new("neighbench");
        router.add_interface("lan0", "10.0.0.1/16");
        router.add_interface("wan0", "203.0.113.1/24");
        router.run(["ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "lan0"]);
        // This namespace's own lan0 only: no entry goes stale or is
        // collected while measured.
        for family in ["ipv4", "ipv6"] {
            for (key, value) in [
                ("base_reachable_time_ms", "3600000"),
                ("gc_stale_time", "3600"),
            ] {
                router.run([
                    "sysctl",
                    "-qw",
                    &format!("net.{family}.neigh.lan0.{key}={value}"),
                ]);
            }
        }
        let toml = format!(
            "state_dir = {state}\nreconcile_interval_s = 0\n\
             [neighbours]\nmax = 4096\n\
             [cache]\ndir = {cache}\n\n\
             [[policy]]\nname = \"router\"\npath = {path}\n\
             [policy.config]\nlan = \"lan0\"\nwan = \"wan0\"\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            path = toml_path(&policy_wasm("home-router")),
        );
        let config = dir.path().join("wasmwall.toml");
        fs::write(&config, toml).unwrap();
        let mut cmd = router.command(release_bin());
        // Debug for the loop: it says when the notifications overran.
        cmd.args(["run", "--log", "warn,wasmwall::daemon=debug", "--config"])
            .arg(&config);
        let mut daemon = Child::spawn(&mut cmd, dir.path(), "wasmwall-run");
        wait_until("the daemon's socket", Duration::from_secs(60), || {
            if let Some(s) = daemon.try_status() {
                panic!("the daemon exited: {s}\n{daemon}");
            }
            socket_in(dir.path())
                .map(|_| ())
                .ok_or_else(|| "not yet".to_string())
        });
        Lab {
            router,
            dir,
            daemon,
        }
    }

    fn status(&self) -> Status {
        let socket = socket_in(self.dir.path()).expect("the socket");
        let request = Request {
            status: Some(control::Empty {}),
            ..Request::default()
        };
        let answer = control::request(&socket, &request, Duration::from_secs(30)).expect("status");
        *answer.status.expect("a status")
    }

    /// The table as the daemon would read it, read here in its namespace.
    fn table(&self) -> Vec<Neighbour> {
        self.router.enter(|| {
            let interfaces = world::read_interfaces_now().expect("interfaces");
            world::runtime()
                .unwrap()
                .block_on(world::read_neighbours(&interfaces, 4096))
                .expect("neighbours")
                .neighbours
        })
    }

    /// Runs `lines` with `ip -batch`; returns how long it took.
    fn batch(&self, name: &str, lines: &str) -> Duration {
        let file = self.dir.path().join(name);
        fs::write(&file, lines).unwrap();
        let started = Instant::now();
        self.router
            .run(["ip", "-batch", file.to_str().expect("utf-8 path")]);
        started.elapsed()
    }

    fn overruns(&self) -> usize {
        self.daemon
            .stderr()
            .matches("overran the socket buffer")
            .count()
    }

    fn kib(&self) -> (u64, u64) {
        (
            self.daemon.memory_kib("VmRSS"),
            self.daemon.memory_kib("VmHWM"),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.daemon.terminate_within(Duration::from_secs(10)) {
            eprintln!("the daemon did not stop within 10 s\n{}", self.daemon);
        }
    }
}

fn socket_in(dir: &Path) -> Option<PathBuf> {
    files_in(&dir.join("state"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "sock"))
}

/// One phase measured.
#[derive(Debug, Clone, Copy)]
struct Phase {
    batch: Duration,
    caught_up: Duration,
    reconciles: u64,
    events: u64,
    /// Overruns of the notification socket's buffer the daemon logged.
    overruns: usize,
    kib_after: (u64, u64),
}

/// Runs a batch and waits until the daemon's world is the kernel's table.
fn phase(lab: &Lab, name: &str, lines: &str, expect: impl Fn(&[Neighbour]) -> bool) -> Phase {
    let before = lab.status();
    let overruns = lab.overruns();
    let started = Instant::now();
    let batch = lab.batch(name, lines);
    let table = lab.table();
    assert!(
        expect(&table),
        "the kernel's table is not as the batch left it"
    );
    let caught_up = wait_until("the daemon's world", TIMEOUT, || {
        let s = lab.status();
        if s.world.neighbours == table {
            Ok(started.elapsed())
        } else {
            std::thread::sleep(POLL);
            Err(format!("{} neighbours", s.world.neighbours.len()))
        }
    });
    // What it still does after (a last reading) counts too.
    std::thread::sleep(Duration::from_millis(200));
    let after = lab.status();
    assert!(after.errors.is_empty(), "{:?}", after.errors);
    Phase {
        batch,
        caught_up,
        reconciles: after.reconciles - before.reconciles,
        events: after.events - before.events,
        overruns: lab.overruns() - overruns,
        kib_after: lab.kib(),
    }
}

type Run = ((u64, u64), Phase, Phase, Duration);

fn run_once() -> Run {
    let lab = Lab::start();
    std::thread::sleep(Duration::from_millis(300));
    let idle = lab.kib();
    let mut adds = String::new();
    for i in 0..PER_FAMILY {
        adds.push_str(&format!(
            "neigh add {} lladdr {} dev lan0 nud permanent\n",
            v4(i),
            mac(4, i)
        ));
        adds.push_str(&format!(
            "neigh add {} lladdr {} dev lan0 nud permanent\n",
            v6(i),
            mac(6, i)
        ));
    }
    let appear = phase(&lab, "appear.batch", &adds, |t| {
        ours(t).count() == 2 * PER_FAMILY
    });
    let mut changes = String::new();
    for pass in 0..PASSES {
        let state = if pass % 2 == 0 { "stale" } else { "reachable" };
        for i in 0..PER_FAMILY {
            for (ip, m) in [(v4(i), mac(4, i)), (v6(i), mac(6, i))] {
                changes.push_str(&format!(
                    "neigh change {ip} lladdr {m} dev lan0 nud {state}\n"
                ));
            }
        }
    }
    assert_eq!(changes.lines().count(), PASSES * 2 * PER_FAMILY);
    let churn = phase(&lab, "churn.batch", &changes, |t| {
        ours(t).count() == 2 * PER_FAMILY
            && ours(t).all(|n| n.state == world::NeighbourState::Reachable)
    });
    // Leave nothing in the global table for the next run.
    lab.router.run(["ip", "neigh", "flush", "dev", "lan0"]);
    (idle, appear, churn, nft_peer(&lab))
}

/// The peer of a reconcile: one `nft -f` of the daemon's table as it is
/// (under another name, beside it), timed.
fn nft_peer(lab: &Lab) -> Duration {
    let text = lab
        .router
        .run(["nft", "list", "table", "inet", "wasmwall"])
        .stdout;
    let file = lab.dir.path().join("peer.nft");
    fs::write(
        &file,
        text.replacen("table inet wasmwall", "table inet neighpeer", 1),
    )
    .unwrap();
    let started = Instant::now();
    lab.router
        .run(["nft", "-f", file.to_str().expect("utf-8 path")]);
    let took = started.elapsed();
    lab.router
        .run(["nft", "delete", "table", "inet", "neighpeer"]);
    took
}

/// The neighbours this bench made (the kernel may hold others of its own).
fn ours(table: &[Neighbour]) -> impl Iterator<Item = &Neighbour> {
    table
        .iter()
        .filter(|n| n.iface == "lan0" && n.mac.starts_with("02:00:00:0"))
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mem_available_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    require_root();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("binary: {}", release_bin().display());
    println!("policy: {}", policy_wasm("home-router").display());
    println!(
        "load: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let available = mem_available_kib();
    let mut results = Vec::new();
    for run in 0..runs {
        let r = run_once();
        eprintln!(
            "run {run}: idle {:?} appear {:?} churn {:?} nft -f {:?}",
            r.0, r.1, r.2, r.3
        );
        results.push(r);
    }
    println!(
        "MemAvailable: {} MiB before, {} MiB after",
        available / 1024,
        mem_available_kib() / 1024
    );
    println!(
        "\n| phase ({runs} runs, medians) | `ip -batch` | daemon caught up | ratio | reconciles | events | overruns | VmRSS after | VmHWM after |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let idle = (
        median(results.iter().map(|r| r.0.0).collect()),
        median(results.iter().map(|r| r.0.1).collect()),
    );
    println!(
        "| daemon started, no neighbours | | | | | | | {:.1} MiB | {:.1} MiB |",
        idle.0 as f64 / 1024.0,
        idle.1 as f64 / 1024.0
    );
    for (label, second) in [
        ("1,000 neighbours appear", false),
        ("10,000 state changes", true),
    ] {
        let phases: Vec<Phase> = results
            .iter()
            .map(|r| if second { r.2 } else { r.1 })
            .collect();
        let batch = median(phases.iter().map(|p| p.batch).collect());
        let caught = median(phases.iter().map(|p| p.caught_up).collect());
        println!(
            "| {label} | {} | {} | {:.1}x | {} | {} | {} | {:.1} MiB | {:.1} MiB |",
            ms(batch),
            ms(caught),
            caught.as_secs_f64() / batch.as_secs_f64(),
            median(phases.iter().map(|p| p.reconciles).collect()),
            median(phases.iter().map(|p| p.events).collect()),
            median(phases.iter().map(|p| p.overruns).collect()),
            median(phases.iter().map(|p| p.kib_after.0).collect()) as f64 / 1024.0,
            median(phases.iter().map(|p| p.kib_after.1).collect()) as f64 / 1024.0,
        );
    }
    let peer = median(results.iter().map(|r| r.3).collect());
    println!(
        "\npeer: one `nft -f` of the daemon's whole table (home-router, beside it): {}",
        ms(peer)
    );
}
