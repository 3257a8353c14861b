//! A [`Report`] as text: one step a line, the hook or the kind of step in
//! a first column, the chains and rules under their hook, rules as nft
//! lists them.

use std::fmt::Write as _;

use super::{Report, Source, Step, Verdict};

/// The first column's width.
const WIDTH: usize = 12;

fn line(out: &mut String, head: &str, rest: &str) {
    let text = format!("{head:<WIDTH$}{rest}");
    let _ = writeln!(out, "{}", text.trim_end());
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let origin = if report.from_router {
        ", sent by the router"
    } else {
        ""
    };
    line(
        &mut out,
        "packet",
        &format!("{} (ct state {}{origin})", report.packet, report.ct_state),
    );
    for note in &report.notes {
        line(&mut out, "  note", note);
    }
    for step in &report.steps {
        match step {
            Step::Hook { hook } => line(&mut out, hook, ""),
            Step::Chain {
                chain,
                chain_type,
                priority,
                policy,
            } => line(
                &mut out,
                "  chain",
                &format!("{chain} (type {chain_type}, priority {priority}, policy {policy})"),
            ),
            Step::NatSkipped { chain } => line(
                &mut out,
                "  chain",
                &format!("{chain} (nat) not run: not a connection's first packet"),
            ),
            Step::Jump { chain, goto } => line(
                &mut out,
                if *goto { "  goto" } else { "  jump" },
                &format!("chain {chain}"),
            ),
            Step::Rule {
                position,
                rule,
                policy,
                ..
            } => line(
                &mut out,
                &format!("  rule {position}"),
                &format!("{rule}   (policy {policy})"),
            ),
            Step::ChainPolicy { chain, policy } => line(
                &mut out,
                "  policy",
                &format!("{policy}: no rule of {chain} decided"),
            ),
            Step::Dnat { to } => line(&mut out, "  dnat", &format!("destination now {to}")),
            Step::Snat { to } => line(&mut out, "  snat", &format!("source now {to}")),
            Step::Routing { to, route } => {
                let route = match route.as_str() {
                    "local" => "local: to the router itself (input)".to_string(),
                    "none" => "no route known".to_string(),
                    r if r.starts_with("forward") => format!("{r} (forward hook)"),
                    r => r.to_string(),
                };
                line(&mut out, "routing", &format!("to {to}: {route}"))
            }
            Step::RoutingDrop { reason } => line(&mut out, "  dropped", reason),
        }
    }
    for fact in &report.sysctls {
        let source = match &fact.source {
            Source::Policy(p) => format!("set by policy {p}"),
            Source::Given => "given".to_string(),
            Source::Read => "read from /proc/sys".to_string(),
            Source::Default => "the kernel's default: no policy asks for it, none given".into(),
        };
        line(
            &mut out,
            "sysctl",
            &format!("{} = {} ({source})", fact.key, fact.value),
        );
    }
    let verdict = match report.verdict {
        Verdict::Accepted if report.by == super::NOTHING_DROPS => {
            format!("accepted: {}", report.by)
        }
        Verdict::Accepted => format!("accepted: by {}", report.by),
        Verdict::Dropped => format!("dropped: by {}", report.by),
        Verdict::Rejected => format!("rejected: by {}", report.by),
        Verdict::Unknown => format!("cannot tell: {}", report.by),
    };
    line(&mut out, "verdict", &verdict);
    if let Some(key) = &report.fix {
        line(
            &mut out,
            "fix",
            &format!("set {key} = 1 (have a policy ask for it, or sysctl -w {key}=1)"),
        );
    }
    out
}
