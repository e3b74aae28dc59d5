//! Outbound connections (`Control::dial`, `Conn::dial`, `Handle::dial`) over real sockets on
//! loopback: tcp4, tcp6 and unix targets, refused and timed-out connects, names resolved
//! through a real test DNS server, writes queued before the connect, and exactly one
//! `closed` per dialed id.
//!
//! The server under test runs a `Dialer` handler with two listeners: connections to
//! listener 0 carry line commands ("dial ADDR TIMEOUT_MS TAG PAYLOAD SHUT", "selfdial ADDR")
//! that make the loop dial with `Conn::dial`; connections to listener 1 are echoed. A plan
//! given at start-up is dialed from `serving` with `Control::dial`. Every `opened`, `data`,
//! `eof` and `closed` is reported over a channel, and the tests wait on that channel (and
//! on sockets) with bounded timeouts: nothing here synchronises by sleeping.
#![cfg(feature = "dns")] // dials names through ResolverConfig::nameservers

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use common::dns::TestDns;
use common::{assert_same_bytes, ipv6_loopback_available, pattern, unique_sock_path, TIMEOUT};
use wireloop::{
    Action, Conn, ConnId, Control, DialOptions, Error, Handler, Loops, NetAddr, ResolverConfig,
    Server,
};

// ----- the handler under test ------------------------------------------------------------

/// The state every connection starts with; dials give their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tag(u32);

/// What a `wireloop::Error` said, in the terms of its predicates.
#[derive(Clone, Debug)]
struct ErrInfo {
    connect: bool,
    refused: bool,
    dns: bool,
    not_found: bool,
    timeout: bool,
    config: bool,
    msg: String,
}

impl ErrInfo {
    fn of(e: &Error) -> ErrInfo {
        ErrInfo {
            connect: e.is_connect(),
            refused: e.is_refused(),
            dns: e.is_dns(),
            not_found: e.is_not_found(),
            timeout: e.is_timeout(),
            config: e.is_config(),
            msg: e.to_string(),
        }
    }
}

#[derive(Debug)]
enum Ev {
    /// A dial made by the loop (from `serving` or a command) returned.
    Dialed {
        tag: Tag,
        res: Result<ConnId, ErrInfo>,
        /// What `write` (of the payload, right after the dial) returned.
        wrote: bool,
        /// What `shutdown_write` (right after the dial) returned.
        shut: bool,
    },
    Opened {
        id: ConnId,
        tag: Tag,
        dialed: bool,
        addr_index: usize,
        loop_index: usize,
        peer: Option<NetAddr>,
    },
    Data {
        id: ConnId,
        bytes: Vec<u8>,
    },
    Eof {
        id: ConnId,
    },
    /// `woken`, with the output the connection still held.
    Woken {
        id: ConnId,
        queued: usize,
    },
    Closed {
        id: ConnId,
        tag: Tag,
        err: Option<ErrInfo>,
        at: Instant,
    },
    /// `Handle::dial` called from a callback on the loop.
    HandleDialOnLoop {
        res: Result<ConnId, ErrInfo>,
        elapsed: Duration,
    },
}

impl Ev {
    fn id(&self) -> Option<ConnId> {
        match self {
            Ev::Opened { id, .. }
            | Ev::Data { id, .. }
            | Ev::Eof { id }
            | Ev::Woken { id, .. }
            | Ev::Closed { id, .. } => Some(*id),
            Ev::Dialed { .. } | Ev::HandleDialOnLoop { .. } => None,
        }
    }
}

/// One dial to make: where, within what, with which state, what to write and whether to
/// half-close right after dialing (before the connect completes).
#[derive(Clone, Debug)]
struct DialSpec {
    addr: String,
    timeout: Duration,
    tag: Tag,
    payload: Option<Vec<u8>>,
    shut: bool,
    /// Close the connection right after dialing (and writing).
    close: bool,
}

impl DialSpec {
    fn new(addr: &str, tag: u32) -> DialSpec {
        DialSpec {
            addr: addr.to_string(),
            timeout: Duration::from_secs(10),
            tag: Tag(tag),
            payload: None,
            shut: false,
            close: false,
        }
    }

    fn timeout(mut self, d: Duration) -> DialSpec {
        self.timeout = d;
        self
    }

    fn payload(mut self, p: &[u8]) -> DialSpec {
        self.payload = Some(p.to_vec());
        self
    }

    fn shut(mut self) -> DialSpec {
        self.shut = true;
        self
    }

    fn close(mut self) -> DialSpec {
        self.close = true;
        self
    }

    /// The command line that makes the loop dial this (payload: no spaces, `-` for none).
    fn command(&self) -> String {
        let payload = match &self.payload {
            Some(p) => String::from_utf8(p.clone()).expect("a text payload"),
            None => "-".to_string(),
        };
        format!(
            "dial {} {} {} {} {} {}\n",
            self.addr,
            self.timeout.as_millis(),
            self.tag.0,
            payload,
            u8::from(self.shut),
            u8::from(self.close)
        )
    }

    fn parse(line: &str) -> Option<DialSpec> {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() != 7 || w[0] != "dial" {
            return None;
        }
        Some(DialSpec {
            addr: w[1].to_string(),
            timeout: Duration::from_millis(w[2].parse().ok()?),
            tag: Tag(w[3].parse().ok()?),
            payload: (w[4] != "-").then(|| w[4].as_bytes().to_vec()),
            shut: w[5] == "1",
            close: w[6] == "1",
        })
    }
}

/// Listener 0: commands; listener 1: echo. Dialed connections report what they receive.
struct Dialer {
    tx: Sender<Ev>,
    /// Dialed from `serving` on loop 0.
    plan: Vec<DialSpec>,
}

