//! A decoded frame: [`Frame`], borrowing its payload from the input buffer.

use super::error::{ErrorCode, FrameError, Reason};
use super::kind::Kind;
use super::settings::Params;

/// The RFC 7540 priority fields (HEADERS with the PRIORITY flag, and PRIORITY frames).
///
/// RFC 9113 deprecates this signal (§5.3.2): it is parsed and checked, not acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The exclusive flag.
    pub exclusive: bool,
    /// The stream this one depends on (31 bits).
    pub dependency: u32,
    /// The weight as on the wire, 0 to 255 (the weight is one more).
    pub weight: u8,
}

impl Priority {
    /// Reads the 5-byte wire form, or `None` if `b` is shorter.
    pub(super) fn parse(b: &[u8]) -> Option<Priority> {
        let b: &[u8; 5] = b.get(..5)?.try_into().ok()?;
        let dep = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Some(Priority {
            exclusive: dep & 0x8000_0000 != 0,
            dependency: dep & 0x7fff_ffff,
            weight: b[4],
        })
    }

    /// The 5-byte wire form.
    pub fn to_bytes(&self) -> [u8; 5] {
        let dep = (self.dependency & 0x7fff_ffff) | (u32::from(self.exclusive) << 31);
        let [a, b, c, d] = dep.to_be_bytes();
        [a, b, c, d, self.weight]
    }
}

/// A frame, its payload borrowed from the buffer it was decoded from.
///
/// Stream identifiers are `u32`s with the reserved bit cleared. Padding (DATA, HEADERS,
/// PUSH_PROMISE) is stripped; DATA keeps its Pad Length because flow control counts the
/// whole payload ([`Frame::flow_len`]). Header block fragments are opaque bytes for
/// HPACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA (§6.1).
    Data {
        /// The stream (never 0).
        stream_id: u32,
        /// END_STREAM flag.
        end_stream: bool,
        /// The data, padding stripped.
        data: &'a [u8],
        /// The Pad Length if the PADDED flag was set.
        pad_len: Option<u8>,
    },
    /// HEADERS (§6.2).
    ///
    /// Its priority may name the stream itself: that is a stream error, but the
    /// fragment must still go through HPACK to keep the compression state in step, so
    /// the frame is returned and [`Frame::stream_error`] reports it.
    Headers {
        /// The stream (never 0).
        stream_id: u32,
        /// END_STREAM flag.
        end_stream: bool,
        /// END_HEADERS flag: no CONTINUATION follows.
        end_headers: bool,
        /// The priority fields, if the PRIORITY flag was set.
        priority: Option<Priority>,
        /// The header block fragment, padding stripped.
        fragment: &'a [u8],
    },
    /// PRIORITY (§6.3).
    Priority {
        /// The stream (never 0, never its own dependency).
        stream_id: u32,
        /// The priority fields.
        priority: Priority,
    },
    /// RST_STREAM (§6.4).
    RstStream {
        /// The stream (never 0).
        stream_id: u32,
        /// Why the stream ends.
        code: ErrorCode,
    },
    /// SETTINGS (§6.5), on stream 0.
    Settings {
        /// ACK flag: acknowledges the peer's SETTINGS (then `params` is empty).
        ack: bool,
        /// The parameters, values checked.
        params: Params<'a>,
    },
    /// PUSH_PROMISE (§6.6).
    PushPromise {
        /// The stream the promise is made on (never 0).
        stream_id: u32,
        /// The promised stream (31 bits, never 0).
        promised_id: u32,
        /// END_HEADERS flag.
        end_headers: bool,
        /// The header block fragment, padding stripped.
        fragment: &'a [u8],
    },
    /// PING (§6.7), on stream 0.
    Ping {
        /// ACK flag: a response.
        ack: bool,
        /// The opaque 8 bytes.
        data: [u8; 8],
    },
    /// GOAWAY (§6.8), on stream 0.
    GoAway {
        /// The last stream the sender may have processed (31 bits).
        last_stream_id: u32,
        /// Why the connection closes.
        code: ErrorCode,
        /// Opaque diagnostic data.
        debug: &'a [u8],
    },
    /// WINDOW_UPDATE (§6.9): stream 0 for the connection window.
    WindowUpdate {
        /// The stream, or 0 for the connection.
        stream_id: u32,
        /// The increment, 1 to 2^31-1.
        increment: u32,
    },
    /// CONTINUATION (§6.10).
    Continuation {
        /// The stream (never 0).
        stream_id: u32,
        /// END_HEADERS flag.
        end_headers: bool,
        /// The header block fragment.
        fragment: &'a [u8],
    },
    /// A frame of a type RFC 9113 does not define (§4.1, §5.5): to be ignored, except
    /// that any frame other than CONTINUATION in the middle of a header block (after
    /// a HEADERS or PUSH_PROMISE without END_HEADERS) is a connection error
    /// PROTOCOL_ERROR (§6.10), which the connection state machine enforces.
    Unknown {
        /// The type.
        kind: Kind,
        /// The flags as received.
        flags: u8,
        /// The stream id.
        stream_id: u32,
        /// The payload.
        payload: &'a [u8],
    },
}

impl Frame<'_> {
    /// The frame's type.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Data { .. } => Kind::DATA,
            Frame::Headers { .. } => Kind::HEADERS,
            Frame::Priority { .. } => Kind::PRIORITY,
            Frame::RstStream { .. } => Kind::RST_STREAM,
            Frame::Settings { .. } => Kind::SETTINGS,
            Frame::PushPromise { .. } => Kind::PUSH_PROMISE,
            Frame::Ping { .. } => Kind::PING,
            Frame::GoAway { .. } => Kind::GOAWAY,
            Frame::WindowUpdate { .. } => Kind::WINDOW_UPDATE,
            Frame::Continuation { .. } => Kind::CONTINUATION,
            Frame::Unknown { kind, .. } => *kind,
        }
    }

    /// The stream the frame is on (0 for SETTINGS, PING, GOAWAY and connection-level
    /// WINDOW_UPDATE).
    pub fn stream_id(&self) -> u32 {
        match *self {
            Frame::Data { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Priority { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::PushPromise { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Continuation { stream_id, .. }
            | Frame::Unknown { stream_id, .. } => stream_id,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }

    /// The bytes flow control counts (§6.9.1): a DATA frame's whole payload, Pad
    /// Length and padding included; 0 for every other frame.
    pub fn flow_len(&self) -> u32 {
        match *self {
            Frame::Data { data, pad_len, .. } => {
                let pad = pad_len.map_or(0, |p| 1 + u32::from(p));
                // A decoded payload is at most 2^24-1 bytes, so this cannot saturate.
                u32::try_from(data.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(pad)
            }
            _ => 0,
        }
    }

    /// The stream error a successfully decoded frame still carries: a HEADERS frame
    /// whose priority names its own stream (stream error PROTOCOL_ERROR). The
    /// connection passes the fragment to HPACK first, then resets the stream. The
    /// frame was already consumed, so the error's [`FrameError::frame_len`] is 0.
    pub fn stream_error(&self) -> Option<FrameError> {
        match *self {
            Frame::Headers {
                stream_id,
                priority: Some(p),
                ..
            } if p.dependency == stream_id => Some(FrameError::stream(
                stream_id,
                ErrorCode::PROTOCOL_ERROR,
                Reason::SelfDependency,
                0,
            )),
            _ => None,
        }
    }
}
