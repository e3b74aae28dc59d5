//! Layer-4 reverse proxy: every inbound connection is paired with a connection dialed to an
//! upstream on the same loop, and bytes flow both ways with coupled backpressure.
//!
//! ```text
//! cargo run --release --example tcp-proxy -- --listen 127.0.0.1:8081 --upstream 127.0.0.1:8090
//! ```

mod common;

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, ConnId, DialOptions, Error, Handler, Loops, Server};
use wireloop_middleware::{translate, TlsClient, TlsServer};
use wireloop_proxy::balance::hash_bytes;
use wireloop_proxy::{Balance, Group, Peer};

const USAGE: &str = "\
tcp-proxy: layer-4 reverse proxy (wireloop example)

USAGE:
    tcp-proxy --listen ADDR [--listen ADDR ...] --upstream ADDR [--upstream ADDR ...] [OPTIONS]

OPTIONS:
    --listen ADDR           address to accept on (repeatable): tcp://host:port, host:port,
                            tcp6://[::1]:port, unix:///path, ...?reuseport=true
    --upstream ADDR         upstream to forward to (repeatable); host names are resolved
                            off the loop; tcp://host:port, host:port, unix:///path
    --balance MODE          round-robin (default), least-connections, p2c-ewma (on
                            connect times) or hash (on the client's address)
    --loops N               number of loops (default 1; -1 = one per core)
    --max-connections N     refuse connections past N open at once, upstream ones
                            included (default: no limit)
    --connect-timeout SECS  time to resolve and connect to an upstream (default 5)
    --idle-timeout SECS     close a connection (and so its pair) with no byte either way
                            this long (default 600; 0 = never), nginx's proxy_timeout
    --send-timeout SECS     close a connection that takes none of the bytes queued for
                            it this long (default 60; 0 = never)
    --tls-listen ADDR       also accept TLS on ADDR (repeatable): TLS is terminated here
                            and plaintext goes upstream
    --tlscert PEM           certificate chain and key (one PEM file) for --tls-listen;
                            without it a self-signed one is generated at start-up
    --cert-out PATH         write the generated certificate here (for clients to trust)
    --upstream-tls          originate TLS to the upstreams (verified)
    --upstream-ca PEM       CA certificate(s) to verify upstreams with (default: the
                            webpki roots)
    --upstream-sni NAME     name sent and verified for upstream TLS (default localhost)
    -h, --help              print this help

Each client connection dials an upstream on the same loop. While one side cannot take
more bytes, the proxy stops reading the other, so memory stays bounded. A half-close on
one side is passed on to the other, and the other direction stays open: on a TLS side
the end of input is the peer's close_notify (or its FIN), and passing an end on sends
close_notify, then FIN (before the handshake is done, it waits for it). The pair closes
once both directions have ended; when one side fails, the other is closed after its
pending output is flushed. A pair where one side went quiet ends with the idle timeout,
a peer that stops reading with the send timeout. Logging goes to stderr
(WIRELOOP_LOG=debug for more).";

struct Args {
    listen: Vec<String>,
    tls_listen: Vec<String>,
    tlscert: Option<String>,
    cert_out: Option<String>,
    upstream_tls: bool,
    upstream_ca: Option<String>,
    upstream_sni: String,
    upstreams: Vec<String>,
    balance: Balance,
    loops: i64,
    max_connections: Option<usize>,
    connect_timeout: Duration,
    idle_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
}

/// `SECS` of an optional timeout: 0 is off.
fn timeout_arg(secs: f64, what: &str) -> Result<Option<Duration>, lexopt::Error> {
    if !(0.0..86_400.0).contains(&secs) {
        return Err(format!("{what} must be within [0, 86400) seconds").into());
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        listen: Vec::new(),
        tls_listen: Vec::new(),
        tlscert: None,
        cert_out: None,
        upstream_tls: false,
        upstream_ca: None,
        upstream_sni: "localhost".to_string(),
        upstreams: Vec::new(),
        balance: Balance::RoundRobin,
        loops: 1,
        max_connections: None,
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Some(Duration::from_secs(600)),
        send_timeout: Some(wireloop::DEFAULT_SEND_TIMEOUT),
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("listen") => a.listen.push(p.value()?.string()?),
            Long("upstream") => a.upstreams.push(p.value()?.string()?),
            Long("tls-listen") => a.tls_listen.push(p.value()?.string()?),
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("upstream-tls") => a.upstream_tls = true,
            Long("upstream-ca") => a.upstream_ca = Some(p.value()?.string()?),
            Long("upstream-sni") => a.upstream_sni = p.value()?.string()?,
            Long("balance") => a.balance = Balance::parse(&p.value()?.string()?)?,
            Long("loops") => a.loops = p.value()?.parse()?,
            Long("max-connections") => {
                let n: usize = p.value()?.parse()?;
                if n == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
                a.max_connections = Some(n);
            }
            Long("connect-timeout") => {
                let secs: f64 = p.value()?.parse()?;
                if !(secs > 0.0 && secs < 86_400.0) {
                    return Err("--connect-timeout must be within (0, 86400) seconds".into());
                }
                a.connect_timeout = Duration::from_secs_f64(secs);
            }
            Long("idle-timeout") => {
                a.idle_timeout = timeout_arg(p.value()?.parse()?, "--idle-timeout")?
            }
            Long("send-timeout") => {
                a.send_timeout = timeout_arg(p.value()?.parse()?, "--send-timeout")?
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if a.listen.is_empty() && a.tls_listen.is_empty() {
        return Err("at least one --listen or --tls-listen is needed".into());
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
    /// For an upstream connection: the index of its peer in the group, and when it was
    /// dialed (its connect time feeds p2c-ewma).
    upstream: Option<(usize, Instant)>,
}

/// One per loop: chooses upstreams (the proxy library's group and balancer) and wires
/// pairs together.
struct Proxy {
    group: Group,
    connect_timeout: Duration,
}

impl Proxy {
    /// The upstream for a client from `ip`: the group's balancer among the peers up.
    fn pick(&mut self, ip: &[u8], now: Instant) -> usize {
        self.group.pick(hash_bytes(ip), now, 0).unwrap_or(0)
    }
}

impl Handler for Proxy {
    type State = Side;

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        if conn.is_dialed() {
            // The upstream connected (and finished its TLS handshake, if it has TLS);
            // bytes the client sent meanwhile were queued on it and go out now.
            if let Some((u, dialed)) = conn.state.upstream {
                let now = conn.control().now();
                self.group
                    .observe(u, now.saturating_duration_since(dialed), now);
            }
            return Action::None;
        }
        let now = conn.control().now();
        let ip = conn.peer_addr().ok().and_then(|a| a.inet()).map(|a| a.ip());
        let u = match ip {
            Some(std::net::IpAddr::V4(v4)) => self.pick(&v4.octets(), now),
            Some(std::net::IpAddr::V6(v6)) => self.pick(&v6.octets(), now),
            None => self.pick(b"unix", now),
        };
        let opts = DialOptions::new().timeout(self.connect_timeout);
        let client = conn.id();
        let state = Side {
            peer: Some(client),
            upstream: Some((u, now)),
        };
        match conn.dial(&self.group.peers()[u].dial, opts, state) {
            Ok(up) => {
                let load = self.group.load_mut(u);
                load.busy += 1;
                load.conns += 1;
                conn.state.peer = Some(up);
                conn.link(up);
                Action::None
            }
            Err(e) => {
                log::warn!("cannot dial upstream {}: {e}", self.group.peers()[u].url);
                Action::Close
            }
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        // Plaintext either way: the reactor encodes what goes to a TLS peer with that
        // peer's session, and queues it until a dial has connected and shaken hands.
        let peer = conn.state.peer;
        match peer {
            // If the peer is gone, its `closed` has already asked to close this side.
            Some(peer) if conn.forward(peer) => Action::None,
            _ => Action::Close,
        }
    }

    fn eof(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        // Pass the half-close on (to a TLS peer: close_notify, then FIN); this side stays
        // open for what the peer still sends. The loop closes a connection once both of
        // its directions are finished.
        let peer = conn.state.peer;
        match peer {
            Some(peer) if conn.control().shutdown_write(peer) => Action::None,
            _ => Action::Close,
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, Side>, err: Option<Error>) {
        if let Some((u, _)) = conn.state.upstream {
            let load = self.group.load_mut(u);
            load.busy = load.busy.saturating_sub(1);
            load.conns = load.conns.saturating_sub(1);
            if let Some(e) = &err {
                if e.is_connect() {
                    log::warn!(
                        "upstream {} failed: {e}; closing its client",
                        self.group.peers()[u].url
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
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .idle_timeout(args.idle_timeout)
        .send_timeout(args.send_timeout);
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    for a in args.listen.iter().chain(&args.tls_listen) {
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
    let fail = |e: Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
    let tls_listeners: Vec<usize> =
        (args.listen.len()..args.listen.len() + args.tls_listen.len()).collect();
    let tls_server = if tls_listeners.is_empty() {
        None
    } else {
        let cert = common::tls_cert(args.tlscert.as_deref(), args.cert_out.as_deref())
            .unwrap_or_else(|e| fail(e));
        Some(TlsServer::builder(cert).build().unwrap_or_else(|e| fail(e)))
    };
    let tls_client = if args.upstream_tls {
        let mut b = TlsClient::builder().server_name(&args.upstream_sni);
        if let Some(ca) = &args.upstream_ca {
            let pem = std::fs::read(ca)
                .unwrap_or_else(|e| fail(Error::layer(format!("cannot read {ca}: {e}"))));
            b = b.root_ca_pem(&pem).unwrap_or_else(|e| fail(e));
        }
        Some(b.build().unwrap_or_else(|e| fail(e)))
    } else {
        None
    };
    let peers = args.upstreams.iter().map(|u| Peer::raw(u)).collect();
    let group = Group::new("upstreams", peers, args.balance.clone())
        .unwrap_or_else(|e| fail(Error::layer(e)));
    let res = server.serve(|_| {
        let proxy = Proxy {
            group: group.clone(),
            connect_timeout: args.connect_timeout,
        };
        // Layers stack: TLS towards upstreams (dialed connections) inside, TLS for the
        // TLS listeners outside; plaintext connections pass both untouched.
        let upstream_layer = tls_client.clone();
        let inner = translate(
            proxy,
            move |c| c.dialed && upstream_layer.is_some(),
            tls_client.clone(),
        );
        let tls_idx = tls_listeners.clone();
        translate(
            inner,
            move |c| !c.dialed && tls_idx.contains(&c.addr_index),
            tls_server.clone(),
        )
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
