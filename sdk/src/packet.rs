//! What a rule can read from a packet and its connection: protocols,
//! families, conntrack states and status bits, TCP flags, ICMP types,
//! DSCP classes, and the [`Field`]s and [`Value`]s of the generic tests,
//! sets and maps.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use crate::macros::{flag_set, numbered};

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// Shows the protocol as nft writes it: `tcp`, `udp`, `sctp`.
impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Sctp => "sctp",
        })
    }
}

numbered! {
    /// Layer-4 protocol of a packet; one without a name goes by number
    /// (`L4Protocol::Other(41)`, IPv6 in IPv4).
    L4Protocol {
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// ICMP (IPv4).
        Icmp = 1,
        /// ICMPv6.
        Icmpv6 = 58,
        /// IGMP.
        Igmp = 2,
        /// GRE.
        Gre = 47,
        /// IPsec ESP.
        Esp = 50,
        /// IPsec AH.
        Ah = 51,
        /// SCTP.
        Sctp = 132,
        /// UDP-Lite.
        Udplite = 136,
    }
}

/// Address family of a packet or of an address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Connection-tracking state of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// A connection that has seen traffic both ways.
    Established,
    /// A connection related to an established one (an ICMP error, FTP data).
    Related,
    /// A packet conntrack cannot place.
    Invalid,
    /// A packet exempted from connection tracking.
    Untracked,
}

flag_set! {
    /// Connection-tracking status bits (`ct status`), combined with `|`.
    CtStatus {
        /// An expected connection (made by a helper, e.g. FTP data).
        EXPECTED = 0,
        /// Packets were seen both ways.
        SEEN_REPLY = 1,
        /// The connection is kept when the table is full.
        ASSURED = 2,
        /// The connection left the first packet's path.
        CONFIRMED = 3,
        /// Its source is translated.
        SNAT = 4,
        /// Its destination is translated (a port forward).
        DNAT = 5,
        /// Being removed.
        DYING = 6,
    }
}

flag_set! {
    /// TCP header flags, combined with `|`: `TcpFlags::SYN | TcpFlags::ACK`.
    TcpFlags {
        /// FIN.
        FIN = 0,
        /// SYN.
        SYN = 1,
        /// RST.
        RST = 2,
        /// PSH.
        PSH = 3,
        /// ACK.
        ACK = 4,
        /// URG.
        URG = 5,
        /// ECE.
        ECN = 6,
        /// CWR.
        CWR = 7,
    }
}

numbered! {
    /// ICMP (IPv4) message type.
    IcmpType {
        /// 0.
        EchoReply = 0,
        /// 3.
        DestinationUnreachable = 3,
        /// 4.
        SourceQuench = 4,
        /// 5.
        Redirect = 5,
        /// 8: ping.
        EchoRequest = 8,
        /// 9.
        RouterAdvertisement = 9,
        /// 10.
        RouterSolicitation = 10,
        /// 11: traceroute's answer.
        TimeExceeded = 11,
        /// 12.
        ParameterProblem = 12,
        /// 13.
        TimestampRequest = 13,
        /// 14.
        TimestampReply = 14,
        /// 15.
        InfoRequest = 15,
        /// 16.
        InfoReply = 16,
        /// 17.
        AddressMaskRequest = 17,
        /// 18.
        AddressMaskReply = 18,
    }
}

numbered! {
    /// ICMPv6 message type (RFC 4443, 4861, 2710, 3810).
    Icmpv6Type {
        /// 1.
        DestinationUnreachable = 1,
        /// 2: path MTU discovery needs it.
        PacketTooBig = 2,
        /// 3.
        TimeExceeded = 3,
        /// 4.
        ParameterProblem = 4,
        /// 128: ping.
        EchoRequest = 128,
        /// 129.
        EchoReply = 129,
        /// 130.
        MldListenerQuery = 130,
        /// 131.
        MldListenerReport = 131,
        /// 132.
        MldListenerDone = 132,
        /// 133.
        NdRouterSolicit = 133,
        /// 134.
        NdRouterAdvert = 134,
        /// 135.
        NdNeighborSolicit = 135,
        /// 136.
        NdNeighborAdvert = 136,
        /// 137.
        NdRedirect = 137,
        /// 138.
        RouterRenumbering = 138,
        /// 141.
        IndNeighborSolicit = 141,
        /// 142.
        IndNeighborAdvert = 142,
        /// 143.
        Mld2ListenerReport = 143,
    }
}

