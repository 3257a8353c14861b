//! The values of fw4's options, each read by one pure function into a
//! typed value (the SDK's types where there is one), or refused with a
//! message that says what is wrong with it. The spellings are fw4's: its
//! prefixes of enumerated words (`acc` is `accept`), its booleans, its ICMP
//! type and DSCP class names, its date and time shapes, `!` to negate.

use std::net::IpAddr;

use wasmwall_sdk::{
    Date, Dscp, IcmpType, Icmpv6Type, IcmpxReject, IpFamily, L4Protocol, MarkUpdate, PortRange,
    Rate, RateLimit, RejectWith, TimeOfDay, TimeUnit, Weekday,
};

use crate::addr::{self, Subnet};
use crate::helpers::{self, HELPERS, Helper};
use crate::ipsets::Direction;
use crate::zones::Verdict;

/// A value written with or without a leading `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negatable<T> {
    pub invert: bool,
    pub value: T,
}

/// Splits off a leading `!` (spaces around it allowed, as fw4 does).
pub fn parse_invert(text: &str) -> Result<(bool, &str), String> {
    let rest = text.trim_start();
    let (invert, rest) = match rest.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, rest.trim()),
    };
    if rest.is_empty() {
        return Err(format!("{text:?} is empty"));
    }
    Ok((invert, rest))
}

fn negatable<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Negatable<T>, String> {
    let (invert, rest) = parse_invert(text)?;
    Ok(Negatable {
        invert,
        value: parse(rest)?,
    })
}

/// fw4's enumerations: a word is any prefix of a choice, in any case; the
/// first choice it begins wins. An empty word is refused (fw4 would take
/// the first choice).
fn choose(text: &str, choices: &[&'static str]) -> Option<&'static str> {
    if text.is_empty() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    choices
        .iter()
        .find(|c| c.to_ascii_lowercase().starts_with(&lower))
        .copied()
}

fn one_of(text: &str, choices: &[&'static str], what: &str) -> Result<&'static str, String> {
    choose(text, choices).ok_or_else(|| format!("{text:?} is not {what} ({})", choices.join(", ")))
}

/// `input`, `output`, `forward` of zones and defaults.
pub fn parse_policy(text: &str) -> Result<Verdict, String> {
    Ok(
        match one_of(text, &["accept", "reject", "drop"], "a policy")? {
            "accept" => Verdict::Accept,
            "reject" => Verdict::Reject,
            _ => Verdict::Drop,
        },
    )
}

/// A section's `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Accept,
    Reject,
    Drop,
    Notrack,
    Helper,
    Mark,
    Dscp,
    Dnat,
    Snat,
    Masquerade,
}

impl Target {
    /// The zone policy a filter target stands for.
    pub fn verdict(self) -> Option<Verdict> {
        match self {
            Target::Accept => Some(Verdict::Accept),
            Target::Reject => Some(Verdict::Reject),
            Target::Drop => Some(Verdict::Drop),
            _ => None,
        }
    }
}

pub fn parse_target(text: &str) -> Result<Target, String> {
    let word = one_of(
        text,
        &[
            "accept",
            "reject",
            "drop",
            "notrack",
            "helper",
            "mark",
            "dscp",
            "dnat",
            "snat",
            "masquerade",
        ],
        "a target",
    )?;
    Ok(match word {
        "accept" => Target::Accept,
        "reject" => Target::Reject,
        "drop" => Target::Drop,
        "notrack" => Target::Notrack,
        "helper" => Target::Helper,
        "mark" => Target::Mark,
        "dscp" => Target::Dscp,
        "dnat" => Target::Dnat,
        "snat" => Target::Snat,
        _ => Target::Masquerade,
    })
}

/// fw4's booleans, in exactly these spellings.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (1, on, true, yes or 0, off, false, no)"
        )),
    }
}

/// `family`: None for both. As fw4, any word with a `4` in it (or `inet`)
/// is IPv4, any other with a `6` IPv6.
pub fn parse_family(text: &str) -> Result<Option<IpFamily>, String> {
    match text {
        "any" | "all" | "*" => Ok(None),
        t if t == "inet" || t.contains('4') => Ok(Some(IpFamily::V4)),
        t if t.contains('6') => Ok(Some(IpFamily::V6)),
        _ => Err(format!("{text:?} is not a family (ipv4, ipv6 or any)")),
    }
}

/// One protocol of `proto`. `Icmp` is fw4's `icmp`: ICMP in an IPv4 rule,
/// ICMPv6 in an IPv6 one, both in a rule of both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `all`, `any`, `*`: no protocol match.
    Any,
    Tcp,
    Udp,
    Icmp,
    /// `icmpv6`, `ipv6-icmp`, 58: makes the rule IPv6.
    Icmpv6,
    Other(L4Protocol),
}

impl Proto {
    /// The protocol of the packet in a rule of `family` (None: both);
    /// `Icmp` in a rule of both families is two, so none.
    pub fn l4(self, family: Option<IpFamily>) -> Option<L4Protocol> {
        match (self, family) {
            (Proto::Any, _) | (Proto::Icmp, None) => None,
            (Proto::Tcp, _) => Some(L4Protocol::Tcp),
            (Proto::Udp, _) => Some(L4Protocol::Udp),
            (Proto::Icmp, Some(IpFamily::V6)) | (Proto::Icmpv6, _) => Some(L4Protocol::Icmpv6),
            (Proto::Icmp, _) => Some(L4Protocol::Icmp),
            (Proto::Other(p), _) => Some(p),
        }
    }
}

/// Protocol names nft knows (from /etc/protocols) beyond fw4's own.
const PROTOCOLS: &[(&str, u8)] = &[
    ("hopopt", 0),
    ("ip", 0),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("st", 5),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("skip", 57),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("sctp", 132),
    ("fc", 133),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
];

