//! The netlink kernel adapter against the real kernel (run as root).
//!
//! Every test first moves its own thread into a fresh network namespace:
//! the namespace is private to that thread (and to the `nft` processes it
//! spawns) and disappears when the thread ends, so nothing leaks into the
//! host's ruleset.

mod common;

use std::net::Ipv4Addr;

use common::*;
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, KernelError, Netlink, parse_rule_tag};
use wasmwall::plan::{self, DesiredTable, Op, Position, RuleTag, Transaction};

#[test]
fn applied_rules_read_back_as_nft_prints_them() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let report = kernel
        .apply(&plan::replace_table(TABLE, &desired()), None)
        .unwrap();
    assert!(report.messages > 0 && report.bytes > 0);

    let listed = ruleset();
    println!("{listed}");
    let lines: Vec<&str> = listed.lines().map(str::trim).collect();
    let expected = [
        "table inet wasmwall {",
        "comment \"managed by wasmwall; changes here are overwritten\"",
        "set pf/friends {",
        "type ipv4_addr",
        "elements = { 192.168.0.2, 192.168.0.3 }",
        "set pf/services {",
        "type inet_service",
        "elements = { 53, 123 }",
        "chain pf/input {",
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        "ip saddr @pf/friends jump pf/allowed",
        "tcp dport 1000-2000 counter packets 0 bytes 0 accept",
        "udp dport @pf/services accept",
        "ip saddr 10.0.0.0/8 log prefix \"ten: \" drop",
        "ip6 daddr fd00::/8 udp dport 53 accept",
        "meta l4proto tcp reject with tcp reset",
        "iifname \"lan1\" goto pf/allowed",
        "udp dport 5353 continue",
        "reject",
        "chain pf/allowed {",
        "iifname != \"lan0\" return",
        "counter packets 0 bytes 0 accept",
        "chain pf/prerouting {",
        "type nat hook prerouting priority dstnat; policy accept;",
        "iifname \"lan0\" ip saddr != 192.168.0.9 tcp dport 80 counter packets 0 bytes 0 dnat ip to 127.0.0.1:4000 comment \"x\"",
        "ip6 saddr fd00::/64 udp dport 53 dnat ip6 to [fd00::1]:5353",
        "chain pf/postrouting {",
        "type nat hook postrouting priority srcnat; policy accept;",
        "oifname \"wan0\" masquerade",
        "meta nfproto ipv4 oifname \"wan1\" snat ip to 203.0.113.1",
    ];
    for line in expected {
        assert!(lines.contains(&line), "missing line {line:?} in:\n{listed}");
    }
}

#[test]
fn every_construct_lists_as_its_text_reads_back_and_is_repaired() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    round_trip(&mut kernel, &everything());
}

#[test]
fn rule_tags_are_stored_in_the_kernel() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let tx = plan::replace_table(TABLE, &desired());
    kernel.apply(&tx, None).unwrap();

    let table = rustables::Table::new(rustables::ProtocolFamily::Inet).with_name(TABLE);
    for chain_name in ["pf/input", "pf/prerouting"] {
        let wanted: Vec<RuleTag> = tx
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::AddRule { chain, tag, .. } if chain == chain_name => Some(tag.clone()),
                _ => None,
            })
            .collect();
        let chain = rustables::Chain::new(&table).with_name(chain_name);
        let stored: Vec<Option<RuleTag>> = rustables::list_rules_for_chain(&chain)
            .unwrap()
            .iter()
            .map(|r| r.get_userdata().and_then(|u| parse_rule_tag(u)))
            .collect();
        let wanted: Vec<Option<RuleTag>> = wanted.into_iter().map(Some).collect();
        assert_eq!(stored, wanted, "tags of {chain_name}");
    }
}

#[test]
fn five_thousand_rules_apply_in_one_batch() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut ops = vec![
        Op::AddTable,
        Op::AddChain {
            name: "big/input".into(),
            base: base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Accept),
        },
    ];
    for port in 1..=5000u16 {
        let r = rule(vec![dport(Transport::Tcp, port, port)], Action::Accept);
        ops.push(Op::AddRule {
            chain: "big/input".into(),
            tag: RuleTag {
                policy: "big".into(),
                hash: rule_hash(&r.to_string()),
            },
            rule: r,
            position: Position::Append,
        });
    }
    let tx = Transaction {
        table: TABLE.into(),
        ops,
    };
    let report = kernel.apply(&tx, None).unwrap();
    assert_eq!(report.messages, 5002);

    let json: serde_json::Value = serde_json::from_str(&ruleset_json()).unwrap();
    let rules = json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("rule").is_some())
        .count();
    assert_eq!(rules, 5000);
}

