//! `defaults`, `zone` and `forwarding` sections: the default policies, each
//! zone's devices and subnets and what it needs of the ruleset (which
//! verdict chains, NAT, helper and notrack chains), and the forwardings
//! between zones.

use std::collections::BTreeSet;

use wasmwall_sdk::{IpFamily, Rate};

use crate::addr::Subnet;

/// What a zone or the defaults do with a packet: fw4's `policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Reject,
    Drop,
}

impl Verdict {
    /// The word in chain names: `accept_to_lan`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::Drop => "drop",
        }
    }
}

/// The chains a zone needs, besides its `input_`, `output_` and
/// `forward_` ones: fw4's `sflags` (as a source) and `dflags` (as a
/// destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// `accept_from_Z`, `reject_from_Z`, ... as a source; `accept_to_Z`,
    /// ... as a destination.
    Verdict(Verdict),
    /// `helper_Z` (as a source).
    Helper,
    /// `notrack_Z` (as a source).
    Notrack,
    /// `dstnat_Z` (as a source).
    Dnat,
    /// `srcnat_Z` (as a destination).
    Snat,
}

/// The `defaults` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub input: Verdict,
    pub output: Verdict,
    pub forward: Verdict,
    pub drop_invalid: bool,
    /// fw4's `tcp_reject_code` and `any_reject_code`: `tcp-reset` or an
    /// ICMPX code name (`port-unreachable`, ...).
    pub tcp_reject_code: String,
    pub any_reject_code: String,
    pub synflood_protect: bool,
    pub synflood_rate: Rate,
    pub synflood_burst: u32,
    pub tcp_syncookies: bool,
    pub tcp_ecn: Option<u32>,
    pub tcp_window_scaling: bool,
    pub accept_redirects: bool,
    pub accept_source_route: bool,
    pub auto_helper: bool,
    pub flow_offloading: bool,
    pub flow_offloading_hw: bool,
}

/// One of the zone's device and subnet matches (fw4's `match_rules`): a
/// zone has one per family and device group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneMatch {
    /// None for both families.
    pub family: Option<IpFamily>,
    pub devices_pos: Vec<String>,
    pub devices_neg: Vec<String>,
    /// Negated wildcard devices, one test each (`iifname != "eth*"`).
    pub devices_neg_wildcard: Vec<String>,
    pub subnets_pos: Vec<Subnet>,
    pub subnets_neg: Vec<Subnet>,
    /// Subnets with a mask that is not a prefix, one test each.
    pub subnets_masked: Vec<Subnet>,
}

/// A `zone` section, resolved against the network config and the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// None for both families.
    pub family: Option<IpFamily>,
    pub input: Verdict,
    pub output: Verdict,
    pub forward: Verdict,
    pub masq: bool,
    pub masq6: bool,
    pub masq_allow_invalid: bool,
    pub masq_src: Vec<Subnet>,
    pub masq_dest: Vec<Subnet>,
    pub mtu_fix: bool,
    /// fw4's `log` bits: 1 logs rejected and dropped packets, 2 the MSS fix.
    pub log: u32,
    /// The limit of its logging; the ruleset declares a named limit for it
    /// (`log_limit_name`).
    pub log_limit: Option<Rate>,
    pub counter: bool,
    pub auto_helper: bool,
    /// The helpers named in `helper`.
    pub helpers: Vec<String>,
    pub matches: Vec<ZoneMatch>,
    /// The devices it matches, not negated (`define lan_devices`).
    pub match_devices: Vec<String>,
    /// Its subnets: the `subnet` option and the addresses of its devices.
    pub match_subnets: Vec<Subnet>,
    pub sflags: BTreeSet<Need>,
    pub dflags: BTreeSet<Need>,
}

impl Zone {
    /// The named limit object of the zone's logging (fw4 names it
    /// `lan.log_limit`; names here cannot hold a '.').
    pub fn log_limit_name(&self) -> String {
        format!("{}_log_limit", self.name)
    }
}

/// Every enabled zone, in the order of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones(pub Vec<Zone>);

impl Zones {
    pub fn get(&self, name: &str) -> Option<&Zone> {
        self.0.iter().find(|z| z.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Zone> {
        self.0.iter_mut().find(|z| z.name == name)
    }
}
