//! Every byte through TLS layers arrives, in process, over loopback:
//!
//! * Two TLS hops through one loop: a client speaks TLS to a relay that terminates it
//!   (`translate(.., TlsServer)` on accepted connections) and re-encrypts towards a TLS echo
//!   server it dials (`translate(.., TlsClient)` on dialed connections), handing bytes from
//!   one side to the other as plaintext, which the reactor encodes with the receiving
//!   side's own layer. Once with everything passed on at once with `Conn::forward` (as
//!   `examples/tcp-proxy.rs` does), once with a relay that lets at most 64 KiB wait for each
//!   side (`Control::write`) and leaves the rest of its input unconsumed until that side has
//!   drained and wakes it: it then consumes its input from `woken`. The relay keeps what it
//!   knows about a connection in the connection's own state (`Conn::state`).
//! * On a plain and a TLS listener (the same bytes must come back on both): an echo whose
//!   reads (a 1 MiB read buffer) bring more wire bytes than the session decodes at once, and
//!   handlers that consume input outside `data` (only when woken; in `post_write` as their
//!   output drains).
//!
//! The TLS session stops taking wire bytes while the handler leaves 256 KiB of decoded
//! input unconsumed; the rest waits in the reactor's input. Those bytes must be offered
//! again once the handler consumes, whichever callback it consumes in: a peer that has sent
//! everything sends nothing more that would bring them up, and the transfer would stall with
//! its tail undecoded.
//!
//! The transfers have random lengths (so the last TLS record is a partial one) and random
//! write sizes, two clients run at once, and some read slowly so both hops' backpressure
//! engages. The client is one rustls connection per transfer shared by a writer thread and a
//! reader thread that do their socket I/O outside the connection's lock. (A client that
//! drives one OpenSSL object from two threads without a lock, as a Python `ssl` socket with
//! `sendall` in one thread and `recv` in another does, races inside OpenSSL when the
//! server's session tickets arrive during a write: it can drop its own last record, which
//! looks exactly like a server that lost the tail.)
//!
//! Every wait is bounded; every server is shut down and joined.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{pattern, TestServer, TIMEOUT};
use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use wireloop::{Action, Builder, Conn, ConnId, DialOptions, Error, Handler, Loops, Server};
use wireloop_middleware::{translate, CertKey, TlsClient, TlsServer};

/// How long the echo may go quiet before a transfer counts as stalled.
const STALL: Duration = Duration::from_secs(5);

// ----- the upstream --------------------------------------------------------------------------

/// Echoes everything at once.
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

// ----- the relay -----------------------------------------------------------------------------

/// One side of a relayed pair: everything the relay knows about a connection lives here.
#[derive(Default)]
struct Side {
    peer: Option<ConnId>,
    /// This side's peer finished sending: end the other side once the input is passed on.
    eof: bool,
}

/// The relay: each accepted connection dials the upstream and the two are linked; what one
/// side decodes is written to the other, whose own layer encodes it.
struct Relay {
    upstream: String,
    /// Most bytes queued for a side at once: input beyond it stays unconsumed (in the
    /// reactor) until that side drains and wakes the producer. `None` passes everything on
    /// at once with `Conn::forward` (as `examples/tcp-proxy.rs` does).
    limit: Option<usize>,
}

impl Relay {
    /// Passes this side's input on to its peer (as much as the limit lets through; the rest
    /// waits, unconsumed), and the end once all of it went.
    fn pull(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let Some(to) = conn.state.peer else {
            return Action::Close;
        };
        match self.limit {
            None => {
                if !conn.forward(to) {
                    return Action::Close;
                }
            }
            Some(limit) => {
                let Some(queued) = conn.control().output_len(to) else {
                    return Action::Close;
                };
                let n = conn.input().len().min(limit.saturating_sub(queued));
                if n > 0 {
                    let chunk = conn.input()[..n].to_vec();
                    conn.control().write(to, &chunk);
                    conn.consume(n);
                }
            }
        }
        if conn.state.eof && conn.input().is_empty() {
            conn.state.eof = false;
            // Closes the peer once what it has queued is written.
            conn.control().close(to);
        }
        Action::None
    }

    /// This side's output drained some: its producer, the peer, may pass more on.
    fn drained(&mut self, conn: &mut Conn<'_, Side>) {
        if let (Some(_), Some(peer)) = (self.limit, conn.state.peer) {
            conn.control().wake(peer);
        }
    }
}

