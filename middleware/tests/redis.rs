//! The `redis-server` example against the real Redis tools: `redis-cli` round trips for
//! every command, `redis-cli --pipe`, raw sockets for pipelining, inline commands, QUIT and
//! protocol errors, two loops sharing one keyspace over TCP and a unix socket, and a
//! `redis-benchmark` smoke run; lists, sets, hashes, sorted sets and redis-benchmark's
//! default suite in `redis/collections.rs`; pub/sub and TLS in `redis/pubsub.rs`.
//!
//! redis-cli and redis-benchmark come from Debian's `redis-tools` (CI installs it); the
//! tests fail with that hint when they are missing. Every server is a child process that
//! is killed and reaped whatever happens (one test stops it with SIGINT and checks the
//! exit status), and every wait is bounded.

#[path = "redis/collections.rs"]
mod collections;
mod common;
#[path = "redis/pubsub.rs"]
mod pubsub;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{ChildGuard, TIMEOUT};

// ----- harness -------------------------------------------------------------------------------

/// The example binary, built once per test process.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::example_bin("redis-server"))
}

/// Fails with an install hint if a Redis tool is missing.
fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} not found on PATH: install Debian's redis-tools (apt-get install -y redis-tools)"
    );
}

/// A running redis-server example.
struct Redis {
    child: ChildGuard,
    port: u16,
    /// The TLS port, when the server has a TLS listener.
    tlsport: Option<u16>,
    /// The server's log lines not read yet (what `start` read to find its ports is gone).
    logs: mpsc::Receiver<String>,
    _stderr: std::thread::JoinHandle<()>,
}

/// A port of 127.0.0.1 free a moment ago (the server may still lose a race for it: the
/// callers retry with another).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe listener")
        .port()
}

