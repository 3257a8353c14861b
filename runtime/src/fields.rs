//! Checks of the names and fields that reach the runtime from outside,
//! wherever they come from (a policy's answer, a world-state file, an event
//! on the command line or the control socket, the config): an interface name
//! by Linux's rules, a MAC as six hex pairs, an address with a prefix length
//! that fits its family, a host name of DNS characters, a policy or
//! namespace name. Each error names the value and what is wrong with it.

use std::net::IpAddr;

/// What is wrong with an interface name by Linux's rules (dev_valid_name),
/// as "is empty", "is 20 bytes long; ...".
pub fn ifname_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() >= libc::IFNAMSIZ {
        Some(format!(
            "is {} bytes long; interface names are at most {} bytes",
            name.len(),
            libc::IFNAMSIZ - 1
        ))
    } else if name == "." || name == ".." {
        Some("is not a valid interface name".into())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("contains '/', ':', a space or NUL".into())
    } else {
        None
    }
}

pub fn ifname(name: &str) -> Result<(), String> {
    match ifname_problem(name) {
        None => Ok(()),
        Some(p) => Err(format!("interface name {name:?} {p}")),
    }
}

/// Six pairs of hex digits separated by ':' (or '-'); returns the
/// lower-case ':' form.
pub fn mac(mac: &str) -> Result<String, String> {
    let pairs: Vec<&str> = mac.split([':', '-']).collect();
    let ok = pairs.len() == 6
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(pairs.join(":").to_ascii_lowercase())
    } else {
        Err(format!(
            "MAC {mac:?} is not six hex pairs like 52:54:00:12:34:56"
        ))
    }
}

/// An address as a lease or an event names it: IPv4 or IPv6, but never an
/// IPv4 address written as IPv6 (`::ffff:192.0.2.1`), which no IPv4 rule
/// matches and which would make one host two leases.
pub fn ip(ip: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 or IPv6 address"))?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "{ip:?} is an IPv4-mapped IPv6 address; name the IPv4 address"
        ));
    }
    Ok(addr)
}

/// "addr/len" with a length that fits the address family.
pub fn address_with_prefix(text: &str) -> Result<(), String> {
    let bad = || format!("address {text:?} is not ADDR/LEN like 192.168.0.1/24");
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!(
            "address {text:?}: a prefix length of {len} is more than {max}"
        ));
    }
    Ok(())
}

/// 1-253 characters: letters, digits, '-', '_' and '.'.
pub fn hostname(name: &str) -> Result<(), String> {
    let ok = (1..=253).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host name {name:?} must be 1-253 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A policy's name: it becomes the prefix of its chains and sets in the
/// kernel and part of every rule's tag. 1-24 lower-case letters, digits or
/// '-', starting with a letter; never a '/', which separates it from the
/// policy's own names.
pub fn valid_policy_name(s: &str) -> bool {
    s.len() <= 24
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A name under /run/netns.
pub fn valid_netns(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
