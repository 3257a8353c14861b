//! Sets, maps and their elements as nft 1.0.6 sends them, attribute by
//! attribute from the kernel's nf_tables UAPI: the set with its flags,
//! data type, description (size, a concatenation's parts), timeout and
//! nft's userdata (the byte order of key and data, which nft lists values
//! by); its elements with their interval ends, data and verdicts; and the
//! anonymous sets and maps a rule carries, sent just before the rule.
//!
//! rustables can write no message of ours into its batch: each is spliced
//! in at its place once the batch is written, as the objects' messages are
//! (`objects::splice`).

use rustables::{Batch, MsgType, Table, sys};

use super::ELEMENTS_PER_MESSAGE;
use super::elements::{self, KernelElement};
use super::expr::Attrs;
use crate::ir::{Data, Field, Key, KeyType, MapData, SetElement, SetElements, SetKind, Verdict};

const NFT_MSG_NEWSET: u16 = sys::NFT_MSG_NEWSET as u16;
const NFT_MSG_NEWSETELEM: u16 = sys::NFT_MSG_NEWSETELEM as u16;
const NFT_MSG_DELSETELEM: u16 = sys::NFT_MSG_DELSETELEM as u16;
const NLA_HDRLEN: usize = 4;

/// libnftnl's userdata of a set (NFTNL_UDATA_SET_*) and of an element
/// (NFTNL_UDATA_SET_ELEM_*), and nft's values in them.
mod udata {
    pub const KEY_BYTEORDER: u8 = 0;
    pub const DATA_BYTEORDER: u8 = 1;
    pub const KEY_TYPEOF: u8 = 3;
    pub const DATA_TYPEOF: u8 = 4;
    pub const DATA_INTERVAL: u8 = 6;
    pub const TYPEOF_EXPR: u8 = 0;
    pub const TYPEOF_DATA: u8 = 1;
    pub const ELEM_FLAGS: u8 = 1;
    pub const ELEM_F_INTERVAL_OPEN: u32 = 1;
    /// nft's byte orders (`enum byteorder`).
    pub const INVALID: u32 = 0;
    pub const HOST: u32 = 1;
    pub const BIG: u32 = 2;
    /// nft's expression types of a typeof (`enum expr_types`).
    pub const EXPR_VERDICT: u32 = 1;
    pub const EXPR_CONCAT: u32 = 13;
}

/// Element list attributes kept below this many bytes per message: a
/// netlink attribute holds at most 64 KiB.
const ELEMENT_BYTES_MAX: usize = 60_000;
/// Elements named in the text of an element message.
const ELEMENTS_SHOWN: usize = 4;

/// libnftnl's userdata: type, length, value.
#[derive(Default)]
struct Udata(Vec<u8>);

impl Udata {
    fn put(mut self, ty: u8, value: &[u8]) -> Udata {
        self.0.push(ty);
        self.0.push(value.len() as u8);
        self.0.extend_from_slice(value);
        self
    }

    fn u32(self, ty: u8, v: u32) -> Udata {
        self.put(ty, &v.to_ne_bytes())
    }

    /// nft's typeof of a concatenation or verdict declared by type: the
    /// expression's type and no expressions.
    fn typeof_type(self, ty: u8, expr: u32) -> Udata {
        let inner = Udata::default()
            .u32(udata::TYPEOF_EXPR, expr)
            .put(udata::TYPEOF_DATA, &[]);
        self.put(ty, &inner.0)
    }
}

/// Where an operation's messages go: their placeholders into the batch
/// (keeping the sequence numbers), the messages themselves beside it, to be
/// spliced in once rustables has written the batch; and their texts.
pub(super) struct Out<'a> {
    pub batch: &'a mut Batch,
    pub texts: &'a mut Vec<String>,
    pub messages: &'a mut Vec<(u32, Vec<u8>)>,
    pub placeholder: &'a Table,
}

