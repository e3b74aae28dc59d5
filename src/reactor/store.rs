//! A connection as the loop stores it: the socket, its flags, timeouts and link, the
//! buffers it holds only while bytes wait, and the handler's state.

use std::time::Duration;

use crate::buf::{InBuf, OutBuf};
use crate::handle::Handle;
use crate::reactor::timeouts::Timeouts;
use crate::reactor::transport::Stack;
use crate::socket::Stream;

/// Connection flags (a `u32` per connection).
pub(crate) mod flags {
    /// The socket may have more to read (set by a readable event, cleared on `WouldBlock`).
    pub(crate) const READABLE: u32 = 1 << 0;
    /// The socket accepted the last write in full (cleared on `WouldBlock`).
    pub(crate) const WRITABLE: u32 = 1 << 1;
    /// The peer closed its sending side.
    pub(crate) const READ_EOF: u32 = 1 << 2;
    /// Reading is paused: output is above the high-water mark.
    pub(crate) const PAUSED: u32 = 1 << 3;
    /// The handler asked for `shutdown(Write)` once output is flushed.
    pub(crate) const SHUT_WR_REQ: u32 = 1 << 5;
    /// `shutdown(Write)` was done.
    pub(crate) const SHUT_WR_DONE: u32 = 1 << 6;
    /// The handler asked to abort (`Conn::abort`): with `CLOSE_REQ`, close by a reset.
    pub(crate) const ABORT_REQ: u32 = 1 << 4;
    /// The handler asked to close (`Conn::close`).
    pub(crate) const CLOSE_REQ: u32 = 1 << 7;
    /// The connection is in the loop's queue of connections to read again.
    pub(crate) const QUEUED: u32 = 1 << 9;
    /// The peer's FIN (or an error) was signalled: read until EOF even after a short read.
    pub(crate) const RDHUP: u32 = 1 << 10;
    /// A watch timer is live (see `timeouts.rs`); `Timeouts::watch_at` says when it fires.
    pub(crate) const WATCHING: u32 = 1 << 12;
    /// A timeout changed: (re)arm the watch after the callback.
    pub(crate) const TIMEOUTS_CHANGED: u32 = 1 << 13;
    /// The connection was dialed, not accepted.
    pub(crate) const DIALED: u32 = 1 << 15;
    /// Not read: the linked peer's output is above the high-water mark.
    pub(crate) const PEER_BLOCKED: u32 = 1 << 16;
    /// A wake arrived before `opened` (connecting or handshaking): deliver it right after.
    pub(crate) const WAKE_PENDING: u32 = 1 << 17;
    /// Output is queued that the socket did not take: the send timeout's clock runs.
    pub(crate) const SEND_CLOCK: u32 = 1 << 18;
    /// `read_closed` was delivered (the peer's FIN seen while reading was held back).
    pub(crate) const READ_CLOSED_TOLD: u32 = 1 << 19;
    /// `opened` was delivered (so `closed` is owed even to an accepted connection).
    pub(crate) const OPENED: u32 = 1 << 20;
}

/// Where a connection is in its life. Callbacks other than `closed`/`detached` run only in
/// `Open`; the three last phases are the ways out (`is_closing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// A dial that is resolving or connecting; `opened` comes once connected.
    Connecting,
    /// Connected, its transport layers not ready yet (a TLS handshake); `opened` comes
    /// once they are.
    Handshaking,
    /// Served: the handler gets its callbacks.
    Open,
    /// Closing: no more callbacks but `closed`; flushing output first. A dial closed while
    /// connecting with output queued stays in its dial (`Core::dialing`) and flushes once
    /// connected.
    Closing,
    /// Detaching: flushing output, then the socket is handed to `detached`.
    Detaching,
    /// `closed` has fired; the socket lingers only to drain the peer's last bytes so the
    /// close does not turn into a reset that could destroy the output just sent.
    Lingering,
}

/// Buffers a connection holds only while it has pending input or output.
#[derive(Debug, Default)]
pub(crate) struct ConnBufs {
    pub(crate) input: InBuf,
    pub(crate) out: OutBuf,
}

/// The socket side of a stored connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) stream: Stream,
    pub(crate) flags: u32,
    /// Where the connection is in its life.
    pub(crate) phase: Phase,
    pub(crate) addr_index: u16,
    /// Which watch timer is current: every re-arm moves it on, so a timer armed before
    /// is recognised as stale and dropped when it fires. Fits in the padding after
    /// `addr_index`: no extra memory per connection.
    pub(crate) watch_epoch: u16,
    /// Idle, read and send limits and their clocks.
    pub(crate) timeouts: Timeouts,
    /// The linked peer (key, generation); `NO_PEER` when none.
    pub(crate) peer: (u32, u32),
}

/// `ConnIo::peer` when no peer is linked.
pub(crate) const NO_PEER: (u32, u32) = (u32::MAX, 0);

impl ConnIo {
    /// Closing, detaching or lingering: on its way out.
    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.phase >= Phase::Closing
    }
    #[inline]
    pub(crate) fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }
    #[inline]
    pub(crate) fn set(&mut self, f: u32) {
        self.flags |= f;
    }
    #[inline]
    pub(crate) fn unset(&mut self, f: u32) {
        self.flags &= !f;
    }
}

/// A connection as stored in the loop's slab.
#[derive(Debug)]
pub(crate) struct Connection<S> {
    pub(crate) io: ConnIo,
    /// Bytes waiting, if any: input not consumed and output not written. With layers,
    /// these are wire bytes (the plaintext is in the stack).
    pub(crate) bufs: Option<Box<ConnBufs>>,
    /// The connection's transport layers, if any (TLS, ...).
    pub(crate) stack: Option<Box<Stack>>,
    pub(crate) state: S,
}

impl<S> Connection<S> {
    /// Where bytes written to the connection go: above its layers if it has any (they
    /// are encoded before the socket sees them), else its own output queue.
    #[inline]
    pub(crate) fn plain_out(&mut self) -> &mut OutBuf {
        match self.stack.as_deref_mut() {
            Some(s) => &mut s.top().out,
            None => &mut self.bufs.get_or_insert_with(Box::default).out,
        }
    }

    /// Nothing queued either way and nothing waiting on the output queue's length (no
    /// close, half-close, pause, link or send clock): `flush` and `after_output` have
    /// nothing to do. The common case, checked once per event.
    #[inline]
    pub(crate) fn quiet(&self) -> bool {
        self.bufs.is_none()
            && self.stack.as_deref().is_none_or(|s| s.plain_out_len() == 0)
            && self.io.phase == Phase::Open
            && self.io.peer == NO_PEER
            && !self
                .io
                .has(flags::SEND_CLOCK | flags::SHUT_WR_REQ | flags::SHUT_WR_DONE | flags::PAUSED)
    }

    /// Output queued and not written yet: wire bytes, and plaintext above the layers.
    #[inline]
    pub(crate) fn out_len(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.out.len())
            + self.stack.as_ref().map_or(0, |s| s.plain_out_len())
    }
}

/// Loop-wide facts a connection view can report.
#[derive(Debug)]
pub(crate) struct LoopCtx {
    pub(crate) index: usize,
    pub(crate) handle: Handle,
}

/// Milliseconds in `d`, at least 1, saturating at `u32::MAX - 1`.
pub(crate) fn duration_to_ms(d: Duration) -> u32 {
    d.as_millis().clamp(1, (u32::MAX - 1) as u128) as u32
}
