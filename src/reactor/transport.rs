//! A connection's transport layers (TLS, ...), owned by the connection: wire bytes in are
//! decoded before the handler sees them, and whatever is written to the connection — from
//! a callback, `Control`, `Handle::send` or `forward` — is encoded before it reaches the
//! socket.
//!
//! For a layered connection the handler's view shows the plaintext buffers above the top
//! layer; the connection's own buffers (`ConnBufs`) then hold *wire* bytes: input the
//! layers have not consumed yet, and encoded output. See `crate::layer` for the contract
//! of a session.

use std::io;
use std::time::Duration;

use super::{Cb, EventLoop};
use crate::buf::OutBuf;
use crate::dial::DialLayer;
use crate::layer::{ConnInfo, Layers, Session, SocketRead};
use crate::reactor::store::{flags, Phase};
use crate::reactor::wire::{QueueWriter, WireWriter};
use crate::timer::TimerKind;
use crate::{Error, Handler, LayerBuffers};

/// Rounds of "decode what waits, deliver it" after one event, before the loop moves on.
const MAX_REOFFERS: usize = 64;

/// The layers of one connection: `sessions[0]` is next to the socket; `bufs[i]` holds the
/// plaintext above `sessions[i]` (the handler sees the last).
pub(crate) struct Stack {
    pub(crate) sessions: Vec<Box<dyn Session>>,
    pub(crate) bufs: Vec<LayerBuffers>,
    /// `eof` was delivered (the transport ended cleanly, or the socket did).
    eof_told: bool,
    /// The goodbye (`close_notify`) is queued, or a fatal error makes one pointless.
    closed: bool,
    /// Wire input went in since the last encode: the sessions may have wire bytes of
    /// their own to send (handshake messages, alerts, tickets) even without plaintext.
    stirred: bool,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("layers", &self.sessions.len())
            .field("eof_told", &self.eof_told)
            .field("closed", &self.closed)
            .finish()
    }
}

/// A connection's sessions, bottom first, and the longest their handshake may take.
type Sessions = (Vec<Box<dyn Session>>, Option<Duration>);

impl Stack {
    fn new(sessions: Vec<Box<dyn Session>>) -> Stack {
        let bufs = sessions.iter().map(|_| LayerBuffers::new()).collect();
        Stack {
            sessions,
            bufs,
            eof_told: false,
            closed: false,
            stirred: true,
        }
    }

    /// The plaintext the handler sees.
    pub(crate) fn top(&mut self) -> &mut LayerBuffers {
        self.bufs.last_mut().expect("a stack has a layer")
    }

    /// Whether the layers' goodbye is still to be queued.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed
    }

    fn is_ready(&self) -> bool {
        self.sessions.iter().all(|s| s.is_ready())
    }

    fn peer_closed(&self) -> bool {
        self.sessions.iter().any(|s| s.peer_closed())
    }

    /// Plaintext queued above the layers, not encoded yet.
    pub(crate) fn plain_out_len(&self) -> usize {
        self.bufs.iter().map(|b| b.output_len()).sum()
    }

    /// Whether an encode could produce anything: plaintext is queued, or the sessions
    /// took input since the last one.
    fn has_work(&self) -> bool {
        self.stirred || self.plain_out_len() > 0
    }

    /// Reads the socket straight into the session's own buffer, if the stack is one
    /// session that can (see `Session::read_socket`).
    pub(crate) fn read_socket(
        &mut self,
        socket: &mut dyn io::Read,
    ) -> Option<Result<SocketRead, Error>> {
        if self.sessions.len() != 1 {
            return None;
        }
        let r = self.sessions[0].read_socket(socket, &mut self.bufs[0])?;
        self.stirred = true;
        Some(r)
    }

    /// Decodes `wire` up the stack; returns how many wire bytes the bottom layer took.
    fn decode(&mut self, wire: &[u8]) -> Result<usize, Error> {
        self.stirred = true;
        let n = self.sessions[0].read_wire(wire, &mut self.bufs[0])?;
        for i in 1..self.sessions.len() {
            let (below, here) = self.bufs.split_at_mut(i);
            let from = &mut below[i - 1];
            if from.input.is_empty() {
                continue;
            }
            let m = self.sessions[i].read_wire(from.input.bytes(), &mut here[0])?;
            from.input.consume(m);
            from.input.settle();
        }
        Ok(n)
    }

    /// Encodes down the stack into `wire`.
    fn encode(&mut self, wire: &mut dyn io::Write) -> Result<(), Error> {
        self.stirred = false;
        for i in (1..self.sessions.len()).rev() {
            let (below, here) = self.bufs.split_at_mut(i);
            self.sessions[i].write_wire(&mut here[0], &mut QueueWriter(&mut below[i - 1].out))?;
        }
        self.sessions[0].write_wire(&mut self.bufs[0], wire)
    }

    /// Encodes everything queued (a closing connection gets no later chance), then the
    /// goodbye of every layer, top first.
    fn close(&mut self, wire: &mut OutBuf) -> Result<(), Error> {
        self.closed = true;
        loop {
            let before = self.plain_out_len();
            self.encode(&mut QueueWriter(wire))?;
            let after = self.plain_out_len();
            if after == 0 || after >= before {
                // Done, or the layers take no more (not ready): nothing more to send.
                break;
            }
        }
        for i in (0..self.sessions.len()).rev() {
            self.sessions[i].close();
            self.encode(&mut QueueWriter(wire))?;
        }
        Ok(())
    }

    fn shrink(&mut self) {
        for b in &mut self.bufs {
            b.shrink();
        }
    }
}

