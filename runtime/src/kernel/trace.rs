//! nftables trace events: a netlink socket subscribed to the kernel's trace
//! group (NFNLGRP_NFTRACE) in the calling thread's network namespace, and
//! the decoding of its NFT_MSG_TRACE messages into [`TraceEvent`]s (pure,
//! unit-tested on constructed bytes). The numbers are the nf_tables UAPI's
//! (`enum nft_trace_attributes`, `enum nft_trace_types`, `enum
//! nft_verdict_attributes`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, SockProtocol, sockopt};

use super::KernelError;
use super::netlink::{configure, open_socket_of, set_buffer, set_netlink_option};
use super::wire::{Message, attribute, be32, be64, messages, string};

const NFTA_TRACE_TABLE: u16 = 1;
const NFTA_TRACE_CHAIN: u16 = 2;
const NFTA_TRACE_RULE_HANDLE: u16 = 3;
const NFTA_TRACE_TYPE: u16 = 4;
const NFTA_TRACE_VERDICT: u16 = 5;
const NFTA_TRACE_ID: u16 = 6;
const NFTA_TRACE_NETWORK_HEADER: u16 = 8;
const NFTA_TRACE_TRANSPORT_HEADER: u16 = 9;
const NFTA_TRACE_IIF: u16 = 10;
const NFTA_TRACE_OIF: u16 = 12;
const NFTA_TRACE_MARK: u16 = 14;
const NFTA_TRACE_NFPROTO: u16 = 15;
const NFTA_TRACE_POLICY: u16 = 16;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_TRACETYPE_POLICY: u32 = 1;
const NFT_TRACETYPE_RETURN: u32 = 2;
const NFT_TRACETYPE_RULE: u32 = 3;

/// A busy trace can send many events in a burst; losing some is reported,
/// not fatal.
const TRACE_RCVBUF: usize = 4 << 20;
const RECV_BUF: usize = 64 << 10;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// A rule matched (its verdict says what it did).
    Rule,
    /// The end of a regular chain was reached: back to the caller.
    Return,
    /// The end of a base chain was reached: its policy decided.
    Policy,
    Other(u32),
}

/// A verdict as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceVerdict {
    /// NF_DROP 0, NF_ACCEPT 1, ..., NFT_CONTINUE -1, NFT_BREAK -2,
    /// NFT_JUMP -3, NFT_GOTO -4, NFT_RETURN -5.
    pub code: i32,
    /// The chain of a jump or goto.
    pub chain: Option<String>,
}

impl TraceVerdict {
    /// The verdict as nft writes it.
    pub fn text(&self) -> String {
        let chain = self.chain.as_deref().unwrap_or("?");
        match self.code {
            0 => "drop".into(),
            1 => "accept".into(),
            2 => "stolen".into(),
            3 => "queue".into(),
            4 => "repeat".into(),
            -1 => "continue".into(),
            -2 => "break".into(),
            -3 => format!("jump {chain}"),
            -4 => format!("goto {chain}"),
            -5 => "return".into(),
            n => format!("verdict {n}"),
        }
    }
}

/// One trace event: a packet marked for tracing passed a rule or the end
/// of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The same for every event of one packet.
    pub id: u32,
    pub kind: TraceKind,
    /// The family of the table (NFPROTO_*: 1 inet, 2 ip, 10 ip6, ...).
    pub table_family: u8,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub verdict: Option<TraceVerdict>,
    /// The packet's family (NFPROTO_IPV4 2, NFPROTO_IPV6 10).
    pub nfproto: Option<u32>,
    pub iif: Option<u32>,
    pub oif: Option<u32>,
    pub mark: Option<u32>,
    /// The base chain's policy (for [`TraceKind::Policy`]).
    pub policy: Option<u32>,
    /// The network and transport headers, sent with the first event of each
    /// hook the packet passes (so NAT between hooks shows).
    pub network_header: Option<Vec<u8>>,
    pub transport_header: Option<Vec<u8>>,
}

