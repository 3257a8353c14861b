//! The path a connection's first packet takes through a desired table: the
//! hooks in kernel order (prerouting, then input or forward by where the
//! route leads, then postrouting), each hook's base chains by priority, and
//! what they do to it: the destination NAT, the filter verdict, the source
//! NAT. Pure: what the network says (routes, which addresses are the
//! router's) comes through [`Network`].
//!
//! The answer is three-valued. What a table does to a packet depends on
//! things a conntrack entry does not record (the packet mark, the DSCP, the
//! Ethernet source): a rule that tests one of them makes the path
//! [`Unknown`] where its verdict would matter, and a caller that must not
//! touch what it cannot judge leaves such a flow alone. Two assumptions are
//! made and stated: a rate limit is not exceeded (`limit rate over` does not
//! match, a limit within does), and a TCP flow began with a SYN.
//!
//! [`Table::trace`] is the same walk for `wasmwall why`: it records each
//! step ([`Event`]: chains entered, rules matched, policies, routing), takes
//! the input interface and the conntrack state as given, and walks a packet
//! the router sends itself through output and postrouting.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::ir::{
    Action, Against, BaseChain, ChainPolicy, ChainType, CtStates, Data, Element, Family, FibCheck,
    Field, Hook, InlineSet, L4Proto, MapLookup, MapSource, Match, NatTarget, Object, PortRange,
    Rule, SetElements, Transport, Value, Verdict as MapVerdict,
};
use crate::plan::{DesiredChain, DesiredTable, RuleTag};

use super::{proto, status};

/// Where the kernel routes an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// One of the router's own addresses (the route is through `lo`).
    Local,
    /// Out of this interface.
    Via(String),
}

/// What the walk needs to know of the network.
pub trait Network {
    /// The route to `ip`; None when there is none (or it is unknown).
    fn route(&mut self, ip: IpAddr) -> Option<Route>;

    /// Why the kernel's routing drops a packet that came in by `iif` (None
    /// when it is the router's own) and goes to `dst` by `route`, if it
    /// does (a martian destination, forwarding off). None by default: the
    /// walk then takes every route as taken.
    fn refuses(
        &mut self,
        _iif: Option<&str>,
        _packet: &Packet,
        _dst: IpAddr,
        _route: &Route,
    ) -> Option<String> {
        None
    }
}

/// One step of a traced walk ([`Table::trace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A hook reached.
    Hook(Hook),
    /// A base chain of the hook entered.
    Chain { name: String, base: BaseChain },
    /// A base chain of type nat passed over: only a connection's first
    /// packet goes through them (later ones get the NAT it got).
    NatSkipped { name: String },
    /// A jump or goto to a regular chain.
    Enter { name: String, goto: bool },
    /// A rule that matched: its chain, its position there (from 1), the
    /// rule and its tag.
    Rule {
        chain: String,
        position: usize,
        rule: Box<Rule>,
        tag: RuleTag,
    },
    /// The end of a base chain: its policy applies.
    Policy { chain: String, policy: ChainPolicy },
    /// The routing decision for the (translated) destination.
    Route { dst: IpAddr, route: Option<Route> },
    /// The kernel's routing drops the packet, and why.
    Refused(String),
}

/// What a traced walk starts from, beyond the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The interface it comes in by; None: found from the route back to
    /// its source (the router's own packet when that route is local).
    pub iif: Option<String>,
    /// Its conntrack state (`CtStates` bits), `new` for a first packet.
    pub ct_state: u32,
}

impl Default for Start {
    fn default() -> Self {
        Start {
            iif: None,
            ct_state: crate::ir::CtStates::NEW,
        }
    }
}

/// A traced walk: the path (or why it cannot be told) and the steps.
#[derive(Debug, Clone)]
pub struct Traced {
    pub path: Result<Path, Unknown>,
    /// Whether the packet is the router's own (output, not prerouting).
    pub from_router: bool,
    pub events: Vec<Event>,
}

/// The walk could not decide: a rule that may or may not match would
/// decide, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown(pub String);

/// A connection's first packet, as its conntrack entry's original
/// direction gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub ports: Option<(u16, u16)>,
    /// ICMP(v6) type and code.
    pub icmp: Option<(u8, u8)>,
    /// The connection's ct mark.
    pub ct_mark: u32,
}

/// A destination or source translation: to an address of `first..=last`
/// and, when given, a port of `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatTo {
    pub first: IpAddr,
    pub last: IpAddr,
    pub ports: Option<PortRange>,
}

impl NatTo {
    fn of(target: &NatTarget) -> NatTo {
        NatTo {
            first: target.address,
            last: target.last_address.unwrap_or(target.address),
            ports: target.ports,
        }
    }

