//! The budgets of kernel objects against the real binary and kernel: the
//! largest table the default budgets allow (the `hostile` policy's `budget`
//! answer at 100%, the policy's own limits raised to the table's) is taken
//! by the kernel whole; one rule more, asked by a second policy, takes the
//! table over its budget, so that policy fails alone with one line and the
//! first keeps everything. `tests/examples/kernel-memory.rs` measures what
//! the same answer costs the kernel (SECURITY.md).

use std::fs;
use std::path::Path;
use std::time::Duration;

use wasmwall_e2e::{
    Child, Netns, compile_cache_dir, policy_wasm, skip_unless_root, temp_dir, toml_path,
    wasmwall_in,
};

/// A debug build validates and plans 20,000 rules of 24 matches and
/// 200,000 elements; the rest is slack for a loaded machine.
const APPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The config: `budget` at 100% of the table's default budgets and, when
/// `one_more`, a second policy asking for one rule more than they allow.
fn config(dir: &Path, one_more: bool) -> String {
    let mut toml = format!(
        "table = \"wasmwall\"\n\
         state_dir = {state}\n\
         reconcile_interval_s = 0\n\
         [cache]\n\
         dir = {cache}\n\
         [limits]\n\
         deadline_ms = 30000\n\
         memory_mib = 1024\n\
         max_chains = 2000\n\
         max_base_chains = 320\n\
         max_sets = 1000\n\
         [[policy]]\n\
         name = \"budget\"\n\
         path = {policy}\n\
         [policy.config]\n\
         attack = \"budget\"\n",
        state = toml_path(&dir.join("state")),
        cache = toml_path(&compile_cache_dir()),
        policy = toml_path(&policy_wasm("hostile")),
    );
    if one_more {
        toml.push_str(&format!(
            "[[policy]]\nname = \"more\"\npath = {}\n[policy.config]\nattack = \"rules\"\ncount = \"1\"\n",
            toml_path(&policy_wasm("hostile"))
        ));
    }
    toml
}

fn apply(launcher: &Netns, router: &Netns, dir: &Path, label: &str) -> (Option<i32>, String) {
    let config = dir.join(format!("{label}.toml"));
    let mut child = Child::spawn(
        &mut wasmwall_in(launcher, router, "apply", &config),
        dir,
        label,
    );
    let status = child.wait_timeout(APPLY_TIMEOUT);
    (status.code(), child.stderr())
}

#[test]
fn the_kernel_takes_the_largest_table_the_defaults_allow_and_not_one_rule_more() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let router = Netns::new("budget");
    let launcher = Netns::new("budget-launcher");
    fs::write(dir.path().join("full.toml"), config(dir.path(), false)).unwrap();
    fs::write(dir.path().join("more.toml"), config(dir.path(), true)).unwrap();

    let (code, log) = apply(&launcher, &router, dir.path(), "full");
    assert_eq!(code, Some(0), "the largest answer is applied\n{log}");
    let listing = router
        .run(["nft", "list", "table", "inet", "wasmwall"])
        .stdout;
    let count = |needle: &str| listing.matches(needle).count();
    assert_eq!(count("\tchain budget/"), 2_000, "chains");
    assert_eq!(count(" hook "), 320, "base chains");
    assert_eq!(count("\tset budget/"), 1_000, "sets");
    assert_eq!(count(" accept comment \""), 20_000, "rules");
    assert_eq!(count("2001:db8:"), 200_000, "set elements");

    let (code, log) = apply(&launcher, &router, dir.path(), "more");
    assert_eq!(code, Some(1), "{log}");
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("policy more: "))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one line for the policy over budget\n{log}"
    );
    assert!(
        failures[0].contains(
            "over the table's budget: the table would hold 20001 rules; its budget is 20000 (table_budget.rules)"
        ),
        "{}",
        failures[0]
    );
    assert!(
        !log.contains("policy budget: "),
        "the first policy is not touched\n{log}"
    );
    let after = router
        .run(["nft", "list", "table", "inet", "wasmwall"])
        .stdout;
    assert!(!after.contains("chain more/"), "nothing of `more` is in");
    assert_eq!(
        after.matches(" accept comment \"").count(),
        20_000,
        "the first policy keeps every rule"
    );
}

/// A set of ports holds at most 4,096: the kernel's bitmap backend loads
/// one in the square of its size (a set of all 65,535 ports took about 40 s
/// of kernel time). Under the default limits, such a set fails its policy at
/// once with the reason, and nothing is sent.
#[test]
fn a_set_of_every_port_is_refused_under_the_default_limits() {
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let router = Netns::new("ports");
    let launcher = Netns::new("ports-launcher");
    let toml = format!(
        "table = \"wasmwall\"\n\
         state_dir = {state}\n\
         [cache]\n\
         dir = {cache}\n\
         [[policy]]\n\
         name = \"ports\"\n\
         path = {policy}\n\
         [policy.config]\n\
         attack = \"elements\"\n\
         count = \"65535\"\n",
        state = toml_path(&dir.path().join("state")),
        cache = toml_path(&compile_cache_dir()),
        policy = toml_path(&policy_wasm("hostile")),
    );
    fs::write(dir.path().join("ports.toml"), toml).unwrap();
    let (code, log) = apply(&launcher, &router, dir.path(), "ports");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("policy ports: ")
            && log.contains("set \"many\": has 65535 ports; a set of ports holds at most 4096"),
        "{log}"
    );
    let listing = router.run(["nft", "list", "ruleset"]).stdout;
    assert!(!listing.contains("chain ports/"), "{listing}");
}
