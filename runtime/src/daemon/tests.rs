//! The daemon's logic on the fake kernel, without root and in
//! milliseconds: hot swap, config reload and SIGHUP, coalescing of bursts,
//! requests that wait for their reconcile, sysctls changed by hand, the
//! neighbour table and its cap, and what `status` shows. The policies are files whose text says what the fake
//! policy answers, loaded by a fake loader (the compile of real components
//! is tested end to end in tests/daemon.rs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::control::{Command, Incoming, Response};
use super::leases::LeaseAction;
use super::pending::MIN_GAP;
use super::timers::{NEIGHBOUR_SETTLE, SYSCTL_CHECK, Timer};
use super::*;
use crate::bindings::wit;
use crate::config::PolicyConfig;
use crate::engine::{Candidate, Evaluate, LoadError, Loader};
use crate::kernel::Fake;
use crate::sandbox::HostError;
use crate::world::{Interface, Lease, Neighbour, NeighbourState, NeighbourTable};

/// A policy answering what its file says: `version V` gives a filter chain
/// whose first rule's comment is V and a set `leases` of every leased
/// address; with `sysctl KEY=VALUE` it also asks for that sysctl; with a
/// line `neighbours` the comment also tells the neighbours it sees (count
/// and states) and the event; `refuse` refuses to answer. A file that starts with `broken` does not load.
struct Scripted {
    text: String,
}

impl Evaluate for Scripted {
    fn evaluate(
        &self,
        state: &wit::WorldState,
        event: &wit::Event,
        config: &[(String, String)],
    ) -> Result<wit::Ruleset, HostError> {
        if self.text.contains("refuse") {
            return Err(HostError::Refused("told to refuse".into()));
        }
        let version = self
            .text
            .lines()
            .find_map(|l| l.strip_prefix("version "))
            .unwrap_or("none");
        let mut comment = match config.iter().find(|(k, _)| k == "label") {
            Some((_, label)) => format!("{version} {label}"),
            None => version.to_string(),
        };
        if self.text.lines().any(|l| l == "neighbours") {
            let states: Vec<&str> = state
                .neighbours
                .iter()
                .map(|n| match n.state {
                    wit::NeighbourState::Reachable => "reachable",
                    wit::NeighbourState::Stale => "stale",
                    wit::NeighbourState::Delay => "delay",
                    wit::NeighbourState::Probe => "probe",
                    wit::NeighbourState::Permanent => "permanent",
                })
                .collect();
            let event = match event {
                wit::Event::NeighbourAdded(_) => "added",
                wit::Event::NeighbourChanged(_) => "changed",
                wit::Event::NeighbourRemoved(_) => "removed",
                wit::Event::Startup => "startup",
                _ => "other",
            };
            comment = format!("{comment} {} [{}] {event}", states.len(), states.join(","));
        }
        let rule = |matches, action, comment: Option<String>| wit::Rule {
            matches,
            statements: vec![],
            action,
            comment,
        };
        let sysctls = self
            .text
            .lines()
            .filter_map(|l| l.strip_prefix("sysctl "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(key, value)| wit::Sysctl {
                key: key.into(),
                value: value.into(),
            })
            .collect();
        Ok(wit::Ruleset {
            chains: vec![wit::Chain {
                name: "input".into(),
                base: Some(wit::BaseChain {
                    hook: wit::Hook::Input,
                    type_: wit::ChainType::Filter,
                    priority: wit::Priority::Number(0),
                    policy: wit::ChainPolicy::Accept,
                }),
                rules: vec![
                    rule(vec![], wit::Action::Accept, Some(comment)),
                    rule(
                        vec![wit::MatchExpr {
                            matcher: wit::Matcher::SaddrIn("leases".into()),
                            negate: false,
                        }],
                        wit::Action::Drop,
                        None,
                    ),
                ],
            }],
            sets: vec![wit::NamedSet {
                name: "leases".into(),
                key: vec![wit::KeyType::Ipv4Addr],
                intervals: false,
                timeout: None,
                dynamic: false,
                size: None,
                elements: state
                    .leases
                    .iter()
                    .map(|l| vec![wit::Value::Address(l.ip.clone())])
                    .collect(),
            }],
            sysctls,
            ..wit::Ruleset::empty()
        })
    }
}

/// Loads [`Scripted`] policies from their files.
struct ScriptLoader;

impl Loader for ScriptLoader {
    fn load(&self, config: &PolicyConfig, _insecure: bool) -> Result<Candidate, LoadError> {
        let shown = config.path.display().to_string();
        let bytes = crate::files::read(&config.path, crate::files::Kind::Policy)
            .map_err(HostError::from)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.starts_with("broken") {
            return Err(LoadError::Sandbox(HostError::NotComponent {
                path: shown,
                why: "it is broken on purpose".into(),
            }));
        }
        Ok(Candidate {
            policy: Arc::new(Scripted { text }),
            hash: crate::engine::component_hash(&bytes),
        })
    }
}

/// A daemon on the fake kernel, with its config and one policy file in a
/// directory of its own.
struct Lab {
    dir: tempfile::TempDir,
    daemon: Daemon<Fake>,
    now: Instant,
}

const CONFIG: &str = "table = \"ww\"\nstate_dir = \"state\"\nreconcile_interval_s = 0\n\
     [[policy]]\nname = \"p\"\npath = \"p.policy\"\n";

impl Lab {
    fn start(policy: &str) -> Lab {
        Lab::with_kernel(policy, Fake::new())
    }

