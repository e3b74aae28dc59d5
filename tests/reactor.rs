//! Reactor integration tests on real loopback sockets: several listeners at once, loops and
//! load balancing, `reuseport`, partial reads and writes, half-close, close and shutdown
//! flushing, `closed` firing exactly once, address errors, `serving` and `tick`.
//!
//! Nothing here synchronises with sleeps: tests wait on channels fed by the handlers
//! (`recv_timeout`) or on socket reads with read timeouts, so a bug fails a test within
//! [`TIMEOUT`] instead of hanging it. Every server is shut down and joined, also when a test
//! fails (see `common::TestServer`).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use wireloop::{
    Action, Bytes, Conn, ConnId, Control, Error, Handler, LoadBalance, Loops, NetAddr, Server,
};

// ----- shared handlers and events ----------------------------------------------------------

/// What a [`Probe`] saw when a connection opened.
#[derive(Debug, Clone)]
struct OpenInfo {
    id: ConnId,
    loop_index: usize,
    addr_index: usize,
    local: Result<NetAddr, String>,
    peer: Result<NetAddr, String>,
}

#[derive(Debug)]
enum Ev {
    Opened(OpenInfo),
    /// The connection's id and the error `closed` got, if any (as text).
    Closed(ConnId, Option<String>),
}

fn open_info<S>(conn: &Conn<'_, S>) -> OpenInfo {
    OpenInfo {
        id: conn.id(),
        loop_index: conn.loop_index(),
        addr_index: conn.addr_index(),
        local: conn.local_addr().map_err(|e| e.to_string()),
        peer: conn.peer_addr().map_err(|e| e.to_string()),
    }
}

/// Echoes and reports `opened` and `closed`; with `close_on_c`, returns `Action::Close`
/// when the input holds a `C`, answers `bad input` then closes with an error
/// (`Conn::close_with`) when it holds an `E`, and gives a reason with `close_with` but
/// detaches (the default `detached` drops the socket) when it holds a `D`, instead of
/// echoing.
struct Probe {
    tx: Sender<Ev>,
    close_on_c: bool,
}

impl Handler for Probe {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(Ev::Opened(open_info(conn)));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if self.close_on_c && conn.input().contains(&b'D') {
            let n = conn.input().len();
            conn.consume(n);
            conn.close_with(Error::layer("detached instead"));
            return Action::Detach;
        }
        if self.close_on_c && conn.input().contains(&b'E') {
            let n = conn.input().len();
            conn.consume(n);
            conn.write(b"bad input\n");
            conn.close_with(Error::layer("the peer sent E"));
            return Action::None;
        }
        if self.close_on_c && conn.input().contains(&b'C') {
            let n = conn.input().len();
            conn.consume(n);
            return Action::Close;
        }
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .tx
            .send(Ev::Closed(conn.id(), err.map(|e| e.to_string())));
    }
}

fn probe_server(server: Server, close_on_c: bool) -> (TestServer, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Probe {
        tx: tx.clone(),
        close_on_c,
    });
    (srv, rx)
}

#[track_caller]
fn expect_opened(rx: &mpsc::Receiver<Ev>) -> OpenInfo {
    match recv(rx, TIMEOUT, "opened") {
        Ev::Opened(info) => info,
        other => panic!("expected an opened event, got {other:?}"),
    }
}

#[track_caller]
fn expect_closed(rx: &mpsc::Receiver<Ev>) -> (ConnId, Option<String>) {
    match recv(rx, TIMEOUT, "closed") {
        Ev::Closed(id, err) => (id, err),
        other => panic!("expected a closed event, got {other:?}"),
    }
}

/// Writes `msg` and checks it comes back.
#[track_caller]
fn echo_check(c: &mut Client, msg: &[u8]) {
    c.write_all(msg).expect("write");
    let got = c.read_n(msg.len()).expect("read echo");
    assert_eq!(got, msg, "echo");
}

/// A TCP client whose receive buffer is small, so the server cannot push megabytes into
/// the kernel's buffers: its output has to stay queued in the server until the client reads.
fn small_window_client(addr: SocketAddr) -> Client {
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    s.connect(&addr.into()).expect("connect");
    Client::from_tcp(s.into()).expect("client")
}

/// The most a TCP socket's send buffer may grow to (`net.ipv4.tcp_wmem`'s maximum; 4 MiB
/// when it cannot be read, the usual default).
fn max_tcp_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

// ----- 1. several listeners ----------------------------------------------------------------

