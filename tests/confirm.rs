//! Apply with confirmation against a real kernel: a change not confirmed in
//! time is rolled back to the table of before (byte for byte as `nft list
//! table` shows it) and the sysctls of before; a confirmed one stays; a
//! waiter killed with SIGKILL is rolled back by the next `cleanup` or
//! `run`; a first change rolls back as clean-up would; the daemon's
//! `[confirm]` reverts a config change nobody confirmed; a failing health
//! check rolls back by itself and a passing one confirms.
//!
//! One namespace ("host") with two LAN interfaces: the old config forwards
//! port 80 on lan0 (route_localnet of lan0 set), the new one port 8080 on
//! lan1 (route_localnet of lan1 set, lan0's restored), so the two rulesets
//! and sysctls differ both ways.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Child, Netns, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir, files_in, policy_wasm,
    replace_file, run, run_unchecked, skip_unless_root, temp_dir, toml_path, wait_until,
    wasmwall_in,
};

const LAN0_LOCALNET: &str = "net/ipv4/conf/lan0/route_localnet";
const LAN1_LOCALNET: &str = "net/ipv4/conf/lan1/route_localnet";
/// Slack on top of a confirmation window, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

struct Lab {
    host: Netns,
    launcher: Netns,
    state_dir: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let host = Netns::new("host");
        let launcher = Netns::new("launcher");
        host.add_interface("lan0", "192.168.10.1/24");
        host.add_interface("lan1", "192.168.11.1/24");
        Lab {
            host,
            launcher,
            state_dir: dir.path().join("state"),
            dir,
        }
    }

    /// A config forwarding `port` on `lan`, with `extra` (a `[confirm]`).
    fn config(&self, file: &str, lan: &str, port: u16, extra: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        self.write_config(&path, lan, port, extra);
        path
    }

    fn write_config(&self, path: &Path, lan: &str, port: u16, extra: &str) {
        let text = format!(
            "state_dir = {state}\n\
             reconcile_interval_s = 0\n\
             [cache]\n\
             dir = {cache}\n\
             {extra}\n\
             [[policy]]\n\
             name = \"port-forward\"\n\
             path = {policy}\n\
             [policy.config]\n\
             lan_interface = \"{lan}\"\n\
             listen_port = {port}\n",
            state = toml_path(&self.state_dir),
            cache = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm("port-forward")),
        );
        replace_file(path, text.as_bytes());
    }

    fn wasmwall(&self, subcommand: &str, config: &Path) -> Command {
        wasmwall_in(&self.launcher, &self.host, subcommand, config)
    }

    fn table(&self) -> Option<String> {
        self.host.table("inet", "wasmwall")
    }

    fn sysctls(&self) -> (String, String) {
        (
            self.host.sysctl(LAN0_LOCALNET),
            self.host.sysctl(LAN1_LOCALNET),
        )
    }

    /// The files beside the state file, lock files aside.
    fn state_files(&self) -> Vec<PathBuf> {
        files_in(&self.state_dir)
            .into_iter()
            .filter(|f| !f.to_string_lossy().ends_with(".lock"))
            .collect()
    }

    fn pending_records(&self) -> Vec<PathBuf> {
        self.state_files()
            .into_iter()
            .filter(|f| {
                f.extension()
                    .is_some_and(|e| e == "confirm" || e == "rollback")
            })
            .collect()
    }

    /// `apply --confirm-within WITHIN` of `config`, in the background,
    /// once it says it applied.
    fn apply_waiting(&self, config: &Path, within: &str, label: &str) -> Child {
        let mut cmd = self.wasmwall("apply", config);
        cmd.args(["--confirm-within", within]);
        let mut child = Child::spawn(&mut cmd, self.dir.path(), label);
        child.wait_for_stderr(
            "the change to be applied",
            "wasmwall: applied; run `wasmwall confirm",
            START_TIMEOUT,
        );
        child
    }

    fn cleanup(&self, config: &Path) {
        run(&mut self.wasmwall("cleanup", config));
        assert_eq!(self.table(), None);
        assert_eq!(self.sysctls(), ("0".into(), "0".into()));
        assert_eq!(self.state_files(), Vec::<PathBuf>::new(), "no state left");
    }
}

