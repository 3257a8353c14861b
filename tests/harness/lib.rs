//! Harness for the end-to-end tests: it finds the built binary and policies,
//! runs commands loudly, creates network namespaces that are always removed,
//! keeps background processes on a leash, and sends real TCP and HTTP traffic
//! from inside a namespace.
//!
//! Everything that touches the kernel happens inside namespaces made here;
//! nothing in this file reads or writes the root namespace's firewall or
//! sysctls.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Where things are
// ---------------------------------------------------------------------------

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives one level below the workspace root")
        .to_path_buf()
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
/// policy takes seconds). Created 0700, as the runtime requires.
pub fn compile_cache_dir() -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let dir = repo_root().join("target/compile-cache");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Panics unless the tests run as root: namespaces, nftables and `setpriv`
/// need it.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests create network namespaces and must run as root \
         (e.g. `sudo scripts/test`)"
    );
}

/// A fresh temporary directory for one test's config, state and logs; it is
/// removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("wasmwall-e2e-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Quotes `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The files directly inside `dir`; none when `dir` does not exist.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("read a directory entry").path())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    }
}

// ---------------------------------------------------------------------------
// Commands, run loudly
// ---------------------------------------------------------------------------

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
            Some(value) => words.push(format!("{key}={}", quote(value))),
            None => words.push(format!("(unset {key})")),
        }
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
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

/// The value of `field=` in the last line of a wasmwall log that has it
/// (tracing's `key=value` fields), e.g. `messages` of a reconcile.
pub fn logged_field<'a>(log: &'a str, field: &str) -> Option<&'a str> {
    let key = format!(" {field}=");
    log.lines().rev().find_map(|line| {
        let rest = &line[line.find(&key)? + key.len()..];
        Some(rest.split(' ').next().unwrap_or(rest))
    })
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

const POLL_INTERVAL: Duration = Duration::from_millis(25);

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

// ---------------------------------------------------------------------------
// Network namespaces
// ---------------------------------------------------------------------------

const NETNS_DIR: &str = "/run/netns";
const NETNS_PREFIX: &str = "ww-";

static NEXT_NETNS: AtomicUsize = AtomicUsize::new(0);
static SWEEP_STALE: Once = Once::new();
// `ip netns add` mounts /run/netns on first use; concurrent first calls race.
static NETNS_ADD: Mutex<()> = Mutex::new(());

/// A network namespace named `ww-<pid>-<counter>-<role>` with `lo` up. It is
/// deleted on drop, also while a test panics, together with any process
/// still inside it (a process inside keeps a namespace, and its firewall,
/// alive after its name is gone).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        require_root();
        SWEEP_STALE.call_once(remove_stale_namespaces);
        let name = format!(
            "{NETNS_PREFIX}{}-{}-{role}",
            process::id(),
            NEXT_NETNS.fetch_add(1, Ordering::Relaxed)
        );
        {
            let _serialized = NETNS_ADD.lock().unwrap_or_else(|e| e.into_inner());
            run(Command::new("ip").args(["netns", "add", &name]));
        }
        let netns = Netns { name };
        netns.run(["ip", "link", "set", "lo", "up"]);
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its file, /run/netns/NAME.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// `ip netns exec NAME program`, to which the caller adds arguments.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `argv` inside the namespace; panics loudly unless it exits 0.
    pub fn run<I, S>(&self, argv: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.argv_command(argv))
    }

    /// Runs `argv` inside the namespace, whatever its exit status.
    pub fn run_unchecked<I, S>(&self, argv: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_unchecked(&mut self.argv_command(argv))
    }

    fn argv_command<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut argv = argv.into_iter();
        let program = argv.next().expect("a command has a program");
        let mut cmd = self.command(program);
        cmd.args(argv);
        cmd
    }

    /// Reads a sysctl inside the namespace; `path` is relative to /proc/sys,
    /// e.g. "net/ipv4/conf/veth-l/route_localnet".
    pub fn sysctl(&self, path: &str) -> String {
        let file = Path::new("/proc/sys").join(path);
        self.run([OsStr::new("cat"), file.as_os_str()])
            .stdout
            .trim()
            .to_string()
    }

    /// Adds an interface `name` with address `cidr`, up, whose other end
    /// stays in this namespace too: a veth pair (this kernel has no dummy
    /// driver), so a policy has a LAN interface to refer to.
    pub fn add_interface(&self, name: &str, cidr: &str) {
        let peer = format!("{name}-peer");
        self.run([
            "ip", "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        self.run(["ip", "link", "set", &peer, "up"]);
        self.run(["ip", "addr", "add", cidr, "dev", name]);
        self.run(["ip", "link", "set", name, "up"]);
    }

    /// The namespace's whole nftables ruleset.
    pub fn ruleset(&self) -> Ruleset {
        Ruleset::parse(&self.run(["nft", "list", "ruleset"]).stdout)
    }

    /// Whether the namespace has the nftables table `family name`.
    pub fn has_table(&self, family: &str, name: &str) -> bool {
        self.run_unchecked(["nft", "list", "table", family, name])
            .success()
    }

    /// Runs `f` on a thread of its own that has entered the namespace, and
    /// returns its result. Sockets created by `f` stay in the namespace after
    /// the thread is gone; the calling thread never changes namespace.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        thread::scope(|scope| {
            let entered = scope.spawn(move || {
                enter_namespace(&path).unwrap_or_else(|e| panic!("{e}"));
                f()
            });
            entered
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_namespace(&self.name);
    }
}

