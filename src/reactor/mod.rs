//! One loop: a thread, a `mio::Poll`, the connections it owns, and the handler.
//!
//! # How an event flows
//!
//! `epoll_wait` (through `Poll::poll`) returns edge-triggered events. A readable connection
//! is read until `WouldBlock` (at most [`MAX_READS`] reads per turn; then it goes to the
//! back of the ready queue so one busy peer cannot starve the others). A read that leaves
//! room in the buffer has drained the socket, so the read that would only say `WouldBlock`
//! is skipped (unless the peer's FIN was signalled). Each read lands in the loop's shared
//! read buffer, unless the connection already holds unconsumed input, in which case it is
//! appended there. The handler's `data` sees the bytes through [`Conn`]; its writes go to
//! the loop's staging queue. When the callback returns, the staged output is written at
//! once (vectored when several buffers wait) and only what the socket did not take, and
//! only the input the handler did not consume, move into buffers owned by the connection.
//! A writable event flushes those; when they drain, they are freed.

mod accept;
mod close;
pub(crate) mod conn;
mod connect;
pub(crate) mod control;
mod dispatch;
pub(crate) mod handler;
mod inbox;
mod links;
mod read;
mod run;
pub(crate) mod store;
pub(crate) mod timeouts;
mod timers;
mod transport;
mod wire;
mod write;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Poll, Token};

use crate::balance::Balancer;
use crate::buf::{InBuf, OutBuf};
use crate::config::Config;
use crate::dial::DialProgress;
use crate::handle::{Inbox, Shared};
use crate::id::ConnId;
use crate::listener::Listener;
use crate::reactor::store::{flags, Connection, LoopCtx};
use crate::slots::Slots;
use crate::stats::bump;
use crate::timer::Timers;
use crate::{Control, Error, Handler};

/// Token of the loop's waker.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Listener `i` of a loop has token `LISTENER_BASE + i`; connection keys stay below.
pub(crate) const LISTENER_BASE: usize = usize::MAX - 1 - 65_536;
/// Reads per connection (or datagrams per UDP socket) per turn before yielding.
pub(crate) const MAX_READS: usize = 16;
/// Flush rounds per connection per turn when `post_write` keeps refilling.
pub(crate) const MAX_FLUSH_ROUNDS: usize = 16;
/// Messages taken from the inbox per turn.
pub(crate) const MAX_MSGS: usize = 4096;
/// Room reserved when reading into a connection's own input buffer.
pub(crate) const OWN_READ_CHUNK: usize = 16 * 1024;
/// Back-off before accepting again after an accept error (descriptors exhausted, say).
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Reads spent discarding a closed connection's late input before giving up on it.
pub(crate) const MAX_DRAIN_READS: usize = 64;
/// Minimum time between two identical warnings.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(5);

/// A listener served by this loop.
pub(crate) struct LoopListener {
    pub(crate) listener: Listener,
    pub(crate) addr_index: u16,
    /// Accepted connections are spread over all loops (shared listener) or kept here
    /// (one socket per loop with `reuseport`).
    pub(crate) balanced: bool,
}

/// The callback of a user timer.
pub(crate) type TimerFn<S> = Box<dyn FnMut(&mut Control<'_, S>)>;

/// A timer made with `Control::after` / `every`.
pub(crate) struct UserTimer<S> {
    pub(crate) period: Option<Duration>,
    /// Taken out while it runs.
    pub(crate) f: Option<TimerFn<S>>,
}

/// Operations requested through [`Control`] while the handler is borrowed; done after the
/// callback returns.
#[derive(Debug)]
pub(crate) enum Deferred {
    Flush(u32, u32),
    Close(u32, u32),
    /// Close by a reset, dropping queued output (`Control::abort`).
    Abort(u32, u32),
    ShutdownWrite(u32, u32),
    /// Call `woken` for the connection.
    Wake(u32, u32),
    /// Try the next address of a dial.
    DialStep(u32, u32),
    /// Offer a layered connection's waiting wire bytes again (the handler consumed some
    /// plaintext outside an input event).
    Resume(u32, u32),
}

/// Which callback to run for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cb {
    Opened,
    Data,
    Eof,
    Writable,
    Woken,
    ReadClosed,
    /// No callback: a layered connection decodes what waits and delivers it.
    Resume,
}

