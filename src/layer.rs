//! Transport layers owned by the connection: sans-IO protocols (TLS, PROXY protocol, ...)
//! between the socket and the handler.
//!
//! # Where layers come from
//!
//! A connection's layers are attached where it is born, before `opened`:
//!
//! - for a dialed connection, from its [`DialOptions::layer`](crate::DialOptions::layer)
//!   (a TLS client with its server name, say), next to the socket;
//! - for every connection, from [`Handler::layers`](crate::Handler::layers), which sees
//!   the connection's [`ConnInfo`] (listener index, dialed or not) and pushes what it
//!   wants (`translate(..)` in the middleware crate is a handler that does exactly this).
//!
//! The first layer pushed is next to the socket; each later one sits above the previous.
//! The reactor then owns the stack with the connection: **every** way of writing —
//! [`Conn::write`](crate::Conn::write), [`Control::write`](crate::Control::write),
//! [`Handle::send`](crate::Handle::send), [`Conn::forward`](crate::Conn::forward) into it —
//! queues plaintext above the stack, and the reactor encodes it before anything reaches
//! the socket. That includes what is written to a dial before it connects: it goes out
//! after the handshake, and if the dial is closed before it connects, it is dropped rather
//! than sent in clear.
//!
//! # The `Session` contract
//!
//! A [`Session`] is one connection's protocol state, in the style of rustls: it owns no
//! socket, thread or clock. The reactor drives it:
//!
//! 1. **Wire in.** When bytes arrive, [`read_wire`](Session::read_wire) gets everything
//!    received and not yet consumed. It consumes what it can (returning how much) and
//!    appends what the bytes decode to the [`LayerBuffers`] input above it. It may consume
//!    less (its own buffers are full, or the handler has not consumed the decoded bytes):
//!    the rest stays queued in the reactor, bounded by `max_input`, and is offered again
//!    after each of the handler's callbacks.
//! 2. **Ready.** While any session is not [`is_ready`](Session::is_ready) (a handshake)
//!    the handler gets nothing; `opened` comes once all are ready (within the layers'
//!    handshake timeout, or the connection is dropped).
//! 3. **Wire out.** [`write_wire`](Session::write_wire) encodes queued plaintext (as much
//!    as it accepts) and writes every wire byte it has to send (handshake messages, alerts,
//!    records). The reactor stops encoding while the connection's wire output is above the
//!    high-water mark and resumes as the socket drains it, so output stays bounded.
//! 4. **Errors.** An `Err` from `read_wire` is fatal: the reactor encodes once more (so an
//!    alert goes out), closes, and `closed` gets the error (if `opened` had run, and always
//!    for a dialed connection).
//! 5. **Close.** When the connection closes (or half-closes), the reactor encodes all
//!    queued plaintext, calls [`close`](Session::close) (TLS queues `close_notify`), encodes
//!    once more and flushes before the FIN. A half-close asked for while the sessions are
//!    not ready yet waits for the handshake. A peer's clean end at the protocol level
//!    ([`peer_closed`](Session::peer_closed)) reaches the handler as `eof`.

use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::{ConnId, Error, LayerBuffers};

/// What a layer knows about a connection when its session is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's id.
    pub id: ConnId,
    /// Index of the listener that accepted it (`usize::MAX` for a dialed connection).
    pub addr_index: usize,
    /// Whether it was dialed.
    pub dialed: bool,
    /// For an accepted TCP connection, the peer's address, looked up for the layers that
    /// ask for it ([`Layer::needs_peer`]: a PROXY protocol layer checks it against its
    /// trusted networks); `None` otherwise, and for dialed and unix connections.
    pub peer: Option<std::net::SocketAddr>,
}

/// One connection's protocol state (see the [module documentation](self) for when each
/// method is called). Find a connection's session with
/// [`Conn::layer`](crate::Conn::layer) (TLS's negotiated ALPN protocol, say).
pub trait Session: Any {
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

    /// Reads wire bytes straight from the connection's socket into the session's own
    /// buffer, then decodes what they complete into `plain`'s input, as
    /// [`read_wire`](Session::read_wire) would: one copy fewer, for a session that buffers
    /// wire bytes itself anyway (TLS's record deframer). `None` (the default) when it
    /// cannot now; the reactor then reads into its own buffer and calls `read_wire`.
    ///
    /// The reactor calls it for the first read of a readiness event of a connection
    /// whose only layer is this session and which holds no unconsumed wire bytes. An
    /// `Err` is fatal, as from `read_wire`; the socket's own result (bytes read, end of
    /// stream or error) is in [`SocketRead::result`].
    fn read_socket(
        &mut self,
        socket: &mut dyn io::Read,
        plain: &mut LayerBuffers,
    ) -> Option<Result<SocketRead, Error>> {
        let _ = (socket, plain);
        None
    }

    /// Whether the session carries application data (handshake finished).
    fn is_ready(&self) -> bool;

    /// The peer ended the session cleanly (TLS `close_notify`): no more input will come.
    fn peer_closed(&self) -> bool;

