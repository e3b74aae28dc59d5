//! Which HTTP/2 connection carries a request: one to its peer with room for another
//! stream, else a new one under the pool size, else the request waits; abandoned
//! streams, closed connections and the tick's deadlines.

use wireloop::{ConnId, Control, Error};
use wireloop_middleware::h2::frame::ErrorCode;
use wireloop_middleware::http1::Http1Conn;

use super::super::client::CONNECTING_CAP;
use super::super::state::{Answer, ProxyConn, ProxyState, Side};
use super::super::{push_op, Engine, Op, Reach};
use super::{client_of, requeue, stream_for, H2Up, UpConn};
use crate::phases::ProxyHttp;
use crate::ClientId;

impl<P: ProxyHttp> Engine<P> {
    /// Client `cid`'s request (counted busy on its peer already) on an HTTP/2
    /// connection to its peer with room for another stream, else a new one (under the
    /// pool size), else it waits.
    pub(crate) fn assign_h2(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let Some(c) = r.client(cid) else {
            return;
        };
        let (g, p) = (c.group, c.peer);
        if !self.draining {
            let mut i = 0;
            while let Some(&id) = self.groups[g].pool(p).h2.get(i) {
                i += 1;
                if matches!(r.side(id), Some(Side::H2Up(u)) if u.has_room()) {
                    self.attach(r, cid, id);
                    return;
                }
            }
        }
        if self.groups[g].load(p).conns as usize >= self.s.pool_size {
            self.groups[g].pool(p).waiting.push_back(cid);
            return;
        }
        self.dial_h2(r, cid);
    }

    /// Moves client `cid`'s staged request onto a new stream of HTTP/2 connection
    /// `up_id` (opened when the connection is next woken).
    fn attach(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId, up_id: ConnId) {
        let mut cside = r.take(cid);
        let stream = cside.client().map(|c| {
            c.up = Some(up_id);
            stream_for(c)
        });
        r.put(cid, cside);
        if let (Some(s), Some(Side::H2Up(u))) = (stream, r.side(up_id)) {
            u.idle_since = None;
            u.streams.push(s);
            push_op(&mut self.later, Op::Wake(up_id));
        }
    }

    /// Dials an HTTP/2 connection to client `cid`'s peer, its request queued on it.
    pub(crate) fn dial_h2(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let Some(c) = r.client(cid) else {
            return;
        };
        let (g, p) = (c.group, c.peer);
        let addrs = c.addrs;
        let mut up = H2Up::new(g, p, self.now);
        up.streams.push(stream_for(c));
        let opts = self.dial_options(g, p, addrs);
        let peer = &self.groups[g].peers()[p];
        let state = Http1Conn::foreign(ProxyConn(Side::H2Up(Box::new(up))));
        match r.ctl.dial(&peer.dial, opts, state) {
            Ok(id) => {
                if let Some(c) = r.client(cid) {
                    c.up = Some(id);
                }
                self.groups[g].load_mut(p).conns += 1;
                self.groups[g].pool(p).h2.push(id);
                self.live.push(id);
            }
            Err(e) => {
                log::warn!("cannot dial {}: {e}", peer.url);
                if let Some(c) = r.client(cid) {
                    c.answer = Answer::Fail(502);
                    c.up = None;
                }
                let load = self.groups[g].load_mut(p);
                load.busy = load.busy.saturating_sub(1);
                self.mark_down(g, p);
                push_op(&mut self.later, Op::Wake(cid.conn));
            }
        }
    }

    /// Client `cid`'s further request body bytes, for its stream on `up_id`. `false`
    /// if `up_id` is not an HTTP/2 connection.
    pub(crate) fn flush_h2(
        &mut self,
        r: &mut Reach<'_, '_, P::Ctx>,
        cid: ClientId,
        up_id: ConnId,
    ) -> bool {
        if !matches!(r.side(up_id), Some(Side::H2Up(_))) {
            return false;
        }
        let mut cside = r.take(cid);
        let mut over = false;
        if let (Some(c), Some(Side::H2Up(u))) = (cside.client(), r.side(up_id)) {
            if let Some(s) = u.streams.iter_mut().find(|s| s.client == cid && !s.done) {
                s.body.append(&mut c.req_stage);
                s.req_done = c.req_done;
                over = s.body.len() > CONNECTING_CAP;
            }
        }
        r.put(cid, cside);
        if over {
            // An HTTP/1.1 client is not linked to a shared connection: its body waits
            // here, bounded (an HTTP/2 client is held by its window first).
            log::warn!("client {cid}: request body backed up on an HTTP/2 upstream; giving up");
            self.abandon(r, up_id, cid);
            self.fail_client(r, cid, 502);
            return true;
        }
        push_op(&mut self.later, Op::Wake(up_id));
        true
    }

