//! `[confirm]` of the config: how long a change of `run` waits for
//! `wasmwall confirm`, and the owner's health checks; and the durations
//! such as `120s` or `2m` it and `apply --confirm-within` are given in.
//! Pure.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The shortest and longest confirmation window.
pub const MIN_WITHIN: Duration = Duration::from_secs(1);
pub const MAX_WITHIN: Duration = Duration::from_secs(24 * 3600);
/// Health checks when the config does not say.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_CHECK_PASSES: u32 = 3;
pub const DEFAULT_CHECK_FAILURES: u32 = 2;

/// `[confirm]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfirm {
    within: Option<String>,
    check_tcp: Option<String>,
    #[serde(default)]
    check_command: Vec<String>,
    check_interval: Option<String>,
    check_timeout: Option<String>,
    check_passes: Option<i64>,
    check_failures: Option<i64>,
}

/// How changes wait for confirmation, and the health checks that decide
/// by themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmSettings {
    /// How long a config reload or policy swap of `run` waits for
    /// `wasmwall confirm`; None: `run` applies changes without waiting.
    pub within: Option<Duration>,
    /// A TCP connect to this address must succeed.
    pub check_tcp: Option<SocketAddr>,
    /// This command (program and arguments) must exit 0.
    pub check_command: Vec<String>,
    /// The first check this long after the change, then one each time.
    pub check_interval: Duration,
    /// A check that takes longer fails.
    pub check_timeout: Duration,
    /// Passes in a row that confirm the change.
    pub check_passes: u32,
    /// Failures in a row that roll it back.
    pub check_failures: u32,
}

impl Default for ConfirmSettings {
    fn default() -> Self {
        ConfirmSettings {
            within: None,
            check_tcp: None,
            check_command: Vec::new(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            check_passes: DEFAULT_CHECK_PASSES,
            check_failures: DEFAULT_CHECK_FAILURES,
        }
    }
}

impl ConfirmSettings {
    /// Whether a health check is configured.
    pub fn has_checks(&self) -> bool {
        self.check_tcp.is_some() || !self.check_command.is_empty()
    }

    /// Resolves `[confirm]`; the error names the key and the problem.
    pub(crate) fn resolve(raw: RawConfirm) -> Result<ConfirmSettings, String> {
        let defaults = ConfirmSettings::default();
        let duration = |key: &str, text: Option<&String>, default: Duration| match text {
            None => Ok(default),
            Some(t) => parse_duration(t).map_err(|e| format!("`confirm.{key}`: {e}")),
        };
        let within = match &raw.within {
            None => None,
            Some(t) => Some(within(t).map_err(|e| format!("`confirm.within`: {e}"))?),
        };
        let check_tcp = match &raw.check_tcp {
            None => None,
            Some(t) => Some(t.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "`confirm.check_tcp` {t:?} must be an address and port, such as \"192.168.1.10:22\" or \"[fd00::1]:22\""
                )
            })?),
        };
        if raw.check_command.first().is_some_and(|p| p.is_empty()) {
            return Err("`confirm.check_command` must start with the program to run".into());
        }
        let count = |key: &str, value: Option<i64>, default: u32| match value {
            None => Ok(default),
            Some(n) if (1..=1000).contains(&n) => Ok(n as u32),
            Some(n) => Err(format!("`confirm.{key}` {n} is out of range (1-1000)")),
        };
        let settings = ConfirmSettings {
            within,
            check_tcp,
            check_command: raw.check_command,
            check_interval: duration(
                "check_interval",
                raw.check_interval.as_ref(),
                defaults.check_interval,
            )?,
            check_timeout: duration(
                "check_timeout",
                raw.check_timeout.as_ref(),
                defaults.check_timeout,
            )?,
            check_passes: count("check_passes", raw.check_passes, defaults.check_passes)?,
            check_failures: count(
                "check_failures",
                raw.check_failures,
                defaults.check_failures,
            )?,
        };
        if settings.check_interval.is_zero() || settings.check_timeout.is_zero() {
            return Err(
                "`confirm.check_interval` and `confirm.check_timeout` must be more than 0".into(),
            );
        }
        Ok(settings)
    }
}

/// A confirmation window: a duration of 1 s to 24 h.
pub fn within(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if !(MIN_WITHIN..=MAX_WITHIN).contains(&d) {
        return Err(format!(
            "{text:?} is out of range (1s to 24h): too short to type `wasmwall confirm` in, or too long to be locked out for"
        ));
    }
    Ok(d)
}

/// A duration such as `120s`, `2m`, `1m30s`, `1h` or `500ms`: numbers
/// each followed by a unit (`ms`, `s`, `m`, `h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration: give a number and a unit, such as \"120s\", \"2m\", \"1m30s\" or \"500ms\""
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let units = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || units == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let one = match &rest[digits..digits + units] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let part = one
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[digits + units..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_numbers_with_units() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("120s"), Ok(s(120)));
        assert_eq!(parse_duration("2m"), Ok(s(120)));
        assert_eq!(parse_duration("1m30s"), Ok(s(90)));
        assert_eq!(parse_duration("1h"), Ok(s(3600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in [
            "",
            "120",
            "s",
            "2 m",
            "1d",
            "-1s",
            "1.5s",
            "99999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("not a duration"), "{bad}: {e}");
        }
        assert!(within("500ms").unwrap_err().contains("out of range"));
        assert!(within("25h").unwrap_err().contains("out of range"));
        assert_eq!(within("1s"), Ok(s(1)));
    }

    #[test]
    fn confirm_settings_are_checked() {
        let raw = |toml: &str| -> RawConfirm { toml::from_str(toml).unwrap() };
        let ok = ConfirmSettings::resolve(raw(
            "within = \"2m\"\ncheck_tcp = \"192.168.1.10:22\"\ncheck_command = [\"/bin/true\"]\ncheck_passes = 2",
        ))
        .unwrap();
        assert_eq!(ok.within, Some(Duration::from_secs(120)));
        assert_eq!(ok.check_tcp, Some("192.168.1.10:22".parse().unwrap()));
        assert_eq!(ok.check_passes, 2);
        assert_eq!(ok.check_failures, DEFAULT_CHECK_FAILURES);
        assert!(ok.has_checks());
        assert_eq!(
            ConfirmSettings::resolve(RawConfirm::default()).unwrap(),
            ConfirmSettings::default()
        );
        for (toml, key) in [
            ("within = \"forever\"", "confirm.within"),
            ("within = \"0s\"", "confirm.within"),
            ("check_tcp = \"192.168.1.10\"", "confirm.check_tcp"),
            ("check_command = [\"\"]", "confirm.check_command"),
            ("check_passes = 0", "confirm.check_passes"),
            ("check_interval = \"0s\"", "confirm.check_interval"),
        ] {
            let e = ConfirmSettings::resolve(raw(toml)).unwrap_err();
            assert!(e.contains(key), "{toml}: {e}");
        }
        assert!(toml::from_str::<RawConfirm>("whithin = \"2m\"").is_err());
    }
}
