//! The strict request head parser: the common form of a head in one pass, a subset of
//! what the general parser takes, answered the same.

use super::super::Config;
use super::bytes::{target_end, token_end, trim_ows, value_end, word};
use super::field_scan::FieldScan;
use super::request::{Fields, Request};
use super::target::check_target;

/// The common case in one pass: a complete head within the limits, every line ending in
/// CRLF, `method SP target SP HTTP/1.x`, a visible-ASCII target, `name:OWS value OWS`
/// fields, and no framing or connection fault. It accepts a subset of what
/// [`parse_request_general`] accepts and answers the same for it; anything else
/// (incomplete, an error, a rarer form such as leading empty lines or non-ASCII in the
/// target) is `None`, and the general parser then gives the verdict.
///
/// [`parse_request_general`]: super::parse_request_general
#[inline(always)]
pub(super) fn parse_strict<'a>(
    buf: &'a [u8],
    cfg: &Config,
    slots: usize,
) -> Option<(usize, Request<'a>)> {
    let w = &buf[..buf.len().min(cfg.max_head.max(16))];
    let max_fields = cfg.max_headers.max(1).min(slots);
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
        facts.request(
            method,
            target,
            authority,
            minor,
            Fields::Raw { block, count },
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{header_slots, parse_request, parse_request_general};
    use super::*;

    fn cfg() -> Config {
        Config::default()
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
}
