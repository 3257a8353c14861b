//! The IR's statements and actions: what a rule does with a packet that
//! matches, each with the nft text it lists as. Every value here is in the
//! one form nft lists it in (a range of one port is a port, a mark update
//! is the mask and xor the kernel applies), so equal kernel forms have
//! equal text, and so equal identity.

use std::fmt;
use std::net::IpAddr;

use super::Family;

/// An inclusive range of ports, `first <= last`; `first == last` is one
/// port. Lists as `8080` or `8080-8090`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Options of an address translation. Lists as nft does: the names set,
/// in this order, joined by ','.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct NatFlags {
    pub random: bool,
    pub fully_random: bool,
    pub persistent: bool,
}

impl NatFlags {
    pub fn is_empty(&self) -> bool {
        *self == NatFlags::default()
    }
}

impl fmt::Display for NatFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.random, "random"),
            (self.fully_random, "fully-random"),
            (self.persistent, "persistent"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&set.join(","))
    }
}

/// Target of dnat or snat: an address or a range of one family, ports,
/// options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NatTarget {
    pub address: IpAddr,
    /// The last address of a range, above `address` and of its family.
    pub last_address: Option<IpAddr>,
    pub ports: Option<PortRange>,
    pub flags: NatFlags,
}

impl NatTarget {
    /// One address, and one port if given, without options.
    pub fn to(address: IpAddr, port: Option<u16>) -> NatTarget {
        NatTarget {
            address,
            last_address: None,
            ports: port.map(PortRange::single),
            flags: NatFlags::default(),
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }
}

/// The prefix length of the range `first`-`last` when it is exactly one
/// prefix (`10.0.0.4-10.0.0.7` is `10.0.0.4/30`).
fn range_prefix(first: IpAddr, last: IpAddr) -> Option<u32> {
    let (first, last, bits) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return None,
    };
    let host = first ^ last;
    // The bits that differ are all the low ones, and the first has them 0.
    let aligned = host & host.wrapping_add(1) == 0 && first & host == 0;
    aligned.then(|| bits - (128 - host.leading_zeros()))
}

/// `ip to 10.0.0.1-10.0.0.5:8080-8090 random`, as nft lists it: a range
/// that is one prefix as the prefix (`10.0.0.4/30`), and an IPv6 address
/// in brackets when a port follows it (a prefix without).
impl fmt::Display for NatTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6_with_port = self.address.is_ipv6() && self.ports.is_some();
        let addr = |a: IpAddr| {
            if v6_with_port {
                format!("[{a}]")
            } else {
                a.to_string()
            }
        };
        write!(f, "{} to ", self.family().keyword())?;
        match self.last_address {
            None => write!(f, "{}", addr(self.address))?,
            Some(last) => match range_prefix(self.address, last) {
                Some(len) => write!(f, "{}/{len}", self.address)?,
                None => write!(f, "{}-{}", addr(self.address), addr(last))?,
            },
        }
        if let Some(ports) = self.ports {
            write!(f, ":{ports}")?;
        }
        if !self.flags.is_empty() {
            write!(f, " {}", self.flags)?;
        }
        Ok(())
    }
}

/// ICMP codes of `reject with icmp`, as nft names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IcmpReject {
    NetUnreachable,
    HostUnreachable,
    ProtUnreachable,
    PortUnreachable,
    NetProhibited,
    HostProhibited,
    AdminProhibited,
}

impl IcmpReject {
    /// The ICMP destination-unreachable code (RFC 792, RFC 1812).
    pub fn code(self) -> u8 {
        match self {
            IcmpReject::NetUnreachable => 0,
            IcmpReject::HostUnreachable => 1,
            IcmpReject::ProtUnreachable => 2,
            IcmpReject::PortUnreachable => 3,
            IcmpReject::NetProhibited => 9,
            IcmpReject::HostProhibited => 10,
            IcmpReject::AdminProhibited => 13,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IcmpReject::NetUnreachable => "net-unreachable",
            IcmpReject::HostUnreachable => "host-unreachable",
            IcmpReject::ProtUnreachable => "prot-unreachable",
            IcmpReject::PortUnreachable => "port-unreachable",
            IcmpReject::NetProhibited => "net-prohibited",
            IcmpReject::HostProhibited => "host-prohibited",
            IcmpReject::AdminProhibited => "admin-prohibited",
        }
    }
}

