//! Conntrack-exact apply: right after a batch commits, the connection
//! tracking entries the change no longer allows or would translate
//! differently are deleted, and only those ([`crate::flows::judge`] decides,
//! from the table before and after). `plan` shows the same list without
//! deleting anything. A failure to read or cut them is logged and costs
//! nothing else: the rules are already in place.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::flows::{self, Cut, Judgement, Network, Route};
use crate::kernel::{Kernel, KernelError};
use crate::plan::{DesiredTable, Op, RuleTag, Transaction};

use super::Firewall;

/// What cutting flows did in one reconcile.
#[derive(Debug, Default, Clone)]
pub struct FlowsCut {
    /// Entries deleted.
    pub cut: usize,
    /// The first few, as text (`flow: reason`).
    pub examples: Vec<String>,
    /// Entries judged and kept.
    pub kept: usize,
    /// Entries the tables could not judge (left alone).
    pub unknown: usize,
    /// Time to read, judge and cut them.
    pub elapsed_us: u64,
}

/// Whether flows are cut after each batch.
#[derive(Debug)]
pub(super) struct FlowCutter {
    pub enabled: bool,
}

impl Default for FlowCutter {
    fn default() -> Self {
        FlowCutter { enabled: true }
    }
}

/// The namespace's count of conntrack entries.
const CONNTRACK_COUNT: &str = "/proc/sys/net/netfilter/nf_conntrack_count";

/// How many cut flows a log line names.
const EXAMPLES: usize = 5;

/// Routes from the kernel, each address asked once per judgement.
struct KernelNetwork<'k, K: Kernel> {
    kernel: &'k mut K,
    routes: HashMap<IpAddr, Option<Route>>,
    names: HashMap<u32, Option<String>>,
}

impl<K: Kernel> Network for KernelNetwork<'_, K> {
    fn route(&mut self, ip: IpAddr) -> Option<Route> {
        if let Some(r) = self.routes.get(&ip) {
            return r.clone();
        }
        let route = match self.kernel.route_oif(ip) {
            Ok(Some(index)) => {
                let kernel = &mut *self.kernel;
                let name = self
                    .names
                    .entry(index)
                    .or_insert_with(|| kernel.interface_name(index))
                    .clone();
                match name.as_deref() {
                    Some("lo") => Some(Route::Local),
                    Some(n) => Some(Route::Via(n.to_string())),
                    None => None,
                }
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, %ip, "route lookup failed");
                None
            }
        };
        self.routes.insert(ip, route.clone());
        route
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The tags of the rules of `old` that ask for their flows to be cut when
/// they go and are not in `new`.
fn cut_when_gone(old: &DesiredTable, new: &DesiredTable) -> HashSet<RuleTag> {
    let marked: HashSet<&RuleTag> = old
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .filter(|r| r.rule.cut_flows)
        .map(|r| &r.tag)
        .collect();
    if marked.is_empty() {
        return HashSet::new();
    }
    let kept: HashSet<&RuleTag> = new
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .map(|r| &r.tag)
        .collect();
    marked
        .into_iter()
        .filter(|t| !kept.contains(t))
        .cloned()
        .collect()
}

impl<K: Kernel> Firewall<K> {
    /// Cut the flows a change concerns after each batch (the default), or
    /// not (`[conntrack] cut_flows = false`).
    pub fn set_cut_flows(&mut self, enabled: bool) {
        self.flows.enabled = enabled;
    }

    /// Runs `f` with the table the change in `tx` is judged against: the
    /// table as last applied (in memory, else its record beside the state
    /// file), or an empty one when `tx` creates the runtime's table; None
    /// when it is not known.
    fn with_previous<T>(
        &mut self,
        tx: &Transaction,
        f: impl FnOnce(&mut Self, Option<&DesiredTable>) -> T,
    ) -> T {
        if tx.ops.iter().any(|op| matches!(op, Op::AddTable)) {
            return f(self, Some(&DesiredTable::default()));
        }
        if let Err(e) = self.applied() {
            tracing::warn!(error = %crate::text::error_chain(&e), "the record of the applied table is unreadable");
        }
        let taken = self.applied.take();
        let out = f(self, taken.as_ref().and_then(Option::as_ref));
        self.applied = taken;
        out
    }

