//! The IR's named sets and maps (the kernel holds both as sets): the kind
//! of a set, fixed when it is made (key, a map's data, intervals, timeout,
//! dynamic, size), its elements in one canonical order, the lookups of a
//! map that rules act on, and the text nft lists each as.
//!
//! A set whose kind changes is made again; its elements are compared one
//! by one. Elements are sorted by the IR's order (`Ord`), which is also the
//! order they are sent in; nft lists them in an order of its own
//! ([`SetElements::listed`]).

use std::cmp::Ordering;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Element, Family, Field, Key, KeyType, Value, fields_text};

/// What a map maps its keys to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MapData {
    /// A verdict map (`type ifname : verdict`).
    Verdict,
    /// Values of these types (`type inet_service : ipv4_addr . inet_service`).
    Values(Key),
}

impl fmt::Display for MapData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapData::Verdict => f.write_str("verdict"),
            MapData::Values(key) => key.fmt(f),
        }
    }
}

/// A verdict map's data. A chain is named as the policy wrote it, or by its
/// kernel name once placed in the table.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Verdict {
    Accept,
    Drop,
    Jump(String),
    Goto(String),
    Return,
}

impl Verdict {
    /// The chain it continues in, if any.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            _ => None,
        }
    }

    pub fn chain_mut(&mut self) -> Option<&mut String> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Return => f.write_str("return"),
        }
    }
}

/// One map element's data.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Data {
    Verdict(Verdict),
    /// One value per data type.
    Values(Element),
}

/// One element of a set, or of a map with its data.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SetElement {
    pub key: Element,
    pub data: Option<Data>,
}

impl SetElement {
    pub fn key(key: Element) -> SetElement {
        SetElement { key, data: None }
    }

    /// The element as nft lists it in a set of `kind`: `10.0.0.1 . 80`,
    /// `"lan0" : jump lan_in`, `8080 : 192.168.1.10 . 80`.
    pub fn text(&self, kind: &SetKind) -> String {
        let key = self.key.text(&kind.key);
        match (&self.data, &kind.data) {
            (Some(Data::Verdict(v)), _) => format!("{key} : {v}"),
            (Some(Data::Values(values)), Some(MapData::Values(types))) => {
                format!("{key} : {}", values.text(types))
            }
            _ => key,
        }
    }
}

/// What the kernel fixes when a set is made: a set of another kind is made
/// again, never changed in place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SetKind {
    pub key: Key,
    /// None for a set; a map's data otherwise.
    pub data: Option<MapData>,
    /// Elements may be prefixes and ranges (`flags interval`).
    pub intervals: bool,
    /// Seconds after which an element expires (`timeout`).
    pub timeout: Option<u32>,
    /// Rules add elements (`flags dynamic`). The planner adds the policy's
    /// elements that are missing and deletes none: what rules added is
    /// neither drift nor the planner's to remove.
    pub dynamic: bool,
    /// Most elements (`size`).
    pub size: Option<u32>,
}

impl SetKind {
    /// A plain set of `key`: no data, flags, timeout or size.
    pub fn plain(key: Key) -> SetKind {
        SetKind {
            key,
            data: None,
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
        }
    }

    pub fn is_map(&self) -> bool {
        self.data.is_some()
    }

    /// Whether it is a verdict map.
    pub fn is_verdict_map(&self) -> bool {
        self.data == Some(MapData::Verdict)
    }

    /// The family of a set (not a map) of one address.
    pub fn address_family(&self) -> Option<Family> {
        match (self.key.0.as_slice(), &self.data) {
            ([one], None) => one.family(),
            _ => None,
        }
    }

    /// Whether it is a set (not a map) of ports.
    pub fn holds_ports(&self) -> bool {
        self.data.is_none() && self.key.0 == [KeyType::InetService]
    }

    /// What it holds, for an error message: "ports", "addresses",
    /// "ifname . ipv4_addr keys", "a map (ifname : verdict)".
    pub fn holds(&self) -> String {
        if self.is_map() {
            format!("a map ({})", self.type_text())
        } else if self.holds_ports() {
            "ports".into()
        } else if self.address_family().is_some() {
            "addresses".into()
        } else {
            format!("{} keys", self.key)
        }
    }

    /// `ipv4_addr . inet_service`, or a map's `ifname : verdict`.
    pub fn type_text(&self) -> String {
        match &self.data {
            None => self.key.to_string(),
            Some(data) => format!("{} : {data}", self.key),
        }
    }

    /// The `flags` line as nft lists it, if it lists one: interval or
    /// dynamic, then timeout (nft shows timeout among the flags only
    /// beside another).
    pub fn flags_text(&self) -> Option<String> {
        let mut flags = Vec::new();
        if self.intervals {
            flags.push("interval");
        }
        if self.dynamic {
            flags.push("dynamic");
        }
        if flags.is_empty() {
            return None;
        }
        if self.timeout.is_some() {
            flags.push("timeout");
        }
        Some(flags.join(","))
    }
}

