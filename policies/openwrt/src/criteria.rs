//! What a rule or redirect matches, as fw4's `rule.uc` and `redirect.uc`
//! templates share it: the options read from a section ([`Criteria`]),
//! fw4's split of a section into one rule per protocol and family (and per
//! group of masked addresses, per ICMP types or type-and-code pairs), each
//! an [`Instance`], and the rendering of an instance onto a rule builder in
//! the templates' order, with fw4's counter, log and limited-log forms.

use wasmwall_sdk::{
    Date, Dscp, Field, IpFamily, L4Protocol, Matcher, PortRange, RateLimit, Rule, RuleBuilder,
    TimeOfDay, Transport, Value, Weekday,
};

use crate::error::{Error, Warnings};
use crate::ipsets::{self, Ipset, Ipsets};
use crate::uci::Section;
use crate::values::{
    self, Address, IcmpSpec, Mark, Negatable, Proto, SetMatch, matched_days, parse_address,
};

/// Reads a section's options, remembering which it read so that the
/// others can be warned of as unknown.
pub struct Options<'a> {
    pub section: &'a Section,
    read: Vec<&'static str>,
}

impl<'a> Options<'a> {
    pub fn new(section: &'a Section) -> Options<'a> {
        Options {
            section,
            read: Vec::new(),
        }
    }

    fn err(&self, name: &str, message: String) -> Error {
        match self.section.get(name) {
            Some(opt) => Error::option(self.section, opt, message),
            None => Error::section(self.section, message),
        }
    }

    /// An option of one value; a list is refused, as fw4 does.
    pub fn one<T>(
        &mut self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        self.read.push(name);
        let Some(opt) = self.section.get(name) else {
            return Ok(None);
        };
        if opt.is_list {
            return Err(self.err(name, "must be one value, not a list".into()));
        }
        let value = opt.values.first().map(String::as_str).unwrap_or_default();
        parse(value).map(Some).map_err(|m| self.err(name, m))
    }

    /// An option of any number of values: a list's values as written, an
    /// option's words (fw4 splits an option at spaces).
    pub fn many<T>(
        &mut self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, Error> {
        self.read.push(name);
        let Some(opt) = self.section.get(name) else {
            return Ok(Vec::new());
        };
        let words: Vec<&str> = if opt.is_list {
            opt.values.iter().map(String::as_str).collect()
        } else {
            opt.values
                .iter()
                .flat_map(|v| v.split_whitespace())
                .collect()
        };
        words
            .into_iter()
            .map(|w| parse(w).map_err(|m| self.err(name, m)))
            .collect()
    }

    /// A boolean option, `default` when absent.
    pub fn flag(&mut self, name: &'static str, default: bool) -> Result<bool, Error> {
        Ok(self.one(name, values::parse_bool)?.unwrap_or(default))
    }

    /// An option fw4 takes and ignores (`extra`): a warning when set.
    pub fn unsupported(&mut self, name: &'static str, warnings: &mut Warnings) {
        self.read.push(name);
        if let Some(opt) = self.section.get(name) {
            warnings.option(self.section, opt, "is not supported by fw4; ignored");
        }
    }

    /// An option fw4 no longer reads (`_name`): a warning when set.
    pub fn deprecated(&mut self, name: &'static str, warnings: &mut Warnings) {
        self.read.push(name);
        if let Some(opt) = self.section.get(name) {
            warnings.option(self.section, opt, "is deprecated by fw4; ignored");
        }
    }

    /// Warns of every option not read.
    pub fn warn_unknown(&self, warnings: &mut Warnings) {
        for opt in &self.section.options {
            if !self.read.contains(&opt.name.as_str()) {
                warnings.option(self.section, opt, "is an unknown option; ignored");
            }
        }
    }
}

/// Which options a kind of section matches addresses and ports with.
pub struct Shape {
    pub src_ip: &'static str,
    pub dest_ip: &'static str,
    pub src_port: &'static str,
    pub dest_port: &'static str,
    /// The address and port options take several values (a rule's do, a
    /// redirect's one each).
    pub lists: bool,
    /// The section takes `icmp_type` and `dscp` (a rule does).
    pub icmp_and_dscp: bool,
    /// `proto` when it is not given.
    pub default_proto: &'static str,
}

/// A `rule` section's shape.
pub const RULE: Shape = Shape {
    src_ip: "src_ip",
    dest_ip: "dest_ip",
    src_port: "src_port",
    dest_port: "dest_port",
    lists: true,
    icmp_and_dscp: true,
    default_proto: "tcpudp",
};

/// A section's `family`, as fw4 tells apart one not given from `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// Not given: the addresses and ICMP types decide.
    #[default]
    Unset,
    /// `any`: both, unless something referenced has one.
    Both,
    Only(IpFamily),
}

impl Family {
    fn has(self, f: IpFamily) -> bool {
        match self {
            Family::Only(x) => x == f,
            _ => true,
        }
    }
}

fn ip_name(f: IpFamily) -> &'static str {
    if f == IpFamily::V4 { "IPv4" } else { "IPv6" }
}

/// fw4's family inference: the first referenced thing of one family
/// restricts an unrestricted family; one of the other family then
/// conflicts. Each reference is its family (None: both) and what it is.
pub fn infer_family(family: Family, refs: &[(Option<IpFamily>, &str)]) -> Result<Family, String> {
    let mut res = family;
    for &(fam, what) in refs {
        let Some(fam) = fam else { continue };
        match res {
            Family::Only(r) if r == fam => {}
            Family::Only(r) => {
                return Err(format!(
                    "is restricted to {} but referenced {what} is {} only",
                    ip_name(r),
                    ip_name(fam)
                ));
            }
            _ => res = Family::Only(fam),
        }
    }
    Ok(res)
}

/// The addresses of each family.
pub fn split_af(addrs: &[Address]) -> [Vec<Address>; 2] {
    let of = |f| {
        addrs
            .iter()
            .filter(|a| a.family() == f)
            .cloned()
            .collect::<Vec<_>>()
    };
    [of(IpFamily::V4), of(IpFamily::V6)]
}

/// The family addresses restrict to: one when they are all of it.
pub fn af_of(split: &[Vec<Address>; 2]) -> Option<IpFamily> {
    match (split[0].is_empty(), split[1].is_empty()) {
        (false, true) => Some(IpFamily::V4),
        (true, false) => Some(IpFamily::V6),
        _ => None,
    }
}

