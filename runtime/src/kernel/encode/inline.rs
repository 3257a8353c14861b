//! Inline (anonymous) sets as nft sends them: before the rule that looks
//! one up, a NEWSET (`__set%d`, flags anonymous and constant, interval
//! when an element is a prefix or range, concat with intervals of a
//! concatenation; an id unique in the batch, which the rule's lookup
//! names it by) and its elements' NEWSETELEMs. rustables cannot make
//! these messages; the batch carries a stand-in message in their place,
//! and [`put_in_place`] writes them over it once rustables is done.
//!
//! The set's userdata holds the byte order of its key, as nft records
//! it: nft's listing reads a key in host byte order (a mark, a name) by
//! it.

use rustables::{Batch, MsgType, ProtocolFamily, Table, sys};

use super::ELEMENTS_PER_MESSAGE;
use super::elements::{End, KernelElement, kernel_elements_by};
use super::expr::Attrs;
use super::fields::field_bytes;
use crate::ir::{Element, Field, InlineSet, KeyType, key_of};
use crate::kernel::wire::{NLMSG_HDRLEN, rewrite_messages, u32_at};

/// nft's name of an anonymous set: the kernel numbers it.
pub(super) const ANONYMOUS_NAME: &str = "__set%d";
/// nft's type id of `meta day` values.
const TYPE_DAY: u32 = 45;
/// libnftnl's userdata type of a set key's byte order, and nft's values.
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const BYTEORDER_NONE: u32 = 0;
const BYTEORDER_HOST: u32 = 1;
const BYTEORDER_BIG: u32 = 2;
const NEWSET: u16 = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWSET as u16;
const NEWSETELEM: u16 =
    ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWSETELEM as u16;
const NFGENMSG_LEN: usize = 4;

/// One inline set of a rule, as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelSet {
    /// Unique in the batch.
    pub id: u32,
    pub key_type: u32,
    pub key_len: u32,
    /// The key's byte order as nft records it (none for a concatenation).
    pub byteorder: u32,
    /// Each part's length, for a concatenation of intervals.
    pub field_lens: Vec<u32>,
    pub intervals: bool,
    pub elements: Vec<KernelElement>,
}

/// Whether nft keeps a key type in host byte order.
fn host_order(ty: KeyType) -> bool {
    matches!(ty, KeyType::Mark | KeyType::Ifname | KeyType::InetProto)
}

/// The set a test of `fields` against `set` makes.
pub(super) fn test_set(fields: &[Field], set: &InlineSet, id: u32) -> KernelSet {
    let key = key_of(fields);
    let concatenated = key.is_concatenation();
    let part_len = |f: &Field| super::fields::field_len(*f);
    let key_len = if concatenated {
        fields.iter().map(|f| part_len(f).div_ceil(4) * 4).sum()
    } else {
        part_len(&fields[0])
    };
    let bytes = |e: &Element, end: End| -> Vec<u8> {
        let mut out = Vec::with_capacity(key_len);
        for (f, v) in fields.iter().zip(&e.0) {
            out.extend(field_bytes(*f, v, end));
            if concatenated {
                out.resize(out.len().div_ceil(4) * 4, 0);
            }
        }
        out
    };
    KernelSet {
        id,
        key_type: key.id(),
        key_len: key_len as u32,
        byteorder: match key.0.as_slice() {
            [one] if host_order(*one) => BYTEORDER_HOST,
            [_] => BYTEORDER_BIG,
            _ => BYTEORDER_NONE,
        },
        field_lens: if concatenated && set.intervals {
            fields.iter().map(|f| part_len(f) as u32).collect()
        } else {
            Vec::new()
        },
        intervals: set.intervals,
        elements: kernel_elements_by(&set.elements, set.intervals, concatenated, bytes),
    }
}

/// The set `meta day { ... }` makes.
pub(super) fn day_set(days: &[u8], id: u32) -> KernelSet {
    KernelSet {
        id,
        key_type: TYPE_DAY,
        key_len: 1,
        byteorder: BYTEORDER_HOST,
        field_lens: Vec::new(),
        intervals: false,
        elements: days
            .iter()
            .map(|d| KernelElement {
                key: vec![*d],
                key_end: None,
                flags: 0,
            })
            .collect(),
    }
}

impl KernelSet {
    fn flags(&self) -> u32 {
        let mut flags = libc::NFT_SET_ANONYMOUS as u32 | libc::NFT_SET_CONSTANT as u32;
        if self.intervals {
            flags |= libc::NFT_SET_INTERVAL as u32;
        }
        if !self.field_lens.is_empty() {
            flags |= sys::NFT_SET_CONCAT;
        }
        flags
    }

