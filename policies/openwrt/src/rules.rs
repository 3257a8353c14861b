//! `rule` sections, as fw4's `parse_rule` and its `rule.uc` template make
//! them: each enabled section becomes rules placed in fw4's chains (the
//! base `input`, `forward`, `output`, the zones' `input_Z`, `forward_Z`,
//! `output_Z`, `helper_Z`, `notrack_Z`, and the `mangle_*` chains for
//! `MARK` and `DSCP`), its target a verdict, a jump to a zone's verdict
//! chain (`accept_to_lan`, `drop_from_wan`) or `handle_reject`, or a
//! statement (`meta mark set`, `dscp set`, `notrack`, `ct helper set`); the
//! zones it jumps to are told which chains they need.

use wasmwall_sdk::{IpFamily, MarkUpdate, Rule, RuleBuilder};

use crate::criteria::{self, Criteria, Options, Refs};
use crate::error::{Error, Warnings};
use crate::helpers::Helper;
use crate::ipsets::Ipsets;
use crate::placed::Placed;
use crate::uci::Section;
use crate::values::{self, Target};
use crate::zones::{Defaults, Need, Verdict, Zones};

/// `src` or `dest`: any zone, or one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ZoneRef {
    Any,
    Zone(String),
}

impl ZoneRef {
    fn zone(&self) -> Option<&str> {
        match self {
            ZoneRef::Any => None,
            ZoneRef::Zone(z) => Some(z),
        }
    }
}

/// What a rule does besides its verdict, from its `target` and `set_*`.
enum Action {
    /// No target: the rule counts (and logs) only.
    None,
    /// ACCEPT, REJECT, DROP.
    Verdict(Verdict),
    Mark(Vec<MarkUpdate>),
    Dscp(wasmwall_sdk::Dscp),
    Notrack,
    Helper(&'static Helper),
}

/// Adds the rules of every `rule` section. `_defaults` is unused: fw4's
/// rules read none of the defaults.
pub fn add_rules(
    sections: &[Section],
    zones: &mut Zones,
    _defaults: &Defaults,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    for section in sections.iter().filter(|s| s.kind == "rule") {
        add_rule(section, zones, ipsets, out, warnings)?;
    }
    Ok(())
}

fn add_rule(
    section: &Section,
    zones: &mut Zones,
    ipsets: &Ipsets,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    let mut opts = Options::new(section);
    if !opts.flag("enabled", true)? {
        warnings.section(section, "is disabled; ignored");
        return Ok(());
    }
    let name = match opts.one("name", |s| Ok(s.to_string()))? {
        Some(n) => n,
        None => section
            .name
            .clone()
            .unwrap_or_else(|| format!("@rule[{}]", section.index)),
    };
    opts.deprecated("_name", warnings);
    let zone_ref = |text: &str| {
        if text == "*" {
            Ok(ZoneRef::Any)
        } else if zones.get(text).is_some() {
            Ok(ZoneRef::Zone(text.to_string()))
        } else {
            Err(format!("{text:?} is not a zone (or '*' for any)"))
        }
    };
    let src = opts.one("src", zone_ref)?;
    let dest = opts.one("dest", zone_ref)?;
    let device = opts.one("device", |t| match values::parse_invert(t)? {
        (true, _) => Err("must not be negated".to_string()),
        (false, "*") => Err("must not be '*'".to_string()),
        (false, d) => Ok(d.to_string()),
    })?;
    let outgoing = opts.one("direction", values::parse_direction)?;
    let set_helper = opts.one("set_helper", |t| not_negated(values::parse_cthelper(t)?))?;
    let mut criteria = Criteria::read(&mut opts, &criteria::RULE, &name, warnings)?;
    opts.unsupported("extra", warnings);
    let set_mark = opts.one("set_mark", |t| not_negated(values::parse_mark(t)?))?;
    let set_xmark = opts.one("set_xmark", |t| not_negated(values::parse_mark(t)?))?;
    let set_dscp = opts.one("set_dscp", |t| not_negated(values::parse_dscp(t)?))?;
    let target = opts.one("target", values::parse_target)?;
    opts.warn_unknown(warnings);

    let fail = |opt: &str, message: String| match section.get(opt) {
        Some(o) => Error::option(section, o, message),
        None => Error::section(section, message),
    };
    let src_zone = src.as_ref().and_then(ZoneRef::zone);
    let dest_zone = dest.as_ref().and_then(ZoneRef::zone);
    let action = match target {
        None => Action::None,
        Some(t @ (Target::Helper | Target::Notrack)) if src_zone.is_none() => {
            return Err(fail(
                "target",
                format!("must specify a source zone for target '{}'", word(t)),
            ));
        }
        Some(Target::Helper) => Action::Helper(set_helper.ok_or_else(|| {
            fail(
                "target",
                "must specify option 'set_helper' for target 'helper'".into(),
            )
        })?),
        Some(Target::Notrack) => Action::Notrack,
        Some(Target::Dscp) => Action::Dscp(set_dscp.ok_or_else(|| {
            fail(
                "target",
                "must specify option 'set_dscp' for target 'dscp'".into(),
            )
        })?),
        Some(Target::Mark) => Action::Mark(match (set_mark, set_xmark) {
            (Some(m), _) => m.set_mark_updates(),
            (None, Some(x)) => x.xmark_updates(),
            (None, None) => {
                return Err(fail(
                    "target",
                    "must specify option 'set_mark' or 'set_xmark' for target 'mark'".into(),
                ));
            }
        }),
        Some(t @ (Target::Dnat | Target::Snat | Target::Masquerade)) => {
            return Err(fail(
                "target",
                format!(
                    "target '{}' is for redirect and nat sections, not rules",
                    word(t)
                ),
            ));
        }
        Some(Target::Accept) => Action::Verdict(Verdict::Accept),
        Some(Target::Reject) => Action::Verdict(Verdict::Reject),
        Some(Target::Drop) => Action::Verdict(Verdict::Drop),
    };
    let unused = [
        ("set_mark", set_mark.is_some(), Target::Mark),
        ("set_xmark", set_xmark.is_some(), Target::Mark),
        ("set_dscp", set_dscp.is_some(), Target::Dscp),
        ("set_helper", set_helper.is_some(), Target::Helper),
    ];
    for (opt, given, needs) in unused {
        if given
            && target != Some(needs)
            && let Some(o) = section.get(opt)
        {
            warnings.option(
                section,
                o,
                format!(
                    "has no effect without target '{}' (fw4 ignores it)",
                    word(needs).to_ascii_uppercase()
                ),
            );
        }
    }

    let set = criteria.resolve_set(ipsets).map_err(|m| fail("ipset", m))?;
    let family_of = |z: Option<&str>| z.and_then(|z| zones.get(z)).and_then(|z| z.family);
    let refs = Refs {
        set: set.and_then(|s| s.family),
        src_zone: family_of(src_zone),
        dest_zone: family_of(dest_zone),
        set_helper: set_helper.and_then(|h| h.family),
    };
    let instances = criteria
        .rule_instances(refs, matches!(action, Action::Dscp(_)), set)
        .map_err(|m| Error::section(section, m))?;

    let place = place(&action, src.as_ref(), dest.as_ref(), zones);
    let zone_limit = place
        .limit_zone
        .as_deref()
        .and_then(|z| zones.get(z))
        .filter(|z| z.log_limit.is_some())
        .map(|z| z.log_limit_name());
    let devices = |z: Option<&str>| {
        z.and_then(|z| zones.get(z))
            .map(|z| z.match_devices.clone())
            .unwrap_or_default()
    };
    let (zone_iifnames, zone_oifnames) = if place.mangle {
        (devices(src_zone), devices(dest_zone))
    } else {
        (Vec::new(), Vec::new())
    };
    let comment = format!("!fw4: {name}");
    if comment.len() > 128 {
        return Err(fail(
            "name",
            format!("the comment {comment:?} is longer than 128 bytes"),
        ));
    }
    for mut inst in instances {
        inst.iifnames = zone_iifnames.clone();
        inst.oifnames = zone_oifnames.clone();
        if let Some(d) = &device {
            if outgoing == Some(true) {
                inst.oifnames = vec![d.clone()];
            } else {
                inst.iifnames = vec![d.clone()];
            }
        }
        let matches = criteria
            .matches(&inst)
            .map_err(|m| Error::section(section, m))?;
        let family = inst.family.unwrap_or(IpFamily::V4);
        let finish = |r: RuleBuilder| -> Rule {
            match &action {
                Action::None => r.continue_(),
                Action::Verdict(_) => match &place.jump {
                    Some(chain) => r.jump(chain.clone()),
                    None if place.verdict == Some(Verdict::Accept) => r.accept(),
                    None => r.drop(),
                },
                Action::Mark(updates) => {
                    updates.iter().fold(r, |r, u| r.mark_update(*u)).continue_()
                }
                Action::Dscp(d) => r.dscp_set(family, *d).continue_(),
                Action::Notrack => r.notrack().continue_(),
                Action::Helper(h) => r.ct_helper(h.object()).continue_(),
            }
        };
        for rule in criteria.finish(matches, zone_limit.as_deref(), &comment, finish) {
            out.push(place.chain.clone(), rule);
        }
    }
    warn_deviceless_zones(&place, &zone_iifnames, &zone_oifnames, section, warnings);
    for (zone, need, as_dest) in place.needs {
        if let Some(z) = zones.get_mut(&zone) {
            if as_dest {
                z.dflags.insert(need);
            } else {
                z.sflags.insert(need);
            }
        }
    }
    Ok(())
}

/// fw4's word for a target in its messages.
fn word(t: Target) -> &'static str {
    match t {
        Target::Accept => "accept",
        Target::Reject => "reject",
        Target::Drop => "drop",
        Target::Notrack => "notrack",
        Target::Helper => "helper",
        Target::Mark => "mark",
        Target::Dscp => "dscp",
        Target::Dnat => "dnat",
        Target::Snat => "snat",
        Target::Masquerade => "masquerade",
    }
}

