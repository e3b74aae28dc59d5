//! Exchanges: requests, responses, bodies, trailers, request checks, the send API.

use super::*;
use crate::h2::conn::SendError;

fn f(n: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (n.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn server_preface_announces_settings_and_window() {
    let mut conn = Connection::server(Config::default(), Instant::now());
    let mut p = Peer::default();
    std::mem::swap(&mut p.conn, &mut conn);
    let out = p.read();
    assert_eq!(
        out,
        vec![
            Out::Settings(vec![
                Setting::EnablePush(false),
                Setting::MaxConcurrentStreams(100),
                Setting::MaxHeaderListSize(16 << 10),
            ]),
            Out::WindowUpdate(0, (1 << 20) - 65_535),
        ]
    );
}

#[test]
fn get_then_response_headers_and_data() {
    let mut p = Peer::default();
    let get = p.get(1);
    let evs = p.send(&get).unwrap();
    assert_eq!(
        evs,
        vec![Ev::Request {
            stream: 1,
            method: b"GET".to_vec(),
            path: Some(b"/".to_vec()),
            fields: vec![],
            end: true,
        }]
    );
    assert_eq!(p.conn.open_streams(), 1);
    assert_eq!(p.conn.idle_since(), None);
    let ct = [Field::new(b"content-type", b"text/plain")];
    p.conn.send_headers(1, 200, &ct, false).unwrap();
    assert_eq!(p.conn.send_data(1, b"hello", true), Ok(5));
    assert_eq!(
        p.read(),
        vec![
            Out::Headers {
                stream: 1,
                end: false,
                fields: vec![f(":status", "200"), f("content-type", "text/plain")],
            },
            Out::Data(1, b"hello".to_vec(), true),
        ]
    );
    assert_eq!(p.conn.open_streams(), 0);
    assert_eq!(p.conn.idle_since(), Some(p.now));
    assert_eq!(p.conn.last_stream_id(), 1);
    assert!(!p.conn.is_done());
}

#[test]
fn byte_by_byte_input_gives_the_same_events() {
    let mut whole = Peer::default();
    let mut split = Peer::default();
    let mut b = whole.post(1);
    b.extend(data(1, b"abc", false));
    b.extend(data(1, b"def", true));
    let _ = split.post(1); // keep the HPACK encoders in step
    let evs = whole.send(&b).unwrap();
    let mut got = Vec::new();
    for byte in &b {
        got.extend(split.send(std::slice::from_ref(byte)).unwrap());
    }
    assert_eq!(evs, got);
    assert_eq!(evs.len(), 3);
}

#[test]
fn post_body_and_trailers_both_ways() {
    let mut p = Peer::default();
    let mut b = p.headers(
        1,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/p"),
            ("content-length", "6"),
            ("te", "trailers"),
        ],
        false,
    );
    b.extend(data(1, b"abc", false));
    b.extend(data(1, b"def", false));
    let trailers = p.headers(1, &[("x-checksum", "42")], true);
    b.extend(trailers);
    let evs = p.send(&b).unwrap();
    assert_eq!(evs.len(), 4, "{evs:?}");
    assert!(matches!(&evs[0], Ev::Request { fields, end: false, .. }
        if fields == &vec![f("content-length", "6"), f("te", "trailers")]));
    assert_eq!(evs[1], Ev::Data(1, b"abc".to_vec(), false));
    assert_eq!(evs[2], Ev::Data(1, b"def".to_vec(), false));
    assert_eq!(evs[3], Ev::Trailers(1, vec![f("x-checksum", "42")]));
    p.conn.send_headers(1, 200, &[], false).unwrap();
    p.conn
        .send_trailers(1, &[Field::new(b"grpc-status", b"0")])
        .unwrap();
    assert_eq!(
        p.read()[1],
        Out::Headers {
            stream: 1,
            end: true,
            fields: vec![f("grpc-status", "0")],
        }
    );
    assert_eq!(p.conn.open_streams(), 0);
}

#[test]
fn content_length_mismatch_resets_the_stream() {
    for (len, body, end_in_trailers) in [
        ("5", &b"abcdef"[..], false),
        ("7", b"abcdef", false),
        ("7", b"abcdef", true),
    ] {
        let mut p = Peer::default();
        let mut hs = request("POST", "/");
        hs.push(("content-length", len));
        let mut b = p.headers(1, &hs, false);
        b.extend(data(1, body, !end_in_trailers));
        if end_in_trailers {
            b.extend(p.headers(1, &[("x", "y")], true));
        }
        let evs = p.expect_rst(&b, 1, ErrorCode::PROTOCOL_ERROR);
        assert_eq!(
            evs.last(),
            Some(&Ev::Reset(1, ErrorCode::PROTOCOL_ERROR, false)),
            "{len}"
        );
        assert_eq!(p.conn.open_streams(), 0);
    }
    // END_STREAM on the HEADERS with a non-zero content-length.
    let mut p = Peer::default();
    let mut hs = request("POST", "/");
    hs.push(("content-length", "3"));
    let b = p.headers(1, &hs, true);
    assert_eq!(p.expect_rst(&b, 1, ErrorCode::PROTOCOL_ERROR), vec![]);
}

#[test]
fn malformed_requests_are_stream_errors() {
    let base = request("GET", "/");
    let with = |extra: (&'static str, &'static str)| {
        let mut v = base.clone();
        v.push(extra);
        v
    };
    let without = |name: &str| {
        base.iter()
            .copied()
            .filter(|(n, _)| *n != name)
            .collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("uppercase name", with(("X-Upper", "1"))),
        ("connection", with(("connection", "keep-alive"))),
        ("keep-alive", with(("keep-alive", "5"))),
        ("proxy-connection", with(("proxy-connection", "x"))),
        ("transfer-encoding", with(("transfer-encoding", "chunked"))),
        ("upgrade", with(("upgrade", "h2c"))),
        ("te gzip", with(("te", "gzip"))),
        ("missing :path", without(":path")),
        ("missing :method", without(":method")),
        ("missing :scheme", without(":scheme")),
        (
            "pseudo after regular",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                ("a", "b"),
                (":path", "/"),
            ],
        ),
        ("duplicate pseudo", with((":path", "/x"))),
        ("unknown pseudo", with((":foo", "x"))),
        ("response pseudo", with((":status", "200"))),
        (":protocol not enabled", with((":protocol", "websocket"))),
        (
            "empty :path",
            vec![(":method", "GET"), (":scheme", "http"), (":path", "")],
        ),
        (
            "relative :path",
            vec![(":method", "GET"), (":scheme", "http"), (":path", "x")],
        ),
        ("CR in value", with(("x", "a\rb"))),
        ("space around value", with(("x", " a"))),
        ("colon in name", with(("x:y", "a"))),
        ("bad content-length", with(("content-length", "1x"))),
        (
            "conflicting content-length",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("content-length", "1"),
                ("content-length", "2"),
            ],
        ),
        (
            "CONNECT with :path",
            vec![
                (":method", "CONNECT"),
                (":authority", "a:443"),
                (":path", "/"),
            ],
        ),
        ("CONNECT without :authority", vec![(":method", "CONNECT")]),
        ("host differs", with(("host", "other.example"))),
        (
            "two host fields",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("host", "a"),
                ("host", "b"),
            ],
        ),
    ];
    let mut p = Peer::default();
    let mut id = 1;
    for (what, fields) in cases {
        let b = p.headers(id, &fields, true);
        let evs = p.expect_rst(&b, id, ErrorCode::PROTOCOL_ERROR);
        assert!(evs.is_empty(), "{what}: {evs:?}");
        id += 2;
    }
    // HPACK stayed in step, and good requests pass.
    for fields in [
        request("GET", "/"),
        vec![(":method", "CONNECT"), (":authority", "a:443")],
        vec![(":method", "OPTIONS"), (":scheme", "https"), (":path", "*")],
        with(("host", "EXAMPLE.com")),
    ] {
        let b = p.headers(id, &fields, true);
        let evs = p.send(&b).unwrap();
        assert!(
            matches!(evs[..], [Ev::Request { stream, .. }] if stream == id),
            "{fields:?}"
        );
        id += 2;
    }
}

