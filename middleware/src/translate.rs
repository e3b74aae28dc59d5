//! The translate pattern: run selected connections through a protocol layer so the handler
//! above it sees plaintext.
//!
//! # The `Layer` / `Session` contract
//!
//! A [`Layer`] makes one [`Session`] per selected connection. A session is a sans-IO state
//! machine in the style of rustls: it owns no socket, thread or clock. The translate wrapper
//! drives it from the loop's callbacks:
//!
//! 1. **Wire in.** When bytes arrive, [`Session::read_wire`] gets everything received and
//!    not yet consumed. It consumes what it can (returning how much), and appends the
//!    decoded bytes to the connection's [`LayerBuffers`] input. It may consume less than it
//!    was given (its own buffers are full, or the handler has not consumed the decoded
//!    bytes yet): the rest stays queued in the reactor, so the reactor's `max_input` bounds
//!    what a peer can make the server hold. The wrapper offers it again after each of the
//!    handler's callbacks (the one that consumed decoded bytes may be `woken`, `writable`
//!    or `post_write`, and the peer may send nothing more that would bring it up) and
//!    hands what it decodes to the handler's `data`.
//! 2. **Handler.** Once [`Session::is_ready`] (handshake done), the handler above gets
//!    `opened`, then `data` whenever decoded input is waiting, through a view of the
//!    connection whose input and output are the session's buffers.
//! 3. **Wire out.** After every step, [`Session::write_wire`] encodes the handler's queued
//!    output (as much as it accepts) and writes every wire byte it has to send (handshake
//!    messages, alerts, records) into the connection. The wrapper stops encoding while the
//!    connection's queued output is above the connection's output high-water mark and resumes after
//!    the loop's next write (`post_write`), so a handler that writes a lot is held back by
//!    the socket, not buffered without bound.
//! 4. **Errors.** An `Err` from `read_wire` is fatal to the connection: the wrapper calls
//!    `write_wire` once more (so an alert goes out), then closes, and the handler's
//!    `closed` gets the error (if its `opened` had run, and always for a dialed
//!    connection: a dial's `closed` fires even when the handshake failed).
//! 5. **Close.** When the handler closes (returns `Action::Close` or calls `close`), the
//!    wrapper encodes all of the handler's queued output, then calls [`Session::close`]
//!    (TLS queues `close_notify` after that output), writes the wire, and the reactor
//!    flushes before closing the socket. A peer's clean close at the protocol level
//!    ([`Session::peer_closed`]) reaches the handler as `eof`.
//!
//! Layers stack: a `translate(..)` result is itself a [`Handler`], so HTTP/1.1 or WebSocket
//! adapters run above TLS the same way.

use std::io;

use wireloop::{Action, Conn, ConnId, Control, Datagram, Detached, Error, Handler, LayerBuffers};

/// What a selector knows about a connection when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's id.
    pub id: ConnId,
    /// Index of the listener that accepted it (`usize::MAX` for a dialed connection).
    pub addr_index: usize,
    /// Whether it was dialed.
    pub dialed: bool,
}

impl ConnInfo {
    fn of<S>(conn: &Conn<'_, S>) -> ConnInfo {
        ConnInfo {
            id: conn.id(),
            addr_index: conn.addr_index(),
            dialed: conn.is_dialed(),
        }
    }
}

/// A protocol that can sit between the socket and a byte handler: makes a session per
/// connection.
pub trait Layer: 'static {
    /// The per-connection state machine.
    type Session: Session;

    /// A selected connection opened: make its session. An error closes the connection.
    fn session(&mut self, info: &ConnInfo) -> Result<Self::Session, Error>;

    /// Longest a session may stay not ready (a TLS handshake) before the connection is
    /// closed; `None` for no limit.
    fn handshake_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A layer that may be absent, for programs whose layers are optional (a proxy with or
/// without TLS towards its upstreams): with `None` the selector must pick no connection;
/// if it does, the connection is refused with an error.
impl<L: Layer> Layer for Option<L> {
    type Session = L::Session;

    fn session(&mut self, info: &ConnInfo) -> Result<L::Session, Error> {
        match self {
            Some(layer) => layer.session(info),
            None => Err(Error::layer("no layer configured for this connection")),
        }
    }

    fn handshake_timeout(&self) -> Option<std::time::Duration> {
        self.as_ref().and_then(|l| l.handshake_timeout())
    }
}

/// One connection's protocol state (see the module documentation for when each method is
/// called).
pub trait Session: 'static {
    /// Consumes wire bytes from `wire` (returns how many) and appends what they decode to
    /// `plain`'s input. `Err` is fatal: the connection is closed after a last `write_wire`.
    fn read_wire(&mut self, wire: &[u8], plain: &mut LayerBuffers) -> Result<usize, Error>;

    /// Encodes queued output from `plain` (as much as the session accepts) and writes all
    /// pending wire bytes to `wire`.
    fn write_wire(
        &mut self,
        plain: &mut LayerBuffers,
        wire: &mut dyn io::Write,
    ) -> Result<(), Error>;

    /// Whether the session carries application data (handshake finished).
    fn is_ready(&self) -> bool;

    /// The peer ended the session cleanly (TLS `close_notify`): no more input will come.
    fn peer_closed(&self) -> bool;

    /// The handler is closing: queue the protocol's goodbye (TLS `close_notify`).
    fn close(&mut self);
}

