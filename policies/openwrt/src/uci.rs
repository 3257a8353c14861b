//! UCI, the syntax of OpenWrt's `/etc/config/*` files, read into sections.
//!
//! ```text
//! # a comment
//! config zone 'lan'          # a section: its type and an optional name
//!     option name 'lan'      # one value
//!     list   network 'lan'   # one value more of a list
//! ```
//!
//! A value is a run of words and quoted strings written together, as in a
//! shell: `'it'\''s'` is `it's`. Inside single quotes every character is
//! itself; inside double quotes and outside quotes a backslash takes the
//! next character as it is. A `#` where a word would start comments out the
//! rest of the line. `package NAME` lines are taken and ignored. An `option`
//! given twice keeps the last value; a `list` after an `option` of the same
//! name extends it, as `uci` does. Every error names its line.

use std::fmt;

/// One `config` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its type: `zone`, `rule`, `redirect`, ...
    pub kind: String,
    /// Its name, when the `config` line gives one.
    pub name: Option<String>,
    /// Its place among the sections of its type, from 0 (`@rule[3]`).
    pub index: usize,
    /// The line of its `config`.
    pub line: usize,
    /// Its options, in the order first written.
    pub options: Vec<Opt>,
}

/// One option or list of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub name: String,
    /// One value for an `option`; a `list` has as many as it was given.
    pub values: Vec<String>,
    /// Written with `list`.
    pub is_list: bool,
    /// The line of its last value.
    pub line: usize,
}

/// A line UCI cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl Section {
    /// How fw4 names a section in its messages: `@rule[3]`, with the name
    /// the section gives (its `name` option or its own) after it.
    pub fn id(&self) -> String {
        let mut id = format!("@{}[{}]", self.kind, self.index);
        if let Some(name) = self.single("name").or(self.name.as_deref()) {
            id.push_str(&format!(" ({name})"));
        }
        id
    }

    pub fn get(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The option's value; the first of a list's.
    pub fn single(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|o| o.values.first())
            .map(String::as_str)
    }

    /// The option's values; none when it is absent.
    pub fn values(&self, name: &str) -> &[String] {
        self.get(name).map(|o| o.values.as_slice()).unwrap_or(&[])
    }
}

/// Reads a whole UCI file.
pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError { line, message };
        let words = words(raw).map_err(err)?;
        let Some((keyword, args)) = words.split_first() else {
            continue;
        };
        match keyword.as_str() {
            "package" => {
                if args.len() != 1 {
                    return Err(err("`package` takes one name".into()));
                }
            }
            "config" => {
                let (kind, name) = match args {
                    [kind] => (kind, None),
                    [kind, name] => (kind, Some(name)),
                    _ => {
                        return Err(err(
                            "`config` takes a type and an optional name: config TYPE ['NAME']"
                                .into(),
                        ));
                    }
                };
                if !is_identifier(kind) {
                    return Err(err(format!(
                        "section type {kind:?} is not a name (letters, digits and '_')"
                    )));
                }
                if let Some(name) = name
                    && !is_identifier(name)
                {
                    return Err(err(format!(
                        "section name {name:?} is not a name (letters, digits and '_')"
                    )));
                }
                let index = sections.iter().filter(|s| &s.kind == kind).count();
                sections.push(Section {
                    kind: kind.clone(),
                    name: name.cloned(),
                    index,
                    line,
                    options: Vec::new(),
                });
            }
            "option" | "list" => {
                let is_list = keyword == "list";
                let [name, value] = args else {
                    return Err(err(format!("`{keyword}` takes a name and one value")));
                };
                if !is_identifier(name) {
                    return Err(err(format!(
                        "option name {name:?} is not a name (letters, digits and '_')"
                    )));
                }
                let Some(section) = sections.last_mut() else {
                    return Err(err(format!("`{keyword} {name}` before any `config` line")));
                };
                set(section, name, value, is_list, line);
            }
            other => {
                return Err(err(format!(
                    "expected `config`, `option`, `list` or `package`, found {other:?}"
                )));
            }
        }
    }
    Ok(sections)
}

