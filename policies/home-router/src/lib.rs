//! A home router's firewall, dual-stack.
//!
//! LAN, WAN and guest interfaces come from the config. The router itself
//! answers only what it serves its networks; it forwards LAN and guest
//! traffic to the WAN (IPv4 masqueraded, IPv6 as it is) while the WAN is
//! up; port forwards reach LAN hosts named by their DHCP host name, MAC or
//! DUID and follow the host's current addresses: over IPv4 a DNAT to its
//! lease, over IPv6 a pinhole to each of its global addresses; a guest
//! network never reaches the LAN; blocked hosts are cut off by name, MAC
//! or DUID, always or at times of day, on every address they hold, through
//! sets that follow their leases and the neighbour table.
//!
//! A host's addresses are the SDK's host look-ups (`Hosts`): its DHCP
//! leases, its DHCPv6 leases and the neighbour table's entries (SLAAC,
//! privacy and static IPv6 addresses), linked by host name, MAC and DUID,
//! each counted only while it lies inside a prefix the router has on that
//! interface. When the LAN's prefix is replaced, the old addresses drop
//! out of the sets at once and the new ones come in as the host uses them:
//! elements change, no rule does. IPv4 follows the DHCP leases only, as
//! it always did: each lease until it expires, whatever the interface's
//! prefixes.
//!
//! Config keys (TOML lists arrive comma-joined):
//! - `lan` (required): LAN interface(s), comma-separated.
//! - `wan` (required): the WAN interface.
//! - `guest`: guest interface(s): the internet, DHCP and DNS, nothing else.
//! - `lan_tcp` (default "22,53"), `lan_udp` (default "53,67,123,547"): ports
//!   the router serves to the LAN (port sets `lan-tcp` and `lan-udp`; an
//!   empty list means none).
//! - `forward`: port forwards, a list of "PROTO PORT HOST [HOSTPORT]", e.g.
//!   "tcp 8080 nas 80" or "udp 51820 52:54:00:12:34:56": connections from
//!   the WAN to PORT go to HOST's current lease address on a LAN interface,
//!   port HOSTPORT (default PORT). HOST is a DHCP host name (compared
//!   without regard to case), a MAC (six hex pairs) or a DUID (more hex
//!   pairs). A forward whose host has no lease is left out of the map (said
//!   in the log at debug level); a host holding several leases is reached
//!   at the lowest address. The LAN reaches a forward on the WAN's address
//!   too (NAT reflection). Over IPv6 there is no NAT: the same forward
//!   opens a pinhole from the WAN to each of HOST's current global IPv6
//!   addresses on a LAN interface, on the host's own port HOSTPORT (sets
//!   `pinholes-tcp`, `pinholes-udp`: address . port).
//! - `block`: host names, MACs or DUIDs whose addresses, every one of them
//!   on a LAN or guest interface, go into the sets `blocked` (leased IPv4
//!   addresses) and `blocked-v6` (global IPv6 addresses): nothing they send
//!   or are sent is forwarded, open connections included.
//! - `block_at`: "HOST HH:MM-HH:MM" entries, e.g. "kid-tablet 21:00-07:00"
//!   (local time; a range that ends before it starts wraps midnight): the
//!   same, during that time only (two sets per time, `block-2100-0700` and
//!   `block-2100-0700-v6`).
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
//!   and multicast listener discovery, so router advertisements on the WAN
//!   too); from the WAN the DHCPv6 server's answers to the router's client
//!   (udp 547 to 546 from a link-local address); from the LAN the
//!   `lan-tcp`/`lan-udp` ports; from guests DHCP (udp 67), DHCPv6 (udp 547) and DNS (udp and
//!   tcp 53); the rest from the LAN and guests refused (a TCP reset, else
//!   ICMP port unreachable), from the WAN dropped. None of it depends on
//!   the WAN.
//! - `forward` (filter, forward, priority filter, policy drop): blocked
//!   hosts dropped both ways, both families, always or at their times;
//!   offloading when asked; established and related; invalid dropped;
//!   ICMPv6 that is never forwarded dropped (RFC 4890 section 4.3.5: router
//!   renumbering, node information); between LAN interfaces; guest <-> LAN
//!   dropped (whatever the WAN does); while the WAN is up: LAN and guest to
//!   the WAN, ICMPv6 from the WAN to them that must not be dropped in
//!   transit (RFC 4890 section 4.3.1: destination unreachable, packet too
//!   big, time exceeded, parameter problem, echo request and reply), what a
//!   port forward DNATed, and the IPv6 pinholes; the rest from the LAN and
//!   guests refused.
//! - `mangle-forward` (filter, forward, priority mangle), while the WAN is
//!   up and `mss_clamp` holds: the MSS clamp.
//! - `prerouting` (nat, priority dstnat): the forwards as two maps, keyed by
//!   the WAN port (`forwards-tcp`, `forwards-udp`: port -> address . port),
//!   from the WAN and from the LAN to the WAN's address; `postrouting` (nat,
//!   priority srcnat): the IPv4 masquerade on the WAN, and the LAN's
//!   reflected connections masqueraded so that answers come back through
//!   the router. Both only while the WAN is up, as are the sysctls
//!   `net.ipv4.ip_forward = 1` and `net.ipv6.conf.all.forwarding = 1`.
//!   (With IPv6 forwarding on, the kernel takes router advertisements on
//!   the WAN only where its `accept_ra` is 2; this policy leaves that to
//!   whatever configures the WAN.)
//!
//! "The WAN is up": its interface exists and is up (administratively and
//! with carrier). When it goes down, its rules go.
//!
//! The same state and config give the same ruleset, rule for rule: what
//! comes from leases and neighbours is ordered by address, so the runtime
//! sends nothing when nothing changed, and a lease or an address that
//! comes, moves or goes, or a prefix that is replaced, changes elements of
//! a map or a set, never a rule: each packet costs the same however many
//! forwards and hosts there are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wasmwall_sdk::{
    AddressSource, Chain, ChainPolicy, Config, CtState, CtStatus, Event, Field, Flowtable, Hook,
    HostAddress, HostId, Hosts, IcmpType, Icmpv6Type, IpFamily, KeyType, L4Protocol, MapElement,
    MapLookup, NamedMap, NamedSet, Policy, PriorityName, Rate, Rule, RuleBuilder, Ruleset,
    TcpFlags, TimeOfDay, Transport, Value, WorldState,
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
    host: HostId,
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
        let host = HostId::parse(host)
            .map_err(|why| bad(&format!("names the host {host:?}, which {why}")))?;
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
struct Window {
    from: TimeOfDay,
    to: TimeOfDay,
    hosts: Vec<HostId>,
}

