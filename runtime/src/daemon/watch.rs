//! Watching the config, policy and lease files (inotify, through `notify`).
//! Their directories are watched, not the files: editors and `mv` replace a
//! file, which a watch on the file itself would not follow. A change of a
//! watched file is noted and the loop woken; the loop takes the changed
//! paths once they settled.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::Watcher as _;
use tokio::sync::Notify;

/// What the watcher's thread shares with the loop.
#[derive(Default)]
struct Shared {
    /// Canonical path as the watcher reports it -> the path as configured.
    paths: Mutex<HashMap<PathBuf, PathBuf>>,
    changed: Mutex<BTreeSet<PathBuf>>,
    notify: Notify,
}

/// The watched files.
pub struct Watch {
    shared: Arc<Shared>,
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

/// The directories to watch for `files`, and the map of the paths the
/// watcher will report to the paths as configured.
pub fn watch_map(files: &[&Path]) -> (BTreeSet<PathBuf>, HashMap<PathBuf, PathBuf>) {
    let mut dirs = BTreeSet::new();
    let mut map = HashMap::new();
    for file in files {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Ok(dir) = std::fs::canonicalize(&dir) else {
            continue;
        };
        if let Some(name) = file.file_name() {
            map.insert(dir.join(name), file.to_path_buf());
            dirs.insert(dir);
        }
    }
    (dirs, map)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watch {
    pub fn new() -> notify::Result<Watch> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let paths = lock(&theirs.paths);
            let mut hit = false;
            for p in &event.paths {
                if let Some(configured) = paths.get(p) {
                    lock(&theirs.changed).insert(configured.clone());
                    hit = true;
                }
            }
            if hit {
                theirs.notify.notify_one();
            }
        })?;
        Ok(Watch {
            shared,
            watcher,
            dirs: BTreeSet::new(),
        })
    }

    /// Watches exactly `files` from now on. A file whose directory does not
    /// exist is not followed (said in the log).
    pub fn set_files(&mut self, files: &[&Path]) -> notify::Result<()> {
        let (dirs, map) = watch_map(files);
        for file in files.iter().filter(|f| !map.values().any(|m| m == *f)) {
            tracing::warn!(
                file = %file.display(),
                "its directory does not exist: changes to this file are not followed (restart wasmwall once it exists)"
            );
        }
        *lock(&self.shared.paths) = map;
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.dirs) {
            self.watcher
                .watch(new, notify::RecursiveMode::NonRecursive)?;
        }
        self.dirs = dirs;
        Ok(())
    }

    /// Wakes when a watched file changed.
    pub async fn changed(&self) {
        self.shared.notify.notified().await
    }

    /// The files changed since the last call, as configured.
    pub fn take_changed(&self) -> BTreeSet<PathBuf> {
        std::mem::take(&mut *lock(&self.shared.changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_paths_map_to_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wasm");
        let cfg = dir.path().join("w.toml");
        let (dirs, map) = watch_map(&[&a, &cfg, Path::new("/nonexistent-dir/x")]);
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            dirs.into_iter().collect::<Vec<_>>(),
            vec![canonical.clone()]
        );
        assert_eq!(map.get(&canonical.join("a.wasm")), Some(&a));
        assert_eq!(map.get(&canonical.join("w.toml")), Some(&cfg));
        assert_eq!(map.len(), 2);
    }
}
