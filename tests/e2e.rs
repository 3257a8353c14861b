//! The scenario this project grew from, end to end: the real `wasmwall`
//! binary, the real `port-forward` policy (in Rust, Python and JavaScript), a
//! real kernel and real packets.
//!
//! Two network namespaces stand for the phone (192.168.0.2) and the laptop
//! (192.168.0.9), joined by a veth pair. The laptop runs an HTTP server on
//! 127.0.0.1:4000 and, as a control, another one on 0.0.0.0:8081. With the
//! policy applied, the phone's `GET http://192.168.0.9/` is answered by the
//! loopback-only server and the other port is dropped; after clean-up the
//! laptop is exactly as it was before.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmwall_e2e::{
    Child, HttpServer, NetError, Netns, START_TIMEOUT, STOP_TIMEOUT, TempDir, compile_cache_dir,
    files_in, find_line, http_get, is_root, logged_field, policy_wasm, run, run_unchecked,
    skip_unless_root, tcp_connect, temp_dir, toml_path, veth_pair, wait_until, wasmwall_bin,
    wasmwall_in,
};

const PHONE_IF: &str = "veth-p";
const PHONE_ADDR: &str = "192.168.0.2/24";
const LAPTOP_IF: &str = "veth-l";
const LAPTOP_ADDR: &str = "192.168.0.9/24";
const ROUTE_LOCALNET: &str = "net/ipv4/conf/veth-l/route_localnet";
const TABLE: &str = "inet wasmwall";

/// An answer on a veth pair takes milliseconds; the rest is slack for a
/// loaded machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// A dropped SYN gets no answer at all; a refused one is answered at once.
const DROP_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

fn laptop_port(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 168, 0, 9], port))
}

/// The seed's home LAN, wasmwall's config for the laptop, and a directory
/// for its state file and logs.
struct SeedLan {
    // Fields drop in this order: servers, namespaces, then the directory.
    server: HttpServer,
    other_port: HttpServer,
    phone: Netns,
    laptop: Netns,
    // wasmwall is started from this throwaway namespace (see `wasmwall_in`).
    launcher: Netns,
    config: PathBuf,
    state_dir: PathBuf,
    dir: TempDir,
}

impl SeedLan {
    /// The LAN, with wasmwall configured to run the port-forward policy
    /// built as `target/policies/<policy_file>.wasm`, under the name
    /// `port-forward` whatever its language.
    fn new(policy_file: &str) -> SeedLan {
        let dir = temp_dir();
        let phone = Netns::new("phone");
        let laptop = Netns::new("laptop");
        let launcher = Netns::new("launcher");
        veth_pair(
            (&phone, PHONE_IF, PHONE_ADDR),
            (&laptop, LAPTOP_IF, LAPTOP_ADDR),
        );
        let server = HttpServer::start(&laptop, SocketAddr::from(([127, 0, 0, 1], 4000)));
        let other_port = HttpServer::start(&laptop, SocketAddr::from(([0, 0, 0, 0], 8081)));

        let state_dir = dir.path().join("state");
        let config = dir.path().join("wasmwall.toml");
        let toml = format!(
            "table = \"wasmwall\"\n\
             state_dir = {state_dir}\n\
             \n\
             [cache]\n\
             dir = {cache_dir}\n\
             \n\
             [[policy]]\n\
             name = \"port-forward\"\n\
             path = {policy}\n\
             \n\
             [policy.config]\n\
             lan_interface = \"{LAPTOP_IF}\"\n",
            state_dir = toml_path(&state_dir),
            cache_dir = toml_path(&compile_cache_dir()),
            policy = toml_path(&policy_wasm(policy_file)),
        );
        fs::write(&config, toml).expect("write wasmwall.toml");

        SeedLan {
            server,
            other_port,
            phone,
            laptop,
            launcher,
            config,
            state_dir,
            dir,
        }
    }

    /// `wasmwall SUBCOMMAND --config <config> --netns <laptop>`.
    fn wasmwall(&self, subcommand: &str) -> Command {
        wasmwall_in(&self.launcher, &self.laptop, subcommand, &self.config)
    }

