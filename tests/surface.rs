//! The newer parts of the API on real loopback sockets: UDP listeners, detaching a
//! connection, loop timers, idle timeouts, the connection limit, socket options, the
//! write hooks and the statistics.
//!
//! Every server listens on port 0, is shut down and joined; every wait is bounded.

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_same_bytes, pattern, recv, recv_n, wait_until, Client, TestServer, TIMEOUT};
use wireloop::{
    Action, Bytes, Conn, Control, Datagram, Detached, DetachedStream, Handler, Loops, Server,
    Stats, TimerId,
};

/// Bound for replies that should come at once.
const SHORT: Duration = Duration::from_secs(5);

// ----- UDP ------------------------------------------------------------------------------

/// Echoes datagrams; a truncated one is answered with `T:<delivered length>`.
struct UdpEcho;

impl Handler for UdpEcho {
    type State = ();

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }

    fn datagram(&mut self, d: &mut Datagram<'_>) -> Action {
        let res = if d.truncated() {
            d.reply(format!("T:{}", d.data().len()).as_bytes())
        } else {
            d.reply(d.data())
        };
        if let Err(e) = res {
            eprintln!("udp reply failed: {e}");
        }
        Action::None
    }
}

/// A UDP client socket on `ip` with a bounded read timeout.
fn udp_client(ip: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind udp client");
    s.set_read_timeout(Some(SHORT)).expect("udp read timeout");
    s
}

