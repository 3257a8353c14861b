//! The connection-tracking table through ctnetlink, on a NETLINK_NETFILTER
//! socket of its own: every entry read into a [`Flow`], and chosen entries
//! deleted. Messages and attributes are those of the kernel's
//! `include/uapi/linux/netfilter/nfnetlink_conntrack.h`.
//!
//! A delete names its entry by the original tuple, the zone and the
//! entry's id (`CTA_ID`), so it removes that entry and never a newer one
//! made since with the same tuple: the kernel answers ENOENT for an entry
//! already gone or replaced. A ctnetlink delete without a tuple flushes the
//! whole table; every delete built here carries one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, sockopt};

use super::KernelError;
use super::netlink::{Ack, configure, open_socket, set_buffer, set_netlink_option};
use super::wire::{
    Message, Request, attributes, be16, be32, malformed, messages, put_attribute, put_nested,
    u32_at,
};
use crate::flows::{Flow, Tuple, proto, status};

/// The kernel answers while `send()` runs; the timeout only guards against
/// a kernel that never does.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Larger than any datagram of a dump: the kernel fills them in buffers of
/// at most 32 KiB.
const RECV_BUF: usize = 64 << 10;
/// Deletes sent in one datagram. The kernel handles them one by one inside
/// `send()` and queues an acknowledgement for each (charged about 1 KiB of
/// receive buffer): 64 of them fit the buffer with room to spare.
const DELETES_PER_SEND: usize = 64;
const RCVBUF: usize = 256 << 10;
/// Dumps tried while each is interrupted by a change (NLM_F_DUMP_INTR).
const DUMP_ATTEMPTS: usize = 3;

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_DUMP: u16 = libc::NLM_F_DUMP as u16;
const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;

const SUBSYS: u8 = libc::NFNL_SUBSYS_CTNETLINK as u8;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// The type of each entry of a dump.
const CT_NEW: u16 = ((SUBSYS as u16) << 8) | IPCTNL_MSG_CT_NEW;

/// `enum ctattr_type` and the nested enums, by the header's names.
mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const MARK: u16 = 8;
    pub const ID: u16 = 12;
    pub const ZONE: u16 = 18;

    pub const TUPLE_IP: u16 = 1;
    pub const TUPLE_PROTO: u16 = 2;

    pub const IP_V4_SRC: u16 = 1;
    pub const IP_V4_DST: u16 = 2;
    pub const IP_V6_SRC: u16 = 3;
    pub const IP_V6_DST: u16 = 4;

    pub const PROTO_NUM: u16 = 1;
    pub const PROTO_SRC_PORT: u16 = 2;
    pub const PROTO_DST_PORT: u16 = 3;
    pub const PROTO_ICMP_ID: u16 = 4;
    pub const PROTO_ICMP_TYPE: u16 = 5;
    pub const PROTO_ICMP_CODE: u16 = 6;
    pub const PROTO_ICMPV6_ID: u16 = 7;
    pub const PROTO_ICMPV6_TYPE: u16 = 8;
    pub const PROTO_ICMPV6_CODE: u16 = 9;
}

/// A ctnetlink client in the network namespace of the thread that opened
/// it.
#[derive(Debug)]
pub(super) struct Conntrack {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
    /// Whether the kernel's lack of ctnetlink was logged already.
    told_absent: bool,
}

impl Conntrack {
    pub fn open() -> Result<Conntrack, KernelError> {
        let fd = open_socket(REPLY_TIMEOUT)?;
        // Optional, as on the nftables socket: short error answers, with
        // the kernel's explanation when it has one.
        for flag in [libc::NETLINK_CAP_ACK, libc::NETLINK_EXT_ACK] {
            let _ = set_netlink_option(&fd, flag, 1);
        }
        set_buffer(&fd, sockopt::RcvBufForce, sockopt::RcvBuf, RCVBUF)
            .map_err(configure("SO_RCVBUF"))?;
        Ok(Conntrack {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
            told_absent: false,
        })
    }

    /// Every entry of both families and all zones, without those dying
    /// (being deleted). A kernel without ctnetlink (nf_conntrack_netlink
    /// neither built in nor loadable) gives an empty table: the request
    /// is refused with EINVAL (EOPNOTSUPP on some paths), and without it
    /// there is nothing this client could delete either.
    pub fn dump(&mut self) -> Result<Vec<Flow>, KernelError> {
        for _ in 0..DUMP_ATTEMPTS {
            if let Some(flows) = self.dump_once()? {
                return Ok(flows);
            }
            tracing::debug!("the conntrack table changed while it was read; reading again");
        }
        Err(KernelError::FlowsChanging {
            attempts: DUMP_ATTEMPTS,
        })
    }

