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

use crate::conn::LoopCtx;
use crate::event_loop::{EventLoop, WAKER};
use crate::handle::{Mailbox, Shared};
use crate::{Builder, ConnId, Handle, Handler};

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
