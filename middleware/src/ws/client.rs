//! The client side: a byte [`Handler`] for dialed connections that performs the opening
//! handshake and then drives a [`WsHandler`] with masked frames.

use ring::rand::SystemRandom;
use wireloop::{Action, Conn, ConnId, Error, Handler};

use super::handshake::{check_response, client_key, write_request, HandshakeError};
use super::protocol::{Role, WsError};
use super::session::{self, Session};
use super::{Config, WsHandler};

/// Where a [`WsClient`] connects: the request it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// The `Host` header (with `:port` when not the default one).
    pub host: String,
    /// The request target (`/` if empty).
    pub path: String,
    /// Subprotocols offered, in order of preference (none if empty).
    pub protocols: Vec<String>,
    /// Limits and delivery mode.
    pub ws: Config,
}

struct Entry<S> {
    id: ConnId,
    key: String,
    open: bool,
    session: Session<S>,
}

/// A WebSocket client over every connection it serves (use it for dialed connections, or
/// select them with [`translate`](crate::translate)): sends the upgrade request on
/// `opened`, checks the `101`, then drives `W` with masked frames. Stacks above
/// [`TlsClient`](crate::TlsClient) for `wss://`.
pub struct WsClient<W: WsHandler> {
    handler: W,
    cfg: ClientConfig,
    conns: Vec<Option<Box<Entry<W::State>>>>,
    scratch: Vec<u8>,
    rng: SystemRandom,
}

impl<W: WsHandler> WsClient<W> {
    /// A client serving `handler`, sending requests as `cfg` says.
    pub fn new(handler: W, cfg: ClientConfig) -> WsClient<W> {
        WsClient {
            handler,
            cfg,
            conns: Vec::new(),
            scratch: Vec::new(),
            rng: SystemRandom::new(),
        }
    }

    /// The handler.
    pub fn handler(&mut self) -> &mut W {
        &mut self.handler
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    fn entry(&mut self, id: ConnId) -> Option<&mut Entry<W::State>> {
        self.conns
            .get_mut(id.slot())
            .and_then(|e| e.as_deref_mut())
            .filter(|e| e.id == id)
    }
}

/// Fails the handshake.
fn refuse<S>(e: &mut Entry<S>, conn: &mut Conn<'_, ()>, err: HandshakeError) -> Action {
    log::debug!("ws client: connection {}: {err}", conn.id());
    e.session.error = Some(WsError::Handshake(err));
    e.session.proto.set_closed();
    let n = conn.input().len();
    conn.consume(n);
    Action::Close
}

impl<W: WsHandler> Handler for WsClient<W> {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let key = match client_key(&self.rng) {
            Ok(k) => k,
            Err(e) => {
                log::error!("ws client: {e}");
                return Action::Close;
            }
        };
        let mut req = Vec::with_capacity(256);
        write_request(
            &mut req,
            &self.cfg.host,
            &self.cfg.path,
            &key,
            &self.cfg.protocols,
        );
        conn.write(&req);
        let slot = id.slot();
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(Box::new(Entry {
            id,
            key,
            open: false,
            session: Session::new(Role::Client, &self.cfg.ws, W::State::default(), None),
        }));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let protocols = std::mem::take(&mut self.cfg.protocols);
        let action = self.data_inner(conn, &protocols);
        self.cfg.protocols = protocols;
        action
    }

    fn eof(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if let Some(e) = self.entry(conn.id()) {
            if !e.open {
                let err =
                    HandshakeError::BadResponse("connection closed during the handshake".into());
                return refuse(e, conn, err);
            }
        }
        Action::Close
    }

    fn writable(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.poke(conn, false)
    }

    fn woken(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.poke(conn, true)
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let id = conn.id();
        let entry = self
            .conns
            .get_mut(id.slot())
            .and_then(|e| e.take_if(|e| e.id == id));
        match entry {
            Some(mut e) => {
                let err = e.session.closed_error(err);
                let close = e.session.peer_close.take();
                self.handler.closed(&mut e.session.state, close, err);
            }
            // The dial failed before `opened`.
            None => self.handler.closed(&mut W::State::default(), None, err),
        }
    }
}

impl<W: WsHandler> WsClient<W> {
    fn data_inner(&mut self, conn: &mut Conn<'_, ()>, protocols: &[String]) -> Action {
        let id = conn.id();
        let WsClient {
            handler,
            conns,
            scratch,
            ..
        } = self;
        let Some(e) = conns
            .get_mut(id.slot())
            .and_then(|e| e.as_deref_mut())
            .filter(|e| e.id == id)
        else {
            return Action::Close;
        };
        if !e.open {
            match check_response(conn.input(), &e.key, protocols) {
                Ok(None) => return Action::None,
                Err(err) => return refuse(e, conn, err),
                Ok(Some(acc)) => {
                    conn.consume(acc.head_len);
                    e.open = true;
                    e.session.set_protocol(acc.protocol);
                    let a = session::open(handler, &mut e.session, conn);
                    if a != Action::None {
                        return a;
                    }
                }
            }
        }
        session::data(handler, &mut e.session, conn, scratch)
    }

    fn poke(&mut self, conn: &mut Conn<'_, ()>, woken: bool) -> Action {
        let id = conn.id();
        let WsClient { handler, conns, .. } = self;
        match conns
            .get_mut(id.slot())
            .and_then(|e| e.as_deref_mut())
            .filter(|e| e.id == id)
        {
            Some(e) if e.open => session::poke(handler, &mut e.session, conn, woken),
            _ => Action::None,
        }
    }
}
