//! What `wasmwall status` shows: the daemon's policies, world state, last
//! reconcile and pending errors. Sent as JSON over the control socket and
//! printed as text or JSON by the command. Both forms show every string
//! escaped ([`crate::text::escape`]): the errors quote what policies said,
//! and interface names are whatever the kernel holds; nothing of it may
//! drive the terminal that shows it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kernel::{Counters, per_policy};
use crate::text::{escape, must_escape};
use crate::world::WorldState;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub table: String,
    pub netns: Option<String>,
    pub policies: Vec<PolicyStatus>,
    pub world: WorldState,
    /// The last reconcile of any kind (most are checks that found nothing
    /// to do, e.g. after wasmwall's own change notification).
    pub last_reconcile: Option<ReconcileStatus>,
    /// The last reconcile that changed something in the kernel or a sysctl.
    #[serde(default)]
    pub last_change: Option<ReconcileStatus>,
    /// Problems not resolved yet: failing policies, a rejected new version,
    /// a failed reconcile, lease-file lines that could not be used.
    pub errors: Vec<String>,
    pub reconciles: u64,
    pub events: u64,
    /// A change waiting for `wasmwall confirm`.
    #[serde(default)]
    pub confirmation: Option<ConfirmationStatus>,
    /// The packet and byte counters of the rules that have a `counter`
    /// statement, and of the named counters, as read when asked.
    #[serde(default)]
    pub counters: Counters,
    /// Why the counters could not be read, if they could not.
    #[serde(default)]
    pub counters_error: Option<String>,
}

/// A change waiting for `wasmwall confirm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfirmationStatus {
    pub what: String,
    /// When it rolls back, in seconds since the Unix epoch.
    pub deadline: u64,
    /// The health checks, in words ("none" without).
    pub checks: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub name: String,
    pub path: String,
    /// Its input files (`[policy.files]`): key and path, in the order written.
    #[serde(default)]
    pub files: Vec<(String, String)>,
    /// SHA-256 of the running component, hex; none when it never loaded.
    pub hash: Option<String>,
    pub loaded_at: Option<u64>,
    /// "ok: N rules" or the failure.
    pub last_result: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReconcileStatus {
    pub reason: String,
    pub at: u64,
    pub duration_us: u64,
    pub messages: usize,
    pub changes: String,
    pub error: Option<String>,
}

fn ago(now: u64, at: u64) -> String {
    let s = now.saturating_sub(at);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

impl Status {
    /// The text `wasmwall status` prints; `now` in seconds since the epoch.
    pub fn render(&self, now: u64) -> String {
        Rendered { status: self, now }.to_string()
    }

    /// The JSON `wasmwall status --json` prints. serde_json writes C0
    /// controls as `\u00XX` but DEL, C1 and Unicode format characters as
    /// they are; those become `\uXXXX` escapes too, so the JSON means the
    /// same and shows nothing a terminal acts on.
    pub fn json(&self) -> serde_json::Result<String> {
        let text = serde_json::to_string_pretty(self)?;
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            // A newline here is the pretty form's own (serde escapes those in
            // strings).
            if must_escape(c) && c != '\n' {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }
}

struct Rendered<'a> {
    status: &'a Status,
    now: u64,
}

impl Rendered<'_> {
    /// "  last change: 3 s ago, start: 12 message(s), 830 us, 3 chain adds".
    fn reconcile(
        &self,
        f: &mut fmt::Formatter<'_>,
        what: &str,
        r: Option<&ReconcileStatus>,
    ) -> fmt::Result {
        let Some(r) = r else {
            return writeln!(f, "  {what}: none yet");
        };
        writeln!(
            f,
            "  {what}: {}, {}: {} message(s), {} us, {}",
            ago(self.now, r.at),
            escape(&r.reason),
            r.messages,
            r.duration_us,
            if r.changes.is_empty() {
                "no changes".into()
            } else {
                escape(&r.changes)
            }
        )?;
        if let Some(e) = &r.error {
            writeln!(f, "    failed: {}", escape(e))?;
        }
        Ok(())
    }
}