#[test]
fn multiple_listeners_tcp4_tcp6_unix() {
    let v6 = ipv6_loopback_available();
    if !v6 {
        eprintln!("note: IPv6 loopback is unavailable here; the tcp6 listener is skipped");
    }
    let path = unique_sock_path("multi");
    let mut b = Server::builder().listen("tcp://127.0.0.1:0").unwrap();
    let mut kinds = vec!["tcp4"];
    if v6 {
        b = b.listen("tcp6://[::1]:0").unwrap();
        kinds.push("tcp6");
    }
    b = b.listen(&format!("unix://{}", path.display())).unwrap();
    kinds.push("unix");
    // Two loops: connections accepted on loop 0 and handed to loop 1 keep their addr_index.
    let server = b.loops(Loops::Fixed(2)).build().unwrap();

    let addrs = server.local_addrs().to_vec();
    assert_eq!(addrs.len(), kinds.len());
    for (addr, kind) in addrs.iter().zip(&kinds) {
        match *kind {
            "tcp4" => {
                let a = addr.inet().expect("inet");
                assert!(a.is_ipv4() && a.ip().is_loopback(), "{addr}");
                assert_ne!(a.port(), 0, "real port for {addr}");
            }
            "tcp6" => {
                let a = addr.inet().expect("inet");
                assert!(a.is_ipv6() && a.ip().is_loopback(), "{addr}");
                assert_ne!(a.port(), 0, "real port for {addr}");
            }
            _ => {
                assert_eq!(addr.unix_path(), Some(path.as_path()));
                assert!(path.exists(), "socket file {path:?} exists while bound");
            }
        }
    }
    if v6 {
        assert_ne!(
            addrs[0].inet().unwrap().port(),
            addrs[1].inet().unwrap().port(),
            "two port-0 listeners got distinct ports"
        );
    }

    let (srv, rx) = probe_server(server, false);
    let mut clients = Vec::new();
    // Two rounds so both loops serve a connection of every listener.
    for round in 0..2 {
        for (i, kind) in kinds.iter().enumerate() {
            let mut c = Client::connect(srv.addr(i)).expect("connect");
            let info = expect_opened(&rx);
            assert_eq!(info.addr_index, i, "addr_index of a {kind} connection");
            assert_eq!(info.id.loop_index(), info.loop_index);
            let local = info.local.clone().expect("local_addr");
            let peer = info.peer.clone().expect("peer_addr");
            if *kind == "unix" {
                assert_eq!(local, NetAddr::Unix(Some(path.clone())), "unix local_addr");
                assert_eq!(peer, NetAddr::Unix(None), "unix peer is unnamed");
            } else {
                assert_eq!(&local, srv.addr(i), "{kind} local_addr is the listener's");
                assert_eq!(
                    peer,
                    c.local_addr().unwrap(),
                    "{kind} peer_addr is the client"
                );
            }
            echo_check(&mut c, format!("hello {kind} #{round}").as_bytes());
            echo_check(&mut c, &pattern(100_000, i as u64));
            clients.push((c, info));
        }
    }
    let loops_used: HashSet<usize> = clients.iter().map(|(_, i)| i.loop_index).collect();
    assert_eq!(loops_used.len(), 2, "both loops served connections");

    for (c, info) in clients {
        drop(c);
        let (id, err) = expect_closed(&rx);
        assert_eq!(
            id, info.id,
            "closed fires for the connection the client closed"
        );
        assert_eq!(err, None, "a client close is clean");
    }
    assert_eq!(srv.stop(), Ok(()));
    assert!(!path.exists(), "unix socket file removed after shutdown");
}

// ----- 2. multi-loop balancing -------------------------------------------------------------

const BALANCE_CONNS: usize = 40;

fn balance_run(mode: LoadBalance, loops: usize) {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .loops(Loops::Fixed(loops))
        .load_balance(mode)
        .build()
        .unwrap();
    assert_eq!(server.num_loops(), loops);
    let (srv, rx) = probe_server(server, false);
    let addr = srv.addr(0).clone();
    let ctx = format!("{mode:?} with {loops} loops");

    let mut clients = Vec::new();
    let mut counts = vec![0usize; loops];
    let mut first = None;
    for k in 0..BALANCE_CONNS {
        let mut c = Client::connect(&addr).expect("connect");
        let info = expect_opened(&rx);
        assert_eq!(
            info.peer.as_ref().ok(),
            Some(&c.local_addr().unwrap()),
            "{ctx}: opened event belongs to the client just connected"
        );
        assert!(info.loop_index < loops, "{ctx}: loop index in range");
        assert_eq!(info.id.loop_index(), info.loop_index, "{ctx}");
        counts[info.loop_index] += 1;
        match mode {
            LoadBalance::RoundRobin => {
                let f = *first.get_or_insert(info.loop_index);
                assert_eq!(
                    info.loop_index,
                    (f + k) % loops,
                    "{ctx}: connection {k} goes to the next loop in turn"
                );
            }
            LoadBalance::LeastConnections => {
                let (min, max) = (counts.iter().min(), counts.iter().max());
                assert!(
                    max.unwrap() - min.unwrap() <= 1,
                    "{ctx}: after {} connections loads are {counts:?}",
                    k + 1
                );
            }
            _ => {}
        }
        // The connection is really served (by the loop that reported it).
        echo_check(&mut c, &[k as u8, 0xA5]);
        clients.push((c, info));
    }

    // The handle's per-loop counts agree with what the handlers saw.
    for (i, &n) in counts.iter().enumerate() {
        assert!(
            wait_until(TIMEOUT, || srv.handle.loop_connections(i) == n),
            "{ctx}: loop_connections({i}) = {}, handlers saw {n}",
            srv.handle.loop_connections(i)
        );
    }
    assert_eq!(srv.handle.connections(), BALANCE_CONNS, "{ctx}");

    if mode == LoadBalance::RoundRobin {
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(max.unwrap() - min.unwrap() <= 1, "{ctx}: {counts:?}");
    }
    if mode == LoadBalance::Random {
        assert!(
            counts.iter().all(|&n| n > 0),
            "{ctx}: every loop used at least once over {BALANCE_CONNS} connections: {counts:?}"
        );
    }
    if mode == LoadBalance::LeastConnections {
        // Unbalance on purpose: close 5 connections of the busiest loop; the next 4
        // connections must all go to it (it stays strictly the least loaded for 4).
        let busiest = (0..loops).max_by_key(|&i| counts[i]).unwrap();
        let mut closed_ids = HashSet::new();
        let mut kept = Vec::new();
        for (c, info) in clients.drain(..) {
            if info.loop_index == busiest && closed_ids.len() < 5 {
                closed_ids.insert(info.id);
                drop(c);
            } else {
                kept.push((c, info));
            }
        }
        clients = kept;
        assert_eq!(closed_ids.len(), 5, "{ctx}: {counts:?}");
        for _ in 0..5 {
            let (id, err) = expect_closed(&rx);
            assert!(closed_ids.remove(&id), "{ctx}: unexpected close of {id}");
            assert_eq!(err, None);
        }
        let want = counts[busiest] - 5;
        assert!(
            wait_until(TIMEOUT, || srv.handle.loop_connections(busiest) == want),
            "{ctx}: loop {busiest} count did not drop to {want}"
        );
        for _ in 0..4 {
            let mut c = Client::connect(&addr).expect("connect");
            let info = expect_opened(&rx);
            assert_eq!(
                info.loop_index, busiest,
                "{ctx}: new connection goes to the least loaded loop {busiest} \
                 (loads before closing: {counts:?})"
            );
            echo_check(&mut c, b"lc");
            clients.push((c, info));
        }
    }
    let open = clients.len();
    drop(clients);
    let closes = recv_n(&rx, open, TIMEOUT, "closes after the clients left");
    assert!(closes.iter().all(|e| matches!(e, Ev::Closed(_, None))));
    assert_eq!(srv.stop(), Ok(()), "{ctx}");
}

