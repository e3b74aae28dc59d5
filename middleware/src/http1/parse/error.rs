//! Why a request head was rejected ([`ParseError`]), and the status to answer with.

use std::fmt;

/// Why a request head was rejected. [`status`](ParseError::status) is the response to send;
/// the connection must be closed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// 400: malformed syntax or framing (the detail says what).
    BadRequest(&'static str),
    /// 431: more header lines than allowed.
    TooManyHeaders,
    /// 431: the head is larger than allowed.
    HeadTooLarge,
    /// 414: the request target is longer than allowed.
    UriTooLong,
    /// 505: an HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// 501: a transfer coding this server does not implement.
    NotImplemented(&'static str),
    /// 417: an `Expect` value other than `100-continue`.
    ExpectationFailed,
}

impl ParseError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::TooManyHeaders | ParseError::HeadTooLarge => 431,
            ParseError::UriTooLong => 414,
            ParseError::VersionNotSupported => 505,
            ParseError::NotImplemented(_) => 501,
            ParseError::ExpectationFailed => 417,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadRequest(why) => write!(f, "bad request: {why}"),
            ParseError::TooManyHeaders => f.write_str("too many header fields"),
            ParseError::HeadTooLarge => f.write_str("request header section too large"),
            ParseError::UriTooLong => f.write_str("request target too long"),
            ParseError::VersionNotSupported => f.write_str("HTTP version not supported"),
            ParseError::NotImplemented(why) => write!(f, "not implemented: {why}"),
            ParseError::ExpectationFailed => f.write_str("unsupported expectation"),
        }
    }
}

impl std::error::Error for ParseError {}