impl Dialer {
    /// Dials `spec` through `ctl` and reports the result.
    fn dial(&self, ctl: &mut Control<'_, Tag>, spec: &DialSpec) {
        let opts = DialOptions::new().timeout(spec.timeout);
        let res = ctl.dial(&spec.addr, opts, spec.tag);
        let (mut wrote, mut shut) = (false, false);
        if let Ok(id) = res {
            if let Some(p) = &spec.payload {
                wrote = ctl.write(id, p);
            }
            if spec.shut {
                shut = ctl.shutdown_write(id);
            }
            if spec.close {
                assert!(ctl.close(id), "Control::close on a connecting id");
            }
        }
        let _ = self.tx.send(Ev::Dialed {
            tag: spec.tag,
            res: res.map_err(|e| ErrInfo::of(&e)),
            wrote,
            shut,
        });
    }

    fn command(&self, conn: &mut Conn<'_, Tag>, line: &str) {
        if let Some(addr) = line.strip_prefix("selfdial ") {
            // Must fail at once: waiting for this loop from this loop would deadlock.
            let start = Instant::now();
            let res = conn.handle().dial(addr.trim(), DialOptions::new());
            let _ = self.tx.send(Ev::HandleDialOnLoop {
                res: res.map_err(|e| ErrInfo::of(&e)),
                elapsed: start.elapsed(),
            });
            return;
        }
        let Some(spec) = DialSpec::parse(line) else {
            panic!("bad command {line:?}");
        };
        // `Conn::dial` here (`serving` uses `Control::dial`).
        let opts = DialOptions::new().timeout(spec.timeout);
        let res = conn.dial(&spec.addr, opts, spec.tag);
        let (mut wrote, mut shut) = (false, false);
        if let Ok(id) = res {
            let mut ctl = conn.control();
            if let Some(p) = &spec.payload {
                wrote = ctl.write(id, p);
            }
            if spec.shut {
                shut = ctl.shutdown_write(id);
            }
            if spec.close {
                assert!(ctl.close(id), "Control::close on a connecting id");
            }
        }
        let _ = self.tx.send(Ev::Dialed {
            tag: spec.tag,
            res: res.map_err(|e| ErrInfo::of(&e)),
            wrote,
            shut,
        });
    }
}

impl Handler for Dialer {
    type State = Tag;

    fn serving(&mut self, ctl: &mut Control<'_, Tag>) -> Action {
        if ctl.loop_index() == 0 {
            for spec in &self.plan {
                self.dial(ctl, spec);
            }
        }
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, Tag>) -> Action {
        let _ = self.tx.send(Ev::Opened {
            id: conn.id(),
            tag: *conn.state,
            dialed: conn.is_dialed(),
            addr_index: conn.addr_index(),
            loop_index: conn.loop_index(),
            peer: conn.peer_addr().ok(),
        });
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Tag>) -> Action {
        if conn.is_dialed() {
            let _ = self.tx.send(Ev::Data {
                id: conn.id(),
                bytes: conn.input().to_vec(),
            });
            let n = conn.input().len();
            conn.consume(n);
            return Action::None;
        }
        if conn.addr_index() == 1 {
            let (input, mut out) = conn.split();
            out.write(input);
            let n = input.len();
            conn.consume(n);
            return Action::None;
        }
        // Commands: whole lines only.
        while let Some(nl) = conn.input().iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&conn.input()[..nl]).into_owned();
            conn.consume(nl + 1);
            self.command(conn, &line);
        }
        Action::None
    }

    fn eof(&mut self, conn: &mut Conn<'_, Tag>) -> Action {
        if conn.is_dialed() {
            let _ = self.tx.send(Ev::Eof { id: conn.id() });
        }
        Action::Close
    }

    fn woken(&mut self, conn: &mut Conn<'_, Tag>) -> Action {
        let _ = self.tx.send(Ev::Woken {
            id: conn.id(),
            queued: conn.output_len(),
        });
        Action::None
    }

    fn closed(&mut self, conn: &mut Conn<'_, Tag>, err: Option<Error>) {
        let _ = self.tx.send(Ev::Closed {
            id: conn.id(),
            tag: *conn.state,
            err: err.as_ref().map(ErrInfo::of),
            at: Instant::now(),
        });
    }
}

// ----- harness ---------------------------------------------------------------------------

/// The handler's reports, with the ones a test has not asked for yet kept aside.
struct Events {
    rx: Receiver<Ev>,
    stash: VecDeque<Ev>,
}