impl<H: Handler> EventLoop<H> {
    /// Makes connection `key`'s sessions: the dial's layers, then the handler's, with the
    /// longest their handshake may take.
    fn sessions(&mut self, key: usize, dial_layers: &[DialLayer]) -> Result<Sessions, Error> {
        let id = self.core.conn_id(key);
        let (dialed, addr_index, stream) = match self.core.slots.get_mut(key) {
            Some(c) if !c.io.has(flags::DIALED) => {
                (false, c.io.addr_index as usize, Some(&c.io.stream))
            }
            _ => (true, usize::MAX, None),
        };
        let info = ConnInfo {
            id,
            addr_index,
            dialed,
            // Looked up only for a layer that asks (`Layer::needs_peer`).
            peer: None,
        };
        let mut sessions = Vec::new();
        let mut handshake = None;
        let mut error = None;
        let mut layers = Layers {
            info,
            sessions: &mut sessions,
            handshake_timeout: &mut handshake,
            error: &mut error,
            stream,
        };
        for l in dial_layers {
            layers.push(l.as_ref());
        }
        self.handler.layers(&mut layers);
        match error {
            Some(e) => Err(e),
            None => Ok((sessions, handshake)),
        }
    }

    /// Attaches connection `key`'s layers (the dial's, then the handler's) and starts it:
    /// `opened` at once without layers, after the handshake with them.
    pub(crate) fn attach_and_open(&mut self, key: usize, dial_layers: &[DialLayer]) {
        let id = self.core.conn_id(key);
        if self.core.slots.get_mut(key).is_none() {
            return;
        }
        let (sessions, handshake) = match self.sessions(key, dial_layers) {
            Ok(s) => s,
            Err(e) => {
                warn!("connection {id}: cannot start its layers: {e}");
                self.fail(key, e);
                return;
            }
        };
        if sessions.is_empty() {
            self.open_now(key);
            return;
        }
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let mut stack = Box::new(Stack::new(sessions));
        if let Some(b) = c.bufs.as_deref_mut() {
            // Written to a dial while it was connecting: plaintext, for the layers to
            // encode after their handshake (it must not precede the handshake on the wire).
            std::mem::swap(&mut stack.top().out, &mut b.out);
        }
        c.stack = Some(stack);
        c.io.phase = Phase::Handshaking;
        if let Some(t) = handshake {
            let at = self.core.now() + t;
            self.core.timers.add(
                at,
                TimerKind::Handshake {
                    key: key as u32,
                    gen,
                    after_ms: t.as_millis().min(u32::MAX as u128) as u32,
                },
            );
        }
        // A client speaks first: its hello goes out now.
        self.layered(key, Cb::Opened);
    }

    /// A dial closed while connecting has connected with output queued: without layers
    /// it is flushed before the close; with layers it is plaintext that only a handshake
    /// could carry, and a closing connection has none, so it is dropped and the
    /// connection closes at once (never sent in clear).
    pub(crate) fn connected_closing(&mut self, key: usize, dial_layers: &[DialLayer]) {
        match self.sessions(key, dial_layers) {
            Ok((sessions, _)) if sessions.is_empty() => self.flush(key),
            layered => {
                if let Err(e) = layered {
                    debug!("connection {key}: its layers: {e}");
                }
                self.discard_output(key);
                let err = self.take_close_error(key);
                self.finish_close(key, err, true);
            }
        }
    }