/// Moves the calling thread (only) into the network namespace at `path`.
fn enter_namespace(path: &Path) -> Result<(), String> {
    let netns = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: a valid namespace fd; CLONE_NEWNET changes only the calling
    // thread's network namespace.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns into {}: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn remove_namespace(name: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", name])
        .stdin(Stdio::null())
        .output();
    if let Ok(pids) = pids {
        for pid in String::from_utf8_lossy(&pids.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse::<libc::pid_t>().ok())
        {
            if pid as u32 != process::id() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    // Never panic here: this runs in Drop, possibly during a panic.
    let deleted = Command::new("ip")
        .args(["netns", "delete", name])
        .stdin(Stdio::null())
        .output();
    match deleted {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "warning: `ip netns delete {name}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("warning: cannot run `ip netns delete {name}`: {e}"),
    }
}

/// Removes the namespaces of earlier test runs whose process is gone (killed
/// before its guards could run, e.g. by Ctrl-C).
fn remove_stale_namespaces() {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            eprintln!("removing namespace {name}, left behind by process {pid}");
            remove_namespace(&name);
        }
    }
}

/// The pid in a name of the form `ww-<pid>-<counter>-<role>`.
fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(NETNS_PREFIX)?.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<usize>().ok()?;
    parts.next()?;
    Some(pid)
}

/// One end of a veth pair: namespace, interface name, address with prefix
/// length (e.g. "192.168.0.2/24").
pub type VethEnd<'a> = (&'a Netns, &'a str, &'a str);

/// Joins two namespaces with a veth pair, both ends up and addressed (an
/// empty address leaves that end without one, for a DHCP client). The pair
/// is created inside the first namespace and never exists in the root one.
pub fn veth_pair(a: VethEnd<'_>, b: VethEnd<'_>) {
    let ((a_netns, a_if, _), (b_netns, b_if, _)) = (a, b);
    let peer = ["peer", "name", b_if, "netns", &b_netns.name];
    a_netns.run(
        ["ip", "link", "add", a_if, "type", "veth"]
            .into_iter()
            .chain(peer),
    );
    for (netns, iface, addr) in [a, b] {
        if !addr.is_empty() {
            netns.run(["ip", "addr", "add", addr, "dev", iface]);
        }
        netns.run(["ip", "link", "set", iface, "up"]);
    }
}

// ---------------------------------------------------------------------------
// nftables listings
// ---------------------------------------------------------------------------

/// A parsed `nft list ruleset`. Counter values are removed from statements
/// (`counter packets 3 bytes 180` becomes `counter`) so they can be compared.
#[derive(Debug)]
pub struct Ruleset {
    pub text: String,
    tables: Vec<String>,
    statements: Vec<Statement>,
}

#[derive(Debug)]
struct Statement {
    table: String,
    chain: String,
    text: String,
}

