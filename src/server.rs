//! Building and running a server: addresses, loops, options.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use mio::{Poll, Waker};

use crate::addr::Addr;
use crate::config::Config;
use crate::handle::{Inbox, Mailbox, Shared};
use crate::inherit::Listeners;
use crate::listener::{self, ListenOptions};
use crate::reactor::store::LoopCtx;
use crate::reactor::{EventLoop, LoopListener, WAKER};
use crate::resolver::ResolverConfig;
use crate::socket::NetAddr;
use crate::{Error, Handle, Handler, LoadBalance};

/// How many loops (threads) serve connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loops {
    /// Exactly this many (at least one).
    Fixed(usize),
    /// One per available core.
    PerCore,
}

impl Default for Loops {
    fn default() -> Loops {
        Loops::Fixed(1)
    }
}

impl Loops {
    /// `n > 0` loops, or one per core for `n <= 0` (the examples' `--loops -1`).
    pub fn from_count(n: i64) -> Loops {
        if n > 0 {
            Loops::Fixed(n as usize)
        } else {
            Loops::PerCore
        }
    }

    fn count(self) -> usize {
        match self {
            Loops::Fixed(n) => n.max(1),
            Loops::PerCore => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Configures a [`Server`]. Every setting has a sane default; [`build`](Builder::build)
/// binds the listeners, so bind errors surface there, before any thread starts.
#[derive(Debug, Default)]
pub struct Builder {
    addrs: Vec<Addr>,
    inherited: Option<Listeners>,
    loops: Loops,
    cfg: Config,
}

impl Builder {
    /// Adds a listener: `tcp://host:port`, `tcp4://`, `tcp6://`, `unix:///path`, or
    /// `host:port` for TCP; option `?reuseport=true` gives every loop its own socket on the
    /// address. Connections keep the index of their listener (order of `listen` calls) in
    /// [`Conn::addr_index`](crate::Conn::addr_index).
    pub fn listen(mut self, addr: &str) -> Result<Builder, Error> {
        self.addrs.push(Addr::parse(addr)?);
        Ok(self)
    }

    /// Adds a parsed listener address.
    pub fn listen_addr(mut self, addr: Addr) -> Builder {
        self.addrs.push(addr);
        self
    }

    /// Number of loops (default one).
    pub fn loops(mut self, loops: Loops) -> Builder {
        self.loops = loops;
        self
    }

    /// How connections on shared listeners are spread over the loops (default round-robin).
    pub fn load_balance(mut self, lb: LoadBalance) -> Builder {
        self.cfg.balance = lb;
        self
    }

    /// Output queued per connection above which the loop stops reading from it (default
    /// 1 MiB), and below which it resumes and calls `writable` (default 256 KiB).
    pub fn output_water_marks(mut self, high: usize, low: usize) -> Builder {
        self.cfg.out_high_water = high;
        self.cfg.out_low_water = low;
        self
    }

    /// Most unconsumed input a connection may hold (default 8 MiB); past it the connection
    /// is closed with an [`is_input_limit`](Error::is_input_limit) error.
    pub fn max_input(mut self, bytes: usize) -> Builder {
        self.cfg.max_input = bytes;
        self
    }

    /// Size of each loop's shared read buffer (default 64 KiB).
    pub fn read_buffer(mut self, bytes: usize) -> Builder {
        self.cfg.read_buffer = bytes;
        self
    }

    /// How long a closing connection may take to flush its output, and then to drain the
    /// peer's last bytes (default 5 s each).
    pub fn close_linger(mut self, d: Duration) -> Builder {
        self.cfg.close_linger = d;
        self
    }

    /// How long a graceful shutdown waits for output to flush before closing what is left
    /// (default 5 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.cfg.shutdown_timeout = d;
        self
    }

    /// `TCP_NODELAY` on accepted connections (default on).
    pub fn nodelay(mut self, on: bool) -> Builder {
        self.cfg.nodelay = on;
        self
    }

    /// Listen backlog (default 1024).
    pub fn backlog(mut self, n: i32) -> Builder {
        self.cfg.backlog = n;
        self
    }

    /// Closes connections with no traffic either way for `timeout` (default: never).
    /// [`Conn::set_idle_timeout`](crate::Conn::set_idle_timeout) overrides it per
    /// connection. Checking costs a timer per connection per period, never a scan.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.cfg.idle_timeout = timeout;
        self
    }

    /// Closes a connection that was ready to read and got no input for `timeout` (default:
    /// never); reading held back by backpressure does not count. Mostly set per connection
    /// while an answer is awaited, with
    /// [`Conn::set_read_timeout`](crate::Conn::set_read_timeout); this is the value new
    /// connections (accepted and dialed) start with. `closed` then gets an error for which
    /// [`Error::is_read_timeout`](crate::Error::is_read_timeout) holds.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.cfg.read_timeout = timeout;
        self
    }

