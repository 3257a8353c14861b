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
    AddressChange, BaseChain, Chain, ChainPolicy, ChainType, Config, CtHelper, CtState, CtStatus,
    Date, Dhcpv6Lease, Dscp, Event, FibCheck, Field, Flowtable, Hook, IcmpReject, Icmpv6Reject,
    IcmpxReject, IpFamily, KernelFeatures, KeyType, L4Protocol, Lease, Level, Log, LogLevel,
    MapData, MapElement, MapLookup, MapSource, MapVerdict, MarkUpdate, Match, Matcher, MssClamp,
    NamedCounter, NamedLimit, NamedMap, NamedSet, NatFlags, NatMap, NatTarget, Neighbour,
    NeighbourState, NetworkInterface, Policy, PortRange, Priority, PriorityName, Rate, RateLimit,
    RejectWith, Rule, Ruleset, Statement, Sysctl, TcpFlags, TimeOfDay, TimeUnit, Transport, Value,
    Verdict, Weekday, WorldState,
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

impl<T: IntoWit> IntoWit for Option<T> {
    type Wit = Option<T::Wit>;
    fn into_wit(self) -> Self::Wit {
        self.map(IntoWit::into_wit)
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
        let w::WorldState {
            interfaces,
            leases,
            dhcpv6_leases,
            neighbours,
            features,
        } = self;
        let mut state = WorldState::new(interfaces.into_sdk(), leases.into_sdk());
        state.dhcpv6_leases = dhcpv6_leases.into_sdk();
        state.neighbours = neighbours.into_sdk();
        state.features = features.into_sdk();
        state
    }
}

impl IntoSdk for w::Dhcpv6Lease {
    type Sdk = Dhcpv6Lease;
    fn into_sdk(self) -> Dhcpv6Lease {
        let w::Dhcpv6Lease {
            ip,
            duid,
            iaid,
            temporary,
            hostname,
            mac,
            iface,
            expires,
        } = self;
        let mut l = Dhcpv6Lease::new(duid, iaid, ip, iface);
        l.temporary = temporary;
        l.hostname = hostname;
        l.mac = mac;
        l.expires = expires;
        l
    }
}

impl IntoSdk for w::Neighbour {
    type Sdk = Neighbour;
    fn into_sdk(self) -> Neighbour {
        let w::Neighbour {
            ip,
            mac,
            iface,
            state,
        } = self;
        let mut n = Neighbour::new(ip, mac, iface);
        n.state = match state {
            w::NeighbourState::Reachable => NeighbourState::Reachable,
            w::NeighbourState::Stale => NeighbourState::Stale,
            w::NeighbourState::Delay => NeighbourState::Delay,
            w::NeighbourState::Probe => NeighbourState::Probe,
            w::NeighbourState::Permanent => NeighbourState::Permanent,
        };
        n
    }
}

