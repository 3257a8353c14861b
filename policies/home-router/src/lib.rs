//! A home router's firewall.
//!
//! LAN, WAN and guest interfaces come from the config. The router itself
//! answers only what it serves its networks; it forwards LAN and guest
//! traffic to the WAN (masqueraded) while the WAN is up; port forwards reach
//! LAN hosts named by their DHCP host name or MAC and follow the host's
//! current lease; a guest network never reaches the LAN; blocked hosts are
//! cut off by name or MAC, always or at times of day, through sets that
//! follow their leases.
//!
//! Config keys (TOML lists arrive comma-joined):
//! - `lan` (required): LAN interface(s), comma-separated.
//! - `wan` (required): the WAN interface.
//! - `guest`: guest interface(s): the internet, DHCP and DNS, nothing else.
//! - `lan_tcp` (default "22,53"), `lan_udp` (default "53,67,123"): ports
//!   the router serves to the LAN (port sets `lan-tcp` and `lan-udp`; an
//!   empty list means none).
//! - `forward`: port forwards, a list of "PROTO PORT HOST [HOSTPORT]", e.g.
//!   "tcp 8080 nas 80" or "udp 51820 52:54:00:12:34:56": connections from
//!   the WAN to PORT go to HOST's current lease address on a LAN interface,
//!   port HOSTPORT (default PORT). HOST is a DHCP host name (compared
//!   without regard to case) or a MAC. A forward whose host has no lease is
//!   left out of the map (said in the log at debug level); a host holding
//!   several leases is reached at the lowest address. The LAN reaches a
//!   forward on the WAN's address too (NAT reflection).
//! - `block`: host names or MACs whose leased IPv4 addresses, every one of
//!   them on a LAN or guest interface, go into the set `blocked`: nothing
//!   they send or are sent is forwarded, open connections included.
//! - `block_at`: "HOST HH:MM-HH:MM" entries, e.g. "kid-tablet 21:00-07:00"
//!   (local time; a range that ends before it starts wraps midnight): the
//!   same, during that time only (one set per time, `block-2100-0700`).
//! - `syn_flood` (default 25): new TCP connections per second the router
//!   itself takes (with a burst of twice that); more are dropped.
//! - `mss_clamp` (default true): TCP SYNs out to the WAN get the path's MSS,
//!   for a PPPoE or tunnel WAN with a smaller MTU.
//! - `offload` (default false): established TCP and UDP flows through the
//!   router are offloaded to a flowtable, where the kernel has flowtables
//!   (the world state says; elsewhere nothing changes).
//!
//! Chains (the runtime prefixes them with the policy's name), in order:
//! - `input` (filter, input, priority filter, policy drop): loopback;
//!   established and related; invalid dropped; SYNs above `syn_flood`
//!   dropped; ICMP by type (ping and errors; timestamps and the rest
//!   dropped) and ICMPv6 by type (RFC 4890: errors, ping, neighbour, router
//!   and multicast listener discovery); from the LAN the `lan-tcp`/`lan-udp`
//!   ports; from guests DHCP (udp 67) and DNS (udp and tcp 53); the rest
//!   from the LAN and guests refused (a TCP reset, else ICMP port
//!   unreachable), from the WAN dropped. None of it depends on the WAN.
//! - `forward` (filter, forward, priority filter, policy drop): blocked
//!   hosts dropped both ways, always or at their times; offloading when
//!   asked; established and related; invalid dropped; between LAN
//!   interfaces; guest <-> LAN dropped (whatever the WAN does); while the
//!   WAN is up: LAN and guest to the WAN, and what a port forward DNATed;
//!   the rest from the LAN and guests refused.
//! - `mangle-forward` (filter, forward, priority mangle), while the WAN is
//!   up and `mss_clamp` holds: the MSS clamp.
//! - `prerouting` (nat, priority dstnat): the forwards as two maps, keyed by
//!   the WAN port (`forwards-tcp`, `forwards-udp`: port -> address . port),
//!   from the WAN and from the LAN to the WAN's address; `postrouting` (nat,
//!   priority srcnat): the masquerade on the WAN, and the LAN's reflected
//!   connections masqueraded so that answers come back through the router.
//!   Both only while the WAN is up, as is the sysctl `net.ipv4.ip_forward =
//!   1`.
//!
//! "The WAN is up": its interface exists and is up (administratively and
//! with carrier). When it goes down, its rules go.
//!
//! The same state and config give the same ruleset, rule for rule: what
//! comes from leases is ordered by address, so the runtime sends nothing
//! when nothing changed, and a lease that comes, moves or goes changes one
//! element of a map or a set, never a rule: each packet costs the same
//! however many forwards and hosts there are.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::Ipv4Addr;

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, CtState, CtStatus, Event, Field, Flowtable, Hook, IcmpType,
    Icmpv6Type, IpFamily, KeyType, L4Protocol, Lease, MapElement, MapLookup, NamedMap, NamedSet,
    Policy, PriorityName, Rate, Rule, RuleBuilder, Ruleset, TcpFlags, TimeOfDay, Transport, Value,
    WorldState,
};

const KNOWN_KEYS: &[&str] = &[
    "lan",
    "wan",
    "guest",
    "lan_tcp",
    "lan_udp",
    "forward",
    "block",
    "block_at",
    "syn_flood",
    "mss_clamp",
    "offload",
];

/// New TCP connections per second the router itself takes by default
/// (OpenWrt's default), with a burst of twice that.
const SYN_FLOOD_DEFAULT: u64 = 25;

struct HomeRouter;

/// One configured port forward.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Forward<'a> {
    text: &'a str,
    protocol: Transport,
    port: u16,
    host: &'a str,
    host_port: u16,
}

impl<'a> Forward<'a> {
    fn parse(text: &'a str) -> Result<Forward<'a>, String> {
        let bad = |why: &str| {
            format!(
                "config key `forward`: {text:?} {why} (expected \"PROTO PORT HOST [HOSTPORT]\", e.g. \"tcp 8080 nas 80\")"
            )
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (proto, port, host, host_port) = match words.as_slice() {
            [p, port, host] => (*p, *port, *host, *port),
            [p, port, host, hp] => (*p, *port, *host, *hp),
            _ => return Err(bad("has the wrong number of words")),
        };
        let protocol = match proto {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            _ => return Err(bad("names a protocol other than tcp or udp")),
        };
        let port_of = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(&format!("has {p:?}, not a port from 1 to 65535"))),
            Ok(n) => Ok(n),
        };
        if let Some(why) = host_problem(host) {
            return Err(bad(&format!("names the host {host:?}, which {why}")));
        }
        Ok(Forward {
            text,
            protocol,
            port: port_of(port)?,
            host,
            host_port: port_of(host_port)?,
        })
    }
}

