//! The judge on a small router's table: port forwards through a map, IPv6
//! pinholes in a set, the router's own SSH, masquerade; old and new tables
//! as the policy would give them before and after a change.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::walk::{Network, Route};
use super::{Flow, Reason, Tuple, judge, proto, status};
use crate::ir::{
    Action, BaseChain, Chain, ChainPolicy, ChainType, CtStates, Data, Element, Family, Field, Hook,
    Key, KeyType, MapData, MapLookup, MapSource, Match, NamedSet, NatMap, PolicyRules, Rule,
    Ruleset, SetElement, SetElements, SetKind, Transport, Value,
};
use crate::plan::DesiredTable;

const WAN: &str = "203.0.113.1";
const INTERNET: &str = "198.51.100.7";
const NAS: &str = "192.168.1.23";
const PRINTER: &str = "192.168.1.40";
const LAPTOP: &str = "192.168.1.50";
const NAS6: &str = "2001:db8:1::23";
const PHONE6: &str = "2001:db8:1::77";
const INTERNET6: &str = "2001:db8:ffff::9";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Routes as the router has them: the LAN on lan0, everything else out of
/// wan0, its own addresses local.
struct Net {
    local: Vec<IpAddr>,
}

impl Network for Net {
    fn route(&mut self, a: IpAddr) -> Option<Route> {
        if self.local.contains(&a) {
            return Some(Route::Local);
        }
        let lan: [IpNetwork; 2] = [
            "192.168.1.0/24".parse().unwrap(),
            "2001:db8:1::/64".parse().unwrap(),
        ];
        if lan.iter().any(|n| n.contains(a)) {
            return Some(Route::Via("lan0".into()));
        }
        Some(Route::Via("wan0".into()))
    }
}

fn net() -> Net {
    Net {
        local: vec![ip(WAN), ip("192.168.1.1"), ip("2001:db8:1::1")],
    }
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

fn base(
    hook: Hook,
    chain_type: ChainType,
    priority: i32,
    policy: ChainPolicy,
) -> Option<BaseChain> {
    Some(BaseChain {
        hook,
        chain_type,
        priority,
        policy,
    })
}

/// The router's table with these TCP forwards (port -> host . port),
/// these IPv6 pinholes (address . port) and extra forward rules.
fn router(
    forwards: &[(u16, &str, u16)],
    pinholes: &[(&str, u16)],
    extra: Vec<Rule>,
) -> DesiredTable {
    let forwards_map = SetElements::new(
        SetKind {
            key: Key(vec![KeyType::InetService]),
            data: Some(MapData::Values(Key(vec![
                KeyType::Ipv4Addr,
                KeyType::InetService,
            ]))),
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
        },
        forwards
            .iter()
            .map(|(port, host, to)| SetElement {
                key: Element(vec![Value::Number(u32::from(*port))]),
                data: Some(Data::Values(Element(vec![
                    Value::Addr(ip(host)),
                    Value::Number(u32::from(*to)),
                ]))),
            })
            .collect(),
    );
    let pinhole_set = SetElements::new(
        SetKind {
            key: Key(vec![KeyType::Ipv6Addr, KeyType::InetService]),
            data: None,
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
        },
        pinholes
            .iter()
            .map(|(a, p)| {
                SetElement::key(Element(vec![
                    Value::Addr(ip(a)),
                    Value::Number(u32::from(*p)),
                ]))
            })
            .collect(),
    );
    let dport = Field::Dport(Transport::Tcp);
    let nat_map = |fields: Vec<Field>| {
        Action::DnatMap(NatMap {
            family: Family::V4,
            lookup: MapLookup {
                fields,
                map: MapSource::Named("forwards".into()),
            },
            ports: true,
        })
    };
    let established = Match::CtState(CtStates(CtStates::ESTABLISHED | CtStates::RELATED));
    let mut forward = vec![
        rule(vec![established.clone()], Action::Accept, "established"),
        rule(
            vec![iif("lan0"), oif("wan0")],
            Action::Accept,
            "out to the WAN",
        ),
        rule(
            vec![Match::CtStatus {
                bits: status::DST_NAT,
                negate: false,
            }],
            Action::Accept,
            "port forwards",
        ),
        rule(
            vec![
                iif("wan0"),
                Match::InSet {
                    fields: vec![Field::Daddr(Family::V6), dport],
                    set: "pinholes".into(),
                    negate: false,
                },
            ],
            Action::Accept,
            "IPv6 pinholes",
        ),
    ];
    forward.extend(extra);
    let chains = vec![
        Chain {
            name: "prerouting".into(),
            base: base(Hook::Prerouting, ChainType::Nat, -100, ChainPolicy::Accept),
            rules: vec![rule(
                vec![iif("wan0")],
                nat_map(vec![dport]),
                "port forwards (tcp)",
            )],
        },
        Chain {
            name: "input".into(),
            base: base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Drop),
            rules: vec![
                rule(vec![established], Action::Accept, "established"),
                rule(
                    vec![Match::Port {
                        dir: crate::ir::Dir::Destination,
                        proto: Transport::Tcp,
                        first: 22,
                        last: 22,
                        negate: false,
                    }],
                    Action::Accept,
                    "ssh",
                ),
            ],
        },
        Chain {
            name: "forward".into(),
            base: base(Hook::Forward, ChainType::Filter, 0, ChainPolicy::Drop),
            rules: forward,
        },
        Chain {
            name: "postrouting".into(),
            base: base(Hook::Postrouting, ChainType::Nat, 100, ChainPolicy::Accept),
            rules: vec![rule(
                vec![oif("wan0")],
                Action::Masquerade(None),
                "masquerade",
            )],
        },
    ];
    let rules = Ruleset {
        chains,
        sets: vec![
            NamedSet {
                name: "forwards".into(),
                elements: forwards_map,
            },
            NamedSet {
                name: "pinholes".into(),
                elements: pinhole_set,
            },
        ],
        objects: Vec::new(),
        flowtables: Vec::new(),
        sysctls: Vec::new(),
    };
    DesiredTable::from_policies(&[PolicyRules {
        policy: "router".into(),
        rules,
    }])
}

