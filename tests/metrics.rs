//! Rule counters in `status` and the Prometheus endpoint, end to end: the
//! real daemon in a router namespace runs home-router with a counter on
//! every rule; real HTTP requests from a LAN client move the counter of
//! the rule that lets them in, which `status` shows and neither a
//! reconcile that keeps the rule nor a hot swap to a version with the same
//! rules resets; a real Prometheus server (Debian's
//! `prometheus`, on loopback inside the namespace, its own config and
//! storage in a temp dir) scrapes the endpoint and its HTTP API returns
//! the series; `promtool check metrics` passes on a scrape; a rule added
//! by hand is repaired and counted. On a Unix socket the endpoint has the
//! mode the config names and goes when the daemon stops.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wasmwall::daemon::control::{self, LeaseRequest, Request};
use wasmwall::daemon::status::Status;
use wasmwall::kernel::{Count, RuleCounter};
use wasmwall_e2e::{
    Child, HttpServer, Netns, START_TIMEOUT, TempDir, compile_cache_dir, http_get, policy_wasm,
    replace_file, skip_unless_root, temp_dir, toml_path, veth_pair, wait_until, wasmwall_in,
};

const ROUTER_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const SERVED_PORT: u16 = 8080;
const METRICS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 19477));
const PROMETHEUS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 19090));
const TIMEOUT: Duration = Duration::from_secs(10);
const SCRAPED_TIMEOUT: Duration = Duration::from_secs(60);
/// The comment home-router gives the rule that accepts `lan_tcp` ports.
const SERVED: &str = "what the router serves the LAN";

#[derive(Debug, Default)]
struct Served {
    handles: Vec<u64>,
    count: Count,
}

struct Lab {
    router: Netns,
    client: Netns,
    launcher: Netns,
    dir: TempDir,
    config: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        Lab::listening(&format!("listen = \"{METRICS}\""))
    }

    /// A lab whose `[metrics]` section holds `metrics`.
    fn listening(metrics: &str) -> Lab {
        let dir = temp_dir();
        let router = Netns::new("router");
        let client = Netns::new("client");
        let launcher = Netns::new("launcher");
        veth_pair(
            (&router, "lan0", &format!("{ROUTER_LAN}/24")),
            (&client, "eth0", "192.168.1.2/24"),
        );
        router.add_interface("wan0", "203.0.113.1/24");
        router.run(["ip", "link", "set", "lo", "up"]);
        let config = dir.path().join("wasmwall.toml");
        let toml = format!(
            "state_dir = {state}\n\
             reconcile_interval_s = 0\n\
             \n\
             [metrics]\n\
             {metrics}\n\
             \n\
             [cache]\n\
             dir = {cache}\n\
             \n\
             [[policy]]\n\
             name = \"home\"\n\
             path = {path}\n\
             \n\
             [policy.config]\n\
             lan = \"lan0\"\n\
             wan = \"wan0\"\n\
             lan_tcp = \"{SERVED_PORT}\"\n",
            state = toml_path(&dir.path().join("state")),
            cache = toml_path(&compile_cache_dir()),
            path = toml_path(&dir.path().join("home.wasm")),
        );
        fs::write(&config, toml).expect("write the config");
        // A copy of the policy, which the daemon watches and a test may
        // replace.
        fs::copy(
            policy_wasm("home-router-counters"),
            dir.path().join("home.wasm"),
        )
        .expect("copy the policy");
        Lab {
            router,
            client,
            launcher,
            dir,
            config,
        }
    }

    fn start(&self) -> Child {
        let mut cmd = wasmwall_in(&self.launcher, &self.router, "run", &self.config);
        let mut daemon = Child::spawn(&mut cmd, self.dir.path(), "wasmwall-run");
        daemon.wait_until_running(START_TIMEOUT);
        daemon
    }

    /// Replaces the policy file with another version of it that gives the
    /// same rules: the same component with a custom section added (other
    /// bytes, another hash, the same code), and waits until the daemon
    /// swapped it in.
    fn swap_in_a_version_with_the_same_rules(&self, daemon: &Child) {
        let path = self.dir.path().join("home.wasm");
        let mut bytes = fs::read(&path).expect("read the policy");
        let name = b"wasmwall-test";
        let payload = b"another version, the same rules";
        let size = 1 + name.len() + payload.len();
        assert!(size < 128 && name.len() < 128, "one-byte LEB128 lengths");
        bytes.extend_from_slice(&[0, size as u8, name.len() as u8]);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(payload);
        replace_file(&path, &bytes);
        wait_until("the new version swapped in", START_TIMEOUT, || {
            let log = daemon.stderr();
            if log.contains("policy swapped") {
                Ok(())
            } else {
                Err(log)
            }
        });
    }

    fn socket(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("state/netns-{}.wasmwall.sock", self.router.name()))
    }

    fn ask(&self, request: &Request) -> control::Response {
        control::request(&self.socket(), request, TIMEOUT)
            .unwrap_or_else(|e| panic!("request to the daemon: {e:#}"))
    }

    fn status(&self) -> Status {
        let answer = self.ask(&Request {
            status: Some(control::Empty {}),
            ..Request::default()
        });
        *answer.status.expect("a status")
    }

    /// The rules that accept the served ports (home-router writes the
    /// comment on the TCP and the UDP one): their handles and summed count.
    fn served(&self) -> Served {
        let status = self.status();
        let rules: Vec<&RuleCounter> = status
            .counters
            .rules
            .iter()
            .filter(|r| r.comment.as_deref() == Some(SERVED))
            .collect();
        assert!(
            !rules.is_empty(),
            "no counter of rule {SERVED:?} in {:#?}",
            status.counters
        );
        let mut served = Served::default();
        for r in rules {
            assert_eq!(r.policy.as_deref(), Some("home"));
            served.handles.push(r.handle);
            served.count.add(r.count);
        }
        served
    }

    /// `GET path` on `addr` inside the router namespace: status and body.
    fn get(&self, addr: SocketAddr, path: &str) -> Result<(String, String), String> {
        self.get_accepting(addr, path, "*/*")
    }

    fn get_accepting(
        &self,
        addr: SocketAddr,
        path: &str,
        accept: &str,
    ) -> Result<(String, String), String> {
        self.router.enter(|| {
            let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(TIMEOUT))
                .map_err(|e| e.to_string())?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
            )
            .map_err(|e| e.to_string())?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
            let (head, body) = answer
                .split_once("\r\n\r\n")
                .ok_or_else(|| format!("no head in {answer:?}"))?;
            Ok((head.to_string(), body.to_string()))
        })
    }
}

