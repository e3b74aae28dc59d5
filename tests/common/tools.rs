//! Outside tools the end-to-end tests drive — `python3 -m http.server` as a backend and
//! curl as a client — and a temporary directory for their files.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::process::free_port;
use super::{wait_until, TIMEOUT};

/// `python3 -m http.server` on a free port serving `dir`; killed on drop.
pub struct Python {
    child: Child,
    pub port: u16,
}

impl Python {
    /// Serves `dir` (waits until it accepts connections).
    pub fn start(dir: &Path) -> Python {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need python3 on PATH");
        let py = Python { child, port };
        assert!(
            wait_until(TIMEOUT, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "python http.server did not start"
        );
        py
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl; returns (exit code, stdout).
pub fn curl_status(args: &[&str]) -> (i32, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("these tests need curl on PATH");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// Runs curl, which must succeed; returns its stdout.
#[track_caller]
pub fn curl(args: &[&str]) -> Vec<u8> {
    let (code, out) = curl_status(args);
    assert_eq!(code, 0, "curl {args:?} failed");
    out
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory whose name holds `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "wl-rp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Python server script (`python3 -c SCRIPT ARGS`) that prints the port it listens on
/// as its first line; its stdin stays open until it is killed and reaped on drop.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    /// Starts `script` with `args`; `needs` names what it imports, for the failure message.
    pub fn start(script: &str, args: &[&str], needs: &str) -> PyServer {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("python3")
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("these tests need python3 on PATH");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python server did not start ({needs}): {line:?}");
        };
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
