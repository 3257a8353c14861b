//! Reading a section's options as fw4 does: which options a section type
//! knows (others are warned of and left alone), single values against
//! lists, fw4's list splitting (`option network 'wan wan6'` is two), and
//! the scalar types every section uses (bools, policies, numbers).

use wasmwall_sdk::{Rate, TimeUnit};

use crate::error::{Error, Warnings};
use crate::uci::{Opt, Section};
use crate::zones::Verdict;

/// The options a section type takes, for the warnings of the others.
pub struct Known<'a> {
    pub options: &'a [&'a str],
    /// Options fw4 itself ignores with a warning.
    pub unsupported: &'a [&'a str],
    /// Options fw4 calls deprecated and ignores.
    pub deprecated: &'a [&'a str],
}

/// Warns of each option of `section` that is unknown, unsupported or
/// deprecated, as fw4 does, and goes on.
pub fn warn_unknown(section: &Section, known: &Known, warnings: &mut Warnings) {
    for opt in &section.options {
        let name = opt.name.as_str();
        if known.unsupported.contains(&name) {
            warnings.option(section, opt, "is not supported by fw4, nor here; ignored");
        } else if known.deprecated.contains(&name) {
            warnings.option(section, opt, "is deprecated by fw4; ignored");
        } else if !known.options.contains(&name) {
            warnings.option(section, opt, "is not an option of this section; ignored");
        }
    }
}

/// The option's one value; an error for a list of several.
pub fn single<'a>(section: &'a Section, name: &str) -> Result<Option<(&'a Opt, &'a str)>, Error> {
    let Some(opt) = section.get(name) else {
        return Ok(None);
    };
    match opt.values.as_slice() {
        [one] => Ok(Some((opt, one.as_str()))),
        _ => Err(Error::option(section, opt, "must be one value, not a list")),
    }
}

/// The option's one value, parsed; `None` when it is absent.
pub fn parsed<T>(
    section: &Section,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    match single(section, name)? {
        None => Ok(None),
        Some((opt, v)) => parse(v)
            .map(Some)
            .map_err(|m| Error::option(section, opt, m)),
    }
}

/// Every value of the option, each split at blanks as fw4 splits them,
/// with the option they came from (for errors).
pub fn words<'a>(section: &'a Section, name: &str) -> Vec<(&'a Opt, &'a str)> {
    let Some(opt) = section.get(name) else {
        return Vec::new();
    };
    opt.values
        .iter()
        .flat_map(|v| v.split([' ', '\t']).filter(|w| !w.is_empty()))
        .map(|w| (opt, w))
        .collect()
}

/// fw4's bools.
pub fn bool_value(v: &str) -> Result<bool, String> {
    match v {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "{v:?} is not a bool (1/0, on/off, true/false, yes/no)"
        )),
    }
}

pub fn bool_or(section: &Section, name: &str, default: bool) -> Result<bool, Error> {
    Ok(parsed(section, name, bool_value)?.unwrap_or(default))
}

/// fw4's policies: `ACCEPT`, `REJECT`, `DROP`, in any case, or any prefix
/// of them (`acc`).
pub fn verdict(v: &str) -> Result<Verdict, String> {
    let lower = v.to_ascii_lowercase();
    [Verdict::Accept, Verdict::Reject, Verdict::Drop]
        .into_iter()
        .find(|p| !lower.is_empty() && p.word().starts_with(&lower))
        .ok_or_else(|| format!("{v:?} is not a policy (ACCEPT, REJECT or DROP)"))
}

/// A whole number.
pub fn number(v: &str) -> Result<u32, String> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("{v:?} is not a whole number (0 to {})", u32::MAX))
}

/// fw4's rates: `N` or `N/UNIT`, the unit `second`, `minute`, `hour` or
/// `day` or any prefix of one (`10/sec`, `5/m`).
pub fn rate(v: &str) -> Result<Rate, String> {
    let (n, unit) = v.split_once('/').unwrap_or((v, "second"));
    let amount: u64 = n
        .parse()
        .map_err(|_| format!("{v:?} is not a rate (N or N/UNIT, e.g. 10/second)"))?;
    let lower = unit.to_ascii_lowercase();
    let unit = [
        ("second", TimeUnit::Second),
        ("minute", TimeUnit::Minute),
        ("hour", TimeUnit::Hour),
        ("day", TimeUnit::Day),
    ]
    .into_iter()
    .find(|(word, _)| !lower.is_empty() && word.starts_with(&lower))
    .map(|(_, u)| u)
    .ok_or_else(|| format!("{v:?}: the unit must be second, minute, hour or day"))?;
    if amount == 0 {
        return Err(format!("{v:?}: a rate of 0 lets nothing through"));
    }
    Ok(Rate::packets(amount, unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uci::parse;

    #[test]
    fn unknown_unsupported_and_deprecated_options_are_warned_of() {
        let s = &parse(
            "config zone\noption name lan\noption extra x\noption _name y\noption colour red\n",
        )
        .unwrap()[0];
        let mut w = Warnings::default();
        let known = Known {
            options: &["name"],
            unsupported: &["extra"],
            deprecated: &["_name"],
        };
        warn_unknown(s, &known, &mut w);
        assert_eq!(
            w.0,
            [
                "uci line 3, @zone[0] (lan) option 'extra': is not supported by fw4, nor here; ignored",
                "uci line 4, @zone[0] (lan) option '_name': is deprecated by fw4; ignored",
                "uci line 5, @zone[0] (lan) option 'colour': is not an option of this section; ignored",
            ]
        );
    }

    #[test]
    fn values_lists_and_words() {
        let s = &parse("config zone\noption input acc\nlist network 'wan wan6'\nlist network lan\noption masq maybe\noption log 2\n").unwrap()[0];
        assert_eq!(parsed(s, "input", verdict).unwrap(), Some(Verdict::Accept));
        let words: Vec<&str> = words(s, "network").into_iter().map(|(_, w)| w).collect();
        assert_eq!(words, ["wan", "wan6", "lan"]);
        let err = single(s, "network").unwrap_err().to_string();
        assert_eq!(
            err,
            "uci line 4, @zone[0] option 'network': must be one value, not a list"
        );
        let err = bool_or(s, "masq", false).unwrap_err().to_string();
        assert!(
            err.starts_with("uci line 5, @zone[0] option 'masq': \"maybe\" is not a bool"),
            "{err}"
        );
        assert_eq!(parsed(s, "log", number).unwrap(), Some(2));
        assert!(!bool_or(s, "mtu_fix", false).unwrap());
        assert!(verdict("allow").unwrap_err().contains("not a policy"));
        assert_eq!(number("0x10"), Ok(16));
        assert!(number("-1").unwrap_err().contains("not a whole number"));
        assert_eq!(rate("1000/sec"), Ok(Rate::per_second(1000)));
        assert_eq!(rate("5/m"), Ok(Rate::per_minute(5)));
        assert_eq!(rate("7"), Ok(Rate::per_second(7)));
        assert!(
            rate("5/fortnight")
                .unwrap_err()
                .contains("second, minute, hour or day")
        );
        assert!(rate("fast").unwrap_err().contains("not a rate"));
    }
}
