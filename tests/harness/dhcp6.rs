//! IPv6 hosts for the tests: the sysctls that make a namespace an IPv6 host
//! or router, a real DHCPv6 client (dhcpcd) with files of its own and
//! nothing of the host's, and the addresses a host has (from SLAAC or
//! DHCPv6), waited for by prefix.

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::Child;
use crate::command::shell_quote;
use crate::files::write_script;
use crate::netns::Netns;
use crate::wait::wait_until;

/// How long dhcpcd gets to stop after a signal.
const DHCPCD_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes `netns` an IPv6 host that configures itself from router
/// advertisements at once: no duplicate address detection (an address is
/// usable as soon as it is there, not a second later), router
/// advertisements and SLAAC accepted. Call it before the namespace gets its
/// interfaces: an interface created in or moved to it takes the namespace's
/// `default` settings.
pub fn ipv6_host_sysctls(netns: &Netns) {
    for conf in ["all", "default"] {
        netns.set_sysctl(&format!("net/ipv6/conf/{conf}/accept_dad"), "0");
    }
    netns.set_sysctl("net/ipv6/conf/default/accept_ra", "1");
    netns.set_sysctl("net/ipv6/conf/default/autoconf", "1");
}

/// Makes `netns` an IPv6 router: it forwards IPv6 (and IPv4), and its own
/// addresses skip duplicate address detection, so a prefix put on an
/// interface is advertised at once. Call it before the namespace gets its
/// interfaces.
pub fn ipv6_router_sysctls(netns: &Netns) {
    for conf in ["all", "default"] {
        netns.set_sysctl(&format!("net/ipv6/conf/{conf}/accept_dad"), "0");
    }
    netns.set_sysctl("net/ipv6/conf/all/forwarding", "1");
    netns.set_sysctl("net/ipv4/ip_forward", "1");
}

/// An IPv6 prefix, e.g. 2001:db8:1::/64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Ipv6Prefix {
    pub const fn new(addr: Ipv6Addr, len: u8) -> Ipv6Prefix {
        Ipv6Prefix { addr, len }
    }

    /// Whether `addr` is in the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len.min(128)))
            .unwrap_or(0);
        u128::from(addr) & mask == u128::from(self.addr) & mask
    }

    /// The address with host part `host` in the prefix (the prefix's bits,
    /// then `host`'s), e.g. 2001:db8:1::/64 and ::1 give 2001:db8:1::1.
    pub fn host(&self, host: u128) -> Ipv6Addr {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len.min(128)))
            .unwrap_or(0);
        Ipv6Addr::from((u128::from(self.addr) & mask) | (host & !mask))
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One global IPv6 address of an interface, as `ip -6 addr` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Address {
    pub addr: Ipv6Addr,
    /// 64 for an address from SLAAC, 128 for one leased by DHCPv6 (as
    /// dhcpcd puts it on), the prefix's length for a static one.
    pub prefix_len: u8,
    /// Still undergoing duplicate address detection: not usable yet.
    pub tentative: bool,
    /// Its preferred lifetime is over (e.g. its prefix is no longer
    /// advertised): kept for existing connections, not used for new ones.
    pub deprecated: bool,
}

impl Ipv6Address {
    /// Usable as a source for new connections.
    pub fn preferred(&self) -> bool {
        !self.tentative && !self.deprecated
    }
}

impl fmt::Display for Ipv6Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if self.tentative {
            f.write_str(" tentative")?;
        }
        if self.deprecated {
            f.write_str(" deprecated")?;
        }
        Ok(())
    }
}

/// The global IPv6 addresses of `iface` in `netns`.
pub fn ipv6_addresses(netns: &Netns, iface: &str) -> Vec<Ipv6Address> {
    let out = netns.run([
        "ip", "-6", "-o", "addr", "show", "dev", iface, "scope", "global",
    ]);
    parse_ipv6_addresses(&out.stdout)
}

/// Waits until `iface` in `netns` has a preferred address in `prefix` that
/// matches `wanted`, and returns it; `what` names it in the panic message.
pub fn wait_for_ipv6_address(
    netns: &Netns,
    iface: &str,
    what: &str,
    prefix: Ipv6Prefix,
    timeout: Duration,
    wanted: impl Fn(&Ipv6Address) -> bool,
) -> Ipv6Addr {
    wait_until(
        &format!("{what} in {prefix} on {iface} in {}", netns.name()),
        timeout,
        || {
            let addresses = ipv6_addresses(netns, iface);
            addresses
                .iter()
                .find(|a| a.preferred() && prefix.contains(a.addr) && wanted(a))
                .map(|a| a.addr)
                .ok_or_else(|| {
                    let shown: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                    format!("addresses: [{}]", shown.join(", "))
                })
        },
    )
}

