//! `wasmwall why` run as a user runs it, with `--state` (no root, no
//! kernel): the seed (phone 192.168.0.2 to the laptop's port 80 on lan0,
//! DNATed to a server on 127.0.0.1:4000) through the port-forward policy,
//! which asks for route_localnet, and through `seed-mistake`, the same
//! forward without it, which the kernel's routing drops. And with
//! `--applied`, against the table `wasmwall apply` put in a network
//! namespace of the test's own, with the sysctls that namespace has.

use std::path::Path;
use std::process::Command;

use wasmwall_e2e::{
    Netns, compile_cache_dir, policy_wasm, repo_root, run, run_unchecked, skip_unless_root,
    temp_dir, toml_path, wasmwall_bin,
};

const SEED: [&str; 6] = [
    "tcp",
    "192.168.0.2:5000",
    "->",
    "192.168.0.9:80",
    "in",
    "lan0",
];

/// A config running `policy`, in `dir`.
fn config(dir: &Path, policy: &str) -> std::path::PathBuf {
    let path = dir.join("wasmwall.toml");
    let text = format!(
        "state_dir = {}\n[cache]\ndir = {}\n\n[[policy]]\nname = \"{policy}\"\npath = {}\n",
        toml_path(&dir.join("state")),
        toml_path(&compile_cache_dir()),
        toml_path(&policy_wasm(policy)),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn why(config: &Path, extra: &[&str]) -> wasmwall_e2e::Output {
    let state = repo_root().join("policies/port-forward/fixtures/lan.json");
    run_unchecked(
        Command::new(wasmwall_bin())
            .arg("why")
            .arg("--config")
            .arg(config)
            .arg("--state")
            .arg(state)
            .args(extra)
            .args(SEED),
    )
}

#[test]
fn the_seed_is_accepted_by_the_dnat_rule_and_the_input_rule() {
    let dir = temp_dir();
    let out = why(&config(dir.path(), "port-forward"), &[]);
    println!("{}", out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out}");
    assert!(out.stdout.contains(
        "verdict     accepted: by rule 1 of port-forward/prerouting (\"port 80 to 127.0.0.1:4000\"), then rule 1 of port-forward/input"
    ), "{out}");
    assert!(
        out.stdout.contains(
            "sysctl      net.ipv4.conf.lan0.route_localnet = 1 (set by policy port-forward)"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("  dnat      destination now 127.0.0.1:4000"),
        "{out}"
    );
}

#[test]
fn the_seeds_mistake_is_named_route_localnet() {
    let dir = temp_dir();
    let config = config(dir.path(), "seed-mistake");
    let out = why(&config, &[]);
    println!("{}", out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stdout
            .contains("verdict     dropped: by the kernel's routing (martian destination)"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("fix         set net.ipv4.conf.lan0.route_localnet = 1"),
        "{out}"
    );
    assert!(
        !out.stdout.contains("\ninput"),
        "the packet must not reach input: {out}"
    );
    // The sysctl given: accepted by the DNAT rule and the input rule.
    let out = why(
        &config,
        &["--sysctl", "net.ipv4.conf.lan0.route_localnet=1", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "accepted");
    assert_eq!(
        report["by"],
        "rule 1 of seed-mistake/prerouting (\"seed forward\"), then rule 1 of seed-mistake/input (\"the server\")"
    );
    assert_eq!(report["sysctls"][0]["source"]["kind"], "given");
}

#[test]
fn a_bad_packet_is_an_error_naming_the_syntax() {
    let dir = temp_dir();
    let out = run_unchecked(
        Command::new(wasmwall_bin())
            .arg("why")
            .arg("--config")
            .arg(config(dir.path(), "port-forward"))
            .args(["tcp", "192.168.0.2", "->", "192.168.0.9"]),
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("tcp needs a destination port"), "{out}");
}

#[test]
fn applied_walks_what_the_daemon_applied_with_the_namespaces_sysctls() {
    if skip_unless_root() {
        return;
    }
    let ns = Netns::new("why");
    ns.add_interface("lan0", "192.168.0.9/24");
    let dir = temp_dir();
    let config = dir.path().join("wasmwall.toml");
    std::fs::write(
        &config,
        format!(
            "netns = \"{}\"\nstate_dir = {}\n[cache]\ndir = {}\n\n[[policy]]\nname = \"port-forward\"\npath = {}\n[policy.config]\nlan_interface = \"lan0\"\n",
            ns.name(),
            toml_path(&dir.path().join("state")),
            toml_path(&compile_cache_dir()),
            toml_path(&policy_wasm("port-forward")),
        ),
    )
    .unwrap();
    let wasmwall = |args: &[&str]| {
        let mut cmd = Command::new(wasmwall_bin());
        cmd.args(args).arg("--config").arg(&config);
        cmd
    };
    run(&mut wasmwall(&["apply"]));
    // apply set route_localnet in the namespace; `why` reads it there.
    assert_eq!(ns.sysctl("net/ipv4/conf/lan0/route_localnet"), "1");
    let out = run(wasmwall(&["why", "--applied"]).args(SEED));
    println!("{}", out.stdout);
    assert!(
        out.stdout
            .contains("sysctl      net.ipv4.conf.lan0.route_localnet = 1 (read from /proc/sys)"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("verdict     accepted: by rule 1 of port-forward/prerouting"),
        "{out}"
    );
    // Turned off by hand: the live value says why the forward broke.
    ns.set_sysctl("net/ipv4/conf/lan0/route_localnet", "0");
    let out = run_unchecked(wasmwall(&["why", "--applied"]).args(SEED));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stdout
            .contains("fix         set net.ipv4.conf.lan0.route_localnet = 1"),
        "{out}"
    );
    run(&mut wasmwall(&["cleanup"]));
}
