//! Hosts by who they are, not by where they are: a [`HostId`] (a MAC, a
//! DUID or a host name, as a config names a host) and the look-ups that
//! give a host's current addresses of both families from the DHCP leases,
//! the DHCPv6 leases and the neighbour table ([`Hosts`],
//! [`WorldState::host`]).
//!
//! An address counts while it lies inside a prefix of an address the
//! router has on the interface it was seen on: when the LAN's /64 is
//! replaced, the neighbour entries and leases of the old prefix drop out
//! at once, though the kernel and the DHCP server still hold them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::world::WorldState;

/// The longest host name a DHCP client can send (a DNS name's length).
const MAX_HOSTNAME: usize = 253;

/// A DUID is its 2-byte type and at most 128 bytes more (RFC 8415); the
/// shortest (DUID-EN: type, enterprise number, one byte) has 7.
const DUID_BYTES: std::ops::RangeInclusive<usize> = 7..=130;

/// A host as a config names it.
///
/// [`HostId::parse`] tells them apart by their form: six hex pairs joined
/// by ':' are a MAC, more of them a DUID, anything else a host name. All
/// three are kept in lower case: MACs and DUIDs are compared as bytes,
/// host names without regard to case.
///
/// ```
/// use wasmwall_sdk::HostId;
/// assert_eq!(HostId::parse("52:54:00:AB:CD:EF")?, HostId::Mac("52:54:00:ab:cd:ef".into()));
/// assert_eq!(
///     HostId::parse("00:03:00:01:52:54:00:12:34:56")?,
///     HostId::Duid("00:03:00:01:52:54:00:12:34:56".into())
/// );
/// assert_eq!(HostId::parse("NAS")?, HostId::Name("nas".into()));
/// assert!(HostId::parse("n@s").is_err());
/// # Ok::<(), wasmwall_sdk::HostIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HostId {
    /// A hardware address, lower-case "aa:bb:cc:dd:ee:ff".
    Mac(String),
    /// A DHCPv6 client's DUID, lower-case hex pairs joined by ':'.
    Duid(String),
    /// A DHCP host name, in lower case.
    Name(String),
}

/// Why a text names no host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostIdError {
    /// The text is empty.
    Empty,
    /// A host name longer than 253 bytes.
    TooLong,
    /// Neither hex pairs of a MAC or a DUID nor a host name.
    NotAHost,
}

impl fmt::Display for HostIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostIdError::Empty => "is empty",
            HostIdError::TooLong => "is longer than 253 bytes",
            HostIdError::NotAHost => {
                "is neither a MAC (six hex pairs), a DUID (7 to 130 hex pairs) nor a host name (letters, digits, '-', '_', '.')"
            }
        })
    }
}

impl std::error::Error for HostIdError {}

impl HostId {
    /// The host `text` names: six hex pairs joined by ':' are a MAC, 7 to
    /// 130 a DUID; letters, digits, '-', '_' and '.' a host name.
    pub fn parse(text: &str) -> Result<HostId, HostIdError> {
        if text.is_empty() {
            return Err(HostIdError::Empty);
        }
        if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            let hex = pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            let lower = text.to_ascii_lowercase();
            return match pairs.len() {
                6 if hex => Ok(HostId::Mac(lower)),
                n if hex && DUID_BYTES.contains(&n) => Ok(HostId::Duid(lower)),
                _ => Err(HostIdError::NotAHost),
            };
        }
        if text.len() > MAX_HOSTNAME {
            return Err(HostIdError::TooLong);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(HostIdError::NotAHost);
        }
        Ok(HostId::Name(text.to_ascii_lowercase()))
    }
}

impl FromStr for HostId {
    type Err = HostIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HostId::parse(text)
    }
}

/// The text of the identity, as [`HostId::parse`] reads it back.
impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostId::Mac(s) | HostId::Duid(s) | HostId::Name(s) => f.write_str(s),
        }
    }
}

/// Where a host's address was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AddressSource {
    /// A DHCP (IPv4) lease.
    Lease,
    /// A DHCPv6 lease.
    Dhcpv6Lease,
    /// The kernel's neighbour table (SLAAC, privacy and static addresses,
    /// and link-local ones, are known only there).
    Neighbour,
}

