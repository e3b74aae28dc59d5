//! Errors: [`ConnError`] (the connection is over) and [`SendError`] (an application call
//! that cannot be done).

use std::fmt;

use super::super::frame::{ErrorCode, FrameError};

/// Why the connection ended with a connection error (RFC 9113 §5.4.1).
///
/// When [`Connection::recv`](super::Connection::recv) returns one, the connection has
/// already queued a GOAWAY frame carrying [`code`](ConnError::code) and the last stream
/// it processed: the caller flushes [`output`](super::Connection::output) and closes the
/// transport. Every later call returns the same error (and queues nothing more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnError {
    code: ErrorCode,
    what: What,
}

/// The detail of a [`ConnError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum What {
    /// The frame layer refused a frame.
    Frame(FrameError),
    /// The first bytes are not the client connection preface.
    Preface,
    /// A rule of the connection state machine (a fixed description).
    Rule(&'static str),
    /// A limit against hostile peers was reached (ENHANCE_YOUR_CALM).
    Flood(&'static str),
    /// The header block could not be decompressed.
    Compression,
}

impl ConnError {
    pub(super) fn new(code: ErrorCode, what: What) -> ConnError {
        ConnError { code, what }
    }

    pub(super) fn rule(code: ErrorCode, why: &'static str) -> ConnError {
        ConnError::new(code, What::Rule(why))
    }

    pub(super) fn flood(why: &'static str) -> ConnError {
        ConnError::new(ErrorCode::ENHANCE_YOUR_CALM, What::Flood(why))
    }

    /// The error code sent in the GOAWAY frame.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Whether the peer went over one of the limits against abuse (floods, rapid reset,
    /// oversized header blocks): the code is ENHANCE_YOUR_CALM.
    pub fn is_flood(&self) -> bool {
        matches!(self.what, What::Flood(_))
    }

    /// Whether the frame layer refused a frame (see [`ConnError::frame_error`]).
    pub fn is_frame(&self) -> bool {
        matches!(self.what, What::Frame(_))
    }

    /// Whether the peer broke a protocol rule (PROTOCOL_ERROR, and the frame-level
    /// codes FRAME_SIZE_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, COMPRESSION_ERROR):
    /// every error that is not a flood.
    pub fn is_protocol(&self) -> bool {
        !self.is_flood()
    }

    /// The frame layer's error, when it refused a frame.
    pub fn frame_error(&self) -> Option<&FrameError> {
        match &self.what {
            What::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            What::Frame(e) => write!(f, "{e}"),
            What::Preface => write!(
                f,
                "connection error {}: not the HTTP/2 connection preface",
                self.code
            ),
            What::Rule(why) => write!(f, "connection error {}: {why}", self.code),
            What::Flood(why) => write!(f, "connection error {}: {why}", self.code),
            What::Compression => write!(
                f,
                "connection error {}: header block cannot be decompressed",
                self.code
            ),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.what {
            What::Frame(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an application call (`send_headers`, `send_data`, ...) was refused. Nothing was
/// queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The stream is not open: never opened, reset by either side, or finished (a
    /// [`Reset`](super::Event::Reset) event told the application).
    UnknownStream,
    /// This side of the stream is closed: END_STREAM was already sent.
    Closed,
    /// Response headers were already sent ([`send_headers`](super::Connection::send_headers)
    /// twice with a final status).
    HeadersSent,
    /// No final response headers yet (DATA and trailers come after them).
    NoHeaders,
    /// A status outside 100..=999, an informational (1xx) status with END_STREAM, or a
    /// field name that is not lowercase or is a pseudo-header; for a request, a header
    /// section a server would find malformed (RFC 9113 §8.3.1).
    Invalid,
    /// The connection ended (a connection error, or a GOAWAY was sent and nothing can
    /// be sent any more).
    ConnectionClosed,
    /// A call of the other role: `send_headers` on a client, `send_request` on a server.
    WrongRole,
    /// Client: no new stream, the connection is going away (the server's GOAWAY came,
    /// or [`shutdown`](super::Connection::shutdown) was called). Open a new connection.
    GoingAway,
    /// Client: the server's SETTINGS_MAX_CONCURRENT_STREAMS streams are open; wait for
    /// one to end, or open another connection
    /// ([`available_streams`](super::Connection::available_streams)).
    StreamLimit,
    /// Client: every stream id (up to 2^31-1) was used. Open a new connection.
    StreamIdsExhausted,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::UnknownStream => "stream not open",
            SendError::Closed => "stream already ended on this side",
            SendError::HeadersSent => "response headers already sent",
            SendError::NoHeaders => "response headers not sent yet",
            SendError::Invalid => "invalid status or header field",
            SendError::ConnectionClosed => "connection closed",
            SendError::WrongRole => "not a call of this connection's role",
            SendError::GoingAway => "connection going away: no new stream",
            SendError::StreamLimit => "peer's concurrent stream limit reached",
            SendError::StreamIdsExhausted => "stream ids exhausted",
        })
    }
}

impl std::error::Error for SendError {}
