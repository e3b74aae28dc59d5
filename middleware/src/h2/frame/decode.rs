//! The zero-copy frame decoder.

use super::error::{ErrorCode, FrameError, Reason, Violation};
use super::head::{Head, HEAD_LEN, STREAM_ID_MASK};
use super::kind::{flags, Kind};
use super::settings::Params;
use super::types::{Frame, Priority};

/// The result of [`decode`], httparse style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item.
    Complete(T),
    /// The buffer is a valid beginning: call again once it holds at least this many
    /// bytes (always more than it holds now: 9 until the header is in, then the whole
    /// frame's length).
    Partial(usize),
}

impl<T> Status<T> {
    /// Whether this is [`Status::Complete`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }

    /// Whether this is [`Status::Partial`].
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial(_))
    }
}

/// Decodes the frame at the start of `buf`.
///
/// `max_frame_size` is the SETTINGS_MAX_FRAME_SIZE this endpoint advertised (and the
/// peer acknowledged; 16,384 before that): a longer frame is a connection error
/// FRAME_SIZE_ERROR, reported from its header alone, so at most `9 + max_frame_size`
/// bytes are ever asked for. This holds for every frame type: §4.2 would let an
/// oversized DATA frame be a stream error, but its payload would still have to be read
/// to be skipped.
///
/// Returns the frame and the number of bytes it took (header included), or
/// [`Status::Partial`] with the length `buf` must reach. Every rule of RFC 9113 §4 and
/// §6 that one frame can be checked against is checked; the errors say their code and
/// scope (see [`FrameError`]). Errors found in the header (size, stream id, fixed
/// lengths) are reported as soon as the header is in; the others, and every stream
/// error, once the whole frame is. So the result does not depend on how the input was
/// cut into reads.
///
/// Left to the connection: stream states, header block sequencing (only CONTINUATION
/// on the same stream may follow a HEADERS or PUSH_PROMISE without END_HEADERS, §6.10,
/// which also makes an [`Frame::Unknown`] there a PROTOCOL_ERROR), flow-control
/// windows, who may send PUSH_PROMISE, and the self-dependency a HEADERS frame may
/// carry ([`Frame::stream_error`]).
pub fn decode(buf: &[u8], max_frame_size: u32) -> Result<Status<(Frame<'_>, usize)>, FrameError> {
    let Some(head) = Head::parse(buf) else {
        return Ok(Status::Partial(HEAD_LEN));
    };
    check_head(&head, max_frame_size)?;
    let len = head.frame_len();
    let Some(payload) = buf.get(HEAD_LEN..len) else {
        return Ok(Status::Partial(len));
    };
    let frame = payload_frame(&head, payload)?;
    Ok(Status::Complete((frame, len)))
}

/// The connection errors a header shows by itself.
fn check_head(h: &Head, max_frame_size: u32) -> Result<(), FrameError> {
    let conn = |code, reason| Err(FrameError::connection(code, reason, h.frame_len()));
    if h.len > max_frame_size {
        return conn(ErrorCode::FRAME_SIZE_ERROR, Reason::TooLarge);
    }
    let on_stream = matches!(
        h.kind,
        Kind::DATA
            | Kind::HEADERS
            | Kind::PRIORITY
            | Kind::RST_STREAM
            | Kind::PUSH_PROMISE
            | Kind::CONTINUATION
    );
    let on_connection = matches!(h.kind, Kind::SETTINGS | Kind::PING | Kind::GOAWAY);
    if on_stream && h.stream_id == 0 {
        return conn(ErrorCode::PROTOCOL_ERROR, Reason::StreamZero);
    }
    if on_connection && h.stream_id != 0 {
        return conn(ErrorCode::PROTOCOL_ERROR, Reason::NotStreamZero);
    }
    let pad = usize::from(h.has(flags::PADDED));
    let len = h.len as usize;
    let size = |ok: bool, reason| {
        if ok {
            Ok(())
        } else {
            conn(ErrorCode::FRAME_SIZE_ERROR, reason)
        }
    };
    match h.kind {
        Kind::DATA => size(len >= pad, Reason::TooShort),
        Kind::HEADERS => {
            let prio = if h.has(flags::PRIORITY) { 5 } else { 0 };
            size(len >= pad + prio, Reason::TooShort)
        }
        Kind::PUSH_PROMISE => size(len >= pad + 4, Reason::TooShort),
        Kind::GOAWAY => size(len >= 8, Reason::TooShort),
        Kind::RST_STREAM | Kind::WINDOW_UPDATE => size(len == 4, Reason::BadLength),
        Kind::PING => size(len == 8, Reason::BadLength),
        Kind::SETTINGS if h.has(flags::ACK) => size(len == 0, Reason::AckWithPayload),
        Kind::SETTINGS => size(len.is_multiple_of(6), Reason::BadLength),
        // PRIORITY's length is a stream error (§6.3): checked with the payload.
        _ => Ok(()),
    }
}