/// Hosts cut off during one time of day (`block_at`).
struct Window<'a> {
    from: TimeOfDay,
    to: TimeOfDay,
    hosts: Vec<&'a str>,
}

impl Window<'_> {
    /// The set of the window's addresses: `block-2100-0700`.
    fn set_name(&self) -> String {
        let hm = |t: &TimeOfDay| t.to_string().replace(':', "");
        format!("block-{}-{}", hm(&self.from), hm(&self.to))
    }
}

struct Settings<'a> {
    lan: Vec<&'a str>,
    wan: &'a str,
    guest: Vec<&'a str>,
    lan_tcp: Vec<u16>,
    lan_udp: Vec<u16>,
    forwards: Vec<Forward<'a>>,
    block: Vec<&'a str>,
    block_at: Vec<Window<'a>>,
    syn_flood: Rate,
    mss_clamp: bool,
    offload: bool,
}

/// A yes/no config key.
fn flag(config: &Config, key: &str, default: bool) -> Result<bool, String> {
    match config.get(key) {
        None => Ok(default),
        Some("true" | "yes" | "1") => Ok(true),
        Some("false" | "no" | "0") => Ok(false),
        Some(other) => Err(format!(
            "config key `{key}`: {other:?} is neither true nor false"
        )),
    }
}

/// `block_at`: "HOST HH:MM-HH:MM" entries, grouped by their time.
fn windows(config: &Config) -> Result<Vec<Window<'_>>, String> {
    let mut out: Vec<Window> = Vec::new();
    for text in config.list("block_at") {
        let bad = |why: &str| {
            format!(
                "config key `block_at`: {text:?} {why} (expected \"HOST HH:MM-HH:MM\", e.g. \"kid-tablet 21:00-07:00\")"
            )
        };
        let (host, times) = match text.split_whitespace().collect::<Vec<_>>().as_slice() {
            [host, times] => (*host, *times),
            _ => return Err(bad("has the wrong number of words")),
        };
        if let Some(why) = host_problem(host) {
            return Err(bad(&format!("names the host {host:?}, which {why}")));
        }
        let (from, to) = times
            .split_once('-')
            .ok_or_else(|| bad("has no time range"))?;
        let time = |t: &str| {
            t.parse::<TimeOfDay>()
                .map_err(|e| bad(&format!("has the time {t:?}: {e}")))
        };
        let (from, to) = (time(from)?, time(to)?);
        if from == to {
            return Err(bad("has a range of no time"));
        }
        match out.iter_mut().find(|w| w.from == from && w.to == to) {
            Some(w) => w.hosts.push(host),
            None => out.push(Window {
                from,
                to,
                hosts: vec![host],
            }),
        }
    }
    Ok(out)
}

fn ports(config: &Config, key: &str, default: &str) -> Result<Vec<u16>, String> {
    let text = config.get(key).unwrap_or(default);
    let mut out = Vec::new();
    for p in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => out.push(n),
            _ => {
                return Err(format!(
                    "config key `{key}`: {p:?} is not a port from 1 to 65535"
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The interface names under `key`, each a valid Linux interface name and
/// given once.
fn interfaces<'a>(config: &'a Config, key: &str) -> Result<Vec<&'a str>, String> {
    let names = config.list(key);
    for (i, name) in names.iter().enumerate() {
        let problem = if name.len() > 15 {
            Some("is longer than 15 bytes")
        } else if *name == "." || *name == ".." || name.contains(['/', ':']) {
            Some("is not a valid interface name")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains a space or a control character")
        } else if names[..i].contains(name) {
            Some("is given twice")
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(format!("config key `{key}`: interface {name:?} {p}"));
        }
    }
    Ok(names)
}

/// Why `host` cannot name a host, if it cannot: a MAC, or a DHCP host name
/// of letters, digits, '-', '_' and '.'.
fn host_problem(host: &str) -> Option<&'static str> {
    if is_mac(host) {
        None
    } else if host.len() > 253 {
        Some("is longer than 253 bytes")
    } else if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("is neither a MAC nor a host name (letters, digits, '-', '_', '.')")
    } else {
        None
    }
}

fn settings(config: &Config) -> Result<Settings<'_>, String> {
    config.reject_unknown(KNOWN_KEYS)?;
    let lan = interfaces(config, "lan")?;
    if lan.is_empty() {
        return Err("config key `lan` is required: the LAN interface(s), e.g. \"lan0\"".into());
    }
    let wan = match interfaces(config, "wan")?.as_slice() {
        [one] => *one,
        [] => return Err("config key `wan` is required: the WAN interface, e.g. \"wan0\"".into()),
        _ => return Err("config key `wan`: give one WAN interface".into()),
    };
    let guest = interfaces(config, "guest")?;
    if let Some(both) = lan.iter().find(|l| **l == wan || guest.contains(l)) {
        return Err(format!(
            "interface {both:?} is given more than one role (lan, wan, guest)"
        ));
    }
    if guest.contains(&wan) {
        return Err(format!(
            "interface {wan:?} is given more than one role (wan, guest)"
        ));
    }
    let mut forwards: Vec<Forward> = Vec::new();
    for text in config.list("forward") {
        let f = Forward::parse(text)?;
        if let Some(first) = forwards
            .iter()
            .find(|g| g.protocol == f.protocol && g.port == f.port)
        {
            return Err(format!(
                "config key `forward`: {text:?} forwards {} port {} again (already forwarded by {:?})",
                f.protocol, f.port, first.text
            ));
        }
        forwards.push(f);
    }
    let block = config.list("block");
    if let Some((host, why)) = block
        .iter()
        .find_map(|h| host_problem(h).map(|why| (h, why)))
    {
        return Err(format!("config key `block`: {host:?} {why}"));
    }
    let syn_flood = match config.get("syn_flood") {
        None => SYN_FLOOD_DEFAULT,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=1_000_000).contains(&n) => n,
            _ => {
                return Err(format!(
                    "config key `syn_flood`: {text:?} is not a number of connections per second from 1 to 1000000"
                ));
            }
        },
    };
    Ok(Settings {
        lan,
        wan,
        guest,
        lan_tcp: ports(config, "lan_tcp", "22,53")?,
        lan_udp: ports(config, "lan_udp", "53,67,123")?,
        forwards,
        block,
        block_at: windows(config)?,
        syn_flood: Rate::per_second(syn_flood)
            .burst((2 * syn_flood).min(u64::from(u32::MAX)) as u32),
        mss_clamp: flag(config, "mss_clamp", true)?,
        offload: flag(config, "offload", false)?,
    })
}

