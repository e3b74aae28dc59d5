//! What the HTTP/2 end-to-end tests share: the curl cases for each protocol on a plain
//! and a TLS port, and an `h2load` run that must get every answer.

#![allow(dead_code)]

use std::process::{Command, Stdio};

use super::tools::text;

/// curl arguments and the `%{http_version} %{http_code}` each must give: HTTP/2 by prior
/// knowledge on `plain`, by ALPN on `tls` (trusting `cert`, `localhost` resolved by
/// `resolve`), and HTTP/1.1 on both.
pub fn version_cases<'a>(
    plain: &'a str,
    tls: &'a str,
    cert: &'a str,
    resolve: &'a str,
) -> [(Vec<&'a str>, &'static str); 4] {
    [
        (vec!["--http2-prior-knowledge", plain], "2 200"),
        (vec!["--http1.1", plain], "1.1 200"),
        (
            vec!["--http2", "--cacert", cert, "--resolve", resolve, tls],
            "2 200",
        ),
        (
            vec!["--http1.1", "--cacert", cert, "--resolve", resolve, tls],
            "1.1 200",
        ),
    ]
}

/// `h2load` with 4 connections of 20 concurrent streams sending 4,000 requests to
/// `url`: every one must be answered 2xx (over `h2` by ALPN for an https `url`).
pub fn h2load_gets_every_answer(url: &str) {
    let out = Command::new("h2load")
        // Bounded: a connection quiet for 20 s ends the run (and fails the test).
        .args(["-n", "4000", "-c", "4", "-m", "20", "-N", "20s", url])
        .stdin(Stdio::null())
        .output()
        .expect("h2load (Debian's nghttp2-client) is needed for this test");
    let out = text(&out.stdout);
    assert!(
        out.contains("4000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{url}: {out}"
    );
    assert!(out.contains("status codes: 4000 2xx"), "{url}: {out}");
    if url.starts_with("https") {
        assert!(out.contains("Application protocol: h2"), "{out}");
    }
}
