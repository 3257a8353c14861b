//! Fields loaded into registers as nft loads them: each field's protocol
//! checks first, once per rule (`meta nfproto`, or `ether type` once the
//! link layer is known to be Ethernet; `meta l4proto`; `meta iiftype`
//! before an Ethernet header), then the loads, one field after another
//! from register 1, a concatenation's parts each in whole 32-bit
//! registers (reg 1, then reg 9, ...: nft's names of them), a DSCP
//! masked. Tests, set and map lookups and keyed limits load their keys
//! here; the bytes a field's values take in its register are here too
//! ([`field_bytes`]).

use rustables::sys;

use super::elements::{End, value_bytes};
use super::expr::{Attrs, Expr};
use super::rule::RuleBuilder;
use crate::ir::{Family, Field, KeyType, Value};

/// The kernel's first 32-bit register (NFT_REG32_00): register 1 is its
/// first four.
const NFT_REG32_00: u32 = 8;
/// libc's ARPHRD_ETHER: `meta iiftype ether`.
const ARPHRD_ETHER: u16 = 1;
/// The Ethernet header's type field.
const ETHER_TYPE_OFFSET: u32 = 12;
/// The place of a DSCP in its header's bytes as nft loads them: the top
/// six bits of IPv4's second byte, bits 6-11 of IPv6's first two.
const DSCP_SHIFT_V4: u32 = 2;
const DSCP_SHIFT_V6: u32 = 6;

/// nft's name of the register at 32-bit word `word`: a 16-byte register
/// (1-4) where one starts, else the 32-bit register.
pub(super) fn register(word: usize) -> u32 {
    if word.is_multiple_of(4) {
        1 + word as u32 / 4
    } else {
        NFT_REG32_00 + word as u32
    }
}

/// Where a field is: a payload (base, offset, length), a meta key or a
/// ct key.
enum Source {
    Payload(u32, u32, u32),
    Meta(u32),
    Ct(u32),
}

fn source(f: Field) -> Source {
    let (link, network, transport) = (
        sys::NFT_PAYLOAD_LL_HEADER,
        sys::NFT_PAYLOAD_NETWORK_HEADER,
        sys::NFT_PAYLOAD_TRANSPORT_HEADER,
    );
    match f {
        Field::Iifname => Source::Meta(sys::NFT_META_IIFNAME),
        Field::Oifname => Source::Meta(sys::NFT_META_OIFNAME),
        Field::L4proto => Source::Meta(sys::NFT_META_L4PROTO),
        Field::Mark => Source::Meta(sys::NFT_META_MARK),
        Field::CtMark => Source::Ct(sys::NFT_CT_MARK),
        Field::Saddr(Family::V4) => Source::Payload(network, 12, 4),
        Field::Daddr(Family::V4) => Source::Payload(network, 16, 4),
        Field::Saddr(Family::V6) => Source::Payload(network, 8, 16),
        Field::Daddr(Family::V6) => Source::Payload(network, 24, 16),
        Field::Dscp(Family::V4) => Source::Payload(network, 1, 1),
        Field::Dscp(Family::V6) => Source::Payload(network, 0, 2),
        // TCP, UDP and SCTP put their ports in the same place.
        Field::Sport(_) => Source::Payload(transport, 0, 2),
        Field::Dport(_) => Source::Payload(transport, 2, 2),
        Field::IcmpType | Field::Icmpv6Type => Source::Payload(transport, 0, 1),
        Field::IcmpCode | Field::Icmpv6Code => Source::Payload(transport, 1, 1),
        Field::EtherSaddr => Source::Payload(link, 6, 6),
    }
}

/// A `payload load` into `reg`.
pub(super) fn payload(base: u32, offset: u32, len: u32, reg: u32) -> Expr {
    Expr::new(
        "payload",
        Attrs::default()
            .u32(sys::NFTA_PAYLOAD_DREG, reg)
            .u32(sys::NFTA_PAYLOAD_BASE, base)
            .u32(sys::NFTA_PAYLOAD_OFFSET, offset)
            .u32(sys::NFTA_PAYLOAD_LEN, len),
    )
}

/// A `meta load` of `key` into `reg`.
pub(super) fn meta(key: u32, reg: u32) -> Expr {
    Expr::new(
        "meta",
        Attrs::default()
            .u32(sys::NFTA_META_KEY, key)
            .u32(sys::NFTA_META_DREG, reg),
    )
}

/// A `ct load` of `key` into `reg`.
pub(super) fn ct(key: u32, reg: u32) -> Expr {
    Expr::new(
        "ct",
        Attrs::default()
            .u32(sys::NFTA_CT_KEY, key)
            .u32(sys::NFTA_CT_DREG, reg),
    )
}

/// `reg = reg & mask`, as nft masks prefixes, DSCP and flags.
pub(super) fn and(reg: u32, mask: &[u8]) -> Expr {
    Expr::new(
        "bitwise",
        Attrs::default()
            .u32(sys::NFTA_BITWISE_SREG, reg)
            .u32(sys::NFTA_BITWISE_DREG, reg)
            .u32(sys::NFTA_BITWISE_LEN, mask.len() as u32)
            .value(sys::NFTA_BITWISE_MASK, mask)
            .value(sys::NFTA_BITWISE_XOR, &vec![0; mask.len()]),
    )
}

