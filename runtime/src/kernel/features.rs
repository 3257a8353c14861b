//! What this kernel can do beyond what every supported kernel can (the
//! world's `kernel-features`), found out in the calling thread's network
//! namespace without changing anything in it:
//!
//! - Flowtables and conntrack helpers: one nftables batch that would add a
//!   throwaway table holding a flowtable and a ct helper object of every
//!   helper the runtime knows, sent without its end marker. The kernel
//!   checks each message, answers each, and then aborts the batch whole
//!   because it never ended (as for `nft --check`): nothing is committed,
//!   no notification goes out, the generation does not move. It refuses a
//!   flowtable with ENOENT when it has none (CONFIG_NF_FLOW_TABLE), and a
//!   helper it does not have the same way. Where helpers are modules, the
//!   check loads each one, as nft would; a loaded helper does nothing until
//!   a rule attaches it.
//! - Hardware flow offload: the interfaces whose `hw-tc-offload` feature is
//!   on, read with the ethtool ioctl (ETHTOOL_GFEATURES, the feature found
//!   by its name in ETH_SS_FEATURES: its bit differs between kernels).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};

use super::encode::object_message;
use super::netlink::open_socket;
use super::wire::{self, Request, messages, u32_at};
use super::{Kernel, KernelError};
use crate::ir::{CtHelper, Flowtable, Object};
use crate::plan::Op;
use crate::world::{CT_HELPERS, Features};

/// What the nftables probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub flowtables: bool,
    /// By name, in the order of [`CT_HELPERS`].
    pub ct_helpers: Vec<String>,
}

const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The kernel's optional features for a world of `interfaces`, logged in
/// one line; none when they cannot be found out (logged with why): the
/// policies are then told the kernel has none.
pub fn detect_features<K: Kernel + ?Sized>(kernel: &mut K, interfaces: &[String]) -> Features {
    match kernel.features(interfaces) {
        Ok(features) => {
            tracing::info!("kernel features: {}", features.summary());
            features
        }
        Err(e) => {
            tracing::warn!(
                error = %crate::text::error_chain(&e),
                "cannot find out the kernel's optional features (flowtables, conntrack helpers, hardware flow offload); the policies are told it has none"
            );
            Features::default()
        }
    }
}

/// Probes flowtables and conntrack helpers (see the module's comment).
pub fn probe() -> Result<Probed, KernelError> {
    let table = format!("wasmwall-probe-{}", std::process::id());
    // Message i has sequence number i + 1 (0 is the begin marker).
    let create = (libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16;
    let mut messages = vec![
        Request::new(libc::NFT_MSG_NEWTABLE as u16, create, 1, INET)
            .string(NFTA_TABLE_NAME, &table)
            .finish(),
    ];
    let flowtable = Op::AddFlowtable {
        name: "ft".into(),
        flowtable: Flowtable {
            priority: 0,
            devices: Vec::new(),
            hardware_offload: false,
            counter: false,
        },
    };
    let flowtable_seq = 2;
    messages.push(object_message(&flowtable, &table, flowtable_seq).expect("a flowtable"));
    let mut helpers = Vec::new();
    for (i, (name, protocols)) in CT_HELPERS.iter().enumerate() {
        for protocol in *protocols {
            let op = Op::AddObject {
                name: format!("h{i}-{}", protocol.as_str()).into(),
                object: Object::CtHelper(CtHelper {
                    helper: name.to_string(),
                    protocol: *protocol,
                }),
            };
            let seq = messages.len() as u32 + 1;
            messages.push(object_message(&op, &table, seq).expect("an object"));
            helpers.push((seq, *name));
        }
    }
    let batch = [batch_begin(), messages.concat()].concat();
    let answers = send_unended(&batch, messages.len() as u32)?;
    let taken = |seq: u32| answers.get(&seq) == Some(&0);
    if !taken(1) {
        return Err(KernelError::Rejected {
            op: format!("the feature probe's add table inet {table}"),
            index: None,
            errno: Errno::from_raw(answers.get(&1).copied().unwrap_or(0)),
            extack: None,
        });
    }
    let mut ct_helpers: Vec<String> = Vec::new();
    for (seq, name) in helpers {
        if taken(seq) && !ct_helpers.iter().any(|h| h == name) {
            ct_helpers.push(name.to_string());
        }
    }
    Ok(Probed {
        flowtables: taken(flowtable_seq),
        ct_helpers,
    })
}

const INET: u8 = libc::NFPROTO_INET as u8;
const NFTA_TABLE_NAME: u16 = 1;

/// The batch's begin marker: not an nftables message itself, so its type
/// is the bare NFNL_MSG_BATCH_BEGIN, and its resource id names the
/// subsystem the batch is for.
fn batch_begin() -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&20u32.to_ne_bytes());
    out.extend_from_slice(&(libc::NFNL_MSG_BATCH_BEGIN as u16).to_ne_bytes());
    out.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[0, libc::NFNETLINK_V0 as u8]);
    out.extend_from_slice(&(libc::NFNL_SUBSYS_NFTABLES as u16).to_be_bytes());
    out
}

