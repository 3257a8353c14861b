//! The daemon's Prometheus metrics: what is counted as it happens
//! ([`Metrics`], one per process, reached through [`global`]) and the text
//! a scrape gets ([`Metrics::encode`]), to which the numbers read at scrape
//! time are added ([`Snapshot`]: the rules' kernel counters, leases,
//! neighbours).
//!
//! Recording is a few atomic operations, so the engine and the daemon
//! record where they compute the number (next to the log line that shows
//! it); nothing here does I/O. Encoding uses `prometheus-client`'s text
//! form (OpenMetrics text, which Prometheus scrapes and `promtool check
//! metrics` reads).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::kernel::RuleCounter;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`classic_text`]'s.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The same metrics in Prometheus's classic text format (0.0.4), for a
/// client that does not ask for OpenMetrics (`promtool check metrics`,
/// curl): there a counter's HELP and TYPE name its samples' full name
/// (`x_total`, where OpenMetrics names the family `x`), and there are no
/// UNIT lines and no `# EOF`. Sample lines are the same in both.
pub fn classic_text(openmetrics: &str) -> String {
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.push(name);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(&name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// A label value written escaped as the text format wants (`\\`, `\"`,
/// `\n`): prometheus-client 0.24 writes label values as they are, and
/// comments and policy names are text a policy or an operator chose.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Text(pub String);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabel {
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    policy: Text,
    comment: Text,
}

type HistogramFamily = Family<PolicyLabel, Histogram, fn() -> Histogram>;

/// Reconcile and evaluation times: 50 us to about 1.6 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// What the daemon counts as it runs. Clones share the numbers.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub reconcile_seconds: Histogram,
    pub reconcile_failures: Counter,
    pub kernel_messages: Counter,
    pub evaluation_seconds: HistogramFamily,
    pub evaluation_failures: Family<PolicyLabel, Counter>,
    pub hot_swaps: Counter,
    pub rejected_swaps: Counter,
    pub drift_repairs: Counter,
    pub flows_cut: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconcile_seconds: duration_histogram(),
            reconcile_failures: Counter::default(),
            kernel_messages: Counter::default(),
            evaluation_seconds: Family::new_with_constructor(duration_histogram),
            evaluation_failures: Family::default(),
            hot_swaps: Counter::default(),
            rejected_swaps: Counter::default(),
            drift_repairs: Counter::default(),
            flows_cut: Counter::default(),
        }
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// The numbers read when a scrape comes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub rules: Vec<RuleCounter>,
    pub leases_v4: usize,
    pub leases_v6: usize,
    pub neighbours: usize,
}

/// A rule's `comment` label: its comment, else `<chain> rule <n>` (the nth
/// counted rule of its policy in that chain, from 1), so that the labels
/// are as many as the counted rules and stay while the rules do.
fn rule_labels(rules: &[RuleCounter]) -> Vec<RuleLabels> {
    let mut seen: Vec<(Option<&str>, &str, usize)> = Vec::new();
    rules
        .iter()
        .map(|r| {
            let policy = r.policy.as_deref();
            let comment = match &r.comment {
                Some(c) => c.clone(),
                None => {
                    let n = match seen
                        .iter_mut()
                        .find(|(p, c, _)| *p == policy && *c == r.chain)
                    {
                        Some((_, _, n)) => {
                            *n += 1;
                            *n
                        }
                        None => {
                            seen.push((policy, &r.chain, 1));
                            1
                        }
                    };
                    format!("{} rule {n}", r.chain)
                }
            };
            RuleLabels {
                policy: Text(policy.unwrap_or("").to_string()),
                comment: Text(comment),
            }
        })
        .collect()
}

fn gauge(value: usize) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

impl Metrics {
    /// Records one reconcile that took `elapsed` and sent `messages`.
    pub fn reconciled(&self, elapsed: Duration, messages: usize, flows_cut: usize) {
        self.reconcile_seconds.observe(elapsed.as_secs_f64());
        self.kernel_messages.inc_by(messages as u64);
        self.flows_cut.inc_by(flows_cut as u64);
    }

