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

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::addr::{Addr, Host, Scheme, Target};
use crate::balance::Balancer;
use crate::buf::{InBuf, OutBuf};
use crate::conn::{flags, Conn, ConnBufs, ConnId, ConnIo, Connection, LoopCtx, NO_PEER};
use crate::datagram::Datagram;
use crate::detach::{Detached, DetachedStream};
use crate::dial::{self, DialOptions, DialProgress};
use crate::handle::{Inbox, Msg, Shared};
use crate::listener::Listener;
use crate::resolver::{Family, ResolveError};
use crate::server::Config;
use crate::slots::Slots;
use crate::socket::Stream;
use crate::stats::bump;
use crate::timeouts::Timeouts;
use crate::timer::{TimerKind, Timers};
use crate::{Action, Control, Error, Handler};

/// Token of the loop's waker.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Listener `i` of a loop has token `LISTENER_BASE + i`; connection keys stay below.
pub(crate) const LISTENER_BASE: usize = usize::MAX - 1 - 65_536;
/// Reads per connection (or datagrams per UDP socket) per turn before yielding.
pub(crate) const MAX_READS: usize = 16;
/// Flush rounds per connection per turn when `post_write` keeps refilling.
const MAX_FLUSH_ROUNDS: usize = 16;
/// Messages taken from the inbox per turn.
const MAX_MSGS: usize = 4096;
/// Room reserved when reading into a connection's own input buffer.
const OWN_READ_CHUNK: usize = 16 * 1024;
/// Back-off before accepting again after an accept error (descriptors exhausted, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Reads spent discarding a closed connection's late input before giving up on it.
const MAX_DRAIN_READS: usize = 64;
/// Minimum time between two identical warnings.
const WARN_EVERY: Duration = Duration::from_secs(5);

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
    ShutdownWrite(u32, u32),
    /// Call `woken` for the connection.
    Wake(u32, u32),
    /// Try the next address of a dial.
    DialStep(u32, u32),
}

/// Which callback to run for a connection.
#[derive(Clone, Copy, Debug)]
enum Cb {
    Opened,
    Data,
    Eof,
    Writable,
    Woken,
    ReadClosed,
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
    /// Receive buffer for datagrams (allocated only if the loop serves UDP).
    dgram: Vec<u8>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cfg: Arc<Config>,
    pub(crate) timers: Timers,
    pub(crate) user_timers: Slots<UserTimer<S>>,
    /// The loop clock: milliseconds since `epoch`, wrapping; refreshed once per wake-up.
    now_ms: u32,
    epoch: Instant,
    /// The manual clock of the test driver (`None`: the real one).
    manual_now: Option<Instant>,
    /// Connections (or listeners, above `LISTENER_BASE`) with more to do, served after the
    /// current events.
    ready: VecDeque<(usize, u32)>,
    pub(crate) deferred: Vec<Deferred>,
    /// Errors to report in `closed` once a closing connection has flushed.
    close_errors: Vec<(u32, Error)>,
    /// The connection whose write failed and whose remaining input is being read before
    /// it fails: its end of input or read error ends that read, not the connection.
    salvaging: Option<usize>,
    listeners: Vec<Option<LoopListener>>,
    inbox: Inbox,
    inbox_pending: bool,
    pub(crate) shutting_down: bool,
    balancer: Balancer,
    accept_warned: Option<Instant>,
    refuse_warned: Option<Instant>,
    /// Listeners with an accept retry scheduled (so failures do not pile up timers).
    accept_retry: Vec<bool>,
    /// Dials in progress, by slot key.
    pub(crate) dialing: HashMap<u32, DialProgress>,
}

/// A loop and its handler.
pub(crate) struct EventLoop<H: Handler> {
    pub(crate) handler: H,
    pub(crate) core: Core<H::State>,
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

    /// Ends the link of `me` with its former peer `old` (stored in the slab): `old` is
    /// unlinked if it still points at `me`, and read again if it waited on `me`'s output.
    /// Called before `me` is linked elsewhere or unlinked, so a connection is never left
    /// coupled to one that moved on (a pooled upstream serving another client).
    pub(crate) fn drop_link(&mut self, me: (u32, u32), old: (u32, u32)) {
        if old == NO_PEER || old == me {
            return;
        }
        let Some(p) = self.slots.get_gen_mut(old.0 as usize, old.1) else {
            return;
        };
        if p.io.peer == me {
            p.io.peer = NO_PEER;
            if p.io.has(flags::PEER_BLOCKED) {
                p.io.unset(flags::PEER_BLOCKED);
                p.io.timeouts.last_read = self.now_ms;
                self.queue_ready(old.0 as usize);
            }
        }
    }

    /// Links two stored connections both ways, ending their former links first.
    pub(crate) fn set_link(&mut self, a: (u32, u32), b: (u32, u32)) {
        for (me, other) in [(a, b), (b, a)] {
            let Some(c) = self.slots.get_gen_mut(me.0 as usize, me.1) else {
                continue;
            };
            let old = c.io.peer;
            c.io.peer = other;
            if c.io.has(flags::PEER_BLOCKED) {
                // Re-checked against the new peer on the next read.
                c.io.unset(flags::PEER_BLOCKED);
                c.io.timeouts.last_read = self.now_ms;
                self.queue_ready(me.0 as usize);
            }
            if old != other {
                self.drop_link(me, old);
            }
        }
    }

