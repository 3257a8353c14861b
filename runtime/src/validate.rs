//! Validation: turns the ruleset a policy returned (WIT types) into the rule
//! IR, or into a list of problems, each naming where it is and what is wrong.
//! Pure: no I/O.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::bindings::wit;
use crate::ir::{
    self, Action, BaseChain, ChainPolicy, ChainType, CtStates, Dir, Family, Hook, L4Proto, Match,
    NatTarget, SetElements, Transport,
};
use crate::sysctl::{self, AllowList};

/// Longest chain or set name a policy may use.
pub const NAME_MAX: usize = 32;
/// Most matches in one rule (the kernel caps expressions per rule).
pub const MATCHES_MAX: usize = 24;
/// Longest comment, in bytes (nft stores it NUL-terminated in 128 bytes).
pub const COMMENT_MAX: usize = 127;
/// Longest log prefix, in bytes.
pub const LOG_PREFIX_MAX: usize = 127;
/// Most nested jumps and gotos from a base chain to a regular chain: the
/// kernel's jump stack holds 16 levels (NFT_JUMP_STACK_SIZE) and it refuses
/// a ruleset with a chain at level 16 ("Too many links").
pub const JUMP_DEPTH_MAX: usize = 15;
/// A nat base chain's priority must be above this (NF_IP_PRI_CONNTRACK);
/// the kernel refuses one at or below it.
pub const NAT_PRIORITY_FLOOR: i32 = -200;

/// Rules a policy's answer may have at most, unless the config says.
pub const DEFAULT_MAX_RULES: usize = 100_000;
/// Elements one set may have at most, unless the config says.
pub const DEFAULT_MAX_SET_ELEMENTS: usize = 100_000;

/// Limits on the size of one policy's output, and the sysctls it may ask
/// for.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_rules: usize,
    pub max_set_elements: usize,
    pub sysctls: AllowList,
}

/// What a config that says nothing about them gives.
impl Default for Options {
    fn default() -> Self {
        Options {
            max_rules: DEFAULT_MAX_RULES,
            max_set_elements: DEFAULT_MAX_SET_ELEMENTS,
            sysctls: AllowList::default(),
        }
    }
}

/// One thing wrong with a policy's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: e.g. `chain "input" rule 2 match 1`.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

/// Every problem found in one policy's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub problems: Vec<Problem>,
}

/// Problems an error lists; the others are only counted. A policy can
/// return thousands of bad elements, and the error goes to the log.
pub const PROBLEMS_SHOWN: usize = 20;
/// Longest problem line an error shows; the rest of a longer one (a huge
/// string quoted) is cut.
pub const PROBLEM_TEXT_MAX: usize = 300;

/// `{}` gives a header line and one line per problem, as `wasmwall eval`
/// and fixtures show it; `{:#}` gives the same on one line, for logs.
impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} problem(s) in the returned ruleset",
            self.problems.len()
        )?;
        let (first, next) = if f.alternate() {
            (": ", "; ")
        } else {
            ("\n  - ", "\n  - ")
        };
        for (i, p) in self.problems.iter().take(PROBLEMS_SHOWN).enumerate() {
            let mut text = p.to_string();
            if crate::text::cut(&mut text, PROBLEM_TEXT_MAX) {
                text.push_str("... (cut)");
            }
            f.write_str(if i == 0 { first } else { next })?;
            f.write_str(&text)?;
        }
        if let Some(more) = self.problems.len().checked_sub(PROBLEMS_SHOWN)
            && more > 0
        {
            write!(f, "{next}... and {more} more")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

struct Ctx {
    problems: Vec<Problem>,
}

impl Ctx {
    fn err(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }
}

fn check_name(ctx: &mut Ctx, at: &str, what: &str, name: &str) -> bool {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        ctx.err(
            at,
            format!("invalid {what} name {name:?}: use 1-{NAME_MAX} letters, digits, '_' or '-'"),
        );
    }
    ok
}