/// Receives one datagram on `s` and checks that it came from `from` with payload `want`.
#[track_caller]
fn expect_datagram(s: &UdpSocket, from: SocketAddr, want: &[u8], what: &str) {
    let mut buf = [0u8; 2048];
    let (n, src) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: no reply: {e}"));
    assert_eq!(src, from, "{what}: reply from the wrong address");
    assert_eq!(
        &buf[..n],
        want,
        "{what}: wrong reply (got {:?})",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// 50 peers, 20 rounds: in each round every peer sends one datagram, then every peer must
/// get exactly its own datagram back (so at most 50 are in flight and no buffer overflows).
fn udp_echo_rounds(server: SocketAddr, client_ip: IpAddr) {
    const PEERS: usize = 50;
    const ROUNDS: usize = 20;
    let socks: Vec<UdpSocket> = (0..PEERS).map(|_| udp_client(client_ip)).collect();
    let locals: HashSet<SocketAddr> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    assert_eq!(locals.len(), PEERS, "distinct peers");
    for round in 0..ROUNDS {
        for (p, s) in socks.iter().enumerate() {
            let msg = format!("peer {p} round {round} {}", "x".repeat(p));
            s.send_to(msg.as_bytes(), server).expect("udp send");
        }
        for (p, s) in socks.iter().enumerate() {
            let msg = format!("peer {p} round {round} {}", "x".repeat(p));
            expect_datagram(
                s,
                server,
                msg.as_bytes(),
                &format!("peer {p} round {round}"),
            );
        }
    }
}

fn udp_echo_server(addr: &str) -> TestServer {
    let server = Server::builder()
        .listen(addr)
        .expect("listen")
        .build()
        .expect("build");
    TestServer::start(server, |_| UdpEcho)
}

#[test]
fn udp_echo_v4_and_v6_many_peers() {
    let srv = udp_echo_server("udp://127.0.0.1:0");
    udp_echo_rounds(srv.tcp_addr(0), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let h = srv.handle.clone();
    assert!(
        wait_until(SHORT, || h.stats().datagrams_out == 1000),
        "datagrams_out: {:?}",
        h.stats()
    );
    let s = h.stats();
    assert_eq!((s.datagrams_in, s.datagrams_truncated), (1000, 0), "{s:?}");
    assert_eq!((s.accepted, s.bytes_in, s.bytes_out), (0, 0, 0), "{s:?}");
    srv.stop().unwrap();

    let srv = udp_echo_server("udp4://127.0.0.1:0");
    let c = udp_client(IpAddr::V4(Ipv4Addr::LOCALHOST));
    c.send_to(b"v4 only", srv.tcp_addr(0)).unwrap();
    expect_datagram(&c, srv.tcp_addr(0), b"v4 only", "udp4");
    srv.stop().unwrap();

    if !common::ipv6_loopback_available() {
        println!("note: ::1 is unavailable here; skipping the IPv6 UDP echo");
        return;
    }
    let srv = udp_echo_server("udp6://[::1]:0");
    let addr = srv.tcp_addr(0);
    assert!(addr.is_ipv6(), "{addr}");
    udp_echo_rounds(addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
    let h = srv.handle.clone();
    assert!(wait_until(SHORT, || h.stats().datagrams_out == 1000));
    srv.stop().unwrap();
}

#[test]
fn udp_max_datagram_truncates_and_counts() {
    let server = Server::builder()
        .listen("udp://127.0.0.1:0")
        .unwrap()
        .max_datagram(100)
        .build()
        .unwrap();
    let srv = TestServer::start(server, |_| UdpEcho);
    let addr = srv.tcp_addr(0);
    let c = udp_client(IpAddr::V4(Ipv4Addr::LOCALHOST));

    let big = pattern(500, 7);
    c.send_to(&big, addr).unwrap();
    expect_datagram(&c, addr, b"T:100", "500-byte datagram");

    // Exactly the limit is delivered whole; one byte more is truncated.
    let exact = pattern(100, 8);
    c.send_to(&exact, addr).unwrap();
    expect_datagram(&c, addr, &exact, "100-byte datagram");
    c.send_to(&pattern(101, 9), addr).unwrap();
    expect_datagram(&c, addr, b"T:100", "101-byte datagram");

    let h = srv.handle.clone();
    assert!(wait_until(SHORT, || h.stats().datagrams_out == 3));
    let s = h.stats();
    assert_eq!((s.datagrams_in, s.datagrams_truncated), (3, 2), "{s:?}");
    srv.stop().unwrap();
}

/// TCP: answers each line with `tcp<addr_index>:<line>`. UDP: answers each datagram with
/// `udp<addr_index>:<payload>`, sent with `send_to` to the datagram's peer.
struct Mixed;

impl Handler for Mixed {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        while let Some(pos) = conn.input().iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&conn.input()[..pos]).into_owned();
            conn.consume(pos + 1);
            let answer = format!("tcp{}:{line}\n", conn.addr_index());
            conn.write(answer.as_bytes());
        }
        Action::None
    }

    fn datagram(&mut self, d: &mut Datagram<'_>) -> Action {
        let mut answer = format!("udp{}:", d.addr_index()).into_bytes();
        answer.extend_from_slice(d.data());
        if let Err(e) = d.send_to(d.peer(), &answer) {
            eprintln!("udp send_to failed: {e}");
        }
        Action::None
    }
}

#[test]
fn udp_and_tcp_listeners_share_a_handler() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen("udp://127.0.0.1:0")
        .unwrap()
        .listen("udp://127.0.0.1:0")
        .unwrap()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let srv = TestServer::start(server, |_| Mixed);

    for i in [0, 3] {
        let mut c = Client::connect(srv.addr(i)).unwrap();
        c.write_all(b"hello\nworld\n").unwrap();
        let want = format!("tcp{i}:hello\ntcp{i}:world\n");
        let got = c.read_n(want.len()).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
    let u = udp_client(IpAddr::V4(Ipv4Addr::LOCALHOST));
    for i in [1, 2] {
        let addr = srv.tcp_addr(i);
        u.send_to(b"ping", addr).unwrap();
        expect_datagram(&u, addr, format!("udp{i}:ping").as_bytes(), "udp");
    }
    let h = srv.handle.clone();
    assert!(wait_until(SHORT, || h.stats().datagrams_out == 2));
    let s = h.stats();
    assert_eq!((s.accepted, s.datagrams_in), (2, 2), "{s:?}");
    srv.stop().unwrap();
}

// ----- detach ---------------------------------------------------------------------------

const DETACH_PAYLOAD: &[u8] = b"first\nsecond\nthird";
const GREETING: &[u8] = b"HELLO\n";

/// Greets, waits for the whole payload, consumes its first line, queues a large blob and
/// an acknowledgement, and detaches.
struct Detacher {
    blob: Bytes,
    tx: Sender<Detached>,
    closed: Arc<AtomicUsize>,
}

impl Handler for Detacher {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(GREETING);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.input().len() < DETACH_PAYLOAD.len() {
            return Action::None;
        }
        let pos = conn.input().iter().position(|&b| b == b'\n').unwrap();
        let line = conn.input()[..pos].to_vec();
        conn.consume(pos + 1);
        conn.write_bytes(self.blob.clone());
        conn.write(b"ACK ");
        conn.write(&line);
        conn.write(b"\n");
        Action::Detach
    }

    fn detached(&mut self, _conn: &mut Conn<'_, ()>, d: Detached) {
        let _ = self.tx.send(d);
    }

    fn closed(&mut self, _conn: &mut Conn<'_, ()>, _err: Option<wireloop::Error>) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn detach_flushes_output_and_hands_over_unconsumed_input() {
    let blob = Bytes::from(pattern(4 << 20, 33));
    let (tx, rx) = mpsc::channel();
    let closed = Arc::new(AtomicUsize::new(0));
    // A small send buffer, so the blob is still queued in the loop when `data` returns
    // Detach: the loop must flush it before handing the socket over.
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .send_buffer_size(32 << 10)
        .build()
        .unwrap();
    let (b, c) = (blob.clone(), closed.clone());
    let srv = TestServer::start(server, move |_| Detacher {
        blob: b.clone(),
        tx: tx.clone(),
        closed: c.clone(),
    });

    let mut client = Client::connect(srv.addr(0)).unwrap();
    client.write_all(DETACH_PAYLOAD).unwrap();
    let got = client.read_n(GREETING.len()).unwrap();
    assert_eq!(got, GREETING);
    let got = client.read_n(blob.len()).unwrap();
    assert_same_bytes(&got, &blob, "output queued before the detach");
    let got = client.read_n(b"ACK first\n".len()).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "ACK first\n");

    let d = recv(&rx, TIMEOUT, "the detached connection");
    let h = srv.handle.clone();
    assert!(wait_until(SHORT, || h.connections() == 0));

    // The rest of the conversation happens on a plain thread with the blocking socket.
    let worker = thread::spawn(move || -> io::Result<(Vec<u8>, Vec<u8>)> {
        let Detached { mut stream, input } = d;
        match &stream {
            DetachedStream::Tcp(s) => s.set_read_timeout(Some(TIMEOUT))?,
            DetachedStream::Unix(s) => s.set_read_timeout(Some(TIMEOUT))?,
        }
        stream.write_all(b"WELCOME\n")?;
        let mut heard = Vec::new();
        let mut buf = [0u8; 256];
        while !heard.ends_with(b"bye\n") {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            heard.extend_from_slice(&buf[..n]);
        }
        stream.write_all(format!("ok {}\n", input.len()).as_bytes())?;
        Ok((input, heard))
        // The stream drops here: the client sees EOF.
    });
    let got = client.read_n(b"WELCOME\n".len()).unwrap();
    assert_eq!(got, b"WELCOME\n");
    client.write_all(b"more data\nbye\n").unwrap();
    let rest = client.read_to_eof(1024).unwrap();
    let (input, heard) = worker.join().unwrap().expect("detached conversation");
    assert_eq!(String::from_utf8_lossy(&input), "second\nthird");
    assert_eq!(String::from_utf8_lossy(&heard), "more data\nbye\n");
    assert_eq!(String::from_utf8_lossy(&rest), "ok 12\n");

    let s = srv.handle.stats();
    srv.stop().unwrap();
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "closed fired for a detached connection"
    );
    assert_eq!(
        (s.accepted, s.detached, s.closed, s.open),
        (1, 1, 0, 0),
        "{s:?}"
    );
}