/// One current address of a host. Ordered by address (IPv4 first), then
/// interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct HostAddress {
    /// The address.
    pub ip: IpAddr,
    /// The interface it was seen on.
    pub iface: String,
    /// Where it was learnt, sorted, each once.
    pub sources: Vec<AddressSource>,
}

impl HostAddress {
    /// `ip` on `iface`, learnt from `sources`.
    pub fn new(
        ip: IpAddr,
        iface: impl Into<String>,
        sources: impl IntoIterator<Item = AddressSource>,
    ) -> Self {
        let sources: BTreeSet<AddressSource> = sources.into_iter().collect();
        HostAddress {
            ip,
            iface: iface.into(),
            sources: sources.into_iter().collect(),
        }
    }

    /// Whether it reaches beyond its link: not link-local (fe80::/10,
    /// 169.254.0.0/16), multicast, loopback or unspecified. Unique local
    /// IPv6 addresses (fd00::/8) and private IPv4 ones count.
    pub fn is_global(&self) -> bool {
        is_global(self.ip)
    }

    /// Whether it was learnt from `source` (among others, perhaps).
    pub fn came_from(&self, source: AddressSource) -> bool {
        self.sources.contains(&source)
    }
}

fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_link_local()
                || a.is_multicast()
                || a.is_loopback()
                || a.is_unspecified()
                || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            !(link_local || a.is_multicast() || a.is_loopback() || a.is_unspecified())
        }
    }
}

/// The leases and neighbours of one hardware address, by index.
#[derive(Default)]
struct ByMac {
    leases: Vec<usize>,
    dhcpv6: Vec<usize>,
    neighbours: Vec<usize>,
}

/// The leases of one host name, by index.
#[derive(Default)]
struct ByName {
    leases: Vec<usize>,
    dhcpv6: Vec<usize>,
}

/// The world state's hosts, indexed once for many look-ups: a policy that
/// looks up every host its config names builds one and asks it each time,
/// at the cost of one pass over the state however many hosts it names.
///
/// Identities link across the sources. A host name gives its DHCP leases
/// and DHCPv6 leases, and so their MACs and DUIDs; a MAC gives its DHCP
/// leases, its neighbour entries and the DHCPv6 leases that carry it (and
/// so their DUIDs); a DUID gives its DHCPv6 leases (and so their MACs).
/// Each MAC and DUID found adds what it gives, until none is new.
///
/// ```
/// use wasmwall_sdk::{
///     AddressSource, Dhcpv6Lease, HostId, Hosts, Lease, Neighbour, NetworkInterface, WorldState,
/// };
/// let mut lan = NetworkInterface::new("lan0");
/// lan.addresses = vec!["192.168.1.1/24".into(), "2001:db8:0:1::1/64".into(), "fe80::1/64".into()];
/// let mut lease = Lease::new("52:54:00:12:34:56", "192.168.1.23", "lan0");
/// lease.hostname = Some("nas".into());
/// let mut state = WorldState::new(vec![lan], vec![lease]);
/// // Its SLAAC address, known only from the neighbour table, and one of a
/// // prefix the LAN no longer has.
/// state.neighbours = vec![
///     Neighbour::new("2001:db8:0:1:5054:ff:fe12:3456", "52:54:00:12:34:56", "lan0"),
///     Neighbour::new("2001:db8:0:9:5054:ff:fe12:3456", "52:54:00:12:34:56", "lan0"),
///     Neighbour::new("fe80::5054:ff:fe12:3456", "52:54:00:12:34:56", "lan0"),
/// ];
///
/// let hosts = Hosts::new(&state);
/// let nas = HostId::parse("nas")?;
/// let all: Vec<String> = hosts.addresses(&nas).iter().map(|a| a.ip.to_string()).collect();
/// assert_eq!(all, ["192.168.1.23", "2001:db8:0:1:5054:ff:fe12:3456", "fe80::5054:ff:fe12:3456"]);
/// let global = hosts.global_ipv6(&nas);
/// assert_eq!(global.len(), 1);
/// assert!(global[0].came_from(AddressSource::Neighbour));
/// # Ok::<(), wasmwall_sdk::HostIdError>(())
/// ```
pub struct Hosts<'s> {
    state: &'s WorldState,
    /// Each interface's addresses as (network, prefix length).
    prefixes: HashMap<&'s str, Vec<(IpAddr, u8)>>,
    by_mac: HashMap<String, ByMac>,
    by_duid: HashMap<String, Vec<usize>>,
    by_name: HashMap<String, ByName>,
}

