//! `wasmwall trace` against a real kernel: the seed scenario's phone
//! (192.168.0.2) asks the laptop (192.168.0.9) for port 80, which the
//! port-forward policy DNATs to 127.0.0.1:4000 while `wasmwall run`
//! enforces it. The trace shows that path with the policy's rules, and
//! leaves no trace table behind: after `--count`, after SIGINT, and after
//! `kill -9` once `wasmwall cleanup` ran, without disturbing the daemon's
//! table meanwhile.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use wasmwall_e2e::{
    Child, HttpServer, Netns, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir, http_get,
    policy_wasm, run_unchecked, skip_unless_root, temp_dir, toml_path, veth_pair, wasmwall_in,
    without_counter_values,
};

const LAPTOP_IF: &str = "veth-l";
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// From starting a trace to its rule being in (no policy is compiled).
const TRACE_START: Duration = Duration::from_secs(10);
/// The trace's filter: the phone's requests to port 80.
const FILTER: [&str; 6] = ["--proto", "tcp", "--saddr", "192.168.0.2", "--dport", "80"];

struct Lab {
    server: HttpServer,
    phone: Netns,
    laptop: Netns,
    launcher: Netns,
    config: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let phone = Netns::new("phone");
        let laptop = Netns::new("laptop");
        let launcher = Netns::new("launcher");
        veth_pair(
            (&phone, "veth-p", "192.168.0.2/24"),
            (&laptop, LAPTOP_IF, "192.168.0.9/24"),
        );
        let server = HttpServer::start(&laptop, SocketAddr::from(([127, 0, 0, 1], 4000)));
        let config = dir.path().join("wasmwall.toml");
        let toml = format!(
            "table = \"wasmwall\"\nstate_dir = {state}\n\n[cache]\ndir = {cache}\n\n\
             [[policy]]\nname = \"port-forward\"\npath = {policy}\n\n\
             [policy.config]\nlan_interface = \"{LAPTOP_IF}\"\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm("port-forward")),
        );
        fs::write(&config, toml).expect("write wasmwall.toml");
        Lab {
            server,
            phone,
            laptop,
            launcher,
            config,
            dir,
        }
    }

    fn wasmwall(&self, subcommand: &str) -> Command {
        wasmwall_in(&self.launcher, &self.laptop, subcommand, &self.config)
    }

    fn start_daemon(&self) -> Child {
        let mut daemon = Child::spawn(&mut self.wasmwall("run"), self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// Starts `wasmwall trace` with the filter and `extra`, and waits until
    /// its rule is in.
    fn start_trace(&self, label: &str, extra: &[&str]) -> Child {
        let mut cmd = self.wasmwall("trace");
        cmd.args(FILTER).args(extra);
        let mut trace = Child::spawn(&mut cmd, self.dir.path(), label);
        trace.wait_for_stderr("the trace rule to be in", "tracing packets", TRACE_START);
        let table = self.trace_table(&trace);
        assert!(
            self.laptop.has_table("inet", &table),
            "inet {table} should exist while the trace runs\n{}",
            self.laptop.ruleset().text
        );
        trace
    }

    /// The daemon's table as nft lists it, counters left out (the traced
    /// requests count).
    fn daemon_table(&self) -> Option<String> {
        self.laptop
            .table("inet", "wasmwall")
            .map(|t| without_counter_values(&t))
    }

    fn trace_table(&self, trace: &Child) -> String {
        format!("wasmwall-trace-{}", trace.id())
    }

    /// The laptop's tables: only the daemon's, no trace table.
    fn assert_no_trace_table(&self, why: &str) {
        let ruleset = self.laptop.ruleset();
        assert_eq!(
            ruleset.tables(),
            ["inet wasmwall"],
            "{why}: only the daemon's table should be left\n{}",
            ruleset.text
        );
    }

    fn request(&self) {
        let answer = http_get(
            &self.phone,
            SocketAddr::from(([192, 168, 0, 9], 80)),
            ANSWER_TIMEOUT,
        );
        assert_eq!(
            answer.as_deref(),
            Ok(self.server.token()),
            "the phone's GET should be answered by the server on 127.0.0.1:4000"
        );
    }
}

#[test]
fn trace_shows_the_phone_requests_path_and_ends_after_count() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut daemon = lab.start_daemon();
    let daemon_table = lab.daemon_table().expect("daemon's table");
    let mut trace = lab.start_trace("trace", &["--count", "1"]);
    lab.request();
    let status = trace.wait_timeout(Duration::from_secs(10));
    assert!(
        status.success(),
        "trace should end 0 after one packet: {status}\n{trace}"
    );
    let out = trace.stdout();
    println!("{out}{}", trace.stderr());
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("packet 1: tcp 192.168.0.2:")
                && l.ends_with(" -> 192.168.0.9:80 in veth-l")),
        "the first line should be the phone's SYN as it came in\n{out}"
    );
    let has = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "inet wasmwall port-forward/prerouting: rule of port-forward",
            "tcp dport 80",
            "dnat ip to 127.0.0.1:4000",
            "=> accept",
        ]),
        "the path should show the policy's DNAT rule\n{out}"
    );
    assert!(
        has(&["nat: dst 192.168.0.9:80 -> 127.0.0.1:4000"]),
        "the path should show the DNAT's effect between hooks\n{out}"
    );
    assert!(
        has(&[
            "inet wasmwall port-forward/input: rule of port-forward",
            "ip daddr 127.0.0.1",
            "tcp dport 4000",
            "=> accept",
        ]),
        "the path should show the policy's input accept\n{out}"
    );
    assert_eq!(lines.last(), Some(&"  verdict: accept"), "{out}");
    lab.assert_no_trace_table("after --count 1");
    assert_eq!(
        lab.daemon_table().as_deref(),
        Some(daemon_table.as_str()),
        "the trace should not change the daemon's table"
    );
    daemon.stop_cleanly(STOP_TIMEOUT);
}

