//! The 0.2 matches against the real kernel (run as root).
//!
//! Each construct is applied, listed by nft exactly as the runtime's text,
//! read back with nothing to send, and repaired after a hand edit (the
//! round trip of `common`). Where a match decides over packets, real
//! packets cross it: the test thread's own fresh namespace is the
//! firewall, between a client and a server namespace it makes (named
//! `wwm-<pid>-<n>-<role>`) and always removes, also when a test fails.
//!
//! A named limit's object and a keyed limit's dynamic set are declared in
//! the policy's ruleset, as a policy declares them.

mod common;

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::{self, DesiredTable};

fn accept(matches: Vec<Match>) -> Rule {
    rule(matches, Action::Accept)
}

fn test(fields: Vec<Field>, against: Against, negate: bool) -> Match {
    Match::Test {
        fields,
        against,
        negate,
    }
}

fn one(field: Field, v: Value) -> Match {
    test(vec![field], Against::One(v), false)
}

fn set(fields: Vec<Field>, elements: Vec<Vec<Value>>, intervals: bool, negate: bool) -> Match {
    let key = key_of(&fields);
    let elements: Vec<Element> = elements.into_iter().map(Element).collect();
    // As validation leaves them: one-part intervals merged, the rest in
    // nft's order.
    let elements = if intervals && !key.is_concatenation() {
        let values: Vec<Value> = elements.into_iter().map(|e| e.0[0].clone()).collect();
        merge_intervals(key.0[0], &values)
            .into_iter()
            .map(|v| Element(vec![v]))
            .collect()
    } else {
        listing_order(&key, elements)
    };
    test(
        fields,
        Against::Set(InlineSet {
            elements,
            intervals,
        }),
        negate,
    )
}

fn n(v: u32) -> Value {
    Value::Number(v)
}

