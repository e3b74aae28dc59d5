//! `reverse-proxy --config FILE` end to end: the example binary run with the issue's
//! file (ports changed to free ones), wireloop backends for the `api` group with a
//! `/health` path and `python3 -m http.server` for `static` (named `localhost`, resolved
//! off the loop), curl as the client: routing by host, path prefix and TLS server name,
//! 404 when nothing matches, health checks taking a dead backend out and back in, 503 at
//! once with no healthy backend, and a bad file refused with its file and line.
//!
//! Every child process is killed and reaped on drop; every wait is a poll with a
//! deadline.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::process::{free_port, Process};
use common::tools::{curl, curl_status, text, Python, TempDir};
use common::{wait_until, TestServer, TIMEOUT};
use wireloop::Server;
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::CertKey;

fn proxy_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| common::example_bin("reverse-proxy"))
        .clone()
}

/// A wireloop backend at `addr` answering `NAME TARGET` on every path and 200 on
/// `/health`.
fn backend(addr: &str, name: &'static str) -> TestServer {
    let server = Server::builder()
        .listen(addr)
        .expect("listen")
        .build()
        .expect("build");
    TestServer::start(server, move |_| {
        Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
            if req.target() == "/health" {
                res.body(b"ok");
            } else {
                res.body(format!("{name} {}", req.target()).as_bytes());
            }
        })
    })
}

/// The issue's file, shipped with the example as its sample configuration.
const ISSUE_FILE: &str = include_str!("../examples/reverse-proxy/proxy.toml");

/// The issue's file with the proxy's ports and the backends' addresses put in, and
/// checks every 50 ms.
fn issue_file(port: u16, tlsport: u16, api: [&str; 2], static_port: u16) -> String {
    let replaced = [
        ("127.0.0.1:8080", format!("127.0.0.1:{port}")),
        ("127.0.0.1:8443", format!("127.0.0.1:{tlsport}")),
        ("127.0.0.1:9001", api[0].to_string()),
        ("127.0.0.1:9002", api[1].to_string()),
        ("localhost:9003", format!("localhost:{static_port}")),
        (
            "interval_ms = 500",
            "interval_ms = 50, timeout_ms = 1000".into(),
        ),
    ];
    replaced
        .iter()
        .fold(ISSUE_FILE.to_string(), |text, (from, to)| {
            assert!(text.contains(from), "{from} is not in the sample file");
            text.replace(from, to)
        })
}

/// The proxy run with `--config` on `text` (written to `dir/proxy.toml`).
fn start_proxy(dir: &Path, text: &str) -> Process {
    let file = dir.join("proxy.toml");
    std::fs::write(&file, text).expect("write the configuration");
    let args = vec!["--config".to_string(), file.display().to_string()];
    Process::start(&proxy_bin(), &args, "reverse-proxy forwarding to", TIMEOUT)
        .unwrap_or_else(|e| panic!("the proxy did not start: {e}"))
}