    /// Starts `wasmwall run` and waits until its rules and sysctl are live.
    fn start(&self) -> Child {
        let mut daemon = Child::spawn(&mut self.wasmwall("run"), self.dir.path(), "wasmwall-run");
        wait_until(
            "`wasmwall run` to create table inet wasmwall in the laptop",
            START_TIMEOUT,
            || {
                if let Some(status) = daemon.try_status() {
                    panic!("`wasmwall run` exited before applying its rules: {status}");
                }
                if self.laptop.has_table("inet", "wasmwall") {
                    Ok(())
                } else {
                    Err("no such table yet".to_string())
                }
            },
        );
        wait_until(
            "`wasmwall run` to set route_localnet of the laptop's LAN interface",
            START_TIMEOUT,
            || match self.laptop.sysctl(ROUTE_LOCALNET) {
                value if value == "1" => Ok(()),
                value => Err(format!("it is {value}")),
            },
        );
        daemon
    }

    /// The JSON state files in the state directory (the lock files beside
    /// them stay, as lock files do).
    fn state_files(&self) -> Vec<PathBuf> {
        files_in(&self.state_dir)
            .into_iter()
            .filter(|file| file.extension().is_some_and(|ext| ext == "json"))
            .collect()
    }

    /// The seed's rules are live: the listing, the sysctl, real packets.
    fn assert_forwarding(&self) {
        let ruleset = self.laptop.ruleset();
        assert_eq!(
            ruleset.tables(),
            [TABLE],
            "the laptop should have wasmwall's table and no other\n{}",
            ruleset.text
        );
        let input = "port-forward/input";
        let prerouting = "port-forward/prerouting";
        ruleset.assert_statement(TABLE, input, &["type filter hook input", "policy drop;"]);
        ruleset.assert_statement(
            TABLE,
            input,
            &["ip daddr 127.0.0.1", "tcp dport 4000", "accept"],
        );
        ruleset.assert_statement(
            TABLE,
            "port-forward/forward",
            &["type filter hook forward", "policy drop;"],
        );
        ruleset.assert_statement(TABLE, prerouting, &["type nat hook prerouting"]);
        ruleset.assert_statement(
            TABLE,
            prerouting,
            &[
                "iifname \"veth-l\"",
                "ip saddr != 192.168.0.9",
                "tcp dport 80",
                "dnat ip to 127.0.0.1:4000",
            ],
        );
        assert_eq!(
            self.laptop.sysctl(ROUTE_LOCALNET),
            "1",
            "route_localnet of {LAPTOP_IF} in the laptop"
        );
        assert_eq!(
            self.state_files().len(),
            1,
            "one state file in {} while wasmwall's rules are live",
            self.state_dir.display()
        );

        assert_eq!(
            http_get(&self.phone, laptop_port(80), ANSWER_TIMEOUT).as_deref(),
            Ok(self.server.token()),
            "GET http://192.168.0.9/ from the phone should be answered by the \
             server on 127.0.0.1:4000\n{}",
            ruleset.text
        );
        assert_eq!(
            tcp_connect(&self.phone, laptop_port(8081), DROP_PROBE_TIMEOUT),
            Err(NetError::TimedOut),
            "a connection from the phone to 192.168.0.9:8081 should be dropped\n{}",
            ruleset.text
        );
    }

    /// The laptop as it is without wasmwall, before it starts and after it
    /// cleaned up: no table at all, route_localnet 0, port 80 refused, the
    /// other port answering, no state file.
    fn assert_pristine(&self) {
        let ruleset = self.laptop.ruleset();
        assert!(
            ruleset.tables().is_empty(),
            "the laptop should have no nftables table\n{}",
            ruleset.text
        );
        assert_eq!(
            self.laptop.sysctl(ROUTE_LOCALNET),
            "0",
            "route_localnet of {LAPTOP_IF} in the laptop"
        );
        assert_eq!(
            self.state_files(),
            Vec::<PathBuf>::new(),
            "state files left in {}",
            self.state_dir.display()
        );
        assert_eq!(
            http_get(&self.phone, laptop_port(80), ANSWER_TIMEOUT),
            Err(NetError::Refused),
            "GET http://192.168.0.9/ from the phone should be refused: nothing \
             listens on port 80 and nothing forwards it"
        );
        assert_eq!(
            http_get(&self.phone, laptop_port(8081), ANSWER_TIMEOUT).as_deref(),
            Ok(self.other_port.token()),
            "GET http://192.168.0.9:8081/ from the phone should be answered"
        );
    }
}

