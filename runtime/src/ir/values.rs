//! The values a match compares a field with and that set and map elements
//! hold: their types as nft names them (key types, with nft's type ids and
//! lengths), the values themselves, and the text nft lists each as.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// The type of one part of a key, or of a map's data, as nft knows it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum KeyType {
    Ipv4Addr,
    Ipv6Addr,
    InetService,
    InetProto,
    Ifname,
    Mark,
    EtherAddr,
    IcmpType,
    Icmpv6Type,
    IcmpCode,
    Icmpv6Code,
    Dscp,
}

/// nft's bits per type in the id of a concatenation.
const TYPE_BITS: u32 = 6;

impl KeyType {
    /// nft's name of the type (`type ipv4_addr` in a set's listing).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ipv4Addr => "ipv4_addr",
            KeyType::Ipv6Addr => "ipv6_addr",
            KeyType::InetService => "inet_service",
            KeyType::InetProto => "inet_proto",
            KeyType::Ifname => "ifname",
            KeyType::Mark => "mark",
            KeyType::EtherAddr => "ether_addr",
            KeyType::IcmpType => "icmp_type",
            KeyType::Icmpv6Type => "icmpv6_type",
            KeyType::IcmpCode => "icmp_code",
            KeyType::Icmpv6Code => "icmpv6_code",
            KeyType::Dscp => "dscp",
        }
    }

    /// nft's id of the type, as stored in a set's key type.
    pub fn id(self) -> u32 {
        match self {
            KeyType::Ipv4Addr => 7,
            KeyType::Ipv6Addr => 8,
            KeyType::EtherAddr => 9,
            KeyType::InetProto => 12,
            KeyType::InetService => 13,
            KeyType::IcmpType => 14,
            KeyType::Mark => 19,
            KeyType::Icmpv6Type => 29,
            KeyType::IcmpCode => 32,
            KeyType::Icmpv6Code => 33,
            KeyType::Dscp => 36,
            KeyType::Ifname => 41,
        }
    }

    /// Bytes of one value of the type in the kernel.
    pub fn size(self) -> usize {
        match self {
            KeyType::Ipv4Addr | KeyType::Mark => 4,
            KeyType::Ipv6Addr | KeyType::Ifname => 16,
            KeyType::InetService => 2,
            KeyType::EtherAddr => 6,
            KeyType::InetProto
            | KeyType::IcmpType
            | KeyType::Icmpv6Type
            | KeyType::IcmpCode
            | KeyType::Icmpv6Code
            | KeyType::Dscp => 1,
        }
    }

    /// The largest number a value of a numeric type can be.
    pub fn max_number(self) -> Option<u32> {
        match self {
            KeyType::InetService => Some(u16::MAX.into()),
            KeyType::Mark => Some(u32::MAX),
            KeyType::InetProto
            | KeyType::IcmpType
            | KeyType::Icmpv6Type
            | KeyType::IcmpCode
            | KeyType::Icmpv6Code => Some(u8::MAX.into()),
            KeyType::Dscp => Some(63),
            _ => None,
        }
    }

    /// The family of an address type.
    pub fn family(self) -> Option<super::Family> {
        match self {
            KeyType::Ipv4Addr => Some(super::Family::V4),
            KeyType::Ipv6Addr => Some(super::Family::V6),
            _ => None,
        }
    }
}

/// A key of one type, or of several concatenated (`ipv4_addr . inet_service`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Key(pub Vec<KeyType>);

impl Key {
    /// nft's id of the key: a concatenation's parts' ids, `TYPE_BITS` each.
    pub fn id(&self) -> u32 {
        self.0.iter().fold(0, |id, t| (id << TYPE_BITS) | t.id())
    }

    /// Bytes of the key in the kernel: a concatenation's parts each take a
    /// whole number of 32-bit registers.
    pub fn len(&self) -> usize {
        match self.0.as_slice() {
            [one] => one.size(),
            parts => parts.iter().map(|t| t.size().div_ceil(4) * 4).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_concatenation(&self) -> bool {
        self.0.len() > 1
    }
}

/// `ipv4_addr . inet_service`, as a set's listing names its type.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|t| t.name()).collect();
        f.write_str(&names.join(" . "))
    }
}

/// One value of a key part, checked against its type by validation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Value {
    /// A single address.
    Addr(IpAddr),
    /// A prefix shorter than a whole address, host bits zero.
    Prefix(IpNetwork),
    /// An inclusive range of addresses of one family, first below last.
    AddrRange(IpAddr, IpAddr),
    /// A number within its type's range.
    Number(u32),
    /// An inclusive range of numbers, first below last.
    Range(u32, u32),
    /// An interface name; a trailing '*' matches every name it starts.
    Name(String),
    Mac([u8; 6]),
}

