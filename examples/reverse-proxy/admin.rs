//! The admin listener (`--admin ADDR`, `[admin] listen`): `GET /metrics` in the
//! Prometheus text format, `GET /healthz`, and `POST /reload` (with `--config`: read the
//! file again, as `SIGHUP` does; the answer says whether the new configuration is in
//! service or why it was refused). Served by a one-loop server of its own on its own
//! thread, so a scrape or a reload never shares a loop with the proxied traffic.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wireloop::{Handle, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_proxy::{Group, Metrics};

use crate::reload::Event;

/// What the admin listener shows: the configuration in service.
pub struct View {
    /// Its groups (for their peers' health).
    pub groups: Vec<Group>,
    /// Its counters (`None`: none kept).
    pub metrics: Option<Metrics>,
    /// Its server (for the reactor's counters).
    pub proxy: Handle,
}

/// A running admin server; [`Admin::stop`] ends it.
pub struct Admin {
    handle: Handle,
    thread: JoinHandle<()>,
    view: Arc<Mutex<View>>,
}

/// How long `POST /reload` waits for the outcome.
const RELOAD_WAIT: Duration = Duration::from_secs(30);

impl Admin {
    /// Serves `view` on `addr` (`host:port` or any address wireloop takes); `reload`,
    /// if given, is where `POST /reload` asks for a reload.
    pub fn start(addr: &str, view: View, reload: Option<Sender<Event>>) -> Result<Admin, String> {
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
            log::info!("reverse-proxy admin on http://{a} (/metrics, /healthz, POST /reload)");
        }
        let handle = server.handle();
        let view = Arc::new(Mutex::new(view));
        let shown = view.clone();
        let reload = Arc::new(Mutex::new(reload));
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                let served = server.serve(move |_| {
                    let (view, reload) = (shown.clone(), reload.clone());
                    let mut text = String::new();
                    Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
                        match (req.method(), req.path()) {
                            ("GET", "/metrics") => {
                                text.clear();
                                let Ok(v) = view.lock() else {
                                    res.status(500).body(b"poisoned\n");
                                    return;
                                };
                                let Some(m) = &v.metrics else {
                                    res.status(404).body(b"no metrics kept\n");
                                    return;
                                };
                                let stats = v.proxy.stats();
                                m.render(&v.groups, Instant::now(), Some(&stats), &mut text);
                                res.header("Content-Type", "text/plain; version=0.0.4")
                                    .body(text.as_bytes());
                            }
                            ("GET", "/healthz") => {
                                res.body(b"ok\n");
                            }
                            ("POST", "/reload") => {
                                let (status, msg) = ask_reload(&reload);
                                res.status(status).body(format!("{msg}\n").as_bytes());
                            }
                            (_, "/reload") => {
                                res.status(405).header("Allow", "POST").body(b"POST only\n");
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
        Ok(Admin {
            handle,
            thread,
            view,
        })
    }

    /// Shows `view` from now on (a reload put a new configuration in service).
    pub fn follow(&self, view: View) {
        if let Ok(mut v) = self.view.lock() {
            *v = view;
        }
    }

    /// Shuts the admin server down and waits for it.
    pub fn stop(self) {
        self.handle.shutdown();
        let _ = self.thread.join();
    }
}

/// Asks the main thread for a reload and waits for the outcome (the admin server's own
/// loop waits; the proxy's loops do not).
fn ask_reload(reload: &Mutex<Option<Sender<Event>>>) -> (u16, String) {
    let Some(tx) = reload.lock().ok().and_then(|r| r.clone()) else {
        return (404, "nothing to reload: no --config FILE".into());
    };
    let (reply, outcome) = mpsc::channel();
    if tx.send(Event::Reload(Some(reply))).is_err() {
        return (503, "shutting down".into());
    }
    match outcome.recv_timeout(RELOAD_WAIT) {
        Ok(Ok(msg)) => (200, msg),
        Ok(Err(e)) => (
            500,
            format!("reload refused, the running configuration stays: {e}"),
        ),
        Err(_) => (503, "no answer from the reload".into()),
    }
}
