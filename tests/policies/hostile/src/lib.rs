//! TEST FIXTURE, NOT AN EXAMPLE. A policy that misbehaves on purpose, in the
//! way its `attack` config key names, so that `tests/hostile.rs` can show
//! the runtime survives it, reports it, and keeps the policy's last known
//! good rules. Never run it outside a test.
//!
//! Config keys:
//! - `attack`: what to do (default "none"); see [`ATTACKS`].
//! - `count`: how many rules, set elements or bytes the size attacks make
//!   (each has its own default, big enough to hit the runtime's limits).
//! - `target`: the file, chain or set some attacks aim at.
//!
//! With `attack = "none"` it returns a small valid ruleset: a filter base
//! chain `input` with a few rules, a regular chain `audit` it jumps to, and
//! an address set `trusted`. The tests apply that first, so that the
//! kernel holds something that must survive every later attack unchanged.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, Event, Hook, Level, NamedSet, Policy, Rule, Ruleset, WorldState,
};

/// Every attack, with what it does.
pub const ATTACKS: &[(&str, &str)] = &[
    ("none", "a small valid ruleset (the last known good one)"),
    ("loop", "an endless loop"),
    ("busy-wait", "spins reading the clock for an hour"),
    ("sleep", "sleeps for an hour through WASI"),
    (
        "memory",
        "allocates 1 MiB blocks until the memory cap stops it",
    ),
    ("stack", "unbounded recursion"),
    (
        "stack-frames",
        "unbounded recursion with 64 KiB frames on the shadow stack in linear memory",
    ),
    ("rules", "`count` rules (default 2,000,000)"),
    ("elements", "a set of `count` ports (default 100,000)"),
    (
        "string",
        "a rule comment of `count` bytes (default 2 GiB - 1, the most one wasm32 allocation can ask for)",
    ),
    ("panic", "panics"),
    ("trap", "executes `unreachable`"),
    ("exit", "calls exit(3)"),
    ("snoop", "looks for environment, arguments and files"),
    ("socket", "opens TCP and UDP sockets"),
    (
        "log-flood",
        "logs `count` lines of 10,000 bytes (default 10,000), then answers as `none`",
    ),
    (
        "stdout-flood",
        "prints `count` bytes (default 100 MiB), whatever the writes return, then answers as `none`",
    ),
    (
        "refuse",
        "returns an error of `count` bytes (default: a short one)",
    ),
    (
        "deep-jumps",
        "a path of `count` regular chains, each jumping (`target = \"goto\"`: going) to the next (default 16)",
    ),
    (
        "priority",
        "base chains (filter input, nat prerouting) at priority `count`",
    ),
    (
        "many-matches",
        "a rule of `count` matches (default 24), prefixes and port ranges, with a counter and a log prefix",
    ),
    ("bad-prefix", "a prefix with host bits set"),
    ("bad-address", "an address that is not one"),
    ("port-zero", "a rule matching port 0"),
    ("long-ifname", "an interface name of 26 bytes"),
    ("missing-chain", "a jump to a chain that does not exist"),
    ("jump-loop", "chains that jump to each other"),
    ("unknown-set", "a match on a set that does not exist"),
    ("dnat-in-filter", "a DNAT rule in a filter chain"),
    ("sysctl-kernel", "asks for kernel.core_pattern"),
    (
        "sysctl-path-trick",
        "asks for net/../../kernel/core_pattern",
    ),
    ("sysctl-not-allowed", "asks for net.core.rmem_max"),
    (
        "sysctl",
        "asks for the allowed sysctl `target` with the value `count` (default 1)",
    ),
    (
        "foreign-chain",
        "a chain named after another policy's (`target`)",
    ),
    (
        "jump-foreign",
        "a jump to another policy's chain (`target`)",
    ),
    ("foreign-set", "a match on another policy's set (`target`)"),
    // Kernel-object budgets.
    ("chains", "`count` empty regular chains (default 2,000)"),
    (
        "base-chains",
        "`count` empty base chains on the input hook (default 1,021: what used up the kernel's slots of the hook)",
    ),
    ("sets", "`count` sets of one port each (default 1,000)"),
    (
        "elements-total",
        "`count` sets of 400 ports each (default 10), each within the per-set limit",
    ),
    (
        "budget",
        "`count` percent (default 100) of every default budget of the table at once, in rules of 24 matches with a counter, a 127-byte log prefix and a 127-byte comment; `target = \"b\"` gives another answer of the same size, `target = \"ports\"` its elements in sets of 4,096 ports (for `kernel-memory`)",
    ),
    // Text that escapes (issue 12, class 3).
    (
        "strings",
        "the last known good ruleset and a rule per line of the config's `comments`, `prefixes` (log prefixes) and `ifnames` (an iifname rule in `strings-in`, an oifname rule in `strings-out`)",
    ),
    (
        "log-forge",
        "logs a line holding a newline, a forged failure line of the policy `good` and terminal escapes, then answers as `none`",
    ),
    (
        "stdout-ansi",
        "prints the forged line and terminal escapes of `log-forge` to stdout, then answers as `none`",
    ),
    (
        "refuse-ansi",
        "returns an error holding the forged line and terminal escapes of `log-forge`",
    ),
    (
        "sysctl-flood",
        "asks for `count` sysctls (default 60,000): every allow-listed key of each interface, then of made-up ones",
    ),
    (
        "sysctl-conflict",
        "asks for net.ipv4.conf.lan0.route_localnet = 0, which the port-forward policy wants at 1",
    ),
    (
        "sysctl-noncanonical",
        "asks for values in forms the kernel rewrites: \" 1\", \"01\", \"-0\", \"1\\t\" on lan0",
    ),
];

