//! The `wasmwall` command's subcommands, on top of everything else: each
//! file holds one family of subcommands, its arguments (clap only parses
//! them) and its body; [`resolve`] turns arguments and the config file into
//! what the engine needs. `main.rs` parses the command line and dispatches.
//! Errors become `anyhow` here, at the edge that prints them.

pub mod cleanup;
pub mod client;
pub mod confirm;
pub mod eval;
pub mod oneshot;
pub mod resolve;
pub mod run;
pub mod trace;
pub mod why;

use std::path::PathBuf;

use clap::Args;

use crate::sandbox::cache::{self, CacheSettings};

/// Where compiled policies are kept.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Keep compiled policies in DIR (it must be 0700 and the user's own).
    /// Default: `[cache] dir` of the config, else /var/lib/wasmwall/cache
    /// for root and $XDG_CACHE_HOME/wasmwall or ~/.cache/wasmwall for others.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile policies at every load; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl CacheArgs {
    pub fn settings(&self, default: CacheSettings) -> CacheSettings {
        if self.no_cache {
            CacheSettings::disabled()
        } else if let Some(dir) = &self.cache_dir {
            CacheSettings {
                dir: Some(dir.clone()),
                ..default
            }
        } else {
            default
        }
    }

    /// For commands run by users, without a config file.
    pub fn user_settings(&self) -> CacheSettings {
        self.settings(CacheSettings {
            dir: cache::user_dir(),
            max_bytes: cache::DEFAULT_MAX_BYTES,
        })
    }
}

/// The config a command acts by.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Act in the network namespace /run/netns/NAME (overrides `netns` in the
    /// config).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Use a config or policy file even if someone other than root (or the
    /// user running wasmwall) could have written it or a directory above it.
    /// Without this, such files are refused, as sshd's StrictModes does.
    #[arg(long)]
    pub insecure_permissions: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}
