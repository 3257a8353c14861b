//! fw4's `ipset` sections as the policy's named sets: the types a set
//! matches (`ip`, `net`, `mac`, `port`, each from the source or the
//! destination), its family, entries, timeout and size; and the fields a
//! rule's `ipset 'NAME src dest'` looks up in it.
//!
//! ```text
//! config ipset
//!     option name    'web'
//!     list   match   'src_ip'       # ipv4_addr (the family's address)
//!     list   match   'dest_port'    # . inet_service
//!     list   entry   '10.0.0.1 80'  # one value per match type
//!     option timeout '600'          # seconds; none when 0 or less
//!     option maxelem '1000'         # size; none when 0 or less
//! ```
//!
//! As fw4 does: the family is IPv4 unless `family` says otherwise (`any`
//! only for sets of MACs and ports); a `net` makes the set hold prefixes
//! and ranges (intervals); a match type may be shortened (`n` is `net`) and
//! has the source's direction unless `dest_`/`dst_` comes first; every
//! address of a set with a `net` (its `ip` parts too) may be a prefix; an
//! `option` (not a `list`) of `match` or `entry` is split at spaces.
//! `storage`, `iprange`, `portrange`, `netmask`, `hashsize` and `external`
//! are ipset's, which fw4 does not support: a warning each. `counters` and
//! `reload_set` are read and, as in fw4, do nothing. The contract's sets
//! have no comment, so `comment` is read and dropped.
//!
//! Where fw4 differs: it warns of an invalid entry and leaves it out; here
//! an invalid entry refuses the config, as any invalid value does. fw4
//! reads a `loadfile`'s lines as entries; a policy cannot read files, so
//! its sets hold their `entry` values only (a warning says so). fw4 keeps
//! a prefix's host bits (`10.0.0.1/8`), nft drops them: here they are
//! dropped at once. In a set without `net` (no intervals) fw4 takes the
//! address of a prefix or a range and drops the rest; here that is an
//! error naming `net`. In a set of `net` fw4 writes a range as `ADDR/null`, which nft
//! refuses; here it is a range of addresses. fw4 also takes a network's
//! name as an entry (its addresses when fw4 runs); the policy does not
//! know them, so that is an error too.

use std::net::IpAddr;

use wasmwall_sdk::{Field, IpFamily, KeyType, NamedSet, Transport, Value};

use crate::addr;
use crate::error::{Error, Warnings};
use crate::uci::{Opt, Section};

/// Which end of a packet a match type reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Src,
    Dest,
}

/// fw4's match types (ipset's `hash:ip`, `hash:net`, ... parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// Single addresses of the set's family.
    Ip,
    /// Prefixes and ranges of the set's family: the set has intervals.
    Net,
    Mac,
    Port,
}

impl MatchType {
    fn word(self) -> &'static str {
        match self {
            MatchType::Ip => "ip",
            MatchType::Net => "net",
            MatchType::Mac => "mac",
            MatchType::Port => "port",
        }
    }
}

/// One `match` of a set: a part of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetMatch {
    /// The direction a rule looks it up in unless the rule says another.
    pub direction: Direction,
    pub kind: MatchType,
}

/// One enabled `ipset` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipset {
    pub name: String,
    /// None for `any` (a set of MACs and ports only).
    pub family: Option<IpFamily>,
    /// The key's parts, in order; at least one.
    pub matches: Vec<SetMatch>,
    /// One value per match each.
    pub entries: Vec<Vec<Value>>,
    /// Seconds after which elements expire.
    pub timeout: Option<u32>,
    /// The most elements the set holds.
    pub maxelem: Option<u32>,
}

impl Ipset {
    /// Whether a part of the key is a port: rules using it need tcp or udp.
    pub fn matches_ports(&self) -> bool {
        self.matches.iter().any(|m| m.kind == MatchType::Port)
    }

