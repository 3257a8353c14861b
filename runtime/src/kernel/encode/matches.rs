//! Each match of a rule as the expressions nft emits for it: its fields
//! loaded (`fields`), then compared with a value, a prefix or a range,
//! looked up in an inline set (`inline`) or a named one, masked, or read by
//! the kernel (ct status, route lookups, time, rate limits).

use rustables::expr::{CmpOp, Conntrack, ConntrackKey, MetaType};
use rustables::sys;

use super::actions::{limit_expr, objref};
use super::elements::End;
use super::expr::{Attrs, Expr};
use super::fields::{and, field_bytes, hton, meta};
use super::inline::{ANONYMOUS_NAME, KernelSet, day_set, test_set};
use super::rule::{RuleBuilder, and_mask, eq_or_neq};
use crate::ir::{Against, Family, FibCheck, Field, Match, Rate, Value};

/// The kernel's route type of a local address (RTN_LOCAL).
const RTN_LOCAL: u32 = 2;
/// TCP flags: the header's byte 13.
const TCP_FLAGS_OFFSET: u32 = 13;

impl RuleBuilder {
    pub fn add_match(&mut self, m: &Match) -> Result<(), String> {
        match m {
            Match::Iifname { name, negate } | Match::Oifname { name, negate } => {
                let field = if matches!(m, Match::Iifname { .. }) {
                    Field::Iifname
                } else {
                    Field::Oifname
                };
                self.load_fields(&[field]);
                self.compare(field, &Value::Name(name.clone()), *negate)?;
            }
            Match::Addr { dir, net, negate } => {
                self.load_fields(&[Field::addr(*dir, Family::of(&net.ip()))]);
                self.compare(
                    Field::addr(*dir, Family::of(&net.ip())),
                    &net_value(net),
                    *negate,
                )?;
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
                let field = Field::port(*dir, *proto);
                self.load_fields(&[field]);
                let value = if first == last {
                    Value::Number((*first).into())
                } else {
                    Value::Range((*first).into(), (*last).into())
                };
                self.compare(field, &value, *negate)?;
            }
            Match::CtState(states) => {
                self.push(Conntrack::new(ConntrackKey::State));
                self.push(and_mask(states.0.to_ne_bytes().to_vec()));
                self.cmp(CmpOp::Neq, [0; 4]);
            }
            Match::AddrInSet { dir, family, set } => {
                self.load_fields(&[Field::addr(*dir, *family)]);
                self.lookup(set);
            }
            Match::PortInSet { dir, proto, set } => {
                self.load_fields(&[Field::port(*dir, *proto)]);
                self.lookup(set);
            }
            Match::Nfproto { family, negate } => {
                let proto = match family {
                    Family::V4 => libc::NFPROTO_IPV4,
                    Family::V6 => libc::NFPROTO_IPV6,
                };
                self.meta_cmp(MetaType::NfProto, eq_or_neq(*negate), [proto as u8]);
                if !negate {
                    self.nfproto = Some(*family);
                }
            }
            Match::Test {
                fields,
                against,
                negate,
            } => {
                self.load_fields(fields);
                match against {
                    Against::One(value) => self.compare(fields[0], value, *negate)?,
                    Against::Set(set) => {
                        let id = self.next_set_id;
                        self.inline_set(test_set(fields, set, id), *negate);
                    }
                }
            }
            Match::InSet {
                fields,
                set,
                negate,
            } => {
                self.load_fields(fields);
                self.lookup_in(set, None, *negate);
            }
            Match::Masked {
                field,
                mask,
                value,
                negate,
            } => {
                self.load_fields(&[*field]);
                self.hand_made(and(1, &field_bytes(*field, mask, End::First)));
                self.cmp(eq_or_neq(*negate), field_bytes(*field, value, End::First));
            }
            Match::TcpFlags {
                flags,
                mask,
                negate,
            } => {
                self.require_l4proto(libc::IPPROTO_TCP as u8);
                self.hand_made(super::fields::payload(
                    sys::NFT_PAYLOAD_TRANSPORT_HEADER,
                    TCP_FLAGS_OFFSET,
                    1,
                    1,
                ));
                self.hand_made(and(1, &[*mask]));
                self.cmp(eq_or_neq(*negate), [*flags]);
            }
            Match::CtStatus { bits, negate } => {
                self.hand_made(super::fields::ct(sys::NFT_CT_STATUS, 1));
                self.hand_made(and(1, &bits.to_ne_bytes()));
                // Any bit set; negated, none.
                let op = if *negate { CmpOp::Eq } else { CmpOp::Neq };
                self.cmp(op, [0; 4]);
            }
            Match::Fib { check, negate } => {
                let (flags, result, value) = match check {
                    FibCheck::ReversePathMissing => (
                        sys::NFTA_FIB_F_SADDR | sys::NFTA_FIB_F_IIF | sys::NFTA_FIB_F_PRESENT,
                        sys::NFT_FIB_RESULT_OIF,
                        0,
                    ),
                    FibCheck::ReversePathMissingMark => (
                        sys::NFTA_FIB_F_SADDR
                            | sys::NFTA_FIB_F_MARK
                            | sys::NFTA_FIB_F_IIF
                            | sys::NFTA_FIB_F_PRESENT,
                        sys::NFT_FIB_RESULT_OIF,
                        0,
                    ),
                    FibCheck::DaddrLocal => (
                        sys::NFTA_FIB_F_DADDR,
                        sys::NFT_FIB_RESULT_ADDRTYPE,
                        RTN_LOCAL,
                    ),
                };
                self.hand_made(Expr::new(
                    "fib",
                    Attrs::default()
                        .u32(sys::NFTA_FIB_FLAGS, flags)
                        .u32(sys::NFTA_FIB_RESULT, result)
                        .u32(sys::NFTA_FIB_DREG, 1),
                ));
                self.cmp(eq_or_neq(*negate), value.to_ne_bytes());
            }
            Match::Hour(h) => {
                self.load_meta(sys::NFT_META_TIME_HOUR, 4);
                let (from, to) = (h.utc.0.to_be_bytes(), h.utc.1.to_be_bytes());
                self.in_range(&from, &to, h.negate);
            }
            Match::Day(days) => {
                self.hand_made(meta(sys::NFT_META_TIME_DAY, 1));
                match days.as_slice() {
                    [one] => self.cmp(CmpOp::Eq, [*one]),
                    _ => {
                        let id = self.next_set_id;
                        self.inline_set(day_set(days, id), false);
                    }
                }
            }
            Match::Date(d) => {
                self.load_meta(sys::NFT_META_TIME_NS, 8);
                let (from, to) = (d.utc_ns.0.to_be_bytes(), d.utc_ns.1.to_be_bytes());
                self.in_range(&from, &to, false);
            }
            Match::Limit { rate, over } => self.hand_made(limit_expr(rate, *over)),
            Match::LimitNamed(name) => self.hand_made(objref(sys::NFT_OBJECT_LIMIT, name)),
            Match::KeyedLimit {
                fields,
                set,
                rate,
                over,
            } => {
                self.load_fields(fields);
                self.hand_made(keyed_limit(set, rate, *over));
            }
        }
        Ok(())
    }

