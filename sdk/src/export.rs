//! The export boundary: the generated `Guest` implementation behind
//! [`export_policy!`](crate::export_policy), and the conversions between the
//! SDK's types and the ones wit-bindgen generates. This is the only module
//! that knows the generated types, so a change of the contract is absorbed
//! here. Every conversion matches exhaustively: a case added to the SDK
//! cannot be left out of the answer, and a case the WIT adds to what a
//! policy is given (an event) is a compile error here, not a silent gap.

use std::marker::PhantomData;

use crate::wit::wasmwall::policy::log as wlog;
use crate::wit::wasmwall::policy::types as w;
use crate::{
    AddressChange, BaseChain, Chain, ChainPolicy, ChainType, Config, CtState, Event, Hook,
    L4Protocol, Lease, Level, Match, Matcher, NamedSet, NatTarget, NetworkInterface, Policy, Rule,
    Ruleset, SetElements, Sysctl, Transport, Verdict, WorldState,
};

/// The component's export for the policy `P`.
#[doc(hidden)]
pub struct __Export<P>(PhantomData<P>);

impl<P: Policy> crate::wit::Guest for __Export<P> {
    fn evaluate(
        state: w::WorldState,
        event: w::Event,
        config: Vec<(String, String)>,
    ) -> Result<w::Ruleset, String> {
        let config = Config::from_pairs(config);
        P::evaluate(&state.into_sdk(), &event.into_sdk(), &config).map(IntoWit::into_wit)
    }
}

/// An SDK value as the generated bindings take it.
pub(crate) trait IntoWit {
    type Wit;
    fn into_wit(self) -> Self::Wit;
}

/// A value of the generated bindings as the SDK shows it.
trait IntoSdk {
    type Sdk;
    fn into_sdk(self) -> Self::Sdk;
}

impl<T: IntoWit> IntoWit for Vec<T> {
    type Wit = Vec<T::Wit>;
    fn into_wit(self) -> Self::Wit {
        self.into_iter().map(IntoWit::into_wit).collect()
    }
}

impl<T: IntoSdk> IntoSdk for Vec<T> {
    type Sdk = Vec<T::Sdk>;
    fn into_sdk(self) -> Self::Sdk {
        self.into_iter().map(IntoSdk::into_sdk).collect()
    }
}

// --- In: the state and the event ---------------------------------------------

impl IntoSdk for w::WorldState {
    type Sdk = WorldState;
    fn into_sdk(self) -> WorldState {
        // The kernel's features reach the SDK with its 0.2 builders.
        let w::WorldState {
            interfaces,
            leases,
            features: _,
        } = self;
        WorldState::new(interfaces.into_sdk(), leases.into_sdk())
    }
}

impl IntoSdk for w::NetworkInterface {
    type Sdk = NetworkInterface;
    fn into_sdk(self) -> NetworkInterface {
        let w::NetworkInterface {
            name,
            index,
            up,
            mac,
            addresses,
        } = self;
        let mut i = NetworkInterface::new(name);
        i.index = index;
        i.up = up;
        i.mac = mac;
        i.addresses = addresses;
        i
    }
}

impl IntoSdk for w::Lease {
    type Sdk = Lease;
    fn into_sdk(self) -> Lease {
        let w::Lease {
            mac,
            ip,
            hostname,
            iface,
            expires,
        } = self;
        let mut l = Lease::new(mac, ip, iface);
        l.hostname = hostname;
        l.expires = expires;
        l
    }
}

impl IntoSdk for w::AddressChange {
    type Sdk = AddressChange;
    fn into_sdk(self) -> AddressChange {
        let w::AddressChange { iface, address } = self;
        AddressChange::new(iface, address)
    }
}

impl IntoSdk for w::Event {
    type Sdk = Event;
    fn into_sdk(self) -> Event {
        match self {
            w::Event::Startup => Event::Startup,
            w::Event::InterfaceUp(name) => Event::InterfaceUp(name),
            w::Event::InterfaceDown(name) => Event::InterfaceDown(name),
            w::Event::AddressAdded(c) => Event::AddressAdded(c.into_sdk()),
            w::Event::AddressRemoved(c) => Event::AddressRemoved(c.into_sdk()),
            w::Event::LeaseAdded(l) => Event::LeaseAdded(l.into_sdk()),
            w::Event::LeaseRenewed(l) => Event::LeaseRenewed(l.into_sdk()),
            w::Event::LeaseExpired(l) => Event::LeaseExpired(l.into_sdk()),
            w::Event::ConfigChanged => Event::ConfigChanged,
        }
    }
}