fn a(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn p(s: &str) -> Value {
    Value::Prefix(s.parse().unwrap())
}

fn l4(number: u8) -> Match {
    Match::L4Proto {
        proto: L4Proto::from_number(number),
        negate: false,
    }
}

const TCP_DPORT: Field = Field::Dport(Transport::Tcp);
const IP_SADDR: Field = Field::Saddr(Family::V4);
const IP_DADDR: Field = Field::Daddr(Family::V4);
const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

fn filter(hook: Hook) -> Option<BaseChain> {
    base(hook, ChainType::Filter, 0, ChainPolicy::Accept)
}

fn rate(amount: u64, bytes: bool, per: TimeUnit, burst: u32) -> Rate {
    Rate {
        amount,
        bytes,
        per,
        burst,
    }
}

/// One policy with every match the runtime encodes, each in a chain of a
/// hook it may run on.
fn every_match() -> Vec<PolicyRules> {
    let mut input: Vec<Rule> = [1, 2, 6, 17, 47, 50, 51, 58, 132, 136, 253]
        .into_iter()
        .map(|p| accept(vec![l4(p)]))
        .collect();
    input.extend([
        accept(vec![Match::Iifname {
            name: "eth*".into(),
            negate: false,
        }]),
        accept(vec![Match::Iifname {
            name: "br-*".into(),
            negate: true,
        }]),
        accept(vec![Match::Nfproto {
            family: Family::V6,
            negate: false,
        }]),
        accept(vec![Match::Nfproto {
            family: Family::V4,
            negate: true,
        }]),
        accept(vec![
            Match::Nfproto {
                family: Family::V4,
                negate: false,
            },
            one(TCP_DPORT, n(22)),
        ]),
        accept(vec![one(TCP_DPORT, Value::Range(1024, 65535))]),
        accept(vec![one(Field::Sport(Transport::Sctp), n(5060))]),
        accept(vec![one(
            IP_SADDR,
            Value::AddrRange("10.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()),
        )]),
        accept(vec![test(
            vec![Field::Saddr(Family::V6)],
            Against::One(p("fd00::/8")),
            true,
        )]),
        accept(vec![one(Field::Mark, n(5))]),
        accept(vec![one(Field::CtMark, n(0x10))]),
        accept(vec![one(Field::Dscp(Family::V4), n(46))]),
        accept(vec![one(Field::Dscp(Family::V6), n(5))]),
        accept(vec![one(Field::Dscp(Family::V4), Value::Range(0x10, 0x18))]),
        accept(vec![one(Field::EtherSaddr, Value::Mac(MAC))]),
        accept(vec![one(Field::IcmpType, n(8))]),
        accept(vec![one(Field::IcmpCode, n(7))]),
        accept(vec![one(Field::Icmpv6Type, n(200))]),
        accept(vec![one(Field::Icmpv6Code, n(1))]),
        accept(vec![one(Field::IcmpType, Value::Range(0, 3))]),
        // Inline sets.
        accept(vec![set(
            vec![TCP_DPORT],
            vec![vec![n(80)], vec![n(22)]],
            false,
            true,
        )]),
        accept(vec![set(
            vec![IP_SADDR],
            vec![
                vec![p("10.0.0.0/9")],
                vec![a("192.168.1.1")],
                vec![p("10.128.0.0/9")],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![Field::Saddr(Family::V6)],
            vec![vec![a("::2")], vec![a("::1")], vec![p("fe80::/10")]],
            true,
            false,
        )]),
        accept(vec![set(
            vec![TCP_DPORT],
            vec![
                vec![Value::Range(1, 10)],
                vec![n(20)],
                vec![Value::Range(5, 15)],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![a("10.0.0.3"), n(80)],
                vec![a("10.0.0.2"), n(443)],
                vec![a("10.0.0.2"), n(22)],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![IP_DADDR, TCP_DPORT],
            vec![
                vec![p("10.0.0.0/8"), Value::Range(1, 1024)],
                vec![p("9.0.0.0/8"), n(2000)],
                vec![a("1.2.3.4"), n(5)],
            ],
            true,
            false,
        )]),
        accept(vec![set(
            vec![Field::Icmpv6Type, Field::Icmpv6Code],
            vec![vec![n(128), n(0)], vec![n(1), n(0)], vec![n(1), n(4)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::IcmpType],
            vec![vec![n(8)], vec![n(0)], vec![n(3)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Iifname],
            vec![
                vec![Value::Name("b".into())],
                vec![Value::Name("ab".into())],
                vec![Value::Name("a".into())],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Mark],
            vec![vec![n(256)], vec![n(1)], vec![n(2)]],
            false,
            true,
        )]),
        accept(vec![set(
            vec![Field::Dscp(Family::V6)],
            vec![vec![n(8)], vec![n(5)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::EtherSaddr],
            vec![vec![Value::Mac(MAC)], vec![Value::Mac([2, 0, 0, 0, 0, 3])]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::EtherSaddr, IP_SADDR],
            vec![vec![Value::Mac(MAC), a("10.0.0.1")]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::L4proto],
            vec![vec![n(17)], vec![n(6)], vec![n(1)]],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Iifname, IP_SADDR],
            vec![
                vec![Value::Name("b".into()), a("1.1.1.1")],
                vec![Value::Name("ab".into()), a("1.1.1.1")],
            ],
            false,
            false,
        )]),
        accept(vec![set(
            vec![Field::Mark, Field::CtMark],
            vec![vec![n(1), n(2)], vec![n(3), n(1)]],
            false,
            false,
        )]),
        // Named sets.
        accept(vec![Match::InSet {
            fields: vec![IP_SADDR],
            set: "friends".into(),
            negate: true,
        }]),
        accept(vec![Match::InSet {
            fields: vec![TCP_DPORT],
            set: "services".into(),
            negate: false,
        }]),
        accept(vec![Match::InSet {
            fields: vec![IP_DADDR, TCP_DPORT],
            set: "pairs".into(),
            negate: false,
        }]),
        rule(vec![keyed_limit(3)], Action::Drop),
        // Masks.
        accept(vec![Match::Masked {
            field: Field::Daddr(Family::V6),
            mask: a("::ffff:ffff:ffff:ffff"),
            value: a("::1234"),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: Field::Mark,
            mask: n(0xff),
            value: n(1),
            negate: true,
        }]),
        accept(vec![Match::Masked {
            field: Field::CtMark,
            mask: n(0xffff_0000),
            value: n(0x1_0000),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: IP_SADDR,
            mask: a("255.255.0.0"),
            value: a("10.1.0.0"),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: TCP_DPORT,
            mask: n(0xff00),
            value: n(0x100),
            negate: false,
        }]),
        accept(vec![Match::Masked {
            field: TCP_DPORT,
            mask: n(0xffff),
            value: n(0x100),
            negate: true,
        }]),
    ]);
    // TCP flags, every shape nft lists.
    for (flags, mask, negate) in [
        (0x02, 0x17, false),
        (0x02, 0x17, true),
        (0x02, 0x02, false),
        (0x12, 0x12, true),
        (0x00, 0x12, false),
        (0x00, 0x12, true),
        (0x10, 0x12, false),
        (0x02, 0xff, false),
        (0x12, 0xff, true),
        (0x00, 0xff, false),
    ] {
        input.push(accept(vec![Match::TcpFlags {
            flags,
            mask,
            negate,
        }]));
    }
    input.extend([
        accept(vec![Match::CtStatus {
            bits: 0x20,
            negate: false,
        }]),
        accept(vec![Match::CtStatus {
            bits: 0x231,
            negate: true,
        }]),
        accept(vec![Match::Day(vec![0])]),
        accept(vec![Match::Day(vec![1, 5, 6])]),
        accept(vec![Match::Limit {
            rate: rate(10, false, TimeUnit::Second, 5),
            over: false,
        }]),
        rule(
            vec![Match::Limit {
                rate: rate(3, false, TimeUnit::Minute, 20),
                over: true,
            }],
            Action::Drop,
        ),
        rule(
            vec![Match::Limit {
                rate: rate(102_400, true, TimeUnit::Second, 1000),
                over: true,
            }],
            Action::Drop,
        ),
        accept(vec![Match::Limit {
            rate: rate(1_048_576, true, TimeUnit::Second, 0),
            over: false,
        }]),
    ]);
    let forward = vec![
        accept(vec![Match::Oifname {
            name: "wg*".into(),
            negate: false,
        }]),
        accept(vec![Match::Fib {
            check: FibCheck::ReversePathMissing,
            negate: false,
        }]),
    ];
    let prerouting = vec![
        rule(
            vec![Match::Fib {
                check: FibCheck::ReversePathMissing,
                negate: false,
            }],
            Action::Drop,
        ),
        accept(vec![Match::Fib {
            check: FibCheck::ReversePathMissingMark,
            negate: true,
        }]),
        accept(vec![Match::Fib {
            check: FibCheck::DaddrLocal,
            negate: false,
        }]),
    ];
    let output = vec![accept(vec![Match::Fib {
        check: FibCheck::DaddrLocal,
        negate: true,
    }])];
    policy(
        "pm",
        vec![
            chain("input", filter(Hook::Input), input),
            chain("forward", filter(Hook::Forward), forward),
            chain("prerouting", filter(Hook::Prerouting), prerouting),
            chain("output", filter(Hook::Output), output),
        ],
        vec![
            NamedSet {
                name: "friends".into(),
                elements: SetElements::ipv4(["192.168.0.2".parse().unwrap()]),
            },
            NamedSet {
                name: "services".into(),
                elements: SetElements::ports([53, 123]),
            },
            NamedSet {
                name: "pairs".into(),
                elements: SetElements::new(
                    SetKind::plain(key_of(&[IP_DADDR, TCP_DPORT])),
                    vec![SetElement::key(Element(vec![a("10.0.0.2"), n(80)]))],
                ),
            },
            guard(),
        ],
    )
}

/// A dynamic set of source addresses, for a keyed limit.
fn guard() -> NamedSet {
    NamedSet {
        name: "guard".into(),
        elements: SetElements::new(
            SetKind {
                timeout: Some(60),
                dynamic: true,
                size: Some(1024),
                ..SetKind::plain(key_of(&[IP_SADDR]))
            },
            Vec::new(),
        ),
    }
}

/// At most `per_minute` new connections a minute from each source.
fn keyed_limit(per_minute: u64) -> Match {
    Match::KeyedLimit {
        fields: vec![IP_SADDR],
        set: "guard".into(),
        rate: rate(per_minute, false, TimeUnit::Minute, per_minute as u32),
        over: true,
    }
}

#[test]
fn every_match_lists_as_its_text_reads_back_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, &every_match());
}

/// Time rules list in nft's local zone (its process's, which is this
/// test's): these are built in UTC, for a machine in UTC.
#[test]
fn time_matches_list_as_their_text() {
    if (wasmwall::validate::LocalTime::system().offset_now)() != 0 {
        eprintln!(
            "skipped: time_matches_list_as_their_text builds its rules in UTC; the local zone is not"
        );
        return;
    }
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let hour = |from: u32, to: u32, negate| {
        accept(vec![Match::Hour(HourRange {
            utc: (from, to),
            local: (from, to),
            negate,
        })])
    };
    let jan1: i64 = 1_767_225_600;
    let dec31 = jan1 + 364 * 86_400 + 86_399;
    let rules = vec![
        hour(7 * 3600, 21 * 3600, true),
        hour(36_030, 39_600, false),
        accept(vec![Match::Date(DateRange {
            utc_ns: (jan1 as u64 * 1_000_000_000, dec31 as u64 * 1_000_000_000),
            local: (jan1, dec31),
        })]),
    ];
    round_trip(
        &mut kernel,
        &policy(
            "pm",
            vec![chain("input", filter(Hook::Input), rules)],
            vec![],
        ),
    );
}

/// A rule naming a limit object the policy declares: the round trip.
#[test]
fn a_named_limit_lists_as_its_text_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut policies = policy(
        "pm",
        vec![chain(
            "input",
            filter(Hook::Input),
            vec![rule(
                vec![one(TCP_DPORT, n(22)), Match::LimitNamed("ssh".into())],
                Action::Drop,
            )],
        )],
        vec![],
    );
    policies[0].rules.objects.push(NamedObject {
        name: "ssh".into(),
        object: Object::Limit {
            rate: Rate {
                amount: 3,
                bytes: false,
                per: TimeUnit::Minute,
                burst: Rate::DEFAULT_PACKET_BURST,
            },
            over: true,
        },
    });
    round_trip(&mut kernel, &policies);
}

// ---------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(2);

static NEXT_NS: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace the test made, with a process-unique name;
/// deleted when dropped, also while a failed test unwinds.
struct Ns {
    name: String,
}

impl Ns {
    fn new(role: &str) -> Ns {
        let name = format!(
            "wwm-{}-{}-{role}",
            std::process::id(),
            NEXT_NS.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }

    /// `f` on a thread inside the namespace.
    fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|s| {
            s.spawn(move || {
                let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: a namespace's descriptor; the thread is ours.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // Must not panic: it runs while a failed test unwinds too.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// A command in the calling thread's namespace; its output, or a panic
/// naming it and what it printed.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// client (c0: 10.1.0.2-9/24) -- fc [this thread's namespace, the
/// firewall, forwarding] fs -- server (s0: 10.2.0.2/24).
struct Lab {
    client: Ns,
    server: Ns,
}

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);

fn lab() -> Lab {
    let lab = Lab {
        client: Ns::new("client"),
        server: Ns::new("server"),
    };
    for (here, there, ns, addr) in [
        ("fc", "c0", &lab.client, "10.1.0.1/24"),
        ("fs", "s0", &lab.server, "10.2.0.1/24"),
    ] {
        run(&[
            "ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", &ns.name,
        ]);
        run(&["ip", "addr", "add", addr, "dev", here]);
        run(&["ip", "link", "set", here, "up"]);
        ns.run(&["ip", "link", "set", there, "up"]);
    }
    for n in 2..=9 {
        lab.client
            .run(&["ip", "addr", "add", &format!("10.1.0.{n}/24"), "dev", "c0"]);
    }
    lab.server
        .run(&["ip", "addr", "add", "10.2.0.2/24", "dev", "s0"]);
    lab.client
        .run(&["ip", "route", "add", "default", "via", "10.1.0.1"]);
    lab.server
        .run(&["ip", "route", "add", "default", "via", "10.2.0.1"]);
    run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab
}

fn apply(kernel: &mut Netlink, policies: &[PolicyRules]) {
    let desired = DesiredTable::from_policies(policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap_or_else(|e| panic!("the kernel refused the table: {e}"));
}

/// A policy of one forward chain.
fn forwarding(rules: Vec<Rule>) -> Vec<PolicyRules> {
    policy(
        "pm",
        vec![chain("forward", filter(Hook::Forward), rules)],
        vec![],
    )
}

fn counted(matches: Vec<Match>, action: Action) -> Rule {
    Rule {
        statements: vec![Statement::Counter],
        ..rule(matches, action)
    }
}

/// The packets each counter of the forward chain counted, in rule order.
fn counts() -> Vec<u64> {
    nft(&["list", "chain", "inet", TABLE, "pm/forward"])
        .lines()
        .filter_map(|l| l.split_once("counter packets "))
        .map(|(_, rest)| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The payloads that reach a UDP socket bound to `at` in the server
/// within `WAIT`, while `send` runs in the client.
fn received_by_server(lab: &Lab, at: SocketAddr, send: impl FnOnce() + Send) -> Vec<String> {
    let sock = lab.server.within(|| UdpSocket::bind(at).unwrap());
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    lab.client.within(send);
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got.sort();
    got
}

fn send_udp(from: Ipv4Addr, to: SocketAddr, payload: &str) {
    let sock = UdpSocket::bind(SocketAddr::new(from.into(), 0)).unwrap();
    sock.send_to(payload.as_bytes(), to).unwrap();
}

#[test]
fn a_syn_burst_above_a_limit_is_cut_to_the_limit() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    let syn = Match::TcpFlags {
        flags: 0x02,
        mask: 0x17,
        negate: false,
    };
    apply(
        &mut kernel,
        &forwarding(vec![
            counted(
                vec![
                    one(TCP_DPORT, n(9100)),
                    syn.clone(),
                    Match::Limit {
                        rate: rate(10, false, TimeUnit::Second, 5),
                        over: true,
                    },
                ],
                Action::Drop,
            ),
            counted(vec![one(TCP_DPORT, n(9100)), syn], Action::Accept),
        ]),
    );
    const SYNS: u64 = 60;
    let to = SocketAddr::new(SERVER.into(), 9100);
    // Each connection sends one SYN: it is closed before it would send
    // another.
    let took = lab.client.within(|| {
        let start = Instant::now();
        for _ in 0..SYNS {
            drop(syn_to(to));
        }
        start.elapsed()
    });
    thread::sleep(Duration::from_millis(200));
    let counted = counts();
    let (dropped, passed) = (counted[0], counted[1]);
    assert_eq!(dropped + passed, SYNS, "every SYN crossed the firewall");
    // The burst of 5, and 10 a second over the time the SYNs took.
    let most = 5 + (10.0 * took.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        (5..=most).contains(&passed),
        "{passed} of {SYNS} SYNs passed in {took:?}; the limit lets 5 to {most} through"
    );
}

/// A TCP connection attempt to `to` that returns at once, its SYN sent.
fn syn_to(to: SocketAddr) -> OwnedFd {
    let SocketAddr::V4(v4) = to else {
        panic!("an IPv4 address")
    };
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: a new descriptor this function owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid socket and a sockaddr_in of its length.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    let err = io::Error::last_os_error();
    assert!(
        rc == 0 || err.raw_os_error() == Some(libc::EINPROGRESS),
        "connect: {err}"
    );
    fd
}

/// Sends an ICMP message of `kind` (code 0) with `body` to `to` from a raw
/// socket, and waits for an answer of `answer` from it.
fn icmp_answered(to: Ipv4Addr, kind: u8, body: &[u8], answer: u8) -> bool {
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    assert!(fd >= 0, "raw socket: {}", io::Error::last_os_error());
    // SAFETY: a new descriptor this function owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut message = vec![kind, 0, 0, 0, 0x12, 0x34, 0, 1];
    message.extend_from_slice(body);
    let sum = !internet_checksum(&message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(to).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid socket, a buffer and a sockaddr_in of their lengths.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    assert_eq!(
        sent,
        message.len() as isize,
        "sendto: {}",
        io::Error::last_os_error()
    );
    let mut file = std::fs::File::from(fd);
    let deadline = Instant::now() + WAIT;
    // SAFETY: fcntl on a descriptor the file owns.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    while Instant::now() < deadline {
        let mut buf = [0u8; 1500];
        let Ok(n) = file.read(&mut buf) else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let from = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        if n > ihl && from == to && buf[ihl] == answer {
            return true;
        }
    }
    false
}

/// The ones' complement sum of 16-bit words (RFC 1071), before the final
/// complement.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_TIMESTAMP: u8 = 13;
const ICMP_TIMESTAMP_REPLY: u8 = 14;

#[test]
fn ping_passes_and_an_icmp_timestamp_request_does_not() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    let timestamp = || {
        lab.client
            .within(|| icmp_answered(SERVER, ICMP_TIMESTAMP, &[0; 12], ICMP_TIMESTAMP_REPLY))
    };
    let ping = || {
        lab.client
            .within(|| icmp_answered(SERVER, ICMP_ECHO_REQUEST, b"ping", ICMP_ECHO_REPLY))
    };
    assert!(
        timestamp(),
        "without rules, the server answers a timestamp request"
    );
    let types: Vec<Vec<Value>> = [8, 0, 3, 11].into_iter().map(|t| vec![n(t)]).collect();
    apply(
        &mut kernel,
        &forwarding(vec![
            accept(vec![set(vec![Field::IcmpType], types, false, false)]),
            counted(vec![l4(libc::IPPROTO_ICMP as u8)], Action::Drop),
        ]),
    );
    assert!(ping(), "an echo request and its reply pass");
    assert!(!timestamp(), "a timestamp request is dropped");
    assert_eq!(counts(), [1], "the drop rule counted the timestamp request");
}

#[test]
fn an_address_inside_a_blocked_prefix_is_dropped_and_one_outside_passes() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    apply(
        &mut kernel,
        &forwarding(vec![counted(
            vec![set(
                vec![IP_SADDR],
                vec![vec![p("10.1.0.4/30")], vec![p("192.0.2.0/24")]],
                true,
                false,
            )],
            Action::Drop,
        )]),
    );
    let to = SocketAddr::new(SERVER.into(), 9200);
    let got = received_by_server(&lab, to, || {
        for (from, payload) in [(2, "outside .2"), (5, "inside .5"), (8, "outside .8")] {
            send_udp(Ipv4Addr::new(10, 1, 0, from), to, payload);
        }
    });
    assert_eq!(got, ["outside .2", "outside .8"]);
    assert_eq!(counts(), [1]);
}

/// The local time of day now plus `seconds`, "HH:MM:SS", in the zone the
/// runtime and nft read (the process's).
fn local_time_in(seconds: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t: libc::time_t = now + seconds;
    // SAFETY: an all-zero tm is a valid value for localtime_r to fill.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types.
    assert!(!unsafe { libc::localtime_r(&t, &mut tm) }.is_null());
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[test]
fn a_time_rule_matches_now_and_not_at_another_time() {
    use wasmwall::bindings::wit;
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    let hour_rule = |from: i64, to: i64, port: u16| wit::Rule {
        matches: vec![
            wit::MatchExpr {
                matcher: wit::Matcher::Hour(wit::TimeOfDay {
                    from: local_time_in(from),
                    to: local_time_in(to),
                }),
                negate: false,
            },
            wit::MatchExpr {
                matcher: wit::Matcher::Dport(wit::Ports {
                    protocol: wit::Transport::Udp,
                    first: port,
                    last: port,
                }),
                negate: false,
            },
        ],
        statements: vec![wit::Statement::Counter],
        action: wit::Action::Drop,
        comment: None,
    };
    let answer = wit::Ruleset {
        chains: vec![wit::Chain {
            name: "forward".into(),
            base: Some(wit::BaseChain {
                hook: wit::Hook::Forward,
                type_: wit::ChainType::Filter,
                priority: wit::Priority::Number(0),
                policy: wit::ChainPolicy::Accept,
            }),
            rules: vec![
                // Now, give or take two minutes; and three hours from now.
                hour_rule(-120, 120, 9201),
                hour_rule(3 * 3600, 4 * 3600, 9202),
            ],
        }],
        ..wit::Ruleset::empty()
    };
    let options = wasmwall::validate::Options {
        local_time: wasmwall::validate::LocalTime::system(),
        ..Default::default()
    };
    let features = wit::KernelFeatures {
        flowtables: false,
        hardware_offload: Vec::new(),
        ct_helpers: Vec::new(),
    };
    let rules = wasmwall::validate::validate(&answer, &options, &features)
        .unwrap_or_else(|e| panic!("{e}"));
    apply(
        &mut kernel,
        &[PolicyRules {
            policy: "pm".into(),
            rules,
        }],
    );
    let now = SocketAddr::new(SERVER.into(), 9201);
    let later = SocketAddr::new(SERVER.into(), 9202);
    let got_now = received_by_server(&lab, now, || {
        send_udp(Ipv4Addr::new(10, 1, 0, 2), now, "now")
    });
    let got_later = received_by_server(&lab, later, || {
        send_udp(Ipv4Addr::new(10, 1, 0, 2), later, "later")
    });
    assert!(
        got_now.is_empty(),
        "the rule of now dropped the datagram: {got_now:?}"
    );
    assert_eq!(
        got_later,
        ["later"],
        "the rule of another time let it through"
    );
    assert_eq!(counts(), [1, 0]);
}

#[test]
fn ct_status_dnat_matches_a_translated_flow_only() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    let translated = SocketAddr::new(Ipv4Addr::new(10, 2, 0, 99).into(), 9300);
    let direct = SocketAddr::new(SERVER.into(), 9301);
    let policies = policy(
        "pm",
        vec![
            chain(
                "prerouting",
                base(Hook::Prerouting, ChainType::Nat, -100, ChainPolicy::Accept),
                vec![rule(
                    vec![Match::Addr {
                        dir: Dir::Destination,
                        net: "10.2.0.99/32".parse().unwrap(),
                        negate: false,
                    }],
                    Action::Dnat(NatTarget::to(SERVER.into(), Some(9301))),
                )],
            ),
            chain(
                "forward",
                filter(Hook::Forward),
                vec![
                    counted(
                        vec![Match::CtStatus {
                            bits: 0x20,
                            negate: false,
                        }],
                        Action::Accept,
                    ),
                    counted(vec![], Action::Accept),
                ],
            ),
        ],
        vec![],
    );
    apply(&mut kernel, &policies);
    let got = received_by_server(&lab, direct, || {
        send_udp(Ipv4Addr::new(10, 1, 0, 2), translated, "translated");
    });
    assert_eq!(got, ["translated"], "the DNAT reached the server");
    assert_eq!(
        counts(),
        [1, 0],
        "ct status dnat matched the translated datagram"
    );
    let got = received_by_server(&lab, direct, || {
        send_udp(Ipv4Addr::new(10, 1, 0, 3), direct, "direct");
    });
    assert_eq!(got, ["direct"]);
    assert_eq!(counts(), [1, 1], "and not the direct one");
}

#[test]
fn a_keyed_limit_stops_the_fourth_connection_a_minute_from_one_source_only() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let lab = lab();
    let new = Match::CtState(CtStates(CtStates::NEW));
    let udp = one(Field::Dport(Transport::Udp), n(9400));
    apply(
        &mut kernel,
        &policy(
            "pm",
            vec![chain(
                "forward",
                filter(Hook::Forward),
                vec![counted(vec![new, udp, keyed_limit(3)], Action::Drop)],
            )],
            vec![guard()],
        ),
    );
    let to = SocketAddr::new(SERVER.into(), 9400);
    // Each datagram from a socket of its own: a new connection each.
    let got = received_by_server(&lab, to, || {
        for i in 1..=4 {
            send_udp(Ipv4Addr::new(10, 1, 0, 2), to, &format!(".2 #{i}"));
        }
        send_udp(Ipv4Addr::new(10, 1, 0, 3), to, ".3 #1");
    });
    assert_eq!(got, [".2 #1", ".2 #2", ".2 #3", ".3 #1"]);
    assert_eq!(counts(), [1], "the fourth from .2 was over its limit");
    let listed = nft(&["list", "set", "inet", TABLE, "pm/guard"]);
    assert!(
        listed.contains("10.1.0.2") && listed.contains("10.1.0.3"),
        "a limit for each source:\n{listed}"
    );
}
