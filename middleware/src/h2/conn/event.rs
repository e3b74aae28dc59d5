//! [`Event`]: what [`Connection::recv`](super::Connection::recv) tells the application.

use super::super::frame::{ErrorCode, Settings};
use super::headers::{Fields, Request, Response};

/// Something the peer did that the application must know, handed to the `sink` of
/// [`Connection::recv`](super::Connection::recv). Everything borrowed is valid for the
/// call only: request and trailer fields live in the connection's header buffer, DATA
/// in the caller's input.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A stream opened with a request's header section, checked (RFC 9113 §8.3.1).
    Request {
        /// The stream (odd, increasing).
        stream: u32,
        /// The pseudo-header and regular fields.
        request: Request<'a>,
        /// No body follows (END_STREAM on the HEADERS frame).
        end_stream: bool,
    },
    /// Client role: the final response's header section to a request, checked (RFC
    /// 9113 §8.3.2).
    Response {
        /// The request's stream.
        stream: u32,
        /// The status and the regular fields.
        response: Response<'a>,
        /// No body follows (END_STREAM on the HEADERS frame).
        end_stream: bool,
    },
    /// Client role: an informational (1xx, not 101) response header section; the final
    /// response follows as [`Event::Response`].
    Informational {
        /// The request's stream.
        stream: u32,
        /// The status, 100..=199.
        status: u16,
        /// The regular fields.
        fields: Fields<'a>,
    },
    /// Client role: the server did not process this request (RFC 9113 §8.7), so it is
    /// safe to send it again, on another connection: the stream is above the
    /// `last_stream_id` of the server's GOAWAY (reported after [`Event::GoAway`]), or the
    /// server refused it (RST_STREAM REFUSED_STREAM). The stream is closed; nothing more
    /// comes on it.
    Unprocessed {
        /// The request's stream.
        stream: u32,
    },
    /// A piece of a request body (server role) or of a response body (client role). Once handled, give the bytes back with
    /// [`Connection::release`](super::Connection::release) so the peer may send more.
    Data {
        /// The stream.
        stream: u32,
        /// The data (padding removed); empty only when `end_stream` is set.
        data: &'a [u8],
        /// The body is complete (its length matched any `content-length`).
        end_stream: bool,
    },
    /// The trailer section, ending the request's body (server role) or the response's
    /// (client role; gRPC's `grpc-status` is here).
    Trailers {
        /// The stream.
        stream: u32,
        /// The trailer fields (no pseudo-headers).
        fields: Fields<'a>,
    },
    /// A stream the application knows ended abnormally: the peer reset it (`remote`),
    /// or the connection did because the peer broke a rule on it (a stream error, the
    /// RST_STREAM is already queued). Nothing more may be sent on it.
    Reset {
        /// The stream.
        stream: u32,
        /// The error code of the RST_STREAM.
        code: ErrorCode,
        /// Whether the peer sent it.
        remote: bool,
    },
    /// The peer sent GOAWAY: it opens no more streams; those up to `last_stream_id`
    /// may still complete. With an error code other than NO_ERROR the peer is closing
    /// the connection. A client is then told of each of its streams above
    /// `last_stream_id` by an [`Event::Unprocessed`], and opens no more.
    GoAway {
        /// The last of our streams the peer says it may have processed (always 0 from a
        /// client: a server opens none).
        last_stream_id: u32,
        /// The peer's error code.
        code: ErrorCode,
        /// The peer's diagnostic data.
        debug: &'a [u8],
    },
    /// The peer's SETTINGS were applied (and acknowledged); these are now in force.
    Settings(Settings),
    /// A stream whose [`send_data`](super::Connection::send_data) was held back by a
    /// flow-control window can send again (a WINDOW_UPDATE or SETTINGS opened it).
    Writable {
        /// The stream.
        stream: u32,
    },
}
