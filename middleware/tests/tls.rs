//! TLS through `translate` over real sockets on loopback: rustls and `openssl s_client`
//! clients against a wireloop TLS server (TLS 1.3 and 1.2, SNI, ALPN, resumption,
//! close_notify both ways, garbage and stalled handshakes, a 16 MiB transfer to a slow
//! reader with bounded server buffers), a plain and a TLS listener under one handler, and
//! a wireloop server dialing out through the TLS client layer (good and wrong CA).
//!
//! The handler under test (`Probe`) reports `opened`, `eof`, `closed` (and a dialed
//! connection's `data`) over a channel, and the tests wait on that channel and on sockets
//! with bounded timeouts. Every server is shut down and joined (and must not have
//! panicked); every `openssl` child is killed and reaped.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    drain, fnv1a, pattern, recv, recv_until, rss, ChildGuard, TempFile, TestServer, FNV_START,
    TIMEOUT,
};
use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion, RootCertStore, StreamOwned};
use wireloop::{
    Action, Conn, ConnId, Control, Datagram, Detached, DialOptions, Error, Handler, Loops, Server,
};
use wireloop_middleware::{translate, CertKey, TlsClient, TlsServer};

// ----- the handler under test ------------------------------------------------------------

/// What a `wireloop::Error` said.
#[derive(Clone, Debug)]
struct ErrInfo {
    layer: bool,
    msg: String,
}

impl ErrInfo {
    fn of(e: &Error) -> ErrInfo {
        ErrInfo {
            layer: e.is_layer(),
            msg: e.to_string(),
        }
    }
}

#[derive(Debug)]
enum Ev {
    /// `serving` dialed (only when the probe has a dial target).
    Dialed(Result<ConnId, String>),
    Opened {
        id: ConnId,
        addr_index: usize,
        dialed: bool,
    },
    /// Plaintext a dialed connection received.
    Data {
        id: ConnId,
        bytes: Vec<u8>,
    },
    Eof {
        id: ConnId,
    },
    Closed {
        id: ConnId,
        err: Option<ErrInfo>,
    },
}

impl Ev {
    fn id(&self) -> Option<ConnId> {
        match self {
            Ev::Dialed(r) => r.as_ref().ok().copied(),
            Ev::Opened { id, .. }
            | Ev::Data { id, .. }
            | Ev::Eof { id }
            | Ev::Closed { id, .. } => Some(*id),
        }
    }
}

/// What "bulk\n" makes the handler write before it closes: more than the TLS layer lets
/// queue on the wire at once.
const BULK_LEN: usize = 3 << 20;
const BULK_SEED: u64 = 9;

/// Echoes accepted connections ("quit\n" as the whole input instead makes it answer "bye"
/// and close, "bulk\n" [`BULK_LEN`] patterned bytes and close); a dialed connection writes "ping" when it opens and closes once 4 bytes
/// came back. Reports its callbacks and the most plaintext output it ever had queued.
#[derive(Clone)]
struct Probe {
    tx: Sender<Ev>,
    dial: Option<String>,
    max_out: Arc<AtomicUsize>,
}

