//! The runtime's configuration file (TOML): parsed here, then resolved
//! (paths made absolute, values checked) into a [`Config`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::fields;
use crate::sandbox::Limits;
use crate::sandbox::cache::CacheSettings;
use crate::sysctl::{AllowList, KeyError};
use crate::validate;

pub const DEFAULT_TABLE: &str = "wasmwall";
pub const DEFAULT_STATE_DIR: &str = "/run/wasmwall";
/// Seconds between drift checks of `run` when the config does not say.
pub const DEFAULT_RECONCILE_INTERVAL_S: u64 = 30;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    table: Option<String>,
    state_dir: Option<PathBuf>,
    netns: Option<String>,
    reconcile_interval_s: Option<u64>,
    control_socket: Option<PathBuf>,
    watch_files: Option<bool>,
    #[serde(default)]
    leases: RawLeases,
    #[serde(default)]
    sysctl_allow: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    cache: RawCache,
    #[serde(default, rename = "policy")]
    policies: Vec<RawPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
    max_rules: Option<usize>,
    max_set_elements: Option<usize>,
    log_lines: Option<usize>,
    max_sysctls: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeases {
    dnsmasq_file: Option<PathBuf>,
    max: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dir: Option<PathBuf>,
    max_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    path: PathBuf,
    #[serde(default)]
    priority_offset: i32,
    #[serde(default)]
    config: toml::Table,
}

/// One policy to run.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub path: PathBuf,
    /// Added to the priority of each of the policy's base chains, to order
    /// policies that hook the same place (lower runs first).
    pub priority_offset: i32,
    /// The policy's own settings, in the order written.
    pub config: Vec<(String, String)>,
}

/// Where `run` learns of DHCP leases besides its control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// dnsmasq's lease file, watched.
    pub dnsmasq_file: Option<PathBuf>,
    /// Leases held at most.
    pub max: usize,
}

/// The most `limits.max_sysctls` may be: each sysctl is a read and maybe a
/// write at every reconcile, so a policy could otherwise keep the daemon
/// busy for seconds.
pub const MAX_SYSCTLS_CEILING: usize = 16_384;

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
    pub limits: Limits,
    pub max_rules: usize,
    pub max_set_elements: usize,
    pub sysctls: AllowList,
    /// Sysctls one policy may ask for at most.
    pub max_sysctls: usize,
    /// Where compiled policies are kept.
    pub cache: CacheSettings,
    pub policies: Vec<PolicyConfig>,
    /// Use policy files that others could have written (never read from the
    /// file itself: only the command line can say so).
    pub insecure_permissions: bool,
}

impl Config {
    /// Reads and resolves a config file. Relative policy paths are relative to
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
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

        let reconcile_interval = match raw.reconcile_interval_s {
            None => Some(Duration::from_secs(DEFAULT_RECONCILE_INTERVAL_S)),
            Some(0) => None,
            Some(s) if s <= 86_400 => Some(Duration::from_secs(s)),
            Some(_) => {
                return Err(invalid(
                    "`reconcile_interval_s` must be 0 (off) to 86400".into(),
                ));
            }
        };

        let defaults = Limits::default();
        let limits = Limits {
            deadline: raw
                .limits
                .deadline_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.deadline),
            memory_bytes: raw
                .limits
                .memory_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or(defaults.memory_bytes),
            log_lines: raw.limits.log_lines.unwrap_or(defaults.log_lines),
        };
        if limits.deadline.is_zero() || limits.deadline > Duration::from_secs(60) {
            return Err(invalid("`limits.deadline_ms` must be 1-60000".into()));
        }
        if !(1..=4096).contains(&(limits.memory_bytes >> 20)) {
            return Err(invalid("`limits.memory_mib` must be 1-4096".into()));
        }

        let leases_max = raw.leases.max.unwrap_or(DEFAULT_MAX_LEASES);
        if !(1..=1_000_000).contains(&leases_max) {
            return Err(invalid("`leases.max` must be 1-1000000".into()));
        }

        let sysctls = AllowList::new(&raw.sysctl_allow).map_err(|e| match e {
            KeyError::BadPattern(p) => invalid(format!(
                "`sysctl_allow` entry {p:?} must be a key under `net.` ('*' for an interface)"
            )),
            other => invalid(other.to_string()),
        })?;

        let max_sysctls = raw
            .limits
            .max_sysctls
            .unwrap_or(validate::DEFAULT_MAX_SYSCTLS);
        if max_sysctls > MAX_SYSCTLS_CEILING {
            return Err(invalid(format!(
                "`limits.max_sysctls` must be 0-{MAX_SYSCTLS_CEILING}"
            )));
        }

        let mut policies: Vec<PolicyConfig> = Vec::new();
        for (i, p) in raw.policies.into_iter().enumerate() {
            let at = format!("[[policy]] #{} ({:?})", i + 1, p.name);
            if !fields::valid_policy_name(&p.name) {
                return Err(invalid(format!(
                    "{at}: `name` must be 1-24 lower-case letters, digits or '-', starting with a letter"
                )));
            }
            if !(-1000..=1000).contains(&p.priority_offset) {
                return Err(invalid(format!(
                    "{at}: `priority_offset` must be between -1000 and 1000"
                )));
            }
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
            policies.push(PolicyConfig {
                name: p.name,
                path: base.join(p.path),
                priority_offset: p.priority_offset,
                config,
            });
        }
        if policies.is_empty() {
            return Err(invalid("no [[policy]] is configured".into()));
        }

        let cache =
            CacheSettings::from_config(raw.cache.dir.map(|d| base.join(d)), raw.cache.max_mib);

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
            limits,
            max_rules: raw.limits.max_rules.unwrap_or(validate::DEFAULT_MAX_RULES),
            max_set_elements: raw
                .limits
                .max_set_elements
                .unwrap_or(validate::DEFAULT_MAX_SET_ELEMENTS),
            sysctls,
            max_sysctls,
            cache,
            policies,
            insecure_permissions: false,
        })
    }
}

impl Config {
    /// How a policy's answer is judged under this config.
    pub fn validation(&self) -> validate::Options {
        validate::Options {
            max_rules: self.max_rules,
            max_set_elements: self.max_set_elements,
            sysctls: self.sysctls.clone(),
            max_sysctls: self.max_sysctls,
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
            ("limits", self.limits == new.limits),
        ]
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(key, _)| key)
    }
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
        assert!(err.to_string().contains("`leases.max` must be"), "{err}");
        let err = parse(&format!("[leases]\nfile = \"x\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("unknown field `file`"), "{err}");
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
            err.contains("`limits.max_sysctls` must be 0-16384"),
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
