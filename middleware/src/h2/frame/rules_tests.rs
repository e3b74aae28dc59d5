//! Every validation rule of the decoder gives its code and scope, at every cut of the
//! input; stream errors let decoding go on.

use super::tests::{err, one, raw, MAX};
use super::*;

/// One rule: its name, the frame, the code, the stream for a stream error, the reason.
type Rule = (&'static str, Vec<u8>, ErrorCode, Option<u32>, Reason);

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    raw(0x4, 0, 0, &p)
}

/// Every rule the decoder checks (RFC 9113 §4.2, §6; the h2spec cases of §4 to §6
/// that one frame shows).
#[rustfmt::skip]
fn rules() -> Vec<Rule> {
    use ErrorCode as C;
    use Reason as R;
    let (fse, pe) = (C::FRAME_SIZE_ERROR, C::PROTOCOL_ERROR);
    vec![
        // §4.2: any type, known or not, over the max frame size.
        ("DATA too large", raw(0x0, 0, 1, &[0; 16_385]), fse, None, R::TooLarge),
        ("HEADERS too large", raw(0x1, 4, 1, &[0; 16_385]), fse, None, R::TooLarge),
        ("unknown too large", raw(0xbb, 0, 1, &[0; 16_385]), fse, None, R::TooLarge),
        // Stream 0 where a stream is needed.
        ("DATA on 0", raw(0x0, 0, 0, b"x"), pe, None, R::StreamZero),
        ("HEADERS on 0", raw(0x1, 4, 0, b"x"), pe, None, R::StreamZero),
        ("PRIORITY on 0", raw(0x2, 0, 0, &[0, 0, 0, 1, 0]), pe, None, R::StreamZero),
        ("PRIORITY on 0, length 4", raw(0x2, 0, 0, &[0; 4]), pe, None, R::StreamZero),
        ("RST_STREAM on 0", raw(0x3, 0, 0, &[0; 4]), pe, None, R::StreamZero),
        ("PUSH_PROMISE on 0", raw(0x5, 4, 0, &[0, 0, 0, 2]), pe, None, R::StreamZero),
        ("CONTINUATION on 0", raw(0x9, 4, 0, b"x"), pe, None, R::StreamZero),
        // A stream where stream 0 is needed.
        ("SETTINGS on 1", raw(0x4, 0, 1, &[]), pe, None, R::NotStreamZero),
        ("PING on 1", raw(0x6, 0, 1, &[0; 8]), pe, None, R::NotStreamZero),
        ("GOAWAY on 1", raw(0x7, 0, 1, &[0; 8]), pe, None, R::NotStreamZero),
        // Lengths.
        ("SETTINGS length 3", raw(0x4, 0, 0, &[0; 3]), fse, None, R::BadLength),
        ("SETTINGS length 7", raw(0x4, 0, 0, &[0; 7]), fse, None, R::BadLength),
        ("SETTINGS ack + payload", raw(0x4, 1, 0, &[0; 6]), fse, None, R::AckWithPayload),
        ("PING length 7", raw(0x6, 0, 0, &[0; 7]), fse, None, R::BadLength),
        ("PING ack length 9", raw(0x6, 1, 0, &[0; 9]), fse, None, R::BadLength),
        ("RST_STREAM length 3", raw(0x3, 0, 1, &[0; 3]), fse, None, R::BadLength),
        ("RST_STREAM length 5", raw(0x3, 0, 1, &[0; 5]), fse, None, R::BadLength),
        ("PRIORITY length 4", raw(0x2, 0, 3, &[0; 4]), fse, Some(3), R::BadLength),
        ("PRIORITY length 6", raw(0x2, 0, 3, &[0; 6]), fse, Some(3), R::BadLength),
        ("WINDOW_UPDATE length 3", raw(0x8, 0, 0, &[0, 0, 1]), fse, None, R::BadLength),
        ("WINDOW_UPDATE length 5, stream", raw(0x8, 0, 1, &[0, 0, 0, 1, 0]), fse, None, R::BadLength),
        ("GOAWAY length 7", raw(0x7, 0, 0, &[0; 7]), fse, None, R::TooShort),
        ("DATA padded, empty", raw(0x0, 0x8, 1, &[]), fse, None, R::TooShort),
        ("HEADERS padded, empty", raw(0x1, 0x8, 1, &[]), fse, None, R::TooShort),
        ("HEADERS priority, 4 bytes", raw(0x1, 0x20, 1, &[0; 4]), fse, None, R::TooShort),
        ("HEADERS padded + priority, 5 bytes", raw(0x1, 0x28, 1, &[0; 5]), fse, None, R::TooShort),
        ("PUSH_PROMISE 3 bytes", raw(0x5, 4, 1, &[0; 3]), fse, None, R::TooShort),
        ("PUSH_PROMISE padded, 4 bytes", raw(0x5, 0xc, 1, &[0; 4]), fse, None, R::TooShort),
        // WINDOW_UPDATE increment 0: a stream error on a stream, a connection error on
        // stream 0; the reserved bit alone is an increment of 0 too.
        ("WINDOW_UPDATE 0 on a stream", raw(0x8, 0, 5, &[0; 4]), pe, Some(5), R::ZeroIncrement),
        ("WINDOW_UPDATE 0 on 0", raw(0x8, 0, 0, &[0; 4]), pe, None, R::ZeroIncrement),
        ("WINDOW_UPDATE R bit only", raw(0x8, 0, 0, &[0x80, 0, 0, 0]), pe, None, R::ZeroIncrement),
        // Padding (the Pad Length byte counts in the payload).
        ("DATA pad = length", raw(0x0, 0x8, 1, &[3, 0, 0]), pe, None, R::TooMuchPadding),
        ("DATA pad > length", raw(0x0, 0x8, 1, &[255]), pe, None, R::TooMuchPadding),
        ("HEADERS pad = length", raw(0x1, 0xc, 1, &[2, 0]), pe, None, R::TooMuchPadding),
        ("HEADERS pad eats priority", raw(0x1, 0x2c, 1, &[2, 0, 0, 0, 3, 16, 0]), pe, None, R::TooMuchPadding),
        ("PUSH_PROMISE pad eats promised id", raw(0x5, 0xc, 1, &[2, 0, 0, 0, 2, 0]), pe, None, R::TooMuchPadding),
        // A priority naming its own stream; a promise of stream 0.
        ("PRIORITY self-dependency", raw(0x2, 0, 7, &[0x80, 0, 0, 7, 16]), pe, Some(7), R::SelfDependency),
        ("PUSH_PROMISE promises 0", raw(0x5, 4, 1, &[0x80, 0, 0, 0]), pe, None, R::PromisedStreamZero),
        // SETTINGS values.
        ("ENABLE_PUSH 2", settings(&[(2, 2)]), pe, None, R::InvalidEnablePush),
        ("INITIAL_WINDOW_SIZE 2^31", settings(&[(4, 1 << 31)]), C::FLOW_CONTROL_ERROR, None, R::InvalidInitialWindowSize),
        ("MAX_FRAME_SIZE 2^14-1", settings(&[(5, 16_383)]), pe, None, R::InvalidMaxFrameSize),
        ("MAX_FRAME_SIZE 2^24", settings(&[(5, 1 << 24)]), pe, None, R::InvalidMaxFrameSize),
        ("MAX_FRAME_SIZE 0 after good ones", settings(&[(1, 0), (0x77, 5), (5, 0)]), pe, None, R::InvalidMaxFrameSize),
        ("ENABLE_CONNECT_PROTOCOL 2", settings(&[(8, 2)]), pe, None, R::InvalidEnableConnectProtocol),
    ]
}

