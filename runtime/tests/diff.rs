//! The diff engine against the real kernel: observe, plan, apply only what
//! changed, repair hand edits, never touch other tables. Each test runs in
//! a private network namespace of its own thread (see `common`).

mod common;

use std::net::Ipv4Addr;

use common::*;
use wasmwall::engine::{EngineError, Reconciler};
use wasmwall::ir::*;
use wasmwall::kernel::{Kernel, KernelError, Netlink};
use wasmwall::plan::{self, DesiredTable, Op};

fn converge(kernel: &mut Netlink, reconciler: &mut Reconciler, desired: &DesiredTable) -> usize {
    reconciler
        .reconcile(kernel, desired)
        .expect("reconcile")
        .report
        .messages
}

/// The table read straight from the kernel, without handles.
fn observed(kernel: &mut Netlink) -> plan::ObservedTable {
    kernel
        .observe(TABLE)
        .unwrap()
        .table
        .expect("the table exists")
        .normalized()
}

/// `n` forward rules accepting one TCP port each, in one chain.
fn forward_rules(n: u16, changed: Option<(u16, u16)>) -> DesiredTable {
    let rules = (1..=n)
        .map(|p| {
            let port = match changed {
                Some((at, to)) if at == p => to,
                _ => p,
            };
            rule(vec![dport(Transport::Tcp, port, port)], Action::Accept)
        })
        .collect();
    DesiredTable::from_policies(&policy(
        "big",
        vec![chain(
            "forward",
            base(Hook::Forward, ChainType::Filter, 0, ChainPolicy::Drop),
            rules,
        )],
        vec![],
    ))
}

/// A policy with a set of `n` lease addresses (10.0.x.y) and one rule using it.
fn leases(n: u32) -> DesiredTable {
    let addrs: Vec<Ipv4Addr> = (0..n).map(|i| Ipv4Addr::from(0x0a00_0000 + i)).collect();
    DesiredTable::from_policies(&policy(
        "home",
        vec![chain(
            "forward",
            base(Hook::Forward, ChainType::Filter, 0, ChainPolicy::Drop),
            vec![rule(
                vec![Match::AddrInSet {
                    dir: Dir::Source,
                    family: Family::V4,
                    set: "leases".into(),
                }],
                Action::Accept,
            )],
        )],
        vec![NamedSet {
            name: "leases".into(),
            elements: SetElements::ipv4(addrs),
        }],
    ))
}

#[test]
fn observe_reads_back_exactly_what_was_applied() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let want = desired();
    kernel
        .apply(&plan::replace_table(TABLE, &want), None)
        .unwrap();
    assert_eq!(observed(&mut kernel), want.expected().normalized());
    assert!(kernel.observe(TABLE).unwrap().table.unwrap().owned);
}

#[test]
fn after_apply_the_plan_is_empty_and_a_second_apply_sends_nothing() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let want = desired();
    let first = converge(&mut kernel, &mut Reconciler::new(TABLE), &want);
    assert!(first > 0);
    // A new process: reads the table, finds nothing to do.
    let mut second = Reconciler::new(TABLE);
    let again = second.reconcile(&mut kernel, &want).unwrap();
    assert!(again.tx.is_empty(), "{}", again.tx);
    assert_eq!(again.report.messages, 0);
    assert!(again.read_table);
    // The same process again: knows the table, one generation query.
    let third = second.reconcile(&mut kernel, &want).unwrap();
    assert_eq!(third.report.messages, 0);
    assert!(!third.read_table, "nothing changed, so nothing is read");
}

#[test]
fn the_predicted_table_is_the_kernel_table() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(50, None));
    converge(
        &mut kernel,
        &mut reconciler,
        &forward_rules(50, Some((20, 2000))),
    );
    let (predicted, read) = reconciler.observe(&mut kernel).unwrap();
    assert!(!read, "the prediction is trusted: the generation matches");
    let predicted = predicted.clone();
    assert_eq!(
        kernel.observe(TABLE).unwrap(),
        predicted,
        "handles included"
    );
}

