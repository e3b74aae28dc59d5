//! The request target's four forms (RFC 9112 §3.2), each taken only with the methods it
//! belongs to, and an absolute-form target's authority checked against `Host`.

use super::bytes::bad_host;
use super::error::ParseError;
use super::field_scan::Facts;

/// The request target's form, checked against the method and the `Host` field; the
/// authority's place in an absolute-form target.
#[inline]
pub(super) fn check_target(
    method: &str,
    target: &str,
    facts: &Facts<'_>,
) -> Result<(u32, u32), ParseError> {
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

/// The four forms of a request target (RFC 9112 §3.2).
pub(super) enum TargetForm {
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
pub(super) fn target_form(method: &str, target: &str) -> Result<TargetForm, ParseError> {
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
                    && !bad_host(t)
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
    if authority.is_empty() || bad_host(authority) || t.get(end) == Some(&b'#') {
        return Err(ParseError::BadRequest("invalid absolute-form target"));
    }
    Ok(TargetForm::Absolute {
        authority: (rest, end),
    })
}
