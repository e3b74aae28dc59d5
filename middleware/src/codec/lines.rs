//! Line-delimited text: lines end with `\n` or `\r\n`, and have a maximum length.
//!
//! ```
//! use wireloop_middleware::codec::{Lines, Status};
//!
//! let lines = Lines::new().max_line(80);
//! assert_eq!(lines.decode(b"hello\r\nworld"), Ok(Status::Complete((&b"hello"[..], 7))));
//! assert_eq!(lines.decode(b"world"), Ok(Status::Partial));
//! let mut out = Vec::new();
//! lines.encode(b"bye", &mut out).unwrap();
//! assert_eq!(out, b"bye\n");
//! ```

use std::fmt;

use super::{Sink, Status};

/// Which line endings a [`Lines`] codec accepts and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineEnding {
    /// `\n` or `\r\n` (the `\r` is not part of the line); writes `\n`. The default.
    Any,
    /// `\n` alone ends a line; a `\r` before it is part of the line. Writes `\n`.
    Lf,
    /// `\r\n` only; a bare `\n` is an error ([`LineError::BareLf`]). Writes `\r\n`.
    CrLf,
}

/// Why a line cannot be decoded or encoded. Decoding errors are final for the stream:
/// close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// The line is longer than `max` bytes (terminator not counted); reported as soon as
    /// more than `max` bytes without a terminator have arrived.
    TooLong {
        /// The codec's limit.
        max: usize,
    },
    /// A `\n` without `\r` before it, with [`LineEnding::CrLf`].
    BareLf,
    /// (Encoding) the line contains a `\n` (or a `\r`, with [`LineEnding::CrLf`]), which
    /// would end it early on the wire.
    Terminator,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LineError::TooLong { max } => write!(f, "line longer than {max} bytes"),
            LineError::BareLf => f.write_str("line ended by a bare LF where CRLF is required"),
            LineError::Terminator => f.write_str("line contains a line terminator"),
        }
    }
}

impl std::error::Error for LineError {}

/// How far [`Lines::decode_resume`] has searched a partial line: keep one per stream,
/// starting from `LineScan::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineScan(usize);

/// The default [`Lines::max_line`]: 64 KiB.
pub const DEFAULT_MAX_LINE: usize = 64 << 10;

/// A line codec: settings only, no state, `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lines {
    ending: LineEnding,
    max_line: usize,
}

impl Default for Lines {
    fn default() -> Lines {
        Lines::new()
    }
}

