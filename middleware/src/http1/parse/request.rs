//! A parsed request ([`Request`]): its head, borrowed from the input, how its body is
//! delimited ([`BodyLength`]), and its header fields as either parser left them
//! ([`Fields`]).

use httparse::Header;

use super::bytes::{trim_ows, value_end};

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (neither `Content-Length` nor `Transfer-Encoding`).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request: the head (borrowed from the input) and, once it is known, the body.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    /// Where an absolute-form target's authority lies in `target` (`0..0` for the other
    /// forms); its path and query follow it.
    pub(super) authority: (u32, u32),
    pub(super) minor: u8,
    pub(super) headers: Fields<'a>,
    pub(super) body: &'a [u8],
    pub(super) length: BodyLength,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
    pub(super) upgrade: bool,
    pub(super) streaming: bool,
    /// Came on an HTTP/2 stream.
    pub(super) h2: bool,
}

impl<'a> Request<'a> {
    /// The method (`GET`, `POST`, ...), case-sensitive as sent.
    #[inline]
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// Whether the method is `HEAD` (the response then carries no body bytes).
    #[inline]
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The request target as sent (origin-form `/path?query`, absolute-form
    /// `http://host/path?query`, `*` for `OPTIONS`, or authority-form `host:port` for
    /// `CONNECT`).
    #[inline]
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The path and query of the target: the target itself in origin-form; for an
    /// absolute-form target what follows its authority, which can be empty or start with
    /// `?` (`http://host?q`: a forwarded request then needs a `/` before it).
    #[inline]
    pub fn origin(&self) -> &'a str {
        &self.target[self.authority.1 as usize..]
    }

    /// The authority (`host[:port]`) of an absolute-form target. The parser has checked
    /// that it equals the `Host` field, when there is one (RFC 9112 §3.2.2).
    pub fn authority(&self) -> Option<&'a str> {
        let (from, to) = self.authority;
        (to > from).then(|| &self.target[from as usize..to as usize])
    }

    /// The path: the target up to `?` (of an absolute-form target, its path, `/` when it
    /// has none).
    pub fn path(&self) -> &'a str {
        let o = self.origin();
        // A plain scan: targets are short, and `split_once`'s search costs more to set up.
        let p = match o.bytes().position(|b| b == b'?') {
            Some(i) => &o[..i],
            None => o,
        };
        if self.authority.1 > 0 && p.is_empty() {
            "/"
        } else {
            p
        }
    }

    /// The target after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        let o = self.origin();
        let i = o.bytes().position(|b| b == b'?')?;
        Some(&o[i + 1..])
    }

    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    #[inline]
    pub fn version_minor(&self) -> u8 {
        self.minor
    }

    /// All header fields in order, as (name, value) with the value's surrounding
    /// whitespace removed.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.headers.iter()
    }

    /// Number of header field lines.
    pub fn header_count(&self) -> usize {
        self.headers.count()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.get(name)
    }

    /// The body: all of it when it was collected (the default body mode); empty when it
    /// is streamed to the application in pieces ([`is_streaming`](Request::is_streaming)).
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// How the body is delimited.
    #[inline]
    pub fn body_length(&self) -> BodyLength {
        self.length
    }

    /// `Content-Length`, if the body has one.
    pub fn content_length(&self) -> Option<u64> {
        match self.length {
            BodyLength::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the body is chunked.
    pub fn is_chunked(&self) -> bool {
        self.length == BodyLength::Chunked
    }

    /// Whether the client allows the connection to stay open after this request
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    #[inline]
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether the client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// Whether the client asks for a protocol upgrade (`Connection: upgrade` and an
    /// `Upgrade` header; see [`header`](Request::header)`("upgrade")` for the protocols).
    pub fn wants_upgrade(&self) -> bool {
        self.upgrade
    }

    /// Whether the body is delivered in pieces after this call rather than in
    /// [`body`](Request::body).
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Whether a body follows the head (a non-zero `Content-Length`, or chunked).
    pub fn has_body(&self) -> bool {
        !matches!(self.length, BodyLength::None | BodyLength::Length(0))
    }

    /// Whether the request came on an HTTP/2 stream (its head was the stream's HEADERS:
    /// `method`, `target` and a `host` field from the pseudo-header fields, names in
    /// lower case; a body without `Content-Length` reads as chunked, delimited by the
    /// stream's end).
    pub fn is_h2(&self) -> bool {
        self.h2
    }

    /// A request that came on an HTTP/2 stream: `method` and `target` (`:method`,
    /// `:path`), `headers` (with `host` from `:authority` first), `length` as the stream
    /// delimits the body.
    #[cfg_attr(not(feature = "h2"), allow(dead_code))]
    pub(crate) fn from_h2(
        method: &'a str,
        target: &'a str,
        headers: &'a [Header<'a>],
        length: BodyLength,
    ) -> Request<'a> {
        Request {
            method,
            target,
            authority: (0, 0),
            minor: 1,
            headers: Fields::Parsed(headers),
            body: &[],
            length,
            keep_alive: true,
            expect_continue: false,
            upgrade: false,
            streaming: false,
            h2: true,
        }
    }

    pub(crate) fn with_body(mut self, body: &'a [u8]) -> Request<'a> {
        self.body = body;
        self
    }

    pub(crate) fn streaming(mut self) -> Request<'a> {
        self.streaming = true;
        self
    }
}

