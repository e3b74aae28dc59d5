//! The poll loop: `epoll_wait`, then each event to its connection or listener, then the
//! ready queue, the inbox, due timers and deferred operations.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Token};

use super::*;
use crate::reactor::store::flags;
use crate::reactor::store::Phase;
use crate::{Control, Handler};

impl<H: Handler> EventLoop<H> {
    /// Runs until shutdown completes.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let a = self.handler.serving(&mut Control {
            core: &mut self.core,
        });
        self.after_control(a);
        self.fire_tick();
        loop {
            if self.core.shutting_down && self.core.slots.is_empty() {
                break;
            }
            let timeout = if !self.core.ready.is_empty() || self.core.inbox_pending {
                Some(Duration::ZERO)
            } else {
                self.core
                    .timers
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.core.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.core.tick_clock();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.core.inbox_pending = true,
                    Token(t) if t >= LISTENER_BASE => self.listener_event(t - LISTENER_BASE),
                    Token(key) => {
                        let hup = ev.is_read_closed() || ev.is_error();
                        let readable = ev.is_readable() || hup;
                        let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        self.conn_event(key, readable, writable, hup);
                    }
                }
            }
            if self.core.inbox_pending {
                self.drain_inbox();
            }
            self.run_ready();
            self.run_timers();
            if !self.core.deferred.is_empty() {
                self.run_deferred();
            }
        }
        Ok(())
    }

    pub(crate) fn conn_event(&mut self, key: usize, readable: bool, writable: bool, hup: bool) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if readable {
            c.io.set(flags::READABLE);
        }
        if hup {
            c.io.set(flags::RDHUP);
        }
        if c.io.phase == Phase::Connecting
            || (c.io.phase == Phase::Closing && self.core.dialing.contains_key(&(key as u32)))
        {
            self.connect_event(key);
            if self.core.slots.get_mut(key).is_none()
                || self.core.dialing.contains_key(&(key as u32))
            {
                return;
            }
        }
        if writable {
            if let Some(c) = self.core.slots.get_mut(key) {
                c.io.set(flags::WRITABLE);
            }
            self.flush(key);
        }
        if readable {
            self.read(key);
        }
    }

    pub(crate) fn queue_ready(&mut self, key: usize) {
        self.core.queue_ready(key);
    }

    pub(crate) fn run_ready(&mut self) {
        for _ in 0..self.core.ready.len() {
            let Some((key, gen)) = self.core.ready.pop_front() else {
                break;
            };
            if key >= LISTENER_BASE {
                self.listener_event(key - LISTENER_BASE);
                continue;
            }
            if let Some(c) = self.core.slots.get_gen_mut(key, gen) {
                c.io.unset(flags::QUEUED);
                self.flush(key);
                self.read(key);
            }
        }
    }
}
