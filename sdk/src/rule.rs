//! Rules: [`RuleBuilder`] collects a rule's matches and its statements in
//! the order they are written, and only one of its verdict methods turns it
//! into a [`Rule`], so a rule without a verdict cannot be written.

use crate::action::{MapLookup, NatMap, NatTarget, PortRange, RejectWith, Verdict};
use crate::packet::{
    CtState, CtStatus, Dscp, FibCheck, Field, IcmpType, Icmpv6Type, IpFamily, L4Protocol, TcpFlags,
    Transport, Value,
};
use crate::rate::{Rate, RateLimit};
use crate::statement::{Log, MarkUpdate, MssClamp, Statement};
use crate::time::{Date, TimeOfDay, Weekday};

/// One property a packet is tested for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Matcher {
    /// Input interface name, e.g. "lan0"; "eth*" matches every name that
    /// starts with "eth".
    Iifname(String),
    /// Output interface name, as [`Matcher::Iifname`].
    Oifname(String),
    /// Source address or prefix, IPv4 or IPv6: "192.168.0.2",
    /// "192.168.0.0/24", "fd00::/8". Host bits of a prefix must be zero.
    Saddr(String),
    /// Destination address or prefix, as [`Matcher::Saddr`].
    Daddr(String),
    /// Layer-4 protocol, named or by number.
    L4proto(L4Protocol),
    /// Source port in `first..=last` (`first == last` for one port).
    Sport {
        /// Protocol of the port.
        protocol: Transport,
        /// Lowest port of the range.
        first: u16,
        /// Highest port of the range.
        last: u16,
    },
    /// Destination port in `first..=last`, as [`Matcher::Sport`].
    Dport {
        /// Protocol of the port.
        protocol: Transport,
        /// Lowest port of the range.
        first: u16,
        /// Highest port of the range.
        last: u16,
    },
    /// Connection-tracking state is one of these.
    CtState(Vec<CtState>),
    /// Source address is in the named address set.
    SaddrIn(String),
    /// Destination address is in the named address set.
    DaddrIn(String),
    /// Source port is in the named port set.
    SportIn {
        /// Protocol of the port.
        protocol: Transport,
        /// Name of a port set of the same ruleset.
        set: String,
    },
    /// Destination port is in the named port set.
    DportIn {
        /// Protocol of the port.
        protocol: Transport,
        /// Name of a port set of the same ruleset.
        set: String,
    },
    /// The packet's family (`meta nfproto`).
    Nfproto(IpFamily),
    /// Fields compared with values: one element is a plain comparison
    /// (`tcp dport 22`), several an inline set (`tcp dport { 22, 80 }`).
    /// Each element holds one value per field; several fields are
    /// concatenated (`ip daddr . tcp dport { 10.0.0.2 . 80 }`).
    Test {
        /// The fields, concatenated in order.
        fields: Vec<Field>,
        /// The elements, any of which matches.
        any_of: Vec<Vec<Value>>,
    },
    /// Fields looked up in a named set of the ruleset.
    InSet {
        /// The fields, concatenated in order.
        fields: Vec<Field>,
        /// A set whose key has these fields' types.
        set: String,
    },
    /// One field under a mask equals a value (`meta mark & 0xff == 0x1`).
    Masked {
        /// The field.
        field: Field,
        /// An address (without prefix) for address fields, else a number.
        mask: Value,
        /// Has no bits outside the mask.
        value: Value,
    },
    /// The TCP flags under `mask` are exactly `flags`.
    TcpFlags {
        /// The flags that must be set.
        flags: TcpFlags,
        /// The flags looked at.
        mask: TcpFlags,
    },
    /// Any of these conntrack status bits is set.
    CtStatus(CtStatus),
    /// A route lookup.
    Fib(FibCheck),
    /// The local time of day is from `from` to `to`; `from` after `to`
    /// wraps midnight.
    Hour {
        /// Start.
        from: TimeOfDay,
        /// End.
        to: TimeOfDay,
    },
    /// Today is one of these days.
    Day(Vec<Weekday>),
    /// Now is within these dates, inclusive.
    Date {
        /// Start.
        from: Date,
        /// End.
        to: Date,
    },
    /// The packets reaching this match are within (or over) a rate.
    Limit(RateLimit),
    /// As [`Matcher::Limit`], with the named limit object of the ruleset,
    /// shared by every rule that names it.
    LimitNamed(String),
    /// A rate limit per key: the set keeps one limit for each value of the
    /// fields (per source address, for a brute-force guard).
    KeyedLimit {
        /// The fields that key the limits.
        fields: Vec<Field>,
        /// A dynamic set with a timeout whose key has these fields' types.
        set: String,
        /// The limit each key gets.
        limit: RateLimit,
    },
}

/// A matcher of a rule, possibly negated. The runtime refuses a negation
/// nft cannot express: a port range, a ct-state list, a rate limit (use
/// [`RateLimit::over`]), day and date tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Match {
    pub(crate) matcher: Matcher,
    pub(crate) negated: bool,
}

impl Match {
    /// What is tested.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Whether the rule wants the test to fail.
    pub fn is_negated(&self) -> bool {
        self.negated
    }
}

