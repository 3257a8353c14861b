//! `defaults`, `zone` and `forwarding` sections: the default policies, each
//! zone's devices and subnets and what it needs of the ruleset (which
//! verdict chains, NAT, helper and notrack chains), and the forwardings
//! between zones.

use std::collections::BTreeSet;

use wasmwall_sdk::{IcmpxReject, IpFamily, Rate, RejectWith, Rule, WorldState};

use crate::addr::{self, Subnet};
use crate::error::{Error, Warnings};
use crate::helpers::{self, HELPERS};
use crate::opts::{Known, bool_or, number, parsed, warn_unknown, words};
use crate::placed::Placed;
use crate::uci::{Opt, Section};
use crate::values::{parse_bool, parse_family, parse_limit, parse_policy, parse_reject_code};

/// What a zone or the defaults do with a packet: fw4's `policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Reject,
    Drop,
}

impl Verdict {
    /// The word in chain names: `accept_to_lan`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::Drop => "drop",
        }
    }
}

/// The chains a zone needs, besides its `input_`, `output_` and
/// `forward_` ones: fw4's `sflags` (verdicts as a source) and `dflags`
/// (verdicts as a destination, and the helper, notrack and NAT chains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// `accept_from_Z`, `reject_from_Z`, ... as a source; `accept_to_Z`,
    /// ... as a destination.
    Verdict(Verdict),
    /// `helper_Z`.
    Helper,
    /// `notrack_Z`.
    Notrack,
    /// `dstnat_Z`.
    Dnat,
    /// `srcnat_Z`.
    Snat,
}

/// The `defaults` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub input: Verdict,
    pub output: Verdict,
    pub forward: Verdict,
    pub drop_invalid: bool,
    /// fw4's `tcp_reject_code` and `any_reject_code`.
    pub tcp_reject_code: RejectWith,
    pub any_reject_code: RejectWith,
    pub synflood_protect: bool,
    pub synflood_rate: Rate,
    pub synflood_burst: u32,
    /// The kernel settings fw3 wrote from these options, each only where
    /// the config writes it: `(key, value)`.
    pub sysctls: Vec<(&'static str, String)>,
    pub auto_helper: bool,
    pub flow_offloading: bool,
    pub flow_offloading_hw: bool,
}

/// One of the zone's device and subnet matches (fw4's `match_rules`): a
/// zone has one per family and device group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneMatch {
    /// None for both families.
    pub family: Option<IpFamily>,
    pub devices_pos: Vec<String>,
    pub devices_neg: Vec<String>,
    /// Negated wildcard devices, one test each (`iifname != "eth*"`).
    pub devices_neg_wildcard: Vec<String>,
    pub subnets_pos: Vec<Subnet>,
    pub subnets_neg: Vec<Subnet>,
    /// Subnets with a mask that is not a prefix, one test each.
    pub subnets_masked: Vec<Subnet>,
}

/// A `zone` section, resolved against the network config and the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// None for both families.
    pub family: Option<IpFamily>,
    pub input: Verdict,
    pub output: Verdict,
    pub forward: Verdict,
    pub masq: bool,
    pub masq6: bool,
    pub masq_allow_invalid: bool,
    pub masq_src: Vec<Subnet>,
    pub masq_dest: Vec<Subnet>,
    pub mtu_fix: bool,
    /// fw4's `log` bits: 1 logs rejected and dropped packets, 2 the MSS fix.
    pub log: u32,
    /// The limit of its logging; the ruleset declares a named limit for it
    /// (`log_limit_name`).
    pub log_limit: Option<Rate>,
    pub counter: bool,
    pub auto_helper: bool,
    /// The helpers named in `helper`.
    pub helpers: Vec<String>,
    pub matches: Vec<ZoneMatch>,
    /// The devices it matches, not negated (`define lan_devices`).
    pub match_devices: Vec<String>,
    /// Its subnets: the `subnet` option and the addresses of its devices.
    pub match_subnets: Vec<Subnet>,
    pub sflags: BTreeSet<Need>,
    pub dflags: BTreeSet<Need>,
}

impl Zone {
    /// The named limit object of the zone's logging (fw4 names it
    /// `lan.log_limit`; names here cannot hold a '.').
    pub fn log_limit_name(&self) -> String {
        format!("{}_log_limit", self.name)
    }
}

/// Every enabled zone, in the order of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones(pub Vec<Zone>);

