//! One loop: a thread, a `mio::Poll`, the connections it owns, and the handler.
//!
//! # How an event flows
//!
//! `epoll_wait` (through `Poll::poll`) returns edge-triggered events. A readable connection
//! is read until `WouldBlock` (at most [`MAX_READS`] reads per turn; then it goes to the
//! back of the ready queue so one busy peer cannot starve the others). Each read lands in
//! the loop's shared read buffer, unless the connection already holds unconsumed input, in
//! which case it is appended there. The handler's `data` sees the bytes through [`Conn`];
//! its writes go to the loop's staging queue. When the callback returns, the staged output
//! is written at once (vectored when several buffers wait) and only what the socket did not
//! take, and only the input the handler did not consume, move into buffers owned by the
//! connection. A writable event flushes those; when they drain, they are freed.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::balance::Balancer;
use crate::buf::{InBuf, OutBuf};
use crate::conn::{flags, Conn, ConnBufs, ConnId, ConnIo, Connection, LoopCtx};
use crate::handle::{Inbox, Msg, Shared};
use crate::listener::Listener;
use crate::server::Config;
use crate::slots::Slots;
use crate::socket::Stream;
use crate::timer::{TimerKind, Timers};
use crate::{Action, Control, Error, Handler};

/// Token of the loop's waker.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Listener `i` of a loop has token `LISTENER_BASE + i`; connection keys stay below.
pub(crate) const LISTENER_BASE: usize = usize::MAX - 1 - 65_536;
/// Reads per connection per turn before it yields to the others.
pub(crate) const MAX_READS: usize = 16;
/// Messages taken from the inbox per turn.
const MAX_MSGS: usize = 4096;
/// Room reserved when reading into a connection's own input buffer.
const OWN_READ_CHUNK: usize = 16 * 1024;
/// Back-off before accepting again after an accept error (descriptors exhausted, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Reads spent discarding a closed connection's late input before giving up on it.
const MAX_DRAIN_READS: usize = 64;

/// A listener served by this loop.
pub(crate) struct LoopListener {
    pub(crate) listener: Listener,
    pub(crate) addr_index: u16,
    /// Accepted connections are spread over all loops (shared listener) or kept here
    /// (one socket per loop with `reuseport`).
    pub(crate) balanced: bool,
}

/// Operations requested through [`Control`] while the handler is borrowed; done after the
/// callback returns.
#[derive(Debug)]
pub(crate) enum Deferred {
    Flush(u32, u32),
    Close(u32, u32),
}

/// Which callback to run for a connection.
#[derive(Clone, Copy, Debug)]
enum Cb {
    Opened,
    Data,
    Eof,
    Writable,
    Woken,
}

/// Everything a loop owns except the handler (so a callback can borrow both).
pub(crate) struct Core<S> {
    pub(crate) ctx: LoopCtx,
    pub(crate) poll: Poll,
    pub(crate) slots: Slots<Connection<S>>,
    /// The shared read buffer.
    rbuf: InBuf,
    /// The shared staging output queue.
    stage: OutBuf,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cfg: Arc<Config>,
    timers: Timers,
    /// Connections with more to read, served after the current events.
    ready: VecDeque<(u32, u32)>,
    pub(crate) deferred: Vec<Deferred>,
    /// Errors to report in `closed` once a closing connection has flushed.
    close_errors: Vec<(u32, Error)>,
    listeners: Vec<Option<LoopListener>>,
    inbox: Inbox,
    inbox_pending: bool,
    pub(crate) shutting_down: bool,
    balancer: Balancer,
    accept_warned: Option<Instant>,
}

/// A loop and its handler.
pub(crate) struct EventLoop<H: Handler> {
    handler: H,
    core: Core<H::State>,
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
    pub(crate) fn live(&mut self, id: ConnId) -> Option<&mut Connection<S>> {
        if id.loop_index as usize != self.ctx.index {
            return None;
        }
        self.slots
            .get_gen_mut(id.key as usize, id.gen)
            .filter(|c| !c.io.has(flags::CLOSING))
    }

