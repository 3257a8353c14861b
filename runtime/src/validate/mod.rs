//! Validation: turns the ruleset a policy returned (WIT types) into the rule
//! IR, or into a list of problems, each naming where it is and what is wrong.
//! Pure: no I/O. This file is the entry and the report; the checks are by
//! concern: `rules` (matches and actions), `graph` (jumps), `sets`, `maps`,
//! `objects` (counters, limits, helpers, flowtables) and `sysctls`.

mod actions;
pub mod budget;
mod graph;
mod maps;
mod matches;
mod objects;
mod rules;
mod sets;
mod sysctls;
mod time;
mod values;

use std::collections::HashMap;
use std::fmt;

use crate::bindings::wit;
use crate::ir::{self, BaseChain, ChainPolicy, ChainType, Hook};
use crate::sysctl::AllowList;
use rules::SetKinds;
pub use time::LocalTime;

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

/// Elements one set may have at most, unless the config says.
pub const DEFAULT_MAX_SET_ELEMENTS: usize = 100_000;
/// Elements one set of ports may have at most, whatever the config says:
/// the kernel keeps a set of 2-byte keys in its bitmap backend, whose
/// insert walks every element already in the set, so loading one costs the
/// square of its size: with `nft -f` alone, 4,096 ports 0.07 s, 10,000
/// 0.37 s, 20,000 2.1 s (the `kernel-memory` example), and 65,535 about
/// 40 s (the report), all of it kernel time holding the nftables
/// lock.
pub const PORT_SET_ELEMENTS_MAX: usize = 4_096;
/// Sysctls one policy's answer may ask for at most, unless the config says:
/// a router with 100 interfaces setting every allow-listed key on each.
pub const DEFAULT_MAX_SYSCTLS: usize = 1024;

/// Limits on the size of one policy's output, and the sysctls it may ask
/// for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rules, chains, base chains, sets and elements, all together.
    pub budget: budget::PolicyBudget,
    /// Elements of one set.
    pub max_set_elements: usize,
    pub sysctls: AllowList,
    /// Sysctls one answer may ask for at most.
    pub max_sysctls: usize,
    /// The local time zone that time matches are in.
    pub local_time: LocalTime,
}