impl Value {
    /// Whether the value stands for more than one key (a prefix or range):
    /// a set holding one needs `flags interval`.
    pub fn is_interval(&self) -> bool {
        matches!(
            self,
            Value::Prefix(_) | Value::AddrRange(..) | Value::Range(..)
        )
    }

    /// The value as nft lists it for a part of type `ty`.
    pub fn text(&self, ty: KeyType) -> String {
        match self {
            Value::Addr(a) => a.to_string(),
            Value::Prefix(p) => p.to_string(),
            Value::AddrRange(a, b) => format!("{a}-{b}"),
            Value::Number(n) => number_text(ty, *n),
            // nft lists the ends of a range as numbers, never by name.
            Value::Range(a, b) => format!(
                "{}-{}",
                plain_number_text(ty, *a),
                plain_number_text(ty, *b)
            ),
            Value::Name(n) => format!("\"{n}\""),
            Value::Mac(m) => m
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        }
    }
}

/// A set or map element's key: one value per part of the key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Element(pub Vec<Value>);

impl Element {
    /// `10.0.0.1 . 80`, as nft lists an element of `key`.
    pub fn text(&self, key: &Key) -> String {
        let parts: Vec<String> = self.0.iter().zip(&key.0).map(|(v, t)| v.text(*t)).collect();
        parts.join(" . ")
    }

    pub fn is_interval(&self) -> bool {
        self.0.iter().any(Value::is_interval)
    }
}

/// The elements of a one-part interval key merged as nft's auto-merge
/// merges them: sorted, with overlapping and adjacent intervals joined,
/// each written as nft lists it (a single key, a prefix when the interval
/// is one, else a range). The kernel refuses overlapping intervals.
pub fn merge_intervals(ty: KeyType, values: &[Value]) -> Vec<Value> {
    let mut spans: Vec<(u128, u128)> = values.iter().filter_map(span).collect();
    spans.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(spans.len());
    for (first, last) in spans {
        match merged.last_mut() {
            Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
            _ => merged.push((first, last)),
        }
    }
    merged
        .into_iter()
        .map(|(first, last)| from_span(ty, first, last))
        .collect()
}

/// A value's interval as numbers (addresses as their 128 or 32 bits);
/// None for names and hardware addresses.
pub fn span(v: &Value) -> Option<(u128, u128)> {
    let bits = |a: &IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    };
    Some(match v {
        Value::Addr(a) => (bits(a), bits(a)),
        Value::Prefix(p) => (bits(&p.network()), bits(&p.broadcast())),
        Value::AddrRange(a, b) => (bits(a), bits(b)),
        Value::Number(n) => (u128::from(*n), u128::from(*n)),
        Value::Range(a, b) => (u128::from(*a), u128::from(*b)),
        Value::Name(_) | Value::Mac(_) => return None,
    })
}

fn from_span(ty: KeyType, first: u128, last: u128) -> Value {
    let width = match ty {
        KeyType::Ipv4Addr => 32,
        KeyType::Ipv6Addr => 128,
        _ if first == last => return Value::Number(first as u32),
        _ => return Value::Range(first as u32, last as u32),
    };
    let addr = |n: u128| -> IpAddr {
        if width == 32 {
            IpAddr::V4((n as u32).into())
        } else {
            IpAddr::V6(n.into())
        }
    };
    if first == last {
        return Value::Addr(addr(first));
    }
    let size = last - first + 1;
    if size.is_power_of_two() && first.is_multiple_of(size) {
        let prefix = width - size.trailing_zeros() as u8;
        if let Ok(net) = IpNetwork::new(addr(first), prefix) {
            return Value::Prefix(net);
        }
    }
    Value::AddrRange(addr(first), addr(last))
}

