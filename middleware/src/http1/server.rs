//! The HTTP/1.1 server adapter: a [`Handler`] that parses requests from a connection's
//! input and hands them to an [`App`]. Its per-connection state lives in the connection
//! ([`Http1Conn`]); timeouts are the reactor's read timeout, set per wait.

use std::time::Duration;

use wireloop::{Action, Conn, Control, Error, Handler};

use super::app::{App, UpgradeEvent};
use super::date::HttpDate;
use super::exchange::{
    client_eof, drive, set_wait, shorten_wait, sync_wait, Cx, Entry, Phase, Wait,
};
#[cfg(feature = "h2")]
use super::h2::{self, H2Event, H2};
use super::response::put_error;
use super::Config;

/// The HTTP/1.1 server adapter: a [`Handler`] serving an [`App`]. Stacks under
/// [`translate`](fn@crate::translate) like any byte handler, so the same value serves plain
/// and TLS listeners.
pub struct Http1<A: App> {
    app: A,
    cfg: Config,
    date: HttpDate,
    date_frozen: bool,
    /// Connections open on this loop, and how many of them still speak HTTP/1.1.
    open: usize,
    speaking: usize,
}

impl<A: App> Http1<A> {
    /// An adapter serving `app` with the default [`Config`].
    pub fn server(app: A) -> Http1<A> {
        Http1::with_config(app, Config::default())
    }

