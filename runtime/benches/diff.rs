//! The diff engine against the real kernel, side by side with `nft`.
//!
//! Run as root: `cargo bench -p wasmwall --bench diff` (optionally followed
//! by `-- SIZES...`, default `1000 10000 50000`). Every measurement runs in
//! a fresh network namespace private to this process's thread, so the
//! host's ruleset is never touched. Prints a Markdown table for
//! BENCHMARKS.md.
//!
//! Ruleset for size N: N forward rules (`iifname "lan0" ip saddr A tcp dport
//! P accept`), N/10 DNAT rules (`iifname "wan0" tcp dport P dnat ip to
//! B:80`), and a 1,000-address set of leases used by one more rule. The same
//! rules, rendered as nft text, go through `nft -f`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmwall::engine::Reconciler;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::DesiredTable;
use wasmwall::snapshot::SnapshotFile;

const TABLE: &str = "wasmwall";
const LEASES: u32 = 1000;
/// Repetitions of each cheap measurement; the median is reported.
const RUNS: usize = 7;
/// Repetitions of each initial apply (each in a fresh namespace).
const APPLY_RUNS: usize = 3;

fn forward_rule(i: u32) -> Rule {
    Rule {
        matches: vec![
            Match::Iifname {
                name: "lan0".into(),
                negate: false,
            },
            Match::Addr {
                dir: Dir::Source,
                net: ipnetwork::IpNetwork::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32)
                    .unwrap(),
                negate: false,
            },
            port(1000 + (i % 60_000) as u16),
        ],
        statements: vec![],
        action: Action::Accept,
        comment: None,
        cut_flows: false,
    }
}

fn dnat_rule(i: u32) -> Rule {
    Rule {
        matches: vec![
            Match::Iifname {
                name: "wan0".into(),
                negate: false,
            },
            port(1 + (i % 65_000) as u16),
        ],
        statements: vec![],
        action: Action::Dnat(NatTarget::to(
            IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + (i % 60_000) + 1)),
            Some(80),
        )),
        comment: None,
        cut_flows: false,
    }
}

fn port(p: u16) -> Match {
    Match::Port {
        dir: Dir::Destination,
        proto: Transport::Tcp,
        first: p,
        last: p,
        negate: false,
    }
}

/// The ruleset of size `n`; `changed` replaces forward rule `n / 2`, and
/// `extra_lease` adds one address to the set.
fn ruleset(n: u32, changed: bool, extra_lease: bool) -> Vec<PolicyRules> {
    let mut forward: Vec<Rule> = (0..n)
        .map(|i| {
            if changed && i == n / 2 {
                forward_rule(n + 7)
            } else {
                forward_rule(i)
            }
        })
        .collect();
    forward.push(Rule {
        matches: vec![Match::AddrInSet {
            dir: Dir::Source,
            family: Family::V4,
            set: "leases".into(),
        }],
        statements: vec![],
        action: Action::Accept,
        comment: None,
        cut_flows: false,
    });
    let leases = LEASES + u32::from(extra_lease);
    vec![PolicyRules {
        policy: "bench".into(),
        rules: Ruleset {
            chains: vec![
                Chain {
                    name: "forward".into(),
                    base: Some(BaseChain {
                        hook: Hook::Forward,
                        chain_type: ChainType::Filter,
                        priority: 0,
                        policy: ChainPolicy::Drop,
                    }),
                    rules: forward,
                },
                Chain {
                    name: "prerouting".into(),
                    base: Some(BaseChain {
                        hook: Hook::Prerouting,
                        chain_type: ChainType::Nat,
                        priority: -100,
                        policy: ChainPolicy::Accept,
                    }),
                    rules: (0..n / 10).map(dnat_rule).collect(),
                },
            ],
            sets: vec![NamedSet {
                name: "leases".into(),
                elements: SetElements::ipv4((0..leases).map(|i| Ipv4Addr::from(0xac10_0000 + i))),
            }],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: vec![],
        },
    }]
}

