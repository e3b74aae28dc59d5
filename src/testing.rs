//! Drive a handler (or a whole translated stack) with bytes, without sockets: for tests
//! and fuzzing.
//!
//! A [`Driver`] runs the real loop code (dispatch, buffers, limits, close) on virtual
//! connections: [`feed`](Driver::feed) delivers bytes as if they had been read,
//! [`take_output`](Driver::take_output) returns what the handler wrote, as if the peer
//! had read it. Time is a manual clock: it moves only when [`advance`](Driver::advance)
//! moves it, which fires the timers that came due (idle, read and send timeouts, close
//! lingers, the handler's `tick`, `Control::after` / `every`), so timeout behaviour is
//! tested in microseconds and never depends on how busy the machine is.
//!
//! ```
//! use wireloop::testing::Driver;
//! use wireloop::{Action, Conn, Handler};
//!
//! struct Upper;
//! impl Handler for Upper {
//!     type State = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         let up = conn.input().to_ascii_uppercase();
//!         conn.write(&up);
//!         conn.consume(up.len());
//!         Action::None
//!     }
//! }
//!
//! let mut d = Driver::new(Upper);
//! let c = d.open(0);
//! d.feed(c, b"hello");
//! assert_eq!(d.take_output(c), b"HELLO");
//! ```

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use crate::handle::{Mailbox, Shared};
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, ConnIo, Connection, LoopCtx, NO_PEER};
use crate::reactor::timeouts::Timeouts;
use crate::reactor::Cb;
use crate::reactor::{EventLoop, WAKER};
use crate::socket::Stream;
use crate::stats::bump;
use crate::{Builder, ConnId, Control, Error, Handle, Handler};
use std::io;

/// One loop, no listeners, connections without sockets.
pub struct Driver<H: Handler> {
    ev: EventLoop<H>,
    handle: Handle,
}

impl<H: Handler> Driver<H> {
    /// A driver for `handler` with the default limits. Panics only if the system cannot
    /// create an epoll instance (the loop keeps one for its waker).
    pub fn new(handler: H) -> Driver<H> {
        Driver::with_settings(handler, &Builder::default())
    }

    /// A driver for `handler` with the limits and timeouts of `settings` (a server
    /// builder; its listeners and loop count are ignored): water marks, `max_input`, idle,
    /// read and send timeouts, close linger.
    pub fn with_settings(handler: H, settings: &Builder) -> Driver<H> {
        let poll = Poll::new().expect("epoll instance for the test driver");
        let waker = Waker::new(poll.registry(), WAKER).expect("waker for the test driver");
        let (tx, rx) = mpsc::channel();
        let cfg = settings.config();
        let shared = Arc::new(Shared::new(
            vec![Mailbox::new(tx, waker)],
            cfg.resolver.clone(),
        ));
        let handle = Handle {
            shared: shared.clone(),
        };
        let ctx = LoopCtx {
            index: 0,
            handle: handle.clone(),
        };
        let mut ev = EventLoop::new(handler, ctx, poll, shared, Arc::new(cfg), rx, Vec::new())
            .expect("test driver loop");
        ev.start_driven();
        Driver { ev, handle }
    }

    /// Moves the driver's clock on by `by`, firing every timer that came due meanwhile
    /// (timeouts, lingers, ticks, user timers), earliest first.
    pub fn advance(&mut self, by: Duration) {
        self.ev.advance(by);
    }

    /// The driver's clock (what [`Control::now`](crate::Control::now) returns to the
    /// handler).
    pub fn now(&self) -> Instant {
        self.ev.now()
    }

    /// Opens a connection as if listener `addr_index` had accepted it (`opened` runs).
    pub fn open(&mut self, addr_index: usize) -> ConnId {
        self.ev
            .open_virtual(addr_index.min(u16::MAX as usize - 1) as u16)
            .expect("connection slots exhausted")
    }

    /// Delivers `data` as one read. `false` if the connection is closed or its peer
    /// already sent end-of-file.
    pub fn feed(&mut self, id: ConnId, data: &[u8]) -> bool {
        self.ev.feed_virtual(id, data)
    }

    /// The peer closes its sending side (`eof` runs).
    pub fn eof(&mut self, id: ConnId) -> bool {
        self.ev.eof_virtual(id)
    }

    /// Everything the handler wrote since the last call, as the peer would read it.
    pub fn take_output(&mut self, id: ConnId) -> Vec<u8> {
        self.ev.take_output_virtual(id)
    }

    /// Wakes the connection (`woken` runs), as [`Handle::wake`] would.
    pub fn wake(&mut self, id: ConnId) {
        self.ev.wake_virtual(id)
    }

    /// Whether the connection is still open (not closing or closed).
    pub fn is_open(&mut self, id: ConnId) -> bool {
        self.ev.is_open(id)
    }

