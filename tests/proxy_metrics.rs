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

#[test]
fn metrics_count_the_requests_and_parse_as_prometheus_text() {
    let be = common::backend::header_echo("be");
    let admin = format!("127.0.0.1:{}", free_port());
    let upstream = format!("http://{}", be.tcp_addr(0));
    let (p, addr) = reverse_proxy(&upstream, &["--admin", &admin]);
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
