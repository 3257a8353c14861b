//! What the policy says about a config it reads: the error that refuses
//! it, naming the file's line and the section, and the warnings it logs
//! and goes on (unknown or unsupported options, as fw4 warns of them).

use std::fmt;

use crate::uci::{Opt, Section};

/// A config the policy refuses: the running rules stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file's key (`uci`, `network`) or config key it came from.
    pub file: &'static str,
    pub line: usize,
    /// The section (`@rule[3] (Allow-Ping)`) and option, when there is one.
    pub place: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{} line {}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{} line {}, {}: {}",
                self.file, self.line, self.place, self.message
            )
        }
    }
}

impl Error {
    /// An error of a whole section, at its `config` line.
    pub fn section(section: &Section, message: impl Into<String>) -> Error {
        Error {
            file: "uci",
            line: section.line,
            place: section.id(),
            message: message.into(),
        }
    }

    /// An error of one option's value, at its line.
    pub fn option(section: &Section, opt: &Opt, message: impl Into<String>) -> Error {
        Error {
            file: "uci",
            line: opt.line,
            place: format!("{} option '{}'", section.id(), opt.name),
            message: message.into(),
        }
    }

    /// The same error, of another file (`network`).
    pub fn in_file(mut self, file: &'static str) -> Error {
        self.file = file;
        self
    }
}

/// What the policy tells the log and goes on with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    pub fn section(&mut self, section: &Section, message: impl fmt::Display) {
        self.0.push(format!(
            "uci line {}, {}: {message}",
            section.line,
            section.id()
        ));
    }

    pub fn option(&mut self, section: &Section, opt: &Opt, message: impl fmt::Display) {
        self.0.push(format!(
            "uci line {}, {} option '{}': {message}",
            opt.line,
            section.id(),
            opt.name
        ));
    }
}