impl Ruleset {
    pub fn parse(text: &str) -> Ruleset {
        let mut tables = Vec::new();
        let mut statements = Vec::new();
        let mut blocks: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(header) = line.strip_suffix('{') {
                let header = header.trim().to_string();
                if blocks.is_empty()
                    && let Some(table) = header.strip_prefix("table ")
                {
                    tables.push(table.to_string());
                }
                blocks.push(header);
            } else if line == "}" {
                blocks.pop();
            } else if let [table, chain] = blocks.as_slice()
                && let (Some(table), Some(chain)) =
                    (table.strip_prefix("table "), chain.strip_prefix("chain "))
            {
                statements.push(Statement {
                    table: table.to_string(),
                    chain: chain.to_string(),
                    text: without_counter_values(line),
                });
            }
        }
        Ruleset {
            text: text.to_string(),
            tables,
            statements,
        }
    }

    /// The tables, as "family name", in listing order.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The statements of a chain (its `type ... hook ...; policy ...;` line
    /// and its rules), in order; empty when there is no such chain.
    pub fn chain<'a>(&'a self, table: &'a str, chain: &'a str) -> impl Iterator<Item = &'a str> {
        self.statements
            .iter()
            .filter(move |s| s.table == table && s.chain == chain)
            .map(|s| s.text.as_str())
    }

    /// Panics, showing the whole listing, unless some statement of the chain
    /// contains every one of `fragments`.
    pub fn assert_statement(&self, table: &str, chain: &str, fragments: &[&str]) {
        assert!(
            find_line(self.chain(table, chain), fragments).is_some(),
            "no statement in chain {chain:?} of table {table:?} contains all of {fragments:?}\n\
             --- nft list ruleset ---\n{}",
            self.text.trim_end()
        );
    }
}

fn without_counter_values(statement: &str) -> String {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let mut kept = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        kept.push(words[i]);
        if words[i] == "counter" && words.get(i + 1) == Some(&"packets") {
            i += 5; // counter packets N bytes M
        } else {
            i += 1;
        }
    }
    kept.join(" ")
}

/// The first line that contains every one of `fragments`.
pub fn find_line<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    fragments: &[&str],
) -> Option<&'a str> {
    lines
        .into_iter()
        .find(|line| fragments.iter().all(|f| line.contains(f)))
}

// ---------------------------------------------------------------------------
// Background processes
// ---------------------------------------------------------------------------

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

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// For a `wasmwall run`: waits until it logs that it runs (its first
    /// batch is in), panicking with its output if it exits first.
    pub fn wait_until_running(&mut self, timeout: Duration) {
        wait_until("`wasmwall run` to start", timeout, || {
            if let Some(status) = self.try_status() {
                panic!("`wasmwall run` exited: {status}\n{self}");
            }
            if self.stderr().contains("running: following") {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        });
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

// ---------------------------------------------------------------------------
// DHCP: a real server and a real client, each in a namespace
// ---------------------------------------------------------------------------

/// How long a DHCP server or client gets to start, or to stop after SIGTERM.
const DHCP_PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends SIGTERM and waits at most `timeout` for the process to exit;
/// whether it did. Never panics (it runs in Drop).
fn terminate_within(child: &mut Child, timeout: Duration) -> bool {
    child.terminate();
    let deadline = Instant::now() + timeout;
    while child.try_status().is_none() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
    true
}

/// Writes an executable (0755) shell script.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot make {} executable: {e}", path.display()));
}

/// dnsmasq serving DHCP (and no DNS) on one interface of a namespace, in the
/// foreground, with its own lease file and no config file of the host's.
/// Killed on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    lease_file: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq in `netns` on `iface` handing out `range` (dnsmasq's
    /// `--dhcp-range` value, e.g. "192.168.1.100,192.168.1.200,1h") and
    /// running `script`, if any, as its `--dhcp-script` (`script ACTION MAC
    /// IP [HOSTNAME]` for each lease added, renewed or deleted), with `env`
    /// added to its environment (dnsmasq passes its environment on to the
    /// script). Its lease file, pid file and output go to `dir`. Returns once
    /// it serves.
    pub fn start(
        netns: &Netns,
        iface: &str,
        range: &str,
        script: Option<&Path>,
        env: &[(&str, &OsStr)],
        dir: &Path,
    ) -> Dnsmasq {
        let lease_file = dir.join("dnsmasq.leases");
        let mut cmd = netns.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            // No DNS: only DHCP.
            "--port=0",
            &format!("--interface={iface}"),
            "--bind-interfaces",
            &format!("--dhcp-range={range}"),
        ])
        .arg(flag("--dhcp-leasefile=", &lease_file))
        .args(script.map(|script| flag("--dhcp-script=", script)))
        .args([
            "--user=root",
            // Offer at once, without first pinging the address.
            "--no-ping",
            "--log-dhcp",
            // Its log to stderr (our file), not the host's syslog.
            "--log-facility=-",
        ])
        .arg(flag("--pid-file=", &dir.join("dnsmasq.pid")))
        .arg("--dhcp-authoritative");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = Child::spawn(&mut cmd, dir, "dnsmasq");
        wait_until("dnsmasq to serve DHCP", DHCP_PROCESS_TIMEOUT, || {
            if let Some(status) = child.try_status() {
                panic!("dnsmasq exited: {status}\n{child}");
            }
            if child.stderr().contains("DHCP, IP range") {
                Ok(())
            } else {
                Err("not yet".into())
            }
        });
        Dnsmasq { child, lease_file }
    }

    /// Its lease file (`--dhcp-leasefile`).
    pub fn lease_file(&self) -> &Path {
        &self.lease_file
    }

    /// Its log so far (each DHCP exchange, the script's output).
    pub fn log(&self) -> String {
        self.child.stderr()
    }
}

