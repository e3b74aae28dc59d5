//! Upstream connections of each peer on one loop: finding an idle pooled one or dialing,
//! the clients waiting at a peer's connection limit, moving staged request bytes to the
//! connection, and taking a connection back after its exchange.

use wireloop::{ConnId, DialOptions};
use wireloop_middleware::http1::{Http1Conn, ResponseReader};
use wireloop_middleware::proxy_protocol::SendProxyHeader;

use super::client::CONNECTING_CAP;
use super::state::{Answer, ProxyConn, Side, Up};
use super::{push_op, Engine, Op, Reach};
use crate::group::UpstreamProtocol;
use crate::phases::ProxyHttp;
use crate::ClientId;

/// An upstream connection's request buffer beyond this is released after its exchange.
const KEEP_CAP: usize = 64 * 1024;

impl<P: ProxyHttp> Engine<P> {
    /// Finds or makes an upstream connection for client `cid`'s request (staged in its
    /// `req_stage`) on its chosen peer.
    pub(crate) fn assign(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let Some(c) = r.client(cid) else {
            return;
        };
        let (g, p) = (c.group, c.peer);
        self.groups[g].load_mut(p).busy += 1;
        if self.groups[g].protocol() == UpstreamProtocol::H2 {
            self.assign_h2(r, cid);
            return;
        }
        // An idle pooled connection, most recent first.
        while let Some(up_id) = self.groups[g].pool(p).idle.pop() {
            let mut cside = r.take(cid);
            let (Some(c), Some(up)) = (cside.client(), r.up(up_id)) else {
                r.put(cid, cside);
                continue;
            };
            if up.broken {
                r.put(cid, cside);
                continue;
            }
            up.client = Some(cid);
            up.idle_since = None;
            up.reader.reset(c.head_request);
            up.answered = false;
            up.replay.clear();
            if c.req_done && c.idempotent {
                up.replay.extend_from_slice(&c.req_stage);
            }
            up.out.append(&mut c.req_stage);
            up.req_done = c.req_done;
            up.deadline = Some(self.now + self.s.first_byte_timeout);
            up.sent_at = Some(self.now);
            c.up = Some(up_id);
            r.put(cid, cside);
            if !cid.is_stream() {
                push_op(&mut self.later, Op::Link(cid.conn, up_id));
            }
            push_op(&mut self.later, Op::Wake(up_id));
            return;
        }
        if self.groups[g].load(p).conns as usize >= self.s.pool_size {
            self.groups[g].pool(p).waiting.push_back(cid);
            return;
        }
        self.dial(r, cid);
    }

    /// Dials client `cid`'s peer for its request.
    pub(crate) fn dial(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let Some(c) = r.client(cid) else {
            return;
        };
        let (g, p) = (c.group, c.peer);
        if self.groups[g].protocol() == UpstreamProtocol::H2 {
            self.dial_h2(r, cid);
            return;
        }
        let addrs = c.addrs;
        let mut up = Up::new(g, p, cid);
        up.out = std::mem::take(&mut c.req_stage);
        up.reader = ResponseReader::new(c.head_request);
        up.req_done = c.req_done;
        let opts = self.dial_options(g, p, addrs);
        let peer = &self.groups[g].peers()[p];
        let state = Http1Conn::foreign(ProxyConn(Side::Upstream(Box::new(up))));
        match r.ctl.dial(&peer.dial, opts, state) {
            Ok(id) => {
                if let Some(c) = r.client(cid) {
                    c.up = Some(id);
                }
                self.groups[g].load_mut(p).conns += 1;
                self.live.push(id);
                if !cid.is_stream() {
                    // An HTTP/1.1 client and its upstream hold each other back; HTTP/2
                    // streams share their connection (see `App::hold_input`).
                    push_op(&mut self.later, Op::Link(cid.conn, id));
                }
            }
            Err(e) => {
                log::warn!("cannot dial {}: {e}", peer.url);
                if let Some(c) = r.client(cid) {
                    c.answer = Answer::Fail(502);
                }
                self.mark_down(g, p);
                push_op(&mut self.later, Op::Wake(cid.conn));
            }
        }
    }

    /// How a connection to peer `p` of group `g` is dialed for a client at `addrs`.
    pub(crate) fn dial_options(
        &self,
        g: usize,
        p: usize,
        addrs: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    ) -> DialOptions {
        let mut opts = DialOptions::new().timeout(self.s.connect_timeout);
        if let (Some(v), Some((src, dst))) = (self.groups[g].send_proxy(), addrs) {
            // Next to the socket: the header goes out before any TLS record.
            opts = opts.layer(SendProxyHeader::new(v, src, dst));
        }
        if let Some(tls) = &self.groups[g].peers()[p].tls {
            // TLS towards this peer (its own name for SNI and verification), owned by
            // the connection: everything written to it is encrypted.
            opts = opts.layer(tls.clone());
        }
        opts
    }