/// A duration as nft lists it: `1d2h3m4s`, `1m30s`, `1h`.
pub fn duration_text(seconds: u32) -> String {
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// A set's kind and its elements, sorted and without duplicates (a map has
/// one element per key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SetElements {
    pub kind: SetKind,
    pub elements: Vec<SetElement>,
}

impl SetElements {
    /// `elements` of `kind`, sorted and without duplicates.
    pub fn new(kind: SetKind, mut elements: Vec<SetElement>) -> SetElements {
        elements.sort();
        elements.dedup();
        SetElements { kind, elements }
    }

    fn plain(ty: KeyType, values: impl Iterator<Item = Value>) -> SetElements {
        let elements = values.map(|v| SetElement::key(Element(vec![v]))).collect();
        SetElements::new(SetKind::plain(Key(vec![ty])), elements)
    }

    /// A plain set of IPv4 addresses.
    pub fn ipv4(addrs: impl IntoIterator<Item = Ipv4Addr>) -> SetElements {
        let values = addrs.into_iter().map(|a| Value::Addr(a.into()));
        Self::plain(KeyType::Ipv4Addr, values)
    }

    /// A plain set of IPv6 addresses.
    pub fn ipv6(addrs: impl IntoIterator<Item = Ipv6Addr>) -> SetElements {
        let values = addrs.into_iter().map(|a| Value::Addr(a.into()));
        Self::plain(KeyType::Ipv6Addr, values)
    }

    /// A plain set of ports.
    pub fn ports(ports: impl IntoIterator<Item = u16>) -> SetElements {
        let values = ports.into_iter().map(|p| Value::Number(p.into()));
        Self::plain(KeyType::InetService, values)
    }

    /// No elements, of the same kind.
    pub fn empty_like(&self) -> SetElements {
        SetElements {
            kind: self.kind.clone(),
            elements: Vec::new(),
        }
    }

    /// The key's (or a map's) type as nft names it.
    pub fn type_name(&self) -> String {
        self.kind.type_text()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The family of a one-part address key.
    pub fn address_family(&self) -> Option<Family> {
        match self.kind.key.0.as_slice() {
            [one] => one.family(),
            _ => None,
        }
    }

    /// The elements as nft prints them, in the IR's order.
    pub fn texts(&self) -> Vec<String> {
        self.elements.iter().map(|e| e.text(&self.kind)).collect()
    }

    /// The elements in the order `nft list` shows them: a set of one-part
    /// intervals by their start; a set of concatenated intervals in the
    /// order they were added (the order they are sent in); any other set
    /// or map by nft's order of its keys' kernel bytes ([`listing_cmp`]).
    pub fn listed(&self) -> Vec<&SetElement> {
        let mut out: Vec<&SetElement> = self.elements.iter().collect();
        if self.kind.intervals && self.kind.key.is_concatenation() {
            return out;
        }
        out.sort_by(|a, b| listing_cmp(&self.kind.key, &a.key, &b.key));
        out
    }

    /// The chains a verdict map's elements continue in, sorted.
    pub fn chains(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .elements
            .iter()
            .filter_map(|e| match &e.data {
                Some(Data::Verdict(v)) => v.chain(),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// How nft orders the elements of a set or map of `key` when it lists them
/// (it sorts by the number the key's bytes make): a one-part key in the
/// byte order of its type (addresses, ports and protocols big-endian,
/// marks and interface names host-endian), a concatenation as one
/// host-endian number of all its bytes. The host is little-endian, as
/// every machine the runtime supports; measured with nft 1.0.6.
pub fn listing_cmp(key: &Key, a: &Element, b: &Element) -> Ordering {
    let bytes = |e: &Element| crate::kernel::key_bytes(key, e);
    let big_endian = match key.0.as_slice() {
        [one] => !matches!(one, KeyType::Mark | KeyType::Ifname),
        _ => false,
    };
    let (a, b) = (bytes(a), bytes(b));
    if big_endian {
        a.cmp(&b)
    } else {
        a.iter().rev().cmp(b.iter().rev())
    }
}

/// How many elements nft lists on one line of a named set's `elements`
/// before it breaks the line (by the key's type; a concatenation's, and
/// types nft has no count for, one).
pub fn elements_per_line(key: &Key) -> usize {
    match key.0.as_slice() {
        [KeyType::InetService | KeyType::InetProto | KeyType::Mark] => 5,
        [KeyType::Ipv4Addr] => 2,
        _ => 1,
    }
}

/// A named set or map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedSet {
    pub name: String,
    pub elements: SetElements,
}

/// Where a map lookup finds its elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MapSource {
    /// A named map of the same policy (its kernel name once placed).
    Named(String),
    /// Elements written in the rule: an anonymous map the rule owns.
    Inline(SetElements),
}

impl fmt::Display for MapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapSource::Named(name) => write!(f, "@{name}"),
            MapSource::Inline(map) => {
                let listed: Vec<String> = map.listed().iter().map(|e| e.text(&map.kind)).collect();
                write!(f, "{{ {} }}", listed.join(", "))
            }
        }
    }
}

