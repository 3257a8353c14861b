//! One rule's expressions: the rule object with its userdata (comment and
//! tag), and the builder that emits each expression and its protocol
//! dependencies once, as nft does. Matches are added in `matches`,
//! statements and actions in `actions`.

use rustables::expr::{Bitwise, Cmp, CmpOp, Lookup, Meta, MetaType, RawExpression, Register};
use rustables::{Chain, Rule, Set, Table};

use super::inline::KernelSet;
use super::{RuleTag, TAG_PREFIX, UDATA_COMMENT, UDATA_TAG, USERDATA_MAX, nul_terminated, tlv};
use crate::ir::{self, Family, Field, MapLookup, MapSource, SetElements};

/// What a rule's lookups need sent before the rule: the inline sets of its
/// matches, then the inline map of its action.
#[derive(Default)]
pub(super) struct Anonymous {
    pub sets: Vec<KernelSet>,
    /// The map, its id in the batch, and the fields that key it.
    pub map: Option<(u32, Vec<Field>, SetElements)>,
}

/// The rule object, and the inline sets and map its lookups name (to send
/// before it), numbered from `first_set_id` on.
pub(super) fn rule_object(
    table: &Table,
    chain: &str,
    rule: &ir::Rule,
    tag: &RuleTag,
    first_set_id: u32,
) -> Result<(Rule, Anonymous), String> {
    let chain = Chain::new(table).with_name(chain);
    let mut b = RuleBuilder {
        rule: Rule::new(&chain).expect("the chain has a table and a name"),
        nfproto: None,
        l4proto: None,
        link_ether: false,
        inline_sets: Vec::new(),
        inline_map: None,
        next_set_id: first_set_id,
    };
    if let Some(family) = rule.implied_nfproto() {
        b.require_nfproto(family);
    }
    for m in &rule.matches {
        b.add_match(m)?;
    }
    for s in &rule.statements {
        b.add_statement(s)?;
    }
    if !b.add_map_action(&rule.action) {
        b.add_action(&rule.action);
    }
    let object = b
        .rule
        .with_userdata(rule_userdata(rule.comment.as_deref(), tag)?);
    let anonymous = Anonymous {
        sets: b.inline_sets,
        map: b.inline_map,
    };
    Ok((object, anonymous))
}

pub(super) fn rule_userdata(comment: Option<&str>, tag: &RuleTag) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(c) = comment {
        if c.contains('\0') || c.len() > usize::from(u8::MAX) - 1 {
            return Err("the comment must be at most 254 bytes, without NUL".into());
        }
        out.extend(tlv(UDATA_COMMENT, &nul_terminated(c)));
    }
    let tag = format!("{TAG_PREFIX}{}:{}", tag.hash, tag.policy);
    if tag.len() > usize::from(u8::MAX) {
        return Err(format!("the rule tag `{tag}` is too long"));
    }
    out.extend(tlv(UDATA_TAG, tag.as_bytes()));
    if out.len() > USERDATA_MAX {
        return Err(format!(
            "comment and tag take {} bytes; the kernel keeps at most {USERDATA_MAX}",
            out.len()
        ));
    }
    Ok(out)
}

/// Builds one rule's expressions. Remembers which protocol checks it already
/// emitted, so dependencies are emitted once, as nft does.
pub(super) struct RuleBuilder {
    pub rule: Rule,
    pub nfproto: Option<Family>,
    pub l4proto: Option<u8>,
    /// Whether the rule checked that the link layer is Ethernet (`meta
    /// iiftype ether`): nft checks the family by the Ethernet type then.
    pub link_ether: bool,
    /// The inline sets the rule's lookups name, in the order made.
    pub inline_sets: Vec<KernelSet>,
    /// The inline map of the rule's action, its id and key fields.
    pub inline_map: Option<(u32, Vec<Field>, SetElements)>,
    /// The id the next inline set (or map) gets.
    pub next_set_id: u32,
}

impl RuleBuilder {
    pub fn push(&mut self, expr: impl Into<RawExpression>) {
        self.rule.add_expr(expr);
    }

    pub fn cmp(&mut self, op: CmpOp, data: impl Into<Vec<u8>>) {
        self.push(Cmp::new(op, data));
    }

    pub fn meta_cmp(&mut self, key: MetaType, op: CmpOp, data: impl Into<Vec<u8>>) {
        self.push(Meta::new(key));
        self.cmp(op, data);
    }

    pub fn require_nfproto(&mut self, family: Family) {
        if self.nfproto != Some(family) {
            if self.link_ether {
                self.ether_type_check(family);
            } else {
                let proto = match family {
                    Family::V4 => libc::NFPROTO_IPV4,
                    Family::V6 => libc::NFPROTO_IPV6,
                };
                self.meta_cmp(MetaType::NfProto, CmpOp::Eq, [proto as u8]);
            }
            self.nfproto = Some(family);
        }
    }

    pub fn require_l4proto(&mut self, proto: u8) {
        if self.l4proto != Some(proto) {
            self.meta_cmp(MetaType::L4Proto, CmpOp::Eq, [proto]);
            self.l4proto = Some(proto);
        }
    }

    /// A lookup of register 1 in the named set `set`.
    pub fn lookup(&mut self, set: &str) {
        self.lookup_in(set, None, false);
    }

    /// A lookup of reg 1 in `lookup`'s map (an inline one sent before the
    /// rule, by its id) that writes what it finds to `dreg`.
    pub fn map_lookup(&mut self, lookup: &MapLookup, dreg: Register) {
        let set = match &lookup.map {
            MapSource::Named(name) => Set::default().with_name(name.as_str()),
            MapSource::Inline(elements) => {
                let id = self.next_set_id;
                self.next_set_id += 1;
                self.inline_map = Some((id, lookup.fields.clone(), elements.clone()));
                Set::default()
                    .with_name(super::sets::ANONYMOUS_MAP)
                    .with_id(id)
            }
        };
        let lookup = Lookup::new(&set).expect("the set has a name");
        self.push(lookup.with_dreg(dreg));
    }
}

/// `reg 1 = reg 1 & mask`, as nft encodes prefixes and flag tests.
pub(super) fn and_mask(mask: Vec<u8>) -> Bitwise {
    let xor = vec![0; mask.len()];
    Bitwise::new(mask, xor).expect("mask and xor have the same length")
}

pub(super) fn eq_or_neq(negate: bool) -> CmpOp {
    if negate { CmpOp::Neq } else { CmpOp::Eq }
}
