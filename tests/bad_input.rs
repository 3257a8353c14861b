//! Bad input everywhere but the policies: a config, a file, an event, the
//! permissions of what wasmwall is told to load. Each gets a clear error
//! naming the problem, and nothing that was working is lost.
//!
//! wasmwall runs from a throwaway namespace and acts (`--netns`) in another
//! one the test makes, never in the host's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmwall_e2e::{
    Child, Netns, Output, START_TIMEOUT, STOP_TIMEOUT, compile_cache_dir, policy_wasm, run,
    run_unchecked, skip_unless_root, temp_dir, toml_path, wasmwall_bin,
};

struct Setup {
    ns: Netns,
    launcher: Netns,
    dir: PathBuf,
    _tmp: wasmwall_e2e::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let tmp = temp_dir();
        let ns = Netns::new("bad");
        ns.add_interface("lan0", "192.168.7.1/24");
        Setup {
            ns,
            launcher: Netns::new("launcher"),
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    }

    /// A config of the given policies: (name, wasm path, extra config lines).
    fn config(&self, file: &str, policies: &[(&str, &Path, &str)]) -> PathBuf {
        let mut toml = format!(
            "state_dir = {}\n[cache]\ndir = {}\n",
            toml_path(&self.dir.join("state")),
            toml_path(&compile_cache_dir()),
        );
        for (name, path, extra) in policies {
            toml.push_str(&format!(
                "[[policy]]\nname = \"{name}\"\npath = {}\n[policy.config]\nlan_interface = \"lan0\"\n{extra}\n",
                toml_path(path)
            ));
        }
        let path = self.dir.join(file);
        fs::write(&path, toml).unwrap();
        path
    }

    fn wasmwall(&self, args: &[&str]) -> Output {
        let mut cmd = self.launcher.command(wasmwall_bin());
        cmd.args(args).args(["--netns", self.ns.name()]);
        run_unchecked(&mut cmd)
    }

    fn chain(&self, chain: &str) -> Option<String> {
        let out = self
            .ns
            .run_unchecked(["nft", "list", "chain", "inet", "wasmwall", chain]);
        out.success().then_some(out.stdout)
    }
}

fn assert_error(out: &Output, code: i32, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{out}");
    for n in needles {
        assert!(out.stderr.contains(n), "missing {n:?}:\n{out}");
    }
}

#[test]
fn broken_configs_and_files_are_named_and_change_nothing() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new();
    let good = s.config("good.toml", &[("pf", &policy_wasm("port-forward"), "")]);
    let g = good.to_string_lossy().to_string();
    run(&mut {
        let mut c = s.launcher.command(wasmwall_bin());
        c.args(["apply", "-c", &g, "--netns", s.ns.name()]);
        c
    });
    let before = s.ns.run(["nft", "list", "ruleset"]).stdout;

    // Malformed TOML: the line and column.
    let broken = s.dir.join("broken.toml");
    fs::write(&broken, "table = \"wasmwall\"\n[[policy]\nname = \"pf\"\n").unwrap();
    let out = s.wasmwall(&["apply", "-c", &broken.to_string_lossy()]);
    assert_error(&out, 1, &["broken.toml", "line 2, column 10"]);

    // An unknown key, a bad value.
    fs::write(&broken, "tabel = \"x\"\n").unwrap();
    assert_error(
        &s.wasmwall(&["apply", "-c", &broken.to_string_lossy()]),
        1,
        &["tabel"],
    );
    fs::write(
        &broken,
        "table = \"no spaces\"\n[[policy]]\nname=\"a\"\npath=\"a.wasm\"\n",
    )
    .unwrap();
    assert_error(
        &s.wasmwall(&["apply", "-c", &broken.to_string_lossy()]),
        1,
        &["`table`"],
    );

    // Missing files.
    assert_error(
        &s.wasmwall(&["apply", "-c", "/nonexistent/wasmwall.toml"]),
        1,
        &["/nonexistent/wasmwall.toml"],
    );

    // A missing policy file and a policy config key the policy does not
    // know: those policies fail, named, and keep what they had; the good
    // one goes on.
    let missing = s.dir.join("missing.wasm");
    let mixed = s.config(
        "mixed.toml",
        &[
            ("pf", &policy_wasm("port-forward"), ""),
            ("gone", &missing, ""),
            ("typo", &policy_wasm("port-forward"), "listen_prot = 81"),
        ],
    );
    let out = s.wasmwall(&["apply", "-c", &mixed.to_string_lossy()]);
    assert_error(
        &out,
        1,
        &[
            "policy gone",
            "missing.wasm",
            "policy typo",
            "unknown config key `listen_prot`",
            "2 policies failed (gone, typo)",
        ],
    );
    assert_eq!(s.ns.run(["nft", "list", "ruleset"]).stdout, before);

    // A policy file that is a directory.
    let dir_policy = s.config("dir.toml", &[("pf", &s.dir, "")]);
    let out = s.wasmwall(&["apply", "-c", &dir_policy.to_string_lossy()]);
    assert_error(&out, 1, &["policy pf"]);
    assert_eq!(
        s.ns.run(["nft", "list", "ruleset"]).stdout,
        before,
        "pf keeps its last known good rules"
    );

    let out = s.wasmwall(&["cleanup", "-c", &g]);
    assert!(out.success(), "{out}");
}

