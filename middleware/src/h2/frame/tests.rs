//! Round trips, every validation rule with its code and scope, partial input at every
//! split point, padding, CONTINUATION splitting, unknown types.

use super::*;

pub(super) const MAX: u32 = DEFAULT_MAX_FRAME_SIZE;

/// A frame with any header and payload, valid or not.
pub(super) fn raw(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::head(&mut out, Kind(kind), flags, stream_id, payload.len());
    out.extend_from_slice(payload);
    out
}

/// Decodes exactly one whole frame that fills `buf`.
pub(super) fn one(buf: &[u8]) -> Frame<'_> {
    match decode(buf, MAX) {
        Ok(Status::Complete((f, n))) => {
            assert_eq!(n, buf.len(), "consumed");
            f
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

pub(super) fn err(buf: &[u8]) -> FrameError {
    match decode(buf, MAX) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Decodes every frame of `buf`, which must end on a frame boundary.
pub(super) fn all(buf: &[u8], max: u32) -> Vec<Frame<'_>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match decode(&buf[at..], max) {
            Ok(Status::Complete((f, n))) => {
                frames.push(f);
                at += n;
            }
            other => panic!("at {at}: {other:?}"),
        }
    }
    frames
}

fn round_trip(write: impl FnOnce(&mut Vec<u8>), expected: Frame<'_>) {
    let mut out = Vec::new();
    write(&mut out);
    assert_eq!(one(&out), expected);
    // And `encode::frame` writes the decoded frame back to the same bytes.
    let mut again = Vec::new();
    encode::frame(&mut again, &expected);
    assert_eq!(again, out, "{expected:?}");
}

#[test]
fn every_type_round_trips() {
    let prio = Priority {
        exclusive: true,
        dependency: 0x7fff_fffe,
        weight: 255,
    };
    round_trip(
        |o| encode::data(o, 1, true, b"hello"),
        Frame::Data {
            stream_id: 1,
            end_stream: true,
            data: b"hello",
            pad_len: None,
        },
    );
    round_trip(
        |o| encode::data_padded(o, 3, false, b"hi", 7),
        Frame::Data {
            stream_id: 3,
            end_stream: false,
            data: b"hi",
            pad_len: Some(7),
        },
    );
    round_trip(
        |o| encode::headers(o, 5, true, b"\x82\x86", MAX),
        Frame::Headers {
            stream_id: 5,
            end_stream: true,
            end_headers: true,
            priority: None,
            fragment: b"\x82\x86",
        },
    );
    round_trip(
        |o| encode::headers_with_priority(o, 7, false, false, prio, b"\x84"),
        Frame::Headers {
            stream_id: 7,
            end_stream: false,
            end_headers: false,
            priority: Some(prio),
            fragment: b"\x84",
        },
    );
    round_trip(
        |o| encode::priority(o, 9, prio),
        Frame::Priority {
            stream_id: 9,
            priority: prio,
        },
    );
    round_trip(
        |o| encode::rst_stream(o, 11, ErrorCode(0xabcd)),
        Frame::RstStream {
            stream_id: 11,
            code: ErrorCode(0xabcd),
        },
    );
    let params = [
        Setting::HeaderTableSize(0),
        Setting::EnablePush(false),
        Setting::MaxFrameSize(1 << 20),
        Setting::EnableConnectProtocol(true),
        Setting::Unknown { id: 0x99, value: 1 },
    ];
    let mut out = Vec::new();
    encode::settings(&mut out, params);
    assert_eq!(out.len(), 9 + 30);
    match one(&out) {
        Frame::Settings {
            ack: false,
            params: p,
        } => {
            assert_eq!(p.iter().collect::<Vec<_>>(), params);
            let mut again = Vec::new();
            encode::frame(&mut again, &one(&out));
            assert_eq!(again, out);
        }
        f => panic!("{f:?}"),
    }
    round_trip(
        encode::settings_ack,
        Frame::Settings {
            ack: true,
            params: Params::default(),
        },
    );
    round_trip(
        |o| encode::push_promise(o, 1, 2, b"\x82", MAX),
        Frame::PushPromise {
            stream_id: 1,
            promised_id: 2,
            end_headers: true,
            fragment: b"\x82",
        },
    );
    round_trip(
        |o| encode::ping(o, *b"12345678"),
        Frame::Ping {
            ack: false,
            data: *b"12345678",
        },
    );
    round_trip(
        |o| encode::ping_ack(o, *b"abcdefgh"),
        Frame::Ping {
            ack: true,
            data: *b"abcdefgh",
        },
    );
    round_trip(
        |o| encode::goaway(o, 0x7fff_ffff, ErrorCode::ENHANCE_YOUR_CALM, b"slow down"),
        Frame::GoAway {
            last_stream_id: 0x7fff_ffff,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: b"slow down",
        },
    );
    round_trip(
        |o| encode::window_update(o, 0, 0x7fff_ffff),
        Frame::WindowUpdate {
            stream_id: 0,
            increment: 0x7fff_ffff,
        },
    );
    round_trip(
        |o| encode::window_update(o, 13, 1),
        Frame::WindowUpdate {
            stream_id: 13,
            increment: 1,
        },
    );
    round_trip(
        |o| encode::continuation(o, 15, true, b"more"),
        Frame::Continuation {
            stream_id: 15,
            end_headers: true,
            fragment: b"more",
        },
    );
    round_trip(
        |o| o.extend_from_slice(&raw(0xfa, 0xff, 17, b"ext")),
        Frame::Unknown {
            kind: Kind(0xfa),
            flags: 0xff,
            stream_id: 17,
            payload: b"ext",
        },
    );
}

