//! A custom binary protocol on the length-prefixed codec: a server that echoes frames, and
//! a client (a wireloop instance that dials out) that sends frames, checks the echoes and
//! prints a summary.
//!
//! ```text
//! cargo run --release --example length-prefixed -- server --port 7000
//! cargo run --release --example length-prefixed -- client --addr 127.0.0.1:7000 --count 100000
//! ```
//!
//! A frame is a 4-byte big-endian length (`--width` changes the size) and that many bytes.
//! The server decodes every frame a read brought, answers each with the same frame, and
//! consumes them together (its replies leave in one write). A frame announcing more than
//! `--max-frame` bytes is refused as soon as its header arrives: the server logs the error
//! and closes the connection, without buffering the frame.
//!
//! The client keeps `--window` frames in flight; frame `i` holds `--size` bytes of a
//! pattern derived from `i`, so every echo is checked byte for byte. It exits 0 when all
//! `--count` frames came back intact, 1 otherwise.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Control, DialOptions, Error, Handler, Server};
use wireloop_middleware::codec::{HeaderWidth, LengthPrefixed, Status};

const USAGE: &str = "\
length-prefixed: echo server and checking client for length-prefixed frames (wireloop example)

USAGE:
    length-prefixed server [OPTIONS]
    length-prefixed client --addr HOST:PORT [OPTIONS]

SERVER OPTIONS:
    --port N            TCP port on 0.0.0.0 (default 7000; 0 = any free port)
    --loops N           number of loops (default 1; -1 = one per core)

