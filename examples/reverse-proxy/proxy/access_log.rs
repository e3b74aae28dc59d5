//! The access log: one line per exchange on stdout (client, request line, status, body
//! bytes sent, upstream, duration).

use super::{Client, Proxy, Settings, Upstream};

/// One access log line on stdout.
pub(super) fn access_log(s: &Settings, upstreams: &[Upstream], c: &Client, status: u16) {
    if s.access_log {
        println!(
            "{} \"{} {}\" {} {} {} {}ms",
            c.ip,
            c.method,
            c.target,
            status,
            c.sent,
            upstreams[c.upstream].url,
            c.started.elapsed().as_millis()
        );
    }
}

impl Proxy {
    /// [`access_log`] with this proxy's settings and upstreams.
    pub(super) fn access_log(&self, c: &Client, status: u16) {
        access_log(&self.s, &self.upstreams, c, status);
    }
}
