//! The HTTP proxy engine: client connections served by the HTTP adapter (HTTP/1.1, and
//! HTTP/2 by ALPN or prior knowledge), their requests sent over pooled HTTP/1.1 upstream
//! connections dialed from the same loop, the policy ([`ProxyHttp`]) consulted at each
//! phase.
//!
//! Data path of one exchange (all on one loop):
//!
//! ```text
//! client ──Http1/H2──▶ App::request/body ──(req bytes)──▶ Up.out ──wake──▶ upstream socket
//! client ◀─Response─── App::resume ◀──(head, body)── Client.stage ◀── up_data (ResponseReader)
//! ```
//!
//! Each exchange's data is in its own state ([`ProxyConn`]): an HTTP/1.1 client
//! connection's, an HTTP/2 stream's (made by `App::stream_state` from its connection's),
//! or an upstream connection's; a partner reaches it with `Control::state` and a
//! [`ClientId`]. The adapter's callbacks (`App`) see only their own exchange, so what
//! they need done elsewhere is queued as an [`Op`] and carried out by the handler right
//! after, through a [`Reach`].
//!
//! An HTTP/1.1 client and its upstream connection are linked (the loop stops reading one
//! while the other's output is backed up); HTTP/2 streams share their connection, so
//! theirs are not: a stream's response is bounded by its staging cap and the stream's
//! queue, its request body by the upstream's output (see `App::hold_input`).
//!
//! - [`handler`]: the loop's `Handler`, dispatching on `is_dialed`;
//! - [`client`]: the inbound side (the `App`);
//! - [`upstream`]: the dialed side (reading responses, staging them for the client);
//! - [`pool`]: choosing a peer, idle connections, waiting clients, dialing, release;
//! - [`h2_upstream`]: HTTP/2 upstream connections, many exchanges on each;
//! - [`failure`]: failures, the policy's recovery, retries and stale-connection replays;
//! - [`probe`]: active health checks, dialed from the tick;
//! - [`headers`]: hop-by-hop removal and the forwarding headers.

mod client;
mod failure;
mod h2_upstream;
mod handler;
mod headers;
mod pool;
mod probe;
mod state;
mod upstream;

use std::time::Instant;

use wireloop::{ConnId, Control};

use crate::group::Group;
use crate::phases::{ProxyHttp, Summary};
use crate::settings::Settings;
use crate::ClientId;

pub use handler::HttpProxy;
use state::{Client, Side, Up};
pub use state::{ProxyConn, ProxyState};

/// Something to do once the current callback's own work is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Find or make an upstream connection for this client's request.
    Assign(ClientId),
    /// Move this client's staged request bytes to its upstream connection.
    Flush(ClientId),
    /// The upstream connection finished its exchange (reusable or not).
    Release(ConnId, bool),
    /// The upstream connection failed in a way the policy hears of.
    Fail(ConnId, crate::phases::FailureKind),
    /// The upstream connection ended before any byte of its response: send the request
    /// again if it may be, else fail this way.
    Replay(ConnId, crate::phases::FailureKind),
    /// The upstream connection's input ended.
    Ended(ConnId),
    /// Dial for this waiting client (a connection slot freed).
    Dial(ClientId),
    /// This client's request body went over its route's limit: its exchange ends with
    /// a 413 (the upstream's aborted).
    TooLarge(ClientId),
    /// This client's exchange failed on the upstream side with this status (cut off if
    /// its response started).
    FailClient(ClientId, u16),
    /// The client exchange left (its connection closed, its stream was reset): the
    /// upstream connection serving it is reset, never reused.
    Abandon(ConnId, ClientId),
    // On connections, run last.
    Wake(ConnId),
    Close(ConnId),
    /// Reset this connection, dropping what is queued for it: an upstream exchange
    /// abandoned mid-way, whose unread rest must not be drained for the close linger.
    Abort(ConnId),
    Link(ConnId, ConnId),
    Unlink(ConnId),
}

/// The loop's connections' proxy states, as a callback's queued operations see them:
/// the current connection's (`me`, lent by the callback) and the others through the
/// loop's `Control`. A client exchange is reached by [`ClientId`]: its connection's
/// state, or one of its HTTP/2 streams'.
pub(crate) struct Reach<'r, 'c, C> {
    me: Option<ConnId>,
    mine: Option<&'r mut ProxyState<C>>,
    ctl: &'r mut Control<'c, ProxyState<C>>,
}

impl<C> Reach<'_, '_, C> {
    fn state(&mut self, id: ConnId) -> Option<&mut ProxyState<C>> {
        if Some(id) == self.me {
            return self.mine.as_deref_mut();
        }
        self.ctl.state(id)
    }

    /// Connection `id`'s own proxy state (a client connection's, an upstream's).
    fn side(&mut self, id: ConnId) -> Option<&mut Side<C>> {
        self.state(id)?.app_state().map(|p| &mut p.0)
    }

