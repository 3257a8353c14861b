//! Sysctl keys: the allow-list that policies are held to, and reading and
//! writing values under /proc/sys (of the network namespace the process is in).

use std::path::PathBuf;

use thiserror::Error;

/// Keys a policy may set unless the configuration adds more. `*` stands for
/// one interface name (or `all` / `default`).
pub const DEFAULT_ALLOW: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.conf.*.forwarding",
    "net.ipv4.conf.*.route_localnet",
    "net.ipv4.conf.*.rp_filter",
    "net.ipv4.conf.*.accept_local",
    "net.ipv4.conf.*.accept_redirects",
    "net.ipv4.conf.*.send_redirects",
    "net.ipv4.conf.*.proxy_arp",
    "net.ipv6.conf.*.forwarding",
    "net.ipv6.conf.*.accept_ra",
    "net.ipv6.conf.*.accept_redirects",
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("sysctl key {0:?} is not under `net.`")]
    NotNet(String),
    #[error(
        "sysctl key {0:?} is malformed (empty part, or a character other than letters, digits, '_', '-' and '/' for a '.' in an interface name)"
    )]
    Malformed(String),
    #[error("sysctl key {0:?} is not on the allow-list")]
    NotAllowed(String),
    #[error("allow-list pattern {0:?} is not under `net.` or is malformed")]
    BadPattern(String),
}

/// The keys policies may set.
#[derive(Debug, Clone)]
pub struct AllowList {
    patterns: Vec<Vec<String>>,
}

/// The default list alone.
impl Default for AllowList {
    fn default() -> Self {
        AllowList::new(&[]).expect("the built-in allow-list is valid")
    }
}

fn split_key(key: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = key.split('.').collect();
    let ok = parts.iter().all(|p| {
        !p.is_empty()
            && p.len() <= 64
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
            // '/' only stands for '.' inside an interface name; a part made of
            // slashes and dots could walk the /proc tree.
            && !p.split('/').any(|s| s.is_empty())
    });
    ok.then_some(parts)
}

impl AllowList {
    /// The default list plus `extra` patterns (each must be under `net.`).
    pub fn new(extra: &[String]) -> Result<Self, KeyError> {
        let mut patterns = Vec::new();
        for p in DEFAULT_ALLOW
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            let parts = p.split('.').map(str::to_string).collect::<Vec<_>>();
            let valid = parts.first().map(String::as_str) == Some("net")
                && parts.len() >= 2
                && parts.iter().all(|s| {
                    s == "*" || split_key(s).is_some_and(|v| v.len() == 1 && !s.contains('/'))
                });
            if !valid {
                return Err(KeyError::BadPattern(p.to_string()));
            }
            patterns.push(parts);
        }
        Ok(AllowList { patterns })
    }

    /// Checks `key` and returns its /proc/sys path.
    pub fn check(&self, key: &str) -> Result<PathBuf, KeyError> {
        if !key.starts_with("net.") {
            return Err(KeyError::NotNet(key.to_string()));
        }
        let parts = split_key(key).ok_or_else(|| KeyError::Malformed(key.to_string()))?;
        let allowed = self.patterns.iter().any(|pat| {
            pat.len() == parts.len()
                && pat.iter().zip(&parts).all(|(p, k)| {
                    if p == "*" {
                        k.len() < libc::IFNAMSIZ
                    } else {
                        p == k
                    }
                })
        });
        if !allowed {
            return Err(KeyError::NotAllowed(key.to_string()));
        }
        Ok(key_path(&parts))
    }
}

/// The /proc/sys path of a dotted key (`/` in a part stands for a `.` in an
/// interface name), without any check: [`AllowList::check`] checks first.
pub fn proc_path(key: &str) -> PathBuf {
    key_path(&key.split('.').collect::<Vec<_>>())
}

fn key_path(parts: &[&str]) -> PathBuf {
    let mut path = PathBuf::from("/proc/sys");
    for p in parts {
        path.push(p.replace('/', "."));
    }
    path
}

