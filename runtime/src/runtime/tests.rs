//! [`apply_isolating`] on the fake kernel: a policy whose rules the kernel
//! refuses fails alone.

use nix::errno::Errno;

use super::*;
use crate::ir::{self, Action, BaseChain, ChainPolicy, ChainType, Hook};
use crate::kernel::{ApplyReport, Fake, Observation};
use crate::plan::{Op, RuleTag, Transaction};

/// The fake kernel, refusing (when told to) every object of one policy, as
/// the real one refuses, e.g., a chain 16 jumps deep.
struct Refusing {
    inner: Fake,
    refuse: Option<&'static str>,
}

impl Kernel for Refusing {
    fn generation(&mut self) -> Result<u32, KernelError> {
        self.inner.generation()
    }

    fn observe(&mut self, table: &str) -> Result<Observation, KernelError> {
        self.inner.observe(table)
    }

    fn apply(
        &mut self,
        tx: &Transaction,
        generation: Option<u32>,
    ) -> Result<ApplyReport, KernelError> {
        if let Some(policy) = self.refuse {
            for op in &tx.ops {
                if let Op::AddRule { chain, .. } = op
                    && chain.starts_with(&format!("{policy}/"))
                {
                    return Err(KernelError::Rejected {
                        op: format!("add rule inet {} {chain} jump {policy}/deeper", tx.table),
                        errno: Errno::EMLINK,
                        extack: None,
                    });
                }
            }
        }
        self.inner.apply(tx, generation)
    }
}

fn rules(policy: &str, comment: &str) -> PolicyRules {
    rules_with_sysctls(policy, comment, vec![])
}

fn rules_with_sysctls(policy: &str, comment: &str, sysctls: Vec<ir::Sysctl>) -> PolicyRules {
    PolicyRules {
        policy: policy.into(),
        rules: ir::Ruleset {
            chains: vec![ir::Chain {
                name: "input".into(),
                base: Some(BaseChain {
                    hook: Hook::Input,
                    chain_type: ChainType::Filter,
                    priority: 0,
                    policy: ChainPolicy::Accept,
                }),
                rules: vec![ir::Rule {
                    matches: vec![],
                    counter: false,
                    log_prefix: None,
                    action: Action::Accept,
                    comment: Some(comment.into()),
                }],
            }],
            sets: vec![],
            sysctls,
        },
    }
}

/// The tags of the rules in `chain`, as the kernel holds them.
fn tags(kernel: &Refusing, chain: &str) -> Vec<RuleTag> {
    let table = kernel.inner.table("ww").expect("the table exists");
    let chain = table
        .chains
        .iter()
        .find(|c| c.name == chain)
        .expect("the chain exists");
    chain.rules.iter().filter_map(|r| r.tag.clone()).collect()
}

fn expected_tags(p: &PolicyRules) -> Vec<RuleTag> {
    DesiredTable::from_policies(std::slice::from_ref(p)).chains[0]
        .rules
        .iter()
        .map(|r| r.tag.clone())
        .collect()
}

