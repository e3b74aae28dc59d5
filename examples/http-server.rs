//! HTTP/1.1 and HTTP/2 server on a plain port and a TLS port: `Hello World!` on every
//! path, and `/echo`, which streams the request body back (memory stays bounded whatever
//! the upload size: the loop stops reading while the echo backs up). HTTP/2 by ALPN `h2`
//! on the TLS port and by prior knowledge on the plain one, the same application.
//!
//! ```text
//! cargo run --release --example http-server -- --port 8080 --tlsport 8443 --cert-out /tmp/cert.pem
//! curl http://127.0.0.1:8080/
//! curl --cacert /tmp/cert.pem https://localhost:8443/
//! curl --data-binary @big.file http://127.0.0.1:8080/echo -o copy
//! curl --http2-prior-knowledge http://127.0.0.1:8080/
//! ```

mod common;

use wireloop::{Loops, Server};
use wireloop_middleware::http1::{App, BodyMode, Http1, Request, Response};
use wireloop_middleware::translate;

const USAGE: &str = "\
http-server: HTTP/1.1 and HTTP/2 hello-world and echo server, plain and TLS (wireloop example)

USAGE:
    http-server [OPTIONS]

ROUTES:
    /echo              answers with the request body, streamed back as it arrives
    anything else      200 \"Hello World!\\r\\n\"

HTTP/2 on both ports: ALPN h2 on the TLS port, prior knowledge (h2c) on the plain one
(curl --http2-prior-knowledge).

OPTIONS:
    --port N           plain HTTP port on 0.0.0.0 (default 8080; 0 = any free port)
    --tlsport N        HTTPS port on 0.0.0.0 (default 8443; 0 = no TLS listener)
    --tlscert PEM      certificate chain and private key in one PEM file; without it a
                       self-signed certificate for localhost is generated at start-up
                       and its SHA-256 fingerprint logged
    --cert-out PATH    write the generated certificate (PEM) here, for clients to trust
                       (curl --cacert PATH)
    --no-resumption    no TLS session tickets or cache: every handshake is a full one
    --unixsocket PATH  also serve plain HTTP on this unix socket
    --loops N          number of loops (default 1; -1 = one per core)
    --reuseport        one listening socket per loop (SO_REUSEPORT)
    -h, --help         print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

/// `Hello World!` everywhere, `/echo` streams the body back.
struct HelloEcho;

impl App for HelloEcho {
    type State = ();

    fn body_mode(&mut self, req: &Request<'_>, _: &mut ()) -> BodyMode {
        if req.path() == "/echo" {
            BodyMode::Stream
        } else {
            BodyMode::Collect
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
        if req.path() != "/echo" {
            res.header("Content-Type", "text/plain")
                .body(b"Hello World!\r\n");
            return;
        }
        res.header("Content-Type", "application/octet-stream");
        match req.content_length() {
            _ if !req.has_body() => res.body(b""),
            Some(n) => res.start_sized(n),
            None => res.start_chunked(),
        }
    }

    fn body(&mut self, data: &[u8], res: &mut Response<'_>, _: &mut ()) {
        res.write(data);
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut ()) {
        res.finish();
    }
}

struct Args {
    port: u16,
    tlsport: u16,
    tlscert: Option<String>,
    cert_out: Option<String>,
    resumption: bool,
    unixsocket: Option<String>,
    loops: i64,
    reuseport: bool,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        port: 8080,
        tlsport: 8443,
        tlscert: None,
        cert_out: None,
        resumption: true,
        unixsocket: None,
        loops: 1,
        reuseport: false,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => a.port = common::port(&mut p, "--port")?,
            Long("tlsport") => a.tlsport = common::port(&mut p, "--tlsport")?,
            Long("tlscert") => a.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => a.cert_out = Some(p.value()?.string()?),
            Long("no-resumption") => a.resumption = false,
            Long("unixsocket") => a.unixsocket = Some(p.value()?.string()?),
            Long("loops") => a.loops = common::loops(&mut p)?,
            Long("reuseport") => a.reuseport = true,
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
        |b| b.alpn(&[b"h2", b"http/1.1"]).resumption(args.resumption),
    );
    let opt = if args.reuseport {
        "?reuseport=true"
    } else {
        ""
    };
    // Listener 0 is plain HTTP, 1 HTTPS when on, then the unix socket.
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .listen(&format!("tcp://0.0.0.0:{}{opt}", args.port))
        .unwrap_or_else(|e| fail(e));
    if tls.is_some() {
        builder = builder
            .listen(&format!("tcp://0.0.0.0:{}{opt}", args.tlsport))
            .unwrap_or_else(|e| fail(e));
    }
    if let Some(path) = &args.unixsocket {
        builder = builder
            .listen(&format!("unix://{path}"))
            .unwrap_or_else(|e| fail(e));
    }
    let server = builder.build().unwrap_or_else(|e| fail(e));
    common::shutdown_on_signal(server.handle());
    let addrs = server.local_addrs();
    let tls_on = tls.is_some();
    let https = if tls_on {
        format!(", https://{}", addrs[1])
    } else {
        String::new()
    };
    log::info!(
        "http-server: http://{}{https}{}, {} loop(s)",
        addrs[0],
        addrs
            .get(1 + tls_on as usize)
            .map(|a| format!(", unix {a}"))
            .unwrap_or_default(),
        server.num_loops()
    );
    let served = server.serve(|_| {
        translate(
            Http1::server(HelloEcho),
            move |c| tls_on && c.addr_index == 1,
            tls.clone(),
        )
    });
    if let Err(e) = served {
        fail(e);
    }
    log::info!("stopped");
}
