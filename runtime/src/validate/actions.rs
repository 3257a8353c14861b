//! A rule's statements (counters, logs, marks, DSCP, conntrack, MSS,
//! offload) and its action (verdicts, jumps, reject, NAT), each checked
//! against the rule's matches, the objects the policy declares and the
//! base chains the rule runs from, and converted to the IR.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use super::graph::Reach;
use super::maps;
use super::rules::{RuleFacts, SetKinds, check_text};
use super::{ChainInfo, Ctx, LOG_PREFIX_MAX, NAT_PRIORITY_FLOOR};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{
    Action, Family, Hook, IcmpReject, Icmpv6Reject, IcmpxReject, L4Proto, LogLevel, MarkUpdate,
    MssClamp, NatFlags, NatTarget, PortRange, Rate, RejectWith, Statement, TimeUnit,
};
use crate::text::quote;

/// Connection tracking hooks at this priority (NF_IP_PRI_CONNTRACK; the
/// floor of nat chains is the same value for the same reason).
const CONNTRACK_PRIORITY: i32 = NAT_PRIORITY_FLOOR;

/// The objects a policy declares that rules refer to by name.
pub(super) struct Objects<'a> {
    counters: HashSet<&'a str>,
    /// Name -> the protocol the helper follows.
    ct_helpers: HashMap<&'a str, wit::Transport>,
    flowtables: HashSet<&'a str>,
}

impl<'a> Objects<'a> {
    pub(super) fn of(ruleset: &'a wit::Ruleset) -> Objects<'a> {
        Objects {
            counters: ruleset.counters.iter().map(|c| c.name.as_str()).collect(),
            ct_helpers: ruleset
                .ct_helpers
                .iter()
                .map(|h| (h.name.as_str(), h.protocol))
                .collect(),
            flowtables: ruleset.flowtables.iter().map(|f| f.name.as_str()).collect(),
        }
    }
}

/// The place of statement `i` (from 0) of the rule at `at`.
fn statement_at(at: &str, i: usize) -> String {
    format!("{at} statement {}", i + 1)
}

/// Where a construct may run: a kind of chain (none: any), hooks, and for
/// some a side of connection tracking.
struct Place<'a> {
    what: &'a str,
    nat: Option<bool>,
    hooks: &'a [Hook],
    conntrack: Option<Side>,
}

#[derive(Clone, Copy)]
enum Side {
    /// Priority below conntrack's.
    Before,
    /// Priority above conntrack's.
    After,
}

impl Side {
    fn fits(self, priority: i32) -> bool {
        match self {
            Side::Before => priority < CONNTRACK_PRIORITY,
            Side::After => priority > CONNTRACK_PRIORITY,
        }
    }

    fn text(self) -> String {
        match self {
            Side::Before => format!(
                " that run before connection tracking (priority below {CONNTRACK_PRIORITY})"
            ),
            Side::After => {
                format!(" that run after connection tracking (priority above {CONNTRACK_PRIORITY})")
            }
        }
    }
}

fn kind_text(nat: Option<bool>) -> &'static str {
    match nat {
        Some(true) => "nat ",
        Some(false) => "filter ",
        None => "",
    }
}

/// Checks that every base chain the rule runs from (`hooks`) suits `place`;
/// a chain reached from none cannot suit it.
fn check_place(ctx: &mut Ctx, at: &str, hooks: &BTreeSet<Reach>, place: &Place) -> bool {
    let fits = |r: &Reach| {
        place.nat.is_none_or(|nat| nat == r.nat)
            && place.hooks.contains(&r.hook)
            && place.conntrack.is_none_or(|side| side.fits(r.priority))
    };
    let hooks_text: Vec<&str> = place.hooks.iter().map(|h| h.as_str()).collect();
    let hooks_text = hooks_text.join(" or ");
    let kind = kind_text(place.nat);
    let side = place.conntrack.map(Side::text).unwrap_or_default();
    let what = place.what;
    if hooks.is_empty() {
        ctx.err(
            at,
            format!("{what} needs a {kind}chain on {hooks_text}{side}; this chain is not reached from any base chain"),
        );
        return false;
    }
    let bad: Vec<String> = hooks
        .iter()
        .filter(|r| !fits(r))
        .map(|r| {
            let mut text = format!("{}{}", kind_text(Some(r.nat)), r.hook.as_str());
            if place.conntrack.is_some() {
                text.push_str(&format!(" at priority {}", r.priority));
            }
            text
        })
        .collect();
    if bad.is_empty() {
        return true;
    }
    ctx.err(
        at,
        format!(
            "{what} is only allowed in {kind}chains on {hooks_text}{side}, but this rule runs in: {}",
            bad.join(", ")
        ),
    );
    false
}

