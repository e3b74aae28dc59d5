//! Socket to input: read until `WouldBlock` (bounded per turn), backpressure holding
//! reads back, a hang-up noticed while held, and the read before a write failure.

use std::io;

use super::*;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, NO_PEER};
use crate::stats::bump;
use crate::{Error, Handler};

impl<H: Handler> EventLoop<H> {
    /// Reads until `WouldBlock`, EOF, pause, or the per-turn limit.
    pub(crate) fn read(&mut self, key: usize) {
        // The first read of an event may go straight into a layer's own buffer (TLS's
        // deframer, which offers a few KiB); after one that filled it, the rest of the
        // event's reads use the loop's large buffer, so a bulk transfer costs no more
        // system calls.
        let mut direct = true;
        for _ in 0..MAX_READS {
            let core = &mut self.core;
            let Some(c) = core.slots.get_mut(key) else {
                return;
            };
            if c.io.phase == Phase::Lingering {
                self.drain_lingering(key);
                return;
            }
            // Backpressure (own output over the high-water mark, or the linked peer's) does
            // not hold back the read before a failure: that output is lost anyway, and what
            // the peer sent (an answer to an upload it refused) must not be.
            let salvaging = core.salvaging == Some(key);
            // A linked connection's input goes to its peer, so the peer's output (checked
            // below) holds back its reads, not its own: pausing on its own output too would
            // deadlock a proxy whose far side also stops reading while its output is full
            // (an echo upstream), each side waiting for the other to read.
            let own_pause = c.io.has(flags::PAUSED) && c.io.peer == NO_PEER;
            if !c.io.has(flags::READABLE)
                || !matches!(c.io.phase, Phase::Open | Phase::Handshaking)
                || c.io.has(flags::READ_EOF)
            {
                return;
            }
            if own_pause && !salvaging {
                self.hangup_while_held(key);
                return;
            }
            if c.io.peer != NO_PEER && !salvaging {
                let (pk, pg) = c.io.peer;
                let hwm = core.cfg.out_high_water;
                let peer_full = core
                    .slots
                    .get_gen_mut(pk as usize, pg)
                    .is_some_and(|p| p.out_len() > hwm);
                if peer_full {
                    if let Some(c) = core.slots.get_mut(key) {
                        c.io.set(flags::PEER_BLOCKED);
                    }
                    self.hangup_while_held(key);
                    return;
                }
            }
            let Some(c) = core.slots.get_mut(key) else {
                return;
            };
            let wire_queued = c.bufs.as_ref().is_some_and(|b| !b.input.is_empty());
            let into_layer = match c.stack.as_deref_mut() {
                Some(stack) if direct && !wire_queued => stack.read_socket(&mut c.io.stream),
                _ => None,
            };
            let (res, room) = match (into_layer, c.bufs.as_deref_mut()) {
                (Some(Err(e)), _) => return self.layer_failed(key, e),
                (Some(Ok(r)), _) => {
                    let room = match r.result {
                        Ok(n) => r.offered.saturating_sub(n),
                        Err(_) => 0,
                    };
                    direct = room > 0;
                    (r.result, room)
                }
                (None, Some(b)) if wire_queued => {
                    let r = b.input.read_from(&mut c.io.stream, OWN_READ_CHUNK);
                    (r, b.input.room())
                }
                (None, _) => {
                    let r = self.bufs.rbuf.read_from(&mut c.io.stream, 1);
                    (r, self.bufs.rbuf.room())
                }
            };
            match res {
                Ok(0) => {
                    c.io.set(flags::READ_EOF);
                    c.io.unset(flags::READABLE);
                    if core.salvaging != Some(key) {
                        self.dispatch(key, Cb::Eof);
                    }
                    return;
                }
                Ok(n) => {
                    c.io.timeouts.last_active = core.now_ms;
                    c.io.timeouts.last_read = core.now_ms;
                    bump(&core.shared.counters[core.ctx.index].bytes_in, n as u64);
                    // A read that left room in the buffer drained the socket: the next
                    // bytes will raise a new edge, so skip the read that would only say
                    // WouldBlock, unless the peer's FIN was signalled (then read to EOF).
                    if room > 0 && !c.io.has(flags::RDHUP) {
                        c.io.unset(flags::READABLE);
                        self.dispatch(key, Cb::Data);
                        return;
                    }
                    self.dispatch(key, Cb::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.io.unset(flags::READABLE);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if core.salvaging == Some(key) => return,
                Err(e) => {
                    self.fail(key, Error::io(e));
                    return;
                }
            }
        }
        // Still readable after the per-turn limit: come back after the others.
        self.queue_ready(key);
    }

    /// Reading `key` is held back by backpressure: if the peer has meanwhile hung up, say
    /// so now rather than when the input before its end has been read (which may be
    /// never, if what holds reading back never drains). A reset fails the connection (after
    /// delivering what is still readable); a FIN calls `read_closed` once.
    pub(crate) fn hangup_while_held(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if !c.io.has(flags::RDHUP) || c.io.is_closing() || c.io.has(flags::READ_EOF) {
            return;
        }
        // Only a hang-up pays for this system call.
        if let Ok(Some(e)) = c.io.stream.take_error() {
            let gen = self.core.slots.gen(key);
            self.read_before_failing(key);
            if self.core.slots.get_gen_mut(key, gen).is_some() {
                self.fail(key, Error::io(e));
            }
            return;
        }
        if c.io.has(flags::READ_CLOSED_TOLD) {
            return;
        }
        c.io.set(flags::READ_CLOSED_TOLD);
        self.dispatch(key, Cb::ReadClosed);
    }

    /// A write failed (the peer reset or closed the connection): before the connection
    /// fails, deliver what the peer sent and is still readable, such as an early answer to
    /// an upload the peer stopped reading. The caller then fails the connection with the
    /// write's error (if the handler did not close it meanwhile).
    pub(crate) fn read_before_failing(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.is_closing() || self.core.salvaging.is_some() {
            return;
        }
        c.io.set(flags::READABLE | flags::RDHUP);
        self.core.salvaging = Some(key);
        self.read(key);
        self.core.salvaging = None;
    }
}