impl Rendered<'_> {
    /// "counters:", per policy then per rule (its comment, else its nft
    /// chain and handle), then the named counters.
    fn counters(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.status.counters;
        writeln!(
            f,
            "\ncounters: {} rule(s), {} named",
            c.rules.len(),
            c.named.len()
        )?;
        if let Some(e) = &self.status.counters_error {
            writeln!(f, "  not read: {}", escape(e))?;
        }
        for (policy, sum) in per_policy(&c.rules) {
            writeln!(
                f,
                "  {:<16} {:>12} packets {:>14} bytes  (policy total)",
                escape(&policy),
                sum.packets,
                sum.bytes
            )?;
        }
        for r in &c.rules {
            let name = match &r.comment {
                Some(comment) => format!("\"{}\"", escape(comment)),
                None => format!("{} handle {}", escape(&r.chain), r.handle),
            };
            writeln!(
                f,
                "  {:<16} {:>12} packets {:>14} bytes  {name}",
                escape(r.policy.as_deref().unwrap_or("(not ours)")),
                r.count.packets,
                r.count.bytes
            )?;
        }
        for n in &c.named {
            writeln!(
                f,
                "  {:<16} {:>12} packets {:>14} bytes  counter \"{}\"",
                "(named)",
                n.count.packets,
                n.count.bytes,
                escape(&n.name)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.status;
        writeln!(
            f,
            "wasmwall daemon (pid {}), table inet {}, netns {}, up since {}",
            s.pid,
            escape(&s.table),
            escape(s.netns.as_deref().unwrap_or("(its own)")),
            ago(self.now, s.started_at)
        )?;
        if let Some(c) = &s.confirmation {
            writeln!(
                f,
                "\nwaiting for confirmation: {}; rolls back in {} s unless `wasmwall confirm`; health checks: {}",
                escape(&c.what),
                c.deadline.saturating_sub(self.now),
                escape(&c.checks)
            )?;
        }
        writeln!(f, "\npolicies:")?;
        for p in &s.policies {
            let hash = p.hash.as_deref().map_or("-", |h| &h[..h.len().min(12)]);
            let loaded = p.loaded_at.map_or("never".into(), |t| ago(self.now, t));
            writeln!(
                f,
                "  {:<16} {hash:<12}  loaded {loaded:<12}  {}\n  {:<16} {}",
                escape(&p.name),
                escape(&p.last_result),
                "",
                escape(&p.path)
            )?;
            for (key, path) in &p.files {
                writeln!(f, "  {:<16} {} = {}", "", escape(key), escape(path))?;
            }
        }
        writeln!(f, "\ninterfaces:")?;
        for i in &s.world.interfaces {
            writeln!(
                f,
                "  {:<16} {:<5} {}",
                escape(&i.name),
                if i.up { "up" } else { "down" },
                escape(&i.addresses.join(" "))
            )?;
        }
        writeln!(f, "\nleases: {}", s.world.leases.len())?;
        for l in s.world.leases.iter().take(50) {
            writeln!(
                f,
                "  {:<15} {} {:<8} {:<20} {}",
                escape(&l.ip),
                escape(&l.mac),
                escape(&l.iface),
                escape(l.hostname.as_deref().unwrap_or("-")),
                l.expires.map_or("no expiry".into(), |e| format!(
                    "expires in {} s",
                    e.saturating_sub(self.now)
                ))
            )?;
        }
        if s.world.leases.len() > 50 {
            writeln!(
                f,
                "  ... ({} more; --json shows all)",
                s.world.leases.len() - 50
            )?;
        }
        let leases6 = &s.world.dhcpv6_leases;
        writeln!(
            f,
            "
dhcpv6 leases: {}",
            leases6.len()
        )?;
        for l in leases6.iter().take(50) {
            writeln!(
                f,
                "  {:<39} {} iaid {}{} {:<8} {:<20} {}",
                escape(&l.ip),
                escape(&l.duid),
                l.iaid,
                if l.temporary { " (temporary)" } else { "" },
                escape(&l.iface),
                escape(l.hostname.as_deref().unwrap_or("-")),
                l.expires.map_or("no expiry".into(), |e| format!(
                    "expires in {} s",
                    e.saturating_sub(self.now)
                ))
            )?;
        }
        if leases6.len() > 50 {
            writeln!(f, "  ... ({} more; --json shows all)", leases6.len() - 50)?;
        }
        let neighbours = &s.world.neighbours;
        let mut states = std::collections::BTreeMap::new();
        for n in neighbours {
            *states.entry(n.state.name()).or_insert(0usize) += 1;
        }
        let states: Vec<String> = states.iter().map(|(k, c)| format!("{c} {k}")).collect();
        if states.is_empty() {
            writeln!(f, "\nneighbours: 0")?;
        } else {
            writeln!(
                f,
                "\nneighbours: {} ({})",
                neighbours.len(),
                states.join(", ")
            )?;
        }
        for n in neighbours.iter().take(50) {
            writeln!(
                f,
                "  {:<25} {} {:<8} {}",
                escape(&n.ip),
                escape(&n.mac),
                escape(&n.iface),
                n.state.name()
            )?;
        }
        if neighbours.len() > 50 {
            writeln!(
                f,
                "  ... ({} more; --json shows all)",
                neighbours.len() - 50
            )?;
        }
        self.counters(f)?;
        writeln!(
            f,
            "\nreconciles: {} so far, for {} events",
            s.reconciles, s.events
        )?;
        self.reconcile(f, "last change", s.last_change.as_ref())?;
        self.reconcile(f, "last check", s.last_reconcile.as_ref())?;
        writeln!(f, "\nerrors:")?;
        if s.errors.is_empty() {
            writeln!(f, "  none")?;
        }
        for e in &s.errors {
            writeln!(f, "  {}", escape(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hostile policy can get into the status: its failure (with
    /// what it returned) in `errors` and `last_result`.
    const HOSTILE: &str =
        "x\n2026-01-01T00:00:00Z ERROR forged\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}\u{7f}";

    fn status() -> Status {
        Status {
            table: "wasmwall".into(),
            policies: vec![PolicyStatus {
                name: "hostile".into(),
                path: "/p.wasm".into(),
                files: vec![(HOSTILE.into(), format!("/{HOSTILE}"))],
                last_result: format!("failed: {HOSTILE}"),
                ..PolicyStatus::default()
            }],
            last_reconcile: Some(ReconcileStatus {
                error: Some(HOSTILE.into()),
                ..ReconcileStatus::default()
            }),
            errors: vec![HOSTILE.into()],
            ..Status::default()
        }
    }

    #[test]
    fn the_text_shows_no_control_character_and_no_forged_line() {
        let text = status().render(0);
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| must_escape(c) && c != '\n')
            .collect();
        assert!(bad.is_empty(), "{bad:?} in\n{text}");
        assert!(!text.lines().any(|l| l.starts_with("2026-01-01")), "{text}");
        assert!(
            text.contains(r"x\n2026-01-01T00:00:00Z ERROR forged\u{1b}]0;owned"),
            "{text}"
        );
    }

    #[test]
    fn the_text_counts_the_neighbours_by_state() {
        use crate::world::{Neighbour, NeighbourState};
        let mut s = Status::default();
        assert!(s.render(0).contains("\nneighbours: 0\n"));
        let n = |ip: &str, state| Neighbour {
            ip: ip.into(),
            mac: "02:00:00:00:00:09".into(),
            iface: "lan0".into(),
            state,
        };
        s.world.neighbours = vec![
            n("192.168.1.9", NeighbourState::Reachable),
            n("2001:db8:1::9", NeighbourState::Stale),
            n("fe80::9", NeighbourState::Reachable),
        ];
        let text = s.render(0);
        assert!(
            text.contains("\nneighbours: 3 (2 reachable, 1 stale)\n"),
            "{text}"
        );
        assert!(
            text.contains("  2001:db8:1::9             02:00:00:00:00:09 lan0     stale\n"),
            "{text}"
        );
    }

    #[test]
    fn the_text_shows_policy_totals_then_each_rule_counter() {
        use crate::kernel::{Count, RuleCounter};
        let rule = |comment: Option<&str>, handle, packets| RuleCounter {
            chain: "forward".into(),
            handle,
            policy: Some("home".into()),
            comment: comment.map(str::to_string),
            count: Count {
                packets,
                bytes: packets * 60,
            },
        };
        let mut s = Status::default();
        s.counters.rules = vec![rule(Some("lan web"), 4, 3), rule(None, 9, 2)];
        let text = s.render(0);
        assert!(text.contains("\ncounters: 2 rule(s), 0 named\n"), "{text}");
        assert!(
            text.contains(
                "  home                        5 packets            300 bytes  (policy total)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  home                        3 packets            180 bytes  \"lan web\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  home                        2 packets            120 bytes  forward handle 9\n"
            ),
            "{text}"
        );
        let back: Status = serde_json::from_str(&s.json().unwrap()).unwrap();
        assert_eq!(back.counters, s.counters);
    }

    #[test]
    fn the_json_escapes_every_control_character_and_means_the_same() {
        let json = status().json().unwrap();
        assert!(!json.chars().any(|c| must_escape(c) && c != '\n'), "{json}");
        assert!(json.contains(r"\u001b]0;owned\u0007"), "{json}");
        assert!(json.contains(r"\u009b1m\u202e\u007f"), "{json}");
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back.errors, vec![HOSTILE.to_string()]);
    }
}