#[test]
fn trailers_rules() {
    // A pseudo-header in trailers, and trailers without END_STREAM.
    for (fields, end) in [(vec![(":path", "/")], true), (vec![("x", "y")], false)] {
        let mut p = Peer::default();
        let b = p.post(1);
        p.send(&b).unwrap();
        let t = p.headers(1, &fields, end);
        let evs = p.expect_rst(&t, 1, ErrorCode::PROTOCOL_ERROR);
        assert_eq!(evs, vec![Ev::Reset(1, ErrorCode::PROTOCOL_ERROR, false)]);
    }
}

#[test]
fn extended_connect_when_enabled() {
    let mut p = Peer::new(Config {
        enable_connect_protocol: true,
        ..Config::default()
    });
    let fields = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":authority", "a"),
        (":path", "/chat"),
    ];
    let b = p.headers(1, &fields, false);
    let mut got = None;
    let n = p
        .conn
        .recv(&b, p.now, &mut |e| {
            if let Event::Request { request, .. } = e {
                got = request.protocol.map(<[u8]>::to_vec);
            }
        })
        .unwrap();
    assert_eq!(n, b.len());
    assert_eq!(got.as_deref(), Some(&b"websocket"[..]));
    // :protocol needs CONNECT.
    let b = p.headers(
        3,
        &[
            (":method", "GET"),
            (":protocol", "x"),
            (":scheme", "https"),
            (":authority", "a"),
            (":path", "/"),
        ],
        true,
    );
    p.expect_rst(&b, 3, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn send_api_refusals() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    let c = &mut p.conn;
    assert_eq!(c.send_data(1, b"x", false), Err(SendError::NoHeaders));
    assert_eq!(c.send_trailers(1, &[]), Err(SendError::NoHeaders));
    assert_eq!(
        c.send_headers(3, 200, &[], false),
        Err(SendError::UnknownStream)
    );
    assert_eq!(c.send_headers(1, 99, &[], false), Err(SendError::Invalid));
    assert_eq!(c.send_headers(1, 101, &[], false), Err(SendError::Invalid));
    assert_eq!(c.send_headers(1, 100, &[], true), Err(SendError::Invalid));
    let bad = [Field::new(b"X-Up", b"1")];
    assert_eq!(c.send_headers(1, 200, &bad, false), Err(SendError::Invalid));
    let bad = [Field::new(b"connection", b"close")];
    assert_eq!(c.send_headers(1, 200, &bad, false), Err(SendError::Invalid));
    let bad = [Field::new(b"x", b"a\nb")];
    assert_eq!(c.send_headers(1, 200, &bad, false), Err(SendError::Invalid));
    c.send_headers(1, 103, &[Field::new(b"link", b"</s.css>")], false)
        .unwrap();
    c.send_headers(1, 204, &[], true).unwrap();
    assert_eq!(c.send_headers(1, 200, &[], false), Err(SendError::Closed));
    assert_eq!(c.send_data(1, b"x", false), Err(SendError::Closed));
    // The request body may still come (half-closed local), then the stream closes.
    assert_eq!(
        p.send(&data(1, b"body", true)).unwrap(),
        vec![Ev::Data(1, b"body".to_vec(), true)]
    );
    assert_eq!(p.conn.open_streams(), 0);
    assert_eq!(
        p.conn.reset(1, ErrorCode::CANCEL),
        Err(SendError::UnknownStream)
    );
    let out = p.read();
    assert!(
        matches!(&out[0], Out::Headers { fields, end: false, .. } if fields[0] == f(":status", "103"))
    );
    assert!(
        matches!(&out[1], Out::Headers { fields, end: true, .. } if fields == &vec![f(":status", "204")])
    );
}

#[test]
fn large_response_headers_use_continuation() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    let big = vec![b'v'; 40_000];
    p.conn
        .send_headers(1, 200, &[Field::new(b"x-big", &big)], true)
        .unwrap();
    let raw = p.conn.output().to_vec();
    let out = p.read();
    assert!(matches!(&out[..], [Out::Headers { fields, end: true, .. }] if fields[1].1 == big));
    // Huffman-coded 'v's (7 bits each): HEADERS + 2 CONTINUATION at 16 KiB each.
    assert!(raw.len() > 2 * 16_393 && raw[3] == 0x1);
    assert_eq!(raw[16_393 + 3], 0x9);
}

#[test]
fn reset_by_the_application() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    p.send(&data(1, b"abc", false)).unwrap();
    p.conn.reset(1, ErrorCode::CANCEL).unwrap();
    assert_eq!(p.read(), vec![Out::Rst(1, ErrorCode::CANCEL)]);
    // Frames still on their way are ignored.
    assert_eq!(p.send(&data(1, b"more", true)).unwrap(), vec![]);
    assert_eq!(p.read(), vec![]);
    assert_eq!(p.conn.open_streams(), 0);
}