    /// Marks connection `key` open and runs `opened` (then a wake that came early).
    pub(crate) fn open_now(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        c.io.phase = Phase::Open;
        c.io.set(flags::OPENED);
        let wake = c.io.has(flags::WAKE_PENDING);
        c.io.unset(flags::WAKE_PENDING);
        let gen = self.core.slots.gen(key);
        self.dispatch_plain(key, Cb::Opened);
        if wake && self.is_open_now(key, gen) {
            self.dispatch_plain(key, Cb::Woken);
        }
    }

    fn is_open_now(&mut self, key: usize, gen: u32) -> bool {
        self.core
            .slots
            .get_gen_mut(key, gen)
            .is_some_and(|c| c.io.phase == Phase::Open)
    }

    /// Decodes the wire input waiting for connection `key` (its own, or what the last
    /// read left in the shared buffer); returns whether new plaintext appeared. Wire
    /// bytes the layers did not take are kept with the connection.
    fn decode(&mut self, key: usize) -> Result<bool, Error> {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            self.bufs.rbuf.clear();
            return Ok(false);
        };
        let Some(stack) = c.stack.as_deref_mut() else {
            return Ok(false);
        };
        let before = stack.top().input_len();
        let own = c.bufs.as_deref_mut().filter(|b| !b.input.is_empty());
        let result = match own {
            Some(b) => stack.decode(b.input.bytes()).map(|n| {
                b.input.consume(n);
                b.input.settle();
            }),
            None => {
                let r = if self.bufs.rbuf.is_empty() {
                    Ok(())
                } else {
                    stack
                        .decode(self.bufs.rbuf.bytes())
                        .map(|n| self.bufs.rbuf.consume(n))
                };
                if !self.bufs.rbuf.is_empty() {
                    c.bufs
                        .get_or_insert_with(Box::default)
                        .input
                        .set_from(self.bufs.rbuf.bytes());
                }
                self.bufs.rbuf.clear();
                r
            }
        };
        result?;
        let Some(stack) = c.stack.as_deref_mut() else {
            return Ok(false);
        };
        Ok(stack.top().input_len() > before)
    }

    /// Whether connection `key` holds wire input its layers have not consumed.
    fn wire_waiting(&mut self, key: usize) -> bool {
        self.core
            .slots
            .get_mut(key)
            .and_then(|c| c.bufs.as_ref())
            .is_some_and(|b| !b.input.is_empty())
    }

    /// Encodes connection `key`'s queued plaintext into its wire output: all of it when
    /// `all`, otherwise while the wire output is below the high-water mark. With
    /// `direct`, the wire bytes go straight to the socket while nothing is queued before
    /// them and it is writable (what it does not take is queued). Returns the bytes the
    /// socket took and its error, if any (the caller fails the connection with it); marks
    /// the socket blocked on `WouldBlock`.
    // Inlined into each caller so `all` and `direct` are constants there: called as a
    // function, the TLS keep-alive path cost 110 more instructions per request (instr.sh).
    #[inline(always)]
    pub(crate) fn encode(
        &mut self,
        key: usize,
        all: bool,
        direct: bool,
    ) -> Result<(usize, Option<io::Error>), Error> {
        let hwm = self.core.cfg.out_high_water;
        let Some(c) = self.core.slots.get_mut(key) else {
            return Ok((0, None));
        };
        let Some(stack) = c.stack.as_deref_mut() else {
            return Ok((0, None));
        };
        if !stack.has_work() {
            return Ok((0, None));
        }
        let queued = c.bufs.as_ref().map_or(0, |b| b.out.len());
        if !all && queued >= hwm && stack.plain_out_len() > 0 {
            // The socket has to take some first; the flush after it calls again.
            return Ok((0, None));
        }
        let direct = direct
            && c.io.has(flags::WRITABLE)
            && !matches!(c.io.phase, Phase::Connecting | Phase::Lingering);
        // Without own buffers, what the socket does not take lands in a fresh queue that
        // allocates only if it is used.
        let mut spare = OutBuf::default();
        let out = match c.bufs.as_deref_mut() {
            Some(b) => &mut b.out,
            None => &mut spare,
        };
        let mut w = WireWriter::new(out, direct.then_some(&mut c.io.stream));
        let r = stack.encode(&mut w);
        let (written, blocked, error) = (w.written, w.blocked, w.error);
        stack.shrink();
        if blocked {
            c.io.unset(flags::WRITABLE);
        }
        if !spare.is_empty() {
            c.bufs.get_or_insert_with(Box::default).out = spare;
        } else if c
            .bufs
            .as_ref()
            .is_some_and(|b| b.out.is_empty() && b.input.is_empty())
        {
            c.bufs = None;
        }
        r.map(|()| (written, error))
    }

    /// The connection is closing (or half-closing): encode all its plaintext and its
    /// layers' goodbye. Nothing to say to a peer that never finished the handshake.
    pub(crate) fn close_layers(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let handshaking = c.io.phase == Phase::Handshaking;
        let Some(stack) = c.stack.as_deref_mut() else {
            return;
        };
        if stack.closed || handshaking {
            stack.closed = true;
            return;
        }
        let bufs = c.bufs.get_or_insert_with(Box::default);
        if let Err(e) = stack.close(&mut bufs.out) {
            debug!("connection {key}: closing its layers: {e}");
        }
    }

    /// A layer failed: its alert goes out, then the connection closes with the error.
    pub(crate) fn layer_failed(&mut self, key: usize, err: Error) {
        let _ = self.encode(key, true, false);
        if let Some(stack) = self
            .core
            .slots
            .get_mut(key)
            .and_then(|c| c.stack.as_deref_mut())
        {
            stack.closed = true;
        }
        let opened = self
            .core
            .slots
            .get_mut(key)
            .is_some_and(|c| c.io.has(flags::OPENED | flags::DIALED));
        if !opened {
            debug!("connection {key}: closed during its handshake: {err}");
        }
        self.core.set_close_error(key as u32, err);
        self.begin_close_from(key, None, true);
    }

    /// One event for a layered connection: wire in, `opened` once the layers are ready,
    /// the callback, `data` for what decoded (again while wire bytes wait behind input the
    /// handler has just consumed), `eof` once the transport ended, wire out.
    pub(crate) fn layered(&mut self, key: usize, cb: Cb) {
        let gen = self.core.slots.gen(key);
        let fresh = match self.decode(key) {
            Ok(f) => f,
            Err(e) => return self.layer_failed(key, e),
        };
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.phase == Phase::Handshaking {
            let Some(stack) = c.stack.as_deref() else {
                return;
            };
            if !stack.is_ready() {
                if matches!(cb, Cb::Eof | Cb::ReadClosed) || stack.peer_closed() {
                    // The peer left during the handshake.
                    self.begin_close_from(key, None, true);
                } else {
                    self.flush(key);
                }
                return;
            }
            self.open_now(key);
        } else if c.io.phase == Phase::Open
            && !matches!(cb, Cb::Opened | Cb::Data | Cb::Eof | Cb::Resume)
        {
            self.dispatch_plain(key, cb);
        }
        if !self.is_open_now(key, gen) {
            return;
        }
        let has_input = |el: &mut Self| {
            el.core
                .slots
                .get_mut(key)
                .and_then(|c| c.stack.as_deref_mut())
                .is_some_and(|s| s.top().input_len() > 0)
        };
        if (cb == Cb::Data || fresh || cb == Cb::Opened) && has_input(self) {
            self.dispatch_plain(key, Cb::Data);
        }
        // Wire bytes the layers left (their plaintext was full) decode now that the handler
        // may have made room; the peer may send nothing more that would bring them up.
        for _ in 0..MAX_REOFFERS {
            if !self.is_open_now(key, gen) || !self.wire_waiting(key) {
                break;
            }
            if let Err(e) = self.encode(key, false, false) {
                return self.layer_failed(key, e);
            }
            match self.decode(key) {
                Ok(true) => self.dispatch_plain(key, Cb::Data),
                Ok(false) => break,
                Err(e) => return self.layer_failed(key, e),
            }
        }
        if !self.is_open_now(key, gen) {
            return;
        }
        let c = self.core.slots.get_mut(key).expect("open");
        let stack = c.stack.as_deref_mut().expect("layered");
        if !stack.eof_told && (cb == Cb::Eof || stack.peer_closed()) {
            stack.eof_told = true;
            self.dispatch_plain(key, Cb::Eof);
        }
        if self.core.slots.get_gen_mut(key, gen).is_some() {
            self.flush(key);
        }
    }

    /// The handshake of connection `key` did not finish within `after`.
    pub(crate) fn handshake_expired(&mut self, key: u32, gen: u32, after: Duration) {
        let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) else {
            return;
        };
        if c.io.phase == Phase::Handshaking {
            if let Some(stack) = c.stack.as_deref_mut() {
                stack.closed = true;
            }
            self.fail(key as usize, Error::handshake_timeout(after));
        }
    }
}
