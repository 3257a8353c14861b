//! Measures the kernel memory the largest batch the default budgets allow
//! costs: the `hostile` test policy's `budget` answer (every default budget
//! of the table at once: 20,000 rules of 24 matches with a counter, a
//! 127-byte log prefix and a 127-byte comment, 2,000 chains of which 64
//! base chains on each hook, 1,000 sets, 200,000 IPv6 elements; the
//! policy's own limits raised to the table's), in a network namespace of
//! its own. For
//! each step: unreclaimable slab (`SUnreclaim`, where nf_tables' objects
//! and notifications live), all slab, and `MemAvailable` (which also counts
//! the process that sends the batch), before, at the peak (sampled every
//! 2 ms) and after; and the time the step took.
//!
//! Steps: `wasmwall apply` into an empty table; `apply` of another answer
//! of the same size (every object replaced: old and new are both held
//! until the commit ends); `cleanup`; `nft -f` of the first answer's
//! listing (the peer, side by side); `wasmwall run` starting with it and
//! stopping (its monitor listens to nftables notifications, and is
//! unsubscribed during its own batches); `apply` with the elements in
//! sets of 4,096 ports (the kernel's slowest sets to load); and `apply`
//! while a foreign
//! `nft monitor` listens, at `KM_LISTENER_PERCENT` (default 10) percent of
//! the budget, since a listener makes the kernel build a notification of
//! about 8 KiB per object. Last, the kernel's own costs with `nft -f`
//! alone: sets of 4,096 to 20,000 ports (loaded in the square of their
//! size), 20,000 elements with and without a listener, and 20,000 rules
//! with and without echoes.
//!
//! Run (as root; release builds):
//!   cargo build --release -p wasmwall
//!   cargo run --release -p wasmwall-e2e --example kernel-memory
//! The binary is the one built beside this example (target/release with
//! `--release`); `WASMWALL_BIN` picks another; `KM_PERCENT` (default 100) scales
//! the answer. Other processes on the machine move these figures: run it
//! on a quiet machine, and more than once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Child, Netns, STOP_TIMEOUT, compile_cache_dir, policy_wasm, require_root, temp_dir, toml_path,
    wait_until, wasmwall_bin,
};

/// One reading of /proc/meminfo, in KiB.
#[derive(Clone, Copy, Debug)]
struct Mem {
    available: i64,
    slab: i64,
    unreclaimable: i64,
}

fn meminfo() -> Mem {
    let text = fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/meminfo"))
    };
    Mem {
        available: field("MemAvailable:"),
        slab: field("Slab:"),
        unreclaimable: field("SUnreclaim:"),
    }
}

/// Before, the peak of each (the lowest MemAvailable) and after a step.
struct Measured {
    before: Mem,
    peak: Mem,
    after: Mem,
    took: Duration,
}

