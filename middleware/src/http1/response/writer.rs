//! The response to one request ([`Response`]): status, fields and a body that is fixed,
//! sized-and-streamed, chunked-and-streamed, or absent, framed by the writer, never by
//! the application; [`write_response`] writes one without a connection.

use wireloop::{Bytes, ConnId};

use super::super::date::HttpDate;
use super::super::Request;
use super::field_check::{valid_name, valid_value};
use super::head_end::HeadEnd;
use super::state::{Phase, RespState};
use super::wire::Wire;

/// How the head about to be finished frames the body.
enum Framing {
    Length(u64),
    Chunked,
}

/// The response to one request. Write the status ([`status`](Response::status), 200 if
/// omitted), headers ([`header`](Response::header)), then either the whole body at once
/// ([`body`](Response::body)) or a streamed one ([`start_sized`](Response::start_sized) /
/// [`start_chunked`](Response::start_chunked), then [`write`](Response::write) as often as
/// needed, then [`finish`](Response::finish)). The writer adds `Date`, `Content-Length` or
/// `Transfer-Encoding`, and `Connection`; it drops body bytes for `HEAD` and for 1xx, 204
/// and 304 responses, and never lets the application break the framing (headers with CR or
/// LF are refused, body bytes past `Content-Length` are dropped).
///
/// A response not finished when the callback returns stays open: later requests on the
/// connection wait, and [`App::resume`](super::super::App::resume) is called when the connection
/// can take more output (a streamed body), or when it is woken (an answer computed
/// elsewhere).
pub struct Response<'a> {
    out: &'a mut dyn Wire,
    st: &'a mut RespState,
    date: &'a HttpDate,
    id: Option<ConnId>,
    high_water: usize,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        out: &'a mut dyn Wire,
        st: &'a mut RespState,
        date: &'a HttpDate,
        id: Option<ConnId>,
        high_water: usize,
    ) -> Response<'a> {
        Response {
            out,
            st,
            date,
            id,
            high_water,
        }
    }

    /// Sets the status (default 200). Only before any header or body; ignored after.
    /// 101 switches protocols (see [`upgrade`](Response::upgrade)); other 1xx codes are
    /// not final answers and become 500.
    pub fn status(&mut self, code: u16) -> &mut Self {
        if self.st.phase != Phase::Idle {
            log::debug!("http1: status {code} after the response started: ignored");
            return self;
        }
        let mut code = code.clamp(100, 999);
        if code < 200 && code != 101 {
            // An interim status would leave the client waiting for a final one.
            log::warn!("http1: status {code} cannot be a response's status; sending 500");
            code = 500;
        }
        if self.st.expect_pending && code >= 200 {
            self.st.expect_pending = false;
            if code < 300 {
                // Accepted (say, a response streamed while the body arrives): ask for the
                // body first.
                self.out.interim_continue();
            } else {
                // Rejected before the body was asked for: the client may or may not send
                // it, so the connection cannot be reused.
                self.st.close = true;
            }
        }
        if code == 101 && self.out.is_h2() {
            log::warn!("http1: 101 on an HTTP/2 stream; sending 500");
            code = 500;
        }
        self.st.status = code;
        self.st.phase = Phase::Head;
        self.out.status(code);
        self
    }

    /// Adds a header field. `Content-Length`, `Transfer-Encoding` and `Connection` are the
    /// writer's business and are ignored here (except that `Connection: close` makes the
    /// connection close after this response); a `Date` given here replaces the writer's.
    /// A name that is not a token or a value with CR, LF or other control bytes is refused
    /// (logged, not written). Ignored once the body started.
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        match self.st.phase {
            Phase::Idle => {
                self.status(200);
            }
            Phase::Head => {}
            _ => {
                log::debug!("http1: header {name} after the body started: ignored");
                return self;
            }
        }
        if !valid_name(name) || !valid_value(value) {
            log::warn!("http1: refused an invalid response header {name:?}");
            return self;
        }
        match name.len() {
            14 if name.eq_ignore_ascii_case("content-length") => return self,
            17 if name.eq_ignore_ascii_case("transfer-encoding") => return self,
            10 if name.eq_ignore_ascii_case("connection") => {
                if value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    self.st.close = true;
                }
                return self;
            }
            4 if name.eq_ignore_ascii_case("date") => self.st.own_date = true,
            _ => {}
        }
        self.out.field(name, value);
        self
    }

    /// Adds header fields whose names are tokens and whose values hold no control bytes
    /// but HTAB, as [`header`](Response::header) would, without checking them again:
    /// for fields taken from a head this crate's parsers accepted (a proxy passing on an
    /// upstream's response). Everything else `header` does applies (the framing fields
    /// and `Connection` are the writer's, `Date` replaces the writer's). A field that is
    /// not as said is a response splitting bug of the caller's: debug builds assert.
    #[doc(hidden)]
    pub fn headers_prechecked<'h>(
        &mut self,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> &mut Self {
        match self.st.phase {
            Phase::Idle => {
                self.status(200);
            }
            Phase::Head => {}
            _ => {
                log::debug!("http1: headers after the body started: ignored");
                return self;
            }
        }
        for (name, value) in fields {
            debug_assert!(
                valid_name(name) && valid_value(value),
                "{name:?}: {value:?}"
            );
            match name.len() {
                14 if name.eq_ignore_ascii_case("content-length") => continue,
                17 if name.eq_ignore_ascii_case("transfer-encoding") => continue,
                10 if name.eq_ignore_ascii_case("connection") => {
                    if value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                    {
                        self.st.close = true;
                    }
                    continue;
                }
                4 if name.eq_ignore_ascii_case("date") => self.st.own_date = true,
                _ => {}
            }
            self.out.field(name, value);
        }
        self
    }

    /// Closes the connection after this response (`Connection: close` is sent if the head
    /// is not finished yet).
    pub fn close(&mut self) -> &mut Self {
        self.st.close = true;
        self
    }

    /// Writes the rest of the head; returns the body phase that follows.
    fn finish_head(&mut self, framing: Framing) {
        self.finish_head_then(framing, None);
    }

    /// Writes the rest of the head and, if `body` is given (its length the head's
    /// `Content-Length`) and the response has a body, the body, completing the response.
    fn finish_head_then(&mut self, framing: Framing, body: Option<&[u8]>) {
        if self.st.phase == Phase::Idle {
            self.status(200);
        }
        let status = self.st.status;
        let no_body = status < 200 || status == 204 || status == 304;
        let h2 = self.out.is_h2();
        let (mut length, mut chunked) = (None, false);
        let next = if no_body {
            Phase::Done
        } else {
            match framing {
                Framing::Length(n) => {
                    length = Some(n);
                    if n == 0 {
                        Phase::Done
                    } else {
                        Phase::Sized(n)
                    }
                }
                Framing::Chunked if self.st.minor >= 1 || h2 => {
                    chunked = true;
                    Phase::Chunked
                }
                Framing::Chunked => {
                    // HTTP/1.0 has no chunked coding: the close ends the body.
                    self.st.close = true;
                    Phase::UntilClose
                }
            }
        };
        let connection: Option<&'static [u8]> = if h2 {
            None
        } else if status == 101 {
            // However the 101 was finished, the connection switches protocols after it.
            self.st.upgrade = self.st.minor >= 1;
            self.st.close = self.st.minor == 0;
            Some(b"Upgrade")
        } else if self.st.close {
            Some(b"close")
        } else if self.st.minor == 0 {
            Some(b"keep-alive")
        } else {
            None
        };
        self.st.phase = if self.st.head_request {
            Phase::Done
        } else {
            next
        };
        let end = HeadEnd {
            date: (!self.st.own_date).then_some(self.date),
            length,
            chunked: chunked && !h2,
            connection,
            no_body: self.st.phase == Phase::Done,
        };
        match body {
            Some(body) if matches!(self.st.phase, Phase::Sized(_)) => {
                self.out.head_and_body(&end, body);
                self.st.phase = Phase::Done;
            }
            _ => self.out.end_head(&end),
        }
    }

    /// Sends `body` as the whole body (with `Content-Length`) and completes the response.
    /// After a streamed start, it writes `body` and finishes.
    pub fn body(&mut self, body: &[u8]) {
        match self.st.phase {
            Phase::Idle | Phase::Head => {
                self.finish_head_then(Framing::Length(body.len() as u64), Some(body));
            }
            Phase::Done => log::debug!("http1: body after the response was complete: ignored"),
            _ => {
                self.write(body);
                self.finish();
            }
        }
    }

    /// Like [`body`](Response::body), without copying `body` (large buffers are queued as
    /// they are).
    pub fn body_bytes(&mut self, body: Bytes) {
        match self.st.phase {
            Phase::Idle | Phase::Head => {
                self.finish_head(Framing::Length(body.len() as u64));
                if let Phase::Sized(_) = self.st.phase {
                    let d = body.clone();
                    self.out.data(&d, Some(body), false);
                    self.st.phase = Phase::Done;
                    self.out.end_body(false);
                }
            }
            _ => self.body(&body),
        }
    }

    /// Starts a body of exactly `len` bytes, to be given through [`write`](Response::write).
    /// The response completes by itself once `len` bytes were written.
    pub fn start_sized(&mut self, len: u64) {
        if matches!(self.st.phase, Phase::Idle | Phase::Head) {
            self.finish_head(Framing::Length(len));
        }
    }

    /// Starts a chunked body (for an HTTP/1.0 client: a body ended by closing the
    /// connection), to be given through [`write`](Response::write) and ended by
    /// [`finish`](Response::finish).
    pub fn start_chunked(&mut self) {
        if matches!(self.st.phase, Phase::Idle | Phase::Head) {
            self.finish_head(Framing::Chunked);
        }
    }

    /// Writes body bytes of a streamed response (starting a chunked one if none was
    /// started). Empty writes do nothing; bytes past a sized body's length are dropped.
    pub fn write(&mut self, data: &[u8]) {
        self.write_inner(data, None)
    }

    /// Like [`write`](Response::write), without copying large buffers.
    pub fn write_bytes(&mut self, data: Bytes) {
        let d = data.clone();
        self.write_inner(&d, Some(data))
    }

    fn write_inner(&mut self, data: &[u8], owned: Option<Bytes>) {
        if data.is_empty() {
            return;
        }
        if matches!(self.st.phase, Phase::Idle | Phase::Head) {
            self.start_chunked();
        }
        match self.st.phase {
            Phase::Sized(left) => {
                let n = (data.len() as u64).min(left) as usize;
                if n < data.len() {
                    log::warn!(
                        "http1: {} body bytes past Content-Length dropped",
                        data.len() - n
                    );
                }
                match owned {
                    Some(b) if n == data.len() => self.out.data(data, Some(b), false),
                    _ => self.out.data(&data[..n], None, false),
                }
                let left = left - n as u64;
                self.st.phase = if left == 0 {
                    self.out.end_body(false);
                    Phase::Done
                } else {
                    Phase::Sized(left)
                };
            }
            Phase::Chunked => self.out.data(data, owned, true),
            Phase::UntilClose => self.out.data(data, owned, false),
            Phase::Done => {} // HEAD, no-body status, or already complete.
            Phase::Idle | Phase::Head => {}
        }
    }

    /// Completes the response: the last chunk of a chunked body; for a sized body not
    /// fully written, the connection is closed (the client sees a short body, never a
    /// misframed one); with nothing written yet, an empty 200 (or the status set).
    pub fn finish(&mut self) {
        match self.st.phase {
            Phase::Idle | Phase::Head => self.body(&[]),
            Phase::Sized(left) => {
                log::warn!(
                    "http1: response finished {left} bytes short of its Content-Length; closing"
                );
                self.st.close = true;
                self.st.phase = Phase::Done;
            }
            Phase::Chunked => {
                self.out.end_body(true);
                self.st.phase = Phase::Done;
            }
            Phase::UntilClose => {
                self.out.end_body(false);
                self.st.phase = Phase::Done;
            }
            Phase::Done => {}
        }
    }

    /// Completes a chunked response (see [`start_chunked`](Response::start_chunked)) with
    /// trailer fields after its body, as gRPC's `grpc-status`: on HTTP/1.1 in the last
    /// chunk's trailer section, on HTTP/2 as the HEADERS frame that ends the stream. A
    /// field whose name is not a token or whose value holds CR, LF or other control bytes
    /// is left out, as are the framing fields. A response that is not chunked has no
    /// place for trailers: it finishes as with [`finish`](Response::finish).
    pub fn finish_with_trailers<'t>(
        &mut self,
        trailers: impl IntoIterator<Item = (&'t str, &'t [u8])>,
    ) {
        if self.st.phase != Phase::Chunked {
            self.finish();
            return;
        }
        let mut fields = trailers.into_iter().filter(|(name, value)| {
            valid_name(name)
                && valid_value(value)
                && !name.eq_ignore_ascii_case("content-length")
                && !name.eq_ignore_ascii_case("transfer-encoding")
        });
        self.out.end_with_trailers(&mut fields);
        self.st.phase = Phase::Done;
    }

    /// Gives up on the response: the connection is closed once what was written so far is
    /// flushed, without completing the body (no last chunk, no missing bytes), so the
    /// client sees a failed response rather than a short one that looks whole — what a
    /// proxy does when its upstream fails mid-response. With nothing written yet, prefer
    /// an error status.
    pub fn abort(&mut self) {
        self.st.close = true;
        self.st.phase = Phase::Done;
    }

    /// Answers `101 Switching Protocols` with the headers given so far (set `Upgrade` and
    /// whatever the protocol needs, e.g. `Sec-WebSocket-Accept`), adds
    /// `Connection: Upgrade`, and hands the connection's raw bytes to
    /// [`App::upgraded`](super::super::App::upgraded) once the request's body (if any) is read.
    /// `false` (nothing written) if the request is HTTP/1.0 or another status was set.
    pub fn upgrade(&mut self) -> bool {
        if self.st.minor == 0 || self.out.is_h2() {
            return false;
        }
        match self.st.phase {
            Phase::Idle => {
                self.status(101);
            }
            Phase::Head if self.st.status == 101 => {}
            _ => return false,
        }
        let head_request = self.st.head_request;
        self.st.head_request = true; // no body follows a 101
        self.st.expect_pending = false;
        self.finish_head(Framing::Length(0));
        self.st.head_request = head_request;
        true
    }

    /// The status written (0 if none yet): what a proxy's log reports of an answer its
    /// policy gave.
    pub fn status_code(&self) -> u16 {
        self.st.status
    }

    /// Whether anything of the response was written.
    pub fn is_started(&self) -> bool {
        self.st.is_started()
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.st.is_done()
    }

    /// Whether the connection will close after this response.
    pub fn will_close(&self) -> bool {
        self.st.close
    }

    /// Output queued on the connection and not yet sent.
    pub fn output_len(&self) -> usize {
        self.out.queued()
    }

    /// Whether the connection can take more output now: a streaming application writes
    /// while this holds and continues in [`App::resume`](super::super::App::resume).
    pub fn has_room(&self) -> bool {
        self.out.queued() < self.high_water
    }

    /// Whether the response goes out on an HTTP/2 stream.
    pub fn is_h2(&self) -> bool {
        self.out.is_h2()
    }

    /// The connection's id (for [`Handle::wake`](wireloop::Handle::wake) from another
    /// thread when a deferred answer is ready); `None` for a response written to a buffer.
    pub fn conn_id(&self) -> Option<ConnId> {
        self.id
    }
}

