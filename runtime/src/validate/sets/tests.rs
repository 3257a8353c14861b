//! Every refusal of a named set, a named map, an inline map and a map
//! action, with its words and its place; and the canonical form of what
//! is accepted. These write 0.2 answers directly.

use crate::bindings::wit::{self, KeyType as K, Value as V};
use crate::ir;
use crate::validate::{Invalid, Options};

/// Validates with the default world's kernel features (sets and maps need
/// none).
fn validate(rs: &wit::Ruleset, opts: &Options) -> Result<ir::Ruleset, Invalid> {
    crate::validate::validate(rs, opts, &crate::world::Features::default().to_wit())
}

fn opts() -> Options {
    Options {
        max_set_elements: 50,
        ..Options::default()
    }
}

fn set(name: &str, key: &[K], elements: Vec<Vec<V>>) -> wit::NamedSet {
    wit::NamedSet {
        name: name.into(),
        key: key.to_vec(),
        intervals: false,
        timeout: None,
        dynamic: false,
        size: None,
        elements,
    }
}

fn map(name: &str, key: &[K], data: Option<&[K]>, elements: Vec<wit::MapElement>) -> wit::NamedMap {
    wit::NamedMap {
        name: name.into(),
        key: key.to_vec(),
        data: data.map(<[K]>::to_vec),
        intervals: false,
        elements,
    }
}

fn to(key: Vec<V>, data: wit::MapData) -> wit::MapElement {
    wit::MapElement { key, data }
}

fn values(v: Vec<V>) -> wit::MapData {
    wit::MapData::Values(v)
}

fn verdict(v: wit::Verdict) -> wit::MapData {
    wit::MapData::Verdict(v)
}

fn a(s: &str) -> V {
    V::Address(s.into())
}

fn n(x: u32) -> V {
    V::Number(x)
}

fn name(s: &str) -> V {
    V::Name(s.into())
}

fn base(name: &str, hook: wit::Hook, ty: wit::ChainType, rules: Vec<wit::Rule>) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: Some(wit::BaseChain {
            hook,
            type_: ty,
            priority: wit::Priority::Number(0),
            policy: wit::ChainPolicy::Accept,
        }),
        rules,
    }
}

fn regular(name: &str, rules: Vec<wit::Rule>) -> wit::Chain {
    wit::Chain {
        name: name.into(),
        base: None,
        rules,
    }
}

fn rule(matches: Vec<wit::Matcher>, action: wit::Action) -> wit::Rule {
    wit::Rule {
        matches: matches
            .into_iter()
            .map(|matcher| wit::MatchExpr {
                matcher,
                negate: false,
            })
            .collect(),
        statements: vec![],
        action,
        comment: None,
    }
}

fn input(rules: Vec<wit::Rule>) -> wit::Chain {
    base("input", wit::Hook::Input, wit::ChainType::Filter, rules)
}

fn prerouting(rules: Vec<wit::Rule>) -> wit::Chain {
    base("pre", wit::Hook::Prerouting, wit::ChainType::Nat, rules)
}

fn ruleset(
    chains: Vec<wit::Chain>,
    sets: Vec<wit::NamedSet>,
    maps: Vec<wit::NamedMap>,
) -> wit::Ruleset {
    wit::Ruleset {
        chains,
        sets,
        maps,
        ..wit::Ruleset::empty()
    }
}

fn lookup(key: Vec<wit::Field>, map: wit::MapSource) -> wit::MapLookup {
    wit::MapLookup { key, map }
}

fn named(m: &str) -> wit::MapSource {
    wit::MapSource::Named(m.into())
}

fn dnat_map(key: Vec<wit::Field>, map: wit::MapSource) -> wit::Action {
    wit::Action::DnatMap(wit::NatMap {
        family: wit::IpFamily::Ipv4,
        lookup: lookup(key, map),
    })
}

const TCP_DPORT: wit::Field = wit::Field::Dport(wit::Transport::Tcp);

