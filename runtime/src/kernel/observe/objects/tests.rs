//! Objects, flowtables and references decoded from messages laid out as
//! the kernel dumps them.

use super::*;
use crate::kernel::wire::{Request, messages};

fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut out = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A message's attributes after its table's: (type, value).
type Attributes = Vec<(u16, Vec<u8>)>;

/// The table "ww" after dump messages of type `msg`, each of a table with
/// these attributes.
fn collected(msg: u32, bodies: &[(&str, Attributes)]) -> crate::plan::ObservedTable {
    let mut c = Collector::new("ww", true);
    for (table, attrs) in bodies {
        let mut r = Request::new(msg as u16, 0, 1, libc::NFPROTO_INET as u8).string(1, table);
        for (ty, value) in attrs {
            r.put(*ty, value);
        }
        let bytes = r.finish();
        for m in messages(&bytes) {
            let m = m.unwrap();
            match msg as i32 {
                libc::NFT_MSG_NEWOBJ => c.object(&m),
                _ => c.flowtable(&m),
            }
        }
    }
    c.finish()
}

const NFT_MSG_NEWFLOWTABLE: u32 = 22;

fn helper(l3: u16, l4: u8) -> Attributes {
    let data = [
        attr(NFTA_CT_HELPER_NAME, &nul("ftp")),
        attr(NFTA_CT_HELPER_L3PROTO, &l3.to_be_bytes()),
        attr(NFTA_CT_HELPER_L4PROTO, &[l4]),
    ]
    .concat();
    vec![
        (NFTA_OBJ_NAME, nul("p/ftp")),
        (NFTA_OBJ_TYPE, ir::OBJECT_CT_HELPER.to_be_bytes().to_vec()),
        (NFTA_OBJ_DATA, data),
    ]
}

#[test]
fn objects_read_back_with_their_definitions() {
    let counter = vec![
        (NFTA_OBJ_NAME, nul("p/c")),
        (NFTA_OBJ_TYPE, ir::OBJECT_COUNTER.to_be_bytes().to_vec()),
        (
            NFTA_OBJ_DATA,
            [attr(1, &7u64.to_be_bytes()), attr(2, &1u64.to_be_bytes())].concat(),
        ),
    ];
    let quota = vec![
        (NFTA_OBJ_NAME, nul("by-hand")),
        (NFTA_OBJ_TYPE, 2u32.to_be_bytes().to_vec()),
    ];
    let t = collected(
        libc::NFT_MSG_NEWOBJ as u32,
        &[
            ("ww", counter),
            ("ww", helper(libc::NFPROTO_INET as u16, 6)),
            ("ww", quota),
            ("other", helper(libc::NFPROTO_INET as u16, 6)),
        ],
    );
    assert_eq!(t.objects.len(), 3, "the other table's object is not ours");
    // A counter's numbers are not part of it.
    assert_eq!(t.objects[0].name, "p/c");
    assert_eq!(t.objects[0].definition, Some(vec![]));
    assert_eq!(t.objects[1].type_id, ir::OBJECT_CT_HELPER);
    assert_eq!(
        t.objects[1].definition,
        Some(vec![
            "type \"ftp\" protocol tcp".to_string(),
            "l3proto inet".to_string()
        ])
    );
    assert_eq!((t.objects[2].type_id, &t.objects[2].definition), (2, &None));
}

fn limit(unit: u64, kind: u32, flags: u32) -> Attributes {
    let data = [
        attr(NFTA_LIMIT_RATE, &10u64.to_be_bytes()),
        attr(NFTA_LIMIT_UNIT, &unit.to_be_bytes()),
        attr(NFTA_LIMIT_BURST, &5u32.to_be_bytes()),
        attr(NFTA_LIMIT_TYPE, &kind.to_be_bytes()),
        attr(NFTA_LIMIT_FLAGS, &flags.to_be_bytes()),
    ]
    .concat();
    vec![
        (NFTA_OBJ_NAME, nul("p/l")),
        (NFTA_OBJ_TYPE, ir::OBJECT_LIMIT.to_be_bytes().to_vec()),
        (NFTA_OBJ_DATA, data),
    ]
}

