//! The 0.2 statements and actions against the real kernel (run as root).
//!
//! Each construct is applied, listed by nft exactly as the runtime's text,
//! read back with nothing to send, and repaired after a hand edit (the
//! round trip of `common`). Where a construct acts on packets, real
//! packets cross it: the test thread's own fresh namespace is the
//! firewall, between a client and a server namespace it makes (named
//! `wwa-<pid>-<n>-<role>`) and always removes, also when a test fails.
//!
//! The counter and ct helper objects rules name are the policy's own, made
//! by the runtime with the rules (`tests/objects.rs` tests them alone).
//! The statements that match TCP SYNs (`mss`) are
//! applied here with a port match, as the IR holds no tcp-flags match yet;
//! the kernel changes the MSS only in packets that carry one (SYNs).

mod common;

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::{self, DesiredTable};

const WAIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------

fn with(statements: Vec<Statement>, mut r: Rule) -> Rule {
    r.statements = statements;
    r
}

fn addr(dir: Dir, net: &str) -> Match {
    Match::Addr {
        dir,
        net: net.parse().unwrap(),
        negate: false,
    }
}

fn l4(proto: L4Proto) -> Match {
    Match::L4Proto {
        proto,
        negate: false,
    }
}

fn iif(name: &str) -> Match {
    Match::Iifname {
        name: name.into(),
        negate: false,
    }
}

