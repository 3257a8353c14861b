//! The packets `wasmwall trace` follows, as given on the command line: a
//! small grammar (protocol, addresses, ports, input interface), checked
//! here and turned into IR matches, so that the trace rule is encoded like
//! every other rule. No nft text is taken from the user.

use std::fmt;

use ipnetwork::IpNetwork;
use thiserror::Error;

use crate::ir::{Dir, Hook, L4Proto, Match, Transport};

/// The filter as the command line gave it, not yet checked.
#[derive(Debug, Clone, Default)]
pub struct FilterSpec {
    pub proto: Option<String>,
    pub saddr: Option<String>,
    pub daddr: Option<String>,
    pub sport: Option<String>,
    pub dport: Option<String>,
    pub iif: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    #[error(
        "no filter: give at least one of --proto, --saddr, --daddr, --sport, --dport, --iif (tracing every packet would flood the output)"
    )]
    Empty,
    #[error("unknown protocol {0:?}: use tcp, udp, sctp, icmp or icmpv6")]
    Proto(String),
    #[error(
        "{what} {value:?} is not an address or network (e.g. 192.168.0.2, 10.0.0.0/8, fe80::/10)"
    )]
    Addr { what: &'static str, value: String },
    #[error("--saddr and --daddr are of different families (IPv4 and IPv6)")]
    Families,
    #[error("--proto {0} is of the other IP family than the addresses")]
    ProtoFamily(String),
    #[error("{what} {value:?} is not a port or range (1-65535, e.g. 80 or 8000-8080)")]
    Port { what: &'static str, value: String },
    #[error("{0} needs --proto tcp, udp or sctp (ports belong to one of them)")]
    PortWithoutProto(&'static str),
    #[error(
        "interface name {0:?} is not valid: 1 to 15 letters, digits or . _ - @ :, optionally ending in '*'"
    )]
    Interface(String),
}

/// A checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    matches: Vec<Match>,
    /// Whether it names an input interface: then it can only match
    /// packets that come in (no output hook).
    inbound_only: bool,
}

impl Filter {
    pub fn new(spec: &FilterSpec) -> Result<Filter, FilterError> {
        let mut matches = Vec::new();
        if let Some(name) = &spec.iif {
            check_interface(name)?;
            matches.push(Match::Iifname {
                name: name.clone(),
                negate: false,
            });
        }
        let saddr = spec
            .saddr
            .as_deref()
            .map(|v| addr("--saddr", v))
            .transpose()?;
        let daddr = spec
            .daddr
            .as_deref()
            .map(|v| addr("--daddr", v))
            .transpose()?;
        if let (Some(s), Some(d)) = (saddr, daddr)
            && s.is_ipv4() != d.is_ipv4()
        {
            return Err(FilterError::Families);
        }
        let proto = spec.proto.as_deref().map(proto).transpose()?;
        if let (Some(p), Some(net)) = (proto, saddr.or(daddr))
            && let Some(family) = p.family()
            && (family == crate::ir::Family::V4) != net.is_ipv4()
        {
            return Err(FilterError::ProtoFamily(
                spec.proto.clone().unwrap_or_default(),
            ));
        }
        for (dir, net) in [(Dir::Source, saddr), (Dir::Destination, daddr)] {
            if let Some(net) = net {
                matches.push(Match::Addr {
                    dir,
                    net,
                    negate: false,
                });
            }
        }
        let transport = match proto {
            Some(L4Proto::Tcp) => Some(Transport::Tcp),
            Some(L4Proto::Udp) => Some(Transport::Udp),
            Some(L4Proto::Other(n)) if i32::from(n) == libc::IPPROTO_SCTP => Some(Transport::Sctp),
            _ => None,
        };
        let ports = [
            (Dir::Source, "--sport", &spec.sport),
            (Dir::Destination, "--dport", &spec.dport),
        ];
        let mut port_matches = Vec::new();
        for (dir, what, value) in ports {
            let Some(value) = value else { continue };
            let (first, last) = port_range(what, value)?;
            let proto = transport.ok_or(FilterError::PortWithoutProto(what))?;
            port_matches.push(Match::Port {
                dir,
                proto,
                first,
                last,
                negate: false,
            });
        }
        // A port match checks its protocol itself (as `tcp dport 80`).
        if port_matches.is_empty()
            && let Some(proto) = proto
        {
            matches.push(Match::L4Proto {
                proto,
                negate: false,
            });
        }
        matches.extend(port_matches);
        if matches.is_empty() {
            return Err(FilterError::Empty);
        }
        Ok(Filter {
            matches,
            inbound_only: spec.iif.is_some(),
        })
    }

    pub fn matches(&self) -> &[Match] {
        &self.matches
    }

    /// The hooks the trace rule goes in: prerouting sees every packet that
    /// comes in (forwarded or local), output every packet this machine
    /// sends.
    pub fn hooks(&self) -> Vec<Hook> {
        if self.inbound_only {
            vec![Hook::Prerouting]
        } else {
            vec![Hook::Prerouting, Hook::Output]
        }
    }
}

