//! Length-prefixed frames: a fixed-width unsigned length (1, 2, 4 or 8 bytes, big- or
//! little-endian), then that many bytes of payload.
//!
//! ```
//! use wireloop_middleware::codec::{ByteOrder, HeaderWidth, LengthPrefixed, Status};
//!
//! let codec = LengthPrefixed::new()
//!     .width(HeaderWidth::U16)
//!     .byte_order(ByteOrder::Little)
//!     .max_frame(1024);
//! let mut wire = Vec::new();
//! codec.encode(b"hello", &mut wire).unwrap();
//! assert_eq!(wire, b"\x05\x00hello");
//! assert_eq!(codec.decode(&wire), Ok(Status::Complete((&b"hello"[..], 7))));
//! assert_eq!(codec.decode(&wire[..4]), Ok(Status::Partial));
//! ```
//!
//! A length over [`max_frame`](LengthPrefixed::max_frame) is an error as soon as the
//! header has arrived ([`FrameError::TooLong`]), so a peer cannot make the connection
//! buffer a huge frame; the handler should close the connection.

use std::fmt;

use super::{Sink, Status};

/// Size of the length header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderWidth {
    /// One byte: frames up to 255 bytes.
    U8,
    /// Two bytes: frames up to 65 535 bytes.
    U16,
    /// Four bytes (the default).
    U32,
    /// Eight bytes.
    U64,
}

impl HeaderWidth {
    /// The header's size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            HeaderWidth::U8 => 1,
            HeaderWidth::U16 => 2,
            HeaderWidth::U32 => 4,
            HeaderWidth::U64 => 8,
        }
    }

    /// The width of `n` bytes, if `n` is 1, 2, 4 or 8.
    pub const fn from_bytes(n: usize) -> Option<HeaderWidth> {
        match n {
            1 => Some(HeaderWidth::U8),
            2 => Some(HeaderWidth::U16),
            4 => Some(HeaderWidth::U32),
            8 => Some(HeaderWidth::U64),
            _ => None,
        }
    }

    /// The largest value the header can hold.
    pub const fn max_value(self) -> u64 {
        match self {
            HeaderWidth::U8 => u8::MAX as u64,
            HeaderWidth::U16 => u16::MAX as u64,
            HeaderWidth::U32 => u32::MAX as u64,
            HeaderWidth::U64 => u64::MAX,
        }
    }
}

/// Byte order of the length header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Most significant byte first, "network order" (the default).
    Big,
    /// Least significant byte first.
    Little,
}

