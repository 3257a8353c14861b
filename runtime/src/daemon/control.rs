//! The control socket: how `wasmwall event` (a DHCP server's hook),
//! `wasmwall status` and `wasmwall confirm` reach the running daemon.
//!
//! A Unix stream socket, mode 0600 in a 0700 directory, and a peer must be
//! root or the daemon's own user (checked with SO_PEERCRED, whatever the
//! file modes). One request per connection: one JSON object on one line of
//! at most [`MAX_REQUEST`] bytes, read within [`READ_TIMEOUT`]; one JSON
//! answer line; then the connection is closed. Anything else is answered
//! with an error (when the peer is still there) and changes nothing.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::leases::{AnyLease, LeaseAction};
use super::status::Status;
use crate::fields;
use crate::world::{Dhcpv6Lease, Lease};

/// The longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long a peer has to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// A request as written on the socket.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Empty>,
    /// Confirm the change that waits for confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Empty>,
    /// Answer only after the reconcile that includes this change.
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A lease change. A DHCPv4 lease names its client by `mac`; a DHCPv6
/// lease by `duid` and `iaid` (and `mac` when the server knows it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iaid: Option<u32>,
    /// A temporary DHCPv6 address (IA_TA).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
    pub ip: String,
    #[serde(default)]
    pub hostname: Option<String>,
    /// None: the interface with a prefix holding the address (dnsmasq does
    /// not name it for the leases it reports again when it restarts).
    #[serde(default)]
    pub iface: Option<String>,
    #[serde(default)]
    pub expires: Option<u64>,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Lease {
        action: LeaseAction,
        lease: AnyLease,
        wait: bool,
    },
    Status,
    Confirm,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
    /// What was done, in words (`confirm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    pub fn error(e: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(e.into()),
            ..Response::default()
        }
    }
}

/// Parses and checks one request line. Every field of a lease is checked as
/// in a world-state file; the error names the problem.
pub fn parse_request(line: &[u8]) -> Result<Command, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the request is not UTF-8".to_string())?;
    let request: Request =
        serde_json::from_str(text.trim_end()).map_err(|e| format!("bad request: {e}"))?;
    let given = [
        request.lease.is_some(),
        request.status.is_some(),
        request.confirm.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err("bad request: give one of `lease`, `status` or `confirm`".into());
    }
    if request.confirm.is_some() {
        return Ok(Command::Confirm);
    }
    match (request.lease, request.status) {
        (Some(l), None) => {
            let action: LeaseAction = l.action.parse()?;
            // A lease with an expiry of 0 is an infinite one (dnsmasq's way).
            let iface = l.iface.filter(|i| !i.is_empty());
            if let Some(i) = &iface {
                fields::ifname(i)?;
            }
            let hostname = l.hostname.filter(|h| !h.is_empty() && h != "*");
            if let Some(h) = &hostname {
                fields::hostname(h)?;
            }
            // An empty interface is resolved by the daemon from the address.
            let iface = iface.unwrap_or_default();
            let expires = l.expires.filter(|e| *e != 0);
            let lease = match l.duid {
                None => {
                    fields::ip(&l.ip)?;
                    if fields::ipv6(&l.ip).is_ok() {
                        return Err(format!(
                            "lease for {}: an IPv6 lease names the client's DUID (`duid`), not only a MAC",
                            l.ip
                        ));
                    }
                    if l.iaid.is_some() || l.temporary {
                        return Err("bad request: `iaid` and `temporary` are for a DHCPv6 lease, which names a `duid`".into());
                    }
                    let mac = l
                        .mac
                        .as_deref()
                        .ok_or("bad request: a DHCPv4 lease names a `mac`")?;
                    AnyLease::V4(Lease {
                        mac: fields::mac(mac)?,
                        ip: l.ip,
                        hostname,
                        iface,
                        expires,
                    })
                }
                Some(duid) => {
                    fields::ipv6(&l.ip).map_err(|e| format!("DHCPv6 lease: {e}"))?;
                    let mac = l.mac.as_deref().map(fields::mac).transpose()?;
                    let iaid = l
                        .iaid
                        .ok_or("bad request: a DHCPv6 lease names its `iaid`")?;
                    let lease = Dhcpv6Lease {
                        ip: l.ip,
                        duid: fields::duid(&duid)?,
                        iaid,
                        temporary: l.temporary,
                        hostname,
                        mac,
                        iface: String::new(),
                        expires,
                    };
                    // Checked with a stand-in interface: the daemon may
                    // have to resolve it.
                    let mut lease = Dhcpv6Lease {
                        iface: "lo".into(),
                        ..lease
                    }
                    .checked()?;
                    lease.iface = iface;
                    AnyLease::V6(lease)
                }
            };
            Ok(Command::Lease {
                action,
                lease,
                wait: request.wait,
            })
        }
        (None, Some(_)) => Ok(Command::Status),
        (Some(_), Some(_)) => Err("bad request: give one of `lease`, `status` or `confirm`".into()),
        (None, None) => Err("bad request: expected `lease`, `status` or `confirm`".into()),
    }
}

