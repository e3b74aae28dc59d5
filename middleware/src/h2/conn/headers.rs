//! Decoded header fields and the HTTP/2 rules for requests (RFC 9113 §8.2, §8.3.1).
//!
//! The HPACK decoder's fields are copied into one [`HeaderBuf`] the connection owns and
//! reuses (one byte buffer and one span list, their capacity kept from block to block,
//! bounded by SETTINGS_MAX_HEADER_LIST_SIZE), then checked here; the application sees
//! them borrowed, as a [`Request`] or as trailer [`Fields`].

use super::super::hpack::Field;

/// Where one field is in a [`HeaderBuf`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    start: u32,
    name_len: u32,
    value_len: u32,
    sensitive: bool,
}

/// The fields of the last header block, in one reused buffer.
#[derive(Debug, Default)]
pub(super) struct HeaderBuf {
    bytes: Vec<u8>,
    spans: Vec<Span>,
}

impl HeaderBuf {
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Appends a field (the HPACK decoder's limit keeps the total bounded).
    pub(super) fn push(&mut self, name: &[u8], value: &[u8], sensitive: bool) {
        let (Ok(start), Ok(name_len), Ok(value_len)) = (
            u32::try_from(self.bytes.len()),
            u32::try_from(name.len()),
            u32::try_from(value.len()),
        ) else {
            return;
        };
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.spans.push(Span {
            start,
            name_len,
            value_len,
            sensitive,
        });
    }

    /// Gives back the memory of an unusually large block (kept otherwise).
    pub(super) fn trim(&mut self, keep: usize) {
        if self.bytes.capacity() > keep {
            self.bytes = Vec::new();
            self.spans = Vec::new();
        }
    }

    pub(super) fn fields(&self) -> Fields<'_> {
        Fields {
            bytes: &self.bytes,
            spans: &self.spans,
        }
    }

    /// The bytes held (capacity), for tests of bounded memory.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * std::mem::size_of::<Span>()
    }
}

/// A list of header fields, borrowed from the connection's header buffer: a request's
/// regular fields ([`Request::fields`]) or a stream's trailers.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Fields<'a> {
    /// The fields in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = Field<'a>> + 'a {
        let bytes = self.bytes;
        self.spans.iter().map(move |s| field(bytes, s))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The value of the first field called `name` (names are lowercase).
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|f| f.name == name).map(|f| f.value)
    }

    fn at(&self, i: Option<usize>) -> Option<&'a [u8]> {
        let s = self.spans.get(i?)?;
        Some(field(self.bytes, s).value)
    }

    fn from(&self, i: usize) -> Fields<'a> {
        Fields {
            bytes: self.bytes,
            spans: self.spans.get(i..).unwrap_or_default(),
        }
    }
}

fn field<'a>(bytes: &'a [u8], s: &Span) -> Field<'a> {
    let start = s.start as usize;
    let mid = start + s.name_len as usize;
    let end = mid + s.value_len as usize;
    Field {
        name: bytes.get(start..mid).unwrap_or_default(),
        value: bytes.get(mid..end).unwrap_or_default(),
        sensitive: s.sensitive,
    }
}

/// A request's header section, checked (RFC 9113 §8.3.1): the pseudo-header fields and
/// the regular fields, borrowed from the connection.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// `:scheme` (absent for CONNECT).
    pub scheme: Option<&'a [u8]>,
    /// `:authority`.
    pub authority: Option<&'a [u8]>,
    /// `:path` (absent for CONNECT; never empty otherwise).
    pub path: Option<&'a [u8]>,
    /// `:protocol` (RFC 8441 extended CONNECT; only when
    /// [`Config::enable_connect_protocol`](super::Config::enable_connect_protocol)).
    pub protocol: Option<&'a [u8]>,
    /// The `content-length` value, when present (the connection checks the body
    /// against it).
    pub content_length: Option<u64>,
    /// The regular fields (no pseudo-headers), in order.
    pub fields: Fields<'a>,
}

/// What a checked request's header section holds, as indexes into the [`HeaderBuf`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RequestInfo {
    method: Option<usize>,
    scheme: Option<usize>,
    authority: Option<usize>,
    path: Option<usize>,
    protocol: Option<usize>,
    first_regular: usize,
    pub(super) content_length: Option<u64>,
}

impl RequestInfo {
    pub(super) fn request<'a>(&self, buf: &'a HeaderBuf) -> Request<'a> {
        let f = buf.fields();
        Request {
            method: f.at(self.method).unwrap_or_default(),
            scheme: f.at(self.scheme),
            authority: f.at(self.authority),
            path: f.at(self.path),
            protocol: f.at(self.protocol),
            content_length: self.content_length,
            fields: f.from(self.first_regular),
        }
    }
}

