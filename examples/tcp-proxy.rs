//! Layer-4 reverse proxy: every inbound connection is paired with a connection dialed to an
//! upstream on the same loop, and bytes flow both ways with coupled backpressure.
//!
//! ```text
//! cargo run --release --example tcp-proxy -- --listen 127.0.0.1:9000 --upstream 127.0.0.1:8090
//! ```
//!
//! TLS can also pass through untouched, routed by the server name of its ClientHello
//! (`--sni-listen`, `--sni-route`).

mod common;

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, ConnId, Control, DialOptions, Error, Handler, Loops, Server};
use wireloop_middleware::proxy_protocol::{ProxyHeader, ProxyProtocol, SendProxyHeader, Version};
use wireloop_middleware::{translate, TlsClient, TlsServer};
use wireloop_proxy::balance::hash_bytes;
use wireloop_proxy::health::{report_connect_check, run_connect_checks};
use wireloop_proxy::sni::{peek_sni, Hello, SniRoutes};
use wireloop_proxy::{Balance, Group, HealthCheck, Peer};

/// Where the proxy accepts when no `--listen`, `--tls-listen` or `--sni-listen` is given.
const DEFAULT_LISTEN: &str = "tcp://0.0.0.0:9000";

const USAGE: &str = "\
tcp-proxy: layer-4 reverse proxy (wireloop example)

USAGE:
    tcp-proxy [--listen ADDR ...] --upstream ADDR [--upstream ADDR ...] [OPTIONS]
    tcp-proxy --sni-listen ADDR --sni-route NAME=ADDR[,ADDR...] [...] [OPTIONS]