fn tuple(proto: u8, src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple {
        src: ip(src),
        dst: ip(dst),
        proto,
        ports: Some((sport, dport)),
        icmp: None,
    }
}

/// A flow as the kernel holds it: `orig`, and its reply after the NAT.
fn flow(orig: Tuple, reply: Tuple, status: u32) -> Flow {
    Flow {
        orig,
        reply,
        status: status | status::CONFIRMED | status::SEEN_REPLY,
        id: None,
        zone: 0,
        mark: 0,
    }
}

/// A flow from the internet to the router's `port`, forwarded to `host:to`.
fn forwarded(proto: u8, sport: u16, port: u16, host: &str, to: u16) -> Flow {
    flow(
        tuple(proto, INTERNET, sport, WAN, port),
        tuple(proto, host, to, INTERNET, sport),
        status::DST_NAT,
    )
}

/// A flow from the LAN out to the internet, masqueraded behind `wan`.
fn masqueraded(host: &str, sport: u16, wan: &str, nat_port: u16) -> Flow {
    flow(
        tuple(proto::UDP, host, sport, INTERNET, 53),
        tuple(proto::UDP, INTERNET, 53, wan, nat_port),
        status::SRC_NAT,
    )
}

/// A connection to the router's own `port` from the internet.
fn to_router(proto: u8, sport: u16, port: u16) -> Flow {
    flow(
        tuple(proto, INTERNET, sport, WAN, port),
        tuple(proto, WAN, port, INTERNET, sport),
        0,
    )
}

fn cut_of(old: &DesiredTable, new: &DesiredTable, flows: &[Flow]) -> HashMap<Flow, Reason> {
    let j = judge(old, new, &HashSet::new(), flows, &mut net(), 0);
    j.cuts.into_iter().map(|c| (c.flow, c.reason)).collect()
}

#[test]
fn a_forward_that_goes_cuts_its_flows_and_only_those() {
    let old = router(&[(8080, NAS, 80), (9000, PRINTER, 9100)], &[], vec![]);
    let new = router(&[(9000, PRINTER, 9100)], &[], vec![]);
    let nas_tcp = forwarded(proto::TCP, 40000, 8080, NAS, 80);
    let printer = forwarded(proto::TCP, 40001, 9000, PRINTER, 9100);
    let ssh = to_router(proto::TCP, 40002, 22);
    let out = masqueraded(LAPTOP, 5353, WAN, 5353);
    let flows = [nas_tcp.clone(), printer, ssh, out];
    let cuts = cut_of(&old, &new, &flows);
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(
        cuts[&nas_tcp],
        Reason::DnatGone {
            was: format!("dnat to {NAS}:80")
        }
    );
}