/// Everything a loop owns except the handler (so a callback can borrow both).
pub(crate) struct Core<S> {
    pub(crate) ctx: LoopCtx,
    pub(crate) poll: Poll,
    /// Boxed: a callback takes its connection out of the slab and puts it back, a pointer
    /// move rather than a copy of the whole connection.
    pub(crate) slots: Slots<Box<Connection<S>>>,
    /// Receive buffer for datagrams (allocated only if the loop serves UDP).
    pub(crate) dgram: Vec<u8>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cfg: Arc<Config>,
    pub(crate) timers: Timers,
    pub(crate) user_timers: Slots<UserTimer<S>>,
    /// The loop clock: milliseconds since `epoch`, wrapping; refreshed once per wake-up.
    pub(crate) now_ms: u32,
    /// The time of the current wake-up (what `now_ms` was computed from).
    pub(crate) turn: Instant,
    pub(crate) epoch: Instant,
    /// The manual clock of the test driver (`None`: the real one).
    pub(crate) manual_now: Option<Instant>,
    /// Connections (or listeners, above `LISTENER_BASE`) with more to do, served after the
    /// current events.
    pub(crate) ready: VecDeque<(usize, u32)>,
    pub(crate) deferred: Vec<Deferred>,
    /// Errors to report in `closed` once a closing connection has flushed.
    pub(crate) close_errors: Vec<(u32, Error)>,
    /// The connection whose write failed and whose remaining input is being read before
    /// it fails: its end of input or read error ends that read, not the connection.
    pub(crate) salvaging: Option<usize>,
    pub(crate) listeners: Vec<Option<LoopListener>>,
    pub(crate) inbox: Inbox,
    pub(crate) inbox_pending: bool,
    pub(crate) shutting_down: bool,
    pub(crate) balancer: Balancer,
    pub(crate) accept_warned: Option<Instant>,
    pub(crate) refuse_warned: Option<Instant>,
    /// Listeners with an accept retry scheduled (so failures do not pile up timers).
    pub(crate) accept_retry: Vec<bool>,
    /// Dials in progress, by slot key.
    pub(crate) dialing: HashMap<u32, DialProgress>,
}

/// A loop and its handler.
pub(crate) struct EventLoop<H: Handler> {
    pub(crate) handler: H,
    pub(crate) core: Core<H::State>,
    /// The buffers every connection borrows during a callback (beside `core`, so a
    /// callback's view borrows them without moving them out).
    pub(crate) bufs: LoopBufs,
}

/// The loop's shared buffers: a connection that keeps nothing between events uses these.
#[derive(Debug)]
pub(crate) struct LoopBufs {
    /// The shared read buffer.
    pub(crate) rbuf: InBuf,
    /// The shared staging output queue.
    pub(crate) stage: OutBuf,
}

impl<S> Core<S> {
    pub(crate) fn conn_id(&self, key: usize) -> ConnId {
        ConnId {
            loop_index: self.ctx.index as u32,
            key: key as u32,
            gen: self.slots.gen(key),
        }
    }

    /// The connection `id` names, if it is this loop's, alive, and not closing.
    /// Puts a stored connection in the queue of connections to read again.
    pub(crate) fn queue_ready(&mut self, key: usize) {
        let gen = self.slots.gen(key);
        if let Some(c) = self.slots.get_mut(key) {
            if !c.io.has(flags::QUEUED) {
                c.io.set(flags::QUEUED);
                self.ready.push_back((key, gen));
            }
        }
    }

    /// Queues the connection being served by a callback (out of the slab meanwhile) to
    /// be read again once it is back.
    pub(crate) fn requeue(&mut self, (key, gen): (u32, u32)) {
        self.ready.push_back((key as usize, gen));
    }

    /// Remembers the error a closing connection reports to `closed` (replacing an earlier
    /// one): taken by `begin_close_from`, or on a failure, by `fail`.
    pub(crate) fn set_close_error(&mut self, key: u32, err: Error) {
        self.close_errors.retain(|(k, _)| *k != key);
        self.close_errors.push((key, err));
    }

