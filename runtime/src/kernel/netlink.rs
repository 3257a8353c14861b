//! The real kernel: a NETLINK_NETFILTER socket the runtime owns.
//!
//! rustables builds the batch; we send it ourselves, because its own
//! `Batch::send` uses a default-sized socket (EMSGSIZE near 1,000 rules) and
//! stops at the first error without saying which message caused it. The
//! kernel processes a batch inside our `send()` call and acknowledges every
//! message (each carries NLM_F_ACK); we read all the acknowledgements and
//! name the first message it refused. A refused batch is aborted whole.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SetSockOpt, SockFlag, SockProtocol, SockType,
    sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use super::encode::{self, Encoded};
use super::{ApplyReport, Kernel, KernelError};
use crate::plan::Transaction;

/// The kernel answers while `send()` runs, so the answers are queued before
/// we read them; the timeout only guards against a kernel that never does.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive-buffer budget per acknowledged message (nft budgets the same).
const ACK_BUDGET: usize = 1024;
const MIN_RCVBUF: usize = 256 << 10;
/// Acknowledgements beyond this (about 260,000 messages) could be dropped.
const MAX_RCVBUF: usize = 256 << 20;
const SNDBUF_MARGIN: usize = 64 << 10;
/// Larger than any single datagram the kernel sends on this socket.
const RECV_BUF: usize = 128 << 10;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_CAPPED: u16 = libc::NLM_F_CAPPED as u16;
const NLM_F_ACK_TLVS: u16 = libc::NLM_F_ACK_TLVS as u16;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NFT_MSG_NEWTABLE: u16 =
    ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWTABLE as u16;
const NFTA_TABLE_NAME: u16 = 1;
const DUMP_SEQ: u32 = 1;

/// A NETLINK_NETFILTER socket, bound to the network namespace of the thread
/// that created it.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens the socket in the calling thread's network namespace.
    pub fn new() -> Result<Self, KernelError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| KernelError::Open(e.into()))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(configure("bind"))?;
        let timeout = TimeVal::milliseconds(REPLY_TIMEOUT.as_millis() as i64);
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)
            .map_err(configure("SO_RCVTIMEO"))?;
        // Optional: error answers without the echoed request, and with the
        // kernel's explanation when it has one. Older kernels work without.
        for flag in [libc::NETLINK_CAP_ACK, libc::NETLINK_EXT_ACK] {
            let _ = enable_netlink_flag(&fd, flag);
        }
        Ok(Netlink {
            fd,
            buf: vec![0; RECV_BUF],
        })
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

    /// Makes room for a batch of `bytes` and for the acknowledgements of its
    /// `messages`.
    fn reserve(&self, bytes: usize, messages: usize) -> Result<(), KernelError> {
        let snd = bytes + SNDBUF_MARGIN;
        set_buffer(&self.fd, sockopt::SndBufForce, sockopt::SndBuf, snd)
            .map_err(configure("SO_SNDBUF"))?;
        let rcv = (messages * ACK_BUDGET).clamp(MIN_RCVBUF, MAX_RCVBUF);
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

    /// Reads the acknowledgement of every message (`texts[i]` describes the
    /// message with sequence number `i + 1`), then reports the first refusal.
    fn read_acks(&mut self, texts: &[String]) -> Result<(), KernelError> {
        let mut acked = vec![false; texts.len()];
        let mut missing = texts.len();
        let mut first_error: Option<(usize, Ack)> = None;
        while missing > 0 {
            let waiting_for = || format!("{missing} of {} messages", texts.len());
            for msg in messages(self.recv(waiting_for)?) {
                let msg = msg?;
                if msg.ty != NLMSG_ERROR {
                    continue;
                }
                let ack = Ack::parse(&msg)?;
                let seq = msg.seq as usize;
                if seq == 0 {
                    // Addressed to the batch itself: no permission, no
                    // memory, or the commit failed.
                    if ack.errno != 0 {
                        let op = format!("the batch of {} messages", texts.len());
                        return Err(ack.rejected(op));
                    }
                    continue;
                }
                let Some(seen) = acked.get_mut(seq - 1).filter(|seen| !**seen) else {
                    continue;
                };
                *seen = true;
                missing -= 1;
                let earlier = first_error.as_ref().is_some_and(|(s, _)| *s < seq);
                if ack.errno != 0 && !earlier {
                    first_error = Some((seq, ack));
                }
            }
        }
        match first_error {
            Some((seq, ack)) => Err(ack.rejected(texts[seq - 1].clone())),
            None => Ok(()),
        }
    }
}