    fn with_kernel(policy: &str, kernel: Fake) -> Lab {
        Lab::with_config(policy, kernel, CONFIG)
    }

    fn with_config(policy: &str, kernel: Fake, config: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.policy"), policy).unwrap();
        std::fs::write(dir.path().join("wasmwall.toml"), config).unwrap();
        let config_path = dir.path().join("wasmwall.toml");
        let config = Config::load_for_policies(&config_path, false).unwrap();
        let target = Target::new(&config.table, None, &config.state_dir);
        let policies = Policies::load(&config, Arc::new(ScriptLoader));
        let firewall = Firewall::new(kernel, target, config.sysctls.clone(), policies);
        let now = Instant::now();
        let mut daemon = Daemon::new(&config_path, config, firewall, now);
        daemon.start(vec![lan()], now).unwrap();
        Lab { dir, daemon, now }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Replaces a file as an editor or `mv` would.
    fn write(&self, file: &str, text: &str) {
        let tmp = self.path(".tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(file)).unwrap();
    }

    /// The watcher saw `file` change: what the loop does, compiles run
    /// inline.
    fn changed(&mut self, file: &str) {
        let changed: BTreeSet<PathBuf> = [self.path(file)].into();
        let out = self.daemon.files_changed(&changed);
        self.compile(out);
    }

    fn compile(&mut self, out: FilesChanged) {
        for job in out.jobs {
            self.daemon.compiled(job.run());
        }
        self.settle();
    }

    fn settle(&mut self) {
        self.now += Duration::from_millis(100);
        self.daemon.settle(self.now);
    }

    fn fake(&self) -> &Fake {
        self.daemon.firewall().kernel()
    }

    /// The comment of the policy's first rule, as the fake kernel holds it:
    /// which version (and settings) is live.
    fn live(&self) -> String {
        let table = self.fake().table("ww").expect("the table exists");
        let chain = table.chain("p/input").expect("the chain exists");
        let tag = chain.rules[0].tag.clone().expect("tagged");
        let evaluation = self.daemon.evaluation();
        let rules = &evaluation
            .rules
            .iter()
            .find(|r| r.policy == "p")
            .unwrap()
            .rules;
        let desired = crate::plan::DesiredTable::from_policies(&evaluation.rules);
        assert_eq!(
            desired.chains[0].rules[0].tag, tag,
            "the kernel holds what was evaluated"
        );
        rules.chains[0].rules[0].comment.clone().unwrap()
    }

    fn leases_in_kernel(&self) -> Vec<std::net::Ipv4Addr> {
        let table = self.fake().table("ww").expect("the table exists");
        let found = table.set("p/leases").and_then(|s| s.elements.clone());
        let Some(set) = found
            .clone()
            .filter(|s| s.address_family() == Some(crate::ir::Family::V4))
        else {
            panic!("no address set: {found:?}");
        };
        set.elements
            .iter()
            .map(|e| match e.key.0.as_slice() {
                [crate::ir::Value::Addr(std::net::IpAddr::V4(a))] => *a,
                other => panic!("not an address: {other:?}"),
            })
            .collect()
    }

    fn rejected(&self) -> Vec<String> {
        self.daemon.status().errors
    }

    /// A lease request as the control socket hands it on.
    fn lease(&mut self, ip: &str, wait: bool) -> oneshot::Receiver<Response> {
        let (reply, answer) = oneshot::channel();
        self.daemon.handle(Incoming {
            command: Command::Lease {
                action: LeaseAction::Add,
                lease: Lease {
                    mac: "02:00:00:00:00:01".into(),
                    ip: ip.into(),
                    hostname: None,
                    iface: "lan0".into(),
                    expires: None,
                }
                .into(),
                wait,
            },
            reply,
        });
        answer
    }
}

fn lan() -> Interface {
    Interface {
        name: "lan0".into(),
        index: 2,
        up: true,
        mac: None,
        addresses: vec!["192.168.1.1/24".into()],
    }
}

fn lease_ip(i: usize) -> String {
    format!("192.168.{}.{}", 1 + i / 250, 1 + i % 250)
}

#[test]
fn a_good_new_version_is_swapped_in_and_a_broken_one_is_rejected() {
    let mut lab = Lab::start("version 1\n");
    assert_eq!(lab.live(), "1");
    let batches = lab.fake().batches;

    lab.write("p.policy", "broken\n");
    lab.changed("p.policy");
    assert_eq!(lab.live(), "1", "the running version stays");
    assert_eq!(lab.fake().batches, batches, "nothing sent");
    let errors = lab.rejected();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("policy p: new version rejected: cannot load: ")
            && errors[0].contains("broken on purpose")
            && errors[0].ends_with("; the running version stays"),
        "{errors:?}"
    );

    // Loads, but fails on the current state: rejected too.
    lab.write("p.policy", "version 2\nrefuse\n");
    lab.changed("p.policy");
    assert_eq!(lab.live(), "1");
    assert!(
        lab.rejected()[0].contains("evaluation failed: policy returned an error: told to refuse"),
        "{:?}",
        lab.rejected()
    );

    let before = lab.daemon.status().policies[0].hash.clone();
    lab.write("p.policy", "version 3\n");
    lab.changed("p.policy");
    assert_eq!(lab.live(), "3", "swapped in and applied");
    assert!(lab.rejected().is_empty(), "the rejection is superseded");
    let after = lab.daemon.status().policies[0].hash.clone();
    assert_ne!(before, after);
    assert_eq!(lab.fake().batches, batches + 1, "one batch for the swap");

    // The same content again (a touch) changes nothing.
    lab.write("p.policy", "version 3\n");
    lab.changed("p.policy");
    assert_eq!(lab.fake().batches, batches + 1);
}

#[test]
fn an_older_compile_that_finishes_last_is_dropped() {
    let mut lab = Lab::start("version 1\n");
    lab.write("p.policy", "version 2\n");
    let older = lab.daemon.files_changed(&[lab.path("p.policy")].into());
    lab.write("p.policy", "version 3\n");
    let newer = lab.daemon.files_changed(&[lab.path("p.policy")].into());
    let newer: Vec<Compiled> = newer.jobs.into_iter().map(CompileJob::run).collect();
    let older: Vec<Compiled> = older.jobs.into_iter().map(CompileJob::run).collect();
    for done in newer.into_iter().chain(older) {
        lab.daemon.compiled(done);
    }
    lab.settle();
    assert_eq!(lab.live(), "3");
}

#[test]
fn a_changed_config_is_taken_and_one_a_running_daemon_cannot_take_is_rejected() {
    let mut lab = Lab::start("version 1\n");
    lab.write(
        "wasmwall.toml",
        &format!("{CONFIG}[policy.config]\nlabel = \"blue\"\n"),
    );
    lab.changed("wasmwall.toml");
    assert_eq!(lab.live(), "1 blue", "the policy sees its new settings");
    assert_eq!(
        lab.daemon.status().last_change.map(|r| r.reason),
        Some("config changed".into())
    );

    lab.write("wasmwall.toml", &CONFIG.replace("\"ww\"", "\"other\""));
    lab.changed("wasmwall.toml");
    assert_eq!(lab.live(), "1 blue");
    let errors = lab.rejected();
    assert!(
        errors[0].contains("new version rejected: changing `table` needs a restart of wasmwall; the running config stays"),
        "{errors:?}"
    );

    lab.write("wasmwall.toml", "[[policy]\n");
    lab.changed("wasmwall.toml");
    assert!(lab.rejected()[0].contains("line 1"), "{:?}", lab.rejected());

    // A config whose policy fails on the current state is not taken.
    lab.write("q.policy", "refuse\n");
    lab.write(
        "wasmwall.toml",
        &format!("{CONFIG}[[policy]]\nname = \"q\"\npath = \"q.policy\"\n"),
    );
    lab.changed("wasmwall.toml");
    assert!(
        lab.rejected()[0].contains("policy q: evaluation failed"),
        "{:?}",
        lab.rejected()
    );
    assert_eq!(lab.daemon.status().policies.len(), 1);
}

#[test]
fn a_changed_policy_input_file_is_taken_as_a_changed_config_and_a_broken_one_rejected() {
    let mut lab = Lab::start("version 1\n");
    lab.write("label", "blue");
    lab.write(
        "wasmwall.toml",
        &format!("{CONFIG}[policy.files]\nlabel = \"label\"\n"),
    );
    lab.changed("wasmwall.toml");
    assert_eq!(lab.live(), "1 blue", "the file's text is a config value");
    let label = lab.path("label");
    assert!(lab.daemon.watched_files().contains(&label));
    assert_eq!(
        lab.daemon.status().policies[0].files,
        [("label".to_string(), label.display().to_string())]
    );

    lab.write("label", "green");
    lab.changed("label");
    assert_eq!(lab.live(), "1 green");
    assert_eq!(
        lab.daemon.status().last_change.map(|r| r.reason),
        Some("config changed".into())
    );
    let batches = lab.fake().batches;

    let rejected = |lab: &Lab, problem: &str| {
        let errors = lab.rejected();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "policy input file {} (policy p, key `label`): new version rejected: ",
                label.display()
            )) && errors[0].contains(problem)
                && errors[0].ends_with("; the running config stays"),
            "{errors:?}"
        );
    };
    // Not text, then text the policy's answer cannot carry (a comment of
    // two lines): the running rules stay.
    std::fs::write(&label, b"gr\xffen").unwrap();
    lab.changed("label");
    rejected(
        &lab,
        &format!("policy input file {} is not UTF-8 text", label.display()),
    );
    lab.write("label", "two\nlines\n");
    lab.changed("label");
    rejected(
        &lab,
        "policy p: 1 problem(s) in the returned ruleset: chain \"input\" rule 1: comment has '\\n' at byte 5",
    );
    assert_eq!(lab.live(), "1 green");
    assert_eq!(lab.fake().batches, batches, "nothing sent");

    lab.write("label", "red");
    lab.changed("label");
    assert_eq!(lab.live(), "1 red", "fixed: taken");
    assert!(lab.rejected().is_empty(), "{:?}", lab.rejected());
}

