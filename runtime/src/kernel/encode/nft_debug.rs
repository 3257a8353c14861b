//! Test support: a rule's expressions as `nft --debug=netlink` prints the
//! ones it would send (libnftnl's text), so a test can compare the
//! runtime's encoding with nft's, expression for expression. It reads the
//! bytes of a finished batch, stand-ins already put in place, and knows
//! the expressions the runtime emits; any other prints as unknown.

use rustables::{Batch, MsgType, ProtocolFamily, Table};

use super::expr::put_in_place;
use super::rule::rule_object;
use crate::ir::Rule;
use crate::kernel::wire::{attribute, attributes, be32, be64, messages, string};
use crate::plan::RuleTag;

const NEWRULE: u16 = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWRULE as u16;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

/// The rule's expressions as the runtime sends them, one per line.
pub(super) fn expressions(rule: &Rule) -> String {
    let table = Table::new(ProtocolFamily::Inet).with_name("t");
    let tag = RuleTag {
        policy: "p".into(),
        hash: "0".into(),
    };
    let (object, _) = rule_object(&table, "c", rule, &tag, 1).expect("the rule encodes");
    let mut batch = Batch::new();
    batch.add(&object, MsgType::Add);
    let bytes = put_in_place(batch.finalize());
    let msg = messages(&bytes)
        .map(|m| m.expect("well-formed batch"))
        .find(|m| m.ty == NEWRULE)
        .expect("a rule message");
    let list = msg
        .attributes()
        .find(|(t, _)| *t == NFTA_RULE_EXPRESSIONS)
        .expect("the rule has expressions")
        .1;
    attributes(list)
        .map(|(_, elem)| {
            let name = attribute(elem, NFTA_EXPR_NAME)
                .map(string)
                .unwrap_or_default();
            let data = attribute(elem, NFTA_EXPR_DATA).unwrap_or_default();
            format!("[ {} ]\n", expression(&name, data))
        })
        .collect()
}

fn u32_of(data: &[u8], ty: u16) -> Option<u32> {
    attribute(data, ty).and_then(be32)
}

fn reg(data: &[u8], ty: u16) -> u32 {
    u32_of(data, ty).unwrap_or(0)
}

/// Data as libnftnl prints it: 32-bit words in host order.
fn words(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0; 4];
            w[..c.len()].copy_from_slice(c);
            format!("0x{:08x}", u32::from_ne_bytes(w))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value in an NFTA_DATA_VALUE nest.
fn value(data: &[u8], ty: u16) -> Vec<u8> {
    attribute(data, ty)
        .and_then(|d| attribute(d, 1))
        .unwrap_or_default()
        .to_vec()
}

fn meta_key(k: u32) -> String {
    match k {
        3 => "mark".into(),
        6 => "iifname".into(),
        7 => "oifname".into(),
        8 => "iiftype".into(),
        15 => "nfproto".into(),
        16 => "l4proto".into(),
        30 => "time".into(),
        31 => "day".into(),
        32 => "hour".into(),
        other => format!("key {other}"),
    }
}

fn base(b: u32) -> &'static str {
    match b {
        0 => "link",
        1 => "network",
        2 => "transport",
        _ => "unknown",
    }
}