    /// One dump; None when it was interrupted by a change.
    fn dump_once(&mut self) -> Result<Option<Vec<Flow>>, KernelError> {
        self.drain()?;
        let seq = self.next_seq();
        self.send(&dump_request(seq))?;
        let mut flows = Vec::new();
        let mut interrupted = false;
        loop {
            let n = receive(&self.fd, &mut self.buf, "the conntrack table")?;
            for msg in messages(&self.buf[..n]) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.ty {
                    CT_NEW => flows.extend(parse_flow(&msg).map_err(malformed)?),
                    NLMSG_DONE => {
                        // A dump that fails midway says so in its end.
                        let errno = u32_at(msg.payload, 0).map_or(0, |e| -(e as i32));
                        if errno > 0 {
                            return Err(dump_failed(Errno::from_raw(errno), None));
                        }
                        return Ok((!interrupted).then_some(flows));
                    }
                    NLMSG_ERROR => {
                        let ack = Ack::parse(&msg)?;
                        return match ack.errno {
                            0 => Ok((!interrupted).then_some(flows)),
                            libc::EINVAL | libc::EOPNOTSUPP => {
                                if !std::mem::replace(&mut self.told_absent, true) {
                                    tracing::warn!(
                                        "this kernel has no ctnetlink (nf_conntrack_netlink): established connections cannot be read or cut"
                                    );
                                }
                                Ok(Some(Vec::new()))
                            }
                            errno => Err(dump_failed(Errno::from_raw(errno), ack.extack)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Deletes exactly these entries; returns how many the kernel deleted.
    /// One already gone (or replaced by a newer entry with the same tuple)
    /// is not an error and is not counted. The deletes go
    /// [`DELETES_PER_SEND`] to a datagram; when the kernel refuses one
    /// (other than with ENOENT), the error is returned once the answers to
    /// its datagram are read, and the entries of earlier messages may be
    /// deleted already.
    pub fn delete(&mut self, flows: &[Flow]) -> Result<usize, KernelError> {
        let mut deleted = 0;
        for chunk in flows.chunks(DELETES_PER_SEND) {
            self.drain()?;
            let first = self.seq.wrapping_add(1);
            let mut batch = Vec::new();
            let mut sent = Vec::with_capacity(chunk.len());
            for flow in chunk {
                let seq = first.wrapping_add(sent.len() as u32);
                match delete_message(flow, seq) {
                    Some(message) => {
                        batch.extend_from_slice(&message);
                        sent.push(flow);
                    }
                    // No entry has addresses of two families.
                    None => tracing::debug!(%flow, "not a conntrack entry; nothing to delete"),
                }
            }
            if sent.is_empty() {
                continue;
            }
            self.seq = first.wrapping_add(sent.len() as u32 - 1);
            self.send(&batch)?;
            let mut answered = vec![false; sent.len()];
            let mut waiting = sent.len();
            let mut refused = None;
            while waiting > 0 {
                let n = receive(&self.fd, &mut self.buf, "the conntrack deletes")?;
                for msg in messages(&self.buf[..n]) {
                    let msg = msg?;
                    let at = msg.seq.wrapping_sub(first) as usize;
                    if msg.ty != NLMSG_ERROR || at >= sent.len() || answered[at] {
                        continue;
                    }
                    answered[at] = true;
                    waiting -= 1;
                    let ack = Ack::parse(&msg)?;
                    match ack.errno {
                        0 => deleted += 1,
                        libc::ENOENT => {}
                        _ if refused.is_some() => {}
                        _ => {
                            let op = format!("delete conntrack entry {}", sent[at]);
                            refused = Some(ack.rejected(op, None));
                        }
                    }
                }
            }
            if let Some(error) = refused {
                return Err(error);
            }
        }
        Ok(deleted)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, bytes: &[u8]) -> Result<(), KernelError> {
        let failed = |source| KernelError::Send {
            bytes: bytes.len(),
            source,
        };
        // A netlink datagram goes whole or not at all.
        let sent = socket::send(self.fd.as_raw_fd(), bytes, MsgFlags::empty())
            .map_err(|e| failed(e.into()))?;
        if sent != bytes.len() {
            let msg = format!("only {sent} bytes were sent");
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                msg,
            )));
        }
        Ok(())
    }

    /// Discards answers left over from an earlier request that failed
    /// early.
    fn drain(&mut self) -> Result<(), KernelError> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) | Err(Errno::ENOBUFS | Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(KernelError::Receive(e.into())),
            }
        }
    }
}

