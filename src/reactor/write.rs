//! Output to socket: flush while the socket takes it (with the write hooks), then what
//! the queue's length means (free buffers, finish a close or half-close, pause or resume).

use std::io;
use std::net::Shutdown;

use super::*;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, NO_PEER};
use crate::{Error, Handler};

impl<H: Handler> EventLoop<H> {
    /// Writes the connection's own queued output while the socket takes it (calling the
    /// write hooks around each round), then deals with the new queue length.
    #[inline]
    pub(crate) fn flush(&mut self, key: usize) {
        // Once per event: a connection with nothing queued and nothing waiting on it
        // returns here, without the call below.
        if self
            .core
            .slots
            .get_mut(key)
            .is_some_and(|c| c.stack.is_none() && c.quiet())
        {
            return;
        }
        self.flush_queued(key);
    }

    /// `flush` for a connection that has something queued or waits on its queue.
    #[inline(never)]
    fn flush_queued(&mut self, key: usize) {
        for _ in 0..MAX_FLUSH_ROUNDS {
            let Some(c) = self.core.slots.get_mut(key) else {
                return;
            };
            if c.io.phase == Phase::Lingering || (c.stack.is_none() && c.quiet()) {
                // Nothing to write, nothing waiting on it (`after_output` would return).
                return;
            }
            if c.stack.is_some() {
                // Plaintext queued above the layers (from any write path) is encoded now,
                // straight to the socket while nothing is queued before it.
                match self.encode(key, false, true) {
                    Err(e) => return self.fail(key, e),
                    Ok((_, Some(e))) => return self.write_failed(key, e),
                    Ok((written, None)) => {
                        if written > 0 {
                            self.wrote(key, written);
                            // The socket took all the layers gave it: encode more, if
                            // the layers left plaintext (they encode a bounded amount).
                            let more = self.core.slots.get_mut(key).is_some_and(|c| {
                                c.io.has(flags::WRITABLE)
                                    && c.bufs.as_ref().is_none_or(|b| b.out.is_empty())
                                    && c.stack.as_ref().is_some_and(|s| s.plain_out_len() > 0)
                            });
                            if more {
                                continue;
                            }
                        }
                    }
                }
            }
            let Some(c) = self.core.slots.get_mut(key) else {
                return;
            };
            let pending = c.bufs.as_ref().map_or(0, |b| b.out.len());
            if pending == 0 || !c.io.has(flags::WRITABLE) {
                return self.after_output(key);
            }
            if c.io.phase == Phase::Open {
                self.with_conn(key, |h, conn| h.pre_write(conn));
                self.keep_leftovers(key);
            }
            let Some(c) = self.core.slots.get_mut(key) else {
                return;
            };
            let Some(b) = c.bufs.as_deref_mut() else {
                return self.after_output(key);
            };
            let mut written = 0;
            match b.out.flush_to(&mut c.io.stream, &mut written) {
                Ok(true) => {}
                Ok(false) => c.io.unset(flags::WRITABLE),
                Err(e) => return self.write_failed(key, e),
            }
            if written > 0 {
                self.wrote(key, written);
            }
        }
        // A producer that keeps refilling a fast socket: let the others run first.
        self.queue_ready(key);
        self.after_output(key);
    }

    /// Writing to the socket failed (the peer reset or closed it): the queued output is
    /// dropped, what the peer sent is delivered, then the connection fails.
    pub(crate) fn write_failed(&mut self, key: usize, e: io::Error) {
        self.discard_output(key);
        let gen = self.core.slots.gen(key);
        self.read_before_failing(key);
        if self.core.slots.get_gen_mut(key, gen).is_some() {
            self.fail(key, Error::io(e));
        }
    }

    /// Drops connection `key`'s own queued output (the socket is gone, or must not get it).
    pub(crate) fn discard_output(&mut self, key: usize) {
        if let Some(b) = self
            .core
            .slots
            .get_mut(key)
            .and_then(|c| c.bufs.as_deref_mut())
        {
            b.out.discard();
        }
    }

    /// Consequences of the output queue's new length: free empty buffers, finish a close or
    /// a half-close, pause or resume reading.
    pub(crate) fn after_output(&mut self, key: usize) {
        let (hwm, lwm) = (self.core.cfg.out_high_water, self.core.cfg.out_low_water);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        // The common case, once per event: an open connection with nothing queued and
        // nothing waiting on its queue's length.
        if c.quiet() {
            return;
        }
        let pending = c.out_len();
        if (pending > 0) != c.io.has(flags::SEND_CLOCK) {
            // Output just backed up (the send timeout's clock starts) or drained.
            self.core.output_clock(key, pending > 0);
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if let Some(b) = c.bufs.as_deref_mut() {
            if b.out.is_empty() {
                b.out.release();
                if b.input.is_empty() {
                    c.bufs = None;
                }
            }
        }
        if pending == 0 {
            if c.io.phase == Phase::Detaching {
                self.finish_detach(key);
                return;
            }
            if c.io.phase == Phase::Closing {
                let err = self.take_close_error(key);
                self.finish_close(key, err, true);
                return;
            }
            // Not while a dial is still connecting: there is no socket yet, or shutting it
            // down would abort the connect. The flush after the connect does it. Nor while
            // the layers are handshaking: a FIN then would cut the handshake short (the
            // peer never gets our last flight) and leave nothing to say close_notify with;
            // the flush after `opened` does it.
            if c.io.has(flags::SHUT_WR_REQ)
                && !c.io.has(flags::SHUT_WR_DONE)
                && !matches!(c.io.phase, Phase::Connecting | Phase::Handshaking)
            {
                if c.stack.as_deref().is_some_and(|s| s.is_open()) {
                    // The layers' goodbye goes before the FIN: queue it, flush, come back.
                    self.close_layers(key);
                    return self.flush(key);
                }
                c.io.set(flags::SHUT_WR_DONE);
                if let Err(e) = c.io.stream.shutdown(Shutdown::Write) {
                    if e.kind() != io::ErrorKind::NotConnected {
                        self.fail(key, Error::io(e));
                        return;
                    }
                }
            }
            if c.io.has(flags::SHUT_WR_DONE) && c.io.has(flags::READ_EOF) {
                // Both directions are finished: the conversation is over.
                self.begin_close(key, None);
                return;
            }
        }
        let peer = c.io.peer;
        if pending <= lwm && peer != NO_PEER {
            self.unblock_peer(peer);
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if pending > hwm && !c.io.has(flags::PAUSED) {
            c.io.set(flags::PAUSED);
        } else if pending <= lwm && c.io.has(flags::PAUSED) {
            c.io.unset(flags::PAUSED);
            c.io.timeouts.last_read = self.core.now_ms;
            let readable = c.io.has(flags::READABLE);
            if c.io.phase == Phase::Open {
                self.dispatch(key, Cb::Writable);
            }
            if readable {
                self.queue_ready(key);
            }
        }
    }
}