#[test]
fn seed_port_forward_and_clean_shutdown() {
    if skip_unless_root() {
        return;
    }
    seed_scenario("port-forward");
}

#[test]
fn seed_port_forward_in_python() {
    if skip_unless_root() {
        return;
    }
    seed_scenario("port-forward-py");
}

#[test]
fn seed_port_forward_in_javascript() {
    if skip_unless_root() {
        return;
    }
    seed_scenario("port-forward-js");
}

/// Pristine, forwarding with `wasmwall run`, pristine again after SIGTERM.
fn seed_scenario(policy_file: &str) {
    let lan = SeedLan::new(policy_file);
    lan.assert_pristine();

    let mut daemon = lan.start();
    lan.assert_forwarding();

    daemon.stop_cleanly(STOP_TIMEOUT);
    lan.assert_pristine();
}

#[test]
fn seed_cleanup_after_kill_9() {
    if skip_unless_root() {
        return;
    }
    let lan = SeedLan::new("port-forward");
    let mut daemon = lan.start();

    daemon.kill();
    let status = daemon.wait_timeout(STOP_TIMEOUT);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    // Fail closed: a dead daemon leaves its rules in force.
    lan.assert_forwarding();

    run(&mut lan.wasmwall("cleanup"));
    lan.assert_pristine();
}

#[test]
fn apply_then_cleanup() {
    if skip_unless_root() {
        return;
    }
    let lan = SeedLan::new("port-forward");

    run(&mut lan.wasmwall("apply"));
    lan.assert_forwarding();

    run(&mut lan.wasmwall("cleanup"));
    lan.assert_pristine();
}

#[test]
fn eval_runs_unprivileged_without_kernel() {
    // The evaluation runs unprivileged, outside any test namespace: as
    // nobody when the tests run as root (which switches to it), else as the
    // user they run as. Unprivileged, it cannot change the host.
    let dir = temp_dir();
    let with_mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
    };
    with_mode(dir.path(), 0o755);
    // Links or copies: the originals may sit below a directory nobody cannot
    // enter. The debug binary is large: link it when the file system allows.
    let bin = dir.path().join("wasmwall");
    if fs::hard_link(wasmwall_bin(), &bin).is_err() {
        fs::copy(wasmwall_bin(), &bin).expect("copy the wasmwall binary");
    }
    with_mode(&bin, 0o755);
    let wasm = dir.path().join("port-forward.wasm");
    fs::copy(policy_wasm("port-forward"), &wasm).expect("copy the policy");
    with_mode(&wasm, 0o644);
    let state = dir.path().join("state.json");
    fs::write(
        &state,
        r#"{"interfaces":[{"name":"veth-l","index":2,"up":true,"mac":"aa:bb:cc:dd:ee:ff","addresses":["192.168.0.9/24"]}],"leases":[]}"#,
    )
    .expect("write state.json");
    with_mode(&state, 0o644);

    let mut eval = if is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin);
        setpriv
    } else {
        Command::new(&bin)
    };
    let output = run(eval
        .arg("eval")
        .arg(&wasm)
        .arg("--state")
        .arg(&state)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", dir.path())
        .current_dir(dir.path()));

    for fragments in [
        &["hook input", "policy drop;"][..],
        &[
            "iifname \"veth-l\"",
            "ip saddr != 192.168.0.9",
            "tcp dport 80",
            "dnat ip to 127.0.0.1:4000",
        ],
        &["sysctl net.ipv4.conf.veth-l.route_localnet = 1"],
    ] {
        assert!(
            find_line(output.stdout.lines(), fragments).is_some(),
            "no line of `wasmwall eval` contains all of {fragments:?}\n{output}"
        );
    }
}

/// The handle of the first rule of `chain` whose text contains `needle`.
fn handle_of(ns: &Netns, chain: &str, needle: &str) -> String {
    let listed = ns
        .run(["nft", "-a", "list", "chain", "inet", "wasmwall", chain])
        .stdout;
    let line = listed
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?} in\n{listed}"));
    line.rsplit_once("# handle ")
        .expect("nft -a prints handles")
        .1
        .trim()
        .to_string()
}

