//! No connection outlives its purpose, through the two example proxies run as real
//! processes: an upstream that stalls mid-body, a client that gives up, a client that stops
//! reading, an upstream that never reads the request body, a silent or half-closed L4 pair.
//! Each test checks what the client gets, that the far side's connection is closed too,
//! and that the proxy's open descriptors come back to where they were.
//!
//! Upstreams are raw sockets on threads of this test (each serves one connection and
//! reports what happened to it). Every wait is bounded; the proxies are killed and reaped
//! on drop.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::process::{free_port, Process};
use common::{recv, wait_until, TIMEOUT};

const BODY_SENT: usize = 300;

fn bin(name: &'static str) -> PathBuf {
    static RP: OnceLock<PathBuf> = OnceLock::new();
    static TP: OnceLock<PathBuf> = OnceLock::new();
    let cell = if name == "reverse-proxy" { &RP } else { &TP };
    cell.get_or_init(|| common::example_bin(name)).clone()
}

/// A proxy process and the port its clients connect to.
struct Proxy {
    p: Process,
    addr: SocketAddr,
    /// Descriptors open once it was ready.
    baseline: usize,
}

impl Proxy {
    /// `reverse-proxy` on a free port (plain only) in front of `upstream`, with `args`.
    fn http(upstream: SocketAddr, args: &[&str]) -> Proxy {
        Proxy::start("reverse-proxy", "reverse-proxy forwarding to", |port| {
            let mut a: Vec<String> = [
                "--listen-host",
                "127.0.0.1",
                "--tlsport",
                "0",
                "--upstream",
                &format!("http://{upstream}"),
                "--port",
                &port.to_string(),
            ]
            .map(String::from)
            .to_vec();
            a.extend(args.iter().map(|s| s.to_string()));
            a
        })
    }

    /// `tcp-proxy` on a free port in front of `upstream`, with `args`.
    fn tcp(upstream: SocketAddr, args: &[&str]) -> Proxy {
        Proxy::start("tcp-proxy", "tcp-proxy serving", |port| {
            let mut a: Vec<String> = [
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &upstream.to_string(),
            ]
            .map(String::from)
            .to_vec();
            a.extend(args.iter().map(|s| s.to_string()));
            a
        })
    }

    fn start(name: &'static str, ready: &str, args: impl Fn(u16) -> Vec<String>) -> Proxy {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Process::start(&bin(name), &args(port), ready, TIMEOUT) {
                Ok(p) => {
                    let baseline = p.open_fds();
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    return Proxy { p, addr, baseline };
                }
                Err(why) => last = why,
            }
        }
        panic!("{name} did not start: {last}");
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the proxy");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        s
    }

    /// Waits for an access log line (stdout) that contains `needle`.
    #[track_caller]
    fn assert_logged(&self, needle: &str) {
        let logged = wait_until(TIMEOUT, || {
            self.p
                .out
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
        });
        assert!(logged, "no log line with {needle}\n{}", self.p.output());
    }

    /// Waits until the proxy holds no more descriptors than when it started.
    #[track_caller]
    fn assert_fds_released(&self) {
        let ok = wait_until(TIMEOUT, || self.p.open_fds() <= self.baseline);
        assert!(
            ok,
            "the proxy holds {} descriptors, {} at start\n{}",
            self.p.open_fds(),
            self.baseline,
            self.p.output()
        );
    }
}

/// What happened to an upstream connection.
#[derive(Debug)]
enum UpEvent {
    /// The proxy closed it (EOF or reset), this long after the upstream stopped talking.
    Closed(Duration),
    /// Writing to it failed (the proxy closed it).
    WriteFailed,
    /// The upstream finished writing everything.
    WroteAll,
}

/// An upstream for one connection: reads the request head, then runs `act` on the socket.
fn upstream<F>(act: F) -> (SocketAddr, Receiver<UpEvent>)
where
    F: FnOnce(TcpStream) -> UpEvent + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT * 2)).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return,
            }
        }
        let _ = tx.send(act(s));
    });
    (addr, rx)
}