// ----- timers ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum TimerEvent {
    Label(&'static str),
    Cancel { first: bool, second: bool },
    Scheduled(usize),
    EveryStopped { first: bool, second: bool, n: usize },
}

struct TimerHandler {
    tx: Sender<TimerEvent>,
    every_count: Arc<AtomicUsize>,
}

impl Handler for TimerHandler {
    type State = ();

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::None
    }

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        for (ms, label) in [(30, "c"), (10, "a"), (20, "b")] {
            let tx = self.tx.clone();
            ctl.after(Duration::from_millis(ms), move |_| {
                let _ = tx.send(TimerEvent::Label(label));
            });
        }
        let tx = self.tx.clone();
        let doomed = ctl.after(Duration::from_millis(15), move |_| {
            let _ = tx.send(TimerEvent::Label("cancelled"));
        });
        let first = ctl.cancel(doomed);
        let second = ctl.cancel(doomed);
        let _ = self.tx.send(TimerEvent::Cancel { first, second });

        // A periodic timer that cancels itself on its fifth run.
        let own_id: Rc<Cell<Option<TimerId>>> = Rc::default();
        let (tx, count, id_cell) = (self.tx.clone(), self.every_count.clone(), own_id.clone());
        let id = ctl.every(Duration::from_millis(5), move |ctl| {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 5 {
                let id = id_cell.get().expect("id set after every()");
                let first = ctl.cancel(id);
                let second = ctl.cancel(id);
                let _ = tx.send(TimerEvent::EveryStopped { first, second, n });
            }
        });
        own_id.set(Some(id));
        let _ = self.tx.send(TimerEvent::Scheduled(ctl.timers()));
        Action::None
    }
}

