//! Kernel adapter: reads the runtime's table back and applies a planned
//! [`Transaction`] to nftables in one atomic batch; reads and writes the
//! namespace's sysctls.
//!
//! `encode` turns operations into netlink messages the way `nft` itself
//! does, so `nft list ruleset` prints them readably; [`Netlink`] sends the
//! batch on a socket it owns and reads every acknowledgement, so a failure
//! names the operation the kernel rejected. `observe` decodes the dumps;
//! `features` finds out what optional features the kernel has.
//! [`Fake`] is the same interface in memory, for tests of pure logic.
//!
//! Beside nftables: `conntrack` reads the connection-tracking table and
//! deletes chosen entries (ctnetlink), and `route` asks the routing table
//! which interface a destination is reached through; `trace` follows the
//! kernel's trace events (`wasmwall trace`).

mod conntrack;
mod encode;
mod fake;
mod features;
mod listeners;
mod netlink;
mod observe;
mod route;
mod trace;
mod uapi;
mod wire;

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;

use crate::flows::Flow;
use crate::plan::{ObservedTable, Transaction};
use crate::world::Features;

pub use encode::parse_rule_tag;
pub use observe::counters::{Count, Counters, NamedCounter, RuleCounter, per_policy};

/// The kernel's bytes of an element's key (of its first key, for a range):
/// what nft orders a listing by.
pub(crate) fn key_bytes(key: &crate::ir::Key, element: &crate::ir::Element) -> Vec<u8> {
    encode::elements::key_bytes(key, element, encode::elements::End::First)
}

/// The kernel's bytes of the last key an element covers.
pub(crate) fn last_key_bytes(key: &crate::ir::Key, element: &crate::ir::Element) -> Vec<u8> {
    encode::elements::key_bytes(key, element, encode::elements::End::Last)
}
pub use fake::Fake;
pub use features::{Probed, active_features, detect_features, feature_names};
pub use netlink::{Monitor, Netlink};
pub use trace::{Received, TraceEvent, TraceKind, TraceSocket, TraceVerdict};

/// The narrow interface the rest of the runtime uses to reach the kernel.
pub trait Kernel {
    /// The nftables generation of the current network namespace: it changes
    /// with every committed batch, whoever sends it.
    fn generation(&mut self) -> Result<u32, KernelError>;
    /// Reads the inet table `table` (chains, rules with handles and tags,
    /// sets and elements), consistent with the generation returned.
    fn observe(&mut self, table: &str) -> Result<Observation, KernelError>;
    /// The packet and byte counters of the inet table `table`: its rules'
    /// `counter` statements and its named counters. Apart from
    /// [`Kernel::observe`]: they move with every packet and are no part of
    /// what the diff compares. Empty when the table does not exist.
    fn counters(&mut self, table: &str) -> Result<Counters, KernelError> {
        let _ = table;
        Ok(Counters::default())
    }
    /// Applies the whole transaction in ONE atomic nftables batch. With
    /// `generation`, the kernel refuses the batch ([`KernelError::Changed`])
    /// if anything changed the ruleset since that generation.
    fn apply(
        &mut self,
        tx: &Transaction,
        generation: Option<u32>,
    ) -> Result<ApplyReport, KernelError>;
    /// Reads a sysctl of the network namespace by its /proc/sys path,
    /// trimmed.
    fn read_sysctl(&mut self, path: &Path) -> io::Result<String>;
    /// Writes a sysctl of the network namespace.
    fn write_sysctl(&mut self, path: &Path, value: &str) -> io::Result<()>;
    /// The names in a /proc/sys directory of the network namespace (e.g.
    /// the interfaces under `/proc/sys/net/ipv4/conf`).
    fn list_sysctls(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        crate::sysctl::list(dir)
    }
    /// The kernel's optional features: whether it has flowtables and which
    /// conntrack helpers, found out without changing anything, and which
    /// of `interfaces` offload flows in hardware.
    fn features(&mut self, interfaces: &[String]) -> Result<Features, KernelError>;
    /// Which of `interfaces` offload flows in hardware (their
    /// `hw-tc-offload` feature is on).
    fn hardware_offload(&mut self, interfaces: &[String]) -> io::Result<Vec<String>>;

