//! Every connection has a way to end: the read timeout (no input while one is awaited),
//! the send timeout (the peer stopped reading), and a peer's hang-up noticed while
//! backpressure holds back reading (`Handler::read_closed`, or a reset failing the
//! connection at once).
//!
//! The timeouts are driven with the test driver's manual clock (exact, no waiting); the
//! hang-ups need real sockets, since they come from the kernel.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::{recv, TestServer, TIMEOUT};
use wireloop::testing::Driver;
use wireloop::{Action, Conn, ConnId, Error, Handler, Server};

const MS: Duration = Duration::from_millis(1);

/// Echoes; sets the read timeout given (if any) on open; remembers how each connection
/// closed.
#[derive(Default)]
struct Echo {
    read_timeout: Option<Duration>,
    closed: Vec<(ConnId, Option<String>, bool, bool)>,
}

impl Handler for Echo {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if self.read_timeout.is_some() {
            conn.set_read_timeout(self.read_timeout);
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

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let read = err.as_ref().is_some_and(Error::is_read_timeout);
        let send = err.as_ref().is_some_and(Error::is_send_timeout);
        self.closed
            .push((conn.id(), err.map(|e| e.to_string()), read, send));
    }
}

fn echo(read_timeout: Option<Duration>) -> Echo {
    Echo {
        read_timeout,
        ..Echo::default()
    }
}

#[test]
fn read_timeout_closes_a_connection_that_gets_no_input() {
    let mut d = Driver::new(echo(Some(Duration::from_secs(1))));
    let c = d.open(0);
    d.advance(999 * MS);
    assert!(d.is_open(c), "closed before its read timeout");
    // Input restarts the clock.
    assert!(d.feed(c, b"ping"));
    assert_eq!(d.take_output(c), b"ping");
    d.advance(999 * MS);
    assert!(d.is_open(c), "the read restarted nothing");
    d.advance(MS);
    assert!(!d.is_open(c), "open 1 s after its last input");
    let closed = &d.handler().closed;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].2, "closed with {:?}", closed[0].1);
    assert_eq!(d.handle().stats().read_timeouts, 1);
}

#[test]
fn writing_does_not_hold_off_the_read_timeout() {
    /// Writes every 100 ms (a timer); never gets input.
    struct Talker;
    impl Handler for Talker {
        type State = ();
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            conn.set_read_timeout(Some(Duration::from_millis(500)));
            let id = conn.id();
            conn.control()
                .every(Duration::from_millis(100), move |ctl| {
                    ctl.write(id, b"news");
                });
            Action::None
        }
        fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
            Action::None
        }
    }
    let mut d = Driver::new(Talker);
    let c = d.open(0);
    for _ in 0..4 {
        d.advance(100 * MS);
        assert_eq!(d.take_output(c), b"news");
    }
    d.advance(99 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(
        !d.is_open(c),
        "output moving held off the read timeout of a connection that got no input"
    );
}

#[test]
fn read_timeout_does_not_run_while_backpressure_holds_reading() {
    let settings = Server::builder()
        .output_water_marks(64, 16)
        .send_timeout(None);
    let mut d = Driver::with_settings(echo(Some(Duration::from_secs(1))), &settings);
    let c = d.open(0);
    // 100 bytes echoed and not taken: over the high-water mark, reading pauses.
    assert!(d.feed(c, &[b'x'; 100]));
    d.advance(Duration::from_secs(5));
    assert!(
        d.is_open(c),
        "read-timed-out while backpressure held reading back"
    );
    // The peer reads: reading resumes and the wait for input starts now.
    assert_eq!(d.take_output(c).len(), 100);
    d.advance(999 * MS);
    assert!(d.is_open(c), "the paused time was counted");
    d.advance(MS);
    assert!(!d.is_open(c));
    assert!(d.handler().closed[0].2, "{:?}", d.handler().closed);
}

#[test]
fn read_timeout_off_and_changed() {
    /// Turns its read timeout off after the first input, and to 200 ms after the second.
    #[derive(Default)]
    struct Changer {
        inputs: usize,
    }
    impl Handler for Changer {
        type State = ();
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            conn.set_read_timeout(Some(Duration::from_secs(1)));
            Action::None
        }
        fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            let n = conn.input().len();
            conn.consume(n);
            self.inputs += 1;
            match self.inputs {
                1 => conn.set_read_timeout(None),
                _ => conn.set_read_timeout(Some(Duration::from_millis(200))),
            }
            assert_eq!(
                conn.read_timeout(),
                (self.inputs > 1).then_some(Duration::from_millis(200))
            );
            Action::None
        }
    }
    let mut d = Driver::new(Changer::default());
    let c = d.open(0);
    d.feed(c, b"a");
    d.advance(Duration::from_secs(60));
    assert!(d.is_open(c), "closed with the read timeout off");
    d.feed(c, b"b");
    d.advance(199 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(!d.is_open(c), "the shortened timeout did not apply");
}