#[test]
fn balance_round_robin() {
    for loops in 2..=4 {
        balance_run(LoadBalance::RoundRobin, loops);
    }
}

#[test]
fn balance_least_connections() {
    for loops in 2..=4 {
        balance_run(LoadBalance::LeastConnections, loops);
    }
}

#[test]
fn balance_random() {
    for loops in 2..=4 {
        balance_run(LoadBalance::Random, loops);
    }
}

// ----- 3. reuseport ------------------------------------------------------------------------

#[test]
fn reuseport_spreads_over_loops() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0?reuseport=true")
        .unwrap()
        .loops(Loops::Fixed(2))
        .build()
        .unwrap();
    let addr = server.local_addrs()[0].inet().expect("inet");
    assert_ne!(addr.port(), 0, "reuseport listener has a real port");
    assert_eq!(
        server.local_addrs().len(),
        1,
        "one address, however many sockets"
    );
    let (srv, rx) = probe_server(server, false);

    let mut clients = Vec::new();
    let mut per_loop = [0usize; 2];
    // The kernel picks the socket by a hash of the connection: with 64 connections both
    // loops get some with overwhelming probability; open more (bounded) if not.
    while clients.len() < 512 {
        for _ in 0..64 {
            let mut c = Client::connect(&NetAddr::Inet(addr)).expect("connect");
            let info = expect_opened(&rx);
            assert_eq!(info.addr_index, 0);
            assert_eq!(
                info.peer.as_ref().ok(),
                Some(&c.local_addr().unwrap()),
                "opened event belongs to the client just connected"
            );
            per_loop[info.loop_index] += 1;
            echo_check(&mut c, format!("conn {}", clients.len()).as_bytes());
            clients.push(c);
        }
        if per_loop.iter().all(|&n| n > 0) {
            break;
        }
    }
    assert!(
        per_loop.iter().all(|&n| n > 0),
        "both reuseport sockets accepted connections: {per_loop:?}"
    );
    assert_eq!(srv.handle.connections(), clients.len());
    drop(clients);
    assert_eq!(srv.stop(), Ok(()));
    // Shutdown closes every connection; count the closes that were reported.
    let closed = rx
        .try_iter()
        .filter(|e| matches!(e, Ev::Closed(..)))
        .count();
    assert_eq!(
        closed,
        per_loop.iter().sum::<usize>(),
        "every connection closed"
    );
}

// ----- 4. partial reads and writes ---------------------------------------------------------

/// Sends `data` in odd-sized writes on a clone of `c`, then half-closes; meanwhile reads
/// on `c` until EOF. Returns what was read.
fn send_and_collect(c: &mut Client, data: Arc<Vec<u8>>, sizes: &'static [usize]) -> Vec<u8> {
    let mut w = c.try_clone().expect("clone");
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut off = 0;
        let mut k = 0;
        while off < data.len() {
            let n = sizes[k % sizes.len()].min(data.len() - off);
            w.write_all(&data[off..off + n])?;
            off += n;
            k += 1;
        }
        w.shutdown(Shutdown::Write)
    });
    let got = c.read_to_eof(64 << 20).expect("read until EOF");
    writer.join().expect("writer thread").expect("writes");
    got
}

const ODD_SIZES: &[usize] = &[1, 7919, 65_536, 333, 100_003, 2, 4095, 999, 1001, 31_337];

fn big_echo(server: Server, what: &str) {
    let srv = TestServer::start(server, |_| Echo);
    let data = Arc::new(pattern(4 << 20, 0xEC40));
    let mut c = Client::connect(srv.addr(0)).expect("connect");
    let got = send_and_collect(&mut c, data.clone(), ODD_SIZES);
    assert_same_bytes(&got, &data, what);
    assert_eq!(srv.stop(), Ok(()));
}

#[test]
fn large_echo_tcp() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    big_echo(server, "4 MiB echo over TCP");
}

#[test]
fn large_echo_unix_small_read_buffer() {
    let path = unique_sock_path("echo");
    let server = Server::builder()
        .listen(&format!("unix://{}", path.display()))
        .unwrap()
        .loops(Loops::Fixed(2))
        .read_buffer(1024)
        .build()
        .unwrap();
    big_echo(server, "4 MiB echo over a unix socket, 1 KiB reads");
    assert!(!path.exists());
}

