//! The kernel's neighbour table (ARP and IPv6 neighbour discovery) of an
//! interface in a namespace, as `ip neigh` shows it.

use std::fmt;
use std::net::IpAddr;

use crate::netns::Netns;

/// One entry of a neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: IpAddr,
    /// None while it is being resolved (INCOMPLETE) or failed.
    pub lladdr: Option<String>,
    /// REACHABLE, STALE, DELAY, PROBE, INCOMPLETE, FAILED, PERMANENT...
    pub state: String,
    /// It said it is a router (IPv6).
    pub router: bool,
}

impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(lladdr) = &self.lladdr {
            write!(f, " lladdr {lladdr}")?;
        }
        if self.router {
            f.write_str(" router")?;
        }
        write!(f, " {}", self.state)
    }
}

/// The neighbour table of `iface` in `netns`, IPv4 and IPv6.
pub fn neighbours(netns: &Netns, iface: &str) -> Vec<Neighbour> {
    parse_neighbours(&netns.run(["ip", "neigh", "show", "dev", iface]).stdout)
}

/// `ip neigh show dev IFACE` lines: `ADDR [lladdr MAC] [router] STATE...`.
fn parse_neighbours(text: &str) -> Vec<Neighbour> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let addr = words.first()?.parse().ok()?;
            let lladdr = words
                .iter()
                .position(|w| *w == "lladdr")
                .and_then(|i| words.get(i + 1))
                .map(|mac| mac.to_string());
            Some(Neighbour {
                addr,
                lladdr,
                state: words.last()?.to_string(),
                router: words.contains(&"router"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_neigh_lines() {
        let text = "2001:db8:1::1c6 lladdr 02:00:00:00:0a:5a REACHABLE \n\
                    fe80::4423:13ff:fe68:7445 lladdr 46:23:13:68:74:45 router STALE \n\
                    2001:db8:1::ff:fe00:5aac INCOMPLETE \n";
        let n = parse_neighbours(text);
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].lladdr.as_deref(), Some("02:00:00:00:0a:5a"));
        assert_eq!(n[0].state, "REACHABLE");
        assert!(n[1].router);
        assert_eq!(n[2].lladdr, None);
        assert_eq!(n[2].state, "INCOMPLETE");
    }
}
