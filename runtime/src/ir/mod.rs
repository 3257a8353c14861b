//! The validated rule IR: what a policy asked for, in the runtime's own
//! types, with addresses parsed and every reference checked. Produced only by
//! [`crate::validate`]; consumed by the planner and the kernel encoder.
//!
//! `Display` renders nft-like text. The text of a rule is also its canonical
//! form: its hash is the rule's identity in the kernel.

use std::fmt;

use sha2::{Digest, Sha256};

mod actions;
mod fields;
mod matches;
mod objects;
mod sets;
pub mod time;
mod values;

pub use actions::*;
pub use fields::*;
pub use matches::*;
pub use objects::*;
pub use sets::*;
pub use values::*;

/// Netfilter hook of a base chain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// Type of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChainType {
    Filter,
    Nat,
    /// Filter on output, and route again a packet whose mark, addresses
    /// or DSCP a rule changed.
    Route,
}

impl ChainType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// Verdict at the end of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChainPolicy {
    Accept,
    Drop,
}

impl ChainPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainPolicy::Accept => "accept",
            ChainPolicy::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BaseChain {
    pub hook: Hook,
    pub chain_type: ChainType,
    pub priority: i32,
    pub policy: ChainPolicy,
}

/// The kernel's standard priorities as nft names them, and the hooks each
/// name is shown on (none: every hook).
const STANDARD_PRIORITIES: [(&str, i32, Option<Hook>); 6] = [
    ("raw", -300, None),
    ("mangle", -150, None),
    ("dstnat", -100, Some(Hook::Prerouting)),
    ("filter", 0, None),
    ("security", 50, None),
    ("srcnat", 100, Some(Hook::Postrouting)),
];

impl BaseChain {
    /// The priority as nft lists it: `filter`, `dstnat + 10`, `mangle - 5`,
    /// or the number when no standard priority of this hook is within 10.
    pub fn priority_text(&self) -> String {
        for (name, value, hook) in STANDARD_PRIORITIES {
            if hook.is_some_and(|h| h != self.hook) {
                continue;
            }
            let offset = i64::from(self.priority) - i64::from(value);
            match offset {
                0 => return name.to_string(),
                1..=10 => return format!("{name} + {offset}"),
                -10..=-1 => return format!("{name} - {}", -offset),
                _ => {}
            }
        }
        self.priority.to_string()
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statements: Vec<Statement>,
    pub action: Action,
    pub comment: Option<String>,
    /// When the rule goes, the conntrack entries it matched are cut, even
    /// where another rule would still allow them (the WIT's `cut-flows`
    /// statement). Not part of the rule's text or identity: the kernel
    /// holds no trace of it.
    #[serde(default)]
    pub cut_flows: bool,
}

impl Rule {
    /// The family a rule must check first because its action needs one
    /// (NAT to an address) that no match of the rule implies: the kernel
    /// holds that check as the rule's first expression, and nft lists it.
    pub fn implied_nfproto(&self) -> Option<Family> {
        let (Action::Dnat(target) | Action::Snat(target)) = &self.action else {
            return None;
        };
        let family = target.family();
        // A match of the family checks it, or (in nft's listing) hides
        // the check: nft drops a family check that a later match implies.
        let covered = self.matches.iter().any(|m| m.family() == Some(family));
        // A DSCP change checks its family itself, where it is, and nft
        // lists that check as part of it.
        let checked_by_statement = self
            .statements
            .iter()
            .any(|s| matches!(s, Statement::Dscp { family: f, .. } if *f == family));
        (!covered && !checked_by_statement).then_some(family)
    }
}

/// The rule as nft-like text: its canonical form (its hash is its identity
/// in the kernel), with the chains and sets it refers to as named in the
/// rule.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(family) = self.implied_nfproto() {
            write!(f, "meta nfproto {} ", family.nfproto_name())?;
        }
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        for s in &self.statements {
            write!(f, "{s} ")?;
        }
        write!(f, "{}", self.action)?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

/// A sysctl request, with the key checked against the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sysctl {
    /// Dotted key as the policy wrote it, e.g. "net.ipv4.conf.lan0.route_localnet".
    pub key: String,
    pub value: String,
}

/// Everything one policy wants, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
    pub sets: Vec<NamedSet>,
    /// Counters, limits and conntrack helpers, in the order the policy
    /// gave them, kind by kind.
    pub objects: Vec<NamedObject>,
    pub flowtables: Vec<NamedFlowtable>,
    pub sysctls: Vec<Sysctl>,
}

