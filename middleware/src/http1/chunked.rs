//! Sans-IO decoder for the chunked transfer coding (RFC 9112 §7.1), strict about framing.
//!
//! The decoder is a byte-level state machine, so input may be cut anywhere: feed what has
//! arrived, get back how much was used and at most one piece of data, and call again with
//! the rest. Data pieces are slices of the input (no copy). Chunk extensions are checked
//! for line framing and skipped; trailer fields are checked for line framing and field
//! syntax, and dropped.
//!
//! ```
//! use wireloop_middleware::http1::{ChunkedDecoder, Decoded};
//!
//! let mut dec = ChunkedDecoder::new();
//! let mut input: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";
//! let mut body = Vec::new();
//! loop {
//!     let (used, ev) = dec.decode(input).unwrap();
//!     input = &input[used..];
//!     match ev {
//!         Decoded::Data(d) => body.extend_from_slice(d),
//!         Decoded::Done => break,
//!         Decoded::NeedMore => unreachable!("all input was given"),
//!     }
//! }
//! assert_eq!(body, b"hello");
//! ```

use std::fmt;

/// Longest chunk-size line (size and extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted.
pub const MAX_TRAILERS: usize = 16 * 1024;
/// Largest chunk size accepted (2^62): far beyond any real body, and no overflow anywhere.
pub const MAX_CHUNK_SIZE: u64 = 1 << 62;

/// What one [`ChunkedDecoder::decode`] call produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A piece of body data (never empty).
    Data(&'a [u8]),
    /// The body is complete: the last chunk and the trailer section were read.
    Done,
    /// All input was used; more is needed.
    NeedMore,
}

/// Why a chunked body was rejected (answer 400 and close: the framing is lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkedError {
    /// The chunk size is missing or not hexadecimal.
    InvalidSize,
    /// The chunk size is too large.
    SizeOverflow,
    /// A line did not end with CRLF (bare LF, bare CR, or junk before the line end).
    InvalidLineEnd,
    /// Malformed chunk extension.
    InvalidExtension,
    /// The chunk-size line is too long.
    LineTooLong,
    /// Chunk data was not followed by CRLF.
    MissingDataCrlf,
    /// A malformed trailer field.
    InvalidTrailer,
    /// The trailer section is too large.
    TrailersTooLarge,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkedError::InvalidSize => "invalid chunk size",
            ChunkedError::SizeOverflow => "chunk size too large",
            ChunkedError::InvalidLineEnd => "chunk line not ended by CRLF",
            ChunkedError::InvalidExtension => "invalid chunk extension",
            ChunkedError::LineTooLong => "chunk-size line too long",
            ChunkedError::MissingDataCrlf => "chunk data not followed by CRLF",
            ChunkedError::InvalidTrailer => "invalid trailer field",
            ChunkedError::TrailersTooLarge => "trailer section too large",
        })
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// In the hex digits.
    Size,
    /// Whitespace after the size: only `;` (an extension) may follow.
    SizeBws,
    /// In a chunk extension (skipped up to the CR).
    Ext,
    /// In a quoted extension value.
    ExtQuoted,
    /// After a backslash in a quoted extension value.
    ExtQuotedEscape,
    /// Expecting the LF after the size line's CR.
    SizeLf,
    /// In chunk data: `remaining` bytes to go.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// Expecting the LF after a trailer line's CR.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body. Make a new one (or [`reset`](ChunkedDecoder::reset)) per body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    line_len: usize,
    trailer_len: usize,
    total: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> ChunkedDecoder {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub const fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::SizeStart,
            remaining: 0,
            line_len: 0,
            trailer_len: 0,
            total: 0,
        }
    }

    /// Back to the start of a body.
    pub fn reset(&mut self) {
        *self = ChunkedDecoder::new();
    }

    /// Whether the whole body (last chunk and trailers) was read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.total
    }

    /// Reads framing from `input` until a piece of data, the end of the body, or the end
    /// of `input`. Returns how many bytes of `input` were used (including the data piece)
    /// and what came of it. After an error the decoder must not be used again.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Decoded<'a>), ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let n = (input.len() - i).min(self.remaining.min(usize::MAX as u64) as usize);
                self.remaining -= n as u64;
                self.total += n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                return Ok((i + n, Decoded::Data(&input[i..i + n])));
            }
            let b = input[i];
            i += 1;
            self.step(b)?;
            if self.state == State::Done {
                return Ok((i, Decoded::Done));
            }
        }
        if self.state == State::Done {
            return Ok((i, Decoded::Done));
        }
        Ok((i, Decoded::NeedMore))
    }

    fn line_byte(&mut self) -> Result<(), ChunkedError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(ChunkedError::LineTooLong);
        }
        Ok(())
    }

    fn trailer_byte(&mut self) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkedError::TrailersTooLarge);
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.state = State::SizeLf;
    }

    #[inline]
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        use State::*;
        match self.state {
            SizeStart => {
                self.line_len = 0;
                self.line_byte()?;
                let d = hex(b).ok_or(ChunkedError::InvalidSize)?;
                self.remaining = d;
                self.state = Size;
            }
            Size => {
                self.line_byte()?;
                if let Some(d) = hex(b) {
                    if self.remaining > MAX_CHUNK_SIZE >> 4 {
                        return Err(ChunkedError::SizeOverflow);
                    }
                    self.remaining = self.remaining * 16 + d;
                    if self.remaining > MAX_CHUNK_SIZE {
                        return Err(ChunkedError::SizeOverflow);
                    }
                } else {
                    match b {
                        b';' => self.state = Ext,
                        b' ' | b'\t' => self.state = SizeBws,
                        b'\r' => self.end_size_line(),
                        _ => return Err(ChunkedError::InvalidSize),
                    }
                }
            }
            SizeBws => {
                self.line_byte()?;
                match b {
                    b' ' | b'\t' => {}
                    b';' => self.state = Ext,
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            Ext => {
                self.line_byte()?;
                match b {
                    b'\r' => self.end_size_line(),
                    b'"' => self.state = ExtQuoted,
                    b'\n' => return Err(ChunkedError::InvalidLineEnd),
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            ExtQuoted => {
                self.line_byte()?;
                match b {
                    b'"' => self.state = Ext,
                    b'\\' => self.state = ExtQuotedEscape,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            ExtQuotedEscape => {
                self.line_byte()?;
                match b {
                    b'\t' | b' '..=b'~' | 0x80..=0xff => self.state = ExtQuoted,
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnd);
                }
                if self.remaining == 0 {
                    self.trailer_len = 0;
                    self.state = TrailerStart;
                } else {
                    self.state = Data;
                }
            }
            // `decode` hands data out before stepping, so no byte arrives here.
            Data => {}
            DataCr => {
                if b != b'\r' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = DataLf;
            }
            DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = SizeStart;
            }
            TrailerStart => {
                self.trailer_byte()?;
                match b {
                    b'\r' => self.state = EndLf,
                    _ if is_tchar(b) => self.state = TrailerName,
                    // Bare LF, obs-fold (SP/HTAB) and anything else.
                    _ => return Err(ChunkedError::InvalidTrailer),
                }
            }
            TrailerName => {
                self.trailer_byte()?;
                match b {
                    b':' => self.state = TrailerValue,
                    _ if is_tchar(b) => {}
                    _ => return Err(ChunkedError::InvalidTrailer),
                }
            }
            TrailerValue => {
                self.trailer_byte()?;
                match b {
                    b'\r' => self.state = TrailerLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                    _ => return Err(ChunkedError::InvalidTrailer),
                }
            }
            TrailerLf => {
                self.trailer_byte()?;
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnd);
                }
                self.state = TrailerStart;
            }
            EndLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnd);
                }
                self.state = Done;
            }
            Done => {}
        }
        Ok(())
    }
}