#[test]
fn send_timeout_closes_a_peer_that_stops_reading() {
    let settings = Server::builder().send_timeout(Some(Duration::from_millis(300)));
    let mut d = Driver::with_settings(echo(None), &settings);
    let c = d.open(0);
    let quiet = d.open(0);
    d.feed(c, b"unread answer");
    d.advance(299 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(!d.is_open(c), "output stuck for the send timeout");
    assert!(
        d.is_open(quiet),
        "a connection with nothing queued has no send clock"
    );
    let closed = &d.handler().closed;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].3, "closed with {:?}", closed[0].1);
    let s = d.handle().stats();
    assert_eq!((s.send_timeouts, s.read_timeouts, s.idle_closed), (1, 0, 0));
}

#[test]
fn send_clock_restarts_whenever_the_peer_takes_output() {
    let settings = Server::builder().send_timeout(Some(Duration::from_millis(300)));
    let mut d = Driver::with_settings(echo(None), &settings);
    let c = d.open(0);
    // Output queued again and again, each time taken within 250 ms: never cut, though
    // the connection has had output waiting for 5 s in all.
    for i in 0..20u8 {
        assert!(d.feed(c, &[i]));
        d.advance(250 * MS);
        assert_eq!(d.take_output(c), [i]);
    }
    // Nothing queued: no send clock, however long.
    d.advance(Duration::from_secs(3600));
    assert!(d.is_open(c));
    assert!(d.handler().closed.is_empty());
}

#[test]
fn send_timeout_per_connection_overrides_the_server() {
    struct Patient;
    impl Handler for Patient {
        type State = ();
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            assert_eq!(conn.send_timeout(), Some(wireloop::DEFAULT_SEND_TIMEOUT));
            conn.set_send_timeout(None);
            conn.write(b"never read");
            Action::None
        }
        fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
            Action::None
        }
    }
    let mut d = Driver::new(Patient);
    let c = d.open(0);
    d.advance(Duration::from_secs(600));
    assert!(
        d.is_open(c),
        "send timeout turned off, yet the connection was cut"
    );
}

#[test]
fn idle_timeout_on_the_driver_clock() {
    let settings = Server::builder().idle_timeout(Some(Duration::from_secs(2)));
    let mut d = Driver::with_settings(echo(None), &settings);
    let c = d.open(0);
    d.advance(1500 * MS);
    d.feed(c, b"x");
    let _ = d.take_output(c);
    d.advance(1999 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(!d.is_open(c));
    assert_eq!(d.handle().stats().idle_closed, 1);
}

// ----- over sockets -----------------------------------------------------------------------

/// Events of the linked-pair server.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    /// Connection B's output is over the high-water mark.
    Backed,
    ReadClosed,
    /// `closed` of the first connection of a pair (A), with whether it had an error.
    ClosedA(bool),
}

/// Pairs connections as they open: the first (A) is linked to the second (B), and what A
/// sends is forwarded to B. B gets 64 MiB of its own on open, which its client never
/// reads, so A's reads are held back by B's output.
struct Pairs {
    tx: Sender<Ev>,
    waiting: Option<ConnId>,
}

#[derive(Default)]
struct Side {
    partner: Option<ConnId>,
    is_a: bool,
}

impl Handler for Pairs {
    type State = Side;

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        match self.waiting.take() {
            None => {
                self.waiting = Some(conn.id());
                conn.state.is_a = true;
            }
            Some(a) => {
                conn.state.partner = Some(a);
                conn.link(a);
                let big = vec![7u8; 64 << 20];
                conn.write(&big);
                if conn.output_len() > conn.output_high_water() {
                    let _ = self.tx.send(Ev::Backed);
                }
                conn.control().wake(a);
            }
        }
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        // B tells A who its partner is.
        if conn.state.partner.is_none() {
            conn.state.partner = conn.linked();
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let partner = conn.state.partner;
        match partner {
            Some(p) if conn.forward(p) => Action::None,
            _ => {
                let n = conn.input().len();
                conn.consume(n);
                Action::None
            }
        }
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        assert!(conn.is_read_closed());
        let _ = self.tx.send(Ev::ReadClosed);
        Action::Close
    }

