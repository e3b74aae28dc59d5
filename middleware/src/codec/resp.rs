//! The Redis protocol (RESP2), server side: commands in, replies out.
//!
//! Clients send a command as an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`),
//! or — redis-cli typing by hand, telnet — as an inline line of space-separated words
//! (`GET k\r\n`). [`RespDecoder::decode`] parses both; a decoded [`Command`]'s arguments
//! are slices of the input (no copy). The reply helpers ([`simple`], [`error`],
//! [`integer`], [`bulk`], [`null_bulk`], [`array_header`], ...) write into any
//! [`Sink`].
//!
//! ```
//! use wireloop_middleware::codec::resp::{self, RespDecoder};
//! use wireloop_middleware::codec::Status;
//!
//! let mut dec = RespDecoder::new();
//! let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
//! let mut out = Vec::new();
//! let mut used = 0;
//! while let Status::Complete((cmd, n)) = dec.decode(&input[used..]).unwrap() {
//!     if cmd.is(b"ping") {
//!         resp::simple(&mut out, b"PONG");
//!     } else if cmd.is(b"get") && cmd.len() == 2 {
//!         resp::null_bulk(&mut out);
//!     }
//!     used += n;
//! }
//! assert_eq!(used, input.len());
//! assert_eq!(out, b"$-1\r\n+PONG\r\n");
//! ```
//!
//! # Limits
//!
//! [`RespLimits`] bounds everything a client controls: the argument count, the length of
//! one bulk string, the length of an inline line (and the integer lines of the protocol,
//! at 20 bytes). Past a limit the decoder fails at once with a [`RespError`] whose
//! [`write_reply`](RespError::write_reply) is Redis's own `-ERR Protocol error: ...`;
//! Redis then closes the connection, and so should the handler.
//!
//! # Partial input
//!
//! The decoder is httparse-style (it is given the whole partial command again on the next
//! call) with one saving: it remembers how far it got — the arguments of an array command
//! already parsed and the input length needed before anything new can complete, or how
//! much of an inline line was searched for its end — so a large command arriving in many
//! reads costs linear time, not quadratic. That is only
//! valid if, after [`Status::Partial`], the next call gets the same bytes with more
//! appended — which is what [`Conn::input`](wireloop::Conn::input) gives when the partial
//! command was not consumed. Use one decoder per connection (it is cheap: no allocation
//! until a command arrives), and call [`reset`](RespDecoder::reset) before decoding
//! anything else with it.
//!
//! Inline commands are split on spaces and tabs; quotes are not interpreted (Redis's
//! `"..."` escapes cannot be decoded without copying). Empty commands (an empty line,
//! `*0`, `*-1`) decode as a [`Command`] with no arguments, which Redis ignores.

use std::fmt;

use super::{LineScan, Lines, Sink, StackBuf, Status};

/// What a client may send. The defaults suit a public server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespLimits {
    /// Longest bulk string (one argument), in bytes. Default 64 MiB (Redis allows 512 MiB).
    /// The server's `max_input` must be larger for such a command to fit.
    pub max_bulk: usize,
    /// Most arguments in one command. Default 1 048 576 (1024 × 1024).
    pub max_args: usize,
    /// Longest inline command line, in bytes, line ending not counted. Default 64 KiB
    /// (as Redis).
    pub max_inline: usize,
}

impl Default for RespLimits {
    fn default() -> RespLimits {
        RespLimits {
            max_bulk: 64 << 20,
            max_args: 1024 * 1024,
            max_inline: 64 << 10,
        }
    }
}

/// Longest integer line (`*<count>`, `$<length>`) accepted, digits and sign.
pub const MAX_INT_LINE: usize = 20;

