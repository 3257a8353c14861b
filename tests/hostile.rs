//! Hostile and broken policies, against the real binary and a real kernel:
//! whatever a policy does, wasmwall stays up, logs one error naming the
//! policy and the cause, keeps that policy's last known good rules in the
//! kernel, and applies the others.
//!
//! The policies are the test fixtures in `tests/policies/hostile*` (one component
//! whose `attack` config key picks the misbehaviour, one that forges its
//! answer at the ABI level, two built against other WIT worlds) and files
//! made here (not wasm, a core module, a truncated component, a missing
//! file). Each runs as the policy `hostile` next to the port-forward policy
//! `good`, in a namespace made for the test, after a first apply of
//! `attack = "none"` gave `hostile` rules of its own to keep.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Child, Netns, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir, policy_wasm, repo_root,
    skip_unless_root, temp_dir, toml_path, toml_string, wait_until, wasmwall_in,
    without_counter_values,
};

const TABLE: &str = "inet wasmwall";
/// The limits the test config sets (not the defaults, to show they are
/// configurable; the defaults are in SECURITY.md).
const DEADLINE_MS: u64 = 100;
const MEMORY_MIB: u64 = 32;
const MAX_RULES: usize = 1000;
const MAX_SET_ELEMENTS: usize = 500;
const LOG_LINES: usize = 20;
const MAX_CHAINS: usize = 100;
const MAX_BASE_CHAINS: usize = 8;
const MAX_SETS: usize = 50;
const MAX_ELEMENTS: usize = 2000;
/// An apply loads two small policies (from the compile cache) and runs them
/// for at most the deadline each; the rest is slack for a loaded machine.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The end of the error line the runtime logs for a failed policy.
const KEPT: &str = "its last known good rules stay in the kernel, the other policies go on";

/// What the hostile policy is made of in one case.
#[derive(Clone, Copy)]
enum Source {
    /// `target/policies/hostile.wasm` with `attack` and more settings.
    Attack(&'static str, &'static [(&'static str, &'static str)]),
    /// Another built fixture, e.g. "hostile-forged", with settings.
    Component(&'static str, &'static [(&'static str, &'static str)]),
    /// A file made by the test.
    File(BadFile),
}

#[derive(Clone, Copy)]
enum BadFile {
    NotWasm,
    CoreModule,
    Truncated,
    Missing,
}

/// How the apply must end.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// The policy fails: exit 1, an error line with every fragment.
    Fails(&'static [&'static str]),
    /// The policy answers (its floods are capped): exit 0.
    Answers,
}

struct Case {
    name: &'static str,
    source: Source,
    expect: Expect,
}

