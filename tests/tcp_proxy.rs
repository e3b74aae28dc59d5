//! End to end with the real `tcp-proxy` example binary (built by `cargo test` along with
//! the tests, found next to the test executable in `target/<profile>/examples/`): bulk data
//! both ways, a slow client against a fast upstream with the proxy's memory watched,
//! an upstream that is down or closes mid-stream, half-closes both ways, and the command
//! line.
//!
//! The proxy runs as a child process that is always killed and reaped (`Proxy`'s `Drop`).
//! Every wait is bounded; nothing synchronises by sleeping.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{pattern, TestServer, TIMEOUT};
use wireloop::{Action, Bytes, Conn, Handler, Server};

// ----- the proxy process ----------------------------------------------------------------

/// The example binary, next to this test's executable (`target/<profile>/deps/..`).
///
/// `cargo test` builds the examples, but `cargo test --test tcp_proxy` does not: the first
/// call brings the binary up to date with `cargo build --example tcp-proxy` (a no-op when
/// it is fresh), so the tests never run a stale proxy.
fn proxy_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| common::example_bin("tcp-proxy"))
        .clone()
}

/// A running `tcp-proxy`; killed and reaped on drop.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    /// Everything it wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts the proxy on a free port of 127.0.0.1, forwarding to `upstream`, and waits
    /// until it is listening. Retries with another port if the one picked was taken.
    fn start(upstream: &str) -> Proxy {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Proxy::try_start(port, upstream) {
                Ok(p) => return p,
                Err(why) => last = why,
            }
        }
        panic!("the proxy did not start: {last}");
    }

    fn try_start(port: u16, upstream: &str) -> Result<Proxy, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(proxy_bin())
            .args(["--listen", &addr.to_string(), "--upstream", upstream])
            .env("WIRELOOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        // Drain stderr for the proxy's whole life (so it never blocks on a full pipe). The
        // "serving" line is logged after the listener is bound, so connects queue from then.
        let stderr = common::ChildLog::spawn(child.stderr.take().expect("piped stderr"));
        let log = stderr.lines.clone();
        let mut proxy = Proxy { child, addr, log };
        if let Err(why) = stderr.wait_for("tcp-proxy serving", TIMEOUT) {
            let status = proxy.child.try_wait().ok().flatten();
            return Err(format!("exit status {status:?}: {why}"));
        }
        Ok(proxy)
    }

    fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Panics (with the proxy's stderr) if the proxy has exited.
    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "the proxy exited ({status}); stderr: {:?}",
                self.log.lock().unwrap()
            );
        }
    }

    /// The proxy's resident set size, in bytes.
    fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe listener")
        .port()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Accepts one connection on `l` within [`TIMEOUT`].
fn accept(l: &TcpListener) -> TcpStream {
    let mut p = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, TIMEOUT.as_millis() as i32) };
    assert!(r > 0, "no connection to the upstream within {TIMEOUT:?}");
    let (s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Runs `f` on a thread; the result comes back through the receiver.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read to EOF");
    v
}

// ----- a cyclic pattern for long streams ------------------------------------------------

/// Period of the streamed pattern: prime, so no power-of-two chunking lines up with it.
const PERIOD: usize = 1_048_573;

/// An endless pattern: `common::pattern` repeated, read out at any offset.
#[derive(Clone)]
struct Cycle {
    pat: Bytes,
}

impl Cycle {
    fn new(seed: u64) -> Cycle {
        // Twice the period, so any chunk up to a period long is one slice.
        let mut p = pattern(PERIOD, seed);
        p.extend_from_within(..);
        Cycle { pat: p.into() }
    }

    /// The `len` (at most `PERIOD`) bytes at stream offset `at`.
    fn at(&self, at: u64, len: usize) -> Bytes {
        let off = (at % PERIOD as u64) as usize;
        self.pat.slice(off..off + len)
    }

    /// Checks `got` against the stream at offset `at`.
    #[track_caller]
    fn check(&self, at: u64, got: &[u8]) {
        let mut done = 0;
        while done < got.len() {
            let n = (got.len() - done).min(PERIOD);
            let want = self.at(at + done as u64, n);
            if got[done..done + n] != want[..] {
                let i = got[done..done + n]
                    .iter()
                    .zip(want.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                panic!("stream differs at byte {}", at + (done + i) as u64);
            }
            done += n;
        }
    }
}

/// FNV-1a over 8-byte words of the stream (independent of how it was chunked): a cheap
/// checksum of a long stream.
#[derive(Clone, Copy)]
struct Sum {
    h: u64,
    /// Bytes of a word not complete yet.
    tail: [u8; 8],
    tail_len: usize,
}

impl Sum {
    const PRIME: u64 = 0x100_0000_01b3;