/// Whether the rule matches TCP SYNs by a `tcp-flags` match: syn is in the
/// flags and in the mask, not negated (`tcp flags syn / fin,syn,rst`).
fn matches_tcp_syn(matches: &[wit::MatchExpr]) -> bool {
    matches.iter().any(|m| match &m.matcher {
        wit::Matcher::TcpFlags(t) => {
            !m.negate && t.flags.contains(wit::TcpFlags::SYN) && t.mask.contains(wit::TcpFlags::SYN)
        }
        _ => false,
    })
}

/// Whether the rule's matches pin a protocol with ports.
fn has_transport(facts: &RuleFacts) -> bool {
    matches!(facts.l4, Some(L4Proto::Tcp | L4Proto::Udp))
}

pub(super) fn convert_statements(
    ctx: &mut Ctx,
    at: &str,
    rule: &wit::Rule,
    facts: &RuleFacts,
    objects: &Objects,
    hooks: &BTreeSet<Reach>,
) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut limited_log = None;
    for (i, s) in rule.statements.iter().enumerate() {
        let at = statement_at(at, i);
        if let Some(log) = limited_log {
            ctx.err(
                &at,
                format!("follows the limited log of statement {log}: the limit would stop it too for the packets over the rate; put it before the log"),
            );
        }
        let converted = match s {
            wit::Statement::Counter => Some(Statement::Counter),
            wit::Statement::CounterNamed(name) => objects
                .counters
                .contains(name.as_str())
                .then(|| Statement::CounterNamed(name.clone()))
                .or_else(|| {
                    ctx.err(&at, format!("unknown counter {}", quote(name)));
                    None
                }),
            wit::Statement::Log(log) => {
                if log.limit.is_some() {
                    limited_log = Some(i + 1);
                }
                convert_log(ctx, &at, log, &rule.action)
            }
            wit::Statement::Mark(u) => convert_mark(ctx, &at, "mark", u).map(Statement::Mark),
            wit::Statement::CtMark(u) => {
                convert_mark(ctx, &at, "ct mark", u).map(Statement::CtMark)
            }
            wit::Statement::Dscp(d) => convert_dscp(ctx, &at, d, facts),
            wit::Statement::Notrack => {
                let place = Place {
                    what: "notrack",
                    nat: None,
                    hooks: &[Hook::Prerouting, Hook::Output],
                    conntrack: Some(Side::Before),
                };
                check_place(ctx, &at, hooks, &place).then_some(Statement::Notrack)
            }
            wit::Statement::CtHelper(name) => convert_ct_helper(ctx, &at, name, facts, objects)
                .filter(|_| {
                    let place = Place {
                        what: "ct-helper",
                        nat: None,
                        hooks: &[Hook::Prerouting, Hook::Output],
                        conntrack: Some(Side::After),
                    };
                    check_place(ctx, &at, hooks, &place)
                }),
            wit::Statement::Mss(clamp) => convert_mss(ctx, &at, clamp, &rule.matches, hooks),
            // A flag of the rule, not a kernel statement (see `rule_flags`).
            wit::Statement::CutFlows => None,
            wit::Statement::Offload(name) => {
                let known = objects.flowtables.contains(name.as_str());
                if !known {
                    ctx.err(&at, format!("unknown flowtable {}", quote(name)));
                }
                let place = Place {
                    what: "offload",
                    nat: Some(false),
                    hooks: &[Hook::Forward],
                    conntrack: None,
                };
                let placed = check_place(ctx, &at, hooks, &place);
                (known && placed).then(|| Statement::Offload(name.clone()))
            }
        };
        out.extend(converted);
    }
    out
}

