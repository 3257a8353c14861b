//! Every refused object, flowtable and route chain names its place and its
//! problem; what is accepted converts to the IR.

use crate::bindings::wit;
use crate::ir::{self, ChainType, CtHelper, Flowtable, Object, Transport};
use crate::validate::{Invalid, Options, validate};

fn features(flowtables: bool, offload: &[&str], helpers: &[&str]) -> wit::KernelFeatures {
    wit::KernelFeatures {
        flowtables,
        hardware_offload: offload.iter().map(|s| s.to_string()).collect(),
        ct_helpers: helpers.iter().map(|s| s.to_string()).collect(),
    }
}

fn all_features() -> wit::KernelFeatures {
    features(true, &["wan0"], &["ftp", "sip"])
}

fn counter(name: &str) -> wit::NamedCounter {
    wit::NamedCounter { name: name.into() }
}

fn helper(name: &str, helper: &str, protocol: wit::Transport) -> wit::CtHelper {
    wit::CtHelper {
        name: name.into(),
        helper: helper.into(),
        protocol,
    }
}

fn flowtable(name: &str, devices: &[&str], hardware_offload: bool) -> wit::Flowtable {
    wit::Flowtable {
        name: name.into(),
        priority: 0,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        hardware_offload,
        counter: false,
    }
}

fn checked(rs: &wit::Ruleset, f: &wit::KernelFeatures) -> Result<ir::Ruleset, Invalid> {
    validate(rs, &Options::default(), f)
}

