//! Builds the policies with `scripts/build-policies --no-install`, so that a
//! plain `cargo test` runs the end-to-end tests against fresh components.
//! It installs nothing (a `cargo check` must not fetch toolchains) and never
//! fails the build: what the installed toolchains cannot build is skipped
//! with a warning, and a test that needs it fails saying how to build it
//! (`scripts/test` builds everything first). The script builds in a target
//! directory of its own: no wait on the lock this build holds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The most lines of the script's output shown as warnings: a failed
/// compile can print hundreds.
const MAX_WARNINGS: usize = 20;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("the e2e crate lives one level below the workspace root");
    for input in [
        "policies",
        "tests/policies",
        "sdk",
        "wit",
        "scripts/build-policies",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }
    for line in build_policies(root) {
        println!("cargo::warning={line}");
    }
}

/// Runs the script; what to show as warnings: the lines it printed (one per
/// policy it skipped, and what failed), and why it failed if it did.
fn build_policies(root: &Path) -> Vec<String> {
    let script = root.join("scripts/build-policies");
    let run = format!("`{} --quiet --no-install`", script.display());
    let output = match Command::new(&script)
        .args(["--quiet", "--no-install"])
        // Flags meant for this crate's host build must not reach the wasm build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
    {
        Ok(output) => output,
        Err(e) => return vec![format!("cannot run {run}: {e}; no policy was built")],
    };
    let mut lines = Vec::new();
    if !output.status.success() {
        lines.push(format!(
            "{run} failed ({}); the tests that need a policy it did not build say so",
            output.status
        ));
    }
    for printed in [&output.stdout, &output.stderr] {
        lines.extend(
            String::from_utf8_lossy(printed)
                .lines()
                .map(str::trim_end)
                .filter(|line| !line.is_empty())
                .map(String::from),
        );
    }
    if lines.len() > MAX_WARNINGS {
        let more = lines.len() - MAX_WARNINGS;
        lines.truncate(MAX_WARNINGS);
        lines.push(format!(
            "({more} more lines: run scripts/build-policies to see them all)"
        ));
    }
    lines
}
