//! The kernel's neighbour table as the daemon holds it, and the events that
//! lead from one reading to the next. Like the interfaces (`links`), the
//! table is read again after each burst of rtnetlink notifications rather
//! than patched message by message, so a lost notification (a full socket
//! buffer) costs nothing but a later reading. Bounded: at most `max`
//! neighbours are held (the first in [`world::neighbour_order`]); a larger
//! table is counted, warned about once per big change and listed in
//! `status` while it lasts. Pure.

use std::collections::HashMap;

use crate::world::{self, Event, Neighbour, NeighbourTable};

/// The events that lead from `old` to `new`: neighbours gone (removed),
/// neighbours whose state or MAC changed for the same interface and address
/// (changed), new ones (added). Removals come first, then the others in
/// the order of `new`.
pub fn neighbour_events(old: &[Neighbour], new: &[Neighbour]) -> Vec<Event> {
    let key = |n: &Neighbour| (n.iface.clone(), n.ip.clone());
    let was: HashMap<(String, String), &Neighbour> = old.iter().map(|n| (key(n), n)).collect();
    let now: HashMap<(String, String), &Neighbour> = new.iter().map(|n| (key(n), n)).collect();
    let mut events: Vec<Event> = old
        .iter()
        .filter(|n| !now.contains_key(&key(n)))
        .map(|n| Event::NeighbourRemoved(n.clone()))
        .collect();
    for n in new {
        match was.get(&key(n)) {
            None => events.push(Event::NeighbourAdded(n.clone())),
            Some(w) if w.state != n.state || w.mac != n.mac => {
                events.push(Event::NeighbourChanged(n.clone()))
            }
            Some(_) => {}
        }
    }
    events
}

/// What a new reading brought besides its events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub events: Vec<Event>,
    /// To log as a warning: the table went past the cap, or changed by a
    /// lot while past it.
    pub warning: Option<String>,
    /// To log: the table fits the cap again.
    pub fits_again: bool,
}

/// The neighbours held, at most `max`.
#[derive(Debug)]
pub struct Neighbours {
    held: Vec<Neighbour>,
    /// How many the last reading counted (may be more than `max`).
    counted: usize,
    max: usize,
    /// The count of the last warning while past the cap.
    warned: Option<usize>,
}

impl Neighbours {
    pub fn new(max: usize) -> Neighbours {
        Neighbours {
            held: Vec::new(),
            counted: 0,
            max,
            warned: None,
        }
    }

    /// The neighbours held, in [`world::neighbour_order`].
    pub fn list(&self) -> &[Neighbour] {
        &self.held
    }

    /// Takes in a reading of the table: the events from the last one, and
    /// what to log about the cap.
    pub fn take(&mut self, mut table: NeighbourTable) -> Taken {
        // The reading holds at most `max` already; made sure of here.
        table.neighbours.sort_by(world::neighbour_order);
        table.neighbours.truncate(self.max);
        let events = neighbour_events(&self.held, &table.neighbours);
        self.held = table.neighbours;
        self.counted = table.counted.max(self.held.len());
        let mut taken = Taken {
            events,
            ..Taken::default()
        };
        if self.counted > self.max {
            // Logged again only when the count moved by a tenth of the cap.
            let step = (self.max / 10).max(1);
            if self.warned.is_none_or(|w| w.abs_diff(self.counted) >= step) {
                self.warned = Some(self.counted);
                taken.warning = self.over_cap();
            }
        } else if self.warned.take().is_some() {
            taken.fits_again = true;
        }
        taken
    }

