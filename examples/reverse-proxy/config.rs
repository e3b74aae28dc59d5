//! `--config FILE`: listeners, upstream groups, routes and settings from a TOML file
//! (`wireloop_proxy::config`); a mistake in it stops the start with its file and line.

use std::time::Duration;

use wireloop::{Error, Loops, Server};
use wireloop_middleware::proxy_protocol::ProxyProtocol;
use wireloop_middleware::translate;
use wireloop_proxy::access_log::{AccessLog, Format};
use wireloop_proxy::config::ProxyConfig;
use wireloop_proxy::{HttpProxy, Metrics};

use crate::admin::Admin;

use crate::policy::Logging;

/// What the command line adds to the file.
pub struct Flags<'a> {
    pub loops: i64,
    pub send_timeout: Duration,
    pub access_log: Option<Format>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub resumption: bool,
    /// Where to write a generated certificate.
    pub cert_out: Option<&'a str>,
    /// `--admin`: where to serve /metrics (the file's `[admin] listen` wins).
    pub admin: Option<String>,
}

/// Serves the proxy the file at `path` describes, until shut down.
pub fn run(path: &str, flags: Flags<'_>) -> Result<(), String> {
    let cfg = ProxyConfig::load(path).map_err(|e| e.to_string())?;
    let mut builder = Server::builder()
        .loops(Loops::from_count(flags.loops))
        .send_timeout(Some(flags.send_timeout));
    for l in &cfg.listeners {
        builder = builder.listen(&l.address).map_err(|e| e.to_string())?;
    }
    if let (Some(out), Some(ck)) = (
        flags.cert_out,
        cfg.listeners
            .iter()
            .find(|l| l.self_signed)
            .and_then(|l| l.tls.as_ref()),
    ) {
        std::fs::write(out, ck.leaf_pem()).map_err(|e| format!("cannot write {out}: {e}"))?;
        log::info!("wrote the generated certificate to {out}");
    }
    let tls = cfg.tls_layer(flags.resumption).map_err(|e| e.to_string())?;
    let server = builder.build().map_err(|e| e.to_string())?;
    crate::common::shutdown_on_signal(server.handle());
    for (l, addr) in cfg.listeners.iter().zip(server.local_addrs()) {
        let scheme = if l.tls.is_some() { "https" } else { "http" };
        log::info!("reverse-proxy listening on {scheme}://{addr}");
    }
    let groups: Vec<String> = cfg
        .groups
        .iter()
        .map(|g| {
            let peers: Vec<&str> = g.peers().iter().map(|p| p.url.as_str()).collect();
            format!("{} ({})", g.name(), peers.join(", "))
        })
        .collect();
    log::info!(
        "reverse-proxy forwarding to {} ({} loop(s))",
        groups.join(", "),
        server.num_loops()
    );
    // Each listener's own PROXY protocol setting, else the command line's for all.
    let pp = cfg.proxy_protocol_layer(flags.proxy_protocol.as_ref());
    let policy = Logging {
        // The file's [log] access, else the command line's.
        log: cfg
            .access_log
            .unwrap_or(flags.access_log)
            .map(|format| AccessLog::start(format, std::io::stdout())),
        router: Some(cfg.router),
    };
    let (groups, mut settings) = (cfg.groups, cfg.settings);
    let admin = match cfg.admin.or(flags.admin) {
        Some(addr) => {
            let names: Vec<&str> = groups.iter().map(|g| g.name()).collect();
            let metrics = Metrics::new(&names);
            settings.metrics = Some(metrics.clone());
            Some(Admin::start(
                &addr,
                metrics,
                groups.clone(),
                server.handle(),
            )?)
        }
        None => None,
    };
    let served = server
        .serve(move |_| {
            let proxy = HttpProxy::new(policy.clone(), groups.clone(), settings.clone());
            let select = tls.clone();
            let tls = translate(proxy, move |c| select.is_tls(c), tls.clone());
            // The PROXY protocol header comes first, below TLS.
            let select = pp.clone();
            translate(tls, move |c| select.applies(c), pp.clone())
        })
        .map_err(|e: Error| e.to_string());
    if let Some(a) = admin {
        a.stop();
    }
    served
}
