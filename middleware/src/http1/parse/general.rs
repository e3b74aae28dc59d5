//! The general request head parser: httparse, for every head the strict parser does not
//! take and every verdict on a bad one, then the checks httparse does not make (line
//! ends, version, target, fields).

use std::mem::MaybeUninit;

use httparse::Header;

use super::super::Config;
use super::error::ParseError;
use super::field_scan::FieldScan;
use super::request::{Fields, Request};
use super::target::{check_target, target_form};

/// [`parse_request`] for every input: httparse, then the checks httparse does not make.
/// The reference the strict parser is checked against (fuzzing).
///
/// [`parse_request`]: super::parse_request
pub(crate) fn parse_request_general<'a>(
    buf: &'a [u8],
    slots: &'a mut [MaybeUninit<Header<'a>>],
    cfg: &Config,
) -> Result<Option<(usize, Request<'a>)>, ParseError> {
    let max_head = cfg.max_head.max(16);
    let window = &buf[..buf.len().min(max_head)];
    let n_slots = cfg.max_headers.max(1).min(slots.len());
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(window, &mut slots[..n_slots]);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            check_line_ends(window, false)?;
            if window.len() >= max_head {
                // No end of the head within the limit.
                return Err(if !window.contains(&b'\n') {
                    ParseError::UriTooLong
                } else {
                    ParseError::HeadTooLarge
                });
            }
            return Ok(None);
        }
        Err(e) => return Err(map_httparse_error(e, window)),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::BadRequest("incomplete request line"));
    };
    let headers: &'a [Header<'a>] = req.headers;
    if !lines_end_in_crlf(&window[..len], method, headers) {
        return Err(ParseError::BadRequest("bare LF"));
    }
    if target.len() > cfg.max_target {
        return Err(ParseError::UriTooLong);
    }
    target_form(method, target)?;
    let mut scan = FieldScan::new(minor);
    for h in headers {
        scan.field(h.name.as_bytes(), h.value)?;
    }
    let facts = scan.finish()?;
    let authority = check_target(method, target, &facts)?;
    Ok(Some((
        len,
        facts.request(method, target, authority, minor, Fields::Parsed(headers)),
    )))
}

fn map_httparse_error(e: httparse::Error, window: &[u8]) -> ParseError {
    match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::Version => {
            // 505 for a well-formed HTTP-version naming another version; 400 for garbage.
            let line_end = window
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(window.len());
            let line = &window[..line_end];
            let mut parts = line.split(|&b| b == b' ');
            let version = parts.nth(2).unwrap_or_default();
            let well_formed = parts.next().is_none()
                && version.len() == 8
                && version.starts_with(b"HTTP/")
                && version[5].is_ascii_digit()
                && version[6] == b'.'
                && version[7].is_ascii_digit();
            if well_formed {
                ParseError::VersionNotSupported
            } else {
                ParseError::BadRequest("malformed HTTP version")
            }
        }
        httparse::Error::HeaderName => ParseError::BadRequest("invalid header name or obs-fold"),
        httparse::Error::HeaderValue => ParseError::BadRequest("invalid header value"),
        httparse::Error::NewLine => ParseError::BadRequest("invalid line ending"),
        httparse::Error::Token => ParseError::BadRequest("invalid method or target"),
        _ => ParseError::BadRequest("malformed request head"),
    }
}

/// Every LF must follow a CR and every CR precede an LF (RFC 9112 §2.2: no bare CR, and
/// this server does not accept a bare LF as a line end). `complete`: `head` is a whole
/// head, so a CR at its very end is bare too.
pub(crate) fn check_line_ends(head: &[u8], complete: bool) -> Result<(), ParseError> {
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\n' => return Err(ParseError::BadRequest("bare LF")),
            b'\r' => match head.get(i + 1) {
                Some(b'\n') => i += 2,
                Some(_) => return Err(ParseError::BadRequest("bare CR")),
                None if complete => return Err(ParseError::BadRequest("bare CR")),
                None => return Ok(()),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether every line of a head httparse accepted ends in CRLF. httparse takes CRLF or a
/// bare LF as a line end and rejects a CR not followed by LF, and an LF can only be a line
/// end; so it is enough to look at the byte before each line end: before every header
/// line, at the end of the last line, at the final empty line, and in the empty lines
/// skipped before the request line.
fn lines_end_in_crlf(head: &[u8], method: &str, headers: &[Header<'_>]) -> bool {
    let base = head.as_ptr() as usize;
    let offset = |p: *const u8| (p as usize).wrapping_sub(base);
    let m = offset(method.as_ptr());
    if m > head.len() || m % 2 != 0 || head[..m].chunks(2).any(|p| p != b"\r\n") {
        return false;
    }
    for h in headers {
        let at = offset(h.name.as_ptr());
        if at < 2 || at > head.len() || head[at - 2] != b'\r' {
            return false;
        }
    }
    let n = head.len();
    n >= 4 && head[n - 2] == b'\r' && head[n - 4] == b'\r'
}