impl fmt::Display for Dnsmasq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.child.fmt(f)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // Its lease-script helper exits with it; Child's Drop kills it if
        // SIGTERM was not enough.
        terminate_within(&mut self.child, DHCP_PROCESS_TIMEOUT);
    }
}

fn flag(name: &str, path: &Path) -> std::ffi::OsString {
    let mut flag = std::ffi::OsString::from(name);
    flag.push(path);
    flag
}

/// busybox's DHCP client `udhcpc` on one interface of a namespace, in the
/// foreground, with a script of ours (never the system's, which would write
/// the host's /etc/resolv.conf): it puts the leased address and default
/// route on the interface with `ip`, removes them on `deconfig`, and records
/// every event. With `-R`, SIGTERM makes it release its lease first; that
/// happens on [`Udhcpc::release`] and on drop.
#[derive(Debug)]
pub struct Udhcpc {
    child: Child,
    events: PathBuf,
}

impl Udhcpc {
    /// Starts `udhcpc` in `netns` on `iface` (up, without an address),
    /// sending `hostname` in its requests; its script, event record and
    /// output go to `dir`.
    pub fn start(netns: &Netns, iface: &str, hostname: &str, dir: &Path) -> Udhcpc {
        let script = dir.join(format!("udhcpc-{iface}.script"));
        let events = dir.join(format!("udhcpc-{iface}.events"));
        write_script(&script, &udhcpc_script(&events));
        let mut cmd = netns.command("udhcpc");
        cmd.args(["-f", "-i", iface, "-s"])
            .arg(&script)
            .args(["-x", &format!("hostname:{hostname}")])
            // Release the lease on SIGTERM; 5 discovers 1 s apart, then a
            // pause and again.
            .args(["-R", "-t", "5", "-T", "1"]);
        let child = Child::spawn(&mut cmd, dir, &format!("udhcpc-{iface}"));
        Udhcpc { child, events }
    }

    /// The script's events so far, one per line: "EVENT [IP]" (`deconfig`,
    /// `bound 192.168.1.123`, `renew ...`, `leasefail`, `nak`).
    pub fn events(&self) -> Vec<String> {
        match fs::read_to_string(&self.events) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.events.display()),
        }
    }

    /// The address it holds now: that of its last `bound` or `renew`, unless
    /// a `deconfig` came after it.
    pub fn address(&self) -> Option<String> {
        let events = self.events();
        let last = events
            .iter()
            .rev()
            .find(|e| e.starts_with("bound ") || e.starts_with("renew ") || e == &"deconfig")?;
        last.split_once(' ').map(|(_, ip)| ip.to_string())
    }

    /// Waits until it holds a lease, and returns the address.
    pub fn wait_for_lease(&mut self, timeout: Duration) -> String {
        wait_until("udhcpc to get a lease", timeout, || {
            if let Some(status) = self.child.try_status() {
                panic!("udhcpc exited: {status}\n{}", self.child);
            }
            self.address()
                .ok_or_else(|| format!("events so far: {:?}", self.events()))
        })
    }

    /// Releases the lease (a DHCPRELEASE to the server), unconfigures the
    /// interface and exits: SIGTERM, as it runs with `-R`. Panics unless it
    /// exits within a few seconds.
    pub fn release(&mut self) {
        assert!(
            terminate_within(&mut self.child, DHCP_PROCESS_TIMEOUT),
            "udhcpc did not exit on SIGTERM\n{}",
            self.child
        );
    }
}

