//! What an HTTP/1.1 application implements ([`App`]) and the choices it makes: how a body
//! is delivered ([`BodyMode`]) and what happens on an upgraded connection
//! ([`UpgradeEvent`]).

use wireloop::{Action, Conn, Error};

use super::parse::Request;
use super::response::Response;

/// How the adapter delivers a request's body to the application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyMode {
    /// Read the whole body first (up to [`Config::max_body`](super::Config::max_body), else 413), then call
    /// [`App::request`] with it in [`Request::body`].
    #[default]
    Collect,
    /// Call [`App::request`] as soon as the head is in, then give the body in pieces to
    /// [`App::body`] as they arrive (without copying them), then call [`App::body_end`].
    /// No size limit: the application decides. Memory stays bounded when the application
    /// writes the pieces out (the loop stops reading while output is backed up).
    Stream,
}

/// What happened on an upgraded connection (see [`App::upgraded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeEvent {
    /// The connection has just switched (the 101 is queued): the first event, delivered
    /// once, before any `Data`. A protocol that speaks first (a WebSocket server's
    /// greeting) writes here.
    Opened,
    /// Input arrived (or was left over after the upgrade request): read
    /// [`Conn::input`] and [`Conn::consume`] it.
    Data,
    /// The loop wrote this many bytes (a streaming producer can refill).
    Written(usize),
    /// Output that had backed up drained.
    Writable,
    /// The connection was woken ([`wireloop::Handle::wake`]).
    Woken,
    /// The peer closed its sending side.
    Eof,
    /// The peer closed its sending side (or reset) while backpressure holds back reading
    /// the connection (see [`wireloop::Handler::read_closed`]); `Eof` follows if reading
    /// resumes.
    ReadClosed,
}

/// An HTTP/1.1 application: answers requests. One value per loop (made by the server's
/// factory), called only on that loop's thread. Every method but [`request`](App::request)
/// has a default.
pub trait App: 'static {
    /// Per-connection application state, created with `Default` when a connection opens
    /// and dropped when it closes.
    type State: Default + 'static;

    /// A request head arrived; choose how its body is delivered. The default collects it.
    /// Not called again for the same request.
    fn body_mode(&mut self, req: &Request<'_>, state: &mut Self::State) -> BodyMode {
        let _ = (req, state);
        BodyMode::Collect
    }

    /// Answers a request: write the response to `res` now (the common case), or start it
    /// and continue in [`body`](App::body) / [`body_end`](App::body_end) /
    /// [`resume`](App::resume). With [`BodyMode::Collect`] the whole body is in
    /// `req.body()`; with [`BodyMode::Stream`] the body follows. A streamed request may be
    /// answered before its body is read (a rejection): with `Expect: 100-continue` the
    /// client then is not asked for the body and the connection closes after the answer.
    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, state: &mut Self::State);

    /// A piece of a streamed request body (never empty), in order.
    fn body(&mut self, data: &[u8], res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (data, res, state);
    }

    /// The streamed request body is complete (also called, right after `request`, for a
    /// streamed request without a body). Trailer fields are dropped.
    fn body_end(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The current response is not complete and the connection can take more output
    /// (after the loop wrote some, after a backlog drained, or after the connection was
    /// woken): write more of a streamed body, or the answer once it is ready. Check
    /// [`Response::has_room`] to stop before the output backs up.
    fn resume(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The client closed its sending side while the current response is still being
    /// produced (`request` ran and the response is not complete): its end of input was
    /// read, or it hung up while backpressure held back reading. Most clients do this only
    /// when they give up (a timeout, a closed tab), so a proxy aborts its upstream
    /// exchange here ([`Response::abort`]; nginx logs such a request as 499). The default
    /// carries on: the response completes and the connection closes after it (a client
    /// that half-closed after its request still gets its answer).
    fn client_eof(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The connection switched protocols ([`Response::upgrade`]): from now on every event
    /// goes here with the raw connection (input, output, close, ...), and the HTTP/1.1
    /// state of the connection is gone (the adapter only passes events on). The
    /// connection's per-connection state is lent to the call as `state` (the `Conn`'s own
    /// state type `T` is the adapter's). The default closes.
    fn upgraded<T>(
        &mut self,
        conn: &mut Conn<'_, T>,
        event: UpgradeEvent,
        state: &mut Self::State,
    ) -> Action {
        let _ = (conn, event, state);
        Action::Close
    }

    /// A stream opened on an HTTP/2 connection whose own state is `conn` (the one made
    /// when the connection opened): the state the stream is served with, given to
    /// [`closed`](App::closed) when the stream ends. The default makes a fresh one with
    /// `Default`.
    fn stream_state(&mut self, conn: &mut Self::State, stream: u32) -> Self::State {
        let _ = (conn, stream);
        Self::State::default()
    }

    /// HTTP/2: whether the request body bytes delivered to this stream so far are to be
    /// held against the client's flow-control windows for now (the application cannot
    /// pass them on yet: a proxy's upstream is backed up). While it says so, the client
    /// can send at most its stream window more; wake the connection
    /// ([`wireloop::Handle::wake`]) when it changes, and the bytes are released. The
    /// default never holds. (HTTP/1.1 needs no such call: a backed-up partner stops the
    /// loop reading the connection.)
    fn hold_input(&mut self, state: &mut Self::State) -> bool {
        let _ = state;
        false
    }

    /// The connection closed (`err` says why if it failed); on HTTP/2, also each stream
    /// when it ends (its own state), and the connection's state last.
    fn closed(&mut self, state: &mut Self::State, err: Option<Error>) {
        let _ = (state, err);
    }
}

/// A closure answering every request (collected bodies, no per-connection state).
impl<F> App for F
where
    F: FnMut(&Request<'_>, &mut Response<'_>) + 'static,
{
    type State = ();

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _state: &mut ()) {
        self(req, res)
    }
}