#[test]
fn timers_fire_in_order_cancel_and_repeat() {
    let (tx, rx) = mpsc::channel();
    let every_count = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let count = every_count.clone();
    let srv = TestServer::start(server, move |_| TimerHandler {
        tx: tx.clone(),
        every_count: count.clone(),
    });

    let mut labels = Vec::new();
    let mut stopped = None;
    let mut others = Vec::new();
    let deadline = Instant::now() + SHORT;
    while labels.len() < 3 || stopped.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(TimerEvent::Label(l)) => labels.push(l),
            Ok(e @ TimerEvent::EveryStopped { .. }) => stopped = Some(e),
            Ok(e) => others.push(e),
            Err(e) => panic!("timers: {e:?}; labels {labels:?}, stopped {stopped:?}"),
        }
    }
    // Timers fire in deadline order, so the cancelled one (15 ms) would have come before
    // "b" (20 ms) and "c" (30 ms).
    assert_eq!(labels, ["a", "b", "c"]);
    assert_eq!(
        others,
        [
            TimerEvent::Cancel {
                first: true,
                second: false
            },
            TimerEvent::Scheduled(4)
        ]
    );
    assert_eq!(
        stopped,
        Some(TimerEvent::EveryStopped {
            first: true,
            second: false,
            n: 5
        })
    );
    // Asserting an absence: the only sleep in this file.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        every_count.load(Ordering::SeqCst),
        5,
        "every() ran after cancel"
    );
    srv.stop().unwrap();
    assert!(rx.try_iter().next().is_none(), "a timer fired late");
}

/// Schedules `MANY` one-shot timers with pseudo-random delays from `serving`, reporting
/// each one's deadline bounds (the `Instant`s just before and after `after` was called,
/// plus the delay) and, when it fires, its index and the time.
struct ManyTimers {
    bounds: Sender<Vec<(Instant, Instant)>>,
    fired: Sender<(usize, Instant)>,
}

const MANY: usize = 10_000;

impl Handler for ManyTimers {
    type State = ();

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::None
    }

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        let mut rng = 0x5EED_u64;
        let mut bounds = Vec::with_capacity(MANY);
        for i in 0..MANY {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let delay = Duration::from_micros(rng % 200_001);
            let tx = self.fired.clone();
            let lo = Instant::now() + delay;
            ctl.after(delay, move |_| {
                let _ = tx.send((i, Instant::now()));
            });
            bounds.push((lo, Instant::now() + delay));
        }
        let _ = self.bounds.send(bounds);
        Action::None
    }
}

