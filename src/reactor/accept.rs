//! Listeners: accepting (with the connection limit, descriptor exhaustion and the
//! balancer), registering an accepted connection, and UDP datagrams.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::{Interest, Token};

use super::*;
use crate::datagram::Datagram;
use crate::handle::Msg;
use crate::listener::Listener;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, ConnIo, Connection, NO_PEER};
use crate::reactor::timeouts::Timeouts;
use crate::socket::Stream;
use crate::stats::bump;
use crate::timer::TimerKind;
use crate::{Action, Handler};

impl<H: Handler> EventLoop<H> {
    pub(crate) fn listener_event(&mut self, index: usize) {
        match self.core.listeners.get(index) {
            Some(Some(LoopListener {
                listener: Listener::Udp(_),
                ..
            })) => self.receive_datagrams(index),
            Some(Some(_)) => self.accept(index),
            _ => {}
        }
    }

    pub(crate) fn warn_rate_limited(last: &mut Option<Instant>) -> bool {
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) > WARN_EVERY) {
            *last = Some(now);
            true
        } else {
            false
        }
    }

    pub(crate) fn accept(&mut self, index: usize) {
        loop {
            let Some(Some(l)) = self.core.listeners.get(index) else {
                return;
            };
            match l.listener.accept() {
                Ok(stream) => {
                    let (addr_index, balanced) = (l.addr_index, l.balanced);
                    let cfg = &self.core.cfg;
                    let open = self.core.ctx.handle.connections();
                    if open >= cfg.max_connections {
                        bump(&self.core.counters().refused, 1);
                        if Self::warn_rate_limited(&mut self.core.refuse_warned) {
                            warn!(
                                "loop {}: {open} connections open, the limit is {}: refusing new ones (counted in stats.refused)",
                                self.core.ctx.index,
                                cfg.max_connections
                            );
                        }
                        drop(stream);
                        continue;
                    }
                    if let Err(e) = stream.set_nodelay(cfg.nodelay) {
                        debug!("set TCP_NODELAY: {e}");
                    }
                    if cfg.keepalive.is_some() {
                        if let Err(e) = stream.set_keepalive(cfg.keepalive) {
                            debug!("set SO_KEEPALIVE: {e}");
                        }
                    }
                    let target = if balanced {
                        self.core.balancer.pick(&self.core.shared.conns)
                    } else {
                        self.core.ctx.index
                    };
                    self.core.shared.conns[target].fetch_add(1, Ordering::Relaxed);
                    if target == self.core.ctx.index {
                        self.open(stream, addr_index);
                    } else if !self.core.shared.mailboxes[target]
                        .post(Msg::Assign { stream, addr_index })
                    {
                        self.core.shared.conns[target].fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                    _ if e.raw_os_error() == Some(libc::EPROTO) => {}
                    _ => {
                        // EMFILE/ENFILE/ENOBUFS/ENOMEM and anything unexpected: leave the
                        // connections in the backlog and try again shortly. No spinning:
                        // the retry is a timer, and the listener is edge-triggered.
                        if Self::warn_rate_limited(&mut self.core.accept_warned) {
                            warn!(
                                "loop {}: accept failed: {e}; retrying every {:?}",
                                self.core.ctx.index, ACCEPT_BACKOFF
                            );
                        }
                        if !self.core.accept_retry[index] {
                            self.core.accept_retry[index] = true;
                            self.core.timers.add(
                                self.core.now() + ACCEPT_BACKOFF,
                                TimerKind::AcceptRetry { listener: index },
                            );
                        }
                        return;
                    }
                },
            }
        }
    }

    /// Reads datagrams until `WouldBlock` (at most `MAX_READS` per turn) and hands each to
    /// the handler.
    pub(crate) fn receive_datagrams(&mut self, index: usize) {
        let max = self.core.cfg.max_datagram;
        for _ in 0..MAX_READS {
            let EventLoop { handler, core, .. } = self;
            let Some(Some(LoopListener {
                listener: Listener::Udp(sock),
                addr_index,
                ..
            })) = core.listeners.get(index)
            else {
                return;
            };
            let counters = &core.shared.counters[core.ctx.index];
            let (n, peer) = match sock.recv_from(&mut core.dgram) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors from earlier sends surface here (ECONNREFUSED): not fatal.
                    debug!("loop {}: udp receive: {e}", core.ctx.index);
                    continue;
                }
            };
            bump(&counters.datagrams_in, 1);
            let truncated = n > max;
            if truncated {
                bump(&counters.datagrams_truncated, 1);
            }
            let mut d = Datagram {
                data: &core.dgram[..n.min(max)],
                peer,
                addr_index: *addr_index as usize,
                truncated,
                socket: sock,
                counters,
            };
            if handler.datagram(&mut d) == Action::Shutdown {
                self.start_shutdown();
                return;
            }
        }
        self.core.ready.push_back((LISTENER_BASE + index, 0));
    }

    /// Registers an accepted connection (already counted in `shared.conns`) and calls `opened`.
    pub(crate) fn open(&mut self, mut stream: Stream, addr_index: u16) {
        let core = &mut self.core;
        if core.shutting_down {
            core.open_count_add(-1);
            return;
        }
        let (key, _) = core.slots.next_key();
        if key as usize >= LISTENER_BASE {
            core.open_count_add(-1);
            return;
        }
        if let Err(e) = core.poll.registry().register(
            &mut stream,
            Token(key as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("loop {}: register connection: {e}", core.ctx.index);
            core.open_count_add(-1);
            return;
        }
        let conn = Connection {
            io: ConnIo {
                stream,
                // A new socket's send buffer is empty: writes from `opened` go straight out.
                flags: flags::WRITABLE,
                phase: Phase::Handshaking,
                addr_index,
                watch_epoch: 0,
                timeouts: Timeouts::from_config(&core.cfg, core.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            stack: None,
            state: H::State::default(),
        };
        if core.slots.insert(Box::new(conn)).is_none() {
            core.open_count_add(-1);
            return;
        }
        bump(&core.counters().accepted, 1);
        core.arm_watch(key as usize);
        self.attach_and_open(key as usize, &[]);
    }
}