/// A DSCP value, 0-63: a named class (`Dscp::EF`, `Dscp::AF41`, `Dscp::CS1`)
/// or any number through [`Dscp::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dscp(u8);

impl Dscp {
    /// Class selector 0, best effort (the default).
    pub const CS0: Dscp = Dscp(0);
    /// Class selector 1, low priority (bulk).
    pub const CS1: Dscp = Dscp(8);
    /// Class selector 2.
    pub const CS2: Dscp = Dscp(16);
    /// Class selector 3.
    pub const CS3: Dscp = Dscp(24);
    /// Class selector 4.
    pub const CS4: Dscp = Dscp(32);
    /// Class selector 5.
    pub const CS5: Dscp = Dscp(40);
    /// Class selector 6, network control.
    pub const CS6: Dscp = Dscp(48);
    /// Class selector 7.
    pub const CS7: Dscp = Dscp(56);
    /// Assured forwarding class 1, low drop precedence.
    pub const AF11: Dscp = Dscp(10);
    /// Assured forwarding class 1, medium drop precedence.
    pub const AF12: Dscp = Dscp(12);
    /// Assured forwarding class 1, high drop precedence.
    pub const AF13: Dscp = Dscp(14);
    /// Assured forwarding class 2, low drop precedence.
    pub const AF21: Dscp = Dscp(18);
    /// Assured forwarding class 2, medium drop precedence.
    pub const AF22: Dscp = Dscp(20);
    /// Assured forwarding class 2, high drop precedence.
    pub const AF23: Dscp = Dscp(22);
    /// Assured forwarding class 3, low drop precedence.
    pub const AF31: Dscp = Dscp(26);
    /// Assured forwarding class 3, medium drop precedence.
    pub const AF32: Dscp = Dscp(28);
    /// Assured forwarding class 3, high drop precedence.
    pub const AF33: Dscp = Dscp(30);
    /// Assured forwarding class 4, low drop precedence.
    pub const AF41: Dscp = Dscp(34);
    /// Assured forwarding class 4, medium drop precedence.
    pub const AF42: Dscp = Dscp(36);
    /// Assured forwarding class 4, high drop precedence.
    pub const AF43: Dscp = Dscp(38);
    /// Voice admit (RFC 5865).
    pub const VA: Dscp = Dscp(44);
    /// Expedited forwarding: voice.
    pub const EF: Dscp = Dscp(46);
    /// Lower effort (RFC 8622).
    pub const LE: Dscp = Dscp(1);

    /// The DSCP with this number; `None` above 63.
    pub const fn new(value: u8) -> Option<Dscp> {
        if value < 64 { Some(Dscp(value)) } else { None }
    }

    /// Its number, 0-63.
    pub const fn value(self) -> u8 {
        self.0
    }
}

impl From<Dscp> for Value {
    fn from(d: Dscp) -> Self {
        Value::Number(d.0.into())
    }
}

/// Route lookups (`fib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FibCheck {
    /// There is no route back to the source through the interface the
    /// packet came in on (strict reverse-path filtering, RFC 3704).
    ReversePathMissing,
    /// As [`FibCheck::ReversePathMissing`], with the packet mark in the
    /// lookup (for policy routing by mark).
    ReversePathMissingMark,
    /// The destination is an address of this machine.
    DaddrLocal,
}

