//! Where HTTP/1.1 response bytes go ([`Sink`]): a connection's output queue, or a vector
//! (tests, benches).

use wireloop::{Bytes, Output};

use super::head_end::{field_line, head_end, HeadEnd};

/// Where response bytes go: a connection's output queue, or a vector (tests, benches).
pub(crate) trait Sink {
    fn put(&mut self, data: &[u8]);
    /// The pieces one after the other.
    fn put_parts(&mut self, parts: &[&[u8]]);
    /// A field line, `name: value`.
    fn put_field(&mut self, name: &[u8], value: &[u8]);
    /// The end of a head, then `body` (empty when none or not yet).
    fn put_head_end(&mut self, end: &HeadEnd<'_>, body: &[u8]);
    fn put_bytes(&mut self, data: Bytes);
    fn queued(&self) -> usize;
}

/// Bodies up to this size are appended with the head; larger ones are queued on their
/// own (the output's rules for large copies apply).
const SMALL_BODY: usize = 4096;

impl Sink for Output<'_> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.write(data);
    }
    fn put_parts(&mut self, parts: &[&[u8]]) {
        let mut a = self.appender();
        for p in parts {
            a.put(p);
        }
    }
    #[inline]
    fn put_field(&mut self, name: &[u8], value: &[u8]) {
        field_line(&mut self.appender(), name, value);
    }
    #[inline]
    fn put_head_end(&mut self, end: &HeadEnd<'_>, body: &[u8]) {
        let mut a = self.appender();
        head_end(&mut a, end);
        if body.len() <= SMALL_BODY {
            a.put(body);
        } else {
            self.write(body);
        }
    }
    #[inline]
    fn put_bytes(&mut self, data: Bytes) {
        self.write_bytes(data);
    }
    #[inline]
    fn queued(&self) -> usize {
        self.len()
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
    fn put_parts(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.extend_from_slice(p);
        }
    }
    fn put_field(&mut self, name: &[u8], value: &[u8]) {
        field_line(self, name, value);
    }
    fn put_head_end(&mut self, end: &HeadEnd<'_>, body: &[u8]) {
        head_end(self, end);
        self.extend_from_slice(body);
    }
    fn put_bytes(&mut self, data: Bytes) {
        self.extend_from_slice(&data);
    }
    fn queued(&self) -> usize {
        self.len()
    }
}
