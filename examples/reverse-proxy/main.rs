//! HTTP/1.1 reverse proxy: inbound connections (plain and TLS) are served by the
//! HTTP/1.1 server adapter, requests go to upstreams (plain or TLS) over pooled keep-alive
//! connections dialed from the same loop and read with the HTTP/1.1 client side; bodies
//! stream both ways with backpressure, upgrades (WebSocket) become byte tunnels.
//!
//! All of that is the `wireloop-proxy` library; this file is configuration, the access
//! log policy and `main`.
//!
//! ```text
//! cargo run --release --example reverse-proxy -- --port 8080 --tlsport 8443 \
//!     --upstream http://127.0.0.1:9001 --upstream http://127.0.0.1:9002
//! curl http://127.0.0.1:8080/
//! ```

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use wireloop::{Error, Loops, Server};
use wireloop_middleware::{translate, TlsClient, TlsServer};
use wireloop_proxy::{Balance, Group, HttpProxy, Peer, ProxyHttp, Settings, Summary};

const USAGE: &str = "\
reverse-proxy: HTTP/1.1 reverse proxy with keep-alive upstream pools (wireloop example)

USAGE:
    reverse-proxy --upstream URL [--upstream URL ...] [OPTIONS]

OPTIONS:
    --port N                 plain HTTP port on 0.0.0.0 (default 8080; 0 = off)
    --tlsport N              HTTPS port on 0.0.0.0 (default 8443; 0 = off)
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
    --send-timeout SECS      close a client or upstream that takes none of the bytes
                             queued for it this long (default 60)
    --pool-size N            most connections per upstream per loop (default 64)
    --idle-timeout SECS      close pooled upstream connections idle this long (default 30)
    --down-time SECS         after a failed connect, avoid that upstream this long
                             (default 10; if every upstream is down, try anyway)
    --rewrite-host           send the upstream's host:port as Host (default: keep the
                             client's Host)
    --no-access-log          no access log lines on stdout
    -h, --help               print this help

Hop-by-hop headers are removed, X-Forwarded-For, X-Forwarded-Proto and Via are added.
Upstream connect failure answers 502, no response head within --upstream-timeout 504;
an upstream failing or stalling mid-response closes the client connection. A client that
closes its side while its request is in flight aborts the upstream exchange. One access log line per
request goes to stdout: client, method, target, status, body bytes sent, upstream,
duration. Logging goes to stderr (WIRELOOP_LOG=debug for more).";

struct Args {
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
    access_log: bool,
    loops: i64,
    max_connections: Option<usize>,
}

fn secs(v: f64, what: &str) -> Result<Duration, lexopt::Error> {
    if !(v > 0.0 && v < 86_400.0) {
        return Err(format!("{what} must be within (0, 86400) seconds").into());
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        port: 8080,
        tlsport: 8443,
        host: "0.0.0.0".into(),
        tlscert: None,
        cert_out: None,
        resumption: true,
        upstreams: Vec::new(),
        upstream_ca: None,
        balance: Balance::RoundRobin,
        settings: Settings::default(),
        send_timeout: Duration::from_secs(60),
        access_log: true,
        loops: 1,
        max_connections: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => a.port = p.value()?.parse()?,
            Long("tlsport") => a.tlsport = p.value()?.parse()?,
            Long("listen-host") => a.host = p.value()?.string()?,
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("no-resumption") => a.resumption = false,
            Long("upstream") => {
                let url = p.value()?.string()?;
                a.upstreams
                    .push(Peer::parse(&url).map_err(|e| format!("{url}: {e}"))?);
            }
            Long("upstream-ca") => a.upstream_ca = Some(p.value()?.string()?),
            Long("balance") => {
                a.balance = match p.value()?.string()?.as_str() {
                    "round-robin" => Balance::RoundRobin,
                    "least-connections" => Balance::LeastConn,
                    other => return Err(format!("unknown balance mode {other:?}").into()),
                }
            }
            Long("loops") => a.loops = p.value()?.parse()?,
            Long("max-connections") => {
                let n: usize = p.value()?.parse()?;
                if n == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
                a.max_connections = Some(n);
            }
            Long("connect-timeout") => {
                a.settings.connect_timeout = secs(p.value()?.parse()?, "--connect-timeout")?
            }
            Long("upstream-timeout") => {
                a.settings.first_byte_timeout = secs(p.value()?.parse()?, "--upstream-timeout")?
            }
            Long("read-timeout") => {
                a.settings.read_timeout = secs(p.value()?.parse()?, "--read-timeout")?
            }
            Long("send-timeout") => a.send_timeout = secs(p.value()?.parse()?, "--send-timeout")?,
            Long("idle-timeout") => {
                a.settings.idle_timeout = secs(p.value()?.parse()?, "--idle-timeout")?
            }
            Long("down-time") => a.settings.down_time = secs(p.value()?.parse()?, "--down-time")?,
            Long("pool-size") => {
                let n: usize = p.value()?.parse()?;
                if n == 0 {
                    return Err("--pool-size must be at least 1".into());
                }
                a.settings.pool_size = n;
            }
            Long("rewrite-host") => a.settings.rewrite_host = true,
            Long("no-access-log") => a.access_log = false,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if a.upstreams.is_empty() {
        return Err("at least one --upstream is needed".into());
    }
    if a.port == 0 && a.tlsport == 0 {
        return Err("--port and --tlsport are both off".into());
    }
    Ok(a)
}

/// The policy: every request to the one group, balanced; one access log line per request
/// on stdout (client, request line, status, body bytes sent, upstream, duration).
#[derive(Clone)]
struct AccessLog {
    on: bool,
}

impl ProxyHttp for AccessLog {
    type Ctx = ();

    fn logging(&mut self, s: &Summary<'_>, _: &mut ()) {
        if self.on {
            println!(
                "{} \"{} {}\" {} {} {} {}ms",
                s.client_ip,
                s.method,
                s.target,
                s.status,
                s.sent,
                s.peer.unwrap_or("-"),
                s.duration.as_millis()
            );
        }
    }
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let fail = |e: Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
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
    let tls_server = match tls_index {
        Some(_) => {
            let cert = common::tls_cert(args.tlscert.as_deref(), args.cert_out.as_deref())
                .unwrap_or_else(|e| fail(e));
            Some(
                TlsServer::builder(cert)
                    .alpn(&[b"http/1.1"])
                    .resumption(args.resumption)
                    .build()
                    .unwrap_or_else(|e| fail(e)),
            )
        }
        None => None,
    };
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
                .alpn(&[b"http/1.1"]);
            if let Some(pem) = &ca {
                b = b.root_ca_pem(pem).unwrap_or_else(|e| fail(e));
            }
            u.clone().tls(b.build().unwrap_or_else(|e| fail(e)))
        })
        .collect();
    let group = Group::new("default", peers, args.balance.clone())
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
    let settings = Settings {
        tls_listeners: tls_index.into_iter().collect(),
        // A failed connect is retried on every other upstream once.
        max_attempts: args.upstreams.len() as u32,
        ..args.settings
    };
    let policy = AccessLog {
        on: args.access_log,
    };
    let res = server.serve(move |_| {
        let proxy = HttpProxy::new(policy.clone(), vec![group.clone()], settings.clone());
        // TLS on the TLS listener; upstream connections carry their TLS in their dial.
        translate(
            proxy,
            move |c| !c.dialed && Some(c.addr_index) == tls_index,
            tls_server.clone(),
        )
    });
    if let Err(e) = res {
        fail(e);
    }
    log::info!("stopped");
}
