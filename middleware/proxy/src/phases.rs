//! The places a policy hooks into an HTTP proxy ([`ProxyHttp`]), in the order a request
//! meets them, and the plain values they take and return.

use std::time::{Duration, Instant};

use wireloop::ConnId;
use wireloop_middleware::http1::{Request, Response};

use crate::group::Group;
use crate::header_list::HeaderList;

/// The client connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// The client connection's id.
    pub conn: ConnId,
    /// The client's IP address (`unix` on a unix socket).
    pub client_ip: &'a str,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The server name the client asked for in its TLS handshake (SNI), if any.
    pub sni: Option<&'a str>,
    /// The loop's clock.
    pub now: Instant,
}

/// What the request filter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Proxy the request.
    Continue,
    /// The filter answered the request itself (on the `Response` it got); nothing goes
    /// upstream. A filter that says so without writing a status gets a 500.
    Answered,
}

/// Where a request goes: a group and, optionally, a peer of it or a hash key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// Index of the group (in the order the groups were given).
    pub group: usize,
    /// A peer chosen by the policy; `None`: the group's balancer chooses.
    pub peer: Option<usize>,
    /// The key consistent hashing uses; `None`: the group's own
    /// [`HashKey`](crate::HashKey) of the request.
    pub key: Option<u64>,
    /// Largest request body this route takes, in bytes: a larger `Content-Length` is
    /// answered 413 at once; a chunked body that grows past it ends its exchange (the
    /// upstream's is aborted) with a 413 and the connection closes (or, if the response
    /// already started, is cut off). `None`: no limit.
    pub max_body: Option<u64>,
    /// The route that chose it ([`Router`](crate::Router) sets it: the index into
    /// [`Router::route_names`](crate::Router::route_names)), for per-route metrics.
    pub route: Option<usize>,
}

impl Target {
    /// Group `group`, balanced.
    pub fn group(group: usize) -> Target {
        Target {
            group,
            ..Target::default()
        }
    }

    /// With a request body limit of `bytes` (see [`max_body`](Target::max_body)).
    pub fn max_body(mut self, bytes: u64) -> Target {
        self.max_body = Some(bytes);
        self
    }
}

/// Changes to the request as it goes upstream (after the proxy's own: hop-by-hop fields
/// removed, `X-Forwarded-For`/`-Proto` and `Via` added).
#[derive(Clone, Debug, Default)]
pub struct UpstreamRequest {
    pub(crate) target: String,
    pub(crate) set: HeaderList,
    pub(crate) removed: HeaderList,
}

impl UpstreamRequest {
    pub(crate) fn clear(&mut self) {
        self.target.clear();
        self.set.clear();
        self.removed.clear();
    }

    /// Sends `target` (path and query) instead of the client's. Ignored if it holds
    /// whitespace or control characters, or is empty.
    pub fn set_target(&mut self, target: &str) {
        if !target.is_empty() && !target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            self.target.clear();
            self.target.push_str(target);
        }
    }

    /// Sends `name: value` instead of the client's `name` fields (`Host` too). `false`
    /// if the name or value is not a valid field.
    pub fn insert_header(&mut self, name: &str, value: &[u8]) -> bool {
        self.set.insert(name, value)
    }

    /// Leaves out the client's `name` fields.
    pub fn remove_header(&mut self, name: &str) {
        self.set.remove(name);
        self.removed.append(name, b"");
    }
}

/// The upstream's response head as it goes to the client: status and the fields to pass
/// on (hop-by-hop ones already removed, `Via` added).
#[derive(Clone, Debug, Default)]
pub struct ResponseHeader {
    /// The status; a filter may change it (not to or from 101).
    pub status: u16,
    /// The fields.
    pub headers: HeaderList,
}

/// What went wrong with an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The connect failed (refused, unreachable, name not found, connect timeout).
    Connect,
    /// No response head within the first-byte timeout.
    Timeout,
    /// The response was malformed, or the connection ended without one.
    BadResponse,
}

