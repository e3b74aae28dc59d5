//! What an HTTP proxy's engine is told: timeouts, pool limits, retries, which listeners
//! are TLS, and the HTTP/1.1 server adapter's configuration.

use std::time::Duration;

use wireloop_middleware::http1::Config;

use crate::limits::Limits;
use crate::metrics::Metrics;

/// The HTTP proxy's settings. Every field has a default; change them with struct update
/// syntax.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Resolving and connecting to a peer (nginx's `proxy_connect_timeout`). Default 5 s.
    pub connect_timeout: Duration,
    /// From the request (or its last body byte) going out to the response head; then
    /// the failure is a timeout (504). Default 60 s.
    pub first_byte_timeout: Duration,
    /// Longest pause between two reads of a response once its head arrived (nginx's
    /// `proxy_read_timeout`); then the client's response is cut off. Default 60 s.
    pub read_timeout: Duration,
    /// Longest a request may take as a whole, from its head arriving to the last byte
    /// of its response (envoy's route timeout): past it, a request still waiting for a
    /// connection or a response head gets a timeout failure (504 unless the policy
    /// answers otherwise; never retried), and a response in progress is cut off. Not
    /// for tunnels (after a `101`). Default `None`: no limit beyond the others.
    pub total_timeout: Option<Duration>,
    /// How long a pooled keep-alive connection may stay idle. Default 30 s.
    pub idle_timeout: Duration,
    /// Failures in a row (connect failures, no response head in time) after which a peer
    /// is marked down (passive health; 0: never; never a group's only peer). Default 1.
    pub max_fails: u32,
    /// How long a peer marked down is avoided. Default 10 s.
    pub down_time: Duration,
    /// Most connections per peer per loop (idle and busy); requests beyond wait for one.
    /// Default 64.
    pub pool_size: usize,
    /// Most attempts per request (the first and its retries on other peers). Default 3.
    pub max_attempts: u32,
    /// Send the peer's authority as `Host` (default: keep the client's).
    pub rewrite_host: bool,
    /// Per-client-IP connection and request-rate limits (default: none). Shared by the
    /// clones of these settings, so by every loop (see [`Limits`]).
    pub limits: Limits,
    /// Counters for `/metrics` (see [`Metrics`]); `None` (default): none kept.
    pub metrics: Option<Metrics>,
    /// Listener indexes whose connections are TLS (for `X-Forwarded-Proto`).
    pub tls_listeners: Vec<usize>,
    /// The HTTP/1.1 server adapter's configuration for client connections.
    pub http: Config,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            total_timeout: None,
            idle_timeout: Duration::from_secs(30),
            max_fails: 1,
            down_time: Duration::from_secs(10),
            pool_size: 64,
            max_attempts: 3,
            rewrite_host: false,
            limits: Limits::default(),
            metrics: None,
            tls_listeners: Vec::new(),
            // The engine writes all staged response bytes whenever the client's output is
            // at or below the high-water mark: a slow client's output then crosses it and
            // the loop stops reading the linked upstream.
            // HTTP/2 clients (ALPN `h2`, prior knowledge) are served too, a state per
            // stream.
            http: Config {
                output_low_water: 1 << 20,
                output_high_water: 1 << 20,
                ..Config::default()
            },
        }
    }
}

/// The protocols a TLS listener of the proxy offers by ALPN, most preferred first.
pub const CLIENT_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