fn oif(name: &str) -> Match {
    Match::Oifname {
        name: name.into(),
        negate: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ports(first: u16, last: u16) -> Option<PortRange> {
    Some(PortRange { first, last })
}

fn log(prefix: Option<&str>, level: Option<LogLevel>, limit: Option<Rate>) -> Statement {
    Statement::Log {
        prefix: prefix.map(Into::into),
        level,
        limit,
    }
}

fn filter(hook: Hook, priority: i32) -> Option<BaseChain> {
    base(hook, ChainType::Filter, priority, ChainPolicy::Accept)
}

fn nat(hook: Hook) -> Option<BaseChain> {
    let priority = if hook == Hook::Postrouting { 100 } else { -100 };
    base(hook, ChainType::Nat, priority, ChainPolicy::Accept)
}

fn reject(matches: Vec<Match>, with: RejectWith) -> Rule {
    rule(matches, Action::Reject(with))
}

fn dscp(family: Family, value: u8) -> Statement {
    Statement::Dscp { family, value }
}

/// One policy with every statement and action that needs no object.
fn every_construct() -> Vec<PolicyRules> {
    let per_minute = Rate {
        amount: 10,
        bytes: false,
        per: TimeUnit::Minute,
        burst: 20,
    };
    let kbytes = Rate {
        amount: 3 << 10,
        bytes: true,
        per: TimeUnit::Second,
        burst: 4096,
    };
    let b = |mask, xor| MarkUpdate::Bitwise { mask, xor };
    let input = vec![
        reject(vec![], RejectWith::Icmpx(IcmpxReject::AdminProhibited)),
        reject(vec![], RejectWith::Icmpx(IcmpxReject::NoRoute)),
        reject(
            vec![addr(Dir::Source, "10.0.0.0/8")],
            RejectWith::Icmp(IcmpReject::HostUnreachable),
        ),
        reject(
            vec![addr(Dir::Source, "10.0.0.1")],
            RejectWith::Icmp(IcmpReject::AdminProhibited),
        ),
        reject(
            vec![addr(Dir::Source, "fd00::/8")],
            RejectWith::Icmpv6(Icmpv6Reject::PortUnreachable),
        ),
        reject(vec![dport(Transport::Tcp, 22, 22)], RejectWith::TcpReset),
        reject(
            vec![dport(Transport::Udp, 22, 22)],
            RejectWith::Icmpx(IcmpxReject::PortUnreachable),
        ),
        with(
            vec![log(Some("in "), Some(LogLevel::Info), Some(per_minute))],
            rule(vec![], Action::Continue),
        ),
        with(
            vec![
                Statement::Counter,
                log(None, Some(LogLevel::Emerg), None),
                log(None, None, Some(kbytes)),
            ],
            rule(vec![], Action::Continue),
        ),
        with(
            vec![
                Statement::Mark(MarkUpdate::Set(0xff)),
                Statement::Mark(b(0x0f, 0)),
                Statement::Mark(b(!0x100, 0x100)),
                Statement::Mark(b(u32::MAX, 0x3)),
                Statement::Mark(b(!0xf000, 0x2000)),
            ],
            rule(vec![], Action::Continue),
        ),
        with(
            vec![
                Statement::CtMark(MarkUpdate::Set(1)),
                Statement::CtMark(b(!0xff00, 0x1200)),
                Statement::CtMark(b(0xff, 0x1)),
            ],
            rule(vec![], Action::Continue),
        ),
        with(
            vec![dscp(Family::V4, 46), dscp(Family::V4, 5)],
            rule(vec![dport(Transport::Udp, 53, 53)], Action::Accept),
        ),
        with(
            vec![dscp(Family::V6, 10)],
            rule(vec![addr(Dir::Source, "fd00::1")], Action::Accept),
        ),
    ];
    let raw = vec![
        with(
            vec![Statement::Notrack],
            rule(vec![dport(Transport::Udp, 53, 53)], Action::Accept),
        ),
        with(vec![Statement::Notrack], rule(vec![], Action::Continue)),
    ];
    let forward = vec![
        with(
            vec![Statement::Mss(MssClamp::PathMtu)],
            rule(vec![dport(Transport::Tcp, 80, 80)], Action::Continue),
        ),
        with(
            vec![Statement::Mss(MssClamp::Size(1400))],
            rule(vec![l4(L4Proto::Tcp)], Action::Continue),
        ),
    ];
    let range = |first: &str, last: Option<&str>, p: Option<PortRange>, flags| NatTarget {
        address: ip(first),
        last_address: last.map(ip),
        ports: p,
        flags,
    };
    let none = NatFlags::default();
    let pre = vec![
        rule(
            vec![dport(Transport::Tcp, 80, 80)],
            Action::Dnat(range("10.2.0.2", Some("10.2.0.3"), ports(9000, 9001), none)),
        ),
        rule(
            vec![dport(Transport::Udp, 53, 53)],
            Action::Dnat(range(
                "fd00::1",
                Some("fd00::5"),
                ports(5353, 5353),
                NatFlags {
                    persistent: true,
                    ..none
                },
            )),
        ),
        rule(
            vec![],
            Action::Dnat(range(
                "10.0.0.1",
                None,
                None,
                NatFlags {
                    random: true,
                    fully_random: true,
                    persistent: true,
                },
            )),
        ),
        with(
            vec![dscp(Family::V4, 10)],
            rule(
                vec![dport(Transport::Tcp, 81, 81)],
                Action::Dnat(NatTarget::to(ip("10.0.0.2"), None)),
            ),
        ),
        rule(vec![dport(Transport::Tcp, 82, 82)], Action::Redirect(None)),
        rule(
            vec![dport(Transport::Tcp, 83, 83)],
            Action::Redirect(ports(8080, 8080)),
        ),
        rule(
            vec![dport(Transport::Tcp, 84, 84)],
            Action::Redirect(ports(8080, 8090)),
        ),
    ];
    let post = vec![
        rule(
            vec![oif("wan0"), dport(Transport::Udp, 53, 53)],
            Action::Snat(range(
                "203.0.113.1",
                Some("203.0.113.9"),
                ports(1000, 2000),
                NatFlags {
                    fully_random: true,
                    ..none
                },
            )),
        ),
        rule(
            vec![oif("wan1"), l4(L4Proto::Tcp)],
            Action::Masquerade(ports(30000, 30010)),
        ),
        rule(
            vec![oif("wan2"), l4(L4Proto::Udp)],
            Action::Masquerade(ports(40000, 40000)),
        ),
        rule(vec![oif("wan3")], Action::Masquerade(None)),
    ];
    policy(
        "pf",
        vec![
            chain("input", filter(Hook::Input, 0), input),
            chain("raw", filter(Hook::Prerouting, -300), raw),
            chain("fwd", filter(Hook::Forward, 0), forward),
            chain("pre", nat(Hook::Prerouting), pre),
            chain("post", nat(Hook::Postrouting), post),
        ],
        vec![],
    )
}

#[test]
fn every_statement_and_action_lists_as_its_text_reads_back_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, &every_construct());
}

