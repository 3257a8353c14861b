//! What keeping OpenWrt's firewall config current costs: the `openwrt`
//! policy in the daemon (`wasmwall run`, following the file with
//! `[policy.files]`) side by side with what firewall4 (fw4) does for the
//! same event, on OpenWrt's default config and on one with 200 rules and
//! 50 port forwards (with reflection) more.
//!
//! The events:
//! - an interface event: an address added on lan0 (netifd's `ifupdate`,
//!   for which fw4's hotplug script runs `fw4 reload`);
//! - a lease renewal (dnsmasq's `old`; fw4 does nothing for leases);
//! - an edit of one rule in the file (`uci commit` then the init script's
//!   reload: `fw4 reload`).
//!
//! wasmwall's figures: the netlink messages the daemon sent for the event
//! (its reconcile log lines), and the time from the event (the address
//! added, the lease sent, the file renamed into place) until the kernel
//! shows the change (its nftables generation moves), or, when nothing
//! changes, until the daemon's reconcile is done. fw4's: what its reload
//! sends, a whole ruleset that flushes and recreates the table (`nft -f`
//! of fw4's own prologue, `table inet T` / `flush table inet T`, then the
//! table as `wasmwall eval` prints the policy's answer for the same config
//! and interfaces), timed from the start of `nft -f` to its exit and loaded
//! over the table already there, as a reload is; its messages are the
//! batch's, counted in `nft --debug=mnl`. fw4 also renders the ruleset
//! (ucode) before loading it: not measured here, so its figures are a lower
//! bound.
//!
//! Everything runs in network namespaces of its own (never the host's
//! ruleset).
//!
//! Run (as root; release builds):
//!   cargo build --release -p wasmwall
//!   scripts/build-policies
//!   cargo run --release -p wasmwall-e2e --example bench-openwrt
//! `WASMWALL_BIN` picks another binary; `BENCH_RUNS` (default 7) the runs
//! per figure (medians).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmwall::daemon::control::{self, LeaseRequest, Request};
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall_e2e::{
    Child, Netns, TempDir, compile_cache_dir, logged_field, policy_wasm, release_bin, replace_file,
    repo_root, require_root, run, temp_dir, toml_path, toml_string,
};

const TABLE: &str = "wasmwall";
const POLICY: &str = "openwrt";
const DEVICES: &str = "lan=lan0 wan=wan0 wan6=wan0";
const RULES: usize = 200;
const REDIRECTS: usize = 50;
/// Longer than the daemon's burst window: each event is measured alone.
const QUIET: Duration = Duration::from_millis(100);
/// After an event's first reconcile, how long further ones are waited for
/// (and counted with it).
const SETTLE: Duration = Duration::from_millis(150);
const DEADLINE: Duration = Duration::from_secs(30);
/// The rule each edit changes (present in both configs): its port flips
/// between the two.
const EDITED: [&str; 2] = ["\toption dest_port '500'\n", "\toption dest_port '4500'\n"];

fn default_config() -> String {
    let path = repo_root().join("policies/openwrt/examples/firewall.default");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text.matches(EDITED[0]).count(), 1, "the edited rule");
    text
}

/// The default config and `RULES` rules and `REDIRECTS` port forwards of
/// the kinds a home router has: ports open to LAN hosts, services of the
/// router open to the wan, hosts barred from the wan, hosts dropped; port
/// forwards with fw4's default reflection.
fn generated_config() -> String {
    let mut text = default_config();
    for i in 0..RULES {
        let host = format!("192.168.1.{}", 10 + i % 200);
        let port = 10_000 + i;
        let body = match i % 4 {
            0 => format!(
                "\toption src 'wan'\n\toption dest 'lan'\n\toption proto 'tcp'\n\
                 \toption dest_ip '{host}'\n\toption dest_port '{port}'\n\toption target 'ACCEPT'\n"
            ),
            1 => format!(
                "\toption src 'wan'\n\toption proto 'tcp udp'\n\
                 \toption dest_port '{port}'\n\toption target 'ACCEPT'\n"
            ),
            2 => format!(
                "\toption src 'lan'\n\toption src_ip '{host}'\n\toption dest 'wan'\n\
                 \toption dest_ip '198.51.100.{}'\n\toption target 'REJECT'\n",
                i % 250
            ),
            _ => format!(
                "\toption src 'wan'\n\toption src_ip '198.51.100.{}'\n\toption target 'DROP'\n",
                i % 250
            ),
        };
        text.push_str(&format!("\nconfig rule\n\toption name 'Rule-{i}'\n{body}"));
    }
    for i in 0..REDIRECTS {
        text.push_str(&format!(
            "\nconfig redirect\n\toption name 'Forward-{i}'\n\toption src 'wan'\n\
             \toption proto 'tcp'\n\toption src_dport '{}'\n\toption dest 'lan'\n\
             \toption dest_ip '192.168.1.{}'\n\toption dest_port '80'\n\toption target 'DNAT'\n",
            30_000 + i,
            100 + i
        ));
    }
    text
}

