//! The sans-IO HTTP/2 client (`h2::conn::Connection::client`) driven over a blocking
//! `TcpStream` against the `http-server` example's h2c (prior knowledge) port: many
//! streams at once, request and response bodies larger than the initial windows. (Here,
//! not under `middleware/tests/`, because the example-process helpers live in
//! `tests/common`.) The server process is killed and reaped on drop.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::process::{free_port, Process};
use common::TIMEOUT;
use wireloop_middleware::h2::conn::{Config, Connection, Event};
use wireloop_middleware::h2::hpack::Field;

/// What came back on one stream.
#[derive(Default)]
struct Got {
    status: u16,
    body: Vec<u8>,
    done: bool,
}

/// Sends `requests` (path, body) at once on one connection and drives it until every
/// response is complete; returns them in order.
fn exchange(sock: &mut TcpStream, requests: &[(&str, Vec<u8>)]) -> Vec<Got> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut conn = Connection::client(Config::default(), Instant::now());
    let mut ids = Vec::new();
    for (path, body) in requests {
        let method: &[u8] = if body.is_empty() { b"GET" } else { b"POST" };
        let fields = [
            Field::new(b":method", method),
            Field::new(b":scheme", b"http"),
            Field::new(b":authority", b"127.0.0.1"),
            Field::new(b":path", path.as_bytes()),
        ];
        ids.push(conn.send_request(&fields, body.is_empty()).unwrap());
    }
    let mut sent = vec![0usize; requests.len()];
    let mut got: Vec<Got> = requests.iter().map(|_| Got::default()).collect();
    let mut input = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = Instant::now() + TIMEOUT;
    while !got.iter().all(|g| g.done) {
        assert!(Instant::now() < deadline, "no answer in time");
        for (i, (_, body)) in requests.iter().enumerate() {
            if !body.is_empty() && sent[i] < body.len() {
                sent[i] += conn.send_data(ids[i], &body[sent[i]..], true).unwrap();
            }
        }
        let out = conn.output().to_vec();
        sock.write_all(&out).unwrap();
        conn.consume_output(out.len());
        match sock.read(&mut buf) {
            Ok(0) => panic!("server closed"),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => panic!("{e}"),
        }
        let mut released = Vec::new();
        let n = conn
            .recv(&input, Instant::now(), &mut |e| {
                let at = |s: u32| ids.iter().position(|&x| x == s).unwrap();
                match e {
                    Event::Response {
                        stream,
                        response,
                        end_stream,
                    } => {
                        let g = &mut got[at(stream)];
                        g.status = response.status;
                        g.done = end_stream;
                    }
                    Event::Data {
                        stream,
                        data,
                        end_stream,
                    } => {
                        let g = &mut got[at(stream)];
                        g.body.extend_from_slice(data);
                        g.done = end_stream;
                        released.push((stream, data.len()));
                    }
                    Event::Trailers { stream, .. } => got[at(stream)].done = true,
                    Event::Reset { stream, code, .. } => panic!("stream {stream} reset: {code}"),
                    _ => {}
                }
            })
            .unwrap();
        input.drain(..n);
        for (stream, n) in released {
            conn.release(stream, n);
        }
    }
    got
}

#[test]
fn client_talks_h2c_to_the_http_server_example() {
    let port = free_port();
    let args: Vec<String> = ["--port", &port.to_string(), "--tlsport", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _p = Process::start(
        &common::example_bin("http-server"),
        &args,
        "http-server: http://",
        TIMEOUT,
    )
    .expect("http-server starts");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
    let mut requests = vec![("/", Vec::new())];
    for _ in 0..8 {
        requests.push(("/echo", big.clone()));
    }
    let got = exchange(&mut sock, &requests);
    assert_eq!(got[0].status, 200);
    assert_eq!(got[0].body, b"Hello World!\r\n");
    for g in &got[1..] {
        assert_eq!(g.status, 200);
        assert!(g.body == big, "echo of {} bytes differs", g.body.len());
    }
}