/// One word of `proto`: `tcpudp` is two protocols. A negated protocol is
/// refused: fw4 drops the `!` and matches the protocol itself.
pub fn parse_protocol(text: &str) -> Result<Vec<Proto>, String> {
    let (invert, word) = parse_invert(text)?;
    if invert {
        return Err(format!(
            "{text:?}: a protocol cannot be negated (fw4 would ignore the '!')"
        ));
    }
    let word = word.to_ascii_lowercase();
    let one = match word.as_str() {
        "all" | "any" | "*" => Proto::Any,
        "tcpudp" => return Ok(vec![Proto::Tcp, Proto::Udp]),
        "tcp" | "6" => Proto::Tcp,
        "udp" | "17" => Proto::Udp,
        "icmp" | "1" => Proto::Icmp,
        "icmpv6" | "ipv6-icmp" | "58" => Proto::Icmpv6,
        w => {
            let number = match w.parse::<u8>() {
                Ok(n) => n,
                Err(_) => PROTOCOLS
                    .iter()
                    .find(|(name, _)| *name == w)
                    .map(|(_, n)| *n)
                    .ok_or_else(|| {
                        format!("{text:?} is not a protocol name or number (0 to 255)")
                    })?,
            };
            Proto::Other(L4Protocol::from(number))
        }
    };
    Ok(vec![one])
}

/// A port or a range, `80`, `1000-2000` or `1000:2000`, `!` to negate.
pub fn parse_port(text: &str) -> Result<Negatable<PortRange>, String> {
    negatable(text, |t| {
        let bad = || {
            format!(
                "{text:?} is not a port or port range (PORT, FIRST-LAST or FIRST:LAST, 0 to 65535)"
            )
        };
        let (first, last) = match t.split_once(['-', ':']) {
            Some((a, b)) => (a, b),
            None => (t, t),
        };
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
        };
        let (first, last) = (
            number(first).ok_or_else(bad)?,
            number(last).ok_or_else(bad)?,
        );
        if first > last {
            return Err(format!("{text:?}: the range ends before it starts"));
        }
        Ok(PortRange { first, last })
    })
}

/// A hardware address, six groups of one or two hex digits separated by
/// `:` or `-`; nft's form (lower case, two digits each) is kept.
pub fn parse_mac(text: &str) -> Result<Negatable<String>, String> {
    negatable(text, |t| {
        let groups: Vec<&str> = t.split([':', '-']).collect();
        let ok = groups.len() == 6
            && groups
                .iter()
                .all(|g| (1..=2).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(format!(
                "{text:?} is not a MAC address (six hex bytes, aa:bb:cc:dd:ee:ff)"
            ));
        }
        Ok(groups
            .iter()
            .map(|g| format!("{:02x}", u8::from_str_radix(g, 16).unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(":"))
    })
}

/// An ICMP type and the range of its codes a name or number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpCodes<T> {
    pub kind: T,
    pub code_min: u8,
    pub code_max: u8,
}

impl<T> IcmpCodes<T> {
    /// Every code of the type.
    pub fn whole_type(&self) -> bool {
        self.code_min == 0 && self.code_max == 0xff
    }
}

/// What one `icmp_type` value matches in each family: a name of only one
/// family's table is of that family; a number (`8`, `3/1`) of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpSpec {
    pub v4: Option<IcmpCodes<IcmpType>>,
    pub v6: Option<IcmpCodes<Icmpv6Type>>,
}

impl IcmpSpec {
    /// The value's family: None for both.
    pub fn family(&self) -> Option<IpFamily> {
        match (self.v4, self.v6) {
            (Some(_), None) => Some(IpFamily::V4),
            (None, Some(_)) => Some(IpFamily::V6),
            _ => None,
        }
    }

    /// Whether fw4 matches the IPv6 type whole (`icmpv6 type T`) rather
    /// than as a type and its lowest code (`icmpv6 type . icmpv6 code {
    /// T . C }`). fw4 decides it by the IPv4 entry's codes, so a name only
    /// the IPv6 table has (`neighbour-solicitation`) is always a type and
    /// code: its test `04_icmp` renders `136 . 0`.
    pub fn v6_whole_type(&self) -> bool {
        self.v4.is_some_and(|c| c.whole_type())
    }
}

/// fw4's IPv4 names: type, lowest and highest code.
const ICMP_TYPES: &[(&str, u8, u8, u8)] = &[
    ("any", 0xff, 0, 0xff),
    ("echo-reply", 0, 0, 0xff),
    ("pong", 0, 0, 0xff),
    ("destination-unreachable", 3, 0, 0xff),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xff),
    ("redirect", 5, 0, 0xff),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xff),
    ("ping", 8, 0, 0xff),
    ("router-advertisement", 9, 0, 0xff),
    ("router-solicitation", 10, 0, 0xff),
    ("time-exceeded", 11, 0, 0xff),
    ("ttl-exceeded", 11, 0, 0xff),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xff),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xff),
    ("timestamp-reply", 14, 0, 0xff),
    ("address-mask-request", 17, 0, 0xff),
    ("address-mask-reply", 18, 0, 0xff),
];