    /// Unlinks a stored connection from its peer (both ways).
    pub(crate) fn unlink(&mut self, me: (u32, u32)) {
        let Some(c) = self.slots.get_gen_mut(me.0 as usize, me.1) else {
            return;
        };
        let old = std::mem::replace(&mut c.io.peer, NO_PEER);
        if c.io.has(flags::PEER_BLOCKED) {
            c.io.unset(flags::PEER_BLOCKED);
            c.io.timeouts.last_read = self.now_ms;
            self.queue_ready(me.0 as usize);
        }
        self.drop_link(me, old);
    }

    /// Remembers the error a closing connection reports to `closed` (replacing an earlier
    /// one): taken by `begin_close_from`, or on a failure, by `fail`.
    pub(crate) fn set_close_error(&mut self, key: u32, err: Error) {
        self.close_errors.retain(|(k, _)| *k != key);
        self.close_errors.push((key, err));
    }

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

    fn counters(&self) -> &crate::stats::Counters {
        &self.shared.counters[self.ctx.index]
    }

    fn tick_clock(&mut self) {
        self.now_ms = self.now().saturating_duration_since(self.epoch).as_millis() as u32;
    }

    /// The loop's time: the real clock, or the test driver's manual one. Deadlines of the
    /// loop's timers are on this clock.
    pub(crate) fn now(&self) -> Instant {
        self.manual_now.unwrap_or_else(Instant::now)
    }

    /// Switches to a manual clock (the test driver), starting at the real time.
    pub(crate) fn use_manual_clock(&mut self) {
        self.manual_now = Some(Instant::now());
        self.tick_clock();
    }

    /// Moves the manual clock on by `by`.
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

