//! Counters, limits and conntrack helper objects, route chains and the
//! kernel feature probe against the real kernel (run as root; each test in
//! a network namespace of its own thread, gone with the thread).
//!
//! Flowtables are not here: this kernel has none (CONFIG_NF_FLOW_TABLE is
//! unset, and the kernel refuses one with ENOENT), so their messages are
//! pinned to nft's bytes in `kernel/encode/objects/tests.rs` and their
//! planning tested on the simulated kernel instead.

mod common;

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Monitor, Netlink, active_features, feature_names};
use wasmwall::plan::{self, DesiredTable};
use wasmwall::world::CT_HELPERS;

fn helper(helper: &str, protocol: Transport) -> Object {
    Object::CtHelper(CtHelper {
        helper: helper.into(),
        protocol,
    })
}

fn named(objects: Vec<(&str, Object)>) -> Vec<NamedObject> {
    objects
        .into_iter()
        .map(|(name, object)| NamedObject {
            name: name.into(),
            object,
        })
        .collect()
}

/// Policy "ob": counters, limits and helpers, a route chain on output,
/// and rules counting in one counter and attaching one helper.
fn objects_policy(sip_protocol: Transport) -> Vec<PolicyRules> {
    let mut p = policy(
        "ob",
        vec![
            chain(
                "out",
                base(Hook::Output, ChainType::Route, -150, ChainPolicy::Accept),
                vec![counted(rule(
                    vec![dport(Transport::Tcp, 22, 22)],
                    Action::Accept,
                ))],
            ),
            chain(
                "in",
                base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Accept),
                vec![
                    Rule {
                        statements: vec![Statement::CounterNamed("dns".into())],
                        ..rule(vec![dport(Transport::Udp, 53, 53)], Action::Accept)
                    },
                    rule(vec![], Action::Accept),
                ],
            ),
            chain(
                "pre",
                base(Hook::Prerouting, ChainType::Filter, 0, ChainPolicy::Accept),
                vec![
                    Rule {
                        statements: vec![Statement::CtHelper("ftp-ctl".into())],
                        ..rule(vec![dport(Transport::Tcp, 21, 21)], Action::Accept)
                    },
                    Rule {
                        statements: vec![Statement::CtHelper("sip".into())],
                        ..rule(vec![dport(Transport::Udp, 5060, 5060)], Action::Accept)
                    },
                ],
            ),
        ],
        vec![],
    );
    let rate = |amount, bytes, per, burst| Rate {
        amount,
        bytes,
        per,
        burst,
    };
    p[0].rules.objects = named(vec![
        ("web", Object::Counter),
        ("ftp-ctl", helper("ftp", Transport::Tcp)),
        ("tftp", helper("tftp", Transport::Udp)),
        (
            "ssh",
            Object::Limit {
                rate: rate(3, false, TimeUnit::Minute, 5),
                over: true,
            },
        ),
        ("dns", Object::Counter),
        (
            "bulk",
            Object::Limit {
                rate: rate(100 << 10, true, TimeUnit::Second, 0),
                over: false,
            },
        ),
        (
            "burst",
            Object::Limit {
                rate: rate(10, false, TimeUnit::Hour, 20),
                over: false,
            },
        ),
        ("sip", helper("sip", sip_protocol)),
    ]);
    p
}

#[test]
fn objects_and_a_route_chain_list_as_their_text_and_read_back() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let policies = objects_policy(Transport::Udp);
    round_trip(&mut kernel, &policies);
    // The route chain is the runtime's kind, not a foreign one to replace.
    let text = plan::table_text(TABLE, &policies);
    assert!(
        text.contains("\t\ttype route hook output priority mangle; policy accept;\n"),
        "{text}"
    );
    assert!(text.contains(
        "\tct helper ob/ftp-ctl {\n\t\ttype \"ftp\" protocol tcp\n\t\tl3proto inet\n\t}\n"
    ));
}