impl fmt::Display for Udhcpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.child.fmt(f)?;
        write!(f, "\n--- script events ---\n{}", self.events().join("\n"))
    }
}

impl Drop for Udhcpc {
    fn drop(&mut self) {
        terminate_within(&mut self.child, DHCP_PROCESS_TIMEOUT);
    }
}

/// The script udhcpc runs for each event, with `$1` the event and the
/// lease's details in the environment (`interface`, `ip`, `mask` as a prefix
/// length, `router`).
fn udhcpc_script(events: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Written by the wasmwall tests' harness for udhcpc -s: configures the
# interface in this network namespace, and nothing else of the host's.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound | renew)
    ip addr replace "$ip/${{mask:-24}}" dev "$interface"
    if [ -n "$router" ]; then
      ip route replace default via "${{router%% *}}" dev "$interface"
    fi
    ;;
esac
echo "$1${{ip:+ $ip}}" >> {events}
"#,
        events = quote(events.as_os_str())
    )
}

// ---------------------------------------------------------------------------
// TCP and HTTP inside namespaces
// ---------------------------------------------------------------------------

/// Why a connection or request did not get an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer answered with a reset: nothing listens, nothing dropped it.
    Refused,
    /// No answer before the deadline: the packets were dropped.
    TimedOut,
    Other(String),
}

impl NetError {
    fn from_io(e: io::Error) -> NetError {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => NetError::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetError::TimedOut,
            _ => NetError::Other(e.to_string()),
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Refused => f.write_str("connection refused"),
            NetError::TimedOut => f.write_str("timed out"),
            NetError::Other(e) => f.write_str(e),
        }
    }
}

/// Opens a TCP connection to `addr` from inside `netns` and closes it again.
pub fn tcp_connect(netns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<(), NetError> {
    netns.enter(|| {
        TcpStream::connect_timeout(&addr, timeout)
            .map(drop)
            .map_err(NetError::from_io)
    })
}

/// Sends `GET /` to `addr` from inside `netns`; the body of a 200 answer.
pub fn http_get(netns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<String, NetError> {
    netns.enter(|| get(addr, timeout))
}

/// `GET /` on a new connection from the calling thread's namespace.
fn get(addr: SocketAddr, timeout: Duration) -> Result<String, NetError> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(NetError::from_io)?;
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(remaining))
        .and_then(|()| stream.set_write_timeout(Some(remaining)))
        .map_err(NetError::from_io)?;
    let request = format!("GET / HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(NetError::from_io)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(NetError::from_io)?;
    let response = String::from_utf8_lossy(&response);
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.split(' ').nth(1) == Some("200") => Ok(body.to_string()),
        _ => Err(NetError::Other(format!("unexpected answer: {response:?}"))),
    }
}

/// What a [`ContinuousClient`] saw so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests answered with the expected body.
    pub successes: usize,
    /// One line per failed request: when it started (since the client
    /// started) and why it failed.
    pub failures: Vec<String>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} request(s) answered, {} failed",
            self.successes,
            self.failures.len()
        )?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}

/// A client sending `GET /` to one address from inside a namespace, again
/// and again, each request on a new connection (so each one goes through
/// the firewall's NAT anew), from a background thread until it is stopped.
/// An answer counts as a success only when its body is the expected one.
#[derive(Debug)]
pub struct ContinuousClient {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ContinuousClient {
    /// Starts sending from `netns` to `addr`, expecting `body` (an
    /// [`HttpServer::token`]); each request may take up to `timeout`, and
    /// `pause` separates one from the next.
    pub fn start(
        netns: &Netns,
        addr: SocketAddr,
        body: &str,
        timeout: Duration,
        pause: Duration,
    ) -> ContinuousClient {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (entered, has_entered) = std::sync::mpsc::channel();
        let thread = thread::spawn({
            let path = netns.path();
            let body = body.to_string();
            let tally = Arc::clone(&tally);
            let stop = Arc::clone(&stop);
            move || {
                let result = enter_namespace(&path);
                let ok = result.is_ok();
                let _ = entered.send(result);
                if !ok {
                    return;
                }
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let at = started.elapsed();
                    let outcome = match get(addr, timeout) {
                        Ok(got) if got == body => Ok(()),
                        Ok(got) => Err(format!("answered by another server: {got:?}")),
                        Err(e) => Err(e.to_string()),
                    };
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(()) => tally.successes += 1,
                        Err(why) => tally
                            .failures
                            .push(format!("at {:.3} s: GET {addr}: {why}", at.as_secs_f64())),
                    }
                    drop(tally);
                    thread::sleep(pause);
                }
            }
        });
        match has_entered.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("continuous client: {e}"),
            Err(_) => panic!("the continuous client's thread died"),
        }
        ContinuousClient {
            tally,
            stop,
            thread: Some(thread),
        }
    }

    /// What it saw so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops it (after the request under way) and returns what it saw.
    pub fn stop(mut self) -> Tally {
        self.halt();
        self.tally()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ContinuousClient {
    fn drop(&mut self) {
        self.halt();
    }
}

static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0);

