//! What an operator does to a running wasmwall, end to end with the real
//! binary, kernel and port-forward policy: a second wasmwall on the same
//! table and namespace however each entered it, a clean-up after a crash
//! with another state directory, signals (SIGHUP reloads, SIGQUIT leaves
//! the rules, a closed log pipe), a sysctl changed by hand, `status` right
//! after the start, and `cleanup` beside a table that is not wasmwall's.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use wasmwall::daemon::status::Status;
use wasmwall_e2e::{
    Child, Netns, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir, policy_wasm, run,
    run_unchecked, skip_unless_root, temp_dir, toml_path, wait_until, wasmwall_bin, wasmwall_in,
};

const LAN: &str = "lan0";
const ROUTE_LOCALNET: &str = "net/ipv4/conf/lan0/route_localnet";

/// A namespace with a LAN interface, and wasmwall's config for it.
struct Lab {
    // Dropped in this order: namespaces, then the directory.
    fw: Netns,
    launcher: Netns,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let fw = Netns::new("fw");
        fw.add_interface(LAN, "192.168.0.9/24");
        Lab {
            fw,
            launcher: Netns::new("launcher"),
            dir,
        }
    }

    /// A config for the port-forward policy on the LAN interface, its state
    /// in `state` (a directory of the lab), with `extra` top-level settings
    /// and `listen_port`.
    fn config(&self, name: &str, state: &str, extra: &str, listen_port: u16) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "state_dir = {state}\nreconcile_interval_s = 0\n{extra}\n\
             [cache]\ndir = {cache}\n\n\
             [[policy]]\nname = \"port-forward\"\npath = {policy}\n\
             [policy.config]\nlan_interface = \"{LAN}\"\nlisten_port = {listen_port}\n",
            state = toml_path(&self.dir.path().join(state)),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm("port-forward")),
        );
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).expect("write the config");
        fs::rename(&tmp, &path).expect("put the config in place");
        path
    }

    /// `wasmwall SUBCOMMAND --config CONFIG --netns FW` from the launcher.
    fn wasmwall(&self, subcommand: &str, config: &Path) -> Command {
        wasmwall_in(&self.launcher, &self.fw, subcommand, config)
    }

    /// `ip netns exec FW wasmwall SUBCOMMAND --config CONFIG`: the namespace
    /// entered from outside, not named to wasmwall.
    fn wasmwall_inside(&self, subcommand: &str, config: &Path) -> Command {
        let mut cmd = self.fw.command(wasmwall_bin());
        cmd.arg(subcommand).arg("--config").arg(config);
        cmd
    }

    fn table(&self) -> Option<String> {
        self.fw.table("inet", "wasmwall")
    }

    fn route_localnet(&self) -> String {
        self.fw.sysctl(ROUTE_LOCALNET)
    }

    /// Starts a daemon and waits until its rules and sysctl are live.
    fn start(&self, cmd: &mut Command, label: &str) -> Child {
        let mut daemon = Child::spawn(cmd, self.dir.path(), label);
        daemon.wait_until_running(START_TIMEOUT);
        assert!(self.table().is_some(), "{daemon}");
        assert_eq!(self.route_localnet(), "1", "{daemon}");
        daemon
    }

    fn status(&self, config: &Path) -> Status {
        let out = run_unchecked(self.wasmwall("status", config).arg("--json"));
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"))
    }
}

fn wait_for<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    wait_until(what, START_TIMEOUT, f)
}

#[test]
fn one_wasmwall_per_table_and_namespace_however_each_entered_it() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let first = lab.config("first.toml", "state-a", "", 80);
    let mut daemon = lab.start(&mut lab.wasmwall_inside("run", &first), "inside");

    // The same namespace named with --netns, with its state elsewhere: the
    // lock is the namespace's and the table's, not the state file's.
    let second = lab.config("second.toml", "state-b", "", 80);
    for subcommand in ["run", "apply", "cleanup"] {
        let mut second_one = Child::spawn(
            &mut lab.wasmwall(subcommand, &second),
            lab.dir.path(),
            subcommand,
        );
        // A second daemon that is let in runs on: that is a failure too.
        let status = second_one.wait_timeout(STOP_TIMEOUT);
        let stderr = second_one.stderr();
        assert!(
            !status.success(),
            "a second wasmwall {subcommand} ran\n{second_one}"
        );
        assert!(
            stderr.contains(
                "another wasmwall is working on table inet wasmwall in this network namespace (pid "
            ) && stderr.contains("state-a"),
            "{second_one}"
        );
    }
    assert!(
        lab.table().is_some(),
        "the refused ones left the table alone"
    );
    assert!(
        daemon.try_status().is_none(),
        "the first one runs on\n{daemon}"
    );

    // A crash, then a clean-up from the other config, entering the
    // namespace by name: it finds the state the first run recorded.
    daemon.kill();
    daemon.wait_timeout(STOP_TIMEOUT);
    assert_eq!(lab.route_localnet(), "1", "fail closed");
    let out = run(&mut lab.wasmwall("cleanup", &second));
    assert!(
        out.stderr.contains(
            "clean-up done: table removed; sysctls restored: net.ipv4.conf.lan0.route_localnet=0"
        ),
        "{out}"
    );
    assert_eq!(lab.route_localnet(), "0");
    assert!(lab.table().is_none());
    for dir in ["state-a", "state-b"] {
        let left: Vec<_> = wasmwall_e2e::files_in(&lab.dir.path().join(dir))
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .collect();
        assert!(left.is_empty(), "state left in {dir}: {left:?}");
    }
}

