//! Callbacks: the connection's view for a handler call, and settling afterwards (output
//! written at once, leftovers kept, limits, the returned action).

use super::*;
use crate::layer::Session;
use crate::reactor::conn::Conn;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, ConnBufs, Connection};
use crate::stats::bump;
use crate::{Action, Error, Handler};

impl<H: Handler> EventLoop<H> {
    /// Calls `f` with the handler and a view of connection `key`: its own input if it has
    /// some (else the shared read buffer), its own output if it has some (else the staging
    /// queue). The caller deals with what is left in the shared buffers.
    pub(crate) fn with_conn<R>(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::State>) -> R,
    ) -> Option<R> {
        let id = self.core.conn_id(key);
        // The connection leaves its slot for the call, so the view can also reach the rest
        // of the loop (other connections, timers, dial); the shared buffers lie beside
        // the core and are only borrowed.
        let mut conn = self.core.slots.take(key)?;
        let LoopBufs { rbuf, stage } = &mut self.bufs;
        let r = {
            let Connection {
                io,
                bufs,
                stack,
                state,
            } = &mut *conn;
            // With layers, the handler sees the plaintext above them; the connection's own
            // buffers hold wire bytes then.
            let (input, out, below, layers): (_, _, _, &[Box<dyn Session>]) =
                match (stack.as_deref_mut(), bufs.as_deref_mut()) {
                    (Some(s), b) => {
                        let top = s.bufs.last_mut().expect("a stack has a layer");
                        (
                            &mut top.input,
                            &mut top.out,
                            b.map_or(0, |b| b.out.len()),
                            &s.sessions[..],
                        )
                    }
                    (None, Some(ConnBufs { input, out })) => (
                        if input.is_empty() { rbuf } else { input },
                        if out.is_empty() { stage } else { out },
                        0,
                        &[],
                    ),
                    (None, None) => (rbuf, stage, 0, &[]),
                };
            let mut view = Conn {
                id,
                io,
                input,
                out,
                below,
                layers,
                core: &mut self.core,
                state,
            };
            f(&mut self.handler, &mut view)
        };
        self.core.slots.put_back(key, conn);
        Some(r)
    }

    /// Runs one callback for connection `key` (through its layers, if it has any), then
    /// settles its buffers and acts on the result.
    pub(crate) fn dispatch(&mut self, key: usize, cb: Cb) {
        if self
            .core
            .slots
            .get_mut(key)
            .is_some_and(|c| c.stack.is_some())
        {
            self.layered(key, cb);
        } else {
            self.dispatch_plain(key, cb);
        }
    }

    /// Runs one callback for connection `key` on the buffers it has (the plaintext above
    /// its layers, if any), then settles them and acts on the result.
    ///
    /// A connection without layers has its output written within the same view, right
    /// after the callback (and `pre_write`), and `post_write` called on it too: the
    /// connection leaves its slot once per event, not once per hook.
    pub(crate) fn dispatch_plain(&mut self, key: usize, cb: Cb) {
        let done = self.with_conn(key, |h, conn| {
            let action = match cb {
                Cb::Opened => h.opened(conn),
                Cb::Data => h.data(conn),
                Cb::Eof => h.eof(conn),
                Cb::Writable => h.writable(conn),
                Cb::Woken => h.woken(conn),
                Cb::ReadClosed => h.read_closed(conn),
                Cb::Resume => Action::None,
            };
            if conn.output_len() == 0 {
                return (action, None);
            }
            h.pre_write(conn);
            // (Not for an abort: what it queued is dropped with the rest. Not above
            // layers: their plaintext is encoded by `flush`.)
            let go = conn.io.flags & (flags::WRITABLE | flags::ABORT_REQ) == flags::WRITABLE;
            if !go || !conn.layers.is_empty() {
                return (action, None);
            }
            let mut written = 0;
            match conn.out.flush_to(&mut conn.io.stream, &mut written) {
                Ok(true) => {}
                Ok(false) => conn.io.unset(flags::WRITABLE),
                Err(e) => {
                    conn.out.discard();
                    return (action, Some(e));
                }
            }
            if written > 0 {
                let core = &mut *conn.core;
                bump(&core.counters().bytes_out, written as u64);
                conn.io.timeouts.last_active = core.now_ms;
                conn.io.timeouts.last_write = core.now_ms;
                if conn.io.phase == Phase::Open {
                    h.post_write(conn, written);
                }
            }
            (action, None)
        });
        match done {
            Some((_, Some(e))) => {
                self.keep_leftovers(key);
                self.write_failed(key, e);
            }
            Some((action, None)) => self.settle(key, action),
            None => {}
        }
    }

    /// Moves input left in the shared read buffer and output left in the staging queue
    /// into connection `key`'s own buffers. Returns whether its input is over the limit.
    pub(crate) fn keep_leftovers(&mut self, key: usize) -> bool {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            self.bufs.rbuf.clear();
            self.bufs.stage.discard();
            return false;
        };
        if !self.bufs.rbuf.is_empty() {
            c.bufs
                .get_or_insert_with(Box::default)
                .input
                .set_from(self.bufs.rbuf.bytes());
        }
        self.bufs.rbuf.clear();
        if !self.bufs.stage.is_empty() {
            let b = c.bufs.get_or_insert_with(Box::default);
            debug_assert!(b.out.is_empty());
            std::mem::swap(&mut b.out, &mut self.bufs.stage);
        }
        match c.bufs.as_deref_mut() {
            Some(b) => {
                b.input.settle();
                b.input.len() > core.cfg.max_input
            }
            None => false,
        }
    }

    /// After a callback: write staged output, keep leftovers, apply limits, backpressure
    /// and the action.
    pub(crate) fn settle(&mut self, key: usize, action: Action) {
        // Staged output goes out now, straight from the staging queue.
        let mut written = 0;
        let core = &mut self.core;
        if self.bufs.stage.is_empty() {
            // Written already (`dispatch_plain`), or nothing to write.
        } else if let Some(c) = core.slots.get_mut(key) {
            // (Not for an abort: what it queued is dropped with the rest.)
            let go = c.io.flags & (flags::WRITABLE | flags::ABORT_REQ) == flags::WRITABLE;
            if go {
                match self.bufs.stage.flush_to(&mut c.io.stream, &mut written) {
                    Ok(true) => {}
                    Ok(false) => c.io.unset(flags::WRITABLE),
                    Err(e) => {
                        self.bufs.stage.discard();
                        self.keep_leftovers(key);
                        return self.write_failed(key, e);
                    }
                }
            }
        }
        let over_limit = self.keep_leftovers(key);
        if written > 0 {
            self.wrote(key, written);
        }
        if over_limit {
            debug!(
                "loop {}: connection {key} over the input limit",
                self.core.ctx.index
            );
            self.fail(key, Error::input_limit(self.core.cfg.max_input));
            return;
        }
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let close = c.io.has(flags::CLOSE_REQ);
        let abort = c.io.has(flags::ABORT_REQ);
        c.io.unset(flags::CLOSE_REQ | flags::ABORT_REQ);
        if abort {
            self.abort(key);
            if matches!(action, Action::Shutdown) {
                self.start_shutdown();
            }
            if !self.core.deferred.is_empty() {
                self.run_deferred();
            }
            return;
        }
        if c.io.has(flags::TIMEOUTS_CHANGED) {
            self.core.arm_watch(key);
        }
        self.flush(key);
        match action {
            Action::Close => self.begin_close_from(key, None, true),
            Action::Shutdown => self.start_shutdown(),
            Action::Detach => self.begin_detach(key),
            Action::None => {}
        }
        if close {
            self.begin_close_from(key, None, true);
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
    }

    /// Bookkeeping after `written` bytes went out: counters, activity, `post_write`.
    pub(crate) fn wrote(&mut self, key: usize, written: usize) {
        bump(&self.core.counters().bytes_out, written as u64);
        let now_ms = self.core.now_ms;
        if let Some(c) = self.core.slots.get_mut(key) {
            c.io.timeouts.last_active = now_ms;
            c.io.timeouts.last_write = now_ms;
            if c.io.phase != Phase::Open {
                return;
            }
        }
        self.with_conn(key, |h, conn| h.post_write(conn, written));
        self.keep_leftovers(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.stack.is_some() && c.bufs.as_ref().is_some_and(|b| !b.input.is_empty()) {
            // The handler may have consumed plaintext: the wire bytes behind it decode
            // after this flush.
            let gen = self.core.slots.gen(key);
            self.core.deferred.push(Deferred::Resume(key as u32, gen));
        }
    }
}
