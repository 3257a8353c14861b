//! The 0.1.0 contract at the sandbox's edge: what a component built
//! against `wasmwall:policy@0.1.0` is given (the 0.2 world state and
//! event, less what 0.1 cannot say: DHCPv6 leases, neighbours, features) and its answer in 0.2 terms, which
//! says exactly what it said, so it gives exactly the rules it gave.

use crate::bindings::v01::wit as old;
use crate::bindings::wit as new;

/// The world state as 0.1 knew it: interfaces and leases.
pub(crate) fn state(s: &new::WorldState) -> old::WorldState {
    old::WorldState {
        interfaces: s
            .interfaces
            .iter()
            .map(|i| old::NetworkInterface {
                name: i.name.clone(),
                index: i.index,
                up: i.up,
                mac: i.mac.clone(),
                addresses: i.addresses.clone(),
            })
            .collect(),
        leases: s.leases.iter().map(lease).collect(),
    }
}

fn lease(l: &new::Lease) -> old::Lease {
    old::Lease {
        mac: l.mac.clone(),
        ip: l.ip.clone(),
        hostname: l.hostname.clone(),
        iface: l.iface.clone(),
        expires: l.expires,
    }
}

fn address_change(a: &new::AddressChange) -> old::AddressChange {
    old::AddressChange {
        iface: a.iface.clone(),
        address: a.address.clone(),
    }
}

/// The event in 0.1 terms. One 0.1 has no word for (a DHCPv6 lease, a
/// neighbour) changed nothing a 0.1 policy sees; it arrives as `startup`,
/// as a hot swap of another policy does, and the policy answers what it
/// answered.
pub(crate) fn event(e: &new::Event) -> old::Event {
    match e {
        new::Event::Startup => old::Event::Startup,
        new::Event::InterfaceUp(i) => old::Event::InterfaceUp(i.clone()),
        new::Event::InterfaceDown(i) => old::Event::InterfaceDown(i.clone()),
        new::Event::AddressAdded(a) => old::Event::AddressAdded(address_change(a)),
        new::Event::AddressRemoved(a) => old::Event::AddressRemoved(address_change(a)),
        new::Event::LeaseAdded(l) => old::Event::LeaseAdded(lease(l)),
        new::Event::LeaseRenewed(l) => old::Event::LeaseRenewed(lease(l)),
        new::Event::LeaseExpired(l) => old::Event::LeaseExpired(lease(l)),
        new::Event::ConfigChanged => old::Event::ConfigChanged,
        new::Event::Dhcpv6LeaseAdded(_)
        | new::Event::Dhcpv6LeaseRenewed(_)
        | new::Event::Dhcpv6LeaseExpired(_)
        | new::Event::NeighbourAdded(_)
        | new::Event::NeighbourChanged(_)
        | new::Event::NeighbourRemoved(_) => old::Event::Startup,
    }
}

/// A 0.1 answer in 0.2 terms.
pub(crate) fn ruleset(r: old::Ruleset) -> new::Ruleset {
    new::Ruleset {
        chains: r.chains.into_iter().map(chain).collect(),
        sets: r.sets.into_iter().map(set).collect(),
        maps: Vec::new(),
        counters: Vec::new(),
        limits: Vec::new(),
        ct_helpers: Vec::new(),
        flowtables: Vec::new(),
        sysctls: r
            .sysctls
            .into_iter()
            .map(|s| new::Sysctl {
                key: s.key,
                value: s.value,
            })
            .collect(),
    }
}

fn chain(c: old::Chain) -> new::Chain {
    new::Chain {
        name: c.name,
        base: c.base.map(|b| new::BaseChain {
            hook: match b.hook {
                old::Hook::Prerouting => new::Hook::Prerouting,
                old::Hook::Input => new::Hook::Input,
                old::Hook::Forward => new::Hook::Forward,
                old::Hook::Output => new::Hook::Output,
                old::Hook::Postrouting => new::Hook::Postrouting,
            },
            type_: match b.type_ {
                old::ChainType::Filter => new::ChainType::Filter,
                old::ChainType::Nat => new::ChainType::Nat,
            },
            priority: new::Priority::Number(b.priority),
            policy: match b.policy {
                old::ChainPolicy::Accept => new::ChainPolicy::Accept,
                old::ChainPolicy::Drop => new::ChainPolicy::Drop,
            },
        }),
        rules: c.rules.into_iter().map(rule).collect(),
    }
}

