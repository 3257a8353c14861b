//! Kernel adapter: applies a planned [`Transaction`] to nftables in one
//! atomic batch, and answers the few questions the planner asks.
//!
//! `encode` turns operations into netlink messages the way `nft` itself
//! does, so `nft list ruleset` prints them readably; [`Netlink`] sends the
//! batch on a socket it owns and reads every acknowledgement, so a failure
//! names the operation the kernel rejected.

mod encode;
mod netlink;

use std::io;
use std::time::Duration;

use nix::errno::Errno;

use crate::plan::Transaction;

pub use encode::parse_rule_tag;
pub use netlink::Netlink;

/// The narrow interface the rest of the runtime uses to reach the kernel.
pub trait Kernel {
    /// Whether the inet table `table` exists in the current network namespace.
    fn table_exists(&mut self, table: &str) -> Result<bool, KernelError>;
    /// Applies the whole transaction in ONE atomic nftables batch.
    fn apply(&mut self, tx: &Transaction) -> Result<ApplyReport, KernelError>;
}

/// What one [`Kernel::apply`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Netlink messages in the batch, not counting its begin and end markers.
    pub messages: usize,
    /// Size of the whole batch in bytes.
    pub bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a netfilter netlink socket")]
    Open(#[source] io::Error),
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
    Encode { op: String, reason: String },
}