impl Zones {
    pub fn get(&self, name: &str) -> Option<&Zone> {
        self.0.iter().find(|z| z.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Zone> {
        self.0.iter_mut().find(|z| z.name == name)
    }
}

/// The options of a `defaults` section.
const DEFAULTS_OPTIONS: Known = Known {
    options: &[
        "input",
        "output",
        "forward",
        "drop_invalid",
        "tcp_reject_code",
        "any_reject_code",
        "syn_flood",
        "synflood_protect",
        "synflood_rate",
        "synflood_burst",
        "tcp_syncookies",
        "tcp_ecn",
        "tcp_window_scaling",
        "accept_redirects",
        "accept_source_route",
        "auto_helper",
        "flow_offloading",
        "flow_offloading_hw",
        "auto_includes",
    ],
    unsupported: &["custom_chains", "disable_ipv6"],
    deprecated: &[],
};

/// The sysctls of the options fw3 applied and fw4 only reads. Each is
/// written only where the config gives the option: the kernel's own
/// default stays otherwise.
fn sysctls(s: &Section) -> Result<Vec<(&'static str, String)>, Error> {
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut out = Vec::new();
    if let Some(b) = parsed(s, "tcp_syncookies", parse_bool)? {
        out.push(("net.ipv4.tcp_syncookies", flag(b)));
    }
    if let Some(n) = parsed(s, "tcp_ecn", number)? {
        if n > 2 {
            let opt = s.get("tcp_ecn").expect("parsed");
            return Err(Error::option(
                s,
                opt,
                format!("{n} is not 0 (off), 1 (on) or 2 (when asked)"),
            ));
        }
        out.push(("net.ipv4.tcp_ecn", n.to_string()));
    }
    if let Some(b) = parsed(s, "tcp_window_scaling", parse_bool)? {
        out.push(("net.ipv4.tcp_window_scaling", flag(b)));
    }
    if let Some(b) = parsed(s, "accept_redirects", parse_bool)? {
        out.push(("net.ipv4.conf.all.accept_redirects", flag(b)));
        out.push(("net.ipv4.conf.default.accept_redirects", flag(b)));
    }
    if let Some(b) = parsed(s, "accept_source_route", parse_bool)? {
        out.push(("net.ipv4.conf.all.accept_source_route", flag(b)));
        out.push(("net.ipv4.conf.default.accept_source_route", flag(b)));
    }
    Ok(out)
}

/// The first `defaults` section (fw4 warns of and ignores the others); its
/// defaults where there is none.
pub fn parse_defaults(sections: &[Section], warnings: &mut Warnings) -> Result<Defaults, Error> {
    let mut found = sections.iter().filter(|s| s.kind == "defaults");
    let empty = Section {
        kind: "defaults".into(),
        name: None,
        index: 0,
        line: 0,
        options: Vec::new(),
    };
    let s = found.next().unwrap_or(&empty);
    for extra in found {
        warnings.section(extra, "a second defaults section; ignored, as fw4 does");
    }
    warn_unknown(s, &DEFAULTS_OPTIONS, warnings);
    let policy = |name| Ok::<_, Error>(parsed(s, name, parse_policy)?.unwrap_or(Verdict::Drop));
    let syn_flood = parsed(s, "syn_flood", parse_bool)?;
    let synflood_protect = parsed(s, "synflood_protect", parse_bool)?.or(syn_flood);
    Ok(Defaults {
        input: policy("input")?,
        output: policy("output")?,
        forward: policy("forward")?,
        drop_invalid: bool_or(s, "drop_invalid", false)?,
        tcp_reject_code: parsed(s, "tcp_reject_code", parse_reject_code)?
            .unwrap_or(RejectWith::TcpReset),
        any_reject_code: parsed(s, "any_reject_code", parse_reject_code)?
            .unwrap_or(RejectWith::Icmpx(IcmpxReject::PortUnreachable)),
        synflood_protect: synflood_protect.unwrap_or(false),
        synflood_rate: parsed(s, "synflood_rate", parse_limit)?
            .map(|l| l.rate())
            .unwrap_or(Rate::per_second(25)),
        synflood_burst: parsed(s, "synflood_burst", number)?.unwrap_or(50),
        sysctls: sysctls(s)?,
        auto_helper: bool_or(s, "auto_helper", true)?,
        flow_offloading: bool_or(s, "flow_offloading", false)?,
        flow_offloading_hw: bool_or(s, "flow_offloading_hw", false)?,
    })
}

/// `4` or `6`, as fw4 writes a family in its messages and comments.
pub fn family_text(family: Option<IpFamily>) -> &'static str {
    match family {
        None => "IPv4/IPv6",
        Some(IpFamily::V4) => "IPv4",
        Some(_) => "IPv6",
    }
}

/// Zone names: they end chain names (`accept_from_NAME`, at most 32
/// bytes), so letters, digits, '_' and '-', at most 20 bytes.
const ZONE_NAME_MAX: usize = 20;

const ZONE_OPTIONS: Known = Known {
    options: &[
        "enabled",
        "name",
        "family",
        "network",
        "device",
        "subnet",
        "input",
        "output",
        "forward",
        "masq",
        "masq_allow_invalid",
        "masq_src",
        "masq_dest",
        "masq6",
        "mtu_fix",
        "log",
        "log_limit",
        "auto_helper",
        "helper",
        "counter",
    ],
    unsupported: &["extra", "extra_src", "extra_dest", "custom_chains"],
    deprecated: &[],
};

/// What the zones are read with: the devices of a network name (from the
/// network config or the `devices` key), the world for the addresses of
/// those devices and the helpers the kernel has.
pub struct Context<'a> {
    pub devices_of: &'a dyn Fn(&str) -> Option<Vec<String>>,
    pub state: &'a WorldState,
}

