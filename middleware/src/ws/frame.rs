//! Sans-IO frame headers (RFC 6455 §5.2) and masking.
//!
//! [`decode_header`] reads a frame header from the bytes received so far, httparse style:
//! [`Status::Partial`] until the whole header (2 to 14 bytes) is there, then the header
//! and its length. Payload bytes are left to the caller, which may take them in pieces.
//! [`encode_header`] writes a header, [`apply_mask`] (un)masks a payload in place,
//! eight bytes at a time, continuing at any offset into the payload.

use std::fmt;

use crate::codec::Status;

/// Longest frame header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
pub const MAX_HEADER: usize = 14;

/// Longest control frame payload (ping, pong, close).
pub const MAX_CONTROL: usize = 125;

/// A frame's opcode (4 bits). Values other than the named ones are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opcode(pub u8);

impl Opcode {
    /// Continues a fragmented message.
    pub const CONTINUATION: Opcode = Opcode(0x0);
    /// Starts a text message.
    pub const TEXT: Opcode = Opcode(0x1);
    /// Starts a binary message.
    pub const BINARY: Opcode = Opcode(0x2);
    /// Close (control).
    pub const CLOSE: Opcode = Opcode(0x8);
    /// Ping (control).
    pub const PING: Opcode = Opcode(0x9);
    /// Pong (control).
    pub const PONG: Opcode = Opcode(0xA);

    /// Control frames have the high bit of the opcode set.
    pub fn is_control(self) -> bool {
        self.0 & 0x8 != 0
    }

    /// Reserved opcodes: 0x3-0x7 and 0xB-0xF.
    pub fn is_reserved(self) -> bool {
        !matches!(self.0, 0x0..=0x2 | 0x8..=0xA)
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit: last frame of a message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (non-zero only with an extension).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the payload is masked (always from a client).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub len: u64,
}

/// A header that can never be valid. (The other rules — reserved bits and opcodes,
/// masking, control frame sizes — are checked by the protocol state machine.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A 64-bit payload length with its most significant bit set (RFC 6455 §5.2).
    LengthOverflow,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LengthOverflow => f.write_str("frame length has its top bit set"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes the frame header at the start of `buf`: `Complete((header, header_len))`, or
/// `Partial` if `buf` does not hold all of it yet.
#[inline]
pub fn decode_header(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(Status::Partial);
    };
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(Status::Partial),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                if n >> 63 != 0 {
                    return Err(FrameError::LengthOverflow);
                }
                (n, 10)
            }
            None => return Ok(Status::Partial),
        },
        n => (n as u64, 2),
    };
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else {
            return Ok(Status::Partial);
        };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Status::Complete((
        FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: Opcode(b0 & 0x0F),
            mask,
            len,
        },
        at,
    )))
}

/// Writes a header for a frame (no reserved bits) into `out`, returning its length.
#[inline]
pub fn encode_header(
    out: &mut [u8; MAX_HEADER],
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    len: u64,
) -> usize {
    out[0] = (fin as u8) << 7 | (opcode.0 & 0x0F);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut at = if len < 126 {
        out[1] = m | len as u8;
        2
    } else if len <= u16::MAX as u64 {
        out[1] = m | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = m | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(k) = mask {
        out[at..at + 4].copy_from_slice(&k);
        at += 4;
    }
    at
}

/// XORs `data` with the masking `key`, as if `data` started `offset` bytes into the
/// payload (masking and unmasking are the same operation). Eight bytes per step.
#[inline]
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let r = offset % 4;
    let k = [key[r], key[(r + 1) % 4], key[(r + 2) % 4], key[(r + 3) % 4]];
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(a) ^ word).to_ne_bytes());
    }
    // The tail starts at a multiple of 8 from `data`'s start, so the key phase is `k`'s.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

/// Appends `src` to `dst`, masked with `key` from payload offset `offset`.
#[inline]
pub fn extend_masked(dst: &mut Vec<u8>, src: &[u8], key: Option<[u8; 4]>, offset: usize) {
    let start = dst.len();
    dst.extend_from_slice(src);
    if let Some(key) = key {
        apply_mask(&mut dst[start..], key, offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn mask_matches_naive_at_every_offset_and_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            for off in 0..9 {
                let src: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let mut a = src.clone();
                let mut b = src.clone();
                apply_mask(&mut a, key, off);
                naive(&mut b, key, off);
                assert_eq!(a, b, "len {len} off {off}");
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_mask_at_once() {
        let key = [9, 8, 7, 6];
        let src: Vec<u8> = (0..100u8).collect();
        let mut whole = src.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..src.len() {
            let mut v = Vec::new();
            extend_masked(&mut v, &src[..cut], Some(key), 0);
            extend_masked(&mut v, &src[cut..], Some(key), cut);
            assert_eq!(v, whole, "cut {cut}");
        }
    }

    /// `headers! { name: bytes => expected; }` with `expected` a `Result<Status<..>>`.
    macro_rules! headers {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(decode_header($input), $want);
            }
        )*};
    }

    fn h(fin: bool, rsv: u8, op: u8, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode: Opcode(op),
            mask,
            len,
        }
    }

    headers! {
        empty: b"" => Ok(Status::Partial);
        one_byte: b"\x81" => Ok(Status::Partial);
        small_text: b"\x81\x05hello" => Ok(Status::Complete((h(true, 0, 1, None, 5), 2)));
        masked: b"\x82\x83\x01\x02\x03\x04" => Ok(Status::Complete((h(true, 0, 2, Some([1, 2, 3, 4]), 3), 6)));
        mask_partial: b"\x82\x83\x01\x02\x03" => Ok(Status::Partial);
        len16: b"\x01\x7e\x01\x00" => Ok(Status::Complete((h(false, 0, 1, None, 256), 4)));
        len16_partial: b"\x01\x7e\x01" => Ok(Status::Partial);
        len64: b"\x02\x7f\x00\x00\x00\x00\x00\x01\x00\x00" => Ok(Status::Complete((h(false, 0, 2, None, 65536), 10)));
        len64_partial: b"\x02\x7f\x00\x00\x00\x00" => Ok(Status::Partial);
        len64_msb: b"\x02\x7f\x80\x00\x00\x00\x00\x00\x00\x00" => Err(FrameError::LengthOverflow);
        rsv_bits: b"\xf9\x00" => Ok(Status::Complete((h(true, 7, 9, None, 0), 2)));
    }

    #[test]
    fn encode_decode_round_trip() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut buf = [0u8; MAX_HEADER];
                let n = encode_header(&mut buf, true, Opcode::BINARY, mask, len);
                let want = h(true, 0, 2, mask, len);
                assert_eq!(decode_header(&buf[..n]), Ok(Status::Complete((want, n))));
            }
        }
    }
}
