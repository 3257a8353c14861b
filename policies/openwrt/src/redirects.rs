//! `redirect` sections: port forwards (DNAT, or a redirect to the router
//! itself when there is no `dest_ip`) in the source zone's `dstnat_Z`
//! chain, source NAT (SNAT) in the destination zone's `srcnat_Z` chain,
//! and NAT reflection: a forward reached from an inner zone on the outer
//! zone's address is translated there too, and its source rewritten to the
//! router so that the answers come back through it.
//!
//! As fw4 does: `proto` defaults to `tcpudp` (one rule per protocol);
//! ports count for TCP and UDP only; `dest_port` defaults to `src_dport`;
//! a DNAT without `dest` takes the zone whose subnet holds `dest_ip`; a
//! redirect that names no family and no address is IPv4 (an explicit
//! `family any` is both); reflection (on by default) needs a masqueraded
//! source zone and the addresses of both sides, which come from the world
//! state and so follow a WAN address that changes: the rewrite source is
//! the inner zone's own address on the target's subnet (`reflection_src
//! internal`) or the outer zone's (`external`), and `reflection_zone` lists
//! the inner zones (the destination zone without it). The reflection's
//! rules carry the forward's limit, time and mark matches, not its
//! counter, log, MAC or set matches. What fw4 only warns of and skips (a
//! DNAT from `*`, a negated or masked `dest_ip`, an SNAT without
//! `src_dip`) refuses the config here.

use wasmwall_sdk::{IpFamily, NatTarget, PortRange, Rule, RuleBuilder, Transport};

use crate::addr::Subnet;
use crate::criteria::{self, Criteria, Family, Group, Instance, Options, Shape};
use crate::error::{Error, Warnings};
use crate::ipsets::{self, Ipsets};
use crate::placed::Placed;
use crate::uci::Section;
use crate::values::{self, Address, Negatable, Proto, Target};
use crate::zones::{Need, Verdict, Zone, Zones, family_text};

/// A DNAT's matches: `src_dip` and `src_dport` are the destination the
/// packet comes to.
const DNAT: Shape = Shape {
    src_ip: "src_ip",
    dest_ip: "src_dip",
    src_port: "src_port",
    dest_port: "src_dport",
    lists: false,
    icmp_and_dscp: false,
    default_proto: "tcpudp",
};

/// An SNAT's matches: `dest_ip` and `dest_port` are where it goes.
const SNAT: Shape = Shape {
    src_ip: "src_ip",
    dest_ip: "dest_ip",
    src_port: "src_port",
    dest_port: "dest_port",
    lists: false,
    icmp_and_dscp: false,
    default_proto: "tcpudp",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dnat,
    Snat,
}

/// What a translated rule rewrites to.
#[derive(Debug, Clone)]
enum Rewrite {
    /// DNAT or SNAT to this address, and port.
    To(Subnet, Option<PortRange>),
    /// To the router itself, and port (a DNAT without `dest_ip`).
    Redirect(Option<PortRange>),
}

/// One rule of a redirect, before it is rendered.
struct Planned {
    chain: String,
    /// The zone whose chain it is (for its log limit).
    zone: String,
    kind: Kind,
    inst: Instance,
    rewrite: Rewrite,
    /// A reflection rule: the forward's limit, time and mark matches only.
    reflection: bool,
    name: String,
}

/// Every enabled `redirect` section.
pub fn add_redirects(
    sections: &[Section],
    zones: &mut Zones,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    for s in sections.iter().filter(|s| s.kind == "redirect") {
        add_redirect(s, zones, ipsets, out, warnings)?;
    }
    Ok(())
}

/// A `src` or `dest`: a zone's name, or `*` (None).
fn zone_ref(zones: &Zones) -> impl Fn(&str) -> Result<Option<String>, String> + '_ {
    |text| match text {
        "*" => Ok(None),
        name if zones.get(name).is_some() => Ok(Some(name.to_string())),
        name => Err(format!("there is no zone {name:?}")),
    }
}

fn subnets(addrs: &[Address]) -> Vec<Subnet> {
    addrs
        .iter()
        .filter_map(|a| match a {
            Address::Subnet(s) => Some(s.clone()),
            Address::Range { .. } => None,
        })
        .collect()
}

fn of_family(list: &[Subnet], f: IpFamily) -> Vec<Subnet> {
    list.iter().filter(|n| n.family == f).cloned().collect()
}

