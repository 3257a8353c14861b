//! OpenWrt's firewall config as a wasmwall policy (work in progress).

pub mod addr;
pub mod criteria;
pub mod error;
pub mod ipsets;
pub mod placed;
pub mod rules;
pub mod uci;
pub mod values;
pub mod zones;
