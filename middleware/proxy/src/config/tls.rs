//! The TLS of a configuration's listeners as one layer: each TLS listener terminates
//! TLS with its own certificate, the others stay plain. Put it under the proxy with
//! [`translate`](wireloop_middleware::translate()):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use wireloop::Server;
//! use wireloop_middleware::translate;
//! use wireloop_proxy::config::ProxyConfig;
//! use wireloop_proxy::{HttpProxy, ProxyHttp};
//!
//! #[derive(Clone)]
//! struct Policy;
//! impl ProxyHttp for Policy { type Ctx = (); }
//!
//! let cfg = ProxyConfig::load("proxy.toml")?;
//! let tls = cfg.tls_layer(true)?;
//! let mut builder = Server::builder();
//! for l in &cfg.listeners {
//!     builder = builder.listen(&l.address)?;
//! }
//! builder.serve(move |_| {
//!     let proxy = HttpProxy::new(Policy, cfg.groups.clone(), cfg.settings.clone());
//!     let select = tls.clone();
//!     translate(proxy, move |c| select.is_tls(c), tls.clone())
//! })?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use wireloop::layer::{ConnInfo, Layer, Session};
use wireloop::Error;
use wireloop_middleware::TlsServer;

use super::ProxyConfig;

/// One TLS server per TLS listener, chosen by the connection's listener.
#[derive(Clone, Debug)]
pub struct TlsListeners {
    /// By listener index; `None`: plain.
    servers: Vec<Option<TlsServer>>,
}

impl TlsListeners {
    /// Whether the connection `info` describes came on a TLS listener.
    pub fn is_tls(&self, info: &ConnInfo) -> bool {
        !info.dialed && matches!(self.servers.get(info.addr_index), Some(Some(_)))
    }

    /// Counts the handshakes of every TLS listener in `counters` (see
    /// [`TlsServer::counting`]).
    pub fn counting(mut self, counters: &wireloop_middleware::tls::TlsCounters) -> TlsListeners {
        for s in self.servers.iter_mut().flatten() {
            *s = s.clone().counting(counters.clone());
        }
        self
    }

    /// Whether no listener is TLS.
    pub fn is_empty(&self) -> bool {
        self.servers.iter().all(Option::is_none)
    }
}

impl Layer for TlsListeners {
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        match self.servers.get(info.addr_index) {
            Some(Some(tls)) => tls.session(info),
            _ => Err(Error::layer("no TLS on this listener")),
        }
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        self.servers
            .iter()
            .flatten()
            .filter_map(|t| t.handshake_timeout())
            .min()
    }
}

impl ProxyConfig {
    /// The TLS layer of the listeners (ALPN [`CLIENT_ALPN`](crate::CLIENT_ALPN): `h2`,
    /// `http/1.1`; `resumption`: session tickets and cache on).
    pub fn tls_layer(&self, resumption: bool) -> Result<TlsListeners, Error> {
        let servers = self
            .listeners
            .iter()
            .map(|l| {
                l.tls
                    .as_ref()
                    .map(|ck| {
                        let mut b = TlsServer::builder(ck.clone());
                        for (name, ck) in &l.sni {
                            b = b.sni_cert(name, ck.clone());
                        }
                        b.alpn(crate::CLIENT_ALPN).resumption(resumption).build()
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlsListeners { servers })
    }
}
