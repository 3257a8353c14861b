//! The IR's matches: the packet tests of a rule and the protocol, address
//! and state types they use, each with the nft text it lists as.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::time::{moment_text, time_of_day_text};
use super::{Element, Field, Key, KeyType, Rate, Value, fields_text, key_of};

/// Transport protocol of a port match.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Transport {
    Tcp,
    Udp,
    Sctp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Sctp => "sctp",
        }
    }

    pub fn l4(self) -> L4Proto {
        match self {
            Transport::Tcp => L4Proto::Tcp,
            Transport::Udp => L4Proto::Udp,
            Transport::Sctp => L4Proto::Other(libc::IPPROTO_SCTP as u8),
        }
    }
}

/// A layer-4 protocol. The four the runtime reasons about have their own
/// variant; [`L4Proto::from_number`] never makes `Other` of their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum L4Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Other(u8),
}

impl L4Proto {
    /// The protocol of an IANA number.
    pub fn from_number(n: u8) -> L4Proto {
        match i32::from(n) {
            libc::IPPROTO_TCP => L4Proto::Tcp,
            libc::IPPROTO_UDP => L4Proto::Udp,
            libc::IPPROTO_ICMP => L4Proto::Icmp,
            libc::IPPROTO_ICMPV6 => L4Proto::Icmpv6,
            _ => L4Proto::Other(n),
        }
    }

    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => libc::IPPROTO_TCP as u8,
            L4Proto::Udp => libc::IPPROTO_UDP as u8,
            L4Proto::Icmp => libc::IPPROTO_ICMP as u8,
            L4Proto::Icmpv6 => libc::IPPROTO_ICMPV6 as u8,
            L4Proto::Other(n) => n,
        }
    }

    /// The family an ICMP protocol belongs to: nft reads `meta l4proto
    /// icmp` as implying IPv4 (and drops a `meta nfproto ipv4` before it
    /// from its listing).
    pub fn family(self) -> Option<Family> {
        match self {
            L4Proto::Icmp => Some(Family::V4),
            L4Proto::Icmpv6 => Some(Family::V6),
            _ => None,
        }
    }
}

/// The protocol as nft lists it: its name in netbase's /etc/protocols
/// (`tcp`, `ipv6-icmp`, `gre`), else its number.
impl fmt::Display for L4Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Value::Number(self.number().into()).text(KeyType::InetProto))
    }
}

/// Connection-tracking states as the kernel's bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CtStates(pub u32);

impl CtStates {
    pub const INVALID: u32 = 1;
    pub const ESTABLISHED: u32 = 2;
    pub const RELATED: u32 = 4;
    pub const NEW: u32 = 8;
    pub const UNTRACKED: u32 = 64;

    const NAMES: [(u32, &'static str); 5] = [
        (Self::ESTABLISHED, "established"),
        (Self::RELATED, "related"),
        (Self::NEW, "new"),
        (Self::INVALID, "invalid"),
        (Self::UNTRACKED, "untracked"),
    ];
}

impl fmt::Display for CtStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Which header field an address or port match reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dir {
    Source,
    Destination,
}

impl Dir {
    fn addr(self) -> &'static str {
        match self {
            Dir::Source => "saddr",
            Dir::Destination => "daddr",
        }
    }