fn object_rules() -> Vec<PolicyRules> {
    let input = vec![
        with(
            vec![Statement::CounterNamed("hits".into())],
            rule(vec![dport(Transport::Udp, 9003, 9003)], Action::Accept),
        ),
        with(
            vec![Statement::Counter, Statement::CounterNamed("hits".into())],
            rule(vec![dport(Transport::Udp, 9004, 9004)], Action::Continue),
        ),
    ];
    let helpers = vec![with(
        vec![Statement::CtHelper("ftp".into())],
        rule(vec![dport(Transport::Tcp, 21, 21)], Action::Accept),
    )];
    let mut p = policy(
        "pf",
        vec![
            chain("input", filter(Hook::Input, 0), input),
            chain("helpers", filter(Hook::Prerouting, 0), helpers),
        ],
        vec![],
    );
    p[0].rules.objects = vec![
        NamedObject {
            name: "hits".into(),
            object: Object::Counter,
        },
        NamedObject {
            name: "ftp".into(),
            object: Object::CtHelper(CtHelper {
                helper: "ftp".into(),
                protocol: Transport::Tcp,
            }),
        },
    ];
    p
}

#[test]
fn statements_naming_objects_list_as_their_text_and_are_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, &object_rules());
}

// ---------------------------------------------------------------------
// Namespaces and traffic
// ---------------------------------------------------------------------

static NEXT_PEER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace at one end of the traffic, deleted on drop.
struct Peer {
    name: String,
}

