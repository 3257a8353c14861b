//! Sets and maps read back from the kernel's dumps: the kind from the set
//! (key and data types, flags, size, timeout), and the elements from their
//! kernel layout (interval starts and ends, a concatenation's key ends, a
//! map's data and verdicts) back to the canonical elements the runtime
//! writes, so that what was applied reads back equal. A set of a kind the
//! runtime never makes, or holding an element it would not write, reads as
//! unknown (and is made again). An anonymous set belongs to the rule that
//! uses it: only the chains its verdicts jump to are kept, as that rule's
//! references.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustables::sys;

use crate::ir::{
    self, Data, Element, Key, KeyType, MapData, SetElement, SetElements, SetKind, Value, Verdict,
};
use crate::kernel::wire::{Message, attribute, attributes, be32, be64, string};
use crate::plan::{ObservedSet, Ref};

/// The flags of the sets the runtime makes.
const KNOWN_FLAGS: u32 = sys::NFT_SET_INTERVAL
    | sys::NFT_SET_MAP
    | sys::NFT_SET_TIMEOUT
    | sys::NFT_SET_EVAL
    | sys::NFT_SET_CONCAT;

/// One kernel element as dumped.
struct Raw {
    key: Vec<u8>,
    key_end: Option<Vec<u8>>,
    end: bool,
    data: Option<RawData>,
}

enum RawData {
    Value(Vec<u8>),
    Verdict(i32, Option<String>),
}

/// A set (or map) of the runtime's table, as its dumps show it so far.
pub(super) struct Seen {
    pub name: String,
    /// Belongs to a rule.
    pub anonymous: bool,
    /// Its kind, when the runtime makes sets of it.
    kind: Option<SetKind>,
    verdicts: bool,
    /// None once an element the runtime would not write was seen.
    raw: Option<Vec<Raw>>,
}

impl Seen {
    /// The set in a NEWSET message of table `table`, if it is one.
    pub fn of(msg: &Message, table: &str) -> Option<Seen> {
        if msg.family() != Some(libc::NFPROTO_INET as u8) {
            return None;
        }
        let mut name = None;
        let mut ours = false;
        let mut flags = 0;
        let (mut key_type, mut key_len) = (0, 0);
        let (mut data_type, mut data_len) = (None, 0);
        let mut size = None;
        let mut parts: Option<Vec<u32>> = None;
        let mut timeout = None;
        for (ty, v) in msg.attributes() {
            match ty {
                sys::NFTA_SET_TABLE => ours = string(v) == table,
                sys::NFTA_SET_NAME => name = Some(string(v)),
                sys::NFTA_SET_FLAGS => flags = be32(v).unwrap_or(u32::MAX),
                sys::NFTA_SET_KEY_TYPE => key_type = be32(v).unwrap_or(0),
                sys::NFTA_SET_KEY_LEN => key_len = be32(v).unwrap_or(0),
                sys::NFTA_SET_DATA_TYPE => data_type = be32(v),
                sys::NFTA_SET_DATA_LEN => data_len = be32(v).unwrap_or(0),
                sys::NFTA_SET_TIMEOUT => timeout = Some(be64(v).unwrap_or(u64::MAX)),
                sys::NFTA_SET_DESC => {
                    size = attribute(v, sys::NFTA_SET_DESC_SIZE).and_then(be32);
                    parts = attribute(v, sys::NFTA_SET_DESC_CONCAT).map(|c| {
                        attributes(c)
                            .filter_map(|(_, f)| {
                                attribute(f, sys::NFTA_SET_FIELD_LEN).and_then(be32)
                            })
                            .collect()
                    });
                }
                _ => {}
            }
        }
        if !ours {
            return None;
        }
        let verdicts = flags & sys::NFT_SET_MAP != 0 && data_type == Some(sys::NFT_DATA_VERDICT);
        let declared = Declared {
            flags,
            key: (key_type, key_len),
            data: data_type.map(|t| (t, data_len)),
            size,
            parts,
            timeout,
        };
        let anonymous = flags & sys::NFT_SET_ANONYMOUS != 0;
        Some(Seen {
            name: name?,
            anonymous,
            kind: if anonymous { None } else { declared.kind() },
            verdicts,
            raw: Some(Vec::new()),
        })
    }

    /// Whether its elements are worth a dump: those of a set the runtime
    /// reads, and the verdicts of an anonymous verdict map.
    pub fn readable(&self) -> bool {
        self.kind.is_some() || (self.anonymous && self.verdicts)
    }

