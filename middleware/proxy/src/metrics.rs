//! The HTTP proxy's metrics in the Prometheus text format (version 0.0.4): requests by
//! upstream group and status class, the upstream response-time histogram per group,
//! retries, response body bytes, and, at scrape time, every peer's health and the
//! reactor's connection and byte counters.
//!
//! A [`Metrics`] is shared by its clones (atomics behind an `Arc`): put one in
//! [`Settings::metrics`](crate::Settings::metrics) before the settings are cloned into
//! each loop's proxy, and serve [`Metrics::render`] from an admin listener of your own
//! (the `reverse-proxy` example serves `/metrics` and `/healthz` on `--admin`, or
//! `[admin] listen` in its file, from a server of its own so that scrapes never share a
//! loop with traffic). Counting is a few relaxed atomic additions per request; nothing
//! on the data path allocates or locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wireloop::Stats;
use wireloop_middleware::tls::TlsCounters;

use crate::group::Group;

/// Counters for `names`, each taking the one of the same name in `old` if there is one.
fn kept_by_name<S: AsRef<str>, T: Default>(
    old: &[(String, Arc<T>)],
    names: &[S],
) -> Vec<(String, Arc<T>)> {
    names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            let kept = old.iter().find(|(o, _)| o == n);
            (
                n.to_string(),
                kept.map_or_else(Arc::default, |(_, c)| c.clone()),
            )
        })
        .collect()
}

/// Upper bounds of the response-time histogram's buckets, in seconds (`+Inf` follows).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Status classes counted: 1xx to 5xx.
const CLASSES: usize = 5;

/// One group's counters (the last slot counts requests answered without a group: a 404,
/// a 429, a filter's own answer).
#[derive(Debug, Default)]
struct GroupCounters {
    requests: [AtomicU64; CLASSES],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_us: AtomicU64,
    latency_count: AtomicU64,
    retries: AtomicU64,
}

/// One listener's client connections.
#[derive(Debug, Default)]
struct ListenerCounters {
    open: AtomicI64,
    total: AtomicU64,
}

#[derive(Clone, Debug)]
struct Inner {
    names: Vec<String>,
    /// Shared with the metrics of a reloaded configuration (see [`Metrics::for_groups`]).
    groups: Vec<Arc<GroupCounters>>,
    response_bytes: Arc<AtomicU64>,
    /// Listener names (addresses), by listener index, and their connection counters.
    listeners: Vec<(String, Arc<ListenerCounters>)>,
    /// Route names, by route index, and their requests by status class.
    routes: Vec<(String, Arc<[AtomicU64; CLASSES]>)>,
    tls: TlsCounters,
}

