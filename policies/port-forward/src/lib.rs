//! Port forward: connections to `listen_port` arriving on the LAN are sent to
//! `target`. The default configuration is the hand-made setup this project
//! grew from: LAN clients reach a server that listens on 127.0.0.1:4000 only
//! by connecting to the machine's port 80, and everything else coming in is
//! dropped.
//!
//! Config keys (all optional):
//! - `listen_port`: port clients connect to (default 80)
//! - `target`: where connections go, "addr:port" (default "127.0.0.1:4000")
//! - `protocol`: "tcp" or "udp" (default "tcp")
//! - `lan_interface`: comma-separated interface names the forward applies
//!   to (default: every interface that is up, except loopback)
//! - `allowed_sources`: comma-separated addresses or prefixes allowed to use
//!   the forward (default: anyone but this machine's own LAN addresses)

use std::net::{IpAddr, SocketAddr};

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, Event, Hook, Policy, Rule, RuleBuilder, Ruleset, Transport,
    WorldState,
};

const KNOWN_KEYS: &[&str] = &[
    "listen_port",
    "target",
    "protocol",
    "lan_interface",
    "allowed_sources",
];

struct PortForward;

struct Settings<'a> {
    listen_port: u16,
    target: SocketAddr,
    protocol: Transport,
    lan_interfaces: Vec<&'a str>,
    allowed_sources: Vec<&'a str>,
}

fn settings<'a>(state: &'a WorldState, config: &'a Config) -> Result<Settings<'a>, String> {
    config.reject_unknown(KNOWN_KEYS)?;
    let listen_port = config.parse_or("listen_port", 80u16)?;
    if listen_port == 0 {
        return Err("config key `listen_port`: port 0 is not a valid port".into());
    }
    let target: SocketAddr = config.parse_or("target", "127.0.0.1:4000".parse().unwrap())?;
    if target.port() == 0 {
        return Err("config key `target`: port 0 is not a valid port".into());
    }
    let protocol = match config.get_or("protocol", "tcp") {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => {
            return Err(format!(
                "config key `protocol`: expected \"tcp\" or \"udp\", got {other:?}"
            ));
        }
    };
    let mut lan_interfaces = config.list("lan_interface");
    if lan_interfaces.is_empty() {
        lan_interfaces = state
            .interfaces
            .iter()
            .filter(|i| i.up && i.name != "lo")
            .map(|i| i.name.as_str())
            .collect();
    }
    Ok(Settings {
        listen_port,
        target,
        protocol,
        lan_interfaces,
        allowed_sources: config.list("allowed_sources"),
    })
}

fn with_port(rule: RuleBuilder, protocol: Transport, port: u16, source: bool) -> RuleBuilder {
    if source {
        rule.sport_range(protocol, port, port)
    } else {
        rule.dport_range(protocol, port, port)
    }
}

