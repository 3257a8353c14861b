//! Measures the daemon (`wasmwall run`) with the home-router policy, in a
//! network namespace of its own:
//!
//! - event -> kernel latency: from a lease event sent on the control socket
//!   until the kernel holds exactly the rules the policy wants for the new
//!   state (this process polls the nftables generation, reads the table when
//!   it moves and plans against it: an empty plan means live), with 10 and
//!   1,000 other leases held;
//! - hot swap: from the rename of a new policy file into place until the
//!   kernel holds that version's rules, for versions seen before (compile
//!   cache) and for never-seen ones (compiled at the swap);
//! - the daemon's resident memory with two policies loaded.
//!
//! Run (as root; release builds):
//!   cargo build --release -p wasmwall
//!   cargo run --release -p wasmwall-e2e --example bench-daemon
//! `WASMWALL_BIN` picks another binary; `BENCH_SAMPLES` (default 300) the
//! number of lease events per size; `BENCH_POLICY` another router policy
//! for the latency and memory figures (the 0.1.0 home-router, with linear
//! forward rules: `tests/fixtures/v0.1/home-router/home-router.wasm`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmwall::config::Config;
use wasmwall::daemon::control::{self, LeaseRequest, Request};
use wasmwall::daemon::leases::{LeaseAction, Leases};
use wasmwall::engine::Policies;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::{self, DesiredTable};
use wasmwall::world::{self, Event, Interface, Lease, WorldState};
use wasmwall_e2e::{
    Child, Netns, compile_cache_dir, files_in, policy_wasm, release_bin, require_root, temp_dir,
    toml_path, wait_until,
};

const TABLE: &str = "wasmwall";
const QUIET: Duration = Duration::from_millis(25);

/// The daemon's control socket in the lab's state directory, whatever the
/// daemon named it (after the namespace it runs in, or `host.` for a
/// version that does not find that name).
fn socket_in(dir: &Path) -> Option<PathBuf> {
    files_in(&dir.join("state"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "sock"))
}

/// The router policy the latency and memory figures run: home-router, or
/// the component `BENCH_POLICY` names (e.g. the 0.1.0 fixture, for the
/// figures of the linear rules side by side).
fn router_policy() -> PathBuf {
    std::env::var_os("BENCH_POLICY").map_or_else(|| policy_wasm("home-router"), PathBuf::from)
}

struct Lab {
    router: Netns,
    dir: wasmwall_e2e::TempDir,
    config_path: PathBuf,
    policy_path: PathBuf,
    daemon: Child,
}

impl Lab {
    /// A router with lan0 and wan0 up, running home-router (from a copy in
    /// the lab's directory, so that it can be swapped) with a port forward
    /// to host "target"; `extra_policy` adds port-forward as a second policy.
    fn start(extra_policy: bool, cache: bool) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("bench");
        router.add_interface("lan0", "192.168.1.1/24");
        router.add_interface("wan0", "203.0.113.1/24");
        let policy_path = dir.path().join("home-router.wasm");
        fs::copy(router_policy(), &policy_path).unwrap();
        let mut toml = format!(
            "state_dir = {state}\nreconcile_interval_s = 0\n\
             [leases]\nmax = 100000\n\
             [cache]\ndir = {cache}\n\n\
             [[policy]]\nname = \"router\"\npath = {path}\n\
             [policy.config]\nlan = \"lan0\"\nwan = \"wan0\"\nforward = [\"tcp 8080 target 80\"]\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            path = toml_path(&policy_path),
        );
        if extra_policy {
            toml.push_str(&format!(
                "\n[[policy]]\nname = \"pf\"\npath = {}\n[policy.config]\nlan_interface = \"lan0\"\n",
                toml_path(&policy_wasm("port-forward"))
            ));
        }
        let config_path = dir.path().join("wasmwall.toml");
        fs::write(&config_path, toml).unwrap();
        let mut cmd = router.command(release_bin());
        // Info: one line per reconcile, with the messages it sent.
        cmd.args(["run", "--log", "info", "--config"])
            .arg(&config_path);
        if !cache {
            cmd.arg("--no-cache");
        }
        let mut daemon = Child::spawn(&mut cmd, dir.path(), "wasmwall-run");
        wait_until("the daemon's socket", Duration::from_secs(60), || {
            if let Some(s) = daemon.try_status() {
                panic!("the daemon exited: {s}\n{daemon}");
            }
            match socket_in(dir.path()) {
                Some(_) => Ok(()),
                None => Err("not yet".to_string()),
            }
        });
        Lab {
            router,
            dir,
            config_path,
            policy_path,
            daemon,
        }
    }

    fn socket(&self) -> PathBuf {
        socket_in(self.dir.path()).expect("the daemon's socket")
    }

    fn config(&self) -> Config {
        Config::load(&self.config_path).expect("the bench config")
    }
}

