//! The HTTP/1.1 client side, sans-IO: writing requests ([`write_request_head`],
//! [`write_chunk`], [`write_last_chunk`]) and reading responses ([`parse_response`] for a
//! head, [`ResponseReader`] for a whole exchange: interim responses, the head, then the
//! body by `Content-Length`, chunked or until the close).
//!
//! The framing rules are RFC 9112 §6.3 as a client applies them: no body after a `HEAD`
//! request or in a 1xx, 204 or 304 response; `Transfer-Encoding: chunked`; else
//! `Content-Length`; else the body runs until the server closes. The smuggling defences
//! are the server parser's: `Content-Length` with `Transfer-Encoding`, differing or
//! malformed lengths, bad chunk sizes, bare LF or CR, obsolete line folding — each is a
//! [`ResponseError`], after which the connection must not be reused.
//!
//! ```
//! use wireloop_middleware::http1::{header_slots, write_request_head, BodyLength, ClientEvent,
//!     Config, ResponseReader};
//!
//! let mut wire = Vec::new();
//! write_request_head(&mut wire, "GET", "/", [("Host", &b"example.com"[..])], BodyLength::None).unwrap();
//! assert_eq!(wire, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//!
//! let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
//! let mut reader = ResponseReader::new(false);
//! let cfg = Config::default();
//! let mut slots = header_slots();
//! let (used, ev) = reader.read(input, &mut slots, &cfg).unwrap();
//! let ClientEvent::Head(head) = ev else { panic!() };
//! assert_eq!(head.status(), 200);
//! let mut slots = header_slots();
//! let (_, ev) = reader.read(&input[used..], &mut slots, &cfg).unwrap();
//! assert!(matches!(ev, ClientEvent::Data(b"hi")));
//! ```

use std::fmt;
use std::mem::MaybeUninit;

use httparse::Header;

use super::chunked::{ChunkedDecoder, ChunkedError, Decoded};
use super::parse::{
    check_line_ends, eq, list, token_end, token_is, trim_ows, value_end, word, BodyLength,
    FramingFields, TeError,
};
use super::response::{valid_name, valid_value};
use super::{Config, Request};

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (a response to `HEAD`; 1xx, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

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

/// A parsed response head; the reason and headers borrow the input.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    status: u16,
    reason: &'a str,
    minor: u8,
    headers: HeadFields<'a>,
    body: ResponseBody,
    keep_alive: bool,
}