/// The listing's blocks (objects, chains), sorted: a re-added object is
/// listed last by the kernel, wherever the text has it.
fn blocks(listing: &str) -> Vec<String> {
    let inner = listing
        .strip_prefix("table inet wasmwall {\n")
        .and_then(|t| t.strip_suffix("}\n"))
        .unwrap_or_else(|| panic!("not one table:\n{listing}"));
    let mut out: Vec<String> = inner
        .split("\n\n")
        .map(|b| b.trim_end().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn objects_deleted_or_redefined_by_hand_are_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let policies = objects_policy(Transport::Udp);
    let desired = DesiredTable::from_policies(&policies);
    let text = plan::table_text(TABLE, &policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap();
    let repair = |kernel: &mut Netlink, what: &str| {
        let seen = kernel.observe(TABLE).unwrap();
        let tx = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
        assert!(!tx.is_empty(), "{what}, and nothing to repair");
        kernel
            .apply(&tx, Some(seen.generation))
            .unwrap_or_else(|e| panic!("{what}: {e}\n{tx}"));
        assert_eq!(blocks(&listed_as_text()), blocks(&text), "{what}");
        let seen = kernel.observe(TABLE).unwrap();
        let again = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
        assert!(again.is_empty(), "{what}: then {again}");
        tx
    };
    nft(&["delete", "counter", "inet", TABLE, "ob/web"]);
    let tx = repair(&mut kernel, "a counter deleted");
    assert_eq!(tx.to_string(), "add counter inet wasmwall ob/web\n");

    let redefine = |name: &str, definition: &str| {
        nft(&["delete", "ct", "helper", "inet", TABLE, name]);
        nft(&["add", "ct", "helper", "inet", TABLE, name, definition]);
    };
    redefine("ob/tftp", "{ type \"tftp\" protocol udp; l3proto ip; }");
    let tx = repair(&mut kernel, "a helper redefined");
    assert_eq!(
        tx.to_string(),
        "delete ct helper inet wasmwall ob/tftp\n\
         add ct helper inet wasmwall ob/tftp { type \"tftp\" protocol udp; l3proto inet; }\n"
    );

    // A helper a rule uses can be redefined by hand only without the rule.
    let listing = nft(&["-a", "list", "chain", "inet", TABLE, "ob/pre"]);
    let handle = listing
        .lines()
        .find(|l| l.contains("udp dport 5060"))
        .and_then(|l| l.rsplit_once("# handle "))
        .map(|(_, h)| h.trim().to_string())
        .unwrap_or_else(|| panic!("{listing}"));
    nft(&["delete", "rule", "inet", TABLE, "ob/pre", "handle", &handle]);
    redefine("ob/sip", "{ type \"sip\" protocol tcp; l3proto inet; }");
    let tx = repair(&mut kernel, "a used helper redefined");
    assert_eq!(tx.summary(), "1 object delete, 1 object add, 1 rule add");

    // Objects made by hand in the runtime's table go.
    nft(&["add", "quota", "inet", TABLE, "by-hand", "{ 10 mbytes; }"]);
    nft(&["add", "counter", "inet", TABLE, "ob/extra"]);
    let tx = repair(&mut kernel, "objects added by hand");
    assert_eq!(
        tx.to_string(),
        "delete quota inet wasmwall by-hand\ndelete counter inet wasmwall ob/extra\n"
    );
}

/// A changed definition is one batch: deleted and added again, with the
/// rule that uses it.
#[test]
fn a_changed_helper_is_made_again_in_one_batch_and_the_table_goes_whole() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let before = DesiredTable::from_policies(&objects_policy(Transport::Udp));
    kernel
        .apply(&plan::replace_table(TABLE, &before), None)
        .unwrap();
    let after_policies = objects_policy(Transport::Tcp);
    let after = DesiredTable::from_policies(&after_policies);
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, &after, seen.table.as_ref()).unwrap();
    // The kernel refuses to delete a helper a rule uses: the rule goes
    // first and comes back after it.
    assert_eq!(
        tx.summary(),
        "1 rule delete, 1 object delete, 1 object add, 1 rule add"
    );
    kernel.apply(&tx, Some(seen.generation)).unwrap();
    let listed = listed_as_text();
    assert!(
        listed.contains("\t\ttype \"sip\" protocol tcp\n"),
        "{listed}"
    );
    assert_eq!(
        blocks(&listed),
        blocks(&plan::table_text(TABLE, &after_policies))
    );
    let seen = kernel.observe(TABLE).unwrap();
    assert!(
        plan::plan(TABLE, &after, seen.table.as_ref())
            .unwrap()
            .is_empty()
    );

    let remove = plan::remove_table(TABLE, seen.table.as_ref()).unwrap();
    kernel.apply(&remove, Some(seen.generation)).unwrap();
    assert_eq!(ruleset(), "", "the table's objects went with it");
}