    /// Records one evaluation of `policy`.
    pub fn evaluated(&self, policy: &str, elapsed: Duration, failed: bool) {
        let label = PolicyLabel {
            policy: Text(policy.to_string()),
        };
        self.evaluation_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.evaluation_failures.get_or_create(&label).inc();
        }
    }

    /// The text of a scrape: these metrics and `now`'s numbers.
    pub fn encode(&self, now: &Snapshot) -> String {
        let mut r = Registry::default();
        r.register_with_unit(
            "wasmwall_reconcile_duration",
            "Time one reconcile took: observing the table, planning, the batch and cutting flows",
            Unit::Seconds,
            self.reconcile_seconds.clone(),
        );
        r.register(
            "wasmwall_reconcile_failures",
            "Reconciles that failed (the kernel refused the batch, or the table could not be read)",
            self.reconcile_failures.clone(),
        );
        r.register(
            "wasmwall_kernel_messages",
            "Netlink messages sent to nftables in reconcile batches",
            self.kernel_messages.clone(),
        );
        r.register_with_unit(
            "wasmwall_policy_evaluation_duration",
            "Time one evaluation of a policy took, by policy",
            Unit::Seconds,
            self.evaluation_seconds.clone(),
        );
        r.register(
            "wasmwall_policy_evaluation_failures",
            "Evaluations of a policy that failed (trap, deadline, invalid rules), by policy",
            self.evaluation_failures.clone(),
        );
        r.register(
            "wasmwall_hot_swaps",
            "New policy versions swapped in while running",
            self.hot_swaps.clone(),
        );
        r.register(
            "wasmwall_rejected_swaps",
            "New policy or config versions rejected (the running one stayed)",
            self.rejected_swaps.clone(),
        );
        r.register(
            "wasmwall_drift_repairs",
            "Reconciles that put back a table or sysctl changed by someone else",
            self.drift_repairs.clone(),
        );
        r.register(
            "wasmwall_flows_cut",
            "Conntrack entries cut because a change no longer allowed them",
            self.flows_cut.clone(),
        );
        let leases: Family<FamilyLabel, Gauge> = Family::default();
        for (family, n) in [("ipv4", now.leases_v4), ("ipv6", now.leases_v6)] {
            leases
                .get_or_create(&FamilyLabel {
                    family: family.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        r.register(
            "wasmwall_leases",
            "DHCP leases held (DHCPv4 leases as ipv4, DHCPv6 as ipv6)",
            leases,
        );
        r.register(
            "wasmwall_neighbours",
            "Neighbours (ARP and NDP entries) held",
            gauge(now.neighbours),
        );
        let packets: Family<RuleLabels, Counter> = Family::default();
        let bytes: Family<RuleLabels, Counter> = Family::default();
        for (rule, labels) in now.rules.iter().zip(rule_labels(&now.rules)) {
            packets.get_or_create(&labels).inc_by(rule.count.packets);
            bytes.get_or_create(&labels).inc_by(rule.count.bytes);
        }
        r.register(
            "wasmwall_rule_packets",
            "Packets a rule's counter statement counted, by policy and comment",
            packets,
        );
        r.register_with_unit(
            "wasmwall_rule",
            "Bytes a rule's counter statement counted, by policy and comment",
            Unit::Bytes,
            bytes,
        );
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &r);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Count;

    fn rule(policy: &str, chain: &str, comment: Option<&str>, packets: u64) -> RuleCounter {
        RuleCounter {
            chain: chain.into(),
            handle: 1,
            policy: Some(policy.into()),
            comment: comment.map(str::to_string),
            count: Count {
                packets,
                bytes: packets * 100,
            },
        }
    }

    #[test]
    fn every_metric_is_encoded_with_its_type_unit_and_labels() {
        let m = Metrics::default();
        m.reconciled(Duration::from_micros(300), 12, 2);
        m.evaluated("home", Duration::from_micros(80), false);
        m.evaluated("home", Duration::from_micros(90), true);
        m.hot_swaps.inc();
        let text = m.encode(&Snapshot {
            rules: vec![
                rule("home", "forward", Some("lan \"web\""), 3),
                rule("home", "input", Some("a\\b\nc"), 1),
            ],
            leases_v4: 2,
            leases_v6: 1,
            neighbours: 4,
        });
        for line in [
            "# TYPE wasmwall_reconcile_duration_seconds histogram",
            "# UNIT wasmwall_reconcile_duration_seconds seconds",
            "wasmwall_reconcile_duration_seconds_count 1",
            "wasmwall_reconcile_duration_seconds_bucket{le=\"0.0004\"} 1",
            "wasmwall_reconcile_duration_seconds_bucket{le=\"0.0002\"} 0",
            "wasmwall_kernel_messages_total 12",
            "wasmwall_flows_cut_total 2",
            "wasmwall_policy_evaluation_duration_seconds_count{policy=\"home\"} 2",
            "wasmwall_policy_evaluation_failures_total{policy=\"home\"} 1",
            "wasmwall_hot_swaps_total 1",
            "wasmwall_rejected_swaps_total 0",
            "wasmwall_drift_repairs_total 0",
            "wasmwall_leases{family=\"ipv4\"} 2",
            "wasmwall_leases{family=\"ipv6\"} 1",
            "wasmwall_neighbours 4",
            "# TYPE wasmwall_rule_packets counter",
            "wasmwall_rule_packets_total{policy=\"home\",comment=\"lan \\\"web\\\"\"} 3",
            "wasmwall_rule_bytes_total{policy=\"home\",comment=\"lan \\\"web\\\"\"} 300",
            "wasmwall_rule_packets_total{policy=\"home\",comment=\"a\\\\b\\nc\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn the_classic_text_names_counters_by_their_samples_and_has_no_unit_or_eof() {
        let m = Metrics::default();
        m.hot_swaps.inc();
        let open = m.encode(&Snapshot {
            rules: vec![rule("home", "forward", Some("web"), 3)],
            ..Snapshot::default()
        });
        let text = classic_text(&open);
        for line in [
            "# TYPE wasmwall_hot_swaps_total counter",
            "wasmwall_hot_swaps_total 1",
            "# HELP wasmwall_rule_bytes_total Bytes a rule's counter statement counted, by policy and comment.",
            "# TYPE wasmwall_rule_bytes_total counter",
            "# TYPE wasmwall_reconcile_duration_seconds histogram",
            "# TYPE wasmwall_neighbours gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&text), samples(&open));
    }

    #[test]
    fn rules_without_a_comment_are_named_by_chain_and_place() {
        let rules = [
            rule("a", "forward", None, 1),
            rule("a", "forward", Some("web"), 1),
            rule("a", "forward", None, 1),
            rule("b", "forward", None, 1),
            rule("a", "input", None, 1),
        ];
        let names: Vec<(String, String)> = rule_labels(&rules)
            .into_iter()
            .map(|l| (l.policy.0, l.comment.0))
            .collect();
        let want = [
            ("a", "forward rule 1"),
            ("a", "web"),
            ("a", "forward rule 2"),
            ("b", "forward rule 1"),
            ("a", "input rule 1"),
        ];
        assert_eq!(names, want.map(|(p, c)| (p.to_string(), c.to_string())));
    }

    #[test]
    fn rules_sharing_policy_and_comment_are_summed() {
        let text = Metrics::default().encode(&Snapshot {
            rules: vec![
                rule("a", "forward", Some("web"), 2),
                rule("a", "input", Some("web"), 5),
            ],
            ..Snapshot::default()
        });
        assert!(
            text.contains("wasmwall_rule_packets_total{policy=\"a\",comment=\"web\"} 7\n"),
            "{text}"
        );
    }
}
