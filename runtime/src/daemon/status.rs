//! What `wasmwall status` shows: the daemon's policies, world state, last
//! reconcile and pending errors. Sent as JSON over the control socket and
//! printed as text by the command.

use std::fmt;

use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub name: String,
    pub path: String,
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
            r.reason,
            r.messages,
            r.duration_us,
            if r.changes.is_empty() {
                "no changes"
            } else {
                &r.changes
            }
        )?;
        if let Some(e) = &r.error {
            writeln!(f, "    failed: {e}")?;
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
            s.table,
            s.netns.as_deref().unwrap_or("(its own)"),
            ago(self.now, s.started_at)
        )?;
        writeln!(f, "\npolicies:")?;
        for p in &s.policies {
            let hash = p.hash.as_deref().map_or("-", |h| &h[..h.len().min(12)]);
            let loaded = p.loaded_at.map_or("never".into(), |t| ago(self.now, t));
            writeln!(
                f,
                "  {:<16} {hash:<12}  loaded {loaded:<12}  {}\n  {:<16} {}",
                p.name, p.last_result, "", p.path
            )?;
        }
        writeln!(f, "\ninterfaces:")?;
        for i in &s.world.interfaces {
            writeln!(
                f,
                "  {:<16} {:<5} {}",
                i.name,
                if i.up { "up" } else { "down" },
                i.addresses.join(" ")
            )?;
        }
        writeln!(f, "\nleases: {}", s.world.leases.len())?;
        for l in s.world.leases.iter().take(50) {
            writeln!(
                f,
                "  {:<15} {} {:<8} {:<20} {}",
                l.ip,
                l.mac,
                l.iface,
                l.hostname.as_deref().unwrap_or("-"),
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
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}
