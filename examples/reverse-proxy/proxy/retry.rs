//! Sending a request again when nothing of it can have been acted on: to another upstream
//! after a failed connect, or on another connection after a reused one turned out stale.

use std::time::Instant;

use wireloop::ConnId;

use super::{slot_get, Answer, Proxy};

impl Proxy {
    /// Client `cid`'s upstream `failed` could not be reached and nothing was sent (`out`
    /// holds everything staged): try another upstream that is not marked down, at most
    /// once per upstream. `false` if there is none to try.
    pub(super) fn retry(&mut self, cid: ConnId, failed: usize, mut out: Vec<u8>) -> bool {
        let n = self.upstreams.len();
        match slot_get(&mut self.clients, cid, |c| c.id) {
            Some(c) if c.answer == Answer::Pending && (c.retries as usize) + 1 < n => {}
            _ => return false,
        }
        let u = self.pick();
        let now = Instant::now();
        if u == failed || self.health[u].down_until.is_some_and(|t| t > now) {
            return false;
        }
        let c = slot_get(&mut self.clients, cid, |c| c.id).expect("client");
        log::info!(
            "retrying {} {} on {}",
            c.method,
            c.target,
            self.upstreams[u].url
        );
        c.retries += 1;
        c.upstream = u;
        c.up = None;
        out.append(&mut c.req_stage);
        c.req_stage = out;
        self.assign(cid);
        true
    }

    /// Reused connection `up_id` ended before any byte of its response: it was stale (the
    /// server closed it as the request went out). Send the request (`replay`) again on
    /// another connection, at most twice per request.
    pub(super) fn replay(&mut self, cid: ConnId, up_id: ConnId, replay: Vec<u8>) -> bool {
        if !matches!(
            slot_get(&mut self.clients, cid, |c| c.id),
            Some(c) if c.answer == Answer::Pending && c.retries < 2
        ) {
            return false;
        }
        if let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) {
            let u = up.upstream;
            up.client = None;
            up.broken = true;
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
        }
        self.replay_detached(cid, replay)
    }

    pub(super) fn replay_detached(&mut self, cid: ConnId, mut replay: Vec<u8>) -> bool {
        let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) else {
            return false;
        };
        if c.answer != Answer::Pending || c.retries >= 2 {
            return false;
        }
        log::info!(
            "stale upstream connection: sending {} {} again",
            c.method,
            c.target
        );
        c.retries += 1;
        c.up = None;
        replay.append(&mut c.req_stage);
        c.req_stage = replay;
        c.req_done = true;
        // The caller took the request off its connection's count; `assign` counts it again.
        self.assign(cid);
        true
    }
}