impl Events {
    /// The first report (stashed or new) for which `pred` holds, within [`TIMEOUT`].
    #[track_caller]
    fn take(&mut self, what: &str, pred: impl Fn(&Ev) -> bool) -> Ev {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i).expect("stashed event");
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) if pred(&ev) => return ev,
                Ok(ev) => self.stash.push_back(ev),
                Err(e) => panic!("waiting for {what}: {e:?}; unclaimed: {:?}", self.stash),
            }
        }
    }

    /// The id of the loop's dial tagged `tag` (which must have succeeded).
    #[track_caller]
    fn dialed(&mut self, tag: u32) -> (ConnId, bool, bool) {
        match self.take(
            "a dial result",
            |e| matches!(e, Ev::Dialed { tag: t, .. } if t.0 == tag),
        ) {
            Ev::Dialed {
                res: Ok(id),
                wrote,
                shut,
                ..
            } => (id, wrote, shut),
            other => panic!("dial {tag} failed: {other:?}"),
        }
    }

    /// `opened` of `id`: (state, peer address). Checks it is a dialed connection.
    #[track_caller]
    fn opened(&mut self, id: ConnId) -> (Tag, Option<NetAddr>, usize) {
        match self.take(
            "opened",
            |e| matches!(e, Ev::Opened { id: i, .. } | Ev::Closed { id: i, .. } if *i == id),
        ) {
            Ev::Opened {
                tag,
                dialed,
                addr_index,
                loop_index,
                peer,
                ..
            } => {
                assert!(dialed, "{id}: is_dialed() is false");
                assert_eq!(addr_index, usize::MAX, "{id}: addr_index of a dialed conn");
                (tag, peer, loop_index)
            }
            other => panic!("{id}: closed before opened: {other:?}"),
        }
    }

    /// `closed` of `id`: (state, error, when). Fails if `opened` came first for it.
    #[track_caller]
    fn closed_unopened(&mut self, id: ConnId) -> (Tag, Option<ErrInfo>, Instant) {
        match self.take(
            "closed",
            |e| matches!(e, Ev::Opened { id: i, .. } | Ev::Closed { id: i, .. } if *i == id),
        ) {
            Ev::Closed { tag, err, at, .. } => (tag, err, at),
            other => panic!("{id}: expected a failed dial, got {other:?}"),
        }
    }

    /// `closed` of `id` (after whatever else happened to it).
    #[track_caller]
    /// The output connection `id` held when `woken` fired.
    fn woken(&mut self, id: ConnId) -> usize {
        match self.take(
            "woken",
            |e| matches!(e, Ev::Woken { id: i, .. } | Ev::Closed { id: i, .. } if *i == id),
        ) {
            Ev::Woken { queued, .. } => queued,
            other => panic!("{id}: expected woken, got {other:?}"),
        }
    }

    fn closed(&mut self, id: ConnId) -> Option<ErrInfo> {
        match self.take(
            "closed",
            |e| matches!(e, Ev::Closed { id: i, .. } if *i == id),
        ) {
            Ev::Closed { err, .. } => err,
            _ => unreachable!(),
        }
    }

    /// `n` bytes received on dialed connection `id` (over one or more `data` calls).
    #[track_caller]
    fn data(&mut self, id: ConnId, n: usize) -> Vec<u8> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.take(
                "data",
                |e| matches!(e, Ev::Data { id: i, .. } | Ev::Closed { id: i, .. } if *i == id),
            ) {
                Ev::Data { bytes, .. } => got.extend_from_slice(&bytes),
                other => panic!("{id}: closed after {} of {n} bytes: {other:?}", got.len()),
            }
        }
        assert_eq!(got.len(), n, "{id}: more data than expected");
        got
    }

    /// Whether a `closed` for `id` has been reported yet (without waiting).
    fn has_closed(&mut self, id: ConnId) -> bool {
        while let Ok(ev) = self.rx.try_recv() {
            self.stash.push_back(ev);
        }
        self.stash
            .iter()
            .any(|e| matches!(e, Ev::Closed { id: i, .. } if *i == id))
    }

    /// Everything reported and not yet claimed (call after the server stopped).
    fn rest(&mut self) -> Vec<Ev> {
        while let Ok(ev) = self.rx.try_recv() {
            self.stash.push_back(ev);
        }
        self.stash.drain(..).collect()
    }
}

/// A `Dialer` server (commands on listener 0, echo on listener 1) and its reports.
struct Rig {
    server: common::TestServer,
    ev: Events,
    cmd: TcpStream,
    echo_addr: SocketAddr,
}

impl Rig {
    fn start(loops: usize, dns: Option<SocketAddr>, plan: Vec<DialSpec>) -> Rig {
        let resolver = match dns {
            Some(a) => ResolverConfig::nameservers([a]),
            // No nameserver: a name lookup would fail, and never leaves the machine.
            None => ResolverConfig::nameservers([]),
        };
        let server = Server::builder()
            .listen("tcp://127.0.0.1:0")
            .and_then(|b| b.listen("tcp://127.0.0.1:0"))
            .expect("listen addresses")
            .loops(Loops::Fixed(loops))
            .resolver(resolver)
            .build()
            .expect("build the dialer server");
        let (tx, rx) = mpsc::channel();
        let server = common::TestServer::start(server, move |_| Dialer {
            tx: tx.clone(),
            plan: plan.clone(),
        });
        let cmd = connect_tcp(server.tcp_addr(0));
        let echo_addr = server.tcp_addr(1);
        Rig {
            server,
            ev: Events {
                rx,
                stash: VecDeque::new(),
            },
            cmd,
            echo_addr,
        }
    }

    /// Has the loop dial `spec` (with `Conn::dial`) and returns the new id.
    #[track_caller]
    fn dial(&mut self, spec: &DialSpec) -> ConnId {
        self.cmd
            .write_all(spec.command().as_bytes())
            .expect("send a command");
        self.ev.dialed(spec.tag.0).0
    }

    /// Stops the server (joining it) and returns what was reported and not claimed.
    fn stop(mut self) -> Vec<Ev> {
        drop(self.cmd);
        self.server.stop().expect("the dialer server stops cleanly");
        self.ev.rest()
    }
}

fn connect_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

/// Waits (at most `timeout`) until `fd` is readable: a listener has a connection to accept.
fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 || (r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted) {
            return false;
        }
    }
}

