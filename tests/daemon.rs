//! The daemon's own surfaces, end to end: the control socket (root only,
//! junk, oversized and idle connections, strangers), and coalescing (a
//! burst of a thousand lease events, an interface flapping) with bounded
//! memory, and the kernel's neighbour table followed. Real binary, real
//! kernel, a router namespace per test.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wasmwall::daemon::control::{self, LeaseRequest, Request, Response};
use wasmwall::daemon::status::Status;
use wasmwall::world::{Neighbour, NeighbourState};
use wasmwall_e2e::{
    Child, Netns, START_TIMEOUT, TempDir, compile_cache_dir, policy_wasm, replace_file, run,
    skip_unless_root, temp_dir, toml_path, wait_until, wasmwall_bin, wasmwall_in,
};

const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A router namespace with `lan0` and `wan0`, and a config for `wasmwall run`.
struct Lab {
    router: Netns,
    launcher: Netns,
    dir: TempDir,
    config: PathBuf,
}

impl Lab {
    /// `policy` is (name, component file, config lines of [policy.config]);
    /// `extra` goes to the top of the config.
    fn new(policy: (&str, &str, &str), extra: &str) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let launcher = Netns::new("launcher");
        router.add_interface("lan0", "192.168.1.1/24");
        router.add_interface("wan0", "203.0.113.1/24");
        let (name, file, settings) = policy;
        let config = dir.path().join("wasmwall.toml");
        let toml = format!(
            "state_dir = {state}\n\
             reconcile_interval_s = 0\n\
             {extra}\n\
             [cache]\n\
             dir = {cache}\n\n\
             [[policy]]\n\
             name = \"{name}\"\n\
             path = {path}\n\n\
             [policy.config]\n\
             {settings}\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            path = toml_path(&policy_wasm(file)),
        );
        fs::write(&config, toml).expect("write the config");
        Lab {
            router,
            launcher,
            dir,
            config,
        }
    }

    fn wasmwall(&self, subcommand: &str) -> Command {
        wasmwall_in(&self.launcher, &self.router, subcommand, &self.config)
    }

    fn socket(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("state/netns-{}.wasmwall.sock", self.router.name()))
    }

    /// Starts `wasmwall run` and waits until it is running.
    fn start(&self) -> Child {
        let mut daemon = Child::spawn(&mut self.wasmwall("run"), self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    fn ask(&self, request: &Request) -> Response {
        control::request(&self.socket(), request, ANSWER_TIMEOUT)
            .unwrap_or_else(|e| panic!("request to the daemon: {e:#}"))
    }

    fn status(&self) -> Status {
        let answer = self.ask(&Request {
            status: Some(control::Empty {}),
            ..Request::default()
        });
        *answer.status.expect("a status")
    }

    fn lease(&self, action: &str, ip: &str, mac: &str, hostname: &str) -> Response {
        self.ask(&lease_request(action, ip, mac, hostname))
    }

    fn listing(&self) -> String {
        self.router.run(["nft", "list", "ruleset"]).stdout
    }
}

fn lease_request(action: &str, ip: &str, mac: &str, hostname: &str) -> Request {
    Request {
        lease: Some(LeaseRequest {
            action: action.into(),
            mac: Some(mac.into()),
            ip: ip.into(),
            hostname: Some(hostname.into()),
            iface: Some("lan0".into()),
            expires: None,
            ..LeaseRequest::default()
        }),
        status: None,
        confirm: None,
        wait: false,
    }
}

/// Sends raw bytes on a fresh connection and returns the answer line.
fn raw(socket: &Path, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
    // The daemon may answer (and close) before it read everything.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = BufReader::new(&stream).read_line(&mut answer);
    answer
}

/// Runs `f` on a thread whose user is `nobody` (setresuid on that thread
/// only: the raw system call, unlike libc's wrapper, changes one thread).
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: changes the credentials of this thread only; it ends
        // right after `f`.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid(nobody)");
        f()
    })
    .join()
    .expect("the nobody thread")
}

