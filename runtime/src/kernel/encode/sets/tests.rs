//! Every set and element message pinned to the bytes nft 1.0.6 sends for
//! the same declaration (`nft --debug=mnl -c -f`, one set per file, so each
//! set's id in the batch is 1, as here).

use rustables::{Batch, ProtocolFamily, Table};

use super::*;
use crate::ir::{self, Element, Value};
use crate::kernel::wire::messages;

/// The attributes of every message `f` adds, by message type.
fn sent(f: impl FnOnce(&mut Out)) -> Vec<(u16, String)> {
    let mut batch = Batch::new();
    let mut texts = Vec::new();
    let mut own = Vec::new();
    let table = Table::new(ProtocolFamily::Inet).with_name("t");
    f(&mut Out {
        batch: &mut batch,
        texts: &mut texts,
        messages: &mut own,
        placeholder: &table,
    });
    let bytes = super::super::objects::splice(batch.finalize(), &own);
    messages(&bytes)
        .map(Result::unwrap)
        .filter(|m| m.ty >> 8 == libc::NFNL_SUBSYS_NFTABLES as u16)
        .map(|m| (m.ty & 0xff, crate::text::hex(&m.payload[4..])))
        .collect()
}

fn named(elements: ir::SetElements, name: &str) -> Vec<(u16, String)> {
    sent(|out| add_set(out, "t", name, String::new(), &elements))
}

fn addr(s: &str) -> Value {
    Value::Addr(s.parse().unwrap())
}

fn one(v: Value) -> SetElement {
    SetElement::key(Element(vec![v]))
}

fn kind(key: &[KeyType]) -> SetKind {
    SetKind::plain(Key(key.to_vec()))
}

#[test]
fn an_interval_set_is_sent_as_nft_sends_it() {
    let set = ir::SetElements::new(
        SetKind {
            intervals: true,
            ..kind(&[KeyType::InetService])
        },
        vec![one(Value::Range(1, 1024)), one(Value::Number(65535))],
    );
    assert_eq!(
        named(set, "iv"),
        [
            (9, "060001007400000007000200697600000800030000000004080004000000000d080005000000000208000a00000000010a000d000004020000000000".into()),
            (12, "060001007400000007000200697600000800040000000001600003801800018008000300000000010c0001800600010000000000100002800c00018006000100000100001800038008000300000000010c00018006000100040100001c0004800c00018006000100ffff00000a0006000104010000000000".into()),
        ]
    );
}

#[test]
fn maps_are_sent_as_nft_sends_them() {
    let verdicts = ir::SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            ..kind(&[KeyType::Ifname])
        },
        vec![
            SetElement {
                key: Element(vec![Value::Name("lan0".into())]),
                data: Some(Data::Verdict(Verdict::Jump("c".into()))),
            },
            SetElement {
                key: Element(vec![Value::Name("wan0".into())]),
                data: Some(Data::Verdict(Verdict::Drop)),
            },
        ],
    );
    assert_eq!(
        named(verdicts, "vm"),
        [
            (9, "060001007400000007000200766d000008000300000000080800040000000029080005000000001008000600ffffff00080007000000000008000a000000000116000d000004010000000104000000000604000000000000".into()),
            (12, "060001007400000007000200766d00000800040000000001640003803400018018000180140001006c616e30000000000000000000000000180002801400028008000100fffffffd06000200630000002c000280180001801400010077616e30000000000000000000000000100002800c0002800800010000000000".into()),
        ]
    );
    let nat = ir::SetElements::new(
        SetKind {
            data: Some(MapData::Values(Key(vec![
                KeyType::Ipv4Addr,
                KeyType::InetService,
            ]))),
            ..kind(&[KeyType::InetService])
        },
        vec![SetElement {
            key: Element(vec![Value::Number(8080)]),
            data: Some(Data::Values(Element(vec![
                addr("192.168.1.10"),
                Value::Number(80),
            ]))),
        }],
    );
    assert_eq!(
        named(nat, "dm"),
        [
            (9, "060001007400000007000200646d00000800030000000008080004000000000d080005000000000208000600000001cd080007000000000808000a000000000120000d00000402000000010400000000040800040d0000000100060400000000".into()),
            (12, "060001007400000007000200646d0000080004000000000124000380200001800c000180060001001f900000100002800c000100c0a8010a00500000".into()),
        ]
    );
    let intervals = ir::SetElements::new(
        SetKind {
            data: Some(MapData::Values(Key(vec![KeyType::Ipv4Addr]))),
            intervals: true,
            ..kind(&[KeyType::Ipv4Addr])
        },
        vec![SetElement {
            key: Element(vec![Value::Prefix("10.0.0.0/8".parse().unwrap())]),
            data: Some(Data::Values(Element(vec![addr("1.1.1.1")]))),
        }],
    );
    assert_eq!(
        named(intervals, "im"),
        [
            (9, "060001007400000007000200696d0000080003000000000c080004000000000708000500000000040800060000000007080007000000000408000a000000000116000d000004020000000104020000000604000000000000".into()),
            (12, "060001007400000007000200696d00000800040000000001500003801800018008000300000000010c00018008000100000000001c0002800c000180080001000a0000000c00028008000100010101011800038008000300000000010c000180080001000b000000".into()),
        ]
    );
}

