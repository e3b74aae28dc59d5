//! Per-client limits of the `reverse-proxy` example, as a real process over real sockets:
//! a request rate per IP (429 with `Retry-After` past a token bucket of one second's
//! worth) and connections per IP (one more is closed at once). Every process is killed on
//! drop; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::process::reverse_proxy;
use common::TIMEOUT;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

#[test]
fn past_the_rate_every_request_gets_429_with_retry_after() {
    let be = common::backend::header_echo("be");
    // One request a second: the bucket holds one.
    let (_p, addr) = reverse_proxy(
        &format!("http://{}", be.tcp_addr(0)),
        &["--rate-per-ip", "1"],
    );
    let t = Instant::now();
    let mut conns: Vec<TcpStream> = (0..11).map(|_| connect(addr)).collect();
    for c in &mut conns {
        c.write_all(GET).unwrap();
    }
    let answers: Vec<String> = conns.iter_mut().map(read_all).collect();
    let window = t.elapsed();
    let limited: Vec<&String> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 429 "))
        .collect();
    let served = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 200 "))
        .count();
    assert_eq!(limited.len() + served, 11, "{answers:?}");
    for a in &limited {
        assert!(a.contains("\r\nRetry-After: 1\r\n"), "{a}");
        assert!(
            !a.contains("x-forwarded-for"),
            "a 429 never reached the upstream: {a}"
        );
    }
    if window < Duration::from_secs(1) {
        // Within one second, N + 10 requests with a bucket of N: exactly 10 refused.
        assert_eq!(limited.len(), 10, "{answers:?}");
    } else {
        // A very slow machine: a token came back meanwhile.
        let refilled = window.as_secs() as usize;
        assert!(limited.len() + refilled >= 10, "{window:?}: {answers:?}");
    }
}

#[test]
fn a_connection_past_the_per_ip_limit_is_closed_at_once() {
    let be = common::backend::header_echo("be");
    let (_p, addr) = reverse_proxy(
        &format!("http://{}", be.tcp_addr(0)),
        &["--connections-per-ip", "2"],
    );
    let keep: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    // The first two are served (keep-alive, still open afterwards).
    for mut c in keep.iter() {
        c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let mut b = [0u8; 12];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"HTTP/1.1 200");
    }
    // A third, while they are open: closed without an answer.
    let mut third = connect(addr);
    let _ = third.write_all(GET);
    assert_eq!(read_all(&mut third), "");
    // One of the two closes: a new connection is served again.
    drop(keep);
    let served = common::wait_until(TIMEOUT, || {
        let mut c = connect(addr);
        let _ = c.write_all(GET);
        read_all(&mut c).starts_with("HTTP/1.1 200 ")
    });
    assert!(served, "no connection served after the others closed");
}