/// A request on its way to the daemon's loop, with where the answer goes.
pub struct Incoming {
    pub command: Command,
    pub reply: oneshot::Sender<Response>,
}

/// Binds the socket: any stale file of that name is removed (the caller
/// holds the state lock, so no other daemon serves this table), and the
/// socket is made with mode 0600 from the start.
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // The mask is the process's: restored right after. No other thread
    // creates files at this point of the start-up.
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = tokio::net::UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until the receiving end of `tx` is gone. Each is
/// served in its own task; at most [`MAX_CONNECTIONS`] at once.
pub async fn serve(listener: tokio::net::UnixListener, tx: mpsc::Sender<Incoming>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let own_uid = nix::unistd::geteuid().as_raw();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            serve_one(stream, tx, own_uid).await;
            drop(permit);
        });
    }
}

async fn serve_one(stream: tokio::net::UnixStream, tx: mpsc::Sender<Incoming>, own_uid: u32) {
    let peer = stream.peer_cred();
    let (read, mut write) = stream.into_split();
    let answer = match peer {
        Ok(cred) if cred.uid() == 0 || cred.uid() == own_uid => handle(read, tx, cred.pid()).await,
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid(),
                "control socket: refused a peer that is neither root nor wasmwall's user"
            );
            Response::error("permission denied: only root or wasmwall's user may use this socket")
        }
        Err(e) => Response::error(format!("cannot tell who is connecting: {e}")),
    };
    let mut line = serde_json::to_vec(&answer).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    line.push(b'\n');
    let _ = tokio::time::timeout(READ_TIMEOUT, write.write_all(&line)).await;
}

async fn handle(
    read: tokio::net::unix::OwnedReadHalf,
    tx: mpsc::Sender<Incoming>,
    pid: Option<i32>,
) -> Response {
    let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    let mut line = Vec::new();
    match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
        Err(_) => return Response::error("no request within 5 s"),
        Ok(Err(e)) => return Response::error(format!("cannot read the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if line.len() > MAX_REQUEST {
        tracing::warn!(
            ?pid,
            "control socket: refused a request of more than {MAX_REQUEST} bytes"
        );
        return Response::error(format!("request longer than {MAX_REQUEST} bytes"));
    }
    let command = match parse_request(&line) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(?pid, error = %e, "control socket: refused a request");
            return Response::error(e);
        }
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(Incoming { command, reply }).await.is_err() {
        return Response::error("the daemon is stopping");
    }
    answer
        .await
        .unwrap_or_else(|_| Response::error("the daemon is stopping"))
}

