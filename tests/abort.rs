//! `Conn::abort` and `Control::abort` on real loopback sockets: the peer sees a reset, not
//! the output that was queued, `closed` runs once (with the reason from `close_with`, if
//! any), and an aborted connection is not drained for the close linger.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::*;
use wireloop::{Action, Conn, ConnId, Error, Handler, Loops, Server};

/// Larger than the kernel holds between the two ends (send plus receive buffers).
const BIG: usize = 16 << 20;

/// On `A`: queues `BIG` bytes, then aborts; on `E`: the same with a reason; on `K`: aborts
/// the first connection through `Control` (it has `BIG` bytes queued since `opened`).
struct Aborter {
    tx: Sender<(bool, Option<String>)>,
    first: Option<ConnId>,
    payload: Vec<u8>,
}

impl Handler for Aborter {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if self.first.is_none() {
            self.first = Some(conn.id());
            conn.write(&self.payload);
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let input = conn.input().to_vec();
        conn.consume(input.len());
        if input.contains(&b'A') || input.contains(&b'E') {
            conn.write(&self.payload);
            if input.contains(&b'E') {
                conn.close_with(Error::layer("aborted on E"));
            }
            conn.abort();
            // Aborting wins over closing gracefully in the same callback.
            return Action::Close;
        }
        if input.contains(&b'K') {
            let victim: ConnId = self.first.expect("a first connection");
            // The connection whose callback runs is reached through its `Conn` only.
            let id = conn.id();
            let me = conn.control().abort(id);
            let answer: &[u8] = match (conn.control().abort(victim), me) {
                (_, true) => b"self",
                (true, false) => b"done",
                (false, false) => b"gone",
            };
            conn.write(answer);
        }
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let first = Some(conn.id()) == self.first;
        let _ = self.tx.send((first, err.map(|e| e.to_string())));
    }
}

fn start() -> (TestServer, mpsc::Receiver<(bool, Option<String>)>) {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .loops(Loops::Fixed(1))
        // A graceful close would keep draining the peer for a minute.
        .close_linger(Duration::from_secs(60))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Aborter {
        tx: tx.clone(),
        first: None,
        payload: vec![b'x'; BIG],
    });
    (srv, rx)
}

fn connect(srv: &TestServer) -> TcpStream {
    let s = TcpStream::connect(srv.tcp_addr(0)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Reads until the connection ends; returns the bytes and how it ended.
fn read_until_end(s: &mut TcpStream) -> (usize, std::io::Result<()>) {
    let mut n = 0;
    let mut b = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut b) {
            Ok(0) => return (n, Ok(())),
            Ok(k) => n += k,
            Err(e) => return (n, Err(e)),
        }
    }
}

#[track_caller]
fn expect_reset(s: &mut TcpStream, what: &str) {
    let (n, end) = read_until_end(s);
    match end {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected a reset after {n} bytes, got {other:?}"),
    }
    assert!(
        n < BIG,
        "{what}: the aborted output arrived whole ({n} bytes)"
    );
}

/// Writes until the peer's reset makes a write fail (a closed, drained socket would take
/// everything: the peer keeps reading it for the whole linger).
#[track_caller]
fn expect_writes_fail(s: &mut TcpStream, what: &str) {
    let chunk = vec![b'y'; 1 << 16];
    let mut sent = 0usize;
    while sent < 4 * BIG {
        match s.write(&chunk) {
            Ok(k) => sent += k,
            Err(_) => return,
        }
    }
    panic!("{what}: {sent} bytes written after the abort, as to a draining socket");
}

#[test]
fn abort_resets_the_peer_and_drops_queued_output() {
    let (srv, rx) = start();
    // The first connection only carries the `Control` test's queued output.
    let first = connect(&srv);
    let mut c = connect(&srv);
    c.write_all(b"A").unwrap();
    let (_, err) = recv(&rx, TIMEOUT, "closed");
    assert_eq!(err, None, "an abort without a reason");
    expect_reset(&mut c, "aborted connection");
    expect_writes_fail(&mut c, "aborted connection");
    drop(first);
    assert_eq!(srv.stop(), Ok(()));
}

#[test]
fn abort_hands_the_close_with_reason_to_closed() {
    let (srv, rx) = start();
    let first = connect(&srv);
    let mut c = connect(&srv);
    c.write_all(b"E").unwrap();
    let (_, err) = recv(&rx, TIMEOUT, "closed");
    assert_eq!(err.as_deref(), Some("aborted on E"));
    expect_reset(&mut c, "aborted connection");
    drop(first);
    assert_eq!(srv.stop(), Ok(()));
    assert!(rx.try_iter().all(|(first, _)| first), "closed fired once");
}

#[test]
fn control_abort_resets_another_connection_with_output_queued() {
    let (srv, rx) = start();
    let mut victim = connect(&srv);
    let mut c = connect(&srv);
    c.write_all(b"K").unwrap();
    let mut done = [0u8; 4];
    c.read_exact(&mut done).expect("the killer's answer");
    assert_eq!(&done, b"done");
    assert_eq!(
        recv(&rx, TIMEOUT, "closed"),
        (true, None),
        "the victim closed, without a reason"
    );
    expect_reset(&mut victim, "connection aborted by another");
    expect_writes_fail(&mut victim, "connection aborted by another");
    // The aborting connection is untouched; the victim is gone for good.
    c.write_all(b"K").unwrap();
    c.read_exact(&mut done).expect("the second answer");
    assert_eq!(&done, b"gone");
    assert_eq!(srv.stop(), Ok(()));
}