impl Drop for Lab {
    /// Stops the daemon as an operator would (SIGTERM), so that it cleans up
    /// after itself: its table, its sysctls, its lock file under /run.
    fn drop(&mut self) {
        if !self.daemon.terminate_within(Duration::from_secs(10)) {
            eprintln!(
                "the daemon did not stop within 10 s of SIGTERM\n{}",
                self.daemon
            );
        }
    }
}

fn lease(i: usize, hostname: &str) -> Lease {
    Lease {
        mac: format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ),
        ip: format!("10.{}.{}.{}", 10 + i / 62500, (i / 250) % 250, i % 250 + 1),
        hostname: Some(hostname.to_string()),
        iface: "lan0".into(),
        expires: None,
    }
}

fn send(socket: &Path, action: &str, l: &Lease, wait: bool) {
    let request = Request {
        lease: Some(LeaseRequest {
            action: action.into(),
            mac: Some(l.mac.clone()),
            ip: l.ip.clone(),
            hostname: l.hostname.clone(),
            iface: Some(l.iface.clone()),
            expires: None,
            ..LeaseRequest::default()
        }),
        status: None,
        confirm: None,
        wait,
    };
    let answer = control::request(socket, &request, Duration::from_secs(30)).expect("request");
    assert!(answer.ok, "{answer:?}");
}

