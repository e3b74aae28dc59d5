//! The translate pattern: run selected connections through a protocol layer so the handler
//! above it sees plaintext.
//!
//! `translate(handler, select, layer)` is a [`Handler`] that, for every connection
//! `select` picks, attaches a session of `layer` to the connection
//! ([`Handler::layers`]); everything else it passes to `handler` untouched. The session then
//! belongs to the connection and is driven by the reactor (see [`wireloop::layer`] for the
//! contract): every way of writing to the connection — the handler's callbacks,
//! `Control::write`, `Handle::send`, `Conn::forward` — is encoded by it, and `opened` comes
//! once its handshake is done. Wrappers stack: the outer one's layer is next to the socket.
//!
//! ```no_run
//! # use wireloop::{Action, Conn, Handler, Server};
//! # use wireloop_middleware::{translate, CertKey, TlsServer};
//! # struct Echo;
//! # impl Handler for Echo { type State = (); fn data(&mut self, _: &mut Conn<'_, ()>) -> Action { Action::None } }
//! # fn main() -> Result<(), wireloop::Error> {
//! let tls = TlsServer::builder(CertKey::self_signed(&["localhost".into()])?).build()?;
//! Server::builder()
//!     .listen("tcp://0.0.0.0:5000")?   // addr_index 0: plaintext
//!     .listen("tcp://0.0.0.0:5443")?   // addr_index 1: TLS
//!     .serve(|_| translate(Echo, |c| c.addr_index == 1, tls.clone()))
//! # }
//! ```

use std::time::Duration;

use wireloop::layer::Layers;
use wireloop::{Action, Conn, Control, Datagram, Detached, Error, Handler};

pub use wireloop::layer::{ConnInfo, Layer, Session};

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
    }
}

/// The handler `translate` returns: attaches the layer, passes everything else through.
pub struct Translate<H, L, F> {
    inner: H,
    layer: L,
    select: F,
}

impl<H, L, F> Translate<H, L, F> {
    /// The handler above the layer.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The handler above the layer, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }
}

impl<H, L, F> Handler for Translate<H, L, F>
where
    H: Handler,
    L: Layer,
    F: Fn(&ConnInfo) -> bool + 'static,
{
    type State = H::State;

    fn layers(&mut self, layers: &mut Layers<'_>) {
        if (self.select)(layers.info()) {
            layers.push(&self.layer);
        }
        self.inner.layers(layers);
    }

    fn serving(&mut self, ctl: &mut Control<'_, H::State>) -> Action {
        self.inner.serving(ctl)
    }

    fn opened(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.opened(conn)
    }

    fn data(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.data(conn)
    }

    fn eof(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.eof(conn)
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.read_closed(conn)
    }

    fn writable(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.writable(conn)
    }

    fn woken(&mut self, conn: &mut Conn<'_, H::State>) -> Action {
        self.inner.woken(conn)
    }

    fn closing(&mut self, conn: &mut Conn<'_, H::State>) {
        self.inner.closing(conn)
    }

    fn draining(&mut self, conn: &mut Conn<'_, H::State>) -> bool {
        self.inner.draining(conn)
    }

    fn closed(&mut self, conn: &mut Conn<'_, H::State>, err: Option<Error>) {
        self.inner.closed(conn, err)
    }

    fn detached(&mut self, conn: &mut Conn<'_, H::State>, detached: Detached) {
        self.inner.detached(conn, detached)
    }

    fn datagram(&mut self, dgram: &mut Datagram<'_>) -> Action {
        self.inner.datagram(dgram)
    }

    fn pre_write(&mut self, conn: &mut Conn<'_, H::State>) {
        self.inner.pre_write(conn)
    }

    fn post_write(&mut self, conn: &mut Conn<'_, H::State>, written: usize) {
        self.inner.post_write(conn, written)
    }

    fn tick(&mut self, ctl: &mut Control<'_, H::State>) -> (Option<Duration>, Action) {
        self.inner.tick(ctl)
    }
}