/// A minimal HTTP server listening inside a namespace. It answers every
/// request with a body token unique to this server, so a test knows exactly
/// which server answered, and records the address each request came from
/// (what a NAT in between made of it). It stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    token: String,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` inside `netns` and serves from a background thread.
    pub fn start(netns: &Netns, addr: SocketAddr) -> HttpServer {
        let listener = netns
            .enter(|| TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("cannot listen on {addr} in {}: {e}", netns.name()));
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let token = format!(
            "wasmwall-e2e-token-{}-{}-{}",
            process::id(),
            NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            addr.port()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = thread::spawn({
            let token = token.clone();
            let peers = Arc::clone(&peers);
            let stop = Arc::clone(&stop);
            move || serve(&listener, &token, &peers, &stop)
        });
        HttpServer {
            token,
            peers,
            stop,
            thread: Some(thread),
        }
    }

    /// The body of every answer.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The peer address of every request answered so far, oldest first.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, token: &str, peers: &Mutex<Vec<SocketAddr>>, stop: &AtomicBool) {
    const WAKE_UP_MS: libc::c_int = 50;
    while !stop.load(Ordering::Relaxed) {
        let mut readable = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the wake-up lets the loop see `stop`.
        unsafe { libc::poll(&mut readable, 1, WAKE_UP_MS) };
        match listener.accept() {
            Ok((stream, peer)) => match answer(stream, token) {
                Ok(()) => peers.lock().unwrap_or_else(|e| e.into_inner()).push(peer),
                Err(e) => eprintln!("test HTTP server: {peer}: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("test HTTP server: accept: {e}"),
        }
    }
}

fn answer(mut stream: TcpStream, token: &str) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf)? {
            0 => break,
            n => request.extend_from_slice(&buf[..n]),
        }
    }
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{token}",
        token.len()
    )?;
    stream.shutdown(Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains_and_drops_counter_values() {
        let listing = "table inet wasmwall {\n\
            \tchain port-forward/input {\n\
            \t\ttype filter hook input priority filter; policy drop;\n\
            \t\tip daddr 127.0.0.1 tcp dport 4000 counter packets 3 bytes 180 accept\n\
            \t}\n\
            \n\
            \tset hosts {\n\
            \t\ttype ipv4_addr\n\
            \t\telements = { 10.0.0.1, 10.0.0.2 }\n\
            \t}\n\
            }\n\
            table ip other {\n\
            }\n";
        let ruleset = Ruleset::parse(listing);
        assert_eq!(ruleset.tables(), ["inet wasmwall", "ip other"]);
        let input: Vec<_> = ruleset
            .chain("inet wasmwall", "port-forward/input")
            .collect();
        assert_eq!(
            input,
            [
                "type filter hook input priority filter; policy drop;",
                "ip daddr 127.0.0.1 tcp dport 4000 counter accept",
            ]
        );
        ruleset.assert_statement(
            "inet wasmwall",
            "port-forward/input",
            &["tcp dport 4000", "accept"],
        );
        assert_eq!(ruleset.chain("inet wasmwall", "hosts").count(), 0);
    }

    #[test]
    fn owner_pid_reads_only_harness_names() {
        assert_eq!(owner_pid("ww-123-0-laptop"), Some(123));
        assert_eq!(owner_pid("ww-123-4-phone-2"), Some(123));
        assert_eq!(owner_pid("ww-laptop"), None);
        assert_eq!(owner_pid("ww-123-x-laptop"), None);
        assert_eq!(owner_pid("ww-123-4"), None);
        assert_eq!(owner_pid("wwdemo-123-0-laptop"), None);
    }

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

    #[test]
    fn toml_string_escapes_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"/tmp/a"b\c"#), r#""/tmp/a\"b\\c""#);
    }
}