/// Expects exactly one problem, at `at`, whose message has every needle.
#[track_caller]
fn rejects(rs: wit::Ruleset, at: &str, needles: &[&str]) {
    let err: Invalid = validate(&rs, &opts()).expect_err("expected a validation error");
    assert_eq!(err.problems.len(), 1, "expected one problem, got: {err}");
    let p = &err.problems[0];
    assert_eq!(p.at, at, "wrong place in: {p}");
    for needle in needles {
        assert!(
            p.message.contains(needle),
            "{p:?} does not mention {needle:?}"
        );
    }
}

#[track_caller]
fn accepts(rs: wit::Ruleset) -> ir::Ruleset {
    validate(&rs, &opts()).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn only_sets(sets: Vec<wit::NamedSet>) -> wit::Ruleset {
    ruleset(vec![], sets, vec![])
}

#[test]
fn a_set_needs_a_key_the_kernel_takes() {
    rejects(
        only_sets(vec![set("s", &[], vec![])]),
        "set \"s\"",
        &["has no key type"],
    );
    rejects(
        only_sets(vec![set("s", &[K::Ipv6Addr; 5], vec![])]),
        "set \"s\"",
        &["takes 80 bytes", "at most 64"],
    );
    accepts(only_sets(vec![set("s", &[K::Ipv6Addr; 4], vec![])]));
}

#[test]
fn set_and_map_names_are_checked() {
    rejects(
        only_sets(vec![set("bad name", &[K::Ipv4Addr], vec![])]),
        "set \"bad name\"",
        &["invalid set name \"bad name\": use 1-32 letters, digits, '_' or '-'"],
    );
    rejects(
        ruleset(
            vec![],
            vec![],
            vec![map("bad.map", &[K::Ifname], None, vec![])],
        ),
        "map \"bad.map\"",
        &["invalid map name \"bad.map\": use 1-32 letters, digits, '_' or '-'"],
    );
}

#[test]
fn flags_the_kernel_refuses_are_refused() {
    let mut s = set("s", &[K::Ifname], vec![]);
    s.intervals = true;
    rejects(
        only_sets(vec![s]),
        "set \"s\"",
        &["intervals on a key of ifname alone"],
    );
    let mut s = set("s", &[K::Ipv4Addr], vec![]);
    s.timeout = Some(0);
    rejects(only_sets(vec![s]), "set \"s\"", &["timeout 0"]);
    let mut s = set("s", &[K::Ipv4Addr], vec![]);
    s.size = Some(0);
    rejects(only_sets(vec![s]), "set \"s\"", &["size 0"]);
    let mut s = set("s", &[K::Ipv4Addr], vec![]);
    s.dynamic = true;
    s.intervals = true;
    s.size = Some(10);
    rejects(
        only_sets(vec![s]),
        "set \"s\"",
        &["a dynamic set cannot have intervals"],
    );
    let mut s = set("s", &[K::Ipv4Addr], vec![]);
    s.dynamic = true;
    rejects(
        only_sets(vec![s]),
        "set \"s\"",
        &["a dynamic set needs a size"],
    );
}

#[test]
fn more_elements_than_the_size_are_refused() {
    let mut s = set(
        "s",
        &[K::Ipv4Addr],
        vec![
            vec![a("10.0.0.1")],
            vec![a("10.0.0.2")],
            vec![a("10.0.0.3")],
        ],
    );
    s.size = Some(2);
    rejects(
        only_sets(vec![s]),
        "set \"s\"",
        &["holds 3 elements; its size is 2"],
    );
    // Merged intervals count once each, as the kernel counts them.
    let mut s = set(
        "s",
        &[K::Ipv4Addr],
        vec![vec![a("10.0.0.0/24")], vec![a("10.0.1.0/24")]],
    );
    s.intervals = true;
    s.size = Some(1);
    accepts(only_sets(vec![s]));
}

#[test]
fn elements_are_checked_against_the_key() {
    rejects(
        only_sets(vec![set(
            "s",
            &[K::Ipv4Addr],
            vec![vec![a("10.0.0.1")], vec![a("10.0.0.0/8")]],
        )]),
        "set \"s\" element 2",
        &["prefix \"10.0.0.0/8\" needs intervals here"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::Ipv4Addr, K::InetService],
            vec![vec![a("10.0.0.1")]],
        )]),
        "set \"s\" element 1",
        &["has 1 value(s); the key (ipv4_addr . inet_service) has 2"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::Mark],
            vec![vec![n(1)], vec![a("10.0.0.1")]],
        )]),
        "set \"s\" element 2",
        &["\"10.0.0.1\" is not a mark"],
    );
}