    fn port(self) -> &'static str {
        match self {
            Dir::Source => "sport",
            Dir::Destination => "dport",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// The family as `meta nfproto` lists it.
    pub fn nfproto_name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The nft keyword for this family's header ("ip" or "ip6").
    pub fn keyword(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// One packet test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Match {
    /// An input interface name; one ending in '*' matches every name that
    /// starts with the rest.
    Iifname {
        name: String,
        negate: bool,
    },
    /// An output interface name, as `Iifname`.
    Oifname {
        name: String,
        negate: bool,
    },
    Addr {
        dir: Dir,
        net: IpNetwork,
        negate: bool,
    },
    L4Proto {
        proto: L4Proto,
        negate: bool,
    },
    Port {
        dir: Dir,
        proto: Transport,
        first: u16,
        last: u16,
        negate: bool,
    },
    CtState(CtStates),
    AddrInSet {
        dir: Dir,
        family: Family,
        set: String,
    },
    PortInSet {
        dir: Dir,
        proto: Transport,
        set: String,
    },
    /// The packet's family (`meta nfproto ipv4`).
    Nfproto {
        family: Family,
        negate: bool,
    },
    /// Fields against one value or an inline set.
    Test {
        fields: Vec<Field>,
        against: Against,
        negate: bool,
    },
    /// Fields looked up in a named set of the policy.
    InSet {
        fields: Vec<Field>,
        set: String,
        negate: bool,
    },
    /// One field under a mask (`meta mark & 0x000000ff == 0x00000001`):
    /// an address field's mask and value are addresses, the others'
    /// numbers; the value has no bits outside the mask.
    Masked {
        field: Field,
        mask: Value,
        value: Value,
        negate: bool,
    },
    /// The TCP flags under `mask` are `flags` (a subset of the mask).
    TcpFlags {
        flags: u8,
        mask: u8,
        negate: bool,
    },
    /// Any of these conntrack status bits is set (negated: none is).
    CtStatus {
        bits: u32,
        negate: bool,
    },
    Fib {
        check: FibCheck,
        negate: bool,
    },
    /// The time of day is in a range (`meta hour`).
    Hour(HourRange),
    /// Today is one of these days (0 Sunday to 6 Saturday; sorted, once
    /// each).
    Day(Vec<u8>),
    /// Now is within these moments (`meta time`).
    Date(DateRange),
    /// A token-bucket rate limit: the packets within the rate, or with
    /// `over` those above it.
    Limit {
        rate: Rate,
        over: bool,
    },
    /// A limit object of the policy, by name (`limit name "x"`).
    LimitNamed(String),
    /// A rate limit per key, kept in a dynamic named set of the policy
    /// (`add @set { ip saddr limit rate over 3/minute }`).
    KeyedLimit {
        fields: Vec<Field>,
        set: String,
        rate: Rate,
        over: bool,
    },
}

/// What a test compares its fields with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Against {
    /// One value of one field: a comparison (`tcp dport 22`,
    /// `tcp dport 1024-65535`, `ip saddr 10.0.0.0/8`, `iifname "eth*"`).
    One(Value),
    /// An inline (anonymous) set: `{ 22, 80 }`, `{ 10.0.0.2 . 80 }`.
    Set(InlineSet),
}

/// The elements of an inline set, in the order nft lists them (the order
/// the runtime sends them in), and whether the set needs `flags interval`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct InlineSet {
    pub elements: Vec<Element>,
    pub intervals: bool,
}

/// Route lookups (`fib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FibCheck {
    /// `fib saddr . iif oif missing`.
    ReversePathMissing,
    /// `fib saddr . mark . iif oif missing`.
    ReversePathMissingMark,
    /// `fib daddr type local`.
    DaddrLocal,
}

/// A time-of-day range as the kernel compares it and as nft lists it.
/// A range that wraps midnight in UTC is held as nft holds it: the range
/// between, negated (nft turns `"21:00"-"07:00"` into `!= "07:00"-"21:00"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HourRange {
    /// Seconds since midnight UTC, first below last: what the kernel's
    /// `meta hour` compares.
    pub utc: (u32, u32),
    /// The same ends in the runtime's local time, as nft lists them.
    pub local: (u32, u32),
    pub negate: bool,
}

/// A range of moments as the kernel compares it and as nft lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DateRange {
    /// Nanoseconds since 1970-01-01 UTC: what the kernel's `meta time`
    /// compares.
    pub utc_ns: (u64, u64),
    /// Seconds since 1970-01-01 in the local time nft lists each end in.
    pub local: (i64, i64),
}

/// The layer a field is read from (nft's protocol bases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    Link,
    Network,
    Transport,
}

impl Field {
    /// The header the field is in; None for what the kernel knows of the
    /// packet (meta, ct).
    pub fn header(self) -> Option<Header> {
        match self {
            Field::EtherSaddr => Some(Header::Link),
            Field::Saddr(_) | Field::Daddr(_) | Field::Dscp(_) => Some(Header::Network),
            Field::Sport(_)
            | Field::Dport(_)
            | Field::IcmpType
            | Field::IcmpCode
            | Field::Icmpv6Type
            | Field::Icmpv6Code => Some(Header::Transport),
            Field::Iifname | Field::Oifname | Field::L4proto | Field::Mark | Field::CtMark => None,
        }
    }

    /// The layer-4 protocol of the header the field is in.
    pub fn l4(self) -> Option<L4Proto> {
        match self {
            Field::Sport(t) | Field::Dport(t) => Some(t.l4()),
            Field::IcmpType | Field::IcmpCode => Some(L4Proto::Icmp),
            Field::Icmpv6Type | Field::Icmpv6Code => Some(L4Proto::Icmpv6),
            _ => None,
        }
    }
}

/// One load from the packet's headers that a match makes, and the
/// protocol checks the kernel makes first (nft's dependencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub family: Option<Family>,
    pub l4: Option<L4Proto>,
    pub header: Option<Header>,
}

