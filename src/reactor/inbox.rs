//! Cross-thread messages (`Handle`), operations deferred while a handler was borrowed,
//! and wakes.

use super::*;
use crate::handle::Msg;
use crate::reactor::store::flags;
use crate::reactor::store::Phase;
use crate::{Action, Error, Handler};

impl<H: Handler> EventLoop<H> {
    pub(crate) fn drain_inbox(&mut self) {
        self.core.inbox_pending = false;
        self.core.shared.mailboxes[self.core.ctx.index].clear_notified();
        for _ in 0..MAX_MSGS {
            let Ok(msg) = self.core.inbox.try_recv() else {
                return;
            };
            match msg {
                Msg::Assign { stream, addr_index } => self.open(stream, addr_index),
                Msg::Wake(id) => {
                    if self.core.live(id).is_some() {
                        self.wake(id.key as usize);
                    }
                }
                Msg::Send(id, data) => {
                    if let Some(c) = self.core.live(id) {
                        if !c.io.has(flags::SHUT_WR_REQ) {
                            c.plain_out().write_bytes(data);
                            self.flush(id.key as usize);
                        }
                    }
                }
                Msg::Close(id) => {
                    if self.core.live(id).is_some() {
                        self.begin_close(id.key as usize, None);
                    }
                }
                Msg::Shutdown => self.start_shutdown(),
                Msg::Resolved { id, result } => self.resolved(id, result),
                Msg::Dial {
                    addr,
                    opts,
                    state,
                    reply,
                } => {
                    let state = match state {
                        None => Ok(H::State::default()),
                        Some(b) => b.downcast::<H::State>().map(|b| *b).map_err(|_| {
                            Error::config("Handle::dial_with_state: the state is not the handler's State type")
                        }),
                    };
                    let res = state.and_then(|st| self.core.dial(&addr, opts, st));
                    let _ = reply.send(res);
                    self.run_deferred();
                }
            }
        }
        // More may be waiting: come back after serving the sockets.
        self.core.inbox_pending = true;
    }

    /// Carries out what a [`Control`] callback deferred, then its action.
    pub(crate) fn after_control(&mut self, action: Action) {
        self.run_deferred();
        if action == Action::Shutdown {
            self.start_shutdown();
        }
    }

    /// Carries out operations deferred by `Control` or by a connection's view of the loop.
    pub(crate) fn run_deferred(&mut self) {
        while !self.core.deferred.is_empty() {
            let mut deferred = std::mem::take(&mut self.core.deferred);
            for d in deferred.drain(..) {
                let (key, gen) = match d {
                    Deferred::Flush(k, g)
                    | Deferred::Close(k, g)
                    | Deferred::Abort(k, g)
                    | Deferred::ShutdownWrite(k, g)
                    | Deferred::Wake(k, g)
                    | Deferred::DialStep(k, g)
                    | Deferred::Resume(k, g) => (k as usize, g),
                };
                if self.core.slots.get_gen_mut(key, gen).is_none() {
                    continue;
                }
                match d {
                    Deferred::Flush(..) => self.flush(key),
                    Deferred::Close(..) => self.begin_close(key, None),
                    Deferred::Abort(..) => self.abort(key),
                    Deferred::ShutdownWrite(..) => {
                        if let Some(c) = self.core.slots.get_mut(key) {
                            c.io.set(flags::SHUT_WR_REQ);
                        }
                        self.flush(key);
                    }
                    Deferred::DialStep(..) => self.dial_step(key),
                    Deferred::Wake(..) => self.wake(key),
                    Deferred::Resume(..) => self.dispatch(key, Cb::Resume),
                }
            }
            // Keep the allocation for next time.
            if self.core.deferred.is_empty() {
                self.core.deferred = deferred;
            }
        }
    }

    /// Calls `woken` for connection `key`, or, while it is still connecting, right after
    /// its `opened`.
    pub(crate) fn wake(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.is_closing() {
            return;
        }
        if c.io.phase != Phase::Open {
            c.io.set(flags::WAKE_PENDING);
            return;
        }
        self.dispatch(key, Cb::Woken);
    }
}