/// A finished rule: its matches, statements and verdict. Made by
/// [`Rule::new`] and one of [`RuleBuilder`]'s verdict methods; read by a
/// policy's tests through the getters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub(crate) matches: Vec<Match>,
    pub(crate) statements: Vec<Statement>,
    pub(crate) verdict: Verdict,
    pub(crate) comment: Option<String>,
}

impl Rule {
    /// Starts a rule that matches every packet: narrow it with the match
    /// methods, add statements, then finish it with a verdict.
    #[expect(
        clippy::new_ret_no_self,
        reason = "a rule starts as a builder: only a verdict makes it a Rule"
    )]
    pub fn new() -> RuleBuilder {
        RuleBuilder {
            matches: Vec::new(),
            statements: Vec::new(),
            comment: None,
        }
    }

    /// The matches, all of which must hold, in order.
    pub fn matches(&self) -> &[Match] {
        &self.matches
    }

    /// The statements, run in this order before the verdict.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// What the rule does with a packet that matches.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Whether the rule counts the packets and bytes it matches (in the
    /// rule itself, not in a named counter).
    pub fn has_counter(&self) -> bool {
        self.statements.contains(&Statement::Counter)
    }

    /// The prefix of the rule's first log statement, if it has one.
    pub fn log_prefix(&self) -> Option<&str> {
        self.statements.iter().find_map(|s| match s {
            Statement::Log(log) => log.prefix(),
            _ => None,
        })
    }

    /// The comment `nft list ruleset` shows, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }
}

/// A rule waiting for its verdict. It is not a [`Rule`], so a chain does
/// not take it: a forgotten verdict does not compile.
///
/// ```compile_fail
/// use wasmwall_sdk::{Chain, Rule};
/// let ssh = Chain::regular("ssh").rule(Rule::new().iifname("lan0").tcp_dport(22));
/// ```
///
/// With the verdict it does:
///
/// ```
/// use wasmwall_sdk::{Chain, Rule, Verdict};
/// let ssh = Chain::regular("ssh").rule(Rule::new().iifname("lan0").tcp_dport(22).accept());
/// assert_eq!(ssh.rules()[0].verdict(), &Verdict::Accept);
///
/// let forward = Rule::new()
///     .iifname("lan0")
///     .not_saddr("192.168.0.9")
///     .tcp_dport(80)
///     .comment("port 80 to the local server")
///     .dnat("127.0.0.1:4000");
/// assert_eq!(forward.matches().len(), 3);
/// ```
///
/// Matches are kept in the order written, and so are statements (counter,
/// log, marks, ...), which run before the verdict in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a rule needs a verdict (accept, drop, ...) to become a Rule"]
pub struct RuleBuilder {
    matches: Vec<Match>,
    statements: Vec<Statement>,
    comment: Option<String>,
}

impl RuleBuilder {
    // --- Matches ------------------------------------------------------------

    /// Adds a match.
    pub fn matching(mut self, matcher: Matcher) -> Self {
        self.matches.push(Match {
            matcher,
            negated: false,
        });
        self
    }

    /// Adds a negated match.
    pub fn not_matching(mut self, matcher: Matcher) -> Self {
        self.matches.push(Match {
            matcher,
            negated: true,
        });
        self
    }

    /// Input interface is `name`.
    pub fn iifname(self, name: impl Into<String>) -> Self {
        self.matching(Matcher::Iifname(name.into()))
    }

    /// Output interface is `name`.
    pub fn oifname(self, name: impl Into<String>) -> Self {
        self.matching(Matcher::Oifname(name.into()))
    }

    /// Input interface is not `name`.
    pub fn not_iifname(self, name: impl Into<String>) -> Self {
        self.not_matching(Matcher::Iifname(name.into()))
    }

    /// Output interface is not `name`.
    pub fn not_oifname(self, name: impl Into<String>) -> Self {
        self.not_matching(Matcher::Oifname(name.into()))
    }

    /// Source address or prefix, e.g. "192.168.0.0/24".
    pub fn saddr(self, prefix: impl Into<String>) -> Self {
        self.matching(Matcher::Saddr(prefix.into()))
    }

    /// Destination address or prefix.
    pub fn daddr(self, prefix: impl Into<String>) -> Self {
        self.matching(Matcher::Daddr(prefix.into()))
    }

    /// Source address is not in `prefix`.
    pub fn not_saddr(self, prefix: impl Into<String>) -> Self {
        self.not_matching(Matcher::Saddr(prefix.into()))
    }

    /// Destination address is not in `prefix`.
    pub fn not_daddr(self, prefix: impl Into<String>) -> Self {
        self.not_matching(Matcher::Daddr(prefix.into()))
    }

    /// Layer-4 protocol, named or by number (`L4Protocol::Other(41)`).
    pub fn l4proto(self, protocol: L4Protocol) -> Self {
        self.matching(Matcher::L4proto(protocol))
    }

    /// The packet is IPv4 or IPv6.
    pub fn nfproto(self, family: IpFamily) -> Self {
        self.matching(Matcher::Nfproto(family))
    }

