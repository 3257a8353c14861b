//! Counters, limits and conntrack helper objects, route chains and the
//! kernel feature probe against the real kernel (run as root; each test in
//! a network namespace of its own thread, gone with the thread).
//!
//! Flowtables are not here: this kernel has none (CONFIG_NF_FLOW_TABLE is
//! unset, and the kernel refuses one with ENOENT), so their messages are
//! pinned to nft's bytes in `kernel/encode/objects/tests.rs` and their
//! planning tested on the simulated kernel instead.

mod common;

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, Monitor, Netlink, active_features, feature_names};
use wasmwall::plan::{self, DesiredTable};
use wasmwall::world::CT_HELPERS;

fn helper(helper: &str, protocol: Transport) -> Object {
    Object::CtHelper(CtHelper {
        helper: helper.into(),
        protocol,
    })
}

fn named(objects: Vec<(&str, Object)>) -> Vec<NamedObject> {
    objects
        .into_iter()
        .map(|(name, object)| NamedObject {
            name: name.into(),
            object,
        })
        .collect()
}

/// Policy "ob": two counters, two helpers, a route chain on output and a
/// filter chain.
fn objects_policy(ftp_protocol: Transport) -> Vec<PolicyRules> {
    let mut p = policy(
        "ob",
        vec![
            chain(
                "out",
                base(Hook::Output, ChainType::Route, -150, ChainPolicy::Accept),
                vec![counted(rule(vec![dport(Transport::Tcp, 22, 22)], Action::Accept))],
            ),
            chain(
                "in",
                base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Accept),
                vec![rule(vec![], Action::Accept)],
            ),
        ],
        vec![],
    );
    p[0].rules.objects = named(vec![
        ("web", Object::Counter),
        ("ftp-ctl", helper("ftp", ftp_protocol)),
        ("dns", Object::Counter),
        ("sip", helper("sip", Transport::Udp)),
    ]);
    p
}

#[test]
fn objects_and_a_route_chain_list_as_their_text_and_read_back() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let policies = objects_policy(Transport::Tcp);
    round_trip(&mut kernel, &policies);
    // The route chain is the runtime's kind, not a foreign one to replace.
    let text = plan::table_text(TABLE, &policies);
    assert!(
        text.contains("\t\ttype route hook output priority mangle; policy accept;\n"),
        "{text}"
    );
    assert!(text.contains("\tct helper ob/ftp-ctl {\n\t\ttype \"ftp\" protocol tcp\n\t\tl3proto inet\n\t}\n"));
}