fn check_ifname(ctx: &mut Ctx, at: &str, name: &str) -> bool {
    let problem = crate::fields::ifname_problem(name);
    if let Some(p) = &problem {
        ctx.err(at, format!("interface name {name:?} {p}"));
    }
    problem.is_none()
}

fn parse_prefix(text: &str) -> Result<IpNetwork, String> {
    let net: IpNetwork = match text.parse::<IpAddr>() {
        Ok(ip) => IpNetwork::from(ip),
        Err(_) => text.parse().map_err(|_| {
            format!("{text:?} is not an IPv4 or IPv6 address or prefix (like 192.168.0.0/24)")
        })?,
    };
    if net.network() != net.ip() {
        return Err(format!(
            "prefix {text:?} has host bits set; did you mean {}/{}?",
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
}

fn transport(t: wit::Transport) -> Transport {
    match t {
        wit::Transport::Tcp => Transport::Tcp,
        wit::Transport::Udp => Transport::Udp,
    }
}

fn hook(h: wit::Hook) -> Hook {
    match h {
        wit::Hook::Prerouting => Hook::Prerouting,
        wit::Hook::Input => Hook::Input,
        wit::Hook::Forward => Hook::Forward,
        wit::Hook::Output => Hook::Output,
        wit::Hook::Postrouting => Hook::Postrouting,
    }
}

/// What the rule's matches imply about packets, to check the action against.
#[derive(Default)]
struct RuleFacts {
    family: Option<Family>,
    l4: Option<L4Proto>,
}

/// Sets declared by the policy: name -> kind.
type SetKinds<'a> = HashMap<&'a str, SetKind>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetKind {
    Addr(Family),
    Ports,
}

struct ChainInfo {
    base: Option<BaseChain>,
}

fn convert_match(
    ctx: &mut Ctx,
    at: &str,
    m: &wit::MatchExpr,
    sets: &SetKinds,
    facts: &mut RuleFacts,
) -> Option<Match> {
    let negate = m.negate;
    let no_negation = |ctx: &mut Ctx, what: &str| {
        if negate {
            ctx.err(at, format!("{what} cannot be negated"));
        }
    };
    let mut family = |ctx: &mut Ctx, f: Family| {
        match facts.family {
            Some(existing) if existing != f => ctx.err(
                at,
                "mixes IPv4 and IPv6: one rule matches one address family",
            ),
            _ => facts.family = Some(f),
        };
    };
    let l4 = |ctx: &mut Ctx, facts: &mut RuleFacts, p: L4Proto, negated: bool| {
        if negated {
            return;
        }
        match facts.l4 {
            Some(existing) if existing != p => ctx.err(
                at,
                format!(
                    "matches protocol {} but the rule already matches {}",
                    p.as_str(),
                    existing.as_str()
                ),
            ),
            _ => facts.l4 = Some(p),
        }
    };
    let ports = |ctx: &mut Ctx, facts: &mut RuleFacts, dir: Dir, p: &wit::Ports| {
        let mut ok = true;
        if p.first == 0 || p.last == 0 {
            ctx.err(at, "port 0 is not a valid port (use 1-65535)");
            ok = false;
        }
        if p.last < p.first {
            ctx.err(
                at,
                format!("port range {}-{} is empty (last < first)", p.first, p.last),
            );
            ok = false;
        }
        if negate && p.first != p.last {
            ctx.err(at, "a port range cannot be negated");
            ok = false;
        }
        let proto = transport(p.protocol);
        l4(ctx, facts, proto.l4(), false);
        ok.then_some(Match::Port {
            dir,
            proto,
            first: p.first,
            last: p.last,
            negate,
        })
    };
    match &m.matcher {
        wit::Matcher::Iifname(name) => check_ifname(ctx, at, name).then(|| Match::Iifname {
            name: name.clone(),
            negate,
        }),
        wit::Matcher::Oifname(name) => check_ifname(ctx, at, name).then(|| Match::Oifname {
            name: name.clone(),
            negate,
        }),
        wit::Matcher::Saddr(text) | wit::Matcher::Daddr(text) => {
            let dir = if matches!(m.matcher, wit::Matcher::Saddr(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            match parse_prefix(text) {
                Ok(net) => {
                    family(ctx, Family::of(&net.ip()));
                    Some(Match::Addr { dir, net, negate })
                }
                Err(e) => {
                    ctx.err(at, e);
                    None
                }
            }
        }
        wit::Matcher::L4proto(p) => {
            let proto = match p {
                wit::L4Protocol::Tcp => L4Proto::Tcp,
                wit::L4Protocol::Udp => L4Proto::Udp,
                wit::L4Protocol::Icmp => L4Proto::Icmp,
                wit::L4Protocol::Icmpv6 => L4Proto::Icmpv6,
            };
            l4(ctx, facts, proto, negate);
            Some(Match::L4Proto { proto, negate })
        }
        wit::Matcher::Sport(p) => ports(ctx, facts, Dir::Source, p),
        wit::Matcher::Dport(p) => ports(ctx, facts, Dir::Destination, p),
        wit::Matcher::CtState(states) => {
            no_negation(ctx, "a ct-state match");
            if states.is_empty() {
                ctx.err(at, "ct-state match with no state never matches");
                return None;
            }
            let bits = states.iter().fold(0, |acc, s| {
                acc | match s {
                    wit::CtState::New => CtStates::NEW,
                    wit::CtState::Established => CtStates::ESTABLISHED,
                    wit::CtState::Related => CtStates::RELATED,
                    wit::CtState::Invalid => CtStates::INVALID,
                    wit::CtState::Untracked => CtStates::UNTRACKED,
                }
            });
            (!negate).then_some(Match::CtState(CtStates(bits)))
        }
        wit::Matcher::SaddrIn(set) | wit::Matcher::DaddrIn(set) => {
            no_negation(ctx, "a set membership");
            let dir = if matches!(m.matcher, wit::Matcher::SaddrIn(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            match sets.get(set.as_str()) {
                Some(SetKind::Addr(f)) => {
                    family(ctx, *f);
                    (!negate).then(|| Match::AddrInSet {
                        dir,
                        family: *f,
                        set: set.clone(),
                    })
                }
                Some(SetKind::Ports) => {
                    ctx.err(at, format!("set {set:?} holds ports, not addresses"));
                    None
                }
                None => {
                    ctx.err(at, format!("unknown set {set:?}"));
                    None
                }
            }
        }
        wit::Matcher::SportIn(r) | wit::Matcher::DportIn(r) => {
            no_negation(ctx, "a set membership");
            let dir = if matches!(m.matcher, wit::Matcher::SportIn(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            let proto = transport(r.protocol);
            l4(ctx, facts, proto.l4(), false);
            match sets.get(r.set.as_str()) {
                Some(SetKind::Ports) => (!negate).then(|| Match::PortInSet {
                    dir,
                    proto,
                    set: r.set.clone(),
                }),
                Some(SetKind::Addr(_)) => {
                    ctx.err(at, format!("set {:?} holds addresses, not ports", r.set));
                    None
                }
                None => {
                    ctx.err(at, format!("unknown set {:?}", r.set));
                    None
                }
            }
        }
    }
}

fn nat_target(ctx: &mut Ctx, at: &str, t: &wit::NatTarget, facts: &RuleFacts) -> Option<NatTarget> {
    let address: IpAddr = match t.address.parse() {
        Ok(a) => a,
        Err(_) => {
            ctx.err(
                at,
                format!("NAT target {:?} is not an IPv4 or IPv6 address", t.address),
            );
            return None;
        }
    };
    let mut ok = true;
    if let Some(f) = facts.family
        && f != Family::of(&address)
    {
        ctx.err(
            at,
            format!("NAT target {address} is not of the address family the rule matches"),
        );
        ok = false;
    }
    if let Some(port) = t.port {
        if port == 0 {
            ctx.err(at, "NAT target port 0 is not a valid port (use 1-65535)");
            ok = false;
        }
        if !matches!(facts.l4, Some(L4Proto::Tcp | L4Proto::Udp)) {
            ctx.err(
                at,
                "a NAT target port needs a tcp or udp match in the rule (e.g. a dport match)",
            );
            ok = false;
        }
    }
    ok.then_some(NatTarget {
        address,
        port: t.port,
    })
}

/// Hooks from which each chain can be reached (its own hook for a base chain,
/// the hooks of its callers for a regular chain).
fn reaching_hooks(
    chains: &[wit::Chain],
    infos: &HashMap<&str, ChainInfo>,
) -> HashMap<String, BTreeSet<(Hook, bool)>> {
    // (hook, is_nat)
    let mut reach: HashMap<String, BTreeSet<(Hook, bool)>> = HashMap::new();
    let mut work: Vec<(String, (Hook, bool))> = Vec::new();
    for c in chains {
        if let Some(b) = infos.get(c.name.as_str()).and_then(|i| i.base) {
            work.push((c.name.clone(), (b.hook, b.chain_type == ChainType::Nat)));
        }
    }
    let by_name: HashMap<&str, &wit::Chain> = chains.iter().map(|c| (c.name.as_str(), c)).collect();
    while let Some((name, ctxt)) = work.pop() {
        if !reach.entry(name.clone()).or_default().insert(ctxt) {
            continue;
        }
        if let Some(chain) = by_name.get(name.as_str()) {
            for rule in &chain.rules {
                if let wit::Action::Jump(t) | wit::Action::Goto(t) = &rule.action {
                    work.push((t.clone(), ctxt));
                }
            }
        }
    }
    reach
}

/// Finds a jump/goto cycle, returned as the chain names along it.
fn find_cycle(chains: &[wit::Chain]) -> Option<Vec<String>> {
    let edges: HashMap<&str, Vec<&str>> = chains
        .iter()
        .map(|c| {
            let targets = c
                .rules
                .iter()
                .filter_map(|r| match &r.action {
                    wit::Action::Jump(t) | wit::Action::Goto(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            (c.name.as_str(), targets)
        })
        .collect();
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut colour: HashMap<&str, u8> = HashMap::new();
    for start in chains.iter().map(|c| c.name.as_str()) {
        if colour.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, 1);
        while let Some((node, i)) = stack.last().copied() {
            let next = edges.get(node).and_then(|e| e.get(i)).copied();
            match next {
                Some(n) => {
                    stack.last_mut().expect("non-empty").1 += 1;
                    match colour.get(n) {
                        Some(1) => {
                            let pos = stack.iter().position(|(s, _)| *s == n).expect("on stack");
                            let mut cycle: Vec<String> =
                                stack[pos..].iter().map(|(s, _)| s.to_string()).collect();
                            cycle.push(n.to_string());
                            return Some(cycle);
                        }
                        Some(_) => {}
                        None if edges.contains_key(n) => {
                            colour.insert(n, 1);
                            stack.push((n, 0));
                        }
                        None => {}
                    }
                }
                None => {
                    colour.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// The path from a base chain to the first chain (in the answer's order)
/// that sits more than [`JUMP_DEPTH_MAX`] jumps deep, if any. The jump graph
/// must have no loop.
fn too_deep(chains: &[wit::Chain], infos: &HashMap<&str, ChainInfo>) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = chains
        .iter()
        .enumerate()
        .filter(|(_, c)| infos.contains_key(c.name.as_str()))
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    // Edges to regular chains only: a jump to a base chain is reported
    // elsewhere.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); chains.len()];
    let mut incoming = vec![0usize; chains.len()];
    // In the answer's order, so that the path reported does not vary.
    for (from, chain) in chains.iter().enumerate() {
        if index.get(chain.name.as_str()) != Some(&from) {
            continue;
        }
        for rule in &chain.rules {
            if let wit::Action::Jump(t) | wit::Action::Goto(t) = &rule.action
                && let Some(&to) = index.get(t.as_str())
                && infos.get(t.as_str()).is_some_and(|i| i.base.is_none())
                && to != from
            {
                edges[from].push(to);
                incoming[to] += 1;
            }
        }
    }
    // Longest distance from a base chain, in topological order (Kahn).
    let mut depth: Vec<Option<usize>> = chains
        .iter()
        .map(|c| infos.get(c.name.as_str()).and_then(|i| i.base).map(|_| 0))
        .collect();
    let mut parent: Vec<Option<usize>> = vec![None; chains.len()];
    let mut ready: Vec<usize> = (0..chains.len())
        .filter(|&i| index.get(chains[i].name.as_str()) == Some(&i) && incoming[i] == 0)
        .collect();
    while let Some(from) = ready.pop() {
        for &to in &edges[from] {
            if let Some(d) = depth[from]
                && depth[to].is_none_or(|old| d + 1 > old)
            {
                depth[to] = Some(d + 1);
                parent[to] = Some(from);
            }
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push(to);
            }
        }
    }
    let deepest = (0..chains.len()).find(|&i| depth[i].is_some_and(|d| d > JUMP_DEPTH_MAX))?;
    let mut path = vec![chains[deepest].name.clone()];
    let mut at = deepest;
    while let Some(p) = parent[at] {
        path.push(chains[p].name.clone());
        at = p;
    }
    path.reverse();
    Some(path)
}

/// "a -> b -> c", with the middle of a long path left out.
fn shorten_path(path: &[String]) -> String {
    if path.len() <= 8 {
        return path.join(" -> ");
    }
    format!(
        "{} -> ... -> {}",
        path[..3].join(" -> "),
        path[path.len() - 3..].join(" -> ")
    )
}

/// Why the kernel would refuse a nat base chain at this priority, if it
/// would: nat chains must run after connection tracking, which hooks at
/// -200.
pub fn nat_priority_problem(base: &BaseChain) -> Option<String> {
    (base.chain_type == ChainType::Nat && base.priority <= NAT_PRIORITY_FLOOR).then(|| {
        format!(
            "a nat chain needs a priority above {NAT_PRIORITY_FLOOR} (connection tracking runs at {NAT_PRIORITY_FLOOR}); this one has {}",
            base.priority
        )
    })
}

fn check_text(ctx: &mut Ctx, at: &str, what: &str, text: &str, max: usize) -> bool {
    if text.len() > max {
        ctx.err(
            at,
            format!("{what} is {} bytes long; at most {max} allowed", text.len()),
        );
        false
    } else if text.contains('\0') {
        ctx.err(at, format!("{what} contains a NUL byte"));
        false
    } else {
        true
    }
}

fn convert_sets(ctx: &mut Ctx, opts: &Options, sets: &[wit::NamedSet]) -> Vec<ir::NamedSet> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for set in sets {
        let at = format!("set {:?}", set.name);
        if !check_name(ctx, &at, "set", &set.name) {
            continue;
        }
        if !seen.insert(set.name.as_str()) {
            ctx.err(&at, "defined twice");
            continue;
        }
        let count = match &set.elements {
            wit::SetElements::Ipv4(v) | wit::SetElements::Ipv6(v) => v.len(),
            wit::SetElements::Ports(v) => v.len(),
        };
        if count > opts.max_set_elements {
            ctx.err(
                &at,
                format!(
                    "has {count} elements; the limit is {}",
                    opts.max_set_elements
                ),
            );
            continue;
        }
        let before = ctx.problems.len();
        let elements = match &set.elements {
            wit::SetElements::Ipv4(v) => {
                let mut addrs = BTreeSet::new();
                for (i, e) in v.iter().enumerate() {
                    match e.parse::<std::net::Ipv4Addr>() {
                        Ok(a) => {
                            addrs.insert(a);
                        }
                        Err(_) => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!("{e:?} is not an IPv4 address"),
                        ),
                    }
                }
                SetElements::Ipv4(addrs.into_iter().collect())
            }
            wit::SetElements::Ipv6(v) => {
                let mut addrs = BTreeSet::new();
                for (i, e) in v.iter().enumerate() {
                    match e.parse::<std::net::Ipv6Addr>() {
                        Ok(a) => {
                            addrs.insert(a);
                        }
                        Err(_) => ctx.err(
                            format!("{at} element {}", i + 1),
                            format!("{e:?} is not an IPv6 address"),
                        ),
                    }
                }
                SetElements::Ipv6(addrs.into_iter().collect())
            }
            wit::SetElements::Ports(v) => {
                if v.contains(&0) {
                    ctx.err(&at, "port 0 is not a valid port (use 1-65535)");
                }
                let ports: BTreeSet<u16> = v.iter().copied().filter(|p| *p != 0).collect();
                SetElements::Ports(ports.into_iter().collect())
            }
        };
        if ctx.problems.len() == before {
            out.push(ir::NamedSet {
                name: set.name.clone(),
                elements,
            });
        }
    }
    out
}

fn convert_sysctls(ctx: &mut Ctx, opts: &Options, sysctls: &[wit::Sysctl]) -> Vec<ir::Sysctl> {
    let mut out: Vec<ir::Sysctl> = Vec::new();
    for (i, s) in sysctls.iter().enumerate() {
        let at = format!("sysctl {}", i + 1);
        let mut ok = true;
        if let Err(e) = opts.sysctls.check(&s.key) {
            ctx.err(&at, e.to_string());
            ok = false;
        }
        if let Err(e) = sysctl::check_value(&s.value) {
            ctx.err(&at, format!("{}: {e}", s.key));
            ok = false;
        }
        if !ok {
            continue;
        }
        match out.iter().find(|o| o.key == s.key) {
            Some(o) if o.value != s.value => ctx.err(
                &at,
                format!(
                    "{} is requested twice with different values ({:?} and {:?})",
                    s.key, o.value, s.value
                ),
            ),
            Some(_) => {}
            None => out.push(ir::Sysctl {
                key: s.key.clone(),
                value: s.value.clone(),
            }),
        }
    }
    out
}

/// Validates a policy's ruleset and converts it to the IR.
pub fn validate(ruleset: &wit::Ruleset, opts: &Options) -> Result<ir::Ruleset, Invalid> {
    let mut ctx = Ctx {
        problems: Vec::new(),
    };

    let total: usize = ruleset.chains.iter().map(|c| c.rules.len()).sum();
    if total > opts.max_rules {
        ctx.err(
            "",
            format!(
                "the ruleset has {total} rules; the limit is {} (put per-host data in sets)",
                opts.max_rules
            ),
        );
        return Err(Invalid {
            problems: ctx.problems,
        });
    }

    let sets = convert_sets(&mut ctx, opts, &ruleset.sets);
    let set_kinds: SetKinds = sets
        .iter()
        .map(|s| {
            let kind = match &s.elements {
                SetElements::Ipv4(_) => SetKind::Addr(Family::V4),
                SetElements::Ipv6(_) => SetKind::Addr(Family::V6),
                SetElements::Ports(_) => SetKind::Ports,
            };
            (s.name.as_str(), kind)
        })
        .collect();

    // Chains: names and base chain settings first, so rules can refer to any.
    let mut infos: HashMap<&str, ChainInfo> = HashMap::new();
    for chain in &ruleset.chains {
        let at = format!("chain {:?}", chain.name);
        if !check_name(&mut ctx, &at, "chain", &chain.name) {
            continue;
        }
        if infos.contains_key(chain.name.as_str()) {
            ctx.err(&at, "defined twice");
            continue;
        }
        let base = chain.base.as_ref().map(|b| BaseChain {
            hook: hook(b.hook),
            chain_type: match b.type_ {
                wit::ChainType::Filter => ChainType::Filter,
                wit::ChainType::Nat => ChainType::Nat,
            },
            priority: b.priority,
            policy: match b.policy {
                wit::ChainPolicy::Accept => ChainPolicy::Accept,
                wit::ChainPolicy::Drop => ChainPolicy::Drop,
            },
        });
        if let Some(b) = &base {
            if b.chain_type == ChainType::Nat && b.hook == Hook::Forward {
                ctx.err(&at, "a nat chain cannot hook forward (use prerouting, input, output or postrouting)");
            }
            if b.chain_type == ChainType::Nat && b.policy == ChainPolicy::Drop {
                ctx.err(
                    &at,
                    "a nat chain cannot have policy drop (filter in a filter chain)",
                );
            }
            if let Some(problem) = nat_priority_problem(b) {
                ctx.err(&at, problem);
            }
        }
        infos.insert(chain.name.as_str(), ChainInfo { base });
    }

    if let Some(cycle) = find_cycle(&ruleset.chains) {
        ctx.err(
            format!("chain {:?}", cycle[0]),
            format!("jump loop: {}", cycle.join(" -> ")),
        );
    } else if let Some(path) = too_deep(&ruleset.chains, &infos) {
        ctx.err(
            format!("chain {:?}", path[path.len() - 1]),
            format!(
                "reached through {} nested jumps or gotos ({}); the kernel allows at most {JUMP_DEPTH_MAX}",
                path.len() - 1,
                shorten_path(&path)
            ),
        );
    }
    let reach = reaching_hooks(&ruleset.chains, &infos);

    let mut chains = Vec::new();
    for chain in &ruleset.chains {
        let Some(info) = infos.get(chain.name.as_str()) else {
            continue;
        };
        let hooks = reach.get(&chain.name).cloned().unwrap_or_default();
        let mut rules = Vec::new();
        for (ri, rule) in chain.rules.iter().enumerate() {
            let at = format!("chain {:?} rule {}", chain.name, ri + 1);
            if rule.matches.len() > MATCHES_MAX {
                ctx.err(
                    &at,
                    format!(
                        "has {} matches; at most {MATCHES_MAX} allowed",
                        rule.matches.len()
                    ),
                );
                continue;
            }
            let before = ctx.problems.len();
            let mut facts = RuleFacts::default();
            let mut matches = Vec::new();
            for (mi, m) in rule.matches.iter().enumerate() {
                let mat = format!("{at} match {}", mi + 1);
                if let Some(b) = &info.base {
                    if matches!(m.matcher, wit::Matcher::Oifname(_))
                        && matches!(b.hook, Hook::Prerouting | Hook::Input)
                    {
                        ctx.err(
                            &mat,
                            format!(
                                "oifname is unknown on the {} hook (no output interface yet)",
                                b.hook.as_str()
                            ),
                        );
                    }
                    if matches!(m.matcher, wit::Matcher::Iifname(_)) && b.hook == Hook::Output {
                        ctx.err(&mat, "iifname is unknown on the output hook (locally generated packets have no input interface)");
                    }
                }
                if let Some(conv) = convert_match(&mut ctx, &mat, m, &set_kinds, &mut facts) {
                    matches.push(conv);
                }
            }
            let action = convert_action(&mut ctx, &at, &rule.action, &facts, &infos, &hooks);
            if let Some(p) = &rule.log_prefix {
                check_text(&mut ctx, &at, "log prefix", p, LOG_PREFIX_MAX);
            }
            if let Some(c) = &rule.comment {
                check_text(&mut ctx, &at, "comment", c, COMMENT_MAX);
            }
            if ctx.problems.len() == before
                && let Some(action) = action
            {
                rules.push(ir::Rule {
                    matches,
                    counter: rule.counter,
                    log_prefix: rule.log_prefix.clone(),
                    action,
                    comment: rule.comment.clone(),
                });
            }
        }
        chains.push(ir::Chain {
            name: chain.name.clone(),
            base: info.base,
            rules,
        });
    }

    let sysctls = convert_sysctls(&mut ctx, opts, &ruleset.sysctls);

    if ctx.problems.is_empty() {
        Ok(ir::Ruleset {
            chains,
            sets,
            sysctls,
        })
    } else {
        Err(Invalid {
            problems: ctx.problems,
        })
    }
}

fn convert_action(
    ctx: &mut Ctx,
    at: &str,
    action: &wit::Action,
    facts: &RuleFacts,
    infos: &HashMap<&str, ChainInfo>,
    hooks: &BTreeSet<(Hook, bool)>,
) -> Option<Action> {
    // The hooks (and chain kinds) this rule can run in; an action must suit all.
    let require = |ctx: &mut Ctx, what: &str, nat: bool, allowed: &[Hook]| -> bool {
        let bad: Vec<String> = hooks
            .iter()
            .filter(|(h, is_nat)| *is_nat != nat || !allowed.contains(h))
            .map(|(h, is_nat)| format!("{} {}", if *is_nat { "nat" } else { "filter" }, h.as_str()))
            .collect();
        let allowed_text: Vec<&str> = allowed.iter().map(|h| h.as_str()).collect();
        let kind = if nat { "nat" } else { "filter" };
        if hooks.is_empty() {
            ctx.err(
                at,
                format!("{what} needs a {kind} chain on {}; this chain is not reached from any base chain", allowed_text.join(" or ")),
            );
            false
        } else if !bad.is_empty() {
            ctx.err(
                at,
                format!(
                    "{what} is only allowed in {kind} chains on {}, but this rule runs in: {}",
                    allowed_text.join(" or "),
                    bad.join(", ")
                ),
            );
            false
        } else {
            true
        }
    };
    match action {
        wit::Action::Accept => Some(Action::Accept),
        wit::Action::Drop => Some(Action::Drop),
        wit::Action::Return => Some(Action::Return),
        wit::Action::Continue => Some(Action::Continue),
        wit::Action::Reject => require(
            ctx,
            "reject",
            false,
            &[Hook::Input, Hook::Forward, Hook::Output],
        )
        .then_some(Action::Reject {
            tcp: facts.l4 == Some(L4Proto::Tcp),
        }),
        wit::Action::Jump(target) | wit::Action::Goto(target) => {
            let verb = if matches!(action, wit::Action::Jump(_)) {
                "jump"
            } else {
                "goto"
            };
            match infos.get(target.as_str()) {
                None => {
                    ctx.err(at, format!("{verb} to unknown chain {target:?}"));
                    None
                }
                Some(ChainInfo { base: Some(_) }) => {
                    ctx.err(
                        at,
                        format!(
                            "{verb} to base chain {target:?}; only regular chains can be jumped to"
                        ),
                    );
                    None
                }
                Some(_) => Some(if verb == "jump" {
                    Action::Jump(target.clone())
                } else {
                    Action::Goto(target.clone())
                }),
            }
        }
        wit::Action::Dnat(t) => {
            let ok = require(ctx, "dnat", true, &[Hook::Prerouting, Hook::Output]);
            let target = nat_target(ctx, at, t, facts);
            target.filter(|_| ok).map(Action::Dnat)
        }
        wit::Action::Snat(t) => {
            let ok = require(ctx, "snat", true, &[Hook::Postrouting, Hook::Input]);
            let target = nat_target(ctx, at, t, facts);
            target.filter(|_| ok).map(Action::Snat)
        }
        wit::Action::Masquerade => {
            require(ctx, "masquerade", true, &[Hook::Postrouting]).then_some(Action::Masquerade)
        }
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