    /// Whether elements are prefixes and ranges (`net`).
    pub fn has_intervals(&self) -> bool {
        self.matches.iter().any(|m| m.kind == MatchType::Net)
    }

    /// The key's types, as fw4 declares them.
    pub fn key(&self) -> Vec<KeyType> {
        let addr = match self.family {
            Some(IpFamily::V6) => KeyType::Ipv6Addr,
            _ => KeyType::Ipv4Addr,
        };
        self.matches
            .iter()
            .map(|m| match m.kind {
                MatchType::Ip | MatchType::Net => addr,
                MatchType::Mac => KeyType::EtherAddr,
                MatchType::Port => KeyType::InetService,
            })
            .collect()
    }

    fn named_set(&self) -> NamedSet {
        let mut set = NamedSet::keyed(self.name.clone(), self.key()).extend(self.entries.clone());
        if self.has_intervals() {
            set = set.intervals();
        }
        if let Some(secs) = self.timeout {
            set = set.timeout_secs(secs);
        }
        if let Some(size) = self.maxelem {
            set = set.max_size(size);
        }
        set
    }

    fn types(&self) -> String {
        let words: Vec<&str> = self.matches.iter().map(|m| m.kind.word()).collect();
        words.join(", ")
    }
}

/// Every enabled `ipset` section, in the order of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipsets {
    sets: Vec<Ipset>,
}