/// The new lines of a growing log file, as they come.
struct LogTail {
    file: File,
    partial: String,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        let mut file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        file.seek(SeekFrom::End(0)).expect("seek");
        LogTail {
            file,
            partial: String::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let mut more = String::new();
        self.file.read_to_string(&mut more).expect("read the log");
        self.partial.push_str(&more);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let complete: String = self.partial.drain(..=end).collect();
        complete.lines().map(str::to_string).collect()
    }

    /// The reconcile lines among the new ones.
    fn reconciles(&mut self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains("reconciled:"))
            .collect()
    }
}

/// What the daemon did for one event.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// From the event until the kernel showed the change, or, when nothing
    /// changed, until the daemon's reconcile was logged.
    live: Duration,
    /// The daemon's reconciles' own time for it (their `elapsed_us`:
    /// planning against the kernel and sending the batch, after the
    /// policy's evaluation), inside `live`.
    reconcile: Duration,
    /// Netlink messages sent, without the batches' begin and end.
    messages: u64,
}

/// A router with lan0 and wan0, its daemon following the firewall file.
struct Lab {
    // Fields drop in order: the daemon (stopped by `Drop` first) and the
    // socket into the namespace, then the namespace, then the directory
    // with the daemon's output.
    daemon: Child,
    kernel: Netlink,
    router: Netns,
    firewall: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn start(firewall_text: &str) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("bench");
        router.add_interface("lan0", "192.168.1.1/24");
        router.add_interface("wan0", "203.0.113.1/24");
        let firewall = dir.path().join("firewall");
        fs::write(&firewall, firewall_text).unwrap();
        let toml = format!(
            "state_dir = {state}\nreconcile_interval_s = 0\n\
             [cache]\ndir = {cache}\n\n\
             [[policy]]\nname = \"{POLICY}\"\npath = {policy}\n\
             [policy.config]\ndevices = {devices}\n\
             [policy.files]\nuci = {firewall}\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm(POLICY)),
            devices = toml_string(DEVICES),
            firewall = toml_path(&firewall),
        );
        let config = dir.path().join("wasmwall.toml");
        fs::write(&config, toml).unwrap();
        let mut cmd = router.command(release_bin());
        // Every reconcile logged, also those that change nothing (debug).
        cmd.args([
            "run",
            "--log",
            "warn,wasmwall=info,wasmwall::engine::apply=debug",
            "--config",
        ])
        .arg(&config);
        let mut daemon = Child::spawn(&mut cmd, dir.path(), "wasmwall-run");
        daemon.wait_until_running(Duration::from_secs(60));
        let kernel = router.enter(|| Netlink::new().expect("netlink"));
        Lab {
            daemon,
            kernel,
            router,
            firewall,
            dir,
        }
    }

    fn socket(&self) -> PathBuf {
        wasmwall_e2e::files_in(&self.dir.path().join("state"))
            .into_iter()
            .find(|f| f.extension().is_some_and(|e| e == "sock"))
            .expect("the daemon's socket")
    }

    fn log_tail(&self) -> LogTail {
        LogTail::new(&self.dir.path().join("wasmwall-run.stderr"))
    }

    /// Runs `event` after a quiet spell and measures what the daemon does
    /// for it, from the moment `event` returns (when the event happened).
    fn measure(&mut self, event: impl FnOnce(&Lab) -> Instant) -> Sample {
        std::thread::sleep(QUIET);
        let mut tail = self.log_tail();
        let generation = self.kernel.generation().expect("generation");
        let happened = event(self);
        let mut changed_at = None;
        let mut reconciled: Option<(Instant, Vec<String>)> = None;
        loop {
            let now = Instant::now();
            assert!(now - happened < DEADLINE, "no reconcile\n{}", self.daemon);
            if changed_at.is_none() && self.kernel.generation().expect("generation") != generation {
                changed_at = Some(now);
            }
            let lines = tail.reconciles();
            match &mut reconciled {
                None if !lines.is_empty() => reconciled = Some((now, lines)),
                None => {}
                Some((_, seen)) => seen.extend(lines),
            }
            if let Some((at, lines)) = &reconciled
                && now - *at >= SETTLE
            {
                let field = |name: &str| -> u64 {
                    lines
                        .iter()
                        .map(|l| {
                            logged_field(l, name)
                                .and_then(|m| m.parse::<u64>().ok())
                                .unwrap_or_else(|| panic!("no {name}= in {l}"))
                        })
                        .sum()
                };
                let messages = field("messages");
                let done = match (messages, changed_at) {
                    (0, _) => *at,
                    (_, Some(changed)) => changed,
                    (_, None) => panic!("{messages} messages but no new generation: {lines:?}"),
                };
                return Sample {
                    live: done - happened,
                    reconcile: Duration::from_micros(field("elapsed_us")),
                    messages,
                };
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// `wasmwall eval` of the policy on the file's current text and the
    /// router's interfaces: the table as nft text.
    fn ruleset_text(&self) -> String {
        let mut eval = self.router.command(release_bin());
        eval.args(["eval", "--local", "--name", POLICY])
            .args(["--set", &format!("devices={DEVICES}")])
            .arg("--file")
            .arg(format!("uci={}", self.firewall.display()))
            .arg(policy_wasm(POLICY));
        run(&mut eval).stdout
    }
}

impl Drop for Lab {
    /// Stops the daemon as an operator would (SIGTERM), so that it cleans
    /// up after itself: its table, its sysctls, its lock file under /run.
    fn drop(&mut self) {
        if !self.daemon.terminate_within(Duration::from_secs(10)) {
            eprintln!(
                "the daemon did not stop within 10 s of SIGTERM\n{}",
                self.daemon
            );
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The messages `nft -f script` sends in its batch, not counting the
/// batch's begin and end (as wasmwall's count does not): from its
/// `--debug=mnl` dump, whose header of each message shows its type.
fn nft_batch_messages(netns: &Netns, script: &Path) -> usize {
    const BATCH_BEGIN: u32 = 16;
    const BATCH_END: u32 = 17;
    let out = netns.run([
        "nft".as_ref(),
        "--debug=mnl".as_ref(),
        "-f".as_ref(),
        script.as_os_str(),
    ]);
    let mut in_batch = false;
    let mut count = 0;
    // nft prints the dump on stdout or stderr, depending on its version.
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        if !line.contains("|  type | flags") {
            continue;
        }
        let Some(kind) = line
            .trim_start_matches('|')
            .split('|')
            .next()
            .and_then(|t| t.trim().parse::<u32>().ok())
        else {
            continue;
        };
        match kind {
            BATCH_BEGIN => in_batch = true,
            BATCH_END => in_batch = false,
            _ if in_batch => count += 1,
            _ => {}
        }
    }
    assert!(count > 0, "no batch in nft's dump\n{out}");
    count
}

/// fw4's reload of `text`: (median time of `nft -f`, its messages), in a
/// namespace of its own where the table is already loaded.
fn fw4_reload(text: &str, runs: usize) -> (Duration, usize) {
    let dir = temp_dir();
    let script = dir.path().join("fw4-reload.nft");
    fs::write(
        &script,
        format!("table inet {TABLE}\nflush table inet {TABLE}\n{text}"),
    )
    .unwrap();
    let netns = Netns::new("fw4");
    let load = || {
        let mut nft = netns.command("nft");
        nft.arg("-f").arg(&script);
        let started = Instant::now();
        run(&mut nft);
        started.elapsed()
    };
    load();
    let messages = nft_batch_messages(&netns, &script);
    let times = (0..runs).map(|_| load()).collect();
    (median(times), messages)
}

fn lease(expires: u64) -> LeaseRequest {
    LeaseRequest {
        action: "old".into(),
        mac: Some("02:00:00:00:01:50".into()),
        ip: "192.168.1.50".into(),
        hostname: Some("nas".into()),
        iface: Some("lan0".into()),
        expires: Some(expires),
        ..LeaseRequest::default()
    }
}

/// Sends `lease` to the daemon; when it was sent.
fn send_lease(socket: &Path, lease: LeaseRequest) -> Instant {
    let sent = Instant::now();
    let request = Request {
        lease: Some(lease),
        status: None,
        confirm: None,
        wait: false,
    };
    let answer = control::request(socket, &request, Duration::from_secs(30)).expect("request");
    assert!(answer.ok, "{answer:?}");
    sent
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// One row: the event, wasmwall's messages and median time, fw4's.
fn row(config: &str, event: &str, wasmwall: &[Sample], fw4: Option<(Duration, usize)>) {
    let mut messages: Vec<u64> = wasmwall.iter().map(|s| s.messages).collect();
    messages.sort();
    messages.dedup();
    let messages = messages
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("/");
    let time = median(wasmwall.iter().map(|s| s.live).collect());
    let reconcile = median(wasmwall.iter().map(|s| s.reconcile).collect());
    let (fw4_messages, fw4_time, ratio) = match fw4 {
        Some((t, m)) => (
            m.to_string(),
            ms(t),
            format!("{:.1}x", t.as_secs_f64() / time.as_secs_f64()),
        ),
        None => ("0 (no reload)".into(), "-".into(), "-".into()),
    };
    println!(
        "| {config} | {event} | {messages} | {} | {} | {fw4_messages} | {fw4_time} | {ratio} |",
        ms(time),
        ms(reconcile)
    );
}

fn bench(label: &str, text: &str, runs: usize) {
    let mut lab = Lab::start(text);
    let socket = lab.socket();

    // (a) An address added on lan0 (and removed again, unmeasured); the
    // policy's answer with it is what fw4 would load.
    let mut address = Vec::new();
    let mut with_address = String::new();
    for i in 0..runs {
        let cidr = format!("192.168.{}.1/24", 50 + i);
        // The address is there once `ip` exits.
        address.push(lab.measure(|lab| {
            lab.router.run(["ip", "addr", "add", &cidr, "dev", "lan0"]);
            Instant::now()
        }));
        if i == 0 {
            with_address = lab.ruleset_text();
        }
        lab.measure(|lab| {
            lab.router.run(["ip", "addr", "del", &cidr, "dev", "lan0"]);
            Instant::now()
        });
    }

    // (b) A lease renewed (first given, unmeasured).
    let expires = unix_now() + 3600;
    let mut first = lease(expires);
    first.action = "add".into();
    lab.measure(|_| send_lease(&socket, first));
    let renewals: Vec<_> = (0..runs)
        .map(|i| lab.measure(|_| send_lease(&socket, lease(expires + 1 + i as u64))))
        .collect();

    // (c) One rule's port changed in the file, back and forth.
    let mut edits = Vec::new();
    for i in 0..runs {
        let text = fs::read_to_string(&lab.firewall).unwrap();
        let (from, to) = (EDITED[i % 2], EDITED[(i + 1) % 2]);
        assert_eq!(text.matches(from).count(), 1);
        let edited = text.replace(from, to);
        let firewall = lab.firewall.clone();
        edits.push(lab.measure(move |_| {
            let saved = Instant::now();
            replace_file(&firewall, edited.as_bytes());
            saved
        }));
    }
    let edited = lab.ruleset_text();
    drop(lab);

    row(
        label,
        "address added on lan0",
        &address,
        Some(fw4_reload(&with_address, runs)),
    );
    row(label, "lease renewed", &renewals, None);
    row(
        label,
        "one rule edited",
        &edits,
        Some(fw4_reload(&edited, runs)),
    );
}

fn main() {
    require_root();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    println!("binary: {}\n", release_bin().display());
    println!(
        "| config | event | wasmwall: messages | wasmwall: event -> kernel | of which plan + send | fw4 reload: messages | fw4 reload: `nft -f` | ratio |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    bench("OpenWrt's default", &default_config(), runs);
    bench(
        &format!("default + {RULES} rules, {REDIRECTS} redirects"),
        &generated_config(),
        runs,
    );
    println!("\nMedians of {runs} runs; several message counts (a/b) when runs differed.");
}
