//! The IR's matches: the packet tests of a rule and the protocol, address
//! and state types they use, each with the nft text it lists as.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Transport protocol of a port match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    pub fn l4(self) -> L4Proto {
        match self {
            Transport::Tcp => L4Proto::Tcp,
            Transport::Udp => L4Proto::Udp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl L4Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Icmp => "icmp",
            L4Proto::Icmpv6 => "ipv6-icmp",
        }
    }

    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => libc::IPPROTO_TCP as u8,
            L4Proto::Udp => libc::IPPROTO_UDP as u8,
            L4Proto::Icmp => libc::IPPROTO_ICMP as u8,
            L4Proto::Icmpv6 => libc::IPPROTO_ICMPV6 as u8,
        }
    }
}

/// Connection-tracking states as the kernel's bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    Iifname {
        name: String,
        negate: bool,
    },
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
}

fn neq(negate: bool) -> &'static str {
    if negate { "!= " } else { "" }
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
                write!(f, "meta l4proto {}{}", neq(*negate), proto.as_str())
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
        }
    }
}
