//! Policy fixtures, and the runner behind `wasmwall test`: a policy author's
//! way to test a policy in any language against expected rulesets.
//!
//! A fixtures directory holds one sub-directory per fixture:
//!
//! ```text
//! fixtures/
//!   lan.json                 shared files may sit at the top (ignored)
//!   default-config/
//!     fixture.toml           the input: state, event, config
//!     expected.nft           the expected ruleset, as `wasmwall eval` prints it
//!   bad-port/
//!     fixture.toml
//!     expected.err           or the expected error
//! ```
//!
//! `fixture.toml`:
//!
//! ```toml
//! description = "what this fixture checks"   # optional, shown on failure
//! event = "interface-up=lan0"                # optional, default "startup"; as `eval --event`
//! state = "../lan.json"                      # optional: world state as JSON, relative to this directory
//! # or the state inline:
//! # [[state.interfaces]]
//! # name = "lan0"
//! # up = true
//! # addresses = ["192.168.0.9/24"]
//!
//! [config]                                   # the policy's config, as in wasmwall.toml
//! lan_interface = "lan0"
//!
//! [files]                                    # as [policy.files]: config values that are the
//! uci = "firewall.uci"                       # text of a file (relative to this directory),
//!                                            # verbatim, after the [config] pairs
//! ```
//!
//! Packets the ruleset must let through or stop, as `wasmwall why` walks
//! them (any number; checked only when the outcome is a ruleset):
//!
//! ```toml
//! [[packet]]
//! packet = "tcp 192.168.0.2:5000 -> 192.168.0.9:80 in lan0"   # as `wasmwall why` takes it
//! verdict = "accepted"                   # accepted, dropped or rejected
//! by = "port 80 to 127.0.0.1:4000"       # optional: the comment of a rule that decided
//! ct_state = "established"               # optional, default "new"
//! sysctls = { "net.ipv4.conf.lan0.route_localnet" = "0" }   # optional: values that override
//!                                        # the policy's sysctls (the kernel's defaults else)
//! ```
//!
//! The outcome is either the ruleset, as nft-like text (the policy's chains
//! in `table inet wasmwall`, then its sysctls), or an error: the policy's own
//! error (`policy returned an error: ...`), the validation report when the
//! runtime rejects the ruleset, or a trap or deadline. `expected.nft` or
//! `expected.err` holds the expected outcome; exactly one of them exists.
//! `--bless` writes the current outcome into the right one (and removes the
//! other).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::config::{PolicyConfig, describe_toml_error, policy_files, scalar_text};
use crate::engine::{Evaluate, PolicyError, evaluate_policy};
use crate::ir::PolicyRules;
use crate::text::error_chain;
use crate::validate;
use crate::world::{self, Event, WorldState};

pub const FIXTURE_FILE: &str = "fixture.toml";
pub const EXPECTED_RULESET: &str = "expected.nft";
pub const EXPECTED_ERROR: &str = "expected.err";
/// The table the rulesets are shown in.
const TABLE: &str = "wasmwall";

#[derive(Debug, Error)]
pub enum FixtureError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(path: &Path, message: impl Into<String>) -> FixtureError {
    FixtureError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, FixtureError> {
    Ok(crate::files::read_text(path, crate::files::Kind::Fixture)?)
}

/// `fixture.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    description: Option<String>,
    event: Option<String>,
    state: Option<toml::Value>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    files: toml::Table,
    #[serde(default)]
    packet: Vec<RawPacket>,
}

/// One `[[packet]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPacket {
    packet: String,
    verdict: String,
    by: Option<String>,
    ct_state: Option<String>,
    #[serde(default)]
    sysctls: std::collections::BTreeMap<String, String>,
}

/// A packet a fixture's ruleset must give a verdict to.
#[derive(Debug, Clone)]
pub struct PacketCheck {
    pub asked: crate::why::Asked,
    pub verdict: crate::why::Verdict,
    /// The comment of a rule that decided.
    pub by: Option<String>,
    pub ct_state: u32,
    pub sysctls: Vec<(String, String)>,
}

