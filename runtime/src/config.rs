//! The runtime's configuration file (TOML): parsed here, then resolved
//! (paths made absolute, values checked) into a [`Config`], and the files
//! of `[policy.files]` read into the config values their policies receive.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

mod metrics;
pub use metrics::{MetricsConfig, MetricsListen};

use crate::fields;
use crate::files::{self, FileError, Kind};
use crate::perms::{self, PermError};
use crate::sandbox::Limits;
use crate::sandbox::cache::CacheSettings;
use crate::sysctl::{AllowList, KeyError};
use crate::validate;
use crate::validate::budget::{self, PolicyBudget, TableBudget};

pub const DEFAULT_TABLE: &str = "wasmwall";
pub const DEFAULT_STATE_DIR: &str = "/run/wasmwall";
/// Seconds between drift checks of `run` when the config does not say.
pub const DEFAULT_RECONCILE_INTERVAL_S: u64 = 30;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Read(#[from] FileError),
    #[error(transparent)]
    Permissions(#[from] PermError),
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("config file {path}: {problem}")]
    OutOfRange { path: String, problem: OutOfRange },
    #[error("config file {path}: {policy}")]
    PolicyFile {
        path: String,
        /// The `[[policy]]`, as other errors name it.
        policy: String,
        #[source]
        source: Box<PolicyFileError>,
    },
}

/// A file of `[policy.files]` that cannot be given to its policy.
#[derive(Debug, Error)]
#[error("`[policy.files]` key `{key}`")]
pub struct PolicyFileError {
    pub key: String,
    #[source]
    pub problem: FileProblem,
}

