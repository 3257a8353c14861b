//! Write [wasmwall](https://example.invalid/wasmwall) firewall policies in Rust.
//!
//! A policy is a pure function from the network state (interfaces, addresses,
//! DHCP leases), the triggering [`Event`] and its own [`Config`] to the
//! complete [`Ruleset`] it wants. The runtime diffs that against the kernel and
//! applies only the difference.
//!
//! ```no_run
//! use wasmwall_sdk::{Chain, ChainPolicy, Config, Event, Hook, Policy, Rule, Ruleset, WorldState};
//!
//! struct AllowSsh;
//!
//! impl Policy for AllowSsh {
//!     fn evaluate(_state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
//!         let lan = config.get_or("lan", "lan0");
//!         let input = Chain::filter("input", Hook::Input, 0)
//!             .policy(ChainPolicy::Drop)
//!             .rule(Rule::new().ct_state_established_related().accept())
//!             .rule(Rule::new().iifname(lan).tcp_dport(22).counter().accept());
//!         Ok(Ruleset::new().chain(input))
//!     }
//! }
//!
//! wasmwall_sdk::export_policy!(AllowSsh);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the resulting
//! `.wasm` file is a component the runtime loads.

// The generated code refers to this crate by name, also from inside it.
extern crate self as wasmwall_sdk;

#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "wasmwall_sdk::wit",
        runtime_path: "wasmwall_sdk::__wit_bindgen_rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

use std::marker::PhantomData;

pub use wit::wasmwall::policy::log::Level;
pub use wit::wasmwall::policy::types::{
    Action, AddressChange, BaseChain, Chain, ChainPolicy, ChainType, CtState, Event, Hook,
    L4Protocol, Lease, MatchExpr, Matcher, NamedSet, NatTarget, NetworkInterface, PortSetRef,
    Ports, Rule, Ruleset, SetElements, Sysctl, Transport, WorldState,
};

/// A firewall policy. Implement [`Policy::evaluate`] and register the type
/// with [`export_policy!`].
pub trait Policy {
    /// Compute the complete desired ruleset from the current state. Called on
    /// every event; must not depend on anything but its arguments.
    fn evaluate(state: &WorldState, event: &Event, config: &Config) -> Result<Ruleset, String>;
}

/// Registers a [`Policy`] implementation as the component's export.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        type __WasmwallExportedPolicy = $crate::__Export<$policy>;
        $crate::wit::__export_policy_world!(__WasmwallExportedPolicy with_types_in $crate::wit);
    };
}

#[doc(hidden)]
pub struct __Export<P>(PhantomData<P>);

impl<P: Policy> wit::Guest for __Export<P> {
    fn evaluate(
        state: WorldState,
        event: Event,
        config: Vec<(String, String)>,
    ) -> Result<Ruleset, String> {
        P::evaluate(&state, &event, &Config { entries: config })
    }
}

/// Write to the runtime's log; the runtime tags the line with the policy's name.
pub fn log(level: Level, message: &str) {
    wit::wasmwall::policy::log::log(level, message);
}

