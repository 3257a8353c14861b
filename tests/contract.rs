//! The 0.1.0 contract keeps working: components built against
//! `wasmwall:policy@0.1.0` before 0.2.0 existed (kept in
//! `tests/fixtures/v0.1`, with the fixtures their policies had then) load
//! and give exactly the rules they gave, byte for byte, while the example
//! policies are built against 0.2.0.

use std::fs;
use std::path::Path;

use wasmwall_e2e::{files_in, policy_wasm, repo_root, run, wasmwall_bin};

/// Whether a component imports the contract's types of `version`: its
/// import names are in the binary as they are.
fn imports_contract(wasm: &Path, version: &str) -> bool {
    let bytes = fs::read(wasm).expect("read the component");
    let name = format!("wasmwall:policy/types@{version}");
    bytes
        .windows(name.len())
        .any(|window| window == name.as_bytes())
}

#[test]
fn components_built_against_0_1_give_the_rules_they_gave() {
    for policy in ["home-router", "port-forward"] {
        let dir = repo_root().join("tests/fixtures/v0.1").join(policy);
        let wasm = dir.join(format!("{policy}.wasm"));
        assert!(
            imports_contract(&wasm, "0.1.0"),
            "{} is not a 0.1.0 component",
            wasm.display()
        );
        let fixtures = dir.join("fixtures");
        let count = files_in(&fixtures)
            .iter()
            .filter(|d| d.join("fixture.toml").is_file())
            .count();
        assert!(
            count >= 15,
            "only {count} fixtures in {}",
            fixtures.display()
        );
        let out = run(std::process::Command::new(wasmwall_bin())
            .arg("test")
            .arg(&wasm)
            .arg(&fixtures)
            .args(["--name", policy]));
        assert!(
            out.stdout
                .contains(&format!("fixtures: {count} passed, 0 failed")),
            "{policy}:\n{out}"
        );
    }
}

#[test]
fn the_example_policies_are_built_against_0_2() {
    for policy in [
        "home-router",
        "port-forward",
        "port-forward-py",
        "port-forward-js",
    ] {
        let wasm = policy_wasm(policy);
        assert!(imports_contract(&wasm, "0.2.0"), "{}", wasm.display());
        assert!(!imports_contract(&wasm, "0.1.0"), "{}", wasm.display());
    }
}