    /// Adds the elements of one NEWSETELEM message.
    pub fn elements(&mut self, msg: &Message) {
        let Some(raw) = self.raw.as_mut() else { return };
        let Some(list) = attribute(
            msg.payload.get(4..).unwrap_or_default(),
            sys::NFTA_SET_ELEM_LIST_ELEMENTS,
        ) else {
            return;
        };
        for (_, elem) in attributes(list) {
            match element(elem) {
                Some(e) => raw.push(e),
                None => {
                    self.raw = None;
                    return;
                }
            }
        }
    }

    /// The chains an anonymous verdict map's elements jump to.
    pub fn chain_refs(&self) -> Vec<Ref> {
        let raw = self.raw.iter().flatten();
        raw.filter_map(|r| match &r.data {
            Some(RawData::Verdict(_, Some(chain))) => Some(Ref::Chain(chain.as_str().into())),
            _ => None,
        })
        .collect()
    }

    pub fn finish(self) -> ObservedSet {
        let elements = match (self.kind, self.raw) {
            (Some(kind), Some(raw)) => decode(kind, &raw),
            _ => None,
        };
        ObservedSet {
            name: self.name.into(),
            elements,
            verdicts: self.verdicts,
        }
    }
}

/// A set's attributes as the kernel dumps them.
struct Declared {
    flags: u32,
    key: (u32, u32),
    data: Option<(u32, u32)>,
    size: Option<u32>,
    parts: Option<Vec<u32>>,
    timeout: Option<u64>,
}

impl Declared {
    /// The kind, if the runtime makes sets of it.
    fn kind(&self) -> Option<SetKind> {
        if self.flags & !KNOWN_FLAGS != 0 {
            return None;
        }
        let key = key_of(self.key.0, self.key.1)?;
        let intervals = self.flags & sys::NFT_SET_INTERVAL != 0;
        let concat = intervals && key.is_concatenation();
        if (self.flags & sys::NFT_SET_CONCAT != 0) != concat {
            return None;
        }
        if concat {
            let sizes: Vec<u32> = key.0.iter().map(|t| t.size() as u32).collect();
            if self.parts.as_ref() != Some(&sizes) {
                return None;
            }
        }
        let data = match (self.flags & sys::NFT_SET_MAP != 0, self.data) {
            (false, None) => None,
            (true, Some((sys::NFT_DATA_VERDICT, _))) => Some(MapData::Verdict),
            (true, Some((ty, len))) => Some(MapData::Values(key_of(ty, len)?)),
            _ => return None,
        };
        let timeout = match (self.flags & sys::NFT_SET_TIMEOUT != 0, self.timeout) {
            (false, None) => None,
            (true, Some(ms)) if ms % 1000 == 0 && ms > 0 => Some(u32::try_from(ms / 1000).ok()?),
            _ => return None,
        };
        Some(SetKind {
            key,
            data,
            intervals,
            timeout,
            dynamic: self.flags & sys::NFT_SET_EVAL != 0,
            size: self.size.filter(|s| *s > 0),
        })
    }
}

/// The key of nft's type id `id` (a concatenation's parts six bits each)
/// and kernel length `len`, if its parts are types the runtime knows.
fn key_of(mut id: u32, len: u32) -> Option<Key> {
    let mut parts = Vec::new();
    while id != 0 {
        parts.push(type_of(id & 0x3f)?);
        id >>= 6;
    }
    parts.reverse();
    let key = Key(parts);
    (!key.is_empty() && key.len() == len as usize).then_some(key)
}

fn type_of(id: u32) -> Option<KeyType> {
    [
        KeyType::Ipv4Addr,
        KeyType::Ipv6Addr,
        KeyType::InetService,
        KeyType::InetProto,
        KeyType::Ifname,
        KeyType::Mark,
        KeyType::EtherAddr,
        KeyType::IcmpType,
        KeyType::Icmpv6Type,
        KeyType::IcmpCode,
        KeyType::Icmpv6Code,
        KeyType::Dscp,
    ]
    .into_iter()
    .find(|t| t.id() == id)
}

