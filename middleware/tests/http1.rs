//! The HTTP/1.1 adapter over real sockets on loopback: curl (plain and TLS), pipelining,
//! every error status, smuggling, 100-continue, HEAD, keep-alive rules, slowloris
//! timeouts, a 100 MiB streamed echo with bounded memory, and no allocation per request.
//!
//! Every server listens on port 0, every wait is bounded, and every server is shut down
//! and joined (also when a test fails).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Server};
use wireloop_middleware::http1::{
    App, BodyMode, ChunkedDecoder, Config, Decoded, Http1, Request, Response, UpgradeEvent,
};
use wireloop_middleware::{translate, CertKey, TlsServer};

// ----- allocation counting (per thread) ---------------------------------------------------

/// Counts allocations made by the current thread (the loop thread reads its own count).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn thread_allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

// ----- the application under test -----------------------------------------------------------

/// What the application saw, shared with the test.
#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    /// Most output queued on a connection while echoing.
    max_output: AtomicUsize,
    /// Bytes echoed.
    echoed: AtomicU64,
    /// Allocation count of the loop thread at request number i.
    allocs_at: Vec<AtomicU64>,
    /// The connection waiting for a deferred answer.
    deferred: std::sync::Mutex<Option<wireloop::ConnId>>,
    /// The deferred answer may be sent.
    ready: std::sync::atomic::AtomicBool,
    /// Most output queued while generating a streamed response.
    max_generated_output: AtomicUsize,
}

/// Per-connection state: what is left of a generated response, and a deferred answer.
#[derive(Default)]
struct ConnState {
    generate_left: u64,
    deferred: bool,
}

/// Block used for generated bodies.
static BLOCK: [u8; 64 * 1024] = [b'g'; 64 * 1024];

impl TestApp {
    /// Writes generated body while the connection has room.
    fn generate(&mut self, res: &mut Response<'_>, st: &mut ConnState) {
        while st.generate_left > 0 && res.has_room() {
            let n = (BLOCK.len() as u64).min(st.generate_left) as usize;
            res.write(&BLOCK[..n]);
            st.generate_left -= n as u64;
        }
        self.stats
            .max_generated_output
            .fetch_max(res.output_len(), Ordering::Relaxed);
    }
}

/// Like the example: `Hello World!` everywhere, `/echo` streams the body back, `/collect`
/// returns the collected body, `/reject` refuses a streamed body, `/upgrade` switches to
/// a raw echo.
struct TestApp {
    stats: Arc<Stats>,
}

impl App for TestApp {
    type State = ConnState;

