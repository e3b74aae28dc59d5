//! A connection as the handler sees it during a callback.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;

use crate::buf::{InBuf, OutBuf};
use crate::id::ConnId;
use crate::layer::Session;
use crate::reactor::store::Phase;
use crate::reactor::store::{duration_to_ms, flags, ConnIo, NO_PEER};
use crate::reactor::timeouts;
use crate::reactor::Core;
use crate::socket::NetAddr;
use crate::{Control, DialOptions, Error, Handle, LayerBuffers};

/// A connection during a handler callback: its input, its output queue, its state and
/// its addresses. Valid only for the duration of the callback (it borrows the loop).
pub struct Conn<'a, S> {
    pub(crate) id: ConnId,
    pub(crate) io: &'a mut ConnIo,
    pub(crate) input: &'a mut InBuf,
    pub(crate) out: &'a mut OutBuf,
    /// Bytes queued below the view's output: encoded by the connection's layers and not
    /// written yet.
    pub(crate) below: usize,
    /// The connection's transport layers, socket side first.
    pub(crate) layers: &'a [Box<dyn Session>],
    pub(crate) core: &'a mut Core<S>,
    /// The connection's own state (the handler's `State` type), created with `Default`
    /// when the connection opened and dropped after `closed`.
    pub state: &'a mut S,
}