#[test]
fn sighup_reads_the_config_and_every_policy_file_again() {
    let mut lab = Lab::start("version 1\n");
    // Written behind the watcher's back (or with no watcher at all).
    std::fs::write(lab.path("p.policy"), "version 2\n").unwrap();
    std::fs::write(
        lab.path("wasmwall.toml"),
        format!("{CONFIG}[policy.config]\nlabel = \"green\"\n"),
    )
    .unwrap();
    let out = lab.daemon.reload_all();
    assert!(out.config_reloaded);
    lab.compile(out);
    assert_eq!(lab.live(), "2 green");
}

#[test]
fn a_burst_of_lease_events_makes_one_reconcile_and_the_next_waits_for_the_gap() {
    let mut lab = Lab::start("version 1\n");
    let (batches, reconciles) = (lab.fake().batches, lab.daemon.status().reconciles);
    for i in 0..1000 {
        drop(lab.lease(&lease_ip(i), false));
    }
    lab.settle();
    assert_eq!(lab.leases_in_kernel().len(), 1000);
    assert_eq!(lab.fake().batches, batches + 1, "one batch for the burst");
    let status = lab.daemon.status();
    assert_eq!(status.reconciles, reconciles + 1);
    assert_eq!(
        status.last_change.unwrap().reason,
        "1000 events (lease-added x1000)"
    );

    // The next event, right after: it waits for the gap, then goes in.
    drop(lab.lease(&lease_ip(1000), false));
    let just_after = lab.now + MIN_GAP / 2;
    lab.daemon.settle(just_after);
    assert_eq!(lab.leases_in_kernel().len(), 1000, "held in the burst");
    let wake = lab.daemon.next_deadline().expect("a deadline for the gap");
    assert!(wake <= lab.now + MIN_GAP, "wakes at the end of the gap");
    assert_eq!(lab.daemon.fire_due(wake), [Timer::Burst]);
    lab.daemon.settle(wake);
    assert_eq!(lab.leases_in_kernel().len(), 1001);
}