    /// TCP destination port.
    pub fn tcp_dport(self, port: u16) -> Self {
        self.dport_range(Transport::Tcp, port, port)
    }

    /// UDP destination port.
    pub fn udp_dport(self, port: u16) -> Self {
        self.dport_range(Transport::Udp, port, port)
    }

    /// TCP source port.
    pub fn tcp_sport(self, port: u16) -> Self {
        self.sport_range(Transport::Tcp, port, port)
    }

    /// UDP source port.
    pub fn udp_sport(self, port: u16) -> Self {
        self.sport_range(Transport::Udp, port, port)
    }

    /// Destination port in `first..=last`.
    pub fn dport_range(self, protocol: Transport, first: u16, last: u16) -> Self {
        self.matching(Matcher::Dport {
            protocol,
            first,
            last,
        })
    }

    /// Source port in `first..=last`.
    pub fn sport_range(self, protocol: Transport, first: u16, last: u16) -> Self {
        self.matching(Matcher::Sport {
            protocol,
            first,
            last,
        })
    }

    /// Connection-tracking state is one of `states`.
    pub fn ct_state(self, states: impl IntoIterator<Item = CtState>) -> Self {
        self.matching(Matcher::CtState(states.into_iter().collect()))
    }

    /// Connection is established or related (the usual "let replies in").
    pub fn ct_state_established_related(self) -> Self {
        self.ct_state([CtState::Established, CtState::Related])
    }

    /// Any of these conntrack status bits is set:
    /// `.ct_status(CtStatus::DNAT)` for a forwarded port.
    pub fn ct_status(self, status: CtStatus) -> Self {
        self.matching(Matcher::CtStatus(status))
    }

    /// Source address is in the named address set.
    pub fn saddr_in(self, set: impl Into<String>) -> Self {
        self.matching(Matcher::SaddrIn(set.into()))
    }

    /// Destination address is in the named address set.
    pub fn daddr_in(self, set: impl Into<String>) -> Self {
        self.matching(Matcher::DaddrIn(set.into()))
    }

    /// Destination port is in the named port set.
    pub fn dport_in(self, protocol: Transport, set: impl Into<String>) -> Self {
        self.matching(Matcher::DportIn {
            protocol,
            set: set.into(),
        })
    }

    /// Source port is in the named port set.
    pub fn sport_in(self, protocol: Transport, set: impl Into<String>) -> Self {
        self.matching(Matcher::SportIn {
            protocol,
            set: set.into(),
        })
    }

    /// `field` is any of `values`: one value is a comparison, several an
    /// inline set.
    ///
    /// ```
    /// use wasmwall_sdk::{Field, Rule, Transport};
    /// let web = Rule::new().test(Field::Dport(Transport::Tcp), [80u16, 443]).accept();
    /// let high = Rule::new().test(Field::Sport(Transport::Udp), [1024u16..=65535]).accept();
    /// let marked = Rule::new().test(Field::Mark, [0x10u32]).accept();
    /// # let _ = (web, high, marked);
    /// ```
    pub fn test<V: Into<Value>>(self, field: Field, values: impl IntoIterator<Item = V>) -> Self {
        self.matching(one_field(field, values))
    }

    /// `field` is none of `values`.
    pub fn not_test<V: Into<Value>>(
        self,
        field: Field,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        self.not_matching(one_field(field, values))
    }

    /// The concatenation of `fields` is any of `elements`, each one value
    /// per field.
    ///
    /// ```
    /// use wasmwall_sdk::{Field, IpFamily, Rule, Transport, Value};
    /// let servers = Rule::new()
    ///     .test_concat(
    ///         [Field::Daddr(IpFamily::V4), Field::Dport(Transport::Tcp)],
    ///         [
    ///             [Value::address("192.168.1.10"), Value::from(80u16)],
    ///             [Value::address("192.168.1.11"), Value::from(443u16)],
    ///         ],
    ///     )
    ///     .accept();
    /// # let _ = servers;
    /// ```
    pub fn test_concat<E: IntoIterator<Item = Value>>(
        self,
        fields: impl IntoIterator<Item = Field>,
        elements: impl IntoIterator<Item = E>,
    ) -> Self {
        self.matching(Matcher::Test {
            fields: fields.into_iter().collect(),
            any_of: elements
                .into_iter()
                .map(|e| e.into_iter().collect())
                .collect(),
        })
    }

    /// The concatenation of `fields` is in the named set.
    pub fn in_set(self, fields: impl IntoIterator<Item = Field>, set: impl Into<String>) -> Self {
        self.matching(set_test(fields, set))
    }

    /// The concatenation of `fields` is not in the named set.
    pub fn not_in_set(
        self,
        fields: impl IntoIterator<Item = Field>,
        set: impl Into<String>,
    ) -> Self {
        self.not_matching(set_test(fields, set))
    }

