//! The byte-level pieces of the head parsers (requests' and responses' alike): tables of
//! the bytes a token, a target and a field value may hold, the scans that find where
//! each ends (eight bytes at a time where that pays), the `Host` value check, and small
//! helpers on field values.

/// A table of the bytes matching a pattern.
macro_rules! byte_set {
    ($($p:tt)+) => {{
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = matches!(b as u8, $($p)+);
            b += 1;
        }
        t
    }};
}

/// Which bytes are `tchar`s (RFC 9110 §5.6.2): one look-up per byte of a token.
pub(crate) static TCHAR: [bool; 256] = byte_set!(
    b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
);

/// The bytes the strict parser takes in a request target: visible ASCII.
static TARGET: [bool; 256] = byte_set!(b'!'..=b'~');

/// Field value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
static VALUE: [bool; 256] = byte_set!(b'\t' | b' '..=b'~' | 0x80..=0xff);

/// Bytes a `Host` value must not hold (whitespace, path and user-information delimiters).
static NOT_IN_HOST: [bool; 256] = byte_set!(b' ' | b'\t' | b'/' | b'?' | b'#' | b'@' | b'\\');

/// Where the run of `tchar`s from `i` ends.
#[inline(always)]
pub(crate) fn token_end(w: &[u8], mut i: usize) -> usize {
    while i < w.len() && TCHAR[w[i] as usize] {
        i += 1;
    }
    i
}

/// Whether the token `name` is `lower` (lower case letters and `-`) in any case: a
/// token's byte with bit 5 set is one of `lower`'s only if it is that letter in either
/// case (or `-` itself; CR would map to `-`, but it is no `tchar`).
#[inline(always)]
pub(crate) fn token_is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(true, |same, (&a, &b)| same & (a | 0x20 == b))
}

/// Whether `v` holds a byte a `Host` value must not (see [`NOT_IN_HOST`]): a table
/// look-up per byte for the common short value (two instructions a byte, no branch),
/// eight bytes at a time beyond, the last word overlapping the one before.
#[inline]
pub(crate) fn bad_host(v: &[u8]) -> bool {
    if v.len() <= 32 {
        return v
            .iter()
            .fold(false, |bad, &b| bad | NOT_IN_HOST[b as usize]);
    }
    let has = |x: u64, c: u8| {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y
    };
    let word_bad = |x: u64| {
        (has(x, b' ')
            | has(x, b'\t')
            | has(x, b'/')
            | has(x, b'?')
            | has(x, b'#')
            | has(x, b'@')
            | has(x, b'\\'))
            & HI
            != 0
    };
    let mut i = 0;
    while i + 8 < v.len() {
        if word(v, i).is_some_and(word_bad) {
            return true;
        }
        i += 8;
    }
    word(v, v.len() - 8).is_some_and(word_bad)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `w[i..]`, if there are eight.
#[inline]
pub(crate) fn word(w: &[u8], i: usize) -> Option<u64> {
    let a: [u8; 8] = w.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(a))
}

/// Whether every byte of `v` is a field value byte (see [`value_end`]): eight bytes at a
/// time, the last word overlapping the one before (a word with an HTAB is looked at byte
/// by byte).
#[inline]
pub(crate) fn all_value_bytes(v: &[u8]) -> bool {
    let flagged = |x: u64| {
        let del = x ^ (LO * 0x7f);
        ((x.wrapping_sub(LO * 0x20) & !x) | (del.wrapping_sub(LO) & !del)) & HI != 0
    };
    let bytes_ok = |b: &[u8]| b.iter().fold(true, |ok, &c| ok & VALUE[c as usize]);
    if v.len() < 8 {
        return bytes_ok(v);
    }
    let mut i = 0;
    while i + 8 < v.len() {
        if word(v, i).is_some_and(flagged) && !bytes_ok(&v[i..i + 8]) {
            return false;
        }
        i += 8;
    }
    let last = v.len() - 8;
    !word(v, last).is_some_and(flagged) || bytes_ok(&v[last..])
}

/// Where the run of visible ASCII bytes (`!`..=`~`) from `i` ends: eight bytes at a time,
/// the first byte below `!` or above `~` found by its high bit in the word (borrows and
/// carries only run upwards from a flagged byte, so the lowest flag is exact).
#[inline]
pub(super) fn target_end(w: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(w, i) {
        let flags = ((x.wrapping_sub(LO * 0x21) & !x) | x.wrapping_add(LO) | x) & HI;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < w.len() && TARGET[w[i] as usize] {
        i += 1;
    }
    i
}

/// Where the run of field value bytes from `i` ends (at the CR of the line, in a valid
/// head): eight bytes at a time, a control byte or DEL flagged as in [`target_end`]; an
/// HTAB is stepped over.
#[inline]
pub(crate) fn value_end(w: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(w, i) {
        let del = x ^ (LO * 0x7f);
        let flags = ((x.wrapping_sub(LO * 0x20) & !x) | (del.wrapping_sub(LO) & !del)) & HI;
        if flags == 0 {
            i += 8;
            continue;
        }
        i += (flags.trailing_zeros() / 8) as usize;
        if w[i] != b'\t' {
            return i;
        }
        i += 1;
    }
    while i < w.len() && VALUE[w[i] as usize] {
        i += 1;
    }
    i
}

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Elements of a comma-separated list, trimmed, empty ones skipped (RFC 9110 §5.6.1).
pub(crate) fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

pub(crate) fn eq(name: &str, lower: &str) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

/// `1*DIGIT` as a u64 (no sign, no spaces, no overflow).
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time `Host` check and the case-folding name match against their
    /// byte-by-byte definitions.
    #[test]
    fn host_check_and_name_match() {
        for len in (0..48).step_by(3) {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'h'; len];
                    v[at] = b;
                    assert_eq!(
                        super::bad_host(&v),
                        v.iter().any(|&c| NOT_IN_HOST[c as usize]),
                        "{v:?}"
                    );
                }
            }
        }
        for name in ["host", "expect", "upgrade", "connection"] {
            for b in 0..=255u8 {
                for at in 0..name.len() {
                    let mut n = name.as_bytes().to_vec();
                    n[at] = b;
                    if !n.iter().all(|&c| TCHAR[c as usize]) {
                        continue;
                    }
                    assert_eq!(
                        token_is(&n, name.as_bytes()),
                        n.eq_ignore_ascii_case(name.as_bytes()),
                        "{n:?}"
                    );
                }
            }
        }
    }

    /// The writer's value check, words with an overlapping last one, against the byte
    /// table and against the parser's scan.
    #[test]
    fn value_check_by_words() {
        for len in 0..40 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'v'; len];
                    v[at] = b;
                    if len > 3 {
                        v[len / 2] = b'\t';
                    }
                    let want = v.iter().all(|&c| VALUE[c as usize]);
                    assert_eq!(all_value_bytes(&v), want, "{v:?}");
                    assert_eq!(value_end(&v, 0) == v.len(), want, "{v:?}");
                }
            }
        }
    }
}
