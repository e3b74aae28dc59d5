//! Every timeout of the HTTP/1.1 adapter and the TLS layer, on the test driver's manual
//! clock: exact to the millisecond, no waiting, nothing that a busy machine can make flaky.

use std::time::Duration;

use wireloop::testing::Driver;
use wireloop::{Action, Conn, Error, Handler};
use wireloop_middleware::http1::{Config, Http1, Request, Response};
use wireloop_middleware::{translate, CertKey, TlsServer};

const MS: Duration = Duration::from_millis(1);

fn hello(_: &Request<'_>, res: &mut Response<'_>) {
    res.body(b"hi");
}

type Hello = for<'a, 'b, 'c> fn(&'a Request<'b>, &'c mut Response<'_>);

fn http(cfg: Config) -> Driver<Http1<Hello>> {
    let mut h = Http1::with_config(hello as Hello, cfg);
    h.freeze_date(0);
    Driver::new(h)
}

fn cfg() -> Config {
    Config {
        header_timeout: Some(Duration::from_secs(10)),
        body_timeout: Some(Duration::from_secs(5)),
        keep_alive_timeout: Some(Duration::from_secs(60)),
        ..Config::default()
    }
}

fn status_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_stalled_head_gets_408_after_the_header_timeout() {
    let mut d = http(cfg());
    let c = d.open(0);
    d.feed(c, b"GET / HTTP/1.1\r\nHost:");
    d.advance(9_999 * MS);
    assert!(d.is_open(c));
    assert_eq!(d.take_output(c), b"");
    d.advance(MS);
    assert_eq!(
        status_line(&d.take_output(c)),
        "HTTP/1.1 408 Request Timeout"
    );
    assert!(!d.is_open(c));
}

#[test]
fn a_head_trickling_in_gets_no_more_than_the_header_timeout_in_all() {
    let mut d = http(cfg());
    let c = d.open(0);
    // A byte every 3 s: the silence never reaches the 10 s timeout, the total does.
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: yes\r\n";
    let mut i = 0;
    while d.is_open(c) && i < head.len() {
        d.feed(c, &head[i..i + 1]);
        i += 1;
        d.advance(3_000 * MS);
    }
    assert!(
        !d.is_open(c),
        "a slowloris head was still open after {i} bytes"
    );
    assert!(i <= 5, "closed only after {i} bytes, {} s", i * 3);
    assert_eq!(
        status_line(&d.take_output(c)),
        "HTTP/1.1 408 Request Timeout"
    );
}

#[test]
fn a_silent_first_connection_closes_without_an_answer() {
    let mut d = http(cfg());
    let c = d.open(0);
    d.advance(9_999 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(!d.is_open(c));
    assert_eq!(
        d.take_output(c),
        b"",
        "nothing was asked: nothing to answer"
    );
}

#[test]
fn keep_alive_idle_closes_after_its_timeout() {
    let mut d = http(cfg());
    let c = d.open(0);
    d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status_line(&d.take_output(c)), "HTTP/1.1 200 OK");
    d.advance(59_999 * MS);
    assert!(d.is_open(c), "closed before the keep-alive timeout");
    // A second request restarts it.
    d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status_line(&d.take_output(c)), "HTTP/1.1 200 OK");
    d.advance(59_999 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(!d.is_open(c));
    assert_eq!(d.take_output(c), b"");
}

#[test]
fn a_stalled_body_gets_408_after_the_body_timeout_between_bytes() {
    let mut d = http(cfg());
    let c = d.open(0);
    d.feed(
        c,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n",
    );
    // Body bytes keep it alive: the timeout is between bytes.
    for _ in 0..5 {
        d.advance(4_000 * MS);
        d.feed(c, &[b'x'; 100]);
    }
    assert!(d.is_open(c));
    d.advance(4_999 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert_eq!(
        status_line(&d.take_output(c)),
        "HTTP/1.1 408 Request Timeout"
    );
    assert!(!d.is_open(c));
}

#[test]
fn timeouts_off_wait_for_ever() {
    let mut d = http(Config {
        header_timeout: None,
        body_timeout: None,
        keep_alive_timeout: None,
        ..Config::default()
    });
    let c = d.open(0);
    d.feed(c, b"GET / HTTP/1.1\r\n");
    d.advance(Duration::from_secs(24 * 3600));
    assert!(d.is_open(c));
}

/// Counts `opened` and `closed`.
#[derive(Default)]
struct Count {
    opened: usize,
    closed: Vec<Option<String>>,
}

impl Handler for Count {
    type State = ();
    fn opened(&mut self, _: &mut Conn<'_, ()>) -> Action {
        self.opened += 1;
        Action::None
    }
    fn data(&mut self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
    fn closed(&mut self, _: &mut Conn<'_, ()>, err: Option<Error>) {
        self.closed.push(err.map(|e| e.to_string()));
    }
}

#[test]
fn a_tls_handshake_that_never_finishes_is_dropped_at_its_timeout() {
    let cert = CertKey::self_signed(&["localhost".to_string()]).expect("certificate");
    let tls = TlsServer::builder(cert)
        .handshake_timeout(Some(Duration::from_secs(3)))
        .build()
        .expect("tls");
    let mut d = Driver::new(translate(Count::default(), |_| true, tls));
    let c = d.open(0);
    // Half a ClientHello record header, then nothing.
    d.feed(c, &[0x16, 0x03, 0x01]);
    d.advance(2_999 * MS);
    assert!(d.is_open(c));
    d.advance(MS);
    assert!(
        !d.is_open(c),
        "the handshake timeout did not end the connection"
    );
    let inner = d.handler().inner();
    assert_eq!(inner.opened, 0);
    assert!(
        inner.closed.is_empty(),
        "an accepted connection that never opened gets no closed: {:?}",
        inner.closed
    );
}
