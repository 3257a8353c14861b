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
//! source zone and the address of each side: the rewrite address is the
//! inner zone's own address on the target's subnet (`reflection_src
//! internal`) or the outer zone's (`external`), and `reflection_zone` lists
//! the inner zones (the destination zone without it). What fw4 only warns
//! of and skips (a DNAT from `*`, a negated or masked `dest_ip`, an SNAT
//! without `src_dip`) refuses the config here.

use wasmwall_sdk::{Field, IpFamily, NatTarget, PortRange, Rule, RuleBuilder, Transport, Value};

use crate::addr::Subnet;
use crate::error::{Error, Warnings};
use crate::ipsets::Ipsets;
use crate::opts::{Known, bool_or, parsed, single, warn_unknown};
use crate::placed::Placed;
use crate::uci::Section;
use crate::values::{self, Address, Negatable, Proto, parse_port};
use crate::zones::{Need, Verdict, Zone, Zones, family_text, group_by_masking};

const KNOWN: Known = Known {
    options: &[
        "enabled",
        "name",
        "family",
        "src",
        "dest",
        "ipset",
        "helper",
        "proto",
        "src_ip",
        "src_mac",
        "src_port",
        "src_dip",
        "src_dport",
        "dest_ip",
        "dest_port",
        "limit",
        "limit_burst",
        "utc_time",
        "start_date",
        "stop_date",
        "start_time",
        "stop_time",
        "weekdays",
        "mark",
        "reflection",
        "reflection_src",
        "reflection_zone",
        "counter",
        "log",
        "log_limit",
        "target",
    ],
    unsupported: &["extra", "monthdays"],
    deprecated: &["_name"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dnat,
    Snat,
}

/// What a translated rule rewrites to.
#[derive(Debug, Clone)]
enum Rewrite {
    /// DNAT (or SNAT) to this address, and port.
    To(Subnet, Option<PortRange>),
    /// To the router itself, and port (a DNAT without `dest_ip`).
    Redirect(Option<PortRange>),
}

/// One rule of a redirect, before it is rendered.
struct NatRule {
    chain: String,
    /// None for both families (an explicit `family any` without
    /// addresses).
    family: Option<IpFamily>,
    proto: Proto,
    saddrs: Group,
    daddrs: Group,
    sport: Option<Negatable<PortRange>>,
    dport: Option<Negatable<PortRange>>,
    rewrite: Rewrite,
    /// A reflection rule: no counter, log, MAC or set match (they are the
    /// forward's own, for packets from outside).
    reflection: bool,
    name: String,
}

/// Subnets as a zone match groups them: positive, negated, masked.
type Group = (Vec<Subnet>, Vec<Subnet>, Vec<Subnet>);

/// Every enabled `redirect` section.
pub fn add_redirects(
    sections: &[Section],
    zones: &mut Zones,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    for s in sections.iter().filter(|s| s.kind == "redirect") {
        warn_unknown(s, &KNOWN, warnings);
        if !bool_or(s, "enabled", true)? {
            warnings.section(s, "is disabled; ignored");
            continue;
        }
        add_redirect(s, zones, ipsets, out, warnings)?;
    }
    Ok(())
}

/// The addresses of an address option, each with its option for errors.
fn addresses(s: &Section, option: &str) -> Result<Vec<Subnet>, Error> {
    let mut out = Vec::new();
    for (opt, word) in crate::opts::words(s, option) {
        match values::parse_address(word).map_err(|m| Error::option(s, opt, m))? {
            Address::Subnet(n) => out.push(n),
            Address::Range { .. } => {
                return Err(Error::option(
                    s,
                    opt,
                    format!("{word:?}: a redirect takes addresses and subnets, not ranges"),
                ));
            }
        }
    }
    Ok(out)
}

fn zone_ref<'z>(s: &Section, option: &str, zones: &'z Zones) -> Result<Option<ZoneRef<'z>>, Error> {
    match single(s, option)? {
        None => Ok(None),
        Some((_, "*")) => Ok(Some(ZoneRef::Any)),
        Some((opt, name)) => zones
            .get(name)
            .map(|z| Some(ZoneRef::Zone(z)))
            .ok_or_else(|| Error::option(s, opt, format!("there is no zone {name:?}"))),
    }
}

#[derive(Clone, Copy)]
enum ZoneRef<'z> {
    Any,
    Zone(&'z Zone),
}