/// Runs `handler` above `layer` for the connections `select` picks, and directly for the
/// others: the same byte handler serves a plain listener and a TLS one.
pub fn translate<H, L, F>(handler: H, select: F, layer: L) -> Translate<H, L, F>
where
    H: Handler,
    L: Layer,
    F: Fn(&ConnInfo) -> bool + 'static,
{
    Translate {
        inner: handler,
        layer,
        select,
        sessions: Vec::new(),
    }
}

/// A translated connection's session and plaintext buffers.
struct Entry<T> {
    id: ConnId,
    session: T,
    plain: LayerBuffers,
    /// The handler's `opened` ran.
    opened: bool,
    /// The handler got `eof`.
    eof_sent: bool,
    /// A wake arrived before the session was ready: deliver it after `opened`.
    wake_pending: bool,
    /// The idle timeout to restore after the handshake.
    saved_idle: Option<std::time::Duration>,
    /// A fatal layer error waiting to be reported in `closed`.
    error: Option<Error>,
}

/// The session of connection `id` in a table indexed by slot, if it is that connection's
/// (a slot reused by a later connection holds someone else's).
fn entry_of<T>(sessions: &mut [Option<Box<Entry<T>>>], id: ConnId) -> Option<&mut Box<Entry<T>>> {
    sessions
        .get_mut(id.slot())
        .and_then(|e| e.as_mut())
        .filter(|e| e.id == id)
}

/// The handler `translate` returns.
pub struct Translate<H: Handler, L: Layer, F> {
    inner: H,
    layer: L,
    select: F,
    /// Sessions by connection slot.
    sessions: Vec<Option<Box<Entry<L::Session>>>>,
}

/// `io::Write` into a connection's output queue.
struct ConnWriter<'c, 'a, S>(&'c mut Conn<'a, S>);

impl<S> io::Write for ConnWriter<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Which handler callback a step delivers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Data,
    Writable,
    Woken,
    Eof,
    /// The peer hung up while reading is held back (see `Handler::read_closed`).
    ReadClosed,
    /// After the handler's `post_write` (already called).
    Written,
}