/// One fixture: the input of one evaluation and what it should give.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The directory's name.
    pub name: String,
    pub dir: PathBuf,
    pub description: Option<String>,
    pub state: WorldState,
    pub event: Event,
    /// The `[config]` pairs, then those of `[files]` with each file's text.
    pub config: Vec<(String, String)>,
    /// None when neither expectation file exists yet.
    pub expected: Option<Outcome>,
    /// The `[[packet]]` checks.
    pub packets: Vec<PacketCheck>,
}

/// What an evaluation gave, or should give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The ruleset as nft-like text.
    Ruleset(String),
    /// The error, as text.
    Error(String),
}

impl Outcome {
    fn file_name(&self) -> &'static str {
        match self {
            Outcome::Ruleset(_) => EXPECTED_RULESET,
            Outcome::Error(_) => EXPECTED_ERROR,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Outcome::Ruleset(t) | Outcome::Error(t) => t,
        }
    }
}

/// The fixture directories in `dir`, sorted by name. An entry that is not a
/// directory is ignored; a directory without `fixture.toml` is an error.
pub fn fixture_dirs(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let read_dir = |source| FixtureError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        return Err(invalid(
            dir,
            format!("no fixtures (each fixture is a directory holding a {FIXTURE_FILE})"),
        ));
    }
    Ok(dirs)
}

/// Reads the fixture in `dir`.
pub fn load(dir: &Path) -> Result<Fixture, FixtureError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let toml_path = dir.join(FIXTURE_FILE);
    if !toml_path.is_file() {
        return Err(invalid(
            dir,
            format!("not a fixture: it has no {FIXTURE_FILE}"),
        ));
    }
    let text = read(&toml_path)?;
    let raw: RawFixture =
        toml::from_str(&text).map_err(|e| invalid(&toml_path, describe_toml_error(&text, &e)))?;

    let event = match &raw.event {
        None => Event::Startup,
        Some(e) => e
            .parse()
            .map_err(|e: world::EventParseError| invalid(&toml_path, format!("`event`: {e}")))?,
    };
    let state = match raw.state {
        None => WorldState::default(),
        Some(toml::Value::String(file)) => world::load_json(&dir.join(&file))
            .map_err(|e| invalid(&toml_path, format!("`state`: {}", error_chain(&e))))?,
        Some(value @ toml::Value::Table(_)) => {
            let mut state: WorldState = value
                .try_into()
                .map_err(|e: toml::de::Error| invalid(&toml_path, format!("`state`: {e}")))?;
            state.normalize();
            state
        }
        Some(_) => {
            return Err(invalid(
                &toml_path,
                "`state` must be a file name (a JSON world state) or a table",
            ));
        }
    };
    let mut config = Vec::new();
    for (key, value) in raw.config {
        let text = scalar_text(&value).ok_or_else(|| {
            invalid(
                &toml_path,
                format!("config key `{key}` must be a string, number, boolean or a list of those"),
            )
        })?;
        config.push((key, text));
    }
    for file in policy_files(raw.files, &config, dir, ("[files]", "[config]"))
        .map_err(|e| invalid(&toml_path, e))?
    {
        let text = file.read(false).map_err(|e| {
            invalid(
                &toml_path,
                format!("`[files]` key `{}`: {}", file.key, error_chain(&e)),
            )
        })?;
        config.push((file.key, text));
    }

    let mut packets = Vec::new();
    for (n, raw) in raw.packet.into_iter().enumerate() {
        let at = |m: String| invalid(&toml_path, format!("[[packet]] {}: {m}", n + 1));
        let words: Vec<String> = raw.packet.split_whitespace().map(String::from).collect();
        let asked = crate::why::parse(&words).map_err(|e| at(e.to_string()))?;
        let verdict = match raw.verdict.as_str() {
            "accepted" => crate::why::Verdict::Accepted,
            "dropped" => crate::why::Verdict::Dropped,
            "rejected" => crate::why::Verdict::Rejected,
            other => {
                return Err(at(format!(
                    "`verdict` must be accepted, dropped or rejected, not {other:?}"
                )));
            }
        };
        let ct_state = match &raw.ct_state {
            None => crate::ir::CtStates::NEW,
            Some(s) => crate::why::parse_ct_state(s).map_err(|e| at(format!("`ct_state`: {e}")))?,
        };
        packets.push(PacketCheck {
            asked,
            verdict,
            by: raw.by,
            ct_state,
            sysctls: raw.sysctls.into_iter().collect(),
        });
    }

    let ruleset_path = dir.join(EXPECTED_RULESET);
    let error_path = dir.join(EXPECTED_ERROR);
    let expected = match (ruleset_path.exists(), error_path.exists()) {
        (true, true) => {
            return Err(invalid(
                dir,
                format!("has both {EXPECTED_RULESET} and {EXPECTED_ERROR}; keep one"),
            ));
        }
        (true, false) => Some(Outcome::Ruleset(read(&ruleset_path)?)),
        (false, true) => Some(Outcome::Error(read(&error_path)?)),
        (false, false) => None,
    };

    Ok(Fixture {
        name,
        dir: dir.to_path_buf(),
        description: raw.description,
        state,
        event,
        config,
        expected,
        packets,
    })
}

