//! The opening handshake (RFC 6455 §4): the server's checks of an upgrade request and its
//! `Sec-WebSocket-Accept`, and the client's request and its check of the `101` answer.
//! Sans-IO: requests and responses are byte slices.

use std::fmt;

use crate::http1::Request;

/// The GUID appended to the key before hashing (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest `101` response head the client accepts.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// (Server) the request asks for a WebSocket but breaks the rules: answer 400.
    BadRequest(&'static str),
    /// (Server) `Sec-WebSocket-Version` is not 13: answer 426 with
    /// `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// (Client) the server's response is not a valid `101` for our request.
    BadResponse(String),
}

impl HandshakeError {
    /// The status a server answers with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadRequest(why) => write!(f, "bad WebSocket handshake: {why}"),
            HandshakeError::UnsupportedVersion => {
                f.write_str("unsupported Sec-WebSocket-Version (13 is)")
            }
            HandshakeError::BadResponse(why) => {
                write!(f, "WebSocket handshake refused by the server: {why}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with padding) of `data`, appended to `out`.
pub fn base64_encode(data: &[u8], out: &mut String) {
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// Decodes standard padded base64; `None` if `s` is not exactly that.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, q) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = n << 6 | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut ctx = sha1_smol::Sha1::new();
    ctx.update(key);
    ctx.update(GUID);
    let mut out = String::with_capacity(28);
    base64_encode(&ctx.digest().bytes(), &mut out);
    out
}

/// Whether a header value, as a comma-separated list, holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether any header `name` of `req` holds `token`.
fn any_token(req: &Request<'_>, name: &str, token: &str) -> bool {
    req.headers()
        .any(|(n, v)| n.eq_ignore_ascii_case(name) && has_token(v, token))
}

/// Whether the request asks for a WebSocket at all (`Upgrade: websocket`): such a request
/// is then either served as one or rejected; others are plain HTTP.
pub fn is_websocket_request(req: &Request<'_>) -> bool {
    any_token(req, "upgrade", "websocket")
}

/// Checks a WebSocket upgrade request (RFC 6455 §4.2.1) and returns its
/// `Sec-WebSocket-Key`.
pub fn check_request<'a>(req: &Request<'a>) -> Result<&'a [u8], HandshakeError> {
    use HandshakeError::BadRequest;
    if req.method() != "GET" {
        return Err(BadRequest("method is not GET"));
    }
    if req.version_minor() != 1 {
        return Err(BadRequest("not HTTP/1.1"));
    }
    if !is_websocket_request(req) {
        return Err(BadRequest("no Upgrade: websocket"));
    }
    if !any_token(req, "connection", "upgrade") {
        return Err(BadRequest("Connection does not contain upgrade"));
    }
    if req.has_body() {
        return Err(BadRequest("a body in the upgrade request"));
    }
    match req.header("sec-websocket-version") {
        Some(v) if v.trim_ascii() == b"13" => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    let key = req
        .header("sec-websocket-key")
        .map(<[u8]>::trim_ascii)
        .ok_or(BadRequest("no Sec-WebSocket-Key"))?;
    match base64_decode(key) {
        Some(k) if k.len() == 16 => Ok(key),
        _ => Err(BadRequest("Sec-WebSocket-Key is not base64 of 16 bytes")),
    }
}

/// The subprotocols the client offers (`Sec-WebSocket-Protocol`, all such headers), in
/// its order of preference.
pub fn offered_protocols<'a>(req: &Request<'a>) -> impl Iterator<Item = &'a str> + 'a {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .filter_map(|t| std::str::from_utf8(t.trim_ascii()).ok())
        .filter(|t| !t.is_empty())
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes from the system's CSPRNG.
pub fn client_key() -> Result<String, HandshakeError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|_| HandshakeError::BadResponse("no randomness for the key".into()))?;
    let mut key = String::with_capacity(24);
    base64_encode(&raw, &mut key);
    Ok(key)
}

