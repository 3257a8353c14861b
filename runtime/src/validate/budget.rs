//! Budgets of kernel objects: how many rules, chains, base chains, sets,
//! set elements, counters, limits, conntrack helpers and flowtables one
//! policy may ask for, and the whole table may hold. Maps count as sets and
//! their elements as set elements (the kernel holds both alike), and so do
//! the inline maps of rules, each an anonymous set. An
//! answer inside every other limit can still make the kernel allocate
//! without bound while it holds a batch (each object costs it a transaction
//! entry, and the whole batch is held until its commit), and base chains use
//! up hook slots that every table on the machine shares (the kernel allows
//! 1024 functions per hook). Counting is pure and costs a pass over the
//! answer, done before anything is converted or sent.

use std::fmt;

use crate::bindings::wit;
use crate::ir::{self, Hook};

/// Most rules one policy's answer may have, unless the config says.
pub const DEFAULT_MAX_RULES: usize = 20_000;
/// Most chains (base and regular) of one policy.
pub const DEFAULT_MAX_CHAINS: usize = 1_000;
/// Most base chains of one policy, all hooks together.
pub const DEFAULT_MAX_BASE_CHAINS: usize = 32;
/// Most sets of one policy.
pub const DEFAULT_MAX_SETS: usize = 500;
/// Most set elements of one policy, all its sets together.
pub const DEFAULT_MAX_ELEMENTS: usize = 200_000;
/// Most named counters of one policy. A counter, a limit or a helper costs
/// the kernel about 0.3 KiB (5,000 of them: +1.4-1.5 MiB of unreclaimable
/// slab, `nft -f`, kernel 6.18; SECURITY.md), and 8 KiB more while its
/// batch is in the kernel when another process listens to nftables
/// notifications: a router names a few dozen.
pub const DEFAULT_MAX_COUNTERS: usize = 1_000;
/// Most limit objects of one policy.
pub const DEFAULT_MAX_LIMITS: usize = 1_000;
/// Most conntrack helper objects of one policy: the kernel has about a
/// dozen helpers, and a policy needs one object per helper and protocol.
pub const DEFAULT_MAX_CT_HELPERS: usize = 64;
/// Most flowtables of one policy: a router offloads to one or two. Each
/// holds an ingress hook on each of its devices.
pub const DEFAULT_MAX_FLOWTABLES: usize = 8;

/// The whole table's defaults. Their largest batch (every object of a full
/// table replaced: old and new are both held until the commit ends) is
/// measured in SECURITY.md (`kernel-memory`), and must stay under 256 MiB
/// of kernel memory. One policy may use all the rules and elements.
pub const DEFAULT_TABLE: TableBudget = TableBudget {
    rules: 20_000,
    chains: 2_000,
    base_chains_per_hook: 64,
    sets: 1_000,
    elements: 200_000,
    counters: 4_000,
    limits: 4_000,
    ct_helpers: 256,
    flowtables: 16,
};

/// The kernel's limit of functions on one hook of one family in a network
/// namespace (MAX_HOOK_COUNT, net/netfilter/core.c), shared by every table
/// and every tool. A table budget may not take more than a quarter of it.
pub const HOOK_SLOTS: usize = 1024;
/// The most base chains per hook a config may give the table.
pub const BASE_CHAINS_PER_HOOK_MAX: usize = HOOK_SLOTS / 4;

/// What one policy may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyBudget {
    pub rules: usize,
    pub chains: usize,
    pub base_chains: usize,
    pub sets: usize,
    pub elements: usize,
    pub counters: usize,
    pub limits: usize,
    pub ct_helpers: usize,
    pub flowtables: usize,
}

impl Default for PolicyBudget {
    fn default() -> Self {
        PolicyBudget {
            rules: DEFAULT_MAX_RULES,
            chains: DEFAULT_MAX_CHAINS,
            base_chains: DEFAULT_MAX_BASE_CHAINS,
            sets: DEFAULT_MAX_SETS,
            elements: DEFAULT_MAX_ELEMENTS,
            counters: DEFAULT_MAX_COUNTERS,
            limits: DEFAULT_MAX_LIMITS,
            ct_helpers: DEFAULT_MAX_CT_HELPERS,
            flowtables: DEFAULT_MAX_FLOWTABLES,
        }
    }
}

