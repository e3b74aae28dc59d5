//! Timers: the handler's `tick`, user timers, and the loop's own deadlines (lingers,
//! timeouts, accept retries, connect timeouts, shutdown).

use super::*;
use crate::reactor::store::flags;
use crate::reactor::store::Phase;
use crate::timer::TimerKind;
use crate::{Action, Control, Error, Handler};

impl<H: Handler> EventLoop<H> {
    pub(crate) fn fire_tick(&mut self) {
        let (next, action) = self.handler.tick(&mut Control {
            core: &mut self.core,
        });
        self.after_control(action);
        if let Some(d) = next {
            if !self.core.shutting_down {
                self.core.timers.add(self.core.now() + d, TimerKind::Tick);
            }
        }
    }

    pub(crate) fn fire_user_timer(&mut self, key: u32, gen: u32) {
        let Some(t) = self.core.user_timers.get_gen_mut(key as usize, gen) else {
            return;
        };
        let Some(mut f) = t.f.take() else {
            return;
        };
        f(&mut Control {
            core: &mut self.core,
        });
        // Still there (not cancelled by itself) and periodic: run again.
        match self.core.user_timers.get_gen_mut(key as usize, gen) {
            Some(t) if t.period.is_some() && !self.core.shutting_down => {
                let period = t.period.unwrap_or_default();
                t.f = Some(f);
                self.core
                    .timers
                    .add(self.core.now() + period, TimerKind::User { key, gen });
            }
            Some(_) => {
                self.core.user_timers.remove(key as usize);
            }
            None => {}
        }
        self.after_control(Action::None);
    }

    pub(crate) fn run_timers(&mut self) {
        self.core.tick_clock();
        let now = self.core.now();
        while let Some(kind) = self.core.timers.pop_due(now) {
            match kind {
                TimerKind::Tick => {
                    if !self.core.shutting_down {
                        self.fire_tick();
                    }
                }
                TimerKind::User { key, gen } => self.fire_user_timer(key, gen),
                TimerKind::Watch { key, gen, epoch } => self.check_watch(key, gen, epoch),
                TimerKind::FlushLinger { key, gen } => {
                    let after = self.core.cfg.close_linger;
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if matches!(c.io.phase, Phase::Closing | Phase::Detaching) {
                            let pending = c.out_len();
                            self.fail(key as usize, Error::flush_timeout(pending, after));
                        }
                    }
                }
                TimerKind::DrainLinger { key, gen } => {
                    if let Some(c) = self.core.slots.get_gen_mut(key as usize, gen) {
                        if c.io.phase == Phase::Lingering {
                            self.core.slots.remove(key as usize);
                        }
                    }
                }
                TimerKind::ShutdownDeadline => {
                    let after = self.core.cfg.shutdown_timeout;
                    for key in self.core.slots.keys() {
                        let Some(c) = self.core.slots.get_mut(key) else {
                            continue;
                        };
                        if c.io.phase == Phase::Lingering {
                            self.core.slots.remove(key);
                        } else {
                            let pending = c.out_len();
                            self.fail(key, Error::flush_timeout(pending, after));
                        }
                    }
                }
                TimerKind::AcceptRetry { listener } => {
                    if let Some(r) = self.core.accept_retry.get_mut(listener) {
                        *r = false;
                    }
                    self.accept(listener);
                }
                TimerKind::Handshake { key, gen, after_ms } => {
                    let after = std::time::Duration::from_millis(after_ms as u64);
                    self.handshake_expired(key, gen, after);
                }
                TimerKind::Connect { key, gen } => {
                    if self.core.slots.get_gen_mut(key as usize, gen).is_none() {
                        continue;
                    }
                    let err = match self.core.dialing.remove(&key) {
                        // Connected meanwhile: nothing to do.
                        None => continue,
                        // Still waiting for the name: a DNS timeout, whichever of the two
                        // deadlines fired first.
                        Some(p) if p.resolving => Error::dns(
                            p.addr.as_str(),
                            format!("name resolution timed out after {:?}", p.opts.timeout),
                            false,
                            true,
                        ),
                        Some(p) => Error::connect_timeout(p.addr.as_str(), p.opts.timeout),
                    };
                    self.fail(key as usize, err);
                }
            }
        }
    }

    pub(crate) fn start_shutdown(&mut self) {
        if self.core.shutting_down {
            return;
        }
        self.core.shutting_down = true;
        self.core.ctx.handle.shutdown();
        for l in self.core.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                let _ = self.core.poll.registry().deregister(&mut l.listener);
            }
        }
        self.core.ready.clear();
        for key in self.core.slots.keys() {
            let Some(c) = self.core.slots.get_mut(key) else {
                continue;
            };
            c.io.unset(flags::QUEUED);
            match c.io.phase {
                Phase::Lingering => {
                    self.core.slots.remove(key);
                }
                // The handler may let a served connection finish what it is doing.
                Phase::Open => {
                    let keep = self.with_conn(key, |h, conn| h.draining(conn));
                    if keep == Some(true) {
                        self.settle(key, Action::None);
                    } else {
                        self.begin_close(key, None);
                    }
                }
                _ => self.begin_close(key, None),
            }
        }
        let deadline = self.core.now() + self.core.cfg.shutdown_timeout;
        self.core.timers.add(deadline, TimerKind::ShutdownDeadline);
    }
}
