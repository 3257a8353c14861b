//! `why` on a small router: the seed's port forward to 127.0.0.1:4000 on
//! lan0, a forward to a NAS on lan1, the router's own input and output
//! rules; with and without the sysctls the kernel's routing needs.

use std::net::IpAddr;

use super::*;
use crate::flows::status;
use crate::ir::{
    Action, Against, BaseChain, Chain, ChainPolicy, ChainType, CtStates, Dir, Field, Hook, L4Proto,
    Match, NatTarget, PolicyRules, RejectWith, Rule, Ruleset, Sysctl, Transport, Value,
};
use crate::world::Interface;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rule(matches: Vec<Match>, action: Action, comment: &str) -> Rule {
    Rule {
        matches,
        statements: Vec::new(),
        action,
        comment: Some(comment.to_string()),
        cut_flows: false,
    }
}

fn dport(port: u16) -> Match {
    Match::Port {
        dir: Dir::Destination,
        proto: Transport::Tcp,
        first: port,
        last: port,
        negate: false,
    }
}

fn chain(
    name: &str,
    hook: Hook,
    chain_type: ChainType,
    priority: i32,
    policy: ChainPolicy,
    rules: Vec<Rule>,
) -> Chain {
    Chain {
        name: name.into(),
        base: Some(BaseChain {
            hook,
            chain_type,
            priority,
            policy,
        }),
        rules,
    }
}