impl Ruleset {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

/// A policy's validated ruleset, placed in the runtime's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRules {
    pub policy: String,
    pub rules: Ruleset,
}

/// Stable identity of a rule: the first 8 bytes of the SHA-256 of its
/// canonical text (which includes its comment and the kernel names of the
/// chains it jumps to), as 16 hex digits.
pub fn rule_hash(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    crate::text::hex(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_text_reads_like_nft() {
        let rule = Rule {
            matches: vec![
                Match::Iifname {
                    name: "lan0".into(),
                    negate: false,
                },
                Match::Addr {
                    dir: Dir::Source,
                    net: "192.168.0.9/32".parse().unwrap(),
                    negate: true,
                },
                Match::Port {
                    dir: Dir::Destination,
                    proto: Transport::Tcp,
                    first: 80,
                    last: 80,
                    negate: false,
                },
            ],
            statements: vec![Statement::Counter],
            action: Action::Dnat(NatTarget::to("127.0.0.1".parse().unwrap(), Some(4000))),
            comment: Some("seed".into()),
            cut_flows: false,
        };
        assert_eq!(
            rule.to_string(),
            "iifname \"lan0\" ip saddr != 192.168.0.9 tcp dport 80 counter dnat ip to 127.0.0.1:4000 comment \"seed\""
        );
    }

    #[test]
    fn strings_read_as_nft_lists_them() {
        let rule = Rule {
            matches: vec![Match::Oifname {
                name: "br-lan.1".into(),
                negate: true,
            }],
            statements: vec![Statement::Log {
                prefix: Some("in\\ #1; ".into()),
                level: None,
                limit: None,
            }],
            action: Action::Accept,
            comment: Some("a\\b {c}".into()),
            cut_flows: false,
        };
        assert_eq!(
            rule.to_string(),
            r#"oifname != "br-lan.1" log prefix "in\ #1; " accept comment "a\b {c}""#
        );
    }

    /// As nft 1.0.6 lists each (measured with `nft list ruleset`).
    #[test]
    fn priorities_read_as_nft_lists_them() {
        let text = |hook, chain_type, priority| {
            BaseChain {
                hook,
                chain_type,
                priority,
                policy: ChainPolicy::Accept,
            }
            .priority_text()
        };
        let (f, n) = (ChainType::Filter, ChainType::Nat);
        for (hook, chain_type, priority, listed) in [
            (Hook::Input, f, 0, "filter"),
            (Hook::Input, f, 5, "filter + 5"),
            (Hook::Input, f, -5, "filter - 5"),
            (Hook::Input, f, 10, "filter + 10"),
            (Hook::Input, f, 11, "11"),
            (Hook::Input, f, -11, "-11"),
            (Hook::Input, f, -100, "-100"),
            (Hook::Prerouting, n, -100, "dstnat"),
            (Hook::Prerouting, n, -90, "dstnat + 10"),
            (Hook::Prerouting, f, -100, "dstnat"),
            (Hook::Prerouting, n, 100, "100"),
            (Hook::Output, n, -100, "-100"),
            (Hook::Postrouting, n, 100, "srcnat"),
            (Hook::Postrouting, n, 110, "srcnat + 10"),
            (Hook::Postrouting, n, 111, "111"),
            (Hook::Postrouting, n, -100, "-100"),
            (Hook::Input, n, 100, "100"),
            (Hook::Prerouting, f, -300, "raw"),
            (Hook::Forward, f, -150, "mangle"),
            (Hook::Forward, f, -160, "mangle - 10"),
            (Hook::Forward, f, 50, "security"),
            (Hook::Forward, f, 45, "security - 5"),
            (Hook::Forward, f, 25, "25"),
            (Hook::Forward, f, -1000, "-1000"),
            (Hook::Forward, f, i32::MIN, "-2147483648"),
        ] {
            assert_eq!(
                text(hook, chain_type, priority),
                listed,
                "{priority} on {hook:?}"
            );
        }
    }

    #[test]
    fn hash_is_stable_and_distinguishes() {
        assert_eq!(rule_hash("accept"), rule_hash("accept"));
        assert_ne!(rule_hash("accept"), rule_hash("drop"));
        assert_eq!(rule_hash("accept").len(), 16);
        // Pinned: the hash is stored in the kernel and must not change
        // between releases.
        assert_eq!(rule_hash("accept"), "c125d0397b605657");
    }
}
