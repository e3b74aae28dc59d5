//! A Redis-compatible key-value server (strings only), on the RESP codec of
//! `wireloop-middleware`: redis-cli and redis-benchmark work against it.
//!
//! ```text
//! cargo run --release --example redis-server -- --port 6380 --tlsport 6390
//! redis-cli -p 6380 set greeting hello
//! redis-cli -p 6390 --tls --insecure get greeting
//! redis-benchmark -p 6380 -t set,get -n 100000 -P 16 -q
//! ```
//!
//! With `--tlsport`, a second listener serves the same commands under TLS: the handler is
//! wrapped in `translate(.., TlsServer)` for that listener's connections, so it reads and
//! writes plaintext and the reactor encrypts every write to such a connection.
//!
//! Commands: PING, ECHO, SET (EX/PX/NX/XX/KEEPTTL), GET, MGET, MSET, DEL, EXISTS,
//! INCR/DECR/INCRBY/DECRBY, EXPIRE/PEXPIRE (NX/XX/GT/LT), TTL/PTTL, PERSIST, KEYS (glob:
//! `*`, `?`, `[...]`, `\` escapes), DBSIZE, FLUSHALL/FLUSHDB, SELECT 0, CONFIG GET,
//! COMMAND (COUNT, DOCS, INFO), INFO, QUIT, RESET, and pub/sub: SUBSCRIBE, UNSUBSCRIBE,
//! PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH (not the sharded SSUBSCRIBE family, which answers as
//! an unknown command). Arrays of bulk strings and inline commands (telnet) are both
//! understood.
//!
//! Files: `main.rs` (arguments, listeners), `handler.rs` (the connection handler: batches,
//! backpressure, subscribed mode), `commands.rs` (the keyspace commands, arities),
//! `keyspace.rs` (values and expiry), `glob.rs` (KEYS and pattern matching), `pubsub.rs`
//! (the registry shared by all loops, delivery, the slow-subscriber limit).
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
//! # Publish/subscribe
//!
//! Subscribers may be on any loop and any listener (plain, TLS, unix socket): the
//! registry of channels and patterns is shared, and PUBLISH posts each message to each
//! receiver's connection with `Handle::send`, so it is written by the receiver's own loop
//! (and encrypted by its TLS session). Replies are byte for byte those of Redis 7 over
//! RESP2, subscribed mode included (`*2 pong ""` for PING, the `Can't execute` error for
//! other commands). A subscriber that does not read its messages is dropped once it
//! holds `--pubsub-limit` bytes (Redis's `client-output-buffer-limit pubsub`, 32 MiB): see
//! `pubsub.rs` for the bound and for how a client leaving subscribed mode never gets a
//! late message in place of a reply.
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
mod hashes;
mod keyspace;
mod lists;
mod pubsub;
mod sets;
mod value;
mod zsets;

use std::sync::{Arc, Mutex};

use wireloop::{Loops, Server};
use wireloop_middleware::codec::resp::RespLimits;
use wireloop_middleware::{translate, TlsServer};

use handler::Redis;
use keyspace::Store;
use pubsub::PubSub;

const USAGE: &str = "\
redis-server: a key-value server speaking Redis's protocol (wireloop example)

USAGE:
    redis-server [OPTIONS]

OPTIONS:
    --port N            TCP port (default 6380; 0 = any free port)
    --bind ADDR         address to listen on (default 127.0.0.1; there is no AUTH)
    --tlsport N         also serve TLS on this port (default 0 = off); the same
                        commands and keyspace (redis-cli --tls)
    --tlscert PEM       certificate chain and private key in one PEM file; without it
                        a self-signed certificate for localhost is generated at
                        start-up and its SHA-256 fingerprint logged
    --cert-out PATH     write the generated certificate (PEM) here, for clients to
                        trust (redis-cli --tls --cacert PATH)
    --unixsocket PATH   also listen on this unix socket
    --loops N           number of loops (default 1; -1 = one per core); the keyspace
                        is shared by all of them behind one lock
    --max-bulk BYTES    longest value or key a client may send (default 64 MiB)
    --max-elements N    most elements one list, set, hash or sorted set may hold; a
                        command that would add more is refused (default 4194304)
    --pubsub-limit BYTES
                        most a subscriber may hold (its unwritten output and the
                        messages on their way to it); a message more and it is
                        unsubscribed and closed, as with Redis's
                        client-output-buffer-limit pubsub hard limit (default
                        32 MiB; 0 = no limit)
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

/// The index of the TLS listener, when there is one (the plain TCP one is 0).
const TLS_LISTENER: usize = 1;

