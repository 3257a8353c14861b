//! The real kernel: a NETLINK_NETFILTER socket the runtime owns.
//!
//! rustables builds the batch; we send it ourselves, because its own
//! `Batch::send` uses a default-sized socket (EMSGSIZE near 1,000 rules) and
//! stops at the first error without saying which message caused it. The
//! kernel processes a batch inside our `send()` call and acknowledges every
//! message (each carries NLM_F_ACK); we read all the acknowledgements and
//! name the first message it refused. A refused batch is aborted whole.
//! The conntrack client and the routing socket (`conntrack`, `route`) are
//! kept here too, opened when first needed.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SetSockOpt, SockFlag, SockProtocol, SockType,
    sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use super::conntrack::Conntrack;
use super::encode::{self, Encoded};
use super::observe::{self, Collector};
use super::route::Routes;
use super::wire::{
    self, Message, Request, align4, attribute, attributes, be32, malformed, messages, u32_at,
    without_nul,
};
use super::{ApplyReport, Kernel, KernelError, Observation};
use crate::flows::Flow;
use crate::netns::{self, NetnsId};
use crate::plan::Transaction;
use crate::world::Features;

/// The kernel answers while `send()` runs, so the answers are queued before
/// we read them; the timeout only guards against a kernel that never does.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive-buffer budget per acknowledged message (nft budgets the same).
const ACK_BUDGET: usize = 1024;
/// Receive-buffer budget per echoed rule: the kernel builds each echo in a
/// buffer of up to NLMSG_GOODSIZE (a page or 8 KiB, trimmed when much is
/// left unused), and the socket is charged the buffer's true size. A rule of
/// 24 matches with a 127-byte comment and log prefix overran a budget of
/// 1 KiB per echo.
const ECHO_BUDGET: usize = 12 << 10;
const MIN_RCVBUF: usize = 256 << 10;
/// Acknowledgements beyond this (about 260,000 messages) could be dropped.
const MAX_RCVBUF: usize = 256 << 20;
const SNDBUF_MARGIN: usize = 64 << 10;
/// Larger than any single datagram the kernel sends on this socket.
const RECV_BUF: usize = 128 << 10;
const NLMSG_HDRLEN: usize = wire::NLMSG_HDRLEN;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_CAPPED: u16 = libc::NLM_F_CAPPED as u16;
const NLM_F_ACK_TLVS: u16 = libc::NLM_F_ACK_TLVS as u16;
const NLM_F_DUMP: u16 = libc::NLM_F_DUMP as u16;
const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NFTA_GEN_ID: u16 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const INET: u8 = libc::NFPROTO_INET as u8;
/// Not in libc.
const NFT_MSG_GETFLOWTABLE: i32 = 23;
/// Rule echoes (each added rule's handle, so the table after a batch is
/// known without reading it) are asked for up to this many added rules:
/// enough for every event-driven change. Each echo is a notification the
/// kernel builds and holds until the commit ends, about 8 KiB of
/// unreclaimable slab (20,000 rules echoed cost 167 MiB, 9 MiB without: the
/// `kernel-memory` example), so
/// a larger batch is not echoed and the table is read back instead (a dump,
/// in bounded pieces): at most 32 MiB of echoes per batch.
const ECHO_LIMIT: usize = 4096;
/// Attempts at a consistent observation while others change the ruleset.
const OBSERVE_ATTEMPTS: usize = 5;

const fn nft(msg: i32) -> u16 {
    ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | msg as u16
}

/// A NETLINK_NETFILTER socket, bound to the network namespace of the thread
/// that created it.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
    echo_limit: usize,
    /// The daemon's monitor socket, unsubscribed while a batch of ours is
    /// in the kernel (see [`Netlink::mute_while_applying`]).
    muted: Option<OwnedFd>,
    /// The inode of the monitor's socket, which is not someone else's.
    muted_inode: Option<u64>,
    /// Whether someone else may have changed the ruleset while the monitor
    /// was unsubscribed.
    missed: bool,
    /// The conntrack client, opened at first use.
    conntrack: Option<Conntrack>,
    /// The routing socket, opened at first use.
    routes: Option<Routes>,
    /// The network namespace the adapter was made in, which the sockets
    /// opened at first use must be in too (None when it cannot be told).
    netns: Option<NetnsId>,
}

