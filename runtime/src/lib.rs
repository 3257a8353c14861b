//! wasmwall: run firewall policies written as sandboxed WebAssembly
//! components, and keep the kernel's nftables rules in line with them.
//!
//! The flow goes one way: world state and an event go into each policy
//! ([`host`]), the answers are validated into the rule IR ([`validate`],
//! [`ir`]), planned into a transaction ([`plan`], pure) and applied by the
//! kernel adapter ([`kernel`]) in one atomic batch.

pub mod cache;
pub mod config;
pub mod daemon;
pub mod fixtures;
pub mod host;
pub mod ir;
pub mod kernel;
pub mod perms;
pub mod plan;
pub mod runtime;
pub mod snapshot;
pub mod state;
mod stubs;
pub mod sysctl;
pub mod validate;
pub mod world;
