//! The `tcp-proxy` example binary with TLS on either side: a TLS listener (`--tls-listen`,
//! terminated in the proxy) and TLS towards the upstream (`--upstream-tls`), with verifying
//! rustls clients and wireloop or plain-socket upstreams over loopback.
//!
//! * Bytes both ways through every combination (TLS client / plain upstream, plain client /
//!   TLS upstream, TLS on both), 4 MiB each with a checksum.
//! * Half-closes through a TLS side: the client's close_notify reaches the upstream as EOF
//!   while the answer still comes back; the upstream's FIN reaches the TLS client as
//!   close_notify (then FIN) while the client can still send; a client that half-closes
//!   before its TLS upstream has connected still gets its request through and the answer
//!   back.
//!
//! The proxy runs as a child process that is killed and reaped on drop; every wait is
//! bounded.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use common::tls_client::{
    assert_bytes, client_config, close_cleanly, localhost_cert, read_exact, tcp_connect,
    tls_connect, Tls,
};
use common::{fnv1a, pattern, recv, TempFile, TestServer, FNV_START, TIMEOUT};
use rustls::version::{TLS12, TLS13};
use wireloop::{Action, Conn, Handler, Loops, Server};
use wireloop_middleware::{translate, CertKey, TlsServer};

// ----- the proxy process -------------------------------------------------------------------

fn proxy_bin() -> std::path::PathBuf {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| common::example_bin("tcp-proxy"))
        .clone()
}

/// A running `tcp-proxy` with a plain and a TLS listener; killed and reaped on drop.
struct Proxy {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Its certificate and key (kept until the proxy is gone).
    _pem: TempFile,
}

impl Proxy {
    /// Starts the proxy in front of `upstream` with `cert` on its TLS listener and `extra`
    /// arguments; retries with other ports if the ones picked were taken.
    fn start(upstream: &str, cert: &CertKey, extra: &[&str]) -> Proxy {
        let pem = format!("{}{}", cert.leaf_pem(), cert.key_pem());
        let mut last = String::new();
        for _ in 0..5 {
            let pem = TempFile::with_contents("proxy", pem.as_bytes());
            match Proxy::try_start(upstream, pem, extra) {
                Ok(p) => return p,
                Err(why) => last = why,
            }
        }
        panic!("the proxy did not start: {last}");
    }

