//! The sysctls the policies want: who holds each key (the policy earlier in
//! the config; a later one that wants another value fails as a whole), the
//! keys checked again against the allow-list where they are written, and
//! read, written, recorded (with what an `all` key spreads to) and restored
//! through the kernel adapter. Linear in the number of keys.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::ir::PolicyRules;
use crate::kernel::Kernel;
use crate::state::{Holder, SavedSysctl, SpreadSysctl};
use crate::sysctl::{self, AllowList};

use super::error::{EngineError, PolicyError, PolicyFailure, SysctlConflict, SysctlError};
use super::evaluate::Evaluation;
use super::policies::Policies;
use super::{Firewall, log_failure};

/// A sysctl a policy wants, with its /proc path.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub key: String,
    /// Canonical (validation made it so).
    pub value: String,
    pub path: PathBuf,
    /// The first policy that asked for it.
    pub policy: String,
}

/// The sysctls `desired` asks for, each setting once (see
/// [`sysctl::setting`]), those that spread first. Two policies wanting
/// different values of one key is an error here: [`settle`] has failed the
/// later one before anything is applied.
pub(super) fn wanted(
    allow: &AllowList,
    desired: &[PolicyRules],
) -> Result<Vec<Wanted>, EngineError> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for p in desired {
        for s in &p.rules.sysctls {
            if let Some(&i) = index.get(sysctl::setting(&s.key)) {
                let w = &wanted[i];
                if w.value != s.value {
                    return Err(EngineError::SysctlConflict(Box::new(SysctlConflict {
                        key: s.key.clone(),
                        policy: p.policy.clone(),
                        wanted: s.value.clone(),
                        holder: w.policy.clone(),
                        held: w.value.clone(),
                        holder_kept: false,
                    })));
                }
                continue;
            }
            // Allow-listed by validation; checked again because this is
            // where the write happens.
            let path = checked_path(allow, &s.key)?;
            index.insert(sysctl::setting(&s.key), wanted.len());
            wanted.push(Wanted {
                key: s.key.clone(),
                value: s.value.clone(),
                path,
                policy: p.policy.clone(),
            });
        }
    }
    // A key that spreads to the interfaces' keys is written before them, so
    // one apply leaves what each asks for (the kernel spreads only when the
    // value changes).
    wanted.sort_by_key(|w| sysctl::spread(&w.key).is_none());
    Ok(wanted)
}

/// A policy with the keys it wants (or, `kept`, held at its last known
/// good), at its place in the config.
struct Claimant<'a> {
    rank: usize,
    policy: &'a str,
    keys: Vec<(&'a str, &'a str)>,
    kept: bool,
}

/// Who holds a key while the policies are settled.
struct Claim<'a> {
    policy: &'a str,
    value: &'a str,
    kept: bool,
}

/// Settles who holds each sysctl (each setting, by any of its names), in the
/// order of the config (`policies`): a policy that wants a value of a key an
/// earlier policy holds with another value fails as a whole. A failing policy holds what it held when it last
/// applied (`held`, from the state file), so a later policy cannot change a
/// value its kept rules rely on. Returns the policies that fail.
pub(super) fn settle(
    policies: &Policies,
    evaluation: &Evaluation,
    held: &[SavedSysctl],
) -> Vec<PolicyFailure> {
    let rank: HashMap<&str, usize> = policies
        .slots()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.config.name.as_str(), i))
        .collect();
    let rank_of = |policy: &str| rank.get(policy).copied().unwrap_or(usize::MAX);
    let failing: HashSet<&str> = evaluation
        .failed
        .iter()
        .map(|f| f.policy.as_str())
        .collect();

    let mut claimants: Vec<Claimant> = evaluation
        .rules
        .iter()
        .map(|p| Claimant {
            rank: rank_of(&p.policy),
            policy: &p.policy,
            keys: p
                .rules
                .sysctls
                .iter()
                .map(|s| (s.key.as_str(), s.value.as_str()))
                .collect(),
            kept: false,
        })
        .collect();
    let mut kept: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for s in held {
        if let Some(h) = &s.holder
            && failing.contains(h.policy.as_str())
        {
            kept.entry(&h.policy).or_default().push((&s.key, &h.value));
        }
    }
    claimants.extend(kept.into_iter().map(|(policy, keys)| Claimant {
        rank: rank_of(policy),
        policy,
        keys,
        kept: true,
    }));
    claimants.sort_by_key(|c| c.rank);

    let mut claims: HashMap<&str, Claim> = HashMap::new();
    let mut failures = Vec::new();
    for c in claimants {
        if !c.kept {
            let conflict = c.keys.iter().find_map(|&(key, value)| {
                let held = claims
                    .get(sysctl::setting(key))
                    .filter(|h| h.value != value)?;
                Some(SysctlConflict {
                    key: key.to_string(),
                    policy: c.policy.to_string(),
                    wanted: value.to_string(),
                    holder: held.policy.to_string(),
                    held: held.value.to_string(),
                    holder_kept: held.kept,
                })
            });
            if let Some(conflict) = conflict {
                failures.push(PolicyFailure::new(
                    c.policy,
                    PolicyError::SysctlConflict(Box::new(conflict)),
                ));
                continue;
            }
        }
        for (key, value) in c.keys {
            claims.entry(sysctl::setting(key)).or_insert(Claim {
                policy: c.policy,
                value,
                kept: c.kept,
            });
        }
    }
    failures
}