/// A number as nft lists it for its type: by name where nft has one.
fn number_text(ty: KeyType, n: u32) -> String {
    let named = |names: &[(u32, &'static str)]| {
        names
            .iter()
            .find(|(v, _)| *v == n)
            .map(|(_, name)| name.to_string())
    };
    let name = match ty {
        KeyType::InetProto => named(PROTOCOLS),
        KeyType::IcmpType => named(ICMP_TYPES),
        KeyType::Icmpv6Type => named(ICMPV6_TYPES),
        KeyType::IcmpCode => named(ICMP_CODES),
        KeyType::Icmpv6Code => named(ICMPV6_CODES),
        KeyType::Dscp => named(DSCP_CLASSES),
        _ => None,
    };
    name.unwrap_or_else(|| plain_number_text(ty, n))
}

/// A number as nft lists it without a name: marks and DSCP values in hex.
fn plain_number_text(ty: KeyType, n: u32) -> String {
    match ty {
        KeyType::Mark => format!("0x{n:08x}"),
        KeyType::Dscp => format!("0x{n:02x}"),
        _ => n.to_string(),
    }
}

/// Layer-4 protocol names as nft lists them: those of netbase's
/// /etc/protocols (the IANA keywords), which nft looks up by number.
pub const PROTOCOLS: &[(u32, &str)] = &[
    (0, "ip"),
    (1, "icmp"),
    (2, "igmp"),
    (3, "ggp"),
    (4, "ipencap"),
    (5, "st"),
    (6, "tcp"),
    (8, "egp"),
    (9, "igp"),
    (12, "pup"),
    (17, "udp"),
    (20, "hmp"),
    (22, "xns-idp"),
    (27, "rdp"),
    (29, "iso-tp4"),
    (33, "dccp"),
    (36, "xtp"),
    (37, "ddp"),
    (38, "idpr-cmtp"),
    (41, "ipv6"),
    (43, "ipv6-route"),
    (44, "ipv6-frag"),
    (45, "idrp"),
    (46, "rsvp"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (57, "skip"),
    (58, "ipv6-icmp"),
    (59, "ipv6-nonxt"),
    (60, "ipv6-opts"),
    (73, "rspf"),
    (81, "vmtp"),
    (88, "eigrp"),
    (89, "ospf"),
    (93, "ax.25"),
    (94, "ipip"),
    (97, "etherip"),
    (98, "encap"),
    (103, "pim"),
    (108, "ipcomp"),
    (112, "vrrp"),
    (115, "l2tp"),
    (124, "isis"),
    (132, "sctp"),
    (133, "fc"),
    (135, "mobility-header"),
    (136, "udplite"),
    (137, "mpls-in-ip"),
    (138, "manet"),
    (139, "hip"),
    (140, "shim6"),
    (141, "wesp"),
    (142, "rohc"),
    (143, "ethernet"),
];

/// nft's names of ICMP types (`nft describe icmp type`).
pub const ICMP_TYPES: &[(u32, &str)] = &[
    (0, "echo-reply"),
    (3, "destination-unreachable"),
    (4, "source-quench"),
    (5, "redirect"),
    (8, "echo-request"),
    (9, "router-advertisement"),
    (10, "router-solicitation"),
    (11, "time-exceeded"),
    (12, "parameter-problem"),
    (13, "timestamp-request"),
    (14, "timestamp-reply"),
    (15, "info-request"),
    (16, "info-reply"),
    (17, "address-mask-request"),
    (18, "address-mask-reply"),
];

/// nft's names of ICMPv6 types (`nft describe icmpv6 type`; of two names
/// for one number, the first, which nft lists).
pub const ICMPV6_TYPES: &[(u32, &str)] = &[
    (1, "destination-unreachable"),
    (2, "packet-too-big"),
    (3, "time-exceeded"),
    (4, "parameter-problem"),
    (128, "echo-request"),
    (129, "echo-reply"),
    (130, "mld-listener-query"),
    (131, "mld-listener-report"),
    (132, "mld-listener-done"),
    (133, "nd-router-solicit"),
    (134, "nd-router-advert"),
    (135, "nd-neighbor-solicit"),
    (136, "nd-neighbor-advert"),
    (137, "nd-redirect"),
    (138, "router-renumbering"),
    (141, "ind-neighbor-solicit"),
    (142, "ind-neighbor-advert"),
    (143, "mld2-listener-report"),
];

/// nft's names of ICMP codes (`nft describe icmp code`).
pub const ICMP_CODES: &[(u32, &str)] = &[
    (0, "net-unreachable"),
    (1, "host-unreachable"),
    (2, "prot-unreachable"),
    (3, "port-unreachable"),
    (4, "frag-needed"),
    (9, "net-prohibited"),
    (10, "host-prohibited"),
    (13, "admin-prohibited"),
];

/// nft's names of ICMPv6 codes (`nft describe icmpv6 code`).
pub const ICMPV6_CODES: &[(u32, &str)] = &[
    (0, "no-route"),
    (1, "admin-prohibited"),
    (3, "addr-unreachable"),
    (4, "port-unreachable"),
    (5, "policy-fail"),
    (6, "reject-route"),
];

/// nft's names of DSCP classes (`nft describe ip dscp`; of several names
/// for one number, the first, which nft lists).
pub const DSCP_CLASSES: &[(u32, &str)] = &[
    (0x00, "cs0"),
    (0x08, "cs1"),
    (0x10, "cs2"),
    (0x18, "cs3"),
    (0x20, "cs4"),
    (0x28, "cs5"),
    (0x30, "cs6"),
    (0x38, "cs7"),
    (0x01, "lephb"),
    (0x0a, "af11"),
    (0x0c, "af12"),
    (0x0e, "af13"),
    (0x12, "af21"),
    (0x14, "af22"),
    (0x16, "af23"),
    (0x1a, "af31"),
    (0x1c, "af32"),
    (0x1e, "af33"),
    (0x22, "af41"),
    (0x24, "af42"),
    (0x26, "af43"),
    (0x2c, "va"),
    (0x2e, "ef"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_nfts_ids_and_lengths() {
        let k = Key(vec![KeyType::Ipv4Addr, KeyType::InetService]);
        assert_eq!(k.id(), (7 << 6) | 13);
        assert_eq!(k.len(), 8);
        assert_eq!(k.to_string(), "ipv4_addr . inet_service");
        let one = Key(vec![KeyType::EtherAddr]);
        assert_eq!((one.id(), one.len()), (9, 6));
    }

    #[test]
    fn intervals_merge_as_nfts_auto_merge() {
        let a = |s: &str| Value::Addr(s.parse().unwrap());
        let p = |s: &str| Value::Prefix(s.parse().unwrap());
        let r = |x: &str, y: &str| Value::AddrRange(x.parse().unwrap(), y.parse().unwrap());
        let merged = merge_intervals(
            KeyType::Ipv4Addr,
            &[
                a("10.0.0.5"),
                p("10.0.0.0/8"),
                r("192.168.1.10", "192.168.1.20"),
                r("192.168.1.21", "192.168.1.30"),
                a("192.168.2.0"),
                a("192.168.2.1"),
                p("0.0.0.0/1"),
                p("128.0.0.0/1"),
            ],
        );
        assert_eq!(merged, [p("0.0.0.0/0")]);
        let merged = merge_intervals(
            KeyType::Ipv4Addr,
            &[
                r("192.168.1.21", "192.168.1.30"),
                r("192.168.1.10", "192.168.1.20"),
                a("192.168.2.0"),
                a("192.168.2.1"),
            ],
        );
        assert_eq!(
            merged,
            [r("192.168.1.10", "192.168.1.30"), p("192.168.2.0/31")]
        );
        assert_eq!(
            merge_intervals(
                KeyType::InetService,
                &[Value::Number(80), Value::Range(81, 90), Value::Number(22)]
            ),
            [Value::Number(22), Value::Range(80, 90)]
        );
        assert_eq!(
            merge_intervals(KeyType::Ipv6Addr, &[p("fd00::/8"), a("fe80::1")]),
            [p("fd00::/8"), a("fe80::1")]
        );
    }

    #[test]
    fn values_read_as_nft_lists_them() {
        let key = Key(vec![KeyType::Icmpv6Type, KeyType::Icmpv6Code]);
        assert_eq!(
            Element(vec![Value::Number(1), Value::Number(0)]).text(&key),
            "destination-unreachable . no-route"
        );
        assert_eq!(Value::Number(200).text(KeyType::Icmpv6Type), "200");
        assert_eq!(Value::Number(1).text(KeyType::Mark), "0x00000001");
        assert_eq!(Value::Number(47).text(KeyType::InetProto), "gre");
        assert_eq!(Value::Number(0x22).text(KeyType::Dscp), "af41");
        assert_eq!(Value::Number(5).text(KeyType::Dscp), "0x05");
        assert_eq!(Value::Range(0x10, 0x18).text(KeyType::Dscp), "0x10-0x18");
        assert_eq!(Value::Range(0, 3).text(KeyType::IcmpType), "0-3");
        assert_eq!(Value::Range(1, 1024).text(KeyType::InetService), "1-1024");
        assert_eq!(
            Value::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]).text(KeyType::EtherAddr),
            "52:54:00:12:34:56"
        );
        assert_eq!(Value::Name("lan0".into()).text(KeyType::Ifname), "\"lan0\"");
    }
}
