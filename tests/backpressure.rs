//! Backpressure and cross-thread control over real loopback sockets: a peer that sends
//! without reading, `Handle` calls from other threads, stale connection ids, the input
//! limit, descriptor exhaustion (EMFILE) and writes through `Control`.
//!
//! Every wait is bounded (channel `recv_timeout`, socket read timeouts, polling loops with a
//! deadline), so a bug fails a test instead of hanging it, and every server is shut down and
//! joined, also when an assertion fails (see `TestServer`'s `Drop`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use wireloop::{Action, Builder, Conn, ConnId, Control, Error, Handle, Handler, Loops, Server};

/// Bound on any single wait for something that should happen promptly.
const WAIT: Duration = Duration::from_secs(10);

// ----- harness ---------------------------------------------------------------------------

/// A server serving on its own thread; shut down and joined by `stop` or, if a test fails
/// first, by `Drop`.
struct TestServer {
    handle: Handle,
    addr: SocketAddr,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl TestServer {
    fn start<H, F>(builder: Builder, factory: F) -> TestServer
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let server = builder.build().expect("build the server");
        let handle = server.handle();
        let addr = server.local_addrs()[0].inet().expect("a TCP listener");
        let thread = thread::Builder::new()
            .name("serve".into())
            .spawn(move || server.serve(factory))
            .expect("spawn the serve thread");
        TestServer {
            handle,
            addr,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Shuts the server down and checks that `serve` returned `Ok` in time.
    fn stop(mut self) {
        match self.finish() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("serve returned an error: {e}"),
            Err(why) => panic!("{why}"),
        }
    }

    fn finish(&mut self) -> Result<Result<(), Error>, String> {
        let Some(t) = self.thread.take() else {
            return Ok(Ok(()));
        };
        self.handle.shutdown();
        let deadline = Instant::now() + WAIT;
        while !t.is_finished() {
            if Instant::now() >= deadline {
                return Err(format!("serve did not return within {WAIT:?} of shutdown"));
            }
            thread::sleep(Duration::from_millis(5));
        }
        t.join()
            .map_err(|_| "the serve thread panicked".to_string())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Err(why) = self.finish() {
            eprintln!("{why}");
        }
    }
}

/// One loop (so every connection shares it: a stuck or greedy peer must not hurt the others),
/// a short shutdown deadline.
fn builder() -> Builder {
    Server::builder()
        .listen("tcp://127.0.0.1:0")
        .expect("listen address")
        .loops(Loops::Fixed(1))
        .shutdown_timeout(Duration::from_secs(2))
}

fn setup_client(s: &TcpStream) {
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_write_timeout(Some(WAIT)).expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    setup_client(&s);
    s
}

/// Reads one line (with its `\n`); fails on EOF or on the read timeout.
fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    let n = r.read_line(&mut s).expect("read a line");
    assert!(n > 0, "connection closed while waiting for a line");
    s
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Byte `i` of a test stream: position-dependent, so a lost, repeated or reordered chunk
/// shows up as a mismatch.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn fill(buf: &mut [u8], offset: u64) {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = pattern(offset + j as u64);
    }
}

// ----- handlers --------------------------------------------------------------------------

/// What an echo server saw.
#[derive(Default)]
struct EchoStats {
    /// Largest `output_len()` right after a write.
    max_out: AtomicUsize,
    /// Bytes read (and echoed) on all connections.
    read: AtomicU64,
    /// `writable` calls.
    writable: AtomicUsize,
}

/// Echoes every byte back.
struct Echo(Arc<EchoStats>);

impl Handler for Echo {
    type State = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        self.0.read.fetch_add(n as u64, SeqCst);
        self.0.max_out.fetch_max(conn.output_len(), SeqCst);
        Action::None
    }

    fn writable(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        self.0.writable.fetch_add(1, SeqCst);
        Action::None
    }
}

#[derive(Debug)]
enum Ev {
    Opened(ConnId),
    Woken(ConnId),
    Closed {
        id: ConnId,
        err: Option<String>,
        input_limit: bool,
    },
}

#[derive(Default)]
struct ProbeState {
    hog: bool,
}