    fn closed(&mut self, conn: &mut Conn<'_, Side>, err: Option<Error>) {
        if conn.state.is_a {
            let _ = self.tx.send(Ev::ClosedA(err.is_some()));
        }
    }
}

/// Starts the pair server and connects A then B; returns the server, the channel and the
/// two clients once B's output is backed up.
fn pair() -> (TestServer, mpsc::Receiver<Ev>, TcpStream, TcpStream) {
    let (tx, rx) = mpsc::channel();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .send_timeout(None)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let srv = TestServer::start(server, move |_| Pairs {
        tx: tx.clone(),
        waiting: None,
    });
    let addr = srv.tcp_addr(0);
    // One listener, one loop: connections are accepted in the order they connected.
    let a = TcpStream::connect(addr).unwrap();
    a.set_read_timeout(Some(TIMEOUT)).unwrap();
    let b = TcpStream::connect(addr).unwrap();
    assert_eq!(recv(&rx, TIMEOUT, "B's output backed up"), Ev::Backed);
    (srv, rx, a, b)
}

#[test]
fn peer_hang_up_is_noticed_while_backpressure_holds_reading() {
    let (srv, rx, mut a, _b) = pair();
    // A's bytes cannot be read (B's output is over the mark), then A half-closes: the
    // FIN arrives behind unread input.
    a.write_all(b"held").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(recv(&rx, TIMEOUT, "read_closed"), Ev::ReadClosed);
    assert_eq!(recv(&rx, TIMEOUT, "A closed"), Ev::ClosedA(false));
    // The server closed A: its client sees the end.
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    srv.stop().unwrap();
}

#[test]
fn peer_reset_fails_a_held_back_connection_at_once() {
    let (srv, rx, a, _b) = pair();
    (&a).write_all(b"held").unwrap();
    // SO_LINGER 0 makes the close a reset.
    socket2::SockRef::from(&a)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(a);
    match recv(&rx, TIMEOUT, "A closed") {
        Ev::ClosedA(true) => {}
        other => panic!("expected A to fail with the reset, got {other:?}"),
    }
    srv.stop().unwrap();
}

#[test]
fn send_timeout_over_a_socket() {
    const SIZE: usize = 16 << 20;
    /// Sends `SIZE` bytes to every client; reports how each connection closed.
    struct Flood(Sender<(bool, String)>);
    impl Handler for Flood {
        type State = ();
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            conn.write(&vec![1u8; SIZE]);
            Action::None
        }
        fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            let n = conn.input().len();
            conn.consume(n);
            Action::None
        }
        fn closed(&mut self, _conn: &mut Conn<'_, ()>, err: Option<Error>) {
            let send = err.as_ref().is_some_and(Error::is_send_timeout);
            let _ = self.0.send((send, format!("{err:?}")));
        }
    }
    let (tx, rx) = mpsc::channel();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .send_timeout(Some(Duration::from_millis(300)))
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let srv = TestServer::start(server, move |_| Flood(tx.clone()));
    // A small receive buffer, so the kernel cannot absorb what the server queues.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&srv.tcp_addr(0).into()).unwrap();
    let mut stuck: TcpStream = sock.into();
    let (send, why) = recv(&rx, TIMEOUT, "closed of the client that reads nothing");
    assert!(send, "closed with {why}");
    assert_eq!(srv.handle.stats().send_timeouts, 1);
    // What the client reads now ends (EOF or reset), well short of 64 MiB.
    stuck.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stuck.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < SIZE, "read all {got} bytes from a cut connection");

    // A client that reads slowly but steadily (at most 64 KiB every 2 ms: the output
    // stays queued the whole time) gets everything: each write restarts the clock.
    let mut steady = TcpStream::connect(srv.tcp_addr(0)).unwrap();
    steady.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut total = 0usize;
    let mut chunk = vec![0u8; 64 << 10];
    while total < SIZE {
        let n = steady.read(&mut chunk).unwrap();
        assert!(n > 0, "cut after {total} bytes");
        total += n;
        // Paces the reader; synchronises nothing.
        std::thread::sleep(Duration::from_millis(2));
    }
    srv.stop().unwrap();
    let rest: Vec<_> = rx.try_iter().collect();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(
        !rest[0].0,
        "the steady reader was send-timed-out: {}",
        rest[0].1
    );
}