/// Checks a value and gives its canonical form: one or more integers
/// separated by white space, each in the range of a C `int`, as the `net.`
/// integer sysctls take, written back as the integers alone separated by one
/// space (`" 1"`, `"01"` and `"1\t"` are `"1"`, `"-0"` is `"0"`). The kernel
/// refuses anything else (a number beyond 2147483647, a lone '-', a '+'),
/// and the refusal would come only after the rules are in.
pub fn canonical_value(value: &str) -> Result<String, String> {
    let numbers = (value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '\t' || c == '-'))
    .then(|| parse_numbers(value))
    .flatten();
    match numbers {
        Some(n) => Ok(n.iter().map(i32::to_string).collect::<Vec<_>>().join(" ")),
        None => Err(format!(
            "sysctl value {value:?} is not a number (one or more integers from -2147483648 to 2147483647, separated by spaces; at most 64 bytes)"
        )),
    }
}

/// The integers of a value, or None if it is not one or more of them.
fn parse_numbers(value: &str) -> Option<Vec<i32>> {
    let numbers: Vec<i32> = value
        .split_whitespace()
        .map(|n| n.parse::<i32>().ok())
        .collect::<Option<_>>()?;
    (!numbers.is_empty()).then_some(numbers)
}

/// Whether the value read from the kernel (its integers separated by tabs)
/// is `wanted` (canonical, see [`canonical_value`]): compared as integers.
pub fn holds(read: &str, wanted: &str) -> bool {
    match (parse_numbers(read), parse_numbers(wanted)) {
        (Some(r), Some(w)) => r == w,
        _ => read.trim() == wanted.trim(),
    }
}

/// Keys the kernel also changes when `key` is written with a new value:
/// writing `net.ipv4.ip_forward` or `net.ipv4.conf.all.forwarding` (one
/// setting under two names) sets `forwarding` of `default` and of every
/// interface, and `all.accept_redirects` to its opposite; writing
/// `net.ipv6.conf.all.forwarding` sets `forwarding` of `default` and of
/// every interface. Found in the kernel's `devinet_sysctl_forward` and
/// `addrconf_fixup_forwarding`, and checked on a live kernel (6.18). No other
/// key of the default allow-list spreads but the IPv4 `default` ones, which
/// the kernel copies to each interface never set on its own: restoring the
/// `default` key copies the old value back to the same interfaces.
pub struct Spread {
    /// Keys changed besides `key`.
    pub keys: &'static [&'static str],
    /// `net.<family>.conf.<interface>.<leaf>` for every interface: family
    /// and leaf.
    pub each_interface: (&'static str, &'static str),
}

/// The setting a key names: `net.ipv4.conf.all.forwarding` is
/// `net.ipv4.ip_forward` (the kernel keeps one value under both names);
/// every other key is its own. Two policies asking for one setting under
/// its two names ask for one key.
pub fn setting(key: &str) -> &str {
    match key {
        "net.ipv4.conf.all.forwarding" => "net.ipv4.ip_forward",
        other => other,
    }
}

/// What a write of `key` spreads to, if anything (see [`Spread`]).
pub fn spread(key: &str) -> Option<Spread> {
    match key {
        "net.ipv4.ip_forward" | "net.ipv4.conf.all.forwarding" => Some(Spread {
            keys: &[
                "net.ipv4.ip_forward",
                "net.ipv4.conf.all.forwarding",
                "net.ipv4.conf.default.forwarding",
                "net.ipv4.conf.all.accept_redirects",
            ],
            each_interface: ("ipv4", "forwarding"),
        }),
        "net.ipv6.conf.all.forwarding" => Some(Spread {
            keys: &["net.ipv6.conf.default.forwarding"],
            each_interface: ("ipv6", "forwarding"),
        }),
        _ => None,
    }
}

/// Where the interfaces of `family` ("ipv4", "ipv6") have their settings.
pub fn interfaces_dir(family: &str) -> PathBuf {
    PathBuf::from("/proc/sys/net").join(family).join("conf")
}

/// The key of `leaf` of one interface, by its name in /proc (a `.` in it
/// becomes `/`, as sysctl(8) writes it).
pub fn interface_key(family: &str, interface: &str, leaf: &str) -> String {
    format!("net.{family}.conf.{}.{leaf}", interface.replace('.', "/"))
}

