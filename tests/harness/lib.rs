//! Harness for the end-to-end tests: it finds the built binary and policies,
//! runs commands loudly, creates network namespaces that are always removed,
//! keeps background processes on a leash, runs real DHCP (v4 and v6) and
//! router advertisements, and sends real TCP, HTTP and ICMP traffic from
//! inside a namespace. Tests that need root skip, saying so, when they do
//! not run as root.
//!
//! Everything that touches the kernel happens inside namespaces made here;
//! nothing in this crate reads or writes the root namespace's firewall or
//! sysctls. Each module has one job; this file only declares them and
//! re-exports what the tests use.

mod child;
mod command;
mod dhcp;
mod dhcp6;
mod echo;
mod files;
mod first_packet;
mod http_client;
mod http_server;
mod neigh;
mod netns;
mod paths;
mod probes;
mod root;
mod ruleset;
mod switch;
mod wait;
mod wasmwall;

pub use child::Child;
pub use command::{Output, describe, run, run_unchecked};
pub use dhcp::{Dnsmasq, DnsmasqOptions, Udhcpc};
pub use dhcp6::{
    Dhcpcd, DhcpcdFamilies, Ipv6Address, Ipv6Prefix, ipv6_addresses, ipv6_host_sysctls,
    ipv6_router_sysctls, wait_for_ipv6_address, wait_for_slaac,
};
pub use echo::{EchoConnection, EchoServer};
pub use files::{TempDir, files_in, replace_file, temp_dir, toml_path, toml_string, write_script};
pub use first_packet::{Probe, send_first_packet};
pub use http_client::{ContinuousClient, NetError, Tally, http_get, tcp_connect};
pub use http_server::HttpServer;
pub use neigh::{Neighbour, neighbours};
pub use netns::{Netns, VethEnd, veth_pair};
pub use paths::{
    PORT_FORWARD_LANGUAGES, compile_cache_dir, policy_wasm, release_bin, repo_root, wasmwall_bin,
};
pub use probes::{SynBurst, ping, syn_burst};
pub use root::{is_root, require_root, skip_unless_root};
pub use ruleset::{Ruleset, find_line, without_counter_values};
pub use switch::Switch;
pub use wait::wait_until;
pub use wasmwall::{START_TIMEOUT, STOP_TIMEOUT, logged_field, wasmwall_in};