/// The policy's own settings, as key/value strings from the runtime's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Builds a config from key/value pairs (for tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Config {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, if set (the last one wins when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` parsed as `T`, or `default` when unset. The error
    /// names the key and the value.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| format!("config key `{key}`: invalid value {v:?}: {e}")),
        }
    }

    /// A comma-separated list under `key`, trimmed, empty items dropped.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every key, in order, for rejecting unknown keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Fails with a message naming the first key not in `known`.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.keys().find(|k| !known.contains(k)) {
            Some(k) => Err(format!(
                "unknown config key `{k}` (known keys: {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

impl Ruleset {
    /// An empty ruleset.
    pub fn new() -> Self {
        Ruleset {
            chains: Vec::new(),
            sets: Vec::new(),
            sysctls: Vec::new(),
        }
    }

    /// Adds a chain.
    pub fn chain(mut self, chain: Chain) -> Self {
        self.chains.push(chain);
        self
    }

    /// Adds a named set.
    pub fn set(mut self, set: NamedSet) -> Self {
        self.sets.push(set);
        self
    }

    /// Requests a sysctl value, e.g. `("net.ipv4.conf.lan0.route_localnet", "1")`.
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.push(Sysctl {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

impl Default for Ruleset {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// A regular chain, reached only by `jump` or `goto`.
    pub fn regular(name: impl Into<String>) -> Self {
        Chain {
            name: name.into(),
            base: None,
            rules: Vec::new(),
        }
    }

    /// A filter base chain on `hook` with policy accept.
    pub fn filter(name: impl Into<String>, hook: Hook, priority: i32) -> Self {
        Self::base(name, hook, ChainType::Filter, priority)
    }

    /// A nat base chain on `hook` with policy accept.
    pub fn nat(name: impl Into<String>, hook: Hook, priority: i32) -> Self {
        Self::base(name, hook, ChainType::Nat, priority)
    }

    fn base(name: impl Into<String>, hook: Hook, type_: ChainType, priority: i32) -> Self {
        Chain {
            name: name.into(),
            base: Some(BaseChain {
                hook,
                type_,
                priority,
                policy: ChainPolicy::Accept,
            }),
            rules: Vec::new(),
        }
    }

    /// Sets the policy of a base chain (no effect on a regular chain).
    pub fn policy(mut self, policy: ChainPolicy) -> Self {
        if let Some(base) = self.base.as_mut() {
            base.policy = policy;
        }
        self
    }

    /// Appends a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Appends several rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }
}

impl NamedSet {
    /// A set of IPv4 addresses.
    pub fn ipv4<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        NamedSet {
            name: name.into(),
            elements: SetElements::Ipv4(addrs.into_iter().map(Into::into).collect()),
        }
    }

    /// A set of IPv6 addresses.
    pub fn ipv6<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        NamedSet {
            name: name.into(),
            elements: SetElements::Ipv6(addrs.into_iter().map(Into::into).collect()),
        }
    }

    /// A set of ports.
    pub fn ports(name: impl Into<String>, ports: impl IntoIterator<Item = u16>) -> Self {
        NamedSet {
            name: name.into(),
            elements: SetElements::Ports(ports.into_iter().collect()),
        }
    }
}

/// Builds a [`Rule`]: add matches, then finish with one action.
///
/// ```
/// use wasmwall_sdk::Rule;
/// let rule = Rule::new()
///     .iifname("lan0")
///     .not_saddr("192.168.0.9")
///     .tcp_dport(80)
///     .dnat("127.0.0.1:4000");
/// assert_eq!(rule.matches.len(), 3);
/// ```
impl Rule {
    /// A rule with no matches whose action is `continue`; set the action with
    /// one of the action methods.
    pub fn new() -> Self {
        Rule {
            matches: Vec::new(),
            action: Action::Continue,
            counter: false,
            log_prefix: None,
            comment: None,
        }
    }

    /// Adds a match.
    pub fn matching(mut self, matcher: Matcher) -> Self {
        self.matches.push(MatchExpr {
            matcher,
            negate: false,
        });
        self
    }

    /// Adds a negated match.
    pub fn not_matching(mut self, matcher: Matcher) -> Self {
        self.matches.push(MatchExpr {
            matcher,
            negate: true,
        });
        self
    }

    /// Input interface is `name`.
    pub fn iifname(self, name: impl Into<String>) -> Self {
        self.matching(Matcher::Iifname(name.into()))
    }

    /// Output interface is `name`.
    pub fn oifname(self, name: impl Into<String>) -> Self {
        self.matching(Matcher::Oifname(name.into()))
    }

    /// Input interface is not `name`.
    pub fn not_iifname(self, name: impl Into<String>) -> Self {
        self.not_matching(Matcher::Iifname(name.into()))
    }

    /// Output interface is not `name`.
    pub fn not_oifname(self, name: impl Into<String>) -> Self {
        self.not_matching(Matcher::Oifname(name.into()))
    }

    /// Source address or prefix, e.g. "192.168.0.0/24".
    pub fn saddr(self, prefix: impl Into<String>) -> Self {
        self.matching(Matcher::Saddr(prefix.into()))
    }

    /// Destination address or prefix.
    pub fn daddr(self, prefix: impl Into<String>) -> Self {
        self.matching(Matcher::Daddr(prefix.into()))
    }

    /// Source address is not in `prefix`.
    pub fn not_saddr(self, prefix: impl Into<String>) -> Self {
        self.not_matching(Matcher::Saddr(prefix.into()))
    }

    /// Destination address is not in `prefix`.
    pub fn not_daddr(self, prefix: impl Into<String>) -> Self {
        self.not_matching(Matcher::Daddr(prefix.into()))
    }

    /// Layer-4 protocol.
    pub fn l4proto(self, proto: L4Protocol) -> Self {
        self.matching(Matcher::L4proto(proto))
    }

    /// TCP destination port.
    pub fn tcp_dport(self, port: u16) -> Self {
        self.dport_range(Transport::Tcp, port, port)
    }

    /// UDP destination port.
    pub fn udp_dport(self, port: u16) -> Self {
        self.dport_range(Transport::Udp, port, port)
    }

    /// TCP source port.
    pub fn tcp_sport(self, port: u16) -> Self {
        self.sport_range(Transport::Tcp, port, port)
    }

    /// UDP source port.
    pub fn udp_sport(self, port: u16) -> Self {
        self.sport_range(Transport::Udp, port, port)
    }

    /// Destination port in `first..=last`.
    pub fn dport_range(self, protocol: Transport, first: u16, last: u16) -> Self {
        self.matching(Matcher::Dport(Ports {
            protocol,
            first,
            last,
        }))
    }

    /// Source port in `first..=last`.
    pub fn sport_range(self, protocol: Transport, first: u16, last: u16) -> Self {
        self.matching(Matcher::Sport(Ports {
            protocol,
            first,
            last,
        }))
    }

    /// Connection-tracking state is one of `states`.
    pub fn ct_state(self, states: impl IntoIterator<Item = CtState>) -> Self {
        self.matching(Matcher::CtState(states.into_iter().collect()))
    }

    /// Connection is established or related (the usual "let replies in").
    pub fn ct_state_established_related(self) -> Self {
        self.ct_state([CtState::Established, CtState::Related])
    }

    /// Source address is in the named address set.
    pub fn saddr_in(self, set: impl Into<String>) -> Self {
        self.matching(Matcher::SaddrIn(set.into()))
    }

    /// Destination address is in the named address set.
    pub fn daddr_in(self, set: impl Into<String>) -> Self {
        self.matching(Matcher::DaddrIn(set.into()))
    }

    /// Destination port is in the named port set.
    pub fn dport_in(self, protocol: Transport, set: impl Into<String>) -> Self {
        self.matching(Matcher::DportIn(PortSetRef {
            protocol,
            set: set.into(),
        }))
    }

    /// Source port is in the named port set.
    pub fn sport_in(self, protocol: Transport, set: impl Into<String>) -> Self {
        self.matching(Matcher::SportIn(PortSetRef {
            protocol,
            set: set.into(),
        }))
    }

    /// Count matching packets and bytes.
    pub fn counter(mut self) -> Self {
        self.counter = true;
        self
    }

    /// Log matching packets with `prefix`.
    pub fn log(mut self, prefix: impl Into<String>) -> Self {
        self.log_prefix = Some(prefix.into());
        self
    }

    /// Attach a comment shown by `nft list ruleset`.
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.comment = Some(text.into());
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Accept.
    pub fn accept(self) -> Self {
        self.action(Action::Accept)
    }

    /// Drop silently.
    pub fn drop(self) -> Self {
        self.action(Action::Drop)
    }

    /// Reject (TCP reset for TCP rules, ICMP port unreachable otherwise).
    pub fn reject(self) -> Self {
        self.action(Action::Reject)
    }

    /// Jump to a regular chain of this policy.
    pub fn jump(self, chain: impl Into<String>) -> Self {
        self.action(Action::Jump(chain.into()))
    }

    /// Go to a regular chain of this policy without coming back.
    pub fn goto(self, chain: impl Into<String>) -> Self {
        self.action(Action::Goto(chain.into()))
    }

    /// Return to the calling chain.
    pub fn return_(self) -> Self {
        self.action(Action::Return)
    }

    /// Destination NAT to `target`: "10.0.0.5", "10.0.0.5:8080", "[fd00::5]:8080".
    pub fn dnat(self, target: &str) -> Self {
        self.action(Action::Dnat(nat_target(target)))
    }

    /// Source NAT to `target`, written as for [`Rule::dnat`].
    pub fn snat(self, target: &str) -> Self {
        self.action(Action::Snat(nat_target(target)))
    }

    /// Masquerade behind the output interface's address.
    pub fn masquerade(self) -> Self {
        self.action(Action::Masquerade)
    }
}

impl Default for Rule {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits "addr", "addr:port", "[v6]" or "[v6]:port". A malformed port is
/// kept in the address so that the runtime's validation reports it.
fn nat_target(target: &str) -> NatTarget {
    let whole = || NatTarget {
        address: target.to_string(),
        port: None,
    };
    let (address, port) = if let Some(rest) = target.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, tail)) => match tail.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None => return whole(),
            },
            None => return whole(),
        }
    } else if target.matches(':').count() == 1 {
        let (addr, p) = target.split_once(':').expect("one colon");
        (addr, Some(p))
    } else {
        (target, None)
    };
    match port.map(str::parse::<u16>) {
        None => NatTarget {
            address: address.to_string(),
            port: None,
        },
        Some(Ok(p)) => NatTarget {
            address: address.to_string(),
            port: Some(p),
        },
        Some(Err(_)) => whole(),
    }
}