impl Probe {
    fn new(tx: Sender<Ev>) -> Probe {
        Probe {
            tx,
            dial: None,
            max_out: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Handler for Probe {
    /// Bytes a dialed connection has received.
    type State = usize;

    fn serving(&mut self, ctl: &mut Control<'_, usize>) -> Action {
        if let Some(addr) = &self.dial {
            let res = ctl
                .dial(addr, DialOptions::new().timeout(TIMEOUT), 0)
                .map_err(|e| e.to_string());
            let _ = self.tx.send(Ev::Dialed(res));
        }
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, usize>) -> Action {
        let _ = self.tx.send(Ev::Opened {
            id: conn.id(),
            addr_index: conn.addr_index(),
            dialed: conn.is_dialed(),
        });
        if conn.is_dialed() {
            conn.write(b"ping");
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, usize>) -> Action {
        if conn.is_dialed() {
            let bytes = conn.input().to_vec();
            conn.consume(bytes.len());
            *conn.state += bytes.len();
            let _ = self.tx.send(Ev::Data {
                id: conn.id(),
                bytes,
            });
            return if *conn.state >= 4 {
                Action::Close
            } else {
                Action::None
            };
        }
        if conn.input() == b"quit\n" {
            conn.consume(5);
            conn.write(b"bye");
            return Action::Close;
        }
        if conn.input() == b"bulk\n" {
            conn.consume(5);
            conn.write(&pattern(BULK_LEN, BULK_SEED));
            return Action::Close;
        }
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        self.max_out.fetch_max(conn.output_len(), Ordering::Relaxed);
        Action::None
    }

    fn eof(&mut self, conn: &mut Conn<'_, usize>) -> Action {
        let _ = self.tx.send(Ev::Eof { id: conn.id() });
        Action::Close
    }

    fn post_write(&mut self, conn: &mut Conn<'_, usize>, _written: usize) {
        self.max_out.fetch_max(conn.output_len(), Ordering::Relaxed);
    }

    fn closed(&mut self, conn: &mut Conn<'_, usize>, err: Option<Error>) {
        let _ = self.tx.send(Ev::Closed {
            id: conn.id(),
            err: err.as_ref().map(ErrInfo::of),
        });
    }
}

/// Runs `inner` (the translate wrapper) unchanged and records the most wire output the
/// connection ever had queued after a callback: what the TLS layer left in the reactor.
struct Meter<H> {
    inner: H,
    max_wire: Arc<AtomicUsize>,
}

impl<H: Handler> Meter<H> {
    fn note(&self, n: usize) {
        self.max_wire.fetch_max(n, Ordering::Relaxed);
    }
}

impl<H: Handler> Handler for Meter<H> {
    type State = H::State;
    fn layers(&mut self, layers: &mut wireloop::layer::Layers<'_>) {
        self.inner.layers(layers)
    }
    fn serving(&mut self, ctl: &mut Control<'_, H::State>) -> Action {
        self.inner.serving(ctl)
    }
    fn opened(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let a = self.inner.opened(conn);
        self.note(conn.output_len());
        a
    }
    fn data(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let a = self.inner.data(conn);
        self.note(conn.output_len());
        a
    }
    fn eof(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let a = self.inner.eof(conn);
        self.note(conn.output_len());
        a
    }
    fn writable(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let a = self.inner.writable(conn);
        self.note(conn.output_len());
        a
    }
    fn woken(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let a = self.inner.woken(conn);
        self.note(conn.output_len());
        a
    }
    fn closed(&mut self, conn: &mut Conn<'_, H::State>, err: Option<Error>) {
        self.inner.closed(conn, err)
    }
    fn detached(&mut self, conn: &mut Conn<'_, H::State>, detached: Detached) {
        self.inner.detached(conn, detached)
    }
    fn datagram(&mut self, dgram: &mut Datagram<'_>) -> Action {
        self.inner.datagram(dgram)
    }
    fn pre_write(&mut self, conn: &mut Conn<'_, H::State>) {
        self.inner.pre_write(conn)
    }
    fn post_write(&mut self, conn: &mut Conn<'_, H::State>, written: usize) {
        self.inner.post_write(conn, written);
        self.note(conn.output_len());
    }
    fn tick(&mut self, ctl: &mut Control<'_, H::State>) -> (Option<Duration>, Action) {
        self.inner.tick(ctl)
    }
}

// ----- servers -----------------------------------------------------------------------------

/// A server with one TLS listener (index 0) running `Probe` under `tls`.
fn start_tls(tls: TlsServer) -> (TestServer, Receiver<Ev>) {
    let server = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("build server");
    let (tx, rx) = mpsc::channel();
    let probe = Probe::new(tx);
    let ts = TestServer::start(server, move |_| {
        translate(probe.clone(), |c| c.addr_index == 0, tls.clone())
    });
    (ts, rx)
}

/// Stops the server, which must not have failed or panicked.
#[track_caller]
fn stop(server: TestServer) {
    if let Err(e) = server.stop() {
        panic!("server: {e}");
    }
}

// ----- rustls clients ----------------------------------------------------------------------

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    wireloop_middleware::tls::crypto_provider()
}

/// A root store trusting the certificates in `pems`.
fn roots(pems: &[&[u8]]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    for pem in pems {
        for c in CertificateDer::pem_slice_iter(pem) {
            store.add(c.expect("PEM")).expect("trust anchor");
        }
    }
    store
}

fn client_config(
    roots: RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Connects and completes the handshake (or returns what failed).
fn try_tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>, name: &str) -> io::Result<Tls> {
    let sock = tcp_connect(addr);
    let name = ServerName::try_from(name.to_string()).expect("server name");
    let conn = ClientConnection::new(cfg.clone(), name).expect("client connection");
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

#[track_caller]
fn tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>, name: &str) -> Tls {
    try_tls_connect(addr, cfg, name).unwrap_or_else(|e| panic!("TLS handshake ({name}): {e}"))
}

/// Writes `msg` and reads the same bytes back.
#[track_caller]
fn echo(s: &mut Tls, msg: &[u8]) {
    s.write_all(msg).expect("write");
    s.flush().expect("flush");
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).expect("read the echo");
    assert!(got == msg, "echo differs ({} bytes)", msg.len());
}

/// The next read is a clean TLS end (close_notify), not a truncation or data.
#[track_caller]
fn expect_clean_close(s: &mut Tls) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("expected close_notify, got {n} bytes: {:?}", &b[..n]),
        Err(e) => panic!("expected close_notify, got error {e} ({:?})", e.kind()),
    }
}