impl Lines {
    /// `\n` or `\r\n`, lines up to [`DEFAULT_MAX_LINE`] bytes.
    pub const fn new() -> Lines {
        Lines {
            ending: LineEnding::Any,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// Sets the accepted line endings.
    pub const fn ending(mut self, ending: LineEnding) -> Lines {
        self.ending = ending;
        self
    }

    /// Sets the longest line, in bytes, terminator not counted.
    pub const fn max_line(mut self, bytes: usize) -> Lines {
        self.max_line = bytes;
        self
    }

    /// Decodes one line from the start of `input`: `Complete((line, consumed))` with the
    /// line (borrowing `input`, terminator stripped) and the bytes it took, terminator
    /// included; `Partial` if no terminator has arrived yet. Looks at no more than
    /// `max_line + 2` bytes; to avoid re-reading a long partial line at every read, use
    /// [`decode_resume`](Lines::decode_resume).
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Status<(&'a [u8], usize)>, LineError> {
        self.decode_resume(input, &mut LineScan::default())
    }

    /// [`decode`](Lines::decode), searching for the terminator only past the bytes an
    /// earlier `Partial` answer already searched (kept in `scan`, one per stream). After
    /// `Partial`, the next call must pass the same bytes with more appended (a
    /// connection's unconsumed input is just that); `scan` resets itself on every other
    /// answer. A line trickling in byte by byte then costs linear time, not quadratic.
    pub fn decode_resume<'a>(
        &self,
        input: &'a [u8],
        scan: &mut LineScan,
    ) -> Result<Status<(&'a [u8], usize)>, LineError> {
        let limit = input.len().min(self.max_line.saturating_add(2));
        let from = scan.0.min(limit);
        scan.0 = 0;
        let too_long = Err(LineError::TooLong { max: self.max_line });
        let Some(i) = input[from..limit].iter().position(|&b| b == b'\n') else {
            // No terminator yet: the bytes so far are line content, except a last `\r`
            // that may start a `\r\n`.
            let pending = match (self.ending, input.last()) {
                (LineEnding::Lf, _) | (_, None) => input.len(),
                (_, Some(&b)) => input.len() - usize::from(b == b'\r'),
            };
            if pending > self.max_line {
                return too_long;
            }
            scan.0 = limit;
            return Ok(Status::Partial);
        };
        let i = from + i;
        let cr = i > 0 && input[i - 1] == b'\r';
        let line = match self.ending {
            LineEnding::Lf => &input[..i],
            LineEnding::Any if cr => &input[..i - 1],
            LineEnding::Any => &input[..i],
            LineEnding::CrLf if cr => &input[..i - 1],
            LineEnding::CrLf => {
                // The content before the bare LF may already be over the limit: say so,
                // as a decoder that saw only that content would have.
                return if i > self.max_line {
                    too_long
                } else {
                    Err(LineError::BareLf)
                };
            }
        };
        if line.len() > self.max_line {
            return too_long;
        }
        Ok(Status::Complete((line, i + 1)))
    }

    /// Writes `line` and the terminator ([`LineEnding::CrLf`]: `\r\n`, else `\n`) into
    /// `out`. Nothing is written if the line is too long or contains a terminator.
    pub fn encode(&self, line: &[u8], mut out: impl Sink) -> Result<(), LineError> {
        if line.len() > self.max_line {
            return Err(LineError::TooLong { max: self.max_line });
        }
        let bad = |b: &u8| *b == b'\n' || (*b == b'\r' && self.ending == LineEnding::CrLf);
        if line.iter().any(bad) || (self.ending == LineEnding::Any && line.last() == Some(&b'\r')) {
            return Err(LineError::Terminator);
        }
        out.put(line);
        out.put(match self.ending {
            LineEnding::CrLf => b"\r\n",
            _ => b"\n",
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY: Lines = Lines::new();

    /// Every line of `input`, and the bytes left over, or the first error.
    fn decode_all(codec: Lines, input: &[u8]) -> Result<(Vec<Vec<u8>>, usize), LineError> {
        let mut lines = Vec::new();
        let mut pos = 0;
        while let Status::Complete((l, n)) = codec.decode(&input[pos..])? {
            lines.push(l.to_vec());
            pos += n;
        }
        Ok((lines, input.len() - pos))
    }

    /// Decodes `input` delivered in two pieces cut at `cut`, carrying the partial line (and
    /// how far it was searched) over.
    fn decode_cut(
        codec: Lines,
        input: &[u8],
        cut: usize,
    ) -> Result<(Vec<Vec<u8>>, usize), LineError> {
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        let mut scan = LineScan::default();
        for piece in [&input[..cut], &input[cut..]] {
            buf.extend_from_slice(piece);
            let mut pos = 0;
            while let Status::Complete((l, n)) = codec.decode_resume(&buf[pos..], &mut scan)? {
                lines.push(l.to_vec());
                pos += n;
            }
            buf.drain(..pos);
        }
        Ok((lines, buf.len()))
    }

    /// `ok! { name: codec, input => [lines], leftover; }`, also cut anywhere in two.
    macro_rules! ok {
        ($($name:ident: $codec:expr, $input:expr => [$($line:expr),*], $left:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let want: Vec<Vec<u8>> = vec![$($line.to_vec()),*];
                assert_eq!(decode_all($codec, input), Ok((want.clone(), $left)));
                for cut in 0..=input.len() {
                    assert_eq!(decode_cut($codec, input, cut), Ok((want.clone(), $left)), "cut at {cut}");
                }
            }
        )*};
    }

    /// `err! { name: codec, input => error; }`, also cut anywhere in two.
    macro_rules! err {
        ($($name:ident: $codec:expr, $input:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                assert_eq!(decode_all($codec, input), Err($err));
                for cut in 0..=input.len() {
                    assert_eq!(decode_cut($codec, input, cut), Err($err), "cut at {cut}");
                }
            }
        )*};
    }

    ok! {
        lf: ANY, b"a\nbc\n" => [b"a", b"bc"], 0;
        crlf: ANY, b"a\r\nbc\r\n" => [b"a", b"bc"], 0;
        mixed: ANY, b"a\nb\r\n\n\r\n" => [b"a", b"b", b"", b""], 0;
        partial: ANY, b"a\nbc\r" => [b"a"], 3;
        cr_inside: ANY, b"a\rb\n" => [b"a\rb"], 0;
        lf_mode_keeps_cr: ANY.ending(LineEnding::Lf), b"a\r\n" => [b"a\r"], 0;
        crlf_mode: ANY.ending(LineEnding::CrLf), b"a\r\nb\r\n" => [b"a", b"b"], 0;
        at_limit: ANY.max_line(3), b"abc\nabc\r\n" => [b"abc", b"abc"], 0;
        at_limit_partial_cr: ANY.max_line(3), b"abc\r" => [], 4;
        lf_mode_at_limit: ANY.ending(LineEnding::Lf).max_line(3), b"ab\r\n" => [b"ab\r"], 0;
        zero_limit: ANY.max_line(0), b"\n\r\n" => [b"", b""], 0;
        empty: ANY, b"" => [], 0;
    }

    err! {
        over_limit: ANY.max_line(3), b"abcd" => LineError::TooLong { max: 3 };
        over_limit_terminated: ANY.max_line(3), b"abcd\n" => LineError::TooLong { max: 3 };
        over_limit_crlf: ANY.max_line(3), b"ok\nabcd\r\n" => LineError::TooLong { max: 3 };
        over_limit_cr_cr: ANY.max_line(3), b"abc\r\r" => LineError::TooLong { max: 3 };
        lf_mode_cr_counts: ANY.ending(LineEnding::Lf).max_line(3), b"abc\r" => LineError::TooLong { max: 3 };
        bare_lf: ANY.ending(LineEnding::CrLf), b"a\r\nb\n" => LineError::BareLf;
        bare_lf_long: ANY.ending(LineEnding::CrLf).max_line(1), b"ab\n" => LineError::TooLong { max: 1 };
    }

    /// A line trickling in is searched once: each call looks only at the new byte.
    #[test]
    fn resume_searches_new_bytes_only() {
        let mut scan = LineScan::default();
        let mut input = Vec::new();
        for i in 0..100 {
            input.push(b'x');
            assert_eq!(ANY.decode_resume(&input, &mut scan), Ok(Status::Partial));
            assert_eq!(scan, LineScan(i + 1));
        }
        input.push(b'\n');
        assert_eq!(
            ANY.decode_resume(&input, &mut scan),
            Ok(Status::Complete((&input[..100], 101)))
        );
        assert_eq!(scan, LineScan::default());
    }

    #[test]
    fn encode() {
        let mut out = Vec::new();
        ANY.encode(b"x", &mut out).unwrap();
        ANY.ending(LineEnding::CrLf).encode(b"y", &mut out).unwrap();
        ANY.ending(LineEnding::Lf).encode(b"z\r", &mut out).unwrap();
        assert_eq!(out, b"x\ny\r\nz\r\n");
        assert_eq!(ANY.encode(b"a\nb", &mut out), Err(LineError::Terminator));
        assert_eq!(ANY.encode(b"a\r", &mut out), Err(LineError::Terminator));
        assert_eq!(
            ANY.ending(LineEnding::CrLf).encode(b"a\rb", &mut out),
            Err(LineError::Terminator)
        );
        assert_eq!(
            ANY.max_line(1).encode(b"ab", &mut out),
            Err(LineError::TooLong { max: 1 })
        );
        assert_eq!(out.len(), 8, "nothing written on error");
    }
}