#[test]
fn a_policy_the_kernel_refuses_keeps_its_rules_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::new("ww", None, dir.path());
    let allow = AllowList::new(&[]).unwrap();
    let mut kernel = Refusing {
        inner: Fake::new(),
        refuse: None,
    };
    let mut reconciler = Reconciler::new("ww");

    let (bad_v1, good_v1) = (rules("bad", "v1"), rules("good", "v1"));
    let first = Evaluation::new(vec![bad_v1.clone(), good_v1], vec![]);
    let (_, narrowed) =
        apply_isolating(&mut kernel, &mut reconciler, &target, &allow, &first).unwrap();
    assert!(narrowed.is_none());

    kernel.refuse = Some("bad");
    let good_v2 = rules("good", "v2");
    let second = Evaluation::new(vec![rules("bad", "v2"), good_v2.clone()], vec![]);
    let (_, narrowed) =
        apply_isolating(&mut kernel, &mut reconciler, &target, &allow, &second).unwrap();
    let narrowed = narrowed.expect("the bad policy is moved to the failures");
    assert_eq!(narrowed.rules.len(), 1);
    assert_eq!(narrowed.failed.len(), 1);
    let failure = &narrowed.failed[0];
    assert_eq!(failure.policy, "bad");
    assert!(
        failure.error.starts_with("policy bad: the kernel refused its rules: the kernel rejected `add rule inet ww bad/input"),
        "{}",
        failure.error
    );
    assert_eq!(
        tags(&kernel, "bad/input"),
        expected_tags(&bad_v1),
        "last known good kept"
    );
    assert_eq!(
        tags(&kernel, "good/input"),
        expected_tags(&good_v2),
        "the other policy applied"
    );

    // From then on the narrowed evaluation applies as it is.
    let (_, again) =
        apply_isolating(&mut kernel, &mut reconciler, &target, &allow, &narrowed).unwrap();
    assert!(again.is_none());
}

#[test]
fn a_policy_whose_sysctl_does_not_exist_keeps_its_rules_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::new("ww", None, dir.path());
    let allow = AllowList::new(&[]).unwrap();
    let mut kernel = Refusing {
        inner: Fake::new(),
        refuse: None,
    };
    let mut reconciler = Reconciler::new("ww");
    let bad_v1 = rules("bad", "v1");
    let first = Evaluation::new(vec![bad_v1.clone(), rules("good", "v1")], vec![]);
    apply_isolating(&mut kernel, &mut reconciler, &target, &allow, &first).unwrap();

    // Allowed by the pattern, but there is no such interface: only read,
    // never written.
    let missing = ir::Sysctl {
        key: "net.ipv4.conf.no-such-if0.forwarding".into(),
        value: "1".into(),
    };
    let good_v2 = rules("good", "v2");
    let second = Evaluation::new(
        vec![
            rules_with_sysctls("bad", "v2", vec![missing]),
            good_v2.clone(),
        ],
        vec![],
    );
    let (_, narrowed) =
        apply_isolating(&mut kernel, &mut reconciler, &target, &allow, &second).unwrap();
    let narrowed = narrowed.expect("the bad policy is moved to the failures");
    assert_eq!(narrowed.failed[0].policy, "bad");
    assert!(
        narrowed.failed[0].error.starts_with(
            "policy bad: sysctl net.ipv4.conf.no-such-if0.forwarding: cannot read /proc/sys/net/ipv4/conf/no-such-if0/forwarding"
        ),
        "{}",
        narrowed.failed[0].error
    );
    assert_eq!(
        tags(&kernel, "bad/input"),
        expected_tags(&bad_v1),
        "last known good kept"
    );
    assert_eq!(
        tags(&kernel, "good/input"),
        expected_tags(&good_v2),
        "the other policy applied"
    );
}

#[test]
fn a_refusal_that_names_no_policy_is_an_error() {
    let refused = |op: &str| {
        refused_policy(
            &KernelError::Rejected {
                op: op.into(),
                errno: Errno::EINVAL,
                extack: None,
            },
            "ww",
        )
    };
    assert_eq!(
        refused("add rule inet ww p/input accept").as_deref(),
        Some("p")
    );
    assert_eq!(
        refused("insert rule inet ww p/input position 4 accept").as_deref(),
        Some("p")
    );
    assert_eq!(
        refused("add chain inet ww q/nat { type nat hook prerouting priority -300; }").as_deref(),
        Some("q")
    );
    assert_eq!(
        refused("add element inet ww r/hosts { 10.0.0.1 }").as_deref(),
        Some("r")
    );
    assert_eq!(refused("add table inet ww"), None);
    assert_eq!(refused("delete rule inet ww p/input handle 4"), None);
    assert_eq!(refused("add rule inet other p/input accept"), None);
    assert_eq!(refused_policy(&KernelError::Changed, "ww"), None);
}
