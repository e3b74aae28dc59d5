//! The PROXY protocol of a configuration's listeners as one layer: a listener with
//! `proxy_protocol = true` takes a header (v1 or v2) from its `trusted_proxies` first,
//! the others take none. Put it under the TLS layer (the header precedes the
//! ClientHello), as the outermost [`translate`](wireloop_middleware::translate()):
//! `translate(tls_stack, move |c| pp.applies(c), pp.clone())`.

use wireloop::layer::{ConnInfo, Layer, Session};
use wireloop::Error;
use wireloop_middleware::proxy_protocol::ProxyProtocol;

use super::ProxyConfig;

/// One PROXY protocol layer per listener that takes headers, chosen by the connection's
/// listener.
#[derive(Clone, Debug)]
pub struct ProxyProtocolListeners {
    /// By listener index; `None`: no header expected.
    by: Vec<Option<ProxyProtocol>>,
}

impl ProxyProtocolListeners {
    /// Whether the connection `info` describes came on a listener that takes a header.
    pub fn applies(&self, info: &ConnInfo) -> bool {
        !info.dialed && matches!(self.by.get(info.addr_index), Some(Some(_)))
    }

    /// Whether no listener takes a header.
    pub fn is_empty(&self) -> bool {
        self.by.iter().all(Option::is_none)
    }
}

impl Layer for ProxyProtocolListeners {
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        match self.by.get(info.addr_index) {
            Some(Some(pp)) => pp.session(info),
            _ => Err(Error::layer("no PROXY protocol on this listener")),
        }
    }

    fn needs_peer(&self) -> bool {
        // The sender's address decides whether its header is trusted.
        !self.is_empty()
    }
}

impl ProxyConfig {
    /// The PROXY protocol layer of the listeners: each listener's own
    /// (`proxy_protocol`, `trusted_proxies`), else `default` for every listener (a
    /// command line's `--proxy-protocol-from`, say), else none.
    pub fn proxy_protocol_layer(&self, default: Option<&ProxyProtocol>) -> ProxyProtocolListeners {
        let by = self
            .listeners
            .iter()
            .map(|l| l.proxy_protocol.as_ref().or(default).cloned())
            .collect();
        ProxyProtocolListeners { by }
    }
}
