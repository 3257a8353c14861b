//! The answer of a policy: a [`Ruleset`] of chains, the named objects
//! their rules use (sets, maps, counters, limits, conntrack helpers,
//! flowtables) and sysctls, built with chained calls and read back through
//! getters.

use crate::objects::{CtHelper, Flowtable, NamedCounter, NamedLimit, NamedMap, NamedSet};
use crate::rate::RateLimit;
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
    /// Address translation: dnat, snat, masquerade, redirect (only the
    /// first packet of each connection passes through).
    Nat,
    /// Like filter, on output only: a packet whose mark, addresses or DSCP
    /// a rule changes is routed again (policy routing by mark).
    Route,
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

/// The kernel's standard priorities, as nft names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PriorityName {
    /// -300: before connection tracking (notrack, ct helper set).
    Raw,
    /// -150: packet changes (marks, MSS clamping).
    Mangle,
    /// -100: destination NAT.
    Dstnat,
    /// 0: filtering.
    Filter,
    /// 50: after filtering (security modules).
    Security,
    /// 100: source NAT.
    Srcnat,
}

impl PriorityName {
    /// The number it stands for.
    pub const fn value(self) -> i32 {
        match self {
            PriorityName::Raw => -300,
            PriorityName::Mangle => -150,
            PriorityName::Dstnat => -100,
            PriorityName::Filter => 0,
            PriorityName::Security => 50,
            PriorityName::Srcnat => 100,
        }
    }
}

/// Order among the base chains of one hook; lower runs first. A number
/// (`0`, `-100`) or a standard name moved by an offset
/// (`PriorityName::Filter`, `Priority::named(PriorityName::Mangle, 10)`);
/// the chain constructors take either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// This number.
    Number(i32),
    /// A standard priority plus an offset: `filter + 10` runs after
    /// `filter`.
    Named {
        /// The standard priority.
        name: PriorityName,
        /// Added to it.
        offset: i32,
    },
}

impl Priority {
    /// `name` plus `offset`.
    pub const fn named(name: PriorityName, offset: i32) -> Priority {
        Priority::Named { name, offset }
    }

    /// The number it stands for.
    pub const fn value(self) -> i32 {
        match self {
            Priority::Number(n) => n,
            Priority::Named { name, offset } => name.value().saturating_add(offset),
        }
    }
}

impl From<i32> for Priority {
    fn from(n: i32) -> Self {
        Priority::Number(n)
    }
}

impl From<PriorityName> for Priority {
    fn from(name: PriorityName) -> Self {
        Priority::named(name, 0)
    }
}

/// How a base chain attaches to the kernel's packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub(crate) hook: Hook,
    pub(crate) chain_type: ChainType,
    pub(crate) priority: Priority,
    pub(crate) policy: ChainPolicy,
}

impl BaseChain {
    /// The hook the chain is attached to.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// Filter, nat or route.
    pub fn chain_type(&self) -> ChainType {
        self.chain_type
    }

    /// Order among the base chains of one hook, as a number; lower runs
    /// first.
    pub fn priority(&self) -> i32 {
        self.priority.value()
    }

    /// The priority as it was written, by number or by name.
    pub fn written_priority(&self) -> Priority {
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
    /// runs first (the kernel's filter is 0); a number or a
    /// [`PriorityName`], or a [`Priority::named`] with an offset.
    pub fn filter(name: impl Into<String>, hook: Hook, priority: impl Into<Priority>) -> Self {
        Self::attached(name, hook, ChainType::Filter, priority.into())
    }

    /// A nat base chain on `hook` with policy accept (the kernel's dstnat
    /// priority is -100, srcnat 100).
    pub fn nat(name: impl Into<String>, hook: Hook, priority: impl Into<Priority>) -> Self {
        Self::attached(name, hook, ChainType::Nat, priority.into())
    }

    /// A route base chain on output with policy accept: a packet whose
    /// mark, addresses or DSCP its rules change is routed again.
    pub fn route(name: impl Into<String>, priority: impl Into<Priority>) -> Self {
        Self::attached(name, Hook::Output, ChainType::Route, priority.into())
    }

    fn attached(
        name: impl Into<String>,
        hook: Hook,
        chain_type: ChainType,
        priority: Priority,
    ) -> Self {
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
    pub(crate) maps: Vec<NamedMap>,
    pub(crate) counters: Vec<NamedCounter>,
    pub(crate) limits: Vec<NamedLimit>,
    pub(crate) ct_helpers: Vec<CtHelper>,
    pub(crate) flowtables: Vec<Flowtable>,
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

    /// Adds a named map, for verdict maps and NAT maps.
    pub fn map(mut self, map: NamedMap) -> Self {
        self.maps.push(map);
        self
    }

    /// Adds a counter object that rules count in by name
    /// (`RuleBuilder::counter_named`).
    pub fn named_counter(mut self, name: impl Into<String>) -> Self {
        self.counters.push(NamedCounter { name: name.into() });
        self
    }

    /// Adds a limit object that rules share by name
    /// (`RuleBuilder::limit_named`).
    pub fn named_limit(mut self, name: impl Into<String>, limit: RateLimit) -> Self {
        self.limits.push(NamedLimit {
            name: name.into(),
            limit,
        });
        self
    }

    /// Adds a conntrack helper object that rules attach by name
    /// (`RuleBuilder::ct_helper`).
    pub fn ct_helper(mut self, helper: CtHelper) -> Self {
        self.ct_helpers.push(helper);
        self
    }

    /// Adds a flowtable that rules offload connections to by name
    /// (`RuleBuilder::offload`).
    pub fn flowtable(mut self, flowtable: Flowtable) -> Self {
        self.flowtables.push(flowtable);
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

    /// The named maps, in the order added.
    pub fn maps(&self) -> &[NamedMap] {
        &self.maps
    }

    /// The counter objects, in the order added.
    pub fn counters(&self) -> &[NamedCounter] {
        &self.counters
    }

    /// The limit objects, in the order added.
    pub fn limits(&self) -> &[NamedLimit] {
        &self.limits
    }

    /// The conntrack helper objects, in the order added.
    pub fn ct_helpers(&self) -> &[CtHelper] {
        &self.ct_helpers
    }

    /// The flowtables, in the order added.
    pub fn flowtables(&self) -> &[Flowtable] {
        &self.flowtables
    }

    /// The sysctls, in the order asked for.
    pub fn sysctls(&self) -> &[Sysctl] {
        &self.sysctls
    }
}