/// Holds the socket without a word until the proxy closes it.
fn hold(mut s: TcpStream) -> UpEvent {
    let t = Instant::now();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return UpEvent::Closed(t.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                // Still open after twice the test timeout: report as never closed.
                return UpEvent::WroteAll;
            }
            Err(_) => return UpEvent::Closed(t.elapsed()),
        }
    }
}

/// Never reads (the proxy's writes back up), until the proxy closes or resets the
/// connection.
fn deaf(s: TcpStream) -> UpEvent {
    use std::os::fd::AsRawFd;
    let t = Instant::now();
    let mut fds = [libc::pollfd {
        fd: s.as_raw_fd(),
        // Nothing asked: only a hang-up or an error wakes the poll.
        events: 0,
        revents: 0,
    }];
    // SAFETY: one valid pollfd for a socket this function owns, for the call's duration.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, (TIMEOUT * 2).as_millis() as i32) };
    if n == 1 {
        UpEvent::Closed(t.elapsed())
    } else {
        UpEvent::WroteAll
    }
}

/// Answers with a 1000-byte body's head and first 300 bytes, then goes silent.
fn stall_mid_body(mut s: TcpStream) -> UpEvent {
    let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    r.extend_from_slice(&[b'x'; BODY_SENT]);
    if s.write_all(&r).is_err() {
        return UpEvent::WriteFailed;
    }
    hold(s)
}

/// Writes `n` bytes (after a head announcing them when `http`) as fast as the proxy takes.
fn flood(mut s: TcpStream, n: usize, http: bool) -> UpEvent {
    s.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
    if http
        && s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").as_bytes())
            .is_err()
    {
        return UpEvent::WriteFailed;
    }
    let chunk = vec![b'y'; 1 << 16];
    let mut left = n;
    while left > 0 {
        match s.write(&chunk[..left.min(chunk.len())]) {
            Ok(k) => left -= k,
            Err(_) => return UpEvent::WriteFailed,
        }
    }
    UpEvent::WroteAll
}

/// Reads until the end (EOF or an error); returns what arrived.
fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1 << 16];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
}

/// A client socket with a tiny receive buffer that will never be read.
fn deaf_client(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// `after` is what a 0.5 s `which` timeout takes: not much less, and bounded.
#[track_caller]
fn assert_half_a_second(after: Duration, which: &str) {
    assert!(
        after >= Duration::from_millis(400) && after < TIMEOUT,
        "ended after {after:?}; the {which} timeout is 0.5 s"
    );
}

#[track_caller]
fn expect_closed(ev: UpEvent, within: Duration, what: &str) {
    match ev {
        UpEvent::Closed(after) => assert!(after < within, "{what}: closed after {after:?}"),
        other => panic!("{what}: expected the proxy to close the upstream, got {other:?}"),
    }
}

// ----- reverse-proxy --------------------------------------------------------------------

#[test]
fn upstream_stalled_mid_body_is_cut_after_the_read_timeout() {
    let (up, events) = upstream(stall_mid_body);
    let proxy = Proxy::http(up, &["--read-timeout", "0.5"]);
    let mut c = proxy.connect();
    c.write_all(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let got = read_to_end(&mut c);
    let after = t.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with(&"x".repeat(BODY_SENT)), "{text}");
    let body = &got[got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        body.len(),
        BODY_SENT,
        "the cut response is as long as what came"
    );
    assert_half_a_second(after, "read");
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        TIMEOUT,
        "stalled upstream",
    );
    proxy.assert_fds_released();
}

#[test]
fn client_giving_up_aborts_the_upstream_exchange() {
    let (up, events) = upstream(stall_mid_body);
    // The read timeout is a minute: only the client's close can end this quickly.
    let proxy = Proxy::http(up, &[]);
    let mut c = proxy.connect();
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !got.ends_with(&[b'x'; BODY_SENT]) {
        let n = c.read(&mut b).expect("the first part of the response");
        assert!(n > 0, "EOF before the first part");
        got.extend_from_slice(&b[..n]);
    }
    drop(c);
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        Duration::from_secs(10),
        "upstream of a client that left",
    );
    proxy.assert_fds_released();
    proxy.assert_logged("\"GET /slow HTTP/1.1\" 499");
}

