//! Waiting for something to happen, with a deadline and the last reason
//! why it had not, instead of fixed sleeps.

use std::thread;
use std::time::{Duration, Instant};

/// How often a wait checks again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Calls `check` until it returns `Ok`, at most for `timeout`; panics with the
/// last error when the deadline passes.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}
