//! Reading the packet and byte counters of the runtime's table: each rule's
//! `counter` statement and each named counter object, with what names them
//! to an operator (the policy of the rule's tag, its comment, its chain and
//! handle).
//!
//! Kept apart from the planner's observation ([`super::Collector`]): a
//! counter moves with every packet, so it must never be part of what the
//! diff compares. Reading them is a dump of their own, done when `status`
//! or a metrics scrape asks.

use serde::{Deserialize, Serialize};

use super::super::encode::{parse_rule_comment, parse_rule_tag};
use super::super::wire::{Message, attribute, attributes, be32, be64, string};

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
/// The kernel's type number of a counter object (NFT_OBJECT_COUNTER).
const NFT_OBJECT_COUNTER: u32 = 1;

/// Packets and bytes counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

impl Count {
    pub fn add(&mut self, other: Count) {
        self.packets = self.packets.saturating_add(other.packets);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// The counter of one rule that has a `counter` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCounter {
    pub chain: String,
    pub handle: u64,
    /// The policy of the rule's tag; `None` for a rule the runtime did not
    /// write.
    pub policy: Option<String>,
    pub comment: Option<String>,
    #[serde(flatten)]
    pub count: Count,
}

/// A named counter object (`counter name "x"` in a rule counts there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCounter {
    pub name: String,
    #[serde(flatten)]
    pub count: Count,
}

/// The counters of the table, rules in the kernel's order (chain by chain,
/// as dumped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rules: Vec<RuleCounter>,
    pub named: Vec<NamedCounter>,
}

fn ours(msg: &Message, table_attr: u16, table: &str) -> bool {
    msg.family() == Some(libc::NFPROTO_INET as u8)
        && attribute(msg.payload.get(4..).unwrap_or_default(), table_attr)
            .is_some_and(|v| string(v) == table)
}

/// The counter of a NEWRULE message of table `table`, if its rule has a
/// `counter` statement (the first one, when it has several).
pub(crate) fn rule_counter(msg: &Message, table: &str) -> Option<RuleCounter> {
    if !ours(msg, NFTA_RULE_TABLE, table) {
        return None;
    }
    let (mut chain, mut handle, mut userdata, mut count) = (None, None, None, None);
    for (ty, v) in msg.attributes() {
        match ty {
            NFTA_RULE_CHAIN => chain = Some(string(v)),
            NFTA_RULE_HANDLE => handle = be64(v),
            NFTA_RULE_USERDATA => userdata = Some(v),
            NFTA_RULE_EXPRESSIONS => count = first_counter(v),
            _ => {}
        }
    }
    Some(RuleCounter {
        chain: chain?,
        handle: handle?,
        policy: userdata.and_then(parse_rule_tag).map(|t| t.policy),
        comment: userdata.and_then(parse_rule_comment),
        count: count?,
    })
}

/// The numbers of the first `counter` expression of a rule's list.
fn first_counter(expressions: &[u8]) -> Option<Count> {
    attributes(expressions)
        .filter(|&(ty, _)| ty == NFTA_LIST_ELEM)
        .find(|&(_, expr)| attribute(expr, NFTA_EXPR_NAME) == Some(b"counter\0"))
        .and_then(|(_, expr)| attribute(expr, NFTA_EXPR_DATA))
        .and_then(count)
}

/// Packets and bytes of a counter's attributes (an expression's data or
/// an object's).
fn count(data: &[u8]) -> Option<Count> {
    Some(Count {
        packets: attribute(data, NFTA_COUNTER_PACKETS).and_then(be64)?,
        bytes: attribute(data, NFTA_COUNTER_BYTES).and_then(be64)?,
    })
}

/// The named counter of a NEWOBJ message of table `table`, if it is one.
pub(crate) fn named_counter(msg: &Message, table: &str) -> Option<NamedCounter> {
    if !ours(msg, NFTA_OBJ_TABLE, table) {
        return None;
    }
    let (mut name, mut type_id, mut data) = (None, None, None);
    for (ty, v) in msg.attributes() {
        match ty {
            NFTA_OBJ_NAME => name = Some(string(v)),
            NFTA_OBJ_TYPE => type_id = be32(v),
            NFTA_OBJ_DATA => data = Some(v),
            _ => {}
        }
    }
    if type_id? != NFT_OBJECT_COUNTER {
        return None;
    }
    Some(NamedCounter {
        name: name?,
        count: count(data?)?,
    })
}