    /// While the table is larger than the cap: what `status` lists.
    pub fn over_cap(&self) -> Option<String> {
        (self.counted > self.max).then(|| {
            format!(
                "neighbour table: {} entries, more than `neighbours.max` = {}: \
                 only the first {} (by interface and address) are held and seen by the policies",
                self.counted, self.max, self.max
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::NeighbourState::{self, *};

    fn n(iface: &str, ip: &str, mac: &str, state: NeighbourState) -> Neighbour {
        Neighbour {
            ip: ip.into(),
            mac: mac.into(),
            iface: iface.into(),
            state,
        }
    }

    const M1: &str = "02:00:00:00:00:01";
    const M2: &str = "02:00:00:00:00:02";

    #[test]
    fn nothing_changed_no_events() {
        let a = vec![n("lan0", "192.168.1.2", M1, Reachable)];
        assert_eq!(neighbour_events(&a, &a), vec![]);
    }

    #[test]
    fn added_changed_and_removed() {
        let before = vec![
            n("lan0", "192.168.1.2", M1, Reachable),
            n("lan0", "192.168.1.3", M1, Reachable),
            n("lan0", "2001:db8:1::9", M2, Reachable),
        ];
        let after = vec![
            // The state changed.
            n("lan0", "192.168.1.2", M1, Stale),
            // The MAC changed (another host took the address).
            n("lan0", "192.168.1.3", M2, Reachable),
            // The same address on another interface is another neighbour.
            n("wlan0", "2001:db8:1::9", M2, Delay),
        ];
        assert_eq!(
            neighbour_events(&before, &after),
            vec![
                Event::NeighbourRemoved(before[2].clone()),
                Event::NeighbourChanged(after[0].clone()),
                Event::NeighbourChanged(after[1].clone()),
                Event::NeighbourAdded(after[2].clone()),
            ]
        );
        assert_eq!(
            neighbour_events(&[], &after[..1]),
            vec![Event::NeighbourAdded(after[0].clone())]
        );
        assert_eq!(
            neighbour_events(&after[..1], &[]),
            vec![Event::NeighbourRemoved(after[0].clone())]
        );
    }

    fn table(count: usize, max: usize) -> NeighbourTable {
        let mut neighbours: Vec<Neighbour> = (0..count)
            .map(|i| {
                n(
                    "lan0",
                    &format!("10.0.{}.{}", i / 250, 1 + i % 250),
                    M1,
                    Stale,
                )
            })
            .collect();
        neighbours.truncate(max);
        NeighbourTable {
            neighbours,
            counted: count,
        }
    }

    #[test]
    fn past_the_cap_the_first_are_held_and_it_is_warned_about_once_per_big_change() {
        let mut held = Neighbours::new(100);
        let taken = held.take(table(50, 100));
        assert_eq!(taken.events.len(), 50);
        assert_eq!((taken.warning, taken.fits_again), (None, false));
        assert_eq!(held.over_cap(), None);

        let taken = held.take(table(150, 100));
        assert_eq!(taken.events.len(), 50, "the next 50 up to the cap");
        assert_eq!(held.list().len(), 100);
        assert_eq!(held.list()[99].ip, "10.0.0.100");
        let warning = taken.warning.expect("warned when it starts");
        assert_eq!(
            warning,
            "neighbour table: 150 entries, more than `neighbours.max` = 100: \
             only the first 100 (by interface and address) are held and seen by the policies"
        );
        assert_eq!(held.over_cap(), Some(warning));

        // A small change: no new warning, but status follows the count.
        let taken = held.take(table(159, 100));
        assert_eq!(taken.warning, None);
        assert!(taken.events.is_empty());
        assert!(held.over_cap().unwrap().contains("159 entries"));
        // A tenth of the cap away from the last warning: warned again.
        assert!(held.take(table(160, 100)).warning.is_some());
        assert_eq!(held.take(table(151, 100)).warning, None);

        let taken = held.take(table(100, 100));
        assert!(taken.fits_again);
        assert_eq!(taken.warning, None);
        assert_eq!(held.over_cap(), None);
        assert!(!held.take(table(99, 100)).fits_again, "said once");
        assert!(
            held.take(table(101, 100)).warning.is_some(),
            "past it again"
        );
    }

    #[test]
    fn a_reading_larger_than_the_cap_is_cut_to_it() {
        let mut held = Neighbours::new(3);
        let mut t = table(5, 5);
        t.neighbours.reverse();
        held.take(t);
        let ips: Vec<&str> = held.list().iter().map(|n| n.ip.as_str()).collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert!(held.over_cap().unwrap().contains("5 entries"));
    }
}
