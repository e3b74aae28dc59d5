//! A connection's timeouts: idle (no traffic either way), read (no input while the loop is
//! ready to read), send (queued output makes no progress), all watched by one timer chain
//! per connection.
//!
//! # How they are watched
//!
//! Each connection keeps its three limits and three clocks (loop clock, milliseconds,
//! wrapping): the last byte either way, the last byte read, the last byte written. One
//! timer (`TimerKind::Watch`) is armed for the earliest moment one of the limits could
//! expire; when it fires it looks at the clocks, closes the connection if a limit really
//! expired, and otherwise arms itself again for the new earliest moment. Traffic never
//! touches the timer heap: it only moves a clock.
//!
//! - **Idle**: `last_active` older than the idle limit: a graceful close (output flushed)
//!   with [`Error::is_idle_timeout`].
//! - **Read**: `last_read` older than the read limit while reading is not held back by
//!   backpressure (a paused connection is not waiting for input; its clock restarts when
//!   reading resumes) and the peer has not ended its input: a graceful close with
//!   [`Error::is_read_timeout`].
//! - **Send**: output queued and nothing of it written for the send limit: the peer stopped
//!   reading, so the output cannot be flushed; the connection fails at once with
//!   [`Error::is_send_timeout`], and the socket is closed with a reset (the kernel would
//!   otherwise keep the output in an orphan socket, probing the peer's window). The send clock starts when output is first left queued
//!   after a flush and restarts with every write, so a slow but steady reader is never cut.
//!
//! A timer armed earlier than needed fires, finds nothing expired and re-arms; one armed
//! later than a new need (output just backed up with a short send limit) is superseded by a
//! new one with a newer epoch, and the old one is ignored when it fires.

use std::time::Duration;

use crate::config::Config;
use crate::reactor::store::{duration_to_ms, flags, ConnIo, NO_PEER};
use crate::reactor::{Core, EventLoop};
use crate::stats::bump;
use crate::timer::TimerKind;
use crate::{Error, Handler};

/// A connection's limits and clocks (all in loop-clock milliseconds; a limit of 0 is off).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeouts {
    pub(crate) idle_ms: u32,
    pub(crate) read_ms: u32,
    pub(crate) send_ms: u32,
    /// The last byte read or written (or when the idle limit was set).
    pub(crate) last_active: u32,
    /// The last byte read (or when the read limit was set, or reading resumed).
    pub(crate) last_read: u32,
    /// The last byte written (or when output backed up, or the send limit was set).
    pub(crate) last_write: u32,
    /// When the current watch timer fires (meaningful while `flags::WATCHING`).
    pub(crate) watch_at: u32,
}

impl Timeouts {
    /// The server's defaults, every clock starting at `now`.
    pub(crate) fn from_config(cfg: &Config, now: u32) -> Timeouts {
        Timeouts {
            idle_ms: cfg.idle_timeout.map_or(0, duration_to_ms),
            read_ms: cfg.read_timeout.map_or(0, duration_to_ms),
            send_ms: cfg.send_timeout.map_or(0, duration_to_ms),
            last_active: now,
            last_read: now,
            last_write: now,
            watch_at: now,
        }
    }

    /// No limits (virtual connections, dials until they connect).
    pub(crate) fn none(now: u32) -> Timeouts {
        Timeouts {
            last_active: now,
            last_read: now,
            last_write: now,
            watch_at: now,
            ..Timeouts::default()
        }
    }
}

/// A limit as a `Duration` (`None` when off).
pub(crate) fn limit(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

/// Whether backpressure holds back reading this connection: its own output is over the
/// high-water mark (when not linked), or its linked peer's is.
#[inline]
pub(crate) fn read_held(io: &ConnIo) -> bool {
    (io.has(flags::PAUSED) && io.peer == NO_PEER) || io.has(flags::PEER_BLOCKED)
}

/// Which limit expired, if any, at loop clock `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    Send,
    Idle,
    Read,
}

fn since(now: u32, then: u32) -> u32 {
    now.wrapping_sub(then)
}

/// Milliseconds until the earliest limit of `io` could expire (0: one has), or `None` when
/// no limit applies now.
fn due_in(io: &ConnIo, now: u32, pending: bool) -> Option<u32> {
    let t = &io.timeouts;
    let left = |then: u32, limit: u32| limit.saturating_sub(since(now, then));
    let mut due: Option<u32> = None;
    let mut take = |d: u32| due = Some(due.map_or(d, |x| x.min(d)));
    if t.idle_ms > 0 {
        take(left(t.last_active, t.idle_ms));
    }
    if t.read_ms > 0 && !io.has(flags::READ_EOF) {
        take(if read_held(io) {
            t.read_ms
        } else {
            left(t.last_read, t.read_ms)
        });
    }
    if t.send_ms > 0 && pending && io.has(flags::SEND_CLOCK) {
        take(left(t.last_write, t.send_ms));
    }
    due
}