impl<S> Conn<'_, S> {
    /// Everything received and not yet consumed.
    #[inline]
    pub fn input(&self) -> &[u8] {
        self.input.bytes()
    }

    /// The unconsumed input, writable: a protocol may transform it in place (the
    /// WebSocket layer unmasks payloads where they lie) before it consumes it.
    #[inline]
    pub fn input_mut(&mut self) -> &mut [u8] {
        self.input.bytes_mut()
    }

    /// Lends the (writable) input and a view of the rest of this connection at once, so
    /// a protocol can hand a payload that lies in the input to the code above it, which
    /// may write, close or reach the state meanwhile. The view shows no input; the input
    /// is not consumed here (call [`consume`](Conn::consume) afterwards).
    pub fn with_input<R>(&mut self, f: impl FnOnce(&mut [u8], &mut Conn<'_, S>) -> R) -> R {
        let mut none = InBuf::default();
        let mut view = Conn {
            id: self.id,
            io: self.io,
            input: &mut none,
            out: self.out,
            below: self.below,
            layers: self.layers,
            core: self.core,
            state: self.state,
        };
        f(self.input.bytes_mut(), &mut view)
    }

    /// Marks the first `n` bytes of [`input`](Conn::input) as used; they are not shown
    /// again. Bytes not consumed stay for the next `data` call.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.input.consume(n);
    }

    /// Queues a copy of `data` for the peer. It is written when the callback returns;
    /// what the socket does not take at once stays queued, in order.
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        if !self.io.has(flags::SHUT_WR_REQ | flags::SHUT_WR_DONE) && !self.io.is_closing() {
            self.out.write(data);
        }
    }

    /// Queues `data` without copying it (buffers under a few hundred bytes are copied,
    /// which is cheaper than sending them separately).
    #[inline]
    pub fn write_bytes(&mut self, data: Bytes) {
        if !self.io.has(flags::SHUT_WR_REQ | flags::SHUT_WR_DONE) && !self.io.is_closing() {
            self.out.write_bytes(data);
        }
    }

    /// The input and a writer for the output at once, so input can be answered without
    /// copying it first (an echo is `let (i, mut o) = conn.split(); o.write(i);`).
    #[inline]
    pub fn split(&mut self) -> (&[u8], Output<'_>) {
        let open = !self.io.has(flags::SHUT_WR_REQ | flags::SHUT_WR_DONE) && !self.io.is_closing();
        (
            self.input.bytes(),
            Output {
                out: self.out,
                open,
            },
        )
    }

    /// Bytes queued and not yet taken by the socket.
    #[inline]
    pub fn output_len(&self) -> usize {
        self.out.len() + self.below
    }

    /// The connection's transport layer of type `T` (its TLS session, to read the
    /// negotiated ALPN protocol, say), if it has one.
    pub fn layer<T: Session>(&self) -> Option<&T> {
        self.layers
            .iter()
            .find_map(|s| (s.as_ref() as &dyn std::any::Any).downcast_ref::<T>())
    }

    /// Whether the connection has transport layers (attached with
    /// [`DialOptions::layer`](crate::DialOptions::layer) or
    /// [`Handler::layers`](crate::Handler::layers)): then what the handler reads and
    /// writes is their plaintext.
    pub fn is_layered(&self) -> bool {
        !self.layers.is_empty()
    }

    /// This connection's id, for [`Handle`] and [`Control`](crate::Control) calls.
    #[inline]
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Index of the listener that accepted the connection, in the order the addresses were
    /// given to the builder (with `reuseport`, all of an address's sockets share its index).
    /// `usize::MAX` for a dialed connection.
    #[inline]
    pub fn addr_index(&self) -> usize {
        if self.io.has(flags::DIALED) {
            usize::MAX
        } else {
            self.io.addr_index as usize
        }
    }

    /// A view of this connection whose input and output are `bufs`: what a protocol layer
    /// hands to the handler above it. The handler reads decoded bytes from `bufs` and its
    /// writes land in `bufs` for the layer to encode; everything else (id, state, addresses,
    /// close, control) is this connection's.
    pub fn with_buffers<'b>(&'b mut self, bufs: &'b mut LayerBuffers) -> Conn<'b, S> {
        Conn {
            id: self.id,
            io: self.io,
            input: &mut bufs.input,
            out: &mut bufs.out,
            below: self.below + self.out.len(),
            layers: self.layers,
            core: self.core,
            state: self.state,
        }
    }

    /// Takes back a [`shutdown_write`](Conn::shutdown_write) request made during this
    /// callback and not carried out yet, returning whether there was one: a protocol
    /// layer uses it to write its own last records before passing the request on (by
    /// calling `shutdown_write` again).
    pub fn take_shutdown_write(&mut self) -> bool {
        let requested = self.io.has(flags::SHUT_WR_REQ) && !self.io.has(flags::SHUT_WR_DONE);
        if requested {
            self.io.unset(flags::SHUT_WR_REQ);
        }
        requested
    }

    /// The server's output high-water mark: above it the loop stops reading this
    /// connection (and its linked peer's producer).
    pub fn output_high_water(&self) -> usize {
        self.core.cfg.out_high_water
    }

    /// Why the connection is being closed, when the loop knows a reason: in
    /// [`Handler::closing`](crate::Handler::closing), the loop's own reason (an idle or
    /// read timeout, say: a protocol answers `408` for the latter); during other callbacks,
    /// the reason given to [`close_with`](Conn::close_with).
    pub fn close_reason(&self) -> Option<&Error> {
        self.core.close_reason(self.id.key)
    }

    /// Whether [`close`](Conn::close) was called during this callback.
    pub fn close_requested(&self) -> bool {
        self.io.has(flags::CLOSE_REQ)
    }

    /// The idle timeout in force for this connection (see [`set_idle_timeout`](Conn::set_idle_timeout)).
    pub fn idle_timeout(&self) -> Option<Duration> {
        timeouts::limit(self.io.timeouts.idle_ms)
    }

    /// The read timeout in force for this connection (see [`set_read_timeout`](Conn::set_read_timeout)).
    pub fn read_timeout(&self) -> Option<Duration> {
        timeouts::limit(self.io.timeouts.read_ms)
    }

    /// The send timeout in force for this connection (see [`set_send_timeout`](Conn::set_send_timeout)).
    pub fn send_timeout(&self) -> Option<Duration> {
        timeouts::limit(self.io.timeouts.send_ms)
    }

    /// Whether this connection was dialed (outbound) rather than accepted.
    #[inline]
    pub fn is_dialed(&self) -> bool {
        self.io.has(flags::DIALED)
    }

    /// The loop's clock (see [`Control::now`](crate::Control::now)).
    #[inline]
    pub fn now(&self) -> std::time::Instant {
        self.core.now()
    }

    /// The loop's clock when the current wake-up began: what the loop's timers and
    /// timeouts compare with, read without a system call (at most one wake-up old; use
    /// [`now`](Conn::now) for the exact time).
    #[inline]
    pub fn turn_time(&self) -> std::time::Instant {
        self.core.turn
    }

    /// Whether the server is shutting down gracefully (see [`Handler::draining`]): a
    /// protocol finishes what is in flight and takes nothing new (HTTP/1.1 answers with
    /// `Connection: close`).
    ///
    /// [`Handler::draining`]: crate::Handler::draining
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.core.shutting_down
    }

    /// Index of the loop serving this connection.
    #[inline]
    pub fn loop_index(&self) -> usize {
        self.core.ctx.index
    }

    /// The loop: write to or close other connections of this loop by id, dial, set
    /// timers. Operations on other connections take effect when this callback returns;
    /// this connection itself is not reachable through it (use `self`).
    pub fn control(&mut self) -> Control<'_, S> {
        Control { core: self.core }
    }

    /// This connection's state and the loop at once (see [`control`](Conn::control)), for
    /// work that reads both: a proxy moving data between this connection's state and a
    /// partner's.
    pub fn state_and_control(&mut self) -> (&mut S, Control<'_, S>) {
        (&mut *self.state, Control { core: self.core })
    }

    /// Opens an outbound connection from this loop, served by the same handler; see
    /// [`Control::dial`].
    pub fn dial(&mut self, addr: &str, opts: DialOptions, state: S) -> Result<ConnId, Error> {
        self.core.dial(addr, opts, state)
    }

    /// Moves all of this connection's input to connection `to` of the same loop: a proxy's
    /// data path. The bytes are written straight to `to`'s socket when it has nothing
    /// queued, and only what the socket does not take is copied into `to`'s queue (in
    /// order after what it already had). Returns `false`, leaving the input in place, if
    /// `to` is not open on this loop or has shut its writing side.
    pub fn forward(&mut self, to: ConnId) -> bool {
        let data = self.input.bytes();
        if data.is_empty() {
            return self.core.live(to).is_some();
        }
        let now_ms = self.core.now_ms();
        let Some(p) = self.core.live(to) else {
            return false;
        };
        if p.io.has(flags::SHUT_WR_REQ | flags::SHUT_WR_DONE) {
            return false;
        }
        let mut sent = 0;
        let idle_out = p.bufs.as_ref().is_none_or(|b| b.out.is_empty());
        // Straight to the socket only when nothing is queued and no layer has to encode.
        if idle_out && p.stack.is_none() && p.io.has(flags::WRITABLE) && p.io.phase == Phase::Open {
            while sent < data.len() {
                match io::Write::write(&mut p.io.stream, &data[sent..]) {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        p.io.unset(flags::WRITABLE);
                        break;
                    }
                    // The flush below meets the error again and closes `to` with it.
                    Err(_) => break,
                }
            }
            if sent > 0 {
                p.io.timeouts.last_active = now_ms;
                p.io.timeouts.last_write = now_ms;
            }
        }
        if sent < data.len() {
            p.plain_out().write(&data[sent..]);
        }
        let n = data.len();
        self.core.wrote_elsewhere(to, sent);
        self.input.consume(n);
        true
    }

    /// Couples this connection with `peer` (another connection of this loop) both ways,
    /// as a proxy pairs a client with its upstream: while one side's queued output is
    /// above the high-water mark, the loop stops reading the other side, and resumes when
    /// it drains. Returns `false` if `peer` is not open on this loop.
    ///
    /// While linked, a connection is not paused by its own output (it still gets
    /// `writable` when that drains): what it reads goes to its partner, so the partner's
    /// output decides. Pausing on both would deadlock a proxy whose far side also stops
    /// reading while its output is full, such as an echo server.
    ///
    /// A connection has at most one link: linking either side to a new partner ends its
    /// former link (the former partner is unlinked and read again if it waited), so a
    /// pooled upstream that moves on to another client leaves the previous one free.
    pub fn link(&mut self, peer: ConnId) -> bool {
        let me = (self.id.key, self.id.gen);
        let them = (peer.key, peer.gen);
        if them == me || self.core.live(peer).is_none() {
            return false;
        }
        self.unlink();
        self.core.unlink(them);
        if let Some(p) = self.core.live(peer) {
            p.io.peer = me;
        }
        self.io.peer = them;
        true
    }

    /// Ends this connection's link (see [`link`](Conn::link)), both ways: neither side's
    /// output holds back reading the other any more. Nothing happens without a link.
    pub fn unlink(&mut self) {
        let me = (self.id.key, self.id.gen);
        let old = std::mem::replace(&mut self.io.peer, NO_PEER);
        if self.io.has(flags::PEER_BLOCKED) {
            self.io.unset(flags::PEER_BLOCKED);
            self.io.timeouts.last_read = self.core.now_ms();
            self.core.requeue(me);
        }
        self.core.drop_link(me, old);
    }

    /// The connection linked with [`link`](Conn::link), if any.
    pub fn linked(&self) -> Option<ConnId> {
        (self.io.peer != NO_PEER).then_some(ConnId {
            loop_index: self.id.loop_index,
            key: self.io.peer.0,
            gen: self.io.peer.1,
        })
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<NetAddr> {
        self.io.stream.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<NetAddr> {
        self.io.stream.peer_addr()
    }

    /// Whether the peer has closed its sending side (see [`Handler::eof`](crate::Handler::eof)).
    #[inline]
    pub fn is_eof(&self) -> bool {
        self.io.has(flags::READ_EOF)
    }

    /// Closes the connection after this callback, as if it returned [`Action::Close`](crate::Action::Close):
    /// queued output is flushed first.
    pub fn close(&mut self) {
        self.io.set(flags::CLOSE_REQ);
    }

    /// Closes the connection after this callback, like [`close`](Conn::close), and hands
    /// `err` to [`Handler::closed`](crate::Handler::closed) instead of `None`: for a handler
    /// that ends a conversation because of what the peer sent (a codec error, a frame over
    /// its limit), so the reason reaches `closed` like the loop's own errors do. Make one
    /// with [`Error::layer`]. Queued output is still flushed first; should the socket fail
    /// meanwhile, `closed` gets that failure instead. A later call replaces the error;
    /// a connection detached after all (no `closed`) drops it.
    pub fn close_with(&mut self, err: Error) {
        self.io.set(flags::CLOSE_REQ);
        self.core.set_close_error(self.id.key, err);
    }

    /// Abandons the connection after this callback: queued output (and anything queued
    /// for it by its layers) is dropped, [`Handler::closed`](crate::Handler::closed) runs
    /// as for a close, and the socket is reset (`SO_LINGER` 0, so the peer sees `RST`)
    /// instead of flushed, ended with FIN and drained for the close linger. For an
    /// exchange nobody will finish: an upstream whose client left mid-response, whose
    /// unread response would otherwise be read and thrown away for the whole linger.
    /// Takes precedence over [`close`](Conn::close) in the same callback.
    pub fn abort(&mut self) {
        self.io.set(flags::CLOSE_REQ | flags::ABORT_REQ);
    }

    /// Sends end-of-file to the peer once the queued output is written (TCP half-close).
    /// The connection stays open for reading; nothing more can be written.
    pub fn shutdown_write(&mut self) {
        self.io.set(flags::SHUT_WR_REQ);
    }

    /// A handle for cross-thread calls (clone it into other threads).
    pub fn handle(&self) -> &Handle {
        &self.core.ctx.handle
    }

    /// Closes the connection when no byte has moved either way for `timeout` (`None`
    /// turns the idle timeout off). `closed` then gets an error for which
    /// [`Error::is_idle_timeout`](crate::Error::is_idle_timeout) holds. Overrides the
    /// server-wide [`Builder::idle_timeout`](crate::Builder::idle_timeout).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.io.timeouts.idle_ms = timeout.map_or(0, duration_to_ms);
        self.io.timeouts.last_active = self.core.now_ms();
        self.io.set(flags::TIMEOUTS_CHANGED);
    }

    /// Closes the connection when no input arrives for `timeout` while the loop is ready
    /// to read it (`None` turns the read timeout off), counting from now and from every
    /// read: what a protocol sets while it awaits an answer (nginx's
    /// `proxy_read_timeout`, between two reads of an upstream's response). Time during
    /// which backpressure holds reading back does not count, and the clock stops once the
    /// peer has ended its input. Output queued is flushed first; `closed` then gets an
    /// error for which [`Error::is_read_timeout`](crate::Error::is_read_timeout) holds.
    /// Overrides the server-wide [`Builder::read_timeout`](crate::Builder::read_timeout).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, duration_to_ms);
        let now = self.core.now_ms();
        let t = &mut self.io.timeouts;
        t.read_ms = ms;
        t.last_read = now;
        // Nothing to arm when the limit is off, or when the live watch fires before the
        // new limit could expire (it re-arms itself then): a protocol that sets its
        // timeout for every wait pays no timer work for it.
        let fires_first = t.watch_at.wrapping_sub(now) <= ms;
        if ms > 0 && !(self.io.has(flags::WATCHING) && fires_first) {
            self.io.set(flags::TIMEOUTS_CHANGED);
        }
    }

    /// Closes the connection when output is queued and the socket takes none of it for
    /// `timeout`, counting from now and from every write (`None` turns it off): the peer
    /// stopped reading. The output is dropped; `closed` gets an error for which
    /// [`Error::is_send_timeout`](crate::Error::is_send_timeout) holds. Overrides the
    /// server-wide [`Builder::send_timeout`](crate::Builder::send_timeout) (60 s by
    /// default).
    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.io.timeouts.send_ms = timeout.map_or(0, duration_to_ms);
        self.io.timeouts.last_write = self.core.now_ms();
        self.io.set(flags::TIMEOUTS_CHANGED);
    }

    /// Whether the peer has closed its sending side, as far as the loop knows: its end of
    /// input was read ([`is_eof`](Conn::is_eof)), or the socket signalled it while input
    /// before it is still unread (see [`Handler::read_closed`](crate::Handler::read_closed)).
    pub fn is_read_closed(&self) -> bool {
        self.io.has(flags::READ_EOF | flags::READ_CLOSED_TOLD)
    }

    /// `TCP_NODELAY` on this connection (on by default). No-op on unix sockets.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.stream.set_nodelay(on)
    }

    /// TCP keep-alive probes after `idle` without traffic (and then every `idle`), or off
    /// with `None`. No-op on unix sockets.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        self.io.stream.set_keepalive(idle)
    }

    /// The socket's options (read or change `SO_RCVBUF`, `SO_SNDBUF`, `TCP_NODELAY`, ...)
    /// through socket2. Fails for a dialed connection that is not connected yet.
    pub fn socket(&self) -> io::Result<socket2::SockRef<'_>> {
        self.io.stream.sock_ref()
    }
}