/// What the whole table may hold, all policies together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableBudget {
    pub rules: usize,
    pub chains: usize,
    pub base_chains_per_hook: usize,
    pub sets: usize,
    pub elements: usize,
    pub counters: usize,
    pub limits: usize,
    pub ct_helpers: usize,
    pub flowtables: usize,
}

impl Default for TableBudget {
    fn default() -> Self {
        DEFAULT_TABLE
    }
}

/// Every hook, in the order counts keep them.
pub const HOOKS: [Hook; 5] = [
    Hook::Prerouting,
    Hook::Input,
    Hook::Forward,
    Hook::Output,
    Hook::Postrouting,
];

fn hook_index(hook: Hook) -> usize {
    HOOKS.iter().position(|h| *h == hook).unwrap_or(0)
}

/// The kernel objects of one policy (or of many, added up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rules: usize,
    pub chains: usize,
    pub base_chains: [usize; HOOKS.len()],
    pub sets: usize,
    pub elements: usize,
    pub counters: usize,
    pub limits: usize,
    pub ct_helpers: usize,
    pub flowtables: usize,
}

impl Counts {
    /// Of a policy's answer, before it is converted.
    pub fn of_answer(answer: &wit::Ruleset) -> Counts {
        let mut c = Counts {
            chains: answer.chains.len(),
            sets: answer.sets.len() + answer.maps.len(),
            counters: answer.counters.len(),
            limits: answer.limits.len(),
            ct_helpers: answer.ct_helpers.len(),
            flowtables: answer.flowtables.len(),
            ..Counts::default()
        };
        for chain in &answer.chains {
            c.rules += chain.rules.len();
            if let Some(base) = &chain.base {
                c.base_chains[hook_index(super::rules::hook(base.hook))] += 1;
            }
            for rule in &chain.rules {
                if let Some(n) = inline_map_elements(&rule.action) {
                    c.sets += 1;
                    c.elements += n;
                }
            }
        }
        c.elements += answer.sets.iter().map(|s| s.elements.len()).sum::<usize>();
        c.elements += answer.maps.iter().map(|m| m.elements.len()).sum::<usize>();
        // Inline sets are sets of the kernel too.
        for m in answer
            .chains
            .iter()
            .flat_map(|ch| &ch.rules)
            .flat_map(|r| &r.matches)
        {
            let (sets, elements) = super::matches::inline_set_counts(&m.matcher);
            c.sets += sets;
            c.elements += elements;
        }
        c
    }

    /// Of a validated ruleset.
    pub fn of_ruleset(rules: &ir::Ruleset) -> Counts {
        let mut c = Counts {
            chains: rules.chains.len(),
            sets: rules.sets.len(),
            rules: rules.rule_count(),
            flowtables: rules.flowtables.len(),
            ..Counts::default()
        };
        for chain in &rules.chains {
            if let Some(base) = &chain.base {
                c.base_chains[hook_index(base.hook)] += 1;
            }
            for rule in &chain.rules {
                if let Some(map) = ir_inline_map(&rule.action) {
                    c.sets += 1;
                    c.elements += map.len();
                }
            }
        }
        for o in &rules.objects {
            c.add_object(o.object.type_id());
        }
        c.elements += rules.sets.iter().map(|s| s.elements.len()).sum::<usize>();
        for size in rules
            .chains
            .iter()
            .flat_map(|ch| &ch.rules)
            .flat_map(|r| &r.matches)
            .filter_map(ir::Match::inline_set_len)
        {
            c.sets += 1;
            c.elements += size;
        }
        c
    }

    /// Adds one base chain on `hook`.
    pub fn add_base_chain(&mut self, hook: Hook) {
        self.base_chains[hook_index(hook)] += 1;
    }

    /// Adds one object of the kernel's type `type_id` (NFT_OBJECT_*); the
    /// runtime makes no other types, and budgets none.
    pub fn add_object(&mut self, type_id: u32) {
        match type_id {
            ir::OBJECT_COUNTER => self.counters += 1,
            ir::OBJECT_LIMIT => self.limits += 1,
            ir::OBJECT_CT_HELPER => self.ct_helpers += 1,
            _ => {}
        }
    }