impl Context<'_> {
    /// The subnets of a device's addresses (`192.168.1.1/24` is
    /// `192.168.1.0/24`).
    fn device_subnets(&self, device: &str) -> Vec<Subnet> {
        self.state
            .interface(device)
            .map(|i| {
                i.addresses
                    .iter()
                    .filter_map(|a| addr::subnet(a).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An address option's value: an address or subnet, or a network's
    /// name for its devices' addresses.
    fn subnets(&self, section: &Section, opt: &Opt, word: &str) -> Result<Vec<Subnet>, Error> {
        match addr::subnet(word) {
            Ok(s) => Ok(vec![s]),
            Err(message) => {
                let (invert, name) = match word.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, word),
                };
                match (self.devices_of)(name) {
                    Some(devices) => Ok(devices
                        .iter()
                        .flat_map(|d| self.device_subnets(d))
                        .map(|s| Subnet { invert, ..s })
                        .collect()),
                    None => Err(Error::option(
                        section,
                        opt,
                        format!("{message}, nor a network's name"),
                    )),
                }
            }
        }
    }
}

/// A device match of a zone: a name, `name+` for every name that starts
/// so, `!` to negate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceMatch {
    device: String,
    invert: bool,
}

/// Every enabled `zone` section. Placed rules for the helpers go into
/// `out`.
pub fn parse_zones(
    sections: &[Section],
    defaults: &Defaults,
    ctx: &Context,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<Zones, Error> {
    let mut zones = Zones::default();
    for s in sections.iter().filter(|s| s.kind == "zone") {
        warn_unknown(s, &ZONE_OPTIONS, warnings);
        if !bool_or(s, "enabled", true)? {
            warnings.section(s, "is disabled; ignored");
            continue;
        }
        let name = match crate::opts::single(s, "name")? {
            None => return Err(Error::section(s, "a zone needs a name (option 'name')")),
            Some((opt, n)) => {
                let ok = !n.is_empty()
                    && n.len() <= ZONE_NAME_MAX
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok {
                    return Err(Error::option(
                        s,
                        opt,
                        format!(
                            "zone name {n:?}: use 1-{ZONE_NAME_MAX} letters, digits, '_' or '-' (the name ends chain names)"
                        ),
                    ));
                }
                if zones.get(n).is_some() {
                    return Err(Error::option(
                        s,
                        opt,
                        format!("a zone named {n:?} comes earlier"),
                    ));
                }
                n.to_string()
            }
        };
        let zone = parse_zone(s, name, defaults, ctx, warnings)?;
        add_helper_rules(&zone, ctx, out);
        zones.0.push(zone);
    }
    Ok(zones)
}

fn parse_zone(
    s: &Section,
    name: String,
    defaults: &Defaults,
    ctx: &Context,
    warnings: &mut Warnings,
) -> Result<Zone, Error> {
    let written_family = parsed(s, "family", parse_family)?.flatten();
    let mut match_devices = Vec::new();
    let mut related = Vec::new();
    for (opt, word) in words(s, "network") {
        let (invert, net) = match word.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, word),
        };
        match (ctx.devices_of)(net) {
            Some(devices) => {
                for device in devices {
                    if !invert {
                        related.extend(ctx.device_subnets(&device));
                    }
                    match_devices.push(DeviceMatch { device, invert });
                }
            }
            None => warnings.option(
                s,
                opt,
                format!(
                    "network {net:?} has no device (neither the network config nor `devices` names it); the zone matches nothing for it"
                ),
            ),
        }
    }
    for (_, word) in words(s, "device") {
        let (invert, device) = match word.strip_prefix('!') {
            Some(d) => (true, d),
            None => (false, word),
        };
        match_devices.push(DeviceMatch {
            device: device.to_string(),
            invert,
        });
    }
    // Two networks on one device (`wan` and `wan6`) match it once.
    let mut seen = BTreeSet::new();
    match_devices.retain(|d| seen.insert((d.device.clone(), d.invert)));
    let subnets_of = |option: &str| -> Result<Vec<Subnet>, Error> {
        let mut all = Vec::new();
        for (opt, word) in words(s, option) {
            all.extend(ctx.subnets(s, opt, word)?);
        }
        Ok(all)
    };
    let subnets = subnets_of("subnet")?;
    let masq_src = subnets_of("masq_src")?;
    let masq_dest = subnets_of("masq_dest")?;
    related.extend(subnets.iter().filter(|n| !n.invert).cloned());

    let subnet_family = {
        let v4 = subnets.iter().any(|n| n.family == IpFamily::V4);
        let v6 = subnets.iter().any(|n| n.family == IpFamily::V6);
        match (v4, v6) {
            (true, false) => Some(IpFamily::V4),
            (false, true) => Some(IpFamily::V6),
            _ => None,
        }
    };
    let family = match (written_family, subnet_family) {
        (Some(w), Some(f)) if w != f => {
            return Err(Error::section(
                s,
                format!(
                    "is restricted to {} but its subnet list is {} only",
                    family_text(Some(w)),
                    family_text(Some(f))
                ),
            ));
        }
        (w, f) => w.or(f),
    };

    let groups = device_groups(s, &match_devices, warnings);
    let mut matches = Vec::new();
    let has_v4 = subnets.iter().any(|n| n.family == IpFamily::V4);
    let has_v6 = subnets.iter().any(|n| n.family == IpFamily::V6);
    if !match_devices.is_empty() || has_v4 || has_v6 {
        for (pos, neg, neg_wild) in &groups {
            let with = |family, nets: (Vec<Subnet>, Vec<Subnet>, Vec<Subnet>)| ZoneMatch {
                family,
                devices_pos: pos.clone(),
                devices_neg: neg.clone(),
                devices_neg_wildcard: neg_wild.clone(),
                subnets_pos: nets.0,
                subnets_neg: nets.1,
                subnets_masked: nets.2,
            };
            if family.is_none() && !has_v4 && !has_v6 {
                matches.push(with(None, Default::default()));
                continue;
            }
            for f in [IpFamily::V4, IpFamily::V6] {
                if family.is_none() || family == Some(f) {
                    let of_family: Vec<Subnet> =
                        subnets.iter().filter(|n| n.family == f).cloned().collect();
                    for nets in group_by_masking(&of_family) {
                        matches.push(with(Some(f), nets));
                    }
                }
            }
        }
    }

    let input = parsed(s, "input", parse_policy)?.unwrap_or(defaults.input);
    let output = parsed(s, "output", parse_policy)?.unwrap_or(defaults.output);
    let forward = parsed(s, "forward", parse_policy)?.unwrap_or(defaults.forward);
    let masq = bool_or(s, "masq", false)?;
    let masq6 = bool_or(s, "masq6", false)?;
    let mut helper_names = Vec::new();
    for (opt, word) in words(s, "helper") {
        let Some(h) = helpers::by_name(word) else {
            return Err(Error::option(
                s,
                opt,
                format!(
                    "{word:?} is not a conntrack helper fw4 knows ({})",
                    HELPERS.map(|h| h.name).join(", ")
                ),
            ));
        };
        if !ctx.state.features.has_ct_helper(h.name) {
            warnings.option(
                s,
                opt,
                format!("the kernel has no {:?} helper; not assigned", h.name),
            );
        }
        helper_names.push(h.name.to_string());
    }
    let auto_helper = defaults.auto_helper && bool_or(s, "auto_helper", true)?;

    let sflags = BTreeSet::from([Need::Verdict(input)]);
    let mut dflags = BTreeSet::from([Need::Verdict(output), Need::Verdict(forward)]);
    if masq || masq6 {
        dflags.insert(Need::Snat);
    }
    if (auto_helper && !(masq || masq6)) || !helper_names.is_empty() {
        dflags.insert(Need::Helper);
    }
    let match_devices_pos = match_devices
        .iter()
        .filter(|d| !d.invert)
        .map(|d| wildcard(&d.device))
        .collect();
    Ok(Zone {
        name,
        family,
        input,
        output,
        forward,
        masq,
        masq6,
        masq_allow_invalid: bool_or(s, "masq_allow_invalid", false)?,
        masq_src,
        masq_dest,
        mtu_fix: bool_or(s, "mtu_fix", false)?,
        log: parsed(s, "log", number)?.unwrap_or(0),
        log_limit: parsed(s, "log_limit", parse_limit)?.map(|l| l.rate()),
        counter: bool_or(s, "counter", true)?,
        auto_helper,
        helpers: helper_names,
        matches,
        match_devices: match_devices_pos,
        match_subnets: related,
        sflags,
        dflags,
    })
}