/// A request's header fields: parsed into slots (by httparse, or an HTTP/2 stream's), or
/// the header section as the strict parser validated it, read again on demand.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fields<'a> {
    Parsed(&'a [Header<'a>]),
    /// Whole `name:OWS value OWS CRLF` lines, each name a token and each value of field
    /// bytes (no CR or LF inside), `count` of them.
    /// The block is text (the strict parsers take no other): a name is handed out as a
    /// slice of it, with no check per field.
    Raw {
        block: &'a str,
        count: u32,
    },
}

impl<'a> Fields<'a> {
    /// The fields in order.
    #[inline]
    pub(crate) fn iter(self) -> FieldIter<'a> {
        FieldIter(match self {
            Fields::Parsed(h) => FieldsLeft::Parsed(h.iter()),
            Fields::Raw { block, .. } => FieldsLeft::Raw(block),
        })
    }

    /// How many field lines.
    #[inline]
    pub(crate) fn count(self) -> usize {
        match self {
            Fields::Parsed(h) => h.len(),
            Fields::Raw { count, .. } => count as usize,
        }
    }

    /// The first value of field `name` (case-insensitive).
    pub(crate) fn get(self, name: &str) -> Option<&'a [u8]> {
        match self {
            Fields::Parsed(h) => h
                .iter()
                .find(|h| h.name.len() == name.len() && h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value),
            Fields::Raw { mut block, .. } => {
                while let Some((n, v, rest)) = raw_field(block) {
                    if n.len() == name.len() && n.eq_ignore_ascii_case(name) {
                        return Some(v);
                    }
                    block = rest;
                }
                None
            }
        }
    }
}

/// The first field line of a validated header section: (name, trimmed value, the rest).
/// The value ends at the line's CR, the first control byte other than HTAB in a valid
/// line, found eight bytes at a time.
#[inline]
fn raw_field(block: &str) -> Option<(&str, &[u8], &str)> {
    let b = block.as_bytes();
    let colon = b.iter().position(|&c| c == b':')?;
    let cr = value_end(b, colon + 1);
    let value = trim_ows(b.get(colon + 1..cr)?);
    Some((
        block.get(..colon)?,
        value,
        block.get(cr + 2..).unwrap_or_default(),
    ))
}

enum FieldsLeft<'a> {
    Parsed(std::slice::Iter<'a, Header<'a>>),
    Raw(&'a str),
}

/// The iterator of [`Request::headers`] (and a response head's).
pub(crate) struct FieldIter<'a>(FieldsLeft<'a>);

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        match &mut self.0 {
            FieldsLeft::Parsed(it) => it.next().map(|h| (h.name, h.value)),
            FieldsLeft::Raw(block) => {
                let (name, value, rest) = raw_field(block)?;
                *block = rest;
                Some((name, value))
            }
        }
    }
}
