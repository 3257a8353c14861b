//! Network namespaces for the tests: each with a unique name, always
//! removed (also when a test panics, and at the next run after a kill),
//! joined by veth pairs; commands and threads run inside them. Nothing here
//! touches the root namespace's interfaces or firewall.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::thread;

use crate::command::{Output, run, run_unchecked};
use crate::root::require_root;
use crate::ruleset::Ruleset;

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
    /// A non-blocking TCP listener on `addr` inside this namespace, for
    /// the servers the tests run there.
    pub fn listen(&self, addr: std::net::SocketAddr) -> std::net::TcpListener {
        let listener = self
            .enter(|| std::net::TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("cannot listen on {addr} in {}: {e}", self.name()));
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        listener
    }

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

    /// Writes a sysctl inside the namespace (never the host's: the write
    /// happens in a process `ip netns exec` started in it); `path` as for
    /// [`Netns::sysctl`], e.g. "net/ipv6/conf/all/forwarding".
    pub fn set_sysctl(&self, path: &str, value: &str) {
        let file = Path::new("/proc/sys").join(path);
        self.run([
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new(r#"printf '%s\n' "$1" > "$2""#),
            OsStr::new("sh"),
            OsStr::new(value),
            file.as_os_str(),
        ]);
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

    /// `nft list table FAMILY NAME` in the namespace; `None` when it has no
    /// such table.
    pub fn table(&self, family: &str, name: &str) -> Option<String> {
        let out = self.run_unchecked(["nft", "list", "table", family, name]);
        out.success().then_some(out.stdout)
    }

    /// Whether the namespace has the nftables table `family name`.
    pub fn has_table(&self, family: &str, name: &str) -> bool {
        self.table(family, name).is_some()
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
pub(crate) fn enter_namespace(path: &Path) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_harness_names() {
        assert_eq!(owner_pid("ww-123-0-laptop"), Some(123));
        assert_eq!(owner_pid("ww-123-4-phone-2"), Some(123));
        assert_eq!(owner_pid("ww-laptop"), None);
        assert_eq!(owner_pid("ww-123-x-laptop"), None);
        assert_eq!(owner_pid("ww-123-4"), None);
        assert_eq!(owner_pid("wwdemo-123-0-laptop"), None);
    }
}