thread_local! {
    /// How long the last check that found the kernel live took (reading the
    /// table and planning): part of each figure that is this bench's own.
    static LAST_CHECK: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Waits until the kernel holds exactly `desired`; returns when it saw it.
fn until_live(kernel: &mut Netlink, desired: &DesiredTable, deadline: Duration) -> Instant {
    let started = Instant::now();
    let mut seen = u32::MAX;
    loop {
        let generation = kernel.generation().expect("generation");
        if generation != seen {
            let reading = Instant::now();
            let observed = kernel.observe(TABLE).expect("observe");
            seen = observed.generation;
            let tx = plan::plan(TABLE, desired, observed.table.as_ref()).expect("owned table");
            if tx.is_empty() {
                LAST_CHECK.with(|c| c.set(reading.elapsed()));
                return Instant::now();
            }
        }
        assert!(started.elapsed() < deadline, "not live within {deadline:?}");
        std::thread::sleep(Duration::from_micros(20));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn interfaces() -> Vec<Interface> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(world::read_interfaces())
        .expect("interfaces")
}

fn latency(background: usize, samples: usize) {
    let lab = Lab::start(false, true);
    let socket = lab.socket();
    let mut leases = Leases::new(1_000_000);
    for i in 0..background {
        let l = lease(i, &format!("h{i}"));
        send(&socket, "add", &l, i + 1 == background);
        leases.apply(LeaseAction::Add, l, 0).unwrap();
    }
    let config = lab.config();
    let (adds, dels) = lab.router.enter(|| {
        let policies = Policies::compile(&config).expect("policies");
        let ifaces = interfaces();
        let mut kernel = Netlink::new().expect("netlink");
        let mut adds = Vec::new();
        let mut dels = Vec::new();
        let mut evaluations = Vec::new();
        let mut checks = Vec::new();
        for s in 0..samples {
            let target = lease(500_000 + s, "target");
            for (action, list) in [(LeaseAction::Add, &mut adds), (LeaseAction::Del, &mut dels)] {
                let event = leases
                    .apply(action, target.clone(), 0)
                    .unwrap()
                    .expect("a change");
                let world = WorldState {
                    interfaces: ifaces.clone(),
                    leases: leases.list(),
                    ..WorldState::default()
                };
                let evaluating = Instant::now();
                let evaluation = policies.evaluate(&world, &event);
                evaluations.push(evaluating.elapsed());
                let desired = evaluation.desired().clone();
                // Let the daemon's burst window close: this measures a lone event.
                std::thread::sleep(QUIET);
                let sent = Instant::now();
                let word = if action == LeaseAction::Add {
                    "add"
                } else {
                    "del"
                };
                send(&socket, word, &target, false);
                let live = until_live(&mut kernel, &desired, Duration::from_secs(10));
                list.push(live - sent);
                checks.push(LAST_CHECK.with(|c| c.get()));
            }
        }
        checks.sort();
        eprintln!(
            "{background} leases: this bench's own check that found the kernel live (read the \
             table, plan), inside each figure: p50 {} p99 {}",
            ms(percentile(&checks, 0.5)),
            ms(percentile(&checks, 0.99))
        );
        evaluations.sort();
        eprintln!(
            "{background} leases: one evaluation of the policy (in this process, as the daemon \
             does it: sandbox, validation, hashing) p50 {} p99 {}",
            ms(percentile(&evaluations, 0.5)),
            ms(percentile(&evaluations, 0.99))
        );
        (adds, dels)
    });
    // What each lease event sent the kernel: the reconciles the events
    // caused (the background leases' come first and are left out).
    let log = lab.daemon.stderr();
    let batches: Vec<(u64, u64, String)> = log
        .lines()
        .filter(|l| l.contains("changes applied"))
        .filter_map(|l| {
            let messages = logged(l, "messages=")?.parse().ok()?;
            let elapsed = logged(l, "elapsed_us=")?.parse().ok()?;
            let changes = l[l.find("changes=")? + 8..l.find(" read_table=")?].to_string();
            Some((messages, elapsed, changes))
        })
        .collect();
    let ours = &batches[batches.len().saturating_sub(2 * samples)..];
    if let (Some(min), Some(max)) = (
        ours.iter().map(|b| b.0).min(),
        ours.iter().map(|b| b.0).max(),
    ) {
        let mut inside: Vec<Duration> = ours.iter().map(|b| Duration::from_micros(b.1)).collect();
        inside.sort();
        eprintln!(
            "{background} leases: {} lease reconciles, {min}-{max} messages each (e.g. {:?}, {:?}); \
             the daemon's own reconcile (its log's elapsed_us) p50 {} p99 {}",
            ours.len(),
            ours.first().map_or("", |b| b.2.as_str()),
            ours.last().map_or("", |b| b.2.as_str()),
            ms(percentile(&inside, 0.5)),
            ms(percentile(&inside, 0.99)),
        );
    }
    for (what, mut list) in [
        ("lease added -> forward live", adds),
        ("lease released -> forward gone", dels),
    ] {
        list.sort();
        println!(
            "| {background} | {what} | {} | {} | {} | {} |",
            list.len(),
            ms(percentile(&list, 0.5)),
            ms(percentile(&list, 0.99)),
            ms(*list.last().unwrap())
        );
    }
    drop(lab);
}

/// The bare value of `key` (e.g. `messages=`) in a log line.
fn logged<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    Some(rest.split_whitespace().next()?.trim_end_matches(','))
}

/// A component with a custom section appended: the same code, other bytes
/// (so the compile cache has never seen it).
fn with_custom_section(wasm: &[u8], tag: usize) -> Vec<u8> {
    let name = b"wasmwall-bench";
    let payload = tag.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

fn hot_swap(swaps: usize) {
    let versions = [
        fs::read(policy_wasm("home-router")).unwrap(),
        fs::read(policy_wasm("home-router-counters")).unwrap(),
    ];
    for (label, cache, fresh) in [
        ("version seen before (compile cache)", true, false),
        ("never-seen version (compiled at the swap)", false, true),
    ] {
        let lab = Lab::start(false, cache);
        let config = lab.config();
        let tmp = lab.dir.path().join("new.wasm");
        let times = lab.router.enter(|| {
            let ifaces = interfaces();
            let world = WorldState {
                interfaces: ifaces,
                ..WorldState::default()
            };
            // Each version's rules, evaluated here on the same state.
            let desired: Vec<DesiredTable> = versions
                .iter()
                .enumerate()
                .map(|(v, bytes)| {
                    let path = lab.dir.path().join(format!("v{v}.wasm"));
                    fs::write(&path, bytes).unwrap();
                    let mut c = config.clone();
                    c.policies[0].path = path;
                    c.cache = wasmwall::sandbox::cache::CacheSettings::disabled();
                    let p = Policies::compile(&c).unwrap();
                    p.evaluate(&world, &Event::Startup).desired().clone()
                })
                .collect();
            let mut kernel = Netlink::new().unwrap();
            let mut times = Vec::new();
            for i in 0..swaps {
                let v = (i + 1) % 2;
                let bytes = if fresh {
                    with_custom_section(&versions[v], i)
                } else {
                    versions[v].clone()
                };
                fs::write(&tmp, &bytes).unwrap();
                std::thread::sleep(QUIET);
                let written = Instant::now();
                fs::rename(&tmp, &lab.policy_path).unwrap();
                let live = until_live(&mut kernel, &desired[v], Duration::from_secs(30));
                times.push(live - written);
            }
            times
        });
        // Before the first swap every version was compiled once (cached
        // run): the first two swaps of that run may include a compile.
        let mut sorted = times.clone();
        sorted.sort();
        println!(
            "| {label} | {} | {} | {} | {} |",
            sorted.len(),
            ms(percentile(&sorted, 0.5)),
            ms(percentile(&sorted, 0.9)),
            ms(*sorted.last().unwrap())
        );
    }
}

fn memory() {
    let lab = Lab::start(true, true);
    let kib = |field: &str| lab.daemon.memory_kib(field);
    std::thread::sleep(Duration::from_millis(500));
    let start = (kib("VmRSS"), kib("VmHWM"));
    let socket = lab.socket();
    for i in 0..1000 {
        send(&socket, "add", &lease(i, &format!("h{i}")), i == 999);
    }
    let leased = (kib("VmRSS"), kib("VmHWM"));
    println!(
        "| two policies (home-router, port-forward), no lease | {} MiB | {} MiB |",
        start.0 / 1024,
        start.1 / 1024
    );
    println!(
        "| the same with 1,000 leases | {} MiB | {} MiB |",
        leased.0 / 1024,
        leased.1 / 1024
    );
}

fn main() {
    require_root();
    let samples: usize = std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    println!("binary: {}", release_bin().display());
    println!("policy: {}\n", router_policy().display());
    println!("| leases held | event | samples | p50 | p99 | max |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    for background in [10, 1000] {
        latency(background, samples);
    }
    println!(
        "\n| hot swap (Rust home-router, two versions alternating) | swaps | p50 | p90 | max |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    hot_swap(20);
    println!("\n| daemon | resident (VmRSS) | peak (VmHWM) |");
    println!("| --- | ---: | ---: |");
    memory();
}
