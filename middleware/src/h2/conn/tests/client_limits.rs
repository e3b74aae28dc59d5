//! The client role against a hostile or broken server written frame by frame: response
//! checks (RFC 9113 §8.3.2) and the limits shared with the server role.

use std::time::Instant;

use super::super::super::frame::{encode, ErrorCode, Setting};
use super::super::super::hpack::{Encoder, Field};
use super::client::request;
use super::{own, Config, ConnError, Connection, Ev};

/// A client connection with one request open (stream 1), fed raw server frames.
struct Raw {
    conn: Connection,
    enc: Encoder,
    now: Instant,
}

impl Raw {
    fn new(cfg: Config) -> Raw {
        let now = Instant::now();
        let mut r = Raw {
            conn: Connection::client(cfg, now),
            enc: Encoder::new(),
            now,
        };
        let mut b = Vec::new();
        encode::settings(&mut b, []);
        encode::settings_ack(&mut b);
        assert_eq!(r.feed(&b).unwrap(), vec![Ev::Settings]);
        assert_eq!(r.conn.send_request(&request("GET", "/"), true), Ok(1));
        let n = r.conn.output().len();
        r.conn.consume_output(n);
        r
    }

    fn feed(&mut self, b: &[u8]) -> Result<Vec<Ev>, ConnError> {
        let mut evs = Vec::new();
        let n = self.conn.recv(b, self.now, &mut |e| evs.push(own(e)))?;
        assert_eq!(n, b.len());
        Ok(evs)
    }

    fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end: bool) -> Vec<u8> {
        let mut block = Vec::new();
        self.enc.encode(
            fields
                .iter()
                .map(|(n, v)| Field::new(n.as_bytes(), v.as_bytes())),
            &mut block,
        );
        let mut b = Vec::new();
        encode::headers(&mut b, stream, end, &block, 16_384);
        b
    }

    /// Feeds `b` and expects stream 1 reset by us with PROTOCOL_ERROR.
    fn malformed(&mut self, b: &[u8]) {
        let evs = self.feed(b).unwrap();
        assert_eq!(
            evs.last(),
            Some(&Ev::Reset(1, ErrorCode::PROTOCOL_ERROR, false)),
            "{evs:?}"
        );
        assert_eq!(self.conn.open_streams(), 0);
    }

    /// Feeds `b` repeatedly (at most `max` times) until a connection error.
    fn until_error(&mut self, b: &[u8], max: usize) -> ConnError {
        for _ in 0..max {
            if let Err(e) = self.feed(b) {
                assert!(self.conn.is_done());
                return e;
            }
        }
        panic!("no connection error after {max} frames");
    }
}

#[test]
fn malformed_responses_reset_the_stream() {
    let cases: &[&[(&str, &str)]] = &[
        &[("content-type", "x")],
        &[(":status", "200"), (":path", "/")],
        &[("x", "y"), (":status", "200")],
        &[(":status", "200"), (":status", "200")],
        &[(":status", "20")],
        &[(":status", "abc")],
        &[(":status", "101")],
        &[(":status", "200"), ("connection", "close")],
        &[(":status", "200"), ("transfer-encoding", "chunked")],
        &[(":status", "200"), ("Upper", "x")],
        &[(":status", "200"), ("content-length", "5")],
    ];
    for fields in cases {
        let mut r = Raw::new(Config::default());
        let b = r.headers(1, fields, true);
        r.malformed(&b);
    }
    // An informational head cannot end the stream.
    let mut r = Raw::new(Config::default());
    let b = r.headers(1, &[(":status", "103")], true);
    r.malformed(&b);
}

