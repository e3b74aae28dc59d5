//! The dialed side: a connection's life (connected, woken to write staged request bytes,
//! response bytes read with the HTTP/1.1 client side and staged for the client, end of
//! input, closed), and the tick that enforces first-byte deadlines and the pool's idle
//! timeout.

use std::time::Duration;

use crate::ClientId;
use wireloop::{Action, Conn, ConnId, Control, Error};
use wireloop_middleware::http1::{header_slots, ClientEvent, ResponseError};

use super::failure::overdue;
use super::headers::response_head;
use super::state::{Answer, ProxyConn, ProxyState, Side};
use super::{push_op, Engine, Op, Reach};
use crate::phases::{FailureKind, ProxyHttp};

/// Most response bytes staged for a client before the upstream's input is left unread.
const STAGE_CAP: usize = 256 * 1024;

type UpConn<'c, 'a, C> = &'c mut Conn<'a, ProxyState<C>>;

/// Takes the connection's own proxy state out for the moment.
fn take_mine<C>(conn: UpConn<'_, '_, C>) -> Side<C> {
    match conn.state.app_state() {
        Some(p) => std::mem::replace(&mut p.0, Side::Gone),
        None => Side::Gone,
    }
}

fn put_mine<C>(conn: UpConn<'_, '_, C>, side: Side<C>) {
    if let Some(p) = conn.state.app_state() {
        p.0 = side;
    }
}

impl<P: ProxyHttp> Engine<P> {
    /// An upstream connection connected: send what was staged for it.
    pub(crate) fn up_opened(&mut self, conn: UpConn<'_, '_, P::Ctx>) -> Action {
        let mut side = take_mine(conn);
        if let Side::H2Up(u) = &mut side {
            self.h2_opened(conn, u);
            put_mine(conn, side);
            return Action::None;
        }
        let Some(up) = side.up() else {
            return self.probe_opened(conn, side);
        };
        up.connected = true;
        up.deadline = Some(self.now + self.s.first_byte_timeout);
        up.sent_at = Some(self.now);
        let _ = conn.set_nodelay(true);
        // The response head has its own deadline (above, enforced by the tick); the read
        // timeout between response bytes starts with the head.
        if !up.out.is_empty() {
            conn.write(&up.out);
            up.out.clear();
        }
        // Its client may have left while it connected.
        let gone = up.client.is_none();
        put_mine(conn, side);
        if gone {
            Action::Close
        } else {
            Action::None
        }
    }

    /// Request bytes were staged for an upstream connection (or its client drained):
    /// write them, and read on where the response stopped.
    pub(crate) fn up_woken(&mut self, conn: UpConn<'_, '_, P::Ctx>) -> Action {
        let mut side = take_mine(conn);
        if let Side::H2Up(u) = &mut side {
            let a = self.h2_io(conn, u);
            put_mine(conn, side);
            return a;
        }
        let Some(up) = side.up() else {
            put_mine(conn, side);
            return Action::None;
        };
        if !up.out.is_empty() && up.connected {
            conn.write(&up.out);
            up.out.clear();
        }
        let client = up.client;
        put_mine(conn, side);
        self.note_backlog(conn, client);
        self.up_data(conn)
    }

    /// An upstream connection's output that had backed up drained: an HTTP/2 client's
    /// request body flows again; then what arrived is read.
    pub(crate) fn up_writable(&mut self, conn: UpConn<'_, '_, P::Ctx>) -> Action {
        if matches!(conn.state.app_state(), Some(ProxyConn(Side::H2Up(_)))) {
            return self.up_woken(conn);
        }
        let client = conn
            .state
            .app_state()
            .and_then(|p| p.0.up())
            .and_then(|u| u.client);
        self.note_backlog(conn, client);
        self.up_data(conn)
    }

