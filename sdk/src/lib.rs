//! Write [wasmwall](https://example.invalid/wasmwall) firewall policies in Rust.
//!
//! A policy is a pure function from the network state (interfaces, addresses,
//! DHCP and DHCPv6 leases, neighbours), the triggering [`Event`] and its own [`Config`] to the
//! complete [`Ruleset`] it wants. The runtime diffs that against the kernel and
//! applies only the difference.
//!
//! ```no_run
//! use wasmwall_sdk::{Chain, ChainPolicy, Config, Event, Hook, Policy, Rule, Ruleset, WorldState};
//!
//! struct AllowSsh;
//!
//! impl Policy for AllowSsh {
//!     fn evaluate(_state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
//!         let lan = config.get_or("lan", "lan0");
//!         let input = Chain::filter("input", Hook::Input, 0)
//!             .policy(ChainPolicy::Drop)
//!             .rule(Rule::new().ct_state_established_related().accept())
//!             .rule(Rule::new().iifname(lan).tcp_dport(22).counter().accept());
//!         Ok(Ruleset::new().chain(input))
//!     }
//! }
//!
//! wasmwall_sdk::export_policy!(AllowSsh);
//! ```
//!
//! A rule is finished only by its verdict (`accept`, `drop`, `jump`, `dnat`,
//! `vmap`, ..., or `continue_` for a rule that only counts, logs or marks):
//! before that it is a [`RuleBuilder`], which a [`Chain`] does not take.
//! Its statements (counter, log, marks, DSCP, MSS clamping, offload, ...)
//! run in the order they are written, before the verdict.
//!
//! The vocabulary is that of the contract `wasmwall:policy@0.2.0`, typed:
//! ICMP types are [`IcmpType`]s, rates are [`Rate`]s with their unit, TCP
//! flags a [`TcpFlags`] set, times of day [`TimeOfDay`]s; the generic tests,
//! sets and maps compare [`Field`]s with [`Value`]s. What the kernel can do
//! beyond the basics is in [`WorldState::features`]: a policy offers a
//! flowtable or a conntrack helper only where it exists.
//!
//! Hosts are best named by who they are: a [`HostId`] (a MAC, a DUID or a
//! host name) gives, through [`WorldState::host`] or a [`Hosts`] index,
//! the host's current addresses of both families from the leases, the
//! DHCPv6 leases and the neighbour table, only those inside a prefix the
//! router has now. Put them in a named set, and a new address or a moved
//! prefix changes elements, never a rule; or match by interface ID
//! ([`RuleBuilder::ip6_daddr_interface_id`], [`eui64_interface_id`]),
//! which the prefix does not touch at all.
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the resulting
//! `.wasm` file is a component the runtime loads.
//!
//! The types here are the SDK's own, not the generated bindings of the WIT
//! contract: the enums are `#[non_exhaustive]` and the structs grow without
//! breaking a policy, so a later contract can add to them.

#![deny(missing_docs)]

// The generated code refers to this crate by name, also from inside it.
extern crate self as wasmwall_sdk;

mod action;
mod config;
mod export;
mod hosts;
mod interface_id;
mod logging;
mod macros;
mod objects;
mod packet;
mod rate;
mod rule;
mod ruleset;
mod statement;
mod time;
mod world;

/// The generated bindings of the WIT world; not part of the SDK's API.
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "wasmwall_sdk::wit",
        runtime_path: "wasmwall_sdk::__wit_bindgen_rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

pub use action::{
    IcmpReject, Icmpv6Reject, IcmpxReject, MapData, MapElement, MapLookup, MapSource, MapVerdict,
    NatFlags, NatMap, NatTarget, PortRange, RejectWith, Verdict,
};
pub use config::Config;
#[doc(hidden)]
pub use export::__Export;
pub use hosts::{AddressSource, HostAddress, HostId, HostIdError, Hosts};
pub use interface_id::{INTERFACE_ID_MASK, eui64_interface_id, interface_id};
pub use logging::{Level, log};
pub use objects::{CtHelper, Flowtable, NamedCounter, NamedLimit, NamedMap, NamedSet, SetElements};
pub use packet::{
    CtState, CtStatus, Dscp, FibCheck, Field, IcmpType, Icmpv6Type, IpFamily, KeyType, L4Protocol,
    TcpFlags, Transport, Value,
};
pub use rate::{Rate, RateLimit, TimeUnit};
pub use rule::{Match, Matcher, Rule, RuleBuilder};
pub use ruleset::{
    BaseChain, Chain, ChainPolicy, ChainType, Hook, Priority, PriorityName, Ruleset, Sysctl,
};
pub use statement::{Log, LogLevel, MarkUpdate, MssClamp, Statement};
pub use time::{Date, TimeError, TimeOfDay, Weekday};
pub use world::{
    AddressChange, Dhcpv6Lease, Event, KernelFeatures, Lease, Neighbour, NeighbourState,
    NetworkInterface, WorldState,
};

/// A firewall policy. Implement [`Policy::evaluate`] and register the type
/// with [`export_policy!`].
pub trait Policy {
    /// Compute the complete desired ruleset from the current state. Called on
    /// every event; must not depend on anything but its arguments. An `Err`
    /// keeps the policy's last good rules in the kernel, and the runtime logs
    /// the message.
    fn evaluate(state: &WorldState, event: &Event, config: &Config) -> Result<Ruleset, String>;
}

/// Registers a [`Policy`] implementation as the component's export.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        type __WasmwallExportedPolicy = $crate::__Export<$policy>;
        $crate::wit::__export_policy_world!(__WasmwallExportedPolicy with_types_in $crate::wit);
    };
}
