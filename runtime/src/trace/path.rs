//! One traced packet's path, from the kernel's trace events: events are
//! grouped by trace id ([`Tracker`]), and a packet's events are told as the
//! packet (from its headers), each rule that matched with the policy and
//! rule text it came from (through the rule's tag), the NAT seen between
//! hooks, and the verdict ([`report`]). Pure: time and names come in.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::kernel::{TraceEvent, TraceKind, TraceVerdict};
use crate::plan::{DesiredTable, ObservedTable, RuleTag};

/// A packet is complete when no event of it came for this long: the events
/// of one packet come within microseconds, hook after hook.
pub const QUIET: Duration = Duration::from_millis(300);

/// Events grouped by packet, in the order packets first appeared.
///
/// The kernel's trace id is derived from the packet's buffer, its flow hash
/// and its input interface, so the packets of one connection often share
/// it: a packet ends when the next one with its id starts (our trace rule
/// marks it: `starts`), or when no event of it came for [`QUIET`].
#[derive(Debug, Default)]
pub struct Tracker {
    open: Vec<(u32, Instant, Vec<TraceEvent>)>,
    done: Vec<Vec<TraceEvent>>,
}

impl Tracker {
    /// Adds one event; `starts` when it is the trace rule's own (the first
    /// event of every packet it marks).
    pub fn push(&mut self, event: TraceEvent, now: Instant, starts: bool) {
        let at = self.open.iter().position(|(id, ..)| *id == event.id);
        match at {
            Some(i) if starts => {
                let (_, _, events) = self.open.remove(i);
                self.done.push(events);
                self.open.push((event.id, now, vec![event]));
            }
            Some(i) => {
                let (_, last, events) = &mut self.open[i];
                *last = now;
                events.push(event);
            }
            None => self.open.push((event.id, now, vec![event])),
        }
    }

    /// The packets complete by `now`, oldest first.
    pub fn finished(&mut self, now: Instant) -> Vec<Vec<TraceEvent>> {
        let (quiet, open) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(_, last, _)| now.duration_since(*last) >= QUIET);
        self.open = open;
        let quiet: Vec<_> = quiet;
        let mut done = std::mem::take(&mut self.done);
        done.extend(quiet.into_iter().map(|(_, _, events)| events));
        done
    }

    /// Every packet, complete or not, oldest first (at the end of a trace).
    pub fn flush(&mut self) -> Vec<Vec<TraceEvent>> {
        let mut done = std::mem::take(&mut self.done);
        done.extend(
            std::mem::take(&mut self.open)
                .into_iter()
                .map(|(_, _, events)| events),
        );
        done
    }
}

/// What a rule of the runtime's table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub policy: String,
    /// The rule as nft-like text (with its comment), when the record of
    /// the applied table has it.
    pub text: Option<String>,
}

/// The runtime's rules by (table, chain, handle).
#[derive(Debug, Clone, Default)]
pub struct Names {
    rules: HashMap<(String, String, u64), RuleInfo>,
}

impl Names {
    /// From an observation of `table` (handles and tags) and the record of
    /// what was applied (tags to rules).
    pub fn new(table: &str, observed: &ObservedTable, applied: Option<&DesiredTable>) -> Names {
        let mut texts: HashMap<&RuleTag, String> = HashMap::new();
        for chain in applied.map(|a| a.chains.as_slice()).unwrap_or_default() {
            for r in &chain.rules {
                texts.insert(&r.tag, r.rule.to_string());
            }
        }
        let mut rules = HashMap::new();
        for chain in &observed.chains {
            for r in &chain.rules {
                let Some(tag) = &r.tag else { continue };
                rules.insert(
                    (table.to_string(), chain.name.to_string(), r.handle),
                    RuleInfo {
                        policy: tag.policy.clone(),
                        text: texts.get(tag).cloned(),
                    },
                );
            }
        }
        Names { rules }
    }

    pub fn rule(&self, table: &str, chain: &str, handle: u64) -> Option<&RuleInfo> {
        self.rules
            .get(&(table.to_string(), chain.to_string(), handle))
    }

    /// Whether some rule event of these names a rule of `table` not known
    /// here (the table changed: read it again).
    pub fn misses(&self, table: &str, events: &[TraceEvent]) -> bool {
        events.iter().any(|e| {
            e.table == table
                && e.kind == TraceKind::Rule
                && e.handle
                    .is_some_and(|h| self.rule(&e.table, &e.chain, h).is_none())
        })
    }
}

/// The addresses and ports of a packet, from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub proto: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ports: Option<(u16, u16)>,
}