    /// The reason connection `key` is being closed with, if one was given.
    pub(crate) fn close_reason(&self, key: u32) -> Option<&Error> {
        self.close_errors
            .iter()
            .find_map(|(k, e)| (*k == key).then_some(e))
    }

    pub(crate) fn live(&mut self, id: ConnId) -> Option<&mut Connection<S>> {
        if id.loop_index as usize != self.ctx.index {
            return None;
        }
        self.slots
            .get_gen_mut(id.key as usize, id.gen)
            .filter(|c| !c.io.is_closing())
            .map(|c| &mut **c)
    }

    pub(crate) fn open_count_add(&self, delta: isize) {
        let c = &self.shared.conns[self.ctx.index];
        if delta > 0 {
            c.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as usize, Ordering::Relaxed);
        }
    }

    pub(crate) fn counters(&self) -> &crate::stats::Counters {
        &self.shared.counters[self.ctx.index]
    }

    pub(crate) fn tick_clock(&mut self) {
        self.turn = self.now();
        self.now_ms = self.turn.saturating_duration_since(self.epoch).as_millis() as u32;
    }

    /// The loop's time: the real clock, or the test driver's manual one. Deadlines of the
    /// loop's timers are on this clock.
    pub(crate) fn now(&self) -> Instant {
        self.manual_now.unwrap_or_else(Instant::now)
    }

    /// Switches to a manual clock (the test driver), starting at the real time.
    #[cfg(feature = "testing")]
    pub(crate) fn use_manual_clock(&mut self) {
        self.manual_now = Some(Instant::now());
        self.tick_clock();
    }

    /// Moves the manual clock on by `by`.
    #[cfg(feature = "testing")]
    pub(crate) fn advance_manual_clock(&mut self, by: Duration) {
        if let Some(t) = self.manual_now.as_mut() {
            *t += by;
        }
        self.tick_clock();
    }

    /// The loop clock.
    pub(crate) fn now_ms(&self) -> u32 {
        self.now_ms
    }

    /// Bookkeeping after a view wrote `sent` bytes straight to connection `to`: count them
    /// and have the loop flush (or examine) `to` after the callback.
    pub(crate) fn wrote_elsewhere(&mut self, to: ConnId, sent: usize) {
        bump(&self.counters().bytes_out, sent as u64);
        self.deferred.push(Deferred::Flush(to.key, to.gen));
    }
}

impl<H: Handler> EventLoop<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        handler: H,
        ctx: LoopCtx,
        poll: Poll,
        shared: Arc<Shared>,
        cfg: Arc<Config>,
        inbox: Inbox,
        listeners: Vec<LoopListener>,
    ) -> io::Result<EventLoop<H>> {
        let mut listeners: Vec<Option<LoopListener>> = listeners.into_iter().map(Some).collect();
        let nlisteners = listeners.len();
        let mut udp = false;
        for (i, l) in listeners.iter_mut().enumerate() {
            if let Some(l) = l {
                udp |= matches!(l.listener, Listener::Udp(_));
                poll.registry().register(
                    &mut l.listener,
                    Token(LISTENER_BASE + i),
                    Interest::READABLE,
                )?;
            }
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (ctx.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ std::process::id() as u64;
        Ok(EventLoop {
            handler,
            bufs: LoopBufs {
                rbuf: InBuf::with_capacity(cfg.read_buffer),
                stage: OutBuf::default(),
            },
            core: Core {
                dgram: if udp {
                    vec![0; cfg.max_datagram + 1]
                } else {
                    Vec::new()
                },
                slots: Slots::new(),
                timers: Timers::default(),
                user_timers: Slots::new(),
                now_ms: 0,
                epoch: Instant::now(),
                turn: Instant::now(),
                manual_now: None,
                ready: VecDeque::new(),
                deferred: Vec::new(),
                close_errors: Vec::new(),
                salvaging: None,
                listeners,
                inbox,
                inbox_pending: false,
                shutting_down: false,
                balancer: Balancer::new(cfg.balance, seed),
                accept_warned: None,
                refuse_warned: None,
                accept_retry: vec![false; nlisteners],
                dialing: HashMap::new(),
                ctx,
                poll,
                shared,
                cfg,
            },
        })
    }

    /// The handler.
    #[cfg(feature = "testing")]
    pub(crate) fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}