impl Handler for Relay {
    type State = Side;

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        if conn.is_dialed() {
            return Action::None;
        }
        let state = Side {
            peer: Some(conn.id()),
            eof: false,
        };
        let opts = DialOptions::new().timeout(TIMEOUT);
        match conn.dial(&self.upstream, opts, state) {
            Ok(up) => {
                conn.state.peer = Some(up);
                conn.link(up);
                Action::None
            }
            Err(_) => Action::Close,
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        self.pull(conn)
    }

    fn eof(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        conn.state.eof = true;
        self.pull(conn)
    }

    fn woken(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        // The peer drained: consume the input that waited (after the TLS session stopped
        // decoding for it, so the wire bytes behind must be decoded now).
        self.pull(conn)
    }

    fn writable(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        self.drained(conn);
        Action::None
    }

    fn post_write(&mut self, conn: &mut Conn<'_, Side>, _written: usize) {
        self.drained(conn);
    }

    fn closed(&mut self, conn: &mut Conn<'_, Side>, _err: Option<Error>) {
        if let Some(peer) = conn.state.peer.take() {
            conn.control().close(peer);
        }
    }
}

// ----- servers -------------------------------------------------------------------------------

fn localhost_cert() -> CertKey {
    CertKey::self_signed(&["localhost".to_string()]).expect("self-signed certificate")
}

/// One loop listening on `listeners` loopback ports.
fn server(listeners: usize) -> Server {
    server_with(Server::builder(), listeners)
}

fn server_with(builder: Builder, listeners: usize) -> Server {
    let mut b = builder.loops(Loops::from_count(1));
    for _ in 0..listeners {
        b = b.listen("tcp://127.0.0.1:0").expect("listen");
    }
    b.build().expect("build server")
}

/// The TLS echo server (what `examples/tls-echo.rs` runs on its TLS port).
fn start_echo(cert: &CertKey) -> TestServer {
    let tls = TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server");
    TestServer::start(server(1), move |_| {
        translate(Echo, |c| c.addr_index == 0, tls.clone())
    })
}

/// The relay, terminating TLS with `cert` and originating TLS to `upstream` (verified
/// against `upstream_cert`).
fn start_relay(
    cert: &CertKey,
    upstream: SocketAddr,
    upstream_cert: &CertKey,
    limit: Option<usize>,
) -> TestServer {
    let server_tls = TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server");
    let client_tls = TlsClient::builder()
        .server_name("localhost")
        .root_ca_pem(upstream_cert.leaf_pem().as_bytes())
        .expect("CA")
        .build()
        .expect("TLS client");
    let upstream = format!("tcp://{upstream}");
    TestServer::start(server(1), move |_| {
        let relay = Relay {
            upstream: upstream.clone(),
            limit,
        };
        // The example's stacking: TLS towards the upstream inside, TLS for clients outside.
        let inner = translate(relay, |c| c.dialed, client_tls.clone());
        translate(inner, |c| !c.dialed, server_tls.clone())
    })
}

/// Waits (bounded) until no connection is left, then stops the servers, which must not
/// have failed; returns the connections that were left.
fn stop_all(servers: Vec<(TestServer, &str)>) -> Vec<(String, usize)> {
    let deadline = Instant::now() + TIMEOUT;
    while servers.iter().any(|(s, _)| s.handle.connections() > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let mut left = Vec::new();
    for (s, what) in servers {
        let n = s.handle.connections();
        if n > 0 {
            left.push((what.to_string(), n));
        }
        if let Err(e) = s.stop() {
            panic!("{what}: {e}");
        }
    }
    left
}

// ----- the client ----------------------------------------------------------------------------

fn client_config(trust: &CertKey) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trust.leaf_pem().as_bytes()) {
        roots.add(c.expect("PEM")).expect("trust anchor");
    }
    let provider = wireloop_middleware::tls::crypto_provider();
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A small deterministic generator for sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Where a transfer's bytes go: TLS (one rustls connection shared by a writer and a reader
/// thread, each doing its socket I/O outside the lock; only the writer writes to the
/// socket, so records stay in order), or plain TCP.
enum Link {
    Tls(Box<Mutex<ClientConnection>>),
    Plain,
}

impl Link {
    /// Sends `data` in writes of random sizes.
    fn send(&self, sock: &mut TcpStream, data: &[u8], seed: u64) -> io::Result<()> {
        let mut rng = Rng(seed | 1);
        let mut off = 0;
        let mut wire = Vec::with_capacity(96 * 1024);
        while off < data.len() {
            let end = (off + rng.range(1, 64 * 1024)).min(data.len());
            match self {
                Link::Plain => {
                    sock.write_all(&data[off..end])?;
                    off = end;
                }
                Link::Tls(conn) => {
                    {
                        let mut c = conn.lock().unwrap();
                        off += c.writer().write(&data[off..end])?;
                        while c.wants_write() {
                            c.write_tls(&mut wire)?;
                        }
                    }
                    sock.write_all(&wire)?;
                    wire.clear();
                }
            }
        }
        Ok(())
    }

