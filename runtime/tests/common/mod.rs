//! Helpers shared by the real-kernel tests: a private network namespace per
//! test thread (or a skip, saying so, when not root), nft, and rule
//! builders.
#![allow(dead_code)]

use std::io::Write;
use std::process::Command;

use wasmwall::ir::*;
use wasmwall::kernel::Netlink;
use wasmwall::plan::DesiredTable;

pub const TABLE: &str = "wasmwall";

/// Moves the calling thread into a new, empty network namespace and opens
/// the adapter there. Unless the tests run as root, it prints one line
/// saying that the calling test is skipped, and gives `None`: the test
/// returns at once, and passes (Rust tests cannot skip).
pub fn fresh_netns() -> Option<Netlink> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // libtest runs each test on a thread named after it, and keeps what
        // eprintln! prints in a test that passes: straight to stderr, in one
        // write so that the output of tests beside it cannot cut the line.
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let line = format!(
            "skipped: {test} needs root (network namespaces, nftables); run scripts/test as root\n"
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        return None;
    }
    // SAFETY: unshare has no memory-safety preconditions.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed: {}",
        std::io::Error::last_os_error()
    );
    Some(Netlink::new().expect("open the netlink socket"))
}

/// Runs nft in this thread's namespace and returns its output.
pub fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("nft prints UTF-8")
}

pub fn ruleset() -> String {
    nft(&["list", "ruleset"])
}

pub fn ruleset_json() -> String {
    nft(&["-j", "list", "ruleset"])
}

pub fn rule(matches: Vec<Match>, action: Action) -> Rule {
    Rule {
        matches,
        statements: Vec::new(),
        action,
        comment: None,
        cut_flows: false,
    }
}

pub fn counted(mut r: Rule) -> Rule {
    r.statements.insert(0, Statement::Counter);
    r
}

pub fn base(
    hook: Hook,
    chain_type: ChainType,
    priority: i32,
    policy: ChainPolicy,
) -> Option<BaseChain> {
    Some(BaseChain {
        hook,
        chain_type,
        priority,
        policy,
    })
}

pub fn chain(name: &str, base: Option<BaseChain>, rules: Vec<Rule>) -> Chain {
    Chain {
        name: name.into(),
        base,
        rules,
    }
}

pub fn dport(proto: Transport, first: u16, last: u16) -> Match {
    Match::Port {
        dir: Dir::Destination,
        proto,
        first,
        last,
        negate: false,
    }
}

pub fn policy(name: &str, chains: Vec<Chain>, sets: Vec<NamedSet>) -> Vec<PolicyRules> {
    vec![PolicyRules {
        policy: name.into(),
        rules: Ruleset {
            chains,
            sets,
            objects: Vec::new(),
            flowtables: Vec::new(),
            sysctls: vec![],
        },
    }]
}