/// How `wasmwall test` judges a policy: the name it runs under (the prefix
/// of its chains), its priority offset and the validation limits, the same
/// as `wasmwall run` would with a config, or that config's defaults.
#[derive(Debug, Clone)]
pub struct Judge {
    pub policy: String,
    pub priority_offset: i32,
    pub validation: validate::Options,
}

impl Judge {
    /// The rules of a config that says nothing but the policy's name.
    pub fn defaults(policy: &str) -> Judge {
        Judge {
            policy: policy.to_string(),
            priority_offset: 0,
            validation: validate::Options::default(),
        }
    }
}

/// Evaluates `policy` on the fixture's input and judges the answer as the
/// runtime does before applying it ([`evaluate_policy`]).
pub fn evaluate(policy: &dyn Evaluate, judge: &Judge, fixture: &Fixture) -> Outcome {
    outcome(judge, answer(policy, judge, fixture))
}

/// The policy's answer to the fixture, judged.
fn answer(
    policy: &dyn Evaluate,
    judge: &Judge,
    fixture: &Fixture,
) -> Result<crate::ir::Ruleset, PolicyError> {
    let config = PolicyConfig {
        name: judge.policy.clone(),
        path: PathBuf::new(),
        priority_offset: judge.priority_offset,
        config: fixture.config.clone(),
        files: Vec::new(),
    };
    evaluate_policy(
        policy,
        &config,
        &judge.validation,
        &fixture.state.to_wit(),
        &fixture.event.to_wit(),
    )
}

/// The answer as the outcome fixtures record.
fn outcome(judge: &Judge, answer: Result<crate::ir::Ruleset, PolicyError>) -> Outcome {
    match answer {
        Ok(rules) => Outcome::Ruleset(crate::plan::table_text(
            TABLE,
            &[PolicyRules {
                policy: judge.policy.clone(),
                rules,
            }],
        )),
        // The policy's own words, or the sandbox's, as `eval` shows them.
        Err(PolicyError::Evaluate(e)) => Outcome::Error(error_chain(&e)),
        // One problem a line.
        Err(PolicyError::Invalid(invalid)) => Outcome::Error(invalid.to_string()),
        Err(other) => Outcome::Error(error_chain(&other)),
    }
}

