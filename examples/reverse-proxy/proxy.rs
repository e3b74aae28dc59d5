//! The proxy's state on one loop: the HTTP/1.1 [`App`] serving inbound requests, the
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

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use wireloop::{Action, Conn, ConnId, Control, DialOptions, Error};
use wireloop_middleware::http1::{
    header_slots, write_chunk, write_last_chunk, write_request_head, App, BodyMode, ClientEvent,
    Config, Request, Response, ResponseBody, ResponseError, ResponseReader, UpgradeEvent,
};

use crate::DialMap;

/// Most response bytes staged for a client before the upstream's input is left unread.
const STAGE_CAP: usize = 256 * 1024;
/// Most request bytes staged for an upstream that is still connecting.
const CONNECTING_CAP: usize = 4 << 20;
/// Most `Connection` options honoured when stripping the headers they name.
const MAX_CONN_OPTIONS: usize = 16;

/// How requests are spread over upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// The one with the fewest requests in flight on this loop.
    LeastConnections,
}

/// Behaviour settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--balance`.
    pub balance: Balance,
    /// `--connect-timeout`: resolving and connecting to an upstream.
    pub connect_timeout: Duration,
    /// `--upstream-timeout`: from sending a request (or its last body byte) to the
    /// response head; then 504.
    pub upstream_timeout: Duration,
    /// `--idle-timeout`: how long a pooled connection may stay idle.
    pub idle_timeout: Duration,
    /// `--down-time`: how long an upstream is avoided after a failed connect.
    pub down_time: Duration,
    /// `--pool-size`: most connections per upstream on one loop.
    pub pool_size: usize,
    /// `--rewrite-host`: send the upstream's authority as `Host`.
    pub rewrite_host: bool,
    /// Access log lines on stdout (off with `--no-access-log`).
    pub access_log: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            down_time: Duration::from_secs(10),
            pool_size: 64,
            rewrite_host: false,
            access_log: true,
        }
    }
}

/// An upstream from `--upstream`.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// As given.
    pub url: String,
    /// `https`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// What to dial: `host:port`.
    pub dial: String,
    /// `Host` value for `--rewrite-host`: host, and the port unless it is the default.
    pub authority: String,
}

impl Upstream {
    /// Parses `http://host[:port][/]` or `https://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("the scheme must be http:// or https://".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err("expected scheme://host[:port] (no path)".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed [")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| "bad port")?,
                None if after.is_empty() => default_port,
                None => return Err("junk after ]".into()),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| "bad port")?),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err("missing host or port".into());
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == default_port {
            bracketed.clone()
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Upstream {
            url: url.to_string(),
            tls,
            dial: format!("{bracketed}:{port}"),
            host,
            authority,
        })
    }
}

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

/// How an upstream is doing on this loop.
#[derive(Debug, Default)]
struct Health {
    /// Avoid until then (a connect failed).
    down_until: Option<Instant>,
    /// Connections open or connecting.
    conns: usize,
    /// Requests in flight.
    busy: usize,
    /// Idle keep-alive connections, most recently used last.
    idle: Vec<ConnId>,
    /// Clients waiting for a connection (the pool is at its cap).
    waiting: VecDeque<ConnId>,
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
    map: DialMap,
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

/// Hop-by-hop header fields (RFC 9110 §7.6.1), removed in both directions.
fn hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || name
            .as_bytes()
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"proxy-"))
}

/// The options of `Connection` fields: the headers they name are hop-by-hop too.
fn connection_options<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    out: &mut [&'a [u8]; MAX_CONN_OPTIONS],
) -> usize {
    let mut n = 0;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            for t in value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if !t.is_empty() && n < MAX_CONN_OPTIONS {
                    out[n] = t;
                    n += 1;
                }
            }
        }
    }
    n
}

/// One access log line on stdout.
fn access_log(s: &Settings, upstreams: &[Upstream], c: &Client, status: u16) {
    if s.access_log {
        println!(
            "{} \"{} {}\" {} {} {} {}ms",
            c.ip,
            c.method,
            c.target,
            status,
            c.sent,
            upstreams[c.upstream].url,
            c.started.elapsed().as_millis()
        );
    }
}

fn push_op(ops: &mut Vec<Op>, op: Op) {
    if !ops.contains(&op) {
        ops.push(op);
    }
}

