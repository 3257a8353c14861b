use wasmwall_sdk::{Field, IpFamily, KeyType, SetElements, Transport, Value};

use super::*;
use crate::uci;

fn parse(text: &str) -> Result<(Ipsets, Warnings), Error> {
    let sections = uci::parse(text).expect("test UCI reads");
    let mut warnings = Warnings::default();
    Ipsets::parse(&sections, &mut warnings).map(|sets| (sets, warnings))
}

fn one(text: &str) -> Ipset {
    let (sets, _) = parse(text).unwrap();
    assert_eq!(sets.sets.len(), 1, "{text}");
    sets.sets[0].clone()
}

fn entries(set: &NamedSet) -> Vec<Vec<Value>> {
    match set.elements() {
        SetElements::Keyed { elements, .. } => elements.clone(),
        other => panic!("not keyed: {other:?}"),
    }
}

fn a(text: &str) -> Value {
    Value::address(text)
}

/// fw4's tests/05_ipsets/01_declaration: every declared option, and a
/// file of entries fw4 reads but the policy cannot.
#[test]
fn fw4_declaration_case() {
    let (sets, warnings) = parse(
        "\
config ipset
\toption name 'test-set'
\toption comment 'A simple set'
\toption counters '1'
\toption family 'IPv4'
\tlist match 'src_ip'
\tlist match 'dest_port'
\toption timeout '600'
\toption maxelem '1000'
\tlist entry '1.2.3.4 80'
\tlist entry '5.6.7.8 22'
\toption loadfile 'set-entries.txt'
",
    )
    .unwrap();
    let named = sets.named_sets();
    assert_eq!(named.len(), 1);
    let set = &named[0];
    assert_eq!(set.name(), "test-set");
    assert_eq!(set.key(), [KeyType::Ipv4Addr, KeyType::InetService]);
    assert_eq!((set.size(), set.timeout()), (Some(1000), Some(600)));
    assert!(!set.has_intervals() && !set.is_dynamic());
    // The file's two entries (10.11.12.13 53, 172.16.27.1 443) are fw4's
    // only: the sandbox has no file to read.
    assert_eq!(
        entries(set),
        [
            vec![a("1.2.3.4"), Value::Number(80)],
            vec![a("5.6.7.8"), Value::Number(22)]
        ]
    );
    assert_eq!(
        warnings.0,
        [
            "uci line 12, @ipset[0] (test-set) option 'loadfile': names a file, which a policy cannot read in its sandbox: the set holds its `entry` values only"
        ]
    );
}

/// fw4's tests/05_ipsets/02_usage: the three sets, and the fields each of
/// its six rules (all `proto tcp`) looks up.
#[test]
fn fw4_usage_case() {
    let (sets, warnings) = parse(
        "\
config ipset
\toption name 'test-set-1'
\tlist match 'src_ip'
\tlist match 'dest_port'
\tlist entry '1.2.3.4 80'
\tlist entry '5.6.7.8 22'
config ipset
\toption name 'test-set-2'
\tlist match 'ip'
\tlist match 'port'
\tlist entry '1.2.3.4 80'
\tlist entry '5.6.7.8 22'
config ipset
\toption name 'test-set-3'
\toption family 'IPv6'
\tlist match 'net'
\tlist match 'net'
\tlist match 'port'
\tlist entry 'db80:1234:4567::1/64 db80:1234:abcd::1/64 80'
\tlist entry 'db80:8765:aaaa::1/64 db80:8765:ffff::1/64 22'
\tlist entry 'db80:1:2:3:4:0:0:1 0:0:0:0:0:0:0:0/0 443'
",
    )
    .unwrap();
    assert!(warnings.0.is_empty());
    let named = sets.named_sets();
    assert_eq!(named[0].key(), named[1].key());
    assert!(!named[0].has_intervals());
    assert_eq!(
        named[2].key(),
        [KeyType::Ipv6Addr, KeyType::Ipv6Addr, KeyType::InetService]
    );
    assert!(named[2].has_intervals());
    // fw4 writes the host bits (db80:1234:4567::1/64); the prefix is the same.
    assert_eq!(
        entries(&named[2]),
        [
            vec![
                a("db80:1234:4567::/64"),
                a("db80:1234:abcd::/64"),
                Value::Number(80)
            ],
            vec![
                a("db80:8765:aaaa::/64"),
                a("db80:8765:ffff::/64"),
                Value::Number(22)
            ],
            vec![a("db80:1:2:3:4::1"), a("::/0"), Value::Number(443)],
        ]
    );

    use Direction::{Dest, Src};
    let tcp = Some(Transport::Tcp);
    let fields = |name: &str, dirs: &[Option<Direction>]| {
        set_fields(sets.get(name).unwrap(), dirs, tcp).unwrap()
    };
    let v4 = IpFamily::V4;
    let v6 = IpFamily::V6;
    // The set's own directions; no direction defaults to the source.
    assert_eq!(
        fields("test-set-1", &[]),
        [Field::Saddr(v4), Field::Dport(Transport::Tcp)]
    );
    assert_eq!(
        fields("test-set-2", &[]),
        [Field::Saddr(v4), Field::Sport(Transport::Tcp)]
    );
    // `test-set-1 dst src` and `!test-set-1 dst src` (the rule negates).
    assert_eq!(
        fields("test-set-1", &[Some(Dest), Some(Src)]),
        [Field::Daddr(v4), Field::Sport(Transport::Tcp)]
    );
    assert_eq!(
        fields("test-set-2", &[Some(Dest), Some(Dest)]),
        [Field::Daddr(v4), Field::Dport(Transport::Tcp)]
    );
    assert_eq!(
        fields("test-set-3", &[Some(Src), Some(Dest), Some(Dest)]),
        [
            Field::Saddr(v6),
            Field::Daddr(v6),
            Field::Dport(Transport::Tcp)
        ]
    );
    assert_eq!(sets.get("test-set-3").unwrap().family, Some(v6));
}