    fn new() -> Sum {
        Sum {
            h: 0xcbf2_9ce4_8422_2325,
            tail: [0; 8],
            tail_len: 0,
        }
    }

    fn add(&mut self, mut data: &[u8]) {
        if self.tail_len > 0 {
            let n = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 8 {
                return;
            }
            self.h = (self.h ^ u64::from_le_bytes(self.tail)).wrapping_mul(Self::PRIME);
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.h = (self.h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(Self::PRIME);
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn finish(mut self) -> u64 {
        for &b in &self.tail[..self.tail_len] {
            self.h = (self.h ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        self.h
    }
}

// ----- upstreams ------------------------------------------------------------------------

fn echo_upstream() -> TestServer {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .expect("build the echo upstream");
    TestServer::start(server, |_| common::Echo)
}

/// Sends `total` bytes of a `Cycle` to every connection as fast as the socket takes them
/// (refilling from `post_write`), then half-closes.
struct Source {
    cycle: Cycle,
    total: u64,
}

#[derive(Default)]
struct Sent(u64);

impl Source {
    fn refill(&self, conn: &mut Conn<'_, Sent>) {
        const CHUNK: usize = 256 << 10;
        while conn.output_len() < CHUNK && conn.state.0 < self.total {
            let n = (self.total - conn.state.0).min(CHUNK as u64) as usize;
            let chunk = self.cycle.at(conn.state.0, n);
            conn.write_bytes(chunk);
            conn.state.0 += n as u64;
            if conn.state.0 == self.total {
                conn.shutdown_write();
            }
        }
    }
}

impl Handler for Source {
    type State = Sent;
    fn opened(&mut self, conn: &mut Conn<'_, Sent>) -> Action {
        self.refill(conn);
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, Sent>) -> Action {
        let n = conn.input().len();
        conn.consume(n);
        Action::None
    }
    fn writable(&mut self, conn: &mut Conn<'_, Sent>) -> Action {
        self.refill(conn);
        Action::None
    }
    fn post_write(&mut self, conn: &mut Conn<'_, Sent>, _written: usize) {
        self.refill(conn);
    }
    fn eof(&mut self, _conn: &mut Conn<'_, Sent>) -> Action {
        Action::Close
    }
}

// ----- 1. bulk both ways ---------------------------------------------------------------

#[test]
fn hundred_mib_each_way_through_the_proxy() {
    const TOTAL: u64 = 100 << 20;
    let upstream = echo_upstream();
    let mut proxy = Proxy::start(&upstream.tcp_addr(0).to_string());
    let start = Instant::now();
    let client = proxy.connect();
    let mut reader = client.try_clone().unwrap();
    let cycle = Cycle::new(1);

    let reads = {
        let cycle = cycle.clone();
        spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            let mut at = 0u64;
            let mut sum = Sum::new();
            while at < TOTAL {
                let n = reader.read(&mut buf).expect("read the echo");
                assert!(n > 0, "EOF after {at} of {TOTAL} bytes");
                cycle.check(at, &buf[..n]);
                sum.add(&buf[..n]);
                at += n as u64;
            }
            // The echo is over once the client half-closes: then EOF.
            assert_eq!(
                reader.read(&mut buf).expect("read EOF"),
                0,
                "bytes after the end"
            );
            sum.finish()
        })
    };

    let mut writer = client;
    let mut sum = Sum::new();
    let mut at = 0u64;
    while at < TOTAL {
        let n = (TOTAL - at).min(512 << 10) as usize;
        let chunk = cycle.at(at, n);
        writer.write_all(&chunk).expect("write to the proxy");
        sum.add(&chunk);
        at += n as u64;
    }
    writer.shutdown(Shutdown::Write).unwrap();
    let got = reads
        .recv_timeout(Duration::from_secs(120))
        .expect("the reader finishes");
    eprintln!(
        "100 MiB each way through the proxy in {:?} (checksums {got:x} / {:x})",
        start.elapsed(),
        sum.finish()
    );
    assert_eq!(got, sum.finish(), "checksum of the echoed stream");
    proxy.assert_running();
    drop(proxy);
    upstream.stop().unwrap();
}

// ----- 2. slow client, fast upstream ---------------------------------------------------

#[test]
fn slow_client_keeps_proxy_memory_bounded() {
    const TOTAL: u64 = 200 << 20;
    const RSS_LIMIT: usize = 40 << 20;
    let cycle = Cycle::new(2);
    let upstream = {
        let cycle = cycle.clone();
        let server = Server::builder()
            .listen("tcp://127.0.0.1:0")
            .unwrap()
            .build()
            .unwrap();
        TestServer::start(server, move |_| Source {
            cycle: cycle.clone(),
            total: TOTAL,
        })
    };
    let mut proxy = Proxy::start(&upstream.tcp_addr(0).to_string());
    let start = Instant::now();
    let rss_before = proxy.rss();
    let mut client = proxy.connect();
    let mut buf = vec![0u8; 16 << 10];
    let mut at = 0u64;
    let mut max_rss = rss_before;
    let mut samples = 0;
    let mut next_sample = 0u64;
    let mut work = Sum::new();
    loop {
        let n = client.read(&mut buf).expect("read from the proxy");
        if n == 0 {
            break;
        }
        cycle.check(at, &buf[..n]);
        // Work between reads, so the client is the slow end.
        for _ in 0..4 {
            work.add(&buf[..n]);
        }
        at += n as u64;
        if at >= next_sample {
            max_rss = max_rss.max(proxy.rss());
            samples += 1;
            next_sample += 8 << 20;
        }
    }
    assert_eq!(at, TOTAL, "all bytes, then EOF");
    eprintln!(
        "slow client: 200 MiB in {:?}; proxy RSS {} KiB before, max {} KiB over {samples} samples (checksum {:x})",
        start.elapsed(),
        rss_before >> 10,
        max_rss >> 10,
        work.finish()
    );
    assert!(samples >= 10, "only {samples} RSS samples");
    assert!(
        max_rss < RSS_LIMIT,
        "proxy RSS reached {} KiB (limit {} KiB)",
        max_rss >> 10,
        RSS_LIMIT >> 10
    );
    proxy.assert_running();
    drop(client);
    drop(proxy);
    upstream.stop().unwrap();
}

// ----- 3. upstream down ----------------------------------------------------------------

/// Connects a client and checks the proxy closes it (EOF or reset) within 2 s.
#[track_caller]
fn expect_prompt_close(proxy: &Proxy) {
    let mut c = proxy.connect();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    let _ = c.write_all(b"anyone there?");
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("got {n} bytes from a proxy with no upstream"),
        Err(e) => panic!("not closed within 2 s: {e} (after {:?})", start.elapsed()),
    }
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn upstream_down_closes_clients_and_proxy_keeps_running() {
    let port = free_port();
    let upstream = format!("127.0.0.1:{port}");
    let mut proxy = Proxy::start(&upstream);
    expect_prompt_close(&proxy);
    proxy.assert_running();
    expect_prompt_close(&proxy);
    proxy.assert_running();
    assert!(
        proxy
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&upstream)),
        "the failure is logged with the upstream's address"
    );

    // Now the upstream comes up on that port: new clients are served.
    let server = Server::builder()
        .listen(&format!("tcp://{upstream}"))
        .unwrap()
        .build()
        .expect("bind the upstream port (taken meanwhile?)");
    let echo = TestServer::start(server, |_| common::Echo);
    let mut c = proxy.connect();
    let msg = pattern(100_000, 3);
    c.write_all(&msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).unwrap();
    common::assert_same_bytes(&got, &msg, "echo once the upstream is up");
    c.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut c).is_empty());
    proxy.assert_running();
    drop(proxy);
    echo.stop().unwrap();
}

