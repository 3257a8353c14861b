//! Probes from inside a namespace that the standard library cannot send:
//! a ping (one ICMP echo request from a chosen source address, its reply
//! awaited; the machines the tests run on need not have `ping` installed)
//! and a burst of TCP SYNs whose answers are counted (for a SYN flood
//! limit; nor need they have hping3). The ping's raw socket needs root, as
//! the namespaces do.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::http_client::NetError;
use crate::netns::Netns;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

static NEXT_SEQUENCE: AtomicU16 = AtomicU16::new(0);

/// Sends one echo request from `from` (an address of `netns`) to `to` and
/// waits at most `timeout` for its reply; how long the reply took.
/// `NetError::TimedOut` when none came (the request or the reply was
/// dropped).
pub fn ping(
    netns: &Netns,
    from: Ipv4Addr,
    to: Ipv4Addr,
    timeout: Duration,
) -> Result<Duration, NetError> {
    netns
        .enter(|| ping_here(from, to, timeout))
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => NetError::TimedOut,
            _ => NetError::Other(e.to_string()),
        })
}

fn ping_here(from: Ipv4Addr, to: Ipv4Addr, timeout: Duration) -> io::Result<Duration> {
    // SAFETY: socket has no memory-safety preconditions; the fd is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let local = sockaddr(SocketAddrV4::new(from, 0));
    // SAFETY: a valid sockaddr_in of the length given.
    if unsafe { libc::bind(socket.as_raw_fd(), (&raw const local).cast(), SOCKADDR_LEN) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The low bits of the pid tell our replies from other processes'.
    let id = process::id() as u16;
    let sequence = NEXT_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = echo_request(id, sequence);
    let remote = sockaddr(SocketAddrV4::new(to, 0));
    let sent_at = Instant::now();
    // SAFETY: a valid buffer and sockaddr_in of the lengths given.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&raw const remote).cast(),
            SOCKADDR_LEN,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let deadline = sent_at + timeout;
    let mut packet = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut readable = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut readable, 1, poll_ms(left)) } <= 0 {
            continue;
        }
        // SAFETY: a valid buffer of the length given.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                packet.as_mut_ptr().cast(),
                packet.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if is_reply(&packet[..n as usize], to, id, sequence) {
            return Ok(sent_at.elapsed());
        }
    }
}

/// What [`syn_burst`] saw.
#[derive(Debug, Clone, Copy)]
pub struct SynBurst {
    /// SYNs sent.
    pub sent: usize,
    /// How long sending them took, from the first to the last.
    pub sending: Duration,
    /// Connections answered (a SYN-ACK or a reset) within the window.
    pub answered: usize,
}

/// Opens `count` TCP connections to `to` from `netns` at once, each a
/// non-blocking connect (one SYN each, back to back), and counts how many
/// were answered, with a SYN-ACK or a reset, within `window` of the first.
/// A window under a second sees only the first SYN of each: the kernel
/// sends a SYN again only after its initial retransmission timeout of 1 s
/// (RFC 6298).
pub fn syn_burst(netns: &Netns, to: SocketAddrV4, count: usize, window: Duration) -> SynBurst {
    netns
        .enter(|| syn_burst_here(to, count, window))
        .unwrap_or_else(|e| panic!("SYN burst to {to}: {e}"))
}

fn syn_burst_here(to: SocketAddrV4, count: usize, window: Duration) -> io::Result<SynBurst> {
    let remote = sockaddr(to);
    let started = Instant::now();
    let mut pending = Vec::with_capacity(count);
    for _ in 0..count {
        // SAFETY: socket has no memory-safety preconditions; the fd is
        // checked.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a valid sockaddr_in of the length given.
        let rc = unsafe { libc::connect(fd, (&raw const remote).cast(), SOCKADDR_LEN) };
        let error = io::Error::last_os_error();
        if rc != 0 && error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
        pending.push(socket);
    }
    let sending = started.elapsed();
    let deadline = started + window;
    let mut answered = 0;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfds of the length given.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, poll_ms(left)) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut still = Vec::with_capacity(pending.len());
        for (socket, polled) in pending.into_iter().zip(&fds) {
            if polled.revents == 0 {
                still.push(socket);
                continue;
            }
            match socket_error(&socket)? {
                0 | libc::ECONNREFUSED => answered += 1,
                other => return Err(io::Error::from_raw_os_error(other)),
            }
        }
        pending = still;
    }
    Ok(SynBurst {
        sent: count,
        sending,
        answered,
    })
}

/// A socket's pending error (`SO_ERROR`): 0 once a connect succeeded.
fn socket_error(socket: &OwnedFd) -> io::Result<libc::c_int> {
    let mut error: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid int and its length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(error)
}

const SOCKADDR_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// `left` as poll's timeout, at least 1 ms.
fn poll_ms(left: Duration) -> libc::c_int {
    left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
}

/// An ICMP echo request (no payload beyond the header's 8 bytes and 8 of
/// padding), its checksum filled in.
fn echo_request(id: u16, sequence: u16) -> [u8; 16] {
    let mut message = [0u8; 16];
    message[0] = ICMP_ECHO_REQUEST;
    message[4..6].copy_from_slice(&id.to_be_bytes());
    message[6..8].copy_from_slice(&sequence.to_be_bytes());
    let sum = checksum(&message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// The Internet checksum (RFC 1071) of `bytes`.
pub(crate) fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet` (an IPv4 packet, as a raw socket hands it over) is the
/// echo reply from `from` to our request `id`/`sequence`.
fn is_reply(packet: &[u8], from: Ipv4Addr, id: u16, sequence: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    let (Some(source), Some(icmp)) = (packet.get(12..16), packet.get(header_len..header_len + 8))
    else {
        return false;
    };
    source == from.octets()
        && icmp[0] == ICMP_ECHO_REPLY
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == sequence.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_checksums_to_zero() {
        let request = echo_request(0x1234, 7);
        assert_eq!(checksum(&request), 0);
        assert_eq!(request[0], ICMP_ECHO_REQUEST);
        assert_eq!(request[4..8], [0x12, 0x34, 0, 7]);
    }

    #[test]
    fn only_our_reply_from_the_peer_counts() {
        let mut reply = [0u8; 28];
        reply[0] = 0x45;
        reply[12..16].copy_from_slice(&[203, 0, 113, 1]);
        reply[24..28].copy_from_slice(&[0x12, 0x34, 0, 7]);
        let peer = Ipv4Addr::new(203, 0, 113, 1);
        assert!(is_reply(&reply, peer, 0x1234, 7));
        assert!(!is_reply(&reply, peer, 0x1234, 8));
        assert!(!is_reply(&reply, Ipv4Addr::new(203, 0, 113, 2), 0x1234, 7));
        reply[20] = ICMP_ECHO_REQUEST;
        assert!(!is_reply(&reply, peer, 0x1234, 7));
        assert!(!is_reply(&reply[..22], peer, 0x1234, 7));
    }
}