/// One policy using every kind of match and action the adapter encodes.
pub fn everything() -> Vec<PolicyRules> {
    let input = vec![
        rule(
            vec![Match::CtState(CtStates(
                CtStates::ESTABLISHED | CtStates::RELATED,
            ))],
            Action::Accept,
        ),
        rule(
            vec![Match::AddrInSet {
                dir: Dir::Source,
                family: Family::V4,
                set: "friends".into(),
            }],
            Action::Jump("allowed".into()),
        ),
        counted(rule(
            vec![dport(Transport::Tcp, 1000, 2000)],
            Action::Accept,
        )),
        rule(
            vec![Match::PortInSet {
                dir: Dir::Destination,
                proto: Transport::Udp,
                set: "services".into(),
            }],
            Action::Accept,
        ),
        Rule {
            statements: vec![Statement::Log {
                prefix: Some("ten: ".into()),
                level: None,
                limit: None,
            }],
            ..rule(
                vec![Match::Addr {
                    dir: Dir::Source,
                    net: "10.0.0.0/8".parse().unwrap(),
                    negate: false,
                }],
                Action::Drop,
            )
        },
        rule(
            vec![
                Match::Addr {
                    dir: Dir::Destination,
                    net: "fd00::/8".parse().unwrap(),
                    negate: false,
                },
                dport(Transport::Udp, 53, 53),
            ],
            Action::Accept,
        ),
        rule(
            vec![Match::L4Proto {
                proto: L4Proto::Tcp,
                negate: false,
            }],
            Action::Reject(RejectWith::TcpReset),
        ),
        rule(
            vec![Match::Iifname {
                name: "lan1".into(),
                negate: false,
            }],
            Action::Goto("allowed".into()),
        ),
        rule(vec![dport(Transport::Udp, 5353, 5353)], Action::Continue),
        rule(
            vec![],
            Action::Reject(RejectWith::Icmpx(IcmpxReject::PortUnreachable)),
        ),
    ];
    let allowed = vec![
        rule(
            vec![Match::Iifname {
                name: "lan0".into(),
                negate: true,
            }],
            Action::Return,
        ),
        counted(rule(vec![], Action::Accept)),
    ];
    let prerouting = vec![
        Rule {
            comment: Some("x".into()),
            ..counted(rule(
                vec![
                    Match::Iifname {
                        name: "lan0".into(),
                        negate: false,
                    },
                    Match::Addr {
                        dir: Dir::Source,
                        net: "192.168.0.9/32".parse().unwrap(),
                        negate: true,
                    },
                    dport(Transport::Tcp, 80, 80),
                ],
                Action::Dnat(NatTarget::to("127.0.0.1".parse().unwrap(), Some(4000))),
            ))
        },
        rule(
            vec![
                Match::Addr {
                    dir: Dir::Source,
                    net: "fd00::/64".parse().unwrap(),
                    negate: false,
                },
                dport(Transport::Udp, 53, 53),
            ],
            Action::Dnat(NatTarget::to("fd00::1".parse().unwrap(), Some(5353))),
        ),
    ];
    let postrouting = vec![
        rule(
            vec![Match::Oifname {
                name: "wan0".into(),
                negate: false,
            }],
            Action::Masquerade(None),
        ),
        rule(
            vec![Match::Oifname {
                name: "wan1".into(),
                negate: false,
            }],
            Action::Snat(NatTarget::to("203.0.113.1".parse().unwrap(), None)),
        ),
    ];
    policy(
        "pf",
        vec![
            chain(
                "input",
                base(Hook::Input, ChainType::Filter, 0, ChainPolicy::Drop),
                input,
            ),
            chain("allowed", None, allowed),
            chain(
                "prerouting",
                base(Hook::Prerouting, ChainType::Nat, -100, ChainPolicy::Accept),
                prerouting,
            ),
            chain(
                "postrouting",
                base(Hook::Postrouting, ChainType::Nat, 100, ChainPolicy::Accept),
                postrouting,
            ),
        ],
        vec![
            NamedSet {
                name: "friends".into(),
                elements: SetElements::ipv4(vec![
                    "192.168.0.2".parse().unwrap(),
                    "192.168.0.3".parse().unwrap(),
                ]),
            },
            NamedSet {
                name: "services".into(),
                elements: SetElements::ports(vec![53, 123]),
            },
        ],
    )
}

/// `everything()` as the planner sees it.
pub fn desired() -> DesiredTable {
    DesiredTable::from_policies(&everything())
}

/// `nft list table` of the runtime's table, as the runtime's text prints
/// it: without the table's comment, with each counter's numbers and each
/// element's time to expire left out (they are the kernel's, not the
/// policy's): a rule's `counter packets N bytes M`, a counter object's line
/// `packets N bytes M`, an element's `expires 59s980ms`.
pub fn listed_as_text() -> String {
    let listing = nft(&["list", "table", "inet", TABLE]);
    let mut out = String::new();
    for line in listing.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("comment \"managed by wasmwall") || is_counter_numbers(trimmed) {
            continue;
        }
        out.push_str(&without_expiry(&without_counts(line)));
        out.push('\n');
    }
    out
}

