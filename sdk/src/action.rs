//! What a rule finally does with a packet: its [`Verdict`], with what the
//! verdicts take: how a reject answers, where NAT translates to, and the
//! maps a verdict or a translation is looked up in.

use std::ops::RangeInclusive;

use crate::macros::flag_set;
use crate::packet::{Field, IpFamily, Value};

/// ICMP codes of a reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IcmpReject {
    /// Network unreachable.
    NetUnreachable,
    /// Host unreachable.
    HostUnreachable,
    /// Protocol unreachable.
    ProtUnreachable,
    /// Port unreachable.
    PortUnreachable,
    /// Network prohibited.
    NetProhibited,
    /// Host prohibited.
    HostProhibited,
    /// Administratively prohibited.
    AdminProhibited,
}

/// ICMPv6 codes of a reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Icmpv6Reject {
    /// No route to destination.
    NoRoute,
    /// Administratively prohibited.
    AdminProhibited,
    /// Address unreachable.
    AddrUnreachable,
    /// Port unreachable.
    PortUnreachable,
    /// Source address failed ingress/egress policy.
    PolicyFail,
    /// Reject route to destination.
    RejectRoute,
}

/// Reject codes for either family, each given as the packet's family's
/// ICMP or ICMPv6 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IcmpxReject {
    /// No route.
    NoRoute,
    /// Port unreachable.
    PortUnreachable,
    /// Host unreachable.
    HostUnreachable,
    /// Administratively prohibited.
    AdminProhibited,
}

/// How a reject answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectWith {
    /// A TCP reset; the rule must match TCP.
    TcpReset,
    /// An ICMP error; the rule must match IPv4.
    Icmp(IcmpReject),
    /// An ICMPv6 error; the rule must match IPv6.
    Icmpv6(Icmpv6Reject),
    /// The ICMP or ICMPv6 error for the packet's family.
    Icmpx(IcmpxReject),
}

/// An inclusive range of ports; `first == last` for one port.
/// `PortRange::from(8080)` and `PortRange::from(8000..=8999)` make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The lowest port.
    pub first: u16,
    /// The highest port.
    pub last: u16,
}

impl From<u16> for PortRange {
    fn from(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }
}

impl From<RangeInclusive<u16>> for PortRange {
    fn from(r: RangeInclusive<u16>) -> Self {
        PortRange {
            first: *r.start(),
            last: *r.end(),
        }
    }
}

flag_set! {
    /// Options of an address translation, combined with `|`.
    NatFlags {
        /// Pick ports at random.
        RANDOM = 0,
        /// Pick ports fully at random.
        FULLY_RANDOM = 1,
        /// Give a client the same address every time.
        PERSISTENT = 2,
    }
}

/// Where a NAT verdict translates to: an address or a range of addresses,
/// optionally a port or a range of ports, and flags.
///
/// ```
/// use wasmwall_sdk::{NatFlags, NatTarget};
/// let pool = NatTarget::range("203.0.113.10", "203.0.113.19")
///     .with_ports(1024..=65535)
///     .with_flags(NatFlags::PERSISTENT);
/// assert_eq!(pool.last_address(), Some("203.0.113.19"));
/// assert_eq!(pool.port(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatTarget {
    pub(crate) address: String,
    pub(crate) last_address: Option<String>,
    pub(crate) ports: Option<PortRange>,
    pub(crate) flags: NatFlags,
}

impl NatTarget {
    /// To `address`, IPv4 or IPv6, keeping the port.
    pub fn new(address: impl Into<String>) -> NatTarget {
        NatTarget {
            address: address.into(),
            last_address: None,
            ports: None,
            flags: NatFlags::empty(),
        }
    }

    /// To an address from `first` to `last`, of one family.
    pub fn range(first: impl Into<String>, last: impl Into<String>) -> NatTarget {
        NatTarget {
            last_address: Some(last.into()),
            ..NatTarget::new(first)
        }
    }

    /// To this port or range of ports; the rule needs a tcp, udp or sctp
    /// match.
    pub fn with_ports(self, ports: impl Into<PortRange>) -> NatTarget {
        NatTarget {
            ports: Some(ports.into()),
            ..self
        }
    }