/// The addresses of one end of one rule: those it is in, those it is not
/// in, and those with a mask that is not a prefix, each tested alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub pos: Vec<Address>,
    pub neg: Vec<Address>,
    pub masked: Vec<Address>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.pos.is_empty() && self.neg.is_empty() && self.masked.is_empty()
    }
}

/// fw4's grouping of one family's addresses: a rule for each positive
/// masked address, with the negated ones; and one for the positive
/// prefixes; one without positives when there are none.
pub fn group_by_masking(addrs: &[Address]) -> Vec<Group> {
    let pick = |masked: bool, invert: bool| -> Vec<Address> {
        addrs
            .iter()
            .filter(|a| a.is_masked() == masked && a.invert() == invert)
            .cloned()
            .collect()
    };
    let (plain, masked) = (pick(false, false), pick(true, false));
    let (neg_plain, neg_masked) = (pick(false, true), pick(true, true));
    let mut groups: Vec<Group> = masked
        .into_iter()
        .map(|a| Group {
            pos: Vec::new(),
            neg: neg_plain.clone(),
            masked: std::iter::once(a).chain(neg_masked.clone()).collect(),
        })
        .collect();
    if !plain.is_empty() || groups.is_empty() {
        groups.push(Group {
            pos: plain,
            neg: neg_plain,
            masked: neg_masked,
        });
    }
    groups
}

/// The ICMP part of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icmp {
    None,
    /// Whole types (`icmp type { 8, 0 }`).
    Types(Vec<u8>),
    /// Types with a code (`icmp type . icmp code { 3 . 1 }`).
    Codes(Vec<(u8, u8)>),
}

/// One rule of a section: what fw4's `add_rule` gives the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// None for both.
    pub family: Option<IpFamily>,
    pub proto: Proto,
    pub iifnames: Vec<String>,
    pub oifnames: Vec<String>,
    pub saddrs: Group,
    pub daddrs: Group,
    pub sports: Vec<Negatable<PortRange>>,
    pub dports: Vec<Negatable<PortRange>>,
    pub icmp: Icmp,
    /// The fields of the set match, when there is one.
    pub set_fields: Option<Vec<Field>>,
    /// The verdict uses a port (a redirect's rewrite port): as for fw4,
    /// that leaves out the protocol match a port test would imply.
    pub verdict_port: bool,
}

impl Instance {
    /// A rule of `family` and `proto` that tests nothing else.
    pub fn new(family: Option<IpFamily>, proto: Proto) -> Instance {
        Instance {
            family,
            proto,
            iifnames: Vec::new(),
            oifnames: Vec::new(),
            saddrs: Group::default(),
            daddrs: Group::default(),
            sports: Vec::new(),
            dports: Vec::new(),
            icmp: Icmp::None,
            set_fields: None,
            verdict_port: false,
        }
    }
}

/// What else a rule's family is inferred from: each family, None for both
/// or none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Refs {
    pub set: Option<IpFamily>,
    pub src_zone: Option<IpFamily>,
    pub dest_zone: Option<IpFamily>,
    pub set_helper: Option<IpFamily>,
}

/// The matching options of a section, read. The default matches
/// everything and counts nothing: the rules fw4 makes of zones and
/// forwardings with the same template (`Accept lan to wan forwarding`, a
/// zone's helper assignments) are an [`Instance`] with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Criteria {
    pub family: Family,
    pub protos: Vec<Proto>,
    pub src_ip: Vec<Address>,
    pub dest_ip: Vec<Address>,
    pub src_ports: Vec<Negatable<PortRange>>,
    pub dest_ports: Vec<Negatable<PortRange>>,
    pub src_macs: Vec<Negatable<String>>,
    pub icmp_types: Vec<IcmpSpec>,
    /// `limit` with its `limit_burst`.
    pub limit: Option<RateLimit>,
    pub dates: Option<(Date, Date)>,
    pub hours: Option<(TimeOfDay, TimeOfDay)>,
    /// The days `weekdays` matches (its complement when negated).
    pub weekdays: Option<Vec<Weekday>>,
    pub mark: Option<Negatable<Mark>>,
    pub dscp: Option<Negatable<Dscp>>,
    pub ipset: Option<Negatable<SetMatch>>,
    /// The log prefix: `log 1` is the section's name and `: `.
    pub log: Option<String>,
    pub log_limit: Option<RateLimit>,
    pub counter: bool,
}

/// The open ends of fw4's `>=` and `<=` date tests: the contract's date
/// test has both ends. 1970-01-02 is after 1970-01-01 UTC in every zone.
const EARLIEST: Date = Date::ymd(1970, 1, 2).at(0, 0, 0);
const LATEST: Date = Date::ymd(2500, 12, 31).at(23, 59, 59);

