//! The handler contract: what the loop calls, when, and what the return values do.

use std::time::Duration;

use crate::layer::Layers;
use crate::{Conn, Control, Datagram, Detached, Error};

/// What the loop does after a callback returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Carry on.
    #[default]
    None,
    /// Close the connection: stop reading, flush queued output (within the close linger),
    /// then close. `closed` fires once the connection is gone. Returned from a callback
    /// that has no connection (`serving`, `tick`), it means nothing.
    Close,
    /// Shut the whole server down gracefully: listeners close, every connection's queued
    /// output is flushed (within the shutdown deadline), `closed` fires for each, and
    /// [`Server::serve`](crate::Server::serve) returns.
    Shutdown,
    /// Take the connection out of the loop: reading stops, queued output is flushed, then
    /// [`Handler::detached`] receives the socket (blocking again) and any input that was
    /// read but not consumed. `closed` does not fire for a detached connection.
    Detach,
}

/// Serves connections on one loop. The server makes one handler per loop (through the
/// factory given to [`serve`](crate::Server::serve)) and calls it only from that loop's
/// thread, so a handler needs no locks: its fields are the loop's own state.
///
/// # Event order for one connection
///
/// `opened` → (`data` | `writable` | `woken` | `read_closed`)* → \[`eof`\] → ... → `closed`, and `closed`
/// exactly once, whatever happened. Every callback but `closed` returns an [`Action`].
///
/// # Input
///
/// [`Conn::input`] holds everything received and not yet [consumed](Conn::consume). Bytes
/// you do not consume are kept and shown again, with the next bytes appended, at the next
/// `data` call, so a framing protocol consumes whole frames and leaves a partial one for
/// later. Unconsumed input is limited by the server's `max_input`; past it the connection
/// is closed with an error ([`Error::is_input_limit`]).
///
/// # Output and backpressure
///
/// [`Conn::write`] queues bytes; the loop writes them when the callback returns and keeps
/// what the socket does not take. When queued output passes the high-water mark the loop
/// stops reading from this connection (so a peer that sends without reading cannot grow
/// the server's memory) and resumes when it drains below the low-water mark, at which
/// point `writable` is called.
pub trait Handler: 'static {
    /// Per-connection state, owned by the loop, created with `Default` when a connection
    /// opens and reachable as [`Conn::state`].
    type State: Default + 'static;

    /// The loop has started and its listeners are open. Called once on every loop.
    fn serving(&mut self, ctl: &mut Control<'_, Self::State>) -> Action {
        let _ = ctl;
        Action::None
    }

    /// Chooses the connection's transport layers (TLS, ...) before anything else happens
    /// to it: [`Layers::info`](crate::layer::Layers::info) says which listener accepted it
    /// (or that it was dialed), and [`Layers::push`](crate::layer::Layers::push) adds a
    /// layer on top of those there (a dial's own layers come first). With layers,
    /// `opened` comes once their handshake is done, the handler reads and writes their
    /// plaintext, and every write path is encoded by them. The default adds none.
    fn layers(&mut self, layers: &mut Layers<'_>) {
        let _ = layers;
    }

    /// A connection was accepted (or a dial connected), and its layers, if any, are
    /// ready.
    fn opened(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let _ = conn;
        Action::None
    }

    /// New input arrived: look at [`Conn::input`], [`Conn::consume`] what you used, and
    /// [`Conn::write`] answers.
    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action;

    /// The peer closed its sending side (read returned end-of-file). Unconsumed input is
    /// still in [`Conn::input`], and the connection can still be written to. The default
    /// closes the connection (after flushing); a proxy or a protocol with half-close
    /// overrides this and may call [`Conn::shutdown_write`] when it has answered.
    fn eof(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let _ = conn;
        Action::Close
    }

    /// The peer closed its sending side (or reset the connection) while backpressure holds
    /// back reading this connection, so [`eof`](Handler::eof) cannot come until the input
    /// before the end has been read, which may be never if what holds reading back never
    /// drains. Called at most once; `eof` still follows if reading resumes. A peer that
    /// closed its sending side may still be reading (a half-close), so the default does
    /// nothing; a proxy whose client gave up aborts the exchange here instead of waiting
    /// for the other side (nginx's "client prematurely closed connection").
    /// [`Conn::is_read_closed`] holds from now on.
    fn read_closed(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let _ = conn;
        Action::None
    }

    /// Output that had backed up has drained below the low-water mark: a producer that
    /// paused (the other side of a proxy, a streaming body) can resume.
    fn writable(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let _ = conn;
        Action::None
    }

    /// [`Handle::wake`](crate::Handle::wake) was called for this connection.
    fn woken(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let _ = conn;
        Action::None
    }

    /// The loop is about to close this connection for a reason the handler did not give
    /// in a callback (`Handle::close`, `Control::close`, the idle timeout, a server
    /// shutdown, the peer finishing a half-closed conversation). The connection can still
    /// be written to: a protocol layer queues its goodbye here (TLS `close_notify`); it is
    /// flushed before the socket closes. Not called when a callback returned
    /// `Action::Close` (that callback could write already), nor when the socket failed.
    fn closing(&mut self, conn: &mut Conn<'_, Self::State>) {
        let _ = conn;
    }

    /// A graceful shutdown began ([`Handle::shutdown`](crate::Handle::shutdown),
    /// [`Action::Shutdown`]): the listeners are closed and every open connection is asked
    /// whether it may finish what it is doing. `false` (the default) closes it now, as a
    /// shutdown always did (`closing`, then a flush, then `closed`); `true` keeps it until
    /// the handler closes it (say, after the response in flight, with `Connection:
    /// close`), or at the latest until the server's shutdown timeout. The loop ends once
    /// every connection is gone. [`Conn::is_draining`] holds from now on.
    fn draining(&mut self, conn: &mut Conn<'_, Self::State>) -> bool {
        let _ = conn;
        false
    }

    /// The connection is gone. `err` is `None` for a clean close (either side closed after
    /// everything queued was written) and says what failed otherwise. The connection can
    /// no longer be written to; its state and any unconsumed input are still visible.
    fn closed(&mut self, conn: &mut Conn<'_, Self::State>, err: Option<Error>) {
        let _ = (conn, err);
    }

    /// The connection left the loop after [`Action::Detach`]: `detached` holds its socket
    /// and its unconsumed input. The default drops both (closing the socket).
    fn detached(&mut self, conn: &mut Conn<'_, Self::State>, detached: Detached) {
        let _ = (conn, detached);
    }

    /// A datagram arrived on a UDP listener. Answer with [`Datagram::reply`] or
    /// [`Datagram::send_to`]; nothing is buffered across datagrams. `Action::Close` means
    /// nothing here; `Action::Shutdown` stops the server.
    fn datagram(&mut self, dgram: &mut Datagram<'_>) -> Action {
        let _ = dgram;
        Action::None
    }

    /// The loop is about to write this connection's queued output (evio's `PreWrite`):
    /// a last chance to add to it. Called after any callback that left output queued and
    /// before each flush on a writable event.
    fn pre_write(&mut self, conn: &mut Conn<'_, Self::State>) {
        let _ = conn;
    }

    /// The loop wrote `written` bytes of this connection's output; `conn.output_len()`
    /// bytes are still queued. A streaming producer can refill here; what it writes is
    /// flushed right away while the socket takes it.
    fn post_write(&mut self, conn: &mut Conn<'_, Self::State>, written: usize) {
        let _ = (conn, written);
    }

    /// Called right after `serving`, then again after each returned delay; `None` stops
    /// the ticks. The default never ticks again.
    fn tick(&mut self, ctl: &mut Control<'_, Self::State>) -> (Option<Duration>, Action) {
        let _ = ctl;
        (None, Action::None)
    }
}
