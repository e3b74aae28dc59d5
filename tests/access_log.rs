//! The reverse proxy's access log with the real binary and curl: the combined format and
//! JSON lines (each line checked by Python's `json` module), with RFC 3339 / CLF times,
//! the upstream peer, upstream time and total time.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Process;
use common::{wait_until, TIMEOUT};

/// Starts the proxy with `--access-log FORMAT`; its address.
fn proxy(format: &str, upstream: &str) -> (Process, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let args: Vec<String> = [
        "--port",
        &port,
        "--tlsport",
        "0",
        "--listen-host",
        "127.0.0.1",
        "--upstream",
        upstream,
        "--access-log",
        format,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let p = Process::start(
        &common::example_bin("reverse-proxy"),
        &args,
        "reverse-proxy listening",
        TIMEOUT,
    )
    .expect("reverse-proxy starts");
    let line = p
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("listening on http://"))
        .cloned()
        .unwrap();
    let addr = line.rsplit("http://").next().unwrap().trim().to_string();
    (p, addr)
}

fn curl(url: &str) {
    let ok = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .args(["-A", "tester/1.0", "-e", "http://referrer.test/"])
        .arg(url)
        .status()
        .expect("run curl")
        .success();
    assert!(ok, "curl {url}");
}

/// The first stdout line of `p` containing `needle`, waited for.
fn line_with(p: &Process, needle: &str) -> String {
    let found = || {
        p.out
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    };
    assert!(
        wait_until(Duration::from_secs(5), || found().is_some()),
        "no access log line with {needle:?}: {}",
        p.output()
    );
    found().unwrap()
}

#[test]
fn combined_lines() {
    let be = common::backend::header_echo("be");
    let up = format!("http://{}", be.tcp_addr(0));
    let (p, addr) = proxy("combined", &up);
    curl(&format!("http://{addr}/x?y=1"));
    let line = line_with(&p, "/x?y=1");
    // 127.0.0.1 - - [05/Dec/2026:23:59:01 +0000] "GET /x?y=1 HTTP/1.1" 200 N "ref" "ua" peer up total
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    let time = &line[15..15 + 27];
    assert!(
        time.ends_with(" +0000]") && time.as_bytes()[2] == b'/',
        "{line}"
    );
    assert!(line.contains("] \"GET /x?y=1 HTTP/1.1\" 200 "), "{line}");
    assert!(
        line.contains(&format!("\"http://referrer.test/\" \"tester/1.0\" {up} ")),
        "{line}"
    );
    let times: Vec<f64> = line
        .rsplit(' ')
        .take(2)
        .map(|t| t.parse().expect("seconds"))
        .collect();
    assert!(times.iter().all(|t| (0.0..10.0).contains(t)), "{line}");
}

#[test]
fn json_lines() {
    let be = common::backend::header_echo("be");
    let up = format!("http://{}", be.tcp_addr(0));
    let (p, addr) = proxy("json", &up);
    curl(&format!("http://{addr}/j"));
    // A peer that refuses the connect: 502, no upstream time.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    drop(be);
    let (p2, addr2) = proxy("json", &format!("http://{closed}"));
    curl(&format!("http://{addr2}/down"));
    let down = format!("http://{closed}");
    for (p, needle, upstream, ok) in [
        (&p, "\"/j\"", up.as_str(), "1"),
        (&p2, "\"/down\"", down.as_str(), ""),
    ] {
        let line = line_with(p, needle);
        let check = "import json, re, sys\n\
             d = json.loads(sys.argv[1])\n\
             assert re.fullmatch(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z', d['time']), d\n\
             assert d['client'] == '127.0.0.1' and d['method'] == 'GET', d\n\
             assert d['user_agent'] == 'tester/1.0' and d['referer'] == 'http://referrer.test/', d\n\
             assert d['upstream'] == sys.argv[2], d\n\
             if sys.argv[3]:\n\
             \x20   assert d['status'] == 200, d\n\
             \x20   assert 0 <= d['upstream_time'] <= d['total_time'] < 10, d\n\
             else:\n\
             \x20   assert d['status'] == 502 and d['upstream_time'] is None, d\n";
        let out = Command::new("python3")
            .args(["-c", check, &line, upstream, ok])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "{line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
