//! A response as an HTTP/2 stream's: the [`Wire`] a [`Response`](super::super::Response)
//! writes through when its request came on an HTTP/2 stream. The head is kept as a field
//! list (names in lower case, connection-specific fields dropped) and the body as bytes
//! until the stream's flush hands them to the connection ([`StreamOut::flush`]), which
//! takes what the flow-control windows allow.

use wireloop::Bytes;

use crate::h2::conn::{Connection, SendError};
use crate::h2::hpack::Field;

use super::super::response::{HeadEnd, Wire};

/// Fields of a connection's own in HTTP/1.1 that RFC 9113 §8.2.2 forbids.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The most response fields sent without a heap list of them.
const INLINE_FIELDS: usize = 48;

/// One stream's response, as written by the application and not yet handed to the
/// connection.
#[derive(Debug, Default)]
pub(crate) struct StreamOut {
    status: u16,
    /// Names (lower case) and values, one after the other.
    bytes: Vec<u8>,
    /// (name length, value length) of each field in `bytes`.
    lens: Vec<(u32, u32)>,
    /// The head is complete.
    head_ready: bool,
    head_sent: bool,
    /// No body follows the head.
    no_body: bool,
    /// Body bytes not yet taken by the connection.
    body: Vec<u8>,
    /// The body is complete.
    end: bool,
    /// END_STREAM went out.
    pub(crate) end_sent: bool,
    /// Trailer fields (as `bytes` and `lens`), sent once the body is out.
    trailers: Vec<u8>,
    trailer_lens: Vec<(u32, u32)>,
}

impl StreamOut {
    fn push(&mut self, name: &str, value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes[start..].make_ascii_lowercase();
        self.bytes.extend_from_slice(value);
        self.lens.push((name.len() as u32, value.len() as u32));
    }

    /// Body bytes waiting for the connection.
    pub(crate) fn queued_len(&self) -> usize {
        self.body.len()
    }

    /// Whether a response the writer calls complete never ended its body (aborted, or
    /// short of its length): its stream must be reset.
    pub(crate) fn aborted(&self) -> bool {
        !self.end && !self.no_body
    }

    /// Whether everything of the response went to the connection.
    pub(crate) fn is_sent(&self) -> bool {
        self.end_sent
    }

    /// Hands what the connection takes now to it: the head, then as much of the body as
    /// the windows and its output room allow. `Err` if the stream can send no more (it
    /// was reset).
    pub(crate) fn flush(&mut self, conn: &mut Connection, stream: u32) -> Result<(), SendError> {
        if self.end_sent || !self.head_ready {
            return Ok(());
        }
        let trailers = !self.trailer_lens.is_empty();
        if !self.head_sent {
            let end_stream = self.no_body || (self.end && self.body.is_empty() && !trailers);
            let mut inline = [Field::new(b"", b""); INLINE_FIELDS];
            let mut heap = Vec::new();
            let fields: &[Field<'_>] = if self.lens.len() <= INLINE_FIELDS {
                fill(&self.bytes, &self.lens, |i, f| inline[i] = f);
                &inline[..self.lens.len()]
            } else {
                fill(&self.bytes, &self.lens, |_, f| heap.push(f));
                &heap
            };
            conn.send_headers(stream, self.status, fields, end_stream)?;
            self.head_sent = true;
            self.bytes = Vec::new();
            self.lens = Vec::new();
            if end_stream {
                self.end_sent = true;
                self.body = Vec::new();
                return Ok(());
            }
        }
        if !self.body.is_empty() {
            let n = conn.send_data(stream, &self.body, self.end && !trailers)?;
            self.body.drain(..n);
            if self.end && self.body.is_empty() && !trailers {
                self.end_sent = true;
            }
        }
        if self.end && self.body.is_empty() && !self.end_sent {
            if trailers {
                let mut fields = Vec::with_capacity(self.trailer_lens.len());
                fill(&self.trailers, &self.trailer_lens, |_, f| fields.push(f));
                conn.send_trailers(stream, &fields)?;
            } else {
                conn.send_data(stream, &[], true)?;
            }
            self.end_sent = true;
        }
        if self.body.is_empty() && self.body.capacity() > 64 * 1024 {
            self.body = Vec::new();
        }
        Ok(())
    }
}

fn fill<'a>(bytes: &'a [u8], lens: &[(u32, u32)], mut put: impl FnMut(usize, Field<'a>)) {
    let mut at = 0;
    for (i, &(n, v)) in lens.iter().enumerate() {
        let (n, v) = (n as usize, v as usize);
        let name = bytes.get(at..at + n).unwrap_or_default();
        let value = bytes.get(at + n..at + n + v).unwrap_or_default();
        put(i, Field::new(name, value));
        at += n + v;
    }
}

impl Wire for StreamOut {
    fn status(&mut self, code: u16) {
        self.status = code;
    }

    fn field(&mut self, name: &str, value: &[u8]) {
        if CONNECTION_SPECIFIC
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
            || (name.eq_ignore_ascii_case("te") && !value.eq_ignore_ascii_case(b"trailers"))
        {
            return;
        }
        self.push(name, value);
    }

    fn end_head(&mut self, end: &HeadEnd<'_>) {
        if let Some(d) = end.date {
            self.push("date", d.value().as_bytes());
        }
        if let Some(n) = end.length {
            self.push("content-length", itoa::Buffer::new().format(n).as_bytes());
        }
        self.no_body = end.no_body;
        self.head_ready = true;
    }

    fn interim_continue(&mut self) {
        // An HTTP/2 client does not wait for a 100: its window is the permission.
    }

    fn data(&mut self, data: &[u8], _owned: Option<Bytes>, _chunked: bool) {
        if !self.no_body {
            self.body.extend_from_slice(data);
        }
    }

    fn end_body(&mut self, _chunked: bool) {
        self.end = true;
    }

    fn end_with_trailers<'t>(&mut self, trailers: &mut dyn Iterator<Item = (&'t str, &'t [u8])>) {
        for (name, value) in trailers {
            if CONNECTION_SPECIFIC
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name))
                || name.eq_ignore_ascii_case("te")
            {
                continue;
            }
            let start = self.trailers.len();
            self.trailers.extend_from_slice(name.as_bytes());
            self.trailers[start..].make_ascii_lowercase();
            self.trailers.extend_from_slice(value);
            self.trailer_lens
                .push((name.len() as u32, value.len() as u32));
        }
        self.end = true;
    }

    fn queued(&self) -> usize {
        self.body.len()
    }

    fn is_h2(&self) -> bool {
        true
    }
}
