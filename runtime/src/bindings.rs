//! The contract's types as the host sees them: the Rust bindings generated
//! from the WIT package `wasmwall:policy` (`wit/policy.wit`, where every type
//! is documented). Pure modules (validation, the world state) import the
//! types from here; the sandbox links the generated world.
#![deny(missing_docs)]

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
    });
}

/// The policy's log import.
pub use generated::wasmwall::policy::log;
/// The records and variants of the contract.
pub use generated::wasmwall::policy::types as wit;
/// The world: its pre-instantiated form and the linker hook.
pub use generated::{Policy, PolicyPre};