const FRAME: usize = 1000;
const FRAMED_TOTAL: usize = 1 << 20;

#[derive(Debug, Default)]
struct FrameState {
    frames: usize,
    consumed: usize,
    data_calls: usize,
    partial_calls: usize,
    /// `data` calls whose input was not exactly the bytes after those consumed so far.
    mismatches: usize,
}

#[derive(Debug)]
struct FrameReport {
    frames: usize,
    consumed: usize,
    data_calls: usize,
    partial_calls: usize,
    mismatches: usize,
    leftover: Vec<u8>,
    is_eof: bool,
}

/// Consumes whole 1000-byte frames only, echoing each one separately.
struct Frames {
    tx: Sender<FrameReport>,
    expect: Arc<Vec<u8>>,
}

impl Handler for Frames {
    type State = FrameState;

    fn data(&mut self, conn: &mut Conn<'_, FrameState>) -> Action {
        let off = conn.state.consumed;
        let len = conn.input().len();
        let ok = self.expect.get(off..off + len) == Some(conn.input());
        let whole = len / FRAME * FRAME;
        {
            let (input, mut out) = conn.split();
            for frame in input[..whole].chunks(FRAME) {
                out.write(frame);
            }
        }
        conn.consume(whole);
        let st = &mut *conn.state;
        st.data_calls += 1;
        st.partial_calls += usize::from(len % FRAME != 0);
        st.mismatches += usize::from(!ok);
        st.frames += whole / FRAME;
        st.consumed += whole;
        Action::None
    }

    fn eof(&mut self, conn: &mut Conn<'_, FrameState>) -> Action {
        let st = &*conn.state;
        let _ = self.tx.send(FrameReport {
            frames: st.frames,
            consumed: st.consumed,
            data_calls: st.data_calls,
            partial_calls: st.partial_calls,
            mismatches: st.mismatches,
            leftover: conn.input().to_vec(),
            is_eof: conn.is_eof(),
        });
        Action::Close
    }
}

#[test]
fn unconsumed_input_is_kept_across_data_calls() {
    let data = Arc::new(pattern(FRAMED_TOTAL, 0xF4A3E));
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let expect = data.clone();
    let srv = TestServer::start(server, move |_| Frames {
        tx: tx.clone(),
        expect: expect.clone(),
    });
    let mut c = Client::connect(srv.addr(0)).expect("connect");
    if let Client::Tcp(s) = &c {
        s.set_nodelay(true).unwrap();
    }
    const SIZES: &[usize] = &[1, 999, 1001, 4093, 17, 65_537, 3, 1999, 12_345];
    let got = send_and_collect(&mut c, data.clone(), SIZES);

    let whole = FRAMED_TOTAL / FRAME * FRAME;
    assert_same_bytes(&got, &data[..whole], "echo of whole frames");
    let r = recv(&rx, TIMEOUT, "frame report at EOF");
    assert_eq!(r.frames, FRAMED_TOTAL / FRAME, "{r:?}");
    assert_eq!(r.consumed, whole);
    assert_eq!(
        r.mismatches, 0,
        "input after a partial consume lost or repeated bytes"
    );
    assert!(r.is_eof, "is_eof() in eof");
    assert_eq!(
        r.leftover,
        &data[whole..],
        "trailing partial frame is still unconsumed at EOF"
    );
    assert_eq!(r.leftover.len(), FRAMED_TOTAL % FRAME);
    assert!(r.data_calls >= 2, "{r:?}");
    assert!(r.partial_calls >= 1, "{r:?}");
    assert_eq!(srv.stop(), Ok(()));
}

// ----- 5. half-close -----------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum HcEv {
    Data(Vec<u8>),
    Eof(usize),
    Closed(Option<String>),
}

/// Counts input; at EOF answers with a summary and half-closes (eof returns `None`).
struct Summary {
    tx: Sender<HcEv>,
}

impl Handler for Summary {
    type State = usize;

    fn data(&mut self, conn: &mut Conn<'_, usize>) -> Action {
        let n = conn.input().len();
        *conn.state += n;
        conn.consume(n);
        Action::None
    }

    fn eof(&mut self, conn: &mut Conn<'_, usize>) -> Action {
        let _ = self.tx.send(HcEv::Eof(*conn.state));
        let msg = format!("got {} bytes\n", *conn.state);
        conn.write(msg.as_bytes());
        conn.shutdown_write();
        Action::None
    }

    fn closed(&mut self, _conn: &mut Conn<'_, usize>, err: Option<Error>) {
        let _ = self.tx.send(HcEv::Closed(err.map(|e| e.to_string())));
    }
}

#[test]
fn half_close_from_client() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Summary { tx: tx.clone() });
    let mut c = Client::connect(srv.addr(0)).expect("connect");
    let data = pattern(300_001, 5);
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let got = c.read_to_eof(1 << 20).expect("read to EOF");
    assert_eq!(String::from_utf8_lossy(&got), "got 300001 bytes\n");
    assert_eq!(recv(&rx, TIMEOUT, "eof"), HcEv::Eof(300_001));
    assert_eq!(recv(&rx, TIMEOUT, "closed"), HcEv::Closed(None));
    assert_eq!(srv.stop(), Ok(()));
    assert!(rx.try_iter().next().is_none(), "nothing after closed");
}

/// Greets, half-closes at once, and reports what it still receives.
struct Greeter {
    tx: Sender<HcEv>,
}

