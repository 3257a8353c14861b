//! wasmwall: run firewall policies written as sandboxed WebAssembly
//! components, and keep the kernel's nftables rules in line with them.

pub mod bindings;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod fields;
pub mod fixtures;
pub mod ir;
pub mod kernel;
pub mod lock;
pub mod netns;
pub mod perms;
pub mod plan;
pub mod sandbox;
pub mod snapshot;
pub mod state;
pub mod sysctl;
pub mod text;
pub mod validate;
pub mod world;