#[test]
fn trace_json_names_the_policy() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut daemon = lab.start_daemon();
    let mut trace = lab.start_trace("trace-json", &["--count", "1", "--json"]);
    lab.request();
    assert!(
        trace.wait_timeout(Duration::from_secs(10)).success(),
        "{trace}"
    );
    let out = trace.stdout();
    let packet: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or_default()).expect("one JSON line");
    assert_eq!(packet["dst"], "192.168.0.9:80", "{out}");
    assert_eq!(packet["verdict"], "accept", "{out}");
    let steps = packet["steps"].as_array().expect("steps");
    assert!(
        steps.iter().any(|s| s["chain"] == "port-forward/prerouting"
            && s["policy"] == "port-forward"
            && s["rule"]
                .as_str()
                .is_some_and(|r| r.contains("dnat ip to 127.0.0.1:4000"))),
        "{out}"
    );
    lab.assert_no_trace_table("after --count 1 --json");
    daemon.stop_cleanly(STOP_TIMEOUT);
}

#[test]
fn sigint_ends_a_trace_cleanly() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut daemon = lab.start_daemon();
    let mut trace = lab.start_trace("trace-int", &[]);
    trace.signal(libc::SIGINT);
    let status = trace.wait_timeout(Duration::from_secs(5));
    assert!(
        status.success(),
        "SIGINT should end the trace with 0: {status}\n{trace}"
    );
    assert!(trace.stderr().contains("trace rule removed"), "{trace}");
    lab.assert_no_trace_table("after SIGINT");
    daemon.stop_cleanly(STOP_TIMEOUT);
}

#[test]
fn a_killed_trace_is_removed_by_cleanup_and_by_the_next_trace() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut daemon = lab.start_daemon();
    let daemon_table = lab.daemon_table().expect("daemon's table");

    // Killed: the trace table stays, the daemon (which repairs its own
    // table) leaves it alone and its own table is as it was.
    let mut first = lab.start_trace("trace-killed-1", &[]);
    let first_table = lab.trace_table(&first);
    first.kill();
    first.wait_timeout(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        lab.laptop.has_table("inet", &first_table),
        "kill -9 leaves the trace table"
    );
    assert_eq!(lab.daemon_table().as_deref(), Some(daemon_table.as_str()));
    lab.request();

    // The next trace removes it first.
    let mut second = lab.start_trace("trace-next", &[]);
    assert!(
        !lab.laptop.has_table("inet", &first_table),
        "the next trace should remove the killed one's table\n{second}"
    );
    let second_table = lab.trace_table(&second);
    second.kill();
    second.wait_timeout(Duration::from_secs(5));
    assert!(lab.laptop.has_table("inet", &second_table));

    // `cleanup` removes it too; with the daemon running it refuses to
    // touch the daemon's table (its lock is held), and says so.
    let out = run_unchecked(&mut lab.wasmwall("cleanup"));
    assert!(
        !out.success(),
        "cleanup should refuse while the daemon runs\n{out}"
    );
    assert!(out.stderr.contains("another wasmwall is working"), "{out}");
    lab.assert_no_trace_table("after kill -9 and cleanup");
    assert_eq!(lab.daemon_table().as_deref(), Some(daemon_table.as_str()));
    lab.request();
    daemon.stop_cleanly(STOP_TIMEOUT);

    // After the daemon: a killed trace, then cleanup, leaves nothing.
    let mut third = lab.start_trace("trace-killed-3", &[]);
    third.kill();
    third.wait_timeout(Duration::from_secs(5));
    let out = run_unchecked(&mut lab.wasmwall("cleanup"));
    assert!(out.success(), "{out}");
    let ruleset = lab.laptop.ruleset();
    assert!(ruleset.tables().is_empty(), "{}", ruleset.text);
}

#[test]
fn two_traces_at_once_keep_to_their_own_packets() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut daemon = lab.start_daemon();
    let mut web = lab.start_trace("trace-web", &["--count", "1"]);
    // Same source, another port: it must see none of the web packets.
    let mut cmd = lab.wasmwall("trace");
    cmd.args(["--proto", "tcp", "--saddr", "192.168.0.2", "--dport", "22"]);
    let mut ssh = Child::spawn(&mut cmd, lab.dir.path(), "trace-ssh");
    ssh.wait_for_stderr(
        "the second trace rule to be in",
        "tracing packets",
        TRACE_START,
    );
    let (web_table, ssh_table) = (lab.trace_table(&web), lab.trace_table(&ssh));
    let ruleset = lab.laptop.ruleset();
    for table in [&web_table, &ssh_table] {
        assert!(
            ruleset.tables().contains(&format!("inet {table}")),
            "both trace tables should be in\n{}",
            ruleset.text
        );
    }
    lab.request();
    assert!(web.wait_timeout(Duration::from_secs(10)).success(), "{web}");
    assert!(
        web.stdout().starts_with("packet 1: tcp 192.168.0.2:"),
        "{web}"
    );
    assert!(
        lab.laptop.has_table("inet", &ssh_table),
        "the end of one trace should leave the other's table"
    );
    ssh.signal(libc::SIGINT);
    assert!(ssh.wait_timeout(Duration::from_secs(5)).success(), "{ssh}");
    assert_eq!(
        ssh.stdout(),
        "",
        "the port-22 trace should have printed no packet"
    );
    lab.assert_no_trace_table("after both traces");
    daemon.stop_cleanly(STOP_TIMEOUT);
}