impl Handler for Greeter {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(b"hello\n");
        conn.shutdown_write();
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(HcEv::Data(conn.input().to_vec()));
        let n = conn.input().len();
        conn.consume(n);
        // Writing after shutdown_write is ignored, not an error.
        conn.write(b"ignored");
        Action::None
    }

    fn eof(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(HcEv::Eof(0));
        Action::Close
    }

    fn closed(&mut self, _conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self.tx.send(HcEv::Closed(err.map(|e| e.to_string())));
    }
}

#[test]
fn half_close_from_server() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Greeter { tx: tx.clone() });
    let mut c = Client::connect(srv.addr(0)).expect("connect");
    let got = c.read_to_eof(1024).expect("greeting then EOF");
    assert_eq!(got, b"hello\n");

    // The server's reading side is still open.
    let msg = b"still here after your EOF";
    c.write_all(msg).unwrap();
    let mut seen = Vec::new();
    while seen.len() < msg.len() {
        match recv(&rx, TIMEOUT, "data after the server's half-close") {
            HcEv::Data(d) => seen.extend_from_slice(&d),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, msg);
    c.write_all(b"!").unwrap();
    assert_eq!(recv(&rx, TIMEOUT, "more data"), HcEv::Data(b"!".to_vec()));
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(recv(&rx, TIMEOUT, "eof"), HcEv::Eof(0));
    assert_eq!(recv(&rx, TIMEOUT, "closed"), HcEv::Closed(None));
    c.expect_eof();
    assert_eq!(srv.stop(), Ok(()));
}

// ----- 6. close flushes pending output -----------------------------------------------------

const BLAST: usize = 8 << 20;

/// How [`Blast`] closes.
#[derive(Clone, Copy)]
enum CloseBy {
    /// A copy of the payload, then `Action::Close`.
    Action,
    /// Zero-copy output, then `conn.close()`.
    Method,
    /// Zero-copy output, then `conn.close_with(err)`.
    WithError,
}

/// Writes a big payload on `opened` and closes at once.
struct Blast {
    tx: Sender<(ConnId, Option<String>)>,
    payload: Bytes,
    by: CloseBy,
}

impl Handler for Blast {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        match self.by {
            CloseBy::Action => {
                conn.write(&self.payload);
                return Action::Close;
            }
            CloseBy::Method => {
                conn.write_bytes(self.payload.clone());
                conn.close();
            }
            CloseBy::WithError => {
                conn.write_bytes(self.payload.clone());
                conn.close_with(Error::layer("blast over"));
            }
        }
        Action::None
    }

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self.tx.send((conn.id(), err.map(|e| e.to_string())));
    }
}

fn close_flushes(by: CloseBy) {
    let payload = Bytes::from(pattern(BLAST, 0xB1A57));
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let p = payload.clone();
    let srv = TestServer::start(server, move |_| Blast {
        tx: tx.clone(),
        payload: p.clone(),
        by,
    });
    let mut c = small_window_client(srv.tcp_addr(0));

    // Read the start slowly, in small pieces.
    let mut got = Vec::with_capacity(BLAST);
    let mut small = [0u8; 512];
    while got.len() < 64 * 1024 {
        let n = c.read(&mut small).expect("read");
        assert!(n > 0, "EOF after {} bytes", got.len());
        got.extend_from_slice(&small[..n]);
    }
    // 8 MiB cannot fit in the kernel's buffers (the send buffer grows to tcp_wmem's
    // maximum, 4 MiB by default, and the client's window is 16 KiB): the server still
    // holds output, so the connection cannot be closed yet.
    if max_tcp_send_buffer() + (256 << 10) < BLAST {
        assert!(
            matches!(rx.try_recv(), Err(TryRecvError::Empty)),
            "closed fired before the output was flushed"
        );
    } else {
        eprintln!("note: tcp_wmem allows huge send buffers; not checking for queued output");
    }
    got.extend(c.read_to_eof(BLAST).expect("rest of the payload, then EOF"));
    assert_same_bytes(&got, &payload, "payload written before close");
    let (_, err) = recv(&rx, TIMEOUT, "closed");
    let want = matches!(by, CloseBy::WithError).then(|| "blast over".to_string());
    assert_eq!(
        err, want,
        "close after flushing: clean, or the handler's own error"
    );
    assert_eq!(srv.stop(), Ok(()));
    assert_eq!(rx.try_iter().count(), 0, "closed fired once");
}

#[test]
fn close_action_flushes_pending_output() {
    close_flushes(CloseBy::Action);
}

#[test]
fn close_method_flushes_pending_zero_copy_output() {
    close_flushes(CloseBy::Method);
}

#[test]
fn close_with_flushes_then_reports_the_handlers_error() {
    close_flushes(CloseBy::WithError);
}

