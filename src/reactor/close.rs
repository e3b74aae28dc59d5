//! Closing and detaching: graceful close (flush, `closed`, FIN, drain), failure, the
//! linger after `closed`, and handing a socket out.

use std::io;
use std::net::Shutdown;

use super::*;
use crate::buf::{InBuf, OutBuf};
use crate::detach::{Detached, DetachedStream};
use crate::reactor::conn::Conn;
use crate::reactor::store::Phase;
use crate::reactor::store::{flags, Connection, NO_PEER};
use crate::socket::Stream;
use crate::stats::bump;
use crate::timer::TimerKind;
use crate::{Error, Handler};

impl<H: Handler> EventLoop<H> {
    pub(crate) fn take_close_error(&mut self, key: usize) -> Option<Error> {
        let i = self
            .core
            .close_errors
            .iter()
            .position(|(k, _)| *k as usize == key)?;
        Some(self.core.close_errors.swap_remove(i).1)
    }

    /// Stops reading and delivering; closes once queued output is flushed (or the linger
    /// runs out). `err` is reported in `closed`.
    pub(crate) fn begin_close(&mut self, key: usize, err: Option<Error>) {
        self.begin_close_from(key, err, false);
    }

    /// Like `begin_close`; `by_handler` says the handler's own callback asked for it (so
    /// it already had its chance to write), otherwise `closing` runs first.
    pub(crate) fn begin_close_from(&mut self, key: usize, err: Option<Error>, by_handler: bool) {
        let linger = self.core.cfg.close_linger;
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.is_closing() {
            return;
        }
        // The handler's own reason (`Conn::close_with`), unless the loop has one.
        let own = self.take_close_error(key);
        let mut err = err;
        if !by_handler
            && self
                .core
                .slots
                .get_mut(key)
                .is_some_and(|c| c.io.phase == Phase::Open)
        {
            // `closing` may ask why (`Conn::close_reason`): the loop's reason waits where
            // it can see it.
            if let Some(e) = err.take() {
                self.core.set_close_error(key as u32, e);
            }
            self.with_conn(key, |h, conn| h.closing(conn));
            self.keep_leftovers(key);
            err = self.take_close_error(key);
        }
        let err = err.or(own);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.is_closing() {
            return;
        }
        c.io.phase = Phase::Closing;
        // The layers' last records and goodbye (TLS close_notify) go out before the FIN.
        self.close_layers(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        let pending = c.out_len();
        if pending == 0 {
            self.finish_close(key, err, true);
            return;
        }
        if let Some(e) = err {
            self.core.set_close_error(key as u32, e);
        }
        self.core.timers.add(
            self.core.now() + linger,
            TimerKind::FlushLinger {
                key: key as u32,
                gen,
            },
        );
        // Output may have been queued just now (by `closing`): write what the socket takes.
        self.flush(key);
    }

    /// The socket failed: close now, output is lost.
    pub(crate) fn fail(&mut self, key: usize, err: Error) {
        if let Some(c) = self.core.slots.get_mut(key) {
            if let Some(b) = c.bufs.as_deref_mut() {
                b.out.discard();
            }
            if c.io.phase != Phase::Lingering {
                c.io.phase = Phase::Closing;
            }
        }
        let _ = self.take_close_error(key);
        self.finish_close(key, Some(err), false);
    }

    /// The handler abandoned the connection (`Conn::abort`, `Control::abort`): queued
    /// output is dropped, `closed` runs (with the reason from `close_with`, if any), and
    /// the socket is reset (`SO_LINGER` 0) instead of flushed, FIN'd and drained.
    pub(crate) fn abort(&mut self, key: usize) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        c.io.stream.reset_on_close();
        if c.io.phase == Phase::Lingering {
            // `closed` has run: only the drain is left, and a reset ends it.
            self.core.slots.remove(key);
            return;
        }
        if let Some(b) = c.bufs.as_deref_mut() {
            b.out.discard();
        }
        c.io.phase = Phase::Closing;
        let err = self.take_close_error(key);
        self.finish_close(key, err, false);
    }

