//! HTTP/1.1 hot paths: parsing a typical request head, parsing 16 pipelined requests,
//! writing a small response, and 16 pipelined requests through the whole adapter.
//!
//! ```text
//! cargo bench -p wireloop-middleware --bench http1
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wireloop::testing::Driver;
use wireloop_middleware::http1::{
    header_slots, parse_request, write_response, Config, Http1, HttpDate, Request, Response,
};

/// A browser-like GET (about 500 bytes, 10 header fields).
const TYPICAL: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x\r\n\r\n";

/// What wrk sends.
const SMALL: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

fn parse(c: &mut Criterion) {
    let cfg = Config::default();
    let mut g = c.benchmark_group("http1_parse");
    g.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    g.bench_function("typical_head", |b| {
        b.iter(|| {
            let mut slots = header_slots();
            let r = parse_request(black_box(TYPICAL), &mut slots, &cfg);
            black_box(r.map(|o| o.map(|(n, req)| (n, req.header_count()))))
        })
    });
    // The baseline: httparse alone, without the framing and smuggling checks.
    g.bench_function("typical_head_httparse_alone", |b| {
        b.iter(|| {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            black_box(req.parse(black_box(TYPICAL)).map(|s| s.is_complete()))
        })
    });
    let pipelined: Vec<u8> = SMALL
        .iter()
        .copied()
        .cycle()
        .take(SMALL.len() * 16)
        .collect();
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipelined_16", |b| {
        b.iter(|| {
            let mut buf = black_box(&pipelined[..]);
            let mut n = 0;
            while !buf.is_empty() {
                let mut slots = header_slots();
                match parse_request(buf, &mut slots, &cfg) {
                    Ok(Some((len, _req))) => {
                        buf = &buf[len..];
                        n += 1;
                    }
                    _ => break,
                }
            }
            assert_eq!(n, 16);
            n
        })
    });
    g.finish();
}

fn respond(c: &mut Criterion) {
    let cfg = Config::default();
    let date = HttpDate::now();
    let mut slots = header_slots();
    let (_, req) = parse_request(SMALL, &mut slots, &cfg).unwrap().unwrap();
    let mut out = Vec::with_capacity(256);
    c.bench_function("http1_write_small_response", |b| {
        b.iter(|| {
            out.clear();
            write_response(&mut out, &date, &req, |res| {
                res.status(200)
                    .header("Content-Type", "text/plain")
                    .body(black_box(b"Hello World!\r\n"));
            });
            black_box(out.len())
        })
    });
}

fn adapter(c: &mut Criterion) {
    let app = |_req: &Request<'_>, res: &mut Response<'_>| {
        res.header("Content-Type", "text/plain")
            .body(b"Hello World!\r\n");
    };
    let mut d = Driver::new(Http1::server(app));
    let conn = d.open(0);
    let pipelined: Vec<u8> = SMALL
        .iter()
        .copied()
        .cycle()
        .take(SMALL.len() * 16)
        .collect();
    let mut g = c.benchmark_group("http1_adapter");
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipelined_16_roundtrip", |b| {
        b.iter(|| {
            d.feed(conn, black_box(&pipelined));
            black_box(d.take_output(conn).len())
        })
    });
    g.finish();
}

criterion_group!(benches, parse, respond, adapter);
criterion_main!(benches);