impl Out<'_> {
    fn add(&mut self, ty: u16, attrs: Attrs, kind: MsgType, text: String) {
        let seq = self.texts.len() as u32 + 1;
        // Added as nft adds them (NLM_F_CREATE without NLM_F_EXCL).
        let flags = match kind {
            MsgType::Add => libc::NLM_F_CREATE | libc::NLM_F_ACK,
            MsgType::Del => libc::NLM_F_ACK,
        } as u16;
        self.messages
            .push((seq, super::objects::message(ty, flags, seq, attrs)));
        self.batch.add(self.placeholder, MsgType::Add);
        self.texts.push(text);
    }
}

/// nft's byte order of a key (or data) of these types declared by type.
fn declared_byteorder(key: &Key) -> u32 {
    match key.0.as_slice() {
        [KeyType::Mark | KeyType::Ifname] => udata::HOST,
        [KeyType::InetProto] => udata::INVALID,
        [_] => udata::BIG,
        _ => udata::INVALID,
    }
}

/// nft's byte order of a key that these fields load: a meta or ct value is
/// host-endian, a header field big-endian.
fn loaded_byteorder(fields: &[Field]) -> u32 {
    match fields {
        [Field::Iifname | Field::Oifname | Field::L4proto | Field::Mark | Field::CtMark] => {
            udata::HOST
        }
        [_] => udata::BIG,
        _ => udata::INVALID,
    }
}

/// How a set is made: named (its key declared by type) or anonymous (its
/// key the fields a rule loads).
#[derive(Clone, Copy)]
pub(super) enum Made<'a> {
    Named,
    Anonymous(&'a [Field]),
}

/// nft's userdata of a set of `kind`.
fn set_userdata(kind: &SetKind, made: Made) -> Vec<u8> {
    let order = match made {
        Made::Named => declared_byteorder(&kind.key),
        Made::Anonymous(fields) => loaded_byteorder(fields),
    };
    let mut u = Udata::default().u32(udata::KEY_BYTEORDER, order);
    if let Some(data) = &kind.data {
        let order = match data {
            MapData::Verdict => udata::INVALID,
            MapData::Values(key) => declared_byteorder(key),
        };
        u = u.u32(udata::DATA_BYTEORDER, order);
    }
    if matches!(made, Made::Named) && kind.key.is_concatenation() {
        u = u.typeof_type(udata::KEY_TYPEOF, udata::EXPR_CONCAT);
    }
    match (&kind.data, made) {
        (Some(MapData::Values(key)), Made::Named) if key.is_concatenation() => {
            u = u.typeof_type(udata::DATA_TYPEOF, udata::EXPR_CONCAT);
        }
        (Some(MapData::Verdict), Made::Anonymous(_)) => {
            u = u.typeof_type(udata::DATA_TYPEOF, udata::EXPR_VERDICT);
        }
        _ => {}
    }
    if kind.is_map() {
        u = u.u32(udata::DATA_INTERVAL, 0);
    }
    u.0
}

fn set_flags(kind: &SetKind, made: Made) -> u32 {
    let mut flags = 0;
    if matches!(made, Made::Anonymous(_)) {
        flags |= sys::NFT_SET_ANONYMOUS | sys::NFT_SET_CONSTANT;
    }
    if kind.intervals {
        flags |= sys::NFT_SET_INTERVAL;
        if kind.key.is_concatenation() {
            flags |= sys::NFT_SET_CONCAT;
        }
    }
    if kind.is_map() {
        flags |= sys::NFT_SET_MAP;
    }
    if kind.timeout.is_some() {
        flags |= sys::NFT_SET_TIMEOUT;
    }
    if kind.dynamic {
        flags |= sys::NFT_SET_EVAL;
    }
    flags
}

