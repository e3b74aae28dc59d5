//! WebSocket server conformance: the cases of the Autobahn|Testsuite fuzzing client
//! (sections 1-7, 9 and 10), replayed by a raw client over a std `TcpStream` against an
//! echo [`WsHandler`] served on 127.0.0.1 port 0, each with the outcome RFC 6455 asks
//! for: the echo (or pong) expected, or the close code, followed by the server closing
//! the TCP connection.
//!
//! A case is the frames the client sends, how they are cut into writes (all at once,
//! frame by frame, byte by byte, or in chops of N bytes), and the frames expected back.
//! A case that expects no close ends with the client's close 1000, which must be echoed.
//! Reading runs on its own thread with a bounded timeout, so a server that stalls fails
//! the case instead of hanging the test. Pass counts per section are printed at the end.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use wireloop::Server;
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::ws::{Message, WebSocket, Ws, WsHandler};

use common::TestServer;

// ----- the server under test ------------------------------------------------------------

struct Echo;

impl WsHandler for Echo {
    type State = ();
    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        ws.send(msg);
    }
}

fn not_found(_: &Request<'_>, res: &mut Response<'_>) {
    res.status(404).body(b"no such page\n");
}

fn start() -> TestServer {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .expect("listen")
        .max_input(32 << 20)
        .build()
        .expect("bind");
    TestServer::start(server, |_| Http1::server(WebSocket::new(not_found, Echo)))
}

// ----- the raw client ------------------------------------------------------------------

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Longest wait for one read.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects and performs the opening handshake.
fn connect(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
    .expect("write handshake");
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
        "{head}"
    );
    s
}

/// Reads a response head byte by byte (nothing after it is consumed).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            other => panic!(
                "reading the response head: {other:?} after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
        assert!(head.len() < 16 * 1024, "head too long");
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// XOR with the key, eight bytes at a time (the test client's own implementation).
fn mask(data: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// A masked frame with the given bits.
fn frame_rsv(fin: bool, rsv: u8, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 14);
    v.push((fin as u8) << 7 | (rsv & 7) << 4 | (op & 0xF));
    let n = payload.len();
    if n < 126 {
        v.push(0x80 | n as u8);
    } else if n <= 0xFFFF {
        v.push(0x80 | 126);
        v.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        v.push(0x80 | 127);
        v.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    v.extend_from_slice(&key);
    let at = v.len();
    v.extend_from_slice(payload);
    mask(&mut v[at..], key);
    v
}

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame_rsv(fin, 0, op, payload)
}
fn text(p: impl AsRef<[u8]>) -> Vec<u8> {
    frame(true, 1, p.as_ref())
}
fn binary(p: impl AsRef<[u8]>) -> Vec<u8> {
    frame(true, 2, p.as_ref())
}
fn ping(p: impl AsRef<[u8]>) -> Vec<u8> {
    frame(true, 9, p.as_ref())
}
fn pong(p: impl AsRef<[u8]>) -> Vec<u8> {
    frame(true, 10, p.as_ref())
}
fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    frame(true, 8, &[&code.to_be_bytes()[..], reason].concat())
}
/// A message cut into frames of `size` bytes (the first with `op`, then continuations).
fn fragmented(op: u8, payload: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(size).collect()
    };
    for (i, p) in pieces.iter().enumerate() {
        out.extend(frame(i + 1 == pieces.len(), if i == 0 { op } else { 0 }, p));
    }
    out
}

/// A frame the server sent.
#[derive(Clone, PartialEq, Eq)]
enum Exp {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame with this code (1005: with no payload), then the TCP close.
    Close(u16),
    /// Something the server must not send.
    Other(u8, usize),
}

impl std::fmt::Debug for Exp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |p: &[u8]| {
            if p.len() <= 40 {
                format!("{:?}", String::from_utf8_lossy(p))
            } else {
                format!(
                    "<{} bytes, fnv {:x}>",
                    p.len(),
                    common::fnv1a(common::FNV_START, p)
                )
            }
        };
        match self {
            Exp::Text(p) => write!(f, "Text({})", short(p)),
            Exp::Binary(p) => write!(f, "Binary({})", short(p)),
            Exp::Pong(p) => write!(f, "Pong({})", short(p)),
            Exp::Close(c) => write!(f, "Close({c})"),
            Exp::Other(op, n) => write!(f, "Other(op {op}, {n} bytes)"),
        }
    }
}