    /// A meta key of `size` bytes in register 1, in network byte order (as
    /// nft compares the time).
    fn load_meta(&mut self, key: u32, size: u32) {
        self.hand_made(meta(key, 1));
        self.hand_made(hton(1, size));
    }

    /// Register 1 (holding `field`) against one value: equal, within a
    /// prefix (masked), or within a range.
    fn compare(&mut self, field: Field, value: &Value, negate: bool) -> Result<(), String> {
        let bytes = |end| field_bytes(field, value, end);
        match value {
            Value::Prefix(net) => {
                let mask = match net.mask() {
                    std::net::IpAddr::V4(m) => m.octets().to_vec(),
                    std::net::IpAddr::V6(m) => m.octets().to_vec(),
                };
                self.hand_made(and(1, &mask));
                self.cmp(eq_or_neq(negate), bytes(End::First));
            }
            Value::Range(..) | Value::AddrRange(..) => {
                if negate {
                    return Err("a negated range cannot be expressed".into());
                }
                self.in_range(&bytes(End::First), &bytes(End::Last), false);
            }
            Value::Name(name) => {
                // A wildcard compares the name's start only.
                let stem = name.strip_suffix('*').unwrap_or(name);
                if stem.len() == name.len() {
                    self.cmp(eq_or_neq(negate), ifname(name)?);
                } else {
                    self.cmp(eq_or_neq(negate), stem.as_bytes());
                }
            }
            _ => self.cmp(eq_or_neq(negate), bytes(End::First)),
        }
        Ok(())
    }

    /// Register 1 within `from`-`to` as nft checks it (`cmp gte`, `cmp
    /// lte`), or, negated, outside it (`range neq`).
    fn in_range(&mut self, from: &[u8], to: &[u8], negate: bool) {
        if negate {
            self.hand_made(Expr::new(
                "range",
                Attrs::default()
                    .u32(sys::NFTA_RANGE_SREG, 1)
                    .u32(sys::NFTA_RANGE_OP, sys::NFT_RANGE_NEQ)
                    .value(sys::NFTA_RANGE_FROM_DATA, from)
                    .value(sys::NFTA_RANGE_TO_DATA, to),
            ));
        } else {
            self.cmp(CmpOp::Gte, from.to_vec());
            self.cmp(CmpOp::Lte, to.to_vec());
        }
    }

    /// A lookup of register 1 in `set` (with `id`, an inline set of this
    /// batch), or with `negate`, its absence.
    pub fn lookup_in(&mut self, set: &str, id: Option<u32>, negate: bool) {
        let mut data = Attrs::default()
            .u32(sys::NFTA_LOOKUP_SREG, 1)
            .strz(sys::NFTA_LOOKUP_SET, set);
        if let Some(id) = id {
            data = data.u32(sys::NFTA_LOOKUP_SET_ID, id);
        }
        if negate {
            data = data.u32(sys::NFTA_LOOKUP_FLAGS, sys::NFT_LOOKUP_F_INV);
        }
        self.hand_made(Expr::new("lookup", data));
    }

    /// Looks register 1 up in a new inline set, sent before the rule.
    fn inline_set(&mut self, set: KernelSet, negate: bool) {
        self.lookup_in(ANONYMOUS_NAME, Some(set.id), negate);
        self.next_set_id += 1;
        self.inline_sets.push(set);
    }
}

/// A prefix or address as the value of a test.
fn net_value(net: &ipnetwork::IpNetwork) -> Value {
    if net.prefix() == if net.is_ipv4() { 32 } else { 128 } {
        Value::Addr(net.ip())
    } else {
        Value::Prefix(*net)
    }
}

/// `add @set { <key in register 1> limit rate ... }`.
fn keyed_limit(set: &str, rate: &Rate, over: bool) -> Expr {
    Expr::new(
        "dynset",
        Attrs::default()
            .u32(sys::NFTA_DYNSET_SREG_KEY, 1)
            .u32(sys::NFTA_DYNSET_OP, sys::NFT_DYNSET_OP_ADD)
            .strz(sys::NFTA_DYNSET_SET_NAME, set)
            .expr(sys::NFTA_DYNSET_EXPR, &limit_expr(rate, over)),
    )
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

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;
