//! What a handler can do on its own loop outside a connection callback.

use std::time::Duration;

use bytes::Bytes;

use crate::id::ConnId;
use crate::reactor::store::flags;
use crate::reactor::{Core, Deferred, TimerFn, UserTimer};
use crate::stats::Stats;
use crate::timer::TimerKind;
use crate::{DialOptions, Error, Handle};

/// Identifies a timer made with [`Control::after`] or [`Control::every`], to
/// [cancel](Control::cancel) it. A timer that fired (once) or was cancelled is gone; its
/// id is then ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: u32,
    gen: u32,
}

/// The loop, as seen from [`Handler::serving`](crate::Handler::serving) and
/// [`Handler::tick`](crate::Handler::tick): write to or close any connection of this loop
/// by id, and reach the cross-thread [`Handle`]. Writes and closes take effect when the
/// callback returns, in the order they were made.
pub struct Control<'a, S> {
    pub(crate) core: &'a mut Core<S>,
}

impl<S> Control<'_, S> {
    /// Index of this loop (`0..num_loops`).
    pub fn loop_index(&self) -> usize {
        self.core.ctx.index
    }

    /// The loop's clock: the time its timers and timeouts run on. The real time, except
    /// under `testing::Driver` (feature `testing`), whose clock moves only when the
    /// test advances it; a handler or layer that keeps deadlines of its own reads the time
    /// here so that it can be tested the same way.
    pub fn now(&self) -> std::time::Instant {
        self.core.now()
    }

    /// Number of loops in the server.
    pub fn num_loops(&self) -> usize {
        self.core.shared.mailboxes.len()
    }

    /// The cross-thread handle.
    pub fn handle(&self) -> &Handle {
        &self.core.ctx.handle
    }

    /// Connections open on this loop.
    pub fn connections(&self) -> usize {
        self.core.ctx.handle.loop_connections(self.core.ctx.index)
    }

    /// Queues a copy of `data` on connection `id`. `false` if `id` is not an open
    /// connection of this loop.
    pub fn write(&mut self, id: ConnId, data: &[u8]) -> bool {
        self.queue(id, |out| out.write(data))
    }

    /// Queues `data` on connection `id` without copying it.
    pub fn write_bytes(&mut self, id: ConnId, data: Bytes) -> bool {
        self.queue(id, |out| out.write_bytes(data))
    }

    fn queue(&mut self, id: ConnId, f: impl FnOnce(&mut crate::buf::OutBuf)) -> bool {
        let Some(c) = self.core.live(id) else {
            return false;
        };
        if c.io.has(flags::SHUT_WR_REQ) {
            return false;
        }
        f(c.plain_out());
        self.core.deferred.push(Deferred::Flush(id.key, id.gen));
        true
    }

    /// The state of connection `id` of this loop, so that per-connection data lives with
    /// its connection even when another connection's callback needs it (a proxy's client
    /// and its upstream): no table on the side. `None` if `id` is not open here, or is the
    /// connection whose callback is running (reach that one through its `Conn`).
    pub fn state(&mut self, id: ConnId) -> Option<&mut S> {
        self.core.live(id).map(|c| &mut c.state)
    }

    /// Bytes queued on connection `id` and not yet written (`None` if it is not open here).
    pub fn output_len(&mut self, id: ConnId) -> Option<usize> {
        self.core.live(id).map(|c| c.out_len())
    }

    /// Closes connection `id` after flushing it. `false` if it is not open here.
    pub fn close(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core.deferred.push(Deferred::Close(id.key, id.gen));
        true
    }

    /// Aborts connection `id` (see [`Conn::abort`](crate::Conn::abort)): its queued output
    /// is dropped and the socket is reset. `false` if it is not open here.
    pub fn abort(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core.deferred.push(Deferred::Abort(id.key, id.gen));
        true
    }

    /// Sends end-of-file on connection `id` once its queued output is written (see
    /// [`Conn::shutdown_write`](crate::Conn::shutdown_write)). `false` if it is not open here.
    pub fn shutdown_write(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core
            .deferred
            .push(Deferred::ShutdownWrite(id.key, id.gen));
        true
    }

    /// Calls [`Handler::woken`](crate::Handler::woken) for connection `id` right after the
    /// current callback, on this loop, without a system call (the in-loop counterpart of
    /// [`Handle::wake`]): how one connection hands work to another, e.g. bytes for a peer
    /// that must go through the peer's own protocol layer. `false` if it is not open here.
    pub fn wake(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core.deferred.push(Deferred::Wake(id.key, id.gen));
        true
    }

    /// Opens an outbound connection from this loop and returns its id at once. The
    /// connection is served by the same handler as accepted ones and starts with `state`
    /// (so a proxy can store in it the id of the connection it dials for). When the
    /// connect completes, `opened` fires ([`Conn::is_dialed`](crate::Conn::is_dialed) is
    /// true); if it fails — refused, unreachable, name not found, timeout — `opened` never
    /// fires and `closed` gets the error ([`Error::is_connect`]). Either way `closed`
    /// fires exactly once. Output written to the id before it connects is sent once it
    /// does. During a graceful shutdown dials are still made (for the connections
    /// finishing their work); the shutdown deadline closes them with the rest.
    ///
    /// `addr` is `tcp://host:port` (also `tcp4`, `tcp6`, plain `host:port`) or
    /// `unix:///path`. IP literals and unix paths connect at once; host names are resolved
    /// on the server's resolver thread, never on the loop. The addresses a name resolves
    /// to are tried in order within the dial's timeout.
    pub fn dial(&mut self, addr: &str, opts: DialOptions, state: S) -> Result<ConnId, Error> {
        self.core.dial(addr, opts, state)
    }

    /// Couples two connections of this loop both ways (see
    /// [`Conn::link`](crate::Conn::link)). `false` unless both are open here.
    pub fn link(&mut self, a: ConnId, b: ConnId) -> bool {
        if a == b || self.core.live(a).is_none() || self.core.live(b).is_none() {
            return false;
        }
        self.core.set_link((a.key, a.gen), (b.key, b.gen));
        true
    }

    /// Ends `id`'s link (see [`Conn::unlink`](crate::Conn::unlink)). `false` unless `id`
    /// is open on this loop.
    pub fn unlink(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core.unlink((id.key, id.gen));
        true
    }

    /// Starts a graceful shutdown of the whole server.
    pub fn shutdown(&mut self) {
        self.core.ctx.handle.shutdown();
    }

    /// This loop's counters.
    pub fn stats(&self) -> Stats {
        self.core.ctx.handle.loop_stats(self.core.ctx.index)
    }

    /// Runs `f` once on this loop after `delay` (gev's `RunAfter`). `f` gets the loop's
    /// `Control`, so it can write to or close connections.
    pub fn after<F>(&mut self, delay: Duration, f: F) -> TimerId
    where
        F: FnMut(&mut Control<'_, S>) + 'static,
    {
        self.add_timer(delay, None, Box::new(f))
    }

    /// Runs `f` on this loop every `period` until [cancelled](Control::cancel) (gev's
    /// `RunEvery`); a period under 1 ms is raised to 1 ms.
    pub fn every<F>(&mut self, period: Duration, f: F) -> TimerId
    where
        F: FnMut(&mut Control<'_, S>) + 'static,
    {
        let period = period.max(Duration::from_millis(1));
        self.add_timer(period, Some(period), Box::new(f))
    }

    fn add_timer(&mut self, delay: Duration, period: Option<Duration>, f: TimerFn<S>) -> TimerId {
        let (key, gen) = self
            .core
            .user_timers
            .insert(UserTimer { period, f: Some(f) })
            .unwrap_or((u32::MAX, 0));
        self.core
            .timers
            .add(self.core.now() + delay, TimerKind::User { key, gen });
        TimerId { key, gen }
    }

    /// Cancels a timer. `false` if it already fired (once) or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        if self
            .core
            .user_timers
            .get_gen_mut(id.key as usize, id.gen)
            .is_none()
        {
            return false;
        }
        self.core.user_timers.remove(id.key as usize);
        true
    }

    /// Timers on this loop made with `after`/`every` and not yet cancelled, nor fired (a
    /// one-shot timer counts while its own callback runs).
    pub fn timers(&self) -> usize {
        self.core.user_timers.len()
    }
}
