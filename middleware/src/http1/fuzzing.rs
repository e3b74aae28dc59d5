//! Entry points for the cargo-fuzz targets `http1_request`, `http1_parse`,
//! `http1_chunked` and `http1_response` (in `fuzz/`) and the corpus replay test: arbitrary
//! bytes into the HTTP/1.1 adapter's session state machine on the loop's real dispatch
//! (a [`wireloop::testing::Driver`] kept between inputs), into the request-head parser
//! alone, into the chunked decoder alone, and into the client's response reader.

use std::cell::RefCell;

use wireloop::testing::Driver;
use wireloop::{Action, Conn};

use super::parse::parse_request_general;
use super::{
    header_slots, parse_request, App, BodyLength, BodyMode, ChunkedDecoder, ChunkedError, Config,
    Decoded, Http1, ParseError, Request, Response, UpgradeEvent,
};
use crate::kept::{finish, reuse, Drivers};

/// The application the fuzz targets and tests drive: `/echo` streams the body back (one
/// chunk per byte, so the output does not depend on how the input was cut), `/collect`
/// returns the collected body, `/reject` answers 403 before reading a streamed body,
/// `/close` closes after answering, `/upgrade` switches to a raw echo, anything else
/// answers `Hello World!`.
#[derive(Debug, Default)]
pub(crate) struct TestApp {
    /// Requests answered.
    pub(crate) requests: usize,
    /// Most bytes queued on a connection seen while streaming.
    pub(crate) max_output: usize,
}

impl App for TestApp {
    type State = ();

    fn body_mode(&mut self, req: &Request<'_>, _: &mut ()) -> BodyMode {
        match req.path() {
            "/echo" | "/reject" => BodyMode::Stream,
            _ => BodyMode::Collect,
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
        self.requests += 1;
        match req.path() {
            "/echo" => match req.content_length() {
                Some(n) => res.start_sized(n),
                None => res.start_chunked(),
            },
            "/reject" => res.status(403).body(b"no"),
            "/collect" => res.body(req.body()),
            "/close" => res.close().body(b"bye"),
            "/upgrade" if req.wants_upgrade() => {
                res.status(101).header("Upgrade", "echo");
                if !res.upgrade() {
                    res.body(b"");
                }
            }
            _ => res
                .header("Content-Type", "text/plain")
                .body(b"Hello World!\r\n"),
        }
    }

    fn body(&mut self, data: &[u8], res: &mut Response<'_>, _: &mut ()) {
        for b in data.chunks(1) {
            res.write(b);
        }
        self.max_output = self.max_output.max(res.output_len());
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut ()) {
        res.finish();
    }

    fn upgraded<T>(&mut self, conn: &mut Conn<'_, T>, event: UpgradeEvent, _: &mut ()) -> Action {
        match event {
            UpgradeEvent::Data => {
                let (input, mut out) = conn.split();
                out.write(input);
                let n = input.len();
                conn.consume(n);
                Action::None
            }
            UpgradeEvent::Eof => Action::Close,
            _ => Action::None,
        }
    }
}

/// Small limits, so short fuzz inputs reach every limit.
pub(crate) fn small_config() -> Config {
    Config {
        max_head: 600,
        max_headers: 8,
        max_target: 200,
        max_body: 300,
        inline_body: 150,
        ..Config::default()
    }
}

/// A driver around the test application with `cfg` and a fixed `Date`.
pub(crate) fn driver(cfg: Config) -> Driver<Http1<TestApp>> {
    let mut h = Http1::with_config(TestApp::default(), cfg);
    h.freeze_date(784_111_777);
    Driver::new(h)
}

/// Feeds `pieces` to a fresh connection, then end-of-file; returns everything written.
#[cfg(test)]
pub(crate) fn run<'a>(cfg: Config, pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    serve(&mut driver(cfg), pieces)
}

/// Feeds `pieces` to a new connection of `d`, then end-of-file (and a reset if it is
/// still open); returns everything written.
fn serve<'a>(
    d: &mut Driver<Http1<TestApp>>,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let c = d.open(0);
    let mut out = Vec::new();
    for p in pieces {
        if !d.feed(c, p) {
            break;
        }
        out.extend(d.take_output(c));
    }
    out.extend(finish(d, c));
    out
}