impl Read {
    fn of(field: Field) -> Read {
        Read {
            family: field.family(),
            l4: field.l4(),
            header: field.header(),
        }
    }
}

impl Match {
    /// What the match reads, in the order its kernel form loads it.
    pub fn reads(&self) -> Vec<Read> {
        let field = |f: Field| vec![Read::of(f)];
        match self {
            Match::Addr { dir, net, .. } => field(Field::addr(*dir, Family::of(&net.ip()))),
            Match::AddrInSet { dir, family, .. } => field(Field::addr(*dir, *family)),
            Match::Port { dir, proto, .. } | Match::PortInSet { dir, proto, .. } => {
                field(Field::port(*dir, *proto))
            }
            Match::Test { fields, .. }
            | Match::InSet { fields, .. }
            | Match::KeyedLimit { fields, .. } => fields.iter().map(|f| Read::of(*f)).collect(),
            Match::Masked { field: f, .. } => field(*f),
            Match::TcpFlags { .. } => vec![Read {
                family: None,
                l4: Some(L4Proto::Tcp),
                header: Some(Header::Transport),
            }],
            _ => Vec::new(),
        }
    }

    /// The family the packets it matches have, as far as nft knows (the
    /// family check it makes or its fields imply).
    pub fn family(&self) -> Option<Family> {
        match self {
            Match::Nfproto {
                family,
                negate: false,
            } => Some(*family),
            Match::L4Proto {
                proto,
                negate: false,
            } => proto.family(),
            _ => self.reads().iter().find_map(|r| r.family),
        }
    }

    /// The elements of the inline set the match makes, if it makes one.
    pub fn inline_set_len(&self) -> Option<usize> {
        match self {
            Match::Test {
                against: Against::Set(set),
                ..
            } => Some(set.elements.len()),
            Match::Day(days) if days.len() > 1 => Some(days.len()),
            _ => None,
        }
    }

    /// The named set the match looks up or adds to, if any.
    pub fn set_mut(&mut self) -> Option<&mut String> {
        match self {
            Match::AddrInSet { set, .. }
            | Match::PortInSet { set, .. }
            | Match::InSet { set, .. }
            | Match::KeyedLimit { set, .. } => Some(set),
            _ => None,
        }
    }

    /// The named set the match looks up or adds to, if any.
    pub fn set(&self) -> Option<&str> {
        match self {
            Match::AddrInSet { set, .. }
            | Match::PortInSet { set, .. }
            | Match::InSet { set, .. }
            | Match::KeyedLimit { set, .. } => Some(set),
            _ => None,
        }
    }

    /// The named object (a limit) the match uses, if any.
    pub fn object_mut(&mut self) -> Option<&mut String> {
        match self {
            Match::LimitNamed(name) => Some(name),
            _ => None,
        }
    }
}

impl Field {
    /// The address field of a direction.
    pub fn addr(dir: Dir, family: Family) -> Field {
        match dir {
            Dir::Source => Field::Saddr(family),
            Dir::Destination => Field::Daddr(family),
        }
    }

    /// The port field of a direction.
    pub fn port(dir: Dir, proto: Transport) -> Field {
        match dir {
            Dir::Source => Field::Sport(proto),
            Dir::Destination => Field::Dport(proto),
        }
    }
}

/// TCP flags by bit, as nft names them and lists them (in this order).
pub const TCP_FLAGS: [(u8, &str); 8] = [
    (0x01, "fin"),
    (0x02, "syn"),
    (0x04, "rst"),
    (0x08, "psh"),
    (0x10, "ack"),
    (0x20, "urg"),
    (0x40, "ecn"),
    (0x80, "cwr"),
];

/// Conntrack status bits (the kernel's IPS_*) as nft names them.
pub const CT_STATUS: [(u32, &str); 7] = [
    (0x001, "expected"),
    (0x002, "seen-reply"),
    (0x004, "assured"),
    (0x008, "confirmed"),
    (0x010, "snat"),
    (0x020, "dnat"),
    (0x200, "dying"),
];

/// Days of the week as nft names them (`meta day`), 0 first.
pub const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The names of the bits set in `bits`, in `table`'s order, as nft lists
/// them: `fin,syn`.
pub fn bit_names<T: Copy + PartialEq + std::ops::BitAnd<Output = T> + Default>(
    table: &[(T, &str)],
    bits: T,
) -> String {
    let names: Vec<&str> = table
        .iter()
        .filter(|(bit, _)| bits & *bit != T::default())
        .map(|(_, name)| *name)
        .collect();
    names.join(",")
}

fn neq(negate: bool) -> &'static str {
    if negate { "!= " } else { "" }
}