#[test]
fn limits_read_back_with_their_rate() {
    let t = collected(
        libc::NFT_MSG_NEWOBJ as u32,
        &[("ww", limit(60, 0, 1)), ("ww", limit(1, 1, 0))],
    );
    assert_eq!(
        t.objects[0].definition,
        Some(vec!["rate over 10/minute".to_string()])
    );
    assert_eq!(
        t.objects[1].definition,
        Some(vec!["rate 10 bytes/second burst 5 bytes".to_string()])
    );
    for (unit, kind, flags) in [(7, 0, 0), (1, 2, 0), (1, 0, 2)] {
        let t = collected(
            libc::NFT_MSG_NEWOBJ as u32,
            &[("ww", limit(unit, kind, flags))],
        );
        assert_eq!(t.objects[0].definition, None, "{unit} {kind} {flags}");
    }
}

#[test]
fn a_helper_the_runtime_would_not_make_has_no_definition() {
    for (l3, l4) in [
        (libc::NFPROTO_IPV4 as u16, 6),
        (libc::NFPROTO_INET as u16, 132),
    ] {
        let t = collected(libc::NFT_MSG_NEWOBJ as u32, &[("ww", helper(l3, l4))]);
        assert_eq!(t.objects[0].definition, None, "l3 {l3} l4 {l4}");
    }
}

fn flowtable_msg(devs: &[(u16, &str)], flags: u32, hooknum: u32) -> Attributes {
    let devs: Vec<u8> = devs.iter().flat_map(|(ty, d)| attr(*ty, &nul(d))).collect();
    let hook = [
        attr(NFTA_FLOWTABLE_HOOK_NUM, &hooknum.to_be_bytes()),
        attr(NFTA_FLOWTABLE_HOOK_PRIORITY, &(-5i32).to_be_bytes()),
        attr(NFTA_FLOWTABLE_HOOK_DEVS, &devs),
    ]
    .concat();
    vec![
        (NFTA_FLOWTABLE_NAME, nul("p/ft")),
        (NFTA_FLOWTABLE_HOOK, hook),
        (NFTA_FLOWTABLE_FLAGS, flags.to_be_bytes().to_vec()),
    ]
}

#[test]
fn flowtables_read_back_with_sorted_devices() {
    let t = collected(
        NFT_MSG_NEWFLOWTABLE,
        &[(
            "ww",
            flowtable_msg(
                &[(NFTA_DEVICE_NAME, "wan0"), (NFTA_DEVICE_NAME, "lan0")],
                3,
                0,
            ),
        )],
    );
    assert_eq!(t.flowtables[0].name, "p/ft");
    assert_eq!(
        t.flowtables[0].flowtable,
        Some(Flowtable {
            priority: -5,
            devices: vec!["lan0".into(), "wan0".into()],
            hardware_offload: true,
            counter: true,
        })
    );
}

#[test]
fn a_flowtable_the_runtime_would_not_make_has_no_definition() {
    for (devs, flags, hooknum) in [
        // A name prefix (NFTA_DEVICE_PREFIX, kernel 6.18).
        (vec![(2, "eth")], 0, 0),
        (vec![(NFTA_DEVICE_NAME, "lan0")], 4, 0),
        (vec![(NFTA_DEVICE_NAME, "lan0")], 0, 1),
    ] {
        let t = collected(
            NFT_MSG_NEWFLOWTABLE,
            &[("ww", flowtable_msg(&devs, flags, hooknum))],
        );
        assert_eq!(
            t.flowtables[0].flowtable, None,
            "{devs:?} {flags} {hooknum}"
        );
    }
}

#[test]
fn object_references_and_offloads_are_references() {
    let objref = [
        attr(NFTA_OBJREF_IMM_TYPE, &ir::OBJECT_COUNTER.to_be_bytes()),
        attr(NFTA_OBJREF_IMM_NAME, &nul("p/c")),
    ]
    .concat();
    assert_eq!(
        reference(b"objref\0", &objref),
        Some(object_ref(ir::OBJECT_COUNTER, "p/c"))
    );
    let map = attr(NFTA_OBJREF_SET_NAME, &nul("p/m"));
    assert_eq!(reference(b"objref\0", &map), Some(Ref::Set("p/m".into())));
    let offload = attr(NFTA_FLOW_TABLE_NAME, &nul("p/ft"));
    assert_eq!(
        reference(b"flow_offload\0", &offload),
        Some(Ref::Flowtable("p/ft".into()))
    );
    assert_eq!(reference(b"counter\0", &offload), None);
}