    /// Whether `address` and `port` are one of its translations; without
    /// ports the port is `unchanged` (the original one).
    pub fn covers(&self, address: IpAddr, port: Option<u16>, unchanged: Option<u16>) -> bool {
        let in_range = Family::of(&address) == Family::of(&self.first)
            && address >= self.first
            && address <= self.last;
        let port_ok = match (self.ports, port) {
            (Some(r), Some(p)) => r.first <= p && p <= r.last,
            (Some(_), None) => false,
            (None, p) => p == unchanged,
        };
        in_range && port_ok
    }
}

impl std::fmt::Display for NatTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = |a: &IpAddr| match a {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        write!(f, "{}", host(&self.first))?;
        if self.last != self.first {
            write!(f, "-{}", host(&self.last))?;
        }
        if let Some(p) = self.ports {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// The destination NAT a packet gets at prerouting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dnat {
    To(NatTo),
    /// To the router itself (`redirect`), optionally to these ports.
    Redirect(Option<PortRange>),
}

/// The source NAT a packet gets at postrouting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snat {
    To(NatTo),
    /// To an address of the interface it leaves by.
    Masquerade(Option<PortRange>),
}

/// The verdict of the table on the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Dropped or rejected, by what (a rule's comment or text, or a
    /// chain's policy).
    Drop(String),
}

/// What the table does to the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub dnat: Option<Dnat>,
    pub verdict: Verdict,
    pub snat: Option<Snat>,
    /// Whether the packet was delivered to the router (input) rather than
    /// forwarded.
    pub local: bool,
    /// The tags of the rules that matched it, in order.
    pub matched: Vec<crate::plan::RuleTag>,
    /// Dropped by the kernel's routing rather than by a rule.
    pub routing_drop: bool,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    fn negate_if(self, negate: bool) -> Tri {
        match (self, negate) {
            (Tri::Yes, true) => Tri::No,
            (Tri::No, true) => Tri::Yes,
            (t, _) => t,
        }
    }
}

/// A field's value in the packet.
enum Got {
    Value(Value),
    /// The packet has no such header: the match's implied protocol check
    /// fails, negated or not.
    Absent,
    /// Not known from a conntrack entry.
    Unknown,
}

/// A set's elements, indexed for exact lookups.
struct Indexed<'t> {
    elements: &'t SetElements,
    exact: HashMap<&'t Element, Option<&'t Data>>,
}

impl<'t> Indexed<'t> {
    fn new(elements: &'t SetElements) -> Self {
        let exact = if elements.kind.intervals {
            HashMap::new()
        } else {
            elements
                .elements
                .iter()
                .map(|e| (&e.key, e.data.as_ref()))
                .collect()
        };
        Indexed { elements, exact }
    }

    /// The element `key` falls in, and its data: Some(None) for a set's
    /// element, None for no element.
    fn find(&self, key: &[Value]) -> Option<Option<&'t Data>> {
        if !self.elements.kind.intervals {
            let element = Element(key.to_vec());
            return self.exact.get(&element).copied();
        }
        self.elements
            .elements
            .iter()
            .find(|e| {
                e.key.0.len() == key.len() && e.key.0.iter().zip(key).all(|(v, k)| covers(v, k))
            })
            .map(|e| e.data.as_ref())
    }
}

/// Whether an element's (or a test's) value `v` takes the packet's value
/// `k`.
fn covers(v: &Value, k: &Value) -> bool {
    match (v, k) {
        (Value::Addr(a), Value::Addr(b)) => a == b,
        (Value::Prefix(net), Value::Addr(b)) => net.contains(*b),
        (Value::AddrRange(first, last), Value::Addr(b)) => {
            Family::of(first) == Family::of(b) && first <= b && b <= last
        }
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::Range(first, last), Value::Number(b)) => first <= b && b <= last,
        (Value::Name(pattern), Value::Name(name)) => match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        },
        _ => false,
    }
}

/// Kernel limits on jumps (the kernel's stack is 16 deep).
const MAX_DEPTH: usize = 16;

/// One desired table, ready for walks.
pub struct Table<'t> {
    chains: HashMap<&'t str, &'t DesiredChain>,
    /// Base chains by hook, in priority order.
    hooks: HashMap<Hook, Vec<&'t DesiredChain>>,
    sets: HashMap<&'t str, Indexed<'t>>,
    /// Sets rules add to: their elements in the kernel are not known.
    dynamic: HashSet<&'t str>,
    limits: HashMap<&'t str, bool>,
    /// Seconds since 1970 UTC, for time matches.
    now: u64,
    now_ns: u64,
}

/// How one chain ended.
enum End {
    Accept,
    Drop(String),
    Nat(Nat),
    /// The end of a base chain: its policy.
    Policy,
}