/// The attributes of a new set `name` of `kind` with batch id `id`; an
/// anonymous set's size is the number of elements sent for it.
fn set_attrs(
    table: &str,
    name: &str,
    id: u32,
    kind: &SetKind,
    made: Made,
    size: Option<u32>,
) -> Attrs {
    let mut a = Attrs::default()
        .strz(sys::NFTA_SET_TABLE, table)
        .strz(sys::NFTA_SET_NAME, name)
        .u32(sys::NFTA_SET_FLAGS, set_flags(kind, made))
        .u32(sys::NFTA_SET_KEY_TYPE, kind.key.id())
        .u32(sys::NFTA_SET_KEY_LEN, kind.key.len() as u32);
    match &kind.data {
        Some(MapData::Verdict) => {
            a = a
                .u32(sys::NFTA_SET_DATA_TYPE, sys::NFT_DATA_VERDICT)
                .u32(sys::NFTA_SET_DATA_LEN, 0);
        }
        Some(MapData::Values(data)) => {
            a = a
                .u32(sys::NFTA_SET_DATA_TYPE, data.id())
                .u32(sys::NFTA_SET_DATA_LEN, data.len() as u32);
        }
        None => {}
    }
    a = a.u32(sys::NFTA_SET_ID, id);
    let concat = kind.intervals && kind.key.is_concatenation();
    if size.is_some() || concat {
        let mut desc = Attrs::default();
        if let Some(size) = size {
            desc = desc.u32(sys::NFTA_SET_DESC_SIZE, size);
        }
        if concat {
            let mut parts = Attrs::default();
            for t in &kind.key.0 {
                let field = Attrs::default().u32(sys::NFTA_SET_FIELD_LEN, t.size() as u32);
                parts = parts.nested(sys::NFTA_LIST_ELEM, field);
            }
            desc = desc.nested(sys::NFTA_SET_DESC_CONCAT, parts);
        }
        a = a.nested(sys::NFTA_SET_DESC, desc);
    }
    if let Some(timeout) = kind.timeout {
        a = a.u64(sys::NFTA_SET_TIMEOUT, u64::from(timeout) * 1000);
    }
    a.put(sys::NFTA_SET_USERDATA, &set_userdata(kind, made))
}

/// Adds a named set or map and its elements; `id` is its id in the batch.
pub(super) fn add_set(
    out: &mut Out,
    table: &str,
    name: &str,
    text: String,
    elements: &SetElements,
) {
    let id = out.texts.len() as u32 + 1;
    let kind = &elements.kind;
    let attrs = set_attrs(table, name, id, kind, Made::Named, kind.size);
    out.add(NFT_MSG_NEWSET, attrs, MsgType::Add, text);
    add_elements(out, table, name, Some(id), elements, true);
}

/// Adds elements to set `name` (with its batch id when it is made in the
/// same batch). `first`: the set is made with them, and an interval set
/// gets the end at key 0 that nft sends before its first interval. The
/// planner's adds to a set the kernel holds send none: the kernel needs
/// none (a key below the first interval matches nothing without it), and
/// the planner cannot know that nft's would have been the first.
pub(super) fn add_elements(
    out: &mut Out,
    table: &str,
    name: &str,
    id: Option<u32>,
    elements: &SetElements,
    first: bool,
) {
    element_messages(out, table, name, id, elements, first, Verb::Add);
}

/// Deletes elements from set `name`: each element by its key (and an
/// interval's end), a map's without its data, which the kernel ignores.
pub(super) fn delete_elements(out: &mut Out, table: &str, name: &str, elements: &SetElements) {
    element_messages(out, table, name, None, elements, false, Verb::Delete);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Add,
    Delete,
}