#[test]
fn not_confirmed_in_time_the_old_table_and_sysctls_are_back() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let old = lab.config("old.toml", "lan0", 80, "");
    let new = lab.config("new.toml", "lan1", 8080, "");
    run(&mut lab.wasmwall("apply", &old));
    let before = lab.table().expect("the old table");
    assert_eq!(lab.sysctls(), ("1".into(), "0".into()));

    let started = Instant::now();
    let mut waiter = lab.apply_waiting(&new, "3s", "apply-3s");
    let during = lab.table().expect("the new table");
    assert_ne!(during, before, "the new rules are in");
    assert!(during.contains("tcp dport 8080"), "{during}");
    assert_eq!(lab.sysctls(), ("0".into(), "1".into()));
    assert_eq!(lab.pending_records().len(), 1, "{:?}", lab.state_files());

    let status = waiter.wait_timeout(Duration::from_secs(3) + MARGIN);
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Some(4),
        "rolled back: exit 4\n{}",
        waiter.stderr()
    );
    assert_eq!(
        lab.table().as_deref(),
        Some(before.as_str()),
        "byte for byte"
    );
    assert_eq!(
        lab.sysctls(),
        ("1".into(), "0".into()),
        "the sysctls of before"
    );
    assert_eq!(lab.pending_records(), Vec::<PathBuf>::new());
    let log = waiter.stderr();
    assert!(
        log.contains("rolled back to the rules and sysctls live before the change")
            && log.contains("was not confirmed within 3 s"),
        "{log}"
    );
    eprintln!(
        "not confirmed: back to the old table {} ms after the start (window 3 s)",
        took.as_millis()
    );

    // The state file still holds the true originals.
    lab.cleanup(&old);
}

#[test]
fn confirmed_in_time_the_change_stays() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let old = lab.config("old.toml", "lan0", 80, "");
    let new = lab.config("new.toml", "lan1", 8080, "");
    run(&mut lab.wasmwall("apply", &old));
    let mut waiter = lab.apply_waiting(&new, "60s", "apply-60s");
    let during = lab.table().expect("the new table");

    let out = run(&mut lab.wasmwall("confirm", &new));
    assert!(out.stdout.contains("confirmed: apply of"), "{out}");
    let status = waiter.wait_timeout(MARGIN);
    assert_eq!(status.code(), Some(0), "{}", waiter.stderr());
    assert_eq!(lab.table().as_deref(), Some(during.as_str()), "it stays");
    assert_eq!(lab.sysctls(), ("0".into(), "1".into()));
    assert_eq!(lab.pending_records(), Vec::<PathBuf>::new());

    let again = run_unchecked(&mut lab.wasmwall("confirm", &new));
    assert_eq!(again.status.code(), Some(1), "{again}");
    assert!(
        again.stderr.contains("nothing waits for confirmation"),
        "{again}"
    );
    lab.cleanup(&new);
}

#[test]
fn a_first_change_not_confirmed_is_undone_as_clean_up_would() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let new = lab.config("new.toml", "lan1", 8080, "");
    let mut waiter = lab.apply_waiting(&new, "2s", "apply-first");
    assert!(lab.table().is_some());
    let status = waiter.wait_timeout(Duration::from_secs(2) + MARGIN);
    assert_eq!(status.code(), Some(4), "{}", waiter.stderr());
    assert_eq!(lab.table(), None, "the table is gone");
    assert_eq!(lab.sysctls(), ("0".into(), "0".into()));
    assert_eq!(lab.state_files(), Vec::<PathBuf>::new(), "no state left");
}

