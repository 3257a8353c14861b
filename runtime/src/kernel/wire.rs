//! Netlink framing: messages in a datagram, attributes in a message, and the
//! few requests the observer and the conntrack client build themselves.

use std::io;

use super::KernelError;

pub(crate) const NLMSG_HDRLEN: usize = 16;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 0x8000;

pub(crate) fn malformed(what: String) -> KernelError {
    KernelError::Receive(io::Error::new(io::ErrorKind::InvalidData, what))
}

pub(crate) struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// The address family in the message's nfgenmsg header.
    pub fn family(&self) -> Option<u8> {
        self.payload.first().copied()
    }

    /// The attributes after the nfgenmsg header.
    pub fn attributes(&self) -> impl Iterator<Item = (u16, &[u8])> {
        attributes(self.payload.get(4..).unwrap_or_default())
    }
}

pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

pub(crate) fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// A big-endian u16 attribute value (ports, conntrack zones).
pub(crate) fn be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.try_into().ok()?))
}

/// A big-endian u32 attribute value (nftables sends numbers in network order).
pub(crate) fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

pub(crate) fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

pub(crate) fn without_nul(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\0").unwrap_or(s)
}

/// A string attribute value, without its terminating NUL.
pub(crate) fn string(v: &[u8]) -> String {
    String::from_utf8_lossy(without_nul(v)).into_owned()
}

/// The netlink messages in one datagram.
pub(crate) fn messages(mut buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, KernelError>> {
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

/// `batch` (messages as the encoder wrote them) with each message replaced
/// by what `rewrite` returns for it, or kept when it returns None; every
/// message padded to 4 bytes. Bytes past a malformed length are kept as
/// they are.
pub(crate) fn rewrite_messages(
    batch: Vec<u8>,
    mut rewrite: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len());
    let mut at = 0;
    while at + NLMSG_HDRLEN <= batch.len() {
        let len = u32_at(&batch, at).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN {
            break;
        }
        let msg = &batch[at..(at + len).min(batch.len())];
        match rewrite(msg) {
            Some(replaced) => out.extend_from_slice(&replaced),
            None => out.extend_from_slice(msg),
        }
        out.resize(align4(out.len()), 0);
        at += align4(len);
    }
    out.extend_from_slice(batch.get(at..).unwrap_or_default());
    out
}

/// The attributes (type, value) in `buf`; stops at a malformed one.
pub(crate) fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(buf, 0)?);
        let ty = u16_at(buf, 2)? & NLA_TYPE_MASK;
        let value = buf.get(NLA_HDRLEN..len)?;
        buf = buf.get(align4(len)..).unwrap_or_default();
        Some((ty, value))
    })
}

/// The value of the first attribute of type `ty`.
pub(crate) fn attribute(buf: &[u8], ty: u16) -> Option<&[u8]> {
    attributes(buf).find(|(t, _)| *t == ty).map(|(_, v)| v)
}

/// Appends one attribute (header, value, padding to 4 bytes) to `buf`.
pub(crate) fn put_attribute(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = NLA_HDRLEN + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align4(buf.len()), 0);
}

/// Appends a nested attribute holding the attributes `inner`, flagged
/// NLA_F_NESTED as libmnl sends them.
pub(crate) fn put_nested(buf: &mut Vec<u8>, ty: u16, inner: &[u8]) {
    put_attribute(buf, ty | NLA_F_NESTED, inner);
}

/// Builds one nfnetlink request: header, nfgenmsg, then attributes.
pub(crate) struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// An nftables request: `msg` is an NFT_MSG_* number; `flags` come on
    /// top of NLM_F_REQUEST.
    pub fn new(msg: u16, flags: u16, seq: u32, family: u8) -> Request {
        Request::of_subsystem(libc::NFNL_SUBSYS_NFTABLES as u8, msg, flags, seq, family)
    }

    /// A request to the nfnetlink subsystem `subsys` (an NFNL_SUBSYS_*
    /// number), `msg` one of its message numbers.
    pub fn of_subsystem(subsys: u8, msg: u16, flags: u16, seq: u32, family: u8) -> Request {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        let ty = (u16::from(subsys) << 8) | msg;
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // nfgenmsg: family, version, resource id.
        buf.extend_from_slice(&[family, libc::NFNETLINK_V0 as u8, 0, 0]);
        Request { buf }
    }

    /// Adds an attribute with a NUL-terminated string value.
    pub fn string(mut self, ty: u16, value: &str) -> Request {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.put(ty, &v);
        self
    }

    pub fn put(&mut self, ty: u16, value: &[u8]) {
        put_attribute(&mut self.buf, ty & !NLA_F_NESTED, value);
    }

    /// Adds a nested attribute holding the attributes `inner`.
    pub fn nested(mut self, ty: u16, inner: &[u8]) -> Request {
        put_nested(&mut self.buf, ty, inner);
        self
    }

    /// Adds an attribute of these bytes.
    pub fn bytes(mut self, ty: u16, value: &[u8]) -> Request {
        self.put(ty, value);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_back() {
        let bytes = Request::new(1, 0x300, 7, 1).string(1, "ww").finish();
        let all: Vec<_> = messages(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 1);
        let m = &all[0];
        assert_eq!(
            (m.ty, m.flags, m.seq, m.family()),
            (0xa01, 0x301, 7, Some(1))
        );
        assert_eq!(attribute(&m.payload[4..], 1).map(string), Some("ww".into()));
    }

    #[test]
    fn truncated_input_stops_cleanly() {
        let bytes = Request::new(1, 0, 1, 1).string(1, "ww").finish();
        assert!(messages(&bytes[..bytes.len() - 3]).next().unwrap().is_err());
        assert_eq!(attributes(&[8, 0, 1]).count(), 0);
    }
}