/// Decodes one NFT_MSG_TRACE message; None for any other message or one
/// without the id, table and chain every trace event has.
pub(crate) fn parse_message(msg: &Message) -> Option<TraceEvent> {
    let ty = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_TRACE as u16;
    if msg.ty != ty {
        return None;
    }
    let mut event = TraceEvent {
        id: 0,
        kind: TraceKind::Other(0),
        table_family: msg.family()?,
        table: String::new(),
        chain: String::new(),
        handle: None,
        verdict: None,
        nfproto: None,
        iif: None,
        oif: None,
        mark: None,
        policy: None,
        network_header: None,
        transport_header: None,
    };
    let mut id = None;
    for (ty, v) in msg.attributes() {
        match ty {
            NFTA_TRACE_TABLE => event.table = string(v),
            NFTA_TRACE_CHAIN => event.chain = string(v),
            NFTA_TRACE_RULE_HANDLE => event.handle = be64(v),
            NFTA_TRACE_TYPE => {
                event.kind = match be32(v)? {
                    NFT_TRACETYPE_RULE => TraceKind::Rule,
                    NFT_TRACETYPE_RETURN => TraceKind::Return,
                    NFT_TRACETYPE_POLICY => TraceKind::Policy,
                    n => TraceKind::Other(n),
                }
            }
            NFTA_TRACE_VERDICT => {
                event.verdict =
                    attribute(v, NFTA_VERDICT_CODE)
                        .and_then(be32)
                        .map(|code| TraceVerdict {
                            code: code as i32,
                            chain: attribute(v, NFTA_VERDICT_CHAIN).map(string),
                        })
            }
            NFTA_TRACE_ID => id = be32(v),
            NFTA_TRACE_NETWORK_HEADER => event.network_header = Some(v.to_vec()),
            NFTA_TRACE_TRANSPORT_HEADER => event.transport_header = Some(v.to_vec()),
            NFTA_TRACE_IIF => event.iif = be32(v),
            NFTA_TRACE_OIF => event.oif = be32(v),
            NFTA_TRACE_MARK => event.mark = be32(v),
            NFTA_TRACE_NFPROTO => event.nfproto = be32(v),
            NFTA_TRACE_POLICY => event.policy = be32(v),
            _ => {}
        }
    }
    event.id = id?;
    (!event.table.is_empty() && !event.chain.is_empty()).then_some(event)
}

/// The trace events in one datagram, in order; malformed messages are
/// skipped.
pub(crate) fn parse_datagram(buf: &[u8]) -> Vec<TraceEvent> {
    messages(buf)
        .filter_map(Result::ok)
        .filter_map(|m| parse_message(&m))
        .collect()
}

/// What one [`TraceSocket::receive`] got.
#[derive(Debug, Default)]
pub struct Received {
    pub events: Vec<TraceEvent>,
    /// The socket overran: events were lost.
    pub lost: bool,
}