    /// `field & mask == value`: `.masked(Field::Mark, 0xffu32, 0x1u32)`,
    /// or an interface identifier whatever the prefix,
    /// `.masked(Field::Daddr(IpFamily::V6), Value::address("::ffff:ffff:ffff:ffff"), Value::address("::1234"))`.
    pub fn masked(self, field: Field, mask: impl Into<Value>, value: impl Into<Value>) -> Self {
        self.matching(Matcher::Masked {
            field,
            mask: mask.into(),
            value: value.into(),
        })
    }

    /// The TCP flags in `mask` are exactly `flags`: a connection's first
    /// packet is
    /// `.tcp_flags(TcpFlags::SYN, TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN | TcpFlags::RST)`.
    pub fn tcp_flags(self, flags: TcpFlags, mask: TcpFlags) -> Self {
        self.matching(Matcher::TcpFlags { flags, mask })
    }

    /// ICMP (IPv4) type is `kind`.
    pub fn icmp_type(self, kind: IcmpType) -> Self {
        self.icmp_types([kind])
    }

    /// ICMP (IPv4) type is one of `kinds`, an inline set.
    ///
    /// ```
    /// use wasmwall_sdk::{Chain, Hook, IcmpType, Rate, Rule};
    /// let input = Chain::filter("input", Hook::Input, 0)
    ///     .rule(
    ///         Rule::new()
    ///             .icmp_type(IcmpType::EchoRequest)
    ///             .limit(Rate::per_second(10).burst(5))
    ///             .accept(),
    ///     )
    ///     .rule(
    ///         Rule::new()
    ///             .icmp_types([IcmpType::DestinationUnreachable, IcmpType::TimeExceeded])
    ///             .accept(),
    ///     );
    /// assert_eq!(input.rules().len(), 2);
    /// ```
    pub fn icmp_types(self, kinds: impl IntoIterator<Item = IcmpType>) -> Self {
        self.test(Field::IcmpType, kinds)
    }

    /// ICMPv6 type is `kind`.
    pub fn icmpv6_type(self, kind: Icmpv6Type) -> Self {
        self.icmpv6_types([kind])
    }

    /// ICMPv6 type is one of `kinds`, an inline set (the neighbour
    /// discovery a router must let in, RFC 4890).
    pub fn icmpv6_types(self, kinds: impl IntoIterator<Item = Icmpv6Type>) -> Self {
        self.test(Field::Icmpv6Type, kinds)
    }

    /// A route lookup holds: `.fib(FibCheck::ReversePathMissing).drop()` is
    /// strict reverse-path filtering.
    pub fn fib(self, check: FibCheck) -> Self {
        self.matching(Matcher::Fib(check))
    }

    /// The local time of day is from `from` to `to`; `from` after `to`
    /// wraps midnight.
    ///
    /// ```
    /// use wasmwall_sdk::{Rule, TimeOfDay, Weekday};
    /// // No internet for the kids' tablet on school nights.
    /// let bedtime = Rule::new()
    ///     .saddr("192.168.1.50")
    ///     .oifname("wan0")
    ///     .hour(TimeOfDay::hm(21, 0), TimeOfDay::hm(7, 0))
    ///     .day([Weekday::Sunday, Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday])
    ///     .comment("bedtime")
    ///     .drop();
    /// # let _ = bedtime;
    /// ```
    ///
    /// Times from the configuration parse from "HH:MM" or "HH:MM:SS":
    ///
    /// ```
    /// # use wasmwall_sdk::{Rule, TimeOfDay};
    /// let (from, to): (TimeOfDay, TimeOfDay) = ("21:00".parse()?, "07:00".parse()?);
    /// let bedtime = Rule::new().hour(from, to).drop();
    /// # let _ = bedtime;
    /// # Ok::<(), wasmwall_sdk::TimeError>(())
    /// ```
    pub fn hour(self, from: TimeOfDay, to: TimeOfDay) -> Self {
        self.matching(Matcher::Hour { from, to })
    }

    /// Today is one of `days`.
    pub fn day(self, days: impl IntoIterator<Item = Weekday>) -> Self {
        self.matching(Matcher::Day(days.into_iter().collect()))
    }

    /// Now is from `from` to `to`, inclusive.
    pub fn date(self, from: Date, to: Date) -> Self {
        self.matching(Matcher::Date { from, to })
    }

    /// The packets reaching this match are within `rate`. Put it last among
    /// the matches: every packet that gets to it takes from the rate.
    pub fn limit(self, rate: Rate) -> Self {
        self.matching(Matcher::Limit(RateLimit::within(rate)))
    }

    /// The packets reaching this match are above `rate` (to drop them).
    pub fn limit_over(self, rate: Rate) -> Self {
        self.matching(Matcher::Limit(RateLimit::over(rate)))
    }

    /// As [`RuleBuilder::limit`], with the named limit object of the
    /// ruleset (`Ruleset::named_limit`).
    pub fn limit_named(self, limit: impl Into<String>) -> Self {
        self.matching(Matcher::LimitNamed(limit.into()))
    }

