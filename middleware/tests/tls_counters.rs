//! `TlsServer::counting`: every session counts once, as a completed handshake (a rustls
//! client, TLS 1.3 and 1.2) or a failed one (a client that is not speaking TLS, a client
//! that does not trust the certificate and aborts with an alert, a client that leaves in
//! the middle of its handshake).

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;

use common::tls_client::{client_config, localhost_cert, tcp_connect, tls_connect};
use common::{wait_until, TestServer, TIMEOUT};
use wireloop::{Action, Conn, Handler, Server};
use wireloop_middleware::tls::TlsCounters;
use wireloop_middleware::{translate, TlsServer};

struct Echo;

impl Handler for Echo {
    type State = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let n = conn.input().len();
        let (input, mut out) = conn.split();
        out.write(input);
        conn.consume(n);
        Action::None
    }
}

#[test]
fn handshakes_are_counted_once_each_as_completed_or_failed() {
    let cert = localhost_cert();
    let counters = TlsCounters::new();
    let tls = TlsServer::builder(cert.clone())
        .build()
        .unwrap()
        .counting(counters.clone());
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let srv = TestServer::start(server, move |_| translate(Echo, |_| true, tls.clone()));
    let addr = srv.tcp_addr(0);
    let counted = |done: u64, failed: u64| {
        assert!(
            wait_until(TIMEOUT, || counters.handshakes() == done
                && counters.failures() == failed),
            "want {done} completed and {failed} failed, have {} and {}",
            counters.handshakes(),
            counters.failures()
        );
    };

    // Two complete handshakes, with data after them (counted once each).
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
        let mut s = tls_connect(addr, &client_config(&cert, versions));
        s.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }
    counted(2, 0);

    // Not TLS at all: a failure.
    let mut s = tcp_connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let _ = s.read(&mut [0u8; 64]);
    counted(2, 1);

    // A client that does not trust the certificate: it aborts with an alert.
    let stranger = localhost_cert();
    let cfg = client_config(&stranger, &[&rustls::version::TLS13]);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let mut sock = tcp_connect(addr);
    let failed = loop {
        match conn.complete_io(&mut sock) {
            Ok(_) if conn.is_handshaking() => continue,
            Ok(_) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the client refused the certificate");
    let _ = conn.complete_io(&mut sock);
    drop(sock);
    counted(2, 2);

    // A client that leaves after its ClientHello.
    let cfg = client_config(&cert, &[&rustls::version::TLS13]);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let mut sock = tcp_connect(addr);
    conn.write_tls(&mut sock).unwrap();
    sock.shutdown(Shutdown::Both).unwrap();
    counted(2, 3);
    srv.stop().unwrap();
}
