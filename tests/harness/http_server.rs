//! A minimal HTTP server inside a namespace, for the tests' traffic to
//! reach: each answers with a token of its own and records who asked.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::netns::Netns;

static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0);

/// A minimal HTTP server listening inside a namespace. It answers every
/// request with a body token unique to this server, so a test knows exactly
/// which server answered, and records the address each request came from
/// (what a NAT in between made of it). It stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    token: String,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` inside `netns` and serves from a background thread.
    pub fn start(netns: &Netns, addr: SocketAddr) -> HttpServer {
        let listener = netns.listen(addr);
        let token = format!(
            "wasmwall-e2e-token-{}-{}-{}",
            process::id(),
            NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            addr.port()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = thread::spawn({
            let token = token.clone();
            let peers = Arc::clone(&peers);
            let stop = Arc::clone(&stop);
            move || serve(&listener, &token, &peers, &stop)
        });
        HttpServer {
            token,
            peers,
            stop,
            thread: Some(thread),
        }
    }

    /// The body of every answer.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The peer address of every request answered so far, oldest first.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, token: &str, peers: &Mutex<Vec<SocketAddr>>, stop: &AtomicBool) {
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
            Ok((stream, peer)) => match answer(stream, token) {
                Ok(()) => peers.lock().unwrap_or_else(|e| e.into_inner()).push(peer),
                Err(e) => eprintln!("test HTTP server: {peer}: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("test HTTP server: accept: {e}"),
        }
    }
}

fn answer(mut stream: TcpStream, token: &str) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf)? {
            0 => break,
            n => request.extend_from_slice(&buf[..n]),
        }
    }
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{token}",
        token.len()
    )?;
    stream.shutdown(Shutdown::Write)
}