#[track_caller]
fn accept_tcp(l: &TcpListener) -> TcpStream {
    assert!(
        wait_readable(l.as_raw_fd(), TIMEOUT),
        "no connection to {:?} within {TIMEOUT:?}",
        l.local_addr()
    );
    let (s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

#[track_caller]
fn accept_unix(l: &UnixListener) -> UnixStream {
    assert!(
        wait_readable(l.as_raw_fd(), TIMEOUT),
        "no unix connection within {TIMEOUT:?}"
    );
    let (s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

/// A port on `ip` with nothing listening (bound, read, released).
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a probe listener")
        .port()
}

fn read_to_end<R: Read>(mut r: R) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).expect("read to EOF");
    v
}

/// A wireloop echo server on `addr`.
fn echo_server(addr: &str) -> common::TestServer {
    let server = Server::builder()
        .listen(addr)
        .expect("echo address")
        .build()
        .expect("build the echo server");
    common::TestServer::start(server, |_| common::Echo)
}

/// Both ways over a dialed connection to a plain socket: `send` bytes from the loop (via
/// `Handle::send`) arrive at `peer`, and bytes from `peer` arrive as `data`.
fn exchange<S: Read + Write>(rig: &mut Rig, id: ConnId, peer: &mut S, seed: u64) {
    let out = pattern(256 << 10, seed);
    assert!(rig.server.handle.send(id, out.clone()));
    let mut got = vec![0u8; out.len()];
    peer.read_exact(&mut got)
        .expect("the target reads the loop's bytes");
    assert_same_bytes(&got, &out, "loop -> target");
    let back = pattern(256 << 10, seed + 1);
    peer.write_all(&back).expect("the target writes");
    let got = rig.ev.data(id, back.len());
    assert_same_bytes(&got, &back, "target -> loop");
}

// ----- 1. tcp4, tcp6, unix --------------------------------------------------------------

#[test]
fn dial_tcp4_exchanges_data_both_ways() {
    let mut rig = Rig::start(1, None, Vec::new());
    let target = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let taddr = target.local_addr().unwrap();

    let id = rig.dial(&DialSpec::new(&format!("tcp4://{taddr}"), 7));
    let mut peer = accept_tcp(&target);
    let (tag, peer_addr, _) = rig.ev.opened(id);
    assert_eq!(tag, Tag(7), "state given at dial time");
    assert_eq!(peer_addr, Some(NetAddr::Inet(taddr)));
    exchange(&mut rig, id, &mut peer, 1);
    // The target closes: the dialed side sees EOF, then a clean close.
    drop(peer);
    rig.ev
        .take("eof", |e| matches!(e, Ev::Eof { id: i } if *i == id));
    assert!(rig.ev.closed(id).is_none(), "clean close after EOF");

    // Plain host:port (no scheme) to a wireloop echo server: here, the rig's own echo
    // listener, served by the same loop as the dialed connection.
    let echo = rig.echo_addr;
    let id = rig.dial(&DialSpec::new(&echo.to_string(), 8));
    let (tag, peer_addr, _) = rig.ev.opened(id);
    assert_eq!((tag, peer_addr), (Tag(8), Some(NetAddr::Inet(echo))));
    // The accepted end of that connection is not dialed and keeps its listener's index.
    match rig.ev.take("accepted echo conn", |e| {
        matches!(e, Ev::Opened { addr_index: 1, .. })
    }) {
        Ev::Opened { dialed, .. } => assert!(!dialed, "accepted connection is_dialed()"),
        _ => unreachable!(),
    }
    let msg = pattern(100_000, 3);
    assert!(rig.server.handle.send(id, msg.clone()));
    assert_same_bytes(&rig.ev.data(id, msg.len()), &msg, "echo through the loop");
    assert!(rig.server.handle.close(id));
    assert!(rig.ev.closed(id).is_none());
    rig.stop();
}

#[test]
fn dial_tcp6_exchanges_data_both_ways() {
    if !ipv6_loopback_available() {
        eprintln!("note: IPv6 loopback unavailable; skipping the tcp6 dial test");
        return;
    }
    let mut rig = Rig::start(1, None, Vec::new());
    let target = TcpListener::bind("[::1]:0").expect("bind [::1]");
    let taddr = target.local_addr().unwrap();
    let id = rig.dial(&DialSpec::new(&format!("tcp6://{taddr}"), 9));
    let mut peer = accept_tcp(&target);
    let (tag, peer_addr, _) = rig.ev.opened(id);
    assert_eq!((tag, peer_addr), (Tag(9), Some(NetAddr::Inet(taddr))));
    exchange(&mut rig, id, &mut peer, 10);
    peer.shutdown(Shutdown::Write).unwrap();
    assert!(rig.ev.closed(id).is_none());
    assert!(
        read_to_end(&mut peer).is_empty(),
        "clean close, no stray bytes"
    );
    rig.stop();
}

#[test]
fn dial_unix_exchanges_data_both_ways() {
    let mut rig = Rig::start(1, None, Vec::new());

    // A plain std listener.
    let path = unique_sock_path("dial-target");
    let _ = std::fs::remove_file(&path);
    let target = UnixListener::bind(&path).expect("bind unix target");
    let id = rig.dial(&DialSpec::new(&format!("unix://{}", path.display()), 11));
    let mut peer = accept_unix(&target);
    let (tag, peer_addr, _) = rig.ev.opened(id);
    assert_eq!(tag, Tag(11));
    assert_eq!(peer_addr, Some(NetAddr::Unix(Some(path.clone()))));
    exchange(&mut rig, id, &mut peer, 20);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());
    drop(target);
    let _ = std::fs::remove_file(&path);

    // A wireloop echo server on a unix socket.
    let path = unique_sock_path("dial-echo");
    let _ = std::fs::remove_file(&path);
    let echo = echo_server(&format!("unix://{}", path.display()));
    let id = rig.dial(&DialSpec::new(&format!("unix://{}", path.display()), 12));
    assert_eq!(rig.ev.opened(id).0, Tag(12));
    let msg = pattern(300_000, 21);
    assert!(rig.server.handle.send(id, msg.clone()));
    assert_same_bytes(&rig.ev.data(id, msg.len()), &msg, "unix echo");
    assert!(rig.server.handle.close(id));
    assert!(rig.ev.closed(id).is_none());
    rig.stop();
    echo.stop().expect("echo server stops");
    let _ = std::fs::remove_file(&path);
}

// ----- 2. refused --------------------------------------------------------------------------

