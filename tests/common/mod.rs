//! Helpers shared by the integration tests: a server running on its own thread that is
//! always shut down and joined, blocking clients for TCP and unix sockets with timeouts,
//! patterned payloads, unique socket paths, and bounded channel waits.
#![allow(dead_code)]

pub mod backend;
pub mod dns;
mod example;
pub mod h2;
pub mod process;
mod server;
pub mod tools;
mod wait;

#[allow(unused_imports)]
pub use example::{example_bin, ChildLog};
#[allow(unused_imports)]
pub use server::{pattern, recv, TestServer, TIMEOUT};
#[allow(unused_imports)]
pub use wait::wait_until;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Handler, NetAddr};

/// A blocking client on a TCP or unix socket, with read and write timeouts of [`TIMEOUT`].
#[derive(Debug)]
pub enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    /// Connects to a listener's address.
    pub fn connect(addr: &NetAddr) -> io::Result<Client> {
        let c = match addr {
            NetAddr::Inet(a) => Client::Tcp(TcpStream::connect(a)?),
            NetAddr::Unix(Some(p)) => Client::Unix(UnixStream::connect(p)?),
            NetAddr::Unix(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unnamed unix address",
                ))
            }
        };
        c.set_timeouts(Some(TIMEOUT))?;
        Ok(c)
    }

    /// Wraps a connected TCP stream (setting the timeouts).
    pub fn from_tcp(s: TcpStream) -> io::Result<Client> {
        let c = Client::Tcp(s);
        c.set_timeouts(Some(TIMEOUT))?;
        Ok(c)
    }

    pub fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Client::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Client::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    pub fn try_clone(&self) -> io::Result<Client> {
        Ok(match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone()?),
            Client::Unix(s) => Client::Unix(s.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Client::Tcp(s) => s.shutdown(how),
            Client::Unix(s) => s.shutdown(how),
        }
    }

    /// The client's own address, as the server sees it as `peer_addr` (an unnamed unix
    /// socket for a unix client).
    pub fn local_addr(&self) -> io::Result<NetAddr> {
        match self {
            Client::Tcp(s) => s.local_addr().map(NetAddr::Inet),
            Client::Unix(s) => s
                .local_addr()
                .map(|a| NetAddr::Unix(a.as_pathname().map(|p| p.to_path_buf()))),
        }
    }

    /// Reads until EOF (bounded by the read timeout; more than `limit` bytes is an error).
    pub fn read_to_eof(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            if out.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than {limit} bytes before EOF"),
                ));
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.read_exact(&mut v)?;
        Ok(v)
    }

    /// Asserts that the next read is EOF.
    pub fn expect_eof(&mut self) {
        let mut b = [0u8; 64];
        match self.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {n} bytes: {:?}", &b[..n]),
            Err(e) => panic!("expected EOF, got error {e}"),
        }
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Index of the first differing byte, for readable failures on large payloads.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or(if a.len() != b.len() {
            Some(a.len().min(b.len()))
        } else {
            None
        })
}

/// Asserts two payloads are equal without printing megabytes.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = first_difference(got, want) {
        panic!(
            "{what}: got {} bytes, want {}; first difference at byte {i}",
            got.len(),
            want.len()
        );
    }
}

/// A unix socket path in the temp directory, unique to this process and call.
pub fn unique_sock_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("wl-{tag}-{}-{n}.sock", std::process::id()))
}

/// Whether IPv6 loopback can be bound on this machine.
pub fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Receives `n` items, all within `timeout` in total, or panics naming `what`.
#[track_caller]
pub fn recv_n<T>(rx: &Receiver<T>, n: usize, timeout: Duration, what: &str) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => out.push(v),
            Err(e) => panic!("waiting for {what}: got {} of {n}: {e:?}", out.len()),
        }
    }
    out
}

/// Echoes everything it receives.
#[derive(Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    type State = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }
}
