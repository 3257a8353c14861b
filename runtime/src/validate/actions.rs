//! A rule's statements (counter, log) and its action (verdicts, jumps,
//! NAT), each checked against the rule's matches and the hooks the rule
//! runs in, and converted to the IR.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::maps;
use super::rules::{RuleFacts, SetKinds, check_text, not_yet};
use super::{ChainInfo, Ctx, LOG_PREFIX_MAX};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{Action, Family, Hook, L4Proto, NatTarget, Statement};
use crate::text::quote;

/// The place of statement `i` (from 0) of the rule at `at`.
fn statement_at(at: &str, i: usize) -> String {
    format!("{at} statement {}", i + 1)
}

pub(super) fn convert_statements(
    ctx: &mut Ctx,
    at: &str,
    statements: &[wit::Statement],
) -> Vec<Statement> {
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

pub(super) fn convert_action(
    ctx: &mut Ctx,
    at: &str,
    action: &wit::Action,
    facts: &RuleFacts,
    sets: &SetKinds,
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
        _ => {
            not_yet(ctx, at, "this action");
            None
        }
    }
}
