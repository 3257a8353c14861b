//! One reconcile: evaluate every policy, validate, plan, apply in one batch,
//! and keep the sysctls in line; and the clean-up that undoes it all.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{Config, PolicyConfig};
use crate::host::{HostError, LoadedPolicy, PolicyEngine};
use crate::ir::PolicyRules;
use crate::kernel::{ApplyReport, Kernel, KernelError, Observation, next_generation};
use crate::plan::{self, DesiredTable, NotOwned, Transaction};
use crate::snapshot::SnapshotFile;
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
    /// On one line: it goes to the log.
    #[error("policy {policy}: {problems:#}")]
    Invalid { policy: String, problems: Invalid },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    NotOwned(#[from] NotOwned),
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

/// The loaded policies and what is needed to evaluate them. A policy that
/// failed to load stays in the list with its error, so that it is reported
/// at every evaluation and its last known good rules are kept.
pub struct Policies {
    engine: std::sync::Arc<PolicyEngine>,
    slots: Vec<Slot>,
    options: validate::Options,
}

/// One configured policy and the component running for it.
#[derive(Clone)]
pub struct Slot {
    pub config: PolicyConfig,
    pub policy: Result<std::sync::Arc<LoadedPolicy>, String>,
    /// SHA-256 of the running component (hex), when one loaded.
    pub hash: Option<String>,
    /// When the running component was loaded.
    pub loaded_at: Option<std::time::SystemTime>,
}

/// A component compiled and type-checked from a file, not running yet.
pub struct Candidate {
    pub policy: LoadedPolicy,
    pub hash: String,
}

/// The hex SHA-256 of a policy component.
pub fn component_hash(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads (after the permission check, unless `insecure`), compiles and
/// type-checks one policy file. The error is one line naming the policy.
pub fn load_candidate(
    engine: &PolicyEngine,
    config: &PolicyConfig,
    insecure: bool,
) -> Result<Candidate, String> {
    if !insecure {
        crate::perms::check(&config.path, "policy file")
            .map_err(|e| format!("policy {}: cannot load: {e}", config.name))?;
    }
    let fail = |source| {
        error_chain(&RuntimeError::Load {
            policy: config.name.clone(),
            source,
        })
    };
    let shown = config.path.display().to_string();
    let bytes = std::fs::read(&config.path).map_err(|source| {
        fail(HostError::Read {
            path: shown.clone(),
            source,
        })
    })?;
    let policy = engine
        .load_bytes(&config.name, &shown, &bytes)
        .map_err(fail)?;
    Ok(Candidate {
        policy,
        hash: component_hash(&bytes),
    })
}

/// A policy that produced no usable ruleset this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFailure {
    pub policy: String,
    /// The whole cause, e.g. "evaluation failed: deadline of 200 ms exceeded".
    pub error: String,
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
    desired: std::cell::OnceCell<DesiredTable>,
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
            desired: std::cell::OnceCell::new(),
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
}

impl Slot {
    /// Loads a policy; a failure is kept in the slot (and logged).
    pub fn load(engine: &PolicyEngine, config: &PolicyConfig, insecure: bool) -> Slot {
        match load_candidate(engine, config, insecure) {
            Ok(c) => {
                tracing::info!(policy = %config.name, path = %config.path.display(), hash = %&c.hash[..12], "policy loaded");
                Slot {
                    config: config.clone(),
                    policy: Ok(std::sync::Arc::new(c.policy)),
                    hash: Some(c.hash),
                    loaded_at: Some(std::time::SystemTime::now()),
                }
            }
            Err(e) => Slot {
                config: config.clone(),
                policy: Err(e),
                hash: None,
                loaded_at: None,
            },
        }
    }
}

impl Policies {
    /// Compiles every configured policy. Only the engine itself can fail
    /// here; a policy that does not load is logged and reported at each
    /// evaluation.
    pub fn load(config: &Config) -> Result<Self, RuntimeError> {
        let mut engine = PolicyEngine::new(config.limits).map_err(|source| RuntimeError::Load {
            policy: "(engine)".into(),
            source,
        })?;
        engine.set_cache(config.cache.open());
        let engine = std::sync::Arc::new(engine);
        let slots = config
            .policies
            .iter()
            .map(|p| Slot::load(&engine, p, config.insecure_permissions))
            .collect();
        Ok(Policies {
            engine,
            slots,
            options: Self::options(config),
        })
    }

    fn options(config: &Config) -> validate::Options {
        validate::Options {
            max_rules: config.max_rules,
            max_set_elements: config.max_set_elements,
            sysctls: config.sysctls.clone(),
        }
    }

    /// The same engine with other slots (a changed config), for trying them
    /// out before swapping them in.
    pub fn with_slots(&self, config: &Config, slots: Vec<Slot>) -> Policies {
        Policies {
            engine: self.engine.clone(),
            slots,
            options: Self::options(config),
        }
    }

    pub fn engine(&self) -> std::sync::Arc<PolicyEngine> {
        self.engine.clone()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Puts a new component in place of the named policy's.
    pub fn swap(&mut self, name: &str, candidate: Candidate) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.config.name == name) {
            slot.policy = Ok(std::sync::Arc::new(candidate.policy));
            slot.hash = Some(candidate.hash);
            slot.loaded_at = Some(std::time::SystemTime::now());
        }
    }

    /// Evaluates one policy's candidate component on `world` and validates
    /// its answer, without changing anything: a new version must pass this
    /// before it is swapped in.
    pub fn try_candidate(
        &self,
        name: &str,
        candidate: &Candidate,
        world: &WorldState,
        event: &Event,
    ) -> Result<(), String> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.config.name == name)
            .ok_or_else(|| format!("policy {name} is not configured"))?;
        self.evaluate_one(
            &slot.config,
            &candidate.policy,
            &world.to_wit(),
            &event.to_wit(),
        )
        .map(|_| ())
    }

    /// Evaluates every policy on `world` and `event` and validates the
    /// answers. Each failure is logged once, naming the policy and the cause.
    pub fn evaluate(&self, world: &WorldState, event: &Event) -> Evaluation {
        let evaluation = self.evaluate_each(world, |_| event);
        for f in &evaluation.failed {
            log_failure(&f.policy, &f.error);
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
                Ok(policy) => {
                    self.evaluate_one(cfg, policy, &state, &event_for(&cfg.name).to_wit())
                }
                Err(e) => Err(e.clone()),
            };
            match result {
                Ok(rules) => {
                    tracing::debug!(
                        policy = %cfg.name,
                        rules = rules.rule_count(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "policy evaluated"
                    );
                    out.rules.push(PolicyRules {
                        policy: cfg.name.clone(),
                        rules,
                    });
                }
                Err(error) => {
                    out.failed.push(PolicyFailure {
                        policy: cfg.name.clone(),
                        error,
                    });
                }
            }
        }
        out
    }

    fn evaluate_one(
        &self,
        cfg: &PolicyConfig,
        policy: &LoadedPolicy,
        state: &crate::host::wit::WorldState,
        event: &crate::host::wit::Event,
    ) -> Result<crate::ir::Ruleset, String> {
        let answer = self
            .engine
            .evaluate(policy, state, event, &cfg.config)
            .map_err(|source| {
                error_chain(&RuntimeError::Evaluate {
                    policy: cfg.name.clone(),
                    source,
                })
            })?;
        let mut rules = validate::validate(&answer, &self.options).map_err(|problems| {
            error_chain(&RuntimeError::Invalid {
                policy: cfg.name.clone(),
                problems,
            })
        })?;
        for chain in &mut rules.chains {
            let Some(base) = chain.base.as_mut() else {
                continue;
            };
            base.priority = base.priority.saturating_add(cfg.priority_offset);
            if let Some(problem) = validate::nat_priority_problem(base) {
                return Err(format!(
                    "policy {}: chain {:?}, with the policy's priority_offset {}: {problem}",
                    cfg.name, chain.name, cfg.priority_offset
                ));
            }
        }
        Ok(rules)
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

/// How many times a batch is planned again when someone else changed the
/// ruleset between reading and writing.
const ATTEMPTS: usize = 3;

/// Keeps the kernel's table in line with a desired one. It remembers the
/// table as of its last read or its own last batch, with the ruleset
/// generation that proves it current: while nobody else changes the ruleset,
/// a reconcile costs one generation query instead of a read of the table.
#[derive(Debug)]
pub struct Reconciler {
    table: String,
    known: Option<Observation>,
    /// The table as a previous process left it (see `snapshot`), and the
    /// generation last written there.
    snapshot: Option<SnapshotFile>,
    saved: Option<u32>,
}

/// What one reconcile did.
#[derive(Debug)]
pub struct Reconciled {
    pub tx: Transaction,
    pub report: ApplyReport,
    /// Whether the table had to be read from the kernel (someone else
    /// changed the ruleset, or nothing was known yet).
    pub read_table: bool,
    /// Batches refused because the ruleset changed meanwhile.
    pub retries: usize,
}

impl Reconciler {
    pub fn new(table: &str) -> Self {
        Reconciler {
            table: table.to_string(),
            known: None,
            snapshot: None,
            saved: None,
        }
    }

    /// Starts from the snapshot a previous process left, when it is
    /// provably current, and (if `writable`) keeps it up to date: written
    /// after every read of the table and every batch whose result is known.
    pub fn with_snapshot(mut self, snapshot: Option<SnapshotFile>) -> Self {
        if let Some(seen) = snapshot.as_ref().and_then(|s| s.load(&self.table)) {
            self.saved = Some(seen.generation);
            self.known = Some(seen);
        }
        self.snapshot = snapshot;
        self
    }

    /// Forgets what is known: the next look reads the whole table.
    pub fn forget(&mut self) {
        self.known = None;
    }

    /// Stops writing the snapshot (it is still removed by clean-up).
    pub fn stop_saving_snapshot(&mut self) {
        if let Some(file) = &mut self.snapshot {
            file.writable = false;
        }
    }

    /// Writes what is known to the snapshot, if it changed since.
    fn save_snapshot(&mut self) {
        let (Some(file), Some(known)) = (&self.snapshot, &self.known) else {
            return;
        };
        if !file.writable || self.saved == Some(known.generation) {
            return;
        }
        match file.save(&self.table, known) {
            Ok(()) => self.saved = Some(known.generation),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the table snapshot; the next start reads the table")
            }
        }
    }

    /// The table as the kernel holds it now, and whether it had to be read.
    pub fn observe<K: Kernel>(
        &mut self,
        kernel: &mut K,
    ) -> Result<(&Observation, bool), KernelError> {
        let current = match &self.known {
            Some(k) => kernel.generation()? == k.generation,
            None => false,
        };
        if !current {
            self.known = Some(kernel.observe(&self.table)?);
            self.save_snapshot();
        }
        Ok((self.known.as_ref().expect("just set"), !current))
    }

    /// What would change, against the kernel as it is now.
    pub fn plan<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &DesiredTable,
    ) -> Result<Transaction, RuntimeError> {
        let table = self.table.clone();
        let (seen, _) = self.observe(kernel)?;
        Ok(plan::plan(&table, desired, seen.table.as_ref())?)
    }

    /// Makes the table hold exactly `desired`, in one batch (none if
    /// nothing differs).
    pub fn reconcile<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &DesiredTable,
    ) -> Result<Reconciled, RuntimeError> {
        let mut retries = 0;
        let table = self.table.clone();
        loop {
            let (seen, read_table) = self.observe(kernel)?;
            let generation = seen.generation;
            let tx = plan::plan(&table, desired, seen.table.as_ref())?;
            if tx.is_empty() {
                return Ok(Reconciled {
                    tx,
                    report: ApplyReport::default(),
                    read_table,
                    retries,
                });
            }
            match kernel.apply(&tx, Some(generation)) {
                Ok(report) => {
                    self.predict(&tx, &report);
                    return Ok(Reconciled {
                        tx,
                        report,
                        read_table,
                        retries,
                    });
                }
                Err(KernelError::Changed) if retries + 1 < ATTEMPTS => {
                    tracing::info!("the ruleset changed while the batch was sent; planning again");
                    self.forget();
                    retries += 1;
                }
                Err(e) => {
                    self.forget();
                    return Err(e.into());
                }
            }
        }
    }

    /// After our own batch the kernel holds the old table with the
    /// transaction applied, at the next generation. Without the new rules'
    /// handles that cannot be known, and the next look reads the table.
    fn predict(&mut self, tx: &Transaction, report: &ApplyReport) {
        let Some(known) = self.known.take() else {
            return;
        };
        let Some(handles) = &report.rule_handles else {
            return;
        };
        let mut handles = handles.iter().copied();
        match plan::simulate(known.table, tx, &mut |_| handles.next()) {
            Ok(table) => {
                self.known = Some(Observation {
                    generation: next_generation(known.generation),
                    table,
                });
                self.save_snapshot();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot predict the table after the batch; it will be read again")
            }
        }
    }
}