impl Ipsets {
    /// Reads the `ipset` sections among `sections` (others are left alone).
    pub fn parse(sections: &[Section], warnings: &mut Warnings) -> Result<Ipsets, Error> {
        let mut sets: Vec<(Ipset, &Section)> = Vec::new();
        for section in sections.iter().filter(|s| s.kind == "ipset") {
            let Some(set) = parse_section(section, warnings)? else {
                continue;
            };
            if let Some((_, first)) = sets.iter().find(|(s, _)| s.name == set.name) {
                let opt = section.get("name").expect("a parsed set has a name");
                return Err(Error::option(
                    section,
                    opt,
                    format!(
                        "a set named '{}' is already defined at line {}",
                        set.name, first.line
                    ),
                ));
            }
            sets.push((set, section));
        }
        Ok(Ipsets {
            sets: sets.into_iter().map(|(s, _)| s).collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Ipset> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// The sets to declare, in the order of the config.
    pub fn named_sets(&self) -> Vec<NamedSet> {
        self.sets.iter().map(Ipset::named_set).collect()
    }
}

/// The fields a rule's `ipset` option looks up in `set`, one per match:
/// each in the direction `dirs` gives at its place, else the set's own
/// (fw4's `map_setmatch`; directions past the set's matches are ignored,
/// as fw4 ignores them). `proto` is the rule's transport for a set of
/// ports; None when the rule has no tcp or udp.
pub fn set_fields(
    set: &Ipset,
    dirs: &[Option<Direction>],
    proto: Option<Transport>,
) -> Result<Vec<Field>, String> {
    let ports = match proto {
        Some(p @ (Transport::Tcp | Transport::Udp)) => Some(p),
        Some(other) if set.matches_ports() => {
            return Err(format!(
                "set '{}' matches a port, which fw4 looks up for tcp and udp only, not {other}",
                set.name
            ));
        }
        _ => None,
    };
    let mut fields = Vec::with_capacity(set.matches.len());
    for (i, m) in set.matches.iter().enumerate() {
        let dir = dirs.get(i).copied().flatten().unwrap_or(m.direction);
        let field = match m.kind {
            MatchType::Ip | MatchType::Net => {
                let family = set
                    .family
                    .expect("a set of addresses has a family (parse refuses 'any')");
                match dir {
                    Direction::Src => Field::Saddr(family),
                    Direction::Dest => Field::Daddr(family),
                }
            }
            MatchType::Mac => match dir {
                Direction::Src => Field::EtherSaddr,
                Direction::Dest => {
                    return Err(format!(
                        "set '{}' matches a MAC address at place {}, which can only be the source's: a packet's destination MAC cannot be matched",
                        set.name,
                        i + 1
                    ));
                }
            },
            MatchType::Port => {
                let Some(proto) = ports else {
                    return Err(format!(
                        "set '{}' matches a port: the rule needs proto tcp or udp",
                        set.name
                    ));
                };
                match dir {
                    Direction::Src => Field::Sport(proto),
                    Direction::Dest => Field::Dport(proto),
                }
            }
        };
        fields.push(field);
    }
    Ok(fields)
}

/// One `ipset` section; None when it is disabled.
fn parse_section(s: &Section, warnings: &mut Warnings) -> Result<Option<Ipset>, Error> {
    let mut enabled = true;
    let mut name: Option<(&Opt, &str)> = None;
    let mut family = Some(IpFamily::V4);
    let mut family_opt: Option<&Opt> = None;
    let mut matches: Vec<SetMatch> = Vec::new();
    let mut entry_opt: Option<&Opt> = None;
    let mut timeout = None;
    let mut maxelem = None;
    for opt in &s.options {
        let bad = |msg: String| Error::option(s, opt, msg);
        // Every option but `match` and `entry` takes one value.
        let one = || -> Result<&str, Error> {
            if opt.is_list {
                Err(bad("takes one value, not a list".into()))
            } else {
                Ok(opt.values[0].as_str())
            }
        };
        match opt.name.as_str() {
            "enabled" => enabled = boolean(one()?).map_err(bad)?,
            "counters" | "reload_set" => {
                boolean(one()?).map_err(bad)?;
            }
            "comment" => {
                one()?;
            }
            "name" => name = Some((opt, one()?)),
            "family" => {
                family = parse_family(one()?).map_err(bad)?;
                family_opt = Some(opt);
            }
            "match" => {
                matches = list(opt)
                    .into_iter()
                    .map(parse_match)
                    .collect::<Result<_, _>>()
                    .map_err(bad)?;
            }
            "entry" => entry_opt = Some(opt),
            "timeout" => timeout = positive(int(one()?).map_err(bad)?).map_err(bad)?,
            "maxelem" => maxelem = positive(int(one()?).map_err(bad)?).map_err(bad)?,
            "storage" | "iprange" | "portrange" | "external" => {
                one()?;
                warnings.option(s, opt, "is not supported by fw4; ignored");
            }
            "netmask" | "hashsize" => {
                int(one()?).map_err(bad)?;
                warnings.option(s, opt, "is not supported by fw4; ignored");
            }
            "loadfile" => {
                one()?;
                warnings.option(
                    s,
                    opt,
                    "names a file, which a policy cannot read in its sandbox: the set holds its `entry` values only",
                );
            }
            // fw4 passes over an option of this name in every section.
            "type" => {}
            _ => warnings.option(s, opt, "is an option fw4 does not know; ignored"),
        }
    }
    let Some((name_opt, name)) = name else {
        return Err(Error::section(
            s,
            "option 'name' is mandatory: the name rules give in their `ipset` option",
        ));
    };
    if !is_set_name(name) {
        return Err(Error::option(
            s,
            name_opt,
            format!(
                "'{name}' is not a set name: use 1 to 32 letters, digits, '_' or '-', a letter or '_' first (fw4 also allows '.' and '/', which the runtime's names cannot hold)"
            ),
        ));
    }
    // fw4 checks the rest only of an enabled set.
    if !enabled {
        warnings.section(s, "is disabled; ignored");
        return Ok(None);
    }
    if matches.is_empty() {
        return Err(Error::section(
            s,
            "has no `match`: a set needs the types of its elements (ip, net, mac or port)",
        ));
    }
    let addresses = matches
        .iter()
        .any(|m| matches!(m.kind, MatchType::Ip | MatchType::Net));
    if let (None, true, Some(opt)) = (family, addresses, family_opt) {
        return Err(Error::option(
            s,
            opt,
            "family 'any' cannot match ip or net: an address is IPv4 or IPv6",
        ));
    }
    let mut set = Ipset {
        name: name.to_string(),
        family,
        matches,
        entries: Vec::new(),
        timeout,
        maxelem,
    };
    if let Some(opt) = entry_opt {
        for text in list(opt) {
            let entry = parse_entry(text, &set).map_err(|m| {
                let hint = if opt.is_list || set.matches.len() == 1 {
                    ""
                } else {
                    " (an `option entry` is split at spaces into one-value entries, as fw4 splits it: write each entry as a `list entry`)"
                };
                Error::option(s, opt, format!("entry '{text}': {m}{hint}"))
            })?;
            set.entries.push(entry);
        }
    }
    Ok(Some(set))
}

/// An option's values as fw4 takes a list: a `list` value by value, an
/// `option` split at spaces and tabs.
fn list(opt: &Opt) -> Vec<&str> {
    if opt.is_list {
        opt.values.iter().map(String::as_str).collect()
    } else {
        opt.values[0]
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect()
    }
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "'{text}' is not a boolean: 1, on, true or yes; 0, off, false or no"
        )),
    }
}