impl Header {
    pub fn parse(network: &[u8], transport: Option<&[u8]>) -> Option<Header> {
        let (proto, src, dst) = match network.first()? >> 4 {
            4 => {
                let a = |at: usize| -> Option<IpAddr> {
                    let b: [u8; 4] = network.get(at..at + 4)?.try_into().ok()?;
                    Some(IpAddr::from(b))
                };
                (*network.get(9)?, a(12)?, a(16)?)
            }
            6 => {
                let a = |at: usize| -> Option<IpAddr> {
                    let b: [u8; 16] = network.get(at..at + 16)?.try_into().ok()?;
                    Some(IpAddr::from(b))
                };
                (*network.get(6)?, a(8)?, a(24)?)
            }
            _ => return None,
        };
        let with_ports = matches!(
            i32::from(proto),
            libc::IPPROTO_TCP | libc::IPPROTO_UDP | libc::IPPROTO_SCTP
        );
        let ports = transport.filter(|_| with_ports).and_then(|t| {
            Some((
                u16::from_be_bytes(t.get(0..2)?.try_into().ok()?),
                u16::from_be_bytes(t.get(2..4)?.try_into().ok()?),
            ))
        });
        let proto = match i32::from(proto) {
            libc::IPPROTO_TCP => "tcp".to_string(),
            libc::IPPROTO_UDP => "udp".to_string(),
            libc::IPPROTO_SCTP => "sctp".to_string(),
            libc::IPPROTO_ICMP => "icmp".to_string(),
            libc::IPPROTO_ICMPV6 => "icmpv6".to_string(),
            n => format!("proto {n}"),
        };
        Some(Header {
            proto,
            src,
            dst,
            ports,
        })
    }

