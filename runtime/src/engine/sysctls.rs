//! The sysctls the policies want: which ones (the first policy wins a
//! conflict), checked again against the allow-list where they are written,
//! and read, written and restored through the kernel adapter.

use std::path::{Path, PathBuf};

use crate::ir::PolicyRules;
use crate::kernel::Kernel;
use crate::state::SavedSysctl;
use crate::sysctl::AllowList;

use super::error::SysctlError;

/// A sysctl a policy wants, with its /proc path.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub key: String,
    pub value: String,
    pub path: PathBuf,
    /// The first policy that asked for it.
    pub policy: String,
}

/// The sysctls `desired` asks for; the first policy wins a conflict.
pub(super) fn wanted(
    allow: &AllowList,
    desired: &[PolicyRules],
) -> Result<Vec<Wanted>, SysctlError> {
    let mut wanted: Vec<Wanted> = Vec::new();
    for p in desired {
        for s in &p.rules.sysctls {
            if let Some(w) = wanted.iter().find(|w| w.key == s.key) {
                if w.value != s.value {
                    tracing::warn!(key = %s.key, first = %w.policy, second = %p.policy, "two policies want different values; the first one wins");
                }
                continue;
            }
            // Allow-listed by validation; checked again because this is
            // where the write happens.
            let path = checked_path(allow, &s.key)?;
            wanted.push(Wanted {
                key: s.key.clone(),
                value: s.value.clone(),
                path,
                policy: p.policy.clone(),
            });
        }
    }
    Ok(wanted)
}

pub(super) fn io_error(
    key: &str,
    action: &'static str,
    path: &Path,
    source: std::io::Error,
) -> SysctlError {
    SysctlError {
        key: key.to_string(),
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The /proc path of an allow-listed key.
pub(super) fn checked_path(allow: &AllowList, key: &str) -> Result<PathBuf, SysctlError> {
    allow.check(key).map_err(|e| {
        io_error(
            key,
            "check",
            Path::new("/proc/sys"),
            std::io::Error::other(e),
        )
    })
}

pub(super) fn read<K: Kernel>(
    kernel: &mut K,
    key: &str,
    path: &Path,
) -> Result<String, SysctlError> {
    kernel
        .read_sysctl(path)
        .map_err(|e| io_error(key, "read", path, e))
}

pub(super) fn write<K: Kernel>(
    kernel: &mut K,
    key: &str,
    path: &Path,
    value: &str,
) -> Result<(), SysctlError> {
    kernel
        .write_sysctl(path, value)
        .map_err(|e| io_error(key, "write", path, e))
}

/// Puts a sysctl back to the value recorded before wasmwall changed it.
pub(super) fn restore<K: Kernel>(
    kernel: &mut K,
    allow: &AllowList,
    saved: &SavedSysctl,
) -> Result<(), SysctlError> {
    // Keys in the state file were allow-listed when recorded; check again so
    // an edited state file cannot steer writes elsewhere.
    let path = checked_path(allow, &saved.key)?;
    match kernel.write_sysctl(&path, &saved.original) {
        // The interface is gone, and its setting with it: nothing to restore.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(key = %saved.key, "sysctl no longer exists (interface removed); nothing to restore");
            Ok(())
        }
        other => other.map_err(|e| io_error(&saved.key, "restore", &path, e)),
    }
}
