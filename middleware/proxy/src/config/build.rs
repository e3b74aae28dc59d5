//! From the file as TOML gives it to a checked configuration: listeners, routes and
//! settings here, upstream groups in `upstream.rs`. Every mistake names its place.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use wireloop::Addr;
use wireloop_middleware::proxy_protocol::ProxyProtocol;
use wireloop_middleware::CertKey;

use super::raw;
use super::{ConfigError, Listener, ProxyConfig};
use crate::access_log::Format;
use crate::limits::Limits;
use crate::phases::Target;
use crate::router::{RouteError, Router};
use crate::settings::Settings;

/// Longest time a setting may be (a day).
const MAX_MS: u64 = 86_400_000;

/// The file being checked.
pub(super) struct Ctx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub dir: &'a Path,
}

impl Ctx<'_> {
    /// An error at `span` of the file.
    pub(super) fn err(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.text, span, message)
    }

    /// A file name of the configuration, relative to its directory.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Milliseconds from 1 to a day.
    pub(super) fn millis(&self, v: &Spanned<u64>, what: &str) -> Result<Duration, ConfigError> {
        match *v.get_ref() {
            ms @ 1..=MAX_MS => Ok(Duration::from_millis(ms)),
            _ => Err(self.err(v.span(), format!("{what} must be 1 to {MAX_MS} ms"))),
        }
    }

    pub(super) fn build(&self, raw: raw::File) -> Result<ProxyConfig, ConfigError> {
        if raw.listener.is_empty() {
            return Err(ConfigError::whole(self.file, "no [[listener]]"));
        }
        if raw.upstream.is_empty() {
            return Err(ConfigError::whole(self.file, "no [[upstream]]"));
        }
        let listeners = raw
            .listener
            .iter()
            .map(|l| self.listener(l))
            .collect::<Result<Vec<_>, _>>()?;
        let groups = self.groups(&raw.upstream)?;
        let names: Vec<&str> = raw
            .upstream
            .iter()
            .map(|u| u.get_ref().name.get_ref().as_str())
            .collect();
        let router = self.router(&raw.route, &names)?;
        let mut settings = match &raw.proxy {
            Some(p) => self.settings(p.get_ref())?,
            None => Settings::default(),
        };
        let mut max_connections = None;
        if let Some(l) = &raw.limits {
            let l = l.get_ref();
            let positive = |v: &Option<Spanned<u32>>, what: &str| match v {
                Some(n) if *n.get_ref() == 0 => {
                    Err(self.err(n.span(), format!("{what} must be at least 1")))
                }
                Some(n) => Ok(Some(*n.get_ref())),
                None => Ok(None),
            };
            settings.limits = Limits::new(
                positive(&l.requests_per_second_per_ip, "requests_per_second_per_ip")?,
                positive(&l.connections_per_ip, "connections_per_ip")?,
            );
            max_connections = positive(&l.max_connections, "max_connections")?.map(|n| n as usize);
        }
        settings.tls_listeners = (0..listeners.len())
            .filter(|&i| listeners[i].tls.is_some())
            .collect();
        let access_log = match raw.log.as_ref().and_then(|l| l.get_ref().access.as_ref()) {
            Some(a) if a.get_ref() == "off" => Some(None),
            Some(a) => {
                Some(Some(Format::parse(a.get_ref()).map_err(|e| {
                    self.err(a.span(), format!("access: {e} (or \"off\")"))
                })?))
            }
            None => None,
        };
        let admin = match &raw.admin {
            Some(a) => {
                let l = &a.get_ref().listen;
                let addr = l.get_ref();
                let full = if addr.contains("://") {
                    addr.clone()
                } else {
                    format!("tcp://{addr}")
                };
                Addr::parse(&full).map_err(|e| self.err(l.span(), e.to_string()))?;
                Some(addr.clone())
            }
            None => None,
        };
        Ok(ProxyConfig {
            listeners,
            groups,
            router,
            settings,
            access_log,
            admin,
            max_connections,
        })
    }

    fn listener(&self, l: &Spanned<raw::Listener>) -> Result<Listener, ConfigError> {
        let raw = l.get_ref();
        let address = raw.address.get_ref();
        Addr::parse(address).map_err(|e| self.err(raw.address.span(), e.to_string()))?;
        let proxy_protocol = self.proxy_protocol(raw)?;
        let Some(tls) = &raw.tls else {
            return Ok(Listener {
                address: address.clone(),
                tls: None,
                sni: Vec::new(),
                self_signed: false,
                proxy_protocol,
            });
        };
        let (cert, self_signed) = match (&tls.get_ref().cert, &tls.get_ref().key) {
            (Some(cert), Some(key)) => {
                let ck =
                    CertKey::from_pem_files(self.path(cert.get_ref()), self.path(key.get_ref()))
                        .map_err(|e| self.err(cert.span(), e.to_string()))?;
                (ck, false)
            }
            (None, None) => {
                let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
                let ck = CertKey::self_signed(&names)
                    .map_err(|e| self.err(tls.span(), e.to_string()))?;
                (ck, true)
            }
            _ => {
                return Err(self.err(
                    tls.span(),
                    "tls needs both cert and key (or neither, for a self-signed certificate)",
                ))
            }
        };
        let mut sni = Vec::new();
        for c in tls.get_ref().sni.iter().flatten() {
            let c = c.get_ref();
            let ck =
                CertKey::from_pem_files(self.path(c.cert.get_ref()), self.path(c.key.get_ref()))
                    .map_err(|e| self.err(c.cert.span(), e.to_string()))?;
            if c.names.get_ref().is_empty() {
                return Err(self.err(c.names.span(), "sni needs at least one name"));
            }
            for n in c.names.get_ref() {
                let name = n.get_ref();
                let host = name.strip_prefix("*.").unwrap_or(name);
                if host.is_empty() || host.contains(['*', '/', ':', ' ']) {
                    return Err(self.err(n.span(), format!("{name:?} is not a server name")));
                }
                sni.push((name.to_ascii_lowercase(), ck.clone()));
            }
        }
        Ok(Listener {
            address: address.clone(),
            tls: Some(cert),
            sni,
            self_signed,
            proxy_protocol,
        })
    }

    /// A listener's `proxy_protocol` and `trusted_proxies`.
    fn proxy_protocol(&self, raw: &raw::Listener) -> Result<Option<ProxyProtocol>, ConfigError> {
        let on = raw.proxy_protocol.as_ref().is_some_and(|b| *b.get_ref());
        let Some(trusted) = &raw.trusted_proxies else {
            return Ok(
                on.then(|| ProxyProtocol::new(&["127.0.0.0/8", "::1"]).expect("loopback networks"))
            );
        };
        if !on {
            return Err(self.err(
                trusted.span(),
                "trusted_proxies needs proxy_protocol = true",
            ));
        }
        let mut nets = Vec::new();
        for n in trusted.get_ref() {
            // Each network on its own, so that a bad one is named with its place.
            ProxyProtocol::new(&[n.get_ref().as_str()]).map_err(|e| self.err(n.span(), e))?;
            nets.push(n.get_ref().as_str());
        }
        if nets.is_empty() {
            return Err(self.err(trusted.span(), "trusted_proxies is empty"));
        }
        Ok(Some(
            ProxyProtocol::new(&nets).map_err(|e| self.err(trusted.span(), e))?,
        ))
    }

    fn router(
        &self,
        routes: &[Spanned<raw::Route>],
        names: &[&str],
    ) -> Result<Router, ConfigError> {
        let mut router = Router::new();
        if routes.is_empty() {
            let _ = router.add(None, "/", 0);
            return Ok(router);
        }
        for r in routes {
            let r = r.get_ref();
            let up = &r.upstream;
            let group = names
                .iter()
                .position(|n| n == up.get_ref())
                .ok_or_else(|| {
                    self.err(up.span(), format!("no upstream named {:?}", up.get_ref()))
                })?;
            let prefix = r.path_prefix.as_ref();
            let host = r.host.as_ref();
            let (host_str, prefix_str) = (
                host.map(|h| h.get_ref().as_str()),
                prefix.map_or("/", |p| p.get_ref().as_str()),
            );
            let mut target = Target::group(group);
            if let Some(m) = &r.max_body {
                let bytes = u64::try_from(*m.get_ref())
                    .map_err(|_| self.err(m.span(), "max_body must be 0 or more bytes"))?;
                target = target.max_body(bytes);
            }
            router
                .add_target(host_str, prefix_str, target)
                .map_err(|e| {
                    let span = match (&e, host, prefix) {
                        (RouteError::Host(_), Some(h), _) => h.span(),
                        (RouteError::Prefix(_), _, Some(p)) => p.span(),
                        _ => up.span(),
                    };
                    self.err(span, e.to_string())
                })?;
        }
        Ok(router)
    }

    fn settings(&self, p: &raw::Proxy) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let times = [
            (
                &p.connect_timeout_ms,
                "connect_timeout_ms",
                &mut s.connect_timeout,
            ),
            (
                &p.first_byte_timeout_ms,
                "first_byte_timeout_ms",
                &mut s.first_byte_timeout,
            ),
            (&p.read_timeout_ms, "read_timeout_ms", &mut s.read_timeout),
            (&p.idle_timeout_ms, "idle_timeout_ms", &mut s.idle_timeout),
            (&p.down_time_ms, "down_time_ms", &mut s.down_time),
        ];
        for (v, what, field) in times {
            if let Some(v) = v {
                *field = self.millis(v, what)?;
            }
        }
        if let Some(v) = &p.total_timeout_ms {
            s.total_timeout = Some(self.millis(v, "total_timeout_ms")?);
        }
        if let Some(n) = &p.pool_size {
            if *n.get_ref() == 0 {
                return Err(self.err(n.span(), "pool_size must be at least 1"));
            }
            s.pool_size = *n.get_ref();
        }
        if let Some(n) = &p.max_attempts {
            if *n.get_ref() == 0 {
                return Err(self.err(n.span(), "max_attempts must be at least 1"));
            }
            s.max_attempts = *n.get_ref();
        }
        if let Some(n) = p.max_fails {
            s.max_fails = n;
        }
        if let Some(b) = p.rewrite_host {
            s.rewrite_host = b;
        }
        Ok(s)
    }
}
