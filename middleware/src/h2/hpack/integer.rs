//! Integers with an N-bit prefix (RFC 7541 §5.1).

/// The most continuation octets [`decode`] reads: five carry 35 bits, enough for any
/// `u32` after a prefix.
const MAX_CONTINUATION: usize = 5;

/// Why an integer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntError {
    /// The input ends inside the integer.
    Truncated,
    /// The integer is over `u32::MAX` or takes more than five continuation octets.
    Overflow,
}

/// Decodes an integer whose first octet is `src[0]` with a `prefix`-bit prefix (1 to 8;
/// the bits above it belong to the representation). Returns the value and the octets
/// read. Values are limited to `u32::MAX` whatever `usize` is.
pub(crate) fn decode(src: &[u8], prefix: u32) -> Result<(usize, usize), IntError> {
    let mask = (1u32 << prefix) - 1;
    let first = u32::from(*src.first().ok_or(IntError::Truncated)?) & mask;
    if first < mask {
        return Ok((first as usize, 1));
    }
    let mut value = u64::from(mask);
    for i in 0..MAX_CONTINUATION {
        let b = *src.get(1 + i).ok_or(IntError::Truncated)?;
        value += u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = u32::try_from(value).map_err(|_| IntError::Overflow)?;
            let value = usize::try_from(value).map_err(|_| IntError::Overflow)?;
            return Ok((value, 2 + i));
        }
    }
    Err(IntError::Overflow)
}

/// Appends `value` with a `prefix`-bit prefix (1 to 8); `flags` are the bits of the first
/// octet above the prefix.
pub(crate) fn encode(value: usize, prefix: u32, flags: u8, out: &mut Vec<u8>) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337; C.1.3: 42 from an octet boundary.
        for (value, prefix, bytes) in [
            (10, 5, &[0x0a][..]),
            (1337, 5, &[0x1f, 0x9a, 0x0a]),
            (42, 8, &[0x2a]),
        ] {
            let mut out = Vec::new();
            encode(value, prefix, 0, &mut out);
            assert_eq!(out, bytes);
            assert_eq!(decode(bytes, prefix), Ok((value, bytes.len())));
        }
        // Bits above the prefix are not part of the value.
        assert_eq!(decode(&[0xea], 5), Ok((10, 1)));
    }

    #[test]
    fn limits() {
        for value in [0, 30, 31, 127, 128, 16_383, 1 << 20, u32::MAX as usize] {
            for prefix in 1..=8 {
                let mut out = Vec::new();
                encode(value, prefix, 0, &mut out);
                assert_eq!(decode(&out, prefix), Ok((value, out.len())), "{value}");
            }
        }
        assert_eq!(decode(&[], 5), Err(IntError::Truncated));
        assert_eq!(decode(&[0x1f], 5), Err(IntError::Truncated));
        assert_eq!(decode(&[0x1f, 0x80, 0x80], 5), Err(IntError::Truncated));
        // u32::MAX + 1 with a 1-bit prefix.
        let mut out = Vec::new();
        encode(u32::MAX as usize + 1, 1, 0, &mut out);
        assert_eq!(decode(&out, 1), Err(IntError::Overflow));
        assert_eq!(
            decode(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f], 7),
            Err(IntError::Overflow)
        );
        // Six continuation octets, even of zeros, are refused.
        assert_eq!(
            decode(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(IntError::Overflow)
        );
    }
}