    fn body_mode(&mut self, req: &Request<'_>, _: &mut ConnState) -> BodyMode {
        match req.path() {
            "/echo" | "/reject" => BodyMode::Stream,
            _ => BodyMode::Collect,
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, st: &mut ConnState) {
        let n = self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.stats.allocs_at.get(n) {
            slot.store(thread_allocs(), Ordering::Relaxed);
        }
        match req.path() {
            "/echo" => match req.content_length() {
                _ if !req.has_body() => res.body(b""),
                Some(len) => res.start_sized(len),
                None => res.start_chunked(),
            },
            "/reject" => res.status(403).body(b"no"),
            "/collect" => res.body(req.body()),
            "/generate" => {
                let n: u64 = req.query().and_then(|q| q.parse().ok()).unwrap_or(0);
                st.generate_left = n;
                res.start_sized(n);
                self.generate(res, st);
            }
            "/defer" => {
                // Answered later, from `resume`, once the test says so and wakes us.
                st.deferred = true;
                *self.stats.deferred.lock().unwrap() = res.conn_id();
            }
            "/upgrade" if req.wants_upgrade() => {
                res.status(101).header("Upgrade", "echo");
                res.upgrade();
            }
            _ => res
                .header("Content-Type", "text/plain")
                .body(b"Hello World!\r\n"),
        }
    }

    fn resume(&mut self, res: &mut Response<'_>, st: &mut ConnState) {
        if st.deferred && self.stats.ready.load(Ordering::Acquire) {
            st.deferred = false;
            res.body(b"later");
        }
        if st.generate_left > 0 {
            self.generate(res, st);
        }
    }

    fn body(&mut self, data: &[u8], res: &mut Response<'_>, _: &mut ConnState) {
        res.write(data);
        self.stats
            .echoed
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.stats
            .max_output
            .fetch_max(res.output_len(), Ordering::Relaxed);
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut ConnState) {
        res.finish();
    }

    fn upgraded<T>(
        &mut self,
        conn: &mut Conn<'_, T>,
        event: UpgradeEvent,
        _: &mut ConnState,
    ) -> Action {
        match event {
            UpgradeEvent::Data => {
                let (input, mut out) = conn.split();
                out.write(input);
                let n = input.len();
                conn.consume(n);
                Action::None
            }
            UpgradeEvent::Eof => Action::Close,
            _ => Action::None,
        }
    }
}

// ----- the server harness --------------------------------------------------------------------

/// Upper bound for any wait.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A server like the example (listener 0 plain, listener 1 TLS) on its own thread; shut
/// down and joined on drop.
struct TestServer {
    handle: wireloop::Handle,
    plain: SocketAddr,
    tls: SocketAddr,
    cert_pem: String,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
    done: mpsc::Receiver<()>,
}

impl TestServer {
    fn start(cfg: Config) -> TestServer {
        TestServer::start_with(cfg, 0, |b| b)
    }

