//! Reading the runtime's table back from nftables dumps.
//!
//! Only what the planner needs is decoded: chain kinds, each rule's handle,
//! tag and references (jump targets, looked-up sets), and set elements.
//! Decoding is one pass over each message, so observing is linear in the
//! size of the table.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::encode::{TABLE_MARKER, parse_rule_tag, udata_value};
use super::wire::{Message, attribute, attributes, be32, be64, string};
use crate::ir::{self, BaseChain, SetElements};
use crate::plan::{ChainKind, ObservedChain, ObservedRule, ObservedSet, ObservedTable, Ref};

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_USERDATA: u16 = 6;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_HOOK_DEVS: u16 = 4;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_DYNSET_SET_NAME: u16 = 1;
/// The start of the kernel's names of anonymous sets (`__set0`, ...).
const ANONYMOUS_SET_PREFIX: &str = "__set";
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// nft's data types of the set keys the runtime makes.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_SERVICE: u32 = 13;

/// Whether a NEWTABLE message describes the inet table `name`, and if so
/// whether it carries the runtime's marker.
pub(crate) fn table(msg: &Message, name: &str) -> Option<bool> {
    if msg.family() != Some(libc::NFPROTO_INET as u8) {
        return None;
    }
    let mut found = false;
    let mut owned = false;
    for (ty, v) in msg.attributes() {
        match ty {
            NFTA_TABLE_NAME => found = string(v) == name,
            NFTA_TABLE_USERDATA => owned = udata_value(v, 0) == Some(TABLE_MARKER),
            _ => {}
        }
    }
    found.then_some(owned)
}

/// The handle in a NEWRULE message (a dump entry or an echo).
pub(crate) fn rule_handle(msg: &Message) -> Option<u64> {
    attribute(msg.payload.get(4..)?, NFTA_RULE_HANDLE).and_then(be64)
}

/// Collects the runtime's table from the messages of its dumps.
pub(crate) struct Collector<'a> {
    table: &'a str,
    out: ObservedTable,
    chains: HashMap<String, usize>,
    /// Each set's key kind (None: not a kind the runtime makes) and raw keys.
    sets: Vec<(String, Option<SetElements>, Vec<Vec<u8>>)>,
}

impl<'a> Collector<'a> {
    pub fn new(table: &'a str, owned: bool) -> Self {
        Collector {
            table,
            out: ObservedTable {
                owned,
                ..ObservedTable::default()
            },
            chains: HashMap::new(),
            sets: Vec::new(),
        }
    }

    fn ours(&self, msg: &Message, table_attr: u16) -> bool {
        msg.family() == Some(libc::NFPROTO_INET as u8)
            && attribute(msg.payload.get(4..).unwrap_or_default(), table_attr)
                .is_some_and(|v| string(v) == self.table)
    }

    pub fn chain(&mut self, msg: &Message) {
        if !self.ours(msg, NFTA_CHAIN_TABLE) {
            return;
        }
        let mut name = None;
        let mut hook = None;
        let mut policy = None;
        let mut chain_type = None;
        for (ty, v) in msg.attributes() {
            match ty {
                NFTA_CHAIN_NAME => name = Some(string(v)),
                NFTA_CHAIN_HOOK => hook = Some(v),
                NFTA_CHAIN_POLICY => policy = be32(v),
                NFTA_CHAIN_TYPE => chain_type = Some(string(v)),
                _ => {}
            }
        }
        let Some(name) = name else { return };
        let kind = match hook {
            None => ChainKind::Regular,
            Some(hook) => base_chain(hook, policy, chain_type.as_deref())
                .map_or(ChainKind::Foreign, ChainKind::Base),
        };
        self.chains.insert(name.clone(), self.out.chains.len());
        self.out.chains.push(ObservedChain {
            name: name.into(),
            kind,
            rules: Vec::new(),
        });
    }

