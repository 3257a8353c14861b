//! The messages of object and flowtable operations (NEWOBJ, DELOBJ,
//! NEWFLOWTABLE, DELFLOWTABLE), written from the kernel's nf_tables UAPI
//! byte for byte as nft 1.0.6 sends them (`nft --debug=mnl`): rustables has
//! neither, and its batch takes only its own objects. So the batch holds a
//! placeholder at each such message's place (keeping the sequence numbers),
//! and [`splice`] puts these messages there once it is written.

use super::expr::Attrs;
use crate::ir::Object;
use crate::kernel::uapi::{
    NF_NETDEV_INGRESS, NFTA_CT_HELPER_L3PROTO, NFTA_CT_HELPER_L4PROTO, NFTA_CT_HELPER_NAME,
    NFTA_DEVICE_NAME, NFTA_FLOWTABLE_FLAGS, NFTA_FLOWTABLE_HOOK, NFTA_FLOWTABLE_HOOK_DEVS,
    NFTA_FLOWTABLE_HOOK_NUM, NFTA_FLOWTABLE_HOOK_PRIORITY, NFTA_FLOWTABLE_NAME,
    NFTA_FLOWTABLE_TABLE, NFTA_LIMIT_BURST, NFTA_LIMIT_FLAGS, NFTA_LIMIT_RATE, NFTA_LIMIT_TYPE,
    NFTA_LIMIT_UNIT, NFTA_OBJ_DATA, NFTA_OBJ_NAME, NFTA_OBJ_TABLE, NFTA_OBJ_TYPE,
};
use crate::kernel::wire::{NLMSG_HDRLEN, rewrite_messages, u32_at};
use crate::plan::Op;

const NFT_MSG_NEWOBJ: u16 = libc::NFT_MSG_NEWOBJ as u16;
const NFT_MSG_DELOBJ: u16 = libc::NFT_MSG_DELOBJ as u16;
/// Not in libc.
const NFT_MSG_NEWFLOWTABLE: u16 = 22;
const NFT_MSG_DELFLOWTABLE: u16 = 24;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFT_LIMIT_PKTS: u32 = 0;
const NFT_LIMIT_PKT_BYTES: u32 = 1;
const NFT_LIMIT_F_INV: u32 = 1;
const INET: u8 = libc::NFPROTO_INET as u8;

/// One whole message: header, nfgenmsg (family inet), attributes.
pub(super) fn message(msg: u16, flags: u16, seq: u32, attrs: Attrs) -> Vec<u8> {
    let attrs = attrs.into_bytes();
    let len = NLMSG_HDRLEN + 4 + attrs.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    let ty = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | msg;
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[INET, libc::NFNETLINK_V0 as u8, 0, 0]);
    out.extend_from_slice(&attrs);
    out
}

