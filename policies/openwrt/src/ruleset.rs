//! The ruleset, laid out as fw4's ruleset template lays out its table: the
//! base chains and their jumps into each zone's chains, the zones' verdict
//! chains, NAT, raw and mangle chains, with the rules the sections placed
//! (`Placed`) where the template puts each chain's rules; and the objects
//! (helpers, sets, the zones' log limits, the flowtable).

use wasmwall_sdk::{
    Chain, ChainPolicy, CtHelper, CtState, CtStatus, Field, Flowtable, Hook, IpFamily, L4Protocol,
    Log, NamedSet, PriorityName, RateLimit, Rule, RuleBuilder, Ruleset, TcpFlags, Value,
    Verdict as SdkVerdict, WorldState,
};

use crate::error::Warnings;
use crate::helpers::HELPERS;
use crate::placed::Placed;
use crate::zones::{Defaults, Need, Verdict, Zone, ZoneMatch, Zones, family_text};

/// Where the sections' rules and objects are, for the layout.
pub struct Parts<'a> {
    pub defaults: &'a Defaults,
    pub zones: &'a Zones,
    pub placed: &'a Placed,
    pub sets: Vec<NamedSet>,
    pub state: &'a WorldState,
}

/// fw4's interface of loopback (fw4 reads the device's flags; the world
/// state has no flags, and loopback is `lo` in every namespace).
const LOOPBACK: &str = "lo";

