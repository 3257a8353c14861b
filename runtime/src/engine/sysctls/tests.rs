//! Sysctls on the fake kernel: who holds a key when two policies want
//! different values (also while the earlier one fails), what an `all` write
//! spreads to and its restoring, values the kernel writes in another form,
//! and the merge of many keys in linear time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::*;
use crate::config::{Config, PolicyConfig};
use crate::ir::{self, PolicyRules};
use crate::kernel::Fake;

/// Loads nothing: the tests give evaluations, the config only the order.
struct Unloadable;

impl Loader for Unloadable {
    fn load(&self, _config: &PolicyConfig, _insecure: bool) -> Result<Candidate, LoadError> {
        Err(LoadError::NoEngine)
    }
}

/// A firewall on the fake kernel whose config lists `names` in this order.
fn firewall(dir: &std::path::Path, names: &[&str], kernel: Fake) -> Firewall<Fake> {
    let mut toml = "table = \"ww\"\n".to_string();
    for n in names {
        toml.push_str(&format!(
            "[[policy]]\nname = \"{n}\"\npath = \"{n}.wasm\"\n"
        ));
    }
    let config = Config::parse(&toml, "test.toml", dir).unwrap();
    let policies = Policies::load(&config, Arc::new(Unloadable));
    Firewall::new(
        kernel,
        Target::new("ww", None, dir),
        config.sysctls.clone(),
        policies,
    )
}

fn wants(policy: &str, sysctls: &[(&str, &str)]) -> PolicyRules {
    PolicyRules {
        policy: policy.into(),
        rules: ir::Ruleset {
            chains: vec![],
            sets: vec![],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: sysctls
                .iter()
                .map(|(key, value)| ir::Sysctl {
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect(),
        },
    }
}

fn failing(policy: &str) -> PolicyFailure {
    PolicyFailure::new(policy, PolicyError::Load(LoadError::NoEngine))
}

const LOCALNET: &str = "net.ipv4.conf.lan0.route_localnet";
const RP_FILTER: &str = "net.ipv4.conf.lan0.rp_filter";

fn lan_kernel() -> Fake {
    let mut kernel = Fake::new();
    kernel.set_sysctl(LOCALNET, "0");
    kernel.set_sysctl(RP_FILTER, "0");
    kernel
}

fn conflict(evaluation: &Evaluation, policy: &str) -> SysctlConflict {
    match evaluation.failure(policy).map(|f| &*f.error) {
        Some(PolicyError::SysctlConflict(c)) => (**c).clone(),
        other => panic!("{policy} did not fail for a conflict: {other:?}"),
    }
}

#[test]
fn the_earlier_policy_keeps_the_key_and_the_later_one_fails_as_a_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["good", "hostile"], lan_kernel());
    let mut evaluation = Evaluation::new(
        vec![
            wants("good", &[(LOCALNET, "1")]),
            wants("hostile", &[(RP_FILTER, "1"), (LOCALNET, "0")]),
        ],
        vec![],
    );
    fw.apply_isolating(&mut evaluation).unwrap();
    let c = conflict(&evaluation, "hostile");
    assert_eq!(
        evaluation.failure("hostile").unwrap().to_string(),
        "policy hostile: sysctl net.ipv4.conf.lan0.route_localnet: wants \"0\", but policy good (earlier in the config) wants \"1\"; the earlier policy keeps the key and none of this policy's sysctls is written"
    );
    assert!(!c.holder_kept);
    assert_eq!(fw.kernel().sysctl(LOCALNET), Some("1"));
    // None of the failing policy's sysctls is written, not even one without
    // a conflict.
    assert_eq!(fw.kernel().sysctl(RP_FILTER), Some("0"));
    assert_eq!(evaluation.rules.len(), 1);

    // The same with the order of the config the other way round.
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["hostile", "good"], lan_kernel());
    let mut evaluation = Evaluation::new(
        vec![
            wants("hostile", &[(LOCALNET, "0")]),
            wants("good", &[(LOCALNET, "1")]),
        ],
        vec![],
    );
    fw.apply_isolating(&mut evaluation).unwrap();
    assert_eq!(conflict(&evaluation, "good").holder, "hostile");
    assert_eq!(fw.kernel().sysctl(LOCALNET), Some("0"));
}

