//! Reading a section's options as fw4 does: which options a section type
//! knows (others are warned of and left alone), single values against
//! lists, fw4's list splitting (`option network 'wan wan6'` is two), and
//! the scalar types every section uses (bools, policies, numbers).

use crate::error::{Error, Warnings};
use crate::uci::{Opt, Section};
use crate::values::parse_bool;

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

pub fn bool_or(section: &Section, name: &str, default: bool) -> Result<bool, Error> {
    Ok(parsed(section, name, parse_bool)?.unwrap_or(default))
}

/// A whole number.
pub fn number(v: &str) -> Result<u32, String> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("{v:?} is not a whole number (0 to {})", u32::MAX))
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
        assert_eq!(
            parsed(s, "input", crate::values::parse_policy).unwrap(),
            Some(crate::zones::Verdict::Accept)
        );
        let words: Vec<&str> = words(s, "network").into_iter().map(|(_, w)| w).collect();
        assert_eq!(words, ["wan", "wan6", "lan"]);
        let err = single(s, "network").unwrap_err().to_string();
        assert_eq!(
            err,
            "uci line 4, @zone[0] option 'network': must be one value, not a list"
        );
        let err = bool_or(s, "masq", false).unwrap_err().to_string();
        assert!(
            err.starts_with("uci line 5, @zone[0] option 'masq': \"maybe\" is not a boolean"),
            "{err}"
        );
        assert_eq!(parsed(s, "log", number).unwrap(), Some(2));
        assert!(!bool_or(s, "mtu_fix", false).unwrap());
        assert_eq!(number("0x10"), Ok(16));
        assert!(number("-1").unwrap_err().contains("not a whole number"));
    }
}