    // The defaults of the three below are a kernel that tracks no
    // connection and has no route, for test doubles that need neither.

    /// The connection-tracking table: every entry of both families and
    /// all zones, except those being deleted. Empty when the kernel has no
    /// conntrack (or no ctnetlink to read it with).
    fn flows(&mut self) -> Result<Vec<Flow>, KernelError> {
        Ok(Vec::new())
    }
    /// Deletes exactly these entries, each named by its original tuple,
    /// zone and id, so that a newer entry with the same tuple stays.
    /// Returns how many were deleted: one already gone is not an error and
    /// does not count.
    fn cut_flows(&mut self, flows: &[Flow]) -> Result<usize, KernelError> {
        let _ = flows;
        Ok(0)
    }
    /// The index of the interface the routing table sends packets for
    /// `dst` out of; None when no route reaches it. A local address gives
    /// the loopback interface.
    fn route_oif(&mut self, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        let _ = dst;
        Ok(None)
    }
    /// The name of the interface with this index in the namespace, if
    /// there is one.
    fn interface_name(&mut self, index: u32) -> Option<String> {
        let _ = index;
        None
    }
}

/// The runtime's table and the generation it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub generation: u32,
    /// None when the table does not exist.
    pub table: Option<ObservedTable>,
}

/// What one [`Kernel::apply`] sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Netlink messages in the batch, not counting its begin and end markers.
    pub messages: usize,
    /// Size of the whole batch in bytes.
    pub bytes: usize,
    /// The handle the kernel gave each added rule, in the order of the
    /// transaction's rule adds; None when they were not asked for.
    pub rule_handles: Option<Vec<u64>>,
}

/// The generation after one committed batch (the kernel skips 0).
pub fn next_generation(generation: u32) -> u32 {
    match generation.wrapping_add(1) {
        0 => 1,
        g => g,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a {socket} netlink socket")]
    Open {
        /// Which: "netfilter" or "routing".
        socket: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot configure the netlink socket ({step})")]
    Configure {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot send {bytes} bytes to the kernel")]
    Send {
        bytes: usize,
        #[source]
        source: io::Error,
    },
    #[error("cannot receive the kernel's answer")]
    Receive(#[source] io::Error),
    /// The kernel refused one object; it aborted the whole batch, so nothing
    /// of it was applied.
    #[error("the kernel rejected `{op}`: {}{}", errno.desc(), extack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Rejected {
        /// The operation, as nft-like text.
        op: String,
        /// Which operation of the transaction it is (None for a request
        /// that is not part of a transaction, or for the batch as a whole).
        index: Option<usize>,
        errno: Errno,
        /// The kernel's extended-ack message, when it gave one.
        extack: Option<String>,
    },
    #[error("no answer from the kernel for {waiting_for} within {after:?}")]
    Timeout {
        waiting_for: String,
        after: Duration,
    },
    #[error("cannot encode `{op}`: {reason}")]
    Encode {
        op: String,
        /// Which operation of the transaction it is.
        index: usize,
        reason: String,
    },
    /// Every dump of the conntrack table was interrupted by a change
    /// (NLM_F_DUMP_INTR).
    #[error("the conntrack table kept changing while it was read ({attempts} attempts)")]
    FlowsChanging { attempts: usize },
    /// A socket opened at first use would have been in another network
    /// namespace than the adapter's: the calling thread moved.
    #[error(
        "the {socket} netlink socket would open in another network namespace than the kernel adapter was made in"
    )]
    OtherNamespace { socket: &'static str },
    /// Someone else changed the ruleset between reading and writing; the
    /// batch was refused whole.
    #[error("the ruleset changed while wasmwall was applying its batch; nothing was applied")]
    Changed,
}

impl KernelError {
    /// The operation of the transaction the kernel refused (or that could
    /// not be encoded), when it is one.
    pub fn op_index(&self) -> Option<usize> {
        match self {
            KernelError::Rejected { index, .. } => *index,
            KernelError::Encode { index, .. } => Some(*index),
            _ => None,
        }
    }
}
