//! A chat server over WebSocket, plain (`ws://`) and TLS (`wss://`): `GET /` serves a small
//! chat page, `/ws` is the WebSocket, and every message is broadcast to every client on
//! every loop.
//!
//! ```text
//! cargo run --example websocket-chat -- --port 8082 --tlsport 8445 --loops -1
//! open http://127.0.0.1:8082/ in two browser tabs
//! ```
//!
//! # How the broadcast works
//!
//! Loops share one [`Hub`] behind a mutex: the members (connection ids, on any loop) and
//! an append-only log of the last [`LOG_KEEP`] messages, each with a sequence number. A
//! connection that receives a message appends it to the log and wakes every member
//! ([`Handle::wake`]); a member already woken and not yet caught up is not woken again
//! (its `waiting` flag), so a burst of messages costs one wake per member. A woken
//! connection, on its own loop, sends every logged message it has not seen yet.
//!
//! # Slow clients
//!
//! Memory stays bounded whatever the clients do: the log keeps [`LOG_KEEP`] messages of
//! at most [`MAX_MESSAGE`] bytes, and a member whose output queue is above
//! [`SLOW_CLIENT`] bytes when woken skips the messages instead of queueing them (it gets
//! a `* N messages skipped` notice once it has caught up); a member that falls further
//! behind than the log reaches loses the oldest messages the same way.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wireloop::{ConnId, Handle, Loops, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::ws::{Accept, CloseFrame, Config, Message, WebSocket, Ws, WsHandler};
use wireloop_middleware::{translate, TlsServer};

const USAGE: &str = "\
websocket-chat: a WebSocket chat server, plain and TLS (wireloop example)

USAGE:
    websocket-chat [OPTIONS]

ROUTES:
    /                  the chat page (HTML and JavaScript)
    /ws                the WebSocket: every text message is broadcast to every client

OPTIONS:
    --port N           plain HTTP/WebSocket port on 0.0.0.0 (default 8082; 0 = any free port)
    --tlsport N        HTTPS/WSS port on 0.0.0.0 (default 8445; 0 = no TLS listener)
    --tlscert PEM      certificate chain and private key in one PEM file; without it a
                       self-signed certificate for localhost is generated at start-up
    --cert-out PATH    write the generated certificate (PEM) here, for clients to trust
    --loops N          number of loops (default 1; -1 = one per core)
    -h, --help         print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

const PAGE: &str = include_str!("websocket-chat.html");

/// Messages kept in the hub's log.
pub const LOG_KEEP: usize = 256;
/// Largest message a client may send (bytes); larger ones close the connection (1009).
pub const MAX_MESSAGE: usize = 4096;
/// Output queued for a client above which broadcast messages are skipped for it.
pub const SLOW_CLIENT: usize = 256 * 1024;

/// A member of the chat: its connection and whether a wake is on its way.
struct Member {
    id: ConnId,
    waiting: Arc<AtomicBool>,
}

#[derive(Default)]
struct HubInner {
    members: Vec<Member>,
    /// (sequence number, message), oldest first.
    log: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
}

/// State shared by all loops.
struct Hub {
    inner: Mutex<HubInner>,
    handle: Handle,
    names: AtomicU64,
}

impl Hub {
    /// Appends `text` and wakes every member that is not already woken.
    fn publish(&self, text: String, wake: &mut Vec<ConnId>) {
        {
            let mut h = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let seq = h.next_seq;
            h.next_seq += 1;
            h.log.push_back((seq, text.into()));
            while h.log.len() > LOG_KEEP {
                h.log.pop_front();
            }
            wake.clear();
            wake.extend(
                h.members
                    .iter()
                    .filter(|m| !m.waiting.swap(true, Ordering::AcqRel))
                    .map(|m| m.id),
            );
        }
        for id in wake.drain(..) {
            self.handle.wake(id);
        }
    }
}

/// One chat connection.
#[derive(Default)]
struct Client {
    name: String,
    /// Next sequence number to send.
    next: u64,
    skipped: u64,
    waiting: Arc<AtomicBool>,
    joined: bool,
}

struct Chat {
    hub: Arc<Hub>,
    wake: Vec<ConnId>,
}

impl Chat {
    /// Sends what `c` has not seen, or skips it if the client is too slow.
    fn catch_up(&self, ws: &mut Ws<'_, '_>, c: &mut Client) {
        c.waiting.store(false, Ordering::Release);
        let h = self.hub.inner.lock().unwrap_or_else(|e| e.into_inner());
        let first = h.log.front().map_or(h.next_seq, |m| m.0);
        if c.next < first {
            c.skipped += first - c.next;
            c.next = first;
        }
        if ws.output_len() > SLOW_CLIENT {
            c.skipped += h.next_seq - c.next;
            c.next = h.next_seq;
            return;
        }
        let start = (c.next - first) as usize;
        if c.skipped > 0 {
            ws.send_text(&format!(
                "* {} messages skipped (your connection is too slow)",
                c.skipped
            ));
            c.skipped = 0;
        }
        for (_, text) in h.log.range(start..) {
            ws.send_text(text);
        }
        c.next = h.next_seq;
    }
}

