//! Objects and flowtables planned for hand-made cases, compared as nft
//! text, each transaction applied to the simulated kernel, which must take
//! it and end where the policies want.

use super::super::{Transaction, plan, simulate};
use super::*;
use crate::ir::{
    self, Chain, CtHelper, NamedFlowtable, NamedObject, Object, PolicyRules, Ruleset, Transport,
};

const T: &str = "ww";

fn ftp(protocol: Transport) -> Object {
    Object::CtHelper(CtHelper {
        helper: "ftp".into(),
        protocol,
    })
}

fn ft(priority: i32, devices: &[&str], hardware_offload: bool, counter: bool) -> Flowtable {
    Flowtable {
        priority,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        hardware_offload,
        counter,
    }
}

/// Policy "p" with these objects and flowtables and a regular chain.
fn policy(objects: Vec<(&str, Object)>, flowtables: Vec<(&str, Flowtable)>) -> Vec<PolicyRules> {
    vec![PolicyRules {
        policy: "p".into(),
        rules: Ruleset {
            chains: vec![Chain {
                name: "c".into(),
                base: None,
                rules: vec![],
            }],
            objects: objects
                .into_iter()
                .map(|(name, object)| NamedObject {
                    name: name.into(),
                    object,
                })
                .collect(),
            flowtables: flowtables
                .into_iter()
                .map(|(name, flowtable)| NamedFlowtable {
                    name: name.into(),
                    flowtable,
                })
                .collect(),
            ..Ruleset::default()
        },
    }]
}

/// The plan from `from` (applied first) to `to`, checked on the simulated
/// kernel: it takes the plan, ends as `to` wants, and plans nothing more.
fn change(from: &[PolicyRules], to: &[PolicyRules]) -> Transaction {
    let mut handle = 0;
    let mut next = |_| {
        handle += 1;
        Some(handle)
    };
    let first = super::super::DesiredTable::from_policies(from);
    let tx = plan(T, &first, None).unwrap();
    let table = simulate(None, &tx, &mut next).unwrap();
    let want = super::super::DesiredTable::from_policies(to);
    let tx = plan(T, &want, table.as_ref()).unwrap();
    let after = simulate(table, &tx, &mut next).unwrap_or_else(|e| panic!("{e}\n{tx}"));
    assert_eq!(
        after.as_ref().map(ObservedTable::normalized),
        Some(want.expected().normalized()),
        "{tx}"
    );
    assert!(plan(T, &want, after.as_ref()).unwrap().is_empty());
    tx
}

#[test]
fn new_objects_and_flowtables_come_before_the_chains() {
    let p = policy(
        vec![("c", Object::Counter), ("h", ftp(Transport::Tcp))],
        vec![("f", ft(0, &["lan0", "wan0"], false, true))],
    );
    let tx = plan(T, &super::super::DesiredTable::from_policies(&p), None).unwrap();
    assert_eq!(
        tx.to_string(),
        "add table inet ww\n\
         add counter inet ww p/c\n\
         add ct helper inet ww p/h { type \"ftp\" protocol tcp; l3proto inet; }\n\
         add flowtable inet ww p/f { hook ingress priority filter; devices = { lan0, wan0 }; counter; }\n\
         add chain inet ww p/c\n"
    );
    assert_eq!(
        tx.summary(),
        "1 table add, 2 object adds, 1 flowtable add, 1 chain add"
    );
}

#[test]
fn the_same_objects_plan_nothing() {
    let p = policy(
        vec![("c", Object::Counter), ("h", ftp(Transport::Udp))],
        vec![("f", ft(3, &["lan0"], true, false))],
    );
    assert!(change(&p, &p).is_empty());
}

/// The kernel keeps the old definition of an object sent again: a changed
/// one is deleted and added.
#[test]
fn a_changed_helper_is_made_again() {
    let tx = change(
        &policy(vec![("h", ftp(Transport::Tcp))], vec![]),
        &policy(vec![("h", ftp(Transport::Udp))], vec![]),
    );
    assert_eq!(
        tx.to_string(),
        "delete ct helper inet ww p/h\n\
         add ct helper inet ww p/h { type \"ftp\" protocol udp; l3proto inet; }\n"
    );
}

#[test]
fn objects_no_longer_wanted_are_deleted_and_a_new_type_is_another_object() {
    let tx = change(
        &policy(vec![("x", Object::Counter), ("y", Object::Counter)], vec![]),
        &policy(vec![("x", ftp(Transport::Tcp))], vec![]),
    );
    assert_eq!(
        tx.to_string(),
        "delete counter inet ww p/x\n\
         delete counter inet ww p/y\n\
         add ct helper inet ww p/x { type \"ftp\" protocol tcp; l3proto inet; }\n"
    );
}

