//! Hostile peers: every limit ends in the right error, and memory stays bounded.

use super::*;
use crate::h2::frame::{flags, Kind, Priority};

/// Sends `frame` until the connection gives up; returns how many were accepted.
fn flood(p: &mut Peer, frame: &[u8], code: ErrorCode) -> usize {
    for i in 0..100_000 {
        match p.send(frame) {
            Ok(_) => {
                p.read();
            }
            Err(e) => {
                assert_eq!(e.code(), code, "{e}");
                assert!(e.is_flood(), "{e}");
                assert!(matches!(p.read().last(), Some(Out::GoAway(_, c)) if *c == code));
                return i;
            }
        }
    }
    panic!("no limit");
}

#[test]
fn control_frame_floods() {
    let cfg = Config::default();
    let prio = {
        let mut b = Vec::new();
        let p = Priority {
            exclusive: false,
            dependency: 0,
            weight: 1,
        };
        encode::priority(&mut b, 3, p);
        b
    };
    let cases = [
        (settings(&[]), cfg.settings_rate.burst),
        (ping([0; 8]), cfg.ping_rate.burst),
        (prio, cfg.priority_rate.burst),
        (window_update(0, 1), cfg.window_update_rate.burst),
    ];
    for (frame, burst) in cases {
        let mut p = Peer::default();
        assert_eq!(
            flood(&mut p, &frame, ErrorCode::ENHANCE_YOUR_CALM),
            burst as usize
        );
        // At the steady rate the same frames are fine.
        let mut p = Peer::default();
        for _ in 0..3 * burst {
            p.tick(Duration::from_millis(200));
            p.send(&frame).unwrap();
            p.read();
        }
    }
}

#[test]
fn empty_data_flood() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    let burst = Config::default().empty_data_rate.burst as usize;
    assert_eq!(
        flood(&mut p, &data(1, b"", false), ErrorCode::ENHANCE_YOUR_CALM),
        burst
    );
}

#[test]
fn window_updates_earned_by_data_sent() {
    let mut p = Peer::default();
    p.send(&settings(&[Setting::InitialWindowSize(1 << 30)]))
        .unwrap();
    p.send(&window_update(0, 1 << 30)).unwrap();
    let b = p.get(1);
    p.send(&b).unwrap();
    p.conn.send_headers(1, 200, &[], false).unwrap();
    // A download: one WINDOW_UPDATE per DATA frame, for far more than the burst.
    let chunk = vec![0u8; 16_384];
    for _ in 0..2000 {
        assert_eq!(p.conn.send_data(1, &chunk, false), Ok(16_384));
        p.read();
        p.send(&window_update(1, 16_384)).unwrap();
    }
}

