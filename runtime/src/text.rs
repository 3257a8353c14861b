//! Small text helpers shared across the runtime: an error with its causes on
//! one line, cutting a string at a byte budget, hex, and making text a
//! policy (or anyone outside) wrote safe to show: [`escape`] wherever it is
//! shown, [`Quoted`] where it must also be told apart from the text around
//! it, [`quote`] for a value an error names.
//!
//! Why one escape for every place: a policy's log message, its stdout, the
//! error it returns, or a string it put in its answer reaches the log, a
//! terminal (`wasmwall status`, CLI errors) and the status JSON. A newline in
//! it would start a log line of its own (one that can claim to be another
//! policy's), an ESC or a C1 control drives the terminal (title, clear
//! screen, colours), a bidi or zero-width control makes shown text differ
//! from what it is. Each of those characters becomes a visible escape, the
//! same one everywhere.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// "error: cause: cause", for logs and one-line reports.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Cuts `text` to at most `max` bytes, at a character boundary; returns
/// whether anything was cut.
pub fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    true
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `c` must not be shown as it is: a control character (C0, DEL,
/// C1), a Unicode format character (bidi embeddings, overrides and isolates,
/// zero-width characters, the BOM, tags: general category Cf), or a line or
/// paragraph separator.
pub fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{890}'..='\u{891}'
                | '\u{8e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

/// `text` with every character of [`must_escape`] as Rust writes it in a
/// string (`\n`, `\t`, `\u{1b}`, `\u{202e}`); everything else, `\` and
/// `"` too, as it is. The result has no line break and nothing a terminal
/// acts on.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if must_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Shows the text in double quotes, escaped as [`escape`] does and with
/// `"` and `\` escaped too, so that nothing in it can pass for what follows
/// the closing quote (e.g. a log field naming another policy).
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            if must_escape(c) || c == '"' || c == '\\' {
                for e in c.escape_debug() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('"')
    }
}

/// Most bytes of a value an error message quotes.
pub const QUOTE_MAX: usize = 64;

/// `value` for an error message: [`Quoted`], and when longer than
/// [`QUOTE_MAX`] bytes its start only, with its length (a 1 MB interface
/// name gives a short error).
pub fn quote(value: &str) -> String {
    let mut start = value.to_string();
    if cut(&mut start, QUOTE_MAX) {
        format!("{}... ({} bytes)", Quoted(&start), value.len())
    } else {
        Quoted(value).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        let mut s = "aé".to_string();
        assert!(cut(&mut s, 2));
        assert_eq!(s, "a");
        let mut s = "abc".to_string();
        assert!(!cut(&mut s, 3));
        assert_eq!(s, "abc");
    }

    #[test]
    fn hex_and_chain() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        let io = std::io::Error::other("inner");
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(error_chain(&Outer(io)), "outer: inner");
    }

    #[test]
    fn every_character_that_must_be_escaped_comes_out_visible() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = c.to_string();
            let shown = escape(&s);
            let quoted = Quoted(&s).to_string();
            assert!(!shown.chars().any(must_escape), "{c:?} -> {shown:?}");
            assert!(!quoted.chars().any(must_escape), "{c:?} -> {quoted:?}");
            assert_eq!(shown == s, !must_escape(c), "{c:?}");
        }
        for c in [
            '\n',
            '\r',
            '\u{1b}',
            '\u{7f}',
            '\u{9b}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{feff}',
            '\u{2028}',
            '\u{e0041}',
        ] {
            assert!(must_escape(c), "{c:?}");
        }
    }

    #[test]
    fn escapes_are_the_ones_rust_writes() {
        assert_eq!(
            escape("a\nb\r\tc\u{1b}]0;x\u{7}\u{9b}2J\u{202e}é\\\""),
            "a\\nb\\r\\tc\\u{1b}]0;x\\u{7}\\u{9b}2J\\u{202e}é\\\""
        );
        assert!(matches!(escape("plain text é"), Cow::Borrowed(_)));
    }

    #[test]
    fn quoted_text_cannot_close_its_quotes() {
        let forged = "x\" policy=\"good\"\nERROR";
        assert_eq!(
            Quoted(forged).to_string(),
            r#""x\" policy=\"good\"\nERROR""#
        );
        assert_eq!(Quoted("a\\").to_string(), r#""a\\""#);
    }

    #[test]
    fn quote_cuts_a_long_value_and_gives_its_length() {
        assert_eq!(quote("eth0"), "\"eth0\"");
        let long = "é".repeat(500_000);
        let shown = quote(&long);
        assert!(shown.ends_with("\"... (1000000 bytes)"), "{shown}");
        assert!(shown.len() < QUOTE_MAX + 30, "{shown}");
        assert_eq!(
            quote(&"x".repeat(QUOTE_MAX)),
            format!("\"{}\"", "x".repeat(QUOTE_MAX))
        );
    }
}
