//! The connection handler: decodes commands, runs them in batches (pub/sub ones through
//! `pubsub`, the rest against the store), and holds back a client whose replies back up.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wireloop::{Action, Conn, ConnId, Control, Error, Handle, Handler, Output};
use wireloop_middleware::codec::resp::{self, Command, RespDecoder, RespLimits};
use wireloop_middleware::codec::Status;

use crate::commands::{exec, lower, refused_when_subscribed, wrong_args, Next};
use crate::keyspace::{lock, Store};
use crate::pubsub::{self, PubSub, Subscriptions, Targets, Woken};

/// How often the expiry sweep runs, and how many deadlines it handles per run at most.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
const SWEEP_BUDGET: usize = 20_000;

/// How a run over a connection's input ended.
#[derive(PartialEq, Eq)]
enum Flow {
    /// Everything complete was executed (a partial command may remain).
    Done,
    /// Stopped with complete commands left: the replies are over the high-water mark, or
    /// the connection waits for pub/sub messages before its next reply.
    Paused,
    /// QUIT or a protocol error: close once the replies are written.
    Close,
}

/// Per connection: the decoder (it remembers a partial command), its subscriptions, and
/// whether the connection is finished.
#[derive(Default)]
pub struct ConnState {
    dec: RespDecoder,
    subs: Subscriptions,
    paused: bool,
    quit: bool,
}

/// One per loop; the store and the pub/sub registry are shared.
pub struct Redis {
    store: Arc<Mutex<Store>>,
    pubsub: Arc<PubSub>,
    handle: Handle,
    limits: RespLimits,
    scratch: Scratch,
}

/// Buffers a loop reuses from command to command.
#[derive(Default)]
struct Scratch {
    targets: Targets,
    reply: Vec<u8>,
}

/// What one command can reach besides the connection's own state and output.
struct Ctx<'a> {
    shared: &'a Mutex<Store>,
    /// The store, locked at the first command of a batch that needs it, and its clock.
    store: Option<(MutexGuard<'a, Store>, u64)>,
    pubsub: &'a PubSub,
    handle: &'a Handle,
    id: ConnId,
    /// The listener that accepted the connection (for the log).
    listener: usize,
    scratch: &'a mut Scratch,
}

impl Ctx<'_> {
    fn store(&mut self) -> (&mut Store, u64) {
        let shared = self.shared;
        let (st, now) = self.store.get_or_insert_with(|| {
            let st = lock(shared);
            let now = st.now_ms();
            (st, now)
        });
        (st, *now)
    }
}

/// Runs one command: pub/sub ones here, the rest against the store; in subscribed mode
/// only what RESP2 allows there.
fn execute(
    cx: &mut Ctx<'_>,
    subs: &mut Subscriptions,
    cmd: &Command<'_>,
    out: &mut Output<'_>,
) -> Next {
    let mut buf = [0u8; 16];
    let lname = lower(cmd.name().unwrap_or_default(), &mut buf).unwrap_or_default();
    let argc = cmd.len();
    let subscribed = subs.is_subscribed();
    if subscribed {
        if lname == b"ping" && argc <= 2 {
            pubsub::pong(out, cmd.get(1));
            return Next::Continue;
        }
        if let Some(e) = refused_when_subscribed(lname, cmd) {
            resp::error(out, &e);
            return Next::Continue;
        }
    }
    match lname {
        b"subscribe" | b"psubscribe" => {
            let pattern = lname[0] == b'p';
            if argc < 2 {
                wrong_args(out, if pattern { "psubscribe" } else { "subscribe" });
                return Next::Continue;
            }
            let (pubsub, handle, id) = (cx.pubsub, cx.handle, cx.id);
            pubsub.subscribe(subs, id, handle, cmd.iter().skip(1), pattern, out);
            log::debug!(
                "connection {id} (listener {}) subscribed to {} ({} subscription(s))",
                cx.listener,
                names(cmd),
                subs.count()
            );
        }
        b"unsubscribe" | b"punsubscribe" => {
            let reply = &mut cx.scratch.reply;
            reply.clear();
            cx.pubsub
                .unsubscribe(subs, cmd.iter().skip(1), lname[0] == b'p', reply);
            cx.pubsub.settle(subs, subscribed, reply, out);
        }
        b"reset" => {
            if argc != 1 {
                wrong_args(out, "reset");
                return Next::Continue;
            }
            cx.pubsub.unsubscribe_all(subs);
            cx.pubsub.settle(subs, subscribed, b"+RESET\r\n", out);
        }
        b"publish" => {
            if argc != 3 {
                wrong_args(out, "publish");
                return Next::Continue;
            }
            // Not holding the store while posting to other loops.
            cx.store = None;
            let channel = cmd.get(1).unwrap_or_default();
            let n = cx.pubsub.publish(
                channel,
                cmd.get(2).unwrap_or_default(),
                &mut cx.scratch.targets,
            );
            log::debug!(
                "connection {} (listener {}) published to {}: {n} receiver(s)",
                cx.id,
                cx.listener,
                String::from_utf8_lossy(&channel[..channel.len().min(64)])
            );
            resp::integer(out, n as i64);
        }
        _ => {
            let (st, now) = cx.store();
            return exec(st, now, cmd, out);
        }
    }
    Next::Continue
}