    /// Client `cid` left its stream on HTTP/2 connection `up_id` mid-way: the stream
    /// is reset (the connection carries on). `false` if `up_id` is not one.
    pub(crate) fn abandon_h2(
        &mut self,
        r: &mut Reach<'_, '_, P::Ctx>,
        up_id: ConnId,
        cid: ClientId,
    ) -> bool {
        let Some(Side::H2Up(u)) = r.side(up_id) else {
            return false;
        };
        if let Some(s) = u.streams.iter_mut().find(|s| s.client == cid && !s.done) {
            s.done = true;
            if s.id != 0 {
                let _ = u.h2.reset(s.id, ErrorCode::CANCEL);
            }
            push_op(&mut self.later, Op::Wake(up_id));
        }
        true
    }

    /// The requests queued on `up` and not sent yet (it can open no more streams) go to
    /// other connections.
    pub(super) fn requeue_unsent(
        &mut self,
        ctl: &mut Control<'_, ProxyState<P::Ctx>>,
        up: &mut H2Up,
    ) {
        for s in up.streams.iter_mut().filter(|s| !s.done && s.id == 0) {
            if let Some(c) = client_of(ctl, s.client) {
                if requeue(c, s) {
                    push_op(&mut self.ops, Op::Assign(s.client));
                }
            }
        }
    }

    /// Every exchange on `up` fails with `status` (a response under way is cut off).
    pub(super) fn fail_streams(&mut self, up: &mut H2Up, status: u16) {
        for s in up.streams.iter_mut().filter(|s| !s.done) {
            s.done = true;
            push_op(&mut self.ops, Op::FailClient(s.client, status));
        }
    }

    /// An HTTP/2 connection is gone: its exchanges fail, it leaves the pool; a failed
    /// connect marks the peer down; a freed slot goes to a waiting client.
    pub(crate) fn h2_closed(
        &mut self,
        conn: UpConn<'_, '_, P::Ctx>,
        up: &mut H2Up,
        err: Option<Error>,
    ) {
        let id = conn.id();
        up.closed = true;
        up.broken = true;
        let (g, p) = (up.group, up.peer);
        self.groups[g].pool(p).h2.retain(|x| *x != id);
        if self.upstream_gone(id, g, p, up.connected, err.as_ref()) {
            self.mark_down(g, p);
        }
        let status = if err.as_ref().is_some_and(|e| e.is_timeout()) {
            504
        } else {
            502
        };
        if up.connected {
            // It worked, then closed: what it was not sent yet goes elsewhere (after a
            // failed connect the client is answered at once, as on HTTP/1.1).
            self.requeue_unsent(&mut conn.control(), up);
        }
        self.fail_streams(up, status);
        self.settle(conn, up);
        if (self.groups[g].load(p).conns as usize) < self.s.pool_size {
            if let Some(w) = self.groups[g].pool(p).waiting.pop_front() {
                push_op(&mut self.ops, Op::Dial(w));
            }
        }
    }

    /// The tick's look at an HTTP/2 connection: requests without a response head in
    /// time, or over the total timeout, are reset and answered 504; an idle connection
    /// past the idle timeout closes.
    pub(crate) fn h2_tick(&mut self, ctl: &mut Control<'_, ProxyState<P::Ctx>>, id: ConnId) {
        let now = self.now;
        let total = self.s.total_timeout;
        let Some(Side::H2Up(u)) = ctl.state(id).and_then(|s| s.app_state()).map(|p| &mut p.0)
        else {
            return;
        };
        // Streams whose head is overdue, and (with a total timeout) all others to check.
        let late: Vec<(u32, ClientId, bool)> = u
            .streams
            .iter()
            .filter(|s| !s.done)
            .map(|s| {
                (
                    s.id,
                    s.client,
                    !s.answered && s.deadline.is_some_and(|d| now >= d),
                )
            })
            .filter(|&(_, _, head_late)| head_late || total.is_some())
            .collect();
        let (g, p) = (u.group, u.peer);
        let idle = u.streams.is_empty()
            && u.idle_since
                .is_some_and(|t| now.saturating_duration_since(t) >= self.s.idle_timeout);
        let mut woke = false;
        for (sid, cid, head_late) in late {
            let over = head_late
                || total.is_some_and(|t| {
                    client_of(ctl, cid).is_some_and(|c| {
                        !matches!(c.answer, Answer::Done)
                            && now.saturating_duration_since(c.started) >= t
                    })
                });
            if !over {
                continue;
            }
            let Some(Side::H2Up(u)) = ctl.state(id).and_then(|s| s.app_state()).map(|p| &mut p.0)
            else {
                return;
            };
            if let Some(s) = u.streams.iter_mut().find(|s| s.client == cid && !s.done) {
                s.done = true;
                if sid != 0 {
                    let _ = u.h2.reset(sid, ErrorCode::CANCEL);
                }
            }
            log::warn!("upstream connection {id}: stream {sid} timed out");
            if head_late {
                self.mark_down(g, p);
            }
            push_op(&mut self.ops, Op::FailClient(cid, 504));
            woke = true;
        }
        if woke {
            push_op(&mut self.later, Op::Wake(id));
        }
        if idle {
            if let Some(Side::H2Up(u)) = ctl.state(id).and_then(|s| s.app_state()).map(|p| &mut p.0)
            {
                u.broken = true;
            }
            push_op(&mut self.later, Op::Close(id));
        }
    }
}