#[test]
fn one_changed_rule_in_ten_thousand_sends_two_messages() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    assert_eq!(
        converge(&mut kernel, &mut reconciler, &forward_rules(10_000, None)),
        10_002
    );
    let changed = forward_rules(10_000, Some((5_000, 65_000)));
    let done = reconciler.reconcile(&mut kernel, &changed).unwrap();
    assert_eq!(done.report.messages, 2, "{}", done.tx);
    assert!(matches!(done.tx.ops[0], Op::DeleteRule { .. }));
    assert!(matches!(done.tx.ops[1], Op::AddRule { .. }));
    // In its place: between ports 4999 and 5001.
    let listed = nft(&["list", "chain", "inet", TABLE, "big/forward"]);
    let at = |p: &str| listed.find(&format!("tcp dport {p} accept")).unwrap();
    assert!(at("4999") < at("65000") && at("65000") < at("5001"));
    assert!(!listed.contains("tcp dport 5000 accept"));
    assert_eq!(observed(&mut kernel), changed.expected().normalized());
}

#[test]
fn one_lease_added_sends_one_element_add() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &leases(1000));
    let done = reconciler.reconcile(&mut kernel, &leases(1001)).unwrap();
    assert_eq!(done.report.messages, 1);
    assert_eq!(
        done.tx.to_string(),
        "add element inet wasmwall home/leases { 10.0.3.232 }\n"
    );
    let gone = reconciler.reconcile(&mut kernel, &leases(1000)).unwrap();
    assert_eq!(
        gone.tx.to_string(),
        "delete element inet wasmwall home/leases { 10.0.3.232 }\n"
    );
    assert_eq!(observed(&mut kernel), leases(1000).expected().normalized());
}

#[test]
fn a_rejected_transaction_leaves_the_kernel_exactly_as_before() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(100, None));
    let seen = kernel.observe(TABLE).unwrap();
    // A real diff (one rule replaced, a set added), then an object the
    // kernel refuses: a delete of a rule that does not exist.
    let mut tx = plan::plan(
        TABLE,
        &forward_rules(100, Some((50, 5050))),
        seen.table.as_ref(),
    )
    .unwrap();
    tx.ops.push(Op::AddSet {
        name: "big/extra".into(),
        elements: SetElements::ports(vec![1, 2]),
    });
    tx.ops.push(Op::DeleteRule {
        chain: "big/forward".into(),
        handle: 999_999,
        tag: None,
    });
    let before = ruleset_json();
    let err = kernel.apply(&tx, Some(seen.generation)).unwrap_err();
    let KernelError::Rejected { op, errno, .. } = &err else {
        panic!("expected a rejection, got {err:?}")
    };
    assert_eq!(op, "delete rule inet wasmwall big/forward handle 999999");
    assert_eq!(*errno, nix::errno::Errno::ENOENT);
    assert_eq!(ruleset_json(), before, "nothing of the batch applied");
}

#[test]
fn a_batch_planned_on_a_stale_read_is_refused_and_planned_again() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(10, None));
    let seen = kernel.observe(TABLE).unwrap();
    let tx = plan::plan(
        TABLE,
        &forward_rules(10, Some((3, 33))),
        seen.table.as_ref(),
    )
    .unwrap();
    // Someone changes the ruleset between our read and our write.
    nft(&["add", "table", "inet", "other"]);
    let before = ruleset_json();
    assert!(matches!(
        kernel.apply(&tx, Some(seen.generation)),
        Err(KernelError::Changed)
    ));
    assert_eq!(ruleset_json(), before);
    // The reconciler notices, reads again and succeeds.
    let done = reconciler
        .reconcile(&mut kernel, &forward_rules(10, Some((3, 33))))
        .unwrap();
    assert_eq!(done.report.messages, 2);
    assert!(done.read_table);
}

#[test]
fn tables_that_are_not_ours_are_never_touched() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let status = std::process::Command::new("iptables-nft")
        .args(["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
        .status()
        .expect("run iptables-nft (package iptables)");
    assert!(status.success());
    nft(&["add", "table", "inet", "other"]);
    nft(&["add chain inet other input { type filter hook input priority 10; policy accept; }"]);
    nft(&[
        "add", "rule", "inet", "other", "input", "udp", "dport", "53", "accept",
    ]);
    // A table with our name but without our marker: someone else's.
    nft(&["add", "table", "ip", TABLE]);
    let listing = || {
        [
            nft(&["-j", "list", "table", "ip", "filter"]),
            nft(&["-j", "list", "table", "inet", "other"]),
            nft(&["-j", "list", "table", "ip", TABLE]),
        ]
    };
    let before = listing();

    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &desired());
    assert_eq!(listing(), before, "after apply");
    converge(&mut kernel, &mut reconciler, &forward_rules(20, None));
    assert_eq!(listing(), before, "after a change");
    let seen = kernel.observe(TABLE).unwrap();
    let remove = plan::remove_table(TABLE, seen.table.as_ref()).unwrap();
    kernel.apply(&remove, Some(seen.generation)).unwrap();
    assert_eq!(listing(), before, "after clean-up");
    assert!(kernel.observe(TABLE).unwrap().table.is_none());

    // An inet table of our name made by someone else is refused.
    nft(&["add", "table", "inet", TABLE]);
    let theirs = nft(&["-j", "list", "table", "inet", TABLE]);
    let err = Reconciler::new(TABLE)
        .reconcile(&mut kernel, &desired())
        .unwrap_err();
    assert!(matches!(err, EngineError::NotOwned(_)), "{err}");
    assert_eq!(nft(&["-j", "list", "table", "inet", TABLE]), theirs);
}

