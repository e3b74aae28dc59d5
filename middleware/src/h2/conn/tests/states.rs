//! Stream states (RFC 9113 §5.1), frame sequencing, settings, PING, GOAWAY.

use super::*;
use crate::h2::frame::Priority;

fn priority(stream: u32, dependency: u32) -> Vec<u8> {
    let mut b = Vec::new();
    encode::priority(
        &mut b,
        stream,
        Priority {
            exclusive: false,
            dependency,
            weight: 15,
        },
    );
    b
}

#[test]
fn preface_and_first_frame() {
    let now = Instant::now();
    let mut c = Connection::server(Config::default(), now);
    assert_eq!(c.recv(&PREFACE[..10], now, &mut |_| {}), Ok(0));
    let e = c.recv(b"GET / HTTP/1.1\r\n", now, &mut |_| {}).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR);
    // The first frame must be SETTINGS.
    let mut c = Connection::server(Config::default(), now);
    let mut b = PREFACE.to_vec();
    b.extend(ping([0; 8]));
    assert_eq!(
        c.recv(&b, now, &mut |_| {}).unwrap_err().code(),
        ErrorCode::PROTOCOL_ERROR
    );
    assert!(c.is_done());
}

#[test]
fn frames_on_idle_streams_are_connection_errors() {
    for frame in [
        data(1, b"x", false),
        window_update(3, 1),
        rst(5, ErrorCode::CANCEL),
        data(2, b"", true),
    ] {
        let mut p = Peer::default();
        p.expect_goaway(&frame, ErrorCode::PROTOCOL_ERROR);
    }
    // PRIORITY on an idle stream is fine.
    let mut p = Peer::default();
    assert_eq!(p.send(&priority(9, 1)).unwrap(), vec![]);
    let b = p.get(9);
    assert_eq!(p.send(&b).unwrap().len(), 1);
}

#[test]
fn stream_ids_must_be_odd_and_increasing() {
    let mut p = Peer::default();
    let b = p.get(2);
    p.expect_goaway(&b, ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::default();
    let b = p.get(5);
    p.send(&b).unwrap();
    let b = p.get(3);
    let e = p.expect_goaway(&b, ErrorCode::PROTOCOL_ERROR);
    assert!(e.to_string().contains("lower"), "{e}");
    assert_eq!(p.conn.last_stream_id(), 5);
}

#[test]
fn half_closed_remote_refuses_data_and_headers() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    let evs = p.expect_rst(&data(1, b"x", false), 1, ErrorCode::STREAM_CLOSED);
    assert_eq!(evs, vec![Ev::Reset(1, ErrorCode::STREAM_CLOSED, false)]);
    let b = p.get(3);
    p.send(&b).unwrap();
    let h = p.headers(3, &[("x", "y")], true);
    p.expect_rst(&h, 3, ErrorCode::STREAM_CLOSED);
    // WINDOW_UPDATE, PRIORITY and RST_STREAM are fine in half-closed (remote).
    let b = p.get(5);
    p.send(&b).unwrap();
    assert_eq!(p.send(&window_update(5, 10)).unwrap(), vec![]);
    assert_eq!(p.send(&priority(5, 1)).unwrap(), vec![]);
    assert_eq!(
        p.send(&rst(5, ErrorCode::CANCEL)).unwrap(),
        vec![Ev::Reset(5, ErrorCode::CANCEL, true)]
    );
}

#[test]
fn closed_after_end_stream_both_ways() {
    for late in ["data", "headers"] {
        let mut p = Peer::default();
        let b = p.get(1);
        p.send(&b).unwrap();
        p.conn.send_headers(1, 204, &[], true).unwrap();
        p.read();
        // WINDOW_UPDATE and PRIORITY on a closed stream are ignored.
        assert_eq!(p.send(&window_update(1, 1)).unwrap(), vec![]);
        assert_eq!(p.send(&priority(1, 0)).unwrap(), vec![]);
        let b = if late == "data" {
            data(1, b"x", true)
        } else {
            p.get(1)
        };
        p.expect_goaway(&b, ErrorCode::STREAM_CLOSED);
    }
}