/// A sysctl the policies want, with its /proc path.
struct WantedSysctl {
    key: String,
    value: String,
    path: PathBuf,
}

/// The sysctls the policies want; the first policy wins a conflict.
fn wanted_sysctls(
    allow: &AllowList,
    desired: &[PolicyRules],
) -> Result<Vec<WantedSysctl>, RuntimeError> {
    let mut wanted: Vec<WantedSysctl> = Vec::new();
    for p in desired {
        for s in &p.rules.sysctls {
            if let Some(w) = wanted.iter().find(|w| w.key == s.key) {
                if w.value != s.value {
                    tracing::warn!(key = %s.key, "two policies want different values; the first one wins");
                }
                continue;
            }
            // Allow-listed by validation; checked again because this is
            // where the write happens.
            let path = checked_path(allow, &s.key)?;
            wanted.push(WantedSysctl {
                key: s.key.clone(),
                value: s.value.clone(),
                path,
            });
        }
    }
    Ok(wanted)
}

fn checked_path(allow: &AllowList, key: &str) -> Result<PathBuf, RuntimeError> {
    allow.check(key).map_err(|e| {
        sysctl_io(
            key,
            "check",
            Path::new("/proc/sys"),
            std::io::Error::other(e),
        )
    })
}

/// What `apply` would change, found without changing anything.
#[derive(Debug)]
pub struct Pending {
    pub tx: Transaction,
    /// `key: current -> wanted` for sysctls to set or restore.
    pub sysctls: Vec<String>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty() && self.sysctls.is_empty()
    }
}

