//! The test server shared by the core's and the middleware's integration tests (the
//! middleware includes this file with `#[path]`): a server serving on a thread of its own
//! that is always shut down and joined, patterned payloads and bounded channel waits.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use wireloop::{Handler, NetAddr, Server};

/// Upper bound for anything a test waits for: a bug fails the test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A server serving on a thread of its own. [`stop`](TestServer::stop) shuts it down and
/// joins it; dropping it (a failed test) does the same, bounded by [`TIMEOUT`].
pub struct TestServer {
    pub handle: wireloop::Handle,
    pub addrs: Vec<NetAddr>,
    done: Receiver<Result<(), String>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Runs `server.serve(factory)` on a new thread.
    pub fn start<H, F>(server: Server, factory: F) -> TestServer
    where
        H: Handler,
        F: Fn(usize) -> H + Sync + Send + 'static,
    {
        let handle = server.handle();
        let addrs = server.local_addrs().to_vec();
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.serve(factory)
                }));
                let _ = tx.send(match res {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("serve failed: {e}")),
                    Err(_) => Err("serve panicked".to_string()),
                });
            })
            .expect("spawn server thread");
        TestServer {
            handle,
            addrs,
            done,
            thread: Some(thread),
        }
    }

    /// Listener `i`'s bound address.
    pub fn addr(&self, i: usize) -> &NetAddr {
        &self.addrs[i]
    }

    /// Listener `i`'s bound inet address (panics for a unix listener).
    pub fn tcp_addr(&self, i: usize) -> SocketAddr {
        self.addrs[i].inet().expect("an inet listener")
    }

    /// Waits (at most `timeout`) for `serve` to return on its own, and joins the thread.
    pub fn wait(mut self, timeout: Duration) -> Result<(), String> {
        self.wait_inner(timeout)
    }

    /// Shuts the server down and waits for `serve` to return.
    pub fn stop(mut self) -> Result<(), String> {
        self.handle.shutdown();
        self.wait_inner(TIMEOUT)
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<(), String> {
        let res = match self.done.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                self.handle.shutdown();
                match self.done.recv_timeout(TIMEOUT) {
                    Ok(_) => Err(format!("serve did not return within {timeout:?}")),
                    Err(_) => {
                        // Leave the thread behind rather than hang the test run.
                        self.thread.take();
                        return Err(format!(
                            "serve did not return within {timeout:?}, nor after shutdown"
                        ));
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => Err("server thread vanished".into()),
        };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        res
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.shutdown();
            let _ = self.wait_inner(TIMEOUT);
        }
    }
}

/// `len` pseudo-random bytes (xorshift64*), reproducible from `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Receives one item within `timeout`, or panics naming `what`.
#[track_caller]
pub fn recv<T>(rx: &Receiver<T>, timeout: Duration, what: &str) -> T {
    match rx.recv_timeout(timeout) {
        Ok(v) => v,
        Err(e) => panic!("waiting for {what}: {e:?} after {timeout:?}"),
    }
}