impl Netlink {
    /// Opens the nftables socket in the calling thread's network
    /// namespace. The conntrack and routing sockets are opened at first
    /// use, by a thread that must be in the same namespace
    /// ([`KernelError::OtherNamespace`] otherwise).
    pub fn new() -> Result<Self, KernelError> {
        let fd = open_socket(REPLY_TIMEOUT)?;
        // Optional: error answers without the echoed request, and with the
        // kernel's explanation when it has one. Older kernels work without.
        for flag in [libc::NETLINK_CAP_ACK, libc::NETLINK_EXT_ACK] {
            let _ = set_netlink_option(&fd, flag, 1);
        }
        Ok(Netlink {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
            echo_limit: ECHO_LIMIT,
            muted: None,
            muted_inode: None,
            missed: false,
            conntrack: None,
            routes: None,
            netns: netns::current().ok(),
        })
    }

    /// Fails unless the calling thread is in the adapter's namespace, so
    /// that a socket opened now reaches the same kernel tables as the
    /// nftables one.
    fn check_namespace(&self, socket: &'static str) -> Result<(), KernelError> {
        match self.netns {
            Some(made_in) if netns::current().ok() != Some(made_in) => {
                Err(KernelError::OtherNamespace { socket })
            }
            _ => Ok(()),
        }
    }

    fn conntrack(&mut self) -> Result<&mut Conntrack, KernelError> {
        let conntrack = match self.conntrack.take() {
            Some(c) => c,
            None => {
                self.check_namespace("conntrack")?;
                Conntrack::open()?
            }
        };
        Ok(self.conntrack.insert(conntrack))
    }

    fn routes(&mut self) -> Result<&mut Routes, KernelError> {
        let routes = match self.routes.take() {
            Some(r) => r,
            None => {
                self.check_namespace("routing")?;
                Routes::open()?
            }
        };
        Ok(self.routes.insert(routes))
    }

    /// Unsubscribes `monitor` from nftables notifications while a batch of
    /// ours is in the kernel, and subscribes it again after. While a
    /// process listens, the kernel builds a notification of about 8 KiB for
    /// every object a batch adds or deletes, and holds them all until the
    /// commit ends: 20,000 set elements cost 163 MiB of unreclaimable slab
    /// with a listener and 2 MiB without (kernel 6.18; the `kernel-memory`
    /// example). Our
    /// own batch's notifications tell the daemon nothing it does not know;
    /// a change by someone else in the moment it is unsubscribed is caught
    /// by the generation check the daemon runs after each of its batches.
    pub fn mute_while_applying(&mut self, monitor: &Monitor) -> Result<(), KernelError> {
        let fd = monitor
            .fd
            .try_clone()
            .map_err(|source| KernelError::Configure {
                step: "dup of the monitor socket",
                source,
            })?;
        self.muted_inode = nix::sys::stat::fstat(&fd).ok().map(|st| st.st_ino);
        self.muted = Some(fd);
        Ok(())
    }

    /// Sockets of this network namespace, other than our monitor, that
    /// listen to nftables notifications; None when that cannot be read.
    pub fn nftables_listeners(&self) -> Option<usize> {
        super::listeners::read(self.muted_inode)
    }

    /// Whether a change by someone else may have gone unnotified while the
    /// monitor was unsubscribed (the generation after a batch of ours was
    /// not the one our batch made); cleared by asking.
    pub fn take_missed(&mut self) -> bool {
        std::mem::take(&mut self.missed)
    }

    fn set_monitor_membership(&self, on: bool) {
        let Some(fd) = &self.muted else { return };
        let option = if on {
            libc::NETLINK_ADD_MEMBERSHIP
        } else {
            libc::NETLINK_DROP_MEMBERSHIP
        };
        if let Err(e) = set_netlink_option(fd, option, libc::NFNLGRP_NFTABLES as libc::c_int) {
            tracing::error!(error = %e, subscribe = on, "cannot change the nftables monitor's subscription; hand edits are then seen at the reconcile timer");
        }
    }

