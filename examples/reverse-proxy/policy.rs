//! The example's policy: requests routed by host and path prefix (with `--config`), or
//! all to the one group; one access log line per request (combined or JSON, see
//! `wireloop_proxy::access_log`) on stdout.

use std::time::SystemTime;

use wireloop_middleware::http1::{Request, Response};
use wireloop_proxy::access_log::{AccessLog, Entry};
use wireloop_proxy::{Filter, Group, ProxyHttp, Router, Session, Summary, Target};

/// Routes with `router` (none: every request to group 0) and logs each request.
#[derive(Clone)]
pub struct Logging {
    /// The access log (`None`: off).
    pub log: Option<AccessLog>,
    /// The routes of a configuration file.
    pub router: Option<Router>,
}

/// What the access log needs of a request beyond the proxy's summary.
#[derive(Default)]
pub struct LogCtx {
    version: &'static str,
    referer: Option<String>,
    user_agent: Option<String>,
}

impl ProxyHttp for Logging {
    type Ctx = LogCtx;

    fn request_filter(
        &mut self,
        req: &Request<'_>,
        _: &mut Response<'_>,
        _: &Session<'_>,
        ctx: &mut LogCtx,
    ) -> Filter {
        if self.log.is_some() {
            let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            ctx.version = if req.is_h2() {
                "HTTP/2.0"
            } else if req.version_minor() == 0 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            };
            ctx.referer = req.header("referer").map(text);
            ctx.user_agent = req.header("user-agent").map(text);
        }
        Filter::Continue
    }

    fn upstream_peer(
        &mut self,
        req: &Request<'_>,
        session: &Session<'_>,
        _groups: &[Group],
        _: &mut LogCtx,
    ) -> Option<Target> {
        match &self.router {
            Some(r) => r.target_request(req, session.sni),
            None => Some(Target::group(0)),
        }
    }

    fn logging(&mut self, s: &Summary<'_>, ctx: &mut LogCtx) {
        if let Some(log) = &self.log {
            log.log(&Entry {
                time: SystemTime::now(),
                client_ip: s.client_ip,
                method: s.method,
                target: s.target,
                version: if ctx.version.is_empty() {
                    "HTTP/1.1"
                } else {
                    ctx.version
                },
                status: s.status,
                bytes: s.sent,
                referer: ctx.referer.as_deref(),
                user_agent: ctx.user_agent.as_deref(),
                upstream: s.peer,
                upstream_time: s.upstream_time,
                total_time: s.duration,
            });
        }
    }
}
