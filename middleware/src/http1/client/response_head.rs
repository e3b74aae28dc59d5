//! A parsed response head ([`ResponseHead`]): the status, reason and fields, borrowed
//! from the input, and how the body is delimited ([`ResponseBody`]).

use httparse::Header;

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (a response to `HEAD`; 1xx, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

/// A parsed response head; the reason and headers borrow the input.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    pub(super) status: u16,
    pub(super) reason: &'a str,
    pub(super) minor: u8,
    pub(super) headers: HeadFields<'a>,
    pub(super) body: ResponseBody,
    pub(super) keep_alive: bool,
}

impl<'a> ResponseHead<'a> {
    /// The status code (100..=999).
    #[inline]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty).
    #[inline]
    pub fn reason(&self) -> &'a str {
        self.reason
    }

    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    #[inline]
    pub fn version_minor(&self) -> u8 {
        self.minor
    }

    /// The field section as it came (every field line, CRLFs included) when the head was
    /// read by the one-pass parser, the common case: the names and values
    /// [`headers`](ResponseHead::headers) hands out are slices of it, so a copy of it
    /// keeps them all (a proxy's one copy of a response head). `None` for a head read by
    /// the general parser (obsolete forms, non-ASCII reason phrases, more fields).
    pub fn field_section(&self) -> Option<&'a str> {
        match self.headers {
            HeadFields::Spans { block, .. } => Some(block),
            HeadFields::Parsed(_) => None,
        }
    }

    /// All header fields in order, as (name, value). The iterator borrows the head (its
    /// field offsets are not copied); the names and values borrow the input.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        match &self.headers {
            HeadFields::Parsed(h) => HeadFieldIter {
                parsed: h.iter(),
                block: "",
                spans: [].iter(),
            },
            HeadFields::Spans {
                block,
                spans,
                count,
            } => HeadFieldIter {
                parsed: [].iter(),
                block,
                spans: spans[..usize::from(*count).min(SPANS)].iter(),
            },
        }
    }

    /// Number of header field lines.
    pub fn header_count(&self) -> usize {
        match self.headers {
            HeadFields::Parsed(h) => h.len(),
            HeadFields::Spans { count, .. } => usize::from(count),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|&(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How the body is delimited.
    #[inline]
    pub fn body(&self) -> ResponseBody {
        self.body
    }

    /// `Content-Length`, if the body is delimited by it.
    pub fn content_length(&self) -> Option<u64> {
        match self.body {
            ResponseBody::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the connection can carry another request after this response (HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`; never when
    /// the body runs until the close).
    #[inline]
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether this is an interim (1xx other than 101) response: a final one follows.
    #[inline]
    pub fn is_interim(&self) -> bool {
        self.status < 200 && self.status != 101
    }

    /// Whether the server switched protocols (101): the connection's bytes after the
    /// head belong to the new protocol.
    #[inline]
    pub fn is_upgrade(&self) -> bool {
        self.status == 101
    }
}

/// Most fields of a head the strict parser takes (more go the general way).
pub(super) const SPANS: usize = 16;

/// A response head's fields: parsed into slots by httparse, or where the strict parser
/// found them in the header section (offsets into it: name start and end, value start
/// and end).
#[derive(Clone, Copy, Debug)]
pub(super) enum HeadFields<'a> {
    Parsed(&'a [Header<'a>]),
    Spans {
        /// The header section, text (the strict parser takes no other), so names are
        /// handed out with no check per field.
        block: &'a str,
        spans: [[u16; 4]; SPANS],
        count: u8,
    },
}

/// The iterator of [`ResponseHead::headers`]: the parsed fields, then the spans.
struct HeadFieldIter<'h, 'a> {
    parsed: std::slice::Iter<'a, Header<'a>>,
    block: &'a str,
    spans: std::slice::Iter<'h, [u16; 4]>,
}

impl<'a> Iterator for HeadFieldIter<'_, 'a> {
    type Item = (&'a str, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        if let Some(h) = self.parsed.next() {
            return Some((h.name, h.value));
        }
        let [n0, n1, v0, v1] = self.spans.next()?.map(usize::from);
        Some((
            self.block.get(n0..n1).unwrap_or_default(),
            self.block.as_bytes().get(v0..v1).unwrap_or_default(),
        ))
    }
}