impl<'s> Hosts<'s> {
    /// Indexes `state`'s leases, DHCPv6 leases and neighbours.
    pub fn new(state: &'s WorldState) -> Self {
        let mut prefixes: HashMap<&str, Vec<(IpAddr, u8)>> = HashMap::new();
        for iface in &state.interfaces {
            let nets = prefixes.entry(iface.name.as_str()).or_default();
            nets.extend(iface.addresses.iter().filter_map(|a| prefix_of(a)));
        }
        let mut by_mac: HashMap<String, ByMac> = HashMap::new();
        let mut by_duid: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_name: HashMap<String, ByName> = HashMap::new();
        for (i, l) in state.leases.iter().enumerate() {
            by_mac
                .entry(l.mac.to_ascii_lowercase())
                .or_default()
                .leases
                .push(i);
            if let Some(name) = &l.hostname {
                by_name
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .leases
                    .push(i);
            }
        }
        for (i, l) in state.dhcpv6_leases.iter().enumerate() {
            by_duid
                .entry(l.duid.to_ascii_lowercase())
                .or_default()
                .push(i);
            if let Some(mac) = &l.mac {
                by_mac
                    .entry(mac.to_ascii_lowercase())
                    .or_default()
                    .dhcpv6
                    .push(i);
            }
            if let Some(name) = &l.hostname {
                by_name
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .dhcpv6
                    .push(i);
            }
        }
        for (i, n) in state.neighbours.iter().enumerate() {
            by_mac
                .entry(n.mac.to_ascii_lowercase())
                .or_default()
                .neighbours
                .push(i);
        }
        Hosts {
            state,
            prefixes,
            by_mac,
            by_duid,
            by_name,
        }
    }

    /// The current addresses of `host`, both families, link-local ones
    /// included: sorted by address (IPv4 first) and interface, each
    /// address of an interface once with every source it came from.
    pub fn addresses(&self, host: &HostId) -> Vec<HostAddress> {
        let mut all = self.known_addresses(host);
        all.retain(|a| self.is_current(a));
        all
    }

