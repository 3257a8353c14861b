//! Which conntrack entries a ruleset change concerns: each flow's first
//! packet walked through the table before and after the change
//! ([`super::walk`]), and the entry cut when the new table would translate
//! it differently from the old one (whose translation the entry carries) or
//! would no longer accept what the old one accepted. A flow either table
//! cannot judge is left alone, as is every flow the old table did not
//! translate the way the entry shows (someone else's NAT), and the router's
//! own connections. Pure: the network comes through [`Network`].

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use crate::plan::{DesiredTable, RuleTag};

use super::walk::{Dnat, Network, Packet, Path, Route, Snat, Table, Verdict};
use super::{Flow, proto, status};

/// Why a flow is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Its destination NAT is no longer made.
    DnatGone { was: String },
    /// It would now be sent elsewhere.
    DnatChanged { was: String, now: String },
    /// A UDP flow that began before its port forward: its packets would
    /// now be translated.
    DnatAdded { now: String },
    /// The new table drops what the old one accepted.
    NoLongerAccepted { by: String },
    /// Its source NAT is no longer made.
    SnatGone { was: String },
    /// Masqueraded to an address the router no longer has.
    SnatStale { address: IpAddr },
    /// It would now leave from another source address.
    SnatChanged { now: String },
    /// A rule marked to cut its flows when it goes has gone.
    RuleGone,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::DnatGone { was } => write!(f, "its port forward ({was}) is gone"),
            Reason::DnatChanged { was, now } => write!(f, "forwarded to {now} now, not {was}"),
            Reason::DnatAdded { now } => write!(f, "began before its port forward (to {now})"),
            Reason::NoLongerAccepted { by } => write!(f, "no longer accepted: stopped by {by}"),
            Reason::SnatGone { was } => write!(f, "its source NAT ({was}) is gone"),
            Reason::SnatStale { address } => {
                write!(
                    f,
                    "masqueraded to {address}, an address the router no longer has"
                )
            }
            Reason::SnatChanged { now } => write!(f, "would leave as {now} now"),
            Reason::RuleGone => f.write_str("a rule that cuts its flows when it goes has gone"),
        }
    }
}

/// A flow to cut, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub flow: Flow,
    pub reason: Reason,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flow, self.reason)
    }
}

/// What judging the flows found.
#[derive(Debug, Default)]
pub struct Judgement {
    pub cuts: Vec<Cut>,
    /// Flows judged and kept.
    pub kept: usize,
    /// Flows a table could not judge (left alone), with the first reason.
    pub unknown: usize,
    pub first_unknown: Option<String>,
    /// The router's own connections, related and dying entries: not judged.
    pub skipped: usize,
}

/// The flows of `flows` the change from `old` to `new` concerns.
/// `cut_when_gone`: tags of rules of `old` that ask for their flows to be
/// cut when they go. `now_ns`: the time, for time matches.
pub fn judge(
    old: &DesiredTable,
    new: &DesiredTable,
    cut_when_gone: &HashSet<RuleTag>,
    flows: &[Flow],
    network: &mut dyn Network,
    now_ns: u64,
) -> Judgement {
    let new = new.with_kept_resolved(Some(old));
    let before = Table::new(old, now_ns);
    let after = Table::new(&new, now_ns);
    let mut judgement = Judgement::default();
    for flow in flows {
        if flow.status & (status::EXPECTED | status::DYING) != 0 {
            judgement.skipped += 1;
            continue;
        }
        let packet = Packet {
            src: flow.orig.src,
            dst: flow.orig.dst,
            proto: flow.orig.proto,
            ports: flow.orig.ports,
            icmp: flow.orig.icmp.map(|(t, c, _)| (t, c)),
            ct_mark: flow.mark,
        };
        let walked = before
            .walk(&packet, network)
            .and_then(|o| Ok((o, after.walk(&packet, network)?)));
        match walked {
            Ok((Some(o), Some(n))) => match reason(flow, &o, &n, cut_when_gone, network) {
                Some(reason) => judgement.cuts.push(Cut {
                    flow: flow.clone(),
                    reason,
                }),
                None => judgement.kept += 1,
            },
            Ok(_) => judgement.skipped += 1,
            Err(e) => {
                judgement.unknown += 1;
                judgement
                    .first_unknown
                    .get_or_insert(format!("{flow}: {}", e.0));
            }
        }
    }
    judgement
}