/// Sends a batch without its end marker on a socket of its own and reads
/// the answers to its messages 1..=`last` (each asks for one): the errno
/// by sequence number, 0 for a message the kernel took.
fn send_unended(batch: &[u8], last: u32) -> Result<HashMap<u32, i32>, KernelError> {
    let fd: OwnedFd = open_socket(ANSWER_TIMEOUT)?;
    let sent =
        socket::send(fd.as_raw_fd(), batch, MsgFlags::empty()).map_err(|e| KernelError::Send {
            bytes: batch.len(),
            source: e.into(),
        })?;
    if sent != batch.len() {
        return Err(KernelError::Send {
            bytes: batch.len(),
            source: io::Error::new(io::ErrorKind::WriteZero, "the batch was cut"),
        });
    }
    let mut answers = HashMap::new();
    let mut buf = vec![0u8; 64 << 10];
    while answers.len() < last as usize {
        let n = match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                return Err(KernelError::Timeout {
                    waiting_for: "the answers to the feature probe".into(),
                    after: ANSWER_TIMEOUT,
                });
            }
            Err(e) => return Err(KernelError::Receive(e.into())),
        };
        for msg in messages(&buf[..n]) {
            let msg = msg?;
            if msg.ty != libc::NLMSG_ERROR as u16 || msg.seq > last {
                continue;
            }
            let error = u32_at(msg.payload, 0)
                .ok_or_else(|| wire::malformed("a short netlink error message".into()))?
                as i32;
            // Addressed to the batch itself (no permission): the kernel
            // looked at none of its messages.
            if msg.seq == 0 {
                if error == 0 {
                    continue;
                }
                return Err(KernelError::Rejected {
                    op: "the feature probe's batch".into(),
                    index: None,
                    errno: Errno::from_raw(-error),
                    extack: None,
                });
            }
            answers.insert(msg.seq, -error);
        }
    }
    Ok(answers)
}

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// The feature a flowtable's hardware offload needs (NETIF_F_HW_TC).
const HW_TC_OFFLOAD: &str = "hw-tc-offload";

/// The interfaces among `interfaces` whose `hw-tc-offload` feature is on.
/// An interface that cannot be asked (gone meanwhile) is not among them.
pub fn hardware_offload(interfaces: &[String]) -> io::Result<Vec<String>> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let names = feature_names(&fd)?;
    let Some(bit) = names.iter().position(|n| n == HW_TC_OFFLOAD) else {
        return Ok(Vec::new());
    };
    Ok(interfaces
        .iter()
        .filter(|i| {
            active_features(&fd, i, names.len()).is_ok_and(|active| active.get(bit) == Some(&true))
        })
        .cloned()
        .collect())
}

/// The names of the kernel's netdev features, by bit (the same for every
/// device; asked of the loopback device, which every namespace has).
pub fn feature_names(fd: &OwnedFd) -> io::Result<Vec<String>> {
    // struct ethtool_sset_info: cmd, reserved, sset_mask, then one count
    // per set in the mask.
    let mut info = [0u32; 5];
    info[0] = ETHTOOL_GSSET_INFO;
    info[2] = 1 << ETH_SS_FEATURES;
    ethtool(fd, "lo", info.as_mut_ptr().cast())?;
    let count = info[4] as usize;
    // struct ethtool_gstrings: cmd, string_set, len, then the strings.
    let words = 3 + (count * ETH_GSTRING_LEN).div_ceil(4);
    let mut strings = vec![0u32; words];
    strings[0] = ETHTOOL_GSTRINGS;
    strings[1] = ETH_SS_FEATURES;
    strings[2] = count as u32;
    ethtool(fd, "lo", strings.as_mut_ptr().cast())?;
    let bytes: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes
        .chunks(ETH_GSTRING_LEN)
        .take(count)
        .map(|name| wire::string(name.split(|b| *b == 0).next().unwrap_or_default()))
        .collect())
}

/// Which of `count` features are active on `interface`, by bit.
pub fn active_features(fd: &OwnedFd, interface: &str, count: usize) -> io::Result<Vec<bool>> {
    // struct ethtool_gfeatures: cmd, size, then per 32 features a block of
    // available, requested, active and never_changed.
    let blocks = count.div_ceil(32);
    let mut features = vec![0u32; 2 + 4 * blocks];
    features[0] = ETHTOOL_GFEATURES;
    features[1] = blocks as u32;
    ethtool(fd, interface, features.as_mut_ptr().cast())?;
    Ok((0..count)
        .map(|bit| features[2 + 4 * (bit / 32) + 2] & (1 << (bit % 32)) != 0)
        .collect())
}

/// One SIOCETHTOOL request on `interface`, `data` its command's struct.
fn ethtool(fd: &OwnedFd, interface: &str, data: *mut libc::c_char) -> io::Result<()> {
    if interface.is_empty() || interface.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: ifreq is plain data, valid when zeroed.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in req.ifr_name.iter_mut().zip(interface.bytes()) {
        *to = from as libc::c_char;
    }
    req.ifr_ifru.ifru_data = data;
    // SAFETY: a valid socket, and a request whose data points at the
    // command's struct, sized for what the command writes back (callers
    // size it from the counts the kernel gave).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