// --- Out: the ruleset and the log -------------------------------------------

/// `IntoWit` for an SDK enum whose cases are those of a generated one, by
/// name.
macro_rules! into_wit_by_name {
    ($sdk:ident => $wit:ty { $($case:ident),+ $(,)? }) => {
        impl IntoWit for $sdk {
            type Wit = $wit;
            fn into_wit(self) -> $wit {
                match self {
                    $($sdk::$case => <$wit>::$case,)+
                }
            }
        }
    };
}

into_wit_by_name!(Hook => w::Hook { Prerouting, Input, Forward, Output, Postrouting });
into_wit_by_name!(ChainType => w::ChainType { Filter, Nat });
into_wit_by_name!(ChainPolicy => w::ChainPolicy { Accept, Drop });
into_wit_by_name!(Transport => w::Transport { Tcp, Udp });
into_wit_by_name!(L4Protocol => w::L4Protocol { Tcp, Udp, Icmp, Icmpv6 });
into_wit_by_name!(CtState => w::CtState { New, Established, Related, Invalid, Untracked });
into_wit_by_name!(Level => wlog::Level { Trace, Debug, Info, Warn, Error });

impl IntoWit for Ruleset {
    type Wit = w::Ruleset;
    fn into_wit(self) -> w::Ruleset {
        w::Ruleset {
            chains: self.chains.into_wit(),
            sets: self.sets.into_wit(),
            maps: Vec::new(),
            counters: Vec::new(),
            limits: Vec::new(),
            ct_helpers: Vec::new(),
            flowtables: Vec::new(),
            sysctls: self.sysctls.into_wit(),
        }
    }
}

impl IntoWit for Chain {
    type Wit = w::Chain;
    fn into_wit(self) -> w::Chain {
        w::Chain {
            name: self.name,
            base: self.base.map(IntoWit::into_wit),
            rules: self.rules.into_wit(),
        }
    }
}

impl IntoWit for BaseChain {
    type Wit = w::BaseChain;
    fn into_wit(self) -> w::BaseChain {
        w::BaseChain {
            hook: self.hook.into_wit(),
            type_: self.chain_type.into_wit(),
            priority: w::Priority::Number(self.priority),
            policy: self.policy.into_wit(),
        }
    }
}

impl IntoWit for Rule {
    type Wit = w::Rule;
    fn into_wit(self) -> w::Rule {
        let mut statements = Vec::new();
        if self.counter {
            statements.push(w::Statement::Counter);
        }
        if let Some(prefix) = self.log_prefix {
            statements.push(w::Statement::Log(w::Log {
                prefix: Some(prefix),
                level: None,
                limit: None,
            }));
        }
        w::Rule {
            matches: self.matches.into_wit(),
            statements,
            action: self.verdict.into_wit(),
            comment: self.comment,
        }
    }
}

impl IntoWit for Match {
    type Wit = w::MatchExpr;
    fn into_wit(self) -> w::MatchExpr {
        w::MatchExpr {
            matcher: self.matcher.into_wit(),
            negate: self.negated,
        }
    }
}

