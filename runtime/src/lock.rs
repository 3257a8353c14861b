//! One wasmwall at a time per table and network namespace. The lock is
//! keyed by the namespace's identity (not by how it was entered or named)
//! and the table, and lives in one directory every instance finds whatever
//! its config says ([`LOCK_DIR`]). The lock file names its holder and the
//! holder's state file, so that the next holder after a crash (a clean-up
//! above all) finds that state however the run was started.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use crate::netns::NetnsId;

/// Where the locks are.
pub const LOCK_DIR: &str = "/run/wasmwall/locks";
/// Tries at a lock whose file the previous holder removed meanwhile.
const ATTEMPTS: usize = 5;

#[derive(Debug, Error)]
pub enum LockError {
    #[error("cannot create the lock directory {path}")]
    Dir {
        path: String,
        #[source]
        source: crate::state::StateError,
    },
    #[error("cannot take the lock {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another wasmwall is working on table inet {table} in this network namespace ({holder}; lock {path}); stop it first (SIGTERM)"
    )]
    Busy {
        table: String,
        path: String,
        holder: String,
    },
}

/// Who held a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The state file it worked with.
    pub state: Option<PathBuf>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
                .filter(|v| !v.is_empty())
        };
        Holder {
            pid: field("pid ").and_then(|p| p.parse().ok()),
            state: field("state ").map(PathBuf::from),
        }
    }
}

/// An exclusive hold on one (namespace, table). Released when dropped (the
/// file is removed then) or when the process dies, however it dies (the
/// file then stays, naming the state of the run that died).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    _file: Flock<File>,
    /// What the file said when this process took it: a holder that died.
    pub previous: Option<Holder>,
}

/// The lock file of (`netns`, `table`) in `dir`.
pub fn path_in(dir: &Path, netns: NetnsId, table: &str) -> PathBuf {
    dir.join(format!("ns-{}-{}.{table}.lock", netns.dev, netns.ino))
}

/// Takes the lock of (`netns`, `table`) in `dir` ([`LOCK_DIR`] but in
/// tests) without waiting, and records this process and its `state` file.
pub fn acquire(dir: &Path, netns: NetnsId, table: &str, state: &Path) -> Result<Lock, LockError> {
    crate::state::create_dir(dir).map_err(|source| LockError::Dir {
        path: dir.display().to_string(),
        source,
    })?;
    let path = path_in(dir, netns, table);
    let shown = path.display().to_string();
    let io = |source| LockError::Io {
        path: shown.clone(),
        source,
    };
    for _ in 0..ATTEMPTS {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = Holder::parse(&text);
                return Err(LockError::Busy {
                    table: table.to_string(),
                    path: shown,
                    holder: match (holder.pid, holder.state) {
                        (Some(pid), Some(state)) => {
                            format!("pid {pid}, state file {}", state.display())
                        }
                        (Some(pid), None) => format!("pid {pid}"),
                        _ => "unknown pid".into(),
                    },
                });
            }
            Err((_, errno)) => return Err(io(errno.into())),
        };
        // The holder before us removes the file when it lets go: if it did
        // between our open and our lock, this lock is on a file nobody else
        // will open. Take the one at the path instead.
        let same = std::fs::symlink_metadata(&path)
            .ok()
            .zip(locked.metadata().ok())
            .is_some_and(|(at_path, ours)| {
                (at_path.dev(), at_path.ino()) == (ours.dev(), ours.ino())
            });
        if !same {
            continue;
        }
        let mut text = String::new();
        locked.read_to_string(&mut text).map_err(io)?;
        let previous = (!text.trim().is_empty()).then(|| Holder::parse(&text));
        locked.set_len(0).map_err(io)?;
        locked.rewind().map_err(io)?;
        write!(
            locked,
            "pid {}\nstate {}\n",
            std::process::id(),
            state.display()
        )
        .map_err(io)?;
        return Ok(Lock {
            path,
            _file: locked,
            previous,
        });
    }
    Err(io(std::io::Error::other(
        "the lock file kept changing under this process",
    )))
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held: whoever opens the path next makes a new
        // file, and a process that opened this one finds out (see acquire).
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: NetnsId = NetnsId {
        dev: 4,
        ino: 4026531840,
    };

    #[test]
    fn one_holder_per_namespace_and_table_whatever_its_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), NS, "t", Path::new("/a/host.t.json")).unwrap();
        assert_eq!(held.previous, None);
        let err = acquire(dir.path(), NS, "t", Path::new("/b/netns-x.t.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("another wasmwall")
                && err.contains(&format!("pid {}", std::process::id()))
                && err.contains("/a/host.t.json"),
            "{err}"
        );
        acquire(dir.path(), NS, "other", Path::new("/a/host.other.json")).unwrap();
        acquire(
            dir.path(),
            NetnsId { dev: 4, ino: 1 },
            "t",
            Path::new("/a/x"),
        )
        .unwrap();
        drop(held);
        assert!(
            !path_in(dir.path(), NS, "t").exists(),
            "removed when let go"
        );
        acquire(dir.path(), NS, "t", Path::new("/b/netns-x.t.json")).unwrap();
    }

    #[test]
    fn a_file_left_by_a_holder_that_died_names_its_state() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            path_in(dir.path(), NS, "t"),
            "pid 999999\nstate /run/wasmwall/host.t.json\n",
        )
        .unwrap();
        let lock = acquire(dir.path(), NS, "t", Path::new("/x/netns-a.t.json")).unwrap();
        assert_eq!(
            lock.previous,
            Some(Holder {
                pid: Some(999_999),
                state: Some(PathBuf::from("/run/wasmwall/host.t.json"))
            })
        );
    }
}