/// A socket subscribed to the trace events of the calling thread's network
/// namespace. Every process subscribed gets every event, so two traces at
/// once each see the other's packets too: the caller keeps its own (by
/// the table its trace rule is in).
#[derive(Debug)]
pub struct TraceSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl TraceSocket {
    /// Opens and subscribes; a receive gives up after `poll`.
    pub fn open(poll: Duration) -> Result<TraceSocket, KernelError> {
        let fd = open_socket_of(SockProtocol::NetlinkNetFilter, "netfilter", poll)?;
        set_buffer(&fd, sockopt::RcvBufForce, sockopt::RcvBuf, TRACE_RCVBUF)
            .map_err(configure("SO_RCVBUF"))?;
        set_netlink_option(
            &fd,
            libc::NETLINK_ADD_MEMBERSHIP,
            libc::NFNLGRP_NFTRACE as libc::c_int,
        )
        .map_err(|source| KernelError::Configure {
            step: "NETLINK_ADD_MEMBERSHIP of the trace group",
            source,
        })?;
        Ok(TraceSocket {
            fd,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Waits up to the poll time for one datagram of events; none when the
    /// wait ended (timeout or a signal).
    pub fn receive(&mut self) -> Result<Received, KernelError> {
        match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
            Ok(n) => Ok(Received {
                events: parse_datagram(&self.buf[..n.min(self.buf.len())]),
                lost: false,
            }),
            Err(Errno::ENOBUFS) => Ok(Received {
                events: Vec::new(),
                lost: true,
            }),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(Received::default()),
            Err(e) => Err(KernelError::Receive(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::wire::{Request, put_attribute};

    fn trace_message(attrs: impl FnOnce(Request) -> Request) -> Vec<u8> {
        let request = Request::new(libc::NFT_MSG_TRACE as u16, 0, 0, libc::NFPROTO_INET as u8);
        attrs(request).finish()
    }

    #[test]
    fn a_rule_event_decodes() {
        let mut verdict = Vec::new();
        put_attribute(
            &mut verdict,
            NFTA_VERDICT_CODE,
            &(-3i32 as u32).to_be_bytes(),
        );
        put_attribute(&mut verdict, NFTA_VERDICT_CHAIN, b"pf/fwd\0");
        let ip = [
            0x45u8, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 168, 0, 2, 192, 168, 0, 9,
        ];
        let bytes = trace_message(|r| {
            r.string(NFTA_TRACE_TABLE, "wasmwall")
                .string(NFTA_TRACE_CHAIN, "pf/prerouting")
                .bytes(NFTA_TRACE_ID, &0xdead_beefu32.to_be_bytes())
                .bytes(NFTA_TRACE_TYPE, &NFT_TRACETYPE_RULE.to_be_bytes())
                .bytes(NFTA_TRACE_RULE_HANDLE, &7u64.to_be_bytes())
                .nested(NFTA_TRACE_VERDICT, &verdict)
                .bytes(NFTA_TRACE_NFPROTO, &2u32.to_be_bytes())
                .bytes(NFTA_TRACE_IIF, &3u32.to_be_bytes())
                .bytes(NFTA_TRACE_NETWORK_HEADER, &ip)
        });
        let events = parse_datagram(&bytes);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.id, 0xdead_beef);
        assert_eq!(e.kind, TraceKind::Rule);
        assert_eq!(
            (e.table.as_str(), e.chain.as_str()),
            ("wasmwall", "pf/prerouting")
        );
        assert_eq!(e.handle, Some(7));
        assert_eq!(e.table_family, libc::NFPROTO_INET as u8);
        let v = e.verdict.as_ref().unwrap();
        assert_eq!(v.text(), "jump pf/fwd");
        assert_eq!((e.nfproto, e.iif, e.oif), (Some(2), Some(3), None));
        assert_eq!(e.network_header.as_deref(), Some(&ip[..]));
    }

    #[test]
    fn a_policy_event_decodes() {
        let bytes = trace_message(|r| {
            r.string(NFTA_TRACE_TABLE, "wasmwall")
                .string(NFTA_TRACE_CHAIN, "pf/input")
                .bytes(NFTA_TRACE_ID, &1u32.to_be_bytes())
                .bytes(NFTA_TRACE_TYPE, &NFT_TRACETYPE_POLICY.to_be_bytes())
                .bytes(NFTA_TRACE_POLICY, &0u32.to_be_bytes())
        });
        let e = &parse_datagram(&bytes)[0];
        assert_eq!(
            (e.kind, e.policy, e.handle),
            (TraceKind::Policy, Some(0), None)
        );
    }

    #[test]
    fn other_messages_and_incomplete_events_are_skipped() {
        let no_id = trace_message(|r| {
            r.string(NFTA_TRACE_TABLE, "t")
                .string(NFTA_TRACE_CHAIN, "c")
        });
        assert!(parse_datagram(&no_id).is_empty());
        let other = Request::new(libc::NFT_MSG_NEWRULE as u16, 0, 0, 1)
            .string(NFTA_TRACE_TABLE, "t")
            .finish();
        assert!(parse_datagram(&other).is_empty());
        // Two events in one datagram, the second truncated.
        let one = trace_message(|r| {
            r.string(NFTA_TRACE_TABLE, "t")
                .string(NFTA_TRACE_CHAIN, "c")
                .bytes(NFTA_TRACE_ID, &5u32.to_be_bytes())
        });
        let mut two = one.clone();
        two.extend_from_slice(&one[..one.len() - 4]);
        assert_eq!(parse_datagram(&two).len(), 1);
    }
}
