//! How a response reaches its client ([`Wire`]): as HTTP/1.1 bytes into a [`Sink`] (status
//! line, fields, chunks framed here), or as the frames of an HTTP/2 stream.

use wireloop::Bytes;

use super::head_end::HeadEnd;
use super::sink::Sink;
use super::status::{put_continue, put_status_line};

/// How a response reaches its client: HTTP/1.1 bytes into a [`Sink`] (every `Sink` is a
/// `Wire`), or the frames of an HTTP/2 stream. [`Response`] decides the status, fields,
/// framing and phases; the wire only encodes them.
///
/// [`Response`]: super::Response
pub(crate) trait Wire {
    /// A head starts with `code`.
    fn status(&mut self, code: u16);
    /// A field of the head (name a token, value checked).
    fn field(&mut self, name: &str, value: &[u8]);
    /// The head is complete.
    fn end_head(&mut self, end: &HeadEnd<'_>);
    /// `100 Continue`.
    fn interim_continue(&mut self);
    /// Body bytes (`owned`: the same bytes, to queue without a copy); `chunked`: the body
    /// is chunked (an HTTP/1.1 chunk is framed around them).
    fn data(&mut self, data: &[u8], owned: Option<Bytes>, chunked: bool);
    /// The body is complete (`chunked`: the last chunk is due).
    fn end_body(&mut self, chunked: bool);
    /// A chunked body is complete, with trailer fields (names tokens, values checked):
    /// HTTP/1.1's last chunk and trailer section.
    fn end_with_trailers<'t>(&mut self, trailers: &mut dyn Iterator<Item = (&'t str, &'t [u8])>);
    /// The end of a head announcing `Content-Length: body.len()`, then that whole body.
    fn head_and_body(&mut self, end: &HeadEnd<'_>, body: &[u8]) {
        self.end_head(end);
        self.data(body, None, false);
        self.end_body(false);
    }
    /// Bytes queued for the client and not yet sent.
    fn queued(&self) -> usize;
    /// Whether this is HTTP/2 (no `101`, no `Connection` semantics).
    fn is_h2(&self) -> bool {
        false
    }
}

impl<S: Sink> Wire for S {
    #[inline]
    fn status(&mut self, code: u16) {
        put_status_line(self, code);
    }

    #[inline]
    fn field(&mut self, name: &str, value: &[u8]) {
        self.put_field(name.as_bytes(), value);
    }

    #[inline]
    fn end_head(&mut self, end: &HeadEnd<'_>) {
        self.put_head_end(end, &[]);
    }

    #[inline]
    fn head_and_body(&mut self, end: &HeadEnd<'_>, body: &[u8]) {
        self.put_head_end(end, body);
    }

    fn interim_continue(&mut self) {
        put_continue(self);
    }

    #[inline]
    fn data(&mut self, data: &[u8], owned: Option<Bytes>, chunked: bool) {
        if !chunked {
            match owned {
                Some(b) => self.put_bytes(b),
                None => self.put(data),
            }
            return;
        }
        let mut hex = [0u8; 16];
        let mut i = hex.len();
        let mut n = data.len();
        loop {
            i -= 1;
            hex[i] = b"0123456789abcdef"[n & 15];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        match owned {
            Some(b) => {
                self.put_parts(&[&hex[i..], b"\r\n"]);
                self.put_bytes(b);
                self.put(b"\r\n");
            }
            None => self.put_parts(&[&hex[i..], b"\r\n", data, b"\r\n"]),
        }
    }

    #[inline]
    fn end_body(&mut self, chunked: bool) {
        if chunked {
            self.put(b"0\r\n\r\n");
        }
    }

    fn end_with_trailers<'t>(&mut self, trailers: &mut dyn Iterator<Item = (&'t str, &'t [u8])>) {
        self.put(b"0\r\n");
        for (name, value) in trailers {
            self.field(name, value);
        }
        self.put(b"\r\n");
    }

    #[inline]
    fn queued(&self) -> usize {
        Sink::queued(self)
    }
}
