//! The contract's types as the host sees them: the Rust bindings generated
//! from the WIT package `wasmwall:policy`. Version 0.2.0 (`wit/policy.wit`,
//! where every type is documented) is the contract the runtime works in;
//! 0.1.0 (`wit/v0.1/policy.wit`, frozen) is still served, and its values
//! are converted to and from 0.2 at the sandbox's edge ([`v01`]). Pure
//! modules (validation, the world state) import the 0.2 types from here.
#![deny(missing_docs)]

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
    });
}

#[allow(missing_docs)]
mod generated_v01 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "policy",
    });
}

/// The policy's log import.
pub use generated::wasmwall::policy::log;
/// The records and variants of the contract.
pub use generated::wasmwall::policy::types as wit;
/// The world: its pre-instantiated form and the linker hook.
pub use generated::{Policy, PolicyPre};

/// The frozen 0.1.0 contract, for components built against it.
pub mod v01 {
    /// The policy's log import of 0.1.0.
    pub use super::generated_v01::wasmwall::policy::log;
    /// The records and variants of 0.1.0.
    pub use super::generated_v01::wasmwall::policy::types as wit;
    /// The 0.1.0 world.
    pub use super::generated_v01::{Policy, PolicyPre};
}

impl wit::Ruleset {
    /// A ruleset with nothing in it, to fill in.
    pub fn empty() -> wit::Ruleset {
        wit::Ruleset {
            chains: Vec::new(),
            sets: Vec::new(),
            maps: Vec::new(),
            counters: Vec::new(),
            limits: Vec::new(),
            ct_helpers: Vec::new(),
            flowtables: Vec::new(),
            sysctls: Vec::new(),
        }
    }
}