enum Nat {
    Dnat(Dnat),
    Snat(Snat),
}

/// The state of a packet while it walks.
struct Walker<'p> {
    packet: &'p Packet,
    iif: Option<String>,
    /// None while the output interface is not known (the route failed).
    oif: Option<String>,
    ct_status: u32,
    /// The destination after prerouting's NAT, once it is set up.
    translated: Option<(IpAddr, Option<u16>)>,
    matched: Vec<crate::plan::RuleTag>,
    /// Conntrack state bits `ct state` tests.
    ct_state: u32,
    /// The steps, when the walk is traced.
    events: Option<Vec<Event>>,
}

impl Walker<'_> {
    fn record(&mut self, event: impl FnOnce() -> Event) {
        if let Some(events) = &mut self.events {
            events.push(event());
        }
    }
}

impl<'t> Table<'t> {
    /// `table` at the moment `now_ns` (nanoseconds since 1970 UTC).
    pub fn new(table: &'t DesiredTable, now_ns: u64) -> Self {
        let chains: HashMap<&str, &DesiredChain> =
            table.chains.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut hooks: HashMap<Hook, Vec<&DesiredChain>> = HashMap::new();
        for chain in &table.chains {
            if let Some(base) = &chain.base {
                hooks.entry(base.hook).or_default().push(chain);
            }
        }
        for list in hooks.values_mut() {
            list.sort_by_key(|c| c.base.as_ref().map_or(0, |b| b.priority));
        }
        let sets = table
            .sets
            .iter()
            .map(|s| (s.name.as_str(), Indexed::new(&s.elements)))
            .collect();
        let dynamic = table
            .sets
            .iter()
            .filter(|s| s.elements.kind.dynamic)
            .map(|s| s.name.as_str())
            .collect();
        let limits = table
            .objects
            .iter()
            .filter_map(|o| match &o.object {
                Object::Limit { over, .. } => Some((o.name.as_str(), *over)),
                _ => None,
            })
            .collect();
        Table {
            chains,
            hooks,
            sets,
            dynamic,
            limits,
            now: now_ns / 1_000_000_000,
            now_ns,
        }
    }

    /// The path of `packet` through the table; None when it comes from the
    /// router itself (its own connections are not walked).
    pub fn walk(
        &self,
        packet: &Packet,
        network: &mut dyn Network,
    ) -> Result<Option<Path>, Unknown> {
        let iif = match network.route(packet.src) {
            Some(Route::Local) => return Ok(None),
            Some(Route::Via(name)) => Some(name),
            None => None,
        };
        let mut w = Walker::new(packet, iif, crate::ir::CtStates::NEW, false);
        self.inbound(&mut w, network).map(Some)
    }

    /// The walk of `packet` from `start`, with every step recorded: from
    /// an interface through prerouting, or (when it comes from none and the
    /// route back to its source is local) the router's own packet through
    /// output.
    pub fn trace(&self, packet: &Packet, start: &Start, network: &mut dyn Network) -> Traced {
        let iif = match &start.iif {
            Some(name) => Some(Some(name.clone())),
            None => match network.route(packet.src) {
                Some(Route::Local) => None,
                Some(Route::Via(name)) => Some(Some(name)),
                None => Some(None),
            },
        };
        let from_router = iif.is_none();
        let mut w = Walker::new(packet, iif.flatten(), start.ct_state, true);
        let path = if from_router {
            self.outbound(&mut w, network)
        } else {
            self.inbound(&mut w, network)
        };
        Traced {
            path,
            from_router,
            events: w.events.take().unwrap_or_default(),
        }
    }

    /// A packet that came in by an interface: prerouting, routing, then
    /// input, or forward and postrouting.
    fn inbound(&self, w: &mut Walker, network: &mut dyn Network) -> Result<Path, Unknown> {
        let packet = w.packet;
        let mut path = Path {
            dnat: None,
            verdict: Verdict::Accept,
            snat: None,
            local: false,
            matched: Vec::new(),
            routing_drop: false,
        };
        // Prerouting: the destination NAT, and any filter there.
        if self.dnat_hook(Hook::Prerouting, w, &mut path)? {
            return Ok(path);
        }
        let (dst, dport) = destination(packet, path.dnat.as_ref());
        w.translated = Some((dst, dport));
        let route = match &path.dnat {
            Some(Dnat::Redirect(_)) => Some(Route::Local),
            _ => network.route(dst),
        };
        w.record(|| Event::Route {
            dst,
            route: route.clone(),
        });
        let hook = match &route {
            Some(Route::Local) => {
                path.local = true;
                w.oif = Some(String::new());
                Hook::Input
            }
            Some(Route::Via(name)) => {
                w.oif = Some(name.clone());
                Hook::Forward
            }
            None => return Err(Unknown(format!("no route to {dst}"))),
        };
        if let Some(route) = &route
            && let Some(why) = network.refuses(w.iif.as_deref(), packet, dst, route)
        {
            w.record(|| Event::Refused(why.clone()));
            path.verdict = Verdict::Drop(why);
            path.routing_drop = true;
            path.matched = std::mem::take(&mut w.matched);
            return Ok(path);
        }
        if let HookEnd::Drop(by) = self.hook(hook, w)? {
            path.verdict = Verdict::Drop(by);
            path.matched = std::mem::take(&mut w.matched);
            return Ok(path);
        }
        if hook == Hook::Forward {
            match self.hook(Hook::Postrouting, w)? {
                HookEnd::Drop(by) => path.verdict = Verdict::Drop(by),
                HookEnd::Accept { nat } => {
                    if let Some(Nat::Snat(s)) = nat {
                        path.snat = Some(s);
                    }
                }
            }
        }
        path.matched = std::mem::take(&mut w.matched);
        Ok(path)
    }