    /// Starts an outbound connection; see [`Control::dial`].
    pub(crate) fn dial(
        &mut self,
        addr: &str,
        opts: DialOptions,
        state: S,
    ) -> Result<ConnId, Error> {
        let addr = Addr::parse(addr)?;
        if self.shutting_down {
            return Err(Error::config("cannot dial: the server is shutting down"));
        }
        if addr.scheme().is_udp() {
            return Err(Error::config(format!(
                "cannot dial {:?}: dial makes stream connections (tcp or unix)",
                addr.as_str()
            )));
        }
        let (candidates, lookup) = match addr.target() {
            Target::Unix(p) => (vec![dial::Target::Unix(p.clone())], None),
            Target::Inet {
                host: Host::Ip(ip),
                port,
            } => (
                vec![dial::Target::Inet(std::net::SocketAddr::new(*ip, *port))],
                None,
            ),
            Target::Inet {
                host: Host::Name(name),
                port,
            } => (Vec::new(), Some((name.clone(), *port))),
        };
        let (key, gen) = self.slots.next_key();
        if key as usize >= LISTENER_BASE {
            return Err(Error::config("too many connections on this loop"));
        }
        let conn = Connection {
            io: ConnIo {
                stream: Stream::Unconnected,
                flags: flags::DIALED | flags::CONNECTING,
                addr_index: u16::MAX,
                watch_epoch: 0,
                timeouts: Timeouts::none(self.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            state,
        };
        if self.slots.insert(conn).is_none() {
            return Err(Error::config("too many connections on this loop"));
        }
        self.open_count_add(1);
        bump(&self.counters().dialed, 1);
        let id = ConnId {
            loop_index: self.ctx.index as u32,
            key,
            gen,
        };
        self.timers
            .add(self.now() + opts.timeout, TimerKind::Connect { key, gen });
        let mut progress = DialProgress {
            addr: addr.clone(),
            opts,
            candidates: candidates.into(),
            last_err: None,
            resolving: lookup.is_some(),
        };
        match lookup {
            Some((host, port)) => {
                let family = match addr.scheme() {
                    Scheme::Tcp4 => Family::V4,
                    Scheme::Tcp6 => Family::V6,
                    _ => Family::Any,
                };
                let weak = Arc::downgrade(&self.shared);
                let index = self.ctx.index;
                let reply = Box::new(move |result| {
                    if let Some(shared) = weak.upgrade() {
                        shared.mailboxes[index].post(Msg::Resolved { id, result });
                    }
                });
                if let Err(e) =
                    self.shared
                        .resolve(&host, port, family, progress.opts.timeout, reply)
                {
                    progress.resolving = false;
                    progress.last_err = Some(e);
                    self.deferred.push(Deferred::DialStep(key, gen));
                }
            }
            None => self.deferred.push(Deferred::DialStep(key, gen)),
        }
        self.dialing.insert(key, progress);
        Ok(id)
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
            core: Core {
                rbuf: InBuf::with_capacity(cfg.read_buffer),
                stage: OutBuf::default(),
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
            self.core.tick_clock();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.core.inbox_pending = true,
                    Token(t) if t >= LISTENER_BASE => self.listener_event(t - LISTENER_BASE),
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
            if !self.core.deferred.is_empty() {
                self.run_deferred();
            }
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
        if c.io.has(flags::CONNECTING) {
            self.connect_event(key);
            match self.core.slots.get_mut(key) {
                Some(c) if !c.io.has(flags::CONNECTING) => {}
                _ => return,
            }
        }
        if writable {
            if let Some(c) = self.core.slots.get_mut(key) {
                c.io.set(flags::WRITABLE);
            }
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
            // Backpressure (own output over the high-water mark, or the linked peer's) does
            // not hold back the read before a failure: that output is lost anyway, and what
            // the peer sent (an answer to an upload it refused) must not be.
            let salvaging = core.salvaging == Some(key);
            // A linked connection's input goes to its peer, so the peer's output (checked
            // below) holds back its reads, not its own: pausing on its own output too would
            // deadlock a proxy whose far side also stops reading while its output is full
            // (an echo upstream), each side waiting for the other to read.
            let own_pause = c.io.has(flags::PAUSED) && c.io.peer == NO_PEER;
            if !c.io.has(flags::READABLE)
                || c.io
                    .has(flags::CLOSING | flags::READ_EOF | flags::CONNECTING)
            {
                return;
            }
            if own_pause && !salvaging {
                self.hangup_while_held(key);
                return;
            }
            if c.io.peer != NO_PEER && !salvaging {
                let (pk, pg) = c.io.peer;
                let hwm = core.cfg.out_high_water;
                let peer_full = core
                    .slots
                    .get_gen_mut(pk as usize, pg)
                    .and_then(|p| p.bufs.as_ref())
                    .is_some_and(|b| b.out.len() > hwm);
                if peer_full {
                    if let Some(c) = core.slots.get_mut(key) {
                        c.io.set(flags::PEER_BLOCKED);
                    }
                    self.hangup_while_held(key);
                    return;
                }
            }
            let Some(c) = core.slots.get_mut(key) else {
                return;
            };
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
                    if core.salvaging != Some(key) {
                        self.dispatch(key, Cb::Eof);
                    }
                    return;
                }
                Ok(n) => {
                    c.io.timeouts.last_active = core.now_ms;
                    c.io.timeouts.last_read = core.now_ms;
                    bump(&core.shared.counters[core.ctx.index].bytes_in, n as u64);
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
                Err(_) if core.salvaging == Some(key) => return,
                Err(e) => {
                    self.fail(key, Error::io(e));
                    return;
                }
            }
        }
        // Still readable after the per-turn limit: come back after the others.
        self.queue_ready(key);
    }

    /// Reading `key` is held back by backpressure: if the peer has meanwhile hung up, say
    /// so now rather than when the input before its end has been read (which may be
    /// never, if what holds reading back never drains). A reset fails the connection (after
    /// delivering what is still readable); a FIN calls `read_closed` once.
    fn hangup_while_held(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if !c.io.has(flags::RDHUP) || c.io.has(flags::CLOSING | flags::READ_EOF) {
            return;
        }
        // Only a hang-up pays for this system call.
        if let Ok(Some(e)) = c.io.stream.take_error() {
            let gen = self.core.slots.gen(key);
            self.read_before_failing(key);
            if self.core.slots.get_gen_mut(key, gen).is_some() {
                self.fail(key, Error::io(e));
            }
            return;
        }
        if c.io.has(flags::READ_CLOSED_TOLD) {
            return;
        }
        c.io.set(flags::READ_CLOSED_TOLD);
        self.dispatch(key, Cb::ReadClosed);
    }

    fn queue_ready(&mut self, key: usize) {
        self.core.queue_ready(key);
    }

    fn run_ready(&mut self) {
        for _ in 0..self.core.ready.len() {
            let Some((key, gen)) = self.core.ready.pop_front() else {
                break;
            };
            if key >= LISTENER_BASE {
                self.listener_event(key - LISTENER_BASE);
                continue;
            }
            if let Some(c) = self.core.slots.get_gen_mut(key, gen) {
                c.io.unset(flags::QUEUED);
                self.flush(key);
                self.read(key);
            }
        }
    }

    /// Calls `f` with the handler and a view of connection `key`: its own input if it has
    /// some (else the shared read buffer), its own output if it has some (else the staging
    /// queue). The caller deals with what is left in the shared buffers.
    fn with_conn<R>(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::State>) -> R,
    ) -> Option<R> {
        let id = self.core.conn_id(key);
        // The connection and the shared buffers leave the loop for the call, so the view
        // can also reach the rest of the loop (other connections, timers, dial).
        let mut conn = self.core.slots.take(key)?;
        let mut rbuf = std::mem::take(&mut self.core.rbuf);
        let mut stage = std::mem::take(&mut self.core.stage);
        let r = {
            let Connection { io, bufs, state } = &mut conn;
            let (input, out) = match bufs.as_deref_mut() {
                Some(ConnBufs { input, out }) => (
                    if input.is_empty() { &mut rbuf } else { input },
                    if out.is_empty() { &mut stage } else { out },
                ),
                None => (&mut rbuf, &mut stage),
            };
            let mut view = Conn {
                id,
                io,
                input,
                out,
                core: &mut self.core,
                state,
            };
            f(&mut self.handler, &mut view)
        };
        self.core.rbuf = rbuf;
        self.core.stage = stage;
        self.core.slots.put_back(key, conn);
        Some(r)
    }

    /// Runs one callback for connection `key`, then settles its buffers and acts on the result.
    fn dispatch(&mut self, key: usize, cb: Cb) {
        let action = self.with_conn(key, |h, conn| {
            let action = match cb {
                Cb::Opened => h.opened(conn),
                Cb::Data => h.data(conn),
                Cb::Eof => h.eof(conn),
                Cb::Writable => h.writable(conn),
                Cb::Woken => h.woken(conn),
                Cb::ReadClosed => h.read_closed(conn),
            };
            if conn.output_len() > 0 {
                h.pre_write(conn);
            }
            action
        });
        if let Some(action) = action {
            self.settle(key, action);
        }
    }

    /// Moves input left in the shared read buffer and output left in the staging queue
    /// into connection `key`'s own buffers. Returns whether its input is over the limit.
    fn keep_leftovers(&mut self, key: usize) -> bool {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            core.rbuf.clear();
            core.stage.discard();
            return false;
        };
        if !core.rbuf.is_empty() {
            c.bufs
                .get_or_insert_with(Box::default)
                .input
                .set_from(core.rbuf.bytes());
        }
        core.rbuf.clear();
        if !core.stage.is_empty() {
            let b = c.bufs.get_or_insert_with(Box::default);
            debug_assert!(b.out.is_empty());
            std::mem::swap(&mut b.out, &mut core.stage);
        }
        match c.bufs.as_deref_mut() {
            Some(b) => {
                b.input.settle();
                b.input.len() > core.cfg.max_input
            }
            None => false,
        }
    }