/// `eth+` is nft's `eth*`.
fn wildcard(device: &str) -> String {
    match device.strip_suffix('+') {
        Some(stem) => format!("{stem}*"),
        None => device.to_string(),
    }
}

/// One group of a zone's device matches: the positive names, the negated
/// names, the negated wildcards.
type DeviceGroup = (Vec<String>, Vec<String>, Vec<String>);

/// fw4's grouping of device matches: every positive wildcard in a group of
/// its own (a wildcard cannot be in a set), the plain names together; the
/// negated ones in every group. `+` alone matches every device (no test);
/// `!+` none: where nothing else is matched, the zone has no match at all
/// (fw4 matches an impossible name, `/never/`, which the runtime refuses
/// as a name).
fn device_groups(
    s: &Section,
    devices: &[DeviceMatch],
    warnings: &mut Warnings,
) -> Vec<DeviceGroup> {
    let mut wild_groups = Vec::new();
    let mut plain = Vec::new();
    let mut neg_plain = Vec::new();
    let mut neg_wild = Vec::new();
    let mut never = false;
    for d in devices {
        let stem = d.device.strip_suffix('+').unwrap_or(&d.device);
        if stem.contains('+') {
            warnings.section(
                s,
                format!("device {:?} is not a name or NAME+; skipped", d.device),
            );
            continue;
        }
        let is_wild = d.device.ends_with('+');
        match (d.invert, is_wild, stem.is_empty()) {
            (false, true, true) => {}
            (true, true, true) => never = true,
            (false, true, false) => wild_groups.push(wildcard(&d.device)),
            (false, false, _) => plain.push(d.device.clone()),
            (true, true, false) => neg_wild.push(wildcard(&d.device)),
            (true, false, _) => neg_plain.push(d.device.clone()),
        }
    }
    let mut groups: Vec<DeviceGroup> = wild_groups
        .into_iter()
        .map(|w| (vec![w], neg_plain.clone(), neg_wild.clone()))
        .collect();
    if !plain.is_empty() {
        groups.push((plain, neg_plain, neg_wild));
    } else if groups.is_empty() && !never {
        groups.push((Vec::new(), neg_plain, neg_wild));
    }
    groups
}

