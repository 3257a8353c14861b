//! Expressions rustables 0.9 cannot make (limit, objref, flow_offload, rt,
//! byteorder, exthdr and payload writes, notrack, and nat, redir, masq,
//! reject and log with the options it lacks), written attribute by
//! attribute from the kernel's nf_tables UAPI
//! (`include/uapi/linux/netfilter/nf_tables.h`) as nft 1.0 sends them.
//!
//! rustables can carry no bytes of ours in a rule: its raw expression
//! cannot be built outside the crate. So a hand-made expression rides in
//! the rule as a stand-in, an `immediate` under a name no kernel
//! expression has whose value is the real expression, and [`put_in_place`]
//! swaps each stand-in for what it carries once rustables has written the
//! batch. A stand-in that reached the kernel would be refused (no such
//! expression), never applied.

use rustables::expr::{ExpressionVariant, Immediate, RawExpression, Register};
use rustables::sys;

use crate::kernel::wire::{
    NLMSG_HDRLEN, align4, attributes, rewrite_messages, u16_at, without_nul,
};

/// The stand-in's expression name.
const STAND_IN: &str = "wasmwall-hand-made";
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));
/// The nfgenmsg header after the netlink header of an nftables message.
const NFGENMSG_LEN: usize = 4;
const NEWRULE: u16 = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWRULE as u16;

/// nf_nat.h's range flags (NF_NAT_RANGE_*), which the nat, masq and redir
/// expressions take.
pub(super) mod nat_flags {
    pub const PROTO_SPECIFIED: u32 = 1 << 1;
    pub const PROTO_RANDOM: u32 = 1 << 2;
    pub const PERSISTENT: u32 = 1 << 3;
    pub const PROTO_RANDOM_FULLY: u32 = 1 << 4;
}

/// Netlink attributes, written in order: header (length, type), value,
/// padding to 4 bytes. Numbers are big-endian, as nf_tables reads them.
#[derive(Default)]
pub(super) struct Attrs(pub(super) Vec<u8>);

impl Attrs {
    /// An attribute of these bytes.
    pub fn put(mut self, ty: u16, value: &[u8]) -> Attrs {
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    pub fn u8(self, ty: u16, v: u8) -> Attrs {
        self.put(ty, &[v])
    }

    pub fn u32(self, ty: u16, v: u32) -> Attrs {
        self.put(ty, &v.to_be_bytes())
    }

    pub fn u64(self, ty: u16, v: u64) -> Attrs {
        self.put(ty, &v.to_be_bytes())
    }

    /// A string without its NUL, as libnftnl sends some names.
    pub fn str(self, ty: u16, s: &str) -> Attrs {
        self.put(ty, s.as_bytes())
    }

    /// A NUL-terminated string.
    pub fn strz(self, ty: u16, s: &str) -> Attrs {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(ty, &v)
    }

    pub fn u16(self, ty: u16, v: u16) -> Attrs {
        self.put(ty, &v.to_be_bytes())
    }

    /// A nested attribute (flagged NLA_F_NESTED, as libnftnl sends them)
    /// holding `inner`.
    pub fn nested(self, ty: u16, inner: Attrs) -> Attrs {
        self.put(ty | NLA_F_NESTED, &inner.0)
    }

    /// Data in an `NFTA_DATA_VALUE` nest, as expressions and set elements
    /// carry values.
    pub fn value(self, ty: u16, data: &[u8]) -> Attrs {
        self.nested(ty, Attrs::default().put(sys::NFTA_DATA_VALUE, data))
    }

    /// An expression nested in an attribute (a dynset's).
    pub fn expr(self, ty: u16, e: &Expr) -> Attrs {
        self.put(ty | NLA_F_NESTED, &e.element())
    }

    /// The attributes' bytes, to make a message of.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// One hand-made expression: its name, and its data's attributes (none
/// for an expression without data, as nft sends `notrack`).
pub(super) struct Expr {
    name: &'static str,
    data: Option<Attrs>,
}

impl Expr {
    pub fn new(name: &'static str, data: Attrs) -> Expr {
        Expr {
            name,
            data: Some(data),
        }
    }

    pub fn without_data(name: &'static str) -> Expr {
        Expr { name, data: None }
    }

    /// What a list element of the rule's expressions holds for it.
    fn element(&self) -> Vec<u8> {
        let mut a = Attrs::default().strz(sys::NFTA_EXPR_NAME, self.name);
        if let Some(data) = &self.data {
            a = a.put(sys::NFTA_EXPR_DATA | NLA_F_NESTED, &data.0);
        }
        a.0
    }

    /// The stand-in that carries this expression through rustables.
    pub fn stand_in(&self) -> RawExpression {
        RawExpression::default()
            .with_name(STAND_IN)
            .with_data(ExpressionVariant::Immediate(Immediate::new_data(
                self.element(),
                Register::Reg1,
            )))
    }
}

/// The batch with every stand-in replaced by the expression it carries,
/// and the lengths of the rule messages around them fixed.
pub(crate) fn put_in_place(batch: Vec<u8>) -> Vec<u8> {
    if !contains(&batch, STAND_IN.as_bytes()) {
        return batch;
    }
    rewrite_messages(batch, |msg| {
        (u16_at(msg, 4) == Some(NEWRULE) && msg.len() >= NLMSG_HDRLEN + NFGENMSG_LEN)
            .then(|| rule_in_place(msg))
    })
}

/// One rule message with its stand-ins replaced.
fn rule_in_place(msg: &[u8]) -> Vec<u8> {
    let head = NLMSG_HDRLEN + NFGENMSG_LEN;
    let mut attrs = Attrs::default();
    for (ty, value) in raw_attributes(&msg[head..]) {
        attrs = if ty & NLA_TYPE_MASK == sys::NFTA_RULE_EXPRESSIONS {
            let mut list = Attrs::default();
            for (elem_ty, elem) in raw_attributes(value) {
                list = list.put(elem_ty, &carried(elem).unwrap_or_else(|| elem.to_vec()));
            }
            attrs.put(ty, &list.0)
        } else {
            attrs.put(ty, value)
        };
    }
    let mut out = msg[..head].to_vec();
    out.extend_from_slice(&attrs.0);
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// What a stand-in list element carries; None for any other element.
fn carried(elem: &[u8]) -> Option<Vec<u8>> {
    let mut name = None;
    let mut data = None;
    for (ty, v) in attributes(elem) {
        match ty {
            t if t == sys::NFTA_EXPR_NAME => name = Some(v),
            t if t == sys::NFTA_EXPR_DATA => data = Some(v),
            _ => {}
        }
    }
    if without_nul(name?) != STAND_IN.as_bytes() {
        return None;
    }
    let immediate = attributes(data?)
        .find(|(t, _)| *t == sys::NFTA_IMMEDIATE_DATA)?
        .1;
    let value = attributes(immediate)
        .find(|(t, _)| *t == sys::NFTA_DATA_VALUE)?
        .1;
    Some(value.to_vec())
}

/// Attributes with their flags kept in the type, so they are written back
/// as they were.
fn raw_attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(buf, 0)?);
        let ty = u16_at(buf, 2)?;
        if len < NLA_HDRLEN || len > buf.len() {
            return None;
        }
        let value = &buf[NLA_HDRLEN..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((ty, value))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