    /// Client exchange `cid`'s state.
    fn cside(&mut self, cid: ClientId) -> Option<&mut Side<C>> {
        self.state(cid.conn)?
            .stream_state(cid.stream)
            .map(|p| &mut p.0)
    }

    fn client(&mut self, cid: ClientId) -> Option<&mut Client<C>> {
        self.cside(cid)?.client()
    }

    fn up(&mut self, id: ConnId) -> Option<&mut Up> {
        self.side(id)?.up()
    }

    /// Takes client exchange `cid`'s state out (put it back with [`put`](Reach::put)),
    /// so that it and an upstream connection's can be worked on at once.
    fn take(&mut self, cid: ClientId) -> Side<C> {
        match self.cside(cid) {
            Some(s) => std::mem::replace(s, Side::Gone),
            None => Side::Gone,
        }
    }

    fn put(&mut self, cid: ClientId, side: Side<C>) {
        if let Some(s) = self.cside(cid) {
            *s = side;
        }
    }

    /// Takes upstream connection `id`'s state out, if it is one.
    fn take_up(&mut self, id: ConnId) -> Option<Box<Up>> {
        match self.side(id)? {
            s @ Side::Upstream(_) => match std::mem::replace(s, Side::Gone) {
                Side::Upstream(u) => Some(u),
                _ => None,
            },
            _ => None,
        }
    }

    fn put_up(&mut self, id: ConnId, up: Box<Up>) {
        if let Some(s) = self.side(id) {
            *s = Side::Upstream(up);
        }
    }
}

fn push_op(ops: &mut Vec<Op>, op: Op) {
    if !ops.contains(&op) {
        ops.push(op);
    }
}

/// The proxy on one loop: the policy, the groups (with their pools), and what the
/// current callback left to do.
pub(crate) struct Engine<P: ProxyHttp> {
    policy: P,
    groups: Vec<Group>,
    s: Settings,
    /// Queued by the adapter's callbacks and the dialed side, run with a [`Reach`].
    ops: Vec<Op>,
    /// Operations on connections, run last.
    later: Vec<Op>,
    /// Upstream connections open on this loop (their deadlines are checked by the tick).
    live: Vec<ConnId>,
    /// The loop's clock, as of the current callback.
    now: Instant,
    scratch: String,
    scratch2: String,
    /// Header names lowercased for an HTTP/2 upstream request.
    scratch_names: Vec<u8>,
    /// The server is shutting down gracefully: upstreams are not pooled any more.
    pub(crate) draining: bool,
}

impl<P: ProxyHttp> Engine<P> {
    fn new(policy: P, groups: Vec<Group>, s: Settings) -> Engine<P> {
        Engine {
            policy,
            groups,
            s,
            ops: Vec::new(),
            later: Vec::new(),
            live: Vec::new(),
            now: Instant::now(),
            scratch: String::new(),
            scratch2: String::new(),
            scratch_names: Vec::new(),
            draining: false,
        }
    }

    /// Runs the queued operations that need other connections' state.
    fn run_ops(&mut self, r: &mut Reach<'_, '_, P::Ctx>) {
        let mut i = 0;
        while i < self.ops.len() {
            let op = self.ops[i];
            i += 1;
            match op {
                Op::Assign(cid) => self.assign(r, cid),
                Op::Flush(cid) => self.flush_up(r, cid),
                Op::Release(up, reusable) => self.release(r, up, reusable),
                Op::Fail(up, kind) => self.fail_up(r, up, kind),
                Op::Replay(up, kind) => self.replay(r, up, kind),
                Op::Ended(up) => self.ended(r, up),
                Op::Dial(cid) => self.dial(r, cid),
                Op::TooLarge(cid) => self.too_large(r, cid),
                Op::Abandon(up, cid) => self.abandon(r, up, cid),
                Op::FailClient(cid, status) => self.fail_client(r, cid, status),
                other => push_op(&mut self.later, other),
            }
        }
        self.ops.clear();
    }

    /// Logs the end of client `c`'s request with `status`.
    fn log(&mut self, c: &mut Client<P::Ctx>, status: u16) {
        let peer = c
            .routed
            .then(|| self.groups[c.group].peers()[c.peer].url.as_str());
        let summary = Summary {
            client_ip: &c.ip,
            method: &c.method,
            target: &c.target,
            status,
            sent: c.sent,
            peer,
            duration: self.now.saturating_duration_since(c.started),
            upstream_time: c.upstream_time,
        };
        self.policy.logging(&summary, &mut c.ctx);
        if let Some(m) = &self.s.metrics {
            m.request(c.routed.then_some(c.group), status, c.upstream_time, c.sent);
            if let Some(r) = c.route {
                m.route_request(r, status);
            }
        }
    }
}