    /// The NEWSET message's attributes.
    pub(super) fn newset(&self, table: &str) -> Vec<u8> {
        let mut desc = Attrs::default().u32(sys::NFTA_SET_DESC_SIZE, self.elements.len() as u32);
        if !self.field_lens.is_empty() {
            let fields = self.field_lens.iter().fold(Attrs::default(), |a, len| {
                a.nested(
                    sys::NFTA_LIST_ELEM,
                    Attrs::default().u32(sys::NFTA_SET_FIELD_LEN, *len),
                )
            });
            desc = desc.nested(sys::NFTA_SET_DESC_CONCAT, fields);
        }
        let mut userdata = vec![UDATA_SET_KEYBYTEORDER, 4];
        userdata.extend(self.byteorder.to_ne_bytes());
        Attrs::default()
            .strz(sys::NFTA_SET_TABLE, table)
            .strz(sys::NFTA_SET_NAME, ANONYMOUS_NAME)
            .u32(sys::NFTA_SET_FLAGS, self.flags())
            .u32(sys::NFTA_SET_KEY_TYPE, self.key_type)
            .u32(sys::NFTA_SET_KEY_LEN, self.key_len)
            .u32(sys::NFTA_SET_ID, self.id)
            .nested(sys::NFTA_SET_DESC, desc)
            .put(sys::NFTA_SET_USERDATA, &userdata)
            .into_bytes()
    }

    /// The NEWSETELEM messages' attributes, a bounded number of elements
    /// in each.
    pub(super) fn newsetelems(&self, table: &str) -> Vec<Vec<u8>> {
        self.elements
            .chunks(ELEMENTS_PER_MESSAGE)
            .map(|chunk| {
                let list = chunk.iter().fold(Attrs::default(), |a, e| {
                    let mut elem = Attrs::default().value(sys::NFTA_SET_ELEM_KEY, &e.key);
                    if let Some(end) = &e.key_end {
                        elem = elem.value(sys::NFTA_SET_ELEM_KEY_END, end);
                    }
                    if e.flags != 0 {
                        elem = elem.u32(sys::NFTA_SET_ELEM_FLAGS, e.flags);
                    }
                    a.nested(sys::NFTA_LIST_ELEM, elem)
                });
                Attrs::default()
                    .strz(sys::NFTA_SET_ELEM_LIST_TABLE, table)
                    .strz(sys::NFTA_SET_ELEM_LIST_SET, ANONYMOUS_NAME)
                    .u32(sys::NFTA_SET_ELEM_LIST_SET_ID, self.id)
                    .nested(sys::NFTA_SET_ELEM_LIST_ELEMENTS, list)
                    .into_bytes()
            })
            .collect()
    }
}

/// Adds `set`'s messages to the batch as stand-ins, with their texts, and
/// records the messages to write over them.
pub(super) fn add_to_batch(
    batch: &mut Batch,
    texts: &mut Vec<String>,
    hand_made: &mut Vec<HandMadeMessage>,
    table: &str,
    set: &KernelSet,
) {
    let stand_in = Table::new(ProtocolFamily::Inet).with_name(table);
    let mut add = |msg: fn(u32, Vec<u8>) -> HandMadeMessage, attributes, text: String| {
        batch.add(&stand_in, MsgType::Add);
        texts.push(text);
        hand_made.push(msg(texts.len() as u32, attributes));
    };
    add(
        HandMadeMessage::newset,
        set.newset(table),
        format!("add set inet {table} {ANONYMOUS_NAME} (an inline set of the rule it precedes)"),
    );
    for (i, attributes) in set.newsetelems(table).into_iter().enumerate() {
        let shown =
            set.elements.len().min((i + 1) * ELEMENTS_PER_MESSAGE) - i * ELEMENTS_PER_MESSAGE;
        add(
            HandMadeMessage::newsetelem,
            attributes,
            format!("add element inet {table} {ANONYMOUS_NAME} ({shown} elements)"),
        );
    }
}

/// A message to write over the stand-in of sequence number `seq`.
pub(super) struct HandMadeMessage {
    pub seq: u32,
    pub ty: u16,
    /// The attributes, after the nfgenmsg header.
    pub attributes: Vec<u8>,
}

impl HandMadeMessage {
    pub(super) fn newset(seq: u32, attributes: Vec<u8>) -> Self {
        HandMadeMessage {
            seq,
            ty: NEWSET,
            attributes,
        }
    }

    pub(super) fn newsetelem(seq: u32, attributes: Vec<u8>) -> Self {
        HandMadeMessage {
            seq,
            ty: NEWSETELEM,
            attributes,
        }
    }
}

/// The batch with the message of each hand-made message's sequence number
/// replaced by it: the stand-in's header (flags, sequence, port) kept, its
/// type and length changed, an inet nfgenmsg and the attributes after it.
/// Messages are in sequence order, as the batch's are.
pub(super) fn put_in_place(batch: Vec<u8>, messages: &[HandMadeMessage]) -> Vec<u8> {
    if messages.is_empty() {
        return batch;
    }
    let mut pending = messages.iter().peekable();
    rewrite_messages(batch, |stand_in| {
        let m = pending.next_if(|m| u32_at(stand_in, 8) == Some(m.seq))?;
        let mut msg = stand_in[..NLMSG_HDRLEN].to_vec();
        msg[4..6].copy_from_slice(&m.ty.to_ne_bytes());
        msg.extend_from_slice(&[libc::NFPROTO_INET as u8, 0, 0, 0]);
        msg.extend_from_slice(&m.attributes);
        let new_len = (NLMSG_HDRLEN + NFGENMSG_LEN + m.attributes.len()) as u32;
        msg[..4].copy_from_slice(&new_len.to_ne_bytes());
        Some(msg)
    })
}