/// Why the flow must go, if it must.
fn reason(
    flow: &Flow,
    old: &Path,
    new: &Path,
    cut_when_gone: &HashSet<RuleTag>,
    network: &mut dyn Network,
) -> Option<Reason> {
    if !cut_when_gone.is_empty()
        && old.matched.iter().any(|t| cut_when_gone.contains(t))
        && !new.matched.iter().any(|t| cut_when_gone.contains(t))
    {
        return Some(Reason::RuleGone);
    }
    // Destination NAT: the entry carries the old table's translation.
    let orig_dport = flow.orig.dport();
    let actual = flow.dst_nat().then(|| (flow.reply.src, flow.reply.sport()));
    let old_made_it = match (&old.dnat, actual) {
        (None, None) => true,
        (Some(Dnat::To(to)), Some((a, p))) => to.covers(a, p, orig_dport),
        (Some(Dnat::Redirect(_)), Some((a, _))) => network.route(a) == Some(Route::Local),
        _ => false,
    };
    if !old_made_it {
        // Translated by something else than the old table says: its path
        // is not the one walked, nothing here can judge it.
        return None;
    }
    if old.dnat != new.dnat {
        match (&old.dnat, &new.dnat) {
            (None, Some(now)) if flow.orig.proto == proto::UDP => {
                return Some(Reason::DnatAdded {
                    now: dnat_text(now),
                });
            }
            // A TCP connection to the router that began before a port
            // forward of its port: the forward is for new connections.
            (None, Some(_)) => {}
            (Some(was), None) => {
                return Some(Reason::DnatGone {
                    was: dnat_text(was),
                });
            }
            (Some(was), Some(now)) => {
                return Some(Reason::DnatChanged {
                    was: dnat_text(was),
                    now: dnat_text(now),
                });
            }
            (None, None) => unreachable!("they differ"),
        }
    }
    // The filter: what the old table accepted and the new one drops.
    if let (Verdict::Accept, Verdict::Drop(by)) = (&old.verdict, &new.verdict) {
        return Some(Reason::NoLongerAccepted { by: by.clone() });
    }
    // Source NAT, of entries the old table translated.
    if flow.src_nat() {
        let address = flow.reply.dst;
        let old_made_it = match &old.snat {
            Some(Snat::Masquerade(_)) => true,
            Some(Snat::To(to)) => to.covers(address, flow.reply.dport(), flow.orig.sport()),
            None => false,
        };
        if old_made_it {
            match &new.snat {
                None => {
                    return Some(Reason::SnatGone {
                        was: snat_text(old.snat.as_ref().expect("made it")),
                    });
                }
                Some(Snat::Masquerade(_)) => {
                    if network.route(address) != Some(Route::Local) {
                        return Some(Reason::SnatStale { address });
                    }
                }
                Some(Snat::To(to)) => {
                    if !to.covers(address, flow.reply.dport(), flow.orig.sport()) {
                        return Some(Reason::SnatChanged {
                            now: to.to_string(),
                        });
                    }
                }
            }
        }
    }
    None
}

fn dnat_text(d: &Dnat) -> String {
    match d {
        Dnat::To(to) => format!("dnat to {to}"),
        Dnat::Redirect(None) => "redirect".into(),
        Dnat::Redirect(Some(p)) => format!("redirect to :{p}"),
    }
}

fn snat_text(s: &Snat) -> String {
    match s {
        Snat::To(to) => format!("snat to {to}"),
        Snat::Masquerade(_) => "masquerade".into(),
    }
}
