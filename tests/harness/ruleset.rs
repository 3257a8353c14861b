//! Reading nftables listings (`nft list ruleset` and parts of it): tables,
//! the statements of a chain, counter values left out so that listings
//! taken while traffic flows compare equal.

/// A parsed `nft list ruleset`. Counter values are removed from statements
/// (`counter packets 3 bytes 180` becomes `counter`) so they can be compared.
#[derive(Debug)]
pub struct Ruleset {
    pub text: String,
    tables: Vec<String>,
    statements: Vec<Statement>,
}

#[derive(Debug)]
struct Statement {
    table: String,
    chain: String,
    text: String,
}

impl Ruleset {
    pub fn parse(text: &str) -> Ruleset {
        let mut tables = Vec::new();
        let mut statements = Vec::new();
        let mut blocks: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(header) = line.strip_suffix('{') {
                let header = header.trim().to_string();
                if blocks.is_empty()
                    && let Some(table) = header.strip_prefix("table ")
                {
                    tables.push(table.to_string());
                }
                blocks.push(header);
            } else if line == "}" {
                blocks.pop();
            } else if let [table, chain] = blocks.as_slice()
                && let (Some(table), Some(chain)) =
                    (table.strip_prefix("table "), chain.strip_prefix("chain "))
            {
                statements.push(Statement {
                    table: table.to_string(),
                    chain: chain.to_string(),
                    text: without_counter_values(line),
                });
            }
        }
        Ruleset {
            text: text.to_string(),
            tables,
            statements,
        }
    }

    /// The tables, as "family name", in listing order.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The statements of a chain (its `type ... hook ...; policy ...;` line
    /// and its rules), in order; empty when there is no such chain.
    pub fn chain<'a>(&'a self, table: &'a str, chain: &'a str) -> impl Iterator<Item = &'a str> {
        self.statements
            .iter()
            .filter(move |s| s.table == table && s.chain == chain)
            .map(|s| s.text.as_str())
    }

    /// Panics, showing the whole listing, unless some statement of the chain
    /// contains every one of `fragments`.
    pub fn assert_statement(&self, table: &str, chain: &str, fragments: &[&str]) {
        assert!(
            find_line(self.chain(table, chain), fragments).is_some(),
            "no statement in chain {chain:?} of table {table:?} contains all of {fragments:?}\n\
             --- nft list ruleset ---\n{}",
            self.text.trim_end()
        );
    }
}

/// `listing` (a statement, a table, a whole `nft list ruleset`) with the
/// values of its counters left out: `counter packets 3 bytes 180` becomes
/// `counter`; everything else stays exactly as it is.
pub fn without_counter_values(listing: &str) -> String {
    const COUNTER: &str = "counter";
    let mut out = String::with_capacity(listing.len());
    let mut rest = listing;
    while let Some(at) = rest.find("counter packets ") {
        let starts_a_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        out.push_str(&rest[..at + COUNTER.len()]);
        rest = &rest[at + COUNTER.len()..];
        if starts_a_word && let Some(after) = after_counter_values(rest) {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// What follows ` packets N bytes M` at the start of `text`, if it starts so.
fn after_counter_values(text: &str) -> Option<&str> {
    let text = after_number(text.strip_prefix(" packets ")?)?;
    after_number(text.strip_prefix(" bytes ")?)
}

/// What follows the decimal number at the start of `text`, if it starts
/// with one.
fn after_number(text: &str) -> Option<&str> {
    let rest = text.trim_start_matches(|c: char| c.is_ascii_digit());
    (rest.len() < text.len()).then_some(rest)
}

/// The first line that contains every one of `fragments`.
pub fn find_line<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    fragments: &[&str],
) -> Option<&'a str> {
    lines
        .into_iter()
        .find(|line| fragments.iter().all(|f| line.contains(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains_and_drops_counter_values() {
        let listing = "table inet wasmwall {\n\
            \tchain port-forward/input {\n\
            \t\ttype filter hook input priority filter; policy drop;\n\
            \t\tip daddr 127.0.0.1 tcp dport 4000 counter packets 3 bytes 180 accept\n\
            \t}\n\
            \n\
            \tset hosts {\n\
            \t\ttype ipv4_addr\n\
            \t\telements = { 10.0.0.1, 10.0.0.2 }\n\
            \t}\n\
            }\n\
            table ip other {\n\
            }\n";
        let ruleset = Ruleset::parse(listing);
        assert_eq!(ruleset.tables(), ["inet wasmwall", "ip other"]);
        let input: Vec<_> = ruleset
            .chain("inet wasmwall", "port-forward/input")
            .collect();
        assert_eq!(
            input,
            [
                "type filter hook input priority filter; policy drop;",
                "ip daddr 127.0.0.1 tcp dport 4000 counter accept",
            ]
        );
        ruleset.assert_statement(
            "inet wasmwall",
            "port-forward/input",
            &["tcp dport 4000", "accept"],
        );
        assert_eq!(ruleset.chain("inet wasmwall", "hosts").count(), 0);
    }

    #[test]
    fn counter_values_go_and_the_rest_stays() {
        let table = "table inet wasmwall {\n\
            \tchain input {\n\
            \t\ttcp dport 22 counter packets 12 bytes 720 accept\n\
            \t\tcounter packets 0 bytes 0 drop\n\
            \t\tcomment \"encounter packets 1 bytes 2\" accept\n\
            \t\tcounter name \"c\" accept\n\
            \t}\n\
            }\n";
        assert_eq!(
            without_counter_values(table),
            "table inet wasmwall {\n\
             \tchain input {\n\
             \t\ttcp dport 22 counter accept\n\
             \t\tcounter drop\n\
             \t\tcomment \"encounter packets 1 bytes 2\" accept\n\
             \t\tcounter name \"c\" accept\n\
             \t}\n\
             }\n"
        );
    }
}