impl Criteria {
    /// Reads the matching options of a section of `shape`, whose name
    /// (for the log prefix) is `name`.
    pub fn read(
        opts: &mut Options,
        shape: &Shape,
        name: &str,
        warnings: &mut Warnings,
    ) -> Result<Criteria, Error> {
        let family = match opts.one("family", values::parse_family)? {
            None => Family::Unset,
            Some(None) => Family::Both,
            Some(Some(f)) => Family::Only(f),
        };
        let mut protos: Vec<Proto> = opts
            .many("proto", values::parse_protocol)?
            .into_iter()
            .flatten()
            .collect();
        if protos.is_empty() {
            protos = values::parse_protocol(shape.default_proto).unwrap_or_default();
        }
        let addrs = |opts: &mut Options, name| -> Result<Vec<Address>, Error> {
            if shape.lists {
                opts.many(name, parse_address)
            } else {
                Ok(opts.one(name, parse_address)?.into_iter().collect())
            }
        };
        let ports = |opts: &mut Options, name| -> Result<Vec<Negatable<PortRange>>, Error> {
            if shape.lists {
                opts.many(name, values::parse_port)
            } else {
                Ok(opts.one(name, values::parse_port)?.into_iter().collect())
            }
        };
        let src_ip = addrs(opts, shape.src_ip)?;
        let src_macs = opts.many("src_mac", values::parse_mac)?;
        let src_ports = ports(opts, shape.src_port)?;
        let dest_ip = addrs(opts, shape.dest_ip)?;
        let dest_ports = ports(opts, shape.dest_port)?;
        let icmp_types = if shape.icmp_and_dscp {
            opts.many("icmp_type", values::parse_icmp_type)?
        } else {
            Vec::new()
        };
        let ipset = opts.one("ipset", values::parse_setmatch)?;
        if opts.one("helper", values::parse_cthelper)?.is_some() {
            return Err(opts.err(
                "helper",
                "the contract has no match on a connection's conntrack helper".into(),
            ));
        }
        let limit = opts.one("limit", values::parse_limit)?;
        let burst = opts.one("limit_burst", values::parse_burst)?;
        let limit = limit.map(|l| match burst {
            Some(b) if l.is_over() => RateLimit::over(l.rate().burst(b)),
            Some(b) => RateLimit::within(l.rate().burst(b)),
            None => l,
        });
        if opts.flag("utc_time", false)? {
            let opt = opts.section.get("utc_time");
            if let Some(opt) = opt {
                warnings.option(
                    opts.section,
                    opt,
                    "fw4 ignores it: times and dates are the router's local time",
                );
            }
        }
        let start_date = opts.one("start_date", values::parse_date)?;
        let stop_date = opts.one("stop_date", values::parse_date)?;
        let dates = match (start_date, stop_date) {
            (None, None) => None,
            (from, to) => Some((from.unwrap_or(EARLIEST), to.unwrap_or(LATEST))),
        };
        let start_time = opts.one("start_time", values::parse_time)?;
        let stop_time = opts.one("stop_time", values::parse_time)?;
        let hours = match (start_time, stop_time) {
            (None, None) => None,
            (from, to) => Some((
                from.unwrap_or(TimeOfDay::hms(0, 0, 0)),
                to.unwrap_or(TimeOfDay::hms(23, 59, 59)),
            )),
        };
        if let Some((from, to)) = hours
            && from == to
        {
            return Err(opts.err(
                if start_time.is_some() {
                    "start_time"
                } else {
                    "stop_time"
                },
                format!("the time range {from}-{to} is a single second"),
            ));
        }
        let weekdays = match opts.one("weekdays", values::parse_weekdays)? {
            None => None,
            Some(days) => {
                let days = matched_days(&days);
                if days.is_empty() {
                    return Err(opts.err("weekdays", "leaves no day to match".into()));
                }
                Some(days)
            }
        };
        if opts.one("monthdays", values::parse_monthdays)?.is_some() {
            return Err(opts.err(
                "monthdays",
                "fw4 does not support it and the contract has no day-of-month match".into(),
            ));
        }
        let mark = opts.one("mark", values::parse_mark)?;
        if let Some(m) = &mark
            && m.value.mark & !m.value.mask != 0
        {
            return Err(opts.err(
                "mark",
                format!(
                    "the mark {:#x} has bits outside its mask {:#x}: the rule could never match",
                    m.value.mark, m.value.mask
                ),
            ));
        }
        let dscp = if shape.icmp_and_dscp {
            opts.one("dscp", values::parse_dscp)?
        } else {
            None
        };
        let counter = opts.flag("counter", true)?;
        let log = match opts.one("log", |s| Ok(s.to_string()))? {
            None => None,
            Some(l) => match values::parse_bool(&l) {
                Ok(true) => Some(format!("{name}: ")),
                Ok(false) => None,
                Err(_) if l.is_empty() => None,
                Err(_) => Some(l),
            },
        };
        if let Some(prefix) = &log
            && prefix.len() > 127
        {
            return Err(opts.err(
                "log",
                format!("the log prefix {prefix:?} is longer than 127 bytes"),
            ));
        }
        let log_limit = opts.one("log_limit", values::parse_limit)?;
        let criteria = Criteria {
            family,
            protos,
            src_ip,
            dest_ip,
            src_ports,
            dest_ports,
            src_macs,
            icmp_types,
            limit,
            dates,
            hours,
            weekdays,
            mark,
            dscp,
            ipset,
            log,
            log_limit,
            counter,
        };
        criteria.warn_unused(opts, shape, warnings);
        Ok(criteria)
    }

    /// fw4 leaves out ports for a protocol without them, and ICMP types
    /// for one that is not ICMP: a warning when no protocol of the section
    /// takes them.
    fn warn_unused(&self, opts: &Options, shape: &Shape, warnings: &mut Warnings) {
        let has_ports = self
            .protos
            .iter()
            .any(|p| matches!(p, Proto::Tcp | Proto::Udp));
        let has_icmp = self
            .protos
            .iter()
            .any(|p| matches!(p, Proto::Icmp | Proto::Icmpv6));
        let unused = [
            (shape.src_port, !has_ports, "TCP or UDP"),
            (shape.dest_port, !has_ports, "TCP or UDP"),
            ("icmp_type", !has_icmp, "ICMP"),
        ];
        for (name, unused, what) in unused {
            if let Some(opt) = opts.section.get(name)
                && unused
                && !opt.values.iter().all(|v| v.trim().is_empty())
            {
                warnings.option(
                    opts.section,
                    opt,
                    format!("has no effect: no protocol of the section is {what} (fw4 ignores it)"),
                );
            }
        }
    }