    pub fn base_chains_total(&self) -> usize {
        self.base_chains.iter().sum()
    }

    /// Every count but the base chains', by name, for both directions of
    /// [`Counts::add`] and [`Counts::sub`].
    fn fields(&mut self) -> [&mut usize; 8] {
        [
            &mut self.rules,
            &mut self.chains,
            &mut self.sets,
            &mut self.elements,
            &mut self.counters,
            &mut self.limits,
            &mut self.ct_helpers,
            &mut self.flowtables,
        ]
    }

    fn add(&mut self, other: &Counts) {
        let mut other = *other;
        for (a, b) in self.fields().into_iter().zip(other.fields()) {
            *a += *b;
        }
        for (a, b) in self.base_chains.iter_mut().zip(other.base_chains) {
            *a += b;
        }
    }

    fn sub(&mut self, other: &Counts) {
        let mut other = *other;
        for (a, b) in self.fields().into_iter().zip(other.fields()) {
            *a = a.saturating_sub(*b);
        }
        for (a, b) in self.base_chains.iter_mut().zip(other.base_chains) {
            *a = a.saturating_sub(b);
        }
    }
}

/// The elements of an action's inline map, if it has one.
fn inline_map_elements(action: &wit::Action) -> Option<usize> {
    let lookup = match action {
        wit::Action::Vmap(l) => l,
        wit::Action::DnatMap(n) | wit::Action::SnatMap(n) => &n.lookup,
        _ => return None,
    };
    match &lookup.map {
        wit::MapSource::Inline(elements) => Some(elements.len()),
        wit::MapSource::Named(_) => None,
    }
}

/// A validated action's inline map, if it has one.
fn ir_inline_map(action: &ir::Action) -> Option<&ir::SetElements> {
    let lookup = match action {
        ir::Action::Vmap(l) => l,
        ir::Action::DnatMap(n) | ir::Action::SnatMap(n) => &n.lookup,
        _ => return None,
    };
    match &lookup.map {
        ir::MapSource::Inline(elements) => Some(elements),
        ir::MapSource::Named(_) => None,
    }
}

/// Where one policy's answer goes over its budget, as problem messages
/// naming the count, the limit and the config key.
pub fn policy_overruns(counts: &Counts, budget: &PolicyBudget) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, have: usize, max: usize, key: &str| {
        if have > max {
            out.push(format!(
                "the ruleset has {have} {what}; the limit is {max} (limits.{key})"
            ));
        }
    };
    check("rules", counts.rules, budget.rules, "max_rules");
    check("chains", counts.chains, budget.chains, "max_chains");
    check(
        "base chains",
        counts.base_chains_total(),
        budget.base_chains,
        "max_base_chains",
    );
    check("sets", counts.sets, budget.sets, "max_sets");
    check(
        "set elements (all its sets together)",
        counts.elements,
        budget.elements,
        "max_elements",
    );
    check("counters", counts.counters, budget.counters, "max_counters");
    check("limits", counts.limits, budget.limits, "max_limits");
    check(
        "ct helpers",
        counts.ct_helpers,
        budget.ct_helpers,
        "max_ct_helpers",
    );
    check(
        "flowtables",
        counts.flowtables,
        budget.flowtables,
        "max_flowtables",
    );
    out
}

/// A policy whose answer would take the table over its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOverrun {
    pub policy: String,
    /// e.g. "the table would hold 60000 rules; its budget is 50000
    /// (table_budget.rules)".
    pub problems: Vec<String>,
}

impl fmt::Display for TableOverrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "over the table's budget: {}", self.problems.join("; "))
    }
}

