//! WebSocket with real clients: tungstenite (plain and over rustls) against the
//! `websocket-chat` example, including a broadcast between two clients on the plain and
//! the TLS listener; and the wireloop client layer ([`WsClient`]) dialing a wireloop
//! WebSocket server, plain and under TLS, plus a refused handshake.
//!
//! Every wait is bounded, servers listen on port 0 (the chat's TLS port is a free port
//! picked just before), and every server and child process is stopped.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tungstenite::Message as TMessage;
use wireloop::{DialOptions, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::ws::{
    Accept, ClientConfig, CloseFrame, Message, WebSocket, Ws, WsClient, WsError, WsHandler,
};
use wireloop_middleware::{translate, CertKey, TlsClient, TlsServer};

use common::{ChildGuard, TempFile, TestServer, TIMEOUT};

// ----- the chat example with tungstenite ---------------------------------------------------

/// The example binary, built once per test process.
fn chat_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::example_bin("websocket-chat"))
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Chat {
    _child: ChildGuard,
    port: u16,
    tlsport: u16,
    cert: CertKey,
    _pem: TempFile,
}

fn start_chat(loops: &str) -> Chat {
    let cert = CertKey::self_signed(&["localhost".to_string()]).expect("certificate");
    let pem = TempFile::with_contents(
        "chat",
        format!("{}{}", cert.leaf_pem(), cert.key_pem()).as_bytes(),
    );
    let tlsport = free_port();
    let mut child = Command::new(chat_binary())
        .args([
            "--port",
            "0",
            "--tlsport",
            &tlsport.to_string(),
            "--loops",
            loops,
        ])
        .arg("--tlscert")
        .arg(pem.path())
        .env("WIRELOOP_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn websocket-chat");
    let stderr = child.stderr.take().expect("stderr");
    let child = ChildGuard(Some(child));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let port = loop {
        let line = rx
            .recv_timeout(TIMEOUT)
            .expect("the chat logs the address it serves");
        if let Some(rest) = line.split("http://0.0.0.0:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits.parse().expect("port");
        }
    };
    Chat {
        _child: child,
        port,
        tlsport,
        cert,
        _pem: pem,
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

type Client = tungstenite::WebSocket<Box<dyn Stream>>;

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

fn ws_plain(port: u16) -> Client {
    let stream: Box<dyn Stream> = Box::new(tcp(port));
    let (ws, res) = tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), stream)
        .unwrap_or_else(|e| panic!("ws handshake: {e}"));
    assert_eq!(res.status(), 101);
    ws
}

fn ws_tls(port: u16, cert: &CertKey) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            cert.leaf_der().to_vec(),
        ))
        .expect("trust the certificate");
    let cfg =
        rustls::ClientConfig::builder_with_provider(wireloop_middleware::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("TLS client");
    let stream: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, tcp(port)));
    let (ws, res) = tungstenite::client(format!("wss://localhost:{port}/ws"), stream)
        .unwrap_or_else(|e| panic!("wss handshake: {e}"));
    assert_eq!(res.status(), 101);
    ws
}

/// Reads text messages until one satisfies `want` (the others are skipped), within
/// [`TIMEOUT`] (each read is bounded by the socket's timeout).
fn read_until(ws: &mut Client, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match ws.read() {
            Ok(TMessage::Text(t)) => {
                if want(t.as_str()) {
                    return t.as_str().to_string();
                }
                seen.push(t.as_str().to_string());
            }
            Ok(_) => {}
            Err(e) => panic!("waiting for {what}: {e} (seen {seen:?})"),
        }
    }
    panic!("waiting for {what}: timeout (seen {seen:?})");
}

fn send(ws: &mut Client, text: &str) {
    ws.send(TMessage::Text(text.into())).expect("send");
}

/// The name the chat gave a new client (from its welcome).
fn welcome(ws: &mut Client) -> String {
    let w = read_until(ws, "the welcome", |t| t.starts_with("* welcome, you are "));
    w.trim_start_matches("* welcome, you are ").to_string()
}