    /// A packet the router sends: routed first, then output (where a nat
    /// chain may send it elsewhere: the route is taken again) and
    /// postrouting; one to the router itself comes back in by `lo` and
    /// goes through input (its prerouting NAT is not walked: its binding
    /// was set up at output).
    fn outbound(&self, w: &mut Walker, network: &mut dyn Network) -> Result<Path, Unknown> {
        let packet = w.packet;
        let mut path = Path {
            dnat: None,
            verdict: Verdict::Accept,
            snat: None,
            local: false,
            matched: Vec::new(),
            routing_drop: false,
        };
        let oif = |route: &Option<Route>| match route {
            Some(Route::Local) => Some("lo".to_string()),
            Some(Route::Via(name)) => Some(name.clone()),
            None => None,
        };
        let route = network.route(packet.dst);
        w.oif = oif(&route);
        if self.dnat_hook(Hook::Output, w, &mut path)? {
            return Ok(path);
        }
        let (dst, dport) = destination(packet, path.dnat.as_ref());
        w.translated = Some((dst, dport));
        let route = match &path.dnat {
            None => route,
            Some(Dnat::Redirect(_)) => Some(Route::Local),
            Some(Dnat::To(_)) => network.route(dst),
        };
        w.record(|| Event::Route {
            dst,
            route: route.clone(),
        });
        let Some(route) = route else {
            return Err(Unknown(format!("no route to {dst}")));
        };
        w.oif = oif(&Some(route.clone()));
        match self.hook(Hook::Postrouting, w)? {
            HookEnd::Drop(by) => {
                path.verdict = Verdict::Drop(by);
                path.matched = std::mem::take(&mut w.matched);
                return Ok(path);
            }
            HookEnd::Accept { nat } => {
                if let Some(Nat::Snat(s)) = nat {
                    path.snat = Some(s);
                }
            }
        }
        if route == Route::Local {
            path.local = true;
            w.iif = Some("lo".to_string());
            w.oif = Some(String::new());
            if let HookEnd::Drop(by) = self.hook(Hook::Input, w)? {
                path.verdict = Verdict::Drop(by);
            }
        }
        path.matched = std::mem::take(&mut w.matched);
        Ok(path)
    }

    /// Runs `hook`, where a connection's destination NAT is set up
    /// (prerouting, or output for the router's own): records the NAT in
    /// `path`; true when the hook dropped the packet (`path` says by what).
    fn dnat_hook(&self, hook: Hook, w: &mut Walker, path: &mut Path) -> Result<bool, Unknown> {
        match self.hook(hook, w)? {
            HookEnd::Drop(by) => {
                path.verdict = Verdict::Drop(by);
                path.matched = std::mem::take(&mut w.matched);
                Ok(true)
            }
            HookEnd::Accept { nat } => {
                if let Some(Nat::Dnat(d)) = nat {
                    path.dnat = Some(d);
                    w.ct_status |= status::DST_NAT;
                }
                Ok(false)
            }
        }
    }