#[test]
fn sighup_reloads_the_config_and_the_daemon_goes_on() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    // Without the watcher, only SIGHUP can bring the new config in.
    let config = lab.config("w.toml", "state", "watch_files = false", 80);
    let mut daemon = lab.start(&mut lab.wasmwall("run", &config), "run");
    assert!(lab.table().unwrap().contains("tcp dport 80"));

    lab.config("w.toml", "state", "watch_files = false", 8080);
    daemon.signal(libc::SIGHUP);
    wait_for("the new listen port after SIGHUP", || {
        assert!(
            daemon.try_status().is_none(),
            "SIGHUP stopped the daemon\n{daemon}"
        );
        match lab.table() {
            Some(t) if t.contains("tcp dport 8080") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(
        daemon
            .stderr()
            .contains("reloading the config and policy files (SIGHUP)")
    );
    daemon.stop_cleanly(STOP_TIMEOUT);
    assert!(lab.table().is_none(), "cleaned up after SIGTERM");
    assert_eq!(lab.route_localnet(), "0");
}

#[test]
fn sigquit_stops_at_once_and_leaves_the_rules_for_the_next_run() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("w.toml", "state", "", 80);
    let mut daemon = lab.start(&mut lab.wasmwall("run", &config), "run");
    daemon.signal(libc::SIGQUIT);
    let status = daemon.wait_timeout(STOP_TIMEOUT);
    assert_eq!(status.code(), Some(3), "{daemon}");
    assert!(
        daemon.stderr().contains("stopping without clean-up"),
        "{daemon}"
    );
    assert!(lab.table().is_some(), "the rules stay");
    assert_eq!(lab.route_localnet(), "1");

    // The next run adopts what it finds, sending nothing.
    let mut again = lab.start(&mut lab.wasmwall("run", &config), "again");
    let log = again.stderr();
    let start = log
        .lines()
        .find(|l| l.contains("reason=\"start\""))
        .unwrap_or_else(|| panic!("no start line\n{log}"));
    assert!(start.contains(" messages=0 "), "{start}");
    again.stop_cleanly(STOP_TIMEOUT);
    assert!(lab.table().is_none());
    assert_eq!(lab.route_localnet(), "0");
}

#[test]
fn a_closed_log_pipe_costs_the_log_not_the_daemon() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("w.toml", "state", "", 80);
    let mut process = lab
        .wasmwall("run", &config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmwall run");
    let mut log = BufReader::new(process.stderr.take().expect("a pipe"));
    let mut line = String::new();
    let deadline = Instant::now() + START_TIMEOUT;
    while !line.contains("running:") {
        line.clear();
        assert!(
            log.read_line(&mut line).expect("read the log") > 0 && Instant::now() < deadline,
            "the daemon ended before it ran"
        );
    }
    drop(log);
    // Something to log, into the closed pipe: a reload, then a hand edit.
    process.kill_signal(libc::SIGHUP);
    lab.fw.run([
        "nft",
        "add",
        "rule",
        "inet",
        "wasmwall",
        "port-forward/input",
        "accept",
        "comment",
        "\"by hand\"",
    ]);
    wait_for("the hand edit repaired with the log pipe closed", || {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("the daemon ended: {status}");
        }
        match lab.table() {
            Some(t) if !t.contains("by hand") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(process.try_wait().unwrap().is_none(), "the daemon died");
    assert!(lab.status(&config).errors.is_empty());
    process.kill_signal(libc::SIGTERM);
    let status = process.wait().expect("wait for wasmwall");
    assert!(status.success(), "{status}");
    assert!(lab.table().is_none(), "cleaned up");
}

/// Sends a signal to a process started with std's Command.
trait Signal {
    fn kill_signal(&self, signal: libc::c_int);
}

impl Signal for std::process::Child {
    fn kill_signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }
}

#[test]
fn a_sysctl_changed_by_hand_is_put_back_without_waiting_for_the_timer() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    // No drift timer at all, and the daemon's own batch wakes no check (its
    // monitor is unsubscribed while the batch is in the kernel): what
    // repairs it is the sysctl check.
    let config = lab.config("w.toml", "state", "", 80);
    let mut daemon = lab.start(&mut lab.wasmwall("run", &config), "run");
    lab.fw
        .run(["sysctl", "-q", "-w", "net.ipv4.conf.lan0.route_localnet=0"]);
    let changed = Instant::now();
    wait_for("route_localnet put back", || match lab.route_localnet() {
        v if v == "1" => Ok(()),
        v => Err(format!("it is {v}")),
    });
    println!("route_localnet put back after {:?}", changed.elapsed());
    let status = lab.status(&config);
    let change = status.last_change.expect("a change");
    assert!(
        change.reason == "sysctl changed (net.ipv4.conf.lan0.route_localnet: 0 -> 1)"
            && change.changes == "sysctls set: net.ipv4.conf.lan0.route_localnet=1",
        "{change:?}"
    );
    daemon.stop_cleanly(STOP_TIMEOUT);
}

#[test]
fn status_right_after_start_shows_the_batch_that_did_the_work() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let config = lab.config("w.toml", "state", "", 80);
    let mut daemon = lab.start(&mut lab.wasmwall("run", &config), "run");
    let status = lab.status(&config);
    let start = status
        .last_change
        .clone()
        .expect("the start is the last change");
    assert_eq!(start.reason, "start");
    assert!(start.messages > 0, "{start:?}");

    // Someone else's batch: a check that changes nothing; the start stays
    // the last change.
    lab.fw.run(["nft", "add", "table", "inet", "other"]);
    let status = wait_for("the check after someone else's batch", || {
        let s = lab.status(&config);
        match &s.last_reconcile {
            Some(r) if r.reason == "nftables changed" => Ok(s),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(status.last_reconcile.as_ref().unwrap().messages, 0);
    assert_eq!(status.last_change.unwrap().reason, "start");
    let text = run(&mut lab.wasmwall("status", &config)).stdout;
    assert!(
        text.contains("last change: ")
            && text.contains(", start: ")
            && text.contains("last check: "),
        "{text}"
    );
    daemon.stop_cleanly(STOP_TIMEOUT);
    assert!(
        lab.fw.has_table("inet", "other"),
        "not wasmwall's: left alone"
    );
}

#[test]
fn cleanup_says_it_left_alone_a_table_wasmwall_did_not_make() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    lab.fw.run(["nft", "add", "table", "inet", "wasmwall"]);
    let config = lab.config("w.toml", "state", "", 80);
    let out = run(&mut lab.wasmwall("cleanup", &config));
    assert!(
        out.stderr
            .contains("clean-up done: table left alone: it was not made by wasmwall"),
        "{out}"
    );
    assert!(!out.stderr.contains("table removed"), "{out}");
    assert!(lab.table().is_some(), "someone else's table stays");

    lab.fw.run(["nft", "delete", "table", "inet", "wasmwall"]);
    let out = run(&mut lab.wasmwall("cleanup", &config));
    assert!(
        out.stderr
            .contains("clean-up done: no table to remove; no state file"),
        "{out}"
    );
}

#[test]
fn a_lock_left_by_a_namespace_that_reused_this_inode_hands_over_no_state() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let lab = Lab::new();
    let config = lab.config("w.toml", "state", "", 80);
    // What a crashed run in an earlier namespace with this inode left: its
    // lock file, naming a state recorded for another namespace.
    let elsewhere = lab.dir.path().join("elsewhere/netns-gone.wasmwall.json");
    fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    fs::write(
        &elsewhere,
        r#"{"version":1,"netns":"gone","table":"wasmwall","table_existed_before":false,
           "sysctls":[{"key":"net.ipv4.conf.lan0.route_localnet","original":"1"}]}"#,
    )
    .unwrap();
    let ns = fs::metadata(lab.fw.path()).unwrap();
    let lock = Path::new("/run/wasmwall/locks").join(format!(
        "ns-{}-{}.wasmwall.lock",
        ns.dev(),
        ns.ino()
    ));
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    fs::write(
        &lock,
        format!("pid 999999\nstate {}\n", elsewhere.display()),
    )
    .unwrap();

    let out = run(&mut lab.wasmwall("cleanup", &config));
    assert!(
        out.stderr
            .contains("the lock names the state of another namespace or table; not taken over"),
        "{out}"
    );
    assert!(elsewhere.exists(), "the other namespace's state stays");
    assert_eq!(lab.route_localnet(), "0", "nothing restored from it");
    assert!(!lock.exists(), "the lock is let go");
}
