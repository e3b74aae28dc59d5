//! Sans-IO request head parsing (RFC 9112 §2–§6) on httparse, with the framing and
//! smuggling checks a server needs before it trusts a request's body length.
//!
//! [`parse_request`] takes the bytes received so far and returns `Ok(None)` until a whole
//! head is there, then the head's length and a [`Request`] whose method, target and headers
//! borrow the input (nothing is copied). Every rejection is a [`ParseError`] that names the
//! status to answer with; after any of them the connection's framing is lost and it must be
//! closed.

use std::fmt;
use std::mem::MaybeUninit;

use httparse::Header;

use super::Config;

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

/// A parsed request: the head (borrowed from the input) and, once it is known, the body.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    method: &'a str,
    target: &'a str,
    /// Where an absolute-form target's authority lies in `target` (`0..0` for the other
    /// forms); its path and query follow it.
    authority: (u32, u32),
    minor: u8,
    headers: Fields<'a>,
    body: &'a [u8],
    length: BodyLength,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
    streaming: bool,
    /// Came on an HTTP/2 stream.
    h2: bool,
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

/// A table of the bytes matching a pattern.
macro_rules! byte_set {
    ($($p:tt)+) => {{
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = matches!(b as u8, $($p)+);
            b += 1;
        }
        t
    }};
}

/// Which bytes are `tchar`s (RFC 9110 §5.6.2).
static TCHAR: [bool; 256] = byte_set!(
    b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
);

/// The bytes the strict parser takes in a request target: visible ASCII.
static TARGET: [bool; 256] = byte_set!(b'!'..=b'~');

/// Field value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
static VALUE: [bool; 256] = byte_set!(b'\t' | b' '..=b'~' | 0x80..=0xff);

/// Bytes a `Host` value must not hold (whitespace, path and user-information delimiters).
static NOT_IN_HOST: [bool; 256] = byte_set!(b' ' | b'\t' | b'/' | b'?' | b'#' | b'@' | b'\\');

/// The common case in one pass: a complete head within the limits, every line ending in
/// CRLF, `method SP target SP HTTP/1.x`, a visible-ASCII target, `name:OWS value OWS`
/// fields, and no framing or connection fault. It accepts a subset of what
/// [`parse_request_general`] accepts and answers the same for it; anything else
/// (incomplete, an error, a rarer form such as leading empty lines or non-ASCII in the
/// target) is `None`, and the general parser then gives the verdict.
#[inline(always)]
fn parse_strict<'a>(buf: &'a [u8], cfg: &Config, slots: usize) -> Option<(usize, Request<'a>)> {
    let w = &buf[..buf.len().min(cfg.max_head.max(16))];
    let max_fields = cfg.max_headers.clamp(1, slots);
    let mut i = token_end(w, 0);
    if i == 0 || *w.get(i)? != b' ' {
        return None;
    }
    let m = i;
    let t = i + 1;
    i = target_end(w, t);
    if i == t || *w.get(i)? != b' ' || i - t > cfg.max_target {
        return None;
    }
    // ASCII: one check for both.
    let line = crate::text::ascii(&w[..i])?;
    let (method, target) = (line.get(..m)?, line.get(t..)?);
    let version = word(w, i + 1)?;
    let minor = if version == u64::from_le_bytes(*b"HTTP/1.1") {
        1
    } else if version == u64::from_le_bytes(*b"HTTP/1.0") {
        0
    } else {
        return None;
    };
    if w.get(i + 9..i + 11)? != b"\r\n" {
        return None;
    }
    i += 11;
    let start = i;
    let mut scan = FieldScan::new(minor);
    let mut count = 0u32;
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
        i += 2;
        count += 1;
        if count as usize > max_fields {
            return None;
        }
        scan.field(name, value).ok()?;
    }
    // Text (one check for the whole section; a value with bytes that are not UTF-8 goes
    // the general way), so that names are handed out with no check of their own.
    let block = crate::text::utf8(&w[start..i])?;
    let len = i + 2;
    let facts = scan.finish().ok()?;
    // Origin-form, the common case, needs no more checks (`target_form`'s first test).
    let authority = if target.as_bytes()[0] == b'/' && method != "CONNECT" {
        (0, 0)
    } else {
        check_target(method, target, &facts).ok()?
    };
    Some((
        len,
        Request {
            method,
            target,
            authority,
            minor,
            headers: Fields::Raw { block, count },
            body: &[],
            length: facts.length,
            keep_alive: facts.keep_alive,
            expect_continue: facts.expect_continue,
            upgrade: facts.upgrade,
            streaming: false,
            h2: false,
        },
    ))
}