// ----- 4. upstream closes mid-stream ----------------------------------------------------

#[test]
fn upstream_close_mid_stream_delivers_everything_then_eof() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start(&l.local_addr().unwrap().to_string());
    let data = pattern(1 << 20, 4);
    let mut client = proxy.connect();
    let up = {
        let data = data.clone();
        spawn(move || {
            let mut s = accept(&l);
            s.write_all(&data).expect("upstream writes");
            // Dropped: a full close in the middle of the conversation.
        })
    };
    let got = read_all(&mut client);
    common::assert_same_bytes(&got, &data, "client receives the whole 1 MiB");
    up.recv_timeout(TIMEOUT).expect("upstream thread done");
    proxy.assert_running();
}

// ----- 5. half-close both ways ----------------------------------------------------------

#[test]
fn client_half_close_passes_through() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start(&l.local_addr().unwrap().to_string());
    let request = pattern(300_000, 5);
    let reply = pattern(200_000, 6);
    let up = {
        let reply = reply.clone();
        spawn(move || {
            let mut s = accept(&l);
            // Everything the client sent, then EOF ...
            let got = read_all(&mut s);
            // ... and the upstream can still answer.
            s.write_all(&reply).expect("upstream replies after EOF");
            s.shutdown(Shutdown::Write).unwrap();
            got
        })
    };
    let mut client = proxy.connect();
    client.write_all(&request).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = read_all(&mut client);
    common::assert_same_bytes(&got, &reply, "client receives the reply, then EOF");
    let seen = up.recv_timeout(TIMEOUT).expect("upstream thread done");
    common::assert_same_bytes(&seen, &request, "upstream sees the request, then EOF");
    proxy.assert_running();
}

