//! A rule's matches: interfaces (with wildcards), addresses, protocols and
//! families, ports, ct states, tests of fields against values and inline
//! sets, named-set lookups, masks, TCP flags, ct status, route lookups and
//! time, each checked and converted to the IR, with what they imply about
//! the packets (`RuleFacts`) for the checks of the rest of the rule; and
//! the matches made to read as nft lists them ([`as_listed`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::Ctx;
use super::actions::convert_rate;
use super::graph::Reach;
use super::rules::RuleFacts;
use super::time::{self, LocalTime};
use super::values::{self, Allow, prefix, written};
use crate::bindings::wit;
use crate::fields;
use crate::ir::{
    Against, CT_STATUS, CtStates, Dir, Element, Family, FibCheck, Field, Header, Hook, InlineSet,
    Key, KeyType, L4Proto, Match, TCP_FLAGS, Transport, Value, bit_names, fields_text, key_of,
    merge_intervals,
};
use crate::text::quote;

/// Bytes a key read by a test or lookup may take: the kernel's registers
/// hold 64 (NFT_REG32_COUNT words), and a set's key is at most that.
pub const KEY_BYTES_MAX: usize = 64;

/// A set the policy declares, as rules may use it.
#[derive(Debug, Clone)]
pub(super) struct DeclaredSet {
    pub key: Key,
    pub dynamic: bool,
    pub timeout: bool,
}

/// What rules may refer to by name: the sets and limit objects of the
/// policy's answer (as declared: their own problems are reported where
/// they are declared).
#[derive(Debug, Default)]
pub(super) struct Declared<'a> {
    pub sets: HashMap<&'a str, DeclaredSet>,
    pub limits: HashSet<&'a str>,
}