    /// Ends the conversation: close_notify (TLS) and FIN.
    fn close(&self, sock: &mut TcpStream) -> io::Result<()> {
        if let Link::Tls(conn) = self {
            let mut wire = Vec::new();
            {
                let mut c = conn.lock().unwrap();
                c.send_close_notify();
                while c.wants_write() {
                    c.write_tls(&mut wire)?;
                }
            }
            sock.write_all(&wire)?;
        }
        sock.shutdown(std::net::Shutdown::Write)
    }

    /// Reads until `want` bytes came; pauses after every 256 KiB when `slow`. `Err` says
    /// what came before the socket went quiet for [`STALL`], closed or failed.
    fn receive(&self, sock: &mut TcpStream, want: usize, slow: bool) -> Result<Vec<u8>, String> {
        let mut got = Vec::with_capacity(want);
        let mut wire = vec![0u8; 64 * 1024];
        let mut since_pause = 0;
        while got.len() < want {
            let n = match sock.read(&mut wire) {
                Ok(0) => return Err(format!("TCP EOF after {} of {want} bytes", got.len())),
                Ok(n) => n,
                Err(e) => {
                    return Err(format!(
                        "stalled: nothing more after {} of {want} bytes ({e})",
                        got.len()
                    ))
                }
            };
            match self {
                Link::Plain => got.extend_from_slice(&wire[..n]),
                Link::Tls(conn) => {
                    let mut c = conn.lock().unwrap();
                    let mut rd = &wire[..n];
                    while !rd.is_empty() {
                        c.read_tls(&mut rd).map_err(|e| format!("read_tls: {e}"))?;
                        c.process_new_packets()
                            .map_err(|e| format!("TLS from the server: {e}"))?;
                        match c.reader().read_to_end(&mut got) {
                            Ok(_) => return Err(format!("close_notify after {} bytes", got.len())),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => {
                                return Err(format!("plaintext after {} bytes: {e}", got.len()))
                            }
                        }
                    }
                }
            }
            if slow {
                since_pause += n;
                if since_pause >= 256 * 1024 {
                    since_pause = 0;
                    // Pacing, not synchronisation: this reader is meant to lag.
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Ok(got)
    }
}

/// Sends `data` on a new connection to `addr` (TLS when `tls` is given) while reading the
/// echo; `Err` says how much came back before it stalled.
fn transfer(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    data: Arc<Vec<u8>>,
    seed: u64,
    slow: bool,
) -> Result<(), String> {
    let sock = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true).ok();
    sock.set_read_timeout(Some(STALL)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let link = match tls {
        None => Link::Plain,
        Some(cfg) => {
            let name = ServerName::try_from("localhost").unwrap();
            let mut conn = ClientConnection::new(cfg.clone(), name).expect("client connection");
            let mut hs = sock.try_clone().unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut hs)
                    .map_err(|e| format!("handshake: {e}"))?;
            }
            Link::Tls(Box::new(Mutex::new(conn)))
        }
    };
    let link = Arc::new(link);
    let writer = {
        let link = link.clone();
        let data = data.clone();
        let mut sock = sock.try_clone().unwrap();
        thread::spawn(move || link.send(&mut sock, &data, seed))
    };
    let mut rsock = sock.try_clone().unwrap();
    let got = link.receive(&mut rsock, data.len(), slow);
    let sent = writer.join().expect("writer thread");
    let got = got?;
    sent.map_err(|e| format!("send: {e}"))?;
    if got != *data {
        let at = got.iter().zip(data.iter()).position(|(a, b)| a != b);
        return Err(format!(
            "the echo differs from what was sent (first at {at:?})"
        ));
    }
    link.close(&mut rsock).map_err(|e| format!("close: {e}"))
}

/// `count` transfers of random sizes in `lo..=hi` (odd, so never whole TLS records) to
/// `addr`, from two clients at once; every `slow_every`th reads slowly. Returns the
/// failures.
fn transfers(
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
    count: u64,
    (lo, hi): (usize, usize),
    slow_every: u64,
) -> Vec<String> {
    const CLIENTS: u64 = 2;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let tls = tls.clone();
            thread::spawn(move || -> Result<(), String> {
                let mut rng = Rng(0x5EED + w);
                for i in (w..count).step_by(CLIENTS as usize) {
                    let len = rng.range(lo, hi) | 1;
                    let data = Arc::new(pattern(len, 100 + i));
                    let slow = i % slow_every == slow_every - 1;
                    transfer(addr, tls.as_ref(), data, rng.next(), slow)
                        .map_err(|e| format!("transfer {i} ({len} bytes, slow {slow}): {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    workers
        .into_iter()
        .filter_map(|w| w.join().expect("client thread").err())
        .collect()
}

// ----- two TLS hops --------------------------------------------------------------------------

/// 50 transfers of about 1 MiB through the relay and back.
fn through_two_tls_hops(limit: Option<usize>) {
    let upstream_cert = localhost_cert();
    let relay_cert = localhost_cert();
    let echo = start_echo(&upstream_cert);
    let relay = start_relay(&relay_cert, echo.tcp_addr(0), &upstream_cert, limit);
    let started = Instant::now();
    let failures = transfers(
        relay.tcp_addr(0),
        Some(client_config(&relay_cert)),
        50,
        (1 << 19, 3 << 19),
        5,
    );
    let elapsed = started.elapsed();
    let left = stop_all(vec![(relay, "relay"), (echo, "echo server")]);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(left.is_empty(), "connections left open: {left:?}");
    eprintln!("50 transfers through two TLS hops (relay limit {limit:?}) in {elapsed:?}");
}

#[test]
fn two_tls_hops_with_everything_forwarded_at_once() {
    through_two_tls_hops(None);
}

#[test]
fn two_tls_hops_with_a_relay_that_lets_64_kib_wait_per_direction() {
    // The relay consumes input from `woken` once the other side has drained, after the TLS
    // session has stopped decoding for it: the wire bytes behind must be decoded then.
    through_two_tls_hops(Some(64 * 1024));
}

// ----- handlers that consume outside `data` --------------------------------------------------

/// Consumes input only when woken (as a handler that hands work to another thread does).
struct WokenEcho;

impl Handler for WokenEcho {
    /// A wake is on its way.
    type State = bool;

    fn data(&mut self, conn: &mut Conn<'_, bool>) -> Action {
        if !*conn.state {
            *conn.state = true;
            conn.handle().wake(conn.id());
        }
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, bool>) -> Action {
        *conn.state = false;
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }
}

/// Echoes while its queued output is under 64 KiB, and goes on as the output drains
/// (`post_write`, `writable`).
struct PacedEcho;

impl PacedEcho {
    fn echo(conn: &mut Conn<'_, ()>) {
        let room = (64 * 1024usize).saturating_sub(conn.output_len());
        let (input, mut out) = conn.split();
        let n = input.len().min(room);
        out.write(&input[..n]);
        conn.consume(n);
    }
}

impl Handler for PacedEcho {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        Self::echo(conn);
        Action::None
    }

    fn writable(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        Self::echo(conn);
        Action::None
    }

    fn post_write(&mut self, conn: &mut Conn<'_, ()>, _written: usize) {
        Self::echo(conn);
    }
}

/// Runs `handler` on a plain listener (0) and a TLS one (1) of a server made by `builder`
/// and sends the same transfers of 1 to 3 MiB to both, every other one read slowly.
fn plain_and_tls<H: Handler>(builder: Builder, handler: impl Fn() -> H + Send + Sync + 'static) {
    let cert = localhost_cert();
    let tls = TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server");
    let server = TestServer::start(server_with(builder, 2), move |_| {
        translate(handler(), |c| c.addr_index == 1, tls.clone())
    });
    let sizes = (1 << 20, 3 << 20);
    let plain = transfers(server.tcp_addr(0), None, 6, sizes, 2);
    let over_tls = transfers(server.tcp_addr(1), Some(client_config(&cert)), 6, sizes, 2);
    let left = stop_all(vec![(server, "server")]);
    assert!(plain.is_empty(), "plain: {plain:#?}");
    assert!(over_tls.is_empty(), "TLS: {over_tls:#?}");
    assert!(left.is_empty(), "connections left open: {left:?}");
}

#[test]
fn echo_with_a_1_mib_read_buffer_arrives_whole_over_tls() {
    // One read can bring more wire bytes than the session decodes at once.
    plain_and_tls(Server::builder().read_buffer(1 << 20), || Echo);
}

#[test]
fn input_consumed_when_woken_arrives_whole_over_tls() {
    plain_and_tls(Server::builder(), || WokenEcho);
}

#[test]
fn input_consumed_as_output_drains_arrives_whole_over_tls() {
    // Big reads, and output held back early (small water marks and kernel buffers, slow
    // readers): the handler consumes in `post_write` while wire bytes wait behind.
    let builder = Server::builder()
        .read_buffer(1 << 20)
        .output_water_marks(128 * 1024, 32 * 1024)
        .send_buffer_size(64 * 1024);
    plain_and_tls(builder, || PacedEcho);
}
