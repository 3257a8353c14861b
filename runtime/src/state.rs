//! The state file: what the runtime touched, recorded before it touches it, so
//! that clean-up can undo everything, also after a crash.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot create state directory {path}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write state file {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("state file {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

/// A sysctl the runtime changed, with the value it found.
///
/// The fields after `original` came later: a state file without them reads
/// as having none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSysctl {
    pub key: String,
    pub original: String,
    /// The keys the kernel changes along with this one when it is written
    /// (an `all` key spreads to each interface), with the values they had
    /// when it was recorded: restored after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<SpreadSysctl>,
    /// The policy that holds the key and the value it asked for: its last
    /// known good, which a later policy may not change while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// A key an `all` write changes too, with the value it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpreadSysctl {
    pub key: String,
    pub original: String,
}

/// The policy whose value a sysctl holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub policy: String,
    pub value: String,
}

impl SavedSysctl {
    /// A key found holding `original`, nothing spread, no holder yet.
    pub fn new(key: &str, original: &str) -> Self {
        SavedSysctl {
            key: key.to_string(),
            original: original.to_string(),
            spread: Vec::new(),
            holder: None,
        }
    }
}

/// What the runtime has touched in one network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Network namespace name, or none for the one the runtime started in.
    pub netns: Option<String>,
    /// The inet table the runtime owns.
    pub table: String,
    /// Whether that table already existed before the first write (it is
    /// deleted at clean-up either way: it carries the runtime's name).
    pub table_existed_before: bool,
    /// Sysctls changed, in the order they were first changed.
    pub sysctls: Vec<SavedSysctl>,
}

impl State {
    pub fn new(netns: Option<String>, table: String, table_existed_before: bool) -> Self {
        State {
            version: VERSION,
            netns,
            table,
            table_existed_before,
            sysctls: Vec::new(),
        }
    }

    /// The recorded sysctls by key, for look-ups in a loop.
    pub fn sysctl_index(&self) -> std::collections::HashMap<String, usize> {
        self.sysctls
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i))
            .collect()
    }
}

/// Where the state of (`netns`, `table`) lives inside `dir`.
pub fn path(dir: &Path, netns: Option<&str>, table: &str) -> PathBuf {
    match netns {
        Some(ns) => dir.join(format!("netns-{ns}.{table}.json")),
        None => dir.join(format!("host.{table}.json")),
    }
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::CreateDir {
            path: dir.display().to_string(),
            source,
        })
}

/// Reads a state file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<State>, StateError> {
    use crate::files::{Kind, RecordError};
    crate::files::read_record(path, Kind::State, VERSION, |s: &State| s.version).map_err(
        |e| match e {
            RecordError::Read(e) => StateError::Read(e),
            RecordError::Corrupt(message) => StateError::Corrupt {
                path: path.display().to_string(),
                message,
            },
        },
    )
}

/// The file a new version is written to before it replaces the old one. Its
/// name is fixed (only the lock holder writes), so a crash in the middle
/// leaves at most this one file, overwritten by the next write and removed
/// with the file.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` atomically with `bytes`, root-only (0600): a complete new
/// file replaces the old one by rename, and both are flushed to disk, so a
/// crash leaves the old or the new content, never a torn file. Never writes
/// through a symbolic link.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    // The mode above applies only to a new file.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// Removes `path` and a half-written new version a crash may have left (no
/// error if they are gone already).
pub(crate) fn remove_private(path: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    for p in [temp_path(path), path.to_path_buf()] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err((p, e)),
        }
    }
    Ok(())
}

/// Writes the state atomically (see [`write_private`]); the directory is
/// created root-only.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    create_dir(path.parent().unwrap_or(Path::new(".")))?;
    let text = serde_json::to_string_pretty(state).expect("state serializes");
    write_private(path, text.as_bytes()).map_err(|source| StateError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Removes the state file, and a half-written new one a crash may have left
/// (no error if they are gone already).
pub fn remove(path: &Path) -> Result<(), StateError> {
    remove_private(path).map_err(|(p, source)| StateError::Write {
        path: p.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir.path().join("state"), Some("laptop"), "wasmwall");
        assert!(load(&p).unwrap().is_none());
        let mut s = State::new(Some("laptop".into()), "wasmwall".into(), false);
        s.sysctls
            .push(SavedSysctl::new("net.ipv4.conf.lan0.route_localnet", "0"));
        s.sysctls.push(SavedSysctl {
            spread: vec![SpreadSysctl {
                key: "net.ipv4.conf.lan0.forwarding".into(),
                original: "1".into(),
            }],
            holder: Some(Holder {
                policy: "router".into(),
                value: "1".into(),
            }),
            ..SavedSysctl::new("net.ipv4.ip_forward", "0")
        });
        save(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), Some(s));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert!(load(&p).unwrap().is_none());
    }

    #[test]
    fn a_state_file_of_an_older_version_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(
            &p,
            r#"{"version": 1, "netns": null, "table": "wasmwall", "table_existed_before": false,
               "sysctls": [{"key": "net.ipv4.ip_forward", "original": "0"}]}"#,
        )
        .unwrap();
        let state = load(&p).unwrap().unwrap();
        assert_eq!(
            state.sysctls,
            [SavedSysctl::new("net.ipv4.ip_forward", "0")]
        );
    }

    #[test]
    fn corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(&p, "{not json").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("s.json") && err.contains("corrupt"), "{err}");
    }
}
