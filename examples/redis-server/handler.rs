//! The connection handler: decodes commands, runs them in batches, and holds back a client
//! whose replies back up.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wireloop::{Action, Conn, Control, Error, Handler};
use wireloop_middleware::codec::resp::{RespDecoder, RespLimits};
use wireloop_middleware::codec::Status;

use crate::commands::{exec, Next};
use crate::keyspace::{lock, Store};

/// How often the expiry sweep runs, and how many deadlines it handles per run at most.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
const SWEEP_BUDGET: usize = 20_000;

/// How a run over a connection's input ended.
#[derive(PartialEq, Eq)]
enum Flow {
    /// Everything complete was executed (a partial command may remain).
    Done,
    /// Stopped with complete commands left: the replies are over the high-water mark.
    Paused,
    /// QUIT or a protocol error: close once the replies are written.
    Close,
}

/// Per connection: the decoder (it remembers a partial command) and whether the
/// connection is finished.
#[derive(Default)]
pub struct ConnState {
    dec: RespDecoder,
    paused: bool,
    quit: bool,
}

/// One per loop; the store is shared.
pub struct Redis {
    store: Arc<Mutex<Store>>,
    limits: RespLimits,
}

impl Redis {
    /// A loop's handler over the shared `store`, decoding with `limits`.
    pub fn new(store: Arc<Mutex<Store>>, limits: RespLimits) -> Redis {
        Redis { store, limits }
    }

    /// Executes every complete command in the input, up to the output high-water mark.
    fn run(&mut self, conn: &mut Conn<'_, ConnState>) -> Flow {
        if conn.state.quit {
            return Flow::Close;
        }
        let hwm = conn.output_high_water();
        // The decoder lives in the connection's state, which `split` cannot lend at the
        // same time as the input: borrow it out (moving a `Vec` header, no allocation).
        let mut dec = std::mem::take(&mut conn.state.dec);
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut flow = Flow::Done;
        let mut store: Option<(MutexGuard<'_, Store>, u64)> = None;
        loop {
            if out.len() > hwm {
                flow = Flow::Paused;
                break;
            }
            match dec.decode(&input[used..]) {
                Ok(Status::Complete((cmd, n))) => {
                    used += n;
                    if cmd.is_empty() {
                        continue;
                    }
                    let (st, now) = store.get_or_insert_with(|| {
                        let st = lock(&self.store);
                        let now = st.now_ms();
                        (st, now)
                    });
                    if exec(st, *now, &cmd, &mut out) == Next::Quit {
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
        drop(store);
        conn.consume(used);
        conn.state.dec = dec;
        conn.state.paused = flow == Flow::Paused;
        conn.state.quit = flow == Flow::Close;
        flow
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
        match self.run(conn) {
            Flow::Close => Action::Close,
            Flow::Done if conn.is_eof() => Action::Close,
            _ => Action::None,
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
        if let Some(e) = err {
            log::debug!("connection {} closed: {e}", conn.id());
        }
    }
}
