//! The dialed side: a connection's life (connected, woken to write staged request bytes,
//! response bytes read with the HTTP/1.1 client side and staged for the client, end of
//! input, closed) and how its failures reach the client.

use std::time::Instant;

use wireloop::{Action, Conn, ConnId, Error};
use wireloop_middleware::http1::{header_slots, ClientEvent, ResponseError};

use super::headers::response_head;
use super::{push_op, slot_get, Answer, Op, PState, Proxy};

/// Most response bytes staged for a client before the upstream's input is left unread.
const STAGE_CAP: usize = 256 * 1024;

impl Proxy {
    /// The upstream side failed for client `cid`: 502/504 if no response head arrived,
    /// else what arrived is passed on and the client connection is closed without
    /// completing the response (a response received whole is delivered).
    pub(super) fn fail_client(&mut self, cid: ConnId, status: u16) {
        if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
            if c.tunnel {
                c.tunnel_eof = true;
            } else if matches!(c.answer, Answer::Head | Answer::Streaming) && !c.complete {
                // The head arrived (an early answer to an upload whose body could then not
                // be written, say): the response is passed on as far as it came.
                c.cut_off = true;
            } else if !matches!(c.answer, Answer::Done) && !c.complete {
                // (A response already received whole is delivered whatever happens to
                // the connection afterwards.)
                c.answer = Answer::Fail(status);
            }
            c.up = None;
            push_op(&mut self.ops, Op::Wake(cid));
        }
    }

    /// An upstream connection connected: send what was staged for it.
    pub fn up_opened(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let Some(up) = slot_get(&mut self.ups, conn.id(), |u| u.id) else {
            return Action::Close;
        };
        up.connected = true;
        up.deadline = Some(Instant::now() + self.s.upstream_timeout);
        let _ = conn.set_nodelay(true);
        // Between two reads of the response (the head has its own deadline, above).
        conn.set_read_timeout(Some(self.s.read_timeout));
        if !up.out.is_empty() {
            conn.write(&up.out);
            up.out.clear();
        }
        if up.client.is_none() {
            // Its client left while it connected.
            return Action::Close;
        }
        Action::None
    }

    /// Request bytes were staged for an upstream connection (or its client drained):
    /// write them, and read on where the response stopped.
    pub fn up_woken(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let Some(up) = slot_get(&mut self.ups, conn.id(), |u| u.id) else {
            return Action::Close;
        };
        if !up.out.is_empty() {
            conn.write(&up.out);
            up.out.clear();
            // Request bytes went out: the wait for the answer starts now (a pooled
            // connection's clock would still count from its previous exchange).
            conn.set_read_timeout(Some(self.s.read_timeout));
        }
        self.up_data(conn)
    }

    /// Response bytes from an upstream: parse, stage for the client, wake it.
    pub fn up_data(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let id = conn.id();
        let Some(up) = slot_get(&mut self.ups, id, |u| u.id) else {
            return Action::Close;
        };
        if conn.input().is_empty() {
            return Action::None;
        }
        up.answered = true;
        let Some(cid) = up.client else {
            // Bytes from an idle connection: it cannot be trusted any more.
            up.broken = true;
            log::debug!(
                "upstream {} sent bytes while idle",
                self.upstreams[up.upstream].url
            );
            return Action::Close;
        };
        let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) else {
            up.broken = true;
            return Action::Close;
        };
        if up.tunnel {
            if c.stage.len() >= STAGE_CAP {
                c.up_paused = true;
            } else {
                c.stage.extend_from_slice(conn.input());
                let n = conn.input().len();
                conn.consume(n);
                push_op(&mut self.ops, Op::Wake(cid));
            }
            return Action::None;
        }
        let mut woke = false;
        let mut end = false;
        let mut error = None;
        loop {
            let input = conn.input();
            let mut slots = header_slots();
            let (used, ev) = match up.reader.read(input, &mut slots, &self.cfg) {
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
                    c.resp_head.clear();
                    response_head(&h, &mut c.resp_head);
                    c.resp_body = h.body();
                    c.resp_cl = h
                        .header("content-length")
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.split(',').next())
                        .and_then(|v| v.trim().parse().ok());
                    if h.is_upgrade() {
                        c.tunnel = true;
                        up.tunnel = true;
                        up.deadline = None;
                    }
                    up.deadline = None;
                    c.answer = Answer::Head;
                    woke = true;
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
        if up.tunnel && conn.read_timeout().is_some() {
            // A tunnel may rightly stay quiet (a WebSocket between messages).
            conn.set_read_timeout(None);
        }
        if up.tunnel && !conn.input().is_empty() {
            c.stage.extend_from_slice(conn.input());
            let n = conn.input().len();
            conn.consume(n);
        }
        if woke || error.is_some() {
            push_op(&mut self.ops, Op::Wake(cid));
        }
        if let Some(e) = error {
            log::warn!("upstream {}: {e}", self.upstreams[up.upstream].url);
            up.broken = true;
            self.fail_client(cid, 502);
            self.release(id, false);
            return Action::Close;
        }
        if end {
            up.served += 1;
            let reusable = up.reader.keep_alive() && up.req_done && conn.input().is_empty();
            // Idle in the pool, it awaits nothing (the pool's idle timeout applies).
            conn.set_read_timeout(None);
            self.release(id, reusable);
            if !reusable {
                return Action::Close;
            }
        }
        Action::None
    }

    /// The upstream closed its side: a body delimited by the close is complete, anything
    /// else unfinished is a failure.
    pub fn up_eof(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let id = conn.id();
        let _ = self.up_data(conn);
        let Some(up) = slot_get(&mut self.ups, id, |u| u.id) else {
            return Action::Close;
        };
        up.broken = true;
        let Some(cid) = up.client else {
            return Action::Close;
        };
        if up.tunnel {
            self.fail_client(cid, 502);
            return Action::Close;
        }
        if up.served > 0 && !up.answered && !up.replay.is_empty() {
            let replay = std::mem::take(&mut up.replay);
            if self.replay(cid, id, replay) {
                return Action::Close;
            }
        }
        let up = slot_get(&mut self.ups, id, |u| u.id).expect("upstream");
        match up.reader.eof() {
            Ok(()) => {
                if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
                    c.complete = true;
                }
                push_op(&mut self.ops, Op::Wake(cid));
                self.release(id, false);
            }
            Err(e) => {
                log::warn!("upstream {}: {e}", self.upstreams[up.upstream].url);
                self.fail_client(cid, 502);
                self.release(id, false);
            }
        }
        Action::Close
    }

    /// An upstream connection is gone: off the pool; its client (if mid-exchange) gets
    /// 502/504 or is closed; a failed connect marks the upstream down.
    pub fn up_closed(&mut self, conn: &mut Conn<'_, PState>, err: Option<Error>) {
        let id = conn.id();
        let Some(up) = self
            .ups
            .get_mut(id.slot())
            .and_then(|u| u.take_if(|u| u.id == id))
        else {
            return;
        };
        let u = up.upstream;
        let h = &mut self.health[u];
        h.conns = h.conns.saturating_sub(1);
        h.idle.retain(|i| *i != id);
        let connect_failed = err
            .as_ref()
            .is_some_and(|e| e.is_connect() || !up.connected);
        if connect_failed {
            log::warn!(
                "upstream {}: {}",
                self.upstreams[u].url,
                err.as_ref()
                    .map_or("closed before connecting".to_string(), |e| e.to_string())
            );
            self.mark_down(u);
        } else if let Some(e) = &err {
            log::debug!("upstream connection {id} closed: {e}");
        }
        if let Some(cid) = up.client {
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
            if connect_failed && !up.connected && self.retry(cid, u, up.out) {
                return;
            }
            if !connect_failed
                && up.served > 0
                && !up.answered
                && !up.replay.is_empty()
                && self.replay_detached(cid, up.replay)
            {
                return;
            }
            let status = match (&err, connect_failed) {
                (_, true) => 502,
                (Some(e), _) if e.is_timeout() => 504,
                _ => 502,
            };
            self.fail_client(cid, status);
        }
        // A slot freed under the cap: dial for the next waiting client.
        if self.health[u].conns < self.s.pool_size {
            if let Some(w) = self.health[u].waiting.pop_front() {
                push_op(
                    &mut self.ops,
                    Op::Dial {
                        client: w,
                        upstream: u,
                    },
                );
            }
        }
    }
}