    /// The connection is closing: queue the protocol's goodbye (TLS `close_notify`).
    fn close(&mut self);
}

/// What one [`Session::read_socket`] call did with the socket.
#[derive(Debug)]
pub struct SocketRead {
    /// What the socket's `read` returned: bytes read (0: the peer's end of stream), or
    /// its error (`WouldBlock` when nothing was waiting).
    pub result: io::Result<usize>,
    /// How many bytes the session offered to read into: a read that filled the offer may
    /// have left more in the socket.
    pub offered: usize,
}

/// An `io::Read` that notes how much room the reader offered: what a session's
/// [`read_socket`](Session::read_socket) reports as [`SocketRead::offered`].
pub struct OfferProbe<'a> {
    inner: &'a mut dyn io::Read,
    offered: usize,
}

impl<'a> OfferProbe<'a> {
    /// Reads from `inner`.
    pub fn new(inner: &'a mut dyn io::Read) -> OfferProbe<'a> {
        OfferProbe { inner, offered: 0 }
    }

    /// The room offered by the last read.
    pub fn offered(&self) -> usize {
        self.offered
    }
}

impl fmt::Debug for OfferProbe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferProbe")
            .field("offered", &self.offered)
            .finish()
    }
}

impl io::Read for OfferProbe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.offered = buf.len();
        self.inner.read(buf)
    }
}

/// Makes one [`Session`] per connection: a protocol's configuration (a TLS certificate
/// and settings, say). For a dial, the layer travels in
/// [`DialOptions`](crate::DialOptions) and must be `Send + Sync`.
pub trait Layer: 'static {
    /// A session for the connection `info` describes. An error refuses the connection.
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error>;

    /// Longest a session may stay not ready (a TLS handshake) before the connection is
    /// dropped; `None` for no limit.
    fn handshake_timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether the session needs [`ConnInfo::peer`] (one `getpeername` per connection,
    /// spent only for layers that say so). Default: no.
    fn needs_peer(&self) -> bool {
        false
    }
}

/// A layer that may be absent, for programs whose layers are optional (a proxy with or
/// without TLS towards its upstreams): with `None`, pushing it is an error that refuses
/// the connection.
impl<L: Layer> Layer for Option<L> {
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        match self {
            Some(layer) => layer.session(info),
            None => Err(Error::layer("no layer configured for this connection")),
        }
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        self.as_ref().and_then(|l| l.handshake_timeout())
    }

    fn needs_peer(&self) -> bool {
        self.as_ref().is_some_and(|l| l.needs_peer())
    }
}

impl<L: Layer + ?Sized> Layer for std::sync::Arc<L> {
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        (**self).session(info)
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        (**self).handshake_timeout()
    }

    fn needs_peer(&self) -> bool {
        (**self).needs_peer()
    }
}

/// A connection's layers while they are attached ([`Handler::layers`](crate::Handler::layers)).
pub struct Layers<'a> {
    pub(crate) info: ConnInfo,
    pub(crate) sessions: &'a mut Vec<Box<dyn Session>>,
    pub(crate) handshake_timeout: &'a mut Option<Duration>,
    pub(crate) error: &'a mut Option<Error>,
    /// The accepted connection's socket, for [`ConnInfo::peer`] on demand.
    pub(crate) stream: Option<&'a crate::socket::Stream>,
}

impl Layers<'_> {
    /// The connection the layers are for.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Adds a session of `layer` on top of those already there. If the layer cannot make
    /// one, the connection is refused (the error is logged and, for a dial, reported to
    /// `closed`).
    pub fn push(&mut self, layer: &dyn Layer) {
        if layer.needs_peer() && self.info.peer.is_none() {
            self.info.peer = self
                .stream
                .and_then(|s| s.peer_addr().ok())
                .and_then(|a| a.inet());
        }
        match layer.session(&self.info) {
            Ok(s) => self.push_session(s, layer.handshake_timeout()),
            Err(e) => {
                if self.error.is_none() {
                    *self.error = Some(e);
                }
            }
        }
    }

    /// Adds a ready-made session on top, with the longest its handshake may take.
    pub fn push_session(&mut self, session: Box<dyn Session>, handshake_timeout: Option<Duration>) {
        self.sessions.push(session);
        if let Some(t) = handshake_timeout {
            *self.handshake_timeout = Some(self.handshake_timeout.map_or(t, |h| h.min(t)));
        }
    }

    /// How many layers the connection has so far.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no layer was attached.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

impl fmt::Debug for Layers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layers")
            .field("info", &self.info)
            .field("layers", &self.sessions.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::OfferProbe;

    #[test]
    fn offer_probe_reports_the_room_offered_and_passes_the_bytes() {
        let mut src: &[u8] = b"hello";
        let mut probe = OfferProbe::new(&mut src);
        let mut buf = [0u8; 4096];
        assert_eq!(probe.read(&mut buf[..100]).unwrap(), 5);
        assert_eq!(probe.offered(), 100);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(probe.read(&mut buf).unwrap(), 0);
        assert_eq!(probe.offered(), 4096);
    }
}
