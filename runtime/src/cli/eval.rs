//! `wasmwall eval` and `wasmwall test`: one policy evaluated without root and
//! without touching any kernel, its answer judged exactly as `wasmwall run`
//! judges it (the defaults of a config, or `--config`'s rules), and printed
//! as the nft text it becomes, or checked against fixtures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::CacheArgs;
use super::resolve::{configured_policy, parse_key_value, policy_name};
use crate::config::{self, Config, PolicyConfig, PolicyFile};
use crate::engine::{PolicyError, evaluate_policy};
use crate::fixtures::{self, Judge};
use crate::ir::PolicyRules;
use crate::sandbox::{Limits, LoadedPolicy, PolicyEngine};
use crate::validate;
use crate::world::{self, EVENT_SYNTAX, Event, WorldState};

/// Judge by a config's rules.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Judge the policy's answer by this config's rules, as `wasmwall run`
    /// with it would: its limits, `sysctl_allow`, and the policy's
    /// `priority_offset` (the [[policy]] named by --name, or the one whose
    /// `path` is POLICY). Without it, by the defaults of a config that sets
    /// none of them.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The policy component (.wasm).
    pub policy: PathBuf,
    /// The event to evaluate.
    #[arg(long, default_value = "startup", value_name = "EVENT", long_help = format!("The event to evaluate: {EVENT_SYNTAX}"))]
    pub event: Event,
    /// World state as JSON: {"interfaces": [{"name", "index", "up", "mac",
    /// "addresses": ["192.168.0.9/24"]}], "leases": [{"mac", "ip",
    /// "hostname", "iface", "expires"}]}. Without it (and without --local)
    /// the state is empty.
    #[arg(long, value_name = "FILE", conflicts_with = "local")]
    pub state: Option<PathBuf>,
    /// Use this machine's interfaces and addresses as the state (read-only;
    /// no root needed).
    #[arg(long)]
    pub local: bool,
    /// A policy config setting; repeatable. With --config, added to (and
    /// overriding) the [[policy]]'s own settings.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub settings: Vec<(String, String)>,
    /// A policy config setting whose value is the text of the file PATH,
    /// verbatim (as `[policy.files]` of a config gives it); repeatable.
    /// These come after the --set settings; with --config, they are added
    /// to (and override) the [[policy]]'s own settings and files. A KEY may
    /// not be given to both --set and --file.
    #[arg(long = "file", value_name = "KEY=PATH", value_parser = parse_key_value)]
    pub files: Vec<(String, String)>,
    /// The policy's name (prefix of its chains); defaults to the file name.
    #[arg(long)]
    pub name: Option<String>,
    /// Name of the table to show the rules in.
    #[arg(long, default_value = config::DEFAULT_TABLE)]
    pub table: String,
    /// Deadline for the evaluation, in milliseconds [default: the config's,
    /// else 200].
    #[arg(long, allow_negative_numbers = true)]
    pub deadline_ms: Option<i64>,
    /// Memory cap for the policy, in MiB [default: the config's, else 64].
    #[arg(long, allow_negative_numbers = true)]
    pub memory_mib: Option<i64>,
    #[command(flatten)]
    pub judge: JudgeArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy component (.wasm).
    pub policy: PathBuf,
    /// The directory of fixtures.
    pub fixtures: PathBuf,
    /// Record the current outcome as the expectation of every fixture that
    /// does not match (or has none yet), instead of failing.
    #[arg(long)]
    pub bless: bool,
    /// The policy's name (prefix of its chains in the expected rulesets);
    /// defaults to the file name.
    #[arg(long)]
    pub name: Option<String>,
    /// Run only this fixture (a directory name); repeatable.
    #[arg(long = "fixture", value_name = "NAME")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub judge: JudgeArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// The policy as a config configures it, or as the defaults would.
struct Judged {
    policy: PolicyConfig,
    validation: validate::Options,
    limits: Limits,
}

fn judged(judge: &JudgeArgs, name: Option<&str>, path: &std::path::Path) -> Result<Judged> {
    match &judge.config {
        None => Ok(Judged {
            policy: PolicyConfig {
                name: policy_name(name, path)?,
                path: path.to_path_buf(),
                priority_offset: 0,
                config: Vec::new(),
                files: Vec::new(),
            },
            validation: validate::Options::default(),
            limits: Limits::default(),
        }),
        Some(file) => {
            let config = Config::load(file)?;
            let policy = configured_policy(&config, name, path)?.clone();
            Ok(Judged {
                validation: config.validation(),
                limits: config.limits,
                policy,
            })
        }
    }
}