/// Sends close_notify and expects the server's close_notify back.
#[track_caller]
fn close_cleanly(mut s: Tls) {
    s.conn.send_close_notify();
    s.flush().expect("flush close_notify");
    expect_clean_close(&mut s);
}

/// The first `opened` in `rx`: its id and listener index.
#[track_caller]
fn wait_opened(rx: &Receiver<Ev>) -> (ConnId, usize) {
    wait_opened_seen(rx).0
}

/// Like [`wait_opened`], also returning every event received until then (itself included).
#[track_caller]
fn wait_opened_seen(rx: &Receiver<Ev>) -> ((ConnId, usize), Vec<Ev>) {
    recv_until(rx, TIMEOUT, "opened", |e| match e {
        Ev::Opened { id, addr_index, .. } => Some((*id, *addr_index)),
        _ => None,
    })
}

/// Waits for connection `id`'s `closed` and returns its error.
#[track_caller]
fn wait_closed(rx: &Receiver<Ev>, id: ConnId) -> (Option<ErrInfo>, Vec<Ev>) {
    recv_until(rx, TIMEOUT, "closed", |e| match e {
        Ev::Closed { id: i, err } if *i == id => Some(err.clone()),
        _ => None,
    })
}

fn localhost_cert() -> CertKey {
    CertKey::self_signed(&["localhost".to_string()]).expect("self-signed certificate")
}

// ----- 1. rustls client, TLS 1.3 and 1.2 ------------------------------------------------

#[test]
fn rustls_client_echoes_over_tls13_and_tls12() {
    let cert = localhost_cert();
    let (server, rx) = start_tls(TlsServer::builder(cert.clone()).build().unwrap());
    let addr = server.tcp_addr(0);
    let big = pattern(200_000, 1);
    for (version, want) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let cfg = client_config(roots(&[cert.leaf_pem().as_bytes()]), &[version], &[]);
        let mut s = tls_connect(addr, &cfg, "localhost");
        assert_eq!(s.conn.protocol_version(), Some(want));
        let (id, _) = wait_opened(&rx);
        echo(&mut s, b"hello over TLS\n");
        echo(&mut s, &big);
        close_cleanly(s);
        let (err, seen) = wait_closed(&rx, id);
        assert!(err.is_none(), "{want:?}: closed with {err:?}");
        assert!(
            seen.iter()
                .any(|e| matches!(e, Ev::Eof { id: i } if *i == id)),
            "{want:?}: no eof before closed: {seen:?}"
        );
    }
    stop(server);
}

// ----- 2. openssl s_client ---------------------------------------------------------------