/// The proxy's counters for groups named `names` (in the order the proxy has them).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    /// Counters for the groups `names`, in the proxy's order.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Metrics {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
        let groups = (0..=names.len()).map(|_| Arc::default()).collect();
        Metrics {
            inner: Arc::new(Inner {
                names,
                groups,
                response_bytes: Arc::default(),
                listeners: Vec::new(),
                routes: Vec::new(),
                tls: TlsCounters::new(),
            }),
        }
    }

    /// These counters, also counting client connections by listener: `names` (their
    /// addresses, say) in the order of the listeners' indexes. A name these counted
    /// already keeps its counters (a reload).
    pub fn listeners<S: AsRef<str>>(&self, names: &[S]) -> Metrics {
        let mut inner = (*self.inner).clone();
        inner.listeners = kept_by_name(&self.inner.listeners, names);
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// These counters, also counting requests by route: `names` by route index (a
    /// [`Router`](crate::Router)'s [`route_names`](crate::Router::route_names)). A name
    /// these counted already keeps its counters (a reload).
    pub fn routes<S: AsRef<str>>(&self, names: &[S]) -> Metrics {
        let mut inner = (*self.inner).clone();
        inner.routes = kept_by_name(&self.inner.routes, names);
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// A request that route `route` (its index) chose ended with `status`.
    pub fn route_request(&self, route: usize, status: u16) {
        if let Some((_, c)) = self.inner.routes.get(route) {
            let class = (status / 100).clamp(1, 5) as usize - 1;
            c[class].fetch_add(1, Relaxed);
        }
    }

    /// The TLS handshake counters shown with these (give them to the TLS listeners'
    /// layer with [`TlsServer::counting`](wireloop_middleware::TlsServer::counting)).
    pub fn tls(&self) -> &TlsCounters {
        &self.inner.tls
    }

    /// A client connection opened on listener `index`.
    pub fn client_opened(&self, index: usize) {
        if let Some((_, c)) = self.inner.listeners.get(index) {
            c.open.fetch_add(1, Relaxed);
            c.total.fetch_add(1, Relaxed);
        }
    }

    /// A client connection of listener `index` closed.
    pub fn client_closed(&self, index: usize) {
        if let Some((_, c)) = self.inner.listeners.get(index) {
            c.open.fetch_sub(1, Relaxed);
        }
    }

    /// Counters for the groups `names` of a reloaded configuration that go on from these:
    /// a group with a name these count keeps its counters (so a scrape sees no reset),
    /// a new name starts at zero, and the requests answered without a group and the byte
    /// count carry on. The old counters stay valid for the old configuration's requests
    /// still in flight.
    pub fn for_groups<S: AsRef<str>>(&self, names: &[S]) -> Metrics {
        let old = &self.inner;
        let mut groups: Vec<Arc<GroupCounters>> = names
            .iter()
            .map(|n| {
                old.names
                    .iter()
                    .position(|o| o == n.as_ref())
                    .map_or_else(Arc::default, |i| old.groups[i].clone())
            })
            .collect();
        groups.push(old.groups[old.groups.len() - 1].clone());
        Metrics {
            inner: Arc::new(Inner {
                names: names.iter().map(|n| n.as_ref().to_string()).collect(),
                groups,
                response_bytes: old.response_bytes.clone(),
                listeners: old.listeners.clone(),
                routes: old.routes.clone(),
                tls: old.tls.clone(),
            }),
        }
    }

    fn group(&self, g: Option<usize>) -> &GroupCounters {
        let last = self.inner.groups.len() - 1;
        &self.inner.groups[g.map_or(last, |g| g.min(last))]
    }

    /// A request ended with `status`, routed to group `g` (if it was), its response head
    /// `upstream` after the request went out (if one came), `bytes` of body sent.
    pub fn request(&self, g: Option<usize>, status: u16, upstream: Option<Duration>, bytes: u64) {
        let c = self.group(g);
        let class = (status / 100).clamp(1, 5) as usize - 1;
        c.requests[class].fetch_add(1, Relaxed);
        if let Some(t) = upstream {
            let s = t.as_secs_f64();
            let i = BUCKETS
                .iter()
                .position(|&b| s <= b)
                .unwrap_or(BUCKETS.len());
            c.buckets[i].fetch_add(1, Relaxed);
            c.latency_us.fetch_add(t.as_micros() as u64, Relaxed);
            c.latency_count.fetch_add(1, Relaxed);
        }
        self.inner.response_bytes.fetch_add(bytes, Relaxed);
    }

    /// A request of group `g` was sent again to another peer.
    pub fn retry(&self, g: usize) {
        self.group(Some(g)).retries.fetch_add(1, Relaxed);
    }

    /// Requests of group `g` (`None`: answered without one) with a status of `class`xx.
    pub fn requests(&self, g: Option<usize>, class: u16) -> u64 {
        let i = (class.clamp(1, 5) - 1) as usize;
        self.group(g).requests[i].load(Relaxed)
    }

    /// The text exposition: the counters, then the health of `groups`' peers at `now`
    /// and the reactor's `stats` (when given).
    pub fn render(&self, groups: &[Group], now: Instant, stats: Option<&Stats>, out: &mut String) {
        let label = |g: usize| match self.inner.names.get(g) {
            Some(n) => escape(n),
            None => "-".to_string(),
        };
        let n = self.inner.groups.len();
        header(
            out,
            "wireloop_proxy_requests_total",
            "counter",
            "Requests answered, by upstream group (\"-\": none) and status class.",
        );
        for g in 0..n {
            for (i, c) in self.inner.groups[g].requests.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "wireloop_proxy_requests_total{{group=\"{}\",class=\"{}xx\"}} {}",
                    label(g),
                    i + 1,
                    c.load(Relaxed)
                );
            }
        }
        header(
            out,
            "wireloop_proxy_upstream_response_seconds",
            "histogram",
            "From the request going upstream to the response head, by group.",
        );
        for g in 0..n.saturating_sub(1) {
            let c = &self.inner.groups[g];
            let mut cumulative = 0;
            for (i, b) in c.buckets.iter().enumerate() {
                cumulative += b.load(Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(out, "wireloop_proxy_upstream_response_seconds_bucket{{group=\"{}\",le=\"{le}\"}} {cumulative}", label(g));
            }
            let sum = c.latency_us.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "wireloop_proxy_upstream_response_seconds_sum{{group=\"{}\"}} {sum}",
                label(g)
            );
            let _ = writeln!(
                out,
                "wireloop_proxy_upstream_response_seconds_count{{group=\"{}\"}} {}",
                label(g),
                c.latency_count.load(Relaxed)
            );
        }
        header(
            out,
            "wireloop_proxy_retries_total",
            "counter",
            "Requests sent again to another peer, by group.",
        );
        for g in 0..n.saturating_sub(1) {
            let _ = writeln!(
                out,
                "wireloop_proxy_retries_total{{group=\"{}\"}} {}",
                label(g),
                self.inner.groups[g].retries.load(Relaxed)
            );
        }
        header(
            out,
            "wireloop_proxy_response_body_bytes_total",
            "counter",
            "Response body bytes sent to clients.",
        );
        let _ = writeln!(
            out,
            "wireloop_proxy_response_body_bytes_total {}",
            self.inner.response_bytes.load(Relaxed)
        );
        if !self.inner.routes.is_empty() {
            header(
                out,
                "wireloop_proxy_route_requests_total",
                "counter",
                "Requests answered, by route (host, or * for any, then path prefix) and status class.",
            );
            for (name, c) in &self.inner.routes {
                for (i, v) in c.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "wireloop_proxy_route_requests_total{{route=\"{}\",class=\"{}xx\"}} {}",
                        escape(name),
                        i + 1,
                        v.load(Relaxed)
                    );
                }
            }
        }
        if !self.inner.listeners.is_empty() {
            header(
                out,
                "wireloop_proxy_client_connections_open",
                "gauge",
                "Client connections open, by listener.",
            );
            for (name, c) in &self.inner.listeners {
                let open = c.open.load(Relaxed).max(0);
                let _ = writeln!(
                    out,
                    "wireloop_proxy_client_connections_open{{listener=\"{}\"}} {open}",
                    escape(name)
                );
            }
            header(
                out,
                "wireloop_proxy_client_connections_total",
                "counter",
                "Client connections opened, by listener.",
            );
            for (name, c) in &self.inner.listeners {
                let _ = writeln!(
                    out,
                    "wireloop_proxy_client_connections_total{{listener=\"{}\"}} {}",
                    escape(name),
                    c.total.load(Relaxed)
                );
            }
        }
        let tls = &self.inner.tls;
        for (name, help, v) in [
            (
                "wireloop_proxy_tls_handshakes_total",
                "TLS handshakes completed on the listeners.",
                tls.handshakes(),
            ),
            (
                "wireloop_proxy_tls_handshake_failures_total",
                "TLS handshakes failed or abandoned on the listeners.",
                tls.failures(),
            ),
        ] {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        header(
            out,
            "wireloop_proxy_upstream_healthy",
            "gauge",
            "1 if the peer is taken for healthy (active checks; passive marks are per loop).",
        );
        for g in groups {
            for (i, p) in g.peers().iter().enumerate() {
                let up = u8::from(g.is_healthy(i, now));
                let _ = writeln!(
                    out,
                    "wireloop_proxy_upstream_healthy{{group=\"{}\",peer=\"{}\"}} {up}",
                    escape(g.name()),
                    escape(&p.url)
                );
            }
        }
        if let Some(s) = stats {
            let gauges = [(
                "wireloop_connections_open",
                "Connections open (clients and upstreams).",
                s.open,
            )];
            for (name, help, v) in gauges {
                header(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {v}");
            }
            let counters = [
                (
                    "wireloop_connections_accepted_total",
                    "Connections accepted.",
                    s.accepted,
                ),
                (
                    "wireloop_connections_dialed_total",
                    "Connections dialed (upstreams, checks).",
                    s.dialed,
                ),
                (
                    "wireloop_connections_refused_total",
                    "Connections refused at the connection cap.",
                    s.refused,
                ),
                (
                    "wireloop_received_bytes_total",
                    "Bytes read from sockets.",
                    s.bytes_in,
                ),
                (
                    "wireloop_sent_bytes_total",
                    "Bytes written to sockets.",
                    s.bytes_out,
                ),
            ];
            for (name, help, v) in counters {
                header(out, name, "counter", help);
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_group_and_class_with_a_cumulative_histogram() {
        let m = Metrics::new(&["api", "static"]);
        m.request(Some(0), 200, Some(Duration::from_millis(3)), 10);
        m.request(Some(0), 204, Some(Duration::from_millis(30)), 0);
        m.request(Some(0), 502, None, 5);
        m.request(None, 429, None, 18);
        m.retry(0);
        assert_eq!((m.requests(Some(0), 2), m.requests(Some(0), 5)), (2, 1));
        assert_eq!(m.requests(None, 4), 1);
        let mut out = String::new();
        m.render(&[], Instant::now(), None, &mut out);
        for line in [
            "wireloop_proxy_requests_total{group=\"api\",class=\"2xx\"} 2",
            "wireloop_proxy_requests_total{group=\"-\",class=\"4xx\"} 1",
            "wireloop_proxy_upstream_response_seconds_bucket{group=\"api\",le=\"0.005\"} 1",
            "wireloop_proxy_upstream_response_seconds_bucket{group=\"api\",le=\"0.025\"} 1",
            "wireloop_proxy_upstream_response_seconds_bucket{group=\"api\",le=\"0.05\"} 2",
            "wireloop_proxy_upstream_response_seconds_bucket{group=\"api\",le=\"+Inf\"} 2",
            "wireloop_proxy_upstream_response_seconds_count{group=\"api\"} 2",
            "wireloop_proxy_upstream_response_seconds_sum{group=\"api\"} 0.033",
            "wireloop_proxy_retries_total{group=\"api\"} 1",
            "wireloop_proxy_response_body_bytes_total 33",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
        // Clones count into the same place.
        m.clone().request(Some(1), 301, None, 0);
        assert_eq!(m.requests(Some(1), 3), 1);
    }

    #[test]
    fn a_reload_keeps_the_counters_of_groups_it_keeps() {
        let m = Metrics::new(&["api", "old"]);
        m.request(Some(0), 200, None, 7);
        m.request(Some(1), 500, None, 0);
        m.request(None, 404, None, 0);
        let r = m.for_groups(&["new", "api"]);
        assert_eq!(r.requests(Some(1), 2), 1, "api carried over");
        assert_eq!(r.requests(Some(0), 5), 0, "a new group starts at zero");
        assert_eq!(r.requests(None, 4), 1, "no group: carried over");
        // The old configuration's requests in flight still count for both.
        m.request(Some(0), 201, None, 3);
        assert_eq!(r.requests(Some(1), 2), 2);
        let mut out = String::new();
        r.render(&[], Instant::now(), None, &mut out);
        assert!(
            out.contains("wireloop_proxy_response_body_bytes_total 10"),
            "{out}"
        );
    }

    #[test]
    fn routes_listeners_and_tls_are_counted_and_kept_by_name() {
        let m = Metrics::new(&["api"])
            .listeners(&["tcp://127.0.0.1:80"])
            .routes(&["*/", "api.example.test/v2/"]);
        m.route_request(1, 200);
        m.route_request(1, 503);
        m.route_request(7, 200); // no such route: ignored
        m.client_opened(0);
        m.client_opened(0);
        m.client_closed(0);
        let r = m.for_groups(&["api"]).routes(&["api.example.test/v2/"]);
        r.route_request(0, 204);
        let mut out = String::new();
        r.render(&[], Instant::now(), None, &mut out);
        for line in [
            "wireloop_proxy_route_requests_total{route=\"api.example.test/v2/\",class=\"2xx\"} 2",
            "wireloop_proxy_route_requests_total{route=\"api.example.test/v2/\",class=\"5xx\"} 1",
            "wireloop_proxy_client_connections_open{listener=\"tcp://127.0.0.1:80\"} 1",
            "wireloop_proxy_client_connections_total{listener=\"tcp://127.0.0.1:80\"} 2",
            "wireloop_proxy_tls_handshakes_total 0",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
        assert!(
            !out.contains("route=\"*/\""),
            "a route the reload dropped is not shown"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