    fn try_start(upstream: &str, pem: TempFile, extra: &[&str]) -> Result<Proxy, String> {
        let [plain, tls] =
            [free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let mut child = Command::new(proxy_bin())
            .args([
                "--listen",
                &plain.to_string(),
                "--tls-listen",
                &tls.to_string(),
            ])
            .arg("--tlscert")
            .arg(pem.path())
            .args(["--upstream", upstream])
            .args(extra)
            .env("WIRELOOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stderr = common::ChildLog::spawn(child.stderr.take().expect("piped stderr"));
        let log = stderr.lines.clone();
        let mut proxy = Proxy {
            child,
            plain,
            tls,
            log,
            _pem: pem,
        };
        // One "serving" line per listener, logged once it is bound.
        for _ in 0..2 {
            if let Err(why) = stderr.wait_for("tcp-proxy serving", TIMEOUT) {
                let status = proxy.child.try_wait().ok().flatten();
                return Err(format!("exit status {status:?}: {why}"));
            }
        }
        Ok(proxy)
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

// ----- upstreams -----------------------------------------------------------------------------

/// Echoes everything; closes after its peer's end (the default `eof`).
struct Echo;

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

/// An echo server on 127.0.0.1, under TLS with `cert` if given.
fn start_echo(cert: Option<&CertKey>) -> TestServer {
    let server = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("build the echo server");
    let tls = cert.map(|c| TlsServer::builder(c.clone()).build().expect("TLS server"));
    let layered = tls.is_some();
    TestServer::start(server, move |_| {
        translate(Echo, move |_| layered, tls.clone())
    })
}

/// Arguments for TLS towards an upstream whose certificate is `ca` (the file must outlive
/// the proxy's start).
fn upstream_tls_args(ca: &TempFile) -> [String; 3] {
    [
        "--upstream-tls".into(),
        "--upstream-ca".into(),
        ca.path().display().to_string(),
    ]
}

/// Accepts one connection on `l` (on a thread, so the wait is bounded) and runs `f` on it.
fn serve_one<T: Send + 'static>(
    l: TcpListener,
    f: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        let _ = tx.send(f(s));
    });
    rx
}

fn read_all(s: &mut impl Read, what: &str) -> Vec<u8> {
    let mut v = Vec::new();
    if let Err(e) = s.read_to_end(&mut v) {
        panic!("{what}: after {} bytes: {e} ({:?})", v.len(), e.kind());
    }
    v
}

// ----- bytes both ways -----------------------------------------------------------------------

/// A line, then 4 MiB in 64 KiB steps (each echoed before the next is sent), compared by
/// checksum.
fn echo_round_trips(s: &mut impl ReadWrite) {
    s.write_all(b"hello through the proxy\n").unwrap();
    s.flush().unwrap();
    let got = read_exact(s, 24, "the line");
    assert_bytes(&got, b"hello through the proxy\n", "the line");
    let data = pattern(4 << 20, 11);
    let (mut sent, mut back) = (FNV_START, FNV_START);
    for chunk in data.chunks(64 << 10) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        sent = fnv1a(sent, chunk);
        back = fnv1a(back, &read_exact(s, chunk.len(), "4 MiB"));
    }
    assert_eq!(back, sent, "4 MiB came back different");
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn tls_client_to_a_plain_upstream() {
    let cert = localhost_cert();
    let echo = start_echo(None);
    let mut proxy = Proxy::start(&echo.tcp_addr(0).to_string(), &cert, &[]);
    for version in [&TLS13, &TLS12] {
        let mut s = tls_connect(proxy.tls, &client_config(&cert, &[version]));
        echo_round_trips(&mut s);
        // close_notify: the upstream sees EOF and closes; its FIN comes back as close_notify.
        close_cleanly(s);
    }
    proxy.assert_running();
    echo.stop().unwrap();
}

#[test]
fn plain_client_to_a_tls_upstream() {
    let upstream_cert = localhost_cert();
    let ca = TempFile::with_contents("ca", upstream_cert.leaf_pem().as_bytes());
    let echo = start_echo(Some(&upstream_cert));
    let args = upstream_tls_args(&ca);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&echo.tcp_addr(0).to_string(), &localhost_cert(), &args);
    let mut s = tcp_connect(proxy.plain);
    echo_round_trips(&mut s);
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut s, "EOF").is_empty());
    proxy.assert_running();
    echo.stop().unwrap();
}

#[test]
fn tls_client_to_a_tls_upstream() {
    let (cert, upstream_cert) = (localhost_cert(), localhost_cert());
    let ca = TempFile::with_contents("ca", upstream_cert.leaf_pem().as_bytes());
    let echo = start_echo(Some(&upstream_cert));
    let args = upstream_tls_args(&ca);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&echo.tcp_addr(0).to_string(), &cert, &args);
    let mut s = tls_connect(proxy.tls, &client_config(&cert, &[&TLS13]));
    echo_round_trips(&mut s);
    close_cleanly(s);
    proxy.assert_running();
    echo.stop().unwrap();
}

// ----- half-closes through a TLS side ---------------------------------------------------------

#[test]
fn a_tls_clients_close_notify_reaches_the_upstream_as_eof_and_the_answer_still_comes() {
    let cert = localhost_cert();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start(&l.local_addr().unwrap().to_string(), &cert, &[]);
    let request = pattern(300_000, 12);
    let reply = pattern(200_000, 13);
    let up = {
        let reply = reply.clone();
        serve_one(l, move |mut s| {
            let got = read_all(&mut s, "the upstream reads to EOF");
            s.write_all(&reply).expect("the upstream answers after EOF");
            s.shutdown(Shutdown::Write).unwrap();
            got
        })
    };
    let mut s = tls_connect(proxy.tls, &client_config(&cert, &[&TLS13]));
    s.write_all(&request).unwrap();
    s.conn.send_close_notify();
    s.flush().unwrap();
    // The reply, then the proxy's close_notify (read_to_end fails on a truncation).
    assert_bytes(&read_all(&mut s, "the reply"), &reply, "the reply");
    let seen = recv(&up, TIMEOUT, "the upstream");
    assert_bytes(&seen, &request, "the request, then EOF");
    proxy.assert_running();
}

