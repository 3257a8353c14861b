//! The named objects of a ruleset that rules refer to: sets, maps,
//! counters, limits, conntrack helpers and flowtables. Names are unique
//! within the policy across all of them (letters, digits, '_' and '-', at
//! most 32 bytes).

use crate::action::{MapData, MapElement};
use crate::packet::{KeyType, Transport, Value};
use crate::rate::RateLimit;

/// Elements of a named set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetElements {
    /// IPv4 addresses, e.g. "192.168.0.2".
    Ipv4(Vec<String>),
    /// IPv6 addresses.
    Ipv6(Vec<String>),
    /// Port numbers (1-65535).
    Ports(Vec<u16>),
    /// Elements of any key, one value per key type each: what
    /// [`NamedSet::keyed`] makes.
    Keyed {
        /// One type, or several for a concatenation.
        key: Vec<KeyType>,
        /// The elements.
        elements: Vec<Vec<Value>>,
    },
}

impl SetElements {
    /// The key and the elements, whatever the form.
    pub(crate) fn into_keyed(self) -> (Vec<KeyType>, Vec<Vec<Value>>) {
        let addresses = |key, addrs: Vec<String>| {
            (
                vec![key],
                addrs.into_iter().map(|a| vec![Value::Address(a)]).collect(),
            )
        };
        match self {
            SetElements::Ipv4(addrs) => addresses(KeyType::Ipv4Addr, addrs),
            SetElements::Ipv6(addrs) => addresses(KeyType::Ipv6Addr, addrs),
            SetElements::Ports(ports) => (
                vec![KeyType::InetService],
                ports.into_iter().map(|p| vec![Value::from(p)]).collect(),
            ),
            SetElements::Keyed { key, elements } => (key, elements),
        }
    }
}

/// A named set that rules test membership of. Per-host data (leases,
/// allowed clients) belongs in sets: changing an element rewrites no rule.
///
/// ```
/// use wasmwall_sdk::{Field, IpFamily, KeyType, NamedSet, Rule, Transport, Value};
/// // Which LAN hosts may be reached on which port, one element each.
/// let open = NamedSet::keyed("open", [KeyType::Ipv4Addr, KeyType::InetService])
///     .element([Value::address("192.168.1.10"), Value::from(80u16)])
///     .element([Value::address("192.168.1.11"), Value::from(22u16)]);
/// let rule = Rule::new()
///     .in_set([Field::Daddr(IpFamily::V4), Field::Dport(Transport::Tcp)], "open")
///     .accept();
/// // Prefixes and ranges need `intervals`.
/// let bogons = NamedSet::ipv4("bogons", ["10.0.0.0/8", "192.168.0.0/16"]).intervals();
/// # let _ = (open, rule, bogons);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSet {
    pub(crate) name: String,
    pub(crate) elements: SetElements,
    pub(crate) intervals: bool,
    pub(crate) timeout: Option<u32>,
    pub(crate) dynamic: bool,
    pub(crate) size: Option<u32>,
}

impl NamedSet {
    /// A set of IPv4 addresses.
    pub fn ipv4<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(
            name,
            SetElements::Ipv4(addrs.into_iter().map(Into::into).collect()),
        )
    }

    /// A set of IPv6 addresses.
    pub fn ipv6<S: Into<String>>(
        name: impl Into<String>,
        addrs: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(
            name,
            SetElements::Ipv6(addrs.into_iter().map(Into::into).collect()),
        )
    }

    /// A set of ports.
    pub fn ports(name: impl Into<String>, ports: impl IntoIterator<Item = u16>) -> Self {
        Self::new(name, SetElements::Ports(ports.into_iter().collect()))
    }

    /// An empty set of `key`: one type, or several for a concatenation.
    /// Add elements with [`NamedSet::element`].
    pub fn keyed(name: impl Into<String>, key: impl IntoIterator<Item = KeyType>) -> Self {
        Self::new(
            name,
            SetElements::Keyed {
                key: key.into_iter().collect(),
                elements: Vec::new(),
            },
        )
    }

    fn new(name: impl Into<String>, elements: SetElements) -> Self {
        NamedSet {
            name: name.into(),
            elements,
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
        }
    }

    /// Adds an element, one value per key type. A set made by `ipv4`,
    /// `ipv6` or `ports` then holds its elements as
    /// [`SetElements::Keyed`].
    pub fn element(mut self, values: impl IntoIterator<Item = Value>) -> Self {
        let (key, mut elements) = self.elements.into_keyed();
        elements.push(values.into_iter().collect());
        self.elements = SetElements::Keyed { key, elements };
        self
    }

    /// Adds several elements, as [`NamedSet::element`].
    pub fn extend<E: IntoIterator<Item = Value>>(
        self,
        elements: impl IntoIterator<Item = E>,
    ) -> Self {
        elements.into_iter().fold(self, NamedSet::element)
    }

    /// Elements may be prefixes and ranges (`flags interval`); the runtime
    /// merges overlapping and adjacent ones.
    pub fn intervals(self) -> Self {
        NamedSet {
            intervals: true,
            ..self
        }
    }

    /// Elements expire `secs` seconds after they were added.
    pub fn timeout_secs(self, secs: u32) -> Self {
        NamedSet {
            timeout: Some(secs),
            ..self
        }
    }

    /// Rules add elements (`flags dynamic`), at most `size` of them: the set
    /// of a [`keyed limit`](crate::RuleBuilder::keyed_limit).
    pub fn dynamic(self, size: u32) -> Self {
        NamedSet {
            dynamic: true,
            size: Some(size),
            ..self
        }
    }

    /// Holds at most `size` elements.
    pub fn max_size(self, size: u32) -> Self {
        NamedSet {
            size: Some(size),
            ..self
        }
    }

    /// The set's name, unique within the policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key: one type, or several for a concatenation.
    pub fn key(&self) -> &[KeyType] {
        match &self.elements {
            SetElements::Ipv4(_) => &[KeyType::Ipv4Addr],
            SetElements::Ipv6(_) => &[KeyType::Ipv6Addr],
            SetElements::Ports(_) => &[KeyType::InetService],
            SetElements::Keyed { key, .. } => key,
        }
    }

    /// The elements.
    pub fn elements(&self) -> &SetElements {
        &self.elements
    }

    /// Whether elements may be prefixes and ranges.
    pub fn has_intervals(&self) -> bool {
        self.intervals
    }

    /// Seconds after which elements expire, if they do.
    pub fn timeout(&self) -> Option<u32> {
        self.timeout
    }

    /// Whether rules add elements.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// The most elements the set holds, if limited.
    pub fn size(&self) -> Option<u32> {
        self.size
    }
}

