//! Refusing files that someone else could have written, as sshd's
//! StrictModes does: whoever can change a policy, the config or a directory
//! above them controls the firewall, so such files are not used unless the
//! operator explicitly says so.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;
const S_ISVTX: u32 = 0o1000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PermError {
    #[error("cannot read {what} {path}: {message}")]
    Unreadable {
        what: String,
        path: String,
        message: String,
    },
    #[error(
        "refusing {what} {path}: {culprit} {problem}; anyone who can write there controls the firewall (fix it with chown/chmod, or pass --insecure-permissions)"
    )]
    Unsafe {
        what: String,
        path: String,
        culprit: String,
        problem: String,
    },
}

/// Who may own the files: root, and the user wasmwall runs as.
fn trusted_owner(uid: u32, me: u32) -> bool {
    uid == 0 || uid == me
}

/// What is wrong with one file or directory's ownership and mode, if
/// anything. A directory writable by all is fine when it is root's and
/// sticky (/tmp): others cannot rename or delete what is in it. Group write
/// is fine for the root group.
fn problem(uid: u32, gid: u32, mode: u32, is_dir: bool, me: u32) -> Option<String> {
    if !trusted_owner(uid, me) {
        return Some(format!("is owned by uid {uid}"));
    }
    let sticky_root_dir = is_dir && uid == 0 && mode & S_ISVTX != 0;
    if mode & S_IWOTH != 0 && !sticky_root_dir {
        return Some(format!(
            "is writable by everyone (mode {:04o})",
            mode & 0o7777
        ));
    }
    if mode & S_IWGRP != 0 && gid != 0 && !sticky_root_dir {
        return Some(format!(
            "is writable by group {gid} (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

/// Checks `path` (a file) and every directory above it, after resolving
/// symbolic links. `what` names the file in the error ("policy file").
pub fn check(path: &Path, what: &str) -> Result<(), PermError> {
    let me = nix::unistd::geteuid().as_raw();
    let unreadable = |p: &Path, e: std::io::Error| PermError::Unreadable {
        what: if p == path {
            what.to_string()
        } else {
            format!("the directory above {what}")
        },
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let resolved = fs::canonicalize(path).map_err(|e| unreadable(path, e))?;
    let mut at: Option<PathBuf> = Some(resolved.clone());
    while let Some(p) = at {
        let meta = fs::metadata(&p).map_err(|e| unreadable(&p, e))?;
        if let Some(problem) = problem(meta.uid(), meta.gid(), meta.mode(), meta.is_dir(), me) {
            return Err(PermError::Unsafe {
                what: what.to_string(),
                path: path.display().to_string(),
                culprit: if p == resolved {
                    "it".to_string()
                } else {
                    format!("directory {}", p.display())
                },
                problem,
            });
        }
        at = p.parent().map(Path::to_path_buf);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: bool = true;
    const FILE: bool = false;

    #[test]
    fn owners_and_modes() {
        assert_eq!(problem(0, 0, 0o644, FILE, 0), None);
        assert_eq!(
            problem(1000, 1000, 0o600, FILE, 1000),
            None,
            "the user's own"
        );
        assert_eq!(problem(0, 0, 0o664, FILE, 0), None, "root's group");
        assert_eq!(problem(0, 0, 0o1777, DIR, 0), None, "/tmp");
        assert!(
            problem(1000, 0, 0o644, FILE, 0)
                .unwrap()
                .contains("uid 1000")
        );
        assert!(problem(0, 0, 0o666, FILE, 0).unwrap().contains("everyone"));
        assert!(
            problem(0, 100, 0o664, FILE, 0)
                .unwrap()
                .contains("group 100")
        );
        assert!(
            problem(0, 0, 0o777, DIR, 0).unwrap().contains("0777"),
            "not sticky"
        );
        assert!(
            problem(1000, 1000, 0o1777, DIR, 0).is_some(),
            "sticky, not root's"
        );
    }

    #[test]
    fn a_world_writable_directory_above_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        let file = open.join("policy.wasm");
        fs::write(&file, b"x").unwrap();
        assert_eq!(check(&file, "policy file"), Ok(()));
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check(&file, "policy file").unwrap_err().to_string();
        assert!(err.contains("directory") && err.contains("open"), "{err}");
        assert!(err.contains("writable by everyone"), "{err}");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o646)).unwrap();
        let err = check(&file, "policy file").unwrap_err().to_string();
        assert!(
            err.contains(": it is writable by everyone (mode 0646)"),
            "{err}"
        );
        assert!(matches!(
            check(&open.join("missing"), "policy file"),
            Err(PermError::Unreadable { .. })
        ));
    }
}