impl Peer {
    fn new(role: &str) -> Peer {
        let name = format!(
            "wwa-{}-{}-{role}",
            std::process::id(),
            NEXT_PEER.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let peer = Peer { name };
        peer.run(&["ip", "link", "set", "lo", "up"]);
        peer
    }

    fn run(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        sh(&all);
    }

    /// Runs `f` on a thread that has entered the namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|s| {
            s.spawn(move || {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: a namespace fd; only this thread changes namespace.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Never panics: this runs while a failed test unwinds too.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// Runs a command in the calling thread's namespace; panics loudly unless
/// it succeeds.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// client (c0: 10.1.0.2-9/24, fd01::2/64) -- rc [the test thread: the
/// firewall, forwarding] rs -- server (s0: 10.2.0.2 and .3/24, fd02::2/64;
/// `server_mtu` on its link).
struct Net {
    client: Peer,
    server: Peer,
}

fn net(server_mtu: u32) -> Net {
    let net = Net {
        client: Peer::new("client"),
        server: Peer::new("server"),
    };
    let mtu = server_mtu.to_string();
    sh(&["ip", "link", "set", "lo", "up"]);
    for (here, there, peer) in [("rc", "c0", &net.client), ("rs", "s0", &net.server)] {
        sh(&[
            "ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", &peer.name,
        ]);
        sh(&["ip", "link", "set", here, "up"]);
        peer.run(&["ip", "link", "set", there, "up"]);
    }
    sh(&["ip", "link", "set", "rs", "mtu", &mtu]);
    net.server.run(&["ip", "link", "set", "s0", "mtu", &mtu]);
    for (dev, a) in [
        ("rc", "10.1.0.1/24"),
        ("rc", "fd01::1/64"),
        ("rs", "10.2.0.1/24"),
        ("rs", "fd02::1/64"),
    ] {
        sh(&["ip", "addr", "add", a, "dev", dev, "nodad"]);
    }
    for n in 2..=9 {
        net.client
            .run(&["ip", "addr", "add", &format!("10.1.0.{n}/24"), "dev", "c0"]);
    }
    net.client
        .run(&["ip", "addr", "add", "fd01::2/64", "dev", "c0", "nodad"]);
    for a in ["10.2.0.2/24", "10.2.0.3/24", "fd02::2/64"] {
        net.server
            .run(&["ip", "addr", "add", a, "dev", "s0", "nodad"]);
    }
    for (peer, v4, v6) in [
        (&net.client, "10.1.0.1", "fd01::1"),
        (&net.server, "10.2.0.1", "fd02::1"),
    ] {
        peer.run(&["ip", "route", "add", "default", "via", v4]);
        peer.run(&["ip", "-6", "route", "add", "default", "via", v6]);
    }
    sh(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    sh(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    net
}

fn apply(kernel: &mut Netlink, policies: &[PolicyRules]) {
    let desired = DesiredTable::from_policies(policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap_or_else(|e| panic!("the kernel refused the table: {e}"));
}

/// The firewall's conntrack entries, one a line.
fn conntrack() -> String {
    sh(&["cat", "/proc/net/nf_conntrack"])
}

fn entries_with<'a>(table: &'a str, needle: &str) -> Vec<&'a str> {
    table.lines().filter(|l| l.contains(needle)).collect()
}

fn connect(to: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&to, WAIT)
}

/// A TCP connection from `from` (bound to it) to `to`.
fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let sock = socket(libc::AF_INET, libc::SOCK_STREAM, 0)?;
    let local = sockaddr_in(SocketAddr::new(from, 0));
    // SAFETY: a valid socket and a sockaddr_in of the right length.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&local as *const libc::sockaddr_in).cast(),
            mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let remote = sockaddr_in(to);
    // SAFETY: as above.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&remote as *const libc::sockaddr_in).cast(),
            mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpStream::from(sock))
}

fn sockaddr_in(a: SocketAddr) -> libc::sockaddr_in {
    let (IpAddr::V4(ip), port) = (a.ip(), a.port()) else {
        panic!("an IPv4 address");
    };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn socket(domain: i32, ty: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int(fd: RawFd, level: i32, name: i32, value: i32) {
    // SAFETY: an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            mem::size_of::<i32>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Calls `recvmsg` on `fd` with `flags` until it returns a message or
/// `WAIT` passes; gives the control messages as (level, type, data).
fn control_messages(fd: RawFd, flags: i32) -> Option<Vec<(i32, i32, Vec<u8>)>> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let mut data = [0u8; 2048];
        let mut control = [0u8; 512];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: zeroed msghdr, then pointed at buffers that outlive it.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
        // SAFETY: msg points at valid buffers.
        let n = unsafe { libc::recvmsg(fd, &mut msg, flags | libc::MSG_DONTWAIT) };
        if n < 0 {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let mut out = Vec::new();
        // SAFETY: walking the control buffer recvmsg filled, with libc's
        // macros, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let bytes = std::slice::from_raw_parts(libc::CMSG_DATA(c), len).to_vec();
                out.push(((*c).cmsg_level, (*c).cmsg_type, bytes));
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        return Some(out);
    }
    None
}

/// The (type, code) of the ICMP or ICMPv6 error a UDP datagram to `to`
/// draws, read from the socket's error queue; None when none comes.
fn icmp_answer(to: SocketAddr) -> Option<(u8, u8)> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(any).unwrap();
    sock.connect(to).unwrap();
    let (level, name) = if to.is_ipv4() {
        (libc::SOL_IP, libc::IP_RECVERR)
    } else {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    };
    set_int(sock.as_raw_fd(), level, name, 1);
    sock.send(b"x").unwrap();
    let cmsgs = control_messages(sock.as_raw_fd(), libc::MSG_ERRQUEUE)?;
    cmsgs
        .into_iter()
        .find(|(l, t, _)| *l == level && *t == name)
        .map(|(_, _, d)| (d[5], d[6]))
}

/// The MSS option of the first SYN to `port` that reaches this namespace,
/// read from a raw socket opened before `send` runs.
fn syn_mss(port: u16, send: impl FnOnce()) -> Option<u16> {
    let raw = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP).unwrap();
    send();
    let deadline = Instant::now() + WAIT;
    let mut file = File::from(raw);
    set_nonblocking(file.as_raw_fd());
    while Instant::now() < deadline {
        let mut buf = [0u8; 2048];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let packet = &buf[..n];
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let tcp = &packet[ihl..];
        let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
        let is_syn = tcp[13] & 0x12 == 0x02;
        if dport != port || !is_syn {
            continue;
        }
        let options = &tcp[20..usize::from(tcp[12] >> 4) * 4];
        let mut i = 0;
        while i < options.len() {
            match options[i] {
                0 => break,
                1 => i += 1,
                2 => return Some(u16::from_be_bytes([options[i + 2], options[i + 3]])),
                _ => i += usize::from(options[i + 1].max(2)),
            }
        }
        return None;
    }
    None
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a valid descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Accepts connections on `listener` until `count` came or `WAIT` passed;
/// gives each one's (local, peer) address.
fn accept(listener: &TcpListener, count: usize) -> Vec<(SocketAddr, SocketAddr)> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        match listener.accept() {
            Ok((s, peer)) => out.push((s.local_addr().unwrap(), peer)),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    out
}

// ---------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------

#[test]
fn rejects_answer_as_the_rule_says() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let input = vec![
        reject(
            vec![dport(Transport::Tcp, 7001, 7001)],
            RejectWith::TcpReset,
        ),
        reject(
            vec![
                addr(Dir::Source, "10.1.0.0/24"),
                dport(Transport::Udp, 7002, 7002),
            ],
            RejectWith::Icmp(IcmpReject::HostUnreachable),
        ),
        reject(
            vec![dport(Transport::Udp, 7003, 7003)],
            RejectWith::Icmpx(IcmpxReject::AdminProhibited),
        ),
        reject(
            vec![dport(Transport::Udp, 7004, 7004)],
            RejectWith::Icmpx(IcmpxReject::PortUnreachable),
        ),
        reject(
            vec![
                addr(Dir::Source, "fd01::/64"),
                dport(Transport::Udp, 7005, 7005),
            ],
            RejectWith::Icmpv6(Icmpv6Reject::AdminProhibited),
        ),
    ];
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![chain("input", filter(Hook::Input, 0), input)],
            vec![],
        ),
    );
    // Listeners on every port: without the rules nothing would refuse.
    let _tcp: Vec<TcpListener> = [7000, 7001]
        .map(|p| TcpListener::bind(("0.0.0.0", p)).unwrap())
        .into();
    // Bound to IPv6 and IPv4 both.
    let _udp: Vec<UdpSocket> = (7002..=7005)
        .map(|p| UdpSocket::bind(("::", p)).unwrap())
        .collect();
    let v4 = |port| SocketAddr::new(ip("10.1.0.1"), port);
    net.client.enter(|| {
        assert!(connect(v4(7000)).is_ok(), "the port without a rule answers");
        let refused = connect(v4(7001)).map(|_| ()).unwrap_err();
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionRefused,
            "{refused}"
        );
        // ICMP destination unreachable (3): host (1), administratively
        // prohibited (13), port (3); ICMPv6 (1) administratively
        // prohibited (1).
        assert_eq!(icmp_answer(v4(7002)), Some((3, 1)));
        assert_eq!(icmp_answer(v4(7003)), Some((3, 13)));
        assert_eq!(icmp_answer(v4(7004)), Some((3, 3)));
        assert_eq!(
            icmp_answer(SocketAddr::new(ip("fd01::1"), 7005)),
            Some((1, 1))
        );
    });
}

