//! `wasmwall run`: the daemon, and the clean-up when it stops. A change a
//! process that ended left waiting for confirmation is rolled back first.

use std::process::ExitCode;

use anyhow::Result;

use super::ConfigArgs;
use super::cleanup::clean_up;
use super::resolve::{self, Resolved};
use crate::daemon::{self, Stopped};
use crate::engine::{Firewall, Policies};
use crate::kernel::Netlink;

/// Exit status of a daemon stopped by SIGQUIT, which leaves its rules.
pub const QUIT_STATUS: u8 = 3;

pub fn run(args: &ConfigArgs) -> Result<ExitCode> {
    let Resolved { config, target } = resolve::load_config(args)?;
    let _lock = resolve::lock(&target)?;
    let allow = config.sysctls.clone();
    let rolled_back = Firewall::new(
        Netlink::new()?,
        target.clone(),
        allow.clone(),
        Policies::none(),
    )
    .roll_back_left_pending()?
    .is_some();
    match daemon::run(&args.config, config, target.clone(), rolled_back)? {
        Stopped::CleanUp(signal) => {
            tracing::info!(signal, "stopping; cleaning up");
            clean_up(&target, &allow)?;
            Ok(ExitCode::SUCCESS)
        }
        Stopped::Quit => {
            tracing::warn!(
                signal = "SIGQUIT",
                state_file = %target.state_path.display(),
                "stopping without clean-up: the rules and sysctls stay as they are (fail closed); `wasmwall cleanup` removes them, the next `wasmwall run` adopts them"
            );
            Ok(ExitCode::from(QUIT_STATUS))
        }
        Stopped::RolledBack => {
            tracing::error!(
                state_file = %target.state_path.display(),
                "stopped without clean-up: the start was not confirmed and was rolled back; the rules and sysctls of before stay"
            );
            Ok(ExitCode::from(crate::confirm::ROLLED_BACK_STATUS))
        }
    }
}