    /// Every base chain of `hook`, by priority: a drop ends the packet,
    /// an accept goes on to the next chain; the first NAT of the hook is
    /// the one it gets (the kernel sets up a binding once).
    fn hook(&self, hook: Hook, w: &mut Walker) -> Result<HookEnd, Unknown> {
        let mut nat = None;
        w.record(|| Event::Hook(hook));
        for chain in self.hooks.get(&hook).into_iter().flatten() {
            let base = chain.base.as_ref().expect("hooked chains are base chains");
            if base.chain_type == ChainType::Nat && nat.is_some() {
                continue;
            }
            if base.chain_type == ChainType::Nat && w.ct_state & crate::ir::CtStates::NEW == 0 {
                w.record(|| Event::NatSkipped {
                    name: chain.name.to_string(),
                });
                continue;
            }
            w.record(|| Event::Chain {
                name: chain.name.to_string(),
                base: *base,
            });
            match self.chain(chain, w)? {
                End::Accept => {}
                End::Drop(by) => return Ok(HookEnd::Drop(by)),
                End::Nat(n) => nat = Some(n),
                End::Policy => {
                    w.record(|| Event::Policy {
                        chain: chain.name.to_string(),
                        policy: base.policy,
                    });
                    if base.policy == ChainPolicy::Drop {
                        return Ok(HookEnd::Drop(format!("the policy of chain {}", chain.name)));
                    }
                }
            }
        }
        Ok(HookEnd::Accept { nat })
    }

    /// Runs a base chain, with its jumps and gotos.
    fn chain(&self, base: &'t DesiredChain, w: &mut Walker) -> Result<End, Unknown> {
        // (chain, next rule index) frames; a goto replaces the top.
        let mut stack: Vec<(&DesiredChain, usize)> = vec![(base, 0)];
        while let Some((chain, index)) = stack.pop() {
            let Some(rule) = chain.rules.get(index) else {
                // End of a chain: a base chain's policy, or back to the caller.
                if stack.is_empty() {
                    return Ok(End::Policy);
                }
                continue;
            };
            stack.push((chain, index + 1));
            let fires = self.rule_matches(&rule.rule, w)?;
            if fires == Tri::No {
                continue;
            }
            let step = self.action(&rule.rule, w)?;
            let record = |w: &mut Walker| {
                w.record(|| Event::Rule {
                    chain: chain.name.to_string(),
                    position: index + 1,
                    rule: Box::new(rule.rule.clone()),
                    tag: rule.tag.clone(),
                })
            };
            if matches!(step, Step::Next) {
                if fires == Tri::Yes {
                    w.matched.push(rule.tag.clone());
                    record(w);
                }
                continue;
            }
            if fires == Tri::Maybe {
                return Err(Unknown(format!(
                    "chain {}: cannot tell whether `{}` matches",
                    chain.name, rule.rule
                )));
            }
            w.matched.push(rule.tag.clone());
            record(w);
            let by = || describe(&rule.rule);
            match step {
                Step::Next => unreachable!("handled above"),
                Step::Accept => return Ok(End::Accept),
                Step::Drop => return Ok(End::Drop(by())),
                Step::Nat(n) => return Ok(End::Nat(n)),
                Step::Return => {
                    stack.pop();
                    if stack.is_empty() {
                        return Ok(End::Policy);
                    }
                }
                Step::Jump(target, goto) => {
                    let Some(next) = self.chains.get(target.as_str()) else {
                        return Err(Unknown(format!("no chain {target}")));
                    };
                    if goto {
                        stack.pop();
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(Unknown("jumps deeper than the kernel allows".into()));
                    }
                    w.record(|| Event::Enter {
                        name: target.clone(),
                        goto,
                    });
                    stack.push((next, 0));
                }
            }
        }
        Ok(End::Policy)
    }

    /// Whether every match of the rule holds (and the family its NAT
    /// implies).
    fn rule_matches(&self, rule: &Rule, w: &Walker) -> Result<Tri, Unknown> {
        let mut all = Tri::Yes;
        if let Some(family) = rule.implied_nfproto()
            && family != Family::of(&w.packet.src)
        {
            return Ok(Tri::No);
        }
        for m in &rule.matches {
            match self.test(m, w) {
                Tri::No => return Ok(Tri::No),
                Tri::Maybe => all = Tri::Maybe,
                Tri::Yes => {}
            }
        }
        Ok(all)
    }