/// Each kind of value a set element may be, refused at its element when
/// it is not one of the key's type.
#[test]
fn element_values_are_checked_against_their_type() {
    let range = |first: &str, last: &str| V::AddressRange((first.into(), last.into()));
    let intervals = |mut s: wit::NamedSet| {
        s.intervals = true;
        s
    };
    rejects(
        only_sets(vec![intervals(set(
            "s",
            &[K::Ipv4Addr],
            vec![vec![range("10.0.0.1", "fd00::1")]],
        ))]),
        "set \"s\" element 1",
        &["\"fd00::1\" is not an IPv4 address"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::Ipv4Addr],
            vec![vec![a("10.0.0.20")], vec![range("10.0.0.1", "10.0.0.9")]],
        )]),
        "set \"s\" element 2",
        &["range \"10.0.0.1\"-\"10.0.0.9\" needs intervals here"],
    );
    rejects(
        only_sets(vec![intervals(set(
            "s",
            &[K::Ipv4Addr],
            vec![vec![range("10.0.0.9", "10.0.0.1")]],
        ))]),
        "set \"s\" element 1",
        &["range \"10.0.0.9\"-\"10.0.0.1\" is empty (last < first)"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::InetService],
            vec![vec![V::NumberRange((1000, 2000))]],
        )]),
        "set \"s\" element 1",
        &["range 1000-2000 needs intervals here"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::IcmpType],
            vec![vec![n(8)], vec![n(256)]],
        )]),
        "set \"s\" element 2",
        &["256 is out of range for icmp_type (0-255)"],
    );
    rejects(
        only_sets(vec![set("s", &[K::Ifname], vec![vec![name("lan 0")]])]),
        "set \"s\" element 1",
        &["interface name \"lan 0\" contains '/', ':', a space or NUL"],
    );
    rejects(
        only_sets(vec![set(
            "s",
            &[K::EtherAddr],
            vec![vec![V::Mac("52:54:00:12:34".into())]],
        )]),
        "set \"s\" element 1",
        &["\"52:54:00:12:34\" is not a hardware address (like 52:54:00:12:34:56)"],
    );
}

#[test]
fn overlapping_concatenated_intervals_are_refused() {
    let mut s = set(
        "s",
        &[K::Ipv4Addr, K::InetService],
        vec![
            vec![a("10.0.0.0/8"), V::NumberRange((1, 1024))],
            vec![a("192.168.0.1"), n(80)],
            vec![a("10.1.0.0/16"), n(22)],
        ],
    );
    s.intervals = true;
    rejects(
        only_sets(vec![s.clone()]),
        "set \"s\" element 3",
        &["10.1.0.0/16 . 22 overlaps element 1 (10.0.0.0/8 . 1-1024)"],
    );
    // Apart in one part is apart.
    s.elements[2][1] = n(2000);
    accepts(only_sets(vec![s]));
}