/// `reg = htonl(reg)` (or `htons`, by `size`), as nft turns what the
/// kernel gives in host byte order into network byte order.
pub(super) fn hton(reg: u32, size: u32) -> Expr {
    Expr::new(
        "byteorder",
        Attrs::default()
            .u32(sys::NFTA_BYTEORDER_SREG, reg)
            .u32(sys::NFTA_BYTEORDER_DREG, reg)
            .u32(sys::NFTA_BYTEORDER_OP, sys::NFT_BYTEORDER_HTON)
            .u32(sys::NFTA_BYTEORDER_LEN, size)
            .u32(sys::NFTA_BYTEORDER_SIZE, size),
    )
}

/// A DSCP's mask in its header's bytes.
fn dscp_mask(family: Family) -> Vec<u8> {
    match family {
        Family::V4 => vec![0x3f << DSCP_SHIFT_V4],
        Family::V6 => (0x3f_u16 << DSCP_SHIFT_V6).to_be_bytes().to_vec(),
    }
}

/// Bytes a field's value takes as its load leaves it in a register (an
/// IPv6 DSCP keeps the two bytes it is loaded from).
pub(super) fn field_len(f: Field) -> usize {
    match f {
        Field::Dscp(Family::V6) => 2,
        other => other.key_type().size(),
    }
}

/// The bytes of one end of `v`, a value of `f`, as the field's load
/// leaves them in a register: a DSCP in place in its header's bytes, as
/// nft compares it. (nft shifts a DSCP down in a concatenation, and lists
/// that wrongly; validation keeps DSCP out of concatenations.)
pub(super) fn field_bytes(f: Field, v: &Value, end: End) -> Vec<u8> {
    let Field::Dscp(family) = f else {
        return value_bytes(f.key_type(), v, end);
    };
    let dscp = value_bytes(KeyType::Dscp, v, end)[0];
    match family {
        Family::V4 => vec![dscp << DSCP_SHIFT_V4],
        Family::V6 => (u16::from(dscp) << DSCP_SHIFT_V6).to_be_bytes().to_vec(),
    }
}

impl RuleBuilder {
    /// The checks the kernel must make before it reads `f`, unless the
    /// rule made them already.
    pub fn require_field(&mut self, f: Field) {
        if f == Field::EtherSaddr && !self.link_ether {
            self.meta_cmp_raw(libc::NFT_META_IIFTYPE as u32, &ARPHRD_ETHER.to_ne_bytes());
            self.link_ether = true;
        }
        if let Some(family) = f.family() {
            self.require_nfproto(family);
        }
        if let Some(l4) = f.l4() {
            self.require_l4proto(l4.number());
        }
    }

    /// The family check of a rule whose link layer is Ethernet, as nft
    /// makes it there: the Ethernet header's type.
    pub(super) fn ether_type_check(&mut self, family: Family) {
        let ether_type: u16 = match family {
            Family::V4 => 0x0800,
            Family::V6 => 0x86dd,
        };
        self.hand_made(payload(sys::NFT_PAYLOAD_LL_HEADER, ETHER_TYPE_OFFSET, 2, 1));
        self.cmp(rustables::expr::CmpOp::Eq, ether_type.to_be_bytes());
    }

    fn meta_cmp_raw(&mut self, key: u32, data: &[u8]) {
        self.hand_made(meta(key, 1));
        self.cmp(rustables::expr::CmpOp::Eq, data.to_vec());
    }

    /// Loads `fields` from register 1 on, their checks first (as nft
    /// emits them: every field's, then every load). A concatenation's
    /// parts each start a 32-bit register; a DSCP is masked.
    pub fn load_fields(&mut self, fields: &[Field]) {
        for f in fields {
            self.require_field(*f);
        }
        let mut word = 0;
        for f in fields {
            let reg = register(word);
            self.hand_made(match source(*f) {
                Source::Payload(base, offset, len) => payload(base, offset, len, reg),
                Source::Meta(key) => meta(key, reg),
                Source::Ct(key) => ct(key, reg),
            });
            if let Field::Dscp(family) = f {
                self.hand_made(and(reg, &dscp_mask(*family)));
            }
            word += field_len(*f).div_ceil(4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_named_as_nft_names_them() {
        // reg 1, then reg 9 after 4 bytes, reg 10 after 8, reg 2 after 16.
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 8].map(register),
            [1, 9, 10, 11, 2, 13, 3]
        );
    }

    #[test]
    fn a_dscp_is_compared_in_place() {
        let ef = Value::Number(46);
        let (v4, v6) = (Field::Dscp(Family::V4), Field::Dscp(Family::V6));
        assert_eq!(field_bytes(v4, &ef, End::First), [0xb8]);
        assert_eq!(field_bytes(v6, &ef, End::First), [0x0b, 0x80]);
        assert_eq!(field_len(v6), 2);
    }
}
