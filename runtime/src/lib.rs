//! wasmwall: run firewall policies written as sandboxed WebAssembly
//! components, and keep the kernel's nftables rules in line with them.
//!
//! The flow goes one way, and the modules are listed in its order; none
//! reaches back up:
//!
//! - [`world`]: the world state and the events (from files, the command
//!   line, rtnetlink), checked by [`fields`];
//! - [`sandbox`]: compiling and evaluating a policy component with no
//!   capability, under a deadline and a memory cap, through the contract's
//!   types in [`bindings`];
//! - [`validate`]: the answer checked and turned into the rule IR ([`ir`]);
//! - [`plan`]: pure, the desired table against the observed one, as a
//!   transaction of only what differs;
//! - [`flows`]: pure, which conntrack entries a change of the table
//!   concerns (a flow's first packet walked through the table before and
//!   after);
//! - [`kernel`]: the adapter that reads the table back and applies a
//!   transaction in one atomic batch (and reads and writes sysctls);
//! - [`engine`]: the policy set and the kernel kept in line with it, with
//!   the [`state`] file, the table [`snapshot`], the table as last
//!   [`applied`] and clean-up, and changes held to confirmation
//!   ([`confirm`]);
//! - [`daemon`]: `wasmwall run`, following the network and the files;
//! - [`cli`]: the subcommands, on top. Beside them: the [`config`] file,
//!   [`fixtures`], the [`lock`] and the network namespace ([`netns`]),
//!   file permissions ([`perms`]) and bounded reads of files ([`files`]),
//!   [`sysctl`] keys and [`text`] helpers.

pub mod applied;
pub mod bindings;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod daemon;
pub mod engine;
pub mod fields;
pub mod files;
pub mod fixtures;
pub mod flows;
pub mod ir;
pub mod kernel;
pub mod lock;
pub mod metrics;
pub mod netns;
pub mod perms;
pub mod plan;
pub mod sandbox;
pub mod snapshot;
pub mod state;
pub mod sysctl;
pub mod text;
pub mod trace;
pub mod validate;
pub mod why;
pub mod world;