impl IntoWit for Matcher {
    type Wit = w::Matcher;
    fn into_wit(self) -> w::Matcher {
        let ports = |protocol: Transport, first, last| w::Ports {
            protocol: protocol.into_wit(),
            first,
            last,
        };
        let set = |protocol: Transport, set| w::PortSetRef {
            protocol: protocol.into_wit(),
            set,
        };
        match self {
            Matcher::Iifname(name) => w::Matcher::Iifname(name),
            Matcher::Oifname(name) => w::Matcher::Oifname(name),
            Matcher::Saddr(prefix) => w::Matcher::Saddr(prefix),
            Matcher::Daddr(prefix) => w::Matcher::Daddr(prefix),
            Matcher::L4proto(p) => w::Matcher::L4proto(p.into_wit()),
            Matcher::Sport {
                protocol,
                first,
                last,
            } => w::Matcher::Sport(ports(protocol, first, last)),
            Matcher::Dport {
                protocol,
                first,
                last,
            } => w::Matcher::Dport(ports(protocol, first, last)),
            Matcher::CtState(states) => w::Matcher::CtState(states.into_wit()),
            Matcher::SaddrIn(name) => w::Matcher::SaddrIn(name),
            Matcher::DaddrIn(name) => w::Matcher::DaddrIn(name),
            Matcher::SportIn { protocol, set: s } => w::Matcher::SportIn(set(protocol, s)),
            Matcher::DportIn { protocol, set: s } => w::Matcher::DportIn(set(protocol, s)),
        }
    }
}

impl IntoWit for Verdict {
    type Wit = w::Action;
    fn into_wit(self) -> w::Action {
        match self {
            Verdict::Accept => w::Action::Accept,
            Verdict::Drop => w::Action::Drop,
            Verdict::Reject => w::Action::Reject(None),
            Verdict::Jump(chain) => w::Action::Jump(chain),
            Verdict::Goto(chain) => w::Action::Goto(chain),
            Verdict::Return => w::Action::Return,
            Verdict::Dnat(target) => w::Action::Dnat(target.into_wit()),
            Verdict::Snat(target) => w::Action::Snat(target.into_wit()),
            Verdict::Masquerade => w::Action::Masquerade(None),
            Verdict::Continue => w::Action::Continue,
        }
    }
}

impl IntoWit for NatTarget {
    type Wit = w::NatTarget;
    fn into_wit(self) -> w::NatTarget {
        w::NatTarget {
            address: self.address,
            last_address: None,
            ports: self.port.map(|p| w::PortRange { first: p, last: p }),
            flags: w::NatFlags::empty(),
        }
    }
}

impl IntoWit for NamedSet {
    type Wit = w::NamedSet;
    fn into_wit(self) -> w::NamedSet {
        let one = |v| vec![v];
        let (key, elements) = match self.elements {
            SetElements::Ipv4(addrs) => (
                w::KeyType::Ipv4Addr,
                addrs.into_iter().map(w::Value::Address).map(one).collect(),
            ),
            SetElements::Ipv6(addrs) => (
                w::KeyType::Ipv6Addr,
                addrs.into_iter().map(w::Value::Address).map(one).collect(),
            ),
            SetElements::Ports(ports) => (
                w::KeyType::InetService,
                ports
                    .into_iter()
                    .map(|p| one(w::Value::Number(p.into())))
                    .collect(),
            ),
        };
        w::NamedSet {
            name: self.name,
            key: vec![key],
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
            elements,
        }
    }
}