/// What the text attacks write after a word of their own: a new line, a
/// whole failure line in the name of the policy `good` (with a date no real
/// line has), a terminal title change, a screen clear, a colour, a bidi
/// override and a C1 CSI.
pub const FORGED: &str = "\n2000-01-01T00:00:00.000000Z ERROR wasmwall::engine::evaluate: policy good: FORGED; its last known good rules stay in the kernel, the other policies go on policy=\"good\"\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[1;31m\u{202e}\u{9b}2J";

struct Hostile;

impl Policy for Hostile {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        let attack = config.get_or("attack", "none");
        let count = |default: u64| config.parse_or("count", default);
        let target = config.get_or("target", "");
        match attack {
            "none" => Ok(last_known_good()),
            "sysctl-flood" => Ok(sysctl_flood(state, count(60_000)?)),
            "loop" => endless_loop(),
            "busy-wait" => {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(3600) {
                    black_box(());
                }
                Ok(last_known_good())
            }
            "sleep" => {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(last_known_good())
            }
            "memory" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    blocks.push(vec![0x5a; 1 << 20]);
                    black_box(&blocks);
                }
            }
            "stack-frames" => Ok(Ruleset::new().chain(
                Chain::regular("deep")
                    .rule(Rule::new().comment(recurse_big(0).to_string()).accept()),
            )),
            "stack" => Ok(Ruleset::new().chain(
                Chain::regular("deep").rule(Rule::new().comment(recurse(0).to_string()).accept()),
            )),
            "rules" => {
                let n = count(2_000_000)?;
                let rules = (0..n).map(|i| Rule::new().tcp_dport(1 + (i % 65_535) as u16).accept());
                Ok(Ruleset::new().chain(Chain::filter("input", Hook::Input, 0).extend(rules)))
            }
            "elements" => {
                let n = count(100_000)?;
                let ports = (0..n).map(|i| 1 + (i % 65_535) as u16);
                Ok(last_known_good().set(NamedSet::ports("many", ports)))
            }
            "chains" => {
                let n = count(2_000)?;
                Ok((0..n).fold(last_known_good(), |r, i| {
                    r.chain(Chain::regular(format!("c{i}")))
                }))
            }
            "base-chains" => {
                let n = count(1_021)?;
                Ok((0..n).fold(last_known_good(), |r, i| {
                    r.chain(Chain::filter(format!("b{i}"), Hook::Input, 0))
                }))
            }
            "sets" => {
                let n = count(1_000)?;
                Ok((0..n).fold(last_known_good(), |r, i| {
                    r.set(NamedSet::ports(format!("s{i}"), [1 + (i % 65_535) as u16]))
                }))
            }
            "elements-total" => {
                let n = count(10)?;
                Ok((0..n).fold(last_known_good(), |r, i| {
                    r.set(NamedSet::ports(format!("e{i}"), 1..=400))
                }))
            }
            "budget" => Ok(budget(count(100)?, &target)),
            "string" => {
                // Larger, and the guest's own allocator gives up before asking the host.
                let n = usize::try_from(count(3 << 29)?).map_err(|e| e.to_string())?;
                let comment = "x".repeat(n);
                Ok(Ruleset::new().chain(
                    Chain::filter("input", Hook::Input, 0)
                        .rule(Rule::new().comment(comment).accept()),
                ))
            }
            "panic" => panic!("the hostile policy panics on purpose"),
            "trap" => trap(),
            "exit" => std::process::exit(3),
            "snoop" => Err(snoop(target)),
            "socket" => Err(open_sockets()),
            "log-flood" => {
                let line = "y".repeat(10_000);
                for _ in 0..count(10_000)? {
                    wasmwall_sdk::log(Level::Error, &line);
                }
                Ok(last_known_good())
            }
            "stdout-flood" => {
                use std::io::Write;
                let block = [b'z'; 64 * 1024];
                let mut stdout = std::io::stdout();
                let mut left = count(100 << 20)?;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    // Past the runtime's capture buffer the writes fail; go on.
                    let _ = stdout.write_all(&block[..n]);
                    left -= n as u64;
                }
                Ok(last_known_good())
            }
            "log-forge" => {
                wasmwall_sdk::log(Level::Warn, &format!("hello{FORGED}"));
                Ok(last_known_good())
            }
            "stdout-ansi" => {
                println!("out{FORGED}");
                Ok(last_known_good())
            }
            "refuse-ansi" => Err(format!("no{FORGED}")),
            "strings" => Ok(strings(config)),
            "refuse" => match config.get("count") {
                None => Err("the hostile policy refuses on purpose".into()),
                Some(_) => Err("r".repeat(usize::try_from(count(0)?).map_err(|e| e.to_string())?)),
            },
            other => other_ruleset(other, config),
        }
    }
}

