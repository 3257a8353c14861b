//! Values as a policy writes them (WIT `value`) checked against the type
//! of the key part they are for and converted to the IR: addresses of the
//! right family, prefixes without host bits, ranges that are not empty,
//! numbers within their type, interface names and hardware addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::Ctx;
use crate::bindings::wit;
use crate::fields;
use crate::ir::{Element, Key, KeyType, Value};
use crate::text::quote;

/// The IR's type of a WIT key type.
pub(super) fn key_type(t: wit::KeyType) -> KeyType {
    match t {
        wit::KeyType::Ipv4Addr => KeyType::Ipv4Addr,
        wit::KeyType::Ipv6Addr => KeyType::Ipv6Addr,
        wit::KeyType::InetService => KeyType::InetService,
        wit::KeyType::InetProto => KeyType::InetProto,
        wit::KeyType::Ifname => KeyType::Ifname,
        wit::KeyType::Mark => KeyType::Mark,
        wit::KeyType::EtherAddr => KeyType::EtherAddr,
        wit::KeyType::IcmpType => KeyType::IcmpType,
        wit::KeyType::Icmpv6Type => KeyType::Icmpv6Type,
    }
}

/// What a value may be besides a single one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Allow {
    /// Prefixes and ranges (an interval set, a plain comparison).
    pub intervals: bool,
    /// An interface name ending in '*' (a plain comparison).
    pub wildcard: bool,
}

/// A value as the policy wrote it, for an error message.
pub(super) fn written(v: &wit::Value) -> String {
    match v {
        wit::Value::Number(n) => n.to_string(),
        wit::Value::NumberRange((a, b)) => format!("{a}-{b}"),
        wit::Value::Address(a) | wit::Value::Name(a) | wit::Value::Mac(a) => quote(a),
        wit::Value::AddressRange((a, b)) => format!("{}-{}", quote(a), quote(b)),
    }
}

/// `v` as a value of type `ty`; None (with the problem in `ctx`) when it
/// is not one.
pub(super) fn value(
    ctx: &mut Ctx,
    at: &str,
    ty: KeyType,
    v: &wit::Value,
    allow: Allow,
) -> Option<Value> {
    let result = convert(ty, v, allow);
    if let Err(problem) = &result {
        ctx.err(at, problem);
    }
    result.ok()
}

/// An element: one value per part of `key`.
pub(super) fn element(
    ctx: &mut Ctx,
    at: &str,
    key: &Key,
    values: &[wit::Value],
    allow: Allow,
) -> Option<Element> {
    if values.len() != key.0.len() {
        ctx.err(
            at,
            format!(
                "has {} value(s); the key ({key}) has {}",
                values.len(),
                key.0.len()
            ),
        );
        return None;
    }
    let before = ctx.problems.len();
    let parts: Vec<Option<Value>> = key
        .0
        .iter()
        .zip(values)
        .map(|(ty, v)| value(ctx, at, *ty, v, allow))
        .collect();
    if ctx.problems.len() != before {
        return None;
    }
    Some(Element(parts.into_iter().flatten().collect()))
}

fn convert(ty: KeyType, v: &wit::Value, allow: Allow) -> Result<Value, String> {
    let what = || format!("{} is not {}", written(v), described(ty));
    match (ty.family(), v) {
        (Some(family), wit::Value::Address(text)) => {
            let net = prefix(text)?;
            if crate::ir::Family::of(&net.ip()) != family {
                return Err(what());
            }
            let full = net.prefix() == if net.is_ipv4() { 32 } else { 128 };
            if full {
                Ok(Value::Addr(net.ip()))
            } else if allow.intervals {
                Ok(Value::Prefix(net))
            } else {
                Err(format!("prefix {} needs intervals here", quote(text)))
            }
        }
        (Some(family), wit::Value::AddressRange((a, b))) => {
            let parse = |t: &str| {
                t.parse::<IpAddr>()
                    .ok()
                    .filter(|ip| crate::ir::Family::of(ip) == family)
                    .ok_or_else(|| format!("{} is not {}", quote(t), described(ty)))
            };
            let (first, last) = (parse(a)?, parse(b)?);
            if !allow.intervals {
                return Err(format!("range {} needs intervals here", written(v)));
            }
            match first.cmp(&last) {
                std::cmp::Ordering::Greater => {
                    Err(format!("range {} is empty (last < first)", written(v)))
                }
                std::cmp::Ordering::Equal => Ok(Value::Addr(first)),
                std::cmp::Ordering::Less => Ok(Value::AddrRange(first, last)),
            }
        }
        (None, wit::Value::Number(n)) => number(ty, *n).map(Value::Number),
        (None, wit::Value::NumberRange((a, b))) => {
            let (first, last) = (number(ty, *a)?, number(ty, *b)?);
            if !allow.intervals {
                return Err(format!("range {} needs intervals here", written(v)));
            }
            if ty == KeyType::Mark {
                return Err("a range of marks cannot be looked up (marks are in host byte order); use a masked test".into());
            }
            match first.cmp(&last) {
                std::cmp::Ordering::Greater => {
                    Err(format!("range {} is empty (last < first)", written(v)))
                }
                std::cmp::Ordering::Equal => Ok(Value::Number(first)),
                std::cmp::Ordering::Less => Ok(Value::Range(first, last)),
            }
        }
        (None, wit::Value::Name(name)) if ty == KeyType::Ifname => {
            let stem = name.strip_suffix('*');
            if stem.is_some() && !allow.wildcard {
                return Err(format!(
                    "interface name {} is a wildcard, which only a plain comparison can be",
                    quote(name)
                ));
            }
            if let Some(p) = fields::match_ifname_problem(stem.unwrap_or(name)) {
                return Err(format!("interface name {} {p}", quote(name)));
            }
            Ok(Value::Name(name.clone()))
        }
        (None, wit::Value::Mac(text)) if ty == KeyType::EtherAddr => {
            mac(text).map(Value::Mac).ok_or_else(|| {
                format!(
                    "{} is not a hardware address (like 52:54:00:12:34:56)",
                    quote(text)
                )
            })
        }
        _ => Err(what()),
    }
}