/// Whether nft's own check (`nft -c`) takes `text`: the kernel checks the
/// batch and aborts it.
fn nft_checks(text: &str) -> bool {
    let path = std::env::temp_dir().join(format!(
        "wasmwall-objects-{}-{:?}.nft",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, text).unwrap();
    let ok = std::process::Command::new("nft")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("run nft")
        .status
        .success();
    let _ = std::fs::remove_file(&path);
    ok
}

/// The probe finds what `nft -c` finds, one helper at a time, and leaves
/// no trace: no table, no notification, the same generation.
#[test]
fn the_feature_probe_finds_what_nft_finds_and_changes_nothing() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut monitor = Monitor::new().unwrap();
    let generation = kernel.generation().unwrap();
    let features = kernel.features(&["lo".to_string()]).unwrap();
    assert_eq!(kernel.generation().unwrap(), generation);
    assert_eq!(monitor.drain().unwrap(), 0, "no notification");
    assert_eq!(ruleset(), "");

    let flowtable = "table inet p {\n flowtable f {\n hook ingress priority 0\n }\n}\n";
    assert_eq!(features.flowtables, nft_checks(flowtable));
    let mut found = Vec::new();
    for (name, protocols) in CT_HELPERS {
        for protocol in protocols {
            let text = format!(
                "table inet p {{\n ct helper h {{\n type \"{name}\" protocol {}\n l3proto inet\n }}\n}}\n",
                protocol.as_str()
            );
            if nft_checks(&text) && !found.contains(&name.to_string()) {
                found.push(name.to_string());
            }
        }
    }
    assert_eq!(features.ct_helpers, found);
    assert!(
        features.ct_helpers.contains(&"ftp".to_string()),
        "this kernel has the ftp helper built in: {features:?}"
    );
    // The loopback device offloads nothing to hardware.
    assert_eq!(features.hardware_offload, Vec::<String>::new());
}

/// The ethtool reading decodes the kernel's feature bits: the loopback
/// device has `loopback` on, a veth does not; neither offloads flows.
#[test]
fn interface_features_are_read_by_name() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let names = feature_names(&fd).unwrap();
    let bit = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no feature {name} in {names:?}"))
    };
    let (loopback, hw_tc) = (bit("loopback"), bit("hw-tc-offload"));
    let lo = active_features(&fd, "lo", names.len()).unwrap();
    let v0 = active_features(&fd, "v0", names.len()).unwrap();
    assert!(lo[loopback] && !v0[loopback]);
    assert!(!lo[hw_tc] && !v0[hw_tc]);
    assert!(active_features(&fd, "absent0", names.len()).is_err());
    let all = ["lo".to_string(), "v0".to_string(), "absent0".to_string()];
    assert_eq!(kernel.hardware_offload(&all).unwrap(), Vec::<String>::new());
}

// ---------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------

static NEXT_PEER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A named network namespace beside the test's, deleted on drop (also
/// while a failed test unwinds).
struct Peer(String);

impl Peer {
    fn new(role: &str) -> Peer {
        let n = NEXT_PEER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let peer = Peer(format!("wwo-{}-{n}-{role}", std::process::id()));
        run(&["ip", "netns", "add", &peer.0]);
        peer.run(&["ip", "link", "set", "lo", "up"]);
        peer
    }

    fn run(&self, args: &[&str]) {
        run(&[&["ip", "netns", "exec", &self.0], args].concat());
    }