#[test]
fn a_waiting_request_is_answered_once_its_change_is_in_the_kernel() {
    let mut lab = Lab::start("version 1\n");
    let mut answer = lab.lease("192.168.1.50", true);
    assert!(
        answer.try_recv().is_err(),
        "not answered before the reconcile"
    );
    assert!(lab.leases_in_kernel().is_empty());
    lab.settle();
    let answer = answer.try_recv().expect("answered by the reconcile");
    assert!(answer.ok, "{:?}", answer.error);
    assert_eq!(
        lab.leases_in_kernel(),
        ["192.168.1.50".parse::<std::net::Ipv4Addr>().unwrap()]
    );

    // Without `wait`, the answer comes at once.
    let mut quick = lab.lease("192.168.1.51", false);
    assert!(quick.try_recv().expect("answered at once").ok);
}

#[test]
fn a_waiting_request_learns_that_its_reconcile_failed() {
    let mut lab = Lab::start("version 1\n");
    // Someone else's table of the same name appears: nothing can be applied.
    lab.daemon.firewall_mut().kernel_mut().edit("ww", |t| {
        if let Some(t) = t {
            t.owned = false;
        }
    });
    lab.daemon.nftables_changed(lab.now);
    let mut answer = lab.lease("192.168.1.50", true);
    lab.settle();
    let answer = answer.try_recv().expect("answered");
    assert!(!answer.ok);
    assert!(
        answer
            .error
            .as_deref()
            .unwrap_or("")
            .contains("reconcile failed: table inet ww exists but was not made by wasmwall"),
        "{answer:?}"
    );
    assert!(
        lab.daemon
            .status()
            .errors
            .iter()
            .any(|e| e.starts_with("last reconcile failed")),
        "{:?}",
        lab.daemon.status().errors
    );
}