/// One kernel element's nest (its type is set by its place in the
/// message): flags, key, the key that ends a concatenation's interval, a
/// map's data, and nft's mark of an interval that runs to the last key.
fn element_attrs(e: &KernelElement, data: Option<(&Data, &SetKind)>, open: bool) -> Attrs {
    let mut a = Attrs::default();
    if e.flags != 0 {
        a = a.u32(sys::NFTA_SET_ELEM_FLAGS, e.flags);
    }
    a = a.value(sys::NFTA_SET_ELEM_KEY, &e.key);
    if let Some(end) = &e.key_end {
        a = a.value(sys::NFTA_SET_ELEM_KEY_END, end);
    }
    match data {
        Some((Data::Verdict(v), _)) => a = a.nested(sys::NFTA_SET_ELEM_DATA, verdict_attrs(v)),
        Some((Data::Values(values), kind)) => {
            if let Some(MapData::Values(types)) = &kind.data {
                let bytes = elements::key_bytes(types, values, elements::End::First);
                a = a.value(sys::NFTA_SET_ELEM_DATA, &bytes);
            }
        }
        None => {}
    }
    if open {
        let u = Udata::default().u32(udata::ELEM_FLAGS, udata::ELEM_F_INTERVAL_OPEN);
        a = a.put(sys::NFTA_SET_ELEM_USERDATA, &u.0);
    }
    a
}

/// A verdict as a map's data: its code, and the chain of a jump or goto.
fn verdict_attrs(v: &Verdict) -> Attrs {
    let code: i32 = match v {
        Verdict::Accept => libc::NF_ACCEPT,
        Verdict::Drop => libc::NF_DROP,
        Verdict::Return => libc::NFT_RETURN,
        Verdict::Jump(_) => libc::NFT_JUMP,
        Verdict::Goto(_) => libc::NFT_GOTO,
    };
    let mut inner = Attrs::default().u32(sys::NFTA_VERDICT_CODE, code as u32);
    if let Some(chain) = v.chain() {
        inner = inner.strz(sys::NFTA_VERDICT_CHAIN, chain);
    }
    Attrs::default().nested(sys::NFTA_DATA_VERDICT, inner)
}

/// The kernel elements of one element of `kind`, each nest's attributes:
/// an interval's start and the end after it, as nft lays them out. The
/// start (or the element itself) carries a map's data, and an interval
/// that runs to the last key nft's mark of it.
fn kernel_nests(kind: &SetKind, e: &SetElement, verb: Verb) -> Vec<Attrs> {
    let mut kernel =
        elements::kernel_elements(&kind.key, std::slice::from_ref(&e.key), kind.intervals);
    // An end at key 0 comes before the first interval only (`leading_end`).
    if kind.intervals
        && !kind.key.is_concatenation()
        && kernel.len() > 1
        && kernel[0].flags & sys::NFT_SET_ELEM_INTERVAL_END != 0
    {
        kernel.remove(0);
    }
    // A single start without its end runs to the last key there is.
    let open = kind.intervals && !kind.key.is_concatenation() && kernel.len() == 1;
    let data = if verb == Verb::Add {
        e.data.as_ref().map(|d| (d, kind))
    } else {
        None
    };
    kernel
        .iter()
        .map(|k| {
            let start = k.flags & sys::NFT_SET_ELEM_INTERVAL_END == 0;
            element_attrs(k, data.filter(|_| start), open && start)
        })
        .collect()
}

/// The end at key 0 nft sends before the first interval of a set it makes
/// (or fills when empty), unless that interval starts at 0.
fn leading_end(kind: &SetKind, first: Option<&SetElement>) -> Option<Attrs> {
    if !kind.intervals || kind.key.is_concatenation() {
        return None;
    }
    let first = first?;
    let kernel = elements::kernel_elements(&kind.key, std::slice::from_ref(&first.key), true);
    let zero = kernel
        .first()
        .filter(|k| k.flags & sys::NFT_SET_ELEM_INTERVAL_END != 0 && kernel.len() > 1)?;
    Some(element_attrs(zero, None, false))
}