impl Policy for PortForward {
    fn evaluate(state: &WorldState, _event: &Event, config: &Config) -> Result<Ruleset, String> {
        let s = settings(state, config)?;
        let target_ip = s.target.ip();
        let target_port = s.target.port();
        let target_is_local = target_ip.is_loopback();
        let target_text = s.target.to_string();

        // Whitelist by default: nothing comes in or through unless allowed.
        let mut input = Chain::filter("input", Hook::Input, 0).policy(ChainPolicy::Drop);
        let mut forward = Chain::filter("forward", Hook::Forward, 0).policy(ChainPolicy::Drop);
        let mut prerouting = Chain::nat("prerouting", Hook::Prerouting, -100);
        let mut ruleset = Ruleset::new();
        // Connections to the translated destination, wherever they are let in.
        let to_target = with_port(
            Rule::new().daddr(target_ip.to_string()),
            s.protocol,
            target_port,
            false,
        )
        .counter()
        .accept();

        if target_is_local {
            // The forwarded connection ends on this machine: let it in, and
            // let the local server's own loopback traffic through.
            input = input.rule(to_target.clone()).rule(
                with_port(
                    Rule::new().saddr(target_ip.to_string()),
                    s.protocol,
                    target_port,
                    true,
                )
                .accept(),
            );
        } else {
            // The connection is routed on to another host.
            forward = forward
                .rule(Rule::new().ct_state_established_related().accept())
                .rule(to_target.clone());
            let key = if target_ip.is_ipv4() {
                "net.ipv4.ip_forward"
            } else {
                "net.ipv6.conf.all.forwarding"
            };
            ruleset = ruleset.sysctl(key, "1");
        }

        for iface in &s.lan_interfaces {
            let base = Rule::new().iifname(*iface);
            let mut rules = Vec::new();
            if s.allowed_sources.is_empty() {
                // Anyone but this machine itself.
                let mut rule = base.clone();
                if let Some(i) = state.interface(iface) {
                    for ip in i.ips().filter(|ip| same_family(ip, &target_ip)) {
                        rule = rule.not_saddr(ip);
                    }
                }
                rules.push(rule);
            } else {
                for src in &s.allowed_sources {
                    rules.push(base.clone().saddr(*src));
                }
            }
            for rule in rules {
                prerouting = prerouting.rule(
                    with_port(rule, s.protocol, s.listen_port, false)
                        .counter()
                        .comment(format!("port {} to {}", s.listen_port, target_text))
                        .dnat(&target_text),
                );
            }
            // Routing outside traffic to 127.0.0.0/8 must be allowed on the
            // interface it arrives on; only an existing interface can be set.
            if target_is_local && target_ip.is_ipv4() && state.interface(iface).is_some() {
                ruleset = ruleset.sysctl(
                    format!("net.ipv4.conf.{}.route_localnet", iface.replace('.', "/")),
                    "1",
                );
            }
        }

        Ok(ruleset.chain(input).chain(forward).chain(prerouting))
    }
}

fn same_family(ip: &str, other: &IpAddr) -> bool {
    ip.parse::<IpAddr>()
        .map(|ip| ip.is_ipv4() == other.is_ipv4())
        .unwrap_or(false)
}

wasmwall_sdk::export_policy!(PortForward);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwall_sdk::{NetworkInterface, Verdict};

    fn state() -> WorldState {
        let mut lan = NetworkInterface::new("lan0");
        lan.index = 2;
        lan.up = true;
        lan.addresses = vec!["192.168.0.9/24".into()];
        WorldState::new(vec![lan], vec![])
    }

    fn eval(pairs: &[(&str, &str)]) -> Result<Ruleset, String> {
        PortForward::evaluate(
            &state(),
            &Event::Startup,
            &Config::from_pairs(pairs.iter().copied()),
        )
    }

    fn chain<'a>(rs: &'a Ruleset, name: &str) -> &'a Chain {
        rs.chains().iter().find(|c| c.name() == name).unwrap()
    }

    #[test]
    fn default_config_is_the_seed() {
        let rs = eval(&[]).unwrap();
        let pre = chain(&rs, "prerouting");
        assert_eq!(pre.rules().len(), 1);
        let Verdict::Dnat(target) = pre.rules()[0].verdict() else {
            panic!("not a DNAT: {:?}", pre.rules()[0]);
        };
        assert_eq!((target.address(), target.port()), ("127.0.0.1", Some(4000)));
        assert_eq!(rs.sysctls()[0].key(), "net.ipv4.conf.lan0.route_localnet");
        let input = chain(&rs, "input");
        assert_eq!(input.base().unwrap().policy(), ChainPolicy::Drop);
    }

    #[test]
    fn one_dnat_rule_per_allowed_source() {
        let rs = eval(&[("allowed_sources", "192.168.0.2, 192.168.0.3")]).unwrap();
        assert_eq!(chain(&rs, "prerouting").rules().len(), 2);
    }

    #[test]
    fn remote_target_opens_forwarding_instead() {
        let rs = eval(&[("target", "192.168.0.20:8080")]).unwrap();
        assert_eq!(chain(&rs, "forward").rules().len(), 2);
        assert_eq!(rs.sysctls()[0].key(), "net.ipv4.ip_forward");
    }

    #[test]
    fn bad_config_is_an_error_naming_the_key() {
        assert!(
            eval(&[("listen_port", "http")])
                .unwrap_err()
                .contains("listen_port")
        );
        assert!(
            eval(&[("protocol", "sctp")])
                .unwrap_err()
                .contains("protocol")
        );
        assert!(eval(&[("colour", "red")]).unwrap_err().contains("colour"));
    }
}
