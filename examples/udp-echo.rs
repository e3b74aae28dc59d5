//! UDP echo server: every datagram is sent back to its sender.
//!
//! ```text
//! cargo run --release --example udp-echo -- --port 5000
//! ```

mod common;

use wireloop::{Action, Conn, Datagram, Handler, Loops, Server};

const USAGE: &str = "\
udp-echo: sends every datagram back to its sender (wireloop example)

USAGE:
    udp-echo [OPTIONS]

OPTIONS:
    --port N            UDP port on 0.0.0.0 (default 5001; 0 = any free port)
    --loops N           number of loops (default 1; -1 = one per core); with more than
                        one, each loop gets its own socket on the port (SO_REUSEPORT)
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

struct UdpEcho;

impl Handler for UdpEcho {
    type State = ();

    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        // Only UDP listeners here: no connection ever arrives.
        Action::Close
    }

    fn datagram(&mut self, d: &mut Datagram<'_>) -> Action {
        if let Err(e) = d.reply(d.data()) {
            // UDP drops what the socket cannot take; so does this server.
            log::debug!("reply to {}: {e}", d.peer());
        }
        Action::None
    }
}

struct Args {
    port: u16,
    loops: i64,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 5001,
        loops: 1,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = common::port(&mut p, "--port")?,
            Long("loops") => args.loops = common::loops(&mut p)?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    // A UDP socket is served by one loop, so more loops need a socket each.
    let reuseport = args.loops != 1;
    let addr = format!(
        "udp://0.0.0.0:{}{}",
        args.port,
        if reuseport { "?reuseport=true" } else { "" }
    );
    let server = Server::builder()
        .loops(Loops::from_count(args.loops))
        .listen(&addr)
        .unwrap_or_else(|e| common::usage_error(e, USAGE))
        .build()
        .unwrap_or_else(|e| {
            log::error!("{e}");
            std::process::exit(1)
        });
    common::shutdown_on_signal(server.handle());
    for a in server.local_addrs() {
        // NetAddr displays inet addresses as tcp://, so name the scheme here.
        let shown = a
            .inet()
            .map_or_else(|| a.to_string(), |s| format!("udp://{s}"));
        log::info!(
            "udp echo serving {shown} on {} loop(s){}",
            server.num_loops(),
            if reuseport {
                ", one socket per loop"
            } else {
                ""
            }
        );
    }
    if let Err(e) = server.serve(|_| UdpEcho) {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