#[test]
fn marks_compose_to_the_value_the_text_says() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let b = |mask, xor| MarkUpdate::Bitwise { mask, xor };
    // 0xff, & 0x0f -> 0x0f, | 0x100 -> 0x10f, ^ 0x3 -> 0x10c, bits
    // 0xf000 to 0x2 -> 0x210c.
    let updates = [
        MarkUpdate::Set(0xff),
        b(0x0f, 0),
        b(!0x100, 0x100),
        b(u32::MAX, 0x3),
        b(!0xf000, 0x2000),
    ];
    let marks = vec![
        with(
            updates.iter().copied().map(Statement::Mark).collect(),
            rule(
                vec![iif("rc"), dport(Transport::Tcp, 9100, 9100)],
                Action::Continue,
            ),
        ),
        with(
            updates.iter().copied().map(Statement::CtMark).collect(),
            rule(
                vec![iif("rc"), dport(Transport::Udp, 9101, 9101)],
                Action::Continue,
            ),
        ),
    ];
    let server = net
        .server
        .enter(|| TcpListener::bind(("0.0.0.0", 9100)).unwrap());
    let to = SocketAddr::new(ip("10.2.0.2"), 9100);
    net.client
        .enter(|| connect(to))
        .expect("the server answers before any mark is set");
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![chain("mangle", filter(Hook::Prerouting, -150), marks)],
            vec![],
        ),
    );
    // The packet mark is checked by policy routing: a packet marked
    // exactly 0x210c is routed to a prohibit route.
    sh(&["ip", "rule", "add", "fwmark", "0x210c", "table", "100"]);
    sh(&["ip", "route", "add", "prohibit", "default", "table", "100"]);
    let refused = net.client.enter(|| connect(to));
    assert!(refused.is_err(), "a packet marked 0x210c is routed away");
    sh(&["ip", "rule", "del", "fwmark", "0x210c", "table", "100"]);
    sh(&["ip", "rule", "add", "fwmark", "0x210d", "table", "100"]);
    net.client
        .enter(|| connect(to))
        .expect("a rule for another mark leaves the packet alone");
    drop(server);

    net.client.enter(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"x", "10.1.0.1:9101").unwrap();
    });
    let table = conntrack();
    let entries = entries_with(&table, "dport=9101");
    assert_eq!(entries.len(), 1, "{table}");
    assert!(
        entries[0].contains(" mark=8460 "),
        "0x210c is 8460: {}",
        entries[0]
    );
}

