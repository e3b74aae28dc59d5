//! The cross-thread handle: a queue and a `mio::Waker` per loop.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mio::Waker;

use crate::dial::DialOptions;
use crate::id::ConnId;
use crate::inherit::Listeners;
use crate::listener::Listener;
use crate::resolver::{Family, Reply, ResolveError, Resolver, ResolverConfig};
use crate::socket::Stream;
use crate::stats::{Counters, Stats};
use crate::Error;

thread_local! {
    /// The `Shared` (as an address) of the server whose loop runs on this thread, or 0.
    static ON_LOOP: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as a loop thread of `shared`'s server.
pub(crate) fn enter_loop(shared: &Arc<Shared>) {
    ON_LOOP.with(|c| c.set(Arc::as_ptr(shared) as usize));
}

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
    /// The resolver's answer for a dial.
    Resolved {
        id: ConnId,
        result: Result<Vec<SocketAddr>, ResolveError>,
    },
    /// A dial requested through the handle; the id (or the error) goes back on `reply`.
    Dial {
        addr: String,
        opts: DialOptions,
        state: Option<Box<dyn Any + Send>>,
        reply: SyncSender<Result<ConnId, Error>>,
    },
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
    /// Counters per loop.
    pub(crate) counters: Vec<Counters>,
    resolver_cfg: ResolverConfig,
    /// Started on the first dial that needs a name resolved.
    resolver: Mutex<Option<Resolver>>,
    /// Round-robin for `Handle::dial`.
    next_dial_loop: AtomicUsize,
    /// Loops running now (a dial request to a stopped server must not wait forever).
    pub(crate) running_loops: AtomicUsize,
    /// A second descriptor of every listening socket, by address, for
    /// [`Handle::listeners`]; closed when shutdown begins.
    pub(crate) listen_socks: Mutex<Vec<(crate::Addr, Vec<Listener>)>>,
}

impl Shared {
    pub(crate) fn new(mailboxes: Vec<Mailbox>, resolver_cfg: ResolverConfig) -> Shared {
        let conns = (0..mailboxes.len()).map(|_| AtomicUsize::new(0)).collect();
        let counters = (0..mailboxes.len()).map(|_| Counters::default()).collect();
        Shared {
            mailboxes,
            shutting_down: AtomicBool::new(false),
            conns,
            counters,
            resolver_cfg,
            resolver: Mutex::new(None),
            next_dial_loop: AtomicUsize::new(0),
            running_loops: AtomicUsize::new(0),
            listen_socks: Mutex::new(Vec::new()),
        }
    }

    /// Resolves `host` on the resolver thread (started on first use).
    pub(crate) fn resolve(
        &self,
        host: &str,
        port: u16,
        family: Family,
        deadline: Duration,
        reply: Reply,
    ) -> io::Result<()> {
        let mut r = self
            .resolver
            .lock()
            .map_err(|_| io::Error::other("resolver lock poisoned"))?;
        if r.is_none() {
            *r = Some(Resolver::start(&self.resolver_cfg)?);
        }
        if let Some(r) = r.as_ref() {
            r.resolve(host, port, family, deadline, reply);
        }
        Ok(())
    }

    /// Stops the resolver thread, if it was started.
    pub(crate) fn stop_resolver(&self) {
        let r = self.resolver.lock().ok().and_then(|mut r| r.take());
        drop(r);
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

    /// Opens an outbound connection served by the server's handler, like
    /// [`Control::dial`](crate::Control::dial), with the handler's default `State`. The
    /// loop is [`DialOptions::on_loop`] or the next one in turn. Returns the id once the
    /// loop has taken the request (a round trip to that loop, not the connect: `opened`
    /// or `closed(Some(err))` follows); a request made before `serve` starts waits for it, one
    /// made after the server stopped fails. Must not be called from a loop thread of the same
    /// server (that would wait on itself): use `Control::dial` or `Conn::dial` there.
    pub fn dial(&self, addr: &str, opts: DialOptions) -> Result<ConnId, Error> {
        self.dial_inner(addr, opts, None)
    }

    /// Like [`dial`](Handle::dial), with the connection's initial state. `S` must be the
    /// handler's `State` type, or the dial fails with a configuration error.
    pub fn dial_with_state<S: Send + 'static>(
        &self,
        addr: &str,
        opts: DialOptions,
        state: S,
    ) -> Result<ConnId, Error> {
        self.dial_inner(addr, opts, Some(Box::new(state)))
    }