fn convert_log(ctx: &mut Ctx, at: &str, log: &wit::Log, action: &wit::Action) -> Option<Statement> {
    let before = ctx.problems.len();
    if let Some(p) = &log.prefix {
        check_text(
            ctx,
            at,
            "log prefix",
            p,
            LOG_PREFIX_MAX,
            fields::log_prefix_problem,
        );
    }
    let level = match log.level {
        None | Some(wit::LogLevel::Warn) => None,
        Some(wit::LogLevel::Emerg) => Some(LogLevel::Emerg),
        Some(wit::LogLevel::Alert) => Some(LogLevel::Alert),
        Some(wit::LogLevel::Crit) => Some(LogLevel::Crit),
        Some(wit::LogLevel::Err) => Some(LogLevel::Err),
        Some(wit::LogLevel::Notice) => Some(LogLevel::Notice),
        Some(wit::LogLevel::Info) => Some(LogLevel::Info),
        Some(wit::LogLevel::Debug) => Some(LogLevel::Debug),
    };
    let limit = log
        .limit
        .as_ref()
        .and_then(|r| convert_rate(ctx, at, "the log's", r));
    if log.limit.is_some() && !matches!(action, wit::Action::Continue) {
        ctx.err(
            at,
            "a limited log needs the rule to end in continue: the limit comes before the log and would hold back the rule's action too for the packets over the rate",
        );
    }
    (ctx.problems.len() == before).then(|| Statement::Log {
        prefix: log.prefix.clone(),
        level,
        limit,
    })
}

/// Converts a rate, refusing what the kernel's limit refuses: a rate of 0,
/// and a rate and burst whose token bucket overflows 64 bits of
/// nanoseconds (as it computes it: packets, unit / rate * burst; bytes,
/// unit * (rate + burst)). `whose` names the rate in the message.
pub(super) fn convert_rate(ctx: &mut Ctx, at: &str, whose: &str, r: &wit::Rate) -> Option<Rate> {
    let per = match r.per {
        wit::TimeUnit::Second => TimeUnit::Second,
        wit::TimeUnit::Minute => TimeUnit::Minute,
        wit::TimeUnit::Hour => TimeUnit::Hour,
        wit::TimeUnit::Day => TimeUnit::Day,
        wit::TimeUnit::Week => TimeUnit::Week,
    };
    if r.amount == 0 {
        ctx.err(
            at,
            format!(
                "{whose} rate is 0 per {}: it would let nothing through, and the kernel refuses it",
                per.as_str()
            ),
        );
        return None;
    }
    let burst = if r.burst == 0 && !r.bytes {
        Rate::DEFAULT_PACKET_BURST
    } else {
        r.burst
    };
    let nanos = per.seconds() * 1_000_000_000;
    let with_burst = r.amount.checked_add(u64::from(burst));
    let bucket = if r.bytes {
        with_burst.and_then(|b| nanos.checked_mul(b))
    } else {
        with_burst.and_then(|_| (nanos / r.amount).checked_mul(u64::from(burst)))
    };
    if bucket.is_none() {
        ctx.err(
            at,
            format!(
                "{whose} rate {} per {} with a burst of {burst} is more than the kernel's limit can count; it refuses it",
                r.amount,
                per.as_str()
            ),
        );
        return None;
    }
    Some(Rate {
        amount: r.amount,
        bytes: r.bytes,
        per,
        burst,
    })
}

/// A mark update in the kernel's form; `key` names the mark in messages.
fn convert_mark(ctx: &mut Ctx, at: &str, key: &str, u: &wit::MarkUpdate) -> Option<MarkUpdate> {
    let update = match *u {
        wit::MarkUpdate::Set(v) => MarkUpdate::Set(v),
        wit::MarkUpdate::And(m) => MarkUpdate::Bitwise { mask: m, xor: 0 },
        wit::MarkUpdate::Or(v) => MarkUpdate::Bitwise { mask: !v, xor: v },
        wit::MarkUpdate::Xor(v) => MarkUpdate::Bitwise {
            mask: u32::MAX,
            xor: v,
        },
        wit::MarkUpdate::Masked(wit::MaskedMark { value, mask }) => {
            if value & !mask != 0 {
                ctx.err(
                    at,
                    format!("{key} value {value:#x} has bits outside its mask {mask:#x}"),
                );
                return None;
            }
            if mask == u32::MAX {
                // Every bit given: that is setting the mark.
                MarkUpdate::Set(value)
            } else {
                MarkUpdate::Bitwise {
                    mask: !mask,
                    xor: value,
                }
            }
        }
    };
    if update
        == (MarkUpdate::Bitwise {
            mask: u32::MAX,
            xor: 0,
        })
    {
        ctx.err(at, format!("this {key} update changes no bit"));
        return None;
    }
    Some(update)
}