    /// The set a set match names, and fw4's protocols for it: a set with a
    /// port field makes `any` TCP and UDP, and needs one of them.
    pub fn resolve_set<'s>(&mut self, ipsets: &'s Ipsets) -> Result<Option<&'s Ipset>, String> {
        let Some(m) = &self.ipset else {
            return Ok(None);
        };
        let set = ipsets
            .get(&m.value.name)
            .ok_or_else(|| format!("references unknown set {:?}", m.value.name))?;
        // A set with a port field has fields only with TCP or UDP.
        if set.matches_ports()
            && !self
                .protos
                .iter()
                .any(|p| matches!(p, Proto::Tcp | Proto::Udp))
        {
            if self.protos.iter().all(|p| *p == Proto::Any) {
                self.protos = vec![Proto::Tcp, Proto::Udp];
            } else {
                return Err(format!(
                    "references set {:?}, which has a port field, but no TCP or UDP protocol",
                    m.value.name
                ));
            }
        }
        Ok(Some(set))
    }

    /// fw4's split of a rule section into rules: one per protocol, then,
    /// when the family or the addresses, ICMP types or DSCP ask for it, one
    /// per family, per group of masked addresses of each end, and per
    /// whole ICMP types and type-and-code pairs. `both_families` forces the
    /// per-family rules (a `DSCP` target's header is of one family).
    pub fn rule_instances(
        &self,
        refs: Refs,
        both_families: bool,
        set: Option<&Ipset>,
    ) -> Result<Vec<Instance>, String> {
        let mut out = Vec::new();
        let sip = split_af(&self.src_ip);
        let dip = split_af(&self.dest_ip);
        for &proto in &self.protos {
            let mut family = self.family;
            let (mut itypes4, mut itypes6, mut sports, mut dports) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let v4_types = || self.icmp_types.iter().filter(|i| i.v4.is_some()).copied();
            let v6_types = || self.icmp_types.iter().filter(|i| i.v6.is_some()).copied();
            match proto {
                Proto::Icmp => {
                    itypes4 = v4_types().collect();
                    itypes6 = v6_types().collect();
                }
                Proto::Icmpv6 => {
                    family = Family::Only(IpFamily::V6);
                    itypes6 = v6_types().collect();
                }
                Proto::Tcp | Proto::Udp => {
                    sports = self.src_ports.clone();
                    dports = self.dest_ports.clone();
                }
                _ => {}
            }
            let family = infer_family(
                family,
                &[
                    (refs.set, "set match"),
                    (af_of(&sip), "source IP"),
                    (af_of(&dip), "destination IP"),
                    (refs.src_zone, "source zone"),
                    (refs.dest_zone, "destination zone"),
                    (refs.set_helper, "helper to set"),
                ],
            )?;
            let has4 = !sip[0].is_empty()
                || !dip[0].is_empty()
                || !itypes4.is_empty()
                || self.dscp.is_some();
            let has6 = !sip[1].is_empty()
                || !dip[1].is_empty()
                || !itypes6.is_empty()
                || self.dscp.is_some();
            let family = match family {
                Family::Unset if has4 && !has6 => Family::Only(IpFamily::V4),
                Family::Unset if has6 && !has4 => Family::Only(IpFamily::V6),
                Family::Unset => Family::Both,
                f => f,
            };
            let set_fields = || -> Result<Option<Vec<Field>>, String> {
                let (Some(set), Some(m)) = (set, &self.ipset) else {
                    return Ok(None);
                };
                let transport = match proto {
                    Proto::Tcp => Some(Transport::Tcp),
                    Proto::Udp => Some(Transport::Udp),
                    _ => None,
                };
                ipsets::set_fields(set, &m.value.dirs, transport).map(Some)
            };
            let base = |fam: Option<IpFamily>| -> Result<Instance, String> {
                let mut inst = Instance::new(fam, proto);
                inst.sports = sports.clone();
                inst.dports = dports.clone();
                inst.set_fields = set_fields()?;
                Ok(inst)
            };
            if family == Family::Both && !both_families && !has4 && !has6 {
                out.push(base(None)?);
                continue;
            }
            for (i, fam) in [IpFamily::V4, IpFamily::V6].into_iter().enumerate() {
                if !family.has(fam) {
                    continue;
                }
                let (types, codes) = if fam == IpFamily::V4 {
                    split_icmp(&itypes4, |s| {
                        s.v4.map(|c| (c.kind.number(), c.code_min, c.whole_type()))
                    })
                } else {
                    split_icmp(&itypes6, |s| {
                        s.v6.map(|c| (c.kind.number(), c.code_min, s.v6_whole_type()))
                    })
                };
                for saddrs in group_by_masking(&sip[i]) {
                    for daddrs in group_by_masking(&dip[i]) {
                        let with = |icmp: Icmp| -> Result<Instance, String> {
                            let mut inst = base(Some(fam))?;
                            inst.saddrs = saddrs.clone();
                            inst.daddrs = daddrs.clone();
                            inst.icmp = icmp;
                            Ok(inst)
                        };
                        if !types.is_empty() || codes.is_empty() {
                            out.push(with(if types.is_empty() {
                                Icmp::None
                            } else {
                                Icmp::Types(types.clone())
                            })?);
                        }
                        if !codes.is_empty() {
                            out.push(with(Icmp::Codes(codes.clone()))?);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The matches of one rule, in the templates' order.
    pub fn matches(&self, inst: &Instance) -> Result<RuleBuilder, String> {
        let mut r = Rule::new();
        let has_addrs = !inst.saddrs.is_empty() || !inst.daddrs.is_empty();
        let has_ports = !inst.sports.is_empty() || !inst.dports.is_empty() || inst.verdict_port;
        if let Some(f) = inst.family
            && !has_addrs
        {
            r = r.nfproto(f);
        }
        if inst.proto != Proto::Any && !has_ports && inst.icmp == Icmp::None {
            r = match inst.proto.l4(inst.family) {
                Some(p) => r.l4proto(p),
                None => r.test(Field::L4proto, [L4Protocol::Icmp, L4Protocol::Icmpv6]),
            };
        }
        if !inst.iifnames.is_empty() {
            r = r.test(Field::Iifname, dedup(inst.iifnames.iter().map(Value::name)));
        }
        if !inst.oifnames.is_empty() {
            r = r.test(Field::Oifname, dedup(inst.oifnames.iter().map(Value::name)));
        }
        if let Some(f) = inst.family {
            r = addresses(r, Field::Saddr(f), &inst.saddrs)?;
            r = addresses(r, Field::Daddr(f), &inst.daddrs)?;
        }
        let transport = match inst.proto {
            Proto::Tcp => Some(Transport::Tcp),
            Proto::Udp => Some(Transport::Udp),
            _ => None,
        };
        if let Some(t) = transport {
            r = ports(r, Field::Sport(t), &inst.sports)?;
            r = ports(r, Field::Dport(t), &inst.dports)?;
        }
        let (pos, neg): (Vec<_>, Vec<_>) = self.src_macs.iter().partition(|m| !m.invert);
        if !pos.is_empty() {
            r = r.test(
                Field::EtherSaddr,
                dedup(pos.iter().map(|m| Value::mac(&m.value))),
            );
        }
        if !neg.is_empty() {
            r = r.not_test(
                Field::EtherSaddr,
                dedup(neg.iter().map(|m| Value::mac(&m.value))),
            );
        }
        let v4 = inst.family == Some(IpFamily::V4);
        match &inst.icmp {
            Icmp::None => {}
            Icmp::Types(types) => {
                let field = if v4 {
                    Field::IcmpType
                } else {
                    Field::Icmpv6Type
                };
                r = r.test(field, dedup(types.iter().map(|t| Value::from(*t))));
            }
            Icmp::Codes(codes) => {
                let fields = if v4 {
                    [Field::IcmpType, Field::IcmpCode]
                } else {
                    [Field::Icmpv6Type, Field::Icmpv6Code]
                };
                r = r.test_concat(
                    fields,
                    dedup(
                        codes
                            .iter()
                            .map(|(t, c)| vec![Value::from(*t), Value::from(*c)]),
                    ),
                );
            }
        }
        if let Some(l) = self.limit {
            r = r.matching(Matcher::Limit(l));
        }
        if let Some((from, to)) = self.dates {
            r = r.date(from, to);
        }
        if let Some((from, to)) = self.hours {
            r = r.hour(from, to);
        }
        if let Some(days) = &self.weekdays {
            r = r.day(days.iter().copied());
        }
        if let Some(m) = &self.mark {
            let Mark { mark, mask } = m.value;
            let matcher = if mask == u32::MAX {
                Matcher::Test {
                    fields: vec![Field::Mark],
                    any_of: vec![vec![Value::from(mark)]],
                }
            } else {
                Matcher::Masked {
                    field: Field::Mark,
                    mask: Value::from(mask),
                    value: Value::from(mark),
                }
            };
            r = negated(r, matcher, m.invert);
        }
        if let (Some(d), Some(f)) = (&self.dscp, inst.family) {
            let matcher = Matcher::Test {
                fields: vec![Field::Dscp(f)],
                any_of: vec![vec![Value::from(d.value)]],
            };
            r = negated(r, matcher, d.invert);
        }
        if let (Some(fields), Some(m)) = (&inst.set_fields, &self.ipset) {
            let matcher = Matcher::InSet {
                fields: fields.clone(),
                set: m.value.name.clone(),
            };
            r = negated(r, matcher, m.invert);
        }
        Ok(r)
    }

    /// The rules of one instance, its matches given: counted, logged and
    /// finished by `verdict`, with `comment`. A log with a limit (the
    /// section's `log_limit`, else the zone's named limit `zone_limit`)
    /// is a rule of its own before, which logs and goes on, as fw4 writes
    /// it (without a comment).
    pub fn finish(
        &self,
        matches: RuleBuilder,
        zone_limit: Option<&str>,
        comment: &str,
        verdict: impl Fn(RuleBuilder) -> Rule,
    ) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut log = self.log.as_deref();
        if let Some(prefix) = log {
            let limited = match (self.log_limit, zone_limit) {
                (Some(l), _) => Some(matches.clone().matching(Matcher::Limit(l))),
                (None, Some(name)) => Some(matches.clone().limit_named(name)),
                (None, None) => None,
            };
            if let Some(limited) = limited {
                out.push(limited.log(prefix).continue_());
                log = None;
            }
        }
        let mut r = matches;
        if self.counter {
            r = r.counter();
        }
        if let Some(prefix) = log {
            r = r.log(prefix);
        }
        out.push(verdict(r.comment(comment)));
        out
    }
}

/// Whole ICMP types, and type-and-code pairs, of one family's values.
fn split_icmp(
    specs: &[IcmpSpec],
    of: impl Fn(&IcmpSpec) -> Option<(u8, u8, bool)>,
) -> (Vec<u8>, Vec<(u8, u8)>) {
    let (mut types, mut codes) = (Vec::new(), Vec::new());
    for (kind, code, whole) in specs.iter().filter_map(of) {
        if whole {
            types.push(kind);
        } else {
            codes.push((kind, code));
        }
    }
    (types, codes)
}

/// Values once each, in the order first given (as fw4's sets).
fn dedup<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn negated(r: RuleBuilder, matcher: Matcher, invert: bool) -> RuleBuilder {
    if invert {
        r.not_matching(matcher)
    } else {
        r.matching(matcher)
    }
}

fn address_value(a: &Address) -> Value {
    match a {
        Address::Subnet(s) => Value::address(s.cidr()),
        Address::Range { first, last, .. } => {
            Value::address_range(first.to_string(), last.to_string())
        }
    }
}

/// One end's addresses: in, not in, then each masked one.
fn addresses(mut r: RuleBuilder, field: Field, group: &Group) -> Result<RuleBuilder, String> {
    if !group.pos.is_empty() {
        r = r.test(field, dedup(group.pos.iter().map(address_value)));
    }
    if !group.neg.is_empty() {
        let values = dedup(group.neg.iter().map(address_value));
        if let [Value::AddressRange(first, last)] = values.as_slice() {
            return Err(format!(
                "the contract cannot negate one address range ({first}-{last})"
            ));
        }
        r = r.not_test(field, values);
    }
    for a in &group.masked {
        if let Address::Subnet(s) = a {
            let matcher = Matcher::Masked {
                field,
                mask: Value::address(s.mask.to_string()),
                value: Value::address(s.addr.to_string()),
            };
            r = negated(r, matcher, s.invert);
        }
    }
    Ok(r)
}

fn port_value(p: &PortRange) -> Value {
    if p.first == p.last {
        Value::from(p.first)
    } else {
        Value::from(p.first..=p.last)
    }
}

/// One end's ports: in, then not in. The contract cannot negate a single
/// range; the ports outside it are the same test.
fn ports(
    mut r: RuleBuilder,
    field: Field,
    ports: &[Negatable<PortRange>],
) -> Result<RuleBuilder, String> {
    let (pos, neg): (Vec<_>, Vec<_>) = ports.iter().partition(|p| !p.invert);
    if !pos.is_empty() {
        r = r.test(field, dedup(pos.iter().map(|p| port_value(&p.value))));
    }
    let neg = dedup(neg.iter().map(|p| p.value));
    match neg.as_slice() {
        [] => {}
        [p] if p.first != p.last => {
            let mut outside = Vec::new();
            if p.first > 0 {
                outside.push(port_value(&PortRange {
                    first: 0,
                    last: p.first - 1,
                }));
            }
            if p.last < u16::MAX {
                outside.push(port_value(&PortRange {
                    first: p.last + 1,
                    last: u16::MAX,
                }));
            }
            if outside.is_empty() {
                return Err("a negated range of every port never matches".into());
            }
            r = r.test(field, outside);
        }
        _ => r = r.not_test(field, neg.iter().map(port_value)),
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uci;
    use wasmwall_sdk::{Rate, Statement, Verdict};

    fn section(text: &str) -> Section {
        uci::parse(text).unwrap().remove(0)
    }

    fn read(text: &str) -> Result<(Criteria, Warnings), Error> {
        let s = section(text);
        let mut w = Warnings::default();
        let mut opts = Options::new(&s);
        let c = Criteria::read(&mut opts, &RULE, "R", &mut w)?;
        Ok((c, w))
    }

    fn criteria(text: &str) -> Criteria {
        read(text).unwrap().0
    }

    /// The matchers of each rule of a section, negated ones marked `!`.
    fn rendered(text: &str) -> Vec<Vec<String>> {
        let c = criteria(text);
        c.rule_instances(Refs::default(), false, None)
            .unwrap()
            .iter()
            .map(|i| {
                c.matches(i)
                    .unwrap()
                    .accept()
                    .matches()
                    .iter()
                    .map(|m| format!("{}{:?}", if m.is_negated() { "!" } else { "" }, m.matcher()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn options_refuse_lists_and_split_words() {
        let s = section(
            "config rule\nlist family ipv4\noption src_port '22 80'\nlist dest_port '1 2'\n",
        );
        let mut opts = Options::new(&s);
        let e = opts.one("family", values::parse_family).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string()
                .contains("option 'family': must be one value, not a list")
        );
        assert_eq!(opts.many("src_port", values::parse_port).unwrap().len(), 2);
        let e = opts.many("dest_port", values::parse_port).unwrap_err();
        assert!(e.to_string().contains("\"1 2\" is not a port"), "{e}");
        let mut w = Warnings::default();
        let s = section("config rule\noption extra '-m x'\noption _name a\noption bogus 1\n");
        let mut opts = Options::new(&s);
        opts.unsupported("extra", &mut w);
        opts.deprecated("_name", &mut w);
        opts.warn_unknown(&mut w);
        assert_eq!(
            w.0,
            [
                "uci line 2, @rule[0] option 'extra': is not supported by fw4; ignored",
                "uci line 3, @rule[0] option '_name': is deprecated by fw4; ignored",
                "uci line 4, @rule[0] option 'bogus': is an unknown option; ignored",
            ]
        );
    }

    #[test]
    fn family_inference_as_fw4() {
        let v4 = Some(IpFamily::V4);
        let v6 = Some(IpFamily::V6);
        assert_eq!(infer_family(Family::Unset, &[]), Ok(Family::Unset));
        assert_eq!(infer_family(Family::Both, &[(None, "x")]), Ok(Family::Both));
        assert_eq!(
            infer_family(Family::Unset, &[(v4, "source zone")]),
            Ok(Family::Only(IpFamily::V4))
        );
        assert_eq!(
            infer_family(Family::Only(IpFamily::V6), &[(v4, "source IP")]),
            Err("is restricted to IPv6 but referenced source IP is IPv4 only".into())
        );
        assert_eq!(
            infer_family(
                Family::Unset,
                &[(v4, "source zone"), (v6, "destination zone")]
            ),
            Err("is restricted to IPv4 but referenced destination zone is IPv6 only".into())
        );
    }

    #[test]
    fn masked_addresses_are_grouped_as_fw4_does() {
        // fw4's 06_subnet_mask_matches, "Mask rule #2": three masked
        // sources (two positive) times three destinations.
        let c = criteria(
            "config rule\noption proto all\n\
             list src_ip '::1/::ffff'\nlist src_ip '::2/::ffff'\nlist src_ip '::3/128'\nlist src_ip '::4/128'\n\
             list src_ip '!::5/::ffff'\nlist src_ip '!::6/::ffff'\nlist src_ip '!::7/128'\nlist src_ip '!::8/128'\n",
        );
        let [v4, v6] = split_af(&c.src_ip);
        assert!(v4.is_empty());
        let groups = group_by_masking(&v6);
        assert_eq!(groups.len(), 3);
        let text = |a: &Address| match a {
            Address::Subnet(s) => {
                format!("{}{}/{}", if s.invert { "!" } else { "" }, s.addr, s.mask)
            }
            Address::Range { .. } => unreachable!(),
        };
        let shape: Vec<(Vec<String>, Vec<String>, Vec<String>)> = groups
            .iter()
            .map(|g| {
                (
                    g.pos.iter().map(text).collect(),
                    g.neg.iter().map(text).collect(),
                    g.masked.iter().map(text).collect(),
                )
            })
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let neg = s(&[
            "!::7/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "!::8/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]);
        assert_eq!(
            shape,
            [
                (
                    vec![],
                    neg.clone(),
                    s(&["::1/::ffff", "!::5/::ffff", "!::6/::ffff"])
                ),
                (
                    vec![],
                    neg.clone(),
                    s(&["::2/::ffff", "!::5/::ffff", "!::6/::ffff"])
                ),
                (
                    s(&[
                        "::3/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                        "::4/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                    ]),
                    neg,
                    s(&["!::5/::ffff", "!::6/::ffff"])
                ),
            ]
        );
        assert_eq!(group_by_masking(&[]), [Group::default()]);
    }

    #[test]
    fn the_masked_rule_renders_as_fw4s() {
        // "Mask rule #1": ip6 saddr & ::ffff == ::1 ip6 daddr & ::ffff != ::2
        let rules = rendered(
            "config rule\noption proto all\noption src_ip '::1/::ffff'\noption dest_ip '!::2/::ffff'\n",
        );
        assert_eq!(
            rules,
            [[
                "Masked { field: Saddr(V6), mask: Address(\"::ffff\"), value: Address(\"::1\") }",
                "!Masked { field: Daddr(V6), mask: Address(\"::ffff\"), value: Address(\"::2\") }",
            ]]
        );
    }

    #[test]
    fn icmp_splits_by_family_and_by_codes() {
        // fw4's 04_icmp.
        let one = |t: &str| rendered(&format!("config rule\n{t}\n"));
        assert_eq!(
            one("option proto icmp"),
            [["Test { fields: [L4proto], any_of: [[Number(1)], [Number(58)]] }"]]
        );
        assert_eq!(
            one("option proto icmpv6"),
            [["Nfproto(V6)", "L4proto(Icmpv6)"]]
        );
        assert_eq!(
            one("option proto icmp\nlist icmp_type ip-header-bad"),
            [[
                "Nfproto(V4)",
                "Test { fields: [IcmpType, IcmpCode], any_of: [[Number(12), Number(0)]] }"
            ]]
        );
        assert_eq!(
            one("option proto icmp\nlist icmp_type neighbour-advertisement"),
            [[
                "Nfproto(V6)",
                "Test { fields: [Icmpv6Type, Icmpv6Code], any_of: [[Number(136), Number(0)]] }"
            ]]
        );
        // Names of both tables: a rule of each family, types once each.
        assert_eq!(
            one("option proto icmp\noption icmp_type 'echo-request ping host-unreachable'"),
            [
                vec![
                    "Nfproto(V4)",
                    "Test { fields: [IcmpType], any_of: [[Number(8)]] }"
                ],
                vec![
                    "Nfproto(V4)",
                    "Test { fields: [IcmpType, IcmpCode], any_of: [[Number(3), Number(1)]] }"
                ],
                vec![
                    "Nfproto(V6)",
                    "Test { fields: [Icmpv6Type], any_of: [[Number(128)]] }"
                ],
            ]
        );
        // icmp in an IPv6 rule is ICMPv6.
        assert_eq!(
            one("option proto icmp\noption family ipv6"),
            [["Nfproto(V6)", "L4proto(Icmpv6)"]]
        );
    }

    #[test]
    fn protocols_and_families_split() {
        // tcpudp by default, one rule each; an IPv4 address makes them IPv4.
        assert_eq!(
            rendered("config rule\noption src_ip 10.0.0.0/8\noption dest_port '22 80 22'\n"),
            [
                [
                    "Test { fields: [Saddr(V4)], any_of: [[Address(\"10.0.0.0/8\")]] }",
                    "Test { fields: [Dport(Tcp)], any_of: [[Number(22)], [Number(80)]] }"
                ],
                [
                    "Test { fields: [Saddr(V4)], any_of: [[Address(\"10.0.0.0/8\")]] }",
                    "Test { fields: [Dport(Udp)], any_of: [[Number(22)], [Number(80)]] }"
                ]
            ]
        );
        // Addresses of both families: a rule of each.
        let r = rendered(
            "config rule\noption proto tcp\nlist dest_ip 10.0.0.1\nlist dest_ip fd00::1\n",
        );
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            [
                "L4proto(Tcp)",
                "Test { fields: [Daddr(V4)], any_of: [[Address(\"10.0.0.1\")]] }"
            ]
        );
        assert_eq!(
            r[1],
            [
                "L4proto(Tcp)",
                "Test { fields: [Daddr(V6)], any_of: [[Address(\"fd00::1\")]] }"
            ]
        );
        // A DSCP match is of a header: a rule of each family.
        assert_eq!(
            rendered("config rule\noption proto all\noption dscp '!0x0'\n"),
            [
                [
                    "Nfproto(V4)",
                    "!Test { fields: [Dscp(V4)], any_of: [[Number(0)]] }"
                ],
                [
                    "Nfproto(V6)",
                    "!Test { fields: [Dscp(V6)], any_of: [[Number(0)]] }"
                ]
            ]
        );
        // The family conflicts are fw4's messages.
        let c = criteria("config rule\noption family ipv6\noption src_ip 10.0.0.1\n");
        assert_eq!(
            c.rule_instances(Refs::default(), false, None),
            Err("is restricted to IPv6 but referenced source IP is IPv4 only".into())
        );
        let c = criteria("config rule\noption proto tcp\n");
        let refs = Refs {
            src_zone: Some(IpFamily::V4),
            ..Refs::default()
        };
        let i = c.rule_instances(refs, false, None).unwrap();
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].family, Some(IpFamily::V4));
        // Forced per-family rules (a DSCP target).
        assert_eq!(
            c.rule_instances(Refs::default(), true, None).unwrap().len(),
            2
        );
    }

    #[test]
    fn ports_macs_and_negations() {
        assert_eq!(
            rendered(
                "config rule\noption proto udp\noption src_port '!53 !67'\noption dest_port '!1000-2000'\n\
                 list src_mac 00:11:22:33:44:55\nlist src_mac '!aa:bb:cc:dd:ee:ff'\n"
            ),
            [[
                "!Test { fields: [Sport(Udp)], any_of: [[Number(53)], [Number(67)]] }",
                "Test { fields: [Dport(Udp)], any_of: [[NumberRange(0, 999)], [NumberRange(2001, 65535)]] }",
                "Test { fields: [EtherSaddr], any_of: [[Mac(\"00:11:22:33:44:55\")]] }",
                "!Test { fields: [EtherSaddr], any_of: [[Mac(\"aa:bb:cc:dd:ee:ff\")]] }",
            ]]
        );
        let c = criteria("config rule\noption proto tcp\noption dest_port '!0-65535'\n");
        let i = c.rule_instances(Refs::default(), false, None).unwrap();
        assert_eq!(
            c.matches(&i[0]).unwrap_err(),
            "a negated range of every port never matches"
        );
        let c = criteria("config rule\noption proto tcp\noption dest_ip '!10.0.0.1-10.0.0.5'\n");
        let i = c.rule_instances(Refs::default(), false, None).unwrap();
        assert!(
            c.matches(&i[0])
                .unwrap_err()
                .contains("cannot negate one address range")
        );
        // Two negated ranges are a set, which the contract takes.
        assert_eq!(
            rendered(
                "config rule\noption proto all\noption dest_ip '!10.0.0.1-10.0.0.5 !10.0.1.0/24'\n"
            ),
            [[
                "!Test { fields: [Daddr(V4)], any_of: [[AddressRange(\"10.0.0.1\", \"10.0.0.5\")], [Address(\"10.0.1.0/24\")]] }"
            ]]
        );
    }

    #[test]
    fn limits_times_marks() {
        assert_eq!(
            rendered(
                "config rule\noption proto all\noption limit 10/minute\noption limit_burst 5\n\
                 option start_date 2022-05-30T21:51:23\noption stop_time 07:00\noption weekdays '!sat sun'\n\
                 option mark 0x10/0xff\n"
            ),
            [[
                format!(
                    "{:?}",
                    Matcher::Limit(RateLimit::within(Rate::per_minute(10).burst(5)))
                ),
                format!(
                    "{:?}",
                    Matcher::Date {
                        from: Date::ymd(2022, 5, 30).at(21, 51, 23),
                        to: LATEST
                    }
                ),
                format!(
                    "{:?}",
                    Matcher::Hour {
                        from: TimeOfDay::hms(0, 0, 0),
                        to: TimeOfDay::hms(7, 0, 0)
                    }
                ),
                format!(
                    "{:?}",
                    Matcher::Day(vec![
                        Weekday::Monday,
                        Weekday::Tuesday,
                        Weekday::Wednesday,
                        Weekday::Thursday,
                        Weekday::Friday
                    ])
                ),
                "Masked { field: Mark, mask: Number(255), value: Number(16) }".to_string(),
            ]]
        );
        assert_eq!(
            rendered("config rule\noption proto all\noption stop_date 2030\noption mark '!0x1'\n"),
            [[
                format!(
                    "{:?}",
                    Matcher::Date {
                        from: EARLIEST,
                        to: Date::ymd(2030, 1, 1).at(0, 0, 0)
                    }
                ),
                "!Test { fields: [Mark], any_of: [[Number(1)]] }".to_string(),
            ]]
        );
    }

    #[test]
    fn read_errors_name_the_option() {
        let e = |t: &str| {
            read(&format!("config rule\n{t}\n"))
                .unwrap_err()
                .to_string()
        };
        assert!(e("option helper ftp").contains(
            "option 'helper': the contract has no match on a connection's conntrack helper"
        ));
        assert!(e("option monthdays '1 15'").contains(
            "option 'monthdays': fw4 does not support it and the contract has no day-of-month match"
        ));
        assert!(e("option monthdays 32").contains("\"32\" is not a day of the month"));
        assert!(e("option mark 0x101/0xff").contains("has bits outside its mask 0xff"));
        assert!(e("option weekdays '!mo tu we th fr sa su'").contains("leaves no day to match"));
        assert!(
            e("option start_time 10:00\noption stop_time 10:00").contains("is a single second")
        );
        assert!(e("option src_ip lan").contains("option 'src_ip': \"lan\" is not an address"));
        assert!(e("option limit 10/week").contains("option 'limit': \"10/week\" is not a rate"));
        assert!(e(&format!("option log '{}'", "x".repeat(128))).contains("longer than 127 bytes"));
        let err = read("config rule\n\noption proto '!udp'\n").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn read_warns_of_options_without_effect() {
        let (_, w) =
            read("config rule\noption proto icmp\noption dest_port 22\noption utc_time 1\n")
                .unwrap();
        assert_eq!(
            w.0,
            [
                "uci line 4, @rule[0] option 'utc_time': fw4 ignores it: times and dates are the router's local time",
                "uci line 3, @rule[0] option 'dest_port': has no effect: no protocol of the section is TCP or UDP (fw4 ignores it)",
            ]
        );
        let (_, w) = read("config rule\noption icmp_type echo-request\n").unwrap();
        assert!(
            w.0[0]
                .contains("option 'icmp_type': has no effect: no protocol of the section is ICMP")
        );
    }

    #[test]
    fn log_and_counter_forms() {
        let verdict = |r: RuleBuilder| r.accept();
        let c = criteria("config rule\noption log 1\n");
        assert_eq!(c.log.as_deref(), Some("R: "));
        let rules = c.finish(Rule::new(), None, "!fw4: R", verdict);
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].statements(),
            [
                Statement::Counter,
                Statement::Log(wasmwall_sdk::Log::with_prefix("R: "))
            ]
        );
        assert_eq!(rules[0].comment(), Some("!fw4: R"));
        let c = criteria("config rule\noption log 'Prefix: '\noption counter 0\n");
        let rules = c.finish(Rule::new(), None, "!fw4: R", verdict);
        assert_eq!(rules[0].log_prefix(), Some("Prefix: "));
        assert!(!rules[0].has_counter());
        assert_eq!(criteria("config rule\noption log 0\n").log, None);
        // A limited log: a rule that logs within the limit and goes on,
        // then the rule itself, counted and not logged.
        let c = criteria("config rule\noption log 1\noption log_limit 5/minute\n");
        let rules = c.finish(
            Rule::new().l4proto(L4Protocol::Tcp),
            Some("lan_log_limit"),
            "!fw4: R",
            verdict,
        );
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0]
                .matches()
                .iter()
                .map(|m| m.matcher().clone())
                .collect::<Vec<_>>(),
            [
                Matcher::L4proto(L4Protocol::Tcp),
                Matcher::Limit(RateLimit::within(Rate::per_minute(5)))
            ]
        );
        assert_eq!(rules[0].log_prefix(), Some("R: "));
        assert!(!rules[0].has_counter());
        assert_eq!(
            (rules[0].verdict(), rules[0].comment()),
            (&Verdict::Continue, None)
        );
        assert_eq!(rules[1].matches().len(), 1);
        assert!(rules[1].has_counter() && rules[1].log_prefix().is_none());
        assert_eq!(
            (rules[1].verdict(), rules[1].comment()),
            (&Verdict::Accept, Some("!fw4: R"))
        );
        // Without its own limit the zone's named one.
        let c = criteria("config rule\noption log 1\n");
        let rules = c.finish(Rule::new(), Some("lan_log_limit"), "!fw4: R", verdict);
        assert_eq!(
            rules[0].matches()[0].matcher(),
            &Matcher::LimitNamed("lan_log_limit".into())
        );
    }

    #[test]
    fn the_default_renders_an_instance_alone() {
        // fw4's helper assignment of a zone: no counter.
        let mut inst = Instance::new(None, Proto::Tcp);
        inst.dports = vec![values::parse_port("21").unwrap()];
        let c = Criteria::default();
        let rules = c.finish(c.matches(&inst).unwrap(), None, "!fw4: ftp", |r| {
            r.ct_helper("ftp").continue_()
        });
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].matches()[0].matcher(),
            &Matcher::Test {
                fields: vec![Field::Dport(Transport::Tcp)],
                any_of: vec![vec![Value::Number(21)]]
            }
        );
        assert_eq!(rules[0].statements(), [Statement::CtHelper("ftp".into())]);
    }

    #[test]
    fn set_matches_need_the_set() {
        let sections =
            crate::uci::parse("config ipset\noption name v4hosts\nlist match src_ip\n").unwrap();
        let sets = Ipsets::parse(&sections, &mut Warnings::default()).unwrap();
        let mut c = criteria("config rule\noption proto all\noption ipset '!v4hosts dst'\n");
        let set = c.resolve_set(&sets).unwrap();
        assert_eq!(set.map(|s| s.name.as_str()), Some("v4hosts"));
        let refs = Refs {
            set: set.and_then(|s| s.family),
            ..Refs::default()
        };
        let i = c.rule_instances(refs, false, set).unwrap();
        assert_eq!(i.len(), 1);
        let m = c.matches(&i[0]).unwrap().accept();
        let last = m.matches().last().unwrap();
        assert!(last.is_negated());
        assert_eq!(
            last.matcher(),
            &Matcher::InSet {
                fields: vec![Field::Daddr(IpFamily::V4)],
                set: "v4hosts".into()
            }
        );
        let mut c = criteria("config rule\noption ipset nosuch\n");
        assert_eq!(
            c.resolve_set(&sets),
            Err("references unknown set \"nosuch\"".into())
        );
    }
}
