//! Command-line settings: balancing, timeouts, pool size, and the upstreams' URLs.

use std::time::Duration;

/// How requests are spread over upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// The one with the fewest requests in flight on this loop.
    LeastConnections,
}

/// Behaviour settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--balance`.
    pub balance: Balance,
    /// `--connect-timeout`: resolving and connecting to an upstream.
    pub connect_timeout: Duration,
    /// `--upstream-timeout`: from sending a request (or its last body byte) to the
    /// response head; then 504.
    pub upstream_timeout: Duration,
    /// `--read-timeout`: longest wait for the next bytes of an upstream's response once
    /// its head arrived (nginx's `proxy_read_timeout`); then the client is cut off.
    pub read_timeout: Duration,
    /// `--send-timeout`: longest a client (or upstream) may take no output while some is
    /// queued for it (nginx's `send_timeout`); then it is closed.
    pub send_timeout: Duration,
    /// `--idle-timeout`: how long a pooled connection may stay idle.
    pub idle_timeout: Duration,
    /// `--down-time`: how long an upstream is avoided after a failed connect.
    pub down_time: Duration,
    /// `--pool-size`: most connections per upstream on one loop.
    pub pool_size: usize,
    /// `--rewrite-host`: send the upstream's authority as `Host`.
    pub rewrite_host: bool,
    /// Access log lines on stdout (off with `--no-access-log`).
    pub access_log: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            down_time: Duration::from_secs(10),
            pool_size: 64,
            rewrite_host: false,
            access_log: true,
        }
    }
}

/// An upstream from `--upstream`.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// As given.
    pub url: String,
    /// `https`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// What to dial: `host:port`.
    pub dial: String,
    /// `Host` value for `--rewrite-host`: host, and the port unless it is the default.
    pub authority: String,
}

impl Upstream {
    /// Parses `http://host[:port][/]` or `https://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("the scheme must be http:// or https://".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err("expected scheme://host[:port] (no path)".into());
        }
        let default_port = if tls { 443 } else { 80 };
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
        Ok(Upstream {
            url: url.to_string(),
            tls,
            dial: format!("{bracketed}:{port}"),
            host,
            authority,
        })
    }
}
