//! The sans-IO HTTP/2 client (`h2::conn::Connection::client`) against real servers:
//! driven over a blocking `TcpStream` against the `http-server` example's h2c (prior
//! knowledge) port, and in the loop on a dialed connection (`H2Dialer`) — through the
//! rustls client layer with ALPN `h2` to the example's TLS port, and to `nghttpd`
//! (Debian's nghttp2-server; skipped with a message when it is not installed) by h2c and
//! over TLS. Many streams at once, request and response bodies larger than the initial
//! windows, trailers. (Here, not under `middleware/tests/`, because the example-process
//! helpers live in `tests/common`.) Every server process is killed by PID and reaped on
//! drop.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::process::{free_port, Process};
use common::tools::TempDir;
use common::{pattern, recv, wait_until, TestServer, TIMEOUT};
use wireloop::{Action, Conn, Control, DialOptions, Error, Handler, Loops, Server};
use wireloop_middleware::h2::conn::{Config, Connection, Event};
use wireloop_middleware::h2::hpack::Field;
use wireloop_middleware::{CertKey, TlsClient, TlsSession};

/// What came back on one stream.
#[derive(Default)]
struct Got {
    status: u16,
    body: Vec<u8>,
    done: bool,
}

/// Sends `requests` (path, body) at once on one connection and drives it until every
/// response is complete; returns them in order.
fn exchange(sock: &mut TcpStream, requests: &[(&str, Vec<u8>)]) -> Vec<Got> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut conn = Connection::client(Config::default(), Instant::now());
    let mut ids = Vec::new();
    for (path, body) in requests {
        let method: &[u8] = if body.is_empty() { b"GET" } else { b"POST" };
        let fields = [
            Field::new(b":method", method),
            Field::new(b":scheme", b"http"),
            Field::new(b":authority", b"127.0.0.1"),
            Field::new(b":path", path.as_bytes()),
        ];
        ids.push(conn.send_request(&fields, body.is_empty()).unwrap());
    }
    let mut sent = vec![0usize; requests.len()];
    let mut got: Vec<Got> = requests.iter().map(|_| Got::default()).collect();
    let mut input = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = Instant::now() + TIMEOUT;
    while !got.iter().all(|g| g.done) {
        assert!(Instant::now() < deadline, "no answer in time");
        for (i, (_, body)) in requests.iter().enumerate() {
            if !body.is_empty() && sent[i] < body.len() {
                sent[i] += conn.send_data(ids[i], &body[sent[i]..], true).unwrap();
            }
        }
        let out = conn.output().to_vec();
        sock.write_all(&out).unwrap();
        conn.consume_output(out.len());
        match sock.read(&mut buf) {
            Ok(0) => panic!("server closed"),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => panic!("{e}"),
        }
        let mut released = Vec::new();
        let n = conn
            .recv(&input, Instant::now(), &mut |e| {
                let at = |s: u32| ids.iter().position(|&x| x == s).unwrap();
                match e {
                    Event::Response {
                        stream,
                        response,
                        end_stream,
                    } => {
                        let g = &mut got[at(stream)];
                        g.status = response.status;
                        g.done = end_stream;
                    }
                    Event::Data {
                        stream,
                        data,
                        end_stream,
                    } => {
                        let g = &mut got[at(stream)];
                        g.body.extend_from_slice(data);
                        g.done = end_stream;
                        released.push((stream, data.len()));
                    }
                    Event::Trailers { stream, .. } => got[at(stream)].done = true,
                    Event::Reset { stream, code, .. } => panic!("stream {stream} reset: {code}"),
                    _ => {}
                }
            })
            .unwrap();
        input.drain(..n);
        for (stream, n) in released {
            conn.release(stream, n);
        }
    }
    got
}