#[test]
fn large_sets_are_split_across_messages() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let addrs: Vec<Ipv4Addr> = (0..3000u32)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
        .collect();
    let tx = plan::replace_table(
        TABLE,
        &DesiredTable::from_policies(&policy(
            "pf",
            vec![],
            vec![NamedSet {
                name: "many".into(),
                elements: SetElements::ipv4(addrs),
            }],
        )),
    );
    kernel.apply(&tx, None).unwrap();
    let json: serde_json::Value = serde_json::from_str(&ruleset_json()).unwrap();
    let set = json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("set"))
        .expect("the set is listed");
    assert_eq!(set["elem"].as_array().unwrap().len(), 3000);
}

/// Replaces the table with `everything()` plus `bad` at the end of pf/input.
fn with_bad_rule(bad: Rule) -> Transaction {
    let mut policies = everything();
    policies[0].rules.chains[0].rules.push(bad);
    plan::replace_table(TABLE, &DesiredTable::from_policies(&policies))
}

fn assert_rejected(kernel: &mut Netlink, tx: &Transaction, op: &str) {
    let before = ruleset_json();
    match kernel.apply(tx, None) {
        Err(err @ KernelError::Rejected { .. }) => {
            let KernelError::Rejected { op: got, errno, .. } = &err else {
                unreachable!()
            };
            assert_eq!(got, op);
            assert_eq!(*errno, nix::errno::Errno::ENOENT);
            assert!(err.to_string().contains(op), "{err}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(ruleset_json(), before, "a rejected batch changes nothing");
}

#[test]
fn a_rejected_object_is_named_and_changes_nothing() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    kernel
        .apply(&plan::replace_table(TABLE, &desired()), None)
        .unwrap();

    let jump = rule(
        vec![dport(Transport::Tcp, 22, 22)],
        Action::Jump("nope".into()),
    );
    assert_rejected(
        &mut kernel,
        &with_bad_rule(jump),
        "add rule inet wasmwall pf/input tcp dport 22 jump pf/nope",
    );

    let lookup = rule(
        vec![Match::AddrInSet {
            dir: Dir::Source,
            family: Family::V4,
            set: "nope".into(),
        }],
        Action::Accept,
    );
    assert_rejected(
        &mut kernel,
        &with_bad_rule(lookup),
        "add rule inet wasmwall pf/input ip saddr @pf/nope accept",
    );

    // The socket is still usable after a rejection.
    kernel
        .apply(&plan::replace_table(TABLE, &desired()), None)
        .unwrap();
}

#[test]
fn replace_is_idempotent_and_remove_cleans_up() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let replace = plan::replace_table(TABLE, &desired());
    kernel.apply(&replace, None).unwrap();
    let first = ruleset();
    kernel.apply(&replace, None).unwrap();
    assert_eq!(ruleset(), first);

    let seen = kernel.observe(TABLE).unwrap();
    let remove = plan::remove_table(TABLE, seen.table.as_ref()).unwrap();
    kernel.apply(&remove, Some(seen.generation)).unwrap();
    assert!(kernel.observe(TABLE).unwrap().table.is_none());
    assert_eq!(ruleset(), "");
    let again = plan::remove_table(TABLE, None).unwrap();
    assert!(again.is_empty(), "nothing to remove");
}

#[test]
fn observe_sees_only_the_inet_table() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let exists = |k: &mut Netlink, t: &str| k.observe(t).unwrap().table.is_some();
    assert!(!exists(&mut kernel, TABLE));
    nft(&["add", "table", "ip", TABLE]);
    assert!(!exists(&mut kernel, TABLE), "ip, not inet");
    kernel
        .apply(&plan::replace_table(TABLE, &desired()), None)
        .unwrap();
    assert!(exists(&mut kernel, TABLE));
    assert!(!exists(&mut kernel, "other"));
}

#[test]
fn an_empty_transaction_sends_nothing() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let report = kernel
        .apply(
            &Transaction {
                table: TABLE.into(),
                ops: vec![],
            },
            None,
        )
        .unwrap();
    assert_eq!(report.messages, 0);
    assert_eq!(report.bytes, 0);
    assert_eq!(ruleset(), "");
}
