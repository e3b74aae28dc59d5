//! The 9-byte frame header (RFC 9113 §4.1).

use super::kind::Kind;

/// Length of a frame header in bytes.
pub const HEAD_LEN: usize = 9;

/// Largest frame payload the 24-bit length field can carry (2^24-1); also the largest
/// SETTINGS_MAX_FRAME_SIZE.
pub const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;

/// The SETTINGS_MAX_FRAME_SIZE every endpoint starts with and the smallest it may
/// advertise (2^14).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

/// Mask of the 31-bit stream identifier (the top bit is reserved, §4.1).
pub const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// A frame header.
///
/// Stream identifiers are plain `u32`s throughout this module, always 31-bit: the
/// reserved bit is cleared on decoding (it "MUST be ignored when receiving", §4.1) and
/// written as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length (24 bits).
    pub len: u32,
    /// Frame type.
    pub kind: Kind,
    /// Flags, all 8 bits as received (unknown flags are kept; the decoder ignores them).
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: u32,
}

impl Head {
    /// Reads a header from the first [`HEAD_LEN`] bytes of `buf`, or `None` if `buf` is
    /// shorter.
    pub fn parse(buf: &[u8]) -> Option<Head> {
        let b: &[u8; HEAD_LEN] = buf.get(..HEAD_LEN)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: Kind(b[3]),
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & STREAM_ID_MASK,
        })
    }

    /// The header's wire form.
    ///
    /// # Panics
    ///
    /// If `len` is over [`MAX_FRAME_SIZE_LIMIT`] (a caller's bug: no frame can be that
    /// long). The stream id's reserved bit is cleared.
    pub fn to_bytes(&self) -> [u8; HEAD_LEN] {
        assert!(
            self.len <= MAX_FRAME_SIZE_LIMIT,
            "HTTP/2 frame payload of {} bytes is over 2^24-1",
            self.len
        );
        let [_, l0, l1, l2] = self.len.to_be_bytes();
        let [s0, s1, s2, s3] = (self.stream_id & STREAM_ID_MASK).to_be_bytes();
        [l0, l1, l2, self.kind.0, self.flags, s0, s1, s2, s3]
    }

    /// Whether every bit of `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// The whole frame's length, header included.
    pub fn frame_len(&self) -> usize {
        HEAD_LEN + self.len as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reserved_bit() {
        let h = Head {
            len: 0x01_02_03,
            kind: Kind::HEADERS,
            flags: 0x25,
            stream_id: 0x7fff_fffe,
        };
        let b = h.to_bytes();
        assert_eq!(b, [1, 2, 3, 1, 0x25, 0x7f, 0xff, 0xff, 0xfe]);
        assert_eq!(Head::parse(&b), Some(h));
        // The reserved bit is ignored on receipt and never sent.
        let mut r = b;
        r[5] |= 0x80;
        assert_eq!(Head::parse(&r), Some(h));
        let sent = Head {
            stream_id: 0x8000_0001,
            ..h
        }
        .to_bytes();
        assert_eq!(sent[5..], [0, 0, 0, 1]);
        assert_eq!(Head::parse(&b[..8]), None);
        assert_eq!(h.frame_len(), 9 + 0x01_02_03);
        assert!(h.has(0x21) && !h.has(0x08));
    }

    #[test]
    #[should_panic(expected = "over 2^24-1")]
    fn too_long_to_encode() {
        let _ = Head {
            len: 1 << 24,
            kind: Kind::DATA,
            flags: 0,
            stream_id: 1,
        }
        .to_bytes();
    }
}
