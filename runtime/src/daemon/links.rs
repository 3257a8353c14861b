//! Interface and address changes as policy events, from two readings of the
//! namespace's interfaces. The daemon reads the interfaces again after each
//! burst of rtnetlink notifications rather than patching its copy message by
//! message, so a lost notification (a full socket buffer) costs nothing but
//! a later reading. Pure.

use std::collections::BTreeMap;

use crate::world::{Event, Interface};

/// The events that lead from `old` to `new`: interfaces that came up or
/// went down (or disappeared), addresses added and removed.
pub fn interface_events(old: &[Interface], new: &[Interface]) -> Vec<Event> {
    let old: BTreeMap<&str, &Interface> = old.iter().map(|i| (i.name.as_str(), i)).collect();
    let new: BTreeMap<&str, &Interface> = new.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut events = Vec::new();
    let removed = |events: &mut Vec<Event>, i: &Interface, gone: &[String]| {
        for address in gone {
            events.push(Event::AddressRemoved {
                iface: i.name.clone(),
                address: address.clone(),
            });
        }
    };
    for (name, was) in &old {
        if !new.contains_key(name) {
            removed(&mut events, was, &was.addresses);
            events.push(Event::InterfaceDown(name.to_string()));
        }
    }
    for (name, now) in &new {
        let before = old.get(name);
        let was_up = before.is_some_and(|b| b.up);
        let old_addresses: &[String] = before.map_or(&[], |b| &b.addresses);
        let gone: Vec<String> = old_addresses
            .iter()
            .filter(|a| !now.addresses.contains(a))
            .cloned()
            .collect();
        removed(&mut events, now, &gone);
        if was_up && !now.up {
            events.push(Event::InterfaceDown(name.to_string()));
        }
        for address in now.addresses.iter().filter(|a| !old_addresses.contains(a)) {
            events.push(Event::AddressAdded {
                iface: name.to_string(),
                address: address.clone(),
            });
        }
        if !was_up && now.up {
            events.push(Event::InterfaceUp(name.to_string()));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, up: bool, addresses: &[&str]) -> Interface {
        Interface {
            name: name.into(),
            index: 1,
            up,
            mac: None,
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_changed_no_events() {
        let a = vec![iface("lan0", true, &["192.168.1.1/24"])];
        assert_eq!(interface_events(&a, &a), vec![]);
    }

    #[test]
    fn up_down_and_addresses() {
        let before = vec![
            iface("lan0", true, &["192.168.1.1/24"]),
            iface("wan0", false, &[]),
        ];
        let after = vec![
            iface("lan0", true, &["192.168.1.2/24"]),
            iface("wan0", true, &["203.0.113.1/24"]),
        ];
        assert_eq!(
            interface_events(&before, &after),
            vec![
                Event::AddressRemoved {
                    iface: "lan0".into(),
                    address: "192.168.1.1/24".into()
                },
                Event::AddressAdded {
                    iface: "lan0".into(),
                    address: "192.168.1.2/24".into()
                },
                Event::AddressAdded {
                    iface: "wan0".into(),
                    address: "203.0.113.1/24".into()
                },
                Event::InterfaceUp("wan0".into()),
            ]
        );
        assert_eq!(
            interface_events(&after, &[iface("lan0", true, &["192.168.1.2/24"])]),
            vec![
                Event::AddressRemoved {
                    iface: "wan0".into(),
                    address: "203.0.113.1/24".into()
                },
                Event::InterfaceDown("wan0".into()),
            ]
        );
    }

    #[test]
    fn a_new_interface_that_is_up_comes_up() {
        let after = vec![iface("wlan0", true, &[])];
        assert_eq!(
            interface_events(&[], &after),
            vec![Event::InterfaceUp("wlan0".into())]
        );
        let down = vec![iface("wlan0", false, &[])];
        assert_eq!(interface_events(&[], &down), vec![]);
        assert_eq!(
            interface_events(&after, &down),
            vec![Event::InterfaceDown("wlan0".into())]
        );
    }
}