/// Links `a` and `b`, one of which may be `conn` itself.
fn link(conn: &mut Conn<'_, ()>, a: ConnId, b: ConnId) {
    let me = conn.id();
    if a == me {
        conn.link(b);
    } else if b == me {
        conn.link(a);
    } else {
        conn.control().link(a, b);
    }
}

fn named(options: &[&[u8]], name: &str) -> bool {
    options
        .iter()
        .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
}

impl Proxy {
    /// A proxy for one loop; `map` is shared with the upstream TLS layer, `tls_index`
    /// is the TLS listener's index (for `X-Forwarded-Proto`).
    pub fn new(
        upstreams: Vec<Upstream>,
        s: Settings,
        cfg: Config,
        map: DialMap,
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
            map,
            tls_index,
            scratch: String::new(),
            scratch2: String::new(),
        }
    }

    /// Carries out the queued operations after a callback of `conn` (which the loop's
    /// `Control` cannot reach, so operations on it go through `conn` itself).
    pub fn run_ops(&mut self, conn: &mut Conn<'_, ()>) {
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
    pub fn run_ops_ctl(&mut self, ctl: &mut Control<'_, ()>) {
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

    fn dial(&mut self, ctl: &mut Control<'_, ()>, client: ConnId, u: usize) -> Option<ConnId> {
        let opts = DialOptions::new().timeout(self.s.connect_timeout);
        let dialed = ctl.dial(&self.upstreams[u].dial, opts, ());
        let c = slot_get(&mut self.clients, client, |c| c.id)?;
        match dialed {
            Ok(id) => {
                {
                    let mut m = self.map.borrow_mut();
                    if m.len() <= id.slot() {
                        m.resize(id.slot() + 1, None);
                    }
                    m[id.slot()] = Some((id, u));
                }
                c.up = Some(id);
                let up = Up {
                    id,
                    upstream: u,
                    client: Some(client),
                    out: std::mem::take(&mut c.req_stage),
                    connected: false,
                    reader: ResponseReader::new(c.head_request),
                    req_done: c.req_done,
                    // Set once connected (the dial has its own timeout).
                    deadline: None,
                    idle_since: None,
                    tunnel: false,
                    broken: false,
                    served: 0,
                    answered: false,
                    replay: Vec::new(),
                };
                self.health[u].conns += 1;
                slot_put(&mut self.ups, id, up);
                Some(id)
            }
            Err(e) => {
                c.answer = Answer::Fail(502);
                log::warn!("cannot dial {}: {e}", self.upstreams[u].url);
                self.mark_down(u);
                ctl.wake(client);
                None
            }
        }
    }

    fn mark_down(&mut self, u: usize) {
        let h = &mut self.health[u];
        if h.down_until.is_none_or(|t| t <= Instant::now()) {
            log::warn!(
                "upstream {} marked down for {:?}",
                self.upstreams[u].url,
                self.s.down_time
            );
        }
        h.down_until = Some(Instant::now() + self.s.down_time);
    }

    /// Chooses an upstream: among those not marked down (all, if every one is down).
    fn pick(&mut self) -> usize {
        let n = self.upstreams.len();
        let now = Instant::now();
        let up = |h: &Health| h.down_until.is_none_or(|t| t <= now);
        let any_up = self.health.iter().any(up);
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        let candidates = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !any_up || up(&self.health[i]));
        match self.s.balance {
            Balance::RoundRobin => candidates.take(1).next().unwrap_or(start),
            Balance::LeastConnections => candidates
                .min_by_key(|&i| self.health[i].busy)
                .unwrap_or(start),
        }
    }

    /// A client connection opened (before the HTTP adapter sees it).
    pub fn client_opened(&mut self, conn: &mut Conn<'_, ()>) {
        let id = conn.id();
        let ip = conn
            .peer_addr()
            .ok()
            .and_then(|a| a.inet())
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unix".into());
        let proto = if Some(conn.addr_index()) == self.tls_index {
            "https"
        } else {
            "http"
        };
        slot_put(
            &mut self.clients,
            id,
            Client {
                id,
                ip,
                proto,
                up: None,
                upstream: 0,
                retries: 0,
                req_stage: Vec::new(),
                req_chunked: false,
                req_done: false,
                head_request: false,
                upgrade_req: false,
                answer: Answer::Done,
                status: 0,
                resp_head: Vec::new(),
                resp_body: ResponseBody::None,
                resp_cl: None,
                stage: Vec::new(),
                complete: false,
                up_paused: false,
                tunnel: false,
                tunnel_eof: false,
                method: String::new(),
                target: String::new(),
                started: Instant::now(),
                sent: 0,
            },
        );
    }

    /// A client connection closed: its upstream connection, if in the middle of an
    /// exchange, is closed too (it cannot be reused).
    pub fn client_closed(&mut self, conn: &mut Conn<'_, ()>) {
        let id = conn.id();
        let Some(c) = self
            .clients
            .get_mut(id.slot())
            .and_then(|c| c.take_if(|c| c.id == id))
        else {
            return;
        };
        if matches!(c.answer, Answer::Pending | Answer::Head | Answer::Streaming) {
            self.access_log(&c, if c.status == 0 { 499 } else { c.status });
        }
        for h in &mut self.health {
            h.waiting.retain(|w| *w != id);
        }
        if let Some(up) = c.up {
            if let Some(u) = slot_get(&mut self.ups, up, |u| u.id) {
                u.client = None;
                u.broken = true;
                push_op(&mut self.ops, Op::Close(up));
            }
        }
    }

    fn access_log(&self, c: &Client, status: u16) {
        access_log(&self.s, &self.upstreams, c, status);
    }
    /// Builds the upstream request head for `req` into `out`.
    fn request_head(
        &mut self,
        req: &Request<'_>,
        c_ip: &str,
        proto: &str,
        u: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
        let n_opts = connection_options(req.headers(), &mut opts);
        let opts = &opts[..n_opts];
        let upgrade = req.wants_upgrade();
        // X-Forwarded-For and Via, appended to what came in.
        let xff = &mut self.scratch;
        xff.clear();
        let via = &mut self.scratch2;
        via.clear();
        for (name, value) in req.headers() {
            if name.eq_ignore_ascii_case("x-forwarded-for") || name.eq_ignore_ascii_case("via") {
                let dst = if name.len() == 3 {
                    &mut *via
                } else {
                    &mut *xff
                };
                if let Ok(v) = std::str::from_utf8(value) {
                    if !dst.is_empty() {
                        dst.push_str(", ");
                    }
                    dst.push_str(v);
                }
            }
        }
        if !xff.is_empty() {
            xff.push_str(", ");
        }
        xff.push_str(c_ip);
        if !via.is_empty() {
            via.push_str(", ");
        }
        let _ = write!(via, "1.{} wireloop", req.version_minor());
        let authority = self.upstreams[u].authority.as_str();
        let rewrite = self.s.rewrite_host;
        let headers = req
            .headers()
            .filter(move |&(name, _)| {
                !(hop_by_hop(name)
                    || named(opts, name)
                    || name.eq_ignore_ascii_case("x-forwarded-for")
                    || name.eq_ignore_ascii_case("x-forwarded-proto")
                    || name.eq_ignore_ascii_case("via")
                    || name.eq_ignore_ascii_case("expect")
                    || (rewrite && name.eq_ignore_ascii_case("host")))
                    || (upgrade && name.eq_ignore_ascii_case("upgrade"))
            })
            .chain(
                [
                    ("Host", authority.as_bytes()),
                    ("X-Forwarded-For", self.scratch.as_bytes()),
                    ("X-Forwarded-Proto", proto.as_bytes()),
                    ("Via", self.scratch2.as_bytes()),
                    ("Connection", if upgrade { &b"Upgrade"[..] } else { b"" }),
                ]
                .into_iter()
                .filter(move |(n, v)| {
                    !v.is_empty() && (*n != "Host" || rewrite || req.header("host").is_none())
                }),
            );
        let length = req.body_length();
        write_request_head(out, req.method(), req.target(), headers, length).is_ok()
    }

    /// Finds or makes an upstream connection for client `id`'s request (staged in
    /// `req_stage`).
    fn assign(&mut self, id: ConnId) {
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        let u = c.upstream;
        let head_request = c.head_request;
        self.health[u].busy += 1;
        // An idle pooled connection, most recent first.
        while let Some(up_id) = self.health[u].idle.pop() {
            let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) else {
                continue;
            };
            if up.broken {
                continue;
            }
            let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
            up.client = Some(id);
            up.idle_since = None;
            up.reader.reset(head_request);
            up.answered = false;
            up.replay.clear();
            if c.req_done && matches!(c.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
                up.replay.extend_from_slice(&c.req_stage);
            }
            up.out.append(&mut c.req_stage);
            up.req_done = c.req_done;
            up.deadline = Some(Instant::now() + self.s.upstream_timeout);
            c.up = Some(up_id);
            push_op(&mut self.ops, Op::Link(id, up_id));
            push_op(&mut self.ops, Op::Wake(up_id));
            return;
        }
        if self.health[u].conns >= self.s.pool_size {
            self.health[u].waiting.push_back(id);
            return;
        }
        push_op(
            &mut self.ops,
            Op::Dial {
                client: id,
                upstream: u,
            },
        );
    }

    /// The upstream connection `up_id` finished its exchange: back to the pool (or
    /// closed), and handed to a waiting client if there is one.
    fn release(&mut self, up_id: ConnId, reusable: bool) {
        let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) else {
            return;
        };
        let u = up.upstream;
        if let Some(cid) = up.client.take() {
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
            if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
                if c.up == Some(up_id) {
                    c.up = None;
                }
            }
        }
        up.deadline = None;
        if up.out.capacity() > 64 * 1024 {
            up.out = Vec::new();
        }
        if reusable && !up.broken && up.out.is_empty() {
            // Its former client must not be held back by (or hold back) its next one.
            push_op(&mut self.ops, Op::Unlink(up_id));
            up.idle_since = Some(Instant::now());
            self.health[u].idle.push(up_id);
            if let Some(w) = self.health[u].waiting.pop_front() {
                self.health[u].busy = self.health[u].busy.saturating_sub(1);
                self.assign(w);
            }
        } else {
            up.broken = true;
            push_op(&mut self.ops, Op::Close(up_id));
        }
    }

    /// The upstream side failed for client `cid`: 502/504 if nothing was sent yet, else
    /// the client connection is closed without completing the response.
    fn fail_client(&mut self, cid: ConnId, status: u16) {
        if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
            if c.tunnel {
                c.tunnel_eof = true;
            } else if !matches!(c.answer, Answer::Done) && !c.complete {
                // (A response already received whole is delivered whatever happens to
                // the connection afterwards.)
                c.answer = Answer::Fail(status);
            }
            c.up = None;
            push_op(&mut self.ops, Op::Wake(cid));
        }
    }

    // ----- upstream side ----------------------------------------------------------------

    /// An upstream connection connected: send what was staged for it.
    pub fn up_opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some(up) = slot_get(&mut self.ups, conn.id(), |u| u.id) else {
            return Action::Close;
        };
        up.connected = true;
        up.deadline = Some(Instant::now() + self.s.upstream_timeout);
        let _ = conn.set_nodelay(true);
        if !up.out.is_empty() {
            conn.write(&up.out);
            up.out.clear();
        }
        if up.client.is_none() {
            // Its client left while it connected.
            return Action::Close;
        }
        Action::None
    }

    /// Request bytes were staged for an upstream connection (or its client drained):
    /// write them, and read on where the response stopped.
    pub fn up_woken(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some(up) = slot_get(&mut self.ups, conn.id(), |u| u.id) else {
            return Action::Close;
        };
        if !up.out.is_empty() {
            conn.write(&up.out);
            up.out.clear();
        }
        self.up_data(conn)
    }

    /// Response bytes from an upstream: parse, stage for the client, wake it.
    pub fn up_data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let Some(up) = slot_get(&mut self.ups, id, |u| u.id) else {
            return Action::Close;
        };
        if conn.input().is_empty() {
            return Action::None;
        }
        up.answered = true;
        let Some(cid) = up.client else {
            // Bytes from an idle connection: it cannot be trusted any more.
            up.broken = true;
            log::debug!(
                "upstream {} sent bytes while idle",
                self.upstreams[up.upstream].url
            );
            return Action::Close;
        };
        let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) else {
            up.broken = true;
            return Action::Close;
        };
        if up.tunnel {
            if c.stage.len() >= STAGE_CAP {
                c.up_paused = true;
            } else {
                c.stage.extend_from_slice(conn.input());
                let n = conn.input().len();
                conn.consume(n);
                push_op(&mut self.ops, Op::Wake(cid));
            }
            return Action::None;
        }
        let mut woke = false;
        let mut end = false;
        let mut error = None;
        loop {
            let input = conn.input();
            let mut slots = header_slots();
            let (used, ev) = match up.reader.read(input, &mut slots, &self.cfg) {
                Ok(r) => r,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            let mut stop = false;
            match ev {
                ClientEvent::Interim(_) => {}
                ClientEvent::Head(h) if h.is_upgrade() && !c.upgrade_req => {
                    error = Some(ResponseError::Malformed("101 to a request without Upgrade"));
                    break;
                }
                ClientEvent::Head(h) => {
                    c.status = h.status();
                    c.resp_head.clear();
                    let mut opts = [&b""[..]; MAX_CONN_OPTIONS];
                    let n_opts = connection_options(h.headers(), &mut opts);
                    for (name, value) in h.headers() {
                        let keep_upgrade = h.is_upgrade() && name.eq_ignore_ascii_case("upgrade");
                        if (hop_by_hop(name)
                            || named(&opts[..n_opts], name)
                            || name.eq_ignore_ascii_case("content-length"))
                            && !keep_upgrade
                        {
                            continue;
                        }
                        c.resp_head.extend_from_slice(name.as_bytes());
                        c.resp_head.extend_from_slice(b": ");
                        c.resp_head.extend_from_slice(value);
                        c.resp_head.extend_from_slice(b"\r\n");
                    }
                    c.resp_head.extend_from_slice(b"Via: 1.1 wireloop\r\n");
                    c.resp_body = h.body();
                    c.resp_cl = h
                        .header("content-length")
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.split(',').next())
                        .and_then(|v| v.trim().parse().ok());
                    if h.is_upgrade() {
                        c.tunnel = true;
                        up.tunnel = true;
                        up.deadline = None;
                    }
                    up.deadline = None;
                    c.answer = Answer::Head;
                    woke = true;
                    stop = h.is_upgrade();
                }
                ClientEvent::Data(d) => {
                    if c.stage.len() >= STAGE_CAP {
                        c.up_paused = true;
                        woke = true;
                        break;
                    }
                    c.stage.extend_from_slice(d);
                    woke = true;
                }
                ClientEvent::End => {
                    c.complete = true;
                    woke = true;
                    end = true;
                    stop = true;
                }
                ClientEvent::NeedMore => stop = true,
            }
            conn.consume(used);
            if stop {
                break;
            }
        }
        if up.tunnel && !conn.input().is_empty() {
            c.stage.extend_from_slice(conn.input());
            let n = conn.input().len();
            conn.consume(n);
        }
        if woke || error.is_some() {
            push_op(&mut self.ops, Op::Wake(cid));
        }
        if let Some(e) = error {
            log::warn!("upstream {}: {e}", self.upstreams[up.upstream].url);
            up.broken = true;
            self.fail_client(cid, 502);
            self.release(id, false);
            return Action::Close;
        }
        if end {
            up.served += 1;
            let reusable = up.reader.keep_alive() && up.req_done && conn.input().is_empty();
            self.release(id, reusable);
            if !reusable {
                return Action::Close;
            }
        }
        Action::None
    }

    /// The upstream closed its side: a body delimited by the close is complete, anything
    /// else unfinished is a failure.
    pub fn up_eof(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let _ = self.up_data(conn);
        let Some(up) = slot_get(&mut self.ups, id, |u| u.id) else {
            return Action::Close;
        };
        up.broken = true;
        let Some(cid) = up.client else {
            return Action::Close;
        };
        if up.tunnel {
            self.fail_client(cid, 502);
            return Action::Close;
        }
        if up.served > 0 && !up.answered && !up.replay.is_empty() {
            let replay = std::mem::take(&mut up.replay);
            if self.replay(cid, id, replay) {
                return Action::Close;
            }
        }
        let up = slot_get(&mut self.ups, id, |u| u.id).expect("upstream");
        match up.reader.eof() {
            Ok(()) => {
                if let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) {
                    c.complete = true;
                }
                push_op(&mut self.ops, Op::Wake(cid));
                self.release(id, false);
            }
            Err(e) => {
                log::warn!("upstream {}: {e}", self.upstreams[up.upstream].url);
                self.fail_client(cid, 502);
                self.release(id, false);
            }
        }
        Action::Close
    }

    /// An upstream connection is gone: off the pool; its client (if mid-exchange) gets
    /// 502/504 or is closed; a failed connect marks the upstream down.
    pub fn up_closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let id = conn.id();
        let Some(up) = self
            .ups
            .get_mut(id.slot())
            .and_then(|u| u.take_if(|u| u.id == id))
        else {
            return;
        };
        if let Some(m) = self.map.borrow_mut().get_mut(id.slot()) {
            *m = None;
        }
        let u = up.upstream;
        let h = &mut self.health[u];
        h.conns = h.conns.saturating_sub(1);
        h.idle.retain(|i| *i != id);
        let connect_failed = err
            .as_ref()
            .is_some_and(|e| e.is_connect() || !up.connected);
        if connect_failed {
            log::warn!(
                "upstream {}: {}",
                self.upstreams[u].url,
                err.as_ref()
                    .map_or("closed before connecting".to_string(), |e| e.to_string())
            );
            self.mark_down(u);
        } else if let Some(e) = &err {
            log::debug!("upstream connection {id} closed: {e}");
        }
        if let Some(cid) = up.client {
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
            if connect_failed && !up.connected && self.retry(cid, u, up.out) {
                return;
            }
            if !connect_failed
                && up.served > 0
                && !up.answered
                && !up.replay.is_empty()
                && self.replay_detached(cid, up.replay)
            {
                return;
            }
            let status = match (&err, connect_failed) {
                (_, true) => 502,
                (Some(e), _) if e.is_timeout() => 504,
                _ => 502,
            };
            self.fail_client(cid, status);
        }
        // A slot freed under the cap: dial for the next waiting client.
        if self.health[u].conns < self.s.pool_size {
            if let Some(w) = self.health[u].waiting.pop_front() {
                push_op(
                    &mut self.ops,
                    Op::Dial {
                        client: w,
                        upstream: u,
                    },
                );
            }
        }
    }

    /// Client `cid`'s upstream `failed` could not be reached and nothing was sent (`out`
    /// holds everything staged): try another upstream that is not marked down, at most
    /// once per upstream. `false` if there is none to try.
    fn retry(&mut self, cid: ConnId, failed: usize, mut out: Vec<u8>) -> bool {
        let n = self.upstreams.len();
        match slot_get(&mut self.clients, cid, |c| c.id) {
            Some(c) if c.answer == Answer::Pending && (c.retries as usize) + 1 < n => {}
            _ => return false,
        }
        let u = self.pick();
        let now = Instant::now();
        if u == failed || self.health[u].down_until.is_some_and(|t| t > now) {
            return false;
        }
        let c = slot_get(&mut self.clients, cid, |c| c.id).expect("client");
        log::info!(
            "retrying {} {} on {}",
            c.method,
            c.target,
            self.upstreams[u].url
        );
        c.retries += 1;
        c.upstream = u;
        c.up = None;
        out.append(&mut c.req_stage);
        c.req_stage = out;
        self.assign(cid);
        true
    }

    /// Reused connection `up_id` ended before any byte of its response: it was stale (the
    /// server closed it as the request went out). Send the request (`replay`) again on
    /// another connection, at most twice per request.
    fn replay(&mut self, cid: ConnId, up_id: ConnId, replay: Vec<u8>) -> bool {
        if !matches!(
            slot_get(&mut self.clients, cid, |c| c.id),
            Some(c) if c.answer == Answer::Pending && c.retries < 2
        ) {
            return false;
        }
        if let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) {
            let u = up.upstream;
            up.client = None;
            up.broken = true;
            self.health[u].busy = self.health[u].busy.saturating_sub(1);
        }
        self.replay_detached(cid, replay)
    }

    fn replay_detached(&mut self, cid: ConnId, mut replay: Vec<u8>) -> bool {
        let Some(c) = slot_get(&mut self.clients, cid, |c| c.id) else {
            return false;
        };
        if c.answer != Answer::Pending || c.retries >= 2 {
            return false;
        }
        log::info!(
            "stale upstream connection: sending {} {} again",
            c.method,
            c.target
        );
        c.retries += 1;
        c.up = None;
        replay.append(&mut c.req_stage);
        c.req_stage = replay;
        c.req_done = true;
        // The caller took the request off its connection's count; `assign` counts it again.
        self.assign(cid);
        true
    }

    /// Timeouts: response heads overdue (504), idle pooled connections expired.
    pub fn tick(&mut self, ctl: &mut Control<'_, ()>) -> Duration {
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

    /// After any client-side callback: tunnel bytes from the upstream go straight out.
    pub fn flush_tunnel(&mut self, conn: &mut Conn<'_, ()>) {
        let Some(c) = slot_get(&mut self.clients, conn.id(), |c| c.id) else {
            return;
        };
        if c.tunnel && c.answer == Answer::Done && !c.stage.is_empty() {
            conn.write(&c.stage);
            c.stage.clear();
            if c.up_paused {
                c.up_paused = false;
                if let Some(up) = c.up {
                    push_op(&mut self.ops, Op::Wake(up));
                }
            }
        }
    }

    /// Stages request body bytes for client `id`'s upstream.
    fn send_up(&mut self, id: ConnId, data: &[u8], last: bool) {
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        let chunked = c.req_chunked;
        let target = match c.up.and_then(|u| slot_get(&mut self.ups, u, |u| u.id)) {
            Some(up) if up.client == Some(id) => {
                up.deadline = Some(Instant::now() + self.s.upstream_timeout);
                if last {
                    up.req_done = true;
                }
                if !up.connected && up.out.len() > CONNECTING_CAP {
                    log::warn!("request body backed up while connecting; giving up");
                    up.broken = true;
                    let up_id = up.id;
                    self.fail_client(id, 502);
                    self.release(up_id, false);
                    return;
                }
                let up_id = up.id;
                push_op(&mut self.ops, Op::Wake(up_id));
                &mut slot_get(&mut self.ups, up_id, |u| u.id).expect("up").out
            }
            // No connection yet (dial queued or waiting for the pool), or the exchange
            // already ended (an early answer): stage or drop.
            _ => {
                if c.answer != Answer::Pending || c.req_stage.len() > CONNECTING_CAP {
                    return;
                }
                if last {
                    c.req_done = true;
                }
                &mut c.req_stage
            }
        };
        if chunked {
            write_chunk(target, data);
            if last {
                write_last_chunk(target);
            }
        } else {
            target.extend_from_slice(data);
        }
    }
}

