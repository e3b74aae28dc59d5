//! Helpers for the middleware's integration tests: a server on its own thread that is
//! always shut down and joined, child processes that are always killed and waited,
//! patterned payloads, bounded channel waits, and temporary files that remove themselves.
#![allow(dead_code)]

#[path = "../../../tests/common/example.rs"]
mod example;
#[path = "../../../tests/common/server.rs"]
mod server;
pub mod tls_client;
#[path = "../../../tests/common/wait.rs"]
mod wait;
#[allow(unused_imports)]
pub use example::{example_bin, ChildLog};
#[allow(unused_imports)]
pub use server::{pattern, recv, TestServer, TIMEOUT};
#[allow(unused_imports)]
pub use wait::wait_until;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A child process that is killed and reaped when dropped (a failed test included).
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already waited")
    }

    /// Waits (at most `timeout`) for the child to exit on its own; kills it after that.
    /// `Err` says it had to be killed.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        let child = self.child();
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.0 = None;
                    return Ok(st);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.0 = None;
                    return Err(format!("child did not exit within {timeout:?}; killed"));
                }
                Err(e) => return Err(format!("try_wait: {e}")),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A file in the temp directory, unique to this process and call, removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn with_contents(tag: &str, contents: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wlmw-{tag}-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// FNV-1a over `data`, continuing from `h` (start with [`FNV_START`]).
pub fn fnv1a(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// The FNV-1a offset basis.
pub const FNV_START: u64 = 0xCBF2_9CE4_8422_2325;

/// Receives items until `pick` returns `Some`, within `timeout` in total (the others are
/// returned too, in order, for checks), or panics naming `what`.
#[track_caller]
pub fn recv_until<T, R>(
    rx: &Receiver<T>,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&T) -> Option<R>,
) -> (R, Vec<T>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => {
                if let Some(r) = pick(&v) {
                    seen.push(v);
                    return (r, seen);
                }
                seen.push(v);
            }
            Err(e) => panic!("waiting for {what}: {e:?} after {timeout:?}"),
        }
    }
}

/// Everything already in the channel, without waiting.
pub fn drain<T>(rx: &Receiver<T>) -> Vec<T> {
    rx.try_iter().collect()
}

/// The process's resident set size and its peak so far (`VmRSS`, `VmHWM`), in bytes.
pub fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Echoes everything it receives (the handler above the layers under test).
pub struct Echo;

impl wireloop::Handler for Echo {
    type State = ();
    fn data(&mut self, conn: &mut wireloop::Conn<'_, ()>) -> wireloop::Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        wireloop::Action::None
    }
}
