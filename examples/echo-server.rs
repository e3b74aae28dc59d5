//! Echo server: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo-server -- --port 5000
//! ```

mod common;

use wireloop::{Action, Conn, Handler, Loops, Server};

const USAGE: &str = "\
echo-server: echoes every byte back (wireloop example)

USAGE:
    echo-server [OPTIONS]

OPTIONS:
    --port N            TCP port on 0.0.0.0 (default 5000; 0 = any free port)
    --unixsocket PATH   also listen on this unix socket
    --loops N           number of loops (default 1; -1 = one per core)
    --reuseport         one listening socket per loop (SO_REUSEPORT)
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

struct Echo;

impl Handler for Echo {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut output) = conn.split();
        output.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }

    fn eof(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        // The peer is done sending: finish writing what it sent, then close.
        Action::Close
    }
}

struct Args {
    port: u16,
    unixsocket: Option<String>,
    loops: i64,
    reuseport: bool,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 5000,
        unixsocket: None,
        loops: 1,
        reuseport: false,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = p.value()?.parse()?,
            Long("unixsocket") => args.unixsocket = Some(p.value()?.string()?),
            Long("loops") => args.loops = p.value()?.parse()?,
            Long("reuseport") => args.reuseport = true,
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
    let tcp = format!(
        "tcp://0.0.0.0:{}{}",
        args.port,
        if args.reuseport {
            "?reuseport=true"
        } else {
            ""
        }
    );
    let mut builder = Server::builder().loops(Loops::from_count(args.loops));
    for addr in std::iter::once(tcp).chain(args.unixsocket.map(|p| format!("unix://{p}"))) {
        builder = builder
            .listen(&addr)
            .unwrap_or_else(|e| common::usage_error(e, USAGE));
    }
    let server = builder.build().unwrap_or_else(|e| {
        log::error!("{e}");
        std::process::exit(1)
    });
    common::shutdown_on_signal(server.handle());
    for a in server.local_addrs() {
        log::info!("echo server serving {a} on {} loop(s)", server.num_loops());
    }
    if let Err(e) = server.serve(|_| Echo) {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
