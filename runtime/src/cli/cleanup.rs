//! `wasmwall cleanup`, and the clean-up `run` does when it stops: the table
//! removed and the sysctls restored from the state file, with one line that
//! says what was really done; `cleanup` also removes the trace tables of
//! traces that were killed (`wasmwall trace`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use super::resolve;
use crate::config::{self, Config};
use crate::engine::{Firewall, Policies, Target};
use crate::kernel::Netlink;
use crate::netns;
use crate::sysctl::AllowList;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The configuration file; gives the table, state directory and netns.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Act in the network namespace /run/netns/NAME.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Directory of the state file (default: from the config, else /run/wasmwall).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The table to remove (default: from the config, else "wasmwall").
    #[arg(long)]
    pub table: Option<String>,
}

pub fn cleanup(args: CleanupArgs) -> Result<ExitCode> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let netns = args
        .netns
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.netns.clone()));
    if let Some(ns) = &netns {
        netns::enter(ns)?;
    }
    let table = args
        .table
        .or_else(|| config.as_ref().map(|c| c.table.clone()))
        .unwrap_or_else(|| config::DEFAULT_TABLE.to_string());
    let state_dir = args
        .state_dir
        .or_else(|| config.as_ref().map(|c| c.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR));
    let allow = config
        .as_ref()
        .map_or_else(AllowList::default, |c| c.sysctls.clone());
    let target = resolve::target(&table, netns.as_deref(), &state_dir)?;
    // A trace killed before it could remove its rule left its table; it is
    // removed first, as it needs no lock of the runtime's table: so also
    // while a daemon runs (which then refuses the rest).
    super::trace::remove_stale(&mut Netlink::new()?, &target.table)?;
    let _lock = resolve::lock(&target)?;
    clean_up(&target, &allow)?;
    Ok(ExitCode::SUCCESS)
}

/// Rolls back a change a process that ended left waiting for confirmation
/// (`apply` and `run` do this first too), then removes the table and
/// restores the recorded sysctls; logs what it did. A record that cannot
/// be rolled back does not stop the clean-up, which restores the originals
/// anyway; it is removed with the rest.
pub fn clean_up(target: &Target, allow: &AllowList) -> Result<()> {
    let mut firewall = Firewall::new(
        Netlink::new()?,
        target.clone(),
        allow.clone(),
        Policies::none(),
    );
    if let Err(e) = firewall.roll_back_left_pending() {
        tracing::error!(error = %crate::text::error_chain(&e), "cannot roll back the change left waiting for confirmation; cleaning up anyway");
    }
    let done = firewall.cleanup()?;
    if let Err(e) = crate::confirm::record::remove(&target.state_path) {
        tracing::warn!(error = %crate::text::error_chain(&e), "cannot remove the record of a change waiting for confirmation");
    }
    let table = if done.table_removed {
        "table removed"
    } else if done.table_not_owned {
        "table left alone: it was not made by wasmwall"
    } else {
        "no table to remove"
    };
    let sysctls = if !done.had_state_file {
        format!(
            "no state file ({}), so no record of sysctls to restore",
            target.state_path.display()
        )
    } else if done.restored.is_empty() && done.failed.is_empty() {
        "no sysctl to restore".to_string()
    } else if done.restored.is_empty() {
        "no sysctl restored".to_string()
    } else {
        format!("sysctls restored: {}", done.restored.join(" "))
    };
    tracing::info!(
        table = %format!("inet {}", target.table),
        "clean-up done: {table}; {sysctls}"
    );
    if !done.failed.is_empty() {
        bail!(
            "could not restore {} (kept in {})",
            done.failed.join(", "),
            target.state_path.display()
        );
    }
    Ok(())
}
