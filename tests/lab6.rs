//! The IPv6 lab of tests/router6.rs without any firewall (no wasmwall):
//! proves the harness's IPv6 pieces (dnsmasq's DHCPv6 and router
//! advertisements, dhcpcd, SLAAC, a prefix change) on their own, so that a
//! failure there is not taken for one of wasmwall's, and prints how long
//! each step takes.
//!
//! ```text
//!  nas (dhcpcd: DHCPv6 + SLAAC + DHCPv4) --+
//!                                          switch -- lan0 router wan0 -- eth0 wan
//!  slaac (SLAAC only, known MAC) ----------+   2001:db8:1::1/64   2001:db8:ff::1/64  ::2/64
//!                                              (then 2001:db8:2::1/64)
//!                                              192.168.1.1/24     203.0.113.1/24     .2/24
//! ```
//!
//! dnsmasq in the router serves DHCPv4, stateful DHCPv6 from lan0's prefix
//! (`constructor:lan0`) and router advertisements with the A flag. The wan
//! host reaches an HTTP server on each LAN host over IPv6 through the
//! router; then the router's LAN prefix is replaced, and both hosts get
//! addresses in the new prefix and are reachable at them, not at the old.

use std::fs;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use wasmwall_e2e::{
    Dhcpcd, DhcpcdFamilies, Dnsmasq, HttpServer, Ipv6Prefix, Netns, Switch, http_get,
    ipv6_addresses, ipv6_host_sysctls, ipv6_router_sysctls, neighbours, skip_unless_root, temp_dir,
    wait_for_ipv6_address, wait_for_slaac, wait_until, write_script,
};

const OLD_PREFIX: Ipv6Prefix = Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64);
const NEW_PREFIX: Ipv6Prefix = Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0), 64);
const WAN_PREFIX: Ipv6Prefix =
    Ipv6Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0), 64);
const SLAAC_MAC: &str = "02:00:00:00:5a:ac";
const NAS_MAC: &str = "02:00:00:00:0a:5a";
const DHCP_RANGE: &str = "192.168.1.100,192.168.1.200,255.255.255.0,1h";
/// Generous: each step takes about a second.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// The script dnsmasq runs for each lease: one line per call, its
/// arguments and then its DNSMASQ_* variables.
const LEASE_SCRIPT: &str = r#"#!/bin/sh
echo "$* | $(env | grep '^DNSMASQ_' | grep -v '^DNSMASQ_LOG_DHCP' | sort | tr '\n' ' ')" >> "$LAB6_CALLS"
"#;

fn cidr(prefix: Ipv6Prefix, host: u128) -> String {
    format!("{}/{}", prefix.host(host), prefix.len)
}

fn http(addr: Ipv6Addr) -> SocketAddr {
    SocketAddr::from((addr, 80))
}

