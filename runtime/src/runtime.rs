//! One reconcile: evaluate every policy, validate, plan, apply in one batch,
//! and keep the sysctls in line; and the clean-up that undoes it all.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{Config, PolicyConfig};
use crate::host::{HostError, LoadedPolicy, PolicyEngine};
use crate::ir::PolicyRules;
use crate::kernel::{ApplyReport, Kernel, KernelError};
use crate::plan;
use crate::state::{self, SavedSysctl, State, StateError};
use crate::sysctl::{self, AllowList};
use crate::validate::{self, Invalid};
use crate::world::{Event, WorldState};

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("policy {policy}: cannot load")]
    Load {
        policy: String,
        #[source]
        source: HostError,
    },
    #[error("policy {policy}: evaluation failed")]
    Evaluate {
        policy: String,
        #[source]
        source: HostError,
    },
    #[error("policy {policy}: {source}")]
    Invalid {
        policy: String,
        #[source]
        source: Invalid,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("applying the ruleset to the kernel failed")]
    Kernel(#[from] KernelError),
    #[error("sysctl {key}: cannot {action} {path}")]
    Sysctl {
        key: String,
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn sysctl_io(key: &str, action: &'static str, path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Sysctl {
        key: key.to_string(),
        action,
        path: path.display().to_string(),
        source,
    }
}

/// The loaded policies and what is needed to evaluate them.
pub struct Policies {
    engine: PolicyEngine,
    loaded: Vec<(PolicyConfig, LoadedPolicy)>,
    options: validate::Options,
}

impl Policies {
    /// Compiles every configured policy; the first that fails to load is
    /// reported.
    pub fn load(config: &Config) -> Result<Self, RuntimeError> {
        let mut engine = PolicyEngine::new(config.limits).map_err(|source| RuntimeError::Load {
            policy: "(engine)".into(),
            source,
        })?;
        engine.set_cache(config.cache.open());
        let mut loaded = Vec::new();
        for p in &config.policies {
            let policy = engine
                .load(&p.name, &p.path)
                .map_err(|source| RuntimeError::Load {
                    policy: p.name.clone(),
                    source,
                })?;
            tracing::info!(policy = %p.name, path = %p.path.display(), "policy loaded");
            loaded.push((p.clone(), policy));
        }
        Ok(Policies {
            engine,
            loaded,
            options: validate::Options {
                max_rules: config.max_rules,
                max_set_elements: config.max_set_elements,
                sysctls: config.sysctls.clone(),
            },
        })
    }

    /// Evaluates every policy on `world` and `event` and validates the
    /// answers. All or nothing: the first failure is returned.
    pub fn evaluate(
        &self,
        world: &WorldState,
        event: &Event,
    ) -> Result<Vec<PolicyRules>, RuntimeError> {
        let state = world.to_wit();
        let event = event.to_wit();
        let mut out = Vec::new();
        for (cfg, policy) in &self.loaded {
            let started = std::time::Instant::now();
            let answer = self
                .engine
                .evaluate(policy, &state, &event, &cfg.config)
                .map_err(|source| RuntimeError::Evaluate {
                    policy: cfg.name.clone(),
                    source,
                })?;
            let mut rules = validate::validate(&answer, &self.options).map_err(|source| {
                RuntimeError::Invalid {
                    policy: cfg.name.clone(),
                    source,
                }
            })?;
            for base in rules.chains.iter_mut().filter_map(|c| c.base.as_mut()) {
                base.priority = base.priority.saturating_add(cfg.priority_offset);
            }
            tracing::debug!(
                policy = %cfg.name,
                rules = rules.rule_count(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "policy evaluated"
            );
            out.push(PolicyRules {
                policy: cfg.name.clone(),
                rules,
            });
        }
        Ok(out)
    }
}

/// Where the runtime acts: its table, the namespace and the state file.
#[derive(Debug, Clone)]
pub struct Target {
    pub table: String,
    pub netns: Option<String>,
    pub state_path: PathBuf,
}

impl Target {
    pub fn new(table: &str, netns: Option<&str>, state_dir: &Path) -> Self {
        Target {
            table: table.to_string(),
            netns: netns.map(str::to_string),
            state_path: state::path(state_dir, netns, table),
        }
    }
}

/// What one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub kernel: Option<ApplyReport>,
    pub rules: usize,
    pub sysctls_set: Vec<String>,
    pub sysctls_restored: Vec<String>,
}

/// Makes the kernel hold exactly `desired` in the runtime's table, and the
/// sysctls hold what the policies asked for.
///
/// Order matters for clean-up: the state file records every sysctl's current
/// value (and whether the table existed) before anything is written.
pub fn apply<K: Kernel>(
    kernel: &mut K,
    target: &Target,
    allow: &AllowList,
    desired: &[PolicyRules],
) -> Result<Applied, RuntimeError> {
    let mut state = match state::load(&target.state_path)? {
        Some(s) => s,
        None => State::new(
            target.netns.clone(),
            target.table.clone(),
            kernel.table_exists(&target.table)?,
        ),
    };

    // Desired sysctls, each with its /proc path (already allow-listed by
    // validation; checked again because this is where the write happens).
    let mut wanted: Vec<(String, String, PathBuf)> = Vec::new();
    for p in desired {
        for s in &p.rules.sysctls {
            if let Some((_, v, _)) = wanted.iter().find(|(k, _, _)| *k == s.key) {
                if *v != s.value {
                    tracing::warn!(key = %s.key, "two policies want different values; the first one wins");
                }
                continue;
            }
            let path = allow.check(&s.key).map_err(|e| {
                sysctl_io(
                    &s.key,
                    "check",
                    Path::new("/proc/sys"),
                    std::io::Error::other(e),
                )
            })?;
            wanted.push((s.key.clone(), s.value.clone(), path));
        }
    }
    for (key, _, path) in &wanted {
        if state.original(key).is_none() {
            let original = sysctl::read(path).map_err(|e| sysctl_io(key, "read", path, e))?;
            state.sysctls.push(SavedSysctl {
                key: key.clone(),
                original,
            });
        }
    }
    state::save(&target.state_path, &state)?;

    let tx = plan::replace_table(&target.table, desired);
    tracing::debug!(transaction = %tx, "planned");
    let report = kernel.apply(&tx)?;
    let mut applied = Applied {
        rules: desired.iter().map(|p| p.rules.rule_count()).sum(),
        kernel: Some(report),
        ..Applied::default()
    };

    for (key, value, path) in &wanted {
        let current = sysctl::read(path).map_err(|e| sysctl_io(key, "read", path, e))?;
        if current != *value {
            sysctl::write(path, value).map_err(|e| sysctl_io(key, "write", path, e))?;
            applied.sysctls_set.push(format!("{key}={value}"));
        }
    }
    // Sysctls no policy wants any more go back to what they were.
    let stale: Vec<SavedSysctl> = state
        .sysctls
        .iter()
        .filter(|s| !wanted.iter().any(|(k, _, _)| *k == s.key))
        .cloned()
        .collect();
    if !stale.is_empty() {
        for s in &stale {
            restore_sysctl(allow, s)?;
            applied
                .sysctls_restored
                .push(format!("{}={}", s.key, s.original));
        }
        state.sysctls.retain(|s| !stale.contains(s));
        state::save(&target.state_path, &state)?;
    }
    Ok(applied)
}

fn restore_sysctl(allow: &AllowList, s: &SavedSysctl) -> Result<(), RuntimeError> {
    // Keys in the state file were allow-listed when recorded; check again so
    // an edited state file cannot steer writes elsewhere.
    let path = allow.check(&s.key).map_err(|e| {
        sysctl_io(
            &s.key,
            "check",
            Path::new("/proc/sys"),
            std::io::Error::other(e),
        )
    })?;
    match sysctl::write(&path, &s.original) {
        // The interface is gone, and its setting with it: nothing to restore.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(key = %s.key, "sysctl no longer exists (interface removed); nothing to restore");
            Ok(())
        }
        other => other.map_err(|e| sysctl_io(&s.key, "restore", &path, e)),
    }
}

