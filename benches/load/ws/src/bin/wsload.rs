//! WebSocket echo load client: single-threaded mio, like the bench harness's `loadtool echo`.
//! Each of CONNS connections does the upgrade handshake, then writes DEPTH masked binary
//! messages of SIZE bytes in one write and waits until all DEPTH echoes are back (ping-pong),
//! for SECONDS. Prints one `key=value` line: msgs, msgs_per_sec, p50_us, p99_us, errors.
//!
//! usage: wsload HOST:PORT CONNS SIZE SECONDS [DEPTH]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

struct Conn {
    s: TcpStream,
    /// Bytes of the current batch still to write.
    out: usize,
    /// Messages of the current batch not yet echoed.
    pending: usize,
    /// Unparsed input (frame headers may straddle reads).
    inbuf: Vec<u8>,
    handshaken: bool,
    sent_at: Instant,
}

fn frame(size: usize) -> Vec<u8> {
    let mut f = vec![0x82u8];
    match size {
        0..=125 => f.push(0x80 | size as u8),
        126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend((0..size).map(|i| (b'a' + (i % 26) as u8) ^ MASK[i % 4]));
    f
}

/// Parses whole unmasked server frames from the front of `buf`; returns (frames, bytes).
fn frames(buf: &[u8]) -> Result<(usize, usize), String> {
    let (mut n, mut at) = (0, 0);
    loop {
        let b = &buf[at..];
        if b.len() < 2 {
            break;
        }
        if b[1] & 0x80 != 0 {
            return Err("masked server frame".into());
        }
        let (hl, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            127 if b.len() >= 10 => (10, u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize),
            126 | 127 => break,
            l => (2, l as usize),
        };
        if b.len() < hl + len {
            break;
        }
        if b[0] & 0x0f == 0x8 {
            return Err("server sent close".into());
        }
        at += hl + len;
        n += 1;
    }
    Ok((n, at))
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: wsload HOST:PORT CONNS SIZE SECONDS [DEPTH]");
        std::process::exit(2);
    }
    let addr: SocketAddr = a[0].to_socket_addrs().expect("address").next().expect("address");
    let nconn: usize = a[1].parse().expect("CONNS");
    let size: usize = a[2].parse().expect("SIZE");
    let secs: f64 = a[3].parse().expect("SECONDS");
    let depth: usize = a.get(4).map(|d| d.parse().expect("DEPTH")).unwrap_or(1);
    let one = frame(size);
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * depth).collect();
    let hello = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );

    let mut poll = Poll::new().expect("poll");
    let mut conns = Vec::with_capacity(nconn);
    for i in 0..nconn {
        let mut s = TcpStream::connect(addr).expect("connect");
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .expect("register");
        conns.push(Conn { s, out: 0, pending: 0, inbuf: Vec::with_capacity(65536), handshaken: false, sent_at: Instant::now() });
    }
    let mut hist = vec![0u64; 1_000_001];
    let mut events = Events::with_capacity(1024);
    let mut rbuf = vec![0u8; 65536];
    let (mut msgs, mut errors, mut ready) = (0u64, 0u64, 0usize);
    let mut sent_hello = vec![false; nconn];
    let mut started: Option<Instant> = None;
    let dur = Duration::from_secs_f64(secs);
    let deadline = Instant::now() + dur + Duration::from_secs(10);
    'outer: loop {
        if started.is_some_and(|t| t.elapsed() >= dur) || Instant::now() >= deadline {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100))).expect("poll");
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if !sent_hello[i] {
                if c.s.peer_addr().is_err() {
                    continue;
                }
                c.s.set_nodelay(true).ok();
                c.s.write_all(hello.as_bytes()).expect("handshake write");
                sent_hello[i] = true;
            }
            // read everything
            loop {
                match c.s.read(&mut rbuf) {
                    Ok(0) => {
                        eprintln!("server closed connection {i}");
                        errors += 1;
                        break 'outer;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&rbuf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        eprintln!("read: {e}");
                        errors += 1;
                        break 'outer;
                    }
                }
            }
            if !c.handshaken {
                let Some(end) = c.inbuf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                if !c.inbuf.starts_with(b"HTTP/1.1 101") {
                    eprintln!("handshake refused: {}", String::from_utf8_lossy(&c.inbuf[..end]));
                    std::process::exit(1);
                }
                c.inbuf.drain(..end + 4);
                c.handshaken = true;
                ready += 1;
                if ready == nconn {
                    started = Some(Instant::now());
                    for c in conns.iter_mut() {
                        c.out = batch.len();
                        c.pending = depth;
                        c.sent_at = Instant::now();
                    }
                    for c in conns.iter_mut() {
                        flush(c, &batch, &mut errors);
                    }
                }
                continue;
            }
            match frames(&c.inbuf) {
                Ok((n, used)) => {
                    c.inbuf.drain(..used);
                    if started.is_some() && n > 0 {
                        msgs += n as u64;
                        c.pending = c.pending.saturating_sub(n);
                        if c.pending == 0 {
                            let us = c.sent_at.elapsed().as_micros().min(1_000_000) as usize;
                            hist[us] += 1;
                            c.out = batch.len();
                            c.pending = depth;
                            c.sent_at = Instant::now();
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    errors += 1;
                    break 'outer;
                }
            }
            flush(c, &batch, &mut errors);
        }
    }
    let secs = started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    let total: u64 = hist.iter().sum();
    let pct = |p: f64| {
        let target = ((total as f64) * p).ceil() as u64;
        let mut acc = 0;
        for (us, &n) in hist.iter().enumerate() {
            acc += n;
            if n > 0 && acc >= target {
                return us;
            }
        }
        0
    };
    let rate = if secs > 0.0 { msgs as f64 / secs } else { 0.0 };
    println!(
        "wsecho conns={nconn} size={size} depth={depth} secs={secs:.2} msgs={msgs} msgs_per_sec={rate:.0} p50_us={} p99_us={} errors={errors}",
        pct(0.5),
        pct(0.99)
    );
}

fn flush(c: &mut Conn, batch: &[u8], errors: &mut u64) {
    while c.out > 0 {
        let from = batch.len() - c.out;
        match c.s.write(&batch[from..]) {
            Ok(n) => c.out -= n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("write: {e}");
                *errors += 1;
                return;
            }
        }
    }
}
