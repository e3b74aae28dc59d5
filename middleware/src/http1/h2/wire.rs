//! A response as an HTTP/2 stream's: the [`Wire`] a [`Response`](super::super::Response)
//! writes through when its request came on an HTTP/2 stream. The head is kept as a field
//! list (names in lower case, connection-specific fields dropped) and the body as bytes
//! until the stream's flush hands them to the connection ([`StreamOut::flush`]), which
//! takes what the flow-control windows allow.

use wireloop::Bytes;

use crate::h2::conn::{Connection, SendError};
use crate::h2::hpack::Field;

use super::super::parse::trim_ows;
use super::super::response::{HeadEnd, Wire};

/// Fields of a connection's own in HTTP/1.1 that RFC 9113 §8.2.2 forbids.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// What a stream's buffer holds from the start: a usual head and a small body fit, so a
/// response costs one allocation.
const INITIAL_CAPACITY: usize = 256;

/// Bytes before each field in the buffer: its name's and its value's lengths.
const FIELD_PREFIX: usize = 8;

/// One stream's response, as written by the application and not yet handed to the
/// connection.
#[derive(Debug, Default)]
pub(crate) struct StreamOut {
    status: u16,
    /// Until the head is sent: each field (name lowercased) as its name's and value's
    /// lengths (`u32`, little endian), name, value; then, from `body_at`, the body not
    /// yet taken by the connection. One buffer for both, so that a response costs one
    /// allocation.
    buf: Vec<u8>,
    /// Where the body starts in `buf` (0 once the head is sent).
    body_at: usize,
    /// The head is complete.
    head_ready: bool,
    head_sent: bool,
    /// No body follows the head.
    no_body: bool,
    /// The body is complete.
    end: bool,
    /// END_STREAM went out.
    pub(crate) end_sent: bool,
    /// Trailer fields (laid out as the head's are), sent once the body is out.
    trailers: Vec<u8>,
}

impl StreamOut {
    fn push(&mut self, name: &str, value: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(INITIAL_CAPACITY);
        }
        push_field(&mut self.buf, name, value);
    }

    /// Body bytes waiting for the connection.
    pub(crate) fn queued_len(&self) -> usize {
        if self.head_ready {
            self.buf.len() - self.body_at
        } else {
            0
        }
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
        let trailers = !self.trailers.is_empty();
        if !self.head_sent {
            let end_stream = self.no_body || (self.end && self.queued_len() == 0 && !trailers);
            let head = HeadFields(self.buf.get(..self.body_at).unwrap_or_default());
            conn.send_head(stream, self.status, head, end_stream)?;
            self.head_sent = true;
            if end_stream {
                self.end_sent = true;
                self.buf = Vec::new();
                self.body_at = 0;
                return Ok(());
            }
            self.buf.drain(..self.body_at);
            self.body_at = 0;
        }
        if !self.buf.is_empty() {
            let n = conn.send_data(stream, &self.buf, self.end && !trailers)?;
            self.buf.drain(..n);
            if self.end && self.buf.is_empty() && !trailers {
                self.end_sent = true;
            }
        }
        if self.end && self.buf.is_empty() && !self.end_sent {
            if trailers {
                let fields: Vec<Field<'_>> = HeadFields(&self.trailers).collect();
                conn.send_trailers(stream, &fields)?;
            } else {
                conn.send_data(stream, &[], true)?;
            }
            self.end_sent = true;
        }
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

/// Appends a field to `buf` as [`HeadFields`] reads it: its name's and its value's
/// lengths (`u32`, little endian), the name lowercased, the value.
fn push_field(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    // HTTP/2 forbids whitespace at a value's ends (RFC 9113 §8.2.1), which HTTP/1.1's
    // parsers trim anyway: trimmed here, so that a peer does not reset the stream.
    let value = trim_ows(value);
    // A field cannot reach 4 GiB: the head is bounded far below by the peer's header
    // list size when it is sent.
    let (n, v) = (name.len() as u32, value.len() as u32);
    buf.extend_from_slice(&n.to_le_bytes());
    buf.extend_from_slice(&v.to_le_bytes());
    let start = buf.len();
    buf.extend_from_slice(name.as_bytes());
    buf[start..].make_ascii_lowercase();
    buf.extend_from_slice(value);
}

/// The fields of a head as [`push_field`] laid them out.
#[derive(Clone)]
struct HeadFields<'a>(&'a [u8]);

impl<'a> Iterator for HeadFields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let (lens, rest) = self.0.split_first_chunk::<FIELD_PREFIX>()?;
        let n = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
        let v = u32::from_le_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
        let (name, rest) = rest.split_at(n.min(rest.len()));
        let (value, rest) = rest.split_at(v.min(rest.len()));
        self.0 = rest;
        Some(Field::new(name, value))
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
        self.body_at = self.buf.len();
    }

    fn interim_continue(&mut self) {
        // An HTTP/2 client does not wait for a 100: its window is the permission.
    }

    fn data(&mut self, data: &[u8], _owned: Option<Bytes>, _chunked: bool) {
        if !self.no_body {
            self.buf.extend_from_slice(data);
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
            push_field(&mut self.trailers, name, value);
        }
        self.end = true;
    }

    fn queued(&self) -> usize {
        self.queued_len()
    }

    fn is_h2(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names go out lowercased and values without whitespace at their ends (RFC 9113
    /// §8.2.1), which an HTTP/1.1 response may carry.
    #[test]
    fn fields_are_laid_out_lowercased_and_trimmed() {
        let mut buf = Vec::new();
        push_field(&mut buf, "X-Thing", b" a b\t");
        push_field(&mut buf, "Empty", b"  ");
        let got: Vec<(Vec<u8>, Vec<u8>)> = HeadFields(&buf)
            .map(|f| (f.name.to_vec(), f.value.to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (b"x-thing".to_vec(), b"a b".to_vec()),
                (b"empty".to_vec(), b"".to_vec())
            ]
        );
    }
}
