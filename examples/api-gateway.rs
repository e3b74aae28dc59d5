//! An API gateway as a custom `wireloop-proxy` policy: bearer tokens checked in the request
//! filter, `/v1/` and `/v2/` routed to their own upstream groups, a request id added both
//! ways, and each request's latency logged with its route.
//!
//! ```text
//! cargo run --release --example api-gateway -- --token secret \
//!     --v1 http://127.0.0.1:9001 --v2 http://127.0.0.1:9002
//! curl -H 'Authorization: Bearer secret' http://127.0.0.1:8095/v1/users
//! ```

mod common;

use wireloop::{Loops, Server};
use wireloop_middleware::http1::{Request, Response};
use wireloop_proxy::{
    Balance, Filter, Group, HttpProxy, Peer, ProxyHttp, ResponseHeader, Session, Settings, Summary,
    Target, UpstreamRequest,
};

const USAGE: &str = "\
api-gateway: bearer-token API gateway on the wireloop proxy library (wireloop example)

USAGE:
    api-gateway --token TOKEN --v1 URL --v2 URL [OPTIONS]

OPTIONS:
    --port N       HTTP port on 127.0.0.1 (default 8095)
    --token TOKEN  a bearer token clients may present (repeatable; at least one)
    --v1 URL       upstream for /v1/... (repeatable: a balanced group)
    --v2 URL       upstream for /v2/... (repeatable)
    --loops N      number of loops (default 1; -1 = one per core)
    -h, --help     print this help

Requests need `Authorization: Bearer TOKEN` (else 401); GET /healthz is answered here
without one. Each request gets an X-Request-Id (the client's own if it sent one) on its
way up and on its response; the token is not passed upstream. A log line per request
gives its route, status and latency.";

/// The gateway's policy; one per loop.
struct Gateway {
    tokens: Vec<String>,
    /// Loop index and request counter, for request ids unique per process.
    loop_index: usize,
    next_id: u64,
}

/// What the gateway remembers of one request.
#[derive(Default)]
struct Ctx {
    route: &'static str,
    id: String,
}

/// The route of a path: its name and upstream group.
fn route(path: &str) -> Option<(&'static str, usize)> {
    if path.starts_with("/v1/") {
        Some(("v1", 0))
    } else if path.starts_with("/v2/") {
        Some(("v2", 1))
    } else {
        None
    }
}

impl ProxyHttp for Gateway {
    type Ctx = Ctx;

    fn request_filter(
        &mut self,
        req: &Request<'_>,
        res: &mut Response<'_>,
        _: &Session<'_>,
        ctx: &mut Ctx,
    ) -> Filter {
        ctx.route = "-";
        if req.method() == "GET" && req.path() == "/healthz" {
            res.status(200).body(b"ok\n");
            return Filter::Answered;
        }
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii());
        if !token.is_some_and(|t| self.tokens.iter().any(|k| k.as_bytes() == t)) {
            res.status(401)
                .header("WWW-Authenticate", "Bearer realm=\"api\"")
                .body(b"a valid bearer token is needed\n");
            return Filter::Answered;
        }
        ctx.id = match req.header("x-request-id") {
            Some(id) if !id.is_empty() && id.len() <= 64 => String::from_utf8_lossy(id).into(),
            _ => {
                self.next_id += 1;
                format!("{:x}-{:08x}", self.loop_index, self.next_id)
            }
        };
        Filter::Continue
    }

    fn upstream_peer(
        &mut self,
        req: &Request<'_>,
        _: &Session<'_>,
        _: &[Group],
        ctx: &mut Ctx,
    ) -> Option<Target> {
        let (name, group) = route(req.path())?;
        ctx.route = name;
        Some(Target::group(group))
    }

    fn upstream_request(&mut self, _: &Request<'_>, up: &mut UpstreamRequest, ctx: &mut Ctx) {
        up.insert_header("X-Request-Id", ctx.id.as_bytes());
        up.remove_header("Authorization");
    }

    fn response_filter(&mut self, resp: &mut ResponseHeader, ctx: &mut Ctx) {
        if !ctx.id.is_empty() {
            resp.headers.insert("X-Request-Id", ctx.id.as_bytes());
        }
    }

    fn logging(&mut self, s: &Summary<'_>, ctx: &mut Ctx) {
        log::info!(
            "route={} status={} latency_ms={:.3} id={} {} {} from {}",
            ctx.route,
            s.status,
            s.duration.as_secs_f64() * 1e3,
            if ctx.id.is_empty() { "-" } else { &ctx.id },
            s.method,
            s.target,
            s.client_ip
        );
    }
}

fn group(name: &str, urls: &[String]) -> Result<Group, String> {
    let peers = urls
        .iter()
        .map(|u| Peer::parse(u).map_err(|e| format!("--{name}: invalid value {u:?} ({e})")))
        .collect::<Result<Vec<_>, _>>()?;
    Group::new(name, peers, Balance::RoundRobin)
}

fn main() {
    common::init_logger();
    let (mut port, mut loops) = (8095u16, 1i64);
    let (mut tokens, mut v1, mut v2) = (Vec::new(), Vec::new(), Vec::new());
    let parsed: Result<(), lexopt::Error> = (|| {
        use lexopt::prelude::*;
        let mut p = lexopt::Parser::from_env();
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => port = common::port(&mut p, "--port")?,
                Long("token") => tokens.push(p.value()?.string()?),
                Long("v1") => v1.push(p.value()?.string()?),
                Long("v2") => v2.push(p.value()?.string()?),
                Long("loops") => loops = common::loops(&mut p)?,
                Short('h') | Long("help") => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(arg.unexpected()),
            }
        }
        if tokens.is_empty() || v1.is_empty() || v2.is_empty() {
            return Err("--token, --v1 and --v2 are each needed at least once".into());
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        common::usage_error(e, USAGE);
    }
    let groups = [group("v1", &v1), group("v2", &v2)]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| common::usage_error(e, USAGE));
    let server = Server::builder()
        .loops(Loops::from_count(loops))
        .listen(&format!("tcp://127.0.0.1:{port}"))
        .and_then(|b| b.build())
        .unwrap_or_else(|e| {
            log::error!("{e}");
            std::process::exit(1)
        });
    common::shutdown_on_signal(server.handle());
    log::info!("api-gateway serving {}", server.local_addrs()[0]);
    let res = server.serve(move |i| {
        let policy = Gateway {
            tokens: tokens.clone(),
            loop_index: i,
            next_id: 0,
        };
        HttpProxy::new(policy, groups.clone(), Settings::default())
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
}