#[test]
fn refused_dial_closes_with_refused_and_never_opens() {
    let mut rig = Rig::start(1, None, Vec::new());
    let port = free_port("127.0.0.1");
    let id = rig.dial(&DialSpec::new(&format!("127.0.0.1:{port}"), 5));
    let (tag, err, _) = rig.ev.closed_unopened(id);
    assert_eq!(tag, Tag(5), "closed sees the dial's state");
    let err = err.expect("a refused dial closes with an error");
    assert!(err.connect && err.refused, "{err:?}");
    assert!(!err.dns && !err.timeout, "{err:?}");

    let path = unique_sock_path("dial-nobody");
    let _ = std::fs::remove_file(&path);
    let id = rig.dial(&DialSpec::new(&format!("unix://{}", path.display()), 6));
    let err = rig.ev.closed_unopened(id).1.expect("an error");
    assert!(err.connect, "unix path with no listener: {err:?}");

    let rest = rig.stop();
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, Ev::Opened { dialed: true, .. })),
        "a failed dial opened: {rest:?}"
    );
}

// ----- 3. connect timeout -------------------------------------------------------------

/// A TCP listener with backlog 0 that is never accepted from, and its queue filled with
/// connects, so further SYNs are dropped (Linux) and a connect hangs. `None` if connects do
/// not hang on this machine.
fn full_backlog_listener() -> Option<(socket2::Socket, SocketAddr, Vec<TcpStream>)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).ok()?;
    l.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .ok()?;
    l.listen(0).ok()?;
    let addr = l.local_addr().ok()?.as_socket()?;
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Some((l, addr, fillers)),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn connect_timeout_closes_with_timeout() {
    let mut rig = Rig::start(1, None, Vec::new());
    let Some((_listener, addr, _fillers)) = full_backlog_listener() else {
        // Connects to a full backlog complete (or fail) here: the timeout cannot be forced
        // without a network namespace. Check only that such a dial ends one way or the other.
        eprintln!("note: connects to a full backlog do not hang here; weak timeout check");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let id = rig.dial(&DialSpec::new(&a.to_string(), 1).timeout(Duration::from_millis(300)));
        match rig.ev.take("opened or closed", |e| e.id() == Some(id)) {
            Ev::Opened { .. } => {}
            Ev::Closed { err, .. } => {
                let err = err.expect("an error");
                assert!(err.connect && err.timeout, "{err:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
        rig.stop();
        return;
    };
    let start = Instant::now();
    let id = rig.dial(&DialSpec::new(&addr.to_string(), 2).timeout(Duration::from_millis(300)));
    let (tag, err, at) = rig.ev.closed_unopened(id);
    let took = at - start;
    eprintln!("connect timeout of 300 ms reported after {took:?}");
    assert_eq!(tag, Tag(2));
    let err = err.expect("a timed-out dial closes with an error");
    assert!(err.connect && err.timeout, "{err:?}");
    assert!(!err.refused && !err.dns, "{err:?}");
    assert!(
        took >= Duration::from_millis(200) && took <= Duration::from_secs(3),
        "timed out after {took:?}, want about 300 ms"
    );
    rig.stop();
}

// ----- 4. names through the test DNS server -----------------------------------------------

#[test]
fn dial_by_name_a_aaaa_fallback() {
    let dns = TestDns::start();
    let mut rig = Rig::start(1, Some(dns.addr()), Vec::new());
    let target = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let port = target.local_addr().unwrap().port();
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    // A record.
    dns.add_a("v4.dial.test", Ipv4Addr::LOCALHOST);
    let id = rig.dial(&DialSpec::new(&format!("tcp://v4.dial.test:{port}"), 1));
    let mut peer = accept_tcp(&target);
    let (tag, peer_addr, _) = rig.ev.opened(id);
    assert_eq!((tag, peer_addr), (Tag(1), Some(NetAddr::Inet(v4))));
    exchange(&mut rig, id, &mut peer, 30);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // Two A records, the first refusing (nothing listens on 127.0.0.2), the second accepting.
    dns.add_a("multi.dial.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_a("multi.dial.test", Ipv4Addr::LOCALHOST);
    let id = rig.dial(&DialSpec::new(&format!("tcp4://multi.dial.test:{port}"), 2));
    let _peer = accept_tcp(&target);
    let (_, peer_addr, _) = rig.ev.opened(id);
    assert_eq!(
        peer_addr,
        Some(NetAddr::Inet(v4)),
        "fell back to the second address"
    );
    assert!(rig.server.handle.close(id));
    assert!(rig.ev.closed(id).is_none());

    if ipv6_loopback_available() {
        // AAAA only, through tcp6://, to a listener on [::1].
        let target6 = TcpListener::bind("[::1]:0").expect("bind [::1]");
        let a6 = target6.local_addr().unwrap();
        dns.add_aaaa("v6.dial.test", Ipv6Addr::LOCALHOST);
        let id = rig.dial(&DialSpec::new(
            &format!("tcp6://v6.dial.test:{}", a6.port()),
            3,
        ));
        let mut peer = accept_tcp(&target6);
        assert_eq!(rig.ev.opened(id).1, Some(NetAddr::Inet(a6)));
        exchange(&mut rig, id, &mut peer, 40);
        drop(peer);
        assert!(rig.ev.closed(id).is_none());

        // A and AAAA: IPv6 is tried first and refused (the target only listens on
        // 127.0.0.1), then IPv4 connects.
        dns.add_a("both.dial.test", Ipv4Addr::LOCALHOST);
        dns.add_aaaa("both.dial.test", Ipv6Addr::LOCALHOST);
        let id = rig.dial(&DialSpec::new(&format!("both.dial.test:{port}"), 4));
        let _peer = accept_tcp(&target);
        assert_eq!(rig.ev.opened(id).1, Some(NetAddr::Inet(v4)));
        assert!(rig.server.handle.close(id));
        assert!(rig.ev.closed(id).is_none());
    } else {
        eprintln!("note: IPv6 loopback unavailable; skipping the AAAA dials");
    }

    // Every address refuses: the last connect error is reported.
    dns.add_a("dead.dial.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_a("dead.dial.test", Ipv4Addr::new(127, 0, 0, 3));
    let id = rig.dial(&DialSpec::new(&format!("dead.dial.test:{port}"), 5));
    let err = rig.ev.closed_unopened(id).1.expect("an error");
    assert!(err.connect && err.refused && !err.dns, "{err:?}");

    // An unknown name.
    let id = rig.dial(&DialSpec::new(&format!("nope.dial.test:{port}"), 6));
    let (tag, err, _) = rig.ev.closed_unopened(id);
    assert_eq!(tag, Tag(6));
    let err = err.expect("an error");
    assert!(err.dns && err.not_found && err.connect, "{err:?}");
    assert!(!err.timeout && !err.refused, "{err:?}");
    assert!(
        err.msg.contains("nope.dial.test"),
        "names the address: {}",
        err.msg
    );

    // A name that exists but has no address of the wanted family.
    let id = rig.dial(&DialSpec::new(&format!("tcp6://v4.dial.test:{port}"), 7));
    let err = rig.ev.closed_unopened(id).1.expect("an error");
    assert!(err.dns && err.not_found, "{err:?}");

    assert!(dns.queries() > 0);
    let rest = rig.stop();
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, Ev::Opened { dialed: true, .. })),
        "unexpected opened: {rest:?}"
    );
}

#[test]
fn silent_nameserver_times_out_while_the_loop_keeps_serving() {
    let dns = TestDns::start();
    dns.set_silent("silent.dial.test");
    let mut rig = Rig::start(1, Some(dns.addr()), Vec::new());
    let start = Instant::now();
    let spec = DialSpec::new("silent.dial.test:80", 1).timeout(Duration::from_millis(500));
    let id = rig.dial(&spec);

    // The lookup is pending; the same (only) loop still serves an echo round trip.
    let mut c = connect_tcp(rig.echo_addr);
    c.write_all(b"still serving").unwrap();
    let mut buf = [0u8; 13];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still serving");
    let echoed = Instant::now();
    assert!(
        !rig.ev.has_closed(id),
        "the dial failed before the echo round trip"
    );

    let (_, err, at) = rig.ev.closed_unopened(id);
    let err = err.expect("an error");
    assert!(err.timeout && err.connect, "{err:?}");
    assert!(!err.not_found && !err.refused, "{err:?}");
    assert!(at > echoed);
    let took = at - start;
    eprintln!("silent nameserver: {} after {took:?}", err.msg);
    assert!(
        took >= Duration::from_millis(400) && took <= Duration::from_secs(3),
        "timed out after {took:?}, want about 500 ms"
    );
    assert!(dns.queries() > 0, "the nameserver was asked");
    drop(c);
    rig.stop();
}

// ----- 5. literals and paths never query the resolver ----------------------------------

#[test]
fn literals_and_unix_paths_do_not_touch_the_resolver() {
    let dns = TestDns::start();
    let mut rig = Rig::start(1, Some(dns.addr()), Vec::new());

    let t4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let id = rig.dial(&DialSpec::new(
        &format!("tcp://{}", t4.local_addr().unwrap()),
        1,
    ));
    let _p = accept_tcp(&t4);
    rig.ev.opened(id);

    if ipv6_loopback_available() {
        let t6 = TcpListener::bind("[::1]:0").unwrap();
        let id = rig.dial(&DialSpec::new(
            &format!("tcp://{}", t6.local_addr().unwrap()),
            2,
        ));
        let _p = accept_tcp(&t6);
        rig.ev.opened(id);
    }

    let path = unique_sock_path("dial-nodns");
    let _ = std::fs::remove_file(&path);
    let tu = UnixListener::bind(&path).unwrap();
    let id = rig.dial(&DialSpec::new(&format!("unix://{}", path.display()), 3));
    let _p = accept_unix(&tu);
    rig.ev.opened(id);

    // Failed literal dials do not fall back to the resolver either.
    let id = rig.dial(&DialSpec::new(
        &format!("127.0.0.1:{}", free_port("127.0.0.1")),
        4,
    ));
    assert!(rig.ev.closed_unopened(id).1.expect("refused").refused);
    assert_eq!(dns.queries(), 0, "an IP literal or unix path was looked up");

    // The counter does count: a name is looked up.
    dns.add_a("counted.dial.test", Ipv4Addr::LOCALHOST);
    let id = rig.dial(&DialSpec::new(
        &format!("counted.dial.test:{}", t4.local_addr().unwrap().port()),
        5,
    ));
    let _p = accept_tcp(&t4);
    rig.ev.opened(id);
    assert!(dns.queries() > 0);
    rig.stop();
    let _ = std::fs::remove_file(&path);
}

// ----- 6. Handle::dial -------------------------------------------------------------------

#[test]
fn handle_dial_from_another_thread() {
    let mut rig = Rig::start(2, None, Vec::new());
    let handle = rig.server.handle.clone();
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let taddr = target.local_addr().unwrap();
    let addr = format!("tcp://{taddr}");

    // Default state, on the loop asked for.
    let id = handle
        .dial(&addr, DialOptions::new().on_loop(1))
        .expect("Handle::dial");
    assert_eq!(id.loop_index(), 1);
    let mut peer = accept_tcp(&target);
    let (tag, peer_addr, loop_index) = rig.ev.opened(id);
    assert_eq!((tag, loop_index), (Tag::default(), 1));
    assert_eq!(peer_addr, Some(NetAddr::Inet(taddr)));
    exchange(&mut rig, id, &mut peer, 50);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // With a state of the handler's type.
    let id = handle
        .dial_with_state(&addr, DialOptions::new().on_loop(0), Tag(42))
        .expect("Handle::dial_with_state");
    assert_eq!(id.loop_index(), 0);
    let _peer = accept_tcp(&target);
    assert_eq!(rig.ev.opened(id).0, Tag(42));
    assert!(handle.close(id));
    assert!(rig.ev.closed(id).is_none());

    // Without `on_loop`, dials still land on a loop and open.
    let ids: Vec<ConnId> = (0..4)
        .map(|_| handle.dial(&addr, DialOptions::new()).expect("dial"))
        .collect();
    let _peers: Vec<TcpStream> = ids.iter().map(|_| accept_tcp(&target)).collect();
    for id in &ids {
        rig.ev.opened(*id);
        assert!(handle.close(*id));
        assert!(rig.ev.closed(*id).is_none());
    }

    // A failing dial still returns an id; the failure comes through `closed`.
    let refused = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let id = handle
        .dial_with_state(&refused, DialOptions::new(), Tag(3))
        .expect("the id comes back at once");
    let (tag, err, _) = rig.ev.closed_unopened(id);
    assert_eq!(tag, Tag(3));
    assert!(err.expect("refused").refused);

    // Errors returned at once.
    let e = handle
        .dial_with_state(&addr, DialOptions::new(), 42u32)
        .expect_err("a state of the wrong type");
    assert!(e.is_config(), "{e}");
    let e = handle
        .dial(&addr, DialOptions::new().on_loop(2))
        .expect_err("no loop 2");
    assert!(e.is_config(), "{e}");
    let e = handle
        .dial("tcp://127.0.0.1:notaport", DialOptions::new())
        .expect_err("a bad address");
    assert!(e.is_addr(), "{e}");
    let e = handle
        .dial("udp://127.0.0.1:9", DialOptions::new())
        .expect_err("udp cannot be dialed");
    assert!(e.is_config(), "{e}");

    // From a loop callback: an error, not a deadlock.
    rig.cmd
        .write_all(format!("selfdial {addr}\n").as_bytes())
        .unwrap();
    match rig.ev.take("Handle::dial on the loop", |e| {
        matches!(e, Ev::HandleDialOnLoop { .. })
    }) {
        Ev::HandleDialOnLoop { res, elapsed } => {
            let e = res.expect_err("Handle::dial on a loop thread must fail");
            assert!(e.config, "{e:?}");
            assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
        }
        _ => unreachable!(),
    }
    // ... and the loop is still alive.
    let id = handle.dial(&addr, DialOptions::new().on_loop(0)).unwrap();
    let _peer = accept_tcp(&target);
    rig.ev.opened(id);

    rig.stop();
    // After the server stopped, dialing reports an error instead of hanging.
    assert!(handle.dial(&addr, DialOptions::new()).is_err());
}

// ----- 7. writes queued before the connect ----------------------------------------------

#[test]
fn output_written_before_connect_is_sent_after() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let taddr = target.local_addr().unwrap();
    let dns = TestDns::start();
    dns.add_a("early.dial.test", Ipv4Addr::LOCALHOST);
    // From `serving`, with `Control::dial` and `Control::write` right after it.
    let plan = vec![DialSpec::new(&taddr.to_string(), 1).payload(b"hello")];
    let mut rig = Rig::start(1, Some(dns.addr()), plan);
    let (id, wrote, _) = rig.ev.dialed(1);
    assert!(wrote, "Control::write on a connecting id");
    let mut peer = accept_tcp(&target);
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
    rig.ev.opened(id);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // Through a name: the bytes wait for the lookup and the connect.
    let id =
        rig.dial(&DialSpec::new(&format!("early.dial.test:{}", taddr.port()), 2).payload(b"hello"));
    let mut peer = accept_tcp(&target);
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
    rig.ev.opened(id);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // Write and half-close before the connect: the target gets the bytes, then EOF, and
    // can still answer.
    let spec = DialSpec::new(&taddr.to_string(), 3)
        .payload(b"hello")
        .shut();
    rig.cmd.write_all(spec.command().as_bytes()).unwrap();
    let (id, wrote, shut) = rig.ev.dialed(3);
    assert!(wrote && shut);
    let mut peer = accept_tcp(&target);
    assert_eq!(read_to_end(&mut peer), b"hello", "bytes then EOF");
    rig.ev.opened(id);
    peer.write_all(b"answer").unwrap();
    assert_eq!(rig.ev.data(id, 6), b"answer");
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // The same through a name (the socket does not even exist at the time).
    let spec = DialSpec::new(&format!("early.dial.test:{}", taddr.port()), 4)
        .payload(b"hello")
        .shut();
    let id = rig.dial(&spec);
    let mut peer = accept_tcp(&target);
    assert_eq!(read_to_end(&mut peer), b"hello", "bytes then EOF (by name)");
    rig.ev.opened(id);
    drop(peer);
    assert!(rig.ev.closed(id).is_none());

    // A half-close with nothing written: the target sees EOF once connected.
    for (tag, addr) in [
        (5, taddr.to_string()),
        (6, format!("early.dial.test:{}", taddr.port())),
    ] {
        let id = rig.dial(&DialSpec::new(&addr, tag).shut());
        let mut peer = accept_tcp(&target);
        assert_eq!(read_to_end(&mut peer), b"", "EOF only ({addr})");
        rig.ev.opened(id);
        peer.write_all(b"late").unwrap();
        assert_eq!(rig.ev.data(id, 4), b"late");
        drop(peer);
        assert!(rig.ev.closed(id).is_none());
    }
    rig.stop();
}

// ----- 8. exactly one closed per id --------------------------------------------------------

/// Accepts connections and closes them at once.
struct Closer;

impl Handler for Closer {
    type State = ();
    fn opened(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }
    fn data(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }
}

#[test]
fn exactly_one_closed_per_dial() {
    let dns = TestDns::start();
    let closer = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let closer = common::TestServer::start(closer, |_| Closer);
    let good = closer.tcp_addr(0).to_string();
    let refused = format!("127.0.0.1:{}", free_port("127.0.0.1"));

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Good,
        Refused,
        NxDomain,
    }
    let kind = |i: u32| match i % 3 {
        0 => Kind::Good,
        1 => Kind::Refused,
        _ => Kind::NxDomain,
    };
    let plan: Vec<DialSpec> = (0..50)
        .map(|i| {
            let addr = match kind(i) {
                Kind::Good => good.clone(),
                Kind::Refused => refused.clone(),
                Kind::NxDomain => format!("nx{i}.dial.test:80"),
            };
            DialSpec::new(&addr, 100 + i)
        })
        .collect();
    let mut rig = Rig::start(1, Some(dns.addr()), plan);

    let mut ids = HashMap::new();
    for i in 0..50 {
        let (id, _, _) = rig.ev.dialed(100 + i);
        assert!(ids.insert(id, i).is_none(), "id {id} handed out twice");
    }
    for (&id, &i) in &ids {
        let err = rig.ev.closed(id);
        match (kind(i), &err) {
            (Kind::Good, None) => {}
            (Kind::Refused, Some(e)) if e.connect && e.refused => {}
            (Kind::NxDomain, Some(e)) if e.dns && e.not_found => {}
            (k, _) => panic!("dial {i} ({k:?}) closed with {err:?}"),
        }
    }
    // Once the server has stopped every report is in: count them.
    let mut events = rig.stop();
    // `closed` already claimed above: count it again from the claimed side.
    let mut opened: HashMap<ConnId, usize> = HashMap::new();
    let mut closed: HashMap<ConnId, usize> = ids.keys().map(|&id| (id, 1)).collect();
    for e in events.drain(..) {
        match e {
            Ev::Opened {
                id, dialed: true, ..
            } => *opened.entry(id).or_default() += 1,
            Ev::Closed { id, .. } if ids.contains_key(&id) => *closed.entry(id).or_default() += 1,
            _ => {}
        }
    }
    for (&id, &i) in &ids {
        assert_eq!(closed[&id], 1, "dial {i} ({:?}): closed count", kind(i));
        let want_open = usize::from(kind(i) == Kind::Good);
        assert_eq!(
            opened.get(&id).copied().unwrap_or(0),
            want_open,
            "dial {i} ({:?}): opened count",
            kind(i)
        );
    }
    closer.stop().expect("closer server stops");
}

