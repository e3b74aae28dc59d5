//! Head rewriting in both directions: hop-by-hop fields (RFC 9110 §7.6.1) and the ones
//! `Connection` names are removed; requests get `X-Forwarded-For`, `X-Forwarded-Proto`,
//! `Via` and (with `--rewrite-host`) the upstream's `Host`; responses get `Via`.

use wireloop_middleware::http1::{FieldName, Request, RequestHeadWriter, ResponseHead};

use crate::header_list::HeaderList;
use crate::phases::UpstreamRequest;

/// Most `Connection` options honoured when stripping the headers they name.
const MAX_CONN_OPTIONS: usize = 16;

/// Hop-by-hop header fields (RFC 9110 §7.6.1), removed in both directions.
pub(crate) fn hop_by_hop(name: &str) -> bool {
    let eq = |h: &str| name.eq_ignore_ascii_case(h);
    // By length first: most fields are none of these, and say so in one comparison.
    (match name.len() {
        2 => eq("te"),
        7 => eq("trailer") || eq("upgrade"),
        10 => eq("connection") || eq("keep-alive"),
        17 => eq("transfer-encoding"),
        _ => false,
    }) || name
        .as_bytes()
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"proxy-"))
}

/// The options of `Connection` fields: the headers they name are hop-by-hop too.
fn connection_options<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    out: &mut [&'a [u8]; MAX_CONN_OPTIONS],
) -> usize {
    let mut n = 0;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            for t in value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if !t.is_empty() && n < MAX_CONN_OPTIONS {
                    out[n] = t;
                    n += 1;
                }
            }
        }
    }
    n
}

/// Whether `name` is one of the `Connection` options, so hop-by-hop. `Host` never is: a
/// client that names it would otherwise have the upstream receive a request without the
/// `Host` its policy routed on (RFC 9110 §7.6.1 forbids options for end-to-end fields;
/// the framing fields need no such care, the writer frames the body itself).
fn named(options: &[&[u8]], name: &str) -> bool {
    options
        .iter()
        .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
        && !name.eq_ignore_ascii_case("host")
}

/// Whether the request's upgrade is passed on (and a 101 turns the exchange into a
/// tunnel). Not `h2c`: HTTP/2 in the clear through a tunnel would reach the upstream past
/// the policy, request after request ("h2c smuggling"), and RFC 9113 §3.1 retired the
/// token. Such a request goes on as a plain one, its `Upgrade` field dropped.
pub(crate) fn tunnels_upgrade(req: &Request<'_>) -> bool {
    req.wants_upgrade()
        && !req.headers().any(|(name, value)| {
            name.eq_ignore_ascii_case("upgrade")
                && value.split(|&b| b == b',').any(|p| {
                    p.trim_ascii()
                        .get(..3)
                        .is_some_and(|t| t.eq_ignore_ascii_case(b"h2c"))
                })
        })
}

/// Fills `out` with the response head's fields to pass on to the client: hop-by-hop
/// fields and `Content-Length` are left out (the client side frames the body itself),
/// `Upgrade` is kept on a 101, and `Via` is added.
pub(crate) fn response_head(h: &ResponseHead<'_>, out: &mut HeaderList) {
    out.clear();
    // The field section copied once, its fields kept as places in the copy (a head the
    // general parser read is copied field by field).
    let section = h
        .field_section()
        .filter(|s| out.copy_section(s))
        .unwrap_or("");
    // One pass: the fields a `Connection` option names are taken out afterwards, when
    // there may be one (rare: most `Connection` fields say only `close` or `keep-alive`,
    // and `Keep-Alive` is hop-by-hop anyway).
    let mut named_any = false;
    for (name, value) in h.headers() {
        named_any |= name.len() == 5 && token_eq(name, "close");
        let connection = name.len() == 10 && token_eq(name, "connection");
        if connection {
            named_any |= value.split(|&b| b == b',').any(|t| {
                let t = t.trim_ascii();
                !t.is_empty()
                    && !t.eq_ignore_ascii_case(b"close")
                    && !t.eq_ignore_ascii_case(b"keep-alive")
            });
        }
        let dropped = connection
            || (name.len() == 14 && token_eq(name, "content-length"))
            || hop_by_hop(name);
        if dropped && !(h.is_upgrade() && name.len() == 7 && token_eq(name, "upgrade")) {
            continue;
        }
        out.append_from_section(section, name, value);
    }
    if named_any {
        let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
        let n_opts = connection_options(h.headers(), &mut opts);
        for o in &opts[..n_opts] {
            // Options are tokens or are not names of fields at all.
            let Ok(o) = std::str::from_utf8(o) else {
                continue;
            };
            if o.eq_ignore_ascii_case("host")
                || (h.is_upgrade() && o.eq_ignore_ascii_case("upgrade"))
            {
                continue;
            }
            out.remove(o);
        }
    }
    out.append_parsed("Via", b"1.1 wireloop");
}