#[test]
fn data_head_writes_in_place() {
    let mut out = Vec::new();
    encode::data_head(&mut out, 1, true, 3);
    out.extend_from_slice(b"abc");
    let mut copy = Vec::new();
    encode::data(&mut copy, 1, true, b"abc");
    assert_eq!(out, copy);
}

#[test]
fn ignored_bits_are_ignored() {
    // Undefined flags (§4.1), the reserved bit of stream ids and of the GOAWAY last
    // stream id, PUSH_PROMISE promised id, WINDOW_UPDATE increment, PRIORITY
    // dependency (the exclusive flag) are dropped.
    let f = raw(0x0, 0xf6, 0x8000_0001, b"x");
    let mut f = f;
    f[5] |= 0x80;
    assert_eq!(
        one(&f),
        Frame::Data {
            stream_id: 1,
            end_stream: false,
            data: b"x",
            pad_len: None
        }
    );
    assert!(matches!(
        one(&raw(
            0x7,
            0xff,
            0,
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, b'!']
        )),
        Frame::GoAway {
            last_stream_id: 0x7fff_ffff,
            code: ErrorCode::NO_ERROR,
            debug: b"!"
        }
    ));
    assert!(matches!(
        one(&raw(0x5, 0x4, 1, &[0x80, 0, 0, 2, 1])),
        Frame::PushPromise {
            promised_id: 2,
            fragment: &[1],
            ..
        }
    ));
    assert!(matches!(
        one(&raw(0x8, 0xff, 0, &[0x80, 0, 0, 1])),
        Frame::WindowUpdate {
            stream_id: 0,
            increment: 1
        }
    ));
    assert!(matches!(
        one(&raw(0x4, 0xfe, 0, &[])),
        Frame::Settings { ack: false, .. }
    ));
    assert!(matches!(
        one(&raw(0x6, 0xfe, 0, &[0; 8])),
        Frame::Ping { ack: false, .. }
    ));
}