#[test]
fn a_waiter_killed_with_sigkill_is_rolled_back_by_the_next_cleanup_or_run() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let old = lab.config("old.toml", "lan0", 80, "");
    let new = lab.config("new.toml", "lan1", 8080, "");

    // Then `cleanup`: rolled back first, then everything removed.
    run(&mut lab.wasmwall("apply", &old));
    let mut waiter = lab.apply_waiting(&new, "60s", "apply-killed-1");
    waiter.kill();
    assert_eq!(waiter.wait_timeout(MARGIN).signal(), Some(libc::SIGKILL));
    assert!(
        lab.table().unwrap().contains("tcp dport 8080"),
        "fail closed: the new rules stay"
    );
    assert_eq!(lab.pending_records().len(), 1);
    let out = run(&mut lab.wasmwall("cleanup", &new));
    assert!(
        out.stderr.contains("left pending by a process that ended")
            && out
                .stderr
                .contains("rolled back to the rules and sysctls live before"),
        "{out}"
    );
    assert_eq!(lab.table(), None);
    assert_eq!(lab.sysctls(), ("0".into(), "0".into()));
    assert_eq!(lab.state_files(), Vec::<PathBuf>::new());

    // Then `run` of the old config: rolled back first, then nothing to send.
    run(&mut lab.wasmwall("apply", &old));
    let before = lab.table().unwrap();
    let mut waiter = lab.apply_waiting(&new, "60s", "apply-killed-2");
    waiter.kill();
    waiter.wait_timeout(MARGIN);
    let mut daemon = Child::spawn(
        &mut lab.wasmwall("run", &old),
        lab.dir.path(),
        "run-after-kill",
    );
    daemon.wait_for_stderr("the daemon to run", "running: following", START_TIMEOUT);
    let log = daemon.stderr();
    assert!(
        log.contains("left pending by a process that ended"),
        "{log}"
    );
    assert!(
        log.contains("reconciled: nothing to change"),
        "after the rollback the old config sends nothing\n{log}"
    );
    assert_eq!(lab.table().as_deref(), Some(before.as_str()));
    assert_eq!(lab.sysctls(), ("1".into(), "0".into()));
    assert_eq!(lab.pending_records(), Vec::<PathBuf>::new());
    daemon.stop_cleanly(STOP_TIMEOUT);
    assert_eq!(lab.table(), None);
    assert_eq!(lab.sysctls(), ("0".into(), "0".into()));
}