// ----- closing a dial before it connects -------------------------------------------------

#[test]
fn close_before_connect_closes_once_and_never_opens() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let taddr = target.local_addr().unwrap();
    let dns = TestDns::start();
    dns.add_a("closed.dial.test", Ipv4Addr::LOCALHOST);
    let mut rig = Rig::start(1, Some(dns.addr()), Vec::new());
    let by_name = format!("closed.dial.test:{}", taddr.port());

    // Nothing queued: closed at once, cleanly; `opened` never follows. (A listener of its
    // own, whose backlog may or may not get those connections.)
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let oaddr = other.local_addr().unwrap();
    let mut ids = Vec::new();
    for (tag, addr) in [
        (1, oaddr.to_string()),
        (2, format!("closed.dial.test:{}", oaddr.port())),
    ] {
        let id = rig.dial(&DialSpec::new(&addr, tag).close());
        let (t, err, _) = rig.ev.closed_unopened(id);
        assert_eq!(t, Tag(tag));
        assert!(err.is_none(), "{addr}: {err:?}");
        ids.push(id);
    }

    // Bytes queued, then closed: they are still delivered once connected, then EOF; no
    // callback but `closed` after the close.
    for (tag, addr) in [(3, taddr.to_string()), (4, by_name.clone())] {
        let id = rig.dial(&DialSpec::new(&addr, tag).payload(b"bye").close());
        let mut peer = accept_tcp(&target);
        assert_eq!(
            read_to_end(&mut peer),
            b"bye",
            "{addr}: queued bytes then EOF"
        );
        assert!(rig.ev.closed(id).is_none(), "{addr}");
        ids.push(id);
    }

    // A round trip on the loop, so that late events for those sockets have been handled.
    let id = rig.dial(&DialSpec::new(&taddr.to_string(), 5));
    let _peer = accept_tcp(&target);
    rig.ev.opened(id);
    let rest = rig.stop();
    for id in ids {
        let late: Vec<&Ev> = rest.iter().filter(|e| e.id() == Some(id)).collect();
        // No `opened` (not before `closed`: the handler had closed it; not after), and
        // `closed` only once.
        assert!(late.is_empty(), "{id}: events after closed: {late:?}");
    }
}

