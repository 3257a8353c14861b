//! The jump graph of a policy's answer: the hooks each chain can be reached
//! from, a jump loop, and a chain nested deeper than the kernel allows. A
//! rule's edges are its jump or goto and the verdicts of the map its vmap
//! looks up (`maps::rule_targets`): the kernel follows both.

use std::collections::{BTreeSet, HashMap};

use super::maps::{MapTargets, rule_targets};
use super::{ChainInfo, JUMP_DEPTH_MAX};
use crate::bindings::wit;
use crate::ir::{ChainType, Hook};

/// A base chain that a chain's rules run from: its hook, kind and
/// priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Reach {
    pub hook: Hook,
    pub nat: bool,
    pub priority: i32,
}

/// The base chains from which each chain can be reached (itself for a base
/// chain, those of its callers for a regular chain).
pub(super) fn reaching_hooks(
    chains: &[wit::Chain],
    infos: &HashMap<&str, ChainInfo>,
    maps: &MapTargets,
) -> HashMap<String, BTreeSet<Reach>> {
    let mut reach: HashMap<String, BTreeSet<Reach>> = HashMap::new();
    let mut work: Vec<(String, Reach)> = Vec::new();
    for c in chains {
        if let Some(b) = infos.get(c.name.as_str()).and_then(|i| i.base) {
            let from = Reach {
                hook: b.hook,
                nat: b.chain_type == ChainType::Nat,
                priority: b.priority,
            };
            work.push((c.name.clone(), from));
        }
    }
    let by_name: HashMap<&str, &wit::Chain> = chains.iter().map(|c| (c.name.as_str(), c)).collect();
    while let Some((name, ctxt)) = work.pop() {
        if !reach.entry(name.clone()).or_default().insert(ctxt) {
            continue;
        }
        if let Some(chain) = by_name.get(name.as_str()) {
            for rule in &chain.rules {
                for t in rule_targets(rule, maps) {
                    work.push((t.to_string(), ctxt));
                }
            }
        }
    }
    reach
}

/// Finds a jump/goto cycle, returned as the chain names along it.
pub(super) fn find_cycle(chains: &[wit::Chain], maps: &MapTargets) -> Option<Vec<String>> {
    let edges: HashMap<&str, Vec<&str>> = chains
        .iter()
        .map(|c| {
            let targets = c.rules.iter().flat_map(|r| rule_targets(r, maps)).collect();
            (c.name.as_str(), targets)
        })
        .collect();
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut colour: HashMap<&str, u8> = HashMap::new();
    for start in chains.iter().map(|c| c.name.as_str()) {
        if colour.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, 1);
        while let Some((node, i)) = stack.last().copied() {
            let next = edges.get(node).and_then(|e| e.get(i)).copied();
            match next {
                Some(n) => {
                    stack.last_mut().expect("non-empty").1 += 1;
                    match colour.get(n) {
                        Some(1) => {
                            let pos = stack.iter().position(|(s, _)| *s == n).expect("on stack");
                            let mut cycle: Vec<String> =
                                stack[pos..].iter().map(|(s, _)| s.to_string()).collect();
                            cycle.push(n.to_string());
                            return Some(cycle);
                        }
                        Some(_) => {}
                        None if edges.contains_key(n) => {
                            colour.insert(n, 1);
                            stack.push((n, 0));
                        }
                        None => {}
                    }
                }
                None => {
                    colour.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// The path from a base chain to the first chain (in the answer's order)
/// that sits more than [`JUMP_DEPTH_MAX`] jumps deep, if any. The jump graph
/// must have no loop.
pub(super) fn too_deep(
    chains: &[wit::Chain],
    infos: &HashMap<&str, ChainInfo>,
    maps: &MapTargets,
) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = chains
        .iter()
        .enumerate()
        .filter(|(_, c)| infos.contains_key(c.name.as_str()))
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    // Edges to regular chains only: a jump to a base chain is reported
    // elsewhere.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); chains.len()];
    let mut incoming = vec![0usize; chains.len()];
    // In the answer's order, so that the path reported does not vary.
    for (from, chain) in chains.iter().enumerate() {
        if index.get(chain.name.as_str()) != Some(&from) {
            continue;
        }
        for t in chain.rules.iter().flat_map(|r| rule_targets(r, maps)) {
            if let Some(&to) = index.get(t)
                && infos.get(t).is_some_and(|i| i.base.is_none())
                && to != from
            {
                edges[from].push(to);
                incoming[to] += 1;
            }
        }
    }
    // Longest distance from a base chain, in topological order (Kahn).
    let mut depth: Vec<Option<usize>> = chains
        .iter()
        .map(|c| infos.get(c.name.as_str()).and_then(|i| i.base).map(|_| 0))
        .collect();
    let mut parent: Vec<Option<usize>> = vec![None; chains.len()];
    let mut ready: Vec<usize> = (0..chains.len())
        .filter(|&i| index.get(chains[i].name.as_str()) == Some(&i) && incoming[i] == 0)
        .collect();
    while let Some(from) = ready.pop() {
        for &to in &edges[from] {
            if let Some(d) = depth[from]
                && depth[to].is_none_or(|old| d + 1 > old)
            {
                depth[to] = Some(d + 1);
                parent[to] = Some(from);
            }
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push(to);
            }
        }
    }
    let deepest = (0..chains.len()).find(|&i| depth[i].is_some_and(|d| d > JUMP_DEPTH_MAX))?;
    let mut path = vec![chains[deepest].name.clone()];
    let mut at = deepest;
    while let Some(p) = parent[at] {
        path.push(chains[p].name.clone());
        at = p;
    }
    path.reverse();
    Some(path)
}

/// "a -> b -> c", with the middle of a long path left out.
pub(super) fn shorten_path(path: &[String]) -> String {
    if path.len() <= 8 {
        return path.join(" -> ");
    }
    format!(
        "{} -> ... -> {}",
        path[..3].join(" -> "),
        path[path.len() - 3..].join(" -> ")
    )
}