    /// After a batch that committed `tx` (before the applied table is
    /// remembered): cut the flows the change to `desired` concerns.
    pub(super) fn after_batch(&mut self, tx: &Transaction, desired: &DesiredTable) -> FlowsCut {
        if !self.flows.enabled || tx.is_empty() {
            return FlowsCut::default();
        }
        self.with_previous(tx, |fw, previous| match previous {
            Some(old) => fw.cut_flows(old, desired),
            None => {
                tracing::info!("no flow was judged: the rules applied before are not recorded");
                FlowsCut::default()
            }
        })
    }

    /// The flows the change `tx` to `desired` would cut, or why that is
    /// not known.
    pub(super) fn pending_flows(
        &mut self,
        tx: &Transaction,
        desired: &DesiredTable,
    ) -> Result<Vec<Cut>, String> {
        if !self.flows.enabled {
            return Err("flows are not cut (`[conntrack] cut_flows = false`)".into());
        }
        if tx.is_empty() {
            return Ok(Vec::new());
        }
        self.with_previous(tx, |fw, previous| {
            let old = previous.ok_or("the rules applied before are not recorded")?;
            let judged = fw
                .flows_to_cut(old, desired)
                .map_err(|e| format!("cannot read the conntrack table: {e}"))?;
            Ok(judged.cuts)
        })
    }

    /// The flows of the kernel's conntrack table the change from `old` to
    /// `new` concerns, found without changing anything.
    pub fn flows_to_cut(
        &mut self,
        old: &DesiredTable,
        new: &DesiredTable,
    ) -> Result<Judgement, KernelError> {
        // A dump walks the kernel's whole conntrack hash table, shared by
        // every namespace (about 12 ms here, however few entries are
        // ours); the namespace's own count is one read.
        let count = self
            .kernel
            .read_sysctl(std::path::Path::new(CONNTRACK_COUNT))
            .ok();
        if count.as_deref().map(str::trim) == Some("0") {
            return Ok(Judgement::default());
        }
        let started = std::time::Instant::now();
        let flows = self.kernel.flows()?;
        let read_us = started.elapsed().as_micros();
        let marked = cut_when_gone(old, new);
        let mut network = KernelNetwork {
            kernel: &mut self.kernel,
            routes: HashMap::new(),
            names: HashMap::new(),
        };
        let judged = flows::judge(old, new, &marked, &flows, &mut network, now_ns());
        tracing::debug!(
            flows = flows.len(),
            read_us,
            judged_us = started.elapsed().as_micros() - read_us,
            routes = network.routes.len(),
            "conntrack table read and judged"
        );
        Ok(judged)
    }

    /// Deletes the flows the change from `old` to `new` concerns. Never
    /// fails: what cannot be read or cut is logged at warn.
    pub(super) fn cut_flows(&mut self, old: &DesiredTable, new: &DesiredTable) -> FlowsCut {
        let started = std::time::Instant::now();
        let mut done = self.cut_flows_now(old, new);
        done.elapsed_us = started.elapsed().as_micros() as u64;
        done
    }

    fn cut_flows_now(&mut self, old: &DesiredTable, new: &DesiredTable) -> FlowsCut {
        let judgement = match self.flows_to_cut(old, new) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the conntrack table; no flow was cut");
                return FlowsCut::default();
            }
        };
        if let Some(why) = &judgement.first_unknown {
            tracing::debug!(
                count = judgement.unknown,
                first = %why,
                "flows left alone: the rules depend on what a conntrack entry does not hold"
            );
        }
        let mut done = FlowsCut {
            kept: judgement.kept,
            unknown: judgement.unknown,
            ..FlowsCut::default()
        };
        if judgement.cuts.is_empty() {
            return done;
        }
        let entries: Vec<_> = judgement.cuts.iter().map(|c| c.flow.clone()).collect();
        match self.kernel.cut_flows(&entries) {
            Ok(n) => done.cut = n,
            Err(e) => {
                tracing::warn!(error = %e, count = entries.len(), "cannot cut the flows the change concerns");
                return done;
            }
        }
        for c in &judgement.cuts {
            tracing::debug!(flow = %c.flow, reason = %c.reason, "flow cut");
        }
        done.examples = judgement
            .cuts
            .iter()
            .take(EXAMPLES)
            .map(Cut::to_string)
            .collect();
        done
    }
}