    fn start_with(
        cfg: Config,
        alloc_slots: usize,
        tune: impl FnOnce(wireloop::Builder) -> wireloop::Builder,
    ) -> TestServer {
        let cert = CertKey::self_signed(&["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
        let cert_pem = cert.leaf_pem();
        let tls = TlsServer::builder(cert)
            .alpn(&[b"http/1.1"])
            .build()
            .expect("TLS layer");
        let builder = Server::builder()
            .listen("tcp://127.0.0.1:0")
            .and_then(|b| b.listen("tcp://127.0.0.1:0"))
            .expect("listen");
        let server = tune(builder).build().expect("bind");
        let handle = server.handle();
        let addrs = server.local_addrs().to_vec();
        let stats = Arc::new(Stats {
            allocs_at: (0..alloc_slots).map(|_| AtomicU64::new(0)).collect(),
            ..Stats::default()
        });
        let st = stats.clone();
        let (tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let res = server.serve(move |_| {
                let app = TestApp { stats: st.clone() };
                translate(
                    Http1::with_config(app, cfg.clone()),
                    |c| c.addr_index == 1,
                    tls.clone(),
                )
            });
            if let Err(e) = res {
                eprintln!("server failed: {e}");
            }
            let _ = tx.send(());
        });
        TestServer {
            handle,
            plain: addrs[0].inet().expect("inet"),
            tls: addrs[1].inet().expect("inet"),
            cert_pem,
            stats,
            thread: Some(thread),
            done,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.plain).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if self.done.recv_timeout(TIMEOUT).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        } else if !std::thread::panicking() {
            panic!("server did not stop within {TIMEOUT:?}");
        }
    }
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!("wireloop-http1-{}-{name}", std::process::id()));
        std::fs::write(&p, content).expect("temp file");
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ----- reading responses ----------------------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads responses from a socket; `head[i]` says response i answers a HEAD.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Reader {
    fn new(s: TcpStream) -> Reader {
        Reader {
            s,
            buf: Vec::new(),
            eof: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.s.read(&mut chunk)?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next response (skipping 1xx unless `interim`).
    fn next(&mut self, head: bool) -> Resp {
        self.next_inner(head, false)
    }

    fn next_inner(&mut self, head: bool, interim: bool) -> Resp {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(&self.buf).expect("response head") {
                httparse::Status::Complete(n) => {
                    let status = r.code.unwrap();
                    let headers: Vec<(String, String)> = r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    self.buf.drain(..n);
                    let mut resp = Resp {
                        status,
                        headers,
                        body: Vec::new(),
                    };
                    if (100..200).contains(&status) {
                        if interim || status == 101 {
                            return resp;
                        }
                        continue;
                    }
                    if head || status == 204 || status == 304 {
                        return resp;
                    }
                    if let Some(len) = resp.header("content-length") {
                        let len: usize = len.parse().unwrap();
                        while self.buf.len() < len {
                            assert!(!self.eof, "EOF in a body");
                            self.fill().expect("read body");
                        }
                        resp.body = self.buf.drain(..len).collect();
                    } else if resp.header("transfer-encoding").is_some() {
                        let mut dec = ChunkedDecoder::new();
                        loop {
                            let (n, ev) = dec.decode(&self.buf).expect("chunked");
                            let data = match ev {
                                Decoded::Data(d) => Some(d.to_vec()),
                                _ => None,
                            };
                            self.buf.drain(..n);
                            match (ev_done(&dec), data) {
                                (_, Some(d)) => resp.body.extend(d),
                                (true, None) => break,
                                (false, None) => {
                                    assert!(!self.eof, "EOF in a chunked body");
                                    self.fill().expect("read chunked");
                                }
                            }
                        }
                    } else {
                        while !self.eof {
                            self.fill().expect("read to close");
                        }
                        resp.body = std::mem::take(&mut self.buf);
                    }
                    return resp;
                }
                httparse::Status::Partial => {
                    assert!(!self.eof, "EOF before a response: {:?}", self.buf);
                    self.fill().expect("read head");
                }
            }
        }
    }

    /// Whether the server closed the connection (reads until EOF, bounded).
    fn closed(&mut self) -> bool {
        while !self.eof {
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
        self.buf.is_empty()
    }
}

fn ev_done(dec: &ChunkedDecoder) -> bool {
    dec.is_done()
}

// ----- curl ------------------------------------------------------------------------------------

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run curl ({e}): these tests need curl on PATH (apt-get install curl)")
        });
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn curl_plain_and_tls() {
    let srv = TestServer::start(Config::default());
    let url = format!("http://{}/", srv.plain);
    assert_eq!(curl(&[&url]), b"Hello World!\r\n");
    // Keep-alive: curl reuses the connection for the second URL.
    let two = curl(&[&url, &format!("http://{}/other", srv.plain)]);
    assert_eq!(two, b"Hello World!\r\nHello World!\r\n");
    let head = curl(&["-I", &url]);
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 14"), "{head}");

    let ca = TempFile::new("ca.pem", srv.cert_pem.as_bytes());
    let ca_path = ca.0.to_str().unwrap();
    let https = format!("https://localhost:{}/", srv.tls.port());
    let resolve = format!("localhost:{}:127.0.0.1", srv.tls.port());
    assert_eq!(
        curl(&["--cacert", ca_path, "--resolve", &resolve, &https]),
        b"Hello World!\r\n"
    );
    // Echo over TLS, chunked upload (curl -T -) and a sized one.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let file = TempFile::new("payload", &payload);
    let echo = format!("https://localhost:{}/echo", srv.tls.port());
    let got = curl(&[
        "--cacert",
        ca_path,
        "--resolve",
        &resolve,
        "--data-binary",
        &format!("@{}", file.0.display()),
        &echo,
    ]);
    assert!(got == payload, "TLS echo differs ({} bytes)", got.len());
    let got = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.0.display()),
        &format!("http://{}/echo", srv.plain),
    ]);
    assert!(got == payload, "chunked echo differs ({} bytes)", got.len());
}