#[test]
fn ten_thousand_timers_fire_once_in_deadline_order() {
    let (btx, brx) = mpsc::channel();
    let (ftx, frx) = mpsc::channel();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let start = Instant::now();
    let srv = TestServer::start(server, move |_| ManyTimers {
        bounds: btx.clone(),
        fired: ftx.clone(),
    });
    let bounds = recv(&brx, SHORT, "the timer deadlines");
    let fired = recv_n(&frx, MANY, SHORT, "timers firing");
    let all_done = start.elapsed();
    assert!(all_done < SHORT, "took {all_done:?}");

    let mut seen = vec![false; MANY];
    // Deadlines are only known within [lo, hi]; a timer that fires after another must not
    // have a deadline certainly earlier than that one's.
    let mut max_lo: Option<(usize, Instant)> = None;
    for (pos, &(i, at)) in fired.iter().enumerate() {
        assert!(
            !std::mem::replace(&mut seen[i], true),
            "timer {i} fired twice"
        );
        let (lo, hi) = bounds[i];
        assert!(at >= lo, "timer {i} fired {:?} early", lo - at);
        if let Some((j, prev_lo)) = max_lo {
            assert!(
                hi >= prev_lo,
                "timer {i} (fired #{pos}) has a deadline {:?} before timer {j}'s, which fired earlier",
                prev_lo - hi
            );
        }
        if max_lo.is_none_or(|(_, l)| lo > l) {
            max_lo = Some((i, lo));
        }
    }
    srv.stop().unwrap();
    assert_eq!(frx.try_iter().count(), 0, "timers fired more than once");
}

// ----- idle timeout ---------------------------------------------------------------------

/// Echo; connections on listener 1 have no idle timeout. Reports `closed` as
/// `(addr_index, is_idle_timeout)`.
struct IdleEcho {
    tx: Sender<(usize, bool)>,
}

impl Handler for IdleEcho {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.addr_index() == 1 {
            conn.set_idle_timeout(None);
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<wireloop::Error>) {
        let idle = err.as_ref().is_some_and(|e| e.is_idle_timeout());
        let _ = self.tx.send((conn.addr_index(), idle));
    }
}

#[track_caller]
fn echo_byte(c: &mut Client, b: u8) {
    c.write_all(&[b]).unwrap();
    assert_eq!(c.read_n(1).unwrap(), [b]);
}

#[test]
fn idle_timeout_closes_only_silent_connections() {
    let (tx, rx) = mpsc::channel();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .idle_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let srv = TestServer::start(server, move |_| IdleEcho { tx: tx.clone() });

    let t0 = Instant::now();
    let mut silent = Client::connect(srv.addr(0)).unwrap();
    let mut chatty = Client::connect(srv.addr(0)).unwrap();
    let mut exempt = Client::connect(srv.addr(1)).unwrap();
    // The silent client waits for its EOF on a thread of its own.
    let waiter = thread::spawn(move || {
        let mut b = [0u8; 16];
        let r = silent.read(&mut b);
        (r.map_err(|e| e.kind()), t0.elapsed())
    });
    // The chatty one sends a byte every 50 ms for about a second (the sleep paces the
    // client; it synchronises nothing).
    let chat_until = Instant::now() + Duration::from_millis(1000);
    let mut i = 0u8;
    while Instant::now() < chat_until {
        echo_byte(&mut chatty, i);
        i = i.wrapping_add(1);
        thread::sleep(Duration::from_millis(50));
    }
    let (res, after) = waiter.join().unwrap();
    assert_eq!(res, Ok(0), "the silent client should see EOF");
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_millis(1000),
        "silent connection closed after {after:?}"
    );
    assert_eq!(recv(&rx, SHORT, "closed of the silent one"), (0, true));

    // Well past the timeout: the chatty and the exempt connections still work.
    echo_byte(&mut chatty, b'c');
    echo_byte(&mut exempt, b'e');
    assert!(rx.try_recv().is_err(), "another connection was closed");
    let s = srv.handle.stats();
    assert_eq!((s.idle_closed, s.open, s.closed), (1, 2, 1), "{s:?}");

    srv.stop().unwrap();
    let mut rest: Vec<_> = rx.try_iter().collect();
    rest.sort();
    assert_eq!(rest, [(0, false), (1, false)]);
}

// ----- connection limit -----------------------------------------------------------------

/// Whether the connection is served: an echo works, or it was refused (EOF or reset).
fn is_served(c: &mut Client) -> bool {
    c.set_timeouts(Some(SHORT)).unwrap();
    if c.write_all(b"ping").is_err() {
        return false;
    }
    let mut b = [0u8; 4];
    match c.read_exact(&mut b) {
        Ok(()) => {
            assert_eq!(&b, b"ping");
            true
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                ),
                "a refused connection should see EOF or a reset, not {e}"
            );
            false
        }
    }
}