/// A field of the packet or its connection that a test, a set lookup or a
/// map reads. The comment on each says which [`Value`]s it is compared
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// Input interface name; [`Value::Name`]s.
    Iifname,
    /// Output interface name; [`Value::Name`]s.
    Oifname,
    /// Layer-4 protocol (`meta l4proto`); numbers, e.g.
    /// `Value::from(L4Protocol::Gre)`.
    L4proto,
    /// Source address of this family; [`Value::Address`]es (also
    /// prefixes) and [`Value::AddressRange`]s.
    Saddr(IpFamily),
    /// Destination address, as [`Field::Saddr`].
    Daddr(IpFamily),
    /// Source port; numbers and number ranges (`Value::from(1024..=65535)`).
    Sport(Transport),
    /// Destination port, as [`Field::Sport`].
    Dport(Transport),
    /// ICMP type; `Value::from(IcmpType::EchoRequest)`.
    IcmpType,
    /// ICMP code; numbers.
    IcmpCode,
    /// ICMPv6 type; `Value::from(Icmpv6Type::NdNeighborSolicit)`.
    Icmpv6Type,
    /// ICMPv6 code; numbers.
    Icmpv6Code,
    /// Packet mark (`meta mark`), 32 bits; numbers.
    Mark,
    /// Conntrack mark (`ct mark`), 32 bits; numbers.
    CtMark,
    /// DSCP of the header of this family; `Value::from(Dscp::EF)`.
    Dscp(IpFamily),
    /// Source hardware address (`ether saddr`); [`Value::Mac`]s.
    EtherSaddr,
}

/// One value a [`Field`] is compared with, or one part of a set's or a
/// map's element. Numbers, ranges and addresses convert with `From`
/// (`Value::from(22u16)`, `Value::from(1024u16..=65535)`,
/// `Value::from(Ipv4Addr::new(10, 0, 0, 2))`); strings say what they are
/// ([`Value::address`], [`Value::name`], [`Value::mac`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Value {
    /// A number: a port, protocol, mark, ICMP type or code, DSCP.
    Number(u32),
    /// An inclusive range of numbers, e.g. ports 1024-65535.
    NumberRange(u32, u32),
    /// An address, "192.168.0.2" or "fd00::2", or a prefix with zero host
    /// bits, "10.0.0.0/8".
    Address(String),
    /// An inclusive range of addresses of one family.
    AddressRange(String, String),
    /// An interface name (at most 15 bytes). In a test of one field
    /// against one value, a trailing '*' matches every name that starts
    /// with the rest ("eth*").
    Name(String),
    /// A hardware address, "aa:bb:cc:dd:ee:ff".
    Mac(String),
}

impl Value {
    /// An address or prefix: "192.168.0.2", "10.0.0.0/8", "fd00::/8".
    pub fn address(address: impl Into<String>) -> Value {
        Value::Address(address.into())
    }

    /// The addresses from `first` to `last`, inclusive, of one family.
    pub fn address_range(first: impl Into<String>, last: impl Into<String>) -> Value {
        Value::AddressRange(first.into(), last.into())
    }

    /// An interface name, "lan0" (or "eth*" in a test of one value).
    pub fn name(name: impl Into<String>) -> Value {
        Value::Name(name.into())
    }

    /// A hardware address, "aa:bb:cc:dd:ee:ff".
    pub fn mac(mac: impl Into<String>) -> Value {
        Value::Mac(mac.into())
    }
}

impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Number(n.into())
    }
}