// ----- pipelining ----------------------------------------------------------------------------

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn pipelined_requests_split_on_the_wire() {
    let srv = TestServer::start(Config::default());
    let mut batch = Vec::new();
    for i in 0..16u32 {
        if i.is_multiple_of(3) {
            batch.extend_from_slice(
                b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            );
        } else {
            batch.extend_from_slice(GET);
        }
    }
    for cuts in [
        vec![],
        vec![1],
        vec![27, 28, 100],
        vec![batch.len() / 2, batch.len() - 1],
    ] {
        let s = srv.connect();
        let mut w = s.try_clone().unwrap();
        let mut last = 0;
        for &c in &cuts {
            w.write_all(&batch[last..c]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            last = c;
        }
        w.write_all(&batch[last..]).unwrap();
        let mut r = Reader::new(s);
        for i in 0..16u32 {
            let resp = r.next(false);
            assert_eq!(resp.status, 200);
            if i.is_multiple_of(3) {
                assert_eq!(resp.body, b"hello");
            } else {
                assert_eq!(resp.body, b"Hello World!\r\n");
            }
        }
    }
}

#[test]
fn pipelining_waits_for_output_to_drain() {
    // A tiny high-water mark: the adapter stops answering until the loop has written.
    let cfg = Config {
        output_high_water: 2048,
        ..Config::default()
    };
    let srv = TestServer::start(cfg);
    let s = srv.connect();
    let mut w = s.try_clone().unwrap();
    const N: usize = 3000;
    let writer = std::thread::spawn(move || {
        let all: Vec<u8> = GET.iter().copied().cycle().take(GET.len() * N).collect();
        w.write_all(&all).unwrap();
    });
    let mut r = Reader::new(s);
    for _ in 0..N {
        assert_eq!(r.next(false).status, 200);
    }
    writer.join().unwrap();
}

// ----- errors and smuggling ------------------------------------------------------------------

/// Sends `req`, expects `status` and then the close.
fn expect_error(srv: &TestServer, req: &[u8], status: u16) {
    let mut s = srv.connect();
    s.write_all(req).unwrap();
    let mut r = Reader::new(s);
    let resp = r.next(false);
    assert_eq!(
        resp.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(req)
    );
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.closed(), "connection left open after {status}");
}

#[test]
fn every_error_status() {
    let cfg = Config {
        max_body: 1000,
        ..Config::default()
    };
    let srv = TestServer::start(cfg);
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(17_000)
    );
    let many: String = (0..70).map(|i| format!("X-{i}: 1\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (many.as_bytes(), 431),
        (big_head.as_bytes(), 431),
        (long_target.as_bytes(), 414),
        (
            b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
    ];
    for &(req, status) in cases {
        expect_error(&srv, req, status);
    }
    // A chunked body over the limit: 413 after reading some of it.
    let mut req =
        b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"190\r\n");
        req.extend_from_slice(&[b'x'; 400]);
        req.extend_from_slice(b"\r\n");
    }
    expect_error(&srv, &req, 413);
}

#[test]
fn smuggling_attempts_are_refused() {
    let srv = TestServer::start(Config::default());
    let cases: &[&[u8]] = &[
        // CL.TE
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
        // TE.CL
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        // TE.TE obfuscation
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: cow\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n Transfer-Encoding: x\r\n\r\n0\r\n\r\n",
        // differing Content-Length
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n",
        // chunk size tricks
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        // bare LF in the head
        b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    ];
    for &req in cases {
        let mut s = srv.connect();
        s.write_all(req).unwrap();
        let mut r = Reader::new(s);
        let resp = r.next(false);
        assert!(
            resp.status == 400 || resp.status == 501,
            "{} for {:?}",
            resp.status,
            String::from_utf8_lossy(req)
        );
        assert!(r.closed());
    }
    assert_eq!(srv.stats.requests.load(Ordering::Relaxed), 0);
}

// ----- protocol behaviour ---------------------------------------------------------------------