/// The certificate and key the TLS listener names, for `localhost` and the API's host.
fn write_cert(dir: &Path) {
    let ck = CertKey::self_signed(&["localhost".into(), "api.example.test".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.leaf_pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.key_pem()).unwrap();
}

#[test]
fn the_issue_file_routes_by_host_prefix_and_server_name() {
    let dir = TempDir::new("config");
    write_cert(dir.path());
    std::fs::create_dir_all(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("static/hello.txt"), "hello from python\n").unwrap();
    let py = Python::start(dir.path());
    let (a, b) = (
        backend("tcp://127.0.0.1:0", "a"),
        backend("tcp://127.0.0.1:0", "b"),
    );
    let (aa, ba) = (a.tcp_addr(0).to_string(), b.tcp_addr(0).to_string());
    let (port, tlsport) = (free_port(), free_port());
    let px = start_proxy(dir.path(), &issue_file(port, tlsport, [&aa, &ba], py.port));
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    // Host api.example.test: the api group, balanced over a and b.
    let names: Vec<String> = (0..4)
        .map(|i| {
            text(&curl(&[
                "-H",
                "Host: api.example.test",
                &url(&format!("/u{i}")),
            ]))
        })
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("a /u")).count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("b /u")).count(),
        2,
        "{names:?}"
    );
    // Any other host: /static/ goes to python (at "localhost"), the rest is a 404.
    assert_eq!(
        text(&curl(&[&url("/static/hello.txt")])),
        "hello from python\n"
    );
    let (_, code) = curl_status(&["-o", "/dev/null", "-w", "%{http_code}", &url("/v1/users")]);
    assert_eq!(text(&code), "404");
    // TLS with the file's certificate: by Host, and by the server name alone when the
    // request has no Host (HTTP/1.0).
    let cert = dir.path().join("cert.pem");
    let cert = cert.to_str().unwrap();
    let resolve = format!("api.example.test:{tlsport}:127.0.0.1");
    let tls_url = format!("https://api.example.test:{tlsport}/t");
    let out = text(&curl(&["--cacert", cert, "--resolve", &resolve, &tls_url]));
    assert!(out == "a /t" || out == "b /t", "{out}");
    let no_host = [
        "--http1.0",
        "--no-alpn",
        "-H",
        "Host:",
        "--cacert",
        cert,
        "--resolve",
        &resolve,
        &tls_url,
    ];
    let out = text(&curl(&no_host));
    assert!(out == "a /t" || out == "b /t", "{out}");
    // The access log names the upstreams.
    assert!(
        wait_until(TIMEOUT, || px
            .out
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("localhost:"))),
        "{}",
        px.output()
    );
}

/// `GET /` with `Host: api.example.test` through the proxy: the body, or the status
/// when not a 200.
fn api(port: u16) -> String {
    let (_, out) = curl_status(&[
        "-H",
        "Host: api.example.test",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    let out = text(&out);
    match out.strip_suffix("200") {
        Some(body) => body.to_string(),
        None => out[out.len().saturating_sub(3)..].to_string(),
    }
}

#[test]
fn health_checks_take_a_dead_backend_out_and_back_in_then_503_at_once() {
    let dir = TempDir::new("config");
    write_cert(dir.path());
    let a = backend("tcp://127.0.0.1:0", "a");
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let aa = a.tcp_addr(0).to_string();
    let (port, tlsport) = (free_port(), free_port());
    let text_file = issue_file(port, tlsport, [&aa, &dead.to_string()], free_port())
        // Health alone decides (a failed request would also mark it down for a while).
        + "\n[proxy]\nmax_fails = 0\n";
    let px = start_proxy(dir.path(), &text_file);
    // Two failed checks take the dead one out: then a serves everything.
    assert!(
        wait_until(TIMEOUT, || px
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&format!("upstream {dead} is down")))),
        "{}",
        px.output()
    );
    for _ in 0..4 {
        assert_eq!(api(port), "a /");
    }
    // It comes back: two good checks bring it in.
    let b = backend(&format!("tcp://{dead}"), "b");
    assert!(
        wait_until(TIMEOUT, || api(port) == "b /"),
        "{}",
        px.output()
    );
    // Both gone: once the checks say so, 503 at once.
    drop((a, b));
    assert!(
        wait_until(TIMEOUT, || api(port) == "503"),
        "{}",
        px.output()
    );
    let t = Instant::now();
    assert_eq!(api(port), "503");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn a_bad_file_is_refused_naming_file_and_line() {
    let dir = TempDir::new("config");
    write_cert(dir.path());
    let file = dir.path().join("proxy.toml");
    let text_file = issue_file(free_port(), free_port(), ["127.0.0.1:1", "127.0.0.1:2"], 3)
        .replace("upstream = \"static\"", "upstream = \"statik\"");
    std::fs::write(&file, text_file).unwrap();
    let out = Command::new(proxy_bin())
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run the proxy");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!("{}:26:12: no upstream named \"statik\"", file.display());
    assert!(stderr.contains(&want), "{stderr}");
    // --upstream and --config do not go together.
    let out = Command::new(proxy_bin())
        .args(["--config", "x.toml", "--upstream", "http://127.0.0.1:1"])
        .stdin(Stdio::null())
        .output()
        .expect("run the proxy");
    assert_eq!(out.status.code(), Some(2));
}

