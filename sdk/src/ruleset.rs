//! The answer of a policy: a [`Ruleset`] of chains, named sets and sysctls,
//! built with chained calls and read back through getters.

use crate::rule::Rule;

/// Netfilter hook a base chain attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hook {
    /// Before the routing decision: destination NAT goes here.
    Prerouting,
    /// Packets addressed to this machine.
    Input,
    /// Packets routed through this machine.
    Forward,
    /// Packets sent by this machine.
    Output,
    /// After the routing decision: source NAT and masquerade go here.
    Postrouting,
}

/// Kind of base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainType {
    /// Filtering: accept, drop, reject, jumps.
    Filter,
    /// Address translation: dnat, snat, masquerade (only the first packet
    /// of each connection passes through).
    Nat,
}

/// What happens to a packet that reaches the end of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainPolicy {
    /// Let it through.
    Accept,
    /// Discard it.
    Drop,
}

/// How a base chain attaches to the kernel's packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub(crate) hook: Hook,
    pub(crate) chain_type: ChainType,
    pub(crate) priority: i32,
    pub(crate) policy: ChainPolicy,
}

impl BaseChain {
    /// The hook the chain is attached to.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// Filter or nat.
    pub fn chain_type(&self) -> ChainType {
        self.chain_type
    }

    /// Order among the base chains of one hook; lower runs first.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// What happens to a packet no rule decided on.
    pub fn policy(&self) -> ChainPolicy {
        self.policy
    }
}

/// A chain and its rules, in order. Its name is unique within the policy
/// (letters, digits, '_' and '-', at most 32 bytes); the runtime prefixes it
/// with the policy's name in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub(crate) name: String,
    pub(crate) base: Option<BaseChain>,
    pub(crate) rules: Vec<Rule>,
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

    /// A filter base chain on `hook` with policy accept. Priority: lower
    /// runs first (the kernel's filter is 0).
    pub fn filter(name: impl Into<String>, hook: Hook, priority: i32) -> Self {
        Self::attached(name, hook, ChainType::Filter, priority)
    }

    /// A nat base chain on `hook` with policy accept (the kernel's dstnat
    /// priority is -100, srcnat 100).
    pub fn nat(name: impl Into<String>, hook: Hook, priority: i32) -> Self {
        Self::attached(name, hook, ChainType::Nat, priority)
    }

    fn attached(name: impl Into<String>, hook: Hook, chain_type: ChainType, priority: i32) -> Self {
        Chain {
            name: name.into(),
            base: Some(BaseChain {
                hook,
                chain_type,
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
    pub fn extend(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// The chain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How a base chain attaches; `None` for a regular chain.
    pub fn base(&self) -> Option<BaseChain> {
        self.base
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Elements of a named set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetElements {
    /// IPv4 addresses, e.g. "192.168.0.2".
    Ipv4(Vec<String>),
    /// IPv6 addresses.
    Ipv6(Vec<String>),
    /// Port numbers (1-65535).
    Ports(Vec<u16>),
}

/// A named set that rules test membership of. Per-host data (leases,
/// allowed clients) belongs in sets: changing an element rewrites no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSet {
    pub(crate) name: String,
    pub(crate) elements: SetElements,
}

impl NamedSet {
    /// A set of IPv4 addresses.
    pub fn ipv4<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(
            name,
            SetElements::Ipv4(addrs.into_iter().map(Into::into).collect()),
        )
    }

    /// A set of IPv6 addresses.
    pub fn ipv6<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(
            name,
            SetElements::Ipv6(addrs.into_iter().map(Into::into).collect()),
        )
    }

    /// A set of ports.
    pub fn ports(name: impl Into<String>, ports: impl IntoIterator<Item = u16>) -> Self {
        Self::new(name, SetElements::Ports(ports.into_iter().collect()))
    }

    fn new(name: impl Into<String>, elements: SetElements) -> Self {
        NamedSet {
            name: name.into(),
            elements,
        }
    }

    /// The set's name, unique within the policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The elements.
    pub fn elements(&self) -> &SetElements {
        &self.elements
    }
}

/// A kernel parameter the policy needs. The runtime accepts only keys on
/// its allow-list (all under `net.`) and restores the previous value when it
/// stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub(crate) key: String,
    pub(crate) value: String,
}

impl Sysctl {
    /// The key, e.g. "net.ipv4.ip_forward".
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value wanted, e.g. "1".
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Everything a policy wants; the runtime makes the kernel match it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub(crate) chains: Vec<Chain>,
    pub(crate) sets: Vec<NamedSet>,
    pub(crate) sysctls: Vec<Sysctl>,
}

impl Ruleset {
    /// An empty ruleset.
    pub fn new() -> Self {
        Self::default()
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

    /// Asks for a sysctl value, e.g. `("net.ipv4.conf.lan0.route_localnet",
    /// "1")`. An interface name containing '.' is written with '/', as
    /// sysctl(8) does.
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.push(Sysctl {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// The chains, in the order added.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    /// The named sets, in the order added.
    pub fn sets(&self) -> &[NamedSet] {
        &self.sets
    }

    /// The sysctls, in the order asked for.
    pub fn sysctls(&self) -> &[Sysctl] {
        &self.sysctls
    }
}