#[test]
fn padding_is_stripped() {
    // DATA: Pad Length + data + padding, up to a payload of only padding.
    assert_eq!(
        one(&raw(0x0, 0x9, 1, &[2, b'a', b'b', 0, 0])),
        Frame::Data {
            stream_id: 1,
            end_stream: true,
            data: b"ab",
            pad_len: Some(2)
        }
    );
    let only = raw(0x0, 0x8, 1, &[4, 0, 0, 0, 0]);
    assert_eq!(one(&only).flow_len(), 5);
    assert!(matches!(one(&only), Frame::Data { data: b"", .. }));
    // Padding bytes need not be zero on receipt.
    assert!(matches!(
        one(&raw(0x0, 0x8, 1, &[1, b'z', 0xff])),
        Frame::Data { data: b"z", .. }
    ));
    // HEADERS with padding and priority; CONTINUATION has no PADDED flag.
    let f = raw(0x1, 0x2c, 3, &[1, 0, 0, 0, 1, 42, 0x82, 0]);
    assert_eq!(
        one(&f),
        Frame::Headers {
            stream_id: 3,
            end_stream: false,
            end_headers: true,
            priority: Some(Priority {
                exclusive: false,
                dependency: 1,
                weight: 42
            }),
            fragment: b"\x82",
        }
    );
    assert!(matches!(
        one(&raw(0x1, 0xc, 3, &[1, 0])),
        Frame::Headers { fragment: b"", .. }
    ));
    assert!(matches!(
        one(&raw(0x5, 0xc, 1, &[2, 0, 0, 0, 4, 0x82, 0, 0])),
        Frame::PushPromise {
            promised_id: 4,
            fragment: b"\x82",
            ..
        }
    ));
    assert!(matches!(
        one(&raw(0x9, 0x8, 1, &[2, 0, 0])),
        Frame::Continuation {
            fragment: &[2, 0, 0],
            ..
        }
    ));
    assert_eq!(
        Frame::Ping {
            ack: false,
            data: [0; 8]
        }
        .flow_len(),
        0
    );
    assert_eq!(one(&raw(0x0, 0, 1, b"abc")).flow_len(), 3);
}

#[test]
fn big_header_blocks_split_into_continuations() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    for (max, frames) in [(MAX, 3), (20_000, 2), (1 << 20, 1), (0, 3)] {
        let mut out = Vec::new();
        encode::headers(&mut out, 1, true, &block, max);
        let fs = all(&out, max.max(MAX));
        assert_eq!(fs.len(), frames, "max {max}");
        let mut joined = Vec::new();
        for (i, f) in fs.iter().enumerate() {
            let last = i + 1 == fs.len();
            match *f {
                Frame::Headers {
                    stream_id: 1,
                    end_stream: true,
                    end_headers,
                    priority: None,
                    fragment,
                } if i == 0 => {
                    assert_eq!(end_headers, last);
                    joined.extend_from_slice(fragment);
                }
                Frame::Continuation {
                    stream_id: 1,
                    end_headers,
                    fragment,
                } if i > 0 => {
                    assert_eq!(end_headers, last);
                    joined.extend_from_slice(fragment);
                }
                ref f => panic!("frame {i}: {f:?}"),
            }
        }
        assert_eq!(joined, block);
    }
    // Exactly one frame's worth, and an empty block.
    let mut out = Vec::new();
    encode::headers(&mut out, 1, false, &block[..16_384], MAX);
    assert_eq!(all(&out, MAX).len(), 1);
    out.clear();
    encode::headers(&mut out, 1, false, &[], MAX);
    assert!(matches!(
        all(&out, MAX)[..],
        [Frame::Headers {
            end_headers: true,
            fragment: b"",
            ..
        }]
    ));
    // PUSH_PROMISE: its 4-byte promised id counts against the first frame.
    out.clear();
    encode::push_promise(&mut out, 1, 2, &block[..16_384], MAX);
    let fs = all(&out, MAX);
    assert!(matches!(fs[..], [
        Frame::PushPromise { promised_id: 2, end_headers: false, fragment: a, .. },
        Frame::Continuation { end_headers: true, fragment: b, .. },
    ] if a.len() == 16_380 && b.len() == 4));
}