/// Runs `step` while a thread samples /proc/meminfo every 2 ms.
fn measure(step: impl FnOnce()) -> Measured {
    thread::sleep(Duration::from_millis(300));
    let before = meminfo();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut peak = meminfo();
            while !stop.load(Ordering::Relaxed) {
                let m = meminfo();
                peak.available = peak.available.min(m.available);
                peak.slab = peak.slab.max(m.slab);
                peak.unreclaimable = peak.unreclaimable.max(m.unreclaimable);
                thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let started = Instant::now();
    step();
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("the sampler");
    Measured {
        before,
        peak,
        after: meminfo(),
        took,
    }
}

fn mib(kib: i64) -> String {
    format!("{:+.1}", kib as f64 / 1024.0)
}

fn report(what: &str, m: &Measured) {
    println!(
        "| {what} | {:.2} s | {} / {} | {} / {} | {} / {} |",
        m.took.as_secs_f64(),
        mib(m.peak.unreclaimable - m.before.unreclaimable),
        mib(m.after.unreclaimable - m.before.unreclaimable),
        mib(m.peak.slab - m.before.slab),
        mib(m.after.slab - m.before.slab),
        mib(m.before.available - m.peak.available),
        mib(m.before.available - m.after.available),
    );
}

fn config(dir: &Path, percent: u64, variant: &str) -> PathBuf {
    let path = dir.join(format!("wasmwall-{percent}-{variant}.toml"));
    let toml = format!(
        "table = \"wasmwall\"\n\
         state_dir = {state}\n\
         reconcile_interval_s = 0\n\
         watch_files = false\n\
         [cache]\n\
         dir = {cache}\n\
         [limits]\n\
         deadline_ms = 60000\n\
         memory_mib = 1024\n\
         max_chains = 2000\n\
         max_base_chains = 320\n\
         max_sets = 1000\n\
         [[policy]]\n\
         name = \"budget\"\n\
         path = {policy}\n\
         [policy.config]\n\
         attack = \"budget\"\n\
         count = \"{percent}\"\n\
         target = \"{variant}\"\n",
        state = toml_path(&dir.join("state")),
        cache = toml_path(&compile_cache_dir()),
        policy = toml_path(&policy_wasm("hostile")),
    );
    fs::write(&path, toml).expect("write the config");
    path
}

fn wasmwall(router: &Netns, subcommand: &str, config: &Path) -> Command {
    let mut cmd = router.command(wasmwall_bin());
    cmd.arg(subcommand).arg("--config").arg(config);
    cmd.stdout(Stdio::null());
    cmd
}

fn run_ok(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    require_root();
    let percent: u64 = std::env::var("KM_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let listener_percent: u64 = std::env::var("KM_LISTENER_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = temp_dir();
    let router = Netns::new("kmem");
    let a = config(dir.path(), percent, "a");
    let b = config(dir.path(), percent, "b");
    // Compile once (into the cache), so that no step includes compiling;
    // `plan` changes nothing, and says so in its exit status.
    let _ = wasmwall(&router, "plan", &a).output().expect("plan");

    println!(
        "kernel memory of the `budget` answer at {percent}% of the default budgets; MiB, peak / after"
    );
    println!("| step | time | SUnreclaim | Slab | MemAvailable drop |");
    println!("| --- | --- | --- | --- | --- |");
    let m = measure(|| run_ok(wasmwall(&router, "apply", &a), "apply a"));
    report("`wasmwall apply` into an empty table", &m);
    let listing = router
        .run(["nft", "list", "table", "inet", "wasmwall"])
        .stdout;
    let rules = listing.matches(" accept comment ").count();
    let elements = listing.matches("2001:db8:").count();
    assert!(rules > 0, "the rules are in");
    let m = measure(|| run_ok(wasmwall(&router, "apply", &b), "apply b"));
    report("`wasmwall apply` of another answer (all replaced)", &m);
    let m = measure(|| run_ok(wasmwall(&router, "cleanup", &b), "cleanup"));
    report("`wasmwall cleanup`", &m);

    let saved = dir.path().join("a.nft");
    fs::write(&saved, &listing).expect("write the listing");
    let m = measure(|| {
        let mut nft = router.command("nft");
        nft.arg("-f").arg(&saved);
        run_ok(nft, "nft -f of the listing")
    });
    report("`nft -f` of the same table (the peer)", &m);
    router.run(["nft", "delete", "table", "inet", "wasmwall"]);

    let mut daemon = None;
    let m = measure(|| {
        let mut cmd = wasmwall(&router, "run", &a);
        let child = Child::spawn(&mut cmd, dir.path(), "run");
        wait_until("the daemon's rules", Duration::from_secs(120), || {
            let listed = router
                .run_unchecked(["nft", "list", "chain", "inet", "wasmwall", "budget/b0"])
                .success();
            if listed {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        });
        daemon = Some(child);
    });
    report("`wasmwall run` start (its monitor unsubscribed)", &m);
    let mut daemon = daemon.expect("the daemon");
    let m = measure(|| {
        daemon.stop_cleanly(STOP_TIMEOUT);
    });
    report("`wasmwall run` stop (clean-up)", &m);

    let ports = config(dir.path(), percent, "ports");
    let _ = wasmwall(&router, "plan", &ports).output().expect("plan");
    let m = measure(|| run_ok(wasmwall(&router, "apply", &ports), "apply ports"));
    report(
        "`wasmwall apply` with the elements in sets of 4,096 ports",
        &m,
    );
    run_ok(wasmwall(&router, "cleanup", &ports), "cleanup ports");

    let small = config(dir.path(), listener_percent, "a");
    let m = measure(|| run_ok(wasmwall(&router, "apply", &small), "apply small"));
    report(
        &format!("`wasmwall apply` at {listener_percent}%, no listener"),
        &m,
    );
    run_ok(wasmwall(&router, "cleanup", &small), "cleanup small");
    let mut monitor = router
        .command("nft")
        .arg("monitor")
        .stdout(Stdio::null())
        .spawn()
        .expect("nft monitor");
    thread::sleep(Duration::from_millis(300));
    let m = measure(|| run_ok(wasmwall(&router, "apply", &small), "apply with a listener"));
    report(
        &format!("`wasmwall apply` at {listener_percent}% while `nft monitor` listens"),
        &m,
    );
    let _ = monitor.kill();
    let _ = monitor.wait();
    run_ok(wasmwall(&router, "cleanup", &small), "cleanup small");
    println!("({rules} rules and {elements} set elements in the first answer's listing)");
    kernel_facts(&router, dir.path());
}

/// The kernel's own costs behind the budgets, with `nft -f` alone (no
/// wasmwall): a set of ports loads in the square of its size; a listener
/// of nftables notifications, or echoes, cost about 8 KiB per object.
fn kernel_facts(router: &Netns, dir: &Path) {
    let nft = |what: &str, flags: &[&str], text: String| {
        let file = dir.join("facts.nft");
        fs::write(&file, text).expect("write the nft file");
        let m = measure(|| {
            let mut cmd = router.command("nft");
            cmd.args(flags).arg("-f").arg(&file).stdout(Stdio::null());
            run_ok(cmd, what)
        });
        report(what, &m);
        router.run(["nft", "delete", "table", "inet", "facts"]);
    };
    let port_sets = |sets: usize, ports: usize| {
        let mut text = String::from("table inet facts {\n");
        for s in 0..sets {
            let list: Vec<String> = (1..=ports).map(|p| p.to_string()).collect();
            text.push_str(&format!(
                "set s{s} {{ type inet_service; elements = {{ {} }} }}\n",
                list.join(", ")
            ));
        }
        text + "}\n"
    };
    let rules = |n: usize| {
        let mut text = String::from("table inet facts {\nchain c {\n");
        for r in 0..n {
            text.push_str(&format!("tcp dport {} accept\n", r % 65_535 + 1));
        }
        text + "}\n}\n"
    };
    println!("\nthe kernel's own costs, with `nft -f` alone");
    println!("| step | time | SUnreclaim | Slab | MemAvailable drop |");
    println!("| --- | --- | --- | --- | --- |");
    for ports in [4_096, 10_000, 20_000] {
        nft(
            &format!("one set of {ports} ports"),
            &[],
            port_sets(1, ports),
        );
    }
    nft("10 sets of 2,000 ports", &[], port_sets(10, 2_000));
    let mut monitor = router
        .command("nft")
        .arg("monitor")
        .stdout(Stdio::null())
        .spawn()
        .expect("nft monitor");
    thread::sleep(Duration::from_millis(300));
    nft(
        "10 sets of 2,000 ports while `nft monitor` listens",
        &[],
        port_sets(10, 2_000),
    );
    let _ = monitor.kill();
    let _ = monitor.wait();
    nft("20,000 rules", &[], rules(20_000));
    nft(
        "20,000 rules, each echoed (`nft -e`)",
        &["-e"],
        rules(20_000),
    );
}