/// ICMPv6 codes of `reject with icmpv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Icmpv6Reject {
    NoRoute,
    AdminProhibited,
    AddrUnreachable,
    PortUnreachable,
    PolicyFail,
    RejectRoute,
}

impl Icmpv6Reject {
    /// The ICMPv6 destination-unreachable code (RFC 4443).
    pub fn code(self) -> u8 {
        match self {
            Icmpv6Reject::NoRoute => 0,
            Icmpv6Reject::AdminProhibited => 1,
            Icmpv6Reject::AddrUnreachable => 3,
            Icmpv6Reject::PortUnreachable => 4,
            Icmpv6Reject::PolicyFail => 5,
            Icmpv6Reject::RejectRoute => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Icmpv6Reject::NoRoute => "no-route",
            Icmpv6Reject::AdminProhibited => "admin-prohibited",
            Icmpv6Reject::AddrUnreachable => "addr-unreachable",
            Icmpv6Reject::PortUnreachable => "port-unreachable",
            Icmpv6Reject::PolicyFail => "policy-fail",
            Icmpv6Reject::RejectRoute => "reject-route",
        }
    }
}

/// Codes of `reject with icmpx`: the kernel sends the ICMP or ICMPv6 code
/// of the packet's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IcmpxReject {
    NoRoute,
    PortUnreachable,
    HostUnreachable,
    AdminProhibited,
}

impl IcmpxReject {
    /// The kernel's NFT_REJECT_ICMPX_* number.
    pub fn code(self) -> u8 {
        match self {
            IcmpxReject::NoRoute => 0,
            IcmpxReject::PortUnreachable => 1,
            IcmpxReject::HostUnreachable => 2,
            IcmpxReject::AdminProhibited => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IcmpxReject::NoRoute => "no-route",
            IcmpxReject::PortUnreachable => "port-unreachable",
            IcmpxReject::HostUnreachable => "host-unreachable",
            IcmpxReject::AdminProhibited => "admin-prohibited",
        }
    }
}

/// How a reject answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RejectWith {
    /// The rule matches TCP only.
    TcpReset,
    /// The rule matches IPv4 only.
    Icmp(IcmpReject),
    /// The rule matches IPv6 only.
    Icmpv6(Icmpv6Reject),
    Icmpx(IcmpxReject),
}

/// nft lists icmpx port-unreachable, its default, as a bare `reject`.
impl fmt::Display for RejectWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectWith::TcpReset => f.write_str("reject with tcp reset"),
            RejectWith::Icmp(c) => write!(f, "reject with icmp {}", c.as_str()),
            RejectWith::Icmpv6(c) => write!(f, "reject with icmpv6 {}", c.as_str()),
            RejectWith::Icmpx(IcmpxReject::PortUnreachable) => f.write_str("reject"),
            RejectWith::Icmpx(c) => write!(f, "reject with icmpx {}", c.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Action {
    Accept,
    Drop,
    Reject(RejectWith),
    /// Jump or goto; the string is the chain's name as the policy wrote it.
    Jump(String),
    Goto(String),
    Return,
    Continue,
    Dnat(NatTarget),
    Snat(NatTarget),
    /// To the output interface's address, optionally to these ports.
    Masquerade(Option<PortRange>),
    /// To this machine, optionally to these ports.
    Redirect(Option<PortRange>),
    /// The verdict a map gives for the key; a key it lacks goes on.
    Vmap(super::MapLookup),
    /// DNAT or SNAT to what a map gives for the key.
    DnatMap(super::NatMap),
    SnatMap(super::NatMap),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Accept => f.write_str("accept"),
            Action::Drop => f.write_str("drop"),
            Action::Reject(with) => write!(f, "{with}"),
            Action::Jump(c) => write!(f, "jump {c}"),
            Action::Goto(c) => write!(f, "goto {c}"),
            Action::Return => f.write_str("return"),
            Action::Continue => f.write_str("continue"),
            Action::Dnat(t) => write!(f, "dnat {t}"),
            Action::Snat(t) => write!(f, "snat {t}"),
            Action::Masquerade(None) => f.write_str("masquerade"),
            Action::Masquerade(Some(p)) => write!(f, "masquerade to :{p}"),
            Action::Redirect(None) => f.write_str("redirect"),
            Action::Redirect(Some(p)) => write!(f, "redirect to :{p}"),
            Action::Vmap(lookup) => write!(f, "{} vmap {}", lookup.key_text(), lookup.map),
            Action::DnatMap(m) => write!(f, "dnat {m}"),
            Action::SnatMap(m) => write!(f, "snat {m}"),
        }
    }
}