/// The `[[packet]]` checks of `fixture` the ruleset `rules` fails, each
/// as a message: what was expected, what `why` found, and its report.
pub fn check_packets(judge: &Judge, fixture: &Fixture, rules: &crate::ir::Ruleset) -> Vec<String> {
    let table = crate::plan::DesiredTable::from_policies(&[PolicyRules {
        policy: judge.policy.clone(),
        rules: rules.clone(),
    }]);
    let mut failures = Vec::new();
    for check in &fixture.packets {
        let mut sysctls = crate::why::Sysctls::default();
        for s in &rules.sysctls {
            sysctls.from_policy(&judge.policy, &s.key, &s.value);
        }
        for (key, value) in &check.sysctls {
            sysctls.given(key, value);
        }
        let mut network = crate::why::StateNetwork::new(&fixture.state.interfaces, None, &sysctls);
        // Time matches see 1970-01-01 00:00 UTC: fixtures do not depend on
        // when they run.
        let report = crate::why::explain(&table, &check.asked, check.ct_state, &mut network, 0);
        let verdict_ok = report.verdict == check.verdict;
        let by_ok = check
            .by
            .as_ref()
            .is_none_or(|c| report.deciding_comments.iter().any(|d| d == c));
        if verdict_ok && by_ok {
            continue;
        }
        let word = |v: &crate::why::Verdict| {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        };
        let mut text = format!(
            "packet `{}`: expected {}",
            check.asked,
            word(&check.verdict)
        );
        if let Some(c) = &check.by {
            let _ = write!(text, " by the rule \"{c}\"");
        }
        let _ = writeln!(text, ", got {} by {}:", word(&report.verdict), report.by);
        for l in report.text().lines() {
            let _ = writeln!(text, "  {l}");
        }
        failures.push(text);
    }
    failures
}

/// Whether `actual` is what `expected` says; a missing final newline in the
/// file does not matter.
pub fn matches(expected: &Outcome, actual: &Outcome) -> bool {
    std::mem::discriminant(expected) == std::mem::discriminant(actual)
        && expected.text().trim_end_matches('\n') == actual.text().trim_end_matches('\n')
}

/// Writes `outcome` as the fixture's expectation; removes the other file.
pub fn bless(fixture: &Fixture, outcome: &Outcome) -> Result<(), FixtureError> {
    let path = fixture.dir.join(outcome.file_name());
    let mut text = outcome.text().trim_end_matches('\n').to_string();
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| FixtureError::Write {
        path: path.display().to_string(),
        source,
    })?;
    let other = match outcome {
        Outcome::Ruleset(_) => EXPECTED_ERROR,
        Outcome::Error(_) => EXPECTED_RULESET,
    };
    let other = fixture.dir.join(other);
    match std::fs::remove_file(&other) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(FixtureError::Write {
            path: other.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// A readable difference between the expected and the actual outcome: a
/// unified diff of the text, and a note when one is an error and the other a
/// ruleset.
pub fn describe_mismatch(fixture: &Fixture, expected: &Outcome, actual: &Outcome) -> String {
    let mut out = String::new();
    if std::mem::discriminant(expected) != std::mem::discriminant(actual) {
        let kind = |o: &Outcome| match o {
            Outcome::Ruleset(_) => "a ruleset",
            Outcome::Error(_) => "an error",
        };
        let _ = writeln!(out, "expected {}, got {}", kind(expected), kind(actual));
    }
    let expected_text = with_final_newline(expected.text());
    let actual_text = with_final_newline(actual.text());
    let expected_path = fixture.dir.join(expected.file_name());
    let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
    let _ = write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("expected ({})", expected_path.display()), "actual")
    );
    out
}

fn with_final_newline(text: &str) -> String {
    let mut text = text.trim_end_matches('\n').to_string();
    text.push('\n');
    text
}

/// What `wasmwall test` did.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub blessed: usize,
}