#[test]
fn rapid_reset() {
    let mut p = Peer::default();
    let burst = Config::default().reset_rate.burst as usize;
    let mut id = 1;
    let mut opened = 0;
    let e = loop {
        let mut b = p.post(id);
        b.extend(rst(id, ErrorCode::CANCEL));
        match p.send(&b) {
            Ok(evs) => {
                assert_eq!(evs.len(), 2);
                opened += 1;
            }
            Err(e) => break e,
        }
        id += 2;
        assert!(opened <= burst);
    };
    assert_eq!(opened, burst);
    assert_eq!(e.code(), ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(
        p.read().last(),
        Some(&Out::GoAway(id, ErrorCode::ENHANCE_YOUR_CALM))
    );
    assert!(p.conn.is_done());
}

#[test]
fn concurrency_limit_refuses_then_goes_away() {
    let mut p = Peer::new(Config {
        max_concurrent_streams: 2,
        ..Config::default()
    });
    let (a, b) = (p.post(1), p.post(3));
    p.send(&a).unwrap();
    p.send(&b).unwrap();
    let c = p.post(5);
    assert_eq!(p.expect_rst(&c, 5, ErrorCode::REFUSED_STREAM), vec![]);
    // Frames on the refused stream are ignored.
    assert_eq!(p.send(&data(5, b"x", true)).unwrap(), vec![]);
    assert_eq!(p.conn.open_streams(), 2);
    // Closing one makes room.
    p.send(&rst(1, ErrorCode::CANCEL)).unwrap();
    let d = p.post(7);
    assert_eq!(p.send(&d).unwrap().len(), 1);
    // A peer that keeps going over the limit is sent away.
    let mut id = 9;
    let e = loop {
        let h = p.get(id);
        if let Err(e) = p.send(&h) {
            break e;
        }
        p.read();
        id += 2;
    };
    assert_eq!(e.code(), ErrorCode::ENHANCE_YOUR_CALM);
    assert!(id < 9 + 2 * 200);
}

#[test]
fn continuation_flood_of_empty_frames() {
    let mut p = Peer::default();
    let block = p.block(&request("GET", "/"));
    let mut b = Vec::new();
    encode::head(&mut b, Kind::HEADERS, flags::END_STREAM, 1, block.len());
    b.extend_from_slice(&block);
    p.send(&b).unwrap();
    let mut empty = Vec::new();
    encode::continuation(&mut empty, 1, false, b"");
    let max = Config::default().max_continuation_frames;
    for _ in 0..max {
        p.send(&empty).unwrap();
    }
    p.expect_goaway(&empty, ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn continuation_flood_of_big_frames_is_not_buffered() {
    let mut p = Peer::default();
    let limit = Config::default().max_header_block_size as usize;
    let mut b = Vec::new();
    encode::head(&mut b, Kind::HEADERS, 0, 1, 16_000);
    b.extend(std::iter::repeat_n(0x40u8, 16_000));
    p.send(&b).unwrap();
    let mut c = Vec::new();
    encode::continuation(&mut c, 1, false, &[0u8; 16_000]);
    p.send(&c).unwrap();
    assert!(p.conn.block.len() <= limit);
    let e = p.expect_goaway(&c, ErrorCode::ENHANCE_YOUR_CALM);
    assert!(e.is_flood());
    assert!(p.conn.block.capacity() <= 2 * limit);
}

#[test]
fn hpack_bomb_gets_431_and_decoding_stays_in_step() {
    let mut p = Peer::default();
    // One 60-byte value in the dynamic table, then referenced 200 times: a block of
    // ~250 bytes that decodes to ~19 KB, over the 16 KiB list limit.
    let value = "b".repeat(60);
    let mut fields = request("POST", "/");
    fields.push(("x-bomb", &value));
    let first = p.headers(1, &fields, true);
    assert_eq!(p.send(&first).unwrap().len(), 1);
    let mut many = request("POST", "/");
    for _ in 0..200 {
        many.push(("x-bomb", &value));
    }
    let b = p.headers(3, &many, false);
    assert!(b.len() < 300, "{}", b.len());
    assert_eq!(p.send(&b).unwrap(), vec![]);
    let out = p.read();
    assert!(
        matches!(&out[0], Out::Headers { stream: 3, end: true, fields } if fields[0].1 == b"431")
    );
    assert_eq!(out[1], Out::Rst(3, ErrorCode::NO_ERROR));
    // Late body frames are ignored; the next request decodes.
    assert_eq!(p.send(&data(3, b"x", true)).unwrap(), vec![]);
    let b = p.get(5);
    assert_eq!(p.send(&b).unwrap().len(), 1);
    assert!(p.conn.headers.capacity() < 64 << 10);
    // Trailers over the limit reset the stream.
    let h = p.post(7);
    p.send(&h).unwrap();
    let t = p.headers(7, &many[4..], true);
    assert!(t.len() < 300);
    let evs = p.expect_rst(&t, 7, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(evs, vec![Ev::Reset(7, ErrorCode::ENHANCE_YOUR_CALM, false)]);
}

#[test]
fn output_is_bounded_when_the_peer_does_not_read() {
    let cfg = Config {
        max_output: 16 << 10,
        ping_rate: crate::h2::conn::Rate::new(u32::MAX, 0),
        ..Config::default()
    };
    let mut p = Peer::new(cfg);
    let mut pings = Vec::new();
    for _ in 0..10_000 {
        pings.extend(ping([7; 8]));
    }
    let mut evs = 0;
    let n = p.conn.recv(&pings, p.now, &mut |_| evs += 1).unwrap();
    assert!(n < pings.len());
    let queued = p.conn.output().len();
    assert!(((16 << 10)..(16 << 10) + 64).contains(&queued), "{queued}");
    // Nothing more is read until the output drains.
    assert_eq!(p.conn.recv(&pings[n..], p.now, &mut |_| {}), Ok(0));
    p.conn.consume_output(queued);
    assert!(p.conn.recv(&pings[n..], p.now, &mut |_| {}).unwrap() > 0);
}

#[test]
fn max_frame_size_is_enforced() {
    let mut p = Peer::default();
    let b = p.post(1);
    p.send(&b).unwrap();
    p.expect_goaway(&data(1, &[0; 16_385], false), ErrorCode::FRAME_SIZE_ERROR);
}
