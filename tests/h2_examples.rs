//! HTTP/2 through the HTTP/1.1 adapter, end to end: the `http-server` example (an
//! `http1::App` written for HTTP/1.1) served over HTTP/2 by prior knowledge on its plain
//! port and by ALPN `h2` on its TLS port, with the clients users use — curl
//! (`--http2-prior-knowledge`, `--http2`), nghttp, h2load (many streams on few
//! connections) — and `httpwg`, a port of h2spec's 107 cases, against the real loop.
//! HTTP/1.1 still works on both ports. Every process is killed and reaped on drop.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::process::Process;
use common::tools::{curl, text, TempDir};

fn http_server(cert: &Path) -> (Process, u16, u16) {
    common::process::http_server(Some(cert))
}

/// Runs `tool` with `args` (bounded by the tools' own timeouts); its stdout, or a panic
/// naming the missing tool.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed for this test (Debian's nghttp2-client / cargo install httpwg-cli): {e}"));
    let s = text(&out.stdout);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{s}",
        text(&out.stderr)
    );
    s
}

#[test]
fn curl_speaks_http2_by_prior_knowledge_and_by_alpn_and_http11_still_works() {
    let dir = TempDir::new("h2-curl");
    let cert = dir.path().join("cert.pem");
    let (_p, port, tlsport) = http_server(&cert);
    let cert = cert.to_str().unwrap();
    let plain = format!("http://127.0.0.1:{port}/");
    let tls = format!("https://localhost:{tlsport}/");
    let resolve = format!("localhost:{tlsport}:127.0.0.1");
    let version = "%{http_version} %{http_code}";
    for (args, want) in common::h2::version_cases(&plain, &tls, cert, &resolve) {
        let mut all = vec!["-s", "-w", version];
        all.extend_from_slice(&args);
        let out = text(&curl(&all));
        assert_eq!(out, format!("Hello World!\r\n{want}"), "{args:?}");
    }
    // A body larger than the stream's and the connection's windows (64 KiB, 1 MiB),
    // streamed back by /echo: flow control both ways, and the app's backpressure.
    let body = dir.path().join("body");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&body, &data).unwrap();
    let at = format!("@{}", body.display());
    let echo = format!("http://127.0.0.1:{port}/echo");
    let back = curl(&["-s", "--http2-prior-knowledge", "--data-binary", &at, &echo]);
    assert!(
        back == data,
        "echo over h2: {} bytes back of {}",
        back.len(),
        data.len()
    );
    // An authority HTTP/1.1 would refuse as a Host (a backslash) is refused over HTTP/2
    // too, with 400 (curl sends it as :authority).
    let code = text(&curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        "--http2-prior-knowledge",
        "-H",
        "Host: a\\b",
        &plain,
    ]));
    assert_eq!(code, "2 400");
}

#[test]
fn nghttp_and_h2load_get_every_answer_over_many_streams() {
    let dir = TempDir::new("h2-load");
    let cert = dir.path().join("cert.pem");
    let (_p, port, tlsport) = http_server(&cert);
    let out = run("nghttp", &["-v", &format!("http://127.0.0.1:{port}/x")]);
    assert!(out.contains("Hello World!"), "{out}");
    assert!(out.contains(":status: 200"), "{out}");
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("https://127.0.0.1:{tlsport}/"),
    ] {
        // 4 connections, 20 streams at once on each.
        common::h2::h2load_gets_every_answer(&url);
    }
}

/// Python's httpx (on the `h2` package) over TLS with ALPN, and by prior knowledge.
const HTTPX: &str = r#"
import sys, httpx
cert, tls, plain = sys.argv[1], sys.argv[2], sys.argv[3]
with httpx.Client(http2=True, verify=cert) as c:
    rs = [c.get(tls + "/a"), c.post(tls + "/echo", content=b"x" * 200000)]
with httpx.Client(http1=False, http2=True) as c:
    rs.append(c.get(plain + "/b"))
for r in rs:
    print(r.http_version, r.status_code, len(r.content))
"#;

#[test]
fn python_httpx_speaks_http2_over_tls_and_prior_knowledge() {
    let dir = TempDir::new("h2-httpx");
    let cert = dir.path().join("cert.pem");
    let (_p, port, tlsport) = http_server(&cert);
    let out = Command::new("python3")
        .args(["-c", HTTPX, cert.to_str().unwrap()])
        .arg(format!("https://localhost:{tlsport}"))
        .arg(format!("http://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "httpx (pip install 'httpx[http2]'): {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "HTTP/2 200 14\nHTTP/2 200 200000\nHTTP/2 200 14\n"
    );
}

#[test]
fn httpwg_passes_every_case_against_the_loop() {
    let dir = TempDir::new("h2-httpwg");
    let (_p, port, _) = http_server(&dir.path().join("cert.pem"));
    let out = Command::new("httpwg")
        .args(["-a", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .expect("httpwg is needed for this test: cargo install httpwg-cli --locked");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let summary = all
        .lines()
        .find(|l| l.contains("Passed") && l.contains("tests"))
        .unwrap_or_default()
        .to_string();
    // The summary may carry colour codes around the figures.
    assert!(
        summary.contains("107/107"),
        "httpwg: {summary}\n{}",
        all.lines()
            .filter(|l| l.contains("failed") || l.contains("❌"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