fn chat_broadcast(loops: &str) {
    let chat = start_chat(loops);
    // The page.
    let mut s = tcp(chat.port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut page = String::new();
    s.read_to_string(&mut page).expect("read the page");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("new WebSocket("), "{page}");

    let mut a = ws_plain(chat.port);
    let name_a = welcome(&mut a);
    let mut b = ws_tls(chat.tlsport, &chat.cert);
    let name_b = welcome(&mut b);
    read_until(&mut a, "b joined", |t| t == format!("* {name_b} joined"));

    send(&mut b, "hello from tls ✓");
    let want = format!("{name_b}: hello from tls ✓");
    read_until(&mut a, "b's message at a", |t| t == want);
    read_until(&mut b, "b's message at b", |t| t == want);

    send(&mut a, "hello from plain");
    let want = format!("{name_a}: hello from plain");
    read_until(&mut b, "a's message at b", |t| t == want);
    read_until(&mut a, "a's message at a", |t| t == want);

    // A burst arrives complete and in order.
    for i in 0..50 {
        send(&mut a, &format!("burst {i}"));
    }
    for i in 0..50 {
        let want = format!("{name_a}: burst {i}");
        read_until(&mut b, "the burst", |t| t == want);
    }

    a.close(None).expect("close a");
    read_until(&mut b, "a left", |t| t == format!("* {name_a} left"));
    b.close(None).expect("close b");
}

#[test]
fn chat_example_broadcasts_between_plain_and_tls_clients() {
    chat_broadcast("1");
}

#[test]
fn chat_example_broadcasts_across_loops() {
    chat_broadcast("2");
}

// ----- the wireloop client layer -------------------------------------------------------------

/// What the client handler saw.
#[derive(Debug, PartialEq)]
enum Seen {
    Open(Option<String>),
    Text(String),
    Binary(usize),
    Closed(Option<u16>, Option<String>),
}

/// Sends a few messages on open and closes once all came back.
struct Probe {
    tx: Sender<Seen>,
    big: Vec<u8>,
    echoes: usize,
}

impl WsHandler for Probe {
    type State = ();

    fn open(&mut self, ws: &mut Ws<'_, '_>, _: &mut ()) {
        let _ = self.tx.send(Seen::Open(ws.protocol().map(str::to_string)));
        ws.send_text("hello");
        ws.send_binary(&self.big);
        ws.send_text("κόσμε");
    }

    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        let _ = self.tx.send(match msg {
            Message::Text(t) => Seen::Text(t.to_string()),
            Message::Binary(b) => {
                assert_eq!(b, &self.big[..]);
                Seen::Binary(b.len())
            }
        });
        self.echoes += 1;
        if self.echoes == 3 {
            ws.close(1000, "done");
        }
    }

    fn closed(&mut self, _: &mut (), close: Option<CloseFrame>, err: Option<wireloop::Error>) {
        let err = err.map(
            |e| match e.layer_error().and_then(|l| l.downcast_ref::<WsError>()) {
                Some(WsError::Handshake(h)) => format!("handshake: {h}"),
                _ => e.to_string(),
            },
        );
        let _ = self.tx.send(Seen::Closed(close.map(|c| c.code), err));
    }
}

/// Echo, with subprotocol `echo.v1` if offered and `/forbidden` refused.
struct EchoServer;

impl WsHandler for EchoServer {
    type State = ();

    fn accept(&mut self, req: &Request<'_>, _: &mut ()) -> Accept {
        if req.path() == "/forbidden" {
            return Accept::Reject(403);
        }
        let protocol = wireloop_middleware::ws::handshake::offered_protocols(req)
            .find(|p| *p == "echo.v1")
            .map(str::to_string);
        Accept::WebSocket { protocol }
    }

    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        ws.send(msg);
    }
}

fn no_page(_: &Request<'_>, res: &mut Response<'_>) {
    res.status(404).body(b"");
}

struct Pair {
    server: TestServer,
    client: TestServer,
}

/// A wireloop WebSocket server (listener 0 plain, 1 TLS) and a client-only wireloop server
/// whose dialed connections run `WsClient` (through TLS if `tls`).
fn pair(path: &str, tls: bool, tx: Sender<Seen>) -> Pair {
    let cert = CertKey::self_signed(&["localhost".to_string()]).expect("certificate");
    let tls_server = TlsServer::builder(cert.clone())
        .build()
        .expect("tls server");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.listen("tcp://127.0.0.1:0"))
        .and_then(|b| b.build())
        .expect("server");
    let server = TestServer::start(server, move |_| {
        translate(
            Http1::server(WebSocket::new(no_page, EchoServer)),
            |c| c.addr_index == 1,
            tls_server.clone(),
        )
    });
    let port = server.tcp_addr(if tls { 1 } else { 0 }).port();
    let tls_client = TlsClient::builder()
        .server_name("localhost")
        .root_ca_pem(cert.leaf_pem().as_bytes())
        .and_then(|b| b.build())
        .expect("tls client");
    let cfg = ClientConfig {
        host: format!("localhost:{port}"),
        path: path.to_string(),
        protocols: vec!["other".into(), "echo.v1".into()],
        ..ClientConfig::default()
    };
    let client = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("client server");
    let client = TestServer::start(client, move |_| {
        let probe = Probe {
            tx: tx.clone(),
            big: common::pattern(300_000, 3),
            echoes: 0,
        };
        translate(
            WsClient::new(probe, cfg.clone()),
            move |c| tls && c.dialed,
            tls_client.clone(),
        )
    });
    Pair { server, client }
}