/// fw4's grouping of subnets: a mask that is not a prefix needs a test of
/// its own, so each starts a group; the prefixes go together. Each group
/// is (positive, negated, masked).
pub fn group_by_masking(subnets: &[Subnet]) -> Vec<(Vec<Subnet>, Vec<Subnet>, Vec<Subnet>)> {
    let (mut plain, mut odd, mut neg_plain, mut neg_odd) = (vec![], vec![], vec![], vec![]);
    for n in subnets {
        match (n.invert, n.bits.is_some()) {
            (false, false) => odd.push(n.clone()),
            (false, true) => plain.push(n.clone()),
            (true, false) => neg_odd.push(n.clone()),
            (true, true) => neg_plain.push(n.clone()),
        }
    }
    let mut groups: Vec<_> = odd
        .into_iter()
        .map(|o| {
            let mut masked = vec![o];
            masked.extend(neg_odd.iter().cloned());
            (Vec::new(), neg_plain.clone(), masked)
        })
        .collect();
    if !plain.is_empty() {
        groups.push((plain, neg_plain, neg_odd));
    } else if groups.is_empty() {
        groups.push((Vec::new(), neg_plain, neg_odd));
    }
    groups
}

/// The helper assignments of a zone that has a `helper_Z` chain: its
/// `helper` list, or every helper with `auto_helper`; those the kernel
/// lacks are left out.
fn add_helper_rules(zone: &Zone, ctx: &Context, out: &mut Placed) {
    if !zone.dflags.contains(&Need::Helper) {
        return;
    }
    let chosen: Vec<&helpers::Helper> = if zone.helpers.is_empty() {
        HELPERS.iter().collect()
    } else {
        zone.helpers
            .iter()
            .filter_map(|n| helpers::by_name(n))
            .collect()
    };
    for h in chosen {
        if !ctx.state.features.has_ct_helper(h.name) {
            continue;
        }
        let mut rule = Rule::new();
        if let Some(f) = h.family {
            rule = rule.nfproto(f);
        }
        let rule = rule
            .dport_range(h.proto, h.port, h.port)
            .ct_helper(h.object())
            .comment(format!("!fw4: {}", h.description))
            .continue_();
        out.push(format!("helper_{}", zone.name), rule);
    }
}