const fn case(name: &'static str, source: Source, fragments: &'static [&'static str]) -> Case {
    Case {
        name,
        source,
        expect: Expect::Fails(fragments),
    }
}

const fn attack(name: &'static str, fragments: &'static [&'static str]) -> Case {
    case(name, Source::Attack(name, &[]), fragments)
}

/// Every hostile case. The fragments are what the error line must say
/// besides the policy's name.
const CASES: &[Case] = &[
    // Time.
    attack("loop", &["exceeded its deadline of 100ms"]),
    attack("busy-wait", &["exceeded its deadline of 100ms"]),
    attack(
        "sleep",
        &[
            "`wasi:clocks/monotonic-clock#subscribe-duration`",
            "sleep or wait",
        ],
    ),
    // Memory and stack.
    attack("memory", &["exceeded its memory cap of 32 MiB"]),
    attack("stack", &["policy trapped", "call stack exhausted"]),
    // Rust keeps big locals on a stack in linear memory, below its data.
    attack(
        "stack-frames",
        &["policy trapped", "out of bounds memory access"],
    ),
    // Huge output.
    case(
        "rules (2,000,000)",
        Source::Attack("rules", &[]),
        &["exceeded its memory cap of 32 MiB"],
    ),
    case(
        "rules (1,500)",
        Source::Attack("rules", &[("count", "1500")]),
        &["the ruleset has 1500 rules; the limit is 1000"],
    ),
    case(
        "set elements (600)",
        Source::Attack("elements", &[("count", "600")]),
        &["set \"many\": has 600 elements; the limit is 500"],
    ),
    case(
        "string (1.5 GiB)",
        Source::Attack("string", &[]),
        &["exceeded its memory cap of 32 MiB"],
    ),
    case(
        "string (1 MiB comment)",
        Source::Attack("string", &[("count", "1048576")]),
        &["comment is 1048576 bytes long; at most 127 allowed"],
    ),
    case(
        "forged answer (500,000 x 16 MiB)",
        Source::Component(
            "hostile-forged",
            &[("count", "500000"), ("bytes", "16777216")],
        ),
        &["too much data is being copied between the host and the guest"],
    ),
    // Traps.
    attack(
        "panic",
        &["policy trapped", "wasm `unreachable` instruction executed"],
    ),
    attack(
        "trap",
        &["policy trapped", "wasm `unreachable` instruction executed"],
    ),
    attack(
        "exit",
        &["policy trapped: the policy called exit (status 1)"],
    ),
    attack(
        "refuse",
        &["policy returned an error: the hostile policy refuses on purpose"],
    ),
    case(
        "refuse (16 MiB message)",
        Source::Attack("refuse", &[("count", "16777216")]),
        &["policy returned an error: rrrrrrrrrr", "rrrr... (cut)"],
    ),
    // No capabilities.
    case(
        "snoop",
        // `target` is set to the secret file by the test.
        Source::Attack("snoop", &[]),
        &[
            "policy returned an error: snoop: environment []; arguments []",
            "/etc/passwd: error: No such file or directory",
            "create /tmp/wasmwall-hostile-was-here: Err(",
        ],
    ),
    attack(
        "socket",
        &[
            "`wasi:sockets/tcp-create-socket@0.2.6#create-tcp-socket`",
            "which the sandbox does not provide",
        ],
    ),
    // Floods: capped, and the answer is used.
    Case {
        name: "log-flood",
        // 1,000 lines, 50 times the cap (the default, 10,000, costs a debug
        // build a good part of the deadline).
        source: Source::Attack("log-flood", &[("count", "1000")]),
        expect: Expect::Answers,
    },
    // 4 MiB, 256 times the capture: the cap is what is tested. The policy's
    // default, 100 MiB of failing writes, takes a debug build about half
    // the 100 ms deadline on an idle machine, and more than all of it on a
    // busy one.
    Case {
        name: "stdout-flood",
        source: Source::Attack("stdout-flood", &[("count", "4194304")]),
        expect: Expect::Answers,
    },
    // Invalid rules.
    attack(
        "bad-prefix",
        &["chain \"bad\" rule 1 match 1: prefix \"10.1.2.3/8\" has host bits set"],
    ),
    attack(
        "bad-address",
        &["\"300.1.2.3\" is not an IPv4 or IPv6 address or prefix"],
    ),
    attack("port-zero", &["port 0 is not a valid port"]),
    attack(
        "long-ifname",
        &[
            "interface name \"a-very-long-interface-nam\" is 25 bytes long; interface names are at most 15 bytes",
        ],
    ),
    attack(
        "missing-chain",
        &["chain \"bad\" rule 1: jump to unknown chain \"nowhere\""],
    ),
    attack("jump-loop", &["jump loop: ping -> pong -> ping"]),
    attack("unknown-set", &["unknown set \"nosuch\""]),
    attack(
        "dnat-in-filter",
        &[
            "dnat is only allowed in nat chains on prerouting or output, but this rule runs in: filter input",
        ],
    ),
    attack(
        "sysctl-kernel",
        &["sysctl key \"kernel.core_pattern\" is not under `net.`"],
    ),
    attack(
        "sysctl-path-trick",
        &["sysctl key \"net/../../kernel/core_pattern\" is not under `net.`"],
    ),
    attack(
        "sysctl-not-allowed",
        &["sysctl key \"net.core.rmem_max\" is not on the allow-list"],
    ),
    // What the kernel would refuse (and refuse the whole batch for).
    attack(
        "deep-jumps",
        &[
            "chain \"deep16\": reached through 16 nested jumps or gotos (bad -> deep1 -> deep2 -> ... -> deep14 -> deep15 -> deep16); the kernel allows at most 15",
        ],
    ),
    case(
        "deep gotos",
        Source::Attack("deep-jumps", &[("target", "goto")]),
        &["chain \"deep16\": reached through 16 nested jumps or gotos"],
    ),
    attack(
        "priority",
        &[
            "chain \"early-nat\": a nat chain needs a priority above -200 (connection tracking runs at -200); this one has -2147483648",
        ],
    ),
    case(
        "priority with the policy's offset",
        Source::Attack(
            "priority",
            &[("count", "-150"), ("priority_offset", "-100")],
        ),
        &[
            "chain \"early-nat\", with the policy's priority_offset -100: a nat chain needs a priority above -200",
            "this one has -250",
        ],
    ),
    case(
        "many-matches (25)",
        Source::Attack("many-matches", &[("count", "25")]),
        &["chain \"bad\" rule 1: has 25 matches; at most 24 allowed"],
    ),
    case(
        "sysctl value beyond an int",
        Source::Attack(
            "sysctl",
            &[
                ("target", "net.ipv4.conf.lan0.forwarding"),
                ("count", "99999999999999999999"),
            ],
        ),
        &[
            "sysctl 1: net.ipv4.conf.lan0.forwarding: sysctl value \"99999999999999999999\" is not a number",
        ],
    ),
    case(
        "sysctl of a missing interface",
        Source::Attack("sysctl", &[("target", "net.ipv4.conf.nosuch0.forwarding")]),
        &[
            "sysctl net.ipv4.conf.nosuch0.forwarding: cannot read /proc/sys/net/ipv4/conf/nosuch0/forwarding: No such file or directory",
        ],
    ),
    // Sysctls: a flood refused by its count alone (5,000 keys, which the
    // fixture makes well within this config's deadline of 100 ms; 60,000 in
    // `sysctl_floods_are_refused_by_their_count_alone`), and values in
    // forms the kernel rewrites, taken (their convergence is shown by
    // `values_the_kernel_rewrites_converge`).
    case(
        "sysctl-flood (5,000)",
        Source::Attack("sysctl-flood", &[("count", "5000")]),
        &["the ruleset has 5000 sysctls; the limit is 1024"],
    ),
    Case {
        name: "sysctl-noncanonical",
        source: Source::Attack("sysctl-noncanonical", &[]),
        expect: Expect::Answers,
    },
    // Two numbers for a key of one: the kernel keeps the first, which no
    // reconcile could converge on.
    case(
        "sysctl the kernel keeps in part",
        Source::Attack(
            "sysctl",
            &[
                ("target", "net.ipv4.conf.lan0.send_redirects"),
                ("count", "1 2"),
            ],
        ),
        &[
            "sysctl net.ipv4.conf.lan0.send_redirects: cannot set /proc/sys/net/ipv4/conf/lan0/send_redirects: the kernel holds \"1\" after \"1 2\" was written",
        ],
    ),
    // Reaching into another policy's objects.
    case(
        "foreign-chain",
        Source::Attack("foreign-chain", &[("target", "good/input")]),
        &["invalid chain name \"good/input\""],
    ),
    case(
        "jump-foreign",
        Source::Attack("jump-foreign", &[("target", "good/input")]),
        &["jump to unknown chain \"good/input\""],
    ),
    case(
        "foreign-set",
        Source::Attack("foreign-set", &[("target", "good/sources")]),
        &["unknown set \"good/sources\""],
    ),
    // Text that escapes: nft syntax in what nft lists, and forged lines
    // and terminal escapes in what wasmwall shows (the log checks of every
    // case look for those too).
    case(
        "comment-inject",
        Source::Attack("strings", &[("comments", COMMENT_INJECT)]),
        &["chain \"strings-in\" rule 1: comment has '\"' at byte 12; comments are printable ASCII"],
    ),
    case(
        "ifname-quote",
        Source::Attack("strings", &[("ifnames", "lan\"0")]),
        &["chain \"strings-in\" rule 1 match 1: interface name \"lan\\\"0\" has '\"'"],
    ),
    case(
        "log prefix with a variable",
        Source::Attack("strings", &[("prefixes", "in $lan: ")]),
        &["chain \"strings-in\" rule 1 statement 1: log prefix has '$' at byte 3"],
    ),
    case(
        "comment with an escape",
        Source::Attack("strings", &[("comments", "\u{1b}]0;owned\u{7}")]),
        &["comment has '\\u{1b}' at byte 0"],
    ),
    Case {
        name: "log-forge",
        source: Source::Attack("log-forge", &[]),
        expect: Expect::Answers,
    },
    Case {
        name: "stdout-ansi",
        source: Source::Attack("stdout-ansi", &[]),
        expect: Expect::Answers,
    },
    attack(
        "refuse-ansi",
        &[
            "policy returned an error: no\\n2000-01-01T00:00:00.000000Z ERROR",
            "policy=\"good\"\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{1b}[1;31m\\u{202e}\\u{9b}2J",
        ],
    ),
    // Not a policy component.
    case(
        "wrong types",
        Source::Component("hostile-wrong-types", &[]),
        &[
            "cannot load",
            "does not fit the wasmwall:policy world",
            "type mismatch for field first: expected `u16` found `u32`",
        ],
    ),
    case(
        "wrong world",
        Source::Component("hostile-wrong-world", &[]),
        &["cannot load", "no export `evaluate` found"],
    ),
    case(
        "not wasm",
        Source::File(BadFile::NotWasm),
        &[
            "cannot load",
            "is not a policy component: it is not a WebAssembly file",
        ],
    ),
    case(
        "core module",
        Source::File(BadFile::CoreModule),
        &[
            "cannot load",
            "is a core WebAssembly module; build the policy for wasm32-wasip2",
        ],
    ),
    case(
        "truncated",
        Source::File(BadFile::Truncated),
        &[
            "cannot load",
            "is not a valid WebAssembly component",
            "failed to parse",
        ],
    ),
    case(
        "missing file",
        Source::File(BadFile::Missing),
        &[
            "cannot load",
            "cannot read policy file",
            "No such file or directory",
        ],
    ),
    // Kernel-object budgets, per policy: each refused before anything is
    // sent, by counting.
    case(
        "chains (2,000)",
        Source::Attack("chains", &[]),
        &["the ruleset has 2002 chains; the limit is 100 (limits.max_chains)"],
    ),
    case(
        "base chains (1,021)",
        Source::Attack("base-chains", &[]),
        &["the ruleset has 1022 base chains; the limit is 8 (limits.max_base_chains)"],
    ),
    case(
        "sets (1,000)",
        Source::Attack("sets", &[]),
        &["the ruleset has 1001 sets; the limit is 50 (limits.max_sets)"],
    ),
    case(
        "elements over all sets (10 x 400)",
        Source::Attack("elements-total", &[]),
        &[
            "the ruleset has 4002 set elements (all its sets together); the limit is 2000 (limits.max_elements)",
        ],
    ),
];

/// The comment of issue 12: a quote ends it in `nft list ruleset`, and
/// what follows would make `nft -f` of the listing create a table and a
/// base chain of the policy's choosing (108 bytes, under the 127 allowed).
const COMMENT_INJECT: &str = "backup-proof\" accept; }} table inet evil { chain c { type filter hook input priority -400; policy drop; }} #";

/// A router namespace with a LAN interface, wasmwall's config and state in
/// a temporary directory, and a secret the policies must never see.
struct Lab {
    router: Netns,
    // wasmwall starts from here (see `wasmwall_in`).
    launcher: Netns,
    config: PathBuf,
    state_dir: PathBuf,
    secret: String,
    secret_file: PathBuf,
    /// Lines of a `[table_budget]` section, if the test wants one.
    table_budget: Option<&'static str>,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let launcher = Netns::new("launcher");
        router.add_interface("lan0", "192.168.0.9/24");
        // A table of someone else's, which nothing here may touch.
        router.run(["nft", "add", "table", "inet", "other"]);
        router.run([
            "nft",
            "add",
            "chain",
            "inet",
            "other",
            "input",
            "{ type filter hook input priority 0; }",
        ]);
        router.run([
            "nft", "add", "rule", "inet", "other", "input", "tcp", "dport", "9", "drop",
        ]);
        let secret = format!("wasmwall-secret-{}-{}", std::process::id(), nanos());
        let secret_file = dir.path().join("secret.txt");
        fs::write(&secret_file, format!("{secret}-in-a-file\n")).expect("write the secret file");
        Lab {
            config: dir.path().join("wasmwall.toml"),
            state_dir: dir.path().join("state"),
            router,
            launcher,
            secret,
            secret_file,
            table_budget: None,
            dir,
        }
    }

    /// The policy file and config lines of `source`, under the name `name`.
    fn policy_toml(&self, name: &str, source: Source) -> String {
        let (path, settings): (PathBuf, Vec<(String, String)>) = match source {
            Source::Attack(attack, extra) => {
                let mut settings = vec![("attack".to_string(), attack.to_string())];
                if attack == "snoop" {
                    settings.push(("target".into(), self.secret_file.display().to_string()));
                }
                settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                (policy_wasm("hostile"), settings)
            }
            Source::Component(file, extra) => (
                policy_wasm(file),
                extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            Source::File(bad) => (self.bad_file(bad), Vec::new()),
        };
        let mut toml = format!(
            "[[policy]]\nname = {}\npath = {}\n",
            toml_string(name),
            toml_path(&path)
        );
        // `priority_offset` belongs to the policy's table, not its config.
        let (offset, config): (Vec<_>, Vec<_>) = settings
            .into_iter()
            .partition(|(key, _)| key == "priority_offset");
        for (key, value) in offset {
            toml.push_str(&format!("{key} = {value}\n"));
        }
        toml.push_str("[policy.config]\n");
        for (key, value) in config {
            toml.push_str(&format!("{key} = {}\n", toml_string(&value)));
        }
        toml
    }

    fn bad_file(&self, bad: BadFile) -> PathBuf {
        let path = self.dir.path().join(match bad {
            BadFile::NotWasm => "not-wasm.wasm",
            BadFile::CoreModule => "core-module.wasm",
            BadFile::Truncated => "truncated.wasm",
            BadFile::Missing => "missing.wasm",
        });
        let bytes: Option<Vec<u8>> = match bad {
            BadFile::NotWasm => Some(b"[[policy]]\nname = \"oops\"\n".to_vec()),
            // The smallest valid core module: a header and nothing else.
            BadFile::CoreModule => Some(b"\0asm\x01\0\0\0".to_vec()),
            BadFile::Truncated => {
                let whole = fs::read(policy_wasm("hostile")).expect("read hostile.wasm");
                Some(whole[..whole.len() / 3].to_vec())
            }
            BadFile::Missing => None,
        };
        if let Some(bytes) = bytes {
            fs::write(&path, bytes).expect("write a bad policy file");
        }
        path
    }

    /// Writes the config: the hostile policies first (so that `good`
    /// comes after a failure), then `good` forwarding `port`.
    fn configure(&self, hostile: &[(String, Source)], port: u16) {
        self.configure_in_order(hostile, port, false);
    }

    /// As [`Lab::configure`], with `good` first when `good_first`.
    fn configure_in_order(&self, hostile: &[(String, Source)], port: u16, good_first: bool) {
        let good = format!(
            "[[policy]]\nname = \"good\"\npath = {}\n[policy.config]\nlan_interface = \"lan0\"\nlisten_port = {port}\n",
            toml_path(&policy_wasm("port-forward"))
        );
        let mut toml = format!(
            "table = \"wasmwall\"\n\
             state_dir = {state_dir}\n\
             reconcile_interval_s = 0\n\
             \n\
             [cache]\n\
             dir = {cache}\n\
             \n\
             [limits]\n\
             deadline_ms = {DEADLINE_MS}\n\
             memory_mib = {MEMORY_MIB}\n\
             max_rules = {MAX_RULES}\n\
             max_set_elements = {MAX_SET_ELEMENTS}\n\
             log_lines = {LOG_LINES}\n\
             max_chains = {MAX_CHAINS}\n\
             max_base_chains = {MAX_BASE_CHAINS}\n\
             max_sets = {MAX_SETS}\n\
             max_elements = {MAX_ELEMENTS}\n\
             \n",
            state_dir = toml_path(&self.state_dir),
            cache = toml_path(&compile_cache_dir()),
        );
        if let Some(lines) = self.table_budget {
            toml.push_str(&format!("[table_budget]\n{lines}\n"));
        }
        if good_first {
            toml.push_str(&good);
            toml.push('\n');
        }
        for (name, source) in hostile {
            toml.push_str(&self.policy_toml(name, *source));
            toml.push('\n');
        }
        if !good_first {
            toml.push_str(&good);
        }
        fs::write(&self.config, toml).expect("write wasmwall.toml");
    }

    /// `wasmwall SUBCOMMAND` on the router, with the secret in its
    /// environment.
    fn wasmwall(&self, subcommand: &str) -> Command {
        let mut cmd = wasmwall_in(&self.launcher, &self.router, subcommand, &self.config);
        cmd.env("WASMWALL_TEST_SECRET", &self.secret);
        cmd
    }

    /// Runs `wasmwall apply` to its end, within [`APPLY_TIMEOUT`].
    fn apply(&self, label: &str) -> Finished {
        let started = Instant::now();
        let mut child = Child::spawn(&mut self.wasmwall("apply"), self.dir.path(), label);
        let status = child.wait_timeout(APPLY_TIMEOUT);
        Finished {
            status,
            elapsed: started.elapsed(),
            stderr: child.stderr(),
        }
    }

    fn listing(&self) -> String {
        self.router.run(["nft", "list", "ruleset"]).stdout
    }
}

struct Finished {
    status: ExitStatus,
    elapsed: Duration,
    stderr: String,
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The chains and sets of `policy` in the listing, as listed (counter
/// values removed): what must not change while the policy fails.
fn objects_of(listing: &str, policy: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in listing.lines() {
        let trimmed = line.trim();
        if !inside {
            inside = [format!("chain {policy}/"), format!("set {policy}/")]
                .iter()
                .any(|start| trimmed.starts_with(start.as_str()))
                && trimmed.ends_with('{');
        }
        if inside {
            out.push_str(&without_counter_values(trimmed));
            out.push('\n');
            inside = trimmed != "}";
        }
    }
    out
}

/// The `table` block of the listing, counter values removed.
fn table_block(listing: &str, table: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in listing.lines() {
        if line == format!("table {table} {{") {
            inside = true;
        }
        if inside {
            out.push_str(&without_counter_values(line));
            out.push('\n');
            inside = line != "}";
        }
    }
    out
}

/// Panics, showing the listing, unless it has every one of `chains`.
fn assert_chains(listing: &str, chains: &[&str]) {
    for chain in chains {
        assert!(
            listing.contains(&format!("chain {chain} {{")),
            "no chain {chain}\n{listing}"
        );
    }
}

/// Whether some statement of `chain` in the listing holds every fragment.
fn chain_has(listing: &str, chain: &str, fragments: &[&str]) -> bool {
    let mut inside = false;
    for line in listing.lines().map(str::trim) {
        if line == format!("chain {chain} {{") {
            inside = true;
        } else if inside && line == "}" {
            return false;
        } else if inside && fragments.iter().all(|f| line.contains(f)) {
            return true;
        }
    }
    false
}

/// The log lines that report `policy` as failed: their message (after
/// the target's `: `) starts with `policy NAME: `, not just has it
/// somewhere (the text attacks put a forged one in theirs).
fn failure_lines<'a>(log: &'a str, policy: &str) -> Vec<&'a str> {
    let prefix = format!("policy {policy}: ");
    log.lines()
        .filter(|l| {
            l.contains(" ERROR ")
                && l.split_once(": ")
                    .is_some_and(|(_, message)| message.starts_with(&prefix))
                && l.contains(KEPT)
        })
        .collect()
}

/// What no log may hold, whatever a policy did: a raw control or format
/// character (a terminal would act on it), a line of a policy's text that
/// starts a log line of its own, or a failure line that a policy other than
/// `good` made look like `good`'s.
fn check_log_text(log: &str, policy: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let raw: BTreeSet<String> = log
        .chars()
        .filter(|&c| wasmwall::text::must_escape(c) && c != '\n')
        .map(|c| format!("{c:?}"))
        .collect();
    if !raw.is_empty() {
        wrong.push(format!("raw control characters in the log: {raw:?}"));
    }
    if let Some(forged) = log.lines().find(|l| l.starts_with("2000-01-01")) {
        wrong.push(format!("a forged log line: {forged}"));
    }
    if policy != "good" && !failure_lines(log, "good").is_empty() {
        wrong.push(format!(
            "the log has a failure line of the policy good: {:?}",
            failure_lines(log, "good")
        ));
    }
    wrong
}

/// Checks what one policy's case must show in the log; a description of
/// each thing wrong.
fn check_log(case: &Case, policy: &str, log: &str, lab: &Lab) -> Vec<String> {
    let mut wrong = Vec::new();
    let lines = failure_lines(log, policy);
    match case.expect {
        Expect::Fails(fragments) => {
            if lines.len() != 1 {
                wrong.push(format!(
                    "expected one error line for policy {policy}, found {}",
                    lines.len()
                ));
            }
            if let Some(line) = lines.first() {
                for fragment in fragments {
                    if !line.contains(fragment) {
                        wrong.push(format!("the error line lacks {fragment:?}: {line}"));
                    }
                }
                if line.len() > 4096 {
                    wrong.push(format!("the error line is {} bytes long", line.len()));
                }
            }
        }
        Expect::Answers if !lines.is_empty() => {
            wrong.push(format!("policy {policy} should not fail: {lines:?}"));
        }
        Expect::Answers => {}
    }
    wrong.extend(check_log_text(log, policy));
    // What the cases of a kind show besides.
    match case.name {
        "panic"
            if !log.contains("policy wrote to stdout/stderr")
                || !log.contains("the hostile policy panics on purpose") =>
        {
            wrong.push("the panic message is not in the log".into());
        }
        "log-flood" => {
            let flood = log
                .lines()
                .filter(|l| l.contains(&format!("policy=\"{policy}\"")) && l.contains("yyyyyyyyyy"))
                .collect::<Vec<_>>();
            if flood.len() != LOG_LINES {
                wrong.push(format!(
                    "{} flood lines logged; the cap is {LOG_LINES}",
                    flood.len()
                ));
            }
            if flood.iter().any(|l| l.len() > 4096 + 200) {
                wrong.push("a flood line is longer than the 4 KiB cap".into());
            }
            if !log.contains("policy reached its log limit") {
                wrong.push("no line says the log limit was reached".into());
            }
        }
        "log-forge" | "stdout-ansi" => {
            let said = if case.name == "log-forge" {
                "\"hello\\n2000-01-01"
            } else {
                "output=\"out\\n2000-01-01"
            };
            let shown = log
                .lines()
                .find(|l| l.contains(said) && l.contains(&format!("policy=\"{policy}\"")));
            // Quoted: the forged field is there only with its quotes escaped.
            match shown {
                None => wrong.push(format!("no log line of {policy} shows {said:?} escaped")),
                Some(l) if !l.contains(r#"policy=\"good\"\u{1b}]0;owned\u{7}"#) => {
                    wrong.push(format!("the forged text is not escaped in quotes: {l}"));
                }
                Some(_) => {}
            }
        }
        "stdout-flood" => {
            let captured: Vec<&str> = log.lines().filter(|l| l.contains("zzzzzzzzzz")).collect();
            let bytes: usize = captured.iter().map(|l| l.len()).sum();
            if captured.is_empty() || bytes > 16 * 1024 + 1024 {
                wrong.push(format!(
                    "{bytes} bytes of stdout logged; the capture holds 16 KiB"
                ));
            }
        }
        "snoop" => {
            if log.contains(&lab.secret) {
                wrong.push("the secret reached the log".into());
            }
            if Path::new("/tmp/wasmwall-hostile-was-here").exists() {
                wrong.push("the policy created /tmp/wasmwall-hostile-was-here".into());
            }
        }
        _ => {}
    }
    wrong
}

#[test]
fn each_hostile_policy_fails_alone_under_apply() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").ok();
    let baseline_source = Source::Attack("none", &[]);

    // Last known good: both policies applied, each in its own chains.
    lab.configure(&[("hostile".into(), baseline_source)], 80);
    let first = lab.apply("apply-baseline");
    assert!(
        first.status.success(),
        "the first apply failed\n{}",
        first.stderr
    );
    let listing = lab.listing();
    let baseline = objects_of(&listing, "hostile");
    assert_chains(
        &listing,
        &[
            "hostile/input",
            "hostile/audit",
            "good/input",
            "good/prerouting",
        ],
    );
    assert!(baseline.contains("set hostile/trusted {"), "{baseline}");
    assert!(
        chain_has(&listing, "good/prerouting", &["tcp dport 80", "dnat"]),
        "{listing}"
    );
    let other_table = table_block(&listing, "inet other");
    assert!(other_table.contains("tcp dport 9 drop"), "{listing}");

    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        // A new port each time: the good policy's change shows it went on.
        let port = 8000 + i as u16;
        lab.configure(&[("hostile".into(), case.source)], port);
        let done = lab.apply(&format!("apply-{i}"));
        eprintln!(
            "{:<34} exit {:?} after {:?}: {}",
            case.name,
            done.status.code(),
            done.elapsed,
            failure_lines(&done.stderr, "hostile")
                .first()
                .map_or("(no failure)", |l| l
                    .split_once("policy hostile: ")
                    .map_or(*l, |(_, cause)| cause))
        );
        let mut wrong = Vec::new();

        let expected_code = match case.expect {
            Expect::Fails(_) => 1,
            Expect::Answers => 0,
        };
        if done.status.code() != Some(expected_code) {
            wrong.push(format!(
                "apply ended with {} instead of exit code {expected_code}",
                done.status
            ));
        }
        if done.elapsed > Duration::from_secs(10) {
            wrong.push(format!("apply took {:?}", done.elapsed));
        }
        if done.stderr.len() > 512 * 1024 {
            wrong.push(format!("{} bytes of log", done.stderr.len()));
        }
        wrong.extend(check_log(case, "hostile", &done.stderr, &lab));

        let listing = lab.listing();
        let now = objects_of(&listing, "hostile");
        if now != baseline {
            wrong.push(format!(
                "the hostile policy's rules changed\n--- before ---\n{baseline}--- after ---\n{now}"
            ));
        }
        if !chain_has(
            &listing,
            "good/prerouting",
            &[&format!("tcp dport {port}"), "dnat"],
        ) {
            wrong.push(format!(
                "the good policy's forward of port {port} is not applied"
            ));
        }
        if table_block(&listing, "inet other") != other_table {
            wrong.push("the table inet other changed".into());
        }

        if !wrong.is_empty() {
            failures.push(format!(
                "case {:?}:\n  - {}\n--- log ---\n{}",
                case.name,
                wrong.join("\n  - "),
                tail(&done.stderr, 4000)
            ));
        }
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").ok(),
        core_pattern,
        "kernel.core_pattern changed"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// Base chains take slots of the kernel's hooks, which every table in the
/// namespace shares (1024 per hook): a policy may have `max_base_chains`,
/// and the table `table_budget.base_chains_per_hook` on each hook, so other
/// tools always find slots. Before these budgets, 1,021 empty base chains
/// on input made the kernel refuse every later base chain on that hook,
/// wasmwall's and other tables' alike.
#[test]
fn base_chains_cannot_use_up_the_slots_of_a_hook() {
    if skip_unless_root() {
        return;
    }
    let mut lab = Lab::new();
    lab.table_budget = Some("base_chains_per_hook = 20");
    // 7 and the last known good `input`: 8 input base chains each.
    let eight = Source::Attack("base-chains", &[("count", "7")]);
    let hostile: Vec<(String, Source)> = ["h1", "h2", "h3"]
        .iter()
        .map(|n| (n.to_string(), eight))
        .collect();
    lab.configure(&hostile, 80);
    let done = lab.apply("apply-hooks");
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let h3 = failure_lines(&done.stderr, "h3");
    assert_eq!(h3.len(), 1, "one line for h3\n{}", done.stderr);
    assert!(
        h3[0].contains("the table would hold 24 base chains on the input hook; its budget is 20 (table_budget.base_chains_per_hook)")
            && h3[0].contains(KEPT),
        "{}",
        h3[0]
    );
    for policy in ["h1", "h2", "good"] {
        assert!(
            failure_lines(&done.stderr, policy).is_empty(),
            "{policy} failed\n{}",
            done.stderr
        );
    }
    let listing = lab.listing();
    let chains_of = |policy: &str| {
        listing
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("chain {policy}/")))
            .count()
    };
    assert_eq!(chains_of("h1"), 9, "{listing}");
    assert_eq!(chains_of("h2"), 9, "{listing}");
    assert_eq!(chains_of("h3"), 0, "{listing}");
    assert!(
        chain_has(&listing, "good/prerouting", &["tcp dport 80", "dnat"]),
        "{listing}"
    );
    // Another tool still finds slots on the hook.
    lab.router.run([
        "nft",
        "add",
        "chain",
        "inet",
        "other",
        "late",
        "{ type filter hook input priority 5; }",
    ]);
}