/// fw4's IPv6 names.
const ICMPV6_TYPES: &[(&str, u8, u8, u8)] = &[
    ("destination-unreachable", 1, 0, 0xff),
    ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1),
    ("address-unreachable", 1, 3, 3),
    ("port-unreachable", 1, 4, 4),
    ("packet-too-big", 2, 0, 0xff),
    ("time-exceeded", 3, 0, 0xff),
    ("ttl-exceeded", 3, 0, 0xff),
    ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1),
    ("parameter-problem", 4, 0, 0xff),
    ("bad-header", 4, 0, 0),
    ("unknown-header-type", 4, 1, 1),
    ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 0xff),
    ("ping", 128, 0, 0xff),
    ("echo-reply", 129, 0, 0xff),
    ("pong", 129, 0, 0xff),
    ("multicast-listener-query", 130, 0, 0xff),
    ("multicast-listener-report", 131, 0, 0xff),
    ("multicast-listener-done", 132, 0, 0xff),
    ("router-solicitation", 133, 0, 0xff),
    ("router-advertisement", 134, 0, 0xff),
    ("neighbour-solicitation", 135, 0, 0xff),
    ("neighbor-solicitation", 135, 0, 0xff),
    ("neighbour-advertisement", 136, 0, 0xff),
    ("neighbor-advertisement", 136, 0, 0xff),
    ("redirect", 137, 0, 0xff),
    ("router-renumbering", 138, 0, 0xff),
    ("node-info-query", 139, 0, 0xff),
    ("node-info-response", 140, 0, 0xff),
    (
        "inverse-neighbour-discovery-solicitation-message",
        141,
        0,
        0xff,
    ),
    (
        "inverse-neighbor-discovery-solicitation-message",
        141,
        0,
        0xff,
    ),
    (
        "inverse-neighbour-discovery-advertisement-message",
        142,
        0,
        0xff,
    ),
    (
        "inverse-neighbor-discovery-advertisement-message",
        142,
        0,
        0xff,
    ),
    ("v2-multicast-listener-report", 143, 0, 0xff),
    ("home-agent-address-discovery-request-message", 144, 0, 0xff),
    ("home-agent-address-discovery-reply-message", 145, 0, 0xff),
    ("mobile-prefix-solicitation", 146, 0, 0xff),
    ("mobile-prefix-advertisement", 147, 0, 0xff),
    ("certification-path-solicitation-message", 148, 0, 0xff),
    ("certification-path-advertisement-message", 149, 0, 0xff),
    ("seamoby-protocol-message", 150, 0, 0xff),
    ("multicast-router-advertisement", 151, 0, 0xff),
    ("multicast-router-solicitation", 152, 0, 0xff),
    ("multicast-router-termination", 153, 0, 0xff),
    ("fmipv6-message", 154, 0, 0xff),
    ("rpl-control-message", 155, 0, 0xff),
    ("ilnpv6-locator-update-message", 156, 0, 0xff),
    ("duplicate-address-request", 157, 0, 0xff),
    ("duplicate-address-confirmation", 158, 0, 0xff),
    ("mpl-control-message", 159, 0, 0xff),
    ("extended-echo-request", 160, 0, 0xff),
    ("extended-ping", 160, 0, 0xff),
    ("extended-echo-reply", 161, 0, 0xff),
    ("extended-pong", 161, 0, 0xff),
];

fn lookup(table: &[(&str, u8, u8, u8)], name: &str) -> Option<(u8, u8, u8)> {
    table
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, t, lo, hi)| (t, lo, hi))
}

/// One `icmp_type`: a name of fw4's tables (case as written there), a
/// type number, or `TYPE/CODE`.
pub fn parse_icmp_type(text: &str) -> Result<IcmpSpec, String> {
    let v4 = lookup(ICMP_TYPES, text);
    let v6 = lookup(ICMPV6_TYPES, text);
    if v4.is_some() || v6.is_some() {
        return Ok(IcmpSpec {
            v4: v4.map(|(t, lo, hi)| IcmpCodes {
                kind: IcmpType::from(t),
                code_min: lo,
                code_max: hi,
            }),
            v6: v6.map(|(t, lo, hi)| IcmpCodes {
                kind: Icmpv6Type::from(t),
                code_min: lo,
                code_max: hi,
            }),
        });
    }
    let bad = || {
        format!(
            "{text:?} is not an ICMP type (a name such as echo-request, a number 0 to 255, or TYPE/CODE)"
        )
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u8>().ok())
            .flatten()
    };
    let (kind, code) = match text.split_once('/') {
        Some((t, c)) => (number(t).ok_or_else(bad)?, Some(number(c).ok_or_else(bad)?)),
        None => (number(text).ok_or_else(bad)?, None),
    };
    let (code_min, code_max) = code.map_or((0, 0xff), |c| (c, c));
    Ok(IcmpSpec {
        v4: Some(IcmpCodes {
            kind: IcmpType::from(kind),
            code_min,
            code_max,
        }),
        v6: Some(IcmpCodes {
            kind: Icmpv6Type::from(kind),
            code_min,
            code_max,
        }),
    })
}

/// A number as fw4 reads one: decimal, or hex after `0x`.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// `limit`, `log_limit`, `synflood_rate`: `10/second`, `5/min`, `100`
/// (per second); units second, minute, hour, day or a prefix of one. A
/// negated limit matches the packets over the rate (fw4 drops the `!`).
pub fn parse_limit(text: &str) -> Result<RateLimit, String> {
    let l = negatable(text, |t| {
        let bad =
            || format!("{text:?} is not a rate (N or N/UNIT, UNIT second, minute, hour or day)");
        let (amount, unit) = match t.split_once('/') {
            Some((n, u)) => (n, Some(u)),
            None => (t, None),
        };
        if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let amount: u64 = amount.parse().map_err(|_| bad())?;
        let unit = match unit {
            None => TimeUnit::Second,
            Some(u) if !u.is_empty() && u.bytes().all(|b| b.is_ascii_lowercase()) => {
                match choose(u, &["second", "minute", "hour", "day"]).ok_or_else(bad)? {
                    "second" => TimeUnit::Second,
                    "minute" => TimeUnit::Minute,
                    "hour" => TimeUnit::Hour,
                    _ => TimeUnit::Day,
                }
            }
            Some(_) => return Err(bad()),
        };
        Ok(Rate::packets(amount, unit))
    })?;
    Ok(if l.invert {
        RateLimit::over(l.value)
    } else {
        RateLimit::within(l.value)
    })
}

/// `limit_burst`, `synflood_burst`: a count of packets.
pub fn parse_burst(text: &str) -> Result<u32, String> {
    number(text.trim())
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{text:?} is not a number of packets"))
}

/// A mark and the bits of it that count (`0x10/0xff`; all 32 without a
/// mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub mark: u32,
    pub mask: u32,
}

/// `mark`, `set_mark`, `set_xmark`: `MARK` or `MARK/MASK`, decimal or hex.
pub fn parse_mark(text: &str) -> Result<Negatable<Mark>, String> {
    negatable(text, |t| {
        let bad = || format!("{text:?} is not a mark (MARK or MARK/MASK, 32-bit numbers)");
        let one = |s: &str| {
            number(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)
        };
        Ok(match t.split_once('/') {
            Some((m, k)) => Mark {
                mark: one(m)?,
                mask: one(k)?,
            },
            None => Mark {
                mark: one(t)?,
                mask: u32::MAX,
            },
        })
    })
}