#[test]
fn a_sysctl_changed_by_hand_is_put_back_at_the_next_check() {
    let mut kernel = Fake::new();
    kernel.set_sysctl("net.ipv4.ip_forward", "0");
    let mut lab = Lab::with_kernel("version 1\nsysctl net.ipv4.ip_forward=1\n", kernel);
    assert_eq!(lab.fake().sysctl("net.ipv4.ip_forward"), Some("1"));

    lab.daemon
        .firewall_mut()
        .kernel_mut()
        .set_sysctl("net.ipv4.ip_forward", "0");
    let check = lab.now + SYSCTL_CHECK;
    assert!(lab.daemon.next_deadline().is_some_and(|d| d <= check));
    assert!(lab.daemon.fire_due(check).contains(&Timer::Sysctls));
    lab.daemon.settle(check);
    assert_eq!(lab.fake().sysctl("net.ipv4.ip_forward"), Some("1"));
    let change = lab.daemon.status().last_change.unwrap();
    assert_eq!(
        change.reason,
        "sysctl changed (net.ipv4.ip_forward: 0 -> 1)"
    );
    // Checked again later, with nothing to repair: no reconcile.
    let reconciles = lab.daemon.status().reconciles;
    let later = check + SYSCTL_CHECK;
    lab.daemon.fire_due(later);
    lab.daemon.settle(later);
    assert_eq!(lab.daemon.status().reconciles, reconciles);
}