#[inline]
fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

#[inline]
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Decodes all of `input` as one chunked body, for tests: the body and the bytes used, or
/// `None` if it is incomplete.
#[cfg(test)]
fn decode_all(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ChunkedError> {
    let mut dec = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (n, ev) = dec.decode(&input[pos..])?;
        pos += n;
        match ev {
            Decoded::Data(d) => body.extend_from_slice(d),
            Decoded::Done => return Ok(Some((body, pos))),
            Decoded::NeedMore => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ok! { name: input => body, used; }`: decodes to `body` using `used` bytes, and the
    /// same at every split of the input into two reads.
    macro_rules! ok {
        ($($name:ident: $input:expr => $body:expr, $used:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let (body, used) = decode_all(input).unwrap().expect("complete");
                assert_eq!(&body[..], &$body[..]);
                assert_eq!(used, $used);
                for cut in 0..=input.len() {
                    let mut dec = ChunkedDecoder::new();
                    let mut got = Vec::new();
                    let mut done = false;
                    for part in [&input[..cut], &input[cut..]] {
                        let mut pos = 0;
                        while pos < part.len() && !done {
                            let (n, ev) = dec.decode(&part[pos..]).unwrap();
                            pos += n;
                            match ev {
                                Decoded::Data(d) => got.extend_from_slice(d),
                                Decoded::Done => done = true,
                                Decoded::NeedMore => {}
                            }
                        }
                    }
                    assert!(done, "cut at {cut}");
                    assert_eq!(&got[..], &$body[..], "cut at {cut}");
                }
            }
        )*};
    }

    /// `err! { name: input => error; }`
    macro_rules! err {
        ($($name:ident: $input:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(decode_all($input), Err($err));
            }
        )*};
    }

    /// `partial! { name: input; }`: valid so far, not complete.
    macro_rules! partial {
        ($($name:ident: $input:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(decode_all($input), Ok(None));
            }
        )*};
    }

    ok! {
        one_chunk: b"5\r\nhello\r\n0\r\n\r\n" => b"hello", 15;
        two_chunks: b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" => b"abcde", 20;
        hex_upper_lower: b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n" => b"01234567890123456789", 35;
        empty_body: b"0\r\n\r\n" => b"", 5;
        many_zeros: b"000\r\n\r\n" => b"", 7;
        leading_zeros: b"0003\r\nabc\r\n0\r\n\r\n" => b"abc", 16;
        extension: b"3;name=value\r\nabc\r\n0;last\r\n\r\n" => b"abc", 29;
        extension_bws: b"3 ;a=b\r\nabc\r\n0\r\n\r\n" => b"abc", 18;
        extension_quoted: b"3;a=\"x;\\\"y\"\r\nabc\r\n0\r\n\r\n" => b"abc", 23;
        trailers: b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n" => b"abc", 39;
        stops_at_end: b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n" => b"a", 11;
    }

    err! {
        no_size: b"\r\n" => ChunkedError::InvalidSize;
        bad_hex: b"g\r\n" => ChunkedError::InvalidSize;
        negative: b"-1\r\n" => ChunkedError::InvalidSize;
        size_prefix_0x: b"0x5\r\nhello\r\n0\r\n\r\n" => ChunkedError::InvalidSize;
        overflow: b"fffffffffffffffff\r\n" => ChunkedError::SizeOverflow;
        overflow_just: b"4000000000000001\r\n" => ChunkedError::SizeOverflow;
        overflow_u64: b"10000000000000001\r\n" => ChunkedError::SizeOverflow;
        bare_lf_size: b"3\nabc\r\n0\r\n\r\n" => ChunkedError::InvalidSize;
        bare_lf_ext: b"3;a\nabc\r\n" => ChunkedError::InvalidLineEnd;
        bare_cr_size: b"3\rabc" => ChunkedError::InvalidLineEnd;
        bws_without_ext: b"3 \r\nabc\r\n" => ChunkedError::InvalidExtension;
        data_too_long: b"3\r\nabcd\r\n0\r\n\r\n" => ChunkedError::MissingDataCrlf;
        data_bare_lf: b"3\r\nabc\n0\r\n\r\n" => ChunkedError::MissingDataCrlf;
        data_bare_cr: b"3\r\nabc\r0\r\n\r\n" => ChunkedError::MissingDataCrlf;
        last_bare_lf: b"0\n\n" => ChunkedError::InvalidSize;
        end_bare_lf: b"0\r\n\n" => ChunkedError::InvalidTrailer;
        end_cr_junk: b"0\r\n\rx" => ChunkedError::InvalidLineEnd;
        trailer_obs_fold: b"0\r\nA: b\r\n c\r\n\r\n" => ChunkedError::InvalidTrailer;
        trailer_no_colon: b"0\r\nAbc\r\n\r\n" => ChunkedError::InvalidTrailer;
        trailer_bare_lf: b"0\r\nA: b\n\r\n" => ChunkedError::InvalidTrailer;
        trailer_nul: b"0\r\nA: b\0\r\n\r\n" => ChunkedError::InvalidTrailer;
        ext_ctl: b"1;\x01\r\n" => ChunkedError::InvalidExtension;
        plus_sign: b"+1\r\na\r\n0\r\n\r\n" => ChunkedError::InvalidSize;
    }

    partial! {
        nothing: b"";
        size_only: b"5";
        size_cr: b"5\r";
        in_data: b"5\r\nhel";
        after_data: b"5\r\nhello";
        after_data_cr: b"5\r\nhello\r";
        last_chunk: b"0\r\n";
        in_trailer: b"0\r\nA: b";
        end_cr: b"0\r\n\r";
    }

    #[test]
    fn line_too_long() {
        let mut input = b"1;".to_vec();
        input.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(decode_all(&input), Err(ChunkedError::LineTooLong));
    }

    #[test]
    fn trailers_too_large() {
        let mut input = b"0\r\nX: ".to_vec();
        input.resize(MAX_TRAILERS + 10, b'a');
        assert_eq!(decode_all(&input), Err(ChunkedError::TrailersTooLarge));
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"4;x=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\n";
        let mut dec = ChunkedDecoder::new();
        let mut got = Vec::new();
        for (i, b) in input.iter().enumerate() {
            let (n, ev) = dec.decode(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, 1);
            match ev {
                Decoded::Data(d) => got.extend_from_slice(d),
                Decoded::Done => assert_eq!(i, input.len() - 1),
                Decoded::NeedMore => {}
            }
        }
        assert!(dec.is_done());
        assert_eq!(got, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(dec.decoded_len(), 23);
    }
}