/// Where the run of `tchar`s from `i` ends.
#[inline(always)]
pub(crate) fn token_end(w: &[u8], mut i: usize) -> usize {
    while i < w.len() && TCHAR[w[i] as usize] {
        i += 1;
    }
    i
}

/// Whether the token `name` is `lower` (lower case letters and `-`) in any case: a
/// token's byte with bit 5 set is one of `lower`'s only if it is that letter in either
/// case (or `-` itself; CR would map to `-`, but it is no `tchar`).
#[inline(always)]
pub(crate) fn token_is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(true, |same, (&a, &b)| same & (a | 0x20 == b))
}

/// Whether `v` holds a byte a `Host` value must not (see [`NOT_IN_HOST`]): eight bytes
/// at a time, the last word overlapping the one before.
#[inline]
fn bad_host(v: &[u8]) -> bool {
    if v.len() < 8 {
        return v
            .iter()
            .fold(false, |bad, &b| bad | NOT_IN_HOST[b as usize]);
    }
    let has = |x: u64, c: u8| {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y
    };
    let word_bad = |x: u64| {
        (has(x, b' ')
            | has(x, b'\t')
            | has(x, b'/')
            | has(x, b'?')
            | has(x, b'#')
            | has(x, b'@')
            | has(x, b'\\'))
            & HI
            != 0
    };
    let mut i = 0;
    while i + 8 < v.len() {
        if word(v, i).is_some_and(word_bad) {
            return true;
        }
        i += 8;
    }
    word(v, v.len() - 8).is_some_and(word_bad)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `w[i..]`, if there are eight.
#[inline]
pub(crate) fn word(w: &[u8], i: usize) -> Option<u64> {
    let a: [u8; 8] = w.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(a))
}

/// Where the run of visible ASCII bytes (`!`..=`~`) from `i` ends: eight bytes at a time,
/// the first byte below `!` or above `~` found by its high bit in the word (borrows and
/// carries only run upwards from a flagged byte, so the lowest flag is exact).
#[inline]
fn target_end(w: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(w, i) {
        let flags = ((x.wrapping_sub(LO * 0x21) & !x) | x.wrapping_add(LO) | x) & HI;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < w.len() && TARGET[w[i] as usize] {
        i += 1;
    }
    i
}

/// Where the run of field value bytes from `i` ends (at the CR of the line, in a valid
/// head): eight bytes at a time, a control byte or DEL flagged as in [`target_end`]; an
/// HTAB is stepped over.
#[inline]
pub(crate) fn value_end(w: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(w, i) {
        let del = x ^ (LO * 0x7f);
        let flags = ((x.wrapping_sub(LO * 0x20) & !x) | (del.wrapping_sub(LO) & !del)) & HI;
        if flags == 0 {
            i += 8;
            continue;
        }
        i += (flags.trailing_zeros() / 8) as usize;
        if w[i] != b'\t' {
            return i;
        }
        i += 1;
    }
    while i < w.len() && VALUE[w[i] as usize] {
        i += 1;
    }
    i
}

/// The request target's form, checked against the method and the `Host` field; the
/// authority's place in an absolute-form target.
#[inline]
fn check_target(method: &str, target: &str, facts: &Facts<'_>) -> Result<(u32, u32), ParseError> {
    match target_form(method, target)? {
        TargetForm::Absolute {
            authority: (from, to),
        } => {
            // The target's authority is the request's host; a `Host` field naming another
            // would let whatever reads the request next choose the other (RFC 9112 §3.2.2).
            if let Some(host) = facts.host {
                if !host.eq_ignore_ascii_case(&target.as_bytes()[from..to]) {
                    return Err(ParseError::BadRequest(
                        "Host differs from the target's authority",
                    ));
                }
            }
            // Within `max_target`, so the offsets fit.
            Ok((from as u32, to as u32))
        }
        _ => Ok((0, 0)),
    }
}

/// [`parse_request`] for every input: httparse, then the checks httparse does not make.
/// The reference the strict parser is checked against (fuzzing).
pub(crate) fn parse_request_general<'a>(
    buf: &'a [u8],
    slots: &'a mut [MaybeUninit<Header<'a>>],
    cfg: &Config,
) -> Result<Option<(usize, Request<'a>)>, ParseError> {
    let max_head = cfg.max_head.max(16);
    let window = &buf[..buf.len().min(max_head)];
    let n_slots = cfg.max_headers.clamp(1, slots.len());
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
        Request {
            method,
            target,
            authority,
            minor,
            headers: Fields::Parsed(headers),
            body: &[],
            length: facts.length,
            keep_alive: facts.keep_alive,
            expect_continue: facts.expect_continue,
            upgrade: facts.upgrade,
            streaming: false,
            h2: false,
        },
    )))
}

