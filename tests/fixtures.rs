//! The example policies' fixtures against the kernel and against `run`:
//! every expected ruleset is nft text that `nft -f` takes as it is, and a
//! fixture is judged by `wasmwall test --config` exactly as `wasmwall apply`
//! with that config judges the policy's answer.

use std::fs;
use std::path::{Path, PathBuf};

use wasmwall_e2e::{
    Netns, compile_cache_dir, files_in, policy_wasm, repo_root, run, run_unchecked,
    skip_unless_root, temp_dir, toml_path, wasmwall_bin, wasmwall_in,
};

/// Every `expected.nft` of every example policy.
fn expected_rulesets() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for policy in files_in(&repo_root().join("policies"))
        .into_iter()
        .filter(|p| p.is_dir())
    {
        for fixture in files_in(&policy.join("fixtures")) {
            let nft = fixture.join("expected.nft");
            if nft.is_file() {
                found.push(nft);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_expected_ruleset_loads_with_nft() {
    if skip_unless_root() {
        return;
    }
    let rulesets = expected_rulesets();
    assert!(rulesets.len() >= 20, "found only {rulesets:?}");
    let ns = Netns::new("nftcheck");
    let flowtables = kernel_has_flowtables(&ns);
    let mut refused = Vec::new();
    let mut without_flowtables = 0;
    for file in &rulesets {
        let out = ns.run_unchecked([Path::new("nft"), Path::new("-c"), Path::new("-f"), file]);
        if out.success() {
            continue;
        }
        if !flowtables && only_flowtables_refused(&out.stderr) {
            without_flowtables += 1;
            continue;
        }
        refused.push(format!("{}:\n{}", file.display(), out.stderr));
    }
    if without_flowtables > 0 {
        println!(
            "{without_flowtables} ruleset(s) with a flowtable: this kernel has no flowtables, so \
             nft parsed them and the kernel refused only the flowtable and its `flow add`"
        );
    }
    assert!(
        refused.is_empty(),
        "nft -c -f refused:\n{}",
        refused.join("\n")
    );
    println!("{} expected rulesets load with nft -f", rulesets.len());
}

/// Whether the kernel makes flowtables (`CONFIG_NF_FLOW_TABLE`): `nft -c`
/// of one on the loopback interface, in `ns`.
fn kernel_has_flowtables(ns: &Netns) -> bool {
    let probe = temp_dir();
    let file = probe.path().join("flowtable.nft");
    fs::write(
        &file,
        "table inet probe {\n\tflowtable f {\n\t\thook ingress priority 0\n\t\tdevices = { lo }\n\t}\n}\n",
    )
    .expect("write the probe");
    ns.run_unchecked([Path::new("nft"), Path::new("-c"), Path::new("-f"), &file])
        .success()
}

/// Whether every error nft printed is the kernel's ENOENT for a flowtable
/// or a rule adding to one (what a kernel without flowtables answers), so
/// that nft itself took the text.
fn only_flowtables_refused(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().collect();
    let errors: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("Error:"))
        .collect();
    !errors.is_empty()
        && errors.iter().all(|&i| {
            lines[i].contains("Could not process rule: No such file or directory")
                && lines
                    .get(i + 1)
                    .is_some_and(|l| l.contains("flowtable ") || l.contains("flow add @"))
        })
}

/// A config for port-forward with `settings` in its [[policy]] and `top`
/// at the top.
fn config(dir: &Path, name: &str, top: &str, settings: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "state_dir = {state}\n{top}\n[cache]\ndir = {cache}\n\n\
         [[policy]]\nname = \"port-forward\"\npath = {policy}\n{settings}\n\
         [policy.config]\nlan_interface = \"lan0\"\n",
        state = toml_path(&dir.join("state")),
        cache = toml_path(&compile_cache_dir()),
        policy = toml_path(&policy_wasm("port-forward")),
    );
    fs::write(&path, text).expect("write the config");
    path
}

#[test]
fn a_fixture_fails_under_wasmwall_test_as_its_policy_fails_under_apply() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let fixtures = repo_root().join("policies/port-forward/fixtures");
    let test = |config: Option<&Path>| {
        let mut cmd = std::process::Command::new(wasmwall_bin());
        cmd.arg("test")
            .arg(policy_wasm("port-forward"))
            .arg(&fixtures)
            .args(["--name", "port-forward", "--fixture", "default-config"])
            .arg("--cache-dir")
            .arg(compile_cache_dir());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        run_unchecked(&mut cmd)
    };
    assert!(test(None).success(), "{}", test(None));

    let fw = Netns::new("fw");
    fw.add_interface("lan0", "192.168.0.9/24");
    let launcher = Netns::new("launcher");
    // Rules `run` holds the policy to that the defaults do not: its nat
    // chain moved below connection tracking by the offset; fewer rules.
    for (name, top, settings, why) in [
        (
            "offset.toml",
            "",
            "priority_offset = -150",
            "with the policy's priority_offset -150",
        ),
        (
            "rules.toml",
            "[limits]\nmax_rules = 2",
            "",
            "the limit is 2",
        ),
    ] {
        let config = config(dir.path(), name, top, settings);
        let apply = run_unchecked(&mut wasmwall_in(&launcher, &fw, "apply", &config));
        assert!(!apply.success() && apply.stderr.contains(why), "{apply}");
        let tested = test(Some(&config));
        assert!(!tested.success(), "{tested}");
        assert!(
            tested.stdout.contains("FAIL  default-config") && tested.stdout.contains(why),
            "{tested}"
        );
    }
    // A config that says nothing more passes both.
    let plain = config(dir.path(), "plain.toml", "", "");
    run(&mut wasmwall_in(&launcher, &fw, "apply", &plain));
    assert!(test(Some(&plain)).success());
    run(&mut wasmwall_in(&launcher, &fw, "cleanup", &plain));
}