/// `close_with` with nothing queued closes at once, reports the error once, and leaves
/// nothing behind for the next connection in the same slot (which closes clean).
#[test]
fn close_with_reports_the_error_once_and_not_to_the_next_connection() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (srv, rx) = probe_server(server, true);
    let addr = srv.tcp_addr(0);

    // Sends `byte` on a new connection; returns what came back before EOF and `closed`'s
    // error, checking it was this connection's.
    let exchange = |byte: &[u8]| {
        let mut c = Client::from_tcp(TcpStream::connect(addr).expect("connect")).expect("client");
        let opened = expect_opened(&rx).id;
        c.write_all(byte).expect("write");
        let got = c.read_to_eof(64).expect("reply, then EOF");
        let (id, err) = expect_closed(&rx);
        assert_eq!(id, opened);
        (got, err)
    };
    let (got, err) = exchange(b"E");
    assert_eq!(got, b"bad input\n");
    assert_eq!(err.as_deref(), Some("the peer sent E"));
    // The next connection (often in the same slot) closes with `C`: clean.
    let (got, err) = exchange(b"C");
    assert_eq!(got, b"");
    assert_eq!(
        err, None,
        "no error carried over from the slot's last connection"
    );
    // A reason given before detaching instead of closing is dropped with the connection
    // (no `closed` for it), not handed to the slot's next one.
    let mut c = Client::from_tcp(TcpStream::connect(addr).expect("connect")).expect("client");
    expect_opened(&rx);
    c.write_all(b"D").expect("write");
    assert_eq!(c.read_to_eof(64).expect("EOF once detached"), b"");
    let (got, err) = exchange(b"C");
    assert_eq!(got, b"");
    assert_eq!(
        err, None,
        "the detached connection's reason was carried over"
    );
    assert!(
        rx.try_recv().is_err(),
        "no closed for the detached connection"
    );
    assert_eq!(srv.stop(), Ok(()));
}

// ----- 7. closed fires exactly once --------------------------------------------------------

#[test]
fn closed_fires_exactly_once_per_connection() {
    const N: usize = 200;
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .loops(Loops::Fixed(2))
        .build()
        .unwrap();
    let (srv, rx) = probe_server(server, true);
    let addr = srv.tcp_addr(0);

    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        let s = TcpStream::connect(addr).expect("connect");
        clients.push(Client::from_tcp(s).expect("client"));
    }
    let mut by_port: HashMap<u16, ConnId> = HashMap::new();
    for ev in recv_n(&rx, N, TIMEOUT, "opened") {
        let Ev::Opened(info) = ev else {
            panic!("unexpected {ev:?}")
        };
        let port = info.peer.expect("peer").inet().expect("inet").port();
        assert!(
            by_port.insert(port, info.id).is_none(),
            "two conns, one port"
        );
    }
    let opened: HashSet<ConnId> = by_port.values().copied().collect();
    assert_eq!(opened.len(), N, "ids are unique");

    // Close in five ways: 0 client FIN, 1 client RST, 2 server Action::Close,
    // 3 handle.close(id), 4 left open until shutdown.
    let mut kind_of: HashMap<ConnId, usize> = HashMap::new();
    let mut survivors = Vec::new();
    let mut wait_eof = Vec::new();
    for (k, mut c) in clients.into_iter().enumerate() {
        let port = c.local_addr().unwrap().inet().unwrap().port();
        let id = by_port[&port];
        let kind = k % 5;
        kind_of.insert(id, kind);
        match kind {
            0 => drop(c),
            1 => {
                if let Client::Tcp(s) = &c {
                    SockRef::from(s)
                        .set_linger(Some(Duration::ZERO))
                        .expect("SO_LINGER 0");
                }
                drop(c);
            }
            2 => {
                c.write_all(b"C").unwrap();
                wait_eof.push(c);
            }
            3 => {
                assert!(srv.handle.close(id));
                wait_eof.push(c);
            }
            _ => survivors.push(c),
        }
    }
    for mut c in wait_eof {
        c.expect_eof();
    }

    let mut closed: HashMap<ConnId, Option<String>> = HashMap::new();
    let record = |ev: Ev, closed: &mut HashMap<ConnId, Option<String>>| match ev {
        Ev::Closed(id, err) => {
            assert!(opened.contains(&id), "closed for unknown {id}");
            if let Some(prev) = closed.insert(id, err) {
                panic!("closed fired twice for {id} (first with {prev:?})");
            }
        }
        other => panic!("unexpected {other:?}"),
    };
    for ev in recv_n(&rx, N / 5 * 4, TIMEOUT, "closed for kinds 0-3") {
        record(ev, &mut closed);
    }
    for (id, err) in &closed {
        let kind = kind_of[id];
        match kind {
            1 => assert!(err.is_some(), "a reset is reported as an error ({id})"),
            4 => panic!("{id} closed before shutdown"),
            _ => assert_eq!(err, &None, "{id} (kind {kind}) closed cleanly"),
        }
    }
    assert!(
        wait_until(TIMEOUT, || srv.handle.connections() == N / 5),
        "open connections {} after closing 4/5",
        srv.handle.connections()
    );

    assert_eq!(srv.stop(), Ok(()));
    for ev in rx.try_iter() {
        record(ev, &mut closed);
    }
    assert_eq!(closed.len(), N, "closed fired for every connection");
    for (id, err) in &closed {
        if kind_of[id] == 4 {
            assert_eq!(err, &None, "{id} closed cleanly by the shutdown");
        }
    }
    assert_eq!(survivors.len(), N / 5);
    for mut c in survivors {
        c.expect_eof();
    }
}

// ----- 8. graceful shutdown ----------------------------------------------------------------

const QUEUED: usize = 4 << 20;

#[derive(Debug)]
enum ShEv {
    Opened(ConnId),
    Queued(ConnId),
    Closed(ConnId, Option<String>),
}

/// Sends a big payload when it receives `go\n`.
struct BigOnGo {
    tx: Sender<ShEv>,
    payload: Bytes,
}

impl Handler for BigOnGo {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(ShEv::Opened(conn.id()));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.input().starts_with(b"go\n") {
            conn.consume(3);
            conn.write_bytes(self.payload.clone());
            let _ = self.tx.send(ShEv::Queued(conn.id()));
        }
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .tx
            .send(ShEv::Closed(conn.id(), err.map(|e| e.to_string())));
    }
}