/// How the client's bytes are cut into writes.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Everything in one write.
    Whole,
    /// One write per frame.
    Frames,
    /// One write per byte.
    Bytes,
    /// Writes of this many bytes.
    Chop(usize),
}

struct Case {
    id: String,
    mode: Mode,
    send: Vec<Vec<u8>>,
    expect: Vec<Exp>,
}

/// Reads frames until the server closes the connection: what arrived, and how the
/// reading ended (`Ok` on a clean end-of-file after a close frame).
fn read_frames(s: TcpStream) -> (Vec<Exp>, Result<(), String>) {
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut got = Vec::new();
    loop {
        let mut h = [0u8; 2];
        match r.read(&mut h[..1]) {
            Ok(0) => {
                let closed = matches!(got.last(), Some(Exp::Close(_)));
                return (
                    got,
                    if closed {
                        Ok(())
                    } else {
                        Err("EOF without a close frame".into())
                    },
                );
            }
            Ok(_) => {}
            Err(e) => return (got, Err(format!("read: {e}"))),
        }
        if let Err(e) = r.read_exact(&mut h[1..]) {
            return (got, Err(format!("read header: {e}")));
        }
        let mut len = (h[1] & 0x7F) as u64;
        if len == 126 {
            let mut b = [0u8; 2];
            if r.read_exact(&mut b).is_err() {
                return (got, Err("short header".into()));
            }
            len = u16::from_be_bytes(b) as u64;
        } else if len == 127 {
            let mut b = [0u8; 8];
            if r.read_exact(&mut b).is_err() {
                return (got, Err("short header".into()));
            }
            len = u64::from_be_bytes(b);
        }
        if h[1] & 0x80 != 0 || h[0] & 0x70 != 0 {
            return (got, Err("server frame masked or with reserved bits".into()));
        }
        if len > 64 << 20 {
            return (got, Err(format!("absurd length {len}")));
        }
        let mut p = vec![0u8; len as usize];
        if let Err(e) = r.read_exact(&mut p) {
            return (got, Err(format!("read payload: {e}")));
        }
        let fin = h[0] & 0x80 != 0;
        let op = h[0] & 0x0F;
        if !fin {
            // The echo server sends whole messages in one frame.
            got.push(Exp::Other(op, p.len()));
            continue;
        }
        got.push(match op {
            1 => Exp::Text(p),
            2 => Exp::Binary(p),
            10 => Exp::Pong(p),
            8 if p.is_empty() => Exp::Close(1005),
            8 if p.len() >= 2 => Exp::Close(u16::from_be_bytes([p[0], p[1]])),
            _ => Exp::Other(op, p.len()),
        });
    }
}

/// Runs one case on a fresh connection: `Ok` or what differed.
fn run(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let mut s = connect(addr);
    let reader_stream = s.try_clone().expect("clone stream");
    let reader = std::thread::spawn(move || read_frames(reader_stream));
    let mut expect = case.expect.clone();
    let mut bytes: Vec<u8> = case.send.concat();
    let mut frames = case.send.clone();
    if !matches!(expect.last(), Some(Exp::Close(_))) {
        let c = close(1000, b"");
        bytes.extend_from_slice(&c);
        frames.push(c);
        expect.push(Exp::Close(1000));
    }
    // Write errors are expected once the server fails the connection.
    let _ = match case.mode {
        Mode::Whole => s.write_all(&bytes),
        Mode::Frames => frames.iter().try_for_each(|f| s.write_all(f)),
        Mode::Bytes => bytes.chunks(1).try_for_each(|b| s.write_all(b)),
        Mode::Chop(n) => bytes.chunks(n).try_for_each(|b| s.write_all(b)),
    };
    let (got, end) = reader.join().map_err(|_| "reader panicked".to_string())?;
    let _ = s.shutdown(Shutdown::Both);
    if got != expect {
        return Err(format!("expected {expect:?}, got {got:?} ({end:?})"));
    }
    end
}