fn over_text(over: bool) -> &'static str {
    if over { "over " } else { "" }
}

fn eq_op(negate: bool) -> &'static str {
    if negate { "!=" } else { "==" }
}

/// The length of `mask` as a prefix of a `width`-bit number (ones from
/// the top, then zeros), if it is one.
fn prefix_len(mask: u128, width: u32) -> Option<u32> {
    let top = mask << (128 - width);
    let ones = top.leading_ones();
    let expected = u128::MAX.checked_shl(128 - ones).unwrap_or(0);
    (top == expected).then_some(ones)
}

/// A masked test as nft lists it: an address or mark under a prefix mask
/// as a prefix (`ip saddr 10.1.0.0/16`, `meta mark 0x00010000/16`), any
/// field under a whole mask as the plain comparison, and the rest with
/// the mask (`ip6 daddr & ::ffff:ffff:ffff:ffff == ::1234`,
/// `tcp dport & 65280 == 256`).
fn masked_text(field: Field, mask: &Value, value: &Value, negate: bool) -> String {
    let ty = field.key_type();
    let (bits, width) = match mask {
        Value::Addr(IpAddr::V4(a)) => (u128::from(u32::from(*a)), 32),
        Value::Addr(IpAddr::V6(a)) => (u128::from(*a), 128),
        Value::Number(n) => (u128::from(*n), (ty.size() * 8) as u32),
        _ => (0, 0),
    };
    let value_text = value.text(ty);
    match prefix_len(bits, width) {
        Some(len) if len == width => format!("{field} {}{value_text}", neq(negate)),
        Some(len) if ty != KeyType::InetService => {
            format!("{field} {}{value_text}/{len}", neq(negate))
        }
        _ => format!("{field} & {} {} {value_text}", mask.text(ty), eq_op(negate)),
    }
}

/// A TCP flags test as nft lists each shape of it.
fn tcp_flags_text(flags: u8, mask: u8, negate: bool) -> String {
    let names = |bits| bit_names(&TCP_FLAGS, bits);
    if mask == u8::MAX {
        // The whole byte: a plain comparison, a single flag by name.
        let value = if flags.count_ones() == 1 {
            names(flags)
        } else {
            format!("0x{flags:x}")
        };
        format!("tcp flags {} {value}", eq_op(negate))
    } else if flags == 0 {
        // None of the mask's flags (negated: any of them).
        let not = if negate { "" } else { "! " };
        format!("tcp flags {not}{}", names(mask))
    } else if flags == mask && mask.count_ones() == 1 {
        format!("tcp flags & {0} {1} {0}", names(mask), eq_op(negate))
    } else {
        format!(
            "tcp flags {}{} / {}",
            neq(negate),
            names(flags),
            names(mask)
        )
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Validation keeps these strings to what nft lists as they are
            // between quotes (see `fields`); `{:?}` would double a '\'.
            Match::Iifname { name, negate } => write!(f, "iifname {}\"{name}\"", neq(*negate)),
            Match::Oifname { name, negate } => write!(f, "oifname {}\"{name}\"", neq(*negate)),
            Match::Addr { dir, net, negate } => {
                let fam = Family::of(&net.ip()).keyword();
                let full = net.prefix() == if net.is_ipv4() { 32 } else { 128 };
                if full {
                    write!(f, "{fam} {} {}{}", dir.addr(), neq(*negate), net.ip())
                } else {
                    write!(f, "{fam} {} {}{net}", dir.addr(), neq(*negate))
                }
            }
            Match::L4Proto { proto, negate } => {
                write!(f, "meta l4proto {}{proto}", neq(*negate))
            }
            Match::Port {
                dir,
                proto,
                first,
                last,
                negate,
            } => {
                if first == last {
                    write!(
                        f,
                        "{} {} {}{first}",
                        proto.as_str(),
                        dir.port(),
                        neq(*negate)
                    )
                } else {
                    write!(f, "{} {} {first}-{last}", proto.as_str(), dir.port())
                }
            }
            Match::CtState(states) => write!(f, "ct state {states}"),
            Match::AddrInSet { dir, family, set } => {
                write!(f, "{} {} @{set}", family.keyword(), dir.addr())
            }
            Match::PortInSet { dir, proto, set } => {
                write!(f, "{} {} @{set}", proto.as_str(), dir.port())
            }
            Match::Nfproto { family, negate } => {
                write!(f, "meta nfproto {}{}", neq(*negate), family.nfproto_name())
            }
            Match::Test {
                fields,
                against,
                negate,
            } => {
                write!(f, "{} {}", fields_text(fields), neq(*negate))?;
                let key = key_of(fields);
                match against {
                    Against::One(v) => f.write_str(&v.text(key.0[0])),
                    Against::Set(set) => f.write_str(&set_text(&key, &set.elements)),
                }
            }
            Match::InSet {
                fields,
                set,
                negate,
            } => write!(f, "{} {}@{set}", fields_text(fields), neq(*negate)),
            Match::Masked {
                field,
                mask,
                value,
                negate,
            } => f.write_str(&masked_text(*field, mask, value, *negate)),
            Match::TcpFlags {
                flags,
                mask,
                negate,
            } => f.write_str(&tcp_flags_text(*flags, *mask, *negate)),
            Match::CtStatus { bits, negate } => {
                let not = if *negate { "! " } else { "" };
                write!(f, "ct status {not}{}", bit_names(&CT_STATUS, *bits))
            }
            Match::Fib { check, negate } => match check {
                FibCheck::ReversePathMissing => {
                    write!(f, "fib saddr . iif oif {}missing", neq(*negate))
                }
                FibCheck::ReversePathMissingMark => {
                    write!(f, "fib saddr . mark . iif oif {}missing", neq(*negate))
                }
                FibCheck::DaddrLocal => write!(f, "fib daddr type {}local", neq(*negate)),
            },
            Match::Hour(h) => write!(
                f,
                "meta hour {}{}-{}",
                neq(h.negate),
                time_of_day_text(h.local.0),
                time_of_day_text(h.local.1)
            ),
            Match::Day(days) => {
                let names: Vec<String> = days
                    .iter()
                    .map(|d| format!("\"{}\"", WEEKDAYS[usize::from(*d)]))
                    .collect();
                match names.as_slice() {
                    [one] => write!(f, "meta day {one}"),
                    _ => write!(f, "meta day {{ {} }}", names.join(", ")),
                }
            }
            Match::Date(d) => write!(
                f,
                "meta time {}-{}",
                moment_text(d.local.0),
                moment_text(d.local.1)
            ),
            Match::Limit { rate, over } => write!(f, "limit rate {}{rate}", over_text(*over)),
            Match::LimitNamed(name) => write!(f, "limit name \"{name}\""),
            Match::KeyedLimit {
                fields,
                set,
                rate,
                over,
            } => write!(
                f,
                "add @{set} {{ {} limit rate {}{rate} }}",
                fields_text(fields),
                over_text(*over)
            ),
        }
    }
}