impl IntoSdk for w::KernelFeatures {
    type Sdk = KernelFeatures;
    fn into_sdk(self) -> KernelFeatures {
        let w::KernelFeatures {
            flowtables,
            hardware_offload,
            ct_helpers,
        } = self;
        let mut f = KernelFeatures::new();
        f.flowtables = flowtables;
        f.hardware_offload = hardware_offload;
        f.ct_helpers = ct_helpers;
        f
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
            w::Event::Dhcpv6LeaseAdded(l) => Event::Dhcpv6LeaseAdded(l.into_sdk()),
            w::Event::Dhcpv6LeaseRenewed(l) => Event::Dhcpv6LeaseRenewed(l.into_sdk()),
            w::Event::Dhcpv6LeaseExpired(l) => Event::Dhcpv6LeaseExpired(l.into_sdk()),
            w::Event::NeighbourAdded(n) => Event::NeighbourAdded(n.into_sdk()),
            w::Event::NeighbourChanged(n) => Event::NeighbourChanged(n.into_sdk()),
            w::Event::NeighbourRemoved(n) => Event::NeighbourRemoved(n.into_sdk()),
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

/// `IntoWit` for an SDK flag set whose flags are those of a generated one,
/// by name.
macro_rules! into_wit_flags {
    ($sdk:ident => $wit:ty { $($flag:ident),+ $(,)? }) => {
        impl IntoWit for $sdk {
            type Wit = $wit;
            fn into_wit(self) -> $wit {
                let mut flags = <$wit>::empty();
                $(if self.contains($sdk::$flag) {
                    flags = flags | <$wit>::$flag;
                })+
                flags
            }
        }
    };
}

into_wit_by_name!(Hook => w::Hook { Prerouting, Input, Forward, Output, Postrouting });
into_wit_by_name!(ChainType => w::ChainType { Filter, Nat, Route });
into_wit_by_name!(ChainPolicy => w::ChainPolicy { Accept, Drop });
into_wit_by_name!(PriorityName => w::PriorityName {
    Raw, Mangle, Dstnat, Filter, Security, Srcnat,
});
into_wit_by_name!(Transport => w::Transport { Tcp, Udp, Sctp });
into_wit_by_name!(CtState => w::CtState { New, Established, Related, Invalid, Untracked });
into_wit_by_name!(FibCheck => w::FibCheck {
    ReversePathMissing, ReversePathMissingMark, DaddrLocal,
});
into_wit_by_name!(Weekday => w::Weekday {
    Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday,
});
into_wit_by_name!(TimeUnit => w::TimeUnit { Second, Minute, Hour, Day, Week });
into_wit_by_name!(LogLevel => w::LogLevel { Emerg, Alert, Crit, Err, Warn, Notice, Info, Debug });
into_wit_by_name!(IcmpReject => w::IcmpReject {
    NetUnreachable, HostUnreachable, ProtUnreachable, PortUnreachable, NetProhibited,
    HostProhibited, AdminProhibited,
});
into_wit_by_name!(Icmpv6Reject => w::Icmpv6Reject {
    NoRoute, AdminProhibited, AddrUnreachable, PortUnreachable, PolicyFail, RejectRoute,
});
into_wit_by_name!(IcmpxReject => w::IcmpxReject {
    NoRoute, PortUnreachable, HostUnreachable, AdminProhibited,
});
into_wit_by_name!(KeyType => w::KeyType {
    Ipv4Addr, Ipv6Addr, InetService, InetProto, Ifname, Mark, EtherAddr, IcmpType, Icmpv6Type,
});
into_wit_by_name!(Level => wlog::Level { Trace, Debug, Info, Warn, Error });

into_wit_flags!(TcpFlags => w::TcpFlags { FIN, SYN, RST, PSH, ACK, URG, ECN, CWR });
into_wit_flags!(CtStatus => w::CtStatus {
    EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED, SNAT, DNAT, DYING,
});
into_wit_flags!(NatFlags => w::NatFlags { RANDOM, FULLY_RANDOM, PERSISTENT });

impl IntoWit for IpFamily {
    type Wit = w::IpFamily;
    fn into_wit(self) -> w::IpFamily {
        match self {
            IpFamily::V4 => w::IpFamily::Ipv4,
            IpFamily::V6 => w::IpFamily::Ipv6,
        }
    }
}

impl IntoWit for Ruleset {
    type Wit = w::Ruleset;
    fn into_wit(self) -> w::Ruleset {
        let Ruleset {
            chains,
            sets,
            maps,
            counters,
            limits,
            ct_helpers,
            flowtables,
            sysctls,
        } = self;
        w::Ruleset {
            chains: chains.into_wit(),
            sets: sets.into_wit(),
            maps: maps.into_wit(),
            counters: counters.into_wit(),
            limits: limits.into_wit(),
            ct_helpers: ct_helpers.into_wit(),
            flowtables: flowtables.into_wit(),
            sysctls: sysctls.into_wit(),
        }
    }
}

impl IntoWit for Chain {
    type Wit = w::Chain;
    fn into_wit(self) -> w::Chain {
        let Chain { name, base, rules } = self;
        w::Chain {
            name,
            base: base.into_wit(),
            rules: rules.into_wit(),
        }
    }
}

impl IntoWit for BaseChain {
    type Wit = w::BaseChain;
    fn into_wit(self) -> w::BaseChain {
        let BaseChain {
            hook,
            chain_type,
            priority,
            policy,
        } = self;
        w::BaseChain {
            hook: hook.into_wit(),
            type_: chain_type.into_wit(),
            priority: priority.into_wit(),
            policy: policy.into_wit(),
        }
    }
}

impl IntoWit for Priority {
    type Wit = w::Priority;
    fn into_wit(self) -> w::Priority {
        match self {
            Priority::Number(n) => w::Priority::Number(n),
            Priority::Named { name, offset } => w::Priority::Named(w::NamedPriority {
                name: name.into_wit(),
                offset,
            }),
        }
    }
}

impl IntoWit for Rule {
    type Wit = w::Rule;
    fn into_wit(self) -> w::Rule {
        let Rule {
            matches,
            statements,
            verdict,
            comment,
        } = self;
        w::Rule {
            matches: matches.into_wit(),
            statements: statements.into_wit(),
            action: verdict.into_wit(),
            comment,
        }
    }
}

impl IntoWit for Match {
    type Wit = w::MatchExpr;
    fn into_wit(self) -> w::MatchExpr {
        let Match { matcher, negated } = self;
        w::MatchExpr {
            matcher: matcher.into_wit(),
            negate: negated,
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
            Matcher::L4proto(p) => p.into_wit(),
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
            Matcher::Nfproto(family) => w::Matcher::Nfproto(family.into_wit()),
            Matcher::Test { fields, any_of } => w::Matcher::Test(w::Test {
                fields: fields.into_wit(),
                any_of: any_of.into_wit(),
            }),
            Matcher::InSet { fields, set } => w::Matcher::InSet(w::SetTest {
                fields: fields.into_wit(),
                set,
            }),
            Matcher::Masked { field, mask, value } => w::Matcher::Masked(w::MaskedTest {
                field: field.into_wit(),
                mask: mask.into_wit(),
                value: value.into_wit(),
            }),
            Matcher::TcpFlags { flags, mask } => w::Matcher::TcpFlags(w::TcpFlagsTest {
                flags: flags.into_wit(),
                mask: mask.into_wit(),
            }),
            Matcher::CtStatus(status) => w::Matcher::CtStatus(status.into_wit()),
            Matcher::Fib(check) => w::Matcher::Fib(check.into_wit()),
            Matcher::Hour { from, to } => w::Matcher::Hour(w::TimeOfDay {
                from: from.into_wit(),
                to: to.into_wit(),
            }),
            Matcher::Day(days) => w::Matcher::Day(days.into_wit()),
            Matcher::Date { from, to } => w::Matcher::Date(w::DateRange {
                from: from.into_wit(),
                to: to.into_wit(),
            }),
            Matcher::Limit(limit) => w::Matcher::Limit(limit.into_wit()),
            Matcher::LimitNamed(name) => w::Matcher::LimitNamed(name),
            Matcher::KeyedLimit { fields, set, limit } => w::Matcher::KeyedLimit(w::KeyedLimit {
                fields: fields.into_wit(),
                set,
                limit: limit.into_wit(),
            }),
        }
    }
}

/// A protocol with a name in the contract is matched by name, any other by
/// number.
impl IntoWit for L4Protocol {
    type Wit = w::Matcher;
    fn into_wit(self) -> w::Matcher {
        let named = match self {
            L4Protocol::Tcp => w::L4Protocol::Tcp,
            L4Protocol::Udp => w::L4Protocol::Udp,
            L4Protocol::Icmp => w::L4Protocol::Icmp,
            L4Protocol::Icmpv6 => w::L4Protocol::Icmpv6,
            L4Protocol::Igmp => w::L4Protocol::Igmp,
            L4Protocol::Gre => w::L4Protocol::Gre,
            L4Protocol::Esp => w::L4Protocol::Esp,
            L4Protocol::Ah => w::L4Protocol::Ah,
            L4Protocol::Sctp => w::L4Protocol::Sctp,
            L4Protocol::Udplite => w::L4Protocol::Udplite,
            L4Protocol::Other(number) => return w::Matcher::L4protoNumber(number),
        };
        w::Matcher::L4proto(named)
    }
}

impl IntoWit for Field {
    type Wit = w::Field;
    fn into_wit(self) -> w::Field {
        match self {
            Field::Iifname => w::Field::Iifname,
            Field::Oifname => w::Field::Oifname,
            Field::L4proto => w::Field::L4proto,
            Field::Saddr(family) => w::Field::Saddr(family.into_wit()),
            Field::Daddr(family) => w::Field::Daddr(family.into_wit()),
            Field::Sport(protocol) => w::Field::Sport(protocol.into_wit()),
            Field::Dport(protocol) => w::Field::Dport(protocol.into_wit()),
            Field::IcmpType => w::Field::IcmpType,
            Field::IcmpCode => w::Field::IcmpCode,
            Field::Icmpv6Type => w::Field::Icmpv6Type,
            Field::Icmpv6Code => w::Field::Icmpv6Code,
            Field::Mark => w::Field::Mark,
            Field::CtMark => w::Field::CtMark,
            Field::Dscp(family) => w::Field::Dscp(family.into_wit()),
            Field::EtherSaddr => w::Field::EtherSaddr,
        }
    }
}

impl IntoWit for Value {
    type Wit = w::Value;
    fn into_wit(self) -> w::Value {
        match self {
            Value::Number(n) => w::Value::Number(n),
            Value::NumberRange(first, last) => w::Value::NumberRange((first, last)),
            Value::Address(a) => w::Value::Address(a),
            Value::AddressRange(first, last) => w::Value::AddressRange((first, last)),
            Value::Name(name) => w::Value::Name(name),
            Value::Mac(mac) => w::Value::Mac(mac),
        }
    }
}

impl IntoWit for TimeOfDay {
    type Wit = String;
    fn into_wit(self) -> String {
        self.to_string()
    }
}

impl IntoWit for Date {
    type Wit = String;
    fn into_wit(self) -> String {
        self.to_string()
    }
}

impl IntoWit for Rate {
    type Wit = w::Rate;
    fn into_wit(self) -> w::Rate {
        let Rate {
            amount,
            bytes,
            unit,
            burst,
        } = self;
        w::Rate {
            amount,
            bytes,
            per: unit.into_wit(),
            burst,
        }
    }
}

impl IntoWit for RateLimit {
    type Wit = w::RateLimit;
    fn into_wit(self) -> w::RateLimit {
        let RateLimit { rate, over } = self;
        w::RateLimit {
            rate: rate.into_wit(),
            over,
        }
    }
}

impl IntoWit for Statement {
    type Wit = w::Statement;
    fn into_wit(self) -> w::Statement {
        match self {
            Statement::Counter => w::Statement::Counter,
            Statement::CounterNamed(name) => w::Statement::CounterNamed(name),
            Statement::Log(log) => w::Statement::Log(log.into_wit()),
            Statement::Mark(update) => w::Statement::Mark(update.into_wit()),
            Statement::CtMark(update) => w::Statement::CtMark(update.into_wit()),
            Statement::Dscp { family, value } => w::Statement::Dscp(w::DscpUpdate {
                family: family.into_wit(),
                value: value.into_wit(),
            }),
            Statement::Notrack => w::Statement::Notrack,
            Statement::CtHelper(name) => w::Statement::CtHelper(name),
            Statement::Mss(clamp) => w::Statement::Mss(clamp.into_wit()),
            Statement::Offload(flowtable) => w::Statement::Offload(flowtable),
            Statement::CutFlows => w::Statement::CutFlows,
        }
    }
}

impl IntoWit for Log {
    type Wit = w::Log;
    fn into_wit(self) -> w::Log {
        let Log {
            prefix,
            level,
            limit,
        } = self;
        w::Log {
            prefix,
            level: level.into_wit(),
            limit: limit.into_wit(),
        }
    }
}

impl IntoWit for MarkUpdate {
    type Wit = w::MarkUpdate;
    fn into_wit(self) -> w::MarkUpdate {
        match self {
            MarkUpdate::Set(v) => w::MarkUpdate::Set(v),
            MarkUpdate::And(v) => w::MarkUpdate::And(v),
            MarkUpdate::Or(v) => w::MarkUpdate::Or(v),
            MarkUpdate::Xor(v) => w::MarkUpdate::Xor(v),
            MarkUpdate::Masked { value, mask } => {
                w::MarkUpdate::Masked(w::MaskedMark { value, mask })
            }
        }
    }
}

impl IntoWit for Dscp {
    type Wit = u8;
    fn into_wit(self) -> u8 {
        self.value()
    }
}

impl IntoWit for MssClamp {
    type Wit = w::MssClamp;
    fn into_wit(self) -> w::MssClamp {
        match self {
            MssClamp::PathMtu => w::MssClamp::PathMtu,
            MssClamp::Size(size) => w::MssClamp::Size(size),
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
            Verdict::RejectWith(with) => w::Action::Reject(Some(with.into_wit())),
            Verdict::Jump(chain) => w::Action::Jump(chain),
            Verdict::Goto(chain) => w::Action::Goto(chain),
            Verdict::Return => w::Action::Return,
            Verdict::Dnat(target) => w::Action::Dnat(target.into_wit()),
            Verdict::Snat(target) => w::Action::Snat(target.into_wit()),
            Verdict::DnatMap(map) => w::Action::DnatMap(map.into_wit()),
            Verdict::SnatMap(map) => w::Action::SnatMap(map.into_wit()),
            Verdict::Masquerade => w::Action::Masquerade(None),
            Verdict::MasqueradeTo(ports) => w::Action::Masquerade(Some(ports.into_wit())),
            Verdict::Redirect => w::Action::Redirect(None),
            Verdict::RedirectTo(ports) => w::Action::Redirect(Some(ports.into_wit())),
            Verdict::Vmap(lookup) => w::Action::Vmap(lookup.into_wit()),
            Verdict::Continue => w::Action::Continue,
        }
    }
}

impl IntoWit for RejectWith {
    type Wit = w::RejectWith;
    fn into_wit(self) -> w::RejectWith {
        match self {
            RejectWith::TcpReset => w::RejectWith::TcpReset,
            RejectWith::Icmp(code) => w::RejectWith::Icmp(code.into_wit()),
            RejectWith::Icmpv6(code) => w::RejectWith::Icmpv6(code.into_wit()),
            RejectWith::Icmpx(code) => w::RejectWith::Icmpx(code.into_wit()),
        }
    }
}

impl IntoWit for PortRange {
    type Wit = w::PortRange;
    fn into_wit(self) -> w::PortRange {
        let PortRange { first, last } = self;
        w::PortRange { first, last }
    }
}

impl IntoWit for NatTarget {
    type Wit = w::NatTarget;
    fn into_wit(self) -> w::NatTarget {
        let NatTarget {
            address,
            last_address,
            ports,
            flags,
        } = self;
        w::NatTarget {
            address,
            last_address,
            ports: ports.into_wit(),
            flags: flags.into_wit(),
        }
    }
}

impl IntoWit for NatMap {
    type Wit = w::NatMap;
    fn into_wit(self) -> w::NatMap {
        let NatMap { family, lookup } = self;
        w::NatMap {
            family: family.into_wit(),
            lookup: lookup.into_wit(),
        }
    }
}

impl IntoWit for MapLookup {
    type Wit = w::MapLookup;
    fn into_wit(self) -> w::MapLookup {
        let MapLookup { key, source } = self;
        w::MapLookup {
            key: key.into_wit(),
            map: match source {
                MapSource::Named(name) => w::MapSource::Named(name),
                MapSource::Inline(elements) => w::MapSource::Inline(elements.into_wit()),
            },
        }
    }
}

impl IntoWit for MapElement {
    type Wit = w::MapElement;
    fn into_wit(self) -> w::MapElement {
        let MapElement { key, data } = self;
        w::MapElement {
            key: key.into_wit(),
            data: match data {
                MapData::Verdict(verdict) => w::MapData::Verdict(verdict.into_wit()),
                MapData::Values(values) => w::MapData::Values(values.into_wit()),
            },
        }
    }
}

impl IntoWit for MapVerdict {
    type Wit = w::Verdict;
    fn into_wit(self) -> w::Verdict {
        match self {
            MapVerdict::Accept => w::Verdict::Accept,
            MapVerdict::Drop => w::Verdict::Drop,
            MapVerdict::Jump(chain) => w::Verdict::Jump(chain),
            MapVerdict::Goto(chain) => w::Verdict::Goto(chain),
            MapVerdict::Return => w::Verdict::Return,
        }
    }
}

impl IntoWit for NamedSet {
    type Wit = w::NamedSet;
    fn into_wit(self) -> w::NamedSet {
        let NamedSet {
            name,
            elements,
            intervals,
            timeout,
            dynamic,
            size,
        } = self;
        let (key, elements) = elements.into_keyed();
        w::NamedSet {
            name,
            key: key.into_wit(),
            intervals,
            timeout,
            dynamic,
            size,
            elements: elements.into_wit(),
        }
    }
}

impl IntoWit for NamedMap {
    type Wit = w::NamedMap;
    fn into_wit(self) -> w::NamedMap {
        let NamedMap {
            name,
            key,
            data,
            intervals,
            elements,
        } = self;
        w::NamedMap {
            name,
            key: key.into_wit(),
            data: data.into_wit(),
            intervals,
            elements: elements.into_wit(),
        }
    }
}

impl IntoWit for NamedCounter {
    type Wit = w::NamedCounter;
    fn into_wit(self) -> w::NamedCounter {
        let NamedCounter { name } = self;
        w::NamedCounter { name }
    }
}

impl IntoWit for NamedLimit {
    type Wit = w::NamedLimit;
    fn into_wit(self) -> w::NamedLimit {
        let NamedLimit { name, limit } = self;
        w::NamedLimit {
            name,
            limit: limit.into_wit(),
        }
    }
}

impl IntoWit for CtHelper {
    type Wit = w::CtHelper;
    fn into_wit(self) -> w::CtHelper {
        let CtHelper {
            name,
            helper,
            protocol,
        } = self;
        w::CtHelper {
            name,
            helper,
            protocol: protocol.into_wit(),
        }
    }
}

impl IntoWit for Flowtable {
    type Wit = w::Flowtable;
    fn into_wit(self) -> w::Flowtable {
        let Flowtable {
            name,
            priority,
            devices,
            hardware_offload,
            counter,
        } = self;
        w::Flowtable {
            name,
            priority,
            devices,
            hardware_offload,
            counter,
        }
    }
}

impl IntoWit for Sysctl {
    type Wit = w::Sysctl;
    fn into_wit(self) -> w::Sysctl {
        let Sysctl { key, value } = self;
        w::Sysctl { key, value }
    }
}

#[cfg(test)]
mod tests;