fn set(section: &mut Section, name: &str, value: &str, is_list: bool, line: usize) {
    match section.options.iter_mut().find(|o| o.name == name) {
        Some(opt) if is_list => {
            opt.values.push(value.to_string());
            opt.is_list = true;
            opt.line = line;
        }
        Some(opt) => {
            opt.values = vec![value.to_string()];
            opt.is_list = false;
            opt.line = line;
        }
        None => section.options.push(Opt {
            name: name.to_string(),
            values: vec![value.to_string()],
            is_list,
            line,
        }),
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits one line into its words, quotes and escapes resolved.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(words),
            Some(_) => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed on its line".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => {
                                return Err("a double quote is not closed on its line".into());
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed on its line".into()),
                    }
                },
                '\\' => match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash ends the line".into()),
                },
                c => word.push(c),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_options_and_lists() {
        let text = "\
package firewall

config defaults
\toption input\t\tREJECT # trailing comment
config zone 'lan'
\toption name lan
\tlist network 'lan'
\tlist network \"guest\"
# a comment
config zone
\toption name 'wan'
";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].kind, "defaults");
        assert_eq!(s[0].single("input"), Some("REJECT"));
        assert_eq!(s[1].name.as_deref(), Some("lan"));
        assert_eq!(s[1].values("network"), ["lan", "guest"]);
        assert!(s[1].get("network").unwrap().is_list);
        assert_eq!(s[1].get("network").unwrap().line, 8);
        assert_eq!((s[1].index, s[2].index), (0, 1));
        assert_eq!(s[2].line, 10);
        assert_eq!(s[2].id(), "@zone[1] (wan)");
        assert_eq!(s[0].id(), "@defaults[0]");
    }

    #[test]
    fn quoting_as_a_shell() {
        let s = parse("config rule\noption name 'it'\\''s a \"test\"'\noption x a\"b c\"'d'\n")
            .unwrap();
        assert_eq!(s[0].single("name"), Some("it's a \"test\""));
        assert_eq!(s[0].single("x"), Some("ab cd"));
        let s = parse("config rule\noption name 'a # b'\noption e \"x\\\"y\"\n").unwrap();
        assert_eq!(s[0].single("name"), Some("a # b"));
        assert_eq!(s[0].single("e"), Some("x\"y"));
    }

    #[test]
    fn an_option_again_replaces_a_list_after_an_option_extends() {
        let s = parse("config rule\noption a 1\noption a 2\noption b 1\nlist b 2\n").unwrap();
        assert_eq!(s[0].values("a"), ["2"]);
        assert_eq!(s[0].values("b"), ["1", "2"]);
        assert_eq!(s[0].options.len(), 2);
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("option a 1\n", 1, "`option a` before any `config` line"),
            (
                "config rule\n\noption a 'x\n",
                3,
                "single quote is not closed",
            ),
            (
                "config rule\noption a \"x\n",
                2,
                "double quote is not closed",
            ),
            ("config rule\noption a x\\\n", 2, "backslash ends the line"),
            (
                "config rule\noption a\n",
                2,
                "`option` takes a name and one value",
            ),
            (
                "config rule\nlist a b c\n",
                2,
                "`list` takes a name and one value",
            ),
            ("config\n", 1, "`config` takes a type"),
            ("config a b c\n", 1, "`config` takes a type"),
            ("config 'a-b'\n", 1, "section type \"a-b\" is not a name"),
            (
                "config rule 'x y'\n",
                1,
                "section name \"x y\" is not a name",
            ),
            (
                "config rule\noption 'a.b' 1\n",
                2,
                "option name \"a.b\" is not a name",
            ),
            (
                "config rule\n\tinclude x\n",
                2,
                "expected `config`, `option`, `list` or `package`, found \"include\"",
            ),
            ("package\n", 1, "`package` takes one name"),
        ];
        for (text, line, words) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(words), "{text:?}: {err}");
            assert!(
                err.to_string().starts_with(&format!("line {line}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn openwrts_default_config_reads() {
        let s = parse(include_str!("../examples/firewall.default")).unwrap();
        let kinds: Vec<&str> = s.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "zone").count(), 2);
        assert_eq!(kinds.iter().filter(|k| **k == "rule").count(), 9);
        assert_eq!(kinds[0], "defaults");
        let mld = s
            .iter()
            .find(|s| s.single("name") == Some("Allow-MLD"))
            .unwrap();
        assert_eq!(
            mld.values("icmp_type"),
            ["130/0", "131/0", "132/0", "143/0"]
        );
    }
}
