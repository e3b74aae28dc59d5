//! Request and response smuggling through the proxy (issue 13, item 4).
//!
//! The proxy (`HttpProxy`, the engine of the `reverse-proxy` example, with a policy that
//! refuses `/admin` with 403 so that a request slipping past it shows) stands in front of
//! a raw upstream: a std `TcpListener` that records byte for byte what each of its
//! connections received and answers what the case scripts. Clients are raw `TcpStream`s.
//!
//! For every ambiguous request shape the verdict is one of two, and the case says which:
//! the client got an error status and its connection was closed, and the upstream received
//! nothing; or the upstream received exactly the messages the proxy answered for, each
//! parsed here strictly (one request line, header lines ending in CRLF, framing by one
//! `Content-Length` or by `Transfer-Encoding: chunked` alone, no hop-by-hop fields, no
//! byte left over) — so the proxy and the upstream agree on where every message ends.
//! For every ambiguous response the client gets a 502 (or one unambiguous response, or a
//! response cut off before its end) and the upstream connection is not used again.
//!
//! Each case is named; a run reports every failing case at once. All sockets are on
//! 127.0.0.1 port 0, every wait is bounded, every server is shut down and joined.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use common::{Running, TIMEOUT};
use wireloop_middleware::http1::{Request, Response};
use wireloop_proxy::{Filter, HttpProxy, ProxyHttp, Session, Settings};

/// What the upstream answers a request with when the case scripts nothing else.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// ----- the proxy ------------------------------------------------------------------------

/// Refuses `/admin` (a request smuggled past the proxy would reach the upstream without
/// this check); everything else goes to group 0.
#[derive(Clone)]
struct Guard;

impl ProxyHttp for Guard {
    type Ctx = ();

    fn request_filter(
        &mut self,
        req: &Request<'_>,
        res: &mut Response<'_>,
        _: &Session<'_>,
        _: &mut (),
    ) -> Filter {
        if req.path().starts_with("/admin") {
            res.status(403).body(b"forbidden\n");
            return Filter::Answered;
        }
        Filter::Continue
    }
}

/// The proxy under test in front of `upstream`, on 127.0.0.1 port 0; shut down and
/// joined on drop.
fn proxy(upstream: SocketAddr) -> Running {
    let group = common::group(&[upstream]);
    common::run(move |_| HttpProxy::new(Guard, vec![group.clone()], Settings::default()))
}

// ----- the recording upstream -----------------------------------------------------------

/// What the upstream does after its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Read the next request.
    Next,
    /// Close the connection.
    Close,
    /// The connection switched protocols: record the rest without parsing it.
    Raw,
}

/// The upstream's answer to request `n` (0-based) of connection `c`.
type Script = Arc<dyn Fn(usize, usize) -> (Vec<u8>, Then) + Send + Sync>;

/// What one upstream connection received.
#[derive(Debug, Default)]
struct Recording {
    bytes: Vec<u8>,
    /// Why the upstream's own strict reading stopped early, if it did.
    error: Option<String>,
    /// Where the connection switched protocols (the bytes from there are not HTTP).
    raw_at: Option<usize>,
}

impl Recording {
    /// The HTTP part and the tunnelled part.
    fn split(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at(self.raw_at.unwrap_or(self.bytes.len()))
    }
}

/// A connection's thread: its accept index and what it received.
type ConnThread = JoinHandle<(usize, Recording)>;

/// A request the upstream must receive: its request line and body.
type Sent = (&'static str, &'static [u8]);

/// The recording upstream: one thread accepting, one per connection.
struct Upstream {
    addr: SocketAddr,
    stop: Arc<Mutex<bool>>,
    accept: Option<JoinHandle<Vec<ConnThread>>>,
}