    /// The socket "fails": the connection closes with an error.
    pub fn reset(&mut self, id: ConnId) {
        self.ev.reset_virtual(id)
    }

    /// The handler under test.
    pub fn handler(&mut self) -> &mut H {
        self.ev.handler_mut()
    }

    /// The handle (statistics, and `send`/`wake`/`close`, which take effect on the next
    /// driver call that runs the loop's inbox — none does: they are for inspection).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The loop's side of the driver: connections without sockets, and the manual clock.
impl<H: Handler> EventLoop<H> {
    /// Opens a connection with no socket: its output stays queued for `take_output`.
    pub(crate) fn open_virtual(&mut self, addr_index: u16) -> Option<ConnId> {
        let core = &mut self.core;
        let conn = Connection {
            io: ConnIo {
                stream: Stream::Unconnected,
                flags: 0,
                phase: Phase::Handshaking,
                addr_index,
                watch_epoch: 0,
                timeouts: Timeouts::from_config(&core.cfg, core.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            stack: None,
            state: H::State::default(),
        };
        let (key, _) = core.slots.insert(Box::new(conn))?;
        core.open_count_add(1);
        bump(&core.counters().accepted, 1);
        let id = core.conn_id(key as usize);
        core.arm_watch(key as usize);
        self.attach_and_open(key as usize, &[]);
        Some(id)
    }

    /// Delivers `data` to a virtual connection as if it had been read.
    pub(crate) fn feed_virtual(&mut self, id: ConnId, data: &[u8]) -> bool {
        let now_ms = self.core.now_ms;
        let Some(c) = self.core.live(id) else {
            return false;
        };
        if c.io.has(flags::READ_EOF) {
            return false;
        }
        c.bufs.get_or_insert_with(Box::default).input.append(data);
        c.io.timeouts.last_read = now_ms;
        c.io.timeouts.last_active = now_ms;
        bump(&self.core.counters().bytes_in, data.len() as u64);
        self.dispatch(id.key as usize, Cb::Data);
        self.run_deferred();
        true
    }

    /// The peer of a virtual connection closed its sending side.
    pub(crate) fn eof_virtual(&mut self, id: ConnId) -> bool {
        let Some(c) = self.core.live(id) else {
            return false;
        };
        if c.io.has(flags::READ_EOF) {
            return false;
        }
        c.io.set(flags::READ_EOF);
        self.dispatch(id.key as usize, Cb::Eof);
        self.run_deferred();
        true
    }

    /// Takes everything queued on a virtual connection, as if the peer had read it, and
    /// lets the loop react (a pending close completes, a paused reader resumes).
    pub(crate) fn take_output_virtual(&mut self, id: ConnId) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(c) = self.core.slots.get_gen_mut(id.key as usize, id.gen) else {
            return out;
        };
        if c.io.phase == Phase::Lingering {
            return out;
        }
        let _ = self.encode(id.key as usize, true, false);
        let Some(c) = self.core.slots.get_gen_mut(id.key as usize, id.gen) else {
            return out;
        };
        if let Some(b) = c.bufs.as_deref_mut() {
            b.out.flush_to(&mut out, &mut 0).ok();
        }
        if !out.is_empty() {
            c.io.timeouts.last_write = self.core.now_ms;
            c.io.timeouts.last_active = self.core.now_ms;
        }
        self.after_output(id.key as usize);
        self.run_deferred();
        out
    }

    /// Calls `woken` for a connection, as a wake from the inbox does.
    pub(crate) fn wake_virtual(&mut self, id: ConnId) {
        if self.core.live(id).is_some() {
            self.wake(id.key as usize);
            self.run_deferred();
        }
    }

    /// Whether `id` is still open (not closing or closed).
    pub(crate) fn is_open(&mut self, id: ConnId) -> bool {
        self.core.live(id).is_some()
    }

    /// Closes a virtual connection as if its socket failed.
    pub(crate) fn reset_virtual(&mut self, id: ConnId) {
        if self
            .core
            .slots
            .get_gen_mut(id.key as usize, id.gen)
            .is_some()
        {
            let e = io::Error::from(io::ErrorKind::ConnectionReset);
            self.fail(id.key as usize, Error::io(e));
            self.run_deferred();
        }
    }

    /// Starts a loop driven by hand (the test driver): a manual clock, then `serving` and
    /// the first `tick`, as `run` does.
    pub(crate) fn start_driven(&mut self) {
        self.core.use_manual_clock();
        let a = self.handler.serving(&mut Control {
            core: &mut self.core,
        });
        self.after_control(a);
        self.fire_tick();
    }

    /// Moves the manual clock on and fires every timer that came due, in order.
    pub(crate) fn advance(&mut self, by: std::time::Duration) {
        self.core.advance_manual_clock(by);
        self.run_timers();
        self.run_deferred();
    }

    /// The loop's clock.
    pub(crate) fn now(&self) -> Instant {
        self.core.now()
    }
}
