//! A switch for the tests: a namespace holding only a bridge, so that more
//! than two namespaces share one link (a router's LAN and its hosts).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::netns::{Netns, VethEnd};

const BRIDGE: &str = "br0";

/// A namespace with one bridge, up, to which other namespaces are joined
/// by veth pairs. It forwards at once (no STP), floods multicast (no MLD
/// snooping, which without a querier could keep neighbour solicitations
/// from a host) and has no IPv6 of its own, so it sends nothing. Removed
/// on drop, with its ports.
#[derive(Debug)]
pub struct Switch {
    netns: Netns,
    ports: AtomicUsize,
}

impl Switch {
    pub fn new(role: &str) -> Switch {
        let netns = Netns::new(role);
        for conf in ["all", "default"] {
            netns.set_sysctl(&format!("net/ipv6/conf/{conf}/disable_ipv6"), "1");
        }
        netns.run([
            "ip",
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ]);
        netns.run(["ip", "link", "set", BRIDGE, "up"]);
        Switch {
            netns,
            ports: AtomicUsize::new(0),
        }
    }

    /// Joins `host` (namespace, interface, address with prefix length or
    /// "" for none) to the switch, with MAC address `mac` if given; the
    /// host's interface is up when this returns, and gets the MAC before
    /// it is up (so its IPv6 link-local address is made from it).
    pub fn connect(&self, host: VethEnd<'_>, mac: Option<&str>) {
        let (netns, iface, addr) = host;
        let port = format!("port{}", self.ports.fetch_add(1, Ordering::Relaxed));
        let mut add = vec![
            "ip", "link", "add", &port, "type", "veth", "peer", "name", iface,
        ];
        if let Some(mac) = mac {
            add.extend(["address", mac]);
        }
        add.extend(["netns", netns.name()]);
        self.netns.run(add);
        self.netns
            .run(["ip", "link", "set", &port, "master", BRIDGE, "up"]);
        if !addr.is_empty() {
            netns.run(["ip", "addr", "add", addr, "dev", iface]);
        }
        netns.run(["ip", "link", "set", iface, "up"]);
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.netns.name())
    }
}
