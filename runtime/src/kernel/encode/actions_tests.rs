//! Every statement and action encoded as nft 1.0.6 encodes it: for each,
//! the text `nft list ruleset` printed for the rule and the expressions
//! `nft --debug=netlink -c` printed for it (both pasted from a run in a
//! throwaway network namespace), against the runtime's text and the
//! expressions it sends. The stand-ins of hand-made expressions are put
//! in place first, as the batch is before it is sent.

use std::net::IpAddr;

use super::super::expr::put_in_place;
use super::super::nft_debug::expressions;
use crate::ir::*;

fn rule(matches: Vec<Match>, statements: Vec<Statement>, action: Action) -> Rule {
    Rule {
        matches,
        statements,
        action,
        comment: None,
        cut_flows: false,
    }
}

fn dport(proto: Transport, port: u16) -> Match {
    Match::Port {
        dir: Dir::Destination,
        proto,
        first: port,
        last: port,
        negate: false,
    }
}

fn tcp(port: u16) -> Match {
    dport(Transport::Tcp, port)
}

fn saddr(net: &str) -> Match {
    Match::Addr {
        dir: Dir::Source,
        net: net.parse().unwrap(),
        negate: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The rule lists as `listed` and sends `nft`'s expressions (one per line,
/// as nft printed them, indented or not).
#[track_caller]
fn encodes(r: Rule, listed: &str, nft: &str) {
    assert_eq!(r.to_string(), listed, "text");
    let want: String = nft
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(expressions(&r), want, "expressions of {listed}");
}

fn log(prefix: Option<&str>, level: Option<LogLevel>, limit: Option<Rate>) -> Statement {
    Statement::Log {
        prefix: prefix.map(Into::into),
        level,
        limit,
    }
}

#[test]
fn counter_objects_and_logs() {
    encodes(
        rule(
            vec![],
            vec![Statement::CounterNamed("cx".into())],
            Action::Accept,
        ),
        "counter name \"cx\" accept",
        "[ objref type 1 name cx ]
         [ immediate reg 0 accept ]",
    );
    encodes(
        rule(
            vec![],
            vec![log(Some("ab"), Some(LogLevel::Debug), None)],
            Action::Accept,
        ),
        "log prefix \"ab\" level debug accept",
        "[ log prefix ab level 7 ]
         [ immediate reg 0 accept ]",
    );
    let per_minute = Rate {
        amount: 10,
        bytes: false,
        per: TimeUnit::Minute,
        burst: 20,
    };
    encodes(
        rule(
            vec![],
            vec![log(Some("p"), Some(LogLevel::Info), Some(per_minute))],
            Action::Continue,
        ),
        "limit rate 10/minute burst 20 packets log prefix \"p\" level info continue",
        "[ limit rate 10/minute burst 20 type packets flags 0x0 ]
         [ log prefix p level 6 ]
         [ immediate reg 0 continue ]",
    );
    let kbyte = Rate {
        amount: 1024,
        bytes: true,
        per: TimeUnit::Second,
        burst: 0,
    };
    encodes(
        rule(vec![], vec![log(None, None, Some(kbyte))], Action::Continue),
        "limit rate 1 kbytes/second log continue",
        "[ limit rate 1024/second burst 0 type bytes flags 0x0 ]
         [ log ]
         [ immediate reg 0 continue ]",
    );
}

#[test]
fn marks() {
    encodes(
        rule(
            vec![],
            vec![Statement::Mark(MarkUpdate::Set(1))],
            Action::Accept,
        ),
        "meta mark set 0x00000001 accept",
        "[ immediate reg 1 0x00000001 ]
         [ meta set mark with reg 1 ]
         [ immediate reg 0 accept ]",
    );
    let masked = MarkUpdate::Bitwise {
        mask: 0xffff_00ff,
        xor: 0x100,
    };
    encodes(
        rule(vec![], vec![Statement::Mark(masked)], Action::Continue),
        "meta mark set meta mark & 0xffff01ff | 0x00000100 continue",
        "[ meta load mark => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0xffff00ff ) ^ 0x00000100 ]
         [ meta set mark with reg 1 ]
         [ immediate reg 0 continue ]",
    );
    let flip = MarkUpdate::Bitwise {
        mask: u32::MAX,
        xor: 0x100,
    };
    encodes(
        rule(vec![], vec![Statement::CtMark(flip)], Action::Continue),
        "ct mark set ct mark ^ 0x00000100 continue",
        "[ ct load mark => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0xffffffff ) ^ 0x00000100 ]
         [ ct set mark with reg 1 ]
         [ immediate reg 0 continue ]",
    );
    encodes(
        rule(
            vec![],
            vec![Statement::CtMark(MarkUpdate::Set(5))],
            Action::Continue,
        ),
        "ct mark set 0x00000005 continue",
        "[ immediate reg 1 0x00000005 ]
         [ ct set mark with reg 1 ]
         [ immediate reg 0 continue ]",
    );
}

#[test]
fn dscp() {
    let ef = Statement::Dscp {
        family: Family::V4,
        value: 46,
    };
    encodes(
        rule(vec![tcp(80)], vec![ef], Action::Continue),
        "tcp dport 80 ip dscp set ef continue",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00005000 ]
         [ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 2b @ network header + 0 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x000003ff ) ^ 0x0000b800 ]
         [ payload write reg 1 => 2b @ network header + 0 csum_type 1 csum_off 10 csum_flags 0x0 ]
         [ immediate reg 0 continue ]",
    );
    let af11 = Statement::Dscp {
        family: Family::V6,
        value: 10,
    };
    encodes(
        rule(vec![], vec![af11], Action::Continue),
        "ip6 dscp set af11 continue",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ payload load 2b @ network header + 0 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x00003ff0 ) ^ 0x00008002 ]
         [ payload write reg 1 => 2b @ network header + 0 csum_type 0 csum_off 0 csum_flags 0x0 ]
         [ immediate reg 0 continue ]",
    );
    // The DSCP's own family check serves the NAT too, as nft has it.
    let af11 = Statement::Dscp {
        family: Family::V4,
        value: 10,
    };
    encodes(
        rule(
            vec![tcp(80)],
            vec![af11],
            Action::Dnat(NatTarget::to(ip("10.0.0.2"), None)),
        ),
        "tcp dport 80 ip dscp set af11 dnat ip to 10.0.0.2",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00005000 ]
         [ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 2b @ network header + 0 => reg 1 ]
         [ bitwise reg 1 = ( reg 1 & 0x000003ff ) ^ 0x00002800 ]
         [ payload write reg 1 => 2b @ network header + 0 csum_type 1 csum_off 10 csum_flags 0x0 ]
         [ immediate reg 1 0x0200000a ]
         [ nat dnat ip addr_min reg 1 ]",
    );
}

