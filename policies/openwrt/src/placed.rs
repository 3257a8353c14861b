//! The rules of every chain, as the sections produce them: each rule is
//! placed in a chain by name (`input_wan`, `forward`, `helper_lan`, ...),
//! in the order the sections come; the ruleset takes each chain's rules
//! where fw4's template puts them.

use wasmwall_sdk::Rule;

#[derive(Debug, Default, Clone)]
pub struct Placed {
    rules: Vec<(String, Rule)>,
}

impl Placed {
    pub fn push(&mut self, chain: impl Into<String>, rule: Rule) {
        self.rules.push((chain.into(), rule));
    }

    /// Whether any rule placed anywhere is so.
    pub fn any(&self, test: impl Fn(&Rule) -> bool) -> bool {
        self.rules.iter().any(|(_, r)| test(r))
    }

    /// The chains rules were placed in, once each.
    pub fn chains(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.rules.iter().map(|(c, _)| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The rules placed in `chain`, in order.
    pub fn of<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = Rule> + 'a {
        self.rules
            .iter()
            .filter(move |(c, _)| c == chain)
            .map(|(_, r)| r.clone())
    }
}