fn expired(io: &ConnIo, now: u32, pending: bool) -> Option<Expired> {
    let t = &io.timeouts;
    if t.send_ms > 0
        && pending
        && io.has(flags::SEND_CLOCK)
        && since(now, t.last_write) >= t.send_ms
    {
        return Some(Expired::Send);
    }
    if t.idle_ms > 0 && since(now, t.last_active) >= t.idle_ms {
        return Some(Expired::Idle);
    }
    if t.read_ms > 0
        && !io.has(flags::READ_EOF)
        && !read_held(io)
        && since(now, t.last_read) >= t.read_ms
    {
        return Some(Expired::Read);
    }
    None
}

impl<S> Core<S> {
    /// Makes sure connection `key`'s watch timer fires no later than its earliest limit
    /// could expire (arming a new one, which supersedes the old, only when needed).
    pub(crate) fn arm_watch(&mut self, key: usize) {
        let gen = self.slots.gen(key);
        let now = self.now_ms();
        let Some(c) = self.slots.get_mut(key) else {
            return;
        };
        c.io.unset(flags::TIMEOUTS_CHANGED);
        if c.io.is_closing() {
            return;
        }
        let pending = c.out_len() > 0;
        let Some(due) = due_in(&c.io, now, pending) else {
            return;
        };
        if c.io.has(flags::WATCHING) && since(c.io.timeouts.watch_at, now) <= due {
            // The live timer fires first; it re-arms for whatever is left then.
            return;
        }
        c.io.watch_epoch = c.io.watch_epoch.wrapping_add(1);
        c.io.set(flags::WATCHING);
        c.io.timeouts.watch_at = now.wrapping_add(due);
        let kind = TimerKind::Watch {
            key: key as u32,
            gen,
            epoch: c.io.watch_epoch,
        };
        self.timers
            .add(self.now() + Duration::from_millis(due as u64), kind);
    }

    /// Output was left queued after a flush (`pending`) or has drained: starts or stops
    /// the send clock, arming the watch when the clock starts.
    pub(crate) fn output_clock(&mut self, key: usize, pending: bool) {
        let now = self.now_ms();
        let Some(c) = self.slots.get_mut(key) else {
            return;
        };
        if !pending {
            c.io.unset(flags::SEND_CLOCK);
        } else if !c.io.has(flags::SEND_CLOCK) {
            c.io.set(flags::SEND_CLOCK);
            c.io.timeouts.last_write = now;
            if c.io.timeouts.send_ms > 0 {
                self.arm_watch(key);
            }
        }
    }
}

impl<H: Handler> EventLoop<H> {
    /// Connection `key`'s watch timer fired: close it if a limit expired, else re-arm.
    pub(crate) fn check_watch(&mut self, key: u32, gen: u32, epoch: u16) {
        let now = self.core.now_ms();
        let key = key as usize;
        let Some(c) = self.core.slots.get_gen_mut(key, gen) else {
            return;
        };
        if c.io.watch_epoch != epoch || !c.io.has(flags::WATCHING) || c.io.is_closing() {
            // Superseded by a newer timer, or the connection is closing (its linger rules).
            return;
        }
        c.io.unset(flags::WATCHING);
        let pending_len = c.out_len();
        let t = c.io.timeouts;
        let counters = &self.core.shared.counters[self.core.ctx.index];
        match expired(&c.io, now, pending_len > 0) {
            Some(Expired::Send) => {
                bump(&counters.send_timeouts, 1);
                // The peer reads nothing: a reset, not an orphan socket that keeps the
                // output (and the peer's window probes) for minutes after the close.
                c.io.stream.reset_on_close();
                let after = Duration::from_millis(t.send_ms as u64);
                self.fail(key, Error::send_timeout(pending_len, after));
            }
            Some(Expired::Idle) => {
                bump(&counters.idle_closed, 1);
                let after = Duration::from_millis(t.idle_ms as u64);
                self.begin_close(key, Some(Error::idle_timeout(after)));
            }
            Some(Expired::Read) => {
                bump(&counters.read_timeouts, 1);
                let after = Duration::from_millis(t.read_ms as u64);
                self.begin_close(key, Some(Error::read_timeout(after)));
            }
            None => self.core.arm_watch(key),
        }
    }
}