#[test]
fn one_part_intervals_are_merged_and_written_in_one_form() {
    let mut s = set(
        "s",
        &[K::Ipv4Addr],
        vec![
            vec![a("10.0.0.0/24")],
            vec![V::AddressRange(("10.0.1.0".into(), "10.0.1.255".into()))],
            vec![a("10.0.0.7")],
            vec![a("192.168.0.1")],
        ],
    );
    s.intervals = true;
    let ir = accepts(only_sets(vec![s]));
    assert_eq!(ir.sets[0].elements.texts(), ["192.168.0.1", "10.0.0.0/23"]);
    let mut c = set(
        "c",
        &[K::Ipv4Addr, K::InetService],
        vec![vec![
            V::AddressRange(("10.0.0.0".into(), "10.255.255.255".into())),
            V::NumberRange((80, 80)),
        ]],
    );
    c.intervals = true;
    let ir = accepts(only_sets(vec![c]));
    assert_eq!(ir.sets[0].elements.texts(), ["10.0.0.0/8 . 80"]);
}

#[test]
fn sets_and_maps_share_names() {
    rejects(
        ruleset(
            vec![],
            vec![set("x", &[K::Ipv4Addr], vec![])],
            vec![map("x", &[K::Ifname], None, vec![])],
        ),
        "map \"x\"",
        &["defined twice (sets and maps share names)"],
    );
}

fn one_chain_map(m: wit::NamedMap) -> wit::Ruleset {
    ruleset(
        vec![regular("lan_in", vec![]), input(vec![])],
        vec![],
        vec![m],
    )
}

#[test]
fn a_map_key_twice_is_refused() {
    let m = map(
        "m",
        &[K::InetService],
        Some(&[K::Ipv4Addr]),
        vec![
            to(vec![n(80)], values(vec![a("10.0.0.1")])),
            to(vec![n(80)], values(vec![a("10.0.0.2")])),
        ],
    );
    rejects(
        one_chain_map(m),
        "map \"m\" element 2",
        &["maps key 80 to other data than element 1 does"],
    );
    let same = map(
        "m",
        &[K::InetService],
        Some(&[K::Ipv4Addr]),
        vec![
            to(vec![n(80)], values(vec![a("10.0.0.1")])),
            to(vec![n(80)], values(vec![a("10.0.0.1")])),
        ],
    );
    assert_eq!(accepts(one_chain_map(same)).sets[0].elements.len(), 1);
}

#[test]
fn a_map_has_at_most_max_set_elements() {
    let elements = |count: u32| {
        (1..=count)
            .map(|p| to(vec![n(p)], verdict(wit::Verdict::Accept)))
            .collect()
    };
    accepts(one_chain_map(map(
        "m",
        &[K::InetService],
        None,
        elements(50),
    )));
    rejects(
        one_chain_map(map("m", &[K::InetService], None, elements(51))),
        "map \"m\"",
        &["has 51 elements; the limit is 50 (limits.max_set_elements)"],
    );
}

#[test]
fn verdicts_name_regular_chains_of_the_policy() {
    let m = |v| {
        map(
            "m",
            &[K::Ifname],
            None,
            vec![to(vec![name("lan0")], verdict(v))],
        )
    };
    rejects(
        one_chain_map(m(wit::Verdict::Jump("nope".into()))),
        "map \"m\" element 1",
        &["jump to unknown chain \"nope\""],
    );
    rejects(
        one_chain_map(m(wit::Verdict::Goto("input".into()))),
        "map \"m\" element 1",
        &["goto to base chain \"input\""],
    );
    let ir = accepts(one_chain_map(m(wit::Verdict::Jump("lan_in".into()))));
    assert_eq!(ir.sets[0].elements.texts(), ["\"lan0\" : jump lan_in"]);
}

