//! Named sets and maps of every kind, and the rules that look them up, in
//! the real kernel (each test in a network namespace of its own; skipped
//! without root): each kind round-trips (the kernel takes it, `nft list`
//! prints the runtime's text, it reads back as applied, a second plan sends
//! nothing, hand edits are repaired); a changed element is one message; the
//! elements rules add to a dynamic set are kept; and real packets between
//! namespaces go as the sets and maps say. The packet tests need python3
//! (for sockets) and `ip`.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Netlink};
use wasmwall::plan::{self, DesiredTable};

fn addr(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn prefix(s: &str) -> Value {
    Value::Prefix(s.parse().unwrap())
}

fn key(parts: &[KeyType]) -> Key {
    Key(parts.to_vec())
}

fn kind(parts: &[KeyType]) -> SetKind {
    SetKind::plain(key(parts))
}

fn keys(values: Vec<Vec<Value>>) -> Vec<SetElement> {
    values
        .into_iter()
        .map(|v| SetElement::key(Element(v)))
        .collect()
}

fn named(name: &str, kind: SetKind, elements: Vec<SetElement>) -> NamedSet {
    NamedSet {
        name: name.into(),
        elements: SetElements::new(kind, elements),
    }
}

fn verdict_map(name: &str, key_type: KeyType, elements: Vec<(Value, Verdict)>) -> NamedSet {
    named(
        name,
        SetKind {
            data: Some(MapData::Verdict),
            ..kind(&[key_type])
        },
        elements
            .into_iter()
            .map(|(k, v)| SetElement {
                key: Element(vec![k]),
                data: Some(Data::Verdict(v)),
            })
            .collect(),
    )
}

fn data_map(
    name: &str,
    key_type: &[KeyType],
    data: &[KeyType],
    elements: Vec<(Vec<Value>, Vec<Value>)>,
) -> NamedSet {
    named(
        name,
        SetKind {
            data: Some(MapData::Values(key(data))),
            ..kind(key_type)
        },
        elements
            .into_iter()
            .map(|(k, d)| SetElement {
                key: Element(k),
                data: Some(Data::Values(Element(d))),
            })
            .collect(),
    )
}

fn input_chain(rules: Vec<Rule>) -> Chain {
    chain(
        "input",
        base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Accept),
        rules,
    )
}

fn in_set(family: Family, set: &str) -> Match {
    Match::AddrInSet {
        dir: Dir::Source,
        family,
        set: set.into(),
    }
}

