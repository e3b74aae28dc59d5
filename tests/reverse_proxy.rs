//! End to end with the real `reverse-proxy` example binary (brought up to date with
//! `cargo build --example reverse-proxy` on first use, like the tcp-proxy tests), real
//! backends — a wireloop HTTP/1.1 server started here and `python3 -m http.server` — and
//! curl or raw sockets as clients: header rewriting, bodies both ways (sized and chunked),
//! TLS on both sides, 502/504, an upstream failing mid-response, keep-alive reuse,
//! balancing and down-marking, a slow client against a 1 GiB response with the proxy's
//! RSS watched, a WebSocket-style upgrade tunnel, and pipelining.
//!
//! Every child process is killed and reaped by a guard's `Drop`; every wait is bounded.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{pattern, wait_until, TestServer, TIMEOUT};
use wireloop::{Action, Conn, Control, Error, Handler, Server};
use wireloop_middleware::http1::{
    App, BodyMode, Http1, Http1Conn, Request, Response, UpgradeEvent,
};

// ----- the proxy process ----------------------------------------------------------------

fn proxy_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| common::example_bin("reverse-proxy"))
        .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe listener")
        .port()
}

/// A running `reverse-proxy`; killed and reaped on drop.
struct Proxy {
    child: Child,
    port: u16,
    tlsport: u16,
    log: Arc<Mutex<Vec<String>>>,
    access: Arc<Mutex<Vec<String>>>,
    _dir: Option<TempDir>,
}

impl Proxy {
    /// Starts the proxy on free ports of 127.0.0.1 (plain and TLS, the certificate
    /// written to `cert_path()`), with `args` added.
    fn start(args: &[&str]) -> Proxy {
        let mut last = String::new();
        for _ in 0..5 {
            match Proxy::try_start(args) {
                Ok(p) => return p,
                Err(why) => last = why,
            }
        }
        panic!("the proxy did not start: {last}");
    }

    fn try_start(args: &[&str]) -> Result<Proxy, String> {
        let (port, tlsport) = (free_port(), free_port());
        let dir = TempDir::new("proxy");
        let cert = dir.path().join("cert.pem");
        let mut child = Command::new(proxy_bin())
            .args(["--listen-host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--tlsport", &tlsport.to_string()])
            .arg("--cert-out")
            .arg(&cert)
            .args(args)
            .env("WIRELOOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stderr = common::ChildLog::spawn(child.stderr.take().expect("piped stderr"));
        let stdout = common::ChildLog::spawn(child.stdout.take().expect("piped stdout"));
        let (log, access) = (stderr.lines.clone(), stdout.lines.clone());
        let mut proxy = Proxy {
            child,
            port,
            tlsport,
            log,
            access,
            _dir: Some(dir),
        };
        if let Err(why) = stderr.wait_for("reverse-proxy forwarding to", TIMEOUT) {
            let status = proxy.child.try_wait().ok().flatten();
            return Err(format!("exit status {status:?}: {why}"));
        }
        Ok(proxy)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tlsport)
    }