#[test]
fn conntrack() {
    encodes(
        rule(vec![], vec![Statement::Notrack], Action::Continue),
        "notrack continue",
        "[ notrack ]
         [ immediate reg 0 continue ]",
    );
    encodes(
        rule(
            vec![tcp(21)],
            vec![Statement::CtHelper("fh".into())],
            Action::Continue,
        ),
        "tcp dport 21 ct helper set \"fh\" continue",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00001500 ]
         [ objref type 3 name fh ]
         [ immediate reg 0 continue ]",
    );
}

#[test]
fn mss_clamps() {
    encodes(
        rule(
            vec![tcp(80)],
            vec![Statement::Mss(MssClamp::PathMtu)],
            Action::Continue,
        ),
        "tcp dport 80 tcp option maxseg size set rt mtu continue",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00005000 ]
         [ rt load tcpmss => reg 1 ]
         [ byteorder reg 1 = hton(reg 1, 2, 2) ]
         [ exthdr write tcpopt reg 1 => 2b @ 2 + 2 ]
         [ immediate reg 0 continue ]",
    );
    encodes(
        rule(
            vec![tcp(80)],
            vec![Statement::Mss(MssClamp::Size(1400))],
            Action::Continue,
        ),
        "tcp dport 80 tcp option maxseg size set 1400 continue",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00005000 ]
         [ immediate reg 1 0x00007805 ]
         [ exthdr write tcpopt reg 1 => 2b @ 2 + 2 ]
         [ immediate reg 0 continue ]",
    );
}

/// nft 1.0.6 printed these expressions for `flow add @ft` before this
/// kernel (without CONFIG_NF_FLOW_TABLE) refused the flowtable; the text is
/// nft's input, which this kernel cannot list back.
#[test]
fn offload() {
    encodes(
        rule(
            vec![],
            vec![Statement::Offload("ft".into())],
            Action::Continue,
        ),
        "flow add @ft continue",
        "[ flow_offload flowtable ft ]
         [ immediate reg 0 continue ]",
    );
}