/// A named map: a key to a verdict (for `RuleBuilder::vmap`) or to data
/// (for `RuleBuilder::dnat_map` and `snat_map`). Its elements change
/// without rewriting a rule, as a set's.
///
/// ```
/// use wasmwall_sdk::{Field, IpFamily, KeyType, MapLookup, NamedMap, Rule, Ruleset, Transport, Value};
/// let forwards = NamedMap::data_map(
///     "forwards",
///     [KeyType::InetService],
///     [KeyType::Ipv4Addr, KeyType::InetService],
/// )
/// .element([Value::from(8080u16)], [Value::address("192.168.1.10"), Value::from(80u16)]);
/// let ruleset = Ruleset::new().map(forwards);
/// let rule = Rule::new()
///     .iifname("wan0")
///     .dnat_map(IpFamily::V4, MapLookup::named([Field::Dport(Transport::Tcp)], "forwards"));
/// # let _ = (ruleset, rule);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedMap {
    pub(crate) name: String,
    pub(crate) key: Vec<KeyType>,
    pub(crate) data: Option<Vec<KeyType>>,
    pub(crate) intervals: bool,
    pub(crate) elements: Vec<MapElement>,
}

impl NamedMap {
    /// An empty verdict map of `key`.
    pub fn verdict_map(name: impl Into<String>, key: impl IntoIterator<Item = KeyType>) -> Self {
        Self::new(name, key, None)
    }

    /// An empty data map of `key` to values of the `data` types, e.g. an
    /// address and a port.
    pub fn data_map(
        name: impl Into<String>,
        key: impl IntoIterator<Item = KeyType>,
        data: impl IntoIterator<Item = KeyType>,
    ) -> Self {
        Self::new(name, key, Some(data.into_iter().collect()))
    }

    fn new(
        name: impl Into<String>,
        key: impl IntoIterator<Item = KeyType>,
        data: Option<Vec<KeyType>>,
    ) -> Self {
        NamedMap {
            name: name.into(),
            key: key.into_iter().collect(),
            data,
            intervals: false,
            elements: Vec::new(),
        }
    }

    /// Adds an element: `key`, one value per key type, maps to `data`, a
    /// [`MapVerdict`](crate::MapVerdict) or one value per data type.
    pub fn element(
        mut self,
        key: impl IntoIterator<Item = Value>,
        data: impl Into<MapData>,
    ) -> Self {
        self.elements.push(MapElement::new(key, data));
        self
    }

    /// Adds several elements.
    pub fn extend(mut self, elements: impl IntoIterator<Item = MapElement>) -> Self {
        self.elements.extend(elements);
        self
    }

    /// Keys may be prefixes and ranges.
    pub fn intervals(self) -> Self {
        NamedMap {
            intervals: true,
            ..self
        }
    }

    /// The map's name, unique within the policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's types.
    pub fn key(&self) -> &[KeyType] {
        &self.key
    }

    /// The data's types; `None` for a verdict map.
    pub fn data_types(&self) -> Option<&[KeyType]> {
        self.data.as_deref()
    }

    /// Whether keys may be prefixes and ranges.
    pub fn has_intervals(&self) -> bool {
        self.intervals
    }

    /// The elements, in the order added.
    pub fn elements(&self) -> &[MapElement] {
        &self.elements
    }
}

/// A counter object rules count in by name (`Ruleset::named_counter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCounter {
    pub(crate) name: String,
}