#[test]
fn max_connections_refuses_the_excess() {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .max_connections(5)
        .build()
        .unwrap();
    let srv = TestServer::start(server, |_| common::Echo);
    let h = srv.handle.clone();

    let mut clients: Vec<Client> = (0..8)
        .map(|_| Client::connect(srv.addr(0)).unwrap())
        .collect();
    let t = Instant::now();
    let served: Vec<bool> = clients.iter_mut().map(is_served).collect();
    assert!(t.elapsed() < SHORT, "refusing took {:?}", t.elapsed());
    assert_eq!(served.iter().filter(|&&s| s).count(), 5, "{served:?}");
    assert!(
        wait_until(SHORT, || h.stats().refused == 3),
        "{:?}",
        h.stats()
    );
    assert_eq!(h.connections(), 5);

    // Close two served connections; once the server has let them go, new ones are served.
    let mut kept: Vec<Client> = clients
        .into_iter()
        .zip(&served)
        .filter(|(_, &s)| s)
        .map(|(c, _)| c)
        .collect();
    kept.truncate(3);
    assert!(
        wait_until(SHORT, || h.connections() == 3),
        "{:?}",
        h.stats()
    );
    let mut fresh: Vec<Client> = (0..2)
        .map(|_| Client::connect(srv.addr(0)).unwrap())
        .collect();
    for c in &mut fresh {
        assert!(is_served(c), "a connection under the limit was refused");
    }
    for c in &mut kept {
        assert!(is_served(c));
    }
    // Full again: the next one is refused.
    let mut extra = Client::connect(srv.addr(0)).unwrap();
    assert!(!is_served(&mut extra));
    assert!(
        wait_until(SHORT, || h.stats().refused == 4),
        "{:?}",
        h.stats()
    );
    let s = h.stats();
    assert_eq!((s.accepted, s.open), (7, 5), "{s:?}");
    srv.stop().unwrap();
}

// ----- socket options -------------------------------------------------------------------

#[derive(Debug)]
struct Opts {
    nodelay: bool,
    keepalive: bool,
    keepalive_time: Duration,
    recv_buffer: usize,
}

/// Reports the accepted socket's options; on listener 1 it first changes them per
/// connection (no delay off, keep-alive after 9 s).
struct OptsReporter {
    tx: Sender<io::Result<Opts>>,
}

impl Handler for OptsReporter {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let read = || -> io::Result<Opts> {
            if conn.addr_index() == 1 {
                conn.set_nodelay(false)?;
                conn.set_keepalive(Some(Duration::from_secs(9)))?;
            }
            let s = conn.socket()?;
            Ok(Opts {
                nodelay: s.nodelay()?,
                keepalive: s.keepalive()?,
                keepalive_time: s.keepalive_time()?,
                recv_buffer: s.recv_buffer_size()?,
            })
        };
        let _ = self.tx.send(read());
        Action::Close
    }

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
}

fn accepted_opts(builder: wireloop::Builder, addr_index: usize) -> Opts {
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(builder.build().unwrap(), move |_| OptsReporter {
        tx: tx.clone(),
    });
    let mut c = Client::connect(srv.addr(addr_index)).unwrap();
    let opts = recv(&rx, SHORT, "socket options").expect("reading socket options");
    c.expect_eof();
    srv.stop().unwrap();
    opts
}

#[test]
fn socket_options_apply_to_accepted_connections() {
    let listen2 = || {
        Server::builder()
            .listen("tcp://127.0.0.1:0")
            .unwrap()
            .listen("tcp://127.0.0.1:0")
            .unwrap()
    };
    let o = accepted_opts(listen2(), 0);
    assert!(o.nodelay, "TCP_NODELAY is on by default: {o:?}");
    assert!(!o.keepalive, "keep-alive is off by default: {o:?}");

    let o = accepted_opts(listen2(), 1);
    assert!(!o.nodelay && o.keepalive, "{o:?}");
    assert_eq!(o.keepalive_time, Duration::from_secs(9), "{o:?}");

    let o = accepted_opts(
        listen2()
            .nodelay(false)
            .keepalive(Some(Duration::from_secs(7)))
            .recv_buffer_size(64 << 10),
        0,
    );
    assert!(!o.nodelay, "{o:?}");
    assert!(o.keepalive, "{o:?}");
    assert_eq!(o.keepalive_time, Duration::from_secs(7), "{o:?}");
    assert!(o.recv_buffer >= 64 << 10, "{o:?}");

    // Builder options that only reach the listening socket still build and serve.
    let o = accepted_opts(
        listen2()
            .send_buffer_size(128 << 10)
            .reuseaddr(false)
            .backlog(16),
        0,
    );
    assert!(o.nodelay, "{o:?}");
}

