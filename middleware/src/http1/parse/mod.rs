//! Sans-IO request head parsing (RFC 9112 §2–§6) on httparse, with the framing and
//! smuggling checks a server needs before it trusts a request's body length.
//!
//! [`parse_request`] takes the bytes received so far and returns `Ok(None)` until a whole
//! head is there, then the head's length and a [`Request`] whose method, target and headers
//! borrow the input (nothing is copied). Every rejection is a [`ParseError`] that names the
//! status to answer with; after any of them the connection's framing is lost and it must be
//! closed.
//!
//! The parts, in the order a head goes through them: `strict.rs` (the common form in one
//! pass), `general.rs` (httparse, for every other head and every verdict on a bad one),
//! `field_scan.rs` (what a request's fields say about framing, `Host`, `Expect` and the
//! connection), `framing.rs` (`Content-Length` and `Transfer-Encoding`, read the same way
//! for responses), `target.rs` (the request target's form), `bytes.rs` (byte tables and
//! the scans on them), `request.rs` (the parsed [`Request`] and its fields) and
//! `error.rs` ([`ParseError`]).

use std::mem::MaybeUninit;

use httparse::Header;

use super::Config;

mod bytes;
mod error;
mod field_scan;
mod framing;
mod general;
mod request;
mod strict;
mod target;
#[cfg(test)]
mod tests;

#[cfg(feature = "h2")]
pub(crate) use bytes::bad_host;
pub(crate) use bytes::{
    all_value_bytes, eq, list, token_end, token_is, trim_ows, value_end, word, TCHAR,
};
pub use error::ParseError;
pub(crate) use framing::{FramingFields, TeError};
pub(crate) use general::{check_line_ends, parse_request_general};
pub use request::{BodyLength, Request};
use strict::parse_strict;

/// Most header lines the adapter parses (the size of its stack array); a request with more
/// gets 431 ([`Config::max_headers`] can lower it).
pub const MAX_HEADERS: usize = 128;

/// Uninitialised header storage for [`parse_request`] (lives on the caller's stack).
pub type HeaderSlots<'b> = [MaybeUninit<Header<'b>>; MAX_HEADERS];

/// Fresh header storage for [`parse_request`].
#[inline]
pub fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Parses a request head at the start of `buf`. `Ok(None)`: not complete yet (read more);
/// `Ok(Some((len, request)))`: the head is `buf[..len]` and its body (if any) follows.
/// Limits come from `cfg` (`max_head`, `max_headers`, `max_target`).
///
/// Beyond httparse's syntax checks this rejects, per RFC 9112: bare LF or CR as a line
/// end, obsolete line folding, a version other than 1.0/1.1 (505), a missing or repeated
/// `Host` in HTTP/1.1, `Content-Length` with `Transfer-Encoding`, differing or malformed
/// `Content-Length` values, `Transfer-Encoding` in HTTP/1.0, a `Transfer-Encoding` not
/// ending in `chunked` (400) or with codings other than `chunked` (501), `Expect`
/// values other than `100-continue` (417), and a request target of none of the four forms
/// or of a form its method does not take (400): origin-form (`/...`), absolute-form
/// (`http://` or `https://`, no user information, its authority equal to `Host` when
/// there is one), authority-form (`CONNECT` only, which takes nothing else) and `*`
/// (`OPTIONS` only).
#[inline]
pub fn parse_request<'a>(
    buf: &'a [u8],
    slots: &'a mut [MaybeUninit<Header<'a>>],
    cfg: &Config,
) -> Result<Option<(usize, Request<'a>)>, ParseError> {
    if let Some(r) = parse_strict(buf, cfg, slots.len()) {
        return Ok(Some(r));
    }
    parse_request_general(buf, slots, cfg)
}