#[test]
fn set_fields_fill_gaps_from_the_set_and_ignore_extra_directions() {
    let set = one(
        "config ipset\noption name s\nlist match dest_ip\nlist match src_port\nlist match src_mac\n",
    );
    let fields = set_fields(
        &set,
        &[None, Some(Direction::Dest), None, Some(Direction::Src)],
        Some(Transport::Udp),
    )
    .unwrap();
    assert_eq!(
        fields,
        [
            Field::Daddr(IpFamily::V4),
            Field::Dport(Transport::Udp),
            Field::EtherSaddr
        ]
    );
}

#[test]
fn set_fields_errors_say_why() {
    let set = one("config ipset\noption name 'm'\noption match 'mac port'\n");
    let err = set_fields(&set, &[Some(Direction::Dest)], Some(Transport::Tcp)).unwrap_err();
    assert_eq!(
        err,
        "set 'm' matches a MAC address at place 1, which can only be the source's: a packet's destination MAC cannot be matched"
    );
    assert_eq!(
        set_fields(&set, &[], None).unwrap_err(),
        "set 'm' matches a port: the rule needs proto tcp or udp"
    );
    assert_eq!(
        set_fields(&set, &[], Some(Transport::Sctp)).unwrap_err(),
        "set 'm' matches a port, which fw4 looks up for tcp and udp only, not sctp"
    );
    // A set without ports needs no transport.
    let macs = one("config ipset\noption name 'macs'\noption family any\noption match mac\n");
    assert_eq!(macs.family, None);
    assert!(!macs.matches_ports());
    assert_eq!(
        set_fields(&macs, &[], Some(Transport::Sctp)).unwrap(),
        [Field::EtherSaddr]
    );
    assert_eq!(set_fields(&macs, &[], None).unwrap(), [Field::EtherSaddr]);
}

#[test]
fn match_types_are_read_as_fw4_reads_them() {
    let set = one(
        "config ipset\noption name s\noption family ipv6\noption match 'n dst_IP dest_po src_m'\n",
    );
    let kinds: Vec<(Direction, MatchType)> =
        set.matches.iter().map(|m| (m.direction, m.kind)).collect();
    assert_eq!(
        kinds,
        [
            (Direction::Src, MatchType::Net),
            (Direction::Dest, MatchType::Ip),
            (Direction::Dest, MatchType::Port),
            (Direction::Src, MatchType::Mac),
        ]
    );
    assert_eq!(
        set.key(),
        [
            KeyType::Ipv6Addr,
            KeyType::Ipv6Addr,
            KeyType::InetService,
            KeyType::EtherAddr
        ]
    );
    assert!(set.has_intervals() && set.matches_ports());
    // `p` is `port`, the first type it starts.
    let p = one("config ipset\noption name s\nlist match p\n");
    assert_eq!(p.matches[0].kind, MatchType::Port);
}

