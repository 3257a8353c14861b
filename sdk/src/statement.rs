//! What a rule does before its verdict: [`Statement`]s (count, log, mark,
//! DSCP, conntrack, MSS clamping, offload), run in the order the rule
//! lists them.

use crate::packet::{Dscp, IpFamily};
use crate::rate::Rate;

/// Severity of a packet's kernel log line (syslog's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogLevel {
    /// The system is unusable.
    Emerg,
    /// Action must be taken at once.
    Alert,
    /// Critical.
    Crit,
    /// Error.
    Err,
    /// Warning (the kernel's default).
    Warn,
    /// Normal but significant.
    Notice,
    /// Informational.
    Info,
    /// Debug.
    Debug,
}

/// How a packet is logged to the kernel log: `Log::with_prefix("drop ")`,
/// then optionally [`Log::at_level`] and [`Log::at_most`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Log {
    pub(crate) prefix: Option<String>,
    pub(crate) level: Option<LogLevel>,
    pub(crate) limit: Option<Rate>,
}

impl Log {
    /// A log line without prefix, at the kernel's default level.
    pub fn new() -> Log {
        Log::default()
    }

    /// A log line starting with `prefix` (at most 127 bytes).
    pub fn with_prefix(prefix: impl Into<String>) -> Log {
        Log {
            prefix: Some(prefix.into()),
            ..Log::default()
        }
    }

    /// Logs at `level` instead of `warn`.
    pub fn at_level(self, level: LogLevel) -> Log {
        Log {
            level: Some(level),
            ..self
        }
    }

    /// Logs at most at `rate`. The limit comes before the log in the rule,
    /// so it would limit the verdict too: a rule with a limited log must
    /// end in `continue_()`.
    pub fn at_most(self, rate: Rate) -> Log {
        Log {
            limit: Some(rate),
            ..self
        }
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The level, if not the default.
    pub fn level(&self) -> Option<LogLevel> {
        self.level
    }

    /// The rate limit, if any.
    pub fn limit(&self) -> Option<Rate> {
        self.limit
    }
}

/// A change to a 32-bit mark (the packet's or the connection's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MarkUpdate {
    /// Set it to this value.
    Set(u32),
    /// Keep only these bits.
    And(u32),
    /// Set these bits.
    Or(u32),
    /// Flip these bits.
    Xor(u32),
    /// Set the bits in `mask` to those of `value` and keep the others
    /// (OpenWrt's `set_xmark`).
    Masked {
        /// The new bits.
        value: u32,
        /// Which bits change.
        mask: u32,
    },
}

/// What MSS a TCP SYN gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MssClamp {
    /// The route's path MTU less the headers (`rt mtu`): the usual clamp
    /// for a PPPoE or tunnel WAN.
    PathMtu,
    /// This size.
    Size(u16),
}

/// Something a rule does before its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Statement {
    /// Count packets and bytes in the rule.
    Counter,
    /// Count in the named counter object (`Ruleset::named_counter`).
    CounterNamed(String),
    /// Log the packet.
    Log(Log),
    /// Change the packet mark (`meta mark set`).
    Mark(MarkUpdate),
    /// Change the conntrack mark (`ct mark set`).
    CtMark(MarkUpdate),
    /// Set the DSCP of the header of this family.
    Dscp {
        /// Which header.
        family: IpFamily,
        /// The new DSCP.
        value: Dscp,
    },
    /// Exempt the packet from connection tracking; only in chains on
    /// prerouting or output that run before conntrack (priority below -200,
    /// e.g. `PriorityName::Raw`).
    Notrack,
    /// Attach the named conntrack helper object (`Ruleset::ct_helper`) to
    /// the connection; only in chains on prerouting or output that run
    /// after conntrack (priority above -200).
    CtHelper(String),
    /// Clamp the MSS of TCP SYNs; the rule must match TCP SYNs.
    Mss(MssClamp),
    /// Offload the connection to the named flowtable (`Ruleset::flowtable`);
    /// only in forward chains.
    Offload(String),
    /// When the rule leaves the ruleset, the runtime cuts the connections
    /// it matched, even where another rule would still allow them. Not a
    /// kernel statement.
    CutFlows,
}
