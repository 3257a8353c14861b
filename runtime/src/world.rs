//! The world state policies see (interfaces, addresses, leases) and the
//! events that trigger evaluations: host-side types, their JSON form (for
//! `wasmwall eval --state`), the conversion to the WIT types, and reading the
//! interfaces of the current network namespace over rtnetlink.

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldState {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub leases: Vec<Lease>,
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
            features: self.features.to_wit(),
        }
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
    ConfigChanged,
}

/// The syntax of `--event`, for help texts and errors.
pub const EVENT_SYNTAX: &str = "startup | config-changed | interface-up=IFACE | interface-down=IFACE | \
address-added=IFACE,ADDR/LEN | address-removed=IFACE,ADDR/LEN | \
lease-added=MAC,IP,IFACE[,HOSTNAME] | lease-renewed=... | lease-expired=...";

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

#[cfg(test)]
mod tests {
    use super::*;

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
