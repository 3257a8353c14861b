//! The policy set: every configured policy with the component running for
//! it (or why none runs), loading new versions and swapping them in, and
//! evaluating them all on a world state.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, PolicyConfig};
use crate::sandbox::PolicyEngine;
use crate::validate;
use crate::validate::budget::TableBudget;
use crate::world::{Event, WorldState};

use super::error::{EngineError, LoadError, PolicyError, PolicyFailure};
use super::evaluate::{Evaluate, Evaluation, evaluate_policy, log_failure};

/// Makes a running policy from a policy file: the real one reads, checks
/// the permissions, compiles and type-checks a component; tests give others.
pub trait Loader: Send + Sync {
    /// Loads the file of `config`; with `insecure`, without the permission
    /// check.
    fn load(&self, config: &PolicyConfig, insecure: bool) -> Result<Candidate, LoadError>;
}

/// A policy loaded from a file, not running yet.
pub struct Candidate {
    pub policy: Arc<dyn Evaluate>,
    /// SHA-256 of the file (hex).
    pub hash: String,
}

/// The hex SHA-256 of a policy component.
pub fn component_hash(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::text::hex(&sha2::Sha256::digest(bytes))
}

impl Loader for PolicyEngine {
    fn load(&self, config: &PolicyConfig, insecure: bool) -> Result<Candidate, LoadError> {
        if !insecure {
            crate::perms::check(&config.path, "policy file")?;
        }
        let shown = config.path.display().to_string();
        let bytes = crate::files::read(&config.path, crate::files::Kind::Policy)
            .map_err(crate::sandbox::HostError::from)?;
        let policy = self.load_bytes(&config.name, &shown, &bytes)?;
        Ok(Candidate {
            policy: Arc::new(policy),
            hash: component_hash(&bytes),
        })
    }
}

/// One configured policy and the component running for it.
#[derive(Clone)]
pub struct Slot {
    pub config: PolicyConfig,
    /// The running policy, or why none could be loaded: reported at every
    /// evaluation, and its last known good rules are kept.
    pub policy: Result<Arc<dyn Evaluate>, Arc<PolicyError>>,
    /// SHA-256 of the running component (hex), when one loaded.
    pub hash: Option<String>,
    /// When the running component was loaded.
    pub loaded_at: Option<SystemTime>,
}

impl Slot {
    /// Loads a policy; a failure is kept in the slot.
    pub fn load(loader: &dyn Loader, config: &PolicyConfig, insecure: bool) -> Slot {
        match loader.load(config, insecure) {
            Ok(c) => {
                tracing::info!(policy = %config.name, path = %config.path.display(), hash = %&c.hash[..c.hash.len().min(12)], contract = c.policy.contract(), "policy loaded");
                Slot {
                    config: config.clone(),
                    policy: Ok(c.policy),
                    hash: Some(c.hash),
                    loaded_at: Some(SystemTime::now()),
                }
            }
            Err(e) => Slot {
                config: config.clone(),
                policy: Err(Arc::new(PolicyError::Load(e))),
                hash: None,
                loaded_at: None,
            },
        }
    }
}

/// Loads nothing: the loader of a policy set that runs no policy.
struct NoEngine;

impl Loader for NoEngine {
    fn load(&self, _config: &PolicyConfig, _insecure: bool) -> Result<Candidate, LoadError> {
        Err(LoadError::NoEngine)
    }
}

/// The loaded policies and how their answers are judged. A policy that
/// failed to load stays in the list with its error.
#[derive(Clone)]
pub struct Policies {
    loader: Arc<dyn Loader>,
    slots: Vec<Slot>,
    options: validate::Options,
    table_budget: TableBudget,
    insecure: bool,
}

impl Policies {
    /// Loads every configured policy with `loader`.
    pub fn load(config: &Config, loader: Arc<dyn Loader>) -> Policies {
        let slots = config
            .policies
            .iter()
            .map(|p| Slot::load(&*loader, p, config.insecure_permissions))
            .collect();
        Policies {
            loader,
            slots,
            options: config.validation(),
            table_budget: config.table_budget,
            insecure: config.insecure_permissions,
        }
    }

    /// No policy at all: for clean-up, which needs none.
    pub fn none() -> Policies {
        Policies {
            loader: Arc::new(NoEngine),
            slots: Vec::new(),
            options: validate::Options::default(),
            table_budget: TableBudget::default(),
            insecure: false,
        }
    }