impl Mark {
    /// `set_xmark`'s change: the bits of `mask` cleared, then those of
    /// `mark` flipped. In the forms fw4 writes (set, and, or, xor), else
    /// set-under-mask, or an and and a xor where the mark has bits outside
    /// the mask (the contract's masked form takes none).
    pub fn xmark_updates(self) -> Vec<MarkUpdate> {
        let Mark { mark, mask } = self;
        if mask == u32::MAX {
            vec![MarkUpdate::Set(mark)]
        } else if mark == 0 {
            vec![MarkUpdate::And(!mask)]
        } else if mark == mask {
            vec![MarkUpdate::Or(mark)]
        } else if mask == 0 {
            vec![MarkUpdate::Xor(mark)]
        } else if mark & !mask == 0 {
            vec![MarkUpdate::Masked { value: mark, mask }]
        } else {
            vec![MarkUpdate::And(!mask), MarkUpdate::Xor(mark)]
        }
    }

    /// `set_mark`'s change: the bits of `mask` set to those of `mark`,
    /// which fw4 writes as the xmark `mark/(mark | mask)`.
    pub fn set_mark_updates(self) -> Vec<MarkUpdate> {
        Mark {
            mark: self.mark,
            mask: self.mark | self.mask,
        }
        .xmark_updates()
    }
}

/// fw4's DSCP class names.
const DSCP_CLASSES: &[(&str, u8)] = &[
    ("CS0", 0x00),
    ("CS1", 0x08),
    ("CS2", 0x10),
    ("CS3", 0x18),
    ("CS4", 0x20),
    ("CS5", 0x28),
    ("CS6", 0x30),
    ("CS7", 0x38),
    ("BE", 0x00),
    ("LE", 0x01),
    ("AF11", 0x0a),
    ("AF12", 0x0c),
    ("AF13", 0x0e),
    ("AF21", 0x12),
    ("AF22", 0x14),
    ("AF23", 0x16),
    ("AF31", 0x1a),
    ("AF32", 0x1c),
    ("AF33", 0x1e),
    ("AF41", 0x22),
    ("AF42", 0x24),
    ("AF43", 0x26),
    ("EF", 0x2e),
];

/// `dscp`, `set_dscp`: a class (any case) or a number 0 to 63.
pub fn parse_dscp(text: &str) -> Result<Negatable<Dscp>, String> {
    negatable(text, |t| {
        let upper = t.to_ascii_uppercase();
        DSCP_CLASSES
            .iter()
            .find(|(n, _)| *n == upper)
            .map(|(_, v)| u64::from(*v))
            .or_else(|| number(t))
            .and_then(|n| u8::try_from(n).ok())
            .and_then(Dscp::new)
            .ok_or_else(|| {
                format!("{text:?} is not a DSCP (a class CS0-CS7, AF11-AF43, EF, BE, LE or a number 0 to 63)")
            })
    })
}

/// `helper`, `set_helper`: the name of a helper fw4 knows, exactly.
pub fn parse_cthelper(text: &str) -> Result<Negatable<&'static Helper>, String> {
    negatable(text, |t| {
        helpers::by_name(t).ok_or_else(|| {
            let names: Vec<&str> = HELPERS.iter().map(|h| h.name).collect();
            format!(
                "{text:?} is not a conntrack helper fw4 knows ({})",
                names.join(", ")
            )
        })
    })
}

/// Up to two digits, within `max`.
fn small(text: &str, max: u8) -> Option<u8> {
    (!text.is_empty() && text.len() <= 2 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u8>().ok())
        .flatten()
        .filter(|n| *n <= max)
}

/// `start_time`, `stop_time`: `HH`, `HH:MM` or `HH:MM:SS`, one or two
/// digits each; to the second, as fw4 writes it.
pub fn parse_time(text: &str) -> Result<TimeOfDay, String> {
    let bad =
        || format!("{text:?} is not a time of day (HH, HH:MM or HH:MM:SS, 00:00:00 to 23:59:59)");
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let get = |i: usize, max| match parts.get(i) {
        None => Some(0),
        Some(p) => small(p, max),
    };
    let (h, m, s) = (
        get(0, 23).ok_or_else(bad)?,
        get(1, 59).ok_or_else(bad)?,
        get(2, 59).ok_or_else(bad)?,
    );
    Ok(TimeOfDay::hms(h, m, s))
}

/// `start_date`, `stop_date`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
/// `YYYY-MM-DDTHH[:MM[:SS]]`, years 1970 to 2038; the missing parts are the
/// first month, day and second. To the second, as fw4 writes it.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let bad = || {
        format!(
            "{text:?} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, years 1970 to 2038)"
        )
    };
    let (day_part, time) = match text.split_once('T') {
        Some((d, t)) => (d, parse_time(t).map_err(|_| bad())?),
        None => (text, TimeOfDay::hms(0, 0, 0)),
    };
    let parts: Vec<&str> = day_part.split('-').collect();
    if parts.len() > 3 || (parts.len() < 3 && text.contains('T')) {
        return Err(bad());
    }
    let year = parts[0];
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: u16 = year.parse().map_err(|_| bad())?;
    if !(1970..=2038).contains(&year) {
        return Err(bad());
    }
    // fw4 takes a month or day of 0 as the first.
    let get = |i: usize, max| match parts.get(i) {
        None => Some(1),
        Some(p) => small(p, max).map(|n| n.max(1)),
    };
    let (month, day) = (get(1, 12).ok_or_else(bad)?, get(2, 31).ok_or_else(bad)?);
    let stamp = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second().unwrap_or(0)
    );
    stamp
        .parse::<Date>()
        .map_err(|_| format!("{text:?}: there is no day {day} in {year:04}-{month:02}"))
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("Monday", Weekday::Monday),
    ("Tuesday", Weekday::Tuesday),
    ("Wednesday", Weekday::Wednesday),
    ("Thursday", Weekday::Thursday),
    ("Friday", Weekday::Friday),
    ("Saturday", Weekday::Saturday),
    ("Sunday", Weekday::Sunday),
];