/// Every kind of set the contract has, and rules looking some of them up.
fn sets_of_every_kind() -> Vec<PolicyRules> {
    use KeyType::*;
    let intervals = |k: SetKind| SetKind {
        intervals: true,
        ..k
    };
    let ports = (1..=12)
        .chain([256, 8080])
        .map(|p| vec![Value::Number(p)])
        .collect();
    let sets = vec![
        named(
            "v4",
            kind(&[Ipv4Addr]),
            keys(
                ["11.0.0.0", "10.0.0.1", "10.0.0.2", "9.0.0.1", "1.1.1.1"]
                    .map(|a| vec![addr(a)])
                    .to_vec(),
            ),
        ),
        named(
            "v6",
            kind(&[Ipv6Addr]),
            keys(vec![vec![addr("fd00::2")], vec![addr("::1")]]),
        ),
        named("ports", kind(&[InetService]), keys(ports)),
        named(
            "protos",
            kind(&[InetProto]),
            keys(
                [6, 17, 1, 47, 58, 200]
                    .map(|p| vec![Value::Number(p)])
                    .to_vec(),
            ),
        ),
        named(
            "marks",
            kind(&[Mark]),
            keys(
                [1, 256, 0x0100_0000]
                    .map(|m| vec![Value::Number(m)])
                    .to_vec(),
            ),
        ),
        named(
            "names",
            kind(&[Ifname]),
            keys(
                ["eth1", "lan0", "wan0", "eth10"]
                    .map(|n| vec![Value::Name(n.into())])
                    .to_vec(),
            ),
        ),
        named(
            "macs",
            kind(&[EtherAddr]),
            keys(vec![
                vec![Value::Mac([0x52, 0x54, 0, 0, 0, 1])],
                vec![Value::Mac([2, 0, 0, 0, 0, 1])],
            ]),
        ),
        named(
            "icmp",
            kind(&[IcmpType]),
            keys([0, 3, 8, 200].map(|t| vec![Value::Number(t)]).to_vec()),
        ),
        named(
            "icmp6",
            kind(&[Icmpv6Type]),
            keys([128, 135].map(|t| vec![Value::Number(t)]).to_vec()),
        ),
        named(
            "pairs",
            kind(&[Ipv4Addr, InetService]),
            keys(vec![
                vec![addr("10.0.0.1"), Value::Number(1)],
                vec![addr("9.0.0.1"), Value::Number(256)],
                vec![addr("10.0.0.1"), Value::Number(256)],
            ]),
        ),
        named(
            "ifaddr",
            kind(&[Ifname, Ipv4Addr]),
            keys(vec![vec![Value::Name("lan0".into()), addr("10.0.0.1")]]),
        ),
        named(
            "blocked",
            intervals(kind(&[Ipv4Addr])),
            keys(vec![
                vec![addr("1.2.3.4")],
                vec![prefix("10.0.0.0/8")],
                vec![Value::AddrRange(
                    "192.168.1.10".parse().unwrap(),
                    "192.168.1.20".parse().unwrap(),
                )],
            ]),
        ),
        named(
            "blocked6",
            intervals(kind(&[Ipv6Addr])),
            keys(vec![vec![prefix("fd00::/8")], vec![addr("::1")]]),
        ),
        named(
            "port-ranges",
            intervals(kind(&[InetService])),
            keys(vec![
                vec![Value::Range(1, 1024)],
                vec![Value::Number(2000)],
                vec![Value::Range(60000, 65535)],
            ]),
        ),
        named(
            "nets-ports",
            intervals(kind(&[Ipv4Addr, InetService])),
            keys(vec![
                vec![prefix("10.0.0.0/8"), Value::Range(1, 1024)],
                vec![addr("192.168.0.1"), Value::Number(80)],
            ]),
        ),
        named(
            "recent",
            SetKind {
                timeout: Some(3600),
                ..kind(&[Ipv4Addr])
            },
            keys(vec![vec![addr("10.0.0.7")], vec![addr("10.0.0.8")]]),
        ),
        named(
            "expiring-ranges",
            SetKind {
                timeout: Some(90),
                size: Some(10),
                ..intervals(kind(&[Ipv4Addr]))
            },
            vec![],
        ),
        named(
            "meter",
            SetKind {
                timeout: Some(60),
                dynamic: true,
                size: Some(1024),
                ..kind(&[Ipv4Addr])
            },
            vec![],
        ),
        named(
            "sized",
            SetKind {
                size: Some(10),
                ..kind(&[Ipv4Addr])
            },
            keys(vec![vec![addr("1.1.1.1")]]),
        ),
    ];
    let rules = vec![
        rule(vec![in_set(Family::V4, "blocked")], Action::Drop),
        rule(vec![in_set(Family::V6, "blocked6")], Action::Drop),
        rule(vec![in_set(Family::V4, "recent")], Action::Accept),
        rule(
            vec![Match::PortInSet {
                dir: Dir::Destination,
                proto: Transport::Tcp,
                set: "port-ranges".into(),
            }],
            Action::Accept,
        ),
    ];
    policy("pf", vec![input_chain(rules)], sets)
}

/// The round trip, and the table read back equal to what was applied.
fn round_trip_reads_back(policies: &[PolicyRules]) {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, policies);
    let want = DesiredTable::from_policies(policies);
    let seen = kernel.observe(TABLE).unwrap().table.unwrap();
    assert_eq!(seen.normalized(), want.expected().normalized());
}

#[test]
fn sets_of_every_kind_round_trip() {
    round_trip_reads_back(&sets_of_every_kind());
}