/// A MAC is six hex pairs; anything else names a host.
fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `s` in lower case, copied only if it has capitals.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The IPv4 leases on some interfaces of the hosts a list names (host
/// names compared without regard to case, or MACs), each host's lowest
/// address first. Built in one pass over the leases, however many hosts
/// the list names (the runtime sorts leases too; this does not count on it).
struct HostLeases<'s> {
    by_mac: HashMap<String, Vec<(Ipv4Addr, &'s Lease)>>,
    by_name: HashMap<String, Vec<(Ipv4Addr, &'s Lease)>>,
}

impl<'s> HostLeases<'s> {
    fn new<'h>(
        state: &'s WorldState,
        hosts: impl IntoIterator<Item = &'h str>,
        ifaces: &[&str],
    ) -> Self {
        let mut by_mac = HashMap::new();
        let mut by_name = HashMap::new();
        for host in hosts {
            let map = if is_mac(host) {
                &mut by_mac
            } else {
                &mut by_name
            };
            map.insert(host.to_ascii_lowercase(), Vec::new());
        }
        for lease in &state.leases {
            if !ifaces.contains(&lease.iface.as_str()) {
                continue;
            }
            let Ok(ip) = lease.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            if let Some(found) = by_mac.get_mut(lower(&lease.mac).as_ref()) {
                found.push((ip, lease));
            }
            if let Some(name) = &lease.hostname
                && let Some(found) = by_name.get_mut(lower(name).as_ref())
            {
                found.push((ip, lease));
            }
        }
        for found in by_mac.values_mut().chain(by_name.values_mut()) {
            found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.iface.cmp(&b.1.iface)));
        }
        HostLeases { by_mac, by_name }
    }

    /// The leases of `host`, lowest address first.
    fn of(&self, host: &str) -> &[(Ipv4Addr, &'s Lease)] {
        let map = if is_mac(host) {
            &self.by_mac
        } else {
            &self.by_name
        };
        map.get(&host.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// A debug line in the runtime's log (only inside the runtime: the host has
/// no log to call in unit tests).
fn debug(message: &str) {
    #[cfg(target_family = "wasm")]
    wasmwall_sdk::log(wasmwall_sdk::Level::Debug, message);
    #[cfg(not(target_family = "wasm"))]
    let _ = message;
}

/// Starts a rule; in the `counters` build (the second version of this
/// policy the hot-swap test swaps in) every rule has a counter.
fn new_rule() -> RuleBuilder {
    if cfg!(feature = "counters") {
        Rule::new().counter()
    } else {
        Rule::new()
    }
}

/// ICMP types the router accepts from anywhere: ping, and the errors that
/// make path MTU discovery and traceroute work. Timestamps, redirects and
/// the rest are dropped.
const ICMP_ACCEPTED: [IcmpType; 4] = [
    IcmpType::EchoRequest,
    IcmpType::DestinationUnreachable,
    IcmpType::TimeExceeded,
    IcmpType::ParameterProblem,
];

/// ICMPv6 types the router accepts (RFC 4890, section 4.4: what a host
/// must take for itself): errors, ping, neighbour and router discovery,
/// and multicast listener discovery.
const ICMPV6_ACCEPTED: [Icmpv6Type; 14] = [
    Icmpv6Type::DestinationUnreachable,
    Icmpv6Type::PacketTooBig,
    Icmpv6Type::TimeExceeded,
    Icmpv6Type::ParameterProblem,
    Icmpv6Type::EchoRequest,
    Icmpv6Type::EchoReply,
    Icmpv6Type::MldListenerQuery,
    Icmpv6Type::MldListenerReport,
    Icmpv6Type::MldListenerDone,
    Icmpv6Type::NdRouterSolicit,
    Icmpv6Type::NdRouterAdvert,
    Icmpv6Type::NdNeighborSolicit,
    Icmpv6Type::NdNeighborAdvert,
    Icmpv6Type::Mld2ListenerReport,
];

impl Policy for HomeRouter {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        let s = settings(config)?;
        let wan = state.interface(s.wan);
        let wan_up = wan.is_some_and(|i| i.up);
        let established = || new_rule().ct_state([CtState::Established, CtState::Related]);
        let invalid = || new_rule().ct_state([CtState::Invalid]);
        let inside: Vec<&str> = s.lan.iter().chain(&s.guest).copied().collect();

        // The router itself: only what it serves.
        let mut input = vec![
            new_rule().iifname("lo").accept(),
            established().accept(),
            invalid().drop(),
            new_rule()
                .tcp_flags(
                    TcpFlags::SYN,
                    TcpFlags::FIN | TcpFlags::SYN | TcpFlags::RST | TcpFlags::ACK,
                )
                .limit_over(s.syn_flood)
                .comment("SYN flood")
                .drop(),
            new_rule()
                .icmp_types(ICMP_ACCEPTED)
                .comment("ping and ICMP errors")
                .accept(),
            new_rule()
                .icmpv6_types(ICMPV6_ACCEPTED)
                .comment("ICMPv6 a host needs (RFC 4890)")
                .accept(),
        ];
        for lan in &s.lan {
            if !s.lan_tcp.is_empty() {
                input.push(
                    new_rule()
                        .iifname(*lan)
                        .dport_in(Transport::Tcp, "lan-tcp")
                        .comment("what the router serves the LAN")
                        .accept(),
                );
            }
            if !s.lan_udp.is_empty() {
                input.push(
                    new_rule()
                        .iifname(*lan)
                        .dport_in(Transport::Udp, "lan-udp")
                        .comment("what the router serves the LAN")
                        .accept(),
                );
            }
        }
        for guest in &s.guest {
            input.push(
                new_rule()
                    .iifname(*guest)
                    .udp_dport(67)
                    .comment("guest DHCP")
                    .accept(),
            );
            input.push(
                new_rule()
                    .iifname(*guest)
                    .udp_dport(53)
                    .comment("guest DNS")
                    .accept(),
            );
            input.push(
                new_rule()
                    .iifname(*guest)
                    .tcp_dport(53)
                    .comment("guest DNS")
                    .accept(),
            );
        }
        // The LAN and guests learn at once that a port is closed; the WAN
        // learns nothing (the chain's policy drops).
        input.extend(refused(&inside));

        // Through the router. Blocked hosts come first, so that blocking
        // one also stops the connections it already has open.
        let mut forward = Vec::new();
        let mut ruleset = Ruleset::new();
        let blocked = addresses_of(state, &s.block, &inside);
        if !s.block.is_empty() {
            forward.push(
                new_rule()
                    .saddr_in("blocked")
                    .comment("blocked hosts")
                    .drop(),
            );
            forward.push(
                new_rule()
                    .daddr_in("blocked")
                    .comment("blocked hosts")
                    .drop(),
            );
            ruleset = ruleset.set(NamedSet::ipv4(
                "blocked",
                blocked.iter().map(Ipv4Addr::to_string),
            ));
        }
        for window in &s.block_at {
            let hosts: Vec<&str> = window.hosts.clone();
            let set = window.set_name();
            let addresses = addresses_of(state, &hosts, &inside);
            let comment = format!("blocked {}-{}", window.from, window.to);
            forward.push(
                new_rule()
                    .hour(window.from, window.to)
                    .saddr_in(set.clone())
                    .comment(comment.clone())
                    .drop(),
            );
            forward.push(
                new_rule()
                    .hour(window.from, window.to)
                    .daddr_in(set.clone())
                    .comment(comment)
                    .drop(),
            );
            ruleset = ruleset.set(NamedSet::ipv4(
                set,
                addresses.iter().map(Ipv4Addr::to_string),
            ));
        }
        let offload = s.offload && wan_up && state.features.has_flowtables();
        if s.offload && !state.features.has_flowtables() {
            debug("offload: this kernel has no flowtables, so flows are not offloaded");
        }
        if offload {
            let mut devices: Vec<&str> = inside.clone();
            devices.push(s.wan);
            devices.sort_unstable();
            ruleset = ruleset.flowtable(Flowtable::new("offload", devices));
            forward.push(
                new_rule()
                    .test(Field::L4proto, [Value::from(6u32), Value::from(17u32)])
                    .ct_state([CtState::Established, CtState::Related])
                    .offload("offload")
                    .comment("offload established flows")
                    .accept(),
            );
        }
        forward.push(established().accept());
        forward.push(invalid().drop());
        for from in &s.lan {
            for to in &s.lan {
                if from != to {
                    forward.push(
                        new_rule()
                            .iifname(*from)
                            .oifname(*to)
                            .comment("between LAN interfaces")
                            .accept(),
                    );
                }
            }
        }
        for guest in &s.guest {
            for lan in &s.lan {
                forward.push(
                    new_rule()
                        .iifname(*guest)
                        .oifname(*lan)
                        .comment("guests never reach the LAN")
                        .drop(),
                );
                forward.push(
                    new_rule()
                        .iifname(*lan)
                        .oifname(*guest)
                        .comment("the LAN never reaches guests")
                        .drop(),
                );
            }
        }

        let mut prerouting = Vec::new();
        let mut postrouting = Vec::new();
        let mut mangle = Vec::new();
        if wan_up {
            for inside in &inside {
                forward.push(
                    new_rule()
                        .iifname(*inside)
                        .oifname(s.wan)
                        .comment("out to the WAN")
                        .accept(),
                );
            }
            forward.push(
                new_rule()
                    .ct_status(CtStatus::DNAT)
                    .comment("port forwards")
                    .accept(),
            );
            // Each forward is one element of a map, keyed by its port:
            // a lease that comes, moves or goes changes that element only.
            let forward_leases = HostLeases::new(state, s.forwards.iter().map(|f| f.host), &s.lan);
            let wan_addresses: Vec<&str> = wan
                .map(|w| w.addresses.iter().filter_map(|a| ipv4_of(a)).collect())
                .unwrap_or_default();
            for (protocol, map) in [
                (Transport::Tcp, "forwards-tcp"),
                (Transport::Udp, "forwards-udp"),
            ] {
                let mut elements = Vec::new();
                for f in s.forwards.iter().filter(|f| f.protocol == protocol) {
                    let Some(&(ip, _)) = forward_leases.of(f.host).first() else {
                        debug(&format!(
                            "forward {:?}: {} has no lease on a LAN interface, so no element",
                            f.text, f.host
                        ));
                        continue;
                    };
                    elements.push(MapElement::new(
                        [Value::from(f.port)],
                        [Value::from(ip), Value::from(f.host_port)],
                    ));
                }
                let dport = Field::Dport(protocol);
                ruleset = ruleset.map(
                    NamedMap::data_map(
                        map,
                        [KeyType::InetService],
                        [KeyType::Ipv4Addr, KeyType::InetService],
                    )
                    .extend(elements),
                );
                prerouting.push(
                    new_rule()
                        .iifname(s.wan)
                        .comment(format!("port forwards ({protocol})"))
                        .dnat_map(IpFamily::V4, MapLookup::named([dport], map)),
                );
                // NAT reflection: the LAN reaches a forwarded port on the
                // WAN's address too.
                for address in &wan_addresses {
                    for lan in &s.lan {
                        prerouting.push(
                            new_rule()
                                .iifname(*lan)
                                .daddr(*address)
                                .comment(format!("port forwards ({protocol}) from the LAN"))
                                .dnat_map(IpFamily::V4, MapLookup::named([dport], map)),
                        );
                    }
                }
            }
            postrouting.push(new_rule().oifname(s.wan).masquerade());
            for lan in &s.lan {
                postrouting.push(
                    new_rule()
                        .iifname(*lan)
                        .oifname(*lan)
                        .ct_status(CtStatus::DNAT)
                        .comment("NAT reflection: answers come back through the router")
                        .masquerade(),
                );
            }
            if s.mss_clamp {
                mangle.push(
                    new_rule()
                        .oifname(s.wan)
                        .tcp_flags(TcpFlags::SYN, TcpFlags::SYN | TcpFlags::RST)
                        .mss_clamp_to_pmtu()
                        .comment("MSS to the path MTU")
                        .continue_(),
                );
            }
            ruleset = ruleset.sysctl("net.ipv4.ip_forward", "1");
        }
        forward.extend(refused(&inside));

        let chain = |c: Chain, rules: Vec<Rule>| c.extend(rules);
        ruleset = ruleset
            .chain(chain(
                Chain::filter("input", Hook::Input, PriorityName::Filter).policy(ChainPolicy::Drop),
                input,
            ))
            .chain(chain(
                Chain::filter("forward", Hook::Forward, PriorityName::Filter)
                    .policy(ChainPolicy::Drop),
                forward,
            ));
        if !mangle.is_empty() {
            ruleset = ruleset.chain(chain(
                Chain::filter("mangle-forward", Hook::Forward, PriorityName::Mangle),
                mangle,
            ));
        }
        if wan_up {
            ruleset = ruleset
                .chain(chain(
                    Chain::nat("prerouting", Hook::Prerouting, PriorityName::Dstnat),
                    prerouting,
                ))
                .chain(chain(
                    Chain::nat("postrouting", Hook::Postrouting, PriorityName::Srcnat),
                    postrouting,
                ));
        }
        if !s.lan_tcp.is_empty() {
            ruleset = ruleset.set(NamedSet::ports("lan-tcp", s.lan_tcp.iter().copied()));
        }
        if !s.lan_udp.is_empty() {
            ruleset = ruleset.set(NamedSet::ports("lan-udp", s.lan_udp.iter().copied()));
        }
        Ok(ruleset)
    }
}

/// The IPv4 address of "203.0.113.1/24", if it is one.
fn ipv4_of(address: &str) -> Option<&str> {
    let ip = address.split('/').next()?;
    ip.parse::<Ipv4Addr>().is_ok().then_some(ip)
}

/// The leased IPv4 addresses, on `ifaces`, of the hosts `hosts` names,
/// sorted and each once.
fn addresses_of(state: &WorldState, hosts: &[&str], ifaces: &[&str]) -> Vec<Ipv4Addr> {
    let leases = HostLeases::new(state, hosts.iter().copied(), ifaces);
    let mut out: Vec<Ipv4Addr> = hosts
        .iter()
        .flat_map(|h| leases.of(h))
        .map(|(ip, _)| *ip)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The two rules that refuse what came in on `ifaces` and nothing
/// accepted: a TCP reset for TCP, an ICMP(v6) port unreachable otherwise.
fn refused(ifaces: &[&str]) -> Vec<Rule> {
    if ifaces.is_empty() {
        return Vec::new();
    }
    let names = || ifaces.iter().map(|i| Value::name(*i));
    vec![
        new_rule()
            .test(Field::Iifname, names())
            .l4proto(L4Protocol::Tcp)
            .comment("refused")
            .reject(),
        new_rule()
            .test(Field::Iifname, names())
            .comment("refused")
            .reject(),
    ]
}

wasmwall_sdk::export_policy!(HomeRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwall_sdk::{MapData, Matcher, NetworkInterface, SetElements, Verdict};

    fn iface(name: &str, up: bool, address: &str) -> NetworkInterface {
        let mut i = NetworkInterface::new(name);
        i.index = 2;
        i.up = up;
        i.addresses = vec![address.into()];
        i
    }

    fn lease_on(iface: &str, ip: &str, mac: &str, host: Option<&str>) -> Lease {
        let mut l = Lease::new(mac, ip, iface);
        l.hostname = host.map(str::to_string);
        l
    }

    fn lease(ip: &str, mac: &str, host: Option<&str>) -> Lease {
        lease_on("lan0", ip, mac, host)
    }

    fn state(wan_up: bool, leases: Vec<Lease>) -> WorldState {
        WorldState::new(
            vec![
                iface("guest0", true, "192.168.2.1/24"),
                iface("lan0", true, "192.168.1.1/24"),
                iface("lan1", true, "192.168.3.1/24"),
                iface("wan0", wan_up, "203.0.113.1/24"),
            ],
            leases,
        )
    }

    fn eval(state: &WorldState, pairs: &[(&str, &str)]) -> Result<Ruleset, String> {
        let mut all = vec![("lan", "lan0"), ("wan", "wan0")];
        all.retain(|(k, _)| !pairs.iter().any(|(p, _)| p == k));
        all.extend_from_slice(pairs);
        HomeRouter::evaluate(state, &Event::Startup, &Config::from_pairs(all))
    }

    fn chain<'a>(r: &'a Ruleset, name: &str) -> Option<&'a Chain> {
        r.chains().iter().find(|c| c.name() == name)
    }

    fn comments<'a>(r: &'a Ruleset, name: &str) -> Vec<&'a str> {
        chain(r, name)
            .map(|c| c.rules().iter().filter_map(|r| r.comment()).collect())
            .unwrap_or_default()
    }

    /// The forwards' map elements, tcp then udp: "PORT -> ADDRESS:PORT".
    fn dnat_targets(r: &Ruleset) -> Vec<String> {
        let text = |v: &Value| match v {
            Value::Number(n) => n.to_string(),
            Value::Address(a) => a.clone(),
            other => panic!("not in a forward: {other:?}"),
        };
        let mut out = Vec::new();
        for name in ["forwards-tcp", "forwards-udp"] {
            let Some(map) = r.maps().iter().find(|m| m.name() == name) else {
                continue;
            };
            for e in map.elements() {
                let MapData::Values(data) = e.data() else {
                    panic!("{name} is not a data map");
                };
                out.push(format!(
                    "{} -> {}:{}",
                    text(&e.key()[0]),
                    text(&data[0]),
                    text(&data[1])
                ));
            }
        }
        out
    }

    fn blocked_set(r: &Ruleset) -> Vec<String> {
        match r
            .sets()
            .iter()
            .find(|s| s.name() == "blocked")
            .unwrap()
            .elements()
        {
            SetElements::Ipv4(v) => v.clone(),
            other => panic!("blocked is not an IPv4 set: {other:?}"),
        }
    }

    /// Rules that go from `from` to `to` (by iifname and oifname).
    fn between<'a>(r: &'a Ruleset, from: &str, to: &str) -> Vec<&'a Rule> {
        let has = |rule: &Rule, m: Matcher| rule.matches().iter().any(|x| x.matcher() == &m);
        chain(r, "forward")
            .unwrap()
            .rules()
            .iter()
            .filter(|rule| {
                has(rule, Matcher::Iifname(from.into())) && has(rule, Matcher::Oifname(to.into()))
            })
            .collect()
    }

    #[test]
    fn wan_up_masquerades_and_wan_down_removes_its_rules() {
        let up = eval(&state(true, vec![]), &[]).unwrap();
        let post = chain(&up, "postrouting").expect("postrouting while the WAN is up");
        assert_eq!(post.rules().len(), 2, "masquerade and NAT reflection");
        assert!(
            post.rules()
                .iter()
                .all(|r| r.verdict() == &Verdict::Masquerade)
        );
        assert!(chain(&up, "mangle-forward").is_some(), "MSS clamping");
        assert!(chain(&up, "prerouting").is_some());
        assert_eq!(up.sysctls().len(), 1);
        assert_eq!(up.sysctls()[0].key(), "net.ipv4.ip_forward");
        assert_eq!(up.sysctls()[0].value(), "1");
        let out = between(&up, "lan0", "wan0");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict(), &Verdict::Accept);

        let down = eval(&state(false, vec![]), &[]).unwrap();
        assert!(chain(&down, "postrouting").is_none());
        assert!(chain(&down, "mangle-forward").is_none());
        assert!(chain(&down, "prerouting").is_none());
        assert!(down.sysctls().is_empty());
        assert!(between(&down, "lan0", "wan0").is_empty());
        // The router's own input rules do not depend on the WAN.
        assert_eq!(chain(&up, "input"), chain(&down, "input"));
        // A WAN interface that does not exist is a WAN that is down.
        let mut gone = state(true, vec![]);
        gone.interfaces.retain(|i| i.name != "wan0");
        assert_eq!(eval(&gone, &[]).unwrap(), down);
    }

    #[test]
    fn input_serves_the_lan_its_ports_through_sets() {
        let r = eval(&state(true, vec![]), &[]).unwrap();
        let set = |name: &str| {
            r.sets()
                .iter()
                .find(|s| s.name() == name)
                .unwrap()
                .elements()
                .clone()
        };
        assert_eq!(set("lan-tcp"), SetElements::Ports(vec![22, 53]));
        assert_eq!(set("lan-udp"), SetElements::Ports(vec![53, 67, 123]));
        let input = chain(&r, "input").unwrap();
        assert_eq!(input.base().unwrap().policy(), ChainPolicy::Drop);
        assert!(input.rules().iter().any(|rule| {
            rule.matches().iter().any(|m| {
                m.matcher()
                    == &Matcher::DportIn {
                        protocol: Transport::Tcp,
                        set: "lan-tcp".into(),
                    }
            })
        }));
        // Custom lists, sorted and without repeats; an empty one, no set.
        let r = eval(
            &state(true, vec![]),
            &[("lan_tcp", "443, 22,443"), ("lan_udp", "")],
        )
        .unwrap();
        let names: Vec<_> = r.sets().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["lan-tcp"]);
        assert_eq!(r.sets()[0].elements(), &SetElements::Ports(vec![22, 443]));
        let served: Vec<_> = comments(&r, "input")
            .into_iter()
            .filter(|c| *c == "what the router serves the LAN")
            .collect();
        assert_eq!(served.len(), 1, "{:?}", comments(&r, "input"));
    }

    #[test]
    fn a_forward_follows_the_hosts_lease_by_name_or_mac() {
        let nas = lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"));
        let forwards = [("forward", "tcp 8080 nas 80, udp 51820 52:54:00:12:34:56")];
        let r = eval(&state(true, vec![nas.clone()]), &forwards).unwrap();
        assert_eq!(
            dnat_targets(&r),
            ["8080 -> 192.168.1.23:80", "51820 -> 192.168.1.23:51820"]
        );
        // Forwarded connections are let through as DNATed ones.
        let forward = chain(&r, "forward").unwrap();
        assert!(forward.rules().iter().any(|rule| {
            rule.matches()
                .iter()
                .any(|m| m.matcher() == &Matcher::CtStatus(CtStatus::DNAT))
        }));
        // The lease moves: so do the map elements, and no rule changes.
        let moved = lease("192.168.1.99", "52:54:00:12:34:56", Some("nas"));
        let r2 = eval(&state(true, vec![moved]), &forwards).unwrap();
        assert_eq!(
            dnat_targets(&r2),
            ["8080 -> 192.168.1.99:80", "51820 -> 192.168.1.99:51820"]
        );
        assert_eq!(r.chains(), r2.chains());
        assert_eq!(r.sets(), r2.sets());
        // No lease: no element, the same rules; WAN down: no forward at all.
        let r3 = eval(&state(true, vec![]), &forwards).unwrap();
        assert!(dnat_targets(&r3).is_empty());
        assert_eq!(r.chains(), r3.chains());
        let r = eval(&state(false, vec![nas]), &forwards).unwrap();
        assert!(dnat_targets(&r).is_empty());
        assert!(chain(&r, "prerouting").is_none());
    }

    #[test]
    fn the_lan_reaches_a_forward_on_the_wan_address() {
        let nas = lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"));
        let r = eval(&state(true, vec![nas]), &[("forward", "tcp 8080 nas 80")]).unwrap();
        let pre = chain(&r, "prerouting").unwrap();
        let reflected: Vec<_> = pre
            .rules()
            .iter()
            .filter(|rule| {
                rule.matches()
                    .iter()
                    .any(|m| m.matcher() == &Matcher::Daddr("203.0.113.1".into()))
            })
            .collect();
        assert_eq!(reflected.len(), 2, "tcp and udp from lan0");
        assert!(
            reflected
                .iter()
                .all(|rule| matches!(rule.verdict(), Verdict::DnatMap(_)))
        );
    }

    #[test]
    fn a_forward_matches_names_without_case_and_only_lan_leases() {
        let fwd = [("forward", "tcp 8080 NAS 80"), ("guest", "guest0")];
        // A MAC in capitals finds the lease too.
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.23", "52:54:00:ab:cd:ef", Some("nas"))],
            ),
            &[("forward", "tcp 2222 52:54:00:AB:CD:EF 22")],
        )
        .unwrap();
        assert_eq!(dnat_targets(&r), ["2222 -> 192.168.1.23:22"]);
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"))],
            ),
            &fwd,
        )
        .unwrap();
        assert_eq!(dnat_targets(&r), ["8080 -> 192.168.1.23:80"]);
        // A host name in capitals in the lease, not in the config.
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.24", "52:54:00:12:34:57", Some("NAS-Box"))],
            ),
            &[("forward", "tcp 8080 nas-box 80")],
        )
        .unwrap();
        assert_eq!(dnat_targets(&r), ["8080 -> 192.168.1.24:80"]);
        // A lease on the guest network is not a LAN host.
        let on_guest = lease_on("guest0", "192.168.2.5", "52:54:00:12:34:56", Some("nas"));
        let r = eval(&state(true, vec![on_guest]), &fwd).unwrap();
        assert!(dnat_targets(&r).is_empty());
        // Two leases: the lowest address, whatever the order they come in.
        let two = vec![
            lease_on("lan1", "192.168.3.7", "02:00:00:00:00:01", Some("nas")),
            lease("192.168.1.200", "02:00:00:00:00:02", Some("nas")),
        ];
        let lans = [("lan", "lan0,lan1"), ("forward", "tcp 8080 nas 80")];
        let r = eval(&state(true, two.clone()), &lans).unwrap();
        assert_eq!(dnat_targets(&r), ["8080 -> 192.168.1.200:80"]);
        let mut reversed = two;
        reversed.reverse();
        assert_eq!(eval(&state(true, reversed), &lans).unwrap(), r);
    }

    #[test]
    fn blocked_hosts_are_a_set_that_follows_their_leases() {
        let leases = vec![
            lease("192.168.1.30", "02:00:00:00:00:30", Some("tv")),
            lease("192.168.1.4", "02:00:00:00:00:04", Some("tablet")),
            lease("192.168.1.5", "02:00:00:00:00:05", Some("laptop")),
            lease_on("guest0", "192.168.2.9", "02:00:00:00:00:09", Some("tv")),
            lease_on("wan0", "203.0.113.9", "02:00:00:00:00:10", Some("tv")),
        ];
        let block = [
            ("block", "tv, 02:00:00:00:00:04, nobody"),
            ("guest", "guest0"),
        ];
        let r = eval(&state(true, leases), &block).unwrap();
        // Every lease of a blocked host on the LAN or guest network, in
        // address order.
        assert_eq!(
            blocked_set(&r),
            ["192.168.1.4", "192.168.1.30", "192.168.2.9"]
        );
        // Both ways, before established connections are let through.
        let forward = chain(&r, "forward").unwrap().rules();
        assert_eq!(
            forward[0].matches()[0].matcher(),
            &Matcher::SaddrIn("blocked".into())
        );
        assert_eq!(
            forward[1].matches()[0].matcher(),
            &Matcher::DaddrIn("blocked".into())
        );
        assert_eq!(forward[0].verdict(), &Verdict::Drop);
        assert_eq!(forward[1].verdict(), &Verdict::Drop);
        // A new lease of a blocked host changes the set, no rule.
        let moved = vec![lease("192.168.1.31", "02:00:00:00:00:30", Some("tv"))];
        let r2 = eval(&state(true, moved), &block).unwrap();
        assert_eq!(blocked_set(&r2), ["192.168.1.31"]);
        assert_eq!(r.chains(), r2.chains());
        // Nobody blocked has a lease: the set is empty, the rules stay.
        let r3 = eval(&state(true, vec![]), &block).unwrap();
        assert!(blocked_set(&r3).is_empty());
        assert_eq!(r.chains(), r3.chains());
        // No `block`: no set, no rules.
        let r4 = eval(&state(true, vec![]), &[]).unwrap();
        assert!(r4.sets().iter().all(|s| s.name() != "blocked"));
        assert!(!comments(&r4, "forward").contains(&"blocked hosts"));
    }

    #[test]
    fn guests_are_isolated_from_the_lan_even_without_wan() {
        for wan_up in [true, false] {
            let r = eval(&state(wan_up, vec![]), &[("guest", "guest0")]).unwrap();
            for (from, to) in [("guest0", "lan0"), ("lan0", "guest0")] {
                let rules = between(&r, from, to);
                assert_eq!(rules.len(), 1, "{from} -> {to}");
                assert_eq!(rules[0].verdict(), &Verdict::Drop);
            }
            let out = between(&r, "guest0", "wan0");
            assert_eq!(out.len(), usize::from(wan_up));
            // Guests get DHCP and DNS from the router (and ICMP, as
            // everyone), nothing else.
            let input = chain(&r, "input").unwrap().rules();
            let guest_rules: Vec<_> = input
                .iter()
                .filter(|rule| {
                    rule.matches()
                        .iter()
                        .any(|m| m.matcher() == &Matcher::Iifname("guest0".into()))
                })
                .collect();
            assert_eq!(guest_rules.len(), 3);
            assert!(
                guest_rules
                    .iter()
                    .all(|rule| rule.verdict() == &Verdict::Accept)
            );
            assert!(guest_rules.iter().all(|rule| {
                !rule
                    .matches()
                    .iter()
                    .any(|m| matches!(m.matcher(), Matcher::DportIn { .. }))
            }));
        }
    }

    #[test]
    fn lan_interfaces_reach_each_other() {
        let r = eval(&state(false, vec![]), &[("lan", "lan0,lan1")]).unwrap();
        assert_eq!(between(&r, "lan0", "lan1").len(), 1);
        assert_eq!(between(&r, "lan1", "lan0").len(), 1);
        assert!(between(&r, "lan0", "lan0").is_empty());
        assert_eq!(between(&r, "lan0", "lan1")[0].verdict(), &Verdict::Accept);
    }

    #[test]
    fn the_same_state_gives_the_same_rules() {
        let leases = vec![
            lease("192.168.1.23", "52:54:00:12:34:56", Some("nas")),
            lease("192.168.1.30", "02:00:00:00:00:30", Some("tv")),
            lease("192.168.1.4", "02:00:00:00:00:04", Some("tv")),
        ];
        let config = [("forward", "tcp 8080 nas 80"), ("block", "tv")];
        let a = eval(&state(true, leases.clone()), &config).unwrap();
        let b = eval(&state(true, leases.clone()), &config).unwrap();
        assert_eq!(a, b);
        let mut reversed = leases;
        reversed.reverse();
        assert_eq!(eval(&state(true, reversed), &config).unwrap(), a);
    }

    #[test]
    fn config_errors_name_the_key() {
        let st = state(true, vec![]);
        for (pairs, needle) in [
            (vec![("lan", "")], "`lan` is required"),
            (vec![("wan", "")], "`wan` is required"),
            (vec![("wan", "a,b")], "one WAN interface"),
            (vec![("wan", "lan0")], "more than one role"),
            (vec![("guest", "lan0")], "more than one role"),
            (vec![("guest", "wan0")], "more than one role"),
            (
                vec![("lan", "lan0,lan0")],
                "`lan`: interface \"lan0\" is given twice",
            ),
            (vec![("lan", "a-very-long-interface")], "`lan`: interface"),
            (vec![("guest", "g/0")], "`guest`: interface"),
            (vec![("forward", "tcp 8080")], "wrong number of words"),
            (vec![("forward", "sctp 1 nas")], "tcp or udp"),
            (vec![("forward", "tcp 0 nas")], "not a port"),
            (vec![("forward", "tcp 80 nas 0")], "not a port"),
            (vec![("forward", "tcp 80 nas 70000")], "not a port"),
            (
                vec![("forward", "tcp 80 n@s")],
                "`forward`: \"tcp 80 n@s\" names the host",
            ),
            (
                vec![("forward", "tcp 80 nas, tcp 80 tv 8080")],
                "`forward`: \"tcp 80 tv 8080\" forwards tcp port 80 again",
            ),
            (vec![("block", "tv, what?")], "`block`: \"what?\""),
            (vec![("lan_tcp", "22,x")], "`lan_tcp`"),
            (vec![("lan_udp", "0")], "`lan_udp`"),
            (vec![("colour", "blue")], "unknown config key `colour`"),
            (vec![("syn_flood", "0")], "`syn_flood`: \"0\""),
            (vec![("syn_flood", "fast")], "`syn_flood`"),
            (
                vec![("mss_clamp", "maybe")],
                "`mss_clamp`: \"maybe\" is neither",
            ),
            (vec![("offload", "2")], "`offload`"),
            (
                vec![("block_at", "tv")],
                "`block_at`: \"tv\" has the wrong number",
            ),
            (vec![("block_at", "tv 21:00")], "has no time range"),
            (
                vec![("block_at", "tv 25:00-07:00")],
                "has the time \"25:00\"",
            ),
            (vec![("block_at", "tv 21:00-21:00")], "a range of no time"),
            (vec![("block_at", "t@v 21:00-07:00")], "names the host"),
        ] {
            let err = eval(&st, &pairs).unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        // The same port on the other protocol is another forward.
        assert!(eval(&st, &[("syn_flood", "100"), ("mss_clamp", "false")]).is_ok());
        let both = [("forward", "tcp 53 nas, udp 53 nas")];
        assert!(eval(&st, &both).is_ok());
    }

    #[test]
    fn the_router_takes_syns_at_a_rate_and_icmp_by_type() {
        let r = eval(&state(true, vec![]), &[]).unwrap();
        let input = chain(&r, "input").unwrap().rules();
        let syn = input
            .iter()
            .find(|rule| rule.comment() == Some("SYN flood"))
            .expect("a SYN flood rule");
        assert_eq!(syn.verdict(), &Verdict::Drop);
        assert!(syn.matches().iter().any(|m| m.matcher()
            == &Matcher::Limit(wasmwall_sdk::RateLimit::over(
                Rate::per_second(25).burst(50)
            ))));
        let r = eval(&state(true, vec![]), &[("syn_flood", "100")]).unwrap();
        let input = chain(&r, "input").unwrap().rules();
        assert!(
            input
                .iter()
                .any(|rule| rule.matches().iter().any(|m| m.matcher()
                    == &Matcher::Limit(wasmwall_sdk::RateLimit::over(
                        Rate::per_second(100).burst(200)
                    ))))
        );
        // ICMP by type: ping yes, timestamps (and the rest) no.
        let icmp = input
            .iter()
            .find(|rule| rule.comment() == Some("ping and ICMP errors"))
            .unwrap();
        let Matcher::Test { fields, any_of } = icmp.matches()[0].matcher() else {
            panic!("{icmp:?}");
        };
        assert_eq!(fields, &[Field::IcmpType]);
        let types: Vec<&Value> = any_of.iter().map(|e| &e[0]).collect();
        assert!(types.contains(&&Value::from(IcmpType::EchoRequest.number())));
        assert!(!types.contains(&&Value::from(IcmpType::TimestampRequest.number())));
        // The LAN is refused what the router does not serve; the WAN only
        // meets the chain's drop.
        let refused: Vec<_> = input
            .iter()
            .filter(|rule| rule.comment() == Some("refused"))
            .collect();
        assert_eq!(refused.len(), 2);
        assert!(
            refused
                .iter()
                .all(|rule| rule.verdict() == &Verdict::Reject)
        );
    }

    #[test]
    fn hosts_are_blocked_at_their_times_wherever_their_leases_are() {
        let leases = vec![
            lease("192.168.1.40", "02:00:00:00:00:40", Some("kid-tablet")),
            lease("192.168.1.41", "02:00:00:00:00:41", Some("kid-laptop")),
            lease("192.168.1.42", "02:00:00:00:00:42", Some("tv")),
        ];
        let config = [(
            "block_at",
            "kid-tablet 21:00-07:00, kid-laptop 21:00-07:00, tv 23:30-06:00",
        )];
        let r = eval(&state(true, leases), &config).unwrap();
        let set = |name: &str| match r.sets().iter().find(|s| s.name() == name) {
            Some(s) => s.elements().clone(),
            None => panic!("no set {name}"),
        };
        assert_eq!(
            set("block-2100-0700"),
            SetElements::Ipv4(vec!["192.168.1.40".into(), "192.168.1.41".into()])
        );
        assert_eq!(
            set("block-2330-0600"),
            SetElements::Ipv4(vec!["192.168.1.42".into()])
        );
        let timed: Vec<_> = chain(&r, "forward")
            .unwrap()
            .rules()
            .iter()
            .filter(|rule| {
                rule.matches()
                    .iter()
                    .any(|m| matches!(m.matcher(), Matcher::Hour { .. }))
            })
            .collect();
        assert_eq!(timed.len(), 4, "both ways, for each time");
        assert!(timed.iter().all(|rule| rule.verdict() == &Verdict::Drop));
    }

    #[test]
    fn flows_are_offloaded_only_where_the_kernel_can() {
        let config = [("offload", "true"), ("guest", "guest0")];
        let mut st = state(true, vec![]);
        let without = eval(&st, &config).unwrap();
        assert!(without.flowtables().is_empty());
        st.features.flowtables = true;
        let with = eval(&st, &config).unwrap();
        assert_eq!(with.flowtables().len(), 1);
        assert_eq!(with.flowtables()[0].devices(), ["guest0", "lan0", "wan0"]);
        assert!(chain(&with, "forward").unwrap().rules().iter().any(|rule| {
            rule.statements()
                .iter()
                .any(|s| matches!(s, wasmwall_sdk::Statement::Offload(f) if f == "offload"))
        }));
        // Not asked for: none, whatever the kernel.
        assert!(eval(&st, &[]).unwrap().flowtables().is_empty());
    }
}