    /// Runs `f` on a thread that entered the namespace: a socket made
    /// there stays in it.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap();
                // SAFETY: a namespace descriptor; only this thread moves.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}");
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// A UDP socket bound to `port` inside the namespace.
    fn udp(&self, port: u16) -> std::net::UdpSocket {
        self.enter(|| {
            let sock = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
                .unwrap();
            sock
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .output();
    }
}

/// Runs a command in the test thread's namespace; panics unless it works.
fn run(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// Whether a datagram reaches `sock` within its timeout.
fn arrives(sock: &std::net::UdpSocket) -> bool {
    sock.recv(&mut [0; 16]).is_ok()
}

/// This namespace sends to 10.7.9.9, which both peers hold: by the main
/// routing table through peer `a`, by table 100 (packets marked 1)
/// through peer `b`. A rule in an output chain marks the datagrams to
/// port 5555: a route chain routes them again, by their mark, to `b`; a
/// filter chain marks them as well, but they leave as first routed.
#[test]
fn a_route_chain_routes_a_packet_again_by_the_mark_it_set() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let (a, b) = (Peer::new("a"), Peer::new("b"));
    run(&["ip", "link", "set", "lo", "up"]);
    for (peer, here, there, subnet) in [(&a, "ra", "a0", "10.7.1"), (&b, "rb", "b0", "10.7.2")] {
        run(&[
            "ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", &peer.0,
        ]);
        run(&["ip", "addr", "add", &format!("{subnet}.1/24"), "dev", here]);
        run(&["ip", "link", "set", here, "up"]);
        peer.run(&["ip", "addr", "add", &format!("{subnet}.2/24"), "dev", there]);
        peer.run(&["ip", "addr", "add", "10.7.9.9/32", "dev", there]);
        peer.run(&["ip", "link", "set", there, "up"]);
        for key in ["all", "default", there] {
            peer.run(&["sysctl", "-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")]);
        }
    }
    run(&["ip", "route", "add", "10.7.9.9/32", "via", "10.7.1.2"]);
    run(&[
        "ip",
        "route",
        "add",
        "10.7.9.9/32",
        "via",
        "10.7.2.2",
        "table",
        "100",
    ]);
    run(&["ip", "rule", "add", "fwmark", "1", "table", "100"]);

    let marking = |chain_type| {
        let mark = Rule {
            statements: vec![Statement::Mark(MarkUpdate::Set(1))],
            ..rule(vec![dport(Transport::Udp, 5555, 5555)], Action::Accept)
        };
        policy(
            "rt",
            vec![chain(
                "out",
                base(Hook::Output, chain_type, -150, ChainPolicy::Accept),
                vec![mark],
            )],
            vec![],
        )
    };
    // Each port's datagram: (reached a, reached b).
    let mut send = |chain_type| {
        let policies = marking(chain_type);
        kernel
            .apply(
                &plan::replace_table(TABLE, &DesiredTable::from_policies(&policies)),
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let sockets: Vec<_> = [5555, 5556]
            .into_iter()
            .map(|port| (a.udp(port), b.udp(port)))
            .collect();
        let out = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for port in [5555, 5556] {
            out.send_to(b"x", ("10.7.9.9", port)).unwrap();
        }
        sockets
            .iter()
            .map(|(to_a, to_b)| (arrives(to_a), arrives(to_b)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        send(ChainType::Route),
        [(false, true), (true, false)],
        "the marked datagram is routed again to b, the other goes to a"
    );
    assert_eq!(
        send(ChainType::Filter),
        [(true, false), (true, false)],
        "a filter chain's mark routes nothing again"
    );
}

/// A client namespace reaches this one through a veth: this one holds
/// 10.8.0.1, the client 10.8.0.2.
fn client() -> Peer {
    let peer = Peer::new("client");
    run(&["ip", "link", "set", "lo", "up"]);
    run(&[
        "ip", "link", "add", "rc", "type", "veth", "peer", "name", "c0", "netns", &peer.0,
    ]);
    run(&["ip", "addr", "add", "10.8.0.1/24", "dev", "rc"]);
    run(&["ip", "link", "set", "rc", "up"]);
    peer.run(&["ip", "addr", "add", "10.8.0.2/24", "dev", "c0"]);
    peer.run(&["ip", "link", "set", "c0", "up"]);
    peer
}

/// The rule `tcp dport 21 ct helper set "ob/ftp-ctl"` attaches the
/// runtime's helper object to FTP control connections, and to no other:
/// conntrack shows `helper=ftp` on the first only. Needs the `conntrack`
/// tool (conntrack-tools): /proc/net/nf_conntrack does not show helpers.
#[test]
fn a_ct_helper_object_attaches_to_the_connections_its_rule_selects() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let peer = client();
    let policies = objects_policy(Transport::Udp);
    kernel
        .apply(
            &plan::replace_table(TABLE, &DesiredTable::from_policies(&policies)),
            None,
        )
        .unwrap();
    let listeners = [21, 2121].map(|p| std::net::TcpListener::bind(("0.0.0.0", p)).unwrap());
    let _connections = peer.enter(|| {
        [21, 2121].map(|p| {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([10, 8, 0, 1], p)),
                std::time::Duration::from_secs(3),
            )
            .unwrap()
        })
    });
    for l in &listeners {
        l.accept().unwrap();
    }
    let out = std::process::Command::new("conntrack")
        .args(["-L", "-p", "tcp"])
        .output()
        .expect("the conntrack tool (conntrack-tools)");
    let table = String::from_utf8_lossy(&out.stdout);
    let entry = |port: &str| {
        let needle = format!("dport={port} ");
        let found: Vec<&str> = table.lines().filter(|l| l.contains(&needle)).collect();
        assert_eq!(found.len(), 1, "{table}");
        found[0].to_string()
    };
    assert!(entry("21").contains("helper=ftp"), "{table}");
    assert!(!entry("2121").contains("helper="), "{table}");
}