impl WsHandler for Chat {
    type State = Client;

    fn accept(&mut self, req: &Request<'_>, _: &mut Client) -> Accept {
        if req.path() == "/ws" {
            Accept::websocket()
        } else {
            Accept::Reject(404)
        }
    }

    fn open(&mut self, ws: &mut Ws<'_, '_>, c: &mut Client) {
        c.name = format!(
            "guest-{}",
            self.hub.names.fetch_add(1, Ordering::Relaxed) + 1
        );
        {
            let mut h = self.hub.inner.lock().unwrap_or_else(|e| e.into_inner());
            // Recent history first.
            c.next = h
                .next_seq
                .saturating_sub(20)
                .max(h.log.front().map_or(0, |m| m.0));
            h.members.push(Member {
                id: ws.id(),
                waiting: c.waiting.clone(),
            });
        }
        c.joined = true;
        ws.send_text(&format!("* welcome, you are {}", c.name));
        self.hub
            .publish(format!("* {} joined", c.name), &mut self.wake);
    }

    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, c: &mut Client) {
        let Message::Text(text) = msg else {
            ws.close(wireloop_middleware::ws::code::UNSUPPORTED, "text only");
            return;
        };
        self.hub
            .publish(format!("{}: {}", c.name, text), &mut self.wake);
    }

    fn woken(&mut self, ws: &mut Ws<'_, '_>, c: &mut Client) {
        self.catch_up(ws, c);
    }

    fn writable(&mut self, ws: &mut Ws<'_, '_>, c: &mut Client) {
        // Drained: deliver what was skipped meanwhile (as a notice).
        self.catch_up(ws, c);
    }

    fn closed(&mut self, c: &mut Client, _close: Option<CloseFrame>, err: Option<wireloop::Error>) {
        if let Some(e) = err {
            log::debug!("chat: {} failed: {e}", c.name);
        }
        if !c.joined {
            return;
        }
        {
            let mut h = self.hub.inner.lock().unwrap_or_else(|e| e.into_inner());
            h.members.retain(|m| !Arc::ptr_eq(&m.waiting, &c.waiting));
        }
        self.hub
            .publish(format!("* {} left", c.name), &mut self.wake);
    }
}

/// The page at `/`, 404 elsewhere.
fn page(req: &Request<'_>, res: &mut Response<'_>) {
    match req.path() {
        "/" | "/index.html" => {
            res.header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-cache")
                .body(PAGE.as_bytes());
        }
        _ => {
            res.status(404)
                .header("Content-Type", "text/plain")
                .body(b"not found\n");
        }
    }
}

struct Args {
    port: u16,
    tlsport: u16,
    tlscert: Option<String>,
    cert_out: Option<String>,
    loops: i64,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        port: 8082,
        tlsport: 8445,
        tlscert: None,
        cert_out: None,
        loops: 1,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => a.port = common::port(&mut p, "--port")?,
            Long("tlsport") => a.tlsport = common::port(&mut p, "--tlsport")?,
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("loops") => a.loops = common::loops(&mut p)?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let fail = |e: wireloop::Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
    let tls = if args.tlsport != 0 {
        let cert = common::tls_cert(args.tlscert.as_deref(), args.cert_out.as_deref())
            .unwrap_or_else(|e| fail(e));
        Some(
            TlsServer::builder(cert)
                .alpn(&[b"http/1.1"])
                .build()
                .unwrap_or_else(|e| fail(e)),
        )
    } else {
        None
    };
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .listen(&format!("tcp://0.0.0.0:{}", args.port))
        .unwrap_or_else(|e| fail(e));
    if tls.is_some() {
        builder = builder
            .listen(&format!("tcp://0.0.0.0:{}", args.tlsport))
            .unwrap_or_else(|e| fail(e));
    }
    let server = builder.build().unwrap_or_else(|e| fail(e));
    common::shutdown_on_signal(server.handle());
    let addrs = server.local_addrs();
    log::info!(
        "websocket-chat: http://{}/{}, {} loop(s)",
        addrs[0],
        addrs
            .get(1)
            .map(|a| format!(" , https://{a}/"))
            .unwrap_or_default(),
        server.num_loops()
    );
    let hub = Arc::new(Hub {
        inner: Mutex::new(HubInner::default()),
        handle: server.handle(),
        names: AtomicU64::new(0),
    });
    let cfg = Config {
        max_message: MAX_MESSAGE,
        ..Config::default()
    };
    let served = server.serve(move |_| {
        let chat = Chat {
            hub: hub.clone(),
            wake: Vec::new(),
        };
        let app = Http1::server(WebSocket::with_config(page, chat, cfg.clone()));
        translate(app, |c| c.addr_index == 1, tls.clone())
    });
    if let Err(e) = served {
        fail(e);
    }
    log::info!("stopped");
}
