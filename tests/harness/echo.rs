//! A long-lived TCP connection across a firewall: an echo server inside
//! one namespace and a connection to it opened from another, which a test
//! keeps open and talks over while it changes the rules in between (the
//! HTTP helpers open a new connection for each request).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::http_client::NetError;
use crate::netns::Netns;

/// A TCP server inside a namespace that sends back whatever each
/// connection sends it, until the connection closes. It stops when
/// dropped.
#[derive(Debug)]
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds `addr` inside `netns` and serves from background threads.
    pub fn start(netns: &Netns, addr: SocketAddr) -> EchoServer {
        let listener = netns.listen(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let stop = Arc::clone(&stop);
            move || accept(&listener, &stop)
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept(listener: &TcpListener, stop: &AtomicBool) {
    const WAKE_UP_MS: libc::c_int = 50;
    while !stop.load(Ordering::Relaxed) {
        let mut readable = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the wake-up lets the loop see `stop`.
        unsafe { libc::poll(&mut readable, 1, WAKE_UP_MS) };
        match listener.accept() {
            // Each connection ends when its peer closes it (or at the end of
            // the test's process); the server does not wait for them.
            Ok((stream, _)) => drop(thread::spawn(move || echo(stream))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("test echo server: accept: {e}"),
        }
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A TCP connection opened from inside a namespace, kept open: each
/// [`EchoConnection::round_trip`] sends a message and reads it back.
#[derive(Debug)]
pub struct EchoConnection {
    stream: TcpStream,
}

impl EchoConnection {
    /// Connects from `netns` to the echo server at `addr`.
    pub fn open(netns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<Self, NetError> {
        let stream = netns.enter(|| TcpStream::connect_timeout(&addr, timeout))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(EchoConnection { stream })
    }

    /// Sends `message` and waits for the same bytes to come back.
    pub fn round_trip(&mut self, message: &str) -> Result<(), NetError> {
        self.stream.write_all(message.as_bytes())?;
        let mut back = vec![0u8; message.len()];
        self.stream.read_exact(&mut back)?;
        if back == message.as_bytes() {
            Ok(())
        } else {
            Err(NetError::Other(format!(
                "sent {message:?}, got back {:?}",
                String::from_utf8_lossy(&back)
            )))
        }
    }
}