/// The frame, from a header `check_head` passed and its whole payload.
fn payload_frame<'a>(h: &Head, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    let conn = |(code, reason)| FrameError::connection(code, reason, h.frame_len());
    let stream = |code, reason| FrameError::stream(h.stream_id, code, reason, h.frame_len());
    let protocol = |reason| conn((ErrorCode::PROTOCOL_ERROR, reason));
    let sid = h.stream_id;
    Ok(match h.kind {
        Kind::DATA => {
            let (data, pad_len) = unpad(h, payload).map_err(conn)?;
            Frame::Data {
                stream_id: sid,
                end_stream: h.has(flags::END_STREAM),
                data,
                pad_len,
            }
        }
        Kind::HEADERS => {
            let (mut fragment, _) = unpad(h, payload).map_err(conn)?;
            let mut priority = None;
            if h.has(flags::PRIORITY) {
                // The header check made room for these 5 bytes; if they are missing
                // now, the padding took them.
                let (p, rest) = fields(fragment, 5).ok_or(protocol(Reason::TooMuchPadding))?;
                priority = Priority::parse(p);
                fragment = rest;
            }
            Frame::Headers {
                stream_id: sid,
                end_stream: h.has(flags::END_STREAM),
                end_headers: h.has(flags::END_HEADERS),
                priority,
                fragment,
            }
        }
        Kind::PRIORITY => {
            let priority = match Priority::parse(payload) {
                Some(p) if payload.len() == 5 => p,
                _ => return Err(stream(ErrorCode::FRAME_SIZE_ERROR, Reason::BadLength)),
            };
            if priority.dependency == sid {
                return Err(stream(ErrorCode::PROTOCOL_ERROR, Reason::SelfDependency));
            }
            Frame::Priority {
                stream_id: sid,
                priority,
            }
        }
        Kind::RST_STREAM => Frame::RstStream {
            stream_id: sid,
            code: ErrorCode(be32(payload)),
        },
        Kind::SETTINGS => Frame::Settings {
            ack: h.has(flags::ACK),
            params: Params::check(payload).map_err(conn)?,
        },
        Kind::PUSH_PROMISE => {
            let (rest, _) = unpad(h, payload).map_err(conn)?;
            let (id, fragment) = fields(rest, 4).ok_or(protocol(Reason::TooMuchPadding))?;
            let promised_id = be32(id) & STREAM_ID_MASK;
            if promised_id == 0 {
                return Err(protocol(Reason::PromisedStreamZero));
            }
            Frame::PushPromise {
                stream_id: sid,
                promised_id,
                end_headers: h.has(flags::END_HEADERS),
                fragment,
            }
        }
        Kind::PING => {
            let mut data = [0; 8];
            for (d, s) in data.iter_mut().zip(payload) {
                *d = *s;
            }
            Frame::Ping {
                ack: h.has(flags::ACK),
                data,
            }
        }
        Kind::GOAWAY => {
            let (f, debug) =
                fields(payload, 8).ok_or(conn((ErrorCode::FRAME_SIZE_ERROR, Reason::TooShort)))?;
            Frame::GoAway {
                last_stream_id: be32(f) & STREAM_ID_MASK,
                code: ErrorCode(be32(f.get(4..).unwrap_or_default())),
                debug,
            }
        }
        Kind::WINDOW_UPDATE => {
            let increment = be32(payload) & STREAM_ID_MASK;
            if increment == 0 {
                return Err(match sid {
                    0 => protocol(Reason::ZeroIncrement),
                    _ => stream(ErrorCode::PROTOCOL_ERROR, Reason::ZeroIncrement),
                });
            }
            Frame::WindowUpdate {
                stream_id: sid,
                increment,
            }
        }
        Kind::CONTINUATION => Frame::Continuation {
            stream_id: sid,
            end_headers: h.has(flags::END_HEADERS),
            fragment: payload,
        },
        kind => Frame::Unknown {
            kind,
            flags: h.flags,
            stream_id: sid,
            payload,
        },
    })
}

/// Strips the Pad Length byte and the padding if the PADDED flag is set: the content
/// and the Pad Length. Padding as long as the payload or longer is a PROTOCOL_ERROR.
fn unpad<'a>(h: &Head, payload: &'a [u8]) -> Result<(&'a [u8], Option<u8>), Violation> {
    if !h.has(flags::PADDED) {
        return Ok((payload, None));
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err((ErrorCode::FRAME_SIZE_ERROR, Reason::TooShort));
    };
    match rest.len().checked_sub(usize::from(pad)) {
        Some(end) => Ok((rest.get(..end).unwrap_or_default(), Some(pad))),
        None => Err((ErrorCode::PROTOCOL_ERROR, Reason::TooMuchPadding)),
    }
}

/// The first `n` bytes and the rest, or `None` if `b` is shorter.
fn fields(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    b.split_at_checked(n)
}

/// A big-endian u32 from the first 4 bytes (zeros for missing bytes).
fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    for (d, s) in a.iter_mut().zip(b) {
        *d = *s;
    }
    u32::from_be_bytes(a)
}