    /// With these options.
    pub fn with_flags(self, flags: NatFlags) -> NatTarget {
        NatTarget { flags, ..self }
    }

    /// Splits "addr", "addr:port", "[v6]" or "[v6]:port". A malformed port
    /// stays in the address, where the runtime's validation reports it.
    pub(crate) fn parse(target: &str) -> NatTarget {
        let whole = || NatTarget::new(target);
        let (address, port) = if let Some(rest) = target.strip_prefix('[') {
            match rest.split_once(']') {
                Some((addr, "")) => (addr, None),
                Some((addr, tail)) => match tail.strip_prefix(':') {
                    Some(p) => (addr, Some(p)),
                    None => return whole(),
                },
                None => return whole(),
            }
        } else if let Some((addr, p)) = target.split_once(':')
            && !p.contains(':')
        {
            (addr, Some(p))
        } else {
            (target, None)
        };
        match port.map(str::parse::<u16>) {
            None => NatTarget::new(address),
            Some(Ok(p)) => NatTarget::new(address).with_ports(p),
            Some(Err(_)) => whole(),
        }
    }

    /// The address to translate to, IPv4 or IPv6 (without brackets); the
    /// first of the range when there is one.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The last address of the range, if one was given.
    pub fn last_address(&self) -> Option<&str> {
        self.last_address.as_deref()
    }

    /// The port to translate to, if one port (not a range) was given.
    pub fn port(&self) -> Option<u16> {
        self.ports.filter(|p| p.first == p.last).map(|p| p.first)
    }

    /// The port or range of ports to translate to, if given.
    pub fn ports(&self) -> Option<PortRange> {
        self.ports
    }

    /// The options.
    pub fn flags(&self) -> NatFlags {
        self.flags
    }
}

/// A verdict as a verdict map's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapVerdict {
    /// Let the packet through this base chain.
    Accept,
    /// Discard the packet silently.
    Drop,
    /// Continue in the named regular chain, then come back.
    Jump(String),
    /// Continue in the named regular chain and do not come back.
    Goto(String),
    /// Return to the calling chain.
    Return,
}

/// What a map element maps its key to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapData {
    /// For a verdict map.
    Verdict(MapVerdict),
    /// For a data map: one value per data type, e.g. an address, or an
    /// address and a port.
    Values(Vec<Value>),
}

impl From<MapVerdict> for MapData {
    fn from(v: MapVerdict) -> Self {
        MapData::Verdict(v)
    }
}

impl From<Vec<Value>> for MapData {
    fn from(values: Vec<Value>) -> Self {
        MapData::Values(values)
    }
}

impl<const N: usize> From<[Value; N]> for MapData {
    fn from(values: [Value; N]) -> Self {
        MapData::Values(values.into())
    }
}

/// One element of a map: a key (one value per key field or type) and its
/// data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapElement {
    pub(crate) key: Vec<Value>,
    pub(crate) data: MapData,
}

impl MapElement {
    /// `key` maps to `data`: a [`MapVerdict`], or the values of a data map
    /// (`[Value::address("192.168.1.10"), Value::from(80u16)]`).
    pub fn new(key: impl IntoIterator<Item = Value>, data: impl Into<MapData>) -> MapElement {
        MapElement {
            key: key.into_iter().collect(),
            data: data.into(),
        }
    }

    /// The key, one value per part.
    pub fn key(&self) -> &[Value] {
        &self.key
    }

    /// What the key maps to.
    pub fn data(&self) -> &MapData {
        &self.data
    }
}

/// Where a map lookup finds its elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapSource {
    /// A map of the ruleset (`Ruleset::map`).
    Named(String),
    /// Elements written in the rule.
    Inline(Vec<MapElement>),
}

/// The fields that key a map, and the map: what a verdict map or a NAT map
/// looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapLookup {
    pub(crate) key: Vec<Field>,
    pub(crate) source: MapSource,
}

