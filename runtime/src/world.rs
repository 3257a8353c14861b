//! The world state policies see (interfaces, addresses, DHCP and DHCPv6
//! leases, neighbours) and the events that trigger evaluations: host-side
//! types, their JSON form (for `wasmwall eval --state`), the conversion to
//! the WIT types, and reading the interfaces and the neighbour table of the
//! current network namespace over rtnetlink.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bindings::wit;
use crate::fields;
use crate::ir::Transport;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub up: bool,
    #[serde(default)]
    pub mac: Option<String>,
    /// "addr/len" strings.
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
    #[serde(default)]
    pub hostname: Option<String>,
    pub iface: String,
    #[serde(default)]
    pub expires: Option<u64>,
}

/// A DHCPv6 lease (WIT `dhcpv6-lease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcpv6Lease {
    pub ip: String,
    /// Lower-case hex pairs joined by ':'.
    pub duid: String,
    #[serde(default)]
    pub iaid: u32,
    #[serde(default)]
    pub temporary: bool,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    pub iface: String,
    #[serde(default)]
    pub expires: Option<u64>,
}

/// A neighbour's NUD state, of those that count (WIT `neighbour-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighbourState {
    Reachable,
    Stale,
    Delay,
    Probe,
    Permanent,
}

impl NeighbourState {
    pub fn name(self) -> &'static str {
        match self {
            NeighbourState::Reachable => "reachable",
            NeighbourState::Stale => "stale",
            NeighbourState::Delay => "delay",
            NeighbourState::Probe => "probe",
            NeighbourState::Permanent => "permanent",
        }
    }

    /// The state of the kernel's NUD bits (`NUD_*` of
    /// include/uapi/linux/neighbour.h), when it is one that counts:
    /// incomplete, failed, noarp (multicast, loopback) and none do not.
    pub fn from_nud(nud: u16) -> Option<NeighbourState> {
        const REACHABLE: u16 = 0x02;
        const STALE: u16 = 0x04;
        const DELAY: u16 = 0x08;
        const PROBE: u16 = 0x10;
        const PERMANENT: u16 = 0x80;
        match nud {
            n if n & PERMANENT != 0 => Some(NeighbourState::Permanent),
            n if n & REACHABLE != 0 => Some(NeighbourState::Reachable),
            n if n & STALE != 0 => Some(NeighbourState::Stale),
            n if n & DELAY != 0 => Some(NeighbourState::Delay),
            n if n & PROBE != 0 => Some(NeighbourState::Probe),
            _ => None,
        }
    }

    fn to_wit(self) -> wit::NeighbourState {
        match self {
            NeighbourState::Reachable => wit::NeighbourState::Reachable,
            NeighbourState::Stale => wit::NeighbourState::Stale,
            NeighbourState::Delay => wit::NeighbourState::Delay,
            NeighbourState::Probe => wit::NeighbourState::Probe,
            NeighbourState::Permanent => wit::NeighbourState::Permanent,
        }
    }
}

impl std::str::FromStr for NeighbourState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "reachable" => NeighbourState::Reachable,
            "stale" => NeighbourState::Stale,
            "delay" => NeighbourState::Delay,
            "probe" => NeighbourState::Probe,
            "permanent" => NeighbourState::Permanent,
            other => {
                return Err(format!(
                    "neighbour state {} is not reachable, stale, delay, probe or permanent",
                    crate::text::quote(other)
                ));
            }
        })
    }
}

/// An entry of the kernel's neighbour table (WIT `neighbour`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    pub ip: String,
    pub mac: String,
    pub iface: String,
    pub state: NeighbourState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldState {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub leases: Vec<Lease>,
    /// DHCPv6 leases (WIT `dhcpv6-leases`).
    #[serde(default)]
    pub dhcpv6_leases: Vec<Dhcpv6Lease>,
    /// The neighbour table (WIT `neighbours`).
    #[serde(default)]
    pub neighbours: Vec<Neighbour>,
    /// What the kernel can do beyond the basics (WIT `kernel-features`).
    #[serde(default)]
    pub features: Features,
}

/// Optional kernel features. The default is a kernel with none of them,
/// so a policy offers none where they are not known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    #[serde(default)]
    pub flowtables: bool,
    /// Interfaces that can offload flows to hardware.
    #[serde(default)]
    pub hardware_offload: Vec<String>,
    /// Conntrack helpers the kernel has, by name.
    #[serde(default)]
    pub ct_helpers: Vec<String>,
}