/// A response's header section, checked (RFC 9113 §8.3.2): the status and the regular
/// fields, borrowed from the connection.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// `:status`, three digits (100..=999; never 101, which HTTP/2 does not have).
    pub status: u16,
    /// The `content-length` value, when present. The connection checks the body against
    /// it, except for responses that have no body whatever it says: to HEAD, 204 and
    /// 304 (RFC 9110 §6.4.1), whose body must be empty.
    pub content_length: Option<u64>,
    /// The regular fields (no pseudo-headers), in order.
    pub fields: Fields<'a>,
}

/// What a checked response's header section holds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ResponseInfo {
    pub(super) status: u16,
    first_regular: usize,
    pub(super) content_length: Option<u64>,
}

impl ResponseInfo {
    pub(super) fn response<'a>(&self, buf: &'a HeaderBuf) -> Response<'a> {
        Response {
            status: self.status,
            content_length: self.content_length,
            fields: buf.fields().from(self.first_regular),
        }
    }
}

/// Checks a response's header section (§8.2, §8.3.2): `:status` first and the only
/// pseudo-header, three digits, not 101; regular fields as for requests.
pub(super) fn check_response(buf: &HeaderBuf) -> Result<ResponseInfo, Malformed> {
    let mut info = ResponseInfo::default();
    let mut status = None;
    for (i, f) in buf.fields().iter().enumerate() {
        check_value(f.value)?;
        if f.name.first() == Some(&b':') {
            if i != 0 || f.name != b":status" {
                return Err("pseudo-header field other than one :status, first");
            }
            status = Some(parse_status(f.value).ok_or("invalid :status")?);
            info.first_regular = 1;
            continue;
        }
        check_regular(f.name, f.value, &mut info.content_length)?;
    }
    info.status = status.ok_or("no :status")?;
    if info.status == 101 {
        return Err("101 Switching Protocols in HTTP/2 (§8.6)");
    }
    Ok(info)
}