/// The matches as nft text (`ip saddr 192.168.0.2 tcp dport 80`).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.matches.iter().map(ToString::to_string).collect();
        f.write_str(&texts.join(" "))
    }
}

fn proto(name: &str) -> Result<L4Proto, FilterError> {
    match name {
        "tcp" => Ok(L4Proto::Tcp),
        "udp" => Ok(L4Proto::Udp),
        "icmp" => Ok(L4Proto::Icmp),
        "icmpv6" | "ipv6-icmp" => Ok(L4Proto::Icmpv6),
        "sctp" => Ok(L4Proto::Other(libc::IPPROTO_SCTP as u8)),
        _ => Err(FilterError::Proto(name.to_string())),
    }
}

fn addr(what: &'static str, value: &str) -> Result<IpNetwork, FilterError> {
    let bad = || FilterError::Addr {
        what,
        value: value.to_string(),
    };
    let net: IpNetwork = value.parse().map_err(|_| bad())?;
    // A network is given by its first address: 10.0.0.5/8 is a mistake.
    if net.network() != net.ip() {
        return Err(bad());
    }
    Ok(net)
}

fn port_range(what: &'static str, value: &str) -> Result<(u16, u16), FilterError> {
    let bad = || FilterError::Port {
        what,
        value: value.to_string(),
    };
    let one = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0 && s.bytes().all(|b| b.is_ascii_digit()))
    };
    let (first, last) = match value.split_once('-') {
        Some((a, b)) => (one(a).ok_or_else(bad)?, one(b).ok_or_else(bad)?),
        None => {
            let p = one(value).ok_or_else(bad)?;
            (p, p)
        }
    };
    if first > last {
        return Err(bad());
    }
    Ok((first, last))
}

fn check_interface(name: &str) -> Result<(), FilterError> {
    let base = name.strip_suffix('*').unwrap_or(name);
    let ok = (1..=15).contains(&base.len())
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FilterError::Interface(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FilterSpec {
        FilterSpec::default()
    }

    #[test]
    fn the_seed_request_becomes_nft_matches() {
        let f = Filter::new(&FilterSpec {
            proto: Some("tcp".into()),
            saddr: Some("192.168.0.2".into()),
            dport: Some("80".into()),
            iif: Some("veth-l".into()),
            ..spec()
        })
        .unwrap();
        assert_eq!(
            f.to_string(),
            "iifname \"veth-l\" ip saddr 192.168.0.2 tcp dport 80"
        );
        assert_eq!(f.hooks(), vec![Hook::Prerouting]);
    }

    #[test]
    fn without_an_interface_both_directions_are_traced() {
        let f = Filter::new(&FilterSpec {
            daddr: Some("fd00::/64".into()),
            proto: Some("udp".into()),
            sport: Some("1000-2000".into()),
            ..spec()
        })
        .unwrap();
        assert_eq!(f.to_string(), "ip6 daddr fd00::/64 udp sport 1000-2000");
        assert_eq!(f.hooks(), vec![Hook::Prerouting, Hook::Output]);
        let icmp = Filter::new(&FilterSpec {
            proto: Some("icmp".into()),
            ..spec()
        })
        .unwrap();
        assert_eq!(icmp.to_string(), "meta l4proto icmp");
    }

    #[test]
    fn bad_filters_are_refused_with_the_reason() {
        let cases = [
            (spec(), FilterError::Empty),
            (
                FilterSpec {
                    proto: Some("tcp; flush ruleset".into()),
                    ..spec()
                },
                FilterError::Proto("tcp; flush ruleset".into()),
            ),
            (
                FilterSpec {
                    dport: Some("80".into()),
                    ..spec()
                },
                FilterError::PortWithoutProto("--dport"),
            ),
            (
                FilterSpec {
                    proto: Some("tcp".into()),
                    dport: Some("90-80".into()),
                    ..spec()
                },
                FilterError::Port {
                    what: "--dport",
                    value: "90-80".into(),
                },
            ),
            (
                FilterSpec {
                    saddr: Some("10.0.0.5/8".into()),
                    ..spec()
                },
                FilterError::Addr {
                    what: "--saddr",
                    value: "10.0.0.5/8".into(),
                },
            ),
            (
                FilterSpec {
                    saddr: Some("10.0.0.1".into()),
                    daddr: Some("::1".into()),
                    ..spec()
                },
                FilterError::Families,
            ),
            (
                FilterSpec {
                    proto: Some("icmpv6".into()),
                    saddr: Some("10.0.0.1".into()),
                    ..spec()
                },
                FilterError::ProtoFamily("icmpv6".into()),
            ),
            (
                FilterSpec {
                    iif: Some("eth0\"; drop".into()),
                    ..spec()
                },
                FilterError::Interface("eth0\"; drop".into()),
            ),
        ];
        for (spec, error) in cases {
            assert_eq!(Filter::new(&spec), Err(error), "{spec:?}");
        }
    }
}