/// The names of `interfaces`, in their order.
pub fn interface_names(interfaces: &[Interface]) -> Vec<String> {
    interfaces.iter().map(|i| i.name.clone()).collect()
}

/// The conntrack helpers the runtime looks for in the kernel, each with the
/// transport protocols its helper follows: every helper of the mainline
/// kernel (net/netfilter/nf_conntrack_*.c, nf_nat_snmp_basic.c; H.245 is
/// not among them: the kernel attaches it to expected connections only,
/// and no object can name it), and rtsp, which some distributions
/// (OpenWrt) build out of tree.
pub const CT_HELPERS: [(&str, &[Transport]); 13] = [
    ("amanda", &[Transport::Udp]),
    ("ftp", &[Transport::Tcp]),
    ("irc", &[Transport::Tcp]),
    ("netbios-ns", &[Transport::Udp]),
    ("pptp", &[Transport::Tcp]),
    ("Q.931", &[Transport::Tcp]),
    ("RAS", &[Transport::Udp]),
    ("rtsp", &[Transport::Tcp]),
    ("sane", &[Transport::Tcp]),
    ("sip", &[Transport::Udp, Transport::Tcp]),
    ("snmp", &[Transport::Udp]),
    ("snmp_trap", &[Transport::Udp]),
    ("tftp", &[Transport::Udp]),
];

/// The protocols the kernel's helper `name` follows, when it is one the
/// runtime knows.
pub fn ct_helper_protocols(name: &str) -> Option<&'static [Transport]> {
    CT_HELPERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, protocols)| *protocols)
}

impl Features {
    pub fn to_wit(&self) -> wit::KernelFeatures {
        wit::KernelFeatures {
            flowtables: self.flowtables,
            hardware_offload: self.hardware_offload.clone(),
            ct_helpers: self.ct_helpers.clone(),
        }
    }

    /// One line for the log: `flowtables no; ct helpers ftp, sip; hardware
    /// offload none`.
    pub fn summary(&self) -> String {
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        format!(
            "flowtables {}; conntrack helpers {}; hardware flow offload {}",
            if self.flowtables { "yes" } else { "no" },
            list(&self.ct_helpers),
            list(&self.hardware_offload)
        )
    }
}

impl WorldState {
    /// Sorts interfaces by name and leases by address, as the WIT promises.
    pub fn normalize(&mut self) {
        self.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.leases.sort_by(|a, b| {
            let key = |l: &Lease| l.ip.parse::<IpAddr>().ok();
            key(a).cmp(&key(b)).then_with(|| a.ip.cmp(&b.ip))
        });
        self.dhcpv6_leases.sort_by(|a, b| {
            let key = |l: &Dhcpv6Lease| l.ip.parse::<IpAddr>().ok();
            key(a).cmp(&key(b)).then_with(|| a.ip.cmp(&b.ip))
        });
        self.neighbours.sort_by(neighbour_order);
    }

    pub fn to_wit(&self) -> wit::WorldState {
        wit::WorldState {
            interfaces: self
                .interfaces
                .iter()
                .map(|i| wit::NetworkInterface {
                    name: i.name.clone(),
                    index: i.index,
                    up: i.up,
                    mac: i.mac.clone(),
                    addresses: i.addresses.clone(),
                })
                .collect(),
            leases: self.leases.iter().map(Lease::to_wit).collect(),
            dhcpv6_leases: self.dhcpv6_leases.iter().map(Dhcpv6Lease::to_wit).collect(),
            neighbours: self.neighbours.iter().map(Neighbour::to_wit).collect(),
            features: self.features.to_wit(),
        }
    }
}

/// The order of the neighbours the policies see: by interface, then by
/// address (IPv4 before IPv6).
pub fn neighbour_order(a: &Neighbour, b: &Neighbour) -> std::cmp::Ordering {
    let key = |n: &Neighbour| n.ip.parse::<IpAddr>().ok();
    a.iface
        .cmp(&b.iface)
        .then_with(|| key(a).cmp(&key(b)))
        .then_with(|| a.ip.cmp(&b.ip))
}

impl Dhcpv6Lease {
    fn to_wit(&self) -> wit::Dhcpv6Lease {
        wit::Dhcpv6Lease {
            ip: self.ip.clone(),
            duid: self.duid.clone(),
            iaid: self.iaid,
            temporary: self.temporary,
            hostname: self.hostname.clone(),
            mac: self.mac.clone(),
            iface: self.iface.clone(),
            expires: self.expires,
        }
    }

