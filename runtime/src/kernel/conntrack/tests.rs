//! ctnetlink messages without a kernel: dump entries built here the way
//! the kernel lays them out are read back into flows, and deletes are
//! checked attribute by attribute.

use super::*;
use crate::kernel::wire::{attribute, u16_at};

const NESTED: u16 = 0x8000;

/// One attribute's bytes.
fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_attribute(&mut buf, ty, value);
    buf
}

/// A nest of `parts`, flagged as the kernel flags it.
fn nest(ty: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    attr(ty | NESTED, &parts.concat())
}

/// An IPv4 tuple nest as the kernel dumps it.
fn v4_tuple(ty: u16, src: [u8; 4], dst: [u8; 4], l4: &[Vec<u8>]) -> Vec<u8> {
    nest(
        ty,
        &[
            nest(
                cta::TUPLE_IP,
                &[attr(cta::IP_V4_SRC, &src), attr(cta::IP_V4_DST, &dst)],
            ),
            nest(cta::TUPLE_PROTO, l4),
            // CTA_TUPLE_ZONE only for directional zones: ignored.
            attr(3, &7u16.to_be_bytes()),
        ],
    )
}

fn tcp_ports(sport: u16, dport: u16) -> Vec<Vec<u8>> {
    vec![
        attr(cta::PROTO_NUM, &[proto::TCP]),
        attr(cta::PROTO_SRC_PORT, &sport.to_be_bytes()),
        attr(cta::PROTO_DST_PORT, &dport.to_be_bytes()),
    ]
}

