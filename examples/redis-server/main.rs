//! A Redis-compatible key-value server (strings only), on the RESP codec of
//! `wireloop-middleware`: redis-cli and redis-benchmark work against it.
//!
//! ```text
//! cargo run --release --example redis-server -- --port 6380
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -t set,get -n 100000 -P 16 -q
//! ```
//!
//! Commands: PING, ECHO, SET (EX/PX/NX/XX/KEEPTTL), GET, MGET, MSET, DEL, EXISTS,
//! INCR/DECR/INCRBY/DECRBY, EXPIRE/PEXPIRE (NX/XX/GT/LT), TTL/PTTL, PERSIST, KEYS (glob:
//! `*`, `?`, `[...]`, `\` escapes), DBSIZE, FLUSHALL/FLUSHDB, SELECT 0, CONFIG GET,
//! COMMAND (COUNT, DOCS, INFO), INFO, QUIT. Arrays of bulk strings and inline commands
//! (telnet) are both understood.
//!
//! # Pipelining
//!
//! Every command a read brought is executed in one `data` callback, in order, and the
//! replies are queued together, so they leave in one write. A client that pipelines
//! without reading its replies is held back: once the queued replies pass the server's
//! output high-water mark, execution stops (leaving the rest of the input unconsumed), the
//! loop stops reading, and execution resumes as the replies drain (`post_write`,
//! `writable`).
//!
//! # One keyspace over several loops
//!
//! With `--loops N` the connections are spread over N threads but the keyspace is one:
//! it sits behind a `Mutex`, taken once per `data` callback for the whole batch of
//! pipelined commands (not once per command). The alternative — a shard per loop, with
//! commands for keys of another shard forwarded to the owning loop and the replies put
//! back in order — needs a loop-to-loop message channel and per-connection reply
//! reordering, a lot of machinery for a 2-core machine; Redis itself executes commands
//! on one thread. With `--loops 1` (the default) the lock is never contended: one thread
//! takes it, once per read, and the expiry sweep runs on that same thread.
//!
//! # Expiry
//!
//! Keys with a TTL expire lazily (a command that touches an expired key sees it gone and
//! deletes it) and in a periodic sweep: a loop timer (`Control::every`, 100 ms) pops due
//! deadlines from a heap, a bounded number per run.

mod commands;
#[path = "../common/mod.rs"]
mod common;
mod glob;
mod handler;
mod keyspace;

use std::sync::{Arc, Mutex};

use wireloop::{Loops, Server};
use wireloop_middleware::codec::resp::RespLimits;

use handler::Redis;
use keyspace::Store;

const USAGE: &str = "\
redis-server: a Redis-compatible key-value server (wireloop example)

USAGE:
    redis-server [OPTIONS]

OPTIONS:
    --port N            TCP port (default 6380; 0 = any free port)
    --bind ADDR         address to listen on (default 127.0.0.1; there is no AUTH)
    --unixsocket PATH   also listen on this unix socket
    --loops N           number of loops (default 1; -1 = one per core); the keyspace
                        is shared by all of them behind one lock
    --max-bulk BYTES    longest value or key a client may send (default 64 MiB)
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

struct Args {
    port: u16,
    bind: String,
    unixsocket: Option<String>,
    loops: i64,
    max_bulk: usize,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 6380,
        bind: "127.0.0.1".into(),
        unixsocket: None,
        loops: 1,
        max_bulk: RespLimits::default().max_bulk,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = p.value()?.parse()?,
            Long("bind") => args.bind = p.value()?.string()?,
            Long("unixsocket") => args.unixsocket = Some(p.value()?.string()?),
            Long("loops") => args.loops = p.value()?.parse()?,
            Long("max-bulk") => args.max_bulk = p.value()?.parse()?,
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
    let host = if args.bind.contains(':') {
        format!(
            "[{}]",
            args.bind.trim_start_matches('[').trim_end_matches(']')
        )
    } else {
        args.bind.clone()
    };
    let limits = RespLimits {
        max_bulk: args.max_bulk,
        ..RespLimits::default()
    };
    // A command must fit in a connection's input buffer: room for one value at the
    // bulk limit plus the rest of the command.
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .max_input(args.max_bulk.saturating_add(1 << 20));
    let tcp = format!("tcp://{host}:{}", args.port);
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
        log::info!("redis server serving {a} on {} loop(s)", server.num_loops());
    }
    let store = Arc::new(Mutex::new(Store::new()));
    let res = server.serve(|_| Redis::new(store.clone(), limits));
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}
