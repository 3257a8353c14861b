//! The map actions of a rule as nft encodes them: the key's fields loaded,
//! a lookup in the named or anonymous map that writes the verdict (`vmap`)
//! or the data to registers, and for a NAT map the translation reading
//! them: `lookup reg 1 set fwds dreg 1`, `nat dnat ip addr_min reg 1
//! proto_min reg 9` (the port in the 32-bit register after the address).

use rustables::expr::Register;
use rustables::sys;

use super::expr::{Attrs, Expr};
use super::fields::register;
use super::rule::RuleBuilder;
use crate::ir::{Action, Family, MapLookup, NatMap};

impl RuleBuilder {
    /// Encodes a map action; false for any other action.
    pub fn add_map_action(&mut self, action: &Action) -> bool {
        match action {
            Action::Vmap(lookup) => self.lookup_map(lookup, Register::Verdict),
            Action::DnatMap(nat) => self.nat_map(sys::NFT_NAT_DNAT, nat),
            Action::SnatMap(nat) => self.nat_map(sys::NFT_NAT_SNAT, nat),
            _ => return false,
        }
        true
    }

    /// The key into reg 1 on, then the lookup writing to `dreg`.
    fn lookup_map(&mut self, lookup: &MapLookup, dreg: Register) {
        self.load_fields(&lookup.fields);
        self.map_lookup(lookup, dreg);
    }

    /// The data (an address, and a port after it) into reg 1, then the
    /// translation to it.
    fn nat_map(&mut self, kind: u32, nat: &NatMap) {
        self.lookup_map(&nat.lookup, Register::Reg1);
        let family = match nat.family {
            Family::V4 => libc::NFPROTO_IPV4,
            Family::V6 => libc::NFPROTO_IPV6,
        };
        let mut data = Attrs::default()
            .u32(sys::NFTA_NAT_TYPE, kind)
            .u32(sys::NFTA_NAT_FAMILY, family as u32)
            .u32(sys::NFTA_NAT_REG_ADDR_MIN, Register::Reg1 as u32);
        if nat.ports {
            // The port follows the address, in the register after its 4
            // (IPv4) or 16 (IPv6) bytes, named as nft names it.
            let words = match nat.family {
                Family::V4 => 1,
                Family::V6 => 4,
            };
            data = data.u32(sys::NFTA_NAT_REG_PROTO_MIN, register(words));
        }
        self.hand_made(Expr::new("nat", data));
    }
}

#[cfg(test)]
mod tests;