/// `weekdays`: days separated by spaces, each any prefix of its English
/// name in any case (`Mon`, `tu`, `SUN`), once each in the order first
/// written, `!` first for the other days.
pub fn parse_weekdays(text: &str) -> Result<Negatable<Vec<Weekday>>, String> {
    negatable(text, |t| {
        let mut days = Vec::new();
        for word in t.split_whitespace() {
            let name = choose(word, &WEEKDAYS.map(|(n, _)| n)).ok_or_else(|| {
                format!(
                    "{text:?}: {word:?} is not a day of the week (Monday ... Sunday or a prefix)"
                )
            })?;
            let day = WEEKDAYS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
            if let Some(day) = day
                && !days.contains(&day)
            {
                days.push(day);
            }
        }
        Ok(days)
    })
}

/// The days a `weekdays` value matches: those listed, or the others.
pub fn matched_days(days: &Negatable<Vec<Weekday>>) -> Vec<Weekday> {
    if days.invert {
        WEEKDAYS
            .iter()
            .map(|(_, d)| *d)
            .filter(|d| !days.value.contains(d))
            .collect()
    } else {
        days.value.clone()
    }
}

/// `monthdays`: days of the month 1 to 31 separated by spaces. fw4 takes
/// the value and ignores it; the contract has no day-of-month match.
pub fn parse_monthdays(text: &str) -> Result<Negatable<Vec<u8>>, String> {
    negatable(text, |t| {
        t.split_whitespace()
            .map(|w| {
                small(w, 31)
                    .filter(|d| *d >= 1)
                    .ok_or_else(|| format!("{text:?}: {w:?} is not a day of the month (1 to 31)"))
            })
            .collect()
    })
}

/// A set match (`ipset`): `NAME`, then the direction of each of the set's
/// fields (`src`, `dst` or `dest`, separated by spaces or commas; other
/// words leave the set's own), `!` first to negate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMatch {
    pub name: String,
    pub dirs: Vec<Option<Direction>>,
}

pub fn parse_setmatch(text: &str) -> Result<Negatable<SetMatch>, String> {
    negatable(text, |t| {
        let (name, rest) = t.split_once([' ', '\t']).unwrap_or((t, ""));
        let dirs = rest
            .trim()
            .split([' ', '\t', ','])
            .take(3)
            .map(|w| match w {
                "src" => Some(Direction::Src),
                "dst" | "dest" => Some(Direction::Dest),
                _ => None,
            })
            .collect();
        Ok(SetMatch {
            name: name.to_string(),
            dirs,
        })
    })
}

/// `tcp_reject_code`, `any_reject_code`.
pub fn parse_reject_code(text: &str) -> Result<RejectWith, String> {
    let word = one_of(
        text,
        &[
            "tcp-reset",
            "port-unreachable",
            "admin-prohibited",
            "host-unreachable",
            "no-route",
        ],
        "a reject code",
    )?;
    Ok(match word {
        "tcp-reset" => RejectWith::TcpReset,
        "port-unreachable" => RejectWith::Icmpx(IcmpxReject::PortUnreachable),
        "admin-prohibited" => RejectWith::Icmpx(IcmpxReject::AdminProhibited),
        "host-unreachable" => RejectWith::Icmpx(IcmpxReject::HostUnreachable),
        _ => RejectWith::Icmpx(IcmpxReject::NoRoute),
    })
}

/// `direction` of a rule's `device`: true for outgoing.
pub fn parse_direction(text: &str) -> Result<bool, String> {
    match text {
        "in" | "ingress" => Ok(false),
        "out" | "egress" => Ok(true),
        _ => Err(format!(
            "{text:?} is not a direction (in, ingress, out or egress)"
        )),
    }
}

/// One address of `src_ip`, `dest_ip`, ...: a prefix or an address with a
/// mask (fw4's `/-N` is the mask of the last N bits), or a range
/// `FIRST-LAST` of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Subnet(Subnet),
    Range {
        family: IpFamily,
        first: IpAddr,
        last: IpAddr,
        invert: bool,
    },
}

impl Address {
    pub fn family(&self) -> IpFamily {
        match self {
            Address::Subnet(s) => s.family,
            Address::Range { family, .. } => *family,
        }
    }

    pub fn invert(&self) -> bool {
        match self {
            Address::Subnet(s) => s.invert,
            Address::Range { invert, .. } => *invert,
        }
    }

    /// A subnet whose mask is not a prefix: it needs a test of its own.
    pub fn is_masked(&self) -> bool {
        matches!(self, Address::Subnet(s) if s.bits.is_none())
    }
}

