//! The codecs under real handlers: through `wireloop::testing::Driver` (input cut at every
//! byte boundary must give the same replies as input in one read; malformed or oversized
//! input gets its error and the connection closes), over real sockets, and the
//! `length-prefixed` example's server and client end to end.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ChildGuard, TestServer, TIMEOUT};
use wireloop::testing::Driver;
use wireloop::{Action, Conn, ConnId, Handler, Server};
use wireloop_middleware::codec::resp::{self, RespDecoder, RespLimits};
use wireloop_middleware::codec::{
    FrameError, HeaderWidth, LengthPrefixed, LineError, Lines, Status,
};

// ----- handlers ----------------------------------------------------------------------------

/// Answers every RESP command with an array of its arguments; a protocol error gets
/// Redis's error reply and closes the connection.
#[derive(Default)]
struct RespEcho {
    limits: RespLimits,
}

impl Handler for RespEcho {
    type State = RespDecoder;

    fn opened(&mut self, conn: &mut Conn<'_, RespDecoder>) -> Action {
        *conn.state = RespDecoder::with_limits(self.limits);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, RespDecoder>) -> Action {
        let mut dec = std::mem::take(conn.state);
        let (input, mut out) = conn.split();
        let mut used = 0;
        let action = loop {
            match dec.decode(&input[used..]) {
                Ok(Status::Complete((cmd, n))) => {
                    used += n;
                    resp::command(&mut out, cmd.iter());
                }
                Ok(Status::Partial) => break Action::None,
                Err(e) => {
                    e.write_reply(&mut out);
                    used = input.len();
                    break Action::Close;
                }
            }
        };
        conn.consume(used);
        *conn.state = dec;
        action
    }
}

/// Errors the frame or line handlers closed on.
type Seen = Arc<Mutex<Vec<String>>>;

/// Echoes length-prefixed frames; closes on a decoding error and records it.
struct FrameEcho {
    codec: LengthPrefixed,
    errors: Seen,
}