/// Verdict maps and data maps, named and inline, and the rules using them.
fn maps_of_every_kind() -> Vec<PolicyRules> {
    use KeyType::*;
    let maps = vec![
        verdict_map(
            "by-iface",
            Ifname,
            vec![
                (Value::Name("lan0".into()), Verdict::Jump("lan_in".into())),
                (Value::Name("wan0".into()), Verdict::Drop),
                (Value::Name("eth1".into()), Verdict::Goto("lan_in".into())),
                (Value::Name("lo".into()), Verdict::Accept),
                (Value::Name("dmz0".into()), Verdict::Return),
            ],
        ),
        data_map(
            "fwds",
            &[InetService],
            &[Ipv4Addr, InetService],
            vec![
                (
                    vec![Value::Number(8080)],
                    vec![addr("192.168.1.10"), Value::Number(80)],
                ),
                (
                    vec![Value::Number(2222)],
                    vec![addr("192.168.1.11"), Value::Number(22)],
                ),
            ],
        ),
        data_map(
            "to-host",
            &[Ipv4Addr],
            &[Ipv4Addr],
            vec![(vec![addr("10.9.0.1")], vec![addr("192.168.1.10")])],
        ),
        named(
            "by-net",
            SetKind {
                data: Some(MapData::Values(key(&[Ipv4Addr]))),
                intervals: true,
                ..kind(&[Ipv4Addr])
            },
            vec![SetElement {
                key: Element(vec![prefix("10.0.0.0/8")]),
                data: Some(Data::Values(Element(vec![addr("1.1.1.1")]))),
            }],
        ),
        data_map(
            "by-pair",
            &[Ipv4Addr, InetService],
            &[Ipv4Addr, InetService],
            vec![(
                vec![addr("10.1.0.5"), Value::Number(8080)],
                vec![addr("192.168.1.10"), Value::Number(80)],
            )],
        ),
        data_map(
            "v6-fwds",
            &[InetService],
            &[Ipv6Addr, InetService],
            vec![(
                vec![Value::Number(80)],
                vec![addr("fd00::1"), Value::Number(8080)],
            )],
        ),
    ];
    let inline = SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            ..kind(&[Ifname])
        },
        vec![
            SetElement {
                key: Element(vec![Value::Name("x".into())]),
                data: Some(Data::Verdict(Verdict::Drop)),
            },
            SetElement {
                key: Element(vec![Value::Name("lan0".into())]),
                data: Some(Data::Verdict(Verdict::Jump("lan_in".into()))),
            },
        ],
    );
    let pairs = SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            intervals: true,
            ..kind(&[Ifname, Ipv4Addr])
        },
        vec![SetElement {
            key: Element(vec![Value::Name("lan0".into()), prefix("10.0.0.0/8")]),
            data: Some(Data::Verdict(Verdict::Accept)),
        }],
    );
    let input = vec![
        rule(
            vec![],
            Action::Vmap(MapLookup {
                fields: vec![Field::Iifname],
                map: MapSource::Named("by-iface".into()),
            }),
        ),
        rule(
            vec![],
            Action::Vmap(MapLookup {
                fields: vec![Field::Iifname, Field::Saddr(Family::V4)],
                map: MapSource::Inline(pairs),
            }),
        ),
        rule(
            vec![],
            Action::Vmap(MapLookup {
                fields: vec![Field::Iifname],
                map: MapSource::Inline(inline),
            }),
        ),
    ];
    let nat = |family, field, map: &str, ports| NatMap {
        family,
        lookup: MapLookup {
            fields: vec![field],
            map: MapSource::Named(map.into()),
        },
        ports,
    };
    let dport = Field::Dport(Transport::Tcp);
    let inline_fwds = SetElements::new(
        SetKind {
            data: Some(MapData::Values(key(&[Ipv4Addr, InetService]))),
            ..kind(&[InetService])
        },
        vec![SetElement {
            key: Element(vec![Value::Number(8443)]),
            data: Some(Data::Values(Element(vec![
                addr("192.168.1.10"),
                Value::Number(443),
            ]))),
        }],
    );
    let prerouting = vec![
        rule(
            vec![],
            Action::DnatMap(nat(Family::V4, Field::Daddr(Family::V4), "to-host", false)),
        ),
        rule(
            vec![],
            Action::DnatMap(nat(Family::V4, dport, "fwds", true)),
        ),
        rule(
            vec![],
            Action::DnatMap(nat(Family::V6, dport, "v6-fwds", true)),
        ),
        rule(
            vec![],
            Action::DnatMap(NatMap {
                family: Family::V4,
                lookup: MapLookup {
                    fields: vec![Field::Saddr(Family::V4), dport],
                    map: MapSource::Named("by-pair".into()),
                },
                ports: true,
            }),
        ),
        rule(
            vec![],
            Action::DnatMap(NatMap {
                family: Family::V4,
                lookup: MapLookup {
                    fields: vec![dport],
                    map: MapSource::Inline(inline_fwds),
                },
                ports: true,
            }),
        ),
    ];
    let postrouting = vec![rule(
        vec![],
        Action::SnatMap(nat(Family::V4, Field::Saddr(Family::V4), "by-net", false)),
    )];
    policy(
        "pf",
        vec![
            chain("lan_in", None, vec![counted(rule(vec![], Action::Accept))]),
            input_chain(input),
            chain(
                "prerouting",
                base(Hook::Prerouting, ChainType::Nat, -100, ChainPolicy::Accept),
                prerouting,
            ),
            chain(
                "postrouting",
                base(Hook::Postrouting, ChainType::Nat, 100, ChainPolicy::Accept),
                postrouting,
            ),
        ],
        maps,
    )
}