impl<'a> ResponseHead<'a> {
    /// The status code (100..=999).
    #[inline]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty).
    #[inline]
    pub fn reason(&self) -> &'a str {
        self.reason
    }

    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    #[inline]
    pub fn version_minor(&self) -> u8 {
        self.minor
    }

    /// The field section as it came (every field line, CRLFs included) when the head was
    /// read by the one-pass parser, the common case: the names and values
    /// [`headers`](ResponseHead::headers) hands out are slices of it, so a copy of it
    /// keeps them all (a proxy's one copy of a response head). `None` for a head read by
    /// the general parser (obsolete forms, non-ASCII reason phrases, more fields).
    pub fn field_section(&self) -> Option<&'a str> {
        match self.headers {
            HeadFields::Spans { block, .. } => Some(block),
            HeadFields::Parsed(_) => None,
        }
    }

    /// All header fields in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        match self.headers {
            HeadFields::Parsed(h) => HeadFieldIter {
                parsed: h.iter(),
                block: "",
                spans: [[0; 4]; SPANS],
                at: 0,
                count: 0,
            },
            HeadFields::Spans {
                block,
                spans,
                count,
            } => HeadFieldIter {
                parsed: [].iter(),
                block,
                spans,
                at: 0,
                count,
            },
        }
    }

    /// Number of header field lines.
    pub fn header_count(&self) -> usize {
        match self.headers {
            HeadFields::Parsed(h) => h.len(),
            HeadFields::Spans { count, .. } => usize::from(count),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|&(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How the body is delimited.
    #[inline]
    pub fn body(&self) -> ResponseBody {
        self.body
    }

    /// `Content-Length`, if the body is delimited by it.
    pub fn content_length(&self) -> Option<u64> {
        match self.body {
            ResponseBody::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the connection can carry another request after this response (HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`; never when
    /// the body runs until the close).
    #[inline]
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether this is an interim (1xx other than 101) response: a final one follows.
    #[inline]
    pub fn is_interim(&self) -> bool {
        self.status < 200 && self.status != 101
    }

    /// Whether the server switched protocols (101): the connection's bytes after the
    /// head belong to the new protocol.
    #[inline]
    pub fn is_upgrade(&self) -> bool {
        self.status == 101
    }
}

/// Most fields of a head the strict parser takes (more go the general way).
const SPANS: usize = 16;

/// A response head's fields: parsed into slots by httparse, or where the strict parser
/// found them in the header section (offsets into it: name start and end, value start
/// and end).
#[derive(Clone, Copy, Debug)]
enum HeadFields<'a> {
    Parsed(&'a [Header<'a>]),
    Spans {
        /// The header section, text (the strict parser takes no other), so names are
        /// handed out with no check per field.
        block: &'a str,
        spans: [[u16; 4]; SPANS],
        count: u8,
    },
}

/// The iterator of [`ResponseHead::headers`]: the parsed fields, then the spans.
struct HeadFieldIter<'a> {
    parsed: std::slice::Iter<'a, Header<'a>>,
    block: &'a str,
    spans: [[u16; 4]; SPANS],
    at: u8,
    count: u8,
}

impl<'a> Iterator for HeadFieldIter<'a> {
    type Item = (&'a str, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        if let Some(h) = self.parsed.next() {
            return Some((h.name, h.value));
        }
        if self.at >= self.count {
            return None;
        }
        let [n0, n1, v0, v1] = self.spans[usize::from(self.at) % SPANS].map(usize::from);
        self.at += 1;
        Some((
            self.block.get(n0..n1).unwrap_or_default(),
            self.block.as_bytes().get(v0..v1).unwrap_or_default(),
        ))
    }
}

/// Parses a response head at the start of `buf`. `Ok(None)`: not complete yet;
/// `Ok(Some((len, head)))`: the head is `buf[..len]`. `head_request`: the request was
/// `HEAD` (no body follows, whatever the headers say). Limits come from `cfg`
/// (`max_head`, `max_headers`).
pub fn parse_response<'a>(
    buf: &'a [u8],
    slots: &'a mut [MaybeUninit<Header<'a>>],
    cfg: &Config,
    head_request: bool,
) -> Result<Option<(usize, ResponseHead<'a>)>, ResponseError> {
    let max_head = cfg.max_head.max(16);
    let window = &buf[..buf.len().min(max_head)];
    let n_slots = cfg.max_headers.clamp(1, slots.len());
    if let Some(r) = parse_strict(window, n_slots, head_request) {
        return Ok(Some(r));
    }
    parse_general(window, max_head, &mut slots[..n_slots], head_request)
}

/// The common case in one pass: a complete head within the limits, `HTTP/1.x SP code SP
/// reason CRLF` with a status of 100..=999 and a reason of visible ASCII, SP and HTAB,
/// `name:OWS value OWS CRLF` fields, every line ending in CRLF, and no framing fault. It
/// accepts a subset of what httparse and the checks after it accept, and answers the same
/// for it; anything else (incomplete, an error, a rarer form such as a reason with
/// obs-text or a status line without a reason) is `None`, and [`parse_general`] gives the
/// verdict. `w` is the input up to the head limit.
#[inline]
pub(super) fn parse_strict<'a>(
    w: &'a [u8],
    max_fields: usize,
    head_request: bool,
) -> Option<(usize, ResponseHead<'a>)> {
    let version = word(w, 0)?;
    let minor = if version == u64::from_le_bytes(*b"HTTP/1.1") {
        1
    } else if version == u64::from_le_bytes(*b"HTTP/1.0") {
        0
    } else {
        return None;
    };
    let line: &[u8; 13] = w.get(..13)?.try_into().ok()?;
    let digit = |b: u8| b.wrapping_sub(b'0');
    let (d0, d1, d2) = (digit(line[9]), digit(line[10]), digit(line[11]));
    if line[8] != b' ' || line[12] != b' ' || d0 == 0 || d0 > 9 || d1 > 9 || d2 > 9 {
        return None;
    }
    let code = u16::from(d0) * 100 + u16::from(d1) * 10 + u16::from(d2);
    // The reason: HTAB, SP, VCHAR (what httparse hands out as text; obs-text goes the
    // general way).
    let mut i = 13;
    while i < w.len() && (w[i] == b'\t' || (b' '..=b'~').contains(&w[i])) {
        i += 1;
    }
    if w.get(i..i + 2)? != b"\r\n" {
        return None;
    }
    let reason = crate::text::ascii(&w[13..i])?;
    i += 2;
    let start = i;
    let mut framing = ResponseFraming::default();
    let mut count = 0usize;
    let mut spans = [[0u16; 4]; SPANS];
    loop {
        if *w.get(i)? == b'\r' {
            if *w.get(i + 1)? != b'\n' {
                return None;
            }
            break;
        }
        let n = i;
        i = token_end(w, i);
        if i == n || *w.get(i)? != b':' {
            return None;
        }
        let name = &w[n..i];
        i += 1;
        i += w[i..].iter().position(|&b| b != b' ' && b != b'\t')?;
        let v = i;
        i = value_end(w, i);
        if *w.get(i)? != b'\r' || *w.get(i + 1)? != b'\n' {
            return None;
        }
        let value = trim_ows(&w[v..i]);
        if count >= max_fields.min(SPANS) || i - start > usize::from(u16::MAX) {
            return None;
        }
        // Offsets into the header section (within u16, checked above).
        spans[count] = [
            n - start,
            n - start + name.len(),
            v - start,
            v - start + value.len(),
        ]
        .map(|x| x as u16);
        i += 2;
        count += 1;
        framing.field(name, value).ok()?;
    }
    // Text (one check for the whole section; a value with bytes that are not UTF-8 goes
    // the general way), so that names are handed out with no check of their own.
    let block = crate::text::utf8(&w[start..i])?;
    let (body, keep_alive) = framing.finish(minor, code, head_request).ok()?;
    Some((
        i + 2,
        ResponseHead {
            status: code,
            reason,
            minor,
            headers: HeadFields::Spans {
                block,
                spans,
                count: count as u8,
            },
            body,
            keep_alive,
        },
    ))
}

/// [`parse_response`] by httparse and the checks after it: every head the strict parser
/// does not take, and every error.
pub(super) fn parse_general<'a>(
    window: &'a [u8],
    max_head: usize,
    slots: &'a mut [MaybeUninit<Header<'a>>],
    head_request: bool,
) -> Result<Option<(usize, ResponseHead<'a>)>, ResponseError> {
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, window, slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            check_line_ends(window, false)
                .map_err(|_| ResponseError::Malformed("bare LF or CR"))?;
            if window.len() >= max_head {
                return Err(ResponseError::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(e) => {
            return Err(match e {
                httparse::Error::TooManyHeaders => ResponseError::TooManyHeaders,
                httparse::Error::Version => {
                    if window.starts_with(b"HTTP/") {
                        ResponseError::VersionNotSupported
                    } else {
                        ResponseError::Malformed("malformed HTTP version")
                    }
                }
                httparse::Error::Status => ResponseError::Malformed("invalid status"),
                httparse::Error::HeaderName => {
                    ResponseError::Malformed("invalid header name or obs-fold")
                }
                httparse::Error::HeaderValue => ResponseError::Malformed("invalid header value"),
                httparse::Error::NewLine => ResponseError::Malformed("invalid line ending"),
                _ => ResponseError::Malformed("malformed response head"),
            })
        }
    };
    let (Some(minor), Some(code)) = (res.version, res.code) else {
        return Err(ResponseError::Malformed("incomplete status line"));
    };
    if minor > 1 {
        return Err(ResponseError::VersionNotSupported);
    }
    if !(100..=999).contains(&code) {
        return Err(ResponseError::Malformed("invalid status"));
    }
    let reason = res.reason.unwrap_or("");
    let headers: &'a [Header<'a>] = res.headers;
    if !lines_end_in_crlf(&window[..len], headers) {
        // The slow look, to say what is wrong.
        check_line_ends(&window[..len], true)
            .map_err(|_| ResponseError::Malformed("bare LF or CR"))?;
    }
    let mut framing = ResponseFraming::default();
    for h in headers {
        framing.field(h.name.as_bytes(), h.value)?;
    }
    let (body, keep_alive) = framing.finish(minor, code, head_request)?;
    Ok(Some((
        len,
        ResponseHead {
            status: code,
            reason,
            minor,
            headers: HeadFields::Parsed(headers),
            body,
            keep_alive,
        },
    )))
}

/// Whether every line of a response head httparse accepted ends in CRLF (the head starts
/// with its status line). httparse takes CRLF or a bare LF as a line end and rejects a CR
/// not followed by LF, so it is enough to look at the byte before each line end: before
/// every header line and at the two last line ends. `false` says only that the byte-wise
/// check must decide.
fn lines_end_in_crlf(head: &[u8], headers: &[Header<'_>]) -> bool {
    if !head.starts_with(b"HTTP/") {
        return false;
    }
    let base = head.as_ptr() as usize;
    for h in headers {
        let at = (h.name.as_ptr() as usize).wrapping_sub(base);
        if at < 2 || at > head.len() || head[at - 2] != b'\r' {
            return false;
        }
    }
    let n = head.len();
    n >= 4 && head[n - 2] == b'\r' && head[n - 4] == b'\r'
}

/// A response's framing and connection fields, taken one by one.
#[derive(Default)]
struct ResponseFraming {
    fields: FramingFields,
    close: bool,
    keep_alive_token: bool,
}

impl ResponseFraming {
    #[inline]
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
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
    fn finish(
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

/// Why a request could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidRequest(pub &'static str);

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request: {}", self.0)
    }
}

impl std::error::Error for InvalidRequest {}

fn valid_target(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b > b' ' && b != 0x7f)
}

/// Appends an HTTP/1.1 request head to `out`: the request line, `headers` in order, and
/// the framing the writer owns: `Content-Length: n` for [`BodyLength::Length`] (also 0),
/// `Transfer-Encoding: chunked` for [`BodyLength::Chunked`] (then send the body with
/// [`write_chunk`] and [`write_last_chunk`]). `Content-Length` and `Transfer-Encoding` in
/// `headers` are skipped. An invalid method, target, header name or value (CR, LF, NUL)
/// is refused and nothing is written. [`RequestHeadWriter`] writes a head piece by piece.
pub fn write_request_head<'h>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    body: BodyLength,
) -> Result<(), InvalidRequest> {
    let mut w = RequestHeadWriter::new(out, method, target)?;
    for (name, value) in headers {
        w.field(name, value)?;
    }
    w.finish(body);
    Ok(())
}

/// A field name checked once, when the program is built: `const VIA: FieldName =
/// FieldName::new("Via");` fails to compile for a name that is not a token. For
/// [`RequestHeadWriter::named_field`].
#[derive(Clone, Copy, Debug)]
pub struct FieldName {
    name: &'static str,
    /// `Content-Length` or `Transfer-Encoding`: the writer's own, skipped.
    framing: bool,
}

impl FieldName {
    /// `name`, which must be a token (a panic otherwise: at compile time in a `const`).
    pub const fn new(name: &'static str) -> FieldName {
        let b = name.as_bytes();
        assert!(!b.is_empty(), "an empty field name");
        let mut i = 0;
        while i < b.len() {
            assert!(
                matches!(b[i], b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-'
                    | b'.' | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z'
                    | b'A'..=b'Z'),
                "a field name must be a token"
            );
            i += 1;
        }
        FieldName {
            name,
            framing: const_eq_ignore_case(b, b"content-length")
                || const_eq_ignore_case(b, b"transfer-encoding"),
        }
    }

    /// The name.
    pub const fn as_str(&self) -> &'static str {
        self.name
    }
}

const fn const_eq_ignore_case(a: &[u8], lower: &[u8]) -> bool {
    if a.len() != lower.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i].to_ascii_lowercase() != lower[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Writes an HTTP/1.1 request head piece by piece (what [`write_request_head`] does in
/// one call): the request line, then fields (checked, as [`write_request_head`] checks
/// them, or a parsed request's own, which its parser checked already), then the framing.
/// `Content-Length` and `Transfer-Encoding` fields are skipped: [`finish`] frames the
/// body. After an error nothing the writer wrote is left in the buffer; drop the writer.
///
/// ```
/// use wireloop_middleware::http1::{header_slots, parse_request, BodyLength, Config,
///     RequestHeadWriter};
///
/// let mut slots = header_slots();
/// let raw = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\n\r\n";
/// let (_, req) = parse_request(raw, &mut slots, &Config::default()).unwrap().unwrap();
/// let mut out = Vec::new();
/// let mut w = RequestHeadWriter::new(&mut out, req.method(), req.origin()).unwrap();
/// w.request_fields(&req, |name, _| !name.eq_ignore_ascii_case("x-drop")).unwrap();
/// w.field("Via", b"1.1 me").unwrap();
/// w.finish(BodyLength::None);
/// assert_eq!(out, b"GET /x HTTP/1.1\r\nHost: a\r\nVia: 1.1 me\r\n\r\n");
/// ```
///
/// [`finish`]: RequestHeadWriter::finish
pub struct RequestHeadWriter<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

impl<'o> RequestHeadWriter<'o> {
    /// Starts a head with its request line; an invalid method or target is refused and
    /// nothing is written.
    pub fn new(
        out: &'o mut Vec<u8>,
        method: &str,
        target: &str,
    ) -> Result<RequestHeadWriter<'o>, InvalidRequest> {
        if !valid_name(method) {
            return Err(InvalidRequest("method"));
        }
        if !valid_target(target) {
            return Err(InvalidRequest("target"));
        }
        let start = out.len();
        out.reserve(method.len() + target.len() + 128);
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        Ok(RequestHeadWriter { out, start })
    }

    /// Appends `name: value` (skipped if it is a framing field). An invalid name or value
    /// is refused, and everything this writer wrote is taken back.
    pub fn field(&mut self, name: &str, value: &[u8]) -> Result<(), InvalidRequest> {
        if !valid_name(name) {
            return Err(self.fail("header name"));
        }
        if !valid_value(value) {
            return Err(self.fail("header value"));
        }
        self.checked_field(name, value);
        Ok(())
    }

    /// Appends `name: value` for a name checked when the program was built (see
    /// [`FieldName`]); the value is checked as [`field`](RequestHeadWriter::field)
    /// checks it.
    pub fn named_field(&mut self, name: &FieldName, value: &[u8]) -> Result<(), InvalidRequest> {
        if !valid_value(value) {
            return Err(self.fail("header value"));
        }
        if !name.framing {
            let out = &mut *self.out;
            out.extend_from_slice(name.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    /// Appends the fields of `req` that `keep` takes, in order (framing fields skipped).
    /// An HTTP/1.1 request's fields are written as they are, its parser having checked
    /// them (names are tokens, values hold no control bytes but HTAB); an HTTP/2
    /// request's are checked as [`field`](RequestHeadWriter::field) checks them.
    pub fn request_fields(
        &mut self,
        req: &Request<'_>,
        mut keep: impl FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), InvalidRequest> {
        let checked = !req.is_h2();
        for (name, value) in req.headers() {
            if !keep(name, value) {
                continue;
            }
            if checked {
                self.checked_field(name, value);
            } else {
                self.field(name, value)?;
            }
        }
        Ok(())
    }

    /// Ends the head with the framing of `body`.
    pub fn finish(self, body: BodyLength) {
        let out = self.out;
        match body {
            BodyLength::None => out.extend_from_slice(b"\r\n"),
            BodyLength::Length(n) => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
            }
            BodyLength::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
        }
    }

    /// A field known to be valid.
    #[inline]
    fn checked_field(&mut self, name: &str, value: &[u8]) {
        let framing = match name.len() {
            14 => eq(name, "content-length"),
            17 => eq(name, "transfer-encoding"),
            _ => false,
        };
        if framing {
            return;
        }
        let out = &mut *self.out;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }

    #[cold]
    fn fail(&mut self, why: &'static str) -> InvalidRequest {
        self.out.truncate(self.start);
        InvalidRequest(why)
    }
}

/// Appends `data` as one chunk of a chunked body (nothing for empty data, which would
/// end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        n > 0
    } {}
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk (and an empty trailer section) of a chunked body.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Decodes a message body of any framing: by length, chunked (through
/// [`ChunkedDecoder`]) or until the close. Data pieces are slices of the input.
#[derive(Clone, Debug)]
pub enum BodyDecoder {
    /// This many bytes to go.
    Length(u64),
    /// Chunked.
    Chunked(ChunkedDecoder),
    /// Everything until the connection closes.
    UntilClose,
    /// Complete.
    Done,
}

impl BodyDecoder {
    /// A decoder for a response body delimited as `body`.
    pub fn for_response(body: ResponseBody) -> BodyDecoder {
        match body {
            ResponseBody::None | ResponseBody::Length(0) => BodyDecoder::Done,
            ResponseBody::Length(n) => BodyDecoder::Length(n),
            ResponseBody::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
            ResponseBody::UntilClose => BodyDecoder::UntilClose,
        }
    }

    /// Decodes from `input`: how much was used, and at most one piece of data,
    /// [`Decoded::Done`] at the end of the body, or [`Decoded::NeedMore`].
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Decoded<'a>), ChunkedError> {
        match self {
            BodyDecoder::Done => Ok((0, Decoded::Done)),
            BodyDecoder::Length(left) => {
                if input.is_empty() {
                    return Ok((0, Decoded::NeedMore));
                }
                let n = (*left).min(input.len() as u64) as usize;
                *left -= n as u64;
                if *left == 0 {
                    *self = BodyDecoder::Done;
                }
                Ok((n, Decoded::Data(&input[..n])))
            }
            BodyDecoder::Chunked(dec) => {
                let r = dec.decode(input)?;
                if r.1 == Decoded::Done {
                    *self = BodyDecoder::Done;
                }
                Ok(r)
            }
            BodyDecoder::UntilClose if input.is_empty() => Ok((0, Decoded::NeedMore)),
            BodyDecoder::UntilClose => Ok((input.len(), Decoded::Data(input))),
        }
    }

    /// The connection ended: `Ok` if that completes the body (until-close framing, or
    /// already complete), else [`ResponseError::Truncated`].
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self {
            BodyDecoder::Done | BodyDecoder::UntilClose => {
                *self = BodyDecoder::Done;
                Ok(())
            }
            _ => Err(ResponseError::Truncated),
        }
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self, BodyDecoder::Done)
    }
}

/// What [`ResponseReader::read`] produced.
#[derive(Debug)]
pub enum ClientEvent<'a> {
    /// An interim response (100 Continue, 103 Early Hints, ...): a final one follows.
    Interim(ResponseHead<'a>),
    /// The final response head (or a 101: the bytes after it are the new protocol's).
    Head(ResponseHead<'a>),
    /// A piece of the body (never empty).
    Data(&'a [u8]),
    /// The response is complete.
    End,
    /// All input was used; more is needed.
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadPhase {
    Head,
    Body,
    Done,
    Upgraded,
}

/// Reads one response from a connection's input: interim responses, then the head, then
/// the body. Make one per request (or [`reset`](ResponseReader::reset) it). Feed the
/// input from where the previous call stopped; after [`ClientEvent::End`] any further
/// input belongs to the next response (or is unexpected).
#[derive(Clone, Debug)]
pub struct ResponseReader {
    phase: ReadPhase,
    head_request: bool,
    body: BodyDecoder,
    keep_alive: bool,
}

impl ResponseReader {
    /// A reader for the response to a request; `head_request`: it was `HEAD`.
    pub fn new(head_request: bool) -> ResponseReader {
        ResponseReader {
            phase: ReadPhase::Head,
            head_request,
            body: BodyDecoder::Done,
            keep_alive: false,
        }
    }

    /// Starts over for the next request on the connection.
    pub fn reset(&mut self, head_request: bool) {
        *self = ResponseReader::new(head_request);
    }

    /// Reads from `input`: how many bytes were used and what they were.
    pub fn read<'a>(
        &mut self,
        input: &'a [u8],
        slots: &'a mut [MaybeUninit<Header<'a>>],
        cfg: &Config,
    ) -> Result<(usize, ClientEvent<'a>), ResponseError> {
        match self.phase {
            ReadPhase::Head => {
                let Some((len, head)) = parse_response(input, slots, cfg, self.head_request)?
                else {
                    return Ok((0, ClientEvent::NeedMore));
                };
                if head.is_interim() {
                    return Ok((len, ClientEvent::Interim(head)));
                }
                self.keep_alive = head.keep_alive();
                if head.is_upgrade() {
                    self.phase = ReadPhase::Upgraded;
                    self.body = BodyDecoder::Done;
                } else {
                    self.body = BodyDecoder::for_response(head.body());
                    self.phase = if self.body.is_done() {
                        ReadPhase::Done
                    } else {
                        ReadPhase::Body
                    };
                }
                Ok((len, ClientEvent::Head(head)))
            }
            ReadPhase::Body => {
                let (n, d) = self.body.decode(input)?;
                Ok((
                    n,
                    match d {
                        Decoded::Data(d) => ClientEvent::Data(d),
                        Decoded::Done => {
                            self.phase = ReadPhase::Done;
                            ClientEvent::End
                        }
                        Decoded::NeedMore => ClientEvent::NeedMore,
                    },
                ))
            }
            ReadPhase::Done => Ok((0, ClientEvent::End)),
            ReadPhase::Upgraded => Ok((0, ClientEvent::End)),
        }
    }

    /// The server closed its side: `Ok` if the response is complete with that (a body
    /// delimited by the close), else [`ResponseError::Truncated`].
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self.phase {
            ReadPhase::Done | ReadPhase::Upgraded => Ok(()),
            ReadPhase::Head => Err(ResponseError::Truncated),
            ReadPhase::Body => {
                self.body.eof()?;
                self.phase = ReadPhase::Done;
                Ok(())
            }
        }
    }

    /// Whether the final head has been read.
    pub fn has_head(&self) -> bool {
        self.phase != ReadPhase::Head
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.phase == ReadPhase::Done
    }

    /// Whether the response was a 101 (the connection now speaks another protocol).
    pub fn is_upgraded(&self) -> bool {
        self.phase == ReadPhase::Upgraded
    }

    /// Whether the connection may carry another request once the response is complete.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.phase == ReadPhase::Done
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::header_slots;
    use super::*;

    fn cfg() -> Config {
        Config::default()
    }

    #[test]
    fn head_writer_named_fields() {
        const VIA: FieldName = FieldName::new("Via");
        const CL: FieldName = FieldName::new("Content-Length");
        let mut out = b"x".to_vec();
        let mut w = RequestHeadWriter::new(&mut out, "GET", "/").unwrap();
        w.named_field(&VIA, b"1.1 a").unwrap();
        w.named_field(&CL, b"5").unwrap();
        w.finish(BodyLength::Length(2));
        assert_eq!(
            out,
            b"xGET / HTTP/1.1\r\nVia: 1.1 a\r\nContent-Length: 2\r\n\r\n"
        );
        let mut w = RequestHeadWriter::new(&mut out, "GET", "/").unwrap();
        assert!(w.named_field(&VIA, b"a\r\nb").is_err());
        assert!(std::panic::catch_unwind(|| FieldName::new("a b")).is_err());
    }

    /// The strict one-pass parser and httparse with the checks after it agree on heads
    /// with every kind of byte at every place of the status line and of a field value,
    /// whole or cut short; each strict verdict is the general one.
    #[test]
    fn strict_and_general_response_parsers_agree() {
        let specials: &[u8] = b"\t \x00\x01\x1f\x7f\x80\xff\r\n!~:/?#@\\aZ0";
        let mut heads: Vec<Vec<u8>> = Vec::new();
        let base =
            b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\nX-V: abcdefghijklmnopq\r\n\r\n";
        for at in 0..base.len() {
            for &b in specials {
                let mut h = base.to_vec();
                h[at] = b;
                heads.push(h);
            }
        }
        for len in 0..20 {
            for at in 0..len {
                for &b in specials {
                    let mut value = vec![b'v'; len];
                    value[at] = b;
                    let mut h = b"HTTP/1.0 404 Not  Found \r\nX-V:  ".to_vec();
                    h.extend_from_slice(&value);
                    h.extend_from_slice(b" \t\r\nConnection: keep-alive\r\n\r\n");
                    heads.push(h);
                }
            }
        }
        for h in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 \r\n\r\n",
            b"HTTP/1.1 200\r\n\r\n",
            b"HTTP/1.1 099 X\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.2 200 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\nServer: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nServer : x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n fold\r\n\r\n",
            b"HTTP/1.1 200 \xc3\xa9\r\n\r\n",
        ] {
            heads.push(h.to_vec());
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..70 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        heads.push(many);
        let small = Config {
            max_head: 40,
            max_headers: 2,
            ..Config::default()
        };
        let mut strict_took = 0;
        for h in &heads {
            for c in [cfg(), small.clone()] {
                for cut in [h.len(), h.len() - 1, h.len() / 2] {
                    for head_request in [false, true] {
                        let input = &h[..cut];
                        let what = String::from_utf8_lossy(input);
                        let max_head = c.max_head.max(16);
                        let window = &input[..input.len().min(max_head)];
                        let mut slots = header_slots();
                        let n_slots = c.max_headers.clamp(1, slots.len());
                        let Some((n, r)) = parse_strict(window, n_slots, head_request) else {
                            continue;
                        };
                        strict_took += 1;
                        let general =
                            parse_general(window, max_head, &mut slots[..n_slots], head_request);
                        let Ok(Some((m, g))) = general else {
                            panic!("{what:?}: strict took it, general says {general:?}");
                        };
                        assert_eq!(n, m, "{what:?}");
                        assert_eq!(
                            (r.status(), r.reason(), r.version_minor()),
                            (g.status(), g.reason(), g.version_minor()),
                            "{what:?}"
                        );
                        assert_eq!((r.body(), r.keep_alive()), (g.body(), g.keep_alive()));
                        assert_eq!(r.header_count(), g.header_count(), "{what:?}");
                        assert!(r.headers().eq(g.headers()), "{what:?}");
                        for (name, _) in g.headers() {
                            assert_eq!(r.header(name), g.header(name), "{what:?}");
                        }
                    }
                }
            }
        }
        assert!(strict_took > 1000, "{strict_took}");
    }

    /// `ok! { name: input, head_request => |res, len| { assertions } }`: the head parses.
    macro_rules! ok {
        ($($name:ident: $input:expr, $head:expr => |$res:ident, $len:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_response(input, &mut slots, &c, $head) {
                    Ok(Some(($len, $res))) => $body,
                    other => panic!("expected a response, got {:?}", other.map(|o| o.map(|(l, _)| l))),
                }
            }
        )*};
    }

    /// `err! { name: input; }`: the head is rejected.
    macro_rules! err {
        ($($name:ident: $input:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_response(input, &mut slots, &c, false) {
                    Err(_) => {}
                    Ok(o) => panic!("expected an error, got {:?}", o.map(|(l, _)| l)),
                }
            }
        )*};
    }

    /// `partial! { name: input; }`: not complete yet, and not wrong so far.
    macro_rules! partial {
        ($($name:ident: $input:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_response(input, &mut slots, &c, false) {
                    Ok(None) => {}
                    Ok(Some((l, _))) => panic!("expected partial, got a head of {l}"),
                    Err(e) => panic!("expected partial, got {e}"),
                }
            }
        )*};
    }

    ok! {
        simple: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false => |r, len| {
            assert_eq!(len, 38);
            assert_eq!(r.status(), 200);
            assert_eq!(r.reason(), "OK");
            assert_eq!(r.body(), ResponseBody::Length(5));
            assert!(r.keep_alive());
            assert_eq!(r.header("content-LENGTH"), Some(&b"5"[..]));
        }
        chunked: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false => |r, _len| {
            assert_eq!(r.body(), ResponseBody::Chunked);
            assert!(r.keep_alive());
        }
        until_close: b"HTTP/1.1 200 OK\r\n\r\n", false => |r, _len| {
            assert_eq!(r.body(), ResponseBody::UntilClose);
            assert!(!r.keep_alive());
        }
        http10_closes: b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false => |r, _len| {
            assert_eq!(r.version_minor(), 0);
            assert!(!r.keep_alive());
        }
        http10_keep_alive: b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false => |r, _len| {
            assert!(r.keep_alive());
        }
        connection_close: b"HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n", false => |r, _len| {
            assert!(!r.keep_alive());
        }
        head_has_no_body: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true => |r, _len| {
            assert_eq!(r.body(), ResponseBody::None);
            assert!(r.keep_alive());
        }
        no_content: b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false => |r, _len| {
            assert_eq!(r.body(), ResponseBody::None);
        }
        not_modified: b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false => |r, _len| {
            assert_eq!(r.body(), ResponseBody::None);
        }
        interim: b"HTTP/1.1 100 Continue\r\n\r\n", false => |r, len| {
            assert_eq!(len, 25);
            assert!(r.is_interim());
            assert_eq!(r.body(), ResponseBody::None);
        }
        switching: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw", false => |r, len| {
            assert!(r.is_upgrade());
            assert!(!r.is_interim());
            assert_eq!(len, 77);
        }
        empty_reason: b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", false => |r, _len| {
            assert_eq!(r.status(), 599);
            assert_eq!(r.reason(), "");
        }
        same_lengths: b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n", false => |r, _len| {
            assert_eq!(r.content_length(), Some(3));
        }
    }

    err! {
        bare_lf: b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n";
        bare_lf_end: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n";
        bare_cr: b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n";
        obs_fold: b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n";
        cl_and_te: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        differing_cl: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        bad_cl: b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n";
        overflow_cl: b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n";
        te_gzip: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        te_not_last: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        te_twice: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
        te_http10: b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        version_2: b"HTTP/2.0 200 OK\r\n\r\n";
        garbage: b"SSH-2.0-OpenSSH\r\n\r\n";
        bad_status: b"HTTP/1.1 20 OK\r\n\r\n";
        no_status: b"HTTP/1.1 OK\r\n\r\n";
        nul_value: b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
    }

    partial! {
        nothing: b"";
        half: b"HTTP/1.";
        status_line: b"HTTP/1.1 200 OK\r\n";
        ends_in_cr: b"HTTP/1.1 200 OK\r\n\r";
    }

    #[test]
    fn head_too_large() {
        let mut r = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        r.resize(cfg().max_head + 1, b'a');
        let mut slots = header_slots();
        let e = parse_response(&r, &mut slots, &cfg(), false)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e, ResponseError::HeadTooLarge);
    }

    #[test]
    fn too_many_headers() {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..100 {
            r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        let mut slots = header_slots();
        let e = parse_response(&r, &mut slots, &cfg(), false)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e, ResponseError::TooManyHeaders);
    }

    /// Reads a whole exchange from `input` cut into `step`-byte reads: (interim statuses,
    /// final status, body, completed, bytes left over).
    fn exchange(
        input: &[u8],
        step: usize,
        head: bool,
        eof: bool,
    ) -> Result<(Vec<u16>, u16, Vec<u8>, bool), ResponseError> {
        let mut r = ResponseReader::new(head);
        let (mut interim, mut status, mut body, mut done) = (Vec::new(), 0, Vec::new(), false);
        let mut buf = Vec::new();
        let mut fed = 0;
        loop {
            if fed < input.len() {
                let n = step.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            loop {
                let mut slots = header_slots();
                let (used, ev) = r.read(&buf, &mut slots, &cfg())?;
                let mut stop = false;
                match ev {
                    ClientEvent::Interim(h) => interim.push(h.status()),
                    ClientEvent::Head(h) => {
                        status = h.status();
                        if h.is_upgrade() {
                            done = true;
                            stop = true;
                        }
                    }
                    ClientEvent::Data(d) => body.extend_from_slice(d),
                    ClientEvent::End => {
                        done = true;
                        stop = true;
                    }
                    ClientEvent::NeedMore => stop = true,
                }
                buf.drain(..used);
                if stop {
                    break;
                }
            }
            if done || fed == input.len() {
                break;
            }
        }
        if !done && eof {
            r.eof()?;
            done = r.is_done();
        }
        Ok((interim, status, body, done))
    }

    #[test]
    fn exchanges_at_every_step() {
        /// (input, HEAD request, ends with EOF, interim statuses, status, body)
        type Case = (
            &'static [u8],
            bool,
            bool,
            &'static [u16],
            u16,
            &'static [u8],
        );
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false, &[], 200, b"hello"),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", false, false, &[100, 103], 201, b"abcde"),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false, true, &[], 200, b"until the end"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false, &[], 200, b""),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", false, false, &[], 304, b""),
            (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", false, false, &[], 101, b""),
        ];
        for &(input, head, eof, interim, status, body) in cases {
            for step in 1..=input.len() {
                let (i, s, b, done) = exchange(input, step, head, eof).unwrap_or_else(|e| {
                    panic!("step {step}: {e}: {:?}", String::from_utf8_lossy(input))
                });
                assert_eq!(
                    (i.as_slice(), s, b.as_slice(), done),
                    (interim, status, body, true),
                    "step {step}"
                );
            }
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nContent-",
        ] {
            assert_eq!(
                exchange(input, 7, false, true).unwrap_err(),
                ResponseError::Truncated
            );
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx\r\n0\r\n\r\n",
        ] {
            assert!(matches!(
                exchange(input, 3, false, true),
                Err(ResponseError::Chunked(_))
            ));
        }
    }

    #[test]
    fn keep_alive_after_complete_only() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let mut r = ResponseReader::new(false);
        let mut slots = header_slots();
        let (n, _) = r.read(input, &mut slots, &cfg()).unwrap();
        assert!(!r.keep_alive());
        let mut slots = header_slots();
        let (m, ev) = r.read(&input[n..], &mut slots, &cfg()).unwrap();
        assert!(matches!(ev, ClientEvent::Data(b"hi")));
        assert_eq!(n + m, input.len());
        let mut slots = header_slots();
        assert!(matches!(
            r.read(b"", &mut slots, &cfg()).unwrap().1,
            ClientEvent::End
        ));
        assert!(r.keep_alive());
    }

    #[test]
    fn request_writer() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/up?x=1",
            [
                ("Host", &b"a"[..]),
                ("Content-Length", b"9"),
                ("X-A", b"b c"),
            ],
            BodyLength::Chunked,
        )
        .unwrap();
        write_chunk(&mut out, b"hello world, this is more than 16 bytes");
        write_chunk(&mut out, b"");
        write_last_chunk(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /up?x=1 HTTP/1.1\r\nHost: a\r\nX-A: b c\r\nTransfer-Encoding: chunked\r\n\r\n27\r\nhello world, this is more than 16 bytes\r\n0\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "PUT",
            "/",
            [("Host", &b"a"[..])],
            BodyLength::Length(0),
        )
        .unwrap();
        assert_eq!(
            out,
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        );
        for (m, t, n, v) in [
            ("GE T", "/", "X", &b"v"[..]),
            ("GET", "/a b", "X", b"v"),
            ("GET", "/", "X:", b"v"),
            ("GET", "/", "X", b"a\r\nInjected: 1"),
        ] {
            let mut out = Vec::new();
            assert!(write_request_head(&mut out, m, t, [(n, v)], BodyLength::None).is_err());
            assert!(out.is_empty());
        }
    }

    #[test]
    fn written_requests_parse_back() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/p",
            [("Host", &b"h"[..])],
            BodyLength::Chunked,
        )
        .unwrap();
        write_chunk(&mut out, &[7u8; 300]);
        write_last_chunk(&mut out);
        let mut slots = header_slots();
        let (len, req) = super::super::parse::parse_request(&out, &mut slots, &cfg())
            .unwrap()
            .unwrap();
        assert!(req.is_chunked());
        let mut dec = ChunkedDecoder::new();
        let mut rest = &out[len..];
        let mut body = Vec::new();
        loop {
            let (n, d) = dec.decode(rest).unwrap();
            rest = &rest[n..];
            match d {
                Decoded::Data(d) => body.extend_from_slice(d),
                Decoded::Done => break,
                Decoded::NeedMore => panic!("short"),
            }
        }
        assert_eq!(body, vec![7u8; 300]);
        assert!(rest.is_empty());
    }
}
