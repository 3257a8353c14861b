//! Keeping the leases told over the control socket across restarts:
//! dnsmasq reports a lease to its hook once, not again when wasmwall
//! restarts or after it crashed. They are written root-only beside the
//! state file, at most once a [`SAVE_GAP`], on a thread of its own so that
//! a write (and its fsync) is never in an event's way, and taken back at
//! start. Only when no lease file is configured: then the lease file, which
//! dnsmasq keeps, is the truth.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::leases::{AnyLease, LeaseAction, Leases};
use crate::files::{self, Kind};

/// The kept leases are written at most this often.
pub const SAVE_GAP: Duration = Duration::from_secs(1);

pub struct LeaseKeeper {
    path: PathBuf,
    /// False when a lease file is configured: nothing is kept then.
    enabled: bool,
    dirty: bool,
    saved_at: Option<Instant>,
    writer: Writer,
}

impl LeaseKeeper {
    pub fn new(path: PathBuf, enabled: bool) -> LeaseKeeper {
        LeaseKeeper {
            writer: Writer::start(path.clone()),
            path,
            enabled,
            dirty: false,
            saved_at: None,
        }
    }

    /// Takes in the leases a previous run kept (expired ones dropped, each
    /// checked again); returns how many.
    pub fn restore(&self, leases: &mut Leases, now_epoch: u64) -> usize {
        if !self.enabled {
            return 0;
        }
        let file = self.path.display();
        let text = match files::read(&self.path, Kind::KeptLeases) {
            Ok(t) => t,
            Err(e) if e.not_found() => return 0,
            Err(e) => {
                tracing::warn!(error = %crate::text::error_chain(&e), "the kept leases are not used");
                return 0;
            }
        };
        let kept: Vec<AnyLease> = match serde_json::from_slice(&text) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "the kept leases are not valid; ignored");
                return 0;
            }
        };
        let mut restored = 0;
        for lease in kept {
            match lease
                .checked()
                .and_then(|l| leases.apply(LeaseAction::Add, l, now_epoch))
            {
                Ok(Some(_)) => restored += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(file = %file, "kept lease ignored: {e}"),
            }
        }
        tracing::info!(file = %file, restored, "leases kept by the previous run restored");
        restored
    }

    /// The leases changed and should be kept.
    pub fn changed(&mut self) {
        self.dirty = self.enabled;
    }

    /// Writes the leases if they changed and the last write is at least
    /// [`SAVE_GAP`] old; otherwise returns when to call again.
    pub fn save_if_due(&mut self, leases: &Leases, now: Instant) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        match self.saved_at {
            Some(at) if now.duration_since(at) < SAVE_GAP => Some(at + SAVE_GAP),
            _ => {
                self.save(leases, now);
                None
            }
        }
    }

    fn save(&mut self, leases: &Leases, now: Instant) {
        match serde_json::to_vec(&leases.all()) {
            Ok(bytes) => {
                self.writer.keep(bytes);
                self.dirty = false;
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize the leases"),
        }
        self.saved_at = Some(now);
    }

    /// Writes what changed and stops the writer.
    pub fn finish(&mut self, leases: &Leases) {
        if self.dirty {
            self.save(leases, Instant::now());
        }
        self.writer.finish();
    }
}

/// Writes the newest lease table to its file on a thread of its own, one
/// write at a time; a newer table replaces one not written yet.
struct Writer {
    shared: Arc<(Mutex<Next>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Next {
    bytes: Option<Vec<u8>>,
    stop: bool,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let shared: Arc<(Mutex<Next>, Condvar)> = Arc::default();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lease-keeper".into())
            .spawn(move || {
                let (lock, wake) = &*theirs;
                loop {
                    let (bytes, stop) = {
                        let mut next = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while next.bytes.is_none() && !next.stop {
                            next = wake.wait(next).unwrap_or_else(|e| e.into_inner());
                        }
                        (next.bytes.take(), next.stop)
                    };
                    if let Some(bytes) = bytes
                        && let Err(e) = crate::state::write_private(&path, &bytes)
                    {
                        tracing::warn!(file = %path.display(), error = %e, "cannot keep the leases for a restart");
                    }
                    if stop {
                        return;
                    }
                }
            })
            .ok();
        Writer { shared, thread }
    }

    fn keep(&self, bytes: Vec<u8>) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).bytes = Some(bytes);
        wake.notify_one();
    }

    /// Writes what is pending and stops.
    fn finish(&mut self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Dhcpv6Lease, Lease};

    fn lease(ip: &str) -> Lease {
        Lease {
            mac: "02:00:00:00:00:01".into(),
            ip: ip.into(),
            hostname: None,
            iface: "lan0".into(),
            expires: None,
        }
    }

    #[test]
    fn kept_leases_come_back_and_writes_are_spaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.t.leases");
        let mut leases = Leases::new(10);
        leases
            .apply(LeaseAction::Add, lease("10.0.0.2"), 0)
            .unwrap();
        let mut keeper = LeaseKeeper::new(path.clone(), true);
        let t0 = Instant::now();
        assert_eq!(keeper.save_if_due(&leases, t0), None, "nothing changed");
        keeper.changed();
        assert_eq!(keeper.save_if_due(&leases, t0), None, "written at once");
        leases
            .apply(LeaseAction::Add, lease("10.0.0.3"), 0)
            .unwrap();
        leases
            .apply(
                LeaseAction::Add,
                Dhcpv6Lease {
                    ip: "fd00::3".into(),
                    duid: "00:04:01:02:03".into(),
                    iaid: 1,
                    temporary: false,
                    hostname: Some("nas".into()),
                    mac: None,
                    iface: "lan0".into(),
                    expires: None,
                },
                0,
            )
            .unwrap();
        keeper.changed();
        let soon = t0 + Duration::from_millis(100);
        assert_eq!(keeper.save_if_due(&leases, soon), Some(t0 + SAVE_GAP));
        keeper.finish(&leases);

        let mut again = Leases::new(10);
        assert_eq!(
            LeaseKeeper::new(path.clone(), true).restore(&mut again, 0),
            3
        );
        assert_eq!(again.all(), leases.all());
        assert_eq!(again.list6().len(), 1);
        let mut none = Leases::new(10);
        assert_eq!(
            LeaseKeeper::new(path, false).restore(&mut none, 0),
            0,
            "a lease file is the truth"
        );
    }
}