impl MapLookup {
    /// Looks `key` up in the named map of the ruleset.
    pub fn named(key: impl IntoIterator<Item = Field>, map: impl Into<String>) -> MapLookup {
        MapLookup {
            key: key.into_iter().collect(),
            source: MapSource::Named(map.into()),
        }
    }

    /// Looks `key` up in these elements, written in the rule.
    pub fn inline(
        key: impl IntoIterator<Item = Field>,
        elements: impl IntoIterator<Item = MapElement>,
    ) -> MapLookup {
        MapLookup {
            key: key.into_iter().collect(),
            source: MapSource::Inline(elements.into_iter().collect()),
        }
    }

    /// The fields of the key, concatenated in order.
    pub fn key(&self) -> &[Field] {
        &self.key
    }

    /// The map.
    pub fn source(&self) -> &MapSource {
        &self.source
    }
}

/// A NAT verdict's map lookup: its data is an address, or an address and a
/// port, of `family`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatMap {
    pub(crate) family: IpFamily,
    pub(crate) lookup: MapLookup,
}

impl NatMap {
    /// The family of the addresses the map gives.
    pub fn family(&self) -> IpFamily {
        self.family
    }

    /// The lookup.
    pub fn lookup(&self) -> &MapLookup {
        &self.lookup
    }
}

/// What a rule does with a packet that matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Let the packet through this base chain.
    Accept,
    /// Discard the packet silently.
    Drop,
    /// Discard the packet and tell the sender: a TCP reset when the rule
    /// matches TCP only, ICMP(v6) port unreachable otherwise.
    Reject,
    /// Discard the packet and answer as given.
    RejectWith(RejectWith),
    /// Continue in the named regular chain, then come back.
    Jump(String),
    /// Continue in the named regular chain and do not come back.
    Goto(String),
    /// Return to the calling chain.
    Return,
    /// Rewrite the destination.
    Dnat(NatTarget),
    /// Rewrite the source.
    Snat(NatTarget),
    /// Rewrite the destination to what a map gives.
    DnatMap(NatMap),
    /// Rewrite the source to what a map gives.
    SnatMap(NatMap),
    /// Rewrite the source to the output interface's address.
    Masquerade,
    /// As [`Verdict::Masquerade`], to these ports.
    MasqueradeTo(PortRange),
    /// Rewrite the destination to this machine, keeping the port.
    Redirect,
    /// Rewrite the destination to this machine and these ports.
    RedirectTo(PortRange),
    /// The verdict a map gives for the key; a key the map lacks goes on
    /// with the next rule.
    Vmap(MapLookup),
    /// Go on with the next rule.
    Continue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_target_forms() {
        let parsed = |text| {
            let t = NatTarget::parse(text);
            (t.address().to_string(), t.port())
        };
        assert_eq!(parsed("127.0.0.1:4000"), ("127.0.0.1".into(), Some(4000)));
        assert_eq!(parsed("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(parsed("[fd00::1]:8080"), ("fd00::1".into(), Some(8080)));
        assert_eq!(parsed("[fd00::1]"), ("fd00::1".into(), None));
        assert_eq!(parsed("fd00::1"), ("fd00::1".into(), None));
        // An invalid port stays in the address for the runtime to reject.
        assert_eq!(parsed("10.0.0.1:99999"), ("10.0.0.1:99999".into(), None));
        assert_eq!(parsed("[fd00::1]x"), ("[fd00::1]x".into(), None));
    }

    #[test]
    fn a_nat_target_has_one_port_or_a_range() {
        let one = NatTarget::new("10.0.0.5").with_ports(8080);
        assert_eq!(one.port(), Some(8080));
        assert_eq!(
            one.ports(),
            Some(PortRange {
                first: 8080,
                last: 8080
            })
        );
        let range = NatTarget::new("10.0.0.5").with_ports(8000..=8999);
        assert_eq!(range.port(), None);
        assert_eq!(
            range.ports(),
            Some(PortRange {
                first: 8000,
                last: 8999
            })
        );
        assert_eq!(range.flags(), NatFlags::empty());
        assert_eq!(range.last_address(), None);
    }
}