#[test]
fn data_must_fit_the_map() {
    rejects(
        one_chain_map(map(
            "m",
            &[K::Ifname],
            None,
            vec![to(vec![name("a")], values(vec![n(1)]))],
        )),
        "map \"m\" element 1",
        &["has data values; this map maps keys to verdicts"],
    );
    rejects(
        one_chain_map(map(
            "m",
            &[K::Ifname],
            Some(&[K::Ipv4Addr]),
            vec![to(vec![name("a")], verdict(wit::Verdict::Drop))],
        )),
        "map \"m\" element 1",
        &["has a verdict; this map maps keys to ipv4_addr"],
    );
    rejects(
        one_chain_map(map(
            "m",
            &[K::Ifname],
            Some(&[K::Ipv4Addr]),
            vec![to(vec![name("a")], values(vec![a("fd00::1")]))],
        )),
        "map \"m\" element 1",
        &["\"fd00::1\" is not an IPv4 address"],
    );
    rejects(
        one_chain_map(map("m", &[K::Ifname], Some(&[]), vec![])),
        "map \"m\"",
        &["has no data type"],
    );
    rejects(
        one_chain_map(map("m", &[K::Ifname], Some(&[K::Ipv6Addr; 5]), vec![])),
        "map \"m\"",
        &["its data (ipv6_addr . ipv6_addr . ipv6_addr . ipv6_addr . ipv6_addr) takes 80 bytes"],
    );
}

#[test]
fn overlapping_map_intervals_are_refused() {
    let mut m = map(
        "m",
        &[K::Ipv4Addr],
        Some(&[K::Ipv4Addr]),
        vec![
            to(vec![a("10.0.0.0/8")], values(vec![a("1.1.1.1")])),
            to(vec![a("10.1.2.3")], values(vec![a("1.1.1.2")])),
        ],
    );
    m.intervals = true;
    rejects(
        one_chain_map(m),
        "map \"m\" element 2",
        &["10.1.2.3 overlaps element 1 (10.0.0.0/8)"],
    );
}

fn fwds(data: &[K]) -> wit::NamedMap {
    let value = if data.len() == 2 {
        vec![a("192.168.1.10"), n(80)]
    } else {
        vec![a(if data[0] == K::Ipv6Addr {
            "fd00::1"
        } else {
            "192.168.1.10"
        })]
    };
    map(
        "fwds",
        &[K::InetService],
        Some(data),
        vec![to(vec![n(8080)], values(value))],
    )
}

#[test]
fn a_map_action_names_a_map_of_its_kind() {
    let vmap = |m: &str| wit::Action::Vmap(lookup(vec![wit::Field::Iifname], named(m)));
    rejects(
        ruleset(vec![input(vec![rule(vec![], vmap("m"))])], vec![], vec![]),
        "chain \"input\" rule 1",
        &["vmap looks up unknown map \"m\""],
    );
    rejects(
        ruleset(
            vec![input(vec![rule(vec![], vmap("s"))])],
            vec![set("s", &[K::Ifname], vec![])],
            vec![],
        ),
        "chain \"input\" rule 1",
        &["vmap looks up \"s\", which is a set, not a map"],
    );
    rejects(
        ruleset(
            vec![input(vec![rule(vec![], vmap("fwds"))])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"input\" rule 1",
        &["map \"fwds\" maps inet_service : ipv4_addr; vmap needs a map to verdicts"],
    );
    let verdicts = map("v", &[K::InetService], None, vec![]);
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![],
                dnat_map(vec![TCP_DPORT], named("v")),
            )])],
            vec![],
            vec![verdicts],
        ),
        "chain \"pre\" rule 1",
        &[
            "map \"v\" maps inet_service : verdict; dnat ip needs a map to ipv4_addr or ipv4_addr . inet_service",
        ],
    );
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![],
                dnat_map(vec![TCP_DPORT], named("fwds")),
            )])],
            vec![],
            vec![fwds(&[K::Ipv6Addr])],
        ),
        "chain \"pre\" rule 1",
        &["map \"fwds\" maps inet_service : ipv6_addr; dnat ip needs"],
    );
}