#[test]
fn hand_edits_are_repaired_by_the_next_reconcile() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    let want = desired();
    converge(&mut kernel, &mut reconciler, &want);
    let good = ruleset();
    let handle_of = |needle: &str| -> String {
        let listed = nft(&["-a", "list", "chain", "inet", TABLE, "pf/input"]);
        let line = listed.lines().find(|l| l.contains(needle)).unwrap();
        line.rsplit_once("# handle ").unwrap().1.trim().to_string()
    };
    type Edit<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let edits: Vec<Edit> = vec![
        (
            "a rule deleted",
            Box::new(|| {
                let h = handle_of("udp dport 5353 continue");
                nft(&["delete", "rule", "inet", TABLE, "pf/input", "handle", &h]);
            }),
        ),
        (
            "a rule added",
            Box::new(|| {
                nft(&[
                    "insert", "rule", "inet", TABLE, "pf/input", "tcp", "dport", "23", "accept",
                ]);
            }),
        ),
        (
            "a rule replaced",
            Box::new(|| {
                let h = handle_of("udp dport 5353 continue");
                nft(&[
                    "replace", "rule", "inet", TABLE, "pf/input", "handle", &h, "udp", "dport",
                    "5353", "accept",
                ]);
            }),
        ),
        (
            "an element deleted",
            Box::new(|| {
                nft(&[
                    "delete",
                    "element",
                    "inet",
                    TABLE,
                    "pf/friends",
                    "{ 192.168.0.3 }",
                ]);
            }),
        ),
        (
            "a policy changed",
            Box::new(|| {
                nft(&["chain inet wasmwall pf/input { policy accept; }"]);
            }),
        ),
        (
            "a chain flushed",
            Box::new(|| {
                nft(&["flush", "chain", "inet", TABLE, "pf/allowed"]);
            }),
        ),
        (
            "the table flushed",
            Box::new(|| {
                nft(&["flush", "table", "inet", TABLE]);
            }),
        ),
        (
            "the table deleted",
            Box::new(|| {
                nft(&["delete", "table", "inet", TABLE]);
            }),
        ),
    ];
    for (what, edit) in edits {
        edit();
        assert_ne!(ruleset(), good, "{what}: the edit changed something");
        let done = reconciler.reconcile(&mut kernel, &want).unwrap();
        assert!(done.read_table, "{what}: the change was noticed");
        assert_eq!(ruleset(), good, "{what}: repaired; ran:\n{}", done.tx);
        assert_eq!(observed(&mut kernel), want.expected().normalized());
        let again = reconciler.reconcile(&mut kernel, &want).unwrap();
        assert!(again.tx.is_empty(), "{what}: converged:\n{}", again.tx);
    }
}

/// Echoes cost the kernel about 8 KiB each until the commit ends, so they
/// are asked for up to 4,096 added rules: such a batch is known without
/// reading the table back; a larger one is read back.
#[test]
fn up_to_4096_added_rules_are_echoed_and_a_larger_batch_is_read_back() {
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(4_096, None));
    let (known, read) = reconciler.observe(&mut kernel).unwrap();
    assert!(!read, "4,096 handles echoed: nothing to read");
    let known = known.clone();
    assert_eq!(kernel.observe(TABLE).unwrap(), known);

    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(4_097, None));
    let (known, read) = reconciler.observe(&mut kernel).unwrap();
    assert!(read, "4,097 added rules are not echoed: the table is read");
    let known = known.clone();
    assert_eq!(kernel.observe(TABLE).unwrap(), known);
}

