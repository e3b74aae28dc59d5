//! `[[upstream]]` tables to groups: servers (with weights, TLS for `https://`),
//! balancing, hash key and health check, each mistake at its place.

use toml::{Spanned, Value};
use wireloop_middleware::proxy_protocol::Version;
use wireloop_middleware::TlsClient;

use super::build::Ctx;
use super::raw;
use super::ConfigError;
use crate::balance::Balance;
use crate::group::{Group, UpstreamProtocol};
use crate::health::{CheckKind, HealthCheck};
use crate::key::HashKey;
use crate::peer::Peer;

/// Highest weight of a server.
const MAX_WEIGHT: i64 = 1000;

const SERVER_FORMS: &str =
    "a server is \"host:port\", \"http(s)://host:port weight=N\" or { address = \"..\", weight = N }";

impl Ctx<'_> {
    /// The groups, in order; names must differ.
    pub(super) fn groups(&self, ups: &[Spanned<raw::Upstream>]) -> Result<Vec<Group>, ConfigError> {
        let mut groups = Vec::with_capacity(ups.len());
        for (i, u) in ups.iter().enumerate() {
            let name = &u.get_ref().name;
            if name.get_ref().is_empty() {
                return Err(self.err(name.span(), "an upstream needs a name"));
            }
            if ups[..i]
                .iter()
                .any(|o| o.get_ref().name.get_ref() == name.get_ref())
            {
                return Err(self.err(
                    name.span(),
                    format!("a second upstream named {:?}", name.get_ref()),
                ));
            }
            groups.push(self.group(u.get_ref())?);
        }
        Ok(groups)
    }

    fn group(&self, u: &raw::Upstream) -> Result<Group, ConfigError> {
        let ca = match &u.tls_ca {
            Some(f) => Some(
                std::fs::read(self.path(f.get_ref()))
                    .map_err(|e| self.err(f.span(), format!("cannot read {}: {e}", f.get_ref())))?,
            ),
            None => None,
        };
        let protocol = match &u.protocol {
            Some(p) => UpstreamProtocol::parse(p.get_ref()).map_err(|e| self.err(p.span(), e))?,
            None => UpstreamProtocol::Http1,
        };
        if u.servers.get_ref().is_empty() {
            return Err(self.err(u.servers.span(), "no servers"));
        }
        let peers = u
            .servers
            .get_ref()
            .iter()
            .map(|s| self.server(s, ca.as_deref(), protocol))
            .collect::<Result<Vec<_>, _>>()?;
        let balance = match &u.balance {
            Some(b) => Balance::parse(b.get_ref()).map_err(|e| self.err(b.span(), e))?,
            None => Balance::RoundRobin,
        };
        // Kept whatever the balancing (consistent hashing uses it; a policy may too).
        let key = match &u.hash_key {
            Some(k) => Some(HashKey::parse(k.get_ref()).map_err(|e| self.err(k.span(), e))?),
            None => None,
        };
        let name = &u.name;
        let mut group =
            Group::new(name.get_ref(), peers, balance).map_err(|e| self.err(name.span(), e))?;
        if let Some(key) = key {
            group = group.with_hash_key(key);
        }
        if let Some(h) = &u.health {
            let check = self.health(h)?;
            group = group
                .with_health_check(check)
                .map_err(|e| self.err(h.span(), e))?;
        }
        if let Some(v) = &u.send_proxy_protocol {
            let version = match v.get_ref().as_str() {
                "v1" => Version::V1,
                "v2" => Version::V2,
                other => {
                    return Err(self.err(
                        v.span(),
                        format!("send_proxy_protocol must be \"v1\" or \"v2\", not {other:?}"),
                    ))
                }
            };
            group = group.with_send_proxy(version);
        }
        group = group
            .with_protocol(protocol)
            .map_err(|e| self.err(name.span(), e))?;
        Ok(group)
    }

    /// One entry of `servers`.
    fn server(
        &self,
        v: &Spanned<Value>,
        ca: Option<&[u8]>,
        protocol: UpstreamProtocol,
    ) -> Result<Peer, ConfigError> {
        let at = |m: String| self.err(v.span(), m);
        let (address, weight) = match v.get_ref() {
            Value::String(s) => {
                let mut words = s.split_whitespace();
                let address = words.next().ok_or_else(|| at(SERVER_FORMS.into()))?;
                let mut weight = None;
                for w in words {
                    let n = w
                        .strip_prefix("weight=")
                        .ok_or_else(|| at(format!("unknown server option {w:?} (weight=N)")))?;
                    let n = n
                        .parse::<i64>()
                        .map_err(|_| at(format!("bad weight {n:?}")))?;
                    weight = Some(n);
                }
                (address.to_string(), weight)
            }
            Value::Table(t) => {
                if let Some(k) = t
                    .keys()
                    .find(|k| !matches!(k.as_str(), "address" | "weight"))
                {
                    return Err(at(format!("unknown server key {k:?} (address, weight)")));
                }
                let address = match t.get("address") {
                    Some(Value::String(a)) => a.clone(),
                    _ => return Err(at("a server table needs address = \"host:port\"".into())),
                };
                let weight = match t.get("weight") {
                    None => None,
                    Some(Value::Integer(n)) => Some(*n),
                    Some(_) => return Err(at("weight must be a number".into())),
                };
                (address, weight)
            }
            _ => return Err(at(SERVER_FORMS.into())),
        };
        let mut peer = Peer::parse(&address).map_err(|e| at(format!("{address}: {e}")))?;
        if let Some(w) = weight {
            if !(1..=MAX_WEIGHT).contains(&w) {
                return Err(at(format!("weight must be 1 to {MAX_WEIGHT}")));
            }
            peer = peer.weight(w as u32);
        }
        if peer.https {
            let mut b = TlsClient::builder()
                .server_name(&peer.host)
                .alpn(&[protocol.alpn()]);
            if let Some(pem) = ca {
                b = b.root_ca_pem(pem).map_err(|e| at(e.to_string()))?;
            }
            peer = peer.tls(b.build().map_err(|e| at(e.to_string()))?);
        }
        Ok(peer)
    }

    /// `health = { .. }`.
    fn health(&self, spanned: &Spanned<raw::Health>) -> Result<HealthCheck, ConfigError> {
        let h = spanned.get_ref();
        let mut check = match &h.path {
            Some(p) => HealthCheck::http(p.get_ref()).map_err(|e| self.err(p.span(), e))?,
            None => HealthCheck::tcp(),
        };
        if let Some(v) = &h.interval_ms {
            check.interval = self.millis(v, "interval_ms")?;
            // A check takes at most its interval unless told otherwise.
            check.timeout = check.timeout.min(check.interval);
        }
        if let Some(v) = &h.timeout_ms {
            check.timeout = self.millis(v, "timeout_ms")?;
        }
        for (v, what, field) in [
            (&h.rise, "rise", &mut check.rise),
            (&h.fall, "fall", &mut check.fall),
        ] {
            if let Some(v) = v {
                if *v.get_ref() == 0 {
                    return Err(self.err(v.span(), format!("{what} must be at least 1")));
                }
                *field = *v.get_ref();
            }
        }
        if let Some(e) = &h.expect {
            let CheckKind::Http { expect, .. } = &mut check.kind else {
                return Err(self.err(e.span(), "expect needs a path (an HTTP check)"));
            };
            *expect = self.statuses(e)?;
        }
        check.validate().map_err(|m| self.err(spanned.span(), m))?;
        Ok(check)
    }

    /// `expect = 200` or `expect = "200-299"`.
    fn statuses(&self, e: &Spanned<Value>) -> Result<(u16, u16), ConfigError> {
        let bad = || {
            self.err(
                e.span(),
                "expect is a status (200) or a range (\"200-299\") of 100-999",
            )
        };
        let (lo, hi) = match e.get_ref() {
            Value::Integer(n) => (*n, *n),
            Value::String(s) => {
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let num = |x: &str| x.trim().parse::<i64>().map_err(|_| bad());
                (num(a)?, num(b)?)
            }
            _ => return Err(bad()),
        };
        if !(100..=999).contains(&lo) || !(lo..=999).contains(&hi) {
            return Err(bad());
        }
        Ok((lo as u16, hi as u16))
    }
}