    /// Every address the leases, the DHCPv6 leases and the neighbour table
    /// hold for `host`, current or not (outside every prefix of their
    /// interface, or on an interface that is gone), in the same order as
    /// [`Hosts::addresses`]. For a policy that keeps an older rule of its
    /// own, such as "a DHCP lease counts until it expires".
    pub fn known_addresses(&self, host: &HostId) -> Vec<HostAddress> {
        let st = self.state;
        let mut leases: BTreeSet<usize> = BTreeSet::new();
        let mut dhcpv6: BTreeSet<usize> = BTreeSet::new();
        let mut neighbours: BTreeSet<usize> = BTreeSet::new();
        let mut macs: BTreeSet<String> = BTreeSet::new();
        let mut duids: BTreeSet<String> = BTreeSet::new();
        let mut todo_macs: Vec<String> = Vec::new();
        let mut todo_duids: Vec<String> = Vec::new();
        match host {
            HostId::Mac(m) => todo_macs.push(m.to_ascii_lowercase()),
            HostId::Duid(d) => todo_duids.push(d.to_ascii_lowercase()),
            HostId::Name(n) => {
                if let Some(found) = self.by_name.get(&n.to_ascii_lowercase()) {
                    for &i in &found.leases {
                        leases.insert(i);
                        todo_macs.push(st.leases[i].mac.to_ascii_lowercase());
                    }
                    for &i in &found.dhcpv6 {
                        dhcpv6.insert(i);
                        todo_duids.push(st.dhcpv6_leases[i].duid.to_ascii_lowercase());
                        todo_macs.extend(
                            st.dhcpv6_leases[i]
                                .mac
                                .as_deref()
                                .map(str::to_ascii_lowercase),
                        );
                    }
                }
            }
        }
        // Follow the links until no MAC or DUID is new.
        while !todo_macs.is_empty() || !todo_duids.is_empty() {
            for mac in std::mem::take(&mut todo_macs) {
                if !macs.insert(mac.clone()) {
                    continue;
                }
                let Some(found) = self.by_mac.get(&mac) else {
                    continue;
                };
                leases.extend(&found.leases);
                neighbours.extend(&found.neighbours);
                for &i in &found.dhcpv6 {
                    dhcpv6.insert(i);
                    todo_duids.push(st.dhcpv6_leases[i].duid.to_ascii_lowercase());
                }
            }
            for duid in std::mem::take(&mut todo_duids) {
                if !duids.insert(duid.clone()) {
                    continue;
                }
                for &i in self.by_duid.get(&duid).map_or(&[][..], Vec::as_slice) {
                    dhcpv6.insert(i);
                    todo_macs.extend(
                        st.dhcpv6_leases[i]
                            .mac
                            .as_deref()
                            .map(str::to_ascii_lowercase),
                    );
                }
            }
        }

        let found = leases
            .into_iter()
            .map(|i| (&st.leases[i].ip, &st.leases[i].iface, AddressSource::Lease))
            .chain(dhcpv6.into_iter().map(|i| {
                let l = &st.dhcpv6_leases[i];
                (&l.ip, &l.iface, AddressSource::Dhcpv6Lease)
            }))
            .chain(neighbours.into_iter().map(|i| {
                let n = &st.neighbours[i];
                (&n.ip, &n.iface, AddressSource::Neighbour)
            }));
        let mut merged: BTreeMap<(IpAddr, &str), BTreeSet<AddressSource>> = BTreeMap::new();
        for (ip, iface, source) in found {
            let Ok(ip) = ip.parse::<IpAddr>() else {
                continue;
            };
            merged.entry((ip, iface)).or_default().insert(source);
        }
        merged
            .into_iter()
            .map(|((ip, iface), sources)| HostAddress::new(ip, iface, sources))
            .collect()
    }

    /// The current addresses of `host` that reach beyond their link
    /// ([`HostAddress::is_global`]), both families, in the same order.
    pub fn global_addresses(&self, host: &HostId) -> Vec<HostAddress> {
        let mut all = self.addresses(host);
        all.retain(HostAddress::is_global);
        all
    }

    /// The current IPv6 addresses of `host` beyond the link: what a
    /// pinhole from the internet opens to.
    pub fn global_ipv6(&self, host: &HostId) -> Vec<HostAddress> {
        let mut all = self.global_addresses(host);
        all.retain(|a| a.ip.is_ipv6());
        all
    }

    /// Whether `address` lies inside a prefix of an address the router
    /// has on its interface: what makes it current.
    pub fn is_current(&self, address: &HostAddress) -> bool {
        self.prefixes
            .get(address.iface.as_str())
            .is_some_and(|nets| {
                nets.iter()
                    .any(|&(net, len)| contains(net, len, address.ip))
            })
    }
}