impl<'z> ZoneRef<'z> {
    fn zone(self) -> Option<&'z Zone> {
        match self {
            ZoneRef::Any => None,
            ZoneRef::Zone(z) => Some(z),
        }
    }
}

fn of_family(list: &[Subnet], f: IpFamily) -> Vec<Subnet> {
    list.iter().filter(|n| n.family == f).cloned().collect()
}

fn add_redirect(
    s: &Section,
    zones: &mut Zones,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    let name = single(s, "name")?
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("@redirect[{}]", s.index));
    let kind = match parsed(s, "target", values::parse_target)? {
        None | Some(values::Target::Dnat) => Kind::Dnat,
        Some(values::Target::Snat) => Kind::Snat,
        Some(_) => {
            let opt = s.get("target").expect("parsed");
            return Err(Error::option(s, opt, "a redirect's target is DNAT or SNAT"));
        }
    };
    // Absent is None; `any` is Some(None).
    let written_family = parsed(s, "family", values::parse_family)?;
    let mut protos = Vec::new();
    for (opt, word) in crate::opts::words(s, "proto") {
        protos.extend(values::parse_protocol(word).map_err(|m| Error::option(s, opt, m))?);
    }
    if protos.is_empty() {
        protos = vec![Proto::Tcp, Proto::Udp];
    }
    let src_ip = addresses(s, "src_ip")?;
    let src_dip = addresses(s, "src_dip")?;
    let dest_ip = addresses(s, "dest_ip")?;
    let port = |option| parsed(s, option, parse_port);
    let src_port = port("src_port")?;
    let src_dport = port("src_dport")?;
    let mut dest_port = port("dest_port")?;
    let reflection = bool_or(s, "reflection", true)?;
    let internal = match single(s, "reflection_src")? {
        None => true,
        Some((opt, v)) => match v.to_ascii_lowercase() {
            l if !l.is_empty() && "internal".starts_with(&l) => true,
            l if !l.is_empty() && "external".starts_with(&l) => false,
            _ => {
                return Err(Error::option(
                    s,
                    opt,
                    format!("{v:?} is not internal or external"),
                ));
            }
        },
    };
    let _ = ipsets;

    let src = zone_ref(s, "src", zones)?;
    let mut dest = zone_ref(s, "dest", zones)?;
    let mut reflection_zones = Vec::new();
    for (opt, word) in crate::opts::words(s, "reflection_zone") {
        match zones.get(word) {
            Some(z) => reflection_zones.push(z.name.clone()),
            None => return Err(Error::option(s, opt, format!("there is no zone {word:?}"))),
        }
    }

    let (sip, dip, rip, sport, dport, rport) = match kind {
        Kind::Dnat => {
            let Some(src_zone) = src else {
                return Err(Error::section(
                    s,
                    "a DNAT needs its source zone (option 'src')",
                ));
            };
            if src_zone.zone().is_none() {
                return Err(Error::section(
                    s,
                    "a DNAT's source cannot be '*': name the zone it comes from",
                ));
            }
            if dest_ip.iter().any(|a| a.invert) {
                return Err(Error::section(
                    s,
                    "'dest_ip' cannot be negated: it is the address to translate to",
                ));
            }
            if dest_ip.iter().any(|a| a.bits.is_none()) {
                return Err(Error::section(
                    s,
                    "'dest_ip' cannot have a mask that is not a prefix",
                ));
            }
            if dest.is_none()
                && let Some(z) = dest_ip.first().and_then(|d| {
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
                dest = Some(ZoneRef::Zone(z));
            }
            if dest_port.is_none() {
                dest_port = src_dport.clone();
            }
            (
                &src_ip, &src_dip, &dest_ip, &src_port, &src_dport, &dest_port,
            )
        }
        Kind::Snat => {
            match dest {
                None => {
                    return Err(Error::section(
                        s,
                        "an SNAT needs its destination zone (option 'dest')",
                    ));
                }
                Some(ZoneRef::Any) => {
                    return Err(Error::section(
                        s,
                        "an SNAT's destination cannot be '*': name the zone it goes to",
                    ));
                }
                Some(_) => {}
            }
            if src_dip.is_empty() {
                return Err(Error::section(
                    s,
                    "an SNAT needs the address to translate to (option 'src_dip')",
                ));
            }
            if src_dip.iter().any(|a| a.invert || a.bits.is_none()) {
                return Err(Error::section(
                    s,
                    "'src_dip' must be an address or prefix, not negated or masked",
                ));
            }
            if s.get("src_mac").is_some() {
                return Err(Error::section(s, "an SNAT cannot match 'src_mac'"));
            }
            if s.get("helper").is_some() {
                return Err(Error::section(s, "an SNAT cannot match 'helper'"));
            }
            (
                &src_ip, &dest_ip, &src_dip, &src_port, &dest_port, &src_dport,
            )
        }
    };
    if let Some(p) = rport
        && p.invert
    {
        let opt = s
            .get(if kind == Kind::Dnat {
                "dest_port"
            } else {
                "src_dport"
            })
            .or(s.get("src_dport"));
        if let Some(opt) = opt {
            return Err(Error::option(
                s,
                opt,
                "the port to translate to cannot be negated",
            ));
        }
    }
    let (src_name, dest_name) = (
        src.and_then(ZoneRef::zone).map(|z| z.name.clone()),
        dest.and_then(ZoneRef::zone).map(|z| z.name.clone()),
    );

    // As fw4: a reflected forward's inner zone gets its NAT and accept
    // chains whether or not the addresses for the reflection are known
    // yet, so that they do not come and go with the WAN's address.
    if kind == Kind::Dnat
        && reflection
        && let (Some(sz), Some(dz)) = (&src_name, &dest_name)
        && zones.get(sz).is_some_and(|z| z.masq)
    {
        let z = zones.get_mut(dz).expect("a zone of the config");
        z.dflags.insert(Need::Dnat);
        z.dflags.insert(Need::Snat);
        z.dflags.insert(Need::Verdict(Verdict::Accept));
    }

    let mut rules = Vec::new();
    for proto in protos {
        let ported = matches!(proto, Proto::Tcp | Proto::Udp);
        let (sport, dport, rport) = if ported {
            (
                sport.clone(),
                dport.clone(),
                rport.as_ref().map(|p| p.value),
            )
        } else {
            (None, None, None)
        };
        let mut family: Option<IpFamily> = written_family.flatten();
        if proto == Proto::Icmpv6 {
            family = Some(IpFamily::V6);
        }
        let mut sources: Vec<(Option<IpFamily>, String)> = Vec::new();
        for (list, what) in [
            (sip, "source IP"),
            (dip, "destination IP"),
            (rip, "rewrite IP"),
        ] {
            let v4 = list.iter().any(|n| n.family == IpFamily::V4);
            let v6 = list.iter().any(|n| n.family == IpFamily::V6);
            if v4 != v6 {
                sources.push((
                    Some(if v4 { IpFamily::V4 } else { IpFamily::V6 }),
                    what.into(),
                ));
            }
        }
        for (zone, what) in [(&src_name, "source zone"), (&dest_name, "destination zone")] {
            if let Some(z) = zone.as_ref().and_then(|n| zones.get(n)) {
                sources.push((z.family, format!("{what} {:?}", z.name)));
            }
        }
        for (f, what) in sources {
            match (family, f) {
                (_, None) => {}
                (None, Some(f)) => family = Some(f),
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::section(
                        s,
                        format!(
                            "is {} only but its {what} is {} only",
                            family_text(Some(a)),
                            family_text(Some(b))
                        ),
                    ));
                }
                _ => {}
            }
        }

        if kind == Kind::Dnat
            && reflection
            && !rip.is_empty()
            && let (Some(sz), Some(dz)) = (&src_name, &dest_name)
        {
            let src_zone = zones.get(sz).expect("a zone of the config").clone();
            let rzones = if reflection_zones.is_empty() {
                vec![dz.clone()]
            } else {
                reflection_zones.clone()
            };
            let eaddrs: Vec<Subnet> = if dip.is_empty() {
                src_zone
                    .match_subnets
                    .iter()
                    .map(Subnet::host_only)
                    .collect()
            } else {
                dip.clone()
            };
            for rz in rzones {
                let rzone = zones.get(&rz).expect("a zone of the config").clone();
                if let (Some(f), Some(rf)) = (family, rzone.family)
                    && f != rf
                {
                    warnings.section(
                        s,
                        format!(
                            "reflection zone {:?} is {} only; no reflection there",
                            rz,
                            family_text(Some(rf))
                        ),
                    );
                    continue;
                }
                for f in [IpFamily::V4, IpFamily::V6] {
                    if family.is_some_and(|w| w != f) {
                        continue;
                    }
                    let masq = if f == IpFamily::V4 {
                        src_zone.masq
                    } else {
                        src_zone.masq6
                    };
                    let rip_f = of_family(rip, f);
                    if !masq || rip_f.is_empty() {
                        continue;
                    }
                    let iaddrs = of_family(&rzone.match_subnets, f);
                    let eaddrs_f = of_family(&eaddrs, f);
                    let refaddrs = if internal { &iaddrs } else { &eaddrs_f };
                    let mut snat = refaddrs.first().cloned();
                    if internal && let Some(z) = iaddrs.iter().find(|z| z.contains(rip_f[0].addr)) {
                        snat = Some(z.clone());
                    }
                    let problem = match (&snat, iaddrs.is_empty(), eaddrs_f.is_empty()) {
                        (None, _, _) => Some(format!(
                            "the {} rewrite address of the reflection is not known",
                            if internal { "internal" } else { "external" }
                        )),
                        (_, true, _) => {
                            Some("the inner zone's addresses are not known".to_string())
                        }
                        (_, _, true) => {
                            Some("the outer zone's addresses are not known".to_string())
                        }
                        _ => None,
                    };
                    if let Some(p) = problem {
                        warnings.section(
                            s,
                            format!("{p} ({}); no reflection for now", family_text(Some(f))),
                        );
                        continue;
                    }
                    let snat = snat.expect("checked").host_only();
                    let rname = format!("{name} (reflection)");
                    for saddrs in group_by_masking(&iaddrs) {
                        for daddrs in group_by_masking(&eaddrs_f) {
                            rules.push(NatRule {
                                chain: format!("dstnat_{rz}"),
                                family: Some(f),
                                proto,
                                saddrs: saddrs.clone(),
                                daddrs,
                                sport: sport.clone(),
                                dport: dport.clone(),
                                rewrite: Rewrite::To(rip_f[0].clone(), rport),
                                reflection: true,
                                name: rname.clone(),
                            });
                        }
                    }
                    // The SNAT matches the port the DNAT translated to.
                    let translated = rport.map(|p| Negatable {
                        invert: false,
                        value: p,
                    });
                    for daddrs in group_by_masking(&rip_f) {
                        for saddrs in group_by_masking(&iaddrs) {
                            rules.push(NatRule {
                                chain: format!("srcnat_{rz}"),
                                family: Some(f),
                                proto,
                                saddrs,
                                daddrs: daddrs.clone(),
                                sport: None,
                                dport: translated.clone(),
                                rewrite: Rewrite::To(snat.clone(), None),
                                reflection: true,
                                name: rname.clone(),
                            });
                        }
                    }
                }
            }
        }

        if rip.iter().filter(|n| n.family == IpFamily::V4).count() > 1
            || rip.iter().filter(|n| n.family == IpFamily::V6).count() > 1
        {
            warnings.section(
                s,
                "gives several addresses to translate to; the first is taken",
            );
        }
        let has_v4 = [sip, dip, rip]
            .iter()
            .any(|l| l.iter().any(|n| n.family == IpFamily::V4));
        let has_v6 = [sip, dip, rip]
            .iter()
            .any(|l| l.iter().any(|n| n.family == IpFamily::V6));
        let families: Vec<IpFamily> = match family {
            Some(f) => vec![f],
            None if !has_v4 && !has_v6 => {
                if written_family.is_none() {
                    vec![IpFamily::V4]
                } else {
                    Vec::new()
                }
            }
            None => [IpFamily::V4, IpFamily::V6]
                .into_iter()
                .filter(|f| if *f == IpFamily::V4 { has_v4 } else { has_v6 })
                .collect(),
        };
        // An explicit `family any` without addresses is one rule for both.
        let both = family.is_none() && !has_v4 && !has_v6 && written_family.is_some();
        let chain = match kind {
            Kind::Dnat => format!("dstnat_{}", src_name.as_deref().expect("checked")),
            Kind::Snat => format!("srcnat_{}", dest_name.as_deref().expect("checked")),
        };
        let rewrite_of = |f: Option<IpFamily>| match (
            kind,
            f.and_then(|f| of_family(rip, f).into_iter().next()),
        ) {
            (_, Some(a)) => Rewrite::To(a, rport),
            (_, None) => Rewrite::Redirect(rport),
        };
        let per_family: Vec<Option<IpFamily>> = if both {
            vec![None]
        } else {
            families.into_iter().map(Some).collect()
        };
        for f in per_family {
            let (sip_f, dip_f) = match f {
                Some(f) => (of_family(sip, f), of_family(dip, f)),
                None => (Vec::new(), Vec::new()),
            };
            let rewrite = rewrite_of(f);
            if kind == Kind::Snat && matches!(rewrite, Rewrite::Redirect(_)) {
                warnings.section(
                    s,
                    format!(
                        "has no {} address to translate to; no {} rule",
                        family_text(f),
                        family_text(f)
                    ),
                );
                continue;
            }
            for saddrs in group_by_masking(&sip_f) {
                for daddrs in group_by_masking(&dip_f) {
                    rules.push(NatRule {
                        chain: chain.clone(),
                        family: f,
                        proto,
                        saddrs: saddrs.clone(),
                        daddrs,
                        sport: sport.clone(),
                        dport: dport.clone(),
                        rewrite: rewrite.clone(),
                        reflection: false,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    match kind {
        Kind::Dnat => {
            let z = zones
                .get_mut(src_name.as_deref().expect("checked"))
                .expect("a zone");
            z.dflags.insert(Need::Dnat);
        }
        Kind::Snat => {
            let z = zones
                .get_mut(dest_name.as_deref().expect("checked"))
                .expect("a zone");
            z.dflags.insert(Need::Snat);
        }
    }
    let counter = bool_or(s, "counter", true)?;
    for r in rules {
        let rule = render(&r, counter);
        out.push(r.chain, rule);
    }
    Ok(())
}

/// A port match of a rule: the port or range, or none of them.
fn port_test(b: RuleBuilder, field: Field, port: &Negatable<PortRange>) -> RuleBuilder {
    let p = port.value;
    let value = if p.first == p.last {
        Value::from(p.first)
    } else {
        Value::from(p.first..=p.last)
    };
    if port.invert {
        b.not_test(field, [value])
    } else {
        b.test(field, [value])
    }
}

/// fw4's redirect template: the matches, then the translation.
fn render(r: &NatRule, counter: bool) -> Rule {
    let has_addrs = [&r.saddrs, &r.daddrs]
        .iter()
        .any(|(p, n, m)| !p.is_empty() || !n.is_empty() || !m.is_empty());
    let has_ports = r.sport.is_some() || r.dport.is_some();
    let mut b = Rule::new();
    if let Some(f) = r.family
        && !has_addrs
    {
        b = b.nfproto(f);
    }
    if !has_ports && let Some(l4) = r.proto.l4(r.family) {
        b = b.l4proto(l4);
    }
    if let Some(f) = r.family {
        b = crate::ruleset::subnet_tests(b, Field::Saddr(f), &r.saddrs.0, &r.saddrs.1, &r.saddrs.2);
        b = crate::ruleset::subnet_tests(b, Field::Daddr(f), &r.daddrs.0, &r.daddrs.1, &r.daddrs.2);
    }
    let transport = match r.proto {
        Proto::Udp => Transport::Udp,
        _ => Transport::Tcp,
    };
    if let Some(p) = &r.sport {
        b = port_test(b, Field::Sport(transport), p);
    }
    if let Some(p) = &r.dport {
        b = port_test(b, Field::Dport(transport), p);
    }
    if counter && !r.reflection {
        b = b.counter();
    }
    let b = b.comment(format!("!fw4: {}", r.name));
    let nat = |addr: &Subnet, port: Option<PortRange>| {
        let t = NatTarget::new(addr.addr.to_string());
        match port {
            Some(p) => t.with_ports(p),
            None => t,
        }
    };
    match (&r.rewrite, r.chain.starts_with("srcnat_")) {
        (Rewrite::To(a, p), false) => b.dnat_to(nat(a, *p)),
        (Rewrite::To(a, p), true) => b.snat_to(nat(a, *p)),
        (Rewrite::Redirect(Some(p)), _) => b.redirect_to(*p),
        (Rewrite::Redirect(None), _) => b.redirect(),
    }
}