fn as_addresses(list: &[Subnet]) -> Vec<Address> {
    list.iter().cloned().map(Address::Subnet).collect()
}

fn add_redirect(
    s: &Section,
    zones: &mut Zones,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    let mut opts = Options::new(s);
    if !opts.flag("enabled", true)? {
        warnings.section(s, "is disabled; ignored");
        return Ok(());
    }
    let name = opts
        .one("name", |n| Ok(n.to_string()))?
        .or_else(|| s.name.clone())
        .unwrap_or_else(|| format!("@redirect[{}]", s.index));
    opts.deprecated("_name", warnings);
    let fail = |opt: &str, message: String| match s.get(opt) {
        Some(o) => Error::option(s, o, message),
        None => Error::section(s, message),
    };
    let kind = match opts.one("target", values::parse_target)? {
        None | Some(Target::Dnat) => Kind::Dnat,
        Some(Target::Snat) => Kind::Snat,
        Some(_) => return Err(fail("target", "a redirect's target is DNAT or SNAT".into())),
    };
    let (shape, rip_opt, rport_opt) = match kind {
        Kind::Dnat => (&DNAT, "dest_ip", "dest_port"),
        Kind::Snat => (&SNAT, "src_dip", "src_dport"),
    };
    let mut crit = Criteria::read(&mut opts, shape, &name, warnings)?;
    let rip = opts.one(rip_opt, values::parse_address)?;
    let rport = opts.one(rport_opt, values::parse_port)?;
    let src = opts.one("src", zone_ref(zones))?;
    let dest = opts.one("dest", zone_ref(zones))?;
    let reflection = opts.flag("reflection", true)?;
    let internal = opts
        .one("reflection_src", |v| {
            let l = v.to_ascii_lowercase();
            if !l.is_empty() && "internal".starts_with(&l) {
                Ok(true)
            } else if !l.is_empty() && "external".starts_with(&l) {
                Ok(false)
            } else {
                Err(format!("{v:?} is not internal or external"))
            }
        })?
        .unwrap_or(true);
    let reflection_zones: Vec<String> = opts
        .many("reflection_zone", zone_ref(zones))?
        .into_iter()
        .flatten()
        .collect();
    opts.unsupported("extra", warnings);
    opts.warn_unknown(warnings);

    if let Some(Address::Range { .. }) = rip {
        return Err(fail(
            rip_opt,
            "the address to translate to cannot be a range".into(),
        ));
    }
    let rip: Vec<Subnet> = subnets(&rip.into_iter().collect::<Vec<_>>());
    if rip.iter().any(|a| a.invert) {
        return Err(fail(
            rip_opt,
            "the address to translate to cannot be negated".into(),
        ));
    }
    if rip.iter().any(|a| a.bits.is_none()) {
        return Err(fail(
            rip_opt,
            "the address to translate to cannot have a mask that is not a prefix".into(),
        ));
    }
    let mut rport = match rport {
        Some(p) if p.invert => {
            return Err(fail(
                rport_opt,
                "the port to translate to cannot be negated".into(),
            ));
        }
        p => p.map(|p| p.value),
    };
    let (src, mut dest) = (src.flatten(), dest);
    match kind {
        Kind::Dnat => {
            if s.get("src").is_none() {
                return Err(fail(
                    "src",
                    "a DNAT needs its source zone (option 'src')".into(),
                ));
            }
            if src.is_none() {
                return Err(fail(
                    "src",
                    "a DNAT's source cannot be '*': name the zone it comes from".into(),
                ));
            }
            if dest.is_none()
                && let Some(z) = rip.first().and_then(|d| {
                    zones
                        .0
                        .iter()
                        .find(|z| z.match_subnets.iter().any(|n| n.contains(d.addr)))
                })
            {
                warnings.section(
                    s,
                    format!(
                        "names no destination zone; taking {:?}, which holds dest_ip",
                        z.name
                    ),
                );
                dest = Some(Some(z.name.clone()));
            }
            if rport.is_none() {
                rport = crit.dest_ports.first().map(|p| p.value);
            }
        }
        Kind::Snat => {
            match &dest {
                None => {
                    return Err(fail(
                        "dest",
                        "an SNAT needs its destination zone (option 'dest')".into(),
                    ));
                }
                Some(None) => {
                    return Err(fail(
                        "dest",
                        "an SNAT's destination cannot be '*': name the zone it goes to".into(),
                    ));
                }
                Some(Some(_)) => {}
            }
            if rip.is_empty() {
                return Err(fail(
                    "src_dip",
                    "an SNAT needs the address to translate to (option 'src_dip')".into(),
                ));
            }
            if !crit.src_macs.is_empty() {
                return Err(fail("src_mac", "an SNAT cannot match 'src_mac'".into()));
            }
        }
    }
    let dest = dest.flatten();
    let set = crit.resolve_set(ipsets).map_err(|m| fail("ipset", m))?;

    // As fw4: a reflected forward's inner zone gets its NAT and accept
    // chains whether or not the addresses for the reflection are known
    // yet, so that they do not come and go with the WAN's address.
    if kind == Kind::Dnat
        && reflection
        && let (Some(sz), Some(dz)) = (&src, &dest)
        && zones.get(sz).is_some_and(|z| z.masq)
    {
        let z = zones.get_mut(dz).expect("a zone of the config");
        z.dflags.insert(Need::Dnat);
        z.dflags.insert(Need::Snat);
        z.dflags.insert(Need::Verdict(Verdict::Accept));
    }

    let sip = crit.src_ip.clone();
    let dip = crit.dest_ip.clone();
    let src_zone = src.as_ref().and_then(|z| zones.get(z)).cloned();
    let dest_zone = dest.as_ref().and_then(|z| zones.get(z)).cloned();
    let mut planned = Vec::new();
    for &proto in &crit.protos.clone() {
        let ported = matches!(proto, Proto::Tcp | Proto::Udp);
        let transport = match proto {
            Proto::Udp => Some(Transport::Udp),
            Proto::Tcp => Some(Transport::Tcp),
            _ => None,
        };
        let (sports, dports, rport) = if ported {
            (crit.src_ports.clone(), crit.dest_ports.clone(), rport)
        } else {
            (Vec::new(), Vec::new(), None)
        };
        let set_fields = match set {
            Some(set) => {
                let dirs = crit
                    .ipset
                    .as_ref()
                    .map(|m| m.value.dirs.clone())
                    .unwrap_or_default();
                Some(ipsets::set_fields(set, &dirs, transport).map_err(|m| fail("ipset", m))?)
            }
            None => None,
        };
        let start = match (crit.family, proto) {
            (_, Proto::Icmpv6) => Family::Only(IpFamily::V6),
            (f, _) => f,
        };
        let af = |list: &[Address]| criteria::af_of(&criteria::split_af(list));
        let family = criteria::infer_family(
            start,
            &[
                (set.and_then(|x| x.family), "set match"),
                (af(&sip), "source IP"),
                (af(&dip), "destination IP"),
                (af(&as_addresses(&rip)), "rewrite IP"),
                (src_zone.as_ref().and_then(|z| z.family), "source zone"),
                (
                    dest_zone.as_ref().and_then(|z| z.family),
                    "destination zone",
                ),
            ],
        )
        .map_err(|m| Error::section(s, m))?;
        let only = match family {
            Family::Only(f) => Some(f),
            _ => None,
        };
        let base = |f: Option<IpFamily>, saddrs: Group, daddrs: Group| Instance {
            saddrs,
            daddrs,
            sports: sports.clone(),
            dports: dports.clone(),
            set_fields: set_fields.clone(),
            verdict_port: rport.is_some(),
            ..Instance::new(f, proto)
        };

        if kind == Kind::Dnat
            && reflection
            && !rip.is_empty()
            && let (Some(sz), Some(dz)) = (&src_zone, &dest)
        {
            let eaddrs: Vec<Subnet> = if dip.is_empty() {
                sz.match_subnets.iter().map(Subnet::host_only).collect()
            } else {
                subnets(&dip)
            };
            let rzones = if reflection_zones.is_empty() {
                vec![dz.clone()]
            } else {
                reflection_zones.clone()
            };
            for rz in rzones {
                let rzone = zones.get(&rz).expect("a zone of the config");
                if let (Some(f), Some(rf)) = (only, rzone.family)
                    && f != rf
                {
                    warnings.section(
                        s,
                        format!(
                            "reflection zone {rz:?} is {} only; no reflection there",
                            family_text(Some(rf))
                        ),
                    );
                    continue;
                }
                for f in [IpFamily::V4, IpFamily::V6] {
                    if only.is_some_and(|w| w != f) {
                        continue;
                    }
                    let masq = if f == IpFamily::V4 { sz.masq } else { sz.masq6 };
                    let rip_f = of_family(&rip, f);
                    if !masq || rip_f.is_empty() {
                        continue;
                    }
                    match reflection_rules(&name, rzone, f, &rip_f[0], &eaddrs, internal) {
                        Err(problem) => warnings.section(s, problem),
                        Ok((dnat_groups, snat_groups, snat_to)) => {
                            for (saddrs, daddrs) in dnat_groups {
                                planned.push(Planned {
                                    chain: format!("dstnat_{rz}"),
                                    zone: rz.clone(),
                                    kind: Kind::Dnat,
                                    inst: Instance {
                                        set_fields: None,
                                        ..base(Some(f), saddrs, daddrs)
                                    },
                                    rewrite: Rewrite::To(rip_f[0].clone(), rport),
                                    reflection: true,
                                    name: format!("{name} (reflection)"),
                                });
                            }
                            // The SNAT matches the port the DNAT translated to.
                            let translated: Vec<Negatable<PortRange>> = rport
                                .map(|p| Negatable {
                                    invert: false,
                                    value: p,
                                })
                                .into_iter()
                                .collect();
                            for (saddrs, daddrs) in snat_groups {
                                planned.push(Planned {
                                    chain: format!("srcnat_{rz}"),
                                    zone: rz.clone(),
                                    kind: Kind::Snat,
                                    inst: Instance {
                                        saddrs,
                                        daddrs,
                                        dports: translated.clone(),
                                        ..Instance::new(Some(f), proto)
                                    },
                                    rewrite: Rewrite::To(snat_to.clone(), None),
                                    reflection: true,
                                    name: format!("{name} (reflection)"),
                                });
                            }
                        }
                    }
                }
            }
        }

        let several = |f| rip.iter().filter(|n| n.family == f).count() > 1;
        if several(IpFamily::V4) || several(IpFamily::V6) {
            warnings.section(
                s,
                "gives several addresses to translate to; the first is taken",
            );
        }
        let has = |f: IpFamily| {
            [&sip, &dip]
                .iter()
                .any(|l| l.iter().any(|a| a.family() == f))
                || rip.iter().any(|n| n.family == f)
        };
        let (has_v4, has_v6) = (has(IpFamily::V4), has(IpFamily::V6));
        let families: Vec<Option<IpFamily>> = match (family, has_v4 || has_v6) {
            (Family::Only(f), _) => vec![Some(f)],
            // fw4 takes a redirect that names no family as IPv4, and an
            // explicit `any` as both, in one rule.
            (Family::Unset, false) => vec![Some(IpFamily::V4)],
            (Family::Both, false) => vec![None],
            (_, true) => [(IpFamily::V4, has_v4), (IpFamily::V6, has_v6)]
                .into_iter()
                .filter(|(_, h)| *h)
                .map(|(f, _)| Some(f))
                .collect(),
        };
        let (chain, zone) = match kind {
            Kind::Dnat => {
                let z = src.clone().expect("checked");
                (format!("dstnat_{z}"), z)
            }
            Kind::Snat => {
                let z = dest.clone().expect("checked");
                (format!("srcnat_{z}"), z)
            }
        };
        for f in families {
            let rewrite = match f.and_then(|f| of_family(&rip, f).into_iter().next()) {
                Some(a) => Rewrite::To(a, rport),
                None if kind == Kind::Dnat => Rewrite::Redirect(rport),
                None => {
                    warnings.section(
                        s,
                        format!(
                            "has no {} address to translate to; no rule for it",
                            family_text(f)
                        ),
                    );
                    continue;
                }
            };
            let split = |list: &[Address]| match f {
                Some(f) => criteria::group_by_masking(
                    &list
                        .iter()
                        .filter(|a| a.family() == f)
                        .cloned()
                        .collect::<Vec<_>>(),
                ),
                None => vec![Group::default()],
            };
            for saddrs in split(&sip) {
                for daddrs in split(&dip) {
                    planned.push(Planned {
                        chain: chain.clone(),
                        zone: zone.clone(),
                        kind,
                        inst: base(f, saddrs.clone(), daddrs),
                        rewrite: rewrite.clone(),
                        reflection: false,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    // The source zone of a DNAT (the destination of an SNAT) has its NAT
    // chain even when no rule goes in it (no family matched), as in fw4.
    let z = zones
        .get_mut(
            match kind {
                Kind::Dnat => src.as_deref(),
                Kind::Snat => dest.as_deref(),
            }
            .expect("checked"),
        )
        .expect("a zone of the config");
    z.dflags.insert(if kind == Kind::Dnat {
        Need::Dnat
    } else {
        Need::Snat
    });

    crit.ipset = crit.ipset.filter(|_| set.is_some());
    let reflected = Criteria {
        limit: crit.limit,
        dates: crit.dates,
        hours: crit.hours,
        weekdays: crit.weekdays.clone(),
        mark: crit.mark.clone(),
        ..Criteria::default()
    };
    for p in planned {
        // As fw4's add_rule: the zone whose NAT chain a rule goes into has
        // that chain.
        if let Some(z) = zones.get_mut(&p.zone) {
            z.dflags.insert(match p.kind {
                Kind::Dnat => Need::Dnat,
                Kind::Snat => Need::Snat,
            });
        }
        let c = if p.reflection { &reflected } else { &crit };
        let matches = c.matches(&p.inst).map_err(|m| Error::section(s, m))?;
        let zone_limit = zones
            .get(&p.zone)
            .filter(|z| z.log_limit.is_some())
            .map(Zone::log_limit_name);
        let comment = format!("!fw4: {}", p.name);
        if comment.len() > 128 {
            return Err(fail(
                "name",
                format!("the comment {comment:?} is longer than 128 bytes"),
            ));
        }
        for rule in c.finish(matches, zone_limit.as_deref(), &comment, |r| {
            translate(r, p.kind, &p.rewrite)
        }) {
            out.push(p.chain.clone(), rule);
        }
    }
    Ok(())
}

/// Address groups of a reflection (inner subnets to the outer address,
/// and inner subnets to the target), and its rewrite source; or why there
/// is none yet.
#[allow(clippy::type_complexity)]
fn reflection_rules(
    name: &str,
    rzone: &Zone,
    f: IpFamily,
    target: &Subnet,
    eaddrs: &[Subnet],
    internal: bool,
) -> Result<(Vec<(Group, Group)>, Vec<(Group, Group)>, Subnet), String> {
    let iaddrs = of_family(&rzone.match_subnets, f);
    let eaddrs = of_family(eaddrs, f);
    let refaddrs = if internal { &iaddrs } else { &eaddrs };
    let mut snat = refaddrs.first().cloned();
    if internal && let Some(z) = iaddrs.iter().find(|z| z.contains(target.addr)) {
        snat = Some(z.clone());
    }
    let why = match (&snat, iaddrs.is_empty(), eaddrs.is_empty()) {
        (None, _, _) => Some(format!(
            "the {} rewrite address of the reflection is not known",
            if internal { "internal" } else { "external" }
        )),
        (_, true, _) => Some("the inner zone's addresses are not known".to_string()),
        (_, _, true) => Some("the outer zone's addresses are not known".to_string()),
        _ => None,
    };
    if let Some(why) = why {
        return Err(format!(
            "{why} ({}); no reflection of {name:?} for now",
            family_text(Some(f))
        ));
    }
    let groups = |list: &[Subnet]| criteria::group_by_masking(&as_addresses(list));
    let mut dnat = Vec::new();
    for s in groups(&iaddrs) {
        for d in groups(&eaddrs) {
            dnat.push((s.clone(), d));
        }
    }
    let mut snat_groups = Vec::new();
    for d in groups(std::slice::from_ref(target)) {
        for s in groups(&iaddrs) {
            snat_groups.push((s, d.clone()));
        }
    }
    Ok((dnat, snat_groups, snat.expect("checked").host_only()))
}

/// fw4's redirect verdict: the translation.
fn translate(r: RuleBuilder, kind: Kind, rewrite: &Rewrite) -> Rule {
    match rewrite {
        Rewrite::To(addr, port) => {
            let mut t = NatTarget::new(addr.addr.to_string());
            if let Some(p) = port {
                t = t.with_ports(*p);
            }
            match kind {
                Kind::Dnat => r.dnat_to(t),
                Kind::Snat => r.snat_to(t),
            }
        }
        Rewrite::Redirect(Some(p)) => r.redirect_to(*p),
        Rewrite::Redirect(None) => r.redirect(),
    }
}