#[test]
fn the_key_must_fit_the_map() {
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![],
                dnat_map(vec![wit::Field::Saddr(wit::IpFamily::Ipv4)], named("fwds")),
            )])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"pre\" rule 1",
        &["the key ip saddr (ipv4_addr) does not fit map \"fwds\" (key inet_service)"],
    );
    rejects(
        ruleset(
            vec![input(vec![rule(
                vec![],
                wit::Action::Vmap(lookup(vec![], named("m"))),
            )])],
            vec![],
            vec![map("m", &[K::Ifname], None, vec![])],
        ),
        "chain \"input\" rule 1",
        &["a map lookup needs at least one field"],
    );
    let mixed = vec![
        wit::Field::Saddr(wit::IpFamily::Ipv4),
        wit::Field::Daddr(wit::IpFamily::Ipv6),
    ];
    rejects(
        ruleset(
            vec![input(vec![rule(
                vec![],
                wit::Action::Vmap(lookup(mixed, named("m"))),
            )])],
            vec![],
            vec![map("m", &[K::Ipv4Addr, K::Ipv6Addr], None, vec![])],
        ),
        "chain \"input\" rule 1",
        &["the map's key mixes IPv4 and IPv6 fields"],
    );
    let dscp = wit::Action::Vmap(lookup(
        vec![wit::Field::Dscp(wit::IpFamily::Ipv4)],
        wit::MapSource::Inline(vec![to(vec![n(8)], verdict(wit::Verdict::Accept))]),
    ));
    rejects(
        ruleset(vec![input(vec![rule(vec![], dscp)])], vec![], vec![]),
        "chain \"input\" rule 1",
        &["a map cannot be keyed by a DSCP"],
    );
}

#[test]
fn nat_maps_only_where_nat_is_allowed() {
    rejects(
        ruleset(
            vec![input(vec![rule(
                vec![],
                dnat_map(vec![TCP_DPORT], named("fwds")),
            )])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"input\" rule 1",
        &["dnat is only allowed in nat chains on prerouting or output"],
    );
    let snat = wit::Action::SnatMap(wit::NatMap {
        family: wit::IpFamily::Ipv4,
        lookup: lookup(vec![TCP_DPORT], named("fwds")),
    });
    rejects(
        ruleset(
            vec![prerouting(vec![rule(vec![], snat)])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"pre\" rule 1",
        &["snat is only allowed in nat chains on postrouting or input"],
    );
}

#[test]
fn nat_maps_fit_the_rules_family_and_ports() {
    let saddr = wit::Field::Saddr(wit::IpFamily::Ipv4);
    let by_addr = map(
        "m",
        &[K::Ipv4Addr],
        Some(&[K::Ipv4Addr, K::InetService]),
        vec![to(
            vec![a("10.0.0.1")],
            values(vec![a("192.168.1.10"), n(80)]),
        )],
    );
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![],
                dnat_map(vec![saddr], named("m")),
            )])],
            vec![],
            vec![by_addr.clone()],
        ),
        "chain \"pre\" rule 1",
        &["dnat to a port needs a tcp or udp match in the rule, or a port in the key"],
    );
    let tcp = wit::Matcher::L4proto(wit::L4Protocol::Tcp);
    accepts(ruleset(
        vec![prerouting(vec![rule(
            vec![tcp],
            dnat_map(vec![saddr], named("m")),
        )])],
        vec![],
        vec![by_addr],
    ));
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![wit::Matcher::Saddr("fd00::/8".into())],
                dnat_map(vec![TCP_DPORT], named("fwds")),
            )])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"pre\" rule 1",
        &["dnat ip translates IPv4 packets, but the rule matches IPv6 packets"],
    );
    rejects(
        ruleset(
            vec![prerouting(vec![rule(
                vec![],
                dnat_map(vec![wit::Field::Saddr(wit::IpFamily::Ipv6)], named("fwds")),
            )])],
            vec![],
            vec![fwds(&[K::Ipv4Addr])],
        ),
        "chain \"pre\" rule 1",
        &["dnat ip translates IPv4 packets, but its key reads IPv6 fields"],
    );
}