impl WorldState {
    /// The hosts of this state, indexed for look-ups ([`Hosts`]).
    pub fn hosts(&self) -> Hosts<'_> {
        Hosts::new(self)
    }

    /// The current addresses of `host`, both families ([`Hosts::addresses`];
    /// for many hosts, index once with [`WorldState::hosts`]).
    ///
    /// ```
    /// use wasmwall_sdk::{Dhcpv6Lease, HostId, NetworkInterface, WorldState};
    /// let mut lan = NetworkInterface::new("lan0");
    /// lan.addresses = vec!["2001:db8:0:1::1/64".into()];
    /// let mut state = WorldState::new(vec![lan], vec![]);
    /// state.dhcpv6_leases = vec![Dhcpv6Lease::new("00:03:00:01:52:54:00:12:34:56", 1, "2001:db8:0:1::23", "lan0")];
    /// let host = HostId::parse("00:03:00:01:52:54:00:12:34:56")?;
    /// assert_eq!(state.host(&host)[0].ip.to_string(), "2001:db8:0:1::23");
    /// # Ok::<(), wasmwall_sdk::HostIdError>(())
    /// ```
    pub fn host(&self, host: &HostId) -> Vec<HostAddress> {
        self.hosts().addresses(host)
    }

    /// The current addresses of `host` beyond the link, both families
    /// ([`Hosts::global_addresses`]).
    pub fn host_global(&self, host: &HostId) -> Vec<HostAddress> {
        self.hosts().global_addresses(host)
    }
}