OPTIONS:
    --listen ADDR           address to accept on (repeatable): tcp://host:port, host:port,
                            tcp6://[::1]:port, unix:///path, ...?reuseport=true
                            (default tcp://0.0.0.0:9000 when no --listen, --tls-listen
                            or --sni-listen is given)
    --upstream ADDR         upstream to forward to (repeatable); host names are resolved
                            off the loop; tcp://host:port, host:port, unix:///path
    --balance MODE          round-robin (default), least-connections, p2c-ewma (on
                            connect times) or hash (on the client's address)
    --loops N               number of loops (default 1; -1 = one per core)
    --max-connections N     refuse connections past N open at once, upstream ones
                            included (default: no limit)
    --connect-timeout SECS  time to resolve and connect to an upstream (default 5)
    --health-interval SECS  check every upstream actively this often: a connection (and,
                            with --upstream-tls, a TLS handshake) from the proxy (default:
                            no active checks)
    --health-timeout SECS   a check not connected within this fails (default 2)
    --health-rise N         passed checks in a row that bring an upstream back (default 2)
    --health-fall N         failed checks in a row that take an upstream out (default 3)
    --max-fails N           failed connects in a row after which an upstream is avoided
                            for --down-time (default 0: never)
    --down-time SECS        how long such an upstream is avoided (default 10)
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
    --sni-listen ADDR       also accept on ADDR (repeatable) and pass TLS through without
                            terminating it, to the group --sni-route names for the server
                            name of the client's ClientHello
    --sni-route NAME=ADDRS  route server name NAME (exact, *.suffix, or * for any other
                            and for hellos without a name) to a group of comma-separated
                            upstreams (repeatable); names no route matches go to the
                            --upstream group if there is one, else are closed
    --hello-timeout SECS    longest wait for a complete ClientHello on --sni-listen
                            (default 10)
    --proxy-protocol-from NETS
                            every listener takes a PROXY protocol header (v1 or v2) from
                            these comma-separated networks (10.0.0.0/8,::1) and refuses
                            connections from anywhere else
    --send-proxy-protocol V send upstreams a PROXY protocol header, v1 or v2, naming the
                            client (the one a received header named, if any)
    -h, --help              print this help

Each client connection dials an upstream on the same loop. While one side cannot take
more bytes, the proxy stops reading the other, so memory stays bounded. A half-close on
one side is passed on to the other, and the other direction stays open: on a TLS side
the end of input is the peer's close_notify (or its FIN), and passing an end on sends
close_notify, then FIN (before the handshake is done, it waits for it). The pair closes
once both directions have ended. A client arriving while no upstream of its group is
healthy is closed at once. When one side is reset or stops reading (the send
timeout), the other is reset too, its pending output dropped; when one side goes quiet
(the idle timeout) or its upstream cannot be reached, the other is closed after its
pending output is flushed. Logging goes to stderr
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
    sni_listen: Vec<String>,
    /// (pattern, upstreams) per --sni-route.
    sni_routes: Vec<(String, Vec<String>)>,
    hello_timeout: Duration,
    proxy_protocol: Option<ProxyProtocol>,
    send_proxy: Option<Version>,
    balance: Balance,
    loops: i64,
    max_connections: Option<usize>,
    connect_timeout: Duration,
    idle_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    /// Active checks (`--health-interval` given).
    health: Option<HealthCheck>,
    health_timeout: Duration,
    rise: u32,
    fall: u32,
    max_fails: u32,
    down_time: Duration,
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
        sni_listen: Vec::new(),
        sni_routes: Vec::new(),
        hello_timeout: Duration::from_secs(10),
        proxy_protocol: None,
        send_proxy: None,
        balance: Balance::RoundRobin,
        loops: 1,
        max_connections: None,
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Some(Duration::from_secs(600)),
        send_timeout: Some(wireloop::DEFAULT_SEND_TIMEOUT),
        health: None,
        health_timeout: Duration::from_secs(2),
        rise: 2,
        fall: 3,
        max_fails: 0,
        down_time: Duration::from_secs(10),
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
            Long("sni-listen") => a.sni_listen.push(p.value()?.string()?),
            Long("sni-route") => a.sni_routes.push(sni_route(&p.value()?.string()?)?),
            Long("proxy-protocol-from") => a.proxy_protocol = Some(common::proxy_protocol(&mut p)?),
            Long("send-proxy-protocol") => {
                a.send_proxy = Some(common::send_proxy_protocol(&mut p)?)
            }
            Long("hello-timeout") => {
                a.hello_timeout =
                    timeout_arg(common::value(&mut p, "--hello-timeout")?, "--hello-timeout")?
                        .ok_or("--hello-timeout must be above 0")?
            }
            Long("balance") => {
                let mode = p.value()?.string()?;
                a.balance = Balance::parse(&mode).map_err(|_| {
                    format!(
                        "--balance: invalid value {mode:?} (round-robin, least-connections, \
                         p2c-ewma or hash)"
                    )
                })?
            }
            Long("loops") => a.loops = common::loops(&mut p)?,
            Long("max-connections") => a.max_connections = Some(common::max_connections(&mut p)?),
            Long("connect-timeout") => {
                let secs: f64 = common::value(&mut p, "--connect-timeout")?;
                if !(secs > 0.0 && secs < 86_400.0) {
                    return Err("--connect-timeout must be within (0, 86400) seconds".into());
                }
                a.connect_timeout = Duration::from_secs_f64(secs);
            }
            Long("health-interval") => {
                let every = common::value(&mut p, "--health-interval")?;
                let every = timeout_arg(every, "--health-interval")?
                    .ok_or("--health-interval must be above 0")?;
                a.health = Some(HealthCheck {
                    interval: every,
                    ..HealthCheck::tcp()
                });
            }
            Long("health-timeout") => {
                let t = common::value(&mut p, "--health-timeout")?;
                a.health_timeout = timeout_arg(t, "--health-timeout")?
                    .ok_or("--health-timeout must be above 0")?;
            }
            Long("health-rise") => a.rise = count(&mut p, "--health-rise")?,
            Long("health-fall") => a.fall = count(&mut p, "--health-fall")?,
            Long("max-fails") => a.max_fails = common::value(&mut p, "--max-fails")?,
            Long("down-time") => {
                let t = common::value(&mut p, "--down-time")?;
                a.down_time =
                    timeout_arg(t, "--down-time")?.ok_or("--down-time must be above 0")?;
            }
            Long("idle-timeout") => {
                a.idle_timeout =
                    timeout_arg(common::value(&mut p, "--idle-timeout")?, "--idle-timeout")?
            }
            Long("send-timeout") => {
                a.send_timeout =
                    timeout_arg(common::value(&mut p, "--send-timeout")?, "--send-timeout")?
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if let Some(h) = &mut a.health {
        (h.timeout, h.rise, h.fall) = (a.health_timeout, a.rise, a.fall);
    }
    if a.listen.is_empty() && a.tls_listen.is_empty() && a.sni_listen.is_empty() {
        a.listen.push(DEFAULT_LISTEN.to_string());
    }
    let only_sni = a.listen.is_empty() && a.tls_listen.is_empty() && !a.sni_routes.is_empty();
    if a.upstreams.is_empty() && !only_sni {
        return Err("at least one --upstream is needed".into());
    }
    if a.upstream_tls && !a.sni_listen.is_empty() {
        return Err(
            "--upstream-tls cannot be used with --sni-listen (its TLS passes through)".into(),
        );
    }
    if !a.sni_routes.is_empty() && a.sni_listen.is_empty() {
        return Err("--sni-route needs an --sni-listen".into());
    }
    if a.tls_listen.is_empty() && (a.tlscert.is_some() || a.cert_out.is_some()) {
        return Err("--tlscert and --cert-out need a --tls-listen".into());
    }
    Ok(a)
}

/// A count of at least 1.
fn count(p: &mut lexopt::Parser, what: &str) -> Result<u32, lexopt::Error> {
    let n: u32 = common::value(p, what)?;
    if n == 0 {
        return Err(format!("{what} must be at least 1").into());
    }
    Ok(n)
}

/// `NAME=ADDR[,ADDR...]` of `--sni-route`.
fn sni_route(s: &str) -> Result<(String, Vec<String>), lexopt::Error> {
    let bad = || format!("--sni-route: invalid value {s:?} (expected NAME=ADDR[,ADDR...])");
    let (name, addrs) = s.split_once('=').ok_or_else(bad)?;
    let addrs: Vec<String> = addrs.split(',').map(|a| a.trim().to_string()).collect();
    if name.is_empty() || addrs.iter().any(|a| a.is_empty()) {
        return Err(bad().into());
    }
    SniRoutes::new()
        .add(name, ())
        .map_err(|e| format!("--sni-route: invalid value {s:?} ({e})"))?;
    Ok((name.to_string(), addrs))
}

/// Which side of a pair a connection is, and its partner.
#[derive(Default)]
struct Side {
    /// The other connection of the pair.
    peer: Option<ConnId>,
    /// For an upstream connection: its group, its peer in the group, and when it was
    /// dialed (its connect time feeds p2c-ewma).
    upstream: Option<(usize, usize, Instant)>,
    /// A client on an --sni-listen listener whose ClientHello is still arriving.
    hello: bool,
    /// A health check's connection to peer `.1` of group `.0`.
    probe: Option<(usize, usize)>,
}

/// One per loop: chooses upstreams (the proxy library's groups and balancers) and wires
/// pairs together.
struct Proxy {
    /// The --upstream group first (if any), then one per --sni-route.
    groups: Vec<Group>,
    /// The group of connections that are not routed by name, or whose name no route has.
    default_group: Option<usize>,
    /// Server name to group, for --sni-listen listeners.
    sni: SniRoutes<usize>,
    /// Listener indexes of --sni-listen.
    sni_listeners: Vec<usize>,
    hello_timeout: Duration,
    connect_timeout: Duration,
    /// The PROXY protocol version upstreams are sent a header of.
    send_proxy: Option<Version>,
    /// Passive health: failed connects in a row (0: never) that mark an upstream down
    /// for `down_time`.
    max_fails: u32,
    down_time: Duration,
}

impl Proxy {
    /// Dials an upstream of group `g` for client `conn` (the group's balancer among the
    /// peers up, on the client's address) and links the pair.
    fn pair(&mut self, conn: &mut Conn<'_, Side>, g: usize) -> Action {
        let now = conn.control().now();
        let ip = conn.peer_addr().ok().and_then(|a| a.inet()).map(|a| a.ip());
        let key = match ip {
            Some(std::net::IpAddr::V4(v4)) => hash_bytes(&v4.octets()),
            Some(std::net::IpAddr::V6(v6)) => hash_bytes(&v6.octets()),
            None => hash_bytes(b"unix"),
        };
        let group = &mut self.groups[g];
        let Some(u) = group.pick(key, now, 0) else {
            log::warn!(
                "no healthy upstream in group {:?}: closing the client",
                group.name()
            );
            return Action::Close;
        };
        let mut opts = DialOptions::new().timeout(self.connect_timeout);
        if let Some(version) = self.send_proxy {
            // The client as a received header named it, else as the socket has it.
            let h = conn.layer::<ProxyHeader>();
            let source = h
                .and_then(|h| h.source())
                .or_else(|| conn.peer_addr().ok().and_then(|a| a.inet()));
            let dest = h
                .and_then(|h| h.dest())
                .or_else(|| conn.local_addr().ok().and_then(|a| a.inet()));
            if let (Some(source), Some(dest)) = (source, dest) {
                opts = opts.layer(SendProxyHeader::new(version, source, dest));
            }
        }
        let state = Side {
            peer: Some(conn.id()),
            upstream: Some((g, u, now)),
            ..Side::default()
        };
        match conn.dial(&group.peers()[u].dial, opts, state) {
            Ok(up) => {
                let load = group.load_mut(u);
                load.busy += 1;
                load.conns += 1;
                conn.state.peer = Some(up);
                conn.link(up);
                Action::None
            }
            Err(e) => {
                log::warn!("cannot dial upstream {}: {e}", group.peers()[u].url);
                Action::Close
            }
        }
    }

    /// A client on an --sni-listen listener sent (part of) its ClientHello: once it is
    /// complete, the pair is made by its server name and the hello goes out unchanged.
    fn route_hello(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let name = match peek_sni(conn.input()) {
            Ok(Hello::Partial) => return Action::None,
            Ok(Hello::Complete(name)) => name,
            Err(e) => {
                log::info!("closing a client on an SNI listener: {e}");
                return Action::Close;
            }
        };
        let Some(g) = self
            .sni
            .route(name.as_deref())
            .copied()
            .or(self.default_group)
        else {
            log::info!("no route for server name {name:?}: closing the client");
            return Action::Close;
        };
        conn.state.hello = false;
        // Back to the server's setting (this proxy sets no read timeout: the idle and send
        // timeouts bound a pair).
        conn.set_read_timeout(None);
        match self.pair(conn, g) {
            Action::None => self.data(conn),
            a => a,
        }
    }
}

impl Handler for Proxy {
    type State = Side;

    fn tick(&mut self, ctl: &mut Control<'_, Side>) -> (Option<Duration>, Action) {
        let next = run_connect_checks(
            &mut self.groups,
            ctl,
            |_, _| DialOptions::new(),
            |g, p| Side {
                probe: Some((g, p)),
                ..Side::default()
            },
        );
        (next, Action::None)
    }

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        if let Some((g, p)) = conn.state.probe {
            // Connected (and shaken hands): the check passed.
            let (me, now, id) = (conn.control().loop_index(), conn.control().now(), conn.id());
            report_connect_check(&mut self.groups[g], me, now, p, id, true, "connected");
            return Action::Close;
        }
        if conn.is_dialed() {
            // The upstream connected (and finished its TLS handshake, if it has TLS);
            // bytes the client sent meanwhile were queued on it and go out now.
            if let Some((g, u, dialed)) = conn.state.upstream {
                let now = conn.control().now();
                self.groups[g].observe(u, now.saturating_duration_since(dialed), now);
                self.groups[g].record_success(u);
            }
            return Action::None;
        }
        if self.sni_listeners.contains(&conn.addr_index()) {
            // Nothing is dialed before the ClientHello names the server.
            conn.state.hello = true;
            conn.set_read_timeout(Some(self.hello_timeout));
            return Action::None;
        }
        match self.default_group {
            Some(g) => self.pair(conn, g),
            None => Action::Close,
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        if conn.state.hello {
            return self.route_hello(conn);
        }
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
        if let Some((g, p)) = conn.state.probe {
            // Before `opened` (else this reports nothing): the check failed.
            let why = err.map_or_else(|| "closed".to_string(), |e| e.to_string());
            let (me, now, id) = (conn.control().loop_index(), conn.control().now(), conn.id());
            report_connect_check(&mut self.groups[g], me, now, p, id, false, &why);
            return;
        }
        if let Some((g, u, _)) = conn.state.upstream {
            let group = &mut self.groups[g];
            let load = group.load_mut(u);
            load.busy = load.busy.saturating_sub(1);
            load.conns = load.conns.saturating_sub(1);
            if let Some(e) = &err {
                if e.is_connect() {
                    log::warn!(
                        "upstream {} failed: {e}; closing its client",
                        group.peers()[u].url
                    );
                    let now = conn.control().now();
                    if self.max_fails > 0
                        && group.record_failure(u, now, self.max_fails, self.down_time)
                    {
                        log::warn!(
                            "upstream {} marked down for {:?}",
                            group.peers()[u].url,
                            self.down_time
                        );
                    }
                } else {
                    log::debug!("upstream connection closed: {e}");
                }
            }
        } else if let Some(e) = &err {
            log::debug!("client connection closed: {e}");
        }
        if let Some(peer) = conn.state.peer.take() {
            match err {
                // A broken stream is passed on as one: the peer is reset, and what it
                // still sends is not read and thrown away for the close linger.
                Some(e) if e.is_io() || e.is_send_timeout() => {
                    conn.control().abort(peer);
                }
                // Flushes what is queued for the peer, then closes it.
                _ => {
                    conn.control().close(peer);
                }
            }
        }
    }
}

/// `g` with the active check, if there is one.
fn checked(g: Group, check: &Option<HealthCheck>) -> Result<Group, String> {
    match check {
        Some(c) => g.with_health_check(c.clone()),
        None => Ok(g),
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
    for a in args
        .listen
        .iter()
        .chain(&args.tls_listen)
        .chain(&args.sni_listen)
    {
        builder = builder
            .listen(a)
            .unwrap_or_else(|e| common::usage_error(e, USAGE));
    }
    let all_upstreams = args.sni_routes.iter().flat_map(|(_, u)| u);
    for u in args.upstreams.iter().chain(all_upstreams) {
        if let Err(e) = wireloop::Addr::parse(u) {
            common::usage_error(e, USAGE);
        }
    }
    let server = builder.build().unwrap_or_else(|e| {
        log::error!("{e}");
        std::process::exit(1)
    });
    common::shutdown_on_signal(server.handle());
    let first_sni = args.listen.len() + args.tls_listen.len();
    for (i, a) in server.local_addrs().iter().enumerate() {
        let to = if i >= first_sni {
            "TLS passed through by server name".to_string()
        } else {
            args.upstreams.join(", ")
        };
        log::info!(
            "tcp-proxy serving {a} -> {to} on {} loop(s)",
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
    // The --upstream group first (if any), then one per --sni-route.
    let mut groups = Vec::new();
    let mut default_group = None;
    if !args.upstreams.is_empty() {
        let peers = args.upstreams.iter().map(|u| Peer::raw(u)).collect();
        let g = Group::new("upstreams", peers, args.balance.clone())
            .and_then(|g| checked(g, &args.health))
            .unwrap_or_else(|e| fail(Error::layer(e)));
        default_group = Some(groups.len());
        groups.push(g);
    }
    let mut sni = SniRoutes::new();
    for (name, upstreams) in &args.sni_routes {
        let peers = upstreams.iter().map(|u| Peer::raw(u)).collect();
        let g = Group::new(name, peers, args.balance.clone())
            .and_then(|g| checked(g, &args.health))
            .unwrap_or_else(|e| fail(Error::layer(e)));
        sni.add(name, groups.len()).expect("checked by parse_args");
        groups.push(g);
    }
    let sni_listeners: Vec<usize> = (first_sni..first_sni + args.sni_listen.len()).collect();
    let proxy_protocol = args.proxy_protocol.clone();
    let res = server.serve(|_| {
        let proxy = Proxy {
            groups: groups.clone(),
            default_group,
            sni: sni.clone(),
            sni_listeners: sni_listeners.clone(),
            hello_timeout: args.hello_timeout,
            connect_timeout: args.connect_timeout,
            send_proxy: args.send_proxy,
            max_fails: args.max_fails,
            down_time: args.down_time,
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
        let tls = translate(
            inner,
            move |c| !c.dialed && tls_idx.contains(&c.addr_index),
            tls_server.clone(),
        );
        // A PROXY protocol header comes first, below TLS (and before a ClientHello that
        // --sni-listen routes on).
        let accept_pp = proxy_protocol.is_some();
        translate(tls, move |c| !c.dialed && accept_pp, proxy_protocol.clone())
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