impl Handler for FrameEcho {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut failed = None;
        loop {
            match self.codec.decode(&input[used..]) {
                Ok(Status::Complete((frame, n))) => {
                    self.codec.encode(frame, &mut out).expect("echo encodes");
                    used += n;
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        conn.consume(used);
        match failed {
            Some(e) => {
                self.errors.lock().unwrap().push(e.to_string());
                Action::Close
            }
            None => Action::None,
        }
    }
}

/// Echoes lines upper-cased; closes on a decoding error and records it.
struct LineUpper {
    codec: Lines,
    errors: Seen,
}

impl Handler for LineUpper {
    type State = wireloop_middleware::codec::LineScan;

    fn data(&mut self, conn: &mut Conn<'_, Self::State>) -> Action {
        let mut scan = *conn.state;
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut failed = None;
        loop {
            match self.codec.decode_resume(&input[used..], &mut scan) {
                Ok(Status::Complete((line, n))) => {
                    self.codec
                        .encode(&line.to_ascii_uppercase(), &mut out)
                        .expect("line encodes");
                    used += n;
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        conn.consume(used);
        *conn.state = scan;
        match failed {
            Some(e) => {
                self.errors.lock().unwrap().push(e.to_string());
                Action::Close
            }
            None => Action::None,
        }
    }
}

// ----- RESP through the driver ---------------------------------------------------------------

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    resp::command(&mut v, args.iter().copied());
    v
}

/// Feeds `pieces` as separate reads; returns everything written and whether the
/// connection is still open.
fn drive<H: Handler>(d: &mut Driver<H>, pieces: &[&[u8]]) -> (Vec<u8>, bool) {
    let c: ConnId = d.open(0);
    let mut out = Vec::new();
    for p in pieces {
        if !d.feed(c, p) {
            break;
        }
        out.extend(d.take_output(c));
    }
    out.extend(d.take_output(c));
    (out, d.is_open(c))
}

/// A pipelined conversation of every kind of command, cut in two at every byte and also
/// fed one byte per read: the replies never change.
#[test]
fn resp_split_at_every_byte_boundary() {
    let mut input = Vec::new();
    input.extend(cmd(&[b"SET", b"key", b"va\r\nlue"]));
    input.extend(b"GET key\r\n");
    input.extend(b"*0\r\n");
    input.extend(cmd(&[b"PING"]));
    input.extend(b"\r\n");
    input.extend(cmd(&[b"MSET", b"a", b"", b"b", &[0u8, 255, 13, 10]]));
    input.extend(b"ECHO  spaced\targs\n");
    input.extend(cmd(&[&[b'x'; 300][..]]));

    let mut d = Driver::new(RespEcho::default());
    let (whole, open) = drive(&mut d, &[&input]);
    assert!(open);
    let mut want = Vec::new();
    want.extend(cmd(&[b"SET", b"key", b"va\r\nlue"]));
    want.extend(cmd(&[b"GET", b"key"]));
    want.extend(b"*0\r\n");
    want.extend(cmd(&[b"PING"]));
    want.extend(b"*0\r\n");
    want.extend(cmd(&[b"MSET", b"a", b"", b"b", &[0u8, 255, 13, 10]]));
    want.extend(cmd(&[b"ECHO", b"spaced", b"args"]));
    want.extend(cmd(&[&[b'x'; 300][..]]));
    assert_eq!(
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&want)
    );

    for cut in 0..=input.len() {
        let (got, open) = drive(&mut d, &[&input[..cut], &input[cut..]]);
        assert!(open, "cut at {cut}");
        assert_eq!(got, want, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (got, open) = drive(&mut d, &bytes);
    assert!(open);
    assert_eq!(got, want, "byte by byte");
}

/// Malformed commands: the replies before the error, then Redis's error text, then the
/// connection closes — also when the bad bytes arrive one at a time.
#[test]
fn resp_malformed_gets_redis_error_and_close() {
    let limits = RespLimits {
        max_bulk: 16,
        max_args: 4,
        max_inline: 32,
    };
    let ping = cmd(&[b"PING"]);
    for (bad, err) in [
        (&b"*x\r\n"[..], "invalid multibulk length"),
        (b"*1\r\n:5\r\n", "expected '$', got ':'"),
        (b"*1\r\n$-2\r\n", "invalid bulk length"),
        (b"*1\r\n$17\r\n", "invalid bulk length"),
        (b"*5\r\n", "invalid multibulk length"),
        (b"*1\r\n$3\r\nabcd\r\n", "expected CRLF after bulk string"),
        (b"*11111111111111111111111", "too big mbulk count string"),
        (
            b"*1\r\n$11111111111111111111111",
            "too big bulk count string",
        ),
        (&[b'a'; 40][..], "too big inline request"),
        (b"a b c d e\r\n", "too many arguments in inline request"),
    ] {
        let mut input = ping.clone();
        input.extend_from_slice(bad);
        let mut want = ping.clone();
        want.extend(format!("-ERR Protocol error: {err}\r\n").into_bytes());
        for pieces in [vec![&input[..]], input.chunks(1).collect()] {
            let mut d = Driver::new(RespEcho { limits });
            let (got, open) = drive(&mut d, &pieces);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{bad:?}"
            );
            assert!(!open, "{bad:?}: still open");
        }
    }
}

// ----- length-prefixed and lines through the driver ---------------------------------------------

/// Frames within the limit are echoed; a header announcing more closes the connection at
/// once, before any of that frame's payload arrives.
#[test]
fn length_prefixed_over_limit_closes() {
    for width in [
        HeaderWidth::U8,
        HeaderWidth::U16,
        HeaderWidth::U32,
        HeaderWidth::U64,
    ] {
        let codec = LengthPrefixed::new().width(width).max_frame(100);
        let errors = Seen::default();
        let mut d = Driver::new(FrameEcho {
            codec,
            errors: errors.clone(),
        });
        let mut ok = Vec::new();
        codec.encode(&[7u8; 100], &mut ok).unwrap();
        codec.encode(b"", &mut ok).unwrap();
        let big = codec.max_frame(1000).header(101).unwrap();
        let c = d.open(0);
        assert!(d.feed(c, &ok));
        assert_eq!(
            d.take_output(c),
            ok,
            "{width:?}: frames at the limit echoed"
        );
        // Only the header: the connection must close now, not wait for 101 bytes.
        d.feed(c, &big);
        let _ = d.take_output(c);
        assert!(!d.is_open(c), "{width:?}: still open");
        assert_eq!(
            *errors.lock().unwrap(),
            [FrameError::TooLong { len: 101, max: 100 }.to_string()],
        );
    }
}

#[test]
fn lines_over_limit_close() {
    let errors = Seen::default();
    let codec = Lines::new().max_line(8);
    let mut d = Driver::new(LineUpper {
        codec,
        errors: errors.clone(),
    });
    // Cut at every byte boundary, the answer is the same.
    let input = b"one\r\ntwo\n12345678\r\n\nthree";
    for cut in 0..=input.len() {
        let (out, open) = drive(&mut d, &[&input[..cut], &input[cut..]]);
        assert!(open);
        assert_eq!(out, b"ONE\nTWO\n12345678\n\n", "cut at {cut}");
    }
    // Nine bytes without an end: closed at once, the lines before answered.
    let (out, open) = drive(&mut d, &[b"ok\n12345", b"6789"]);
    assert_eq!(out, b"OK\n");
    assert!(!open);
    // A terminated line one byte too long, fed byte by byte.
    let long = b"123456789\n";
    let (out, open) = drive(&mut d, &long.chunks(1).collect::<Vec<_>>());
    assert_eq!(out, b"");
    assert!(!open);
    let want = LineError::TooLong { max: 8 }.to_string();
    assert_eq!(*errors.lock().unwrap(), [want.clone(), want]);
}

// ----- over real sockets ---------------------------------------------------------------------

/// A frame over the limit, over TCP: the frames before it are echoed, then the server
/// closes (the client reads EOF) without the payload ever being sent.
#[test]
fn length_prefixed_over_limit_closes_socket() {
    let codec = LengthPrefixed::new().max_frame(1024);
    let errors = Seen::default();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let errs = errors.clone();
    let srv = TestServer::start(server, move |_| FrameEcho {
        codec,
        errors: errs.clone(),
    });
    let mut s = TcpStream::connect(srv.tcp_addr(0)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut wire = Vec::new();
    for i in 0..50u8 {
        codec.encode(&vec![i; 1000], &mut wire).unwrap();
    }
    s.write_all(&wire).unwrap();
    let mut echoed = vec![0; wire.len()];
    s.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, wire);
    s.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF, not a reset");
    assert!(rest.is_empty());
    assert_eq!(
        *errors.lock().unwrap(),
        ["frame of 1073741824 bytes over the limit of 1024 bytes"]
    );
    srv.stop().unwrap();
}

// ----- the length-prefixed example, end to end --------------------------------------------------

/// Builds an example of the `wireloop` package and returns its path.
fn example(name: &str) -> PathBuf {
    common::example_bin(name)
}

/// A child whose stderr lines are collected by a thread; the `serving` line gives its port.
struct Spawned {
    child: ChildGuard,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

fn spawn_logging(bin: &Path, args: &[&str]) -> (Spawned, u16) {
    let mut child = Process::new(bin)
        .args(args)
        .env("WIRELOOP_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let stderr = child.stderr.take().unwrap();
    let guard = ChildGuard(Some(child));
    let (tx, rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log2.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let port = loop {
        let line = rx
            .recv_timeout(TIMEOUT)
            .expect("the example logs its address");
        if let Some(rest) = line.split(" serving ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            break addr.rsplit(':').next().unwrap().parse().expect("port");
        }
    };
    (
        Spawned {
            child: guard,
            lines: rx,
            log,
        },
        port,
    )
}

#[test]
fn length_prefixed_example_end_to_end() {
    let bin = example("length-prefixed");
    let (mut server, port) = spawn_logging(&bin, &["server", "--port", "0", "--max-frame", "4096"]);
    let addr = format!("127.0.0.1:{port}");
    let run_client = |extra: &[&str]| {
        let mut args = vec!["client", "--addr", &addr, "--timeout", "20"];
        args.extend_from_slice(extra);
        let child = Process::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client");
        let mut guard = ChildGuard(Some(child));
        let mut out = String::new();
        let mut err = String::new();
        guard
            .child()
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        guard
            .child()
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = guard
            .wait_timeout(Duration::from_secs(30))
            .expect("client exits");
        (status.success(), out, err)
    };

    let (ok, out, err) = run_client(&["--count", "5000", "--size", "4096", "--window", "32"]);
    assert!(ok, "client failed: {out}{err}");
    assert!(
        out.contains("5000 frames of 4096 bytes echoed intact"),
        "{out}"
    );

    // A frame over the server's limit: the server logs why and closes; the client fails.
    let (ok, out, err) = run_client(&["--count", "3", "--size", "4097"]);
    assert!(!ok, "client should fail: {out}");
    assert!(err.contains("ended after 0 of 3 replies"), "{err}");
    let warned = |l: &String| {
        l.contains("WARN") && l.contains("frame of 4097 bytes over the limit of 4096 bytes")
    };
    if !server.log.lock().unwrap().iter().any(warned) {
        loop {
            let line = server
                .lines
                .recv_timeout(TIMEOUT)
                .expect("the server's warning");
            if warned(&line) {
                break;
            }
        }
    }

    // Nobody listening: a clear error, exit 1.
    let (ok, _, err) = run_client(&["--addr", "127.0.0.1:1", "--count", "1"]);
    assert!(!ok);
    assert!(err.contains("127.0.0.1:1"), "{err}");

    // Ctrl-C stops the server gracefully.
    let pid = server.child.child().id().to_string();
    let st = Process::new("kill").args(["-INT", &pid]).status();
    assert!(st.is_ok_and(|s| s.success()), "kill -INT {pid}");
    let st = server
        .child
        .wait_timeout(Duration::from_secs(10))
        .expect("server stops on SIGINT");
    assert!(st.success(), "server exit status {st}");
}