    /// After a callback: write staged output, keep leftovers, apply limits, backpressure
    /// and the action.
    fn settle(&mut self, key: usize, action: Action) {
        // Staged output goes out now, straight from the staging queue.
        let mut written = 0;
        let core = &mut self.core;
        if let Some(c) = core.slots.get_mut(key) {
            if !core.stage.is_empty() && c.io.has(flags::WRITABLE) {
                match core.stage.flush_to(&mut c.io.stream, &mut written) {
                    Ok(true) => {}
                    Ok(false) => c.io.unset(flags::WRITABLE),
                    Err(e) => {
                        core.stage.discard();
                        self.keep_leftovers(key);
                        let gen = self.core.slots.gen(key);
                        self.read_before_failing(key);
                        if self.core.slots.get_gen_mut(key, gen).is_some() {
                            self.fail(key, Error::io(e));
                        }
                        return;
                    }
                }
            }
        }
        let over_limit = self.keep_leftovers(key);
        if written > 0 {
            self.wrote(key, written);
        }
        if over_limit {
            log::debug!(
                "loop {}: connection {key} over the input limit",
                self.core.ctx.index
            );
            self.fail(key, Error::input_limit(self.core.cfg.max_input));
            return;
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let close = c.io.has(flags::CLOSE_REQ);
        c.io.unset(flags::CLOSE_REQ);
        if c.io.has(flags::TIMEOUTS_CHANGED) {
            self.core.arm_watch(key);
        }
        self.flush(key);
        match action {
            Action::Close => self.begin_close_from(key, None, true),
            Action::Shutdown => self.start_shutdown(),
            Action::Detach => self.begin_detach(key),
            Action::None => {}
        }
        if close {
            self.begin_close_from(key, None, true);
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
    }

    /// Bookkeeping after `written` bytes went out: counters, activity, `post_write`.
    fn wrote(&mut self, key: usize, written: usize) {
        bump(&self.core.counters().bytes_out, written as u64);
        let now_ms = self.core.now_ms;
        if let Some(c) = self.core.slots.get_mut(key) {
            c.io.timeouts.last_active = now_ms;
            c.io.timeouts.last_write = now_ms;
            if c.io.has(flags::CLOSING) {
                return;
            }
        }
        self.with_conn(key, |h, conn| h.post_write(conn, written));
        self.keep_leftovers(key);
    }

    /// Writes the connection's own queued output while the socket takes it (calling the
    /// write hooks around each round), then deals with the new queue length.
    fn flush(&mut self, key: usize) {
        for _ in 0..MAX_FLUSH_ROUNDS {
            let Some(c) = self.core.slots.get_mut(key) else {
                return;
            };
            if c.io.has(flags::LINGERING) {
                return;
            }
            let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
            if pending == 0 || !c.io.has(flags::WRITABLE) {
                return self.after_output(key);
            }
            if !c.io.has(flags::CLOSING) {
                self.with_conn(key, |h, conn| h.pre_write(conn));
                self.keep_leftovers(key);
            }
            let Some(c) = self.core.slots.get_mut(key) else {
                return;
            };
            let Some(b) = c.bufs.as_deref_mut() else {
                return self.after_output(key);
            };
            let mut written = 0;
            match b.out.flush_to(&mut c.io.stream, &mut written) {
                Ok(true) => {}
                Ok(false) => c.io.unset(flags::WRITABLE),
                Err(e) => {
                    b.out.discard();
                    let gen = self.core.slots.gen(key);
                    self.read_before_failing(key);
                    if self.core.slots.get_gen_mut(key, gen).is_some() {
                        self.fail(key, Error::io(e));
                    }
                    return;
                }
            }
            if written > 0 {
                self.wrote(key, written);
            }
        }
        // A producer that keeps refilling a fast socket: let the others run first.
        self.queue_ready(key);
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
        if (pending > 0) != c.io.has(flags::SEND_CLOCK) {
            // Output just backed up (the send timeout's clock starts) or drained.
            self.core.output_clock(key, pending > 0);
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if let Some(b) = c.bufs.as_deref_mut() {
            if b.out.is_empty() {
                b.out.release();
                if b.input.is_empty() {
                    c.bufs = None;
                }
            }
        }
        if pending == 0 {
            if c.io.has(flags::DETACHING) {
                self.finish_detach(key);
                return;
            }
            if c.io.has(flags::CLOSING) {
                let err = self.take_close_error(key);
                self.finish_close(key, err, true);
                return;
            }
            // Not while a dial is still connecting: there is no socket yet, or shutting it
            // down would abort the connect. The flush after the connect does it.
            if c.io.has(flags::SHUT_WR_REQ) && !c.io.has(flags::SHUT_WR_DONE | flags::CONNECTING) {
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
        let peer = c.io.peer;
        if pending <= lwm && peer != NO_PEER {
            self.unblock_peer(peer);
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if pending > hwm && !c.io.has(flags::PAUSED) {
            c.io.set(flags::PAUSED);
        } else if pending <= lwm && c.io.has(flags::PAUSED) {
            c.io.unset(flags::PAUSED);
            c.io.timeouts.last_read = self.core.now_ms;
            let readable = c.io.has(flags::READABLE);
            if !c.io.has(flags::CLOSING) {
                self.dispatch(key, Cb::Writable);
            }
            if readable {
                self.queue_ready(key);
            }
        }
    }

    /// Resumes reading a connection that waited for its linked peer to drain.
    fn unblock_peer(&mut self, (key, gen): (u32, u32)) {
        if let Some(p) = self.core.slots.get_gen_mut(key as usize, gen) {
            if p.io.has(flags::PEER_BLOCKED) {
                p.io.unset(flags::PEER_BLOCKED);
                p.io.timeouts.last_read = self.core.now_ms;
                self.queue_ready(key as usize);
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

    // ----- closing and detaching ----------------------------------------------------------

    /// Stops reading and delivering; closes once queued output is flushed (or the linger
    /// runs out). `err` is reported in `closed`.
    pub(crate) fn begin_close(&mut self, key: usize, err: Option<Error>) {
        self.begin_close_from(key, err, false);
    }

    /// Like `begin_close`; `by_handler` says the handler's own callback asked for it (so
    /// it already had its chance to write), otherwise `closing` runs first.
    fn begin_close_from(&mut self, key: usize, err: Option<Error>, by_handler: bool) {
        let linger = self.core.cfg.close_linger;
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING) {
            return;
        }
        if !by_handler && !c.io.has(flags::CONNECTING) {
            self.with_conn(key, |h, conn| h.closing(conn));
            self.keep_leftovers(key);
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING) {
            return;
        }
        c.io.set(flags::CLOSING);
        let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
        // The handler's own reason (`Conn::close_with`), unless the loop has one.
        let own = self.take_close_error(key);
        let err = err.or(own);
        if pending == 0 {
            self.finish_close(key, err, true);
            return;
        }
        if let Some(e) = err {
            self.core.set_close_error(key as u32, e);
        }
        self.core.timers.add(
            self.core.now() + linger,
            TimerKind::FlushLinger {
                key: key as u32,
                gen,
            },
        );
        // Output may have been queued just now (by `closing`): write what the socket takes.
        self.flush(key);
    }

    /// A write failed (the peer reset or closed the connection): before the connection
    /// fails, deliver what the peer sent and is still readable, such as an early answer to
    /// an upload the peer stopped reading. The caller then fails the connection with the
    /// write's error (if the handler did not close it meanwhile).
    fn read_before_failing(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING | flags::LINGERING) || self.core.salvaging.is_some() {
            return;
        }
        c.io.set(flags::READABLE | flags::RDHUP);
        self.core.salvaging = Some(key);
        self.read(key);
        self.core.salvaging = None;
    }

    /// The socket failed: close now, output is lost.
    pub(crate) fn fail(&mut self, key: usize, err: Error) {
        if let Some(c) = self.core.slots.get_mut(key) {
            if let Some(b) = c.bufs.as_deref_mut() {
                b.out.discard();
            }
            c.io.set(flags::CLOSING);
            c.io.unset(flags::DETACHING);
        }
        let _ = self.take_close_error(key);
        self.finish_close(key, Some(err), false);
    }

    /// Calls `closed`, then lets the socket go: at once, or (`graceful`) after sending FIN
    /// and draining what the peer still sends, so the close is not a reset that could
    /// destroy the output just written.
    fn finish_close(&mut self, key: usize, err: Option<Error>, graceful: bool) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::LINGERING) {
            return;
        }
        c.io.set(flags::CLOSING | flags::LINGERING);
        if let Some(b) = c.bufs.as_deref_mut() {
            b.out.discard();
        }
        let peer = c.io.peer;
        let gen = self.core.slots.gen(key);
        self.core.dialing.remove(&(key as u32));
        self.with_conn(key, |h, conn| h.closed(conn, err));
        // A reason given too late (`close_with` in `closed`) must not outlive its connection.
        let _ = self.take_close_error(key);
        if peer != NO_PEER {
            self.unblock_peer(peer);
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
        let core = &mut self.core;
        core.rbuf.clear();
        core.stage.discard();
        core.open_count_add(-1);
        bump(&core.counters().closed, 1);
        let shutting_down = core.shutting_down;
        let linger = core.cfg.close_linger;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        c.bufs = None;
        let virtual_conn = matches!(c.io.stream, Stream::Unconnected);
        // A dial closed before it connected has no conversation to wind down; left to
        // linger, its socket would still complete the connect and fire `opened`.
        let never_connected = c.io.has(flags::CONNECTING);
        if graceful
            && !c.io.has(flags::READ_EOF)
            && !shutting_down
            && !virtual_conn
            && !never_connected
        {
            if !c.io.has(flags::SHUT_WR_DONE) {
                c.io.set(flags::SHUT_WR_DONE);
                let _ = c.io.stream.shutdown(Shutdown::Write);
            }
            c.io.set(flags::READABLE);
            core.timers.add(
                core.now() + linger,
                TimerKind::DrainLinger {
                    key: key as u32,
                    gen,
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

    /// Stops reading; hands the socket out once queued output is flushed.
    fn begin_detach(&mut self, key: usize) {
        let linger = self.core.cfg.close_linger;
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING) {
            return;
        }
        c.io.set(flags::CLOSING | flags::DETACHING);
        if c.bufs.as_ref().map_or(0, |b| b.out.len()) == 0 {
            self.finish_detach(key);
            return;
        }
        self.core.timers.add(
            self.core.now() + linger,
            TimerKind::FlushLinger {
                key: key as u32,
                gen,
            },
        );
    }

    /// Takes the socket out of the loop and calls `detached`.
    fn finish_detach(&mut self, key: usize) {
        // A reason from `close_with` has no `closed` to go to: it ends with the connection,
        // as in `finish_close`, or the slot's next connection would report it.
        let _ = self.take_close_error(key);
        let id = self.core.conn_id(key);
        let core = &mut self.core;
        let Some(mut conn) = core.slots.remove(key) else {
            return;
        };
        core.open_count_add(-1);
        let _ = core.poll.registry().deregister(&mut conn.io.stream);
        let input = match conn.bufs.take() {
            Some(b) => b.input.bytes().to_vec(),
            None => Vec::new(),
        };
        let Connection {
            mut io, mut state, ..
        } = conn;
        // The user gets a duplicate descriptor; the loop's copy closes below.
        let detached =
            DetachedStream::dup_from(&io.stream).map(|stream| Detached { stream, input });
        match &detached {
            Ok(_) => bump(&core.counters().detached, 1),
            Err(e) => {
                log::warn!(
                    "loop {}: detach {id} failed, closing instead: {e}",
                    core.ctx.index
                );
                bump(&core.counters().closed, 1);
            }
        }
        let mut empty = InBuf::default();
        let mut out = OutBuf::default();
        io.set(flags::CLOSING);
        let mut view = Conn {
            id,
            io: &mut io,
            input: &mut empty,
            out: &mut out,
            core: &mut self.core,
            state: &mut state,
        };
        match detached {
            Ok(d) => self.handler.detached(&mut view, d),
            Err(e) => self.handler.closed(&mut view, Some(Error::io(e))),
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
    }

    // ----- listeners ----------------------------------------------------------------------

    fn listener_event(&mut self, index: usize) {
        match self.core.listeners.get(index) {
            Some(Some(LoopListener {
                listener: Listener::Udp(_),
                ..
            })) => self.receive_datagrams(index),
            Some(Some(_)) => self.accept(index),
            _ => {}
        }
    }

    fn warn_rate_limited(last: &mut Option<Instant>) -> bool {
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) > WARN_EVERY) {
            *last = Some(now);
            true
        } else {
            false
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let Some(Some(l)) = self.core.listeners.get(index) else {
                return;
            };
            match l.listener.accept() {
                Ok(stream) => {
                    let (addr_index, balanced) = (l.addr_index, l.balanced);
                    let cfg = &self.core.cfg;
                    let open = self.core.ctx.handle.connections();
                    if open >= cfg.max_connections {
                        bump(&self.core.counters().refused, 1);
                        if Self::warn_rate_limited(&mut self.core.refuse_warned) {
                            log::warn!(
                                "loop {}: {open} connections open, the limit is {}: refusing new ones (counted in stats.refused)",
                                self.core.ctx.index,
                                cfg.max_connections
                            );
                        }
                        drop(stream);
                        continue;
                    }
                    if let Err(e) = stream.set_nodelay(cfg.nodelay) {
                        log::debug!("set TCP_NODELAY: {e}");
                    }
                    if cfg.keepalive.is_some() {
                        if let Err(e) = stream.set_keepalive(cfg.keepalive) {
                            log::debug!("set SO_KEEPALIVE: {e}");
                        }
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
                        if Self::warn_rate_limited(&mut self.core.accept_warned) {
                            log::warn!(
                                "loop {}: accept failed: {e}; retrying every {:?}",
                                self.core.ctx.index,
                                ACCEPT_BACKOFF
                            );
                        }
                        if !self.core.accept_retry[index] {
                            self.core.accept_retry[index] = true;
                            self.core.timers.add(
                                self.core.now() + ACCEPT_BACKOFF,
                                TimerKind::AcceptRetry { listener: index },
                            );
                        }
                        return;
                    }
                },
            }
        }
    }

    /// Reads datagrams until `WouldBlock` (at most `MAX_READS` per turn) and hands each to
    /// the handler.
    fn receive_datagrams(&mut self, index: usize) {
        let max = self.core.cfg.max_datagram;
        for _ in 0..MAX_READS {
            let EventLoop { handler, core } = self;
            let Some(Some(LoopListener {
                listener: Listener::Udp(sock),
                addr_index,
                ..
            })) = core.listeners.get(index)
            else {
                return;
            };
            let counters = &core.shared.counters[core.ctx.index];
            let (n, peer) = match sock.recv_from(&mut core.dgram) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors from earlier sends surface here (ECONNREFUSED): not fatal.
                    log::debug!("loop {}: udp receive: {e}", core.ctx.index);
                    continue;
                }
            };
            bump(&counters.datagrams_in, 1);
            let truncated = n > max;
            if truncated {
                bump(&counters.datagrams_truncated, 1);
            }
            let mut d = Datagram {
                data: &core.dgram[..n.min(max)],
                peer,
                addr_index: *addr_index as usize,
                truncated,
                socket: sock,
                counters,
            };
            if handler.datagram(&mut d) == Action::Shutdown {
                self.start_shutdown();
                return;
            }
        }
        self.core.ready.push_back((LISTENER_BASE + index, 0));
    }

    // ----- virtual connections (the `testing` driver) --------------------------------------

    /// Opens a connection with no socket: its output stays queued for `take_output`.
    pub(crate) fn open_virtual(&mut self, addr_index: u16) -> Option<ConnId> {
        let core = &mut self.core;
        let conn = Connection {
            io: ConnIo {
                stream: Stream::Unconnected,
                flags: 0,
                addr_index,
                watch_epoch: 0,
                timeouts: Timeouts::from_config(&core.cfg, core.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            state: H::State::default(),
        };
        let (key, _) = core.slots.insert(conn)?;
        core.open_count_add(1);
        bump(&core.counters().accepted, 1);
        let id = core.conn_id(key as usize);
        core.arm_watch(key as usize);
        self.dispatch(key as usize, Cb::Opened);
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
        if c.io.has(flags::LINGERING) {
            return out;
        }
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

    /// The handler.
    pub(crate) fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
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
                watch_epoch: 0,
                timeouts: Timeouts::from_config(&core.cfg, core.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            state: H::State::default(),
        };
        if core.slots.insert(conn).is_none() {
            core.open_count_add(-1);
            return;
        }
        bump(&core.counters().accepted, 1);
        core.arm_watch(key as usize);
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
                        self.wake(id.key as usize);
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
                Msg::Resolved { id, result } => self.resolved(id, result),
                Msg::Dial {
                    addr,
                    opts,
                    state,
                    reply,
                } => {
                    let state = match state {
                        None => Ok(H::State::default()),
                        Some(b) => b.downcast::<H::State>().map(|b| *b).map_err(|_| {
                            Error::config("Handle::dial_with_state: the state is not the handler's State type")
                        }),
                    };
                    let res = state.and_then(|st| self.core.dial(&addr, opts, st));
                    let _ = reply.send(res);
                    self.run_deferred();
                }
            }
        }
        // More may be waiting: come back after serving the sockets.
        self.core.inbox_pending = true;
    }

    /// Carries out what a [`Control`] callback deferred, then its action.
    fn after_control(&mut self, action: Action) {
        self.run_deferred();
        if action == Action::Shutdown {
            self.start_shutdown();
        }
    }

    /// Carries out operations deferred by `Control` or by a connection's view of the loop.
    fn run_deferred(&mut self) {
        while !self.core.deferred.is_empty() {
            let mut deferred = std::mem::take(&mut self.core.deferred);
            for d in deferred.drain(..) {
                let (key, gen) = match d {
                    Deferred::Flush(k, g)
                    | Deferred::Close(k, g)
                    | Deferred::ShutdownWrite(k, g)
                    | Deferred::Wake(k, g)
                    | Deferred::DialStep(k, g) => (k as usize, g),
                };
                if self.core.slots.get_gen_mut(key, gen).is_none() {
                    continue;
                }
                match d {
                    Deferred::Flush(..) => self.flush(key),
                    Deferred::Close(..) => self.begin_close(key, None),
                    Deferred::ShutdownWrite(..) => {
                        if let Some(c) = self.core.slots.get_mut(key) {
                            c.io.set(flags::SHUT_WR_REQ);
                        }
                        self.flush(key);
                    }
                    Deferred::DialStep(..) => self.dial_step(key),
                    Deferred::Wake(..) => self.wake(key),
                }
            }
            // Keep the allocation for next time.
            if self.core.deferred.is_empty() {
                self.core.deferred = deferred;
            }
        }
    }

    // ----- dialing --------------------------------------------------------------------------

    /// Starts connecting to the next candidate address of dial `key`, or fails the dial
    /// with the last error when none is left.
    fn dial_step(&mut self, key: usize) {
        loop {
            let core = &mut self.core;
            let Some(p) = core.dialing.get_mut(&(key as u32)) else {
                return;
            };
            if p.resolving {
                return;
            }
            let Some(target) = p.candidates.pop_front() else {
                let Some(p) = core.dialing.remove(&(key as u32)) else {
                    return;
                };
                let e = p.last_err.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
                });
                self.fail(key, Error::connect(p.addr.as_str(), e));
                return;
            };
            let mut stream = match dial::connect(&target, &p.opts) {
                Ok(s) => s,
                Err(e) => {
                    p.last_err = Some(e);
                    continue;
                }
            };
            if let Err(e) = core.poll.registry().register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                p.last_err = Some(e);
                continue;
            }
            let _ = stream.set_nodelay(p.opts.nodelay.unwrap_or(core.cfg.nodelay));
            if let Some(ka) = p.opts.keepalive.or(core.cfg.keepalive) {
                let _ = stream.set_keepalive(Some(ka));
            }
            if let Some(c) = core.slots.get_mut(key) {
                c.io.stream = stream;
            }
            return;
        }
    }

    /// A connecting socket reported readiness: connected, failed, or not yet.
    fn connect_event(&mut self, key: usize) {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        if matches!(c.io.stream, Stream::Unconnected) {
            return;
        }
        let failed = match c.io.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match c.io.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = failed {
            let mut old = std::mem::replace(&mut c.io.stream, Stream::Unconnected);
            let _ = core.poll.registry().deregister(&mut old);
            drop(old);
            if let Some(p) = core.dialing.get_mut(&(key as u32)) {
                p.last_err = Some(e);
            }
            self.dial_step(key);
            return;
        }
        c.io.unset(flags::CONNECTING);
        c.io.set(flags::WRITABLE);
        c.io.timeouts = Timeouts::from_config(&core.cfg, core.now_ms);
        // Closed (with output queued) before it connected: no callback but `closed`, once
        // the output is flushed.
        let closing = c.io.has(flags::CLOSING);
        let wake = c.io.has(flags::WAKE_PENDING);
        c.io.unset(flags::WAKE_PENDING);
        core.dialing.remove(&(key as u32));
        core.arm_watch(key);
        if closing {
            self.flush(key);
        } else {
            self.dispatch(key, Cb::Opened);
            if wake {
                self.wake(key);
            }
        }
    }

    /// Calls `woken` for connection `key`, or, while it is still connecting, right after
    /// its `opened`.
    fn wake(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.has(flags::CLOSING) {
            return;
        }
        if c.io.has(flags::CONNECTING) {
            c.io.set(flags::WAKE_PENDING);
            return;
        }
        self.dispatch(key, Cb::Woken);
    }

    /// The resolver answered for dial `id`.
    fn resolved(&mut self, id: ConnId, result: Result<Vec<std::net::SocketAddr>, ResolveError>) {
        let key = id.key as usize;
        if self.core.slots.get_gen_mut(key, id.gen).is_none() {
            return;
        }
        let Some(p) = self.core.dialing.get_mut(&id.key) else {
            return;
        };
        if !p.resolving {
            return;
        }
        p.resolving = false;
        match result {
            Ok(addrs) => {
                p.candidates = addrs.into_iter().map(dial::Target::Inet).collect();
                self.dial_step(key);
            }
            Err(e) => {
                let addr = p.addr.as_str().to_string();
                self.core.dialing.remove(&id.key);
                let not_found = matches!(e, ResolveError::NotFound { .. });
                let timeout = matches!(e, ResolveError::Timeout { .. });
                self.fail(key, Error::dns(&addr, e.to_string(), not_found, timeout));
            }
        }
    }

    fn fire_tick(&mut self) {
        let (next, action) = self.handler.tick(&mut Control {
            core: &mut self.core,
        });
        self.after_control(action);
        if let Some(d) = next {
            if !self.core.shutting_down {
                self.core.timers.add(self.core.now() + d, TimerKind::Tick);
            }
        }
    }

    fn fire_user_timer(&mut self, key: u32, gen: u32) {
        let Some(t) = self.core.user_timers.get_gen_mut(key as usize, gen) else {
            return;
        };
        let Some(mut f) = t.f.take() else {
            return;
        };
        f(&mut Control {
            core: &mut self.core,
        });
        // Still there (not cancelled by itself) and periodic: run again.
        match self.core.user_timers.get_gen_mut(key as usize, gen) {
            Some(t) if t.period.is_some() && !self.core.shutting_down => {
                let period = t.period.unwrap_or_default();
                t.f = Some(f);
                self.core
                    .timers
                    .add(self.core.now() + period, TimerKind::User { key, gen });
            }
            Some(_) => {
                self.core.user_timers.remove(key as usize);
            }
            None => {}
        }
        self.after_control(Action::None);
    }

    fn run_timers(&mut self) {
        self.core.tick_clock();
        let now = self.core.now();
        while let Some(kind) = self.core.timers.pop_due(now) {
            match kind {
                TimerKind::Tick => {
                    if !self.core.shutting_down {
                        self.fire_tick();
                    }
                }
                TimerKind::User { key, gen } => self.fire_user_timer(key, gen),
                TimerKind::Watch { key, gen, epoch } => self.check_watch(key, gen, epoch),
                TimerKind::FlushLinger { key, gen } => {
                    let after = self.core.cfg.close_linger;
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if c.io.has(flags::CLOSING) && !c.io.has(flags::LINGERING) {
                            let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
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
                TimerKind::AcceptRetry { listener } => {
                    if let Some(r) = self.core.accept_retry.get_mut(listener) {
                        *r = false;
                    }
                    self.accept(listener);
                }
                TimerKind::Connect { key, gen } => {
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if c.io.has(flags::CONNECTING) {
                            let p = self.core.dialing.remove(&key);
                            let err = match p {
                                // Still waiting for the name: a DNS timeout, whichever of the
                                // two deadlines fired first.
                                Some(p) if p.resolving => Error::dns(
                                    p.addr.as_str(),
                                    format!("name resolution timed out after {:?}", p.opts.timeout),
                                    false,
                                    true,
                                ),
                                Some(p) => Error::connect_timeout(p.addr.as_str(), p.opts.timeout),
                                None => Error::connect_timeout("", Duration::ZERO),
                            };
                            self.fail(key as usize, err);
                        }
                    }
                }
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
            c.io.unset(flags::QUEUED);
            if c.io.has(flags::LINGERING) {
                self.core.slots.remove(key);
            } else {
                self.begin_close(key, None);
            }
        }
        let deadline = self.core.now() + self.core.cfg.shutdown_timeout;
        self.core.timers.add(deadline, TimerKind::ShutdownDeadline);
    }
}
