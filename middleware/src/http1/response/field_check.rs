//! The checks a writer makes of a field it is given: the name a token, the value free of
//! control bytes but HTAB (so that no field can split a head).

use super::super::parse::all_value_bytes;

#[inline]
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().fold(true, |ok, b| ok & TOKEN[b as usize])
}

/// Which bytes are `tchar`s (RFC 9110 §5.6.2): one look-up per byte of a field name.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'
            | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        b += 1;
    }
    t
};

#[inline]
pub(crate) fn valid_value(value: &[u8]) -> bool {
    all_value_bytes(value)
}