#[test]
fn status_shows_the_start_and_the_last_change_beside_the_last_check() {
    let mut lab = Lab::start("version 1\n");
    let status = lab.daemon.status();
    let start = status
        .last_change
        .clone()
        .expect("the start changed the kernel");
    assert_eq!(start.reason, "start");
    assert!(start.messages > 0);
    assert_eq!(status.last_reconcile.unwrap().reason, "start");

    // A change notification that was not a change of the table (someone
    // else's batch elsewhere, or one missed after ours): a check that finds
    // nothing to do.
    lab.daemon.nftables_changed(lab.now);
    let later = lab.now + Duration::from_millis(60);
    lab.daemon.fire_due(later);
    lab.daemon.settle(later);
    let status = lab.daemon.status();
    let check = status.last_reconcile.clone().unwrap();
    assert_eq!(
        (check.reason.as_str(), check.messages),
        ("nftables changed", 0)
    );
    assert_eq!(
        status.last_change.clone().unwrap().reason,
        "start",
        "still the start"
    );
    let text = status.render(status.started_at);
    assert!(text.contains("last change: 0 s ago, start: "), "{text}");
    assert!(
        text.contains("last check: 0 s ago, nftables changed: 0 message(s)"),
        "{text}"
    );
}

#[test]
fn leases_told_over_the_socket_are_kept_for_the_next_run() {
    let mut lab = Lab::start("version 1\n");
    drop(lab.lease("192.168.1.60", false));
    lab.settle();
    lab.daemon.finish();
    let kept = lab.path("state/host.ww.leases");
    let text = std::fs::read_to_string(&kept).expect("kept beside the state file");
    assert!(text.contains("192.168.1.60"), "{text}");
    assert!(Path::new(&kept).exists());
}