#[test]
fn a_new_process_trusts_a_current_snapshot_and_only_that() {
    use wasmwall::snapshot::SnapshotFile;
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("netns-x.wasmwall.json");
    let snapshot = |writable| SnapshotFile::beside(&state, writable);
    let want = forward_rules(500, None);
    converge(
        &mut kernel,
        &mut Reconciler::new(TABLE).with_snapshot(snapshot(true)),
        &want,
    );
    // The next process: nothing changed, so nothing is read and nothing sent.
    let next = Reconciler::new(TABLE)
        .with_snapshot(snapshot(true))
        .reconcile(&mut kernel, &want)
        .unwrap();
    assert!(!next.read_table, "the snapshot is current");
    assert_eq!(next.report.messages, 0);
    // Someone changes the ruleset: the snapshot is stale and not used.
    nft(&["flush", "chain", "inet", TABLE, "big/forward"]);
    let repaired = Reconciler::new(TABLE)
        .with_snapshot(snapshot(false))
        .reconcile(&mut kernel, &want)
        .unwrap();
    assert!(repaired.read_table, "a stale snapshot is not trusted");
    assert_eq!(repaired.report.messages, 500);
    assert_eq!(observed(&mut kernel), want.expected().normalized());
}

/// A batch of another socket in this namespace: a table of its own.
fn someone_else_commits() {
    let mut other = Netlink::new().unwrap();
    other
        .apply(
            &plan::replace_table("other", &DesiredTable::default()),
            None,
        )
        .unwrap();
}

/// While a process listens to nftables notifications, the kernel builds one
/// (about 8 KiB) for every object a batch changes and holds them all until
/// the commit ends. The daemon's monitor is unsubscribed while its own batch
/// is in the kernel: it hears nothing of it, and still hears others.
#[test]
fn the_monitor_hears_nothing_of_our_own_batches_and_all_of_others() {
    use wasmwall::kernel::Monitor;
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    assert_eq!(kernel.nftables_listeners(), Some(0), "nobody listens yet");
    let mut monitor = Monitor::new().unwrap();
    assert_eq!(
        kernel.nftables_listeners(),
        Some(1),
        "the monitor, not yet ours"
    );
    let mut reconciler = Reconciler::new(TABLE);
    converge(&mut kernel, &mut reconciler, &forward_rules(50, None));
    let heard = monitor.drain().unwrap();
    assert!(heard >= 50, "unmuted, the monitor hears each rule: {heard}");

    kernel.mute_while_applying(&monitor).unwrap();
    assert_eq!(
        kernel.nftables_listeners(),
        Some(0),
        "our monitor is not someone else"
    );
    converge(
        &mut kernel,
        &mut reconciler,
        &forward_rules(50, Some((7, 7007))),
    );
    converge(&mut kernel, &mut reconciler, &forward_rules(100, None));
    assert_eq!(
        monitor.drain().unwrap(),
        0,
        "our own batches make no notification"
    );
    assert!(!kernel.take_missed(), "nobody else changed anything");

    someone_else_commits();
    assert!(
        monitor.drain().unwrap() > 0,
        "a change by someone else is heard"
    );
}

/// While the monitor is unsubscribed for a batch of ours, a change by
/// someone else could go unheard; the generation after the batch tells. A
/// batch planned on generation `g` that commits leaves `g + 1`: nothing
/// missed. One refused because someone else committed first, or one sent
/// without a generation to check, leaves the daemon to look again.
#[test]
fn a_change_the_unsubscribed_monitor_could_not_hear_is_noticed_by_its_generation() {
    use wasmwall::kernel::Monitor;
    let Some(mut kernel) = fresh_netns() else {
        return;
    };
    let monitor = Monitor::new().unwrap();
    kernel.mute_while_applying(&monitor).unwrap();
    let first = plan::replace_table(TABLE, &forward_rules(3, None));

    let g = kernel.generation().unwrap();
    kernel.apply(&first, Some(g)).unwrap();
    assert!(
        !kernel.take_missed(),
        "our own commit, at the generation we planned on"
    );

    let stale = kernel.generation().unwrap();
    someone_else_commits();
    let refused = kernel.apply(
        &plan::replace_table(TABLE, &forward_rules(4, None)),
        Some(stale),
    );
    assert!(matches!(refused, Err(KernelError::Changed)), "{refused:?}");
    assert!(kernel.take_missed(), "someone else committed meanwhile");
    assert!(!kernel.take_missed(), "asking clears it");

    kernel
        .apply(&plan::replace_table(TABLE, &forward_rules(5, None)), None)
        .unwrap();
    assert!(
        kernel.take_missed(),
        "without a generation, nothing proves it was only ours"
    );
}
