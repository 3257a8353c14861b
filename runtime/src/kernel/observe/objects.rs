//! Reading the runtime's objects and flowtables back from their dumps
//! (NEWOBJ, NEWFLOWTABLE messages), and the references rules make to them
//! (`objref`, `flow_offload` expressions). An object or flowtable the
//! runtime would not make (another type, a definition nft has other words
//! for) is read as foreign: without a definition, so the planner replaces
//! or deletes it.

use super::Collector;
use crate::ir::{self, CtHelper, Flowtable, Object, Rate, TimeUnit, Transport};
use crate::kernel::uapi::{
    NF_NETDEV_INGRESS, NFTA_CT_HELPER_L3PROTO, NFTA_CT_HELPER_L4PROTO, NFTA_CT_HELPER_NAME,
    NFTA_DEVICE_NAME, NFTA_FLOWTABLE_FLAGS, NFTA_FLOWTABLE_HOOK, NFTA_FLOWTABLE_HOOK_DEVS,
    NFTA_FLOWTABLE_HOOK_NUM, NFTA_FLOWTABLE_HOOK_PRIORITY, NFTA_FLOWTABLE_NAME,
    NFTA_FLOWTABLE_TABLE, NFTA_LIMIT_BURST, NFTA_LIMIT_FLAGS, NFTA_LIMIT_RATE, NFTA_LIMIT_TYPE,
    NFTA_LIMIT_UNIT, NFTA_OBJ_DATA, NFTA_OBJ_NAME, NFTA_OBJ_TABLE, NFTA_OBJ_TYPE,
};
use crate::kernel::wire::{Message, attribute, attributes, be32, be64, string};
use crate::plan::{KernelName, ObservedFlowtable, ObservedObject, Ref, object_ref};

const NFTA_OBJREF_IMM_TYPE: u16 = 1;
const NFTA_OBJREF_IMM_NAME: u16 = 2;
const NFTA_OBJREF_SET_NAME: u16 = 4;
const NFTA_FLOW_TABLE_NAME: u16 = 1;

impl Collector<'_> {
    /// Records an object of a NEWOBJ message.
    pub fn object(&mut self, msg: &Message) {
        if !self.ours(msg, NFTA_OBJ_TABLE) {
            return;
        }
        let (mut name, mut type_id, mut data) = (None, None, None);
        for (ty, v) in msg.attributes() {
            match ty {
                NFTA_OBJ_NAME => name = Some(string(v)),
                NFTA_OBJ_TYPE => type_id = be32(v),
                NFTA_OBJ_DATA => data = Some(v),
                _ => {}
            }
        }
        let (Some(name), Some(type_id)) = (name, type_id) else {
            return;
        };
        let definition = definition(type_id, data.unwrap_or_default()).map(|o| o.definition());
        self.out.objects.push(ObservedObject {
            name: KernelName::from(name),
            type_id,
            definition,
        });
    }

    /// Records a flowtable of a NEWFLOWTABLE message.
    pub fn flowtable(&mut self, msg: &Message) {
        if !self.ours(msg, NFTA_FLOWTABLE_TABLE) {
            return;
        }
        let (mut name, mut hook, mut flags) = (None, None, 0);
        for (ty, v) in msg.attributes() {
            match ty {
                NFTA_FLOWTABLE_NAME => name = Some(string(v)),
                NFTA_FLOWTABLE_HOOK => hook = Some(v),
                NFTA_FLOWTABLE_FLAGS => flags = be32(v).unwrap_or(u32::MAX),
                _ => {}
            }
        }
        let Some(name) = name else { return };
        self.out.flowtables.push(ObservedFlowtable {
            name: KernelName::from(name),
            flowtable: hook.and_then(|h| flowtable(h, flags)),
        });
    }
}