#[test]
fn notracked_packets_leave_no_conntrack_entry() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let raw = vec![with(
        vec![Statement::Notrack],
        rule(vec![dport(Transport::Udp, 9201, 9201)], Action::Accept),
    )];
    // A ct match turns connection tracking on in this namespace.
    let input = vec![rule(
        vec![Match::CtState(CtStates(CtStates::INVALID))],
        Action::Drop,
    )];
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![
                chain("raw", filter(Hook::Prerouting, -300), raw),
                chain("input", filter(Hook::Input, 0), input),
            ],
            vec![],
        ),
    );
    net.client.enter(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        for port in [9201, 9202] {
            sock.send_to(b"x", ("10.1.0.1", port)).unwrap();
        }
    });
    thread::sleep(Duration::from_millis(100));
    let table = conntrack();
    assert_eq!(entries_with(&table, "dport=9202").len(), 1, "{table}");
    assert!(entries_with(&table, "dport=9201").is_empty(), "{table}");
}

/// The FTP helper, attached by the rule to connections to port 21 only,
/// reads the server's passive-mode answer and expects the data connection
/// it announces (/proc/net/nf_conntrack_expect); the same answer on
/// another port draws no expectation.
#[test]
fn a_ct_helper_follows_ftp_control_connections() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    apply(&mut kernel, &object_rules());
    let listeners = [21, 2121].map(|p| TcpListener::bind(("0.0.0.0", p)).unwrap());
    let mut clients = net
        .client
        .enter(|| [21, 2121].map(|p| connect(SocketAddr::new(ip("10.1.0.1"), p)).unwrap()));
    // The helper reads lines that start a segment after a line it saw
    // end: a greeting first, then 227 Entering Passive Mode
    // (h1,h2,h3,h4,p1,p2), data on port p1 * 256 + p2: 10000 on 21 and
    // 10001 on 2121.
    for ((listener, client), p2) in listeners.iter().zip(&mut clients).zip([16, 17]) {
        listener.set_nonblocking(false).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        for line in [
            "220 ready".to_string(),
            format!("227 Entering Passive Mode (10,1,0,1,39,{p2})."),
        ] {
            write!(conn, "{line}\r\n").unwrap();
            let mut got = vec![0u8; line.len() + 2];
            client.read_exact(&mut got).unwrap();
            assert_eq!(got, format!("{line}\r\n").as_bytes());
        }
    }
    let expected = sh(&["cat", "/proc/net/nf_conntrack_expect"]);
    let data = entries_with(&expected, "dport=10000");
    assert_eq!(data.len(), 1, "{expected}");
    assert!(data[0].contains("ftp"), "{}", data[0]);
    assert!(
        entries_with(&expected, "dport=10001").is_empty(),
        "{expected}"
    );
}

/// The counter object counts the datagrams to 9003 (rule 1) and to 9004
/// (rule 2), and nothing else.
#[test]
fn a_counter_object_counts_for_the_rules_that_name_it() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    apply(&mut kernel, &object_rules());
    net.client.enter(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        for port in [9003, 9003, 9003, 9004, 9004, 9005] {
            sock.send_to(b"x", ("10.1.0.1", port)).unwrap();
        }
    });
    thread::sleep(Duration::from_millis(100));
    let counter = nft(&["list", "counter", "inet", TABLE, "pf/hits"]);
    let packets: u64 = counter
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{counter}"));
    assert_eq!(packets, 5, "{counter}");
}

