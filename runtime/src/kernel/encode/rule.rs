//! One rule's expressions: the rule object with its userdata (comment and
//! tag), and the builder that emits each expression and its protocol
//! dependencies once, as nft does. Matches are added in `matches`,
//! statements and actions in `actions`.

use rustables::expr::{Bitwise, Cmp, CmpOp, Lookup, Meta, MetaType, RawExpression, Register};
use rustables::{Chain, Rule, Set, Table};

use super::{RuleTag, TAG_PREFIX, UDATA_COMMENT, UDATA_TAG, USERDATA_MAX, nul_terminated, tlv};
use crate::ir::{self, Family};

/// `anonymous`: the name and batch id of each anonymous set the rule's
/// lookups use, in the order they look them up (sent before the rule).
pub(super) fn rule_object(
    table: &Table,
    chain: &str,
    rule: &ir::Rule,
    tag: &RuleTag,
    anonymous: Vec<(&'static str, u32)>,
) -> Result<Rule, String> {
    let chain = Chain::new(table).with_name(chain);
    let mut b = RuleBuilder {
        rule: Rule::new(&chain).expect("the chain has a table and a name"),
        nfproto: None,
        l4proto: None,
        anonymous: anonymous.into(),
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
    if !b.add_map_action(&rule.action)? {
        b.add_action(&rule.action);
    }
    Ok(b.rule
        .with_userdata(rule_userdata(rule.comment.as_deref(), tag)?))
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
    /// The anonymous sets not yet looked up: name and batch id.
    pub anonymous: std::collections::VecDeque<(&'static str, u32)>,
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
            let proto = match family {
                Family::V4 => libc::NFPROTO_IPV4,
                Family::V6 => libc::NFPROTO_IPV6,
            };
            self.meta_cmp(MetaType::NfProto, CmpOp::Eq, [proto as u8]);
            self.nfproto = Some(family);
        }
    }

    pub fn require_l4proto(&mut self, proto: u8) {
        if self.l4proto != Some(proto) {
            self.meta_cmp(MetaType::L4Proto, CmpOp::Eq, [proto]);
            self.l4proto = Some(proto);
        }
    }

    pub fn lookup(&mut self, set: &str) {
        let set = Set::default().with_name(set);
        self.push(Lookup::new(&set).expect("the set has a name"));
    }

    /// A lookup of reg 1 in a named set, or in the next anonymous one,
    /// that writes what it finds (a map's data) to `dreg`.
    pub fn map_lookup(&mut self, named: Option<&str>, dreg: Register) -> Result<(), String> {
        let set = match named {
            Some(name) => Set::default().with_name(name),
            None => {
                let (name, id) = self
                    .anonymous
                    .pop_front()
                    .ok_or("an inline map was not sent before its rule")?;
                Set::default().with_name(name).with_id(id)
            }
        };
        let lookup = Lookup::new(&set).expect("the set has a name");
        self.push(lookup.with_dreg(dreg));
        Ok(())
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