impl From<u16> for Value {
    fn from(n: u16) -> Self {
        Value::Number(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(n)
    }
}

impl From<RangeInclusive<u16>> for Value {
    fn from(r: RangeInclusive<u16>) -> Self {
        Value::NumberRange((*r.start()).into(), (*r.end()).into())
    }
}

impl From<RangeInclusive<u32>> for Value {
    fn from(r: RangeInclusive<u32>) -> Self {
        Value::NumberRange(*r.start(), *r.end())
    }
}

impl From<Ipv4Addr> for Value {
    fn from(a: Ipv4Addr) -> Self {
        Value::Address(a.to_string())
    }
}

impl From<Ipv6Addr> for Value {
    fn from(a: Ipv6Addr) -> Self {
        Value::Address(a.to_string())
    }
}

impl From<IpAddr> for Value {
    fn from(a: IpAddr) -> Self {
        Value::Address(a.to_string())
    }
}

impl From<RangeInclusive<Ipv4Addr>> for Value {
    fn from(r: RangeInclusive<Ipv4Addr>) -> Self {
        Value::AddressRange(r.start().to_string(), r.end().to_string())
    }
}

impl From<RangeInclusive<Ipv6Addr>> for Value {
    fn from(r: RangeInclusive<Ipv6Addr>) -> Self {
        Value::AddressRange(r.start().to_string(), r.end().to_string())
    }
}

/// Type of one part of a set's or map's key, or of a map's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// IPv4 address (`ipv4_addr`).
    Ipv4Addr,
    /// IPv6 address (`ipv6_addr`).
    Ipv6Addr,
    /// Port (`inet_service`).
    InetService,
    /// Layer-4 protocol number (`inet_proto`).
    InetProto,
    /// Interface name (`ifname`).
    Ifname,
    /// Packet or conntrack mark (`mark`).
    Mark,
    /// Hardware address (`ether_addr`).
    EtherAddr,
    /// ICMP type (`icmp_type`).
    IcmpType,
    /// ICMPv6 type (`icmpv6_type`).
    Icmpv6Type,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_enums_name_their_numbers_and_keep_the_others() {
        assert_eq!(IcmpType::EchoRequest.number(), 8);
        assert_eq!(IcmpType::from(8), IcmpType::EchoRequest);
        assert_eq!(IcmpType::from(42), IcmpType::Other(42));
        assert_eq!(IcmpType::Other(42).number(), 42);
        assert_eq!(Icmpv6Type::from(135), Icmpv6Type::NdNeighborSolicit);
        assert_eq!(L4Protocol::Gre.number(), 47);
        assert_eq!(L4Protocol::from(6), L4Protocol::Tcp);
        assert_eq!(Value::from(L4Protocol::Other(41)), Value::Number(41));
    }

    #[test]
    fn flag_sets_combine_and_show_their_names() {
        let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
        assert!(syn_ack.contains(TcpFlags::SYN));
        assert!(!syn_ack.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert_eq!(syn_ack & TcpFlags::ACK, TcpFlags::ACK);
        assert!(TcpFlags::empty().is_empty());
        assert_eq!(format!("{syn_ack:?}"), "TcpFlags(SYN | ACK)");
        let mut status = CtStatus::DNAT;
        status |= CtStatus::SNAT;
        assert_eq!(format!("{status:?}"), "CtStatus(SNAT | DNAT)");
        assert!(CtStatus::all().contains(CtStatus::DYING | CtStatus::EXPECTED));
    }

    #[test]
    fn dscp_takes_six_bits() {
        assert_eq!(Dscp::new(46), Some(Dscp::EF));
        assert_eq!(Dscp::new(63).map(Dscp::value), Some(63));
        assert_eq!(Dscp::new(64), None);
        assert_eq!(Value::from(Dscp::AF41), Value::Number(34));
    }

    #[test]
    fn values_convert_from_numbers_ranges_and_addresses() {
        assert_eq!(Value::from(22u16), Value::Number(22));
        assert_eq!(
            Value::from(1024u16..=65535),
            Value::NumberRange(1024, 65535)
        );
        assert_eq!(
            Value::from(Ipv4Addr::new(10, 0, 0, 1)..=Ipv4Addr::new(10, 0, 0, 9)),
            Value::address_range("10.0.0.1", "10.0.0.9")
        );
        assert_eq!(
            Value::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            Value::address("::1")
        );
    }
}
