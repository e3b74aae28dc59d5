//! The server name a TLS client asks for, read from its ClientHello without terminating
//! TLS: what a layer-4 proxy routes on before passing the bytes through unchanged.
//!
//! [`peek_sni`] is sans-IO and never consumes: give it everything received so far, and it
//! answers [`Hello::Partial`] until the ClientHello is complete (it may span several TLS
//! records), then [`Hello::Complete`] with the name, if the client sent one. Anything
//! that is not a well-formed ClientHello is a [`HelloError`], and so is a hello larger
//! than [`MAX_HELLO`] (a peer-controlled size needs a limit).
//!
//! ```
//! use wireloop_proxy::sni::{peek_sni, Hello};
//!
//! // The first bytes of a TLS record are not a ClientHello yet.
//! assert_eq!(peek_sni(&[0x16, 0x03, 0x01]), Ok(Hello::Partial));
//! assert!(peek_sni(b"GET / HTTP/1.1\r\n").is_err());
//! ```

use std::fmt;

/// Most bytes of a ClientHello message (its handshake body, over all its records).
/// Browsers send 0.5-2 KiB, with post-quantum key shares; 16 KiB is one full record.
pub const MAX_HELLO: usize = 16 * 1024;

/// TLS record header: type, legacy version, length.
const RECORD_HEADER: usize = 5;
/// Most plaintext bytes in one TLS record (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;
const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const HOST_NAME: u8 = 0;

/// What the bytes received so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    /// A ClientHello has begun; more bytes are needed.
    Partial,
    /// The ClientHello is complete: the server name it asks for (lower case, without a
    /// trailing dot), or `None` if it sent no `server_name` extension.
    Complete(Option<String>),
}

/// Why the bytes are not a ClientHello this proxy can route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// The first record is not a TLS handshake record (plain HTTP, say).
    NotTls,
    /// A malformed record or ClientHello, or a server name that is not a DNS name.
    Malformed(&'static str),
    /// The ClientHello is larger than [`MAX_HELLO`].
    TooLarge,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::NotTls => f.write_str("not a TLS handshake"),
            HelloError::Malformed(what) => write!(f, "malformed ClientHello: {what}"),
            HelloError::TooLarge => write!(f, "ClientHello larger than {MAX_HELLO} bytes"),
        }
    }
}

impl std::error::Error for HelloError {}

/// Reads the server name from the ClientHello at the start of `input` (see the module
/// docs). Only the handshake records the hello spans are looked at; bytes after it are
/// ignored.
pub fn peek_sni(input: &[u8]) -> Result<Hello, HelloError> {
    let mut msg = Reassembly::default();
    let mut rest = input;
    loop {
        if rest.len() < RECORD_HEADER {
            // A record header cut short: what there is must look like one.
            return match rest.first() {
                Some(&t) if t != HANDSHAKE => Err(HelloError::NotTls),
                _ if rest.len() >= 2 && rest[1] != 3 => Err(HelloError::NotTls),
                _ => Ok(Hello::Partial),
            };
        }
        if rest[0] != HANDSHAKE || rest[1] != 3 {
            return Err(HelloError::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > MAX_RECORD {
            return Err(HelloError::Malformed("record length"));
        }
        let Some(fragment) = rest.get(RECORD_HEADER..RECORD_HEADER + len) else {
            return Ok(Hello::Partial);
        };
        rest = &rest[RECORD_HEADER + len..];
        if let Some(body) = msg.push(fragment)? {
            return client_hello_sni(body).map(Hello::Complete);
        }
    }
}

/// The handshake message gathered from its records.
#[derive(Default)]
struct Reassembly<'a> {
    /// The first fragment, while the message fits in it (no copy).
    first: &'a [u8],
    /// The message so far, once it spans records.
    joined: Vec<u8>,
}

impl<'a> Reassembly<'a> {
    /// Adds a record's fragment; the ClientHello's body once complete.
    fn push(&mut self, fragment: &'a [u8]) -> Result<Option<&[u8]>, HelloError> {
        if self.first.is_empty() {
            self.first = fragment;
        } else {
            if self.joined.is_empty() {
                self.joined.extend_from_slice(self.first);
            }
            self.joined.extend_from_slice(fragment);
        }
        let msg: &[u8] = if self.joined.is_empty() {
            self.first
        } else {
            &self.joined
        };
        if msg[0] != CLIENT_HELLO {
            return Err(HelloError::Malformed(
                "first handshake message is not a ClientHello",
            ));
        }
        if msg.len() < 4 {
            return Ok(None);
        }
        let body_len = usize::from(msg[1]) << 16 | usize::from(msg[2]) << 8 | usize::from(msg[3]);
        if body_len > MAX_HELLO {
            return Err(HelloError::TooLarge);
        }
        if msg.len() < 4 + body_len {
            return Ok(None);
        }
        let msg: &[u8] = if self.joined.is_empty() {
            self.first
        } else {
            &self.joined
        };
        Ok(Some(&msg[4..4 + body_len]))
    }
}

/// A cursor over a ClientHello body; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }

    /// A vector with a two-byte length.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }
}