/// A failure reported to [`ProxyHttp::fail`].
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    /// What happened.
    pub kind: FailureKind,
    /// The group and peer.
    pub group: usize,
    /// The peer's index in its group.
    pub peer: usize,
    /// The peer's URL.
    pub peer_url: &'a str,
    /// Attempts made for this request so far (1 after the first).
    pub attempts: u32,
    /// Whether sending the request again is safe (nothing of it reached the peer),
    /// another peer is there to try, attempts are left ([`Settings::max_attempts`]) and
    /// the group's [retry budget](crate::RetryBudget) allows one.
    ///
    /// [`Settings::max_attempts`]: crate::Settings::max_attempts
    pub retryable: bool,
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Send the request to another peer of the group (only when the failure is
    /// retryable; otherwise the default status is answered).
    Retry,
    /// Answer with this status (if the response has not started; else the client is cut
    /// off).
    Answer(u16),
}

/// One finished request, for logging.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    /// The client's IP address.
    pub client_ip: &'a str,
    /// Request method and target as the client sent them.
    pub method: &'a str,
    /// Request target.
    pub target: &'a str,
    /// The status answered (499: the client gave up first).
    pub status: u16,
    /// Response body bytes passed to the client.
    pub sent: u64,
    /// The peer that served it (`None`: answered by the proxy itself).
    pub peer: Option<&'a str>,
    /// From the request head to the end.
    pub duration: Duration,
    /// From the request going upstream to the response head (`None`: no upstream
    /// answered).
    pub upstream_time: Option<Duration>,
}

/// A proxy's policy: the places it hooks into each request, each with a default, so the
/// smallest policy is `impl ProxyHttp for P { type Ctx = (); }` (every request to group
/// 0, balanced). Methods are called on the loop's thread with plain values; nothing
/// blocks. `Ctx` is the policy's per-request context, made with `Default` when a request
/// head arrives and dropped after [`logging`](ProxyHttp::logging).
pub trait ProxyHttp: 'static {
    /// Per-request context.
    type Ctx: Default + 'static;

    /// First look at a request: answer it here (a 401, a redirect) and return
    /// [`Filter::Answered`], or let it through.
    fn request_filter(
        &mut self,
        req: &Request<'_>,
        res: &mut Response<'_>,
        session: &Session<'_>,
        ctx: &mut Self::Ctx,
    ) -> Filter {
        let _ = (req, res, session, ctx);
        Filter::Continue
    }

    /// Chooses the group (and optionally the peer or hash key). `None` answers 404 (no
    /// route). The default: group 0, balanced.
    fn upstream_peer(
        &mut self,
        req: &Request<'_>,
        session: &Session<'_>,
        groups: &[Group],
        ctx: &mut Self::Ctx,
    ) -> Option<Target> {
        let _ = (req, session, groups, ctx);
        Some(Target::group(0))
    }

    /// Rewrites the request going upstream (target, fields).
    fn upstream_request(
        &mut self,
        req: &Request<'_>,
        up: &mut UpstreamRequest,
        ctx: &mut Self::Ctx,
    ) {
        let _ = (req, up, ctx);
    }

    /// Edits the response head before it goes to the client.
    fn response_filter(&mut self, resp: &mut ResponseHeader, ctx: &mut Self::Ctx) {
        let _ = (resp, ctx);
    }

    /// An upstream failed before the response head: retry on another peer or answer.
    /// The default retries what is safe to retry and answers 504 after a timeout, else
    /// 502.
    fn fail(&mut self, failure: &Failure<'_>, ctx: &mut Self::Ctx) -> Recovery {
        let _ = ctx;
        if failure.retryable {
            Recovery::Retry
        } else {
            Recovery::Answer(default_status(failure.kind))
        }
    }

    /// The request ended (answered, failed, or the client left).
    fn logging(&mut self, summary: &Summary<'_>, ctx: &mut Self::Ctx) {
        let _ = (summary, ctx);
    }
}

/// The status a failure answers by default: 504 after a timeout, else 502.
pub fn default_status(kind: FailureKind) -> u16 {
    match kind {
        FailureKind::Timeout => 504,
        FailureKind::Connect | FailureKind::BadResponse => 502,
    }
}
