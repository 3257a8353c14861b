//! The engine on the fake kernel: a policy whose rules the kernel refuses,
//! or whose sysctl does not exist, fails alone; isolation follows the
//! refused operation's index, never the wording of a message.

use nix::errno::Errno;

use super::*;
use crate::ir::{self, Action, BaseChain, ChainPolicy, ChainType, Hook, PolicyRules};
use crate::kernel::{ApplyReport, Fake, KernelError, Observation};
use crate::plan::{DesiredTable, Op, RuleTag, Transaction};

/// The fake kernel, refusing (when told to) the first rule of one policy,
/// as the real one refuses, e.g., a chain 16 jumps deep. The refusal names
/// the message in words that follow no format at all: only its index says
/// which operation it was.
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
            for (index, op) in tx.ops.iter().enumerate() {
                if let Op::AddRule { chain, .. } = op
                    && chain.policy() == Some(policy)
                {
                    return Err(KernelError::Rejected {
                        op: format!("message number {}", index + 7),
                        index: Some(index),
                        errno: Errno::EMLINK,
                        extack: None,
                    });
                }
            }
        }
        self.inner.apply(tx, generation)
    }

    fn read_sysctl(&mut self, path: &std::path::Path) -> std::io::Result<String> {
        self.inner.read_sysctl(path)
    }

    fn write_sysctl(&mut self, path: &std::path::Path, value: &str) -> std::io::Result<()> {
        self.inner.write_sysctl(path, value)
    }

    fn list_sysctls(&mut self, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
        self.inner.list_sysctls(dir)
    }

    fn features(&mut self, interfaces: &[String]) -> Result<crate::world::Features, KernelError> {
        self.inner.features(interfaces)
    }

    fn hardware_offload(&mut self, interfaces: &[String]) -> std::io::Result<Vec<String>> {
        self.inner.hardware_offload(interfaces)
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
                    statements: vec![],
                    action: Action::Accept,
                    comment: Some(comment.into()),
                    cut_flows: false,
                }],
            }],
            sets: vec![],
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls,
        },
    }
}

/// The tags of the rules in `chain`, as the kernel holds them.
fn tags(firewall: &Firewall<Refusing>, chain: &str) -> Vec<RuleTag> {
    let table = firewall
        .kernel()
        .inner
        .table("ww")
        .expect("the table exists");
    let chain = table.chain(chain).expect("the chain exists");
    chain.rules.iter().filter_map(|r| r.tag.clone()).collect()
}

fn expected_tags(p: &PolicyRules) -> Vec<RuleTag> {
    DesiredTable::from_policies(std::slice::from_ref(p)).chains[0]
        .rules
        .iter()
        .map(|r| r.tag.clone())
        .collect()
}

fn firewall(dir: &std::path::Path) -> Firewall<Refusing> {
    let kernel = Refusing {
        inner: Fake::new(),
        refuse: None,
    };
    Firewall::new(
        kernel,
        Target::new("ww", None, dir),
        AllowList::default(),
        Policies::none(),
    )
}

#[test]
fn a_policy_the_kernel_refuses_keeps_its_rules_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path());

    let (bad_v1, good_v1) = (rules("bad", "v1"), rules("good", "v1"));
    let mut first = Evaluation::new(vec![bad_v1.clone(), good_v1], vec![]);
    fw.apply_isolating(&mut first).unwrap();
    assert!(first.failed.is_empty());

    fw.kernel_mut().refuse = Some("bad");
    let good_v2 = rules("good", "v2");
    let mut second = Evaluation::new(vec![rules("bad", "v2"), good_v2.clone()], vec![]);
    fw.apply_isolating(&mut second).unwrap();
    assert_eq!(second.rules.len(), 1);
    assert_eq!(second.failed.len(), 1);
    let failure = &second.failed[0];
    assert_eq!(failure.policy, "bad");
    assert!(
        matches!(
            &*failure.error,
            PolicyError::Refused(KernelError::Rejected { index: Some(_), .. })
        ),
        "{failure}"
    );
    assert_eq!(
        failure.to_string(),
        "policy bad: the kernel refused its rules: the kernel rejected `message number 9`: Too many links"
    );
    assert_eq!(
        tags(&fw, "bad/input"),
        expected_tags(&bad_v1),
        "last known good kept"
    );
    assert_eq!(
        tags(&fw, "good/input"),
        expected_tags(&good_v2),
        "the other policy applied"
    );

    // From then on the narrowed evaluation applies as it is.
    fw.apply_isolating(&mut second).unwrap();
    assert_eq!(second.failed.len(), 1);
}