/// The policy `port-forward`'s rules, asking for `sysctls`.
fn seed_table(sysctls: &[(&str, &str)]) -> (DesiredTable, Sysctls) {
    let lan0 = Match::Iifname {
        name: "lan0".into(),
        negate: false,
    };
    let chains = vec![
        chain(
            "prerouting",
            Hook::Prerouting,
            ChainType::Nat,
            -100,
            ChainPolicy::Accept,
            vec![
                rule(
                    vec![lan0.clone(), dport(80)],
                    Action::Dnat(NatTarget::to(ip("127.0.0.1"), Some(4000))),
                    "seed forward",
                ),
                rule(
                    vec![lan0, dport(8080)],
                    Action::Dnat(NatTarget::to(ip("192.168.1.20"), Some(80))),
                    "to the nas",
                ),
            ],
        ),
        chain(
            "input",
            Hook::Input,
            ChainType::Filter,
            0,
            ChainPolicy::Drop,
            vec![
                rule(
                    vec![Match::CtState(CtStates(
                        CtStates::ESTABLISHED | CtStates::RELATED,
                    ))],
                    Action::Accept,
                    "established",
                ),
                rule(
                    vec![
                        Match::Addr {
                            dir: Dir::Destination,
                            net: "127.0.0.1/32".parse().unwrap(),
                            negate: false,
                        },
                        dport(4000),
                    ],
                    Action::Accept,
                    "the server",
                ),
                rule(
                    vec![Match::Test {
                        fields: vec![Field::IcmpType],
                        against: Against::One(Value::Number(8)),
                        negate: false,
                    }],
                    Action::Accept,
                    "ping",
                ),
                rule(
                    vec![Match::L4Proto {
                        proto: L4Proto::Icmpv6,
                        negate: false,
                    }],
                    Action::Accept,
                    "icmpv6",
                ),
                rule(
                    vec![dport(23)],
                    Action::Reject(RejectWith::TcpReset),
                    "no telnet",
                ),
            ],
        ),
        chain(
            "forward",
            Hook::Forward,
            ChainType::Filter,
            0,
            ChainPolicy::Drop,
            vec![rule(
                vec![Match::CtStatus {
                    bits: status::DST_NAT,
                    negate: false,
                }],
                Action::Accept,
                "port forwards",
            )],
        ),
        chain(
            "output",
            Hook::Output,
            ChainType::Filter,
            0,
            ChainPolicy::Accept,
            vec![rule(
                vec![dport(25)],
                Action::Drop,
                "no mail from the router",
            )],
        ),
    ];
    let rules = Ruleset {
        chains,
        sysctls: sysctls
            .iter()
            .map(|(k, v)| Sysctl {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Ruleset::default()
    };
    let mut known = Sysctls::default();
    for s in &rules.sysctls {
        known.from_policy("port-forward", &s.key, &s.value);
    }
    let table = DesiredTable::from_policies(&[PolicyRules {
        policy: "port-forward".into(),
        rules,
    }]);
    (table, known)
}

fn interfaces() -> Vec<Interface> {
    let iface = |name: &str, addresses: &[&str]| Interface {
        name: name.into(),
        index: 0,
        up: true,
        mac: None,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    };
    vec![
        iface("lo", &["127.0.0.1/8", "::1/128"]),
        iface("lan0", &["192.168.0.9/24", "fd00::9/64"]),
        iface("lan1", &["192.168.1.1/24", "fd00:1::1/64"]),
    ]
}

fn why(table: &DesiredTable, sysctls: &Sysctls, packet: &str, ct_state: u32) -> Report {
    let words: Vec<String> = packet.split(' ').map(String::from).collect();
    let asked = parse(&words).unwrap();
    let interfaces = interfaces();
    let mut network = StateNetwork::new(&interfaces, None, sysctls);
    explain(table, &asked, ct_state, &mut network, 0)
}

const SEED: &str = "tcp 192.168.0.2:5000 -> 192.168.0.9:80 in lan0";

#[test]
fn the_seed_without_route_localnet_is_dropped_by_routing_and_why_names_the_sysctl() {
    let (table, sysctls) = seed_table(&[]);
    let report = why(&table, &sysctls, SEED, CtStates::NEW);
    assert_eq!(report.verdict, Verdict::Dropped);
    assert!(report.by.contains("martian destination"), "{}", report.by);
    assert_eq!(
        report.fix.as_deref(),
        Some("net.ipv4.conf.lan0.route_localnet")
    );
    assert_eq!(
        report.sysctls,
        vec![Fact {
            key: "net.ipv4.conf.lan0.route_localnet".into(),
            value: "0".into(),
            source: Source::Default,
            allows: false,
        }]
    );
    // The DNAT matched, and the packet never reached input.
    assert!(report.steps.contains(&Step::Dnat {
        to: "127.0.0.1:4000".into()
    }));
    assert!(!report.steps.contains(&Step::Hook {
        hook: "input".into()
    }));
    let text = report.text();
    assert!(
        text.contains("fix         set net.ipv4.conf.lan0.route_localnet = 1"),
        "{text}"
    );
    assert!(
        text.contains("comment \"seed forward\"   (policy port-forward)"),
        "{text}"
    );
}

#[test]
fn the_seed_with_route_localnet_is_accepted_by_the_dnat_and_the_input_rule() {
    let (table, sysctls) = seed_table(&[("net.ipv4.conf.lan0.route_localnet", "1")]);
    let report = why(&table, &sysctls, SEED, CtStates::NEW);
    assert_eq!(report.verdict, Verdict::Accepted, "{}", report.text());
    assert_eq!(report.deciding_comments, ["seed forward", "the server"]);
    assert_eq!(
        report.by,
        "rule 1 of port-forward/prerouting (\"seed forward\"), then rule 2 of port-forward/input (\"the server\")"
    );
    assert_eq!(report.fix, None);
    assert_eq!(
        report.sysctls[0].source,
        Source::Policy("port-forward".into())
    );
    assert!(report.sysctls[0].allows);
    // `all` does as well, given on the command line.
    let (table, mut sysctls) = seed_table(&[]);
    sysctls.given("net.ipv4.conf.all.route_localnet", "1");
    assert_eq!(
        why(&table, &sysctls, SEED, CtStates::NEW).verdict,
        Verdict::Accepted
    );
}

#[test]
fn a_forward_needs_ip_forward() {
    let packet = "tcp 192.168.0.2:5000 -> 192.168.0.9:8080 in lan0";
    let (table, mut sysctls) = seed_table(&[]);
    let off = why(&table, &sysctls, packet, CtStates::NEW);
    assert_eq!(off.verdict, Verdict::Dropped);
    assert_eq!(off.fix.as_deref(), Some("net.ipv4.ip_forward"));
    assert!(off.steps.contains(&Step::Routing {
        to: "192.168.1.20:80".into(),
        route: "forward via lan1".into()
    }));
    sysctls.given("net.ipv4.ip_forward", "1");
    let on = why(&table, &sysctls, packet, CtStates::NEW);
    assert_eq!(on.verdict, Verdict::Accepted, "{}", on.text());
    assert_eq!(on.deciding_comments, ["to the nas", "port forwards"]);
    assert!(on.sysctls[0].allows);
}

#[test]
fn a_port_no_rule_opens_is_dropped_by_the_chain_policy() {
    let (table, sysctls) = seed_table(&[]);
    let report = why(
        &table,
        &sysctls,
        "tcp 192.168.0.2 -> 192.168.0.9:22 in lan0",
        CtStates::NEW,
    );
    assert_eq!(report.verdict, Verdict::Dropped);
    assert_eq!(report.by, "the policy (drop) of chain port-forward/input");
    assert!(report.notes[0].contains("source port 50000"));
    assert_eq!(report.fix, None);
}

#[test]
fn a_reject_rule_rejects() {
    let (table, sysctls) = seed_table(&[]);
    let report = why(
        &table,
        &sysctls,
        "tcp 192.168.0.2:4444 -> 192.168.0.9:23 in lan0",
        CtStates::NEW,
    );
    assert_eq!(report.verdict, Verdict::Rejected);
    assert_eq!(report.deciding_comments, ["no telnet"]);
}

#[test]
fn icmp_by_type() {
    let (table, sysctls) = seed_table(&[]);
    let ping = why(
        &table,
        &sysctls,
        "icmp 192.168.0.2 -> 192.168.0.9 type echo-request",
        CtStates::NEW,
    );
    assert_eq!(ping.verdict, Verdict::Accepted);
    assert_eq!(ping.deciding_comments, ["ping"]);
    // The input interface is found from the route back to the source.
    assert_eq!(
        ping.packet,
        "icmp 192.168.0.2 -> 192.168.0.9 type echo-request"
    );
    let reply = why(
        &table,
        &sysctls,
        "icmp 192.168.0.2 -> 192.168.0.9 type echo-reply",
        CtStates::NEW,
    );
    assert_eq!(reply.verdict, Verdict::Dropped);
}

#[test]
fn ipv6_input_and_forward() {
    let (table, mut sysctls) = seed_table(&[]);
    let ping = why(
        &table,
        &sysctls,
        "icmpv6 fd00::2 -> fd00::9 in lan0",
        CtStates::NEW,
    );
    assert_eq!(ping.verdict, Verdict::Accepted);
    assert_eq!(ping.deciding_comments, ["icmpv6"]);
    let forward = "tcp [fd00::2]:5000 -> [fd00:1::20]:80 in lan0";
    let off = why(&table, &sysctls, forward, CtStates::NEW);
    assert_eq!(off.verdict, Verdict::Dropped);
    assert_eq!(off.fix.as_deref(), Some("net.ipv6.conf.all.forwarding"));
    sysctls.given("net.ipv6.conf.all.forwarding", "1");
    let on = why(&table, &sysctls, forward, CtStates::NEW);
    // Forwarded, but no DNAT: the forward chain's policy drops it.
    assert_eq!(on.verdict, Verdict::Dropped);
    assert_eq!(on.by, "the policy (drop) of chain port-forward/forward");
}

#[test]
fn an_established_packet_matches_ct_state_and_skips_nat() {
    let (table, sysctls) = seed_table(&[]);
    let packet = "tcp 192.168.0.2:5000 -> 192.168.0.9:22 in lan0";
    let report = why(&table, &sysctls, packet, CtStates::ESTABLISHED);
    assert_eq!(report.verdict, Verdict::Accepted);
    assert_eq!(report.deciding_comments, ["established"]);
    assert!(report.steps.contains(&Step::NatSkipped {
        chain: "port-forward/prerouting".into()
    }));
    assert_eq!(report.ct_state, "established");
}

#[test]
fn the_routers_own_packets_go_through_output() {
    let (table, sysctls) = seed_table(&[]);
    let mail = why(
        &table,
        &sysctls,
        "tcp 192.168.1.1 -> 192.168.1.20:25",
        CtStates::NEW,
    );
    assert!(mail.from_router);
    assert_eq!(mail.verdict, Verdict::Dropped);
    assert_eq!(mail.deciding_comments, ["no mail from the router"]);
    assert!(mail.steps.contains(&Step::Hook {
        hook: "output".into()
    }));
    let web = why(
        &table,
        &sysctls,
        "tcp 192.168.1.1 -> 192.168.1.20:443",
        CtStates::NEW,
    );
    assert_eq!(web.verdict, Verdict::Accepted);
    assert_eq!(web.by, "the policy (accept) of chain port-forward/output");
}

#[test]
fn no_route_known_is_said_plainly() {
    let (table, mut sysctls) = seed_table(&[]);
    sysctls.given("net.ipv4.ip_forward", "1");
    let report = why(
        &table,
        &sysctls,
        "tcp 192.168.0.2 -> 198.51.100.7:443 in lan0",
        CtStates::NEW,
    );
    assert_eq!(report.verdict, Verdict::Unknown);
    assert_eq!(report.by, "no route to 198.51.100.7");
    // With a default route named, it is forwarded (and dropped: no DNAT).
    let words: Vec<String> = "tcp 192.168.0.2 -> 198.51.100.7:443 in lan0"
        .split(' ')
        .map(String::from)
        .collect();
    let interfaces = interfaces();
    let mut network = StateNetwork::new(&interfaces, Some("lan1".into()), &sysctls);
    let report = explain(
        &table,
        &parse(&words).unwrap(),
        CtStates::NEW,
        &mut network,
        0,
    );
    assert_eq!(report.verdict, Verdict::Dropped);
}

#[test]
fn packets_parse_and_bad_ones_say_what_is_wrong() {
    let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let asked = parse(&words("udp [2001:db8::2]:5000 -> [2001:db8::9]:53 in lan0")).unwrap();
    assert_eq!(asked.packet.ports, Some((5000, 53)));
    assert_eq!(asked.iif.as_deref(), Some("lan0"));
    assert_eq!(
        asked.to_string(),
        "udp [2001:db8::2]:5000 -> [2001:db8::9]:53 in lan0"
    );
    let icmp = parse(&words("icmpv6 2001:db8::2 -> 2001:db8::9 type 135")).unwrap();
    assert_eq!(icmp.packet.icmp, Some((135, 0)));
    assert_eq!(
        icmp.to_string(),
        "icmpv6 2001:db8::2 -> 2001:db8::9 type nd-neighbor-solicit"
    );
    for (bad, problem) in [
        ("tcp 10.0.0.1 -> 10.0.0.2", "tcp needs a destination port"),
        ("tcp 10.0.0.1 => 10.0.0.2:80", "expected `->`"),
        ("sctp 10.0.0.1 -> 10.0.0.2:80", "unknown protocol `sctp`"),
        (
            "icmp 10.0.0.1 -> 10.0.0.2 type bogus",
            "unknown icmp type `bogus`",
        ),
        ("tcp 10.0.0.1 -> [::1]:80", "different families"),
        ("tcp 10.0.0.1 -> 10.0.0.2:0", "`0` is not a port"),
        ("tcp 10.0.0.1 -> 10.0.0.2:80 in", "`in` needs a value"),
    ] {
        let e = parse(&words(bad)).unwrap_err();
        assert!(e.problem.contains(problem), "{bad}: {}", e.problem);
    }
}