    fn next_seq(&mut self) -> u32 {
        // Batches number their messages from 0; requests use high numbers.
        self.seq = self.seq.wrapping_add(1) | 0x8000_0000;
        self.seq
    }

    /// Sends one request and hands every answer to `each` until the kernel
    /// says it is done. Returns whether the dump was interrupted by a change
    /// (NLM_F_DUMP_INTR). An error answer is returned as `Err(errno)`.
    fn request(
        &mut self,
        request: Vec<u8>,
        what: &str,
        mut each: impl FnMut(&Message),
    ) -> Result<Result<bool, Errno>, KernelError> {
        self.drain()?;
        let seq = u32_at(&request, 8).unwrap_or(0);
        let dump = request
            .get(6..8)
            .is_some_and(|f| u16::from_ne_bytes([f[0], f[1]]) & NLM_F_DUMP == NLM_F_DUMP);
        self.send(&request)?;
        let mut interrupted = false;
        loop {
            for msg in messages(self.recv(|| what.to_string())?) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.ty {
                    NLMSG_DONE => return Ok(Ok(interrupted)),
                    NLMSG_ERROR => {
                        let ack = Ack::parse(&msg)?;
                        return Ok(if ack.errno == 0 {
                            Ok(interrupted)
                        } else {
                            Err(Errno::from_raw(ack.errno))
                        });
                    }
                    _ => {
                        each(&msg);
                        if !dump {
                            return Ok(Ok(interrupted));
                        }
                    }
                }
            }
        }
    }

    /// One pass over the table: None if it does not exist; the flag says
    /// whether a dump saw a concurrent change.
    fn observe_once(
        &mut self,
        table: &str,
    ) -> Result<(Option<super::ObservedTable>, bool), KernelError> {
        let failed = |what: &str, errno: Errno| KernelError::Rejected {
            op: what.to_string(),
            index: None,
            errno,
            extack: None,
        };
        let seq = self.next_seq();
        let get = Request::new(libc::NFT_MSG_GETTABLE as u16, 0, seq, INET)
            .string(1, table)
            .finish();
        let mut owned = None;
        match self.request(get, "the table", |m| owned = observe::table(m, table))? {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok((None, false)),
            Err(e) => return Err(failed("get table", e)),
        }
        let Some(owned) = owned else {
            return Ok((None, false));
        };
        let mut collector = Collector::new(table, owned);
        let mut interrupted = false;
        // Every dump filters by the table (its attribute 1).
        for (msg, what) in [
            (libc::NFT_MSG_GETCHAIN, "list chains"),
            (libc::NFT_MSG_GETRULE, "list rules"),
            (libc::NFT_MSG_GETOBJ, "list objects"),
            (NFT_MSG_GETFLOWTABLE, "list flowtables"),
        ] {
            let seq = self.next_seq();
            let dump = Request::new(msg as u16, NLM_F_DUMP, seq, INET)
                .string(1, table)
                .finish();
            let answer = self.request(dump, what, |m| match msg {
                libc::NFT_MSG_GETCHAIN => collector.chain(m),
                libc::NFT_MSG_GETRULE => collector.rule(m),
                libc::NFT_MSG_GETOBJ => collector.object(m),
                _ => collector.flowtable(m),
            })?;
            interrupted |= answer.map_err(|e| failed(what, e))?;
        }
        let seq = self.next_seq();
        let dump = Request::new(libc::NFT_MSG_GETSET as u16, NLM_F_DUMP, seq, INET)
            .string(1, table)
            .finish();
        let mut sets = Vec::new();
        let answer = self.request(dump, "list sets", |m| sets.extend(collector.set(m)))?;
        interrupted |= answer.map_err(|e| failed("list sets", e))?;
        for set in sets {
            let seq = self.next_seq();
            let dump = Request::new(libc::NFT_MSG_GETSETELEM as u16, NLM_F_DUMP, seq, INET)
                .string(NFTA_SET_ELEM_LIST_TABLE, table)
                .string(NFTA_SET_ELEM_LIST_SET, &set)
                .finish();
            let what = format!("list elements of set {set}");
            match self.request(dump, &what, |m| collector.elements(&set, m))? {
                Ok(i) => interrupted |= i,
                // Deleted meanwhile: the generation check catches it.
                Err(Errno::ENOENT) => interrupted = true,
                Err(e) => return Err(failed(&what, e)),
            }
        }
        Ok((Some(collector.finish()), interrupted))
    }

    /// Discards answers left over from an earlier request that failed early.
    fn drain(&mut self) -> Result<(), KernelError> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) | Err(Errno::ENOBUFS | Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(KernelError::Receive(e.into())),
            }
        }
    }

    /// Makes room for a batch of `bytes`, for the acknowledgements of its
    /// `messages` and for `echoes` echoed rules.
    fn reserve(&self, bytes: usize, messages: usize, echoes: usize) -> Result<(), KernelError> {
        let snd = bytes + SNDBUF_MARGIN;
        set_buffer(&self.fd, sockopt::SndBufForce, sockopt::SndBuf, snd)
            .map_err(configure("SO_SNDBUF"))?;
        let rcv = (messages * ACK_BUDGET + echoes * ECHO_BUDGET).clamp(MIN_RCVBUF, MAX_RCVBUF);
        set_buffer(&self.fd, sockopt::RcvBufForce, sockopt::RcvBuf, rcv)
            .map_err(configure("SO_RCVBUF"))
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
            return Err(failed(io::Error::new(io::ErrorKind::WriteZero, msg)));
        }
        Ok(())
    }

    /// Receives one datagram.
    fn recv(&mut self, waiting_for: impl Fn() -> String) -> Result<&[u8], KernelError> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(malformed(format!("a {n}-byte datagram was truncated")));
                }
                Ok(n) => return Ok(&self.buf[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    return Err(KernelError::Timeout {
                        waiting_for: waiting_for(),
                        after: REPLY_TIMEOUT,
                    });
                }
                Err(e) => return Err(KernelError::Receive(e.into())),
            }
        }
    }

    /// Reads the kernel's answers to a batch. The kernel handles the whole
    /// batch inside our `send()`, so when it returns every answer is
    /// queued: an error for each message it refused (`texts[i]` describes
    /// the message with sequence number `i + 1`), one for the batch itself
    /// if it was refused whole, and the echoes of added rules. Messages ask
    /// for no acknowledgement, so an empty queue means success. With
    /// `rule_seqs` (the added rules' sequence numbers, ascending), collects
    /// the handles the echoes carry.
    fn read_answers(
        &mut self,
        encoded: &Encoded,
        with_echoes: bool,
    ) -> Result<Option<Vec<u64>>, KernelError> {
        let texts = &encoded.texts;
        let rule_seqs = with_echoes.then_some(&encoded.rule_seqs);
        let mut first_error: Option<(usize, Ack)> = None;
        let mut handles: Option<Vec<Option<u64>>> = rule_seqs.map(|s| vec![None; s.len()]);
        loop {
            let n = match socket::recv(
                self.fd.as_raw_fd(),
                &mut self.buf,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) if n > self.buf.len() => {
                    return Err(malformed(format!("a {n}-byte datagram was truncated")));
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(Errno::ENOBUFS) => {
                    return Err(malformed(
                        "answers to the batch were lost (receive buffer overrun); the kernel may or may not have applied it".into(),
                    ));
                }
                Err(e) => return Err(KernelError::Receive(e.into())),
            };
            for msg in messages(&self.buf[..n]) {
                let msg = msg?;
                if msg.ty == nft(libc::NFT_MSG_NEWRULE) {
                    if let (Some(seqs), Some(handles)) = (rule_seqs, handles.as_mut())
                        && let Ok(at) = seqs.binary_search(&msg.seq)
                    {
                        handles[at] = observe::rule_handle(&msg);
                    }
                    continue;
                }
                if msg.ty != NLMSG_ERROR {
                    continue;
                }
                let ack = Ack::parse(&msg)?;
                let seq = msg.seq as usize;
                if ack.errno == 0 {
                    continue;
                }
                if seq == 0 {
                    // Addressed to the batch itself: the generation moved,
                    // no permission, or no memory.
                    if ack.errno == libc::ERESTART {
                        return Err(KernelError::Changed);
                    }
                    let op = format!("the batch of {} messages", texts.len());
                    return Err(ack.rejected(op, None));
                }
                if seq > texts.len() {
                    // The commit itself failed: answered to the end marker.
                    let op = format!("the commit of the batch of {} messages", texts.len());
                    return Err(ack.rejected(op, None));
                }
                if first_error.as_ref().is_none_or(|(s, _)| seq < *s) {
                    first_error = Some((seq, ack));
                }
            }
        }
        if let Some((seq, ack)) = first_error {
            let index = encoded.ops[seq - 1];
            return Err(ack.rejected(texts[seq - 1].clone(), Some(index)));
        }
        // One echo missing makes the handles unknown, not the batch failed.
        Ok(handles.and_then(|h| h.into_iter().collect()))
    }
}