/// One element of a NEWSETELEM message; None for one the runtime never
/// writes (a catch-all, a malformed one).
fn element(elem: &[u8]) -> Option<Raw> {
    let flags = attribute(elem, sys::NFTA_SET_ELEM_FLAGS)
        .and_then(be32)
        .unwrap_or(0);
    if flags & !sys::NFT_SET_ELEM_INTERVAL_END != 0 {
        return None;
    }
    let value = |ty| attribute(elem, ty).and_then(|k| attribute(k, sys::NFTA_DATA_VALUE));
    let key = value(sys::NFTA_SET_ELEM_KEY)?.to_vec();
    let key_end = value(sys::NFTA_SET_ELEM_KEY_END).map(<[u8]>::to_vec);
    let data = attribute(elem, sys::NFTA_SET_ELEM_DATA).and_then(|d| {
        if let Some(v) = attribute(d, sys::NFTA_DATA_VALUE) {
            return Some(RawData::Value(v.to_vec()));
        }
        let verdict = attribute(d, sys::NFTA_DATA_VERDICT)?;
        let code = attribute(verdict, sys::NFTA_VERDICT_CODE).and_then(be32)? as i32;
        let chain = attribute(verdict, sys::NFTA_VERDICT_CHAIN).map(string);
        Some(RawData::Verdict(code, chain))
    });
    Some(Raw {
        key,
        key_end,
        end: flags & sys::NFT_SET_ELEM_INTERVAL_END != 0,
        data,
    })
}

/// The elements of a set of `kind` from its kernel elements; None when one
/// is not as the runtime writes it.
fn decode(kind: SetKind, raw: &[Raw]) -> Option<SetElements> {
    let elements = if kind.intervals && !kind.key.is_concatenation() {
        intervals(&kind, raw)?
    } else {
        raw.iter()
            .map(|r| {
                if r.end {
                    return None;
                }
                let key = match &r.key_end {
                    Some(end) if kind.intervals => ranges(&kind.key, &r.key, end)?,
                    None if !kind.intervals => element_of(&kind.key, &r.key)?,
                    _ => return None,
                };
                Some(SetElement {
                    key,
                    data: data_of(&kind, r.data.as_ref())?,
                })
            })
            .collect::<Option<Vec<_>>>()?
    };
    Some(SetElements::new(kind, elements))
}

/// One-part intervals from their starts and ends: each start runs to the
/// first end after it (to the last key when none comes before the next
/// start); an end that closes no start (nft's end at key 0) is left out.
fn intervals(kind: &SetKind, raw: &[Raw]) -> Option<Vec<SetElement>> {
    let ty = kind.key.0[0];
    let mut starts: Vec<&Raw> = raw.iter().filter(|r| !r.end).collect();
    let mut ends: Vec<&[u8]> = raw
        .iter()
        .filter(|r| r.end)
        .map(|r| r.key.as_slice())
        .collect();
    starts.sort_by(|a, b| a.key.cmp(&b.key));
    ends.sort_unstable();
    let mut out = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        if start.key_end.is_some() || start.key.len() != ty.size() {
            return None;
        }
        let end = ends.get(ends.partition_point(|e| *e <= start.key.as_slice()));
        let last = match end {
            Some(end) => {
                if starts
                    .get(i + 1)
                    .is_some_and(|next| next.key.as_slice() < *end)
                {
                    return None;
                }
                before(end)?
            }
            None if i + 1 == starts.len() => vec![0xff; ty.size()],
            None => return None,
        };
        let first = value_of(ty, &start.key)?;
        let last = value_of(ty, &last)?;
        out.push(SetElement {
            key: Element(vec![canonical_range(ty, first, last)?]),
            data: data_of(kind, start.data.as_ref())?,
        });
    }
    Some(out)
}

/// The key before `bytes` (big-endian).
fn before(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        let (v, borrow) = b.overflowing_sub(1);
        *b = v;
        if !borrow {
            return Some(out);
        }
    }
    None
}

