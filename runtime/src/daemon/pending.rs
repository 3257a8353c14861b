//! What happened since the daemon's last reconcile, and when the next may
//! run: bounded whatever the burst (a count per event kind, the last event,
//! the reasons that are not events), with the requests waiting for it. In a
//! burst, reconciles for events are at least [`MIN_GAP`] apart; the first
//! event after a quiet spell is reconciled at once. Pure: the time is
//! passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::control::Response;
use crate::world::Event;

/// Reconciles during a burst of events are at least this far apart.
pub const MIN_GAP: Duration = Duration::from_millis(10);

/// The short name of an event, for reasons and counts.
pub fn kind(e: &Event) -> &'static str {
    match e {
        Event::Startup => "startup",
        Event::ConfigChanged => "config-changed",
        Event::InterfaceUp(_) => "interface-up",
        Event::InterfaceDown(_) => "interface-down",
        Event::AddressAdded { .. } => "address-added",
        Event::AddressRemoved { .. } => "address-removed",
        Event::LeaseAdded(_) => "lease-added",
        Event::LeaseRenewed(_) => "lease-renewed",
        Event::LeaseExpired(_) => "lease-expired",
        Event::Dhcpv6LeaseAdded(_) => "dhcpv6-lease-added",
        Event::Dhcpv6LeaseRenewed(_) => "dhcpv6-lease-renewed",
        Event::Dhcpv6LeaseExpired(_) => "dhcpv6-lease-expired",
        Event::NeighbourAdded(_) => "neighbour-added",
        Event::NeighbourChanged(_) => "neighbour-changed",
        Event::NeighbourRemoved(_) => "neighbour-removed",
    }
}

/// An event in a few words, e.g. "lease-added 192.168.1.23 (nas)".
pub fn describe(e: &Event) -> String {
    match e {
        Event::InterfaceUp(n) | Event::InterfaceDown(n) => format!("{} {n}", kind(e)),
        Event::AddressAdded { iface, address } | Event::AddressRemoved { iface, address } => {
            format!("{} {iface} {address}", kind(e))
        }
        Event::LeaseAdded(l) | Event::LeaseRenewed(l) | Event::LeaseExpired(l) => format!(
            "{} {} {}{}",
            kind(e),
            l.ip,
            l.mac,
            l.hostname
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        ),
        Event::Dhcpv6LeaseAdded(l)
        | Event::Dhcpv6LeaseRenewed(l)
        | Event::Dhcpv6LeaseExpired(l) => {
            format!(
                "{} {} {}{}",
                kind(e),
                l.ip,
                l.duid,
                l.hostname
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            )
        }
        Event::NeighbourAdded(n) | Event::NeighbourChanged(n) | Event::NeighbourRemoved(n) => {
            format!(
                "{} {} {} {} {}",
                kind(e),
                n.iface,
                n.ip,
                n.mac,
                n.state.name()
            )
        }
        Event::Startup | Event::ConfigChanged => kind(e).to_string(),
    }
}

/// Work gathered for the next reconcile.
#[derive(Default)]
pub struct Pending {
    counts: BTreeMap<&'static str, usize>,
    pub last: Option<Event>,
    other: BTreeSet<String>,
    /// Evaluate the policies again (the world or a policy changed).
    pub evaluate: bool,
    /// Reconcile even if nothing was evaluated (drift, timer).
    pub reconcile: bool,
    /// Read the interfaces again.
    pub links: bool,
    /// Read the neighbour table again (after the interfaces, if both).
    pub neighbours: bool,
    /// Read the lease file again.
    pub lease_file: bool,
    /// Policies just (re)loaded: they see `startup`.
    pub fresh: BTreeSet<String>,
    pub waiters: Vec<oneshot::Sender<Response>>,
}

/// Whether the pending work may be reconciled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing to reconcile.
    Nothing,
    Now,
    /// In a burst: gather more until then.
    At(Instant),
}

impl Pending {
    pub fn event(&mut self, e: Event) {
        *self.counts.entry(kind(&e)).or_default() += 1;
        self.last = Some(e);
        self.evaluate = true;
    }

    pub fn because(&mut self, reason: impl Into<String>) {
        self.other.insert(reason.into());
    }

    /// Whether any lease event is pending.
    pub fn has_lease_events(&self) -> bool {
        self.counts.keys().any(|k| k.contains("lease-"))
    }

    /// When to reconcile, given when the last reconcile for events ended.
    /// Only reconciles for events count: a drift check (after a change
    /// notification) must not hold up the next event.
    pub fn due(&self, now: Instant, last_for_events: Option<Instant>) -> Due {
        if !self.evaluate && !self.reconcile {
            return Due::Nothing;
        }
        match last_for_events {
            Some(at) if self.evaluate && now.duration_since(at) < MIN_GAP => Due::At(at + MIN_GAP),
            _ => Due::Now,
        }
    }

    /// The reason of the reconcile, e.g. "lease-added 10.0.0.1 ..." or
    /// "1001 events (interface-up x1, lease-added x1000); nftables changed".
    pub fn reason(&self) -> String {
        let events: usize = self.counts.values().sum();
        let mut parts: Vec<String> = Vec::new();
        match (&self.last, events) {
            (Some(e), 1) => parts.push(describe(e)),
            (_, 0) => {}
            (_, n) => parts.push(format!(
                "{n} events ({})",
                self.counts
                    .iter()
                    .map(|(k, c)| format!("{k} x{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        parts.extend(self.other.iter().cloned());
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Lease;

    fn lease(ip: &str) -> Lease {
        Lease {
            mac: "02:00:00:00:00:01".into(),
            ip: ip.into(),
            hostname: Some("nas".into()),
            iface: "lan0".into(),
            expires: None,
        }
    }

    #[test]
    fn a_burst_is_summed_up_in_one_reason() {
        let mut p = Pending::default();
        assert_eq!(p.reason(), "");
        p.event(Event::LeaseAdded(lease("10.0.0.1")));
        assert_eq!(p.reason(), "lease-added 10.0.0.1 02:00:00:00:00:01 (nas)");
        assert!(p.evaluate);
        for i in 2..=1000 {
            p.event(Event::LeaseAdded(lease(&format!(
                "10.0.{}.{}",
                i / 250,
                i % 250
            ))));
        }
        p.event(Event::InterfaceUp("wan0".into()));
        p.because("nftables changed");
        p.because("nftables changed");
        assert_eq!(
            p.reason(),
            "1001 events (interface-up x1, lease-added x1000); nftables changed"
        );
        // Bounded whatever the burst: a count per kind and the last event.
        assert_eq!(p.counts.len(), 2);
        assert_eq!(p.last, Some(Event::InterfaceUp("wan0".into())));
    }

    #[test]
    fn events_in_a_burst_wait_for_the_gap_and_a_lone_one_does_not() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        assert_eq!(p.due(t0, None), Due::Nothing);
        p.event(Event::InterfaceUp("lan0".into()));
        assert_eq!(p.due(t0, None), Due::Now, "the first after a quiet spell");
        let just_now = t0 + Duration::from_millis(3);
        assert_eq!(p.due(just_now, Some(t0)), Due::At(t0 + MIN_GAP));
        assert_eq!(p.due(t0 + MIN_GAP, Some(t0)), Due::Now);

        // A drift check alone is never held up.
        let mut drift = Pending {
            reconcile: true,
            ..Pending::default()
        };
        assert_eq!(drift.due(just_now, Some(t0)), Due::Now);
        drift.because("nftables changed");
        assert_eq!(drift.reason(), "nftables changed");
    }
}
