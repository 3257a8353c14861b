//! What a policy is given: the [`WorldState`] (interfaces, addresses, DHCP
//! and DHCPv6 leases, neighbours, the kernel's optional features) and the [`Event`] that caused
//! the evaluation, with look-ups over them.
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

/// A DHCPv6 lease: an address handed out by the local DHCP server to a
/// client known by its DUID.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dhcpv6Lease {
    /// Leased address, e.g. "2001:db8:0:1::23".
    pub ip: String,
    /// The client's DUID, lower-case hex pairs joined by ':'. It stays the
    /// same across reboots and prefix changes.
    pub duid: String,
    /// The identity association the address belongs to.
    pub iaid: u32,
    /// A temporary address (IA_TA).
    pub temporary: bool,
    /// Host name the client sent, if any.
    pub hostname: Option<String>,
    /// The client's hardware address when known (from the DHCP server, or
    /// from a DUID that holds an Ethernet address).
    pub mac: Option<String>,
    /// Interface the lease was served on.
    pub iface: String,
    /// Expiry in seconds since the Unix epoch; `None` for an infinite lease.
    pub expires: Option<u64>,
}

impl Dhcpv6Lease {
    /// A lease of `ip` to the client `duid` (IA `iaid`) on `iface`: no
    /// host name, no MAC, not temporary, infinite.
    pub fn new(
        duid: impl Into<String>,
        iaid: u32,
        ip: impl Into<String>,
        iface: impl Into<String>,
    ) -> Self {
        Dhcpv6Lease {
            ip: ip.into(),
            duid: duid.into(),
            iaid,
            temporary: false,
            hostname: None,
            mac: None,
            iface: iface.into(),
            expires: None,
        }
    }
}

/// Reachability of a neighbour (the kernel's NUD states that count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NeighbourState {
    /// Confirmed reachable recently.
    Reachable,
    /// Not confirmed for a while.
    Stale,
    /// Waiting for a confirmation.
    Delay,
    /// Being asked.
    Probe,
    /// Set by hand; never expires.
    Permanent,
}

/// An entry of the kernel's neighbour table (ARP, IPv6 neighbour
/// discovery): a host that talked on a link, with the address it used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Neighbour {
    /// The neighbour's address; link-local ones included.
    pub ip: String,
    /// Its hardware address, lower-case "aa:bb:cc:dd:ee:ff".
    pub mac: String,
    /// Interface it was seen on.
    pub iface: String,
    /// Its state.
    pub state: NeighbourState,
}

impl Neighbour {
    /// `ip` at `mac` on `iface`, reachable.
    pub fn new(ip: impl Into<String>, mac: impl Into<String>, iface: impl Into<String>) -> Self {
        Neighbour {
            ip: ip.into(),
            mac: mac.into(),
            iface: iface.into(),
            state: NeighbourState::Reachable,
        }
    }
}

/// What this kernel can do beyond what every supported kernel can. A
/// policy offers a feature only where it works: the runtime refuses an
/// answer that needs one this kernel lacks, naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelFeatures {
    /// Flowtables (`flow add @ft`, CONFIG_NF_FLOW_TABLE).
    pub flowtables: bool,
    /// Interfaces whose driver can offload flows to hardware: a flowtable
    /// that offloads in hardware may list only these.
    pub hardware_offload: Vec<String>,
    /// Conntrack helpers the kernel has, by the name a
    /// [`CtHelper`](crate::CtHelper) gives: "ftp", "sip", "tftp", ...
    pub ct_helpers: Vec<String>,
}

impl KernelFeatures {
    /// No optional feature (what `WorldState::new` starts from).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the kernel has flowtables.
    pub fn has_flowtables(&self) -> bool {
        self.flowtables
    }

    /// Whether the kernel has the conntrack helper `helper` ("ftp").
    pub fn has_ct_helper(&self, helper: &str) -> bool {
        self.ct_helpers.iter().any(|h| h == helper)
    }

    /// Whether the interface can offload flows to hardware.
    pub fn can_offload_in_hardware(&self, iface: &str) -> bool {
        self.hardware_offload.iter().any(|i| i == iface)
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
    /// Current (not expired) DHCPv6 leases, sorted by address.
    pub dhcpv6_leases: Vec<Dhcpv6Lease>,
    /// The kernel's neighbour table, sorted by interface and address. An
    /// address a host stopped using stays until the kernel forgets it: the
    /// host look-ups ([`WorldState::host`]) keep those inside a prefix of
    /// the interface.
    pub neighbours: Vec<Neighbour>,
    /// The kernel's optional features.
    pub features: KernelFeatures,
}

impl WorldState {
    /// A state of these interfaces and leases, on a kernel without optional
    /// features (set `features` to give it some).
    pub fn new(interfaces: Vec<NetworkInterface>, leases: Vec<Lease>) -> Self {
        WorldState {
            interfaces,
            leases,
            dhcpv6_leases: Vec::new(),
            neighbours: Vec::new(),
            features: KernelFeatures::new(),
        }
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
    /// A new DHCPv6 lease was handed out.
    Dhcpv6LeaseAdded(Dhcpv6Lease),
    /// A DHCPv6 lease was renewed.
    Dhcpv6LeaseRenewed(Dhcpv6Lease),
    /// A DHCPv6 lease expired or was released.
    Dhcpv6LeaseExpired(Dhcpv6Lease),
    /// A host appeared in the neighbour table.
    NeighbourAdded(Neighbour),
    /// A neighbour's state or hardware address changed.
    NeighbourChanged(Neighbour),
    /// A neighbour left the table.
    NeighbourRemoved(Neighbour),
    /// The policy's configuration changed.
    ConfigChanged,
}