/// The whole ruleset.
pub fn build(parts: &Parts, warnings: &mut Warnings) -> Ruleset {
    let Parts {
        defaults: d,
        zones,
        placed,
        ..
    } = parts;
    let mut rs = Ruleset::new();

    let offload = offload_devices(parts);
    if !offload.is_empty() {
        let hw = &parts.state.features.hardware_offload;
        let mut ft = Flowtable::new("ft", offload.clone());
        if d.flow_offloading_hw {
            if offload.iter().all(|dev| hw.contains(dev)) {
                ft = ft.offload_in_hardware();
            } else {
                warnings.0.push(format!(
                    "flow_offloading_hw: not every device of the flowtable ({}) can offload in hardware; offloading in software, as fw4 falls back",
                    offload.join(", ")
                ));
            }
        }
        rs = rs.flowtable(ft);
    }
    for h in HELPERS
        .iter()
        .filter(|h| parts.state.features.has_ct_helper(h.name))
    {
        rs = rs.ct_helper(CtHelper::new(h.object(), h.name, h.proto));
    }
    for set in &parts.sets {
        rs = rs.set(set.clone());
    }
    for z in zones.0.iter() {
        if let Some(r) = z.log_limit {
            rs = rs.named_limit(z.log_limit_name(), RateLimit::within(r));
        }
    }

    // input
    let mut input = base("input", Hook::Input, d.input).rule(
        Rule::new()
            .iifname(LOOPBACK)
            .comment(c("Accept traffic from loopback"))
            .accept(),
    );
    input = flows(input, d, "Handle inbound flows");
    if d.synflood_protect {
        input = input.rule(
            Rule::new()
                .tcp_flags(
                    TcpFlags::SYN,
                    TcpFlags::FIN | TcpFlags::SYN | TcpFlags::RST | TcpFlags::ACK,
                )
                .comment(c("Rate limit TCP syn packets"))
                .jump("syn_flood"),
        );
    }
    input = input.extend(placed.of("input"));
    input = input.extend(zone_jumps(zones, "input", |_| true, |m| Some(m.clone())));
    if d.input == Verdict::Reject {
        input = input.rule(Rule::new().jump("handle_reject"));
    }
    rs = rs.chain(input);

    // forward
    let mut forward = base("forward", Hook::Forward, d.forward);
    if rs.flowtables().iter().any(|f| f.name() == "ft") {
        forward = forward.rule(
            Rule::new()
                .test(
                    Field::L4proto,
                    [Value::from(L4Protocol::Tcp), Value::from(L4Protocol::Udp)],
                )
                .offload("ft")
                .continue_(),
        );
    }
    forward = flows(forward, d, "Handle forwarded flows");
    forward = forward.extend(placed.of("forward"));
    forward = forward.extend(zone_jumps(zones, "forward", |_| true, |m| Some(m.clone())));
    if d.forward == Verdict::Reject {
        forward = forward.rule(Rule::new().jump("handle_reject"));
    }
    rs = rs.chain(forward);

    // output
    let mut output = base("output", Hook::Output, d.output).rule(
        Rule::new()
            .oifname(LOOPBACK)
            .comment(c("Accept traffic towards loopback"))
            .accept(),
    );
    output = flows(output, d, "Handle outbound flows");
    output = output.extend(placed.of("output"));
    for z in &zones.0 {
        for m in &z.matches {
            if z.dflags.contains(&Need::Helper)
                && let Some(lo) = loopback_only(m, true)
            {
                output = output.rule(zone_jump(z, &lo, "helper"));
            }
            output = output.rule(zone_jump(z, m, "output"));
        }
    }
    if d.output == Verdict::Reject {
        output = output.rule(Rule::new().jump("handle_reject"));
    }
    rs = rs.chain(output);

    // prerouting: the helper assignments
    let pre = zone_jumps(
        zones,
        "helper",
        |z| z.dflags.contains(&Need::Helper),
        |m| loopback_only(m, false),
    );
    rs = rs.chain(Chain::filter("prerouting", Hook::Prerouting, PriorityName::Filter).extend(pre));

    // fw4 always writes handle_reject; here it goes in where a rule jumps
    // to it (a reject must be reached from a filter hook).
    let rejects = rs
        .chains()
        .iter()
        .flat_map(|ch| ch.rules())
        .any(jumps_to_reject)
        || zones.0.iter().any(|z| {
            z.sflags.contains(&Need::Verdict(Verdict::Reject))
                || z.dflags.contains(&Need::Verdict(Verdict::Reject))
        })
        || placed.any(jumps_to_reject);
    if rejects {
        rs = rs.chain(handle_reject(d));
    }
    if d.synflood_protect {
        rs = rs.chain(
            Chain::regular("syn_flood")
                .rule(
                    Rule::new()
                        .limit(d.synflood_rate.burst(d.synflood_burst))
                        .comment(c("Accept SYN packets below rate-limit"))
                        .return_(),
                )
                .rule(Rule::new().comment(c("Drop excess packets")).drop()),
        );
    }

    for z in &zones.0 {
        rs = zone_chains(rs, z, d, placed);
    }

    // NAT
    let dnat = zone_jumps(
        zones,
        "dstnat",
        |z| z.dflags.contains(&Need::Dnat),
        |m| Some(m.clone()),
    );
    let srcnat = placed
        .of("srcnat")
        .chain(zone_jumps(
            zones,
            "srcnat",
            |z| z.dflags.contains(&Need::Snat),
            |m| Some(m.clone()),
        ))
        .collect::<Vec<_>>();
    rs = base_if_any(
        rs,
        Chain::nat("dstnat", Hook::Prerouting, PriorityName::Dstnat),
        dnat,
    );
    rs = base_if_any(
        rs,
        Chain::nat("srcnat", Hook::Postrouting, PriorityName::Srcnat),
        srcnat,
    );
    for z in &zones.0 {
        if z.dflags.contains(&Need::Dnat) {
            let name = format!("dstnat_{}", z.name);
            rs = rs.chain(Chain::regular(&name).extend(placed.of(&name)));
        }
        if z.dflags.contains(&Need::Snat) {
            let name = format!("srcnat_{}", z.name);
            let chain = Chain::regular(&name)
                .extend(placed.of(&name))
                .extend(masquerades(z));
            rs = rs.chain(chain);
        }
    }

    // raw: conntrack bypass
    let notrack = |z: &Zone| z.dflags.contains(&Need::Notrack);
    let raw_pre = zone_jumps(zones, "notrack", notrack, |m| loopback_only(m, false));
    let raw_out = zones
        .0
        .iter()
        .filter(|z| notrack(z))
        .flat_map(|z| {
            z.matches
                .iter()
                .filter_map(|m| loopback_only(m, true).map(|lo| zone_jump(z, &lo, "notrack")))
        })
        .collect::<Vec<_>>();
    let raw = |name, hook| Chain::filter(name, hook, PriorityName::Raw);
    rs = base_if_any(rs, raw("raw_prerouting", Hook::Prerouting), raw_pre);
    rs = base_if_any(rs, raw("raw_output", Hook::Output), raw_out);
    for z in zones.0.iter().filter(|z| notrack(z)) {
        let name = format!("notrack_{}", z.name);
        rs = rs.chain(Chain::regular(&name).extend(placed.of(&name)));
    }

    // mangle
    let mangle = |name, hook| Chain::filter(name, hook, PriorityName::Mangle);
    let mss = |egress| {
        zones
            .0
            .iter()
            .filter(|z| z.mtu_fix)
            .flat_map(move |z| z.matches.iter().map(move |m| mss_fix(z, m, egress)))
    };
    rs = base_if_any(
        rs,
        mangle("mangle_prerouting", Hook::Prerouting),
        placed.of("mangle_prerouting").collect(),
    );
    rs = base_if_any(
        rs,
        mangle("mangle_postrouting", Hook::Postrouting),
        placed.of("mangle_postrouting").chain(mss(true)).collect(),
    );
    rs = base_if_any(
        rs,
        mangle("mangle_input", Hook::Input),
        placed.of("mangle_input").collect(),
    );
    rs = base_if_any(
        rs,
        Chain::route("mangle_output", PriorityName::Mangle),
        placed.of("mangle_output").collect(),
    );
    rs = base_if_any(
        rs,
        mangle("mangle_forward", Hook::Forward),
        placed.of("mangle_forward").chain(mss(false)).collect(),
    );
    rs
}