/// Waits until `iface` in `netns` has an address of its own making in the
/// /64 `prefix` (SLAAC, from a router advertisement), and returns it.
pub fn wait_for_slaac(
    netns: &Netns,
    iface: &str,
    prefix: Ipv6Prefix,
    timeout: Duration,
) -> Ipv6Addr {
    wait_for_ipv6_address(netns, iface, "a SLAAC address", prefix, timeout, |a| {
        a.prefix_len == 64
    })
}

/// The addresses in `ip -6 -o addr show` output, one line each:
/// `2: eth0    inet6 2001:db8:1::1c6/128 scope global dynamic noprefixroute \       valid_lft 3541sec preferred_lft 3541sec`.
fn parse_ipv6_addresses(text: &str) -> Vec<Ipv6Address> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.by_ref().find(|w| *w == "inet6")?;
            let (addr, len) = words.next()?.split_once('/')?;
            let flags: Vec<&str> = words.collect();
            Some(Ipv6Address {
                addr: addr.parse().ok()?,
                prefix_len: len.parse().ok()?,
                tentative: flags.contains(&"tentative"),
                deprecated: flags.contains(&"deprecated"),
            })
        })
        .collect()
}

/// Which protocols a [`Dhcpcd`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpcdFamilies {
    /// Router solicitation, SLAAC and DHCPv6.
    Ipv6,
    /// That, and DHCPv4.
    Ipv4AndIpv6,
}

/// dhcpcd (Debian's dhcpcd-base) on one interface of a namespace, in the
/// foreground: it solicits router advertisements, makes its own SLAAC
/// address (from the MAC, EUI-64) in each advertised prefix, and asks
/// DHCPv6 for one address (IA_NA, put on the interface as a /128), sending
/// `hostname`; with [`DhcpcdFamilies::Ipv4AndIpv6`] also DHCPv4.
///
/// It keeps to files of its own: it runs in a mount namespace of its own
/// where its state directory (/var/lib/dhcpcd: its DUID, its leases) is a
/// directory of the test's, /run a fresh tmpfs (its pid files and control
/// sockets), and the host's syslog socket is hidden; its hook script is
/// ours, which only records events (the system's would write the host's
/// resolv.conf and hostname). On drop it gets SIGTERM: it removes its
/// addresses and exits, without releasing its leases.
#[derive(Debug)]
pub struct Dhcpcd {
    child: Child,
    state: PathBuf,
    events: PathBuf,
}

impl Dhcpcd {
    /// Starts dhcpcd in `netns` on `iface` (it brings the interface up);
    /// its config, state, event record and output go to `dir`.
    pub fn start(
        netns: &Netns,
        iface: &str,
        hostname: &str,
        families: DhcpcdFamilies,
        dir: &Path,
    ) -> Dhcpcd {
        let state = dir.join(format!("dhcpcd-{iface}.state"));
        fs::create_dir_all(&state)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
        let script = dir.join(format!("dhcpcd-{iface}.script"));
        let events = dir.join(format!("dhcpcd-{iface}.events"));
        write_script(&script, &dhcpcd_script(&events));
        let config = dir.join(format!("dhcpcd-{iface}.conf"));
        fs::write(&config, dhcpcd_config(hostname, &script, families))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        // `unshare` makes the mount namespace private (`ip netns exec`
        // already makes one, as a slave of the host's: nothing mounted in
        // it reaches the host either way).
        let mounts = format!(
            "mount -t tmpfs wasmwall-e2e /run && mkdir /run/dhcpcd && \
             mount --bind {state} /var/lib/dhcpcd && \
             if [ -e /dev/log ]; then mount --bind /dev/null /dev/log; fi && \
             exec dhcpcd --nobackground --debug --config {config} {iface}",
            state = shell_quote(state.as_os_str()),
            config = shell_quote(config.as_os_str()),
            iface = shell_quote(iface.as_ref()),
        );
        let mut cmd = netns.command("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &mounts]);
        let child = Child::spawn(&mut cmd, dir, &format!("dhcpcd-{iface}"));
        Dhcpcd {
            child,
            state,
            events,
        }
    }

    /// Its DUID as it sends it, hex bytes joined by colons (as dnsmasq
    /// shows it), once it has made one.
    pub fn duid(&self) -> Option<String> {
        match fs::read_to_string(self.state.join("duid")) {
            Ok(text) => Some(text.trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read dhcpcd's DUID: {e}"),
        }
    }

    /// The hook's events so far, one per line: the reason, then the
    /// addresses the lease gives (`BOUND6 2001:db8:1::1c6`, `BOUND
    /// 192.168.1.167`, `RENEW6 ...`, `EXPIRE6`, `RELEASE6`, `ROUTERADVERT`,
    /// `STOP6`, ...). An address the server ended (valid lifetime 0) is
    /// left out.
    pub fn events(&self) -> Vec<String> {
        match fs::read_to_string(&self.events) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.events.display()),
        }
    }