#[test]
fn content_length_and_body_must_agree() {
    let mut r = Raw::new(Config::default());
    let mut b = r.headers(1, &[(":status", "200"), ("content-length", "3")], false);
    encode::data(&mut b, 1, true, b"four");
    r.malformed(&b);
    // DATA before the response head.
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::data(&mut b, 1, true, b"x");
    r.malformed(&b);
    // Trailers without END_STREAM.
    let mut r = Raw::new(Config::default());
    let mut b = r.headers(1, &[(":status", "200")], false);
    b.extend(r.headers(1, &[("grpc-status", "0")], false));
    r.malformed(&b);
}

#[test]
fn push_promise_and_enable_push_are_protocol_errors() {
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::push_promise(&mut b, 1, 2, &[0x82], 16_384);
    let e = r.feed(&b).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR);
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::settings(&mut b, [Setting::EnablePush(true)]);
    assert_eq!(r.feed(&b).unwrap_err().code(), ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn headers_on_streams_not_opened_are_protocol_errors() {
    for id in [2, 3] {
        let mut r = Raw::new(Config::default());
        let b = r.headers(id, &[(":status", "200")], true);
        assert_eq!(r.feed(&b).unwrap_err().code(), ErrorCode::PROTOCOL_ERROR);
    }
}

#[test]
fn header_list_over_the_limit_resets_the_stream() {
    let mut r = Raw::new(Config {
        max_header_list_size: 1024,
        ..Config::default()
    });
    let big = "v".repeat(2000);
    let b = r.headers(1, &[(":status", "200"), ("x-big", &big)], true);
    assert_eq!(
        r.feed(&b).unwrap(),
        vec![Ev::Reset(1, ErrorCode::ENHANCE_YOUR_CALM, false)]
    );
}

#[test]
fn continuation_flood_is_enhance_your_calm() {
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::head(&mut b, super::super::super::frame::Kind::HEADERS, 0, 1, 0);
    r.feed(&b).unwrap();
    let mut c = Vec::new();
    encode::continuation(&mut c, 1, false, b"");
    let e = r.until_error(&c, 100);
    assert!(e.is_flood(), "{e}");
}

#[test]
fn floods_are_enhance_your_calm() {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut b = Vec::new();
    encode::settings(&mut b, []);
    frames.push(b);
    let mut b = Vec::new();
    encode::ping(&mut b, [1; 8]);
    frames.push(b);
    let mut b = Vec::new();
    encode::window_update(&mut b, 0, 1);
    frames.push(b);
    for f in frames {
        let mut r = Raw::new(Config::default());
        let e = r.until_error(&f, 10_000);
        assert!(e.is_flood(), "{e}");
        assert_eq!(e.code(), ErrorCode::ENHANCE_YOUR_CALM);
    }
    let mut r = Raw::new(Config::default());
    let h = r.headers(1, &[(":status", "200")], false);
    r.feed(&h).unwrap();
    let mut b = Vec::new();
    encode::data(&mut b, 1, false, b"");
    let e = r.until_error(&b, 10_000);
    assert!(e.is_flood(), "{e}");
}

#[test]
fn pings_are_answered() {
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::ping(&mut b, *b"12345678");
    r.feed(&b).unwrap();
    let mut want = Vec::new();
    encode::ping_ack(&mut want, *b"12345678");
    assert_eq!(r.conn.output(), &want[..]);
}

#[test]
fn window_overflow() {
    let mut r = Raw::new(Config::default());
    let mut b = Vec::new();
    encode::window_update(&mut b, 0, 0x7fff_ffff);
    assert_eq!(
        r.feed(&b).unwrap_err().code(),
        ErrorCode::FLOW_CONTROL_ERROR
    );
    // On a stream: a stream error.
    let mut r = Raw::new(Config::default());
    let _ = r.conn.send_request(&request("POST", "/"), false).unwrap();
    let mut b = Vec::new();
    encode::window_update(&mut b, 3, 0x7fff_ffff);
    assert_eq!(
        r.feed(&b).unwrap(),
        vec![Ev::Reset(3, ErrorCode::FLOW_CONTROL_ERROR, false)]
    );
}