pub fn parse_address(text: &str) -> Result<Address, String> {
    let (invert, rest) = parse_invert(text)?;
    if let Some((first, last)) = rest.split_once('-')
        && !rest.contains('/')
    {
        let bad = || format!("{text:?} is not an address range (FIRST-LAST, of one family)");
        let (first, last): (IpAddr, IpAddr) = (
            first.parse().map_err(|_| bad())?,
            last.parse().map_err(|_| bad())?,
        );
        let family = match (first, last) {
            (IpAddr::V4(_), IpAddr::V4(_)) => IpFamily::V4,
            (IpAddr::V6(_), IpAddr::V6(_)) => IpFamily::V6,
            _ => return Err(bad()),
        };
        return Ok(Address::Range {
            family,
            first,
            last,
            invert,
        });
    }
    let negated_bits = rest.split_once("/-").and_then(|(a, n)| {
        let ip: IpAddr = a.parse().ok()?;
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u32 = n.parse().ok().filter(|b| *b <= full)?;
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX >> (128 - bits)
        };
        let mask = match ip {
            IpAddr::V4(_) => IpAddr::from((mask as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(mask.to_be_bytes()),
        };
        // No bits to keep is fw4's prefix 0.
        Some(if bits == 0 {
            format!("{a}/0")
        } else {
            format!("{a}/{mask}")
        })
    });
    let mut subnet = addr::subnet(negated_bits.as_deref().unwrap_or(rest)).map_err(|e| {
        if rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            format!("{text:?} is not an address (network names are not resolved in rules)")
        } else {
            e
        }
    })?;
    subnet.invert = invert;
    Ok(Address::Subnet(subnet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, String>) -> String {
        r.unwrap_err()
    }

    #[test]
    fn policies_and_targets_take_prefixes_in_any_case() {
        assert_eq!(parse_policy("ACCEPT"), Ok(Verdict::Accept));
        assert_eq!(parse_policy("rej"), Ok(Verdict::Reject));
        assert_eq!(parse_policy("Drop"), Ok(Verdict::Drop));
        assert_eq!(
            err(parse_policy("deny")),
            "\"deny\" is not a policy (accept, reject, drop)"
        );
        assert!(err(parse_policy("")).contains("is not a policy"));
        for (t, want) in [
            ("ACCEPT", Target::Accept),
            ("REJECT", Target::Reject),
            ("DROP", Target::Drop),
            ("MARK", Target::Mark),
            ("NOTRACK", Target::Notrack),
            ("HELPER", Target::Helper),
            ("DSCP", Target::Dscp),
            ("d", Target::Drop),
            ("dn", Target::Dnat),
            ("snat", Target::Snat),
            ("masq", Target::Masquerade),
        ] {
            assert_eq!(parse_target(t), Ok(want), "{t}");
        }
        assert!(err(parse_target("jump")).starts_with("\"jump\" is not a target (accept, reject"));
        assert_eq!(Target::Reject.verdict(), Some(Verdict::Reject));
        assert_eq!(Target::Mark.verdict(), None);
    }

    #[test]
    fn booleans_families_and_directions() {
        for t in ["1", "on", "true", "yes"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for t in ["0", "off", "false", "no"] {
            assert_eq!(parse_bool(t), Ok(false));
        }
        assert!(err(parse_bool("Yes")).contains("is not a boolean"));
        assert_eq!(parse_family("any"), Ok(None));
        assert_eq!(parse_family("*"), Ok(None));
        assert_eq!(parse_family("ipv4"), Ok(Some(IpFamily::V4)));
        assert_eq!(parse_family("IPv6"), Ok(Some(IpFamily::V6)));
        assert_eq!(parse_family("6"), Ok(Some(IpFamily::V6)));
        assert_eq!(parse_family("inet"), Ok(Some(IpFamily::V4)));
        assert_eq!(
            err(parse_family("ip")),
            "\"ip\" is not a family (ipv4, ipv6 or any)"
        );
        assert_eq!(parse_direction("egress"), Ok(true));
        assert_eq!(parse_direction("in"), Ok(false));
        assert!(err(parse_direction("up")).contains("is not a direction"));
    }

    #[test]
    fn protocols_by_name_and_number() {
        assert_eq!(parse_protocol("all"), Ok(vec![Proto::Any]));
        assert_eq!(parse_protocol("*"), Ok(vec![Proto::Any]));
        assert_eq!(parse_protocol("tcpudp"), Ok(vec![Proto::Tcp, Proto::Udp]));
        assert_eq!(parse_protocol("TCP"), Ok(vec![Proto::Tcp]));
        assert_eq!(parse_protocol("17"), Ok(vec![Proto::Udp]));
        assert_eq!(parse_protocol("1"), Ok(vec![Proto::Icmp]));
        assert_eq!(parse_protocol("icmpv6"), Ok(vec![Proto::Icmpv6]));
        assert_eq!(parse_protocol("ipv6-icmp"), Ok(vec![Proto::Icmpv6]));
        assert_eq!(
            parse_protocol("gre"),
            Ok(vec![Proto::Other(L4Protocol::Gre)])
        );
        assert_eq!(
            parse_protocol("ospf"),
            Ok(vec![Proto::Other(L4Protocol::Other(89))])
        );
        assert_eq!(
            parse_protocol("41"),
            Ok(vec![Proto::Other(L4Protocol::Other(41))])
        );
        assert!(err(parse_protocol("!tcp")).contains("cannot be negated"));
        assert!(err(parse_protocol("tcpx")).contains("is not a protocol name or number"));
        assert!(err(parse_protocol("256")).contains("is not a protocol name or number"));
        // fw4's icmp is ICMPv6 in an IPv6 rule.
        assert_eq!(Proto::Icmp.l4(Some(IpFamily::V6)), Some(L4Protocol::Icmpv6));
        assert_eq!(Proto::Icmp.l4(Some(IpFamily::V4)), Some(L4Protocol::Icmp));
        assert_eq!(Proto::Icmp.l4(None), None);
        assert_eq!(Proto::Icmpv6.l4(None), Some(L4Protocol::Icmpv6));
    }

    #[test]
    fn ports_and_ranges() {
        let p = |first, last| PortRange { first, last };
        assert_eq!(parse_port("80").unwrap().value, p(80, 80));
        assert_eq!(parse_port("1000-2000").unwrap().value, p(1000, 2000));
        assert_eq!(parse_port("1000:2000").unwrap().value, p(1000, 2000));
        let n = parse_port("!22").unwrap();
        assert!(n.invert);
        assert_eq!(n.value, p(22, 22));
        assert!(err(parse_port("65536")).contains("is not a port or port range"));
        assert!(err(parse_port("http")).contains("is not a port or port range"));
        assert!(err(parse_port("2000-1000")).contains("ends before it starts"));
        assert!(err(parse_port("!")).contains("is empty"));
    }

    #[test]
    fn macs_are_written_as_nft_writes_them() {
        assert_eq!(
            parse_mac("0:1B-2c:3d:4E:ff").unwrap().value,
            "00:1b:2c:3d:4e:ff"
        );
        assert!(parse_mac("!00:11:22:33:44:55").unwrap().invert);
        assert!(err(parse_mac("00:11:22:33:44")).contains("is not a MAC address"));
        assert!(err(parse_mac("00:11:22:33:44:5g")).contains("is not a MAC address"));
    }

    #[test]
    fn icmp_types_by_name_number_and_code() {
        let ping = parse_icmp_type("echo-request").unwrap();
        assert_eq!(ping.family(), None);
        assert_eq!(ping.v4.unwrap().kind, IcmpType::EchoRequest);
        assert_eq!(ping.v6.unwrap().kind, Icmpv6Type::EchoRequest);
        assert!(ping.v4.unwrap().whole_type() && ping.v6_whole_type());
        let bad = parse_icmp_type("ip-header-bad").unwrap();
        assert_eq!(bad.family(), Some(IpFamily::V4));
        assert_eq!(
            bad.v4,
            Some(IcmpCodes {
                kind: IcmpType::ParameterProblem,
                code_min: 0,
                code_max: 0
            })
        );
        let ns = parse_icmp_type("neighbour-solicitation").unwrap();
        assert_eq!(ns.family(), Some(IpFamily::V6));
        assert_eq!(ns.v6.unwrap().kind, Icmpv6Type::NdNeighborSolicit);
        assert!(ns.v6.unwrap().whole_type());
        assert!(!ns.v6_whole_type());
        assert_eq!(
            parse_icmp_type("TOS-host-redirect")
                .unwrap()
                .v4
                .unwrap()
                .code_min,
            3
        );
        let mld = parse_icmp_type("130/0").unwrap();
        assert_eq!(mld.family(), None);
        assert_eq!(
            mld.v6,
            Some(IcmpCodes {
                kind: Icmpv6Type::MldListenerQuery,
                code_min: 0,
                code_max: 0
            })
        );
        let n = parse_icmp_type("42").unwrap();
        assert_eq!(n.v4.unwrap().kind, IcmpType::Other(42));
        assert!(n.v4.unwrap().whole_type());
        for bad in ["Echo-Request", "256", "3/256", "3/", "/1", "ping6"] {
            assert!(
                err(parse_icmp_type(bad)).contains("is not an ICMP type"),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_in_fw4_units() {
        let within = |n, unit| RateLimit::within(Rate::packets(n, unit));
        assert_eq!(parse_limit("10/sec"), Ok(within(10, TimeUnit::Second)));
        assert_eq!(
            parse_limit("1000/second"),
            Ok(within(1000, TimeUnit::Second))
        );
        assert_eq!(parse_limit("5/minute"), Ok(within(5, TimeUnit::Minute)));
        assert_eq!(parse_limit("5/m"), Ok(within(5, TimeUnit::Minute)));
        assert_eq!(parse_limit("2/h"), Ok(within(2, TimeUnit::Hour)));
        assert_eq!(parse_limit("1/day"), Ok(within(1, TimeUnit::Day)));
        assert_eq!(parse_limit("7"), Ok(within(7, TimeUnit::Second)));
        assert_eq!(
            parse_limit("!7/s"),
            Ok(RateLimit::over(Rate::per_second(7)))
        );
        for bad in ["10/week", "10/Second", "ten/second", "10/", "-1/s"] {
            assert!(err(parse_limit(bad)).contains("is not a rate"), "{bad}");
        }
        assert_eq!(parse_burst("50"), Ok(50));
        assert_eq!(parse_burst("0x10"), Ok(16));
        assert!(err(parse_burst("5 packets")).contains("is not a number of packets"));
    }

    #[test]
    fn marks_and_their_updates() {
        assert_eq!(
            parse_mark("0x10/0xff").unwrap().value,
            Mark {
                mark: 0x10,
                mask: 0xff
            }
        );
        assert_eq!(
            parse_mark("16").unwrap().value,
            Mark {
                mark: 16,
                mask: u32::MAX
            }
        );
        assert!(parse_mark("!0x1").unwrap().invert);
        assert!(err(parse_mark("0x100000000")).contains("is not a mark"));
        assert!(err(parse_mark("ff")).contains("is not a mark"));
        assert!(err(parse_mark("1/2/3")).contains("is not a mark"));
        let xmark = |mark, mask| Mark { mark, mask }.xmark_updates();
        // fw4's 12_mark test, rule by rule.
        assert_eq!(
            Mark {
                mark: 0xaa,
                mask: u32::MAX
            }
            .set_mark_updates(),
            [MarkUpdate::Set(0xaa)]
        );
        assert_eq!(
            Mark {
                mark: 0xab,
                mask: 0xff00
            }
            .set_mark_updates(),
            [MarkUpdate::Masked {
                value: 0xab,
                mask: 0xffab
            }]
        );
        assert_eq!(xmark(0xac, u32::MAX), [MarkUpdate::Set(0xac)]);
        assert_eq!(
            xmark(0xad, 0xff00),
            [MarkUpdate::And(0xffff_00ff), MarkUpdate::Xor(0xad)]
        );
        assert_eq!(xmark(0, 0xffff_ff51), [MarkUpdate::And(0xae)]);
        assert_eq!(xmark(0xaf, 0xaf), [MarkUpdate::Or(0xaf)]);
        assert_eq!(xmark(0x5, 0), [MarkUpdate::Xor(0x5)]);
    }

    #[test]
    fn dscp_classes_and_numbers() {
        assert_eq!(parse_dscp("EF").unwrap().value, Dscp::EF);
        assert_eq!(parse_dscp("af41").unwrap().value, Dscp::AF41);
        assert_eq!(parse_dscp("CS1").unwrap().value, Dscp::CS1);
        assert_eq!(parse_dscp("BE").unwrap().value, Dscp::CS0);
        assert_eq!(parse_dscp("0x0").unwrap().value, Dscp::CS0);
        assert_eq!(parse_dscp("46").unwrap().value, Dscp::EF);
        assert!(parse_dscp("!cs6").unwrap().invert);
        assert!(err(parse_dscp("64")).contains("is not a DSCP"));
        assert!(err(parse_dscp("AF44")).contains("is not a DSCP"));
    }

    #[test]
    fn helpers_by_their_exact_names() {
        let ftp = parse_cthelper("ftp").unwrap();
        assert!(!ftp.invert);
        assert_eq!(
            (ftp.value.proto, ftp.value.port, ftp.value.family),
            (wasmwall_sdk::Transport::Tcp, 21, None)
        );
        assert_eq!(
            parse_cthelper("!irc").unwrap().value.family,
            Some(IpFamily::V4)
        );
        assert_eq!(parse_cthelper("Q.931").unwrap().value.object(), "Q_931");
        assert!(
            err(parse_cthelper("FTP")).contains("is not a conntrack helper fw4 knows (amanda, ftp")
        );
    }

    #[test]
    fn times_and_dates_as_fw4_completes_them() {
        assert_eq!(parse_time("21:51:23"), Ok(TimeOfDay::hms(21, 51, 23)));
        assert_eq!(parse_time("21:51"), Ok(TimeOfDay::hms(21, 51, 0)));
        assert_eq!(parse_time("7"), Ok(TimeOfDay::hms(7, 0, 0)));
        for bad in ["24:00", "12:60", "1:2:3:4", "", "12:", "noon"] {
            assert!(
                err(parse_time(bad)).contains("is not a time of day"),
                "{bad}"
            );
        }
        let d = |s: &str| parse_date(s).map(|d| d.to_string());
        assert_eq!(d("2022-05-30T21:51:23"), Ok("2022-05-30 21:51:23".into()));
        assert_eq!(d("2022-05-30T21:51"), Ok("2022-05-30 21:51:00".into()));
        assert_eq!(d("2022-05-30T21"), Ok("2022-05-30 21:00:00".into()));
        assert_eq!(d("2022-05-30"), Ok("2022-05-30 00:00:00".into()));
        assert_eq!(d("2022-05"), Ok("2022-05-01 00:00:00".into()));
        assert_eq!(d("2022"), Ok("2022-01-01 00:00:00".into()));
        for bad in [
            "1969",
            "2039-01-01",
            "2022-13",
            "2022-05-32",
            "22-05-30",
            "2022-05T10",
        ] {
            assert!(err(parse_date(bad)).contains("is not a date"), "{bad}");
        }
        assert_eq!(
            err(parse_date("2023-02-29")),
            "\"2023-02-29\": there is no day 29 in 2023-02"
        );
    }

    #[test]
    fn weekdays_by_prefix_and_their_complement() {
        let days = parse_weekdays("Monday tuEsday wed SUN Th mon").unwrap();
        assert_eq!(
            days.value,
            [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Sunday,
                Weekday::Thursday
            ]
        );
        let weekend = parse_weekdays("!Sat Sun").unwrap();
        assert!(weekend.invert);
        assert_eq!(
            matched_days(&weekend),
            [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday
            ]
        );
        assert_eq!(matched_days(&days), days.value);
        assert!(err(parse_weekdays("Mon Funday")).contains("\"Funday\" is not a day of the week"));
        assert_eq!(parse_monthdays("1 15 31").unwrap().value, [1, 15, 31]);
        assert!(err(parse_monthdays("0")).contains("is not a day of the month"));
        assert!(err(parse_monthdays("32")).contains("is not a day of the month"));
    }

    #[test]
    fn set_matches_with_directions() {
        let m = parse_setmatch("!blocked src,dst").unwrap();
        assert!(m.invert);
        assert_eq!(m.value.name, "blocked");
        assert_eq!(m.value.dirs, [Some(Direction::Src), Some(Direction::Dest)]);
        let plain = parse_setmatch("hosts").unwrap().value;
        assert_eq!((plain.name.as_str(), plain.dirs.len()), ("hosts", 1));
        assert_eq!(plain.dirs, [None]);
        assert_eq!(
            parse_setmatch("s dest x src src").unwrap().value.dirs,
            [Some(Direction::Dest), None, Some(Direction::Src)]
        );
        assert!(err(parse_setmatch("  ")).contains("is empty"));
    }

    #[test]
    fn reject_codes() {
        assert_eq!(parse_reject_code("tcp-reset"), Ok(RejectWith::TcpReset));
        assert_eq!(
            parse_reject_code("port-unreachable"),
            Ok(RejectWith::Icmpx(IcmpxReject::PortUnreachable))
        );
        assert_eq!(
            parse_reject_code("admin"),
            Ok(RejectWith::Icmpx(IcmpxReject::AdminProhibited))
        );
        assert_eq!(
            parse_reject_code("no-route"),
            Ok(RejectWith::Icmpx(IcmpxReject::NoRoute))
        );
        assert!(err(parse_reject_code("icmp-net")).contains("is not a reject code"));
    }

    #[test]
    fn addresses_ranges_and_negative_bit_counts() {
        let Address::Subnet(s) = parse_address("!192.168.1.0/24").unwrap() else {
            panic!("a subnet");
        };
        assert!(s.invert);
        assert_eq!(s.cidr(), "192.168.1.0/24");
        let r = parse_address("10.0.0.1-10.0.0.9").unwrap();
        assert_eq!(
            r,
            Address::Range {
                family: IpFamily::V4,
                first: "10.0.0.1".parse().unwrap(),
                last: "10.0.0.9".parse().unwrap(),
                invert: false
            }
        );
        assert!(!r.is_masked());
        let m = parse_address("::1/-64").unwrap();
        assert!(m.is_masked());
        let Address::Subnet(m) = m else {
            panic!("a subnet");
        };
        assert_eq!(
            (m.addr.to_string(), m.mask.to_string()),
            ("::1".into(), "::ffff:ffff:ffff:ffff".into())
        );
        assert!(err(parse_address("10.0.0.1-fe80::1")).contains("is not an address range"));
        assert!(err(parse_address("lan")).contains("network names are not resolved"));
        assert!(err(parse_address("10.0.0.0/33")).contains("0 to 32"));
    }

    #[test]
    fn the_invert_prefix() {
        assert_eq!(parse_invert("! x"), Ok((true, "x")));
        assert_eq!(parse_invert("  !x "), Ok((true, "x")));
        assert_eq!(parse_invert("x"), Ok((false, "x")));
        assert_eq!(err(parse_invert(" ! ")), "\" ! \" is empty");
    }
}