    /// The DHCPv6 address it holds now: its last lease's, unless the lease
    /// ended since.
    pub fn lease6(&self) -> Option<Ipv6Addr> {
        last_lease(&self.events(), "6")?.parse().ok()
    }

    /// The DHCPv4 address it holds now.
    pub fn lease4(&self) -> Option<Ipv4Addr> {
        last_lease(&self.events(), "")?.parse().ok()
    }

    /// Waits until it holds a DHCPv6 lease in `prefix`, and returns the
    /// address (on the interface by then: dhcpcd reports a lease once the
    /// address is added).
    pub fn wait_for_lease6(&mut self, prefix: Ipv6Prefix, timeout: Duration) -> Ipv6Addr {
        self.wait_for(&format!("a DHCPv6 lease in {prefix}"), timeout, |d| {
            d.lease6().filter(|addr| prefix.contains(*addr))
        })
    }

    /// Waits until it holds a DHCPv4 lease, and returns the address.
    pub fn wait_for_lease4(&mut self, timeout: Duration) -> Ipv4Addr {
        self.wait_for("a DHCPv4 lease", timeout, Dhcpcd::lease4)
    }

    fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Dhcpcd) -> Option<T>,
    ) -> T {
        wait_until(&format!("dhcpcd to get {what}"), timeout, || {
            if let Some(status) = self.child.try_status() {
                panic!("dhcpcd exited: {status}\n{self}");
            }
            check(self).ok_or_else(|| format!("events so far: {:?}", self.events()))
        })
    }

    /// Renews its leases now (SIGUSR1) instead of at T1. After the prefix
    /// changed, dnsmasq answers the renewal of the old address with
    /// lifetime 0, and dhcpcd drops it and solicits an address in the new
    /// prefix: a new lease a second or so later.
    pub fn renew(&mut self) {
        self.child.signal(libc::SIGUSR1);
    }

    /// Releases its leases (DHCPv6 and DHCPv4 RELEASE to the server),
    /// removes its addresses and exits: SIGALRM. Panics unless it exits
    /// within a few seconds.
    pub fn release(&mut self) {
        self.child.signal(libc::SIGALRM);
        self.child.wait_timeout(DHCPCD_STOP_TIMEOUT);
    }
}

impl fmt::Display for Dhcpcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.child.fmt(f)?;
        write!(f, "\n--- hook events ---\n{}", self.events().join("\n"))
    }
}

impl Drop for Dhcpcd {
    fn drop(&mut self) {
        // Child's Drop kills it if SIGTERM was not enough; its helper
        // processes die with it, and with the namespace.
        self.child.terminate_within(DHCPCD_STOP_TIMEOUT);
    }
}

/// The address of the last lease of `family` ("6" for DHCPv6, "" for
/// DHCPv4) in `events`, unless an event ending it came after.
fn last_lease<'a>(events: &'a [String], family: &str) -> Option<&'a str> {
    let bound = ["BOUND", "RENEW", "REBIND", "REBOOT"].map(|r| format!("{r}{family}"));
    let ended = ["EXPIRE", "RELEASE", "STOP", "NAK", "NOCARRIER"].map(|r| format!("{r}{family}"));
    for event in events.iter().rev() {
        let mut words = event.split_whitespace();
        let reason = words.next().unwrap_or_default();
        if ended.iter().any(|r| r == reason) {
            return None;
        }
        if bound.iter().any(|r| r == reason) {
            // None when the server ended every address it had given.
            return words.next();
        }
    }
    None
}

