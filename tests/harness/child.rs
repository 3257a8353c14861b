//! Background processes on a leash: a daemon or server a test starts, its
//! output kept in files, signalled, waited for with deadlines, and killed
//! and reaped when the test ends however it ends.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::describe;
use crate::wait::{POLL_INTERVAL, wait_until};

/// A process running in the background (a daemon, a server). Its stdout and
/// stderr go to files; `Display` shows them. On drop it is killed and reaped
/// if still running, and its output is printed if the test is panicking.
#[derive(Debug)]
pub struct Child {
    label: String,
    command: String,
    process: process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Child {
    /// Starts `cmd` with no stdin, its output going to
    /// `log_dir/<label>.stdout` and `.stderr`.
    pub fn spawn(cmd: &mut Command, log_dir: &Path, label: &str) -> Child {
        let command = describe(cmd);
        let stdout = log_dir.join(format!("{label}.stdout"));
        let stderr = log_dir.join(format!("{label}.stderr"));
        let create = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let process = cmd
            .stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        Child {
            label: label.to_string(),
            command,
            process,
            stdout,
            stderr,
            status: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Its exit status, if it has exited (reaping it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .process
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.label));
        }
        self.status
    }

    /// Sends `signal` unless it has already been reaped (then its pid may
    /// belong to another process).
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_status().is_none() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our
            // unreaped child.
            unsafe { libc::kill(self.id() as libc::pid_t, signal) };
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    /// Sends SIGTERM and waits at most `timeout` for it to exit; whether it
    /// did. Never panics (it runs in Drop).
    pub fn terminate_within(&mut self, timeout: Duration) -> bool {
        self.terminate();
        let deadline = Instant::now() + timeout;
        while self.try_status().is_none() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
        true
    }

    /// Stops it with SIGTERM; panics with its output unless it exits 0
    /// within `timeout`.
    pub fn stop_cleanly(&mut self, timeout: Duration) {
        self.terminate();
        let status = self.wait_timeout(timeout);
        assert!(
            status.success(),
            "{} should exit 0 on SIGTERM, not {status}\n{self}",
            self.label
        );
    }

    /// Waits at most `timeout` for it to exit; panics with its output if it
    /// does not.
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            // Drop prints the output when this panics.
            assert!(
                Instant::now() < deadline,
                "{} still running {timeout:?} later",
                self.label
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Its stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout)
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// Waits at most `timeout` until its stderr holds `needle`, panicking
    /// with its output if it exits first; `what` names the wait.
    pub fn wait_for_stderr(&mut self, what: &str, needle: &str, timeout: Duration) {
        wait_until(what, timeout, || {
            if let Some(status) = self.try_status() {
                panic!("{} exited: {status}\n{self}", self.label);
            }
            if self.stderr().contains(needle) {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        });
    }

    /// For a `wasmwall run`: waits until it logs that it runs (its first
    /// batch is in), panicking with its output if it exits first.
    pub fn wait_until_running(&mut self, timeout: Duration) {
        self.wait_for_stderr("`wasmwall run` to start", "running: following", timeout);
    }

    /// A `kB` field of /proc/PID/status, e.g. "VmRSS" (resident memory).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.id()))
            .unwrap_or_else(|e| panic!("/proc/{}/status: {e}", self.id()));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.id()))
    }
}

impl fmt::Display for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (pid {}): {}", self.label, self.id(), self.command)?;
        match self.status {
            Some(status) => writeln!(f, "status:  {status}")?,
            None => writeln!(f, "status:  running")?,
        }
        writeln!(f, "--- stdout ---\n{}", read_lossy(&self.stdout).trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr().trim_end())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SAFETY: as in `signal`: our unreaped child.
            unsafe { libc::kill(self.id() as libc::pid_t, libc::SIGKILL) };
            self.status = self.process.wait().ok();
        }
        if thread::panicking() {
            eprintln!("{self}");
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}