#[test]
fn graceful_shutdown_flushes_and_closes_everything() {
    let path = unique_sock_path("shutdown");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen(&format!("unix://{}", path.display()))
        .unwrap()
        .loops(Loops::Fixed(2))
        .build()
        .unwrap();
    let payload = Bytes::from(pattern(QUEUED, 0x5D));
    let (tx, rx) = mpsc::channel();
    let p = payload.clone();
    let srv = TestServer::start(server, move |_| BigOnGo {
        tx: tx.clone(),
        payload: p.clone(),
    });
    let tcp = srv.tcp_addr(0);
    assert!(path.exists());

    let mut busy = vec![
        small_window_client(tcp),
        Client::connect(srv.addr(1)).expect("unix connect"),
    ];
    let mut idle: Vec<Client> = (0..3)
        .map(|i| Client::connect(srv.addr(i % 2)).expect("connect"))
        .collect();
    let mut opened = HashSet::new();
    for ev in recv_n(&rx, 5, TIMEOUT, "opened") {
        let ShEv::Opened(id) = ev else {
            panic!("unexpected {ev:?}")
        };
        opened.insert(id);
    }
    for c in &mut busy {
        c.write_all(b"go\n").unwrap();
    }
    for ev in recv_n(&rx, 2, TIMEOUT, "output queued") {
        let ShEv::Queued(id) = ev else {
            panic!("unexpected {ev:?}")
        };
        assert!(opened.contains(&id), "queued on an unknown connection {id}");
    }
    assert_eq!(srv.handle.connections(), 5);

    // Shut down while 2 × 4 MiB are queued (they cannot fit in the kernel's buffers).
    srv.handle.shutdown();
    assert!(srv.handle.is_shutting_down());
    for (i, c) in busy.iter_mut().enumerate() {
        let got = c.read_to_eof(QUEUED).expect("queued output, then EOF");
        assert_same_bytes(&got, &payload, &format!("busy client {i}"));
    }
    for c in &mut idle {
        c.expect_eof();
    }
    let mut closed = HashSet::new();
    for ev in recv_n(&rx, 5, TIMEOUT, "closed for every connection") {
        let ShEv::Closed(id, err) = ev else {
            panic!("unexpected {ev:?}")
        };
        assert_eq!(err, None, "{id} closed cleanly by the shutdown");
        assert!(closed.insert(id), "closed twice: {id}");
    }
    assert_eq!(closed, opened);
    assert_eq!(
        srv.stop(),
        Ok(()),
        "serve returns Ok after a graceful shutdown"
    );
    assert_eq!(rx.try_iter().count(), 0, "no events after serve returned");

    let err = TcpStream::connect(tcp).expect_err("listener closed after shutdown");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert!(!path.exists(), "unix socket file removed");
    assert!(std::os::unix::net::UnixStream::connect(&path).is_err());
}

// ----- 9. bad addresses --------------------------------------------------------------------

#[test]
fn bad_addresses_and_bind_errors() {
    for bad in [
        "tcp://",
        "tcp://:80",
        "foo://1.2.3.4:5",
        "tcp://1.2.3.4:99999",
        "tcp://127.0.0.1:80?bogus=1",
    ] {
        match Server::builder().listen(bad) {
            Ok(_) => panic!("{bad:?} accepted"),
            Err(e) => {
                assert!(e.is_addr(), "{bad:?}: {e}");
                assert!(!e.is_bind() && !e.is_config(), "{bad:?}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(bad), "message {msg:?} names {bad:?}");
            }
        }
    }

    // A port in use, held by std and then by another wireloop server.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://127.0.0.1:{}", taken.local_addr().unwrap().port());
    let err = Server::builder()
        .listen(&addr)
        .unwrap()
        .build()
        .err()
        .expect("binding a port in use fails");
    assert!(err.is_bind(), "{err}");
    assert!(err.is_addr_in_use(), "{err}");
    assert!(err.to_string().contains(&addr), "{err} names {addr}");
    drop(taken);

    let first = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let addr = format!(
        "tcp://127.0.0.1:{}",
        first.local_addrs()[0].inet().unwrap().port()
    );
    let err = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen(&addr)
        .unwrap()
        .build()
        .err()
        .expect("a second server on a bound port fails");
    assert!(err.is_bind() && err.is_addr_in_use(), "{err}");
    assert!(err.to_string().contains(&addr), "{err} names {addr}");
    drop(first);

    // A unix path with a live listener is in use; a stale socket file is replaced.
    let path = unique_sock_path("inuse");
    let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let uaddr = format!("unix://{}", path.display());
    let err = Server::builder()
        .listen(&uaddr)
        .unwrap()
        .build()
        .err()
        .expect("a unix path with a live listener is in use");
    assert!(err.is_bind() && err.is_addr_in_use(), "{err}");
    assert!(err.to_string().contains(&uaddr), "{err} names {uaddr}");
    drop(live); // std leaves the file behind: now it is stale
    assert!(path.exists());
    let server = Server::builder()
        .listen(&uaddr)
        .unwrap()
        .build()
        .expect("a stale socket file is replaced");
    drop(server);
    assert!(
        !path.exists(),
        "an unserved server removes its socket file on drop"
    );

    let err = Server::builder()
        .build()
        .err()
        .expect("no address is an error");
    assert!(err.is_config(), "{err}");
}

// ----- 10. serving and tick ----------------------------------------------------------------

#[derive(Debug)]
enum TickEv {
    Serving {
        loop_index: usize,
        num_loops: usize,
    },
    Tick {
        loop_index: usize,
        n: usize,
        at: Instant,
    },
}

/// Ticks every 10 ms on loop 0 and shuts the server down at the 5th tick; other loops stop
/// ticking after the first (by returning `None`).
struct Ticker {
    tx: Sender<TickEv>,
    ticks: usize,
}

impl Handler for Ticker {
    type State = ();

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        let _ = self.tx.send(TickEv::Serving {
            loop_index: ctl.loop_index(),
            num_loops: ctl.num_loops(),
        });
        Action::None
    }

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::None
    }

    fn tick(&mut self, ctl: &mut Control<'_, ()>) -> (Option<Duration>, Action) {
        self.ticks += 1;
        let _ = self.tx.send(TickEv::Tick {
            loop_index: ctl.loop_index(),
            n: self.ticks,
            at: Instant::now(),
        });
        if ctl.loop_index() != 0 {
            return (None, Action::None);
        }
        let action = if self.ticks == 5 {
            Action::Shutdown
        } else {
            Action::None
        };
        // Keep asking for ticks: after Shutdown none may come.
        (Some(Duration::from_millis(10)), action)
    }
}