    /// What the rule's action does to the packet.
    fn action(&self, rule: &Rule, w: &Walker) -> Result<Step, Unknown> {
        let family = Family::of(&w.packet.src);
        Ok(match &rule.action {
            Action::Accept => Step::Accept,
            Action::Drop | Action::Reject(_) => Step::Drop,
            Action::Jump(c) => Step::Jump(c.clone(), false),
            Action::Goto(c) => Step::Jump(c.clone(), true),
            Action::Return => Step::Return,
            Action::Continue => Step::Next,
            Action::Dnat(t) if t.family() == family => Step::Nat(Nat::Dnat(Dnat::To(NatTo::of(t)))),
            Action::Snat(t) if t.family() == family => Step::Nat(Nat::Snat(Snat::To(NatTo::of(t)))),
            Action::Dnat(_) | Action::Snat(_) => Step::Next,
            Action::Masquerade(p) => Step::Nat(Nat::Snat(Snat::Masquerade(*p))),
            Action::Redirect(p) => Step::Nat(Nat::Dnat(Dnat::Redirect(*p))),
            Action::Vmap(lookup) => match self.lookup(lookup, w)? {
                None => Step::Next,
                Some(Some(Data::Verdict(v))) => match v {
                    MapVerdict::Accept => Step::Accept,
                    MapVerdict::Drop => Step::Drop,
                    MapVerdict::Jump(c) => Step::Jump(c.clone(), false),
                    MapVerdict::Goto(c) => Step::Jump(c.clone(), true),
                    MapVerdict::Return => Step::Return,
                },
                Some(_) => return Err(Unknown(format!("`{rule}`: not a verdict map"))),
            },
            Action::DnatMap(m) | Action::SnatMap(m) if m.family != family => Step::Next,
            Action::DnatMap(m) | Action::SnatMap(m) => match self.lookup(&m.lookup, w)? {
                None => Step::Next,
                Some(Some(Data::Values(Element(values)))) => {
                    let (address, port) = match values.as_slice() {
                        [Value::Addr(a)] => (*a, None),
                        [Value::Addr(a), Value::Number(p)] => (*a, Some(*p as u16)),
                        _ => return Err(Unknown(format!("`{rule}`: a NAT map's data"))),
                    };
                    let to = NatTo {
                        first: address,
                        last: address,
                        ports: port.map(PortRange::single),
                    };
                    match &rule.action {
                        Action::DnatMap(_) => Step::Nat(Nat::Dnat(Dnat::To(to))),
                        _ => Step::Nat(Nat::Snat(Snat::To(to))),
                    }
                }
                Some(_) => return Err(Unknown(format!("`{rule}`: a NAT map's data"))),
            },
        })
    }

    /// The element of a map the packet's key finds: Some(data) or None
    /// (no element).
    fn lookup(&self, lookup: &MapLookup, w: &Walker) -> Result<Option<Option<Data>>, Unknown> {
        let Some(key) = key_of(&lookup.fields, w) else {
            return Ok(None);
        };
        let key = key.map_err(|f| Unknown(format!("{f} is not known")))?;
        match &lookup.map {
            MapSource::Named(name) => {
                if self.dynamic.contains(name.as_str()) {
                    return Err(Unknown(format!("@{name} is filled by rules")));
                }
                let Some(set) = self.sets.get(name.as_str()) else {
                    return Err(Unknown(format!("no set @{name}")));
                };
                Ok(set.find(&key).map(|d| d.cloned()))
            }
            MapSource::Inline(elements) => {
                Ok(Indexed::new(elements).find(&key).map(|d| d.cloned()))
            }
        }
    }