/// The four forms of a request target (RFC 9112 §3.2).
enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query`: where the authority lies in the target.
    Absolute { authority: (usize, usize) },
    /// `host:port`, for `CONNECT`.
    Authority,
    /// `*`, for `OPTIONS`.
    Asterisk,
}

/// Which form `target` has; each form only with the methods it belongs to, and nothing
/// that is none of them (`GET admin` would reach an upstream that reads it as `/admin`
/// past a policy that checked for `/admin`). Absolute-form: `http` or `https`, an
/// authority without user information.
fn target_form(method: &str, target: &str) -> Result<TargetForm, ParseError> {
    let t = target.as_bytes();
    // The common case first: origin-form, and not CONNECT.
    if t.first() == Some(&b'/') && method != "CONNECT" {
        return Ok(TargetForm::Origin);
    }
    if method == "CONNECT" {
        // authority-form: host ":" port, nothing else.
        let ok = match target.rfind(':') {
            Some(i) => {
                i > 0
                    && i + 1 < t.len()
                    && t[i + 1..].iter().all(u8::is_ascii_digit)
                    && !t.iter().any(|&b| matches!(b, b'/' | b'?' | b'#' | b'@'))
            }
            None => false,
        };
        return if ok {
            Ok(TargetForm::Authority)
        } else {
            Err(ParseError::BadRequest(
                "CONNECT needs an authority-form target",
            ))
        };
    }
    match t.first() {
        Some(b'/') => return Ok(TargetForm::Origin),
        Some(b'*') if t.len() == 1 => {
            return if method == "OPTIONS" {
                Ok(TargetForm::Asterisk)
            } else {
                Err(ParseError::BadRequest(
                    "asterisk-form target other than OPTIONS",
                ))
            };
        }
        _ => {}
    }
    let rest = if t.len() > 7 && t[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else if t.len() > 8 && t[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return Err(ParseError::BadRequest("invalid request target"));
    };
    let end = t[rest..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(t.len(), |i| rest + i);
    let authority = &t[rest..end];
    if authority.is_empty() || authority.contains(&b'@') || t.get(end) == Some(&b'#') {
        return Err(ParseError::BadRequest("invalid absolute-form target"));
    }
    Ok(TargetForm::Absolute {
        authority: (rest, end),
    })
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

/// What the header fields say about framing and the connection.
struct Facts<'a> {
    /// The `Host` field's value, if any (there is at most one).
    host: Option<&'a [u8]>,
    length: BodyLength,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
}

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Elements of a comma-separated list, trimmed, empty ones skipped (RFC 9110 §5.6.1).
pub(crate) fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

pub(crate) fn eq(name: &str, lower: &str) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

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

/// The header fields of a request read one by one: the framing, `Host`, `Expect` and
/// connection facts, and the faults among them.
struct FieldScan<'a> {
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
    fn new(minor: u8) -> FieldScan<'a> {
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
    #[inline]
    fn field(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), ParseError> {
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
    #[inline]
    fn finish(self) -> Result<Facts<'a>, ParseError> {
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

/// `1*DIGIT` as a u64 (no sign, no spaces, no overflow).
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::default()
    }

    /// `ok! { name: input => |req, len| { assertions } }`: the head parses.
    macro_rules! ok {
        ($($name:ident: $input:expr => |$req:ident, $len:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_request(input, &mut slots, &c) {
                    Ok(Some(($len, $req))) => $body,
                    other => panic!("expected a request, got {:?}", other.map(|o| o.map(|(l, _)| l))),
                }
            }
        )*};
    }

    /// `err! { name: input => status; }`: the head is rejected with `status`.
    macro_rules! err {
        ($($name:ident: $input:expr => $status:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_request(input, &mut slots, &c) {
                    Err(e) => assert_eq!(e.status(), $status, "{e}"),
                    Ok(o) => panic!("expected {}, got {:?}", $status, o.map(|(l, _)| l)),
                }
            }
        )*};
    }

    /// `partial! { name: input; }`: the head is not complete yet, and not wrong so far.
    macro_rules! partial {
        ($($name:ident: $input:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut slots = header_slots();
                let c = cfg();
                match parse_request(input, &mut slots, &c) {
                    Ok(None) => {}
                    Ok(Some((l, _))) => panic!("expected partial, got a head of {l}"),
                    Err(e) => panic!("expected partial, got {e}"),
                }
            }
        )*};
    }

    ok! {
        simple_get: b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
            assert_eq!(len, 27);
            assert_eq!(r.method(), "GET");
            assert_eq!(r.target(), "/");
            assert_eq!(r.version_minor(), 1);
            assert!(r.keep_alive());
            assert_eq!(r.body_length(), BodyLength::None);
            assert_eq!(r.header("HOST"), Some(&b"a"[..]));
        }
        path_and_query: b"GET /a/b?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
            assert_eq!(r.path(), "/a/b");
            assert_eq!(r.query(), Some("x=1&y"));
        }
        body_follows: b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" => |r, len| {
            assert_eq!(len, 48);
            assert_eq!(r.content_length(), Some(3));
            assert!(r.has_body());
        }
        http10_closes: b"GET / HTTP/1.0\r\n\r\n" => |r, _len| {
            assert_eq!(r.version_minor(), 0);
            assert!(!r.keep_alive());
        }
        http10_keep_alive: b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n" => |r, _len| {
            assert!(r.keep_alive());
        }
        http11_close: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n" => |r, _len| {
            assert!(!r.keep_alive());
        }
        chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" => |r, _len| {
            assert!(r.is_chunked());
        }
        chunked_case_and_ows: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ,CHUNKED \r\n\r\n" => |r, _len| {
            assert!(r.is_chunked());
        }
        same_content_lengths: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n" => |r, _len| {
            assert_eq!(r.content_length(), Some(5));
        }
        leading_zeros: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n" => |r, _len| {
            assert_eq!(r.content_length(), Some(7));
        }
        expect_continue: b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n" => |r, _len| {
            assert!(r.expects_continue());
        }
        expect_ignored_in_10: b"PUT / HTTP/1.0\r\nExpect: fancy\r\n\r\n" => |r, _len| {
            assert!(!r.expects_continue());
        }
        upgrade: b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" => |r, _len| {
            assert!(r.wants_upgrade());
        }
        leading_empty_line: b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
            assert_eq!(len, 29);
            assert_eq!(r.method(), "GET");
        }
        empty_host_value: b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n" => |r, _len| {
            assert_eq!(r.target(), "*");
        }
        pipelined_first_only: b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
            assert_eq!(r.target(), "/1");
            assert_eq!(len, 28);
        }
        absolute_form: b"GET http://Example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n" => |r, _len| {
            assert_eq!(r.target(), "http://Example.com:8080/a/b?x=1");
            assert_eq!(r.authority(), Some("Example.com:8080"));
            assert_eq!(r.origin(), "/a/b?x=1");
            assert_eq!(r.path(), "/a/b");
            assert_eq!(r.query(), Some("x=1"));
        }
        absolute_form_no_path: b"GET https://a?q HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
            assert_eq!(r.origin(), "?q");
            assert_eq!(r.path(), "/");
            assert_eq!(r.query(), Some("q"));
        }
        absolute_form_http10_without_host: b"GET http://a/x HTTP/1.0\r\n\r\n" => |r, _len| {
            assert_eq!(r.authority(), Some("a"));
            assert_eq!(r.path(), "/x");
        }
        origin_form_has_no_authority: b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
            assert_eq!(r.authority(), None);
            assert_eq!(r.origin(), "/x");
        }
        connect_authority_form: b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" => |r, _len| {
            assert_eq!(r.target(), "a:443");
            assert_eq!(r.authority(), None);
        }
    }

    err! {
        bare_lf_request_line: b"GET / HTTP/1.1\nHost: a\r\n\r\n" => 400;
        bare_lf_header: b"GET / HTTP/1.1\r\nHost: a\n\r\n" => 400;
        bare_lf_end: b"GET / HTTP/1.1\r\nHost: a\r\n\n" => 400;
        bare_lf_leading: b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        bare_lf_partial: b"GET / HTTP/1.1\nHo" => 400;
        bare_cr: b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n" => 400;
        obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n" => 400;
        obs_fold_first: b"GET / HTTP/1.1\r\n Host: a\r\n\r\n" => 400;
        space_before_colon: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n" => 400;
        no_host: b"GET / HTTP/1.1\r\n\r\n" => 400;
        two_hosts: b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => 400;
        bad_host: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n" => 400;
        cl_and_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
        te_and_cl: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" => 400;
        differing_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n" => 400;
        differing_cl_list: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n" => 400;
        negative_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n" => 400;
        plus_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n" => 400;
        hex_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n" => 400;
        empty_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n" => 400;
        space_in_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n" => 400;
        overflow_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n" => 400;
        te_not_final_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => 400;
        te_unknown_alone: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n" => 400;
        te_double_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
        te_gzip_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => 501;
        te_split_fields: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" => 501;
        te_in_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
        te_garbage: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n" => 400;
        te_empty: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n" => 400;
        te_chunked_params: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n" => 400;
        version_2: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => 505;
        version_12: b"GET / HTTP/1.2\r\nHost: a\r\n\r\n" => 505;
        version_09: b"GET / HTTP/0.9\r\n\r\n" => 505;
        version_garbage: b"GET / HTTX/1.1\r\nHost: a\r\n\r\n" => 400;
        no_version: b"GET /\r\n\r\n" => 400;
        expect_other: b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\n\r\n" => 417;
        nul_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n" => 400;
        space_in_target: b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        double_space: b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        junk: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" => 400;
        empty_method: b" / HTTP/1.1\r\n" => 400;
        absolute_form_other_host: b"GET http://evil/admin HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        absolute_form_userinfo: b"GET http://a@evil/ HTTP/1.1\r\nHost: evil\r\n\r\n" => 400;
        absolute_form_empty_authority: b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        absolute_form_other_scheme: b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        absolute_form_fragment: b"GET http://a#x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        target_without_slash: b"GET admin HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        asterisk_other_method: b"GET * HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        connect_origin_form: b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        connect_no_port: b"CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
        authority_form_not_connect: b"GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    }

    partial! {
        nothing: b"";
        half_method: b"GE";
        request_line_only: b"GET / HTTP/1.1\r\n";
        ends_in_cr: b"GET / HTTP/1.1\r\nHost: a\r\n\r";
        one_empty_line: b"\r\n";
    }

    #[test]
    fn too_many_headers() {
        let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..64 {
            req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let mut slots = header_slots();
        let e = parse_request(&req, &mut slots, &cfg())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status(), 431);
    }

    #[test]
    fn head_too_large() {
        let mut req = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        req.resize(cfg().max_head + 10, b'a');
        let mut slots = header_slots();
        let e = parse_request(&req, &mut slots, &cfg())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status(), 431);
    }

    #[test]
    fn uri_too_long_complete() {
        let long = "a".repeat(cfg().max_target + 1);
        let req = format!("GET /{long} HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut slots = header_slots();
        let e = parse_request(req.as_bytes(), &mut slots, &cfg())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status(), 414);
    }

    #[test]
    fn uri_too_long_never_ends() {
        let mut req = b"GET /".to_vec();
        req.resize(cfg().max_head, b'a');
        let mut slots = header_slots();
        let e = parse_request(&req, &mut slots, &cfg())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.status(), 414);
    }

    #[test]
    fn every_prefix_of_a_valid_head_is_partial() {
        let req = b"POST /x?y HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        for cut in 0..req.len() {
            let mut slots = header_slots();
            assert!(
                matches!(parse_request(&req[..cut], &mut slots, &cfg()), Ok(None)),
                "prefix of {cut} bytes"
            );
        }
        let mut slots = header_slots();
        let (len, r) = parse_request(req, &mut slots, &cfg()).unwrap().unwrap();
        assert_eq!(len, req.len());
        assert!(r.expects_continue());
    }

    /// The strict one-pass parser and the general one agree on heads with every kind of
    /// byte at every place of a target and of a field value (the strict parser reads both
    /// eight bytes at a time), whole or cut short.
    #[test]
    fn strict_and_general_parsers_agree() {
        let specials: &[u8] = b"\t \x00\x01\x1f\x7f\x80\xff\r\n!~:/?#@\\aZ0";
        let mut heads: Vec<Vec<u8>> = Vec::new();
        for len in 0..20 {
            for at in 0..len {
                for &b in specials {
                    let mut value = vec![b'v'; len];
                    value[at] = b;
                    let mut h = b"GET / HTTP/1.1\r\nHost: a\r\nX-V: ".to_vec();
                    h.extend_from_slice(&value);
                    h.extend_from_slice(b"\r\n\r\n");
                    heads.push(h);
                    let mut target = vec![b'/'; len + 1];
                    target[at + 1] = b;
                    let mut h = b"GET ".to_vec();
                    h.extend_from_slice(&target);
                    h.extend_from_slice(b" HTTP/1.0\r\nhost:  ");
                    h.extend_from_slice(&value);
                    h.extend_from_slice(b" \t\r\n\r\n");
                    heads.push(h);
                }
            }
        }
        for h in [
            &b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET http://a/b HTTP/1.1\r\nHost: b\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n fold\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            heads.push(h.to_vec());
        }
        let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for _ in 0..70 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        heads.push(many);
        let small = Config {
            max_head: 40,
            max_headers: 2,
            max_target: 8,
            ..Config::default()
        };
        for h in &heads {
            for c in [cfg(), small.clone()] {
                for cut in [h.len(), h.len() - 1, h.len() / 2] {
                    let input = &h[..cut];
                    let mut a = header_slots();
                    let mut b = header_slots();
                    let strict = parse_request(input, &mut a, &c);
                    let general = parse_request_general(input, &mut b, &c);
                    let what = String::from_utf8_lossy(input);
                    match (strict, general) {
                        (Ok(Some((n, r))), Ok(Some((m, g)))) => {
                            assert_eq!(n, m, "{what:?}");
                            assert_eq!(
                                (r.method(), r.target(), r.version_minor(), r.body_length()),
                                (g.method(), g.target(), g.version_minor(), g.body_length()),
                                "{what:?}"
                            );
                            assert_eq!(
                                (r.keep_alive(), r.expects_continue(), r.wants_upgrade()),
                                (g.keep_alive(), g.expects_continue(), g.wants_upgrade()),
                                "{what:?}"
                            );
                            assert_eq!(r.authority(), g.authority(), "{what:?}");
                            assert_eq!(r.header_count(), g.header_count(), "{what:?}");
                            assert!(r.headers().eq(g.headers()), "{what:?}");
                            for (name, _) in g.headers() {
                                assert_eq!(r.header(name), g.header(name), "{what:?}");
                            }
                        }
                        (Ok(None), Ok(None)) => {}
                        (Err(x), Err(y)) => assert_eq!(x, y, "{what:?}"),
                        (x, y) => panic!(
                            "{what:?}: strict {:?}, general {:?}",
                            x.map(|o| o.map(|(n, _)| n)),
                            y.map(|o| o.map(|(n, _)| n))
                        ),
                    }
                }
            }
        }
    }

    /// The word-at-a-time `Host` check and the case-folding name match against their
    /// byte-by-byte definitions.
    #[test]
    fn host_check_and_name_match() {
        for len in 0..24 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'h'; len];
                    v[at] = b;
                    assert_eq!(
                        super::bad_host(&v),
                        v.iter().any(|&c| NOT_IN_HOST[c as usize]),
                        "{v:?}"
                    );
                }
            }
        }
        for name in ["host", "expect", "upgrade", "connection"] {
            for b in 0..=255u8 {
                for at in 0..name.len() {
                    let mut n = name.as_bytes().to_vec();
                    n[at] = b;
                    if !n.iter().all(|&c| TCHAR[c as usize]) {
                        continue;
                    }
                    assert_eq!(
                        token_is(&n, name.as_bytes()),
                        n.eq_ignore_ascii_case(name.as_bytes()),
                        "{n:?}"
                    );
                }
            }
        }
    }
}