/// Echoes whole lines only (so its writes never split a line that a `Handle::send` could
/// land in the middle of), except on a connection whose input starts with `HOG`: that one
/// is never consumed. `woken` writes `w\n`. Reports opened / woken / closed on a channel.
struct Probe {
    ev: Sender<Ev>,
}

impl Handler for Probe {
    type State = ProbeState;

    fn opened(&mut self, conn: &mut Conn<'_, ProbeState>) -> Action {
        let _ = self.ev.send(Ev::Opened(conn.id()));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ProbeState>) -> Action {
        if conn.input().starts_with(b"HOG") {
            conn.state.hog = true;
        }
        if conn.state.hog {
            return Action::None;
        }
        let (input, mut out) = conn.split();
        let n = input.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        out.write(&input[..n]);
        conn.consume(n);
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, ProbeState>) -> Action {
        conn.write(b"w\n");
        let _ = self.ev.send(Ev::Woken(conn.id()));
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ProbeState>, err: Option<Error>) {
        let _ = self.ev.send(Ev::Closed {
            id: conn.id(),
            input_limit: err.as_ref().is_some_and(Error::is_input_limit),
            err: err.map(|e| e.to_string()),
        });
    }
}

fn probe_server(b: Builder) -> (TestServer, Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(b, move |_| Probe { ev: tx.clone() });
    (srv, rx)
}

fn next_ev(rx: &Receiver<Ev>) -> Ev {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("no handler event within {WAIT:?}: {e}"))
}

fn expect_opened(rx: &Receiver<Ev>) -> ConnId {
    match next_ev(rx) {
        Ev::Opened(id) => id,
        other => panic!("expected Opened, got {other:?}"),
    }
}

// ----- 1. a peer that sends without reading ------------------------------------------------

#[test]
fn peer_that_never_reads_is_paused_not_buffered() {
    const HWM: usize = 256 << 10;
    const LWM: usize = 64 << 10;
    const READ_BUF: usize = 64 << 10;
    /// The writer gives up here: reaching it means the server never pushed back.
    const LIMIT: u64 = 128 << 20;
    const CHUNK: usize = 64 << 10;
    /// No writer progress for this long (with the server paused) counts as stalled.
    const STALL: Duration = Duration::from_secs(1);

    let stats = Arc::new(EchoStats::default());
    let s2 = stats.clone();
    let srv = TestServer::start(
        builder()
            .output_water_marks(HWM, LWM)
            .read_buffer(READ_BUF)
            .close_linger(Duration::from_secs(30)),
        move |_| Echo(s2.clone()),
    );

    // Small client buffers, so the kernel's share of the backlog stays modest.
    let hog = srv.connect();
    let sock = SockRef::from(&hog);
    sock.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    sock.set_send_buffer_size(64 << 10).expect("SO_SNDBUF");
    hog.set_write_timeout(Some(3 * WAIT))
        .expect("write timeout");

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let writer = {
        let mut w = hog.try_clone().expect("clone");
        let (stop, progress) = (stop.clone(), progress.clone());
        thread::spawn(move || -> io::Result<u64> {
            let mut chunk = vec![0u8; CHUNK];
            let mut off = 0u64;
            while off < LIMIT && !stop.load(SeqCst) {
                fill(&mut chunk, off);
                w.write_all(&chunk)?;
                off += CHUNK as u64;
                progress.store(off, SeqCst);
            }
            w.shutdown(Shutdown::Write)?;
            Ok(off)
        })
    };

    // The writer must stall (kernel buffers full because the server stopped reading) with
    // the server's queue past the high-water mark.
    let deadline = Instant::now() + 3 * WAIT;
    let mut last = (u64::MAX, Instant::now());
    loop {
        if writer.is_finished() {
            let res = writer.join().expect("writer panicked");
            panic!(
                "the writer finished ({res:?}) without blocking: the server kept reading \
                 (max queued output {})",
                stats.max_out.load(SeqCst)
            );
        }
        let p = progress.load(SeqCst);
        let now = Instant::now();
        if p != last.0 {
            last = (p, now);
        } else if now - last.1 >= STALL && stats.max_out.load(SeqCst) > HWM {
            break;
        }
        assert!(
            now < deadline,
            "no stall within {:?}: written {p}, max queued {}",
            3 * WAIT,
            stats.max_out.load(SeqCst)
        );
        thread::sleep(Duration::from_millis(20));
    }
    let stalled_at = progress.load(SeqCst);
    let max_out = stats.max_out.load(SeqCst);
    // Reading stops once the queue passes the high-water mark, so the queue can exceed it by
    // at most one read (the loop's read buffer).
    assert!(
        max_out <= HWM + READ_BUF,
        "queued output reached {max_out}, over high-water {HWM} + one read {READ_BUF}"
    );
    assert!(stalled_at < LIMIT);
    println!("writer stalled after {stalled_at} bytes; most output queued: {max_out}");
    let read_at_stall = stats.read.load(SeqCst);

    // Another connection on the same loop is still echoed promptly.
    let mut other = srv.connect();
    other
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    let msg: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
    let t0 = Instant::now();
    other.write_all(&msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    other
        .read_exact(&mut back)
        .expect("the second client is echoed while the first is paused");
    assert_eq!(back, msg);
    assert!(t0.elapsed() < Duration::from_secs(3));
    // ... and the paused connection was not read meanwhile.
    assert_eq!(
        stats.read.load(SeqCst),
        read_at_stall + msg.len() as u64,
        "the server read from the paused connection"
    );
    assert_eq!(stats.writable.load(SeqCst), 0, "writable before any drain");

    // Now the first client reads: everything comes back, intact and in order, then EOF
    // (the writer half-closes; the server flushes and closes).
    stop.store(true, SeqCst);
    let mut r = hog;
    let mut buf = vec![0u8; 256 << 10];
    let mut off = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("reading the echo at {off}: {e}"));
        if n == 0 {
            break;
        }
        for (j, &b) in buf[..n].iter().enumerate() {
            let at = off + j as u64;
            assert_eq!(b, pattern(at), "echoed byte {at} differs");
        }
        off += n as u64;
    }
    let written = writer
        .join()
        .expect("writer panicked")
        .expect("writer failed");
    assert!(written >= stalled_at);
    assert_eq!(off, written, "echoed {off} of {written} bytes");
    assert!(
        stats.writable.load(SeqCst) >= 1,
        "writable was never called after the queue drained"
    );
    srv.stop();
}