/// Why a frame cannot be decoded or encoded. Decoding errors are final for the stream:
/// the framing is lost, so close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The payload is longer than the codec allows (`max_frame`, or what the header width
    /// can express). `len` is the payload length the header announced (or the payload
    /// given to the encoder).
    TooLong {
        /// Announced (or given) payload length.
        len: u64,
        /// The codec's limit.
        max: u64,
    },
    /// With [`length_includes_header`](LengthPrefixed::length_includes_header), a length
    /// field smaller than the header itself.
    LengthUnderHeader {
        /// The length field's value.
        len: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooLong { len, max } => {
                write!(f, "frame of {len} bytes over the limit of {max} bytes")
            }
            FrameError::LengthUnderHeader { len } => {
                write!(f, "frame length {len} is shorter than its own header")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A length-prefixed frame codec: settings only, no state, `Copy`. Build it with the
/// chained setters; the defaults are a 4-byte big-endian length that counts the payload
/// alone, and frames up to 1 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    width: HeaderWidth,
    order: ByteOrder,
    max_frame: usize,
    includes_header: bool,
}

impl Default for LengthPrefixed {
    fn default() -> LengthPrefixed {
        LengthPrefixed::new()
    }
}

/// The default [`LengthPrefixed::max_frame`]: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

impl LengthPrefixed {
    /// 4-byte big-endian length of the payload alone, frames up to [`DEFAULT_MAX_FRAME`].
    pub const fn new() -> LengthPrefixed {
        LengthPrefixed {
            width: HeaderWidth::U32,
            order: ByteOrder::Big,
            max_frame: DEFAULT_MAX_FRAME,
            includes_header: false,
        }
    }

    /// Sets the header width.
    pub const fn width(mut self, width: HeaderWidth) -> LengthPrefixed {
        self.width = width;
        self
    }

    /// Sets the header's byte order.
    pub const fn byte_order(mut self, order: ByteOrder) -> LengthPrefixed {
        self.order = order;
        self
    }

    /// Sets the largest payload accepted (decoding) or produced (encoding), in bytes,
    /// header not counted. Keep it under the server's `max_input`, or a frame near the
    /// limit closes the connection with an input-limit error instead.
    pub const fn max_frame(mut self, bytes: usize) -> LengthPrefixed {
        self.max_frame = bytes;
        self
    }

    /// Whether the length field counts the header's own bytes too (some protocols do).
    pub const fn length_includes_header(mut self, yes: bool) -> LengthPrefixed {
        self.includes_header = yes;
        self
    }

    /// The header width.
    pub const fn header_width(&self) -> HeaderWidth {
        self.width
    }

    /// The largest payload this codec accepts: `max_frame`, or less when the header width
    /// cannot express it.
    pub fn max_payload(&self) -> u64 {
        let by_width = if self.includes_header {
            self.width.max_value() - self.width.bytes() as u64
        } else {
            self.width.max_value()
        };
        (self.max_frame as u64).min(by_width)
    }

    /// Decodes one frame from the start of `input`: `Complete((payload, consumed))` where
    /// `payload` borrows `input` and `consumed` is header plus payload (the payload is
    /// `input[consumed - payload.len()..consumed]`); `Partial` if the header or the
    /// payload has not fully arrived. An over-long frame is refused as soon as its header
    /// is complete.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Status<(&'a [u8], usize)>, FrameError> {
        let w = self.width.bytes();
        let Some(header) = input.get(..w) else {
            return Ok(Status::Partial);
        };
        let mut raw = [0u8; 8];
        let field = match self.order {
            ByteOrder::Big => {
                raw[8 - w..].copy_from_slice(header);
                u64::from_be_bytes(raw)
            }
            ByteOrder::Little => {
                raw[..w].copy_from_slice(header);
                u64::from_le_bytes(raw)
            }
        };
        let len = if self.includes_header {
            match field.checked_sub(w as u64) {
                Some(n) => n,
                None => return Err(FrameError::LengthUnderHeader { len: field }),
            }
        } else {
            field
        };
        let max = self.max_payload();
        if len > max {
            return Err(FrameError::TooLong { len, max });
        }
        // `len <= max_frame`, a `usize`; the sum can only overflow for absurd limits.
        let Some(total) = (len as usize).checked_add(w) else {
            return Err(FrameError::TooLong { len, max });
        };
        match input.get(w..total) {
            Some(payload) => Ok(Status::Complete((payload, total))),
            None => Ok(Status::Partial),
        }
    }

    /// The header for a payload of `len` bytes (write it, then the payload: with
    /// [`Conn::write_bytes`](wireloop::Conn::write_bytes) the payload need not be copied).
    pub fn header(&self, len: usize) -> Result<FrameHeader, FrameError> {
        let max = self.max_payload();
        if len as u64 > max {
            return Err(FrameError::TooLong {
                len: len as u64,
                max,
            });
        }
        let w = self.width.bytes();
        let field = len as u64 + if self.includes_header { w as u64 } else { 0 };
        let mut bytes = [0u8; 8];
        match self.order {
            ByteOrder::Big => bytes[..w].copy_from_slice(&field.to_be_bytes()[8 - w..]),
            ByteOrder::Little => bytes[..w].copy_from_slice(&field.to_le_bytes()[..w]),
        }
        Ok(FrameHeader {
            bytes,
            len: w as u8,
        })
    }

    /// Writes a frame (header, then `payload`) into `out`. Nothing is written if the
    /// payload is over the limit.
    pub fn encode(&self, payload: &[u8], mut out: impl Sink) -> Result<(), FrameError> {
        let h = self.header(payload.len())?;
        out.put(&h);
        out.put(payload);
        Ok(())
    }
}

/// An encoded length header (1 to 8 bytes); derefs to its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    bytes: [u8; 8],
    len: u8,
}

impl std::ops::Deref for FrameHeader {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BE4: LengthPrefixed = LengthPrefixed::new();

    /// Decodes every frame of `input` with `codec`: the payloads and what was left over
    /// (`Ok`), or the first error.
    fn decode_all(
        codec: LengthPrefixed,
        input: &[u8],
    ) -> Result<(Vec<Vec<u8>>, usize), FrameError> {
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Status::Complete((p, n)) = codec.decode(&input[pos..])? {
            frames.push(p.to_vec());
            pos += n;
        }
        Ok((frames, input.len() - pos))
    }

    /// `ok! { name: codec, input => [payloads], leftover; }`: decodes to these payloads
    /// (also when the input is cut in two anywhere), leaving `leftover` bytes, and the
    /// payloads re-encode to the input.
    macro_rules! ok {
        ($($name:ident: $codec:expr, $input:expr => [$($frame:expr),*], $left:expr;)*) => {$(
            #[test]
            fn $name() {
                let codec: LengthPrefixed = $codec;
                let input: &[u8] = $input;
                let want: Vec<Vec<u8>> = vec![$($frame.to_vec()),*];
                assert_eq!(decode_all(codec, input), Ok((want.clone(), $left)));
                let mut wire = Vec::new();
                for f in &want {
                    codec.encode(f, &mut wire).unwrap();
                }
                assert_eq!(&wire[..], &input[..input.len() - $left]);
                for cut in 0..=input.len() {
                    let mut got = Vec::new();
                    let mut buf = input[..cut].to_vec();
                    for more in [&[][..], &input[cut..]] {
                        buf.extend_from_slice(more);
                        let mut pos = 0;
                        while let Status::Complete((p, n)) = codec.decode(&buf[pos..]).unwrap() {
                            got.push(p.to_vec());
                            pos += n;
                        }
                        buf.drain(..pos);
                    }
                    assert_eq!(got, want, "cut at {cut}");
                }
            }
        )*};
    }