impl Kernel for Netlink {
    fn generation(&mut self) -> Result<u32, KernelError> {
        let seq = self.next_seq();
        let get = Request::new(libc::NFT_MSG_GETGEN as u16, 0, seq, 0).finish();
        let mut generation = None;
        let answer = self.request(get, "the ruleset generation", |m| {
            if m.ty == nft(libc::NFT_MSG_NEWGEN) {
                generation =
                    attribute(m.payload.get(4..).unwrap_or_default(), NFTA_GEN_ID).and_then(be32);
            }
        })?;
        if let Err(errno) = answer {
            return Err(KernelError::Rejected {
                op: "get generation".into(),
                index: None,
                errno,
                extack: None,
            });
        }
        generation.ok_or_else(|| malformed("no generation in the kernel's answer".into()))
    }

    fn observe(&mut self, table: &str) -> Result<Observation, KernelError> {
        for _ in 0..OBSERVE_ATTEMPTS {
            let generation = self.generation()?;
            let (observed, interrupted) = self.observe_once(table)?;
            if !interrupted && self.generation()? == generation {
                return Ok(Observation {
                    generation,
                    table: observed,
                });
            }
            tracing::debug!("the ruleset changed while it was read; reading again");
        }
        Err(KernelError::Changed)
    }

    fn counters(&mut self, table: &str) -> Result<super::Counters, KernelError> {
        let mut out = super::Counters::default();
        // A dump a change interrupted still gives numbers that were true a
        // moment ago: counters are shown, never planned with.
        for (msg, what) in [
            (libc::NFT_MSG_GETRULE, "list rules for their counters"),
            (libc::NFT_MSG_GETOBJ, "list named counters"),
        ] {
            let seq = self.next_seq();
            let dump = Request::new(msg as u16, NLM_F_DUMP, seq, INET)
                .string(1, table)
                .finish();
            let answer = self.request(dump, what, |m| {
                if msg == libc::NFT_MSG_GETRULE {
                    out.rules.extend(observe::counters::rule_counter(m, table));
                } else {
                    out.named.extend(observe::counters::named_counter(m, table));
                }
            })?;
            match answer {
                Ok(_) | Err(Errno::ENOENT) => {}
                Err(errno) => {
                    return Err(KernelError::Rejected {
                        op: what.to_string(),
                        index: None,
                        errno,
                        extack: None,
                    });
                }
            }
        }
        Ok(out)
    }

