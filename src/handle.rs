//! The cross-thread handle: a queue and a `mio::Waker` per loop.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use bytes::Bytes;
use mio::Waker;

use crate::conn::ConnId;
use crate::socket::Stream;

/// Work posted to a loop from outside it.
pub(crate) enum Msg {
    /// A connection accepted by another loop, handed over by the balancer.
    Assign { stream: Stream, addr_index: u16 },
    /// Call `woken` for the connection.
    Wake(ConnId),
    /// Queue bytes on the connection.
    Send(ConnId, Bytes),
    /// Close the connection (flushing first).
    Close(ConnId),
    /// Shut the loop down.
    Shutdown,
}

/// One loop's inbox. `notified` coalesces wake-ups: a burst of messages costs one
/// `eventfd` write, not one per message.
pub(crate) struct Mailbox {
    tx: Sender<Msg>,
    waker: Waker,
    notified: AtomicBool,
}

impl Mailbox {
    pub(crate) fn new(tx: Sender<Msg>, waker: Waker) -> Mailbox {
        Mailbox {
            tx,
            waker,
            notified: AtomicBool::new(false),
        }
    }

    /// Queues `msg` and wakes the loop unless a wake-up is already pending. `false` when
    /// the loop is gone.
    pub(crate) fn post(&self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        if !self.notified.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
        true
    }

    /// Called by the loop before it drains its queue, so a message posted meanwhile
    /// triggers a new wake-up.
    pub(crate) fn clear_notified(&self) {
        self.notified.store(false, Ordering::Release);
    }
}

/// What every loop and handle share.
pub(crate) struct Shared {
    pub(crate) mailboxes: Vec<Mailbox>,
    pub(crate) shutting_down: AtomicBool,
    /// Open connections per loop (for `LeastConnections` and for statistics).
    pub(crate) conns: Vec<AtomicUsize>,
}

impl Shared {
    pub(crate) fn new(mailboxes: Vec<Mailbox>) -> Shared {
        let conns = (0..mailboxes.len()).map(|_| AtomicUsize::new(0)).collect();
        Shared {
            mailboxes,
            shutting_down: AtomicBool::new(false),
            conns,
        }
    }
}

/// Talks to a running server from any thread: `Send + Sync + Clone`, cheap to clone.
///
/// Calls queue work on the loop that owns the connection and wake it; they return at once.
/// Work for one connection is done in the order it was queued from one thread. Ids of
/// connections that are gone are ignored (ids carry a generation, so a reused slot is not
/// mistaken for the old connection).
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    fn post(&self, id: ConnId, msg: Msg) -> bool {
        match self.shared.mailboxes.get(id.loop_index()) {
            Some(mb) => mb.post(msg),
            None => false,
        }
    }

    /// Calls [`Handler::woken`](crate::Handler::woken) for the connection on its loop.
    /// Returns `false` if the server has stopped or the id names no loop.
    pub fn wake(&self, id: ConnId) -> bool {
        self.post(id, Msg::Wake(id))
    }

    /// Queues `data` on the connection; the loop writes it in order after what it had
    /// queued before. Returns `false` if the server has stopped or the id names no loop.
    pub fn send(&self, id: ConnId, data: impl Into<Bytes>) -> bool {
        self.post(id, Msg::Send(id, data.into()))
    }

    /// Closes the connection after flushing its queued output.
    pub fn close(&self, id: ConnId) -> bool {
        self.post(id, Msg::Close(id))
    }

    /// Shuts the server down gracefully (see [`Action::Shutdown`](crate::Action::Shutdown)).
    /// Safe to call more than once and from any thread, including a signal-handling one.
    pub fn shutdown(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            for mb in &self.shared.mailboxes {
                mb.post(Msg::Shutdown);
            }
        }
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// Number of loops.
    pub fn num_loops(&self) -> usize {
        self.shared.mailboxes.len()
    }

    /// Open connections on loop `index` (0 if there is no such loop).
    pub fn loop_connections(&self, index: usize) -> usize {
        self.shared
            .conns
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Open connections on all loops.
    pub fn connections(&self) -> usize {
        self.shared
            .conns
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("loops", &self.num_loops())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

/// The receiving end of a loop's inbox.
pub(crate) type Inbox = Receiver<Msg>;
