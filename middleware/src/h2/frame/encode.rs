//! Writing frames into an output buffer.
//!
//! Every function appends one or more whole frames to `out`. Stream identifiers are
//! written with the reserved bit cleared. Lengths are the caller's to keep within the
//! peer's SETTINGS_MAX_FRAME_SIZE, except for [`headers`] and [`push_promise`], which
//! split a header block to fit.
//!
//! # Panics
//!
//! A payload over 2^24-1 bytes (the length field's limit) panics: it is a caller's bug,
//! and writing it would corrupt the connection.

use super::error::ErrorCode;
use super::head::{Head, DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT, STREAM_ID_MASK};
use super::kind::{flags, Kind};
use super::settings::Setting;
use super::types::{Frame, Priority};

/// The 24-bit length of a payload of `n` bytes.
fn len24(n: usize) -> u32 {
    match u32::try_from(n) {
        Ok(n) if n <= MAX_FRAME_SIZE_LIMIT => n,
        _ => panic!("HTTP/2 frame payload of {n} bytes is over 2^24-1"),
    }
}

/// Writes a frame header for a payload of `len` bytes that the caller writes next.
pub fn head(out: &mut Vec<u8>, kind: Kind, flags: u8, stream_id: u32, len: usize) {
    let head = Head {
        len: len24(len),
        kind,
        flags,
        stream_id,
    };
    out.extend_from_slice(&head.to_bytes());
}

/// Writes the header of a DATA frame whose `len` bytes of data the caller writes next
/// (straight into `out`, with no copy through a payload slice).
pub fn data_head(out: &mut Vec<u8>, stream_id: u32, end_stream: bool, len: usize) {
    let f = if end_stream { flags::END_STREAM } else { 0 };
    head(out, Kind::DATA, f, stream_id, len);
}

/// Writes a DATA frame.
pub fn data(out: &mut Vec<u8>, stream_id: u32, end_stream: bool, payload: &[u8]) {
    data_head(out, stream_id, end_stream, payload.len());
    out.extend_from_slice(payload);
}

/// Writes a DATA frame with the PADDED flag and `pad_len` zero bytes of padding (the
/// frame's payload is `1 + payload.len() + pad_len` bytes, all flow-controlled).
pub fn data_padded(
    out: &mut Vec<u8>,
    stream_id: u32,
    end_stream: bool,
    payload: &[u8],
    pad_len: u8,
) {
    let f = flags::PADDED | if end_stream { flags::END_STREAM } else { 0 };
    let pad = usize::from(pad_len);
    head(out, Kind::DATA, f, stream_id, 1 + payload.len() + pad);
    out.push(pad_len);
    out.extend_from_slice(payload);
    out.resize(out.len() + pad, 0);
}

/// Writes a header block as a HEADERS frame and as many CONTINUATION frames as it takes
/// for no payload to exceed `max_frame_size` (the peer's SETTINGS_MAX_FRAME_SIZE, taken
/// within 2^14..2^24-1). END_STREAM goes on the HEADERS frame, END_HEADERS on the last
/// frame. Nothing may be written on the connection between these frames (§6.10).
pub fn headers(
    out: &mut Vec<u8>,
    stream_id: u32,
    end_stream: bool,
    block: &[u8],
    max_frame_size: u32,
) {
    let first = if end_stream { flags::END_STREAM } else { 0 };
    block_frames(
        out,
        Kind::HEADERS,
        first,
        stream_id,
        &[],
        block,
        max_frame_size,
    );
}

/// Writes a HEADERS frame with the PRIORITY flag and the whole block in one frame (no
/// CONTINUATION: the caller keeps `5 + block.len()` within the peer's maximum).
pub fn headers_with_priority(
    out: &mut Vec<u8>,
    stream_id: u32,
    end_stream: bool,
    end_headers: bool,
    priority: Priority,
    fragment: &[u8],
) {
    let f = flags::PRIORITY
        | if end_stream { flags::END_STREAM } else { 0 }
        | if end_headers { flags::END_HEADERS } else { 0 };
    head(out, Kind::HEADERS, f, stream_id, 5 + fragment.len());
    out.extend_from_slice(&priority.to_bytes());
    out.extend_from_slice(fragment);
}

