//! The file of a change waiting for confirmation, beside the state file:
//! `x.confirm` while it waits, `x.rollback` once the waiter claimed it to
//! roll back. Written as the state file is (whole or not at all, root-only,
//! never through a symbolic link), before the change's batch is sent.
//!
//! Each end of the wait is one atomic step on the file: `wasmwall confirm`
//! deletes `x.confirm`; a waiter whose deadline passed renames it to
//! `x.rollback`, and deletes that once the rollback is done. Whichever
//! comes first wins, and the other learns it from the file being gone.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{Confirmation, VERSION};
use crate::files::{self, FileError, Kind};

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] FileError),
    #[error("pending confirmation {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

/// `x.json` -> `x.confirm`: the change waits.
pub fn pending_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("confirm")
}

/// `x.json` -> `x.rollback`: its rollback has begun.
pub fn claimed_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("rollback")
}

fn write_error(path: &Path, source: std::io::Error) -> RecordError {
    RecordError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the record of a change that waits (replacing one that waited).
pub fn save(state_path: &Path, c: &Confirmation) -> Result<(), RecordError> {
    let path = pending_path(state_path);
    crate::state::create_dir(path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| write_error(&path, std::io::Error::other(e)))?;
    let bytes = serde_json::to_vec(c).expect("a confirmation serializes");
    crate::state::write_private(&path, &bytes).map_err(|e| write_error(&path, e))
}

fn read(path: &Path) -> Result<Option<Confirmation>, RecordError> {
    files::read_record(path, Kind::Confirmation, VERSION, |c: &Confirmation| {
        c.version
    })
    .map_err(|e| match e {
        files::RecordError::Read(e) => RecordError::Read(e),
        files::RecordError::Corrupt(message) => RecordError::Corrupt {
            path: path.display().to_string(),
            message,
        },
    })
}

/// A record found beside the state file.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub confirmation: Confirmation,
    /// Its rollback had begun (`x.rollback`).
    pub claimed: bool,
}

/// The record of a change that waits, or whose rollback began; the latter
/// first (it is the older: a new change is refused while one is claimed).
pub fn find(state_path: &Path) -> Result<Option<Found>, RecordError> {
    if let Some(c) = read(&claimed_path(state_path))? {
        return Ok(Some(Found {
            confirmation: c,
            claimed: true,
        }));
    }
    Ok(read(&pending_path(state_path))?.map(|c| Found {
        confirmation: c,
        claimed: false,
    }))
}

/// What `wasmwall confirm` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    /// This change is confirmed: its record is gone.
    Done(Confirmation),
    /// Too late: its rollback has begun.
    TooLate(Confirmation),
    Nothing,
}

/// Confirms the change that waits: deletes its record.
pub fn confirm(state_path: &Path) -> Result<Confirmed, RecordError> {
    let path = pending_path(state_path);
    let Some(c) = read(&path)? else {
        return Ok(match read(&claimed_path(state_path))? {
            Some(c) => Confirmed::TooLate(c),
            None => Confirmed::Nothing,
        });
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(state_path);
            Ok(Confirmed::Done(c))
        }
        // Claimed between the read and now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Confirmed::TooLate(c)),
        Err(e) => Err(write_error(&path, e)),
    }
}

/// Claims the record of a change to roll it back; `None` when it is gone
/// (confirmed meanwhile).
pub fn claim(state_path: &Path) -> Result<Option<Confirmation>, RecordError> {
    let (from, to) = (pending_path(state_path), claimed_path(state_path));
    match std::fs::rename(&from, &to) {
        Ok(()) => sync_dir(state_path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(write_error(&from, e)),
    }
    read(&to)
}

/// Removes the record, under either name, once it is settled (confirmed by
/// the waiter itself, or rolled back).
pub fn remove(state_path: &Path) -> Result<(), RecordError> {
    for path in [claimed_path(state_path), pending_path(state_path)] {
        crate::state::remove_private(&path).map_err(|(p, e)| write_error(&p, e))?;
    }
    sync_dir(state_path);
    Ok(())
}

/// Makes a delete or rename in the state directory durable.
fn sync_dir(state_path: &Path) {
    if let Some(dir) = state_path.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}
