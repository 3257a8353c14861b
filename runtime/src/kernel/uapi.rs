//! The nf_tables UAPI numbers (`include/uapi/linux/netfilter/nf_tables.h`,
//! `netfilter.h`) of objects and flowtables, which rustables does not have:
//! the kernel adapter writes them (`encode/objects.rs`) and reads them back
//! (`observe/objects.rs`) by these same names.

pub(crate) const NFTA_OBJ_TABLE: u16 = 1;
pub(crate) const NFTA_OBJ_NAME: u16 = 2;
pub(crate) const NFTA_OBJ_TYPE: u16 = 3;
pub(crate) const NFTA_OBJ_DATA: u16 = 4;
pub(crate) const NFTA_LIMIT_RATE: u16 = 1;
pub(crate) const NFTA_LIMIT_UNIT: u16 = 2;
pub(crate) const NFTA_LIMIT_BURST: u16 = 3;
pub(crate) const NFTA_LIMIT_TYPE: u16 = 4;
pub(crate) const NFTA_LIMIT_FLAGS: u16 = 5;
pub(crate) const NFTA_CT_HELPER_NAME: u16 = 1;
pub(crate) const NFTA_CT_HELPER_L3PROTO: u16 = 2;
pub(crate) const NFTA_CT_HELPER_L4PROTO: u16 = 3;
pub(crate) const NFTA_FLOWTABLE_TABLE: u16 = 1;
pub(crate) const NFTA_FLOWTABLE_NAME: u16 = 2;
pub(crate) const NFTA_FLOWTABLE_HOOK: u16 = 3;
pub(crate) const NFTA_FLOWTABLE_FLAGS: u16 = 7;
pub(crate) const NFTA_FLOWTABLE_HOOK_NUM: u16 = 1;
pub(crate) const NFTA_FLOWTABLE_HOOK_PRIORITY: u16 = 2;
pub(crate) const NFTA_FLOWTABLE_HOOK_DEVS: u16 = 3;
pub(crate) const NFTA_DEVICE_NAME: u16 = 1;
pub(crate) const NF_NETDEV_INGRESS: u32 = 0;