/// Writes a PUSH_PROMISE on `stream_id` promising `promised_id`, split into
/// CONTINUATION frames like [`headers`].
pub fn push_promise(
    out: &mut Vec<u8>,
    stream_id: u32,
    promised_id: u32,
    block: &[u8],
    max_frame_size: u32,
) {
    let id = (promised_id & STREAM_ID_MASK).to_be_bytes();
    block_frames(
        out,
        Kind::PUSH_PROMISE,
        0,
        stream_id,
        &id,
        block,
        max_frame_size,
    );
}

/// A first frame of `kind` carrying `fields` then as much of `block` as fits, then
/// CONTINUATION frames; END_HEADERS on the last.
fn block_frames(
    out: &mut Vec<u8>,
    kind: Kind,
    first_flags: u8,
    stream_id: u32,
    fields: &[u8],
    block: &[u8],
    max_frame_size: u32,
) {
    let max = max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT) as usize;
    let (first, mut rest) = block.split_at(block.len().min(max - fields.len()));
    let end = if rest.is_empty() {
        flags::END_HEADERS
    } else {
        0
    };
    head(
        out,
        kind,
        first_flags | end,
        stream_id,
        fields.len() + first.len(),
    );
    out.extend_from_slice(fields);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (piece, more) = rest.split_at(rest.len().min(max));
        let end = if more.is_empty() {
            flags::END_HEADERS
        } else {
            0
        };
        continuation(out, stream_id, end != 0, piece);
        rest = more;
    }
}

/// Writes one CONTINUATION frame.
pub fn continuation(out: &mut Vec<u8>, stream_id: u32, end_headers: bool, fragment: &[u8]) {
    let f = if end_headers { flags::END_HEADERS } else { 0 };
    head(out, Kind::CONTINUATION, f, stream_id, fragment.len());
    out.extend_from_slice(fragment);
}

/// Writes a PRIORITY frame.
pub fn priority(out: &mut Vec<u8>, stream_id: u32, priority: Priority) {
    head(out, Kind::PRIORITY, 0, stream_id, 5);
    out.extend_from_slice(&priority.to_bytes());
}

/// Writes an RST_STREAM frame.
pub fn rst_stream(out: &mut Vec<u8>, stream_id: u32, code: ErrorCode) {
    head(out, Kind::RST_STREAM, 0, stream_id, 4);
    out.extend_from_slice(&code.0.to_be_bytes());
}

/// Writes a SETTINGS frame carrying `params` in order (see
/// [`Settings::changes`](super::Settings::changes) for the parameters that announce a
/// [`Settings`](super::Settings)).
pub fn settings(out: &mut Vec<u8>, params: impl IntoIterator<Item = Setting>) {
    let start = out.len();
    head(out, Kind::SETTINGS, 0, 0, 0);
    for p in params {
        out.extend_from_slice(&p.id().to_be_bytes());
        out.extend_from_slice(&p.value().to_be_bytes());
    }
    let len = len24(out.len() - start - 9).to_be_bytes();
    if let Some(field) = out.get_mut(start..start + 3) {
        field.copy_from_slice(&len[1..]);
    }
}

/// Writes a SETTINGS frame with the ACK flag (no payload).
pub fn settings_ack(out: &mut Vec<u8>) {
    head(out, Kind::SETTINGS, flags::ACK, 0, 0);
}

/// Writes a PING frame.
pub fn ping(out: &mut Vec<u8>, data: [u8; 8]) {
    head(out, Kind::PING, 0, 0, 8);
    out.extend_from_slice(&data);
}

/// Writes a PING frame with the ACK flag: the answer to a PING carrying `data`.
pub fn ping_ack(out: &mut Vec<u8>, data: [u8; 8]) {
    head(out, Kind::PING, flags::ACK, 0, 8);
    out.extend_from_slice(&data);
}