// ----- write hooks ----------------------------------------------------------------------

const STREAM_TOTAL: usize = 16 << 20;
const STREAM_CHUNK: usize = 64 << 10;
/// The producer refills while less than this is queued.
const STREAM_REFILL_BELOW: usize = 4 * STREAM_CHUNK;

#[derive(Default)]
struct Produced(usize);

/// Streams `blob` from `opened` and `post_write`, a chunk at a time, keeping the queue
/// short.
struct Streamer {
    blob: Bytes,
    pre_writes: Arc<AtomicUsize>,
    post_written: Arc<AtomicUsize>,
    max_queued: Arc<AtomicUsize>,
}

impl Streamer {
    fn refill(&self, conn: &mut Conn<'_, Produced>) {
        while conn.output_len() < STREAM_REFILL_BELOW && conn.state.0 < self.blob.len() {
            let from = conn.state.0;
            let to = (from + STREAM_CHUNK).min(self.blob.len());
            conn.write_bytes(self.blob.slice(from..to));
            conn.state.0 = to;
        }
        self.max_queued
            .fetch_max(conn.output_len(), Ordering::SeqCst);
    }
}

impl Handler for Streamer {
    type State = Produced;

    fn opened(&mut self, conn: &mut Conn<'_, Produced>) -> Action {
        self.refill(conn);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Produced>) -> Action {
        let n = conn.input().len();
        conn.consume(n);
        Action::None
    }

    fn pre_write(&mut self, conn: &mut Conn<'_, Produced>) {
        self.pre_writes.fetch_add(1, Ordering::SeqCst);
        self.max_queued
            .fetch_max(conn.output_len(), Ordering::SeqCst);
    }

    fn post_write(&mut self, conn: &mut Conn<'_, Produced>, written: usize) {
        self.post_written.fetch_add(written, Ordering::SeqCst);
        self.refill(conn);
    }
}

#[test]
fn write_hooks_drive_a_bounded_stream() {
    let blob = Bytes::from(pattern(STREAM_TOTAL, 99));
    let pre_writes = Arc::new(AtomicUsize::new(0));
    let post_written = Arc::new(AtomicUsize::new(0));
    let max_queued = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let (b, pre, post, max) = (
        blob.clone(),
        pre_writes.clone(),
        post_written.clone(),
        max_queued.clone(),
    );
    let srv = TestServer::start(server, move |_| Streamer {
        blob: b.clone(),
        pre_writes: pre.clone(),
        post_written: post.clone(),
        max_queued: max.clone(),
    });

    let mut c = Client::connect(srv.addr(0)).unwrap();
    let got = c.read_n(STREAM_TOTAL).unwrap();
    assert_same_bytes(&got, &blob, "streamed bytes");
    assert!(
        wait_until(SHORT, || post_written.load(Ordering::SeqCst)
            == STREAM_TOTAL),
        "post_write saw {} bytes written",
        post_written.load(Ordering::SeqCst)
    );
    c.shutdown(Shutdown::Write).unwrap();
    c.expect_eof();
    srv.stop().unwrap();

    assert!(
        pre_writes.load(Ordering::SeqCst) >= 1,
        "pre_write never ran"
    );
    let max = max_queued.load(Ordering::SeqCst);
    assert!(
        max > 0 && max < 2 << 20,
        "queued output peaked at {max} bytes"
    );
}

// ----- statistics -----------------------------------------------------------------------

