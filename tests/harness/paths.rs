//! Where the things under test are: the workspace, the `wasmwall` binary
//! cargo built, the policy components `scripts/build-policies` built, and
//! the compile cache the tests share.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::root::euid;

/// The port-forward policy in each language it is written in, as (language,
/// component name for [`policy_wasm`]); the Rust one, the reference, first.
pub const PORT_FORWARD_LANGUAGES: [(&str, &str); 3] = [
    ("Rust", "port-forward"),
    ("Python", "port-forward-py"),
    ("JavaScript", "port-forward-js"),
];

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives one level below the workspace root")
        .to_path_buf()
}

/// The release `wasmwall` binary the benches measure: `$WASMWALL_BIN`, or
/// target/release/wasmwall, which must be built first.
pub fn release_bin() -> PathBuf {
    match std::env::var_os("WASMWALL_BIN") {
        Some(b) => PathBuf::from(b),
        None => {
            let bin = repo_root().join("target/release/wasmwall");
            assert!(
                bin.is_file(),
                "build it first: cargo build --release -p wasmwall"
            );
            bin
        }
    }
}

/// The `wasmwall` binary under test: `$WASMWALL_BIN`, or the one cargo built
/// next to this test binary (target/debug/deps/<test> -> target/debug).
pub fn wasmwall_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("WASMWALL_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "WASMWALL_BIN points to {}, which is not a file",
            bin.display()
        );
        return bin;
    }
    let test_exe = std::env::current_exe().expect("path of the running test binary");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("wasmwall");
    assert!(
        bin.is_file(),
        "{} does not exist: build it with `cargo build -p wasmwall` \
         (or run everything with `scripts/test`)",
        bin.display()
    );
    bin
}

/// A policy component built by `scripts/build-policies`, e.g. "port-forward".
pub fn policy_wasm(name: &str) -> PathBuf {
    let wasm = repo_root()
        .join("target/policies")
        .join(format!("{name}.wasm"));
    assert!(
        wasm.is_file(),
        "{} does not exist: build it with `scripts/build-policies` \
         (or run everything with `scripts/test`)",
        wasm.display()
    );
    wasm
}

/// The compile cache the tests share with `scripts/test`: a policy is
/// compiled once per machine, not once per test (a Python or JavaScript
/// policy takes seconds). The runtime takes only a directory of the user it
/// runs as, mode 0700: `target/compile-cache`, unless another user made that
/// one (root, through `sudo scripts/test`); then one of this user's own in
/// the temporary directory.
pub fn compile_cache_dir() -> PathBuf {
    let shared = repo_root().join("target/compile-cache");
    if create_private_dir(&shared).is_ok_and(|owner| owner == euid()) {
        return shared;
    }
    let own = std::env::temp_dir().join(format!("wasmwall-e2e-compile-cache-{}", euid()));
    create_private_dir(&own).unwrap_or_else(|e| panic!("cannot create {}: {e}", own.display()));
    own
}

/// Creates `dir` (0700) unless it exists; the uid of its owner.
fn create_private_dir(dir: &Path) -> io::Result<u32> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    Ok(fs::metadata(dir)?.uid())
}