/// The client half-closes at once, before the upstream is even resolved (a host name),
/// with and without a request: the upstream still gets the request and EOF, and its reply
/// still reaches the client.
#[test]
fn client_half_close_before_upstream_connects() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut proxy = Proxy::start(&format!("tcp4://localhost:{port}"));
    let up = spawn(move || {
        let mut seen = Vec::new();
        for i in 0..2u8 {
            let mut s = accept(&l);
            seen.push(read_all(&mut s));
            s.write_all(&[b'r', i]).expect("upstream replies after EOF");
            s.shutdown(Shutdown::Write).unwrap();
            // Wait for the proxy to finish with this one (the client closes it).
            assert!(read_all(&mut s).is_empty());
        }
        seen
    });
    for (i, request) in [&b""[..], &b"early request"[..]].into_iter().enumerate() {
        let mut client = proxy.connect();
        client.write_all(request).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            read_all(&mut client),
            [b'r', i as u8],
            "reply {i}, then EOF"
        );
    }
    let seen = up.recv_timeout(TIMEOUT).expect("upstream thread done");
    assert_eq!(seen, [b"".to_vec(), b"early request".to_vec()]);
    proxy.assert_running();
}

#[test]
fn upstream_half_close_passes_through() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start(&l.local_addr().unwrap().to_string());
    let greeting = pattern(300_000, 7);
    let answer = pattern(200_000, 8);
    let up = {
        let greeting = greeting.clone();
        spawn(move || {
            let mut s = accept(&l);
            s.write_all(&greeting).expect("upstream writes");
            s.shutdown(Shutdown::Write).unwrap();
            // Still reading: what the client sends after the half-close arrives.
            read_all(&mut s)
        })
    };
    let mut client = proxy.connect();
    let got = read_all(&mut client);
    common::assert_same_bytes(&got, &greeting, "client receives the greeting, then EOF");
    client.write_all(&answer).expect("client can still send");
    client.shutdown(Shutdown::Write).unwrap();
    let seen = up.recv_timeout(TIMEOUT).expect("upstream thread done");
    common::assert_same_bytes(&seen, &answer, "upstream receives the answer, then EOF");
    // Both directions are finished: the proxy closes the client.
    assert!(read_all(&mut client).is_empty());
    proxy.assert_running();
}

// ----- 6. command line -------------------------------------------------------------------

fn run_proxy(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(proxy_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the proxy");
    // Both pipes are read on threads, so a chatty child cannot block; the wait is bounded.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tcp-proxy {args:?} did not exit within {TIMEOUT:?}");
        }
        // Polling a child's exit with a deadline (std has no wait with a timeout).
        thread::sleep(Duration::from_millis(5));
    };
    (
        status.code(),
        out.recv_timeout(TIMEOUT).unwrap(),
        err.recv_timeout(TIMEOUT).unwrap(),
    )
}

#[test]
fn command_line() {
    let (code, out, _) = run_proxy(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("USAGE") && out.contains("--upstream"), "{out}");

    let (code, _, err) = run_proxy(&[
        "--listen",
        "127.0.0.1:notaport",
        "--upstream",
        "127.0.0.1:1",
    ]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        err.contains("127.0.0.1:notaport"),
        "error names the address: {err}"
    );

    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (code, _, err) = run_proxy(&["--listen", &listen, "--upstream", "bad host:1"]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        err.contains("bad host:1"),
        "error names the upstream: {err}"
    );

    let (code, _, err) = run_proxy(&["--listen", &listen]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(err.contains("--upstream"), "{err}");

    let (code, _, err) = run_proxy(&["--bogus"]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(err.contains("bogus"), "{err}");
}