impl Kernel for Netlink {
    fn table_exists(&mut self, table: &str) -> Result<bool, KernelError> {
        self.drain()?;
        let request = rustables::query::get_list_of_objects(
            libc::NFT_MSG_GETTABLE as u16,
            DUMP_SEQ,
            None::<&rustables::Table>,
        )
        .map_err(|e| KernelError::Encode {
            op: "list tables".into(),
            reason: e.to_string(),
        })?;
        self.send(&request)?;
        let mut found = false;
        loop {
            for msg in messages(self.recv(|| "the list of tables".into())?) {
                let msg = msg?;
                match msg.ty {
                    NLMSG_DONE => return Ok(found),
                    NLMSG_ERROR => {
                        let ack = Ack::parse(&msg)?;
                        if ack.errno != 0 {
                            return Err(ack.rejected("list tables".into()));
                        }
                    }
                    NFT_MSG_NEWTABLE => found |= is_inet_table(msg.payload, table),
                    _ => {}
                }
            }
        }
    }

    fn apply(&mut self, tx: &Transaction) -> Result<ApplyReport, KernelError> {
        if tx.is_empty() {
            return Ok(ApplyReport::default());
        }
        let Encoded { bytes, texts } = encode::encode(tx)?;
        self.drain()?;
        self.reserve(bytes.len(), texts.len())?;
        self.send(&bytes)?;
        self.read_acks(&texts)?;
        Ok(ApplyReport {
            messages: texts.len(),
            bytes: bytes.len(),
        })
    }
}

fn configure(step: &'static str) -> impl Fn(Errno) -> KernelError {
    move |e| KernelError::Configure {
        step,
        source: e.into(),
    }
}

fn malformed(what: String) -> KernelError {
    KernelError::Receive(io::Error::new(io::ErrorKind::InvalidData, what))
}

/// Sets a buffer size with the FORCE option (root may exceed the system
/// maximum), or within the system maximum when FORCE is not allowed.
fn set_buffer<F, P>(fd: &OwnedFd, force: F, plain: P, size: usize) -> nix::Result<()>
where
    F: SetSockOpt<Val = usize>,
    P: SetSockOpt<Val = usize>,
{
    match socket::setsockopt(fd, force, &size) {
        Err(Errno::EPERM) => socket::setsockopt(fd, plain, &size),
        done => done,
    }
}

fn enable_netlink_flag(fd: &OwnedFd, flag: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket, and a pointer to an int of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            flag,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

struct Message<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// The netlink messages in one datagram.
fn messages(mut buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, KernelError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let len = u32_at(buf, 0).map(|l| l as usize);
        let Some(len) = len.filter(|l| (NLMSG_HDRLEN..=buf.len()).contains(l)) else {
            buf = &[];
            return Some(Err(malformed(
                "a netlink message overruns its datagram".into(),
            )));
        };
        let msg = Message {
            ty: u16_at(buf, 4)?,
            flags: u16_at(buf, 6)?,
            seq: u32_at(buf, 8)?,
            payload: &buf[NLMSG_HDRLEN..len],
        };
        buf = buf.get(align4(len)..).unwrap_or_default();
        Some(Ok(msg))
    })
}

/// The attributes (type, value) in `buf`; stops at a malformed one.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(buf, 0)?);
        let ty = u16_at(buf, 2)? & NLA_TYPE_MASK;
        let value = buf.get(4..len)?;
        buf = buf.get(align4(len)..).unwrap_or_default();
        Some((ty, value))
    })
}

fn without_nul(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\0").unwrap_or(s)
}

/// An NLMSG_ERROR answer: errno 0 acknowledges success.
struct Ack {
    errno: i32,
    extack: Option<String>,
}

impl Ack {
    fn parse(msg: &Message) -> Result<Ack, KernelError> {
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

    fn rejected(self, op: String) -> KernelError {
        KernelError::Rejected {
            op,
            errno: Errno::from_raw(self.errno),
            extack: self.extack,
        }
    }
}

/// Whether a NEWTABLE message (nfgenmsg, then attributes) describes the inet
/// table `name`.
fn is_inet_table(payload: &[u8], name: &str) -> bool {
    let Some((genmsg, attrs)) = payload.split_at_checked(4) else {
        return false;
    };
    genmsg[0] == libc::NFPROTO_INET as u8
        && attributes(attrs)
            .any(|(ty, v)| ty == NFTA_TABLE_NAME && without_nul(v) == name.as_bytes())
}
