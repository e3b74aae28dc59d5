//! The framing fields of a message head, `Content-Length` and `Transfer-Encoding`
//! ([`FramingFields`]), with the checks RFC 9112 §6 asks of requests and responses alike
//! (the client side reads a response's through them too).

use super::bytes::{is_tchar, list, parse_decimal, token_is, trim_ows};

/// The framing fields of a message head (`Content-Length`, `Transfer-Encoding`) as read
/// so far, with the checks RFC 9112 §6 asks of both requests and responses.
#[derive(Default)]
pub(crate) struct FramingFields {
    /// The agreed `Content-Length` (all values equal).
    pub(crate) content_length: Option<u64>,
    /// A `Transfer-Encoding` field was present.
    pub(crate) te_seen: bool,
    te_chunked: u32,
    te_last_chunked: bool,
    te_other: bool,
}

/// Why the `Transfer-Encoding` of a head cannot frame its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TeError {
    /// HTTP/1.0 has no transfer codings.
    InHttp10,
    /// Both `Content-Length` and `Transfer-Encoding` (a smuggling vector).
    WithContentLength,
    /// The last coding is not `chunked`.
    NotEndingInChunked,
    /// `chunked` applied more than once.
    ChunkedTwice,
    /// A coding other than `chunked`.
    OtherCoding,
}

impl TeError {
    pub(crate) fn text(self) -> &'static str {
        match self {
            TeError::InHttp10 => "Transfer-Encoding in HTTP/1.0",
            TeError::WithContentLength => "both Content-Length and Transfer-Encoding",
            TeError::NotEndingInChunked => "Transfer-Encoding does not end in chunked",
            TeError::ChunkedTwice => "chunked applied more than once",
            TeError::OtherCoding => "transfer coding other than chunked",
        }
    }
}

impl FramingFields {
    /// Takes one header field: `Ok(true)` if it was a framing field (and valid so far),
    /// `Ok(false)` for any other field.
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8]) -> Result<bool, &'static str> {
        match name.len() {
            // Names are tokens (both parsers check them first).
            14 if token_is(name, b"content-length") => {
                // The common case: one number (the value comes trimmed).
                if let Some(n) = parse_decimal(value) {
                    return match self.content_length {
                        Some(prev) if prev != n => Err("differing Content-Length values"),
                        _ => {
                            self.content_length = Some(n);
                            Ok(true)
                        }
                    };
                }
                let mut any = false;
                for v in value.split(|&b| b == b',').map(trim_ows) {
                    any = true;
                    let n = parse_decimal(v).ok_or("invalid Content-Length")?;
                    match self.content_length {
                        Some(prev) if prev != n => return Err("differing Content-Length values"),
                        _ => self.content_length = Some(n),
                    }
                }
                if !any {
                    return Err("empty Content-Length");
                }
                Ok(true)
            }
            17 if token_is(name, b"transfer-encoding") => {
                self.te_seen = true;
                for coding in list(value) {
                    let (name, params) = match coding.iter().position(|&b| b == b';') {
                        Some(i) => (trim_ows(&coding[..i]), Some(&coding[i..])),
                        None => (coding, None),
                    };
                    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                        return Err("invalid Transfer-Encoding");
                    }
                    if name.eq_ignore_ascii_case(b"chunked") {
                        if params.is_some() {
                            return Err("parameters on chunked");
                        }
                        self.te_chunked += 1;
                        self.te_last_chunked = true;
                    } else {
                        self.te_other = true;
                        self.te_last_chunked = false;
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the body is chunked: `Ok(false)` without `Transfer-Encoding`, `Ok(true)`
    /// for exactly `chunked`, an error for anything else (checked in this order).
    pub(crate) fn chunked(&self, minor: u8) -> Result<bool, TeError> {
        if !self.te_seen {
            return Ok(false);
        }
        if minor == 0 {
            return Err(TeError::InHttp10);
        }
        if self.content_length.is_some() {
            return Err(TeError::WithContentLength);
        }
        if !self.te_last_chunked {
            return Err(TeError::NotEndingInChunked);
        }
        if self.te_chunked > 1 {
            return Err(TeError::ChunkedTwice);
        }
        if self.te_other {
            return Err(TeError::OtherCoding);
        }
        Ok(true)
    }
}
