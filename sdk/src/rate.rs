//! Rates and rate limits: so many packets or bytes per unit of time, with
//! a burst, and whether a limit matches the traffic within it or over it.

/// Unit of time of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeUnit {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per week.
    Week,
}

/// So many packets (or bytes) per unit of time, and how far a burst may go
/// above it: `Rate::per_second(10).burst(5)`, `Rate::bytes_per_second(1_000_000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub(crate) amount: u64,
    pub(crate) bytes: bool,
    pub(crate) unit: TimeUnit,
    pub(crate) burst: u32,
}

impl Rate {
    /// `amount` packets per `unit`.
    pub const fn packets(amount: u64, unit: TimeUnit) -> Rate {
        Rate {
            amount,
            bytes: false,
            unit,
            burst: 0,
        }
    }

    /// `amount` bytes per `unit`.
    pub const fn bytes(amount: u64, unit: TimeUnit) -> Rate {
        Rate {
            amount,
            bytes: true,
            unit,
            burst: 0,
        }
    }

    /// Packets per second.
    pub const fn per_second(packets: u64) -> Rate {
        Rate::packets(packets, TimeUnit::Second)
    }

    /// Packets per minute.
    pub const fn per_minute(packets: u64) -> Rate {
        Rate::packets(packets, TimeUnit::Minute)
    }

    /// Packets per hour.
    pub const fn per_hour(packets: u64) -> Rate {
        Rate::packets(packets, TimeUnit::Hour)
    }

    /// Packets per day.
    pub const fn per_day(packets: u64) -> Rate {
        Rate::packets(packets, TimeUnit::Day)
    }

    /// Packets per week.
    pub const fn per_week(packets: u64) -> Rate {
        Rate::packets(packets, TimeUnit::Week)
    }

    /// Bytes per second.
    pub const fn bytes_per_second(bytes: u64) -> Rate {
        Rate::bytes(bytes, TimeUnit::Second)
    }

    /// Bytes per minute.
    pub const fn bytes_per_minute(bytes: u64) -> Rate {
        Rate::bytes(bytes, TimeUnit::Minute)
    }

    /// Bytes per hour.
    pub const fn bytes_per_hour(bytes: u64) -> Rate {
        Rate::bytes(bytes, TimeUnit::Hour)
    }

    /// Bytes per day.
    pub const fn bytes_per_day(bytes: u64) -> Rate {
        Rate::bytes(bytes, TimeUnit::Day)
    }

    /// Bytes per week.
    pub const fn bytes_per_week(bytes: u64) -> Rate {
        Rate::bytes(bytes, TimeUnit::Week)
    }

    /// Allows `amount` packets (or bytes) above the rate at once. Without
    /// it the kernel's default holds: 5 packets, 0 bytes.
    pub const fn burst(self, amount: u32) -> Rate {
        Rate {
            burst: amount,
            ..self
        }
    }

    /// How many packets or bytes per unit.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// Whether the rate counts bytes instead of packets.
    pub fn counts_bytes(&self) -> bool {
        self.bytes
    }

    /// The unit of time.
    pub fn unit(&self) -> TimeUnit {
        self.unit
    }

    /// The burst; 0 for the kernel's default.
    pub fn burst_amount(&self) -> u32 {
        self.burst
    }
}

/// A token-bucket limit: matches the packets within a rate, or with
/// [`RateLimit::over`] those above it (to drop them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub(crate) rate: Rate,
    pub(crate) over: bool,
}

impl RateLimit {
    /// Matches the packets within `rate`.
    pub const fn within(rate: Rate) -> RateLimit {
        RateLimit { rate, over: false }
    }

    /// Matches the packets above `rate`.
    pub const fn over(rate: Rate) -> RateLimit {
        RateLimit { rate, over: true }
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Whether it matches the packets above the rate.
    pub fn is_over(&self) -> bool {
        self.over
    }
}