/// Unit of a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl TimeUnit {
    pub fn seconds(self) -> u64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 604_800,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Second => "second",
            TimeUnit::Minute => "minute",
            TimeUnit::Hour => "hour",
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
        }
    }
}

/// A token-bucket rate: `amount` packets (or bytes) per unit, and `burst`
/// above it. The burst is as the kernel keeps it: a packet rate's is never
/// 0 (5 when the policy gave none, as nft sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    pub amount: u64,
    pub bytes: bool,
    pub per: TimeUnit,
    pub burst: u32,
}

impl Rate {
    /// The burst the kernel gives a packet rate that names none.
    pub const DEFAULT_PACKET_BURST: u32 = 5;
}

/// What follows `limit rate `, as nft lists it: `10/second`,
/// `10/minute burst 20 packets`, `1 kbytes/second burst 2 kbytes`. The
/// default burst is left out; byte amounts are in the largest of bytes,
/// kbytes and mbytes that divides them.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = self.per.as_str();
        if !self.bytes {
            write!(f, "{}/{per}", self.amount)?;
            if self.burst != Rate::DEFAULT_PACKET_BURST {
                write!(f, " burst {} packets", self.burst)?;
            }
            return Ok(());
        }
        let (amount, unit) = byte_unit(self.amount);
        write!(f, "{amount} {unit}/{per}")?;
        if self.burst != 0 {
            let (burst, unit) = byte_unit(u64::from(self.burst));
            write!(f, " burst {burst} {unit}")?;
        }
        Ok(())
    }
}

/// A byte count in the largest unit that divides it, up to mbytes.
fn byte_unit(mut n: u64) -> (u64, &'static str) {
    let mut unit = "bytes";
    for bigger in ["kbytes", "mbytes"] {
        if n == 0 || !n.is_multiple_of(1024) {
            break;
        }
        n /= 1024;
        unit = bigger;
    }
    (n, unit)
}

/// Severity of a log statement (syslog's levels). `warn`, the kernel's
/// default, is never held: it lists as no level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LogLevel {
    Emerg,
    Alert,
    Crit,
    Err,
    Notice,
    Info,
    Debug,
}