#[test]
fn a_policy_or_config_whose_sysctl_conflicts_with_an_earlier_policy_is_rejected() {
    let mut kernel = Fake::new();
    kernel.set_sysctl("net.ipv4.ip_forward", "0");
    let mut lab = Lab::with_kernel("version 1\nsysctl net.ipv4.ip_forward=1\n", kernel);
    let two = format!("{CONFIG}[[policy]]\nname = \"q\"\npath = \"q.policy\"\n");

    // A config whose later policy wants another value is not taken.
    lab.write("q.policy", "version 1\nsysctl net.ipv4.ip_forward=0\n");
    lab.write("wasmwall.toml", &two);
    lab.changed("wasmwall.toml");
    assert_eq!(lab.daemon.status().policies.len(), 1);
    let errors = lab.rejected();
    assert!(
        errors[0].contains("new version rejected: policy q: sysctl net.ipv4.ip_forward: wants \"0\", but policy p (earlier in the config) wants \"1\""),
        "{errors:?}"
    );

    // Taken without the conflict; then a new version of q that conflicts is
    // not swapped in, and the running one stays.
    lab.write("q.policy", "version 1\n");
    lab.changed("wasmwall.toml");
    assert_eq!(lab.daemon.status().policies.len(), 2);
    assert!(lab.rejected().is_empty(), "{:?}", lab.rejected());
    lab.write("q.policy", "version 2\nsysctl net.ipv4.ip_forward=0\n");
    lab.changed("q.policy");
    let errors = lab.rejected();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("policy q: new version rejected: sysctl net.ipv4.ip_forward: wants \"0\", but policy p (earlier in the config) wants \"1\"")
            && errors[0].ends_with("; the running version stays"),
        "{errors:?}"
    );
    assert_eq!(lab.fake().sysctl("net.ipv4.ip_forward"), Some("1"));
    assert!(lab.daemon.evaluation().failed.is_empty());
}

fn neighbour(ip: &str, state: NeighbourState) -> Neighbour {
    Neighbour {
        ip: ip.into(),
        mac: "02:00:00:00:00:09".into(),
        iface: "lan0".into(),
        state,
    }
}

/// A reading of the table as `world::read_neighbours` gives it: at most
/// `max`, all counted.
fn reading(
    neighbours: &[Neighbour],
    max: usize,
) -> Result<NeighbourTable, crate::world::WorldError> {
    let mut held = neighbours.to_vec();
    held.sort_by(crate::world::neighbour_order);
    held.truncate(max);
    Ok(NeighbourTable {
        neighbours: held,
        counted: neighbours.len(),
    })
}

impl Lab {
    /// A run of neighbour notifications and the reading after it settled:
    /// what the loop does.
    fn neighbours_notified(&mut self, now: &[Neighbour], max: usize) {
        self.daemon.neighbours_changed(self.now);
        self.daemon
            .neighbours_changed(self.now + Duration::from_millis(1));
        assert!(
            !self.daemon.wants_neighbours(),
            "not before the run settled"
        );
        let settled = self.now + NEIGHBOUR_SETTLE;
        assert!(self.daemon.fire_due(settled).contains(&Timer::Neighbours));
        assert!(self.daemon.wants_neighbours());
        self.daemon.neighbours_read(reading(now, max));
        assert!(!self.daemon.wants_neighbours());
        self.settle();
    }
}

#[test]
fn neighbours_in_a_reading_make_events_and_one_reconcile_and_a_state_change_is_changed() {
    let mut lab = Lab::start("version 1\nneighbours\n");
    assert_eq!(lab.live(), "1 0 [] startup");
    let reconciles = lab.daemon.status().reconciles;
    let table = [
        neighbour("192.168.1.9", NeighbourState::Reachable),
        neighbour("2001:db8:1::9", NeighbourState::Reachable),
        neighbour("fe80::9", NeighbourState::Stale),
    ];
    lab.neighbours_notified(&table, 4096);
    let status = lab.daemon.status();
    assert_eq!(
        status.reconciles,
        reconciles + 1,
        "one reconcile for the run"
    );
    assert_eq!(
        status.last_change.unwrap().reason,
        "3 events (neighbour-added x3)"
    );
    assert_eq!(status.world.neighbours, table);
    assert_eq!(lab.live(), "1 3 [reachable,reachable,stale] added");

    let mut changed = table.clone();
    changed[1].state = NeighbourState::Stale;
    lab.neighbours_notified(&changed, 4096);
    let status = lab.daemon.status();
    assert_eq!(status.reconciles, reconciles + 2);
    assert_eq!(
        status.last_change.unwrap().reason,
        "neighbour-changed lan0 2001:db8:1::9 02:00:00:00:00:09 stale"
    );
    assert_eq!(lab.live(), "1 3 [reachable,stale,stale] changed");

    // The same reading again: nothing to do, no reconcile.
    lab.neighbours_notified(&changed, 4096);
    assert_eq!(lab.daemon.status().reconciles, reconciles + 2);

    lab.neighbours_notified(&changed[..2], 4096);
    assert_eq!(
        lab.daemon.status().last_change.unwrap().reason,
        "neighbour-removed lan0 fe80::9 02:00:00:00:00:09 stale"
    );
    assert_eq!(lab.live(), "1 2 [reachable,stale] removed");
}

