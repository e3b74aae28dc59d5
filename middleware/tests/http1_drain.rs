//! A graceful shutdown (or a reload's drain) and HTTP/1.1 keep-alive: a connection idle
//! between requests is kept for `Config::drain_idle_timeout`, so a request already on its
//! way is answered (with `Connection: close`) instead of lost; one that sends nothing is
//! closed when that grace runs out; with no grace it is closed at once.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{TestServer, TIMEOUT};
use wireloop::Server;
use wireloop_middleware::http1::{Config, Http1, Request, Response};

fn start(cfg: Config) -> TestServer {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    TestServer::start(server, move |_| {
        Http1::with_config(
            |_: &Request<'_>, res: &mut Response<'_>| {
                res.body(b"hello\n");
            },
            cfg.clone(),
        )
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Reads one response (its head and a `Content-Length` body); returns the head.
fn response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "EOF in a head: {got:?}");
        got.push(b[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let mut body = [0u8; 6];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"hello\n");
    head
}

fn at_eof(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
}

/// Shuts `srv` down and waits until its listener is closed (new connections refused): the
/// loop has begun draining.
fn begin_drain(srv: &TestServer) {
    let addr = srv.tcp_addr(0);
    srv.handle.shutdown();
    assert!(
        common::wait_until(TIMEOUT, || TcpStream::connect(addr).is_err()),
        "the listener did not close"
    );
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn an_idle_connection_gets_one_more_request_answered_with_close() {
    let srv = start(Config {
        // Longer than any test run: the request below is what ends the connection.
        drain_idle_timeout: Some(TIMEOUT * 2),
        ..Config::default()
    });
    let mut s = connect(srv.tcp_addr(0));
    s.write_all(GET).unwrap();
    assert!(!response(&mut s).contains("Connection: close"));
    begin_drain(&srv);
    s.write_all(GET).unwrap();
    let head = response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    assert!(at_eof(&mut s), "closed after the response that said so");
    srv.stop().unwrap();
}

#[test]
fn an_idle_connection_that_sends_nothing_is_closed_when_the_grace_ends() {
    let srv = start(Config {
        drain_idle_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    });
    let mut s = connect(srv.tcp_addr(0));
    s.write_all(GET).unwrap();
    response(&mut s);
    begin_drain(&srv);
    // Closed by the grace (200 ms), well before the keep-alive timeout (60 s) or the
    // read timeout of this client (TIMEOUT).
    assert!(at_eof(&mut s));
    srv.stop().unwrap();
}

#[test]
fn without_a_grace_an_idle_connection_closes_at_once() {
    let srv = start(Config {
        drain_idle_timeout: None,
        ..Config::default()
    });
    let mut s = connect(srv.tcp_addr(0));
    s.write_all(GET).unwrap();
    response(&mut s);
    srv.handle.shutdown();
    assert!(at_eof(&mut s));
    srv.stop().unwrap();
}