/// Every enabled `forwarding` section: a jump to the destination's
/// `accept_to_` chain (or accept, to any zone) in the source's `forward_`
/// chain (or `forward`, from any).
pub fn add_forwardings(
    sections: &[Section],
    zones: &mut Zones,
    out: &mut Placed,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    const KNOWN: Known = Known {
        options: &["enabled", "name", "family", "src", "dest"],
        unsupported: &[],
        deprecated: &[],
    };
    for s in sections.iter().filter(|s| s.kind == "forwarding") {
        warn_unknown(s, &KNOWN, warnings);
        if !bool_or(s, "enabled", true)? {
            warnings.section(s, "is disabled; ignored");
            continue;
        }
        let src = zone_ref(s, "src", zones)?;
        let dest = zone_ref(s, "dest", zones)?;
        let mut family = parsed(s, "family", parse_family)?.flatten();
        for (what, zone) in [("source", &src), ("destination", &dest)] {
            let Some(z) = zone.and_then(|z| zones.get(z)) else {
                continue;
            };
            match (family, z.family) {
                (_, None) => {}
                (None, f) => family = f,
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::section(
                        s,
                        format!(
                            "is {} only, but its {what} zone {:?} is {} only",
                            family_text(Some(a)),
                            z.name,
                            family_text(Some(b))
                        ),
                    ));
                }
                _ => {}
            }
        }
        let name = match crate::opts::single(s, "name")? {
            Some((_, n)) => n.to_string(),
            None => format!(
                "Accept {} to {} {}forwarding",
                src.unwrap_or("any"),
                dest.unwrap_or("any"),
                match family {
                    None => String::new(),
                    Some(_) => format!("{} ", family_text(family)),
                }
            ),
        };
        let chain = match src {
            Some(z) => format!("forward_{z}"),
            None => "forward".to_string(),
        };
        let mut rule = Rule::new();
        if let Some(f) = family {
            rule = rule.nfproto(f);
        }
        let rule = rule.comment(format!("!fw4: {name}"));
        let rule = match dest {
            Some(d) => {
                if let Some(z) = zones.get_mut(d) {
                    z.dflags.insert(Need::Verdict(Verdict::Accept));
                }
                rule.jump(format!("accept_to_{d}"))
            }
            None => rule.accept(),
        };
        out.push(chain, rule);
    }
    Ok(())
}

/// A `src` or `dest` option naming a zone, or `*` for any (None).
fn zone_ref<'a>(s: &'a Section, option: &str, zones: &Zones) -> Result<Option<&'a str>, Error> {
    match crate::opts::single(s, option)? {
        None => Err(Error::section(s, format!("option '{option}' is required"))),
        Some((_, "*")) => Ok(None),
        Some((opt, name)) if zones.get(name).is_none() => {
            Err(Error::option(s, opt, format!("there is no zone {name:?}")))
        }
        Some((_, name)) => Ok(Some(name)),
    }
}