impl Redis {
    /// Starts the example on a free port with `extra` options; waits for it to serve.
    fn start(extra: &[&str]) -> Redis {
        Redis::try_start(extra, None, "info").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start`](Redis::start) with a TLS listener too (on a port free a moment ago:
    /// tried again with another if the server cannot bind it) and debug logging.
    fn start_tls(extra: &[&str]) -> Redis {
        let mut last = String::new();
        for _ in 0..5 {
            match Redis::try_start(extra, Some(free_port()), "debug") {
                Ok(r) => return r,
                Err(e) => last = e,
            }
        }
        panic!("the server did not start: {last}");
    }

    fn try_start(extra: &[&str], tlsport: Option<u16>, log: &str) -> Result<Redis, String> {
        require("redis-cli");
        let tls = tlsport.map(|p| p.to_string());
        let mut child = Command::new(binary())
            .args(["--port", "0"])
            .args(tls.iter().flat_map(|p| ["--tlsport", p.as_str()]))
            .args(extra)
            .env("WIRELOOP_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-server example");
        let stderr = child.stderr.take().expect("stderr");
        let child = ChildGuard(Some(child));
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // "redis server serving 127.0.0.1:P ..." and, after it, "... serving tls://...".
        let mut port = None;
        let mut tls_seen = tlsport.is_none();
        while port.is_none() || !tls_seen {
            let line = rx
                .recv_timeout(TIMEOUT)
                .map_err(|e| format!("no line saying what the server serves: {e:?}"))?;
            let Some(rest) = line.split(" serving ").nth(1) else {
                continue;
            };
            let addr = rest.split_whitespace().next().unwrap_or_default();
            if let Some(p) = addr.strip_prefix("127.0.0.1:") {
                port = Some(p.parse().expect("port"));
            } else if addr.starts_with("tls://127.0.0.1:") {
                tls_seen = true;
            }
        }
        Ok(Redis {
            child,
            port: port.unwrap_or_default(),
            tlsport,
            logs: rx,
            _stderr: reader,
        })
    }

    /// `redis-cli -p PORT args...`: its standard output without the trailing newlines.
    fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut all = vec!["-p", &port];
        all.extend_from_slice(args);
        run("redis-cli", &all, None)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }
}

/// Runs `tool args` (feeding `stdin` if given) within [`TIMEOUT`]; returns its standard
/// output without trailing newlines. Panics if it fails or takes too long.
fn run(tool: &str, args: &[&str], stdin: Option<Vec<u8>>) -> String {
    let out = run_output(tool, args, stdin, TIMEOUT);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string()
}

fn run_output(tool: &str, args: &[&str], stdin: Option<Vec<u8>>, limit: Duration) -> Output {
    let child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let mut guard = ChildGuard(Some(child));
    let child = guard.child();
    let input = stdin.map(|data| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = guard
        .wait_timeout(limit)
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e}"));
    if let Some(t) = input {
        let _ = t.join();
    }
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Reads from `s` until `want.len()` bytes came (or EOF / timeout) and compares.
#[track_caller]
fn expect_reply(s: &mut TcpStream, want: &[u8]) {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < want.len() {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading replies: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// The server closed the connection (EOF, nothing more).
#[track_caller]
fn expect_eof(s: &mut TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF");
    assert!(
        rest.is_empty(),
        "unexpected bytes: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

fn array(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n", a.len()).into_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

// ----- redis-cli round trips -------------------------------------------------------------------

#[test]
fn strings_counters_and_admin_commands() {
    let r = Redis::start(&[]);
    assert_eq!(r.cli(&["PING"]), "PONG");
    assert_eq!(r.cli(&["ping", "hello"]), "hello");
    assert_eq!(r.cli(&["ECHO", "hi there"]), "hi there");
    assert_eq!(r.cli(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(r.cli(&["GET", "greeting"]), "hello");
    assert_eq!(r.cli(&["GET", "missing"]), "");
    assert_eq!(r.cli(&["EXISTS", "greeting", "missing", "greeting"]), "2");
    assert_eq!(r.cli(&["SET", "n", "41"]), "OK");
    assert_eq!(r.cli(&["INCR", "n"]), "42");
    assert_eq!(r.cli(&["DECR", "n"]), "41");
    assert_eq!(r.cli(&["INCRBY", "n", "-50"]), "-9");
    assert_eq!(r.cli(&["DECRBY", "n", "1"]), "-10");
    assert_eq!(r.cli(&["INCR", "fresh"]), "1");
    assert_eq!(
        r.cli(&["INCR", "greeting"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(r.cli(&["SET", "big", "9223372036854775807"]), "OK");
    assert_eq!(
        r.cli(&["INCR", "big"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(r.cli(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(r.cli(&["MGET", "a", "nope", "b"]), "1\n\n2");
    assert_eq!(r.cli(&["DEL", "a", "b", "nope"]), "2");
    assert_eq!(r.cli(&["DBSIZE"]), "4");
    assert_eq!(
        r.cli(&["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        r.cli(&["ECHO", "a", "b"]),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        r.cli(&["FOO", "bar", "baz"]),
        "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' "
    );
    assert_eq!(r.cli(&["SELECT", "0"]), "OK");
    assert_eq!(r.cli(&["SELECT", "1"]), "ERR DB index is out of range");
    assert_eq!(r.cli(&["CONFIG", "GET", "save"]), "save");
    assert_eq!(r.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nno");
    assert_eq!(r.cli(&["CONFIG", "GET", "nothing"]), "");
    assert_eq!(r.cli(&["COMMAND", "DOCS"]), "");
    assert_eq!(r.cli(&["COMMAND"]), "");
    assert!(r.cli(&["COMMAND", "COUNT"]).parse::<u32>().unwrap() > 20);
    assert!(r.cli(&["INFO"]).contains("redis_version:"));
    assert_eq!(r.cli(&["FLUSHALL"]), "OK");
    assert_eq!(r.cli(&["DBSIZE"]), "0");
    assert_eq!(r.cli(&["QUIT"]), "OK");
}

#[test]
fn set_options() {
    let r = Redis::start(&[]);
    assert_eq!(r.cli(&["SET", "k", "v1", "NX"]), "OK");
    assert_eq!(r.cli(&["SET", "k", "v2", "NX"]), "");
    assert_eq!(r.cli(&["GET", "k"]), "v1");
    assert_eq!(r.cli(&["SET", "k", "v3", "XX"]), "OK");
    assert_eq!(r.cli(&["GET", "k"]), "v3");
    assert_eq!(r.cli(&["SET", "other", "v", "XX"]), "");
    assert_eq!(r.cli(&["EXISTS", "other"]), "0");
    assert_eq!(r.cli(&["SET", "k", "v4", "EX", "100"]), "OK");
    let ttl: i64 = r.cli(&["TTL", "k"]).parse().unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(r.cli(&["SET", "k", "v5", "KEEPTTL"]), "OK");
    let ttl: i64 = r.cli(&["TTL", "k"]).parse().unwrap();
    assert!((99..=100).contains(&ttl), "ttl kept: {ttl}");
    assert_eq!(r.cli(&["SET", "k", "v6"]), "OK");
    assert_eq!(r.cli(&["TTL", "k"]), "-1", "a plain SET clears the TTL");
    assert_eq!(r.cli(&["SET", "k", "v7", "px", "5000", "xx"]), "OK");
    let pttl: i64 = r.cli(&["PTTL", "k"]).parse().unwrap();
    assert!((4000..=5000).contains(&pttl), "pttl {pttl}");
    assert_eq!(r.cli(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
    assert_eq!(
        r.cli(&["SET", "k", "v", "EX", "1", "PX", "1"]),
        "ERR syntax error"
    );
    assert_eq!(r.cli(&["SET", "k", "v", "EX"]), "ERR syntax error");
    assert_eq!(r.cli(&["SET", "k", "v", "BOGUS"]), "ERR syntax error");
    assert_eq!(
        r.cli(&["SET", "k", "v", "EX", "ten"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        r.cli(&["SET", "k", "v", "EX", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        r.cli(&["SET", "k", "v", "PX", "-5"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(r.cli(&["GET", "k"]), "v7", "failed SETs change nothing");
}

#[test]
fn expiry_lazy_and_swept() {
    let r = Redis::start(&[]);
    assert_eq!(r.cli(&["TTL", "nokey"]), "-2");
    assert_eq!(r.cli(&["EXPIRE", "nokey", "10"]), "0");
    assert_eq!(r.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(r.cli(&["TTL", "k"]), "-1");
    assert_eq!(r.cli(&["EXPIRE", "k", "100"]), "1");
    assert_eq!(r.cli(&["TTL", "k"]), "100");
    assert_eq!(r.cli(&["EXPIRE", "k", "50", "GT"]), "0");
    assert_eq!(r.cli(&["EXPIRE", "k", "50", "LT"]), "1");
    assert_eq!(r.cli(&["EXPIRE", "k", "70", "NX"]), "0");
    assert_eq!(r.cli(&["EXPIRE", "k", "70", "XX"]), "1");
    assert_eq!(r.cli(&["TTL", "k"]), "70");
    assert_eq!(r.cli(&["PERSIST", "k"]), "1");
    assert_eq!(r.cli(&["PERSIST", "k"]), "0");
    assert_eq!(r.cli(&["TTL", "k"]), "-1");
    assert_eq!(r.cli(&["EXPIRE", "k", "5", "XX"]), "0");
    assert_eq!(
        r.cli(&["EXPIRE", "k", "5", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        r.cli(&["EXPIRE", "k", "99999999999999999"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(r.cli(&["PEXPIRE", "k", "2500"]), "1");
    let ttl: i64 = r.cli(&["TTL", "k"]).parse().unwrap();
    assert!((2..=3).contains(&ttl), "ttl {ttl}");
    // A deadline in the past deletes at once.
    assert_eq!(r.cli(&["EXPIRE", "k", "-1"]), "1");
    assert_eq!(r.cli(&["EXISTS", "k"]), "0");
    // Past its deadline the key is gone when touched (deleted lazily, if the sweep has
    // not removed it already).
    assert_eq!(r.cli(&["SET", "lazy", "v", "PX", "1000"]), "OK");
    assert_eq!(r.cli(&["GET", "lazy"]), "v");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(r.cli(&["GET", "lazy"]), "");
    assert_eq!(r.cli(&["TTL", "lazy"]), "-2");
    // The sweep: keys nobody touches leave the keyspace (DBSIZE counts them until then).
    let mut cmds = Vec::new();
    for i in 0..500 {
        cmds.extend(array(&[
            b"SET",
            format!("s{i}").as_bytes(),
            b"x",
            b"PX",
            b"1000",
        ]));
    }
    cmds.extend(array(&[b"SET", b"stays", b"x"]));
    run(
        "redis-cli",
        &["-p", &r.port.to_string(), "--pipe"],
        Some(cmds),
    );
    assert_eq!(r.cli(&["DBSIZE"]), "501");
    let deadline = Instant::now() + TIMEOUT;
    while r.cli(&["DBSIZE"]) != "1" {
        assert!(Instant::now() < deadline, "the sweep never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(r.cli(&["GET", "stays"]), "x");
}

#[test]
fn keys_patterns() {
    let r = Redis::start(&[]);
    for k in [
        "hello",
        "hallo",
        "hxllo",
        "hllo",
        "heeeello",
        "h*llo",
        "user:1:name",
        "user:2:name",
        "user:1:age",
    ] {
        assert_eq!(r.cli(&["SET", k, "v"]), "OK");
    }
    let keys = |pat: &str| {
        let mut v: Vec<String> = r
            .cli(&["KEYS", pat])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        v
    };
    assert_eq!(keys("*").len(), 9);
    assert_eq!(keys("h?llo"), ["h*llo", "hallo", "hello", "hxllo"]);
    assert_eq!(
        keys("h*llo"),
        ["h*llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(keys("h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(keys("h[^e]llo"), ["h*llo", "hallo", "hxllo"]);
    assert_eq!(keys("h[a-b]llo"), ["hallo"]);
    assert_eq!(keys("h\\*llo"), ["h*llo"]);
    assert_eq!(keys("user:*:name"), ["user:1:name", "user:2:name"]);
    assert_eq!(keys("user:1:*"), ["user:1:age", "user:1:name"]);
    assert!(keys("nothing*").is_empty());
    // Expired keys are not listed.
    assert_eq!(r.cli(&["PEXPIRE", "hello", "1"]), "1");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(keys("h[ae]llo"), ["hallo"]);
}

// ----- raw sockets ------------------------------------------------------------------------------

/// Many commands in one write: every reply, in order; the same through `redis-cli --pipe`.
#[test]
fn pipelining() {
    let r = Redis::start(&[]);
    let mut s = r.connect();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..2000 {
        let k = format!("key{i}");
        req.extend(array(&[
            b"SET",
            k.as_bytes(),
            format!("value{i}").as_bytes(),
        ]));
        want.extend(b"+OK\r\n");
        req.extend(array(&[b"INCR", b"counter"]));
        want.extend(format!(":{}\r\n", i + 1).into_bytes());
        req.extend(array(&[b"GET", k.as_bytes()]));
        let v = format!("value{i}");
        want.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
    }
    req.extend(b"PING\r\n");
    want.extend(b"+PONG\r\n");
    s.write_all(&req).unwrap();
    expect_reply(&mut s, &want);

    let mut data = Vec::new();
    for i in 0..5000 {
        data.extend(array(&[b"SET", format!("p{i}").as_bytes(), b"x"]));
    }
    let out = run(
        "redis-cli",
        &["-p", &r.port.to_string(), "--pipe"],
        Some(data),
    );
    assert!(out.contains("errors: 0, replies: 5000"), "{out}");
    assert_eq!(r.cli(&["DBSIZE"]), "7001");
}

/// Inline commands as telnet sends them, mixed with arrays, then QUIT: replies in order,
/// nothing after QUIT is executed, and the server closes.
#[test]
fn inline_commands_and_quit() {
    let r = Redis::start(&[]);
    let mut s = r.connect();
    s.write_all(b"PING\r\nSET  k \t hello\r\nGET k\n\r\nEXISTS k nope\r\n")
        .unwrap();
    s.write_all(&array(&[b"ECHO", b"array"])).unwrap();
    s.write_all(b"incr k\r\nQUIT\r\nSET after quit\r\n")
        .unwrap();
    expect_reply(
        &mut s,
        b"+PONG\r\n+OK\r\n$5\r\nhello\r\n:1\r\n$5\r\narray\r\n\
          -ERR value is not an integer or out of range\r\n+OK\r\n",
    );
    expect_eof(&mut s);
    assert_eq!(r.cli(&["EXISTS", "after"]), "0");
}

/// Malformed input: the replies before it, Redis's protocol error, then the close.
#[test]
fn protocol_errors_close() {
    let r = Redis::start(&[]);
    for (bad, err) in [
        (&b"*1\r\n$x\r\n"[..], "invalid bulk length"),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"),
        (b"*-\r\n", "invalid multibulk length"),
        (b"*1\r\n$99999999999\r\n", "invalid bulk length"),
    ] {
        let mut s = r.connect();
        s.write_all(b"PING\r\n").unwrap();
        s.write_all(bad).unwrap();
        expect_reply(
            &mut s,
            format!("+PONG\r\n-ERR Protocol error: {err}\r\n").as_bytes(),
        );
        expect_eof(&mut s);
    }
    // An inline line over 64 KiB without its end.
    let mut s = r.connect();
    let _ = s.write_all(&vec![b'a'; 70 << 10]);
    expect_reply(&mut s, b"-ERR Protocol error: too big inline request\r\n");
    expect_eof(&mut s);
}

/// Replies far larger than the output high-water mark, to a client that reads them only
/// after sending everything: all arrive, in order.
#[test]
fn large_values_with_backpressure() {
    let r = Redis::start(&[]);
    let mut s = r.connect();
    let value: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    s.write_all(&array(&[b"SET", b"big", &value])).unwrap();
    expect_reply(&mut s, b"+OK\r\n");
    let n = 40;
    s.write_all(&b"GET big\r\n".repeat(n)).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut want = Vec::new();
    for _ in 0..n {
        want.extend(format!("${}\r\n", value.len()).into_bytes());
        want.extend_from_slice(&value);
        want.extend(b"\r\n");
    }
    want.extend(b"+PONG\r\n");
    let mut got = vec![0; want.len()];
    s.read_exact(&mut got).expect("all replies");
    assert!(got == want, "replies differ");
    // Half-close: the server answers what it got, then closes.
    s.write_all(b"PING\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    expect_reply(&mut s, b"+PONG\r\n");
    expect_eof(&mut s);
}

// ----- loops, unix socket, benchmark ---------------------------------------------------------------

/// Two loops, one keyspace: what one connection writes, every other sees, over TCP and
/// the unix socket; SIGINT stops the server cleanly.
#[test]
fn two_loops_one_keyspace_and_unix_socket() {
    let sock = std::env::temp_dir().join(format!("wl-redis-{}.sock", std::process::id()));
    let sock_s = sock.to_str().unwrap().to_string();
    let mut r = Redis::start(&["--loops", "2", "--unixsocket", &sock_s]);
    // redis-cli opens a new connection per call: round-robin puts them on both loops.
    for i in 0..8 {
        let k = format!("k{i}");
        assert_eq!(r.cli(&["SET", &k, &i.to_string()]), "OK");
        assert_eq!(r.cli(&["INCR", &k]), (i + 1).to_string());
        assert_eq!(
            run("redis-cli", &["-s", &sock_s, "GET", &k], None),
            (i + 1).to_string()
        );
    }
    assert_eq!(run("redis-cli", &["-s", &sock_s, "DBSIZE"], None), "8");
    // Concurrent increments from several connections lose nothing.
    let port = r.port;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                s.write_all(&b"INCR shared\r\n".repeat(500)).unwrap();
                let mut seen = 0;
                let mut buf = [0u8; 8192];
                let mut text = Vec::new();
                while seen < 500 {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "closed early");
                    text.extend_from_slice(&buf[..n]);
                    seen = text.iter().filter(|&&b| b == b'\n').count();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(r.cli(&["GET", "shared"]), "2000");

    let pid = r.child.child().id().to_string();
    let st = Command::new("kill").args(["-INT", &pid]).status();
    assert!(st.is_ok_and(|s| s.success()), "kill -INT {pid}");
    let st = r
        .child
        .wait_timeout(Duration::from_secs(10))
        .expect("stops on SIGINT");
    assert!(st.success(), "exit status {st}");
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn redis_benchmark_smoke() {
    require("redis-benchmark");
    let r = Redis::start(&[]);
    let port = r.port.to_string();
    for extra in [&[][..], &["-P", "16"][..]] {
        let mut args = vec!["-p", &port, "-t", "set,get", "-n", "20000", "-q"];
        args.extend_from_slice(extra);
        let out = run_output("redis-benchmark", &args, None, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "redis-benchmark failed: {text}");
        // -q prints one "NAME: N requests per second" line per test, after progress
        // lines separated by carriage returns.
        for t in ["SET", "GET"] {
            assert!(
                text.split(['\r', '\n'])
                    .any(|l| l.starts_with(&format!("{t}: ")) && l.contains("requests per second")),
                "no {t} result in {text:?}"
            );
        }
        assert!(
            !text.to_lowercase().contains("error"),
            "errors in the benchmark output: {text:?}"
        );
    }
    assert_eq!(r.cli(&["GET", "key:__rand_int__"]).len(), 3);
}
