//! Error codes (RFC 9113 §7) and the errors the decoder reports (§5.4).

use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
///
/// A newtype over the 32-bit wire value: codes this module does not name are kept as
/// they are ("Unknown or unsupported error codes MUST NOT trigger any special
/// behavior", §7) and written back unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown, or no error (0x0).
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// An unspecific protocol error (0x1).
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// An unexpected internal error (0x2).
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// The peer violated the flow-control protocol (0x3).
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// A SETTINGS frame was not acknowledged in time (0x4).
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// A frame arrived after the stream was half-closed (0x5).
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// A frame had an invalid size (0x6).
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// The stream was refused before any application processing (0x7).
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// The stream is no longer needed (0x8).
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// The field-section compression context cannot be kept (0x9).
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// The connection of a CONNECT request was reset or abnormally closed (0xa).
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer behaves in a way that might generate excessive load (0xb).
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// The transport does not meet minimum security requirements (0xc).
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// HTTP/1.1 must be used instead of HTTP/2 (0xd).
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The code's name in RFC 9113 §7, or `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

/// Which rule of RFC 9113 a frame broke: the detail behind a [`FrameError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The length is over the receiver's SETTINGS_MAX_FRAME_SIZE (§4.2).
    TooLarge,
    /// A frame type that belongs to a stream came on stream 0 (DATA, HEADERS, PRIORITY,
    /// RST_STREAM, PUSH_PROMISE, CONTINUATION).
    StreamZero,
    /// A connection-level frame type came on a stream (SETTINGS, PING, GOAWAY).
    NotStreamZero,
    /// The payload is too short for the fields it must hold (§4.2): the Pad Length
    /// byte, the priority fields, the promised stream id, GOAWAY's last stream id and
    /// error code.
    TooShort,
    /// A fixed-size frame has the wrong length: PRIORITY (5), RST_STREAM (4), PING (8),
    /// WINDOW_UPDATE (4), or a SETTINGS length that is not a multiple of 6.
    BadLength,
    /// A SETTINGS frame with the ACK flag has a payload (§6.5).
    AckWithPayload,
    /// The Pad Length is at least the room left after the other fields (§6.1, §6.2,
    /// §6.6).
    TooMuchPadding,
    /// A priority names its own stream as its dependency (RFC 7540 §5.3.1).
    SelfDependency,
    /// A WINDOW_UPDATE increment of 0 (§6.9).
    ZeroIncrement,
    /// A PUSH_PROMISE promises stream 0.
    PromisedStreamZero,
    /// SETTINGS_ENABLE_PUSH other than 0 or 1 (§6.5.2).
    InvalidEnablePush,
    /// SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1 (§6.5.2).
    InvalidInitialWindowSize,
    /// SETTINGS_MAX_FRAME_SIZE outside 2^14 to 2^24-1 (§6.5.2).
    InvalidMaxFrameSize,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL other than 0 or 1 (RFC 8441 §3).
    InvalidEnableConnectProtocol,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::TooLarge => "frame longer than the maximum frame size",
            Reason::StreamZero => "frame type needs a stream but came on stream 0",
            Reason::NotStreamZero => "connection-level frame type came on a stream",
            Reason::TooShort => "payload too short for its fields",
            Reason::BadLength => "wrong payload length for the frame type",
            Reason::AckWithPayload => "SETTINGS acknowledgement with a payload",
            Reason::TooMuchPadding => "padding as long as the payload or longer",
            Reason::SelfDependency => "stream depends on itself",
            Reason::ZeroIncrement => "WINDOW_UPDATE increment of 0",
            Reason::PromisedStreamZero => "PUSH_PROMISE promises stream 0",
            Reason::InvalidEnablePush => "SETTINGS_ENABLE_PUSH not 0 or 1",
            Reason::InvalidInitialWindowSize => "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1",
            Reason::InvalidMaxFrameSize => "SETTINGS_MAX_FRAME_SIZE outside 2^14..2^24-1",
            Reason::InvalidEnableConnectProtocol => "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1",
        })
    }
}