/// A protocol error: the stream cannot be parsed further. Its text is Redis's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// An inline line longer than [`RespLimits::max_inline`].
    InlineTooBig,
    /// An array count line longer than [`MAX_INT_LINE`].
    MultibulkCountTooBig,
    /// An array count that is not an integer, or over [`RespLimits::max_args`].
    InvalidMultibulkLength,
    /// Something else than `$` where a bulk string must start; carries that byte.
    ExpectedDollar(u8),
    /// A bulk length line longer than [`MAX_INT_LINE`].
    BulkCountTooBig,
    /// A bulk length that is not an integer, negative, or over [`RespLimits::max_bulk`].
    InvalidBulkLength,
    /// A bulk string not followed by `\r\n`.
    BulkNotTerminated,
    /// An inline command with more than [`RespLimits::max_args`] words.
    TooManyInlineArgs,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match *self {
            RespError::InlineTooBig => f.write_str("too big inline request"),
            RespError::MultibulkCountTooBig => f.write_str("too big mbulk count string"),
            RespError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            RespError::ExpectedDollar(b) if b.is_ascii_graphic() || b == b' ' => {
                write!(f, "expected '$', got '{}'", b as char)
            }
            RespError::ExpectedDollar(b) => write!(f, "expected '$', got '\\x{b:02x}'"),
            RespError::BulkCountTooBig => f.write_str("too big bulk count string"),
            RespError::InvalidBulkLength => f.write_str("invalid bulk length"),
            RespError::BulkNotTerminated => f.write_str("expected CRLF after bulk string"),
            RespError::TooManyInlineArgs => f.write_str("too many arguments in inline request"),
        }
    }
}

impl std::error::Error for RespError {}

impl RespError {
    /// Writes the error reply Redis sends before closing: `-ERR Protocol error: ...\r\n`.
    pub fn write_reply(&self, mut out: impl Sink) {
        let mut b = StackBuf::<96>::new();
        b.push(b"-ERR ");
        // Display never fails into a fixed buffer; what does not fit is cut.
        let _ = fmt::Write::write_fmt(&mut StackWriter(&mut b), format_args!("{self}"));
        out.put(b.as_slice());
        out.put(b"\r\n");
    }
}

/// `fmt::Write` into a [`StackBuf`], cutting what does not fit.
struct StackWriter<'a, const N: usize>(&'a mut StackBuf<N>);

impl<const N: usize> fmt::Write for StackWriter<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push(s.as_bytes());
        Ok(())
    }
}

/// One decoded command: its arguments borrow the input and the decoder.
#[derive(Clone, Copy)]
pub struct Command<'a> {
    input: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Command<'a> {
    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the command is empty (an empty line, `*0`): Redis ignores it.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.get(i)?;
        self.input.get(s..e)
    }

    /// The command name (argument 0), as sent.
    pub fn name(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    /// Whether the command name is `name`, ignoring ASCII case.
    pub fn is(&self, name: &[u8]) -> bool {
        self.name().is_some_and(|n| n.eq_ignore_ascii_case(name))
    }

    /// The arguments in order, the command name first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let input = self.input;
        self.spans
            .iter()
            .map(move |&(s, e)| input.get(s..e).unwrap_or_default())
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Where an array command in progress stopped.
#[derive(Clone, Copy, Debug, Default)]
struct Resume {
    /// The announced argument count.
    args: usize,
    /// Offset of the next argument's `$`.
    pos: usize,
    /// Input length needed before that argument can be complete.
    need: usize,
}

/// Decodes commands (see the [module documentation](self)). One per connection.
#[derive(Debug, Default)]
pub struct RespDecoder {
    limits: RespLimits,
    /// Argument spans of the command being decoded (or just decoded).
    spans: Vec<(usize, usize)>,
    resume: Option<Resume>,
    /// How far a partial inline line was searched for its end.
    inline_scan: LineScan,
}

/// What the integer-line scanner found.
enum IntLine {
    /// The value and the offset after `\r\n`.
    Done(i64, usize),
    Partial,
    /// No `\r` within [`MAX_INT_LINE`] bytes.
    TooLong,
    /// Not a (Redis-style) integer, or `\r` not followed by `\n`.
    Invalid,
}

/// The integer line starting at `start`, ended by `\r\n`.
fn int_line(input: &[u8], start: usize) -> IntLine {
    let rest = input.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_INT_LINE + 1)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if rest.len() > MAX_INT_LINE {
            IntLine::TooLong
        } else {
            IntLine::Partial
        };
    };
    match rest.get(cr + 1) {
        None => IntLine::Partial,
        Some(b'\n') => match parse_int(&rest[..cr]) {
            Some(v) => IntLine::Done(v, start + cr + 2),
            None => IntLine::Invalid,
        },
        Some(_) => IntLine::Invalid,
    }
}

