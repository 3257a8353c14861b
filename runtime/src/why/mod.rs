//! `wasmwall why`: the path one packet takes through a desired table, step
//! by step, for a user who asks why it was dropped (or let through). The
//! walk is the one conntrack-exact apply uses ([`crate::flows::walk`],
//! traced); this module turns its steps into a [`Report`] (chains entered,
//! the rules that matched with their nft text, comment and policy, the NAT,
//! the routing and the sysctls it depends on, the verdict) and prints it.
//! Pure: the network and the sysctl values come in as values.

pub mod network;
pub mod packet;
mod text;

use serde::Serialize;

use crate::flows::walk::{Dnat, Event, Route, Snat, Start, Table};
use crate::ir::{Action, CtStates};
use crate::plan::DesiredTable;

pub use network::{Fact, Source, StateNetwork, Sysctls};
pub use packet::{Asked, PACKET_SYNTAX, PacketError, parse};

/// One step of the path, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// A hook reached.
    Hook { hook: String },
    /// A base chain entered.
    Chain {
        chain: String,
        #[serde(rename = "type")]
        chain_type: String,
        priority: String,
        policy: String,
    },
    /// A nat chain passed over (not a connection's first packet).
    NatSkipped { chain: String },
    /// A jump or goto.
    Jump { chain: String, goto: bool },
    /// A rule that matched.
    Rule {
        chain: String,
        position: usize,
        /// The rule as nft lists it.
        rule: String,
        comment: Option<String>,
        /// The policy that made it.
        policy: String,
        /// What it did: accept, drop, reject, dnat, jump, ...
        action: String,
    },
    /// The end of a base chain: its policy decides.
    ChainPolicy { chain: String, policy: String },
    /// The destination NAT the packet got.
    Dnat { to: String },
    /// The source NAT it got.
    Snat { to: String },
    /// The routing decision.
    Routing {
        to: String,
        /// `local`, `forward via IFACE`, `out via IFACE` (the router's
        /// own packet), or `none`.
        route: String,
    },
    /// The kernel's routing drops it.
    RoutingDrop { reason: String },
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Accepted,
    Dropped,
    Rejected,
    /// The walk cannot tell (a rule tests what is not known).
    Unknown,
}

/// What `why` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The packet as understood.
    pub packet: String,
    pub ct_state: String,
    /// Whether it is the router's own (output), else it came in by an
    /// interface.
    pub from_router: bool,
    pub steps: Vec<Step>,
    pub verdict: Verdict,
    /// What decided: the rules (or chain policies, or the routing).
    pub by: String,
    /// The sysctl to set when the routing dropped it.
    pub fix: Option<String>,
    /// The sysctls the path depends on.
    pub sysctls: Vec<Fact>,
    /// The comments of the rules that decided (accepting or dropping ones).
    #[serde(skip)]
    pub deciding_comments: Vec<String>,
    /// Assumptions made and worth saying.
    pub notes: Vec<String>,
}

impl Report {
    /// The report as lines of text, one step a line.
    pub fn text(&self) -> String {
        text::render(self)
    }
}

/// What a rule's action does, in a word.
fn action_word(action: &Action) -> &'static str {
    match action {
        Action::Accept => "accept",
        Action::Drop => "drop",
        Action::Reject(_) => "reject",
        Action::Jump(_) => "jump",
        Action::Goto(_) => "goto",
        Action::Return => "return",
        Action::Continue => "continue",
        Action::Dnat(_) | Action::DnatMap(_) => "dnat",
        Action::Snat(_) | Action::SnatMap(_) => "snat",
        Action::Masquerade(_) => "masquerade",
        Action::Redirect(_) => "redirect",
        Action::Vmap(_) => "vmap",
    }
}

/// The `by` of a packet nothing on its path dropped.
pub const NOTHING_DROPS: &str = "no chain on its path drops it";

/// `local`, `forward via IFACE` (a packet that came in), `out via IFACE`
/// (the router's own), `none`.
fn route_text(route: &Option<Route>, from_router: bool) -> String {
    match route {
        Some(Route::Local) => "local".into(),
        Some(Route::Via(i)) if from_router => format!("out via {i}"),
        Some(Route::Via(i)) => format!("forward via {i}"),
        None => "none".into(),
    }
}

