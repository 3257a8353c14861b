//! "Write your policy in any language that builds a Wasm component", tested:
//! the port-forward policy exists in Rust, Python and JavaScript, and the
//! three must give the same answer to the same input, down to the wording
//! of every error.
//!
//! These tests need no root: they run the components in-process, as
//! `wasmwall test` does, through the runtime's own sandbox and validation.

use std::path::PathBuf;

use wasmwall::fixtures::Judge;
use wasmwall::fixtures::{self, Fixture, Outcome};
use wasmwall::sandbox::cache::{CompileCache, DEFAULT_MAX_BYTES};
use wasmwall::sandbox::{Limits, LoadedPolicy, PolicyEngine};
use wasmwall::world::{Event, Interface, WorldState};
use wasmwall_e2e::{PORT_FORWARD_LANGUAGES, compile_cache_dir, policy_wasm, repo_root};

const NAME: &str = "port-forward";

fn engine() -> PolicyEngine {
    let mut engine = PolicyEngine::new(Limits::default()).expect("engine");
    let cache = CompileCache::open(&compile_cache_dir(), DEFAULT_MAX_BYTES).expect("compile cache");
    engine.set_cache(Some(cache));
    engine
}

fn load_all(engine: &PolicyEngine) -> Vec<(&'static str, LoadedPolicy)> {
    PORT_FORWARD_LANGUAGES
        .iter()
        .map(|(language, file)| {
            let policy = engine
                .load(NAME, &policy_wasm(file))
                .unwrap_or_else(|e| panic!("loading the {language} policy: {e:?}"));
            (*language, policy)
        })
        .collect()
}

fn fixtures_dir() -> PathBuf {
    repo_root().join("policies/port-forward/fixtures")
}

/// The outcome of every language for `fixture`; a message for each language
/// whose outcome differs from the Rust one.
fn differences(policies: &[(&str, LoadedPolicy)], fixture: &Fixture) -> (Outcome, Vec<String>) {
    let judge = Judge::defaults(NAME);
    let reference = fixtures::evaluate(&policies[0].1, &judge, fixture);
    let mut differ = Vec::new();
    for (language, policy) in &policies[1..] {
        let outcome = fixtures::evaluate(policy, &judge, fixture);
        if outcome != reference {
            differ.push(format!(
                "{language} differs from Rust ({}):\n{}",
                describe_input(fixture),
                fixtures::describe_mismatch(fixture, &reference, &outcome)
            ));
        }
    }
    (reference, differ)
}

fn describe_input(fixture: &Fixture) -> String {
    format!(
        "fixture {}, event {:?}, config {:?}",
        fixture.name, fixture.event, fixture.config
    )
}

#[test]
fn every_language_matches_every_fixture() {
    let engine = engine();
    let policies = load_all(&engine);
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in fixtures::fixture_dirs(&fixtures_dir()).expect("fixtures") {
        let fixture = fixtures::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let expected = fixture
            .expected
            .clone()
            .unwrap_or_else(|| panic!("fixture {} has no expectation", fixture.name));
        let (reference, differ) = differences(&policies, &fixture);
        if !fixtures::matches(&expected, &reference) {
            failures.push(format!(
                "Rust does not match fixture {}:\n{}",
                fixture.name,
                fixtures::describe_mismatch(&fixture, &expected, &reference)
            ));
        }
        failures.extend(differ);
        count += 1;
    }
    assert!(count >= 10, "only {count} fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inputs near the edges of what the policy parses (addresses and ports in
/// every form Rust's standard library accepts or refuses), each in every
/// language.
#[test]
fn languages_agree_on_tricky_inputs() {
    let targets = [
        "127.0.0.1:4000",
        "127.1.2.3:65535",
        "10.0.0.1:080",
        "10.0.0.1:0",
        "10.0.0.1:65536",
        "010.0.0.1:80",
        "256.0.0.1:80",
        "1.2.3:80",
        "1.2.3.4.5:80",
        " 1.2.3.4:80",
        "1.2.3.4",
        "[::1]:80",
        "[::]:80",
        "[0:0:0:0:0:0:0:1]:8080",
        "[FD00::0:20]:80",
        "[fd00:0:0:1:0:0:0:20]:80",
        "[1:0:0:2:0:0:0:3]:80",
        "[1:2:3:4:5:6:7:8]:80",
        "[1:2:3:4:5:6:7::]:80",
        "[::2:3:4:5:6:7:8]:80",
        "[1:2:3:4:5:6:7:8:9]:80",
        "[::ffff:192.168.0.20]:80",
        "[::ffff:127.0.0.1]:80",
        "[::192.168.0.20]:80",
        "[64:ff9b::1.2.3.4]:80",
        "[1.2.3.4::]:80",
        "[fe80::1%2]:80",
        "[fe80::1%]:80",
        "[fd00::12345]:80",
        "[fd00:::1]:80",
        "fd00::1:80",
        "[fd00::1]",
        "",
        "localhost:80",
    ];
    let ports = [
        "80", "+80", "-80", "+", "-", "", " 80", "0", "00080", "65535", "65536", "99999", "6553x",
        "x", "8٠", "1e3",
    ];
    let protocols = ["tcp", "udp", "TCP", "", "sctp\"\\\n\u{7f}é"];
    let lists = [
        ",, ,",
        "lan0, lan9 ,",
        "lan0.10",
        " 192.168.0.0/24 ,fd00::/8",
    ];

    let mut inputs: Vec<Vec<(String, String)>> = Vec::new();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    inputs.extend(targets.iter().map(|t| vec![pair("target", t)]));
    inputs.extend(ports.iter().map(|p| vec![pair("listen_port", p)]));
    inputs.extend(protocols.iter().map(|p| vec![pair("protocol", p)]));
    inputs.extend(lists.iter().map(|l| vec![pair("lan_interface", l)]));
    inputs.extend(lists.iter().map(|l| vec![pair("allowed_sources", l)]));
    inputs.push(vec![pair("listen_port", "x"), pair("listen_port", "81")]);
    inputs.push(vec![pair("colour", "red"), pair("listen_port", "x")]);
    inputs.push(vec![
        pair("target", "[fd00::20]:8080"),
        pair("protocol", "udp"),
        pair("listen_port", "5353"),
    ]);

    let state = WorldState {
        interfaces: vec![
            interface("lan0", true, &["192.168.0.9/24", "fd00::9/64", "junk"]),
            interface("lan0.10", true, &["10.0.10.1/24"]),
            interface("lo", true, &["127.0.0.1/8"]),
            interface("wan0", false, &[]),
        ],
        ..WorldState::default()
    };
    let engine = engine();
    let policies = load_all(&engine);
    let mut failures = Vec::new();
    for (i, config) in inputs.into_iter().enumerate() {
        let fixture = Fixture {
            name: format!("tricky-{i}"),
            dir: PathBuf::from("(generated)"),
            description: None,
            state: state.clone(),
            event: Event::Startup,
            config,
            expected: None,
            packets: Vec::new(),
        };
        failures.extend(differences(&policies, &fixture).1);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn interface(name: &str, up: bool, addresses: &[&str]) -> Interface {
    Interface {
        name: name.to_string(),
        index: 0,
        up,
        mac: None,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    }
}
