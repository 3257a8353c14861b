//! Commands, run loudly: a command that fails, or that a test finds wrong,
//! shows its whole command line, exit status, stdout and stderr.

use std::ffi::OsStr;
use std::fmt;
use std::process::{Command, ExitStatus, Stdio};

/// What a finished command did. `Display` is the full report: argv, status,
/// stdout and stderr.
#[derive(Debug)]
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status:  {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// The command line of `cmd` as one readable string, with the environment
/// variables it sets or removes in front.
pub fn describe(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        match value {
            Some(value) => words.push(format!("{key}={}", shell_quote(value))),
            None => words.push(format!("(unset {key})")),
        }
    }
    words.push(shell_quote(cmd.get_program()));
    words.extend(cmd.get_args().map(shell_quote));
    words.join(" ")
}

/// `word` as a shell would read it back: as it is when it is plain, else in
/// single quotes.
pub(crate) fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion with no stdin and returns what it did, whatever
/// its exit status. Panics only when it cannot be started.
pub fn run_unchecked(cmd: &mut Command) -> Output {
    let command = describe(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    Output {
        command,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `cmd` to completion; panics with the full report unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let output = run_unchecked(cmd);
    assert!(output.success(), "command failed\n{output}");
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_what_a_shell_would_split() {
        let mut cmd = Command::new("nft");
        cmd.args(["list", "table", "inet wasmwall", "it's"])
            .env("RUST_LOG", "debug");
        assert_eq!(
            describe(&cmd),
            r"RUST_LOG=debug nft list table 'inet wasmwall' 'it'\''s'"
        );
    }
}
