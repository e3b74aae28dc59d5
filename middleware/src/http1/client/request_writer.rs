//! Writing a request: its head ([`write_request_head`] in one call, [`RequestHeadWriter`]
//! piece by piece, with names checked when the program is built as [`FieldName`]s) and
//! the pieces of a chunked body ([`write_chunk`], [`write_last_chunk`]).

use std::fmt;

use super::super::parse::{eq, BodyLength};
use super::super::response::{valid_name, valid_value};
use super::super::Request;

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
    /// request's are checked as [`field`](RequestHeadWriter::field) checks them, and its
    /// `cookie` fields, which HTTP/2 may split, are joined into one with "; " (RFC 9113
    /// §8.2.3), after the other fields.
    pub fn request_fields(
        &mut self,
        req: &Request<'_>,
        mut keep: impl FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), InvalidRequest> {
        let checked = !req.is_h2();
        let mut cookies = false;
        for (name, value) in req.headers() {
            if !keep(name, value) {
                continue;
            }
            if checked {
                self.checked_field(name, value);
            } else if name == "cookie" {
                // HTTP/2 may split `Cookie` into several fields; HTTP/1.1 gets one,
                // joined with "; " (RFC 9113 §8.2.3), written after the rest.
                cookies = true;
            } else {
                self.field(name, value)?;
            }
        }
        if cookies {
            self.out.extend_from_slice(b"cookie: ");
            let mut first = true;
            for (name, value) in req.headers() {
                if name != "cookie" || !keep(name, value) {
                    continue;
                }
                if !valid_value(value) {
                    return Err(self.fail("header value"));
                }
                if !first {
                    self.out.extend_from_slice(b"; ");
                }
                first = false;
                self.out.extend_from_slice(value);
            }
            self.out.extend_from_slice(b"\r\n");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{header_slots, parse_request, ChunkedDecoder, Config, Decoded};
    use httparse::Header;

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

    #[test]
    fn an_h2_requests_cookies_are_joined_into_one_field() {
        let fields = [
            Header {
                name: "cookie",
                value: b"a=1",
            },
            Header {
                name: "x",
                value: b"y",
            },
            Header {
                name: "cookie",
                value: b"b=2",
            },
            Header {
                name: "cookie",
                value: b"drop=3",
            },
        ];
        let req = crate::http1::Request::from_h2("GET", "/", &fields, BodyLength::None);
        let mut out = Vec::new();
        let mut w = RequestHeadWriter::new(&mut out, "GET", "/").unwrap();
        w.request_fields(&req, |_, v| v != b"drop=3").unwrap();
        w.finish(BodyLength::None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nx: y\r\ncookie: a=1; b=2\r\n\r\n"
        );
        let bad = [Header {
            name: "cookie",
            value: b"a\r\nb",
        }];
        let req = crate::http1::Request::from_h2("GET", "/", &bad, BodyLength::None);
        let mut out = b"kept".to_vec();
        let mut w = RequestHeadWriter::new(&mut out, "GET", "/").unwrap();
        assert!(w.request_fields(&req, |_, _| true).is_err());
        assert_eq!(out, b"kept");
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
        let (len, req) = parse_request(&out, &mut slots, &cfg()).unwrap().unwrap();
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