#[test]
fn every_rule_gives_its_code_and_scope() {
    for (name, frame, code, stream, reason) in rules() {
        let e = err(&frame);
        assert_eq!(
            (e.code(), e.stream_id(), e.reason()),
            (code, stream, reason),
            "{name}"
        );
        assert_eq!(e.frame_len(), frame.len(), "{name}");
        assert_eq!(e.is_connection_error(), stream.is_none(), "{name}");
        // Cut anywhere, the input gives Partial until the error shows (from the header
        // for the connection errors a header shows, else from the whole frame), then
        // the same error.
        for cut in 0..frame.len() {
            match decode(&frame[..cut], MAX) {
                Ok(Status::Partial(n)) => {
                    assert!(n > cut, "{name}: cut {cut}: Partial({n})");
                    assert!(n == HEAD_LEN || n == frame.len(), "{name}: {n}");
                }
                Err(same) => {
                    assert!(cut >= HEAD_LEN, "{name}: cut {cut}");
                    assert_eq!(same, e, "{name}: cut {cut}");
                }
                Ok(c) => panic!("{name}: cut {cut}: {c:?}"),
            }
        }
    }
}

#[test]
fn oversize_is_refused_from_the_header_alone() {
    let head = &raw(0x0, 0, 1, &[0; 100])[..HEAD_LEN];
    let e = decode(head, 99).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FRAME_SIZE_ERROR);
    assert_eq!(e.frame_len(), 109);
    assert_eq!(decode(head, 100), Ok(Status::Partial(109)));
    // The 2^14 minimum every endpoint must accept, and the largest possible.
    let f = raw(0x0, 0, 1, &[7; 16_384]);
    assert!(matches!(one(&f), Frame::Data { data, .. } if data.len() == 16_384));
    let big = raw(0x0, 0, 1, &[7; (1 << 24) - 1]);
    assert!(decode(&big, MAX).is_err());
    assert!(decode(&big, MAX_FRAME_SIZE_LIMIT).unwrap().is_complete());
}

#[test]
fn stream_errors_let_decoding_go_on() {
    let mut buf = raw(0x2, 0, 3, &[0; 4]); // PRIORITY length 4: stream error
    buf.extend(raw(0x8, 0, 5, &[0; 4])); // WINDOW_UPDATE 0 on a stream
    encode::ping(&mut buf, [1; 8]);
    let mut at = 0;
    let mut streams = Vec::new();
    loop {
        match decode(&buf[at..], MAX) {
            Err(e) => {
                streams.push(e.stream_id().unwrap());
                at += e.frame_len();
            }
            Ok(Status::Complete((f, n))) => {
                assert_eq!(
                    f,
                    Frame::Ping {
                        ack: false,
                        data: [1; 8]
                    }
                );
                assert_eq!(at + n, buf.len());
                break;
            }
            Ok(Status::Partial(n)) => panic!("Partial({n}) at {at}"),
        }
    }
    assert_eq!(streams, [3, 5]);
}

#[test]
fn headers_self_dependency_is_returned_with_its_stream_error() {
    let p = Priority {
        exclusive: false,
        dependency: 9,
        weight: 15,
    };
    let mut out = Vec::new();
    encode::headers_with_priority(&mut out, 9, false, true, p, b"\x82");
    let f = one(&out);
    assert!(matches!(
        f,
        Frame::Headers {
            fragment: b"\x82",
            ..
        }
    ));
    let e = f.stream_error().unwrap();
    assert_eq!(
        (e.code(), e.stream_id()),
        (ErrorCode::PROTOCOL_ERROR, Some(9))
    );
    assert_eq!(e.reason(), Reason::SelfDependency);
    let other = Priority { dependency: 1, ..p };
    out.clear();
    encode::headers_with_priority(&mut out, 9, false, true, other, b"\x82");
    assert_eq!(one(&out).stream_error(), None);
}
