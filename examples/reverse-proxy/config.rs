//! `--config FILE`: listeners, upstream groups, routes and settings from a TOML file
//! (`wireloop_proxy::config`); a mistake in it stops the start with its file and line.
//! `SIGHUP` or `POST /reload` on the admin listener reads it again (see `reload.rs`).

use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use wireloop::{Error, Loops, Server};
use wireloop_middleware::proxy_protocol::ProxyProtocol;
use wireloop_middleware::{translate, CertKey};
use wireloop_proxy::access_log::{AccessLog, Format};
use wireloop_proxy::config::ProxyConfig;
use wireloop_proxy::{Group, HttpProxy, Limits, Metrics};

use crate::admin::{Admin, View};
use crate::policy::Logging;
use crate::reload::{self, Event, Generation};

/// What the command line adds to the file.
#[derive(Clone)]
pub struct Flags {
    pub loops: i64,
    pub send_timeout: Duration,
    pub access_log: Option<Format>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub resumption: bool,
    /// Where to write a generated certificate.
    pub cert_out: Option<String>,
    /// `--admin`: where to serve /metrics (the file's `[admin] listen` wins).
    pub admin: Option<String>,
    /// `--max-connections` (the file's `[limits] max_connections` wins).
    pub max_connections: Option<usize>,
}

/// What a generation hands to the next one.
pub struct Kept {
    groups: Vec<Group>,
    metrics: Option<Metrics>,
    /// The access log's format and writer (`None`: off).
    access: Option<(Format, AccessLog)>,
    limits: Limits,
    /// Generated certificates, by listener address: a reload keeps serving them.
    generated: Vec<(String, CertKey)>,
    admin: Option<String>,
}

/// Serves the proxy the file at `path` describes, until shut down.
pub fn run(path: &str, flags: Flags) -> Result<(), String> {
    let (tx, events) = mpsc::channel();
    reload::on_signals(tx.clone())?;
    let cfg = ProxyConfig::load(path).map_err(|e| e.to_string())?;
    let metrics = cfg
        .admin
        .as_ref()
        .or(flags.admin.as_ref())
        .map(|_| Metrics::new(&cfg.groups.iter().map(|g| g.name()).collect::<Vec<_>>()));
    let first = start(cfg, &flags, None, metrics, &tx)?;
    let admin = match &first.kept.admin {
        Some(addr) => Some(Admin::start(addr, view(&first), Some(tx.clone()))?),
        None => None,
    };
    let next = |cur: &Generation<Kept>| -> Result<Generation<Kept>, String> {
        let cfg = ProxyConfig::load(path).map_err(|e| e.to_string())?;
        let admin = cfg.admin.clone().or(flags.admin.clone());
        if admin != cur.kept.admin {
            log::warn!("the admin listener's address changes only with a restart");
        }
        let listeners = cur.handle.listeners().map_err(|e| e.to_string())?;
        start(cfg, &flags, Some((listeners, &cur.kept)), None, &tx)
    };
    let swapped = |g: &Generation<Kept>| {
        if let Some(a) = &admin {
            a.follow(view(g));
        }
    };
    reload::run(first, events, next, swapped);
    if let Some(a) = admin {
        a.stop();
    }
    Ok(())
}

fn view(g: &Generation<Kept>) -> View {
    View {
        groups: g.kept.groups.clone(),
        metrics: g.kept.metrics.clone(),
        proxy: g.handle.clone(),
    }
}