/// "192.168.1.1/24" as its address and prefix length; an address without
/// a length is a prefix of the whole address.
fn prefix_of(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?),
        None => {
            let ip = text.parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Whether `ip` is in `net`/`len` (same family, same leading `len` bits).
fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    let same = |a: u128, b: u128, width: u32| {
        let shift = width - u32::from(len);
        a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => same(u32::from(n).into(), u32::from(a).into(), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => same(n.into(), a.into(), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Dhcpv6Lease, Lease, Neighbour, NeighbourState, NetworkInterface};

    const NAS_MAC: &str = "52:54:00:12:34:56";
    const NAS_DUID: &str = "00:03:00:01:52:54:00:12:34:56";

    fn id(text: &str) -> HostId {
        HostId::parse(text).unwrap()
    }

    fn iface(name: &str, addresses: &[&str]) -> NetworkInterface {
        let mut i = NetworkInterface::new(name);
        i.up = true;
        i.addresses = addresses.iter().map(|a| a.to_string()).collect();
        i
    }

    fn lease(ip: &str, mac: &str, name: Option<&str>) -> Lease {
        let mut l = Lease::new(mac, ip, "lan0");
        l.hostname = name.map(str::to_string);
        l
    }

    fn v6(ip: &str, duid: &str, mac: Option<&str>, name: Option<&str>) -> Dhcpv6Lease {
        let mut l = Dhcpv6Lease::new(duid, 1, ip, "lan0");
        l.mac = mac.map(str::to_string);
        l.hostname = name.map(str::to_string);
        l
    }

    /// A LAN on 192.168.1.0/24 and 2001:db8:0:1::/64 (and its link-local
    /// prefix), a guest network, a WAN.
    fn state() -> WorldState {
        WorldState::new(
            vec![
                iface("guest0", &["192.168.2.1/24", "2001:db8:0:2::1/64"]),
                iface(
                    "lan0",
                    &["192.168.1.1/24", "2001:db8:0:1::1/64", "fe80::1/64"],
                ),
                iface("wan0", &["203.0.113.1/24"]),
            ],
            vec![],
        )
    }

    fn ips(found: &[HostAddress]) -> Vec<String> {
        found.iter().map(|a| a.ip.to_string()).collect()
    }

    #[test]
    fn a_text_is_a_mac_a_duid_or_a_host_name_by_its_form() {
        assert_eq!(
            id("52:54:00:AB:cd:EF"),
            HostId::Mac("52:54:00:ab:cd:ef".into())
        );
        assert_eq!(id(NAS_DUID), HostId::Duid(NAS_DUID.into()));
        let seven = "00:02:00:00:00:09:01";
        assert_eq!(id(seven), HostId::Duid(seven.into()));
        let longest = vec!["ab"; 130].join(":");
        assert_eq!(id(&longest), HostId::Duid(longest.clone()));
        assert_eq!(
            id("Kid-Tablet.home_1"),
            HostId::Name("kid-tablet.home_1".into())
        );
        // A name of hex digits without ':' is a name.
        assert_eq!(id("cafe"), HostId::Name("cafe".into()));
        // MAC-like text without ':' is a (valid) host name.
        assert_eq!(
            id("52-54-00-12-34-56"),
            HostId::Name("52-54-00-12-34-56".into())
        );
        for (text, err) in [
            ("", HostIdError::Empty),
            ("n@s", HostIdError::NotAHost),
            ("has space", HostIdError::NotAHost),
            ("52:54:00:12:34", HostIdError::NotAHost),
            ("52:54:00:12:34:5g", HostIdError::NotAHost),
            ("52:54:00:12:34:567", HostIdError::NotAHost),
            ("nas:1", HostIdError::NotAHost),
        ] {
            assert_eq!(HostId::parse(text), Err(err), "{text:?}");
        }
        let too_many = vec!["ab"; 131].join(":");
        assert_eq!(HostId::parse(&too_many), Err(HostIdError::NotAHost));
        assert_eq!(HostId::parse(&"a".repeat(254)), Err(HostIdError::TooLong));
        assert!(HostId::parse(&"a".repeat(253)).is_ok());
        // Read back from its text, through FromStr too.
        for text in ["52:54:00:ab:cd:ef", NAS_DUID, "nas"] {
            assert_eq!(id(text).to_string(), text);
            assert_eq!(text.parse::<HostId>(), Ok(id(text)));
        }
        assert!(HostIdError::NotAHost.to_string().contains("neither a MAC"));
    }

    #[test]
    fn a_host_name_gives_its_leases_and_what_their_macs_and_duids_give() {
        let mut st = state();
        st.leases = vec![
            lease("192.168.1.23", NAS_MAC, Some("NAS")),
            lease("192.168.1.30", "02:00:00:00:00:30", Some("tv")),
        ];
        st.dhcpv6_leases = vec![
            // Named, with no MAC: its DUID links its other lease.
            v6("2001:db8:0:1::23", NAS_DUID, None, Some("nas")),
            v6("2001:db8:0:1::24", NAS_DUID, None, None),
            // Someone else's.
            v6(
                "2001:db8:0:1::30",
                "00:01:00:01:aa:bb:cc:dd:02:00:00:00:00:30",
                None,
                Some("tv"),
            ),
        ];
        st.neighbours = vec![
            Neighbour::new("192.168.1.23", NAS_MAC, "lan0"),
            Neighbour::new("2001:db8:0:1:5054:ff:fe12:3456", NAS_MAC, "lan0"),
            Neighbour::new("fe80::5054:ff:fe12:3456", NAS_MAC, "lan0"),
            Neighbour::new("2001:db8:0:1::30", "02:00:00:00:00:30", "lan0"),
        ];
        let found = st.host(&id("nas"));
        assert_eq!(
            found,
            [
                HostAddress::new(
                    "192.168.1.23".parse().unwrap(),
                    "lan0",
                    [AddressSource::Lease, AddressSource::Neighbour]
                ),
                HostAddress::new(
                    "2001:db8:0:1::23".parse().unwrap(),
                    "lan0",
                    [AddressSource::Dhcpv6Lease]
                ),
                HostAddress::new(
                    "2001:db8:0:1::24".parse().unwrap(),
                    "lan0",
                    [AddressSource::Dhcpv6Lease]
                ),
                HostAddress::new(
                    "2001:db8:0:1:5054:ff:fe12:3456".parse().unwrap(),
                    "lan0",
                    [AddressSource::Neighbour]
                ),
                HostAddress::new(
                    "fe80::5054:ff:fe12:3456".parse().unwrap(),
                    "lan0",
                    [AddressSource::Neighbour]
                ),
            ]
        );
        assert!(found[0].came_from(AddressSource::Neighbour));
        assert!(!found[1].came_from(AddressSource::Neighbour));
        // Global ones: the link-local address goes.
        assert_eq!(
            ips(&st.host_global(&id("nas"))),
            [
                "192.168.1.23",
                "2001:db8:0:1::23",
                "2001:db8:0:1::24",
                "2001:db8:0:1:5054:ff:fe12:3456"
            ]
        );
        assert_eq!(
            ips(&st.hosts().global_ipv6(&id("NAS"))),
            [
                "2001:db8:0:1::23",
                "2001:db8:0:1::24",
                "2001:db8:0:1:5054:ff:fe12:3456"
            ]
        );
        assert!(st.host(&id("nobody")).is_empty());
    }

    #[test]
    fn a_mac_gives_its_neighbours_and_the_dhcpv6_leases_that_carry_it() {
        let mut st = state();
        st.dhcpv6_leases = vec![
            v6("2001:db8:0:1::23", NAS_DUID, Some(NAS_MAC), None),
            // The same DUID, another IA without the MAC: linked by the DUID.
            v6("2001:db8:0:1::99", NAS_DUID, None, None),
            v6(
                "2001:db8:0:1::77",
                "00:03:00:01:02:00:00:00:00:77",
                None,
                None,
            ),
        ];
        let mut stale = Neighbour::new(
            "2001:db8:0:1:5054:ff:fe12:3456",
            "52:54:00:12:34:56",
            "lan0",
        );
        stale.state = NeighbourState::Stale;
        st.neighbours = vec![
            stale,
            Neighbour::new("2001:db8:0:2::5", "52:54:00:12:34:56", "guest0"),
            Neighbour::new("2001:db8:0:1::77", "02:00:00:00:00:77", "lan0"),
        ];
        let found = st.host(&id("52:54:00:12:34:56"));
        assert_eq!(
            ips(&found),
            [
                "2001:db8:0:1::23",
                "2001:db8:0:1::99",
                "2001:db8:0:1:5054:ff:fe12:3456",
                "2001:db8:0:2::5"
            ]
        );
        assert_eq!(found[3].iface, "guest0");
        // A MAC in capitals, in the config or in the state, is the same.
        assert_eq!(st.host(&HostId::Mac("52:54:00:12:34:56".into())), found);
        st.neighbours[0].mac = "52:54:00:12:34:56".to_uppercase();
        assert_eq!(st.host(&id("52:54:00:12:34:56")), found);
    }

    #[test]
    fn a_duid_gives_its_leases_and_what_their_macs_give() {
        let mut st = state();
        st.leases = vec![lease("192.168.1.23", NAS_MAC, Some("nas"))];
        st.dhcpv6_leases = vec![
            v6("2001:db8:0:1::23", NAS_DUID, Some(NAS_MAC), None),
            v6(
                "2001:db8:0:1::30",
                "00:03:00:01:02:00:00:00:00:30",
                None,
                None,
            ),
        ];
        st.neighbours = vec![Neighbour::new(
            "2001:db8:0:1:5054:ff:fe12:3456",
            NAS_MAC,
            "lan0",
        )];
        assert_eq!(
            ips(&st.host(&id(&NAS_DUID.to_uppercase()))),
            [
                "192.168.1.23",
                "2001:db8:0:1::23",
                "2001:db8:0:1:5054:ff:fe12:3456"
            ]
        );
        // Without a MAC in the lease, the DUID gives its lease alone.
        st.dhcpv6_leases[0].mac = None;
        assert_eq!(ips(&st.host(&id(NAS_DUID))), ["2001:db8:0:1::23"]);
    }

    #[test]
    fn addresses_outside_the_prefixes_of_their_interface_drop_out() {
        let mut st = state();
        st.leases = vec![
            lease("192.168.1.23", NAS_MAC, Some("nas")),
            // Served on lan0, outside its prefix.
            lease("10.9.9.9", NAS_MAC, Some("nas")),
        ];
        st.dhcpv6_leases = vec![v6("2001:db8:0:9::23", NAS_DUID, None, Some("nas"))];
        st.neighbours = vec![
            // The replaced prefix, still in the kernel's table.
            Neighbour::new("2001:db8:0:9:5054:ff:fe12:3456", NAS_MAC, "lan0"),
            Neighbour::new("2001:db8:0:1:5054:ff:fe12:3456", NAS_MAC, "lan0"),
            // lan0's prefix, but seen on an interface without it.
            Neighbour::new("2001:db8:0:1::5", NAS_MAC, "wan0"),
            // An interface that is gone.
            Neighbour::new("2001:db8:0:1::6", NAS_MAC, "gone0"),
            Neighbour::new("not an address", NAS_MAC, "lan0"),
        ];
        assert_eq!(
            ips(&st.host(&id("nas"))),
            ["192.168.1.23", "2001:db8:0:1:5054:ff:fe12:3456"]
        );
        // Known, all of them (but the one that is no address), with what
        // makes them current or not.
        let hosts = st.hosts();
        let known = hosts.known_addresses(&id("nas"));
        assert_eq!(
            ips(&known),
            [
                "10.9.9.9",
                "192.168.1.23",
                "2001:db8:0:1::5",
                "2001:db8:0:1::6",
                "2001:db8:0:1:5054:ff:fe12:3456",
                "2001:db8:0:9::23",
                "2001:db8:0:9:5054:ff:fe12:3456"
            ]
        );
        let current: Vec<bool> = known.iter().map(|a| hosts.is_current(a)).collect();
        assert_eq!(current, [false, true, false, false, true, false, false]);
        // The new prefix arrives on lan0 beside the old: the old
        // addresses count again while the router has both.
        st.interfaces[1].addresses.push("2001:db8:0:9::1/64".into());
        assert_eq!(
            ips(&st.host(&id("nas"))),
            [
                "192.168.1.23",
                "2001:db8:0:1:5054:ff:fe12:3456",
                "2001:db8:0:9::23",
                "2001:db8:0:9:5054:ff:fe12:3456"
            ]
        );
    }

    #[test]
    fn the_order_is_the_same_whatever_the_order_of_the_state() {
        let mut st = state();
        st.leases = vec![
            lease("192.168.1.40", NAS_MAC, Some("nas")),
            lease("192.168.1.4", "02:00:00:00:00:04", Some("nas")),
        ];
        st.neighbours = vec![
            Neighbour::new("2001:db8:0:1::b", NAS_MAC, "lan0"),
            Neighbour::new("2001:db8:0:1::a", "02:00:00:00:00:04", "lan0"),
            Neighbour::new("2001:db8:0:2::a", "02:00:00:00:00:04", "guest0"),
        ];
        let a = st.host(&id("nas"));
        assert_eq!(
            ips(&a),
            [
                "192.168.1.4",
                "192.168.1.40",
                "2001:db8:0:1::a",
                "2001:db8:0:1::b",
                "2001:db8:0:2::a"
            ]
        );
        st.leases.reverse();
        st.neighbours.reverse();
        assert_eq!(st.host(&id("nas")), a);
    }

    #[test]
    fn global_means_beyond_the_link() {
        for (ip, global) in [
            ("192.168.1.2", true),
            ("203.0.113.9", true),
            ("169.254.1.1", false),
            ("224.0.0.1", false),
            ("127.0.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("2001:db8::1", true),
            ("fd00::1", true),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", true),
            ("ff02::1", false),
            ("::1", false),
            ("::", false),
        ] {
            let a = HostAddress::new(ip.parse().unwrap(), "lan0", []);
            assert_eq!(a.is_global(), global, "{ip}");
        }
    }

    #[test]
    fn prefixes_contain_what_they_should() {
        let p = |t: &str| prefix_of(t).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let (net, len) = p("192.168.1.1/24");
        assert!(contains(net, len, ip("192.168.1.200")));
        assert!(!contains(net, len, ip("192.168.2.1")));
        assert!(!contains(net, len, ip("::ffff:192.168.1.2")));
        let (net, len) = p("2001:db8:0:1::1/64");
        assert!(contains(net, len, ip("2001:db8:0:1:ffff::1")));
        assert!(!contains(net, len, ip("2001:db8:0:2::1")));
        // /0 holds every address of its family; a bare address only itself.
        let (net, len) = p("::/0");
        assert!(contains(net, len, ip("fe80::1")));
        assert_eq!(p("10.0.0.1"), (ip("10.0.0.1"), 32));
        let (net, len) = p("2001:db8::1");
        assert!(contains(net, len, ip("2001:db8::1")));
        assert!(!contains(net, len, ip("2001:db8::2")));
        assert_eq!(prefix_of("10.0.0.1/33"), None);
        assert_eq!(prefix_of("x/24"), None);
    }
}