#[test]
fn a_failing_policy_keeps_the_keys_of_its_last_known_good() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["good", "hostile"], lan_kernel());
    let mut first = Evaluation::new(
        vec![wants("good", &[(LOCALNET, "1")]), wants("hostile", &[])],
        vec![],
    );
    fw.apply_isolating(&mut first).unwrap();
    assert!(first.failed.is_empty());

    // `good` fails now; its kept rules rely on route_localnet.
    let mut second = Evaluation::new(
        vec![wants("hostile", &[(LOCALNET, "0")])],
        vec![failing("good")],
    );
    fw.apply_isolating(&mut second).unwrap();
    let c = conflict(&second, "hostile");
    assert!(c.holder_kept && c.holder == "good" && c.held == "1", "{c}");
    assert!(
        c.to_string()
            .contains("(earlier in the config, failing: its last known good)")
    );
    assert_eq!(fw.kernel().sysctl(LOCALNET), Some("1"));

    // A later policy's last known good never overrides an earlier policy
    // that applies.
    let mut third = Evaluation::new(
        vec![wants("good", &[(LOCALNET, "1")])],
        vec![failing("hostile")],
    );
    fw.apply_isolating(&mut third).unwrap();
    assert!(third.failure("good").is_none());
    assert_eq!(fw.kernel().sysctl(LOCALNET), Some("1"));
}

#[test]
fn a_later_policys_last_known_good_gives_way_to_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["good", "hostile"], lan_kernel());
    // `good` has never applied: `hostile` holds the key alone.
    let mut first = Evaluation::new(
        vec![wants("hostile", &[(LOCALNET, "0"), (RP_FILTER, "2")])],
        vec![failing("good")],
    );
    fw.apply_isolating(&mut first).unwrap();
    assert_eq!(fw.kernel().sysctl(RP_FILTER), Some("2"));

    // `good` works again: it is earlier, so `hostile` fails, kept, and its
    // last known good does not hold the key against `good`.
    let mut second = Evaluation::new(
        vec![
            wants("good", &[(LOCALNET, "1")]),
            wants("hostile", &[(LOCALNET, "0"), (RP_FILTER, "2")]),
        ],
        vec![],
    );
    fw.apply_isolating(&mut second).unwrap();
    assert_eq!(conflict(&second, "hostile").holder, "good");
    assert_eq!(fw.kernel().sysctl(LOCALNET), Some("1"));
    // Nothing is restored while a policy fails.
    assert_eq!(fw.kernel().sysctl(RP_FILTER), Some("2"));
}

#[test]
fn a_new_version_that_conflicts_with_an_earlier_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["good", "hostile"], lan_kernel());
    let mut current = Evaluation::new(
        vec![wants("good", &[(LOCALNET, "1")]), wants("hostile", &[])],
        vec![],
    );
    fw.apply_isolating(&mut current).unwrap();
    let new = wants("hostile", &[(LOCALNET, "0")]).rules;
    let refused = fw.sysctl_conflict(&current, "hostile", new).unwrap();
    assert_eq!(refused.policy, "hostile");
    assert!(
        refused
            .cause()
            .contains("policy good (earlier in the config)")
    );
    // A new version of the earlier policy wins the key: it is not refused
    // (the later one fails at the next evaluation).
    let mut current = Evaluation::new(
        vec![wants("good", &[]), wants("hostile", &[(LOCALNET, "0")])],
        vec![],
    );
    fw.apply_isolating(&mut current).unwrap();
    let new = wants("good", &[(LOCALNET, "1")]).rules;
    assert!(fw.sysctl_conflict(&current, "good", new).is_none());
}

/// A namespace's IPv4 and IPv6 forwarding settings: `lo`, `lan0` and
/// `wan0` with different values.
fn forwarding_kernel() -> Fake {
    let mut k = Fake::new();
    for (key, value) in [
        ("net.ipv4.ip_forward", "0"),
        ("net.ipv4.conf.all.forwarding", "0"),
        ("net.ipv4.conf.default.forwarding", "0"),
        ("net.ipv4.conf.all.accept_redirects", "1"),
        ("net.ipv4.conf.lo.forwarding", "0"),
        ("net.ipv4.conf.lan0.forwarding", "1"),
        ("net.ipv4.conf.wan0.forwarding", "0"),
        ("net.ipv6.conf.all.forwarding", "0"),
        ("net.ipv6.conf.default.forwarding", "0"),
        ("net.ipv6.conf.lan0.forwarding", "1"),
        ("net.ipv6.conf.wan0.forwarding", "0"),
    ] {
        k.set_sysctl(key, value);
    }
    k
}