fn not_negated<T>(v: values::Negatable<T>) -> Result<T, String> {
    if v.invert {
        Err("must not be negated".into())
    } else {
        Ok(v.value)
    }
}

/// Where a rule goes and what it jumps to.
struct Place {
    chain: String,
    /// A mangle chain: the zones' devices are matched in the rule.
    mangle: bool,
    /// The zone whose named log limit a limited log takes, as fw4's
    /// template passes it for the chain.
    limit_zone: Option<String>,
    /// The verdict chain a filter target jumps to.
    jump: Option<String>,
    verdict: Option<Verdict>,
    /// The chains of zones the rule needs: zone, need, in its `dflags`
    /// (else its `sflags`).
    needs: Vec<(String, Need, bool)>,
}

/// fw4's chain of a rule, by its target, `src` and `dest`.
fn place(action: &Action, src: Option<&ZoneRef>, dest: Option<&ZoneRef>, zones: &Zones) -> Place {
    let src_zone = src.and_then(ZoneRef::zone);
    let dest_zone = dest.and_then(ZoneRef::zone);
    let own = |chain: String, zone: Option<&str>| Place {
        chain,
        mangle: false,
        limit_zone: zone.map(str::to_string),
        jump: None,
        verdict: None,
        needs: Vec::new(),
    };
    match action {
        Action::Notrack | Action::Helper(_) => {
            let z = src_zone.unwrap_or_default();
            let (prefix, need) = if matches!(action, Action::Notrack) {
                ("notrack", Need::Notrack)
            } else {
                ("helper", Need::Helper)
            };
            let mut p = own(format!("{prefix}_{z}"), Some(z));
            p.needs.push((z.to_string(), need, true));
            p
        }
        Action::Mark(_) | Action::Dscp(_) => {
            let any = |r: Option<&ZoneRef>| r == Some(&ZoneRef::Any);
            let chain = match (src, dest) {
                _ if (any(src) && any(dest)) || (src_zone.is_some() && dest_zone.is_some()) => {
                    "mangle_forward"
                }
                _ if any(src) && dest_zone.is_some() => "mangle_postrouting",
                _ if src_zone.is_some() && any(dest) => "mangle_prerouting",
                (Some(_), None) => "mangle_input",
                _ => "mangle_output",
            };
            let mut p = own(chain.to_string(), None);
            p.mangle = true;
            p
        }
        Action::None | Action::Verdict(_) => {
            let chain = match (src, dest) {
                (Some(ZoneRef::Any), Some(_)) => "forward".to_string(),
                (Some(ZoneRef::Any), None) => "input".to_string(),
                (Some(ZoneRef::Zone(z)), Some(_)) => format!("forward_{z}"),
                (Some(ZoneRef::Zone(z)), None) => format!("input_{z}"),
                (None, Some(ZoneRef::Zone(z))) => format!("output_{z}"),
                (None, _) => "output".to_string(),
            };
            let limit_zone = match (src, dest) {
                (Some(ZoneRef::Zone(z)), _) | (None, Some(ZoneRef::Zone(z))) => Some(z.as_str()),
                (Some(ZoneRef::Any), Some(ZoneRef::Zone(z))) => Some(z.as_str()),
                _ => None,
            };
            let mut p = own(chain, limit_zone);
            let Action::Verdict(v) = *action else {
                return p;
            };
            p.verdict = Some(v);
            let src_logs = src_zone
                .and_then(|z| zones.get(z))
                .is_some_and(|z| z.log != 0);
            if let Some(d) = dest_zone {
                p.jump = Some(format!("{}_to_{d}", v.word()));
                p.needs.push((d.to_string(), Need::Verdict(v), true));
            } else if let (Some(s), true) = (src_zone, src_logs && v != Verdict::Accept) {
                p.jump = Some(format!("{}_from_{s}", v.word()));
                p.needs.push((s.to_string(), Need::Verdict(v), false));
            } else if v == Verdict::Reject {
                p.jump = Some("handle_reject".into());
            }
            p
        }
    }
}

