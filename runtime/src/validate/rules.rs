//! One rule of a policy's answer: its matches (interfaces, addresses and
//! prefixes, protocols, ports, ct states, set lookups) and its action, each
//! checked against the rest of the rule and against the hooks the rule runs
//! in, and converted to the IR.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{COMMENT_MAX, ChainInfo, Ctx, LOG_PREFIX_MAX, MATCHES_MAX};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{
    self, Action, BaseChain, CtStates, Dir, Family, Hook, L4Proto, Match, NatTarget, Statement,
    Transport,
};
use crate::text::quote;

/// Converts one rule of a chain whose base is `base` (none for a regular
/// chain) and that runs in `hooks`; None when something is wrong with it
/// (each problem is in `ctx`).
pub(super) fn convert_rule(
    ctx: &mut Ctx,
    at: &str,
    rule: &wit::Rule,
    base: Option<&BaseChain>,
    sets: &SetKinds,
    infos: &HashMap<&str, ChainInfo>,
    hooks: &BTreeSet<(Hook, bool)>,
) -> Option<ir::Rule> {
    if rule.matches.len() > MATCHES_MAX {
        ctx.err(
            at,
            format!(
                "has {} matches; at most {MATCHES_MAX} allowed",
                rule.matches.len()
            ),
        );
        return None;
    }
    let before = ctx.problems.len();
    let mut facts = RuleFacts::default();
    let mut matches = Vec::new();
    for (mi, m) in rule.matches.iter().enumerate() {
        let mat = format!("{at} match {}", mi + 1);
        if let Some(b) = base {
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
        if let Some(conv) = convert_match(ctx, &mat, m, sets, &mut facts) {
            matches.push(conv);
        }
    }
    let statements = convert_statements(ctx, at, &rule.statements);
    let action = convert_action(ctx, at, &rule.action, &facts, infos, hooks);
    if let Some(c) = &rule.comment {
        check_text(ctx, at, "comment", c, COMMENT_MAX, fields::comment_problem);
    }
    if ctx.problems.len() != before {
        return None;
    }
    Some(ir::Rule {
        matches,
        statements,
        action: action?,
        comment: rule.comment.clone(),
    })
}

/// The place of statement `i` (from 0) of the rule at `at`.
fn statement_at(at: &str, i: usize) -> String {
    format!("{at} statement {}", i + 1)
}

fn convert_statements(ctx: &mut Ctx, at: &str, statements: &[wit::Statement]) -> Vec<Statement> {
    let mut out = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let at = statement_at(at, i);
        match s {
            wit::Statement::Counter => out.push(Statement::Counter),
            wit::Statement::Log(log) => {
                if let Some(p) = &log.prefix {
                    check_text(
                        ctx,
                        &at,
                        "log prefix",
                        p,
                        LOG_PREFIX_MAX,
                        fields::log_prefix_problem,
                    );
                }
                if log.level.is_some() || log.limit.is_some() {
                    not_yet(ctx, &at, "a log level or limit");
                }
                out.push(Statement::Log {
                    prefix: log.prefix.clone(),
                });
            }
            _ => not_yet(ctx, &at, "this statement"),
        }
    }
    out
}

/// A construct of the 0.2 contract this runtime does not apply yet.
pub(super) fn not_yet(ctx: &mut Ctx, at: &str, what: &str) {
    ctx.err(
        at,
        format!("{what} is in the 0.2 contract but this runtime cannot apply it yet"),
    );
}

/// A string the kernel keeps and nft lists: at most `max` bytes, and only
/// characters nft lists and loads back as they are (`problem`).
fn check_text(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    text: &str,
    max: usize,
    problem: fn(&str) -> Option<String>,
) {
    if text.len() > max {
        ctx.err(
            at,
            format!("{what} is {} bytes long; at most {max} allowed", text.len()),
        );
    } else if let Some(p) = problem(text) {
        ctx.err(at, format!("{what} {p}"));
    }
}

fn check_ifname(ctx: &mut Ctx, at: &str, name: &str) -> bool {
    let problem = fields::match_ifname_problem(name);
    if let Some(p) = &problem {
        ctx.err(at, format!("interface name {} {p}", quote(name)));
    }
    problem.is_none()
}

fn parse_prefix(text: &str) -> Result<IpNetwork, String> {
    let net: IpNetwork = match text.parse::<IpAddr>() {
        Ok(ip) => IpNetwork::from(ip),
        Err(_) => text.parse().map_err(|_| {
            format!(
                "{} is not an IPv4 or IPv6 address or prefix (like 192.168.0.0/24)",
                quote(text)
            )
        })?,
    };
    if net.network() != net.ip() {
        return Err(format!(
            "prefix {} has host bits set; did you mean {}/{}?",
            quote(text),
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
}

fn transport(ctx: &mut Ctx, at: &str, t: wit::Transport) -> Option<Transport> {
    match t {
        wit::Transport::Tcp => Some(Transport::Tcp),
        wit::Transport::Udp => Some(Transport::Udp),
        wit::Transport::Sctp => {
            not_yet(ctx, at, "sctp");
            None
        }
    }
}

pub(super) fn hook(h: wit::Hook) -> Hook {
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
pub(super) type SetKinds<'a> = HashMap<&'a str, SetKind>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SetKind {
    Addr(Family),
    Ports,
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
        let proto = transport(ctx, at, p.protocol)?;
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
                _ => {
                    not_yet(ctx, at, "this protocol");
                    return None;
                }
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
                    ctx.err(at, format!("set {} holds ports, not addresses", quote(set)));
                    None
                }
                None => {
                    ctx.err(at, format!("unknown set {}", quote(set)));
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
            let proto = transport(ctx, at, r.protocol)?;
            l4(ctx, facts, proto.l4(), false);
            match sets.get(r.set.as_str()) {
                Some(SetKind::Ports) => (!negate).then(|| Match::PortInSet {
                    dir,
                    proto,
                    set: r.set.clone(),
                }),
                Some(SetKind::Addr(_)) => {
                    ctx.err(
                        at,
                        format!("set {} holds addresses, not ports", quote(&r.set)),
                    );
                    None
                }
                None => {
                    ctx.err(at, format!("unknown set {}", quote(&r.set)));
                    None
                }
            }
        }
        _ => {
            not_yet(ctx, at, "this match");
            None
        }
    }
}

fn nat_target(ctx: &mut Ctx, at: &str, t: &wit::NatTarget, facts: &RuleFacts) -> Option<NatTarget> {
    let address: IpAddr = match t.address.parse() {
        Ok(a) => a,
        Err(_) => {
            ctx.err(
                at,
                format!(
                    "NAT target {} is not an IPv4 or IPv6 address",
                    quote(&t.address)
                ),
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
    if t.last_address.is_some() || t.flags != wit::NatFlags::empty() {
        not_yet(ctx, at, "a NAT range or NAT flags");
        ok = false;
    }
    let port = match t.ports {
        Some(r) if r.first != r.last => {
            not_yet(ctx, at, "a NAT port range");
            ok = false;
            None
        }
        r => r.map(|r| r.first),
    };
    if let Some(port) = port {
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
    ok.then_some(NatTarget { address, port })
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
        wit::Action::Reject(Some(_)) => {
            not_yet(ctx, at, "a reject type");
            None
        }
        wit::Action::Reject(None) => require(
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
                    ctx.err(at, format!("{verb} to unknown chain {}", quote(target)));
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
        wit::Action::Masquerade(None) => {
            require(ctx, "masquerade", true, &[Hook::Postrouting]).then_some(Action::Masquerade)
        }
        _ => {
            not_yet(ctx, at, "this action");
            None
        }
    }
}
