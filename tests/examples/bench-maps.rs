//! New connections per second through a router with N port forwards, the
//! forwards written as linear rules (one DNAT rule and one forward accept
//! per forward, as the 0.1 home-router wrote them) or as one NAT map and
//! one set lookup (O(1) per packet, as the 0.2 home-router writes them).
//!
//! Three namespaces: a client on the router's WAN side, the router, and a
//! LAN server. The client opens TCP connections to the router's WAN
//! address on the port of the last forward (the worst case for linear
//! rules: every connection's first packet passes all the forwards before
//! it), the router DNATs them to the server, and the client resets each
//! connection as soon as it is open (no TIME_WAIT), for a fixed time. The
//! rules are loaded with `nft -f` (the kernel's packet path is what is
//! measured, whoever loaded the rules). Run it on a quiet machine: other
//! work on the CPUs shows in the figures.
//!
//! Run (as root; release build):
//!   cargo run --release -p wasmwall-e2e --example bench-maps
//! `BENCH_SECONDS` (default 3) sets the time per measurement,
//! `BENCH_ROUNDS` (default 3) how many times each is repeated.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmwall_e2e::{Netns, require_root, temp_dir, veth_pair, wait_until};

const WAN_ROUTER: &str = "10.1.0.1";
const WAN_CLIENT: &str = "10.1.0.2";
/// The client's source addresses, 10.1.0.10 and on, taken in turn: the
/// server closes first and keeps each connection in TIME_WAIT for 60 s,
/// and a new SYN from a source port used a moment ago would meet it and
/// wait a second for a retransmission. With this many addresses no
/// address, port and destination come again within a run.
const SOURCES: u32 = 128;
const LAN_ROUTER: &str = "192.168.0.1";
/// The server: the target of the last forward.
const SERVER: &str = "192.168.0.10";
const SERVER_PORT: u16 = 80;
const FIRST_PORT: u16 = 20000;
/// Client threads opening connections.
const CLIENTS: usize = 2;

/// The target of forward `i` of `n`: the last one is the server, the others
/// other LAN hosts (one address each, as a home network has them).
fn target(i: usize, n: usize) -> Ipv4Addr {
    if i + 1 == n {
        return SERVER.parse().unwrap();
    }
    let host = 11 + i as u32;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + (host / 250) * 256 + host % 250)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Linear,
    Map,
}

/// The ruleset of `n` forwards in `shape`, as nft text.
fn ruleset(shape: Shape, n: usize) -> String {
    let mut t = String::from("table inet bench {\n");
    match shape {
        Shape::Linear => {
            t.push_str(
                "\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
            );
            for i in 0..n {
                let _ = writeln!(
                    t,
                    "\t\tiifname \"r0\" tcp dport {} dnat ip to {}:{SERVER_PORT}",
                    FIRST_PORT as usize + i,
                    target(i, n)
                );
            }
            t.push_str("\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n");
            for i in 0..n {
                let _ = writeln!(
                    t,
                    "\t\tiifname \"r0\" oifname \"r1\" ip daddr {} tcp dport {SERVER_PORT} accept",
                    target(i, n)
                );
            }
            t.push_str("\t}\n");
        }
        Shape::Map => {
            t.push_str("\tmap forwards {\n\t\ttype inet_service : ipv4_addr . inet_service\n\t\telements = { ");
            let entries: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "{} : {} . {SERVER_PORT}",
                        FIRST_PORT as usize + i,
                        target(i, n)
                    )
                })
                .collect();
            t.push_str(&entries.join(", "));
            t.push_str(
                " }\n\t}\n\tset open {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { ",
            );
            let open: Vec<String> = (0..n)
                .map(|i| format!("{} . {SERVER_PORT}", target(i, n)))
                .collect();
            t.push_str(&open.join(", "));
            t.push_str(" }\n\t}\n");
            t.push_str("\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tiifname \"r0\" dnat ip to tcp dport map @forwards\n\t}\n");
            t.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n\t\tiifname \"r0\" oifname \"r1\" ip daddr . tcp dport @open accept\n\t}\n");
        }
    }
    t.push_str("}\n");
    t
}

struct Lab {
    client: Netns,
    router: Netns,
    server: Netns,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            client: Netns::new("client"),
            router: Netns::new("router"),
            server: Netns::new("server"),
        };
        veth_pair(
            (&lab.router, "r0", &format!("{WAN_ROUTER}/24")),
            (&lab.client, "c0", &format!("{WAN_CLIENT}/24")),
        );
        for i in 0..SOURCES {
            let source = source(i as usize);
            lab.client
                .run(["ip", "addr", "add", &format!("{source}/24"), "dev", "c0"]);
        }
        veth_pair(
            (&lab.router, "r1", &format!("{LAN_ROUTER}/24")),
            (&lab.server, "s0", &format!("{SERVER}/24")),
        );
        lab.server
            .run(["ip", "route", "add", "default", "via", LAN_ROUTER]);
        lab.router
            .run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        // A reset connection stays in the connection table for 10 s (closed)
        // or 120 s (time-wait) by default: at tens of thousands of new
        // connections a second that fills the table (262,144 entries here)
        // and the kernel drops new SYNs. One second each keeps it small:
        // this measures the rules, not the table's size.
        for timeout in ["close", "time_wait"] {
            lab.router.run([
                "sysctl",
                "-q",
                "-w",
                &format!("net.netfilter.nf_conntrack_tcp_timeout_{timeout}=1"),
            ]);
        }
        // A veth end may show no carrier for a moment after both are up.
        for (netns, iface) in [
            (&lab.client, "c0"),
            (&lab.router, "r0"),
            (&lab.router, "r1"),
            (&lab.server, "s0"),
        ] {
            wait_until(
                &format!("{iface} has a carrier"),
                Duration::from_secs(5),
                || {
                    let link = netns.run(["ip", "link", "show", iface]).stdout;
                    if link.contains("NO-CARRIER") {
                        Err(link)
                    } else {
                        Ok(())
                    }
                },
            );
        }
        lab
    }

    fn load(&self, shape: Shape, n: usize) -> Duration {
        let dir = temp_dir();
        let file = dir.path().join("rules.nft");
        std::fs::write(&file, ruleset(shape, n)).unwrap();
        self.router
            .run_unchecked(["nft", "delete", "table", "inet", "bench"]);
        // Start each measurement with an empty connection table, when the
        // conntrack tool is there (the kernel makes a new entry for a SYN
        // that meets an old closed one anyway).
        self.router.run_unchecked(["conntrack", "-F"]);
        let start = Instant::now();
        self.router
            .run(["nft".as_ref(), "-f".as_ref(), file.as_os_str()]);
        start.elapsed()
    }
}