    /// Closes a connection whose queued output took no byte for `timeout`: the peer
    /// stopped reading (default [`DEFAULT_SEND_TIMEOUT`](crate::DEFAULT_SEND_TIMEOUT), 60 s; `None` never). A peer that
    /// reads slowly but steadily is not affected: the clock restarts with every write.
    /// The output is dropped and `closed` gets an error for which
    /// [`Error::is_send_timeout`](crate::Error::is_send_timeout) holds.
    /// [`Conn::set_send_timeout`](crate::Conn::set_send_timeout) overrides it per
    /// connection.
    pub fn send_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.cfg.send_timeout = timeout;
        self
    }

    /// Most connections open at once over the whole server (default: unlimited). Past it,
    /// new connections are accepted and closed at once, logged, and counted in
    /// [`Stats::refused`](crate::Stats::refused). Exact with shared listeners; with
    /// `reuseport` the loops accept concurrently and may overshoot by up to `loops - 1`.
    pub fn max_connections(mut self, n: usize) -> Builder {
        self.cfg.max_connections = n;
        self
    }

    /// TCP keep-alive on accepted connections: probes after `idle` without traffic, then
    /// every `idle` (default off).
    pub fn keepalive(mut self, idle: Option<Duration>) -> Builder {
        self.cfg.keepalive = idle;
        self
    }

    /// `SO_RCVBUF` of listening sockets, inherited by accepted connections (default: the
    /// system's, which auto-tunes).
    pub fn recv_buffer_size(mut self, bytes: usize) -> Builder {
        self.cfg.recv_buffer_size = Some(bytes);
        self
    }

    /// `SO_SNDBUF` of listening sockets, inherited by accepted connections.
    pub fn send_buffer_size(mut self, bytes: usize) -> Builder {
        self.cfg.send_buffer_size = Some(bytes);
        self
    }

    /// `SO_REUSEADDR` on listening sockets (default on, so a restarted server can bind
    /// while old connections are in `TIME_WAIT`).
    pub fn reuseaddr(mut self, on: bool) -> Builder {
        self.cfg.reuseaddr = on;
        self
    }

    /// Largest UDP datagram delivered whole (default 65,535); longer ones are truncated
    /// and flagged ([`Datagram::truncated`](crate::Datagram::truncated)).
    pub fn max_datagram(mut self, bytes: usize) -> Builder {
        self.cfg.max_datagram = bytes;
        self
    }

    /// Where dialed host names are resolved (default: the system's configuration,
    /// `/etc/resolv.conf` and `/etc/hosts`).
    pub fn resolver(mut self, cfg: ResolverConfig) -> Builder {
        self.cfg.resolver = cfg;
        self
    }

    /// The settings (for the test driver, which has no listeners).
    #[cfg(feature = "testing")]
    pub(crate) fn config(&self) -> Config {
        self.cfg.clone()
    }

    /// Takes over listening sockets of another server ([`Handle::listeners`]): every
    /// address given to [`listen`](Builder::listen) that one of them was listened on
    /// (the same scheme, host, port and options) is served from that socket instead of a
    /// new one, so not one connection attempt is refused while one server replaces the
    /// other; the others are bound as usual, and sockets no address asks for are closed
    /// by [`build`](Builder::build). With `reuseport`, keep the number of loops.
    pub fn inherit(mut self, listeners: Listeners) -> Builder {
        self.inherited = Some(listeners);
        self
    }

    /// Validates the settings and binds every listener (or takes it over, see
    /// [`inherit`](Builder::inherit)).
    pub fn build(self) -> Result<Server, Error> {
        let cfg = self.cfg;
        if self.addrs.is_empty() {
            return Err(Error::config("no address to listen on"));
        }
        if self.addrs.len() > u16::MAX as usize {
            return Err(Error::config("too many listeners"));
        }
        if cfg.out_low_water > cfg.out_high_water {
            return Err(Error::config(
                "output low-water mark above the high-water mark",
            ));
        }
        if cfg.read_buffer < 1024 {
            return Err(Error::config("read buffer under 1 KiB"));
        }
        if cfg.max_datagram == 0 || cfg.max_datagram > 16 << 20 {
            return Err(Error::config(
                "max_datagram must be within 1 byte ..= 16 MiB",
            ));
        }
        if cfg.max_connections == 0 {
            return Err(Error::config("max_connections is 0"));
        }
        let n = self.loops.count();
        let mut polls = Vec::with_capacity(n);
        let mut mailboxes = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER)?;
            let (tx, rx) = mpsc::channel();
            mailboxes.push(Mailbox::new(tx, waker));
            inboxes.push(rx);
            polls.push(poll);
        }
        let opts = ListenOptions {
            backlog: cfg.backlog,
            reuseaddr: cfg.reuseaddr,
            recv_buffer_size: cfg.recv_buffer_size,
            send_buffer_size: cfg.send_buffer_size,
        };
        let mut per_loop: Vec<Vec<LoopListener>> = (0..n).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::with_capacity(self.addrs.len());
        let mut spare = Vec::with_capacity(self.addrs.len());
        let mut inherited = self.inherited;
        for (i, addr) in self.addrs.iter().enumerate() {
            let socks = match inherited.as_mut().and_then(|l| l.take(addr)) {
                Some(socks) if !socks.is_empty() => socks,
                _ => listener::bind(addr, &opts, n)?,
            };
            let dups = socks
                .iter()
                .map(listener::Listener::try_clone)
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| Error::bind(addr.as_str(), e))?;
            spare.push((addr.clone(), dups));
            local_addrs.push(
                socks[0]
                    .local_addr()
                    .map_err(|e| Error::bind(addr.as_str(), e))?,
            );
            let own_socket_per_loop = socks.len() == n && n > 1;
            for (j, l) in socks.into_iter().enumerate() {
                per_loop[j % n].push(LoopListener {
                    listener: l,
                    addr_index: i as u16,
                    balanced: !own_socket_per_loop,
                });
            }
        }
        drop(inherited);
        let shared = Arc::new(Shared::new(mailboxes, cfg.resolver.clone()));
        if let Ok(mut socks) = shared.listen_socks.lock() {
            *socks = spare;
        }
        let loops = polls
            .into_iter()
            .zip(inboxes)
            .zip(per_loop)
            .map(|((poll, inbox), listeners)| LoopParts {
                poll,
                inbox,
                listeners,
            })
            .collect();
        Ok(Server {
            handle: Handle { shared },
            cfg: Arc::new(cfg),
            loops,
            local_addrs,
            addrs: self.addrs,
        })
    }

    /// Builds the server and serves it with `factory` (see [`Server::serve`]).
    pub fn serve<H, F>(self, factory: F) -> Result<(), Error>
    where
        H: Handler,
        F: Fn(usize) -> H + Sync,
    {
        self.build()?.serve(factory)
    }
}

