//! The server side: an [`App`] wrapper that routes WebSocket upgrades to a [`WsHandler`]
//! and everything else to the wrapped HTTP application.

use wireloop::{Action, Conn, Error};

use super::handshake::{accept_key, check_request, is_websocket_request, HandshakeError};
use super::protocol::Role;
use super::session::{self, Session};
use super::{Accept, Config, WsHandler};
use crate::http1::{App, BodyMode, Request, Response, UpgradeEvent};

/// An [`App`] serving WebSocket upgrades with `W` and every other request with `A`. Run
/// it with [`Http1::server(WebSocket::new(app, handler))`](crate::http1::Http1::server).
pub struct WebSocket<A: App, W: WsHandler> {
    app: A,
    ws: W,
    cfg: Config,
}

/// Per-connection state of [`WebSocket`]: the HTTP application's, and after an upgrade
/// the WebSocket session.
pub struct WsState<H, S> {
    http: H,
    ws: Option<Box<Session<S>>>,
}

impl<H: Default, S> Default for WsState<H, S> {
    fn default() -> Self {
        WsState {
            http: H::default(),
            ws: None,
        }
    }
}

impl<H, S> WsState<H, S> {
    /// The HTTP application's state.
    pub fn http(&mut self) -> &mut H {
        &mut self.http
    }

    /// The WebSocket handler's state, once upgraded.
    pub fn ws(&mut self) -> Option<&mut S> {
        self.ws.as_mut().map(|s| &mut s.state)
    }
}

impl<A: App, W: WsHandler> WebSocket<A, W> {
    /// `app` answers HTTP requests, `ws` serves WebSocket connections, with the default
    /// [`Config`].
    pub fn new(app: A, ws: W) -> WebSocket<A, W> {
        WebSocket::with_config(app, ws, Config::default())
    }

    /// Same, with `cfg`.
    pub fn with_config(app: A, ws: W, cfg: Config) -> WebSocket<A, W> {
        WebSocket { app, ws, cfg }
    }

    /// The HTTP application.
    pub fn app(&mut self) -> &mut A {
        &mut self.app
    }

    /// The WebSocket handler.
    pub fn handler(&mut self) -> &mut W {
        &mut self.ws
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

/// Answers a failed handshake.
fn refuse(res: &mut Response<'_>, e: &HandshakeError) {
    log::debug!("ws: {e}");
    res.status(e.status());
    if e.status() == 426 {
        res.header("Sec-WebSocket-Version", "13");
    }
    res.close().body(b"");
}

impl<A: App, W: WsHandler> App for WebSocket<A, W> {
    type State = WsState<A::State, W::State>;

    fn body_mode(&mut self, req: &Request<'_>, state: &mut Self::State) -> BodyMode {
        if is_websocket_request(req) {
            BodyMode::Collect
        } else {
            self.app.body_mode(req, &mut state.http)
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, state: &mut Self::State) {
        if !is_websocket_request(req) {
            return self.app.request(req, res, &mut state.http);
        }
        let mut ws_state = W::State::default();
        let protocol = match self.ws.accept(req, &mut ws_state) {
            Accept::Http => return self.app.request(req, res, &mut state.http),
            Accept::Reject(status) => {
                res.status(status).body(b"");
                return;
            }
            Accept::WebSocket { protocol } => protocol,
        };
        let key = match check_request(req) {
            Ok(k) => k,
            Err(e) => return refuse(res, &e),
        };
        res.status(101)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Accept", accept_key(key));
        if let Some(p) = &protocol {
            res.header("Sec-WebSocket-Protocol", p);
        }
        if res.upgrade() {
            state.ws = Some(Box::new(Session::new(
                Role::Server,
                &self.cfg,
                ws_state,
                protocol,
            )));
        } else {
            res.status(500).body(b"");
        }
    }

    fn body(&mut self, data: &[u8], res: &mut Response<'_>, state: &mut Self::State) {
        self.app.body(data, res, &mut state.http)
    }

    fn body_end(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        self.app.body_end(res, &mut state.http)
    }

    fn resume(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        self.app.resume(res, &mut state.http)
    }

    fn upgraded<T>(
        &mut self,
        conn: &mut Conn<'_, T>,
        event: UpgradeEvent,
        state: &mut Self::State,
    ) -> Action {
        let Some(s) = state.ws.as_deref_mut() else {
            // The HTTP application switched to a protocol of its own.
            return self.app.upgraded(conn, event, &mut state.http);
        };
        if !s.opened {
            let a = session::open(&mut self.ws, s, conn);
            if a != Action::None {
                return a;
            }
        }
        match event {
            UpgradeEvent::Data => session::data(&mut self.ws, s, conn),
            UpgradeEvent::Woken => session::poke(&mut self.ws, s, conn, true),
            UpgradeEvent::Writable => session::poke(&mut self.ws, s, conn, false),
            UpgradeEvent::Eof => Action::Close,
            _ => Action::None,
        }
    }

    fn closed(&mut self, state: &mut Self::State, err: Option<Error>) {
        match state.ws.take() {
            Some(mut s) => {
                let err = s.closed_error(err);
                let close = s.peer_close.take();
                self.ws.closed(&mut s.state, close, err);
            }
            None => self.app.closed(&mut state.http, err),
        }
    }
}