fn rule(r: old::Rule) -> new::Rule {
    let mut statements = Vec::new();
    if r.counter {
        statements.push(new::Statement::Counter);
    }
    if let Some(prefix) = r.log_prefix {
        statements.push(new::Statement::Log(new::Log {
            prefix: Some(prefix),
            level: None,
            limit: None,
        }));
    }
    new::Rule {
        matches: r
            .matches
            .into_iter()
            .map(|m| new::MatchExpr {
                matcher: matcher(m.matcher),
                negate: m.negate,
            })
            .collect(),
        statements,
        action: action(r.action),
        comment: r.comment,
    }
}

fn transport(t: old::Transport) -> new::Transport {
    match t {
        old::Transport::Tcp => new::Transport::Tcp,
        old::Transport::Udp => new::Transport::Udp,
    }
}

fn ports(p: old::Ports) -> new::Ports {
    new::Ports {
        protocol: transport(p.protocol),
        first: p.first,
        last: p.last,
    }
}

fn port_set(p: old::PortSetRef) -> new::PortSetRef {
    new::PortSetRef {
        protocol: transport(p.protocol),
        set: p.set,
    }
}

fn matcher(m: old::Matcher) -> new::Matcher {
    match m {
        old::Matcher::Iifname(n) => new::Matcher::Iifname(n),
        old::Matcher::Oifname(n) => new::Matcher::Oifname(n),
        old::Matcher::Saddr(a) => new::Matcher::Saddr(a),
        old::Matcher::Daddr(a) => new::Matcher::Daddr(a),
        old::Matcher::L4proto(p) => new::Matcher::L4proto(match p {
            old::L4Protocol::Tcp => new::L4Protocol::Tcp,
            old::L4Protocol::Udp => new::L4Protocol::Udp,
            old::L4Protocol::Icmp => new::L4Protocol::Icmp,
            old::L4Protocol::Icmpv6 => new::L4Protocol::Icmpv6,
        }),
        old::Matcher::Sport(p) => new::Matcher::Sport(ports(p)),
        old::Matcher::Dport(p) => new::Matcher::Dport(ports(p)),
        old::Matcher::CtState(states) => new::Matcher::CtState(
            states
                .into_iter()
                .map(|s| match s {
                    old::CtState::New => new::CtState::New,
                    old::CtState::Established => new::CtState::Established,
                    old::CtState::Related => new::CtState::Related,
                    old::CtState::Invalid => new::CtState::Invalid,
                    old::CtState::Untracked => new::CtState::Untracked,
                })
                .collect(),
        ),
        old::Matcher::SaddrIn(s) => new::Matcher::SaddrIn(s),
        old::Matcher::DaddrIn(s) => new::Matcher::DaddrIn(s),
        old::Matcher::SportIn(p) => new::Matcher::SportIn(port_set(p)),
        old::Matcher::DportIn(p) => new::Matcher::DportIn(port_set(p)),
    }
}

fn nat_target(t: old::NatTarget) -> new::NatTarget {
    new::NatTarget {
        address: t.address,
        last_address: None,
        ports: t.port.map(|p| new::PortRange { first: p, last: p }),
        flags: new::NatFlags::empty(),
    }
}

fn action(a: old::Action) -> new::Action {
    match a {
        old::Action::Accept => new::Action::Accept,
        old::Action::Drop => new::Action::Drop,
        old::Action::Reject => new::Action::Reject(None),
        old::Action::Jump(c) => new::Action::Jump(c),
        old::Action::Goto(c) => new::Action::Goto(c),
        old::Action::Return => new::Action::Return,
        old::Action::Dnat(t) => new::Action::Dnat(nat_target(t)),
        old::Action::Snat(t) => new::Action::Snat(nat_target(t)),
        old::Action::Masquerade => new::Action::Masquerade(None),
        old::Action::Continue => new::Action::Continue,
    }
}

/// A 0.1 set: a set of one key type, no flags.
fn set(s: old::NamedSet) -> new::NamedSet {
    let (key, elements): (new::KeyType, Vec<new::Value>) = match s.elements {
        old::SetElements::Ipv4(v) => (
            new::KeyType::Ipv4Addr,
            v.into_iter().map(new::Value::Address).collect(),
        ),
        old::SetElements::Ipv6(v) => (
            new::KeyType::Ipv6Addr,
            v.into_iter().map(new::Value::Address).collect(),
        ),
        old::SetElements::Ports(v) => (
            new::KeyType::InetService,
            v.into_iter()
                .map(|p| new::Value::Number(p.into()))
                .collect(),
        ),
    };
    new::NamedSet {
        name: s.name,
        key: vec![key],
        intervals: false,
        timeout: None,
        dynamic: false,
        size: None,
        elements: elements.into_iter().map(|e| vec![e]).collect(),
    }
}