#[test]
fn maps_of_every_kind_round_trip() {
    round_trip_reads_back(&maps_of_every_kind());
}

/// nft lists a table's objects, then its sets and maps, then its chains:
/// the text keeps each kind in its place.
#[test]
fn sets_and_maps_list_between_objects_and_chains() {
    let mut policies = maps_of_every_kind();
    policies[0].rules.sets.insert(
        0,
        named(
            "first",
            kind(&[KeyType::Ipv4Addr]),
            keys(vec![vec![addr("10.0.0.1")]]),
        ),
    );
    policies[0].rules.objects.push(NamedObject {
        name: "seen".into(),
        object: Object::Counter,
    });
    round_trip_reads_back(&policies);
}

/// Applies the plan from what the kernel holds to `policies`; returns how
/// many messages it took.
fn converge(kernel: &mut Netlink, policies: &[PolicyRules]) -> usize {
    let desired = DesiredTable::from_policies(policies);
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
    if tx.is_empty() {
        return 0;
    }
    let report = kernel
        .apply(&tx, Some(seen.generation))
        .unwrap_or_else(|e| panic!("{e}\n{tx}"));
    assert_eq!(
        listed_as_text(),
        plan::table_text(TABLE, policies),
        "after\n{tx}"
    );
    report.messages
}

fn with_forward(policies: &mut [PolicyRules], port: u32, host: &str) {
    let fwds = policies[0]
        .rules
        .sets
        .iter_mut()
        .find(|s| s.name == "fwds")
        .unwrap();
    let mut elements = fwds.elements.elements.clone();
    elements.retain(|e| e.key.0 != [Value::Number(port)]);
    elements.push(SetElement {
        key: Element(vec![Value::Number(port)]),
        data: Some(Data::Values(Element(vec![addr(host), Value::Number(80)]))),
    });
    fwds.elements = SetElements::new(fwds.elements.kind.clone(), elements);
}

#[test]
fn a_map_element_is_one_message_and_a_second_apply_none() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut policies = maps_of_every_kind();
    assert!(converge(&mut kernel, &policies) > 0);
    assert_eq!(
        converge(&mut kernel, &policies),
        0,
        "a second apply sends nothing"
    );

    with_forward(&mut policies, 9090, "192.168.1.12");
    assert_eq!(
        converge(&mut kernel, &policies),
        1,
        "a new host is one element"
    );
    assert_eq!(converge(&mut kernel, &policies), 0);

    with_forward(&mut policies, 9090, "192.168.1.13");
    assert_eq!(
        converge(&mut kernel, &policies),
        2,
        "changed data: one delete and one add, in one batch"
    );
    assert_eq!(converge(&mut kernel, &policies), 0);

    let fwds = policies[0]
        .rules
        .sets
        .iter_mut()
        .find(|s| s.name == "fwds")
        .unwrap();
    let mut elements = fwds.elements.elements.clone();
    elements.retain(|e| e.key.0 != [Value::Number(9090)]);
    fwds.elements = SetElements::new(fwds.elements.kind.clone(), elements);
    assert_eq!(
        converge(&mut kernel, &policies),
        1,
        "a host gone is one element"
    );
    assert_eq!(converge(&mut kernel, &policies), 0);
}

#[test]
fn a_set_of_1000_leases_changes_by_one_element() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let leases = |skip: u32| {
        let addrs = (0..1000u32)
            .filter(|i| *i != skip)
            .map(|i| {
                vec![Value::Addr(
                    std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
                )]
            })
            .collect();
        policy(
            "pf",
            vec![input_chain(vec![rule(
                vec![in_set(Family::V4, "leases")],
                Action::Accept,
            )])],
            vec![named("leases", kind(&[KeyType::Ipv4Addr]), keys(addrs))],
        )
    };
    converge(&mut kernel, &leases(u32::MAX));
    assert_eq!(converge(&mut kernel, &leases(7)), 1, "one lease gone");
    assert_eq!(converge(&mut kernel, &leases(7)), 0);
}