#[test]
fn a_forward_moved_to_another_host_cuts_the_flows_to_the_old_one() {
    let old = router(&[(8080, NAS, 80)], &[], vec![]);
    let new = router(&[(8080, PRINTER, 80)], &[], vec![]);
    let to_nas = forwarded(proto::TCP, 40000, 8080, NAS, 80);
    let cuts = cut_of(&old, &new, std::slice::from_ref(&to_nas));
    assert!(
        matches!(&cuts[&to_nas], Reason::DnatChanged { now, .. } if now == &format!("dnat to {PRINTER}:80")),
        "{cuts:?}"
    );
}

#[test]
fn a_udp_flow_that_began_before_its_forward_is_cut_a_tcp_one_to_the_router_is_not() {
    let old = router(&[], &[], vec![]);
    let mut new = router(&[(22, NAS, 22)], &[], vec![]);
    // The same forward for UDP: the map is keyed by port only, so make the
    // rule's lookup take the UDP port too.
    for chain in &mut new.chains {
        for r in &mut chain.rules {
            if let Action::DnatMap(m) = &mut r.rule.action {
                m.lookup.fields = vec![Field::Dport(Transport::Udp)];
            }
        }
    }
    let udp = to_router(proto::UDP, 5000, 22);
    let ssh = to_router(proto::TCP, 40000, 22);
    let cuts = cut_of(&old, &new, &[udp.clone(), ssh.clone()]);
    assert_eq!(
        cuts.get(&udp),
        Some(&Reason::DnatAdded {
            now: format!("dnat to {NAS}:22")
        })
    );
    assert!(!cuts.contains_key(&ssh), "{cuts:?}");
}

#[test]
fn a_pinhole_that_closes_cuts_its_ipv6_flows() {
    let old = router(&[], &[(NAS6, 443), (PHONE6, 443)], vec![]);
    let new = router(&[], &[(PHONE6, 443)], vec![]);
    let to_nas = flow(
        tuple(proto::TCP, INTERNET6, 50000, NAS6, 443),
        tuple(proto::TCP, NAS6, 443, INTERNET6, 50000),
        0,
    );
    let to_phone = flow(
        tuple(proto::TCP, INTERNET6, 50001, PHONE6, 443),
        tuple(proto::TCP, PHONE6, 443, INTERNET6, 50001),
        0,
    );
    let cuts = cut_of(&old, &new, &[to_nas.clone(), to_phone]);
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!(matches!(&cuts[&to_nas], Reason::NoLongerAccepted { by } if by.contains("forward")));
}

#[test]
fn an_accept_removed_cuts_only_what_it_alone_allowed() {
    let game = |port| {
        rule(
            vec![
                iif("wan0"),
                Match::Port {
                    dir: crate::ir::Dir::Destination,
                    proto: Transport::Udp,
                    first: port,
                    last: port,
                    negate: false,
                },
            ],
            Action::Accept,
            "game",
        )
    };
    let wide = rule(
        vec![
            iif("wan0"),
            Match::Addr {
                dir: crate::ir::Dir::Destination,
                net: "192.168.1.40/32".parse().unwrap(),
                negate: false,
            },
        ],
        Action::Accept,
        "the printer, all ports",
    );
    let old = router(&[], &[], vec![game(3074), wide.clone()]);
    let new = router(&[], &[], vec![wide]);
    let to_laptop = flow(
        tuple(proto::UDP, INTERNET, 3074, LAPTOP, 3074),
        tuple(proto::UDP, LAPTOP, 3074, INTERNET, 3074),
        0,
    );
    let to_printer = flow(
        tuple(proto::UDP, INTERNET, 3074, PRINTER, 3074),
        tuple(proto::UDP, PRINTER, 3074, INTERNET, 3074),
        0,
    );
    let cuts = cut_of(&old, &new, &[to_laptop.clone(), to_printer.clone()]);
    assert!(cuts.contains_key(&to_laptop), "{cuts:?}");
    assert!(
        !cuts.contains_key(&to_printer),
        "another rule still allows it"
    );
}