/// The server name in a ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3).
fn client_hello_sni(body: &[u8]) -> Result<Option<String>, HelloError> {
    let mut r = Reader(body);
    let version = r.u16("legacy_version")?;
    if version >> 8 != 3 {
        return Err(HelloError::Malformed("legacy_version"));
    }
    r.take(32, "random")?;
    if r.vec8("legacy_session_id")?.len() > 32 {
        return Err(HelloError::Malformed("legacy_session_id"));
    }
    let suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed("cipher_suites"));
    }
    if r.vec8("legacy_compression_methods")?.is_empty() {
        return Err(HelloError::Malformed("legacy_compression_methods"));
    }
    if r.0.is_empty() {
        // A TLS 1.2 hello may end here: no extensions, so no name.
        return Ok(None);
    }
    let mut exts = Reader(r.vec16("extensions")?);
    if !r.0.is_empty() {
        return Err(HelloError::Malformed("bytes after the extensions"));
    }
    let mut name = None;
    while !exts.0.is_empty() {
        let kind = exts.u16("extension type")?;
        let data = exts.vec16("extension data")?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        if name.is_some() {
            return Err(HelloError::Malformed("two server_name extensions"));
        }
        name = Some(server_name(data)?);
    }
    Ok(name)
}

/// The host name of a `server_name` extension's data.
fn server_name(data: &[u8]) -> Result<String, HelloError> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16("server_name_list")?);
    if !r.0.is_empty() || list.0.is_empty() {
        return Err(HelloError::Malformed("server_name_list"));
    }
    let mut host = None;
    while !list.0.is_empty() {
        let kind = list.u8("name_type")?;
        let name = list.vec16("host_name")?;
        if kind == HOST_NAME {
            if host.is_some() {
                return Err(HelloError::Malformed("two host names"));
            }
            host = Some(name);
        }
    }
    let host = host.ok_or(HelloError::Malformed("no host_name in server_name"))?;
    let host = host.strip_suffix(b".").unwrap_or(host);
    let dns = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if host.is_empty() || host.len() > 253 || !host.iter().all(dns) {
        return Err(HelloError::Malformed("host_name is not a DNS name"));
    }
    Ok(String::from_utf8_lossy(host).to_ascii_lowercase())
}

/// Routes by server name: exact names, then `*.suffix` wildcards (the longest suffix
/// wins; `*.example.com` matches `a.example.com` and `a.b.example.com`, not
/// `example.com`), then the default.
#[derive(Clone, Debug, Default)]
pub struct SniRoutes<T> {
    exact: Vec<(String, T)>,
    /// (".suffix", target), longest first.
    wildcard: Vec<(String, T)>,
    default: Option<T>,
}

impl<T> SniRoutes<T> {
    /// No routes.
    pub fn new() -> SniRoutes<T> {
        SniRoutes {
            exact: Vec::new(),
            wildcard: Vec::new(),
            default: None,
        }
    }

    /// Routes `pattern` (a host name, `*.suffix`, or `*` for the default) to `target`.
    /// A later route for the same pattern replaces the earlier one.
    pub fn add(&mut self, pattern: &str, target: T) -> Result<(), String> {
        let p = pattern.to_ascii_lowercase();
        let name = |s: &str| {
            let s = s.strip_suffix('.').unwrap_or(s);
            let valid = !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            valid.then(|| s.to_string())
        };
        if p == "*" {
            self.default = Some(target);
        } else if let Some(suffix) = p.strip_prefix("*.") {
            let key = format!(
                ".{}",
                name(suffix).ok_or(format!("bad server name pattern {pattern:?}"))?
            );
            self.wildcard.retain(|(k, _)| *k != key);
            self.wildcard.push((key, target));
            self.wildcard
                .sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        } else {
            let key = name(&p).ok_or(format!("bad server name pattern {pattern:?}"))?;
            self.exact.retain(|(k, _)| *k != key);
            self.exact.push((key, target));
        }
        Ok(())
    }

    /// The target for a hello's server name (`None`: it sent none, so the default).
    pub fn route(&self, name: Option<&str>) -> Option<&T> {
        let Some(name) = name else {
            return self.default.as_ref();
        };
        if let Some((_, t)) = self.exact.iter().find(|(k, _)| k == name) {
            return Some(t);
        }
        self.wildcard
            .iter()
            .find(|(k, _)| name.len() > k.len() && name.ends_with(k.as_str()))
            .map(|(_, t)| t)
            .or(self.default.as_ref())
    }

    /// Whether no route is set.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }
}

#[cfg(test)]
mod tests;
