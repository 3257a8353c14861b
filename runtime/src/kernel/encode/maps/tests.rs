//! Every map action encoded as nft 1.0.6 encodes it: the expressions
//! `nft --debug=netlink -c` printed for the same rule, and for an inline
//! map the anonymous map and its elements as `nft --debug=mnl -c` sent
//! them (ids in the batch aside).

use super::super::nft_debug::expressions;
use super::super::{Options, encode};
use crate::ir::*;
use crate::kernel::wire::messages;
use crate::plan::{Op, Position, RuleTag, Transaction};

fn rule(action: Action) -> Rule {
    Rule {
        matches: vec![],
        statements: vec![],
        action,
        comment: None,
        cut_flows: false,
    }
}

fn named(fields: Vec<Field>, map: &str) -> MapLookup {
    MapLookup {
        fields,
        map: MapSource::Named(map.into()),
    }
}

#[test]
fn a_vmap_looks_its_verdict_up() {
    let r = rule(Action::Vmap(named(vec![Field::Iifname], "m1")));
    assert_eq!(r.to_string(), "iifname vmap @m1");
    assert_eq!(
        expressions(&r),
        "[ meta load iifname => reg 1 ]\n[ lookup reg 1 set m1 dreg 0 ]\n"
    );
}

#[test]
fn nat_maps_translate_to_what_they_find() {
    let nat = |family, fields, map: &str, ports| NatMap {
        family,
        lookup: named(fields, map),
        ports,
    };
    let dport = Field::Dport(Transport::Tcp);
    let r = rule(Action::DnatMap(nat(Family::V4, vec![dport], "fwds", true)));
    assert_eq!(r.to_string(), "dnat ip to tcp dport map @fwds");
    assert_eq!(
        expressions(&r),
        "[ meta load l4proto => reg 1 ]\n\
         [ cmp eq reg 1 0x00000006 ]\n\
         [ payload load 2b @ transport header + 2 => reg 1 ]\n\
         [ lookup reg 1 set fwds dreg 1 ]\n\
         [ nat dnat ip addr_min reg 1 proto_min reg 9 ]\n"
    );
    let r = rule(Action::DnatMap(nat(
        Family::V4,
        vec![Field::Saddr(Family::V4)],
        "a4",
        false,
    )));
    assert_eq!(r.to_string(), "dnat ip to ip saddr map @a4");
    assert_eq!(
        expressions(&r),
        "[ meta load nfproto => reg 1 ]\n\
         [ cmp eq reg 1 0x00000002 ]\n\
         [ payload load 4b @ network header + 12 => reg 1 ]\n\
         [ lookup reg 1 set a4 dreg 1 ]\n\
         [ nat dnat ip addr_min reg 1 ]\n"
    );
    let r = rule(Action::SnatMap(nat(Family::V6, vec![dport], "v6", true)));
    assert_eq!(r.to_string(), "snat ip6 to tcp dport map @v6");
    assert_eq!(
        expressions(&r),
        "[ meta load l4proto => reg 1 ]\n\
         [ cmp eq reg 1 0x00000006 ]\n\
         [ payload load 2b @ transport header + 2 => reg 1 ]\n\
         [ lookup reg 1 set v6 dreg 1 ]\n\
         [ nat snat ip6 addr_min reg 1 proto_min reg 2 ]\n"
    );
}

/// The attributes of each message encoding `rule` sends, by type.
fn sent(rule: Rule) -> Vec<(u16, String)> {
    let tx = Transaction {
        table: "t".into(),
        ops: vec![Op::AddRule {
            chain: "in".into(),
            rule,
            tag: RuleTag {
                policy: "p".into(),
                hash: "0".into(),
            },
            position: Position::Append,
        }],
    };
    let encoded = encode(&tx, Options::default()).unwrap();
    messages(&encoded.bytes)
        .map(Result::unwrap)
        .filter(|m| m.ty >> 8 == libc::NFNL_SUBSYS_NFTABLES as u16)
        .map(|m| (m.ty & 0xff, crate::text::hex(&m.payload[4..])))
        .collect()
}

fn verdict(key: Value, v: Verdict) -> SetElement {
    SetElement {
        key: Element(vec![key]),
        data: Some(Data::Verdict(v)),
    }
}

#[test]
fn an_inline_map_goes_just_before_its_rule() {
    let map = SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            ..SetKind::plain(Key(vec![KeyType::Ifname]))
        },
        vec![
            verdict(Value::Name("x".into()), Verdict::Drop),
            verdict(Value::Name("lan0".into()), Verdict::Jump("c".into())),
        ],
    );
    let r = rule(Action::Vmap(MapLookup {
        fields: vec![Field::Iifname],
        map: MapSource::Inline(map),
    }));
    assert_eq!(
        r.to_string(),
        "iifname vmap { \"x\" : drop, \"lan0\" : jump c }"
    );
    let msgs = sent(r);
    assert_eq!(msgs.len(), 3, "the map, its elements, the rule");
    assert_eq!(
        msgs[..2],
        [
            (9, "06000100740000000c0002005f5f6d6170256400080003000000000b0800040000000029080005000000001008000600ffffff00080007000000000008000a00000000010c000980080001000000000220000d0000040100000001040000000004080004010000000100060400000000".into()),
            (12, "06000100740000000c0002005f5f6d61702564000800040000000001640003802c000180180001801400010078000000000000000000000000000000100002800c00028008000100000000003400028018000180140001006c616e30000000000000000000000000180002801400028008000100fffffffd0600020063000000".into()),
        ]
    );
    // The rule's lookup names the map by its id in the batch (1).
    // (set "__map%d", sreg 1, dreg 0, set id 1)
    let lookup = "5f5f6d6170256400080002000000000108000300000000000800040000000001";
    assert!(msgs[2].1.contains(lookup), "{}", msgs[2].1);
}

#[test]
fn an_inline_interval_map_is_sized_by_its_kernel_elements() {
    let map = SetElements::new(
        SetKind {
            data: Some(MapData::Verdict),
            intervals: true,
            ..SetKind::plain(Key(vec![KeyType::InetService]))
        },
        vec![
            verdict(Value::Range(1, 1024), Verdict::Accept),
            verdict(Value::Number(65535), Verdict::Drop),
        ],
    );
    let r = rule(Action::Vmap(MapLookup {
        fields: vec![Field::Dport(Transport::Tcp)],
        map: MapSource::Inline(map),
    }));
    assert_eq!(
        r.to_string(),
        "tcp dport vmap { 1-1024 : accept, 65535 : drop }"
    );
    let msgs = sent(r);
    // nft's, its map the second of its batch (id 2), here the first.
    let nft_set = "06000100740000000c0002005f5f6d6170256400080003000000000f080004000000000d080005000000000208000600ffffff00080007000000000008000a00000000020c000980080001000000000520000d0000040200000001040000000004080004010000000100060400000000";
    let nft_elements = "06000100740000000c0002005f5f6d61702564000800040000000002800003801800018008000300000000010c0001800600010000000000200002800c0001800600010000010000100002800c00028008000100000000011800038008000300000000010c00018006000100040100002c0004800c00018006000100ffff0000100002800c00028008000100000000000a0006000104010000000000";
    let with_id_1 = |hex: &str, id_attr: &str| {
        hex.replacen(
            &format!("{id_attr}00000002"),
            &format!("{id_attr}00000001"),
            1,
        )
    };
    assert_eq!(msgs[0], (9, with_id_1(nft_set, "08000a00")));
    assert_eq!(msgs[1], (12, with_id_1(nft_elements, "08000400")));
}