#[test]
fn serving_once_per_loop_and_tick_until_shutdown() {
    const LOOPS: usize = 3;
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .loops(Loops::Fixed(LOOPS))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Ticker {
        tx: tx.clone(),
        ticks: 0,
    });
    assert_eq!(
        srv.wait(TIMEOUT),
        Ok(()),
        "serve returns after Action::Shutdown"
    );

    let events: Vec<TickEv> = rx.try_iter().collect();
    let mut serving = HashMap::new();
    let mut ticks: HashMap<usize, Vec<(usize, Instant)>> = HashMap::new();
    for ev in &events {
        match *ev {
            TickEv::Serving {
                loop_index,
                num_loops,
            } => {
                assert_eq!(num_loops, LOOPS);
                assert!(
                    !ticks.contains_key(&loop_index),
                    "loop {loop_index} ticked before serving"
                );
                *serving.entry(loop_index).or_insert(0) += 1;
            }
            TickEv::Tick { loop_index, n, at } => {
                ticks.entry(loop_index).or_default().push((n, at));
            }
        }
    }
    let want: HashMap<usize, i32> = (0..LOOPS).map(|i| (i, 1)).collect();
    assert_eq!(serving, want, "serving once per loop: {events:?}");
    let t0 = &ticks[&0];
    assert_eq!(
        t0.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5],
        "loop 0 ticks exactly 5 times"
    );
    let spent = t0[4].1.duration_since(t0[0].1);
    assert!(
        spent >= Duration::from_millis(40),
        "4 intervals of 10 ms took only {spent:?}"
    );
    for i in 1..LOOPS {
        assert_eq!(
            ticks[&i].len(),
            1,
            "loop {i} ticks once, then None stops it"
        );
    }
}

// ----- extras ------------------------------------------------------------------------------

/// Queues a big payload and half-closes on `opened`; tries to write again when input comes.
struct LateWriter {
    tx: Sender<usize>,
    payload: Bytes,
}

impl Handler for LateWriter {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write_bytes(self.payload.clone());
        conn.shutdown_write();
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let n = conn.input().len();
        conn.consume(n);
        // The FIN is still waiting behind the payload: these must not be sent.
        conn.write(b"LATE");
        conn.write_bytes(Bytes::from(vec![b'L'; 4096]));
        let (_, mut out) = conn.split();
        out.write(b"LATE2");
        let _ = self.tx.send(conn.output_len());
        Action::None
    }
}

/// After `shutdown_write` "nothing more can be written", also while the FIN still waits for
/// queued output (as `Control::write` and `Handle::send` already refuse).
#[test]
fn nothing_is_written_after_shutdown_write() {
    let payload = Bytes::from(pattern(BLAST, 0x1A7E));
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        // No read pause while the payload is queued, so `data` runs while the FIN waits.
        .output_water_marks(64 << 20, 32 << 20)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let p = payload.clone();
    let srv = TestServer::start(server, move |_| LateWriter {
        tx: tx.clone(),
        payload: p.clone(),
    });
    let mut c = small_window_client(srv.tcp_addr(0));
    c.write_all(b"x").unwrap();
    let _ = recv(&rx, TIMEOUT, "data callback after shutdown_write");
    let got = c.read_to_eof(2 * BLAST).expect("payload then EOF");
    assert_same_bytes(&got, &payload, "output after shutdown_write");
    assert_eq!(srv.stop(), Ok(()));
}

#[test]
fn shutdown_before_serve_returns_promptly() {
    let path = unique_sock_path("early");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen(&format!("unix://{}", path.display()))
        .unwrap()
        .loops(Loops::Fixed(2))
        .build()
        .unwrap();
    let tcp = server.local_addrs()[0].inet().unwrap();
    server.handle().shutdown();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Ticker {
        tx: tx.clone(),
        ticks: 0,
    });
    assert_eq!(
        srv.wait(TIMEOUT),
        Ok(()),
        "serve returns after an early shutdown"
    );
    let serving = rx
        .try_iter()
        .filter(|e| matches!(e, TickEv::Serving { .. }))
        .count();
    assert_eq!(serving, 2, "every loop still started");
    assert!(TcpStream::connect(tcp).is_err(), "listener closed");
    assert!(!path.exists(), "unix socket file removed");
}
