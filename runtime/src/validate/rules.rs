//! One rule of a policy's answer: its matches, statements and action, each
//! checked against the rest of the rule and against the hooks the rule runs
//! in, and converted to the IR. The rule's own parts are here; matches are
//! in `matches`, statements and actions in `actions`.

use std::collections::{BTreeSet, HashMap};

use super::actions::{Objects, convert_action, convert_statements};
use super::graph::Reach;
use super::matches::{Env, as_listed, convert_match, reads};
use super::{COMMENT_MAX, ChainInfo, Ctx, MATCHES_MAX};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{self, BaseChain, Family, Hook, L4Proto};

/// Converts one rule of a chain whose base is `base` (none for a regular
/// chain) and that runs in `hooks`; None when something is wrong with it
/// (each problem is in `ctx`).
pub(super) fn convert_rule(
    ctx: &mut Ctx,
    at: &str,
    rule: &wit::Rule,
    base: Option<&BaseChain>,
    declared: &Declared,
    infos: &HashMap<&str, ChainInfo>,
    hooks: &BTreeSet<Reach>,
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
            if reads(&m.matcher, wit::Field::Oifname)
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
            if reads(&m.matcher, wit::Field::Iifname) && b.hook == Hook::Output {
                ctx.err(&mat, "iifname is unknown on the output hook (locally generated packets have no input interface)");
            }
        }
        if let Some(conv) = convert_match(ctx, &mat, m, &declared.env, hooks, &mut facts) {
            matches.push(conv);
        }
    }
    let matches = if ctx.problems.len() == before {
        as_listed(ctx, at, matches).unwrap_or_default()
    } else {
        matches
    };
    let statements = convert_statements(ctx, at, rule, &facts, &declared.objects, hooks);
    let action = convert_action(ctx, at, &rule.action, &facts, &declared.sets, infos, hooks);
    if let Some(c) = &rule.comment {
        check_text(ctx, at, "comment", c, COMMENT_MAX, fields::comment_problem);
    }
    let cut_flows = rule
        .statements
        .iter()
        .filter(|s| matches!(s, wit::Statement::CutFlows))
        .count();
    if cut_flows > 1 {
        ctx.err(at, "has `cut-flows` more than once");
    }
    if ctx.problems.len() != before {
        return None;
    }
    Some(ir::Rule {
        matches,
        statements,
        action: action?,
        comment: rule.comment.clone(),
        cut_flows: cut_flows > 0,
    })
}

/// A string the kernel keeps and nft lists: at most `max` bytes, and only
/// characters nft lists and loads back as they are (`problem`).
pub(super) fn check_text(
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
pub(super) struct RuleFacts {
    pub family: Option<Family>,
    pub l4: Option<L4Proto>,
}

/// What a rule may name besides chains: the policy's sets (the matches'
/// view, with the local time), its sets and maps (the actions'), and its
/// objects.
pub(super) struct Declared<'a, 'b> {
    pub env: Env<'a, 'b>,
    pub sets: SetKinds<'a>,
    pub objects: Objects<'a>,
}

/// Sets and maps declared by the policy: name -> kind.
pub(super) type SetKinds<'a> = HashMap<&'a str, &'a ir::SetKind>;