impl App for Proxy {
    type State = ();

    fn body_mode(&mut self, _req: &Request<'_>, _: &mut ()) -> BodyMode {
        BodyMode::Stream
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
        let Some(id) = res.conn_id() else {
            res.status(500).body(b"no connection\n");
            return;
        };
        let u = self.pick();
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            res.status(500).body(b"unknown connection\n");
            return;
        };
        c.method.clear();
        c.method.push_str(req.method());
        c.target.clear();
        c.target.push_str(req.target());
        c.started = Instant::now();
        c.sent = 0;
        c.status = 0;
        c.upstream = u;
        c.retries = 0;
        c.answer = Answer::Pending;
        c.complete = false;
        c.up_paused = false;
        c.stage.clear();
        c.resp_head.clear();
        c.req_chunked = req.is_chunked();
        c.req_done = !req.has_body();
        c.head_request = req.is_head();
        c.upgrade_req = req.wants_upgrade();
        let ip = std::mem::take(&mut c.ip);
        let proto = c.proto;
        let mut head = std::mem::take(&mut c.req_stage);
        head.clear();
        let ok = self.request_head(req, &ip, proto, u, &mut head);
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        c.ip = ip;
        c.req_stage = head;
        if !ok {
            c.answer = Answer::Done;
            c.status = 400;
            access_log(
                &self.s,
                &self.upstreams,
                slot_get(&mut self.clients, id, |c| c.id).expect("client"),
                400,
            );
            res.status(400).close().body(b"bad request\n");
            return;
        }
        self.assign(id);
    }

    fn body(&mut self, data: &[u8], _res: &mut Response<'_>, _: &mut ()) {
        // `Response::conn_id` is the client; stage for its upstream.
        if let Some(id) = _res.conn_id() {
            self.send_up(id, data, false);
        }
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut ()) {
        if let Some(id) = res.conn_id() {
            let has_body = slot_get(&mut self.clients, id, |c| c.id).is_some_and(|c| !c.req_done);
            if has_body {
                self.send_up(id, &[], true);
            }
        }
        self.resume(res, &mut ());
    }

    fn resume(&mut self, res: &mut Response<'_>, _: &mut ()) {
        let Some(id) = res.conn_id() else {
            return;
        };
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        match c.answer {
            Answer::Pending | Answer::Done => return,
            Answer::Fail(status) => {
                c.answer = Answer::Done;
                if res.is_started() {
                    log::debug!("client {id}: upstream failed mid-response; closing");
                    res.abort();
                } else {
                    c.status = status;
                    res.status(status)
                        .header("Content-Type", "text/plain")
                        .close()
                        .body(if status == 504 {
                            b"upstream timed out\n"
                        } else {
                            b"upstream failed\n"
                        });
                }
                let up = c.up.take();
                let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
                let st = if c.status == 0 { status } else { c.status };
                access_log(
                    &self.s,
                    &self.upstreams,
                    slot_get(&mut self.clients, id, |c| c.id).expect("client"),
                    st,
                );
                if let Some(up) = up {
                    self.release(up, false);
                }
                return;
            }
            Answer::Head => {
                res.status(c.status);
                let head = std::mem::take(&mut c.resp_head);
                for line in head.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if let Some(i) = line.iter().position(|&b| b == b':') {
                        if let Ok(name) = std::str::from_utf8(&line[..i]) {
                            res.header(name, line[i + 1..].trim_ascii());
                        }
                    }
                }
                c.resp_head = head;
                if c.status == 101 {
                    if !res.upgrade() {
                        res.abort();
                    }
                    c.answer = Answer::Done;
                    let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
                    access_log(&self.s, &self.upstreams, c, 101);
                    return;
                }
                match (c.resp_body, c.head_request) {
                    (ResponseBody::Length(n), _) => res.start_sized(n),
                    (ResponseBody::Chunked | ResponseBody::UntilClose, _) => res.start_chunked(),
                    (ResponseBody::None, true) => match c.resp_cl {
                        Some(n) => res.start_sized(n),
                        None => res.start_chunked(),
                    },
                    (ResponseBody::None, false) => res.body(b""),
                }
                c.answer = Answer::Streaming;
            }
            Answer::Streaming => {}
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if !c.stage.is_empty() {
            c.sent += c.stage.len() as u64;
            res.write(&c.stage);
            c.stage.clear();
            if c.up_paused {
                c.up_paused = false;
                if let Some(up) = c.up {
                    push_op(&mut self.ops, Op::Wake(up));
                }
            }
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if c.complete && c.stage.is_empty() {
            res.finish();
            c.answer = Answer::Done;
            // An idle keep-alive client keeps no large buffers.
            if c.stage.capacity() > 64 * 1024 {
                c.stage = Vec::new();
            }
            if c.req_stage.capacity() > 64 * 1024 {
                c.req_stage = Vec::new();
            }
            let status = c.status;
            let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
            access_log(&self.s, &self.upstreams, c, status);
        }
    }

    fn upgraded(&mut self, conn: &mut Conn<'_, ()>, event: UpgradeEvent, _: &mut ()) -> Action {
        let id = conn.id();
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return Action::Close;
        };
        let Some(up_id) = c.up else {
            // The upstream side is gone: finish writing, then close.
            if !c.stage.is_empty() {
                conn.write(&c.stage);
                c.stage.clear();
            }
            return Action::Close;
        };
        match event {
            UpgradeEvent::Data => {
                if let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) {
                    up.out.extend_from_slice(conn.input());
                    let n = conn.input().len();
                    conn.consume(n);
                    conn.control().wake(up_id);
                }
            }
            UpgradeEvent::Eof => {
                self.release(up_id, false);
                return Action::Close;
            }
            _ => {}
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if !c.stage.is_empty() {
            conn.write(&c.stage);
            c.stage.clear();
        }
        if c.tunnel_eof {
            return Action::Close;
        }
        if c.up_paused {
            c.up_paused = false;
            conn.control().wake(up_id);
        }
        Action::None
    }
}