#[test]
fn clean_up_restores_each_interface_an_all_write_spread_to() {
    let dir = tempfile::tempdir().unwrap();
    let before = forwarding_kernel();
    let mut fw = firewall(dir.path(), &["router"], forwarding_kernel());
    let mut evaluation = Evaluation::new(
        vec![wants(
            "router",
            &[
                ("net.ipv4.conf.all.forwarding", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
            ],
        )],
        vec![],
    );
    fw.apply_isolating(&mut evaluation).unwrap();
    // The kernel spread them.
    for key in [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.wan0.forwarding",
        "net.ipv4.conf.default.forwarding",
        "net.ipv6.conf.wan0.forwarding",
    ] {
        assert_eq!(fw.kernel().sysctl(key), Some("1"), "{key}");
    }
    assert_eq!(
        fw.kernel().sysctl("net.ipv4.conf.all.accept_redirects"),
        Some("0")
    );
    let state = crate::state::load(&fw.target().state_path)
        .unwrap()
        .unwrap();
    let spread: Vec<&str> = state.sysctls[0]
        .spread
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(
        spread,
        [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.default.forwarding",
            "net.ipv4.conf.all.accept_redirects",
            "net.ipv4.conf.lan0.forwarding",
            "net.ipv4.conf.lo.forwarding",
            "net.ipv4.conf.wan0.forwarding",
        ]
    );

    // An interface gone by the time of the clean-up is skipped.
    fw.kernel_mut()
        .remove_sysctl("net.ipv6.conf.wan0.forwarding");
    let done = fw.cleanup().unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    for key in [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.all.forwarding",
        "net.ipv4.conf.default.forwarding",
        "net.ipv4.conf.all.accept_redirects",
        "net.ipv4.conf.lo.forwarding",
        "net.ipv4.conf.lan0.forwarding",
        "net.ipv4.conf.wan0.forwarding",
        "net.ipv6.conf.all.forwarding",
        "net.ipv6.conf.default.forwarding",
        "net.ipv6.conf.lan0.forwarding",
    ] {
        assert_eq!(fw.kernel().sysctl(key), before.sysctl(key), "{key}");
    }
    assert!(
        crate::state::load(&fw.target().state_path)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_value_the_kernel_writes_in_another_form_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut kernel = lan_kernel();
    kernel.set_sysctl("net.ipv4.tcp_rmem", "4096\t87380\t6291456");
    let mut fw = firewall(dir.path(), &["p"], kernel);
    fw.allow = crate::sysctl::AllowList::new(&["net.ipv4.tcp_rmem".into()]).unwrap();
    // What validation makes of " 1", "-0" and "4096\t87380  6291456".
    let mut evaluation = Evaluation::new(
        vec![wants(
            "p",
            &[
                (LOCALNET, "1"),
                (RP_FILTER, "0"),
                ("net.ipv4.tcp_rmem", "4096 87380 6291456"),
            ],
        )],
        vec![],
    );
    let first = fw.apply_isolating(&mut evaluation).unwrap();
    assert_eq!(first.sysctls_set, [format!("{LOCALNET}=1")]);
    let writes = fw.kernel().sysctl_writes;
    assert!(fw.pending(&mut evaluation).unwrap().sysctls.is_empty());
    assert!(fw.sysctls_drifted(&evaluation).is_empty());
    let again = fw.apply_isolating(&mut evaluation).unwrap();
    assert!(again.sysctls_set.is_empty(), "{:?}", again.sysctls_set);
    assert_eq!(fw.kernel().sysctl_writes, writes, "nothing written again");
}

#[test]
fn many_keys_of_many_policies_merge_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let n = crate::config::MAX_SYSCTLS_CEILING;
    let keys: Vec<(String, &str)> = (0..n)
        .map(|i| (format!("net.ipv4.conf.if{i}.forwarding"), "1"))
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let fw = firewall(dir.path(), &["a", "b", "c"], Fake::new());
    let mut evaluation = Evaluation::new(
        vec![wants("a", &keys), wants("b", &keys), wants("c", &keys)],
        vec![],
    );
    let started = Instant::now();
    fw.settle(&mut evaluation);
    let wanted = super::wanted(&fw.allow, &evaluation.rules).unwrap();
    assert!(evaluation.failed.is_empty());
    assert_eq!(wanted.len(), n);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn one_setting_under_its_two_names_is_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["router", "hostile"], forwarding_kernel());
    let mut evaluation = Evaluation::new(
        vec![
            wants("router", &[("net.ipv4.ip_forward", "1")]),
            wants("hostile", &[("net.ipv4.conf.all.forwarding", "0")]),
        ],
        vec![],
    );
    fw.apply_isolating(&mut evaluation).unwrap();
    let c = conflict(&evaluation, "hostile");
    assert_eq!(
        (c.key.as_str(), c.holder.as_str()),
        ("net.ipv4.conf.all.forwarding", "router")
    );
    assert_eq!(fw.kernel().sysctl("net.ipv4.ip_forward"), Some("1"));
}

#[test]
fn a_key_that_spreads_is_written_before_the_interfaces_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path(), &["lan", "router"], forwarding_kernel());
    let mut evaluation = Evaluation::new(
        vec![
            wants("lan", &[("net.ipv4.conf.wan0.forwarding", "0")]),
            wants("router", &[("net.ipv4.conf.all.forwarding", "1")]),
        ],
        vec![],
    );
    fw.apply_isolating(&mut evaluation).unwrap();
    assert_eq!(
        fw.kernel().sysctl("net.ipv4.conf.all.forwarding"),
        Some("1")
    );
    assert_eq!(
        fw.kernel().sysctl("net.ipv4.conf.wan0.forwarding"),
        Some("0")
    );
    let again = fw.apply_isolating(&mut evaluation).unwrap();
    assert!(again.sysctls_set.is_empty(), "{:?}", again.sysctls_set);
}
