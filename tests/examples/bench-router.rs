//! The home-router policy's full ruleset, applied and read back by wasmwall
//! side by side with `nft -f` and `nft list ruleset` of the same text: a
//! home network of 1,000 leases with 100 port forwards, 50 blocked hosts
//! and 20 hosts blocked at night, the guest network and the WAN up.
//!
//! Each measurement runs in a fresh network namespace of its own thread
//! (never the host's ruleset). wasmwall's apply is one batch built from the
//! policy's validated answer (`plan::replace_table`), its read-back one
//! observation of the table; `nft -f` loads the text `wasmwall eval` prints
//! for the same answer (the table as nft lists it), `nft list ruleset`
//! lists it.
//!
//! Run (as root; release build):
//!   cargo run --release -p wasmwall-e2e --example bench-router
//! `BENCH_RUNS` (default 7) sets the runs per figure (medians).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmwall::config::PolicyConfig;
use wasmwall::engine::evaluate_policy;
use wasmwall::ir::PolicyRules;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::{self, DesiredTable};
use wasmwall::sandbox::{Limits, PolicyEngine};
use wasmwall::validate;
use wasmwall::world::{Event, Interface, Lease, WorldState};
use wasmwall_e2e::{policy_wasm, require_root, temp_dir};

const TABLE: &str = "wasmwall";
const LEASES: usize = 1000;
const FORWARDS: usize = 100;
const BLOCKED: usize = 50;
const BLOCKED_AT_NIGHT: usize = 20;

fn interface(name: &str, index: u32, address: &str) -> Interface {
    Interface {
        name: name.into(),
        index,
        up: true,
        mac: None,
        addresses: vec![address.into()],
    }
}

/// The home network: its interfaces, and a lease for each host `host-<i>`.
fn world() -> WorldState {
    let leases = (0..LEASES)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + 256 + 10 + i as u32);
            Lease {
                mac: format!("52:54:00:00:{:02x}:{:02x}", i / 256, i % 256),
                ip: ip.to_string(),
                hostname: Some(format!("host-{i}")),
                iface: "lan0".into(),
                expires: None,
            }
        })
        .collect();
    WorldState {
        interfaces: vec![
            interface("guest0", 4, "192.168.100.1/24"),
            interface("lan0", 2, "192.168.0.1/16"),
            interface("wan0", 3, "203.0.113.1/24"),
        ],
        leases,
        ..WorldState::default()
    }
}

fn config() -> Vec<(String, String)> {
    let list = |items: Vec<String>| items.join(",");
    let forwards = (0..FORWARDS)
        .map(|i| format!("tcp {} host-{i} 80", 10000 + i))
        .collect();
    let blocked = (FORWARDS..FORWARDS + BLOCKED)
        .map(|i| format!("host-{i}"))
        .collect();
    let night = (FORWARDS + BLOCKED..FORWARDS + BLOCKED + BLOCKED_AT_NIGHT)
        .map(|i| format!("host-{i} 21:00-07:00"))
        .collect();
    vec![
        ("lan".into(), "lan0".into()),
        ("wan".into(), "wan0".into()),
        ("guest".into(), "guest0".into()),
        ("forward".into(), list(forwards)),
        ("block".into(), list(blocked)),
        ("block_at".into(), list(night)),
    ]
}

/// Runs `f` on a new thread inside a new network namespace of its own.
fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare has no memory-safety preconditions.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root");
            f()
        })
        .join()
        .expect("the bench thread panicked")
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn nft(args: &[&str]) {
    let status = Command::new("nft")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run nft");
    assert!(status.success(), "nft {args:?} failed");
}

fn main() {
    require_root();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let engine = PolicyEngine::new(Limits::default()).expect("engine");
    let policy = engine
        .load("home-router", &policy_wasm("home-router"))
        .expect("load the home-router policy");
    let policy_config = PolicyConfig {
        name: "home-router".into(),
        path: Default::default(),
        priority_offset: 0,
        config: config(),
        files: Vec::new(),
    };
    let world = world();
    let rules = evaluate_policy(
        &policy,
        &policy_config,
        &validate::Options::default(),
        &world.to_wit(),
        &Event::Startup.to_wit(),
    )
    .expect("the home-router's answer");
    let policies = [PolicyRules {
        policy: "home-router".into(),
        rules,
    }];
    let desired = DesiredTable::from_policies(&policies);
    let text = plan::table_text(TABLE, &policies);
    let dir = temp_dir();
    let script = dir.path().join("home-router.nft");
    std::fs::write(&script, &text).unwrap();
    let script = script.to_str().unwrap().to_string();

    let mut apply = Vec::new();
    let mut observe = Vec::new();
    let mut messages = 0;
    for _ in 0..runs {
        let (a, o, m) = in_fresh_netns(|| {
            let mut kernel = Netlink::new().expect("netlink");
            let started = Instant::now();
            let report = kernel
                .apply(&plan::replace_table(TABLE, &desired), None)
                .expect("apply");
            let a = started.elapsed();
            let started = Instant::now();
            let seen = kernel.observe(TABLE).expect("observe");
            let o = started.elapsed();
            let again = plan::plan(TABLE, &desired, seen.table.as_ref()).expect("plan");
            assert!(again.ops.is_empty(), "read back otherwise: {:?}", again.ops);
            (a, o, report.messages)
        });
        apply.push(a);
        observe.push(o);
        messages = m;
    }
    let mut load = Vec::new();
    let mut list = Vec::new();
    for _ in 0..runs {
        let (l, s) = in_fresh_netns(|| {
            let started = Instant::now();
            nft(&["-f", &script]);
            let l = started.elapsed();
            let started = Instant::now();
            nft(&["list", "ruleset"]);
            (l, started.elapsed())
        });
        load.push(l);
        list.push(s);
    }
    let (apply, observe, load, list) = (median(apply), median(observe), median(load), median(list));
    let rules: usize = policies[0].rules.rule_count();
    let elements: usize = text.matches(',').count();
    println!(
        "| ruleset | rules | messages | wasmwall apply | `nft -f` | ratio | wasmwall read-back | `nft list ruleset` | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| home-router: {LEASES} leases, {FORWARDS} forwards, {BLOCKED} blocked, {BLOCKED_AT_NIGHT} blocked at night | {rules} | {messages} | {} | {} | {:.1}x | {} | {} | {:.1}x |",
        ms(apply),
        ms(load),
        load.as_secs_f64() / apply.as_secs_f64(),
        ms(observe),
        ms(list),
        list.as_secs_f64() / observe.as_secs_f64()
    );
    println!();
    println!(
        "Medians of {runs} runs; the table's text is {} bytes with about {elements} list items.",
        text.len()
    );
}