/// Why a file cannot be given to a policy.
#[derive(Debug, Error)]
pub enum FileProblem {
    #[error(transparent)]
    Permissions(#[from] PermError),
    #[error(transparent)]
    Read(#[from] FileError),
}

/// A number of the config, by its key, and the range it must be in. Each is
/// read as TOML's 64-bit integer and checked before it is converted, so
/// that no value wraps or saturates into another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub key: &'static str,
    pub range: RangeInclusive<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{key}` = {value} is out of range: it must be {min} to {max}", min = range.start(), max = range.end())]
pub struct OutOfRange {
    pub key: &'static str,
    pub value: i64,
    pub range: RangeInclusive<i64>,
}

impl Number {
    /// The same range under another name (a command-line flag).
    pub const fn named(&self, key: &'static str) -> Number {
        Number {
            key,
            range: RangeInclusive::new(*self.range.start(), *self.range.end()),
        }
    }

    pub fn check(&self, value: i64) -> Result<i64, OutOfRange> {
        if self.range.contains(&value) {
            Ok(value)
        } else {
            Err(OutOfRange {
                key: self.key,
                value,
                range: self.range.clone(),
            })
        }
    }

    /// The value, checked, as an unsigned number (the ranges that use this
    /// start at 0 or more).
    fn unsigned(&self, value: i64) -> Result<u64, OutOfRange> {
        let v = self.check(value)?;
        u64::try_from(v).map_err(|_| OutOfRange {
            key: self.key,
            value,
            range: self.range.clone(),
        })
    }
}

pub const RECONCILE_INTERVAL_S: Number = Number {
    key: "reconcile_interval_s",
    range: 0..=86_400,
};
pub const DEADLINE_MS: Number = Number {
    key: "limits.deadline_ms",
    range: 1..=60_000,
};
pub const MEMORY_MIB: Number = Number {
    key: "limits.memory_mib",
    range: 1..=4096,
};
pub const MAX_SET_ELEMENTS: Number = Number {
    key: "limits.max_set_elements",
    range: 1..=1_000_000,
};
pub const LOG_LINES: Number = Number {
    key: "limits.log_lines",
    range: 0..=10_000,
};
pub const LEASES_MAX: Number = Number {
    key: "leases.max",
    range: 1..=1_000_000,
};
pub const NEIGHBOURS_MAX: Number = Number {
    key: "neighbours.max",
    range: 1..=1_000_000,
};
/// 0 turns the cache off; at most 1 TiB.
pub const CACHE_MAX_MIB: Number = Number {
    key: "cache.max_mib",
    range: 0..=1 << 20,
};
pub const PRIORITY_OFFSET: Number = Number {
    key: "priority_offset",
    range: -1000..=1000,
};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    table: Option<String>,
    state_dir: Option<PathBuf>,
    netns: Option<String>,
    reconcile_interval_s: Option<i64>,
    control_socket: Option<PathBuf>,
    watch_files: Option<bool>,
    #[serde(default)]
    leases: RawLeases,
    #[serde(default)]
    neighbours: RawNeighbours,
    #[serde(default)]
    conntrack: RawConntrack,
    #[serde(default)]
    sysctl_allow: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    table_budget: RawTableBudget,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    confirm: crate::confirm::settings::RawConfirm,
    #[serde(default)]
    metrics: metrics::RawMetrics,
    #[serde(default, rename = "policy")]
    policies: Vec<RawPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    deadline_ms: Option<i64>,
    memory_mib: Option<i64>,
    max_rules: Option<i64>,
    max_set_elements: Option<i64>,
    log_lines: Option<i64>,
    max_chains: Option<i64>,
    max_base_chains: Option<i64>,
    max_sets: Option<i64>,
    max_elements: Option<i64>,
    max_counters: Option<i64>,
    max_limits: Option<i64>,
    max_ct_helpers: Option<i64>,
    max_flowtables: Option<i64>,
    max_sysctls: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTableBudget {
    rules: Option<i64>,
    chains: Option<i64>,
    base_chains_per_hook: Option<i64>,
    sets: Option<i64>,
    elements: Option<i64>,
    counters: Option<i64>,
    limits: Option<i64>,
    ct_helpers: Option<i64>,
    flowtables: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeases {
    dnsmasq_file: Option<PathBuf>,
    max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbours {
    enabled: Option<bool>,
    max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConntrack {
    cut_flows: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dir: Option<PathBuf>,
    max_mib: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    path: PathBuf,
    #[serde(default)]
    priority_offset: i64,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    files: toml::Table,
}

/// A file whose text a policy receives as the value of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub key: String,
    pub path: PathBuf,
}

impl PolicyFile {
    /// The file's text, verbatim; with `check_permissions`, refused when
    /// others could have written it (as the config file is).
    pub fn read(&self, check_permissions: bool) -> Result<String, FileProblem> {
        if check_permissions {
            perms::check(&self.path, Kind::PolicyInput.what())?;
        }
        Ok(files::read_text(&self.path, Kind::PolicyInput)?)
    }
}

/// A table of files for a policy (`[policy.files]`, a fixture's `[files]`;
/// `table_name` in errors): each key's path, relative to `base`, in the
/// order written. A key may not be one of `config` too (`config_table` in
/// errors): the policy would get it twice.
pub(crate) fn policy_files(
    table: toml::Table,
    config: &[(String, String)],
    base: &Path,
    (table_name, config_table): (&str, &str),
) -> Result<Vec<PolicyFile>, String> {
    let mut out = Vec::new();
    for (key, value) in table {
        let toml::Value::String(path) = value else {
            return Err(format!(
                "`{table_name}` key `{key}` must be a string (the path of a file)"
            ));
        };
        if config.iter().any(|(k, _)| *k == key) {
            return Err(format!(
                "`{table_name}` key `{key}` is also a key of `{config_table}`: a policy gets each key once"
            ));
        }
        out.push(PolicyFile {
            key,
            path: base.join(path),
        });
    }
    Ok(out)
}

/// One policy to run.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub path: PathBuf,
    /// Added to the priority of each of the policy's base chains, to order
    /// policies that hook the same place (lower runs first).
    pub priority_offset: i32,
    /// What the policy receives: its own settings (`[policy.config]`) in
    /// the order written, then, once read ([`PolicyConfig::read_files`]),
    /// one pair per file of `files`: its key and its text, verbatim.
    pub config: Vec<(String, String)>,
    /// `[policy.files]`, in the order written.
    pub files: Vec<PolicyFile>,
}

impl PolicyConfig {
    /// Appends the text of each of `files` to `config`, in the order
    /// written; with `check_permissions`, a file that others could have
    /// written is refused.
    pub fn read_files(&mut self, check_permissions: bool) -> Result<(), PolicyFileError> {
        for file in &self.files {
            let text = file
                .read(check_permissions)
                .map_err(|problem| PolicyFileError {
                    key: file.key.clone(),
                    problem,
                })?;
            self.config.push((file.key.clone(), text));
        }
        Ok(())
    }
}

/// Where `run` learns of DHCP leases besides its control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// dnsmasq's lease file, watched.
    pub dnsmasq_file: Option<PathBuf>,
    /// Leases held at most.
    pub max: usize,
}

/// Whether and how far `run` follows the kernel's neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// Follow it (rtnetlink); false: the policies see no neighbours.
    pub enabled: bool,
    /// Neighbours held at most; the first in the policies' order.
    pub max: usize,
}

/// Neighbours `run` holds at most when the config does not say.
pub const DEFAULT_MAX_NEIGHBOURS: usize = 4096;

/// The most `limits.max_sysctls` may be: each sysctl is a read and maybe a
/// write at every reconcile, so a policy could otherwise keep the daemon
/// busy for seconds.
pub const MAX_SYSCTLS_CEILING: usize = 16_384;
pub const MAX_SYSCTLS: Number = Number {
    key: "limits.max_sysctls",
    range: 0..=MAX_SYSCTLS_CEILING as i64,
};

/// Leases `run` holds at most when the config does not say.
pub const DEFAULT_MAX_LEASES: usize = 65_536;

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub state_dir: PathBuf,
    pub netns: Option<String>,
    /// How often `run` checks the kernel for hand edits of its table and
    /// repairs them (besides reacting to nftables change notifications);
    /// None: never on a timer.
    pub reconcile_interval: Option<Duration>,
    /// The daemon's control socket; None: beside the state file.
    pub control_socket: Option<PathBuf>,
    /// Whether `run` watches the config and policy files and swaps in new
    /// versions.
    pub watch_files: bool,
    pub leases: LeaseConfig,
    pub neighbours: NeighbourConfig,
    /// `[conntrack] cut_flows`: after a batch, cut the conntrack entries
    /// the change no longer allows or would translate differently.
    pub cut_flows: bool,
    pub limits: Limits,
    /// What one policy may ask for (`[limits]`).
    pub budget: PolicyBudget,
    pub max_set_elements: usize,
    /// What the whole table may hold (`[table_budget]`).
    pub table_budget: TableBudget,
    pub sysctls: AllowList,
    /// Sysctls one policy may ask for at most.
    pub max_sysctls: usize,
    /// Where compiled policies are kept.
    pub cache: CacheSettings,
    /// How changes wait for `wasmwall confirm` (`[confirm]`).
    pub confirm: crate::confirm::ConfirmSettings,
    /// `[metrics]`: the Prometheus endpoint `run` serves; None: off.
    pub metrics: Option<MetricsConfig>,
    pub policies: Vec<PolicyConfig>,
    /// Use policy files that others could have written (never read from the
    /// file itself: only the command line can say so).
    pub insecure_permissions: bool,
}

impl Config {
    /// Reads a config file as the commands that run its policies do: the
    /// file and those of `[policy.files]` refused when others could have
    /// written them (unless `insecure_permissions`, which the config keeps),
    /// and the latter read into their policies' config values.
    pub fn load_for_policies(
        path: &Path,
        insecure_permissions: bool,
    ) -> Result<Config, ConfigError> {
        if !insecure_permissions {
            perms::check(path, Kind::Config.what())?;
        }
        let mut config = Config::load(path)?;
        config.insecure_permissions = insecure_permissions;
        config.read_policy_files(!insecure_permissions, &path.display().to_string())?;
        Ok(config)
    }

    /// Reads every policy's `[policy.files]` ([`PolicyConfig::read_files`]);
    /// `shown` names the config file in errors.
    fn read_policy_files(
        &mut self,
        check_permissions: bool,
        shown: &str,
    ) -> Result<(), ConfigError> {
        for (i, p) in self.policies.iter_mut().enumerate() {
            p.read_files(check_permissions)
                .map_err(|source| ConfigError::PolicyFile {
                    path: shown.to_string(),
                    policy: policy_at(i, &p.name),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// Reads and resolves a config file, without the files of
    /// `[policy.files]` (for the commands that run no policy). Relative
    /// paths are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = files::read_text(path, Kind::Config)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &shown, base)
    }

    /// Parses and resolves config text; `shown` names it in errors.
    pub fn parse(text: &str, shown: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_string(),
            message,
        };

        let table = raw.table.unwrap_or_else(|| DEFAULT_TABLE.to_string());
        if !valid_ident(&table, 32) {
            return Err(invalid(format!(
                "`table` {table:?} must be 1-32 letters, digits, '_' or '-'"
            )));
        }
        if let Some(ns) = &raw.netns
            && !fields::valid_netns(ns)
        {
            return Err(invalid(format!(
                "`netns` {ns:?} is not a valid namespace name"
            )));
        }

        let out_of_range = |problem: OutOfRange| ConfigError::OutOfRange {
            path: shown.to_string(),
            problem,
        };
        // Each number checked in its key's range, or its default.
        let number = |n: &Number, value: Option<i64>, default: u64| match value {
            None => Ok(default),
            Some(v) => n.unsigned(v).map_err(out_of_range),
        };
        let reconcile_interval = match number(
            &RECONCILE_INTERVAL_S,
            raw.reconcile_interval_s,
            DEFAULT_RECONCILE_INTERVAL_S,
        )? {
            0 => None,
            s => Some(Duration::from_secs(s)),
        };

        let defaults = Limits::default();
        let l = &raw.limits;
        let limits = Limits {
            deadline: Duration::from_millis(number(
                &DEADLINE_MS,
                l.deadline_ms,
                defaults.deadline.as_millis() as u64,
            )?),
            memory_bytes: (number(
                &MEMORY_MIB,
                l.memory_mib,
                (defaults.memory_bytes >> 20) as u64,
            )? as usize)
                << 20,
            log_lines: number(&LOG_LINES, l.log_lines, defaults.log_lines as u64)? as usize,
        };
        let (budget, table_budget) = budgets(&raw.limits, &raw.table_budget).map_err(invalid)?;
        let max_set_elements = number(
            &MAX_SET_ELEMENTS,
            l.max_set_elements,
            validate::DEFAULT_MAX_SET_ELEMENTS as u64,
        )? as usize;
        let leases_max = number(&LEASES_MAX, raw.leases.max, DEFAULT_MAX_LEASES as u64)? as usize;
        let neighbours_max = number(
            &NEIGHBOURS_MAX,
            raw.neighbours.max,
            DEFAULT_MAX_NEIGHBOURS as u64,
        )? as usize;
        let cache_max_mib = raw
            .cache
            .max_mib
            .map(|m| CACHE_MAX_MIB.unsigned(m))
            .transpose()
            .map_err(out_of_range)?;

        let sysctls = AllowList::new(&raw.sysctl_allow).map_err(|e| match e {
            KeyError::BadPattern(p) => invalid(format!(
                "`sysctl_allow` entry {p:?} must be a key under `net.` ('*' for an interface)"
            )),
            other => invalid(other.to_string()),
        })?;

        let max_sysctls = number(
            &MAX_SYSCTLS,
            l.max_sysctls,
            validate::DEFAULT_MAX_SYSCTLS as u64,
        )? as usize;

        let mut policies: Vec<PolicyConfig> = Vec::new();
        for (i, p) in raw.policies.into_iter().enumerate() {
            let at = policy_at(i, &p.name);
            if !fields::valid_policy_name(&p.name) {
                return Err(invalid(format!(
                    "{at}: `name` must be 1-24 lower-case letters, digits or '-', starting with a letter"
                )));
            }
            let priority_offset = PRIORITY_OFFSET
                .check(p.priority_offset)
                .map_err(|e| invalid(format!("{at}: {e}")))?
                as i32;
            if policies.iter().any(|q| q.name == p.name) {
                return Err(invalid(format!("{at}: name used twice")));
            }
            let mut config = Vec::new();
            for (k, v) in p.config {
                let value = scalar_text(&v).ok_or_else(|| {
                    invalid(format!(
                        "{at}: config key `{k}` must be a string, number, boolean or a list of those"
                    ))
                })?;
                config.push((k, value));
            }
            let files = policy_files(
                p.files,
                &config,
                base,
                ("[policy.files]", "[policy.config]"),
            )
            .map_err(|e| invalid(format!("{at}: {e}")))?;
            policies.push(PolicyConfig {
                name: p.name,
                path: base.join(p.path),
                priority_offset,
                config,
                files,
            });
        }
        if policies.is_empty() {
            return Err(invalid("no [[policy]] is configured".into()));
        }

        let cache = CacheSettings::from_config(raw.cache.dir.map(|d| base.join(d)), cache_max_mib);

        Ok(Config {
            table,
            state_dir: raw
                .state_dir
                .map(|d| base.join(d))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            netns: raw.netns,
            reconcile_interval,
            control_socket: raw.control_socket.map(|p| base.join(p)),
            watch_files: raw.watch_files.unwrap_or(true),
            leases: LeaseConfig {
                dnsmasq_file: raw.leases.dnsmasq_file.map(|p| base.join(p)),
                max: leases_max,
            },
            neighbours: NeighbourConfig {
                enabled: raw.neighbours.enabled.unwrap_or(true),
                max: neighbours_max,
            },
            cut_flows: raw.conntrack.cut_flows.unwrap_or(true),
            limits,
            budget,
            table_budget,
            max_set_elements,
            sysctls,
            max_sysctls,
            cache,
            confirm: crate::confirm::ConfirmSettings::resolve(raw.confirm).map_err(invalid)?,
            metrics: metrics::resolve(raw.metrics, base).map_err(invalid)?,
            policies,
            insecure_permissions: false,
        })
    }
}

/// The budgets of kernel objects. Each key is 1 up to a ceiling that only
/// keeps numbers sane (raising a budget raises the kernel memory a batch
/// may take: SECURITY.md has the cost per object); a policy's budget is at
/// most the table's.
fn budgets(
    limits: &RawLimits,
    table: &RawTableBudget,
) -> Result<(PolicyBudget, TableBudget), String> {
    fn key(
        value: Option<i64>,
        default: usize,
        max: usize,
        name: &'static str,
    ) -> Result<usize, String> {
        let number = Number {
            key: name,
            range: 1..=max as i64,
        };
        match number.unsigned(value.unwrap_or(default as i64)) {
            Ok(v) => Ok(v as usize),
            Err(e) if name.starts_with("limits.") => Err(format!(
                "{e} (a policy's budget is at most the table's, `[table_budget]`)"
            )),
            Err(e) => Err(e.to_string()),
        }
    }
    let d = TableBudget::default();
    let table = TableBudget {
        rules: key(table.rules, d.rules, 1_000_000, "table_budget.rules")?,
        chains: key(table.chains, d.chains, 100_000, "table_budget.chains")?,
        base_chains_per_hook: key(
            table.base_chains_per_hook,
            d.base_chains_per_hook,
            budget::BASE_CHAINS_PER_HOOK_MAX,
            "table_budget.base_chains_per_hook",
        )?,
        sets: key(table.sets, d.sets, 100_000, "table_budget.sets")?,
        elements: key(
            table.elements,
            d.elements,
            10_000_000,
            "table_budget.elements",
        )?,
        counters: key(table.counters, d.counters, 100_000, "table_budget.counters")?,
        limits: key(table.limits, d.limits, 100_000, "table_budget.limits")?,
        ct_helpers: key(
            table.ct_helpers,
            d.ct_helpers,
            10_000,
            "table_budget.ct_helpers",
        )?,
        flowtables: key(
            table.flowtables,
            d.flowtables,
            1_000,
            "table_budget.flowtables",
        )?,
    };
    let d = PolicyBudget::default();
    let policy = PolicyBudget {
        rules: key(
            limits.max_rules,
            d.rules.min(table.rules),
            table.rules,
            "limits.max_rules",
        )?,
        chains: key(
            limits.max_chains,
            d.chains.min(table.chains),
            table.chains,
            "limits.max_chains",
        )?,
        base_chains: key(
            limits.max_base_chains,
            d.base_chains,
            budget::HOOKS.len() * table.base_chains_per_hook,
            "limits.max_base_chains",
        )?,
        sets: key(
            limits.max_sets,
            d.sets.min(table.sets),
            table.sets,
            "limits.max_sets",
        )?,
        elements: key(
            limits.max_elements,
            d.elements.min(table.elements),
            table.elements,
            "limits.max_elements",
        )?,
        counters: key(
            limits.max_counters,
            d.counters.min(table.counters),
            table.counters,
            "limits.max_counters",
        )?,
        limits: key(
            limits.max_limits,
            d.limits.min(table.limits),
            table.limits,
            "limits.max_limits",
        )?,
        ct_helpers: key(
            limits.max_ct_helpers,
            d.ct_helpers.min(table.ct_helpers),
            table.ct_helpers,
            "limits.max_ct_helpers",
        )?,
        flowtables: key(
            limits.max_flowtables,
            d.flowtables.min(table.flowtables),
            table.flowtables,
            "limits.max_flowtables",
        )?,
    };
    Ok((policy, table))
}

impl Config {
    /// How a policy's answer is judged under this config.
    pub fn validation(&self) -> validate::Options {
        validate::Options {
            budget: self.budget,
            max_set_elements: self.max_set_elements,
            sysctls: self.sysctls.clone(),
            max_sysctls: self.max_sysctls,
            local_time: validate::LocalTime::system(),
        }
    }

    /// The first setting that differs between `self` and `new` and that a
    /// running daemon cannot change (it names its table, namespace, files or
    /// sockets, or the engine's limits), if any.
    pub fn restart_only_difference(&self, new: &Config) -> Option<&'static str> {
        [
            ("table", self.table == new.table),
            ("state_dir", self.state_dir == new.state_dir),
            ("netns", self.netns == new.netns),
            ("control_socket", self.control_socket == new.control_socket),
            ("watch_files", self.watch_files == new.watch_files),
            ("leases", self.leases == new.leases),
            ("neighbours", self.neighbours == new.neighbours),
            ("limits", self.limits == new.limits),
            ("metrics", self.metrics == new.metrics),
        ]
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(key, _)| key)
    }
}

/// How errors name the `index`th `[[policy]]`.
fn policy_at(index: usize, name: &str) -> String {
    format!("[[policy]] #{} ({name:?})", index + 1)
}

/// A TOML value as the string a policy receives; lists are comma-joined.
pub(crate) fn scalar_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                other => scalar_text(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Table(_) => None,
    }
}

/// "line L, column C: message" from a TOML error.
pub(crate) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn valid_ident(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", Path::new("/etc/wasmwall"))
    }

    const MINIMAL: &str = "[[policy]]\nname = \"pf\"\npath = \"pf.wasm\"\n";

    /// The README's example config is one this version takes, with the
    /// defaults it claims.
    #[test]
    fn the_readmes_example_config_parses_and_states_the_defaults() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```toml\n# /etc/wasmwall/wasmwall.toml")
            .expect("the example")
            + 8;
        let text = &readme[start..start + readme[start..].find("```").expect("its end")];
        let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.budget, validate::budget::PolicyBudget::default());
        assert_eq!(c.table_budget, validate::budget::TableBudget::default());
        assert_eq!(c.max_sysctls, validate::DEFAULT_MAX_SYSCTLS);
        assert_eq!(c.max_set_elements, validate::DEFAULT_MAX_SET_ELEMENTS);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.table, "wasmwall");
        assert_eq!(c.state_dir, PathBuf::from("/run/wasmwall"));
        assert_eq!(c.policies[0].path, PathBuf::from("/etc/wasmwall/pf.wasm"));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(
            c.cache.dir.as_deref(),
            Some(Path::new(crate::sandbox::cache::DEFAULT_DIR))
        );
    }

    #[test]
    fn daemon_settings() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.control_socket, None);
        assert!(c.watch_files);
        assert_eq!(c.leases.dnsmasq_file, None);
        assert_eq!(c.leases.max, DEFAULT_MAX_LEASES);
        let c = parse(&format!(
            "control_socket = \"run/w.sock\"\nwatch_files = false\n\
             [leases]\ndnsmasq_file = \"leases\"\nmax = 10\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            c.control_socket,
            Some(PathBuf::from("/etc/wasmwall/run/w.sock"))
        );
        assert!(!c.watch_files);
        assert_eq!(
            c.leases.dnsmasq_file,
            Some(PathBuf::from("/etc/wasmwall/leases"))
        );
        assert_eq!(c.leases.max, 10);
        let err = parse(&format!("[leases]\nmax = 0\n{MINIMAL}")).unwrap_err();
        assert!(
            err.to_string().contains("`leases.max` = 0 is out of range"),
            "{err}"
        );
        let err = parse(&format!("[leases]\nfile = \"x\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("unknown field `file`"), "{err}");
    }

    #[test]
    fn flows_are_cut_unless_the_config_says_not() {
        assert!(parse(MINIMAL).unwrap().cut_flows);
        let c = parse(&format!("[conntrack]\ncut_flows = false\n{MINIMAL}")).unwrap();
        assert!(!c.cut_flows);
        let err = parse(&format!("[conntrack]\nflush = true\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("unknown field `flush`"), "{err}");
    }

    #[test]
    fn neighbour_settings() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            c.neighbours,
            NeighbourConfig {
                enabled: true,
                max: DEFAULT_MAX_NEIGHBOURS
            }
        );
        let c = parse(&format!(
            "[neighbours]\nenabled = false\nmax = 10\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            c.neighbours,
            NeighbourConfig {
                enabled: false,
                max: 10
            }
        );
        let err = parse(&format!("[neighbours]\nmax = 0\n{MINIMAL}")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`neighbours.max` = 0 is out of range"),
            "{err}"
        );
        let err = parse(&format!("[neighbours]\nstates = 1\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("unknown field `states`"), "{err}");
    }

    #[test]
    fn what_a_running_daemon_cannot_change_is_named() {
        let old = parse(MINIMAL).unwrap();
        let policy_changed = parse(&format!(
            "sysctl_allow = [\"net.ipv4.conf.*.arp_ignore\"]\n{MINIMAL}[policy.config]\nk = 1\n"
        ))
        .unwrap();
        assert_eq!(old.restart_only_difference(&policy_changed), None);
        for (text, key) in [
            ("table = \"other\"\n", "table"),
            ("netns = \"r\"\n", "netns"),
            ("state_dir = \"/tmp/s\"\n", "state_dir"),
            ("control_socket = \"/tmp/s.sock\"\n", "control_socket"),
            ("[leases]\nmax = 5\n", "leases"),
            ("[neighbours]\nmax = 5\n", "neighbours"),
            ("[neighbours]\nenabled = false\n", "neighbours"),
            ("[limits]\nmemory_mib = 5\n", "limits"),
        ] {
            let new = parse(&format!("{text}{MINIMAL}")).unwrap();
            assert_eq!(old.restart_only_difference(&new), Some(key), "{text}");
        }
    }

    #[test]
    fn cache_dir_is_relative_to_the_file_and_0_mib_turns_it_off() {
        let c = parse(&format!(
            "[cache]\ndir = \"cache\"\nmax_mib = 10\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.cache.dir, Some(PathBuf::from("/etc/wasmwall/cache")));
        assert_eq!(c.cache.max_bytes, 10 << 20);
        let c = parse(&format!("[cache]\nmax_mib = 0\n{MINIMAL}")).unwrap();
        assert_eq!(c.cache.dir, None);
    }

    #[test]
    fn policy_config_keeps_order_and_stringifies() {
        let c = parse(&format!(
            "{MINIMAL}[policy.config]\nz = \"a\"\nport = 80\nflag = true\nlist = [\"x\", \"y\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.policies[0].config,
            vec![
                ("z".into(), "a".into()),
                ("port".into(), "80".into()),
                ("flag".into(), "true".into()),
                ("list".into(), "x,y".into()),
            ]
        );
    }

    #[test]
    fn policy_files_are_relative_to_the_config_and_kept_in_order() {
        let c = parse(&format!(
            "{MINIMAL}[policy.files]\nuci = \"fw\"\nnetwork = \"/etc/config/network\"\n"
        ))
        .unwrap();
        let p = &c.policies[0];
        assert_eq!(
            p.files,
            vec![
                PolicyFile {
                    key: "uci".into(),
                    path: "/etc/wasmwall/fw".into()
                },
                PolicyFile {
                    key: "network".into(),
                    path: "/etc/config/network".into()
                },
            ]
        );
        assert!(p.config.is_empty(), "parsing reads no file");
    }

    #[test]
    fn a_policy_file_must_be_a_path_and_its_key_not_a_config_key() {
        for (text, problem) in [
            (
                "[policy.files]\nuci = 5\n",
                "`[policy.files]` key `uci` must be a string (the path of a file)",
            ),
            (
                "[policy.files]\nuci = [\"a\", \"b\"]\n",
                "`[policy.files]` key `uci` must be a string (the path of a file)",
            ),
            (
                "[policy.config]\nzone = \"lan\"\nuci = \"x\"\n[policy.files]\nuci = \"fw\"\n",
                "`[policy.files]` key `uci` is also a key of `[policy.config]`: a policy gets each key once",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{text}")).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("config file test.toml: [[policy]] #1 (\"pf\"): {problem}"),
                "{text}"
            );
        }
    }

    /// A config in a directory of its own, naming `files` (key, file name)
    /// in `[policy.files]` after `settings` in `[policy.config]`.
    fn config_with_files(dir: &Path, settings: &str, files: &[(&str, &str)]) -> PathBuf {
        let mut text = format!("{MINIMAL}[policy.config]\n{settings}\n[policy.files]\n");
        for (key, file) in files {
            text.push_str(&format!("{key} = \"{file}\"\n"));
        }
        let path = dir.join("wasmwall.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_policy_gets_its_config_then_each_files_text_verbatim_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let uci = "config zone\n\toption name 'lan'\n";
        let network = "config interface 'lan'\r\n\n";
        std::fs::write(dir.path().join("firewall"), uci).unwrap();
        std::fs::write(dir.path().join("sub/network"), network).unwrap();
        let path = config_with_files(
            dir.path(),
            "zones_from = \"network\"\nport = 80",
            &[("uci", "firewall"), ("network", "sub/network")],
        );
        let c = Config::load_for_policies(&path, false).unwrap();
        assert_eq!(
            c.policies[0].config,
            vec![
                ("zones_from".to_string(), "network".to_string()),
                ("port".into(), "80".into()),
                ("uci".into(), uci.into()),
                ("network".into(), network.into()),
            ]
        );
        // The commands that run no policy read none of them.
        assert_eq!(Config::load(&path).unwrap().policies[0].config.len(), 2);
    }

    #[test]
    fn a_policy_file_that_cannot_be_given_is_an_error_naming_it_and_its_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fw");
        let path = config_with_files(dir.path(), "", &[("uci", "fw")]);
        let error = |insecure| {
            crate::text::error_chain(&Config::load_for_policies(&path, insecure).unwrap_err())
        };
        let at = format!(
            "config file {}: [[policy]] #1 (\"pf\"): `[policy.files]` key `uci`: ",
            path.display()
        );
        let shown = file.display();
        assert_eq!(
            error(false),
            format!(
                "{at}cannot read policy input file {shown}: No such file or directory (os error 2)"
            )
        );
        assert_eq!(
            error(true),
            format!(
                "{at}cannot read policy input file {shown}: No such file or directory (os error 2)"
            )
        );
        std::fs::create_dir(&file).unwrap();
        assert_eq!(
            error(false),
            format!("{at}policy input file {shown} is a directory, not a regular file")
        );
        std::fs::remove_dir(&file).unwrap();
        std::fs::write(&file, b"config zone\n\xff\n").unwrap();
        assert_eq!(
            error(false),
            format!("{at}policy input file {shown} is not UTF-8 text")
        );
        let f = std::fs::File::create(&file).unwrap();
        f.set_len((1 << 20) + 1).unwrap();
        assert_eq!(
            error(false),
            format!(
                "{at}policy input file {shown} is larger than 1 MiB (the most read of a policy input file)"
            )
        );
        f.set_len(1 << 20).unwrap();
        Config::load_for_policies(&path, false).expect("1 MiB is taken");

        // Writable by others: refused as the config file would be, unless
        // the command line says otherwise.
        std::fs::write(&file, "x\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert_eq!(
            error(false),
            format!(
                "{at}refusing policy input file {shown}: it is writable by everyone (mode 0646); \
                 anyone who can write there controls the firewall (fix it with chown/chmod, or pass --insecure-permissions)"
            )
        );
        let c = Config::load_for_policies(&path, true).unwrap();
        assert_eq!(c.policies[0].config, vec![("uci".into(), "x\n".into())]);
        assert!(c.insecure_permissions);
    }

    #[test]
    fn the_config_file_itself_is_permission_checked_before_its_policy_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = config_with_files(dir.path(), "", &[("uci", "missing")]);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Config::load_for_policies(&path, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "refusing config file {}: it is writable by everyone",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn malformed_toml_names_line_and_column() {
        let err = parse("table = \"x\"\n[[policy]\n").unwrap_err().to_string();
        assert!(
            err.contains("test.toml") && err.contains("line 2, column"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse(&format!("tabel = \"x\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tabel") && err.contains("line 1"), "{err}");
        let err = parse(&format!("{MINIMAL}\n[limits]\ndeadline = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("deadline"), "{err}");
    }

    #[test]
    fn bad_policy_name() {
        let err = parse("[[policy]]\nname = \"Port Forward\"\npath = \"x.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"Port Forward\"") && err.contains("`name`"),
            "{err}"
        );
    }

    #[test]
    fn priority_offset_is_bounded() {
        let c = parse(&format!("{MINIMAL}priority_offset = -5\n")).unwrap();
        assert_eq!(c.policies[0].priority_offset, -5);
        let err = parse(&format!("{MINIMAL}priority_offset = 5000\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("priority_offset"), "{err}");
    }

    #[test]
    fn duplicate_policy_name() {
        let err = parse(&format!("{MINIMAL}{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("name used twice"), "{err}");
    }

    #[test]
    fn no_policy() {
        let err = parse("table = \"t\"\n").unwrap_err().to_string();
        assert!(err.contains("no [[policy]]"), "{err}");
    }

    #[test]
    fn nested_table_in_policy_config() {
        let err = parse(&format!("{MINIMAL}[policy.config.sub]\na = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config key `sub`"), "{err}");
    }

    #[test]
    fn bad_limits() {
        let err = parse(&format!("{MINIMAL}[limits]\ndeadline_ms = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("deadline_ms"), "{err}");
        let err = parse(&format!("{MINIMAL}[limits]\nmemory_mib = 100000\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory_mib"), "{err}");
    }

    /// Where each number goes in a config, as a line of TOML.
    fn number_line(n: &Number, value: i64) -> String {
        match n.key.split_once('.') {
            Some((table, key)) => format!("{MINIMAL}[{table}]\n{key} = {value}\n"),
            None if n.key == "priority_offset" => format!("{MINIMAL}priority_offset = {value}\n"),
            None => format!("{} = {value}\n{MINIMAL}", n.key),
        }
    }

    #[test]
    fn every_number_is_checked_in_its_range_and_never_wraps() {
        for n in [
            RECONCILE_INTERVAL_S,
            DEADLINE_MS,
            MEMORY_MIB,
            MAX_SET_ELEMENTS,
            LOG_LINES,
            LEASES_MAX,
            NEIGHBOURS_MAX,
            CACHE_MAX_MIB,
            PRIORITY_OFFSET,
        ] {
            let (min, max) = (*n.range.start(), *n.range.end());
            for ok in [min, max] {
                parse(&number_line(&n, ok)).unwrap_or_else(|e| panic!("{} = {ok}: {e}", n.key));
            }
            // Just outside, far outside, and values that wrapped or were
            // cut to a small one when converted (2^44 + 1 MiB is 1 MiB in
            // bytes on 64 bits; 2^32 + 1 is 1 as a u32).
            for bad in [
                min - 1,
                max + 1,
                i64::MIN,
                i64::MAX,
                (1 << 44) + 1,
                (1 << 32) + 1,
            ] {
                if n.range.contains(&bad) {
                    continue;
                }
                let err = parse(&number_line(&n, bad)).unwrap_err().to_string();
                let expected = format!(
                    "`{}` = {bad} is out of range: it must be {min} to {max}",
                    n.key
                );
                assert!(err.contains(&expected), "{err}");
                assert!(err.starts_with("config file test.toml"), "{err}");
            }
        }
    }

    #[test]
    fn budget_numbers_are_checked_as_64_bit_integers() {
        for (text, expected) in [
            (
                "[limits]\nmax_chains = -1\n",
                "`limits.max_chains` = -1 is out of range: it must be 1 to",
            ),
            (
                "[limits]\nmax_rules = 17592186044417\n",
                "`limits.max_rules` = 17592186044417 is out of range: it must be 1 to",
            ),
            (
                "[table_budget]\nelements = 0\n",
                "`table_budget.elements` = 0 is out of range: it must be 1 to 10000000",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{text}")).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn object_budgets_are_range_checked_and_a_policys_is_at_most_the_tables() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (
                c.budget.counters,
                c.budget.limits,
                c.budget.ct_helpers,
                c.budget.flowtables
            ),
            (1_000, 1_000, 64, 8)
        );
        assert_eq!(
            (
                c.table_budget.counters,
                c.table_budget.limits,
                c.table_budget.ct_helpers,
                c.table_budget.flowtables
            ),
            (4_000, 4_000, 256, 16)
        );
        for (text, expected) in [
            (
                "[table_budget]\nflowtables = 1001\n",
                "`table_budget.flowtables` = 1001 is out of range: it must be 1 to 1000",
            ),
            (
                "[table_budget]\ncounters = 0\n",
                "`table_budget.counters` = 0 is out of range: it must be 1 to 100000",
            ),
            (
                "[table_budget]\nct_helpers = 10001\n",
                "`table_budget.ct_helpers` = 10001 is out of range: it must be 1 to 10000",
            ),
            (
                "[limits]\nmax_ct_helpers = 257\n",
                "`limits.max_ct_helpers` = 257 is out of range: it must be 1 to 256 (a policy's budget is at most the table's",
            ),
            (
                "[table_budget]\nlimits = 10\n[limits]\nmax_limits = 11\n",
                "`limits.max_limits` = 11 is out of range: it must be 1 to 10",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{text}")).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let c = parse(&format!(
            "{MINIMAL}[table_budget]\nflowtables = 2\n[limits]\nmax_counters = 5\n"
        ))
        .unwrap();
        assert_eq!((c.budget.flowtables, c.budget.counters), (2, 5));
    }

    #[test]
    fn numbers_are_taken_as_given() {
        let c = parse(&format!(
            "reconcile_interval_s = 0\n[limits]\ndeadline_ms = 60000\nmemory_mib = 4096\n\
             max_rules = 7\nmax_set_elements = 8\nlog_lines = 0\n[leases]\nmax = 9\n\
             [neighbours]\nmax = 11\n[cache]\nmax_mib = 1048576\n{MINIMAL}priority_offset = -1000\n"
        ))
        .unwrap();
        assert_eq!(c.reconcile_interval, None);
        assert_eq!(c.limits.deadline, Duration::from_secs(60));
        assert_eq!(c.limits.memory_bytes, 4096 << 20);
        assert_eq!((c.budget.rules, c.max_set_elements), (7, 8));
        assert_eq!(c.limits.log_lines, 0);
        assert_eq!(c.leases.max, 9);
        assert_eq!(c.neighbours.max, 11);
        assert_eq!(c.cache.max_bytes, 1 << 40);
        assert_eq!(c.policies[0].priority_offset, -1000);
    }

    #[test]
    fn a_number_beyond_64_bits_is_a_toml_error_naming_its_line() {
        let err = parse(&format!(
            "{MINIMAL}[limits]\nmemory_mib = 99999999999999999999\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn max_sysctls_is_range_checked() {
        assert_eq!(
            parse(MINIMAL).unwrap().max_sysctls,
            validate::DEFAULT_MAX_SYSCTLS
        );
        let c = parse(&format!("{MINIMAL}[limits]\nmax_sysctls = 0\n")).unwrap();
        assert_eq!(c.validation().max_sysctls, 0);
        let err = parse(&format!("{MINIMAL}[limits]\nmax_sysctls = 16385\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`limits.max_sysctls` = 16385 is out of range: it must be 0 to 16384"),
            "{err}"
        );
    }

    #[test]
    fn bad_sysctl_pattern() {
        let err = parse(&format!("sysctl_allow = [\"kernel.*\"]\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"kernel.*\"") && err.contains("sysctl_allow"),
            "{err}"
        );
    }

    #[test]
    fn bad_table_and_netns() {
        let err = parse(&format!("table = \"a b\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"a b\""), "{err}");
        let err = parse(&format!("netns = \"../x\"\n{MINIMAL}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"../x\""), "{err}");
    }
}