/// One daemon, every hostile policy at once: it starts, applies the good
/// policy, keeps every hostile one's rules, stays up and repairing, and
/// cleans up on SIGTERM.
#[test]
fn one_daemon_survives_every_hostile_policy_at_once() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let names: Vec<String> = (0..CASES.len()).map(|i| format!("h{i}")).collect();
    let none = Source::Attack("none", &[]);
    lab.configure(
        &names.iter().map(|n| (n.clone(), none)).collect::<Vec<_>>(),
        80,
    );
    let first = lab.apply("apply-baseline");
    assert!(
        first.status.success(),
        "the baseline apply failed\n{}",
        first.stderr
    );
    let listing = lab.listing();
    let baselines: Vec<String> = names.iter().map(|n| objects_of(&listing, n)).collect();
    assert!(
        baselines.iter().all(|b| b.contains("/trusted {")),
        "{listing}"
    );

    lab.configure(
        &names
            .iter()
            .zip(CASES)
            .map(|(n, case)| (n.clone(), case.source))
            .collect::<Vec<_>>(),
        8080,
    );
    let started = Instant::now();
    let mut daemon = Child::spawn(&mut lab.wasmwall("run"), lab.dir.path(), "wasmwall-run");
    daemon.wait_until_running(START_TIMEOUT);
    let start_time = started.elapsed();

    let log = daemon.stderr();
    let listing = lab.listing();
    let mut wrong = Vec::new();
    for ((name, case), baseline) in names.iter().zip(CASES).zip(&baselines) {
        for w in check_log(case, name, &log, &lab) {
            wrong.push(format!("{name} ({}): {w}", case.name));
        }
        if &objects_of(&listing, name) != baseline {
            wrong.push(format!("{name} ({}): its rules changed", case.name));
        }
    }
    assert!(
        chain_has(&listing, "good/prerouting", &["tcp dport 8080", "dnat"]),
        "the good policy is not applied\n{listing}"
    );
    assert!(
        wrong.is_empty(),
        "{}\n--- log ---\n{}",
        wrong.join("\n"),
        tail(&log, 8000)
    );

    // What `wasmwall status` shows of them, as text and as JSON, holds no
    // raw control character and no line a policy started.
    for args in [&["status"][..], &["status", "--json"]] {
        let mut cmd = lab.wasmwall(args[0]);
        cmd.args(&args[1..]);
        let shown = wasmwall_e2e::run_unchecked(&mut cmd);
        assert_eq!(shown.status.code(), Some(2), "{args:?}: {}", shown.stderr);
        assert!(
            shown.stdout.contains("FORGED"),
            "{args:?} does not show the refusal\n{}",
            shown.stdout
        );
        let wrong = check_log_text(&shown.stdout, "status");
        assert!(wrong.is_empty(), "{args:?}: {wrong:?}\n{}", shown.stdout);
    }

    // Still up, and still doing its job: a hand edit is repaired.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        daemon.try_status().is_none(),
        "`wasmwall run` exited\n{daemon}"
    );
    let before_edit = table_block(&lab.listing(), TABLE);
    lab.router.run([
        "nft",
        "add",
        "rule",
        "inet",
        "wasmwall",
        "good/input",
        "tcp",
        "dport",
        "23",
        "accept",
    ]);
    wait_until(
        "`wasmwall run` to repair a hand edit",
        Duration::from_secs(10),
        || {
            let now = table_block(&lab.listing(), TABLE);
            if now == before_edit { Ok(()) } else { Err(now) }
        },
    );

    daemon.stop_cleanly(STOP_TIMEOUT);
    let after = lab.listing();
    assert!(
        !after.contains(&format!("table {TABLE}")),
        "table left behind\n{after}"
    );
    assert!(
        after.contains("table inet other"),
        "the other table is gone\n{after}"
    );
    assert!(
        start_time < Duration::from_secs(30),
        "starting with {} hostile policies took {start_time:?}",
        CASES.len()
    );
}