    pub fn rule(&mut self, msg: &Message) {
        if !self.ours(msg, NFTA_RULE_TABLE) {
            return;
        }
        let mut chain = None;
        let mut handle = None;
        let mut tag = None;
        let mut refs = Vec::new();
        for (ty, v) in msg.attributes() {
            match ty {
                NFTA_RULE_CHAIN => chain = Some(v),
                NFTA_RULE_HANDLE => handle = be64(v),
                NFTA_RULE_USERDATA => tag = parse_rule_tag(v),
                NFTA_RULE_EXPRESSIONS => references(v, &mut refs),
                _ => {}
            }
        }
        let (Some(chain), Some(handle)) = (chain, handle) else {
            return;
        };
        refs.sort();
        refs.dedup();
        let at = self.chains.get(string(chain).as_str()).copied();
        // A rule of a chain made after the chain dump is caught by the
        // generation check around the whole observation.
        if let Some(at) = at {
            self.out.chains[at]
                .rules
                .push(ObservedRule { handle, tag, refs });
        }
    }

    /// Records a set; returns its name when its elements should be dumped.
    pub fn set(&mut self, msg: &Message) -> Option<String> {
        if !self.ours(msg, NFTA_SET_TABLE) {
            return None;
        }
        let mut name = None;
        let mut flags = 0;
        let mut key = (0, 0);
        for (ty, v) in msg.attributes() {
            match ty {
                NFTA_SET_NAME => name = Some(string(v)),
                NFTA_SET_FLAGS => flags = be32(v).unwrap_or(u32::MAX),
                NFTA_SET_KEY_TYPE => key.0 = be32(v).unwrap_or(0),
                NFTA_SET_KEY_LEN => key.1 = be32(v).unwrap_or(0),
                _ => {}
            }
        }
        let name = name?;
        // Anonymous sets belong to the rule that uses them.
        if flags & libc::NFT_SET_ANONYMOUS as u32 != 0 {
            return None;
        }
        // Only plain sets of these keys are the runtime's kind; anything
        // else (intervals, maps, timeouts, ...) was made by hand.
        let kind = match (flags, key) {
            (0, (TYPE_IPADDR, 4)) => Some(SetElements::Ipv4(Vec::new())),
            (0, (TYPE_IP6ADDR, 16)) => Some(SetElements::Ipv6(Vec::new())),
            (0, (TYPE_INET_SERVICE, 2)) => Some(SetElements::Ports(Vec::new())),
            _ => None,
        };
        let dump = kind.is_some();
        self.sets.push((name.clone(), kind, Vec::new()));
        dump.then_some(name)
    }

    /// Adds the elements of one NEWSETELEM message to set `name`.
    pub fn elements(&mut self, name: &str, msg: &Message) {
        let Some((_, kind, keys)) = self.sets.iter_mut().find(|(n, _, _)| n == name) else {
            return;
        };
        let Some(list) = attribute(
            msg.payload.get(4..).unwrap_or_default(),
            NFTA_SET_ELEM_LIST_ELEMENTS,
        ) else {
            return;
        };
        for (ty, elem) in attributes(list) {
            if ty != NFTA_LIST_ELEM {
                continue;
            }
            let flags = attribute(elem, NFTA_SET_ELEM_FLAGS)
                .and_then(be32)
                .unwrap_or(0);
            let key =
                attribute(elem, NFTA_SET_ELEM_KEY).and_then(|k| attribute(k, NFTA_DATA_VALUE));
            match key {
                Some(k) if flags == 0 => keys.push(k.to_vec()),
                // Not an element the runtime would write.
                _ => *kind = None,
            }
        }
    }

    pub fn finish(mut self) -> ObservedTable {
        for (name, kind, keys) in self.sets {
            let elements = kind.and_then(|k| decode_keys(&k, &keys));
            self.out.sets.push(ObservedSet {
                name: name.into(),
                elements,
            });
        }
        self.out
    }
}

fn decode_keys(kind: &SetElements, keys: &[Vec<u8>]) -> Option<SetElements> {
    fn all<T: Ord>(keys: &[Vec<u8>], f: impl Fn(&[u8]) -> Option<T>) -> Option<Vec<T>> {
        let mut v = keys.iter().map(|k| f(k)).collect::<Option<Vec<T>>>()?;
        v.sort();
        v.dedup();
        Some(v)
    }
    Some(match kind {
        SetElements::Ipv4(_) => SetElements::Ipv4(all(keys, |k| {
            Some(Ipv4Addr::from(<[u8; 4]>::try_from(k).ok()?))
        })?),
        SetElements::Ipv6(_) => SetElements::Ipv6(all(keys, |k| {
            Some(Ipv6Addr::from(<[u8; 16]>::try_from(k).ok()?))
        })?),
        SetElements::Ports(_) => SetElements::Ports(all(keys, |k| {
            Some(u16::from_be_bytes(<[u8; 2]>::try_from(k).ok()?))
        })?),
    })
}

