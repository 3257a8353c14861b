//! One connection's first packet, sent from inside a namespace and left
//! unanswered by us: a TCP SYN (a non-blocking connect, closed at once), a
//! UDP datagram, or an ICMP or ICMPv6 echo request, from a chosen source
//! address and port, in either family. For tests that compare what the
//! rules would do to a packet with what the kernel did to it: the packet
//! is real, what becomes of it is the firewall's business, not ours.

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::netns::Netns;
use crate::probes::checksum;

/// Which first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A SYN from `from` to `to`.
    Tcp,
    /// A one-byte datagram.
    Udp,
    /// An echo request (the ports of the addresses are not used).
    Echo,
}

/// Sends `probe` from `from` (an address of `netns`; port 0 lets the kernel
/// choose) to `to`.
pub fn send_first_packet(netns: &Netns, probe: Probe, from: SocketAddr, to: SocketAddr) {
    netns
        .enter(|| send_here(probe, from, to))
        .unwrap_or_else(|e| panic!("{probe:?} from {from} to {to}: {e}"));
}

fn send_here(probe: Probe, from: SocketAddr, to: SocketAddr) -> io::Result<()> {
    let family = match to.ip() {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let (kind, protocol) = match (probe, to.ip()) {
        (Probe::Tcp, _) => (libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0),
        (Probe::Udp, _) => (libc::SOCK_DGRAM, 0),
        (Probe::Echo, IpAddr::V4(_)) => (libc::SOCK_RAW, libc::IPPROTO_ICMP),
        (Probe::Echo, IpAddr::V6(_)) => (libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
    };
    // SAFETY: socket has no memory-safety preconditions; the fd is checked.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let (local, local_len) = sockaddr(from);
    // SAFETY: a valid sockaddr of the length given.
    if unsafe { libc::bind(socket.as_raw_fd(), (&raw const local).cast(), local_len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (remote, remote_len) = sockaddr(match probe {
        // A raw socket's "port" is its protocol; it must be 0 here.
        Probe::Echo => SocketAddr::new(to.ip(), 0),
        _ => to,
    });
    match probe {
        Probe::Tcp => {
            // SAFETY: a valid sockaddr of the length given.
            let rc = unsafe {
                libc::connect(socket.as_raw_fd(), (&raw const remote).cast(), remote_len)
            };
            let error = io::Error::last_os_error();
            if rc != 0 && error.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(error);
            }
            // The SYN is on its way; closing now sends nothing more.
        }
        Probe::Udp | Probe::Echo => {
            let message = match (probe, to.ip()) {
                (Probe::Udp, _) => vec![b'?'],
                (_, IpAddr::V4(_)) => echo_request(8),
                // The kernel fills in an ICMPv6 checksum itself.
                (_, IpAddr::V6(_)) => echo_request(128),
            };
            // SAFETY: a valid buffer and sockaddr of the lengths given.
            let sent = unsafe {
                libc::sendto(
                    socket.as_raw_fd(),
                    message.as_ptr().cast(),
                    message.len(),
                    0,
                    (&raw const remote).cast(),
                    remote_len,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// An echo request of ICMP type `kind` (8, or ICMPv6's 128), identifier
/// and sequence 1, with its ICMP checksum (which ICMPv6 leaves to the
/// kernel, as it covers a pseudo-header).
fn echo_request(kind: u8) -> Vec<u8> {
    let mut message = vec![kind, 0, 0, 0, 0, 1, 0, 1];
    if kind == 8 {
        let sum = checksum(&message);
        message[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    message
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and
            // suitably aligned for it.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_echo_request_checksums_to_zero() {
        let request = echo_request(8);
        assert_eq!(checksum(&request), 0);
        assert_eq!(request[0], 8);
        assert_eq!(echo_request(128)[2..4], [0, 0], "ICMPv6's is the kernel's");
    }
}