/// Writes the response to `req` into `buf` without a connection (sans-IO use, tests and
/// benchmarks): `f` gets a [`Response`] exactly as an application does.
pub fn write_response<R>(
    buf: &mut Vec<u8>,
    date: &HttpDate,
    req: &Request<'_>,
    f: impl FnOnce(&mut Response<'_>) -> R,
) -> R {
    let mut st = RespState::for_request(req);
    let mut res = Response::new(buf, &mut st, date, None, usize::MAX);
    f(&mut res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{header_slots, parse_request, Config};

    const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    /// `resp! { name: request => |res| { writes } => expected; }`: the bytes written for a
    /// response to `request`, with `{date}` standing for the Date line.
    macro_rules! resp {
        ($($name:ident: $req:expr => |$res:ident| $body:block => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let date = HttpDate::at(784_111_777);
                let mut slots = header_slots();
                let cfg = Config::default();
                let (_, req) = parse_request($req, &mut slots, &cfg).unwrap().unwrap();
                let mut buf = Vec::new();
                write_response(&mut buf, &date, &req, |$res| $body);
                let want = $want.replace("{date}", DATE);
                assert_eq!(String::from_utf8_lossy(&buf), want);
            }
        )*};
    }

    const GET11: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const GET10: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
    const GET10_KA: &[u8] = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const CLOSE11: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    const HEAD11: &[u8] = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
    const WS: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n";

    resp! {
        hello: GET11 => |r| { r.status(200).header("Content-Type", "text/plain").body(b"hi"); }
            => "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{date}Content-Length: 2\r\n\r\nhi";
        default_status: GET11 => |r| { r.body(b""); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 0\r\n\r\n";
        not_found: GET11 => |r| { r.status(404).body(b"x"); }
            => "HTTP/1.1 404 Not Found\r\n{date}Content-Length: 1\r\n\r\nx";
        unknown_status: GET11 => |r| { r.status(299).body(b""); }
            => "HTTP/1.1 299 \r\n{date}Content-Length: 0\r\n\r\n";
        http10_close: GET10 => |r| { r.body(b"x"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\nConnection: close\r\n\r\nx";
        http10_keep_alive: GET10_KA => |r| { r.body(b"x"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\nConnection: keep-alive\r\n\r\nx";
        client_close: CLOSE11 => |r| { r.body(b"x"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\nConnection: close\r\n\r\nx";
        app_close: GET11 => |r| { r.close().body(b"x"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\nConnection: close\r\n\r\nx";
        app_close_header: GET11 => |r| { r.header("connection", "Close").body(b"x"); assert!(r.will_close()); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\nConnection: close\r\n\r\nx";
        head_no_body: HEAD11 => |r| { r.body(b"hello"); assert!(r.is_done()); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 5\r\n\r\n";
        head_chunked: HEAD11 => |r| { r.start_chunked(); r.write(b"abc"); r.finish(); }
            => "HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n";
        no_content: GET11 => |r| { r.status(204).body(b"dropped"); }
            => "HTTP/1.1 204 No Content\r\n{date}\r\n";
        not_modified: GET11 => |r| { r.status(304).body(b"dropped"); }
            => "HTTP/1.1 304 Not Modified\r\n{date}\r\n";
        chunked: GET11 => |r| { r.start_chunked(); r.write(b"hello"); r.write(b""); r.write(&[b'x'; 17]); r.finish(); }
            => "HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n11\r\nxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n";
        trailers: GET11 => |r| {
            r.start_chunked();
            r.write(b"ab");
            r.finish_with_trailers([
                ("grpc-status", &b"0"[..]),
                ("bad name", b"x"),
                ("Content-Length", b"1"),
                ("x-split", b"a\nb"),
                ("grpc-message", b"fine"),
            ]);
            assert!(r.is_done());
        }
            => "HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n";
        trailers_need_a_chunked_body: GET11 => |r| {
            r.start_sized(2);
            r.write(b"ab");
            r.finish_with_trailers([("grpc-status", &b"0"[..])]);
        }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 2\r\n\r\nab";
        implicit_chunked: GET11 => |r| { r.write(b"ab"); r.finish(); }
            => "HTTP/1.1 200 OK\r\n{date}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        chunked_http10: GET10_KA => |r| { r.start_chunked(); r.write(b"ab"); r.finish(); assert!(r.will_close()); }
            => "HTTP/1.1 200 OK\r\n{date}Connection: close\r\n\r\nab";
        sized: GET11 => |r| { r.start_sized(5); r.write(b"hel"); assert!(!r.is_done()); r.write(b"loXX"); assert!(r.is_done()); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 5\r\n\r\nhello";
        sized_short: GET11 => |r| { r.start_sized(5); r.write(b"he"); r.finish(); assert!(r.will_close()); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 5\r\n\r\nhe";
        framing_headers_ignored: GET11 => |r| { r.header("Content-Length", "99").header("Transfer-Encoding", "gzip").body(b"x"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\n\r\nx";
        injection_refused: GET11 => |r| { r.header("X", "a\r\nSet-Cookie: evil").header("Bad Name", "v").header("Ok", "v").body(b""); }
            => "HTTP/1.1 200 OK\r\nOk: v\r\n{date}Content-Length: 0\r\n\r\n";
        own_date: GET11 => |r| { r.header("Date", "x").body(b""); }
            => "HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 0\r\n\r\n";
        upgrade: WS => |r| { r.header("Upgrade", "x"); assert!(!r.upgrade()); }
            => "HTTP/1.1 200 OK\r\nUpgrade: x\r\n";
        upgrade_ok: WS => |r| { r.status(101).header("Upgrade", "x"); assert!(r.upgrade()); assert!(r.is_done()); }
            => "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n{date}Connection: Upgrade\r\n\r\n";
        upgrade_http10: GET10 => |r| { assert!(!r.upgrade()); r.body(b""); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 0\r\nConnection: close\r\n\r\n";
        status_after_start_ignored: GET11 => |r| { r.body(b"a"); r.status(500); r.body(b"b"); }
            => "HTTP/1.1 200 OK\r\n{date}Content-Length: 1\r\n\r\na";
        interim_status_refused: GET11 => |r| { r.status(103).body(b""); }
            => "HTTP/1.1 500 Internal Server Error\r\n{date}Content-Length: 0\r\n\r\n";
    }
}