/// The message of an object or flowtable operation on table `table`, with
/// sequence number `seq`; `None` for an operation of another kind. Adds
/// carry NLM_F_CREATE without NLM_F_EXCL, as nft's `add` does: a
/// NEWFLOWTABLE for an existing flowtable updates it.
pub(in crate::kernel) fn encode(op: &Op, table: &str, seq: u32) -> Option<Vec<u8>> {
    let create = (libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16;
    let ack = libc::NLM_F_ACK as u16;
    Some(match op {
        Op::AddObject { name, object } => {
            let attrs = Attrs::default()
                .strz(NFTA_OBJ_TABLE, table)
                .strz(NFTA_OBJ_NAME, name)
                .u32(NFTA_OBJ_TYPE, object.type_id())
                .nested(NFTA_OBJ_DATA, object_data(object));
            message(NFT_MSG_NEWOBJ, create, seq, attrs)
        }
        Op::DeleteObject { name, type_id } => {
            // nft sends an empty data attribute too.
            let attrs = Attrs::default()
                .strz(NFTA_OBJ_TABLE, table)
                .strz(NFTA_OBJ_NAME, name)
                .u32(NFTA_OBJ_TYPE, *type_id)
                .nested(NFTA_OBJ_DATA, Attrs::default());
            message(NFT_MSG_DELOBJ, ack, seq, attrs)
        }
        Op::AddFlowtable { name, flowtable } => {
            let attrs = Attrs::default()
                .strz(NFTA_FLOWTABLE_TABLE, table)
                .strz(NFTA_FLOWTABLE_NAME, name)
                .nested(
                    NFTA_FLOWTABLE_HOOK,
                    hook(flowtable.priority, &flowtable.devices),
                )
                .u32(NFTA_FLOWTABLE_FLAGS, flowtable.flags());
            message(NFT_MSG_NEWFLOWTABLE, create, seq, attrs)
        }
        Op::DeleteFlowtableDevices {
            name,
            priority,
            devices,
        } => {
            let attrs = Attrs::default()
                .strz(NFTA_FLOWTABLE_TABLE, table)
                .strz(NFTA_FLOWTABLE_NAME, name)
                .nested(NFTA_FLOWTABLE_HOOK, hook(*priority, devices));
            message(NFT_MSG_DELFLOWTABLE, ack, seq, attrs)
        }
        Op::DeleteFlowtable { name } => {
            let attrs = Attrs::default()
                .strz(NFTA_FLOWTABLE_TABLE, table)
                .strz(NFTA_FLOWTABLE_NAME, name);
            message(NFT_MSG_DELFLOWTABLE, ack, seq, attrs)
        }
        _ => return None,
    })
}

fn object_data(object: &Object) -> Attrs {
    match object {
        // A new counter starts at zero; nft sends the zeros.
        Object::Counter => Attrs::default()
            .u64(NFTA_COUNTER_BYTES, 0)
            .u64(NFTA_COUNTER_PACKETS, 0),
        // Unlike the limit expression, the object carries a burst always.
        Object::Limit { rate, over } => Attrs::default()
            .u64(NFTA_LIMIT_RATE, rate.amount)
            .u64(NFTA_LIMIT_UNIT, rate.per.seconds())
            .u32(NFTA_LIMIT_BURST, rate.burst)
            .u32(
                NFTA_LIMIT_TYPE,
                if rate.bytes {
                    NFT_LIMIT_PKT_BYTES
                } else {
                    NFT_LIMIT_PKTS
                },
            )
            .u32(NFTA_LIMIT_FLAGS, if *over { NFT_LIMIT_F_INV } else { 0 }),
        // libnftnl sends the helper's name without its NUL.
        Object::CtHelper(h) => Attrs::default()
            .str(NFTA_CT_HELPER_NAME, &h.helper)
            .u16(NFTA_CT_HELPER_L3PROTO, libc::NFPROTO_INET as u16)
            .u8(NFTA_CT_HELPER_L4PROTO, h.protocol.l4().number()),
    }
}

/// A flowtable's hook: ingress, its priority, the devices. nft sends the
/// devices in the reverse of the order it was given them; so does this,
/// of the sorted list. No devices, no device list, as nft: the kernel
/// refuses an empty one.
fn hook(priority: i32, devices: &[String]) -> Attrs {
    let hook = Attrs::default()
        .u32(NFTA_FLOWTABLE_HOOK_NUM, NF_NETDEV_INGRESS)
        .u32(NFTA_FLOWTABLE_HOOK_PRIORITY, priority as u32);
    if devices.is_empty() {
        return hook;
    }
    let mut devs = Attrs::default();
    for d in devices.iter().rev() {
        devs = devs.strz(NFTA_DEVICE_NAME, d);
    }
    hook.nested(NFTA_FLOWTABLE_HOOK_DEVS, devs)
}

/// `bytes` (a written batch) with the message of each sequence number in
/// `messages` (ascending) replaced by the one given.
pub(super) fn splice(bytes: Vec<u8>, messages: &[(u32, Vec<u8>)]) -> Vec<u8> {
    if messages.is_empty() {
        return bytes;
    }
    let mut pending = messages.iter().peekable();
    rewrite_messages(bytes, |placeholder| {
        pending
            .next_if(|(seq, _)| u32_at(placeholder, 8) == Some(*seq))
            .map(|(_, message)| message.clone())
    })
}

#[cfg(test)]
mod tests;