fn log(started: Instant, what: &str) {
    eprintln!("lab6: {:>7.3} s  {what}", started.elapsed().as_secs_f64());
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn ipv6_lab_hosts_follow_a_prefix_change() {
    if skip_unless_root() {
        return;
    }
    let began = Instant::now();
    let dir = temp_dir();
    // Declared first, dropped last: the processes below go first.
    let router = Netns::new("router");
    let wan = Netns::new("wan");
    let nas = Netns::new("nas");
    let slaac = Netns::new("slaac");
    let switch = Switch::new("switch");
    ipv6_router_sysctls(&router);
    for host in [&wan, &nas, &slaac] {
        ipv6_host_sysctls(host);
    }
    switch.connect((&router, "lan0", "192.168.1.1/24"), None);
    router.run([
        "ip",
        "-6",
        "addr",
        "add",
        &cidr(OLD_PREFIX, 1),
        "dev",
        "lan0",
    ]);
    wasmwall_e2e::veth_pair(
        (&router, "wan0", "203.0.113.1/24"),
        (&wan, "eth0", "203.0.113.2/24"),
    );
    router.run([
        "ip",
        "-6",
        "addr",
        "add",
        &cidr(WAN_PREFIX, 1),
        "dev",
        "wan0",
    ]);
    wan.run([
        "ip",
        "-6",
        "addr",
        "add",
        &cidr(WAN_PREFIX, 2),
        "dev",
        "eth0",
    ]);
    let via = WAN_PREFIX.host(1).to_string();
    for prefix in [OLD_PREFIX, NEW_PREFIX] {
        wan.run(["ip", "-6", "route", "add", &prefix.to_string(), "via", &via]);
    }

    let calls = dir.path().join("dnsmasq-calls");
    let script = dir.path().join("lease-script");
    write_script(&script, LEASE_SCRIPT);
    let dnsmasq = Dnsmasq::options("lan0")
        .dhcp_range(DHCP_RANGE)
        .dhcpv6_range("::100", "::1ff", true, "1h")
        .router_advertisements(Duration::from_secs(4), Duration::from_secs(60))
        .script(&script)
        .env("LAB6_CALLS", calls.as_os_str())
        .start(&router, dir.path());
    log(began, "lab and dnsmasq up");

    let nas_server = HttpServer::start(&nas, "[::]:80".parse().unwrap());
    let slaac_server = HttpServer::start(&slaac, "[::]:80".parse().unwrap());

    // The SLAAC host: from its link coming up to its address.
    let t = Instant::now();
    switch.connect((&slaac, "eth0", ""), Some(SLAAC_MAC));
    let slaac_old = wait_for_slaac(&slaac, "eth0", OLD_PREFIX, STEP_TIMEOUT);
    log(t, &format!("slaac host has {slaac_old} (from link up)"));

    // The DHCPv6 host: from starting dhcpcd to each address.
    switch.connect((&nas, "eth0", ""), Some(NAS_MAC));
    let t = Instant::now();
    let mut dhcpcd = Dhcpcd::start(&nas, "eth0", "nas", DhcpcdFamilies::Ipv4AndIpv6, dir.path());
    let nas_old = dhcpcd.wait_for_lease6(OLD_PREFIX, STEP_TIMEOUT);
    log(
        t,
        &format!("nas has DHCPv6 lease {nas_old} (from dhcpcd start)"),
    );
    let nas_slaac = wait_for_slaac(&nas, "eth0", OLD_PREFIX, STEP_TIMEOUT);
    log(t, &format!("nas has SLAAC {nas_slaac}"));
    let nas_v4 = dhcpcd.wait_for_lease4(STEP_TIMEOUT);
    log(t, &format!("nas has DHCPv4 lease {nas_v4}"));
    let duid = dhcpcd.duid().expect("dhcpcd has made its DUID");
    eprintln!("lab6: nas DUID {duid}");

    // dnsmasq's record of the lease: the lease file and the script.
    let lease_line = wait_until(
        "the DHCPv6 lease in dnsmasq's lease file",
        STEP_TIMEOUT,
        || {
            let leases = read(dnsmasq.lease_file());
            leases
                .lines()
                .find(|l| l.contains(&format!(" {nas_old} ")))
                .map(str::to_string)
                .ok_or(leases)
        },
    );
    assert!(
        lease_line.ends_with(&format!(" nas {duid}")),
        "the lease names the host and its DUID: {lease_line:?}"
    );
    wait_until("the script's add of the DHCPv6 lease", STEP_TIMEOUT, || {
        let calls = read(&calls);
        calls
            .contains(&format!("add {duid} {nas_old} nas |"))
            .then_some(())
            .ok_or(calls)
    });

    let before = neighbours(&router, "lan0");
    eprintln!(
        "lab6: router's lan0 neighbours before any traffic to the hosts:\n  {}",
        before
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );

    for (what, addr, server) in [
        ("slaac host", slaac_old, &slaac_server),
        ("nas (DHCPv6)", nas_old, &nas_server),
        ("nas (SLAAC)", nas_slaac, &nas_server),
    ] {
        let got = http_get(&wan, http(addr), ANSWER_TIMEOUT)
            .unwrap_or_else(|e| panic!("wan -> {what} at {addr}: {e}"));
        assert_eq!(got, server.token(), "wan -> {what} at {addr}");
    }
    let after = neighbours(&router, "lan0");
    for addr in [slaac_old, nas_old] {
        assert!(
            after
                .iter()
                .any(|n| n.addr == IpAddr::V6(addr) && n.lladdr.is_some()),
            "the router resolved {addr} to forward to it: {after:?}"
        );
    }
    log(began, "wan reached both hosts at the old prefix");

    // The prefix changes.
    let t = Instant::now();
    router.run([
        "ip",
        "-6",
        "addr",
        "del",
        &cidr(OLD_PREFIX, 1),
        "dev",
        "lan0",
    ]);
    router.run([
        "ip",
        "-6",
        "addr",
        "add",
        &cidr(NEW_PREFIX, 1),
        "dev",
        "lan0",
    ]);
    let slaac_new = wait_for_slaac(&slaac, "eth0", NEW_PREFIX, STEP_TIMEOUT);
    log(
        t,
        &format!("slaac host has {slaac_new} (from the prefix change)"),
    );
    let nas_slaac_new = wait_for_ipv6_address(
        &nas,
        "eth0",
        "dhcpcd's SLAAC address",
        NEW_PREFIX,
        STEP_TIMEOUT,
        |a| a.prefix_len == 64,
    );
    log(
        t,
        &format!("nas has SLAAC {nas_slaac_new}: dhcpcd saw the RA"),
    );
    // dhcpcd renews only at T1 (30 min); make it renew now.
    dhcpcd.renew();
    let nas_new = dhcpcd.wait_for_lease6(NEW_PREFIX, STEP_TIMEOUT);
    log(t, &format!("nas has DHCPv6 lease {nas_new} (renewed)"));
    let old_still = ipv6_addresses(&slaac, "eth0")
        .into_iter()
        .find(|a| a.addr == slaac_old);
    eprintln!("lab6: the slaac host's old address now: {old_still:?}");

    for (what, addr, server) in [
        ("slaac host", slaac_new, &slaac_server),
        ("nas (DHCPv6)", nas_new, &nas_server),
        ("nas (SLAAC)", nas_slaac_new, &nas_server),
    ] {
        let got = http_get(&wan, http(addr), ANSWER_TIMEOUT)
            .unwrap_or_else(|e| panic!("wan -> {what} at {addr}: {e}"));
        assert_eq!(got, server.token(), "wan -> {what} at {addr}");
    }
    for (what, addr) in [("slaac host", slaac_old), ("nas (DHCPv6)", nas_old)] {
        let t = Instant::now();
        let got = http_get(&wan, http(addr), ANSWER_TIMEOUT);
        assert!(
            got.is_err(),
            "the router no longer routes the old prefix, yet wan -> {what} at {addr}: {got:?}"
        );
        log(t, &format!("wan -> {what} at old {addr}: {got:?}"));
    }
    log(
        began,
        "wan reached both hosts at the new prefix, not at the old",
    );
    eprintln!(
        "lab6: router's lan0 neighbours after the change:\n  {}",
        neighbours(&router, "lan0")
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );

    // Release: dnsmasq deletes the lease and tells the script.
    let t = Instant::now();
    dhcpcd.release();
    wait_until(
        "the script's del of the new DHCPv6 lease",
        STEP_TIMEOUT,
        || {
            let calls = read(&calls);
            calls
                .contains(&format!("del {duid} {nas_new} nas |"))
                .then_some(())
                .ok_or(calls)
        },
    );
    log(t, "dnsmasq deleted the released lease");
    eprintln!(
        "lab6: lease file at the end:\n{}",
        read(dnsmasq.lease_file())
    );
    eprintln!("lab6: script calls:\n{}", read(&calls));
    log(began, "done");
}
