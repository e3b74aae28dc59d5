//! The file as TOML gives it: every table's keys checked (an unknown key is an error
//! with its place), values kept with their spans so that what is wrong with them later
//! names its line too.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub listener: Vec<Spanned<Listener>>,
    #[serde(default)]
    pub upstream: Vec<Spanned<Upstream>>,
    #[serde(default)]
    pub route: Vec<Spanned<Route>>,
    pub proxy: Option<Spanned<Proxy>>,
    pub log: Option<Spanned<Log>>,
    pub limits: Option<Spanned<Limits>>,
    pub admin: Option<Spanned<Admin>>,
}

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Admin {
    /// Where to serve /metrics and /healthz.
    pub listen: Spanned<String>,
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Limits {
    pub requests_per_second_per_ip: Option<Spanned<u32>>,
    pub connections_per_ip: Option<Spanned<u32>>,
    /// Connections open at once, in all (clients and upstreams).
    pub max_connections: Option<Spanned<u32>>,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Log {
    /// `"combined"`, `"json"` or `"off"`.
    pub access: Option<Spanned<String>>,
}

/// `[[listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Listener {
    pub address: Spanned<String>,
    pub tls: Option<Spanned<Tls>>,
    /// Every connection starts with a PROXY protocol header (v1 or v2).
    pub proxy_protocol: Option<Spanned<bool>>,
    /// The networks a header is taken from (with `proxy_protocol`; default: loopback).
    pub trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `tls = { cert, key }` of a listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tls {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    /// More certificates, chosen by the client's server name.
    pub sni: Option<Vec<Spanned<SniCert>>>,
}

/// `{ names, cert, key }` in a listener's `tls.sni`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SniCert {
    pub names: Spanned<Vec<Spanned<String>>>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// `[[upstream]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Upstream {
    pub name: Spanned<String>,
    /// Strings (`"host:port"`, `"http://host:port weight=3"`) or tables
    /// (`{ address, weight }`).
    pub servers: Spanned<Vec<Spanned<toml::Value>>>,
    pub balance: Option<Spanned<String>>,
    pub hash_key: Option<Spanned<String>>,
    pub health: Option<Spanned<Health>>,
    /// CA certificates (PEM) for `https://` servers (default: the webpki roots).
    pub tls_ca: Option<Spanned<String>>,
    /// `"v1"` or `"v2"`: a PROXY protocol header starts every connection to its servers.
    pub send_proxy_protocol: Option<Spanned<String>>,
    /// `"http1"` (default) or `"h2"`: the protocol spoken to its servers.
    pub protocol: Option<Spanned<String>>,
}

/// `health = { .. }` of an upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Health {
    /// An HTTP check of this path; without it, a TCP connect check.
    pub path: Option<Spanned<String>>,
    pub interval_ms: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub rise: Option<Spanned<u32>>,
    pub fall: Option<Spanned<u32>>,
    /// A status (`200`) or a range (`"200-299"`).
    pub expect: Option<Spanned<toml::Value>>,
}

/// `[[route]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Route {
    pub host: Option<Spanned<String>>,
    pub path_prefix: Option<Spanned<String>>,
    pub upstream: Spanned<String>,
    /// Largest request body, in bytes (413 past it).
    pub max_body: Option<Spanned<i64>>,
}

/// `[proxy]`: the engine's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Proxy {
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub first_byte_timeout_ms: Option<Spanned<u64>>,
    pub read_timeout_ms: Option<Spanned<u64>>,
    pub total_timeout_ms: Option<Spanned<u64>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
    pub down_time_ms: Option<Spanned<u64>>,
    pub max_fails: Option<u32>,
    pub pool_size: Option<Spanned<usize>>,
    pub max_attempts: Option<Spanned<u32>>,
    pub rewrite_host: Option<bool>,
}