/// Sends one request and waits for the answer (for the command-line side).
pub fn request(socket: &Path, request: &Request, timeout: Duration) -> anyhow::Result<Response> {
    use anyhow::Context as _;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the wasmwall daemon at {} (is `wasmwall run` running with this config?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .context("cannot send the request to the daemon")?;
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .context("no answer from the daemon")?;
    if answer.is_empty() {
        anyhow::bail!("the daemon closed the connection without an answer");
    }
    serde_json::from_str(&answer).context("the daemon's answer is not valid")
}

/// The daemon's socket: `control_socket` of the config, else the state
/// file's path with extension `.sock`.
pub fn socket_path(config: &crate::config::Config, state_path: &Path) -> PathBuf {
    config
        .control_socket
        .clone()
        .unwrap_or_else(|| state_path.with_extension("sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lease_and_status_requests() {
        let c = parse_request(
            br#"{"lease":{"action":"old","mac":"AA:BB:CC:DD:EE:FF","ip":"192.168.1.9","hostname":"nas","iface":"lan0","expires":0},"wait":true}"#,
        )
        .unwrap();
        let Command::Lease {
            action,
            lease,
            wait,
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(action, LeaseAction::Renew);
        let AnyLease::V4(lease) = lease else {
            panic!("a DHCPv4 lease")
        };
        assert_eq!(lease.mac, "aa:bb:cc:dd:ee:ff");
        assert_eq!(lease.expires, None);
        assert!(wait);
        assert_eq!(parse_request(b"{\"status\":{}}\n"), Ok(Command::Status));
        assert_eq!(parse_request(b"{\"confirm\":{}}\n"), Ok(Command::Confirm));
        let Ok(Command::Lease { lease, .. }) = parse_request(
            br#"{"lease":{"action":"del","mac":"02:00:00:00:00:01","ip":"10.0.0.1"}}"#,
        ) else {
            panic!("a lease without its interface")
        };
        assert_eq!(lease.iface(), "", "left for the daemon to resolve");
        let Ok(Command::Lease {
            lease: AnyLease::V6(lease),
            ..
        }) = parse_request(
            br#"{"lease":{"action":"add","duid":"00:03:00:01:02:00:00:00:00:09","iaid":7,"temporary":true,"ip":"2001:db8::9","hostname":"nas"}}"#,
        )
        else {
            panic!("a DHCPv6 lease")
        };
        assert_eq!(lease.iaid, 7);
        assert!(lease.temporary);
        assert_eq!(lease.mac.as_deref(), Some("02:00:00:00:00:09"));
        assert_eq!(lease.iface, "");
    }

    #[test]
    fn bad_requests_name_the_problem() {
        for (text, needle) in [
            (&b"\xff\xfe"[..], "not UTF-8"),
            (b"hello", "bad request"),
            (b"{}", "expected `lease`, `status` or `confirm`"),
            (b"{\"status\":{},\"confirm\":{}}", "give one of"),
            (b"{\"status\":{},\"lease\":null,\"x\":1}", "unknown field"),
            (
                br#"{"lease":{"action":"add","mac":"zz","ip":"1.2.3.4","iface":"lan0"}}"#,
                "not six hex pairs",
            ),
            (
                br#"{"lease":{"action":"boom","mac":"02:00:00:00:00:01","ip":"1.2.3.4","iface":"lan0"}}"#,
                "lease action",
            ),
            (
                br#"{"lease":{"action":"add","mac":"02:00:00:00:00:01","ip":"1.2.3.4","iface":"a/b"}}"#,
                "interface name",
            ),
            (
                br#"{"lease":{"action":"add","mac":"02:00:00:00:00:01","ip":"1.2.3.4","iface":"lan0","hostname":"a b"}}"#,
                "host name",
            ),
            (
                br#"{"lease":{"action":"add","mac":"02:00:00:00:00:01","ip":"2001:db8::1"}}"#,
                "names the client's DUID",
            ),
            (
                br#"{"lease":{"action":"add","duid":"00:04:01:02","ip":"10.0.0.1","iaid":1}}"#,
                "DHCPv6 lease: \"10.0.0.1\" is not an IPv6 address",
            ),
            (
                br#"{"lease":{"action":"add","duid":"00:04:01:02","ip":"2001:db8::1"}}"#,
                "`iaid`",
            ),
            (
                br#"{"lease":{"action":"add","ip":"10.0.0.1"}}"#,
                "names a `mac`",
            ),
        ] {
            let err = parse_request(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        /// Every field checked; the interface may be left for the daemon.
        fn checked_but_iface(lease: &AnyLease) -> bool {
            let mut with_iface = lease.clone();
            if with_iface.iface().is_empty() {
                with_iface.set_iface("lan0".into());
            }
            with_iface.clone().checked() == Ok(with_iface)
        }

        proptest! {
            #[test]
            fn any_bytes_are_a_checked_command_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                if let Ok(Command::Lease { lease, .. }) = parse_request(&bytes) {
                    prop_assert!(checked_but_iface(&lease));
                }
            }

            #[test]
            fn leaseish_json_is_checked(
                action in "(add|old|renew|del|[a-z]{0,5})",
                mac in "(([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}|.{0,20})",
                ip in "([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-f:]{2,20}|.{0,10})",
                host in prop::option::of("\\PC{0,30}"),
                iface in prop::option::of("\\PC{0,20}"),
                expires in prop::option::of(any::<u64>()),
            ) {
                let json = serde_json::json!({"lease": {
                    "action": action, "mac": mac, "ip": ip, "hostname": host,
                    "iface": iface, "expires": expires}});
                if let Ok(Command::Lease { lease, .. }) = parse_request(json.to_string().as_bytes()) {
                    prop_assert!(checked_but_iface(&lease));
                }
            }
        }
    }
}