/// The listing's blocks (objects, chains), sorted: a re-added object is
/// listed last by the kernel, wherever the text has it.
fn blocks(listing: &str) -> Vec<String> {
    let inner = listing
        .strip_prefix("table inet wasmwall {\n")
        .and_then(|t| t.strip_suffix("}\n"))
        .unwrap_or_else(|| panic!("not one table:\n{listing}"));
    let mut out: Vec<String> = inner
        .split("\n\n")
        .map(|b| b.trim_end().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn objects_deleted_or_redefined_by_hand_are_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let policies = objects_policy(Transport::Tcp);
    let desired = DesiredTable::from_policies(&policies);
    let text = plan::table_text(TABLE, &policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap();
    let repair = |kernel: &mut Netlink, what: &str| {
        let seen = kernel.observe(TABLE).unwrap();
        let tx = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
        assert!(!tx.is_empty(), "{what}, and nothing to repair");
        kernel
            .apply(&tx, Some(seen.generation))
            .unwrap_or_else(|e| panic!("{what}: {e}\n{tx}"));
        assert_eq!(blocks(&listed_as_text()), blocks(&text), "{what}");
        let seen = kernel.observe(TABLE).unwrap();
        let again = plan::plan(TABLE, &desired, seen.table.as_ref()).unwrap();
        assert!(again.is_empty(), "{what}: then {again}");
        tx
    };
    nft(&["delete", "counter", "inet", TABLE, "ob/web"]);
    let tx = repair(&mut kernel, "a counter deleted");
    assert_eq!(tx.to_string(), "add counter inet wasmwall ob/web\n");

    nft(&["delete", "ct", "helper", "inet", TABLE, "ob/ftp-ctl"]);
    nft(&[
        "add",
        "ct",
        "helper",
        "inet",
        TABLE,
        "ob/ftp-ctl",
        "{ type \"ftp\" protocol udp; l3proto inet; }",
    ]);
    let tx = repair(&mut kernel, "a helper redefined");
    assert_eq!(
        tx.to_string(),
        "delete ct helper inet wasmwall ob/ftp-ctl\n\
         add ct helper inet wasmwall ob/ftp-ctl { type \"ftp\" protocol tcp; l3proto inet; }\n"
    );

    // Objects made by hand in the runtime's table go.
    nft(&["add", "quota", "inet", TABLE, "by-hand", "{ 10 mbytes; }"]);
    nft(&["add", "counter", "inet", TABLE, "ob/extra"]);
    let tx = repair(&mut kernel, "objects added by hand");
    assert_eq!(
        tx.to_string(),
        "delete quota inet wasmwall by-hand\ndelete counter inet wasmwall ob/extra\n"
    );
}

/// A changed definition is one batch: deleted and added again.
#[test]
fn a_changed_helper_is_made_again_in_one_batch_and_the_table_goes_whole() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let before = DesiredTable::from_policies(&objects_policy(Transport::Tcp));
    kernel
        .apply(&plan::replace_table(TABLE, &before), None)
        .unwrap();
    let after_policies = objects_policy(Transport::Udp);
    let after = DesiredTable::from_policies(&after_policies);
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(TABLE, &after, seen.table.as_ref()).unwrap();
    assert_eq!(tx.summary(), "1 object delete, 1 object add");
    kernel.apply(&tx, Some(seen.generation)).unwrap();
    let listed = listed_as_text();
    assert!(listed.contains("\t\ttype \"ftp\" protocol udp\n"), "{listed}");
    assert_eq!(
        blocks(&listed),
        blocks(&plan::table_text(TABLE, &after_policies))
    );
    let seen = kernel.observe(TABLE).unwrap();
    assert!(plan::plan(TABLE, &after, seen.table.as_ref()).unwrap().is_empty());

    let remove = plan::remove_table(TABLE, seen.table.as_ref()).unwrap();
    kernel.apply(&remove, Some(seen.generation)).unwrap();
    assert_eq!(ruleset(), "", "the table's objects went with it");
}

/// Whether nft's own check (`nft -c`) takes `text`: the kernel checks the
/// batch and aborts it.
fn nft_checks(text: &str) -> bool {
    let path = std::env::temp_dir().join(format!(
        "wasmwall-objects-{}-{:?}.nft",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, text).unwrap();
    let ok = std::process::Command::new("nft")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("run nft")
        .status
        .success();
    let _ = std::fs::remove_file(&path);
    ok
}

/// The probe finds what `nft -c` finds, one helper at a time, and leaves
/// no trace: no table, no notification, the same generation.
#[test]
fn the_feature_probe_finds_what_nft_finds_and_changes_nothing() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut monitor = Monitor::new().unwrap();
    let generation = kernel.generation().unwrap();
    let features = kernel.features(&["lo".to_string()]).unwrap();
    assert_eq!(kernel.generation().unwrap(), generation);
    assert_eq!(monitor.drain().unwrap(), 0, "no notification");
    assert_eq!(ruleset(), "");

    let flowtable = "table inet p {\n flowtable f {\n hook ingress priority 0\n }\n}\n";
    assert_eq!(features.flowtables, nft_checks(flowtable));
    let mut found = Vec::new();
    for (name, protocols) in CT_HELPERS {
        for protocol in protocols {
            let text = format!(
                "table inet p {{\n ct helper h {{\n type \"{name}\" protocol {}\n l3proto inet\n }}\n}}\n",
                protocol.as_str()
            );
            if nft_checks(&text) && !found.contains(&name.to_string()) {
                found.push(name.to_string());
            }
        }
    }
    assert_eq!(features.ct_helpers, found);
    assert!(
        features.ct_helpers.contains(&"ftp".to_string()),
        "this kernel has the ftp helper built in: {features:?}"
    );
    // The loopback device offloads nothing to hardware.
    assert_eq!(features.hardware_offload, Vec::<String>::new());
}

/// The ethtool reading decodes the kernel's feature bits: the loopback
/// device has `loopback` on, a veth does not; neither offloads flows.
#[test]
fn interface_features_are_read_by_name() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let names = feature_names(&fd).unwrap();
    let bit = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no feature {name} in {names:?}"))
    };
    let (loopback, hw_tc) = (bit("loopback"), bit("hw-tc-offload"));
    let lo = active_features(&fd, "lo", names.len()).unwrap();
    let v0 = active_features(&fd, "v0", names.len()).unwrap();
    assert!(lo[loopback] && !v0[loopback]);
    assert!(!lo[hw_tc] && !v0[hw_tc]);
    assert!(active_features(&fd, "absent0", names.len()).is_err());
    let all = ["lo".to_string(), "v0".to_string(), "absent0".to_string()];
    assert_eq!(kernel.hardware_offload(&all).unwrap(), Vec::<String>::new());
}
