//! HTTP/1.1 reverse proxy: inbound connections (plain and TLS) are served by the
//! HTTP/1.1 server adapter, requests go to upstreams (plain or TLS) over pooled keep-alive
//! connections dialed from the same loop and read with the HTTP/1.1 client side; bodies
//! stream both ways with backpressure, upgrades (WebSocket) become byte tunnels.
//!
//! ```text
//! cargo run --release --example reverse-proxy -- --port 8081 --tlsport 8444 \
//!     --upstream http://127.0.0.1:9001 --upstream http://127.0.0.1:9002
//! curl http://127.0.0.1:8081/
//! ```

#[path = "../common/mod.rs"]
mod common;
mod proxy;

use std::time::Duration;

use wireloop::{Action, Conn, Control, Detached, Error, Handler, Loops, Server};
use wireloop_middleware::http1::{Config, Http1};
use wireloop_middleware::{translate, TlsClient, TlsServer};

use proxy::{Balance, PState, Proxy, Settings, Upstream};

const USAGE: &str = "\
reverse-proxy: HTTP/1.1 reverse proxy with keep-alive upstream pools (wireloop example)

USAGE:
    reverse-proxy --upstream URL [--upstream URL ...] [OPTIONS]

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
    upstreams: Vec<Upstream>,
    upstream_ca: Option<String>,
    settings: Settings,
    loops: i64,
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
        port: 8081,
        tlsport: 8444,
        host: "0.0.0.0".into(),
        tlscert: None,
        cert_out: None,
        resumption: true,
        upstreams: Vec::new(),
        upstream_ca: None,
        settings: Settings::default(),
        loops: 1,
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
                    Upstream::parse(&url)
                        .map_err(|e| format!("--upstream: invalid value {url:?} ({e})"))?,
                );
            }
            Long("upstream-ca") => a.upstream_ca = Some(p.value()?.string()?),
            Long("balance") => {
                a.settings.balance = match p.value()?.string()?.as_str() {
                    "round-robin" => Balance::RoundRobin,
                    "least-connections" => Balance::LeastConnections,
                    other => {
                        return Err(format!(
                            "--balance: invalid value {other:?} (round-robin or least-connections)"
                        )
                        .into())
                    }
                }
            }
            Long("loops") => a.loops = common::loops(&mut p)?,
            Long("connect-timeout") => {
                a.settings.connect_timeout = secs(
                    common::value(&mut p, "--connect-timeout")?,
                    "--connect-timeout",
                )?
            }
            Long("upstream-timeout") => {
                a.settings.upstream_timeout = secs(
                    common::value(&mut p, "--upstream-timeout")?,
                    "--upstream-timeout",
                )?
            }
            Long("read-timeout") => {
                a.settings.read_timeout =
                    secs(common::value(&mut p, "--read-timeout")?, "--read-timeout")?
            }
            Long("send-timeout") => {
                a.settings.send_timeout =
                    secs(common::value(&mut p, "--send-timeout")?, "--send-timeout")?
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
            Long("no-access-log") => a.settings.access_log = false,
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

/// The loop's handler: inbound connections go to the HTTP/1.1 server adapter (whose
/// application is the proxy), dialed ones to the proxy's upstream side. After each
/// callback the proxy's queued loop operations (dial, wake, close, link) run through the
/// connection's `Control`.
struct Outer {
    http: Http1<Proxy>,
}

impl Outer {
    fn after(&mut self, conn: &mut Conn<'_, PState>) {
        let app = self.http.app_mut();
        if !conn.is_dialed() {
            app.flush_tunnel(conn);
        }
        app.run_ops(conn);
    }
}

impl Handler for Outer {
    type State = PState;

    fn serving(&mut self, ctl: &mut Control<'_, PState>) -> Action {
        self.http.serving(ctl)
    }

    fn tick(&mut self, ctl: &mut Control<'_, PState>) -> (Option<Duration>, Action) {
        let (period, action) = self.http.tick(ctl);
        let mine = self.http.app_mut().tick(ctl);
        (period.map(|p| p.min(mine)).or(Some(mine)), action)
    }

    fn opened(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let a = if conn.is_dialed() {
            self.http.app_mut().up_opened(conn)
        } else {
            self.http.app_mut().client_opened(conn);
            self.http.opened(conn)
        };
        self.after(conn);
        a
    }

    fn data(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let a = if conn.is_dialed() {
            self.http.app_mut().up_data(conn)
        } else {
            self.http.data(conn)
        };
        self.after(conn);
        a
    }

    fn eof(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let a = if conn.is_dialed() {
            self.http.app_mut().up_eof(conn)
        } else {
            self.http.eof(conn)
        };
        self.after(conn);
        a
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        if conn.is_dialed() {
            // An upstream's end is noticed when its response is read (or times out).
            return Action::None;
        }
        let a = self.http.read_closed(conn);
        self.after(conn);
        a
    }

    fn writable(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let a = if conn.is_dialed() {
            self.http.app_mut().up_data(conn)
        } else {
            self.http.writable(conn)
        };
        self.after(conn);
        a
    }

    fn woken(&mut self, conn: &mut Conn<'_, PState>) -> Action {
        let a = if conn.is_dialed() {
            self.http.app_mut().up_woken(conn)
        } else {
            self.http.woken(conn)
        };
        self.after(conn);
        a
    }

    fn post_write(&mut self, conn: &mut Conn<'_, PState>, written: usize) {
        if !conn.is_dialed() {
            self.http.post_write(conn, written);
            self.after(conn);
        }
    }

    fn closing(&mut self, conn: &mut Conn<'_, PState>) {
        if !conn.is_dialed() {
            self.http.closing(conn);
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, PState>, err: Option<Error>) {
        if conn.is_dialed() {
            self.http.app_mut().up_closed(conn, err);
        } else {
            self.http.closed(conn, err);
            self.http.app_mut().client_closed(conn);
        }
        self.http.app_mut().run_ops(conn);
    }

    fn detached(&mut self, conn: &mut Conn<'_, PState>, detached: Detached) {
        self.http.detached(conn, detached);
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
        .send_timeout(Some(args.settings.send_timeout));
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
    let tls_clients: Vec<Option<TlsClient>> = args
        .upstreams
        .iter()
        .map(|u| {
            u.tls.then(|| {
                let mut b = TlsClient::builder()
                    .server_name(&u.host)
                    .alpn(&[b"http/1.1"]);
                if let Some(pem) = &ca {
                    b = b.root_ca_pem(pem).unwrap_or_else(|e| fail(e));
                }
                b.build().unwrap_or_else(|e| fail(e))
            })
        })
        .collect();
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
    let settings = args.settings.clone();
    let upstreams = args.upstreams.clone();
    let res = server.serve(move |_| {
        // `App::resume` runs whenever the client's output is at or below the loop's
        // high-water mark and writes all staged response bytes: a slow client's output
        // then crosses the mark, and the loop stops reading its linked upstream.
        let cfg = Config {
            output_low_water: 1 << 20,
            output_high_water: 1 << 20,
            ..Config::default()
        };
        let proxy = Proxy::new(
            upstreams.clone(),
            settings.clone(),
            cfg.clone(),
            tls_clients.clone(),
            tls_index,
        );
        let outer = Outer {
            http: Http1::with_config(proxy, cfg),
        };
        // TLS on the TLS listener; upstream connections carry their TLS in their dial.
        translate(
            outer,
            move |c| !c.dialed && Some(c.addr_index) == tls_index,
            tls_server.clone(),
        )
    });
    if let Err(e) = res {
        fail(e);
    }
    log::info!("stopped");
}
