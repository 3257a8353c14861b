//! The table as wasmwall last applied it, every rule and element of it,
//! kept beside the state file (`x.json` -> `x.applied`): what a rollback
//! puts back (see `confirm`), and what other code that needs the rules live
//! before a change reads ([`load`]). The snapshot beside it cannot serve:
//! it holds what the kernel lists of each rule (its tag), not the rule.
//!
//! Written after every apply that changed the desired table, atomically and
//! root-only as the state file is; removed at clean-up. A policy whose
//! rules were kept (its evaluation failed) is recorded with the rules it
//! kept, taken from the previous record
//! ([`DesiredTable::with_kept_resolved`]), so that the record always says
//! what the kernel holds.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::files::{self, FileError, Kind, RecordError};
use crate::plan::DesiredTable;

const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum AppliedError {
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] FileError),
    #[error("{path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    table: &'a str,
    desired: &'a DesiredTable,
}

#[derive(Deserialize)]
struct Read {
    version: u32,
    table: String,
    desired: DesiredTable,
}

/// `x.json` -> `x.applied`.
pub fn path_beside(state_path: &Path) -> PathBuf {
    state_path.with_extension("applied")
}

/// Records `desired` as the table `table` holds now (atomically,
/// root-only). Does nothing before the state directory exists (it is made
/// with the state file, before the first kernel write).
pub fn save(state_path: &Path, table: &str, desired: &DesiredTable) -> Result<(), AppliedError> {
    let path = path_beside(state_path);
    if !path.parent().is_some_and(Path::is_dir) {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&Written {
        version: VERSION,
        table,
        desired,
    })
    .expect("a desired table serializes");
    crate::state::write_private(&path, &bytes).map_err(|source| AppliedError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The table last applied to `table`, if it was recorded; `Ok(None)`
/// without a record, or with one of another table.
pub fn load(state_path: &Path, table: &str) -> Result<Option<DesiredTable>, AppliedError> {
    let path = path_beside(state_path);
    let read = files::read_record(&path, Kind::Applied, VERSION, |r: &Read| r.version).map_err(
        |e| match e {
            RecordError::Read(e) => AppliedError::Read(e),
            RecordError::Corrupt(message) => AppliedError::Corrupt {
                path: path.display().to_string(),
                message,
            },
        },
    )?;
    let Some(read) = read else {
        return Ok(None);
    };
    Ok((read.table == table).then_some(read.desired))
}

/// Removes the record and a half-written one (no error if absent).
pub fn remove(state_path: &Path) {
    if let Err((path, e)) = crate::state::remove_private(&path_beside(state_path)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove the record of the applied table");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Action, BaseChain, ChainPolicy, ChainType, Hook, Rule};
    use crate::plan::{DesiredChain, DesiredRule, KernelName, RuleTag};

    fn chain(policy: &str, name: &str, comment: &str) -> DesiredChain {
        DesiredChain {
            name: KernelName::new(policy, name),
            base: Some(BaseChain {
                chain_type: ChainType::Filter,
                hook: Hook::Input,
                priority: 0,
                policy: ChainPolicy::Accept,
            }),
            rules: vec![DesiredRule {
                rule: Rule {
                    matches: Vec::new(),
                    statements: Vec::new(),
                    action: Action::Accept,
                    comment: Some(comment.into()),
                    cut_flows: false,
                },
                tag: RuleTag {
                    policy: policy.into(),
                    hash: comment.into(),
                },
            }],
        }
    }

    #[test]
    fn a_desired_table_round_trips_and_only_for_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("host.wasmwall.json");
        let desired = DesiredTable {
            chains: vec![chain("a", "input", "one")],
            ..DesiredTable::default()
        };
        assert!(load(&state, "wasmwall").unwrap().is_none());
        save(&state, "wasmwall", &desired).unwrap();
        assert_eq!(load(&state, "wasmwall").unwrap(), Some(desired));
        assert_eq!(load(&state, "other").unwrap(), None);
        std::fs::write(path_beside(&state), b"{ torn").unwrap();
        let err = load(&state, "wasmwall").unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains(".applied"), "{err}");
        remove(&state);
        assert!(!path_beside(&state).exists());
    }

    #[test]
    fn a_kept_policy_is_recorded_with_the_rules_it_kept() {
        let last = DesiredTable {
            chains: vec![chain("a", "input", "a old"), chain("b", "input", "b old")],
            ..DesiredTable::default()
        };
        let now = DesiredTable {
            chains: vec![chain("a", "input", "a new")],
            kept: vec!["b".into(), "c".into()],
            ..DesiredTable::default()
        };
        let resolved = now.with_kept_resolved(Some(&last));
        assert_eq!(
            resolved.chains,
            [chain("a", "input", "a new"), chain("b", "input", "b old")]
        );
        assert_eq!(resolved.kept, ["c"], "c: not known before, stays kept");
        assert_eq!(now.with_kept_resolved(None), now);
    }
}