#[test]
fn unknown_types_come_back_as_unknown() {
    for kind in [0xa, 0xb, 0x10, 0xff] {
        let f = raw(kind, 0x5a, 0, b"whatever");
        assert_eq!(
            one(&f),
            Frame::Unknown {
                kind: Kind(kind),
                flags: 0x5a,
                stream_id: 0,
                payload: b"whatever"
            }
        );
        assert_eq!(one(&f).kind(), Kind(kind));
    }
    assert!(matches!(
        one(&raw(0xee, 0, 3, &[])),
        Frame::Unknown {
            stream_id: 3,
            payload: b"",
            ..
        }
    ));
}

/// A sequence of frames of every type, cut at every point: Partial (asking for more
/// than it has, never more than the frame needs) until a whole frame is there, then
/// the same frames as in one piece.
#[test]
fn every_split_point_gives_partial_then_the_same_frames() {
    let mut buf = Vec::new();
    encode::settings(&mut buf, [Setting::MaxConcurrentStreams(100)]);
    encode::settings_ack(&mut buf);
    encode::headers(&mut buf, 1, false, &[0x82; 20_000], MAX);
    encode::data_padded(&mut buf, 1, false, b"padded", 3);
    encode::data(&mut buf, 1, true, b"body");
    encode::priority(
        &mut buf,
        3,
        Priority {
            exclusive: false,
            dependency: 1,
            weight: 0,
        },
    );
    encode::rst_stream(&mut buf, 3, ErrorCode::CANCEL);
    encode::push_promise(&mut buf, 1, 2, b"\x82", MAX);
    encode::ping(&mut buf, [9; 8]);
    encode::window_update(&mut buf, 0, 1000);
    buf.extend(raw(0x42, 1, 0, b"ext"));
    encode::goaway(&mut buf, 3, ErrorCode::NO_ERROR, b"bye");
    let whole = all(&buf, MAX);
    assert_eq!(whole.len(), 13);
    for cut in 0..=buf.len() {
        // Decode what the first `cut` bytes hold, then the rest with everything.
        let mut got = Vec::new();
        let mut at = 0;
        loop {
            match decode(&buf[at..cut], MAX).unwrap() {
                Status::Complete((f, n)) => {
                    got.push(f);
                    at += n;
                }
                Status::Partial(need) => {
                    assert!(need > cut - at, "cut {cut}");
                    assert!(at + need <= buf.len() || cut == buf.len(), "cut {cut}");
                    break;
                }
            }
        }
        got.extend(all(&buf[at..], MAX));
        assert_eq!(got, whole, "cut {cut}");
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Wire bytes written out by hand from RFC 9113, as other implementations send them.
#[test]
fn known_wire_bytes() {
    // A padded DATA frame on stream 2: "Hello, world!" and 6 bytes of padding.
    let wire = hex("0000140008000000020648656C6C6F2C20776F726C6421486F77647921");
    assert_eq!(
        one(&wire),
        Frame::Data {
            stream_id: 2,
            end_stream: false,
            data: b"Hello, world!",
            pad_len: Some(6)
        }
    );
    assert_eq!(one(&wire).flow_len(), 20);
    let mut out = Vec::new();
    encode::settings_ack(&mut out);
    assert_eq!(out, hex("000000040100000000"));
    out.clear();
    encode::settings(&mut out, [Setting::MaxConcurrentStreams(100)]);
    assert_eq!(out, hex("000006040000000000000300000064"));
    out.clear();
    encode::window_update(&mut out, 0, 0x7fff_0000);
    assert_eq!(out, hex("0000040800000000007fff0000"));
    out.clear();
    encode::goaway(&mut out, 1, ErrorCode::PROTOCOL_ERROR, b"");
    assert_eq!(out, hex("0000080700000000000000000100000001"));
    out.clear();
    encode::rst_stream(&mut out, 1, ErrorCode::CANCEL);
    assert_eq!(out, hex("00000403000000000100000008"));
}