    /// Calls `closed`, then lets the socket go: at once, or (`graceful`) after sending FIN
    /// and draining what the peer still sends, so the close is not a reset that could
    /// destroy the output just written.
    pub(crate) fn finish_close(&mut self, key: usize, err: Option<Error>, graceful: bool) {
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.phase == Phase::Lingering {
            return;
        }
        c.io.phase = Phase::Lingering;
        if let Some(b) = c.bufs.as_deref_mut() {
            b.out.discard();
        }
        let peer = c.io.peer;
        let gen = self.core.slots.gen(key);
        // A dial closed before it connected has no conversation to wind down; left to
        // linger, its socket would still complete the connect and fire `opened`.
        let never_connected = self.core.dialing.remove(&(key as u32)).is_some();
        // `closed` is owed once `opened` ran, and always to a dial (which reports its
        // failure there); an accepted connection that never got through its layers'
        // handshake was never the handler's.
        let c = self.core.slots.get_mut(key).expect("closing connection");
        let (opened, dialed) = (c.io.has(flags::OPENED), c.io.has(flags::DIALED));
        let err = match err {
            None if dialed && !opened && c.stack.is_some() => Some(Error::layer(
                "the connection closed before its handshake finished",
            )),
            e => e,
        };
        if opened || dialed {
            self.with_conn(key, |h, conn| h.closed(conn, err));
        } else if let Some(e) = err {
            debug!("connection {key} closed during its handshake: {e}");
        }
        // A reason given too late (`close_with` in `closed`) must not outlive its connection.
        let _ = self.take_close_error(key);
        if peer != NO_PEER {
            self.unblock_peer(peer);
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
        let core = &mut self.core;
        self.bufs.rbuf.clear();
        self.bufs.stage.discard();
        core.open_count_add(-1);
        bump(&core.counters().closed, 1);
        let shutting_down = core.shutting_down;
        let linger = core.cfg.close_linger;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        c.bufs = None;
        let virtual_conn = matches!(c.io.stream, Stream::Unconnected);
        if graceful
            && !c.io.has(flags::READ_EOF)
            && !shutting_down
            && !virtual_conn
            && !never_connected
        {
            if !c.io.has(flags::SHUT_WR_DONE) {
                c.io.set(flags::SHUT_WR_DONE);
                let _ = c.io.stream.shutdown(Shutdown::Write);
            }
            c.io.set(flags::READABLE);
            core.timers.add(
                core.now() + linger,
                TimerKind::DrainLinger {
                    key: key as u32,
                    gen,
                },
            );
            self.drain_lingering(key);
        } else {
            core.slots.remove(key);
        }
    }

    /// Reads and discards a closed connection's late input; drops it at EOF or error.
    pub(crate) fn drain_lingering(&mut self, key: usize) {
        let core = &mut self.core;
        let Some(c) = core.slots.get_mut(key) else {
            return;
        };
        for _ in 0..MAX_DRAIN_READS {
            self.bufs.rbuf.clear();
            match self.bufs.rbuf.read_from(&mut c.io.stream, 1) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.bufs.rbuf.clear();
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.bufs.rbuf.clear();
        core.slots.remove(key);
    }

    /// Stops reading; hands the socket out once queued output is flushed.
    pub(crate) fn begin_detach(&mut self, key: usize) {
        let linger = self.core.cfg.close_linger;
        let gen = self.core.slots.gen(key);
        let Some(c) = self.core.slots.get_mut(key) else {
            return;
        };
        if c.io.is_closing() {
            return;
        }
        c.io.phase = Phase::Detaching;
        if c.out_len() == 0 {
            self.finish_detach(key);
            return;
        }
        self.core.timers.add(
            self.core.now() + linger,
            TimerKind::FlushLinger {
                key: key as u32,
                gen,
            },
        );
    }

    /// Takes the socket out of the loop and calls `detached`.
    pub(crate) fn finish_detach(&mut self, key: usize) {
        // A reason from `close_with` has no `closed` to go to: it ends with the connection,
        // as in `finish_close`, or the slot's next connection would report it.
        let _ = self.take_close_error(key);
        let id = self.core.conn_id(key);
        let core = &mut self.core;
        let Some(mut conn) = core.slots.remove(key) else {
            return;
        };
        core.open_count_add(-1);
        let _ = core.poll.registry().deregister(&mut conn.io.stream);
        let input = match conn.bufs.take() {
            Some(b) => b.input.bytes().to_vec(),
            None => Vec::new(),
        };
        let Connection {
            mut io, mut state, ..
        } = *conn;
        // The user gets a duplicate descriptor; the loop's copy closes below.
        let detached =
            DetachedStream::dup_from(&io.stream).map(|stream| Detached { stream, input });
        match &detached {
            Ok(_) => bump(&core.counters().detached, 1),
            Err(e) => {
                warn!(
                    "loop {}: detach {id} failed, closing instead: {e}",
                    core.ctx.index
                );
                bump(&core.counters().closed, 1);
            }
        }
        let mut empty = InBuf::default();
        let mut out = OutBuf::default();
        io.phase = Phase::Lingering;
        let mut view = Conn {
            id,
            io: &mut io,
            input: &mut empty,
            out: &mut out,
            below: 0,
            layers: &[],
            core: &mut self.core,
            state: &mut state,
        };
        match detached {
            Ok(d) => self.handler.detached(&mut view, d),
            Err(e) => self.handler.closed(&mut view, Some(Error::io(e))),
        }
        if !self.core.deferred.is_empty() {
            self.run_deferred();
        }
    }
}