/// fw4's families: `any`, `all` and `*` for both; `inet` or anything with
/// a '4' for IPv4; anything else with a '6' for IPv6.
fn parse_family(text: &str) -> Result<Option<IpFamily>, String> {
    if matches!(text, "any" | "all" | "*") {
        Ok(None)
    } else if text == "inet" || text.contains('4') {
        Ok(Some(IpFamily::V4))
    } else if text.contains('6') {
        Ok(Some(IpFamily::V6))
    } else {
        Err(format!("'{text}' is not a family: ipv4, ipv6 or any"))
    }
}

fn int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a whole number"));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is too large a number"))
}

/// A count fw4 writes only when above 0 (`timeout`, `maxelem`). A timeout
/// of 0 makes fw4 write `flags timeout` with no timeout of the set's own:
/// its elements, which carry none either, never expire, as here.
fn positive(n: i64) -> Result<Option<u32>, String> {
    if n <= 0 {
        return Ok(None);
    }
    u32::try_from(n)
        .map(Some)
        .map_err(|_| format!("{n} is too large: at most {}", u32::MAX))
}

/// `ip`, `src_net`, `dest_port`, `dst_mac`; a type may be cut short
/// (`n`, `po`) and written in capitals, as fw4 reads it.
fn parse_match(text: &str) -> Result<SetMatch, String> {
    let (direction, rest) = [
        ("src_", Direction::Src),
        ("dest_", Direction::Dest),
        ("dst_", Direction::Dest),
    ]
    .into_iter()
    .find_map(|(p, d)| {
        text.strip_prefix(p)
            .filter(|r| !r.is_empty())
            .map(|r| (d, r))
    })
    .unwrap_or((Direction::Src, text));
    let lower = rest.to_ascii_lowercase();
    let is = |word: &str| !lower.is_empty() && word.starts_with(&lower);
    // fw4 tries the types in this order: `p` is `port`, not a prefix of
    // anything after it.
    let kind = if is("ip") {
        MatchType::Ip
    } else if is("port") {
        MatchType::Port
    } else if is("mac") {
        MatchType::Mac
    } else if is("net") {
        MatchType::Net
    } else if is("set") {
        return Err(format!(
            "'{text}': match type 'set' (a set of sets) is not supported by fw4"
        ));
    } else {
        return Err(format!(
            "'{text}' is not a match type: ip, net, mac or port, with src_ or dest_ before it for a direction"
        ));
    };
    Ok(SetMatch { direction, kind })
}