/// Whether the token `name` (a parsed head's field name) is `lower` (lower case letters
/// and `-`) in any case: a token's byte with bit 5 set is one of `lower`'s only if it is
/// that letter in either case, or `-` itself.
fn token_eq(name: &str, lower: &str) -> bool {
    name.len() == lower.len()
        && name
            .bytes()
            .zip(lower.bytes())
            .fold(true, |same, (a, b)| same & (a | 0x20 == b))
}

/// What the upstream request head is made from besides the client's request.
pub(crate) struct HeadParts<'a> {
    pub client_ip: &'a str,
    pub proto: &'a str,
    /// The peer's authority, sent as `Host` with `rewrite_host` or when the client sent
    /// none.
    pub authority: &'a str,
    pub rewrite_host: bool,
    /// The policy's changes.
    pub rewrite: &'a UpstreamRequest,
}

/// Builds the upstream request head for `req` into `out`; `scratch` and `scratch2` are
/// reused buffers. `false` if the request cannot be written (a bad field).
///
/// Two passes over the request's fields: one gathers what decides the rest (the
/// `Connection` options, `X-Forwarded-For` and `Via` to append to, whether there is a
/// `Host`, an `h2c` upgrade), the other writes the fields that go on, as the parser
/// checked them; the proxy's own fields and the policy's are checked as they are written.
pub(crate) fn request_head(
    req: &Request<'_>,
    parts: &HeadParts<'_>,
    scratch: &mut String,
    scratch2: &mut String,
    out: &mut Vec<u8>,
) -> bool {
    let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
    let mut n_opts = 0;
    // X-Forwarded-For and Via, appended to what came in.
    let xff = scratch;
    xff.clear();
    let via = scratch2;
    via.clear();
    let mut has_host = false;
    let mut h2c = false;
    for (name, value) in req.headers() {
        match name.len() {
            3 if name.eq_ignore_ascii_case("via") => append_list(via, value),
            4 if name.eq_ignore_ascii_case("host") => has_host = true,
            7 if name.eq_ignore_ascii_case("upgrade") => {
                h2c |= value.split(|&b| b == b',').any(|p| {
                    p.trim_ascii()
                        .get(..3)
                        .is_some_and(|t| t.eq_ignore_ascii_case(b"h2c"))
                });
            }
            10 if name.eq_ignore_ascii_case("connection") => {
                for t in value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    if !t.is_empty() && n_opts < MAX_CONN_OPTIONS {
                        opts[n_opts] = t;
                        n_opts += 1;
                    }
                }
            }
            15 if name.eq_ignore_ascii_case("x-forwarded-for") => append_list(xff, value),
            _ => {}
        }
    }
    let opts = &opts[..n_opts];
    // As `tunnels_upgrade` says.
    let upgrade = req.wants_upgrade() && !h2c;
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(parts.client_ip);
    if !via.is_empty() {
        via.push_str(", ");
    }
    via.push_str(match (req.is_h2(), req.version_minor()) {
        (true, _) => "2 wireloop",
        (false, 0) => "1.0 wireloop",
        _ => "1.1 wireloop",
    });
    let rw = parts.rewrite;
    // Most requests carry no changes from the policy: skip the look-ups then.
    let changed = !(rw.set.is_empty() && rw.removed.is_empty());
    let rewrite = parts.rewrite_host && !rw.set.contains("host");
    let set_host = rw.set.contains("host");
    // Without `Host` from the client (HTTP/1.0), an absolute-form target names the host.
    let host = match req.authority() {
        Some(a) if !rewrite => a,
        _ => parts.authority,
    };
    // Origin-form upstream: an absolute-form target's path and query (the parser checked
    // that its authority is the `Host` sent on).
    let slash;
    let target = if !rw.target.is_empty() {
        rw.target.as_str()
    } else if req.authority().is_some() && !req.origin().starts_with('/') {
        slash = format!("/{}", req.origin());
        slash.as_str()
    } else {
        req.origin()
    };
    let Ok(mut w) = RequestHeadWriter::new(out, req.method(), target) else {
        return false;
    };
    let passed = w.request_fields(req, |name, _| {
        let dropped = match name.len() {
            3 => name.eq_ignore_ascii_case("via"),
            4 => rewrite && name.eq_ignore_ascii_case("host"),
            6 => name.eq_ignore_ascii_case("expect"),
            15 => name.eq_ignore_ascii_case("x-forwarded-for"),
            17 => name.eq_ignore_ascii_case("x-forwarded-proto"),
            _ => false,
        };
        // A tunnelled upgrade keeps its `Upgrade` whatever else would drop it.
        let kept_upgrade = upgrade && name.len() == 7 && name.eq_ignore_ascii_case("upgrade");
        kept_upgrade
            || !(dropped
                || hop_by_hop(name)
                || (!opts.is_empty() && named(opts, name))
                || (changed && (rw.set.contains(name) || rw.removed.contains(name))))
    });
    if passed.is_err() {
        return false;
    }
    const HOST: FieldName = FieldName::new("Host");
    const XFF: FieldName = FieldName::new("X-Forwarded-For");
    const XFP: FieldName = FieldName::new("X-Forwarded-Proto");
    const VIA: FieldName = FieldName::new("Via");
    const CONNECTION: FieldName = FieldName::new("Connection");
    let ours = [
        (&HOST, host.as_bytes()),
        (&XFF, xff.as_bytes()),
        (&XFP, parts.proto.as_bytes()),
        (&VIA, via.as_bytes()),
        (&CONNECTION, if upgrade { &b"Upgrade"[..] } else { b"" }),
    ];
    for (name, v) in ours {
        let n = name.as_str();
        if v.is_empty()
            || (n == "Host" && !(rewrite || (!has_host && !set_host)))
            || (changed && (rw.set.contains(n) || rw.removed.contains(n)))
        {
            continue;
        }
        if w.named_field(name, v).is_err() {
            return false;
        }
    }
    for (n, v) in rw.set.iter() {
        if w.field(n, v).is_err() {
            return false;
        }
    }
    w.finish(req.body_length());
    true
}

