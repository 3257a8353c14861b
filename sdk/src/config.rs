//! The policy's own configuration: the key/value settings the runtime passes
//! to every evaluation, with the look-ups a policy needs to read them.

/// The policy's own settings, as key/value strings from the runtime's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Builds a config from key/value pairs (for tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Config {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, if set (the last one wins when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` parsed as `T`, or `default` when unset. The error
    /// names the key and the value.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| format!("config key `{key}`: invalid value {v:?}: {e}")),
        }
    }

    /// A comma-separated list under `key`, trimmed, empty items dropped.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every key, in order, for rejecting unknown keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Fails with a message naming the first key not in `known`.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.keys().find(|k| !known.contains(k)) {
            Some(k) => Err(format!(
                "unknown config key `{k}` (known keys: {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lookup() {
        let c = Config::from_pairs([("a", "1"), ("b", " x, y ,,z "), ("a", "2")]);
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.list("b"), vec!["x", "y", "z"]);
        assert_eq!(c.parse_or::<u16>("a", 0), Ok(2));
        assert!(c.parse_or::<u16>("b", 0).unwrap_err().contains("`b`"));
        assert!(c.reject_unknown(&["a"]).unwrap_err().contains("`b`"));
    }
}