/// fw4's identifiers, less the '.' and '/' the runtime's names cannot
/// hold: a letter or '_' first.
fn is_set_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One entry: a value per match, separated by spaces or tabs.
fn parse_entry(text: &str, set: &Ipset) -> Result<Vec<Value>, String> {
    let words: Vec<&str> = text.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    if words.len() != set.matches.len() {
        return Err(format!(
            "has {} value{}, the set matches {} ({})",
            words.len(),
            if words.len() == 1 { "" } else { "s" },
            set.matches.len(),
            set.types()
        ));
    }
    words
        .iter()
        .zip(&set.matches)
        .map(|(word, m)| match m.kind {
            MatchType::Ip | MatchType::Net => {
                let family = set.family.expect("a set of addresses has a family");
                address(word, family, set.has_intervals())
            }
            MatchType::Mac => mac(word).map(Value::Mac),
            MatchType::Port => port(word).map(Value::from),
        })
        .collect()
}

/// An address of `family`; in a set with intervals, also a prefix or a
/// range.
fn address(text: &str, family: IpFamily, net: bool) -> Result<Value, String> {
    let want = |a: &IpAddr| match (a, family) {
        (IpAddr::V4(_), IpFamily::V4) | (IpAddr::V6(_), IpFamily::V6) => Ok(()),
        _ => Err(format!(
            "'{text}' is not an {} address, the set's family",
            family_name(family)
        )),
    };
    if text.starts_with('!') {
        return Err(format!("'{text}': a set entry cannot be negated"));
    }
    let only_addresses = || {
        format!(
            "'{text}' is not a single address, which a set of match 'ip' holds: use match 'net' for prefixes and ranges"
        )
    };
    if let Some((first, last)) = text.split_once('-')
        && !text.contains('/')
    {
        let parse = |t: &str| {
            t.parse::<IpAddr>()
                .map_err(|_| format!("'{text}' is not a range of addresses (FIRST-LAST)"))
        };
        let (a, b) = (parse(first)?, parse(last)?);
        want(&a)?;
        want(&b)?;
        if !net {
            return Err(only_addresses());
        }
        if a > b {
            return Err(format!(
                "'{text}' is an empty range: its first address is above its last"
            ));
        }
        return Ok(Value::address_range(a.to_string(), b.to_string()));
    }
    let sub = addr::subnet(text).map_err(|e| {
        if text.contains(['.', ':']) {
            e
        } else {
            format!("{e} (fw4 would take the addresses of a network of that name, which the policy does not know)")
        }
    })?;
    want(&sub.addr)?;
    let full = if family == IpFamily::V4 { 32 } else { 128 };
    match sub.bits {
        None => Err(format!(
            "'{text}' has a mask that is not a prefix, which a set cannot hold"
        )),
        Some(b) if b != full && !net => Err(only_addresses()),
        Some(_) => Ok(Value::address(sub.cidr())),
    }
}

fn family_name(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V6 => "IPv6",
        _ => "IPv4",
    }
}

/// A MAC entry, as a rule's `src_mac` reads it; an entry is not negated.
fn mac(text: &str) -> Result<String, String> {
    match crate::values::parse_mac(text)? {
        m if m.invert => Err(format!("'{text}': a set's entry cannot be negated")),
        m => Ok(m.value),
    }
}

/// One port; fw4 also takes a range of one port (`80-80`, `80:80`).
fn port(text: &str) -> Result<u16, String> {
    let (first, last) = match text.split_once(['-', ':']) {
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let num = |t: &str| -> Result<u32, String> {
        if (1..=5).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(t.parse().expect("five digits fit"))
        } else {
            Err(format!("'{text}' is not a port"))
        }
    };
    let (a, b) = (num(first)?, num(last)?);
    if a > 65535 || b > 65535 {
        return Err(format!("'{text}' is out of range: ports are 1 to 65535"));
    }
    if a != b {
        return Err(format!(
            "'{text}' is a range of ports; a set entry holds one port"
        ));
    }
    if a == 0 {
        return Err(format!(
            "'{text}': port 0 cannot be matched (ports are 1 to 65535)"
        ));
    }
    Ok(a as u16)
}

#[cfg(test)]
mod tests;
