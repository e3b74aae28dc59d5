//! The PROXY protocol header (HAProxy's spec, versions 1 and 2): parsed from the start of
//! a connection's bytes, and written for a connection this side dials. Sans-IO, no
//! allocation when parsing.
//!
//! ```
//! use wireloop_middleware::codec::Status;
//! use wireloop_middleware::proxy_protocol::{parse, Header};
//!
//! let wire = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nGET / HTTP/1.1\r\n";
//! let Ok(Status::Complete((len, Header::Proxied { source, .. }))) = parse(wire) else {
//!     panic!()
//! };
//! assert_eq!(source.to_string(), "192.0.2.1:51000");
//! assert_eq!(&wire[len..], b"GET / HTTP/1.1\r\n");
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::codec::Status;

/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 header, CRLF included (the spec's limit).
pub const V1_MAX: usize = 107;
/// Longest version 2 header accepted: the 16-byte preamble and at most this much of
/// addresses and TLVs (the spec allows 64 KiB; senders use a few hundred bytes).
pub const V2_MAX: usize = 16 + 2048;

/// What a header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// The connection was relayed for this client (`source`) to this address (`dest`).
    Proxied {
        /// The client's address as the sender saw it.
        source: SocketAddr,
        /// The address the client connected to.
        dest: SocketAddr,
    },
    /// Version 2 `LOCAL` (a health check from the sender itself), or a protocol the
    /// addresses of which are not IP (`UNKNOWN` in version 1, `AF_UNSPEC` or unix in
    /// version 2): the connection's own addresses stand.
    Local,
}

/// Why the bytes are not a PROXY protocol header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError(&'static str);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for HeaderError {}

/// Parses the header at the start of `input`: `Complete((length, header))`, or `Partial`
/// while the bytes so far are a valid beginning of one.
pub fn parse(input: &[u8]) -> Result<Status<(usize, Header)>, HeaderError> {
    let n = input.len().min(V2_SIGNATURE.len());
    if input[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(Status::Partial)
        } else {
            parse_v2(input)
        };
    }
    let n = input.len().min(6);
    if input[..n] == b"PROXY "[..n] {
        return parse_v1(input);
    }
    Err(HeaderError("no PROXY protocol signature"))
}

fn parse_v1(input: &[u8]) -> Result<Status<(usize, Header)>, HeaderError> {
    let Some(end) = input.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if input.len() >= V1_MAX {
            Err(HeaderError("version 1 line longer than 107 bytes"))
        } else {
            Ok(Status::Partial)
        };
    };
    let line = &input[..end];
    let line = line
        .strip_suffix(b"\r")
        .ok_or(HeaderError("version 1 line without CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| HeaderError("version 1 line not ASCII"))?;
    let mut fields = line.split(' ');
    fields.next(); // "PROXY"
    let header = match fields.next() {
        Some("UNKNOWN") => Header::Local,
        Some(proto @ ("TCP4" | "TCP6")) => {
            let v4 = proto == "TCP4";
            let ip = |s: Option<&str>| -> Result<IpAddr, HeaderError> {
                let ip: IpAddr = s
                    .and_then(|s| s.parse().ok())
                    .ok_or(HeaderError("version 1 address"))?;
                if ip.is_ipv4() != v4 {
                    return Err(HeaderError("version 1 address of the other family"));
                }
                Ok(ip)
            };
            let port = |s: Option<&str>| -> Result<u16, HeaderError> {
                match s {
                    // No sign, no leading zero (the spec's form).
                    Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        if p.len() > 1 && p.starts_with('0') {
                            return Err(HeaderError("version 1 port with a leading zero"));
                        }
                        p.parse().map_err(|_| HeaderError("version 1 port"))
                    }
                    _ => Err(HeaderError("version 1 port")),
                }
            };
            let (src, dst) = (ip(fields.next())?, ip(fields.next())?);
            let (sport, dport) = (port(fields.next())?, port(fields.next())?);
            if fields.next().is_some() {
                return Err(HeaderError("version 1 line with extra fields"));
            }
            Header::Proxied {
                source: SocketAddr::new(src, sport),
                dest: SocketAddr::new(dst, dport),
            }
        }
        _ => return Err(HeaderError("version 1 protocol")),
    };
    Ok(Status::Complete((end + 1, header)))
}

fn parse_v2(input: &[u8]) -> Result<Status<(usize, Header)>, HeaderError> {
    if input.len() < 16 {
        return Ok(Status::Partial);
    }
    let (ver_cmd, fam) = (input[12], input[13]);
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError("version 2 signature with another version"));
    }
    let len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if 16 + len > V2_MAX {
        return Err(HeaderError("version 2 header longer than 2 KiB"));
    }
    let Some(body) = input.get(16..16 + len) else {
        return Ok(Status::Partial);
    };
    let header = match ver_cmd & 0x0f {
        0 => Header::Local,
        1 => {
            let need = match fam >> 4 {
                1 => 12,
                2 => 36,
                3 => 216,
                0 => 0,
                _ => return Err(HeaderError("version 2 address family")),
            };
            if !matches!(fam & 0x0f, 0..=2) {
                return Err(HeaderError("version 2 transport"));
            }
            if body.len() < need {
                return Err(HeaderError("version 2 addresses cut short"));
            }
            match (fam >> 4, fam & 0x0f) {
                (1, 1 | 2) => {
                    let ip =
                        |i: usize| Ipv4Addr::new(body[i], body[i + 1], body[i + 2], body[i + 3]);
                    let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
                    Header::Proxied {
                        source: SocketAddr::new(ip(0).into(), port(8)),
                        dest: SocketAddr::new(ip(4).into(), port(10)),
                    }
                }
                (2, 1 | 2) => {
                    let ip = |i: usize| {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(&body[i..i + 16]);
                        Ipv6Addr::from(b)
                    };
                    let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
                    Header::Proxied {
                        source: SocketAddr::new(ip(0).into(), port(32)),
                        dest: SocketAddr::new(ip(16).into(), port(34)),
                    }
                }
                // Unix sockets and AF_UNSPEC carry no IP address.
                _ => Header::Local,
            }
        }
        _ => return Err(HeaderError("version 2 command")),
    };
    Ok(Status::Complete((16 + len, header)))
}

/// The PROXY protocol version a sender writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The text form.
    V1,
    /// The binary form.
    V2,
}

/// Appends the header saying `source` connected to `dest`. Addresses of two families make
/// a header that says they are unknown (`UNKNOWN`, or `AF_UNSPEC`).
pub fn write(version: Version, source: SocketAddr, dest: SocketAddr, out: &mut Vec<u8>) {
    match version {
        Version::V1 => match (source, dest) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => out.extend_from_slice(
                format!(
                    "PROXY TCP4 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
                .as_bytes(),
            ),
            (SocketAddr::V6(s), SocketAddr::V6(d)) => out.extend_from_slice(
                format!(
                    "PROXY TCP6 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
                .as_bytes(),
            ),
            _ => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
        },
        Version::V2 => {
            out.extend_from_slice(&V2_SIGNATURE);
            out.push(0x21); // version 2, PROXY
            match (source, dest) {
                (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                    out.extend_from_slice(&[0x11, 0, 12]);
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
                (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                    out.extend_from_slice(&[0x21, 0, 36]);
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
                _ => out.extend_from_slice(&[0x00, 0, 0]),
            }
        }
    }
}

#[cfg(test)]
mod tests;