    /// Checks every field; returns the lease with its DUID and MAC
    /// normalized, and the MAC taken from the DUID where it holds one and
    /// none was given.
    pub fn checked(mut self) -> Result<Dhcpv6Lease, String> {
        fields::ipv6(&self.ip)?;
        self.duid = fields::duid(&self.duid)?;
        fields::ifname(&self.iface)?;
        if let Some(h) = &self.hostname {
            fields::hostname(h)?;
        }
        self.mac = match &self.mac {
            Some(mac) => Some(fields::mac(mac)?),
            None => fields::mac_of_duid(&self.duid),
        };
        Ok(self)
    }
}

impl Neighbour {
    fn to_wit(&self) -> wit::Neighbour {
        wit::Neighbour {
            ip: self.ip.clone(),
            mac: self.mac.clone(),
            iface: self.iface.clone(),
            state: self.state.to_wit(),
        }
    }

    /// Checks every field; returns the neighbour with its MAC normalized.
    pub fn checked(mut self) -> Result<Neighbour, String> {
        fields::ip(&self.ip)?;
        self.mac = fields::mac(&self.mac)?;
        fields::ifname(&self.iface)?;
        Ok(self)
    }
}

impl Lease {
    fn to_wit(&self) -> wit::Lease {
        wit::Lease {
            mac: self.mac.clone(),
            ip: self.ip.clone(),
            hostname: self.hostname.clone(),
            iface: self.iface.clone(),
            expires: self.expires,
        }
    }
}

/// Why a policy is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Startup,
    InterfaceUp(String),
    InterfaceDown(String),
    AddressAdded { iface: String, address: String },
    AddressRemoved { iface: String, address: String },
    LeaseAdded(Lease),
    LeaseRenewed(Lease),
    LeaseExpired(Lease),
    Dhcpv6LeaseAdded(Dhcpv6Lease),
    Dhcpv6LeaseRenewed(Dhcpv6Lease),
    Dhcpv6LeaseExpired(Dhcpv6Lease),
    NeighbourAdded(Neighbour),
    NeighbourChanged(Neighbour),
    NeighbourRemoved(Neighbour),
    ConfigChanged,
}

/// The syntax of `--event`, for help texts and errors.
pub const EVENT_SYNTAX: &str = "startup | config-changed | interface-up=IFACE | interface-down=IFACE | \
address-added=IFACE,ADDR/LEN | address-removed=IFACE,ADDR/LEN | \
lease-added=MAC,IP,IFACE[,HOSTNAME] | lease-renewed=... | lease-expired=... | \
dhcpv6-lease-added=DUID,IAID,IP,IFACE[,HOSTNAME] | dhcpv6-lease-renewed=... | dhcpv6-lease-expired=... | \
neighbour-added=IP,MAC,IFACE[,STATE] | neighbour-changed=... | neighbour-removed=...";

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid event {text:?}: {problem} (expected {EVENT_SYNTAX})")]
pub struct EventParseError {
    pub text: String,
    pub problem: String,
}

impl Lease {
    /// Checks every field; returns the lease with its MAC normalized.
    pub fn checked(mut self) -> Result<Lease, String> {
        self.mac = fields::mac(&self.mac)?;
        fields::ip(&self.ip)?;
        fields::ifname(&self.iface)?;
        if let Some(h) = &self.hostname {
            fields::hostname(h)?;
        }
        Ok(self)
    }
}