impl LogLevel {
    /// The syslog number.
    pub fn number(self) -> u32 {
        match self {
            LogLevel::Emerg => 0,
            LogLevel::Alert => 1,
            LogLevel::Crit => 2,
            LogLevel::Err => 3,
            LogLevel::Notice => 5,
            LogLevel::Info => 6,
            LogLevel::Debug => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Emerg => "emerg",
            LogLevel::Alert => "alert",
            LogLevel::Crit => "crit",
            LogLevel::Err => "err",
            LogLevel::Notice => "notice",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// A change to a 32-bit mark, in the form the kernel applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MarkUpdate {
    /// The mark becomes this value.
    Set(u32),
    /// The mark becomes `(mark & mask) ^ xor`.
    Bitwise { mask: u32, xor: u32 },
}

impl MarkUpdate {
    /// What follows `<key> set `, as nft lists it: `0x00000001`, or the key
    /// and then, each left out when it changes nothing, `& m` (the bits
    /// kept, with those the xor sets from zero), `^ x` (the bits of the xor
    /// inside the mask, which flip) and `| o` (the bits of the xor outside
    /// the mask, which are set).
    fn text(self, key: &str) -> String {
        let (mask, xor) = match self {
            MarkUpdate::Set(v) => return format!("{v:#010x}"),
            MarkUpdate::Bitwise { mask, xor } => (mask, xor),
        };
        let flipped = xor & mask;
        let set = xor & !mask;
        let mut out = key.to_string();
        if mask | set != u32::MAX {
            out.push_str(&format!(" & {:#010x}", mask | set));
        }
        if flipped != 0 {
            out.push_str(&format!(" ^ {flipped:#010x}"));
        }
        if set != 0 {
            out.push_str(&format!(" | {set:#010x}"));
        }
        out
    }
}

/// What TCP MSS a SYN gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MssClamp {
    /// The route's MTU less the headers (`rt mtu`).
    PathMtu,
    Size(u16),
}

/// Something a rule does before its action, in the order the policy gave.
/// Names of chains, counters, helpers and flowtables are as the policy
/// wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Statement {
    Counter,
    /// Count in the named counter object.
    CounterNamed(String),
    /// With a limit, the rule ends in `continue` and the log is its last
    /// statement: the limit stops the rule for the packets over it.
    Log {
        prefix: Option<String>,
        level: Option<LogLevel>,
        limit: Option<Rate>,
    },
    Mark(MarkUpdate),
    CtMark(MarkUpdate),
    Dscp {
        family: Family,
        /// 0-63.
        value: u8,
    },
    Notrack,
    /// Attach the named ct helper object.
    CtHelper(String),
    Mss(MssClamp),
    /// Offload to the named flowtable.
    Offload(String),
    /// Mark the packet for tracing (`meta nftrace set 1`): the kernel then
    /// reports every rule and chain it passes. Only `wasmwall trace` makes
    /// it; no policy can ask for it.
    Nftrace,
}