/// The same ruleset as an nft script (its own table name).
fn nft_script(policies: &[PolicyRules]) -> String {
    let mut out = String::from("table inet nftbench {\n");
    let r = &policies[0].rules;
    for set in &r.sets {
        let _ = writeln!(
            out,
            "  set {} {{ type {}; elements = {{ {} }} }}",
            set.name,
            set.elements.type_name(),
            set.elements.texts().join(", ")
        );
    }
    for chain in &r.chains {
        let b = chain.base.expect("base chains only");
        let _ = writeln!(
            out,
            "  chain {} {{\n    type {} hook {} priority {}; policy {};",
            chain.name,
            b.chain_type.as_str(),
            b.hook.as_str(),
            b.priority,
            b.policy.as_str()
        );
        for rule in &chain.rules {
            let _ = writeln!(out, "    {}", rule);
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
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

/// CPU time of the calling thread: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage writes into the struct we pass.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    };
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (d(usage.ru_utime), d(usage.ru_stime))
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed(), out)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn nft(args: &[&str], stdin: Option<&str>) {
    let mut cmd = Command::new("nft");
    cmd.args(args).stdout(Stdio::null());
    let status = match stdin {
        None => cmd.status(),
        Some(text) => {
            let path =
                std::env::temp_dir().join(format!("wasmwall-bench-{}.nft", std::process::id()));
            std::fs::write(&path, text).expect("write the nft script");
            let status = Command::new("nft")
                .arg("-f")
                .arg(&path)
                .stdout(Stdio::null())
                .status();
            let _ = std::fs::remove_file(&path);
            status
        }
    };
    assert!(status.expect("run nft").success(), "nft {args:?} failed");
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

struct Row {
    n: u32,
    apply: Duration,
    apply_cpu: (Duration, Duration),
    nft_f: Duration,
    observe: Duration,
    observe_user: Duration,
    observe_sys: Duration,
    rustables: Duration,
    nft_list: Duration,
    noop_cold: Duration,
    noop_snapshot: Duration,
    noop_warm: Duration,
    hash: Duration,
    one_rule: Duration,
    one_rule_messages: usize,
    one_element: Duration,
    one_element_messages: usize,
}

fn measure(n: u32) -> Row {
    let base = ruleset(n, false, false);
    let desired = DesiredTable::from_policies(&base);
    let script = nft_script(&base);

    let mut apply_cpu = (Duration::ZERO, Duration::ZERO);
    let apply = median(
        (0..APPLY_RUNS)
            .map(|_| {
                let (d, user, sys) = in_fresh_netns(|| {
                    let mut k = Netlink::new().unwrap();
                    let (user0, sys0) = thread_cpu();
                    let (d, r) = timed(|| Reconciler::new(TABLE).reconcile(&mut k, &desired));
                    let (user1, sys1) = thread_cpu();
                    r.expect("initial apply");
                    (d, user1 - user0, sys1 - sys0)
                });
                apply_cpu.0 += user / APPLY_RUNS as u32;
                apply_cpu.1 += sys / APPLY_RUNS as u32;
                d
            })
            .collect(),
    );
    // `nft -f`, then `nft list ruleset` of that same ruleset, each in a
    // namespace holding only it.
    let (nft_f, nft_list): (Vec<Duration>, Vec<Duration>) = (0..APPLY_RUNS)
        .map(|_| {
            in_fresh_netns(|| {
                let load = timed(|| nft(&[], Some(&script))).0;
                let list = timed(|| nft(&["list", "ruleset"], None)).0;
                (load, list)
            })
        })
        .unzip();
    let (nft_f, nft_list) = (median(nft_f), median(nft_list));

    in_fresh_netns(|| {
        let mut k = Netlink::new().unwrap();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let state = dir.path().join("netns-bench.wasmwall.json");
        let mut rec = Reconciler::new(TABLE).with_snapshot(SnapshotFile::beside(&state, true));
        rec.reconcile(&mut k, &desired).expect("apply");

        let (user0, sys0) = thread_cpu();
        let observe = median(
            (0..RUNS)
                .map(|_| timed(|| k.observe(TABLE).expect("observe")).0)
                .collect(),
        );
        let (user1, sys1) = thread_cpu();
        let observe_user = (user1 - user0) / RUNS as u32;
        let observe_sys = (sys1 - sys0) / RUNS as u32;
        // rustables' own listing of the forward chain (rules only).
        let table = rustables::Table::new(rustables::ProtocolFamily::Inet).with_name(TABLE);
        let chain = rustables::Chain::new(&table).with_name("bench/forward");
        let rustables = median(
            (0..3)
                .map(|_| {
                    let (d, r) = timed(|| rustables::list_rules_for_chain(&chain));
                    assert_eq!(r.expect("rustables lists the chain").len(), n as usize + 1);
                    d
                })
                .collect(),
        );

        // No-op: a new reconciler reads the whole table; a running one
        // checks the generation. Both plan from the evaluated rules (the
        // hashing of every rule is timed separately).
        let hash = median(
            (0..RUNS)
                .map(|_| timed(|| DesiredTable::from_policies(&base)).0)
                .collect(),
        );
        let noop_cold = median(
            (0..RUNS)
                .map(|_| {
                    let (d, r) = timed(|| Reconciler::new(TABLE).reconcile(&mut k, &desired));
                    assert_eq!(r.unwrap().report.messages, 0);
                    d
                })
                .collect(),
        );
        rec.reconcile(&mut k, &desired).unwrap();
        // A new process that finds a current snapshot beside the state file.
        let noop_snapshot = median(
            (0..RUNS)
                .map(|_| {
                    let (d, r) = timed(|| {
                        Reconciler::new(TABLE)
                            .with_snapshot(SnapshotFile::beside(&state, false))
                            .reconcile(&mut k, &desired)
                    });
                    let r = r.unwrap();
                    assert_eq!(r.report.messages, 0);
                    assert!(!r.read_table, "the snapshot is current");
                    d
                })
                .collect(),
        );
        let noop_warm = median(
            (0..RUNS)
                .map(|_| {
                    let (d, r) = timed(|| rec.reconcile(&mut k, &desired));
                    assert_eq!(r.unwrap().report.messages, 0);
                    d
                })
                .collect(),
        );

        // As `wasmwall run` does after its start: the table is kept in
        // memory only.
        rec.stop_saving_snapshot();
        // One rule changed, back and forth; one lease added and removed.
        let changed = DesiredTable::from_policies(&ruleset(n, true, false));
        let more = DesiredTable::from_policies(&ruleset(n, false, true));
        let mut toggle = |to: &DesiredTable, back: &DesiredTable| {
            let mut times = Vec::new();
            let mut messages = 0;
            for _ in 0..RUNS {
                let (d, r) = timed(|| rec.reconcile(&mut k, to));
                messages = r.unwrap().report.messages;
                times.push(d);
                rec.reconcile(&mut k, back).unwrap();
            }
            (median(times), messages)
        };
        let (one_rule, one_rule_messages) = toggle(&changed, &desired);
        let (one_element, one_element_messages) = toggle(&more, &desired);
        Row {
            n,
            apply,
            apply_cpu,
            nft_f,
            observe,
            observe_user,
            observe_sys,
            rustables,
            nft_list,
            noop_cold,
            noop_snapshot,
            noop_warm,
            hash,
            one_rule,
            one_rule_messages,
            one_element,
            one_element_messages,
        }
    })
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("sizes are numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000, 50_000]
    } else {
        sizes
    };
    println!(
        "| forward rules (+10% DNAT, +1 set of {LEASES}) | initial apply (user / kernel CPU) | `nft -f` | speed-up | observe (user / kernel CPU) | `nft list ruleset` | ratio | rustables `list_rules_for_chain` | no-op, cold (read + plan) | no-op, new process with a current snapshot | no-op, warm (generation + plan) | hashing the desired rules | one rule changed (msgs) | one element added (msgs) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let r = measure(n);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "| {} | {} ({} / {}) | {} | {:.1}x | {} ({} / {}) | {} | {:.1}x faster | {} | {} | {} | {} | {} | {} ({}) | {} ({}) |",
            r.n,
            ms(r.apply),
            ms(r.apply_cpu.0),
            ms(r.apply_cpu.1),
            ms(r.nft_f),
            ratio(r.nft_f, r.apply),
            ms(r.observe),
            ms(r.observe_user),
            ms(r.observe_sys),
            ms(r.nft_list),
            ratio(r.nft_list, r.observe),
            ms(r.rustables),
            ms(r.noop_cold),
            ms(r.noop_snapshot),
            ms(r.noop_warm),
            ms(r.hash),
            ms(r.one_rule),
            r.one_rule_messages,
            ms(r.one_element),
            r.one_element_messages,
        );
    }
}