fn convert_dscp(
    ctx: &mut Ctx,
    at: &str,
    d: &wit::DscpUpdate,
    facts: &RuleFacts,
) -> Option<Statement> {
    let family = match d.family {
        wit::IpFamily::Ipv4 => Family::V4,
        wit::IpFamily::Ipv6 => Family::V6,
    };
    let mut ok = true;
    if d.value > 63 {
        ctx.err(at, format!("DSCP {} is out of range (0-63)", d.value));
        ok = false;
    }
    if let Some(f) = facts.family
        && f != family
    {
        ctx.err(
            at,
            format!(
                "sets the {} DSCP but the rule matches {} packets only",
                family.keyword(),
                f.nfproto_name()
            ),
        );
        ok = false;
    }
    ok.then_some(Statement::Dscp {
        family,
        value: d.value,
    })
}

fn convert_ct_helper(
    ctx: &mut Ctx,
    at: &str,
    name: &str,
    facts: &RuleFacts,
    objects: &Objects,
) -> Option<Statement> {
    let Some(protocol) = objects.ct_helpers.get(name) else {
        ctx.err(at, format!("unknown ct helper {}", quote(name)));
        return None;
    };
    let helper_l4 = match protocol {
        wit::Transport::Tcp => Some(L4Proto::Tcp),
        wit::Transport::Udp => Some(L4Proto::Udp),
        wit::Transport::Sctp => None,
    };
    if let Some(l4) = facts.l4
        && Some(l4) != helper_l4
    {
        ctx.err(
            at,
            format!(
                "ct helper {} follows {} but the rule matches {}: it would never attach",
                quote(name),
                match protocol {
                    wit::Transport::Tcp => "tcp",
                    wit::Transport::Udp => "udp",
                    wit::Transport::Sctp => "sctp",
                },
                l4
            ),
        );
        return None;
    }
    Some(Statement::CtHelper(name.to_string()))
}

fn convert_mss(
    ctx: &mut Ctx,
    at: &str,
    clamp: &wit::MssClamp,
    matches: &[wit::MatchExpr],
    hooks: &BTreeSet<Reach>,
) -> Option<Statement> {
    let mut ok = true;
    if !matches_tcp_syn(matches) {
        ctx.err(
            at,
            "an MSS clamp needs the rule to match TCP SYNs: a tcp-flags match with syn in its flags and its mask (e.g. flags syn, mask fin|syn|rst)",
        );
        ok = false;
    }
    let clamp = match *clamp {
        wit::MssClamp::PathMtu => {
            // The kernel knows a packet's route (rt mtu) only once it is
            // routed, and refuses the expression elsewhere.
            let place = Place {
                what: "an MSS clamp to the path MTU",
                nat: None,
                hooks: &[Hook::Forward, Hook::Output, Hook::Postrouting],
                conntrack: None,
            };
            ok &= check_place(ctx, at, hooks, &place);
            MssClamp::PathMtu
        }
        wit::MssClamp::Size(0) => {
            ctx.err(at, "an MSS of 0 is not a segment size");
            return None;
        }
        wit::MssClamp::Size(size) => MssClamp::Size(size),
    };
    ok.then_some(Statement::Mss(clamp))
}

/// A port range of a NAT action; `what` names it in messages.
fn port_range(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    r: &wit::PortRange,
    facts: &RuleFacts,
) -> Option<PortRange> {
    let mut ok = true;
    if r.first == 0 || r.last == 0 {
        ctx.err(
            at,
            format!("{what} port 0 is not a valid port (use 1-65535)"),
        );
        ok = false;
    } else if r.last < r.first {
        ctx.err(
            at,
            format!(
                "{what} port range {}-{} is empty (last < first)",
                r.first, r.last
            ),
        );
        ok = false;
    }
    if !has_transport(facts) {
        ctx.err(
            at,
            format!("a {what} port needs a tcp or udp match in the rule (e.g. a dport match)"),
        );
        ok = false;
    }
    ok.then_some(PortRange {
        first: r.first,
        last: r.last,
    })
}