/// Element messages for `elements` of set `name`: as many elements per
/// message as keep it below the size of an attribute, each message named by
/// its first few elements.
fn element_messages(
    out: &mut Out,
    table: &str,
    name: &str,
    id: Option<u32>,
    elements: &SetElements,
    first: bool,
    verb: Verb,
) {
    let kind = &elements.kind;
    let (ty, msg_kind, word) = match verb {
        Verb::Add => (NFT_MSG_NEWSETELEM, MsgType::Add, "add"),
        Verb::Delete => (NFT_MSG_DELSETELEM, MsgType::Del, "delete"),
    };
    let mut nests: Vec<Attrs> = Vec::new();
    let mut bytes = 0;
    let mut named: Vec<&SetElement> = Vec::new();
    let flush = |out: &mut Out, nests: &mut Vec<Attrs>, named: &mut Vec<&SetElement>| {
        let mut list = Attrs::default();
        for (i, n) in nests.drain(..).enumerate() {
            // nft numbers the nests of a list from 1.
            list = list.nested(i as u16 + 1, n);
        }
        let mut a = Attrs::default()
            .strz(sys::NFTA_SET_ELEM_LIST_TABLE, table)
            .strz(sys::NFTA_SET_ELEM_LIST_SET, name);
        if let Some(id) = id {
            a = a.u32(sys::NFTA_SET_ELEM_LIST_SET_ID, id);
        }
        a = a.nested(sys::NFTA_SET_ELEM_LIST_ELEMENTS, list);
        let texts: Vec<String> = named.iter().map(|e| e.text(kind)).collect();
        let text = format!(
            "{word} element inet {table} {name} {{ {} }}",
            crate::plan::elements_text(&texts, ELEMENTS_SHOWN)
        );
        named.clear();
        out.add(ty, a, msg_kind, text);
    };
    // In the order nft lists them, which is the order it sends them in.
    let listed = elements.listed();
    if first
        && verb == Verb::Add
        && let Some(zero) = leading_end(kind, listed.first().copied())
    {
        bytes += zero.0.len() + NLA_HDRLEN;
        nests.push(zero);
    }
    for e in listed {
        let these = kernel_nests(kind, e, verb);
        let size: usize = these.iter().map(|n| n.0.len() + NLA_HDRLEN).sum();
        if !named.is_empty()
            && (bytes + size > ELEMENT_BYTES_MAX || named.len() == ELEMENTS_PER_MESSAGE)
        {
            flush(out, &mut nests, &mut named);
            bytes = 0;
        }
        bytes += size;
        nests.extend(these);
        named.push(e);
    }
    if !named.is_empty() {
        flush(out, &mut nests, &mut named);
    }
}

/// nft's name of an anonymous map: the kernel numbers it.
pub(super) const ANONYMOUS_MAP: &str = "__map%d";

/// Adds an inline map keyed by `fields`, and its elements, before the rule
/// that looks it up by its id in the batch, `id`.
pub(super) fn add_anonymous(
    out: &mut Out,
    table: &str,
    id: u32,
    fields: &[Field],
    elements: &SetElements,
) {
    let kind = &elements.kind;
    let name = ANONYMOUS_MAP;
    // nft's size of an anonymous set: its kernel elements, counting an
    // interval to the last key as the start and end it would have.
    let per_element = if kind.intervals && !kind.key.is_concatenation() {
        2
    } else {
        1
    };
    let mut count = elements.len() * per_element;
    count += usize::from(leading_end(kind, elements.listed().first().copied()).is_some());
    let attrs = set_attrs(
        table,
        name,
        id,
        kind,
        Made::Anonymous(fields),
        Some(count as u32),
    );
    let text = format!(
        "add map inet {table} {name} {{ type {}; }} (an inline map of the rule it precedes)",
        kind.type_text()
    );
    out.add(NFT_MSG_NEWSET, attrs, MsgType::Add, text);
    element_messages(out, table, name, Some(id), elements, true, Verb::Add);
}

#[cfg(test)]
mod tests;
