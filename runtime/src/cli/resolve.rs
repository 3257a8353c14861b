//! From arguments and files to what the engine needs: the config (its
//! permissions checked, its policies' input files read, the command line's
//! overrides applied), the network namespace entered, the target (table,
//! namespace, state file), the lock, and a policy's name.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::ConfigArgs;
use crate::config::Config;
use crate::engine::Target;
use crate::files::{self, Kind};
use crate::lock::{self, Lock};
use crate::{fields, netns};

/// A config as a command acts by it, and where it acts.
pub struct Resolved {
    pub config: Config,
    pub target: Target,
}

/// Reads the config and its policies' input files (refusing those others
/// could have written, unless told otherwise), enters its namespace and
/// finds the target.
pub fn load_config(args: &ConfigArgs) -> Result<Resolved> {
    let mut config = Config::load_for_policies(&args.config, args.insecure_permissions)?;
    config.cache = args.cache.settings(config.cache);
    let netns = args.netns.clone().or_else(|| config.netns.clone());
    if let Some(ns) = &netns {
        netns::enter(ns)?;
    }
    let target = target(&config.table, netns.as_deref(), &config.state_dir)?;
    Ok(Resolved { config, target })
}

/// The target of `table` in the namespace the process is in now, named
/// `netns` when it entered one by name; otherwise by the name the
/// namespace has under /run/netns, if any, so that where the state file is
/// does not depend on how the namespace was entered (`--netns NS` or
/// `ip netns exec NS`).
pub fn target(table: &str, netns: Option<&str>, state_dir: &Path) -> Result<Target> {
    let name = match netns {
        Some(n) => Some(n.to_string()),
        None => netns::name_of(netns::current()?),
    };
    Ok(Target::new(table, name.as_deref(), state_dir))
}

/// Takes the one lock of the target's table in this namespace. When a run
/// that died held it with its state elsewhere (another `state_dir`) and this
/// target has none, that state becomes this target's.
pub fn lock(target: &Target) -> Result<Lock> {
    let here = netns::current()?;
    let lock = lock::acquire(
        Path::new(lock::LOCK_DIR),
        here,
        &target.table,
        &target.state_path,
    )?;
    if let Some(old) = lock.previous.as_ref().and_then(|p| p.state.clone())
        && old != target.state_path
        && !target.state_path.exists()
    {
        // A namespace's inode can be reused by a later one: take over only
        // a state recorded for this table in a namespace of this name.
        match crate::state::load(&old) {
            Ok(Some(state)) if state.table == target.table && state.netns == target.netns => {
                adopt(&old, &target.state_path)?
            }
            Ok(Some(_)) => tracing::warn!(
                state = %old.display(),
                "the lock names the state of another namespace or table; not taken over"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %crate::text::error_chain(&e), "the state the lock names cannot be read; not taken over")
            }
        }
    }
    Ok(lock)
}

/// Moves a state file (and the leases, the record of the applied table
/// and a change waiting for confirmation kept beside it) to `to`.
fn adopt(from: &Path, to: &Path) -> Result<()> {
    tracing::warn!(
        from = %from.display(),
        to = %to.display(),
        "a wasmwall that stopped without cleaning up kept its state elsewhere; taking it over"
    );
    let bytes = files::read(from, Kind::State)?;
    crate::state::create_dir(to.parent().unwrap_or(Path::new(".")))?;
    crate::state::write_private(to, &bytes)
        .with_context(|| format!("cannot write {}", to.display()))?;
    crate::state::remove(from)?;
    let (old_leases, new_leases) = (from.with_extension("leases"), to.with_extension("leases"));
    if let Ok(leases) = files::read(&old_leases, Kind::KeptLeases)
        && !new_leases.exists()
    {
        crate::state::write_private(&new_leases, &leases)
            .with_context(|| format!("cannot write {}", new_leases.display()))?;
        let _ = std::fs::remove_file(&old_leases);
    }
    // The record of the applied table, and a change left waiting for
    // confirmation: the next rollback needs them where the state now is.
    use crate::confirm::record::{claimed_path, pending_path};
    type Beside = fn(&Path) -> PathBuf;
    let beside: [(Beside, Kind); 3] = [
        (crate::applied::path_beside, Kind::Applied),
        (pending_path, Kind::Confirmation),
        (claimed_path, Kind::Confirmation),
    ];
    for (path, kind) in beside {
        let (old, new) = (path(from), path(to));
        if let Ok(bytes) = files::read(&old, kind)
            && !new.exists()
        {
            crate::state::write_private(&new, &bytes)
                .with_context(|| format!("cannot write {}", new.display()))?;
            let _ = std::fs::remove_file(&old);
        }
    }
    crate::snapshot::remove(from);
    Ok(())
}

/// `--name`, else the file name; either must be a valid policy name.
pub fn policy_name(name: Option<&str>, path: &Path) -> Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy")
            .to_string(),
    };
    if !fields::valid_policy_name(&name) {
        bail!(
            "policy name {name:?} must be 1-24 lower-case letters, digits or '-', starting with a letter (set one with --name)"
        );
    }
    Ok(name)
}

/// `KEY=VALUE` of `--set`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// The config's `[[policy]]` that runs `path` or is named `name`, for the
/// commands that try one policy by a config's rules.
pub fn configured_policy<'c>(
    config: &'c Config,
    name: Option<&str>,
    path: &Path,
) -> Result<&'c crate::config::PolicyConfig> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    let wanted = canonical(path);
    let found = match name {
        Some(n) => config.policies.iter().find(|p| p.name == n),
        None => config
            .policies
            .iter()
            .find(|p| canonical(&p.path) == wanted),
    };
    match (found, name) {
        (Some(p), _) => Ok(p),
        (None, Some(n)) => bail!("the config has no [[policy]] named {n:?}"),
        (None, None) => bail!(
            "no [[policy]] of the config runs {}; name the one to judge by with --name",
            path.display()
        ),
    }
}
