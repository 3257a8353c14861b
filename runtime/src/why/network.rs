//! What `wasmwall why` knows of the network: the interfaces of a world
//! state with their addresses and prefixes (routes to the router's own
//! addresses and to the prefixes on its up interfaces, plus a default route
//! when one is named), and the sysctls that decide what the kernel's
//! routing does with a packet: `route_localnet` for a destination in
//! 127.0.0.0/8 that came from another interface, and forwarding. Pure: the
//! sysctl values are what the policies ask for and what the user gives,
//! else the kernel's defaults (said as such).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::flows::walk::{Network, Packet, Route};
use crate::world::Interface;

/// Where a sysctl's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "policy")]
pub enum Source {
    /// A policy asks for it (the runtime sets it while the policy runs).
    Policy(String),
    /// Given on the command line (or by a fixture).
    Given,
    /// Read from this machine's /proc/sys.
    Read,
    /// Not known: the kernel's default is taken.
    Default,
}

/// The sysctl values `why` takes as set.
#[derive(Debug, Clone, Default)]
pub struct Sysctls {
    values: BTreeMap<String, (String, Source)>,
}

impl Sysctls {
    /// A policy asks for `key = value`: it overrides a value read, a value
    /// given wins over it.
    pub fn from_policy(&mut self, policy: &str, key: &str, value: &str) {
        let key = normal(key);
        if matches!(self.values.get(&key), Some((_, Source::Given))) {
            return;
        }
        self.values.insert(
            key,
            (value.trim().to_string(), Source::Policy(policy.to_string())),
        );
    }

    /// The user gives `key = value`: it overrides a policy's.
    pub fn given(&mut self, key: &str, value: &str) {
        self.values
            .insert(normal(key), (value.trim().to_string(), Source::Given));
    }

    /// The value this machine has: below what policies ask for and what
    /// is given.
    pub fn read(&mut self, key: &str, value: &str) {
        self.values
            .entry(normal(key))
            .or_insert_with(|| (value.trim().to_string(), Source::Read));
    }

    fn get(&self, key: &str) -> Option<&(String, Source)> {
        self.values.get(key)
    }
}

/// `net/ipv4/ip_forward` and `net.ipv4.ip_forward` are the same key.
fn normal(key: &str) -> String {
    key.trim().replace('/', ".")
}

/// One sysctl that matters to the packet, as `why` took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub key: String,
    pub value: String,
    pub source: Source,
    /// Whether it lets the packet through.
    pub allows: bool,
}

/// A world state's network, for the walk.
pub struct StateNetwork<'s> {
    interfaces: &'s [Interface],
    default_via: Option<String>,
    sysctls: &'s Sysctls,
    /// The sysctls consulted, in order.
    pub facts: Vec<Fact>,
    /// The key that would let a packet the routing dropped through.
    pub fix: Option<String>,
}

/// An interface address `addr/len`.
fn address(text: &str) -> Option<(IpAddr, u8)> {
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => {
            let a: IpAddr = text.parse().ok()?;
            (text, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    Some((a.parse().ok()?, len))
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        _ => false,
    }
}

impl<'s> StateNetwork<'s> {
    pub fn new(
        interfaces: &'s [Interface],
        default_via: Option<String>,
        sysctls: &'s Sysctls,
    ) -> Self {
        StateNetwork {
            interfaces,
            default_via,
            sysctls,
            facts: Vec::new(),
            fix: None,
        }
    }

    /// The value of the first of `keys` known, else `default` (the
    /// kernel's) under the first key; recorded as a fact.
    fn sysctl(&mut self, keys: &[String], default: &str, allows: impl Fn(&str) -> bool) -> bool {
        let (key, value, source) = keys
            .iter()
            .find_map(|k| self.sysctls.get(k).map(|(v, s)| (k, v.clone(), s.clone())))
            .unwrap_or((&keys[0], default.to_string(), Source::Default));
        let ok = allows(&value);
        let fact = Fact {
            key: key.clone(),
            value,
            source,
            allows: ok,
        };
        if !self.facts.contains(&fact) {
            self.facts.push(fact);
        }
        ok
    }
}

impl Network for StateNetwork<'_> {
    fn route(&mut self, ip: IpAddr) -> Option<Route> {
        if ip.is_loopback() {
            return Some(Route::Local);
        }
        let mut best: Option<(u8, &str)> = None;
        for iface in self.interfaces {
            for (addr, len) in iface.addresses.iter().filter_map(|a| address(a)) {
                if addr == ip {
                    return Some(Route::Local);
                }
                if iface.up && in_prefix(ip, addr, len) && best.is_none_or(|(l, _)| len > l) {
                    best = Some((len, &iface.name));
                }
            }
        }
        match best {
            Some((_, name)) => Some(Route::Via(name.to_string())),
            None => self.default_via.clone().map(Route::Via),
        }
    }

    fn refuses(
        &mut self,
        iif: Option<&str>,
        packet: &Packet,
        dst: IpAddr,
        route: &Route,
    ) -> Option<String> {
        let iif = iif?;
        let key = |iface: &str, name: &str| format!("net.ipv4.conf.{iface}.{name}");
        match (route, dst) {
            (Route::Local, IpAddr::V4(d)) if d.is_loopback() && iif != "lo" => {
                // The kernel takes the interface's value or `all`'s.
                let keys = [key(iif, "route_localnet"), key("all", "route_localnet")];
                let on = |k: &str| self.sysctls.get(k).is_some_and(|(v, _)| v == "1");
                if on(&keys[0]) || on(&keys[1]) {
                    let k = if on(&keys[0]) { &keys[0] } else { &keys[1] };
                    self.sysctl(std::slice::from_ref(k), "0", |v| v == "1");
                    return None;
                }
                self.sysctl(&keys, "0", |v| v == "1");
                self.fix = Some(keys[0].clone());
                Some(format!(
                    "martian destination: the kernel drops a packet from {iif} to {d} (127.0.0.0/8) unless {} = 1",
                    keys[0]
                ))
            }
            (Route::Via(out), IpAddr::V4(_)) => {
                let keys = [
                    key(iif, "forwarding"),
                    "net.ipv4.ip_forward".to_string(),
                    key("all", "forwarding"),
                ];
                if self.sysctl(&keys, "0", |v| v == "1") {
                    return None;
                }
                self.fix = Some("net.ipv4.ip_forward".into());
                Some(format!(
                    "forwarding is off: the kernel does not forward {} from {iif} to {out} unless net.ipv4.ip_forward = 1",
                    packet.src
                ))
            }
            (Route::Via(out), IpAddr::V6(_)) => {
                let keys = ["net.ipv6.conf.all.forwarding".to_string()];
                if self.sysctl(&keys, "0", |v| v == "1") {
                    return None;
                }
                self.fix = Some(keys[0].clone());
                Some(format!(
                    "forwarding is off: the kernel does not forward {} from {iif} to {out} unless net.ipv6.conf.all.forwarding = 1",
                    packet.src
                ))
            }
            _ => None,
        }
    }
}
