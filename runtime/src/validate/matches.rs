//! A rule's matches: interfaces, addresses and prefixes, protocols, ports,
//! ct states and set lookups, each checked and converted to the IR, with
//! what they imply about the packets (`RuleFacts`) for the checks of the
//! rest of the rule.

use super::Ctx;
use super::rules::{RuleFacts, SetKinds, not_yet};
use super::values::prefix;
use crate::bindings::wit;
use crate::fields;
use crate::ir::{CtStates, Dir, Family, L4Proto, Match, Transport};
use crate::text::quote;

fn check_ifname(ctx: &mut Ctx, at: &str, name: &str) -> bool {
    let problem = fields::match_ifname_problem(name);
    if let Some(p) = &problem {
        ctx.err(at, format!("interface name {} {p}", quote(name)));
    }
    problem.is_none()
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

pub(super) fn convert_match(
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
            match prefix(text) {
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
                Some(kind) if let Some(f) = kind.address_family() => {
                    family(ctx, f);
                    (!negate).then(|| Match::AddrInSet {
                        dir,
                        family: f,
                        set: set.clone(),
                    })
                }
                Some(kind) => {
                    let what = kind.holds();
                    ctx.err(
                        at,
                        format!("set {} holds {what}, not addresses", quote(set)),
                    );
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
                Some(kind) if kind.holds_ports() => (!negate).then(|| Match::PortInSet {
                    dir,
                    proto,
                    set: r.set.clone(),
                }),
                Some(kind) => {
                    let what = kind.holds();
                    ctx.err(at, format!("set {} holds {what}, not ports", quote(&r.set)));
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
