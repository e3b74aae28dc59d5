//! The `api-gateway` example end to end: the real binary in front of two wireloop HTTP/1.1
//! backends that echo what they received, driven with curl. Tokens, routes, request ids
//! both ways, the token kept from upstreams, and the per-route latency log.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Process;
use common::{wait_until, TIMEOUT};

/// curl's status line and headers (`-i`) plus body, for `url` with `args`.
fn curl(url: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tokens_routes_request_ids_and_latency_log() {
    let (v1, v2) = (
        common::backend::header_echo("v1"),
        common::backend::header_echo("v2"),
    );
    let args: Vec<String> = [
        "--port",
        "0",
        "--token",
        "s3cret",
        "--v1",
        &format!("http://{}", v1.tcp_addr(0)),
        "--v2",
        &format!("http://{}", v2.tcp_addr(0)),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let gw = Process::start(
        &common::example_bin("api-gateway"),
        &args,
        "api-gateway serving",
        TIMEOUT,
    )
    .expect("api-gateway starts");
    let line = gw.log.lock().unwrap().last().cloned().unwrap();
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let url = |path: &str| format!("http://{addr}{path}");
    let auth = ["-H", "Authorization: Bearer s3cret"];

    let no_token = curl(&url("/v1/users"), &[]);
    assert!(no_token.starts_with("HTTP/1.1 401 "), "{no_token}");
    assert!(no_token.contains("WWW-Authenticate: Bearer"), "{no_token}");
    let wrong = curl(&url("/v1/users"), &["-H", "Authorization: Bearer nope"]);
    assert!(wrong.starts_with("HTTP/1.1 401 "), "{wrong}");
    let health = curl(&url("/healthz"), &[]);
    assert!(health.starts_with("HTTP/1.1 200 "), "{health}");

    let one = curl(&url("/v1/users?page=2"), &auth);
    assert!(one.starts_with("HTTP/1.1 200 "), "{one}");
    assert!(one.contains("v1 /v1/users?page=2\n"), "{one}");
    assert!(
        !one.contains("authorization:"),
        "the token went upstream: {one}"
    );
    let sent_id = one
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id upstream")
        .to_string();
    assert!(
        one.contains(&format!("X-Request-Id: {sent_id}\r\n")),
        "the same id on the response: {one}"
    );
    let two = curl(
        &url("/v2/orders"),
        &[auth[0], auth[1], "-H", "X-Request-Id: client-chosen-1"],
    );
    assert!(two.contains("v2 /v2/orders\n"), "{two}");
    assert!(two.contains("x-request-id: client-chosen-1\n"), "{two}");
    assert!(two.contains("X-Request-Id: client-chosen-1\r\n"), "{two}");
    let none = curl(&url("/v3/x"), &auth);
    assert!(none.starts_with("HTTP/1.1 404 "), "{none}");

    // One log line per request, with its route, status and latency.
    let logged = |needle: String| {
        wait_until(Duration::from_secs(5), || {
            gw.log.lock().unwrap().iter().any(|l| l.contains(&needle))
        })
    };
    assert!(
        logged("route=v1 status=200 latency_ms=".into()),
        "{}",
        gw.output()
    );
    assert!(
        logged(format!("id={sent_id} GET /v1/users?page=2")),
        "{}",
        gw.output()
    );
    assert!(logged("route=v2 status=200".into()), "{}", gw.output());
    assert!(logged("route=- status=404".into()), "{}", gw.output());
    assert!(logged("route=- status=401".into()), "{}", gw.output());
}
