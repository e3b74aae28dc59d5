//! Every way of writing to a connection reaches a TLS peer through the connection's TLS
//! session, checked with verifying clients (rustls, `openssl s_client`) that decrypt the
//! exact bytes:
//!
//! * `Handle::send` from another thread (rustls, TLS 1.3 and 1.2; `openssl s_client`);
//! * `Control::write` / `write_bytes` from a `Control::after` timer, from `Handler::tick`,
//!   and through `conn.control()` from another connection's callback;
//! * `Handle::send` while the handshake is still going on: sent after it, in order with
//!   what `opened` writes;
//! * a dialed TLS connection (`DialOptions::layer(TlsClient)`) to a TLS echo server:
//!   `Handle::send` after it opened; `Control::write` before it even connected (sent after
//!   the handshake), also followed by `Control::shutdown_write` (close_notify and FIN come
//!   after the handshake and the bytes); and a dial closed before it connected, whose
//!   queued plaintext must never reach the peer.
//!
//! `Conn::forward` and linked connections are in `tls_forward_paths.rs`.
//!
//! Bytes that bypassed the session would land in the TLS stream as plaintext: the client's
//! record layer rejects them (or the handshake fails), so each test fails on such a leak
//! instead of passing on lucky bytes. Every wait is bounded; every server is stopped.

mod common;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use common::tls_client::{
    assert_bytes, client_config, close_cleanly, handshake, localhost_cert, read_exact, tcp_connect,
    tls_connect, SClient,
};
use common::{pattern, recv, recv_until, TempFile, TestServer, TIMEOUT};
use rustls::version::{TLS12, TLS13};
use wireloop::layer::Layers;
use wireloop::{
    Action, Builder, Bytes, Conn, ConnId, Control, DialOptions, Error, Handler, Loops, Server,
};
use wireloop_middleware::{translate, CertKey, TlsClient, TlsServer};

#[derive(Debug)]
enum Ev {
    /// The `layers` hook attached TLS to an accepted connection (before its handshake).
    Layered(ConnId),
    Dialed(Result<ConnId, String>),
    Opened(ConnId, usize),
    Data(ConnId, Vec<u8>),
    Closed(ConnId, Option<String>),
}

/// Waits for the `opened` of a connection of listener `index`.
#[track_caller]
fn wait_opened(rx: &Receiver<Ev>, index: usize) -> ConnId {
    recv_until(rx, TIMEOUT, "opened", |e| match e {
        Ev::Opened(id, i) if *i == index => Some(*id),
        _ => None,
    })
    .0
}

/// Waits for connection `id`'s `closed` and returns its error.
#[track_caller]
fn wait_closed(rx: &Receiver<Ev>, id: ConnId) -> Option<String> {
    recv_until(rx, TIMEOUT, "closed", |e| match e {
        Ev::Closed(i, err) if *i == id => Some(err.clone()),
        _ => None,
    })
    .0
}

#[track_caller]
fn stop(server: TestServer) {
    if let Err(e) = server.stop() {
        panic!("server: {e}");
    }
}

/// One loop listening on `listeners` loopback ports.
fn one_loop(builder: Builder, listeners: usize) -> Server {
    let mut b = builder.loops(Loops::from_count(1));
    for _ in 0..listeners {
        b = b.listen("tcp://127.0.0.1:0").expect("listen");
    }
    b.build().expect("build server")
}

fn tls_server(cert: &CertKey) -> TlsServer {
    TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server")
}

// ----- the probe: accepted connections, TLS on one listener --------------------------------

const TIMER_LINE: &[u8] = b"written by a Control::after timer\n";
const TIMER_BULK: usize = 1536 << 10;
const TICK_LINE: &[u8] = b"written by Handler::tick\n";

