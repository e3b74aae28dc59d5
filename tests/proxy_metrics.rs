//! The `reverse-proxy` example's admin listener (`--admin`): `/metrics` read by the
//! Prometheus project's own text-format parser (Python `prometheus_client`), whose
//! counters match the requests sent, and `/healthz`. Every process is killed on drop.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::process::{free_port, reverse_proxy};
use common::tools::{curl, curl_status, text};
use common::TIMEOUT;

/// Parses the exposition `body` with prometheus_client; one `name{k="v",...} value` line
/// per sample, labels sorted.
fn parse_with_prometheus_client(body: &str) -> Vec<String> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {float(s.value)}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'prometheus_client'"),
        "the Python prometheus_client package is needed: python3 -m pip install prometheus_client"
    );
    assert!(
        out.status.success(),
        "the parser refused /metrics: {err}\n{body}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the proxy says its admin listener is up.
fn wait_for_admin(p: &common::process::Process) {
    assert!(
        common::wait_until(TIMEOUT, || p
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("admin on http://"))),
        "{}",
        p.output()
    );
}

#[test]
fn metrics_count_the_requests_and_parse_as_prometheus_text() {
    let be = common::backend::header_echo("be");
    let admin = format!("127.0.0.1:{}", free_port());
    let upstream = format!("http://{}", be.tcp_addr(0));
    let (p, addr) = reverse_proxy(&upstream, &["--admin", &admin]);
    wait_for_admin(&p);
    let url = format!("http://{addr}/x");
    for _ in 0..7 {
        assert!(text(&curl(&["-s", &url])).starts_with("be /x\n"));
    }
    let health = curl_status(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{admin}/healthz"),
    ]);
    assert_eq!(text(&health.1), "200");
    let body = text(&curl(&["-s", &format!("http://{admin}/metrics")]));
    let samples = parse_with_prometheus_client(&body);
    for want in [
        "wireloop_proxy_requests_total{class=\"2xx\",group=\"default\"} 7.0",
        "wireloop_proxy_requests_total{class=\"5xx\",group=\"default\"} 0.0",
        "wireloop_proxy_upstream_response_seconds_count{group=\"default\"} 7.0",
        "wireloop_proxy_upstream_response_seconds_bucket{group=\"default\",le=\"+Inf\"} 7.0",
        &format!("wireloop_proxy_upstream_healthy{{group=\"default\",peer=\"{upstream}\"}} 1.0"),
    ] {
        assert!(
            samples.iter().any(|s| s == want),
            "no {want} in\n{}",
            samples.join("\n")
        );
    }
    let accepted = samples
        .iter()
        .find_map(|s| s.strip_prefix("wireloop_connections_accepted_total{} "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("connections accepted");
    assert!(accepted >= 7.0, "{accepted}");
}

/// The sample `name` (labels sorted, as printed by the parser) in `samples`, if any.
fn sample(samples: &[String], name: &str) -> Option<f64> {
    samples
        .iter()
        .find_map(|s| s.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_connections_by_listener_and_tls_handshakes() {
    let be = common::backend::header_echo("be");
    let admin = format!("127.0.0.1:{}", free_port());
    let tls_port = free_port();
    let dir = common::tools::TempDir::new("metrics-tls");
    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let upstream = format!("http://{}", be.tcp_addr(0));
    let (p, addr) = reverse_proxy(
        &upstream,
        &[
            "--admin",
            &admin,
            "--tlsport",
            &tls_port.to_string(),
            "--cert-out",
            ca,
        ],
    );
    wait_for_admin(&p);
    // Three TLS handshakes with a client that trusts the certificate, one refused by a
    // client that does not; two plain requests and a plain connection kept open.
    let https = format!("https://localhost:{tls_port}/t");
    let resolve = format!("localhost:{tls_port}:127.0.0.1");
    for _ in 0..3 {
        let out = curl(&["-s", "--cacert", ca, "--resolve", &resolve, &https]);
        assert!(text(&out).starts_with("be /t\n"), "{}", text(&out));
    }
    let (code, _) = curl_status(&["-s", "--resolve", &resolve, &https]);
    assert_ne!(code, 0, "curl trusted a certificate it was not given");
    for _ in 0..2 {
        assert!(text(&curl(&["-s", &format!("http://{addr}/p")])).starts_with("be /p\n"));
    }
    let _held = std::net::TcpStream::connect(addr).unwrap();

    let plain = format!("{{listener=\"{addr}\"}}");
    let tls = format!("{{listener=\"127.0.0.1:{tls_port}\"}}");
    let want = [
        ("wireloop_proxy_tls_handshakes_total{}".to_string(), 3.0),
        (
            "wireloop_proxy_tls_handshake_failures_total{}".to_string(),
            1.0,
        ),
        (
            format!("wireloop_proxy_client_connections_total{plain}"),
            3.0,
        ),
        (format!("wireloop_proxy_client_connections_total{tls}"), 3.0),
        (
            format!("wireloop_proxy_client_connections_open{plain}"),
            1.0,
        ),
        (format!("wireloop_proxy_client_connections_open{tls}"), 0.0),
    ];
    // The closes of curl's connections reach the proxy a moment after curl returns.
    let mut last = Vec::new();
    let settled = common::wait_until(TIMEOUT, || {
        let body = text(&curl(&["-s", &format!("http://{admin}/metrics")]));
        last = parse_with_prometheus_client(&body);
        want.iter().all(|(name, v)| sample(&last, name) == Some(*v))
    });
    assert!(settled, "want {want:?} in\n{}", last.join("\n"));
}
