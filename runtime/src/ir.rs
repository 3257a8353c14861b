//! The validated rule IR: what a policy asked for, in the runtime's own
//! types, with addresses parsed and every reference checked. Produced only by
//! [`crate::validate`]; consumed by the planner and the kernel encoder.
//!
//! `Display` renders nft-like text. The text of a rule is also its canonical
//! form: its hash is the rule's identity in the kernel.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use sha2::{Digest, Sha256};

/// Netfilter hook of a base chain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// Type of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChainType {
    Filter,
    Nat,
}

impl ChainType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// Verdict at the end of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChainPolicy {
    Accept,
    Drop,
}

impl ChainPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainPolicy::Accept => "accept",
            ChainPolicy::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BaseChain {
    pub hook: Hook,
    pub chain_type: ChainType,
    pub priority: i32,
    pub policy: ChainPolicy,
}

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

/// Target of dnat or snat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatTarget {
    pub address: IpAddr,
    pub port: Option<u16>,
}

impl fmt::Display for NatTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = Family::of(&self.address).keyword();
        match (self.address, self.port) {
            (a @ IpAddr::V4(_), Some(p)) => write!(f, "{fam} to {a}:{p}"),
            (a @ IpAddr::V6(_), Some(p)) => write!(f, "{fam} to [{a}]:{p}"),
            (a, None) => write!(f, "{fam} to {a}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Drop,
    /// Reject: TCP reset when `tcp` (the rule matches TCP only), otherwise
    /// ICMP(v6) port unreachable.
    Reject {
        tcp: bool,
    },
    /// Jump or goto; the string is the chain's name as the policy wrote it.
    Jump(String),
    Goto(String),
    Return,
    Continue,
    Dnat(NatTarget),
    Snat(NatTarget),
    Masquerade,
}

/// Something a rule does before its action, in the order the policy gave.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Statement {
    Counter,
    Log { prefix: Option<String> },
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Counter => f.write_str("counter"),
            Statement::Log { prefix: None } => f.write_str("log"),
            Statement::Log {
                prefix: Some(prefix),
            } => write!(f, "log prefix \"{prefix}\""),
        }
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statements: Vec<Statement>,
    pub action: Action,
    pub comment: Option<String>,
}

/// The rule as nft-like text: its canonical form (its hash is its identity
/// in the kernel), with the chains and sets it refers to as named in the
/// rule.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        for s in &self.statements {
            write!(f, "{s} ")?;
        }
        match &self.action {
            Action::Accept => write!(f, "accept"),
            Action::Drop => write!(f, "drop"),
            Action::Reject { tcp: true } => write!(f, "reject with tcp reset"),
            Action::Reject { tcp: false } => write!(f, "reject"),
            Action::Jump(c) => write!(f, "jump {c}"),
            Action::Goto(c) => write!(f, "goto {c}"),
            Action::Return => write!(f, "return"),
            Action::Continue => write!(f, "continue"),
            Action::Dnat(t) => write!(f, "dnat {t}"),
            Action::Snat(t) => write!(f, "snat {t}"),
            Action::Masquerade => write!(f, "masquerade"),
        }?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        Ok(())
    }
}

/// Elements of a named set, sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SetElements {
    Ipv4(Vec<std::net::Ipv4Addr>),
    Ipv6(Vec<std::net::Ipv6Addr>),
    Ports(Vec<u16>),
}

impl SetElements {
    pub fn type_name(&self) -> &'static str {
        match self {
            SetElements::Ipv4(_) => "ipv4_addr",
            SetElements::Ipv6(_) => "ipv6_addr",
            SetElements::Ports(_) => "inet_service",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetElements::Ipv4(v) => v.len(),
            SetElements::Ipv6(v) => v.len(),
            SetElements::Ports(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as nft prints them.
    pub fn texts(&self) -> Vec<String> {
        match self {
            SetElements::Ipv4(v) => v.iter().map(ToString::to_string).collect(),
            SetElements::Ipv6(v) => v.iter().map(ToString::to_string).collect(),
            SetElements::Ports(v) => v.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedSet {
    pub name: String,
    pub elements: SetElements,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

/// A sysctl request, with the key checked against the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sysctl {
    /// Dotted key as the policy wrote it, e.g. "net.ipv4.conf.lan0.route_localnet".
    pub key: String,
    pub value: String,
}

/// Everything one policy wants, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
    pub sets: Vec<NamedSet>,
    pub sysctls: Vec<Sysctl>,
}

impl Ruleset {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

/// A policy's validated ruleset, placed in the runtime's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRules {
    pub policy: String,
    pub rules: Ruleset,
}

/// Stable identity of a rule: the first 8 bytes of the SHA-256 of its
/// canonical text (which includes its comment and the kernel names of the
/// chains it jumps to), as 16 hex digits.
pub fn rule_hash(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    crate::text::hex(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_text_reads_like_nft() {
        let rule = Rule {
            matches: vec![
                Match::Iifname {
                    name: "lan0".into(),
                    negate: false,
                },
                Match::Addr {
                    dir: Dir::Source,
                    net: "192.168.0.9/32".parse().unwrap(),
                    negate: true,
                },
                Match::Port {
                    dir: Dir::Destination,
                    proto: Transport::Tcp,
                    first: 80,
                    last: 80,
                    negate: false,
                },
            ],
            statements: vec![Statement::Counter],
            action: Action::Dnat(NatTarget {
                address: "127.0.0.1".parse().unwrap(),
                port: Some(4000),
            }),
            comment: Some("seed".into()),
        };
        assert_eq!(
            rule.to_string(),
            "iifname \"lan0\" ip saddr != 192.168.0.9 tcp dport 80 counter dnat ip to 127.0.0.1:4000 comment \"seed\""
        );
    }

    #[test]
    fn strings_read_as_nft_lists_them() {
        let rule = Rule {
            matches: vec![Match::Oifname {
                name: "br-lan.1".into(),
                negate: true,
            }],
            statements: vec![Statement::Log {
                prefix: Some("in\\ #1; ".into()),
            }],
            action: Action::Accept,
            comment: Some("a\\b {c}".into()),
        };
        assert_eq!(
            rule.to_string(),
            r#"oifname != "br-lan.1" log prefix "in\ #1; " accept comment "a\b {c}""#
        );
    }

    #[test]
    fn hash_is_stable_and_distinguishes() {
        assert_eq!(rule_hash("accept"), rule_hash("accept"));
        assert_ne!(rule_hash("accept"), rule_hash("drop"));
        assert_eq!(rule_hash("accept").len(), 16);
        // Pinned: the hash is stored in the kernel and must not change
        // between releases.
        assert_eq!(rule_hash("accept"), "c125d0397b605657");
    }
}