#[test]
fn client_that_stops_reading_is_closed_after_the_send_timeout() {
    let (up, events) = upstream(|s| flood(s, 64 << 20, true));
    let proxy = Proxy::http(up, &["--send-timeout", "0.5"]);
    let mut c = deaf_client(proxy.addr);
    c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    match recv(&events, TIMEOUT, "the upstream's end") {
        UpEvent::WriteFailed => {}
        other => panic!("the upstream should have been cut off mid-write, got {other:?}"),
    }
    let got = read_to_end(&mut c);
    assert!(
        got.len() < 64 << 20,
        "a cut client read {} bytes",
        got.len()
    );
    proxy.assert_fds_released();
}

#[test]
fn upstream_that_never_reads_the_body_gets_a_504_after_the_send_timeout() {
    let (up, events) = upstream(deaf);
    let proxy = Proxy::http(up, &["--send-timeout", "0.5"]);
    let c = proxy.connect();
    let mut w = c.try_clone().unwrap();
    let n = 64usize << 20;
    let writer = thread::spawn(move || {
        let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n");
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'z'; 1 << 16];
        for _ in 0..n / chunk.len() {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut c = c;
    let got = read_to_end(&mut c);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 504 "), "{text}");
    drop(c);
    writer.join().unwrap();
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        TIMEOUT,
        "deaf upstream",
    );
    proxy.assert_fds_released();
}

/// Answers a 100,000-byte body one byte every 20 ms: never quiet for long, never done.
fn trickle(mut s: TcpStream) -> UpEvent {
    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        .is_err()
    {
        return UpEvent::WriteFailed;
    }
    for _ in 0..100_000 {
        if s.write_all(b"t").is_err() {
            return UpEvent::WriteFailed;
        }
        thread::sleep(Duration::from_millis(20));
    }
    UpEvent::WroteAll
}

#[test]
fn response_still_trickling_is_cut_after_the_total_timeout() {
    let (up, events) = upstream(trickle);
    // The read timeout never fires (a byte every 20 ms): only the total limit ends it.
    let proxy = Proxy::http(up, &["--total-timeout", "0.5", "--read-timeout", "5"]);
    let mut c = proxy.connect();
    c.write_all(b"GET /trickle HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let got = read_to_end(&mut c);
    let after = t.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    assert!(body < 100_000, "the whole body arrived");
    assert_half_a_second(after, "total");
    drop(c);
    match recv(&events, TIMEOUT, "the upstream's end") {
        UpEvent::WriteFailed => {}
        other => panic!("the upstream should have been cut off, got {other:?}"),
    }
    proxy.assert_fds_released();
    proxy.assert_logged("\"GET /trickle HTTP/1.1\" 200");
}

#[test]
fn no_response_head_within_the_total_timeout_is_a_504() {
    let (up, events) = upstream(hold);
    let proxy = Proxy::http(up, &["--total-timeout", "0.5"]);
    let mut c = proxy.connect();
    let t = Instant::now();
    c.write_all(b"GET /silent HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut b).expect("an answer");
        assert!(n > 0, "EOF without an answer");
        got.extend_from_slice(&b[..n]);
    }
    let after = t.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 504 "), "{text}");
    assert_half_a_second(after, "total");
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        TIMEOUT,
        "silent upstream",
    );
    // The client's connection stays usable.
    c.write_all(b"GET /again HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    drop(c);
    proxy.assert_fds_released();
}

#[test]
fn requests_queued_at_the_pool_limit_get_a_504_after_the_total_timeout() {
    // Silent upstream connections, every one held (the queued request may get one once
    // the first is given up, depending on which of the two runs out first).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    let (tx, events) = mpsc::channel();
    thread::spawn(move || {
        let mut first = true;
        for s in l.incoming() {
            let Ok(s) = s else { return };
            s.set_read_timeout(Some(TIMEOUT * 2)).unwrap();
            let tx = tx.clone();
            let report = std::mem::take(&mut first);
            thread::spawn(move || {
                let ev = hold(s);
                if report {
                    let _ = tx.send(ev);
                }
            });
        }
    });
    let proxy = Proxy::http(up, &["--total-timeout", "0.5", "--pool-size", "1"]);
    let t = Instant::now();
    // The first takes the only connection to the silent upstream; the second waits.
    let mut clients: Vec<TcpStream> = (0..2).map(|_| proxy.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let req = format!("GET /{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let text = String::from_utf8_lossy(&read_to_end(c)).into_owned();
        assert!(text.starts_with("HTTP/1.1 504 "), "request {i}: {text}");
    }
    let after = t.elapsed();
    assert_half_a_second(after, "total");
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        TIMEOUT,
        "silent upstream",
    );
    drop(clients);
    proxy.assert_fds_released();
}

// ----- tcp-proxy ------------------------------------------------------------------------

/// A raw L4 upstream for one connection: `act` gets the accepted socket.
fn l4_upstream<F>(act: F) -> (SocketAddr, Receiver<UpEvent>)
where
    F: FnOnce(TcpStream) -> UpEvent + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT * 2)).unwrap();
        let _ = tx.send(act(s));
    });
    (addr, rx)
}

