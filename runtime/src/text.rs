//! Small text helpers shared across the runtime: an error with its causes on
//! one line, cutting a string at a byte budget, and hex.

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
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
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
}
