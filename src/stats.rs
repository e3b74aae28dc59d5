//! Counters per loop, readable from any thread.
//!
//! Each loop writes only its own counters (a relaxed load and store, no locked instruction),
//! so counting costs next to nothing on the hot path; readers sum them into a [`Stats`].

use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a loop's or the whole server's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now.
    pub open: u64,
    /// Connections opened since start (accepted and handed to this loop).
    pub accepted: u64,
    /// Outbound connections started (`dial`), whether they connected or not.
    pub dialed: u64,
    /// Connections closed since start (`closed` fired).
    pub closed: u64,
    /// Connections handed out with `Action::Detach`.
    pub detached: u64,
    /// Connections refused by the `max_connections` limit.
    pub refused: u64,
    /// Connections closed by the idle timeout.
    pub idle_closed: u64,
    /// Connections closed by their read timeout (no input while one was awaited).
    pub read_timeouts: u64,
    /// Connections closed by their send timeout (the peer stopped taking output).
    pub send_timeouts: u64,
    /// Bytes read from stream sockets.
    pub bytes_in: u64,
    /// Bytes written to stream sockets.
    pub bytes_out: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that did not fit the datagram buffer and were truncated.
    pub datagrams_truncated: u64,
}

impl Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            open: self.open + o.open,
            accepted: self.accepted + o.accepted,
            dialed: self.dialed + o.dialed,
            closed: self.closed + o.closed,
            detached: self.detached + o.detached,
            refused: self.refused + o.refused,
            idle_closed: self.idle_closed + o.idle_closed,
            read_timeouts: self.read_timeouts + o.read_timeouts,
            send_timeouts: self.send_timeouts + o.send_timeouts,
            bytes_in: self.bytes_in + o.bytes_in,
            bytes_out: self.bytes_out + o.bytes_out,
            datagrams_in: self.datagrams_in + o.datagrams_in,
            datagrams_out: self.datagrams_out + o.datagrams_out,
            datagrams_truncated: self.datagrams_truncated + o.datagrams_truncated,
        }
    }
}

/// One loop's counters (single writer: the loop).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) dialed: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) detached: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) read_timeouts: AtomicU64,
    pub(crate) send_timeouts: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) datagrams_truncated: AtomicU64,
}

/// Adds `n` to a counter that only the calling loop writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, open: u64) -> Stats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            open,
            accepted: r(&self.accepted),
            dialed: r(&self.dialed),
            closed: r(&self.closed),
            detached: r(&self.detached),
            refused: r(&self.refused),
            idle_closed: r(&self.idle_closed),
            read_timeouts: r(&self.read_timeouts),
            send_timeouts: r(&self.send_timeouts),
            bytes_in: r(&self.bytes_in),
            bytes_out: r(&self.bytes_out),
            datagrams_in: r(&self.datagrams_in),
            datagrams_out: r(&self.datagrams_out),
            datagrams_truncated: r(&self.datagrams_truncated),
        }
    }
}
