//! The IR's named sets: their kind of key and their elements.

/// Elements of a named set, sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SetElements {
    Ipv4(Vec<std::net::Ipv4Addr>),
    Ipv6(Vec<std::net::Ipv6Addr>),
    Ports(Vec<u16>),
}

impl SetElements {
    pub fn type_name(&self) -> &'static str {
        match self {
            SetElements::Ipv4(_) => "ipv4_addr",
            SetElements::Ipv6(_) => "ipv6_addr",
            SetElements::Ports(_) => "inet_service",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetElements::Ipv4(v) => v.len(),
            SetElements::Ipv6(v) => v.len(),
            SetElements::Ports(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as nft prints them.
    pub fn texts(&self) -> Vec<String> {
        match self {
            SetElements::Ipv4(v) => v.iter().map(ToString::to_string).collect(),
            SetElements::Ipv6(v) => v.iter().map(ToString::to_string).collect(),
            SetElements::Ports(v) => v.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedSet {
    pub name: String,
    pub elements: SetElements,
}
