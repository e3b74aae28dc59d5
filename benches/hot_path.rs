//! Hot-path micro-benchmarks: one echo round trip through a real loop over loopback TCP,
//! with one message and with 16 pipelined messages per write. They measure the loop's
//! per-event cost (dispatch, shared read buffer, staging output, one `write`) plus the
//! syscalls a round trip needs, so a regression in the loop shows without a load test.
//!
//! `cargo bench --bench hot_path`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wireloop::{Action, Conn, Handler, Server};

struct Echo;

impl Handler for Echo {
    type State = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }
}

fn echo(c: &mut Criterion) {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    let addr = server.local_addrs()[0].inet().unwrap();
    let handle = server.handle();
    let t = thread::spawn(move || server.serve(|_| Echo));
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();

    let mut g = c.benchmark_group("echo_roundtrip");
    for depth in [1usize, 16] {
        let msg = vec![b'x'; 64 * depth];
        let mut back = vec![0u8; msg.len()];
        g.throughput(Throughput::Elements(depth as u64));
        g.bench_function(format!("64B_x{depth}"), |b| {
            b.iter(|| {
                client.write_all(&msg).unwrap();
                client.read_exact(&mut back).unwrap();
            })
        });
    }
    g.finish();
    drop(client);
    handle.shutdown();
    t.join().unwrap().unwrap();
}

criterion_group!(benches, echo);
criterion_main!(benches);