impl<H: Handler, L: Layer, F: Fn(&ConnInfo) -> bool + 'static> Translate<H, L, F> {
    /// The handler above the layer.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    fn entry(&mut self, id: ConnId) -> Option<&mut Box<Entry<L::Session>>> {
        entry_of(&mut self.sessions, id)
    }

    /// Encodes the handler's output and writes the wire bytes, while the connection's queue
    /// has room.
    fn pump_out(entry: &mut Entry<L::Session>, conn: &mut Conn<'_, H::State>) -> Result<(), Error> {
        if conn.output_len() >= conn.output_high_water() && entry.plain.output_len() > 0 {
            // Wait for the loop to write some (post_write calls back here).
            return Ok(());
        }
        entry
            .session
            .write_wire(&mut entry.plain, &mut ConnWriter(conn))
    }

    /// Offers the session the wire bytes waiting in the connection's input; returns whether
    /// it took any.
    fn pump_in(
        entry: &mut Entry<L::Session>,
        conn: &mut Conn<'_, H::State>,
    ) -> Result<bool, Error> {
        if conn.input().is_empty() {
            return Ok(false);
        }
        let n = entry.session.read_wire(conn.input(), &mut entry.plain)?;
        conn.consume(n);
        Ok(n > 0)
    }

    /// `read_wire` failed: the session writes what it has (an alert) and the connection
    /// closes with the error.
    fn fatal(entry: &mut Entry<L::Session>, conn: &mut Conn<'_, H::State>, e: Error) -> Action {
        let _ = entry
            .session
            .write_wire(&mut entry.plain, &mut ConnWriter(conn));
        entry.error = Some(e);
        Action::Close
    }

    /// The handler is closing: encodes all its queued output (whatever the wire queue
    /// holds, since a closing connection gets no `post_write` to encode the rest later),
    /// then queues the protocol's goodbye after it and writes the wire.
    fn close_session(
        entry: &mut Entry<L::Session>,
        conn: &mut Conn<'_, H::State>,
    ) -> Result<(), Error> {
        while entry.plain.output_len() > 0 {
            let before = entry.plain.output_len();
            entry
                .session
                .write_wire(&mut entry.plain, &mut ConnWriter(conn))?;
            if entry.plain.output_len() >= before {
                // The session takes no more (not ready): nothing to send before the goodbye.
                break;
            }
        }
        entry.session.close();
        entry
            .session
            .write_wire(&mut entry.plain, &mut ConnWriter(conn))
    }

    /// One step for a translated connection: wire in, handler, wire out.
    fn step(&mut self, conn: &mut Conn<'_, H::State>, step: Step) -> Action {
        let id = conn.id();
        let Translate {
            inner, sessions, ..
        } = self;
        let Some(entry) = entry_of(sessions, id) else {
            return Action::Close;
        };
        if step == Step::Woken && !entry.opened {
            entry.wake_pending = true;
        }
        // Wire in: what arrived, or (any other step) what the session left in the input.
        let before = entry.plain.input_len();
        if let Err(e) = Self::pump_in(entry, conn) {
            return Self::fatal(entry, conn, e);
        }
        let fresh = entry.plain.input_len() > before;
        // The step's callback, then `data` if wire bytes decoded to new input. `eof` comes
        // last, after the input has been decoded and offered.
        let mut action = match step {
            Step::Data | Step::Eof => Action::None,
            _ => Self::deliver(inner, entry, conn, step),
        };
        if action == Action::None && (step == Step::Data || fresh) {
            action = Self::deliver(inner, entry, conn, Step::Data);
        }
        let mut shut = conn.take_shutdown_write();
        // Wire bytes the session did not take (its plaintext queue was full, or a handshake
        // flight had to go out first) are offered again as soon as the handler has made
        // room: the peer may send nothing more that would bring them up.
        while action == Action::None
            && !shut
            && !conn.close_requested()
            && !entry.eof_sent
            && !conn.input().is_empty()
        {
            if let Err(e) = Self::pump_out(entry, conn) {
                entry.error = Some(e);
                return Action::Close;
            }
            match Self::pump_in(entry, conn) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Self::fatal(entry, conn, e),
            }
            action = Self::deliver(inner, entry, conn, Step::Data);
            shut = conn.take_shutdown_write();
        }
        if step == Step::Eof && action == Action::None && !conn.close_requested() {
            action = Self::deliver(inner, entry, conn, Step::Eof);
            shut |= conn.take_shutdown_write();
        }
        let closing = matches!(action, Action::Close | Action::Shutdown) || conn.close_requested();
        let out = if closing || shut {
            Self::close_session(entry, conn)
        } else {
            Self::pump_out(entry, conn)
        };
        if shut {
            // The goodbye is queued after the last records: now the FIN.
            conn.shutdown_write();
        }
        if let Err(e) = out {
            entry.error = Some(e);
            return Action::Close;
        }
        entry.plain.shrink();
        action
    }

    /// Runs the handler for one step: `opened` once the session is ready (then a wake that
    /// came early), then the step's callback, then `eof` once the peer is done.
    fn deliver(
        inner: &mut H,
        entry: &mut Entry<L::Session>,
        conn: &mut Conn<'_, H::State>,
        step: Step,
    ) -> Action {
        let mut action = Action::None;
        let mut step = step;
        if entry.session.is_ready() && !entry.opened {
            entry.opened = true;
            conn.set_idle_timeout(entry.saved_idle);
            action = inner.opened(&mut conn.with_buffers(&mut entry.plain));
            if entry.wake_pending && action == Action::None {
                entry.wake_pending = false;
                action = inner.woken(&mut conn.with_buffers(&mut entry.plain));
                if step == Step::Woken {
                    // Delivered above.
                    step = Step::Writable;
                }
            }
        }
        if entry.opened && action == Action::None {
            let mut view = conn.with_buffers(&mut entry.plain);
            action = match step {
                Step::Data if view.input().is_empty() => Action::None,
                Step::Data => inner.data(&mut view),
                Step::Writable => inner.writable(&mut view),
                Step::Woken => inner.woken(&mut view),
                Step::ReadClosed => inner.read_closed(&mut view),
                Step::Eof | Step::Written => Action::None,
            };
            if action == Action::None
                && !entry.eof_sent
                && (step == Step::Eof || entry.session.peer_closed())
            {
                entry.eof_sent = true;
                action = inner.eof(&mut view);
            }
        } else if !entry.opened
            && (matches!(step, Step::Eof | Step::ReadClosed) || entry.session.peer_closed())
        {
            // The peer left during the handshake.
            action = Action::Close;
        }
        action
    }
}