#[test]
fn rejects() {
    encodes(
        rule(
            vec![],
            vec![],
            Action::Reject(RejectWith::Icmpx(IcmpxReject::AdminProhibited)),
        ),
        "reject with icmpx admin-prohibited",
        "[ reject type 2 code 3 ]",
    );
    encodes(
        rule(
            vec![saddr("1.1.1.1")],
            vec![],
            Action::Reject(RejectWith::Icmp(IcmpReject::HostProhibited)),
        ),
        "ip saddr 1.1.1.1 reject with icmp host-prohibited",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ payload load 4b @ network header + 12 => reg 1 ]
         [ cmp eq reg 1 0x01010101 ]
         [ reject type 0 code 10 ]",
    );
    encodes(
        rule(
            vec![saddr("fd00::1")],
            vec![],
            Action::Reject(RejectWith::Icmpv6(Icmpv6Reject::PolicyFail)),
        ),
        "ip6 saddr fd00::1 reject with icmpv6 policy-fail",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ payload load 16b @ network header + 8 => reg 1 ]
         [ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x01000000 ]
         [ reject type 0 code 5 ]",
    );
    encodes(
        rule(vec![tcp(1)], vec![], Action::Reject(RejectWith::TcpReset)),
        "tcp dport 1 reject with tcp reset",
        "[ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00000100 ]
         [ reject type 1 code 0 ]",
    );
    encodes(
        rule(
            vec![],
            vec![],
            Action::Reject(RejectWith::Icmpx(IcmpxReject::PortUnreachable)),
        ),
        "reject",
        "[ reject type 2 code 1 ]",
    );
}

#[test]
fn nat_ranges() {
    let target = NatTarget {
        address: ip("10.0.0.1"),
        last_address: Some(ip("10.0.0.5")),
        ports: Some(PortRange {
            first: 8080,
            last: 8090,
        }),
        flags: NatFlags {
            random: true,
            persistent: true,
            ..NatFlags::default()
        },
    };
    encodes(
        rule(vec![tcp(80)], vec![], Action::Dnat(target)),
        "meta nfproto ipv4 tcp dport 80 dnat ip to 10.0.0.1-10.0.0.5:8080-8090 random,persistent",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000006 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00005000 ]
         [ immediate reg 1 0x0100000a ]
         [ immediate reg 2 0x0500000a ]
         [ immediate reg 3 0x0000901f ]
         [ immediate reg 4 0x00009a1f ]
         [ nat dnat ip addr_min reg 1 addr_max reg 2 proto_min reg 3 proto_max reg 4 flags 0xe ]",
    );
    encodes(
        rule(
            vec![],
            vec![],
            Action::Dnat(NatTarget::to(ip("10.0.0.1"), None)),
        ),
        "meta nfproto ipv4 dnat ip to 10.0.0.1",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ immediate reg 1 0x0100000a ]
         [ nat dnat ip addr_min reg 1 ]",
    );
    let target = NatTarget {
        ports: Some(PortRange {
            first: 1000,
            last: 2000,
        }),
        flags: NatFlags {
            persistent: true,
            ..NatFlags::default()
        },
        ..NatTarget::to(ip("10.0.0.1"), None)
    };
    encodes(
        rule(
            vec![dport(Transport::Udp, 53)],
            vec![],
            Action::Snat(target),
        ),
        "meta nfproto ipv4 udp dport 53 snat ip to 10.0.0.1:1000-2000 persistent",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x00000002 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000011 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00003500 ]
         [ immediate reg 1 0x0100000a ]
         [ immediate reg 2 0x0000e803 ]
         [ immediate reg 3 0x0000d007 ]
         [ nat snat ip addr_min reg 1 proto_min reg 2 proto_max reg 3 flags 0xa ]",
    );
    encodes(
        rule(
            vec![saddr("fd00::1"), dport(Transport::Udp, 53)],
            vec![],
            Action::Dnat(NatTarget::to(ip("fd00::1"), Some(5353))),
        ),
        "ip6 saddr fd00::1 udp dport 53 dnat ip6 to [fd00::1]:5353",
        "[ meta load nfproto => reg 1 ]
         [ cmp eq reg 1 0x0000000a ]
         [ payload load 16b @ network header + 8 => reg 1 ]
         [ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x01000000 ]
         [ meta load l4proto => reg 1 ]
         [ cmp eq reg 1 0x00000011 ]
         [ payload load 2b @ transport header + 2 => reg 1 ]
         [ cmp eq reg 1 0x00003500 ]
         [ immediate reg 1 0x000000fd 0x00000000 0x00000000 0x01000000 ]
         [ immediate reg 2 0x0000e914 ]
         [ nat dnat ip6 addr_min reg 1 proto_min reg 2 flags 0x2 ]",
    );
}