/// The problems, each as `place: message`.
fn problems(rs: &wit::Ruleset, f: &wit::KernelFeatures) -> Vec<String> {
    match checked(rs, f) {
        Ok(_) => panic!("expected a validation error"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn objects_and_flowtables_convert_in_order() {
    let mut rs = wit::Ruleset::empty();
    rs.counters = vec![counter("b"), counter("a")];
    rs.ct_helpers = vec![helper("ftp", "ftp", wit::Transport::Tcp)];
    rs.flowtables = vec![wit::Flowtable {
        priority: -10,
        counter: true,
        ..flowtable("f", &["wan0", "lan0", "wan0"], false)
    }];
    let ir = checked(&rs, &all_features()).unwrap();
    let objects: Vec<(&str, &Object)> = ir
        .objects
        .iter()
        .map(|o| (o.name.as_str(), &o.object))
        .collect();
    assert_eq!(
        objects,
        [
            ("b", &Object::Counter),
            ("a", &Object::Counter),
            (
                "ftp",
                &Object::CtHelper(CtHelper {
                    helper: "ftp".into(),
                    protocol: Transport::Tcp
                })
            )
        ]
    );
    assert_eq!(ir.flowtables[0].name, "f");
    assert_eq!(
        ir.flowtables[0].flowtable,
        Flowtable {
            priority: -10,
            devices: vec!["lan0".into(), "wan0".into()],
            hardware_offload: false,
            counter: true,
        }
    );
}

#[test]
fn names_are_checked_and_unique_among_sets_maps_objects_and_flowtables() {
    let mut rs = wit::Ruleset::empty();
    rs.sets = vec![wit::NamedSet {
        name: "x".into(),
        key: vec![wit::KeyType::Ipv4Addr],
        intervals: false,
        timeout: None,
        dynamic: false,
        size: None,
        elements: vec![],
    }];
    rs.counters = vec![
        counter("x"),
        counter("c"),
        counter("c"),
        counter("bad name"),
    ];
    rs.ct_helpers = vec![helper("c", "ftp", wit::Transport::Tcp)];
    rs.flowtables = vec![flowtable("x", &["lan0"], false)];
    assert_eq!(
        problems(&rs, &all_features()),
        [
            "counter \"x\": set \"x\" has the same name; a policy's sets, maps, counters, limits, ct helpers and flowtables need names of their own",
            "counter \"c\": defined twice",
            "ct helper \"c\": counter \"c\" has the same name; a policy's sets, maps, counters, limits, ct helpers and flowtables need names of their own",
            "flowtable \"x\": set \"x\" has the same name; a policy's sets, maps, counters, limits, ct helpers and flowtables need names of their own",
            "counter \"bad name\": invalid counter name \"bad name\": use 1-32 letters, digits, '_' or '-'",
        ]
    );
}

/// A limit, a ct helper and a flowtable with a name nft would not take
/// are refused at their place, as a counter is.
#[test]
fn limit_helper_and_flowtable_names_are_checked() {
    let mut rs = wit::Ruleset::empty();
    rs.limits = vec![limit("a b", 3, 0, true)];
    rs.ct_helpers = vec![helper("ftp:21", "ftp", wit::Transport::Tcp)];
    let long = "f".repeat(33);
    rs.flowtables = vec![flowtable(&long, &["wan0"], false)];
    assert_eq!(
        problems(&rs, &all_features()),
        [
            "limit \"a b\": invalid limit name \"a b\": use 1-32 letters, digits, '_' or '-'".to_string(),
            "ct helper \"ftp:21\": invalid ct helper name \"ftp:21\": use 1-32 letters, digits, '_' or '-'".to_string(),
            format!("flowtable \"{long}\": invalid flowtable name \"{long}\": use 1-32 letters, digits, '_' or '-'"),
        ]
    );
}

fn limit(name: &str, amount: u64, burst: u32, over: bool) -> wit::NamedLimit {
    wit::NamedLimit {
        name: name.into(),
        limit: wit::RateLimit {
            rate: wit::Rate {
                amount,
                bytes: false,
                per: wit::TimeUnit::Minute,
                burst,
            },
            over,
        },
    }
}

#[test]
fn a_limit_takes_the_kernels_default_burst_and_a_rate_it_can_count() {
    let mut rs = wit::Ruleset::empty();
    rs.limits = vec![limit("ssh", 3, 0, true)];
    let ir = checked(&rs, &all_features()).unwrap();
    assert_eq!(
        ir.objects[0].object.definition(),
        ["rate over 3/minute"],
        "burst 0 is the kernel's 5, which nft leaves out"
    );
    rs.limits = vec![
        limit("none", 0, 0, false),
        limit("huge", u64::MAX, 7, false),
    ];
    assert_eq!(
        problems(&rs, &all_features()),
        [
            "limit \"none\": the limit's rate is 0 per minute: it would let nothing through, and the kernel refuses it",
            "limit \"huge\": the limit's rate 18446744073709551615 per minute with a burst of 7 is more than the kernel's limit can count; it refuses it",
        ]
    );
}

#[test]
fn a_helper_must_be_one_the_kernel_has_for_its_protocol() {
    let cases = [
        (
            helper("h", "ftp", wit::Transport::Tcp),
            features(false, &[], &[]),
            "ct helper \"h\": this kernel has no conntrack helper \"ftp\" (kernel-features.ct-helpers: none)",
        ),
        (
            helper("h", "irc", wit::Transport::Tcp),
            all_features(),
            "ct helper \"h\": this kernel has no conntrack helper \"irc\" (kernel-features.ct-helpers: ftp, sip)",
        ),
        (
            helper("h", "ftp", wit::Transport::Udp),
            all_features(),
            "ct helper \"h\": the kernel's \"ftp\" helper follows tcp, not udp",
        ),
        (
            helper("h", "sip", wit::Transport::Sctp),
            all_features(),
            "ct helper \"h\": no conntrack helper follows sctp (the kernel's helpers follow tcp or udp)",
        ),
        (
            helper("h", "a\"b", wit::Transport::Tcp),
            all_features(),
            "ct helper \"h\": helper \"a\\\"b\" is not a conntrack helper name (1-15 printable characters, no '\"')",
        ),
        (
            helper("h", "", wit::Transport::Tcp),
            all_features(),
            "ct helper \"h\": helper \"\" is not a conntrack helper name (1-15 printable characters, no '\"')",
        ),
    ];
    for (h, f, expected) in cases {
        let mut rs = wit::Ruleset::empty();
        rs.ct_helpers = vec![h];
        assert_eq!(problems(&rs, &f), [expected]);
    }
    // sip follows both.
    let mut rs = wit::Ruleset::empty();
    rs.ct_helpers = vec![
        helper("a", "sip", wit::Transport::Tcp),
        helper("b", "sip", wit::Transport::Udp),
    ];
    assert!(checked(&rs, &all_features()).is_ok());
}

#[test]
fn a_flowtable_needs_the_kernel_feature_and_devices() {
    let refused = |fts: Vec<wit::Flowtable>, f: &wit::KernelFeatures| {
        let mut rs = wit::Ruleset::empty();
        rs.flowtables = fts;
        problems(&rs, f)
    };
    assert_eq!(
        refused(
            vec![flowtable("f", &["lan0"], false)],
            &features(false, &[], &[])
        ),
        [
            "flowtable \"f\": this kernel has no flowtables (it is built without CONFIG_NF_FLOW_TABLE; kernel-features.flowtables is false)"
        ]
    );
    assert_eq!(
        refused(vec![flowtable("f", &[], false)], &all_features()),
        [
            "flowtable \"f\": lists no devices; a flowtable takes the packets of at least one interface"
        ]
    );
    assert_eq!(
        refused(
            vec![flowtable("f", &["lan0", "a/b"], false)],
            &all_features()
        ),
        ["flowtable \"f\" device 2: interface name \"a/b\" contains '/', ':', a space or NUL"]
    );
    assert_eq!(
        refused(
            vec![
                flowtable("f", &["lan0"], false),
                flowtable("g", &["wan0", "lan0"], false)
            ],
            &all_features()
        ),
        [
            "flowtable \"g\": device \"lan0\" is in flowtable \"f\" already; a device can be in one flowtable only"
        ]
    );
    assert_eq!(
        refused(
            vec![flowtable("f", &["wan0", "lan0", "dmz0"], true)],
            &all_features()
        ),
        [
            "flowtable \"f\": hardware offload needs devices whose driver offloads flows (hw-tc-offload on; kernel-features.hardware-offload); \"lan0\", \"dmz0\" cannot"
        ]
    );
    let many: Vec<String> = (0..257).map(|i| format!("d{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        refused(vec![flowtable("f", &many, false)], &all_features()),
        ["flowtable \"f\": lists 257 devices; the kernel takes at most 256"]
    );
    let mut rs = wit::Ruleset::empty();
    rs.flowtables = vec![flowtable("f", &["wan0"], true)];
    assert!(checked(&rs, &all_features()).is_ok());
}

fn route_chain(hook: wit::Hook) -> wit::Ruleset {
    let mut rs = wit::Ruleset::empty();
    rs.chains = vec![wit::Chain {
        name: "out".into(),
        base: Some(wit::BaseChain {
            hook,
            type_: wit::ChainType::Route,
            priority: wit::Priority::Named(wit::NamedPriority {
                name: wit::PriorityName::Mangle,
                offset: 0,
            }),
            policy: wit::ChainPolicy::Accept,
        }),
        rules: vec![],
    }];
    rs
}

#[test]
fn a_route_chain_hooks_output_only() {
    let ir = checked(&route_chain(wit::Hook::Output), &all_features()).unwrap();
    let base = ir.chains[0].base.unwrap();
    assert_eq!((base.chain_type, base.priority), (ChainType::Route, -150));
    assert_eq!(
        problems(&route_chain(wit::Hook::Prerouting), &all_features()),
        [
            "chain \"out\": a route chain hooks output only (it routes again what this machine sends); this one hooks prerouting"
        ]
    );
}