#[test]
fn client_talks_h2c_to_the_http_server_example() {
    let port = free_port();
    let args: Vec<String> = ["--port", &port.to_string(), "--tlsport", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _p = Process::start(
        &common::example_bin("http-server"),
        &args,
        "http-server: http://",
        TIMEOUT,
    )
    .expect("http-server starts");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
    let mut requests = vec![("/", Vec::new())];
    for _ in 0..8 {
        requests.push(("/echo", big.clone()));
    }
    let got = exchange(&mut sock, &requests);
    assert_eq!(got[0].status, 200);
    assert_eq!(got[0].body, b"Hello World!\r\n");
    for g in &got[1..] {
        assert_eq!(g.status, 200);
        assert!(g.body == big, "echo of {} bytes differs", g.body.len());
    }
}

// ----- the client role in the loop: a dialed connection, TLS with ALPN `h2` or h2c ------

/// One request of [`H2Dialer`] and what came back for it.
#[derive(Clone, Debug, Default)]
struct Exchange {
    path: String,
    body: Vec<u8>,
    /// Stream id, request body bytes taken by the connection so far.
    id: u32,
    sent: usize,
    status: u16,
    got: Vec<u8>,
    /// Trailer fields, `name: value`.
    trailers: Vec<String>,
    done: bool,
}

/// The dialed connection's state: the sans-IO client and the exchanges on it.
#[derive(Default)]
struct DialState {
    h2: Option<Connection>,
    ex: Vec<Exchange>,
    /// The protocol ALPN chose (`None` on h2c).
    alpn: Option<Vec<u8>>,
    reported: bool,
}

/// What a dial ends with: the exchanges and the protocol ALPN chose (`None` on h2c).
type Outcome = Result<(Vec<Exchange>, Option<Vec<u8>>), String>;

/// A handler that dials `target` once (through `tls` when given, which must choose
/// ALPN `h2`), sends every request at once on one HTTP/2 connection driven by
/// `Connection::client`, and reports the answers on `tx` when all are complete.
#[derive(Clone)]
struct H2Dialer {
    target: String,
    tls: Option<TlsClient>,
    authority: String,
    scheme: &'static str,
    requests: Vec<(String, Vec<u8>)>,
    tx: mpsc::Sender<Outcome>,
}

impl H2Dialer {
    /// Requests out, bodies as far as the windows allow, frames to the socket.
    fn pump(st: &mut DialState, conn: &mut Conn<'_, DialState>) -> Result<(), String> {
        let h2 = st.h2.as_mut().expect("an h2 connection");
        for e in st.ex.iter_mut() {
            if e.sent < e.body.len() {
                let n = h2
                    .send_data(e.id, &e.body[e.sent..], true)
                    .map_err(|err| format!("send_data on {}: {err:?}", e.id))?;
                e.sent += n;
            }
        }
        let n = h2.output().len();
        if n > 0 {
            conn.write(h2.output());
            h2.consume_output(n);
        }
        Ok(())
    }

    fn report(&self, st: &mut DialState, outcome: Outcome) {
        if !st.reported {
            st.reported = true;
            let _ = self.tx.send(outcome);
        }
    }

    fn start(&self, st: &mut DialState, conn: &mut Conn<'_, DialState>) -> Result<(), String> {
        let mut h2 = Connection::client(Config::default(), conn.now());
        for (path, body) in &self.requests {
            let method: &[u8] = if body.is_empty() { b"GET" } else { b"POST" };
            let fields = [
                Field::new(b":method", method),
                Field::new(b":scheme", self.scheme.as_bytes()),
                Field::new(b":authority", self.authority.as_bytes()),
                Field::new(b":path", path.as_bytes()),
            ];
            let id = h2
                .send_request(&fields, body.is_empty())
                .map_err(|e| format!("send_request {path}: {e:?}"))?;
            st.ex.push(Exchange {
                path: path.clone(),
                body: body.clone(),
                id,
                ..Exchange::default()
            });
        }
        st.h2 = Some(h2);
        Self::pump(st, conn)
    }

    /// Input into the client; the exchanges it completes.
    fn input(st: &mut DialState, conn: &mut Conn<'_, DialState>) -> Result<(), String> {
        let DialState { h2, ex, .. } = st;
        let h2 = h2.as_mut().expect("an h2 connection");
        let mut released = Vec::new();
        let mut failure = None;
        let n = h2
            .recv(conn.input(), conn.now(), &mut |e| {
                let at = |s: u32| ex.iter().position(|x| x.id == s);
                match e {
                    Event::Response {
                        stream,
                        response,
                        end_stream,
                    } => {
                        if let Some(i) = at(stream) {
                            ex[i].status = response.status;
                            ex[i].done = end_stream;
                        }
                    }
                    Event::Data {
                        stream,
                        data,
                        end_stream,
                    } => {
                        if let Some(i) = at(stream) {
                            ex[i].got.extend_from_slice(data);
                            ex[i].done = end_stream;
                        }
                        released.push((stream, data.len()));
                    }
                    Event::Trailers { stream, fields } => {
                        if let Some(i) = at(stream) {
                            for f in fields.iter() {
                                ex[i].trailers.push(format!(
                                    "{}: {}",
                                    String::from_utf8_lossy(f.name),
                                    String::from_utf8_lossy(f.value)
                                ));
                            }
                            ex[i].done = true;
                        }
                    }
                    Event::Reset { stream, code, .. } => {
                        failure = Some(format!("stream {stream} reset: {code:?}"));
                    }
                    Event::Unprocessed { stream } => {
                        failure = Some(format!("stream {stream} not processed"));
                    }
                    Event::GoAway { code, debug, .. } => {
                        failure = Some(format!(
                            "GOAWAY {code:?} {}",
                            String::from_utf8_lossy(debug)
                        ));
                    }
                    _ => {}
                }
            })
            .map_err(|e| format!("recv: {e}"))?;
        conn.consume(n);
        for (stream, n) in released {
            h2.release(stream, n);
        }
        match failure {
            Some(f) => Err(f),
            None => Self::pump(st, conn),
        }
    }
}

impl Handler for H2Dialer {
    type State = DialState;

    fn serving(&mut self, ctl: &mut Control<'_, DialState>) -> Action {
        let mut opts = DialOptions::new().timeout(TIMEOUT);
        if let Some(tls) = &self.tls {
            opts = opts.layer(tls.clone());
        }
        if let Err(e) = ctl.dial(&self.target, opts, DialState::default()) {
            let _ = self.tx.send(Err(format!("dial {}: {e}", self.target)));
        }
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, DialState>) -> Action {
        let mut st = std::mem::take(conn.state);
        st.alpn = conn
            .layer::<TlsSession>()
            .and_then(|t| t.alpn_protocol())
            .map(|p| p.to_vec());
        let res = match (&self.tls, &st.alpn) {
            (Some(_), Some(p)) if p.as_slice() != b"h2" => {
                Err(format!("ALPN chose {:?}", String::from_utf8_lossy(p)))
            }
            (Some(_), None) => Err("ALPN chose nothing".to_string()),
            _ => self.start(&mut st, conn),
        };
        let action = match res {
            Ok(()) => Action::None,
            Err(e) => {
                self.report(&mut st, Err(e));
                Action::Close
            }
        };
        *conn.state = st;
        action
    }

    fn data(&mut self, conn: &mut Conn<'_, DialState>) -> Action {
        let mut st = std::mem::take(conn.state);
        let action = match Self::input(&mut st, conn) {
            Ok(()) if !st.ex.is_empty() && st.ex.iter().all(|e| e.done) => {
                let ok = Ok((st.ex.clone(), st.alpn.clone()));
                self.report(&mut st, ok);
                Action::Close
            }
            Ok(()) => Action::None,
            Err(e) => {
                self.report(&mut st, Err(e));
                Action::Close
            }
        };
        *conn.state = st;
        action
    }

    fn closed(&mut self, conn: &mut Conn<'_, DialState>, err: Option<Error>) {
        let mut st = std::mem::take(conn.state);
        self.report(
            &mut st,
            Err(format!("closed before every answer came: {err:?}")),
        );
    }
}

/// Dials `target` from a one-loop server running [`H2Dialer`] and waits for its report.
fn dial_exchange(
    target: String,
    tls: Option<TlsClient>,
    scheme: &'static str,
    requests: Vec<(String, Vec<u8>)>,
) -> (Vec<Exchange>, Option<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let dialer = H2Dialer {
        authority: target.trim_start_matches("tcp://").to_string(),
        target,
        tls,
        scheme,
        requests,
        tx,
    };
    let server = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("build the dialing server");
    let ts = TestServer::start(server, move |_| dialer.clone());
    let outcome = recv(&rx, TIMEOUT, "the HTTP/2 exchanges");
    ts.stop().expect("the dialing server stops");
    outcome.unwrap_or_else(|e| panic!("HTTP/2 client: {e}"))
}

/// A TLS client trusting `cert_pem`, offering ALPN `h2` only.
fn h2_tls_client(cert_pem: &[u8]) -> TlsClient {
    TlsClient::builder()
        .server_name("localhost")
        .root_ca_pem(cert_pem)
        .expect("the server's certificate")
        .alpn(&[b"h2"])
        .build()
        .expect("TLS client")
}

#[test]
fn client_talks_h2_over_tls_with_alpn_to_the_http_server_example() {
    let dir = TempDir::new("h2-client-tls");
    let cert = dir.path().join("cert.pem");
    let (_p, _, tlsport) = common::process::http_server(Some(&cert));
    let tls = h2_tls_client(&std::fs::read(&cert).expect("the example wrote its certificate"));
    let big = pattern(300_000, 7);
    let mut requests = vec![("/".to_string(), Vec::new())];
    for _ in 0..6 {
        requests.push(("/echo".to_string(), big.clone()));
    }
    let (got, alpn) = dial_exchange(
        format!("tcp://127.0.0.1:{tlsport}"),
        Some(tls),
        "https",
        requests,
    );
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(got[0].status, 200);
    assert_eq!(got[0].got, b"Hello World!\r\n");
    for g in &got[1..] {
        assert_eq!(g.status, 200, "{}", g.path);
        assert!(g.got == big, "echo of {} bytes differs", g.got.len());
    }
}

/// `nghttpd` (Debian's nghttp2-server) on port 0 of 127.0.0.1, serving `docs`, echoing
/// uploads and adding a trailer to every response; with TLS when given a key and
/// certificate. Killed by PID and reaped on drop.
struct Nghttpd {
    child: Child,
    port: u16,
}

impl Nghttpd {
    /// `None` (after saying so) when the binary is not installed.
    fn start(docs: &Path, tls: Option<(&Path, &Path)>) -> Option<Nghttpd> {
        let mut cmd = Command::new("nghttpd");
        cmd.args([
            "-a",
            "127.0.0.1",
            "--echo-upload",
            "--trailer",
            "x-served-by: nghttpd",
        ])
        .arg("-d")
        .arg(docs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        match tls {
            Some((key, cert)) => cmd.arg("0").arg(key).arg(cert),
            None => cmd.args(["--no-tls", "0"]),
        };
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "SKIPPED: nghttpd is not installed (apt-get install nghttp2-server); \
                     the test against it did not run"
                );
                return None;
            }
            Err(e) => panic!("spawn nghttpd: {e}"),
        };
        let mut d = Nghttpd { child, port: 0 };
        // nghttpd does not print its port: read its listening socket from /proc.
        let pid = d.child.id();
        let found = wait_until(TIMEOUT, || {
            d.port = listening_port(pid).unwrap_or(0);
            d.port != 0 || matches!(d.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            found && d.port != 0,
            "nghttpd did not listen: {:?}",
            d.child.try_wait()
        );
        Some(d)
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port a process listens on (TCP over IPv4 or IPv6), from its descriptors and
/// `/proc/PID/net/tcp*`.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_str()?;
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode (10th)
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

/// Against nghttpd: a file larger than the initial stream window (so our
/// WINDOW_UPDATEs must flow), a missing one (404), uploads larger than nghttpd's
/// windows echoed on concurrent streams, every response ending with nghttpd's trailer.
fn exchange_with_nghttpd(tls: bool) {
    let dir = TempDir::new("nghttpd");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let file = pattern(500_000, 11);
    std::fs::write(docs.join("file.bin"), &file).unwrap();
    let cert = CertKey::self_signed(&["localhost".to_string()]).expect("a certificate");
    let (key_path, cert_path) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    std::fs::write(&key_path, cert.key_pem()).unwrap();
    std::fs::write(&cert_path, cert.leaf_pem()).unwrap();
    let Some(server) = Nghttpd::start(&docs, tls.then_some((&*key_path, &*cert_path))) else {
        return;
    };
    let upload = pattern(200_000, 13);
    let mut requests = vec![
        ("/file.bin".to_string(), Vec::new()),
        ("/missing".to_string(), Vec::new()),
    ];
    for i in 0..4 {
        requests.push((format!("/up{i}"), upload.clone()));
    }
    let client = tls.then(|| h2_tls_client(cert.leaf_pem().as_bytes()));
    let (got, alpn) = dial_exchange(
        format!("tcp://127.0.0.1:{}", server.port),
        client,
        if tls { "https" } else { "http" },
        requests,
    );
    assert_eq!(alpn.is_some(), tls);
    assert_eq!(got[0].status, 200);
    assert!(
        got[0].got == file,
        "file of {} bytes differs",
        got[0].got.len()
    );
    assert_eq!(got[1].status, 404);
    for g in &got[2..] {
        assert_eq!(g.status, 200, "{}", g.path);
        assert!(g.got == upload, "echo of {} bytes differs", g.got.len());
    }
    for g in &got {
        assert_eq!(g.trailers, ["x-served-by: nghttpd"], "{}", g.path);
    }
}

#[test]
fn client_talks_h2c_to_nghttpd() {
    exchange_with_nghttpd(false);
}

#[test]
fn client_talks_h2_over_tls_with_alpn_to_nghttpd() {
    exchange_with_nghttpd(true);
}
