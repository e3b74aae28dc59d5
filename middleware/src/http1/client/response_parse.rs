//! Reading a response head: [`parse_response`] takes the common form in one strict pass
//! ([`parse_strict`]) and leaves every other head, and every verdict on a bad one, to
//! httparse and the checks after it ([`parse_general`]).

use std::mem::MaybeUninit;

use httparse::Header;

use super::super::parse::{check_line_ends, token_end, trim_ows, value_end, word};
use super::super::Config;
use super::response_error::ResponseError;
use super::response_framing::ResponseFraming;
use super::response_head::{HeadFields, ResponseHead, SPANS};

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
    let n_slots = cfg.max_headers.max(1).min(slots.len());
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
pub(crate) fn parse_strict<'a>(
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
pub(crate) fn parse_general<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{header_slots, ResponseBody};

    fn cfg() -> Config {
        Config::default()
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
                        let n_slots = c.max_headers.max(1).min(slots.len());
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
}
