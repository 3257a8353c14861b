//! The metrics endpoint: a minimal HTTP/1.1 responder for `GET /metrics`
//! on a loopback address or a Unix socket (`[metrics] listen`). Each
//! connection gets one answer and is closed; a request head is read for at
//! most [`READ_TIMEOUT`] and [`MAX_HEAD`] bytes; at most
//! [`MAX_CONNECTIONS`] are served at once. The text comes from the daemon's
//! loop (which holds the kernel socket that reads the rule counters),
//! asked through a channel.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::config::MetricsListen;

/// A scrape: the daemon answers with the text.
pub type Scrape = oneshot::Sender<String>;

const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemon may take to answer (a long reconcile runs first).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_HEAD: usize = 8 * 1024;
const MAX_CONNECTIONS: usize = 8;

pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Binds the endpoint (must be called inside the runtime). A Unix socket
/// replaces a stale one and gets its mode before anyone can connect.
pub fn bind(listen: &MetricsListen) -> io::Result<Listener> {
    match listen {
        MetricsListen::Tcp(addr) => {
            let std = std::net::TcpListener::bind(addr)?;
            std.set_nonblocking(true)?;
            Ok(Listener::Tcp(tokio::net::TcpListener::from_std(std)?))
        }
        MetricsListen::Unix { path, mode } => {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            use nix::sys::stat::{Mode, umask};
            let old = umask(Mode::from_bits_truncate(0o177));
            let bound = tokio::net::UnixListener::bind(path);
            umask(old);
            let listener = bound?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
            Ok(Listener::Unix(listener))
        }
    }
}

/// Removes the endpoint's socket file, if it has one.
pub fn unbind(listen: &MetricsListen) {
    if let MetricsListen::Unix { path, .. } = listen {
        let _ = std::fs::remove_file(Path::new(path));
    }
}

/// Accepts connections until the daemon's end of `tx` is gone.
pub async fn serve(listener: Listener, tx: mpsc::Sender<Scrape>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tx = tx.clone();
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, tx).await;
                    drop(permit);
                });
            }),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, tx).await;
                    drop(permit);
                });
            }),
        };
        if let Err(e) = accepted {
            tracing::warn!(error = %e, "metrics endpoint: accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics`; whether the client accepts OpenMetrics (Prometheus
    /// asks for it), else it gets the classic text format.
    Metrics {
        openmetrics: bool,
    },
    Refused(u16, &'static str),
}

/// Routes a complete request head (up to its blank line).
fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Route::Refused(400, "Bad Request");
    };
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Refused(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Refused(505, "HTTP Version Not Supported");
    }
    let path = target.split('?').next().unwrap_or_default();
    let openmetrics = head
        .split(|&b| b == b'\n')
        .skip(1)
        .map(String::from_utf8_lossy)
        .any(|h| {
            h.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("accept")
                    && value.contains("application/openmetrics-text")
            })
        });
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { openmetrics },
        (_, "/metrics") => Route::Refused(405, "Method Not Allowed"),
        _ => Route::Refused(404, "Not Found"),
    }
}

/// Reads a request head: None on timeout, close, or one too long.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, Route> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok(());
            }
            if head.len() > MAX_HEAD {
                return Err(Route::Refused(431, "Request Header Fields Too Large"));
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(Route::Refused(400, "Bad Request")),
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(head),
        Ok(Err(r)) => Err(r),
        Err(_) => Err(Route::Refused(408, "Request Timeout")),
    }
}

fn response(code: u16, reason: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, tx: mpsc::Sender<Scrape>) {
    let routed = match read_head(&mut stream).await {
        Ok(head) => route(&head),
        Err(refused) => refused,
    };
    let bytes = match routed {
        Route::Metrics { openmetrics } => {
            let (reply, text) = oneshot::channel();
            let asked = tx.send(reply).await.is_ok();
            match tokio::time::timeout(ANSWER_TIMEOUT, text).await {
                Ok(Ok(text)) if asked && openmetrics => {
                    response(200, "OK", crate::metrics::CONTENT_TYPE, &text)
                }
                Ok(Ok(text)) if asked => response(
                    200,
                    "OK",
                    crate::metrics::CLASSIC_CONTENT_TYPE,
                    &crate::metrics::classic_text(&text),
                ),
                _ => response(
                    503,
                    "Service Unavailable",
                    "text/plain; charset=utf-8",
                    "the daemon did not answer in time\n",
                ),
            }
        }
        Route::Refused(code, reason) => response(
            code,
            reason,
            "text/plain; charset=utf-8",
            &format!("{reason}: this endpoint serves GET /metrics\n"),
        ),
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_answered() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { openmetrics: false }
        );
        let prometheus = b"GET /metrics?x=1 HTTP/1.0\r\naccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";
        assert_eq!(route(prometheus), Route::Metrics { openmetrics: true });
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::Refused(405, "Method Not Allowed")
        );
        assert_eq!(
            route(b"GET / HTTP/1.1\r\n\r\n"),
            Route::Refused(404, "Not Found")
        );
        assert_eq!(
            route(b"GET /metrics\r\n\r\n"),
            Route::Refused(400, "Bad Request")
        );
        assert_eq!(
            route(b"GET /metrics SPDY/3\r\n\r\n"),
            Route::Refused(505, "HTTP Version Not Supported")
        );
    }

    #[tokio::test]
    async fn a_scrape_gets_the_daemons_text_and_an_endless_head_is_refused() {
        let (tx, mut rx) = mpsc::channel::<Scrape>(1);
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send("wasmwall_neighbours 1\n# EOF\n".into());
            }
        });
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(answer(server, tx.clone()));
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n")
            .await
            .unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        served.await.unwrap();
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.contains("Content-Length: 28\r\n"), "{got}");
        assert!(
            got.ends_with("\r\n\r\nwasmwall_neighbours 1\n# EOF\n"),
            "{got}"
        );

        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(answer(server, tx));
        client
            .write_all(&vec![b'a'; MAX_HEAD + 2048])
            .await
            .unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        served.await.unwrap();
        assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    }
}
