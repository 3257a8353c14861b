//! A home router's firewall.
//!
//! LAN, WAN and guest interfaces come from the config. The router itself
//! answers only what it serves its networks; it forwards LAN and guest
//! traffic to the WAN (masqueraded) while the WAN is up; port forwards reach
//! LAN hosts named by their DHCP host name or MAC and follow the host's
//! current lease; a guest network never reaches the LAN; blocked hosts are
//! cut off by name or MAC, through a set that follows their leases.
//!
//! Config keys:
//! - `lan` (required): LAN interface(s), comma-separated.
//! - `wan` (required): the WAN interface.
//! - `guest`: guest interface(s): the internet, DHCP and DNS, nothing else.
//! - `lan_tcp` (default "22,53"), `lan_udp` (default "53,67,123"): ports
//!   the router serves to the LAN.
//! - `forward`: port forwards, a list of "PROTO PORT HOST [HOSTPORT]", e.g.
//!   "tcp 8080 nas 80" or "udp 51820 52:54:00:12:34:56": connections from
//!   the WAN to PORT go to HOST's current lease address, port HOSTPORT
//!   (default PORT). HOST is a DHCP host name or a MAC. A forward whose host
//!   has no lease has no rules.
//! - `block`: host names or MACs whose leased addresses may not forward
//!   anything (set `blocked`).
//!
//! Chains (the runtime prefixes them with the policy's name):
//! - `input` (filter, input, policy drop): loopback; established and related;
//!   invalid dropped; ICMPv6 (neighbour discovery); from the LAN ICMP and
//!   the `lan_tcp`/`lan_udp` ports; from guests ICMP, DHCP and DNS.
//! - `forward` (filter, forward, policy drop): established and related;
//!   invalid dropped; blocked hosts dropped; between LAN interfaces; guest
//!   and LAN never meet; while the WAN is up: LAN and guest to the WAN, and
//!   each live port forward.
//! - `prerouting` (nat) with the forwards' DNAT and `postrouting` (nat) with
//!   the masquerade, both only while the WAN is up, as is
//!   `net.ipv4.ip_forward = 1`.
//!
//! "The WAN is up": its interface exists and is up (administratively and
//! with carrier). When it goes down its rules go.

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, CtState, Event, Hook, L4Protocol, Lease, NamedSet, Policy, Rule,
    Ruleset, Transport, WorldState,
};

const KNOWN_KEYS: &[&str] = &[
    "lan", "wan", "guest", "lan_tcp", "lan_udp", "forward", "block",
];

struct HomeRouter;

/// One configured port forward.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Forward {
    protocol: Transport,
    port: u16,
    host: String,
    host_port: u16,
}

impl Forward {
    fn parse(text: &str) -> Result<Forward, String> {
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
        Ok(Forward {
            protocol,
            port: port_of(port)?,
            host: host.to_string(),
            host_port: port_of(host_port)?,
        })
    }

