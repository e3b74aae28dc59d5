//! Layer-4 reverse proxy: every inbound connection is paired with a connection dialed to an
//! upstream on the same loop, and bytes flow both ways with coupled backpressure.
//!
//! ```text
//! cargo run --release --example tcp-proxy -- --listen 127.0.0.1:8081 --upstream 127.0.0.1:8090
//! ```

mod common;

use std::time::Duration;

use wireloop::{Action, Conn, ConnId, DialOptions, Error, Handler, Loops, Server};

const USAGE: &str = "\
tcp-proxy: layer-4 reverse proxy (wireloop example)

USAGE:
    tcp-proxy --listen ADDR [--listen ADDR ...] --upstream ADDR [--upstream ADDR ...] [OPTIONS]

OPTIONS:
    --listen ADDR           address to accept on (repeatable): tcp://host:port, host:port,
                            tcp6://[::1]:port, unix:///path, ...?reuseport=true
    --upstream ADDR         upstream to forward to (repeatable); host names are resolved
                            off the loop; tcp://host:port, host:port, unix:///path
    --balance MODE          round-robin (default) or least-connections over the upstreams
    --loops N               number of loops (default 1; -1 = one per core)
    --connect-timeout SECS  time to resolve and connect to an upstream (default 5)
    -h, --help              print this help

Each client connection dials an upstream on the same loop. While one side cannot take
more bytes, the proxy stops reading the other, so memory stays bounded. A half-close on
one side is passed on to the other; when one side fails, the other is closed after its
pending output is flushed. Logging goes to stderr (WIRELOOP_LOG=debug for more).";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Balance {
    RoundRobin,
    LeastConnections,
}

struct Args {
    listen: Vec<String>,
    upstreams: Vec<String>,
    balance: Balance,
    loops: i64,
    connect_timeout: Duration,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        listen: Vec::new(),
        upstreams: Vec::new(),
        balance: Balance::RoundRobin,
        loops: 1,
        connect_timeout: Duration::from_secs(5),
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("listen") => a.listen.push(p.value()?.string()?),
            Long("upstream") => a.upstreams.push(p.value()?.string()?),
            Long("balance") => {
                a.balance = match p.value()?.string()?.as_str() {
                    "round-robin" => Balance::RoundRobin,
                    "least-connections" => Balance::LeastConnections,
                    other => return Err(format!("unknown balance mode {other:?}").into()),
                }
            }
            Long("loops") => a.loops = p.value()?.parse()?,
            Long("connect-timeout") => {
                let secs: f64 = p.value()?.parse()?;
                if !(secs > 0.0 && secs < 86_400.0) {
                    return Err("--connect-timeout must be within (0, 86400) seconds".into());
                }
                a.connect_timeout = Duration::from_secs_f64(secs);
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if a.listen.is_empty() {
        return Err("at least one --listen is needed".into());
    }
    if a.upstreams.is_empty() {
        return Err("at least one --upstream is needed".into());
    }
    Ok(a)
}

/// Which side of a pair a connection is, and its partner.
#[derive(Default)]
struct Side {
    /// The other connection of the pair.
    peer: Option<ConnId>,
    /// For an upstream connection: the index of its upstream.
    upstream: Option<usize>,
}

/// One per loop: chooses upstreams and wires pairs together.
struct Proxy {
    upstreams: Vec<String>,
    balance: Balance,
    connect_timeout: Duration,
    next: usize,
    /// Open connections per upstream, on this loop.
    active: Vec<usize>,
}

impl Proxy {
    fn pick(&mut self) -> usize {
        let n = self.upstreams.len();
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        match self.balance {
            Balance::RoundRobin => start,
            Balance::LeastConnections => (0..n)
                .map(|k| (start + k) % n)
                .min_by_key(|&i| self.active[i])
                .unwrap_or(start),
        }
    }
}

impl Handler for Proxy {
    type State = Side;

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        if conn.is_dialed() {
            // The upstream connected; bytes the client sent meanwhile were queued on it.
            return Action::None;
        }
        let u = self.pick();
        let opts = DialOptions::new().timeout(self.connect_timeout);
        let client = conn.id();
        let state = Side {
            peer: Some(client),
            upstream: Some(u),
        };
        match conn.dial(&self.upstreams[u], opts, state) {
            Ok(up) => {
                self.active[u] += 1;
                conn.state.peer = Some(up);
                conn.link(up);
                Action::None
            }
            Err(e) => {
                log::warn!("cannot dial upstream {}: {e}", self.upstreams[u]);
                Action::Close
            }
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let peer = conn.state.peer;
        match peer {
            // If the peer is gone, its `closed` has already asked to close this side.
            Some(peer) if conn.forward(peer) => Action::None,
            _ => Action::Close,
        }
    }

    fn eof(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        // Pass the half-close on; this side stays open for what the peer still sends. The
        // loop closes a connection once both of its directions are finished.
        let peer = conn.state.peer;
        match peer {
            Some(peer) if conn.control().shutdown_write(peer) => Action::None,
            _ => Action::Close,
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, Side>, err: Option<Error>) {
        if let Some(u) = conn.state.upstream {
            self.active[u] = self.active[u].saturating_sub(1);
            if let Some(e) = &err {
                if e.is_connect() {
                    log::warn!(
                        "upstream {} failed: {e}; closing its client",
                        self.upstreams[u]
                    );
                } else {
                    log::debug!("upstream connection closed: {e}");
                }
            }
        } else if let Some(e) = &err {
            log::debug!("client connection closed: {e}");
        }
        if let Some(peer) = conn.state.peer.take() {
            // Flushes what is queued for the peer, then closes it.
            conn.control().close(peer);
        }
    }
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let mut builder = Server::builder().loops(Loops::from_count(args.loops));
    for a in &args.listen {
        builder = builder
            .listen(a)
            .unwrap_or_else(|e| common::usage_error(e, USAGE));
    }
    for u in &args.upstreams {
        if let Err(e) = wireloop::Addr::parse(u) {
            common::usage_error(e, USAGE);
        }
    }
    let server = builder.build().unwrap_or_else(|e| {
        log::error!("{e}");
        std::process::exit(1)
    });
    common::shutdown_on_signal(server.handle());
    for a in server.local_addrs() {
        log::info!(
            "tcp-proxy serving {a} -> {} on {} loop(s)",
            args.upstreams.join(", "),
            server.num_loops()
        );
    }
    let n = args.upstreams.len();
    let res = server.serve(|_| Proxy {
        upstreams: args.upstreams.clone(),
        balance: args.balance,
        connect_timeout: args.connect_timeout,
        next: 0,
        active: vec![0; n],
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