    fn cert_path(&self) -> PathBuf {
        self._dir.as_ref().unwrap().path().join("cert.pem")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "wl-rp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `python3 -m http.server` on a free port serving `dir`; killed on drop.
struct Python {
    child: Child,
    port: u16,
}

impl Python {
    fn start(dir: &Path) -> Python {
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
fn curl_status(args: &[&str]) -> (i32, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("these tests need curl on PATH");
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[track_caller]
fn curl(args: &[&str]) -> Vec<u8> {
    let (code, out) = curl_status(args);
    assert_eq!(code, 0, "curl {args:?} failed");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ----- the wireloop backend -------------------------------------------------------------

/// Routes: `/headers` (the request line and header fields, names lower-cased), `/echo`
/// (streams the body back), `/chunked/N` (N pattern bytes, chunked), `/big/N` (N bytes,
/// sized, written while the connection has room), `/die` and `/die-chunked` (a few body
/// bytes, then the connection closes mid-response), `/upgrade` (101 and a raw echo),
/// anything else: `<name> <target>`.
struct Backend {
    name: &'static str,
}

/// Bytes of a `/big/N` response still to write (`None` for other requests).
#[derive(Default)]
struct BigLeft(Option<u64>);

impl App for Backend {
    type State = BigLeft;

    fn body_mode(&mut self, req: &Request<'_>, _: &mut BigLeft) -> BodyMode {
        if req.path() == "/echo" {
            BodyMode::Stream
        } else {
            BodyMode::Collect
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, st: &mut BigLeft) {
        let path = req.path();
        if path == "/headers" {
            let mut s = format!("{} {}\n", req.method(), req.target());
            for (n, v) in req.headers() {
                s.push_str(&format!("{}: {}\n", n.to_ascii_lowercase(), text(v)));
            }
            res.header("X-Backend", self.name)
                .header("Keep-Alive", "timeout=5")
                .body(s.as_bytes());
        } else if path == "/echo" {
            match req.content_length() {
                _ if !req.has_body() => res.body(b""),
                Some(n) => res.start_sized(n),
                None => res.start_chunked(),
            }
        } else if let Some(n) = path.strip_prefix("/chunked/") {
            let n: usize = n.parse().unwrap_or(0);
            res.start_chunked();
            for piece in pattern(n, 7).chunks(10_000) {
                res.write(piece);
            }
            res.finish();
        } else if let Some(n) = path.strip_prefix("/big/") {
            let n = n.parse().unwrap_or(0);
            st.0 = Some(n);
            res.start_sized(n);
            self.resume(res, st);
        } else if path == "/die" {
            res.start_sized(1000);
            res.write(b"partial");
            res.abort();
        } else if path == "/die-chunked" {
            res.start_chunked();
            res.write(b"partial");
            res.abort();
        } else if path == "/upgrade" && req.wants_upgrade() {
            let proto = text(req.header("upgrade").unwrap_or(b"x"));
            res.status(101).header("Upgrade", &proto);
            res.upgrade();
        } else {
            res.body(format!("{} {}", self.name, req.target()).as_bytes());
        }
    }

    fn body(&mut self, data: &[u8], res: &mut Response<'_>, _: &mut BigLeft) {
        res.write(data);
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut BigLeft) {
        res.finish();
    }

    fn resume(&mut self, res: &mut Response<'_>, st: &mut BigLeft) {
        static CHUNK: OnceLock<Vec<u8>> = OnceLock::new();
        let chunk = CHUNK.get_or_init(|| pattern(64 * 1024, 3));
        let Some(left) = &mut st.0 else {
            return;
        };
        while *left > 0 && res.has_room() {
            let n = (*left as usize).min(chunk.len());
            res.write(&chunk[..n]);
            *left -= n as u64;
        }
        if *left == 0 {
            st.0 = None;
            res.finish();
        }
    }

    fn upgraded<T>(&mut self, conn: &mut Conn<'_, T>, ev: UpgradeEvent, _: &mut BigLeft) -> Action {
        match ev {
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

/// The backend with a count of the connections it accepted.
struct Counting {
    http: Http1<Backend>,
    accepted: Arc<AtomicUsize>,
}

impl Handler for Counting {
    type State = Http1Conn<BigLeft>;
    fn serving(&mut self, ctl: &mut Control<'_, Self::State>) -> Action {
        self.http.serving(ctl)
    }
    fn tick(&mut self, ctl: &mut Control<'_, Self::State>) -> (Option<Duration>, Action) {
        self.http.tick(ctl)
    }
    fn opened(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        self.http.opened(conn)
    }
    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.http.data(conn)
    }
    fn eof(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.http.eof(conn)
    }
    fn writable(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.http.writable(conn)
    }
    fn woken(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.http.woken(conn)
    }
    fn post_write(&mut self, conn: &mut Conn<'_, Self::State>, written: usize) {
        self.http.post_write(conn, written)
    }
    fn closing(&mut self, conn: &mut Conn<'_, Self::State>) {
        self.http.closing(conn)
    }
    fn closed(&mut self, conn: &mut Conn<'_, Self::State>, err: Option<Error>) {
        self.http.closed(conn, err)
    }
}

struct BackendServer {
    srv: TestServer,
    accepted: Arc<AtomicUsize>,
}

impl BackendServer {
    fn start(name: &'static str) -> BackendServer {
        let server = Server::builder()
            .listen("tcp://127.0.0.1:0")
            .expect("listen")
            .build()
            .expect("build");
        let accepted = Arc::new(AtomicUsize::new(0));
        let a = accepted.clone();
        let srv = TestServer::start(server, move |_| Counting {
            http: Http1::server(Backend { name }),
            accepted: a.clone(),
        });
        BackendServer { srv, accepted }
    }

    fn url(&self) -> String {
        format!("http://{}", self.srv.tcp_addr(0))
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Reads one response with a `Content-Length` body: (head, body).
fn read_response(r: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read head line");
        assert!(n > 0, "EOF in a response head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("read body");
    (head, body)
}

// ----- tests ------------------------------------------------------------------------------

#[test]
fn help_exits_zero() {
    let out = Command::new(proxy_bin())
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--upstream URL"));
    let out = Command::new(proxy_bin())
        .output()
        .expect("run without args");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn headers_rewritten_plain_and_tls() {
    let be = BackendServer::start("a");
    let px = Proxy::start(&["--upstream", &be.url()]);
    let out = text(&curl(&[
        "-i",
        "-H",
        "Connection: keep-alive, X-Hop",
        "-H",
        "X-Hop: 1",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "TE: trailers",
        "-H",
        "Proxy-Authorization: Basic eA==",
        "-H",
        "X-Forwarded-For: 10.0.0.1",
        "-H",
        "X-Keep: yes",
        &px.url("/headers?q=1"),
    ]));
    let (head, body) = out.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(body.starts_with("GET /headers?q=1\n"), "{body}");
    for want in [
        "x-keep: yes\n",
        "x-forwarded-for: 10.0.0.1, 127.0.0.1\n",
        "x-forwarded-proto: http\n",
        "via: 1.1 wireloop\n",
        &format!("host: 127.0.0.1:{}\n", px.port),
    ] {
        assert!(body.contains(want), "no {want:?} in {body}");
    }
    for gone in [
        "x-hop",
        "keep-alive",
        "te:",
        "proxy-authorization",
        "connection",
    ] {
        assert!(!body.contains(gone), "{gone} forwarded: {body}");
    }
    // Response side: hop-by-hop fields (and the ones Connection names) removed, Via added.
    assert!(head.contains("X-Backend: a"), "{head}");
    assert!(head.contains("Via: 1.1 wireloop"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("keep-alive"), "{head}");

    // TLS inbound: X-Forwarded-Proto https.
    let cert = px.cert_path();
    let resolve = format!("localhost:{}:127.0.0.1", px.tlsport);
    let out = text(&curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        &px.tls_url("/headers"),
    ]));
    assert!(out.contains("x-forwarded-proto: https\n"), "{out}");

    // --rewrite-host, and TLS towards the upstream: a second proxy in front of the first
    // one's HTTPS port, trusting its certificate.
    let px2 = Proxy::start(&[
        "--rewrite-host",
        "--upstream",
        &format!("https://localhost:{}", px.tlsport),
        "--upstream-ca",
        cert.to_str().unwrap(),
    ]);
    let out = text(&curl(&[&px2.url("/headers")]));
    assert!(
        out.contains(&format!("host: localhost:{}\n", px.tlsport)),
        "{out}"
    );
    assert!(out.contains("via: 1.1 wireloop, 1.1 wireloop\n"), "{out}");
    assert!(
        out.contains("x-forwarded-for: 127.0.0.1, 127.0.0.1\n"),
        "{out}"
    );
    // Bodies both ways through both proxies (TLS between them).
    let dir = TempDir::new("upload");
    let payload = pattern(3 << 20, 21);
    let file = dir.path().join("payload");
    std::fs::write(&file, &payload).unwrap();
    let at = format!("@{}", file.display());
    let got = curl(&["--data-binary", &at, &px2.url("/echo")]);
    common::assert_same_bytes(&got, &payload, "upload echoed over the TLS hop");
    let got = curl(&[&px2.url("/chunked/2000000")]);
    common::assert_same_bytes(&got, &pattern(2_000_000, 7), "chunked over the TLS hop");
    drop(be);
}

#[test]
fn bodies_both_ways_sized_and_chunked() {
    let dir = TempDir::new("py");
    let big = pattern(6 << 20, 11);
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let py = Python::start(dir.path());
    let be = BackendServer::start("a");
    let px_py = Proxy::start(&["--upstream", &format!("http://127.0.0.1:{}", py.port)]);
    let px = Proxy::start(&["--upstream", &be.url()]);

    // Download from python (sized), plain and TLS.
    let got = curl(&[&px_py.url("/big.bin")]);
    common::assert_same_bytes(&got, &big, "download");
    let cert = px_py.cert_path();
    let resolve = format!("localhost:{}:127.0.0.1", px_py.tlsport);
    let got = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        &px_py.tls_url("/big.bin"),
    ]);
    common::assert_same_bytes(&got, &big, "download over TLS");
    // HEAD keeps the length, sends no body.
    let head = text(&curl(&["-I", &px_py.url("/big.bin")]));
    assert!(
        head.contains(&format!("Content-Length: {}", big.len())),
        "{head}"
    );

    // Uploads through to the echo backend: sized and chunked.
    let file = dir.path().join("big.bin");
    let at = format!("@{}", file.display());
    let (code, got) = curl_status(&["--data-binary", &at, &px.url("/echo")]);
    assert_eq!(
        code,
        0,
        "sized upload; proxy log: {:?}",
        px.log.lock().unwrap()
    );
    common::assert_same_bytes(&got, &big, "sized upload echoed");
    let got = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at,
        &px.url("/echo"),
    ]);
    common::assert_same_bytes(&got, &big, "chunked upload echoed");
    // Chunked download.
    let out = text(&curl(&["-i", &px.url("/chunked/300000")]));
    assert!(
        out.contains("Transfer-Encoding: chunked"),
        "{}",
        &out[..300]
    );
    let got = curl(&[&px.url("/chunked/300000")]);
    common::assert_same_bytes(&got, &pattern(300_000, 7), "chunked download");
    // The access log has a line per request.
    assert!(wait_until(TIMEOUT, || px
        .access
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"POST /echo HTTP/1.1\" 200 6291456"))));
    drop(py);
}

#[test]
fn errors_502_504_and_failure_mid_response() {
    // 502: nothing listens on the upstream port.
    let closed = free_port();
    let px = Proxy::start(&["--upstream", &format!("http://127.0.0.1:{closed}")]);
    let (code, out) = curl_status(&["-o", "/dev/null", "-w", "%{http_code}", &px.url("/")]);
    assert_eq!((code, text(&out).as_str()), (0, "502"));

    // 504: the upstream accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let px2 = Proxy::start(&[
        "--upstream",
        &format!("http://{silent_addr}"),
        "--upstream-timeout",
        "0.5",
    ]);
    let t = Instant::now();
    let (code, out) = curl_status(&["-o", "/dev/null", "-w", "%{http_code}", &px2.url("/")]);
    assert_eq!((code, text(&out).as_str()), (0, "504"));
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(silent);

    // The upstream closes mid-response: the client sees a failed transfer, never a
    // complete-looking short one.
    let be = BackendServer::start("a");
    let px3 = Proxy::start(&["--upstream", &be.url()]);
    for path in ["/die", "/die-chunked"] {
        let (code, _) = curl_status(&[&px3.url(path)]);
        assert!(code == 18 || code == 56, "{path}: curl exit code {code}");
    }
    // And the proxy still serves.
    assert_eq!(curl(&[&px3.url("/x")]), b"a /x");
}

#[test]
fn keep_alive_reuse_balancing_and_down_marking() {
    let a = BackendServer::start("a");
    let b = BackendServer::start("b");
    let px = Proxy::start(&["--upstream", &a.url(), "--upstream", &b.url()]);
    let mut names = Vec::new();
    for i in 0..10 {
        names.push(text(&curl(&[&px.url(&format!("/n{i}"))])));
    }
    let on_a = names.iter().filter(|n| n.starts_with("a ")).count();
    let on_b = names.iter().filter(|n| n.starts_with("b ")).count();
    assert_eq!((on_a, on_b), (5, 5), "{names:?}");
    // Ten requests from ten client connections, one upstream connection each.
    assert_eq!(a.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(b.accepted.load(Ordering::SeqCst), 1);

    // A dead upstream is marked down after its first failure (least-connections here):
    // the rest go to the live one.
    let closed = free_port();
    let px2 = Proxy::start(&[
        "--balance",
        "least-connections",
        "--upstream",
        &format!("http://127.0.0.1:{closed}"),
        "--upstream",
        &a.url(),
    ]);
    let mut codes = Vec::new();
    for _ in 0..6 {
        let (_, out) = curl_status(&["-o", "/dev/null", "-w", "%{http_code}", &px2.url("/")]);
        codes.push(text(&out));
    }
    assert!(
        codes.iter().filter(|c| *c == "502").count() <= 1,
        "{codes:?}"
    );
    assert!(codes[1..].iter().all(|c| c == "200"), "{codes:?}");
}

#[test]
fn slow_client_keeps_proxy_memory_bounded() {
    let be = BackendServer::start("a");
    let px = Proxy::start(&["--upstream", &be.url(), "--no-access-log"]);
    let base = px.rss();
    let mut s = connect(px.addr());
    s.write_all(b"GET /big/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Read the first 4 MiB, then stop reading: the proxy must stop reading the upstream.
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0;
    while got < 4 << 20 {
        got += s.read(&mut buf).expect("read");
    }
    let mut max = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        max = max.max(px.rss());
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        max < base + (48 << 20),
        "proxy RSS grew from {base} to {max} with a stalled client"
    );
    // Reading resumes the flow.
    let mut more = 0;
    while more < 16 << 20 {
        more += s.read(&mut buf).expect("read more");
    }
    assert!(px.rss() < base + (48 << 20));
}

#[test]
fn upgrade_becomes_a_tunnel() {
    let be = BackendServer::start("a");
    let px = Proxy::start(&["--upstream", &be.url()]);
    let s = connect(px.addr());
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let (head, _) = read_response(&mut r);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("Connection: Upgrade\r\n"), "{head}");
    let payload = pattern(1 << 20, 5);
    let writer = {
        let payload = payload.clone();
        thread::spawn(move || {
            w.write_all(b"ping").unwrap();
            w.write_all(&payload).unwrap();
            w
        })
    };
    let mut got = vec![0; 4 + payload.len()];
    r.read_exact(&mut got).expect("tunnel echo");
    assert_eq!(&got[..4], b"ping");
    common::assert_same_bytes(&got[4..], &payload, "tunnel echo");
    let w = writer.join().unwrap();
    w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("the tunnel closes");
    assert!(rest.is_empty());
}

#[test]
fn pipelined_requests_answered_in_order() {
    let be = BackendServer::start("a");
    let px = Proxy::start(&["--upstream", &be.url()]);
    let s = connect(px.addr());
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reqs = Vec::new();
    for i in 0..5 {
        reqs.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    reqs.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    reqs.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
    w.write_all(&reqs).unwrap();
    for i in 0..5 {
        let (head, body) = read_response(&mut r);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(text(&body), format!("a /p{i}"));
    }
    assert_eq!(read_response(&mut r).1, b"hello");
    assert_eq!(read_response(&mut r).1, b"a /last");
}

/// A raw upstream answering each connection, in turn, with the next canned response
/// (after reading the request head), then closing it.
fn raw_upstream(responses: Vec<&'static [u8]>) -> (SocketAddr, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        for resp in responses {
            let Ok((s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut r = BufReader::new(s);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let mut s = r.into_inner();
            let _ = s.write_all(resp);
        }
    });
    (addr, t)
}

#[test]
fn upstream_responses_interim_until_close_and_malformed() {
    let (addr, t) = raw_upstream(vec![
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: h\r\nX-Shown: s\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the close",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
    ]);
    let px = Proxy::start(&["--upstream", &format!("http://{addr}")]);
    let out = text(&curl(&["-i", &px.url("/1")]));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
    assert!(
        out.contains("X-Shown: s\r\n") && !out.contains("X-Secret"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nok"), "{out}");
    // A body delimited by the close reaches the client chunked (keep-alive kept).
    let out = text(&curl(&["-i", &px.url("/2")]));
    assert!(out.contains("Transfer-Encoding: chunked"), "{out}");
    assert!(out.ends_with("\r\n\r\nbody until the close"), "{out}");
    // Smuggling-shaped or malformed responses, a 101 nobody asked for: 502.
    for path in ["/3", "/4", "/5", "/6"] {
        let (code, out) = curl_status(&["-o", "/dev/null", "-w", "%{http_code}", &px.url(path)]);
        assert_eq!((code, text(&out)), (0, "502".to_string()), "{path}");
    }
    t.join().unwrap();
}

#[test]
fn stale_pooled_connection_is_replaced() {
    // Connection 1 answers one request with keep-alive, then reads the next request and
    // closes without answering (as a server closing an idle connection does when the
    // request crosses its FIN); connection 2 answers. The client must not see an error.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        let read_head = |r: &mut BufReader<TcpStream>| loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        };
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut r = BufReader::new(s);
        read_head(&mut r);
        r.get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
            .unwrap();
        read_head(&mut r);
        drop(r);
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut r = BufReader::new(s);
        read_head(&mut r);
        r.get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntwo")
            .unwrap();
    });
    let px = Proxy::start(&["--upstream", &format!("http://{addr}")]);
    assert_eq!(curl(&[&px.url("/1")]), b"one");
    assert_eq!(curl(&[&px.url("/2")]), b"two");
    t.join().unwrap();
    assert!(wait_until(TIMEOUT, || px.log.lock().unwrap().iter().any(
        |l| l.contains("stale upstream connection: sending GET /2 again")
    )));
}

#[test]
fn early_upstream_answer_during_an_upload_is_delivered() {
    // The upstream reads the request head only, answers 413 and closes (with the body
    // still arriving, so its kernel resets the connection): the client must get that
    // answer, not a 502 from the failed write of the rest of the body.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || {
        for _ in 0..2 {
            let Ok((s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut r = BufReader::new(s);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let _ = r.get_mut().write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 15\r\n\r\nbody too large\n",
            );
        }
    });
    let dir = TempDir::new("upload");
    let file = dir.path().join("big.bin");
    std::fs::write(&file, pattern(4 << 20, 3)).unwrap();
    let at = format!("@{}", file.display());
    let px = Proxy::start(&["--upstream", &format!("http://{addr}")]);
    // With curl's `Expect: 100-continue` and without it (the body streams at once). (Whether
    // the proxy had read the whole body by then, and so whether it keeps the client
    // connection, depends on how much the kernel's buffers took.)
    for expect in ["Expect: 100-continue", "Expect:"] {
        let (code, out) = curl_status(&["-i", "-H", expect, "--data-binary", &at, &px.url("/up")]);
        let out = text(&out);
        let out = out
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&out);
        assert!(
            out.starts_with("HTTP/1.1 413 "),
            "{expect}: curl exit {code}: {out}; proxy log: {:?}",
            px.log.lock().unwrap()
        );
        assert!(out.ends_with("\r\n\r\nbody too large\n"), "{expect}: {out}");
    }
    t.join().unwrap();
    assert!(wait_until(TIMEOUT, || px
        .access
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"POST /up HTTP/1.1\" 413 15"))));
}