/// A decimal integer as Redis's `string2ll` accepts it: an optional `-`, no `+`, no
/// leading zeros (but `0`), no spaces, no overflow.
pub fn parse_int(d: &[u8]) -> Option<i64> {
    let (neg, digits) = match d {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, d),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub((b - b'0') as i64)?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

impl RespDecoder {
    /// A decoder with the default [`RespLimits`].
    pub fn new() -> RespDecoder {
        RespDecoder::default()
    }

    /// A decoder with these limits.
    pub fn with_limits(limits: RespLimits) -> RespDecoder {
        RespDecoder {
            limits,
            spans: Vec::new(),
            resume: None,
            inline_scan: LineScan::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RespLimits {
        self.limits
    }

    /// Forgets a partial command (needed before decoding input that does not continue
    /// the last input given).
    pub fn reset(&mut self) {
        self.resume = None;
        self.inline_scan = LineScan::default();
        self.spans.clear();
    }

    /// Decodes one command from the start of `input`: `Complete((command, consumed))`,
    /// `Partial` if the command has not fully arrived (call again with the same bytes
    /// and more), or a protocol error (answer it with [`RespError::write_reply`], then
    /// close).
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<Status<(Command<'a>, usize)>, RespError> {
        let resume = self.resume.take();
        let res = match input.first() {
            None => Ok(Status::Partial),
            Some(b'*') => self.multibulk(input, resume),
            Some(_) => self.inline(input),
        };
        match res {
            Ok(Status::Complete(n)) => Ok(Status::Complete((
                Command {
                    input,
                    spans: &self.spans,
                },
                n,
            ))),
            Ok(Status::Partial) => Ok(Status::Partial),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Empties the argument spans for a new command, letting go of the memory a huge
    /// command left behind.
    fn fresh_spans(&mut self) {
        if self.spans.capacity() > 1024 {
            self.spans = Vec::new();
        } else {
            self.spans.clear();
        }
    }

    fn inline(&mut self, input: &[u8]) -> Result<Status<usize>, RespError> {
        self.fresh_spans();
        let lines = Lines::new().max_line(self.limits.max_inline);
        let (line, used) = match lines.decode_resume(input, &mut self.inline_scan) {
            Ok(Status::Complete(l)) => l,
            Ok(Status::Partial) => return Ok(Status::Partial),
            Err(_) => return Err(RespError::InlineTooBig),
        };
        let end = line.len();
        let mut i = 0;
        while i < end {
            if matches!(input[i], b' ' | b'\t') {
                i += 1;
                continue;
            }
            let start = i;
            while i < end && !matches!(input[i], b' ' | b'\t') {
                i += 1;
            }
            if self.spans.len() >= self.limits.max_args {
                self.spans.clear();
                return Err(RespError::TooManyInlineArgs);
            }
            self.spans.push((start, i));
        }
        Ok(Status::Complete(used))
    }

    fn multibulk(
        &mut self,
        input: &[u8],
        resume: Option<Resume>,
    ) -> Result<Status<usize>, RespError> {
        let (args, mut pos) = match resume {
            // Continue where the last call stopped, if the input can be its continuation.
            Some(r) if r.pos <= input.len() && self.spans.len() < r.args => {
                if input.len() < r.need {
                    self.resume = Some(r);
                    return Ok(Status::Partial);
                }
                (r.args, r.pos)
            }
            _ => {
                self.fresh_spans();
                match int_line(input, 1) {
                    IntLine::Done(n, next) => {
                        if n <= 0 {
                            return Ok(Status::Complete(next));
                        }
                        if n as u64 > self.limits.max_args as u64 {
                            return Err(RespError::InvalidMultibulkLength);
                        }
                        (n as usize, next)
                    }
                    IntLine::Partial => return Ok(Status::Partial),
                    IntLine::TooLong => return Err(RespError::MultibulkCountTooBig),
                    IntLine::Invalid => return Err(RespError::InvalidMultibulkLength),
                }
            }
        };
        while self.spans.len() < args {
            let Some(&first) = input.get(pos) else {
                self.resume = Some(Resume {
                    args,
                    pos,
                    need: pos + 1,
                });
                return Ok(Status::Partial);
            };
            if first != b'$' {
                return Err(RespError::ExpectedDollar(first));
            }
            let (len, start) = match int_line(input, pos + 1) {
                IntLine::Done(n, next) => {
                    if n < 0 || n as u64 > self.limits.max_bulk as u64 {
                        return Err(RespError::InvalidBulkLength);
                    }
                    (n as usize, next)
                }
                IntLine::Partial => {
                    self.resume = Some(Resume {
                        args,
                        pos,
                        need: input.len() + 1,
                    });
                    return Ok(Status::Partial);
                }
                IntLine::TooLong => return Err(RespError::BulkCountTooBig),
                IntLine::Invalid => return Err(RespError::InvalidBulkLength),
            };
            // `len <= max_bulk`; the sums can only overflow with absurd limits.
            let Some(need) = start.checked_add(len).and_then(|e| e.checked_add(2)) else {
                return Err(RespError::InvalidBulkLength);
            };
            let Some(tail) = input.get(start + len..need) else {
                self.resume = Some(Resume { args, pos, need });
                return Ok(Status::Partial);
            };
            if tail != b"\r\n" {
                return Err(RespError::BulkNotTerminated);
            }
            self.spans.push((start, start + len));
            pos = need;
        }
        Ok(Status::Complete(pos))
    }
}

// ----- replies ---------------------------------------------------------------------------

/// Writes `bytes` with CR and LF replaced by spaces (a simple string or an error cannot
/// hold them).
fn put_line(out: &mut impl Sink, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        out.put(&rest[..i]);
        out.put(b" ");
        rest = &rest[i + 1..];
    }
    out.put(rest);
}

/// `+<s>\r\n`: a simple string (CR and LF in `s` become spaces).
pub fn simple(mut out: impl Sink, s: &[u8]) {
    out.put(b"+");
    put_line(&mut out, s);
    out.put(b"\r\n");
}

/// `+OK\r\n`.
pub fn ok(mut out: impl Sink) {
    out.put(b"+OK\r\n");
}

/// `-<msg>\r\n`: an error. By convention `msg` starts with a code: `ERR syntax error`,
/// `WRONGTYPE ...`. CR and LF in `msg` become spaces.
pub fn error(mut out: impl Sink, msg: &str) {
    out.put(b"-");
    put_line(&mut out, msg.as_bytes());
    out.put(b"\r\n");
}

/// `:<n>\r\n`: an integer.
pub fn integer(mut out: impl Sink, n: i64) {
    let mut b = StackBuf::<24>::new();
    b.push(b":");
    b.push(itoa::Buffer::new().format(n).as_bytes());
    b.push(b"\r\n");
    out.put(b.as_slice());
}

/// `$<len>\r\n<data>\r\n`: a bulk string.
pub fn bulk(mut out: impl Sink, data: &[u8]) {
    bulk_header(&mut out, data.len());
    out.put(data);
    out.put(b"\r\n");
}

/// `$<len>\r\n`: the header of a bulk string whose `len` bytes, then `\r\n`, the caller
/// writes (to send a large value without copying it, with `Conn::write_bytes`).
pub fn bulk_header(mut out: impl Sink, len: usize) {
    let mut b = StackBuf::<24>::new();
    b.push(b"$");
    b.push(itoa::Buffer::new().format(len).as_bytes());
    b.push(b"\r\n");
    out.put(b.as_slice());
}

/// `$-1\r\n`: the null bulk string (a missing value).
pub fn null_bulk(mut out: impl Sink) {
    out.put(b"$-1\r\n");
}

/// `*<n>\r\n`: the header of an array of `n` elements, which follow.
pub fn array_header(mut out: impl Sink, n: usize) {
    let mut b = StackBuf::<24>::new();
    b.push(b"*");
    b.push(itoa::Buffer::new().format(n).as_bytes());
    b.push(b"\r\n");
    out.put(b.as_slice());
}

/// `*-1\r\n`: the null array.
pub fn null_array(mut out: impl Sink) {
    out.put(b"*-1\r\n");
}

/// A command as clients send it: an array of bulk strings.
pub fn command<'a>(mut out: impl Sink, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    array_header(&mut out, args.len());
    for a in args {
        bulk(&mut out, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cmds = Vec<Vec<Vec<u8>>>;

    /// Every command of `input` (in one call per command), and the bytes left over.
    fn decode_all(dec: &mut RespDecoder, input: &[u8]) -> Result<(Cmds, usize), RespError> {
        let mut cmds = Vec::new();
        let mut pos = 0;
        while let Status::Complete((c, n)) = dec.decode(&input[pos..])? {
            cmds.push(c.iter().map(<[u8]>::to_vec).collect());
            pos += n;
        }
        Ok((cmds, input.len() - pos))
    }

    /// `input` fed one byte at a time after the first `cut` bytes, the partial command
    /// carried over as a connection's input would be.
    fn decode_trickle(
        dec: &mut RespDecoder,
        input: &[u8],
        cut: usize,
    ) -> Result<(Cmds, usize), RespError> {
        let mut cmds = Vec::new();
        let mut buf = input[..cut].to_vec();
        let mut rest = input[cut..].iter();
        loop {
            let mut pos = 0;
            while let Status::Complete((c, n)) = dec.decode(&buf[pos..])? {
                cmds.push(c.iter().map(<[u8]>::to_vec).collect());
                pos += n;
            }
            buf.drain(..pos);
            match rest.next() {
                Some(&b) => buf.push(b),
                None => return Ok((cmds, buf.len())),
            }
        }
    }

    fn limits(max_bulk: usize, max_args: usize, max_inline: usize) -> RespLimits {
        RespLimits {
            max_bulk,
            max_args,
            max_inline,
        }
    }

    fn cmds(list: &[&[&str]]) -> Cmds {
        list.iter()
            .map(|c| c.iter().map(|a| a.as_bytes().to_vec()).collect())
            .collect()
    }

    /// `ok! { name: limits, input => [[args...], ...], leftover; }`: decodes to these
    /// commands, whole and fed byte by byte after any first cut.
    macro_rules! ok {
        ($($name:ident: $limits:expr, $input:expr => [$([$($arg:expr),*]),*], $left:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let want = cmds(&[$(&[$($arg),*]),*]);
                let mut dec = RespDecoder::with_limits($limits);
                assert_eq!(decode_all(&mut dec, input), Ok((want.clone(), $left)));
                for cut in 0..=input.len() {
                    let mut dec = RespDecoder::with_limits($limits);
                    assert_eq!(
                        decode_trickle(&mut dec, input, cut),
                        Ok((want.clone(), $left)),
                        "cut at {cut}"
                    );
                }
            }
        )*};
    }

    /// `err! { name: limits, input => error; }`: whole and byte by byte.
    macro_rules! err {
        ($($name:ident: $limits:expr, $input:expr => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let mut dec = RespDecoder::with_limits($limits);
                assert_eq!(decode_all(&mut dec, input), Err($err));
                for cut in 0..=input.len() {
                    let mut dec = RespDecoder::with_limits($limits);
                    assert_eq!(decode_trickle(&mut dec, input, cut), Err($err), "cut at {cut}");
                }
            }
        )*};
    }

    const D: RespLimits = RespLimits {
        max_bulk: 64 << 20,
        max_args: 1024 * 1024,
        max_inline: 64 << 10,
    };

    ok! {
        get: D, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" => [["GET", "k"]], 0;
        set_binary: D, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\r\n\0\n\r\n" => [["SET", "k", "\r\n\0\n"]], 0;
        empty_bulk: D, b"*1\r\n$0\r\n\r\n" => [[""]], 0;
        pipelined: D, b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n" => [["PING"], ["ECHO", "hi"]], 0;
        partial_count: D, b"*1\r\n$4\r\nPING\r\n*2" => [["PING"]], 2;
        partial_bulk: D, b"*2\r\n$3\r\nGET\r\n$5\r\nab" => [], 19;
        zero_args: D, b"*0\r\n*-1\r\nPING\r\n" => [[], [], ["PING"]], 0;
        inline: D, b"PING\r\nSET  k\tv \n" => [["PING"], ["SET", "k", "v"]], 0;
        inline_empty_lines: D, b"\r\n\n  \r\nECHO x\r\n" => [[], [], [], ["ECHO", "x"]], 0;
        inline_then_array: D, b"GET a\r\n*1\r\n$4\r\nPING\r\n" => [["GET", "a"], ["PING"]], 0;
        inline_partial: D, b"GET a\r\nGET b" => [["GET", "a"]], 5;
        inline_at_limit: limits(8, 8, 5), b"GET a\r\nGET b\n" => [["GET", "a"], ["GET", "b"]], 0;
        bulk_at_limit: limits(3, 8, 8), b"*1\r\n$3\r\nabc\r\n" => [["abc"]], 0;
        args_at_limit: limits(8, 2, 8), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n" => [["a", "b"]], 0;
        long_count_line: D, b"*00000000000000000001" => [], 21;
    }

    err! {
        count_not_int: D, b"*x\r\n" => RespError::InvalidMultibulkLength;
        count_leading_zero: D, b"*01\r\n" => RespError::InvalidMultibulkLength;
        count_plus: D, b"*+1\r\n" => RespError::InvalidMultibulkLength;
        count_cr_no_lf: D, b"*1\rx" => RespError::InvalidMultibulkLength;
        count_over_limit: limits(8, 2, 8), b"*3\r\n" => RespError::InvalidMultibulkLength;
        count_overflow: D, b"*99999999999999999999\r\n" => RespError::InvalidMultibulkLength;
        count_line_too_long: D, b"*000000000000000000000" => RespError::MultibulkCountTooBig;
        not_dollar: D, b"*1\r\n:1\r\n" => RespError::ExpectedDollar(b':');
        bulk_negative: D, b"*1\r\n$-1\r\n" => RespError::InvalidBulkLength;
        bulk_over_limit: limits(3, 8, 8), b"*1\r\n$4\r\n" => RespError::InvalidBulkLength;
        bulk_huge: D, b"*1\r\n$9223372036854775807\r\n" => RespError::InvalidBulkLength;
        bulk_line_too_long: D, b"*1\r\n$1111111111111111111111" => RespError::BulkCountTooBig;
        bulk_not_terminated: D, b"*1\r\n$1\r\nab\r\n" => RespError::BulkNotTerminated;
        second_arg_bad: D, b"*2\r\n$1\r\na\r\nb" => RespError::ExpectedDollar(b'b');
        inline_too_big: limits(8, 8, 5), b"GET ab\r\n" => RespError::InlineTooBig;
        inline_too_big_lf: limits(8, 8, 5), b"GET ab\n" => RespError::InlineTooBig;
        inline_too_big_unterminated: limits(8, 8, 5), b"GET abc" => RespError::InlineTooBig;
        inline_too_many_args: limits(8, 2, 64), b"a b c\r\n" => RespError::TooManyInlineArgs;
        after_good: D, b"PING\r\n*1\r\n$x\r\n" => RespError::InvalidBulkLength;
    }

    #[test]
    fn error_replies() {
        let mut out = Vec::new();
        RespError::ExpectedDollar(b':').write_reply(&mut out);
        RespError::ExpectedDollar(b'\r').write_reply(&mut out);
        RespError::InvalidBulkLength.write_reply(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-ERR Protocol error: expected '$', got ':'\r\n\
             -ERR Protocol error: expected '$', got '\\x0d'\r\n\
             -ERR Protocol error: invalid bulk length\r\n"
        );
    }

    #[test]
    fn replies() {
        let mut out = Vec::new();
        simple(&mut out, b"OK");
        simple(&mut out, b"a\r\nb");
        error(&mut out, "ERR syntax error");
        integer(&mut out, -42);
        integer(&mut out, i64::MIN);
        bulk(&mut out, b"hi");
        bulk(&mut out, b"");
        null_bulk(&mut out);
        array_header(&mut out, 2);
        null_array(&mut out);
        ok(&mut out);
        command(&mut out, [&b"GET"[..], b"k"].into_iter());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+OK\r\n+a  b\r\n-ERR syntax error\r\n:-42\r\n:-9223372036854775808\r\n\
             $2\r\nhi\r\n$0\r\n\r\n$-1\r\n*2\r\n*-1\r\n+OK\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn ints() {
        for (s, v) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("123", Some(123)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            ("", None),
            ("-", None),
            ("1 ", None),
            ("1a", None),
        ] {
            assert_eq!(parse_int(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn command_accessors() {
        let mut dec = RespDecoder::new();
        let Ok(Status::Complete((c, n))) = dec.decode(b"set K v\r\n") else {
            panic!("not decoded");
        };
        assert_eq!(n, 9);
        assert!(c.is(b"SET") && !c.is(b"GET"));
        assert_eq!(
            (c.len(), c.name(), c.get(2), c.get(3)),
            (3, Some(&b"set"[..]), Some(&b"v"[..]), None)
        );
        assert_eq!(format!("{c:?}"), r#"["set", "K", "v"]"#);
    }

    /// A big command trickling in is not re-parsed from its start at every read.
    #[test]
    fn resume_skips_parsed_args() {
        let mut wire = Vec::new();
        let args: Vec<Vec<u8>> = (0..1000).map(|i| format!("arg{i}").into_bytes()).collect();
        command(&mut wire, args.iter().map(Vec::as_slice));
        let mut dec = RespDecoder::new();
        for end in 1..wire.len() {
            assert_eq!(dec.decode(&wire[..end]).map(|s| s.is_partial()), Ok(true));
            // After the first few reads the resume point sits right before the bytes in
            // flight: a later argument, never the start.
            if end > 100 {
                let r = dec.resume.expect("resume point");
                assert!(r.pos > 4 && r.need > end, "end {end}: {r:?}");
            }
        }
        let Ok(Status::Complete((c, n))) = dec.decode(&wire) else {
            panic!("not complete");
        };
        assert_eq!(n, wire.len());
        assert!(c.iter().eq(args.iter().map(Vec::as_slice)));
    }

    /// After a complete command the resume point is gone, so another stream decodes fine.
    #[test]
    fn resume_cleared() {
        let mut dec = RespDecoder::new();
        assert!(dec.decode(b"*2\r\n$1\r\na\r\n").unwrap().is_partial());
        dec.reset();
        let Ok(Status::Complete((c, _))) = dec.decode(b"*1\r\n$1\r\nb\r\n") else {
            panic!("not complete");
        };
        assert_eq!(c.get(0), Some(&b"b"[..]));
    }
}