impl<'a> Declared<'a> {
    pub(super) fn of(ruleset: &'a wit::Ruleset) -> Declared<'a> {
        Declared {
            sets: ruleset
                .sets
                .iter()
                .map(|s| {
                    let set = DeclaredSet {
                        key: Key(s.key.iter().map(|t| values::key_type(*t)).collect()),
                        dynamic: s.dynamic,
                        timeout: s.timeout.is_some(),
                    };
                    (s.name.as_str(), set)
                })
                .collect(),
            limits: ruleset.limits.iter().map(|l| l.name.as_str()).collect(),
        }
    }
}

/// What converting a match needs besides the match and its chain's
/// hooks: the names it may refer to and the local time zone.
pub(super) struct Env<'a, 'b> {
    pub declared: &'b Declared<'a>,
    pub local_time: LocalTime,
}

fn transport(t: wit::Transport) -> Transport {
    match t {
        wit::Transport::Tcp => Transport::Tcp,
        wit::Transport::Udp => Transport::Udp,
        wit::Transport::Sctp => Transport::Sctp,
    }
}

pub(super) fn family(f: wit::IpFamily) -> Family {
    match f {
        wit::IpFamily::Ipv4 => Family::V4,
        wit::IpFamily::Ipv6 => Family::V6,
    }
}

pub(super) fn field(f: &wit::Field) -> Field {
    match f {
        wit::Field::Iifname => Field::Iifname,
        wit::Field::Oifname => Field::Oifname,
        wit::Field::L4proto => Field::L4proto,
        wit::Field::Saddr(fam) => Field::Saddr(family(*fam)),
        wit::Field::Daddr(fam) => Field::Daddr(family(*fam)),
        wit::Field::Sport(t) => Field::Sport(transport(*t)),
        wit::Field::Dport(t) => Field::Dport(transport(*t)),
        wit::Field::IcmpType => Field::IcmpType,
        wit::Field::IcmpCode => Field::IcmpCode,
        wit::Field::Icmpv6Type => Field::Icmpv6Type,
        wit::Field::Icmpv6Code => Field::Icmpv6Code,
        wit::Field::Mark => Field::Mark,
        wit::Field::CtMark => Field::CtMark,
        wit::Field::Dscp(fam) => Field::Dscp(family(*fam)),
        wit::Field::EtherSaddr => Field::EtherSaddr,
    }
}

fn l4_protocol(p: wit::L4Protocol) -> L4Proto {
    let number = match p {
        wit::L4Protocol::Tcp => libc::IPPROTO_TCP,
        wit::L4Protocol::Udp => libc::IPPROTO_UDP,
        wit::L4Protocol::Icmp => libc::IPPROTO_ICMP,
        wit::L4Protocol::Icmpv6 => libc::IPPROTO_ICMPV6,
        wit::L4Protocol::Igmp => libc::IPPROTO_IGMP,
        wit::L4Protocol::Gre => libc::IPPROTO_GRE,
        wit::L4Protocol::Esp => libc::IPPROTO_ESP,
        wit::L4Protocol::Ah => libc::IPPROTO_AH,
        wit::L4Protocol::Sctp => libc::IPPROTO_SCTP,
        wit::L4Protocol::Udplite => libc::IPPROTO_UDPLITE,
    };
    L4Proto::from_number(number as u8)
}

/// An interface name a rule compares with: a name, or a wildcard of one
/// trailing '*' after at least one character.
fn check_ifname(ctx: &mut Ctx, at: &str, name: &str) -> bool {
    let problem = match name.strip_suffix('*') {
        Some("") => Some("is only a '*'; a wildcard needs at least one character before it".into()),
        Some(_) if name.len() >= libc::IFNAMSIZ => Some(format!(
            "is {} bytes long; a wildcard is at most {} bytes with its '*'",
            name.len(),
            libc::IFNAMSIZ - 1
        )),
        Some(stem) => fields::match_ifname_problem(stem),
        None => fields::match_ifname_problem(name),
    };
    if let Some(p) = &problem {
        ctx.err(at, format!("interface name {} {p}", quote(name)));
    }
    problem.is_none()
}

/// Records what the match implies about the packets: the family and the
/// layer-4 protocol its fields are of, or that it checks.
fn note(ctx: &mut Ctx, at: &str, facts: &mut RuleFacts, m: &Match) {
    let mut families: Vec<Family> = m.reads().iter().filter_map(|r| r.family).collect();
    let mut protocols: Vec<L4Proto> = m.reads().iter().filter_map(|r| r.l4).collect();
    match m {
        Match::Nfproto {
            family,
            negate: false,
        } => families.push(*family),
        Match::L4Proto {
            proto,
            negate: false,
        } => protocols.push(*proto),
        _ => {}
    }
    for f in families {
        match facts.family {
            Some(existing) if existing != f => {
                ctx.err(
                    at,
                    "mixes IPv4 and IPv6: one rule matches one address family",
                );
                return;
            }
            _ => facts.family = Some(f),
        }
    }
    for p in protocols {
        match facts.l4 {
            Some(existing) if existing != p => {
                ctx.err(
                    at,
                    format!("matches protocol {p} but the rule already matches {existing}"),
                );
                return;
            }
            _ => facts.l4 = Some(p),
        }
    }
}

pub(super) fn convert_match(
    ctx: &mut Ctx,
    at: &str,
    m: &wit::MatchExpr,
    env: &Env,
    hooks: &BTreeSet<Reach>,
    facts: &mut RuleFacts,
) -> Option<Match> {
    let before = ctx.problems.len();
    let converted = convert(ctx, at, m, env, hooks);
    if let Some(c) = &converted {
        note(ctx, at, facts, c);
    }
    converted.filter(|_| ctx.problems.len() == before)
}

/// Refuses a negation where the contract does; true when there is none.
fn not_negated(ctx: &mut Ctx, at: &str, negate: bool, what: &str) -> bool {
    if negate {
        ctx.err(at, format!("{what} cannot be negated"));
    }
    !negate
}

fn convert(
    ctx: &mut Ctx,
    at: &str,
    m: &wit::MatchExpr,
    env: &Env,
    hooks: &BTreeSet<Reach>,
) -> Option<Match> {
    let negate = m.negate;
    let declared = env.declared;
    let ports = |ctx: &mut Ctx, dir: Dir, p: &wit::Ports| {
        let mut ok = true;
        if p.first == 0 || p.last == 0 {
            ctx.err(at, "port 0 is not a valid port (use 1-65535)");
            ok = false;
        }
        if p.last < p.first {
            ctx.err(
                at,
                format!("port range {}-{} is empty (last < first)", p.first, p.last),
            );
            ok = false;
        }
        if negate && p.first != p.last {
            ctx.err(at, "a port range cannot be negated");
            ok = false;
        }
        ok.then_some(Match::Port {
            dir,
            proto: transport(p.protocol),
            first: p.first,
            last: p.last,
            negate,
        })
    };
    match &m.matcher {
        wit::Matcher::Iifname(name) => check_ifname(ctx, at, name).then(|| Match::Iifname {
            name: name.clone(),
            negate,
        }),
        wit::Matcher::Oifname(name) => check_ifname(ctx, at, name).then(|| Match::Oifname {
            name: name.clone(),
            negate,
        }),
        wit::Matcher::Saddr(text) | wit::Matcher::Daddr(text) => {
            let dir = if matches!(m.matcher, wit::Matcher::Saddr(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            match prefix(text) {
                Ok(net) => Some(Match::Addr { dir, net, negate }),
                Err(e) => {
                    ctx.err(at, e);
                    None
                }
            }
        }
        wit::Matcher::L4proto(p) => Some(Match::L4Proto {
            proto: l4_protocol(*p),
            negate,
        }),
        wit::Matcher::L4protoNumber(n) => Some(Match::L4Proto {
            proto: L4Proto::from_number(*n),
            negate,
        }),
        wit::Matcher::Sport(p) => ports(ctx, Dir::Source, p),
        wit::Matcher::Dport(p) => ports(ctx, Dir::Destination, p),
        wit::Matcher::CtState(states) => {
            not_negated(ctx, at, negate, "a ct-state match");
            if states.is_empty() {
                ctx.err(at, "ct-state match with no state never matches");
                return None;
            }
            let bits = states.iter().fold(0, |acc, s| {
                acc | match s {
                    wit::CtState::New => CtStates::NEW,
                    wit::CtState::Established => CtStates::ESTABLISHED,
                    wit::CtState::Related => CtStates::RELATED,
                    wit::CtState::Invalid => CtStates::INVALID,
                    wit::CtState::Untracked => CtStates::UNTRACKED,
                }
            });
            (!negate).then_some(Match::CtState(CtStates(bits)))
        }
        wit::Matcher::SaddrIn(set) | wit::Matcher::DaddrIn(set) => {
            not_negated(ctx, at, negate, "a set membership");
            let dir = if matches!(m.matcher, wit::Matcher::SaddrIn(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            let family = match declared.sets.get(set.as_str()).map(|s| s.key.0.as_slice()) {
                Some([t @ (KeyType::Ipv4Addr | KeyType::Ipv6Addr)]) => t.family()?,
                Some([KeyType::InetService]) => {
                    ctx.err(at, format!("set {} holds ports, not addresses", quote(set)));
                    return None;
                }
                Some(_) => {
                    ctx.err(at, format!("set {} does not hold addresses", quote(set)));
                    return None;
                }
                None => {
                    ctx.err(at, format!("unknown set {}", quote(set)));
                    return None;
                }
            };
            (!negate).then(|| Match::AddrInSet {
                dir,
                family,
                set: set.clone(),
            })
        }
        wit::Matcher::SportIn(r) | wit::Matcher::DportIn(r) => {
            not_negated(ctx, at, negate, "a set membership");
            let dir = if matches!(m.matcher, wit::Matcher::SportIn(_)) {
                Dir::Source
            } else {
                Dir::Destination
            };
            match declared
                .sets
                .get(r.set.as_str())
                .map(|s| s.key.0.as_slice())
            {
                Some([KeyType::InetService]) => {}
                Some([KeyType::Ipv4Addr | KeyType::Ipv6Addr]) => {
                    ctx.err(
                        at,
                        format!("set {} holds addresses, not ports", quote(&r.set)),
                    );
                    return None;
                }
                Some(_) => {
                    ctx.err(at, format!("set {} does not hold ports", quote(&r.set)));
                    return None;
                }
                None => {
                    ctx.err(at, format!("unknown set {}", quote(&r.set)));
                    return None;
                }
            }
            (!negate).then(|| Match::PortInSet {
                dir,
                proto: transport(r.protocol),
                set: r.set.clone(),
            })
        }
        wit::Matcher::Nfproto(f) => Some(Match::Nfproto {
            family: family(*f),
            negate,
        }),
        wit::Matcher::Test(t) => convert_test(ctx, at, t, negate),
        wit::Matcher::InSet(t) => {
            let fields = fields_of(ctx, at, &t.fields)?;
            let Some(set) = declared.sets.get(t.set.as_str()) else {
                ctx.err(at, format!("unknown set {}", quote(&t.set)));
                return None;
            };
            let key = key_of(&fields);
            if set.key != key {
                ctx.err(
                    at,
                    format!(
                        "set {} has key {}; {} is {key}",
                        quote(&t.set),
                        set.key,
                        fields_text(&fields)
                    ),
                );
                return None;
            }
            Some(Match::InSet {
                fields,
                set: t.set.clone(),
                negate,
            })
        }
        wit::Matcher::Masked(t) => convert_masked(ctx, at, t, negate),
        wit::Matcher::TcpFlags(t) => {
            let (flags, mask) = (tcp_flags(t.flags), tcp_flags(t.mask));
            if mask == 0 {
                ctx.err(at, "a TCP flags test with an empty mask tests nothing");
                return None;
            }
            if flags & !mask != 0 {
                ctx.err(
                    at,
                    format!(
                        "flags {} are outside the mask {}: the test never matches",
                        bit_names(&TCP_FLAGS, flags & !mask),
                        bit_names(&TCP_FLAGS, mask)
                    ),
                );
                return None;
            }
            Some(Match::TcpFlags {
                flags,
                mask,
                negate,
            })
        }
        wit::Matcher::CtStatus(status) => {
            let bits = ct_status(*status);
            if bits == 0 {
                ctx.err(at, "a ct-status match with no status bit never matches");
                return None;
            }
            Some(Match::CtStatus { bits, negate })
        }
        wit::Matcher::Fib(check) => {
            let check = match check {
                wit::FibCheck::ReversePathMissing => FibCheck::ReversePathMissing,
                wit::FibCheck::ReversePathMissingMark => FibCheck::ReversePathMissingMark,
                wit::FibCheck::DaddrLocal => FibCheck::DaddrLocal,
            };
            check_fib_hooks(ctx, at, check, hooks);
            Some(Match::Fib { check, negate })
        }
        wit::Matcher::Hour(t) => match time::hour_range(&t.from, &t.to, negate, env.local_time) {
            Ok(range) => Some(Match::Hour(range)),
            Err(e) => {
                ctx.err(at, e);
                None
            }
        },
        wit::Matcher::Day(days) => {
            not_negated(ctx, at, negate, "a day test");
            if days.is_empty() {
                ctx.err(at, "a day test with no day never matches");
                return None;
            }
            let days: BTreeSet<u8> = days.iter().map(|d| weekday(*d)).collect();
            (!negate).then(|| Match::Day(days.into_iter().collect()))
        }
        wit::Matcher::Date(d) => {
            not_negated(ctx, at, negate, "a date test");
            match time::date_range(&d.from, &d.to, env.local_time) {
                Ok(range) => (!negate).then_some(Match::Date(range)),
                Err(e) => {
                    ctx.err(at, e);
                    None
                }
            }
        }
        wit::Matcher::Limit(l) => {
            let ok = not_negated(ctx, at, negate, "a rate limit (use `over`)");
            let rate = convert_rate(ctx, at, "the limit's", &l.rate)?;
            ok.then_some(Match::Limit { rate, over: l.over })
        }
        wit::Matcher::LimitNamed(name) => {
            let ok = not_negated(ctx, at, negate, "a rate limit (use `over`)");
            if !declared.limits.contains(name.as_str()) {
                ctx.err(at, format!("unknown limit {}", quote(name)));
                return None;
            }
            ok.then(|| Match::LimitNamed(name.clone()))
        }
        wit::Matcher::KeyedLimit(l) => convert_keyed_limit(ctx, at, l, negate, declared),
    }
}

/// A limit per key: the fields, a dynamic set with a timeout and their
/// key to keep the limits in, and the rate.
fn convert_keyed_limit(
    ctx: &mut Ctx,
    at: &str,
    l: &wit::KeyedLimit,
    negate: bool,
    declared: &Declared,
) -> Option<Match> {
    let ok = not_negated(ctx, at, negate, "a rate limit (use `over`)");
    let fields = fields_of(ctx, at, &l.fields)?;
    let rate = convert_rate(ctx, at, "the limit's", &l.limit.rate);
    let Some(set) = declared.sets.get(l.set.as_str()) else {
        ctx.err(at, format!("unknown set {}", quote(&l.set)));
        return None;
    };
    let key = key_of(&fields);
    let mut problems = Vec::new();
    if !set.dynamic {
        problems.push("is not dynamic (rules cannot add to it)".to_string());
    }
    if !set.timeout {
        problems.push("has no timeout (its limits would never be forgotten)".to_string());
    }
    if set.key != key {
        problems.push(format!(
            "has key {}; {} is {key}",
            set.key,
            fields_text(&fields)
        ));
    }
    if !problems.is_empty() {
        ctx.err(
            at,
            format!(
                "a keyed limit keeps its limits in set {}, which {}",
                quote(&l.set),
                problems.join(" and ")
            ),
        );
        return None;
    }
    ok.then_some(Match::KeyedLimit {
        fields,
        set: l.set.clone(),
        rate: rate?,
        over: l.limit.over,
    })
}

fn weekday(d: wit::Weekday) -> u8 {
    match d {
        wit::Weekday::Sunday => 0,
        wit::Weekday::Monday => 1,
        wit::Weekday::Tuesday => 2,
        wit::Weekday::Wednesday => 3,
        wit::Weekday::Thursday => 4,
        wit::Weekday::Friday => 5,
        wit::Weekday::Saturday => 6,
    }
}

/// The kernel's bits of a WIT flags value: `flags` are the WIT flags in
/// the order of `table`'s bits, `has` whether the value holds one.
fn kernel_bits<W: Copy, B: Copy + Default + std::ops::BitOr<Output = B>>(
    flags: &[W],
    table: &[(B, &str)],
    has: impl Fn(W) -> bool,
) -> B {
    flags
        .iter()
        .zip(table)
        .filter(|(flag, _)| has(**flag))
        .fold(B::default(), |acc, (_, (bit, _))| acc | *bit)
}

fn tcp_flags(f: wit::TcpFlags) -> u8 {
    use wit::TcpFlags as F;
    let all = [
        F::FIN,
        F::SYN,
        F::RST,
        F::PSH,
        F::ACK,
        F::URG,
        F::ECN,
        F::CWR,
    ];
    kernel_bits(&all, &TCP_FLAGS, |flag| f.contains(flag))
}

fn ct_status(s: wit::CtStatus) -> u32 {
    use wit::CtStatus as S;
    let all = [
        S::EXPECTED,
        S::SEEN_REPLY,
        S::ASSURED,
        S::CONFIRMED,
        S::SNAT,
        S::DNAT,
        S::DYING,
    ];
    kernel_bits(&all, &CT_STATUS, |flag| s.contains(flag))
}

/// The hooks the kernel lets each route lookup run on (nft_fib_validate):
/// a lookup of the output interface only where the packet has come in.
fn check_fib_hooks(ctx: &mut Ctx, at: &str, check: FibCheck, hooks: &BTreeSet<Reach>) {
    let allowed: &[Hook] = match check {
        FibCheck::ReversePathMissing | FibCheck::ReversePathMissingMark => {
            &[Hook::Prerouting, Hook::Input, Hook::Forward]
        }
        FibCheck::DaddrLocal => return,
    };
    let bad: BTreeSet<&str> = hooks
        .iter()
        .filter(|r| !allowed.contains(&r.hook))
        .map(|r| r.hook.as_str())
        .collect();
    if !bad.is_empty() {
        let bad: Vec<&str> = bad.into_iter().collect();
        ctx.err(
            at,
            format!(
                "a reverse-path check works only on the prerouting, input and forward hooks; this chain runs on {}",
                bad.join(", ")
            ),
        );
    }
}

/// The fields of a test or lookup: at least one, of one family, and
/// together within the kernel's registers.
fn fields_of(ctx: &mut Ctx, at: &str, fields: &[wit::Field]) -> Option<Vec<Field>> {
    if fields.is_empty() {
        ctx.err(at, "names no field");
        return None;
    }
    let fields: Vec<Field> = fields.iter().map(field).collect();
    if fields.len() > 1 && fields.iter().any(|f| matches!(f, Field::Dscp(_))) {
        ctx.err(
            at,
            format!(
                "{}: a DSCP cannot be part of a concatenation (nft 1.0.6 lists it there as another test, and an IPv6 one with a wrong value); test it on its own",
                fields_text(&fields)
            ),
        );
        return None;
    }
    let key = key_of(&fields);
    if key.len() > KEY_BYTES_MAX {
        ctx.err(
            at,
            format!(
                "{} takes {} bytes; the kernel's registers hold at most {KEY_BYTES_MAX}",
                fields_text(&fields),
                key.len()
            ),
        );
        return None;
    }
    Some(fields)
}

fn is_ifname(f: Field) -> bool {
    matches!(f, Field::Iifname | Field::Oifname)
}

/// A test: one value of one field is a comparison (an interface name, a
/// protocol by number, a port, an address, a prefix or a range), several
/// values or several fields an inline set.
fn convert_test(ctx: &mut Ctx, at: &str, t: &wit::Test, negate: bool) -> Option<Match> {
    let fields = fields_of(ctx, at, &t.fields)?;
    let key = key_of(&fields);
    match (fields.as_slice(), t.any_of.as_slice()) {
        (_, []) => {
            ctx.err(at, "a test with no value never matches");
            None
        }
        ([one], [values]) => {
            let allow = Allow {
                intervals: true,
                wildcard: is_ifname(*one),
            };
            let Element(mut parts) = values::element(ctx, at, &key, values, allow)?;
            let value = parts.pop()?;
            if negate && matches!(value, Value::Range(..) | Value::AddrRange(..)) {
                ctx.err(
                    at,
                    "a range cannot be negated (the contract refuses it; test the values outside it)",
                );
                return None;
            }
            Some(match (one, value) {
                (Field::Iifname, Value::Name(name)) => Match::Iifname { name, negate },
                (Field::Oifname, Value::Name(name)) => Match::Oifname { name, negate },
                (Field::L4proto, Value::Number(n)) => Match::L4Proto {
                    proto: L4Proto::from_number(n as u8),
                    negate,
                },
                (_, value) => Match::Test {
                    fields,
                    against: Against::One(value),
                    negate,
                },
            })
        }
        (_, elements) => {
            let allow = Allow {
                intervals: true,
                wildcard: false,
            };
            let before = ctx.problems.len();
            let mut converted = Vec::with_capacity(elements.len());
            for (i, values) in elements.iter().enumerate() {
                let at = format!("{at} value {}", i + 1);
                if let Some(e) = values::element(ctx, &at, &key, values, allow) {
                    converted.push(e);
                }
            }
            if ctx.problems.len() != before {
                return None;
            }
            let set = inline_set(ctx, at, &key, converted)?;
            Some(Match::Test {
                fields,
                against: Against::Set(set),
                negate,
            })
        }
    }
}

/// Elements of an inline set of `key`, as nft sends and lists them:
/// one-part intervals merged, the others sorted as nft lists them and
/// without duplicates; overlapping intervals of a concatenation, which the
/// kernel refuses, named.
fn inline_set(ctx: &mut Ctx, at: &str, key: &Key, elements: Vec<Element>) -> Option<InlineSet> {
    let intervals = elements.iter().any(Element::is_interval);
    let mut elements = if intervals && !key.is_concatenation() {
        let values: Vec<Value> = elements
            .into_iter()
            .filter_map(|e| e.0.into_iter().next())
            .collect();
        merge_intervals(key.0[0], &values)
            .into_iter()
            .map(|v| Element(vec![v]))
            .collect()
    } else {
        crate::ir::listing_order(key, elements)
    };
    elements.dedup();
    if intervals && key.is_concatenation() {
        for (i, a) in elements.iter().enumerate() {
            if let Some(b) = elements[i + 1..].iter().find(|b| overlap(a, b)) {
                ctx.err(
                    at,
                    format!(
                        "values {} and {} overlap; the kernel refuses overlapping intervals in a concatenation",
                        a.text(key),
                        b.text(key)
                    ),
                );
                return None;
            }
        }
    }
    Some(InlineSet {
        elements,
        intervals,
    })
}

/// Whether two elements of a concatenation have keys in common: every
/// part's intervals meet.
fn overlap(a: &Element, b: &Element) -> bool {
    a.0.iter()
        .zip(&b.0)
        .all(|(x, y)| match (crate::ir::span(x), crate::ir::span(y)) {
            (Some((x0, x1)), Some((y0, y1))) => x0 <= y1 && y0 <= x1,
            _ => x == y,
        })
}

/// A masked test: an address, mark or port field, a mask with at least
/// one bit, and a value within the mask.
fn convert_masked(ctx: &mut Ctx, at: &str, t: &wit::MaskedTest, negate: bool) -> Option<Match> {
    let f = field(&t.field);
    let ty = f.key_type();
    let number = |ctx: &mut Ctx, what: &str, v: &wit::Value| -> Option<u32> {
        let max = ty.max_number()?;
        match v {
            wit::Value::Number(n) if *n <= max => Some(*n),
            wit::Value::Number(n) => {
                ctx.err(
                    at,
                    format!("{what} {n} is out of range for {} (0-{max})", ty.name()),
                );
                None
            }
            other => {
                ctx.err(at, format!("{what} {} is not a number", written(other)));
                None
            }
        }
    };
    let address = |ctx: &mut Ctx, what: &str, v: &wit::Value| -> Option<std::net::IpAddr> {
        let parsed = match v {
            wit::Value::Address(text) => text
                .parse::<std::net::IpAddr>()
                .ok()
                .filter(|a| Some(Family::of(a)) == ty.family()),
            _ => None,
        };
        if parsed.is_none() {
            let expected = if ty == KeyType::Ipv4Addr {
                "IPv4"
            } else {
                "IPv6"
            };
            ctx.err(
                at,
                format!(
                    "{what} {} is not an {expected} address (without prefix)",
                    written(v)
                ),
            );
        }
        parsed
    };
    let (mask, value, bits) = match f {
        Field::Saddr(_) | Field::Daddr(_) => {
            let (mask, value) = (
                address(ctx, "mask", &t.mask),
                address(ctx, "value", &t.value),
            );
            let (mask, value) = (mask?, value?);
            let bits = |a: std::net::IpAddr| match a {
                std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
                std::net::IpAddr::V6(a) => u128::from(a),
            };
            (
                Value::Addr(mask),
                Value::Addr(value),
                (bits(mask), bits(value)),
            )
        }
        Field::Mark | Field::CtMark | Field::Sport(_) | Field::Dport(_) => {
            let (mask, value) = (number(ctx, "mask", &t.mask), number(ctx, "value", &t.value));
            let (mask, value) = (mask?, value?);
            (
                Value::Number(mask),
                Value::Number(value),
                (u128::from(mask), u128::from(value)),
            )
        }
        other => {
            ctx.err(
                at,
                format!("{other} cannot be masked; a mask applies to addresses, marks and ports"),
            );
            return None;
        }
    };
    if bits.0 == 0 {
        ctx.err(at, "a mask of no bits tests nothing");
        return None;
    }
    if bits.1 & !bits.0 != 0 {
        ctx.err(
            at,
            format!(
                "value {} has bits outside the mask {}: the test never matches",
                value.text(ty),
                mask.text(ty)
            ),
        );
        return None;
    }
    Some(Match::Masked {
        field: f,
        mask,
        value,
        negate,
    })
}

/// The matches as nft lists the rule they make: nft leaves out of its
/// listing a `meta nfproto` or `meta l4proto` check that a later match
/// implies (it takes it for the dependency it would have added itself),
/// so such a check is dropped here, and the later match's kernel form
/// makes it instead, where nft would. The one it would drop without the
/// later match implying it (`meta nfproto ipv4` before `meta l4proto
/// icmp`, which nft reads as IPv4's) is refused: the rule would not list
/// as its text.
///
/// This replays nft's listing (netlink_delinearize.c: a check is stored
/// as a dependency, and dropped when a load from the header above it
/// follows, or, for a family check, when an ICMP protocol check of that
/// family follows) over the kernel form the encoder makes (each load's
/// checks before it, unless the rule made them already).
pub(super) fn as_listed(ctx: &mut Ctx, at: &str, matches: Vec<Match>) -> Option<Vec<Match>> {
    // Each match with its place in the rule, for errors.
    let mut matches: Vec<(usize, Match)> = matches.into_iter().enumerate().collect();
    loop {
        let dropped = dropped_by_listing(&matches);
        if dropped.is_empty() {
            return Some(matches.into_iter().map(|(_, m)| m).collect());
        }
        for &(i, by) in &dropped {
            if let Some(by) = by.filter(|by| !dropped.iter().any(|(d, _)| d == by)) {
                let (m, killer) = (&matches[i].1, &matches[by].1);
                ctx.err(
                    format!("{at} match {}", matches[i].0 + 1),
                    format!(
                        "nft lists `{m} {killer}` as `{killer}` alone (it reads {killer} as implying {m}); leave out `{m}`, or match an ICMP field after it"
                    ),
                );
                return None;
            }
        }
        let keep: Vec<bool> = (0..matches.len())
            .map(|i| !dropped.iter().any(|(d, _)| *d == i))
            .collect();
        let mut k = keep.iter();
        matches.retain(|_| *k.next().unwrap_or(&true));
    }
}

/// A protocol check nft's listing keeps as a possible dependency: the
/// match that made it (none when the encoder made it for a load), and for
/// a family check, its family.
#[derive(Clone, Copy)]
struct Dependency {
    made_by: Option<usize>,
    family: Option<Family>,
}

type Dropped = Vec<(usize, Option<usize>)>;

/// Drops the dependency `dep` (recording it when a match made it), as a
/// later match `by` (none: a load) makes nft drop it.
fn kill(dep: &mut Option<Dependency>, by: Option<usize>, dropped: &mut Dropped) {
    if let Some(Dependency {
        made_by: Some(i), ..
    }) = dep.take()
    {
        dropped.push((i, by));
    }
}

/// The listing's state: the family and protocol checks it keeps as
/// possible dependencies, and what the encoder has checked already
/// (RuleBuilder's state).
#[derive(Default)]
struct Listing {
    network: Option<Dependency>,
    transport: Option<Dependency>,
    has_family: Option<Family>,
    has_l4: Option<L4Proto>,
    dropped: Dropped,
}

impl Listing {
    fn family_check(&mut self, family: Family, made_by: Option<usize>) {
        self.network = Some(Dependency {
            made_by,
            family: Some(family),
        });
        self.has_family = Some(family);
    }

    /// A `meta l4proto` check: an ICMP one drops a family check of its
    /// family.
    fn l4_check(&mut self, proto: L4Proto, made_by: Option<usize>) {
        if self
            .network
            .is_some_and(|d| d.family.is_some() && d.family == proto.family())
        {
            kill(&mut self.network, made_by, &mut self.dropped);
        }
        self.transport = Some(Dependency {
            made_by,
            family: None,
        });
        self.has_l4 = Some(proto);
    }
}

/// The positions of the explicit checks nft's listing drops, each with
/// the explicit protocol check that dropped it when one did (rather than
/// a load).
fn dropped_by_listing(matches: &[(usize, Match)]) -> Dropped {
    let mut l = Listing::default();
    for (i, (_, m)) in matches.iter().enumerate() {
        match m {
            Match::Nfproto {
                family,
                negate: false,
            } => l.family_check(*family, Some(i)),
            Match::L4Proto {
                proto,
                negate: false,
            } => l.l4_check(*proto, Some(i)),
            _ => {
                let reads = m.reads();
                for r in &reads {
                    if let Some(f) = r.family.filter(|f| l.has_family != Some(*f)) {
                        l.family_check(f, None);
                    }
                    if let Some(p) = r.l4.filter(|p| l.has_l4 != Some(*p)) {
                        l.l4_check(p, None);
                    }
                }
                for r in &reads {
                    match r.header {
                        Some(Header::Network) => kill(&mut l.network, None, &mut l.dropped),
                        Some(Header::Transport) => kill(&mut l.transport, None, &mut l.dropped),
                        _ => {}
                    }
                }
            }
        }
    }
    l.dropped
}

/// Whether a match of a policy's answer reads the field `name`.
pub(super) fn reads(m: &wit::Matcher, name: wit::Field) -> bool {
    let wanted = field(&name);
    let named = |fields: &[wit::Field]| fields.iter().any(|f| field(f) == wanted);
    match m {
        wit::Matcher::Iifname(_) => wanted == Field::Iifname,
        wit::Matcher::Oifname(_) => wanted == Field::Oifname,
        wit::Matcher::Test(t) => named(&t.fields),
        wit::Matcher::InSet(t) => named(&t.fields),
        wit::Matcher::KeyedLimit(l) => named(&l.fields),
        _ => false,
    }
}

/// The inline sets a match of a policy's answer makes, and their elements:
/// for the budget, counted before conversion.
pub(super) fn inline_set_counts(m: &wit::Matcher) -> (usize, usize) {
    match m {
        wit::Matcher::Test(t) if t.any_of.len() > 1 || t.fields.len() > 1 => (1, t.any_of.len()),
        wit::Matcher::Day(days) if days.len() > 1 => (1, days.len()),
        _ => (0, 0),
    }
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;
