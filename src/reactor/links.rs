//! Linked connections: a client and its upstream coupled so that either side's output
//! backlog holds back reading the other.

use super::*;
use crate::reactor::store::{flags, NO_PEER};
use crate::Handler;

impl<S> Core<S> {
    /// Ends the link of `me` with its former peer `old` (stored in the slab): `old` is
    /// unlinked if it still points at `me`, and read again if it waited on `me`'s output.
    /// Called before `me` is linked elsewhere or unlinked, so a connection is never left
    /// coupled to one that moved on (a pooled upstream serving another client).
    pub(crate) fn drop_link(&mut self, me: (u32, u32), old: (u32, u32)) {
        if old == NO_PEER || old == me {
            return;
        }
        let Some(p) = self.slots.get_gen_mut(old.0 as usize, old.1) else {
            return;
        };
        if p.io.peer == me {
            p.io.peer = NO_PEER;
            if p.io.has(flags::PEER_BLOCKED) {
                p.io.unset(flags::PEER_BLOCKED);
                p.io.timeouts.last_read = self.now_ms;
                self.queue_ready(old.0 as usize);
            }
        }
    }

    /// Links two stored connections both ways, ending their former links first.
    pub(crate) fn set_link(&mut self, a: (u32, u32), b: (u32, u32)) {
        for (me, other) in [(a, b), (b, a)] {
            let Some(c) = self.slots.get_gen_mut(me.0 as usize, me.1) else {
                continue;
            };
            let old = c.io.peer;
            c.io.peer = other;
            if c.io.has(flags::PEER_BLOCKED) {
                // Re-checked against the new peer on the next read.
                c.io.unset(flags::PEER_BLOCKED);
                c.io.timeouts.last_read = self.now_ms;
                self.queue_ready(me.0 as usize);
            }
            if old != other {
                self.drop_link(me, old);
            }
        }
    }

    /// Unlinks a stored connection from its peer (both ways).
    pub(crate) fn unlink(&mut self, me: (u32, u32)) {
        let Some(c) = self.slots.get_gen_mut(me.0 as usize, me.1) else {
            return;
        };
        let old = std::mem::replace(&mut c.io.peer, NO_PEER);
        if c.io.has(flags::PEER_BLOCKED) {
            c.io.unset(flags::PEER_BLOCKED);
            c.io.timeouts.last_read = self.now_ms;
            self.queue_ready(me.0 as usize);
        }
        self.drop_link(me, old);
    }
}

impl<H: Handler> EventLoop<H> {
    /// Resumes reading a connection that waited for its linked peer to drain.
    pub(crate) fn unblock_peer(&mut self, (key, gen): (u32, u32)) {
        if let Some(p) = self.core.slots.get_gen_mut(key as usize, gen) {
            if p.io.has(flags::PEER_BLOCKED) {
                p.io.unset(flags::PEER_BLOCKED);
                p.io.timeouts.last_read = self.core.now_ms;
                self.queue_ready(key as usize);
            }
        }
    }
}