#[test]
fn invalid_events_are_refused_with_the_reason() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new();
    let wasm = policy_wasm("port-forward");
    for (event, reason) in [
        ("reboot", "unknown event kind"),
        ("lease-added=nomac,10.0.0.2,lan0", "not six hex pairs"),
        (
            "lease-added=aa:bb:cc:dd:ee:ff,10.0.0.300,lan0",
            "not an IPv4 or IPv6 address",
        ),
        (
            "interface-up=an-interface-name-too-long",
            "at most 15 bytes",
        ),
        ("address-added=lan0,10.0.0.1/33", "more than 32"),
    ] {
        let mut cmd = s.launcher.command(wasmwall_bin());
        cmd.arg("eval").arg(&wasm).args(["--event", event]);
        let out = run_unchecked(&mut cmd);
        assert_error(&out, 2, &[reason, event]);
    }
    // A state file with a bad field names the file and the field.
    let state = s.dir.join("state.json");
    fs::write(
        &state,
        r#"{"interfaces":[{"name":"lan0","addresses":["10.0.0.1/24"]}],
            "leases":[{"mac":"zz","ip":"10.0.0.2","iface":"lan0"}]}"#,
    )
    .unwrap();
    let mut cmd = s.launcher.command(wasmwall_bin());
    cmd.arg("eval").arg(&wasm).arg("--state").arg(&state);
    assert_error(
        &run_unchecked(&mut cmd),
        1,
        &["state.json", "leases[0]", "MAC \"zz\""],
    );
}

#[test]
fn files_others_could_write_are_refused_unless_overridden() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new();
    // Copies of the policy in a directory of the test's own.
    let policies = s.dir.join("policies");
    fs::create_dir(&policies).unwrap();
    let pf = policies.join("pf.wasm");
    let other = policies.join("other.wasm");
    fs::copy(policy_wasm("port-forward"), &pf).unwrap();
    fs::copy(policy_wasm("port-forward"), &other).unwrap();
    let config = s.config(
        "perm.toml",
        &[
            ("pf", &pf, ""),
            (
                "other",
                &other,
                "listen_port = 8080\ntarget = \"127.0.0.1:4001\"",
            ),
        ],
    );
    let c = config.to_string_lossy().to_string();
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();

    // A config file anyone can write: refused before anything else.
    mode(&config, 0o666);
    let out = s.wasmwall(&["apply", "-c", &c]);
    assert_error(
        &out,
        1,
        &[
            "refusing config file",
            "perm.toml",
            "writable by everyone",
            "--insecure-permissions",
        ],
    );
    assert_eq!(s.chain("pf/input"), None, "nothing applied");
    mode(&config, 0o644);

    // A policy anyone can replace: that policy is refused, the other runs.
    mode(&other, 0o666);
    let out = s.wasmwall(&["apply", "-c", &c]);
    assert_error(
        &out,
        1,
        &[
            "policy other",
            "refusing policy file",
            "other.wasm",
            "writable by everyone",
        ],
    );
    assert!(s.chain("pf/input").is_some(), "pf applied");
    assert_eq!(s.chain("other/input"), None, "other refused");

    // A directory above it anyone can write: same.
    mode(&other, 0o644);
    mode(&policies, 0o777);
    let out = s.wasmwall(&["apply", "-c", &c]);
    assert_error(&out, 1, &["directory", "policies", "writable by everyone"]);

    // The operator says so explicitly: both run.
    let out = s.wasmwall(&["apply", "-c", &c, "--insecure-permissions"]);
    assert!(out.success(), "{out}");
    assert!(s.chain("other/input").is_some());
    mode(&policies, 0o755);

    // The state file and its directory are root's alone.
    let state_dir = s.dir.join("state");
    let dir_mode = fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    for f in fs::read_dir(&state_dir).unwrap() {
        let f = f.unwrap().path();
        let m = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(m & 0o077, 0, "{} is mode {m:o}", f.display());
    }
    let out = s.wasmwall(&["cleanup", "-c", &c]);
    assert!(out.success(), "{out}");
}

