//! A WebSocket echo server: every message comes back as it was sent (for load tests and
//! benchmarks). Plain `ws://` only; any path upgrades, other requests get 404.
//!
//! ```text
//! cargo run --release --example websocket-echo -- --port 8083 --loops -1
//! ```

mod common;

use wireloop::{Loops, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::ws::{Message, WebSocket, Ws, WsHandler};

const USAGE: &str = "\
websocket-echo: WebSocket echo server (wireloop example)

USAGE:
    websocket-echo [OPTIONS]

OPTIONS:
    --port N           port on 0.0.0.0 (default 8083; 0 = any free port)
    --loops N          number of loops (default 1; -1 = one per core)
    -h, --help         print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

struct Echo;

impl WsHandler for Echo {
    type State = ();

    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        ws.send(msg);
    }
}

fn not_found(_: &Request<'_>, res: &mut Response<'_>) {
    res.status(404).body(b"WebSocket only\n");
}

fn parse_args() -> Result<(u16, i64), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut port, mut loops) = (8083, 1);
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => port = common::port(&mut p, "--port")?,
            Long("loops") => loops = common::loops(&mut p)?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((port, loops))
}

fn main() {
    common::init_logger();
    let (port, loops) = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let fail = |e: wireloop::Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
    let server = Server::builder()
        .loops(Loops::from_count(loops))
        .listen(&format!("tcp://0.0.0.0:{port}"))
        .and_then(|b| b.build())
        .unwrap_or_else(|e| fail(e));
    common::shutdown_on_signal(server.handle());
    log::info!(
        "websocket-echo: ws://{}/ , {} loop(s)",
        server.local_addrs()[0],
        server.num_loops()
    );
    if let Err(e) = server.serve(|_| Http1::server(WebSocket::new(not_found, Echo))) {
        fail(e);
    }
    log::info!("stopped");
}