/// `wasmwall eval --file` and a fixture's `[files]` give a policy a file's
/// text as a config value, as `[policy.files]` gives it under `run`.
#[test]
fn a_files_text_is_a_config_value_for_eval_and_for_a_fixture() {
    let dir = temp_dir();
    let sources = dir.path().join("sources");
    fs::write(&sources, "192.168.0.2,\n192.168.0.3\n").unwrap();
    let eval = |args: &[&str]| {
        let mut cmd = std::process::Command::new(wasmwall_bin());
        cmd.arg("eval")
            .arg(policy_wasm("port-forward"))
            .args(["--name", "port-forward", "--set", "lan_interface=lan0"])
            .args(args)
            .arg("--cache-dir")
            .arg(compile_cache_dir());
        run_unchecked(&mut cmd)
    };
    let file_arg = format!("allowed_sources={}", sources.display());
    let rules = eval(&["--file", &file_arg]);
    assert!(rules.success(), "{rules}");
    for source in ["ip saddr 192.168.0.2 ", "ip saddr 192.168.0.3 "] {
        assert!(rules.stdout.contains(source), "{rules}");
    }
    let both = eval(&["--set", "allowed_sources=10.0.0.1", "--file", &file_arg]);
    assert!(
        !both.success()
            && both
                .stderr
                .contains("config key `allowed_sources` is given to both --set and --file"),
        "{both}"
    );
    let missing = dir.path().join("missing");
    let missing_arg = format!("allowed_sources={}", missing.display());
    let refused = eval(&["--file", &missing_arg]);
    assert!(
        !refused.success()
            && refused.stderr.contains(&format!(
                "--file {missing_arg}: cannot read policy input file {}",
                missing.display()
            )),
        "{refused}"
    );

    // A fixture naming the same file expects what eval printed, and fails
    // once the file says otherwise.
    let fixture = dir.path().join("fixtures/sources");
    fs::create_dir_all(&fixture).unwrap();
    fs::write(
        fixture.join("fixture.toml"),
        "[config]\nlan_interface = \"lan0\"\n[files]\nallowed_sources = \"../../sources\"\n",
    )
    .unwrap();
    fs::write(fixture.join("expected.nft"), &rules.stdout).unwrap();
    let test = || {
        let mut cmd = std::process::Command::new(wasmwall_bin());
        cmd.arg("test")
            .arg(policy_wasm("port-forward"))
            .arg(dir.path().join("fixtures"))
            .args(["--name", "port-forward", "--cache-dir"])
            .arg(compile_cache_dir());
        run_unchecked(&mut cmd)
    };
    let passed = test();
    assert!(
        passed.success() && passed.stdout.contains("ok    sources"),
        "{passed}"
    );
    fs::write(&sources, "192.168.0.2\n").unwrap();
    let failed = test();
    assert!(
        !failed.success()
            && failed
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with('-') && l.contains("ip saddr 192.168.0.3 ")),
        "{failed}"
    );
}