/// Appends a field's value to a comma-separated list (a value that is not text is left
/// out).
fn append_list(dst: &mut String, value: &[u8]) {
    if let Ok(v) = std::str::from_utf8(value) {
        if !dst.is_empty() {
            dst.push_str(", ");
        }
        dst.push_str(v);
    }
}

#[cfg(test)]
mod tests {
    use wireloop_middleware::http1::{header_slots, parse_request, Config};

    use super::*;

    /// The upstream head the proxy writes for `raw` (no policy changes, the peer's
    /// authority `peer:80`).
    fn upstream_head(raw: &[u8]) -> String {
        let mut slots = header_slots();
        let cfg = Config::default();
        let (_, req) = parse_request(raw, &mut slots, &cfg)
            .expect("valid request")
            .expect("complete head");
        let rewrite = UpstreamRequest::default();
        let parts = HeadParts {
            client_ip: "10.0.0.1",
            proto: "http",
            authority: "peer:80",
            rewrite_host: false,
            rewrite: &rewrite,
        };
        let mut out = Vec::new();
        assert!(request_head(
            &req,
            &parts,
            &mut String::new(),
            &mut String::new(),
            &mut out
        ));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn connection_cannot_remove_host() {
        let h = upstream_head(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Host, X-Gone\r\nX-Gone: 1\r\n\r\n",
        );
        assert!(h.contains("\r\nHost: a\r\n"), "{h}");
        assert!(!h.contains("X-Gone") && !h.contains("Connection"), "{h}");
    }

    #[test]
    fn absolute_form_goes_upstream_in_origin_form() {
        let h = upstream_head(b"GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(h.starts_with("GET /x?y HTTP/1.1\r\n"), "{h}");
        assert!(h.contains("\r\nHost: a\r\n"), "{h}");
        let h = upstream_head(b"GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(h.starts_with("GET /?q HTTP/1.1\r\n"), "{h}");
        let h = upstream_head(b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(h.starts_with("GET / HTTP/1.1\r\n"), "{h}");
    }

    #[test]
    fn absolute_form_names_the_host_when_the_client_sent_none() {
        let h = upstream_head(b"GET http://a:81/x HTTP/1.0\r\n\r\n");
        assert!(h.starts_with("GET /x HTTP/1.1\r\n"), "{h}");
        assert!(
            h.contains("\r\nHost: a:81\r\n") && !h.contains("peer:80"),
            "{h}"
        );
    }

    #[test]
    fn h2c_upgrade_is_not_passed_on() {
        let h = upstream_head(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        );
        assert!(
            !h.contains("Upgrade") && !h.contains("HTTP2-Settings") && !h.contains("Connection"),
            "{h}"
        );
        let h = upstream_head(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(
            h.contains("\r\nUpgrade: websocket\r\n") && h.contains("\r\nConnection: Upgrade\r\n"),
            "{h}"
        );
    }
}