// ----- 2. Handle::send from many threads --------------------------------------------------

#[test]
fn handle_sends_from_many_threads_keep_order() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5000;
    const ECHOES: usize = 2000;

    let (srv, ev) = probe_server(builder());
    let client = srv.connect();
    let id = expect_opened(&ev);

    let start = Arc::new(Barrier::new(THREADS + 2));
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (h, start) = (srv.handle.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for n in 0..PER_THREAD {
                    assert!(h.send(id, format!("T{t}:{n}\n")), "send refused");
                }
            })
        })
        .collect();
    // At the same time the loop answers the client's own lines.
    let echo_writer = {
        let mut w = client.try_clone().expect("clone");
        let start = start.clone();
        thread::spawn(move || {
            start.wait();
            for n in 0..ECHOES {
                w.write_all(format!("E{n}\n").as_bytes()).expect("write");
            }
        })
    };
    start.wait();

    let mut r = BufReader::new(client.try_clone().expect("clone"));
    let mut next = [0usize; THREADS];
    let mut next_echo = 0;
    while next.iter().sum::<usize>() < THREADS * PER_THREAD || next_echo < ECHOES {
        let line = read_line(&mut r);
        let line = line.trim_end();
        if let Some(n) = line.strip_prefix('E') {
            assert_eq!(
                n.parse::<usize>().ok(),
                Some(next_echo),
                "echo line {line:?}"
            );
            next_echo += 1;
        } else if let Some(rest) = line.strip_prefix('T') {
            let (t, n) = rest.split_once(':').expect("T<thread>:<n>");
            let t: usize = t.parse().expect("thread number");
            let n: usize = n.parse().expect("message number");
            assert_eq!(
                n, next[t],
                "thread {t}: got message {n}, expected {} (lost, repeated or reordered)",
                next[t]
            );
            next[t] += 1;
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    for s in senders {
        s.join().expect("sender thread");
    }
    echo_writer.join().expect("echo writer");
    // Nothing extra is queued behind them.
    let mut w = client;
    w.write_all(b"END\n").expect("write");
    assert_eq!(read_line(&mut r), "END\n");
    srv.stop();
}

// ----- 3. Handle::wake --------------------------------------------------------------------

#[test]
fn wake_from_another_thread_calls_woken_each_time() {
    const WAKES: usize = 1000;
    let (srv, ev) = probe_server(builder());
    let client = srv.connect();
    let id = expect_opened(&ev);

    let h = srv.handle.clone();
    let waker = thread::spawn(move || {
        for _ in 0..WAKES {
            assert!(h.wake(id), "wake refused");
        }
    });
    // This implementation does not coalesce wakes: one `woken`, one "w\n", per wake.
    let mut r = client.try_clone().expect("clone");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 2 * WAKES {
        match r.read(&mut buf) {
            Ok(0) => panic!("EOF after {} bytes", got.len()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} of {} `w` lines: {e}", got.len() / 2, WAKES),
        }
    }
    waker.join().expect("waker thread");
    assert_eq!(got.len(), 2 * WAKES, "more output than wakes");
    assert!(got.chunks(2).all(|c| c == b"w\n"), "woken output garbled");
    for i in 0..WAKES {
        match next_ev(&ev) {
            Ev::Woken(w) => assert_eq!(w, id),
            other => panic!("woken event {i}: got {other:?}"),
        }
    }
    let mut lines = BufReader::new(r);
    let mut w = client;
    w.write_all(b"END\n").expect("write");
    assert_eq!(read_line(&mut lines), "END\n", "output after the wakes");
    assert!(
        ev.try_recv().is_err(),
        "more than {WAKES} woken calls (or another event)"
    );
    srv.stop();
}

// ----- 4. stale ids -----------------------------------------------------------------------

/// `"<loop>:<key>"` and `"<gen>"` of an id (its `Display` is `loop:key.gen`).
fn slot_and_gen(id: ConnId) -> (String, String) {
    let s = id.to_string();
    let (slot, gen) = s.rsplit_once('.').expect("id shown as loop:key.gen");
    (slot.to_string(), gen.to_string())
}

#[test]
fn stale_ids_reach_nobody() {
    let (srv, ev) = probe_server(builder());
    let a = srv.connect();
    let a_id = expect_opened(&ev);
    drop(a);
    match next_ev(&ev) {
        Ev::Closed { id, err, .. } => {
            assert_eq!(id, a_id);
            assert!(err.is_none(), "A closed with {err:?}");
        }
        other => panic!("expected A's Closed, got {other:?}"),
    }

    let b = srv.connect();
    let b_id = expect_opened(&ev);
    assert_ne!(a_id, b_id);
    let (a_slot, a_gen) = slot_and_gen(a_id);
    let (b_slot, b_gen) = slot_and_gen(b_id);
    assert_eq!(
        a_slot, b_slot,
        "B should reuse A's freed slot ({a_id} / {b_id})"
    );
    assert_ne!(a_gen, b_gen, "a reused slot must get a new generation");

    // Posted (the server is running) but ignored: A is gone.
    assert!(srv.handle.send(a_id, "STALE\n"));
    assert!(srv.handle.wake(a_id));
    assert!(srv.handle.close(a_id));
    // Same thread, same loop: handled after the three above.
    assert!(srv.handle.send(b_id, "MARK\n"));

    let mut r = BufReader::new(b.try_clone().expect("clone"));
    assert_eq!(read_line(&mut r), "MARK\n", "B got something meant for A");
    let mut w = b;
    w.write_all(b"ping\n").expect("write");
    assert_eq!(read_line(&mut r), "ping\n", "B is still open and served");
    assert!(
        ev.try_recv().is_err(),
        "a stale id reached a connection (woken or closed)"
    );
    srv.stop();
}

// ----- 5. max input -----------------------------------------------------------------------

#[test]
fn input_limit_closes_only_the_offender() {
    const LIMIT: usize = 64 << 10;
    let (srv, ev) = probe_server(builder().max_input(LIMIT));

    let good = srv.connect();
    let good_id = expect_opened(&ev);
    let mut good_r = BufReader::new(good.try_clone().expect("clone"));
    let mut good_w = good;
    good_w.write_all(b"before\n").expect("write");
    assert_eq!(read_line(&mut good_r), "before\n");

    let hog = srv.connect();
    let hog_id = expect_opened(&ev);
    let writer = {
        let mut w = hog.try_clone().expect("clone");
        thread::spawn(move || -> io::Result<()> {
            let mut data = vec![b'x'; 1 << 20];
            data[..3].copy_from_slice(b"HOG");
            w.write_all(&data)
        })
    };
    match next_ev(&ev) {
        Ev::Closed {
            id,
            err,
            input_limit,
        } => {
            assert_eq!(id, hog_id, "the wrong connection was closed");
            assert!(input_limit, "closed with {err:?}, not the input limit");
        }
        other => panic!("expected the hog's Closed, got {other:?}"),
    }
    // The hog sees its connection end (EOF or reset), without ever getting data.
    let mut hog_r = hog;
    let mut sink = [0u8; 4096];
    match hog_r.read(&mut sink) {
        Ok(0) => {}
        Ok(n) => panic!("the hog received {n} bytes"),
        Err(e) if is_timeout(&e) => panic!("the hog's connection is still open"),
        Err(_) => {}
    }
    // Its writes may fail (reset) or may all have fit in the kernel buffers.
    let _ = writer.join().expect("writer panicked");

    good_w.write_all(b"after\n").expect("write");
    assert_eq!(
        read_line(&mut good_r),
        "after\n",
        "the good connection broke"
    );
    if let Ok(e) = ev.try_recv() {
        panic!("unexpected event {e:?} (good connection is {good_id})");
    }
    srv.stop();
}

// ----- 6. descriptor exhaustion (EMFILE) ----------------------------------------------------

const EMFILE_CHILD_ENV: &str = "WIRELOOP_EMFILE_CHILD";
const EMFILE_CHILD_OK: &str = "EMFILE child: recovered";

/// Runs the body in a child process (this test binary, re-run on this test alone), so the
/// lowered descriptor limit cannot disturb the other tests.
#[test]
fn emfile_recovery() {
    if std::env::var_os(EMFILE_CHILD_ENV).is_some() {
        emfile_child();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "emfile_recovery",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EMFILE_CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let limit = 4 * WAIT;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    let report = format!("--- child stdout:\n{out}\n--- child stderr:\n{err}");
    let status = status.unwrap_or_else(|| panic!("the child ran over {limit:?}\n{report}"));
    assert!(status.success(), "the child failed: {status}\n{report}");
    assert!(
        out.contains(EMFILE_CHILD_OK),
        "the child did not run the test body\n{report}"
    );
    println!("{report}");
}

fn drain(r: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = BufReader::new(r).read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// CPU time (user + system) of this whole process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn nofile_limit() -> libc::rlimit {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    assert_eq!(rc, 0, "getrlimit");
    rl
}

fn set_nofile_limit(rl: libc::rlimit) {
    // SAFETY: plain syscall on a valid struct.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// The soft limit under which exactly `free` descriptor numbers are unused (new descriptors
/// take the lowest free number, and must be below the limit).
fn limit_leaving_free(free: usize) -> u64 {
    let max = nofile_limit().rlim_cur as i32;
    let mut unused = 0;
    for fd in 0..max {
        // SAFETY: F_GETFD only asks whether `fd` is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            unused += 1;
            if unused == free {
                return fd as u64 + 1;
            }
        }
    }
    panic!("fewer than {free} descriptors available");
}

fn connect_socket(s: Socket, addr: SocketAddr) -> TcpStream {
    s.connect(&addr.into()).expect("connect");
    let s = TcpStream::from(s);
    setup_client(&s);
    s
}

fn expect_echo(c: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    assert_eq!(back, msg, "echo differs");
    Ok(())
}

fn emfile_child() {
    /// Descriptors left to the server: it can accept exactly this many connections.
    const FREE: usize = 10;
    /// Connections made past that: they wait in the listen backlog.
    const STUCK: usize = 6;
    const STUCK_FOR: Duration = Duration::from_secs(1);

    let stats = Arc::new(EchoStats::default());
    let s2 = stats.clone();
    let srv = TestServer::start(builder(), move |_| Echo(s2.clone()));
    // The clients live in this process too: make their sockets before lowering the limit,
    // so only the server's accepts compete for the few descriptors left.
    let mut sockets: Vec<Socket> = (0..FREE + STUCK + 1)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket"))
        .collect();
    let saved = nofile_limit();
    let soft = limit_leaving_free(FREE);
    set_nofile_limit(libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: saved.rlim_max,
    });
    println!("RLIMIT_NOFILE lowered to {soft}: {FREE} descriptors free");

    let mut served = Vec::new();
    for i in 0..FREE {
        let mut c = connect_socket(sockets.pop().expect("socket"), srv.addr);
        let msg = format!("served {i}\n");
        c.write_all(msg.as_bytes()).expect("write");
        expect_echo(&mut c, msg.as_bytes())
            .unwrap_or_else(|e| panic!("connection {i} (of {FREE} that fit) not echoed: {e}"));
        served.push(c);
    }
    assert_eq!(srv.handle.connections(), FREE);

    // Past the limit: connections complete in the kernel but the server cannot accept them.
    let mut stuck = Vec::new();
    for i in 0..STUCK {
        let mut c = connect_socket(sockets.pop().expect("socket"), srv.addr);
        c.write_all(format!("stuck {i}\n").as_bytes())
            .expect("write");
        stuck.push(c);
    }
    let (cpu0, t0) = (cpu_time(), Instant::now());
    stuck[0].set_read_timeout(Some(STUCK_FOR)).expect("timeout");
    let mut b = [0u8; 64];
    match stuck[0].read(&mut b) {
        Err(e) if is_timeout(&e) => {}
        other => panic!("a connection past the descriptor limit was served: {other:?}"),
    }
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    println!("stuck for {wall:?}, process CPU meanwhile {cpu:?}");
    assert!(
        cpu.as_secs_f64() < 0.3 * wall.as_secs_f64(),
        "the server spins while it cannot accept: {cpu:?} CPU in {wall:?}"
    );
    assert_eq!(srv.handle.connections(), FREE, "accepted past the limit?");
    for c in &mut stuck[1..] {
        c.set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
        match c.read(&mut b) {
            Err(e) if is_timeout(&e) => {}
            other => panic!("a connection past the descriptor limit was served: {other:?}"),
        }
    }

    // Free descriptors: the backlog is accepted and served, and new connections work again.
    drop(served);
    for (i, c) in stuck.iter_mut().enumerate() {
        c.set_read_timeout(Some(WAIT)).expect("timeout");
        expect_echo(c, format!("stuck {i}\n").as_bytes())
            .unwrap_or_else(|e| panic!("backlogged connection {i} never served: {e}"));
    }
    let mut fresh = connect_socket(sockets.pop().expect("socket"), srv.addr);
    fresh.write_all(b"fresh\n").expect("write");
    expect_echo(&mut fresh, b"fresh\n").expect("a new connection after recovery");
    assert_eq!(srv.handle.connections(), STUCK + 1);

    set_nofile_limit(saved);
    drop((stuck, fresh));
    srv.stop();
    println!("{EMFILE_CHILD_OK}");
}

// ----- 7. backpressure through Control ----------------------------------------------------

const BLOCKS: usize = 1000;
const BLOCK: usize = 4096;

/// Block `i` of the Control stream: its number, then position-dependent filler.
fn block(i: usize, buf: &mut [u8]) {
    fill(buf, (i * BLOCK) as u64);
    let head = format!("{i:07}\n");
    buf[..head.len()].copy_from_slice(head.as_bytes());
}

#[derive(Debug)]
enum TickEv {
    Queued {
        id: ConnId,
        all_written: bool,
        queued: Option<usize>,
        close_ok: bool,
    },
    /// A `ctl.write` on a connection closed in an earlier tick: must be refused.
    LateWrite(bool),
    Closed(ConnId, Option<String>),
}

/// On each tick, writes `BLOCKS` blocks to every connection opened since the last tick, then
/// closes it; a tick later tries (and must fail) to write to it again.
struct Ticker {
    fresh: Vec<ConnId>,
    closing: Vec<ConnId>,
    ev: Sender<TickEv>,
}

impl Handler for Ticker {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.fresh.push(conn.id());
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let n = conn.input().len();
        conn.consume(n);
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let _ = self
            .ev
            .send(TickEv::Closed(conn.id(), err.map(|e| e.to_string())));
    }

    fn tick(&mut self, ctl: &mut Control<'_, ()>) -> (Option<Duration>, Action) {
        for id in self.closing.drain(..) {
            let _ = self.ev.send(TickEv::LateWrite(ctl.write(id, b"late")));
        }
        let mut buf = vec![0u8; BLOCK];
        for id in std::mem::take(&mut self.fresh) {
            let mut all_written = true;
            for i in 0..BLOCKS {
                block(i, &mut buf);
                all_written &= ctl.write(id, &buf);
            }
            let queued = ctl.output_len(id);
            let close_ok = ctl.close(id);
            self.closing.push(id);
            let _ = self.ev.send(TickEv::Queued {
                id,
                all_written,
                queued,
                close_ok,
            });
        }
        (Some(Duration::from_millis(10)), Action::None)
    }
}

