//! The loop's handler: inbound connections go to the HTTP/1.1 server adapter (whose
//! application is the engine), dialed ones to the engine's upstream side. After each
//! callback the engine's queued operations run.

use std::time::Duration;

use wireloop::{Action, Conn, Control, Detached, Error, Handler};
use wireloop_middleware::http1::Http1;

use super::state::{ProxyState, Side};
use super::{Engine, Op, Reach};
use crate::group::Group;
use crate::phases::ProxyHttp;
use crate::settings::Settings;

/// An HTTP/1.1 reverse proxy running policy `P` over `groups`: a [`Handler`], one per
/// loop (make it in the server's factory; TLS listeners go under
/// [`translate`](wireloop_middleware::translate()), TLS peers carry their layer in their
/// [`Peer`](crate::Peer)).
pub struct HttpProxy<P: ProxyHttp> {
    http: Http1<Engine<P>>,
}

type PConn<'c, 'a, P> = &'c mut Conn<'a, ProxyState<<P as ProxyHttp>::Ctx>>;

impl<P: ProxyHttp> HttpProxy<P> {
    /// A proxy for one loop.
    pub fn new(policy: P, groups: Vec<Group>, settings: Settings) -> HttpProxy<P> {
        let cfg = settings.http.clone();
        HttpProxy {
            http: Http1::with_config(Engine::new(policy, groups, settings), cfg),
        }
    }

    /// The policy.
    pub fn policy(&mut self) -> &mut P {
        &mut self.http.app_mut().policy
    }

    /// The groups on this loop (their loads and pools).
    pub fn groups(&self) -> &[Group] {
        &self.http.app().groups
    }

    /// Runs what the callback left to do: operations needing other connections' state,
    /// then those on connections.
    fn after(&mut self, conn: PConn<'_, '_, P>) {
        let e = self.http.app_mut();
        if !conn.is_dialed() {
            e.flush_tunnel(conn);
        }
        if e.ops.is_empty() && e.later.is_empty() {
            return;
        }
        let me = conn.id();
        {
            let (state, mut ctl) = conn.state_and_control();
            let mut r = Reach {
                me: Some(me),
                mine: Some(state),
                ctl: &mut ctl,
            };
            e.run_ops(&mut r);
        }
        for op in e.later.drain(..) {
            match op {
                Op::Wake(id) if id == me => {
                    conn.handle().wake(id);
                }
                Op::Wake(id) => {
                    conn.control().wake(id);
                }
                Op::Close(id) if id == me => conn.close(),
                Op::Close(id) => {
                    conn.control().close(id);
                }
                Op::Abort(id) if id == me => conn.abort(),
                Op::Abort(id) => {
                    conn.control().abort(id);
                }
                Op::Link(a, b) if a == me => {
                    conn.link(b);
                }
                Op::Link(a, b) if b == me => {
                    conn.link(a);
                }
                Op::Link(a, b) => {
                    conn.control().link(a, b);
                }
                Op::Unlink(id) if id == me => conn.unlink(),
                Op::Unlink(id) => {
                    conn.control().unlink(id);
                }
                _ => {}
            }
        }
    }

    /// Runs a callback on the side `conn` is on (`up` for a dialed connection, `client`
    /// for an inbound one), then what it left to do.
    fn route(
        &mut self,
        conn: PConn<'_, '_, P>,
        up: impl FnOnce(&mut Engine<P>, PConn<'_, '_, P>) -> Action,
        client: impl FnOnce(&mut Http1<Engine<P>>, PConn<'_, '_, P>) -> Action,
    ) -> Action {
        self.clock(conn);
        let a = if conn.is_dialed() {
            up(self.http.app_mut(), conn)
        } else {
            client(&mut self.http, conn)
        };
        self.after(conn);
        a
    }

    fn clock(&mut self, conn: PConn<'_, '_, P>) {
        self.http.app_mut().now = conn.control().now();
    }
}

impl<P: ProxyHttp> Handler for HttpProxy<P> {
    type State = ProxyState<P::Ctx>;

    fn serving(&mut self, ctl: &mut Control<'_, Self::State>) -> Action {
        self.http.serving(ctl)
    }

    fn tick(&mut self, ctl: &mut Control<'_, Self::State>) -> (Option<Duration>, Action) {
        let (period, action) = self.http.tick(ctl);
        let e = self.http.app_mut();
        e.now = ctl.now();
        let mine = e.tick(ctl);
        (period.map(|p| p.min(mine)).or(Some(mine)), action)
    }

    fn opened(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.clock(conn);
        let a = if conn.is_dialed() {
            self.http.app_mut().up_opened(conn)
        } else {
            // The client's state is in place before a request is served (with ALPN `h2`
            // requests may have come with the handshake).
            self.http.opened_with(conn, Engine::client_opened)
        };
        self.after(conn);
        a
    }

    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.route(conn, Engine::up_data, Http1::data)
    }

    fn eof(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.route(conn, Engine::up_eof, Http1::eof)
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        if conn.is_dialed() {
            // An upstream's end is noticed when its response is read (or times out).
            return Action::None;
        }
        self.clock(conn);
        let a = self.http.read_closed(conn);
        self.after(conn);
        a
    }

    fn writable(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.route(conn, Engine::up_writable, Http1::writable)
    }

    fn woken(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        self.route(conn, Engine::up_woken, Http1::woken)
    }

    fn post_write(&mut self, conn: &mut Conn<'_, Self::State>, written: usize) {
        if !conn.is_dialed() {
            self.http.post_write(conn, written);
            self.after(conn);
        }
    }

    fn closing(&mut self, conn: &mut Conn<'_, Self::State>) {
        if !conn.is_dialed() {
            self.http.closing(conn);
        }
    }

    fn draining(&mut self, conn: &mut Conn<'_, Self::State>) -> bool {
        // From now on an upstream connection that finishes its exchange is closed, not
        // pooled.
        self.http.app_mut().draining = true;
        if !conn.is_dialed() {
            return self.http.draining(conn);
        }
        // An upstream serving a client finishes its response; an idle one closes now.
        match conn.state.app_state().map(|p| &mut p.0) {
            Some(Side::Upstream(up)) => up.client.is_some(),
            Some(Side::H2Up(up)) => {
                // No new streams; those in flight finish.
                up.broken = true;
                up.busy()
            }
            _ => false,
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, Self::State>, err: Option<Error>) {
        self.clock(conn);
        if conn.is_dialed() {
            self.http.app_mut().up_closed(conn, err);
        } else {
            self.http.app_mut().client_closed(conn);
            self.http.closed(conn, err);
        }
        self.after(conn);
    }

    fn detached(&mut self, conn: &mut Conn<'_, Self::State>, detached: Detached) {
        self.http.detached(conn, detached);
    }
}