/// Validation's limits are the kernel's: what it lets through at each limit
/// the kernel takes (a chain 15 jumps and gotos deep, a rule of 24 matches,
/// a nat chain at -199), so no policy can get the whole batch refused.
#[test]
fn the_kernel_takes_what_validation_lets_through_at_its_limits() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    lab.configure(
        &[
            (
                "jumps".into(),
                Source::Attack("deep-jumps", &[("count", "15")]),
            ),
            (
                "gotos".into(),
                Source::Attack("deep-jumps", &[("count", "15"), ("target", "goto")]),
            ),
            (
                "matches".into(),
                Source::Attack("many-matches", &[("count", "24")]),
            ),
            (
                "nat".into(),
                Source::Attack("priority", &[("count", "-199")]),
            ),
        ],
        80,
    );
    let done = lab.apply("apply-limits");
    assert!(done.status.success(), "{}", done.stderr);
    let listing = lab.listing();
    assert_chains(
        &listing,
        &[
            "jumps/deep15",
            "gotos/deep15",
            "matches/bad",
            "nat/early-nat",
            "good/prerouting",
        ],
    );
    assert!(listing.contains("priority -199;"), "{listing}");
}

/// Every attack the fixture knows (its `ATTACKS` table) has a case here.
#[test]
fn every_attack_of_the_fixture_has_a_case() {
    let source = fs::read_to_string(repo_root().join("tests/policies/hostile/src/lib.rs"))
        .expect("read the hostile policy's source");
    let start = source.find("pub const ATTACKS").expect("the ATTACKS table");
    let end = start + source[start..].find("];").expect("its end");
    let attacks: BTreeSet<&str> = source[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    let covered: BTreeSet<&str> = CASES
        .iter()
        .filter_map(|c| match c.source {
            Source::Attack(a, _) => Some(a),
            _ => None,
        })
        .chain(["none"])
        .chain(ATTACKS_WITH_A_TEST_OF_THEIR_OWN.iter().copied())
        .collect();
    let missing: Vec<&&str> = attacks.difference(&covered).collect();
    assert!(attacks.len() > 20, "{attacks:?}");
    assert!(missing.is_empty(), "attacks without a case: {missing:?}");
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

// Sysctls: who holds a key, what an `all` write changes, values the kernel
// rewrites, and the cost of a policy at the cap.

/// Attacks shown by a test of their own rather than a case of [`CASES`]
/// (a case runs the hostile policy before `good`).
const ATTACKS_WITH_A_TEST_OF_THEIR_OWN: &[&str] = &["sysctl-conflict"];

const LAN_LOCALNET: &str = "net/ipv4/conf/lan0/route_localnet";

/// `wasmwall eval` of the sysctl flood of `count` keys, with a deadline
/// long enough for the fixture to make them: its output and duration.
fn eval_flood(count: &str) -> (wasmwall_e2e::Output, Duration) {
    let started = Instant::now();
    let out = wasmwall_e2e::run_unchecked(
        Command::new(wasmwall_e2e::wasmwall_bin())
            .arg("eval")
            .arg(policy_wasm("hostile"))
            .args(["--set", "attack=sysctl-flood", "--set"])
            .arg(format!("count={count}"))
            .args(["--deadline-ms", "5000", "--memory-mib", "256"])
            .arg("--cache-dir")
            .arg(compile_cache_dir()),
    );
    (out, started.elapsed())
}

#[test]
fn sysctl_floods_are_refused_by_their_count_alone() {
    let (flood, took) = eval_flood("60000");
    println!("eval of 60,000 sysctls: {took:?}");
    assert_eq!(flood.status.code(), Some(1), "{flood}");
    assert!(
        flood
            .stderr
            .contains("1 problem(s) in the returned ruleset\n  - the ruleset has 60000 sysctls; the limit is 1024\n"),
        "{flood}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // At the cap, every key is checked, and taken.
    let (at_cap, took) = eval_flood("1024");
    assert!(at_cap.success(), "{at_cap}");
    assert_eq!(
        at_cap.stdout.matches("sysctl net.").count(),
        1024,
        "{at_cap}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// `wasmwall SUBCOMMAND` on the router, run to its end.
fn wasmwall_output(lab: &Lab, subcommand: &str) -> wasmwall_e2e::Output {
    wasmwall_e2e::run_unchecked(&mut lab.wasmwall(subcommand))
}

#[test]
fn a_sysctl_an_earlier_policy_holds_fails_the_later_policy_alone() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let none = Source::Attack("none", &[]);
    lab.configure_in_order(&[("hostile".into(), none)], 80, true);
    let first = lab.apply("apply-baseline");
    assert!(first.status.success(), "{}", first.stderr);
    assert_eq!(
        lab.router.sysctl(LAN_LOCALNET),
        "1",
        "good's route_localnet"
    );
    let baseline = objects_of(&lab.listing(), "hostile");

    let conflict = Source::Attack("sysctl-conflict", &[]);
    lab.configure_in_order(&[("hostile".into(), conflict)], 8080, true);
    let expected = "policy hostile: sysctl net.ipv4.conf.lan0.route_localnet: wants \"0\", but policy good (earlier in the config) wants \"1\"; the earlier policy keeps the key";
    let done = lab.apply("apply-conflict");
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let lines = failure_lines(&done.stderr, "hostile");
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    assert!(lines[0].contains(expected), "{}", lines[0]);
    assert_eq!(
        lab.router.sysctl(LAN_LOCALNET),
        "1",
        "the earlier policy keeps it"
    );
    let listing = lab.listing();
    assert_eq!(
        objects_of(&listing, "hostile"),
        baseline,
        "last known good kept"
    );
    assert!(
        chain_has(&listing, "good/prerouting", &["tcp dport 8080", "dnat"]),
        "{listing}"
    );

    // `plan` shows it.
    let plan = wasmwall_output(&lab, "plan");
    assert!(plan.stderr.contains(expected), "{plan}");

    // So does the daemon, once; and clean-up on SIGTERM restores the value
    // found before the first apply.
    let mut daemon = Child::spawn(&mut lab.wasmwall("run"), lab.dir.path(), "wasmwall-run");
    daemon.wait_until_running(START_TIMEOUT);
    assert_eq!(lab.router.sysctl(LAN_LOCALNET), "1");
    daemon.stop_cleanly(STOP_TIMEOUT);
    let log = daemon.stderr();
    let lines = failure_lines(&log, "hostile");
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains(expected), "{}", lines[0]);
    assert_eq!(lab.router.sysctl(LAN_LOCALNET), "0", "restored at clean-up");
}

#[test]
fn values_the_kernel_rewrites_converge() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let odd = Source::Attack("sysctl-noncanonical", &[]);
    lab.configure(&[("hostile".into(), odd)], 80);
    let first = lab.apply("apply-noncanonical");
    assert!(first.status.success(), "{}", first.stderr);
    for (key, value) in [
        ("net/ipv4/conf/lan0/forwarding", "1"),
        ("net/ipv4/conf/lan0/accept_local", "1"),
        ("net/ipv4/conf/lan0/rp_filter", "0"),
        ("net/ipv4/conf/lan0/proxy_arp", "1"),
    ] {
        assert_eq!(lab.router.sysctl(key), value, "{key}");
    }
    let plan = wasmwall_output(&lab, "plan");
    assert!(
        plan.status.success() && plan.stderr.contains("nothing to change"),
        "{plan}"
    );
    let again = lab.apply("apply-again");
    assert!(again.status.success(), "{}", again.stderr);
    assert!(
        again.stderr.contains("reconciled: nothing to change")
            && !again.stderr.contains("sysctls set:"),
        "{}",
        again.stderr
    );
}

/// Every `forwarding` of the router's interfaces (and `all`, `default`),
/// `ip_forward` and `all.accept_redirects`, as `path:value` lines.
fn forwarding_values(router: &Netns) -> String {
    router
        .run([
            "sh",
            "-c",
            "grep -H . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/accept_redirects \
             /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding",
        ])
        .stdout
}

#[test]
fn clean_up_puts_back_every_interface_an_all_forwarding_write_changed() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    lab.router.add_interface("wan0", "10.9.0.1/24");
    lab.router.add_interface("wan1", "10.9.1.1/24");
    for key in [
        "net.ipv4.conf.lan0.forwarding=1",
        "net.ipv6.conf.lan0.forwarding=1",
        "net.ipv6.conf.wan1.forwarding=1",
        "net.ipv4.conf.default.forwarding=1",
    ] {
        lab.router.run(["sysctl", "-qw", key]);
    }
    let found = forwarding_values(&lab.router);
    let all = |family: &str| {
        Source::Attack(
            "sysctl",
            if family == "ipv4" {
                &[("target", "net.ipv4.conf.all.forwarding")]
            } else {
                &[("target", "net.ipv6.conf.all.forwarding")]
            },
        )
    };
    lab.configure(
        &[("fwd4".into(), all("ipv4")), ("fwd6".into(), all("ipv6"))],
        80,
    );

    // `wasmwall apply`, then `wasmwall cleanup`; an interface removed in
    // between is skipped.
    let applied = lab.apply("apply-forwarding");
    assert!(applied.status.success(), "{}", applied.stderr);
    let on = forwarding_values(&lab.router);
    assert!(
        on.contains("conf/wan0/forwarding:1") && on.contains("ipv6/conf/wan0/forwarding:1"),
        "the kernel spread the writes\n{on}"
    );
    lab.router.run(["ip", "link", "del", "wan1"]);
    let without_wan1: String = found
        .lines()
        .filter(|l| !l.contains("/wan1"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cleanup = wasmwall_output(&lab, "cleanup");
    assert!(cleanup.success(), "{cleanup}");
    assert_eq!(forwarding_values(&lab.router), without_wan1, "{cleanup}");

    // `wasmwall run` and SIGTERM.
    lab.router.add_interface("wan1", "10.9.1.1/24");
    lab.router
        .run(["sysctl", "-qw", "net.ipv6.conf.wan1.forwarding=1"]);
    let found = forwarding_values(&lab.router);
    let mut daemon = Child::spawn(&mut lab.wasmwall("run"), lab.dir.path(), "wasmwall-run");
    daemon.wait_until_running(START_TIMEOUT);
    assert!(
        forwarding_values(&lab.router).contains("ipv4/conf/wan0/forwarding:1"),
        "{daemon}"
    );
    daemon.stop_cleanly(STOP_TIMEOUT);
    assert_eq!(forwarding_values(&lab.router), found, "{daemon}");
}

/// What `wasmwall apply` of a policy asking for as many sysctls as the
/// default cap allows, and as many as the highest cap a config may set,
/// costs, all of them keys that exist (SECURITY.md has the figures).
#[test]
fn a_policy_at_the_sysctl_cap_applies_quickly() {
    if skip_unless_root() {
        return;
    }
    // 10 allow-listed keys per interface: the veth pairs and lo and lan0
    // give more than the cap.
    for (cap, pairs) in [(1024, 103), (16_384, 820)] {
        let lab = Lab::new();
        lab.router.run([
            "sh",
            "-c",
            &format!(
                "for i in $(seq 1 {pairs}); do ip link add c$i type veth peer name c$i-p || exit 1; done"
            ),
        ]);
        let count = cap.to_string();
        let at_cap = Source::Attack("sysctl-flood", &[]);
        lab.configure(&[("hostile".into(), at_cap)], 80);
        // The count, the cap, and a deadline the fixture makes 16,384 keys in
        // on a loaded machine.
        let toml = fs::read_to_string(&lab.config)
            .unwrap()
            .replace(
                "deadline_ms = 100\n",
                &format!("deadline_ms = 2000\nmax_sysctls = {cap}\n"),
            )
            .replace(
                "attack = \"sysctl-flood\"\n",
                &format!("attack = \"sysctl-flood\"\ncount = \"{count}\"\n"),
            );
        fs::write(&lab.config, toml).unwrap();
        let first = lab.apply("apply-at-cap");
        assert!(first.status.success(), "{}", first.stderr);
        assert!(!first.stderr.contains("nosuch"), "only keys that exist");
        let again = lab.apply("apply-at-cap-again");
        assert!(again.status.success(), "{}", again.stderr);
        let cleanup = wasmwall_output(&lab, "cleanup");
        assert!(cleanup.success(), "{cleanup}");
        // The reconcile alone (the time a daemon's loop is busy with it).
        let reconcile_us =
            |log: &str| wasmwall_e2e::logged_field(log, "elapsed_us").map(str::to_string);
        println!(
            "apply of {cap} sysctls: {:?} (first, writing them; reconcile {:?} us), {:?} (again, nothing to write; reconcile {:?} us)",
            first.elapsed,
            reconcile_us(&first.stderr),
            again.elapsed,
            reconcile_us(&again.stderr)
        );
        assert!(
            first.elapsed < Duration::from_secs(10) && again.elapsed < Duration::from_secs(10),
            "{:?} {:?}",
            first.elapsed,
            again.elapsed
        );
    }
}