#[test]
fn inline_maps_are_checked_like_named_ones() {
    let inline = |elements| {
        wit::Action::Vmap(lookup(
            vec![wit::Field::Iifname],
            wit::MapSource::Inline(elements),
        ))
    };
    rejects(
        ruleset(
            vec![input(vec![rule(vec![], inline(vec![]))])],
            vec![],
            vec![],
        ),
        "chain \"input\" rule 1 vmap map",
        &["has no elements"],
    );
    rejects(
        ruleset(
            vec![input(vec![rule(
                vec![],
                inline(vec![to(
                    vec![name("lan0")],
                    verdict(wit::Verdict::Jump("x".into())),
                )]),
            )])],
            vec![],
            vec![],
        ),
        "chain \"input\" rule 1 vmap map element 1",
        &["jump to unknown chain \"x\""],
    );
    let ok = inline(vec![
        to(vec![name("x")], verdict(wit::Verdict::Drop)),
        to(
            vec![name("lan0")],
            verdict(wit::Verdict::Jump("lan_in".into())),
        ),
    ]);
    let ir = accepts(ruleset(
        vec![regular("lan_in", vec![]), input(vec![rule(vec![], ok)])],
        vec![],
        vec![],
    ));
    assert_eq!(
        ir.chains[1].rules[0].to_string(),
        "iifname vmap { \"x\" : drop, \"lan0\" : jump lan_in }"
    );
    let nat = dnat_map(
        vec![TCP_DPORT],
        wit::MapSource::Inline(vec![
            to(vec![n(8080)], values(vec![a("192.168.1.10"), n(80)])),
            to(vec![n(2222)], values(vec![a("192.168.1.11")])),
        ]),
    );
    rejects(
        ruleset(vec![prerouting(vec![rule(vec![], nat)])], vec![], vec![]),
        "chain \"pre\" rule 1 dnat map element 2",
        &["has 1 data value(s); the map's data (ipv4_addr . inet_service) has 2"],
    );
}

/// A vmap by interface on map "m", and "m" jumping to `chain` for lan0.
fn vmap_jumping_to(chain: &str) -> (wit::Action, wit::NamedMap) {
    let vmap = wit::Action::Vmap(lookup(vec![wit::Field::Iifname], named("m")));
    let jump = verdict(wit::Verdict::Jump(chain.into()));
    let m = map("m", &[K::Ifname], None, vec![to(vec![name("lan0")], jump)]);
    (vmap, m)
}

#[test]
fn a_loop_through_a_verdict_map_is_a_jump_loop() {
    let (vmap, m) = vmap_jumping_to("a");
    rejects(
        ruleset(
            vec![
                input(vec![rule(vec![], wit::Action::Jump("a".into()))]),
                regular("a", vec![rule(vec![], wit::Action::Jump("b".into()))]),
                regular("b", vec![rule(vec![], vmap)]),
            ],
            vec![],
            vec![m],
        ),
        "chain \"a\"",
        &["jump loop: a -> b -> a"],
    );
}

#[test]
fn a_chain_reached_through_a_map_runs_in_its_callers_hooks() {
    // The chain jumped to by the vmap of a filter chain on input runs on
    // input: a dnat there is refused, naming the hook.
    let (vmap, m) = vmap_jumping_to("lan_in");
    let dnat = wit::Action::Dnat(wit::NatTarget {
        address: "10.0.0.1".into(),
        last_address: None,
        ports: None,
        flags: wit::NatFlags::empty(),
    });
    rejects(
        ruleset(
            vec![
                input(vec![rule(vec![], vmap)]),
                regular("lan_in", vec![rule(vec![], dnat)]),
            ],
            vec![],
            vec![m],
        ),
        "chain \"lan_in\" rule 1",
        &["dnat is only allowed in nat chains", "filter input"],
    );
}