#[test]
fn stats_add_up_over_two_loops() {
    const CONNS: usize = 20;
    const SIZE: usize = 1000;
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .loops(Loops::Fixed(2))
        .build()
        .unwrap();
    let srv = TestServer::start(server, |_| common::Echo);
    let h = srv.handle.clone();

    let mut clients: Vec<Client> = (0..CONNS)
        .map(|_| Client::connect(srv.addr(0)).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = pattern(SIZE, i as u64);
        c.write_all(&msg).unwrap();
        assert_same_bytes(&c.read_n(SIZE).unwrap(), &msg, "echo");
    }
    assert_eq!(h.connections(), CONNS);
    drop(clients);
    assert!(
        wait_until(SHORT, || h.stats().closed == CONNS as u64),
        "{:?}",
        h.stats()
    );

    let s = h.stats();
    let want = Stats {
        open: 0,
        accepted: CONNS as u64,
        closed: CONNS as u64,
        bytes_in: (CONNS * SIZE) as u64,
        bytes_out: (CONNS * SIZE) as u64,
        ..Stats::default()
    };
    assert_eq!(s, want);
    let (l0, l1) = (h.loop_stats(0), h.loop_stats(1));
    assert_eq!(l0 + l1, s, "per-loop stats {l0:?} + {l1:?}");
    assert!(l0.accepted > 0 && l1.accepted > 0, "{l0:?} {l1:?}");
    assert_eq!(h.loop_stats(2), Stats::default());
    srv.stop().unwrap();
}

/// Shortening a connection's idle timeout takes effect at once: the timer armed for the
/// server's longer timeout must not be the one that decides.
#[test]
fn shortened_idle_timeout_closes_on_time() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    use wireloop::{Action, Conn, Handler, Server};

    struct Shorten;
    impl Handler for Shorten {
        type State = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            let n = conn.input().len();
            conn.consume(n);
            conn.set_idle_timeout(Some(Duration::from_millis(1200)));
            conn.write(b"ok");
            Action::None
        }
    }

    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .idle_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let addr = server.local_addrs()[0].inet().unwrap();
    let handle = server.handle();
    let t = std::thread::spawn(move || server.serve(|_| Shorten));

    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"s").unwrap();
    let mut ok = [0u8; 2];
    c.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"ok");
    let start = Instant::now();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("the server closes the idle connection");
    let after = start.elapsed();
    assert!(rest.is_empty(), "unexpected bytes {rest:?}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(5),
        "closed after {after:?}; the shortened timeout is 1.2 s (server-wide 30 s)"
    );

    handle.shutdown();
    t.join().unwrap().unwrap();
}

/// `Control::state` reaches another connection's state (not the calling one's: that is
/// `Conn::state`); a closed id gives `None`.
#[test]
fn control_reaches_another_connections_state() {
    use wireloop::testing::Driver;
    use wireloop::{Action, Conn, ConnId, Handler};

    /// Connection 0 bumps connection 1's counter on "bump"; any connection writes its own
    /// counter on "show".
    #[derive(Default)]
    struct Bump {
        ids: Vec<ConnId>,
    }
    impl Handler for Bump {
        type State = u32;
        fn opened(&mut self, conn: &mut Conn<'_, u32>) -> Action {
            self.ids.push(conn.id());
            Action::None
        }
        fn data(&mut self, conn: &mut Conn<'_, u32>) -> Action {
            let cmd = conn.input().to_vec();
            conn.consume(cmd.len());
            let me = conn.id();
            assert!(
                conn.control().state(me).is_none(),
                "its own state is the Conn's"
            );
            match &cmd[..] {
                b"bump" => {
                    let other = self.ids[1];
                    let reached = match conn.control().state(other) {
                        Some(n) => {
                            *n += 1;
                            true
                        }
                        None => false,
                    };
                    conn.write(if reached { b"bumped" } else { b"gone" });
                }
                _ => {
                    let n = *conn.state;
                    conn.write(n.to_string().as_bytes());
                }
            }
            Action::None
        }
    }
    let mut d = Driver::new(Bump::default());
    let (a, b) = (d.open(0), d.open(0));
    d.feed(a, b"bump");
    d.feed(a, b"bump");
    assert_eq!(d.take_output(a), b"bumpedbumped");
    d.feed(b, b"show");
    assert_eq!(d.take_output(b), b"2");
    d.feed(a, b"show");
    assert_eq!(d.take_output(a), b"0");
    d.reset(b);
    d.feed(a, b"bump");
    assert_eq!(d.take_output(a), b"gone");
}