struct LoopParts {
    poll: Poll,
    inbox: Inbox,
    listeners: Vec<LoopListener>,
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    handle: Handle,
    cfg: Arc<Config>,
    loops: Vec<LoopParts>,
    local_addrs: Vec<NetAddr>,
    addrs: Vec<Addr>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The cross-thread handle (usable before and while serving).
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The bound address of each listener, in `listen` order (with the real port when the
    /// address asked for port 0).
    pub fn local_addrs(&self) -> &[NetAddr] {
        &self.local_addrs
    }

    /// The addresses as given to the builder.
    pub fn addrs(&self) -> &[Addr] {
        &self.addrs
    }

    /// Number of loops.
    pub fn num_loops(&self) -> usize {
        self.loops.len()
    }

    /// Runs the loops until shutdown: loop 0 on the calling thread, the others on their own
    /// threads. `factory(i)` makes loop `i`'s handler on that loop's thread, so handlers need
    /// not be `Send`. Returns once every loop has stopped and every connection is closed.
    pub fn serve<H, F>(self, factory: F) -> Result<(), Error>
    where
        H: Handler,
        F: Fn(usize) -> H + Sync,
    {
        let Server {
            handle, cfg, loops, ..
        } = self;
        let factory = &factory;
        let mut errors = Vec::new();
        std::thread::scope(|scope| {
            let mut threads = Vec::new();
            let mut first = None;
            for (i, parts) in loops.into_iter().enumerate() {
                if i == 0 {
                    first = Some(parts);
                    continue;
                }
                let (h, c) = (handle.clone(), cfg.clone());
                let t = std::thread::Builder::new()
                    .name(format!("wireloop-{i}"))
                    .spawn_scoped(scope, move || run_loop(i, parts, h, c, factory));
                match t {
                    Ok(t) => threads.push((i, t)),
                    Err(e) => {
                        handle.shutdown();
                        errors.push(Error::io(e));
                    }
                }
            }
            if let Some(parts) = first {
                if let Err(e) = run_loop(0, parts, handle.clone(), cfg.clone(), factory) {
                    errors.push(e);
                }
            }
            for (i, t) in threads {
                match t.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push(Error::loop_panicked(i)),
                }
            }
        });
        handle.shared.stop_resolver();
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Shuts the whole server down if a loop unwinds, so `serve` never hangs on a dead loop.
struct ShutdownOnPanic(Handle);

impl Drop for ShutdownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.shutdown();
        }
    }
}

fn run_loop<H, F>(
    index: usize,
    parts: LoopParts,
    handle: Handle,
    cfg: Arc<Config>,
    factory: &F,
) -> Result<(), Error>
where
    H: Handler,
    F: Fn(usize) -> H + Sync,
{
    let _guard = ShutdownOnPanic(handle.clone());
    let shared = handle.shared.clone();
    crate::handle::enter_loop(&shared);
    let ctx = LoopCtx {
        index,
        handle: handle.clone(),
    };
    let handler = factory(index);
    let ev = EventLoop::new(
        handler,
        ctx,
        parts.poll,
        shared,
        cfg,
        parts.inbox,
        parts.listeners,
    )
    .map_err(Error::io);
    let shared = handle.shared.clone();
    let res = match ev {
        Ok(ev) => {
            shared
                .running_loops
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let r = ev.run().map_err(Error::io);
            shared
                .running_loops
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            r
        }
        Err(e) => Err(e),
    };
    if res.is_err() {
        handle.shutdown();
    }
    res
}