    /// One match.
    fn test(&self, m: &Match, w: &Walker) -> Tri {
        let p = w.packet;
        let family = Family::of(&p.src);
        let is = |f: Field| field(f, w);
        match m {
            Match::Iifname { name, negate } => name_test(is(Field::Iifname), name, *negate),
            Match::Oifname { name, negate } => name_test(is(Field::Oifname), name, *negate),
            Match::Addr { dir, net, negate } => {
                let f = addr_field(*dir, Family::of(&net.ip()));
                match is(f) {
                    Got::Value(Value::Addr(a)) => Tri::of(net.contains(a)).negate_if(*negate),
                    Got::Unknown => Tri::Maybe,
                    _ => Tri::No,
                }
            }
            Match::L4Proto { proto, negate } => {
                Tri::of(l4_number(*proto) == p.proto).negate_if(*negate)
            }
            Match::Port {
                dir,
                proto,
                first,
                last,
                negate,
            } => match is(port_field(*dir, *proto)) {
                Got::Value(Value::Number(n)) => {
                    Tri::of(u32::from(*first) <= n && n <= u32::from(*last)).negate_if(*negate)
                }
                Got::Unknown => Tri::Maybe,
                _ => Tri::No,
            },
            Match::CtState(CtStates(states)) => Tri::of(states & w.ct_state != 0),
            Match::AddrInSet {
                dir,
                family: f,
                set,
            } => self.in_set(&[addr_field(*dir, *f)], set, false, w),
            Match::PortInSet { dir, proto, set } => {
                self.in_set(&[port_field(*dir, *proto)], set, false, w)
            }
            Match::Nfproto { family: f, negate } => Tri::of(*f == family).negate_if(*negate),
            Match::Test {
                fields,
                against,
                negate,
            } => match key_of(fields, w) {
                None => Tri::No,
                Some(Err(_)) => Tri::Maybe,
                Some(Ok(key)) => {
                    let hit = match against {
                        Against::One(v) => key.len() == 1 && covers(v, &key[0]),
                        Against::Set(InlineSet { elements, .. }) => elements.iter().any(|e| {
                            e.0.len() == key.len()
                                && e.0.iter().zip(&key).all(|(v, k)| covers(v, k))
                        }),
                    };
                    Tri::of(hit).negate_if(*negate)
                }
            },
            Match::InSet {
                fields,
                set,
                negate,
            } => self.in_set(fields, set, *negate, w),
            Match::Masked {
                field: f,
                mask,
                value,
                negate,
            } => match (is(*f), mask, value) {
                (Got::Value(Value::Number(n)), Value::Number(m), Value::Number(v)) => {
                    Tri::of(n & m == *v).negate_if(*negate)
                }
                (Got::Value(Value::Addr(a)), Value::Addr(m), Value::Addr(v)) => {
                    Tri::of(masked(a, *m) == Some(*v)).negate_if(*negate)
                }
                (Got::Absent, ..) => Tri::No,
                _ => Tri::Maybe,
            },
            Match::TcpFlags {
                flags,
                mask,
                negate,
            } => {
                if p.proto != proto::TCP {
                    return Tri::No;
                }
                // The first packet of a TCP connection: a SYN.
                const SYN: u8 = 0x02;
                Tri::of(SYN & mask == *flags).negate_if(*negate)
            }
            Match::CtStatus { bits, negate } => Tri::of(w.ct_status & bits != 0).negate_if(*negate),
            Match::Fib { check, negate } => match check {
                // The route back to the source is the one it came in by:
                // the walk found its input interface from that route.
                FibCheck::ReversePathMissing | FibCheck::ReversePathMissingMark => {
                    Tri::of(w.iif.is_none()).negate_if(*negate)
                }
                FibCheck::DaddrLocal => Tri::Maybe,
            },
            Match::Hour(range) => {
                let t = (self.now % 86_400) as u32;
                Tri::of(range.utc.0 <= t && t <= range.utc.1).negate_if(range.negate)
            }
            Match::Day(days) => {
                // 1970-01-01 was a Thursday (4).
                let day = ((self.now / 86_400 + 4) % 7) as u8;
                Tri::of(days.contains(&day))
            }
            Match::Date(range) => {
                Tri::of(range.utc_ns.0 <= self.now_ns && self.now_ns <= range.utc_ns.1)
            }
            // A flow's packets are assumed within every rate limit.
            Match::Limit { over, .. } | Match::KeyedLimit { over, .. } => Tri::of(!over),
            Match::LimitNamed(name) => match self.limits.get(name.as_str()) {
                Some(over) => Tri::of(!over),
                None => Tri::Maybe,
            },
        }
    }

    fn in_set(&self, fields: &[Field], set: &str, negate: bool, w: &Walker) -> Tri {
        if self.dynamic.contains(set) {
            return Tri::Maybe;
        }
        let Some(indexed) = self.sets.get(set) else {
            return Tri::Maybe;
        };
        match key_of(fields, w) {
            None => Tri::No,
            Some(Err(_)) => Tri::Maybe,
            Some(Ok(key)) => Tri::of(indexed.find(&key).is_some()).negate_if(negate),
        }
    }
}

impl<'p> Walker<'p> {
    fn new(packet: &'p Packet, iif: Option<String>, ct_state: u32, traced: bool) -> Self {
        Walker {
            packet,
            iif,
            oif: Some(String::new()),
            ct_status: 0,
            translated: None,
            matched: Vec::new(),
            ct_state,
            events: traced.then(Vec::new),
        }
    }
}

enum HookEnd {
    Accept { nat: Option<Nat> },
    Drop(String),
}

enum Step {
    Next,
    Accept,
    Drop,
    Return,
    Nat(Nat),
    Jump(String, bool),
}

/// A rule as a verdict's cause: its comment, else its text.
fn describe(rule: &Rule) -> String {
    match &rule.comment {
        Some(c) => format!("\"{c}\""),
        None => format!("`{rule}`"),
    }
}

/// Where the packet goes after destination NAT.
pub fn destination(packet: &Packet, dnat: Option<&Dnat>) -> (IpAddr, Option<u16>) {
    let dport = packet.ports.map(|p| p.1);
    match dnat {
        Some(Dnat::To(to)) => (to.first, to.ports.map(|p| p.first).or(dport)),
        Some(Dnat::Redirect(p)) => (packet.dst, p.map(|p| p.first).or(dport)),
        None => (packet.dst, dport),
    }
}

fn l4_number(p: L4Proto) -> u8 {
    match p {
        L4Proto::Tcp => proto::TCP,
        L4Proto::Udp => proto::UDP,
        L4Proto::Icmp => proto::ICMP,
        L4Proto::Icmpv6 => proto::ICMPV6,
        L4Proto::Other(n) => n,
    }
}