    fn end(addr: IpAddr, port: Option<u16>) -> String {
        match (addr, port) {
            (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
            (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
            (a, None) => a.to_string(),
        }
    }

    pub fn source(&self) -> String {
        Header::end(self.src, self.ports.map(|p| p.0))
    }

    pub fn destination(&self) -> String {
        Header::end(self.dst, self.ports.map(|p| p.1))
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The table's family as nft names it (inet, ip, ip6, ...).
    pub family: &'static str,
    pub table: String,
    pub chain: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Rule {
        handle: Option<u64>,
        /// None for a rule the runtime did not write.
        rule: Option<RuleInfo>,
        verdict: String,
    },
    /// The base chain's policy decided.
    Policy { verdict: String },
    /// The end of a regular chain: back to the chain that jumped.
    Return,
}

/// One packet's path, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub number: usize,
    pub id: u32,
    pub header: Option<Header>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub steps: Vec<Step>,
    /// Address changes seen between hooks ("dst 192.168.0.9:80 -> 127.0.0.1:4000").
    pub nat: Vec<String>,
    /// The last accept or drop (a rule's or a policy's), if any came.
    pub verdict: Option<String>,
}

fn family_name(family: u8) -> &'static str {
    match i32::from(family) {
        libc::NFPROTO_INET => "inet",
        libc::NFPROTO_IPV4 => "ip",
        libc::NFPROTO_IPV6 => "ip6",
        libc::NFPROTO_ARP => "arp",
        libc::NFPROTO_BRIDGE => "bridge",
        libc::NFPROTO_NETDEV => "netdev",
        _ => "?",
    }
}

fn verdict_text(v: Option<&TraceVerdict>) -> String {
    v.map_or_else(|| "continue".to_string(), TraceVerdict::text)
}

fn policy_text(policy: Option<u32>) -> String {
    match policy {
        Some(0) => "drop".into(),
        Some(1) => "accept".into(),
        Some(n) => format!("verdict {n}"),
        None => "?".into(),
    }
}

/// Tells packet number `number` from its events. Events of trace tables
/// (named `trace_prefix`..., this trace's and any other running at once)
/// are not steps; their headers still count.
pub fn report(
    number: usize,
    events: &[TraceEvent],
    names: &Names,
    trace_prefix: &str,
    interface: &mut dyn FnMut(u32) -> Option<String>,
) -> Report {
    // The packet line shows the packet as it came; NAT shows as a change
    // from one hook's headers to the next.
    let mut header: Option<Header> = None;
    let mut last: Option<Header> = None;
    let mut nat = Vec::new();
    let mut steps = Vec::new();
    let mut verdict = None;
    let mut iif = None;
    let mut oif = None;
    for e in events {
        if let Some(net) = &e.network_header
            && let Some(h) = Header::parse(net, e.transport_header.as_deref())
        {
            if let Some(before) = &last {
                if before.source() != h.source() {
                    nat.push(format!("src {} -> {}", before.source(), h.source()));
                }
                if before.destination() != h.destination() {
                    nat.push(format!(
                        "dst {} -> {}",
                        before.destination(),
                        h.destination()
                    ));
                }
            }
            header.get_or_insert_with(|| h.clone());
            last = Some(h);
        }
        if iif.is_none() {
            iif = e.iif.and_then(&mut *interface);
        }
        if oif.is_none() {
            oif = e.oif.and_then(&mut *interface);
        }
        if e.table.starts_with(trace_prefix) {
            continue;
        }
        let kind = match e.kind {
            TraceKind::Rule => {
                let text = verdict_text(e.verdict.as_ref());
                if matches!(e.verdict.as_ref().map(|v| v.code), Some(0 | 1)) {
                    verdict = Some(text.clone());
                }
                StepKind::Rule {
                    handle: e.handle,
                    rule: e
                        .handle
                        .and_then(|h| names.rule(&e.table, &e.chain, h))
                        .cloned(),
                    verdict: text,
                }
            }
            TraceKind::Policy => {
                let text = policy_text(e.policy);
                verdict = Some(text.clone());
                StepKind::Policy { verdict: text }
            }
            TraceKind::Return => StepKind::Return,
            TraceKind::Other(_) => continue,
        };
        steps.push(Step {
            family: family_name(e.table_family),
            table: e.table.clone(),
            chain: e.chain.clone(),
            kind,
        });
    }
    Report {
        number,
        id: events.first().map_or(0, |e| e.id),
        header,
        iif,
        oif,
        steps,
        nat,
        verdict,
    }
}

impl Report {
    /// The path as lines for people:
    ///
    /// ```text
    /// packet 1: tcp 192.168.0.2:40312 -> 192.168.0.9:80 in lan0
    ///   inet wasmwall port-forward/prerouting: rule 4 of port-forward: ... -> accept
    /// ```
    pub fn text(&self) -> String {
        let mut out = format!("packet {}: ", self.number);
        match &self.header {
            Some(h) => {
                let _ = write!(out, "{} {} -> {}", h.proto, h.source(), h.destination());
            }
            None => out.push_str("(no header seen)"),
        }
        if let Some(i) = &self.iif {
            let _ = write!(out, " in {i}");
        }
        if let Some(o) = &self.oif {
            let _ = write!(out, " out {o}");
        }
        for step in &self.steps {
            let _ = write!(out, "\n  {} {} {}: ", step.family, step.table, step.chain);
            match &step.kind {
                StepKind::Rule {
                    handle,
                    rule,
                    verdict,
                } => {
                    let handle = handle.map(|h| format!(" (handle {h})")).unwrap_or_default();
                    match rule {
                        Some(RuleInfo {
                            policy,
                            text: Some(text),
                        }) => {
                            let _ = write!(out, "rule of {policy}{handle}: {text}");
                        }
                        Some(RuleInfo { policy, text: None }) => {
                            let _ = write!(out, "rule of {policy}{handle}");
                        }
                        None => {
                            let _ = write!(out, "rule not written by wasmwall{handle}");
                        }
                    }
                    let _ = write!(out, " => {verdict}");
                }
                StepKind::Policy { verdict } => {
                    let _ = write!(out, "end of chain, policy {verdict}");
                }
                StepKind::Return => out.push_str("end of chain, return"),
            }
        }
        for n in &self.nat {
            let _ = write!(out, "\n  nat: {n}");
        }
        let _ = write!(
            out,
            "\n  verdict: {}",
            self.verdict
                .as_deref()
                .unwrap_or("none seen (no rule or chain policy decided: netfilter lets it pass)")
        );
        out
    }