impl Window {
    /// The set of the window's IPv4 addresses: `block-2100-0700` (its
    /// IPv6 addresses are in `block-2100-0700-v6`).
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
    block: Vec<HostId>,
    block_at: Vec<Window>,
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
fn windows(config: &Config) -> Result<Vec<Window>, String> {
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
        let host = HostId::parse(host)
            .map_err(|why| bad(&format!("names the host {host:?}, which {why}")))?;
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
    let block = config
        .list("block")
        .into_iter()
        .map(|h| HostId::parse(h).map_err(|why| format!("config key `block`: {h:?} {why}")))
        .collect::<Result<Vec<_>, _>>()?;
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
        lan_udp: ports(config, "lan_udp", "53,67,123,547")?,
        forwards,
        block,
        block_at: windows(config)?,
        syn_flood: Rate::per_second(syn_flood)
            .burst((2 * syn_flood).min(u64::from(u32::MAX)) as u32),
        mss_clamp: flag(config, "mss_clamp", true)?,
        offload: flag(config, "offload", false)?,
    })
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

/// ICMPv6 forwarded from the WAN (RFC 4890, section 4.3.1: what must not
/// be dropped in transit, section 4.3.2's codes included): the errors that
/// path MTU discovery and traceroute need, and ping.
const ICMPV6_IN_TRANSIT: [Icmpv6Type; 6] = [
    Icmpv6Type::DestinationUnreachable,
    Icmpv6Type::PacketTooBig,
    Icmpv6Type::TimeExceeded,
    Icmpv6Type::ParameterProblem,
    Icmpv6Type::EchoRequest,
    Icmpv6Type::EchoReply,
];

