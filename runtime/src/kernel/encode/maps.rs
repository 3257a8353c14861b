//! The map actions of a rule as nft encodes them: the key's fields loaded,
//! a lookup in the named or anonymous map that writes the verdict (`vmap`)
//! or the data to registers, and for a NAT map the translation reading
//! them: `lookup reg 1 set fwds dreg 1`, `nat dnat ip addr_min reg 1
//! proto_min reg 9` (the port in the 32-bit register after the address).

use rustables::expr::{Conntrack, ConntrackKey, Meta, MetaType, Register};
use rustables::sys;

use super::expr::{Attrs, Expr};
use super::matches::{addr_payload, port_payload};
use super::rule::RuleBuilder;
use crate::ir::{Action, Dir, Family, Field, MapLookup, MapSource, NatMap};

/// The second 32-bit register (NFT_REG32_01): bytes 4-7 of reg 1.
const NFT_REG32_01: u32 = 9;

impl RuleBuilder {
    /// Encodes a map action; false for any other action.
    pub fn add_map_action(&mut self, action: &Action) -> Result<bool, String> {
        match action {
            Action::Vmap(lookup) => {
                self.lookup_map(lookup, Register::Verdict)?;
            }
            Action::DnatMap(nat) => self.nat_map(sys::NFT_NAT_DNAT, nat)?,
            Action::SnatMap(nat) => self.nat_map(sys::NFT_NAT_SNAT, nat)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The key into reg 1, then the lookup writing to `dreg`.
    fn lookup_map(&mut self, lookup: &MapLookup, dreg: Register) -> Result<(), String> {
        self.load_key(&lookup.fields)?;
        let named = match &lookup.map {
            MapSource::Named(name) => Some(name.as_str()),
            MapSource::Inline(_) => None,
        };
        self.map_lookup(named, dreg)
    }

    /// The data (an address, and a port after it) into reg 1, then the
    /// translation to it.
    fn nat_map(&mut self, kind: u32, nat: &NatMap) -> Result<(), String> {
        self.lookup_map(&nat.lookup, Register::Reg1)?;
        let family = match nat.family {
            Family::V4 => libc::NFPROTO_IPV4,
            Family::V6 => libc::NFPROTO_IPV6,
        };
        let mut data = Attrs::default()
            .u32(sys::NFTA_NAT_TYPE, kind)
            .u32(sys::NFTA_NAT_FAMILY, family as u32)
            .u32(sys::NFTA_NAT_REG_ADDR_MIN, Register::Reg1 as u32);
        if nat.ports {
            // The port follows the address: after IPv4's 4 bytes in the
            // second 32-bit register, after IPv6's 16 in the second 16-byte
            // one, as nft names them.
            let port = match nat.family {
                Family::V4 => NFT_REG32_01,
                Family::V6 => Register::Reg2 as u32,
            };
            data = data.u32(sys::NFTA_NAT_REG_PROTO_MIN, port);
        }
        self.hand_made(Expr::new("nat", data));
        Ok(())
    }

    /// Loads one field into reg 1, with the protocol check it depends on.
    fn load_key(&mut self, fields: &[Field]) -> Result<(), String> {
        let [field] = fields else {
            return Err(format!(
                "a map key of {} fields cannot be loaded yet",
                fields.len()
            ));
        };
        match *field {
            Field::Iifname => self.push(Meta::new(MetaType::IifName)),
            Field::Oifname => self.push(Meta::new(MetaType::OifName)),
            Field::L4proto => self.push(Meta::new(MetaType::L4Proto)),
            Field::Mark => self.push(Meta::new(MetaType::Mark)),
            Field::CtMark => self.push(Conntrack::new(ConntrackKey::Mark)),
            Field::Saddr(family) | Field::Daddr(family) => {
                let dir = if matches!(field, Field::Saddr(_)) {
                    Dir::Source
                } else {
                    Dir::Destination
                };
                self.require_nfproto(family);
                self.push(addr_payload(family, dir));
            }
            Field::Sport(proto) | Field::Dport(proto) => {
                let dir = if matches!(field, Field::Sport(_)) {
                    Dir::Source
                } else {
                    Dir::Destination
                };
                self.require_l4proto(proto.l4().number());
                self.push(port_payload(proto, dir));
            }
            other => return Err(format!("a map key of {other} cannot be loaded yet")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