impl WorldState {
    /// Checks every field of every interface and lease.
    pub fn check(&mut self) -> Result<(), String> {
        for (i, iface) in self.interfaces.iter_mut().enumerate() {
            let at = |e: String| format!("interfaces[{i}]: {e}");
            fields::ifname(&iface.name).map_err(at)?;
            if let Some(mac) = &iface.mac {
                iface.mac = Some(fields::mac(mac).map_err(at)?);
            }
            for a in &iface.addresses {
                fields::address_with_prefix(a).map_err(at)?;
            }
        }
        for (i, lease) in self.leases.iter_mut().enumerate() {
            *lease = lease
                .clone()
                .checked()
                .map_err(|e| format!("leases[{i}]: {e}"))?;
        }
        for (i, lease) in self.dhcpv6_leases.iter_mut().enumerate() {
            *lease = lease
                .clone()
                .checked()
                .map_err(|e| format!("dhcpv6_leases[{i}]: {e}"))?;
        }
        for (i, n) in self.neighbours.iter_mut().enumerate() {
            *n = n
                .clone()
                .checked()
                .map_err(|e| format!("neighbours[{i}]: {e}"))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Event {
    type Err = EventParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem: &str| EventParseError {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let (kind, args) = match text.split_once('=') {
            Some((k, a)) => (k, Some(a)),
            None => (text, None),
        };
        let parts: Vec<&str> = args.map(|a| a.split(',').collect()).unwrap_or_default();
        let one = |parts: &[&str]| match parts {
            [name] if !name.is_empty() => fields::ifname(name)
                .map(|()| name.to_string())
                .map_err(|e| fail(&e)),
            _ => Err(fail("expects one interface name")),
        };
        let addr = |parts: &[&str]| match parts {
            [iface, address] if !iface.is_empty() => {
                fields::ifname(iface).map_err(|e| fail(&e))?;
                fields::address_with_prefix(address).map_err(|e| fail(&e))?;
                Ok((iface.to_string(), address.to_string()))
            }
            _ => Err(fail("expects IFACE,ADDR/LEN")),
        };
        let lease = |parts: &[&str]| match parts {
            [mac, ip, iface, rest @ ..] if rest.len() <= 1 => Lease {
                mac: mac.to_string(),
                ip: ip.to_string(),
                hostname: rest.first().map(|h| h.to_string()),
                iface: iface.to_string(),
                expires: None,
            }
            .checked()
            .map_err(|e| fail(&e)),
            _ => Err(fail("expects MAC,IP,IFACE[,HOSTNAME]")),
        };
        let lease6 = |parts: &[&str]| match parts {
            [duid, iaid, ip, iface, rest @ ..] if rest.len() <= 1 => Dhcpv6Lease {
                ip: ip.to_string(),
                duid: duid.to_string(),
                iaid: iaid
                    .parse()
                    .map_err(|_| fail(&format!("IAID {iaid:?} is not a number")))?,
                temporary: false,
                hostname: rest.first().map(|h| h.to_string()),
                mac: None,
                iface: iface.to_string(),
                expires: None,
            }
            .checked()
            .map_err(|e| fail(&e)),
            _ => Err(fail("expects DUID,IAID,IP,IFACE[,HOSTNAME]")),
        };
        let neighbour = |parts: &[&str]| match parts {
            [ip, mac, iface, rest @ ..] if rest.len() <= 1 => Neighbour {
                ip: ip.to_string(),
                mac: mac.to_string(),
                iface: iface.to_string(),
                state: match rest.first() {
                    Some(s) => s.parse().map_err(|e: String| fail(&e))?,
                    None => NeighbourState::Reachable,
                },
            }
            .checked()
            .map_err(|e| fail(&e)),
            _ => Err(fail("expects IP,MAC,IFACE[,STATE]")),
        };
        match (kind, args) {
            ("startup", None) => Ok(Event::Startup),
            ("config-changed", None) => Ok(Event::ConfigChanged),
            ("startup" | "config-changed", Some(_)) => Err(fail("takes no arguments")),
            ("interface-up", _) => one(&parts).map(Event::InterfaceUp),
            ("interface-down", _) => one(&parts).map(Event::InterfaceDown),
            ("address-added", _) => {
                addr(&parts).map(|(iface, address)| Event::AddressAdded { iface, address })
            }
            ("address-removed", _) => {
                addr(&parts).map(|(iface, address)| Event::AddressRemoved { iface, address })
            }
            ("lease-added", _) => lease(&parts).map(Event::LeaseAdded),
            ("lease-renewed", _) => lease(&parts).map(Event::LeaseRenewed),
            ("lease-expired", _) => lease(&parts).map(Event::LeaseExpired),
            ("dhcpv6-lease-added", _) => lease6(&parts).map(Event::Dhcpv6LeaseAdded),
            ("dhcpv6-lease-renewed", _) => lease6(&parts).map(Event::Dhcpv6LeaseRenewed),
            ("dhcpv6-lease-expired", _) => lease6(&parts).map(Event::Dhcpv6LeaseExpired),
            ("neighbour-added", _) => neighbour(&parts).map(Event::NeighbourAdded),
            ("neighbour-changed", _) => neighbour(&parts).map(Event::NeighbourChanged),
            ("neighbour-removed", _) => neighbour(&parts).map(Event::NeighbourRemoved),
            _ => Err(fail("unknown event kind")),
        }
    }
}

impl Event {
    pub fn to_wit(&self) -> wit::Event {
        let change = |iface: &String, address: &String| wit::AddressChange {
            iface: iface.clone(),
            address: address.clone(),
        };
        match self {
            Event::Startup => wit::Event::Startup,
            Event::ConfigChanged => wit::Event::ConfigChanged,
            Event::InterfaceUp(n) => wit::Event::InterfaceUp(n.clone()),
            Event::InterfaceDown(n) => wit::Event::InterfaceDown(n.clone()),
            Event::AddressAdded { iface, address } => {
                wit::Event::AddressAdded(change(iface, address))
            }
            Event::AddressRemoved { iface, address } => {
                wit::Event::AddressRemoved(change(iface, address))
            }
            Event::LeaseAdded(l) => wit::Event::LeaseAdded(l.to_wit()),
            Event::LeaseRenewed(l) => wit::Event::LeaseRenewed(l.to_wit()),
            Event::LeaseExpired(l) => wit::Event::LeaseExpired(l.to_wit()),
            Event::Dhcpv6LeaseAdded(l) => wit::Event::Dhcpv6LeaseAdded(l.to_wit()),
            Event::Dhcpv6LeaseRenewed(l) => wit::Event::Dhcpv6LeaseRenewed(l.to_wit()),
            Event::Dhcpv6LeaseExpired(l) => wit::Event::Dhcpv6LeaseExpired(l.to_wit()),
            Event::NeighbourAdded(n) => wit::Event::NeighbourAdded(n.to_wit()),
            Event::NeighbourChanged(n) => wit::Event::NeighbourChanged(n.to_wit()),
            Event::NeighbourRemoved(n) => wit::Event::NeighbourRemoved(n.to_wit()),
        }
    }
}

#[derive(Debug, Error)]
pub enum WorldError {
    #[error("cannot start the async runtime rtnetlink runs on")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open an rtnetlink socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot list network interfaces")]
    Links(#[source] rtnetlink::Error),
    #[error("cannot list interface addresses")]
    Addresses(#[source] rtnetlink::Error),
    #[error("cannot read the neighbour table")]
    Neighbours(#[source] rtnetlink::Error),
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("world state file {path} is not valid: {message}")]
    Parse { path: String, message: String },
}

/// Reads a world state from a JSON file.
pub fn load_json(path: &std::path::Path) -> Result<WorldState, WorldError> {
    let shown = path.display().to_string();
    let text = crate::files::read_text(path, crate::files::Kind::WorldState)?;
    let mut state: WorldState = serde_json::from_str(&text).map_err(|e| WorldError::Parse {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    state.check().map_err(|message| WorldError::Parse {
        path: shown,
        message,
    })?;
    state.normalize();
    Ok(state)
}

fn format_mac(bytes: &[u8]) -> Option<String> {
    (bytes.len() == 6 && bytes.iter().any(|b| *b != 0)).then(|| {
        let hex = crate::text::hex(bytes);
        let pairs: Vec<&str> = (0..6).map(|i| &hex[2 * i..2 * i + 2]).collect();
        pairs.join(":")
    })
}

/// A single-threaded async runtime: rtnetlink needs one (and the daemon's
/// loop runs on one).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Reads the interfaces of the current network namespace from outside any
/// async runtime.
pub fn read_interfaces_now() -> Result<Vec<Interface>, WorldError> {
    runtime()
        .map_err(WorldError::Runtime)?
        .block_on(read_interfaces())
}

/// Reads the interfaces and addresses of the current network namespace.
pub async fn read_interfaces() -> Result<Vec<Interface>, WorldError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(WorldError::Socket)?;
    let conn = tokio::spawn(connection);

    let mut interfaces = Vec::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(WorldError::Links)? {
        let mut iface = Interface {
            name: String::new(),
            index: link.header.index,
            up: link.header.flags.contains(LinkFlags::Up)
                && link.header.flags.contains(LinkFlags::LowerUp),
            mac: None,
            addresses: Vec::new(),
        };
        for attr in &link.attributes {
            match attr {
                LinkAttribute::IfName(n) => iface.name = n.clone(),
                LinkAttribute::Address(a) => iface.mac = format_mac(a),
                _ => {}
            }
        }
        interfaces.push(iface);
    }

    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs.try_next().await.map_err(WorldError::Addresses)? {
        // For IPv4 point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
        let local = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let address = local.or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let (Some(ip), Some(iface)) = (
            address,
            interfaces.iter_mut().find(|i| i.index == msg.header.index),
        ) {
            iface
                .addresses
                .push(format!("{ip}/{}", msg.header.prefix_len));
        }
    }
    conn.abort();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(interfaces)
}

/// What one reading of the neighbour table gave: at most the `max`
/// asked for (those first in [`neighbour_order`]), and how many counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighbourTable {
    pub neighbours: Vec<Neighbour>,
    pub counted: usize,
}

/// Reads the neighbour table of the current network namespace, both
/// families: the entries with a hardware address in a state that counts
/// ([`NeighbourState::from_nud`]) on one of `interfaces`, at most `max` of
/// them (a table larger than that is counted, not held).
pub async fn read_neighbours(
    interfaces: &[Interface],
    max: usize,
) -> Result<NeighbourTable, WorldError> {
    use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    let (connection, handle, _) = rtnetlink::new_connection().map_err(WorldError::Socket)?;
    let conn = tokio::spawn(connection);
    let names: std::collections::HashMap<u32, &Interface> =
        interfaces.iter().map(|i| (i.index, i)).collect();
    let mut table = NeighbourTable::default();
    let mut dump = handle.neighbours().get().execute();
    while let Some(msg) = dump.try_next().await.map_err(WorldError::Neighbours)? {
        let Some(state) = NeighbourState::from_nud(u16::from(msg.header.state)) else {
            continue;
        };
        let Some(iface) = names.get(&msg.header.ifindex) else {
            continue;
        };
        let mut ip = None;
        let mut mac = None;
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    ip = Some(IpAddr::V4(*a))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    ip = Some(IpAddr::V6(*a))
                }
                NeighbourAttribute::LinkLayerAddress(l) => mac = format_mac(l),
                _ => {}
            }
        }
        let (Some(ip), Some(mac)) = (ip, mac) else {
            continue;
        };
        // The router's own address heard back (its router advertisements
        // looped on a bridge) is no neighbour.
        if iface.mac.as_deref() == Some(mac.as_str()) {
            continue;
        }
        if ip.is_multicast() || ip.is_unspecified() {
            continue;
        }
        table.counted += 1;
        table.neighbours.push(Neighbour {
            ip: ip.to_string(),
            mac,
            iface: iface.name.clone(),
            state,
        });
    }
    conn.abort();
    table.neighbours.sort_by(neighbour_order);
    table.neighbours.truncate(max);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nud_states_that_count() {
        assert_eq!(
            NeighbourState::from_nud(0x02),
            Some(NeighbourState::Reachable)
        );
        assert_eq!(NeighbourState::from_nud(0x04), Some(NeighbourState::Stale));
        assert_eq!(NeighbourState::from_nud(0x08), Some(NeighbourState::Delay));
        assert_eq!(NeighbourState::from_nud(0x10), Some(NeighbourState::Probe));
        assert_eq!(
            NeighbourState::from_nud(0x80),
            Some(NeighbourState::Permanent)
        );
        // Incomplete, failed, noarp, none.
        for nud in [0x01, 0x20, 0x40, 0x00] {
            assert_eq!(NeighbourState::from_nud(nud), None, "{nud:#x}");
        }
    }

    #[test]
    fn dhcpv6_leases_are_checked_and_get_the_mac_of_their_duid() {
        let lease = Dhcpv6Lease {
            ip: "2001:db8:1::23".into(),
            duid: "00:03:00:01:52:54:00:AB:CD:EF".into(),
            iaid: 7,
            temporary: false,
            hostname: Some("nas".into()),
            mac: None,
            iface: "lan0".into(),
            expires: None,
        };
        let checked = lease.clone().checked().unwrap();
        assert_eq!(checked.duid, "00:03:00:01:52:54:00:ab:cd:ef");
        assert_eq!(checked.mac.as_deref(), Some("52:54:00:ab:cd:ef"));
        // DUID-LLT: type, hardware type, 4 bytes of time, the address.
        let llt = Dhcpv6Lease {
            duid: "00:01:00:01:2c:aa:bb:cc:02:00:00:00:00:09".into(),
            ..lease.clone()
        };
        assert_eq!(
            llt.checked().unwrap().mac.as_deref(),
            Some("02:00:00:00:00:09")
        );
        // DUID-UUID (type 4) holds no MAC.
        let uuid = Dhcpv6Lease {
            duid: "00:04:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10".into(),
            ..lease.clone()
        };
        assert_eq!(uuid.checked().unwrap().mac, None);
        for (bad, needle) in [
            (
                Dhcpv6Lease {
                    ip: "192.168.0.2".into(),
                    ..lease.clone()
                },
                "not an IPv6 address",
            ),
            (
                Dhcpv6Lease {
                    duid: "00:zz:01".into(),
                    ..lease.clone()
                },
                "DUID",
            ),
            (
                Dhcpv6Lease {
                    duid: "00:01".into(),
                    ..lease.clone()
                },
                "3 to 130 hex pairs",
            ),
        ] {
            let err = bad.checked().unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn parses_dhcpv6_and_neighbour_events() {
        let Ok(Event::Dhcpv6LeaseAdded(l)) =
            "dhcpv6-lease-added=00:03:00:01:52:54:00:12:34:56,7,2001:db8::23,lan0,nas"
                .parse::<Event>()
        else {
            panic!("a DHCPv6 lease event")
        };
        assert_eq!(l.iaid, 7);
        assert_eq!(l.mac.as_deref(), Some("52:54:00:12:34:56"));
        let Ok(Event::NeighbourChanged(n)) =
            "neighbour-changed=2001:db8::9,02:00:00:00:00:0A,lan0,stale".parse::<Event>()
        else {
            panic!("a neighbour event")
        };
        assert_eq!(n.mac, "02:00:00:00:00:0a");
        assert_eq!(n.state, NeighbourState::Stale);
        for (text, needle) in [
            (
                "neighbour-added=2001:db8::9,02:00:00:00:00:0a,lan0,gone",
                "neighbour state",
            ),
            ("neighbour-added=2001:db8::9,lan0", "IP,MAC,IFACE"),
            ("dhcpv6-lease-added=00:01:02,x,2001:db8::1,lan0", "IAID"),
            ("dhcpv6-lease-added=00:01:02,1,10.0.0.1,lan0", "not an IPv6"),
        ] {
            let err = text.parse::<Event>().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn parses_events() {
        assert_eq!("startup".parse::<Event>(), Ok(Event::Startup));
        assert_eq!(
            "interface-up=lan0".parse::<Event>(),
            Ok(Event::InterfaceUp("lan0".into()))
        );
        assert_eq!(
            "address-added=lan0,192.168.0.9/24".parse::<Event>(),
            Ok(Event::AddressAdded {
                iface: "lan0".into(),
                address: "192.168.0.9/24".into()
            })
        );
        let Ok(Event::LeaseAdded(l)) =
            "lease-added=AA:BB:CC:DD:EE:FF,192.168.0.23,lan0,phone".parse::<Event>()
        else {
            panic!("lease event")
        };
        assert_eq!(l.mac, "aa:bb:cc:dd:ee:ff");
        assert_eq!(l.hostname.as_deref(), Some("phone"));
    }

    #[test]
    fn event_errors_name_the_problem() {
        for (text, needle) in [
            ("reboot", "unknown event kind"),
            ("interface-up", "one interface name"),
            ("address-added=lan0", "IFACE,ADDR/LEN"),
            (
                "lease-added=aa:bb:cc:dd:ee:ff,not-an-ip,lan0",
                "not an IPv4 or IPv6 address",
            ),
            ("lease-added=aa,10.0.0.2,lan0", "not six hex pairs"),
            (
                "lease-added=aa:bb:cc:dd:ee:zz,10.0.0.2,lan0",
                "not six hex pairs",
            ),
            (
                "lease-added=aa:bb:cc:dd:ee:ff,10.0.0.2,lan0,bad host",
                "host name",
            ),
            (
                "lease-added=aa:bb:cc:dd:ee:ff,10.0.0.2,averyveryverylongname",
                "at most 15 bytes",
            ),
            ("interface-up=a/b", "contains '/'"),
            ("address-added=lan0,10.0.0.1/33", "more than 32"),
            ("address-added=lan0,10.0.0.1", "ADDR/LEN"),
            ("startup=now", "takes no arguments"),
        ] {
            let err = text.parse::<Event>().unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(text), "{err}");
        }
    }

    #[test]
    fn lease_fields_are_normalized() {
        let Event::LeaseAdded(l) = "lease-added=AA-BB-CC-DD-EE-FF,10.0.0.2,lan0,nas"
            .parse::<Event>()
            .unwrap()
        else {
            panic!("a lease event")
        };
        assert_eq!(l.mac, "aa:bb:cc:dd:ee:ff");
        assert_eq!(l.hostname.as_deref(), Some("nas"));
    }

    #[test]
    fn state_json_fields_are_checked() {
        let mut state: WorldState = serde_json::from_str(
            r#"{"leases":[{"mac":"aa:bb:cc:dd:ee:ff","ip":"10.0.0.2","iface":"lan0"},
                          {"mac":"nope","ip":"10.0.0.3","iface":"lan0"}]}"#,
        )
        .unwrap();
        let err = state.check().unwrap_err();
        assert!(err.starts_with("leases[1]: MAC \"nope\""), "{err}");
        let mut state: WorldState =
            serde_json::from_str(r#"{"interfaces":[{"name":"lan0","addresses":["10.0.0.1/40"]}]}"#)
                .unwrap();
        assert!(state.check().unwrap_err().contains("interfaces[0]"));
    }

    #[test]
    fn state_json_rejects_unknown_fields() {
        let err = serde_json::from_str::<WorldState>(r#"{"interfaces":[{"name":"a","upp":true}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("upp"), "{err}");
    }

    // Fuzzing of the event and state parsers, which the control socket will
    // share: any input is an error or a checked value, never a panic. Short
    // by default; PROPTEST_CASES=100000 runs it longer.
    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        /// Text that often looks like an event: kinds, separators, fields.
        fn eventish() -> impl Strategy<Value = String> {
            let kind = prop::sample::select(vec![
                "startup",
                "config-changed",
                "interface-up",
                "interface-down",
                "address-added",
                "address-removed",
                "lease-added",
                "lease-renewed",
                "lease-expired",
                "dhcpv6-lease-added",
                "neighbour-changed",
                "reboot",
                "",
            ]);
            let field = prop_oneof![
                "[a-z0-9]{0,20}",
                "([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}",
                "[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,3})?",
                "[0-9a-f:]{2,40}(/[0-9]{1,3})?",
                ".{0,40}",
            ];
            (kind, prop::collection::vec(field, 0..6), any::<bool>()).prop_map(|(k, f, eq)| {
                if eq || !f.is_empty() {
                    format!("{k}={}", f.join(","))
                } else {
                    k.to_string()
                }
            })
        }

        fn checked_ok(e: &Event) -> bool {
            match e {
                Event::InterfaceUp(n) | Event::InterfaceDown(n) => fields::ifname(n).is_ok(),
                Event::AddressAdded { iface, address }
                | Event::AddressRemoved { iface, address } => {
                    fields::ifname(iface).is_ok() && fields::address_with_prefix(address).is_ok()
                }
                Event::LeaseAdded(l) | Event::LeaseRenewed(l) | Event::LeaseExpired(l) => {
                    l.clone().checked().as_ref() == Ok(l)
                }
                Event::Dhcpv6LeaseAdded(l)
                | Event::Dhcpv6LeaseRenewed(l)
                | Event::Dhcpv6LeaseExpired(l) => l.clone().checked().as_ref() == Ok(l),
                Event::NeighbourAdded(n)
                | Event::NeighbourChanged(n)
                | Event::NeighbourRemoved(n) => n.clone().checked().as_ref() == Ok(n),
                Event::Startup | Event::ConfigChanged => true,
            }
        }

        proptest! {
            #[test]
            fn event_parser_accepts_only_checked_events(text in eventish()) {
                if let Ok(event) = text.parse::<Event>() {
                    prop_assert!(checked_ok(&event), "{text:?} gave {event:?}");
                }
            }

            #[test]
            fn event_parser_never_panics_on_bytes(text in "\\PC{0,200}") {
                let _ = text.parse::<Event>();
            }

            #[test]
            fn state_json_is_checked_or_refused(text in "\\PC{0,300}", name in ".{0,30}", mac in ".{0,20}") {
                let _ = serde_json::from_str::<WorldState>(&text).map(|mut s| s.check());
                let json = serde_json::json!({
                    "interfaces": [{"name": name, "mac": mac, "addresses": [format!("{name}/24")]}],
                    "leases": [{"mac": mac, "ip": name, "iface": name}],
                });
                if let Ok(mut state) = serde_json::from_value::<WorldState>(json)
                    && state.check().is_ok()
                {
                    prop_assert!(fields::ifname(&state.interfaces[0].name).is_ok());
                    prop_assert!(state.leases[0].clone().checked().is_ok());
                }
            }
        }
    }
}