#[test]
fn a_policy_whose_sysctl_does_not_exist_keeps_its_rules_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path());
    let bad_v1 = rules("bad", "v1");
    let mut first = Evaluation::new(vec![bad_v1.clone(), rules("good", "v1")], vec![]);
    fw.apply_isolating(&mut first).unwrap();

    // Allowed by the pattern, but there is no such interface: only read,
    // never written.
    let missing = ir::Sysctl {
        key: "net.ipv4.conf.no-such-if0.forwarding".into(),
        value: "1".into(),
    };
    let good_v2 = rules("good", "v2");
    let mut second = Evaluation::new(
        vec![
            rules_with_sysctls("bad", "v2", vec![missing]),
            good_v2.clone(),
        ],
        vec![],
    );
    fw.apply_isolating(&mut second).unwrap();
    assert_eq!(second.failed[0].policy, "bad");
    assert!(
        matches!(&*second.failed[0].error, PolicyError::Sysctl(e) if e.action == "read"),
        "{}",
        second.failed[0]
    );
    assert!(
        second.failed[0].to_string().starts_with(
            "policy bad: sysctl net.ipv4.conf.no-such-if0.forwarding: cannot read /proc/sys/net/ipv4/conf/no-such-if0/forwarding"
        ),
        "{}",
        second.failed[0]
    );
    assert_eq!(
        tags(&fw, "bad/input"),
        expected_tags(&bad_v1),
        "last known good kept"
    );
    assert_eq!(
        tags(&fw, "good/input"),
        expected_tags(&good_v2),
        "the other policy applied"
    );
    assert_eq!(fw.kernel().inner.sysctl_writes, 0);
}

#[test]
fn sysctls_are_recorded_set_and_restored_through_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path());
    fw.kernel_mut().inner.set_sysctl("net.ipv4.ip_forward", "0");
    let forwarding = ir::Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "1".into(),
    };
    let mut wants = Evaluation::new(
        vec![rules_with_sysctls("p", "v1", vec![forwarding])],
        vec![],
    );
    let applied = fw.apply_isolating(&mut wants).unwrap();
    assert_eq!(applied.sysctls_set, ["net.ipv4.ip_forward=1"]);
    assert_eq!(fw.kernel().inner.sysctl("net.ipv4.ip_forward"), Some("1"));
    assert!(fw.sysctls_drifted(&wants).is_empty());

    // Changed by hand: seen as drift, and put back by the next apply.
    fw.kernel_mut().inner.set_sysctl("net.ipv4.ip_forward", "0");
    assert_eq!(fw.sysctls_drifted(&wants), ["net.ipv4.ip_forward: 0 -> 1"]);
    fw.apply_isolating(&mut wants).unwrap();
    assert_eq!(fw.kernel().inner.sysctl("net.ipv4.ip_forward"), Some("1"));

    let done = fw.cleanup().unwrap();
    assert!(done.table_removed && done.had_state_file);
    assert_eq!(done.restored, ["net.ipv4.ip_forward=0"]);
    assert_eq!(fw.kernel().inner.sysctl("net.ipv4.ip_forward"), Some("0"));
    assert!(fw.kernel().inner.table("ww").is_none());
}

#[test]
fn only_operations_that_add_a_policys_object_name_it() {
    let rule = rules("p", "x").rules.chains[0].rules[0].clone();
    let tag = RuleTag {
        policy: "p".into(),
        hash: "0".into(),
    };
    let add = Op::AddRule {
        chain: "p/input".into(),
        rule,
        tag: tag.clone(),
        position: crate::plan::Position::Before(4),
    };
    assert_eq!(add.added_by(), Some("p"));
    let chain = Op::AddChain {
        name: "q/nat".into(),
        base: None,
    };
    assert_eq!(chain.added_by(), Some("q"));
    let elements = Op::AddElements {
        set: "r/hosts".into(),
        elements: ir::SetElements::ports(vec![1]),
    };
    assert_eq!(elements.added_by(), Some("r"));
    assert_eq!(Op::AddTable.added_by(), None);
    let delete = Op::DeleteRule {
        chain: "p/input".into(),
        handle: 4,
        tag: Some(tag),
    };
    assert_eq!(delete.added_by(), None);
    let by_hand = Op::AddChain {
        name: "input".into(),
        base: None,
    };
    assert_eq!(by_hand.added_by(), None);
}

/// A policy that answers with a fixed outcome.
struct Fixed(fn() -> Result<crate::bindings::wit::Ruleset, crate::sandbox::HostError>);