/// Receives one datagram into `buf`; returns its length.
fn receive(fd: &OwnedFd, buf: &mut [u8], waiting_for: &str) -> Result<usize, KernelError> {
    loop {
        match socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC) {
            Ok(n) if n > buf.len() => {
                return Err(malformed(format!("a {n}-byte datagram was truncated")));
            }
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                return Err(KernelError::Timeout {
                    waiting_for: waiting_for.to_string(),
                    after: REPLY_TIMEOUT,
                });
            }
            Err(Errno::ENOBUFS) => {
                return Err(malformed(format!(
                    "answers were lost (receive buffer overrun) while waiting for {waiting_for}"
                )));
            }
            Err(e) => return Err(KernelError::Receive(e.into())),
        }
    }
}

fn dump_failed(errno: Errno, extack: Option<String>) -> KernelError {
    KernelError::Rejected {
        op: "list the conntrack table".into(),
        index: None,
        errno,
        extack,
    }
}

/// A dump of every entry: family AF_UNSPEC, no filter.
fn dump_request(seq: u32) -> Vec<u8> {
    Request::of_subsystem(
        SUBSYS,
        IPCTNL_MSG_CT_GET,
        NLM_F_DUMP,
        seq,
        libc::AF_UNSPEC as u8,
    )
    .finish()
}

/// The delete of `flow`, asking for an acknowledgement; None when its
/// original addresses are of two families (no entry has them).
fn delete_message(flow: &Flow, seq: u32) -> Option<Vec<u8>> {
    let family = match flow.orig.src {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let tuple = tuple_attributes(&flow.orig)?;
    let mut request =
        Request::of_subsystem(SUBSYS, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq, family as u8)
            .nested(cta::TUPLE_ORIG, &tuple);
    if flow.zone != 0 {
        request = request.bytes(cta::ZONE, &flow.zone.to_be_bytes());
    }
    if let Some(id) = flow.id {
        request = request.bytes(cta::ID, &id.to_be_bytes());
    }
    Some(request.finish())
}

/// The attributes of a `CTA_TUPLE_*` nest for `tuple`; None when its
/// addresses are of two families.
fn tuple_attributes(tuple: &Tuple) -> Option<Vec<u8>> {
    let mut ip = Vec::new();
    match (tuple.src, tuple.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            put_attribute(&mut ip, cta::IP_V4_SRC, &src.octets());
            put_attribute(&mut ip, cta::IP_V4_DST, &dst.octets());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            put_attribute(&mut ip, cta::IP_V6_SRC, &src.octets());
            put_attribute(&mut ip, cta::IP_V6_DST, &dst.octets());
        }
        _ => return None,
    }
    let mut l4 = Vec::new();
    put_attribute(&mut l4, cta::PROTO_NUM, &[tuple.proto]);
    if let Some((sport, dport)) = tuple.ports {
        put_attribute(&mut l4, cta::PROTO_SRC_PORT, &sport.to_be_bytes());
        put_attribute(&mut l4, cta::PROTO_DST_PORT, &dport.to_be_bytes());
    }
    if let Some((ty, code, id)) = tuple.icmp {
        let (id_attr, type_attr, code_attr) = if tuple.proto == proto::ICMPV6 {
            (
                cta::PROTO_ICMPV6_ID,
                cta::PROTO_ICMPV6_TYPE,
                cta::PROTO_ICMPV6_CODE,
            )
        } else {
            (
                cta::PROTO_ICMP_ID,
                cta::PROTO_ICMP_TYPE,
                cta::PROTO_ICMP_CODE,
            )
        };
        put_attribute(&mut l4, id_attr, &id.to_be_bytes());
        put_attribute(&mut l4, type_attr, &[ty]);
        put_attribute(&mut l4, code_attr, &[code]);
    }
    let mut nest = Vec::new();
    put_nested(&mut nest, cta::TUPLE_IP, &ip);
    put_nested(&mut nest, cta::TUPLE_PROTO, &l4);
    Some(nest)
}

