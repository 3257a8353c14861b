//! The strings a policy puts into the kernel come back unchanged through
//! what administrators do for backups: for generated strings of every field
//! nft lists (rule comments, log prefixes, the interface names of iifname
//! and oifname matches) that wasmwall's validation accepts, applied by the
//! real binary to a real kernel, `nft list ruleset`, `nft flush ruleset`,
//! `nft -f` of the listing and `nft list ruleset` again give the same text
//! byte for byte. And a comment that would inject nft syntax into the
//! listing is refused, so the listing never holds it.
//!
//! The strings are made of every character the runtime's own checks
//! (`wasmwall::fields`) accept, out of all of ASCII and some others, so
//! the test follows the rules it proves: had validation let a '"' or a
//! control character through, the listing would not load back.

use std::fs;
use std::path::PathBuf;

use wasmwall::fields::{comment_problem, log_prefix_problem, match_ifname_problem};
use wasmwall::validate::{COMMENT_MAX, LOG_PREFIX_MAX};
use wasmwall_e2e::{
    Netns, TempDir, compile_cache_dir, policy_wasm, run, run_unchecked, skip_unless_root, temp_dir,
    toml_path, toml_string, wasmwall_bin, wasmwall_in,
};

/// Longest interface name (IFNAMSIZ less its NUL).
const IFNAME_MAX: usize = 15;
/// Random strings per field, besides those made to hold each character.
const RANDOM_STRINGS: usize = 200;

/// A small seeded generator (xorshift64*), so that a failure can be
/// replayed: the seed is in the test's output.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One field nft lists: the characters the runtime accepts in it, its
/// longest length, and how the listing shows it.
struct Field {
    name: &'static str,
    problem: fn(&str) -> Option<String>,
    max: usize,
    /// The config key of the hostile fixture's `strings` attack.
    key: &'static str,
    /// The listing's text of a value, e.g. `comment "x"`.
    listed: fn(&str) -> String,
}

const FIELDS: &[Field] = &[
    Field {
        name: "comment",
        problem: comment_problem,
        max: COMMENT_MAX,
        key: "comments",
        listed: |s| format!("comment \"{s}\""),
    },
    Field {
        name: "log prefix",
        problem: log_prefix_problem,
        max: LOG_PREFIX_MAX,
        key: "prefixes",
        listed: |s| format!("log prefix \"{s}\""),
    },
    Field {
        name: "interface name",
        problem: match_ifname_problem,
        max: IFNAME_MAX,
        key: "ifnames",
        listed: |s| format!("oifname \"{s}\""),
    },
];

/// Every character tried: all of ASCII and a few that are not (Latin, a
/// bidi override, a zero-width space, an emoji).
fn candidates() -> Vec<char> {
    (0u8..=0x7f)
        .map(char::from)
        .chain(['é', '\u{202e}', '\u{200b}', '😀'])
        .collect()
}

impl Field {
    fn allowed(&self) -> Vec<char> {
        candidates()
            .into_iter()
            .filter(|c| (self.problem)(&format!("a{c}b")).is_none())
            .collect()
    }

    /// Each allowed character alone, first and last in a string, and in
    /// the middle; strings of the longest length; random ones.
    fn strings(&self, rng: &mut Rng) -> Vec<String> {
        let allowed = self.allowed();
        let mut out = vec![String::new()];
        for &c in &allowed {
            out.push(c.to_string());
            out.push(format!("{c}a1"));
            out.push(format!("b2{c}"));
            out.push(format!("x{c}{c}y"));
        }
        let random = |rng: &mut Rng, len: usize| -> String {
            (0..len)
                .map(|_| allowed[rng.below(allowed.len())])
                .collect()
        };
        for _ in 0..3 {
            out.push(random(rng, self.max));
        }
        for _ in 0..RANDOM_STRINGS {
            let len = 1 + rng.below(self.max);
            out.push(random(rng, len));
        }
        // Those the whole check refuses (an empty or "." interface name).
        out.retain(|s| (self.problem)(s).is_none());
        out
    }
}

struct Lab {
    router: Netns,
    launcher: Netns,
    config: PathBuf,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = temp_dir();
        Lab {
            router: Netns::new("router"),
            launcher: Netns::new("launcher"),
            config: dir.path().join("wasmwall.toml"),
            dir,
        }
    }

    /// `wasmwall apply` of the hostile fixture's `strings` attack with
    /// `settings`; its exit status and log.
    fn apply(&self, settings: &[(&str, String)]) -> (bool, String) {
        let mut toml = format!(
            "table = \"wasmwall\"\nstate_dir = {}\n\n[cache]\ndir = {}\n\n\
             [[policy]]\nname = \"strings\"\npath = {}\n[policy.config]\nattack = \"strings\"\n",
            toml_path(&self.dir.path().join("state")),
            toml_path(&compile_cache_dir()),
            toml_path(&policy_wasm("hostile")),
        );
        for (key, value) in settings {
            toml.push_str(&format!("{key} = {}\n", toml_string(value)));
        }
        fs::write(&self.config, toml).expect("write wasmwall.toml");
        let out = run_unchecked(&mut wasmwall_in(
            &self.launcher,
            &self.router,
            "apply",
            &self.config,
        ));
        (out.success(), out.stderr)
    }

    fn listing(&self) -> String {
        self.router.run(["nft", "list", "ruleset"]).stdout
    }
}

