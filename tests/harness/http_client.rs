//! Real traffic from inside a namespace: one TCP connection, one HTTP
//! request, or a client requesting again and again in the background and
//! counting what was answered, and why the rest was not.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::netns::{Netns, enter_namespace};

/// Why a connection or request did not get an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer answered with a reset: nothing listens, nothing dropped it.
    Refused,
    /// No answer before the deadline: the packets were dropped.
    TimedOut,
    Other(String),
}

impl NetError {
    fn from_io(e: io::Error) -> NetError {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => NetError::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetError::TimedOut,
            _ => NetError::Other(e.to_string()),
        }
    }
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> NetError {
        NetError::from_io(e)
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Refused => f.write_str("connection refused"),
            NetError::TimedOut => f.write_str("timed out"),
            NetError::Other(e) => f.write_str(e),
        }
    }
}

/// Opens a TCP connection to `addr` from inside `netns` and closes it again.
pub fn tcp_connect(netns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<(), NetError> {
    netns.enter(|| {
        TcpStream::connect_timeout(&addr, timeout)
            .map(drop)
            .map_err(NetError::from_io)
    })
}

/// Sends `GET /` to `addr` from inside `netns`; the body of a 200 answer.
pub fn http_get(netns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<String, NetError> {
    netns.enter(|| get(addr, timeout))
}

/// `GET /` on a new connection from the calling thread's namespace.
fn get(addr: SocketAddr, timeout: Duration) -> Result<String, NetError> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(NetError::from_io)?;
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(remaining))
        .and_then(|()| stream.set_write_timeout(Some(remaining)))
        .map_err(NetError::from_io)?;
    let request = format!("GET / HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(NetError::from_io)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(NetError::from_io)?;
    let response = String::from_utf8_lossy(&response);
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.split(' ').nth(1) == Some("200") => Ok(body.to_string()),
        _ => Err(NetError::Other(format!("unexpected answer: {response:?}"))),
    }
}

/// What a [`ContinuousClient`] saw so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests answered with the expected body.
    pub successes: usize,
    /// One line per failed request: when it started (since the client
    /// started) and why it failed.
    pub failures: Vec<String>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} request(s) answered, {} failed",
            self.successes,
            self.failures.len()
        )?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}

/// A client sending `GET /` to one address from inside a namespace, again
/// and again, each request on a new connection (so each one goes through
/// the firewall's NAT anew), from a background thread until it is stopped.
/// An answer counts as a success only when its body is the expected one.
#[derive(Debug)]
pub struct ContinuousClient {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ContinuousClient {
    /// Starts sending from `netns` to `addr`, expecting `body` (an
    /// [`HttpServer::token`]); each request may take up to `timeout`, and
    /// `pause` separates one from the next.
    pub fn start(
        netns: &Netns,
        addr: SocketAddr,
        body: &str,
        timeout: Duration,
        pause: Duration,
    ) -> ContinuousClient {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (entered, has_entered) = std::sync::mpsc::channel();
        let thread = thread::spawn({
            let path = netns.path();
            let body = body.to_string();
            let tally = Arc::clone(&tally);
            let stop = Arc::clone(&stop);
            move || {
                let result = enter_namespace(&path);
                let ok = result.is_ok();
                let _ = entered.send(result);
                if !ok {
                    return;
                }
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let at = started.elapsed();
                    let outcome = match get(addr, timeout) {
                        Ok(got) if got == body => Ok(()),
                        Ok(got) => Err(format!("answered by another server: {got:?}")),
                        Err(e) => Err(e.to_string()),
                    };
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(()) => tally.successes += 1,
                        Err(why) => tally
                            .failures
                            .push(format!("at {:.3} s: GET {addr}: {why}", at.as_secs_f64())),
                    }
                    drop(tally);
                    thread::sleep(pause);
                }
            }
        });
        match has_entered.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("continuous client: {e}"),
            Err(_) => panic!("the continuous client's thread died"),
        }
        ContinuousClient {
            tally,
            stop,
            thread: Some(thread),
        }
    }

    /// What it saw so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops it (after the request under way) and returns what it saw.
    pub fn stop(mut self) -> Tally {
        self.halt();
        self.tally()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ContinuousClient {
    fn drop(&mut self) {
        self.halt();
    }
}