// ----- the cases ----------------------------------------------------------------------------

/// `cases!(list; "id" mode => [frames sent] => [frames expected]; ...)`
macro_rules! cases {
    ($v:ident; $($id:literal $mode:expr => [$($send:expr),* $(,)?] => [$($exp:expr),* $(,)?];)*) => {$(
        $v.push(Case {
            id: $id.to_string(),
            mode: $mode,
            send: vec![$($send),*],
            expect: vec![$($exp),*],
        });
    )*};
}

use Exp::{Binary as B, Close as C, Pong as P, Text as T};
use Mode::{Bytes, Chop, Frames, Whole};

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn section1(cases: &mut Vec<Case>) {
    for (i, len) in [0usize, 125, 126, 127, 128, 65535, 65536]
        .into_iter()
        .enumerate()
    {
        let t = vec![b'*'; len];
        let b = vec![0xFEu8; len];
        cases.push(Case {
            id: format!("1.1.{}", i + 1),
            mode: Whole,
            send: vec![text(&t)],
            expect: vec![T(t.clone())],
        });
        cases.push(Case {
            id: format!("1.2.{}", i + 1),
            mode: Whole,
            send: vec![binary(&b)],
            expect: vec![B(b.clone())],
        });
        // The same, cut into bytes (small) or into odd chops (large).
        let mode = if len <= 128 { Bytes } else { Chop(997) };
        cases.push(Case {
            id: format!("1.1.{}-split", i + 1),
            mode,
            send: vec![text(&t)],
            expect: vec![T(t)],
        });
        cases.push(Case {
            id: format!("1.2.{}-split", i + 1),
            mode,
            send: vec![binary(&b)],
            expect: vec![B(b)],
        });
    }
}

fn section2(cases: &mut Vec<Case>) {
    let p125 = vec![0xFEu8; 125];
    cases! { cases;
        "2.1" Whole => [ping(b"")] => [P(vec![])];
        "2.2" Whole => [ping(b"Hello, world!")] => [P(v("Hello, world!"))];
        "2.3" Whole => [ping([0u8, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff])] => [P(vec![0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff])];
        "2.4" Whole => [ping(&p125)] => [P(p125.clone())];
        "2.5" Whole => [ping([0xFEu8; 126])] => [C(1002)];
        "2.6" Bytes => [ping(&p125)] => [P(p125.clone())];
        "2.7" Whole => [pong(b"")] => [];
        "2.8" Whole => [pong(b"unsolicited pong payload")] => [];
        "2.9" Whole => [pong(b"unsolicited pong payload"), ping(b"ping payload")] => [P(v("ping payload"))];
    }
    let pings: Vec<Vec<u8>> = (0..10).map(|i| ping(format!("payload-{i}"))).collect();
    let pongs: Vec<Exp> = (0..10).map(|i| P(v(&format!("payload-{i}")))).collect();
    cases.push(Case {
        id: "2.10".into(),
        mode: Whole,
        send: pings.clone(),
        expect: pongs.clone(),
    });
    cases.push(Case {
        id: "2.11".into(),
        mode: Bytes,
        send: pings,
        expect: pongs,
    });
}

fn section3(cases: &mut Vec<Case>) {
    cases! { cases;
        "3.1" Whole => [frame_rsv(true, 1, 1, b"Hello, world!")] => [C(1002)];
        "3.2" Whole => [text(b"small"), frame_rsv(true, 2, 1, b"small"), ping(b"")] => [T(v("small")), C(1002)];
        "3.3" Frames => [text(b"small"), frame_rsv(true, 3, 1, b"small"), ping(b"")] => [T(v("small")), C(1002)];
        "3.4" Bytes => [text(b"small"), frame_rsv(true, 4, 1, b"small"), ping(b"")] => [T(v("small")), C(1002)];
        "3.5" Whole => [frame_rsv(true, 5, 2, &[0, 0xff, 0xfe])] => [C(1002)];
        "3.6" Whole => [frame_rsv(true, 6, 9, b"ping")] => [C(1002)];
        "3.7" Whole => [frame_rsv(true, 7, 8, &[3, 232])] => [C(1002)];
    }
}

