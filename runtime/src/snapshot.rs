//! The table as wasmwall last knew it, kept beside the state file, so that
//! a new process (the next `apply`, `plan`, a restart after a crash) need
//! not read the table back from the kernel when nothing changed since: for
//! a large table that read is the slowest thing wasmwall does (the kernel's
//! rule dump is quadratic per chain; see BENCHMARKS.md).
//!
//! A snapshot is trusted only when it provably describes the kernel now:
//! same boot, same network namespace (device and inode of its nsfs file),
//! same table, and the same nftables generation, which every committed
//! batch in the namespace changes, whoever sends it. Anything else, or any
//! error reading it, and the table is read from the kernel as before.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kernel::Observation;
use crate::plan::ObservedTable;

/// 2: the table's objects and flowtables (a snapshot without them could
/// not say what the kernel holds of them); 3: sets and maps of every kind.
const VERSION: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    boot_id: String,
    netns: (u64, u64),
    table: String,
    generation: u32,
    observed: Option<ObservedTable>,
}

/// Where the snapshot of one table lives, and the identity of this boot and
/// network namespace that a snapshot must carry to be used.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    path: PathBuf,
    boot_id: String,
    netns: (u64, u64),
    /// Whether this process may write it (only the lock holder does).
    pub writable: bool,
}

impl SnapshotFile {
    /// The snapshot beside `state_path` (`x.json` -> `x.snapshot`),
    /// for the calling thread's network namespace. None when the identity
    /// cannot be read (no /proc): then no snapshot is used.
    pub fn beside(state_path: &Path, writable: bool) -> Option<SnapshotFile> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
        Some(SnapshotFile {
            path: path_beside(state_path),
            boot_id: boot_id.trim().to_string(),
            netns: (ns.dev(), ns.ino()),
            writable,
        })
    }

    /// The snapshot, if there is one for this boot, namespace and table.
    /// The caller still compares its generation with the kernel's.
    pub fn load(&self, table: &str) -> Option<Observation> {
        let text = crate::files::read(&self.path, crate::files::Kind::Snapshot)
            .map_err(|e| {
                if !e.not_found() {
                    tracing::debug!(error = %crate::text::error_chain(&e), "snapshot not used");
                }
            })
            .ok()?;
        let s: Snapshot = match serde_json::from_slice(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "unreadable snapshot ignored");
                return None;
            }
        };
        let ours = s.version == VERSION
            && s.boot_id == self.boot_id
            && s.netns == self.netns
            && s.table == table;
        ours.then_some(Observation {
            generation: s.generation,
            table: s.observed,
        })
    }

    /// Writes the snapshot as the state file is written (atomically,
    /// root-only). Does nothing before the state directory exists (it is
    /// made with the state file, before the first kernel write; the next
    /// save then writes).
    pub fn save(&self, table: &str, seen: &Observation) -> std::io::Result<()> {
        if !self.path.parent().is_some_and(Path::is_dir) {
            return Ok(());
        }
        let snapshot = Snapshot {
            version: VERSION,
            boot_id: self.boot_id.clone(),
            netns: self.netns,
            table: table.to_string(),
            generation: seen.generation,
            observed: seen.table.clone(),
        };
        let bytes = serde_json::to_vec(&snapshot).expect("a snapshot serializes");
        crate::state::write_private(&self.path, &bytes)
    }
}

/// `x.json` -> `x.snapshot`.
pub fn path_beside(state_path: &Path) -> PathBuf {
    state_path.with_extension("snapshot")
}

/// Removes the snapshot and a half-written one (no error if absent).
pub fn remove(state_path: &Path) {
    if let Err((path, e)) = crate::state::remove_private(&path_beside(state_path)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove the table snapshot");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_snapshot_of_this_boot_namespace_and_table_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("netns-x.wasmwall.json");
        let file = SnapshotFile::beside(&state, true).expect("/proc is there");
        assert_eq!(
            file.load("wasmwall").map(|o| o.generation),
            None,
            "none yet"
        );
        let seen = Observation {
            generation: 42,
            table: Some(ObservedTable {
                owned: true,
                ..ObservedTable::default()
            }),
        };
        file.save("wasmwall", &seen).unwrap();
        assert_eq!(file.load("wasmwall"), Some(seen.clone()));
        assert_eq!(file.load("other"), None, "another table");
        let mut elsewhere = file.clone();
        elsewhere.netns.1 += 1;
        assert_eq!(elsewhere.load("wasmwall"), None, "another namespace");
        let mut rebooted = file.clone();
        rebooted.boot_id.push('x');
        assert_eq!(rebooted.load("wasmwall"), None, "another boot");
        std::fs::write(path_beside(&state), b"{ torn").unwrap();
        assert_eq!(file.load("wasmwall"), None, "unreadable");
        remove(&state);
        assert!(!path_beside(&state).exists());
    }
}
