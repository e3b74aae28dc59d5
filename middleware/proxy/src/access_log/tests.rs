use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{rfc3339, AccessLog, Entry, Format};

fn at(secs: u64, ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms)
}

fn entry(time: SystemTime) -> Entry<'static> {
    Entry {
        time,
        client_ip: "203.0.113.9",
        method: "GET",
        target: "/a?\"q\"",
        version: "HTTP/1.1",
        status: 200,
        bytes: 12,
        referer: None,
        user_agent: Some("curl/8.5\u{1}"),
        upstream: Some("127.0.0.1:9001"),
        upstream_time: Some(Duration::from_micros(2500)),
        total_time: Duration::from_micros(3250),
    }
}

#[test]
fn rfc3339_across_leap_years_and_centuries() {
    let cases = [
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
        (1_709_251_199, 999, "2024-02-29T23:59:59.999Z"),
        (1_796_428_800, 0, "2026-12-05T00:00:00.000Z"),
        (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
    ];
    for (secs, ms, want) in cases {
        let mut s = String::new();
        rfc3339(at(secs, ms), &mut s);
        assert_eq!(s, want);
    }
}

#[test]
fn combined_and_json_lines() {
    let e = entry(at(1_796_515_141, 0));
    let mut line = String::new();
    e.write(Format::Combined, &mut line);
    assert_eq!(
        line,
        "203.0.113.9 - - [05/Dec/2026:23:59:01 +0000] \"GET /a?\\\"q\\\" HTTP/1.1\" 200 12 \
         \"-\" \"curl/8.5\\x01\" 127.0.0.1:9001 0.003 0.003\n"
    );
    let mut json = String::new();
    e.write(Format::Json, &mut json);
    assert_eq!(
        json,
        "{\"time\":\"2026-12-05T23:59:01.000Z\",\"client\":\"203.0.113.9\",\"method\":\"GET\",\
         \"target\":\"/a?\\\"q\\\"\",\"version\":\"HTTP/1.1\",\"status\":200,\"bytes\":12,\
         \"referer\":null,\"user_agent\":\"curl/8.5\\u0001\",\"upstream\":\"127.0.0.1:9001\",\
         \"upstream_time\":0.002500,\"total_time\":0.003250}\n"
    );
    assert_eq!(Format::parse("json"), Ok(Format::Json));
    assert!(Format::parse("xml").is_err());
}

/// A sink that blocks until released, then keeps what it got.
#[derive(Clone)]
struct Gate {
    open: Arc<Mutex<()>>,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Write for Gate {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let _open = self.open.lock().unwrap();
        self.got.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stuck_writer_costs_lines_not_the_loop() {
    let gate = Gate {
        open: Arc::new(Mutex::new(())),
        got: Arc::new(Mutex::new(Vec::new())),
    };
    let held = gate.open.lock().unwrap();
    let log = AccessLog::start(Format::Json, gate.clone());
    let e = entry(at(0, 0));
    // The writer is stuck on the first line; the queue fills, the rest are dropped, and
    // no call blocks.
    let n = super::QUEUE as u64 + 100;
    for _ in 0..n {
        log.log(&e);
    }
    assert!(log.dropped() >= 99, "{} dropped", log.dropped());
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Log lines, not the note on dropped ones.
    let lines = |g: &Gate| {
        let got = g.got.lock().unwrap();
        got.split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"{"))
            .count()
    };
    while lines(&gate) < (n - log.dropped()) as usize && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(lines(&gate) as u64, n - log.dropped());
    // A note says how many were lost.
    while !String::from_utf8_lossy(&gate.got.lock().unwrap()).contains("lines dropped")
        && std::time::Instant::now() < deadline
    {
        std::thread::yield_now();
    }
    assert!(String::from_utf8_lossy(&gate.got.lock().unwrap()).contains("lines dropped"));
}