/// Runs `openssl s_client` against `port`, sends a line, reads the echo, closes stdin.
fn s_client_round_trip(port: u16, cafile: &TempFile, version_flag: &str) {
    let spawned = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost", "-CAfile"])
        .arg(cafile.path())
        // -quiet implies -ign_eof, which would keep s_client running after stdin closes:
        // -no_ign_eof (after it) makes the end of stdin end the session (close_notify).
        .args([
            "-verify_return_error",
            "-quiet",
            "-no_ign_eof",
            version_flag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run `openssl` ({e}): the openssl command-line tool must be on PATH for \
             this test (apt-get install openssl)"
        ),
    };
    let mut guard = ChildGuard(Some(child));
    let mut stdout = guard.child().stdout.take().unwrap();
    let mut stderr = guard.child().stderr.take().unwrap();
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
    let out_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || out_tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = io::BufReader::new(&mut stderr).read_to_string(&mut s);
        s
    });
    let line = format!("hello from openssl {version_flag}\n");
    let mut stdin = guard.child().stdin.take().unwrap();
    stdin.write_all(line.as_bytes()).expect("write to s_client");
    stdin.flush().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    while got.len() < line.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match out_rx.recv_timeout(left) {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(e) => {
                drop(stdin);
                let _ = guard.wait_timeout(Duration::from_secs(2));
                let stderr = err_thread.join().unwrap_or_default();
                panic!(
                    "s_client {version_flag}: no echo ({e:?}); stdout so far {:?}; stderr:\n{stderr}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), line, "{version_flag}: echo");
    drop(stdin);
    let status = guard.wait_timeout(TIMEOUT);
    let _ = out_thread.join();
    let stderr = err_thread.join().unwrap_or_default();
    match status {
        Ok(st) => assert!(
            st.success(),
            "s_client {version_flag} exited with {st}; stderr:\n{stderr}"
        ),
        Err(e) => panic!("s_client {version_flag}: {e}; stderr:\n{stderr}"),
    }
}

#[test]
fn openssl_s_client_echoes_over_tls13_and_tls12() {
    let cert = localhost_cert();
    let cafile = TempFile::with_contents("ca", cert.leaf_pem().as_bytes());
    let (server, rx) = start_tls(TlsServer::builder(cert).build().unwrap());
    let port = server.tcp_addr(0).port();
    for flag in ["-tls1_3", "-tls1_2"] {
        s_client_round_trip(port, &cafile, flag);
        let (id, _) = wait_opened(&rx);
        // The end of stdin sent close_notify: the handler saw eof, then the close.
        let (err, seen) = wait_closed(&rx, id);
        assert!(
            seen.iter()
                .any(|e| matches!(e, Ev::Eof { id: i } if *i == id)),
            "{flag}: no eof before closed: {seen:?}"
        );
        assert!(
            err.as_ref().is_none_or(|e| !e.layer),
            "{flag}: closed with a layer error: {err:?}"
        );
    }
    stop(server);
}

// ----- 3. SNI ------------------------------------------------------------------------------

#[test]
fn sni_selects_the_certificate() {
    let default = CertKey::self_signed(&[
        "default.test".to_string(),
        "other.test".to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    let a = CertKey::self_signed(&["a.test".to_string()]).unwrap();
    let tls = TlsServer::builder(default.clone())
        .sni_cert("a.test", a.clone())
        .build()
        .unwrap();
    let (server, _rx) = start_tls(tls);
    let addr = server.tcp_addr(0);
    let cfg = client_config(
        roots(&[default.leaf_pem().as_bytes(), a.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );
    // "other.test" is not in the SNI table; an IP address sends no SNI at all.
    for (name, want, what) in [
        ("a.test", &a, "certificate A"),
        ("default.test", &default, "the default certificate"),
        ("other.test", &default, "the default certificate"),
        ("127.0.0.1", &default, "the default certificate"),
    ] {
        let mut s = tls_connect(addr, &cfg, name);
        let leaf = s.conn.peer_certificates().expect("peer certificates")[0].clone();
        assert!(
            leaf.as_ref() == want.leaf_der(),
            "SNI {name}: the server did not present {what}"
        );
        echo(&mut s, name.as_bytes());
        close_cleanly(s);
    }
    stop(server);
}

// ----- 4. ALPN -----------------------------------------------------------------------------

#[test]
fn alpn_negotiates_by_server_preference() {
    let cert = localhost_cert();
    let tls = TlsServer::builder(cert.clone())
        .alpn(&[b"foo", b"bar"])
        .build()
        .unwrap();
    let (server, rx) = start_tls(tls);
    let addr = server.tcp_addr(0);
    let root = cert.leaf_pem();
    type Offer<'a> = (&'a [&'a [u8]], Option<&'a [u8]>);
    let offers: [Offer; 3] = [
        (&[b"bar"], Some(b"bar")),
        (&[b"bar", b"foo"], Some(b"foo")),
        (&[], None),
    ];
    for (offer, want) in offers {
        let cfg = client_config(roots(&[root.as_bytes()]), rustls::DEFAULT_VERSIONS, offer);
        let mut s = tls_connect(addr, &cfg, "localhost");
        assert_eq!(s.conn.alpn_protocol(), want, "client offered {offer:?}");
        echo(&mut s, b"alpn");
        close_cleanly(s);
    }
    // No protocol in common: the server refuses the handshake with an alert.
    let cfg = client_config(
        roots(&[root.as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[b"baz"],
    );
    let err = match try_tls_connect(addr, &cfg, "localhost") {
        Ok(_) => panic!("handshake with no ALPN protocol in common succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.to_lowercase().contains("application") || err.contains("NoApplicationProtocol"),
        "unexpected error: {err}"
    );
    // Three connections opened and closed; the refused one never reached the handler.
    stop(server);
    let opened = drain(&rx)
        .into_iter()
        .filter(|e| matches!(e, Ev::Opened { .. }))
        .count();
    assert_eq!(opened, 3);
}

// ----- 5. resumption -----------------------------------------------------------------------

#[test]
fn resumption_on_and_off() {
    let cert = localhost_cert();
    for on in [true, false] {
        let tls = TlsServer::builder(cert.clone())
            .resumption(on)
            .build()
            .unwrap();
        let (server, _rx) = start_tls(tls);
        let addr = server.tcp_addr(0);
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let cfg = client_config(roots(&[cert.leaf_pem().as_bytes()]), &[version], &[]);
            let mut first = tls_connect(addr, &cfg, "localhost");
            assert_eq!(first.conn.handshake_kind(), Some(HandshakeKind::Full));
            // The echo also carries the TLS 1.3 tickets to the client.
            echo(&mut first, b"first");
            close_cleanly(first);
            let mut second = tls_connect(addr, &cfg, "localhost");
            let want = if on {
                HandshakeKind::Resumed
            } else {
                HandshakeKind::Full
            };
            assert_eq!(
                second.conn.handshake_kind(),
                Some(want),
                "resumption {on}, {:?}",
                version.version
            );
            echo(&mut second, b"second");
            close_cleanly(second);
        }
        stop(server);
    }
}

// ----- 6. 16 MiB both ways, slow reader ----------------------------------------------------

/// The client side of a full-duplex transfer: one rustls connection shared by a writer
/// thread and a reader thread, each doing its socket I/O outside the lock.
struct Duplex {
    conn: Mutex<ClientConnection>,
}

impl Duplex {
    /// Encrypts all of `data` and sends it.
    fn send_all(&self, sock: &mut TcpStream, data: &[u8]) {
        let mut off = 0;
        let mut wire = Vec::with_capacity(80 * 1024);
        while off < data.len() {
            {
                let mut c = self.conn.lock().unwrap();
                let end = (off + 64 * 1024).min(data.len());
                off += c.writer().write(&data[off..end]).expect("encrypt");
                while c.wants_write() {
                    c.write_tls(&mut wire).expect("write_tls");
                }
            }
            sock.write_all(&wire).expect("send");
            wire.clear();
        }
    }

    /// Sends whatever rustls has queued (close_notify).
    fn flush(&self, sock: &mut TcpStream) {
        let mut wire = Vec::new();
        {
            let mut c = self.conn.lock().unwrap();
            while c.wants_write() {
                c.write_tls(&mut wire).expect("write_tls");
            }
        }
        sock.write_all(&wire).expect("send");
    }

    /// Reads plaintext slowly (16 KiB at a time, hashing it, with a short pause after each
    /// read) until `want` bytes came or, with `want == None`, until a clean close_notify.
    /// Returns the bytes read and their hash.
    fn read_slowly(&self, sock: &mut TcpStream, want: Option<usize>) -> (usize, u64) {
        let mut got = 0;
        let mut h = FNV_START;
        let mut buf = vec![0u8; 16 * 1024];
        let mut wire = vec![0u8; 64 * 1024];
        let (mut woff, mut wlen) = (0, 0);
        loop {
            if want == Some(got) {
                return (got, h);
            }
            let room = want.map_or(buf.len(), |w| (w - got).min(buf.len()));
            let r = self.conn.lock().unwrap().reader().read(&mut buf[..room]);
            match r {
                Ok(0) => {
                    assert!(want.is_none(), "close_notify after {got} of {want:?} bytes");
                    return (got, h);
                }
                Ok(n) => {
                    h = fnv1a(h, &buf[..n]);
                    got += n;
                    // Pacing, not synchronisation: this reader is meant to be slow.
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading plaintext after {got} bytes: {e}"),
            }
            if woff < wlen {
                let mut c = self.conn.lock().unwrap();
                let mut rd = &wire[woff..wlen];
                let n = c.read_tls(&mut rd).expect("read_tls");
                woff += n;
                c.process_new_packets().expect("TLS from the server");
                continue;
            }
            let n = match sock.read(&mut wire) {
                Ok(n) => n,
                Err(e) => panic!("socket read after {got} bytes: {e}"),
            };
            assert!(n > 0, "TCP EOF without close_notify after {got} bytes");
            (woff, wlen) = (0, n);
        }
    }
}

#[test]
fn sixteen_mib_both_ways_to_a_slow_reader_with_bounded_buffers() {
    const LEN: usize = 16 << 20;
    let cert = localhost_cert();
    let tls = TlsServer::builder(cert.clone()).build().unwrap();
    let server = Server::builder()
        .loops(Loops::from_count(1))
        // Small kernel buffers: the backlog has to be held (or refused) by the server.
        .send_buffer_size(64 * 1024)
        .recv_buffer_size(64 * 1024)
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("build server");
    let (tx, rx) = mpsc::channel();
    let probe = Probe::new(tx);
    let max_plain = probe.max_out.clone();
    let max_wire = Arc::new(AtomicUsize::new(0));
    let meter_max = max_wire.clone();
    let server = TestServer::start(server, move |_| Meter {
        inner: translate(probe.clone(), |c| c.addr_index == 0, tls.clone()),
        max_wire: meter_max.clone(),
    });
    let addr = server.tcp_addr(0);

    let data = Arc::new(pattern(LEN, 6));
    let want_hash = fnv1a(FNV_START, &data);
    let (rss0, hwm0) = rss();
    let started = Instant::now();

    let sock = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(64 * 1024).unwrap();
        s.set_send_buffer_size(64 * 1024).unwrap();
        s.connect(&addr.into()).expect("connect");
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        s
    };
    let cfg = client_config(
        roots(&[cert.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );
    let mut conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut hs_sock = sock.try_clone().unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut hs_sock).expect("handshake");
    }
    let duplex = Arc::new(Duplex {
        conn: Mutex::new(conn),
    });
    let writer = {
        let duplex = duplex.clone();
        let data = data.clone();
        let mut sock = sock.try_clone().unwrap();
        std::thread::spawn(move || duplex.send_all(&mut sock, &data))
    };
    let mut rsock = sock.try_clone().unwrap();
    let (got, hash) = duplex.read_slowly(&mut rsock, Some(LEN));
    writer.join().expect("writer thread");
    assert_eq!(got, LEN);
    assert_eq!(hash, want_hash, "the echo differs from what was sent");
    // Then close_notify both ways.
    duplex.conn.lock().unwrap().send_close_notify();
    duplex.flush(&mut rsock);
    let (extra, _) = duplex.read_slowly(&mut rsock, None);
    assert_eq!(extra, 0, "bytes after the echo");
    let elapsed = started.elapsed();
    let (rss1, hwm1) = rss();
    let (id, _) = wait_opened(&rx);
    let (err, _) = wait_closed(&rx, id);
    assert!(err.is_none(), "closed with {err:?}");
    stop(server);

    let plain = max_plain.load(Ordering::Relaxed);
    let wire = max_wire.load(Ordering::Relaxed);
    eprintln!(
        "16 MiB each way in {elapsed:?}: most plaintext queued above the layer {plain} B, \
         most wire output queued {wire} B; VmRSS {} -> {} MiB, VmHWM {} -> {} MiB",
        rss0 >> 20,
        rss1 >> 20,
        hwm0 >> 20,
        hwm1 >> 20
    );
    // The reactor's high-water mark is 1 MiB; each queue may overshoot it by a read's worth
    // and a step's encoding, but not by megabytes.
    assert!(
        plain <= 2 << 20,
        "the handler's plaintext output queue reached {plain} bytes"
    );
    assert!(
        wire <= 3 << 20,
        "the wire output queue reached {wire} bytes"
    );
    assert!(
        hwm1.saturating_sub(hwm0) < 64 << 20,
        "peak RSS grew by {} MiB",
        hwm1.saturating_sub(hwm0) >> 20
    );
}

// ----- 7. close_notify both ways -----------------------------------------------------------

#[test]
fn close_notify_both_ways() {
    let cert = localhost_cert();
    let (server, rx) = start_tls(TlsServer::builder(cert.clone()).build().unwrap());
    let addr = server.tcp_addr(0);
    let cfg = client_config(
        roots(&[cert.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );

    // Client first: close_notify reaches the handler as eof; the server answers in kind.
    let mut s = tls_connect(addr, &cfg, "localhost");
    let (id, _) = wait_opened(&rx);
    echo(&mut s, b"before close\n");
    s.conn.send_close_notify();
    s.flush().unwrap();
    let (_, seen) = recv_until(&rx, TIMEOUT, "eof", |e| match e {
        Ev::Eof { id: i } if *i == id => Some(()),
        _ => None,
    });
    assert!(
        seen.iter().all(|e| !matches!(e, Ev::Closed { .. })),
        "{seen:?}"
    );
    expect_clean_close(&mut s);
    // And then the TCP connection ends too.
    let mut b = [0u8; 16];
    assert_eq!(s.sock.read(&mut b).expect("TCP EOF"), 0);
    let (err, _) = wait_closed(&rx, id);
    assert!(err.is_none(), "closed with {err:?}");

    // Server first: the handler writes "bye" and returns Action::Close.
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let cfg = client_config(roots(&[cert.leaf_pem().as_bytes()]), &[version], &[]);
        let mut s = tls_connect(addr, &cfg, "localhost");
        let (id, _) = wait_opened(&rx);
        s.write_all(b"quit\n").unwrap();
        s.flush().unwrap();
        let mut got = Vec::new();
        // read_to_end is Ok only for a clean close (UnexpectedEof otherwise).
        if let Err(e) = s.read_to_end(&mut got) {
            panic!(
                "{:?}: after {:?}: {e} ({:?})",
                version.version,
                String::from_utf8_lossy(&got),
                e.kind()
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            "bye",
            "{:?}: the last words",
            version.version
        );
        let (err, _) = wait_closed(&rx, id);
        assert!(err.is_none(), "closed with {err:?}");
    }

    // Server first after a write larger than the wire queue's limit: all of it arrives
    // before the close_notify.
    let mut s = tls_connect(addr, &cfg, "localhost");
    let (id, _) = wait_opened(&rx);
    s.write_all(b"bulk\n").unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        panic!("bulk: after {} bytes: {e} ({:?})", got.len(), e.kind());
    }
    assert_eq!(got.len(), BULK_LEN, "bulk: bytes before close_notify");
    assert!(
        got == pattern(BULK_LEN, BULK_SEED),
        "bulk: the bytes differ"
    );
    let (err, _) = wait_closed(&rx, id);
    assert!(err.is_none(), "closed with {err:?}");
    stop(server);
}

// ----- 8. garbage and truncated handshakes -------------------------------------------------

/// The first bytes a rustls client sends (its ClientHello record).
fn client_hello(cfg: &Arc<ClientConfig>) -> Vec<u8> {
    let mut c =
        ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut v = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut v).unwrap();
    }
    assert!(v.len() > 40, "ClientHello of {} bytes", v.len());
    v
}

/// Reads until EOF; the connection must end (with or without an alert), not hang or reset.
#[track_caller]
fn read_until_closed(sock: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    if let Err(e) = sock.read_to_end(&mut got) {
        panic!("{what}: {e} after {} bytes", got.len());
    }
    got
}

#[test]
fn garbage_and_truncated_client_hello_are_dropped_without_the_handler() {
    let cert = localhost_cert();
    let (server, rx) = start_tls(TlsServer::builder(cert.clone()).build().unwrap());
    let addr = server.tcp_addr(0);
    let cfg = client_config(
        roots(&[cert.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );

    // Plaintext HTTP on the TLS port: an alert (or nothing), then the end.
    let mut g = tcp_connect(addr);
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut g, "plaintext HTTP");
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "answer to plaintext HTTP is not an alert: {answer:?}"
    );

    // Twenty bytes of a real ClientHello, then the client's end.
    let hello = client_hello(&cfg);
    let mut t = tcp_connect(addr);
    t.write_all(&hello[..20]).unwrap();
    t.shutdown(Shutdown::Write).unwrap();
    let answer = read_until_closed(&mut t, "truncated ClientHello");
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");

    // A record header announcing a record too long for TLS.
    let mut h = tcp_connect(addr);
    h.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x02])
        .unwrap();
    let answer = read_until_closed(&mut h, "oversized record");
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");

    // The server still serves, and only this connection reached the handler.
    let mut s = tls_connect(addr, &cfg, "localhost");
    echo(&mut s, b"still here\n");
    close_cleanly(s);
    let ((id, _), before) = wait_opened_seen(&rx);
    assert!(
        before.len() == 1,
        "callbacks for the failed connections: {before:?}"
    );
    let (err, _) = wait_closed(&rx, id);
    assert!(err.is_none(), "closed with {err:?}");
    stop(server);
    let rest: Vec<Ev> = drain(&rx);
    assert!(
        rest.iter().all(|e| e.id() == Some(id)),
        "callbacks for the failed connections: {rest:?}"
    );
}

// ----- 9. handshake timeout ----------------------------------------------------------------

#[test]
fn stalled_handshakes_time_out() {
    let cert = localhost_cert();
    let tls = TlsServer::builder(cert.clone())
        .handshake_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let (server, rx) = start_tls(tls);
    let addr = server.tcp_addr(0);
    let cfg = client_config(
        roots(&[cert.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );
    let hello = client_hello(&cfg);

    let started = Instant::now();
    let mut silent = tcp_connect(addr);
    let mut half = tcp_connect(addr);
    half.write_all(&hello[..hello.len() / 2]).unwrap();
    // A finished handshake gets the server's idle timeout (none) back, so it outlives them.
    let mut done = tls_connect(addr, &cfg, "localhost");

    let half_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        let r = half.read_to_end(&mut b);
        (r.map_err(|e| e.to_string()), b, started.elapsed())
    });
    let mut b = Vec::new();
    let r = silent.read_to_end(&mut b);
    let silent_after = started.elapsed();
    let (half_r, half_b, half_after) = half_thread.join().unwrap();
    eprintln!("stalled handshakes closed after {silent_after:?} (silent), {half_after:?} (half)");
    for (what, r, bytes, after) in [
        ("silent", r.map_err(|e| e.to_string()), b, silent_after),
        ("half a ClientHello", half_r, half_b, half_after),
    ] {
        assert!(r.is_ok(), "{what}: {r:?}");
        assert!(bytes.is_empty(), "{what}: got {bytes:?}");
        assert!(
            after >= Duration::from_millis(250) && after < Duration::from_millis(1500),
            "{what}: closed after {after:?} (timeout 300 ms)"
        );
    }
    // Past the handshake timeout, the finished connection still echoes.
    assert!(started.elapsed() > Duration::from_millis(300));
    echo(&mut done, b"after the timeout\n");
    close_cleanly(done);
    let ((id, _), before) = wait_opened_seen(&rx);
    assert!(before.len() == 1, "{before:?}");
    let (err, _) = wait_closed(&rx, id);
    assert!(err.is_none(), "closed with {err:?}");
    stop(server);
    let rest = drain(&rx);
    assert!(rest.iter().all(|e| e.id() == Some(id)), "{rest:?}");
}

// ----- 10. a plain and a TLS listener under one handler ------------------------------------

#[test]
fn plain_and_tls_listeners_share_a_handler() {
    let cert = localhost_cert();
    let tls = TlsServer::builder(cert.clone()).build().unwrap();
    let server = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.listen("tcp://127.0.0.1:0"))
        .and_then(|b| b.build())
        .expect("build server");
    let (tx, rx) = mpsc::channel();
    let probe = Probe::new(tx);
    let server = TestServer::start(server, move |_| {
        translate(probe.clone(), |c| c.addr_index == 1, tls.clone())
    });

    let mut plain = tcp_connect(server.tcp_addr(0));
    plain.write_all(b"plain\n").unwrap();
    let mut line = String::new();
    io::BufReader::new(&mut plain).read_line(&mut line).unwrap();
    assert_eq!(line, "plain\n");
    let (plain_id, plain_index) = wait_opened(&rx);
    assert_eq!(plain_index, 0);

    let cfg = client_config(
        roots(&[cert.leaf_pem().as_bytes()]),
        rustls::DEFAULT_VERSIONS,
        &[],
    );
    let mut s = tls_connect(server.tcp_addr(1), &cfg, "localhost");
    echo(&mut s, b"secret\n");
    let (tls_id, tls_index) = wait_opened(&rx);
    assert_eq!(tls_index, 1);
    close_cleanly(s);
    let (err, _) = wait_closed(&rx, tls_id);
    assert!(err.is_none(), "TLS connection closed with {err:?}");

    plain.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    plain.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let (err, _) = wait_closed(&rx, plain_id);
    assert!(err.is_none(), "plain connection closed with {err:?}");
    stop(server);
}

// ----- 11. dialing out through the TLS client layer ----------------------------------------

/// A test CA named `name`, and a leaf for `localhost` it signed.
fn ca_and_leaf(name: &str) -> (String, CertKey) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ck = CertKey::from_pem(leaf.pem().as_bytes(), leaf_key.serialize_pem().as_bytes())
        .expect("leaf CertKey");
    (ca.pem(), ck)
}

/// Server B: dials `target` from `serving` through the TLS client layer trusting `ca_pem`.
fn start_dialer(target: SocketAddr, ca_pem: &str) -> (TestServer, Receiver<Ev>) {
    let client = TlsClient::builder()
        .server_name("localhost")
        .root_ca_pem(ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let server = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("build server");
    let (tx, rx) = mpsc::channel();
    let mut probe = Probe::new(tx);
    probe.dial = Some(format!("tcp://{target}"));
    let ts = TestServer::start(server, move |_| {
        translate(probe.clone(), |c| c.dialed, client.clone())
    });
    (ts, rx)
}

#[test]
fn dialed_tls_verifies_the_server() {
    let (ca_pem, leaf) = ca_and_leaf("wireloop test CA");
    let (a, a_rx) = start_tls(TlsServer::builder(leaf).build().unwrap());
    let a_addr = a.tcp_addr(0);

    // Trusting the CA that signed A's certificate: opened after the handshake, ping, echo.
    let (b, b_rx) = start_dialer(a_addr, &ca_pem);
    let id = match recv(&b_rx, TIMEOUT, "dial") {
        Ev::Dialed(Ok(id)) => id,
        other => panic!("dial: {other:?}"),
    };
    match recv(&b_rx, TIMEOUT, "opened") {
        Ev::Opened {
            id: i,
            dialed: true,
            addr_index,
        } if i == id => assert_eq!(addr_index, usize::MAX),
        other => panic!("expected opened of {id}, got {other:?}"),
    }
    let (err, seen) = wait_closed(&b_rx, id);
    let echoed: Vec<u8> = seen
        .iter()
        .filter_map(|e| match e {
            Ev::Data { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(echoed, b"ping");
    assert!(err.is_none(), "dialed connection closed with {err:?}");
    stop(b);
    // A saw the connection open, then B's close_notify as eof.
    let (a_id, _) = wait_opened(&a_rx);
    let (err, seen) = wait_closed(&a_rx, a_id);
    assert!(err.is_none(), "A: closed with {err:?}");
    assert!(
        seen.iter().any(|e| matches!(e, Ev::Eof { .. })),
        "A: no eof: {seen:?}"
    );

    // Trusting another CA: verification fails, `opened` never fires, `closed` says why.
    let (other_ca, _) = ca_and_leaf("another test CA");
    let (b, b_rx) = start_dialer(a_addr, &other_ca);
    let id = match recv(&b_rx, TIMEOUT, "dial") {
        Ev::Dialed(Ok(id)) => id,
        other => panic!("dial: {other:?}"),
    };
    let err = match recv(&b_rx, TIMEOUT, "closed") {
        Ev::Closed { id: i, err } if i == id => err,
        other => panic!("expected closed of {id} (and no opened), got {other:?}"),
    };
    let err = err.expect("closed without an error after a failed verification");
    eprintln!("failed verification reported as: {}", err.msg);
    assert!(err.layer, "not a layer error: {err:?}");
    assert!(
        err.msg.to_lowercase().contains("certificate"),
        "the error does not mention the certificate: {}",
        err.msg
    );
    stop(b);
    assert!(drain(&b_rx).is_empty());
    stop(a);
    // A's handler never saw the refused handshake.
    let rest = drain(&a_rx);
    assert!(rest.is_empty(), "A: {rest:?}");
}