/// Starts a generation serving `cfg`: on new sockets, or on the running generation's
/// (`prev`), reusing what it can of it.
fn start(
    mut cfg: ProxyConfig,
    flags: &Flags,
    prev: Option<(wireloop::Listeners, &Kept)>,
    metrics: Option<Metrics>,
    events: &Sender<Event>,
) -> Result<Generation<Kept>, String> {
    let mut builder = Server::builder()
        .loops(Loops::from_count(flags.loops))
        .send_timeout(Some(flags.send_timeout));
    if let Some(n) = cfg.max_connections.or(flags.max_connections) {
        builder = builder.max_connections(n);
    }
    for l in &cfg.listeners {
        builder = builder.listen(&l.address).map_err(|e| e.to_string())?;
    }
    let (kept, listeners) = match prev {
        Some((listeners, kept)) => (Some(kept), Some(listeners)),
        None => (None, None),
    };
    if let Some(l) = listeners {
        builder = builder.inherit(l);
    }
    // A listener whose certificate was generated keeps the one it had.
    let mut generated = Vec::new();
    for l in cfg.listeners.iter_mut().filter(|l| l.self_signed) {
        let old = kept.and_then(|k| k.generated.iter().find(|(a, _)| *a == l.address));
        if let Some((_, ck)) = old {
            l.tls = Some(ck.clone());
        }
        if let Some(ck) = &l.tls {
            generated.push((l.address.clone(), ck.clone()));
        }
    }
    if let (Some(out), None, Some((_, ck))) = (&flags.cert_out, kept, generated.first()) {
        std::fs::write(out, ck.leaf_pem()).map_err(|e| format!("cannot write {out}: {e}"))?;
        log::info!("wrote the generated certificate to {out}");
    }
    let mut tls = cfg.tls_layer(flags.resumption).map_err(|e| e.to_string())?;
    let server = builder.build().map_err(|e| e.to_string())?;
    for (l, addr) in cfg.listeners.iter().zip(server.local_addrs()) {
        let scheme = if l.tls.is_some() { "https" } else { "http" };
        log::info!("reverse-proxy listening on {scheme}://{addr}");
    }
    let names: Vec<String> = cfg
        .groups
        .iter()
        .map(|g| {
            let peers: Vec<&str> = g.peers().iter().map(|p| p.url.as_str()).collect();
            format!("{} ({})", g.name(), peers.join(", "))
        })
        .collect();
    log::info!(
        "reverse-proxy forwarding to {} ({} loop(s))",
        names.join(", "),
        server.num_loops()
    );
    // Each listener's own PROXY protocol setting, else the command line's for all.
    let pp = cfg.proxy_protocol_layer(flags.proxy_protocol.as_ref());
    // The file's [log] access, else the command line's; the writer goes on if the format
    // stays.
    let format = cfg.access_log.unwrap_or(flags.access_log);
    let access = match (format, kept.and_then(|k| k.access.as_ref())) {
        (Some(f), Some((old, log))) if *old == f => Some((f, log.clone())),
        (Some(f), _) => Some((f, AccessLog::start(f, std::io::stdout()))),
        (None, _) => None,
    };
    let route_names = cfg.router.route_names().to_vec();
    let policy = Logging {
        log: access.as_ref().map(|(_, l)| l.clone()),
        router: Some(cfg.router),
    };
    let addresses: Vec<String> = cfg.listeners.iter().map(|l| l.address.clone()).collect();
    let (groups, mut settings) = (cfg.groups, cfg.settings);
    // Limits that stay the same go on counting (connections open, tokens).
    if let Some(k) = kept {
        let (a, b) = (&k.limits, &settings.limits);
        if a.requests_per_second_per_ip == b.requests_per_second_per_ip
            && a.connections_per_ip == b.connections_per_ip
        {
            settings.limits = k.limits.clone();
        }
    }
    // Counters by group and by listener (its address as written in the file), going on
    // from the previous configuration's.
    let names: Vec<&str> = groups.iter().map(|g| g.name()).collect();
    let metrics = match kept {
        Some(k) => k.metrics.as_ref().map(|m| m.for_groups(&names)),
        None => metrics,
    }
    .map(|m| m.listeners(&addresses).routes(&route_names));
    if let Some(m) = &metrics {
        tls = tls.counting(m.tls());
    }
    settings.metrics = metrics.clone();
    let handle = server.handle();
    let kept = Kept {
        groups: groups.clone(),
        metrics,
        access,
        limits: settings.limits.clone(),
        generated,
        admin: kept.map_or(cfg.admin.or(flags.admin.clone()), |k| k.admin.clone()),
    };
    let serve = move || {
        server
            .serve(move |_| {
                let proxy = HttpProxy::new(policy.clone(), groups.clone(), settings.clone());
                let select = tls.clone();
                let tls = translate(proxy, move |c| select.is_tls(c), tls.clone());
                // The PROXY protocol header comes first, below TLS.
                let select = pp.clone();
                translate(tls, move |c| select.applies(c), pp.clone())
            })
            .map_err(|e: Error| e.to_string())
    };
    Generation::spawn("proxy".into(), handle, kept, events.clone(), serve)
}