    /// The path as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Rule {
                    handle,
                    rule,
                    verdict,
                } => json!({
                    "family": s.family, "table": s.table, "chain": s.chain, "type": "rule", "handle": handle,
                    "policy": rule.as_ref().map(|r| &r.policy),
                    "rule": rule.as_ref().and_then(|r| r.text.as_ref()),
                    "verdict": verdict,
                }),
                StepKind::Policy { verdict } => json!({
                    "family": s.family, "table": s.table, "chain": s.chain, "type": "policy", "verdict": verdict,
                }),
                StepKind::Return => json!({
                    "family": s.family, "table": s.table, "chain": s.chain, "type": "return",
                }),
            })
            .collect();
        json!({
            "packet": self.number,
            "trace_id": self.id,
            "proto": self.header.as_ref().map(|h| &h.proto),
            "src": self.header.as_ref().map(Header::source),
            "dst": self.header.as_ref().map(Header::destination),
            "iif": self.iif,
            "oif": self.oif,
            "steps": steps,
            "nat": self.nat,
            "verdict": self.verdict,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Action, Rule};
    use crate::plan::{DesiredChain, DesiredRule, KernelName, ObservedChain, ObservedRule};

    const OWN: &str = "wasmwall-trace-7";
    const PREFIX: &str = "wasmwall-trace-";

    fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> (Vec<u8>, Vec<u8>) {
        let mut ip = vec![0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let mut tcp = sport.to_be_bytes().to_vec();
        tcp.extend_from_slice(&dport.to_be_bytes());
        (ip, tcp)
    }

    fn event(
        table: &str,
        chain: &str,
        kind: TraceKind,
        handle: Option<u64>,
        code: Option<i32>,
    ) -> TraceEvent {
        TraceEvent {
            id: 9,
            kind,
            table_family: 1,
            table: table.into(),
            chain: chain.into(),
            handle,
            verdict: code.map(|code| TraceVerdict { code, chain: None }),
            nfproto: Some(2),
            iif: Some(2),
            oif: None,
            mark: None,
            policy: None,
            network_header: None,
            transport_header: None,
        }
    }

    fn with_headers(mut e: TraceEvent, h: (Vec<u8>, Vec<u8>)) -> TraceEvent {
        e.network_header = Some(h.0);
        e.transport_header = Some(h.1);
        e
    }

    /// The seed's request: marked by the trace rule, DNATed in prerouting,
    /// accepted in input.
    fn seed_packet() -> Vec<TraceEvent> {
        let came = ipv4_tcp([192, 168, 0, 2], [192, 168, 0, 9], 40312, 80);
        let natted = ipv4_tcp([192, 168, 0, 2], [127, 0, 0, 1], 40312, 4000);
        vec![
            with_headers(
                event(OWN, "trace/prerouting", TraceKind::Rule, Some(3), Some(-1)),
                came.clone(),
            ),
            with_headers(
                event(
                    "wasmwall",
                    "port-forward/prerouting",
                    TraceKind::Rule,
                    Some(6),
                    Some(1),
                ),
                came,
            ),
            with_headers(
                event(
                    "wasmwall",
                    "port-forward/input",
                    TraceKind::Rule,
                    Some(4),
                    Some(1),
                ),
                natted,
            ),
        ]
    }

    fn names() -> Names {
        let rule = Rule {
            matches: vec![],
            statements: vec![],
            action: Action::Accept,
            comment: Some("to the server".into()),
            cut_flows: false,
        };
        let tag = RuleTag {
            policy: "port-forward".into(),
            hash: "ab".into(),
        };
        let observed = ObservedTable {
            owned: true,
            chains: vec![ObservedChain {
                name: KernelName::from("port-forward/input"),
                kind: crate::plan::ChainKind::Regular,
                rules: vec![ObservedRule {
                    handle: 4,
                    tag: Some(tag.clone()),
                    refs: vec![],
                }],
            }],
            sets: vec![],
            objects: vec![],
            flowtables: vec![],
        };
        let applied = DesiredTable {
            chains: vec![DesiredChain {
                name: KernelName::from("port-forward/input"),
                base: None,
                rules: vec![DesiredRule { rule, tag }],
            }],
            ..DesiredTable::default()
        };
        Names::new("wasmwall", &observed, Some(&applied))
    }

    #[test]
    fn a_packet_is_told_with_its_rules_nat_and_verdict() {
        let mut iface = |i: u32| (i == 2).then(|| "lan0".to_string());
        let mut events = seed_packet();
        // Another trace running at once marked the packet too.
        events.insert(
            1,
            event(
                "wasmwall-trace-8",
                "trace/prerouting",
                TraceKind::Rule,
                Some(3),
                Some(-1),
            ),
        );
        let report = report(1, &events, &names(), PREFIX, &mut iface);
        assert_eq!(
            report.text(),
            "packet 1: tcp 192.168.0.2:40312 -> 192.168.0.9:80 in lan0\n\
             \x20 inet wasmwall port-forward/prerouting: rule not written by wasmwall (handle 6) => accept\n\
             \x20 inet wasmwall port-forward/input: rule of port-forward (handle 4): accept comment \"to the server\" => accept\n\
             \x20 nat: dst 192.168.0.9:80 -> 127.0.0.1:4000\n\
             \x20 verdict: accept"
        );
        assert_eq!(report.json()["steps"][1]["policy"], "port-forward");
        assert!(
            names().misses("wasmwall", &seed_packet()),
            "handle 6 is unknown"
        );
    }

    #[test]
    fn packets_sharing_a_trace_id_are_split_at_the_trace_rule() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        for round in 0..2 {
            for e in seed_packet() {
                let starts = e.table == OWN && e.handle.is_some();
                tracker.push(e, now + Duration::from_millis(round), starts);
            }
        }
        // The first is complete when the second starts; the second when
        // it has been quiet long enough.
        assert_eq!(tracker.finished(now).len(), 1);
        assert!(tracker.finished(now + Duration::from_millis(10)).is_empty());
        let last = tracker.finished(now + QUIET + Duration::from_millis(2));
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].len(), 3);
        assert!(tracker.flush().is_empty());
    }
}