/// Writes a GOAWAY frame.
pub fn goaway(out: &mut Vec<u8>, last_stream_id: u32, code: ErrorCode, debug: &[u8]) {
    head(out, Kind::GOAWAY, 0, 0, 8 + debug.len());
    out.extend_from_slice(&(last_stream_id & STREAM_ID_MASK).to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(debug);
}

/// Writes a WINDOW_UPDATE frame (stream 0: the connection window). `increment` must be
/// 1 to 2^31-1; its top bit is not sent.
pub fn window_update(out: &mut Vec<u8>, stream_id: u32, increment: u32) {
    debug_assert!(
        (1..=STREAM_ID_MASK).contains(&increment),
        "WINDOW_UPDATE increment {increment} outside 1..=2^31-1"
    );
    head(out, Kind::WINDOW_UPDATE, 0, stream_id, 4);
    out.extend_from_slice(&(increment & STREAM_ID_MASK).to_be_bytes());
}

/// Writes `frame` as one frame, as the decoder gave it (a proxy relaying frames, or a
/// test): DATA keeps its padding (as zeros); HEADERS and PUSH_PROMISE go unpadded and
/// unsplit; unknown types keep their type and flags.
pub fn frame(out: &mut Vec<u8>, frame: &Frame<'_>) {
    let flag = |on: bool, f: u8| if on { f } else { 0 };
    match *frame {
        Frame::Data {
            stream_id,
            end_stream,
            data: d,
            pad_len: Some(p),
        } => data_padded(out, stream_id, end_stream, d, p),
        Frame::Data {
            stream_id,
            end_stream,
            data: d,
            pad_len: None,
        } => data(out, stream_id, end_stream, d),
        Frame::Headers {
            stream_id,
            end_stream,
            end_headers,
            priority: Some(p),
            fragment,
        } => headers_with_priority(out, stream_id, end_stream, end_headers, p, fragment),
        Frame::Headers {
            stream_id,
            end_stream,
            end_headers,
            priority: None,
            fragment,
        } => {
            let f = flag(end_stream, flags::END_STREAM) | flag(end_headers, flags::END_HEADERS);
            head(out, Kind::HEADERS, f, stream_id, fragment.len());
            out.extend_from_slice(fragment);
        }
        Frame::Priority {
            stream_id,
            priority: p,
        } => priority(out, stream_id, p),
        Frame::RstStream { stream_id, code } => rst_stream(out, stream_id, code),
        Frame::Settings { ack: true, params } if params.is_empty() => settings_ack(out),
        Frame::Settings { ack, params } => {
            head(
                out,
                Kind::SETTINGS,
                flag(ack, flags::ACK),
                0,
                params.as_bytes().len(),
            );
            out.extend_from_slice(params.as_bytes());
        }
        Frame::PushPromise {
            stream_id,
            promised_id,
            end_headers,
            fragment,
        } => {
            let f = flag(end_headers, flags::END_HEADERS);
            head(out, Kind::PUSH_PROMISE, f, stream_id, 4 + fragment.len());
            out.extend_from_slice(&(promised_id & STREAM_ID_MASK).to_be_bytes());
            out.extend_from_slice(fragment);
        }
        Frame::Ping { ack: false, data } => ping(out, data),
        Frame::Ping { ack: true, data } => ping_ack(out, data),
        Frame::GoAway {
            last_stream_id,
            code,
            debug,
        } => goaway(out, last_stream_id, code, debug),
        Frame::WindowUpdate {
            stream_id,
            increment,
        } => window_update(out, stream_id, increment),
        Frame::Continuation {
            stream_id,
            end_headers,
            fragment,
        } => continuation(out, stream_id, end_headers, fragment),
        Frame::Unknown {
            kind,
            flags,
            stream_id,
            payload,
        } => {
            head(out, kind, flags, stream_id, payload.len());
            out.extend_from_slice(payload);
        }
    }
}