#[test]
fn control_writes_then_close_are_all_delivered() {
    let (tx, ev) = mpsc::channel();
    let srv = TestServer::start(builder().close_linger(Duration::from_secs(30)), move |_| {
        Ticker {
            fresh: Vec::new(),
            closing: Vec::new(),
            ev: tx.clone(),
        }
    });
    let mut client = srv.connect();
    let recv = || {
        ev.recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no tick event within {WAIT:?}: {e}"))
    };
    let id = match recv() {
        TickEv::Queued {
            id,
            all_written,
            queued,
            close_ok,
        } => {
            assert!(all_written, "a ctl.write to an open connection was refused");
            // Control writes take effect after the callback: all of it is still queued.
            assert_eq!(queued, Some(BLOCKS * BLOCK));
            assert!(close_ok, "ctl.close on an open connection was refused");
            id
        }
        other => panic!("expected Queued, got {other:?}"),
    };

    let mut got = vec![0u8; BLOCK];
    let mut want = vec![0u8; BLOCK];
    for i in 0..BLOCKS {
        client
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("reading block {i}: {e}"));
        block(i, &mut want);
        assert!(got == want, "block {i} differs");
    }
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("EOF after the last block");
    assert!(rest.is_empty(), "{} bytes after the last block", rest.len());

    let (mut late, mut closed) = (None, None);
    while late.is_none() || closed.is_none() {
        match recv() {
            TickEv::LateWrite(ok) => late = Some(ok),
            TickEv::Closed(c, err) => {
                assert_eq!(c, id);
                closed = Some(err);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        late,
        Some(false),
        "ctl.write accepted on a closed connection"
    );
    assert_eq!(closed, Some(None), "the close was not clean");
    srv.stop();
}

// ----- links -------------------------------------------------------------------------------

/// Line commands: `link N` links this connection with the N-th one opened, `unlink` ends
/// its link, `flood` queues 4 MiB to it, `tell TEXT` writes `TEXT` to its linked partner;
/// any other line is echoed.
#[derive(Default)]
struct Linker {
    opened: Vec<ConnId>,
}

impl Handler for Linker {
    type State = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.opened.push(conn.id());
        let n = (self.opened.len() - 1).to_string();
        conn.write(format!("{n}\n").as_bytes());
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        while let Some(end) = conn.input().iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&conn.input()[..=end]).into_owned();
            conn.consume(end + 1);
            let cmd = line.trim_end();
            if let Some(n) = cmd.strip_prefix("link ") {
                let peer = n
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.opened.get(i).copied());
                let ok = peer.is_some_and(|p| conn.link(p));
                conn.write(if ok { b"linked\n" } else { b"no\n" });
            } else if cmd == "unlink" {
                conn.unlink();
                conn.write(b"unlinked\n");
            } else if cmd == "flood" {
                conn.write(&vec![b'x'; 4 << 20]);
            } else if let Some(text) = cmd.strip_prefix("tell ") {
                if let Some(p) = conn.linked() {
                    conn.control().write(p, format!("{text}\n").as_bytes());
                }
            } else {
                conn.write(line.as_bytes());
            }
        }
        Action::None
    }
}

