//! A response's framing and connection fields ([`ResponseFraming`]) and what they make of
//! its body's delimitation and the connection's reuse (RFC 9112 §6.3).

use super::super::parse::{list, token_is, FramingFields, TeError};
use super::response_error::ResponseError;
use super::response_head::ResponseBody;

/// A response's framing and connection fields, taken one by one.
#[derive(Default)]
pub(super) struct ResponseFraming {
    fields: FramingFields,
    close: bool,
    keep_alive_token: bool,
}

impl ResponseFraming {
    #[inline]
    pub(super) fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
        match name.len() {
            14 | 17 => {
                self.fields
                    .field(name, value)
                    .map_err(ResponseError::Malformed)?;
            }
            // The common values first (`token_is` holds for a value, which has no CR).
            10 if token_is(name, b"connection") && token_is(value, b"keep-alive") => {
                self.keep_alive_token = true;
            }
            10 if token_is(name, b"connection") && token_is(value, b"close") => {
                self.close = true;
            }
            10 if token_is(name, b"connection") => {
                for t in list(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive_token = true;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The body's delimitation and whether the connection can be reused (RFC 9112 §6.3).
    pub(super) fn finish(
        self,
        minor: u8,
        code: u16,
        head_request: bool,
    ) -> Result<(ResponseBody, bool), ResponseError> {
        let fields = self.fields;
        let mut keep_alive = !self.close && (minor >= 1 || self.keep_alive_token);
        if head_request || code < 200 || code == 204 || code == 304 {
            // No body, whatever the fields say (RFC 9112 §6.3 rules 1 and 2); the fields
            // still must not contradict each other.
            if fields.te_seen && fields.content_length.is_some() {
                return Err(ResponseError::Malformed(TeError::WithContentLength.text()));
            }
            return Ok((ResponseBody::None, keep_alive));
        }
        let body = match fields.chunked(minor) {
            Ok(true) => ResponseBody::Chunked,
            Ok(false) => match fields.content_length {
                Some(n) => ResponseBody::Length(n),
                None => {
                    keep_alive = false;
                    ResponseBody::UntilClose
                }
            },
            Err(e @ (TeError::NotEndingInChunked | TeError::OtherCoding)) => {
                return Err(ResponseError::NotImplemented(e.text()))
            }
            Err(e) => return Err(ResponseError::Malformed(e.text())),
        };
        Ok((body, keep_alive))
    }
}