impl Upstream {
    fn start(script: Script) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(Mutex::new(false));
        let stop2 = stop.clone();
        let accept = thread::spawn(move || {
            let mut conns = Vec::new();
            for (c, s) in listener.incoming().enumerate() {
                if *stop2.lock().unwrap() {
                    break;
                }
                let Ok(s) = s else { continue };
                let script = script.clone();
                conns.push(thread::spawn(move || (c, serve_upstream(s, c, &*script))));
            }
            conns
        });
        Upstream {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    /// Stops accepting and returns what each connection received, in accept order (call
    /// after the proxy stopped, so that every connection has ended).
    fn finish(mut self) -> Vec<Recording> {
        *self.stop.lock().unwrap() = true;
        let _ = TcpStream::connect(self.addr); // wakes the accept
        let conns = self.accept.take().unwrap().join().expect("accept thread");
        let mut out: Vec<(usize, Recording)> = conns
            .into_iter()
            .map(|t| t.join().expect("upstream connection thread"))
            .collect();
        out.sort_by_key(|(c, _)| *c);
        out.into_iter().map(|(_, r)| r).collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(t) = self.accept.take() {
            *self.stop.lock().unwrap() = true;
            let _ = TcpStream::connect(self.addr);
            let _ = t.join();
        }
    }
}

/// Reads requests strictly, answers each as scripted, records every byte until the proxy
/// closes the connection (or an error, or the time limit).
fn serve_upstream(
    mut s: TcpStream,
    c: usize,
    script: &dyn Fn(usize, usize) -> (Vec<u8>, Then),
) -> Recording {
    let deadline = Instant::now() + TIMEOUT;
    let mut rec = Recording::default();
    let mut pos = 0;
    let mut n = 0;
    let mut raw = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if !raw && rec.error.is_none() {
            match parse_strict(&rec.bytes[pos..], Kind::Request, false) {
                Parsed::Complete(m) => {
                    pos += m.len;
                    let (answer, then) = script(c, n);
                    n += 1;
                    if s.write_all(&answer).is_err() {
                        break;
                    }
                    match then {
                        Then::Next => continue,
                        Then::Close => {
                            let _ = s.shutdown(Shutdown::Write);
                            raw = true;
                        }
                        Then::Raw => {
                            rec.raw_at = Some(pos);
                            raw = true;
                        }
                    }
                }
                Parsed::Partial => {}
                Parsed::Invalid(why) => {
                    // Not one unambiguous message: stop answering, record the rest.
                    rec.error = Some(why);
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            rec.error
                .get_or_insert_with(|| "upstream connection outlived the test".into());
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => rec.bytes.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    rec
}

// ----- a strict HTTP/1.1 reader, independent of the code under test ---------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request,
    /// A response; `head`: to a HEAD request.
    Response {
        head: bool,
    },
}

#[derive(Debug)]
struct Msg {
    /// The request line or status line.
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes of the whole message.
    len: usize,
}

impl Msg {
    fn status(&self) -> u16 {
        self.start
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

#[derive(Debug)]
enum Parsed {
    Complete(Msg),
    Partial,
    Invalid(String),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One message at the start of `buf`, read more strictly than RFC 9112 asks: what a
/// proxy *sends* must leave no room for two readings. `eof`: no more bytes will come (a
/// response delimited by the close ends here).
fn parse_strict(buf: &[u8], kind: Kind, eof: bool) -> Parsed {
    use Parsed::*;
    // Every CR is followed by LF, every LF preceded by CR, as far as the head goes.
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let scan = &buf[..head_end.unwrap_or(buf.len())];
    for (i, &b) in scan.iter().enumerate() {
        if b == b'\n' && (i == 0 || scan[i - 1] != b'\r') {
            return Invalid(format!("bare LF at {i}"));
        }
        if b == b'\r' && scan.get(i + 1).is_some_and(|&n| n != b'\n') {
            return Invalid(format!("bare CR at {i}"));
        }
    }
    let Some(head_end) = head_end else {
        return if eof && !buf.is_empty() {
            Invalid("head cut off".into())
        } else {
            Partial
        };
    };
    let head = &buf[..head_end - 4];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    let Ok(start) = std::str::from_utf8(start) else {
        return Invalid("start line not UTF-8".into());
    };
    let parts: Vec<&str> = start.split(' ').collect();
    match kind {
        Kind::Request => {
            if parts.len() != 3
                || parts[0].is_empty()
                || !parts[0].bytes().all(is_tchar)
                || parts[2] != "HTTP/1.1"
            {
                return Invalid(format!("request line {start:?}"));
            }
            let t = parts[1];
            let origin = t.starts_with('/');
            if !(origin || (t == "*" && parts[0] == "OPTIONS"))
                || t.bytes().any(|b| b <= b' ' || b >= 0x7f)
            {
                return Invalid(format!("request target {t:?} is not origin-form"));
            }
        }
        Kind::Response { .. } => {
            let ok = parts.len() >= 2
                && parts[0] == "HTTP/1.1"
                && parts[1].len() == 3
                && parts[1].bytes().all(|b| b.is_ascii_digit());
            if !ok {
                return Invalid(format!("status line {start:?}"));
            }
        }
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Invalid(format!(
                "field line without colon {:?}",
                String::from_utf8_lossy(line)
            ));
        };
        let (name, rest) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Invalid(format!("field name {:?}", String::from_utf8_lossy(name)));
        }
        let value = rest.strip_prefix(b" ").unwrap_or(rest);
        if value.first().is_some_and(|&b| b == b' ' || b == b'\t')
            || value.last().is_some_and(|&b| b == b' ' || b == b'\t')
            || value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
        {
            return Invalid(format!("field value {:?}", String::from_utf8_lossy(value)));
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    let mut m = Msg {
        start: start.to_string(),
        headers,
        body: Vec::new(),
        len: head_end,
    };
    // Framing fields: at most one of each, never both, single well-formed values.
    let cls = m.count("content-length");
    let tes = m.count("transfer-encoding");
    if cls > 1 || tes > 1 || (cls == 1 && tes == 1) {
        return Invalid(format!(
            "{cls} Content-Length and {tes} Transfer-Encoding fields"
        ));
    }
    if let Some(te) = m.header("transfer-encoding") {
        if te != "chunked" {
            return Invalid(format!("Transfer-Encoding {te:?}"));
        }
    }
    let cl = match m.header("content-length") {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.len() < 16 => {
            Some(v.parse::<usize>().unwrap())
        }
        Some(v) => return Invalid(format!("Content-Length {v:?}")),
        None => None,
    };
    if kind == Kind::Request {
        if m.count("host") != 1 {
            return Invalid(format!("{} Host fields", m.count("host")));
        }
        for hop in ["keep-alive", "te", "trailer", "proxy-connection", "expect"] {
            if m.count(hop) > 0 {
                return Invalid(format!("{hop} forwarded"));
            }
        }
        let upgrade = m.header("connection");
        if upgrade.is_some_and(|v| v != "Upgrade") || m.count("connection") > 1 {
            return Invalid(format!("Connection {upgrade:?} forwarded"));
        }
        if (m.count("upgrade") > 0) != upgrade.is_some() {
            return Invalid("Upgrade without Connection: Upgrade (or the reverse)".into());
        }
        if m.header("upgrade")
            .is_some_and(|v| v.to_ascii_lowercase().contains("h2c"))
        {
            return Invalid("h2c upgrade offered upstream".into());
        }
    }
    let rest = &buf[head_end..];
    let no_body = match kind {
        Kind::Request => cl.is_none() && tes == 0,
        Kind::Response { head } => {
            let s = m.status();
            head || s < 200 || s == 204 || s == 304
        }
    };
    if no_body {
        return Complete(m);
    }
    if let Some(n) = cl {
        if rest.len() < n {
            return if eof {
                Invalid("body cut off".into())
            } else {
                Partial
            };
        }
        m.body = rest[..n].to_vec();
        m.len += n;
        return Complete(m);
    }
    if tes == 1 {
        // hex CRLF data CRLF ... 0 CRLF CRLF: no extensions, no trailers.
        let mut i = 0;
        loop {
            let Some(eol) = rest[i..].windows(2).position(|w| w == b"\r\n") else {
                return if eof {
                    Invalid("chunk cut off".into())
                } else {
                    Partial
                };
            };
            let size = &rest[i..i + eol];
            if size.is_empty() || size.len() > 15 || !size.iter().all(|b| b.is_ascii_hexdigit()) {
                return Invalid(format!("chunk size {:?}", String::from_utf8_lossy(size)));
            }
            let n = usize::from_str_radix(std::str::from_utf8(size).unwrap(), 16).unwrap();
            i += eol + 2;
            if n == 0 {
                if rest.len() < i + 2 {
                    return if eof {
                        Invalid("last chunk cut off".into())
                    } else {
                        Partial
                    };
                }
                if &rest[i..i + 2] != b"\r\n" {
                    return Invalid("trailer fields or junk after the last chunk".into());
                }
                m.len += i + 2;
                return Complete(m);
            }
            if rest.len() < i + n + 2 {
                return if eof {
                    Invalid("chunk cut off".into())
                } else {
                    Partial
                };
            }
            m.body.extend_from_slice(&rest[i..i + n]);
            if &rest[i + n..i + n + 2] != b"\r\n" {
                return Invalid("chunk data not followed by CRLF".into());
            }
            i += n + 2;
        }
    }
    // A response body delimited by the close.
    if !eof {
        return Partial;
    }
    m.body = rest.to_vec();
    m.len = buf.len();
    Complete(m)
}

/// Every message of `bytes`, strictly; an error names what was not.
fn parse_all(bytes: &[u8], kind: Kind) -> Result<Vec<Msg>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match parse_strict(&bytes[pos..], kind, true) {
            Parsed::Complete(m) => {
                pos += m.len;
                out.push(m);
            }
            Parsed::Partial => unreachable!("eof given"),
            Parsed::Invalid(why) => {
                return Err(format!(
                    "after {} message(s): {why}; bytes from there: {:?}",
                    out.len(),
                    String::from_utf8_lossy(&bytes[pos..])
                ))
            }
        }
    }
    Ok(out)
}

// ----- the client -----------------------------------------------------------------------

/// What a client connection received.
struct Received {
    /// Responses, interim ones included, in order.
    responses: Vec<Msg>,
    /// The connection ended (the proxy closed it) right after them.
    closed: bool,
    /// Bytes that did not parse strictly, with the reason.
    junk: Option<String>,
}

/// Which of the requests in `send` are `HEAD`, request by request (a lenient scan of
/// well-formed pipelined requests; it stops at anything else).
fn heads(send: &[u8]) -> Vec<bool> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(end) = send[pos..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = &send[pos..pos + end];
        out.push(head.starts_with(b"HEAD "));
        pos += end + 4;
        let text = String::from_utf8_lossy(head).to_ascii_lowercase();
        if let Some(v) = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
        {
            match v.trim().parse::<usize>() {
                Ok(n) => pos += n,
                Err(_) => break,
            }
        } else if text.contains("transfer-encoding") {
            match send[pos..].windows(5).position(|w| w == b"0\r\n\r\n") {
                Some(i) => pos += i + 5,
                None => break,
            }
        }
        if pos >= send.len() {
            break;
        }
    }
    out
}

/// Reads responses from `s` until `want` final ones arrived, the connection closes, or
/// the time limit; then, if `to_close`, waits (bounded) for the close.
fn receive(s: &mut TcpStream, want: usize, heads: &[bool], to_close: bool) -> Received {
    let deadline = Instant::now() + TIMEOUT;
    let mut bytes = Vec::new();
    let mut r = Received {
        responses: Vec::new(),
        closed: false,
        junk: None,
    };
    let mut buf = [0u8; 16 * 1024];
    let finals = |r: &Received| {
        r.responses
            .iter()
            .filter(|m| m.status() >= 200 || m.status() == 101)
            .count()
    };
    loop {
        // Parse what is there.
        loop {
            let head = heads.get(finals(&r)).copied().unwrap_or(false);
            match parse_strict(&bytes, Kind::Response { head }, r.closed) {
                Parsed::Complete(m) => {
                    bytes.drain(..m.len);
                    r.responses.push(m);
                }
                Parsed::Partial => break,
                Parsed::Invalid(why) => {
                    r.junk = Some(format!("{why}: {:?}", String::from_utf8_lossy(&bytes)));
                    return r;
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        if r.closed {
            if !bytes.is_empty() {
                r.junk = Some(format!("left over: {:?}", String::from_utf8_lossy(&bytes)));
            }
            return r;
        }
        let upgraded = r.responses.last().is_some_and(|m| m.status() == 101);
        if (finals(&r) >= want || upgraded) && !to_close {
            return r;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            r.junk = Some(format!(
                "timed out after {} response(s); pending {:?}",
                r.responses.len(),
                String::from_utf8_lossy(&bytes)
            ));
            return r;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => r.closed = true,
            Ok(k) => bytes.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A reset after the answer is a close too.
            Err(_) => r.closed = true,
        }
    }
}

/// The rest of what the client connection gets until the proxy closes it (after the
/// proxy's shutdown): must be nothing.
fn drain(s: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.read_to_end(&mut rest);
    rest
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ----- request cases ----------------------------------------------------------------------

/// What the proxy must do with a request shape.
enum Want {
    /// The client gets this status, then the connection closes; the upstream gets
    /// nothing.
    Reject(u16),
    /// The client gets these statuses (interim ones too) in order; the upstream gets
    /// exactly these messages (request line, body), each one unambiguous.
    Forward(&'static [u16], &'static [Sent]),
    /// As `Forward`, and then the connection closes.
    ForwardClose(&'static [u16], &'static [Sent]),
    /// The upstream answers the first request 101: the client gets the 101; the upstream
    /// gets that request, then these bytes through the tunnel.
    Tunnel(&'static str, &'static [u8]),
}

struct Case {
    name: &'static str,
    /// What the client sends, in one write.
    send: Vec<u8>,
    want: Want,
}

macro_rules! req {
    ($($part:expr),* $(,)?) => { concat!($($part),*).as_bytes().to_vec() };
}

fn request_cases() -> Vec<Case> {
    use Want::*;
    vec![
        // --- baselines: the harness itself ---
        Case {
            name: "baseline_get",
            send: req!("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200], &[("GET /x HTTP/1.1", b"")]),
        },
        Case {
            name: "baseline_post_cl",
            send: req!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
            want: Forward(&[200], &[("POST /x HTTP/1.1", b"hello")]),
        },
        Case {
            name: "baseline_post_chunked",
            send: req!("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST /x HTTP/1.1", b"hello")]),
        },
        Case {
            name: "baseline_admin_refused",
            send: req!("GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[403], &[]),
        },
        // --- CL + TE (pingora #945: CL.TE and TE.CL) ---
        Case {
            name: "cl_te_pingora945",
            send: req!("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: test\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_cl_pingora945",
            send: req!("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "cl_te_identity",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_zero_te_chunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "cl_te_in_trailer_style_case",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\ntransfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        // --- duplicated Content-Length ---
        Case {
            name: "cl_duplicate_differing",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            want: Reject(400),
        },
        Case {
            name: "cl_list_differing",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!"),
            want: Reject(400),
        },
        Case {
            name: "cl_duplicate_equal",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "cl_list_equal",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\nhello"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "cl_list_trailing_comma",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_negative",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_plus",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_hex",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_overflow_u64",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_space_inside",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_empty",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_vertical_tab",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\x0b\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "cl_leading_zeros",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\nhello"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "cl_on_get_with_hidden_request",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 32\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200], &[("GET / HTTP/1.1", b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")]),
        },
        // --- Transfer-Encoding lists (CVE-2026-2835: TE lists, repeats, HTTP/1.0) ---
        Case {
            name: "te_chunked_identity",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_identity_chunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n"),
            want: Reject(501),
        },
        Case {
            name: "te_chunked_chunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_two_fields_chunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_two_fields_identity_then_chunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            want: Reject(501),
        },
        Case {
            name: "te_two_fields_chunked_then_identity",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_gzip_alone",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "te_xchunked",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_quoted",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_chunked_with_params",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_empty_list_elements",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "te_upper_case",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "te_tab_before_value",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "te_vertical_tab",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_nul",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "te_in_http10",
            send: req!("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "http10_body_without_length_is_not_read_until_close",
            send: req!("POST / HTTP/1.0\r\nHost: a\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: ForwardClose(&[200], &[("POST / HTTP/1.1", b"")]),
        },
        Case {
            name: "http10_keep_alive_then_smuggle_attempt",
            send: req!("POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("POST / HTTP/1.1", b"")]),
        },
        // --- chunk extensions, sizes, data framing ---
        Case {
            name: "chunk_extension",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0;last\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "chunk_extension_quoted",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x;y\\\"z\"\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "chunk_extension_bare_lf",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_extension_crlf_in_quotes",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n\"\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        // Extension contents are not checked beyond line framing (quoted strings cannot
        // hold a CR or LF); the proxy re-chunks, so the upstream never sees them.
        Case {
            name: "chunk_extension_no_name",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "chunk_size_bare_lf",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_bare_cr",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_data_bare_lf",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_data_too_long",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_leading_zeros",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000000000000005\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "chunk_size_overflow_truncates_to_5",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_huge",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_0x",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_negative",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_trailing_space",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_leading_space",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_underscore",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0_5\r\nhello\r\n0\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunk_size_line_too_long",
            // A chunk-size line (size and extension) over the decoder's 4 KiB limit.
            send: format!(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x={}\r\nhello\r\n0\r\n\r\n",
                "a".repeat(5000)
            )
            .into_bytes(),
            want: Reject(400),
        },
        Case {
            name: "last_chunk_with_trailers",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 100\r\nX-T: v\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "last_chunk_then_request_as_trailer",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "trailer_obs_fold",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "chunked_body_hides_request",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n20\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")]),
        },
        // --- obs-fold, bare LF, bare CR ---
        Case {
            name: "obs_fold_header",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "obs_fold_transfer_encoding",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "obs_fold_tab_content_length",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\t6\r\n\r\nhello!"),
            want: Reject(400),
        },
        Case {
            name: "bare_lf_line_ends",
            send: req!("GET / HTTP/1.1\nHost: a\n\n"),
            want: Reject(400),
        },
        Case {
            name: "bare_lf_before_te",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "bare_lf_end_of_head",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\n\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "bare_cr_in_value",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "bare_cr_line_end",
            send: req!("GET / HTTP/1.1\rHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "cr_cr_lf",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"),
            want: Reject(400),
        },
        // --- header names ---
        Case {
            name: "space_before_colon_cl",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "space_before_colon_te",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "tab_before_colon",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "space_inside_name",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nX Forwarded: b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "leading_space_first_field",
            send: req!("GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "nul_in_name",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "empty_name",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "non_ascii_name",
            send: b"GET / HTTP/1.1\r\nHost: a\r\nTransfer\xc2\xadEncoding: chunked\r\n\r\n".to_vec(),
            want: Reject(400),
        },
        Case {
            name: "underscore_name_passes_through",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        // --- Host, targets ---
        Case {
            name: "host_missing",
            send: req!("GET / HTTP/1.1\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "host_twice",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "host_with_path",
            send: req!("GET / HTTP/1.1\r\nHost: a/admin\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "absolute_form_same_host",
            send: req!("GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200], &[("GET /x?y HTTP/1.1", b"")]),
        },
        Case {
            name: "absolute_form_other_host",
            send: req!("GET http://evil.example/admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "absolute_form_admin_path",
            send: req!("GET http://a/admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[403], &[]),
        },
        Case {
            name: "absolute_form_userinfo",
            send: req!("GET http://a@evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "absolute_form_no_path",
            send: req!("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "authority_form_connect",
            send: req!("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(501),
        },
        Case {
            name: "asterisk_form_options",
            send: req!("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200], &[("OPTIONS * HTTP/1.1", b"")]),
        },
        Case {
            name: "asterisk_form_get",
            send: req!("GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "target_without_slash",
            send: req!("GET admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "request_line_double_space",
            send: req!("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "request_line_tab",
            send: req!("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "version_lower_case",
            send: req!("GET / http/1.1\r\nHost: a\r\n\r\n"),
            want: Reject(400),
        },
        Case {
            name: "version_2",
            send: req!("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            want: Reject(505),
        },
        // --- Connection-listed fields cannot remove what frames or routes ---
        Case {
            name: "connection_names_content_length",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "connection_names_transfer_encoding",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            want: Forward(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "connection_names_host",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n"),
            want: Forward(&[200], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "connection_close_is_not_forwarded",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            want: ForwardClose(&[200], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "hop_by_hop_fields_dropped",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\nProxy-Connection: x\r\nConnection: keep-alive\r\n\r\n"),
            want: Forward(&[200], &[("GET / HTTP/1.1", b"")]),
        },
        // --- Expect ---
        Case {
            name: "expect_100_continue",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
            want: Forward(&[100, 200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "expect_100_continue_without_body",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"),
            want: Forward(&[200], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "expect_unknown",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-please\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(417),
        },
        Case {
            name: "expect_list_with_unknown",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(417),
        },
        Case {
            name: "expect_obs_fold",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
            want: Reject(400),
        },
        Case {
            name: "expect_in_http10_ignored",
            send: req!("POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
            want: ForwardClose(&[200], &[("POST / HTTP/1.1", b"hello")]),
        },
        Case {
            name: "expect_then_request_in_body",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 32\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[100, 200], &[("POST / HTTP/1.1", b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")]),
        },
        // --- pipelining ---
        Case {
            name: "pipelined_two",
            send: req!("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"),
            want: Forward(&[200, 200], &[("GET /1 HTTP/1.1", b""), ("POST /2 HTTP/1.1", b"hi")]),
        },
        Case {
            name: "pipelined_admin_after_body",
            send: req!("POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("POST /1 HTTP/1.1", b"hi")]),
        },
        Case {
            name: "pipelined_admin_after_chunked",
            send: req!("POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("POST /1 HTTP/1.1", b"hi")]),
        },
        Case {
            name: "pipelined_bad_second",
            send: req!("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            want: ForwardClose(&[200, 400], &[("GET /1 HTTP/1.1", b"")]),
        },
        Case {
            name: "pipelined_head_then_get",
            send: req!("HEAD /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("HEAD /1 HTTP/1.1", b"")]),
        },
        // --- upgrades (CVE-2026-2833: tunnel before the upstream's 101) ---
        Case {
            name: "upgrade_refused_then_smuggled_cve_2026_2833",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "upgrade_with_body_refused_then_smuggled",
            send: req!("POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\nhiGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("POST / HTTP/1.1", b"hi")]),
        },
        Case {
            name: "upgrade_header_without_connection_token",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "upgrade_in_http10",
            send: req!("GET / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade, keep-alive\r\nUpgrade: foo\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("GET / HTTP/1.1", b"")]),
        },
        Case {
            name: "upgrade_accepted_then_bytes_tunnelled",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Tunnel("GET / HTTP/1.1", b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
        },
        Case {
            name: "upgrade_h2c_not_tunnelled",
            send: req!("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            want: Forward(&[200, 403], &[("GET / HTTP/1.1", b"")]),
        },
    ]
}

/// The upstream's answer to requests: 200 "ok", keep-alive.
fn ok_script() -> Script {
    Arc::new(|_, _| (OK.to_vec(), Then::Next))
}

/// Runs one request case; `Err` says what went wrong.
fn run_request_case(case: &Case) -> Result<String, String> {
    let script: Script = match case.want {
        Want::Tunnel(..) => Arc::new(|c, n| {
            if (c, n) == (0, 0) {
                (
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"
                        .to_vec(),
                    Then::Raw,
                )
            } else {
                (OK.to_vec(), Then::Next)
            }
        }),
        _ => ok_script(),
    };
    let up = Upstream::start(script);
    let px = proxy(up.addr);
    let mut s = TcpStream::connect(px.addr).map_err(|e| e.to_string())?;
    s.write_all(&case.send).map_err(|e| e.to_string())?;
    let tunnel_sent;
    let (statuses, sent, to_close, raw): (&[u16], &[Sent], bool, &[u8]) = match &case.want {
        Want::Reject(st) => (std::slice::from_ref(st), &[], true, b""),
        Want::Forward(st, sent) => (st, sent, false, b""),
        Want::ForwardClose(st, sent) => (st, sent, true, b""),
        Want::Tunnel(line, raw) => {
            tunnel_sent = [(*line, &b""[..])];
            (&[101], &tunnel_sent, false, raw)
        }
    };
    let finals = statuses.iter().filter(|&&s| s >= 200 || s == 101).count();
    let got = receive(&mut s, finals, &heads(&case.send), to_close);
    drop(px);
    let rest = if got.closed {
        Vec::new()
    } else {
        drain(&mut s)
    };
    let recs = up.finish();
    let mut problems = Vec::new();
    let got_statuses: Vec<u16> = got.responses.iter().map(Msg::status).collect();
    if got_statuses != statuses {
        problems.push(format!("client got {got_statuses:?}, want {statuses:?}"));
    }
    if let Some(j) = &got.junk {
        problems.push(format!("client: {j}"));
    }
    if to_close && !got.closed {
        problems.push("client connection not closed".into());
    }
    if !rest.is_empty() {
        problems.push(format!("client got more: {:?}", show(&rest)));
    }
    let mut upstream = Vec::new();
    let mut tunnelled = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        if let Some(e) = &r.error {
            problems.push(format!(
                "upstream connection {i}: {e}: {:?}",
                show(&r.bytes)
            ));
            continue;
        }
        let (http, rest) = r.split();
        tunnelled.extend_from_slice(rest);
        match parse_all(http, Kind::Request) {
            Ok(msgs) => upstream.extend(msgs),
            Err(e) => problems.push(format!("upstream connection {i}: {e}")),
        }
    }
    if tunnelled != raw {
        problems.push(format!(
            "upstream got {:?} through a tunnel, want {:?}",
            show(&tunnelled),
            show(raw)
        ));
    }
    let got_sent: Vec<(String, Vec<u8>)> = upstream
        .iter()
        .map(|m| (m.start.clone(), m.body.clone()))
        .collect();
    let want_sent: Vec<(String, Vec<u8>)> = sent
        .iter()
        .map(|(l, b)| (l.to_string(), b.to_vec()))
        .collect();
    if got_sent != want_sent {
        problems.push(format!(
            "upstream received {:?}, want {:?}",
            got_sent
                .iter()
                .map(|(l, b)| format!("{l} [{}]", show(b)))
                .collect::<Vec<_>>(),
            want_sent
                .iter()
                .map(|(l, b)| format!("{l} [{}]", show(b)))
                .collect::<Vec<_>>()
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "client {got_statuses:?}, upstream {} message(s)",
            upstream.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// Runs `cases` with `run`, prints one line each, and fails listing every failing case.
fn run_table<C>(
    what: &str,
    cases: &[C],
    name: impl Fn(&C) -> &'static str,
    run: impl Fn(&C) -> Result<String, String>,
) {
    let filter = std::env::var("SMUGGLE_CASE").ok();
    let mut failed = Vec::new();
    let mut ran = 0;
    for c in cases {
        let n = name(c);
        if filter.as_deref().is_some_and(|f| !n.contains(f)) {
            continue;
        }
        ran += 1;
        match run(c) {
            Ok(outcome) => println!("{what} {n}: ok ({outcome})"),
            Err(why) => {
                println!("{what} {n}: FAILED: {why}");
                failed.push(format!("{n}: {why}"));
            }
        }
    }
    assert!(ran > 0, "no case ran");
    assert!(
        failed.is_empty(),
        "{} of {ran} {what} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn ambiguous_requests_are_refused_or_forwarded_as_one_message() {
    let cases = request_cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    run_table("request", &cases, |c| c.name, run_request_case);
}

// ----- response cases ---------------------------------------------------------------------

/// What the client must get for an upstream's response.
#[derive(Clone, Copy, Debug)]
enum Got {
    /// 502 from the proxy, then the close.
    BadGateway,
    /// This status and body, complete and unambiguous.
    Pass(u16, &'static [u8]),
    /// The head with this status, then the close before the body's end (the client sees
    /// a truncated response, never a complete wrong one).
    Cut(u16),
}

struct RespCase {
    name: &'static str,
    /// The client's request.
    request: &'static [u8],
    /// The upstream's answer to it, in one write, and what the upstream does next.
    answer: Vec<u8>,
    then: Then,
    want: Got,
    /// Whether the upstream connection may serve the next request.
    reuse: bool,
}

const GET: &[u8] = b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n";
const HEAD: &[u8] = b"HEAD /r HTTP/1.1\r\nHost: a\r\n\r\n";

fn rc(name: &'static str, answer: &str, want: Got, reuse: bool) -> RespCase {
    RespCase {
        name,
        request: GET,
        answer: answer.as_bytes().to_vec(),
        then: Then::Next,
        want,
        reuse,
    }
}

fn response_cases() -> Vec<RespCase> {
    use Got::*;
    let head = |mut c: RespCase| {
        c.request = HEAD;
        c
    };
    let close = |mut c: RespCase| {
        c.then = Then::Close;
        c
    };
    vec![
        // --- baselines ---
        rc("baseline_length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("baseline_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", Pass(200, b"ok"), true),
        rc("baseline_204", "HTTP/1.1 204 No Content\r\n\r\n", Pass(204, b""), true),
        close(rc("baseline_until_close", "HTTP/1.1 200 OK\r\n\r\nhello", Pass(200, b"hello"), false)),
        // --- CL + TE, duplicated and malformed CL ---
        rc("cl_te", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("te_cl", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("cl_duplicate_differing", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", BadGateway, false),
        rc("cl_list_differing", "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!", BadGateway, false),
        rc("cl_duplicate_equal", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("cl_negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok", BadGateway, false),
        rc("cl_plus", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", BadGateway, false),
        rc("cl_hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", BadGateway, false),
        rc("cl_overflow_u64", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551618\r\n\r\nok", BadGateway, false),
        rc("cl_empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", BadGateway, false),
        rc("cl_too_many_bytes", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok, and more", Pass(200, b"ok"), false),
        close(rc("cl_too_few_bytes_then_close", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", Cut(200), false)),
        // --- Transfer-Encoding ---
        rc("te_chunked_identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("te_identity_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("te_chunked_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("te_two_fields", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        close(rc("te_gzip_alone", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", BadGateway, false)),
        rc("te_in_http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", BadGateway, false),
        // --- chunked bodies ---
        rc("chunk_size_invalid", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("chunk_size_overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("chunk_size_bare_lf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", BadGateway, false),
        rc("chunk_data_without_crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX0\r\n\r\n", BadGateway, false),
        rc("chunk_extension", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0;c\r\n\r\n", Pass(200, b"ok"), true),
        rc("chunk_trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nContent-Length: 5\r\n\r\n", Pass(200, b"ok"), true),
        // --- line ends, folding, names ---
        rc("obs_fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("obs_fold_content_length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nok!", BadGateway, false),
        rc("bare_lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", BadGateway, false),
        rc("bare_lf_one_line", "HTTP/1.1 200 OK\r\nX: y\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("bare_cr", "HTTP/1.1 200 OK\r\nX: y\rContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", BadGateway, false),
        rc("space_in_name", "HTTP/1.1 200 OK\r\nX Y: z\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("nul_in_value", "HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        // --- status lines ---
        rc("status_four_digits", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("status_two_digits", "HTTP/1.1 99 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("version_2", "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("version_1_2", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("not_http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", BadGateway, false),
        rc("http10_response", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), false),
        // --- 1xx ---
        rc("interim_100_then_200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("interim_103_then_200", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("interim_many", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("interim_with_body", "HTTP/1.1 100 Continue\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("interim_cl_te", "HTTP/1.1 100 Continue\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", BadGateway, false),
        rc("switching_protocols_unasked", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nGET /admin HTTP/1.1\r\n\r\n", BadGateway, false),
        // --- bodies where none may be ---
        rc("body_on_204", "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok", Pass(204, b""), false),
        rc("chunked_body_on_204", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", Pass(204, b""), false),
        rc("body_on_304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\nok", Pass(304, b""), false),
        rc("length_on_304_without_body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n", Pass(304, b""), true),
        rc("cl_te_on_204", "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", BadGateway, false),
        head(rc("head_with_body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Pass(200, b""), false)),
        head(rc("head_chunked_with_body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", Pass(200, b""), false)),
        head(rc("head_length_without_body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Pass(200, b""), true)),
        // --- more than one response ---
        rc("two_responses_for_one_request", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil", Pass(200, b"ok"), false),
        // --- framing fields named by Connection ---
        rc("connection_names_content_length", "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), true),
        rc("connection_close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", Pass(200, b"ok"), false),
        close(rc("until_close_with_keep_alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nhello", Pass(200, b"hello"), false)),
    ]
}

/// Runs one response case; `Err` says what went wrong.
fn run_response_case(case: &RespCase) -> Result<String, String> {
    let answer = case.answer.clone();
    let then = case.then;
    let up = Upstream::start(Arc::new(move |c, n| {
        if (c, n) == (0, 0) {
            (answer.clone(), then)
        } else {
            (OK.to_vec(), Then::Next)
        }
    }));
    let px = proxy(up.addr);
    let mut problems = Vec::new();
    let mut s = TcpStream::connect(px.addr).map_err(|e| e.to_string())?;
    s.write_all(case.request).map_err(|e| e.to_string())?;
    let to_close = matches!(case.want, Got::BadGateway | Got::Cut(_));
    let head = case.request == HEAD;
    let got = receive(&mut s, 1, &[head], to_close);
    let finals: Vec<&Msg> = got.responses.iter().filter(|m| m.status() >= 200).collect();
    match case.want {
        Got::BadGateway => {
            if finals.len() != 1 || finals[0].status() != 502 || got.junk.is_some() {
                problems.push(format!(
                    "client got {:?} (junk {:?}), want 502",
                    finals.iter().map(|m| m.status()).collect::<Vec<_>>(),
                    got.junk
                ));
            }
        }
        Got::Pass(status, body) => {
            if finals.len() != 1
                || finals[0].status() != status
                || finals[0].body != body
                || got.junk.is_some()
            {
                problems.push(format!(
                    "client got {:?} (junk {:?}), want {status} [{}]",
                    finals
                        .iter()
                        .map(|m| format!("{} [{}]", m.status(), show(&m.body)))
                        .collect::<Vec<_>>(),
                    got.junk,
                    show(body)
                ));
            }
        }
        Got::Cut(status) => {
            let cut = got.junk.as_deref().is_some_and(|j| {
                j.contains("cut off") && j.contains(&format!("\"HTTP/1.1 {status} "))
            });
            if !finals.is_empty() || !cut {
                problems.push(format!(
                    "client got {:?} (junk {:?}), want a {status} cut off",
                    finals.iter().map(|m| m.status()).collect::<Vec<_>>(),
                    got.junk
                ));
            }
        }
    }
    if to_close && !got.closed {
        problems.push("client connection not closed".into());
    }
    // The next request: on the same client connection if it is open, else a new one.
    if got.closed {
        s = TcpStream::connect(px.addr).map_err(|e| e.to_string())?;
    }
    s.write_all(b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let second = receive(&mut s, 1, &[false], false);
    let ok = second.responses.len() == 1
        && second.responses[0].status() == 200
        && second.responses[0].body == b"ok"
        && second.junk.is_none();
    if !ok {
        problems.push(format!(
            "next request got {:?} (junk {:?})",
            second
                .responses
                .iter()
                .map(|m| format!("{} [{}]", m.status(), show(&m.body)))
                .collect::<Vec<_>>(),
            second.junk
        ));
    }
    drop(px);
    let recs = up.finish();
    // What each upstream connection received, strictly.
    let mut conns = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        match parse_all(&r.bytes, Kind::Request) {
            Ok(msgs) if r.error.is_none() => {
                conns.push(msgs.iter().map(|m| m.start.clone()).collect::<Vec<_>>())
            }
            Ok(_) => problems.push(format!("upstream connection {i}: {:?}", r.error)),
            Err(e) => problems.push(format!("upstream connection {i}: {e}")),
        }
    }
    let first = String::from_utf8_lossy(case.request)
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let want: Vec<Vec<String>> = if case.reuse {
        vec![vec![first, "GET /second HTTP/1.1".into()]]
    } else {
        vec![vec![first], vec!["GET /second HTTP/1.1".into()]]
    };
    if conns != want {
        problems.push(format!(
            "upstream connections received {conns:?}, want {want:?}"
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "client {:?}, upstream connections {}",
            case.want,
            conns.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn ambiguous_responses_are_refused_and_never_reused() {
    let cases = response_cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    run_table("response", &cases, |c| c.name, run_response_case);
}
