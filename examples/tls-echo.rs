//! Echo server on a plain port and a TLS port, with one handler: the TLS listener's
//! connections go through the TLS layer (`translate`), the others straight to the handler.
//!
//! ```text
//! cargo run --release --example tls-echo -- --port 5002 --tlsport 5443
//! openssl s_client -connect 127.0.0.1:5443 -quiet
//! ```

mod common;

use wireloop::{Action, Conn, Handler, Loops, Server};
use wireloop_middleware::translate;

const USAGE: &str = "\
tls-echo: echo server on a plain and a TLS port (wireloop example)

USAGE:
    tls-echo [OPTIONS]

OPTIONS:
    --port N           plain TCP port on 0.0.0.0 (default 5002; 0 = any free port)
    --tlsport N        TLS port on 0.0.0.0 (default 5443; 0 = no TLS listener)
    --tlscert PEM      certificate chain and private key in one PEM file; without it a
                       self-signed certificate for localhost is generated at start-up
                       and its SHA-256 fingerprint logged
    --cert-out PATH    write the generated certificate (PEM) here, for clients to trust
    --no-resumption    no session tickets or cache: every handshake is a full one
    --loops N          number of loops (default 1; -1 = one per core)
    -h, --help         print this help";

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
}

struct Args {
    port: u16,
    tlsport: u16,
    tlscert: Option<String>,
    cert_out: Option<String>,
    resumption: bool,
    loops: i64,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        port: 5002,
        tlsport: 5443,
        tlscert: None,
        cert_out: None,
        resumption: true,
        loops: 1,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => a.port = common::port(&mut p, "--port")?,
            Long("tlsport") => a.tlsport = common::port(&mut p, "--tlsport")?,
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("no-resumption") => a.resumption = false,
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
    let tls = common::optional_tls(
        args.tlsport,
        args.tlscert.as_deref(),
        args.cert_out.as_deref(),
        USAGE,
        |b| b.resumption(args.resumption),
    );
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
    match addrs.get(1) {
        Some(t) => log::info!("tls-echo: plain on {}, TLS on {t}", addrs[0]),
        None => log::info!("tls-echo: plain on {} (no TLS listener)", addrs[0]),
    }
    // Listener 1 is the TLS one (when on): `None` attaches no layer.
    if let Err(e) = server.serve(|_| translate(Echo, |c| c.addr_index == 1, tls.clone())) {
        fail(e);
    }
    log::info!("stopped");
}