/// `10.0.0.1 expires 59s980ms, 10.0.0.2` -> `10.0.0.1, 10.0.0.2`.
fn without_expiry(line: &str) -> String {
    let mut out = String::new();
    let mut words = line.split(' ').peekable();
    while let Some(word) = words.next() {
        if word == "expires"
            && let Some(time) = words.next()
        {
            // What followed the time (a comma) stays with the element.
            out.pop();
            out.push_str(time.trim_start_matches(|c: char| c.is_ascii_alphanumeric()));
            if words.peek().is_some() {
                out.push(' ');
            }
            continue;
        }
        out.push_str(word);
        if words.peek().is_some() {
            out.push(' ');
        }
    }
    out
}

/// `packets 12 bytes 3456`, a counter object's numbers.
fn is_counter_numbers(line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    matches!(words.as_slice(), ["packets", p, "bytes", b]
        if p.parse::<u64>().is_ok() && b.parse::<u64>().is_ok())
}

/// `counter packets 12 bytes 3456` -> `counter`.
fn without_counts(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        out.push(words[i]);
        if words[i].ends_with("counter")
            && words.get(i + 1) == Some(&"packets")
            && words.get(i + 3) == Some(&"bytes")
        {
            i += 5;
        } else {
            i += 1;
        }
    }
    out.join(" ")
}

/// What every construct must do in the real kernel (call in a
/// [`fresh_netns`]): the kernel takes `policies`' table; `nft list table`
/// prints exactly the runtime's text of it; it reads back as applied, so
/// a second plan sends nothing; and a hand edit of each rule (deleting it
/// with nft) is seen and repaired, back to the same listing.
pub fn round_trip(kernel: &mut Netlink, policies: &[PolicyRules]) {
    use wasmwall::kernel::Kernel;
    use wasmwall::plan;

    let desired = DesiredTable::from_policies(policies);
    let text = plan::table_text(TABLE, policies);
    kernel
        .apply(&plan::replace_table(TABLE, &desired), None)
        .unwrap_or_else(|e| panic!("the kernel refused the table: {e}\n{text}"));
    assert_eq!(listed_as_text(), text, "nft lists the table otherwise");

    let plan_now = |kernel: &mut Netlink| {
        let seen = kernel.observe(TABLE).expect("observe the table");
        plan::plan(TABLE, &desired, seen.table.as_ref()).expect("plan")
    };
    let again = plan_now(kernel);
    assert!(
        again.ops.is_empty(),
        "a second apply would send: {:?}",
        again.ops
    );

    for chain in &desired.chains {
        for (i, _) in chain.rules.iter().enumerate() {
            let handles = rule_handles(&chain.name.to_string());
            let handle = handles[i].to_string();
            nft(&[
                "delete",
                "rule",
                "inet",
                TABLE,
                &chain.name.to_string(),
                "handle",
                &handle,
            ]);
            let repair = plan_now(kernel);
            assert!(
                !repair.ops.is_empty(),
                "rule {} of {} deleted by hand, and nothing to repair",
                i + 1,
                chain.name
            );
            kernel.apply(&repair, None).expect("repair");
            assert_eq!(listed_as_text(), text, "after repairing a hand edit");
            assert!(plan_now(kernel).ops.is_empty(), "repaired for good");
        }
    }
}

/// The handles of a chain's rules, in order, from `nft -a`.
fn rule_handles(chain: &str) -> Vec<u64> {
    let listing = nft(&["-a", "list", "chain", "inet", TABLE, chain]);
    listing
        .lines()
        .filter(|l| !l.trim_start().starts_with("chain "))
        .filter_map(|l| l.rsplit_once("# handle ").map(|(_, h)| h.trim()))
        .filter_map(|h| h.parse().ok())
        .collect()
}