impl NamedCounter {
    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A limit object rules share by name (`Ruleset::named_limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLimit {
    pub(crate) name: String,
    pub(crate) limit: RateLimit,
}

impl NamedLimit {
    /// The limit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }
}

/// A conntrack helper object: a kernel helper that follows a protocol's
/// related connections (FTP data, SIP media). Offer one only when
/// `WorldState::features` has the helper.
///
/// ```
/// use wasmwall_sdk::{Chain, CtHelper, Hook, Rule, Ruleset, Transport, WorldState};
/// # let state = WorldState::default();
/// let mut ruleset = Ruleset::new();
/// if state.features.has_ct_helper("ftp") {
///     ruleset = ruleset
///         .ct_helper(CtHelper::new("ftp-helper", "ftp", Transport::Tcp))
///         .chain(
///             Chain::filter("helpers", Hook::Prerouting, 0)
///                 .rule(Rule::new().iifname("lan0").tcp_dport(21).ct_helper("ftp-helper").accept()),
///         );
/// }
/// # let _ = ruleset;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtHelper {
    pub(crate) name: String,
    pub(crate) helper: String,
    pub(crate) protocol: Transport,
}

impl CtHelper {
    /// The object `name` for the kernel's helper `helper` ("ftp", "sip",
    /// "tftp", ...; one of `KernelFeatures::ct_helpers`) on `protocol`.
    pub fn new(name: impl Into<String>, helper: impl Into<String>, protocol: Transport) -> Self {
        CtHelper {
            name: name.into(),
            helper: helper.into(),
            protocol,
        }
    }

    /// The object's name, which rules give.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's name of the helper.
    pub fn helper(&self) -> &str {
        &self.helper
    }

    /// The protocol it follows.
    pub fn protocol(&self) -> Transport {
        self.protocol
    }
}

/// A flowtable: connections offloaded to it skip the firewall's hooks for
/// the rest of their life. Offer one only when
/// `WorldState::features.has_flowtables()`.
///
/// ```
/// use wasmwall_sdk::{Chain, CtState, Flowtable, Hook, Rule, Ruleset, WorldState};
/// # let state = WorldState::default();
/// let mut forward = Chain::filter("forward", Hook::Forward, 0);
/// let mut ruleset = Ruleset::new();
/// if state.features.has_flowtables() {
///     let mut ft = Flowtable::new("ft", ["lan0", "wan0"]);
///     if ["lan0", "wan0"].iter().all(|i| state.features.can_offload_in_hardware(i)) {
///         ft = ft.offload_in_hardware();
///     }
///     ruleset = ruleset.flowtable(ft);
///     forward = forward.rule(Rule::new().ct_state([CtState::Established]).offload("ft").accept());
/// }
/// # let _ = ruleset.chain(forward);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flowtable {
    pub(crate) name: String,
    pub(crate) priority: i32,
    pub(crate) devices: Vec<String>,
    pub(crate) hardware_offload: bool,
    pub(crate) counter: bool,
}

impl Flowtable {
    /// The flowtable `name` on these interfaces (at least one), at ingress
    /// priority 0.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        devices: impl IntoIterator<Item = S>,
    ) -> Self {
        Flowtable {
            name: name.into(),
            priority: 0,
            devices: devices.into_iter().map(Into::into).collect(),
            hardware_offload: false,
            counter: false,
        }
    }

    /// At this priority on the ingress hook.
    pub fn with_priority(self, priority: i32) -> Self {
        Flowtable { priority, ..self }
    }

    /// Offloads in the network card too; every device must be in
    /// `KernelFeatures::hardware_offload`.
    pub fn offload_in_hardware(self) -> Self {
        Flowtable {
            hardware_offload: true,
            ..self
        }
    }

    /// Counts the packets of offloaded flows.
    pub fn with_counter(self) -> Self {
        Flowtable {
            counter: true,
            ..self
        }
    }

    /// The flowtable's name, which rules give.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its priority on the ingress hook.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// The interfaces whose packets it takes.
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// Whether it offloads in the network card too.
    pub fn hardware_offload(&self) -> bool {
        self.hardware_offload
    }

    /// Whether it counts the packets of offloaded flows.
    pub fn has_counter(&self) -> bool {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_added_to_a_plain_set_keeps_its_elements() {
        let set = NamedSet::ports("p", [22]).element([Value::from(53u16)]);
        assert_eq!(set.key(), [KeyType::InetService]);
        assert_eq!(
            set.elements(),
            &SetElements::Keyed {
                key: vec![KeyType::InetService],
                elements: vec![vec![Value::Number(22)], vec![Value::Number(53)]],
            }
        );
    }

    #[test]
    fn set_options_are_kept() {
        let set = NamedSet::keyed("m", [KeyType::Ipv6Addr])
            .dynamic(1024)
            .timeout_secs(60)
            .intervals();
        assert!(set.is_dynamic() && set.has_intervals());
        assert_eq!((set.size(), set.timeout()), (Some(1024), Some(60)));
        let plain = NamedSet::ipv4("a", ["10.0.0.1"]).max_size(8);
        assert!(!plain.is_dynamic() && !plain.has_intervals());
        assert_eq!((plain.size(), plain.timeout()), (Some(8), None));
        assert_eq!(plain.key(), [KeyType::Ipv4Addr]);
    }
}
