//! HTTP reverse proxy: inbound connections (plain and TLS) are served by the HTTP
//! adapter (HTTP/1.1, and HTTP/2 by ALPN `h2` or prior knowledge), requests go to
//! upstreams (plain or TLS) over pooled keep-alive HTTP/1.1 connections, or multiplexed
//! on HTTP/2 ones (`--upstream-protocol h2`), dialed from the same loop; bodies stream
//! both ways with backpressure, trailers pass (gRPC), upgrades (WebSocket) become byte
//! tunnels.
//!
//! All of that is the `wireloop-proxy` library; this file is the command line and
//! `main`, `policy.rs` the routing and access log policy, `config.rs` the `--config FILE`
//! mode (several groups, routes, health checks), `reload.rs` its reloads (SIGHUP,
//! `POST /reload`) and `admin.rs` the admin listener.
//!
//! ```text
//! cargo run --release --example reverse-proxy -- --port 8081 --tlsport 8444 \
//!     --upstream http://127.0.0.1:9001 --upstream http://127.0.0.1:9002
//! cargo run --release --example reverse-proxy -- --config proxy.toml
//! curl http://127.0.0.1:8081/
//! ```

mod admin;
#[path = "../common/mod.rs"]
mod common;
mod config;
mod policy;
mod reload;

use std::time::Duration;

use wireloop::{Error, Loops, Server};
use wireloop_middleware::proxy_protocol::{ProxyProtocol, Version};
use wireloop_middleware::{translate, TlsClient};
use wireloop_proxy::access_log::{AccessLog, Format};
use wireloop_proxy::{
    Balance, Group, HttpProxy, Limits, Metrics, Peer, Settings, UpstreamProtocol,
};

use admin::{Admin, View};

use policy::Logging;

const USAGE: &str = "\
reverse-proxy: HTTP/1.1 and HTTP/2 reverse proxy with upstream pools (wireloop example)

USAGE:
    reverse-proxy --upstream URL [--upstream URL ...] [OPTIONS]
    reverse-proxy --config FILE [--loops N] [--no-access-log] [--cert-out PATH] ...

    --config FILE            listeners, upstream groups (balancing, health checks),
                             routes by host and path prefix and settings from a TOML
                             file (see wireloop_proxy::config); --port, --tlsport,
                             --upstream and the timeouts of the command line are then
                             not used. SIGHUP (or POST /reload on the admin
                             listener) reads the file and its certificates again:
                             new connections get the new configuration, requests in
                             flight finish on the old one, a bad file is refused
                             and the running configuration stays