/// Runs every fixture in `dir` (or those named in `only`) against `policy`
/// judged by `judge`,
/// writing a line per fixture and a diff per mismatch to `out`. With `bless`
/// a mismatch or missing expectation is written instead of failing.
pub fn run(
    policy: &dyn Evaluate,
    judge: &Judge,
    dir: &Path,
    only: &[String],
    bless_mismatches: bool,
    out: &mut dyn std::io::Write,
) -> Result<Summary, FixtureError> {
    let mut dirs = fixture_dirs(dir)?;
    if !only.is_empty() {
        for wanted in only {
            if !dirs.iter().any(|d| d.file_name() == Some(wanted.as_ref())) {
                return Err(invalid(dir, format!("has no fixture {wanted:?}")));
            }
        }
        dirs.retain(|d| only.iter().any(|w| d.file_name() == Some(w.as_ref())));
    }
    let write = |out: &mut dyn std::io::Write, text: String| {
        // A closed stdout (e.g. `| head`) must not hide the exit status.
        let _ = out.write_all(text.as_bytes());
    };
    let mut summary = Summary::default();
    for fixture_dir in &dirs {
        let fixture = match load(fixture_dir) {
            Ok(f) => f,
            Err(e) => {
                let shown = fixture_dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                write(out, format!("FAIL  {shown}\n      {}\n", error_chain(&e)));
                summary.failed += 1;
                continue;
            }
        };
        let answer = answer(policy, judge, &fixture);
        let packet_failures = match &answer {
            Ok(rules) => check_packets(judge, &fixture, rules),
            Err(_) => Vec::new(),
        };
        let actual = outcome(judge, answer);
        match &fixture.expected {
            Some(expected) if matches(expected, &actual) && !packet_failures.is_empty() => {
                let mut text = format!("FAIL  {}\n", fixture.name);
                if let Some(d) = &fixture.description {
                    let _ = writeln!(text, "      ({d})");
                }
                for f in &packet_failures {
                    text.push_str(&indent(f));
                }
                write(out, text);
                summary.failed += 1;
            }
            Some(expected) if matches(expected, &actual) => {
                write(out, format!("ok    {}\n", fixture.name));
                summary.passed += 1;
            }
            _ if bless_mismatches => {
                bless(&fixture, &actual)?;
                write(
                    out,
                    format!(
                        "bless {} (wrote {})\n",
                        fixture.name,
                        fixture.dir.join(actual.file_name()).display()
                    ),
                );
                summary.blessed += 1;
            }
            None => {
                write(
                    out,
                    format!(
                        "FAIL  {}\n      no {EXPECTED_RULESET} or {EXPECTED_ERROR} in {}; \
                         run with --bless to record the current outcome:\n{}",
                        fixture.name,
                        fixture.dir.display(),
                        indent(actual.text())
                    ),
                );
                summary.failed += 1;
            }
            Some(expected) => {
                let mut text = format!("FAIL  {}\n", fixture.name);
                if let Some(d) = &fixture.description {
                    let _ = writeln!(text, "      ({d})");
                }
                text.push_str(&indent(&describe_mismatch(&fixture, expected, &actual)));
                write(out, text);
                summary.failed += 1;
            }
        }
    }
    Ok(summary)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn loads_inline_state_event_and_config_in_order() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("seed");
        write(
            &dir,
            FIXTURE_FILE,
            "description = \"d\"\nevent = \"interface-up=lan0\"\n\
             [[state.interfaces]]\nname = \"wan0\"\n[[state.interfaces]]\nname = \"lan0\"\nup = true\n\
             [config]\nz = \"1\"\nlan_interface = [\"a\", \"b\"]\nport = 80\n",
        );
        write(&dir, EXPECTED_RULESET, "table inet wasmwall {\n}\n");
        let f = load(&dir).unwrap();
        assert_eq!(f.name, "seed");
        assert_eq!(f.event, Event::InterfaceUp("lan0".into()));
        assert_eq!(f.state.interfaces[0].name, "lan0", "sorted by name");
        assert_eq!(
            f.config,
            [
                ("z".to_string(), "1".to_string()),
                ("lan_interface".into(), "a,b".into()),
                ("port".into(), "80".into())
            ]
        );
        assert_eq!(
            f.expected,
            Some(Outcome::Ruleset("table inet wasmwall {\n}\n".into()))
        );
    }

    #[test]
    fn files_follow_the_config_verbatim_and_are_relative_to_the_fixture() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "network", "config interface 'lan'\n");
        let dir = root.path().join("uci");
        write(&dir, "firewall", "config zone\n\toption name 'lan'\n\n");
        write(
            &dir,
            FIXTURE_FILE,
            "[files]\nuci = \"firewall\"\nnetwork = \"../network\"\n[config]\nzones_from = \"network\"\n",
        );
        assert_eq!(
            load(&dir).unwrap().config,
            [
                ("zones_from".to_string(), "network".to_string()),
                ("uci".into(), "config zone\n\toption name 'lan'\n\n".into()),
                ("network".into(), "config interface 'lan'\n".into()),
            ]
        );
    }

    #[test]
    fn a_file_that_cannot_be_given_names_the_fixture_and_the_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("f");
        let fixture = dir.join(FIXTURE_FILE).display().to_string();
        let missing = dir.join("missing").display().to_string();
        let binary = dir.join("binary").display().to_string();
        write(&dir, "binary", "");
        std::fs::write(&binary, b"\xff").unwrap();
        for (text, expected) in [
            (
                "[files]\nuci = \"missing\"\n",
                format!(
                    "{fixture}: `[files]` key `uci`: cannot read policy input file {missing}: No such file or directory (os error 2)"
                ),
            ),
            (
                "[files]\nuci = \"binary\"\n",
                format!(
                    "{fixture}: `[files]` key `uci`: policy input file {binary} is not UTF-8 text"
                ),
            ),
            (
                "[files]\nuci = 1\n",
                format!("{fixture}: `[files]` key `uci` must be a string (the path of a file)"),
            ),
            (
                "[config]\nuci = 1\n[files]\nuci = \"binary\"\n",
                format!(
                    "{fixture}: `[files]` key `uci` is also a key of `[config]`: a policy gets each key once"
                ),
            ),
        ] {
            write(&dir, FIXTURE_FILE, text);
            assert_eq!(error_chain(&load(&dir).unwrap_err()), expected, "{text}");
        }
    }

    #[test]
    fn state_file_is_relative_to_the_fixture() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "lan.json",
            r#"{"interfaces":[{"name":"lan0","up":true}]}"#,
        );
        let dir = root.path().join("a");
        write(&dir, FIXTURE_FILE, "state = \"../lan.json\"\n");
        assert_eq!(load(&dir).unwrap().state.interfaces[0].name, "lan0");
    }

    #[test]
    fn invalid_fixtures_name_the_file_and_problem() {
        let root = tempfile::tempdir().unwrap();
        let cases = [
            ("a", "evnt = \"startup\"\n", "evnt"),
            ("b", "event = \"reboot\"\n", "unknown event kind"),
            ("c", "state = \"missing.json\"\n", "missing.json"),
            ("d", "[state]\ninterfaces = [{ nme = \"x\" }]\n", "nme"),
            ("e", "[config]\nx = { y = 1 }\n", "config key `x`"),
            ("f", "event = [\n", "line 1"),
            ("g", "state = 5\n", "`state` must be"),
        ];
        for (name, text, needle) in cases {
            let dir = root.path().join(name);
            write(&dir, FIXTURE_FILE, text);
            let err = error_chain(&load(&dir).unwrap_err());
            assert!(
                err.contains(needle) && err.contains(&dir.display().to_string()),
                "{name}: {err}"
            );
        }
        let dir = root.path().join("both");
        write(&dir, FIXTURE_FILE, "");
        write(&dir, EXPECTED_RULESET, "");
        write(&dir, EXPECTED_ERROR, "");
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("keep one"), "{err}");
        let dir = root.path().join("empty");
        std::fs::create_dir_all(&dir).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("has no fixture.toml"), "{err}");
    }

    #[test]
    fn packets_are_checked_against_the_ruleset_with_a_clear_mismatch() {
        use crate::ir::{
            Action, BaseChain, Chain, ChainPolicy, ChainType, Dir, Hook, Match, Rule, Ruleset,
            Transport,
        };
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ssh");
        write(
            &dir,
            FIXTURE_FILE,
            "[[state.interfaces]]\nname = \"lan0\"\nup = true\naddresses = [\"192.168.0.9/24\"]\n\
             [[packet]]\npacket = \"tcp 192.168.0.2 -> 192.168.0.9:22 in lan0\"\nverdict = \"accepted\"\nby = \"ssh\"\n\
             [[packet]]\npacket = \"tcp 192.168.0.2 -> 192.168.0.9:23 in lan0\"\nverdict = \"accepted\"\n\
             [[packet]]\npacket = \"tcp 192.168.0.2 -> 192.168.0.9:22 in lan0\"\nverdict = \"accepted\"\nby = \"web\"\n\
             [[packet]]\npacket = \"tcp 192.168.0.2 -> 192.168.0.9:22 in lan0\"\nverdict = \"accepted\"\nct_state = \"established\"\n",
        );
        let fixture = load(&dir).unwrap();
        assert_eq!(fixture.packets.len(), 4);
        let rules = Ruleset {
            chains: vec![Chain {
                name: "input".into(),
                base: Some(BaseChain {
                    hook: Hook::Input,
                    chain_type: ChainType::Filter,
                    priority: 0,
                    policy: ChainPolicy::Drop,
                }),
                rules: vec![Rule {
                    matches: vec![Match::Port {
                        dir: Dir::Destination,
                        proto: Transport::Tcp,
                        first: 22,
                        last: 22,
                        negate: false,
                    }],
                    statements: Vec::new(),
                    action: Action::Accept,
                    comment: Some("ssh".into()),
                    cut_flows: false,
                }],
            }],
            ..Ruleset::default()
        };
        let failures = check_packets(&Judge::defaults("p"), &fixture, &rules);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].starts_with(
                "packet `tcp 192.168.0.2:50000 -> 192.168.0.9:23 in lan0`: expected accepted, got dropped by the policy (drop) of chain p/input:"
            ),
            "{}",
            failures[0]
        );
        assert!(
            failures[1].contains(
                "expected accepted by the rule \"web\", got accepted by rule 1 of p/input (\"ssh\")"
            ),
            "{}",
            failures[1]
        );
        // Bad entries name the entry and the problem.
        for (name, text, needle) in [
            (
                "v",
                "[[packet]]\npacket = \"tcp 1.2.3.4 -> 1.2.3.5:80\"\nverdict = \"maybe\"\n",
                "[[packet]] 1: `verdict` must be",
            ),
            (
                "p",
                "[[packet]]\npacket = \"tcp 1.2.3.4 -> 1.2.3.5\"\nverdict = \"dropped\"\n",
                "needs a destination port",
            ),
            (
                "c",
                "[[packet]]\npacket = \"tcp 1.2.3.4 -> 1.2.3.5:80\"\nverdict = \"dropped\"\nct_state = \"old\"\n",
                "unknown ct state",
            ),
        ] {
            let dir = root.path().join(name);
            write(&dir, FIXTURE_FILE, text);
            let err = error_chain(&load(&dir).unwrap_err());
            assert!(err.contains(needle), "{name}: {err}");
        }
    }

    #[test]
    fn matching_ignores_the_final_newline_but_not_the_kind() {
        let r = |t: &str| Outcome::Ruleset(t.into());
        assert!(matches(&r("a\n"), &r("a")));
        assert!(!matches(&r("a\n"), &r("b")));
        assert!(!matches(&Outcome::Error("a".into()), &r("a")));
    }

    #[test]
    fn mismatch_is_a_unified_diff() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("f");
        write(&dir, FIXTURE_FILE, "");
        let fixture = load(&dir).unwrap();
        let text = describe_mismatch(
            &fixture,
            &Outcome::Ruleset("one\ntwo\nthree\n".into()),
            &Outcome::Ruleset("one\n2\nthree\n".into()),
        );
        assert!(text.contains("-two\n+2\n"), "{text}");
        assert!(text.contains("expected.nft"), "{text}");
        let text = describe_mismatch(
            &fixture,
            &Outcome::Ruleset("x".into()),
            &Outcome::Error("policy returned an error: no".into()),
        );
        assert!(
            text.starts_with("expected a ruleset, got an error\n"),
            "{text}"
        );
    }

    #[test]
    fn bless_writes_one_expectation_and_removes_the_other() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("f");
        write(&dir, FIXTURE_FILE, "");
        write(&dir, EXPECTED_RULESET, "old");
        let fixture = load(&dir).unwrap();
        bless(&fixture, &Outcome::Error("boom".into())).unwrap();
        assert!(!dir.join(EXPECTED_RULESET).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join(EXPECTED_ERROR)).unwrap(),
            "boom\n"
        );
    }
}