wasmwall_sdk::export_policy!(Hostile);

/// `percent` of each default budget of the whole table (20,000 rules,
/// 2,000 chains of which 64 base chains on each of the 5 hooks, 1,000 sets,
/// 200,000 elements) at once: at 100, the largest table the defaults allow
/// (given per-policy limits raised to the table's). `variant` "b": other
/// values, the same size; "ports": the elements in sets of 4,096 ports (the
/// most a set of ports may hold), the slowest kind for the kernel to load.
fn budget(percent: u64, variant: &str) -> Ruleset {
    let shift: u64 = if variant == "b" { 1 } else { 0 };
    let chains = (20 * percent).max(1);
    let base_chains = 320 * percent / 100;
    let rules = 200 * percent;
    let sets = 10 * percent;
    let hooks = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];
    let rule = |i: u64| {
        let a = (i * 2 + shift) as u32;
        let mut r = Rule::new().ct_state_established_related();
        for k in 0..11u32 {
            let v = a.wrapping_mul(11).wrapping_add(k);
            r = r
                .not_saddr(format!("10.{}.{}.{}/32", v >> 16 & 255, v >> 8 & 255, v & 255))
                .not_daddr(format!("172.{}.{}.{}/32", v >> 16 & 255, v >> 8 & 255, v & 255));
        }
        r.tcp_dport(1 + (i % 65_000) as u16)
            .counter()
            .log(format!("budget {i:0>119} "))
            .comment(format!("{:0>127}", i + shift))
            .accept()
    };
    let mut out = Ruleset::new();
    let per_chain = rules.div_ceil(chains);
    let mut made = 0;
    for c in 0..chains {
        let mut chain = if c < base_chains {
            Chain::filter(format!("b{c}"), hooks[(c % 5) as usize], c as i32)
        } else {
            Chain::regular(format!("c{c}"))
        };
        while made < rules && made < (c + 1) * per_chain {
            chain = chain.rule(rule(made));
            made += 1;
        }
        out = out.chain(chain);
    }
    if variant == "ports" {
        let elements = 2_000 * percent;
        for s in 0..elements / 4_096 {
            out = out.set(NamedSet::ports(format!("p{s}"), 1..=4_096));
        }
        return out;
    }
    for s in 0..sets {
        let addrs = (0..200u64).map(|e| {
            let v = s * 200 + e + shift * 1_000_000;
            format!("2001:db8:{:x}:{:x}::{:x}", v >> 32, v >> 16 & 0xffff, v & 0xffff)
        });
        out = out.set(NamedSet::ipv6(format!("s{s}"), addrs));
    }
    out
}