struct Args {
    port: u16,
    bind: String,
    tlsport: u16,
    tlscert: Option<String>,
    cert_out: Option<String>,
    unixsocket: Option<String>,
    loops: i64,
    max_bulk: usize,
    max_elements: usize,
    pubsub_limit: usize,
}

/// The help: the options, then the commands implemented (from the command table).
fn help() -> String {
    let mut text = format!(
        "{USAGE}\n\nCOMMANDS ({} implemented; replies as Redis 7.0 over RESP2):\n",
        commands::command_names().len()
    );
    let mut line = String::from("   ");
    for name in commands::command_names() {
        if line.len() + name.len() + 1 > 80 {
            text.push_str(&line);
            text.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(&name);
    }
    text.push_str(&line);
    text.push_str(
        "\n    Strings (with EX/PX/NX/XX/KEEPTTL and TTLs), lists, sets, hashes and sorted \
         sets;\n    everything else is answered with Redis's unknown-command error.",
    );
    text
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 6380,
        bind: "127.0.0.1".into(),
        tlsport: 0,
        tlscert: None,
        cert_out: None,
        unixsocket: None,
        loops: 1,
        max_bulk: RespLimits::default().max_bulk,
        max_elements: 4 << 20,
        pubsub_limit: pubsub::DEFAULT_LIMIT,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = common::port(&mut p, "--port")?,
            Long("bind") => args.bind = p.value()?.string()?,
            Long("tlsport") => args.tlsport = common::port(&mut p, "--tlsport")?,
            Long("tlscert") => args.tlscert = Some(p.value()?.string()?),
            Long("cert-out") => args.cert_out = Some(p.value()?.string()?),
            Long("unixsocket") => args.unixsocket = Some(p.value()?.string()?),
            Long("loops") => args.loops = common::loops(&mut p)?,
            Long("max-bulk") => args.max_bulk = common::value(&mut p, "--max-bulk")?,
            Long("max-elements") => {
                args.max_elements = common::value(&mut p, "--max-elements")?;
                if args.max_elements == 0 {
                    return Err("--max-elements: invalid value \"0\" (1 or more)".into());
                }
            }
            Long("pubsub-limit") => args.pubsub_limit = common::value(&mut p, "--pubsub-limit")?,
            Short('h') | Long("help") => {
                println!("{}", help());
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
    let fail = |e: wireloop::Error| -> ! {
        log::error!("{e}");
        std::process::exit(1)
    };
    if args.tlsport == 0 && (args.tlscert.is_some() || args.cert_out.is_some()) {
        common::usage_error("--tlscert and --cert-out need --tlsport", USAGE);
    }
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
    let tls = (args.tlsport != 0).then(|| {
        let cert = common::tls_cert(args.tlscert.as_deref(), args.cert_out.as_deref())
            .unwrap_or_else(|e| fail(e));
        TlsServer::builder(cert).build().unwrap_or_else(|e| fail(e))
    });
    // Listener 0 is plain TCP, 1 TLS (when on), then the unix socket.
    let mut addrs = vec![format!("tcp://{host}:{}", args.port)];
    if tls.is_some() {
        addrs.push(format!("tcp://{host}:{}", args.tlsport));
    }
    addrs.extend(args.unixsocket.map(|p| format!("unix://{p}")));
    // A command must fit in a connection's input buffer: room for one value at the
    // bulk limit plus the rest of the command.
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .max_input(args.max_bulk.saturating_add(1 << 20));
    for addr in &addrs {
        builder = builder
            .listen(addr)
            .unwrap_or_else(|e| common::usage_error(e, USAGE));
    }
    let server = builder.build().unwrap_or_else(|e| fail(e));
    let tls_on = tls.is_some();
    common::shutdown_on_signal(server.handle());
    let loops = server.num_loops();
    for (i, a) in server.local_addrs().iter().enumerate() {
        let scheme = if tls_on && i == TLS_LISTENER {
            "tls://"
        } else {
            ""
        };
        log::info!("redis server serving {scheme}{a} on {loops} loop(s)");
    }
    let store = Arc::new(Mutex::new(Store::new(args.max_elements)));
    let pubsub = Arc::new(PubSub::new(args.pubsub_limit));
    let handle = server.handle();
    // Without TLS, index 1 is the unix socket: only a TLS listener's connections get it.
    let res = server.serve(|_| {
        translate(
            Redis::new(store.clone(), pubsub.clone(), handle.clone(), limits),
            move |c| tls_on && c.addr_index == TLS_LISTENER,
            tls.clone(),
        )
    });
    if let Err(e) = res {
        fail(e);
    }
    log::info!("stopped");
}