/// The rule lines of `chain` in a listing, trimmed.
fn rule_lines<'a>(listing: &'a str, chain: &str) -> Vec<&'a str> {
    let header = format!("chain {chain} {{");
    listing
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| *l != "}")
        .filter(|l| !l.starts_with("type "))
        .collect()
}

/// The first line where two listings differ, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        if la.get(i) != lb.get(i) {
            return format!("line {}: {:?} became {:?}", i + 1, la.get(i), lb.get(i));
        }
    }
    "the same lines, different line endings".into()
}

#[test]
fn accepted_strings_list_and_load_back_unchanged() {
    if skip_unless_root() {
        return;
    }
    // The characters the test relies on being accepted, so that it cannot
    // pass by the checks refusing everything.
    let comment = FIELDS[0].allowed();
    for c in [
        'a', 'Z', '0', ' ', '\\', '#', ';', '{', '}', '$', '@', '\'', '~',
    ] {
        assert!(comment.contains(&c), "comments refuse {c:?}");
    }
    assert!(FIELDS[1].allowed().contains(&'#'));
    for c in ['a', 'Z', '0', '-', '_', '.'] {
        assert!(
            FIELDS[2].allowed().contains(&c),
            "interface names refuse {c:?}"
        );
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let strings: Vec<Vec<String>> = FIELDS.iter().map(|f| f.strings(&mut rng)).collect();
    for (field, values) in FIELDS.iter().zip(&strings) {
        eprintln!(
            "{}: {} strings of {:?}",
            field.name,
            values.len(),
            field.allowed().into_iter().collect::<String>()
        );
    }

    let lab = Lab::new();
    let settings: Vec<(&str, String)> = FIELDS
        .iter()
        .zip(&strings)
        .map(|(f, values)| (f.key, values.join("\n")))
        .collect();
    let (ok, log) = lab.apply(&settings);
    assert!(ok, "apply failed (seed {seed:#x})\n{log}");

    let first = lab.listing();
    for (field, values) in FIELDS.iter().zip(&strings) {
        for v in values {
            let text = (field.listed)(v);
            assert!(
                first.contains(&text),
                "the listing lacks {text:?} (seed {seed:#x})"
            );
        }
    }

    // `wasmwall eval` shows the rules as the kernel lists them.
    let mut eval = std::process::Command::new(wasmwall_bin());
    eval.arg("eval").arg(policy_wasm("hostile")).args([
        "--name",
        "strings",
        "--set",
        "attack=strings",
    ]);
    for (key, value) in &settings {
        eval.arg("--set").arg(format!("{key}={value}"));
    }
    let shown = run(&mut eval).stdout;
    for chain in ["strings/strings-in", "strings/strings-out"] {
        let (listed, evaluated) = (rule_lines(&first, chain), rule_lines(&shown, chain));
        assert!(listed.len() > 100, "{chain}: {} rules listed", listed.len());
        assert!(
            listed == evaluated,
            "{chain}: wasmwall eval differs from the listing (seed {seed:#x}): {}",
            first_difference(&listed.join("\n"), &evaluated.join("\n"))
        );
    }

    let saved = lab.dir.path().join("ruleset.nft");
    fs::write(&saved, &first).expect("write the listing");
    lab.router.run(["nft", "flush", "ruleset"]);
    assert!(!lab.listing().contains("table inet wasmwall"));
    let reload = lab
        .router
        .run_unchecked(["nft", "-f", saved.to_str().expect("a UTF-8 path")]);
    assert!(
        reload.success(),
        "nft -f of the listing failed (seed {seed:#x}): {}",
        reload.stderr
    );
    let second = lab.listing();
    assert!(
        first == second,
        "the listing changed through nft -f (seed {seed:#x}): {}",
        first_difference(&first, &second)
    );
}

/// The comment of issue 12 (a quote, then nft syntax that makes `nft -f`
/// of the listing create a table and a base chain) is refused with a line
/// that names the field and the character, and nothing of it reaches the
/// kernel.
#[test]
fn a_comment_that_would_inject_nft_syntax_is_refused() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let inject = "x\" accept; } table inet evil { chain c { type filter hook input priority -400; policy drop; } } #";
    let (ok, log) = lab.apply(&[("comments", inject.to_string())]);
    assert!(!ok, "apply took the comment\n{log}");
    assert!(
        log.contains("chain \"strings-in\" rule 1: comment has '\"' at byte 1"),
        "{log}"
    );
    let listing = lab.listing();
    assert!(!listing.contains("evil"), "{listing}");
}