#[test]
fn second_apply_sends_nothing_and_plan_shows_hand_edits() {
    if skip_unless_root() {
        return;
    }
    let lan = SeedLan::new("port-forward");
    let first = run(&mut lan.wasmwall("apply"));
    assert_eq!(
        logged_field(&first.stderr, "messages"),
        Some("7"),
        "{first}"
    );

    let second = run(&mut lan.wasmwall("apply"));
    assert_eq!(
        logged_field(&second.stderr, "messages"),
        Some("0"),
        "{second}"
    );
    assert_eq!(
        logged_field(&second.stderr, "read_table"),
        Some("false"),
        "the snapshot the first apply left is current: nothing is read\n{second}"
    );
    assert!(second.stderr.contains("nothing to change"), "{second}");

    let clean = run_unchecked(&mut lan.wasmwall("plan"));
    assert_eq!(clean.status.code(), Some(0), "{clean}");
    assert_eq!(clean.stdout, "", "{clean}");

    // Hand edits: one of wasmwall's rules deleted, one rule added, the
    // sysctl put back.
    let h = handle_of(&lan.laptop, "port-forward/input", "tcp sport 4000");
    lan.laptop.run([
        "nft",
        "delete",
        "rule",
        "inet",
        "wasmwall",
        "port-forward/input",
        "handle",
        &h,
    ]);
    lan.laptop.run([
        "nft",
        "insert",
        "rule",
        "inet",
        "wasmwall",
        "port-forward/input",
        "tcp",
        "dport",
        "23",
        "accept",
    ]);
    let added = handle_of(&lan.laptop, "port-forward/input", "tcp dport 23");
    lan.laptop
        .run(["sysctl", "-qw", "net.ipv4.conf.veth-l.route_localnet=0"]);
    let before = lan.laptop.ruleset().text;

    let pending = run_unchecked(&mut lan.wasmwall("plan"));
    assert_eq!(pending.status.code(), Some(2), "{pending}");
    let golden = format!(
        "delete rule inet wasmwall port-forward/input handle {added}  # not made by wasmwall\n\
         add rule inet wasmwall port-forward/input ip saddr 127.0.0.1 tcp sport 4000 accept  # port-forward 78c5d96a7a5b1b98\n\
         sysctl net.ipv4.conf.veth-l.route_localnet: 0 -> 1\n"
    );
    assert_eq!(pending.stdout, golden, "{pending}");
    assert!(
        pending
            .stderr
            .contains("pending: 1 rule delete, 1 rule add, 1 sysctl(s)"),
        "{pending}"
    );
    assert_eq!(lan.laptop.ruleset().text, before, "plan changes nothing");
    assert_eq!(
        lan.laptop.sysctl(ROUTE_LOCALNET),
        "0",
        "plan changes nothing"
    );

    let repair = run(&mut lan.wasmwall("apply"));
    assert_eq!(
        logged_field(&repair.stderr, "messages"),
        Some("2"),
        "{repair}"
    );
    assert_eq!(
        run_unchecked(&mut lan.wasmwall("plan")).status.code(),
        Some(0)
    );
    lan.assert_forwarding();

    run(&mut lan.wasmwall("cleanup"));
    lan.assert_pristine();
}

#[test]
fn run_repairs_hand_edits_as_they_happen() {
    if skip_unless_root() {
        return;
    }
    let lan = SeedLan::new("port-forward");
    let mut daemon = lan.start();
    let good = lan.laptop.ruleset().text;
    let edits: [&[&str]; 3] = [
        &["nft", "flush", "table", "inet", "wasmwall"],
        &["nft", "delete", "table", "inet", "wasmwall"],
        &[
            "nft",
            "add",
            "rule",
            "inet",
            "wasmwall",
            "port-forward/input",
            "accept",
        ],
    ];
    for edit in edits {
        lan.laptop.run(edit);
        // The timer is 30 s away: only the change notification can do this.
        wait_until(
            &format!("`wasmwall run` to repair `{}`", edit.join(" ")),
            Duration::from_secs(5),
            || {
                if let Some(status) = daemon.try_status() {
                    panic!("`wasmwall run` exited: {status}\n{daemon}");
                }
                let now = lan.laptop.ruleset().text;
                if now == good { Ok(()) } else { Err(now) }
            },
        );
    }
    let log = daemon.stderr();
    assert!(log.contains("reason=\"nftables changed\""), "{log}");
    lan.assert_forwarding();
    daemon.stop_cleanly(STOP_TIMEOUT);
    lan.assert_pristine();
}