    fn apply(
        &mut self,
        tx: &Transaction,
        generation: Option<u32>,
    ) -> Result<ApplyReport, KernelError> {
        if tx.is_empty() {
            return Ok(ApplyReport::default());
        }
        let adds = tx
            .ops
            .iter()
            .filter(|op| matches!(op, crate::plan::Op::AddRule { .. }))
            .count();
        let options = encode::Options {
            generation,
            echo_rules: adds <= self.echo_limit,
        };
        let changes: usize = tx.ops.iter().map(op_changes).sum();
        if changes >= LISTENER_WARNING
            && let Some(others) = self.nftables_listeners().filter(|n| *n > 0)
        {
            tracing::warn!(
                listeners = others,
                changes,
                "another process listens to nftables notifications in this namespace (nft monitor?): the kernel holds a notification of up to 8 KiB for each change of this batch until it commits, about {} MiB more",
                changes * 8 / 1024
            );
        }
        let encoded = encode::encode(tx, options)?;
        self.drain()?;
        let echoes = if options.echo_rules { adds } else { 0 };
        self.reserve(encoded.bytes.len(), encoded.texts.len(), echoes)?;
        self.set_monitor_membership(false);
        let sent = self
            .send(&encoded.bytes)
            .and_then(|()| self.read_answers(&encoded, options.echo_rules));
        self.set_monitor_membership(true);
        if self.muted.is_some() {
            let ours = match (&sent, generation) {
                (Ok(_), Some(g)) => Some(super::next_generation(g)),
                (Err(_), g) => g,
                (Ok(_), None) => None,
            };
            self.missed |= ours.is_none() || self.generation().ok() != ours;
        }
        let handles = sent?;
        Ok(ApplyReport {
            messages: encoded.texts.len(),
            bytes: encoded.bytes.len(),
            rule_handles: handles,
        })
    }