/// Plans against the live kernel and sysctls, changing nothing.
pub fn pending<K: Kernel>(
    kernel: &mut K,
    target: &Target,
    allow: &AllowList,
    evaluation: &Evaluation,
) -> Result<Pending, RuntimeError> {
    let tx = Reconciler::new(&target.table)
        .with_snapshot(SnapshotFile::beside(&target.state_path, false))
        .plan(kernel, evaluation.desired())?;
    let desired = &evaluation.rules;
    let wanted = wanted_sysctls(allow, desired)?;
    let mut sysctls = Vec::new();
    for w in &wanted {
        let current = sysctl::read(&w.path).map_err(|e| sysctl_io(&w.key, "read", &w.path, e))?;
        if current != w.value {
            sysctls.push(format!("{}: {current} -> {}", w.key, w.value));
        }
    }
    if let Some(state) = state::load(&target.state_path)? {
        for s in state
            .sysctls
            .iter()
            .filter(|s| !wanted.iter().any(|w| w.key == s.key))
        {
            let path = checked_path(allow, &s.key)?;
            let current = sysctl::read(&path).unwrap_or_else(|_| "(gone)".into());
            if current != s.original {
                sysctls.push(format!("{}: {current} -> {} (restored)", s.key, s.original));
            }
        }
    }
    Ok(Pending { tx, sysctls })
}

