//! Rules: [`RuleBuilder`] collects a rule's matches and statements, and only
//! one of its verdict methods turns it into a [`Rule`], so a rule without a
//! verdict cannot be written.

use std::fmt;

/// Transport protocol of a port match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Shows the protocol as nft writes it: `tcp`, `udp`.
impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// Layer-4 protocol of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum L4Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (IPv4).
    Icmp,
    /// ICMPv6.
    Icmpv6,
}

/// Connection-tracking state of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// A connection that has seen traffic both ways.
    Established,
    /// A connection related to an established one (an ICMP error, FTP data).
    Related,
    /// A packet conntrack cannot place.
    Invalid,
    /// A packet exempted from connection tracking.
    Untracked,
}

/// One property a packet is tested for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matcher {
    /// Input interface name, e.g. "lan0".
    Iifname(String),
    /// Output interface name.
    Oifname(String),
    /// Source address or prefix, IPv4 or IPv6: "192.168.0.2",
    /// "192.168.0.0/24", "fd00::/8". Host bits of a prefix must be zero.
    Saddr(String),
    /// Destination address or prefix, as [`Matcher::Saddr`].
    Daddr(String),
    /// Layer-4 protocol.
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
}

/// A matcher of a rule, possibly negated. The runtime refuses a negated
/// port range, ct-state list or set membership.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Where a NAT verdict translates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatTarget {
    pub(crate) address: String,
    pub(crate) port: Option<u16>,
}

impl NatTarget {
    /// Splits "addr", "addr:port", "[v6]" or "[v6]:port". A malformed port
    /// stays in the address, where the runtime's validation reports it.
    fn parse(target: &str) -> NatTarget {
        let whole = || NatTarget {
            address: target.to_string(),
            port: None,
        };
        let (address, port) = if let Some(rest) = target.strip_prefix('[') {
            match rest.split_once(']') {
                Some((addr, "")) => (addr, None),
                Some((addr, tail)) => match tail.strip_prefix(':') {
                    Some(p) => (addr, Some(p)),
                    None => return whole(),
                },
                None => return whole(),
            }
        } else if let Some((addr, p)) = target.split_once(':')
            && !p.contains(':')
        {
            (addr, Some(p))
        } else {
            (target, None)
        };
        match port.map(str::parse::<u16>) {
            None => NatTarget {
                address: address.to_string(),
                port: None,
            },
            Some(Ok(p)) => NatTarget {
                address: address.to_string(),
                port: Some(p),
            },
            Some(Err(_)) => whole(),
        }
    }

    /// The address to translate to, IPv4 or IPv6 (without brackets).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The port to translate to, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// What a rule does with a packet that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Let the packet through this base chain.
    Accept,
    /// Discard the packet silently.
    Drop,
    /// Discard the packet and tell the sender.
    Reject,
    /// Continue in the named regular chain, then come back.
    Jump(String),
    /// Continue in the named regular chain and do not come back.
    Goto(String),
    /// Return to the calling chain.
    Return,
    /// Rewrite the destination.
    Dnat(NatTarget),
    /// Rewrite the source.
    Snat(NatTarget),
    /// Rewrite the source to the output interface's address.
    Masquerade,
    /// Go on with the next rule.
    Continue,
}

