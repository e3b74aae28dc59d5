//! A request's header fields read one by one ([`FieldScan`], by both parsers): the
//! framing, `Host`, `Expect` and connection facts ([`Facts`]), and the faults among them.

use super::bytes::{bad_host, list, token_is};
use super::error::ParseError;
use super::framing::{FramingFields, TeError};
use super::request::{BodyLength, Fields, Request};

/// What the header fields say about framing and the connection.
pub(super) struct Facts<'a> {
    /// The `Host` field's value, if any (there is at most one).
    pub(super) host: Option<&'a [u8]>,
    pub(super) length: BodyLength,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
    pub(super) upgrade: bool,
}

/// The header fields of a request read one by one: the framing, `Host`, `Expect` and
/// connection facts, and the faults among them.
pub(super) struct FieldScan<'a> {
    minor: u8,
    framing: FramingFields,
    hosts: u32,
    host: Option<&'a [u8]>,
    close: bool,
    keep_alive_token: bool,
    upgrade_token: bool,
    upgrade_header: bool,
    expect_continue: bool,
}

impl<'a> FieldScan<'a> {
    #[inline]
    pub(super) fn new(minor: u8) -> FieldScan<'a> {
        FieldScan {
            minor,
            framing: FramingFields::default(),
            hosts: 0,
            host: None,
            close: false,
            keep_alive_token: false,
            upgrade_token: false,
            upgrade_header: false,
            expect_continue: false,
        }
    }

    /// Takes the next field (`value` trimmed).
    #[inline(always)]
    pub(super) fn field(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), ParseError> {
        match name.len() {
            4 if token_is(name, b"host") => {
                self.hosts += 1;
                self.host = Some(value);
                if bad_host(value) {
                    return Err(ParseError::BadRequest("invalid Host"));
                }
            }
            // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1).
            6 if self.minor >= 1 && token_is(name, b"expect") => {
                for e in list(value) {
                    if e.eq_ignore_ascii_case(b"100-continue") {
                        self.expect_continue = true;
                    } else {
                        return Err(ParseError::ExpectationFailed);
                    }
                }
            }
            7 if token_is(name, b"upgrade") => self.upgrade_header = true,
            10 if token_is(name, b"connection") => {
                for t in list(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive_token = true;
                    } else if t.eq_ignore_ascii_case(b"upgrade") {
                        self.upgrade_token = true;
                    }
                }
            }
            14 | 17 => {
                self.framing
                    .field(name, value)
                    .map_err(ParseError::BadRequest)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// What the fields say, once all are in.
    #[inline(always)]
    pub(super) fn finish(self) -> Result<Facts<'a>, ParseError> {
        let minor = self.minor;
        if minor >= 1 && self.hosts != 1 {
            return Err(ParseError::BadRequest(if self.hosts == 0 {
                "missing Host"
            } else {
                "several Host fields"
            }));
        }
        if self.hosts > 1 {
            return Err(ParseError::BadRequest("several Host fields"));
        }
        let length = match self.framing.chunked(minor) {
            Ok(true) => BodyLength::Chunked,
            Ok(false) => match self.framing.content_length {
                Some(n) => BodyLength::Length(n),
                None => BodyLength::None,
            },
            Err(e @ TeError::OtherCoding) => return Err(ParseError::NotImplemented(e.text())),
            Err(e) => return Err(ParseError::BadRequest(e.text())),
        };
        let keep_alive = !self.close && (minor >= 1 || self.keep_alive_token);
        Ok(Facts {
            host: self.host,
            length,
            keep_alive,
            expect_continue: self.expect_continue,
            upgrade: self.upgrade_token && self.upgrade_header && minor >= 1,
        })
    }
}

impl<'a> Facts<'a> {
    /// The request these facts belong to (no body yet), its line and fields as parsed:
    /// what both parsers hand out.
    #[inline(always)]
    pub(super) fn request(
        &self,
        method: &'a str,
        target: &'a str,
        authority: (u32, u32),
        minor: u8,
        headers: Fields<'a>,
    ) -> Request<'a> {
        Request {
            method,
            target,
            authority,
            minor,
            headers,
            body: &[],
            length: self.length,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            upgrade: self.upgrade,
            streaming: false,
            h2: false,
        }
    }
}
