//! `wasmwall run`: the daemon, and the clean-up when it stops.

use std::process::ExitCode;

use anyhow::Result;

use super::ConfigArgs;
use super::cleanup::clean_up;
use super::resolve::{self, Resolved};
use crate::daemon::{self, Stopped};

/// Exit status of a daemon stopped by SIGQUIT, which leaves its rules.
pub const QUIT_STATUS: u8 = 3;

pub fn run(args: &ConfigArgs) -> Result<ExitCode> {
    let Resolved { config, target } = resolve::load_config(args)?;
    let _lock = resolve::lock(&target)?;
    let allow = config.sysctls.clone();
    match daemon::run(&args.config, config, target.clone())? {
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
    }
}
