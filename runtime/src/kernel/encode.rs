//! Operations -> rustables objects -> one netlink batch. Rules are built
//! in `rule`, their matches in `matches`, statements and actions in
//! `actions`; expressions rustables lacks are made in `expr`; sets, maps
//! and their elements in `sets`, map actions in `maps`.
//!
//! Every match is encoded the way `nft` 1.0 encodes it (the same loads,
//! dependencies and comparisons), so `nft list ruleset` prints the rules the
//! way a person would have written them.

use rustables::{Batch, Chain, ChainPolicy, ChainType, Hook, HookClass, MsgType, ProtocolFamily};
use rustables::{Rule, Set, Table};

use crate::ir::{self, BaseChain};
use crate::plan::{Op, Position, RuleTag, Transaction};

mod actions;
pub(super) mod elements;
mod expr;
mod fields;
mod inline;
mod maps;
mod matches;
#[cfg(test)]
mod nft_debug;
mod objects;
mod rule;
mod sets;

pub(in crate::kernel) use objects::encode as object_message;
use rule::rule_object;

use super::KernelError;
use super::wire::{NLMSG_HDRLEN, align4, u16_at, u32_at};

const TABLE_COMMENT: &str = "managed by wasmwall; changes here are overwritten";
/// The table's comment as stored (NUL-terminated): the runtime's marker of
/// ownership.
pub(crate) const TABLE_MARKER: &[u8] = b"managed by wasmwall; changes here are overwritten\0";
/// libnftnl's userdata type of a table's or rule's comment.
const UDATA_COMMENT: u8 = 0;
/// Our userdata type for the rule tag. nft skips types it does not know.
const UDATA_TAG: u8 = 0xf0;
const TAG_PREFIX: &str = "ww1:";
/// The kernel's limit on a rule's userdata (NFT_USERDATA_MAXLEN).
const USERDATA_MAX: usize = 256;
/// Set elements per message at most (an element list attribute holds at
/// most 64 KiB: `sets` also counts its bytes).
const ELEMENTS_PER_MESSAGE: usize = 1024;
const NLM_F_APPEND: u16 = libc::NLM_F_APPEND as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_ECHO: u16 = libc::NLM_F_ECHO as u16;
const NFNL_BATCH_GENID: u16 = libc::NFNL_BATCH_GENID as u16;

/// How to build the batch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Refuse the batch unless the ruleset's generation is still this one.
    pub generation: Option<u32>,
    /// Ask the kernel to echo every added rule (with its handle).
    pub echo_rules: bool,
}

/// A finished batch, and the text of every message in it: `texts[i]` is the
/// message with sequence number `i + 1` (0 is the batch-begin marker), made
/// for operation `ops[i]` of the transaction.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub texts: Vec<String>,
    pub ops: Vec<usize>,
    /// The sequence number of each added rule's message, in order.
    pub rule_seqs: Vec<u32>,
}

/// Message flags to change after rustables has written the batch.
#[derive(Default)]
struct Patches {
    /// (sequence number, flags to set, flags to clear)
    flags: Vec<(u32, u16, u16)>,
}