#[test]
fn expect_100_continue() {
    let srv = TestServer::start(Config::default());
    // Collected: 100 first, then the answer once the body came.
    let s = srv.connect();
    let mut w = s.try_clone().unwrap();
    w.write_all(
        b"POST /collect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let mut r = Reader::new(s);
    assert_eq!(r.next_inner(false, true).status, 100);
    w.write_all(b"body").unwrap();
    let resp = r.next(false);
    assert_eq!((resp.status, &resp.body[..]), (200, &b"body"[..]));
    // Streamed and refused before the body: no 100, 403, close.
    w.write_all(
        b"PUT /reject HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let resp = r.next_inner(false, true);
    assert_eq!(resp.status, 403);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.closed());
}

#[test]
fn head_and_keep_alive_rules() {
    let srv = TestServer::start(Config::default());
    // HTTP/1.1: stays open; HEAD has no body.
    let mut s = srv.connect();
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    let resp = r.next(true);
    assert_eq!(resp.header("content-length"), Some("14"));
    assert!(resp.header("connection").is_none());
    s.write_all(GET).unwrap();
    assert_eq!(r.next(false).body, b"Hello World!\r\n");
    // HTTP/1.1 with Connection: close.
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.next(false).header("connection"), Some("close"));
    assert!(r.closed());
    // HTTP/1.0: closes unless keep-alive.
    let mut s = srv.connect();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut r = Reader::new(s);
    assert_eq!(r.next(false).header("connection"), Some("close"));
    assert!(r.closed());
    let mut s = srv.connect();
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    assert_eq!(r.next(false).header("connection"), Some("keep-alive"));
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(r.next(false).status, 200);
}

#[test]
fn upgrade_switches_to_raw_bytes() {
    let srv = TestServer::start(Config::default());
    let mut s = srv.connect();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    let resp = r.next(false);
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("upgrade"), Some("echo"));
    s.write_all(b"not http at all\r\n").unwrap();
    while r.buf.len() < 17 {
        r.fill().unwrap();
    }
    assert_eq!(&r.buf[..], b"not http at all\r\n");
}

#[test]
fn slowloris_gets_408() {
    let cfg = Config {
        header_timeout: Some(Duration::from_millis(300)),
        body_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let srv = TestServer::start(cfg);
    // A head trickling in a byte at a time never completes in time.
    let start = Instant::now();
    let mut s = srv.connect();
    let mut w = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let mut r = Reader::new(s.try_clone().unwrap());
    let resp = r.next(false);
    assert_eq!(resp.status, 408);
    assert!(r.closed());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    trickle.join().unwrap();
    // A body that stops coming.
    s = srv.connect();
    s.write_all(b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let mut r = Reader::new(s);
    assert_eq!(r.next(false).status, 408);
    assert!(r.closed());
    // An idle connection that never sends is closed quietly.
    let s = srv.connect();
    let mut r = Reader::new(s);
    assert!(r.closed());
}

#[test]
fn unix_socket_and_graceful_shutdown() {
    let path = std::env::temp_dir().join(format!("wireloop-http1-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    let srv = TestServer::start_with(Config::default(), 0, move |b| {
        b.listen(&format!("unix://{}", p.display()))
            .expect("unix listen")
    });
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got.ends_with(b"\r\n\r\nHello World!\r\n"));
    // An idle keep-alive connection does not hold up the shutdown.
    let _idle = srv.connect();
    drop(srv);
    let _ = std::fs::remove_file(&path);
}

// ----- memory and allocation ----------------------------------------------------------------

#[test]
fn echo_100_mib_with_bounded_memory() {
    let srv = TestServer::start(Config::default());
    const TOTAL: u64 = 100 << 20;
    let s = srv.connect();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(
            format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {TOTAL}\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let block: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
        let mut sent = 0;
        while sent < TOTAL {
            let n = block.len().min((TOTAL - sent) as usize);
            w.write_all(&block[..n]).unwrap();
            sent += n as u64;
        }
    });
    // Read the head, then count (and spot-check) the body as it streams back.
    let mut r = Reader::new(s);
    let head_end = loop {
        if let Some(i) = r.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        r.fill().unwrap();
    };
    let head = String::from_utf8_lossy(&r.buf[..head_end]).into_owned();
    assert!(head.contains(&format!("Content-Length: {TOTAL}")), "{head}");
    let mut got = (r.buf.len() - head_end) as u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut offset = got;
    while got < TOTAL {
        let n = r.s.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {got} bytes");
        assert_eq!(buf[0], (offset % 256) as u8, "echo corrupted at {offset}");
        got += n as u64;
        offset += n as u64;
    }
    writer.join().unwrap();
    assert_eq!(got, TOTAL);
    assert_eq!(srv.stats.echoed.load(Ordering::Relaxed), TOTAL);
    let max = srv.stats.max_output.load(Ordering::Relaxed);
    assert!(max < 4 << 20, "the server queued up to {max} bytes");
}

