//! A child process under test (an example binary): started with its output collected,
//! waited for until it says it is ready, killed and reaped on drop, and inspected through
//! `/proc` (open descriptors, resident memory).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ChildLog;

/// A running child; killed and reaped on drop.
pub struct Process {
    pub child: Child,
    /// Its stderr lines so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Its stdout lines so far.
    pub out: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Runs `bin` with `args` (and `WIRELOOP_LOG=info`) and waits until a line of its
    /// stderr contains `ready`.
    pub fn start(
        bin: &Path,
        args: &[String],
        ready: &str,
        timeout: Duration,
    ) -> Result<Process, String> {
        let mut child = Command::new(bin)
            .args(args)
            .env("WIRELOOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let stderr = ChildLog::spawn(child.stderr.take().expect("piped stderr"));
        let stdout = ChildLog::spawn(child.stdout.take().expect("piped stdout"));
        let mut p = Process {
            child,
            log: stderr.lines.clone(),
            out: stdout.lines.clone(),
        };
        if let Err(why) = stderr.wait_for(ready, timeout) {
            let status = p.child.try_wait().ok().flatten();
            return Err(format!("exit status {status:?}: {why}"));
        }
        Ok(p)
    }

    /// Number of descriptors the process has open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .expect("read /proc/<pid>/fd")
    }

    /// Resident set size in bytes.
    pub fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }

    /// Its stderr and stdout so far, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "stderr: {:?}\nstdout: {:?}",
            self.log.lock().unwrap(),
            self.out.lock().unwrap()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 free a moment ago (a child given it may still lose a race for it:
/// callers retry with another).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe listener")
        .port()
}

/// The `http-server` example on free ports of 127.0.0.1: plain, and TLS too when `cert`
/// names where it writes its generated certificate (`--cert-out`); the process and the
/// two ports (the TLS one 0 without `cert`).
pub fn http_server(cert: Option<&std::path::Path>) -> (Process, u16, u16) {
    let port = free_port();
    let tlsport = if cert.is_some() { free_port() } else { 0 };
    let mut args = vec![
        "--port".to_string(),
        port.to_string(),
        "--tlsport".to_string(),
        tlsport.to_string(),
    ];
    if let Some(c) = cert {
        args.push("--cert-out".to_string());
        args.push(c.to_str().expect("a UTF-8 temp path").to_string());
    }
    let p = Process::start(
        &super::example_bin("http-server"),
        &args,
        "http-server: http://",
        super::TIMEOUT,
    )
    .expect("http-server starts");
    (p, port, tlsport)
}

/// The `reverse-proxy` example on a free port of 127.0.0.1 (plain only) in front of
/// `upstream` (`http://...`), with `extra` arguments; its address.
pub fn reverse_proxy(upstream: &str, extra: &[&str]) -> (Process, std::net::SocketAddr) {
    let port = free_port();
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--tlsport",
        "0",
        "--listen-host",
        "127.0.0.1",
        "--upstream",
        upstream,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = Process::start(
        &super::example_bin("reverse-proxy"),
        &args,
        "reverse-proxy listening",
        super::TIMEOUT,
    )
    .expect("reverse-proxy starts");
    (p, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}