fn transport_number(t: Transport) -> u8 {
    match t {
        Transport::Tcp => proto::TCP,
        Transport::Udp => proto::UDP,
        Transport::Sctp => 132,
    }
}

fn addr_field(dir: crate::ir::Dir, family: Family) -> Field {
    match dir {
        crate::ir::Dir::Source => Field::Saddr(family),
        crate::ir::Dir::Destination => Field::Daddr(family),
    }
}

fn port_field(dir: crate::ir::Dir, proto: Transport) -> Field {
    match dir {
        crate::ir::Dir::Source => Field::Sport(proto),
        crate::ir::Dir::Destination => Field::Dport(proto),
    }
}

fn name_test(got: Got, pattern: &str, negate: bool) -> Tri {
    match got {
        Got::Value(name) => {
            Tri::of(covers(&Value::Name(pattern.to_string()), &name)).negate_if(negate)
        }
        Got::Absent => Tri::No,
        Got::Unknown => Tri::Maybe,
    }
}

fn masked(a: IpAddr, m: IpAddr) -> Option<IpAddr> {
    match (a, m) {
        (IpAddr::V4(a), IpAddr::V4(m)) => Some(IpAddr::V4((a.to_bits() & m.to_bits()).into())),
        (IpAddr::V6(a), IpAddr::V6(m)) => Some(IpAddr::V6((a.to_bits() & m.to_bits()).into())),
        _ => None,
    }
}

/// The values of `fields` in the packet: None when one is absent (the
/// lookup's implied protocol check fails), Err(field) when one is not
/// known.
fn key_of(fields: &[Field], w: &Walker) -> Option<Result<Vec<Value>, Field>> {
    let mut key = Vec::with_capacity(fields.len());
    for f in fields {
        match field(*f, w) {
            Got::Value(v) => key.push(v),
            Got::Absent => return None,
            Got::Unknown => return Some(Err(*f)),
        }
    }
    Some(Ok(key))
}

/// A field's value in the packet as it is at this point of the walk. The
/// addresses and ports are the packet's as it arrived: destination NAT
/// changes the conntrack entry's reply, and the kernel's later hooks see
/// the translated header, which the walk takes into account through
/// [`destination`] for routing and `ct status` for the filter.
fn field(f: Field, w: &Walker) -> Got {
    let p = w.packet;
    let family = Family::of(&p.src);
    match f {
        Field::Iifname => w
            .iif
            .clone()
            .map_or(Got::Unknown, |n| Got::Value(Value::Name(n))),
        Field::Oifname => w
            .oif
            .clone()
            .map_or(Got::Unknown, |n| Got::Value(Value::Name(n))),
        Field::L4proto => Got::Value(Value::Number(u32::from(p.proto))),
        Field::Saddr(fam) if fam == family => Got::Value(Value::Addr(p.src)),
        Field::Daddr(fam) if fam == family => Got::Value(Value::Addr(translated_dst(w))),
        Field::Saddr(_) | Field::Daddr(_) => Got::Absent,
        Field::Sport(t) | Field::Dport(t) => {
            let Some((sport, _)) = p.ports.filter(|_| p.proto == transport_number(t)) else {
                return Got::Absent;
            };
            let port = match f {
                Field::Sport(_) => sport,
                _ => translated_dport(w).unwrap_or(0),
            };
            Got::Value(Value::Number(u32::from(port)))
        }
        Field::IcmpType | Field::IcmpCode if p.proto == proto::ICMP => {
            icmp(p, f == Field::IcmpType)
        }
        Field::Icmpv6Type | Field::Icmpv6Code if p.proto == proto::ICMPV6 => {
            icmp(p, f == Field::Icmpv6Type)
        }
        Field::IcmpType | Field::IcmpCode | Field::Icmpv6Type | Field::Icmpv6Code => Got::Absent,
        Field::CtMark => Got::Value(Value::Number(p.ct_mark)),
        Field::Mark | Field::Dscp(_) | Field::EtherSaddr => Got::Unknown,
    }
}

/// The destination address later hooks see: translated once the
/// prerouting NAT has been set up (the walk keeps it in `ct_status` and
/// the walker's translation).
fn translated_dst(w: &Walker) -> IpAddr {
    w.translated.map_or(w.packet.dst, |(a, _)| a)
}

fn translated_dport(w: &Walker) -> Option<u16> {
    match w.translated {
        Some((_, port)) => port,
        None => w.packet.ports.map(|p| p.1),
    }
}

fn icmp(p: &Packet, kind: bool) -> Got {
    match p.icmp {
        Some((t, c)) => Got::Value(Value::Number(u32::from(if kind { t } else { c }))),
        None => Got::Unknown,
    }
}