#[test]
fn no_allocation_per_keep_alive_request() {
    const N: usize = 600;
    let srv = TestServer::start_with(Config::default(), N, |b| b);
    let mut s = srv.connect();
    let mut r = Reader::new(s.try_clone().unwrap());
    // One at a time, then pipelined in batches of 8.
    for i in 0..N {
        if i >= N / 2 && (i - N / 2).is_multiple_of(8) {
            let batch: Vec<u8> = GET.iter().copied().cycle().take(GET.len() * 8).collect();
            s.write_all(&batch).unwrap();
        } else if i < N / 2 {
            s.write_all(GET).unwrap();
        }
        assert_eq!(r.next(false).status, 200);
    }
    let at = |i: usize| srv.stats.allocs_at[i].load(Ordering::Relaxed);
    // After a warm-up, the loop thread allocates nothing per request.
    assert_eq!(at(N / 2 - 1) - at(50), 0, "allocations per single request");
    assert_eq!(
        at(N - 1) - at(N / 2 + 8),
        0,
        "allocations per pipelined request"
    );
    s.shutdown(Shutdown::Both).ok();
}

#[test]
fn deferred_answer_completes_on_wake() {
    let srv = TestServer::start(Config::default());
    let mut s = srv.connect();
    // The deferred request, and one pipelined behind it that must wait its turn.
    s.write_all(b"GET /defer HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let id = loop {
        if let Some(id) = *srv.stats.deferred.lock().unwrap() {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the deferred request never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut probe = [0u8; 1];
    assert!(
        s.read(&mut probe).is_err(),
        "answered before the answer was ready"
    );
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    srv.stats.ready.store(true, Ordering::Release);
    assert!(srv.handle.wake(id));
    let mut r = Reader::new(s);
    assert_eq!(r.next(false).body, b"later");
    assert_eq!(r.next(false).body, b"Hello World!\r\n");
}

#[test]
fn generated_stream_respects_backpressure() {
    let srv = TestServer::start(Config::default());
    const N: u64 = 40 << 20;
    // Plain: the client does not read at first; the server must not queue it all.
    let mut s = srv.connect();
    s.write_all(format!("GET /generate?{N} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut r = Reader::new(s);
    let resp = r.next(false);
    assert_eq!(resp.body.len() as u64, N);
    assert!(resp.body.iter().all(|&b| b == b'g'));
    let max = srv.stats.max_generated_output.load(Ordering::Relaxed);
    assert!(max < 4 << 20, "queued up to {max} bytes");
    // TLS: the same through the TLS layer (resumed from its post_write).
    let ca = TempFile::new("ca-gen.pem", srv.cert_pem.as_bytes());
    let resolve = format!("localhost:{}:127.0.0.1", srv.tls.port());
    let out = curl(&[
        "--cacert",
        ca.0.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        &format!("https://localhost:{}/generate?{N}", srv.tls.port()),
    ]);
    assert_eq!(String::from_utf8_lossy(&out), N.to_string());
    let max = srv.stats.max_generated_output.load(Ordering::Relaxed);
    assert!(max < 4 << 20, "queued up to {max} bytes over TLS");
}
