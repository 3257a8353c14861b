//! The fields of a packet or of its connection that a test, a set lookup
//! or a map lookup reads: the type of their values and the text nft lists
//! each as.

use std::fmt;

use super::{Family, KeyType, Transport};

/// One field a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Field {
    Iifname,
    Oifname,
    L4proto,
    Saddr(Family),
    Daddr(Family),
    Sport(Transport),
    Dport(Transport),
    IcmpType,
    IcmpCode,
    Icmpv6Type,
    Icmpv6Code,
    Mark,
    CtMark,
    Dscp(Family),
    EtherSaddr,
}

impl Field {
    /// The type of the field's values.
    pub fn key_type(self) -> KeyType {
        match self {
            Field::Iifname | Field::Oifname => KeyType::Ifname,
            Field::L4proto => KeyType::InetProto,
            Field::Saddr(Family::V4) | Field::Daddr(Family::V4) => KeyType::Ipv4Addr,
            Field::Saddr(Family::V6) | Field::Daddr(Family::V6) => KeyType::Ipv6Addr,
            Field::Sport(_) | Field::Dport(_) => KeyType::InetService,
            Field::IcmpType => KeyType::IcmpType,
            Field::IcmpCode => KeyType::IcmpCode,
            Field::Icmpv6Type => KeyType::Icmpv6Type,
            Field::Icmpv6Code => KeyType::Icmpv6Code,
            Field::Mark | Field::CtMark => KeyType::Mark,
            Field::Dscp(_) => KeyType::Dscp,
            Field::EtherSaddr => KeyType::EtherAddr,
        }
    }

    /// The address family a field implies (its header's), if any.
    pub fn family(self) -> Option<Family> {
        match self {
            Field::Saddr(f) | Field::Daddr(f) | Field::Dscp(f) => Some(f),
            Field::IcmpType | Field::IcmpCode => Some(Family::V4),
            Field::Icmpv6Type | Field::Icmpv6Code => Some(Family::V6),
            _ => None,
        }
    }
}

/// The field as nft lists it: `iifname`, `ip daddr`, `tcp dport`,
/// `icmpv6 type`, `meta mark`, `ct mark`, `ip6 dscp`, `ether saddr`.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Iifname => f.write_str("iifname"),
            Field::Oifname => f.write_str("oifname"),
            Field::L4proto => f.write_str("meta l4proto"),
            Field::Saddr(fam) => write!(f, "{} saddr", fam.keyword()),
            Field::Daddr(fam) => write!(f, "{} daddr", fam.keyword()),
            Field::Sport(t) => write!(f, "{} sport", t.as_str()),
            Field::Dport(t) => write!(f, "{} dport", t.as_str()),
            Field::IcmpType => f.write_str("icmp type"),
            Field::IcmpCode => f.write_str("icmp code"),
            Field::Icmpv6Type => f.write_str("icmpv6 type"),
            Field::Icmpv6Code => f.write_str("icmpv6 code"),
            Field::Mark => f.write_str("meta mark"),
            Field::CtMark => f.write_str("ct mark"),
            Field::Dscp(fam) => write!(f, "{} dscp", fam.keyword()),
            Field::EtherSaddr => f.write_str("ether saddr"),
        }
    }
}

/// Fields joined as a concatenation (`ip daddr . tcp dport`).
pub fn fields_text(fields: &[Field]) -> String {
    let parts: Vec<String> = fields.iter().map(Field::to_string).collect();
    parts.join(" . ")
}

/// The key of a lookup by these fields.
pub fn key_of(fields: &[Field]) -> super::Key {
    super::Key(fields.iter().map(|f| f.key_type()).collect())
}