OPTIONS:
    --port N                 plain HTTP port on 0.0.0.0 (default 8081; 0 = off)
    --tlsport N              HTTPS port on 0.0.0.0 (default 8444; 0 = off)
    --listen-host ADDR       address to listen on (default 0.0.0.0)
    --tlscert PEM            certificate chain and key (one PEM file) for --tlsport;
                             without it a self-signed one is generated at start-up
    --no-resumption          no TLS session tickets or cache on --tlsport: every
                             handshake is a full one (for measuring)
    --cert-out PATH          write the generated certificate here (curl --cacert PATH)
    --upstream URL           http://host:port or https://host:port (repeatable); host
                             names are resolved off the loop when dialing
    --upstream-ca PEM        CA certificate(s) for https upstreams (default: webpki roots)
    --balance MODE           round-robin (default) or least-connections
    --loops N                number of loops (default 1; -1 = one per core)
    --max-connections N      refuse connections past N open at once, upstream ones
                             included (default: no limit)
    --connect-timeout SECS   time to resolve and connect to an upstream (default 5)
    --upstream-timeout SECS  time from sending a request to the response head (default 60)
    --read-timeout SECS      longest pause between two reads of an upstream's response
                             (default 60); then the client's response is cut off
    --admin ADDR             serve GET /metrics (Prometheus text), /healthz and (with
                             --config) POST /reload on ADDR (127.0.0.1:9901, say) from
                             a thread of their own
    --rate-per-ip N          requests a second per client address (a token bucket of one
                             second's worth); past it 429 with Retry-After (default: none)
    --connections-per-ip N   connections open at once per client address; more are
                             closed at once (default: none)
    --total-timeout SECS     longest a whole request and its response may take
                             (default: no limit); then 504, or the response is cut off
    --send-timeout SECS      close a client or upstream that takes none of the bytes
                             queued for it this long (default 60)
    --pool-size N            most connections per upstream per loop (default 64)
    --idle-timeout SECS      close pooled upstream connections idle this long (default 30)
    --down-time SECS         after a failed connect or a response head that never came,
                             avoid that upstream this long (default 10; while every
                             upstream is down, requests are answered 503 at once)
    --rewrite-host           send the upstream's host:port as Host (default: keep the
                             client's Host)
    --access-log FORMAT      access log lines on stdout: combined (default; Apache's
                             combined format, then upstream peer, upstream and total
                             seconds), json (one object per line) or off; written by a
                             thread of their own, never blocking the loops
    --no-access-log          the same as --access-log off
    --proxy-protocol-from NETS
                             every listener takes a PROXY protocol header (v1 or v2)
                             from these comma-separated networks (10.0.0.0/8,::1) and
                             refuses connections from anywhere else; the client address
                             it names is the one logged and sent in X-Forwarded-For
    --send-proxy-protocol V  start every upstream connection with a PROXY protocol
                             header, v1 or v2, naming the client (such connections
                             serve that client only: they are not pooled for others)
    --upstream-protocol P    http1 (default) or h2: HTTP/2 to the upstreams (ALPN h2 to
                             https ones, prior knowledge to plain ones), many requests
                             at once on each connection
    -h, --help               print this help

Hop-by-hop headers are removed, X-Forwarded-For, X-Forwarded-Proto and Via are added.
Upstream connect failure answers 502, no response head within --upstream-timeout 504;
an upstream failing or stalling mid-response closes the client connection. A client that
closes its side while its request is in flight aborts the upstream exchange. One access log line per
request goes to stdout (see --access-log). Logging goes to stderr (WIRELOOP_LOG=debug for more).";

struct Args {
    proxy_protocol: Option<ProxyProtocol>,
    send_proxy: Option<Version>,
    upstream_protocol: UpstreamProtocol,
    admin: Option<String>,
    port: u16,
    tlsport: u16,
    host: String,
    tlscert: Option<String>,
    cert_out: Option<String>,
    resumption: bool,
    upstreams: Vec<Peer>,
    upstream_ca: Option<String>,
    balance: Balance,
    settings: Settings,
    send_timeout: Duration,
    access_log: Option<Format>,
    loops: i64,
    config: Option<String>,
    max_connections: Option<usize>,
}

fn secs(v: f64, what: &str) -> Result<Duration, lexopt::Error> {
    if !(v > 0.0 && v < 86_400.0) {
        return Err(format!("{what} must be within (0, 86400) seconds").into());
    }
    Ok(Duration::from_secs_f64(v))
}

/// A count of at least 1.
fn positive(n: u32, what: &str) -> Result<u32, lexopt::Error> {
    if n == 0 {
        return Err(format!("{what}: invalid value \"0\" (at least 1)").into());
    }
    Ok(n)
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        proxy_protocol: None,
        send_proxy: None,
        upstream_protocol: UpstreamProtocol::Http1,
        admin: None,
        port: 8081,
        tlsport: 8444,
        host: "0.0.0.0".into(),
        tlscert: None,
        cert_out: None,
        resumption: true,
        upstreams: Vec::new(),
        upstream_ca: None,
        balance: Balance::RoundRobin,
        settings: Settings::default(),
        send_timeout: Duration::from_secs(60),
        access_log: Some(Format::Combined),
        loops: 1,
        config: None,
        max_connections: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => a.port = common::port(&mut p, "--port")?,
            Long("tlsport") => a.tlsport = common::port(&mut p, "--tlsport")?,
            Long("listen-host") => a.host = p.value()?.string()?,
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("no-resumption") => a.resumption = false,
            Long("upstream") => {
                let url = p.value()?.string()?;
                a.upstreams.push(
                    Peer::parse(&url)
                        .map_err(|e| format!("--upstream: invalid value {url:?} ({e})"))?,
                );
            }
            Long("upstream-ca") => a.upstream_ca = Some(p.value()?.string()?),
            Long("balance") => {
                a.balance = match p.value()?.string()?.as_str() {
                    "round-robin" => Balance::RoundRobin,
                    "least-connections" => Balance::LeastConn,
                    other => {
                        return Err(format!(
                            "--balance: invalid value {other:?} (round-robin or least-connections)"
                        )
                        .into())
                    }
                }
            }
            Long("loops") => a.loops = common::loops(&mut p)?,
            Long("max-connections") => a.max_connections = Some(common::max_connections(&mut p)?),
            Long("connect-timeout") => {
                a.settings.connect_timeout = secs(
                    common::value(&mut p, "--connect-timeout")?,
                    "--connect-timeout",
                )?
            }
            Long("upstream-timeout") => {
                a.settings.first_byte_timeout = secs(
                    common::value(&mut p, "--upstream-timeout")?,
                    "--upstream-timeout",
                )?
            }
            Long("read-timeout") => {
                a.settings.read_timeout =
                    secs(common::value(&mut p, "--read-timeout")?, "--read-timeout")?
            }
            Long("admin") => a.admin = Some(p.value()?.string()?),
            Long("rate-per-ip") => {
                let n = positive(common::value(&mut p, "--rate-per-ip")?, "--rate-per-ip")?;
                a.settings.limits = Limits::new(Some(n), a.settings.limits.connections_per_ip);
            }
            Long("connections-per-ip") => {
                let flag = "--connections-per-ip";
                let n = positive(common::value(&mut p, flag)?, flag)?;
                a.settings.limits =
                    Limits::new(a.settings.limits.requests_per_second_per_ip, Some(n));
            }
            Long("total-timeout") => {
                a.settings.total_timeout = Some(secs(
                    common::value(&mut p, "--total-timeout")?,
                    "--total-timeout",
                )?)
            }
            Long("send-timeout") => {
                a.send_timeout = secs(common::value(&mut p, "--send-timeout")?, "--send-timeout")?
            }
            Long("idle-timeout") => {
                a.settings.idle_timeout =
                    secs(common::value(&mut p, "--idle-timeout")?, "--idle-timeout")?
            }
            Long("down-time") => {
                a.settings.down_time = secs(common::value(&mut p, "--down-time")?, "--down-time")?
            }
            Long("pool-size") => {
                let n: usize = common::value(&mut p, "--pool-size")?;
                if n == 0 {
                    return Err("--pool-size must be at least 1".into());
                }
                a.settings.pool_size = n;
            }
            Long("rewrite-host") => a.settings.rewrite_host = true,
            Long("no-access-log") => a.access_log = None,
            Long("access-log") => {
                let format = p.value()?.string()?;
                a.access_log = match format.as_str() {
                    "off" => None,
                    f => Some(Format::parse(f).map_err(|_| {
                        format!("--access-log: invalid value {format:?} (combined, json or off)")
                    })?),
                }
            }
            Long("proxy-protocol-from") => a.proxy_protocol = Some(common::proxy_protocol(&mut p)?),
            Long("send-proxy-protocol") => {
                a.send_proxy = Some(common::send_proxy_protocol(&mut p)?)
            }
            Long("upstream-protocol") => {
                let v = p.value()?.string()?;
                a.upstream_protocol =
                    UpstreamProtocol::parse(&v).map_err(|e| format!("--upstream-protocol: {e}"))?;
            }
            Long("config") => a.config = Some(p.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if a.config.is_some() && !a.upstreams.is_empty() {
        return Err("--upstream and --config do not go together".into());
    }
    if a.upstreams.is_empty() && a.config.is_none() {
        return Err("at least one --upstream (or --config FILE) is needed".into());
    }
    if a.port == 0 && a.tlsport == 0 {
        return Err("--port and --tlsport are both off".into());
    }
    Ok(a)
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    if let Some(path) = &args.config {
        let flags = config::Flags {
            loops: args.loops,
            send_timeout: args.send_timeout,
            access_log: args.access_log,
            proxy_protocol: args.proxy_protocol.clone(),
            resumption: args.resumption,
            cert_out: args.cert_out.clone(),
            admin: args.admin.clone(),
            max_connections: args.max_connections,
        };
        if let Err(e) = config::run(path, flags) {
            log::error!("{e}");
            std::process::exit(1);
        }
        log::info!("stopped");
        return;
    }
    let fail = |e: Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
    let tls_server = common::optional_tls(
        args.tlsport,
        args.tlscert.as_deref(),
        args.cert_out.as_deref(),
        USAGE,
        |b| {
            b.alpn(wireloop_proxy::CLIENT_ALPN)
                .resumption(args.resumption)
        },
    );
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .send_timeout(Some(args.send_timeout));
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    let mut plain_index = None;
    let mut tls_index = None;
    let mut n = 0;
    if args.port != 0 {
        builder = builder
            .listen(&format!("tcp://{}:{}", args.host, args.port))
            .unwrap_or_else(|e| fail(e));
        plain_index = Some(n);
        n += 1;
    }
    if args.tlsport != 0 {
        builder = builder
            .listen(&format!("tcp://{}:{}", args.host, args.tlsport))
            .unwrap_or_else(|e| fail(e));
        tls_index = Some(n);
    }
    let ca = args.upstream_ca.as_ref().map(|path| {
        std::fs::read(path)
            .unwrap_or_else(|e| fail(Error::layer(format!("cannot read {path}: {e}"))))
    });
    // TLS towards each https upstream: its own name for SNI and verification, carried
    // by every dial to it.
    let peers: Vec<Peer> = args
        .upstreams
        .iter()
        .map(|u| {
            if !u.https {
                return u.clone();
            }
            let mut b = TlsClient::builder()
                .server_name(&u.host)
                .alpn(&[args.upstream_protocol.alpn()]);
            if let Some(pem) = &ca {
                b = b.root_ca_pem(pem).unwrap_or_else(|e| fail(e));
            }
            u.clone().tls(b.build().unwrap_or_else(|e| fail(e)))
        })
        .collect();
    let mut group = Group::new("default", peers, args.balance.clone())
        .unwrap_or_else(|e| fail(Error::layer(e)));
    if let Some(v) = args.send_proxy {
        group = group.with_send_proxy(v);
    }
    group = group
        .with_protocol(args.upstream_protocol)
        .unwrap_or_else(|e| fail(Error::layer(e)));
    let server = builder.build().unwrap_or_else(|e| fail(e));
    common::shutdown_on_signal(server.handle());
    let addrs = server.local_addrs();
    let ups: Vec<String> = args.upstreams.iter().map(|u| u.url.clone()).collect();
    if let Some(i) = plain_index {
        log::info!("reverse-proxy listening on http://{}", addrs[i]);
    }
    if let Some(i) = tls_index {
        log::info!("reverse-proxy listening on https://{}", addrs[i]);
    }
    log::info!(
        "reverse-proxy forwarding to {} ({} loop(s))",
        ups.join(", "),
        server.num_loops()
    );
    let metrics = args.admin.as_ref().map(|_| {
        let listeners: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        Metrics::new(&[group.name()]).listeners(&listeners)
    });
    let tls_server = match (tls_server, &metrics) {
        (Some(t), Some(m)) => Some(t.counting(m.tls().clone())),
        (t, _) => t,
    };
    let settings = Settings {
        tls_listeners: tls_index.into_iter().collect(),
        // A failed connect is retried on every other upstream once.
        max_attempts: args.upstreams.len() as u32,
        metrics: metrics.clone(),
        ..args.settings
    };
    let admin = match (&args.admin, metrics) {
        (Some(addr), Some(m)) => Some(
            Admin::start(
                addr,
                View {
                    groups: vec![group.clone()],
                    metrics: Some(m),
                    proxy: server.handle(),
                },
                None,
            )
            .unwrap_or_else(|e| fail(Error::layer(e))),
        ),
        _ => None,
    };
    let policy = Logging {
        log: args
            .access_log
            .map(|format| AccessLog::start(format, std::io::stdout())),
        router: None,
    };
    let proxy_protocol = args.proxy_protocol.clone();
    let res = server.serve(move |_| {
        let proxy = HttpProxy::new(policy.clone(), vec![group.clone()], settings.clone());
        // TLS on the TLS listener; upstream connections carry their TLS in their dial.
        let tls = translate(
            proxy,
            move |c| !c.dialed && Some(c.addr_index) == tls_index,
            tls_server.clone(),
        );
        // The PROXY protocol header comes first, below TLS.
        let accept_pp = proxy_protocol.is_some();
        translate(tls, move |c| !c.dialed && accept_pp, proxy_protocol.clone())
    });
    if let Some(a) = admin {
        a.stop();
    }
    if let Err(e) = res {
        fail(e);
    }
    log::info!("stopped");
}