/// [`serve`] on a driver kept between inputs (one per configuration index, see
/// `crate::kept::reuse`): the same answers, without making a loop per input.
fn run_kept<'a>(index: usize, cfg: &Config, pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    thread_local!(static KEPT: Drivers<Http1<TestApp>> = const { RefCell::new(Vec::new()) });
    reuse(&KEPT, index, || driver(cfg.clone()), |d| serve(d, pieces))
}

/// The part of `out` before the first error response the adapter wrote itself (its
/// errors, and only they, carry `Content-Type: text/plain` right before
/// `Connection: close`), and whether there was one.
pub(crate) fn before_error(out: &[u8]) -> (&[u8], bool) {
    const MARK: &[u8] = b"\r\nContent-Type: text/plain\r\nConnection: close\r\n";
    match out.windows(MARK.len()).position(|w| w == MARK) {
        Some(i) => {
            let start = out[..i]
                .windows(9)
                .rposition(|w| w == b"HTTP/1.1 ")
                .unwrap_or(0);
            (&out[..start], true)
        }
        None => (out, false),
    }
}

/// Most reads [`request`] cuts an input into.
const MAX_READS: usize = 64;

/// Arbitrary bytes (the first one picks how the rest is cut into reads) into the HTTP/1.1
/// adapter, once in one read and once cut up: must never panic, must write only HTTP
/// responses, and must answer the same either way — identical output, except that the
/// status of a final error response may differ when the error is found on a partial head.
pub fn request(data: &[u8]) {
    let stream = data.get(1..).unwrap_or_default();
    // At most `MAX_READS` reads: a partial head is parsed again from its start on every
    // read (as httparse works), so byte-sized reads of a long input cost its square.
    let step =
        (1 + data.first().map_or(0, |b| *b as usize % 64)).max(stream.len().div_ceil(MAX_READS));
    for (index, cfg) in [small_config(), Config::default()].iter().enumerate() {
        let whole = run_kept(index, cfg, [stream]);
        let cut = run_kept(index, cfg, stream.chunks(step));
        if !whole.is_empty() {
            assert!(whole.starts_with(b"HTTP/1.1 "), "output must be a response");
        }
        if whole != cut {
            let (a, ea) = before_error(&whole);
            let (b, eb) = before_error(&cut);
            assert_eq!(
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b),
                "answers differ with the input cut into {step}-byte reads"
            );
            assert_eq!(ea, eb, "one run ended in an error, the other did not");
        }
    }
}

/// What a parsed request says, for comparing two parses of the same head.
fn facts<'a>(req: &Request<'a>) -> (&'a str, &'a str, u8, BodyLength, [bool; 3]) {
    (
        req.method(),
        req.target(),
        req.version_minor(),
        req.body_length(),
        [
            req.keep_alive(),
            req.expects_continue(),
            req.wants_upgrade(),
        ],
    )
}

