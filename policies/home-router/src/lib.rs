//! A home router's firewall.
//!
//! LAN, WAN and guest interfaces come from the config. The router itself
//! answers only what it serves its networks; it forwards LAN and guest
//! traffic to the WAN (masqueraded) while the WAN is up; port forwards reach
//! LAN hosts named by their DHCP host name or MAC and follow the host's
//! current lease; a guest network never reaches the LAN; blocked hosts are
//! cut off by name or MAC, through a set that follows their leases.
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
//!   without regard to case) or a MAC. A forward whose host has no lease has
//!   no rules (said in the log at debug level); a host holding several
//!   leases is reached at the lowest address.
//! - `block`: host names or MACs whose leased IPv4 addresses, every one of
//!   them on a LAN or guest interface, go into the set `blocked`: nothing
//!   they send or are sent is forwarded, open connections included.
//!
//! Chains (the runtime prefixes them with the policy's name), in order:
//! - `input` (filter, input, priority 0, policy drop): loopback;
//!   established and related; invalid dropped; ICMPv6 (neighbour
//!   discovery); from the LAN ICMP and the `lan-tcp`/`lan-udp` ports; from
//!   guests ICMP, DHCP (udp 67) and DNS (udp and tcp 53). None of it
//!   depends on the WAN.
//! - `forward` (filter, forward, priority 0, policy drop): blocked hosts
//!   dropped, both ways; established and related; invalid dropped; between
//!   LAN interfaces; guest <-> LAN dropped (whatever the WAN does); while
//!   the WAN is up: LAN and guest to the WAN, and each live port forward
//!   (WAN -> the host's interface, address and port).
//! - `prerouting` (nat, priority -100) with the forwards' DNAT and
//!   `postrouting` (nat, priority 100) with the masquerade on the WAN, both
//!   only while the WAN is up, as is the sysctl `net.ipv4.ip_forward = 1`.
//!
//! "The WAN is up": its interface exists and is up (administratively and
//! with carrier). When it goes down, its rules go.
//!
//! The same state and config give the same ruleset, rule for rule: what
//! comes from leases is ordered by address, so the runtime sends nothing
//! when nothing changed, and a lease that comes, moves or goes changes one
//! DNAT rule and one accept rule, or one element of `blocked`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::Ipv4Addr;

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, CtState, Event, Hook, L4Protocol, Lease, NamedSet, Policy, Rule,
    RuleBuilder, Ruleset, Transport, WorldState,
};

const KNOWN_KEYS: &[&str] = &[
    "lan", "wan", "guest", "lan_tcp", "lan_udp", "forward", "block",
];

/// Longest host name a comment shows whole (comments hold 127 bytes).
const COMMENT_HOST_MAX: usize = 64;

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