#[test]
fn concatenations_timeouts_and_dynamic_sets_are_sent_as_nft_sends_them() {
    let ci = ir::SetElements::new(
        SetKind {
            intervals: true,
            ..kind(&[KeyType::Ipv4Addr, KeyType::InetService])
        },
        vec![SetElement::key(Element(vec![
            Value::Prefix("10.0.0.0/8".parse().unwrap()),
            Value::Range(1, 1024),
        ]))],
    );
    assert_eq!(
        named(ci, "ci"),
        [
            (9, "06000100740000000700020063690000080003000000008408000400000001cd080005000000000808000a0000000001200009801c0002800c00018008000100000000040c000180080001000000000214000d00000400000000030800040d0000000100".into()),
            (12, "0600010074000000070002006369000008000400000000012800038024000180100001800c0001000a0000000001000010000a800c0001000affffff04000000".into()),
        ]
    );
    let ts = ir::SetElements::new(
        SetKind {
            timeout: Some(60),
            size: Some(10),
            ..kind(&[KeyType::Ipv4Addr])
        },
        vec![one(addr("10.0.0.1"))],
    );
    assert_eq!(
        named(ts, "ts"),
        [
            (9, "0600010074000000070002007473000008000300000000100800040000000007080005000000000408000a00000000010c000980080001000000000a0c000b00000000000000ea600a000d000004020000000000".into()),
            (12, "06000100740000000700020074730000080004000000000114000380100001800c000180080001000a000001".into()),
        ]
    );
    let dy = ir::SetElements::new(
        SetKind {
            timeout: Some(3600),
            size: Some(100),
            dynamic: true,
            ..kind(&[KeyType::Ipv4Addr, KeyType::InetService])
        },
        vec![],
    );
    assert_eq!(
        named(dy, "dy"),
        [(9, "06000100740000000700020064790000080003000000003008000400000001cd080005000000000808000a00000000010c00098008000100000000640c000b00000000000036ee8014000d00000400000000030800040d0000000100".into())]
    );
}

#[test]
fn host_endian_keys_are_sent_as_nft_sends_them() {
    let marks = ir::SetElements::new(
        kind(&[KeyType::Mark]),
        vec![one(Value::Number(1)), one(Value::Number(2))],
    );
    assert_eq!(
        named(marks, "mk"),
        [
            (9, "0600010074000000070002006d6b000008000300000000000800040000000013080005000000000408000a00000000010a000d000004010000000000".into()),
            (12, "0600010074000000070002006d6b0000080004000000000124000380100001800c0001800800010001000000100002800c0001800800010002000000".into()),
        ]
    );
    let names = ir::SetElements::new(
        kind(&[KeyType::Ifname, KeyType::Ipv4Addr]),
        vec![SetElement::key(Element(vec![
            Value::Name("lan0".into()),
            addr("10.0.0.1"),
        ]))],
    );
    assert_eq!(
        named(names, "nm"),
        [
            (9, "0600010074000000070002006e6d000008000300000000000800040000000a47080005000000001408000a000000000114000d00000400000000030800040d0000000100".into()),
            (12, "0600010074000000070002006e6d0000080004000000000124000380200001801c000180180001006c616e300000000000000000000000000a000001".into()),
        ]
    );
}

#[test]
fn deletes_name_keys_and_interval_ends_only() {
    let kind = SetKind {
        data: Some(MapData::Values(Key(vec![KeyType::Ipv4Addr]))),
        intervals: true,
        ..kind(&[KeyType::Ipv4Addr])
    };
    let set = ir::SetElements::new(
        kind,
        vec![SetElement {
            key: Element(vec![Value::Prefix("10.0.0.0/8".parse().unwrap())]),
            data: Some(Data::Values(Element(vec![addr("1.1.1.1")]))),
        }],
    );
    let msgs = sent(|out| delete_elements(out, "t", "im", &set));
    // No end at 0, no data: the start and the end after it.
    assert_eq!(
        msgs,
        [(14, "060001007400000007000200696d00002c000380100001800c000180080001000a0000001800028008000300000000010c000180080001000b000000".into())]
    );
}

#[test]
fn a_map_element_is_deleted_by_its_key() {
    let set = ir::SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            ..kind(&[KeyType::Ifname])
        },
        vec![SetElement {
            key: Element(vec![Value::Name("lan0".into())]),
            data: Some(Data::Verdict(Verdict::Drop)),
        }],
    );
    assert_eq!(
        sent(|out| delete_elements(out, "t", "vm", &set)),
        [(14, "060001007400000007000200766d0000200003801c00018018000180140001006c616e30000000000000000000000000".into())]
    );
}

#[test]
fn long_element_lists_are_split_and_named_by_their_first_elements() {
    let ports = ir::SetElements::ports(1..=2000);
    let mut texts = Vec::new();
    let mut batch = Batch::new();
    let mut own = Vec::new();
    let table = Table::new(ProtocolFamily::Inet).with_name("t");
    let mut out = Out {
        batch: &mut batch,
        texts: &mut texts,
        messages: &mut own,
        placeholder: &table,
    };
    add_elements(&mut out, "t", "p", None, &ports, false);
    assert_eq!(
        texts,
        [
            "add element inet t p { 1, 2, 3, 4, ... (1020 more) }",
            "add element inet t p { 1025, 1026, 1027, 1028, ... (972 more) }"
        ]
    );
    // Each element a key and a key end of 64 bytes: 148 bytes of nest.
    let wide = ir::SetElements::new(
        SetKind {
            intervals: true,
            ..kind(&[KeyType::Ipv6Addr; 4])
        },
        (0..600u128)
            .map(|i| {
                let a = Value::Addr(std::net::Ipv6Addr::from(i << 64).into());
                SetElement::key(Element(vec![a.clone(), a.clone(), a.clone(), a]))
            })
            .collect(),
    );
    let msgs = sent(|out| add_elements(out, "t", "w", None, &wide, false));
    assert_eq!(
        msgs.len(),
        2,
        "600 elements of 148 bytes do not fit one attribute"
    );
    assert!(msgs.iter().all(|(_, hex)| hex.len() / 2 < 65_535));
}