#[test]
fn answer_before_a_reset_is_delivered_though_a_write_fails() {
    // The target reads a little of a large upload, answers and closes with the rest unread
    // (so its kernel resets the connection) while the loop still has output queued: the
    // write fails, but the answer, already received, reaches the handler before `closed`.
    // The loop has stopped reading that connection by then (its output is over the
    // high-water mark), which must not keep the answer from it.
    let mut rig = Rig::start(1, None, Vec::new());
    let target = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let taddr = target.local_addr().unwrap();
    let id = rig.dial(&DialSpec::new(&format!("tcp4://{taddr}"), 9));
    let mut peer = accept_tcp(&target);
    rig.ev.opened(id);
    assert!(rig.server.handle.send(id, pattern(64 << 20, 5)));
    // The wake is handled after the send: by then the loop wrote what the kernel took.
    assert!(rig.server.handle.wake(id));
    let queued = rig.ev.woken(id);
    assert!(
        queued > 1 << 20,
        "64 MiB do not fit in the socket buffers: {queued} bytes still queued"
    );
    let mut first = [0u8; 1024];
    peer.read_exact(&mut first).expect("the upload starts");
    peer.write_all(b"no thanks").expect("the target answers");
    drop(peer);
    assert_eq!(rig.ev.data(id, 9), b"no thanks");
    assert!(rig.ev.closed(id).is_some(), "the reset is an error");
    rig.stop();
}