    fn read_sysctl(&mut self, path: &std::path::Path) -> io::Result<String> {
        crate::sysctl::read(path)
    }

    fn write_sysctl(&mut self, path: &std::path::Path, value: &str) -> io::Result<()> {
        crate::sysctl::write(path, value)
    }

    fn features(&mut self, interfaces: &[String]) -> Result<Features, KernelError> {
        let probed = super::features::probe()?;
        let hardware_offload =
            self.hardware_offload(interfaces)
                .map_err(|source| KernelError::Configure {
                    step: "the ethtool feature query",
                    source,
                })?;
        Ok(Features {
            flowtables: probed.flowtables,
            hardware_offload,
            ct_helpers: probed.ct_helpers,
        })
    }

    fn hardware_offload(&mut self, interfaces: &[String]) -> io::Result<Vec<String>> {
        super::features::hardware_offload(interfaces)
    }

    /// Without ctnetlink in the kernel (nf_conntrack_netlink, whose
    /// absence makes the kernel refuse the dump with EINVAL), an empty
    /// table, logged once.
    fn flows(&mut self) -> Result<Vec<Flow>, KernelError> {
        self.conntrack()?.dump()
    }

    fn cut_flows(&mut self, flows: &[Flow]) -> Result<usize, KernelError> {
        if flows.is_empty() {
            return Ok(0);
        }
        self.conntrack()?.delete(flows)
    }

    fn route_oif(&mut self, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        self.routes()?.output_interface(dst)
    }

    fn interface_name(&mut self, index: u32) -> Option<String> {
        nix::net::if_::if_indextoname(index)
            .ok()
            .and_then(|name| name.into_string().ok())
    }
}

/// Changes in one batch from which a listener's cost is worth a warning
/// (8 MiB of kernel memory).
const LISTENER_WARNING: usize = 1_000;

/// The objects one operation changes, each of which a listener is told of.
fn op_changes(op: &crate::plan::Op) -> usize {
    use crate::plan::Op;
    match op {
        Op::AddSet { elements, .. } => 1 + elements.len(),
        Op::AddElements { elements, .. } | Op::DeleteElements { elements, .. } => elements.len(),
        _ => 1,
    }
}

/// A NETLINK_NETFILTER socket in the calling thread's network namespace,
/// bound, whose receives give up after `timeout`.
pub(super) fn open_socket(timeout: Duration) -> Result<OwnedFd, KernelError> {
    open_socket_of(SockProtocol::NetlinkNetFilter, "netfilter", timeout)
}