struct Settings<'a> {
    lan: Vec<&'a str>,
    wan: &'a str,
    guest: Vec<&'a str>,
    lan_tcp: Vec<u16>,
    lan_udp: Vec<u16>,
    forwards: Vec<Forward<'a>>,
    block: Vec<&'a str>,
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
    Ok(Settings {
        lan,
        wan,
        guest,
        lan_tcp: ports(config, "lan_tcp", "22,53")?,
        lan_udp: ports(config, "lan_udp", "53,67,123")?,
        forwards,
        block,
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

/// `host` for a comment, cut to `COMMENT_HOST_MAX` bytes.
fn shown(host: &str) -> String {
    if host.len() <= COMMENT_HOST_MAX {
        host.to_string()
    } else {
        // Host names are ASCII (checked by `host_problem`).
        format!("{}...", &host[..COMMENT_HOST_MAX - 3])
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

impl Policy for HomeRouter {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        let s = settings(config)?;
        let wan_up = state.interface(s.wan).is_some_and(|i| i.up);
        let established = || new_rule().ct_state([CtState::Established, CtState::Related]);
        let invalid = || new_rule().ct_state([CtState::Invalid]);

        // The router itself: only what it serves.
        let mut input = vec![
            new_rule().iifname("lo").accept(),
            established().accept(),
            invalid().drop(),
            new_rule()
                .l4proto(L4Protocol::Icmpv6)
                .comment("neighbour discovery and the rest of ICMPv6")
                .accept(),
        ];
        for lan in &s.lan {
            input.push(new_rule().iifname(*lan).l4proto(L4Protocol::Icmp).accept());
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
                    .l4proto(L4Protocol::Icmp)
                    .accept(),
            );
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

        // Through the router. Blocked hosts come first, so that blocking
        // one also stops the connections it already has open.
        let mut forward = Vec::new();
        let inside: Vec<&str> = s.lan.iter().chain(&s.guest).copied().collect();
        let blocked_leases = HostLeases::new(state, s.block.iter().copied(), &inside);
        let mut blocked: Vec<Ipv4Addr> = s
            .block
            .iter()
            .flat_map(|h| blocked_leases.of(h))
            .map(|(ip, _)| *ip)
            .collect();
        blocked.sort_unstable();
        blocked.dedup();
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

        let mut ruleset = Ruleset::new();
        let mut prerouting = Vec::new();
        let mut postrouting = Vec::new();
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
            let forward_leases = HostLeases::new(state, s.forwards.iter().map(|f| f.host), &s.lan);
            for f in &s.forwards {
                let Some(&(ip, lease)) = forward_leases.of(f.host).first() else {
                    debug(&format!(
                        "forward {:?}: {} has no lease on a LAN interface, so no rules",
                        f.text, f.host
                    ));
                    continue;
                };
                let text = format!(
                    "forward {} {} -> {} ({ip}:{})",
                    f.protocol,
                    f.port,
                    shown(f.host),
                    f.host_port
                );
                prerouting.push(
                    new_rule()
                        .iifname(s.wan)
                        .dport_range(f.protocol, f.port, f.port)
                        .comment(text.clone())
                        .dnat(&format!("{ip}:{}", f.host_port)),
                );
                forward.push(
                    new_rule()
                        .iifname(s.wan)
                        .oifname(lease.iface.clone())
                        .daddr(ip.to_string())
                        .dport_range(f.protocol, f.host_port, f.host_port)
                        .comment(text)
                        .accept(),
                );
            }
            postrouting.push(new_rule().oifname(s.wan).masquerade());
            ruleset = ruleset.sysctl("net.ipv4.ip_forward", "1");
        }

        let chain = |c: Chain, rules: Vec<Rule>| c.extend(rules);
        ruleset = ruleset
            .chain(chain(
                Chain::filter("input", Hook::Input, 0).policy(ChainPolicy::Drop),
                input,
            ))
            .chain(chain(
                Chain::filter("forward", Hook::Forward, 0).policy(ChainPolicy::Drop),
                forward,
            ));
        if wan_up {
            ruleset = ruleset
                .chain(chain(
                    Chain::nat("prerouting", Hook::Prerouting, -100),
                    prerouting,
                ))
                .chain(chain(
                    Chain::nat("postrouting", Hook::Postrouting, 100),
                    postrouting,
                ));
        }
        if !s.lan_tcp.is_empty() {
            ruleset = ruleset.set(NamedSet::ports("lan-tcp", s.lan_tcp.iter().copied()));
        }
        if !s.lan_udp.is_empty() {
            ruleset = ruleset.set(NamedSet::ports("lan-udp", s.lan_udp.iter().copied()));
        }
        if !s.block.is_empty() {
            ruleset = ruleset.set(NamedSet::ipv4(
                "blocked",
                blocked.iter().map(Ipv4Addr::to_string),
            ));
        }
        Ok(ruleset)
    }
}

wasmwall_sdk::export_policy!(HomeRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwall_sdk::{Matcher, NetworkInterface, SetElements, Verdict};

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

    fn dnat_targets(r: &Ruleset) -> Vec<String> {
        chain(r, "prerouting")
            .map(|c| {
                c.rules()
                    .iter()
                    .filter_map(|rule| match rule.verdict() {
                        Verdict::Dnat(t) => {
                            Some(format!("{}:{}", t.address(), t.port().unwrap_or(0)))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
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
        assert_eq!(post.rules().len(), 1);
        assert_eq!(post.rules()[0].verdict(), &Verdict::Masquerade);
        assert!(chain(&up, "prerouting").is_some());
        assert_eq!(up.sysctls().len(), 1);
        assert_eq!(up.sysctls()[0].key(), "net.ipv4.ip_forward");
        assert_eq!(up.sysctls()[0].value(), "1");
        let out = between(&up, "lan0", "wan0");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict(), &Verdict::Accept);

        let down = eval(&state(false, vec![]), &[]).unwrap();
        assert!(chain(&down, "postrouting").is_none());
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
        assert_eq!(
            comments(&r, "input").len(),
            2,
            "{:?}",
            comments(&r, "input")
        );
    }

    #[test]
    fn a_forward_follows_the_hosts_lease_by_name_or_mac() {
        let nas = lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"));
        let forwards = [("forward", "tcp 8080 nas 80, udp 51820 52:54:00:12:34:56")];
        let r = eval(&state(true, vec![nas.clone()]), &forwards).unwrap();
        assert_eq!(
            dnat_targets(&r),
            vec!["192.168.1.23:80", "192.168.1.23:51820"]
        );
        let to_nas = between(&r, "wan0", "lan0");
        assert_eq!(to_nas.len(), 2);
        assert!(
            to_nas[0]
                .matches()
                .iter()
                .any(|m| m.matcher() == &Matcher::Daddr("192.168.1.23".into()))
        );
        assert!(to_nas[0].matches().iter().any(|m| m.matcher()
            == &Matcher::Dport {
                protocol: Transport::Tcp,
                first: 80,
                last: 80
            }));
        assert_eq!(
            comments(&r, "prerouting"),
            [
                "forward tcp 8080 -> nas (192.168.1.23:80)",
                "forward udp 51820 -> 52:54:00:12:34:56 (192.168.1.23:51820)"
            ]
        );
        // The lease moves: so do the forwards, and nothing else changes.
        let moved = lease("192.168.1.99", "52:54:00:12:34:56", Some("nas"));
        let r2 = eval(&state(true, vec![moved]), &forwards).unwrap();
        assert_eq!(
            dnat_targets(&r2),
            vec!["192.168.1.99:80", "192.168.1.99:51820"]
        );
        assert_eq!(chain(&r, "input"), chain(&r2, "input"));
        assert_eq!(r.sets(), r2.sets());
        // No lease: no forward; WAN down: no forward.
        let r = eval(&state(true, vec![]), &forwards).unwrap();
        assert!(dnat_targets(&r).is_empty());
        assert!(between(&r, "wan0", "lan0").is_empty());
        let r = eval(&state(false, vec![nas]), &forwards).unwrap();
        assert!(dnat_targets(&r).is_empty());
        assert!(between(&r, "wan0", "lan0").is_empty());
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
        assert_eq!(dnat_targets(&r), ["192.168.1.23:22"]);
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"))],
            ),
            &fwd,
        )
        .unwrap();
        assert_eq!(dnat_targets(&r), ["192.168.1.23:80"]);
        // A host name in capitals in the lease, not in the config.
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.24", "52:54:00:12:34:57", Some("NAS-Box"))],
            ),
            &[("forward", "tcp 8080 nas-box 80")],
        )
        .unwrap();
        assert_eq!(dnat_targets(&r), ["192.168.1.24:80"]);
        // A lease on the guest network is not a LAN host.
        let on_guest = lease_on("guest0", "192.168.2.5", "52:54:00:12:34:56", Some("nas"));
        let r = eval(&state(true, vec![on_guest]), &fwd).unwrap();
        assert!(dnat_targets(&r).is_empty());
        // Two leases: the lowest address, whatever the order they come in;
        // the accept rule goes out of the lease's interface.
        let two = vec![
            lease_on("lan1", "192.168.3.7", "02:00:00:00:00:01", Some("nas")),
            lease("192.168.1.200", "02:00:00:00:00:02", Some("nas")),
        ];
        let lans = [("lan", "lan0,lan1"), ("forward", "tcp 8080 nas 80")];
        let r = eval(&state(true, two.clone()), &lans).unwrap();
        assert_eq!(dnat_targets(&r), ["192.168.1.200:80"]);
        assert_eq!(between(&r, "wan0", "lan0").len(), 1);
        let mut reversed = two;
        reversed.reverse();
        assert_eq!(eval(&state(true, reversed), &lans).unwrap(), r);
        let r = eval(
            &state(
                true,
                vec![lease_on(
                    "lan1",
                    "192.168.3.7",
                    "02:00:00:00:00:01",
                    Some("nas"),
                )],
            ),
            &lans,
        )
        .unwrap();
        assert_eq!(between(&r, "wan0", "lan1").len(), 1);
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
            // Guests get ICMP, DHCP and DNS from the router, nothing else.
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
    fn comments_fit_whatever_the_host_name() {
        let long = "h".repeat(200);
        let r = eval(
            &state(
                true,
                vec![lease("192.168.1.23", "52:54:00:12:34:56", Some(&long))],
            ),
            &[("forward", &format!("udp 65535 {long} 65535"))],
        )
        .unwrap();
        let all = comments(&r, "prerouting");
        assert_eq!(all.len(), 1);
        assert!(all[0].len() <= 127, "{} bytes", all[0].len());
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
        ] {
            let err = eval(&st, &pairs).unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        // The same port on the other protocol is another forward.
        let both = [("forward", "tcp 53 nas, udp 53 nas")];
        assert!(eval(&st, &both).is_ok());
    }
}
