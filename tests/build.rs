//! Builds the example policies with `scripts/build-policies`, so that a plain
//! `cargo test` runs the end-to-end tests against fresh components. The
//! script builds in a target directory of its own: no wait on the lock this
//! build holds.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("the e2e crate lives one level below the workspace root");
    for input in ["policies", "sdk", "wit", "scripts/build-policies"] {
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }

    let script = root.join("scripts/build-policies");
    let output = Command::new(&script)
        .arg("--quiet")
        // Flags meant for this crate's host build must not reach the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !output.status.success() {
        panic!(
            "`{} --quiet` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