/// A finished rule: its matches, statements and verdict. Made by
/// [`Rule::new`] and one of [`RuleBuilder`]'s verdict methods; read by a
/// policy's tests through the getters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(crate) matches: Vec<Match>,
    pub(crate) verdict: Verdict,
    pub(crate) counter: bool,
    pub(crate) log_prefix: Option<String>,
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
            counter: false,
            log_prefix: None,
            comment: None,
        }
    }

    /// The matches, all of which must hold, in order.
    pub fn matches(&self) -> &[Match] {
        &self.matches
    }

    /// What the rule does with a packet that matches.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Whether the rule counts the packets and bytes it matches.
    pub fn has_counter(&self) -> bool {
        self.counter
    }

    /// The prefix of the kernel log line for each packet matched, if any.
    pub fn log_prefix(&self) -> Option<&str> {
        self.log_prefix.as_deref()
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a rule needs a verdict (accept, drop, ...) to become a Rule"]
pub struct RuleBuilder {
    matches: Vec<Match>,
    counter: bool,
    log_prefix: Option<String>,
    comment: Option<String>,
}

impl RuleBuilder {
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

    /// Layer-4 protocol.
    pub fn l4proto(self, protocol: L4Protocol) -> Self {
        self.matching(Matcher::L4proto(protocol))
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

    /// Counts matching packets and bytes.
    pub fn counter(mut self) -> Self {
        self.counter = true;
        self
    }

    /// Logs matching packets to the kernel log with `prefix` (at most 127
    /// bytes).
    pub fn log(mut self, prefix: impl Into<String>) -> Self {
        self.log_prefix = Some(prefix.into());
        self
    }

    /// Attaches a comment shown by `nft list ruleset` (at most 128 bytes).
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.comment = Some(text.into());
        self
    }

    fn verdict(self, verdict: Verdict) -> Rule {
        Rule {
            matches: self.matches,
            verdict,
            counter: self.counter,
            log_prefix: self.log_prefix,
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
        self.verdict(Verdict::Dnat(NatTarget::parse(target)))
    }

    /// Finishes the rule: source NAT to `target`, written as for
    /// [`RuleBuilder::dnat`] (in a nat chain on postrouting or input).
    pub fn snat(self, target: &str) -> Rule {
        self.verdict(Verdict::Snat(NatTarget::parse(target)))
    }

    /// Finishes the rule: masquerade behind the output interface's address
    /// (in a nat chain on postrouting).
    pub fn masquerade(self) -> Rule {
        self.verdict(Verdict::Masquerade)
    }

    /// Finishes the rule without a decision: the packet goes on to the next
    /// rule. For a rule that only counts or logs.
    pub fn continue_(self) -> Rule {
        self.verdict(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_target_forms() {
        let parsed = |text| {
            let t = NatTarget::parse(text);
            (t.address().to_string(), t.port())
        };
        assert_eq!(parsed("127.0.0.1:4000"), ("127.0.0.1".into(), Some(4000)));
        assert_eq!(parsed("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(parsed("[fd00::1]:8080"), ("fd00::1".into(), Some(8080)));
        assert_eq!(parsed("[fd00::1]"), ("fd00::1".into(), None));
        assert_eq!(parsed("fd00::1"), ("fd00::1".into(), None));
        // An invalid port stays in the address for the runtime to reject.
        assert_eq!(parsed("10.0.0.1:99999"), ("10.0.0.1:99999".into(), None));
        assert_eq!(parsed("[fd00::1]x"), ("[fd00::1]x".into(), None));
    }

    #[test]
    fn the_builder_keeps_matches_in_order_and_statements_until_the_verdict() {
        let rule = Rule::new()
            .counter()
            .log("ssh ")
            .not_iifname("wan0")
            .tcp_sport(1024)
            .udp_dport(53)
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
        assert!(rule.has_counter());
        assert_eq!(rule.log_prefix(), Some("ssh "));
        assert_eq!(rule.comment(), Some("why"));
        assert_eq!(rule.verdict(), &Verdict::Reject);

        let plain = Rule::new().continue_();
        assert!(plain.matches().is_empty());
        assert!(!plain.has_counter());
        assert_eq!((plain.log_prefix(), plain.comment()), (None, None));
        assert_eq!(plain.verdict(), &Verdict::Continue);
    }

    #[test]
    fn each_verdict_method_gives_its_verdict() {
        let target = |address: &str, port| NatTarget {
            address: address.into(),
            port,
        };
        for (rule, verdict) in [
            (Rule::new().accept(), Verdict::Accept),
            (Rule::new().drop(), Verdict::Drop),
            (Rule::new().reject(), Verdict::Reject),
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
            (Rule::new().masquerade(), Verdict::Masquerade),
            (Rule::new().continue_(), Verdict::Continue),
        ] {
            assert_eq!(rule.verdict(), &verdict);
        }
    }
}