/// Opens a client of the `Linker` server and reads its index line.
fn linker_client(srv: &TestServer) -> (TcpStream, BufReader<TcpStream>) {
    let s = srv.connect();
    SockRef::from(&s)
        .set_recv_buffer_size(64 << 10)
        .expect("SO_RCVBUF");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    read_line(&mut r);
    (s, r)
}

/// Asserts that nothing arrives within a short bounded window (the connection is held back).
fn assert_silent(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    let mut b = [0u8; 1];
    match (&*s).read(&mut b) {
        Err(e) if is_timeout(&e) => {}
        other => panic!("expected no answer while held back, got {other:?}"),
    }
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
}

/// A connection whose linked partner moves on (links elsewhere, or unlinks) is released:
/// it is read again even though its former partner's output is still backed up, exactly
/// what a proxy needs when a pooled upstream connection passes from one client to another.
#[test]
fn relinking_releases_the_former_partner() {
    // A small send buffer: the kernel must not absorb the flood whatever its autotuning.
    let srv = TestServer::start(
        builder()
            .output_water_marks(256 << 10, 64 << 10)
            .send_buffer_size(64 << 10),
        |_| Linker::default(),
    );
    let (mut up, mut up_r) = linker_client(&srv); // 0: the "upstream"
    let (mut a, mut a_r) = linker_client(&srv); // 1: a client that stops reading
    let (mut b, mut b_r) = linker_client(&srv); // 2: the next client

    a.write_all(b"link 0\n").unwrap();
    assert_eq!(read_line(&mut a_r), "linked\n");
    a.write_all(b"flood\n").unwrap(); // a never reads it: its output stays backed up
    up.write_all(b"ping\n").unwrap();
    assert_silent(&up); // held back by a's backlog

    b.write_all(b"link 0\n").unwrap();
    assert_eq!(read_line(&mut b_r), "linked\n");
    assert_eq!(
        read_line(&mut up_r),
        "ping\n",
        "released when relinked to b"
    );

    // And an explicit unlink releases too: link again to a, then unlink from a's side.
    up.write_all(b"link 1\n").unwrap();
    assert_eq!(read_line(&mut up_r), "linked\n");
    up.write_all(b"pong\n").unwrap();
    assert_silent(&up);
    drop(a_r);
    let mut c = BufReader::new(b.try_clone().unwrap());
    b.write_all(b"link 1\n").unwrap(); // b takes a: up loses its link
    assert_eq!(read_line(&mut c), "linked\n");
    assert_eq!(
        read_line(&mut up_r),
        "pong\n",
        "released when its partner relinked"
    );
    up.write_all(b"unlink\n").unwrap();
    assert_eq!(read_line(&mut up_r), "unlinked\n");
    drop(a);
    srv.stop();
}