/// What a value of `ty` is, for an error message.
fn described(ty: KeyType) -> &'static str {
    match ty {
        KeyType::Ipv4Addr => "an IPv4 address",
        KeyType::Ipv6Addr => "an IPv6 address",
        KeyType::InetService => "a port",
        KeyType::InetProto => "a protocol number",
        KeyType::Ifname => "an interface name",
        KeyType::Mark => "a mark",
        KeyType::EtherAddr => "a hardware address",
        KeyType::IcmpType => "an ICMP type",
        KeyType::Icmpv6Type => "an ICMPv6 type",
        KeyType::IcmpCode => "an ICMP code",
        KeyType::Icmpv6Code => "an ICMPv6 code",
        KeyType::Dscp => "a DSCP value",
    }
}

fn number(ty: KeyType, n: u32) -> Result<u32, String> {
    let max = ty.max_number().unwrap_or(0);
    if n > max {
        return Err(format!("{n} is out of range for {} (0-{max})", ty.name()));
    }
    if ty == KeyType::InetService && n == 0 {
        return Err("port 0 is not a valid port (use 1-65535)".into());
    }
    Ok(n)
}

/// An address, or a prefix with zero host bits.
pub(super) fn prefix(text: &str) -> Result<IpNetwork, String> {
    let net: IpNetwork = match text.parse::<IpAddr>() {
        Ok(ip) => IpNetwork::from(ip),
        Err(_) => text.parse().map_err(|_| {
            format!(
                "{} is not an IPv4 or IPv6 address or prefix (like 192.168.0.0/24)",
                quote(text)
            )
        })?,
    };
    if net.network() != net.ip() {
        return Err(format!(
            "prefix {} has host bits set; did you mean {}/{}?",
            quote(text),
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
}

/// "aa:bb:cc:dd:ee:ff", either case.
fn mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(ty: KeyType, v: wit::Value, allow: Allow) -> Result<Value, String> {
        convert(ty, &v, allow)
    }

    const INTERVALS: Allow = Allow {
        intervals: true,
        wildcard: false,
    };

    #[test]
    fn values_are_checked_against_their_type() {
        use wit::Value as W;
        let a = |s: &str| W::Address(s.into());
        assert_eq!(
            one(KeyType::Ipv4Addr, a("10.0.0.1"), Allow::default()),
            Ok(Value::Addr("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            one(KeyType::Ipv4Addr, a("10.0.0.1/32"), Allow::default()),
            Ok(Value::Addr("10.0.0.1".parse().unwrap()))
        );
        assert!(
            one(KeyType::Ipv4Addr, a("fd00::1"), Allow::default())
                .unwrap_err()
                .contains("\"fd00::1\" is not an IPv4 address")
        );
        assert!(
            one(KeyType::Ipv4Addr, a("10.0.0.0/8"), Allow::default())
                .unwrap_err()
                .contains("needs intervals")
        );
        assert!(
            one(KeyType::Ipv4Addr, a("10.0.0.1/8"), INTERVALS)
                .unwrap_err()
                .contains("host bits set; did you mean 10.0.0.0/8?")
        );
        assert!(
            one(KeyType::InetService, W::Number(70000), INTERVALS)
                .unwrap_err()
                .contains("70000 is out of range for inet_service (0-65535)")
        );
        assert!(
            one(KeyType::InetService, W::NumberRange((90, 80)), INTERVALS)
                .unwrap_err()
                .contains("range 90-80 is empty")
        );
        assert_eq!(
            one(KeyType::InetService, W::NumberRange((80, 80)), INTERVALS),
            Ok(Value::Number(80))
        );
        assert!(
            one(KeyType::Ifname, W::Name("eth*".into()), Allow::default())
                .unwrap_err()
                .contains("wildcard")
        );
        assert_eq!(
            one(
                KeyType::Ifname,
                W::Name("eth*".into()),
                Allow {
                    wildcard: true,
                    ..Allow::default()
                }
            ),
            Ok(Value::Name("eth*".into()))
        );
        assert_eq!(
            one(
                KeyType::EtherAddr,
                W::Mac("52:54:00:AB:cd:EF".into()),
                Allow::default()
            ),
            Ok(Value::Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef]))
        );
        assert!(
            one(
                KeyType::EtherAddr,
                W::Mac("52:54:00:ab:cd".into()),
                Allow::default()
            )
            .is_err()
        );
        assert!(
            one(
                KeyType::Mark,
                W::Address("10.0.0.1".into()),
                Allow::default()
            )
            .unwrap_err()
            .contains("\"10.0.0.1\" is not a mark")
        );
    }
}
