//! The map actions of a rule as nft encodes them: the key's fields loaded,
//! a lookup in the named or anonymous map that writes the verdict (`vmap`)
//! or the data to registers, and for a NAT map the translation reading
//! them: `lookup reg 1 set fwds dreg 1`, `nat dnat ip addr_min reg 1`.

use rustables::ProtocolFamily;
use rustables::expr::{Conntrack, ConntrackKey, Meta, MetaType, Nat, NatType, Register};

use super::matches::{addr_payload, port_payload};
use super::rule::RuleBuilder;
use crate::ir::{Action, Dir, Family, Field, MapLookup, MapSource, NatMap};

impl RuleBuilder {
    /// Encodes a map action; false for any other action.
    pub fn add_map_action(&mut self, action: &Action) -> Result<bool, String> {
        match action {
            Action::Vmap(lookup) => {
                self.lookup_map(lookup, Register::Verdict)?;
            }
            Action::DnatMap(nat) => self.nat_map(NatType::DNat, nat)?,
            Action::SnatMap(nat) => self.nat_map(NatType::SNat, nat)?,
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
    fn nat_map(&mut self, kind: NatType, nat: &NatMap) -> Result<(), String> {
        if nat.ports {
            return Err("NAT to an address and a port from a map cannot be encoded yet".into());
        }
        self.lookup_map(&nat.lookup, Register::Reg1)?;
        let family = match nat.family {
            Family::V4 => ProtocolFamily::Ipv4,
            Family::V6 => ProtocolFamily::Ipv6,
        };
        let expr = Nat::default()
            .with_nat_type(kind)
            .with_family(family)
            .with_ip_register(Register::Reg1);
        self.push(expr);
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
