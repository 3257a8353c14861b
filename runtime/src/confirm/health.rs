//! The owner's health checks of a change that waits for confirmation: a
//! TCP connect to a host that must stay reachable (from this host, so
//! through its output rules and the answers' input), and a command that
//! must exit 0, each within `check_timeout`. The command is the owner's own
//! (from the root-only config), run with no input and its output dropped.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ConfirmSettings;

/// One round of the configured checks: `Err` says which failed and why.
pub fn check(settings: &ConfirmSettings) -> Result<(), String> {
    if let Some(addr) = settings.check_tcp {
        tcp(addr, settings.check_timeout)?;
    }
    if !settings.check_command.is_empty() {
        command(&settings.check_command, settings.check_timeout)?;
    }
    Ok(())
}

fn tcp(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    TcpStream::connect_timeout(&addr, timeout)
        .map(drop)
        .map_err(|e| format!("TCP connect to {addr}: {e}"))
}

fn command(argv: &[String], timeout: Duration) -> Result<(), String> {
    let shown = argv.join(" ");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("command `{shown}`: cannot start it: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("command `{shown}`: {status}")),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "command `{shown}`: still running after {} ms; killed",
                    timeout.as_millis()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("command `{shown}`: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(command: &[&str], tcp: Option<SocketAddr>) -> ConfirmSettings {
        ConfirmSettings {
            check_command: command.iter().map(|s| s.to_string()).collect(),
            check_tcp: tcp,
            check_timeout: Duration::from_millis(500),
            ..ConfirmSettings::default()
        }
    }

    #[test]
    fn a_command_passes_by_its_exit_status_within_its_time() {
        assert_eq!(check(&settings(&["true"], None)), Ok(()));
        let e = check(&settings(&["false"], None)).unwrap_err();
        assert!(
            e.contains("command `false`") && e.contains("exit status: 1"),
            "{e}"
        );
        let e = check(&settings(&["sleep", "5"], None)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
        let e = check(&settings(&["/nonexistent/check"], None)).unwrap_err();
        assert!(e.contains("cannot start"), "{e}");
    }

    /// A port that is bound but not listening: a connect to it is refused,
    /// and it stays ours meanwhile. (A listener's port, once dropped, is
    /// free for the check's own connect to take as its source port, and a
    /// TCP connect from a port to itself succeeds: this test once failed so.)
    fn bound_but_closed() -> (std::os::fd::OwnedFd, SocketAddr) {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
        };
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn::new(127, 0, 0, 1, 0),
        )
        .unwrap();
        let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
        (fd, SocketAddr::from(std::net::SocketAddrV4::from(bound)))
    }

    #[test]
    fn a_tcp_check_needs_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        assert_eq!(check(&settings(&[], Some(open))), Ok(()));
        let (_held, closed) = bound_but_closed();
        let e = check(&settings(&[], Some(closed))).unwrap_err();
        assert!(
            e.contains(&format!("TCP connect to {closed}")) && e.contains("refused"),
            "{e}"
        );
    }
}