#[test]
fn interval_elements_change_one_by_one() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    // Merged as validation merges them.
    let blocked = |nets: &[&str]| {
        let nets: Vec<Value> = nets.iter().map(|n| prefix(n)).collect();
        let set = named(
            "blocked",
            SetKind {
                intervals: true,
                ..kind(&[KeyType::Ipv4Addr])
            },
            keys(
                merge_intervals(KeyType::Ipv4Addr, &nets)
                    .into_iter()
                    .map(|v| vec![v])
                    .collect(),
            ),
        );
        policy(
            "pf",
            vec![input_chain(vec![rule(
                vec![in_set(Family::V4, "blocked")],
                Action::Drop,
            )])],
            vec![set],
        )
    };
    // Made empty, then filled: the intervals added to an existing set.
    converge(&mut kernel, &blocked(&[]));
    assert_eq!(
        converge(&mut kernel, &blocked(&["10.0.0.0/8", "192.168.0.0/16"])),
        1
    );
    assert_eq!(
        converge(&mut kernel, &blocked(&["10.0.0.0/8", "192.168.0.0/16"])),
        0
    );
    // A prefix that merges with its neighbour: the old one out, the merged in.
    assert_eq!(
        converge(
            &mut kernel,
            &blocked(&["10.0.0.0/8", "11.0.0.0/8", "192.168.0.0/16"])
        ),
        2
    );
    assert_eq!(converge(&mut kernel, &blocked(&["192.168.0.0/16"])), 1);
    assert_eq!(converge(&mut kernel, &blocked(&["192.168.0.0/16"])), 0);
}

#[test]
fn what_rules_add_to_a_dynamic_set_is_kept() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let meter = |listed: &[&str]| {
        let set = named(
            "meter",
            SetKind {
                timeout: Some(600),
                dynamic: true,
                size: Some(100),
                ..kind(&[KeyType::Ipv4Addr])
            },
            keys(listed.iter().map(|a| vec![addr(a)]).collect()),
        );
        policy("pf", vec![input_chain(vec![])], vec![set])
    };
    converge(&mut kernel, &meter(&["10.0.0.1"]));
    // An element as a rule's `add @set` adds it (the kernel cannot tell).
    nft(&[
        "add", "element", "inet", TABLE, "pf/meter", "{", "10.9.9.9", "}",
    ]);
    let desired = DesiredTable::from_policies(&meter(&["10.0.0.1"]));
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
    assert!(tx.is_empty(), "an element a rule added is no drift: {tx}");
    // The policy's own element, deleted by hand, is put back.
    nft(&[
        "delete", "element", "inet", TABLE, "pf/meter", "{", "10.0.0.1", "}",
    ]);
    assert_eq!(converge_messages(&mut kernel, &desired), 1);
    let listing = nft(&["list", "set", "inet", TABLE, "pf/meter"]);
    assert!(
        listing.contains("10.9.9.9") && listing.contains("10.0.0.1"),
        "{listing}"
    );
}

fn converge_messages(kernel: &mut Netlink, desired: &DesiredTable) -> usize {
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, desired, seen.table.as_ref()).unwrap();
    kernel.apply(&tx, None).unwrap().messages
}

// ---- Packets ----

static NEXT_PEER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace beside the test's own, joined to it by a
/// veth pair; deleted on drop, also when the test fails.
struct Peer {
    name: String,
}