/// `!fw4: TEXT`, fw4's comments.
fn c(text: &str) -> String {
    format!("!fw4: {text}")
}

/// A filter base chain with a default policy (a reject is a drop at the
/// end of the chain, after `jump handle_reject`).
fn base(name: &str, hook: Hook, policy: Verdict) -> Chain {
    let policy = match policy {
        Verdict::Accept => ChainPolicy::Accept,
        _ => ChainPolicy::Drop,
    };
    Chain::filter(name, hook, PriorityName::Filter).policy(policy)
}

/// A base chain with no policy of its own goes in only when it has rules:
/// fw4 always writes them, but an empty chain on a hook costs every
/// packet a visit for nothing.
fn base_if_any(rs: Ruleset, chain: Chain, rules: Vec<Rule>) -> Ruleset {
    if rules.is_empty() {
        rs
    } else {
        rs.chain(chain.extend(rules))
    }
}

/// Established and related flows accepted, invalid ones dropped with
/// `drop_invalid` (fw4's `ct state vmap`, which the contract says as two
/// rules).
fn flows(chain: Chain, d: &Defaults, what: &str) -> Chain {
    let chain = chain.rule(
        Rule::new()
            .ct_state([CtState::Established, CtState::Related])
            .comment(c(what))
            .accept(),
    );
    if d.drop_invalid {
        chain.rule(
            Rule::new()
                .ct_state([CtState::Invalid])
                .comment(c(what))
                .drop(),
        )
    } else {
        chain
    }
}

fn jumps_to_reject(r: &Rule) -> bool {
    matches!(r.verdict(), SdkVerdict::Jump(c) | SdkVerdict::Goto(c) if c == "handle_reject")
}

fn handle_reject(d: &Defaults) -> Chain {
    Chain::regular("handle_reject")
        .rule(
            Rule::new()
                .l4proto(L4Protocol::Tcp)
                .comment(c("Reject TCP traffic"))
                .reject_with(d.tcp_reject_code),
        )
        .rule(
            Rule::new()
                .comment(c("Reject any other traffic"))
                .reject_with(d.any_reject_code),
        )
}