fn section4(cases: &mut Vec<Case>) {
    for (base, ops) in [("4.1", [3u8, 4, 5, 6, 7]), ("4.2", [11, 12, 13, 14, 15])] {
        let [a, b, c, d, e] = ops;
        cases.push(Case {
            id: format!("{base}.1"),
            mode: Whole,
            send: vec![frame(true, a, b"")],
            expect: vec![C(1002)],
        });
        cases.push(Case {
            id: format!("{base}.2"),
            mode: Whole,
            send: vec![frame(true, b, b"reserved opcode payload")],
            expect: vec![C(1002)],
        });
        cases.push(Case {
            id: format!("{base}.3"),
            mode: Frames,
            send: vec![text(b"small"), frame(true, c, b""), ping(b"")],
            expect: vec![T(v("small")), C(1002)],
        });
        cases.push(Case {
            id: format!("{base}.4"),
            mode: Frames,
            send: vec![
                text(b"small"),
                frame(true, d, b"reserved opcode payload"),
                ping(b""),
            ],
            expect: vec![T(v("small")), C(1002)],
        });
        cases.push(Case {
            id: format!("{base}.5"),
            mode: Bytes,
            send: vec![
                text(b"small"),
                frame(true, e, b"reserved opcode payload"),
                ping(b""),
            ],
            expect: vec![T(v("small")), C(1002)],
        });
    }
}

