//! Running the binary under test: its command line (started from a
//! throwaway namespace, acting in another), how long it may take to start
//! and to stop, and what its log says.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::netns::Netns;
use crate::paths::wasmwall_bin;

/// From starting wasmwall to its rules being in: it includes compiling a
/// policy component in a debug build when the compile cache does not have
/// it yet (seconds for Python and JavaScript).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// From SIGTERM to the daemon's exit, its clean-up done.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// `wasmwall SUBCOMMAND --config CONFIG --netns TARGET`, started from
/// `launcher`: never from the root namespace, so that a wasmwall that
/// ignored `--netns` would firewall the launcher (and the test would fail),
/// not the host.
pub fn wasmwall_in(launcher: &Netns, target: &Netns, subcommand: &str, config: &Path) -> Command {
    let mut cmd = launcher.command(wasmwall_bin());
    cmd.arg(subcommand)
        .arg("--config")
        .arg(config)
        .args(["--netns", target.name()]);
    cmd
}

/// The value of `field=` in the last line of a wasmwall log that has it
/// (tracing's `key=value` fields), e.g. `messages` of a reconcile.
pub fn logged_field<'a>(log: &'a str, field: &str) -> Option<&'a str> {
    let key = format!(" {field}=");
    log.lines().rev().find_map(|line| {
        let rest = &line[line.find(&key)? + key.len()..];
        Some(rest.split(' ').next().unwrap_or(rest))
    })
}
