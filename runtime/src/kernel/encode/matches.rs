//! Each match of a rule as the expressions nft emits for it.

use rustables::data_type::ip_to_vec;
use rustables::expr::{
    CmpOp, Conntrack, ConntrackKey, HighLevelPayload, IPv4HeaderField, IPv6HeaderField, MetaType,
    NetworkHeaderField, Payload, TCPHeaderField, TransportHeaderField, UDPHeaderField,
};

use super::rule::{RuleBuilder, and_mask, eq_or_neq};
use crate::ir::{Dir, Family, Match, Transport};

impl RuleBuilder {
    pub fn add_match(&mut self, m: &Match) -> Result<(), String> {
        match m {
            Match::Iifname { name, negate } => {
                self.meta_cmp(MetaType::IifName, eq_or_neq(*negate), ifname(name)?)
            }
            Match::Oifname { name, negate } => {
                self.meta_cmp(MetaType::OifName, eq_or_neq(*negate), ifname(name)?)
            }
            Match::Addr { dir, net, negate } => {
                let family = Family::of(&net.ip());
                self.require_nfproto(family);
                self.push(addr_payload(family, *dir));
                let addr = ip_to_vec(net.network());
                if usize::from(net.prefix()) < addr.len() * 8 {
                    self.push(and_mask(ip_to_vec(net.mask())));
                }
                self.cmp(eq_or_neq(*negate), addr);
            }
            Match::L4Proto { proto, negate } => {
                self.meta_cmp(MetaType::L4Proto, eq_or_neq(*negate), [proto.number()]);
                if !negate {
                    self.l4proto = Some(proto.number());
                }
            }
            Match::Port {
                dir,
                proto,
                first,
                last,
                negate,
            } => {
                self.require_l4proto(proto.l4().number());
                self.push(port_payload(*proto, *dir));
                if first == last {
                    self.cmp(eq_or_neq(*negate), first.to_be_bytes());
                } else if *negate {
                    return Err("a negated port range cannot be expressed".into());
                } else {
                    self.cmp(CmpOp::Gte, first.to_be_bytes());
                    self.cmp(CmpOp::Lte, last.to_be_bytes());
                }
            }
            Match::CtState(states) => {
                self.push(Conntrack::new(ConntrackKey::State));
                self.push(and_mask(states.0.to_ne_bytes().to_vec()));
                self.cmp(CmpOp::Neq, [0; 4]);
            }
            Match::AddrInSet { dir, family, set } => {
                self.require_nfproto(*family);
                self.push(addr_payload(*family, *dir));
                self.lookup(set);
            }
            Match::PortInSet { dir, proto, set } => {
                self.require_l4proto(proto.l4().number());
                self.push(port_payload(*proto, *dir));
                self.lookup(set);
            }
        }
        Ok(())
    }
}

/// An interface name as the kernel compares it: zero-padded to libc::IFNAMSIZ.
pub(super) fn ifname(name: &str) -> Result<[u8; libc::IFNAMSIZ], String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(format!(
            "interface name {name:?} must have 1 to {} bytes",
            libc::IFNAMSIZ - 1
        ));
    }
    let mut padded = [0; libc::IFNAMSIZ];
    padded[..name.len()].copy_from_slice(name.as_bytes());
    Ok(padded)
}

pub(super) fn addr_payload(family: Family, dir: Dir) -> Payload {
    let field = match (family, dir) {
        (Family::V4, Dir::Source) => NetworkHeaderField::IPv4(IPv4HeaderField::Saddr),
        (Family::V4, Dir::Destination) => NetworkHeaderField::IPv4(IPv4HeaderField::Daddr),
        (Family::V6, Dir::Source) => NetworkHeaderField::IPv6(IPv6HeaderField::Saddr),
        (Family::V6, Dir::Destination) => NetworkHeaderField::IPv6(IPv6HeaderField::Daddr),
    };
    HighLevelPayload::Network(field).build()
}

pub(super) fn port_payload(proto: Transport, dir: Dir) -> Payload {
    let field = match (proto, dir) {
        (Transport::Tcp, Dir::Source) => TransportHeaderField::Tcp(TCPHeaderField::Sport),
        (Transport::Tcp, Dir::Destination) => TransportHeaderField::Tcp(TCPHeaderField::Dport),
        (Transport::Udp, Dir::Source) => TransportHeaderField::Udp(UDPHeaderField::Sport),
        (Transport::Udp, Dir::Destination) => TransportHeaderField::Udp(UDPHeaderField::Dport),
    };
    HighLevelPayload::Transport(field).build()
}