/// dhcpcd's config: only what the tests need, nothing of /etc/dhcpcd.conf.
fn dhcpcd_config(hostname: &str, script: &Path, families: DhcpcdFamilies) -> String {
    let ipv6only = match families {
        DhcpcdFamilies::Ipv6 => "ipv6only\n",
        DhcpcdFamilies::Ipv4AndIpv6 => "",
    };
    format!(
        "# Written by the wasmwall tests' harness.\n\
         hostname {hostname}\n\
         script {script}\n\
         {ipv6only}\
         # A DHCPv6 address (IA_NA), besides SLAAC from the MAC.\n\
         ia_na\n\
         slaac hwaddr\n\
         # No link-local IPv4, no ARP probe of a DHCPv4 lease: faster, and\n\
         # nothing on the link to collide with.\n\
         noipv4ll\n\
         noarp\n",
        script = script.display()
    )
}

/// The hook dhcpcd runs for each event, with `$reason` and the lease in
/// its environment (`new_ip_address`; `new_dhcp6_ia_na1_ia_addr1` and its
/// `_vltime`, for each IA and address). It only records the event.
fn dhcpcd_script(events: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Written by the wasmwall tests' harness for dhcpcd: records each event and
# touches nothing (dhcpcd configures the interface itself).
addresses=${{new_ip_address:-}}
for name in $(env | sed -n 's/^\(new_dhcp6_ia_na[0-9]*_ia_addr[0-9]*\)=.*/\1/p'); do
  eval "address=\$$name valid=\${{${{name}}_vltime:-1}}"
  [ "$valid" = 0 ] || addresses="$addresses $address"
done
echo "$reason $addresses" >> {events}
"#,
        events = shell_quote(events.as_os_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_addr_lines() {
        let text = "2: eth0    inet6 2001:db8:2::1c6/128 scope global dynamic noprefixroute \\       valid_lft 3541sec preferred_lft 3541sec\n\
                    2: eth0    inet6 2001:db8:1::ff:fe00:a5a/64 scope global deprecated dynamic mngtmpaddr noprefixroute \\       valid_lft 3585sec preferred_lft 0sec\n\
                    2: eth0    inet6 2001:db8:3::5/64 scope global tentative \\       valid_lft forever preferred_lft forever\n";
        let addrs = parse_ipv6_addresses(text);
        assert_eq!(addrs.len(), 3);
        assert_eq!(
            addrs[0].addr,
            "2001:db8:2::1c6".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(addrs[0].prefix_len, 128);
        assert!(addrs[0].preferred());
        assert!(addrs[1].deprecated && !addrs[1].preferred());
        assert!(addrs[2].tentative && !addrs[2].preferred());
    }

    #[test]
    fn prefix_contains_and_builds_addresses() {
        let prefix = Ipv6Prefix::new("2001:db8:1::".parse().unwrap(), 64);
        assert!(prefix.contains("2001:db8:1::1c6".parse().unwrap()));
        assert!(!prefix.contains("2001:db8:2::1c6".parse().unwrap()));
        assert_eq!(prefix.host(1), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert!(Ipv6Prefix::new(Ipv6Addr::UNSPECIFIED, 0).contains(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn last_lease_follows_the_events() {
        let events = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let e = events(&["CARRIER ", "BOUND6  2001:db8:1::1c6", "BOUND 192.168.1.167"]);
        assert_eq!(last_lease(&e, "6"), Some("2001:db8:1::1c6"));
        assert_eq!(last_lease(&e, ""), Some("192.168.1.167"));
        let e = events(&["BOUND6  2001:db8:1::1c6", "RENEW6 "]);
        assert_eq!(last_lease(&e, "6"), None);
        let e = events(&["BOUND6  2001:db8:1::1c6", "ROUTERADVERT ", "EXPIRE6 "]);
        assert_eq!(last_lease(&e, "6"), None);
        let e = events(&[
            "BOUND6  2001:db8:1::1c6",
            "EXPIRE6 ",
            "BOUND6  2001:db8:2::1c6",
        ]);
        assert_eq!(last_lease(&e, "6"), Some("2001:db8:2::1c6"));
        assert_eq!(last_lease(&e, ""), None);
    }
}
