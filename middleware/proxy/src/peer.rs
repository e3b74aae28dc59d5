//! A peer of an upstream group: where to dial it, how to name it, its weight, and its TLS.

use wireloop_middleware::TlsClient;

/// One upstream server.
#[derive(Clone, Debug)]
pub struct Peer {
    /// As given (`http://host:port`, `https://host:port` or `host:port`).
    pub url: String,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// What to dial: `host:port`. A name is resolved off the loop for every new
    /// connection, the answer cached for its DNS TTL: once that expires, new connections
    /// follow a changed record (pooled ones stay until their idle timeout).
    pub dial: String,
    /// `Host` value when the request's is rewritten: host, and the port unless default.
    pub authority: String,
    /// Relative share of the traffic (at least 1).
    pub weight: u32,
    /// The scheme was `https`: dial with TLS ([`Peer::tls`] set by the caller, or a
    /// default client for [`host`](Peer::host)).
    pub https: bool,
    /// The TLS client layer each dial to this peer carries (`None`: plain).
    pub tls: Option<TlsClient>,
    /// `tls` was made by the group (not given): it follows the group's protocol's ALPN.
    pub(crate) default_tls: bool,
}

impl Peer {
    /// Parses `http://host[:port][/]`, `https://host[:port][/]`, or `host:port` (plain).
    /// IPv6 literals go in brackets.
    pub fn parse(url: &str) -> Result<Peer, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if url.contains("://") {
            return Err("the scheme must be http:// or https://".into());
        } else {
            if !url.contains(':') || url.starts_with('[') && !url.contains("]:") {
                return Err("expected host:port or http(s)://host[:port]".into());
            }
            (false, url)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err("expected scheme://host[:port] (no path)".into());
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed [")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| "bad port")?,
                None if after.is_empty() => default_port,
                None => return Err("junk after ]".into()),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| "bad port")?),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err("missing host or port".into());
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == default_port {
            bracketed.clone()
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Peer {
            url: url.to_string(),
            https,
            dial: format!("{bracketed}:{port}"),
            host,
            authority,
            weight: 1,
            tls: None,
            default_tls: false,
        })
    }

    /// A peer dialed at `addr` exactly as given — any address wireloop dials
    /// (`tcp://host:port`, `host:port`, `unix:///path`) — for a layer-4 proxy, which has
    /// no `Host` to rewrite. Check `addr` with [`wireloop::Addr::parse`] first.
    pub fn raw(addr: &str) -> Peer {
        Peer {
            url: addr.to_string(),
            host: addr.to_string(),
            dial: addr.to_string(),
            authority: addr.to_string(),
            weight: 1,
            https: false,
            tls: None,
            default_tls: false,
        }
    }

    /// Sets the weight (at least 1).
    pub fn weight(mut self, weight: u32) -> Peer {
        self.weight = weight.max(1);
        self
    }

    /// Dials this peer with `tls` (SNI and verification for its name).
    pub fn tls(mut self, tls: TlsClient) -> Peer {
        self.tls = Some(tls);
        self.default_tls = false;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn urls_parse() {
        let p = Peer::parse("http://127.0.0.1:9001/").unwrap();
        assert_eq!(
            (p.dial.as_str(), p.authority.as_str()),
            ("127.0.0.1:9001", "127.0.0.1:9001")
        );
        let p = Peer::parse("https://backend").unwrap();
        assert!(p.https);
        assert_eq!(
            (p.dial.as_str(), p.authority.as_str()),
            ("backend:443", "backend")
        );
        let p = Peer::parse("[::1]:8080").unwrap();
        assert_eq!((p.host.as_str(), p.dial.as_str()), ("::1", "[::1]:8080"));
        for bad in [
            "ftp://x",
            "http://x/path",
            "http://:80",
            "http://x:0",
            "nohost",
            "http://x:99999",
        ] {
            assert!(Peer::parse(bad).is_err(), "{bad}");
        }
    }
}
