//! The client side: a byte [`Handler`] for dialed connections that performs the opening
//! handshake and then drives a [`WsHandler`] with masked frames.

use wireloop::{Action, Conn, Error, Handler};

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
    key: String,
    open: bool,
    session: Session<S>,
}

/// What a [`WsClient`] keeps for one connection, in the connection's own state: the
/// handshake's key and the WebSocket session (with the handler's state).
pub struct WsClientConn<S>(Option<Box<Entry<S>>>);

impl<S> Default for WsClientConn<S> {
    fn default() -> WsClientConn<S> {
        WsClientConn(None)
    }
}

impl<S> WsClientConn<S> {
    /// The handler's per-connection state, once the connection opened.
    pub fn state(&mut self) -> Option<&mut S> {
        self.0.as_deref_mut().map(|e| &mut e.session.state)
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        self.0.as_ref().is_some_and(|e| e.open)
    }
}

/// A WebSocket client over every connection it serves (use it for dialed connections, or
/// select them with [`translate`](crate::translate())): sends the upgrade request on
/// `opened`, checks the `101`, then drives `W` with masked frames. Stacks above
/// [`TlsClient`](crate::TlsClient) for `wss://`.
pub struct WsClient<W: WsHandler> {
    handler: W,
    cfg: ClientConfig,
}

impl<W: WsHandler> WsClient<W> {
    /// A client serving `handler`, sending requests as `cfg` says.
    pub fn new(handler: W, cfg: ClientConfig) -> WsClient<W> {
        WsClient { handler, cfg }
    }

    /// The handler.
    pub fn handler(&mut self) -> &mut W {
        &mut self.handler
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }
}

/// Fails the handshake.
fn refuse<S, T>(e: &mut Entry<S>, conn: &mut Conn<'_, T>, err: HandshakeError) -> Action {
    log::debug!("ws client: connection {}: {err}", conn.id());
    e.session.error = Some(WsError::Handshake(err));
    e.session.proto.set_closed();
    let n = conn.input().len();
    conn.consume(n);
    Action::Close
}

type ClientConn<'c, 'a, W> = &'c mut Conn<'a, WsClientConn<<W as WsHandler>::State>>;

impl<W: WsHandler> Handler for WsClient<W> {
    type State = WsClientConn<W::State>;

    fn opened(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let key = match client_key() {
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
        conn.state.0 = Some(Box::new(Entry {
            key,
            open: false,
            session: Session::new(Role::Client, &self.cfg.ws, W::State::default(), None),
        }));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let protocols = std::mem::take(&mut self.cfg.protocols);
        let action = self.data_inner(conn, &protocols);
        self.cfg.protocols = protocols;
        action
    }

    fn eof(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let Some(mut e) = conn.state.0.take() else {
            return Action::Close;
        };
        let a = if e.open {
            Action::Close
        } else {
            let err = HandshakeError::BadResponse("connection closed during the handshake".into());
            refuse(&mut e, conn, err)
        };
        conn.state.0 = Some(e);
        a
    }

    fn writable(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.poke(conn, false)
    }

    fn woken(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.poke(conn, true)
    }

    fn closed(&mut self, conn: &mut Conn<'_, Self::State>, err: Option<Error>) {
        match conn.state.0.take() {
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
    fn data_inner(&mut self, conn: ClientConn<'_, '_, W>, protocols: &[String]) -> Action {
        let Some(mut e) = conn.state.0.take() else {
            return Action::Close;
        };
        let a = self.data_entry(&mut e, conn, protocols);
        conn.state.0 = Some(e);
        a
    }

    fn data_entry(
        &mut self,
        e: &mut Entry<W::State>,
        conn: ClientConn<'_, '_, W>,
        protocols: &[String],
    ) -> Action {
        let WsClient { handler, .. } = self;
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
        session::data(handler, &mut e.session, conn)
    }

    fn poke(&mut self, conn: ClientConn<'_, '_, W>, woken: bool) -> Action {
        let Some(mut e) = conn.state.0.take() else {
            return Action::None;
        };
        let a = if e.open {
            session::poke(&mut self.handler, &mut e.session, conn, woken)
        } else {
            Action::None
        };
        conn.state.0 = Some(e);
        a
    }
}