/// Which policies' answers the table cannot take. `policies` are in config
/// order, each with what the kernel holds for it now and what it asks for
/// (None: it failed, and keeps what it holds). Starting from what the table
/// holds, each policy's change is taken in turn when the table stays within
/// budget (or does not grow past what it holds already, after a budget was
/// lowered); otherwise that policy is refused and keeps what it holds. So
/// the policies earlier in the config are served first, and an answer over
/// budget never costs another policy its rules.
pub fn table_overruns(
    policies: &[(&str, Counts, Option<Counts>)],
    budget: &TableBudget,
) -> Vec<TableOverrun> {
    let mut total = Counts::default();
    for (_, live, _) in policies {
        total.add(live);
    }
    let mut out = Vec::new();
    for (policy, live, wanted) in policies {
        let Some(wanted) = wanted else { continue };
        let mut next = total;
        next.sub(live);
        next.add(wanted);
        let problems = table_problems(&total, &next, budget);
        if problems.is_empty() {
            total = next;
        } else {
            out.push(TableOverrun {
                policy: policy.to_string(),
                problems,
            });
        }
    }
    out
}

fn table_problems(now: &Counts, next: &Counts, budget: &TableBudget) -> Vec<String> {
    let mut out = Vec::new();
    // Growing past the budget is refused; a table already over it (the
    // budget was lowered) may shrink or stay.
    let mut check = |what: String, now: usize, next: usize, max: usize, key: &str| {
        if next > max && next > now {
            out.push(format!(
                "the table would hold {next} {what}; its budget is {max} (table_budget.{key})"
            ));
        }
    };
    check("rules".into(), now.rules, next.rules, budget.rules, "rules");
    check(
        "chains".into(),
        now.chains,
        next.chains,
        budget.chains,
        "chains",
    );
    check("sets".into(), now.sets, next.sets, budget.sets, "sets");
    check(
        "set elements".into(),
        now.elements,
        next.elements,
        budget.elements,
        "elements",
    );
    check(
        "counters".into(),
        now.counters,
        next.counters,
        budget.counters,
        "counters",
    );
    check(
        "limits".into(),
        now.limits,
        next.limits,
        budget.limits,
        "limits",
    );
    check(
        "ct helpers".into(),
        now.ct_helpers,
        next.ct_helpers,
        budget.ct_helpers,
        "ct_helpers",
    );
    check(
        "flowtables".into(),
        now.flowtables,
        next.flowtables,
        budget.flowtables,
        "flowtables",
    );
    for (i, hook) in HOOKS.iter().enumerate() {
        check(
            format!("base chains on the {} hook", hook.as_str()),
            now.base_chains[i],
            next.base_chains[i],
            budget.base_chains_per_hook,
            "base_chains_per_hook",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rules: usize, input_chains: usize) -> Counts {
        let mut c = Counts {
            rules,
            chains: input_chains,
            ..Counts::default()
        };
        c.base_chains[hook_index(Hook::Input)] = input_chains;
        c
    }

    fn small() -> TableBudget {
        TableBudget {
            rules: 100,
            chains: 10,
            base_chains_per_hook: 4,
            sets: 10,
            elements: 100,
            counters: 10,
            limits: 10,
            ct_helpers: 2,
            flowtables: 1,
        }
    }

    #[test]
    fn a_policy_over_its_own_budget_is_told_each_overrun_and_its_key() {
        let budget = PolicyBudget {
            rules: 10,
            chains: 2,
            base_chains: 1,
            sets: 1,
            elements: 5,
            ..PolicyBudget::default()
        };
        let mut c = counts(11, 3);
        c.sets = 2;
        c.elements = 6;
        let problems = policy_overruns(&c, &budget);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].contains("11 rules; the limit is 10 (limits.max_rules)"));
        assert!(problems[2].contains("3 base chains; the limit is 1 (limits.max_base_chains)"));
        assert!(policy_overruns(&counts(10, 1), &PolicyBudget { sets: 0, ..budget }).is_empty());
    }

    #[test]
    fn the_earlier_policy_is_served_first_and_the_later_one_refused() {
        let policies = [
            ("a", Counts::default(), Some(counts(60, 2))),
            ("b", Counts::default(), Some(counts(60, 2))),
            ("c", Counts::default(), Some(counts(40, 2))),
        ];
        let out = table_overruns(&policies, &small());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].policy, "b");
        assert!(
            out[0].problems[0].contains("120 rules; its budget is 100 (table_budget.rules)"),
            "{:?}",
            out[0].problems
        );
        // c fits beside a, since b's answer was not taken.
    }

    #[test]
    fn base_chains_are_counted_per_hook() {
        let policies = [
            ("a", Counts::default(), Some(counts(0, 3))),
            ("b", Counts::default(), Some(counts(0, 2))),
        ];
        let out = table_overruns(&policies, &small());
        assert_eq!(out.len(), 1);
        assert!(
            out[0].problems[0].contains("5 base chains on the input hook"),
            "{:?}",
            out[0].problems
        );
    }

    #[test]
    fn what_a_failed_policy_holds_stays_counted() {
        // b failed and holds 90 rules: a may not grow past 10.
        let policies = [
            ("a", counts(5, 0), Some(counts(20, 0))),
            ("b", counts(90, 0), None),
        ];
        let out = table_overruns(&policies, &small());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].policy, "a");
        let fits = [
            ("a", counts(5, 0), Some(counts(10, 0))),
            ("b", counts(90, 0), None),
        ];
        assert!(table_overruns(&fits, &small()).is_empty());
    }

    #[test]
    fn a_table_over_a_lowered_budget_may_shrink_but_not_grow() {
        let policies = [("a", counts(200, 0), Some(counts(150, 0)))];
        assert!(table_overruns(&policies, &small()).is_empty());
        let policies = [("a", counts(200, 0), Some(counts(201, 0)))];
        assert_eq!(table_overruns(&policies, &small()).len(), 1);
    }

    #[test]
    fn maps_and_inline_maps_count_as_sets() {
        let element = |n| wit::MapElement {
            key: vec![wit::Value::Number(n)],
            data: wit::MapData::Verdict(wit::Verdict::Drop),
        };
        let vmap = wit::Action::Vmap(wit::MapLookup {
            key: vec![wit::Field::Dport(wit::Transport::Tcp)],
            map: wit::MapSource::Inline(vec![element(1), element(2), element(3)]),
        });
        let answer = wit::Ruleset {
            chains: vec![wit::Chain {
                name: "c".into(),
                base: None,
                rules: vec![wit::Rule {
                    matches: vec![],
                    statements: vec![],
                    action: vmap,
                    comment: None,
                }],
            }],
            maps: vec![wit::NamedMap {
                name: "m".into(),
                key: vec![wit::KeyType::InetService],
                data: None,
                intervals: false,
                elements: vec![element(1), element(2)],
            }],
            ..wit::Ruleset::empty()
        };
        let c = Counts::of_answer(&answer);
        assert_eq!((c.sets, c.elements), (2, 5));
    }

    #[test]
    fn a_policy_replacing_its_objects_counts_only_the_new_ones() {
        let policies = [("a", counts(100, 4), Some(counts(100, 4)))];
        assert!(table_overruns(&policies, &small()).is_empty());
    }

    #[test]
    fn objects_and_flowtables_are_budgeted_per_policy_and_for_the_table() {
        let budget = PolicyBudget {
            counters: 1,
            limits: 1,
            ct_helpers: 1,
            flowtables: 1,
            ..PolicyBudget::default()
        };
        let c = Counts {
            counters: 2,
            limits: 3,
            ct_helpers: 4,
            flowtables: 5,
            ..Counts::default()
        };
        assert_eq!(
            policy_overruns(&c, &budget),
            [
                "the ruleset has 2 counters; the limit is 1 (limits.max_counters)",
                "the ruleset has 3 limits; the limit is 1 (limits.max_limits)",
                "the ruleset has 4 ct helpers; the limit is 1 (limits.max_ct_helpers)",
                "the ruleset has 5 flowtables; the limit is 1 (limits.max_flowtables)",
            ]
        );
        let mut one = Counts::default();
        for type_id in [
            ir::OBJECT_CT_HELPER,
            ir::OBJECT_COUNTER,
            ir::OBJECT_LIMIT,
            2,
        ] {
            one.add_object(type_id);
        }
        one.flowtables = 1;
        let policies = [
            ("a", Counts::default(), Some(one)),
            ("b", Counts::default(), Some(one)),
            ("c", Counts::default(), Some(one)),
        ];
        let out = table_overruns(&policies, &small());
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            out[0].problems,
            ["the table would hold 2 flowtables; its budget is 1 (table_budget.flowtables)"]
        );
        assert_eq!(out[1].policy, "c");
    }
}