/// A netlink socket of `protocol` (`name` says which, in errors) in the
/// calling thread's network namespace, bound, whose receives give up after
/// `timeout`.
pub(super) fn open_socket_of(
    protocol: SockProtocol,
    name: &'static str,
    timeout: Duration,
) -> Result<OwnedFd, KernelError> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        protocol,
    )
    .map_err(|e| KernelError::Open {
        socket: name,
        source: e.into(),
    })?;
    socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(configure("bind"))?;
    let timeout = TimeVal::milliseconds(timeout.as_millis() as i64);
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(configure("SO_RCVTIMEO"))?;
    Ok(fd)
}

pub(super) fn configure(step: &'static str) -> impl Fn(Errno) -> KernelError {
    move |e| KernelError::Configure {
        step,
        source: e.into(),
    }
}

/// Sets a buffer size with the FORCE option (root may exceed the system
/// maximum), or within the system maximum when FORCE is not allowed.
pub(super) fn set_buffer<F, P>(fd: &OwnedFd, force: F, plain: P, size: usize) -> nix::Result<()>
where
    F: SetSockOpt<Val = usize>,
    P: SetSockOpt<Val = usize>,
{
    match socket::setsockopt(fd, force, &size) {
        Err(Errno::EPERM) => socket::setsockopt(fd, plain, &size),
        done => done,
    }
}

/// Sets a SOL_NETLINK option that takes an int (nix has none of them).
pub(super) fn set_netlink_option(
    fd: &OwnedFd,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket, and a pointer to an int of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An NLMSG_ERROR answer: errno 0 acknowledges success.
pub(super) struct Ack {
    pub errno: i32,
    pub extack: Option<String>,
}

impl Ack {
    pub fn parse(msg: &Message) -> Result<Ack, KernelError> {
        let short = || malformed("a short netlink error message".into());
        let error = u32_at(msg.payload, 0).ok_or_else(short)? as i32;
        // The request's header is echoed after the error code; its payload
        // too, unless the kernel capped it.
        let echoed = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(u32_at(msg.payload, 4).ok_or_else(short)? as usize)
        };
        let extack = (msg.flags & NLM_F_ACK_TLVS != 0)
            .then(|| msg.payload.get(4 + echoed..))
            .flatten()
            .and_then(|tlvs| attributes(tlvs).find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG))
            .map(|(_, text)| String::from_utf8_lossy(without_nul(text)).into_owned());
        Ok(Ack {
            errno: -error,
            extack,
        })
    }

    pub fn rejected(self, op: String, index: Option<usize>) -> KernelError {
        KernelError::Rejected {
            op,
            index,
            errno: Errno::from_raw(self.errno),
            extack: self.extack,
        }
    }
}

/// A socket subscribed to nftables change notifications of the current
/// network namespace: every committed batch, whoever sent it, makes it
/// readable. Used to notice hand edits of the runtime's table at once.
#[derive(Debug)]
pub struct Monitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Monitor {
    pub fn new() -> Result<Self, KernelError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| KernelError::Open {
            socket: "netfilter",
            source: e.into(),
        })?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(configure("bind"))?;
        let group = libc::NFNLGRP_NFTABLES as libc::c_int;
        set_netlink_option(&fd, libc::NETLINK_ADD_MEMBERSHIP, group).map_err(|source| {
            KernelError::Configure {
                step: "NETLINK_ADD_MEMBERSHIP",
                source,
            }
        })?;
        Ok(Monitor {
            fd,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Reads whatever is queued without blocking; returns how many
    /// notifications (messages) there were. An overrun (ENOBUFS) counts as
    /// one: something changed, details lost.
    pub fn drain(&mut self) -> Result<usize, KernelError> {
        let mut count = 0;
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => count += messages(&self.buf[..n.min(self.buf.len())]).count(),
                Err(Errno::ENOBUFS) => count += 1,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(count),
                Err(e) => return Err(KernelError::Receive(e.into())),
            }
        }
    }
}

impl AsRawFd for Monitor {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