    /// An adapter serving `app` with `cfg`.
    pub fn with_config(app: A, cfg: Config) -> Http1<A> {
        Http1 {
            app,
            cfg,
            date: HttpDate::now(),
            date_frozen: false,
            open: 0,
            speaking: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Changes the configuration (before serving).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.cfg
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Fixes the `Date` header at `unix_secs` for good (reproducible output in tests and
    /// fuzzing).
    pub fn freeze_date(&mut self, unix_secs: u64) {
        self.date = HttpDate::at(unix_secs);
        self.date_frozen = true;
    }

    /// Connections this adapter serves on its loop.
    pub fn connections(&self) -> usize {
        self.open
    }

    /// Of those, how many still speak HTTP/1.1 (the others switched protocols: their
    /// HTTP state is gone and their events go straight to [`App::upgraded`]).
    pub fn http_connections(&self) -> usize {
        self.speaking
    }

    /// [`Handler::opened`] with `init` run once the adapter's state is in place and
    /// before any input is served: the place for an application that sets up its
    /// connection state from the connection itself (its addresses, its TLS session), as a
    /// connection whose TLS handshake chose `h2` may have requests waiting already.
    /// `init` reaches the state through [`Http1Conn::app_state`].
    pub fn opened_with(
        &mut self,
        conn: &mut Conn<'_, Http1Conn<A::State>>,
        init: impl FnOnce(&mut A, &mut Conn<'_, Http1Conn<A::State>>),
    ) -> Action {
        let mut e: Box<Entry<A::State>> = Box::new(Entry::new());
        set_wait(&mut e, Wait::Idle);
        sync_wait(&self.cfg, &mut e, conn);
        conn.state.0 = Proto::Http(e);
        self.open += 1;
        self.speaking += 1;
        init(&mut self.app, conn);
        #[cfg(feature = "h2")]
        if Self::alpn_h2(conn) {
            if let Some(a) = self.maybe_h2(conn, true) {
                return a;
            }
        }
        Action::None
    }
}

/// What the adapter keeps for one connection, in the connection's own state (no table on
/// the side): its HTTP/1.1 exchange and the application's per-connection state — or, once
/// it switched protocols, the application's state alone.
pub struct Http1Conn<S>(Proto<S>);

enum Proto<S> {
    /// Lent to a callback (or not opened yet).
    None,
    Http(Box<Entry<S>>),
    Upgraded(Box<Upgraded<S>>),
    /// A connection the adapter does not serve (a proxy's dialed upstream, say): the
    /// application's state alone, never touched by the adapter's callbacks.
    Foreign(Box<Upgraded<S>>),
    /// HTTP/2: the connection's state and one per stream.
    #[cfg(feature = "h2")]
    H2(Box<H2<S>>),
}

/// A connection after its `101`: the HTTP state is dropped, the application's kept.
struct Upgraded<S> {
    state: S,
}

impl<S> Default for Http1Conn<S> {
    fn default() -> Http1Conn<S> {
        Http1Conn(Proto::None)
    }
}

impl<S> Http1Conn<S> {
    /// The state of a connection this adapter does not serve — say an upstream connection
    /// a proxy dials on the same loop (and so with the same state type) and drives
    /// itself: [`app_state`](Http1Conn::app_state) reaches `state`, the adapter's
    /// callbacks leave it alone.
    pub fn foreign(state: S) -> Http1Conn<S> {
        Http1Conn(Proto::Foreign(Box::new(Upgraded { state })))
    }

    /// Whether the connection still speaks HTTP/1.1 (it has not switched protocols).
    pub fn is_http(&self) -> bool {
        matches!(self.0, Proto::Http(_))
    }

    /// The application's per-connection state, if the connection is open and its state
    /// is not lent to a callback of the application right now.
    pub fn app_state(&mut self) -> Option<&mut S> {
        match &mut self.0 {
            Proto::Http(e) => Some(&mut e.state),
            Proto::Upgraded(u) | Proto::Foreign(u) => Some(&mut u.state),
            Proto::None => None,
            #[cfg(feature = "h2")]
            Proto::H2(h) => Some(h.conn_state()),
        }
    }

    /// The application's state for stream `stream` of an HTTP/2 connection (`0`: the
    /// connection's own, as [`app_state`](Http1Conn::app_state)), if the stream is open and
    /// its state is not lent to a callback right now. On an HTTP/1.1 connection only
    /// stream `0` exists.
    pub fn stream_state(&mut self, stream: u32) -> Option<&mut S> {
        if stream == 0 {
            return self.app_state();
        }
        match &mut self.0 {
            #[cfg(feature = "h2")]
            Proto::H2(h) => h.stream_state(stream),
            _ => None,
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Http1Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Proto::None => f.write_str("Http1Conn(none)"),
            Proto::Http(e) => f.debug_tuple("Http1Conn::Http").field(&e.state).finish(),
            Proto::Upgraded(u) => f
                .debug_tuple("Http1Conn::Upgraded")
                .field(&u.state)
                .finish(),
            Proto::Foreign(u) => f.debug_tuple("Http1Conn::Foreign").field(&u.state).finish(),
            #[cfg(feature = "h2")]
            Proto::H2(_) => f.write_str("Http1Conn::H2"),
        }
    }
}

type HttpConn<'c, 'a, A> = &'c mut Conn<'a, Http1Conn<<A as App>::State>>;

impl<A: App> Http1<A> {
    /// Runs `f` on the connection's HTTP exchange (lent out of the connection's state for
    /// the call), then switches to the upgraded protocol if the exchange asked for it.
    fn http<'a>(
        &mut self,
        conn: HttpConn<'_, 'a, A>,
        f: impl FnOnce(&mut Cx<'_, A>, &mut Entry<A::State>, HttpConn<'_, 'a, A>) -> Action,
    ) -> Action {
        if !matches!(conn.state.0, Proto::Http(_)) {
            // Not HTTP (any more): the upgraded path handles it, or it is gone.
            return Action::None;
        }
        let Proto::Http(mut e) = std::mem::replace(&mut conn.state.0, Proto::None) else {
            return Action::None;
        };
        let mut cx = Cx {
            app: &mut self.app,
            cfg: &self.cfg,
            date: &self.date,
            id: conn.id(),
            draining: conn.is_draining(),
        };
        let action = f(&mut cx, &mut e, conn);
        if e.phase == Phase::Upgraded && action == Action::None {
            // The switch: the HTTP state goes, the application's stays, and the upgraded
            // protocol speaks first if it wants, then gets what followed the request.
            self.speaking -= 1;
            let mut up = Box::new(Upgraded {
                state: std::mem::take(&mut e.state),
            });
            drop(e);
            let mut a = self.app.upgraded(conn, UpgradeEvent::Opened, &mut up.state);
            if a == Action::None && !conn.input().is_empty() {
                a = self.app.upgraded(conn, UpgradeEvent::Data, &mut up.state);
            }
            conn.state.0 = Proto::Upgraded(up);
            return a;
        }
        conn.state.0 = Proto::Http(e);
        action
    }

    /// Runs the HTTP/2 side after `ev`, if the connection speaks HTTP/2.
    #[cfg(feature = "h2")]
    fn h2(&mut self, conn: HttpConn<'_, '_, A>, ev: H2Event) -> Option<Action> {
        if !matches!(conn.state.0, Proto::H2(_)) {
            return None;
        }
        let Proto::H2(mut h) = std::mem::replace(&mut conn.state.0, Proto::None) else {
            return None;
        };
        let mut cx = h2::Cx {
            app: &mut self.app,
            cfg: &self.cfg,
            date: &self.date,
        };
        let a = h.drive(&mut cx, conn, ev);
        conn.state.0 = Proto::H2(h);
        Some(a)
    }

    /// Switches a fresh connection to HTTP/2 when it starts with the preface (or its
    /// TLS chose `h2`, `alpn`); `Some` is the action to return (also while the input is
    /// too short to tell).
    #[cfg(feature = "h2")]
    fn maybe_h2(&mut self, conn: HttpConn<'_, '_, A>, alpn: bool) -> Option<Action> {
        self.cfg.http2.as_ref()?;
        let Proto::Http(e) = &conn.state.0 else {
            return None;
        };
        if e.served > 0 || e.answering || e.phase != Phase::Head {
            return None;
        }
        if !alpn {
            match h2::preface(conn.input()) {
                Some(true) => {}
                Some(false) => return None,
                None => return Some(Action::None),
            }
        }
        let Proto::Http(mut e) = std::mem::replace(&mut conn.state.0, Proto::None) else {
            return None;
        };
        self.speaking -= 1;
        // The state made when the connection opened stays the connection's; each stream
        // gets its own (`App::stream_state`).
        let state = std::mem::take(&mut e.state);
        conn.state.0 = Proto::H2(H2::new(&self.cfg, conn.now(), state));
        self.h2(conn, H2Event::Data)
    }

    /// Whether the TLS handshake chose HTTP/2.
    #[cfg(all(feature = "h2", feature = "tls"))]
    fn alpn_h2(conn: HttpConn<'_, '_, A>) -> bool {
        conn.layer::<crate::tls::TlsSession>()
            .and_then(|t| t.alpn_protocol())
            == Some(b"h2")
    }

    #[cfg(all(feature = "h2", not(feature = "tls")))]
    fn alpn_h2(_conn: HttpConn<'_, '_, A>) -> bool {
        false
    }

    /// Passes `event` to the upgraded protocol, if the connection switched.
    fn upgraded(&mut self, conn: HttpConn<'_, '_, A>, event: UpgradeEvent) -> Option<Action> {
        if !matches!(conn.state.0, Proto::Upgraded(_)) {
            return None;
        }
        let Proto::Upgraded(mut up) = std::mem::replace(&mut conn.state.0, Proto::None) else {
            return None;
        };
        let a = self.app.upgraded(conn, event, &mut up.state);
        conn.state.0 = Proto::Upgraded(up);
        Some(a)
    }
}

impl<A: App> Handler for Http1<A> {
    type State = Http1Conn<A::State>;

    fn serving(&mut self, _ctl: &mut Control<'_, Self::State>) -> Action {
        if !self.date_frozen {
            self.date.refresh();
        }
        Action::None
    }

    fn tick(&mut self, _ctl: &mut Control<'_, Self::State>) -> (Option<Duration>, Action) {
        // The `Date` cache; timeouts are the reactor's (per connection, no scan here).
        if !self.date_frozen {
            self.date.refresh();
        }
        (Some(Duration::from_secs(1)), Action::None)
    }

    fn opened(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.opened_with(conn, |_, _| {})
    }

    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if let Proto::Http(e) = &conn.state.0 {
            if e.served > 0 || e.answering || e.phase != Phase::Head {
                // Past its first request: HTTP/1.1 for good (or until it upgrades).
                return self.http(conn, |cx, e, conn| drive(cx, e, conn, false));
            }
        }
        if let Some(a) = self.upgraded(conn, UpgradeEvent::Data) {
            return a;
        }
        #[cfg(feature = "h2")]
        if let Some(a) = self
            .h2(conn, H2Event::Data)
            .or_else(|| self.maybe_h2(conn, false))
        {
            return a;
        }
        self.http(conn, |cx, e, conn| drive(cx, e, conn, false))
    }

    fn eof(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if let Some(a) = self.upgraded(conn, UpgradeEvent::Eof) {
            return a;
        }
        #[cfg(feature = "h2")]
        if let Some(a) = self.h2(conn, H2Event::Eof) {
            return a;
        }
        self.http(conn, |cx, e, conn| {
            e.peer_eof = true;
            match e.phase {
                // An incomplete request will not complete.
                Phase::Inline | Phase::Body => Action::Close,
                _ => {
                    client_eof(cx, e, conn);
                    drive(cx, e, conn, false)
                }
            }
        })
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if let Some(a) = self.upgraded(conn, UpgradeEvent::ReadClosed) {
            return a;
        }
        #[cfg(feature = "h2")]
        if let Some(a) = self.h2(conn, H2Event::Eof) {
            return a;
        }
        self.http(conn, |cx, e, conn| {
            client_eof(cx, e, conn);
            drive(cx, e, conn, false)
        })
    }

    fn writable(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if let Some(a) = self.upgraded(conn, UpgradeEvent::Writable) {
            return a;
        }
        #[cfg(feature = "h2")]
        if let Some(a) = self.h2(conn, H2Event::Resume) {
            return a;
        }
        self.http(conn, |cx, e, conn| drive(cx, e, conn, true))
    }

    fn post_write(&mut self, conn: &mut Conn<'_, Self::State>, written: usize) {
        if let Proto::Http(e) = &conn.state.0 {
            if !(e.blocked || (e.answering && !e.resp.is_done())) {
                // Nothing waits for the output to drain.
                return;
            }
        }
        #[cfg(feature = "h2")]
        let h2 = self.h2(conn, H2Event::Resume);
        #[cfg(not(feature = "h2"))]
        let h2 = None;
        let action = match h2.or_else(|| self.upgraded(conn, UpgradeEvent::Written(written))) {
            Some(a) => a,
            None => self.http(conn, |cx, e, conn| {
                if e.blocked || (e.answering && !e.resp.is_done()) {
                    drive(cx, e, conn, true)
                } else {
                    Action::None
                }
            }),
        };
        match action {
            Action::Close => conn.close(),
            Action::Shutdown => conn.handle().shutdown(),
            _ => {}
        }
    }

    fn woken(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if let Some(a) = self.upgraded(conn, UpgradeEvent::Woken) {
            return a;
        }
        #[cfg(feature = "h2")]
        if let Some(a) = self.h2(conn, H2Event::Resume) {
            return a;
        }
        self.http(conn, |cx, e, conn| drive(cx, e, conn, true))
    }

    fn draining(&mut self, conn: &mut Conn<'_, Self::State>) -> bool {
        #[cfg(feature = "h2")]
        if let Proto::H2(h) = &mut conn.state.0 {
            let keep = h.draining();
            // The GOAWAY goes out with the next flush.
            let _ = self.h2(conn, H2Event::Resume);
            return keep;
        }
        let waiting = !conn.input().is_empty();
        let Proto::Http(e) = &mut conn.state.0 else {
            // Upgraded: the protocol it switched to has no way to finish; closed now.
            return false;
        };
        if e.phase == Phase::Head && !waiting && !e.answering {
            // Between requests: kept a moment for a request that may be on its way (its
            // response will say `Connection: close`), then closed by the read timeout.
            let Some(grace) = self.cfg.drain_idle_timeout else {
                return false;
            };
            let mut e = std::mem::replace(&mut conn.state.0, Proto::None);
            if let Proto::Http(e) = &mut e {
                shorten_wait(e, grace, conn);
            }
            conn.state.0 = e;
            return true;
        }
        // A request in flight: its response closes the connection (and says so, unless
        // its head went out already).
        e.resp.close = true;
        true
    }

    fn closing(&mut self, conn: &mut Conn<'_, Self::State>) {
        // The reactor's read timeout ran out while a head or a body was arriving: say so.
        let timed_out = conn.close_reason().is_some_and(Error::is_read_timeout);
        let id = conn.id();
        let Proto::Http(e) = &mut conn.state.0 else {
            return;
        };
        if !(timed_out && e.owes_408()) {
            return;
        }
        log::debug!("http1: connection {id}: timeout waiting ({:?})", e.wait);
        e.phase = Phase::Dead;
        let n = conn.input().len();
        conn.consume(n);
        let (_, mut out) = conn.split();
        put_error(&mut out, 408, &self.date);
    }

    fn closed(&mut self, conn: &mut Conn<'_, Self::State>, err: Option<Error>) {
        match std::mem::replace(&mut conn.state.0, Proto::None) {
            Proto::Http(mut e) => {
                self.open -= 1;
                self.speaking -= 1;
                self.app.closed(&mut e.state, err);
            }
            Proto::Upgraded(mut up) => {
                self.open -= 1;
                self.app.closed(&mut up.state, err);
            }
            // Not the adapter's to drop: its owner still reads it in its own `closed`.
            Proto::Foreign(f) => conn.state.0 = Proto::Foreign(f),
            #[cfg(feature = "h2")]
            Proto::H2(mut h) => {
                self.open -= 1;
                h.closed(&mut self.app, err);
            }
            Proto::None => {}
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