/// A base chain of a kind the runtime makes, or None.
fn base_chain(hook: &[u8], policy: Option<u32>, chain_type: Option<&str>) -> Option<BaseChain> {
    if attribute(hook, NFTA_HOOK_DEV).is_some() || attribute(hook, NFTA_HOOK_DEVS).is_some() {
        return None;
    }
    let hook_kind = match attribute(hook, NFTA_HOOK_HOOKNUM).and_then(be32)? as i32 {
        libc::NF_INET_PRE_ROUTING => ir::Hook::Prerouting,
        libc::NF_INET_LOCAL_IN => ir::Hook::Input,
        libc::NF_INET_FORWARD => ir::Hook::Forward,
        libc::NF_INET_LOCAL_OUT => ir::Hook::Output,
        libc::NF_INET_POST_ROUTING => ir::Hook::Postrouting,
        _ => return None,
    };
    let priority = attribute(hook, NFTA_HOOK_PRIORITY).and_then(be32)? as i32;
    let chain_type = match chain_type? {
        "filter" => ir::ChainType::Filter,
        "nat" => ir::ChainType::Nat,
        _ => return None,
    };
    let policy = match policy? {
        NF_ACCEPT => ir::ChainPolicy::Accept,
        NF_DROP => ir::ChainPolicy::Drop,
        _ => return None,
    };
    Some(BaseChain {
        hook: hook_kind,
        chain_type,
        priority,
        policy,
    })
}

/// The chains a rule's expressions jump to and the sets they look up.
fn references(expressions: &[u8], refs: &mut Vec<Ref>) {
    for (ty, expr) in attributes(expressions) {
        if ty != NFTA_LIST_ELEM {
            continue;
        }
        let (Some(name), Some(data)) = (
            attribute(expr, NFTA_EXPR_NAME),
            attribute(expr, NFTA_EXPR_DATA),
        ) else {
            continue;
        };
        match name {
            b"immediate\0" => {
                let chain = attribute(data, NFTA_IMMEDIATE_DATA)
                    .and_then(|d| attribute(d, NFTA_DATA_VERDICT))
                    .and_then(|v| attribute(v, NFTA_VERDICT_CHAIN));
                if let Some(c) = chain {
                    refs.push(Ref::Chain(string(c).into()));
                }
            }
            b"lookup\0" => {
                // An inline set (nft's `__set%d`, numbered by the kernel)
                // belongs to its rule: it is no reference to follow.
                if let Some(s) = attribute(data, NFTA_LOOKUP_SET).map(string)
                    && !s.starts_with(ANONYMOUS_SET_PREFIX)
                {
                    refs.push(Ref::Set(s.into()));
                }
            }
            b"dynset\0" => {
                if let Some(s) = attribute(data, NFTA_DYNSET_SET_NAME) {
                    refs.push(Ref::Set(string(s).into()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut out = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        out.extend(ty.to_ne_bytes());
        out.extend(value);
        out.resize(out.len().div_ceil(4) * 4, 0);
        out
    }

    /// A rule's expression list element: the expression's name and its
    /// data, the set's name as attribute 1 (lookup's and dynset's).
    fn expression(name: &str, set: &str) -> Vec<u8> {
        let data = attr(1, format!("{set}\0").as_bytes());
        let mut inner = attr(NFTA_EXPR_NAME, format!("{name}\0").as_bytes());
        inner.extend(attr(NFTA_EXPR_DATA, &data));
        attr(NFTA_LIST_ELEM, &inner)
    }

    #[test]
    fn references_are_named_sets_looked_up_or_added_to_not_inline_ones() {
        let mut list = expression("lookup", "__set3");
        list.extend(expression("lookup", "pm/friends"));
        list.extend(expression("dynset", "pm/guard"));
        let mut refs = Vec::new();
        references(&list, &mut refs);
        assert_eq!(
            refs,
            [Ref::Set("pm/friends".into()), Ref::Set("pm/guard".into())]
        );
    }
}