/// The zone-match part: the zone's devices and subnets, as the packet's
/// input (ingress) or output (egress).
fn zone_match(mut r: RuleBuilder, m: &ZoneMatch, egress: bool) -> RuleBuilder {
    let dev = if egress {
        Field::Oifname
    } else {
        Field::Iifname
    };
    if !m.devices_pos.is_empty() {
        r = r.test(dev, m.devices_pos.iter().map(Value::name));
    }
    if !m.devices_neg.is_empty() {
        r = r.not_test(dev, m.devices_neg.iter().map(Value::name));
    }
    for w in &m.devices_neg_wildcard {
        r = r.not_test(dev, [Value::name(w)]);
    }
    if let Some(family) = m.family {
        let addr = if egress {
            Field::Daddr(family)
        } else {
            Field::Saddr(family)
        };
        r = subnet_tests(r, addr, &m.subnets_pos, &m.subnets_neg, &m.subnets_masked);
    }
    r
}

/// Tests of an address field: in the positive subnets, in none of the
/// negated ones, and each masked one.
pub fn subnet_tests(
    mut r: RuleBuilder,
    field: Field,
    pos: &[crate::addr::Subnet],
    neg: &[crate::addr::Subnet],
    masked: &[crate::addr::Subnet],
) -> RuleBuilder {
    if !pos.is_empty() {
        r = r.test(field, pos.iter().map(|n| Value::address(n.cidr())));
    }
    if !neg.is_empty() {
        r = r.not_test(field, neg.iter().map(|n| Value::address(n.cidr())));
    }
    for n in masked {
        let (mask, addr) = (Value::from(n.mask), Value::from(n.addr));
        r = if n.invert {
            r.not_matching(wasmwall_sdk::Matcher::Masked {
                field,
                mask,
                value: addr,
            })
        } else {
            r.masked(field, mask, addr)
        };
    }
    r
}

fn with_family(r: RuleBuilder, family: Option<IpFamily>) -> RuleBuilder {
    match family {
        Some(f) => r.nfproto(f),
        None => r,
    }
}

/// fw4's zone-jump: into the zone's chain of this direction.
fn zone_jump(z: &Zone, m: &ZoneMatch, direction: &str) -> Rule {
    let egress = matches!(direction, "output" | "srcnat");
    let r = zone_match(with_family(Rule::new(), m.family), m, egress);
    let what = if direction == "helper" {
        "assignment"
    } else {
        "traffic"
    };
    r.comment(c(&format!(
        "Handle {} {} {direction} {what}",
        z.name,
        family_text(m.family)
    )))
    .jump(format!("{direction}_{}", z.name))
}