impl<K: Kernel> Firewall<K> {
    /// Moves to `evaluation`'s failures every policy whose sysctls conflict
    /// with those of a policy earlier in the config of `policies` (see
    /// [`settle`]); returns those failures, not logged.
    pub fn settle_with(
        &self,
        policies: &Policies,
        evaluation: &mut Evaluation,
    ) -> Vec<PolicyFailure> {
        // An unreadable state file fails the apply itself; here it only
        // means that no failing policy holds a key.
        let held = crate::state::load(&self.target.state_path)
            .ok()
            .flatten()
            .map(|s| s.sysctls)
            .unwrap_or_default();
        let failures = settle(policies, evaluation, &held);
        for f in &failures {
            *evaluation = evaluation.without(f.clone());
        }
        failures
    }

    /// [`Firewall::settle_with`] the firewall's own policies, logging each
    /// new failure.
    pub fn settle(&self, evaluation: &mut Evaluation) {
        for f in self.settle_with(&self.policies, evaluation) {
            log_failure(&f);
        }
    }

    /// Whether a new version of `policy`, answering `rules`, would fail for
    /// a sysctl a policy earlier in the config holds: the failure, if so.
    pub fn sysctl_conflict(
        &self,
        current: &Evaluation,
        policy: &str,
        rules: crate::ir::Ruleset,
    ) -> Option<PolicyFailure> {
        let mut next = current.clone();
        next.rules.retain(|r| r.policy != policy);
        next.failed.retain(|f| f.policy != policy);
        next.rules.push(PolicyRules {
            policy: policy.to_string(),
            rules,
        });
        self.settle_with(&self.policies, &mut next)
            .into_iter()
            .find(|f| f.policy == policy)
    }
}

/// Records `w`'s key as found now (before anything is written): its value,
/// and what a write of it spreads to (see [`sysctl::spread`]), each value of
/// an interface that exists now. The holder is set by the caller.
pub(super) fn record<K: Kernel>(
    kernel: &mut K,
    allow: &AllowList,
    w: &Wanted,
) -> Result<SavedSysctl, SysctlError> {
    let mut saved = SavedSysctl::new(&w.key, &read(kernel, &w.key, &w.path)?);
    let Some(spread) = sysctl::spread(&w.key) else {
        return Ok(saved);
    };
    let (family, leaf) = spread.each_interface;
    let dir = sysctl::interfaces_dir(family);
    let interfaces = kernel
        .list_sysctls(&dir)
        .map_err(|e| io_error(&w.key, "list", &dir, e))?;
    let each = interfaces
        .iter()
        // `all` and `default` are among the keys named.
        .filter(|i| *i != "all" && *i != "default")
        .map(|i| sysctl::interface_key(family, i, leaf));
    let keys = spread.keys.iter().map(|k| k.to_string()).chain(each);
    for key in keys.filter(|k| *k != w.key) {
        // An interface whose name no key can spell cannot be restored: its
        // value is not recorded.
        let Ok(path) = allow.check(&key) else {
            continue;
        };
        match kernel.read_sysctl(&path) {
            Ok(original) => saved.spread.push(SpreadSysctl { key, original }),
            // Gone since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&w.key, "read", &path, e)),
        }
    }
    Ok(saved)
}

/// Makes `policy` hold `saved` at `value`, unless a failing policy holds it
/// at that value already (its last known good). Returns whether it changed.
pub(super) fn hold(
    saved: &mut SavedSysctl,
    evaluation: &Evaluation,
    policy: &str,
    value: &str,
) -> bool {
    let keeps = saved
        .holder
        .as_ref()
        .is_some_and(|h| h.value == value && evaluation.failure(&h.policy).is_some());
    let next = Holder {
        policy: policy.to_string(),
        value: value.to_string(),
    };
    if keeps || saved.holder.as_ref() == Some(&next) {
        return false;
    }
    saved.holder = Some(next);
    true
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

/// Writes `w`'s value, and reads it back: a value the kernel keeps in
/// another form is one no reconcile could ever converge on.
pub(super) fn write<K: Kernel>(kernel: &mut K, w: &Wanted) -> Result<(), SysctlError> {
    kernel
        .write_sysctl(&w.path, &w.value)
        .map_err(|e| io_error(&w.key, "write", &w.path, e))?;
    let now = read(kernel, &w.key, &w.path)?;
    if sysctl::holds(&now, &w.value) {
        Ok(())
    } else {
        Err(io_error(
            &w.key,
            "set",
            &w.path,
            std::io::Error::other(format!(
                "the kernel holds {now:?} after {:?} was written",
                w.value
            )),
        ))
    }
}

/// Puts a sysctl back to the value recorded before wasmwall changed it, and
/// then each key its write spread to, skipping interfaces that are gone.
/// Returns `key=value` of each written.
pub(super) fn restore<K: Kernel>(
    kernel: &mut K,
    allow: &AllowList,
    saved: &SavedSysctl,
) -> Result<Vec<String>, SysctlError> {
    // Keys in the state file were allow-listed when recorded; check again so
    // an edited state file cannot steer writes elsewhere.
    let path = checked_path(allow, &saved.key)?;
    let mut restored = Vec::new();
    match kernel.write_sysctl(&path, &saved.original) {
        // The interface is gone, and its setting with it: nothing to restore.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(key = %saved.key, "sysctl no longer exists (interface removed); nothing to restore");
        }
        other => {
            other.map_err(|e| io_error(&saved.key, "restore", &path, e))?;
            restored.push(format!("{}={}", saved.key, saved.original));
        }
    }
    for s in &saved.spread {
        let path = checked_path(allow, &s.key)?;
        let written = kernel.read_sysctl(&path).and_then(|now| {
            if sysctl::holds(&now, &s.original) {
                Ok(false)
            } else {
                kernel.write_sysctl(&path, &s.original).map(|()| true)
            }
        });
        match written {
            Ok(true) => restored.push(format!("{}={}", s.key, s.original)),
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&s.key, "restore", &path, e)),
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests;
