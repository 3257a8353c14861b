//! What a policy is given: the [`WorldState`] (interfaces, addresses, DHCP
//! leases) and the [`Event`] that caused the evaluation, with look-ups over
//! them.
//!
//! The structs have public fields to read, and are `#[non_exhaustive]`: a
//! later contract can add fields without breaking a policy. Tests build
//! them with `new` and then set the fields they need.

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkInterface {
    /// Interface name, e.g. "eth0" (at most 15 bytes).
    pub name: String,
    /// Kernel interface index. It changes when an interface comes back:
    /// match rules on `name`, never on the index.
    pub index: u32,
    /// Administratively up and with carrier.
    pub up: bool,
    /// Hardware address as lower-case "aa:bb:cc:dd:ee:ff", if it has one.
    pub mac: Option<String>,
    /// Addresses with their prefix length, e.g. "192.168.0.9/24" or
    /// "fe80::1/64".
    pub addresses: Vec<String>,
}

impl NetworkInterface {
    /// An interface called `name`: index 0, down, no MAC, no addresses.
    pub fn new(name: impl Into<String>) -> Self {
        NetworkInterface {
            name: name.into(),
            index: 0,
            up: false,
            mac: None,
            addresses: Vec::new(),
        }
    }

    /// The interface's addresses without their prefix length.
    pub fn ips(&self) -> impl Iterator<Item = &str> {
        self.addresses
            .iter()
            .map(|a| a.split_once('/').map_or(a.as_str(), |(ip, _)| ip))
    }
}

/// A DHCP lease handed out by the local DHCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// Client hardware address, lower-case "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    /// Leased address, e.g. "192.168.0.23".
    pub ip: String,
    /// Host name the client sent, if any.
    pub hostname: Option<String>,
    /// Interface the lease was served on.
    pub iface: String,
    /// Expiry in seconds since the Unix epoch; `None` for an infinite lease.
    pub expires: Option<u64>,
}

impl Lease {
    /// A lease of `ip` to `mac` on `iface`: no host name, infinite.
    pub fn new(mac: impl Into<String>, ip: impl Into<String>, iface: impl Into<String>) -> Self {
        Lease {
            mac: mac.into(),
            ip: ip.into(),
            hostname: None,
            iface: iface.into(),
            expires: None,
        }
    }
}

/// Everything the runtime knows about the network when it calls the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorldState {
    /// Every interface of the network namespace the runtime manages, sorted
    /// by name.
    pub interfaces: Vec<NetworkInterface>,
    /// Current (not expired) DHCP leases, sorted by address.
    pub leases: Vec<Lease>,
}

impl WorldState {
    /// A state of these interfaces and leases.
    pub fn new(interfaces: Vec<NetworkInterface>, leases: Vec<Lease>) -> Self {
        WorldState { interfaces, leases }
    }

    /// The interface called `name`, if present.
    pub fn interface(&self, name: &str) -> Option<&NetworkInterface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The current lease of the host with this hostname, if any.
    pub fn lease_by_hostname(&self, hostname: &str) -> Option<&Lease> {
        self.leases
            .iter()
            .find(|l| l.hostname.as_deref() == Some(hostname))
    }

    /// The current lease of the host with this MAC address, if any.
    pub fn lease_by_mac(&self, mac: &str) -> Option<&Lease> {
        self.leases.iter().find(|l| l.mac.eq_ignore_ascii_case(mac))
    }
}

/// An address added to or removed from an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddressChange {
    /// Interface name.
    pub iface: String,
    /// Address with prefix length, e.g. "192.168.0.9/24".
    pub address: String,
}

impl AddressChange {
    /// `address` (with its prefix length) on `iface`.
    pub fn new(iface: impl Into<String>, address: impl Into<String>) -> Self {
        AddressChange {
            iface: iface.into(),
            address: address.into(),
        }
    }
}

/// Why the policy is being evaluated. The state passed with it is already
/// updated, and events that come together are evaluated once, with the last
/// of them: a policy must not count on seeing every event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The runtime started or (re)loaded this policy.
    Startup,
    /// The named interface came up.
    InterfaceUp(String),
    /// The named interface went down or disappeared.
    InterfaceDown(String),
    /// An address was added to an interface.
    AddressAdded(AddressChange),
    /// An address was removed from an interface.
    AddressRemoved(AddressChange),
    /// A new DHCP lease was handed out.
    LeaseAdded(Lease),
    /// A lease was renewed (its expiry or host name changed).
    LeaseRenewed(Lease),
    /// A lease expired or was released.
    LeaseExpired(Lease),
    /// The policy's configuration changed.
    ConfigChanged,
}