/// fw4 matches a mark or DSCP rule of a zone by the zone's devices: one
/// of subnets only matches the rule on every device. A warning says so.
fn warn_deviceless_zones(
    place: &Place,
    iifnames: &[String],
    oifnames: &[String],
    section: &Section,
    warnings: &mut Warnings,
) {
    if !place.mangle {
        return;
    }
    for (opt, names) in [("src", iifnames), ("dest", oifnames)] {
        if let Some(o) = section.get(opt)
            && names.is_empty()
            && o.values.first().is_some_and(|v| v != "*")
        {
            warnings.option(
                section,
                o,
                "the zone has no devices: fw4 matches the rule on every device",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uci;
    use crate::zones::{Zone, ZoneMatch};
    use std::collections::BTreeSet;
    use wasmwall_sdk::{
        Field, IpFamily, Matcher, Rate, Statement, TimeUnit, Value, Verdict as V, Weekday,
    };

    fn zone(name: &str, devices: &[&str]) -> Zone {
        Zone {
            name: name.into(),
            family: None,
            input: Verdict::Drop,
            output: Verdict::Drop,
            forward: Verdict::Drop,
            masq: false,
            masq6: false,
            masq_allow_invalid: false,
            masq_src: Vec::new(),
            masq_dest: Vec::new(),
            mtu_fix: false,
            log: 0,
            log_limit: None,
            counter: true,
            auto_helper: false,
            helpers: Vec::new(),
            matches: vec![ZoneMatch::default()],
            match_devices: devices.iter().map(|d| d.to_string()).collect(),
            match_subnets: Vec::new(),
            sflags: BTreeSet::new(),
            dflags: BTreeSet::new(),
        }
    }

    fn defaults() -> Defaults {
        crate::zones::parse_defaults(&[], &mut Warnings::default()).unwrap()
    }

    /// The one place the tests make the ipsets, for the merge with the
    /// real module.
    fn ipsets(sets: &[(&str, Option<IpFamily>)]) -> Ipsets {
        let text: String = sets
            .iter()
            .map(|(n, f)| {
                let family = match f {
                    Some(IpFamily::V6) => "ipv6",
                    _ => "ipv4",
                };
                format!(
                    "config ipset\noption name {n}\noption family {family}\nlist match src_ip\n"
                )
            })
            .collect();
        let sections = uci::parse(&text).unwrap();
        Ipsets::parse(&sections, &mut Warnings::default()).unwrap()
    }

    #[derive(Debug)]
    struct Run {
        out: Placed,
        zones: Zones,
        warnings: Warnings,
    }

    fn run_with(text: &str, zones: Vec<Zone>, sets: &Ipsets) -> Result<Run, Error> {
        let sections = uci::parse(text).unwrap();
        let mut zones = Zones(zones);
        let (mut out, mut warnings) = (Placed::default(), Warnings::default());
        add_rules(
            &sections,
            &mut zones,
            &defaults(),
            sets,
            &mut out,
            &mut warnings,
        )?;
        Ok(Run {
            out,
            zones,
            warnings,
        })
    }

    fn run(text: &str, zones: Vec<Zone>) -> Run {
        run_with(text, zones, &ipsets(&[])).unwrap()
    }

    fn error(text: &str, zones: Vec<Zone>) -> String {
        run_with(text, zones, &ipsets(&[])).unwrap_err().to_string()
    }

    impl Run {
        /// The rules of a chain, as nft-like text.
        fn chain(&self, chain: &str) -> Vec<String> {
            self.out.of(chain).map(|r| nft(&r)).collect()
        }
    }

    fn hex(v: &Value) -> String {
        match v {
            Value::Number(n) => format!("{n:#x}"),
            v => text(v),
        }
    }

    fn text(v: &Value) -> String {
        match v {
            Value::Number(n) => n.to_string(),
            Value::NumberRange(a, b) => format!("{a}-{b}"),
            Value::Address(a) | Value::Mac(a) => a.clone(),
            Value::AddressRange(a, b) => format!("{a}-{b}"),
            Value::Name(n) => format!("{n:?}"),
            v => format!("{v:?}"),
        }
    }

    fn field(f: &Field) -> String {
        let ip = |f: &IpFamily| if *f == IpFamily::V4 { "ip" } else { "ip6" };
        match f {
            Field::Iifname => "iifname".into(),
            Field::Oifname => "oifname".into(),
            Field::L4proto => "meta l4proto".into(),
            Field::Saddr(f) => format!("{} saddr", ip(f)),
            Field::Daddr(f) => format!("{} daddr", ip(f)),
            Field::Sport(t) => format!("{t} sport"),
            Field::Dport(t) => format!("{t} dport"),
            Field::IcmpType => "icmp type".into(),
            Field::IcmpCode => "icmp code".into(),
            Field::Icmpv6Type => "icmpv6 type".into(),
            Field::Icmpv6Code => "icmpv6 code".into(),
            Field::Mark => "meta mark".into(),
            Field::Dscp(f) => format!("{} dscp", ip(f)),
            Field::EtherSaddr => "ether saddr".into(),
            f => format!("{f:?}"),
        }
    }

    fn proto_name(n: u32) -> String {
        match n {
            1 => "icmp".into(),
            6 => "tcp".into(),
            17 => "udp".into(),
            58 => "ipv6-icmp".into(),
            n => n.to_string(),
        }
    }

    fn unit(u: TimeUnit) -> &'static str {
        match u {
            TimeUnit::Second => "second",
            TimeUnit::Minute => "minute",
            TimeUnit::Hour => "hour",
            _ => "day",
        }
    }

    fn set(items: Vec<String>, force: bool) -> String {
        if items.len() == 1 && !force {
            items[0].clone()
        } else {
            format!("{{ {} }}", items.join(", "))
        }
    }

    fn day(d: &Weekday) -> String {
        format!("\"{d:?}\"")
    }

    /// A rule as fw4 writes it, as far as these tests need.
    fn nft(rule: &Rule) -> String {
        let mut words: Vec<String> = Vec::new();
        for m in rule.matches() {
            let not = if m.is_negated() { "!= " } else { "" };
            words.push(match m.matcher() {
                Matcher::Nfproto(f) => {
                    format!(
                        "meta nfproto {}",
                        if *f == IpFamily::V4 { "ipv4" } else { "ipv6" }
                    )
                }
                Matcher::L4proto(p) => format!("meta l4proto {}", proto_name(p.number().into())),
                Matcher::Test { fields, any_of } => {
                    let names: Vec<String> = fields.iter().map(field).collect();
                    let value = |vs: &Vec<Value>| -> String {
                        vs.iter()
                            .zip(fields)
                            .map(|(v, f)| match (f, v) {
                                (Field::Mark | Field::Dscp(_), v) => hex(v),
                                (Field::L4proto, Value::Number(n)) => {
                                    format!("{:?}", proto_name(*n))
                                }
                                (_, v) => text(v),
                            })
                            .collect::<Vec<_>>()
                            .join(" . ")
                    };
                    format!(
                        "{} {not}{}",
                        names.join(" . "),
                        set(any_of.iter().map(value).collect(), fields.len() > 1)
                    )
                }
                Matcher::Masked {
                    field: f,
                    mask,
                    value,
                } => {
                    let op = if m.is_negated() { "!=" } else { "==" };
                    if *f == Field::Mark {
                        format!("meta mark and {} {op} {}", hex(mask), hex(value))
                    } else {
                        format!("{} & {} {op} {}", field(f), text(mask), text(value))
                    }
                }
                Matcher::Limit(l) => {
                    let r = l.rate();
                    let mut s = format!(
                        "limit rate {}{}/{}",
                        if l.is_over() { "over " } else { "" },
                        r.amount(),
                        unit(r.unit())
                    );
                    if r.burst_amount() > 0 {
                        s.push_str(&format!(" burst {} packets", r.burst_amount()));
                    }
                    s
                }
                Matcher::LimitNamed(n) => format!("limit name {n:?}"),
                Matcher::Date { from, to } => format!("meta time \"{from}\"-\"{to}\""),
                Matcher::Hour { from, to } => format!("meta hour \"{from}\"-\"{to}\""),
                Matcher::Day(days) => {
                    format!("meta day {}", set(days.iter().map(day).collect(), false))
                }
                Matcher::InSet { fields, set } => format!(
                    "{} {not}@{set}",
                    fields.iter().map(field).collect::<Vec<_>>().join(" . ")
                ),
                m => format!("{m:?}"),
            });
        }
        for s in rule.statements() {
            words.push(match s {
                Statement::Counter => "counter".into(),
                Statement::Log(l) => format!("log prefix {:?}", l.prefix().unwrap_or_default()),
                Statement::Mark(u) => format!(
                    "meta mark set {}",
                    match u {
                        MarkUpdate::Set(v) => format!("{v:#x}"),
                        MarkUpdate::And(v) => format!("mark and {v:#x}"),
                        MarkUpdate::Or(v) => format!("mark or {v:#x}"),
                        MarkUpdate::Xor(v) => format!("mark xor {v:#x}"),
                        MarkUpdate::Masked { value, mask } =>
                            format!("mark and {:#x} xor {value:#x}", !mask),
                        u => format!("{u:?}"),
                    }
                ),
                Statement::Dscp { family, value } => format!(
                    "{} dscp set {:#x}",
                    if *family == IpFamily::V4 { "ip" } else { "ip6" },
                    value.value()
                ),
                Statement::Notrack => "notrack".into(),
                Statement::CtHelper(h) => format!("ct helper set {h:?}"),
                s => format!("{s:?}"),
            });
        }
        match rule.verdict() {
            V::Accept => words.push("accept".into()),
            V::Drop => words.push("drop".into()),
            V::Jump(c) => words.push(format!("jump {c}")),
            V::Continue => {}
            v => words.push(format!("{v:?}")),
        }
        if let Some(c) = rule.comment() {
            words.push(format!("comment {c:?}"));
        }
        words.join(" ")
    }

    #[test]
    fn chains_by_src_and_dest() {
        // fw4's 01_direction.
        let r = run(
            "config rule\noption proto any\n\
             config rule\noption proto any\noption src '*'\n\
             config rule\noption proto any\noption dest '*'\n\
             config rule\noption proto any\noption src '*'\noption dest '*'\n",
            vec![],
        );
        assert_eq!(r.chain("input"), ["counter comment \"!fw4: @rule[1]\""]);
        assert_eq!(r.chain("forward"), ["counter comment \"!fw4: @rule[3]\""]);
        assert_eq!(
            r.chain("output"),
            [
                "counter comment \"!fw4: @rule[0]\"",
                "counter comment \"!fw4: @rule[2]\""
            ]
        );
    }

    #[test]
    fn disabled_rules_are_left_out_with_a_warning() {
        // fw4's 02_enabled.
        let r = run(
            "config rule\noption proto any\noption name 'Implicitly enabled'\n\
             config rule\noption proto any\noption name 'Explicitly enabled'\noption enabled 1\n\
             config rule\noption proto any\noption name 'Explicitly disabled'\noption enabled 0\n",
            vec![],
        );
        assert_eq!(
            r.chain("output"),
            [
                "counter comment \"!fw4: Implicitly enabled\"",
                "counter comment \"!fw4: Explicitly enabled\""
            ]
        );
        assert_eq!(
            r.warnings.0,
            ["uci line 8, @rule[2] (Explicitly disabled): is disabled; ignored"]
        );
    }

    #[test]
    fn targets_need_their_options() {
        // fw4's 03_constraints: fw4 skips these sections; a config with one
        // is refused here.
        let lan = || vec![zone("lan", &[])];
        let cases = [
            (
                "option target helper",
                "must specify a source zone for target 'helper'",
            ),
            (
                "option src lan\noption target helper",
                "must specify option 'set_helper' for target 'helper'",
            ),
            (
                "option target notrack",
                "must specify a source zone for target 'notrack'",
            ),
            (
                "option target dscp",
                "must specify option 'set_dscp' for target 'dscp'",
            ),
            (
                "option target mark",
                "must specify option 'set_mark' or 'set_xmark' for target 'mark'",
            ),
            (
                "option target dnat",
                "target 'dnat' is for redirect and nat sections",
            ),
            ("option device '*'", "option 'device': must not be '*'"),
            (
                "option device '!eth0'",
                "option 'device': must not be negated",
            ),
            (
                "option set_mark '!1'\noption target mark",
                "option 'set_mark': must not be negated",
            ),
            (
                "option src wan",
                "option 'src': \"wan\" is not a zone (or '*' for any)",
            ),
            (
                "option ipset nosuch",
                "option 'ipset': references unknown set \"nosuch\"",
            ),
            (
                "option family ipv6\noption src_ip 10.0.0.1",
                "@rule[0] (R): is restricted to IPv6 but referenced source IP is IPv4 only",
            ),
        ];
        for (options, message) in cases {
            let e = error(
                &format!("config rule\noption name R\noption proto any\n{options}\n"),
                lan(),
            );
            assert!(e.contains(message), "{options}: {e}");
        }
        // DSCP matches enforce a rule per family.
        let r = run(
            "config rule\noption proto any\noption name 'DSCP match rule #1'\noption dscp 0x0\n",
            lan(),
        );
        assert_eq!(
            r.chain("output"),
            [
                "meta nfproto ipv4 ip dscp 0x0 counter comment \"!fw4: DSCP match rule #1\"",
                "meta nfproto ipv6 ip6 dscp 0x0 counter comment \"!fw4: DSCP match rule #1\""
            ]
        );
    }

    #[test]
    fn icmp_rules_as_fw4s_04_icmp() {
        let r = run(
            "config rule\noption proto icmp\noption name 'ICMP rule #1'\n\
             config rule\noption proto icmpv6\noption name 'ICMP rule #2'\n\
             config rule\noption proto ipv6-icmp\noption name 'ICMP rule #3'\n\
             config rule\noption proto icmp\noption name 'ICMP rule #4'\nlist icmp_type ip-header-bad\n\
             config rule\noption proto icmp\noption name 'ICMP rule #5'\nlist icmp_type neighbour-advertisement\n",
            vec![],
        );
        assert_eq!(
            r.chain("output"),
            [
                "meta l4proto { \"icmp\", \"ipv6-icmp\" } counter comment \"!fw4: ICMP rule #1\"",
                "meta nfproto ipv6 meta l4proto ipv6-icmp counter comment \"!fw4: ICMP rule #2\"",
                "meta nfproto ipv6 meta l4proto ipv6-icmp counter comment \"!fw4: ICMP rule #3\"",
                "meta nfproto ipv4 icmp type . icmp code { 12 . 0 } counter comment \"!fw4: ICMP rule #4\"",
                "meta nfproto ipv6 icmpv6 type . icmpv6 code { 136 . 0 } counter comment \"!fw4: ICMP rule #5\"",
            ]
        );
    }

    #[test]
    fn mangle_rules_as_fw4s_05_mangle() {
        let zones = || {
            vec![
                zone("lan", &["eth0", "eth1"]),
                zone("wan", &["eth2", "eth3"]),
            ]
        };
        let rule = |n: u32, opts: &str| {
            format!(
                "config rule\noption name 'Mangle rule #{n}'\n{opts}\noption target DSCP\noption set_dscp 1\n"
            )
        };
        let text = [
            rule(1, "option src '*'\noption dest '*'"),
            rule(2, "option src lan\noption dest wan"),
            rule(3, "option src '*'\noption dest wan"),
            rule(4, "option src lan\noption dest '*'"),
            rule(5, "option src lan"),
            rule(6, "option src '*'"),
            rule(7, ""),
            rule(8, "option dest '*'"),
            rule(9, "option dest wan"),
            rule(10, "option src '*'\noption dest wan\noption device eth4"),
            rule(
                11,
                "option src '*'\noption dest wan\noption device eth4\noption direction in",
            ),
            rule(
                12,
                "option src '*'\noption dest wan\noption device eth5\noption direction out",
            ),
        ]
        .concat();
        let r = run(&text, zones());
        // Each rule: TCP then UDP, each IPv4 then IPv6.
        let four = |n: u32, ifs: &str| -> Vec<String> {
            let mut v = Vec::new();
            for p in ["tcp", "udp"] {
                for (nf, ip) in [("ipv4", "ip"), ("ipv6", "ip6")] {
                    v.push(format!(
                        "meta nfproto {nf} meta l4proto {p} {ifs}counter {ip} dscp set 0x1 comment \"!fw4: Mangle rule #{n}\""
                    ));
                }
            }
            v
        };
        let lan_in = "iifname { \"eth0\", \"eth1\" } ";
        let wan_out = "oifname { \"eth2\", \"eth3\" } ";
        assert_eq!(r.chain("mangle_prerouting"), four(4, lan_in));
        assert_eq!(
            r.chain("mangle_postrouting"),
            [
                four(3, wan_out),
                four(10, &format!("iifname \"eth4\" {wan_out}")),
                four(11, &format!("iifname \"eth4\" {wan_out}")),
                four(12, "oifname \"eth5\" "),
            ]
            .concat()
        );
        assert_eq!(
            r.chain("mangle_input"),
            [four(5, lan_in), four(6, "")].concat()
        );
        assert_eq!(
            r.chain("mangle_output"),
            [four(7, ""), four(8, ""), four(9, wan_out)].concat()
        );
        assert_eq!(
            r.chain("mangle_forward"),
            [four(1, ""), four(2, &format!("{lan_in}{wan_out}"))].concat()
        );
        assert!(r.warnings.0.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn masked_addresses_as_fw4s_06_subnet_mask_matches() {
        let r = run(
            "config rule\noption proto all\noption name 'Mask rule #1'\noption src_ip '::1/::ffff'\noption dest_ip '!::2/::ffff'\n\
             config rule\noption proto all\noption name 'Mask rule #2'\n\
             list src_ip '::1/::ffff'\nlist src_ip '::2/::ffff'\nlist src_ip '::3/128'\nlist src_ip '::4/128'\n\
             list src_ip '!::5/::ffff'\nlist src_ip '!::6/::ffff'\nlist src_ip '!::7/128'\nlist src_ip '!::8/128'\n\
             list dest_ip '::9/::ffff'\nlist dest_ip '::10/::ffff'\nlist dest_ip '::11/128'\nlist dest_ip '::12/128'\n\
             list dest_ip '!::13/::ffff'\nlist dest_ip '!::14/::ffff'\nlist dest_ip '!::15/128'\nlist dest_ip '!::16/128'\n\
             config rule\noption proto all\noption name 'Mask rule #3'\noption src_ip '::1/-64'\noption dest_ip '!::2/-64'\n",
            vec![],
        );
        let mut want = vec![
            "ip6 saddr & ::ffff == ::1 ip6 daddr & ::ffff != ::2 counter comment \"!fw4: Mask rule #1\"".to_string(),
        ];
        let src = [
            "ip6 saddr != { ::7, ::8 } ip6 saddr & ::ffff == ::1 ip6 saddr & ::ffff != ::5 ip6 saddr & ::ffff != ::6",
            "ip6 saddr != { ::7, ::8 } ip6 saddr & ::ffff == ::2 ip6 saddr & ::ffff != ::5 ip6 saddr & ::ffff != ::6",
            "ip6 saddr { ::3, ::4 } ip6 saddr != { ::7, ::8 } ip6 saddr & ::ffff != ::5 ip6 saddr & ::ffff != ::6",
        ];
        let dest = [
            "ip6 daddr != { ::15, ::16 } ip6 daddr & ::ffff == ::9 ip6 daddr & ::ffff != ::13 ip6 daddr & ::ffff != ::14",
            "ip6 daddr != { ::15, ::16 } ip6 daddr & ::ffff == ::10 ip6 daddr & ::ffff != ::13 ip6 daddr & ::ffff != ::14",
            "ip6 daddr { ::11, ::12 } ip6 daddr != { ::15, ::16 } ip6 daddr & ::ffff != ::13 ip6 daddr & ::ffff != ::14",
        ];
        for s in src {
            for d in dest {
                want.push(format!("{s} {d} counter comment \"!fw4: Mask rule #2\""));
            }
        }
        want.push(
            "ip6 saddr & ::ffff:ffff:ffff:ffff == ::1 ip6 daddr & ::ffff:ffff:ffff:ffff != ::2 counter comment \"!fw4: Mask rule #3\"".into(),
        );
        assert_eq!(r.chain("output"), want);
    }

    #[test]
    fn family_inheritance_as_fw4s_08() {
        let mut v4 = zone("ipv4only", &[]);
        v4.family = Some(IpFamily::V4);
        let r = run(
            "config rule\noption src ipv4only\noption proto tcp\noption dest_port 22\noption name 'Rule #1'\noption target accept\n",
            vec![v4.clone()],
        );
        assert_eq!(
            r.chain("input_ipv4only"),
            ["meta nfproto ipv4 tcp dport 22 counter accept comment \"!fw4: Rule #1\""]
        );
        let e = error(
            "config rule\noption src ipv4only\noption proto tcp\noption dest_port 22\noption name 'Rule #3'\noption target accept\noption family IPv6\n",
            vec![v4.clone()],
        );
        assert!(
            e.ends_with(
                "@rule[0] (Rule #3): is restricted to IPv6 but referenced source zone is IPv4 only"
            ),
            "{e}"
        );
        let sets = ipsets(&[("ipv4set", Some(IpFamily::V4))]);
        let e = run_with(
            "config rule\noption src ipv4only\noption proto tcp\noption ipset ipv4set\noption name 'Rule #4'\noption target accept\noption family IPv6\n",
            vec![v4],
            &sets,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("is restricted to IPv6 but referenced set match is IPv4 only"),
            "{e}"
        );
    }

    #[test]
    fn times_as_fw4s_09_time() {
        let rule = |n: u32, opt: &str| {
            format!(
                "config rule\noption name 'Time rule #{n}'\noption proto all\n{opt}\noption target ACCEPT\n"
            )
        };
        let text = [
            rule(1, "option start_date 2022-05-30T21:51:23"),
            rule(2, "option start_date 2022-05-30T21:51"),
            rule(3, "option start_date 2022-05-30T21"),
            rule(4, "option start_date 2022-05-30"),
            rule(5, "option start_date 2022-05"),
            rule(6, "option start_date 2022"),
            rule(7, "option start_time 21:51:23"),
            rule(8, "option start_time 21:51"),
            rule(9, "option start_time 21"),
            rule(
                10,
                "option start_date 2022-05-30T21:51:23\noption stop_date 2022-06-01T23:51:23",
            ),
            rule(11, "option start_time 21:51:23\noption stop_time 23:51:23"),
            rule(12, "option weekdays 'Monday tuEsday wed SUN Th'"),
        ]
        .concat();
        let r = run(&text, vec![]);
        // fw4's `>=` tests are ranges to the latest date and time here:
        // the contract's date and hour tests have both ends.
        let since = |d: &str| format!("meta time \"{d}\"-\"2500-12-31 23:59:59\"");
        let from = |t: &str| format!("meta hour \"{t}\"-\"23:59:59\"");
        let want: Vec<String> = [
            since("2022-05-30 21:51:23"),
            since("2022-05-30 21:51:00"),
            since("2022-05-30 21:00:00"),
            since("2022-05-30 00:00:00"),
            since("2022-05-01 00:00:00"),
            since("2022-01-01 00:00:00"),
            from("21:51:23"),
            from("21:51:00"),
            from("21:00:00"),
            "meta time \"2022-05-30 21:51:23\"-\"2022-06-01 23:51:23\"".into(),
            "meta hour \"21:51:23\"-\"23:51:23\"".into(),
            "meta day { \"Monday\", \"Tuesday\", \"Wednesday\", \"Sunday\", \"Thursday\" }".into(),
        ]
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{m} counter accept comment \"!fw4: Time rule #{}\"", i + 1))
        .collect();
        assert_eq!(r.chain("output"), want);
    }

    #[test]
    fn notrack_rules_as_fw4s_10_notrack() {
        let r = run(
            "config rule\noption name 'Notrack rule #1'\noption src zone1\noption target NOTRACK\n",
            vec![zone("zone1", &["eth0"])],
        );
        assert_eq!(
            r.chain("notrack_zone1"),
            [
                "meta l4proto tcp counter notrack comment \"!fw4: Notrack rule #1\"",
                "meta l4proto udp counter notrack comment \"!fw4: Notrack rule #1\""
            ]
        );
        assert!(
            r.zones
                .get("zone1")
                .unwrap()
                .dflags
                .contains(&Need::Notrack)
        );
    }

    #[test]
    fn logs_as_fw4s_11_log() {
        let r = run(
            "config rule\noption proto any\noption log 1\n\
             config rule\noption name 'Explicit rule name'\noption proto any\noption log 1\n\
             config rule\noption proto any\noption log 'Explicit prefix: '\n",
            vec![zone("wan", &[])],
        );
        assert_eq!(
            r.chain("output"),
            [
                "counter log prefix \"@rule[0]: \" comment \"!fw4: @rule[0]\"",
                "counter log prefix \"Explicit rule name: \" comment \"!fw4: Explicit rule name\"",
                "counter log prefix \"Explicit prefix: \" comment \"!fw4: @rule[2]\""
            ]
        );
    }

    #[test]
    fn marks_as_fw4s_12_mark() {
        let rule = |n: u32, opt: &str| {
            format!(
                "config rule\noption name 'Mark rule #{n}'\noption proto all\noption src '*'\noption target MARK\n{opt}\n"
            )
        };
        let text = [
            rule(1, "option set_mark 0xaa"),
            rule(2, "option set_mark 0xab/0xff00"),
            rule(3, "option set_xmark 0xac"),
            rule(4, "option set_xmark 0xad/0xff00"),
            rule(5, "option set_xmark 0/0xffffff51"),
            rule(6, "option set_xmark 0xaf/0xaf"),
        ]
        .concat();
        let r = run(&text, vec![]);
        assert_eq!(
            r.chain("mangle_input"),
            [
                "counter meta mark set 0xaa comment \"!fw4: Mark rule #1\"",
                "counter meta mark set mark and 0xffff0054 xor 0xab comment \"!fw4: Mark rule #2\"",
                "counter meta mark set 0xac comment \"!fw4: Mark rule #3\"",
                // fw4's one `mark and 0xffff00ff xor 0xad`: the contract's
                // masked set takes no bits outside the mask, so two.
                "counter meta mark set mark and 0xffff00ff meta mark set mark xor 0xad comment \"!fw4: Mark rule #4\"",
                "counter meta mark set mark and 0xae comment \"!fw4: Mark rule #5\"",
                "counter meta mark set mark or 0xaf comment \"!fw4: Mark rule #6\"",
            ]
        );
    }

    #[test]
    fn verdicts_jump_to_zone_chains_and_set_their_flags() {
        let mut wan = zone("wan", &["eth1"]);
        wan.log = 1;
        let r = run(
            "config rule\noption name a\noption src wan\noption dest lan\noption proto tcp\noption target ACCEPT\n\
             config rule\noption name b\noption src wan\noption proto udp\noption target REJECT\n\
             config rule\noption name c\noption src wan\noption proto udp\noption target ACCEPT\n\
             config rule\noption name d\noption src lan\noption proto udp\noption target REJECT\n\
             config rule\noption name e\noption dest wan\noption proto udp\noption target DROP\n\
             config rule\noption name f\noption src '*'\noption dest lan\noption proto udp\noption target drop\n\
             config rule\noption name g\noption proto udp\noption target drop\n",
            vec![zone("lan", &["eth0"]), wan],
        );
        assert_eq!(
            r.chain("forward_wan"),
            ["meta l4proto tcp counter jump accept_to_lan comment \"!fw4: a\""]
        );
        assert_eq!(
            r.chain("input_wan"),
            [
                "meta l4proto udp counter jump reject_from_wan comment \"!fw4: b\"",
                "meta l4proto udp counter accept comment \"!fw4: c\""
            ]
        );
        assert_eq!(
            r.chain("input_lan"),
            ["meta l4proto udp counter jump handle_reject comment \"!fw4: d\""]
        );
        assert_eq!(
            r.chain("output_wan"),
            ["meta l4proto udp counter jump drop_to_wan comment \"!fw4: e\""]
        );
        assert_eq!(
            r.chain("forward"),
            ["meta l4proto udp counter jump drop_to_lan comment \"!fw4: f\""]
        );
        assert_eq!(
            r.chain("output"),
            ["meta l4proto udp counter drop comment \"!fw4: g\""]
        );
        let lan = r.zones.get("lan").unwrap();
        let wan = r.zones.get("wan").unwrap();
        assert_eq!(
            lan.dflags,
            BTreeSet::from([Need::Verdict(Verdict::Accept), Need::Verdict(Verdict::Drop)])
        );
        assert!(lan.sflags.is_empty());
        assert_eq!(wan.sflags, BTreeSet::from([Need::Verdict(Verdict::Reject)]));
        assert_eq!(wan.dflags, BTreeSet::from([Need::Verdict(Verdict::Drop)]));
    }

    #[test]
    fn helpers_devices_and_limited_logs() {
        let mut lan = zone("lan", &["br-lan"]);
        lan.log_limit = Some(Rate::per_minute(10));
        let r = run(
            "config rule 'ftp_helper'\noption src lan\noption proto tcp\noption dest_port 21\noption target HELPER\noption set_helper ftp\n\
             config rule\noption name limited\noption src lan\noption proto tcp\noption log 1\noption target accept\n\
             config rule\noption name own\noption src lan\noption proto tcp\noption log 1\noption log_limit 1/s\noption target accept\n\
             config rule\noption name dev\noption proto udp\noption device eth9\noption direction out\n",
            vec![lan],
        );
        assert_eq!(
            r.chain("helper_lan"),
            ["tcp dport 21 counter ct helper set \"ftp\" comment \"!fw4: ftp_helper\""]
        );
        assert!(r.zones.get("lan").unwrap().dflags.contains(&Need::Helper));
        assert_eq!(
            r.chain("input_lan"),
            [
                "meta l4proto tcp limit name \"lan_log_limit\" log prefix \"limited: \"",
                "meta l4proto tcp counter accept comment \"!fw4: limited\"",
                "meta l4proto tcp limit rate 1/second log prefix \"own: \"",
                "meta l4proto tcp counter accept comment \"!fw4: own\"",
            ]
        );
        assert_eq!(
            r.chain("output"),
            ["meta l4proto udp oifname \"eth9\" counter comment \"!fw4: dev\""]
        );
        // An IPv4-only helper makes the rule IPv4.
        let r = run(
            "config rule\noption name p\noption src lan\noption proto tcp\noption target helper\noption set_helper pptp\n",
            vec![zone("lan", &[])],
        );
        assert_eq!(
            r.chain("helper_lan"),
            [
                "meta nfproto ipv4 meta l4proto tcp counter ct helper set \"pptp\" comment \"!fw4: p\""
            ]
        );
    }

    #[test]
    fn set_matches_and_their_family() {
        let sets = ipsets(&[("blocked", Some(IpFamily::V6))]);
        let r = run_with(
            "config rule\noption name s\noption proto all\noption ipset '!blocked src'\noption target drop\n",
            vec![],
            &sets,
        )
        .unwrap();
        assert_eq!(
            r.out
                .of("output")
                .map(|r| r.matches().to_vec())
                .next()
                .unwrap()
                .iter()
                .map(|m| (m.matcher().clone(), m.is_negated()))
                .collect::<Vec<_>>(),
            [
                (Matcher::Nfproto(IpFamily::V6), false),
                (
                    Matcher::InSet {
                        fields: vec![Field::Saddr(IpFamily::V6)],
                        set: "blocked".into()
                    },
                    true
                )
            ]
        );
    }

    #[test]
    fn warnings_for_what_fw4_ignores() {
        let r = run(
            "config rule\noption proto tcp\noption extra '--foo'\noption _name x\noption set_dscp EF\noption colour blue\n\
             config rule\noption src lan\noption target mark\noption set_mark 1\n",
            vec![zone("lan", &[])],
        );
        assert_eq!(
            r.warnings.0,
            [
                "uci line 4, @rule[0] option '_name': is deprecated by fw4; ignored",
                "uci line 3, @rule[0] option 'extra': is not supported by fw4; ignored",
                "uci line 6, @rule[0] option 'colour': is an unknown option; ignored",
                "uci line 5, @rule[0] option 'set_dscp': has no effect without target 'DSCP' (fw4 ignores it)",
                "uci line 8, @rule[1] option 'src': the zone has no devices: fw4 matches the rule on every device",
            ]
        );
    }

    #[test]
    fn openwrts_default_rules() {
        let text = include_str!("../examples/firewall.default");
        let sections: Vec<Section> = uci::parse(text)
            .unwrap()
            .into_iter()
            .filter(|s| s.kind == "rule")
            .collect();
        let mut zones = Zones(vec![
            zone("lan", &["br-lan"]),
            zone("wan", &["wan", "wan6"]),
        ]);
        let (mut out, mut warnings) = (Placed::default(), Warnings::default());
        add_rules(
            &sections,
            &mut zones,
            &defaults(),
            &ipsets(&[]),
            &mut out,
            &mut warnings,
        )
        .unwrap();
        let r = Run {
            out,
            zones,
            warnings,
        };
        let c = |name: &str| format!("counter accept comment \"!fw4: {name}\"");
        let limit = "limit rate 1000/second";
        assert_eq!(
            r.chain("input_wan"),
            [
                format!("meta nfproto ipv4 udp dport 68 {}", c("Allow-DHCP-Renew")),
                format!("meta nfproto ipv4 icmp type 8 {}", c("Allow-Ping")),
                format!("meta nfproto ipv4 meta l4proto 2 {}", c("Allow-IGMP")),
                format!("meta nfproto ipv6 udp dport 546 {}", c("Allow-DHCPv6")),
                format!(
                    "ip6 saddr fe80::/10 icmpv6 type . icmpv6 code {{ 130 . 0, 131 . 0, 132 . 0, 143 . 0 }} {}",
                    c("Allow-MLD")
                ),
                format!(
                    "meta nfproto ipv6 icmpv6 type {{ 128, 129, 1, 3, 133, 134 }} {limit} {}",
                    c("Allow-ICMPv6-Input")
                ),
                format!(
                    "meta nfproto ipv6 icmpv6 type . icmpv6 code {{ 2 . 0, 4 . 0, 4 . 1, 135 . 0, 136 . 0 }} {limit} {}",
                    c("Allow-ICMPv6-Input")
                ),
            ]
        );
        let accept_to_lan =
            |name: &str| format!("counter jump accept_to_lan comment \"!fw4: {name}\"");
        assert_eq!(
            r.chain("forward_wan"),
            [
                format!(
                    "meta nfproto ipv6 icmpv6 type {{ 128, 129, 1, 3 }} {limit} {}",
                    c("Allow-ICMPv6-Forward")
                ),
                format!(
                    "meta nfproto ipv6 icmpv6 type . icmpv6 code {{ 2 . 0, 4 . 0, 4 . 1 }} {limit} {}",
                    c("Allow-ICMPv6-Forward")
                ),
                format!("meta l4proto 50 {}", accept_to_lan("Allow-IPSec-ESP")),
                format!("udp dport 500 {}", accept_to_lan("Allow-ISAKMP")),
            ]
        );
        assert_eq!(
            r.zones.get("lan").unwrap().dflags,
            BTreeSet::from([Need::Verdict(Verdict::Accept)])
        );
        assert!(r.warnings.0.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn names_and_comments() {
        let e = error(
            &format!("config rule\noption name '{}'\n", "n".repeat(130)),
            vec![],
        );
        assert!(e.contains("option 'name': the comment"), "{e}");
        assert!(e.ends_with("is longer than 128 bytes"), "{e}");
        let r = run("config rule 'named'\noption proto all\n", vec![]);
        assert_eq!(r.chain("output"), ["counter comment \"!fw4: named\""]);
    }
}
