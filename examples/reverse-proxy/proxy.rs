//! The proxy's state on one loop: the HTTP/1.1
//! [`App`](wireloop_middleware::http1::App) serving inbound requests, the
//! upstream side (dialed connections read with the HTTP/1.1 client side), the keep-alive
//! pool, upstream health, and the operations on other connections that the outer handler
//! carries out with its `Control` after each callback.
//!
//! Data path of one exchange (all on one loop):
//!
//! ```text
//! client ──Http1──▶ App::request/body ──(req bytes)──▶ Up.out ──wake──▶ upstream socket
//! client ◀─Response─ App::resume ◀──(head, body)── Client.stage ◀── up_data (ResponseReader)
//! ```
//!
//! Backpressure: a client and its upstream connection are `link`ed, so while one side's
//! output is above the loop's high-water mark the loop stops reading the other. Response
//! bytes wait in a bounded per-client stage; while it is full the upstream's input is not
//! consumed, and the client's `resume` wakes the upstream once it drained.
//!
//! This file holds the shared state (clients, upstream connections, queued operations)
//! and the timers; each side and concern has its own module:
//!
//! - [`client`]: the inbound side, the `App` and client connections' open/close;
//! - [`upstream`]: the dialed side, reading responses and staging them for the client;
//! - [`pool`]: health, balancing, idle pool, waiting clients, dialing, release;
//! - [`retry`]: another upstream after a failed connect, another connection when stale;
//! - [`headers`]: hop-by-hop removal and the forwarding headers, both directions;
//! - [`access_log`]: one line per exchange;
//! - [`settings`]: command-line settings and upstream URLs.

mod access_log;
mod client;
mod headers;
mod pool;
mod retry;
mod settings;
mod upstream;

use std::time::{Duration, Instant};

use wireloop::{Conn, ConnId, Control};
use wireloop_middleware::http1::Http1Conn;
use wireloop_middleware::http1::{Config, ResponseBody, ResponseReader};
use wireloop_middleware::TlsClient;

/// What each connection of the proxy's loop carries: the HTTP/1.1 adapter's state (used on
/// client connections; empty on upstream ones).
pub type PState = Http1Conn<()>;

use pool::Health;
pub use settings::{Balance, Settings, Upstream};

/// Something to do on another connection of the loop, carried out by the outer handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Dial `upstream` for `client`'s request (staged in the client's `req_stage`).
    Dial {
        client: ConnId,
        upstream: usize,
    },
    Wake(ConnId),
    Close(ConnId),
    Link(ConnId, ConnId),
    /// End the connection's link (a pooled upstream no longer serves its client).
    Unlink(ConnId),
}

/// What the client's current response is waiting for or carrying.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing yet.
    #[default]
    Pending,
    /// The upstream's head is staged.
    Head,
    /// Writing the body.
    Streaming,
    /// Answer with this error status (502, 504) if nothing was sent, else abort.
    Fail(u16),
    /// Done (finished, failed or upgraded).
    Done,
}

/// One inbound connection.
#[derive(Debug)]
struct Client {
    id: ConnId,
    ip: String,
    proto: &'static str,
    /// The upstream connection serving the current request.
    up: Option<ConnId>,
    upstream: usize,
    /// Other upstreams tried for the current request after failed connects.
    retries: u8,
    /// Request bytes staged while no upstream connection is there yet.
    req_stage: Vec<u8>,
    req_chunked: bool,
    req_done: bool,
    head_request: bool,
    /// The request asked for a protocol upgrade (only then is a 101 passed on).
    upgrade_req: bool,
    // The response, as handed over by the upstream side.
    answer: Answer,
    status: u16,
    /// `Name: value\r\n` lines to pass on.
    resp_head: Vec<u8>,
    resp_body: ResponseBody,
    resp_cl: Option<u64>,
    /// Body bytes (or tunnel bytes) waiting to be written to the client.
    stage: Vec<u8>,
    /// The upstream's response is complete (all of it is in `stage` or written).
    complete: bool,
    /// The upstream failed after the response head arrived: what arrived is passed on,
    /// then the response is cut off (`Response::abort`).
    cut_off: bool,
    /// The upstream left input unread because `stage` was full.
    up_paused: bool,
    // Tunnel (after a 101).
    tunnel: bool,
    tunnel_eof: bool,
    // Access log.
    method: String,
    target: String,
    started: Instant,
    sent: u64,
}

/// One dialed upstream connection.
#[derive(Debug)]
struct Up {
    id: ConnId,
    upstream: usize,
    client: Option<ConnId>,
    /// Request bytes to write (through the connection's own layer) when woken.
    out: Vec<u8>,
    connected: bool,
    reader: ResponseReader,
    /// The current request is completely staged.
    req_done: bool,
    /// Deadline for the response head.
    deadline: Option<Instant>,
    idle_since: Option<Instant>,
    tunnel: bool,
    /// Closing: not to be reused.
    broken: bool,
    /// Exchanges completed on this connection.
    served: u32,
    /// Any response byte arrived for the current request.
    answered: bool,
    /// A copy of the current request when it may be sent again on another connection
    /// (idempotent, no body) should this reused connection turn out to be stale.
    replay: Vec<u8>,
}