/// Elements sorted as nft lists a set of `key` that is not of one-part
/// intervals (those it lists merged and by value, see `merge_intervals`):
/// by their value, which for a part in host byte order (marks, names,
/// protocols) is its bytes read from the last, and for a concatenation is
/// all its parts' bytes (unpadded) read as one number from the last.
pub fn listing_order(key: &Key, mut elements: Vec<Element>) -> Vec<Element> {
    elements.sort_by_cached_key(|e| {
        let mut bytes: Vec<u8> = Vec::new();
        for (ty, v) in key.0.iter().zip(&e.0) {
            let mut part = order_bytes(*ty, v);
            if !key.is_concatenation() && host_order(*ty) {
                part.reverse();
            }
            bytes.extend(part);
        }
        if key.is_concatenation() {
            bytes.reverse();
        }
        bytes
    });
    elements
}

/// Whether nft keeps values of the type in host byte order.
fn host_order(ty: KeyType) -> bool {
    matches!(ty, KeyType::Mark | KeyType::Ifname | KeyType::InetProto)
}

/// The bytes of a value (the first of an interval) as the kernel holds them.
fn order_bytes(ty: KeyType, v: &Value) -> Vec<u8> {
    let addr = |a: &IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let number = |n: u32| match ty.size() {
        2 => (n as u16).to_be_bytes().to_vec(),
        4 => n.to_ne_bytes().to_vec(),
        _ => vec![n as u8],
    };
    match v {
        Value::Addr(a) | Value::AddrRange(a, _) => addr(a),
        Value::Prefix(p) => addr(&p.network()),
        Value::Number(n) | Value::Range(n, _) => number(*n),
        Value::Name(name) => {
            let mut out = name.as_bytes().to_vec();
            out.resize(KeyType::Ifname.size(), 0);
            out
        }
        Value::Mac(m) => m.to_vec(),
    }
}

/// `{ 22, 80 }`, as nft lists an inline set of `key`.
pub fn set_text(key: &Key, elements: &[Element]) -> String {
    let parts: Vec<String> = elements.iter().map(|e| e.text(key)).collect();
    format!("{{ {} }}", parts.join(", "))
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;