#[test]
fn entries_of_each_type() {
    let set = one("\
config ipset
\toption name 'all'
\tlist match 'net'
\tlist match 'mac'
\tlist match 'port'
\tlist entry '10.1.2.3/8 0A-b:C:d:e:F 80-80'
\tlist entry '192.168.1.1\t52:54:00:12:34:56   443:443'
\tlist entry '10.0.0.1-10.0.0.9 00:00:00:00:00:01 1'
\tlist entry '10.0.0.0/255.255.0.0 00:00:00:00:00:02 65535'
");
    assert_eq!(
        set.entries,
        [
            vec![
                a("10.0.0.0/8"),
                Value::mac("0a:0b:0c:0d:0e:0f"),
                Value::Number(80)
            ],
            vec![
                a("192.168.1.1"),
                Value::mac("52:54:00:12:34:56"),
                Value::Number(443)
            ],
            vec![
                Value::address_range("10.0.0.1", "10.0.0.9"),
                Value::mac("00:00:00:00:00:01"),
                Value::Number(1)
            ],
            vec![
                a("10.0.0.0/16"),
                Value::mac("00:00:00:00:00:02"),
                Value::Number(65535)
            ],
        ]
    );
    // fw4 lets every address of a set with intervals be a prefix.
    let mixed = one(
        "config ipset\noption name s\noption match 'src_ip dest_net'\nlist entry '10.0.0.0/8 192.168.0.0/16'\n",
    );
    assert_eq!(mixed.entries, [vec![a("10.0.0.0/8"), a("192.168.0.0/16")]]);
    let ip = one(
        "config ipset\noption name s\nlist match ip\nlist entry 10.0.0.1/32\nlist entry 10.0.0.2/255.255.255.255\n",
    );
    assert_eq!(ip.entries, [vec![a("10.0.0.1")], vec![a("10.0.0.2")]]);
    assert!(!ip.has_intervals());
}

#[test]
fn an_option_entry_is_split_at_spaces() {
    let set =
        one("config ipset\noption name s\noption match ip\noption entry '10.0.0.1 10.0.0.2'\n");
    assert_eq!(set.entries, [vec![a("10.0.0.1")], vec![a("10.0.0.2")]]);
    let err =
        parse("config ipset\noption name s\noption match 'ip port'\noption entry '10.0.0.1 80'\n")
            .unwrap_err();
    assert_eq!(err.line, 4);
    assert_eq!(
        err.to_string(),
        "uci line 4, @ipset[0] (s) option 'entry': entry '10.0.0.1': has 1 value, the set matches 2 (ip, port) (an `option entry` is split at spaces into one-value entries, as fw4 splits it: write each entry as a `list entry`)"
    );
}

#[test]
fn timeouts_and_sizes_of_zero_or_less_are_none() {
    for (value, want) in [
        ("0", None),
        ("-1", None),
        ("1", Some(1)),
        ("4294967295", Some(u32::MAX)),
    ] {
        let set = one(&format!(
            "config ipset\noption name s\nlist match ip\noption timeout '{value}'\noption maxelem '{value}'\n"
        ));
        assert_eq!((set.timeout, set.maxelem), (want, want), "{value}");
    }
    let plain = one("config ipset\noption name s\nlist match port\n");
    assert_eq!((plain.timeout, plain.maxelem), (None, None));
    let named = &Ipsets { sets: vec![plain] }.named_sets()[0];
    assert_eq!((named.timeout(), named.size()), (None, None));
    assert_eq!(named.key(), [KeyType::InetService]);
}

#[test]
fn families_as_fw4_reads_them() {
    for (value, want) in [
        ("ipv4", Some(IpFamily::V4)),
        ("IPv4", Some(IpFamily::V4)),
        ("inet", Some(IpFamily::V4)),
        ("4", Some(IpFamily::V4)),
        ("ipv6", Some(IpFamily::V6)),
        ("6", Some(IpFamily::V6)),
        ("any", None),
        ("all", None),
        ("*", None),
    ] {
        let set = one(&format!(
            "config ipset\noption name s\nlist match port\noption family '{value}'\n"
        ));
        assert_eq!(set.family, want, "{value}");
    }
    let default = one("config ipset\noption name s\nlist match ip\n");
    assert_eq!(default.family, Some(IpFamily::V4));
    assert_eq!(default.key(), [KeyType::Ipv4Addr]);
}

#[test]
fn options_fw4_ignores_or_does_not_support_are_warnings() {
    let (sets, warnings) = parse(
        "\
config ipset
\toption name 's'
\tlist match 'ip'
\toption storage 'hash'
\toption iprange '10.0.0.0/8'
\toption portrange '1-100'
\toption netmask '24'
\toption hashsize '1024'
\toption external 'x'
\toption reload_set '1'
\toption counters 'no'
\toption comment 'dropped: sets have no comment'
\toption type 'ignored'
\toption colour 'blue'
",
    )
    .unwrap();
    assert!(sets.get("s").is_some());
    let unsupported = |line, opt| {
        format!("uci line {line}, @ipset[0] (s) option '{opt}': is not supported by fw4; ignored")
    };
    assert_eq!(
        warnings.0,
        [
            unsupported(4, "storage"),
            unsupported(5, "iprange"),
            unsupported(6, "portrange"),
            unsupported(7, "netmask"),
            unsupported(8, "hashsize"),
            unsupported(9, "external"),
            "uci line 14, @ipset[0] (s) option 'colour': is an option fw4 does not know; ignored"
                .to_string(),
        ]
    );
}

#[test]
fn a_disabled_set_is_a_warning_and_not_declared() {
    let (sets, warnings) = parse(
        "config ipset\noption name off\noption enabled 0\nconfig ipset\noption name on\nlist match ip\noption enabled yes\n",
    )
    .unwrap();
    assert!(sets.get("off").is_none());
    assert_eq!(sets.named_sets().len(), 1);
    assert_eq!(sets.get("on").unwrap().name, "on");
    assert_eq!(
        warnings.0,
        ["uci line 1, @ipset[0] (off): is disabled; ignored"]
    );
    // Its options' values are still checked, as fw4 checks them first.
    let err =
        parse("config ipset\noption name off\noption enabled 0\noption timeout x\n").unwrap_err();
    assert_eq!(err.line, 4);
}

#[test]
fn other_sections_are_left_alone() {
    let (sets, warnings) =
        parse("config zone\noption name lan\nconfig ipset\noption name s\nlist match ip\n")
            .unwrap();
    assert!(warnings.0.is_empty());
    assert_eq!(sets.named_sets().len(), 1);
}

#[test]
fn errors_name_the_line_and_say_what_is_wrong() {
    let head = "config ipset\noption name s\n";
    let cases: Vec<(String, usize, &str)> = vec![
        (
            "config ipset\nlist match ip\n".into(),
            1,
            "@ipset[0]: option 'name' is mandatory",
        ),
        (
            "config ipset\noption name 'a.b'\nlist match ip\n".into(),
            2,
            "option 'name': 'a.b' is not a set name: use 1 to 32 letters",
        ),
        (
            "config ipset\noption name '1set'\nlist match ip\n".into(),
            2,
            "'1set' is not a set name: use 1 to 32 letters, digits, '_' or '-', a letter or '_' first",
        ),
        (
            "config ipset\noption name '-s'\nlist match ip\n".into(),
            2,
            "'-s' is not a set name",
        ),
        (
            "config ipset\noption name ''\nlist match ip\n".into(),
            2,
            "'' is not a set name",
        ),
        (
            format!(
                "config ipset\noption name '{}'\nlist match ip\n",
                "x".repeat(33)
            ),
            2,
            "is not a set name",
        ),
        (head.to_string(), 1, "@ipset[0] (s): has no `match`"),
        (format!("{head}option match ''\n"), 1, "has no `match`"),
        (
            format!("{head}list match ip\nlist name t\n"),
            4,
            "option 'name': takes one value, not a list",
        ),
        (
            format!("{head}list match src_ipx\n"),
            3,
            "option 'match': 'src_ipx' is not a match type: ip, net, mac or port",
        ),
        (
            format!("{head}list match ''\n"),
            3,
            "'' is not a match type",
        ),
        (
            format!("{head}list match 'src_'\n"),
            3,
            "'src_' is not a match type",
        ),
        (
            format!("{head}list match set\n"),
            3,
            "'set': match type 'set' (a set of sets) is not supported by fw4",
        ),
        (
            format!("{head}list match ip\noption family any\n"),
            4,
            "option 'family': family 'any' cannot match ip or net",
        ),
        (
            format!("{head}list match net\noption family ipx\n"),
            4,
            "'ipx' is not a family: ipv4, ipv6 or any",
        ),
        (
            format!("{head}list match ip\noption enabled maybe\n"),
            4,
            "option 'enabled': 'maybe' is not a boolean",
        ),
        (
            format!("{head}list match ip\noption counters 2\n"),
            4,
            "'2' is not a boolean",
        ),
        (
            format!("{head}list match ip\noption timeout 10m\n"),
            4,
            "'10m' is not a whole number",
        ),
        (
            format!("{head}list match ip\noption maxelem 1.5\n"),
            4,
            "'1.5' is not a whole number",
        ),
        (
            format!("{head}list match ip\noption maxelem -\n"),
            4,
            "'-' is not a whole number",
        ),
        (
            format!("{head}list match ip\noption timeout 4294967296\n"),
            4,
            "4294967296 is too large: at most 4294967295",
        ),
        (
            format!("{head}list match ip\noption maxelem 99999999999999999999\n"),
            4,
            "'99999999999999999999' is too large a number",
        ),
        (
            format!("{head}list match ip\noption netmask x\n"),
            4,
            "option 'netmask': 'x' is not a whole number",
        ),
        (
            format!("{head}list match ip\nlist entry 10.0.0.1\nlist entry 'fd00::1'\n"),
            5,
            "option 'entry': entry 'fd00::1': 'fd00::1' is not an IPv4 address, the set's family",
        ),
        (
            format!("{head}option family ipv6\nlist match ip\nlist entry 10.0.0.1\n"),
            5,
            "'10.0.0.1' is not an IPv6 address",
        ),
        (
            format!("{head}list match ip\nlist entry 10.0.0.0/8\n"),
            4,
            "entry '10.0.0.0/8': '10.0.0.0/8' is not a single address, which a set of match 'ip' holds: use match 'net'",
        ),
        (
            format!("{head}list match ip\nlist entry 10.0.0.1-10.0.0.3\n"),
            4,
            "'10.0.0.1-10.0.0.3' is not a single address",
        ),
        (
            format!("{head}list match net\nlist entry 10.0.0.9-10.0.0.3\n"),
            4,
            "'10.0.0.9-10.0.0.3' is an empty range: its first address is above its last",
        ),
        (
            format!("{head}list match net\nlist entry 10.0.0.1-fd00::1\n"),
            4,
            "'10.0.0.1-fd00::1' is not an IPv4 address",
        ),
        (
            format!("{head}list match net\nlist entry 10.0.0.1-x\n"),
            4,
            "'10.0.0.1-x' is not a range of addresses (FIRST-LAST)",
        ),
        (
            format!("{head}list match net\nlist entry 10.0.0.1/0.255.0.0\n"),
            4,
            "'10.0.0.1/0.255.0.0' has a mask that is not a prefix, which a set cannot hold",
        ),
        (
            format!("{head}list match net\nlist entry '!10.0.0.1'\n"),
            4,
            "'!10.0.0.1': a set entry cannot be negated",
        ),
        (
            format!("{head}list match ip\nlist entry lan\n"),
            4,
            "\"lan\" is not an IPv4 or IPv6 address (fw4 would take the addresses of a network of that name",
        ),
        (
            format!("{head}list match ip\nlist entry 10.0.0.300\n"),
            4,
            "\"10.0.0.300\" is not an IPv4",
        ),
        (
            format!("{head}list match ip\nlist entry ''\n"),
            4,
            "entry '': has 0 values, the set matches 1 (ip)",
        ),
        (
            format!("{head}list match ip\nlist entry '10.0.0.1 80'\n"),
            4,
            "entry '10.0.0.1 80': has 2 values, the set matches 1 (ip)",
        ),
        (
            format!("{head}list match mac\nlist entry 00:11:22:33:44\n"),
            4,
            "\"00:11:22:33:44\" is not a MAC address (six hex bytes, aa:bb:cc:dd:ee:ff)",
        ),
        (
            format!("{head}list match mac\nlist entry 00:11:22:33:44:5g\n"),
            4,
            "is not a MAC address",
        ),
        (
            format!("{head}list match mac\nlist entry 000:11:22:33:44:55\n"),
            4,
            "is not a MAC address",
        ),
        (
            format!("{head}list match port\nlist entry http\n"),
            4,
            "'http' is not a port",
        ),
        (
            format!("{head}list match port\nlist entry 123456\n"),
            4,
            "'123456' is not a port",
        ),
        (
            format!("{head}list match port\nlist entry 65536\n"),
            4,
            "'65536' is out of range: ports are 1 to 65535",
        ),
        (
            format!("{head}list match port\nlist entry 80-90\n"),
            4,
            "'80-90' is a range of ports; a set entry holds one port",
        ),
        (
            format!("{head}list match port\nlist entry 0\n"),
            4,
            "'0': port 0 cannot be matched (ports are 1 to 65535)",
        ),
        (
            format!("{head}list match port\nlist entry '!80'\n"),
            4,
            "'!80' is not a port",
        ),
        (
            format!("{head}list match ip\nconfig ipset\noption name s\nlist match port\n"),
            5,
            "@ipset[1] (s) option 'name': a set named 's' is already defined at line 1",
        ),
    ];
    for (text, line, words) in cases {
        let err = parse(&text).unwrap_err();
        assert_eq!((err.file, err.line), ("uci", line), "{text:?}: {err}");
        assert!(err.to_string().contains(words), "{text:?}: {err}");
    }
}