/// A connection's output queue, from [`Conn::split`].
pub struct Output<'a> {
    out: &'a mut OutBuf,
    open: bool,
}

impl Output<'_> {
    /// Queues a copy of `data` (see [`Conn::write`]).
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        if self.open {
            self.out.write(data);
        }
    }

    /// A writer for many small copies in a row (a message assembled from pieces): each
    /// [`Appender::put`] is the same as [`write`](Output::write), without its checks.
    #[inline]
    pub fn appender(&mut self) -> Appender<'_> {
        let flat = self.open && self.out.start_appending();
        Appender {
            out: self.out,
            flat,
            open: self.open,
        }
    }

    /// Queues `data` without copying it (see [`Conn::write_bytes`]).
    #[inline]
    pub fn write_bytes(&mut self, data: Bytes) {
        if self.open {
            self.out.write_bytes(data);
        }
    }

    /// Bytes queued and not yet written.
    #[inline]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

/// Queues copies on a connection's output, one after the other (from
/// [`Output::appender`]).
pub struct Appender<'a> {
    out: &'a mut OutBuf,
    /// The copies go straight to the end of the output's one buffer.
    flat: bool,
    open: bool,
}

impl Appender<'_> {
    /// Queues a copy of `data` (see [`Conn::write`]).
    #[inline(always)]
    pub fn put(&mut self, data: &[u8]) {
        if self.flat {
            self.out.append(data);
        } else if self.open {
            self.out.write(data);
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Conn<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("addr_index", &self.io.addr_index)
            .field("input_len", &self.input.len())
            .field("output_len", &self.out.len())
            .field("state", &self.state)
            .finish()
    }
}