/// How long a command given a FIFO, a device or an oversized file may take
/// to fail (it used to hang, or read gigabytes).
const AT_ONCE: Duration = Duration::from_secs(5);

impl Setup {
    /// `wasmwall ARGS --netns NS`, which must fail within [`AT_ONCE`] with
    /// each of `needles` in its stderr.
    fn fails_at_once(&self, args: &[&str], needles: &[&str]) -> String {
        let mut cmd = self.launcher.command(wasmwall_bin());
        cmd.args(args).args(["--netns", self.ns.name()]);
        fails_at_once(&mut cmd, &self.dir, needles)
    }

    fn mkfifo(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        run(Command::new("mkfifo").arg(&path));
        path
    }
}

fn fails_at_once(cmd: &mut Command, log_dir: &Path, needles: &[&str]) -> String {
    let mut child = Child::spawn(cmd, log_dir, "quick");
    let status = child.wait_timeout(AT_ONCE);
    assert!(!status.success(), "{child}");
    let stderr = child.stderr();
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?}:\n{child}");
    }
    stderr
}

#[test]
fn fifos_devices_and_oversized_files_are_refused_at_once() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new();
    let fifo = s.mkfifo("fifo");
    let f = fifo.to_string_lossy().to_string();
    let is_fifo = format!("{f} is a FIFO (named pipe), not a regular file");
    let zero = "/dev/zero is a character device, not a regular file";

    // The config: every command that reads one.
    for command in ["apply", "plan", "run", "cleanup", "status"] {
        s.fails_at_once(&[command, "-c", &f], &[&format!("config file {is_fifo}")]);
    }
    for args in [
        &["apply", "-c", "/dev/zero", "--insecure-permissions"][..],
        &["plan", "-c", "/dev/zero", "--insecure-permissions"],
        &["cleanup", "-c", "/dev/zero"],
        &["status", "-c", "/dev/zero"],
    ] {
        s.fails_at_once(args, &[&format!("config file {zero}")]);
    }
    // Checked before reading: a sparse file of 1 MiB and one byte.
    let big = s.dir.join("big.toml");
    fs::File::create(&big)
        .unwrap()
        .set_len((1 << 20) + 1)
        .unwrap();
    s.fails_at_once(
        &["apply", "-c", &big.to_string_lossy()],
        &["big.toml is larger than 1 MiB"],
    );

    // A policy: that policy fails, named, the other is applied.
    let pf = policy_wasm("port-forward");
    for (path, needle) in [
        (fifo.as_path(), is_fifo.as_str()),
        (Path::new("/dev/zero"), zero),
    ] {
        let config = s.config("policy.toml", &[("pf", &pf, ""), ("gone", path, "")]);
        let c = config.to_string_lossy().to_string();
        for command in ["apply", "plan"] {
            s.fails_at_once(
                &[command, "-c", &c, "--insecure-permissions"],
                &["policy gone", &format!("policy file {needle}")],
            );
        }
        assert!(s.chain("pf/input").is_some(), "pf is applied");
        assert!(s.chain("gone/input").is_none());
    }
    // And for `eval`, as a policy and as the world state.
    for (policy, state, needle) in [
        (f.as_str(), None, format!("policy file {is_fifo}")),
        ("/dev/zero", None, format!("policy file {zero}")),
        (
            &*pf.to_string_lossy(),
            Some(f.as_str()),
            format!("world state file {is_fifo}"),
        ),
        (
            &*pf.to_string_lossy(),
            Some("/dev/zero"),
            format!("world state file {zero}"),
        ),
    ] {
        let mut cmd = s.launcher.command(wasmwall_bin());
        cmd.args(["eval", policy]);
        if let Some(state) = state {
            cmd.args(["--state", state]);
        }
        fails_at_once(&mut cmd, &s.dir, &[&needle]);
    }

    // The state file.
    let good = s.config("good.toml", &[("pf", &pf, "")]);
    let g = good.to_string_lossy().to_string();
    let state_file = s
        .dir
        .join(format!("state/netns-{}.wasmwall.json", s.ns.name()));
    let held = state_file.with_extension("held");
    fs::rename(&state_file, &held).unwrap();
    run(Command::new("mkfifo").arg(&state_file));
    let needle = format!("state file {} is a FIFO", state_file.display());
    for command in ["apply", "plan", "cleanup"] {
        s.fails_at_once(&[command, "-c", &g], &[&needle]);
    }
    fs::rename(&held, &state_file).unwrap();

    // `run`: a FIFO as a policy, as the kept leases and as the snapshot
    // costs that policy and those files, not the daemon.
    let leases = state_file.with_extension("leases");
    let snapshot = state_file.with_extension("snapshot");
    let _ = fs::remove_file(&snapshot);
    for p in [&leases, &snapshot] {
        run(Command::new("mkfifo").arg(p));
    }
    let config = s.config("run.toml", &[("pf", &pf, ""), ("gone", &fifo, "")]);
    let mut cmd = s.launcher.command(wasmwall_bin());
    cmd.args([
        "run",
        "-c",
        &config.to_string_lossy(),
        "--netns",
        s.ns.name(),
    ]);
    let mut daemon = Child::spawn(&mut cmd, &s.dir, "run");
    daemon.wait_until_running(START_TIMEOUT);
    let log = daemon.stderr();
    for needle in [
        format!("policy file {is_fifo}"),
        format!("kept leases {} is a FIFO", leases.display()),
    ] {
        assert!(log.contains(&needle), "missing {needle:?}\n{daemon}");
    }
    assert!(s.chain("pf/input").is_some(), "pf is applied");
    daemon.stop_cleanly(STOP_TIMEOUT);
}