/// Attaches TLS itself (`Handler::layers`) to the connections of listener `tls_index` and
/// reports them; `opened` writes `greeting` on them. With `timed`, `opened` also arms a
/// timer that writes [`TIMER_LINE`] and [`TIMER_BULK`] bytes with `Control`, and hands
/// the connection to the next tick, which writes [`TICK_LINE`]. A plain connection's input
/// goes to the last TLS connection with `conn.control().write`.
struct Probe {
    tx: Sender<Ev>,
    tls: TlsServer,
    tls_index: usize,
    greeting: &'static [u8],
    timed: bool,
    for_tick: Rc<RefCell<Vec<ConnId>>>,
    tls_conn: Option<ConnId>,
}

impl Handler for Probe {
    type State = ();

    fn layers(&mut self, layers: &mut Layers<'_>) {
        let info = *layers.info();
        if !info.dialed && info.addr_index == self.tls_index {
            let _ = self.tx.send(Ev::Layered(info.id));
            layers.push(&self.tls);
        }
    }

    fn tick(&mut self, ctl: &mut Control<'_, ()>) -> (Option<Duration>, Action) {
        for id in self.for_tick.borrow_mut().drain(..) {
            ctl.write(id, TICK_LINE);
        }
        (self.timed.then_some(Duration::from_millis(2)), Action::None)
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let _ = self.tx.send(Ev::Opened(id, conn.addr_index()));
        if conn.addr_index() != self.tls_index {
            return Action::None;
        }
        self.tls_conn = Some(id);
        conn.write(self.greeting);
        if self.timed {
            let for_tick = self.for_tick.clone();
            conn.control().after(Duration::from_millis(1), move |ctl| {
                ctl.write(id, TIMER_LINE);
                ctl.write_bytes(id, Bytes::from(pattern(TIMER_BULK, 3)));
                for_tick.borrow_mut().push(id);
            });
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let input = conn.input().to_vec();
        conn.consume(input.len());
        if let (Some(to), false) = (self.tls_conn, conn.addr_index() == self.tls_index) {
            conn.control().write(to, &input);
        }
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .tx
            .send(Ev::Closed(conn.id(), err.map(|e| e.to_string())));
    }
}

/// A server with `listeners` listeners running [`Probe`], TLS on listener `tls_index`.
fn start_probe(
    cert: &CertKey,
    listeners: usize,
    tls_index: usize,
    greeting: &'static [u8],
    timed: bool,
) -> (TestServer, Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let tls = tls_server(cert);
    let server = TestServer::start(one_loop(Server::builder(), listeners), move |_| Probe {
        tx: tx.clone(),
        tls: tls.clone(),
        tls_index,
        greeting,
        timed,
        for_tick: Rc::default(),
        tls_conn: None,
    });
    (server, rx)
}

// ----- a. Handle::send from another thread -----------------------------------------------

#[test]
fn handle_send_from_another_thread_reaches_a_rustls_client() {
    let cert = localhost_cert();
    let (server, rx) = start_probe(&cert, 1, 0, b"", false);
    let bulk = pattern(1 << 20, 1);
    for version in [&TLS13, &TLS12] {
        let mut s = tls_connect(server.tcp_addr(0), &client_config(&cert, &[version]));
        let id = wait_opened(&rx, 0);
        let sender = {
            let handle = server.handle.clone();
            let bulk = bulk.clone();
            thread::spawn(move || {
                handle.send(id, &b"one\n"[..])
                    && handle.send(id, bulk)
                    && handle.send(id, &b"three\n"[..])
            })
        };
        assert!(sender.join().unwrap(), "Handle::send refused the id");
        let want = [&b"one\n"[..], &bulk, b"three\n"].concat();
        let got = read_exact(&mut s, want.len(), "Handle::send");
        assert_bytes(&got, &want, "Handle::send");
        close_cleanly(s);
        assert_eq!(wait_closed(&rx, id), None, "{:?}", version.version);
    }
    stop(server);
}

#[test]
fn handle_send_reaches_openssl_s_client() {
    let cert = localhost_cert();
    let cafile = TempFile::with_contents("ca", cert.leaf_pem().as_bytes());
    let (server, rx) = start_probe(&cert, 1, 0, b"", false);
    let mut client = SClient::spawn(server.tcp_addr(0).port(), &cafile);
    let id = wait_opened(&rx, 0);
    let want = [&b"sent from the test thread\n"[..], &pattern(256 << 10, 2)].concat();
    assert!(server.handle.send(id, want.clone()));
    assert_bytes(&client.read_exact(want.len()), &want, "s_client");
    // The end of stdin sends close_notify; the server answers in kind, s_client exits 0.
    client.finish();
    assert_eq!(wait_closed(&rx, id), None);
    stop(server);
}

// ----- b. Control::write from a timer, a tick and another connection ---------------------

#[test]
fn control_write_from_a_timer_a_tick_and_another_connection_reaches_the_tls_client() {
    let cert = localhost_cert();
    let (server, rx) = start_probe(&cert, 2, 1, b"opened\n", true);
    let mut s = tls_connect(server.tcp_addr(1), &client_config(&cert, &[&TLS13]));
    let id = wait_opened(&rx, 1);
    let want = [
        &b"opened\n"[..],
        TIMER_LINE,
        &pattern(TIMER_BULK, 3),
        TICK_LINE,
    ]
    .concat();
    let got = read_exact(&mut s, want.len(), "opened, timer, tick");
    assert_bytes(&got, &want, "opened, timer, tick");

    let mut plain = tcp_connect(server.tcp_addr(0));
    let line = b"through conn.control() of a plain connection\n";
    plain.write_all(line).unwrap();
    let got = read_exact(&mut s, line.len(), "conn.control().write");
    assert_bytes(&got, line, "conn.control().write");
    plain.shutdown(Shutdown::Write).unwrap();
    assert_eq!(plain.read(&mut [0u8; 16]).unwrap(), 0, "plain: EOF");

    close_cleanly(s);
    assert_eq!(wait_closed(&rx, id), None);
    stop(server);
}

// ----- e. Handle::send during the handshake ----------------------------------------------

/// Returns once loop 0 has handled every message posted to it before: `Handle::dial`
/// waits for the loop to take its request, and a loop takes its messages in order. (The
/// dial itself, to a unix path that does not exist, fails.)
fn barrier(server: &TestServer) {
    let path = std::env::temp_dir().join(format!("wlmw-nowhere-{}.sock", std::process::id()));
    let addr = format!("unix://{}", path.display());
    server
        .handle
        .dial(&addr, DialOptions::new().on_loop(0))
        .expect("barrier dial");
}

#[test]
fn handle_send_during_the_handshake_arrives_after_it_in_order() {
    let cert = localhost_cert();
    let (server, rx) = start_probe(&cert, 1, 0, b"opened\n", false);
    let early = b"sent during the handshake\n";
    for version in [&TLS13, &TLS12] {
        let mut sock = tcp_connect(server.tcp_addr(0));
        let (id, _) = recv_until(&rx, TIMEOUT, "the layers hook", |e| match e {
            Ev::Layered(id) => Some(*id),
            _ => None,
        });
        assert!(server.handle.send(id, &early[..]));
        barrier(&server);
        // The send has been handled, and the client has not said hello: nothing may have
        // reached the socket.
        sock.set_nonblocking(true).unwrap();
        match sock.read(&mut [0u8; 256]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("the server wrote before the ClientHello: {other:?}"),
        }
        sock.set_nonblocking(false).unwrap();
        let mut s = handshake(sock, &client_config(&cert, &[version]));
        let want = [&early[..], b"opened\n"].concat();
        let got = read_exact(&mut s, want.len(), "after the handshake");
        assert_bytes(&got, &want, "the early send, then what opened wrote");
        close_cleanly(s);
        assert_eq!(wait_closed(&rx, id), None, "{:?}", version.version);
    }
    stop(server);
}

// ----- f. a dialed TLS connection ---------------------------------------------------------

/// Echoes everything; reports its connections' `opened` and `closed`.
struct Echo(Sender<Ev>);

impl Handler for Echo {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.0.send(Ev::Opened(conn.id(), conn.addr_index()));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .0
            .send(Ev::Closed(conn.id(), err.map(|e| e.to_string())));
    }
}

