//! Sans-IO framing codecs: [length-prefixed frames](length_prefixed), [lines] and
//! the [Redis protocol](resp) (RESP2).
//!
//! Every decoder works on a byte slice alone and answers in the style of httparse: a
//! [`Status::Complete`] item together with the number of bytes it used, a
//! [`Status::Partial`] when more bytes are needed, or an error when the input can never
//! become valid (malformed, or over a limit). Decoded items borrow the input — no copy —
//! so a handler decodes everything a read brought in one pass and consumes it at the end:
//!
//! ```
//! use wireloop::{Action, Conn, Handler};
//! use wireloop_middleware::codec::{LengthPrefixed, Status};
//!
//! struct FrameEcho(LengthPrefixed);
//!
//! impl Handler for FrameEcho {
//!     type State = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         let (input, mut out) = conn.split();
//!         let mut used = 0;
//!         let action = loop {
//!             match self.0.decode(&input[used..]) {
//!                 Ok(Status::Complete((frame, n))) => {
//!                     // `frame` borrows the connection's input: answer it in place.
//!                     let _ = self.0.encode(frame, &mut out);
//!                     used += n;
//!                 }
//!                 Ok(Status::Partial) => break Action::None,
//!                 Err(e) => {
//!                     log::warn!("closing: {e}");
//!                     break Action::Close;
//!                 }
//!             }
//!         };
//!         conn.consume(used);
//!         action
//!     }
//! }
//!
//! let mut d = wireloop::testing::Driver::new(FrameEcho(LengthPrefixed::new()));
//! let c = d.open(0);
//! d.feed(c, b"\0\0\0\x02hi\0\0\0\x03yo!\0\0");
//! assert_eq!(d.take_output(c), b"\0\0\0\x02hi\0\0\0\x03yo!");
//! ```
//!
//! Encoders write into any [`Sink`]: a [`Conn`], its [`Output`] (from
//! [`Conn::split`]), or a `Vec<u8>`.
//!
//! Every length a peer controls has a limit (a frame, a line, a bulk string, an argument
//! count); past it the decoder returns an error at once, before the bytes arrive, and the
//! handler should close the connection.

#![warn(missing_docs)]

pub mod fuzzing;
pub mod length_prefixed;
pub mod lines;
pub mod resp;

use wireloop::{Conn, Output};

pub use length_prefixed::{ByteOrder, FrameError, HeaderWidth, LengthPrefixed};
pub use lines::{LineEnding, LineError, LineScan, Lines};
pub use resp::{Command, RespDecoder, RespError, RespLimits};

/// The outcome of a decode that did not fail: a whole item, or not enough input yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item, usually with the number of bytes it took from the input.
    Complete(T),
    /// The input is a valid beginning: call again with more bytes appended.
    Partial,
}

impl<T> Status<T> {
    /// Whether this is [`Status::Complete`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }

    /// Whether this is [`Status::Partial`].
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }

    /// The item, if complete.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(t) => Some(t),
            Status::Partial => None,
        }
    }

    /// Maps the complete item.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Status<U> {
        match self {
            Status::Complete(t) => Status::Complete(f(t)),
            Status::Partial => Status::Partial,
        }
    }
}

/// Where encoders write: bytes are appended in order.
pub trait Sink {
    /// Appends `data`.
    fn put(&mut self, data: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
}

impl<S> Sink for Conn<'_, S> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.write(data);
    }
}

impl Sink for Output<'_> {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        self.write(data);
    }
}

impl<T: Sink + ?Sized> Sink for &mut T {
    #[inline]
    fn put(&mut self, data: &[u8]) {
        (**self).put(data);
    }
}

/// Writes into a fixed array, for headers built on the stack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends what fits.
    pub(crate) fn push(&mut self, data: &[u8]) {
        let n = data.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