    /// Compiles every configured policy with a WebAssembly engine made for
    /// the config's limits and cache. Only the engine itself can fail here.
    pub fn compile(config: &Config) -> Result<Policies, EngineError> {
        let mut engine = PolicyEngine::new(config.limits).map_err(EngineError::Sandbox)?;
        engine.set_cache(config.cache.open());
        Ok(Policies::load(config, Arc::new(engine)))
    }

    /// The policies of a changed config: a policy whose name and file are
    /// the same and that loaded keeps its running component (with its new
    /// settings); the others are loaded now.
    pub fn reconfigured(&self, config: &Config) -> Policies {
        let slots = config
            .policies
            .iter()
            .map(|p| {
                let same = self.slots.iter().find(|s| {
                    s.config.name == p.name && s.config.path == p.path && s.policy.is_ok()
                });
                match same {
                    Some(old) => Slot {
                        config: p.clone(),
                        ..old.clone()
                    },
                    None => Slot::load(&*self.loader, p, config.insecure_permissions),
                }
            })
            .collect();
        Policies {
            loader: self.loader.clone(),
            slots,
            options: config.validation(),
            table_budget: config.table_budget,
            insecure: config.insecure_permissions,
        }
    }

    /// The same policies held to another table budget.
    #[cfg(test)]
    pub(crate) fn with_table_budget(mut self, budget: TableBudget) -> Policies {
        self.table_budget = budget;
        self
    }

    /// What the whole table may hold, all these policies together.
    pub fn table_budget(&self) -> &TableBudget {
        &self.table_budget
    }

    pub fn loader(&self) -> Arc<dyn Loader> {
        self.loader.clone()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.config.name == name)
    }

    /// Whether policy files are used whoever could have written them.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// Puts a new component in place of the named policy's.
    pub fn swap(&mut self, name: &str, candidate: Candidate) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.config.name == name) {
            slot.policy = Ok(candidate.policy);
            slot.hash = Some(candidate.hash);
            slot.loaded_at = Some(SystemTime::now());
        }
    }

    /// Evaluates a candidate for the policy configured as `config` on
    /// `world`, judging its answer, without changing anything: a new
    /// version must pass this before it is swapped in.
    pub fn try_candidate(
        &self,
        config: &PolicyConfig,
        candidate: &Candidate,
        world: &WorldState,
        event: &Event,
    ) -> Result<crate::ir::Ruleset, PolicyError> {
        evaluate_policy(
            &*candidate.policy,
            config,
            &self.options,
            &world.to_wit(),
            &event.to_wit(),
        )
    }

    /// Evaluates every policy on `world` and `event`. Each failure is
    /// logged once, naming the policy and the cause.
    pub fn evaluate(&self, world: &WorldState, event: &Event) -> Evaluation {
        let evaluation = self.evaluate_each(world, |_| event);
        for f in &evaluation.failed {
            log_failure(f);
        }
        evaluation
    }

    /// As [`Policies::evaluate`], with the event chosen per policy (a policy
    /// just swapped in sees `startup`), and without logging the failures.
    pub fn evaluate_each<'e>(
        &self,
        world: &WorldState,
        event_for: impl Fn(&str) -> &'e Event,
    ) -> Evaluation {
        let state = world.to_wit();
        let mut out = Evaluation::default();
        for slot in &self.slots {
            let cfg = &slot.config;
            let started = std::time::Instant::now();
            let result = match &slot.policy {
                Ok(policy) => evaluate_policy(
                    &**policy,
                    cfg,
                    &self.options,
                    &state,
                    &event_for(&cfg.name).to_wit(),
                )
                .map_err(Arc::new),
                Err(e) => Err(e.clone()),
            };
            crate::metrics::global().evaluated(&cfg.name, started.elapsed(), result.is_err());
            match result {
                Ok(rules) => {
                    tracing::debug!(
                        policy = %cfg.name,
                        rules = rules.rule_count(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "policy evaluated"
                    );
                    out.rules.push(crate::ir::PolicyRules {
                        policy: cfg.name.clone(),
                        rules,
                    });
                }
                Err(error) => out.failed.push(PolicyFailure {
                    policy: cfg.name.clone(),
                    error,
                }),
            }
        }
        out
    }
}