#[test]
fn objects_of_a_kept_policy_stay_and_foreign_ones_go() {
    let p = policy(
        vec![("c", Object::Counter)],
        vec![("f", ft(0, &["a"], false, false))],
    );
    let mut observed = super::super::DesiredTable::from_policies(&p).expected();
    observed.objects.push(ObservedObject {
        name: "by-hand".into(),
        type_id: 2,
        definition: None,
    });
    let mut kept = super::super::DesiredTable {
        kept: vec!["p".into()],
        ..Default::default()
    };
    let tx = plan(T, &kept, Some(&observed)).unwrap();
    assert_eq!(tx.to_string(), "delete quota inet ww by-hand\n");
    kept.kept.clear();
    let tx = plan(T, &kept, Some(&observed)).unwrap();
    assert_eq!(
        tx.to_string(),
        "delete chain inet ww p/c\n\
         delete counter inet ww p/c\n\
         delete quota inet ww by-hand\n\
         delete flowtable inet ww p/f\n"
    );
}

/// A device change is made in place: the devices that leave in one
/// message, the flowtable with its new ones in another.
#[test]
fn a_flowtable_changes_its_devices_in_place() {
    let tx = change(
        &policy(vec![], vec![("f", ft(0, &["lan0", "wan0"], false, false))]),
        &policy(vec![], vec![("f", ft(0, &["dmz0", "lan0"], false, false))]),
    );
    assert_eq!(
        tx.to_string(),
        "delete flowtable inet ww p/f { devices = { wan0 }; }\n\
         add flowtable inet ww p/f { hook ingress priority filter; devices = { dmz0, lan0 }; }\n"
    );
    let only_gone = change(
        &policy(vec![], vec![("f", ft(0, &["lan0", "wan0"], false, true))]),
        &policy(vec![], vec![("f", ft(0, &["lan0"], false, true))]),
    );
    assert_eq!(
        only_gone.to_string(),
        "delete flowtable inet ww p/f { devices = { wan0 }; }\n"
    );
    let counter = change(
        &policy(vec![], vec![("f", ft(0, &["lan0"], false, false))]),
        &policy(vec![], vec![("f", ft(0, &["lan0"], false, true))]),
    );
    assert_eq!(counter.ops.len(), 1, "{counter}");
}

#[test]
fn a_flowtable_changing_priority_or_offload_is_made_again() {
    for to in [
        ft(5, &["lan0"], false, false),
        ft(0, &["lan0"], true, false),
    ] {
        let tx = change(
            &policy(vec![], vec![("f", ft(0, &["lan0"], false, false))]),
            &policy(vec![], vec![("f", to)]),
        );
        assert!(
            tx.to_string()
                .starts_with("delete flowtable inet ww p/f\nadd flowtable"),
            "{tx}"
        );
    }
}

#[test]
fn the_kernel_refuses_what_a_rule_uses_or_what_is_not_there() {
    let p = policy(
        vec![("c", Object::Counter)],
        vec![("f", ft(0, &["a"], false, false))],
    );
    let mut t = super::super::DesiredTable::from_policies(&p).expected();
    t.chains[0].rules.push(super::super::ObservedRule {
        handle: 1,
        tag: None,
        refs: vec![
            object_ref(ir::OBJECT_COUNTER, "p/c"),
            Ref::Flowtable("p/f".into()),
        ],
    });
    let del_counter = Op::DeleteObject {
        name: "p/c".into(),
        type_id: ir::OBJECT_COUNTER,
    };
    let del_ft = Op::DeleteFlowtable { name: "p/f".into() };
    for op in [&del_counter, &del_ft] {
        let err = super::simulate(&mut t.clone(), op).unwrap_err();
        assert!(err.ends_with("is in use"), "{err}");
    }
    t.chains[0].rules.clear();
    let gone = Op::DeleteFlowtableDevices {
        name: "p/f".into(),
        priority: 0,
        devices: vec!["b".into()],
    };
    assert_eq!(
        super::simulate(&mut t.clone(), &gone).unwrap_err(),
        "flowtable p/f has no device b"
    );
    let other_priority = Op::AddFlowtable {
        name: "p/f".into(),
        flowtable: ft(1, &["a"], false, false),
    };
    assert!(super::simulate(&mut t.clone(), &other_priority).is_err());
    assert!(super::simulate(&mut t.clone(), &del_counter).unwrap());
    assert_eq!(
        missing(&t, &object_ref(ir::OBJECT_CT_HELPER, "p/c")),
        Some("no ct helper p/c".into())
    );
}

#[test]
fn the_table_text_lists_objects_first_and_flowtables_after_sets() {
    let mut p = policy(
        vec![("c", Object::Counter), ("h", ftp(Transport::Tcp))],
        vec![("f", ft(-5, &["lan0"], true, false))],
    );
    p[0].rules.sets.push(ir::NamedSet {
        name: "s".into(),
        elements: ir::SetElements::ports([22]),
    });
    assert_eq!(
        super::super::table_text(T, &p),
        "table inet ww {\n\
         \tcounter p/c {\n\
         \t}\n\
         \n\
         \tct helper p/h {\n\
         \t\ttype \"ftp\" protocol tcp\n\
         \t\tl3proto inet\n\
         \t}\n\
         \n\
         \tset p/s {\n\
         \t\ttype inet_service\n\
         \t\telements = { 22 }\n\
         \t}\n\
         \n\
         \tflowtable p/f {\n\
         \t\thook ingress priority filter - 5\n\
         \t\tdevices = { lan0 }\n\
         \t\tflags offload\n\
         \t}\n\
         \n\
         \tchain p/c {\n\
         \t}\n\
         }\n"
    );
}