/// A TLS echo server (listener 0) and what its handler reports.
fn start_echo(cert: &CertKey) -> (TestServer, Receiver<Ev>) {
    let tls = tls_server(cert);
    let (tx, rx) = mpsc::channel();
    let server = TestServer::start(one_loop(Server::builder(), 1), move |_| {
        translate(Echo(tx.clone()), |c| c.addr_index == 0, tls.clone())
    });
    (server, rx)
}

/// What [`Dialer`] does to its dial right after making it, before it connects.
#[derive(Clone, Copy)]
enum Early {
    Nothing,
    /// `Control::write` of these bytes.
    Write(&'static [u8]),
    /// The same, then `Control::shutdown_write`.
    WriteAndShutdown(&'static [u8]),
    /// The same, then `Control::close`.
    WriteAndClose(&'static [u8]),
}

/// Dials `target` from `serving` through `DialOptions::layer(TlsClient)`, does `early` to
/// it, and reports what the dialed connection receives.
struct Dialer {
    tx: Sender<Ev>,
    target: String,
    tls: TlsClient,
    early: Early,
}

impl Handler for Dialer {
    type State = ();

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        let opts = DialOptions::new().timeout(TIMEOUT).layer(self.tls.clone());
        let res = ctl.dial(&self.target, opts, ());
        if let Ok(id) = res {
            match self.early {
                Early::Nothing => {}
                Early::Write(b) => assert!(ctl.write(id, b)),
                Early::WriteAndShutdown(b) => assert!(ctl.write(id, b) && ctl.shutdown_write(id)),
                Early::WriteAndClose(b) => assert!(ctl.write(id, b) && ctl.close(id)),
            }
        }
        let _ = self.tx.send(Ev::Dialed(res.map_err(|e| e.to_string())));
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(Ev::Opened(conn.id(), conn.addr_index()));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let bytes = conn.input().to_vec();
        conn.consume(bytes.len());
        let _ = self.tx.send(Ev::Data(conn.id(), bytes));
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .tx
            .send(Ev::Closed(conn.id(), err.map(|e| e.to_string())));
    }
}

fn start_dialer(
    cert: &CertKey,
    target: SocketAddr,
    early: Early,
) -> (TestServer, Receiver<Ev>, ConnId) {
    let tls = TlsClient::builder()
        .server_name("localhost")
        .root_ca_pem(cert.leaf_pem().as_bytes())
        .expect("CA")
        .build()
        .expect("TLS client");
    let (tx, rx) = mpsc::channel();
    let target = format!("tcp://{target}");
    let server = TestServer::start(one_loop(Server::builder(), 1), move |_| Dialer {
        tx: tx.clone(),
        target: target.clone(),
        tls: tls.clone(),
        early,
    });
    let id = match recv(&rx, TIMEOUT, "the dial") {
        Ev::Dialed(Ok(id)) => id,
        other => panic!("dial: {other:?}"),
    };
    (server, rx, id)
}

/// Collects what dialed connection `id` receives until `n` bytes came (or it closed).
#[track_caller]
fn received(rx: &Receiver<Ev>, id: ConnId, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match recv(rx, TIMEOUT, "the echo") {
            Ev::Data(i, bytes) if i == id => got.extend_from_slice(&bytes),
            Ev::Closed(i, err) if i == id => {
                panic!("closed ({err:?}) after {} of {n} bytes", got.len())
            }
            _ => {}
        }
    }
    got
}

/// Waits for the dialed connection's `opened`; a `closed` first (a failed handshake) fails.
#[track_caller]
fn wait_dial_opened(rx: &Receiver<Ev>, id: ConnId) {
    loop {
        match recv(rx, TIMEOUT, "opened") {
            Ev::Opened(i, _) if i == id => return,
            Ev::Closed(i, err) if i == id => panic!("closed before opened: {err:?}"),
            _ => {}
        }
    }
}

#[test]
fn handle_send_to_a_dialed_tls_connection_is_echoed_back_decrypted() {
    let cert = localhost_cert();
    let (echo, _) = start_echo(&cert);
    let (dialer, rx, id) = start_dialer(&cert, echo.tcp_addr(0), Early::Nothing);
    wait_dial_opened(&rx, id);
    let first = b"ping over a dialed TLS connection\n";
    let second = pattern(512 << 10, 8);
    assert!(dialer.handle.send(id, &first[..]));
    assert!(dialer.handle.send(id, second.clone()));
    let want = [&first[..], &second].concat();
    assert_bytes(&received(&rx, id, want.len()), &want, "the echo");
    assert!(dialer.handle.close(id));
    assert_eq!(wait_closed(&rx, id), None);
    stop(dialer);
    stop(echo);
}

#[test]
fn control_write_before_a_tls_dial_connects_goes_out_after_its_handshake() {
    let cert = localhost_cert();
    let (echo, _) = start_echo(&cert);
    let early = b"written before the dial connected\n";
    let (dialer, rx, id) = start_dialer(&cert, echo.tcp_addr(0), Early::Write(early));
    wait_dial_opened(&rx, id);
    assert!(dialer.handle.send(id, &b"and after\n"[..]));
    let want = [&early[..], b"and after\n"].concat();
    assert_bytes(&received(&rx, id, want.len()), &want, "the echo");
    assert!(dialer.handle.close(id));
    assert_eq!(wait_closed(&rx, id), None);
    stop(dialer);
    stop(echo);
}

#[test]
fn a_half_close_asked_for_before_a_tls_dial_connects_waits_for_its_handshake() {
    let cert = localhost_cert();
    let (echo, echo_rx) = start_echo(&cert);
    // With bytes queued, and with none (then nothing holds the FIN back but the handshake).
    for last in [&b"the last words, then close_notify and FIN\n"[..], b""] {
        let early = Early::WriteAndShutdown(last);
        let (dialer, rx, id) = start_dialer(&cert, echo.tcp_addr(0), early);
        // The echo server finishes its handshake (a FIN before the client's Finished would
        // leave it unfinished), answers, and ends on the close_notify, without an error.
        let echo_id = wait_opened(&echo_rx, 0);
        assert_eq!(wait_closed(&echo_rx, echo_id), None, "{} bytes", last.len());
        // The dial reads the answer, then its eof closes it.
        wait_dial_opened(&rx, id);
        assert_bytes(&received(&rx, id, last.len()), last, "the echo");
        assert_eq!(wait_closed(&rx, id), None, "{} bytes", last.len());
        stop(dialer);
    }
    stop(echo);
}

#[test]
fn a_tls_dial_closed_before_it_connects_sends_no_plaintext() {
    let cert = localhost_cert();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, accepted) = mpsc::channel();
    thread::spawn(move || {
        let got = listener.accept().map(|(mut s, _)| {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).map(|_| got)
        });
        let _ = tx.send(got.and_then(|r| r).map_err(|e| e.to_string()));
    });
    let secret = b"a secret that must not cross the wire in clear";
    let (dialer, rx, id) = start_dialer(&cert, addr, Early::WriteAndClose(secret));
    let got = recv(&accepted, TIMEOUT, "the peer's view").expect("the peer reads to EOF");
    assert!(
        !got.windows(secret.len()).any(|w| w == secret),
        "the plaintext reached the peer: {:?}",
        String::from_utf8_lossy(&got)
    );
    wait_closed(&rx, id);
    stop(dialer);
}