    /// A limit per value of `fields`, kept in the dynamic set `set`.
    ///
    /// The SSH brute-force guard: at most 3 new connections a minute from
    /// each source address, forgotten a minute after its last one.
    ///
    /// ```
    /// use wasmwall_sdk::{
    ///     Chain, CtState, Field, Hook, IpFamily, KeyType, NamedSet, Rate, RateLimit, Rule,
    ///     Ruleset,
    /// };
    /// let ruleset = Ruleset::new()
    ///     .set(NamedSet::keyed("ssh_meter", [KeyType::Ipv4Addr]).dynamic(65535).timeout_secs(60))
    ///     .chain(
    ///         Chain::filter("input", Hook::Input, 0)
    ///             .rule(
    ///                 Rule::new()
    ///                     .tcp_dport(22)
    ///                     .ct_state([CtState::New])
    ///                     .keyed_limit(
    ///                         [Field::Saddr(IpFamily::V4)],
    ///                         "ssh_meter",
    ///                         RateLimit::over(Rate::per_minute(3)),
    ///                     )
    ///                     .counter()
    ///                     .drop(),
    ///             )
    ///             .rule(Rule::new().tcp_dport(22).accept()),
    ///     );
    /// assert!(ruleset.sets()[0].is_dynamic());
    /// ```
    pub fn keyed_limit(
        self,
        fields: impl IntoIterator<Item = Field>,
        set: impl Into<String>,
        limit: RateLimit,
    ) -> Self {
        self.matching(Matcher::KeyedLimit {
            fields: fields.into_iter().collect(),
            set: set.into(),
            limit,
        })
    }

    // --- Statements ---------------------------------------------------------

    /// Adds a statement after those already written.
    pub fn statement(mut self, statement: Statement) -> Self {
        self.statements.push(statement);
        self
    }

    /// Counts matching packets and bytes.
    pub fn counter(self) -> Self {
        self.statement(Statement::Counter)
    }

    /// Counts matching packets and bytes in the named counter object
    /// (`Ruleset::named_counter`).
    pub fn counter_named(self, counter: impl Into<String>) -> Self {
        self.statement(Statement::CounterNamed(counter.into()))
    }

    /// Logs matching packets to the kernel log with `prefix` (at most 127
    /// bytes).
    pub fn log(self, prefix: impl Into<String>) -> Self {
        self.log_with(Log::with_prefix(prefix))
    }

    /// Logs matching packets as `log` says:
    /// `.log_with(Log::with_prefix("drop ").at_level(LogLevel::Info).at_most(Rate::per_minute(10)))`.
    pub fn log_with(self, log: Log) -> Self {
        self.statement(Statement::Log(log))
    }

    /// Sets the packet mark to `mark`.
    pub fn mark_set(self, mark: u32) -> Self {
        self.mark_update(MarkUpdate::Set(mark))
    }

    /// Changes the packet mark: `.mark_update(MarkUpdate::Or(0x100))`.
    pub fn mark_update(self, update: MarkUpdate) -> Self {
        self.statement(Statement::Mark(update))
    }

    /// Sets the conntrack mark to `mark`.
    pub fn ct_mark_set(self, mark: u32) -> Self {
        self.ct_mark_update(MarkUpdate::Set(mark))
    }

    /// Changes the conntrack mark.
    pub fn ct_mark_update(self, update: MarkUpdate) -> Self {
        self.statement(Statement::CtMark(update))
    }

    /// Sets the DSCP of the header of `family`.
    pub fn dscp_set(self, family: IpFamily, value: Dscp) -> Self {
        self.statement(Statement::Dscp { family, value })
    }

    /// Exempts the packet from connection tracking (in a chain before
    /// conntrack: priority `PriorityName::Raw`, on prerouting or output).
    pub fn notrack(self) -> Self {
        self.statement(Statement::Notrack)
    }

    /// Attaches the named conntrack helper object (`Ruleset::ct_helper`)
    /// to the connection (in a chain after conntrack, on prerouting or
    /// output).
    pub fn ct_helper(self, helper: impl Into<String>) -> Self {
        self.statement(Statement::CtHelper(helper.into()))
    }

    /// Clamps the MSS of TCP SYNs to the route's path MTU, for a PPPoE or
    /// tunnel WAN. The rule must match TCP SYNs.
    ///
    /// ```
    /// use wasmwall_sdk::{Chain, Hook, PriorityName, Rule, TcpFlags};
    /// let mangle = Chain::filter("mangle_forward", Hook::Forward, PriorityName::Mangle).rule(
    ///     Rule::new()
    ///         .oifname("wan0")
    ///         .tcp_flags(TcpFlags::SYN, TcpFlags::SYN | TcpFlags::RST)
    ///         .mss_clamp_to_pmtu()
    ///         .continue_(),
    /// );
    /// # let _ = mangle;
    /// ```
    pub fn mss_clamp_to_pmtu(self) -> Self {
        self.statement(Statement::Mss(MssClamp::PathMtu))
    }

    /// Sets the MSS of TCP SYNs to `size`. The rule must match TCP SYNs.
    pub fn mss_clamp(self, size: u16) -> Self {
        self.statement(Statement::Mss(MssClamp::Size(size)))
    }

    /// Offloads the connection to the named flowtable
    /// (`Ruleset::flowtable`); in forward chains only.
    pub fn offload(self, flowtable: impl Into<String>) -> Self {
        self.statement(Statement::Offload(flowtable.into()))
    }

