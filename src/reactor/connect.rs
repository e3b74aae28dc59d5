//! Dialing: the second half of `Core::dial` (each candidate address by mio's recipe),
//! the connect event, and the resolver's answer.

use std::io;
use std::sync::Arc;

use mio::{Interest, Token};

use super::*;
use crate::addr::{Addr, Host, Scheme, Target};
use crate::dial::{self, DialOptions, DialProgress};
use crate::handle::Msg;
use crate::id::ConnId;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, ConnIo, Connection, NO_PEER};
use crate::reactor::timeouts::Timeouts;
use crate::resolver::{Family, ResolveError};
use crate::socket::Stream;
use crate::stats::bump;
use crate::timer::TimerKind;
use crate::{Error, Handler};

impl<S> Core<S> {
    /// Starts an outbound connection; see [`Control::dial`].
    pub(crate) fn dial(
        &mut self,
        addr: &str,
        opts: DialOptions,
        state: S,
    ) -> Result<ConnId, Error> {
        let addr = Addr::parse(addr)?;
        // While the server drains, connections finishing their work may still dial (a
        // proxy's request in flight needs its upstream); the shutdown deadline bounds
        // them as it bounds the others.
        if addr.scheme().is_udp() {
            return Err(Error::config(format!(
                "cannot dial {:?}: dial makes stream connections (tcp or unix)",
                addr.as_str()
            )));
        }
        let (candidates, lookup) = match addr.target() {
            Target::Unix(p) => (vec![dial::Target::Unix(p.clone())], None),
            Target::Inet {
                host: Host::Ip(ip),
                port,
            } => (
                vec![dial::Target::Inet(std::net::SocketAddr::new(*ip, *port))],
                None,
            ),
            Target::Inet {
                host: Host::Name(name),
                port,
            } => (Vec::new(), Some((name.clone(), *port))),
        };
        let (key, gen) = self.slots.next_key();
        if key as usize >= LISTENER_BASE {
            return Err(Error::config("too many connections on this loop"));
        }
        let conn = Connection {
            io: ConnIo {
                stream: Stream::Unconnected,
                flags: flags::DIALED,
                phase: Phase::Connecting,
                addr_index: u16::MAX,
                watch_epoch: 0,
                timeouts: Timeouts::none(self.now_ms),
                peer: NO_PEER,
            },
            bufs: None,
            stack: None,
            state,
        };
        if self.slots.insert(Box::new(conn)).is_none() {
            return Err(Error::config("too many connections on this loop"));
        }
        self.open_count_add(1);
        bump(&self.counters().dialed, 1);
        let id = ConnId {
            loop_index: self.ctx.index as u32,
            key,
            gen,
        };
        self.timers
            .add(self.now() + opts.timeout, TimerKind::Connect { key, gen });
        let mut progress = DialProgress {
            addr: addr.clone(),
            opts,
            candidates: candidates.into(),
            last_err: None,
            resolving: lookup.is_some(),
        };
        match lookup {
            Some((host, port)) => {
                let family = match addr.scheme() {
                    Scheme::Tcp4 => Family::V4,
                    Scheme::Tcp6 => Family::V6,
                    _ => Family::Any,
                };
                let weak = Arc::downgrade(&self.shared);
                let index = self.ctx.index;
                let reply = Box::new(move |result| {
                    if let Some(shared) = weak.upgrade() {
                        shared.mailboxes[index].post(Msg::Resolved { id, result });
                    }
                });
                if let Err(e) =
                    self.shared
                        .resolve(&host, port, family, progress.opts.timeout, reply)
                {
                    progress.resolving = false;
                    progress.last_err = Some(e);
                    self.deferred.push(Deferred::DialStep(key, gen));
                }
            }
            None => self.deferred.push(Deferred::DialStep(key, gen)),
        }
        self.dialing.insert(key, progress);
        Ok(id)
    }
}

impl<H: Handler> EventLoop<H> {
    /// Starts connecting to the next candidate address of dial `key`, or fails the dial
    /// with the last error when none is left.
    pub(crate) fn dial_step(&mut self, key: usize) {
        loop {
            let core = &mut self.core;
            let Some(p) = core.dialing.get_mut(&(key as u32)) else {
                return;
            };
            if p.resolving {
                return;
            }
            let Some(target) = p.candidates.pop_front() else {
                let Some(p) = core.dialing.remove(&(key as u32)) else {
                    return;
                };
                let e = p.last_err.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
                });
                self.fail(key, Error::connect(p.addr.as_str(), e));
                return;
            };
            let mut stream = match dial::connect(&target, &p.opts) {
                Ok(s) => s,
                Err(e) => {
                    p.last_err = Some(e);
                    continue;
                }
            };
            if let Err(e) = core.poll.registry().register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                p.last_err = Some(e);
                continue;
            }
            let _ = stream.set_nodelay(p.opts.nodelay.unwrap_or(core.cfg.nodelay));
            if let Some(ka) = p.opts.keepalive.or(core.cfg.keepalive) {
                let _ = stream.set_keepalive(Some(ka));
            }
            if let Some(c) = core.slots.get_mut(key) {
                c.io.stream = stream;
            }
            return;
        }
    }

    /// A connecting socket reported readiness: connected, failed, or not yet.
    pub(crate) fn connect_event(&mut self, key: usize) {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        if matches!(c.io.stream, Stream::Unconnected) {
            return;
        }
        let failed = match c.io.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match c.io.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = failed {
            let mut old = std::mem::replace(&mut c.io.stream, Stream::Unconnected);
            let _ = core.poll.registry().deregister(&mut old);
            drop(old);
            if let Some(p) = core.dialing.get_mut(&(key as u32)) {
                p.last_err = Some(e);
            }
            self.dial_step(key);
            return;
        }
        c.io.set(flags::WRITABLE);
        c.io.timeouts = Timeouts::from_config(&core.cfg, core.now_ms);
        // Closed (with output queued) before it connected: no callback but `closed`, once
        // the output is flushed.
        let closing = c.io.is_closing();
        if !closing {
            c.io.phase = Phase::Handshaking;
        }
        let detaching = c.io.phase == Phase::Detaching;
        let progress = core.dialing.remove(&(key as u32));
        core.arm_watch(key);
        let layers = progress.map(|p| p.opts.layers).unwrap_or_default();
        if detaching {
            self.flush(key);
        } else if closing {
            self.connected_closing(key, &layers);
        } else {
            // A wake that came while connecting is delivered right after `opened`.
            self.attach_and_open(key, &layers);
        }
    }

    /// The resolver answered for dial `id`.
    pub(crate) fn resolved(
        &mut self,
        id: ConnId,
        result: Result<Vec<std::net::SocketAddr>, ResolveError>,
    ) {
        let key = id.key as usize;
        if self.core.slots.get_gen_mut(key, id.gen).is_none() {
            return;
        }
        let Some(p) = self.core.dialing.get_mut(&id.key) else {
            return;
        };
        if !p.resolving {
            return;
        }
        p.resolving = false;
        match result {
            Ok(addrs) => {
                p.candidates = addrs.into_iter().map(dial::Target::Inet).collect();
                self.dial_step(key);
            }
            Err(e) => {
                let addr = p.addr.as_str().to_string();
                self.core.dialing.remove(&id.key);
                let not_found = matches!(e, ResolveError::NotFound { .. });
                let timeout = matches!(e, ResolveError::Timeout { .. });
                self.fail(key, Error::dns(&addr, e.to_string(), not_found, timeout));
            }
        }
    }
}