/// The jumps of every zone `which` takes into its chains of `direction`,
/// through each of its matches `pick` keeps (and changes).
fn zone_jumps(
    zones: &Zones,
    direction: &str,
    which: impl Fn(&Zone) -> bool,
    pick: impl Fn(&ZoneMatch) -> Option<ZoneMatch>,
) -> Vec<Rule> {
    zones
        .0
        .iter()
        .filter(|z| which(z))
        .flat_map(|z| {
            z.matches
                .iter()
                .filter_map(|m| pick(m).map(|m| zone_jump(z, &m, direction)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// fw4's split of a zone's match between the chains that see locally made
/// packets (only the loopback devices and addresses, `loopback`) and
/// those that see packets from outside (everything else); None when
/// nothing is left to match.
fn loopback_only(m: &ZoneMatch, loopback: bool) -> Option<ZoneMatch> {
    let is_lo_addr = |n: &crate::addr::Subnet| {
        let text = n.cidr();
        text.starts_with("127.") || text == "::1"
    };
    let devices_pos: Vec<String> = m
        .devices_pos
        .iter()
        .filter(|d| (d.as_str() == LOOPBACK) == loopback)
        .cloned()
        .collect();
    let subnets_pos: Vec<_> = m
        .subnets_pos
        .iter()
        .filter(|n| is_lo_addr(n) == loopback)
        .cloned()
        .collect();
    let keep = if loopback {
        !devices_pos.is_empty() || !subnets_pos.is_empty()
    } else {
        !m.devices_neg.is_empty()
            || !m.subnets_neg.is_empty()
            || !devices_pos.is_empty()
            || !subnets_pos.is_empty()
    };
    keep.then(|| ZoneMatch {
        devices_pos,
        subnets_pos,
        ..m.clone()
    })
}

/// A zone's own chains: `input_Z`, `output_Z`, `forward_Z`, `helper_Z`,
/// and the verdict chains it needs.
fn zone_chains(mut rs: Ruleset, z: &Zone, d: &Defaults, placed: &Placed) -> Ruleset {
    let n = &z.name;
    let dnat = z.dflags.contains(&Need::Dnat);

    let name = format!("input_{n}");
    let mut chain = Chain::regular(&name).extend(placed.of(&name));
    if dnat {
        chain = chain.rule(
            Rule::new()
                .ct_status(CtStatus::DNAT)
                .comment(c("Accept port redirections"))
                .accept(),
        );
    }
    rs = rs.chain(chain.rule(Rule::new().jump(format!("{}_from_{n}", z.input.word()))));

    let name = format!("output_{n}");
    let chain = Chain::regular(&name).extend(placed.of(&name));
    rs = rs.chain(chain.rule(Rule::new().jump(format!("{}_to_{n}", z.output.word()))));

    let name = format!("forward_{n}");
    let mut chain = Chain::regular(&name).extend(placed.of(&name));
    if dnat {
        chain = chain.rule(
            Rule::new()
                .ct_status(CtStatus::DNAT)
                .comment(c("Accept port forwards"))
                .accept(),
        );
    }
    chain = chain.rule(Rule::new().jump(format!("{}_to_{n}", z.forward.word())));
    if d.forward != Verdict::Accept && z.log & 1 != 0 {
        let r = match z.log_limit {
            Some(_) => Rule::new().limit_named(z.log_limit_name()),
            None => Rule::new(),
        };
        let prefix = format!("{} {n} forward: ", d.forward.word());
        chain = chain.rule(r.log(prefix).continue_());
    }
    rs = rs.chain(chain);

    if z.dflags.contains(&Need::Helper) {
        let name = format!("helper_{n}");
        rs = rs.chain(Chain::regular(&name).extend(placed.of(&name)));
    }

    for v in [Verdict::Accept, Verdict::Reject, Verdict::Drop] {
        if z.sflags.contains(&Need::Verdict(v)) {
            let rules = z.matches.iter().flat_map(|m| zone_verdict(z, m, false, v));
            rs = rs.chain(Chain::regular(format!("{}_from_{n}", v.word())).extend(rules));
        }
        if z.dflags.contains(&Need::Verdict(v)) {
            let mut chain = Chain::regular(format!("{}_to_{n}", v.word()));
            for m in &z.matches {
                if !d.drop_invalid
                    && v == Verdict::Accept
                    && (z.masq || z.masq6)
                    && !z.masq_allow_invalid
                {
                    chain = chain.extend(drop_invalid(z, m));
                }
                chain = chain.extend(zone_verdict(z, m, true, v));
            }
            rs = rs.chain(chain);
        }
    }
    rs
}

/// A zone's logging of what it refuses: with a log limit, a rule of its
/// own before the verdict's (a limited log cannot share the verdict's
/// rule); without, the log in the verdict's rule.
fn logged(
    z: &Zone,
    base: impl Fn() -> RuleBuilder,
    prefix: Option<String>,
    finish: impl Fn(RuleBuilder) -> Rule,
) -> Vec<Rule> {
    match (prefix, z.log_limit) {
        (Some(p), Some(_)) => vec![
            base().limit_named(z.log_limit_name()).log(p).continue_(),
            finish(counted(z, base())),
        ],
        (Some(p), None) => vec![finish(counted(z, base()).log(p))],
        (None, _) => vec![finish(counted(z, base()))],
    }
}

fn counted(z: &Zone, r: RuleBuilder) -> RuleBuilder {
    if z.counter { r.counter() } else { r }
}

/// fw4's zone-verdict: the zone's traffic accepted, rejected or dropped.
fn zone_verdict(z: &Zone, m: &ZoneMatch, egress: bool, v: Verdict) -> Vec<Rule> {
    let base = || zone_match(with_family(Rule::new(), m.family), m, egress);
    let prefix = (v != Verdict::Accept && z.log & 1 != 0).then(|| {
        format!(
            "{} {} {}: ",
            v.word(),
            z.name,
            if egress { "out" } else { "in" }
        )
    });
    let comment = c(&format!(
        "{} {} {} traffic",
        v.word(),
        z.name,
        family_text(m.family)
    ));
    logged(z, base, prefix, |r| {
        let r = r.comment(comment.clone());
        match v {
            Verdict::Accept => r.accept(),
            Verdict::Drop => r.drop(),
            Verdict::Reject => r.jump("handle_reject"),
        }
    })
}

/// fw4's zone-drop-invalid: invalid packets out to a masqueraded zone are
/// dropped, so that nothing leaves untranslated.
fn drop_invalid(z: &Zone, m: &ZoneMatch) -> Vec<Rule> {
    let family = match (z.masq, z.masq6) {
        (true, false) => Some(IpFamily::V4),
        (false, true) => Some(IpFamily::V6),
        _ => None,
    };
    let base =
        || zone_match(with_family(Rule::new(), family), m, true).ct_state([CtState::Invalid]);
    let prefix = (z.log & 1 != 0).then(|| format!("drop {} invalid ct state: ", z.name));
    logged(z, base, prefix, |r| {
        r.comment(c("Prevent NAT leakage")).drop()
    })
}

/// fw4's zone-mssfix: SYNs to (egress) or from (ingress) the zone get the
/// path MTU's MSS.
fn mss_fix(z: &Zone, m: &ZoneMatch, egress: bool) -> Rule {
    let mut r = zone_match(with_family(Rule::new(), m.family), m, egress)
        .tcp_flags(TcpFlags::SYN, TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST)
        .mss_clamp_to_pmtu();
    if z.log & 2 != 0 {
        r = r.log_with(Log::with_prefix(format!("MSSFIX {} out: ", z.name)));
    }
    r.comment(c(&format!(
        "Zone {} {} {} MTU fixing",
        z.name,
        family_text(m.family),
        if egress { "egress" } else { "ingress" }
    )))
    .continue_()
}

/// fw4's zone-masq: the zone's masquerade per family, limited to
/// `masq_src` and `masq_dest`.
fn masquerades(z: &Zone) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (on, family) in [(z.masq, IpFamily::V4), (z.masq6, IpFamily::V6)] {
        if !on {
            continue;
        }
        let of = |list: &[crate::addr::Subnet]| -> Vec<crate::addr::Subnet> {
            list.iter()
                .filter(|n| n.family == family)
                .cloned()
                .collect()
        };
        for (sp, sn, sm) in crate::zones::group_by_masking(&of(&z.masq_src)) {
            for (dp, dn, dm) in crate::zones::group_by_masking(&of(&z.masq_dest)) {
                let r = Rule::new().nfproto(family);
                let r = subnet_tests(r, Field::Saddr(family), &sp, &sn, &sm);
                let r = subnet_tests(r, Field::Daddr(family), &dp, &dn, &dm);
                rules.push(
                    r.comment(c(&format!(
                        "Masquerade {} {} traffic",
                        family_text(Some(family)),
                        z.name
                    )))
                    .masquerade(),
                );
            }
        }
    }
    rules
}

/// The devices of the flowtable (`flow_offloading`): the zones' devices
/// that exist, where the kernel has flowtables.
fn offload_devices(parts: &Parts) -> Vec<String> {
    if !parts.defaults.flow_offloading || !parts.state.features.has_flowtables() {
        return Vec::new();
    }
    let mut devices: Vec<String> = parts
        .zones
        .0
        .iter()
        .flat_map(|z| z.match_devices.iter())
        .filter(|d| !d.ends_with('*') && parts.state.interface(d).is_some())
        .cloned()
        .collect();
    devices.sort();
    devices.dedup();
    devices
}