#[test]
fn config_numbers_out_of_range_are_named_never_wrapped() {
    if skip_unless_root() {
        return;
    }
    let s = Setup::new();
    let pf = policy_wasm("port-forward");
    // 2^44 + 1 MiB was 1 MiB once shifted into bytes: a cap of 1 MiB.
    for (line, needle) in [
        (
            "[limits]\nmemory_mib = 17592186044417",
            "`limits.memory_mib` = 17592186044417 is out of range: it must be 1 to 4096",
        ),
        (
            "[limits]\ndeadline_ms = -1",
            "`limits.deadline_ms` = -1 is out of range: it must be 1 to 60000",
        ),
        (
            "[limits]\nlog_lines = 4294967297",
            "`limits.log_lines` = 4294967297 is out of range: it must be 0 to 10000",
        ),
        (
            "[leases]\nmax = 0",
            "`leases.max` = 0 is out of range: it must be 1 to 1000000",
        ),
    ] {
        let mut config = fs::read_to_string(s.config("n.toml", &[("pf", &pf, "")])).unwrap();
        config.push_str(line);
        let path = s.dir.join("n.toml");
        fs::write(&path, config).unwrap();
        let out = s.wasmwall(&["apply", "-c", &path.to_string_lossy()]);
        assert_error(&out, 1, &["n.toml", needle]);
    }
    assert_eq!(s.chain("pf/input"), None, "nothing applied");
    let mut cmd = s.launcher.command(wasmwall_bin());
    cmd.arg("eval")
        .arg(&pf)
        .args(["--memory-mib", "17592186044417"]);
    assert_error(
        &run_unchecked(&mut cmd),
        1,
        &["`--memory-mib` = 17592186044417 is out of range: it must be 1 to 4096"],
    );
}
