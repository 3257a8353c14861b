//! Connection-tracking entries as the runtime sees them: the kernel's
//! conntrack table read into plain values ([`Flow`]), and (in `judge`) the
//! pure decision of which of them a ruleset change no longer allows or
//! would translate differently. No I/O happens here: the kernel adapter
//! reads and deletes the entries, the engine passes them through.

use std::fmt;
use std::net::IpAddr;

pub mod judge;
pub mod walk;

pub use judge::{Cut, Judgement, Reason, judge};
pub use walk::{Network, Route};

/// `IPS_*` status bits of a conntrack entry (`linux/netfilter/nf_conntrack_common.h`).
pub mod status {
    pub const EXPECTED: u32 = 1 << 0;
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const CONFIRMED: u32 = 1 << 3;
    pub const SRC_NAT: u32 = 1 << 4;
    pub const DST_NAT: u32 = 1 << 5;
    pub const DYING: u32 = 1 << 9;
    pub const OFFLOAD: u32 = 1 << 14;
}

/// IP protocol numbers the judge looks at.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// One direction of a conntrack entry, as the kernel's `CTA_TUPLE_*`
/// holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Source and destination ports, for TCP, UDP, SCTP, DCCP, UDP-Lite.
    pub ports: Option<(u16, u16)>,
    /// ICMP(v6) type, code and identifier.
    pub icmp: Option<(u8, u8, u16)>,
}

impl Tuple {
    pub fn sport(&self) -> Option<u16> {
        self.ports.map(|p| p.0)
    }

    pub fn dport(&self) -> Option<u16> {
        self.ports.map(|p| p.1)
    }
}

/// One conntrack entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The first packet's direction.
    pub orig: Tuple,
    /// The answers' direction: after NAT, where they come from and go to.
    pub reply: Tuple,
    /// `IPS_*` bits, see [`status`].
    pub status: u32,
    /// The kernel's id of the entry (`CTA_ID`): a delete that names it
    /// removes only this entry, not a newer one with the same tuple.
    pub id: Option<u32>,
    /// Conntrack zone (`CTA_ZONE`), 0 for the default.
    pub zone: u16,
    pub mark: u32,
}

impl Flow {
    /// Whether its destination was translated (DNAT, redirect).
    pub fn dst_nat(&self) -> bool {
        self.status & status::DST_NAT != 0
    }

    /// Whether its source was translated (SNAT, masquerade).
    pub fn src_nat(&self) -> bool {
        self.status & status::SRC_NAT != 0
    }

    /// Whether it is offloaded to a flowtable.
    pub fn offloaded(&self) -> bool {
        self.status & status::OFFLOAD != 0
    }
}

fn proto_name(p: u8) -> String {
    match p {
        proto::TCP => "tcp".into(),
        proto::UDP => "udp".into(),
        proto::ICMP => "icmp".into(),
        proto::ICMPV6 => "icmpv6".into(),
        other => format!("proto {other}"),
    }
}

fn endpoint(ip: &IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

impl fmt::Display for Tuple {
    /// `udp 203.0.113.2:4000 -> 203.0.113.1:8080`, `icmp 10.0.0.2 -> 10.0.0.1 type 8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            proto_name(self.proto),
            endpoint(&self.src, self.sport()),
            endpoint(&self.dst, self.dport())
        )?;
        if let Some((t, c, _)) = self.icmp {
            write!(f, " type {t} code {c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Flow {
    /// The original direction, and where NAT sent it:
    /// `tcp 203.0.113.2:40000 -> 203.0.113.1:8080 (dnat to 192.168.1.23:80)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.orig)?;
        let mut nat = Vec::new();
        if self.dst_nat() {
            nat.push(format!(
                "dnat to {}",
                endpoint(&self.reply.src, self.reply.sport())
            ));
        }
        if self.src_nat() {
            nat.push(format!(
                "snat to {}",
                endpoint(&self.reply.dst, self.reply.dport())
            ));
        }
        if !nat.is_empty() {
            write!(f, " ({})", nat.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
