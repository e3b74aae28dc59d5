//! Why a response was rejected ([`ResponseError`]): its head, its framing, its body, or
//! its end before it was complete.

use std::fmt;

use super::super::chunked::ChunkedError;

/// Why a response was rejected. The connection's framing is lost: close it (a proxy
/// answers its own client 502).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Malformed syntax or framing (the detail says what).
    Malformed(&'static str),
    /// More header lines than allowed.
    TooManyHeaders,
    /// The head is larger than allowed.
    HeadTooLarge,
    /// An HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// A transfer coding other than chunked.
    NotImplemented(&'static str),
    /// A malformed chunked body.
    Chunked(ChunkedError),
    /// The connection ended before the response was complete.
    Truncated,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed(why) => write!(f, "malformed response: {why}"),
            ResponseError::TooManyHeaders => f.write_str("too many response header fields"),
            ResponseError::HeadTooLarge => f.write_str("response header section too large"),
            ResponseError::VersionNotSupported => {
                f.write_str("response HTTP version not supported")
            }
            ResponseError::NotImplemented(why) => write!(f, "not implemented: {why}"),
            ResponseError::Chunked(e) => write!(f, "response body: {e}"),
            ResponseError::Truncated => f.write_str("response truncated"),
        }
    }
}

impl std::error::Error for ResponseError {}

impl From<ChunkedError> for ResponseError {
    fn from(e: ChunkedError) -> ResponseError {
        ResponseError::Chunked(e)
    }
}