/// Sums per policy, in the order the policies first appear; rules of no
/// policy are left out.
pub fn per_policy(rules: &[RuleCounter]) -> Vec<(String, Count)> {
    let mut out: Vec<(String, Count)> = Vec::new();
    for r in rules {
        let Some(policy) = &r.policy else { continue };
        match out.iter_mut().find(|(p, _)| p == policy) {
            Some((_, c)) => c.add(r.count),
            None => out.push((policy.clone(), r.count)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::attr;
    use super::*;

    fn expression(name: &str, data: &[u8]) -> Vec<u8> {
        let mut inner = attr(NFTA_EXPR_NAME, format!("{name}\0").as_bytes());
        inner.extend(attr(NFTA_EXPR_DATA, data));
        attr(NFTA_LIST_ELEM, &inner)
    }

    fn counter_data(packets: u64, bytes: u64) -> Vec<u8> {
        let mut data = attr(NFTA_COUNTER_BYTES, &bytes.to_be_bytes());
        data.extend(attr(NFTA_COUNTER_PACKETS, &packets.to_be_bytes()));
        data
    }

    /// nfgenmsg (inet) and the attributes.
    fn payload(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![libc::NFPROTO_INET as u8, 0, 0, 0];
        for a in attrs {
            out.extend(a);
        }
        out
    }

    fn message(payload: &[u8]) -> Message<'_> {
        Message {
            ty: 0,
            flags: 0,
            seq: 0,
            payload,
        }
    }

    /// libnftnl's comment TLV (type 0, NUL-terminated) and our tag.
    fn userdata(comment: &str, tag: &str) -> Vec<u8> {
        let mut out = vec![0, comment.len() as u8 + 1];
        out.extend(comment.as_bytes());
        out.push(0);
        out.extend([0xf0, tag.len() as u8]);
        out.extend(tag.as_bytes());
        out
    }

    fn rule(table: &str, expressions: &[u8], udata: &[u8]) -> Vec<u8> {
        payload(&[
            attr(NFTA_RULE_TABLE, format!("{table}\0").as_bytes()),
            attr(NFTA_RULE_CHAIN, b"forward\0"),
            attr(NFTA_RULE_HANDLE, &7u64.to_be_bytes()),
            attr(NFTA_RULE_EXPRESSIONS, expressions),
            attr(NFTA_RULE_USERDATA, udata),
        ])
    }

    #[test]
    fn a_rule_counter_is_read_with_its_policy_and_comment() {
        let tag = parse_rule_tag(&userdata("x", "ww1:abc:home"));
        let mut list = expression("meta", &attr(1, &[0; 4]));
        list.extend(expression("counter", &counter_data(3, 180)));
        list.extend(expression("immediate", &attr(1, &[0; 4])));
        let bytes = rule("wasmwall", &list, &userdata("lan web", "ww1:abc:home"));
        let read = rule_counter(&message(&bytes), "wasmwall");
        assert_eq!(
            read,
            Some(RuleCounter {
                chain: "forward".into(),
                handle: 7,
                policy: tag.map(|t| t.policy),
                comment: Some("lan web".into()),
                count: Count {
                    packets: 3,
                    bytes: 180
                },
            })
        );
        assert_eq!(read.unwrap().policy.as_deref(), Some("home"));
    }

    #[test]
    fn a_rule_without_a_counter_or_of_another_table_has_none() {
        let list = expression("immediate", &attr(1, &[0; 4]));
        let bytes = rule("wasmwall", &list, &userdata("c", "ww1:abc:home"));
        assert_eq!(rule_counter(&message(&bytes), "wasmwall"), None);
        let list = expression("counter", &counter_data(1, 60));
        let bytes = rule("other", &list, &[]);
        assert_eq!(rule_counter(&message(&bytes), "wasmwall"), None);
        let bytes = rule("wasmwall", &list, &[]);
        let read = rule_counter(&message(&bytes), "wasmwall").unwrap();
        assert_eq!((read.policy, read.comment), (None, None), "hand-made rule");
    }

    #[test]
    fn a_named_counter_object_is_read_and_other_objects_are_not() {
        let object = |type_id: u32| {
            payload(&[
                attr(NFTA_OBJ_TABLE, b"wasmwall\0"),
                attr(NFTA_OBJ_NAME, b"home/web\0"),
                attr(NFTA_OBJ_TYPE, &type_id.to_be_bytes()),
                attr(NFTA_OBJ_DATA, &counter_data(5, 300)),
            ])
        };
        let bytes = object(NFT_OBJECT_COUNTER);
        assert_eq!(
            named_counter(&message(&bytes), "wasmwall"),
            Some(NamedCounter {
                name: "home/web".into(),
                count: Count {
                    packets: 5,
                    bytes: 300
                }
            })
        );
        let bytes = object(2);
        assert_eq!(named_counter(&message(&bytes), "wasmwall"), None, "a quota");
    }

    #[test]
    fn policies_are_summed_in_order_and_untagged_rules_left_out() {
        let r = |policy: Option<&str>, packets| RuleCounter {
            chain: "c".into(),
            handle: 1,
            policy: policy.map(str::to_string),
            comment: None,
            count: Count {
                packets,
                bytes: packets * 100,
            },
        };
        let sums = per_policy(&[
            r(Some("b"), 1),
            r(None, 7),
            r(Some("a"), 2),
            r(Some("b"), 3),
        ]);
        assert_eq!(
            sums,
            [
                (
                    "b".to_string(),
                    Count {
                        packets: 4,
                        bytes: 400
                    }
                ),
                (
                    "a".to_string(),
                    Count {
                        packets: 2,
                        bytes: 200
                    }
                ),
            ]
        );
    }
}
