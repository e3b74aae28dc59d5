//! `Conn::forward` between a plain and a TLS connection of one loop, linked (a proxy's data
//! path), with verifying TLS clients that decrypt the exact bytes: a line and 4 MiB (with
//! a checksum) each way and half-closes passed on in both directions; and a TLS reader that
//! does not read holding back the plain producer (the producer's `data` never runs while
//! the TLS side's output is above the high-water mark, and that output stays within one
//! read of it). The companion of `tls_write_paths.rs`, which covers the other write paths.
//!
//! Bytes forwarded past the TLS session would land in the TLS stream as plaintext: the
//! client's record layer rejects them. Every wait is bounded; every server is stopped.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use common::tls_client::{
    assert_bytes, client_config, handshake, localhost_cert, read_exact, tcp_connect, tls_connect,
};
use common::{fnv1a, pattern, recv_until, TestServer, FNV_START, TIMEOUT};
use rustls::version::TLS13;
use wireloop::layer::Layers;
use wireloop::{Action, Builder, Conn, ConnId, Error, Handler, Loops, Server};
use wireloop_middleware::{CertKey, TlsServer};

#[derive(Debug)]
enum Ev {
    /// The relay paired a plain and a TLS connection.
    Paired,
    /// The relay saw the TLS side's output above the high-water mark after a forward.
    Full,
    Closed(Option<String>),
}

#[track_caller]
fn stop(server: TestServer) {
    if let Err(e) = server.stop() {
        panic!("server: {e}");
    }
}

/// One loop listening on two loopback ports: 0 plain, 1 TLS.
fn two_listeners(builder: Builder) -> Server {
    let mut b = builder.loops(Loops::from_count(1));
    for _ in 0..2 {
        b = b.listen("tcp://127.0.0.1:0").expect("listen");
    }
    b.build().expect("build server")
}

/// Pairs the first connection of the plain listener (0) with the first of the TLS listener
/// (1), links them and moves input across with `Conn::forward`; a half-close is passed
/// on. Records the most output either side had queued right after a forward into it, and
/// how often the plain side's `data` ran while the TLS side's output was above `hwm`
/// (the link must prevent that: reading stops while the partner's output is over it).
struct Relay {
    tx: Sender<Ev>,
    tls: TlsServer,
    hwm: usize,
    waiting: [Option<ConnId>; 2],
    stats: Arc<RelayStats>,
    full_told: bool,
}

#[derive(Default)]
struct RelayStats {
    /// By destination listener.
    max_out: [AtomicUsize; 2],
    read_while_full: AtomicUsize,
}

impl Relay {
    fn pass(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some(peer) = conn.linked() else {
            return Action::None; // not paired yet: the input waits
        };
        let from = conn.addr_index();
        let before = conn.control().output_len(peer).unwrap_or(0);
        if from == 0 && before > self.hwm && !conn.input().is_empty() {
            self.stats.read_while_full.fetch_add(1, Ordering::Relaxed);
        }
        if !conn.forward(peer) {
            return Action::Close;
        }
        let after = conn.control().output_len(peer).unwrap_or(0);
        self.stats.max_out[1 - from].fetch_max(after, Ordering::Relaxed);
        if from == 0 && after > self.hwm && !self.full_told {
            self.full_told = true;
            let _ = self.tx.send(Ev::Full);
        }
        Action::None
    }
}

impl Handler for Relay {
    type State = ();