CLIENT OPTIONS:
    --addr HOST:PORT    server to dial (also tcp://HOST:PORT, unix:///path)
    --count N           frames to send (default 1000)
    --size BYTES        payload bytes per frame (default 64)
    --window N          frames in flight at once (default 64)
    --timeout SECS      give up after SECS seconds (default 30)

COMMON OPTIONS:
    --max-frame BYTES   largest frame accepted (default 1048576); the server closes a
                        connection that announces a bigger one, the client fails on one
    --width 1|2|4|8     bytes of the length header (default 4), big-endian
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

// ----- server ----------------------------------------------------------------------------

/// Echoes every frame.
struct FrameEcho {
    codec: LengthPrefixed,
}

impl Handler for FrameEcho {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut result = Ok(());
        loop {
            match self.codec.decode(&input[used..]) {
                Ok(Status::Complete((frame, n))) => {
                    // Same length as a frame just accepted: encoding cannot fail.
                    let _ = self.codec.encode(frame, &mut out);
                    used += n;
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        conn.consume(used);
        if let Err(e) = result {
            // The echoes of the frames before it still go out; `closed` gets the reason.
            conn.close_with(Error::layer(e));
        }
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        match err {
            // The peer broke the protocol (the codec's error, given to `close_with`).
            Some(e) if e.is_layer() => {
                let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                log::warn!("closed the connection from {peer}: {e}");
            }
            Some(e) => log::debug!("connection {} failed: {e}", conn.id()),
            None => {}
        }
    }
}

// ----- client ----------------------------------------------------------------------------

/// How the client run ended (shared with `main`, which prints it).
type Outcome = Arc<Mutex<Option<Result<String, String>>>>;

fn finish(outcome: &Outcome, res: Result<String, String>) {
    let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
    if o.is_none() {
        *o = Some(res);
    }
}

/// Byte `j` of frame `i`'s payload.
fn pattern(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(j as u64 * 7) % 251) as u8
}

/// Sends `count` frames, `window` at a time, and checks every echo.
struct Client {
    addr: String,
    /// Encodes what we send (no limit of ours: the server's limit is what is tested).
    send: LengthPrefixed,
    /// Decodes the echoes, with `--max-frame`.
    recv: LengthPrefixed,
    count: u64,
    size: usize,
    window: u64,
    timeout: Duration,
    sent: u64,
    received: u64,
    started: Option<Instant>,
    /// One payload, rebuilt for each frame (no allocation per frame).
    scratch: Vec<u8>,
    outcome: Outcome,
}

impl Client {
    /// Sends frames until `window` are in flight or all are sent.
    fn fill(&mut self, conn: &mut Conn<'_, ()>) -> Result<(), String> {
        while self.sent < self.count && self.sent - self.received < self.window {
            let i = self.sent;
            self.scratch.clear();
            self.scratch.extend((0..self.size).map(|j| pattern(i, j)));
            self.send
                .encode(&self.scratch, &mut *conn)
                .map_err(|e| format!("cannot send frame {i}: {e}"))?;
            self.sent += 1;
        }
        Ok(())
    }

    /// Checks the echoes that arrived.
    fn check(&mut self, input: &[u8]) -> Result<usize, String> {
        let mut used = 0;
        while let Status::Complete((frame, n)) = self
            .recv
            .decode(&input[used..])
            .map_err(|e| format!("bad reply: {e}"))?
        {
            let i = self.received;
            if i >= self.sent {
                return Err(format!("reply {i} to a frame never sent"));
            }
            let intact = frame.len() == self.size
                && frame.iter().enumerate().all(|(j, &b)| b == pattern(i, j));
            if !intact {
                return Err(format!("reply {i} differs from frame {i}"));
            }
            self.received += 1;
            used += n;
        }
        Ok(used)
    }

    fn summary(&self) -> String {
        let secs = self
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
            .max(1e-9);
        let bytes = self.count * (self.size as u64 + self.send.header_width().bytes() as u64);
        format!(
            "{} frames of {} bytes echoed intact by {} in {:.3} s ({:.0} frames/s, {:.1} MB/s each way)",
            self.count,
            self.size,
            self.addr,
            secs,
            self.count as f64 / secs,
            bytes as f64 / secs / 1e6
        )
    }
}

impl Handler for Client {
    type State = ();

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        let opts = DialOptions::new().timeout(self.timeout);
        if let Err(e) = ctl.dial(&self.addr, opts, ()) {
            finish(
                &self.outcome,
                Err(format!("cannot dial {}: {e}", self.addr)),
            );
            return Action::Shutdown;
        }
        let outcome = self.outcome.clone();
        let timeout = self.timeout;
        ctl.after(timeout, move |ctl| {
            finish(&outcome, Err(format!("not done after {timeout:?}")));
            ctl.shutdown();
        });
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if !conn.is_dialed() {
            // The client's own listener exists only because a server needs one.
            return Action::Close;
        }
        log::info!("connected to {}", self.addr);
        self.started = Some(Instant::now());
        if self.count == 0 {
            finish(&self.outcome, Ok(self.summary()));
            return Action::Shutdown;
        }
        match self.fill(conn) {
            Ok(()) => Action::None,
            Err(e) => {
                finish(&self.outcome, Err(e));
                Action::Shutdown
            }
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if !conn.is_dialed() {
            return Action::Close;
        }
        let res = self.check(conn.input());
        let res = res.and_then(|used| {
            conn.consume(used);
            self.fill(conn)
        });
        match res {
            Err(e) => {
                finish(&self.outcome, Err(e));
                Action::Shutdown
            }
            Ok(()) if self.received == self.count => {
                finish(&self.outcome, Ok(self.summary()));
                Action::Shutdown
            }
            Ok(()) => Action::None,
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        if !conn.is_dialed() {
            return;
        }
        if self.received < self.count {
            let why = err.map_or_else(|| "closed by the server".to_string(), |e| e.to_string());
            finish(
                &self.outcome,
                Err(format!(
                    "connection to {} ended after {} of {} replies: {why}",
                    self.addr, self.received, self.count
                )),
            );
        }
        conn.control().shutdown();
    }
}

// ----- main ------------------------------------------------------------------------------

enum Mode {
    Server,
    Client,
}

struct Args {
    mode: Mode,
    port: u16,
    loops: i64,
    addr: Option<String>,
    count: u64,
    size: usize,
    window: u64,
    timeout: Duration,
    max_frame: usize,
    width: HeaderWidth,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut mode = None;
    let mut args = Args {
        mode: Mode::Server,
        port: 7000,
        loops: 1,
        addr: None,
        count: 1000,
        size: 64,
        window: 64,
        timeout: Duration::from_secs(30),
        max_frame: 1 << 20,
        width: HeaderWidth::U32,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if mode.is_none() => match v.to_str() {
                Some("server") => mode = Some(Mode::Server),
                Some("client") => mode = Some(Mode::Client),
                _ => return Err(format!("unknown mode {v:?}: server or client").into()),
            },
            Long("port") => args.port = common::port(&mut p, "--port")?,
            Long("loops") => args.loops = common::loops(&mut p)?,
            Long("addr") => args.addr = Some(p.value()?.string()?),
            Long("count") => args.count = common::value(&mut p, "--count")?,
            Long("size") => args.size = common::value(&mut p, "--size")?,
            Long("window") => {
                args.window = common::value(&mut p, "--window")?;
                if args.window == 0 {
                    return Err("--window must be at least 1".into());
                }
            }
            Long("timeout") => {
                let secs: f64 = common::value(&mut p, "--timeout")?;
                args.timeout = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("--timeout must be a positive number of seconds")?;
            }
            Long("max-frame") => args.max_frame = common::value(&mut p, "--max-frame")?,
            Long("width") => {
                let n: usize = common::value(&mut p, "--width")?;
                args.width = HeaderWidth::from_bytes(n).ok_or("--width must be 1, 2, 4 or 8")?;
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    args.mode = mode.ok_or("say server or client")?;
    if matches!(args.mode, Mode::Client) && args.addr.is_none() {
        return Err("client mode needs --addr HOST:PORT".into());
    }
    Ok(args)
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let codec = LengthPrefixed::new()
        .width(args.width)
        .max_frame(args.max_frame);
    match args.mode {
        Mode::Server => serve(&args, codec),
        Mode::Client => client(args, codec),
    }
}

fn serve(args: &Args, codec: LengthPrefixed) {
    // The largest frame must fit in a connection's input buffer.
    let max_input = args.max_frame.saturating_add(64 << 10).max(8 << 20);
    let server = wireloop::Server::builder()
        .loops(wireloop::Loops::from_count(args.loops))
        .max_input(max_input)
        .listen(&format!("tcp://0.0.0.0:{}", args.port))
        .and_then(|b| b.build())
        .unwrap_or_else(|e| {
            log::error!("{e}");
            std::process::exit(1)
        });
    common::shutdown_on_signal(server.handle());
    for a in server.local_addrs() {
        log::info!(
            "length-prefixed echo serving {a} on {} loop(s), frames up to {} bytes",
            server.num_loops(),
            codec.max_payload()
        );
    }
    if let Err(e) = server.serve(|_| FrameEcho { codec }) {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}

fn client(args: Args, codec: LengthPrefixed) {
    // A wireloop server needs a listener; the client's is on an ephemeral loopback port
    // and refuses what it accepts. Its one loop dials the server.
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| {
            b.max_input(args.max_frame.saturating_add(64 << 10).max(8 << 20))
                .build()
        })
        .unwrap_or_else(|e| {
            log::error!("{e}");
            std::process::exit(1)
        });
    common::shutdown_on_signal(server.handle());
    let outcome: Outcome = Arc::default();
    let addr = args.addr.clone().unwrap_or_default();
    let res = server.serve(|_| Client {
        addr: addr.clone(),
        send: codec.max_frame(usize::MAX),
        recv: codec,
        count: args.count,
        size: args.size,
        window: args.window,
        timeout: args.timeout,
        sent: 0,
        received: 0,
        started: None,
        scratch: Vec::with_capacity(args.size.min(1 << 20)),
        outcome: outcome.clone(),
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
    match result {
        Some(Ok(summary)) => println!("{summary}"),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        None => {
            eprintln!("error: interrupted");
            std::process::exit(1);
        }
    }
}