    fn open_count_add(&self, delta: isize) {
        let c = &self.shared.conns[self.ctx.index];
        if delta > 0 {
            c.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as usize, Ordering::Relaxed);
        }
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
        for (i, l) in listeners.iter_mut().enumerate() {
            if let Some(l) = l {
                poll.registry().register(
                    &mut l.listener,
                    Token(LISTENER_BASE + i),
                    Interest::READABLE,
                )?;
            }
        }
        let seed = Instant::now().elapsed().as_nanos() as u64
            ^ (ctx.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ std::process::id() as u64;
        Ok(EventLoop {
            handler,
            core: Core {
                rbuf: InBuf::with_capacity(cfg.read_buffer),
                stage: OutBuf::default(),
                slots: Slots::new(),
                timers: Timers::default(),
                ready: VecDeque::new(),
                deferred: Vec::new(),
                close_errors: Vec::new(),
                listeners,
                inbox,
                inbox_pending: false,
                shutting_down: false,
                balancer: Balancer::new(cfg.balance, seed),
                accept_warned: None,
                ctx,
                poll,
                shared,
                cfg,
            },
        })
    }

    /// Runs until shutdown completes.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let a = self.handler.serving(&mut Control {
            core: &mut self.core,
        });
        self.after_control(a);
        self.fire_tick();
        loop {
            if self.core.shutting_down && self.core.slots.is_empty() {
                break;
            }
            let timeout = if !self.core.ready.is_empty() || self.core.inbox_pending {
                Some(Duration::ZERO)
            } else {
                self.core
                    .timers
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.core.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.core.inbox_pending = true,
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE),
                    Token(key) => {
                        let hup = ev.is_read_closed() || ev.is_error();
                        let readable = ev.is_readable() || hup;
                        let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        self.conn_event(key, readable, writable, hup);
                    }
                }
            }
            if self.core.inbox_pending {
                self.drain_inbox();
            }
            self.run_ready();
            self.run_timers();
        }
        Ok(())
    }

    // ----- connection events -------------------------------------------------------------

    fn conn_event(&mut self, key: usize, readable: bool, writable: bool, hup: bool) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if readable {
            c.io.set(flags::READABLE);
        }
        if hup {
            c.io.set(flags::RDHUP);
        }
        if writable {
            c.io.set(flags::WRITABLE);
            self.flush(key);
        }
        if readable {
            self.read(key);
        }
    }

    /// Reads until `WouldBlock`, EOF, pause, or the per-turn limit.
    fn read(&mut self, key: usize) {
        for _ in 0..MAX_READS {
            let core = &mut self.core;
            let Some(c) = core.slots.get_mut(key) else {
                return;
            };
            if c.io.has(flags::LINGERING) {
                self.drain_lingering(key);
                return;
            }
            if !c.io.has(flags::READABLE)
                || c.io.has(flags::PAUSED | flags::CLOSING | flags::READ_EOF)
            {
                return;
            }
            let (res, room) = match c.bufs.as_deref_mut() {
                Some(b) if !b.input.is_empty() => {
                    let r = b.input.read_from(&mut c.io.stream, OWN_READ_CHUNK);
                    (r, b.input.room())
                }
                _ => {
                    let r = core.rbuf.read_from(&mut c.io.stream, 1);
                    (r, core.rbuf.room())
                }
            };
            match res {
                Ok(0) => {
                    c.io.set(flags::READ_EOF);
                    c.io.unset(flags::READABLE);
                    self.dispatch(key, Cb::Eof);
                    return;
                }
                Ok(_) => {
                    // A read that left room in the buffer drained the socket: the next
                    // bytes will raise a new edge, so skip the read that would only say
                    // WouldBlock, unless the peer's FIN was signalled (then read to EOF).
                    if room > 0 && !c.io.has(flags::RDHUP) {
                        c.io.unset(flags::READABLE);
                        self.dispatch(key, Cb::Data);
                        return;
                    }
                    self.dispatch(key, Cb::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.io.unset(flags::READABLE);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(key, Error::io(e));
                    return;
                }
            }
        }
        // Still readable after the per-turn limit: come back after the others.
        self.queue_read(key);
    }

    fn queue_read(&mut self, key: usize) {
        let gen = self.core.slots.gen(key);
        if let Some(c) = self.core.slots.get_mut(key) {
            if !c.io.has(flags::QUEUED) {
                c.io.set(flags::QUEUED);
                self.core.ready.push_back((key as u32, gen));
            }
        }
    }

    fn run_ready(&mut self) {
        for _ in 0..self.core.ready.len() {
            let Some((key, gen)) = self.core.ready.pop_front() else {
                break;
            };
            if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                c.io.unset(flags::QUEUED);
                self.read(key as usize);
            }
        }
    }

    /// Runs one callback for connection `key`, then settles its buffers and acts on the result.
    fn dispatch(&mut self, key: usize, cb: Cb) {
        let id = self.core.conn_id(key);
        let EventLoop { handler, core } = self;
        let Core {
            slots,
            rbuf,
            stage,
            ctx,
            ..
        } = core;
        let Some(Connection { io, bufs, state }) = slots.get_mut(key) else {
            return;
        };
        let (input, out) = match bufs.as_deref_mut() {
            Some(ConnBufs { input, out }) => (
                if input.is_empty() { &mut *rbuf } else { input },
                if out.is_empty() { &mut *stage } else { out },
            ),
            None => (&mut *rbuf, &mut *stage),
        };
        let mut conn = Conn {
            id,
            io,
            input,
            out,
            ctx,
            state,
        };
        let action = match cb {
            Cb::Opened => handler.opened(&mut conn),
            Cb::Data => handler.data(&mut conn),
            Cb::Eof => handler.eof(&mut conn),
            Cb::Writable => handler.writable(&mut conn),
            Cb::Woken => handler.woken(&mut conn),
        };
        self.settle(key, action);
    }

    /// After a callback: move leftovers into the connection, write staged output, apply
    /// limits, backpressure and the action.
    fn settle(&mut self, key: usize, action: Action) {
        let core = &mut self.core;
        let max_input = core.cfg.max_input;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        // Input the handler left in the shared buffer becomes the connection's own.
        if !core.rbuf.is_empty() {
            c.bufs
                .get_or_insert_with(Box::default)
                .input
                .set_from(core.rbuf.bytes());
        }
        core.rbuf.clear();
        let mut over_limit = false;
        if let Some(b) = c.bufs.as_deref_mut() {
            b.input.settle();
            over_limit = b.input.len() > max_input;
        }
        // Staged output goes out now; what the socket does not take stays with the connection.
        let mut failed = None;
        if !core.stage.is_empty() {
            let mut written = 0;
            let res = if c.io.has(flags::WRITABLE) {
                core.stage.flush_to(&mut c.io.stream, &mut written)
            } else {
                Ok(false)
            };
            match res {
                Ok(true) => {}
                Ok(false) => {
                    c.io.unset(flags::WRITABLE);
                    let b = c.bufs.get_or_insert_with(Box::default);
                    std::mem::swap(&mut b.out, &mut core.stage);
                }
                Err(e) => {
                    core.stage.discard();
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            self.fail(key, Error::io(e));
            return;
        }
        if over_limit {
            log::debug!(
                "loop {}: connection {} over the input limit",
                core.ctx.index,
                key
            );
            self.fail(key, Error::input_limit(max_input));
            return;
        }
        let close = c.io.has(flags::CLOSE_REQ);
        c.io.unset(flags::CLOSE_REQ);
        self.flush(key);
        match action {
            Action::Close => self.begin_close(key, None),
            Action::Shutdown => self.start_shutdown(),
            Action::None => {}
        }
        if close {
            self.begin_close(key, None);
        }
    }

    /// Writes the connection's own queued output, if the socket is writable.
    fn flush(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::LINGERING) {
            return;
        }
        if let Some(b) = c.bufs.as_deref_mut() {
            if !b.out.is_empty() && c.io.has(flags::WRITABLE) {
                let mut written = 0;
                match b.out.flush_to(&mut c.io.stream, &mut written) {
                    Ok(true) => {}
                    Ok(false) => c.io.unset(flags::WRITABLE),
                    Err(e) => {
                        b.out.discard();
                        self.fail(key, Error::io(e));
                        return;
                    }
                }
            }
        }
        self.after_output(key);
    }

    /// Consequences of the output queue's new length: free empty buffers, finish a close or
    /// a half-close, pause or resume reading.
    fn after_output(&mut self, key: usize) {
        let (hwm, lwm) = (self.core.cfg.out_high_water, self.core.cfg.out_low_water);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
        if let Some(b) = c.bufs.as_deref_mut() {
            if b.out.is_empty() {
                b.out.release();
                if b.input.is_empty() {
                    c.bufs = None;
                }
            }
        }
        if pending == 0 {
            if c.io.has(flags::CLOSING) {
                let err = self.take_close_error(key);
                self.finish_close(key, err, true);
                return;
            }
            if c.io.has(flags::SHUT_WR_REQ) && !c.io.has(flags::SHUT_WR_DONE) {
                c.io.set(flags::SHUT_WR_DONE);
                if let Err(e) = c.io.stream.shutdown(Shutdown::Write) {
                    if e.kind() != io::ErrorKind::NotConnected {
                        self.fail(key, Error::io(e));
                        return;
                    }
                }
            }
            if c.io.has(flags::SHUT_WR_DONE) && c.io.has(flags::READ_EOF) {
                // Both directions are finished: the conversation is over.
                self.begin_close(key, None);
                return;
            }
        }
        if pending > hwm && !c.io.has(flags::PAUSED) {
            c.io.set(flags::PAUSED);
        } else if pending <= lwm && c.io.has(flags::PAUSED) {
            c.io.unset(flags::PAUSED);
            let readable = c.io.has(flags::READABLE);
            if !c.io.has(flags::CLOSING) {
                self.dispatch(key, Cb::Writable);
            }
            if readable {
                self.queue_read(key);
            }
        }
    }

    fn take_close_error(&mut self, key: usize) -> Option<Error> {
        let i = self
            .core
            .close_errors
            .iter()
            .position(|(k, _)| *k as usize == key)?;
        Some(self.core.close_errors.swap_remove(i).1)
    }

    // ----- closing ----------------------------------------------------------------------

    /// Stops reading and delivering; closes once queued output is flushed (or the linger
    /// runs out). `err` is reported in `closed`.
    fn begin_close(&mut self, key: usize, err: Option<Error>) {
        let linger = self.core.cfg.close_linger;
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING) {
            return;
        }
        c.io.set(flags::CLOSING);
        let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
        if pending == 0 {
            self.finish_close(key, err, true);
            return;
        }
        if let Some(e) = err {
            self.core.close_errors.push((key as u32, e));
        }
        self.core.timers.add(
            Instant::now() + linger,
            TimerKind::FlushLinger {
                key: key as u32,
                gen,
            },
        );
    }

    /// The socket failed: close now, output is lost.
    fn fail(&mut self, key: usize, err: Error) {
        if let Some(c) = self.core.slots.get_mut(key) {
            if let Some(b) = c.bufs.as_deref_mut() {
                b.out.discard();
            }
            c.io.set(flags::CLOSING);
        }
        let _ = self.take_close_error(key);
        self.finish_close(key, Some(err), false);
    }

    /// Calls `closed`, then lets the socket go: at once, or (`graceful`) after sending FIN
    /// and draining what the peer still sends, so the close is not a reset that could
    /// destroy the output just written.
    fn finish_close(&mut self, key: usize, err: Option<Error>, graceful: bool) {
        let id = self.core.conn_id(key);
        {
            let EventLoop { handler, core } = self;
            let Core {
                slots,
                rbuf,
                stage,
                ctx,
                ..
            } = core;
            let Some(Connection { io, bufs, state }) = slots.get_mut(key) else {
                return;
            };
            if io.has(flags::LINGERING) {
                return;
            }
            io.set(flags::CLOSING | flags::LINGERING);
            let input = match bufs.as_deref_mut() {
                Some(b) if !b.input.is_empty() => &mut b.input,
                _ => &mut *rbuf,
            };
            let mut conn = Conn {
                id,
                io,
                input,
                out: stage,
                ctx,
                state,
            };
            handler.closed(&mut conn, err);
            rbuf.clear();
            stage.discard();
        }
        let core = &mut self.core;
        core.open_count_add(-1);
        let shutting_down = core.shutting_down;
        let linger = core.cfg.close_linger;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        c.bufs = None;
        if graceful && !c.io.has(flags::READ_EOF) && !shutting_down {
            if !c.io.has(flags::SHUT_WR_DONE) {
                c.io.set(flags::SHUT_WR_DONE);
                let _ = c.io.stream.shutdown(Shutdown::Write);
            }
            c.io.set(flags::READABLE);
            core.timers.add(
                Instant::now() + linger,
                TimerKind::DrainLinger {
                    key: key as u32,
                    gen: id.gen,
                },
            );
            self.drain_lingering(key);
        } else {
            core.slots.remove(key);
        }
    }

    /// Reads and discards a closed connection's late input; drops it at EOF or error.
    fn drain_lingering(&mut self, key: usize) {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        for _ in 0..MAX_DRAIN_READS {
            core.rbuf.clear();
            match core.rbuf.read_from(&mut c.io.stream, 1) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    core.rbuf.clear();
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        core.rbuf.clear();
        core.slots.remove(key);
    }

    // ----- accepting ----------------------------------------------------------------------

    fn accept(&mut self, index: usize) {
        loop {
            let Some(Some(l)) = self.core.listeners.get(index) else {
                return;
            };
            match l.listener.accept() {
                Ok(stream) => {
                    let (addr_index, balanced) = (l.addr_index, l.balanced);
                    if let Err(e) = stream.set_nodelay(self.core.cfg.nodelay) {
                        log::debug!("set TCP_NODELAY: {e}");
                    }
                    let target = if balanced {
                        self.core.balancer.pick(&self.core.shared.conns)
                    } else {
                        self.core.ctx.index
                    };
                    self.core.shared.conns[target].fetch_add(1, Ordering::Relaxed);
                    if target == self.core.ctx.index {
                        self.open(stream, addr_index);
                    } else if !self.core.shared.mailboxes[target]
                        .post(Msg::Assign { stream, addr_index })
                    {
                        self.core.shared.conns[target].fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                    _ if e.raw_os_error() == Some(libc::EPROTO) => {}
                    _ => {
                        // EMFILE/ENFILE/ENOBUFS/ENOMEM and anything unexpected: leave the
                        // connections in the backlog and try again shortly. No spinning:
                        // the retry is a timer, and the listener is edge-triggered.
                        let now = Instant::now();
                        if self
                            .core
                            .accept_warned
                            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
                        {
                            self.core.accept_warned = Some(now);
                            log::warn!(
                                "loop {}: accept failed: {e}; retrying every {:?}",
                                self.core.ctx.index,
                                ACCEPT_BACKOFF
                            );
                        }
                        self.core.timers.add(
                            now + ACCEPT_BACKOFF,
                            TimerKind::AcceptRetry { listener: index },
                        );
                        return;
                    }
                },
            }
        }
    }

    /// Registers an accepted connection (already counted in `shared.conns`) and calls `opened`.
    fn open(&mut self, mut stream: Stream, addr_index: u16) {
        let core = &mut self.core;
        if core.shutting_down {
            core.open_count_add(-1);
            return;
        }
        let (key, _) = core.slots.next_key();
        if key as usize >= LISTENER_BASE {
            core.open_count_add(-1);
            return;
        }
        if let Err(e) = core.poll.registry().register(
            &mut stream,
            Token(key as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("loop {}: register connection: {e}", core.ctx.index);
            core.open_count_add(-1);
            return;
        }
        let conn = Connection {
            io: ConnIo {
                stream,
                // A new socket's send buffer is empty: writes from `opened` go straight out.
                flags: flags::WRITABLE,
                addr_index,
            },
            bufs: None,
            state: H::State::default(),
        };
        if core.slots.insert(conn).is_none() {
            core.open_count_add(-1);
            return;
        }
        self.dispatch(key as usize, Cb::Opened);
    }

    // ----- inbox, control, timers, shutdown ---------------------------------------------

    fn drain_inbox(&mut self) {
        self.core.inbox_pending = false;
        self.core.shared.mailboxes[self.core.ctx.index].clear_notified();
        for _ in 0..MAX_MSGS {
            let Ok(msg) = self.core.inbox.try_recv() else {
                return;
            };
            match msg {
                Msg::Assign { stream, addr_index } => self.open(stream, addr_index),
                Msg::Wake(id) => {
                    if self.core.live(id).is_some() {
                        self.dispatch(id.key as usize, Cb::Woken);
                    }
                }
                Msg::Send(id, data) => {
                    if let Some(c) = self.core.live(id) {
                        if !c.io.has(flags::SHUT_WR_REQ) {
                            c.bufs
                                .get_or_insert_with(Box::default)
                                .out
                                .write_bytes(data);
                            self.flush(id.key as usize);
                        }
                    }
                }
                Msg::Close(id) => {
                    if self.core.live(id).is_some() {
                        self.begin_close(id.key as usize, None);
                    }
                }
                Msg::Shutdown => self.start_shutdown(),
            }
        }
        // More may be waiting: come back after serving the sockets.
        self.core.inbox_pending = true;
    }

    /// Carries out what a [`Control`] callback deferred, then its action.
    fn after_control(&mut self, action: Action) {
        let deferred = std::mem::take(&mut self.core.deferred);
        for d in &deferred {
            match *d {
                Deferred::Flush(key, gen) => {
                    if self.core.slots.get_gen_mut(key as usize, gen).is_some() {
                        self.flush(key as usize);
                    }
                }
                Deferred::Close(key, gen) => {
                    if self.core.slots.get_gen_mut(key as usize, gen).is_some() {
                        self.begin_close(key as usize, None);
                    }
                }
            }
        }
        // Keep the allocation for next time.
        let mut deferred = deferred;
        deferred.clear();
        if self.core.deferred.is_empty() {
            self.core.deferred = deferred;
        }
        if action == Action::Shutdown {
            self.start_shutdown();
        }
    }

    fn fire_tick(&mut self) {
        let (next, action) = self.handler.tick(&mut Control {
            core: &mut self.core,
        });
        self.after_control(action);
        if let Some(d) = next {
            if !self.core.shutting_down {
                self.core.timers.add(Instant::now() + d, TimerKind::Tick);
            }
        }
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        while let Some(kind) = self.core.timers.pop_due(now) {
            match kind {
                TimerKind::Tick => {
                    if !self.core.shutting_down {
                        self.fire_tick();
                    }
                }
                TimerKind::FlushLinger { key, gen } => {
                    let after = self.core.cfg.close_linger;
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if c.io.has(flags::CLOSING) && !c.io.has(flags::LINGERING) {
                            let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
                            let _ = self.take_close_error(key as usize);
                            self.fail(key as usize, Error::flush_timeout(pending, after));
                        }
                    }
                }
                TimerKind::DrainLinger { key, gen } => {
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if c.io.has(flags::LINGERING) {
                            self.core.slots.remove(key as usize);
                        }
                    }
                }
                TimerKind::ShutdownDeadline => {
                    let after = self.core.cfg.shutdown_timeout;
                    for key in self.core.slots.keys() {
                        let Some(c) = self.core.slots.get_mut(key) else {
                            continue;
                        };
                        if c.io.has(flags::LINGERING) {
                            self.core.slots.remove(key);
                        } else {
                            let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
                            self.fail(key, Error::flush_timeout(pending, after));
                        }
                    }
                }
                TimerKind::AcceptRetry { listener } => self.accept(listener),
            }
        }
    }

    fn start_shutdown(&mut self) {
        if self.core.shutting_down {
            return;
        }
        self.core.shutting_down = true;
        self.core.ctx.handle.shutdown();
        for l in self.core.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                let _ = self.core.poll.registry().deregister(&mut l.listener);
            }
        }
        self.core.ready.clear();
        for key in self.core.slots.keys() {
            let Some(c) = self.core.slots.get_mut(key) else {
                continue;
            };
            if c.io.has(flags::LINGERING) {
                self.core.slots.remove(key);
            } else {
                self.begin_close(key, None);
            }
        }
        let deadline = Instant::now() + self.core.cfg.shutdown_timeout;
        self.core.timers.add(deadline, TimerKind::ShutdownDeadline);
    }
}
