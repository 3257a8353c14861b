//! The IR's statements and actions: what a rule does with a packet that
//! matches, each with the nft text it lists as.

use std::fmt;
use std::net::IpAddr;

use super::Family;

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
    /// The verdict a map gives for the key; a key it lacks goes on.
    Vmap(super::MapLookup),
    /// DNAT or SNAT to what a map gives for the key.
    DnatMap(super::NatMap),
    SnatMap(super::NatMap),
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
