//! OpenWrt's firewall config as a wasmwall policy: `/etc/config/firewall`
//! (UCI), read as firewall4 (fw4) reads it and laid out as fw4 lays out
//! its table, kept current by the runtime instead of reloaded in full.
//!
//! Config keys (the runtime hands files over with `[policy.files]`):
//! - `uci` (required): the text of `/etc/config/firewall`.
//! - `network`: the text of `/etc/config/network`, for the devices of the
//!   zones' `network` names.
//! - `devices`: the devices of network names, `lan=br-lan wan=eth0`
//!   (beside or instead of `network`; it wins where both name one).
//! - `ip_forward` (default true): turn on IPv4 and IPv6 forwarding, as
//!   OpenWrt's own sysctl settings do on a router.
//!
//! The interfaces and their addresses come from the world state, so what
//! fw4 needs hotplug events for happens here by itself.

pub mod addr;
pub mod criteria;
pub mod error;
pub mod helpers;
pub mod ipsets;
pub mod network;
pub mod opts;
pub mod placed;
pub mod redirects;
pub mod rules;
pub mod ruleset;
pub mod uci;
pub mod values;
pub mod zones;

use wasmwall_sdk::{Config, Event, Level, Policy, Ruleset, WorldState, log};

use crate::error::{Error, Warnings};
use crate::ipsets::Ipsets;
use crate::network::Networks;
use crate::placed::Placed;
use crate::zones::Context;

/// The config keys this policy takes.
const KEYS: [&str; 4] = ["uci", "network", "devices", "ip_forward"];

/// Section types and what becomes of them.
const SECTION_TYPES: [&str; 7] = [
    "defaults",
    "zone",
    "forwarding",
    "rule",
    "redirect",
    "ipset",
    "include",
];

/// The ruleset of a firewall config, and what the policy warns of.
pub fn render(
    uci_text: &str,
    networks: &Networks,
    ip_forward: bool,
    state: &WorldState,
) -> Result<(Ruleset, Warnings), Error> {
    let sections = uci::parse(uci_text).map_err(|e| Error {
        file: "uci",
        line: e.line,
        place: String::new(),
        message: e.message,
    })?;
    let mut warnings = Warnings::default();
    for s in &sections {
        if s.kind == "include" {
            return Err(Error::section(
                s,
                "an include runs files or scripts, which a sandboxed policy cannot; write its rules as a wasmwall policy of their own",
            ));
        }
        if !SECTION_TYPES.contains(&s.kind.as_str()) {
            warnings.section(
                s,
                format!(
                    "section type {:?} is not a firewall section; ignored",
                    s.kind
                ),
            );
        }
    }
    let defaults = zones::parse_defaults(&sections, &mut warnings)?;
    let ipsets = Ipsets::parse(&sections, &mut warnings)?;
    let devices_of = |name: &str| networks.devices(name).map(<[String]>::to_vec);
    let ctx = Context {
        devices_of: &devices_of,
        state,
    };
    let mut placed = Placed::default();
    let mut zones = zones::parse_zones(&sections, &defaults, &ctx, &mut placed, &mut warnings)?;
    rules::add_rules(
        &sections,
        &mut zones,
        &defaults,
        &ipsets,
        &mut placed,
        &mut warnings,
    )?;
    zones::add_forwardings(&sections, &mut zones, &mut placed, &mut warnings)?;
    redirects::add_redirects(&sections, &mut zones, &ipsets, &mut placed, &mut warnings)?;
    let parts = ruleset::Parts {
        defaults: &defaults,
        zones: &zones,
        placed: &placed,
        sets: ipsets.named_sets(),
        state,
    };
    let mut rs = ruleset::build(&parts, &mut warnings);
    // A rule placed in a chain the layout does not make would be lost
    // without a word: a bug of this policy, said as one.
    if let Some(lost) = placed
        .chains()
        .into_iter()
        .find(|c| !rs.chains().iter().any(|ch| ch.name() == *c))
    {
        return Err(Error {
            file: "uci",
            line: 0,
            place: String::new(),
            message: format!(
                "the policy placed rules in chain {lost:?}, which its ruleset lacks (a bug of the openwrt policy)"
            ),
        });
    }
    for (key, value) in &defaults.sysctls {
        rs = rs.sysctl(*key, value.as_str());
    }
    if ip_forward {
        rs = rs
            .sysctl("net.ipv4.ip_forward", "1")
            .sysctl("net.ipv6.conf.all.forwarding", "1");
    }
    Ok((rs, warnings))
}

struct OpenWrt;

impl Policy for OpenWrt {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        config.reject_unknown(&KEYS)?;
        let uci_text = config.get("uci").ok_or(
            "config key `uci` is missing: give the firewall config with [policy.files] uci = \"/etc/config/firewall\"",
        )?;
        let ip_forward = match config.get("ip_forward") {
            None => true,
            Some(v) => {
                values::parse_bool(v).map_err(|e| format!("config key `ip_forward`: {e}"))?
            }
        };
        let networks = Networks::from_config(config.get("network"), config.get("devices"))
            .map_err(|e| e.to_string())?;
        let (rs, warnings) =
            render(uci_text, &networks, ip_forward, state).map_err(|e| e.to_string())?;
        for w in &warnings.0 {
            log(Level::Warn, w);
        }
        Ok(rs)
    }
}

wasmwall_sdk::export_policy!(OpenWrt);