#[test]
fn an_upstreams_fin_reaches_a_tls_client_as_close_notify_and_the_client_can_still_send() {
    let cert = localhost_cert();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start(&l.local_addr().unwrap().to_string(), &cert, &[]);
    let greeting = pattern(300_000, 14);
    let answer = pattern(200_000, 15);
    let up = {
        let greeting = greeting.clone();
        serve_one(l, move |mut s| {
            s.write_all(&greeting).expect("the upstream writes");
            s.shutdown(Shutdown::Write).unwrap();
            // Still reading: what the client sends after the half-close arrives.
            read_all(&mut s, "the upstream reads to EOF")
        })
    };
    let mut s: Tls = tls_connect(proxy.tls, &client_config(&cert, &[&TLS13]));
    let got = read_exact(&mut s, greeting.len(), "the greeting");
    assert_bytes(&got, &greeting, "the greeting");
    assert_eq!(
        s.read(&mut [0u8; 64]).expect("close_notify"),
        0,
        "close_notify"
    );
    s.write_all(&answer).expect("the client can still send");
    s.conn.send_close_notify();
    s.flush().unwrap();
    let seen = recv(&up, TIMEOUT, "the upstream");
    assert_bytes(&seen, &answer, "the answer, then EOF");
    // Both directions are finished: the proxy closes the client.
    assert!(read_all(&mut s.sock, "the TCP end").is_empty());
    proxy.assert_running();
}

#[test]
fn a_client_that_half_closes_before_its_tls_upstream_connects_gets_the_answer() {
    let upstream_cert = localhost_cert();
    let ca = TempFile::with_contents("ca", upstream_cert.leaf_pem().as_bytes());
    let echo = start_echo(Some(&upstream_cert));
    let args = upstream_tls_args(&ca);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // A host name: the proxy resolves it before it connects, so the client's request and
    // FIN arrive first.
    let upstream = format!("tcp4://localhost:{}", echo.tcp_addr(0).port());
    let mut proxy = Proxy::start(&upstream, &localhost_cert(), &args);
    for request in [&b"early request"[..], b""] {
        let mut s = tcp_connect(proxy.plain);
        s.write_all(request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let got = read_all(&mut s, "the echo, then EOF");
        assert_bytes(&got, request, "the echo");
    }
    proxy.assert_running();
    echo.stop().unwrap();
}

// ----- TLS passed through by server name ------------------------------------------------------

/// A rustls client for `name`, trusting only `trust`, over a fresh connection to `addr`.
fn tls_connect_to(addr: SocketAddr, name: &str, trust: &CertKey) -> Tls {
    let cfg = client_config(trust, &[&TLS13, &TLS12]);
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(cfg, server).expect("client connection");
    let mut s = rustls::StreamOwned::new(conn, tcp_connect(addr));
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            panic!("TLS handshake for {name}: {e}");
        }
    }
    s
}

#[test]
fn tls_passes_through_untouched_to_the_upstream_its_server_name_routes_to() {
    let cert_a = CertKey::self_signed(&["a.example.test".to_string()]).unwrap();
    let cert_b = CertKey::self_signed(&["b.example.test".to_string()]).unwrap();
    let (a, b, plain) = (
        start_echo(Some(&cert_a)),
        start_echo(Some(&cert_b)),
        start_echo(None),
    );
    let sni = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let args = [
        "--sni-listen".to_string(),
        sni.to_string(),
        format!("--sni-route=a.example.test={}", a.tcp_addr(0)),
        format!("--sni-route=*.example.test={}", b.tcp_addr(0)),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&plain.tcp_addr(0).to_string(), &localhost_cert(), &args);
    // Each client trusts only its upstream's certificate: the handshake is that
    // upstream's, end to end, and the proxy never holds a key for these names.
    for (name, trust) in [("a.example.test", &cert_a), ("b.example.test", &cert_b)] {
        let mut s = tls_connect_to(sni, name, trust);
        echo_round_trips(&mut s);
        close_cleanly(s);
    }
    proxy.assert_running();
    for s in [a, b, plain] {
        s.stop().unwrap();
    }
}