fn section5(cases: &mut Vec<Case>) {
    let f = |fin, op, p: &str| frame(fin, op, p.as_bytes());
    cases! { cases;
        "5.1" Whole => [f(false, 9, "frag1"), f(true, 0, "frag2")] => [C(1002)];
        "5.2" Whole => [f(false, 10, "frag1"), f(true, 0, "frag2")] => [C(1002)];
        "5.3" Whole => [f(false, 1, "frag1"), f(true, 0, "frag2")] => [T(v("frag1frag2"))];
        "5.4" Bytes => [f(false, 1, "frag1"), f(true, 0, "frag2")] => [T(v("frag1frag2"))];
        "5.5" Frames => [f(false, 1, "frag1"), f(true, 0, "frag2")] => [T(v("frag1frag2"))];
        "5.6" Whole => [f(false, 1, "frag1"), ping("ping payload"), f(true, 0, "frag2")] => [P(v("ping payload")), T(v("frag1frag2"))];
        "5.7" Bytes => [f(false, 1, "frag1"), ping("ping payload"), f(true, 0, "frag2")] => [P(v("ping payload")), T(v("frag1frag2"))];
        "5.8" Frames => [f(false, 1, "frag1"), ping("ping payload"), f(true, 0, "frag2")] => [P(v("ping payload")), T(v("frag1frag2"))];
        "5.9" Whole => [f(true, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.10" Bytes => [f(true, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.11" Frames => [f(true, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.12" Whole => [f(false, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.13" Bytes => [f(false, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.14" Frames => [f(false, 0, "non-continuation payload"), text("Hello, world!")] => [C(1002)];
        "5.15" Whole => [f(false, 1, "fragment1"), f(true, 0, "fragment2"), f(false, 0, "fragment3"), f(true, 1, "fragment4")] => [T(v("fragment1fragment2")), C(1002)];
        "5.16" Whole => [f(false, 0, "fragment1"), f(false, 1, "fragment2"), f(true, 0, "fragment3")] => [C(1002)];
        "5.17" Whole => [f(true, 0, "fragment1"), f(false, 1, "fragment2"), f(true, 0, "fragment3")] => [C(1002)];
        "5.18" Whole => [f(false, 1, "fragment1"), f(true, 1, "fragment2")] => [C(1002)];
        "5.19" Frames => [f(false, 1, "fragment1"), f(false, 0, "fragment2"), ping("pongme 1!"), f(false, 0, "fragment3"), f(false, 0, "fragment4"), ping("pongme 2!"), f(true, 0, "fragment5")]
            => [P(v("pongme 1!")), P(v("pongme 2!")), T(v("fragment1fragment2fragment3fragment4fragment5"))];
        "5.20" Bytes => [f(false, 1, "fragment1"), f(false, 0, "fragment2"), ping("pongme 1!"), f(false, 0, "fragment3"), f(false, 0, "fragment4"), ping("pongme 2!"), f(true, 0, "fragment5")]
            => [P(v("pongme 1!")), P(v("pongme 2!")), T(v("fragment1fragment2fragment3fragment4fragment5"))];
        "5.21" Whole => [f(false, 1, ""), f(false, 0, ""), f(true, 0, "")] => [T(vec![])];
        "5.22" Whole => [f(false, 2, "a"), ping(""), f(false, 0, ""), pong("x"), f(true, 0, "b")] => [P(vec![]), B(v("ab"))];
    }
}

/// UTF-8 sequences of Autobahn section 6: (valid?, bytes).
fn utf8_samples() -> Vec<(bool, Vec<u8>)> {
    let mut s: Vec<(bool, Vec<u8>)> = vec![
        (true, v("")),
        (true, v("\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}")),
        (
            true,
            v("Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!"),
        ),
        (true, vec![0x00]),
        (true, vec![0xC2, 0x80]),
        (true, vec![0xE0, 0xA0, 0x80]),
        (true, vec![0xF0, 0x90, 0x80, 0x80]),
        (true, vec![0x7F]),
        (true, vec![0xDF, 0xBF]),
        (true, vec![0xEF, 0xBF, 0xBF]),
        (true, vec![0xF4, 0x8F, 0xBF, 0xBF]),
        (true, vec![0xED, 0x9F, 0xBF]),
        (true, vec![0xEE, 0x80, 0x80]),
        (true, vec![0xEF, 0xBF, 0xBD]),
        (true, vec![0xEF, 0xBF, 0xBE]),
        // 6.3: κόσμε with a surrogate inside
        (
            false,
            vec![
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
                0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
            ],
        ),
        // 6.5-6.8: over U+10FFFF, 5- and 6-byte forms
        (false, vec![0xF4, 0x90, 0x80, 0x80]),
        (false, vec![0xF7, 0xBF, 0xBF, 0xBF]),
        (false, vec![0xF8, 0x88, 0x80, 0x80, 0x80]),
        (false, vec![0xFC, 0x84, 0x80, 0x80, 0x80, 0x80]),
        (false, vec![0xFB, 0xBF, 0xBF, 0xBF, 0xBF]),
        (false, vec![0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF]),
        // 6.9-6.10: lone continuation bytes
        (false, vec![0x80]),
        (false, vec![0xBF]),
        (false, vec![0x80, 0xBF]),
        (false, vec![0x80, 0xBF, 0x80, 0xBF]),
        // 6.12: all continuation bytes
        (false, (0x80..=0xBFu8).collect()),
        // 6.13: lonely start characters followed by spaces
        (false, vec![0xC0, 0x20, 0xC1, 0x20]),
        (false, vec![0xE0, 0x20]),
        (false, vec![0xF0, 0x20]),
        // 6.14: sequences with the last byte missing
        (false, vec![0xC0]),
        (false, vec![0xE0, 0x80]),
        (false, vec![0xF0, 0x80, 0x80]),
        (false, vec![0xDF]),
        (false, vec![0xEF, 0xBF]),
        (false, vec![0xF7, 0xBF, 0xBF]),
        // 6.16: impossible bytes
        (false, vec![0xFE]),
        (false, vec![0xFF]),
        (false, vec![0xFE, 0xFE, 0xFF, 0xFF]),
        // 6.17: overlong ASCII
        (false, vec![0xC0, 0xAF]),
        (false, vec![0xE0, 0x80, 0xAF]),
        (false, vec![0xF0, 0x80, 0x80, 0xAF]),
        // 6.18: maximum overlong
        (false, vec![0xC1, 0xBF]),
        (false, vec![0xE0, 0x9F, 0xBF]),
        (false, vec![0xF0, 0x8F, 0xBF, 0xBF]),
        // 6.19: overlong NUL
        (false, vec![0xC0, 0x80]),
        (false, vec![0xE0, 0x80, 0x80]),
        // 6.20: single surrogates
        (false, vec![0xED, 0xA0, 0x80]),
        (false, vec![0xED, 0xAD, 0xBF]),
        (false, vec![0xED, 0xAE, 0x80]),
        (false, vec![0xED, 0xAF, 0xBF]),
        (false, vec![0xED, 0xB0, 0x80]),
        (false, vec![0xED, 0xBE, 0x80]),
        (false, vec![0xED, 0xBF, 0xBF]),
        // 6.21: paired surrogates
        (false, vec![0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80]),
        (false, vec![0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF]),
    ];
    // 6.22: non-characters are valid UTF-8
    for nc in [
        "\u{FFFE}",
        "\u{FFFF}",
        "\u{1FFFE}",
        "\u{10FFFF}",
        "\u{FDD0}",
        "\u{FDEF}",
    ] {
        s.push((true, v(nc)));
    }
    s
}

fn section6(cases: &mut Vec<Case>) {
    for (i, (ok, bytes)) in utf8_samples().into_iter().enumerate() {
        let outcome = |p: &[u8]| {
            if ok {
                vec![T(p.to_vec())]
            } else {
                vec![C(1007)]
            }
        };
        cases.push(Case {
            id: format!("6.{i}.1"),
            mode: Whole,
            send: vec![text(&bytes)],
            expect: outcome(&bytes),
        });
        // One frame per byte (frames end inside characters), all in one write.
        cases.push(Case {
            id: format!("6.{i}.2"),
            mode: Whole,
            send: vec![fragmented(1, &bytes, 1)],
            expect: outcome(&bytes),
        });
        // One TCP write per byte.
        cases.push(Case {
            id: format!("6.{i}.3"),
            mode: Bytes,
            send: vec![text(&bytes)],
            expect: outcome(&bytes),
        });
    }
    // 6.2: a valid message split into two fragments at every byte.
    let hello = v("Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!");
    for cut in 0..=hello.len() {
        cases.push(Case {
            id: format!("6.2.cut{cut}"),
            mode: Whole,
            send: vec![
                frame(false, 1, &hello[..cut]),
                frame(true, 0, &hello[cut..]),
            ],
            expect: vec![T(hello.clone())],
        });
    }
    // 6.4: fail fast. Only the first fragment is sent (the rest never comes): the server
    // must close on the invalid bytes, not wait for the end of the message.
    let kosme = "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes();
    for (i, bad) in [
        &[0xF4u8, 0x90, 0x80, 0x80][..],
        &[0xF4, 0x90],
        &[0xED, 0xA0],
        &[0xFF],
    ]
    .iter()
    .enumerate()
    {
        let first = [kosme, bad].concat();
        cases.push(Case {
            id: format!("6.4.{}", i + 1),
            mode: Frames,
            send: vec![frame(false, 1, &first)],
            expect: vec![C(1007)],
        });
        // Same with the invalid bytes in a continuation frame of their own.
        cases.push(Case {
            id: format!("6.4.{}-cont", i + 1),
            mode: Frames,
            send: vec![frame(false, 1, kosme), frame(false, 0, bad)],
            expect: vec![C(1007)],
        });
        // And inside a single frame whose end is never sent.
        let mut partial = frame(true, 1, &[first.clone(), vec![b'x'; 100]].concat());
        partial.truncate(partial.len() - 50);
        cases.push(Case {
            id: format!("6.4.{}-frame", i + 1),
            mode: Whole,
            send: vec![partial],
            expect: vec![C(1007)],
        });
    }
}

fn section7(cases: &mut Vec<Case>) {
    cases! { cases;
        "7.1.1" Whole => [text("Hello World!"), close(1000, b"")] => [T(v("Hello World!")), C(1000)];
        "7.1.2" Whole => [close(1000, b""), close(1000, b"")] => [C(1000)];
        "7.1.3" Whole => [close(1000, b""), ping("")] => [C(1000)];
        "7.1.4" Whole => [close(1000, b""), text("after close")] => [C(1000)];
        "7.1.5" Whole => [frame(false, 1, b"fragment1"), close(1000, b""), frame(true, 0, b"fragment2")] => [C(1000)];
        "7.1.6" Frames => [text(vec![b'x'; 256 * 1024]), text("Hello World!"), close(1000, b""), ping("")] => [T(vec![b'x'; 256 * 1024]), T(v("Hello World!")), C(1000)];
        "7.3.1" Whole => [frame(true, 8, b"")] => [C(1005)];
        "7.3.2" Whole => [frame(true, 8, b"a")] => [C(1002)];
        "7.3.3" Whole => [close(1000, b"")] => [C(1000)];
        "7.3.4" Whole => [close(1000, b"Hello World!")] => [C(1000)];
        "7.3.5" Whole => [close(1000, &[b'*'; 123])] => [C(1000)];
        "7.3.6" Whole => [close(1000, &[b'*'; 124])] => [C(1002)];
        "7.5.1" Whole => [close(1000, &[0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64])] => [C(1007)];
        "7.13.1" Whole => [close(5000, b"")] => [C(1002)];
        "7.13.2" Whole => [close(65535, b"")] => [C(1002)];
    }
    for (i, code) in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(Case {
            id: format!("7.7.{}", i + 1),
            mode: Whole,
            send: vec![close(code, b"")],
            expect: vec![C(code)],
        });
    }
    for (i, code) in [0u16, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
        .into_iter()
        .enumerate()
    {
        cases.push(Case {
            id: format!("7.9.{}", i + 1),
            mode: Whole,
            send: vec![close(code, b"")],
            expect: vec![C(1002)],
        });
    }
}

fn section9(cases: &mut Vec<Case>) {
    // 9.1 / 9.2: large messages in one frame.
    for (i, len) in [
        64usize << 10,
        256 << 10,
        1 << 20,
        4 << 20,
        8 << 20,
        16 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let t = common::pattern(len, i as u64)
            .iter()
            .map(|b| b'a' + b % 26)
            .collect::<Vec<u8>>();
        cases.push(Case {
            id: format!("9.1.{}", i + 1),
            mode: Chop(1 << 20),
            send: vec![text(&t)],
            expect: vec![T(t)],
        });
        let b = common::pattern(len, 100 + i as u64);
        cases.push(Case {
            id: format!("9.2.{}", i + 1),
            mode: Chop(1 << 20),
            send: vec![binary(&b)],
            expect: vec![B(b)],
        });
    }
    // 9.3 / 9.4: a 4 MiB message fragmented into frames of 64 B .. 4 MiB.
    let t4 = common::pattern(4 << 20, 7)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    let b4 = common::pattern(4 << 20, 8);
    for (i, size) in [
        64usize,
        256,
        1 << 10,
        4 << 10,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(Case {
            id: format!("9.3.{}", i + 1),
            mode: Chop(1 << 20),
            send: vec![fragmented(1, &t4, size)],
            expect: vec![T(t4.clone())],
        });
        cases.push(Case {
            id: format!("9.4.{}", i + 1),
            mode: Chop(1 << 20),
            send: vec![fragmented(2, &b4, size)],
            expect: vec![B(b4.clone())],
        });
    }
    // 9.5 / 9.6: a 1 MiB message written in chops of 64 B .. 2 KiB (9.5.1's 64-byte chops
    // make 16k writes).
    let t1 = common::pattern(1 << 20, 9)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    let b1 = common::pattern(1 << 20, 10);
    for (i, chop) in [64usize, 128, 256, 512, 1024, 2048].into_iter().enumerate() {
        cases.push(Case {
            id: format!("9.5.{}", i + 1),
            mode: Chop(chop),
            send: vec![text(&t1)],
            expect: vec![T(t1.clone())],
        });
        cases.push(Case {
            id: format!("9.6.{}", i + 1),
            mode: Chop(chop),
            send: vec![binary(&b1)],
            expect: vec![B(b1.clone())],
        });
    }
    // 9.7 / 9.8: 1000 messages of 0 B .. 64 KiB, sent back to back.
    for (i, len) in [0usize, 16, 64, 256, 1024, 4096, 16 << 10, 64 << 10]
        .into_iter()
        .enumerate()
    {
        let count = if len >= 16 << 10 { 100 } else { 1000 };
        let t = vec![b'*'; len];
        let b = vec![0xAB; len];
        cases.push(Case {
            id: format!("9.7.{}", i + 1),
            mode: Chop(64 << 10),
            send: vec![text(&t); count],
            expect: vec![T(t); count],
        });
        cases.push(Case {
            id: format!("9.8.{}", i + 1),
            mode: Chop(64 << 10),
            send: vec![binary(&b); count],
            expect: vec![B(b); count],
        });
    }
    // Over the limit: 1009.
    cases.push(Case {
        id: "9.9.1".into(),
        mode: Whole,
        send: vec![b"\x82\xff\x00\x00\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00".to_vec()],
        expect: vec![C(1009)],
    });
    cases.push(Case {
        id: "9.9.2".into(),
        mode: Chop(1 << 20),
        send: vec![
            frame(false, 2, &vec![0; 10 << 20]),
            frame(true, 0, &vec![0; 7 << 20]),
        ],
        expect: vec![C(1009)],
    });
    // A 64-bit length with its top bit set.
    cases.push(Case {
        id: "9.9.3".into(),
        mode: Whole,
        send: vec![b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00".to_vec()],
        expect: vec![C(1002)],
    });
    // An unmasked client frame.
    cases.push(Case {
        id: "9.9.4".into(),
        mode: Whole,
        send: vec![b"\x81\x02hi".to_vec()],
        expect: vec![C(1002)],
    });
}

fn section10(cases: &mut Vec<Case>) {
    // 10.1.1: a 64 KiB text message auto-fragmented into 1300-byte frames.
    let t = vec![b'*'; 65536];
    cases.push(Case {
        id: "10.1.1".into(),
        mode: Whole,
        send: vec![fragmented(1, &t, 1300)],
        expect: vec![T(t.clone())],
    });
    // The same frame by frame, and with a ping between every frame.
    cases.push(Case {
        id: "10.1.2".into(),
        mode: Frames,
        send: vec![fragmented(1, &t, 1300)],
        expect: vec![T(t.clone())],
    });
    let mut sends = Vec::new();
    let pieces: Vec<&[u8]> = t.chunks(1300).collect();
    let mut pongs = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        sends.push(frame(i + 1 == pieces.len(), if i == 0 { 1 } else { 0 }, p));
        if i + 1 < pieces.len() {
            sends.push(ping(format!("{i}")));
            pongs.push(P(v(&format!("{i}"))));
        }
    }
    pongs.push(T(t));
    cases.push(Case {
        id: "10.1.3".into(),
        mode: Frames,
        send: sends,
        expect: pongs,
    });
}

#[test]
fn autobahn_fuzzing_client_cases() {
    let server = start();
    let addr = server.tcp_addr(0);
    let mut cases = Vec::new();
    section1(&mut cases);
    section2(&mut cases);
    section3(&mut cases);
    section4(&mut cases);
    section5(&mut cases);
    section6(&mut cases);
    section7(&mut cases);
    section9(&mut cases);
    section10(&mut cases);
    let started = Instant::now();
    let mut per_section: std::collections::BTreeMap<u32, (usize, usize)> = Default::default();
    let mut failures = Vec::new();
    for case in &cases {
        let section: u32 = case
            .id
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let e = per_section.entry(section).or_default();
        e.1 += 1;
        match run(addr, case) {
            Ok(()) => e.0 += 1,
            Err(why) => failures.push(format!("{} ({:?}): {why}", case.id, case.mode)),
        }
    }
    for (section, (pass, total)) in &per_section {
        println!("section {section:>2}: {pass:>4} / {total:<4} passed");
    }
    println!("{} cases in {:?}", cases.len(), started.elapsed());
    for f in &failures {
        println!("FAIL {f}");
    }
    server.stop().expect("server stops cleanly");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed",
        failures.len(),
        cases.len()
    );
}

/// Handshakes the server refuses, and plain HTTP next to the WebSocket.
#[test]
fn handshake_rejections() {
    let server = start();
    let addr = server.tcp_addr(0);
    let ask = |req: &str| {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        read_head(&mut s)
    };
    let base = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let head = ask(&format!(
        "{base}Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    ));
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    let head = ask(&format!(
        "{base}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n"
    ));
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let head = ask(&format!("{base}Sec-WebSocket-Version: 13\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let head = ask(&format!("POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\nContent-Length: 0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let head = ask("GET /ws HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    server.stop().expect("server stops cleanly");
}
