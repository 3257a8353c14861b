//! Checks of the names and fields that reach the runtime from outside,
//! wherever they come from (a policy's answer, a world-state file, an event
//! on the command line or the control socket, the config): an interface name
//! by Linux's rules, a MAC as six hex pairs, an address with a prefix length
//! that fits its family, a host name of DNS characters, a policy or
//! namespace name; and what a policy may put in the strings nft lists (the
//! interface names its rules match, its comments and log prefixes). Each
//! error names the value (its start only, when long: see
//! [`crate::text::quote`]) and what is wrong with it.

use std::net::IpAddr;

use crate::text::quote;

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
        Some(p) => Err(format!("interface name {} {p}", quote(name))),
    }
}

/// What is wrong with an interface name a rule matches: Linux's rules
/// ([`ifname_problem`]), and only letters, digits, '_', '-', '.' and '+'.
/// nft lists the name between double quotes without escaping anything, so a
/// '"' would end it early (the listing no longer loads, or loads as
/// something else); the set is what Linux interface names use in practice
/// (eth0, br-lan, eth0.10, wg0, enp3s0, phy0-ap0), each character of it
/// proven to list and load back unchanged (`tests/nft_text.rs`).
pub fn match_ifname_problem(name: &str) -> Option<String> {
    ifname_problem(name).or_else(|| {
        name.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')))
            .map(|c| {
                format!(
                    "has {c:?}; a rule matches interface names of letters, digits, '_', '-', '.' and '+' only"
                )
            })
    })
}

/// What in a rule's comment nft would not list and load back unchanged:
/// anything but printable ASCII (space to '~'), and '"', which would end
/// the quoted comment in the listing and let the rest be read as nft
/// commands (`nft list ruleset > f; nft -f f` would then create what the
/// comment says). Everything else printable, '\', '#', ';', '{', '}',
/// '$' and '@' included, lists and loads back as it is
/// (`tests/nft_text.rs`).
pub fn comment_problem(text: &str) -> Option<String> {
    nft_string_problem(text, "comments", &['"'])
}

/// What in a rule's log prefix nft would not list and load back
/// unchanged: as for a comment ([`comment_problem`]), and '$' too, which
/// nft reads as the start of a variable in a log prefix. An empty prefix
/// the kernel refuses (ERANGE, and with it the policy's whole batch).
pub fn log_prefix_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("is empty; a rule without a prefix logs with none".into());
    }
    nft_string_problem(text, "log prefixes", &['"', '$'])
}

fn nft_string_problem(text: &str, what: &str, forbidden: &[char]) -> Option<String> {
    let (at, c) = text
        .char_indices()
        .find(|&(_, c)| !(' '..='~').contains(&c) || forbidden.contains(&c))?;
    let except: Vec<String> = forbidden.iter().map(|c| format!("{c:?}")).collect();
    Some(format!(
        "has {c:?} at byte {at}; {what} are printable ASCII (space to '~') without {}",
        except.join(" or ")
    ))
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
            "MAC {} is not six hex pairs like 52:54:00:12:34:56",
            quote(mac)
        ))
    }
}

/// The longest DUID (RFC 8415: a 2-byte type and at most 128 bytes).
pub const DUID_MAX: usize = 130;

/// A DHCPv6 client's DUID: 3 to [`DUID_MAX`] hex pairs separated by ':'
/// (or '-'); returns the lower-case ':' form.
pub fn duid(duid: &str) -> Result<String, String> {
    let pairs: Vec<&str> = duid.split([':', '-']).collect();
    let ok = (3..=DUID_MAX).contains(&pairs.len())
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(pairs.join(":").to_ascii_lowercase())
    } else {
        Err(format!(
            "DUID {} is not 3 to {DUID_MAX} hex pairs like 00:03:00:01:52:54:00:12:34:56",
            quote(duid)
        ))
    }
}

/// The Ethernet address a DUID holds, if it is a DUID-LLT (type 1) or
/// DUID-LL (type 3) of hardware type 1 (Ethernet). `duid` is in the form
/// [`duid`] returns.
pub fn mac_of_duid(duid: &str) -> Option<String> {
    let bytes: Vec<&str> = duid.split(':').collect();
    let mac = match bytes.as_slice() {
        ["00", "01", "00", "01", _, _, _, _, mac @ ..] | ["00", "03", "00", "01", mac @ ..] => mac,
        _ => return None,
    };
    (mac.len() == 6).then(|| mac.join(":"))
}

/// An IPv6 address (never an IPv4-mapped one).
pub fn ipv6(text: &str) -> Result<std::net::Ipv6Addr, String> {
    match ip(text)? {
        IpAddr::V6(v6) => Ok(v6),
        IpAddr::V4(_) => Err(format!("{} is not an IPv6 address", quote(text))),
    }
}

/// An address as a lease or an event names it: IPv4 or IPv6, but never an
/// IPv4 address written as IPv6 (`::ffff:192.0.2.1`), which no IPv4 rule
/// matches and which would make one host two leases.
pub fn ip(ip: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("{} is not an IPv4 or IPv6 address", quote(ip)))?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "{} is an IPv4-mapped IPv6 address; name the IPv4 address",
            quote(ip)
        ));
    }
    Ok(addr)
}

/// "addr/len" with a length that fits the address family.
pub fn address_with_prefix(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "address {} is not ADDR/LEN like 192.168.0.1/24",
            quote(text)
        )
    };
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!(
            "address {}: a prefix length of {len} is more than {max}",
            quote(text)
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
            "host name {} must be 1-253 letters, digits, '-', '_' or '.'",
            quote(name)
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