fn parse_address(ctx: &mut Ctx, at: &str, what: &str, text: &str) -> Option<IpAddr> {
    let parsed = text.parse().ok();
    if parsed.is_none() {
        ctx.err(
            at,
            format!("{what} {} is not an IPv4 or IPv6 address", quote(text)),
        );
    }
    parsed
}

fn nat_target(ctx: &mut Ctx, at: &str, t: &wit::NatTarget, facts: &RuleFacts) -> Option<NatTarget> {
    let before = ctx.problems.len();
    let address = parse_address(ctx, at, "NAT target", &t.address)?;
    let last_address = match &t.last_address {
        None => None,
        Some(text) => {
            let last = parse_address(ctx, at, "NAT range end", text)?;
            if Family::of(&last) != Family::of(&address) {
                ctx.err(
                    at,
                    format!("NAT range {address}-{last} mixes IPv4 and IPv6"),
                );
            } else if last < address {
                ctx.err(
                    at,
                    format!("NAT range {address}-{last} is empty (last < first)"),
                );
            }
            // A range of one address is that address.
            (last != address).then_some(last)
        }
    };
    if let Some(f) = facts.family
        && f != Family::of(&address)
    {
        ctx.err(
            at,
            format!("NAT target {address} is not of the address family the rule matches"),
        );
    }
    let ports = t
        .ports
        .as_ref()
        .and_then(|r| port_range(ctx, at, "NAT target", r, facts));
    let flags = NatFlags {
        random: t.flags.contains(wit::NatFlags::RANDOM),
        fully_random: t.flags.contains(wit::NatFlags::FULLY_RANDOM),
        persistent: t.flags.contains(wit::NatFlags::PERSISTENT),
    };
    (ctx.problems.len() == before).then_some(NatTarget {
        address,
        last_address,
        ports,
        flags,
    })
}

/// The ports of a masquerade or redirect.
fn action_ports(
    ctx: &mut Ctx,
    at: &str,
    what: &str,
    ports: &Option<wit::PortRange>,
    facts: &RuleFacts,
) -> Result<Option<PortRange>, ()> {
    match ports {
        None => Ok(None),
        Some(r) => port_range(ctx, at, what, r, facts).map(Some).ok_or(()),
    }
}