impl Statement {
    /// The name of the object (counter, ct helper, flowtable) the statement
    /// refers to, for the planner to put in kernel terms.
    pub fn object_mut(&mut self) -> Option<&mut String> {
        match self {
            Statement::CounterNamed(name)
            | Statement::CtHelper(name)
            | Statement::Offload(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Counter => f.write_str("counter"),
            Statement::CounterNamed(name) => write!(f, "counter name \"{name}\""),
            Statement::Log {
                prefix,
                level,
                limit,
            } => {
                if let Some(rate) = limit {
                    write!(f, "limit rate {rate} ")?;
                }
                f.write_str("log")?;
                // Validation keeps the prefix to what nft lists as it is
                // between quotes.
                if let Some(prefix) = prefix {
                    write!(f, " prefix \"{prefix}\"")?;
                }
                if let Some(level) = level {
                    write!(f, " level {}", level.as_str())?;
                }
                Ok(())
            }
            Statement::Mark(update) => write!(f, "meta mark set {}", update.text("meta mark")),
            Statement::CtMark(update) => write!(f, "ct mark set {}", update.text("ct mark")),
            Statement::Dscp { family, value } => {
                write!(f, "{} dscp set {}", family.keyword(), dscp_name(*value))
            }
            Statement::Notrack => f.write_str("notrack"),
            Statement::Nftrace => f.write_str("meta nftrace set 1"),
            Statement::CtHelper(name) => write!(f, "ct helper set \"{name}\""),
            Statement::Mss(MssClamp::PathMtu) => f.write_str("tcp option maxseg size set rt mtu"),
            Statement::Mss(MssClamp::Size(size)) => {
                write!(f, "tcp option maxseg size set {size}")
            }
            Statement::Offload(name) => write!(f, "flow add @{name}"),
        }
    }
}

/// A DSCP value as nft lists it: its name (RFC 2474, 2597, 3246, 5865,
/// 8622) or two hex digits.
fn dscp_name(value: u8) -> String {
    let name = match value {
        0 => "cs0",
        1 => "lephb",
        8 => "cs1",
        10 => "af11",
        12 => "af12",
        14 => "af13",
        16 => "cs2",
        18 => "af21",
        20 => "af22",
        22 => "af23",
        24 => "cs3",
        26 => "af31",
        28 => "af32",
        30 => "af33",
        32 => "cs4",
        34 => "af41",
        36 => "af42",
        38 => "af43",
        40 => "cs5",
        44 => "va",
        46 => "ef",
        48 => "cs6",
        56 => "cs7",
        _ => return format!("{value:#04x}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each as `nft list ruleset` (nft 1.0.6) printed the rule loaded from
    /// the input in the comment.
    #[test]
    fn mark_updates_read_as_nft_lists_them() {
        let b = |mask, xor| MarkUpdate::Bitwise { mask, xor };
        for (update, listed) in [
            (MarkUpdate::Set(1), "0x00000001"),
            // meta mark & 0xffff00ff
            (b(0xffff00ff, 0), "meta mark & 0xffff00ff"),
            // meta mark | 0x100
            (b(0xfffffeff, 0x100), "meta mark | 0x00000100"),
            // meta mark ^ 0x100
            (b(0xffffffff, 0x100), "meta mark ^ 0x00000100"),
            // meta mark & 0xffff00ff | 0x100
            (b(0xffff00ff, 0x100), "meta mark & 0xffff01ff | 0x00000100"),
            // meta mark & 0x0 | 0x5
            (b(0, 5), "meta mark & 0x00000005 | 0x00000005"),
            // meta mark & 0xff ^ 0x1
            (b(0xff, 1), "meta mark & 0x000000ff ^ 0x00000001"),
            // meta mark & 0xffff ^ 0xff00ff
            (
                b(0xffff, 0xff00ff),
                "meta mark & 0x00ffffff ^ 0x000000ff | 0x00ff0000",
            ),
            // meta mark & 0x0
            (b(0, 0), "meta mark & 0x00000000"),
            // meta mark | 0xffffffff
            (b(0, 0xffffffff), "meta mark | 0xffffffff"),
            // meta mark ^ 0xffffffff
            (b(0xffffffff, 0xffffffff), "meta mark ^ 0xffffffff"),
        ] {
            assert_eq!(update.text("meta mark"), listed, "{update:?}");
        }
    }

    #[test]
    fn rates_read_as_nft_lists_them() {
        let r = |amount, bytes, per, burst| Rate {
            amount,
            bytes,
            per,
            burst,
        };
        use TimeUnit::*;
        for (rate, listed) in [
            (r(10, false, Second, 5), "10/second"),
            (r(10, false, Minute, 20), "10/minute burst 20 packets"),
            (r(1, false, Hour, 5), "1/hour"),
            (r(1, false, Day, 5), "1/day"),
            (r(1, false, Week, 5), "1/week"),
            (r(10, false, Second, 1), "10/second burst 1 packets"),
            (r(100, true, Second, 0), "100 bytes/second"),
            (r(102_400, true, Second, 0), "100 kbytes/second"),
            (
                r(1024, true, Second, 2048),
                "1 kbytes/second burst 2 kbytes",
            ),
            (
                r(1000, true, Second, 1000),
                "1000 bytes/second burst 1000 bytes",
            ),
            (r(1 << 20, true, Second, 0), "1 mbytes/second"),
            (r(1 << 30, true, Second, 0), "1024 mbytes/second"),
            (
                r(3 << 20, true, Second, (1 << 20) + 1),
                "3 mbytes/second burst 1048577 bytes",
            ),
        ] {
            assert_eq!(rate.to_string(), listed, "{rate:?}");
        }
    }

    #[test]
    fn dscp_values_read_as_nft_lists_them() {
        let listed: Vec<String> = [0, 1, 2, 8, 10, 44, 46, 56, 63]
            .into_iter()
            .map(dscp_name)
            .collect();
        assert_eq!(
            listed,
            [
                "cs0", "lephb", "0x02", "cs1", "af11", "va", "ef", "cs7", "0x3f"
            ]
        );
    }

    #[test]
    fn nat_targets_read_as_nft_lists_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let t = |a: &str, last: Option<&str>, ports: Option<(u16, u16)>, flags| NatTarget {
            address: ip(a),
            last_address: last.map(ip),
            ports: ports.map(|(first, last)| PortRange { first, last }),
            flags,
        };
        let none = NatFlags::default();
        let rp = NatFlags {
            random: true,
            persistent: true,
            ..none
        };
        let all = NatFlags {
            random: true,
            fully_random: true,
            persistent: true,
        };
        for (target, listed) in [
            (
                t("10.0.0.1", Some("10.0.0.5"), None, none),
                "ip to 10.0.0.1-10.0.0.5",
            ),
            (
                t("10.0.0.1", Some("10.0.0.5"), Some((8080, 8090)), none),
                "ip to 10.0.0.1-10.0.0.5:8080-8090",
            ),
            (
                t("10.0.0.1", None, Some((8080, 8090)), none),
                "ip to 10.0.0.1:8080-8090",
            ),
            (
                t("10.0.0.1", None, Some((8080, 8080)), none),
                "ip to 10.0.0.1:8080",
            ),
            (
                t("fd00::1", Some("fd00::5"), Some((8080, 8090)), none),
                "ip6 to [fd00::1]-[fd00::5]:8080-8090",
            ),
            (
                t("fd00::1", Some("fd00::5"), None, none),
                "ip6 to fd00::1-fd00::5",
            ),
            (
                t("10.0.0.1", None, None, rp),
                "ip to 10.0.0.1 random,persistent",
            ),
            // Ranges that are one prefix, as nft 1.0.6 listed each.
            (
                t("10.0.0.0", Some("10.0.0.255"), None, none),
                "ip to 10.0.0.0/24",
            ),
            (
                t("10.0.0.2", Some("10.0.0.3"), None, none),
                "ip to 10.0.0.2/31",
            ),
            (
                t("10.0.0.1", Some("10.0.0.2"), None, none),
                "ip to 10.0.0.1-10.0.0.2",
            ),
            (
                t("0.0.0.0", Some("255.255.255.255"), None, none),
                "ip to 0.0.0.0/0",
            ),
            (
                t("10.0.0.4", Some("10.0.0.7"), Some((80, 80)), none),
                "ip to 10.0.0.4/30:80",
            ),
            (
                t("fd00::", Some("fd00::ffff"), None, none),
                "ip6 to fd00::/112",
            ),
            (
                t("fd00::", Some("fd00::ffff"), Some((80, 80)), none),
                "ip6 to fd00::/112:80",
            ),
            (
                t("fd00::2", Some("fd00::3"), None, none),
                "ip6 to fd00::2/127",
            ),
            (
                t(
                    "::",
                    Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                    None,
                    none,
                ),
                "ip6 to ::/0",
            ),
            (
                t("10.0.0.1", None, None, all),
                "ip to 10.0.0.1 random,fully-random,persistent",
            ),
        ] {
            assert_eq!(target.to_string(), listed);
        }
    }

    #[test]
    fn rejects_read_as_nft_lists_them() {
        for (with, listed) in [
            (RejectWith::TcpReset, "reject with tcp reset"),
            (RejectWith::Icmpx(IcmpxReject::PortUnreachable), "reject"),
            (
                RejectWith::Icmpx(IcmpxReject::AdminProhibited),
                "reject with icmpx admin-prohibited",
            ),
            (
                RejectWith::Icmp(IcmpReject::HostUnreachable),
                "reject with icmp host-unreachable",
            ),
            (
                RejectWith::Icmpv6(Icmpv6Reject::PolicyFail),
                "reject with icmpv6 policy-fail",
            ),
        ] {
            assert_eq!(with.to_string(), listed);
        }
    }
}
