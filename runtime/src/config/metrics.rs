//! `[metrics]`: where the daemon serves its Prometheus metrics, if it does.
//! Opt-in; only on loopback or a Unix socket, so that no network sees the
//! firewall's counters unless an operator forwards them on purpose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: Option<String>,
    socket_mode: Option<String>,
}

/// Where the metrics endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsListen {
    /// A loopback address and port (`127.0.0.1:9477`, `[::1]:9477`).
    Tcp(SocketAddr),
    /// A Unix socket made with `mode` (0600 or 0660).
    Unix { path: PathBuf, mode: u32 },
}

/// `[metrics]`, resolved: None when it is off (the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: MetricsListen,
}

/// The prefix of a Unix socket's `listen`.
const UNIX: &str = "unix:";

/// Reads `[metrics]`; relative socket paths are from `base` (the config
/// file's directory). Errors are the message for the config error.
pub(super) fn resolve(raw: RawMetrics, base: &Path) -> Result<Option<MetricsConfig>, String> {
    let Some(listen) = raw.listen else {
        if raw.socket_mode.is_some() {
            return Err("`metrics.socket_mode` is set but `metrics.listen` is not".into());
        }
        return Ok(None);
    };
    let listen = if let Some(path) = listen.strip_prefix(UNIX) {
        if path.is_empty() {
            return Err("`metrics.listen` = \"unix:\" names no socket path".into());
        }
        let mode = match raw.socket_mode.as_deref() {
            None | Some("0600") => 0o600,
            Some("0660") => 0o660,
            Some(other) => {
                return Err(format!(
                    "`metrics.socket_mode` = {other:?}: use \"0600\" (root only) or \"0660\" (root and the socket's group)"
                ));
            }
        };
        MetricsListen::Unix {
            path: base.join(path),
            mode,
        }
    } else {
        if raw.socket_mode.is_some() {
            return Err(
                "`metrics.socket_mode` is only for a Unix socket (`listen = \"unix:PATH\"`)".into(),
            );
        }
        let addr: SocketAddr = listen.parse().map_err(|_| {
            format!(
                "`metrics.listen` = {listen:?} is neither an address with a port (\"127.0.0.1:9477\") nor \"unix:PATH\""
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "`metrics.listen` = {listen:?} is not a loopback address: the metrics endpoint has no authentication, so it serves only on 127.0.0.0/8, ::1 or a Unix socket"
            ));
        }
        MetricsListen::Tcp(addr)
    };
    Ok(Some(MetricsConfig { listen }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(listen: Option<&str>, mode: Option<&str>) -> Result<Option<MetricsConfig>, String> {
        let raw = RawMetrics {
            listen: listen.map(str::to_string),
            socket_mode: mode.map(str::to_string),
        };
        resolve(raw, Path::new("/etc/wasmwall"))
    }

    #[test]
    fn off_unless_listen_is_given() {
        assert_eq!(read(None, None), Ok(None));
        assert!(read(None, Some("0600")).unwrap_err().contains("listen"));
    }

    #[test]
    fn loopback_addresses_are_taken_and_others_refused() {
        for ok in ["127.0.0.1:9477", "127.0.0.53:1", "[::1]:9477"] {
            let c = read(Some(ok), None).unwrap().unwrap();
            assert_eq!(c.listen, MetricsListen::Tcp(ok.parse().unwrap()));
        }
        for bad in ["0.0.0.0:9477", "192.168.1.1:9477", "[::]:9477"] {
            let e = read(Some(bad), None).unwrap_err();
            assert!(e.contains("is not a loopback address"), "{bad}: {e}");
        }
        let e = read(Some("localhost:9477"), None).unwrap_err();
        assert!(e.contains("neither an address"), "{e}");
        let e = read(Some("127.0.0.1:9477"), Some("0660")).unwrap_err();
        assert!(e.contains("only for a Unix socket"), "{e}");
    }

    #[test]
    fn a_unix_socket_is_relative_to_the_config_and_0600_unless_said() {
        let c = read(Some("unix:metrics.sock"), None).unwrap().unwrap();
        assert_eq!(
            c.listen,
            MetricsListen::Unix {
                path: "/etc/wasmwall/metrics.sock".into(),
                mode: 0o600
            }
        );
        let c = read(Some("unix:/run/w/m.sock"), Some("0660"))
            .unwrap()
            .unwrap();
        assert_eq!(
            c.listen,
            MetricsListen::Unix {
                path: "/run/w/m.sock".into(),
                mode: 0o660
            }
        );
        assert!(
            read(Some("unix:/m"), Some("0666"))
                .unwrap_err()
                .contains("0660")
        );
        assert!(
            read(Some("unix:"), None)
                .unwrap_err()
                .contains("no socket path")
        );
    }
}
