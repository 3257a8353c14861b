//! Bad input everywhere but the policies: a config, a file, an event, the
//! permissions of what wasmwall is told to load. Each gets a clear error
//! naming the problem, and nothing that was working is lost.
//!
//! wasmwall runs from a throwaway namespace and acts (`--netns`) in another
//! one the test makes, never in the host's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wasmwall_e2e::{
    Netns, Output, compile_cache_dir, policy_wasm, run, run_unchecked, skip_unless_root, temp_dir,
    toml_path, wasmwall_bin,
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