#[test]
fn closed_by_peer_reset() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    assert_eq!(
        p.send(&rst(1, ErrorCode::CANCEL)).unwrap(),
        vec![Ev::Reset(1, ErrorCode::CANCEL, true)]
    );
    assert_eq!(p.send(&priority(1, 0)).unwrap(), vec![]);
    assert_eq!(p.send(&window_update(1, 5)).unwrap(), vec![]);
    p.expect_rst(&data(1, b"x", false), 1, ErrorCode::STREAM_CLOSED);
    let b = p.headers(1, &[("x", "y")], true);
    p.expect_rst(&b, 1, ErrorCode::STREAM_CLOSED);
    // The dropped DATA still counted against the connection window (given back).
    assert_eq!(
        p.conn.send_headers(1, 200, &[], true),
        Err(crate::h2::conn::SendError::UnknownStream)
    );
}

#[test]
fn header_block_sequencing() {
    let mut p = Peer::default();
    let block = p.block(&request("GET", "/"));
    let (a, b) = block.split_at(3);
    let mut frames = Vec::new();
    encode::head(
        &mut frames,
        crate::h2::frame::Kind::HEADERS,
        crate::h2::frame::flags::END_STREAM,
        1,
        a.len(),
    );
    frames.extend_from_slice(a);
    encode::continuation(&mut frames, 1, false, &b[..1]);
    encode::continuation(&mut frames, 1, true, &b[1..]);
    let evs = p.send(&frames).unwrap();
    assert!(matches!(
        evs[..],
        [Ev::Request {
            stream: 1,
            end: true,
            ..
        }]
    ));

    // Anything else inside a block is a connection error.
    let interrupted = |second: Vec<u8>| {
        let mut p = Peer::default();
        let block = p.block(&request("GET", "/"));
        let mut b = Vec::new();
        encode::head(&mut b, crate::h2::frame::Kind::HEADERS, 0, 1, block.len());
        b.extend_from_slice(&block);
        b.extend(second);
        p.expect_goaway(&b, ErrorCode::PROTOCOL_ERROR);
    };
    interrupted(ping([1; 8]));
    interrupted(data(1, b"", true));
    let mut other = Vec::new();
    encode::continuation(&mut other, 3, true, b"");
    interrupted(other);
    let mut unknown = Vec::new();
    encode::head(&mut unknown, crate::h2::frame::Kind(0xee), 0, 0, 0);
    interrupted(unknown);
    // CONTINUATION with no block open.
    let mut p = Peer::default();
    let mut c = Vec::new();
    encode::continuation(&mut c, 1, true, b"");
    p.expect_goaway(&c, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn push_promise_from_a_client() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    let mut pp = Vec::new();
    encode::push_promise(&mut pp, 1, 2, b"", 16_384);
    p.expect_goaway(&pp, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn self_dependency_is_a_stream_error() {
    let mut p = Peer::default();
    p.expect_rst(&priority(3, 3), 3, ErrorCode::PROTOCOL_ERROR);
    let block = p.block(&request("GET", "/"));
    let mut b = Vec::new();
    let prio = Priority {
        exclusive: false,
        dependency: 5,
        weight: 0,
    };
    encode::headers_with_priority(&mut b, 5, true, true, prio, &block);
    assert_eq!(p.expect_rst(&b, 5, ErrorCode::PROTOCOL_ERROR), vec![]);
    // HPACK in step.
    let b = p.get(7);
    assert_eq!(p.send(&b).unwrap().len(), 1);
}

#[test]
fn ping_settings_goaway_from_the_peer() {
    let mut p = Peer::default();
    assert_eq!(p.send(&ping(*b"12345678")).unwrap(), vec![]);
    assert_eq!(p.read(), vec![Out::PingAck(*b"12345678")]);
    let mut ack = Vec::new();
    encode::ping_ack(&mut ack, [0; 8]);
    assert_eq!(p.send(&ack).unwrap(), vec![]);
    assert_eq!(p.read(), vec![]);
    // Settings are acknowledged and applied: HEADER_TABLE_SIZE 0 reaches the encoder
    // (the reader's decoder follows the size update), MAX_FRAME_SIZE the sender.
    let evs = p
        .send(&settings(&[
            Setting::HeaderTableSize(0),
            Setting::MaxFrameSize(1 << 20),
        ]))
        .unwrap();
    assert_eq!(evs, vec![Ev::Settings]);
    assert_eq!(p.read(), vec![Out::SettingsAck]);
    assert_eq!(p.conn.peer_settings().max_frame_size, 1 << 20);
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn
        .send_headers(1, 200, &[Field::new(b"x", &[b'a'; 30_000])], true)
        .unwrap();
    assert!(p.conn.output().len() < 16_384 + 30_100 && p.conn.output()[..3] != [0, 0x40, 0]);
    assert!(matches!(&p.read()[..], [Out::Headers { end: true, .. }]));
    let mut g = Vec::new();
    encode::goaway(&mut g, 0, ErrorCode(0xff), b"bye");
    assert_eq!(p.send(&g).unwrap(), vec![Ev::GoAway(0, ErrorCode(0xff))]);
    assert_eq!(p.conn.peer_went_away(), Some(0));
    // Still alive (an unknown code means nothing special).
    p.send(&ping([2; 8])).unwrap();
    assert_eq!(p.read(), vec![Out::PingAck([2; 8])]);
}

#[test]
fn graceful_shutdown() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn.shutdown();
    let out = p.read();
    assert_eq!(
        out,
        vec![
            Out::GoAway(0x7fff_ffff, ErrorCode::NO_ERROR),
            Out::Ping(*b"wl-drain")
        ]
    );
    // A stream opened before the PING's ACK is served.
    let b = p.get(3);
    assert_eq!(p.send(&b).unwrap().len(), 1);
    let mut ack = Vec::new();
    encode::ping_ack(&mut ack, *b"wl-drain");
    p.send(&ack).unwrap();
    assert_eq!(p.read(), vec![Out::GoAway(3, ErrorCode::NO_ERROR)]);
    // Later streams are refused; HPACK stays in step.
    let b = p.get(5);
    assert_eq!(p.expect_rst(&b, 5, ErrorCode::REFUSED_STREAM), vec![]);
    assert!(!p.conn.is_done());
    p.conn.send_headers(1, 200, &[], true).unwrap();
    assert!(!p.conn.is_done());
    p.conn.send_headers(3, 200, &[], true).unwrap();
    assert!(p.conn.is_done());
    assert_eq!(p.read().len(), 2);
}

#[test]
fn go_away_at_once() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn.go_away(ErrorCode::NO_ERROR, b"idle");
    assert_eq!(p.read(), vec![Out::GoAway(1, ErrorCode::NO_ERROR)]);
    assert!(!p.conn.is_done());
    p.conn.send_headers(1, 200, &[], true).unwrap();
    assert!(p.conn.is_done());
}

#[test]
fn closed_streams_memory_is_bounded() {
    let mut p = Peer::new(Config {
        closed_streams_remembered: 16,
        ..Config::default()
    });
    for i in 0..100u32 {
        let id = 1 + 2 * i;
        let b = p.get(id);
        p.send(&b).unwrap();
        p.conn.send_headers(id, 204, &[], true).unwrap();
        p.read();
        p.tick(Duration::from_secs(1));
    }
    assert_eq!(p.conn.streams.remembered(), 16);
    assert_eq!(p.conn.open_streams(), 0);
    // A forgotten stream's late DATA is still a stream error STREAM_CLOSED.
    p.expect_rst(&data(1, b"x", false), 1, ErrorCode::STREAM_CLOSED);
}