    /// Moves client `cid`'s staged request bytes to its upstream connection.
    pub(crate) fn flush_up(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let mut cside = r.take(cid);
        let Some(c) = cside.client() else {
            r.put(cid, cside);
            return;
        };
        let up_id = c.up;
        if let Some(u) = up_id {
            r.put(cid, cside);
            if self.flush_h2(r, cid, u) {
                return;
            }
            cside = r.take(cid);
        }
        let Some(c) = cside.client() else {
            r.put(cid, cside);
            return;
        };
        let up = up_id
            .and_then(|u| r.up(u))
            .filter(|u| u.client == Some(cid));
        match (up, up_id) {
            (Some(up), Some(up_id)) => {
                up.deadline = Some(self.now + self.s.first_byte_timeout);
                up.req_done = c.req_done;
                if !up.connected && up.out.len() > CONNECTING_CAP {
                    log::warn!("request body backed up while connecting; giving up");
                    up.broken = true;
                    r.put(cid, cside);
                    self.fail_client(r, cid, 502);
                    self.release(r, up_id, false);
                    return;
                }
                up.out.append(&mut c.req_stage);
                push_op(&mut self.later, Op::Wake(up_id));
            }
            // The exchange ended (an early answer): the rest is not forwarded.
            _ if c.answer != Answer::Pending => c.req_stage.clear(),
            _ => {}
        }
        r.put(cid, cside);
    }

    /// Upstream connection `up_id` finished its exchange: back to the pool (or closed),
    /// and handed to a waiting client if there is one.
    pub(crate) fn release(&mut self, r: &mut Reach<'_, '_, P::Ctx>, up_id: ConnId, reusable: bool) {
        let Some(mut up) = r.take_up(up_id) else {
            return;
        };
        let (g, p) = (up.group, up.peer);
        if let Some(cid) = up.client.take() {
            let load = self.groups[g].load_mut(p);
            load.busy = load.busy.saturating_sub(1);
            if let Some(c) = r.client(cid) {
                if c.up == Some(up_id) {
                    c.up = None;
                }
            }
        }
        up.deadline = None;
        if up.out.capacity() > KEEP_CAP {
            up.out = Vec::new();
        }
        // A connection whose PROXY header named its client serves no other.
        let private = self.groups[g].send_proxy().is_some();
        let back =
            reusable && !private && !self.draining && !up.broken && !up.closed && up.out.is_empty();
        if back {
            // Its former client must not be held back by (or hold back) its next one.
            push_op(&mut self.later, Op::Unlink(up_id));
            up.idle_since = Some(self.now);
        } else {
            // A failed or abandoned exchange ends with a reset: what the upstream still
            // sends is not read and thrown away for the close linger.
            let op = if up.broken {
                Op::Abort(up_id)
            } else {
                Op::Close(up_id)
            };
            up.broken = true;
            if !up.closed {
                push_op(&mut self.later, op);
            }
        }
        r.put_up(up_id, up);
        if back {
            self.groups[g].pool(p).idle.push(up_id);
            if let Some(w) = self.groups[g].pool(p).waiting.pop_front() {
                let load = self.groups[g].load_mut(p);
                load.busy = load.busy.saturating_sub(1);
                self.assign(r, w);
            }
        }
    }

    /// Client exchange `cid` is gone mid-way: upstream connection `up_id`, if it still
    /// serves it, is reset (nobody reads the rest of its response).
    pub(crate) fn abandon(&mut self, r: &mut Reach<'_, '_, P::Ctx>, up_id: ConnId, cid: ClientId) {
        if self.abandon_h2(r, up_id, cid) {
            return;
        }
        let Some(up) = r.up(up_id).filter(|u| u.client == Some(cid)) else {
            return;
        };
        up.client = None;
        up.broken = true;
        let (g, p, closed) = (up.group, up.peer, up.closed);
        let load = self.groups[g].load_mut(p);
        load.busy = load.busy.saturating_sub(1);
        if !closed {
            push_op(&mut self.later, Op::Abort(up_id));
        }
    }

    /// Peer `p` of group `g` failed (connect, or no response head in time): after
    /// `max_fails` in a row, avoid it for the down time.
    pub(crate) fn mark_down(&mut self, g: usize, p: usize) {
        let (max, down) = (self.s.max_fails, self.s.down_time);
        if self.groups[g].record_failure(p, self.now, max, down) {
            log::warn!(
                "upstream {} marked down for {down:?}",
                self.groups[g].peers()[p].url
            );
        }
    }
}