#[test]
fn mss_is_clamped_to_the_path_mtu_or_a_size() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1280);
    let forward = vec![
        with(
            vec![Statement::Mss(MssClamp::PathMtu)],
            rule(vec![dport(Transport::Tcp, 5001, 5001)], Action::Accept),
        ),
        with(
            vec![Statement::Mss(MssClamp::Size(1300))],
            rule(vec![dport(Transport::Tcp, 5002, 5002)], Action::Accept),
        ),
    ];
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![chain("fwd", filter(Hook::Forward, 0), forward)],
            vec![],
        ),
    );
    let mss = |port| {
        net.server.enter(|| {
            syn_mss(port, || {
                net.client.enter(|| {
                    let _ = TcpStream::connect_timeout(
                        &SocketAddr::new(ip("10.2.0.2"), port),
                        Duration::from_millis(500),
                    );
                })
            })
        })
    };
    // The client's link has an MTU of 1500: it offers 1460.
    assert_eq!(mss(5003), Some(1460), "no rule");
    // 1280 less 20 bytes of IPv4 and 20 of TCP header.
    assert_eq!(mss(5001), Some(1240), "rt mtu");
    assert_eq!(mss(5002), Some(1300), "a size");
}

#[test]
fn redirect_reaches_a_local_port() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let pre = vec![
        rule(
            vec![dport(Transport::Tcp, 80, 80)],
            Action::Redirect(ports(8080, 8080)),
        ),
        rule(
            vec![dport(Transport::Tcp, 81, 81)],
            Action::Redirect(ports(8081, 8082)),
        ),
    ];
    apply(
        &mut kernel,
        &policy("pf", vec![chain("pre", nat(Hook::Prerouting), pre)], vec![]),
    );
    let one = TcpListener::bind("0.0.0.0:8080").unwrap();
    let range = [
        TcpListener::bind("0.0.0.0:8081").unwrap(),
        TcpListener::bind("0.0.0.0:8082").unwrap(),
    ];
    net.client.enter(|| {
        connect(SocketAddr::new(ip("10.1.0.1"), 80)).expect("redirected to 8080");
        connect(SocketAddr::new(ip("10.1.0.1"), 81)).expect("redirected into 8081-8082");
    });
    assert_eq!(accept(&one, 1).len(), 1);
    let into_range: usize = range.iter().map(|l| accept(l, 1).len()).sum();
    assert_eq!(into_range, 1);
}