    /// When this rule leaves the ruleset (a policy stops giving it), the
    /// runtime cuts the connections it matched, even those another rule
    /// would still allow. The runtime already cuts, by itself, every
    /// connection the new ruleset would drop or translate differently; this
    /// is for a rule whose going must end its sessions.
    ///
    /// ```
    /// use wasmwall_sdk::Rule;
    /// let vpn = Rule::new()
    ///     .iifname("wan0")
    ///     .udp_dport(51820)
    ///     .cut_flows_when_gone()
    ///     .accept();
    /// # let _ = vpn;
    /// ```
    pub fn cut_flows_when_gone(self) -> Self {
        self.statement(Statement::CutFlows)
    }

    /// Attaches a comment shown by `nft list ruleset` (at most 128 bytes).
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.comment = Some(text.into());
        self
    }

    // --- Verdicts -----------------------------------------------------------

    fn verdict(self, verdict: Verdict) -> Rule {
        Rule {
            matches: self.matches,
            statements: self.statements,
            verdict,
            comment: self.comment,
        }
    }

    /// Finishes the rule: accept.
    pub fn accept(self) -> Rule {
        self.verdict(Verdict::Accept)
    }

    /// Finishes the rule: drop silently.
    pub fn drop(self) -> Rule {
        self.verdict(Verdict::Drop)
    }

    /// Finishes the rule: reject (a TCP reset for TCP, ICMP port
    /// unreachable otherwise).
    pub fn reject(self) -> Rule {
        self.verdict(Verdict::Reject)
    }

    /// Finishes the rule: reject with this answer,
    /// `.reject_with(RejectWith::Icmpx(IcmpxReject::AdminProhibited))`.
    pub fn reject_with(self, with: RejectWith) -> Rule {
        self.verdict(Verdict::RejectWith(with))
    }

    /// Finishes the rule: jump to a regular chain of this policy, then come
    /// back.
    pub fn jump(self, chain: impl Into<String>) -> Rule {
        self.verdict(Verdict::Jump(chain.into()))
    }

    /// Finishes the rule: go to a regular chain of this policy without
    /// coming back.
    pub fn goto(self, chain: impl Into<String>) -> Rule {
        self.verdict(Verdict::Goto(chain.into()))
    }

    /// Finishes the rule: return to the calling chain.
    pub fn return_(self) -> Rule {
        self.verdict(Verdict::Return)
    }

    /// Finishes the rule: destination NAT to `target`, `10.0.0.5`,
    /// `10.0.0.5:8080` or `[fd00::5]:8080` (in a nat chain on prerouting or
    /// output).
    pub fn dnat(self, target: &str) -> Rule {
        self.dnat_to(NatTarget::parse(target))
    }

    /// Finishes the rule: destination NAT to `target`, which may be a range
    /// of addresses and ports, with flags.
    pub fn dnat_to(self, target: NatTarget) -> Rule {
        self.verdict(Verdict::Dnat(target))
    }

    /// Finishes the rule: source NAT to `target`, written as for
    /// [`RuleBuilder::dnat`] (in a nat chain on postrouting or input).
    pub fn snat(self, target: &str) -> Rule {
        self.snat_to(NatTarget::parse(target))
    }

    /// Finishes the rule: source NAT to `target`.
    pub fn snat_to(self, target: NatTarget) -> Rule {
        self.verdict(Verdict::Snat(target))
    }

    /// Finishes the rule: destination NAT to the address (and port) of
    /// `family` that `lookup` gives for the packet.
    ///
    /// Port forwards in one rule:
    ///
    /// ```
    /// use wasmwall_sdk::{Chain, Field, Hook, IpFamily, MapElement, MapLookup, Rule, Transport, Value};
    /// let forwards = MapLookup::inline(
    ///     [Field::Dport(Transport::Tcp)],
    ///     [
    ///         MapElement::new([Value::from(8080u16)], [Value::address("192.168.1.10"), Value::from(80u16)]),
    ///         MapElement::new([Value::from(2222u16)], [Value::address("192.168.1.11"), Value::from(22u16)]),
    ///     ],
    /// );
    /// let prerouting = Chain::nat("prerouting", Hook::Prerouting, -100)
    ///     .rule(Rule::new().iifname("wan0").dnat_map(IpFamily::V4, forwards));
    /// # let _ = prerouting;
    /// ```
    pub fn dnat_map(self, family: IpFamily, lookup: MapLookup) -> Rule {
        self.verdict(Verdict::DnatMap(NatMap { family, lookup }))
    }

    /// Finishes the rule: source NAT to the address (and port) of `family`
    /// that `lookup` gives for the packet.
    pub fn snat_map(self, family: IpFamily, lookup: MapLookup) -> Rule {
        self.verdict(Verdict::SnatMap(NatMap { family, lookup }))
    }

    /// Finishes the rule: masquerade behind the output interface's address
    /// (in a nat chain on postrouting).
    pub fn masquerade(self) -> Rule {
        self.verdict(Verdict::Masquerade)
    }

    /// Finishes the rule: masquerade, to these source ports
    /// (`.masquerade_to(1024..=65535)`).
    pub fn masquerade_to(self, ports: impl Into<PortRange>) -> Rule {
        self.verdict(Verdict::MasqueradeTo(ports.into()))
    }

    /// Finishes the rule: redirect to this machine, keeping the port (in a
    /// nat chain on prerouting or output).
    pub fn redirect(self) -> Rule {
        self.verdict(Verdict::Redirect)
    }

    /// Finishes the rule: redirect to this machine's port (or ports):
    /// `.redirect_to(3128)` for a transparent proxy.
    pub fn redirect_to(self, ports: impl Into<PortRange>) -> Rule {
        self.verdict(Verdict::RedirectTo(ports.into()))
    }

    /// Finishes the rule: the verdict `lookup` gives for the packet; a key
    /// the map lacks goes on with the next rule.
    ///
    /// One rule sends each interface to its zone's chain:
    ///
    /// ```
    /// use wasmwall_sdk::{Chain, Field, Hook, MapElement, MapLookup, MapVerdict, Rule, Value};
    /// let zones = MapLookup::inline(
    ///     [Field::Iifname],
    ///     [
    ///         MapElement::new([Value::name("lan0")], MapVerdict::Jump("lan_in".into())),
    ///         MapElement::new([Value::name("wan0")], MapVerdict::Jump("wan_in".into())),
    ///     ],
    /// );
    /// let input = Chain::filter("input", Hook::Input, 0).rule(Rule::new().vmap(zones));
    /// # let _ = input;
    /// ```
    pub fn vmap(self, lookup: MapLookup) -> Rule {
        self.verdict(Verdict::Vmap(lookup))
    }

    /// Finishes the rule without a decision: the packet goes on to the next
    /// rule. For a rule that only counts, logs or marks.
    pub fn continue_(self) -> Rule {
        self.verdict(Verdict::Continue)
    }
}