impl IntoWit for Sysctl {
    type Wit = w::Sysctl;
    fn into_wit(self) -> w::Sysctl {
        w::Sysctl {
            key: self.key,
            value: self.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> w::Value {
        w::Value::Address(a.into())
    }

    fn plain_set(name: &str, key: w::KeyType, values: Vec<w::Value>) -> w::NamedSet {
        w::NamedSet {
            name: name.into(),
            key: vec![key],
            intervals: false,
            timeout: None,
            dynamic: false,
            size: None,
            elements: values.into_iter().map(|v| vec![v]).collect(),
        }
    }

    #[test]
    fn a_ruleset_reaches_the_contract_field_for_field() {
        let ruleset = Ruleset::new()
            .chain(
                Chain::nat("pre", Hook::Prerouting, -100).rule(
                    Rule::new()
                        .not_iifname("wan0")
                        .sport_range(Transport::Udp, 1000, 2000)
                        .tcp_dport(80)
                        .dport_in(Transport::Udp, "ports")
                        .sport_in(Transport::Tcp, "other")
                        .saddr_in("hosts")
                        .daddr_in("servers")
                        .l4proto(L4Protocol::Icmpv6)
                        .ct_state([CtState::New, CtState::Untracked])
                        .counter()
                        .log("in ")
                        .comment("all of it")
                        .dnat("[fd00::5]:8080"),
                ),
            )
            .chain(
                Chain::filter("out", Hook::Output, 5)
                    .policy(ChainPolicy::Drop)
                    .rule(
                        Rule::new()
                            .oifname("lo")
                            .saddr("::1")
                            .daddr("::1")
                            .goto("audit"),
                    ),
            )
            .chain(Chain::regular("audit").rule(Rule::new().return_()))
            .set(NamedSet::ipv4("hosts", ["10.0.0.1"]))
            .set(NamedSet::ipv6("servers", ["fd00::5"]))
            .set(NamedSet::ports("ports", [53, 123]))
            .sysctl("net.ipv4.ip_forward", "1");
        let m = |matcher, negate| w::MatchExpr { matcher, negate };
        let expected = w::Ruleset {
            chains: vec![
                w::Chain {
                    name: "pre".into(),
                    base: Some(w::BaseChain {
                        hook: w::Hook::Prerouting,
                        type_: w::ChainType::Nat,
                        priority: w::Priority::Number(-100),
                        policy: w::ChainPolicy::Accept,
                    }),
                    rules: vec![w::Rule {
                        matches: vec![
                            m(w::Matcher::Iifname("wan0".into()), true),
                            m(
                                w::Matcher::Sport(w::Ports {
                                    protocol: w::Transport::Udp,
                                    first: 1000,
                                    last: 2000,
                                }),
                                false,
                            ),
                            m(
                                w::Matcher::Dport(w::Ports {
                                    protocol: w::Transport::Tcp,
                                    first: 80,
                                    last: 80,
                                }),
                                false,
                            ),
                            m(
                                w::Matcher::DportIn(w::PortSetRef {
                                    protocol: w::Transport::Udp,
                                    set: "ports".into(),
                                }),
                                false,
                            ),
                            m(
                                w::Matcher::SportIn(w::PortSetRef {
                                    protocol: w::Transport::Tcp,
                                    set: "other".into(),
                                }),
                                false,
                            ),
                            m(w::Matcher::SaddrIn("hosts".into()), false),
                            m(w::Matcher::DaddrIn("servers".into()), false),
                            m(w::Matcher::L4proto(w::L4Protocol::Icmpv6), false),
                            m(
                                w::Matcher::CtState(vec![w::CtState::New, w::CtState::Untracked]),
                                false,
                            ),
                        ],
                        statements: vec![
                            w::Statement::Counter,
                            w::Statement::Log(w::Log {
                                prefix: Some("in ".into()),
                                level: None,
                                limit: None,
                            }),
                        ],
                        action: w::Action::Dnat(w::NatTarget {
                            address: "fd00::5".into(),
                            last_address: None,
                            ports: Some(w::PortRange {
                                first: 8080,
                                last: 8080,
                            }),
                            flags: w::NatFlags::empty(),
                        }),
                        comment: Some("all of it".into()),
                    }],
                },
                w::Chain {
                    name: "out".into(),
                    base: Some(w::BaseChain {
                        hook: w::Hook::Output,
                        type_: w::ChainType::Filter,
                        priority: w::Priority::Number(5),
                        policy: w::ChainPolicy::Drop,
                    }),
                    rules: vec![w::Rule {
                        matches: vec![
                            m(w::Matcher::Oifname("lo".into()), false),
                            m(w::Matcher::Saddr("::1".into()), false),
                            m(w::Matcher::Daddr("::1".into()), false),
                        ],
                        action: w::Action::Goto("audit".into()),
                        statements: vec![],
                        comment: None,
                    }],
                },
                w::Chain {
                    name: "audit".into(),
                    base: None,
                    rules: vec![w::Rule {
                        matches: vec![],
                        action: w::Action::Return,
                        statements: vec![],
                        comment: None,
                    }],
                },
            ],
            sets: vec![
                plain_set("hosts", w::KeyType::Ipv4Addr, vec![addr("10.0.0.1")]),
                plain_set("servers", w::KeyType::Ipv6Addr, vec![addr("fd00::5")]),
                plain_set(
                    "ports",
                    w::KeyType::InetService,
                    vec![w::Value::Number(53), w::Value::Number(123)],
                ),
            ],
            maps: vec![],
            counters: vec![],
            limits: vec![],
            ct_helpers: vec![],
            flowtables: vec![],
            sysctls: vec![w::Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "1".into(),
            }],
        };
        assert_eq!(ruleset.into_wit(), expected);
    }

    #[test]
    fn each_verdict_reaches_the_contract_as_its_action() {
        let target = |address: &str, port: Option<u16>| w::NatTarget {
            address: address.into(),
            last_address: None,
            ports: port.map(|p| w::PortRange { first: p, last: p }),
            flags: w::NatFlags::empty(),
        };
        for (rule, action) in [
            (Rule::new().accept(), w::Action::Accept),
            (Rule::new().drop(), w::Action::Drop),
            (Rule::new().reject(), w::Action::Reject(None)),
            (Rule::new().jump("a"), w::Action::Jump("a".into())),
            (Rule::new().goto("b"), w::Action::Goto("b".into())),
            (Rule::new().return_(), w::Action::Return),
            (
                Rule::new().dnat("10.0.0.5"),
                w::Action::Dnat(target("10.0.0.5", None)),
            ),
            (
                Rule::new().snat("10.0.0.6:99"),
                w::Action::Snat(target("10.0.0.6", Some(99))),
            ),
            (Rule::new().masquerade(), w::Action::Masquerade(None)),
            (Rule::new().continue_(), w::Action::Continue),
        ] {
            assert_eq!(rule.into_wit().action, action);
        }
    }

    #[test]
    fn the_state_and_event_arrive_field_for_field() {
        let lease = w::Lease {
            mac: "52:54:00:12:34:56".into(),
            ip: "192.168.1.23".into(),
            hostname: Some("nas".into()),
            iface: "lan0".into(),
            expires: Some(1_700_000_000),
        };
        let state = w::WorldState {
            interfaces: vec![w::NetworkInterface {
                name: "lan0".into(),
                index: 7,
                up: true,
                mac: Some("02:00:00:00:00:01".into()),
                addresses: vec!["192.168.1.1/24".into()],
            }],
            leases: vec![lease.clone()],
            features: w::KernelFeatures {
                flowtables: false,
                hardware_offload: vec![],
                ct_helpers: vec![],
            },
        }
        .into_sdk();
        let lan = &state.interfaces[0];
        assert_eq!(
            (lan.name.as_str(), lan.index, lan.up, lan.mac.as_deref()),
            ("lan0", 7, true, Some("02:00:00:00:00:01"))
        );
        assert_eq!(lan.addresses, ["192.168.1.1/24"]);
        let l = &state.leases[0];
        assert_eq!(
            (
                l.mac.as_str(),
                l.ip.as_str(),
                l.hostname.as_deref(),
                l.iface.as_str(),
                l.expires
            ),
            (
                "52:54:00:12:34:56",
                "192.168.1.23",
                Some("nas"),
                "lan0",
                Some(1_700_000_000)
            )
        );

        let change = || w::AddressChange {
            iface: "lan0".into(),
            address: "192.168.1.1/24".into(),
        };
        let sdk_change = AddressChange::new("lan0", "192.168.1.1/24");
        for (event, expected) in [
            (w::Event::Startup, Event::Startup),
            (w::Event::ConfigChanged, Event::ConfigChanged),
            (
                w::Event::InterfaceUp("a".into()),
                Event::InterfaceUp("a".into()),
            ),
            (
                w::Event::InterfaceDown("b".into()),
                Event::InterfaceDown("b".into()),
            ),
            (
                w::Event::AddressAdded(change()),
                Event::AddressAdded(sdk_change.clone()),
            ),
            (
                w::Event::AddressRemoved(change()),
                Event::AddressRemoved(sdk_change.clone()),
            ),
            (
                w::Event::LeaseAdded(lease.clone()),
                Event::LeaseAdded(l.clone()),
            ),
            (
                w::Event::LeaseRenewed(lease.clone()),
                Event::LeaseRenewed(l.clone()),
            ),
            (
                w::Event::LeaseExpired(lease.clone()),
                Event::LeaseExpired(l.clone()),
            ),
        ] {
            assert_eq!(event.into_sdk(), expected);
        }
    }
}