/// Appends the client's upgrade request for `path` on `host` to `out`.
pub fn write_request(out: &mut Vec<u8>, host: &str, path: &str, key: &str, protocols: &[String]) {
    let path = if path.is_empty() { "/" } else { path };
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !protocols.is_empty() {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocols.join(", ").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What a valid `101` answer told the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Length of the response head (frames follow it).
    pub head_len: usize,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

/// Checks the server's answer to a request sent with `key` offering `protocols`:
/// `Ok(None)` until the whole head is in `buf`.
pub fn check_response(
    buf: &[u8],
    key: &str,
    protocols: &[String],
) -> Result<Option<Accepted>, HandshakeError> {
    let bad = |why: String| HandshakeError::BadResponse(why);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(bad("response head too large".into()))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("malformed response: {e}"))),
    };
    let code = res.code.unwrap_or(0);
    if code != 101 {
        return Err(bad(format!(
            "status {code} {}",
            res.reason.unwrap_or_default()
        )));
    }
    let headers: &[httparse::Header<'_>] = res.headers;
    let header = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if !header("upgrade").any(|v| has_token(v, "websocket")) {
        return Err(bad("no Upgrade: websocket".into()));
    }
    if !header("connection").any(|v| has_token(v, "upgrade")) {
        return Err(bad("no Connection: upgrade".into()));
    }
    let want = accept_key(key.as_bytes());
    if !header("sec-websocket-accept").any(|v| v.trim_ascii() == want.as_bytes()) {
        return Err(bad("wrong or missing Sec-WebSocket-Accept".into()));
    }
    if header("sec-websocket-extensions").next().is_some() {
        return Err(bad("an extension we did not offer".into()));
    }
    let protocol = match header("sec-websocket-protocol").next() {
        None => None,
        Some(v) => {
            let p = std::str::from_utf8(v.trim_ascii()).unwrap_or("");
            if !protocols.iter().any(|o| o == p) {
                return Err(bad(format!("subprotocol {p:?} was not offered")));
            }
            Some(p.to_string())
        }
    };
    Ok(Some(Accepted { head_len, protocol }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{header_slots, parse_request, Config};

    #[test]
    fn rfc_sample_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn base64_round_trip() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(91)).collect();
            let mut s = String::new();
            base64_encode(&data, &mut s);
            assert_eq!(base64_decode(s.as_bytes()), Some(data));
        }
        assert_eq!(base64_decode(b"Zg=="), Some(b"f".to_vec()));
        assert_eq!(base64_decode(b"Zm9v"), Some(b"foo".to_vec()));
        for bad in [&b"Zg="[..], b"Z===", b"Zg==Zg==", b"Zm9*", b"===="] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    /// `requests! { name: request => Ok(()) or Err(status); }`.
    macro_rules! requests {
        ($($name:ident: $req:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut slots = header_slots();
                let (_, req) = parse_request($req, &mut slots, &Config::default())
                    .expect("parses")
                    .expect("complete");
                let got: Result<(), u16> = check_request(&req).map(|_| ()).map_err(|e| e.status());
                assert_eq!(got, $want);
            }
        )*};
    }

    requests! {
        good: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Ok(());
        post: b"POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(400);
        http10: b"GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(400);
        no_connection: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(400);
        version_8: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(426);
        no_version: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" => Err(426);
        no_key: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n" => Err(400);
        short_key: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Zm9v\r\n\r\n" => Err(400);
        junk_key: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not base64 at all!!!!!!!\r\n\r\n" => Err(400);
    }

    #[test]
    fn client_request_and_response() {
        let mut out = Vec::new();
        let protos = vec!["chat".to_string(), "superchat".to_string()];
        write_request(
            &mut out,
            "example.com",
            "/chat",
            "dGhlIHNhbXBsZSBub25jZQ==",
            &protos,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat, superchat\r\n"));
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x00";
        let got = check_response(ok, key, &protos).unwrap().unwrap();
        assert_eq!(got.head_len, ok.len() - 2);
        assert_eq!(got.protocol.as_deref(), Some("chat"));
        assert_eq!(check_response(&ok[..20], key, &protos), Ok(None));
        let wrong = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: xxxx\r\n\r\n";
        assert!(check_response(wrong, key, &protos).is_err());
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert!(check_response(refused, key, &protos).is_err());
        let proto = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: other\r\n\r\n";
        assert!(check_response(proto, key, &protos).is_err());
    }
}