#[test]
fn redirects_and_masquerades() {
    let ports = |first, last| Some(PortRange { first, last });
    let tcp80 = "[ meta load l4proto => reg 1 ]
                 [ cmp eq reg 1 0x00000006 ]
                 [ payload load 2b @ transport header + 2 => reg 1 ]
                 [ cmp eq reg 1 0x00005000 ]";
    encodes(
        rule(vec![tcp(80)], vec![], Action::Redirect(None)),
        "tcp dport 80 redirect",
        &format!("{tcp80}\n[ redir ]"),
    );
    encodes(
        rule(vec![tcp(80)], vec![], Action::Redirect(ports(8080, 8080))),
        "tcp dport 80 redirect to :8080",
        &format!(
            "{tcp80}
             [ immediate reg 1 0x0000901f ]
             [ redir proto_min reg 1 flags 0x2 ]"
        ),
    );
    encodes(
        rule(vec![tcp(80)], vec![], Action::Redirect(ports(8080, 8090))),
        "tcp dport 80 redirect to :8080-8090",
        &format!(
            "{tcp80}
             [ immediate reg 1 0x0000901f ]
             [ immediate reg 2 0x00009a1f ]
             [ redir proto_min reg 1 proto_max reg 2 flags 0x2 ]"
        ),
    );
    encodes(
        rule(vec![], vec![], Action::Masquerade(None)),
        "masquerade",
        "[ masq ]",
    );
    encodes(
        rule(vec![tcp(80)], vec![], Action::Masquerade(ports(1000, 2000))),
        "tcp dport 80 masquerade to :1000-2000",
        &format!(
            "{tcp80}
             [ immediate reg 1 0x0000e803 ]
             [ immediate reg 2 0x0000d007 ]
             [ masq proto_min reg 1 proto_max reg 2 flags 0x2 ]"
        ),
    );
    encodes(
        rule(vec![tcp(80)], vec![], Action::Masquerade(ports(1000, 1000))),
        "tcp dport 80 masquerade to :1000",
        &format!(
            "{tcp80}
             [ immediate reg 1 0x0000e803 ]
             [ masq proto_min reg 1 flags 0x2 ]"
        ),
    );
}

/// The bytes nft sent (`nft --debug=mnl`) where the debug text hides them:
/// an objref's name goes without its NUL, a flowtable's with it, and
/// `notrack` has no data at all.
#[test]
fn names_and_empty_data_as_nft_sends_them() {
    let bytes = |statement: Statement| {
        let mut b = rustables::Batch::new();
        let table = rustables::Table::new(rustables::ProtocolFamily::Inet).with_name("t");
        let tag = crate::plan::RuleTag {
            policy: "p".into(),
            hash: "0".into(),
        };
        let r = rule(vec![], vec![statement], Action::Continue);
        let (object, _) = super::super::rule::rule_object(&table, "c", &r, &tag, 1).unwrap();
        b.add(&object, rustables::MsgType::Add);
        put_in_place(b.finalize())
    };
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // Attribute headers: length, type (little-endian on x86-64 hosts).
    let objref = bytes(Statement::CounterNamed("cx".into()));
    assert!(has(&objref, &[6, 0, 2, 0, b'c', b'x', 0, 0]), "{objref:x?}");
    let flow = bytes(Statement::Offload("ft".into()));
    assert!(has(&flow, &[7, 0, 1, 0, b'f', b't', 0, 0]), "{flow:x?}");
    let notrack = bytes(Statement::Notrack);
    // The list element: its length, then the name attribute, and no data.
    assert!(
        has(
            &notrack,
            &[
                16, 0, 1, 0x80, 12, 0, 1, 0, b'n', b'o', b't', b'r', b'a', b'c', b'k', 0
            ]
        ),
        "{notrack:x?}"
    );
    for b in [objref, flow, notrack] {
        assert!(!has(&b, b"wasmwall-hand-made"), "a stand-in is left");
    }
}
