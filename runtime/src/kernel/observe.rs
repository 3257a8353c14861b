//! Reading the runtime's table back from nftables dumps.
//!
//! Only what the planner needs is decoded: chain kinds, each rule's handle,
//! tag and references (jump targets, looked-up sets, named objects and
//! flowtables), the kind and elements of sets and maps (in `sets`), and
//! (in `objects`) the definitions of objects and flowtables. Decoding is
//! one pass over each message, so observing is linear in the size of the
//! table.

use std::collections::HashMap;

use super::encode::{TABLE_MARKER, parse_rule_tag, udata_value};
use super::wire::{Message, attribute, attributes, be32, be64, string};
use crate::ir::{self, BaseChain};
use crate::plan::{ChainKind, ObservedChain, ObservedRule, ObservedTable, Ref};

mod sets;

mod objects;

pub(crate) mod counters;

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
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_DYNSET_SET_NAME: u16 = 1;
/// The start of the kernel's names of anonymous sets (`__set0`, ...).
const ANONYMOUS_SET_PREFIX: &str = "__set";
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

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
    sets: Vec<sets::Seen>,
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
        let seen = sets::Seen::of(msg, self.table)?;
        let dump = seen.readable().then(|| seen.name.clone());
        self.sets.push(seen);
        dump
    }

    /// Adds the elements of one NEWSETELEM message to set `name`.
    pub fn elements(&mut self, name: &str, msg: &Message) {
        if let Some(seen) = self.sets.iter_mut().find(|s| s.name == name) {
            seen.elements(msg);
        }
    }

    /// The table. A rule's lookup of an anonymous set is no reference of
    /// its own (the set goes with the rule): the chains an anonymous verdict
    /// map jumps to are, as the planner counts them.
    pub fn finish(mut self) -> ObservedTable {
        let mut anonymous: HashMap<String, Vec<Ref>> = HashMap::new();
        for seen in self.sets {
            if seen.anonymous {
                anonymous.insert(seen.name.clone(), seen.chain_refs());
            } else {
                self.out.sets.push(seen.finish());
            }
        }
        if !anonymous.is_empty() {
            for rule in self.out.chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
                let refs = std::mem::take(&mut rule.refs);
                rule.refs = refs
                    .into_iter()
                    .flat_map(|r| match &r {
                        Ref::Set(name) => anonymous.get(name.as_str()).cloned().unwrap_or(vec![r]),
                        _ => vec![r],
                    })
                    .collect();
                rule.refs.sort();
                rule.refs.dedup();
            }
        }
        self.out
    }
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
        "route" => ir::ChainType::Route,
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

/// The chains a rule's expressions jump to, the sets they look up, the
/// objects and flowtables they name.
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
            _ => refs.extend(objects::reference(name, data)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink attribute, padded (also for the submodules' tests).
    pub(super) fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
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