/// The range `first`..`last` of type `ty` in its one form (a value, a
/// prefix or a range), as validation writes it.
fn canonical_range(ty: KeyType, first: Value, last: Value) -> Option<Value> {
    if first == last {
        return Some(first);
    }
    let range = match (first, last) {
        (Value::Addr(a), Value::Addr(b)) => Value::AddrRange(a, b),
        (Value::Number(a), Value::Number(b)) => Value::Range(a, b),
        _ => return None,
    };
    match ir::merge_intervals(ty, &[range]).as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// A concatenation's element from the start and inclusive end of its key.
fn ranges(key: &Key, first: &[u8], last: &[u8]) -> Option<Element> {
    let (Element(a), Element(b)) = (element_of(key, first)?, element_of(key, last)?);
    let parts = key
        .0
        .iter()
        .zip(a.into_iter().zip(b))
        .map(|(ty, (x, y))| canonical_range(*ty, x, y))
        .collect::<Option<Vec<_>>>()?;
    Some(Element(parts))
}

/// The element of `key` whose kernel bytes are `bytes`: a concatenation's
/// parts each in whole 4-byte registers, the padding zero.
fn element_of(key: &Key, bytes: &[u8]) -> Option<Element> {
    if bytes.len() != key.len() {
        return None;
    }
    let concatenated = key.is_concatenation();
    let mut at = 0;
    let mut values = Vec::with_capacity(key.0.len());
    for ty in &key.0 {
        let size = ty.size();
        let value = value_of(*ty, bytes.get(at..at + size)?)?;
        values.push(value);
        let padded = if concatenated {
            size.div_ceil(4) * 4
        } else {
            size
        };
        if bytes.get(at + size..at + padded)?.iter().any(|b| *b != 0) {
            return None;
        }
        at += padded;
    }
    Some(Element(values))
}

/// One value of type `ty` from its kernel bytes.
fn value_of(ty: KeyType, b: &[u8]) -> Option<Value> {
    Some(match ty {
        KeyType::Ipv4Addr => Value::Addr(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        KeyType::Ipv6Addr => Value::Addr(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        KeyType::InetService => Value::Number(u16::from_be_bytes(b.try_into().ok()?).into()),
        KeyType::Mark => Value::Number(u32::from_ne_bytes(b.try_into().ok()?)),
        KeyType::EtherAddr => Value::Mac(b.try_into().ok()?),
        KeyType::Ifname => {
            let len = b.iter().position(|c| *c == 0)?;
            if len == 0 || b[len..].iter().any(|c| *c != 0) {
                return None;
            }
            Value::Name(std::str::from_utf8(&b[..len]).ok()?.to_string())
        }
        KeyType::InetProto
        | KeyType::IcmpType
        | KeyType::Icmpv6Type
        | KeyType::IcmpCode
        | KeyType::Icmpv6Code
        | KeyType::Dscp => {
            let [n] = b else { return None };
            Value::Number(u32::from(*n))
        }
    })
}

/// An element's data in a set of `kind` (none for a set); None (the outer)
/// when it does not fit the kind.
fn data_of(kind: &SetKind, raw: Option<&RawData>) -> Option<Option<Data>> {
    match (&kind.data, raw) {
        (None, None) => Some(None),
        (Some(MapData::Verdict), Some(RawData::Verdict(code, chain))) => {
            let v = match (*code, chain) {
                (libc::NF_ACCEPT, None) => Verdict::Accept,
                (libc::NF_DROP, None) => Verdict::Drop,
                (libc::NFT_RETURN, None) => Verdict::Return,
                (libc::NFT_JUMP, Some(c)) => Verdict::Jump(c.clone()),
                (libc::NFT_GOTO, Some(c)) => Verdict::Goto(c.clone()),
                _ => return None,
            };
            Some(Some(Data::Verdict(v)))
        }
        (Some(MapData::Values(types)), Some(RawData::Value(bytes))) => {
            Some(Some(Data::Values(element_of(types, bytes)?)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_decompose_into_their_parts() {
        let key = Key(vec![KeyType::Ipv4Addr, KeyType::InetService]);
        assert_eq!(key_of(key.id(), 8), Some(key));
        assert_eq!(key_of(0x1cd, 4), None, "the length must match");
        assert_eq!(key_of(41, 16), Some(Key(vec![KeyType::Ifname])));
        assert_eq!(key_of(63, 1), None, "an unknown type");
    }

    fn start(key: &[u8]) -> Raw {
        Raw {
            key: key.to_vec(),
            key_end: None,
            end: false,
            data: None,
        }
    }

    fn end(key: &[u8]) -> Raw {
        Raw {
            end: true,
            ..start(key)
        }
    }

    #[test]
    fn intervals_read_back_from_starts_and_ends() {
        let kind = SetKind {
            intervals: true,
            ..SetKind::plain(Key(vec![KeyType::InetService]))
        };
        // As the kernel dumps them, last first, nft's end at 0 included.
        let raw = [
            start(&[0xff, 0xff]),
            end(&[0x04, 0x01]),
            start(&[0x00, 0x01]),
            end(&[0x00, 0x00]),
        ];
        let set = decode(kind.clone(), &raw).unwrap();
        assert_eq!(set.texts(), ["65535", "1-1024"]);
        let broken = [start(&[0, 1]), start(&[0, 5]), end(&[0, 9])];
        assert_eq!(decode(kind, &broken), None, "two starts in a row");
    }
}