/// What clean-up did.
#[derive(Debug, Default)]
pub struct CleanedUp {
    pub had_state_file: bool,
    pub restored: Vec<String>,
    pub failed: Vec<String>,
}

/// Deletes the runtime's table and restores every recorded sysctl; removes the
/// state file once everything is restored. Works from the state file alone,
/// so it also undoes what a crashed runtime left behind.
pub fn cleanup<K: Kernel>(
    kernel: &mut K,
    target: &Target,
    allow: &AllowList,
) -> Result<CleanedUp, RuntimeError> {
    let state = state::load(&target.state_path)?;
    kernel.apply(&plan::remove_table(&target.table))?;
    let mut done = CleanedUp {
        had_state_file: state.is_some(),
        ..CleanedUp::default()
    };
    let Some(mut state) = state else {
        return Ok(done);
    };
    // Undo in reverse order of change.
    for s in state.sysctls.iter().rev() {
        match restore_sysctl(allow, s) {
            Ok(()) => done.restored.push(format!("{}={}", s.key, s.original)),
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "could not restore a sysctl; it stays in the state file");
                done.failed.push(s.key.clone());
            }
        }
    }
    if done.failed.is_empty() {
        state::remove(&target.state_path)?;
    } else {
        state.sysctls.retain(|s| done.failed.contains(&s.key));
        state::save(&target.state_path, &state)?;
    }
    Ok(done)
}

/// "error: cause: cause" for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