/// The fields that key a map, and the map.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MapLookup {
    pub fields: Vec<Field>,
    pub map: MapSource,
}

impl MapLookup {
    /// The fields as nft lists them as a key: `ip saddr . tcp dport`.
    pub fn key_text(&self) -> String {
        fields_text(&self.fields)
    }
}

/// DNAT or SNAT to what a map gives for the key: an address, or an address
/// and a port, of `family`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NatMap {
    pub family: Family,
    pub lookup: MapLookup,
    /// The map's data holds a port after the address.
    pub ports: bool,
}

/// `ip to tcp dport map @fwds`
impl fmt::Display for NatMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to {} map {}",
            self.family.keyword(),
            self.lookup.key_text(),
            self.lookup.map
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Value {
        Value::Addr(s.parse().unwrap())
    }

    fn listed(set: &SetElements) -> Vec<String> {
        set.listed().iter().map(|e| e.text(&set.kind)).collect()
    }

    /// The orders `nft list ruleset` showed for the same elements.
    #[test]
    fn elements_are_listed_in_nfts_order() {
        let ports = SetElements::ports([256, 1, 12]);
        assert_eq!(listed(&ports), ["1", "12", "256"]);
        let v4 = SetElements::ipv4(
            ["11.0.0.0", "10.0.0.1", "9.0.0.1"]
                .iter()
                .map(|a| a.parse().unwrap()),
        );
        assert_eq!(listed(&v4), ["9.0.0.1", "10.0.0.1", "11.0.0.0"]);
        let names = SetElements::new(
            SetKind::plain(Key(vec![KeyType::Ifname])),
            ["eth1", "lan0", "wan0", "a", "eth10"]
                .iter()
                .map(|n| SetElement::key(Element(vec![Value::Name(n.to_string())])))
                .collect(),
        );
        assert_eq!(
            listed(&names),
            ["\"a\"", "\"lan0\"", "\"wan0\"", "\"eth1\"", "\"eth10\""]
        );
        let concat = SetElements::new(
            SetKind::plain(Key(vec![KeyType::Ipv4Addr, KeyType::InetService])),
            [
                ("10.0.0.1", 1),
                ("9.0.0.1", 256),
                ("10.0.0.1", 256),
                ("11.0.0.0", 1),
            ]
            .iter()
            .map(|(a, p)| SetElement::key(Element(vec![addr(a), Value::Number(*p)])))
            .collect(),
        );
        assert_eq!(
            listed(&concat),
            [
                "9.0.0.1 . 256",
                "10.0.0.1 . 256",
                "11.0.0.0 . 1",
                "10.0.0.1 . 1"
            ]
        );
    }

    #[test]
    fn kinds_read_as_nft_lists_them() {
        let mut kind = SetKind::plain(Key(vec![KeyType::Ipv4Addr]));
        assert_eq!(kind.flags_text(), None);
        kind.timeout = Some(60);
        assert_eq!(kind.flags_text(), None, "timeout alone shows no flags");
        kind.dynamic = true;
        assert_eq!(kind.flags_text().as_deref(), Some("dynamic,timeout"));
        kind.dynamic = false;
        kind.intervals = true;
        assert_eq!(kind.flags_text().as_deref(), Some("interval,timeout"));
        kind.data = Some(MapData::Verdict);
        assert_eq!(kind.type_text(), "ipv4_addr : verdict");
        for (seconds, text) in [
            (60, "1m"),
            (90, "1m30s"),
            (3600, "1h"),
            (93_784, "1d2h3m4s"),
        ] {
            assert_eq!(duration_text(seconds), text);
        }
    }

    #[test]
    fn map_elements_read_as_nft_lists_them() {
        let kind = SetKind {
            data: Some(MapData::Values(Key(vec![
                KeyType::Ipv4Addr,
                KeyType::InetService,
            ]))),
            ..SetKind::plain(Key(vec![KeyType::InetService]))
        };
        let e = SetElement {
            key: Element(vec![Value::Number(8080)]),
            data: Some(Data::Values(Element(vec![
                addr("192.168.1.10"),
                Value::Number(80),
            ]))),
        };
        assert_eq!(e.text(&kind), "8080 : 192.168.1.10 . 80");
        let vmap = SetElement {
            key: Element(vec![Value::Name("lan0".into())]),
            data: Some(Data::Verdict(Verdict::Jump("lan_in".into()))),
        };
        let kind = SetKind {
            data: Some(MapData::Verdict),
            ..SetKind::plain(Key(vec![KeyType::Ifname]))
        };
        assert_eq!(vmap.text(&kind), "\"lan0\" : jump lan_in");
    }
}