    /// HTTP/2 clients (whose connections carry other streams, so are not linked to their
    /// upstreams): stream `cid`'s request body is held against the client's flow-control
    /// window while its upstream connection's output is over the loop's high-water mark,
    /// and released (the client's connection woken) once it is not.
    fn note_backlog(&mut self, conn: UpConn<'_, '_, P::Ctx>, cid: Option<ClientId>) {
        let Some(cid) = cid.filter(ClientId::is_stream) else {
            return;
        };
        let backed = conn.output_len() >= conn.output_high_water();
        let mut ctl = conn.control();
        let Some(c) = ctl
            .state(cid.conn)
            .and_then(|s| s.stream_state(cid.stream))
            .and_then(|p| p.0.client())
        else {
            return;
        };
        if c.up_backed != backed {
            c.up_backed = backed;
            if !backed {
                push_op(&mut self.later, Op::Wake(cid.conn));
            }
        }
    }

    /// Response bytes from an upstream: parse, stage for the client, wake it.
    pub(crate) fn up_data(&mut self, conn: UpConn<'_, '_, P::Ctx>) -> Action {
        if conn.input().is_empty() {
            return Action::None;
        }
        let mut side = take_mine(conn);
        let a = match &mut side {
            Side::H2Up(u) => self.h2_io(conn, u),
            _ => self.read_response(conn, &mut side),
        };
        put_mine(conn, side);
        a
    }

