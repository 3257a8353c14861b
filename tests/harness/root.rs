//! Who the tests run as. Most end-to-end tests need root (network
//! namespaces, nftables); run as another user they skip, saying so on one
//! line, so that a contributor's plain `cargo test` passes and
//! `scripts/test` as root runs them all.

use std::io::Write;

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    euid() == 0
}

/// Panics unless the tests run as root: namespaces, nftables and `setpriv`
/// need it.
pub fn require_root() {
    assert!(
        is_root(),
        "the end-to-end tests create network namespaces and must run as root \
         (e.g. `sudo scripts/test`)"
    );
}

/// For a test that needs root, as its first line:
/// `if skip_unless_root() { return; }`. Unless the tests run as root, it
/// prints one line saying that the test is skipped and why, and returns
/// true: the test returns at once, and passes (Rust tests cannot skip).
pub fn skip_unless_root() -> bool {
    if is_root() {
        return false;
    }
    // libtest runs each test on a thread named after the test.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // Straight to stderr, as one write so that the lines of tests running
    // beside it cannot cut it: libtest keeps what eprintln! prints in a test
    // that passes to itself.
    let line = format!(
        "skipped: {test} needs root (network namespaces, nftables); run scripts/test as root\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    true
}