/// A datagram of one IPCTNL_MSG_CT_NEW message of family `family`.
fn dump_message(family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut msg = Vec::new();
    let body = attrs.concat();
    msg.extend_from_slice(&((16 + 4 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&CT_NEW.to_ne_bytes());
    msg.extend_from_slice(&(libc::NLM_F_MULTI as u16).to_ne_bytes());
    msg.extend_from_slice(&5u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[family, 0, 0, 0]);
    msg.extend_from_slice(&body);
    msg
}

fn parse(bytes: &[u8]) -> Result<Option<Flow>, String> {
    let msg = messages(bytes).next().unwrap().unwrap();
    assert_eq!(msg.ty, CT_NEW);
    parse_flow(&msg)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A DNATed TCP entry: 203.0.113.2:40000 -> 203.0.113.1:8080, sent on to
/// 192.168.1.23:80, whose answers come from there.
fn dnat_entry(status_bits: u32) -> Vec<u8> {
    dump_message(
        libc::AF_INET as u8,
        &[
            v4_tuple(
                cta::TUPLE_ORIG,
                [203, 0, 113, 2],
                [203, 0, 113, 1],
                &tcp_ports(40000, 8080),
            ),
            v4_tuple(
                cta::TUPLE_REPLY,
                [192, 168, 1, 23],
                [203, 0, 113, 2],
                &tcp_ports(80, 40000),
            ),
            attr(cta::STATUS, &status_bits.to_be_bytes()),
            // CTA_TIMEOUT and CTA_PROTOINFO, which the flow does not keep.
            attr(7, &120u32.to_be_bytes()),
            nest(4, &[nest(1, &[attr(1, &[3])])]),
            attr(cta::MARK, &0x42u32.to_be_bytes()),
            attr(cta::ID, &0xdead_beefu32.to_be_bytes()),
            attr(cta::ZONE, &3u16.to_be_bytes()),
        ],
    )
}

#[test]
fn a_dumped_entry_is_read_whole() {
    let status_bits = status::CONFIRMED | status::SEEN_REPLY | status::ASSURED | status::DST_NAT;
    let flow = parse(&dnat_entry(status_bits)).unwrap().unwrap();
    let tcp = |src: &str, dst: &str, ports| Tuple {
        src: ip(src),
        dst: ip(dst),
        proto: proto::TCP,
        ports: Some(ports),
        icmp: None,
    };
    assert_eq!(
        flow,
        Flow {
            orig: tcp("203.0.113.2", "203.0.113.1", (40000, 8080)),
            reply: tcp("192.168.1.23", "203.0.113.2", (80, 40000)),
            status: status_bits,
            id: Some(0xdead_beef),
            zone: 3,
            mark: 0x42,
        }
    );
    assert_eq!(
        flow.to_string(),
        "tcp 203.0.113.2:40000 -> 203.0.113.1:8080 (dnat to 192.168.1.23:80)"
    );
}

#[test]
fn a_dying_entry_is_left_out() {
    let dying = status::CONFIRMED | status::DYING;
    assert_eq!(parse(&dnat_entry(dying)), Ok(None));
}

#[test]
fn absent_zone_mark_and_id_read_as_defaults() {
    let l4 = [attr(cta::PROTO_NUM, &[proto::UDP])];
    let bytes = dump_message(
        libc::AF_INET as u8,
        &[
            v4_tuple(cta::TUPLE_ORIG, [10, 0, 0, 2], [10, 0, 0, 1], &l4),
            v4_tuple(cta::TUPLE_REPLY, [10, 0, 0, 1], [10, 0, 0, 2], &l4),
        ],
    );
    let flow = parse(&bytes).unwrap().unwrap();
    assert_eq!(
        (flow.status, flow.id, flow.zone, flow.mark),
        (0, None, 0, 0)
    );
    // UDP without its ports (not something the kernel sends) has none.
    assert_eq!(flow.orig.ports, None);
}

#[test]
fn an_icmpv6_entry_keeps_type_code_and_id() {
    let v6_tuple = |ty, src: &str, dst: &str, icmp_type: u8| {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (ip(src), ip(dst)) else {
            unreachable!()
        };
        nest(
            ty,
            &[
                nest(
                    cta::TUPLE_IP,
                    &[
                        attr(cta::IP_V6_SRC, &src.octets()),
                        attr(cta::IP_V6_DST, &dst.octets()),
                    ],
                ),
                nest(
                    cta::TUPLE_PROTO,
                    &[
                        attr(cta::PROTO_NUM, &[proto::ICMPV6]),
                        attr(cta::PROTO_ICMPV6_ID, &0x1234u16.to_be_bytes()),
                        attr(cta::PROTO_ICMPV6_TYPE, &[icmp_type]),
                        attr(cta::PROTO_ICMPV6_CODE, &[0]),
                    ],
                ),
            ],
        )
    };
    let bytes = dump_message(
        libc::AF_INET6 as u8,
        &[
            v6_tuple(cta::TUPLE_ORIG, "fd00::2", "fd00::1", 128),
            v6_tuple(cta::TUPLE_REPLY, "fd00::1", "fd00::2", 129),
        ],
    );
    let flow = parse(&bytes).unwrap().unwrap();
    assert_eq!(flow.orig.src, ip("fd00::2"));
    assert_eq!(flow.orig.icmp, Some((128, 0, 0x1234)));
    assert_eq!(flow.reply.icmp, Some((129, 0, 0x1234)));
    assert_eq!(flow.orig.ports, None);
}

#[test]
fn an_entry_without_a_tuple_is_malformed() {
    let bytes = dump_message(
        libc::AF_INET as u8,
        &[attr(cta::STATUS, &status::CONFIRMED.to_be_bytes())],
    );
    assert!(parse(&bytes).is_err());
    let l4 = [attr(cta::PROTO_NUM, &[proto::UDP])];
    let short_address = nest(
        cta::TUPLE_ORIG,
        &[
            nest(
                cta::TUPLE_IP,
                &[
                    attr(cta::IP_V4_SRC, &[10, 0, 0]),
                    attr(cta::IP_V4_DST, &[10, 0, 0, 1]),
                ],
            ),
            nest(cta::TUPLE_PROTO, &l4),
        ],
    );
    let bytes = dump_message(libc::AF_INET as u8, &[short_address]);
    assert!(parse(&bytes).is_err());
}

fn udp_flow(src: &str, dst: &str, zone: u16, id: Option<u32>) -> Flow {
    let tuple = |src: &str, dst: &str, ports| Tuple {
        src: ip(src),
        dst: ip(dst),
        proto: proto::UDP,
        ports: Some(ports),
        icmp: None,
    };
    Flow {
        orig: tuple(src, dst, (4000, 53)),
        reply: tuple(dst, src, (53, 4000)),
        status: status::CONFIRMED,
        id,
        zone,
        mark: 0,
    }
}

#[test]
fn a_delete_names_the_tuple_zone_and_id() {
    let bytes = delete_message(&udp_flow("10.0.0.2", "10.0.0.1", 3, Some(77)), 41).unwrap();
    let msg = messages(&bytes).next().unwrap().unwrap();
    assert_eq!(msg.ty, (u16::from(SUBSYS) << 8) | IPCTNL_MSG_CT_DELETE);
    assert_eq!(msg.flags, (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16);
    assert_eq!(msg.seq, 41);
    assert_eq!(msg.family(), Some(libc::AF_INET as u8));
    let attrs: Vec<(u16, &[u8])> = msg.attributes().collect();
    let types: Vec<u16> = attrs.iter().map(|(ty, _)| *ty).collect();
    assert_eq!(types, [cta::TUPLE_ORIG, cta::ZONE, cta::ID]);
    // The nest is flagged NLA_F_NESTED.
    assert_eq!(u16_at(&msg.payload[4..], 2), Some(cta::TUPLE_ORIG | NESTED));
    assert_eq!(attrs[1].1, &3u16.to_be_bytes());
    assert_eq!(attrs[2].1, &77u32.to_be_bytes());

    let tuple = attrs[0].1;
    let ip_nest = attribute(tuple, cta::TUPLE_IP).unwrap();
    assert_eq!(attribute(ip_nest, cta::IP_V4_SRC), Some(&[10, 0, 0, 2][..]));
    assert_eq!(attribute(ip_nest, cta::IP_V4_DST), Some(&[10, 0, 0, 1][..]));
    let l4 = attribute(tuple, cta::TUPLE_PROTO).unwrap();
    assert_eq!(attribute(l4, cta::PROTO_NUM), Some(&[proto::UDP][..]));
    assert_eq!(
        attribute(l4, cta::PROTO_SRC_PORT),
        Some(&4000u16.to_be_bytes()[..])
    );
    assert_eq!(
        attribute(l4, cta::PROTO_DST_PORT),
        Some(&53u16.to_be_bytes()[..])
    );
}

#[test]
fn a_delete_leaves_out_a_default_zone_and_an_unknown_id() {
    let bytes = delete_message(&udp_flow("fd00::2", "fd00::1", 0, None), 1).unwrap();
    let msg = messages(&bytes).next().unwrap().unwrap();
    assert_eq!(msg.family(), Some(libc::AF_INET6 as u8));
    let types: Vec<u16> = msg.attributes().map(|(ty, _)| ty).collect();
    assert_eq!(types, [cta::TUPLE_ORIG]);
}

#[test]
fn no_delete_is_built_for_addresses_of_two_families() {
    assert_eq!(
        delete_message(&udp_flow("10.0.0.2", "fd00::1", 0, None), 1),
        None
    );
}

#[test]
fn tuples_read_back_as_they_were_written() {
    let tuples = [
        udp_flow("10.0.0.2", "10.0.0.1", 0, None).orig,
        udp_flow("fd00::2", "fd00::1", 0, None).orig,
        Tuple {
            src: ip("10.0.0.2"),
            dst: ip("10.0.0.1"),
            proto: proto::ICMP,
            ports: None,
            icmp: Some((8, 0, 513)),
        },
        Tuple {
            src: ip("fd00::2"),
            dst: ip("fd00::1"),
            proto: proto::ICMPV6,
            ports: None,
            icmp: Some((128, 0, 7)),
        },
        Tuple {
            src: ip("10.0.0.2"),
            dst: ip("10.0.0.1"),
            proto: libc::IPPROTO_SCTP as u8,
            ports: Some((5000, 38412)),
            icmp: None,
        },
        // GRE: no ports kept.
        Tuple {
            src: ip("10.0.0.2"),
            dst: ip("10.0.0.1"),
            proto: 47,
            ports: None,
            icmp: None,
        },
    ];
    for tuple in tuples {
        let nest = tuple_attributes(&tuple).unwrap();
        assert_eq!(parse_tuple(&nest), Ok(tuple));
    }
}

#[test]
fn the_dump_asks_for_every_family() {
    let bytes = dump_request(3);
    let msg = messages(&bytes).next().unwrap().unwrap();
    assert_eq!(msg.ty, (u16::from(SUBSYS) << 8) | IPCTNL_MSG_CT_GET);
    assert_eq!(msg.flags, (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16);
    assert_eq!(msg.family(), Some(libc::AF_UNSPEC as u8));
    assert_eq!(msg.attributes().count(), 0);
}