    fn proto_name(&self) -> &'static str {
        match self.protocol {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

struct Settings<'a> {
    lan: Vec<&'a str>,
    wan: &'a str,
    guest: Vec<&'a str>,
    lan_tcp: Vec<u16>,
    lan_udp: Vec<u16>,
    forwards: Vec<Forward>,
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

fn settings(config: &Config) -> Result<Settings<'_>, String> {
    config.reject_unknown(KNOWN_KEYS)?;
    let lan = config.list("lan");
    if lan.is_empty() {
        return Err("config key `lan` is required: the LAN interface(s), e.g. \"lan0\"".into());
    }
    let wan = match config.list("wan").as_slice() {
        [one] => *one,
        [] => return Err("config key `wan` is required: the WAN interface, e.g. \"wan0\"".into()),
        _ => return Err("config key `wan`: give one WAN interface".into()),
    };
    let guest = config.list("guest");
    if let Some(both) = lan.iter().find(|l| **l == wan || guest.contains(l)) {
        return Err(format!(
            "interface {both:?} is given more than one role (lan, wan, guest)"
        ));
    }
    if guest.contains(&wan) {
        return Err(format!("interface {wan:?} is both `wan` and `guest`"));
    }
    let forwards = config
        .list("forward")
        .into_iter()
        .map(Forward::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Settings {
        lan,
        wan,
        guest,
        lan_tcp: ports(config, "lan_tcp", "22,53")?,
        lan_udp: ports(config, "lan_udp", "53,67,123")?,
        forwards,
        block: config.list("block"),
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

/// The IPv4 lease of `host` (host name or MAC) on one of `ifaces`; the
/// lowest address if the host holds several.
fn lease_of<'s>(state: &'s WorldState, host: &str, ifaces: &[&str]) -> Option<&'s Lease> {
    state
        .leases
        .iter()
        .filter(|l| ifaces.contains(&l.iface.as_str()))
        .filter(|l| l.ip.parse::<std::net::Ipv4Addr>().is_ok())
        .find(|l| {
            if is_mac(host) {
                l.mac.eq_ignore_ascii_case(host)
            } else {
                l.hostname.as_deref() == Some(host)
            }
        })
}

/// Adds a counter to every rule in the `counters` build (the second
/// version of this policy the hot-swap test swaps in).
fn finish(rule: Rule) -> Rule {
    if cfg!(feature = "counters") {
        rule.counter()
    } else {
        rule
    }
}

impl Policy for HomeRouter {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        let s = settings(config)?;
        let wan_up = state.interface(s.wan).is_some_and(|i| i.up);
        let established = || Rule::new().ct_state([CtState::Established, CtState::Related]);
        let invalid = || Rule::new().ct_state([CtState::Invalid]);

        // The router itself: only what it serves.
        let mut input = vec![
            Rule::new().iifname("lo").accept(),
            established().accept(),
            invalid().drop(),
            Rule::new()
                .l4proto(L4Protocol::Icmpv6)
                .accept()
                .comment("neighbour discovery and the rest of ICMPv6"),
        ];
        for lan in &s.lan {
            input.push(Rule::new().iifname(*lan).l4proto(L4Protocol::Icmp).accept());
            if !s.lan_tcp.is_empty() {
                input.push(
                    Rule::new()
                        .iifname(*lan)
                        .dport_in(Transport::Tcp, "lan-tcp")
                        .accept()
                        .comment("what the router serves the LAN"),
                );
            }
            if !s.lan_udp.is_empty() {
                input.push(
                    Rule::new()
                        .iifname(*lan)
                        .dport_in(Transport::Udp, "lan-udp")
                        .accept()
                        .comment("what the router serves the LAN"),
                );
            }
        }
        for guest in &s.guest {
            input.push(
                Rule::new()
                    .iifname(*guest)
                    .l4proto(L4Protocol::Icmp)
                    .accept(),
            );
            input.push(
                Rule::new()
                    .iifname(*guest)
                    .udp_dport(67)
                    .accept()
                    .comment("guest DHCP"),
            );
            input.push(
                Rule::new()
                    .iifname(*guest)
                    .udp_dport(53)
                    .accept()
                    .comment("guest DNS"),
            );
            input.push(
                Rule::new()
                    .iifname(*guest)
                    .tcp_dport(53)
                    .accept()
                    .comment("guest DNS"),
            );
        }

        // Through the router.
        let mut forward = vec![established().accept(), invalid().drop()];
        let mut blocked: Vec<String> = s
            .block
            .iter()
            .filter_map(|h| lease_of(state, h, &s.lan))
            .map(|l| l.ip.clone())
            .collect();
        blocked.sort_by_key(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
        blocked.dedup();
        if !s.block.is_empty() {
            forward.push(
                Rule::new()
                    .saddr_in("blocked")
                    .drop()
                    .comment("blocked hosts"),
            );
            forward.push(
                Rule::new()
                    .daddr_in("blocked")
                    .drop()
                    .comment("blocked hosts"),
            );
        }
        for from in &s.lan {
            for to in &s.lan {
                if from != to {
                    forward.push(Rule::new().iifname(*from).oifname(*to).accept());
                }
            }
        }
        for guest in &s.guest {
            for lan in &s.lan {
                forward.push(
                    Rule::new()
                        .iifname(*guest)
                        .oifname(*lan)
                        .drop()
                        .comment("guests never reach the LAN"),
                );
                forward.push(
                    Rule::new()
                        .iifname(*lan)
                        .oifname(*guest)
                        .drop()
                        .comment("the LAN never reaches guests"),
                );
            }
        }

        let mut ruleset = Ruleset::new();
        let mut prerouting = Vec::new();
        let mut postrouting = Vec::new();
        if wan_up {
            for inside in s.lan.iter().chain(&s.guest) {
                forward.push(
                    Rule::new()
                        .iifname(*inside)
                        .oifname(s.wan)
                        .accept()
                        .comment("out to the WAN"),
                );
            }
            for f in &s.forwards {
                let Some(lease) = lease_of(state, &f.host, &s.lan) else {
                    continue;
                };
                let text = format!(
                    "forward {} {} -> {} ({}:{})",
                    f.proto_name(),
                    f.port,
                    f.host,
                    lease.ip,
                    f.host_port
                );
                prerouting.push(
                    Rule::new()
                        .iifname(s.wan)
                        .dport_range(f.protocol, f.port, f.port)
                        .dnat(&format!("{}:{}", lease.ip, f.host_port))
                        .comment(text.clone()),
                );
                forward.push(
                    Rule::new()
                        .iifname(s.wan)
                        .oifname(lease.iface.clone())
                        .daddr(lease.ip.clone())
                        .dport_range(f.protocol, f.host_port, f.host_port)
                        .accept()
                        .comment(text),
                );
            }
            postrouting.push(Rule::new().oifname(s.wan).masquerade());
            ruleset = ruleset.sysctl("net.ipv4.ip_forward", "1");
        }

        let chain = |c: Chain, rules: Vec<Rule>| c.rules(rules.into_iter().map(finish));
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
            ruleset = ruleset.set(NamedSet::ipv4("blocked", blocked));
        }
        Ok(ruleset)
    }
}

wasmwall_sdk::export_policy!(HomeRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwall_sdk::{Action, Matcher, NetworkInterface, SetElements};

    fn iface(name: &str, up: bool, address: &str) -> NetworkInterface {
        NetworkInterface {
            name: name.into(),
            index: 2,
            up,
            mac: None,
            addresses: vec![address.into()],
        }
    }

    fn lease(ip: &str, mac: &str, host: Option<&str>) -> Lease {
        Lease {
            mac: mac.into(),
            ip: ip.into(),
            hostname: host.map(str::to_string),
            iface: "lan0".into(),
            expires: None,
        }
    }

    fn state(wan_up: bool, leases: Vec<Lease>) -> WorldState {
        WorldState {
            interfaces: vec![
                iface("lan0", true, "192.168.1.1/24"),
                iface("wan0", wan_up, "203.0.113.1/24"),
            ],
            leases,
        }
    }

    fn eval(state: &WorldState, pairs: &[(&str, &str)]) -> Result<Ruleset, String> {
        let mut all = vec![("lan", "lan0"), ("wan", "wan0")];
        all.extend_from_slice(pairs);
        HomeRouter::evaluate(state, &Event::Startup, &Config::from_pairs(all))
    }

    fn chain<'a>(r: &'a Ruleset, name: &str) -> Option<&'a Chain> {
        r.chains.iter().find(|c| c.name == name)
    }

    fn dnat_targets(r: &Ruleset) -> Vec<String> {
        chain(r, "prerouting")
            .map(|c| {
                c.rules
                    .iter()
                    .filter_map(|rule| match &rule.action {
                        Action::Dnat(t) => Some(format!("{}:{}", t.address, t.port.unwrap_or(0))),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn wan_up_masquerades_and_wan_down_removes_its_rules() {
        let up = eval(&state(true, vec![]), &[]).unwrap();
        let post = chain(&up, "postrouting").expect("postrouting while the WAN is up");
        assert_eq!(post.rules.len(), 1);
        assert_eq!(post.rules[0].action, Action::Masquerade);
        assert_eq!(up.sysctls.len(), 1);
        assert_eq!(up.sysctls[0].key, "net.ipv4.ip_forward");
        let forward = chain(&up, "forward").unwrap();
        assert!(
            forward
                .rules
                .iter()
                .any(|r| r.comment.as_deref() == Some("out to the WAN"))
        );

        let down = eval(&state(false, vec![]), &[]).unwrap();
        assert!(chain(&down, "postrouting").is_none());
        assert!(chain(&down, "prerouting").is_none());
        assert!(down.sysctls.is_empty());
        let forward = chain(&down, "forward").unwrap();
        assert!(
            !forward
                .rules
                .iter()
                .any(|r| r.comment.as_deref() == Some("out to the WAN"))
        );
        // The router's own input rules do not depend on the WAN.
        assert_eq!(chain(&up, "input"), chain(&down, "input"));
        // A WAN interface that does not exist is a WAN that is down.
        let mut gone = state(true, vec![]);
        gone.interfaces.retain(|i| i.name != "wan0");
        assert_eq!(eval(&gone, &[]).unwrap(), down);
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
        // The lease moves: so do the forwards.
        let moved = lease("192.168.1.99", "52:54:00:12:34:56", Some("nas"));
        let r = eval(&state(true, vec![moved]), &forwards).unwrap();
        assert_eq!(
            dnat_targets(&r),
            vec!["192.168.1.99:80", "192.168.1.99:51820"]
        );
        // No lease: no forward; WAN down: no forward.
        let r = eval(&state(true, vec![]), &forwards).unwrap();
        assert!(dnat_targets(&r).is_empty());
        let r = eval(&state(false, vec![nas]), &forwards).unwrap();
        assert!(dnat_targets(&r).is_empty());
    }

    #[test]
    fn blocked_hosts_are_a_set_that_follows_their_leases() {
        let leases = vec![
            lease("192.168.1.30", "02:00:00:00:00:30", Some("tv")),
            lease("192.168.1.4", "02:00:00:00:00:04", Some("tablet")),
            lease("192.168.1.5", "02:00:00:00:00:05", Some("laptop")),
        ];
        let r = eval(
            &state(true, leases),
            &[("block", "tv, 02:00:00:00:00:04, nobody")],
        )
        .unwrap();
        let set = r.sets.iter().find(|s| s.name == "blocked").unwrap();
        assert_eq!(
            set.elements,
            SetElements::Ipv4(vec!["192.168.1.4".into(), "192.168.1.30".into()])
        );
        let forward = chain(&r, "forward").unwrap();
        assert!(forward.rules.iter().any(|rule| {
            rule.matches
                .iter()
                .any(|m| m.matcher == Matcher::SaddrIn("blocked".into()))
        }));
    }

    #[test]
    fn guests_are_isolated_from_the_lan() {
        let mut st = state(true, vec![]);
        st.interfaces.push(iface("guest0", true, "192.168.2.1/24"));
        let r = eval(&st, &[("guest", "guest0")]).unwrap();
        let forward = chain(&r, "forward").unwrap();
        let drops: Vec<_> = forward
            .rules
            .iter()
            .filter(|r| r.action == Action::Drop)
            .filter_map(|r| r.comment.as_deref())
            .collect();
        assert!(drops.contains(&"guests never reach the LAN"));
        assert!(drops.contains(&"the LAN never reaches guests"));
        // The isolation comes before the guest's way out to the WAN.
        let pos = |c: &str| {
            forward
                .rules
                .iter()
                .position(|r| r.comment.as_deref() == Some(c))
        };
        assert!(pos("guests never reach the LAN") < pos("out to the WAN"));
    }

    #[test]
    fn the_same_state_gives_the_same_rules() {
        let leases = vec![lease("192.168.1.23", "52:54:00:12:34:56", Some("nas"))];
        let a = eval(
            &state(true, leases.clone()),
            &[("forward", "tcp 8080 nas 80")],
        );
        let b = eval(&state(true, leases), &[("forward", "tcp 8080 nas 80")]);
        assert_eq!(a, b);
    }

    #[test]
    fn config_errors_name_the_key() {
        let st = state(true, vec![]);
        for (pairs, needle) in [
            (vec![("lan", "")], "`lan` is required"),
            (vec![("wan", "")], "`wan` is required"),
            (vec![("wan", "a,b")], "one WAN interface"),
            (vec![("wan", "lan0")], "more than one role"),
            (vec![("forward", "tcp 8080")], "wrong number of words"),
            (vec![("forward", "sctp 1 nas")], "tcp or udp"),
            (vec![("forward", "tcp 0 nas")], "not a port"),
            (vec![("forward", "tcp 80 nas 70000")], "not a port"),
            (vec![("lan_tcp", "22,x")], "`lan_tcp`"),
            (vec![("colour", "blue")], "unknown config key `colour`"),
        ] {
            let mut all = vec![("lan", "lan0"), ("wan", "wan0")];
            all.extend(pairs.iter().copied());
            let err =
                HomeRouter::evaluate(&st, &Event::Startup, &Config::from_pairs(all)).unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