/// The entry a dump's IPCTNL_MSG_CT_NEW message describes; None for one
/// that is dying.
fn parse_flow(msg: &Message) -> Result<Option<Flow>, String> {
    let (mut orig, mut reply) = (None, None);
    let (mut status, mut id, mut zone, mut mark) = (0, None, 0, 0);
    for (ty, value) in msg.attributes() {
        match ty {
            cta::TUPLE_ORIG => orig = Some(parse_tuple(value)?),
            cta::TUPLE_REPLY => reply = Some(parse_tuple(value)?),
            cta::STATUS => status = be32(value).ok_or("a malformed CTA_STATUS")?,
            cta::ID => id = Some(be32(value).ok_or("a malformed CTA_ID")?),
            cta::ZONE => zone = be16(value).ok_or("a malformed CTA_ZONE")?,
            cta::MARK => mark = be32(value).ok_or("a malformed CTA_MARK")?,
            _ => {}
        }
    }
    if status & status::DYING != 0 {
        return Ok(None);
    }
    let missing = |which: &str| format!("a conntrack entry without its {which} tuple");
    Ok(Some(Flow {
        orig: orig.ok_or_else(|| missing("original"))?,
        reply: reply.ok_or_else(|| missing("reply"))?,
        status,
        id,
        zone,
        mark,
    }))
}

/// Whether the kernel's tuple of this protocol has ports.
fn has_ports(protocol: u8) -> bool {
    [
        proto::TCP,
        proto::UDP,
        libc::IPPROTO_SCTP as u8,
        libc::IPPROTO_DCCP as u8,
        libc::IPPROTO_UDPLITE as u8,
    ]
    .contains(&protocol)
}

/// A `CTA_TUPLE_*` nest.
fn parse_tuple(nest: &[u8]) -> Result<Tuple, String> {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut sport, mut dport) = (None, None);
    let (mut icmp_type, mut icmp_code, mut icmp_id) = (None, None, None);
    for (ty, value) in attributes(nest) {
        match ty {
            cta::TUPLE_IP => {
                for (ty, value) in attributes(value) {
                    let ip = match ty {
                        cta::IP_V4_SRC | cta::IP_V4_DST => <[u8; 4]>::try_from(value)
                            .ok()
                            .map(Ipv4Addr::from)
                            .map(IpAddr::V4),
                        cta::IP_V6_SRC | cta::IP_V6_DST => <[u8; 16]>::try_from(value)
                            .ok()
                            .map(Ipv6Addr::from)
                            .map(IpAddr::V6),
                        _ => continue,
                    };
                    let ip = ip.ok_or("a malformed address in a conntrack tuple")?;
                    match ty {
                        cta::IP_V4_SRC | cta::IP_V6_SRC => src = Some(ip),
                        _ => dst = Some(ip),
                    }
                }
            }
            cta::TUPLE_PROTO => {
                for (ty, value) in attributes(value) {
                    match ty {
                        cta::PROTO_NUM => protocol = value.first().copied(),
                        cta::PROTO_SRC_PORT => sport = be16(value),
                        cta::PROTO_DST_PORT => dport = be16(value),
                        cta::PROTO_ICMP_ID | cta::PROTO_ICMPV6_ID => icmp_id = be16(value),
                        cta::PROTO_ICMP_TYPE | cta::PROTO_ICMPV6_TYPE => {
                            icmp_type = value.first().copied();
                        }
                        cta::PROTO_ICMP_CODE | cta::PROTO_ICMPV6_CODE => {
                            icmp_code = value.first().copied();
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let protocol = protocol.ok_or("a conntrack tuple without its protocol")?;
    let ports = match (sport, dport) {
        (Some(s), Some(d)) if has_ports(protocol) => Some((s, d)),
        _ => None,
    };
    let icmp = match (icmp_type, icmp_code, icmp_id) {
        (Some(t), Some(c), Some(i)) => Some((t, c, i)),
        _ => None,
    };
    match (src, dst) {
        (Some(src), Some(dst)) if src.is_ipv4() == dst.is_ipv4() => Ok(Tuple {
            src,
            dst,
            proto: protocol,
            ports,
            icmp,
        }),
        _ => Err("a conntrack tuple without both addresses of one family".into()),
    }
}

#[cfg(test)]
mod tests;
