//! Head rewriting in both directions: hop-by-hop fields (RFC 9110 §7.6.1) and the ones
//! `Connection` names are removed; requests get `X-Forwarded-For`, `X-Forwarded-Proto`,
//! `Via` and (with `--rewrite-host`) the upstream's `Host`; responses get `Via`.

use std::fmt::Write as _;

use wireloop_middleware::http1::{write_request_head, Request, ResponseHead};

use crate::header_list::HeaderList;
use crate::phases::UpstreamRequest;

/// Most `Connection` options honoured when stripping the headers they name.
const MAX_CONN_OPTIONS: usize = 16;

/// Hop-by-hop header fields (RFC 9110 §7.6.1), removed in both directions.
pub(crate) fn hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || name
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

fn named(options: &[&[u8]], name: &str) -> bool {
    options
        .iter()
        .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
}

/// Fills `out` with the response head's fields to pass on to the client: hop-by-hop
/// fields and `Content-Length` are left out (the client side frames the body itself),
/// `Upgrade` is kept on a 101, and `Via` is added.
pub(crate) fn response_head(h: &ResponseHead<'_>, out: &mut HeaderList) {
    out.clear();
    let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
    let n_opts = connection_options(h.headers(), &mut opts);
    for (name, value) in h.headers() {
        let keep_upgrade = h.is_upgrade() && name.eq_ignore_ascii_case("upgrade");
        if (hop_by_hop(name)
            || named(&opts[..n_opts], name)
            || name.eq_ignore_ascii_case("content-length"))
            && !keep_upgrade
        {
            continue;
        }
        out.append_parsed(name, value);
    }
    out.append_parsed("Via", b"1.1 wireloop");
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
pub(crate) fn request_head(
    req: &Request<'_>,
    parts: &HeadParts<'_>,
    scratch: &mut String,
    scratch2: &mut String,
    out: &mut Vec<u8>,
) -> bool {
    let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
    let n_opts = connection_options(req.headers(), &mut opts);
    let opts = &opts[..n_opts];
    let upgrade = req.wants_upgrade();
    // X-Forwarded-For and Via, appended to what came in.
    let xff = scratch;
    xff.clear();
    let via = scratch2;
    via.clear();
    for (name, value) in req.headers() {
        if name.eq_ignore_ascii_case("x-forwarded-for") || name.eq_ignore_ascii_case("via") {
            let dst = if name.len() == 3 {
                &mut *via
            } else {
                &mut *xff
            };
            if let Ok(v) = std::str::from_utf8(value) {
                if !dst.is_empty() {
                    dst.push_str(", ");
                }
                dst.push_str(v);
            }
        }
    }
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(parts.client_ip);
    if !via.is_empty() {
        via.push_str(", ");
    }
    let _ = write!(via, "1.{} wireloop", req.version_minor());
    let rw = parts.rewrite;
    // Most requests carry no changes from the policy: skip the look-ups then.
    let changed = !(rw.set.is_empty() && rw.removed.is_empty());
    let rewrite = parts.rewrite_host && !rw.set.contains("host");
    let set_host = rw.set.contains("host");
    let headers = req
        .headers()
        .filter(move |&(name, _)| {
            !(hop_by_hop(name)
                || named(opts, name)
                || name.eq_ignore_ascii_case("x-forwarded-for")
                || name.eq_ignore_ascii_case("x-forwarded-proto")
                || name.eq_ignore_ascii_case("via")
                || name.eq_ignore_ascii_case("expect")
                || (rewrite && name.eq_ignore_ascii_case("host"))
                || (changed && (rw.set.contains(name) || rw.removed.contains(name))))
                || (upgrade && name.eq_ignore_ascii_case("upgrade"))
        })
        .chain(
            [
                ("Host", parts.authority.as_bytes()),
                ("X-Forwarded-For", xff.as_bytes()),
                ("X-Forwarded-Proto", parts.proto.as_bytes()),
                ("Via", via.as_bytes()),
                ("Connection", if upgrade { &b"Upgrade"[..] } else { b"" }),
            ]
            .into_iter()
            .filter(move |(n, v)| {
                !v.is_empty()
                    && (*n != "Host" || rewrite || (req.header("host").is_none() && !set_host))
                    && !(changed && (rw.set.contains(n) || rw.removed.contains(n)))
            }),
        )
        .chain(rw.set.iter());
    let target = if rw.target.is_empty() {
        req.target()
    } else {
        rw.target.as_str()
    };
    let length = req.body_length();
    write_request_head(out, req.method(), target, headers, length).is_ok()
}