/// Walks `asked` through `table` in `ct_state` (`CtStates` bits) on
/// `network`, at `now_ns` (for time matches).
pub fn explain(
    table: &DesiredTable,
    asked: &Asked,
    ct_state: u32,
    network: &mut StateNetwork,
    now_ns: u64,
) -> Report {
    let walker = Table::new(table, now_ns);
    let start = Start {
        iif: asked.iif.clone(),
        ct_state,
    };
    let traced = walker.trace(&asked.packet, &start, network);
    let mut steps = Vec::new();
    let mut deciders: Vec<String> = Vec::new();
    let mut comments = Vec::new();
    let mut last_rule_action = None;
    let path = traced.path.as_ref().ok();
    for event in &traced.events {
        match event {
            Event::Hook(h) => steps.push(Step::Hook {
                hook: h.as_str().into(),
            }),
            Event::Chain { name, base } => steps.push(Step::Chain {
                chain: name.clone(),
                chain_type: base.chain_type.as_str().into(),
                priority: base.priority_text(),
                policy: base.policy.as_str().into(),
            }),
            Event::NatSkipped { name } => steps.push(Step::NatSkipped {
                chain: name.clone(),
            }),
            Event::Enter { name, goto } => steps.push(Step::Jump {
                chain: name.clone(),
                goto: *goto,
            }),
            Event::Rule {
                chain,
                position,
                rule,
                tag,
            } => {
                let action = action_word(&rule.action);
                last_rule_action = Some(action);
                if matches!(
                    action,
                    "accept" | "drop" | "reject" | "dnat" | "snat" | "masquerade" | "redirect"
                ) {
                    deciders.push(match &rule.comment {
                        Some(c) => format!("rule {position} of {chain} (\"{c}\")"),
                        None => format!("rule {position} of {chain}"),
                    });
                    comments.extend(rule.comment.clone());
                }
                steps.push(Step::Rule {
                    chain: chain.clone(),
                    position: *position,
                    rule: rule.to_string(),
                    comment: rule.comment.clone(),
                    policy: tag.policy.clone(),
                    action: action.into(),
                });
                // The NAT shows once its rule has matched.
                if let Some(p) = path {
                    if let ("dnat" | "redirect", Some(d)) = (action, &p.dnat) {
                        steps.push(Step::Dnat {
                            to: match d {
                                Dnat::To(to) => to.to_string(),
                                Dnat::Redirect(_) => "the router itself (redirect)".into(),
                            },
                        });
                    }
                    if let ("snat" | "masquerade", Some(s)) = (action, &p.snat) {
                        steps.push(Step::Snat {
                            to: match s {
                                Snat::To(to) => to.to_string(),
                                Snat::Masquerade(_) => {
                                    "the address of the outgoing interface (masquerade)".into()
                                }
                            },
                        });
                    }
                }
            }
            Event::Policy { chain, policy } => {
                last_rule_action = None;
                deciders.push(format!("the policy ({}) of chain {chain}", policy.as_str()));
                steps.push(Step::ChainPolicy {
                    chain: chain.clone(),
                    policy: policy.as_str().into(),
                })
            }
            Event::Route { dst, route } => {
                let port = path
                    .map(|p| crate::flows::walk::destination(&asked.packet, p.dnat.as_ref()).1)
                    .unwrap_or(asked.packet.ports.map(|p| p.1));
                steps.push(Step::Routing {
                    to: packet::host_port(*dst, port),
                    route: route_text(route, traced.from_router),
                })
            }
            Event::Refused(reason) => steps.push(Step::RoutingDrop {
                reason: reason.clone(),
            }),
        }
    }
    let mut notes = Vec::new();
    if !asked.sport_given && asked.packet.ports.is_some() {
        notes.push(format!(
            "source port {} taken (none was given)",
            packet::DEFAULT_SPORT
        ));
    }
    if ct_state & CtStates::NEW == 0 {
        notes.push(
            "not a connection's first packet: nat chains are not run (it keeps the NAT its connection's first packet got)".into(),
        );
    }
    let (verdict, by) = match &traced.path {
        Err(unknown) => (Verdict::Unknown, unknown.0.clone()),
        Ok(p) => match &p.verdict {
            crate::flows::walk::Verdict::Accept => (
                Verdict::Accepted,
                if deciders.is_empty() {
                    NOTHING_DROPS.into()
                } else {
                    deciders.join(", then ")
                },
            ),
            crate::flows::walk::Verdict::Drop(why) if p.routing_drop => {
                // The reason's first words name it; the step above says all.
                let short = why.split(':').next().unwrap_or(why);
                (Verdict::Dropped, format!("the kernel's routing ({short})"))
            }
            crate::flows::walk::Verdict::Drop(_) => {
                let last = deciders.last().cloned().unwrap_or_default();
                let verdict = if last_rule_action == Some("reject") {
                    Verdict::Rejected
                } else {
                    Verdict::Dropped
                };
                (verdict, last)
            }
        },
    };
    let deciding_comments = match verdict {
        Verdict::Accepted => comments,
        Verdict::Dropped | Verdict::Rejected => comments.last().cloned().into_iter().collect(),
        Verdict::Unknown => Vec::new(),
    };
    let from_router = traced.from_router;
    let fix = match &traced.path {
        Ok(p) if p.routing_drop => network.fix.clone(),
        _ => None,
    };
    Report {
        packet: asked.to_string(),
        ct_state: CtStates(ct_state).to_string(),
        from_router,
        steps,
        verdict,
        by,
        fix,
        sysctls: network.facts.clone(),
        deciding_comments,
        notes,
    }
}

/// `new`, `established`, ... as `--ct-state` takes them.
pub fn parse_ct_state(s: &str) -> Result<u32, String> {
    match s {
        "new" => Ok(CtStates::NEW),
        "established" => Ok(CtStates::ESTABLISHED),
        "related" => Ok(CtStates::RELATED),
        "invalid" => Ok(CtStates::INVALID),
        "untracked" => Ok(CtStates::UNTRACKED),
        other => Err(format!(
            "unknown ct state `{other}` (new, established, related, invalid, untracked)"
        )),
    }
}

#[cfg(test)]
mod tests;
