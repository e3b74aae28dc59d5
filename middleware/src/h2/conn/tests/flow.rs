//! Flow control both ways (RFC 9113 §5.2, §6.9).

use super::*;
use crate::h2::conn::SendError;

#[test]
fn unreleased_body_closes_the_stream_window() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    let chunk = vec![7u8; 16_384];
    for _ in 0..3 {
        assert_eq!(p.send(&data(1, &chunk, false)).unwrap().len(), 1);
    }
    p.send(&data(1, &chunk[..16_383], false)).unwrap();
    // 65,535 bytes: the window is used up and nothing was released.
    assert_eq!(p.read(), vec![]);
    let evs = p.expect_rst(&data(1, b"x", false), 1, ErrorCode::FLOW_CONTROL_ERROR);
    assert_eq!(
        evs,
        vec![Ev::Reset(1, ErrorCode::FLOW_CONTROL_ERROR, false)]
    );
}

#[test]
fn connection_window_overrun_is_a_connection_error() {
    let mut p = Peer::new(Config {
        connection_window_size: 65_535,
        initial_window_size: 1 << 20,
        ..Config::default()
    });
    let mut b = p.post(1);
    b.extend(p.post(3));
    b.extend(settings(&[]));
    p.send(&b).unwrap();
    let chunk = vec![0u8; 16_000];
    for i in 0..4 {
        p.send(&data(1 + 2 * (i % 2), &chunk, false)).unwrap();
    }
    p.expect_goaway(&data(3, &chunk, false), ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn releasing_sends_window_updates_at_half() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    let chunk = vec![1u8; 16_384];
    for _ in 0..3 {
        p.send(&data(1, &chunk, false)).unwrap();
    }
    p.conn.release(1, 16_384);
    assert_eq!(p.read(), vec![], "below half of the window");
    p.conn.release(1, 16_384);
    // 32,768 >= 65,535 / 2 on the stream; the connection's 1 MiB needs more.
    assert_eq!(p.read(), vec![Out::WindowUpdate(1, 32_768)]);
    // Releasing more than delivered counts only what was delivered.
    p.conn.release(1, 1 << 30);
    assert_eq!(p.read(), vec![]);
    // The window is open again: 65,535 - 49,152 + 32,768 bytes may come.
    for _ in 0..2 {
        p.send(&data(1, &chunk, false)).unwrap();
    }
    p.send(&data(1, &chunk[..16_383], false)).unwrap();
    assert!(p.read().is_empty());
}

#[test]
fn connection_window_update_after_half_the_connection_window() {
    let mut p = Peer::default();
    let chunk = vec![1u8; 16_000];
    let mut released = 0;
    for i in 0..40u32 {
        let id = 1 + 2 * i;
        let mut b = p.post(id);
        b.extend(data(id, &chunk, true));
        p.send(&b).unwrap();
        p.conn.release(id, chunk.len());
        released += chunk.len();
        p.conn.send_headers(id, 200, &[], true).unwrap();
        let ups: Vec<_> = p
            .read()
            .into_iter()
            .filter(|o| matches!(o, Out::WindowUpdate(0, _)))
            .collect();
        if released >= (1 << 20) / 2 {
            assert_eq!(ups, vec![Out::WindowUpdate(0, released as u32)]);
            return;
        }
        assert!(ups.is_empty());
    }
    panic!("no connection WINDOW_UPDATE");
}

#[test]
fn padding_is_released_at_once() {
    let mut p = Peer::new(Config {
        connection_window_size: 65_535,
        ..Config::default()
    });
    let b = p.post(1);
    p.send(&b).unwrap();
    let mut b = Vec::new();
    for _ in 0..300 {
        b.clear();
        encode::data_padded(&mut b, 1, false, b"", 250);
        // 300 x 251 bytes of padding: more than both windows unless given back.
        let evs = p.send(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(evs.is_empty());
        p.tick(Duration::from_secs(1));
    }
    let ups = p.read();
    assert!(
        ups.iter().any(|o| matches!(o, Out::WindowUpdate(1, _))),
        "{ups:?}"
    );
    assert!(
        ups.iter().any(|o| matches!(o, Out::WindowUpdate(0, _))),
        "{ups:?}"
    );
}

#[test]
fn send_data_is_bounded_by_windows_and_resumes() {
    let mut p = Peer::default();
    p.send(&settings(&[Setting::InitialWindowSize(10)]))
        .unwrap();
    p.read();
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn.send_headers(1, 200, &[], false).unwrap();
    assert_eq!(p.conn.send_capacity(1), 10);
    assert_eq!(p.conn.send_data(1, b"0123456789abcdef", true), Ok(10));
    assert_eq!(p.conn.send_data(1, b"abcdef", true), Ok(0));
    let out = p.read();
    assert_eq!(out[1], Out::Data(1, b"0123456789".to_vec(), false));
    assert_eq!(out.len(), 2);
    // A WINDOW_UPDATE opens the stream: the application is told.
    assert_eq!(p.send(&window_update(1, 4)).unwrap(), vec![Ev::Writable(1)]);
    assert_eq!(p.conn.send_data(1, b"abcdef", true), Ok(4));
    assert_eq!(
        p.send(&window_update(1, 100)).unwrap(),
        vec![Ev::Writable(1)]
    );
    assert_eq!(p.conn.send_data(1, b"ef", true), Ok(2));
    let out = p.read();
    assert_eq!(
        out,
        vec![
            Out::Data(1, b"abcd".to_vec(), false),
            Out::Data(1, b"ef".to_vec(), true)
        ]
    );
    // No Writable for a stream that did not ask.
    assert_eq!(
        p.conn.send_data(1, b"x", false),
        Err(SendError::UnknownStream)
    );
}

#[test]
fn connection_send_window_is_shared() {
    let mut p = Peer::default();
    p.send(&settings(&[Setting::InitialWindowSize(1 << 20)]))
        .unwrap();
    let (b1, b3) = (p.get(1), p.get(3));
    p.send(&b1).unwrap();
    p.send(&b3).unwrap();
    let body = vec![9u8; 50_000];
    p.conn.send_headers(1, 200, &[], false).unwrap();
    p.conn.send_headers(3, 200, &[], false).unwrap();
    assert_eq!(p.conn.send_data(1, &body, true), Ok(50_000));
    assert_eq!(p.conn.send_data(3, &body, true), Ok(15_535));
    let frames = p.read();
    // At most the peer's max frame size per DATA frame.
    assert!(frames
        .iter()
        .all(|o| !matches!(o, Out::Data(_, d, _) if d.len() > 16_384)));
    assert_eq!(
        p.send(&window_update(0, 1000)).unwrap(),
        vec![Ev::Writable(3)]
    );
    assert_eq!(p.conn.send_data(3, &body[15_535..], true), Ok(1000));
}

#[test]
fn initial_window_size_changes_adjust_open_streams() {
    let mut p = Peer::default();
    p.send(&settings(&[Setting::InitialWindowSize(100)]))
        .unwrap();
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn.send_headers(1, 200, &[], false).unwrap();
    assert_eq!(p.conn.send_data(1, &[0; 200], false), Ok(100));
    // 100 -> 50: the window goes to -50.
    assert_eq!(
        p.send(&settings(&[Setting::InitialWindowSize(50)]))
            .unwrap(),
        vec![Ev::Settings]
    );
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(p.send(&window_update(1, 40)).unwrap(), vec![]);
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(
        p.send(&window_update(1, 20)).unwrap(),
        vec![Ev::Writable(1)]
    );
    assert_eq!(p.conn.send_capacity(1), 10);
    // Raising it opens the stream: 10 + 1000.
    p.conn.send_data(1, &[0; 100], false).unwrap();
    let evs = p
        .send(&settings(&[Setting::InitialWindowSize(1050)]))
        .unwrap();
    assert_eq!(evs, vec![Ev::Settings, Ev::Writable(1)]);
    assert_eq!(p.conn.send_capacity(1), 1000);
    // Past 2^31-1 is a connection error (the window is 1000 + 100 over the initial).
    p.send(&window_update(1, 100)).unwrap();
    p.expect_goaway(
        &settings(&[Setting::InitialWindowSize(0x7fff_ffff)]),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn window_update_overflow() {
    let mut p = Peer::default();
    let b = p.get(1);
    p.send(&b).unwrap();
    let evs = p.expect_rst(
        &window_update(1, 0x7fff_ffff),
        1,
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    assert_eq!(
        evs,
        vec![Ev::Reset(1, ErrorCode::FLOW_CONTROL_ERROR, false)]
    );
    p.expect_goaway(
        &window_update(0, 0x7fff_ffff),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn our_smaller_window_applies_when_acknowledged() {
    let now = Instant::now();
    let mut conn = Connection::server(
        Config {
            initial_window_size: 1000,
            ..Config::default()
        },
        now,
    );
    let mut enc = Encoder::new();
    let mut block = Vec::new();
    enc.encode(
        request("POST", "/")
            .iter()
            .map(|(n, v)| Field::new(n.as_bytes(), v.as_bytes())),
        &mut block,
    );
    let mut b = PREFACE.to_vec();
    encode::settings(&mut b, []);
    encode::headers(&mut b, 1, false, &block, 16_384);
    // Before the ACK the peer may use the initial 65,535.
    encode::data(&mut b, 1, false, &[0; 2000]);
    let mut n = 0;
    conn.recv(&b, now, &mut |_| n += 1).unwrap();
    assert_eq!(n, 3);
    assert!(conn.settings_pending_since().is_some());
    b.clear();
    encode::settings_ack(&mut b);
    conn.recv(&b, now, &mut |_| {}).unwrap();
    assert_eq!(conn.settings_pending_since(), None);
    // Now the window is 1000 - 2000: no more data.
    b.clear();
    encode::data(&mut b, 1, false, &[0; 1]);
    conn.recv(&b, now, &mut |_| {}).unwrap();
    let tail = &conn.output()[conn.output().len() - 13..];
    assert_eq!(tail[3], 0x3, "RST_STREAM");
    assert_eq!(&tail[9..], &ErrorCode::FLOW_CONTROL_ERROR.0.to_be_bytes());
}