    fn layers(&mut self, layers: &mut Layers<'_>) {
        if layers.info().addr_index == 1 {
            layers.push(&self.tls);
        }
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let side = conn.addr_index();
        match self.waiting[1 - side].take() {
            Some(other) => {
                assert!(conn.link(other));
                conn.control().wake(other);
                let _ = self.tx.send(Ev::Paired);
            }
            None => self.waiting[side] = Some(conn.id()),
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.pass(conn)
    }

    fn woken(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.pass(conn)
    }

    fn eof(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        match conn.linked() {
            Some(peer) if conn.control().shutdown_write(peer) => Action::None,
            _ => Action::Close,
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        if let Some(peer) = conn.linked() {
            conn.control().close(peer);
        }
        let _ = self.tx.send(Ev::Closed(err.map(|e| e.to_string())));
    }
}

fn start_relay(
    cert: &CertKey,
    builder: Builder,
    hwm: usize,
) -> (TestServer, Receiver<Ev>, Arc<RelayStats>) {
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(RelayStats::default());
    let tls = TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server");
    let st = stats.clone();
    let server = TestServer::start(two_listeners(builder), move |_| Relay {
        tx: tx.clone(),
        tls: tls.clone(),
        hwm,
        waiting: [None, None],
        stats: st.clone(),
        full_told: false,
    });
    (server, rx, stats)
}

/// Reads exactly `n` bytes in chunks; returns their FNV-1a checksum.
fn read_sum(r: &mut impl Read, n: usize, what: &str) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let (mut h, mut have) = (FNV_START, 0);
    while have < n {
        let want = buf.len().min(n - have);
        match r.read(&mut buf[..want]) {
            Ok(0) => panic!("{what}: the stream ended after {have} of {n} bytes"),
            Ok(k) => {
                h = fnv1a(h, &buf[..k]);
                have += k;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: after {have} of {n} bytes: {e} ({:?})", e.kind()),
        }
    }
    h
}

/// Writes `data` to `w` on a thread of its own; the thread says whether all went out.
fn write_in_thread(mut w: TcpStream, data: Arc<Vec<u8>>) -> thread::JoinHandle<Result<(), String>> {
    thread::spawn(move || w.write_all(&data).map_err(|e| e.to_string()))
}

const HWM: usize = 1 << 20;

#[test]
fn forward_between_a_plain_and_a_tls_connection_both_ways() {
    let cert = localhost_cert();
    let (server, rx, stats) = start_relay(&cert, Server::builder(), HWM);
    let mut plain = tcp_connect(server.tcp_addr(0));
    let mut tls = tls_connect(server.tcp_addr(1), &client_config(&cert, &[&TLS13]));
    recv_until(&rx, TIMEOUT, "paired", |e| {
        matches!(e, Ev::Paired).then_some(())
    });

    plain.write_all(b"plain to TLS\n").unwrap();
    assert_bytes(
        &read_exact(&mut tls, 13, "to TLS"),
        b"plain to TLS\n",
        "to TLS",
    );
    tls.write_all(b"TLS to plain\n").unwrap();
    tls.flush().unwrap();
    assert_bytes(
        &read_exact(&mut plain, 13, "to plain"),
        b"TLS to plain\n",
        "to plain",
    );

    const BIG: usize = 4 << 20;
    let up = Arc::new(pattern(BIG, 5));
    let writer = write_in_thread(plain.try_clone().unwrap(), up.clone());
    assert_eq!(
        read_sum(&mut tls, BIG, "4 MiB to TLS"),
        fnv1a(FNV_START, &up)
    );
    writer
        .join()
        .unwrap()
        .expect("the plain client writes 4 MiB");

    let down = pattern(BIG, 6);
    let reader = {
        let mut r = plain.try_clone().unwrap();
        thread::spawn(move || read_sum(&mut r, BIG, "4 MiB to plain"))
    };
    tls.write_all(&down).unwrap();
    tls.flush().unwrap();
    assert_eq!(reader.join().unwrap(), fnv1a(FNV_START, &down));

    // Half-closes pass through: close_notify becomes the plain side's EOF, and the plain
    // side's FIN becomes close_notify (then the FIN).
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    assert_eq!(plain.read(&mut [0u8; 16]).unwrap(), 0, "plain: EOF");
    plain.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).expect("TLS: close_notify");
    assert!(rest.is_empty());
    // Both directions finished: the pair closes, without an error.
    for n in 0..2 {
        let err = recv_until(&rx, TIMEOUT, "closed", |e| match e {
            Ev::Closed(err) => Some(err.clone()),
            _ => None,
        })
        .0;
        assert_eq!(err, None, "connection {n} of the pair");
    }
    stop(server);
    for (to, what) in [(0, "plain"), (1, "TLS")] {
        let most = stats.max_out[to].load(Ordering::Relaxed);
        assert!(
            most <= 2 * HWM,
            "the {what} side's output reached {most} bytes"
        );
    }
}

/// A TCP connection with a small receive buffer (so a client that does not read soon
/// fills it).
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(64 << 10).unwrap();
    s.connect(&addr.into()).expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

#[test]
fn a_tls_reader_that_does_not_read_holds_back_the_plain_producer() {
    const SMALL_HWM: usize = 256 << 10;
    const TOTAL: usize = 16 << 20;
    let cert = localhost_cert();
    let builder = Server::builder()
        .output_water_marks(SMALL_HWM, 64 << 10)
        .send_buffer_size(64 << 10)
        .recv_buffer_size(64 << 10);
    let (server, rx, stats) = start_relay(&cert, builder, SMALL_HWM);
    let plain = tcp_connect(server.tcp_addr(0));
    let sock = small_window_connect(server.tcp_addr(1));
    let mut tls = handshake(sock, &client_config(&cert, &[&TLS13]));
    recv_until(&rx, TIMEOUT, "paired", |e| {
        matches!(e, Ev::Paired).then_some(())
    });

    let data = Arc::new(pattern(TOTAL, 7));
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (mut w, data, done) = (plain.try_clone().unwrap(), data.clone(), done.clone());
        thread::spawn(move || {
            let r = w.write_all(&data).map_err(|e| e.to_string());
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // Nobody reads the TLS side until its output has gone over the high-water mark.
    recv_until(&rx, TIMEOUT, "the TLS side's output over the mark", |e| {
        matches!(e, Ev::Full).then_some(())
    });
    assert!(
        !done.load(Ordering::SeqCst),
        "the producer sent all {TOTAL} bytes while nobody read the TLS side"
    );
    assert_eq!(
        read_sum(&mut tls, TOTAL, "16 MiB to TLS"),
        fnv1a(FNV_START, &data)
    );
    producer
        .join()
        .unwrap()
        .expect("the producer writes 16 MiB");
    plain.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .expect("TLS: close_notify after the producer's FIN");
    assert!(rest.is_empty());
    stop(server);

    let read_while_full = stats.read_while_full.load(Ordering::Relaxed);
    let most = stats.max_out[1].load(Ordering::Relaxed);
    eprintln!("most output queued for the TLS side: {most} bytes (mark {SMALL_HWM})");
    assert_eq!(
        read_while_full, 0,
        "the producer was read while the TLS side's output was over the mark"
    );
    // Below the mark before a read, plus one read's worth (64 KiB) and TLS framing.
    assert!(
        most <= SMALL_HWM + (128 << 10),
        "the TLS side's output reached {most} bytes"
    );
}
