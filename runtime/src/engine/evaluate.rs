//! Evaluating policies: the one function that calls a policy and judges its
//! answer, which the engine, `wasmwall eval` and `wasmwall test` all use, so
//! a policy is held to the same rules wherever it runs; and the outcome of
//! evaluating them all.

use std::cell::OnceCell;

use crate::bindings::wit;
use crate::config::PolicyConfig;
use crate::ir::{self, PolicyRules};
use crate::plan::DesiredTable;
use crate::sandbox::{HostError, LoadedPolicy};
use crate::validate;

use super::error::{PolicyError, PolicyFailure};

/// A policy that can answer: a compiled component, or in tests anything
/// that gives a ruleset.
pub trait Evaluate: Send + Sync {
    fn evaluate(
        &self,
        state: &wit::WorldState,
        event: &wit::Event,
        config: &[(String, String)],
    ) -> Result<wit::Ruleset, HostError>;

    /// The version of `wasmwall:policy` the policy was built against.
    fn contract(&self) -> &'static str {
        "0.2.0"
    }
}

impl Evaluate for LoadedPolicy {
    fn evaluate(
        &self,
        state: &wit::WorldState,
        event: &wit::Event,
        config: &[(String, String)],
    ) -> Result<wit::Ruleset, HostError> {
        LoadedPolicy::evaluate(self, state, event, config)
    }

    fn contract(&self) -> &'static str {
        LoadedPolicy::contract(self)
    }
}

/// Calls `policy` (configured as `config`) once and judges its answer as
/// the runtime does before anything reaches the kernel: validated under
/// `options`, the policy's `priority_offset` added to its base chains'
/// priorities, and those checked again.
pub fn evaluate_policy(
    policy: &dyn Evaluate,
    config: &PolicyConfig,
    options: &validate::Options,
    state: &wit::WorldState,
    event: &wit::Event,
) -> Result<ir::Ruleset, PolicyError> {
    let answer = policy
        .evaluate(state, event, &config.config)
        .map_err(PolicyError::Evaluate)?;
    let mut rules =
        validate::validate(&answer, options, &state.features).map_err(PolicyError::Invalid)?;
    for chain in &mut rules.chains {
        let Some(base) = chain.base.as_mut() else {
            continue;
        };
        base.priority = base.priority.saturating_add(config.priority_offset);
        if let Some(problem) = validate::nat_priority_problem(base) {
            return Err(PolicyError::PriorityOffset {
                chain: chain.name.clone(),
                offset: config.priority_offset,
                problem,
            });
        }
    }
    Ok(rules)
}

/// The outcome of evaluating every policy: the rules of those that
/// succeeded, and the failures. One policy's failure never stops the others.
///
/// The desired table is built (every rule rendered and hashed) once per
/// evaluation, not at every reconcile: `run` reconciles the same evaluation
/// on every timer tick and change notification. Change `rules` or `failed`
/// only on a clone (cloning drops the built table).
#[derive(Debug, Default)]
pub struct Evaluation {
    pub rules: Vec<PolicyRules>,
    pub failed: Vec<PolicyFailure>,
    desired: OnceCell<DesiredTable>,
}

impl Clone for Evaluation {
    fn clone(&self) -> Self {
        Evaluation::new(self.rules.clone(), self.failed.clone())
    }
}

impl Evaluation {
    pub fn new(rules: Vec<PolicyRules>, failed: Vec<PolicyFailure>) -> Self {
        Evaluation {
            rules,
            failed,
            desired: OnceCell::new(),
        }
    }

    /// The desired table: the succeeded policies' rules; the failed ones
    /// keep what the kernel holds for them.
    pub fn desired(&self) -> &DesiredTable {
        self.desired.get_or_init(|| {
            let mut table = DesiredTable::from_policies(&self.rules);
            table.kept = self.failed.iter().map(|f| f.policy.clone()).collect();
            table
        })
    }

    /// The same evaluation with `failure`'s policy moved to the failures.
    pub fn without(&self, failure: PolicyFailure) -> Evaluation {
        let mut next = self.clone();
        next.rules.retain(|r| r.policy != failure.policy);
        next.failed.push(failure);
        next
    }

    /// The failure of the named policy, if it failed.
    pub fn failure(&self, policy: &str) -> Option<&PolicyFailure> {
        self.failed.iter().find(|f| f.policy == policy)
    }
}

/// The one log line of a policy that failed. Escaped as a whole: the cause
/// quotes what the policy said and returned, and a log line stays one line.
pub fn log_failure(failure: &PolicyFailure) {
    tracing::error!(
        policy = %failure.policy,
        "{}; its last known good rules stay in the kernel, the other policies go on",
        crate::text::escape(&failure.to_string())
    );
}