pub(crate) fn encode(tx: &Transaction, options: Options) -> Result<Encoded, KernelError> {
    let t = &tx.table;
    let table = Table::new(ProtocolFamily::Inet).with_name(t);
    let mut batch = Batch::new();
    let mut texts = Vec::new();
    let mut ops = Vec::new();
    let mut rule_seqs = Vec::new();
    let mut patches = Patches::default();
    // Messages rustables cannot write, by sequence number: objects', sets'
    // and maps' whole, inline sets' over stand-ins.
    let mut own_messages = Vec::new();
    let mut hand_made = Vec::new();
    for (index, op) in tx.ops.iter().enumerate() {
        match op {
            Op::AddTable => {
                let comment = Table::new(ProtocolFamily::Inet)
                    .with_name(t)
                    .with_userdata(tlv(UDATA_COMMENT, &nul_terminated(TABLE_COMMENT)));
                batch.add(&comment, MsgType::Add);
                texts.push(op.command(t));
            }
            Op::DeleteTable => {
                batch.add(&table, MsgType::Del);
                texts.push(op.command(t));
            }
            Op::AddChain { name, base } => {
                batch.add(&chain_object(&table, name, base.as_ref()), MsgType::Add);
                texts.push(op.command(t));
            }
            Op::SetChainPolicy { name, base, .. } => {
                // An existing chain sent again with its hook is updated.
                batch.add(&chain_object(&table, name, Some(base)), MsgType::Add);
                texts.push(op.command(t));
            }
            Op::DeleteChain { name } => {
                batch.add(&Chain::new(&table).with_name(name.as_str()), MsgType::Del);
                texts.push(op.command(t));
            }
            Op::AddSet { name, elements } => {
                let mut out = sets::Out {
                    batch: &mut batch,
                    texts: &mut texts,
                    messages: &mut own_messages,
                    placeholder: &table,
                };
                sets::add_set(&mut out, t, name, op.command(t), elements);
            }
            Op::DeleteSet { name } => {
                let mut set = Set::default().with_table(t).with_name(name.as_str());
                set.family = ProtocolFamily::Inet;
                batch.add(&set, MsgType::Del);
                texts.push(op.command(t));
            }
            Op::AddElements { set, elements } => {
                let mut out = sets::Out {
                    batch: &mut batch,
                    texts: &mut texts,
                    messages: &mut own_messages,
                    placeholder: &table,
                };
                sets::add_elements(&mut out, t, set, None, elements, false);
            }
            Op::DeleteElements { set, elements } => {
                let mut out = sets::Out {
                    batch: &mut batch,
                    texts: &mut texts,
                    messages: &mut own_messages,
                    placeholder: &table,
                };
                sets::delete_elements(&mut out, t, set, elements);
            }
            Op::AddRule {
                chain,
                rule,
                tag,
                position,
            } => {
                let text = op.command(t);
                // Inline sets and maps go before the rule, each known by an
                // id unique in the batch, counted from the sequence number
                // of the first message after those sent so far.
                let first_id = texts.len() as u32 + 1;
                let (mut object, anonymous) = match rule_object(&table, chain, rule, tag, first_id)
                {
                    Ok(r) => r,
                    Err(reason) => {
                        return Err(KernelError::Encode {
                            op: text,
                            index,
                            reason,
                        });
                    }
                };
                for set in &anonymous.sets {
                    inline::add_to_batch(&mut batch, &mut texts, &mut hand_made, t, set);
                }
                if let Some((id, fields, map)) = &anonymous.map {
                    let mut out = sets::Out {
                        batch: &mut batch,
                        texts: &mut texts,
                        messages: &mut own_messages,
                        placeholder: &table,
                    };
                    sets::add_anonymous(&mut out, t, *id, fields, map);
                }
                let seq = texts.len() as u32 + 1;
                let mut set_flags = 0;
                let mut clear_flags = 0;
                if let Position::Before(h) = position {
                    // Without NLM_F_APPEND the kernel inserts before the
                    // position rule instead of after it.
                    object = object.with_position(*h);
                    clear_flags |= NLM_F_APPEND;
                }
                if options.echo_rules {
                    set_flags |= NLM_F_ECHO;
                }
                if set_flags | clear_flags != 0 {
                    patches.flags.push((seq, set_flags, clear_flags));
                }
                batch.add(&object, MsgType::Add);
                rule_seqs.push(seq);
                texts.push(text);
            }
            Op::AddObject { .. }
            | Op::DeleteObject { .. }
            | Op::AddFlowtable { .. }
            | Op::DeleteFlowtableDevices { .. }
            | Op::DeleteFlowtable { .. } => {
                let seq = texts.len() as u32 + 1;
                let message = objects::encode(op, t, seq).expect("an object operation");
                // Holds the message's place; spliced out below.
                batch.add(&table, MsgType::Add);
                own_messages.push((seq, message));
                texts.push(op.command(t));
            }
            Op::DeleteRule { chain, handle, .. } => {
                let object = Rule::new(&Chain::new(&table).with_name(chain.as_str()))
                    .expect("the chain has a table and a name")
                    .with_handle(*handle);
                batch.add(&object, MsgType::Del);
                texts.push(op.command(t));
            }
        }
        // Every message this operation made belongs to it.
        ops.resize(texts.len(), index);
    }
    let bytes = inline::put_in_place(expr::put_in_place(batch.finalize()), &hand_made);
    let mut bytes = objects::splice(bytes, &own_messages);
    // No acknowledgements: the kernel handles the batch inside our send()
    // and answers only what failed (and echoes), so success costs no
    // answer per message.
    patch_flags(&mut bytes, NLM_F_ACK, &patches.flags);
    if let Some(generation) = options.generation {
        bytes = with_generation(bytes, generation);
    }
    Ok(Encoded {
        bytes,
        texts,
        ops,
        rule_seqs,
    })
}

/// Clears `clear_all` on every message but the batch's begin marker, and
/// sets and clears flags by sequence number, in one pass.
fn patch_flags(bytes: &mut [u8], clear_all: u16, patches: &[(u32, u16, u16)]) {
    let mut pending = patches.iter().peekable();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= bytes.len() {
        let len = u32_at(bytes, at).unwrap_or(0) as usize;
        let seq = u32_at(bytes, at + 8).unwrap_or(0);
        let mut flags = u16_at(bytes, at + 6).unwrap_or(0);
        if seq != 0 {
            flags &= !clear_all;
        }
        // Patches are in sequence order, as the messages are.
        if let Some(&&(s, set, clear)) = pending.peek()
            && s == seq
        {
            flags = (flags | set) & !clear;
            pending.next();
        }
        bytes[at + 6..at + 8].copy_from_slice(&flags.to_ne_bytes());
        if len < NLMSG_HDRLEN {
            break;
        }
        at += align4(len);
    }
}

