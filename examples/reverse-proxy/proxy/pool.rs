//! Upstream connections per upstream on one loop: health (down-marking after a failed
//! connect), the balancing choice, the idle keep-alive pool, the clients waiting at the
//! pool's cap, dialing, and taking a connection back after its exchange.

use std::collections::VecDeque;
use std::time::Instant;

use wireloop::{ConnId, Control, DialOptions};
use wireloop_middleware::http1::ResponseReader;

use super::{push_op, slot_get, slot_put, Answer, Balance, Op, PState, Proxy, Up};

/// How an upstream is doing on this loop.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Avoid until then (a connect failed).
    pub(super) down_until: Option<Instant>,
    /// Connections open or connecting.
    pub(super) conns: usize,
    /// Requests in flight.
    pub(super) busy: usize,
    /// Idle keep-alive connections, most recently used last.
    pub(super) idle: Vec<ConnId>,
    /// Clients waiting for a connection (the pool is at its cap).
    pub(super) waiting: VecDeque<ConnId>,
}

impl Proxy {
    pub(super) fn dial(
        &mut self,
        ctl: &mut Control<'_, PState>,
        client: ConnId,
        u: usize,
    ) -> Option<ConnId> {
        let mut opts = DialOptions::new().timeout(self.s.connect_timeout);
        if let Some(tls) = &self.tls[u] {
            // TLS towards this upstream (its own name for SNI and verification), owned by
            // the connection: everything written to it is encrypted.
            opts = opts.layer(tls.clone());
        }
        let dialed = ctl.dial(&self.upstreams[u].dial, opts, PState::default());
        let c = slot_get(&mut self.clients, client, |c| c.id)?;
        match dialed {
            Ok(id) => {
                c.up = Some(id);
                let up = Up {
                    id,
                    upstream: u,
                    client: Some(client),
                    out: std::mem::take(&mut c.req_stage),
                    connected: false,
                    reader: ResponseReader::new(c.head_request),
                    req_done: c.req_done,
                    // Set once connected (the dial has its own timeout).
                    deadline: None,
                    idle_since: None,
                    tunnel: false,
                    broken: false,
                    served: 0,
                    answered: false,
                    replay: Vec::new(),
                };
                self.health[u].conns += 1;
                slot_put(&mut self.ups, id, up);
                Some(id)
            }
            Err(e) => {
                c.answer = Answer::Fail(502);
                log::warn!("cannot dial {}: {e}", self.upstreams[u].url);
                self.mark_down(u);
                ctl.wake(client);
                None
            }
        }
    }

    pub(super) fn mark_down(&mut self, u: usize) {
        let h = &mut self.health[u];
        if h.down_until.is_none_or(|t| t <= Instant::now()) {
            log::warn!(
                "upstream {} marked down for {:?}",
                self.upstreams[u].url,
                self.s.down_time
            );
        }
        h.down_until = Some(Instant::now() + self.s.down_time);
    }

    /// Chooses an upstream: among those not marked down (all, if every one is down).
    pub(super) fn pick(&mut self) -> usize {
        let n = self.upstreams.len();
        let now = Instant::now();
        let up = |h: &Health| h.down_until.is_none_or(|t| t <= now);
        let any_up = self.health.iter().any(up);
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        let candidates = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !any_up || up(&self.health[i]));
        match self.s.balance {
            Balance::RoundRobin => candidates.take(1).next().unwrap_or(start),
            Balance::LeastConnections => candidates
                .min_by_key(|&i| self.health[i].busy)
                .unwrap_or(start),
        }
    }

    /// Finds or makes an upstream connection for client `id`'s request (staged in
    /// `req_stage`).
    pub(super) fn assign(&mut self, id: ConnId) {
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        let u = c.upstream;
        let head_request = c.head_request;
        self.health[u].busy += 1;
        // An idle pooled connection, most recent first.
        while let Some(up_id) = self.health[u].idle.pop() {
            let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) else {
                continue;
            };
            if up.broken {
                continue;
            }
            let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
            up.client = Some(id);
            up.idle_since = None;
            up.reader.reset(head_request);
            up.answered = false;
            up.replay.clear();
            if c.req_done && matches!(c.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
                up.replay.extend_from_slice(&c.req_stage);
            }
            up.out.append(&mut c.req_stage);
            up.req_done = c.req_done;
            up.deadline = Some(Instant::now() + self.s.upstream_timeout);
            c.up = Some(up_id);
            push_op(&mut self.ops, Op::Link(id, up_id));
            push_op(&mut self.ops, Op::Wake(up_id));
            return;
        }
        if self.health[u].conns >= self.s.pool_size {
            self.health[u].waiting.push_back(id);
            return;
        }
        push_op(
            &mut self.ops,
            Op::Dial {
                client: id,
                upstream: u,
            },
        );
    }

    /// The upstream connection `up_id` finished its exchange: back to the pool (or
    /// closed), and handed to a waiting client if there is one.
    pub(super) fn release(&mut self, up_id: ConnId, reusable: bool) {
        let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) else {
            return;
        };
        let u = up.upstream;
        if let Some(cid) = up.client.take() {
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
            if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
                if c.up == Some(up_id) {
                    c.up = None;
                }
            }
        }
        up.deadline = None;
        if up.out.capacity() > 64 * 1024 {
            up.out = Vec::new();
        }
        if reusable && !up.broken && up.out.is_empty() {
            // Its former client must not be held back by (or hold back) its next one.
            push_op(&mut self.ops, Op::Unlink(up_id));
            up.idle_since = Some(Instant::now());
            self.health[u].idle.push(up_id);
            if let Some(w) = self.health[u].waiting.pop_front() {
                self.health[u].busy = self.health[u].busy.saturating_sub(1);
                self.assign(w);
            }
        } else {
            up.broken = true;
            push_op(&mut self.ops, Op::Close(up_id));
        }
    }
}