/// The names in a /proc/sys directory.
pub fn list(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Reads the current value of a key (by its /proc/sys path), trimmed.
pub fn read(path: &std::path::Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

/// Writes a value.
pub fn write(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{value}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList::new(&[]).unwrap()
    }

    #[test]
    fn allowed_key_maps_to_proc_path() {
        assert_eq!(
            list().check("net.ipv4.conf.lan0.route_localnet").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/lan0/route_localnet")
        );
        // A VLAN interface "eth0.100" is written with '/' as sysctl(8) does.
        assert_eq!(
            list().check("net.ipv4.conf.eth0/100.forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
    }

    #[test]
    fn rejects_keys_outside_net() {
        assert_eq!(
            list().check("kernel.core_pattern"),
            Err(KeyError::NotNet("kernel.core_pattern".into()))
        );
    }

    #[test]
    fn rejects_path_tricks() {
        for key in [
            "net/../../kernel/core_pattern",
            "net.ipv4.conf.../route_localnet",
            "net.ipv4.conf.a//b.forwarding",
            "net.ipv4..ip_forward",
            "net.ipv4.conf.lan 0.forwarding",
        ] {
            let err = list().check(key).unwrap_err();
            assert!(
                matches!(err, KeyError::Malformed(_) | KeyError::NotNet(_)),
                "{key}: {err}"
            );
            assert!(err.to_string().contains(key), "error names the key: {err}");
        }
    }

    #[test]
    fn rejects_net_keys_not_on_the_list() {
        let err = list().check("net.core.rmem_max").unwrap_err();
        assert_eq!(err, KeyError::NotAllowed("net.core.rmem_max".into()));
        assert!(err.to_string().contains("allow-list"));
    }

    #[test]
    fn extra_patterns_extend_the_list() {
        let l = AllowList::new(&["net.core.somaxconn".into()]).unwrap();
        assert!(l.check("net.core.somaxconn").is_ok());
        assert_eq!(
            AllowList::new(&["kernel.*".into()]).unwrap_err(),
            KeyError::BadPattern("kernel.*".into())
        );
    }

    #[test]
    fn values_are_numbers() {
        assert_eq!(canonical_value("1").unwrap(), "1");
        assert_eq!(
            canonical_value("4096 87380 6291456").unwrap(),
            "4096 87380 6291456"
        );
        let err = canonical_value("1; rm -rf /").unwrap_err();
        assert!(err.contains("1; rm -rf /"));
        assert!(canonical_value("").is_err());
        // What the kernel would refuse after the rules are in.
        assert!(canonical_value("-2147483648").is_ok() && canonical_value("2147483647").is_ok());
        for refused in ["2147483648", "99999999999999999999", "-", "+1", "1-2", "  "] {
            assert!(canonical_value(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn values_the_kernel_rewrites_have_one_form() {
        for (asked, canonical) in [
            (" 1", "1"),
            ("01", "1"),
            ("-0", "0"),
            ("1\t", "1"),
            ("007", "7"),
            ("4096\t87380  6291456", "4096 87380 6291456"),
        ] {
            assert_eq!(canonical_value(asked).unwrap(), canonical, "{asked:?}");
        }
        // The kernel prints the integers of a multi-value key with tabs.
        assert!(holds("4096\t87380\t6291456", "4096 87380 6291456"));
        assert!(holds("1", "1") && !holds("1", "0") && !holds("1", "1 2"));
        assert!(!holds("fq_codel", "1"));
    }

    #[test]
    fn forwarding_all_spreads_to_each_interface() {
        for key in ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"] {
            let s = spread(key).unwrap();
            assert_eq!(s.each_interface, ("ipv4", "forwarding"));
            assert!(s.keys.contains(&"net.ipv4.conf.default.forwarding"));
            assert!(s.keys.contains(&"net.ipv4.conf.all.accept_redirects"));
        }
        let s = spread("net.ipv6.conf.all.forwarding").unwrap();
        assert_eq!(s.each_interface, ("ipv6", "forwarding"));
        assert_eq!(s.keys, &["net.ipv6.conf.default.forwarding"]);
        for key in [
            "net.ipv4.conf.lan0.forwarding",
            "net.ipv4.conf.all.route_localnet",
            "net.ipv6.conf.all.accept_ra",
        ] {
            assert!(spread(key).is_none(), "{key}");
        }
        assert_eq!(
            setting("net.ipv4.conf.all.forwarding"),
            "net.ipv4.ip_forward"
        );
        assert_eq!(
            setting("net.ipv6.conf.all.forwarding"),
            "net.ipv6.conf.all.forwarding"
        );
        assert_eq!(
            interface_key("ipv4", "eth0.100", "forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        // Restoring goes through the allow-list: every key a spread names
        // is on it.
        for key in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] {
            for k in spread(key).unwrap().keys {
                assert!(list().check(k).is_ok(), "{k}");
            }
        }
    }
}
