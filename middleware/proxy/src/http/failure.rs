//! When an upstream fails: the policy hears of it before a response head arrived
//! ([`ProxyHttp::fail`]) and picks a retry on another peer (only when nothing of the
//! request can have been acted on) or an answer; after a head, what arrived is passed on
//! and the client is cut off. A reused pooled connection that ends before any response
//! byte was stale: an idempotent request goes out again on another connection.

use std::time::{Duration, Instant};

use wireloop::ConnId;

use super::state::{Answer, Client, Side};
use super::{push_op, Engine, Op, Reach};
use crate::group::{peer_bit, MAX_PEERS};
use crate::phases::{default_status, Failure, FailureKind, ProxyHttp, Recovery};
use crate::ClientId;

/// Most resends of one request after stale pooled connections.
const MAX_REPLAYS: u8 = 2;

/// Whether client exchange `c`'s request started `total` or more before `now` and is
/// still going (not a tunnel).
pub(crate) fn overdue<C>(c: Option<&mut Client<C>>, now: Instant, total: Duration) -> bool {
    c.is_some_and(|c| {
        !c.tunnel
            && !matches!(c.answer, Answer::Done)
            && now.saturating_duration_since(c.started) >= total
    })
}

impl<P: ProxyHttp> Engine<P> {
    /// The upstream side failed for client `cid`: `status` if no byte of the response
    /// went to the client yet, else what arrived is passed on and the client connection
    /// is closed without completing the response (a response received whole is
    /// delivered).
    pub(crate) fn fail_client(
        &mut self,
        r: &mut Reach<'_, '_, P::Ctx>,
        cid: ClientId,
        status: u16,
    ) {
        let Some(c) = r.client(cid) else {
            return;
        };
        if c.tunnel {
            c.tunnel_eof = true;
        } else if c.answer == Answer::Head && !c.complete {
            // The head is staged but none of the response went out yet (its body failed
            // in the same read, say): the client gets `status`, not a response cut off.
            c.answer = Answer::Fail(status);
            c.stage.clear();
        } else if c.answer == Answer::Streaming && !c.complete {
            c.cut_off = true;
        } else if !matches!(c.answer, Answer::Done) && !c.complete {
            c.answer = Answer::Fail(status);
        }
        c.up = None;
        push_op(&mut self.later, Op::Wake(cid.conn));
    }

    /// Client `cid`'s request body went over its route's limit: the upstream exchange
    /// (or the wait for a connection) is abandoned and the client answered 413, or cut
    /// off if its response already started.
    pub(crate) fn too_large(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) {
        let Some(c) = r.client(cid) else {
            return;
        };
        let (up, group, peer, routed) = (c.up, c.group, c.peer, c.routed);
        c.req_done = true;
        if routed {
            self.stop_waiting(group, peer, cid);
        }
        if let Some(up_id) = up {
            // Broken: released with a reset, never pooled (an HTTP/2 stream is reset).
            if let Some(u) = r.up(up_id) {
                u.broken = true;
                self.release(r, up_id, false);
            } else {
                self.abandon(r, up_id, cid);
            }
        }
        self.fail_client(r, cid, 413);
    }

    /// Upstream connection `up_id` failed (`kind`): the policy decides between a retry
    /// and an answer while no response head arrived.
    pub(crate) fn fail_up(
        &mut self,
        r: &mut Reach<'_, '_, P::Ctx>,
        up_id: ConnId,
        kind: FailureKind,
    ) {
        let Some(mut up) = r.take_up(up_id) else {
            return;
        };
        up.broken = true;
        let (g, p) = (up.group, up.peer);
        let sent_nothing = kind == FailureKind::Connect && !up.connected;
        let Some(cid) = up.client else {
            r.put_up(up_id, up);
            return;
        };
        let Some(c) = r.client(cid) else {
            r.put_up(up_id, up);
            self.release(r, up_id, false);
            return;
        };
        let now = self.now;
        let group = &mut self.groups[g];
        let untried = (0..group.peers().len().min(MAX_PEERS)).any(|i| c.tried & peer_bit(i) == 0);
        let pending = c.answer == Answer::Pending;
        let retryable = sent_nothing
            && pending
            && untried
            && c.attempts < self.s.max_attempts
            && group.retry_allowed(now);
        let recovery = if pending {
            let f = Failure {
                kind,
                group: g,
                peer: p,
                peer_url: &group.peers()[p].url,
                attempts: c.attempts,
                retryable,
            };
            self.policy.fail(&f, &mut c.ctx)
        } else {
            Recovery::Answer(default_status(kind))
        };
        let status = match recovery {
            Recovery::Retry if retryable && self.groups[g].spend_retry(now) => {
                if let Some(m) = &self.s.metrics {
                    m.retry(g);
                }
                let out = std::mem::take(&mut up.out);
                up.client = None;
                let load = self.groups[g].load_mut(p);
                load.busy = load.busy.saturating_sub(1);
                r.put_up(up_id, up);
                if !up_closed(r, up_id) {
                    push_op(&mut self.later, Op::Abort(up_id));
                }
                if self.retry(r, cid, out) {
                    return;
                }
                self.fail_client(r, cid, default_status(kind));
                return;
            }
            Recovery::Retry => default_status(kind),
            Recovery::Answer(s) => s,
        };
        r.put_up(up_id, up);
        self.fail_client(r, cid, status);
        self.release(r, up_id, false);
    }

    /// Client `cid` stops waiting for a connection to peer `peer` of group `group`, if it
    /// waited: it counted as busy on that peer meanwhile.
    pub(crate) fn stop_waiting(&mut self, group: usize, peer: usize, cid: ClientId) {
        if self.groups[group].forget_waiting(cid) {
            let load = self.groups[group].load_mut(peer);
            load.busy = load.busy.saturating_sub(1);
        }
    }

