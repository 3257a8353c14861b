//! Every message pinned to the bytes nft 1.0.6 sends for the same command
//! (`nft --debug=mnl -c -f FILE` in a throwaway namespace: the attributes
//! after the nfgenmsg header, as it prints them).

use super::*;
use crate::ir::{CtHelper, Flowtable, Rate, TimeUnit, Transport};
use crate::kernel::wire::{Message, align4, messages};

fn hex(bytes: &[u8]) -> String {
    crate::text::hex(bytes)
}

/// The one message of `op` on table `t`: its type (NFT_MSG_*), its flags
/// and its attributes after the nfgenmsg header, in hex.
fn encoded(op: &Op) -> (u16, u16, String) {
    let bytes = encode(op, "t", 7).expect("an object operation");
    let all: Vec<Message> = messages(&bytes).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 1);
    let m = &all[0];
    assert_eq!((m.seq, m.family()), (7, Some(INET)));
    assert_eq!(m.ty >> 8, libc::NFNL_SUBSYS_NFTABLES as u16);
    (m.ty & 0xff, m.flags, hex(&m.payload[4..]))
}

const T: &str = "0600010074000000";

#[test]
fn a_counter_is_sent_as_nft_sends_it() {
    let (ty, flags, attrs) = encoded(&Op::AddObject {
        name: "cnt".into(),
        object: Object::Counter,
    });
    assert_eq!(ty, NFT_MSG_NEWOBJ);
    assert_eq!(
        flags,
        (libc::NLM_F_REQUEST | libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16
    );
    // table "t", name "cnt", type 1, data { bytes 0, packets 0 }.
    assert_eq!(
        attrs,
        format!(
            "{T}08000200636e7400 0800030000000001 1c000480 \
             0c000100 0000000000000000 0c000200 0000000000000000"
        )
        .replace(' ', "")
    );
}

/// `limit lim { rate 10/second }` and `limit lim { rate over 100
/// kbytes/second }`: the object carries its burst (5, nft's default for
/// packets; 0 for bytes) and its flags always.
#[test]
fn a_limit_is_sent_as_nft_sends_it() {
    let limit = |amount, bytes, burst, over| Op::AddObject {
        name: "lim".into(),
        object: Object::Limit {
            rate: Rate {
                amount,
                bytes,
                per: TimeUnit::Second,
                burst,
            },
            over,
        },
    };
    let (ty, _, attrs) = encoded(&limit(10, false, 5, false));
    assert_eq!(ty, NFT_MSG_NEWOBJ);
    let head = format!("{T}080002006c696d00 0800030000000004 34000480");
    assert_eq!(
        attrs,
        format!(
            "{head} 0c000100000000000000000a 0c0002000000000000000001 \
             0800030000000005 0800040000000000 0800050000000000"
        )
        .replace(' ', "")
    );
    let (_, _, attrs) = encoded(&limit(100 << 10, true, 0, true));
    assert_eq!(
        attrs,
        format!(
            "{head} 0c0001000000000000019000 0c0002000000000000000001 \
             0800030000000000 0800040000000001 0800050000000001"
        )
        .replace(' ', "")
    );
}

#[test]
fn a_ct_helper_is_sent_as_nft_sends_it() {
    let (ty, _, attrs) = encoded(&Op::AddObject {
        name: "ftph".into(),
        object: Object::CtHelper(CtHelper {
            helper: "ftp".into(),
            protocol: Transport::Tcp,
        }),
    });
    assert_eq!(ty, NFT_MSG_NEWOBJ);
    // name "ftph", type 3, data { name "ftp", l3proto inet (1, 16 bits),
    // l4proto 6 }.
    assert_eq!(
        attrs,
        format!(
            "{T}0900020066747068000000000800030000000003\
             1c0004800700010066747000060002000001000005000300060000 00"
        )
        .replace(' ', "")
    );
}

#[test]
fn an_object_is_deleted_as_nft_deletes_it() {
    let (ty, flags, attrs) = encoded(&Op::DeleteObject {
        name: "c".into(),
        type_id: crate::ir::OBJECT_COUNTER,
    });
    assert_eq!(ty, NFT_MSG_DELOBJ);
    assert_eq!(flags, (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16);
    // name "c", type 1, and the empty data nft sends along.
    assert_eq!(
        attrs,
        format!("{T}06000200630000000800030000000001 04000480").replace(' ', "")
    );
}

fn ft(priority: i32, devices: &[&str], hardware_offload: bool, counter: bool) -> Flowtable {
    Flowtable {
        priority,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        hardware_offload,
        counter,
    }
}

/// `flowtable ft { hook ingress priority filter; devices = { lan0, wan0 };
/// counter }`: nft sends the devices last to first.
#[test]
fn a_flowtable_is_sent_as_nft_sends_it() {
    let (ty, flags, attrs) = encoded(&Op::AddFlowtable {
        name: "ft".into(),
        flowtable: ft(0, &["lan0", "wan0"], false, true),
    });
    assert_eq!(ty, NFT_MSG_NEWFLOWTABLE);
    assert_eq!(
        flags,
        (libc::NLM_F_REQUEST | libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16,
        "no NLM_F_EXCL: the same message updates an existing flowtable"
    );
    let wan0 = "0900010077616e3000000000";
    let lan0 = "090001006c616e3000000000";
    assert_eq!(
        attrs,
        format!(
            "{T}0700020066740000\
             30000380 0800010000000000 0800020000000000 1c000380{wan0}{lan0}\
             0800070000000002"
        )
        .replace(' ', "")
    );
}

/// `hook ingress priority filter + 5; devices = { dmz0, lan0, wan0 };
/// flags offload`.
#[test]
fn a_flowtable_priority_and_hardware_offload_are_sent_as_nft_sends_them() {
    let (_, _, attrs) = encoded(&Op::AddFlowtable {
        name: "ft".into(),
        flowtable: ft(5, &["dmz0", "lan0", "wan0"], true, false),
    });
    let hook = "0800010000000000 0800020000000005";
    let devs =
        "28000380 090001007761 6e3000000000 090001006c616e3000000000 09000100646d7a3000000000";
    assert_eq!(
        attrs,
        format!("{T}0700020066740000 3c000380 {hook} {devs} 0800070000000001").replace(' ', "")
    );
}

/// `delete flowtable inet t ft { devices = { wan0 }; }`: nft sends the
/// hook with the devices to remove (and priority 0, the default of its
/// syntax; this sends the flowtable's own, which the kernel requires to
/// match).
#[test]
fn devices_leave_a_flowtable_as_nft_removes_them() {
    let (ty, flags, attrs) = encoded(&Op::DeleteFlowtableDevices {
        name: "ft".into(),
        priority: 0,
        devices: vec!["wan0".into()],
    });
    assert_eq!(ty, NFT_MSG_DELFLOWTABLE);
    assert_eq!(flags, (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16);
    assert_eq!(
        attrs,
        format!(
            "{T}0700020066740000 24000380 0800010000000000 0800020000000000 10000380 090001007761 6e3000000000"
        )
        .replace(' ', "")
    );
    let (ty, _, attrs) = encoded(&Op::DeleteFlowtable { name: "ft".into() });
    assert_eq!(ty, NFT_MSG_DELFLOWTABLE);
    assert_eq!(attrs, format!("{T}0700020066740000"));
}

#[test]
fn operations_of_other_kinds_are_not_encoded_here() {
    assert!(encode(&Op::AddTable, "t", 1).is_none());
}

/// A batch of three messages with the middle one replaced: the others keep
/// their bytes, the new one its own length.
#[test]
fn splice_replaces_the_message_of_a_sequence_number() {
    let msg = |seq: u32, payload: &[u8]| {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
        m
    };
    let batch = [msg(0, b""), msg(1, b"ab"), msg(2, b"")].concat();
    let new = msg(1, b"longer payload");
    let out = splice(batch.clone(), &[(1, new.clone())]);
    assert_eq!(out, [msg(0, b""), new, msg(2, b"")].concat());
    assert_eq!(splice(batch.clone(), &[]), batch);
}