/// Sends `bytes` to `port` on a fresh connection and reads until the proxy closes.
fn raw_exchange(port: u16, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    text(&out)
}

#[test]
fn listeners_take_proxy_protocol_headers_from_trusted_networks_and_log_json() {
    let dir = TempDir::new("pp");
    let be = common::backend::header_echo("be");
    let (plain, pp, untrusted) = (free_port(), free_port(), free_port());
    let file = format!(
        "[[listener]]\naddress = \"tcp://127.0.0.1:{plain}\"\n\n\
         [[listener]]\naddress = \"tcp://127.0.0.1:{pp}\"\nproxy_protocol = true\n\
         trusted_proxies = [\"127.0.0.0/8\"]\n\n\
         [[listener]]\naddress = \"tcp://127.0.0.1:{untrusted}\"\nproxy_protocol = true\n\
         trusted_proxies = [\"10.0.0.0/8\"]\n\n\
         [[upstream]]\nname = \"be\"\nservers = [\"{}\"]\n\n[log]\naccess = \"json\"\n",
        be.tcp_addr(0)
    );
    let p = start_proxy(dir.path(), &file);
    let request = "GET /pp HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let with_header = format!("PROXY TCP4 203.0.113.9 192.0.2.1 40000 80\r\n{request}");
    // The PROXY listener: the header's client is the one forwarded and logged.
    let out = raw_exchange(pp, with_header.as_bytes());
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.contains("x-forwarded-for: 203.0.113.9\n"), "{out}");
    // curl's own header (v1) names curl itself.
    let url = format!("http://127.0.0.1:{pp}/curl");
    let body = text(&curl(&["-s", "--haproxy-protocol", &url]));
    assert!(body.contains("x-forwarded-for: 127.0.0.1\n"), "{body}");
    // No header, or a header from a network not trusted: the connection is closed.
    assert_eq!(raw_exchange(pp, request.as_bytes()), "");
    assert_eq!(raw_exchange(untrusted, with_header.as_bytes()), "");
    // The plain listener takes none.
    let out = raw_exchange(plain, request.as_bytes());
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    // [log] access = "json": one object per request on stdout.
    let logged = wait_until(TIMEOUT, || {
        p.out
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with('{') && l.contains("203.0.113.9"))
    });
    assert!(logged, "no JSON access log line\n{}", p.output());
}

#[test]
fn the_global_connection_cap_sheds_the_excess_and_the_listener_stays_healthy() {
    use std::io::Read;
    let be = backend("127.0.0.1:0", "a");
    let dir = TempDir::new("cap");
    let port = free_port();
    let file = format!(
        "[[listener]]\naddress = \"tcp://127.0.0.1:{port}\"\n\
         [[upstream]]\nname = \"a\"\nservers = [\"{}\"]\n\
         [limits]\nmax_connections = 3\n",
        be.tcp_addr(0)
    );
    let _p = start_proxy(dir.path(), &file);
    let url = format!("http://127.0.0.1:{port}/x");
    // Three idle clients fill the cap: a fourth is closed at once, unanswered.
    let held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(extra.read(&mut b), Ok(0) | Err(_)),
        "served past the cap"
    );
    // Once they leave, the same listener serves again.
    drop(held);
    assert!(
        wait_until(TIMEOUT, || text(&curl(&["-s", &url])) == "a /x"),
        "the listener did not recover"
    );
}
