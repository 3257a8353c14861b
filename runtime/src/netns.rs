//! Which network namespace the process acts in: entering one by name
//! (`/run/netns/NAME`, as `ip netns` makes them), its identity (the device
//! and inode of its nsfs file: the same however the namespace was entered),
//! and the name it has under /run/netns, if any.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A network namespace's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
}

#[derive(Debug, Error)]
pub enum NetnsError {
    #[error("{0:?} is not a valid network namespace name")]
    BadName(String),
    #[error("cannot open network namespace {name:?} ({path})")]
    Open {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter network namespace {name:?} (needs root)")]
    Enter {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("cannot tell which network namespace this is (/proc/thread-self/ns/net)")]
    Identity(#[source] std::io::Error),
}

/// The namespace of the calling thread.
pub fn current() -> Result<NetnsId, NetnsError> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net").map_err(NetnsError::Identity)?;
    Ok(NetnsId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The name under [`NETNS_DIR`] of namespace `id` (the first by name when it
/// has several), if it has one.
pub fn name_of(id: NetnsId) -> Option<String> {
    name_in(Path::new(NETNS_DIR), id)
}

fn name_in(dir: &Path, id: NetnsId) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::fields::valid_netns(n))
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        std::fs::metadata(dir.join(n)).is_ok_and(|m| (m.dev(), m.ino()) == (id.dev, id.ino))
    })
}

/// Moves the whole process into /run/netns/NAME. Must run before any thread
/// is started: setns affects only the calling thread, and threads started
/// later inherit it.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    if !crate::fields::valid_netns(name) {
        return Err(NetnsError::BadName(name.to_string()));
    }
    let path = format!("{NETNS_DIR}/{name}");
    let file = std::fs::File::open(&path).map_err(|source| NetnsError::Open {
        name: name.to_string(),
        path: path.clone(),
        source,
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        NetnsError::Enter {
            name: name.to_string(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_named_by_the_file_with_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "not a name"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let meta = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap();
        let id = |n: &str| NetnsId {
            dev: meta(n).dev(),
            ino: meta(n).ino(),
        };
        assert_eq!(name_in(dir.path(), id("b")), Some("b".into()));
        assert_eq!(name_in(dir.path(), id("not a name")), None);
        assert_eq!(name_in(dir.path(), NetnsId { dev: 0, ino: 0 }), None);
        assert!(current().is_ok());
    }
}