/// A broken rule before its scope is known: the code to send and the reason.
pub(super) type Violation = (ErrorCode, Reason);

/// A frame the decoder refused: the error code to send, and its scope (§5.4).
///
/// - A *connection error* ([`stream_id`](Self::stream_id) is `None`): send GOAWAY with
///   [`code`](Self::code) and close the connection. Nothing after the frame can be
///   trusted. The decoder reports these as soon as the 9-byte header shows them, so a
///   peer cannot make the caller buffer a payload it will refuse anyway.
/// - A *stream error* (`Some(id)`): send RST_STREAM on that stream with `code`, drop
///   [`frame_len`](Self::frame_len) bytes (the whole frame, which is then in the
///   buffer) and keep decoding. The decoder reports these only once the whole frame is
///   in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    code: ErrorCode,
    stream_id: Option<u32>,
    reason: Reason,
    frame_len: usize,
}

impl FrameError {
    /// A connection error about a frame of `frame_len` bytes (header included).
    pub(crate) fn connection(code: ErrorCode, reason: Reason, frame_len: usize) -> Self {
        FrameError {
            code,
            stream_id: None,
            reason,
            frame_len,
        }
    }

    /// A stream error on `stream_id` about a frame of `frame_len` bytes.
    pub(crate) fn stream(
        stream_id: u32,
        code: ErrorCode,
        reason: Reason,
        frame_len: usize,
    ) -> Self {
        FrameError {
            code,
            stream_id: Some(stream_id),
            reason,
            frame_len,
        }
    }

    /// The error code to send (in GOAWAY for a connection error, RST_STREAM for a
    /// stream error).
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The stream to reset for a stream error; `None` for a connection error.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Whether this is a connection error (the connection must end).
    pub fn is_connection_error(&self) -> bool {
        self.stream_id.is_none()
    }

    /// Which rule the frame broke.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The offending frame's length, its 9-byte header included, as its header gives
    /// it. For a stream error the whole frame is in the buffer: consume this many bytes
    /// and decode on. For a connection error the payload may not have arrived. 0 for
    /// the error [`Frame::stream_error`](super::Frame::stream_error) gives about a frame
    /// already consumed.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stream_id {
            None => write!(f, "connection error {}: {}", self.code, self.reason),
            Some(id) => write!(
                f,
                "stream error {} on stream {id}: {}",
                self.code, self.reason
            ),
        }
    }
}

impl std::error::Error for FrameError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_and_keep_unknown_values() {
        assert_eq!(
            ErrorCode::HTTP_1_1_REQUIRED.to_string(),
            "HTTP_1_1_REQUIRED"
        );
        assert_eq!(ErrorCode(0xd).name(), Some("HTTP_1_1_REQUIRED"));
        for v in 0..=0xd {
            assert!(ErrorCode(v).name().is_some());
        }
        assert_eq!(ErrorCode(0xe).name(), None);
        assert_eq!(ErrorCode(0xdead).to_string(), "unknown error code 0xdead");
    }

    #[test]
    fn errors_say_their_scope() {
        let e = FrameError::connection(ErrorCode::FRAME_SIZE_ERROR, Reason::TooLarge, 9);
        assert!(e.is_connection_error());
        assert_eq!(e.stream_id(), None);
        assert_eq!(
            e.to_string(),
            "connection error FRAME_SIZE_ERROR: frame longer than the maximum frame size"
        );
        let e = FrameError::stream(3, ErrorCode::PROTOCOL_ERROR, Reason::ZeroIncrement, 13);
        assert_eq!(e.stream_id(), Some(3));
        assert_eq!(e.frame_len(), 13);
        assert_eq!(
            e.to_string(),
            "stream error PROTOCOL_ERROR on stream 3: WINDOW_UPDATE increment of 0"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("stream 3"));
    }
}
