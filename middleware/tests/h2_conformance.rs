//! HTTP/2 conformance of the sans-IO server connection (`h2::conn::Connection`), checked
//! with `httpwg` (a port of h2spec's cases: `cargo install httpwg-cli --locked`).
//!
//! A TEST-ONLY blocking harness stands in for the reactor: a `std::net::TcpListener` on
//! 127.0.0.1:0, a thread per connection reading with a short timeout, feeding
//! `Connection::recv`, answering every request with 200 and a small body (POST bodies
//! echoed), and flushing the output. `httpwg` runs against it if it is on PATH (else the
//! test prints a note and passes); every case must pass.
//!
//! Every thread and process started here is stopped before the test returns: the
//! accept loop is woken by a last connection, connection threads see the stop flag at
//! their next read timeout, `httpwg` is killed if it outlives its deadline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use wireloop_middleware::h2::conn::{Config, Connection, Event};
use wireloop_middleware::h2::hpack::Field;

/// The most the whole `httpwg` run may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// What the application does with a stream.
#[derive(Default)]
struct Exchange {
    post: bool,
    body: Vec<u8>,
    /// The response body still to send, once the request is complete.
    pending: Option<Vec<u8>>,
}

enum Owned {
    Request(u32, bool, bool),
    Data(u32, usize, Vec<u8>, bool),
    Done(u32),
    Reset(u32),
    Writable(u32),
}

fn serve(mut sock: TcpStream, stop: Arc<AtomicBool>) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = sock.set_nodelay(true);
    let mut conn = Connection::server(Config::default(), Instant::now());
    let mut input = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    let mut streams: HashMap<u32, Exchange> = HashMap::new();
    let mut events = Vec::new();
    loop {
        if flush(&mut conn, &mut sock).is_err() {
            return;
        }
        if conn.is_done() || stop.load(Ordering::Relaxed) {
            let _ = sock.shutdown(Shutdown::Write);
            return;
        }
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let r = conn.recv(&input, Instant::now(), &mut |ev| {
            events.push(match ev {
                Event::Request {
                    stream,
                    request,
                    end_stream,
                } => Owned::Request(stream, request.method == b"POST", end_stream),
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => Owned::Data(stream, data.len(), data.to_vec(), end_stream),
                Event::Trailers { stream, .. } => Owned::Done(stream),
                Event::Reset { stream, .. } => Owned::Reset(stream),
                Event::Writable { stream } => Owned::Writable(stream),
                _ => return,
            })
        });
        match r {
            Ok(n) => {
                input.drain(..n);
            }
            Err(_) => {
                let _ = flush(&mut conn, &mut sock);
                let _ = sock.shutdown(Shutdown::Write);
                return;
            }
        }
        for ev in events.drain(..) {
            let id = match ev {
                Owned::Request(id, post, end) => {
                    streams.insert(
                        id,
                        Exchange {
                            post,
                            ..Exchange::default()
                        },
                    );
                    if !end {
                        continue;
                    }
                    id
                }
                Owned::Data(id, n, data, end) => {
                    conn.release(id, n);
                    if let Some(x) = streams.get_mut(&id) {
                        if x.post {
                            x.body.extend_from_slice(&data);
                        }
                    }
                    if !end {
                        continue;
                    }
                    id
                }
                Owned::Done(id) => id,
                Owned::Reset(id) => {
                    streams.remove(&id);
                    continue;
                }
                Owned::Writable(id) => id,
            };
            respond(&mut conn, &mut streams, id);
        }
    }
}

/// Starts or continues the response on `id`.
fn respond(conn: &mut Connection, streams: &mut HashMap<u32, Exchange>, id: u32) {
    let Some(x) = streams.get_mut(&id) else {
        return;
    };
    if x.pending.is_none() {
        // A body even for an empty POST, so that a zero window holds the stream open
        // (the concurrency-limit case relies on it).
        let body = if x.post && !x.body.is_empty() {
            std::mem::take(&mut x.body)
        } else {
            b"hello from wireloop h2\n".to_vec()
        };
        let len = body.len().to_string();
        let fields = [Field::new(b"content-length", len.as_bytes())];
        if conn.send_headers(id, 200, &fields, false).is_err() {
            streams.remove(&id);
            return;
        }
        x.pending = Some(body);
    }
    let Some(body) = x.pending.as_mut() else {
        return;
    };
    match conn.send_data(id, body, true) {
        Ok(n) if n == body.len() => {
            streams.remove(&id);
        }
        Ok(n) => {
            body.drain(..n);
        }
        Err(_) => {
            streams.remove(&id);
        }
    }
}

fn flush(conn: &mut Connection, sock: &mut TcpStream) -> std::io::Result<()> {
    let out = conn.output();
    if !out.is_empty() {
        let n = out.len();
        sock.write_all(out)?;
        conn.consume_output(n);
    }
    Ok(())
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

#[test]
fn httpwg_passes() {
    if !on_path("httpwg") {
        eprintln!("httpwg not on PATH (cargo install httpwg-cli --locked): conformance skipped");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut workers = Vec::new();
            for sock in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(sock) = sock else { continue };
                let stop = stop.clone();
                workers.push(thread::spawn(move || serve(sock, stop)));
            }
            for w in workers {
                let _ = w.join();
            }
        })
    };

    let mut child = Command::new("httpwg")
        .arg("-a")
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|r| {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(Some(line));
            }
            let _ = tx.send(None);
        })
    })
    .collect();
    drop(tx);
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut open = 2;
    while open > 0 {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => open -= 1,
            Err(_) => break,
        }
    }
    let timed_out = open > 0;
    let _ = child.kill();
    let status = child.wait().unwrap();
    for r in readers {
        let _ = r.join();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(addr);
    acceptor.join().unwrap();

    let report = lines.join("\n");
    println!("{report}");
    assert!(!timed_out, "httpwg did not finish within {DEADLINE:?}");
    assert!(status.success(), "httpwg failed ({status}):\n{report}");
    // "Passed 107/107 tests ..." (colours aside): every case ran and passed.
    let plain: String = report
        .split('\x1b')
        .map(|p| p.split_once('m').map_or(p, |x| x.1))
        .collect();
    let counts = plain
        .lines()
        .find_map(|l| l.split("Passed ").nth(1)?.split_whitespace().next())
        .and_then(|c| c.split_once('/'))
        .expect("httpwg printed no summary");
    assert_eq!(counts.0, counts.1, "httpwg cases failed:\n{report}");
    assert_ne!(counts.1, "0");
}