impl Peer {
    /// A namespace whose end of a new veth pair has `addrs` (and a default
    /// route via `gateway`), the test's end (`ours`) having `our_addr`.
    fn new(role: &str, ours: &str, our_addr: &str, addrs: &[&str], gateway: &str) -> Peer {
        let name = format!(
            "ws-{}-{}-{role}",
            std::process::id(),
            NEXT_PEER.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let peer = Peer { name };
        sh(&[
            "ip", "link", "add", ours, "type", "veth", "peer", "name", "eth0", "netns", &peer.name,
        ]);
        sh(&["ip", "addr", "add", our_addr, "dev", ours]);
        sh(&["ip", "link", "set", ours, "up"]);
        for a in addrs {
            peer.run(&["ip", "addr", "add", a, "dev", "eth0"]);
        }
        peer.run(&["ip", "link", "set", "eth0", "up"]);
        peer.run(&["ip", "link", "set", "lo", "up"]);
        peer.run(&["ip", "route", "add", "default", "via", gateway]);
        peer
    }

    fn run(&self, argv: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(argv);
        sh(&all)
    }

    /// Tries a TCP connection from `source` to `to`:`port`, and returns
    /// what came back: "open: <what the server sent>", "refused", or
    /// "timeout".
    fn connect(&self, source: &str, to: &str, port: u16) -> String {
        let script = format!(
            "import socket\n\
             s = socket.socket()\n\
             s.settimeout(1.5)\n\
             s.bind(('{source}', 0))\n\
             try:\n    s.connect(('{to}', {port}))\n    print('open:', s.recv(64).decode().strip())\n\
             except ConnectionRefusedError:\n    print('refused')\n\
             except OSError:\n    print('timeout')\n"
        );
        self.run(&["python3", "-c", &script]).trim().to_string()
    }

    /// A TCP server on `addr`:`port` answering every connection with
    /// `token`, until the namespace goes.
    fn serve(&self, addr: &str, port: u16, token: &str) {
        let script = format!(
            "import socket\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{addr}', {port}))\n\
             s.listen()\n\
             print('ready', flush=True)\n\
             while True:\n    c, _ = s.accept()\n    c.sendall(b'{token}\\n')\n    c.close()\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "python3", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        // The namespace's deletion does not end it: kill it when we drop.
        std::mem::forget(child);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Processes inside first, then the namespace.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A client namespace on `net`.0/24 with these hosts' addresses, the test's
/// namespace `net`.1 on its side and its gateway.
fn client_on(net: &str, hosts: &[u8]) -> Peer {
    let addrs: Vec<String> = hosts.iter().map(|h| format!("{net}.{h}/24")).collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    Peer::new(
        "client",
        "r0",
        &format!("{net}.1/24"),
        &addrs,
        &format!("{net}.1"),
    )
}

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run a command");
    assert!(
        out.status.success(),
        "{argv:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(kernel: &mut Netlink, policies: &[PolicyRules]) {
    let desired = DesiredTable::from_policies(policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap();
}

#[test]
fn a_blocked_prefix_of_an_interval_set_drops_and_others_pass() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let client = client_on("10.99.0", &[2, 130]);
    let blocked = named(
        "blocked",
        SetKind {
            intervals: true,
            ..kind(&[KeyType::Ipv4Addr])
        },
        keys(vec![
            vec![prefix("10.99.0.128/25")],
            vec![prefix("172.16.0.0/12")],
        ]),
    );
    let policies = policy(
        "pf",
        vec![input_chain(vec![rule(
            vec![in_set(Family::V4, "blocked")],
            Action::Drop,
        )])],
        vec![blocked],
    );
    apply(&mut kernel, &policies);
    // No server: a packet that passes gets the kernel's reset.
    assert_eq!(
        client.connect("10.99.0.2", "10.99.0.1", 9),
        "refused",
        "outside the prefix"
    );
    assert_eq!(
        client.connect("10.99.0.130", "10.99.0.1", 9),
        "timeout",
        "inside the prefix"
    );
}

#[test]
fn a_vmap_sends_packets_to_the_chain_its_key_names() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let client = client_on("10.98.0", &[2]);
    let to_a = verdict_map(
        "by-port",
        KeyType::InetService,
        vec![
            (Value::Number(7001), Verdict::Jump("a".into())),
            (Value::Number(7002), Verdict::Goto("b".into())),
        ],
    );
    let input = vec![rule(
        vec![],
        Action::Vmap(MapLookup {
            fields: vec![Field::Dport(Transport::Tcp)],
            map: MapSource::Named("by-port".into()),
        }),
    )];
    let policies = policy(
        "pf",
        vec![
            chain("a", None, vec![counted(rule(vec![], Action::Continue))]),
            chain("b", None, vec![counted(rule(vec![], Action::Continue))]),
            input_chain(input),
        ],
        vec![to_a],
    );
    apply(&mut kernel, &policies);
    for _ in 0..3 {
        client.connect("10.98.0.2", "10.98.0.1", 7001);
    }
    client.connect("10.98.0.2", "10.98.0.1", 7002);
    client.connect("10.98.0.2", "10.98.0.1", 7003);
    let packets = |c: &str| -> u64 {
        let listing = nft(&["list", "chain", "inet", TABLE, c]);
        let at = listing.find("counter packets ").expect("a counter") + "counter packets ".len();
        listing[at..].split(' ').next().unwrap().parse().unwrap()
    };
    // Each connection's SYN, and nothing else: the reset goes out.
    assert_eq!((packets("pf/a"), packets("pf/b")), (3, 1));
}

#[test]
fn a_dnat_through_named_maps_reaches_the_mapped_host_and_port() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let client = client_on("10.96.0", &[2]);
    let server = Peer::new(
        "server",
        "r1",
        "192.168.52.1/24",
        &["192.168.52.10/24", "192.168.52.11/24"],
        "192.168.52.1",
    );
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    server.serve("192.168.52.10", 80, "web");
    server.serve("192.168.52.11", 22, "ssh");
    // A second address of the router, translated by address alone.
    sh(&["ip", "addr", "add", "10.96.0.20/24", "dev", "r0"]);
    let fwds = data_map(
        "fwds",
        &[KeyType::InetService],
        &[KeyType::Ipv4Addr, KeyType::InetService],
        vec![
            (
                vec![Value::Number(8080)],
                vec![addr("192.168.52.10"), Value::Number(80)],
            ),
            (
                vec![Value::Number(2222)],
                vec![addr("192.168.52.11"), Value::Number(22)],
            ),
        ],
    );
    let hosts = data_map(
        "hosts",
        &[KeyType::Ipv4Addr],
        &[KeyType::Ipv4Addr],
        vec![(vec![addr("10.96.0.20")], vec![addr("192.168.52.10")])],
    );
    let dnat = |field, map: &str, ports| {
        rule(
            vec![],
            Action::DnatMap(NatMap {
                family: Family::V4,
                lookup: MapLookup {
                    fields: vec![field],
                    map: MapSource::Named(map.into()),
                },
                ports,
            }),
        )
    };
    let policies = policy(
        "pf",
        vec![chain(
            "prerouting",
            base(Hook::Prerouting, ChainType::Nat, -100, ChainPolicy::Accept),
            vec![
                dnat(Field::Dport(Transport::Tcp), "fwds", true),
                dnat(Field::Daddr(Family::V4), "hosts", false),
            ],
        )],
        vec![fwds, hosts],
    );
    apply(&mut kernel, &policies);
    assert_eq!(client.connect("10.96.0.2", "10.96.0.1", 8080), "open: web");
    assert_eq!(client.connect("10.96.0.2", "10.96.0.1", 2222), "open: ssh");
    // A port the first map lacks goes on to the next rule, whose map has
    // the address: to the same host and port.
    assert_eq!(client.connect("10.96.0.2", "10.96.0.20", 80), "open: web");
    assert_eq!(
        client.connect("10.96.0.2", "10.96.0.1", 8081),
        "refused",
        "in neither map: the router's own closed port"
    );
}

/// A keyed limit adds one element per source to a dynamic set; the
/// planner sees the set as the policy left it, and a second plan sends
/// nothing while the elements stay.
#[test]
fn elements_a_keyed_limit_adds_are_kept() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let client = client_on("10.95.0", &[2, 3]);
    let meter = named(
        "meter",
        SetKind {
            timeout: Some(600),
            dynamic: true,
            size: Some(1024),
            ..kind(&[KeyType::Ipv4Addr])
        },
        vec![],
    );
    let limited = rule(
        vec![Match::KeyedLimit {
            fields: vec![Field::Saddr(Family::V4)],
            set: "meter".into(),
            rate: Rate {
                amount: 3,
                bytes: false,
                per: TimeUnit::Minute,
                burst: Rate::DEFAULT_PACKET_BURST,
            },
            over: true,
        }],
        Action::Drop,
    );
    let policies = policy("pf", vec![input_chain(vec![limited])], vec![meter]);
    apply(&mut kernel, &policies);
    client.connect("10.95.0.2", "10.95.0.1", 9);
    client.connect("10.95.0.3", "10.95.0.1", 9);
    let listing = nft(&["list", "set", "inet", TABLE, "pf/meter"]);
    assert!(
        listing.contains("10.95.0.2") && listing.contains("10.95.0.3"),
        "the rule added its keys:\n{listing}"
    );
    let desired = DesiredTable::from_policies(&policies);
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
    assert!(tx.is_empty(), "what the rule added is no drift: {tx}");
    let listing = nft(&["list", "set", "inet", TABLE, "pf/meter"]);
    assert!(listing.contains("10.95.0.2"), "{listing}");
}