    /// Clients waiting at a peer's connection limit whose request is over the total
    /// timeout: they stop waiting and get the timeout failure's answer.
    pub(crate) fn fail_queued_overdue(&mut self, r: &mut Reach<'_, '_, P::Ctx>, total: Duration) {
        let now = self.now;
        let mut late = Vec::new();
        for g in 0..self.groups.len() {
            for pool in self.groups[g].pools_mut() {
                pool.waiting.retain(|&cid| {
                    let over = overdue(r.client(cid), now, total);
                    if over {
                        late.push(cid);
                    }
                    !over
                });
            }
        }
        for cid in late {
            if let Some(c) = r.client(cid) {
                // It counted as busy on its peer while it waited.
                let load = self.groups[c.group].load_mut(c.peer);
                load.busy = load.busy.saturating_sub(1);
            }
            log::warn!("client {cid}: no upstream connection within {total:?}");
            let status = self.timeout_answer(r, cid);
            self.fail_client(r, cid, status);
        }
    }

    /// What a request that ran out of time gets: the policy's answer to a timeout
    /// failure, by default 504.
    fn timeout_answer(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId) -> u16 {
        let Some(c) = r.client(cid) else {
            return default_status(FailureKind::Timeout);
        };
        let g = c.group;
        let group = &self.groups[g];
        let f = Failure {
            kind: FailureKind::Timeout,
            group: g,
            peer: c.peer,
            peer_url: &group.peers()[c.peer].url,
            attempts: c.attempts,
            retryable: false,
        };
        match self.policy.fail(&f, &mut c.ctx) {
            Recovery::Answer(s) => s,
            Recovery::Retry => default_status(FailureKind::Timeout),
        }
    }

    /// Sends client `cid`'s request (`out`: everything staged, nothing of it sent) to
    /// another peer of its group. `false` if there is none to try.
    fn retry(&mut self, r: &mut Reach<'_, '_, P::Ctx>, cid: ClientId, mut out: Vec<u8>) -> bool {
        let now = self.now;
        let Some(c) = r.client(cid) else {
            return false;
        };
        let g = c.group;
        let Some(p) = self.groups[g].pick(c.key, now, c.tried) else {
            return false;
        };
        if !self.groups[g].load(p).is_up(now) {
            return false;
        }
        log::info!(
            "retrying {} {} on {}",
            c.method,
            c.target,
            self.groups[g].peers()[p].url
        );
        c.attempts += 1;
        c.tried |= peer_bit(p);
        c.peer = p;
        c.up = None;
        out.append(&mut c.req_stage);
        c.req_stage = out;
        self.assign(r, cid);
        true
    }

    /// Upstream connection `up_id` ended before any byte of its response after serving
    /// others: it was stale (the server closed it as the request went out). Send the
    /// request again on another connection if it kept a copy (idempotent, no body), at
    /// most twice per request; else fail with `kind`.
    pub(crate) fn replay(
        &mut self,
        r: &mut Reach<'_, '_, P::Ctx>,
        up_id: ConnId,
        kind: FailureKind,
    ) {
        let Some(mut up) = r.take_up(up_id) else {
            return;
        };
        let cid = up.client;
        let ok = cid.and_then(|cid| r.client(cid)).is_some_and(|c| {
            c.answer == Answer::Pending && c.replays < MAX_REPLAYS && !up.replay.is_empty()
        });
        let (Some(cid), true) = (cid, ok) else {
            r.put_up(up_id, up);
            self.fail_up(r, up_id, kind);
            return;
        };
        let (g, p) = (up.group, up.peer);
        up.client = None;
        up.broken = true;
        let mut replay = std::mem::take(&mut up.replay);
        let load = self.groups[g].load_mut(p);
        load.busy = load.busy.saturating_sub(1);
        r.put_up(up_id, up);
        if !up_closed(r, up_id) {
            push_op(&mut self.later, Op::Abort(up_id));
        }
        if let Some(c) = r.client(cid) {
            log::info!(
                "stale upstream connection: sending {} {} again",
                c.method,
                c.target
            );
            c.replays += 1;
            c.up = None;
            replay.append(&mut c.req_stage);
            c.req_stage = replay;
            c.req_done = true;
            self.assign(r, cid);
        }
    }

    /// Upstream connection `up_id`'s input ended (after what it sent was read): a body
    /// delimited by the close is complete, anything else unfinished is a failure.
    pub(crate) fn ended(&mut self, r: &mut Reach<'_, '_, P::Ctx>, up_id: ConnId) {
        let Some(up) = r.up(up_id) else {
            return;
        };
        up.broken = true;
        let Some(cid) = up.client else {
            return;
        };
        if up.tunnel {
            self.fail_client(r, cid, 502);
            return;
        }
        if up.served > 0 && !up.answered && !up.replay.is_empty() {
            self.replay(r, up_id, FailureKind::BadResponse);
            return;
        }
        match up.reader.eof() {
            Ok(()) => {
                if let Some(c) = r.client(cid) {
                    c.complete = true;
                }
                push_op(&mut self.later, Op::Wake(cid.conn));
                self.release(r, up_id, false);
            }
            Err(e) => {
                let g = up.group;
                log::warn!("upstream {}: {e}", self.groups[g].peers()[up.peer].url);
                self.fail_up(r, up_id, FailureKind::BadResponse);
            }
        }
    }
}

/// Whether upstream connection `up_id`'s `closed` already ran.
fn up_closed<C>(r: &mut Reach<'_, '_, C>, up_id: ConnId) -> bool {
    match r.side(up_id) {
        Some(Side::Upstream(u)) => u.closed,
        _ => true,
    }
}