/// What one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub kernel: Option<ApplyReport>,
    pub summary: String,
    pub read_table: bool,
    pub rules: usize,
    pub sysctls_set: Vec<String>,
    pub sysctls_restored: Vec<String>,
}

/// Makes the kernel hold exactly what the policies want in the runtime's
/// table, changing only what differs, and the sysctls hold what they asked
/// for. A failed policy's chains and sets stay as they are, and while any
/// policy is failing no sysctl is restored (which sysctl a failed policy
/// relied on is not known).
///
/// Order matters for clean-up: the state file records every sysctl's current
/// value (and whether the table existed) before anything is written.
pub fn apply<K: Kernel>(
    kernel: &mut K,
    reconciler: &mut Reconciler,
    target: &Target,
    allow: &AllowList,
    evaluation: &Evaluation,
) -> Result<Applied, RuntimeError> {
    let desired = &evaluation.rules;
    let mut read_first = false;
    let mut state = match state::load(&target.state_path)? {
        Some(s) => s,
        None => {
            let (seen, read) = reconciler.observe(kernel)?;
            read_first = read;
            State::new(
                target.netns.clone(),
                target.table.clone(),
                seen.table.is_some(),
            )
        }
    };

    let wanted = wanted_sysctls(allow, desired)?;
    let mut changed_state = false;
    for w in &wanted {
        if state.original(&w.key).is_none() {
            let original =
                sysctl::read(&w.path).map_err(|e| sysctl_io(&w.key, "read", &w.path, e))?;
            state.sysctls.push(SavedSysctl {
                key: w.key.clone(),
                original,
            });
            changed_state = true;
        }
    }
    if changed_state || !target.state_path.exists() {
        state::save(&target.state_path, &state)?;
    }

    let desired_table = evaluation.desired();
    let done = reconciler.reconcile(kernel, desired_table)?;
    if !done.tx.is_empty() {
        tracing::debug!(transaction = %done.tx, "applied");
    }
    let mut applied = Applied {
        rules: desired_table.rule_count(),
        summary: done.tx.summary(),
        read_table: read_first || done.read_table,
        kernel: Some(done.report),
        ..Applied::default()
    };

    for w in &wanted {
        let current = sysctl::read(&w.path).map_err(|e| sysctl_io(&w.key, "read", &w.path, e))?;
        if current != w.value {
            sysctl::write(&w.path, &w.value).map_err(|e| sysctl_io(&w.key, "write", &w.path, e))?;
            applied.sysctls_set.push(format!("{}={}", w.key, w.value));
        }
    }
    // Sysctls no policy wants any more go back to what they were.
    let stale: Vec<SavedSysctl> = state
        .sysctls
        .iter()
        .filter(|_| evaluation.failed.is_empty())
        .filter(|s| !wanted.iter().any(|w| w.key == s.key))
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

/// [`apply`], with one more line of defence for "one policy's failure never
/// stops the others". Validation should let through only what can be
/// applied, but if the kernel still refuses an object of one policy (and
/// with it the whole batch), or a sysctl a policy asked for cannot be read
/// or written (an interface that does not exist), that policy fails like one
/// whose evaluation failed: logged, its last known good rules kept, and the
/// rest applied again without it. Returns, when that happened, the
/// evaluation with such policies moved to the failures, to use from then on.
///
/// A sysctl is written after the batch (so that, e.g., forwarding is never
/// on before the forward chain is in place): when the write or a late read
/// fails, the failing policy's new rules are already in the kernel.
pub fn apply_isolating<K: Kernel>(
    kernel: &mut K,
    reconciler: &mut Reconciler,
    target: &Target,
    allow: &AllowList,
    evaluation: &Evaluation,
) -> Result<(Applied, Option<Evaluation>), RuntimeError> {
    let mut narrowed: Option<Evaluation> = None;
    loop {
        let current = narrowed.as_ref().unwrap_or(evaluation);
        let e = match apply(kernel, reconciler, target, allow, current) {
            Ok(applied) => return Ok((applied, narrowed)),
            Err(e) => e,
        };
        let culprit = match &e {
            RuntimeError::Kernel(k) => refused_policy(k, &target.table)
                .filter(|p| current.rules.iter().any(|r| &r.policy == p))
                .map(|p| (p, format!("the kernel refused its rules: {k}"))),
            RuntimeError::Sysctl { key, .. } => current
                .rules
                .iter()
                .find(|r| r.rules.sysctls.iter().any(|s| &s.key == key))
                .map(|r| (r.policy.clone(), error_chain(&e))),
            _ => None,
        };
        let Some((policy, cause)) = culprit else {
            return Err(e);
        };
        let error = format!("policy {policy}: {cause}");
        log_failure(&policy, &error);
        let mut next = current.clone();
        next.rules.retain(|r| r.policy != policy);
        next.failed.push(PolicyFailure { policy, error });
        narrowed = Some(next);
    }
}

/// The one log line of a policy that failed.
pub fn log_failure(policy: &str, error: &str) {
    tracing::error!(
        policy = %policy,
        "{error}; its last known good rules stay in the kernel, the other policies go on"
    );
}

/// The policy whose object the kernel refused to add, from the operation's
/// text (`add rule inet <table> <policy>/<chain> ...`).
fn refused_policy(e: &KernelError, table: &str) -> Option<String> {
    let (KernelError::Rejected { op, .. } | KernelError::Encode { op, .. }) = e else {
        return None;
    };
    let words: Vec<&str> = op.split_whitespace().collect();
    match words.as_slice() {
        [
            "add" | "insert",
            "chain" | "set" | "element" | "rule",
            "inet",
            t,
            object,
            ..,
        ] if *t == table => object.split_once('/').map(|(policy, _)| policy.to_string()),
        _ => None,
    }
}

fn restore_sysctl(allow: &AllowList, s: &SavedSysctl) -> Result<(), RuntimeError> {
    // Keys in the state file were allow-listed when recorded; check again so
    // an edited state file cannot steer writes elsewhere.
    let path = checked_path(allow, &s.key)?;
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
    /// A table of that name exists but is not the runtime's: left alone.
    pub table_not_owned: bool,
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
    let mut done = CleanedUp {
        had_state_file: state.is_some(),
        ..CleanedUp::default()
    };
    let mut attempt = 0;
    loop {
        let seen = kernel.observe(&target.table)?;
        let tx = match plan::remove_table(&target.table, seen.table.as_ref()) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::warn!("{e}");
                done.table_not_owned = true;
                break;
            }
        };
        match kernel.apply(&tx, Some(seen.generation)) {
            Err(KernelError::Changed) if attempt + 1 < ATTEMPTS => attempt += 1,
            other => {
                other?;
                break;
            }
        }
    }
    // The table is gone (or not ours): a snapshot of it would be stale.
    crate::snapshot::remove(&target.state_path);
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

#[cfg(test)]
mod tests;
