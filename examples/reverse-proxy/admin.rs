//! The admin listener (`--admin ADDR`, `[admin] listen`): `GET /metrics` in the
//! Prometheus text format and `GET /healthz`, served by a one-loop server of its own on
//! its own thread, so a scrape never shares a loop with the proxied traffic.

use std::thread::JoinHandle;
use std::time::Instant;

use wireloop::{Handle, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_proxy::{Group, Metrics};

/// A running admin server; [`Admin::stop`] ends it.
pub struct Admin {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl Admin {
    /// Serves the metrics of `proxy` (its groups `groups`, its counters `metrics`) on
    /// `addr` (`host:port` or any address wireloop takes).
    pub fn start(
        addr: &str,
        metrics: Metrics,
        groups: Vec<Group>,
        proxy: Handle,
    ) -> Result<Admin, String> {
        let listen = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("tcp://{addr}")
        };
        let server = Server::builder()
            .listen(&listen)
            .and_then(|b| b.build())
            .map_err(|e| format!("admin listener {addr}: {e}"))?;
        if let Some(a) = server.local_addrs().first() {
            log::info!("reverse-proxy admin on http://{a} (/metrics, /healthz)");
        }
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                let served = server.serve(move |_| {
                    let (metrics, groups, proxy) = (metrics.clone(), groups.clone(), proxy.clone());
                    let mut text = String::new();
                    Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
                        match (req.method(), req.path()) {
                            ("GET", "/metrics") => {
                                text.clear();
                                let stats = proxy.stats();
                                metrics.render(&groups, Instant::now(), Some(&stats), &mut text);
                                res.header("Content-Type", "text/plain; version=0.0.4")
                                    .body(text.as_bytes());
                            }
                            ("GET", "/healthz") => {
                                res.body(b"ok\n");
                            }
                            _ => {
                                res.status(404).body(b"not found\n");
                            }
                        }
                    })
                });
                if let Err(e) = served {
                    log::error!("admin server: {e}");
                }
            })
            .map_err(|e| format!("admin thread: {e}"))?;
        Ok(Admin { handle, thread })
    }

    /// Shuts the admin server down and waits for it.
    pub fn stop(self) {
        self.handle.shutdown();
        let _ = self.thread.join();
    }
}