fn client_round_trip(tls: bool) {
    let (tx, rx) = mpsc::channel();
    let p = pair("/echo", tls, tx);
    let target = format!("tcp://{}", p.server.tcp_addr(if tls { 1 } else { 0 }));
    p.client
        .handle
        .dial(&target, DialOptions::default())
        .expect("dial");
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !matches!(seen.last(), Some(Seen::Closed(..))) {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            rx.recv_timeout(left)
                .unwrap_or_else(|e| panic!("{e:?}; seen {seen:?}")),
        );
    }
    assert_eq!(
        seen,
        [
            Seen::Open(Some("echo.v1".into())),
            Seen::Text("hello".into()),
            Seen::Binary(300_000),
            Seen::Text("κόσμε".into()),
            Seen::Closed(Some(1000), None),
        ]
    );
    p.client.stop().expect("client stops");
    p.server.stop().expect("server stops");
}

#[test]
fn wireloop_client_dials_wireloop_server() {
    client_round_trip(false);
}

#[test]
fn wireloop_client_dials_wireloop_server_over_tls() {
    client_round_trip(true);
}

#[test]
fn wireloop_client_refused_handshake_is_an_error() {
    let (tx, rx) = mpsc::channel();
    let p = pair("/forbidden", false, tx);
    let target = format!("tcp://{}", p.server.tcp_addr(0));
    p.client
        .handle
        .dial(&target, DialOptions::default())
        .expect("dial");
    match rx.recv_timeout(TIMEOUT).expect("closed") {
        Seen::Closed(None, Some(err)) => {
            assert!(err.starts_with("handshake: "), "{err}");
            assert!(err.contains("403"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    p.client.stop().expect("client stops");
    p.server.stop().expect("server stops");
}

/// tungstenite's own server in a thread, dialed by the wireloop client.
#[test]
// tungstenite's handshake callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
fn wireloop_client_dials_tungstenite_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut ws = tungstenite::accept_hdr(
            s,
            |_: &tungstenite::handshake::server::Request,
             mut res: tungstenite::handshake::server::Response| {
                res.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "echo.v1".parse().expect("header"));
                Ok(res)
            },
        )
        .expect("tungstenite handshake");
        loop {
            match ws.read() {
                Ok(m @ (TMessage::Text(_) | TMessage::Binary(_))) => ws.send(m).expect("echo"),
                Ok(TMessage::Close(_)) => {
                    let _ = ws.flush();
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("tungstenite server: {e}"),
            }
        }
    });
    let (tx, rx) = mpsc::channel();
    let client = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("client server");
    let cfg = ClientConfig {
        host: addr.to_string(),
        path: "/".into(),
        protocols: vec!["echo.v1".into()],
        ..ClientConfig::default()
    };
    let client = TestServer::start(client, move |_| {
        WsClient::new(
            Probe {
                tx: tx.clone(),
                big: common::pattern(300_000, 3),
                echoes: 0,
            },
            cfg.clone(),
        )
    });
    client
        .handle
        .dial(&format!("tcp://{addr}"), DialOptions::default())
        .expect("dial");
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !matches!(seen.last(), Some(Seen::Closed(..))) {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            rx.recv_timeout(left)
                .unwrap_or_else(|e| panic!("{e:?}; seen {seen:?}")),
        );
    }
    assert_eq!(
        seen[..4],
        [
            Seen::Open(Some("echo.v1".into())),
            Seen::Text("hello".into()),
            Seen::Binary(300_000),
            Seen::Text("κόσμε".into()),
        ]
    );
    assert!(
        matches!(seen[4], Seen::Closed(Some(1000), None)),
        "{seen:?}"
    );
    server.join().expect("tungstenite server thread");
    client.stop().expect("client stops");
}