    fn read_response(&mut self, conn: UpConn<'_, '_, P::Ctx>, side: &mut Side<P::Ctx>) -> Action {
        let id = conn.id();
        let Some(up) = side.up() else {
            return self.probe_data(conn, side);
        };
        up.answered = true;
        let Some(cid) = up.client else {
            // Bytes from an idle connection: it cannot be trusted any more.
            up.broken = true;
            log::debug!(
                "upstream {} sent bytes while idle",
                self.groups[up.group].peers()[up.peer].url
            );
            conn.abort();
            return Action::None;
        };
        let mut cside = match conn
            .control()
            .state(cid.conn)
            .and_then(|s| s.stream_state(cid.stream))
        {
            Some(p) => std::mem::replace(&mut p.0, Side::Gone),
            None => Side::Gone,
        };
        let Some(c) = cside.client() else {
            // Its client left: nobody reads the rest.
            up.broken = true;
            conn.abort();
            return Action::None;
        };
        // Whether the whole request had gone to the socket when this input came.
        let sent = up.req_done && up.out.is_empty() && conn.output_len() == 0;
        let mut woke = false;
        let mut got_head = false;
        let mut end = false;
        let mut error = None;
        if up.tunnel {
            if c.stage.len() >= STAGE_CAP {
                c.up_paused = true;
            } else {
                c.stage.extend_from_slice(conn.input());
                let n = conn.input().len();
                conn.consume(n);
                woke = true;
            }
        } else {
            loop {
                let input = conn.input();
                let mut slots = header_slots();
                let (used, ev) = match up.reader.read(input, &mut slots, &self.s.http) {
                    Ok(r) => r,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                };
                let mut stop = false;
                match ev {
                    ClientEvent::Interim(_) => {}
                    ClientEvent::Head(h) if h.is_upgrade() && !c.upgrade_req => {
                        error = Some(ResponseError::Malformed("101 to a request without Upgrade"));
                        break;
                    }
                    ClientEvent::Head(h) => {
                        c.status = h.status();
                        response_head(&h, &mut c.resp.headers);
                        c.resp_body = h.body();
                        // Only a response to HEAD has its length passed on from the field.
                        c.resp_cl = c
                            .head_request
                            .then(|| h.header("content-length"))
                            .flatten()
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.split(',').next())
                            .and_then(|v| v.trim().parse().ok());
                        if h.is_upgrade() {
                            c.tunnel = true;
                            up.tunnel = true;
                        }
                        up.deadline = None;
                        if let Some(t) = up.sent_at.take() {
                            let rtt = self.now.saturating_duration_since(t);
                            self.groups[up.group].observe(up.peer, rtt, self.now);
                            c.upstream_time = Some(rtt);
                        }
                        self.groups[up.group].record_success(up.peer);
                        c.answer = Answer::Head;
                        woke = true;
                        got_head = true;
                        if !sent {
                            // An early answer: the upstream answered before it was sent
                            // the whole request. What it did not read of the body would
                            // be the start of the next request on this connection, or,
                            // if it never reads again, leave that request unanswered:
                            // the connection is not reused.
                            up.broken = true;
                        }
                        stop = h.is_upgrade();
                    }
                    ClientEvent::Data(d) => {
                        if c.stage.len() >= STAGE_CAP {
                            c.up_paused = true;
                            woke = true;
                            break;
                        }
                        c.stage.extend_from_slice(d);
                        woke = true;
                    }
                    ClientEvent::End => {
                        c.complete = true;
                        woke = true;
                        end = true;
                        stop = true;
                    }
                    ClientEvent::NeedMore => stop = true,
                }
                conn.consume(used);
                if stop {
                    break;
                }
            }
            if up.tunnel && !conn.input().is_empty() {
                c.stage.extend_from_slice(conn.input());
                let n = conn.input().len();
                conn.consume(n);
            }
        }
        if let Some(p) = conn
            .control()
            .state(cid.conn)
            .and_then(|s| s.stream_state(cid.stream))
        {
            p.0 = cside;
        }
        if got_head && !end && !up.tunnel {
            // The head came (it had the first-byte deadline): from now on the longest
            // pause between two reads of the body. Armed no earlier, or a read timeout
            // shorter than the first-byte timeout would cut the wait for the head short.
            conn.set_read_timeout(Some(self.s.read_timeout));
        }
        if up.tunnel && conn.read_timeout().is_some() {
            // A tunnel may rightly stay quiet (a WebSocket between messages).
            conn.set_read_timeout(None);
        }
        if woke || error.is_some() {
            push_op(&mut self.later, Op::Wake(cid.conn));
        }
        if let Some(e) = error {
            log::warn!(
                "upstream {}: {e}",
                self.groups[up.group].peers()[up.peer].url
            );
            up.broken = true;
            push_op(&mut self.ops, Op::Fail(id, FailureKind::BadResponse));
            conn.abort();
            return Action::None;
        }
        if end {
            up.served += 1;
            let reusable = up.reader.keep_alive() && up.req_done && conn.input().is_empty();
            // Idle in the pool, it awaits nothing (the pool's idle timeout applies).
            conn.set_read_timeout(None);
            push_op(&mut self.ops, Op::Release(id, reusable));
            if !reusable {
                return Action::Close;
            }
        }
        Action::None
    }

    /// The upstream closed its side: what it sent is read, then the end is judged.
    pub(crate) fn up_eof(&mut self, conn: UpConn<'_, '_, P::Ctx>) -> Action {
        let _ = self.up_data(conn);
        push_op(&mut self.ops, Op::Ended(conn.id()));
        Action::Close
    }

    /// An upstream connection is gone: off the pool; its client (if mid-exchange) gets
    /// an answer, a retry or is cut off; a failed connect marks the peer down.
    pub(crate) fn up_closed(&mut self, conn: UpConn<'_, '_, P::Ctx>, err: Option<Error>) {
        let id = conn.id();
        if matches!(conn.state.app_state(), Some(ProxyConn(Side::H2Up(_)))) {
            let mut side = take_mine(conn);
            if let Side::H2Up(u) = &mut side {
                self.h2_closed(conn, u, err);
            }
            put_mine(conn, side);
            return;
        }
        let Some(up) = conn.state.app_state().and_then(|p| p.0.up()) else {
            self.probe_closed(conn, err);
            return;
        };
        up.closed = true;
        let (g, p) = (up.group, up.peer);
        self.groups[g].pool(p).idle.retain(|i| *i != id);
        let connect_failed = self.upstream_gone(id, g, p, up.connected, err.as_ref());
        if up.client.is_some() {
            let kind = match &err {
                _ if connect_failed => FailureKind::Connect,
                Some(e) if e.is_timeout() => FailureKind::Timeout,
                _ => FailureKind::BadResponse,
            };
            // A reused connection that ended before any response byte was stale (the
            // server closed it as the request went out); one that timed out was not:
            // sending the request again would only multiply the wait and the load.
            let stale = !connect_failed && kind != FailureKind::Timeout;
            if stale && up.served > 0 && !up.answered && !up.replay.is_empty() {
                push_op(&mut self.ops, Op::Replay(id, kind));
            } else {
                push_op(&mut self.ops, Op::Fail(id, kind));
            }
        }
        if connect_failed {
            self.mark_down(g, p);
        }
        // A connection slot freed under the limit: dial for the next waiting client.
        if (self.groups[g].load(p).conns as usize) < self.s.pool_size {
            if let Some(w) = self.groups[g].pool(p).waiting.pop_front() {
                push_op(&mut self.ops, Op::Dial(w));
            }
        }
    }

    /// Upstream connection `id` to peer `p` of group `g` closed (`err`): off the tick's
    /// list and the peer's count, logged. Whether it failed to connect.
    pub(crate) fn upstream_gone(
        &mut self,
        id: ConnId,
        g: usize,
        p: usize,
        connected: bool,
        err: Option<&Error>,
    ) -> bool {
        if let Some(i) = self.live.iter().position(|x| *x == id) {
            self.live.swap_remove(i);
        }
        let load = self.groups[g].load_mut(p);
        load.conns = load.conns.saturating_sub(1);
        let connect_failed = err.is_some_and(|e| e.is_connect()) || !connected;
        let url = &self.groups[g].peers()[p].url;
        if connect_failed {
            log::warn!(
                "upstream {url}: {}",
                err.map_or("closed before connecting".to_string(), |e| e.to_string())
            );
        } else if let Some(e) = err {
            log::debug!("upstream connection {id} closed: {e}");
        }
        connect_failed
    }

    /// Response heads overdue (a timeout failure), idle pooled connections expired,
    /// health checks due. The time until the next tick.
    pub(crate) fn tick(&mut self, ctl: &mut Control<'_, ProxyState<P::Ctx>>) -> Duration {
        let now = self.now;
        let mut i = 0;
        while i < self.live.len() {
            let id = self.live[i];
            i += 1;
            if let Some(ProxyConn(Side::H2Up(_))) = ctl.state(id).and_then(|s| s.app_state()) {
                self.h2_tick(ctl, id);
                continue;
            }
            let Some(up) = ctl
                .state(id)
                .and_then(|s| s.app_state())
                .and_then(|p| p.0.up())
            else {
                continue;
            };
            if let (Some(d), Some(_)) = (up.deadline, up.client) {
                if now >= d && !up.reader.has_head() {
                    log::warn!("upstream connection {id}: no response head in time");
                    up.deadline = None;
                    let (g, p) = (up.group, up.peer);
                    self.mark_down(g, p);
                    push_op(&mut self.ops, Op::Fail(id, FailureKind::Timeout));
                    continue;
                }
            }
            if let Some(t) = up.idle_since {
                if now.saturating_duration_since(t) >= self.s.idle_timeout && !up.broken {
                    up.broken = true;
                    push_op(&mut self.later, Op::Close(id));
                }
            }
            if let (Some(total), Some(cid), false) = (self.s.total_timeout, up.client, up.tunnel) {
                let c = ctl
                    .state(cid.conn)
                    .and_then(|s| s.stream_state(cid.stream))
                    .and_then(|p| p.0.client());
                if overdue(c, now, total) {
                    log::warn!("upstream connection {id}: the request took over {total:?}");
                    push_op(&mut self.ops, Op::Fail(id, FailureKind::Timeout));
                }
            }
        }
        let mut r = Reach {
            me: None,
            mine: None,
            ctl,
        };
        if let Some(total) = self.s.total_timeout {
            self.fail_queued_overdue(&mut r, total);
        }
        self.run_ops(&mut r);
        for op in self.later.drain(..) {
            match op {
                Op::Wake(id) => {
                    r.ctl.wake(id);
                }
                Op::Close(id) => {
                    r.ctl.close(id);
                }
                Op::Abort(id) => {
                    r.ctl.abort(id);
                }
                Op::Link(a, b) => {
                    r.ctl.link(a, b);
                }
                Op::Unlink(id) => {
                    r.ctl.unlink(id);
                }
                _ => {}
            }
        }
        let shortest = self.s.first_byte_timeout.min(self.s.idle_timeout);
        let shortest = self.s.total_timeout.map_or(shortest, |t| t.min(shortest));
        let period = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        match self.run_checks(r.ctl) {
            Some(next) => period.min(next.max(Duration::from_millis(1))),
            None => period,
        }
    }
}