fn last_known_good() -> Ruleset {
    let input = Chain::filter("input", Hook::Input, 0)
        .policy(ChainPolicy::Accept)
        .rule(Rule::new().ct_state_established_related().accept())
        .rule(
            Rule::new()
                .saddr_in("trusted")
                .tcp_dport(22)
                .counter()
                .accept(),
        )
        .rule(Rule::new().jump("audit"));
    let audit = Chain::regular("audit")
        .rule(
            Rule::new()
                .tcp_dport(23)
                .counter()
                .comment("no telnet")
                .drop(),
        )
        .rule(Rule::new().return_());
    Ruleset::new()
        .chain(input)
        .chain(audit)
        .set(NamedSet::ipv4("trusted", ["10.0.0.1", "10.0.0.2"]))
}

/// The last known good ruleset with a rule for each string the config
/// gives, one per line of its value: what `tests/nft_text.rs` lists and
/// loads back, and what the hostile cases put a quote into.
fn strings(config: &Config) -> Ruleset {
    let lines = |key: &str| -> Vec<String> {
        config
            .get(key)
            .map(|v| v.split('\n').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut input = Chain::filter("strings-in", Hook::Input, 0);
    for comment in lines("comments") {
        input = input.rule(Rule::new().comment(comment).accept());
    }
    for prefix in lines("prefixes") {
        input = input.rule(Rule::new().log(prefix).accept());
    }
    let mut output = Chain::filter("strings-out", Hook::Output, 0);
    for name in lines("ifnames") {
        input = input.rule(Rule::new().iifname(name.clone()).accept());
        output = output.rule(Rule::new().oifname(name).accept());
    }
    last_known_good().chain(input).chain(output)
}

/// `count` sysctls, each asked once with the value 1: the allow-listed keys
/// of every interface there is, then of interfaces that are not.
fn sysctl_flood(state: &WorldState, count: u64) -> Ruleset {
    const LEAVES: &[(&str, &str)] = &[
        ("ipv4", "forwarding"),
        ("ipv4", "route_localnet"),
        ("ipv4", "rp_filter"),
        ("ipv4", "accept_local"),
        ("ipv4", "accept_redirects"),
        ("ipv4", "send_redirects"),
        ("ipv4", "proxy_arp"),
        ("ipv6", "forwarding"),
        ("ipv6", "accept_ra"),
        ("ipv6", "accept_redirects"),
    ];
    let real = state.interfaces.iter().map(|i| i.name.replace('.', "/"));
    let made_up = (0..).map(|i| format!("nosuch{i}"));
    let keys = real.chain(made_up).flat_map(|name| {
        LEAVES
            .iter()
            .map(move |(family, leaf)| format!("net.{family}.conf.{name}.{leaf}"))
    });
    keys.take(count as usize)
        .fold(last_known_good(), |ruleset, key| ruleset.sysctl(key, "1"))
}

fn endless_loop() -> ! {
    let mut i = 0u64;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Never returns: every call goes one deeper. Not a tail call, so each
/// level keeps a frame on the engine's stack.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    1 + black_box(recurse(depth + 1))
}

/// As [`recurse`], with a big local array that lives in linear memory.
fn recurse_big(depth: u64) -> u64 {
    let mut frame = [0u8; 64 * 1024];
    frame[(depth % 1024) as usize] = depth as u8;
    if black_box(depth) == u64::MAX {
        return 0;
    }
    u64::from(black_box(&frame)[7]) + black_box(recurse_big(depth + 1))
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Everything a policy could learn about the host: environment, arguments,
/// working directory, files. The report goes back as the policy's error.
fn snoop(target: &str) -> String {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir().map(|d| d.display().to_string());
    let mut report = format!("snoop: environment {vars:?}; arguments {args:?}; cwd {cwd:?}");
    let mut paths = vec!["/etc/passwd", "/proc/self/environ", "/", ".", "/run/netns"];
    if !target.is_empty() {
        paths.push(target);
    }
    for path in paths {
        let outcome = match std::fs::read(path) {
            Ok(bytes) => format!(
                "read {} bytes: {}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => match std::fs::read_dir(path) {
                Ok(entries) => format!("listed {} entries", entries.count()),
                Err(_) => format!("error: {e}"),
            },
        };
        report.push_str(&format!("; {path}: {outcome}"));
    }
    let created = std::fs::write("/tmp/wasmwall-hostile-was-here", b"x");
    report.push_str(&format!(
        "; create /tmp/wasmwall-hostile-was-here: {created:?}"
    ));
    report
}

/// Reached only if opening sockets does not trap.
fn open_sockets() -> String {
    let tcp = std::net::TcpStream::connect("127.0.0.1:22").map(|_| "connected");
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").map(|_| "bound");
    let listen = std::net::TcpListener::bind("0.0.0.0:8999").map(|_| "listening");
    format!("socket: tcp connect {tcp:?}; udp bind {udp:?}; tcp listen {listen:?}")
}

/// The valid ruleset with one thing added, as `attack` names: something
/// invalid, or something the kernel might refuse.
fn other_ruleset(attack: &str, config: &Config) -> Result<Ruleset, String> {
    let target = config.get_or("target", "");
    let in_input =
        |rule: Rule| Ok(last_known_good().chain(Chain::filter("bad", Hook::Input, 0).rule(rule)));
    let sysctl = |key: &str| Ok(last_known_good().sysctl(key, "1"));
    match attack {
        "bad-prefix" => in_input(Rule::new().saddr("10.1.2.3/8").accept()),
        "bad-address" => in_input(Rule::new().daddr("300.1.2.3").accept()),
        "port-zero" => in_input(Rule::new().tcp_dport(0).accept()),
        "long-ifname" => in_input(Rule::new().iifname("a-very-long-interface-nam").accept()),
        "missing-chain" => in_input(Rule::new().jump("nowhere")),
        "jump-loop" => Ok(last_known_good()
            .chain(Chain::regular("ping").rule(Rule::new().jump("pong")))
            .chain(Chain::regular("pong").rule(Rule::new().goto("ping")))
            .chain(Chain::filter("bad", Hook::Input, 0).rule(Rule::new().jump("ping")))),
        "unknown-set" => in_input(Rule::new().saddr_in("nosuch").accept()),
        "dnat-in-filter" => in_input(Rule::new().tcp_dport(80).dnat("127.0.0.1:4000")),
        "sysctl-kernel" => sysctl("kernel.core_pattern"),
        "sysctl-path-trick" => sysctl("net/../../kernel/core_pattern"),
        "sysctl-not-allowed" => sysctl("net.core.rmem_max"),
        "sysctl-conflict" => Ok(last_known_good().sysctl("net.ipv4.conf.lan0.route_localnet", "0")),
        "sysctl-noncanonical" => Ok(last_known_good()
            .sysctl("net.ipv4.conf.lan0.forwarding", " 1")
            .sysctl("net.ipv4.conf.lan0.accept_local", "01")
            .sysctl("net.ipv4.conf.lan0.rp_filter", "-0")
            .sysctl("net.ipv4.conf.lan0.proxy_arp", "1\t")),
        "sysctl" => Ok(last_known_good().sysctl(target, config.get_or("count", "1"))),
        "foreign-chain" => Ok(last_known_good()
            .chain(Chain::filter(target, Hook::Input, -500).rule(Rule::new().drop()))),
        "jump-foreign" => in_input(Rule::new().jump(target)),
        "deep-jumps" => {
            let depth: usize = config.parse_or("count", 16)?;
            let mut ruleset = last_known_good()
                .chain(Chain::filter("bad", Hook::Input, 0).rule(Rule::new().jump("deep1")));
            for i in 1..=depth {
                let mut chain = Chain::regular(format!("deep{i}"));
                if i < depth {
                    let next = format!("deep{}", i + 1);
                    chain = chain.rule(if target == "goto" {
                        Rule::new().goto(next)
                    } else {
                        Rule::new().jump(next)
                    });
                }
                ruleset = ruleset.chain(chain);
            }
            Ok(ruleset)
        }
        "many-matches" => {
            let n: u16 = config.parse_or("count", 24)?;
            let mut rule = Rule::new().counter().log("many matches ");
            for i in 0..n {
                rule = if i % 2 == 0 {
                    rule.saddr(format!("10.{i}.0.0/16"))
                } else {
                    rule.dport_range(wasmwall_sdk::Transport::Tcp, 1000 + i, 2000 + i)
                };
            }
            in_input(rule.accept())
        }
        "priority" => {
            let priority: i32 = config.parse_or("count", i32::MIN)?;
            Ok(last_known_good()
                .chain(Chain::filter("early", Hook::Input, priority).rule(Rule::new().accept()))
                .chain(
                    Chain::nat("early-nat", Hook::Prerouting, priority).rule(Rule::new().accept()),
                ))
        }
        "foreign-set" => in_input(Rule::new().saddr_in(target).accept()),
        other => {
            let known: Vec<&str> = ATTACKS.iter().map(|(name, _)| *name).collect();
            Err(format!(
                "unknown attack {other:?} (known: {})",
                known.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(pairs: &[(&str, &str)]) -> Result<Ruleset, String> {
        Hostile::evaluate(
            &WorldState::default(),
            &Event::Startup,
            &Config::from_pairs(pairs.iter().copied()),
        )
    }

    /// The attacks that only return a (bad) ruleset can run here.
    const ANSWERING: &[&str] = &[
        "none",
        "bad-prefix",
        "bad-address",
        "port-zero",
        "long-ifname",
        "missing-chain",
        "jump-loop",
        "unknown-set",
        "dnat-in-filter",
        "sysctl-kernel",
        "sysctl-path-trick",
        "sysctl-not-allowed",
        "sysctl-conflict",
        "sysctl-noncanonical",
        "foreign-chain",
        "jump-foreign",
        "foreign-set",
        "strings",
    ];

    #[test]
    fn the_ruleset_attacks_answer_and_an_unknown_attack_is_named() {
        for attack in ANSWERING {
            assert!(ATTACKS.iter().any(|(name, _)| name == attack), "{attack}");
            let answer = evaluate(&[("attack", attack), ("target", "other/input")]);
            assert!(answer.is_ok(), "{attack}: {answer:?}");
        }
        let err = evaluate(&[("attack", "nonsense")]).unwrap_err();
        assert!(err.contains("unknown attack \"nonsense\""), "{err}");
    }

    #[test]
    fn the_last_known_good_ruleset_has_chains_rules_and_a_set() {
        let r = evaluate(&[]).unwrap();
        assert_eq!(r.chains().len(), 2);
        assert_eq!(r.chains()[0].rules().len(), 3);
        assert_eq!(r.sets().len(), 1);
    }

    #[test]
    fn sizes_can_be_set() {
        let r = evaluate(&[("attack", "rules"), ("count", "3")]).unwrap();
        assert_eq!(r.chains()[0].rules().len(), 3);
        let r = evaluate(&[("attack", "string"), ("count", "200")]).unwrap();
        assert_eq!(r.chains()[0].rules()[0].comment().map(str::len), Some(200));
    }

    #[test]
    fn the_sysctl_flood_asks_for_count_keys_each_once() {
        let r = evaluate(&[("attack", "sysctl-flood"), ("count", "25")]).unwrap();
        let keys: std::collections::BTreeSet<&str> = r.sysctls().iter().map(|s| s.key()).collect();
        assert_eq!((r.sysctls().len(), keys.len()), (25, 25));
        assert!(
            keys.contains("net.ipv4.conf.nosuch2.accept_redirects"),
            "{keys:?}"
        );
    }
}