#[test]
fn masquerade_to_an_address_the_router_lost_is_cut() {
    let table = router(&[], &[], vec![]);
    let stale = masqueraded(LAPTOP, 5353, "203.0.113.99", 5353);
    let live = masqueraded(NAS, 5354, WAN, 5354);
    let cuts = cut_of(&table, &table, &[stale.clone(), live]);
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(
        cuts[&stale],
        Reason::SnatStale {
            address: ip("203.0.113.99")
        }
    );
}

#[test]
fn someone_elses_nat_and_the_routers_own_connections_are_left_alone() {
    let old = router(&[(8080, NAS, 80)], &[], vec![]);
    let new = router(&[], &[], vec![]);
    // Translated to a host the old table never sent it to: not ours.
    let other = forwarded(proto::TCP, 40000, 8080, "192.168.1.99", 80);
    // The router's own connection out.
    let own = flow(
        tuple(proto::TCP, WAN, 40000, INTERNET, 443),
        tuple(proto::TCP, INTERNET, 443, WAN, 40000),
        0,
    );
    let j = judge(&old, &new, &HashSet::new(), &[other, own], &mut net(), 0);
    assert!(j.cuts.is_empty(), "{:?}", j.cuts);
    assert_eq!((j.kept, j.skipped), (1, 1));
}

#[test]
fn a_rule_the_walk_cannot_judge_leaves_the_flow_alone() {
    let marked = rule(
        vec![Match::Masked {
            field: Field::Mark,
            mask: Value::Number(0xff),
            value: Value::Number(1),
            negate: false,
        }],
        Action::Drop,
        "marked",
    );
    let mut old = router(&[(8080, NAS, 80)], &[], vec![]);
    let new = router(&[], &[], vec![]);
    // A rule on the packet mark before everything else in forward.
    for c in &mut old.chains {
        if c.name.as_str() == "router/forward" {
            let tag = c.rules[0].tag.clone();
            c.rules.insert(
                0,
                crate::plan::DesiredRule {
                    rule: marked.clone(),
                    tag,
                },
            );
        }
    }
    let to_nas = forwarded(proto::TCP, 40000, 8080, NAS, 80);
    let j = judge(&old, &new, &HashSet::new(), &[to_nas], &mut net(), 0);
    assert!(j.cuts.is_empty());
    assert_eq!(j.unknown, 1);
    assert!(j.first_unknown.unwrap().contains("meta mark"));
}

#[test]
fn a_rule_marked_to_cut_its_flows_cuts_them_when_it_goes() {
    let wide = rule(vec![iif("wan0")], Action::Accept, "anything from the WAN");
    let old = router(&[], &[], vec![wide.clone()]);
    let mut new = router(&[], &[], vec![]);
    // A rule that allows the same stays, so only the mark cuts.
    new.chains
        .iter_mut()
        .find(|c| c.name.as_str() == "router/forward")
        .unwrap()
        .rules
        .push(crate::plan::DesiredRule {
            rule: rule(vec![iif("wan0")], Action::Accept, "the same, kept"),
            tag: crate::plan::RuleTag {
                policy: "router".into(),
                hash: "kept".into(),
            },
        });
    let tag = old
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .find(|r| r.rule.comment.as_deref() == Some("anything from the WAN"))
        .unwrap()
        .tag
        .clone();
    let to_laptop = flow(
        tuple(proto::UDP, INTERNET, 3074, LAPTOP, 3074),
        tuple(proto::UDP, LAPTOP, 3074, INTERNET, 3074),
        0,
    );
    let none = judge(
        &old,
        &new,
        &HashSet::new(),
        std::slice::from_ref(&to_laptop),
        &mut net(),
        0,
    );
    assert!(none.cuts.is_empty());
    let marked = HashSet::from([tag]);
    let cut = judge(&old, &new, &marked, &[to_laptop], &mut net(), 0);
    assert_eq!(cut.cuts.len(), 1);
    assert_eq!(cut.cuts[0].reason, Reason::RuleGone);
}