/// The kernel picks a NAT address by a hash of the client's address (no
/// random seed), so connections from several client addresses spread over
/// a range: with 10.1.0.2-9 both addresses of each range are used.
#[test]
fn dnat_and_snat_translate_into_their_ranges() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let target = |first: &str, last: &str, p| NatTarget {
        address: ip(first),
        last_address: Some(ip(last)),
        ports: p,
        flags: NatFlags::default(),
    };
    let pre = vec![rule(
        vec![dport(Transport::Tcp, 8000, 8000)],
        Action::Dnat(target("10.2.0.2", "10.2.0.3", ports(9000, 9001))),
    )];
    let post = vec![
        rule(
            vec![oif("rs"), dport(Transport::Tcp, 9300, 9300)],
            Action::Snat(target("10.9.0.1", "10.9.0.2", ports(20000, 20009))),
        ),
        rule(
            vec![oif("rs"), dport(Transport::Tcp, 9301, 9301)],
            Action::Masquerade(ports(30000, 30001)),
        ),
    ];
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![
                chain("pre", nat(Hook::Prerouting), pre),
                chain("post", nat(Hook::Postrouting), post),
            ],
            vec![],
        ),
    );
    let listeners = net
        .server
        .enter(|| [9000, 9001, 9300, 9301].map(|p| TcpListener::bind(("0.0.0.0", p)).unwrap()));
    let clients: Vec<IpAddr> = (2..=9)
        .map(|n| IpAddr::V4(Ipv4Addr::new(10, 1, 0, n)))
        .collect();
    let streams: Vec<TcpStream> = net.client.enter(|| {
        let mut open = Vec::new();
        for to in [("10.1.0.1", 8000), ("10.2.0.2", 9300)] {
            for from in &clients {
                let to = SocketAddr::new(ip(to.0), to.1);
                open.push(
                    connect_from(*from, to).unwrap_or_else(|e| panic!("{from} -> {to}: {e}")),
                );
            }
        }
        // Two at once from one address and port range of two: both ports.
        for _ in 0..2 {
            open.push(connect(SocketAddr::new(ip("10.2.0.2"), 9301)).unwrap());
        }
        open
    });
    let got: Vec<Vec<(SocketAddr, SocketAddr)>> = listeners
        .iter()
        .map(|l| net.server.enter(|| accept(l, 16)))
        .collect();
    drop(streams);

    let dnat: Vec<SocketAddr> = got[0]
        .iter()
        .chain(&got[1])
        .map(|(local, _)| *local)
        .collect();
    assert_eq!(dnat.len(), clients.len(), "every client reached the server");
    let dnat_addrs: std::collections::BTreeSet<IpAddr> = dnat.iter().map(|a| a.ip()).collect();
    assert_eq!(
        dnat_addrs,
        [ip("10.2.0.2"), ip("10.2.0.3")].into(),
        "both addresses of the range: {dnat:?}"
    );

    let snat: Vec<SocketAddr> = got[2].iter().map(|(_, peer)| *peer).collect();
    assert_eq!(snat.len(), clients.len());
    let snat_addrs: std::collections::BTreeSet<IpAddr> = snat.iter().map(|a| a.ip()).collect();
    assert_eq!(
        snat_addrs,
        [ip("10.9.0.1"), ip("10.9.0.2")].into(),
        "{snat:?}"
    );
    assert!(
        snat.iter().all(|a| (20000..=20009).contains(&a.port())),
        "{snat:?}"
    );

    let masq: std::collections::BTreeSet<SocketAddr> =
        got[3].iter().map(|(_, peer)| *peer).collect();
    assert_eq!(
        masq,
        [
            SocketAddr::new(ip("10.2.0.1"), 30000),
            SocketAddr::new(ip("10.2.0.1"), 30001)
        ]
        .into(),
        "masquerade to the output address, both ports"
    );
}

/// The DSCP bits of the IPv4 TOS or IPv6 traffic class the server's
/// socket reads from the next datagram.
fn received_dscp(sock: &UdpSocket, v6: bool) -> Option<u8> {
    let (level, kind) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TOS)
    };
    let cmsgs = control_messages(sock.as_raw_fd(), 0)?;
    let (_, _, data) = cmsgs
        .into_iter()
        .find(|(l, t, _)| *l == level && *t == kind)?;
    Some(data[0] >> 2)
}

#[test]
fn dscp_is_set_in_forwarded_packets() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let net = net(1500);
    let forward = vec![
        with(
            vec![dscp(Family::V4, 46)],
            rule(vec![dport(Transport::Udp, 9400, 9400)], Action::Accept),
        ),
        with(
            vec![dscp(Family::V6, 10)],
            rule(
                vec![
                    addr(Dir::Destination, "fd02::2"),
                    dport(Transport::Udp, 9401, 9401),
                ],
                Action::Accept,
            ),
        ),
    ];
    apply(
        &mut kernel,
        &policy(
            "pf",
            vec![chain("fwd", filter(Hook::Forward, 0), forward)],
            vec![],
        ),
    );
    let (v4, v6) = net.server.enter(|| {
        let v4 = UdpSocket::bind("0.0.0.0:9400").unwrap();
        set_int(v4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_RECVTOS, 1);
        let v6 = UdpSocket::bind("[::]:9401").unwrap();
        set_int(v6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1);
        (v4, v6)
    });
    net.client.enter(|| {
        UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .send_to(b"x", "10.2.0.2:9400")
            .unwrap();
        UdpSocket::bind("[::]:0")
            .unwrap()
            .send_to(b"x", "[fd02::2]:9401")
            .unwrap();
    });
    assert_eq!(received_dscp(&v4, false), Some(46), "ef");
    assert_eq!(received_dscp(&v6, true), Some(10), "af11");
}