fn expression(name: &str, d: &[u8]) -> String {
    match name {
        "meta" | "ct" => {
            let key = reg(d, 2);
            let key = if name == "ct" {
                match key {
                    0 => "state".to_string(),
                    2 => "status".to_string(),
                    3 => "mark".to_string(),
                    k => format!("key {k}"),
                }
            } else {
                meta_key(key)
            };
            let sreg_attr = if name == "meta" { 3 } else { 4 };
            match u32_of(d, sreg_attr) {
                Some(sreg) => format!("{name} set {key} with reg {sreg}"),
                None => format!("{name} load {key} => reg {}", reg(d, 1)),
            }
        }
        "cmp" => {
            let op = ["eq", "neq", "lt", "lte", "gt", "gte"]
                .get(reg(d, 2) as usize)
                .copied()
                .unwrap_or("?");
            format!("cmp {op} reg {} {}", reg(d, 1), words(&value(d, 3)))
        }
        "payload" => {
            let (b, off, len) = (base(reg(d, 2)), reg(d, 3), reg(d, 4));
            match u32_of(d, 5) {
                Some(sreg) => format!(
                    "payload write reg {sreg} => {len}b @ {b} header + {off} csum_type {} csum_off {} csum_flags 0x{:x}",
                    reg(d, 6),
                    reg(d, 7),
                    reg(d, 8)
                ),
                None => format!(
                    "payload load {len}b @ {b} header + {off} => reg {}",
                    reg(d, 1)
                ),
            }
        }
        "bitwise" => match u32_of(d, 6) {
            Some(2) => format!(
                "bitwise reg {} = ( reg {} >> {} )",
                reg(d, 2),
                reg(d, 1),
                words(&value(d, 7))
            ),
            _ => format!(
                "bitwise reg {} = ( reg {} & {} ) ^ {}",
                reg(d, 2),
                reg(d, 1),
                words(&value(d, 4)),
                words(&value(d, 5))
            ),
        },
        "immediate" => {
            let dreg = reg(d, 1);
            let data = attribute(d, 2).unwrap_or_default();
            match attribute(data, 2) {
                Some(verdict) => {
                    let code = attribute(verdict, 1).and_then(be32).unwrap_or(0) as i32;
                    let chain = attribute(verdict, 2).map(string);
                    let text = match (code, chain) {
                        (1, _) => "accept".to_string(),
                        (0, _) => "drop".to_string(),
                        (-1, _) => "continue".to_string(),
                        (-5, _) => "return".to_string(),
                        (-3, Some(c)) => format!("jump -> {c}"),
                        (-4, Some(c)) => format!("goto -> {c}"),
                        (c, _) => format!("verdict {c}"),
                    };
                    format!("immediate reg {dreg} {text}")
                }
                None => format!("immediate reg {dreg} {}", words(&value(d, 2))),
            }
        }
        "counter" => "counter pkts 0 bytes 0".into(),
        "log" => {
            let mut parts = Vec::new();
            if let Some(p) = attribute(d, 2) {
                parts.push(format!("prefix {}", string(p)));
            }
            if let Some(l) = u32_of(d, 5) {
                parts.push(format!("level {l}"));
            }
            if parts.is_empty() {
                "log".into()
            } else {
                format!("log {}", parts.join(" "))
            }
        }
        "limit" => {
            let unit = match attribute(d, 2).and_then(be64) {
                Some(1) => "second",
                Some(60) => "minute",
                Some(3600) => "hour",
                Some(86_400) => "day",
                Some(604_800) => "week",
                _ => "?",
            };
            format!(
                "limit rate {}/{unit} burst {} type {} flags 0x{:x}",
                attribute(d, 1).and_then(be64).unwrap_or(0),
                reg(d, 3),
                if reg(d, 4) == 1 { "bytes" } else { "packets" },
                reg(d, 5)
            )
        }
        "objref" => format!(
            "objref type {} name {}",
            reg(d, 1),
            attribute(d, 2).map(string).unwrap_or_default()
        ),
        "nat" => {
            let kind = if reg(d, 1) == 1 { "dnat" } else { "snat" };
            let family = if reg(d, 2) == 10 { "ip6" } else { "ip" };
            let mut out = format!("nat {kind} {family}");
            for (ty, label) in [
                (3, "addr_min"),
                (4, "addr_max"),
                (5, "proto_min"),
                (6, "proto_max"),
            ] {
                if let Some(r) = u32_of(d, ty) {
                    out.push_str(&format!(" {label} reg {r}"));
                }
            }
            if let Some(flags) = u32_of(d, 7) {
                out.push_str(&format!(" flags 0x{flags:x}"));
            }
            out
        }
        "redir" | "masq" => {
            // (proto_min, proto_max, flags) attribute numbers.
            let (min, max, flags) = if name == "redir" {
                (1, 2, 3)
            } else {
                (2, 3, 1)
            };
            let mut out = name.to_string();
            for (ty, label) in [(min, "proto_min"), (max, "proto_max")] {
                if let Some(r) = u32_of(d, ty) {
                    out.push_str(&format!(" {label} reg {r}"));
                }
            }
            if let Some(f) = u32_of(d, flags) {
                out.push_str(&format!(" flags 0x{f:x}"));
            }
            out
        }
        "reject" => format!(
            "reject type {} code {}",
            reg(d, 1),
            attribute(d, 2)
                .and_then(|c| c.first().copied())
                .unwrap_or(0)
        ),
        "notrack" => "notrack".into(),
        "rt" => {
            let key = if reg(d, 2) == 3 {
                "tcpmss".to_string()
            } else {
                format!("key {}", reg(d, 2))
            };
            format!("rt load {key} => reg {}", reg(d, 1))
        }
        "byteorder" => format!(
            "byteorder reg {} = {}(reg {}, {}, {})",
            reg(d, 2),
            if reg(d, 3) == 1 { "hton" } else { "ntoh" },
            reg(d, 1),
            reg(d, 5),
            reg(d, 4)
        ),
        "exthdr" => format!(
            "exthdr write {} reg {} => {}b @ {} + {}",
            if reg(d, 6) == 1 { "tcpopt" } else { "?" },
            u32_of(d, 7).unwrap_or(0),
            reg(d, 4),
            attribute(d, 2)
                .and_then(|t| t.first().copied())
                .unwrap_or(0),
            reg(d, 3)
        ),
        "flow_offload" => format!(
            "flow_offload flowtable {}",
            attribute(d, 1).map(string).unwrap_or_default()
        ),
        "lookup" => {
            let mut out = format!(
                "lookup reg {} set {}",
                reg(d, 2),
                attribute(d, 1).map(string).unwrap_or_default()
            );
            if let Some(dreg) = u32_of(d, 3) {
                out.push_str(&format!(" dreg {dreg}"));
            }
            if let Some(flags) = u32_of(d, 5) {
                out.push_str(&format!(" 0x{flags:x}"));
            }
            out
        }
        "range" => format!(
            "range {} reg {} {} {}",
            if reg(d, 2) == 1 { "neq" } else { "eq" },
            reg(d, 1),
            words(&value(d, 3)),
            words(&value(d, 4))
        ),
        "fib" => {
            let flags = reg(d, 3);
            let mut keys = Vec::new();
            for (bit, name) in [
                (1, "saddr"),
                (2, "daddr"),
                (4, "mark"),
                (8, "iif"),
                (16, "oif"),
            ] {
                if flags & bit != 0 {
                    keys.push(name);
                }
            }
            let result = match reg(d, 2) {
                1 => "oif",
                2 => "oifname",
                3 => "type",
                _ => "?",
            };
            let present = if flags & 32 != 0 { " present" } else { "" };
            format!(
                "fib {} {result}{present} => reg {}",
                keys.join(" . "),
                reg(d, 1)
            )
        }
        "dynset" => {
            let op = ["add", "update", "delete"]
                .get(reg(d, 3) as usize)
                .copied()
                .unwrap_or("?");
            let mut out = format!(
                "dynset {op} reg_key {} set {}",
                reg(d, 4),
                attribute(d, 1).map(string).unwrap_or_default()
            );
            if let Some(e) = attribute(d, 7) {
                let name = attribute(e, NFTA_EXPR_NAME).map(string).unwrap_or_default();
                let data = attribute(e, NFTA_EXPR_DATA).unwrap_or_default();
                out.push_str(&format!(" expr [ {} ]", expression(&name, data)));
            }
            out
        }
        other => format!("unknown {other}"),
    }
}
