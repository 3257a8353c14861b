//! Hot swap and config reload: a changed policy file is compiled off the
//! loop, tried on the current world and swapped in only if its answer
//! passes; a changed config (or a changed input file of a policy) is read,
//! its policies loaded and tried, and used only if no policy fails that did
//! not. Anything else is rejected with one log line, listed in `status`
//! until a good version replaces it, and the running version stays.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::core::Daemon;
use thiserror::Error;

use crate::config::{Config, ConfigError, PolicyConfig};
use crate::engine::{Candidate, LoadError, Loader, PolicyError, PolicyFailure};
use crate::kernel::Kernel;
use crate::text::error_chain;
use crate::world::Event;

/// Why a changed config is not taken.
#[derive(Debug, Error)]
enum ConfigRejected {
    #[error(transparent)]
    Unreadable(#[from] ConfigError),
    #[error("changing `{0}` needs a restart of wasmwall")]
    RestartOnly(&'static str),
    /// A policy that works now would fail under it.
    #[error("{0}")]
    PolicyFails(PolicyFailure),
}

/// A compile of a new version of a policy file, to run off the loop.
pub struct CompileJob {
    name: String,
    seq: u64,
    config: PolicyConfig,
    insecure: bool,
    loader: Arc<dyn Loader>,
}

impl CompileJob {
    pub fn run(self) -> Compiled {
        let result = self.loader.load(&self.config, self.insecure);
        Compiled {
            name: self.name,
            seq: self.seq,
            result,
        }
    }
}

/// A finished compile.
pub struct Compiled {
    pub name: String,
    seq: u64,
    pub result: Result<Candidate, LoadError>,
}

/// What a change of files led to.
#[derive(Default)]
pub struct FilesChanged {
    /// Compiles to run, off the loop; their results go to
    /// [`Daemon::compiled`].
    pub jobs: Vec<CompileJob>,
    /// The config was reloaded: the files to watch may have changed.
    pub config_reloaded: bool,
}

impl<K: Kernel> Daemon<K> {
    /// Files changed: the config is read again (also when only a policy's
    /// input file changed: it is part of the config), the changed policies
    /// are to be compiled, the lease file is read at the next settle.
    pub fn files_changed(&mut self, changed: &BTreeSet<PathBuf>) -> FilesChanged {
        let mut out = FilesChanged::default();
        let inputs: Vec<String> = self
            .config
            .policies
            .iter()
            .flat_map(|p| p.files.iter().map(move |f| (p, f)))
            .filter(|(_, f)| changed.contains(&f.path))
            .map(|(p, f)| {
                format!(
                    "policy input file {} (policy {}, key `{}`)",
                    f.path.display(),
                    p.name,
                    f.key
                )
            })
            .collect();
        if changed.contains(&self.config_path) {
            out.config_reloaded = self.reload_config(None);
        } else if !inputs.is_empty() {
            out.config_reloaded = self.reload_config(Some(&inputs.join(", ")));
        }
        if let Some(f) = &self.config.leases.dnsmasq_file
            && changed.contains(f)
        {
            self.pending.lease_file = true;
        }
        let policies = self.firewall.policies();
        for slot in policies.slots() {
            if !changed.contains(&slot.config.path) || slot.config.path == self.config_path {
                continue;
            }
            let seq = self
                .compile_seq
                .entry(slot.config.name.clone())
                .or_default();
            *seq += 1;
            out.jobs.push(CompileJob {
                name: slot.config.name.clone(),
                seq: *seq,
                config: slot.config.clone(),
                insecure: policies.insecure(),
                loader: policies.loader(),
            });
        }
        out
    }

    /// Reads the config and every policy file again now, as if each had
    /// changed (SIGHUP).
    pub fn reload_all(&mut self) -> FilesChanged {
        tracing::info!("reloading the config and policy files (SIGHUP)");
        let mut changed: BTreeSet<PathBuf> = self.watched_files().into_iter().collect();
        changed.insert(self.config_path.clone());
        let mut out = self.files_changed(&changed);
        // The config may have named other policy files: read those too.
        if out.config_reloaded {
            let again: BTreeSet<PathBuf> = self
                .config
                .policies
                .iter()
                .map(|p| p.path.clone())
                .filter(|p| !changed.contains(p))
                .collect();
            out.jobs.extend(self.files_changed(&again).jobs);
        }
        out
    }

    fn reject(&mut self, what: &str, error: &str, keeps: &str) {
        self.reject_as(what, what, error, keeps);
    }

    /// As [`Daemon::reject`], listed in `status` under `key`: a newer
    /// rejection under the same key replaces it.
    fn reject_as(&mut self, key: &str, what: &str, error: &str, keeps: &str) {
        let line = format!("{what}: new version rejected: {error}; the running {keeps} stays");
        tracing::error!("{line}");
        crate::metrics::global().rejected_swaps.inc();
        self.rejected.insert(key.to_string(), line);
    }

    /// A new version of a policy file is compiled: try it on the current
    /// world, and swap it in only if it gives a valid ruleset. A compile
    /// that a newer one overtook is dropped.
    pub fn compiled(&mut self, done: Compiled) {
        let name = done.name;
        if self.compile_seq.get(&name) != Some(&done.seq) {
            tracing::debug!(policy = %name, "an older compile finished after a newer one started; dropped");
            return;
        }
        let what = format!("policy {name}");
        let candidate = match done.result {
            Ok(c) => c,
            Err(e) => return self.reject(&what, &error_chain(&PolicyError::Load(e)), "version"),
        };
        let Some(slot) = self.firewall.policies().slot(&name) else {
            return;
        };
        if slot.hash.as_deref() == Some(candidate.hash.as_str()) {
            tracing::debug!(policy = %name, "policy file touched, content unchanged");
            return;
        }
        let config = slot.config.clone();
        let world = self.world();
        let rules = match self.firewall.policies().try_candidate(
            &config,
            &candidate,
            &world,
            &Event::Startup,
        ) {
            Ok(rules) => rules,
            Err(e) => return self.reject(&what, &error_chain(&e), "version"),
        };
        if let Some(f) = self
            .firewall
            .sysctl_conflict(&self.evaluation, &name, rules)
        {
            return self.reject(&what, &f.cause(), "version");
        }
        tracing::info!(policy = %name, hash = %candidate.hash, "policy swapped: the new version passed on the current state");
        crate::metrics::global().hot_swaps.inc();
        let before = self.fallback_now();
        self.firewall.policies_mut().swap(&name, candidate);
        self.change_arrives(&format!("policy {name} swapped"), before);
        self.rejected.remove(&what);
        self.pending.fresh.insert(name.clone());
        self.pending.because(format!("policy {name} swapped"));
        self.pending.evaluate = true;
    }

    /// The config file changed, or only `input` (policy input files, as
    /// the log names them): read it, load what changed, evaluate on the
    /// current world, and only then use it. Returns whether it was taken.
    fn reload_config(&mut self, input: Option<&str>) -> bool {
        let key = format!("config {}", self.config_path.display());
        let before = self.fallback_now();
        match self.try_config() {
            Err(e) => {
                self.reject_as(&key, input.unwrap_or(&key), &error_chain(&e), "config");
                false
            }
            Ok(new) => {
                tracing::info!(
                    policies = new.policies.len(),
                    "config reloaded: the new config passed on the current state"
                );
                self.rejected.remove(&key);
                self.config = new;
                self.change_arrives(
                    &format!("config {} reloaded", self.config_path.display()),
                    before,
                );
                self.pending.last = Some(Event::ConfigChanged);
                self.pending.because("config changed");
                self.pending.evaluate = true;
                true
            }
        }
    }

    /// Reads the config, loads its policies and evaluates them on the
    /// current world; on success the firewall runs them from now on.
    fn try_config(&mut self) -> Result<Config, ConfigRejected> {
        let mut new =
            Config::load_for_policies(&self.config_path, self.config.insecure_permissions)?;
        new.cache = self.config.cache.clone();
        if let Some(key) = self.config.restart_only_difference(&new) {
            return Err(ConfigRejected::RestartOnly(key));
        }
        let candidate = self.firewall.policies().reconfigured(&new);
        let mut evaluation = candidate.evaluate_each(&self.world(), |_| &Event::ConfigChanged);
        self.firewall.settle_with(&candidate, &mut evaluation);
        if let Some(f) = evaluation
            .failed
            .iter()
            .find(|f| self.evaluation.failure(&f.policy).is_none())
        {
            return Err(ConfigRejected::PolicyFails(f.clone()));
        }
        self.firewall.reconfigure(candidate, new.sysctls.clone());
        self.firewall.set_cut_flows(new.cut_flows);
        Ok(new)
    }
}
