//! Routing requests to upstream groups: virtual hosts by `Host` (on TLS listeners, the
//! server name of the handshake when a request has no `Host`), path-prefix routes where
//! the longest prefix wins, routes for any host as the default, and no route (a 404)
//! when nothing matches. Sans-IO: a policy's
//! [`upstream_peer`](crate::ProxyHttp::upstream_peer) asks it, tests ask it directly.
//!
//! ```
//! use wireloop_proxy::Router;
//!
//! let mut r = Router::new();
//! r.add(Some("api.example.test"), "/", 0).unwrap();
//! r.add(None, "/static/", 1).unwrap();          // any host
//! r.add(Some("*.example.test"), "/v2/", 2).unwrap();
//! assert_eq!(r.route(Some("API.example.test:8080"), "/users"), Some(0));
//! assert_eq!(r.route(Some("api.example.test"), "/static/a.css"), Some(0));
//! assert_eq!(r.route(Some("www.example.test"), "/static/a.css"), Some(1));
//! assert_eq!(r.route(Some("www.example.test"), "/v2/x"), Some(2));
//! assert_eq!(r.route(Some("other.test"), "/"), None);   // answered 404
//! ```
//!
//! The host is matched without its port and case, exactly, then by the longest
//! `*.suffix` wildcard (as [`SniRoutes`]). The routes of the matching virtual host come
//! first; if none of their prefixes matches, the routes for any host are tried. Prefixes
//! are compared with the request's path as sent (before the query, not decoded or
//! normalised): routing chooses a group, it is no access control.

use std::fmt;

use wireloop_middleware::http1::Request;

use crate::phases::Target;
use crate::sni::SniRoutes;

/// Why a route was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The path prefix does not start with `/` or holds whitespace.
    Prefix(String),
    /// The host is not a host name or `*.suffix` pattern.
    Host(String),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Prefix(p) => {
                write!(f, "path prefix {p:?} must start with / and hold no spaces")
            }
            RouteError::Host(h) => write!(f, "bad host name {h:?}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// Path prefixes, longest first, each with its target.
#[derive(Clone, Debug, Default)]
struct Prefixes(Vec<(String, Target)>);

impl Prefixes {
    fn add(&mut self, prefix: &str, target: Target) {
        self.0.retain(|(p, _)| p != prefix);
        self.0.push((prefix.to_string(), target));
        self.0.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    fn find(&self, path: &str) -> Option<Target> {
        self.0
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, t)| *t)
    }
}

/// Routes by host and path prefix to group indexes.
#[derive(Clone, Debug, Default)]
pub struct Router {
    /// Host pattern -> index in `vhosts`.
    hosts: SniRoutes<usize>,
    /// The patterns, as added (lower case), by index.
    patterns: Vec<String>,
    vhosts: Vec<Prefixes>,
    /// Routes for any host.
    any: Prefixes,
    /// Each route's name (`host` or `*`, then the prefix), by index.
    names: Vec<String>,
}

/// Longest host name looked up (a DNS name is at most 253 bytes).
const MAX_HOST: usize = 255;

impl Router {
    /// No routes: every request is unrouted.
    pub fn new() -> Router {
        Router::default()
    }

    /// Routes requests for `host` (a name, `*.suffix`, or `None` / `"*"` for any host)
    /// whose path starts with `path_prefix` (which starts with `/`, or is `*` for
    /// `OPTIONS *`) to group `group`. A later route with the same host and prefix
    /// replaces the earlier one.
    pub fn add(
        &mut self,
        host: Option<&str>,
        path_prefix: &str,
        group: usize,
    ) -> Result<(), RouteError> {
        self.add_target(host, path_prefix, Target::group(group))
    }

    /// As [`add`](Router::add), to a whole [`Target`] (a group with a peer, a key or a
    /// body limit), which [`target`](Router::target) returns.
    pub fn add_target(
        &mut self,
        host: Option<&str>,
        path_prefix: &str,
        mut target: Target,
    ) -> Result<(), RouteError> {
        if !(path_prefix.starts_with('/') || path_prefix == "*")
            || path_prefix.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return Err(RouteError::Prefix(path_prefix.to_string()));
        }
        let host = host.filter(|h| *h != "*");
        let name = format!("{}{path_prefix}", host.unwrap_or("*").to_ascii_lowercase());
        target.route = Some(match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        });
        let Some(host) = host else {
            self.any.add(path_prefix, target);
            return Ok(());
        };
        let pattern = host.to_ascii_lowercase();
        let pattern = pattern.strip_suffix('.').unwrap_or(&pattern).to_string();
        let v = match self.patterns.iter().position(|p| *p == pattern) {
            Some(v) => v,
            None => {
                let v = self.vhosts.len();
                self.hosts
                    .add(&pattern, v)
                    .map_err(|_| RouteError::Host(host.to_string()))?;
                self.patterns.push(pattern);
                self.vhosts.push(Prefixes::default());
                v
            }
        };
        self.vhosts[v].add(path_prefix, target);
        Ok(())
    }

    /// Each route's name, `host` (or `*` for any host) followed by its path prefix
    /// (`api.example.test/`, `*/static/`), by [`Target::route`] index.
    pub fn route_names(&self) -> &[String] {
        &self.names
    }

    /// Whether no route is set.
    pub fn is_empty(&self) -> bool {
        self.vhosts.is_empty() && self.any.0.is_empty()
    }

    /// The group for a request to `host` (a `Host` value: the port and case do not
    /// matter) with `path` (without the query). `None`: no route.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        self.target(host, path).map(|t| t.group)
    }

    /// The target of the route for `host` and `path` (see [`route`](Router::route)).
    pub fn target(&self, host: Option<&str>, path: &str) -> Option<Target> {
        let mut buf = [0u8; MAX_HOST];
        let found = host
            .and_then(|h| normalise(h, &mut buf))
            .and_then(|h| self.hosts.route(Some(h)))
            .and_then(|&v| self.vhosts[v].find(path));
        found.or_else(|| self.any.find(path))
    }

    /// The group for `req`: its host from an absolute-form target, else its `Host`,
    /// else `sni`, the server name of the TLS handshake ([`Session::sni`]); its path from
    /// the target.
    ///
    /// [`Session::sni`]: crate::Session::sni
    pub fn route_request(&self, req: &Request<'_>, sni: Option<&str>) -> Option<usize> {
        self.target_request(req, sni).map(|t| t.group)
    }

    /// The target of the route for `req` (see [`route_request`](Router::route_request)).
    pub fn target_request(&self, req: &Request<'_>, sni: Option<&str>) -> Option<Target> {
        let (authority, path) = split_target(req.target());
        let host = authority
            .or_else(|| req.header("host").and_then(|h| std::str::from_utf8(h).ok()))
            .or(sni);
        self.target(host, path)
    }
}

/// A target's authority (absolute form only) and path (without the query).
fn split_target(target: &str) -> (Option<&str>, &str) {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"));
    let (authority, path) = match rest {
        Some(r) => match r.find(['/', '?']) {
            Some(i) => (Some(&r[..i]), &r[i..]),
            None => (Some(r), "/"),
        },
        None => (None, target),
    };
    let path = path.split('?').next().unwrap_or(path);
    let path = if path.is_empty() { "/" } else { path };
    (authority.map(|a| a.rsplit('@').next().unwrap_or(a)), path)
}

/// `host` without its port or trailing dot, in lower case, in `buf`. `None` if it does
/// not fit or is not text a host name can be.
fn normalise<'b>(host: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let host = host.trim();
    let name = if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; only a port follows them.
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