impl Evaluate for Fixed {
    fn evaluate(
        &self,
        _state: &crate::bindings::wit::WorldState,
        _event: &crate::bindings::wit::Event,
        _config: &[(String, String)],
    ) -> Result<crate::bindings::wit::Ruleset, crate::sandbox::HostError> {
        (self.0)()
    }
}

fn nat_chain_answer() -> Result<crate::bindings::wit::Ruleset, crate::sandbox::HostError> {
    use crate::bindings::wit;
    Ok(wit::Ruleset {
        chains: vec![wit::Chain {
            name: "nat".into(),
            base: Some(wit::BaseChain {
                hook: wit::Hook::Prerouting,
                type_: wit::ChainType::Nat,
                priority: wit::Priority::Number(-100),
                policy: wit::ChainPolicy::Accept,
            }),
            rules: vec![wit::Rule {
                matches: vec![],
                statements: vec![],
                action: wit::Action::Jump("nowhere".into()),
                comment: None,
            }],
        }],
        ..wit::Ruleset::empty()
    })
}

#[test]
fn callers_can_tell_a_deadline_from_a_trap_from_an_invalid_answer() {
    use crate::config::PolicyConfig;
    use crate::sandbox::HostError;
    let config = |offset| PolicyConfig {
        name: "p".into(),
        path: "p.wasm".into(),
        priority_offset: offset,
        config: vec![],
        files: vec![],
    };
    let judge = |policy: &dyn Evaluate, offset| {
        evaluate_policy(
            policy,
            &config(offset),
            &crate::validate::Options::default(),
            &crate::world::WorldState::default().to_wit(),
            &crate::world::Event::Startup.to_wit(),
        )
        .unwrap_err()
    };
    let deadline = Fixed(|| Err(HostError::Deadline(std::time::Duration::from_millis(200))));
    assert!(matches!(
        judge(&deadline, 0),
        PolicyError::Evaluate(HostError::Deadline(_))
    ));
    let trap = Fixed(|| Err(HostError::Trap("wasm trap: unreachable".into())));
    assert!(matches!(
        judge(&trap, 0),
        PolicyError::Evaluate(HostError::Trap(_))
    ));
    let invalid = Fixed(nat_chain_answer);
    match judge(&invalid, 0) {
        PolicyError::Invalid(invalid) => {
            assert_eq!(invalid.problems.len(), 1);
            assert!(
                invalid.problems[0]
                    .message
                    .contains("unknown chain \"nowhere\"")
            );
        }
        other => panic!("{other}"),
    }
    // Valid alone, but not with the config's offset: the kernel would refuse
    // a nat chain at -250, and so does the one evaluation path.
    let fine = Fixed(|| {
        let mut answer = nat_chain_answer()?;
        answer.chains[0].rules.clear();
        Ok(answer)
    });
    assert!(matches!(
        judge(&fine, -150),
        PolicyError::PriorityOffset { offset: -150, .. }
    ));
}

/// A policy whose answer would take the table over its budget fails alone,
/// before anything is sent, and keeps what the kernel holds for it; the
/// policy earlier in the config is served first.
#[test]
fn a_policy_over_the_tables_budget_fails_alone_and_keeps_its_rules() {
    use crate::validate::budget::TableBudget;
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firewall(dir.path());
    fw.policies = Policies::none().with_table_budget(TableBudget {
        rules: 3,
        ..TableBudget::default()
    });
    let grown = |policy: &str, comment: &str| {
        let mut p = rules(policy, comment);
        let extra = p.rules.chains[0].rules[0].clone();
        p.rules.chains[0].rules.push(ir::Rule {
            comment: Some(format!("{comment}+")),
            ..extra
        });
        p
    };
    let mut first = Evaluation::new(vec![rules("a", "a1"), rules("b", "b1")], vec![]);
    fw.apply_isolating(&mut first).unwrap();
    assert!(first.failed.is_empty());
    let b_before = tags(&fw, "b/input");

    let mut second = Evaluation::new(vec![grown("a", "a2"), grown("b", "b2")], vec![]);
    let batches = fw.kernel().inner.batches;
    fw.apply_isolating(&mut second).unwrap();
    assert_eq!(
        fw.kernel().inner.batches,
        batches + 1,
        "one batch, b left out"
    );
    let failure = second.failure("b").expect("b failed");
    let cause = failure.cause();
    assert!(
        cause.contains("over the table's budget: the table would hold 4 rules; its budget is 3 (table_budget.rules)"),
        "{cause}"
    );
    assert!(second.failure("a").is_none());
    assert_eq!(tags(&fw, "a/input"), expected_tags(&grown("a", "a2")));
    assert_eq!(
        tags(&fw, "b/input"),
        b_before,
        "b keeps its last known good rules"
    );
}
