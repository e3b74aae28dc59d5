//! What a handler can do on its own loop outside a connection callback.

use bytes::Bytes;

use crate::conn::{flags, ConnId};
use crate::event_loop::{Core, Deferred};
use crate::Handle;

/// The loop, as seen from [`Handler::serving`](crate::Handler::serving) and
/// [`Handler::tick`](crate::Handler::tick): write to or close any connection of this loop
/// by id, and reach the cross-thread [`Handle`]. Writes and closes take effect when the
/// callback returns, in the order they were made.
pub struct Control<'a, S> {
    pub(crate) core: &'a mut Core<S>,
}

impl<S> Control<'_, S> {
    /// Index of this loop (`0..num_loops`).
    pub fn loop_index(&self) -> usize {
        self.core.ctx.index
    }

    /// Number of loops in the server.
    pub fn num_loops(&self) -> usize {
        self.core.shared.mailboxes.len()
    }

    /// The cross-thread handle.
    pub fn handle(&self) -> &Handle {
        &self.core.ctx.handle
    }

    /// Connections open on this loop.
    pub fn connections(&self) -> usize {
        self.core.ctx.handle.loop_connections(self.core.ctx.index)
    }

    /// Queues a copy of `data` on connection `id`. `false` if `id` is not an open
    /// connection of this loop.
    pub fn write(&mut self, id: ConnId, data: &[u8]) -> bool {
        self.queue(id, |out| out.write(data))
    }

    /// Queues `data` on connection `id` without copying it.
    pub fn write_bytes(&mut self, id: ConnId, data: Bytes) -> bool {
        self.queue(id, |out| out.write_bytes(data))
    }

    fn queue(&mut self, id: ConnId, f: impl FnOnce(&mut crate::buf::OutBuf)) -> bool {
        let Some(c) = self.core.live(id) else {
            return false;
        };
        if c.io.has(flags::SHUT_WR_REQ) {
            return false;
        }
        f(&mut c.bufs.get_or_insert_with(Box::default).out);
        self.core.deferred.push(Deferred::Flush(id.key, id.gen));
        true
    }

    /// Bytes queued on connection `id` and not yet written (`None` if it is not open here).
    pub fn output_len(&mut self, id: ConnId) -> Option<usize> {
        self.core
            .live(id)
            .map(|c| c.bufs.as_ref().map_or(0, |b| b.out.len()))
    }

    /// Closes connection `id` after flushing it. `false` if it is not open here.
    pub fn close(&mut self, id: ConnId) -> bool {
        if self.core.live(id).is_none() {
            return false;
        }
        self.core.deferred.push(Deferred::Close(id.key, id.gen));
        true
    }

    /// Starts a graceful shutdown of the whole server.
    pub fn shutdown(&mut self) {
        self.core.ctx.handle.shutdown();
    }
}