/// The proxy: the inbound side's HTTP application and the upstream side, one per loop.
pub struct Proxy {
    upstreams: Vec<Upstream>,
    s: Settings,
    cfg: Config,
    health: Vec<Health>,
    clients: Vec<Option<Client>>,
    ups: Vec<Option<Up>>,
    ops: Vec<Op>,
    next: usize,
    /// TLS towards each upstream (`None`: plain http).
    tls: Vec<Option<TlsClient>>,
    tls_index: Option<usize>,
    /// Scratch for building X-Forwarded-For / Via values.
    scratch: String,
    scratch2: String,
}

fn slot_get<T>(v: &mut [Option<T>], id: ConnId, key: impl Fn(&T) -> ConnId) -> Option<&mut T> {
    v.get_mut(id.slot())
        .and_then(Option::as_mut)
        .filter(|t| key(t) == id)
}

fn slot_put<T>(v: &mut Vec<Option<T>>, id: ConnId, t: T) {
    if v.len() <= id.slot() {
        v.resize_with(id.slot() + 1, || None);
    }
    v[id.slot()] = Some(t);
}

fn push_op(ops: &mut Vec<Op>, op: Op) {
    if !ops.contains(&op) {
        ops.push(op);
    }
}

/// Links `a` and `b`, one of which may be `conn` itself.
fn link(conn: &mut Conn<'_, PState>, a: ConnId, b: ConnId) {
    let me = conn.id();
    if a == me {
        conn.link(b);
    } else if b == me {
        conn.link(a);
    } else {
        conn.control().link(a, b);
    }
}

impl Proxy {
    /// A proxy for one loop; `tls` has the TLS client of each https upstream, `tls_index`
    /// is the TLS listener's index (for `X-Forwarded-Proto`).
    pub fn new(
        upstreams: Vec<Upstream>,
        s: Settings,
        cfg: Config,
        tls: Vec<Option<TlsClient>>,
        tls_index: Option<usize>,
    ) -> Proxy {
        let n = upstreams.len();
        Proxy {
            upstreams,
            s,
            cfg,
            health: (0..n).map(|_| Health::default()).collect(),
            clients: Vec::new(),
            ups: Vec::new(),
            ops: Vec::new(),
            next: 0,
            tls,
            tls_index,
            scratch: String::new(),
            scratch2: String::new(),
        }
    }

    /// Carries out the queued operations after a callback of `conn` (which the loop's
    /// `Control` cannot reach, so operations on it go through `conn` itself).
    pub fn run_ops(&mut self, conn: &mut Conn<'_, PState>) {
        let me = conn.id();
        let mut i = 0;
        while i < self.ops.len() {
            let op = self.ops[i];
            i += 1;
            match op {
                Op::Wake(id) if id == me => {
                    conn.handle().wake(id);
                }
                Op::Wake(id) => {
                    conn.control().wake(id);
                }
                Op::Close(id) if id == me => conn.close(),
                Op::Close(id) => {
                    conn.control().close(id);
                }
                Op::Link(a, b) => link(conn, a, b),
                Op::Unlink(id) if id == me => conn.unlink(),
                Op::Unlink(id) => {
                    conn.control().unlink(id);
                }
                Op::Dial { client, upstream } => {
                    if let Some(up) = self.dial(&mut conn.control(), client, upstream) {
                        link(conn, client, up);
                    }
                }
            }
        }
        self.ops.clear();
    }

    /// [`run_ops`](Proxy::run_ops) outside any connection's callback.
    pub fn run_ops_ctl(&mut self, ctl: &mut Control<'_, PState>) {
        let mut i = 0;
        while i < self.ops.len() {
            let op = self.ops[i];
            i += 1;
            match op {
                Op::Wake(id) => {
                    ctl.wake(id);
                }
                Op::Close(id) => {
                    ctl.close(id);
                }
                Op::Link(a, b) => {
                    ctl.link(a, b);
                }
                Op::Unlink(id) => {
                    ctl.unlink(id);
                }
                Op::Dial { client, upstream } => {
                    if let Some(up) = self.dial(ctl, client, upstream) {
                        ctl.link(client, up);
                    }
                }
            }
        }
        self.ops.clear();
    }

    /// Timeouts: response heads overdue (504), idle pooled connections expired.
    pub fn tick(&mut self, ctl: &mut Control<'_, PState>) -> Duration {
        let now = Instant::now();
        let mut overdue = Vec::new();
        for up in self.ups.iter_mut().flatten() {
            if let (Some(d), Some(cid)) = (up.deadline, up.client) {
                if now >= d && !up.reader.has_head() {
                    overdue.push((up.id, cid));
                }
            }
            if let Some(t) = up.idle_since {
                if now.duration_since(t) >= self.s.idle_timeout && !up.broken {
                    up.broken = true;
                    ctl.close(up.id);
                }
            }
        }
        for (up_id, cid) in overdue {
            log::warn!("upstream connection {up_id}: no response head in time");
            if let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) {
                up.broken = true;
            }
            self.fail_client(cid, 504);
            self.release(up_id, false);
        }
        self.run_ops_ctl(ctl);
        (self.s.upstream_timeout.min(self.s.idle_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_millis(250))
    }
}