/// Arbitrary bytes into the request-head parser alone (the first byte picks the small or
/// the default limits, and where to cut a complete head): must never panic; an error is
/// one of the statuses the adapter answers; a request respects every limit, is framed one
/// way only, parses the same from its head alone, and any strict prefix of its head is
/// incomplete — never an error, or a request that arrived in pieces would be refused.
pub fn parse(data: &[u8]) {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let cfg = if ctl & 1 == 0 {
        small_config()
    } else {
        Config::default()
    };
    let mut slots = header_slots();
    let parsed = parse_request(input, &mut slots, &cfg);
    // The one-pass strict parser answers exactly as the general one whenever it answers.
    let mut general = header_slots();
    match (&parsed, parse_request_general(input, &mut general, &cfg)) {
        (Ok(Some((n, r))), Ok(Some((m, g)))) => {
            assert_eq!(n, &m, "strict and general head lengths differ");
            assert_eq!(facts(r), facts(&g), "strict and general parses differ");
            assert_eq!(r.authority(), g.authority());
            assert_eq!(r.header_count(), g.header_count());
            assert!(
                r.headers().eq(g.headers()),
                "strict and general fields differ"
            );
            for (name, value) in g.headers() {
                assert_eq!(r.header(name), g.header(name), "{name}: {value:?}");
            }
        }
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, &b),
        (a, b) => panic!(
            "strict {:?} vs general {:?}",
            a.as_ref().map(|o| o.as_ref().map(|(n, _)| *n)),
            b.map(|o| o.map(|(n, _)| n))
        ),
    }
    let (n, req) = match parsed {
        Ok(Some(r)) => r,
        Ok(None) => {
            assert!(
                input.len() < cfg.max_head.max(16),
                "no verdict at the limit"
            );
            return;
        }
        Err(e) => {
            let status = e.status();
            assert!(
                matches!(status, 400 | 414 | 417 | 431 | 501 | 505),
                "status {status}"
            );
            if let ParseError::BadRequest(why) | ParseError::NotImplemented(why) = e {
                assert!(!why.is_empty());
            }
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let head = &input[..n];
    assert!(
        n <= cfg.max_head.max(16),
        "head of {n} bytes over the limit"
    );
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end in CRLF CRLF"
    );
    assert!(req.target().len() <= cfg.max_target);
    assert!(req.header_count() <= cfg.max_headers);
    assert!(matches!(req.version_minor(), 0 | 1));
    assert!(req.version_minor() == 0 || req.header("host").is_some());
    assert!(!(req.content_length().is_some() && req.is_chunked()));
    assert!(req.version_minor() == 1 || !req.is_chunked());
    assert!(req.target().starts_with(req.path()));
    if let Some(q) = req.query() {
        assert!(req.target().ends_with(q));
    }
    assert_eq!(req.headers().count(), req.header_count());
    assert!(req.body().is_empty() && !req.is_streaming());
    assert_eq!(
        req.has_body(),
        !matches!(req.body_length(), BodyLength::None | BodyLength::Length(0))
    );
    let mut again = header_slots();
    match parse_request(head, &mut again, &cfg) {
        Ok(Some((m, r))) => {
            assert_eq!(m, n, "the head alone parses to another length");
            assert_eq!(facts(&r), facts(&req), "the head alone parses differently");
            assert!(r.headers().eq(req.headers()));
        }
        other => panic!("the head alone does not parse: {other:?}"),
    }
    for cut in [n - 1, usize::from(ctl >> 1) % n] {
        let mut part = header_slots();
        match parse_request(&head[..cut], &mut part, &cfg) {
            Ok(None) => {}
            other => panic!("{cut} of {n} head bytes: {other:?}, not incomplete"),
        }
    }
}

/// Decodes `data` completely, one read or `step`-byte reads: (body, bytes used, result).
fn decode(data: &[u8], step: usize) -> (Vec<u8>, usize, Result<bool, ChunkedError>) {
    let mut dec = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut used = 0;
    for part in data.chunks(step.max(1)) {
        let mut pos = 0;
        while pos < part.len() {
            match dec.decode(&part[pos..]) {
                Ok((n, ev)) => {
                    pos += n;
                    used += n;
                    match ev {
                        Decoded::Data(d) => body.extend_from_slice(d),
                        Decoded::Done => return (body, used, Ok(true)),
                        Decoded::NeedMore => {}
                    }
                }
                Err(e) => return (body, used, Err(e)),
            }
        }
    }
    (body, used, Ok(false))
}

/// Arbitrary bytes into the chunked decoder alone, in one read and cut up (the first byte
/// picks the cut): same body, same bytes used, same verdict; a decoded body re-encoded
/// decodes to itself.
pub fn chunked(data: &[u8]) {
    let step = 1 + data.first().map_or(0, |b| *b as usize % 16);
    let stream = data.get(1..).unwrap_or_default();
    let (body, used, verdict) = decode(stream, stream.len());
    let (body2, used2, verdict2) = decode(stream, step);
    assert_eq!(verdict, verdict2, "verdict depends on the cut");
    assert_eq!(body, body2, "body depends on the cut");
    if verdict.is_ok() {
        assert_eq!(used, used2);
    }
    assert!(used <= stream.len());
    if verdict == Ok(true) {
        let mut enc = Vec::new();
        for c in body.chunks(7) {
            enc.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            enc.extend_from_slice(c);
            enc.extend_from_slice(b"\r\n");
        }
        enc.extend_from_slice(b"0\r\n\r\n");
        let (again, n, v) = decode(&enc, enc.len());
        assert_eq!(v, Ok(true));
        assert_eq!(n, enc.len());
        assert_eq!(again, body);
    }
}