#[test]
fn the_control_socket_is_root_only_and_shrugs_off_junk() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(("pf", "port-forward", "lan_interface = \"lan0\""), "");
    let mut daemon = lab.start();
    let socket = lab.socket();

    let meta = fs::metadata(&socket).expect("the control socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o600, "socket mode");
    assert_eq!(meta.uid(), 0, "socket owner");

    // Junk: each gets an error answer naming the problem, and changes nothing.
    let big = [vec![b'a'; 70 * 1024], b"\n".to_vec()].concat();
    for (bytes, needle) in [
        (&b"\x00\x01\x02\xff garbage\n"[..], "not UTF-8"),
        (b"{not json}\n", "bad request"),
        (b"\n", "bad request"),
        (b"{\"status\":{}", "bad request"),
        (b"{\"lease\":{\"action\":\"add\"}}\n", "missing field"),
        (b"{\"reboot\":true}\n", "unknown field"),
        (
            b"{\"lease\":{\"action\":\"add\",\"mac\":\"02:00:00:00:00:01\",\"ip\":\"10.0.0.1\",\"iface\":\"../../etc\"}}\n",
            "interface name",
        ),
        (&big, "longer than 65536 bytes"),
    ] {
        let answer = raw(&socket, bytes);
        assert!(
            answer.contains("\"ok\":false") && answer.contains(needle),
            "{:?}... answered {answer:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
    }

    // Strangers: the file mode keeps them out; with the mode opened up, the
    // daemon still refuses them (SO_PEERCRED).
    // (The directories are opened up too, so that only the socket's own
    // mode, then the daemon, stand in the way.)
    let opened = [lab.dir.path().to_path_buf(), lab.dir.path().join("state")];
    for dir in &opened {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).unwrap();
    }
    let path = socket.clone();
    let refused = as_nobody(move || UnixStream::connect(&path).map(|_| ()).map_err(|e| e.kind()));
    assert_eq!(refused, Err(std::io::ErrorKind::PermissionDenied));
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).unwrap();
    let path = socket.clone();
    let answer = as_nobody(move || raw(&path, b"{\"status\":{}}\n"));
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600)).unwrap();
    for dir in &opened {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert!(
        answer.contains("\"ok\":false") && answer.contains("permission denied"),
        "{answer}"
    );
    assert!(
        daemon
            .stderr()
            .contains("refused a peer that is neither root")
    );

    // Idle connections hold no one up for long: they are dropped after 5 s.
    let idle: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&socket).expect("connect"))
        .collect();
    let started = Instant::now();
    let status = lab.status();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "status took {:?}",
        started.elapsed()
    );
    drop(idle);
    // A half-written request from a peer that goes away is no harm either.
    let mut half = UnixStream::connect(&socket).unwrap();
    half.write_all(b"{\"lease\":").unwrap();
    drop(half);

    // After all that: still running, no lease taken, and a good event works.
    assert!(daemon.try_status().is_none(), "the daemon died\n{daemon}");
    assert!(status.world.leases.is_empty());
    assert_eq!(status.policies.len(), 1);
    assert!(status.errors.is_empty(), "{:?}", status.errors);
    let ok = lab.lease("add", "192.168.1.23", "02:00:00:00:00:23", "nas");
    assert!(ok.ok, "{ok:?}");
    wait_until("the lease in the status", SETTLE_TIMEOUT, || {
        match lab.status().world.leases.as_slice() {
            [l] if l.ip == "192.168.1.23" && l.hostname.as_deref() == Some("nas") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // Without an interface (dnsmasq's reports after its restart), the
    // daemon takes the one whose prefix holds the address, or says why not.
    let mut request = lease_request("old", "192.168.1.24", "02:00:00:00:00:24", "tv");
    request.lease.as_mut().unwrap().iface = None;
    assert!(lab.ask(&request).ok);
    request.lease.as_mut().unwrap().ip = "10.9.9.9".into();
    let refused = lab.ask(&request);
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or("")
            .contains("none has a prefix holding"),
        "{refused:?}"
    );
    wait_until("the lease on lan0", SETTLE_TIMEOUT, || {
        let leases = lab.status().world.leases;
        match leases.iter().find(|l| l.ip == "192.168.1.24") {
            Some(l) if l.iface == "lan0" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // The command-line client says what went wrong, with exit status 1.
    let out = wasmwall_e2e::run_unchecked(
        Command::new(wasmwall_bin())
            .args([
                "event",
                "lease",
                "add",
                "--mac",
                "nope",
                "--ip",
                "192.168.1.9",
            ])
            .args(["--iface", "lan0", "--socket"])
            .arg(&socket),
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("MAC \"nope\" is not six hex pairs"),
        "{out}"
    );

    daemon.stop_cleanly(SETTLE_TIMEOUT);
    assert!(!socket.exists(), "the socket file is left behind");
    assert!(!lab.router.has_table("inet", "wasmwall"));
}

/// The home-router policy blocking 20 of a thousand hosts by name: their
/// addresses go into its `blocked` set as their leases arrive.
fn blocking_lab(max_leases: usize) -> Lab {
    let blocked: Vec<String> = (0..20).map(|i| format!("\"h{}\"", i * 50)).collect();
    Lab::new(
        (
            "router",
            "home-router",
            &format!(
                "lan = \"lan0\"\nwan = \"wan0\"\nblock = [{}]",
                blocked.join(", ")
            ),
        ),
        &format!("[leases]\nmax = {max_leases}\n"),
    )
}

fn host_ip(i: usize) -> String {
    format!("10.10.{}.{}", i / 250, i % 250 + 1)
}

fn host_mac(i: usize) -> String {
    format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256)
}

/// The elements of the router's `blocked` set, sorted.
fn blocked_set(lab: &Lab) -> Vec<String> {
    let listing = lab.listing();
    // "{" too: the set `blocked-v6` (IPv6) may be listed first.
    let Some(start) = listing.find("set router/blocked {") else {
        return Vec::new();
    };
    let block = &listing[start..];
    let block = &block[..block.find('}').map_or(block.len(), |e| e + 1)];
    let mut ips: Vec<String> = match block.find("elements = {") {
        Some(i) => block[i + 12..]
            .split(|c: char| c == ',' || c == '}' || c.is_whitespace())
            .filter(|w| w.parse::<std::net::Ipv4Addr>().is_ok())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    ips.sort();
    ips
}

fn expected_blocked(hosts: usize) -> Vec<String> {
    let mut ips: Vec<String> = (0..hosts)
        .filter(|i| i % 50 == 0 && *i < 1000)
        .map(host_ip)
        .collect();
    ips.sort();
    ips
}

/// Sends `action` for hosts `range` from four threads at once.
fn burst(lab: &Lab, action: &'static str, range: std::ops::Range<usize>) {
    let socket = lab.socket();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let socket = socket.clone();
            let range = range.clone();
            std::thread::spawn(move || {
                for i in range.filter(|i| i % 4 == t) {
                    let request =
                        lease_request(action, &host_ip(i), &host_mac(i), &format!("h{i}"));
                    let answer = control::request(&socket, &request, ANSWER_TIMEOUT)
                        .unwrap_or_else(|e| panic!("lease {i}: {e:#}"));
                    assert!(answer.ok, "lease {i}: {answer:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a burst thread");
    }
}

#[test]
fn a_thousand_lease_events_make_few_reconciles_and_memory_stays_bounded() {
    if skip_unless_root() {
        return;
    }
    let lab = blocking_lab(1000);
    let mut daemon = lab.start();
    let before = lab.status();

    let started = Instant::now();
    burst(&lab, "add", 0..1000);
    let want = expected_blocked(1000);
    wait_until(
        "the blocked set to hold the 20 blocked hosts",
        SETTLE_TIMEOUT,
        || {
            let now = blocked_set(&lab);
            if now == want {
                Ok(())
            } else {
                Err(format!("{} of 20", now.len()))
            }
        },
    );
    let elapsed = started.elapsed();
    let after = lab.status();
    assert_eq!(after.world.leases.len(), 1000);
    assert_eq!(after.events - before.events, 1000);
    let reconciles = after.reconciles - before.reconciles;
    eprintln!(
        "burst: 1000 lease events in {} ms -> {reconciles} reconciles",
        elapsed.as_millis()
    );
    // In a burst, reconciles for events are at least 10 ms apart, and the
    // drift checks (after change notifications) at least 50 ms: no
    // more than that over the burst (and a few at its edges), however
    // slowly a loaded machine delivers the events.
    let ms = elapsed.as_millis() as u64;
    assert!(
        reconciles <= ms / 10 + ms / 50 + 3,
        "{reconciles} reconciles for 1000 events in {elapsed:?}"
    );

    // The bound on leases: one more is refused, clearly.
    let refused = lab.lease("add", "10.99.0.1", "02:00:00:99:00:01", "extra");
    assert!(!refused.ok);
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or("")
            .contains("maximum of 1000 leases"),
        "{refused:?}"
    );

    // Churn: every lease released and handed out again, four times over.
    let rss_before = daemon.memory_kib("VmRSS");
    for _ in 0..4 {
        burst(&lab, "del", 0..1000);
        burst(&lab, "add", 0..1000);
    }
    wait_until("the blocked set after the churn", SETTLE_TIMEOUT, || {
        let now = blocked_set(&lab);
        if now == want {
            Ok(())
        } else {
            Err(format!("{} of 20", now.len()))
        }
    });
    let rss_after = daemon.memory_kib("VmRSS");
    eprintln!("churn: 8000 more events; resident memory {rss_before} KiB -> {rss_after} KiB");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB over 8000 events"
    );
    let status = lab.status();
    assert_eq!(status.world.leases.len(), 1000);
    assert!(status.errors.is_empty(), "{:?}", status.errors);

    daemon.stop_cleanly(SETTLE_TIMEOUT);
}

#[test]
fn an_interface_flapping_makes_few_reconciles_and_ends_right() {
    if skip_unless_root() {
        return;
    }
    let lab = blocking_lab(100);
    lab.router.run(["ip", "link", "set", "wan0", "down"]);
    let mut daemon = lab.start();
    assert!(!lab.listing().contains("masquerade"));
    let before = lab.status();

    // 100 flaps in one `ip -batch`, ending up.
    let batch = lab.dir.path().join("flap.batch");
    let mut lines = String::new();
    for _ in 0..100 {
        lines.push_str("link set wan0 up\nlink set wan0 down\n");
    }
    lines.push_str("link set wan0 up\n");
    fs::write(&batch, lines).unwrap();
    let started = Instant::now();
    lab.router
        .run(["ip", "-batch", batch.to_str().expect("utf-8 path")]);
    let flapping = started.elapsed();

    wait_until("the masquerade after the flapping", SETTLE_TIMEOUT, || {
        if lab.listing().contains("masquerade") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    assert_eq!(lab.router.sysctl("net/ipv4/ip_forward"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let after = lab.status();
    let reconciles = after.reconciles - before.reconciles;
    eprintln!("flapping: 201 link changes in {flapping:?} -> {reconciles} reconciles");
    // The interfaces are read once per 20 ms run of notifications, plus the
    // drift checks (one per 50 ms at most) and a few at the edges: a handful
    // when `ip` is quick, never one per flap.
    let ms = flapping.as_millis() as u64;
    assert!(
        reconciles <= ms / 20 + ms / 50 + 4 && reconciles < 201,
        "{reconciles} reconciles for 201 link changes in {flapping:?}"
    );
    assert!(
        after
            .world
            .interfaces
            .iter()
            .any(|i| i.name == "wan0" && i.up)
    );

    // And down again: its rules go.
    lab.router.run(["ip", "link", "set", "wan0", "down"]);
    wait_until("the masquerade to go", SETTLE_TIMEOUT, || {
        if lab.listing().contains("masquerade") {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    });
    assert_eq!(lab.router.sysctl("net/ipv4/ip_forward"), "0");

    daemon.stop_cleanly(SETTLE_TIMEOUT);
}

/// The neighbour of `ip` in the world `status` shows, if any.
fn neighbour(lab: &Lab, ip: &str) -> Option<Neighbour> {
    lab.status()
        .world
        .neighbours
        .into_iter()
        .find(|n| n.ip == ip)
}

/// Waits until `status` shows the neighbour of `ip` in `state` (None: not
/// at all) and returns the status.
fn wait_for_neighbour(lab: &Lab, ip: &str, state: Option<NeighbourState>) -> Status {
    wait_until(&format!("{ip} as {state:?}"), SETTLE_TIMEOUT, || {
        let status = lab.status();
        let now = status.world.neighbours.iter().find(|n| n.ip == ip);
        if now.map(|n| n.state) == state {
            Ok(status)
        } else {
            Err(format!("{now:?}"))
        }
    })
}

#[test]
fn the_kernels_neighbour_table_is_followed_with_its_states() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(
        ("router", "home-router", "lan = \"lan0\"\nwan = \"wan0\""),
        "",
    );
    let ip_neigh = |args: &str| {
        let mut argv = vec!["ip", "neigh"];
        argv.extend(args.split(' '));
        lab.router.run(argv);
    };
    // There before the daemon: read at start.
    ip_neigh("add 192.168.1.9 lladdr 02:00:00:00:00:09 dev lan0 nud permanent");
    // Entries in states that do not count, with a MAC or without.
    ip_neigh("add 192.168.1.20 dev lan0 nud incomplete");
    ip_neigh("add 192.168.1.21 lladdr 02:00:00:00:00:15 dev lan0 nud failed");
    let mut daemon = lab.start();
    assert_eq!(
        neighbour(&lab, "192.168.1.9"),
        Some(Neighbour {
            ip: "192.168.1.9".into(),
            mac: "02:00:00:00:00:09".into(),
            iface: "lan0".into(),
            state: NeighbourState::Permanent,
        })
    );
    for ip in ["192.168.1.20", "192.168.1.21"] {
        assert_eq!(neighbour(&lab, ip), None, "{ip} does not count");
    }
    let before = lab.status();

    // A SLAAC host appears: known by its MAC.
    ip_neigh("add 2001:db8:1::9 lladdr 02:00:00:00:00:0a dev lan0 nud reachable");
    let status = wait_for_neighbour(&lab, "2001:db8:1::9", Some(NeighbourState::Reachable));
    let seen = status
        .world
        .neighbours
        .iter()
        .find(|n| n.ip == "2001:db8:1::9");
    assert_eq!(seen.map(|n| n.mac.as_str()), Some("02:00:00:00:00:0a"));
    assert_eq!(
        status.last_reconcile.map(|r| r.reason),
        Some("neighbour-added lan0 2001:db8:1::9 02:00:00:00:00:0a reachable".into())
    );
    assert!(status.events > before.events);

    ip_neigh("change 2001:db8:1::9 lladdr 02:00:00:00:00:0a dev lan0 nud stale");
    let status = wait_for_neighbour(&lab, "2001:db8:1::9", Some(NeighbourState::Stale));
    assert_eq!(
        status.last_reconcile.map(|r| r.reason),
        Some("neighbour-changed lan0 2001:db8:1::9 02:00:00:00:00:0a stale".into())
    );

    let text = run(&mut lab.wasmwall("status")).stdout;
    assert!(text.contains("\nneighbours: "), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("  2001:db8:1::9 ")
            && l.ends_with("02:00:00:00:00:0a lan0     stale")),
        "{text}"
    );

    ip_neigh("del 2001:db8:1::9 dev lan0");
    let status = wait_for_neighbour(&lab, "2001:db8:1::9", None);
    assert_eq!(
        status.last_reconcile.map(|r| r.reason),
        Some("neighbour-removed lan0 2001:db8:1::9 02:00:00:00:00:0a stale".into())
    );
    assert!(neighbour(&lab, "192.168.1.9").is_some(), "the other stays");
    assert!(status.errors.is_empty(), "{:?}", status.errors);

    daemon.stop_cleanly(SETTLE_TIMEOUT);
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Waits until the daemon has logged more lines holding `rejected` than the
/// `before` it had; the last of them.
fn wait_for_rejection(daemon: &Child, rejected: &str, before: usize, what: &str) -> String {
    wait_until(&format!("{what} to be rejected"), SETTLE_TIMEOUT, || {
        let log = daemon.stderr();
        if count(&log, rejected) > before {
            Ok(log
                .lines()
                .rfind(|l| l.contains(rejected))
                .unwrap()
                .to_string())
        } else {
            Err("no rejection logged yet".to_string())
        }
    })
}

#[test]
fn broken_new_versions_are_rejected_and_the_running_ones_stay() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new(
        ("router", "home-router", "lan = \"lan0\"\nwan = \"wan0\""),
        "",
    );
    // Run a copy of the policy that the test can replace, with the config
    // naming it.
    let policy = lab.dir.path().join("router.wasm");
    fs::copy(policy_wasm("home-router"), &policy).unwrap();
    let config = fs::read_to_string(&lab.config)
        .unwrap()
        .replace(&toml_path(&policy_wasm("home-router")), &toml_path(&policy));
    fs::write(&lab.config, &config).unwrap();
    let mut daemon = lab.start();
    let table = lab.listing();
    assert!(table.contains("masquerade"), "{table}");
    let running_hash = lab.status().policies[0].hash.clone();

    let rejected = "policy router: new version rejected:";
    for (what, bytes, cause) in [
        (
            "bytes that are not WebAssembly",
            b"not wasm at all".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "a core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
        (
            "a component of another world",
            fs::read(policy_wasm("hostile-wrong-world")).unwrap(),
            "cannot load",
        ),
        (
            "a component that forges its answer",
            fs::read(policy_wasm("hostile-forged")).unwrap(),
            "evaluation failed",
        ),
        (
            "a policy that refuses this config",
            fs::read(policy_wasm("port-forward")).unwrap(),
            "unknown config key `lan`",
        ),
    ] {
        let before = count(&daemon.stderr(), rejected);
        replace_file(&policy, &bytes);
        let line = wait_for_rejection(&daemon, rejected, before, what);
        assert!(
            line.contains(cause) && line.contains("the running version stays"),
            "{what}: {line}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            count(&daemon.stderr(), rejected),
            before + 1,
            "{what}: one line"
        );
        assert_eq!(lab.listing(), table, "{what}: the kernel changed");
        let status = lab.status();
        assert_eq!(
            status.policies[0].hash, running_hash,
            "{what}: swapped anyway"
        );
        assert!(
            status.errors.iter().any(|e| e.contains(rejected)),
            "{:?}",
            status.errors
        );
        assert!(
            daemon.try_status().is_none(),
            "{what}: the daemon died\n{daemon}"
        );
    }

    // A good new version is swapped in, and clears the error.
    replace_file(
        &policy,
        &fs::read(policy_wasm("home-router-counters")).unwrap(),
    );
    wait_until("the counters version to be live", SETTLE_TIMEOUT, || {
        let listing = lab.listing();
        if listing.contains("oifname \"wan0\" counter") {
            Ok(())
        } else {
            Err(listing)
        }
    });
    let status = lab.status();
    assert_ne!(status.policies[0].hash, running_hash);
    assert!(status.errors.is_empty(), "{:?}", status.errors);

    // The config: broken TOML, and a change that needs a restart, are
    // rejected; a good change is applied.
    let config_rejected = "new version rejected:";
    for (what, text, cause) in [
        ("broken TOML", format!("{config}\n[[policy"), "line"),
        (
            "another table",
            format!("table = \"other\"\n{config}"),
            "changing `table` needs a restart",
        ),
    ] {
        let before = count(&daemon.stderr(), config_rejected);
        replace_file(&lab.config, text.as_bytes());
        let line = wait_for_rejection(&daemon, config_rejected, before, what);
        assert!(
            line.contains("config ")
                && line.contains(cause)
                && line.contains("the running config stays"),
            "{what}: {line}"
        );
        assert!(lab.router.has_table("inet", "wasmwall"));
    }
    let with_forward = config.replace("wan = \"wan0\"", "wan = \"wan0\"\nlan_tcp = [22, 53, 80]");
    replace_file(&lab.config, with_forward.as_bytes());
    wait_until("the new config to be live", SETTLE_TIMEOUT, || {
        let listing = lab.listing();
        if listing.contains("elements = { 22, 53, 80 }") {
            Ok(())
        } else {
            Err(listing)
        }
    });
    assert!(lab.status().errors.is_empty());

    daemon.stop_cleanly(SETTLE_TIMEOUT);
    assert!(!lab.router.has_table("inet", "wasmwall"));
}

#[test]
fn a_policy_input_file_is_followed_and_a_broken_one_changes_nothing() {
    if skip_unless_root() {
        return;
    }
    // port-forward's `allowed_sources` as a file: its text, final newline
    // and all, is the value (the policy trims the items of its list).
    let dir = temp_dir();
    let sources = dir.path().join("allowed-sources");
    fs::write(&sources, "192.168.1.50\n").unwrap();
    let lab = Lab::new(
        (
            "pf",
            "port-forward",
            &format!(
                "lan_interface = \"lan0\"\n[policy.files]\nallowed_sources = {}",
                toml_path(&sources)
            ),
        ),
        "",
    );
    let table = || {
        lab.router
            .run(["nft", "list", "table", "inet", "wasmwall"])
            .stdout
    };
    let wait_for = |what: &str, wanted: &[&str], gone: &[&str]| {
        wait_until(what, SETTLE_TIMEOUT, || {
            let listing = table();
            if wanted.iter().all(|w| listing.contains(w))
                && !gone.iter().any(|g| listing.contains(g))
            {
                Ok(listing)
            } else {
                Err(listing)
            }
        })
    };
    let mut daemon = lab.start();
    wait_for(
        "the file's source to be live",
        &["ip saddr 192.168.1.50 "],
        &[],
    );
    assert_eq!(
        lab.status().policies[0].files,
        [("allowed_sources".to_string(), sources.display().to_string())]
    );

    // Renamed over, as editors do; then rewritten in place.
    replace_file(&sources, b"192.168.1.51, 192.168.1.52\n");
    wait_for(
        "the renamed file to be live",
        &["ip saddr 192.168.1.51 ", "ip saddr 192.168.1.52 "],
        &["ip saddr 192.168.1.50 "],
    );
    fs::write(&sources, "192.168.1.53\n").unwrap();
    let live = wait_for(
        "the rewritten file to be live",
        &["ip saddr 192.168.1.53 "],
        &["ip saddr 192.168.1.51 ", "ip saddr 192.168.1.52 "],
    );
    assert!(lab.status().errors.is_empty(), "{:?}", lab.status().errors);

    let rejected = format!(
        "policy input file {} (policy pf, key `allowed_sources`): new version rejected:",
        sources.display()
    );
    let mut too_large = b"192.168.1.54,".repeat((1 << 20) / 13);
    too_large.resize((1 << 20) + 1, b' ');
    for (what, bytes, cause) in [
        (
            "a file that is not UTF-8",
            b"192.168.1.54\xff\n".to_vec(),
            format!("policy input file {} is not UTF-8 text", sources.display()),
        ),
        (
            "a file over 1 MiB",
            too_large,
            format!(
                "policy input file {} is larger than 1 MiB",
                sources.display()
            ),
        ),
        (
            "a source the policy's answer cannot carry",
            b"192.168.1.999\n".to_vec(),
            "policy pf: 1 problem(s) in the returned ruleset: chain \"prerouting\" rule 1 match 2: \"192.168.1.999\" is not an IPv4 or IPv6 address".to_string(),
        ),
    ] {
        let before = count(&daemon.stderr(), &rejected);
        replace_file(&sources, &bytes);
        let line = wait_for_rejection(&daemon, &rejected, before, what);
        assert!(
            line.contains(&cause) && line.contains("the running config stays"),
            "{what}: {line}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            count(&daemon.stderr(), &rejected),
            before + 1,
            "{what}: one line"
        );
        assert_eq!(table(), live, "{what}: the kernel changed");
        assert!(
            lab.status().errors.iter().any(|e| e.contains(&rejected)),
            "{what}: {:?}",
            lab.status().errors
        );
        assert!(
            daemon.try_status().is_none(),
            "{what}: the daemon died\n{daemon}"
        );
    }

    // Fixed: applied, and the error is gone.
    fs::write(&sources, "192.168.1.55\n").unwrap();
    wait_for(
        "the fixed file to be live",
        &["ip saddr 192.168.1.55 "],
        &["ip saddr 192.168.1.53 "],
    );
    assert!(lab.status().errors.is_empty(), "{:?}", lab.status().errors);

    daemon.stop_cleanly(SETTLE_TIMEOUT);
    assert!(!lab.router.has_table("inet", "wasmwall"));
}

#[test]
fn a_lease_goes_when_it_expires() {
    if skip_unless_root() {
        return;
    }
    let lab = blocking_lab(100);
    let mut daemon = lab.start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut request = lease_request("add", &host_ip(0), &host_mac(0), "h0");
    request.lease.as_mut().unwrap().expires = Some(now + 2);
    // With `wait`, the answer comes once the change is in the kernel.
    request.wait = true;
    assert!(lab.ask(&request).ok);
    assert_eq!(
        blocked_set(&lab),
        [host_ip(0)],
        "answered before the kernel had it"
    );
    // Nobody says anything more: the daemon's own timer removes it.
    wait_until("the lease to expire", SETTLE_TIMEOUT, || {
        let set = blocked_set(&lab);
        if set.is_empty() {
            Ok(())
        } else {
            Err(format!("{set:?}"))
        }
    });
    assert!(
        daemon.stderr().contains("reason=\"lease-expired 10.10.0.1"),
        "{daemon}"
    );
    assert!(lab.status().world.leases.is_empty());
    daemon.stop_cleanly(SETTLE_TIMEOUT);
}

#[test]
fn leases_told_over_the_socket_survive_a_restart() {
    if skip_unless_root() {
        return;
    }
    let lab = blocking_lab(100);
    let mut daemon = lab.start();
    let mut request = lease_request("add", &host_ip(0), &host_mac(0), "h0");
    request.wait = true;
    assert!(lab.ask(&request).ok);
    assert_eq!(blocked_set(&lab), [host_ip(0)]);
    let kept = lab
        .dir
        .path()
        .join(format!("state/netns-{}.wasmwall.leases", lab.router.name()));
    wait_until(
        "the leases to be kept",
        SETTLE_TIMEOUT,
        || match fs::read_to_string(&kept) {
            Ok(text) if text.contains(&host_ip(0)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(fs::metadata(&kept).unwrap().mode() & 0o777, 0o600);

    // A crash: the rules stay, and the restarted daemon, knowing the lease
    // again, adopts them without sending anything.
    daemon.kill();
    daemon.wait_timeout(SETTLE_TIMEOUT);
    let mut daemon = lab.start();
    let log = daemon.stderr();
    assert!(log.contains("restored=1"), "{daemon}");
    let start = log
        .lines()
        .find(|l| l.contains("reason=\"start\""))
        .expect("the start reconcile");
    assert_eq!(
        wasmwall_e2e::logged_field(start, "messages"),
        Some("0"),
        "{start}"
    );
    assert_eq!(blocked_set(&lab), [host_ip(0)]);

    // A clean stop removes the rules; the next start puts the lease back.
    daemon.stop_cleanly(SETTLE_TIMEOUT);
    assert!(!lab.router.has_table("inet", "wasmwall"));
    let mut daemon = lab.start();
    assert_eq!(blocked_set(&lab), [host_ip(0)]);
    assert_eq!(lab.status().world.leases.len(), 1);
    daemon.stop_cleanly(SETTLE_TIMEOUT);
}

/// How long the daemon may take to answer `status` while it reads a hostile
/// lease file, and to take the real leases in it.
const PROMPT: Duration = Duration::from_secs(2);
const LEASE_LANDS: Duration = Duration::from_secs(5);

#[test]
fn a_hostile_lease_file_costs_its_bad_lines_not_the_daemon() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let file = dir.path().join("dnsmasq.leases");
    run(Command::new("mkfifo").arg(&file));
    let lab = Lab::new(
        (
            "router",
            "home-router",
            "lan = \"lan0\"\nwan = \"wan0\"\nblock = [\"h0\", \"h50\", \"h100\"]",
        ),
        &format!("[leases]\ndnsmasq_file = {}\n", toml_path(&file)),
    );
    // A FIFO as the lease file: named in the status, the daemon goes on.
    let mut daemon = lab.start();
    let fifo = format!(
        "lease file {} is a FIFO (named pipe), not a regular file",
        file.display()
    );
    assert!(
        lab.status().errors.contains(&fifo),
        "{:?}",
        lab.status().errors
    );

    // A real lease, 100,000 lines of garbage, a lease with one byte that is
    // not UTF-8, a line of 1 MiB, a lease of an IPv4-mapped IPv6 address, and
    // another real lease.
    let mut text = b"0 02:00:00:00:00:01 192.168.1.10 h0 *\n".to_vec();
    for i in 0..100_000 {
        text.extend_from_slice(format!("garbage line {i}\n").as_bytes());
    }
    text.extend_from_slice(b"0 02:00:00:00:00:02 192.168.1.\xff1 h0 *\n");
    text.extend(std::iter::repeat_n(b'X', 1 << 20));
    text.extend_from_slice(b"\n0 02:00:00:00:00:03 ::ffff:192.168.1.12 h100 *\n");
    text.extend_from_slice(b"0 02:00:00:00:00:04 192.168.1.11 h50 *\n");
    let started = Instant::now();
    replace_file(&file, &text);
    let mut slowest_status = Duration::ZERO;
    let landed = loop {
        let asked = Instant::now();
        let status = lab.status();
        slowest_status = slowest_status.max(asked.elapsed());
        if blocked_set(&lab) == ["192.168.1.10", "192.168.1.11"] {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < LEASE_LANDS,
            "the leases did not land: {:?}\n{daemon}",
            status.world.leases
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "measured: the real leases landed {landed:?} after the file was written; \
         the slowest status meanwhile took {slowest_status:?}"
    );
    assert!(slowest_status < PROMPT, "status took {slowest_status:?}");

    let status = lab.status();
    let ips: Vec<&str> = status.world.leases.iter().map(|l| l.ip.as_str()).collect();
    assert_eq!(
        ips,
        ["192.168.1.10", "192.168.1.11"],
        "the IPv4-mapped lease is not taken"
    );
    let problems: Vec<&String> = status
        .errors
        .iter()
        .filter(|e| e.contains("lease file"))
        .collect();
    assert_eq!(problems.len(), 6, "{problems:#?}");
    assert!(
        problems[5].ends_with("99998 more problems not shown (100003 in all)"),
        "{problems:#?}"
    );
    let x64 = "X".repeat(64);
    for e in &status.errors {
        assert!(e.len() < 512 && !e.contains(&x64), "{e:.300}");
    }

    // The log: a few lines, none holding the long line.
    let log = daemon.stderr();
    let warned = log.lines().filter(|l| l.contains("lease file")).count();
    assert!(warned <= 8, "{warned} lease file warnings");
    assert!(!log.contains(&x64), "the 1 MiB line reached the log");
    assert!(log.len() < 64 << 10, "the log is {} bytes", log.len());

    // Over the control socket too, an IPv4-mapped address is no lease.
    let answer = lab.lease("add", "::ffff:192.168.1.13", "02:00:00:00:00:05", "h100");
    assert!(!answer.ok, "{answer:?}");
    assert!(
        answer
            .error
            .as_deref()
            .unwrap_or("")
            .contains("IPv4-mapped"),
        "{answer:?}"
    );
    daemon.stop_cleanly(SETTLE_TIMEOUT);
}