/// The object of `type_id` whose NFTA_OBJ_DATA is `data`, when it is one
/// the runtime makes.
fn definition(type_id: u32, data: &[u8]) -> Option<Object> {
    match type_id {
        // A counter has no definition; its numbers are the kernel's.
        ir::OBJECT_COUNTER => Some(Object::Counter),
        ir::OBJECT_LIMIT => {
            let unit = attribute(data, NFTA_LIMIT_UNIT).and_then(be64)?;
            let per = [
                TimeUnit::Second,
                TimeUnit::Minute,
                TimeUnit::Hour,
                TimeUnit::Day,
                TimeUnit::Week,
            ]
            .into_iter()
            .find(|u| u.seconds() == unit)?;
            let bytes = match attribute(data, NFTA_LIMIT_TYPE).and_then(be32)? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let over = match attribute(data, NFTA_LIMIT_FLAGS)
                .and_then(be32)
                .unwrap_or(0)
            {
                0 => false,
                1 => true,
                _ => return None,
            };
            let rate = Rate {
                amount: attribute(data, NFTA_LIMIT_RATE).and_then(be64)?,
                bytes,
                per,
                burst: attribute(data, NFTA_LIMIT_BURST)
                    .and_then(be32)
                    .unwrap_or(0),
            };
            Some(Object::Limit { rate, over })
        }
        ir::OBJECT_CT_HELPER => {
            let helper = attribute(data, NFTA_CT_HELPER_NAME).map(string)?;
            let l3 = attribute(data, NFTA_CT_HELPER_L3PROTO)?;
            let l4 = attribute(data, NFTA_CT_HELPER_L4PROTO)?;
            if l3 != (libc::NFPROTO_INET as u16).to_be_bytes() {
                return None;
            }
            let protocol = [Transport::Tcp, Transport::Udp]
                .into_iter()
                .find(|t| l4 == [t.l4().number()])?;
            Some(Object::CtHelper(CtHelper { helper, protocol }))
        }
        _ => None,
    }
}

/// A flowtable of the runtime's kind: on ingress, with only flags it knows
/// and devices by their whole names.
fn flowtable(hook: &[u8], flags: u32) -> Option<Flowtable> {
    if attribute(hook, NFTA_FLOWTABLE_HOOK_NUM).and_then(be32)? != NF_NETDEV_INGRESS
        || flags & !(ir::FLOWTABLE_HW_OFFLOAD | ir::FLOWTABLE_COUNTER) != 0
    {
        return None;
    }
    let priority = attribute(hook, NFTA_FLOWTABLE_HOOK_PRIORITY).and_then(be32)? as i32;
    let mut devices = Vec::new();
    for (ty, v) in attributes(attribute(hook, NFTA_FLOWTABLE_HOOK_DEVS).unwrap_or_default()) {
        // Anything else (a name prefix) is not the runtime's.
        if ty != NFTA_DEVICE_NAME {
            return None;
        }
        devices.push(string(v));
    }
    devices.sort();
    devices.dedup();
    Some(Flowtable {
        priority,
        devices,
        hardware_offload: flags & ir::FLOWTABLE_HW_OFFLOAD != 0,
        counter: flags & ir::FLOWTABLE_COUNTER != 0,
    })
}

/// What an expression named `name` with attributes `data` refers to, when
/// it is an object reference or a flow offload.
pub(super) fn reference(name: &[u8], data: &[u8]) -> Option<Ref> {
    match name {
        b"objref\0" => match (
            attribute(data, NFTA_OBJREF_IMM_TYPE).and_then(be32),
            attribute(data, NFTA_OBJREF_IMM_NAME),
        ) {
            (Some(type_id), Some(object)) => Some(object_ref(type_id, &string(object))),
            // A map of objects: the set is what it refers to.
            _ => attribute(data, NFTA_OBJREF_SET_NAME).map(|s| Ref::Set(string(s).into())),
        },
        b"flow_offload\0" => {
            attribute(data, NFTA_FLOW_TABLE_NAME).map(|f| Ref::Flowtable(string(f).into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
