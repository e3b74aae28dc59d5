//! A reverse proxy described by a TOML file (cargo feature `config`): listeners (plain
//! or TLS), named upstream groups (servers with weights, balancing, hash key, health
//! check), routes by host and path prefix, and the engine's settings.
//!
//! ```toml
//! [[listener]]
//! address = "tcp://127.0.0.1:8080"
//!
//! [[listener]]
//! address = "tcp://127.0.0.1:8443"
//! tls = { cert = "cert.pem", key = "key.pem" }   # both omitted: generated self-signed
//! # more certificates by the client's server name (SNI); others get the one above:
//! # tls = { cert = "cert.pem", key = "key.pem", sni = [
//! #     { names = ["static.example.test", "*.cdn.example.test"], cert = "s.pem", key = "s.key" } ] }
//! proxy_protocol = true            # a PROXY header (v1 or v2) starts every connection
//! trusted_proxies = ["10.0.0.0/8"] # ... from these networks only (default: loopback)
//!
//! [[upstream]]
//! name = "api"
//! servers = ["127.0.0.1:9001", "127.0.0.1:9002 weight=3"]   # or { address, weight }
//! balance = "round-robin"          # least-conn | p2c-ewma | hash
//! hash_key = "header:X-User"       # with balance = "hash": client-ip | header:NAME | path
//! health = { path = "/health", interval_ms = 500, rise = 2, fall = 2 }
//! # health: no path = a TCP connect check; also timeout_ms, expect = 200 or "200-299"
//! # tls_ca = "ca.pem"              # for https:// servers (default: webpki roots)
//! # send_proxy_protocol = "v2"      # or "v1": a PROXY header naming the client first
//! # protocol = "h2"                 # HTTP/2 to the servers (h2c, or ALPN h2 for https://)
//!
//! [[upstream]]
//! name = "static"
//! servers = ["localhost:9003"]     # names are resolved when dialing, off the loop
//!
//! [[route]]
//! host = "api.example.test"        # omitted: any host; "*.example.test": subdomains
//! path_prefix = "/"                # the longest matching prefix wins (default "/")
//! upstream = "api"
//!
//! [[route]]
//! path_prefix = "/static/"
//! upstream = "static"
//! max_body = 1048576               # request bodies over this many bytes: 413
//!
//! [limits]                         # optional, every key too
//! requests_per_second_per_ip = 50  # token bucket, burst = one second's worth; 429 past it
//! connections_per_ip = 100         # more from one address are closed at once
//! max_connections = 10000          # all connections, upstream ones too: more are closed
//!
//! [admin]                          # optional
//! listen = "127.0.0.1:9901"        # GET /metrics (Prometheus text), GET /healthz,
//!                                  # POST /reload (in the reverse-proxy example)
//!
//! [log]                            # optional
//! access = "json"                  # or "combined", "off" (default: the program's)
//!
//! [proxy]                          # optional, every key too
//! connect_timeout_ms = 5000
//! first_byte_timeout_ms = 60000
//! read_timeout_ms = 60000
//! total_timeout_ms = 300000        # a whole request and response (default: no limit)
//! idle_timeout_ms = 30000          # pooled upstream connections
//! down_time_ms = 10000             # passive health: how long a failing peer is avoided
//! max_fails = 1                    # ... after this many failures in a row (0: never)
//! pool_size = 64                   # connections per server per loop
//! max_attempts = 3
//! rewrite_host = false
//! ```
//!
//! Without any `[[route]]` every request goes to the first upstream. Relative file
//! names (certificates, CAs) are taken from the configuration file's directory. A file
//! with a mistake is refused as a whole with a [`ConfigError`] naming the file, the line
//! and column, and what is wrong: unknown keys, wrong types, bad addresses, an unknown
//! upstream in a route, a certificate that cannot be read.
//!
//! ```
//! # #[cfg(feature = "config")] {
//! use wireloop_proxy::config::ProxyConfig;
//!
//! let text = "[[listener]]\naddress = \"tcp://127.0.0.1:0\"\n\
//!             [[upstream]]\nname = \"a\"\nservers = [\"127.0.0.1:9001\"]\n\
//!             [[route]]\nupstream = \"b\"\n";
//! let err = ProxyConfig::parse(text, "proxy.toml", ".".as_ref()).unwrap_err();
//! assert_eq!(err.to_string(), "proxy.toml:7:12: no upstream named \"b\"");
//! # }
//! ```

mod build;
mod error;
mod proxy_protocol;
mod raw;
mod tls;
mod upstream;

use std::path::Path;

use wireloop_middleware::proxy_protocol::ProxyProtocol;
use wireloop_middleware::CertKey;

pub use error::ConfigError;
pub use proxy_protocol::ProxyProtocolListeners;
pub use tls::TlsListeners;

use crate::access_log::Format;
use crate::group::Group;
use crate::router::Router;
use crate::settings::Settings;

/// A listener of the file.
#[derive(Clone, Debug)]
pub struct Listener {
    /// Where to listen, as wireloop takes it (`tcp://host:port`, `unix:///path`, ...).
    pub address: String,
    /// Its TLS certificate and key, if it is a TLS listener.
    pub tls: Option<CertKey>,
    /// More certificates of a TLS listener, by server name (`tls.sni`; a name may be a
    /// wildcard, `*.example.test`): a client naming none of them gets `tls`.
    pub sni: Vec<(String, CertKey)>,
    /// The certificate was generated (self-signed) because the file named none.
    pub self_signed: bool,
    /// Its connections start with a PROXY protocol header from one of these networks
    /// (`proxy_protocol = true`, `trusted_proxies`); a header from anyone else, or none,
    /// closes the connection.
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// A configuration, checked and ready to serve.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The listeners, in order (their indexes are the connections' `addr_index`).
    pub listeners: Vec<Listener>,
    /// The upstream groups, in order (indexes are what the router returns).
    pub groups: Vec<Group>,
    /// The routes.
    pub router: Router,
    /// The engine's settings (with the TLS listeners' indexes filled in).
    pub settings: Settings,
    /// `[log] access`: `Some(Some(format))`, `Some(None)` for `"off"`, `None` when the
    /// file does not say (the program's default stands).
    pub access_log: Option<Option<Format>>,
    /// `[admin] listen`: where the program serves its metrics (`host:port`), if the
    /// file says.
    pub admin: Option<String>,
    /// `[limits] max_connections`: connections open at once in all, clients and
    /// upstreams (`Builder::max_connections`: past it new ones are closed at once and
    /// the listener stays healthy); `None`: no cap.
    pub max_connections: Option<usize>,
}

impl ProxyConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<ProxyConfig, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::whole(&name, format!("cannot read it: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        ProxyConfig::parse(&text, &name, dir)
    }

    /// Checks `text`, the contents of the file named `file` (for messages); relative
    /// file names in it are taken from `dir`.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<ProxyConfig, ConfigError> {
        let raw: raw::File = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigError::at(file, text, span, e.message().trim_end())
        })?;
        build::Ctx { file, text, dir }.build(raw)
    }
}

#[cfg(test)]
mod tests;