/// The arguments of a command, for the log.
fn names(cmd: &Command<'_>) -> String {
    let mut s = String::new();
    for a in cmd.iter().skip(1).take(8) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&String::from_utf8_lossy(&a[..a.len().min(64)]));
    }
    s
}

impl Redis {
    /// A loop's handler over the shared `store` and `pubsub`, decoding with `limits`;
    /// `handle` is the server's (messages are posted through it).
    pub fn new(
        store: Arc<Mutex<Store>>,
        pubsub: Arc<PubSub>,
        handle: Handle,
        limits: RespLimits,
    ) -> Redis {
        Redis {
            store,
            pubsub,
            handle,
            limits,
            scratch: Scratch::default(),
        }
    }

    /// Executes every complete command in the input, up to the output high-water mark.
    fn run(&mut self, conn: &mut Conn<'_, ConnState>) -> Flow {
        if conn.state.quit {
            return Flow::Close;
        }
        if conn.state.subs.is_draining() {
            return Flow::Paused;
        }
        let hwm = conn.output_high_water();
        let mut cx = Ctx {
            shared: &self.store,
            store: None,
            pubsub: &self.pubsub,
            handle: &self.handle,
            id: conn.id(),
            listener: conn.addr_index(),
            scratch: &mut self.scratch,
        };
        // The decoder and the subscriptions live in the connection's state, which `split`
        // cannot lend at the same time as the input: borrow them out (moving a few
        // headers, no allocation).
        let mut dec = std::mem::take(&mut conn.state.dec);
        let mut subs = std::mem::take(&mut conn.state.subs);
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut flow = Flow::Done;
        loop {
            if out.len() > hwm || subs.is_draining() {
                flow = Flow::Paused;
                break;
            }
            match dec.decode(&input[used..]) {
                Ok(Status::Complete((cmd, n))) => {
                    used += n;
                    if cmd.is_empty() {
                        continue;
                    }
                    if execute(&mut cx, &mut subs, &cmd, &mut out) == Next::Quit {
                        used = input.len();
                        flow = Flow::Close;
                        break;
                    }
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    log::debug!("protocol error: {e}");
                    e.write_reply(&mut out);
                    used = input.len();
                    flow = Flow::Close;
                    break;
                }
            }
        }
        drop(cx);
        conn.consume(used);
        conn.state.dec = dec;
        conn.state.subs = subs;
        conn.state.paused = flow == Flow::Paused;
        conn.state.quit = flow == Flow::Close;
        flow
    }

    /// Goes on with the input after the replies drained or held replies went out.
    fn resume(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        match self.run(conn) {
            Flow::Close => Action::Close,
            Flow::Done if conn.is_eof() => Action::Close,
            _ => Action::None,
        }
    }
}

impl Handler for Redis {
    type State = ConnState;

    fn serving(&mut self, ctl: &mut Control<'_, ConnState>) -> Action {
        if ctl.loop_index() == 0 {
            let store = self.store.clone();
            ctl.every(SWEEP_EVERY, move |_| {
                let n = lock(&store).sweep(SWEEP_BUDGET);
                if n > 0 {
                    log::trace!("expired {n} keys");
                }
            });
        }
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        conn.state.dec = RespDecoder::with_limits(self.limits);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        match self.run(conn) {
            Flow::Close => Action::Close,
            _ => Action::None,
        }
    }

    fn eof(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        // Answer what the client sent before it stopped sending, then close.
        match self.run(conn) {
            Flow::Paused => Action::None,
            _ => Action::Close,
        }
    }

    fn writable(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        self.resume(conn)
    }

    fn woken(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        // Only pub/sub wakes connections: a backlog check, or the end of a drain.
        let queued = conn.output_len();
        match self.pubsub.woken(&mut conn.state.subs, queued) {
            Woken::Nothing => Action::None,
            Woken::Drained => {
                let held = conn.state.subs.take_held();
                conn.write(&held);
                self.resume(conn)
            }
            Woken::Overflow(bytes) => {
                log::warn!(
                    "connection {}: a subscriber too slow for its messages ({bytes} bytes \
                     queued, a message more would pass the limit of {}): unsubscribed and \
                     closed (client-output-buffer-limit pubsub)",
                    conn.id(),
                    self.pubsub.limit()
                );
                Action::Close
            }
        }
    }

    fn post_write(&mut self, conn: &mut Conn<'_, ConnState>, _written: usize) {
        // The socket took some replies without the loop pausing: go on with commands
        // left over when the high-water mark stopped the last run.
        if conn.state.paused {
            match self.run(conn) {
                Flow::Close => conn.close(),
                Flow::Done if conn.is_eof() => conn.close(),
                _ => {}
            }
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, ConnState>, err: Option<Error>) {
        self.pubsub.forget(&mut conn.state.subs);
        if let Some(e) = err {
            log::debug!("connection {} closed: {e}", conn.id());
        }
    }
}
