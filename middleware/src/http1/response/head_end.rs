//! What ends a response head ([`HeadEnd`]: `Date`, the framing field, `Connection`, the
//! empty line), and the HTTP/1.1 bytes of it and of a field line, for either kind of
//! sink.

use wireloop::Appender;

use super::super::date::HttpDate;

/// What ends a response head: the framing and connection fields the writer adds.
pub(crate) struct HeadEnd<'a> {
    /// The `Date` field line (`Date: ...\r\n`), unless the application gave its own.
    pub(crate) date: Option<&'a HttpDate>,
    /// `Content-Length` to send, if the body is sized.
    pub(crate) length: Option<u64>,
    /// The body is chunked (HTTP/1.1) or streamed without a length (HTTP/2).
    pub(crate) chunked: bool,
    /// The `Connection` field of an HTTP/1.x head.
    pub(crate) connection: Option<&'static [u8]>,
    /// No body follows (1xx, 204, 304, `HEAD`, or an empty sized body): an HTTP/2
    /// stream ends with its head.
    #[allow(dead_code)] // read by the HTTP/2 wire
    pub(crate) no_body: bool,
}

/// Appends bytes: the two kinds of sink share the code that writes heads.
pub(super) trait Put {
    fn put(&mut self, data: &[u8]);
}

impl Put for Appender<'_> {
    #[inline(always)]
    fn put(&mut self, data: &[u8]) {
        Appender::put(self, data);
    }
}

impl Put for Vec<u8> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
}

#[inline(always)]
pub(super) fn field_line<P: Put>(p: &mut P, name: &[u8], value: &[u8]) {
    p.put(name);
    p.put(b": ");
    p.put(value);
    p.put(b"\r\n");
}

/// `Date`, the framing field, `Connection`, the empty line.
#[inline(always)]
pub(super) fn head_end<P: Put>(p: &mut P, end: &HeadEnd<'_>) {
    let mut digits = itoa::Buffer::new();
    match (end.date, end.length) {
        // The common case: one piece for the date line and the next field's name.
        (Some(d), Some(n)) => {
            p.put(d.line_and_length());
            p.put(digits.format(n).as_bytes());
        }
        (None, Some(n)) => {
            p.put(b"Content-Length: ");
            p.put(digits.format(n).as_bytes());
        }
        (d, None) => {
            if let Some(d) = d {
                p.put(d.header_line());
            }
            if end.chunked {
                p.put(b"Transfer-Encoding: chunked");
            }
        }
    }
    let framing = end.length.is_some() || end.chunked;
    let tail: &[u8] = match end.connection {
        None => b"\r\n\r\n",
        Some(b"close") => b"\r\nConnection: close\r\n\r\n",
        Some(b"keep-alive") => b"\r\nConnection: keep-alive\r\n\r\n",
        Some(b"Upgrade") => b"\r\nConnection: Upgrade\r\n\r\n",
        Some(other) => {
            if framing {
                p.put(b"\r\n");
            }
            p.put(b"Connection: ");
            p.put(other);
            p.put(b"\r\n\r\n");
            return;
        }
    };
    p.put(if framing { tail } else { &tail[2..] });
}