/// Connections the client opened in `time` to the router's port `port`,
/// and those that failed.
fn connections(lab: &Lab, port: u16, time: Duration) -> (u64, u64) {
    let to: SocketAddr = (WAN_ROUTER.parse::<Ipv4Addr>().unwrap(), port).into();
    lab.client.enter(|| {
        let opened = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + time;
        thread::scope(|scope| {
            for c in 0..CLIENTS {
                let (opened, failed) = (opened.clone(), failed.clone());
                scope.spawn(move || {
                    let mut next = c;
                    while Instant::now() < deadline {
                        next = (next + CLIENTS) % SOURCES as usize;
                        match connect_from(source(next), to) {
                            Ok(stream) => {
                                reset_on_close(&stream);
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        (
            opened.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        )
    })
}

/// The client's source address `i`.
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 10 + i as u8)
}

/// A TCP connection from `from` to `to`, or an error after a second. The
/// source port is picked at connect time, for the whole address pair
/// (`IP_BIND_ADDRESS_NO_PORT`), as for an unbound socket.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let in_addr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor this function owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    let local = in_addr(from, 0);
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 destination")
    };
    let remote = in_addr(*to.ip(), to.port());
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a valid socket; each option value and address is of the
    // size given with it.
    unsafe {
        check(libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        // A blocking connect gives up after the send timeout.
        check(libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        ))?;
        check(libc::bind(
            sock.as_raw_fd(),
            (&local as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        check(libc::connect(
            sock.as_raw_fd(),
            (&remote as *const libc::sockaddr_in).cast(),
            len,
        ))?;
    }
    Ok(TcpStream::from(sock))
}

/// SO_LINGER 0: closing sends a reset and leaves no TIME_WAIT.
fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// The server: accepts and drops connections until `stop`. Its backlog is
/// large and it waits in poll(2), woken by each connection: a full accept
/// queue would drop SYNs, and each drop costs a connection a second.
fn serve(lab: &Lab, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    use std::os::fd::AsRawFd;
    let listener = lab
        .server
        .enter(|| TcpListener::bind((SERVER, SERVER_PORT)).expect("bind the server"));
    // SAFETY: a listening socket; listen(2) again only changes its backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fd = libc::pollfd {
                        fd: listener.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut fd, 1, 50) };
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    require_root();
    let time = Duration::from_secs(env_number("BENCH_SECONDS", 3));
    let rounds = env_number("BENCH_ROUNDS", 3) as usize;
    let lab = Lab::new();
    let stop = Arc::new(AtomicBool::new(false));
    let server = serve(&lab, stop.clone());

    println!(
        "| forwards | shape | rules loaded by `nft -f` in | new connections per second (each of {rounds} rounds of {} s) | median |",
        time.as_secs()
    );
    println!("|---:|---|---:|---|---:|");
    let mut medians = Vec::new();
    for n in [10, 10_000] {
        for shape in [Shape::Linear, Shape::Map] {
            let loaded = lab.load(shape, n);
            let port = FIRST_PORT + n as u16 - 1;
            // Warm up the path before measuring: the first connections after
            // a new table can wait for a retransmitted SYN.
            connections(&lab, port, Duration::from_secs(2));
            let mut rates: Vec<f64> = (0..rounds)
                .map(|_| {
                    let (opened, failed) = connections(&lab, port, time);
                    assert!(
                        failed * 100 <= opened,
                        "{failed} of {} connections failed",
                        opened + failed
                    );
                    opened as f64 / time.as_secs_f64()
                })
                .collect();
            let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            medians.push((n, shape, median));
            println!(
                "| {n} | {shape:?} | {:.0} ms | {} | {median:.0} |",
                loaded.as_secs_f64() * 1000.0,
                shown.join(", ")
            );
        }
    }
    let rate = |n, shape| {
        medians
            .iter()
            .find(|(m, s, _)| *m == n && *s == shape)
            .map(|(_, _, r)| *r)
            .unwrap()
    };
    println!();
    println!(
        "map at 10,000 forwards: {:.0} % of its rate at 10; linear rules at 10,000: {:.0} % of theirs at 10; the map is {:.1}x the linear rules at 10,000",
        100.0 * rate(10_000, Shape::Map) / rate(10, Shape::Map),
        100.0 * rate(10_000, Shape::Linear) / rate(10, Shape::Linear),
        rate(10_000, Shape::Map) / rate(10_000, Shape::Linear)
    );
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
}