/// The batch with a generation attribute in its begin marker: the kernel
/// then refuses the whole batch (ERESTART) if the ruleset changed since.
fn with_generation(bytes: Vec<u8>, generation: u32) -> Vec<u8> {
    let begin_len = u32_at(&bytes, 0).unwrap_or(0) as usize;
    let attr_len = 8;
    let mut out = Vec::with_capacity(bytes.len() + attr_len);
    out.extend_from_slice(&bytes[..begin_len]);
    out.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    out.extend_from_slice(&NFNL_BATCH_GENID.to_ne_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    let new_len = (begin_len + attr_len) as u32;
    out[..4].copy_from_slice(&new_len.to_ne_bytes());
    out.extend_from_slice(&bytes[align4(begin_len)..]);
    out
}

/// The value of the first userdata TLV of type `ty` (libnftnl's layout:
/// type, length, value).
pub(crate) fn udata_value(userdata: &[u8], ty: u8) -> Option<&[u8]> {
    let mut rest = userdata;
    while let [t, len, tail @ ..] = rest {
        let (value, next) = tail.split_at_checked(usize::from(*len))?;
        if *t == ty {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// A rule's comment as libnftnl stores it in its userdata (what nft
/// prints after `comment`); `None` without one.
pub(crate) fn parse_rule_comment(userdata: &[u8]) -> Option<String> {
    udata_value(userdata, UDATA_COMMENT).map(super::wire::string)
}

/// Reads our tag back from a rule's userdata. `None` when the rule carries
/// no tag, or a malformed one.
pub fn parse_rule_tag(userdata: &[u8]) -> Option<RuleTag> {
    let value = udata_value(userdata, UDATA_TAG)?;
    let text = std::str::from_utf8(value).ok()?.strip_prefix(TAG_PREFIX)?;
    let (hash, policy) = text.split_once(':')?;
    Some(RuleTag {
        policy: policy.to_string(),
        hash: hash.to_string(),
    })
}

fn tlv(ty: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(ty);
    // Callers keep values below 256 bytes.
    out.push(value.len() as u8);
    out.extend_from_slice(value);
    out
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn chain_object(table: &Table, name: &str, base: Option<&BaseChain>) -> Chain {
    let chain = Chain::new(table).with_name(name);
    let Some(b) = base else { return chain };
    let hook = match b.hook {
        ir::Hook::Prerouting => HookClass::PreRouting,
        ir::Hook::Input => HookClass::In,
        ir::Hook::Forward => HookClass::Forward,
        ir::Hook::Output => HookClass::Out,
        ir::Hook::Postrouting => HookClass::PostRouting,
    };
    let chain_type = match b.chain_type {
        ir::ChainType::Filter => ChainType::Filter,
        ir::ChainType::Nat => ChainType::Nat,
        ir::ChainType::Route => ChainType::Route,
    };
    let policy = match b.policy {
        ir::ChainPolicy::Accept => ChainPolicy::Accept,
        ir::ChainPolicy::Drop => ChainPolicy::Drop,
    };
    chain
        .with_hook(Hook::new(hook, b.priority))
        .with_type(chain_type)
        .with_policy(policy)
}

#[cfg(test)]
mod tests {
    use super::matches::ifname;
    use super::rule::rule_userdata;
    use super::*;

    fn tag() -> RuleTag {
        RuleTag {
            policy: "port-forward".into(),
            hash: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn rule_tag_round_trips_next_to_a_comment() {
        let with_comment = rule_userdata(Some("x"), &tag()).unwrap();
        assert_eq!(
            &with_comment[..4],
            b"\x00\x02x\x00",
            "libnftnl comment TLV first"
        );
        assert_eq!(parse_rule_tag(&with_comment), Some(tag()));
        assert_eq!(
            parse_rule_tag(&rule_userdata(None, &tag()).unwrap()),
            Some(tag())
        );
    }

    #[test]
    fn rule_tag_absent_or_malformed_is_none() {
        assert_eq!(parse_rule_tag(b""), None);
        assert_eq!(parse_rule_tag(b"\x00\x02x\x00"), None, "comment only");
        assert_eq!(
            parse_rule_tag(b"\xf0\x0aww1:ab:pf"),
            None,
            "length past the end"
        );
        assert_eq!(parse_rule_tag(b"\xf0\x07ww2:a:p"), None, "unknown version");
        let tag = parse_rule_tag(b"\xf0\x0aww1:ab:p:q").unwrap();
        assert_eq!((tag.hash.as_str(), tag.policy.as_str()), ("ab", "p:q"));
    }

    #[test]
    fn oversized_userdata_is_an_error() {
        assert!(rule_userdata(Some(&"c".repeat(255)), &tag()).is_err());
        assert!(rule_userdata(Some(&"c".repeat(200)), &tag()).is_ok());
        assert!(rule_userdata(Some("a\0b"), &tag()).is_err());
    }

    #[test]
    fn interface_names_are_padded_to_ifnamsiz() {
        assert_eq!(&ifname("lan0").unwrap()[..5], b"lan0\0");
        assert!(ifname("a-very-long-name").is_err());
        assert!(ifname("").is_err());
    }
}