/// A test of one field against any of `values`.
fn one_field<V: Into<Value>>(field: Field, values: impl IntoIterator<Item = V>) -> Matcher {
    Matcher::Test {
        fields: vec![field],
        any_of: values.into_iter().map(|v| vec![v.into()]).collect(),
    }
}

fn set_test(fields: impl IntoIterator<Item = Field>, set: impl Into<String>) -> Matcher {
    Matcher::InSet {
        fields: fields.into_iter().collect(),
        set: set.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{IcmpxReject, MapElement, MapVerdict};

    #[test]
    fn the_builder_keeps_matches_and_statements_in_order_until_the_verdict() {
        let rule = Rule::new()
            .counter()
            .log("ssh ")
            .not_iifname("wan0")
            .tcp_sport(1024)
            .udp_dport(53)
            .mark_set(1)
            .comment("why")
            .reject();
        let matches: Vec<(&Matcher, bool)> = rule
            .matches()
            .iter()
            .map(|m| (m.matcher(), m.is_negated()))
            .collect();
        assert_eq!(
            matches,
            [
                (&Matcher::Iifname("wan0".into()), true),
                (
                    &Matcher::Sport {
                        protocol: Transport::Tcp,
                        first: 1024,
                        last: 1024
                    },
                    false
                ),
                (
                    &Matcher::Dport {
                        protocol: Transport::Udp,
                        first: 53,
                        last: 53
                    },
                    false
                ),
            ]
        );
        assert_eq!(
            rule.statements(),
            [
                Statement::Counter,
                Statement::Log(Log::with_prefix("ssh ")),
                Statement::Mark(MarkUpdate::Set(1)),
            ]
        );
        assert!(rule.has_counter());
        assert_eq!(rule.log_prefix(), Some("ssh "));
        assert_eq!(rule.comment(), Some("why"));
        assert_eq!(rule.verdict(), &Verdict::Reject);

        let plain = Rule::new().continue_();
        assert!(plain.matches().is_empty() && plain.statements().is_empty());
        assert!(!plain.has_counter());
        assert_eq!((plain.log_prefix(), plain.comment()), (None, None));
        assert_eq!(plain.verdict(), &Verdict::Continue);
    }

    #[test]
    fn statements_run_in_the_order_written() {
        let rule = Rule::new()
            .log("first ")
            .counter_named("c")
            .counter()
            .ct_mark_update(MarkUpdate::Masked {
                value: 0x10,
                mask: 0xf0,
            })
            .dscp_set(IpFamily::V6, Dscp::EF)
            .notrack()
            .ct_helper("ftp")
            .mss_clamp(1400)
            .mss_clamp_to_pmtu()
            .offload("ft")
            .log_with(Log::new())
            .continue_();
        assert_eq!(
            rule.statements(),
            [
                Statement::Log(Log::with_prefix("first ")),
                Statement::CounterNamed("c".into()),
                Statement::Counter,
                Statement::CtMark(MarkUpdate::Masked {
                    value: 0x10,
                    mask: 0xf0
                }),
                Statement::Dscp {
                    family: IpFamily::V6,
                    value: Dscp::EF
                },
                Statement::Notrack,
                Statement::CtHelper("ftp".into()),
                Statement::Mss(MssClamp::Size(1400)),
                Statement::Mss(MssClamp::PathMtu),
                Statement::Offload("ft".into()),
                Statement::Log(Log::new()),
            ]
        );
        // The first log's prefix, whatever comes after it.
        assert_eq!(rule.log_prefix(), Some("first "));
        // A named counter is not the rule's own.
        assert!(rule.has_counter());
        assert!(!Rule::new().counter_named("c").accept().has_counter());
    }

    #[test]
    fn the_shorthands_make_their_matchers() {
        let rule = Rule::new()
            .icmp_type(IcmpType::EchoRequest)
            .icmpv6_types([Icmpv6Type::NdNeighborSolicit, Icmpv6Type::Other(200)])
            .test(Field::Dport(Transport::Tcp), [22u16, 80])
            .not_test(Field::Iifname, [Value::name("eth*")])
            .not_in_set([Field::Saddr(IpFamily::V4)], "blocked")
            .limit(Rate::per_second(1))
            .limit_over(Rate::per_minute(2))
            .accept();
        let one = |field, values: &[u32]| Matcher::Test {
            fields: vec![field],
            any_of: values.iter().map(|&n| vec![Value::Number(n)]).collect(),
        };
        let got: Vec<(Matcher, bool)> = rule
            .matches()
            .iter()
            .map(|m| (m.matcher().clone(), m.is_negated()))
            .collect();
        assert_eq!(
            got,
            [
                (one(Field::IcmpType, &[8]), false),
                (one(Field::Icmpv6Type, &[135, 200]), false),
                (one(Field::Dport(Transport::Tcp), &[22, 80]), false),
                (
                    Matcher::Test {
                        fields: vec![Field::Iifname],
                        any_of: vec![vec![Value::name("eth*")]],
                    },
                    true
                ),
                (
                    Matcher::InSet {
                        fields: vec![Field::Saddr(IpFamily::V4)],
                        set: "blocked".into(),
                    },
                    true
                ),
                (
                    Matcher::Limit(RateLimit::within(Rate::per_second(1))),
                    false
                ),
                (Matcher::Limit(RateLimit::over(Rate::per_minute(2))), false),
            ]
        );
    }

    #[test]
    fn each_verdict_method_gives_its_verdict() {
        let target = |address: &str, port: Option<u16>| {
            let t = NatTarget::new(address);
            match port {
                Some(p) => t.with_ports(p),
                None => t,
            }
        };
        let zones = || {
            MapLookup::inline(
                [Field::Iifname],
                [MapElement::new([Value::name("lan0")], MapVerdict::Accept)],
            )
        };
        let forwards = || MapLookup::named([Field::Dport(Transport::Tcp)], "forwards");
        for (rule, verdict) in [
            (Rule::new().accept(), Verdict::Accept),
            (Rule::new().drop(), Verdict::Drop),
            (Rule::new().reject(), Verdict::Reject),
            (
                Rule::new().reject_with(RejectWith::Icmpx(IcmpxReject::AdminProhibited)),
                Verdict::RejectWith(RejectWith::Icmpx(IcmpxReject::AdminProhibited)),
            ),
            (Rule::new().jump("a"), Verdict::Jump("a".into())),
            (Rule::new().goto("b"), Verdict::Goto("b".into())),
            (Rule::new().return_(), Verdict::Return),
            (
                Rule::new().dnat("10.0.0.5:8080"),
                Verdict::Dnat(target("10.0.0.5", Some(8080))),
            ),
            (
                Rule::new().snat("[fd00::5]"),
                Verdict::Snat(target("fd00::5", None)),
            ),
            (
                Rule::new().dnat_to(NatTarget::range("10.0.0.5", "10.0.0.6")),
                Verdict::Dnat(NatTarget::range("10.0.0.5", "10.0.0.6")),
            ),
            (
                Rule::new().snat_to(target("10.0.0.7", Some(1))),
                Verdict::Snat(target("10.0.0.7", Some(1))),
            ),
            (
                Rule::new().dnat_map(IpFamily::V4, forwards()),
                Verdict::DnatMap(NatMap {
                    family: IpFamily::V4,
                    lookup: forwards(),
                }),
            ),
            (
                Rule::new().snat_map(IpFamily::V6, forwards()),
                Verdict::SnatMap(NatMap {
                    family: IpFamily::V6,
                    lookup: forwards(),
                }),
            ),
            (Rule::new().masquerade(), Verdict::Masquerade),
            (
                Rule::new().masquerade_to(1024..=65535),
                Verdict::MasqueradeTo(PortRange {
                    first: 1024,
                    last: 65535,
                }),
            ),
            (Rule::new().redirect(), Verdict::Redirect),
            (
                Rule::new().redirect_to(3128),
                Verdict::RedirectTo(PortRange {
                    first: 3128,
                    last: 3128,
                }),
            ),
            (Rule::new().vmap(zones()), Verdict::Vmap(zones())),
            (Rule::new().continue_(), Verdict::Continue),
        ] {
            assert_eq!(rule.verdict(), &verdict);
        }
    }
}