/// Helpers for reading the world state.
impl WorldState {
    /// The interface called `name`, if present.
    pub fn interface(&self, name: &str) -> Option<&NetworkInterface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The current lease of the host with this hostname, if any.
    pub fn lease_by_hostname(&self, hostname: &str) -> Option<&Lease> {
        self.leases
            .iter()
            .find(|l| l.hostname.as_deref() == Some(hostname))
    }

    /// The current lease of the host with this MAC address, if any.
    pub fn lease_by_mac(&self, mac: &str) -> Option<&Lease> {
        self.leases.iter().find(|l| l.mac.eq_ignore_ascii_case(mac))
    }
}

impl NetworkInterface {
    /// The interface's addresses without their prefix length.
    pub fn ips(&self) -> impl Iterator<Item = &str> {
        self.addresses
            .iter()
            .map(|a| a.split_once('/').map_or(a.as_str(), |(ip, _)| ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_target_forms() {
        let t = nat_target("127.0.0.1:4000");
        assert_eq!((t.address.as_str(), t.port), ("127.0.0.1", Some(4000)));
        let t = nat_target("10.0.0.1");
        assert_eq!((t.address.as_str(), t.port), ("10.0.0.1", None));
        let t = nat_target("[fd00::1]:8080");
        assert_eq!((t.address.as_str(), t.port), ("fd00::1", Some(8080)));
        let t = nat_target("fd00::1");
        assert_eq!((t.address.as_str(), t.port), ("fd00::1", None));
        // An invalid port stays in the address for the runtime to reject.
        let t = nat_target("10.0.0.1:99999");
        assert_eq!((t.address.as_str(), t.port), ("10.0.0.1:99999", None));
    }

    #[test]
    fn config_lookup() {
        let c = Config::from_pairs([("a", "1"), ("b", " x, y ,,z "), ("a", "2")]);
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.list("b"), vec!["x", "y", "z"]);
        assert_eq!(c.parse_or::<u16>("a", 0), Ok(2));
        assert!(c.parse_or::<u16>("b", 0).unwrap_err().contains("`b`"));
        assert!(c.reject_unknown(&["a"]).unwrap_err().contains("`b`"));
    }
}
