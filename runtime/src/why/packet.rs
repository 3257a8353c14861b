//! The packet `wasmwall why` is asked about, as a user writes it:
//! `tcp 192.168.0.2:5000 -> 192.168.0.9:80 in lan0`,
//! `icmp 192.168.0.2 -> 192.168.0.9 type echo-request`,
//! `udp [2001:db8::2]:5000 -> [2001:db8::9]:53`. Pure parsing.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

use crate::flows::proto;
use crate::flows::walk::Packet;

/// The syntax, for errors and `--help`.
pub const PACKET_SYNTAX: &str = "tcp|udp SRC[:PORT] -> DST:PORT [in IFACE], or icmp|icmpv6 SRC -> DST [type TYPE] [code N] [in IFACE]; IPv6 addresses in brackets when a port follows ([2001:db8::2]:5000)";

/// The source port taken when none is given.
pub const DEFAULT_SPORT: u16 = 50000;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("packet `{text}`: {problem} (expected {PACKET_SYNTAX})")]
pub struct PacketError {
    pub text: String,
    pub problem: String,
}

/// A packet and the interface it comes in by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub packet: Packet,
    /// None: found from the route back to its source (the router's own
    /// packet when the source is one of its addresses).
    pub iif: Option<String>,
    /// Whether the source port was given (or [`DEFAULT_SPORT`] taken).
    pub sport_given: bool,
}

/// ICMP and ICMPv6 type names nft uses, with their numbers.
/// 255 marks a name of one family only.
const ICMP_TYPES: [(&str, u8, u8); 7] = [
    ("echo-reply", 0, 129),
    ("destination-unreachable", 3, 1),
    ("echo-request", 8, 128),
    ("time-exceeded", 11, 3),
    ("packet-too-big", 255, 2),
    ("nd-neighbor-solicit", 255, 135),
    ("nd-neighbor-advert", 255, 136),
];

fn icmp_type(name: &str, v6: bool) -> Option<u8> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    ICMP_TYPES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v4, v6n)| if v6 { *v6n } else { *v4 })
        .filter(|t| v6 || *t != 255)
}

fn icmp_type_name(t: u8, v6: bool) -> Option<&'static str> {
    ICMP_TYPES
        .iter()
        .find(|(_, v4, v6n)| if v6 { *v6n == t } else { *v4 == t && t != 255 })
        .map(|(n, _, _)| *n)
}

/// `ADDR`, `ADDR:PORT`, `[ADDR]`, `[ADDR]:PORT`.
fn endpoint(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad_port = |p: &str| format!("`{p}` is not a port (1-65535)");
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(p)),
        Ok(n) => Ok(n),
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an address"))?;
        return match after {
            "" => Ok((ip, None)),
            p => match p.strip_prefix(':') {
                Some(p) => Ok((ip, Some(port(p)?))),
                None => Err(format!("`{s}`: expected `:PORT` after `]`")),
            },
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    match s.rsplit_once(':') {
        Some((addr, p)) if !addr.contains(':') => {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{addr}` is not an address"))?;
            Ok((ip, Some(port(p)?)))
        }
        _ => Err(format!("`{s}` is not an address")),
    }
}

/// Parses the words of a packet.
pub fn parse(words: &[String]) -> Result<Asked, PacketError> {
    let text = words.join(" ");
    let fail = |problem: String| PacketError {
        text: text.clone(),
        problem,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let (proto_word, rest) = words
        .split_first()
        .ok_or_else(|| fail("it is empty".into()))?;
    let number = match *proto_word {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        "icmp" => proto::ICMP,
        "icmpv6" => proto::ICMPV6,
        other => return Err(fail(format!("unknown protocol `{other}`"))),
    };
    let [src, arrow, dst, options @ ..] = rest else {
        return Err(fail("expected SRC -> DST".into()));
    };
    if *arrow != "->" {
        return Err(fail(format!(
            "expected `->` after the source, got `{arrow}`"
        )));
    }
    let (src, sport) = endpoint(src).map_err(&fail)?;
    let (dst, dport) = endpoint(dst).map_err(&fail)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(fail(
            "the source and destination are of different families".into(),
        ));
    }
    let icmp = number == proto::ICMP || number == proto::ICMPV6;
    if number == proto::ICMP && !src.is_ipv4() {
        return Err(fail("icmp is IPv4's; use icmpv6".into()));
    }
    if number == proto::ICMPV6 && src.is_ipv4() {
        return Err(fail("icmpv6 is IPv6's; use icmp".into()));
    }
    if icmp && (sport.is_some() || dport.is_some()) {
        return Err(fail(format!("{proto_word} has no ports")));
    }
    if !icmp && dport.is_none() {
        return Err(fail(format!("{proto_word} needs a destination port")));
    }
    let mut iif = None;
    let mut kind = None;
    let mut code = None;
    let mut options = options.iter();
    while let Some(word) = options.next() {
        let value = options
            .next()
            .ok_or_else(|| fail(format!("`{word}` needs a value")))?;
        match *word {
            "in" => iif = Some(value.to_string()),
            "type" if icmp => {
                kind = Some(
                    icmp_type(value, number == proto::ICMPV6)
                        .ok_or_else(|| fail(format!("unknown {proto_word} type `{value}`")))?,
                )
            }
            "code" if icmp => {
                code = Some(
                    value
                        .parse::<u8>()
                        .map_err(|_| fail(format!("`{value}` is not a code (0-255)")))?,
                )
            }
            other => return Err(fail(format!("unexpected `{other}`"))),
        }
    }
    let packet = Packet {
        src,
        dst,
        proto: number,
        ports: dport.map(|d| (sport.unwrap_or(DEFAULT_SPORT), d)),
        icmp: icmp.then(|| {
            let echo = if number == proto::ICMP { 8 } else { 128 };
            (kind.unwrap_or(echo), code.unwrap_or(0))
        }),
        ct_mark: 0,
    };
    Ok(Asked {
        packet,
        iif,
        sport_given: sport.is_some(),
    })
}

/// `ADDR:PORT` with brackets around an IPv6 address.
pub fn host_port(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

impl fmt::Display for Asked {
    /// As it would be written: `tcp 192.168.0.2:50000 -> 192.168.0.9:80 in lan0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.packet;
        let v6 = p.proto == proto::ICMPV6;
        let name = match p.proto {
            proto::TCP => "tcp",
            proto::UDP => "udp",
            proto::ICMP => "icmp",
            _ => "icmpv6",
        };
        write!(
            f,
            "{name} {} -> {}",
            host_port(p.src, p.ports.map(|p| p.0)),
            host_port(p.dst, p.ports.map(|p| p.1))
        )?;
        if let Some((t, c)) = p.icmp {
            match icmp_type_name(t, v6) {
                Some(n) => write!(f, " type {n}")?,
                None => write!(f, " type {t}")?,
            }
            if c != 0 {
                write!(f, " code {c}")?;
            }
        }
        if let Some(i) = &self.iif {
            write!(f, " in {i}")?;
        }
        Ok(())
    }
}