    fn dial_inner(
        &self,
        addr: &str,
        opts: DialOptions,
        state: Option<Box<dyn Any + Send>>,
    ) -> Result<ConnId, Error> {
        if ON_LOOP.with(|c| c.get()) == Arc::as_ptr(&self.shared) as usize {
            return Err(Error::config(
                "Handle::dial on a loop thread of the same server: use Control::dial or Conn::dial",
            ));
        }
        let n = self.num_loops();
        let index = match opts.loop_index {
            Some(i) if i < n => i,
            Some(i) => return Err(Error::config(format!("no loop {i} (there are {n})"))),
            None => self.shared.next_dial_loop.fetch_add(1, Ordering::Relaxed) % n.max(1),
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let msg = Msg::Dial {
            addr: addr.to_string(),
            opts,
            state,
            reply: tx,
        };
        if !self.shared.mailboxes[index].post(msg) {
            return Err(Error::config("the server is not running"));
        }
        // The request waits in the loop's inbox until the loop takes it (so a dial made
        // just before `serve` starts is served); it fails once the server has stopped.
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(res) => return res,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::config("the server stopped before dialing"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.is_shutting_down()
                        && self.shared.running_loops.load(Ordering::Acquire) == 0
                    {
                        return Err(Error::config("the server stopped before dialing"));
                    }
                }
            }
        }
    }

    /// Shuts the server down gracefully (see [`Action::Shutdown`](crate::Action::Shutdown)).
    /// Safe to call more than once and from any thread, including a signal-handling one.
    pub fn shutdown(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            // The loops close their listeners now: so must the spare descriptors, or the
            // kernel would go on queuing connections nobody accepts.
            if let Ok(mut socks) = self.shared.listen_socks.lock() {
                socks.clear();
            }
            for mb in &self.shared.mailboxes {
                mb.post(Msg::Shutdown);
            }
        }
    }

    /// Second descriptors of this server's listening sockets, for a new server to take
    /// over with [`Builder::inherit`](crate::Builder::inherit) (a reload: the new server
    /// accepts from the same sockets, then this one is shut down and drains). Every
    /// listener is there, in `listen` order, with all its sockets (one per loop with
    /// `reuseport`). Fails once shutdown has begun (the sockets are closing) or when the
    /// system is out of descriptors.
    pub fn listeners(&self) -> Result<Listeners, Error> {
        let socks = self
            .shared
            .listen_socks
            .lock()
            .map_err(|_| Error::config("listener table poisoned"))?;
        if self.is_shutting_down() {
            return Err(Error::config("the server is shutting down"));
        }
        let mut entries = Vec::with_capacity(socks.len());
        for (addr, ls) in socks.iter() {
            let dups = ls
                .iter()
                .map(Listener::try_clone)
                .collect::<io::Result<Vec<_>>>()
                .map_err(|e| Error::bind(addr.as_str(), e))?;
            entries.push((addr.clone(), dups));
        }
        Ok(Listeners { entries })
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

    /// Counters of loop `index` (all zero if there is no such loop).
    pub fn loop_stats(&self, index: usize) -> Stats {
        match self.shared.counters.get(index) {
            Some(c) => c.snapshot(self.loop_connections(index) as u64),
            None => Stats::default(),
        }
    }

    /// Counters of the whole server (the sum over its loops).
    pub fn stats(&self) -> Stats {
        (0..self.num_loops())
            .map(|i| self.loop_stats(i))
            .fold(Stats::default(), |a, b| a + b)
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