/// A linked connection is read while its own output is over the high-water mark: what it
/// reads goes to its partner, whose output decides. Pausing it on its own output too
/// deadlocked tcp-proxy in front of an echo upstream (the proxy stopped reading the
/// upstream because the upstream did not read, and the upstream did not read because the
/// proxy did not read its echo; tests/tcp_proxy.rs hit it about one run in three).
#[test]
fn linked_connection_reads_while_its_own_output_is_backed_up() {
    let srv = TestServer::start(
        builder()
            .output_water_marks(256 << 10, 64 << 10)
            .send_buffer_size(64 << 10),
        |_| Linker::default(),
    );
    let (mut up, mut up_r) = linker_client(&srv); // 0: an upstream that stops reading
    let (mut a, mut a_r) = linker_client(&srv); // 1: the client, which reads

    a.write_all(b"link 0\n").unwrap();
    assert_eq!(read_line(&mut a_r), "linked\n");
    // 4 MiB for `up`, which reads one byte only: its connection's output stays far above
    // the high-water mark (socket buffers of 64 KiB each way), so on its own it would be
    // paused.
    up.write_all(b"flood\n").unwrap();
    let mut first = [0u8; 1];
    up_r.read_exact(&mut first).expect("the flood starts");
    assert_eq!(&first, b"x");
    up.write_all(b"tell hello\n").unwrap();
    assert_eq!(
        read_line(&mut a_r),
        "hello\n",
        "the linked connection was not read while its own output was backed up"
    );
    drop((up, up_r, a));
    srv.stop();
}