pub(super) fn convert_action(
    ctx: &mut Ctx,
    at: &str,
    action: &wit::Action,
    facts: &RuleFacts,
    sets: &SetKinds,
    infos: &HashMap<&str, ChainInfo>,
    hooks: &BTreeSet<Reach>,
) -> Option<Action> {
    // The base chains (and chain kinds) this rule can run from; an action
    // must suit all.
    let require = |ctx: &mut Ctx, what: &str, nat: bool, allowed: &[Hook]| {
        let place = Place {
            what,
            nat: Some(nat),
            hooks: allowed,
            conntrack: None,
        };
        check_place(ctx, at, hooks, &place)
    };
    let filter_hooks = [Hook::Input, Hook::Forward, Hook::Output];
    match action {
        wit::Action::Accept => Some(Action::Accept),
        wit::Action::Drop => Some(Action::Drop),
        wit::Action::Return => Some(Action::Return),
        wit::Action::Continue => Some(Action::Continue),
        wit::Action::Reject(with) => {
            let placed = require(ctx, "reject", false, &filter_hooks);
            let with = reject_with(ctx, at, with.as_ref(), facts)?;
            placed.then_some(Action::Reject(with))
        }
        wit::Action::Jump(target) | wit::Action::Goto(target) => {
            let verb = if matches!(action, wit::Action::Jump(_)) {
                "jump"
            } else {
                "goto"
            };
            maps::jumpable(ctx, at, verb, target, infos).then(|| {
                if verb == "jump" {
                    Action::Jump(target.clone())
                } else {
                    Action::Goto(target.clone())
                }
            })
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
        wit::Action::Masquerade(ports) => {
            let ok = require(ctx, "masquerade", true, &[Hook::Postrouting]);
            let ports = action_ports(ctx, at, "masquerade", ports, facts).ok()?;
            ok.then_some(Action::Masquerade(ports))
        }
        wit::Action::Redirect(ports) => {
            let ok = require(ctx, "redirect", true, &[Hook::Prerouting, Hook::Output]);
            let ports = action_ports(ctx, at, "redirect", ports, facts).ok()?;
            ok.then_some(Action::Redirect(ports))
        }
        wit::Action::Vmap(_) | wit::Action::DnatMap(_) | wit::Action::SnatMap(_) => {
            let cx = maps::Context {
                facts,
                sets,
                chains: infos,
            };
            let mut nat_allowed = |ctx: &mut Ctx, what: &str| match what {
                "dnat" => require(ctx, "dnat", true, &[Hook::Prerouting, Hook::Output]),
                _ => require(ctx, "snat", true, &[Hook::Postrouting, Hook::Input]),
            };
            maps::map_action(ctx, at, action, &cx, &mut nat_allowed)
        }
    }
}

/// How a reject answers; none gives a TCP reset to a rule that matches
/// TCP only and ICMP(v6) port unreachable (icmpx) to any other.
fn reject_with(
    ctx: &mut Ctx,
    at: &str,
    with: Option<&wit::RejectWith>,
    facts: &RuleFacts,
) -> Option<RejectWith> {
    let tcp = facts.l4 == Some(L4Proto::Tcp);
    let Some(with) = with else {
        return Some(if tcp {
            RejectWith::TcpReset
        } else {
            RejectWith::Icmpx(IcmpxReject::PortUnreachable)
        });
    };
    // The family an ICMP answer needs the rule to match.
    let needs_family = |ctx: &mut Ctx, kind: &str, family: Family| {
        if facts.family == Some(family) {
            return true;
        }
        ctx.err(
            at,
            format!(
                "reject with {kind} answers {} packets only, so the rule must match {} (e.g. an {} address); or use icmpx",
                family.nfproto_name(),
                family.nfproto_name(),
                family.nfproto_name()
            ),
        );
        false
    };
    match *with {
        wit::RejectWith::TcpReset => {
            if !tcp {
                ctx.err(
                    at,
                    "reject with tcp-reset answers TCP only, so the rule must match tcp (e.g. a tcp dport match)",
                );
                return None;
            }
            Some(RejectWith::TcpReset)
        }
        wit::RejectWith::Icmp(code) => {
            needs_family(ctx, "icmp", Family::V4).then_some(RejectWith::Icmp(match code {
                wit::IcmpReject::NetUnreachable => IcmpReject::NetUnreachable,
                wit::IcmpReject::HostUnreachable => IcmpReject::HostUnreachable,
                wit::IcmpReject::ProtUnreachable => IcmpReject::ProtUnreachable,
                wit::IcmpReject::PortUnreachable => IcmpReject::PortUnreachable,
                wit::IcmpReject::NetProhibited => IcmpReject::NetProhibited,
                wit::IcmpReject::HostProhibited => IcmpReject::HostProhibited,
                wit::IcmpReject::AdminProhibited => IcmpReject::AdminProhibited,
            }))
        }
        wit::RejectWith::Icmpv6(code) => {
            needs_family(ctx, "icmpv6", Family::V6).then_some(RejectWith::Icmpv6(match code {
                wit::Icmpv6Reject::NoRoute => Icmpv6Reject::NoRoute,
                wit::Icmpv6Reject::AdminProhibited => Icmpv6Reject::AdminProhibited,
                wit::Icmpv6Reject::AddrUnreachable => Icmpv6Reject::AddrUnreachable,
                wit::Icmpv6Reject::PortUnreachable => Icmpv6Reject::PortUnreachable,
                wit::Icmpv6Reject::PolicyFail => Icmpv6Reject::PolicyFail,
                wit::Icmpv6Reject::RejectRoute => Icmpv6Reject::RejectRoute,
            }))
        }
        wit::RejectWith::Icmpx(code) => Some(RejectWith::Icmpx(match code {
            wit::IcmpxReject::NoRoute => IcmpxReject::NoRoute,
            wit::IcmpxReject::PortUnreachable => IcmpxReject::PortUnreachable,
            wit::IcmpxReject::HostUnreachable => IcmpxReject::HostUnreachable,
            wit::IcmpxReject::AdminProhibited => IcmpxReject::AdminProhibited,
        })),
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