#[test]
fn a_daemon_config_change_nobody_confirms_reverts_and_a_confirmed_one_stays() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let confirm = "[confirm]\nwithin = \"3s\"\n";
    let config = lab.config("wasmwall.toml", "lan0", 80, confirm);
    let mut daemon = Child::spawn(&mut lab.wasmwall("run", &config), lab.dir.path(), "run");
    daemon.wait_for_stderr("the daemon to run", "running: following", START_TIMEOUT);
    let before = lab.table().unwrap();

    let changed = Instant::now();
    lab.write_config(&config, "lan1", 8080, confirm);
    wait_until("the new config's rules", START_TIMEOUT, || {
        match lab.table() {
            Some(t) if t.contains("tcp dport 8080") => Ok(()),
            t => Err(format!("{t:?}")),
        }
    });
    assert_eq!(lab.sysctls(), ("0".into(), "1".into()));
    let status = run(&mut lab.wasmwall("status", &config));
    assert!(
        status.stdout.contains("waiting for confirmation: config"),
        "{status}"
    );
    wait_until("the rollback", Duration::from_secs(3) + MARGIN, || {
        if lab.table().as_deref() == Some(before.as_str()) {
            Ok(())
        } else {
            Err("still the new table".into())
        }
    });
    eprintln!(
        "daemon: back to the old table {} ms after the config change (window 3 s)",
        changed.elapsed().as_millis()
    );
    assert_eq!(lab.sysctls(), ("1".into(), "0".into()));
    let status = run_unchecked(&mut lab.wasmwall("status", &config));
    assert!(
        status.stdout.contains("change rolled back: config"),
        "{status}"
    );
    assert!(
        daemon
            .stderr()
            .contains("rolled back to the rules and sysctls of before"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(lab.pending_records(), Vec::<PathBuf>::new());

    // A change confirmed over the control socket stays.
    lab.write_config(&config, "lan1", 8081, confirm);
    wait_until("the second config's rules", START_TIMEOUT, || {
        match lab.table() {
            Some(t) if t.contains("tcp dport 8081") => Ok(()),
            t => Err(format!("{t:?}")),
        }
    });
    let out = run(&mut lab.wasmwall("confirm", &config));
    assert!(out.stdout.contains("confirmed: config"), "{out}");
    std::thread::sleep(Duration::from_secs(3) + Duration::from_secs(1));
    assert!(lab.table().unwrap().contains("tcp dport 8081"), "it stays");
    assert_eq!(lab.pending_records(), Vec::<PathBuf>::new());
    daemon.stop_cleanly(STOP_TIMEOUT);
    assert_eq!(lab.table(), None);
    assert_eq!(lab.sysctls(), ("0".into(), "0".into()));
}

#[test]
fn a_failing_health_check_rolls_back_by_itself_and_a_passing_one_confirms() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let old = lab.config("old.toml", "lan0", 80, "");
    run(&mut lab.wasmwall("apply", &old));
    let before = lab.table().unwrap();

    // A command that fails: rolled back long before the 60 s.
    let failing = lab.config(
        "failing.toml",
        "lan1",
        8080,
        "[confirm]\ncheck_command = [\"false\"]\ncheck_interval = \"200ms\"\ncheck_failures = 2\n",
    );
    let started = Instant::now();
    let mut waiter = lab.apply_waiting(&failing, "60s", "apply-failing-check");
    let status = waiter.wait_timeout(Duration::from_secs(10));
    assert_eq!(status.code(), Some(4), "{}", waiter.stderr());
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        waiter
            .stderr()
            .contains("the health check failed 2 time(s) in a row"),
        "{}",
        waiter.stderr()
    );
    assert_eq!(lab.table().as_deref(), Some(before.as_str()));
    assert_eq!(lab.sysctls(), ("1".into(), "0".into()));

    // The daemon: a TCP check of a closed port rolls its change back.
    let daemon_config = lab.config(
        "daemon.toml",
        "lan0",
        80,
        "[confirm]\nwithin = \"60s\"\ncheck_tcp = \"127.0.0.1:9\"\ncheck_interval = \"200ms\"\n",
    );
    let mut daemon = Child::spawn(
        &mut lab.wasmwall("run", &daemon_config),
        lab.dir.path(),
        "run-check",
    );
    daemon.wait_for_stderr("the daemon to run", "running: following", START_TIMEOUT);
    lab.write_config(
        &daemon_config,
        "lan1",
        8080,
        "[confirm]\nwithin = \"60s\"\ncheck_tcp = \"127.0.0.1:9\"\ncheck_interval = \"200ms\"\n",
    );
    daemon.wait_for_stderr(
        "the health check's rollback",
        "rolled back to the rules and sysctls of before",
        Duration::from_secs(20),
    );
    assert!(
        daemon.stderr().contains("TCP connect to 127.0.0.1:9"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(lab.table().as_deref(), Some(before.as_str()));
    daemon.stop_cleanly(STOP_TIMEOUT);

    // A command that passes confirms by itself.
    let passing = lab.config(
        "passing.toml",
        "lan1",
        8080,
        "[confirm]\ncheck_command = [\"true\"]\ncheck_interval = \"200ms\"\ncheck_passes = 2\n",
    );
    let mut waiter = lab.apply_waiting(&passing, "60s", "apply-passing-check");
    let status = waiter.wait_timeout(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", waiter.stderr());
    assert!(
        waiter.stderr().contains("health check passed 2 time(s)"),
        "{}",
        waiter.stderr()
    );
    assert!(lab.table().unwrap().contains("tcp dport 8080"));
    lab.cleanup(&passing);
}
