//! The routing table's answer for one destination, as `ip route get` asks
//! it: RTM_GETROUTE on a NETLINK_ROUTE socket of its own, answered with
//! the interface the kernel would send a packet out of. Conntrack records
//! no interfaces; this says where a flow's packets go.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, SockProtocol};
use rtnetlink::packet_core::{
    NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::KernelError;
use super::netlink::{Ack, open_socket_of};
use super::wire::{malformed, messages};

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// One route's answer is a few hundred bytes.
const RECV_BUF: usize = 16 << 10;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const RTM_NEWROUTE: u16 = libc::RTM_NEWROUTE;

/// A NETLINK_ROUTE socket in the network namespace of the thread that
/// opened it.
#[derive(Debug)]
pub(super) struct Routes {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl Routes {
    pub fn open() -> Result<Routes, KernelError> {
        let fd = open_socket_of(SockProtocol::NetlinkRoute, "routing", REPLY_TIMEOUT)?;
        Ok(Routes {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// The index of the interface the kernel routes `dst` out of; None
    /// when it has no route there. A local address gives the loopback
    /// interface.
    pub fn output_interface(&mut self, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        self.drain()?;
        self.seq = self.seq.wrapping_add(1);
        let request = route_request(dst, self.seq);
        let sent = socket::send(self.fd.as_raw_fd(), &request, MsgFlags::empty()).map_err(|e| {
            KernelError::Send {
                bytes: request.len(),
                source: e.into(),
            }
        })?;
        if sent != request.len() {
            return Err(malformed(format!(
                "only {sent} of {} bytes were sent",
                request.len()
            )));
        }
        loop {
            let n = match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(malformed(format!("a {n}-byte datagram was truncated")));
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(KernelError::Timeout {
                        waiting_for: format!("the route to {dst}"),
                        after: REPLY_TIMEOUT,
                    });
                }
                Err(e) => return Err(KernelError::Receive(e.into())),
            };
            for msg in messages(&self.buf[..n]) {
                let msg = msg?;
                if msg.seq != self.seq {
                    continue;
                }
                match msg.ty {
                    RTM_NEWROUTE => return output_interface(msg.payload),
                    NLMSG_ERROR => {
                        let ack = Ack::parse(&msg)?;
                        return match ack.errno {
                            0 => Err(malformed(format!(
                                "the kernel acknowledged the route request for {dst} without a route"
                            ))),
                            // No route, or an unreachable, prohibit
                            // (EACCES) or blackhole (EINVAL) one: no
                            // interface gets the packets.
                            libc::ENETUNREACH
                            | libc::EHOSTUNREACH
                            | libc::EACCES
                            | libc::EINVAL => Ok(None),
                            _ => Err(ack.rejected(format!("ip route get {dst}"), None)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Discards answers left over from an earlier request that timed out.
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

/// RTM_GETROUTE for the host route of `dst`, without an acknowledgement:
/// the answer is the route or an error.
fn route_request(dst: IpAddr, seq: u32) -> Vec<u8> {
    let mut route = RouteMessage::default();
    (
        route.header.address_family,
        route.header.destination_prefix_length,
    ) = match dst {
        IpAddr::V4(_) => (AddressFamily::Inet, 32),
        IpAddr::V6(_) => (AddressFamily::Inet6, 128),
    };
    route
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::from(dst)));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetRoute(route)),
    );
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// The output interface of an RTM_NEWROUTE answer's payload.
fn output_interface(payload: &[u8]) -> Result<Option<u32>, KernelError> {
    let route = RouteMessage::parse(payload)
        .map_err(|e| malformed(format!("a malformed route from the kernel: {e}")))?;
    Ok(route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(index) => Some(*index),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::wire::{attribute, u32_at};

    #[test]
    fn a_route_request_asks_for_the_host_route() {
        let bytes = route_request("192.0.2.7".parse().unwrap(), 9);
        let msg = messages(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.ty, libc::RTM_GETROUTE);
        assert_eq!(msg.flags, NLM_F_REQUEST);
        assert_eq!(msg.seq, 9);
        // rtmsg: family, destination prefix length; then RTA_DST.
        assert_eq!(&msg.payload[..2], &[libc::AF_INET as u8, 32]);
        let dst = attribute(&msg.payload[12..], libc::RTA_DST);
        assert_eq!(dst, Some(&[192, 0, 2, 7][..]));

        let bytes = route_request("2001:db8::1".parse().unwrap(), 10);
        let msg = messages(&bytes).next().unwrap().unwrap();
        assert_eq!(&msg.payload[..2], &[libc::AF_INET6 as u8, 128]);
        let dst = attribute(&msg.payload[12..], libc::RTA_DST).unwrap();
        assert_eq!(dst.len(), 16);
        assert_eq!(u32_at(&bytes, 0), Some(bytes.len() as u32));
    }

    #[test]
    fn the_answer_gives_its_output_interface() {
        // rtmsg of a unicast route in the main table, RTA_DST, RTA_OIF 7.
        let mut payload = vec![libc::AF_INET as u8, 32, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
        crate::kernel::wire::put_attribute(&mut payload, libc::RTA_DST, &[10, 0, 0, 2]);
        crate::kernel::wire::put_attribute(&mut payload, libc::RTA_OIF, &7u32.to_ne_bytes());
        assert_eq!(output_interface(&payload).unwrap(), Some(7));
        payload.truncate(20);
        assert_eq!(output_interface(&payload).unwrap(), None);
    }
}