/// Percent-encodes a PromQL query for a URL.
fn url_encoded(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn rule_counters_show_in_status_survive_a_reconcile_and_prometheus_scrapes_them() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let server = HttpServer::start(&lab.router, SocketAddr::from((ROUTER_LAN, SERVED_PORT)));
    let mut daemon = lab.start();

    // Real requests from the LAN move the served rule's counter.
    let before = lab.served();
    for _ in 0..3 {
        let body = http_get(
            &lab.client,
            SocketAddr::from((ROUTER_LAN, SERVED_PORT)),
            TIMEOUT,
        )
        .expect("the LAN client reaches the port the router serves");
        assert_eq!(body, server.token());
    }
    let moved = lab.served();
    assert!(
        moved.count.packets >= before.count.packets + 3,
        "three connections counted at least their SYNs: {before:?} then {moved:?}"
    );
    assert!(moved.count.bytes > before.count.bytes, "{moved:?}");
    let text = lab.status().render(0);
    assert!(text.contains("(policy total)"), "{text}");
    assert!(text.contains(&format!("\"{SERVED}\"")), "{text}");

    // A lease makes a reconcile that keeps the rule: same handle, the
    // count goes on from where it was.
    let reconciles = lab.status().reconciles;
    let answer = lab.ask(&Request {
        lease: Some(LeaseRequest {
            action: "add".into(),
            mac: Some("02:00:00:00:00:07".into()),
            ip: "192.168.1.7".into(),
            hostname: Some("laptop".into()),
            iface: Some("lan0".into()),
            ..LeaseRequest::default()
        }),
        wait: true,
        ..Request::default()
    });
    assert!(answer.ok, "{answer:?}");
    assert!(
        lab.status().reconciles > reconciles,
        "the lease made a reconcile"
    );
    let kept = lab.served();
    assert_eq!(
        kept.handles, moved.handles,
        "the diff kept the rules in place"
    );
    assert!(
        kept.count.packets >= moved.count.packets,
        "not reset: {kept:?}"
    );
    http_get(
        &lab.client,
        SocketAddr::from((ROUTER_LAN, SERVED_PORT)),
        TIMEOUT,
    )
    .unwrap();
    assert!(lab.served().count.packets > kept.count.packets);

    // A hot swap to a version that gives the same rules keeps them, and
    // their counters, in place.
    let before_swap = lab.served();
    lab.swap_in_a_version_with_the_same_rules(&daemon);
    let swapped = lab.served();
    assert_eq!(
        swapped.handles, before_swap.handles,
        "the swap kept the rules in place"
    );
    assert!(
        swapped.count.packets >= before_swap.count.packets,
        "not reset by the swap: {before_swap:?} then {swapped:?}"
    );

    // The endpoint answers GET /metrics only.
    let (head, scrape) = lab
        .get_accepting(
            METRICS,
            "/metrics",
            "application/openmetrics-text; version=1.0.0",
        )
        .expect("scrape the endpoint");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(scrape.ends_with("# EOF\n"), "{scrape}");
    let packets_line = scrape
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "wasmwall_rule_packets_total{{policy=\"home\",comment=\"{SERVED}\"}} "
            ))
        })
        .unwrap_or_else(|| panic!("no served-rule series in\n{scrape}"));
    let scraped: u64 = packets_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(scraped > kept.count.packets, "{packets_line}");
    for name in [
        "wasmwall_reconcile_duration_seconds_count ",
        "wasmwall_kernel_messages_total ",
        "wasmwall_policy_evaluation_duration_seconds_count{policy=\"home\"} ",
        "wasmwall_leases{family=\"ipv4\"} 1",
        "wasmwall_drift_repairs_total ",
        "wasmwall_hot_swaps_total 1",
    ] {
        assert!(
            scrape.lines().any(|l| l.starts_with(name)),
            "no {name:?} in\n{scrape}"
        );
    }
    let (head, _) = lab.get(METRICS, "/").unwrap();
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // promtool reads a scrape in the classic text format as valid metrics.
    let (head, scrape) = lab.get(METRICS, "/metrics").unwrap();
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut promtool = lab
        .router
        .command("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (scripts/setup installs the prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\non\n{scrape}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A real Prometheus scrapes the endpoint; its API returns the series.
    let config = lab.dir.path().join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: wasmwall\n    static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )
    .unwrap();
    let storage = lab.dir.path().join("prometheus-data");
    let mut cmd: Command = lab.router.command("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", storage.display()))
        .arg(format!("--web.listen-address={PROMETHEUS}"));
    let mut prometheus = Child::spawn(&mut cmd, lab.dir.path(), "prometheus");
    let query = format!("wasmwall_rule_packets_total{{comment=\"{SERVED}\"}}");
    let path = format!("/api/v1/query?query={}", url_encoded(&query));
    let answer = wait_until(
        "Prometheus to have the served rule's series",
        SCRAPED_TIMEOUT,
        || {
            let (head, body) = lab.get(PROMETHEUS, &path)?;
            if !head.starts_with("HTTP/1.1 200") {
                return Err(head);
            }
            if body.contains("\"policy\":\"home\"") && body.contains("\"job\":\"wasmwall\"") {
                Ok(body)
            } else {
                Err(body)
            }
        },
    );
    let value: serde_json::Value = serde_json::from_str(&answer).expect("the API's JSON");
    let series = &value["data"]["result"][0];
    assert_eq!(series["metric"]["comment"], SERVED, "{answer}");
    let counted: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
    assert!(counted >= kept.count.packets as f64, "{answer}");
    for query in [
        "wasmwall_reconcile_duration_seconds_count",
        "wasmwall_leases{family=\"ipv4\"}",
    ] {
        let path = format!("/api/v1/query?query={}", url_encoded(query));
        let (_, body) = lab.get(PROMETHEUS, &path).unwrap();
        assert!(body.contains("\"job\":\"wasmwall\""), "{query}: {body}");
    }
    prometheus.terminate();

    // A rule added by hand is a drift the daemon repairs, and counts.
    lab.router.run([
        "nft",
        "add",
        "rule",
        "inet",
        "wasmwall",
        "home/input",
        "counter",
    ]);
    wait_until("the drift repair to be counted", TIMEOUT, || {
        let (_, scrape) = lab.get(METRICS, "/metrics")?;
        if scrape
            .lines()
            .any(|l| l == "wasmwall_drift_repairs_total 1")
        {
            Ok(())
        } else {
            Err(scrape)
        }
    });
    daemon.stop_cleanly(TIMEOUT);
}

#[test]
fn the_endpoint_on_a_unix_socket_has_the_mode_the_config_names() {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    use std::os::unix::net::UnixStream;
    if skip_unless_root() {
        return;
    }
    let dir = temp_dir();
    let socket = dir.path().join("metrics.sock");
    let lab = Lab::listening(&format!(
        "listen = \"unix:{}\"\nsocket_mode = \"0660\"",
        socket.display()
    ));
    let mut daemon = lab.start();
    let meta = fs::metadata(&socket).expect("the metrics socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let mut s = UnixStream::connect(&socket).expect("connect to the metrics socket");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\nwasmwall_neighbours "), "{answer}");
    daemon.stop_cleanly(TIMEOUT);
    assert!(!socket.exists(), "the socket goes with the daemon");
}
