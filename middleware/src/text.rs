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
    if is_ascii(b) {
        // SAFETY: every byte is below 0x80 (checked on the line above), so `b` is valid
        // UTF-8: each byte is a one-byte code point.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// Whether every byte of `b` is below 0x80: the high bits of all its words OR-ed
/// together, the last word overlapping the one before (`<[u8]>::is_ascii` aligns its
/// reads first, which costs more on a head's short pieces).
#[inline(always)]
fn is_ascii(b: &[u8]) -> bool {
    let word = |i: usize| {
        let w: [u8; 8] = b[i..i + 8].try_into().unwrap_or_default();
        u64::from_le_bytes(w)
    };
    if b.len() < 8 {
        return b.iter().fold(0, |acc, &c| acc | c) < 0x80;
    }
    let mut acc = word(b.len() - 8);
    let mut i = 0;
    while i + 8 < b.len() {
        acc |= word(i);
        i += 8;
    }
    acc & 0x8080_8080_8080_8080 == 0
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
        for len in 0..40 {
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = 0x80;
                assert_eq!(ascii(&v), None, "{len} {at}");
                v[at] = 0x7f;
                assert!(ascii(&v).is_some(), "{len} {at}");
            }
        }
    }

    #[test]
    fn utf8_takes_wider_text_and_refuses_the_rest() {
        assert_eq!(utf8(b"Host: a"), Some("Host: a"));
        assert_eq!(utf8("x: é".as_bytes()), Some("x: é"));
        assert_eq!(utf8(b"x: \xff"), None);
        assert_eq!(utf8(b"0123456789abcdef\xc3"), None);
    }
}