#[test]
fn l4_silent_pair_ends_with_the_idle_timeout() {
    // The upstream answers one line, then says nothing more (and reads what comes).
    let (up, events) = l4_upstream(|mut s| {
        let mut b = [0u8; 5];
        if s.read_exact(&mut b).is_err() || s.write_all(b"hello").is_err() {
            return UpEvent::WriteFailed;
        }
        hold(s)
    });
    let proxy = Proxy::tcp(up, &["--idle-timeout", "0.5"]);
    let mut c = proxy.connect();
    c.write_all(b"hi up").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello");
    let t = Instant::now();
    assert!(read_to_end(&mut c).is_empty());
    let after = t.elapsed();
    assert_half_a_second(after, "idle");
    expect_closed(
        recv(&events, TIMEOUT, "the upstream's end"),
        TIMEOUT,
        "idle pair",
    );
    proxy.assert_fds_released();
}

#[test]
fn l4_half_closed_client_with_a_silent_upstream_ends_with_the_idle_timeout() {
    // The upstream reads the client's bytes and their end (passed on as a half-close),
    // then never answers and keeps its side open until the test is done: only the proxy's
    // idle timeout can end the pair.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    let (got_tx, got_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let upstream = thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut all = Vec::new();
        let _ = got_tx.send(s.read_to_end(&mut all).map(|_| all).map_err(|e| e.kind()));
        let _ = done_rx.recv_timeout(TIMEOUT * 2);
    });
    let proxy = Proxy::tcp(up, &["--idle-timeout", "0.5"]);
    let mut c = proxy.connect();
    c.write_all(b"request").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        recv(&got_rx, TIMEOUT, "the request and its end at the upstream"),
        Ok(b"request".to_vec())
    );
    let t = Instant::now();
    assert!(read_to_end(&mut c).is_empty(), "the upstream said nothing");
    let after = t.elapsed();
    assert!(after < TIMEOUT, "the pair was not ended ({after:?})");
    proxy.assert_fds_released();
    let _ = done_tx.send(());
    upstream.join().unwrap();
}

#[test]
fn l4_client_that_stops_reading_is_closed_after_the_send_timeout() {
    let (up, events) = l4_upstream(|s| flood(s, 64 << 20, false));
    let proxy = Proxy::tcp(up, &["--send-timeout", "0.5"]);
    let mut c = deaf_client(proxy.addr);
    match recv(&events, TIMEOUT, "the upstream's end") {
        UpEvent::WriteFailed => {}
        other => panic!("the upstream should have been cut off mid-write, got {other:?}"),
    }
    let got = read_to_end(&mut c);
    assert!(
        got.len() < 64 << 20,
        "a cut client read {} bytes",
        got.len()
    );
    proxy.assert_fds_released();
}