#[test]
fn the_neighbours_are_read_again_when_the_interfaces_change_and_at_the_tick() {
    let config = CONFIG.replace("reconcile_interval_s = 0", "reconcile_interval_s = 1");
    let mut lab = Lab::with_config("version 1\n", Fake::new(), &config);
    // The same interfaces: no new reading.
    lab.daemon.interfaces_read(Ok(vec![lan()]));
    assert!(!lab.daemon.wants_neighbours());
    // The same name under another index (deleted and made again).
    lab.daemon
        .interfaces_read(Ok(vec![Interface { index: 7, ..lan() }]));
    assert!(lab.daemon.wants_neighbours());
    lab.daemon.neighbours_read(reading(&[], 4096));
    assert!(!lab.daemon.wants_neighbours());
    // The periodic check reads it too.
    let tick = lab.now + Duration::from_secs(1);
    assert!(lab.daemon.fire_due(tick).contains(&Timer::Tick));
    assert!(lab.daemon.wants_neighbours());
}

#[test]
fn past_the_cap_the_first_neighbours_are_held_and_status_says_so_while_it_lasts() {
    let config = format!("{CONFIG}[neighbours]\nmax = 2\n");
    let mut lab = Lab::with_config("version 1\nneighbours\n", Fake::new(), &config);
    let table = [
        neighbour("192.168.1.9", NeighbourState::Reachable),
        neighbour("192.168.1.10", NeighbourState::Reachable),
        neighbour("2001:db8:1::9", NeighbourState::Stale),
        neighbour("2001:db8:1::a", NeighbourState::Stale),
    ];
    lab.neighbours_notified(&table, 2);
    let status = lab.daemon.status();
    let ips: Vec<&str> = status
        .world
        .neighbours
        .iter()
        .map(|n| n.ip.as_str())
        .collect();
    assert_eq!(ips, ["192.168.1.9", "192.168.1.10"], "the first in order");
    assert_eq!(lab.live(), "1 2 [reachable,reachable] added");
    assert_eq!(
        status.errors,
        [
            "neighbour table: 4 entries, more than `neighbours.max` = 2: \
          only the first 2 (by interface and address) are held and seen by the policies"
        ]
    );
    assert!(status.render(0).contains("neighbour table: 4 entries"));

    lab.neighbours_notified(&table[..2], 2);
    assert!(lab.daemon.status().errors.is_empty(), "gone once it fits");
}

#[test]
fn with_neighbours_disabled_none_are_read() {
    let config = format!(
        "{}[neighbours]\nenabled = false\n",
        CONFIG.replace("reconcile_interval_s = 0", "reconcile_interval_s = 1")
    );
    let mut lab = Lab::with_config("version 1\nneighbours\n", Fake::new(), &config);
    lab.daemon.neighbours_changed(lab.now);
    let later = lab.now + Duration::from_secs(1);
    let due = lab.daemon.fire_due(later);
    assert!(!due.contains(&Timer::Neighbours), "{due:?}");
    assert!(due.contains(&Timer::Tick));
    assert!(!lab.daemon.wants_neighbours(), "not at the tick either");
    lab.daemon
        .interfaces_read(Ok(vec![Interface { index: 7, ..lan() }]));
    assert!(!lab.daemon.wants_neighbours(), "nor after the interfaces");
    lab.daemon.settle(later);
    assert!(lab.daemon.status().world.neighbours.is_empty());
    assert_eq!(lab.live(), "1 0 [] startup");
}