    /// `err! { name: codec, input => error; }`: the first undecodable frame's error.
    macro_rules! err {
        ($($name:ident: $codec:expr, $input:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(decode_all($codec, $input), Err($err));
            }
        )*};
    }

    ok! {
        be4_one: BE4, b"\0\0\0\x03abc" => [b"abc"], 0;
        be4_empty_frame: BE4, b"\0\0\0\0" => [b""], 0;
        be4_pipelined: BE4, b"\0\0\0\x01a\0\0\0\x02bc\0\0\0\0" => [b"a", b"bc", b""], 0;
        be4_partial_header: BE4, b"\0\0\0\x01a\0\0" => [b"a"], 2;
        be4_partial_payload: BE4, b"\0\0\0\x05abc" => [], 7;
        nothing: BE4, b"" => [], 0;
        u8_width: BE4.width(HeaderWidth::U8), b"\x02hi\x00\x01!" => [b"hi", b"", b"!"], 0;
        u8_max: BE4.width(HeaderWidth::U8), &[&[255u8][..], &[7u8; 255]].concat() => [[7u8; 255]], 0;
        u16_le: BE4.width(HeaderWidth::U16).byte_order(ByteOrder::Little),
            b"\x03\x00abc" => [b"abc"], 0;
        u16_be: BE4.width(HeaderWidth::U16), b"\x00\x03abc" => [b"abc"], 0;
        u32_le: BE4.byte_order(ByteOrder::Little), b"\x02\0\0\0hi" => [b"hi"], 0;
        u64_be: BE4.width(HeaderWidth::U64), b"\0\0\0\0\0\0\0\x02hi" => [b"hi"], 0;
        u64_le: BE4.width(HeaderWidth::U64).byte_order(ByteOrder::Little),
            b"\x02\0\0\0\0\0\0\0hi" => [b"hi"], 0;
        includes_header: BE4.length_includes_header(true), b"\0\0\0\x06hi\0\0\0\x04" => [b"hi", b""], 0;
        includes_header_u8: BE4.width(HeaderWidth::U8).length_includes_header(true),
            b"\x01\x03ab" => [b"", b"ab"], 0;
        at_limit: BE4.max_frame(3), b"\0\0\0\x03abc" => [b"abc"], 0;
    }

    err! {
        over_limit: BE4.max_frame(3), b"\0\0\0\x04" => FrameError::TooLong { len: 4, max: 3 };
        over_limit_after_frames: BE4.max_frame(3), b"\0\0\0\x01a\0\0\0\x09" =>
            FrameError::TooLong { len: 9, max: 3 };
        huge_u64: BE4.width(HeaderWidth::U64), b"\xff\xff\xff\xff\xff\xff\xff\xff" =>
            FrameError::TooLong { len: u64::MAX, max: DEFAULT_MAX_FRAME as u64 };
        huge_u64_unlimited: BE4.width(HeaderWidth::U64).max_frame(usize::MAX),
            b"\xff\xff\xff\xff\xff\xff\xff\xff" =>
            FrameError::TooLong { len: u64::MAX, max: usize::MAX as u64 };
        under_header: BE4.length_includes_header(true), b"\0\0\0\x03abc" =>
            FrameError::LengthUnderHeader { len: 3 };
        includes_header_limit: BE4.length_includes_header(true).max_frame(2), b"\0\0\0\x07" =>
            FrameError::TooLong { len: 3, max: 2 };
    }

    #[test]
    fn encode_limits() {
        let mut out = Vec::new();
        assert_eq!(
            BE4.max_frame(2).encode(b"abc", &mut out),
            Err(FrameError::TooLong { len: 3, max: 2 })
        );
        assert_eq!(
            BE4.width(HeaderWidth::U8).encode(&[0; 256], &mut out),
            Err(FrameError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(
            BE4.width(HeaderWidth::U8)
                .length_includes_header(true)
                .encode(&[0; 255], &mut out),
            Err(FrameError::TooLong { len: 255, max: 254 })
        );
        assert!(out.is_empty(), "nothing written on error");
        assert_eq!(
            &*BE4.width(HeaderWidth::U64).header(1).unwrap(),
            b"\0\0\0\0\0\0\0\x01"
        );
    }

    #[test]
    fn widths() {
        for n in 0..10 {
            match HeaderWidth::from_bytes(n) {
                Some(w) => assert_eq!(w.bytes(), n),
                None => assert!(![1, 2, 4, 8].contains(&n)),
            }
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            FrameError::TooLong { len: 9, max: 3 }.to_string(),
            "frame of 9 bytes over the limit of 3 bytes"
        );
    }
}