fn load(judged: &Judged, path: &std::path::Path, cache: &CacheArgs) -> Result<LoadedPolicy> {
    let mut engine = PolicyEngine::new(judged.limits)?;
    engine.set_cache(cache.user_settings().open());
    Ok(engine.load(&judged.policy.name, path)?)
}

pub fn eval(args: EvalArgs) -> Result<ExitCode> {
    let mut judged = judged(&args.judge, args.name.as_deref(), &args.policy)?;
    if let Some(ms) = args.deadline_ms {
        let ms = config::DEADLINE_MS.named("--deadline-ms").check(ms)?;
        judged.limits.deadline = Duration::from_millis(ms as u64);
    }
    if let Some(mib) = args.memory_mib {
        let mib = config::MEMORY_MIB.named("--memory-mib").check(mib)?;
        judged.limits.memory_bytes = (mib as usize) << 20;
    }
    let world = if let Some(path) = &args.state {
        world::load_json(path)?
    } else if args.local {
        let interfaces = world::read_interfaces_now()?;
        let names = world::interface_names(&interfaces);
        // The probe needs CAP_NET_ADMIN; without it the policy is told the
        // kernel has no optional feature (and the log says why).
        let features = match crate::kernel::Netlink::new() {
            Ok(mut kernel) => crate::kernel::detect_features(&mut kernel, &names),
            Err(e) => {
                tracing::warn!(error = %crate::text::error_chain(&e), "cannot open nftables to find out the kernel's features; the policy is told it has none");
                world::Features::default()
            }
        };
        // The neighbour table as it is now (no leases: only a daemon
        // follows a DHCP server).
        let neighbours = world::runtime()
            .map_err(world::WorldError::Runtime)?
            .block_on(world::read_neighbours(&interfaces, usize::MAX))?
            .neighbours;
        WorldState {
            interfaces,
            neighbours,
            features,
            ..WorldState::default()
        }
    } else {
        WorldState::default()
    };
    if let Some(file) = &args.judge.config {
        judged.policy.read_files(false).with_context(|| {
            format!(
                "config file {}: policy {}",
                file.display(),
                judged.policy.name
            )
        })?;
    }
    if let Some((key, _)) = args
        .files
        .iter()
        .find(|(key, _)| args.settings.iter().any(|(k, _)| k == key))
    {
        bail!("config key `{key}` is given to both --set and --file");
    }
    let mut settings = args.settings.clone();
    for (key, path) in &args.files {
        let file = PolicyFile {
            key: key.clone(),
            path: PathBuf::from(path),
        };
        let text = file
            .read(false)
            .with_context(|| format!("--file {key}={path}"))?;
        settings.push((key.clone(), text));
    }
    for (key, value) in settings {
        judged.policy.config.retain(|(k, _)| *k != key);
        judged.policy.config.push((key, value));
    }
    let policy = load(&judged, &args.policy, &args.cache)?;
    let name = judged.policy.name.clone();
    match evaluate_policy(
        &policy,
        &judged.policy,
        &judged.validation,
        &world.to_wit(),
        &args.event.to_wit(),
    ) {
        Ok(rules) => {
            print!(
                "{}",
                crate::plan::table_text(
                    &args.table,
                    &[PolicyRules {
                        policy: name,
                        rules
                    }]
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        // One problem a line, as fixtures show them.
        Err(PolicyError::Invalid(invalid)) => bail!("policy {name}: {invalid}"),
        Err(e) => bail!("policy {name}: {}", crate::text::error_chain(&e)),
    }
}

pub fn test(args: TestArgs) -> Result<ExitCode> {
    let judged = judged(&args.judge, args.name.as_deref(), &args.policy)?;
    let policy = load(&judged, &args.policy, &args.cache)?;
    let judge = Judge {
        policy: judged.policy.name.clone(),
        priority_offset: judged.policy.priority_offset,
        validation: judged.validation.clone(),
    };
    println!(
        "testing {} (policy {}) against {}",
        args.policy.display(),
        judge.policy,
        args.fixtures.display()
    );
    let summary = fixtures::run(
        &policy,
        &judge,
        &args.fixtures,
        &args.only,
        args.bless,
        &mut std::io::stdout(),
    )?;
    if summary.blessed > 0 {
        println!("blessed {} fixture(s)", summary.blessed);
    }
    println!(
        "fixtures: {} passed, {} failed",
        summary.passed, summary.failed
    );
    if summary.failed > 0 {
        bail!(
            "{} of {} fixture(s) failed",
            summary.failed,
            summary.passed + summary.failed + summary.blessed
        );
    }
    Ok(ExitCode::SUCCESS)
}