/// ICMPv6 never forwarded, whichever way (RFC 4890, section 4.3.5): router
/// renumbering, and node information queries and responses.
const ICMPV6_NOT_FORWARDED: [Icmpv6Type; 3] = [
    Icmpv6Type::RouterRenumbering,
    Icmpv6Type::Other(139),
    Icmpv6Type::Other(140),
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
            // The router is the WAN's DHCPv6 client (for its address and a
            // delegated prefix): its server answers from a link-local
            // address to the client's, which conntrack cannot pair with
            // the request the client sent to a multicast address.
            new_rule()
                .iifname(s.wan)
                .saddr("fe80::/10")
                .udp_sport(547)
                .udp_dport(546)
                .comment("DHCPv6 from the WAN")
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
                    .udp_dport(547)
                    .comment("guest DHCPv6")
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
        // one also stops the connections it already has open; on every
        // address they hold, one set per family.
        let mut forward = Vec::new();
        let mut ruleset = Ruleset::new();
        let hosts = Hosts::new(state);
        let mut blocked_sets = Vec::new();
        if !s.block.is_empty() {
            blocked_sets.push((
                "blocked".to_string(),
                None,
                "blocked hosts".to_string(),
                &s.block,
            ));
        }
        for window in &s.block_at {
            let comment = format!("blocked {}-{}", window.from, window.to);
            let hour = Some((window.from, window.to));
            blocked_sets.push((window.set_name(), hour, comment, &window.hosts));
        }
        for (set, hour, comment, names) in blocked_sets {
            let (v4, v6) = addresses_of(&hosts, names, &inside);
            let set6 = format!("{set}-v6");
            forward.extend(blocking(&set, hour, &comment));
            forward.extend(blocking(&set6, hour, &comment));
            ruleset = ruleset
                .set(NamedSet::ipv4(set, v4.iter().map(Ipv4Addr::to_string)))
                .set(NamedSet::ipv6(set6, v6.iter().map(Ipv6Addr::to_string)));
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
        forward.push(
            new_rule()
                .icmpv6_types(ICMPV6_NOT_FORWARDED)
                .comment("ICMPv6 not forwarded (RFC 4890)")
                .drop(),
        );
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
                    .iifname(s.wan)
                    .test(Field::Oifname, inside.iter().map(|i| Value::name(*i)))
                    .icmpv6_types(ICMPV6_IN_TRANSIT)
                    .comment("ICMPv6 in transit (RFC 4890)")
                    .accept(),
            );
            forward.push(
                new_rule()
                    .ct_status(CtStatus::DNAT)
                    .comment("port forwards")
                    .accept(),
            );
            // Each forward is one element of a map, keyed by its port, and
            // one element of a pinhole set per IPv6 address of its host: a
            // lease or an address that comes, moves or goes, and a prefix
            // that is replaced, change elements only.
            let forward_hosts: Vec<Vec<HostAddress>> = s
                .forwards
                .iter()
                .map(|f| hosts.known_addresses(&f.host))
                .collect();
            for (protocol, set) in [
                (Transport::Tcp, "pinholes-tcp"),
                (Transport::Udp, "pinholes-udp"),
            ] {
                let mut elements: Vec<(Ipv6Addr, u16)> = Vec::new();
                for (f, found) in s.forwards.iter().zip(&forward_hosts) {
                    if f.protocol != protocol {
                        continue;
                    }
                    let before = elements.len();
                    elements.extend(global_ipv6(&hosts, found, &s.lan).map(|ip| (ip, f.host_port)));
                    if elements.len() == before {
                        debug(&format!(
                            "forward {:?}: {} has no IPv6 address beyond the link on a LAN interface, so no pinhole",
                            f.text, f.host
                        ));
                    }
                }
                elements.sort_unstable();
                elements.dedup();
                ruleset = ruleset.set(
                    NamedSet::keyed(set, [KeyType::Ipv6Addr, KeyType::InetService]).extend(
                        elements
                            .into_iter()
                            .map(|(ip, port)| [Value::from(ip), Value::from(port)]),
                    ),
                );
                forward.push(
                    new_rule()
                        .iifname(s.wan)
                        .in_set([Field::Daddr(IpFamily::V6), Field::Dport(protocol)], set)
                        .comment(format!("IPv6 pinholes ({protocol})"))
                        .accept(),
                );
            }
            let wan_addresses: Vec<&str> = wan
                .map(|w| w.addresses.iter().filter_map(|a| ipv4_of(a)).collect())
                .unwrap_or_default();
            for (protocol, map) in [
                (Transport::Tcp, "forwards-tcp"),
                (Transport::Udp, "forwards-udp"),
            ] {
                let mut elements = Vec::new();
                for (f, found) in s.forwards.iter().zip(&forward_hosts) {
                    if f.protocol != protocol {
                        continue;
                    }
                    let Some(ip) = leased_ipv4(found, &s.lan).next() else {
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
            // IPv4 only: IPv6 goes out with the host's own address.
            postrouting.push(new_rule().oifname(s.wan).nfproto(IpFamily::V4).masquerade());
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
            ruleset = ruleset
                .sysctl("net.ipv4.ip_forward", "1")
                .sysctl("net.ipv6.conf.all.forwarding", "1");
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

/// Those of a host's current addresses (`hosts`, in the SDK's order: by
/// address, IPv4 first) that are on one of `ifaces`.
fn on<'h>(hosts: &'h [HostAddress], ifaces: &[&str]) -> impl Iterator<Item = &'h HostAddress> {
    hosts
        .iter()
        .filter(move |a| ifaces.contains(&a.iface.as_str()))
}

/// A host's leased IPv4 addresses on `ifaces`, lowest first, among the
/// addresses `known` for it: IPv4 follows the DHCP leases, every one
/// until it expires, as before IPv6 came (not the neighbour table, whose
/// entry of an address since leased to someone else would outlive it).
fn leased_ipv4(known: &[HostAddress], ifaces: &[&str]) -> impl Iterator<Item = Ipv4Addr> {
    on(known, ifaces).filter_map(|a| match a.ip {
        IpAddr::V4(ip) if a.came_from(AddressSource::Lease) => Some(ip),
        _ => None,
    })
}

/// A host's IPv6 addresses beyond the link on `ifaces`: its DHCPv6 leases
/// and the addresses the neighbour table saw it use (SLAAC, privacy and
/// static ones), among the addresses `known` for it, only those inside a
/// current prefix of their interface (`Hosts::is_current`).
fn global_ipv6(
    hosts: &Hosts,
    known: &[HostAddress],
    ifaces: &[&str],
) -> impl Iterator<Item = Ipv6Addr> {
    on(known, ifaces).filter_map(|a| match a.ip {
        IpAddr::V6(ip) if a.is_global() && hosts.is_current(a) => Some(ip),
        _ => None,
    })
}

/// Every address, on `ifaces`, of the hosts `hosts` names: the leased
/// IPv4 ones and the IPv6 ones beyond the link, each family sorted and
/// each address once.
fn addresses_of(
    index: &Hosts,
    hosts: &[HostId],
    ifaces: &[&str],
) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for host in hosts {
        let known = index.known_addresses(host);
        v4.extend(leased_ipv4(&known, ifaces));
        v6.extend(global_ipv6(index, &known, ifaces));
    }
    v4.sort_unstable();
    v4.dedup();
    v6.sort_unstable();
    v6.dedup();
    (v4, v6)
}

/// The two rules that drop what the hosts of the address set `set` send
/// and are sent (the set's type gives the family), at all times or only
/// from `hour.0` to `hour.1`.
fn blocking(set: &str, hour: Option<(TimeOfDay, TimeOfDay)>, comment: &str) -> [Rule; 2] {
    let timed = || match hour {
        Some((from, to)) => new_rule().hour(from, to),
        None => new_rule(),
    };
    [
        timed().saddr_in(set).comment(comment).drop(),
        timed().daddr_in(set).comment(comment).drop(),
    ]
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
    use wasmwall_sdk::{
        Dhcpv6Lease, Lease, MapData, Matcher, Neighbour, NetworkInterface, SetElements, Verdict,
    };

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
        // IPv6 is not masqueraded: the hosts' own addresses go out.
        assert!(
            post.rules()[0]
                .matches()
                .iter()
                .any(|m| m.matcher() == &Matcher::Nfproto(IpFamily::V4))
        );
        assert!(chain(&up, "mangle-forward").is_some(), "MSS clamping");
        assert!(chain(&up, "prerouting").is_some());
        let sysctls: Vec<(&str, &str)> =
            up.sysctls().iter().map(|s| (s.key(), s.value())).collect();
        assert_eq!(
            sysctls,
            [
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1")
            ]
        );
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
        assert_eq!(set("lan-udp"), SetElements::Ports(vec![53, 67, 123, 547]));
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
        let names: Vec<_> = r
            .sets()
            .iter()
            .map(|s| s.name())
            .filter(|n| n.starts_with("lan-"))
            .collect();
        assert_eq!(names, ["lan-tcp"]);
        let lan_tcp = r.sets().iter().find(|s| s.name() == "lan-tcp").unwrap();
        assert_eq!(lan_tcp.elements(), &SetElements::Ports(vec![22, 443]));
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
            // Guests get DHCP, DHCPv6 and DNS (udp, tcp) from the router
            // (and ICMP, as everyone), nothing else.
            let input = chain(&r, "input").unwrap().rules();
            let guest_rules: Vec<_> = input
                .iter()
                .filter(|rule| {
                    rule.matches()
                        .iter()
                        .any(|m| m.matcher() == &Matcher::Iifname("guest0".into()))
                })
                .collect();
            assert_eq!(guest_rules.len(), 4);
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
        assert_eq!(timed.len(), 8, "both ways, both families, for each time");
        assert!(timed.iter().all(|rule| rule.verdict() == &Verdict::Drop));
        // The IPv6 sets are there, empty without IPv6 addresses.
        assert_eq!(set("block-2100-0700-v6"), SetElements::Ipv6(vec![]));
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

    const NAS_MAC: &str = "52:54:00:12:34:56";
    const NAS_DUID: &str = "00:03:00:01:52:54:00:12:34:56";

    /// `state`, with IPv6: lan0 on 2001:db8:0:1::/64 (and fe80::/64),
    /// guest0 on 2001:db8:0:2::/64, the WAN on 2001:db8:ff::/64.
    fn dual(wan_up: bool, leases: Vec<Lease>) -> WorldState {
        let mut st = state(wan_up, leases);
        for (name, v6) in [
            ("guest0", "2001:db8:0:2::1/64"),
            ("lan0", "2001:db8:0:1::1/64"),
            ("wan0", "2001:db8:ff::2/64"),
        ] {
            let i = st.interfaces.iter_mut().find(|i| i.name == name).unwrap();
            i.addresses.push(v6.into());
            i.addresses.push("fe80::1/64".into());
        }
        st
    }

    fn v6_lease(ip: &str, duid: &str, mac: Option<&str>, host: Option<&str>) -> Dhcpv6Lease {
        let mut l = Dhcpv6Lease::new(duid, 1, ip, "lan0");
        l.mac = mac.map(str::to_string);
        l.hostname = host.map(str::to_string);
        l
    }

    /// The elements of a pinhole set: "ADDRESS PORT".
    fn pinholes(r: &Ruleset, name: &str) -> Vec<String> {
        let set = r.sets().iter().find(|s| s.name() == name).unwrap();
        match set.elements() {
            SetElements::Keyed { key, elements } => {
                assert_eq!(key, &[KeyType::Ipv6Addr, KeyType::InetService]);
                elements
                    .iter()
                    .map(|e| match e.as_slice() {
                        [Value::Address(a), Value::Number(p)] => format!("{a} {p}"),
                        other => panic!("{name}: {other:?}"),
                    })
                    .collect()
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    fn ipv6_set(r: &Ruleset, name: &str) -> Vec<String> {
        match r
            .sets()
            .iter()
            .find(|s| s.name() == name)
            .unwrap()
            .elements()
        {
            SetElements::Ipv6(v) => v.clone(),
            other => panic!("{name} is not an IPv6 set: {other:?}"),
        }
    }

    #[test]
    fn a_forward_opens_pinholes_to_the_hosts_current_ipv6_addresses() {
        let nas = lease("192.168.1.23", NAS_MAC, Some("nas"));
        let mut st = dual(true, vec![nas]);
        st.dhcpv6_leases = vec![v6_lease("2001:db8:0:1::23", NAS_DUID, None, Some("nas"))];
        st.neighbours = vec![
            Neighbour::new("2001:db8:0:1:5054:ff:fe12:3456", NAS_MAC, "lan0"),
            Neighbour::new("fe80::5054:ff:fe12:3456", NAS_MAC, "lan0"),
        ];
        let config = [("forward", "tcp 8080 nas 80, udp 51820 nas")];
        let r = eval(&st, &config).unwrap();
        // No NAT in IPv6: the host's own port, on each global address.
        assert_eq!(
            pinholes(&r, "pinholes-tcp"),
            ["2001:db8:0:1::23 80", "2001:db8:0:1:5054:ff:fe12:3456 80"]
        );
        assert_eq!(
            pinholes(&r, "pinholes-udp"),
            [
                "2001:db8:0:1::23 51820",
                "2001:db8:0:1:5054:ff:fe12:3456 51820"
            ]
        );
        // IPv4 as before.
        assert_eq!(
            dnat_targets(&r),
            ["8080 -> 192.168.1.23:80", "51820 -> 192.168.1.23:51820"]
        );
        let forward = chain(&r, "forward").unwrap().rules();
        let pinhole = forward
            .iter()
            .find(|rule| rule.comment() == Some("IPv6 pinholes (tcp)"))
            .unwrap();
        assert_eq!(
            pinhole.matches()[1].matcher(),
            &Matcher::InSet {
                fields: vec![Field::Daddr(IpFamily::V6), Field::Dport(Transport::Tcp)],
                set: "pinholes-tcp".into(),
            }
        );
        assert_eq!(
            pinhole.matches()[0].matcher(),
            &Matcher::Iifname("wan0".into())
        );
        assert_eq!(pinhole.verdict(), &Verdict::Accept);

        // The prefix is replaced: lan0 has the new one only, the kernel
        // and the DHCP server still hold the old addresses beside the new.
        let mut moved = st.clone();
        let lan0 = moved
            .interfaces
            .iter_mut()
            .find(|i| i.name == "lan0")
            .unwrap();
        lan0.addresses = vec![
            "192.168.1.1/24".into(),
            "2001:db8:0:7::1/64".into(),
            "fe80::1/64".into(),
        ];
        moved
            .dhcpv6_leases
            .push(v6_lease("2001:db8:0:7::23", NAS_DUID, None, Some("nas")));
        moved.neighbours.push(Neighbour::new(
            "2001:db8:0:7:5054:ff:fe12:3456",
            NAS_MAC,
            "lan0",
        ));
        let r2 = eval(&moved, &config).unwrap();
        assert_eq!(
            pinholes(&r2, "pinholes-tcp"),
            ["2001:db8:0:7::23 80", "2001:db8:0:7:5054:ff:fe12:3456 80"]
        );
        // Elements changed, no rule.
        assert_eq!(r.chains(), r2.chains());
        // No IPv6 address: empty sets, the same rules; WAN down: none.
        let r3 = eval(&dual(true, vec![]), &config).unwrap();
        assert!(pinholes(&r3, "pinholes-tcp").is_empty());
        assert_eq!(r.chains(), r3.chains());
        let down = eval(&dual(false, vec![]), &config).unwrap();
        assert!(
            down.sets()
                .iter()
                .all(|s| !s.name().starts_with("pinholes"))
        );
        assert!(
            !comments(&down, "forward")
                .iter()
                .any(|c| c.starts_with("IPv6 pinholes"))
        );
    }

    #[test]
    fn a_forward_names_its_host_by_mac_or_duid_too() {
        let mut st = dual(true, vec![]);
        st.dhcpv6_leases = vec![
            v6_lease("2001:db8:0:1::23", NAS_DUID, Some(NAS_MAC), None),
            v6_lease(
                "2001:db8:0:1::99",
                "00:03:00:01:02:00:00:00:00:99",
                None,
                None,
            ),
        ];
        // A SLAAC-only host, known from the neighbour table alone; its
        // address on the guest network is no LAN host's.
        st.neighbours = vec![
            Neighbour::new("2001:db8:0:1::77", "02:00:00:00:00:77", "lan0"),
            Neighbour::new("2001:db8:0:2::77", "02:00:00:00:00:77", "guest0"),
            Neighbour::new("2001:db8:0:1:5054:ff:fe12:3456", NAS_MAC, "lan0"),
        ];
        let config = [
            ("guest", "guest0"),
            (
                "forward",
                "tcp 443 00:03:00:01:02:00:00:00:00:99, tcp 22 02:00:00:00:00:77, tcp 2222 00:03:00:01:52:54:00:12:34:56 22",
            ),
        ];
        let r = eval(&st, &config).unwrap();
        assert_eq!(
            pinholes(&r, "pinholes-tcp"),
            [
                "2001:db8:0:1::23 22",
                "2001:db8:0:1::77 22",
                "2001:db8:0:1::99 443",
                "2001:db8:0:1:5054:ff:fe12:3456 22"
            ]
        );
        // None of them has a DHCP lease: no IPv4 forward.
        assert!(dnat_targets(&r).is_empty());
    }

    #[test]
    fn blocked_hosts_are_blocked_on_their_addresses_of_both_families() {
        let tv = lease("192.168.1.30", "02:00:00:00:00:30", Some("tv"));
        let mut st = dual(true, vec![tv]);
        st.dhcpv6_leases = vec![v6_lease(
            "2001:db8:0:1::30",
            "00:03:00:01:02:00:00:00:00:30",
            None,
            Some("tv"),
        )];
        st.neighbours = vec![
            Neighbour::new("2001:db8:0:1:0:ff:fe00:30", "02:00:00:00:00:30", "lan0"),
            Neighbour::new("fe80::ff:fe00:30", "02:00:00:00:00:30", "lan0"),
            Neighbour::new("2001:db8:0:2::30", "02:00:00:00:00:30", "guest0"),
            // An old prefix on lan0.
            Neighbour::new("2001:db8:0:9::30", "02:00:00:00:00:30", "lan0"),
            // An IPv4 address the host was seen with but not leased: IPv4
            // stays with the leases.
            Neighbour::new("192.168.1.31", "02:00:00:00:00:30", "lan0"),
        ];
        let config = [("block", "tv"), ("guest", "guest0")];
        let r = eval(&st, &config).unwrap();
        assert_eq!(blocked_set(&r), ["192.168.1.30"]);
        assert_eq!(
            ipv6_set(&r, "blocked-v6"),
            [
                "2001:db8:0:1::30",
                "2001:db8:0:1:0:ff:fe00:30",
                "2001:db8:0:2::30"
            ]
        );
        let forward = chain(&r, "forward").unwrap().rules();
        let firsts: Vec<&Matcher> = forward[..4]
            .iter()
            .map(|r| r.matches()[0].matcher())
            .collect();
        assert_eq!(
            firsts,
            [
                &Matcher::SaddrIn("blocked".into()),
                &Matcher::DaddrIn("blocked".into()),
                &Matcher::SaddrIn("blocked-v6".into()),
                &Matcher::DaddrIn("blocked-v6".into()),
            ]
        );
        assert!(forward[..4].iter().all(|r| r.verdict() == &Verdict::Drop));
        // An IPv4 lease outside lan0's prefix counts as before (until it
        // expires); an IPv6 address outside it does not.
        let mut outside = st.clone();
        outside
            .leases
            .push(lease("10.10.0.1", "02:00:00:00:00:30", Some("tv")));
        outside.neighbours.push(Neighbour::new(
            "2001:db8:9::30",
            "02:00:00:00:00:30",
            "lan0",
        ));
        let r2 = eval(&outside, &config).unwrap();
        assert_eq!(blocked_set(&r2), ["10.10.0.1", "192.168.1.30"]);
        assert_eq!(ipv6_set(&r2, "blocked-v6"), ipv6_set(&r, "blocked-v6"));
        // A DUID blocks too.
        let by_duid = [("block", "00:03:00:01:02:00:00:00:00:30")];
        let r = eval(&st, &by_duid).unwrap();
        assert!(blocked_set(&r).is_empty());
        assert_eq!(ipv6_set(&r, "blocked-v6"), ["2001:db8:0:1::30"]);
    }

    #[test]
    fn icmpv6_in_transit_follows_rfc_4890() {
        let config = [("guest", "guest0"), ("lan", "lan0,lan1")];
        let r = eval(&dual(true, vec![]), &config).unwrap();
        let forward = chain(&r, "forward").unwrap().rules();
        let types = |rule: &Rule| -> Vec<u32> {
            let Some(Matcher::Test { fields, any_of }) =
                rule.matches().iter().map(|m| m.matcher()).find(
                    |m| matches!(m, Matcher::Test { fields, .. } if fields == &[Field::Icmpv6Type]),
                )
            else {
                panic!("no ICMPv6 type test in {rule:?}");
            };
            assert_eq!(fields, &[Field::Icmpv6Type]);
            any_of
                .iter()
                .map(|e| match e[0] {
                    Value::Number(n) => n,
                    ref other => panic!("{other:?}"),
                })
                .collect()
        };
        let position = |comment: &str| {
            forward
                .iter()
                .position(|rule| rule.comment() == Some(comment))
                .unwrap_or_else(|| panic!("no rule {comment:?}"))
        };
        let transit = &forward[position("ICMPv6 in transit (RFC 4890)")];
        assert_eq!(types(transit), [1, 2, 3, 4, 128, 129]);
        assert_eq!(
            transit.matches()[0].matcher(),
            &Matcher::Iifname("wan0".into())
        );
        assert_eq!(
            transit.matches()[1].matcher(),
            &Matcher::Test {
                fields: vec![Field::Oifname],
                any_of: vec![
                    vec![Value::name("lan0")],
                    vec![Value::name("lan1")],
                    vec![Value::name("guest0")]
                ],
            }
        );
        let dropped = &forward[position("ICMPv6 not forwarded (RFC 4890)")];
        assert_eq!(types(dropped), [138, 139, 140]);
        assert_eq!(dropped.verdict(), &Verdict::Drop);
        // Dropped before anything lets traffic through, but after the
        // guests' isolation nothing from the WAN side is accepted early.
        assert!(
            position("ICMPv6 not forwarded (RFC 4890)")
                < position("between LAN interfaces").min(position("out to the WAN"))
        );
        assert!(position("guests never reach the LAN") < position("ICMPv6 in transit (RFC 4890)"));
        // WAN down: nothing comes in from it.
        let down = eval(&dual(false, vec![]), &[]).unwrap();
        assert!(!comments(&down, "forward").contains(&"ICMPv6 in transit (RFC 4890)"));
    }

    #[test]
    fn the_wan_s_dhcpv6_server_reaches_the_router_whatever_the_wan_does() {
        for wan_up in [true, false] {
            let r = eval(&dual(wan_up, vec![]), &[]).unwrap();
            let input = chain(&r, "input").unwrap().rules();
            let dhcpv6 = input
                .iter()
                .find(|rule| rule.comment() == Some("DHCPv6 from the WAN"))
                .unwrap();
            let matchers: Vec<&Matcher> = dhcpv6.matches().iter().map(|m| m.matcher()).collect();
            assert_eq!(
                matchers,
                [
                    &Matcher::Iifname("wan0".into()),
                    &Matcher::Saddr("fe80::/10".into()),
                    &Matcher::Sport {
                        protocol: Transport::Udp,
                        first: 547,
                        last: 547
                    },
                    &Matcher::Dport {
                        protocol: Transport::Udp,
                        first: 546,
                        last: 546
                    },
                ]
            );
            assert_eq!(dhcpv6.verdict(), &Verdict::Accept);
        }
    }
}