/// The one-pass strict response parser answers exactly as httparse and the checks after
/// it whenever it answers.
pub(crate) fn response_strict_agrees(input: &[u8], cfg: &Config, head: bool) {
    use super::client::{parse_general, parse_strict};
    let max_head = cfg.max_head.max(16);
    let window = &input[..input.len().min(max_head)];
    let mut slots = header_slots();
    let n_slots = cfg.max_headers.max(1).min(slots.len());
    let Some((n, r)) = parse_strict(window, n_slots, head) else {
        return;
    };
    let general = parse_general(window, max_head, &mut slots[..n_slots], head);
    let Ok(Some((m, g))) = general else {
        panic!("strict took a head the general parser gives {general:?}");
    };
    assert_eq!(n, m, "strict and general head lengths differ");
    assert_eq!(
        (
            r.status(),
            r.reason(),
            r.version_minor(),
            r.body(),
            r.keep_alive()
        ),
        (
            g.status(),
            g.reason(),
            g.version_minor(),
            g.body(),
            g.keep_alive()
        ),
        "strict and general parses differ"
    );
    assert_eq!(r.header_count(), g.header_count());
    assert!(
        r.headers().eq(g.headers()),
        "strict and general fields differ"
    );
    for (name, value) in g.headers() {
        assert_eq!(r.header(name), g.header(name), "{name}: {value:?}");
    }
}

/// Arbitrary bytes as a server's answer to the response reader: the first byte picks
/// whether the request was `HEAD` and how the rest is cut into reads; the reader must
/// never panic, loop or hand out more body than it was given, and must agree with itself
/// whatever the cut.
pub fn response(data: &[u8]) {
    use super::{header_slots, ClientEvent, ResponseReader};
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let head = ctl & 1 == 1;
    let step = usize::from(ctl >> 1).max(1);
    let cfg = Config {
        max_head: 512,
        max_headers: 8,
        ..Config::default()
    };
    response_strict_agrees(input, &cfg, head);
    response_strict_agrees(input, &Config::default(), head);
    let run = |step: usize| -> (Vec<u8>, Option<bool>) {
        let mut r = ResponseReader::new(head);
        let mut buf: Vec<u8> = Vec::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            let n = step.min(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
            let mut guard = 0;
            loop {
                guard += 1;
                assert!(guard < 1_000_000, "reader does not progress");
                let mut slots = header_slots();
                let (used, ev) = match r.read(&buf, &mut slots, &cfg) {
                    Ok(x) => x,
                    Err(_) => return (body, Some(false)),
                };
                assert!(used <= buf.len());
                let stop = match ev {
                    ClientEvent::Data(d) => {
                        assert!(!d.is_empty());
                        body.extend_from_slice(d);
                        false
                    }
                    ClientEvent::Interim(h) => {
                        assert!(h.is_interim());
                        false
                    }
                    ClientEvent::Head(_) => r.is_upgraded(),
                    ClientEvent::End | ClientEvent::NeedMore => true,
                };
                buf.drain(..used);
                if stop {
                    break;
                }
            }
            if r.is_done() || r.is_upgraded() {
                return (body, Some(true));
            }
            if fed == input.len() {
                return (body, Some(r.eof().is_ok()));
            }
        }
    };
    let (body, ok) = run(step);
    assert!(body.len() <= input.len());
    if ok == Some(true) {
        let (body1, ok1) = run(input.len().max(1));
        assert_eq!(ok1, Some(true));
        assert_eq!(body1, body);
    }
}
