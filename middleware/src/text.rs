//! Bytes as text without a second look: the one place of this crate with `unsafe`.
//!
//! The HTTP/1.1 parsers hand out the method, target and field names of a head as `&str`.
//! `str::from_utf8` on a short head costs more than the parse of it (a keep-alive request's
//! line and field section: about 130 instructions of some 2,300 per request, counted with
//! `benches/load/instr.sh ka`), while an ASCII check runs a word at a time; ASCII is UTF-8.

#![allow(unsafe_code)]

/// `b` as text if it is all ASCII (`None` otherwise: the caller decides whether to look
/// for wider UTF-8).
#[inline(always)]
pub(crate) fn ascii(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: every byte is below 0x80 (checked on the line above), so `b` is valid
        // UTF-8: each byte is a one-byte code point.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// `b` as text: the ASCII check first, `str::from_utf8` only when a byte is not ASCII.
#[inline(always)]
pub(crate) fn utf8(b: &[u8]) -> Option<&str> {
    match ascii(b) {
        Some(s) => Some(s),
        None => std::str::from_utf8(b).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_only_when_every_byte_is() {
        assert_eq!(ascii(b""), Some(""));
        assert_eq!(ascii(b"GET / HTTP/1.1"), Some("GET / HTTP/1.1"));
        assert_eq!(ascii(b"\x00\x7f"), Some("\u{0}\u{7f}"));
        assert_eq!(ascii("é".as_bytes()), None);
        assert_eq!(ascii(b"abc\x80"), None);
    }

    #[test]
    fn utf8_takes_wider_text_and_refuses_the_rest() {
        assert_eq!(utf8(b"Host: a"), Some("Host: a"));
        assert_eq!(utf8("x: é".as_bytes()), Some("x: é"));
        assert_eq!(utf8(b"x: \xff"), None);
        assert_eq!(utf8(b"0123456789abcdef\xc3"), None);
    }
}