impl<H, L, F> Handler for Translate<H, L, F>
where
    H: Handler,
    L: Layer,
    F: Fn(&ConnInfo) -> bool + 'static,
{
    type State = H::State;

    fn serving(&mut self, ctl: &mut Control<'_, H::State>) -> Action {
        self.inner.serving(ctl)
    }

    fn opened(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        let info = ConnInfo::of(conn);
        if !(self.select)(&info) {
            return self.inner.opened(conn);
        }
        let session = match self.layer.session(&info) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("connection {}: cannot start the layer: {e}", info.id);
                return Action::Close;
            }
        };
        let saved_idle = conn.idle_timeout();
        if let Some(t) = self.layer.handshake_timeout() {
            conn.set_idle_timeout(Some(t));
        }
        let slot = info.id.slot();
        if self.sessions.len() <= slot {
            self.sessions.resize_with(slot + 1, || None);
        }
        self.sessions[slot] = Some(Box::new(Entry {
            id: info.id,
            session,
            plain: LayerBuffers::new(),
            opened: false,
            eof_sent: false,
            wake_pending: false,
            saved_idle,
            error: None,
        }));
        // A client session speaks first (its hello goes out now).
        self.step(conn, Step::Writable)
    }

    fn data(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        if self.entry(conn.id()).is_none() {
            return self.inner.data(conn);
        }
        self.step(conn, Step::Data)
    }

    fn eof(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        if self.entry(conn.id()).is_none() {
            return self.inner.eof(conn);
        }
        self.step(conn, Step::Eof)
    }

    fn writable(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        if self.entry(conn.id()).is_none() {
            return self.inner.writable(conn);
        }
        self.step(conn, Step::Writable)
    }

    fn woken(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        if self.entry(conn.id()).is_none() {
            return self.inner.woken(conn);
        }
        self.step(conn, Step::Woken)
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        if self.entry(conn.id()).is_none() {
            return self.inner.read_closed(conn);
        }
        self.step(conn, Step::ReadClosed)
    }

    fn pre_write(&mut self, conn: &mut Conn<'_, H::State>) {
        if self.entry(conn.id()).is_none() {
            self.inner.pre_write(conn);
        }
    }

    fn post_write(&mut self, conn: &mut Conn<'_, H::State>, written: usize) {
        let id = conn.id();
        let Translate {
            inner, sessions, ..
        } = self;
        let Some(entry) = entry_of(sessions, id) else {
            return inner.post_write(conn, written);
        };
        if entry.opened {
            inner.post_write(&mut conn.with_buffers(&mut entry.plain), written);
        }
        // The handler may have consumed decoded input: offer the wire bytes waiting behind
        // it (and deliver what they decode), then encode its output.
        match self.step(conn, Step::Written) {
            Action::Close => conn.close(),
            Action::Shutdown => conn.handle().shutdown(),
            _ => {}
        }
    }

    fn closing(&mut self, conn: &mut Conn<'_, H::State>) {
        let id = conn.id();
        let Translate {
            inner, sessions, ..
        } = self;
        let Some(entry) = entry_of(sessions, id) else {
            return inner.closing(conn);
        };
        if !entry.opened {
            // Never got past the handshake: there is nothing to say goodbye to.
            return;
        }
        inner.closing(&mut conn.with_buffers(&mut entry.plain));
        if let Err(e) = Self::close_session(entry, conn) {
            entry.error = Some(e);
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, H::State>, err: Option<Error>) {
        let id = conn.id();
        let taken = self
            .sessions
            .get_mut(id.slot())
            .and_then(|e| e.take_if(|e| e.id == id));
        match taken {
            None => self.inner.closed(conn, err),
            Some(mut entry) => {
                if entry.opened {
                    let err = entry.error.take().or(err);
                    self.inner
                        .closed(&mut conn.with_buffers(&mut entry.plain), err);
                } else if conn.is_dialed() {
                    // A dial's `closed` fires exactly once, `opened` or not (see
                    // `Control::dial`): a handshake that failed is the dial failing.
                    let err = entry.error.take().or(err).unwrap_or_else(|| {
                        Error::layer("the connection closed before the handshake finished")
                    });
                    self.inner
                        .closed(&mut conn.with_buffers(&mut entry.plain), Some(err));
                } else if let Some(e) = entry.error.take().or(err) {
                    log::debug!("connection {id}: closed during the handshake: {e}");
                }
            }
        }
    }

    fn detached(&mut self, conn: &mut Conn<'_, H::State>, detached: Detached) {
        // A translated connection's socket carries the layer's protocol: detaching it hands
        // out the raw wire, which is what the handler asked for.
        if let Some(e) = self
            .sessions
            .get_mut(conn.id().slot())
            .and_then(|e| e.take_if(|e| e.id == conn.id()))
        {
            drop(e);
        }
        self.inner.detached(conn, detached)
    }

    fn datagram(&mut self, dgram: &mut Datagram<'_>) -> Action {
        self.inner.datagram(dgram)
    }

    fn tick(&mut self, ctl: &mut Control<'_, H::State>) -> (Option<std::time::Duration>, Action) {
        self.inner.tick(ctl)
    }
}