/// What a config that says nothing about them gives.
impl Default for Options {
    fn default() -> Self {
        Options {
            budget: budget::PolicyBudget::default(),
            max_set_elements: DEFAULT_MAX_SET_ELEMENTS,
            sysctls: AllowList::default(),
            max_sysctls: DEFAULT_MAX_SYSCTLS,
            local_time: LocalTime::system(),
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

pub(super) struct Ctx {
    pub(super) problems: Vec<Problem>,
}

impl Ctx {
    pub(super) fn err(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }
}

pub(super) fn check_name(ctx: &mut Ctx, at: &str, what: &str, name: &str) -> bool {
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

pub(super) struct ChainInfo {
    pub(super) base: Option<BaseChain>,
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

/// Validates a policy's ruleset and converts it to the IR. `features` are
/// the kernel's, as the policy saw them in its world state.
pub fn validate(
    ruleset: &wit::Ruleset,
    opts: &Options,
    features: &wit::KernelFeatures,
) -> Result<ir::Ruleset, Invalid> {
    let mut ctx = Ctx {
        problems: Vec::new(),
    };

    // Counted before anything is converted: an answer over budget costs a
    // pass over it, not the work its size would.
    let overruns = budget::policy_overruns(&budget::Counts::of_answer(ruleset), &opts.budget);
    if !overruns.is_empty() {
        for problem in overruns {
            ctx.err("", problem);
        }
        return Err(Invalid {
            problems: ctx.problems,
        });
    }

    let mut sets = sets::convert_sets(&mut ctx, opts, &ruleset.sets);
    let converted = objects::convert_objects(&mut ctx, ruleset, features);
    let for_matches = matches::Declared::of(ruleset);

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
        let base = chain.base.as_ref().and_then(|b| {
            Some(BaseChain {
                hook: rules::hook(b.hook),
                chain_type: match b.type_ {
                    wit::ChainType::Filter => ChainType::Filter,
                    wit::ChainType::Nat => ChainType::Nat,
                    wit::ChainType::Route => ChainType::Route,
                },
                priority: priority(&mut ctx, &at, b.priority)?,
                policy: match b.policy {
                    wit::ChainPolicy::Accept => ChainPolicy::Accept,
                    wit::ChainPolicy::Drop => ChainPolicy::Drop,
                },
            })
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
            if b.chain_type == ChainType::Route && b.hook != Hook::Output {
                ctx.err(
                    &at,
                    format!(
                        "a route chain hooks output only (it routes again what this machine sends); this one hooks {}",
                        b.hook.as_str()
                    ),
                );
            }
        }
        infos.insert(chain.name.as_str(), ChainInfo { base });
    }

    // Maps after the chains, which their verdicts name.
    let maps = maps::convert_maps(&mut ctx, opts, &ruleset.maps, &infos, &sets);
    sets.extend(maps);
    let set_kinds: SetKinds = sets
        .iter()
        .map(|s| (s.name.as_str(), &s.elements.kind))
        .collect();
    let declared = rules::Declared {
        env: matches::Env {
            declared: &for_matches,
            local_time: opts.local_time,
        },
        sets: set_kinds,
        objects: actions::Objects::of(ruleset),
    };

    let targets = maps::map_targets(&ruleset.maps);
    if let Some(cycle) = graph::find_cycle(&ruleset.chains, &targets) {
        ctx.err(
            format!("chain {:?}", cycle[0]),
            format!("jump loop: {}", cycle.join(" -> ")),
        );
    } else if let Some(path) = graph::too_deep(&ruleset.chains, &infos, &targets) {
        ctx.err(
            format!("chain {:?}", path[path.len() - 1]),
            format!(
                "reached through {} nested jumps or gotos ({}); the kernel allows at most {JUMP_DEPTH_MAX}",
                path.len() - 1,
                graph::shorten_path(&path)
            ),
        );
    }
    let reach = graph::reaching_hooks(&ruleset.chains, &infos, &targets);

    let mut chains = Vec::new();
    for chain in &ruleset.chains {
        let Some(info) = infos.get(chain.name.as_str()) else {
            continue;
        };
        let hooks = reach.get(&chain.name).cloned().unwrap_or_default();
        let rules = chain
            .rules
            .iter()
            .enumerate()
            .filter_map(|(ri, rule)| {
                let at = format!("chain {:?} rule {}", chain.name, ri + 1);
                rules::convert_rule(
                    &mut ctx,
                    &at,
                    rule,
                    info.base.as_ref(),
                    &declared,
                    &infos,
                    &hooks,
                )
            })
            .collect();
        chains.push(ir::Chain {
            name: chain.name.clone(),
            base: info.base,
            rules,
        });
    }

    let sysctls = sysctls::convert_sysctls(&mut ctx, opts, &ruleset.sysctls);

    if ctx.problems.is_empty() {
        Ok(ir::Ruleset {
            chains,
            sets,
            objects: converted.objects,
            flowtables: converted.flowtables,
            sysctls,
        })
    } else {
        Err(Invalid {
            problems: ctx.problems,
        })
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

/// A base chain's priority as a number; a named one is the kernel's
/// standard value for the name plus the offset.
fn priority(ctx: &mut Ctx, at: &str, p: wit::Priority) -> Option<i32> {
    let wit::Priority::Named(named) = p else {
        let wit::Priority::Number(n) = p else {
            unreachable!()
        };
        return Some(n);
    };
    let base = match named.name {
        wit::PriorityName::Raw => -300,
        wit::PriorityName::Mangle => -150,
        wit::PriorityName::Dstnat => -100,
        wit::PriorityName::Filter => 0,
        wit::PriorityName::Security => 50,
        wit::PriorityName::Srcnat => 100,
    };
    let sum = named.offset.checked_add(base);
    if sum.is_none() {
        ctx.err(
            at,
            format!("priority offset {} is out of range", named.offset),
        );
    }
    sum
}
