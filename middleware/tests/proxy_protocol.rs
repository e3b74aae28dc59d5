//! The PROXY protocol layers over real sockets: a listener that takes headers from its
//! trusted senders (version 1 and 2, plain and under TLS, the header and the first bytes
//! in one segment or apart), refuses other senders, malformed headers and headers that do
//! not come in time; and a dial that sends one before its TLS handshake.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::tls_client::{client_config, close_cleanly, handshake, localhost_cert, tcp_connect};
use common::{recv, TestServer, TIMEOUT};
use rustls::version::TLS13;
use wireloop::{Action, Conn, DialOptions, Handler, Loops, Server};
use wireloop_middleware::proxy_protocol::{
    parse, Header, ProxyHeader, ProxyProtocol, SendProxyHeader, Version,
};
use wireloop_middleware::{codec::Status, translate, CertKey, TlsServer};

/// Says who the header says the client is, then echoes.
struct WhoAmI;

impl Handler for WhoAmI {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let h = conn.layer::<ProxyHeader>().and_then(|h| h.header());
        let line = match h {
            Some(Header::Proxied { source, dest }) => format!("from {source} to {dest}\n"),
            Some(Header::Local) => "local\n".to_string(),
            None => "none\n".to_string(),
        };
        conn.write(line.as_bytes());
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }
}

/// A server with the PROXY layer (trusting `trusted`) on listener 0, and PROXY then TLS
/// on listener 1.
fn server(trusted: &[&str], timeout: Duration, cert: &CertKey) -> TestServer {
    let pp = ProxyProtocol::new(trusted).unwrap().timeout(timeout);
    let tls = TlsServer::builder(cert.clone()).build().unwrap();
    let s = Server::builder()
        .loops(Loops::from_count(1))
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.listen("tcp://127.0.0.1:0"))
        .and_then(|b| b.build())
        .unwrap();
    TestServer::start(s, move |_| {
        translate(
            translate(WhoAmI, |c| c.addr_index == 1, tls.clone()),
            |_| true,
            pp.clone(),
        )
    })
}

fn header(version: Version, source: &str, dest: &str) -> Vec<u8> {
    let mut h = Vec::new();
    wireloop_middleware::proxy_protocol::write(
        version,
        source.parse().unwrap(),
        dest.parse().unwrap(),
        &mut h,
    );
    h
}

/// Reads until `n` bytes or the end.
fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    let mut have = 0;
    while have < n {
        match s.read(&mut got[have..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => have += k,
        }
    }
    got.truncate(have);
    got
}

#[test]
fn a_trusted_sender_says_who_the_client_is() {
    let cert = localhost_cert();
    let srv = server(&["127.0.0.0/8"], TIMEOUT, &cert);
    for version in [Version::V1, Version::V2] {
        // Header and first bytes in one write.
        let mut s = tcp_connect(srv.tcp_addr(0));
        let mut first = header(version, "192.0.2.7:51000", "198.51.100.1:443");
        first.extend(b"ping");
        s.write_all(&first).unwrap();
        let want = b"from 192.0.2.7:51000 to 198.51.100.1:443\nping";
        assert_eq!(read_n(&mut s, want.len()), want, "{version:?}");
        // Header cut in two, then bytes.
        let mut s = tcp_connect(srv.tcp_addr(0));
        let h = header(version, "[2001:db8::9]:4000", "[2001:db8::1]:80");
        s.write_all(&h[..5]).unwrap();
        s.flush().unwrap();
        s.write_all(&h[5..]).unwrap();
        s.write_all(b"pong").unwrap();
        let want = b"from [2001:db8::9]:4000 to [2001:db8::1]:80\npong";
        assert_eq!(read_n(&mut s, want.len()), want, "{version:?}");
    }
    let mut s = tcp_connect(srv.tcp_addr(0));
    s.write_all(b"PROXY UNKNOWN\r\n").unwrap();
    assert_eq!(read_n(&mut s, 6), b"local\n");
}

#[test]
fn the_header_comes_before_tls_and_the_handler_sees_it_through_tls() {
    let cert = localhost_cert();
    let srv = server(&["127.0.0.1"], TIMEOUT, &cert);
    let mut sock = tcp_connect(srv.tcp_addr(1));
    sock.write_all(&header(Version::V2, "203.0.113.5:6000", "127.0.0.1:443"))
        .unwrap();
    let mut tls = handshake(sock, &client_config(&cert, &[&TLS13]));
    let want = b"from 203.0.113.5:6000 to 127.0.0.1:443\n";
    assert_eq!(read_n(&mut tls, want.len()), want);
    tls.write_all(b"over tls").unwrap();
    assert_eq!(read_n(&mut tls, 8), b"over tls");
    close_cleanly(tls);
}

#[test]
fn untrusted_senders_malformed_and_late_headers_are_refused() {
    let cert = localhost_cert();
    // Nobody on loopback is trusted: refused whatever it sends.
    let srv = server(&["10.0.0.0/8"], TIMEOUT, &cert);
    let mut s = tcp_connect(srv.tcp_addr(0));
    let _ = s.write_all(&header(Version::V1, "192.0.2.7:1", "192.0.2.8:2"));
    assert_eq!(read_n(&mut s, 64), b"", "an untrusted sender got an answer");
    drop(srv);

    let srv = server(&["127.0.0.1"], Duration::from_millis(300), &cert);
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
    ] {
        let mut s = tcp_connect(srv.tcp_addr(0));
        s.write_all(bad).unwrap();
        assert_eq!(
            read_n(&mut s, 64),
            b"",
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Half a header, then nothing: dropped at the timeout.
    let mut s = tcp_connect(srv.tcp_addr(0));
    s.write_all(b"PROXY TCP4 1.2.").unwrap();
    let start = Instant::now();
    assert_eq!(read_n(&mut s, 64), b"");
    let after = start.elapsed();
    assert!(
        after >= Duration::from_millis(250) && after < TIMEOUT,
        "dropped after {after:?}; the header timeout is 0.3 s"
    );
}

/// Dials `to` with a PROXY header (and nothing else), writes `hello`.
struct Dialer {
    to: SocketAddr,
    version: Version,
}

impl Handler for Dialer {
    type State = ();

    fn serving(&mut self, ctl: &mut wireloop::Control<'_, ()>) -> Action {
        let header = SendProxyHeader::new(
            self.version,
            "192.0.2.44:1234".parse().unwrap(),
            "192.0.2.1:80".parse().unwrap(),
        );
        let opts = DialOptions::new().layer(header);
        let id = ctl.dial(&self.to.to_string(), opts, ()).unwrap();
        ctl.write(id, b"hello");
        Action::None
    }

    fn data(&mut self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
}

#[test]
fn a_dial_sends_its_header_first() {
    for version in [Version::V1, Version::V2] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            // Until the header and "hello" are in.
            while !got.ends_with(b"hello") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            tx.send(got).unwrap();
        });
        let s = Server::builder()
            .loops(Loops::from_count(1))
            .listen("tcp://127.0.0.1:0")
            .and_then(|b| b.build())
            .unwrap();
        let _srv = TestServer::start(s, move |_| Dialer { to, version });
        let got = recv(&rx, TIMEOUT, "the dialed bytes");
        let Ok(Status::Complete((n, h))) = parse(&got) else {
            panic!("no header first: {got:?}")
        };
        assert_eq!(
            h,
            Header::Proxied {
                source: "192.0.2.44:1234".parse().unwrap(),
                dest: "192.0.2.1:80".parse().unwrap()
            }
        );
        assert_eq!(&got[n..], b"hello", "{version:?}");
    }
}