/// A `:status` value: three digits, 100..=999.
fn parse_status(v: &[u8]) -> Option<u16> {
    match v {
        &[a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Why a header section is malformed (a stream error PROTOCOL_ERROR, §8.1.1).
pub(super) type Malformed = &'static str;

/// Names that are connection-specific in HTTP/1.1 and malformed in HTTP/2 (§8.2.2).
const CONNECTION_SPECIFIC: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// Checks a request's header section (§8.2, §8.3.1).
pub(super) fn check_request(
    buf: &HeaderBuf,
    connect_protocol: bool,
) -> Result<RequestInfo, Malformed> {
    let mut info = RequestInfo::default();
    let fields = buf.fields();
    let mut regular = false;
    let mut hosts = 0u32;
    for (i, f) in fields.iter().enumerate() {
        check_value(f.value)?;
        if f.name.first() == Some(&b':') {
            if regular {
                return Err("pseudo-header field after a regular field");
            }
            let slot = match f.name {
                b":method" => &mut info.method,
                b":scheme" => &mut info.scheme,
                b":authority" => &mut info.authority,
                b":path" => &mut info.path,
                b":protocol" if connect_protocol => &mut info.protocol,
                _ => return Err("unknown pseudo-header field"),
            };
            if slot.replace(i).is_some() {
                return Err("repeated pseudo-header field");
            }
            info.first_regular = i + 1;
            continue;
        }
        regular = true;
        check_regular(f.name, f.value, &mut info.content_length)?;
        if f.name == b"host" {
            hosts += 1;
        }
    }
    // One Host at most, as in HTTP/1.1 (RFC 9112 §3.2): two could name two hosts to two
    // readers (a policy reading the first, an upstream the last).
    if hosts > 1 {
        return Err("several host fields");
    }
    let has = |i: Option<usize>| i.is_some();
    // §8.3.1: a Host that names another entity than :authority (SHOULD be malformed;
    // compared as bytes, case aside).
    if let (Some(authority), Some(host)) = (fields.at(info.authority), fields.get(b"host")) {
        if !authority.eq_ignore_ascii_case(host) {
            return Err("host differs from :authority");
        }
    }
    let method = fields.at(info.method).ok_or("no :method")?;
    if method == b"CONNECT" && !has(info.protocol) {
        if !has(info.authority) || has(info.scheme) || has(info.path) {
            return Err("CONNECT needs :authority and no :scheme nor :path");
        }
        return Ok(info);
    }
    if has(info.protocol) && (method != b"CONNECT" || !has(info.authority)) {
        return Err(":protocol without CONNECT and :authority");
    }
    let scheme = fields.at(info.scheme).ok_or("no :scheme")?;
    let path = fields.at(info.path).ok_or("no :path")?;
    if path.is_empty() {
        return Err("empty :path");
    }
    if (scheme == b"http" || scheme == b"https")
        && path.first() != Some(&b'/')
        && !(method == b"OPTIONS" && path == b"*")
    {
        return Err(":path neither absolute nor *");
    }
    Ok(info)
}

/// Checks a trailer section: regular fields only (§8.1).
pub(super) fn check_trailers(buf: &HeaderBuf) -> Result<(), Malformed> {
    let mut length = None;
    for f in buf.fields().iter() {
        check_value(f.value)?;
        if f.name.first() == Some(&b':') {
            return Err("pseudo-header field in trailers");
        }
        check_regular(f.name, f.value, &mut length)?;
    }
    Ok(())
}

/// A regular field's name and the fields with rules of their own (§8.2.1, §8.2.2).
fn check_regular(name: &[u8], value: &[u8], length: &mut Option<u64>) -> Result<(), Malformed> {
    check_name(name)?;
    if name == b"te" && !value.eq_ignore_ascii_case(b"trailers") {
        return Err("te other than trailers");
    }
    if name == b"content-length" {
        let n = parse_length(value).ok_or("invalid content-length")?;
        if length.replace(n).is_some_and(|m| m != n) {
            return Err("conflicting content-length");
        }
    }
    Ok(())
}

/// A regular field's name (§8.2.1, §8.2.2).
fn check_name(name: &[u8]) -> Result<(), Malformed> {
    if name.is_empty() {
        return Err("empty field name");
    }
    if !name.iter().all(|&b| NAME_OCTET[usize::from(b)]) {
        return Err("field name not lowercase or with invalid characters");
    }
    if CONNECTION_SPECIFIC.contains(&name) {
        return Err("connection-specific field");
    }
    Ok(())
}

/// The octets a field name may hold: visible ASCII (0x21..=0x7e) but uppercase letters
/// and `:` (a table: one load per octet instead of four comparisons).
const NAME_OCTET: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = !(b as u8).is_ascii_uppercase() && b != b':' as usize;
        b += 1;
    }
    t
};

/// The octets a field value must not hold: NUL, CR, LF (§8.2.1).
const VALUE_FORBIDDEN: [bool; 256] = {
    let mut t = [false; 256];
    t[0] = true;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// Whether a field value holds no NUL, CR or LF (§8.2.1).
pub(super) fn value_octets_ok(value: &[u8]) -> bool {
    !value.iter().any(|&b| VALUE_FORBIDDEN[usize::from(b)])
}

/// A field value's characters (§8.2.1).
fn check_value(value: &[u8]) -> Result<(), Malformed> {
    if !value_octets_ok(value) {
        return Err("NUL, CR or LF in a field value");
    }
    let ws = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    if ws(value.first()) || ws(value.last()) {
        return Err("whitespace around a field value");
    }
    Ok(())
}

/// A content-length value: decimal digits, at most 19 of them.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Checks the header section of a request we send, with the rules a server holds it
/// to (`buf` holds it, pseudo-headers first); whether it is a HEAD request.
pub(super) fn check_outgoing_request(buf: &HeaderBuf) -> Result<bool, Malformed> {
    let info = check_request(buf, true)?;
    let request = info.request(buf);
    Ok(request.method == b"HEAD")
}

/// Whether an application's response field name is one we may send: lowercase, valid
/// characters, not a pseudo-header, not connection-specific.
pub(super) fn sendable(name: &[u8]) -> bool {
    check_name(name).is_ok()
}

#[cfg(test)]
mod octet_tests {
    use super::*;

    #[test]
    fn the_tables_say_what_the_rules_say() {
        for b in 0..=255u8 {
            let name_ok = !(b <= 0x20 || b.is_ascii_uppercase() || b >= 0x7f || b == b':');
            assert_eq!(NAME_OCTET[usize::from(b)], name_ok, "name octet {b:#x}");
            let value_ok = !(b == 0 || b == b'\r' || b == b'\n');
            assert_eq!(
                value_octets_ok(&[b'a', b, b'a']),
                value_ok,
                "value octet {b:#x}"
            );
        }
    }
}
