//! Echo server: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo-server -- --port 5000
//! ```

mod common;

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Handle, Handler, Loops, Server};

const USAGE: &str = "\
echo-server: echoes every byte back (wireloop example)

USAGE:
    echo-server [OPTIONS]

OPTIONS:
    --port N            TCP port on 0.0.0.0 (default 5000; 0 = any free port)
    --unixsocket PATH   also listen on this unix socket
    --loops N           number of loops (default 1; -1 = one per core)
    --reuseport         one listening socket per loop (SO_REUSEPORT)
    --idle-timeout SECS close connections idle for SECS seconds (default 0 = never)
    --max-connections N refuse connections past N open at once (default: no limit)
    --stats-interval SECS
                        log the server's counters every SECS seconds (default 0 = off)
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
    idle_timeout: Option<Duration>,
    max_connections: Option<usize>,
    stats_interval: Option<Duration>,
}

/// `SECS` as a duration: a non-negative number of seconds (fractions allowed); 0 is `None`.
fn parse_secs(p: &mut lexopt::Parser, opt: &str) -> Result<Option<Duration>, lexopt::Error> {
    let secs: f64 = common::value(p, opt)?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(_) => Err(format!("{opt}: invalid value \"{secs}\" (seconds, 0 or more)").into()),
    }
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 5000,
        unixsocket: None,
        loops: 1,
        reuseport: false,
        idle_timeout: None,
        max_connections: None,
        stats_interval: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = common::port(&mut p, "--port")?,
            Long("unixsocket") => args.unixsocket = Some(p.value()?.string()?),
            Long("loops") => args.loops = common::loops(&mut p)?,
            Long("reuseport") => args.reuseport = true,
            Long("idle-timeout") => args.idle_timeout = parse_secs(&mut p, "--idle-timeout")?,
            Long("max-connections") => {
                let n: usize = common::value(&mut p, "--max-connections")?;
                if n == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
                args.max_connections = Some(n);
            }
            Long("stats-interval") => args.stats_interval = parse_secs(&mut p, "--stats-interval")?,
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
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .idle_timeout(args.idle_timeout);
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
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
    let reporter = args
        .stats_interval
        .map(|every| report_stats(server.handle(), every));
    if let Err(e) = server.serve(|_| Echo) {
        log::error!("{e}");
        std::process::exit(1);
    }
    if let Some(t) = reporter {
        let _ = t.join();
    }
    log::info!("stopped");
}

/// Logs the server's counters every `every` until shutdown begins (checking for it at
/// least every 100 ms, so the thread ends soon after the server).
fn report_stats(handle: Handle, every: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = Instant::now() + every;
        while !handle.is_shutting_down() {
            let now = Instant::now();
            if now >= next {
                let s = handle.stats();
                log::info!(
                    "stats: open {} accepted {} closed {} bytes in {} out {} refused {}",
                    s.open,
                    s.accepted,
                    s.closed,
                    s.bytes_in,
                    s.bytes_out,
                    s.refused
                );
                next += every;
                if next < now {
                    next = now + every;
                }
                continue;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
        }
    })
}
