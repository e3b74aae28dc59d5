//! The configuration file: the documented example exactly as written, and bad files
//! refused with the file, line and what is wrong.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wireloop_middleware::CertKey;

use super::*;
use crate::balance::Balance;
use crate::health::CheckKind;
use crate::key::HashKey;

/// The file of the issue, as written.
const EXACT: &str = r#"[[listener]]
address = "tcp://127.0.0.1:8080"

[[listener]]
address = "tcp://127.0.0.1:8443"
tls = { cert = "cert.pem", key = "key.pem" }   # both omitted: generated self-signed

[[upstream]]
name = "api"
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
balance = "round-robin"          # least-conn | p2c-ewma | hash
hash_key = "header:X-User"       # with balance = "hash": client-ip | header:NAME | path
health = { path = "/health", interval_ms = 500, rise = 2, fall = 2 }

[[upstream]]
name = "static"
servers = ["localhost:9003"]

[[route]]
host = "api.example.test"        # omitted: any host
path_prefix = "/"
upstream = "api"

[[route]]
path_prefix = "/static/"
upstream = "static"
"#;

/// A directory of its own with `cert.pem` and `key.pem` in it.
fn dir_with_cert() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wl-proxy-config-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = CertKey::self_signed(&["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.leaf_pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.key_pem()).unwrap();
    dir
}

#[test]
fn the_exact_file_of_the_issue_loads() {
    let dir = dir_with_cert();
    let path = dir.join("proxy.toml");
    std::fs::write(&path, EXACT).unwrap();
    let c = ProxyConfig::load(&path).unwrap();
    let addrs: Vec<_> = c.listeners.iter().map(|l| l.address.as_str()).collect();
    assert_eq!(addrs, ["tcp://127.0.0.1:8080", "tcp://127.0.0.1:8443"]);
    assert!(c.listeners[0].tls.is_none());
    assert!(c.listeners[1].tls.is_some() && !c.listeners[1].self_signed);
    assert_eq!(c.settings.tls_listeners, [1]);
    let (api, stat) = (&c.groups[0], &c.groups[1]);
    assert_eq!((api.name(), stat.name()), ("api", "static"));
    let dials: Vec<_> = api.peers().iter().map(|p| p.dial.as_str()).collect();
    assert_eq!(dials, ["127.0.0.1:9001", "127.0.0.1:9002"]);
    assert_eq!(*api.balance(), Balance::RoundRobin);
    assert_eq!(*api.hash_key(), HashKey::Header("X-User".into()));
    let h = api.health_check().unwrap();
    assert_eq!(
        h.kind,
        CheckKind::Http {
            path: "/health".into(),
            expect: (200, 399)
        }
    );
    assert_eq!(
        (h.interval, h.rise, h.fall),
        (Duration::from_millis(500), 2, 2)
    );
    assert_eq!(
        h.timeout,
        Duration::from_millis(500),
        "at most the interval"
    );
    assert_eq!(
        stat.peers()[0].dial,
        "localhost:9003",
        "resolved when dialing"
    );
    assert!(stat.health_check().is_none());
    let r = &c.router;
    assert_eq!(r.route(Some("api.example.test"), "/v1/users"), Some(0));
    assert_eq!(r.route(Some("www.example.test"), "/static/a.css"), Some(1));
    assert_eq!(r.route(Some("www.example.test"), "/v1/users"), None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn more_keys_servers_with_weights_settings_and_a_self_signed_listener() {
    let text = r#"
[[listener]]
address = "tcp://127.0.0.1:0"
tls = {}

[[upstream]]
name = "a"
servers = ["127.0.0.1:1 weight=3", { address = "http://127.0.0.1:2", weight = 2 }, "https://backend.test"]
balance = "hash"
hash_key = "path"
health = { interval_ms = 100, timeout_ms = 50, expect = "200-204", path = "/h" }
send_proxy_protocol = "v1"
protocol = "h2"

[proxy]
connect_timeout_ms = 250
total_timeout_ms = 90000
down_time_ms = 1500
max_fails = 3
pool_size = 8
max_attempts = 2
rewrite_host = true

[limits]
requests_per_second_per_ip = 50
connections_per_ip = 100
"#;
    let c = ProxyConfig::parse(text, "x.toml", ".".as_ref()).unwrap();
    assert!(c.listeners[0].self_signed && c.listeners[0].tls.is_some());
    let g = &c.groups[0];
    let weights: Vec<_> = g.peers().iter().map(|p| p.weight).collect();
    assert_eq!(weights, [3, 2, 1]);
    assert!(g.peers()[2].tls.is_some(), "https servers carry TLS");
    assert_eq!(*g.hash_key(), HashKey::Path);
    assert_eq!(
        g.send_proxy(),
        Some(wireloop_middleware::proxy_protocol::Version::V1)
    );
    assert_eq!(g.protocol(), crate::UpstreamProtocol::H2);
    let h = g.health_check().unwrap();
    assert_eq!(h.timeout, Duration::from_millis(50));
    assert!(matches!(
        h.kind,
        CheckKind::Http {
            expect: (200, 204),
            ..
        }
    ));
    let s = &c.settings;
    assert_eq!(s.connect_timeout, Duration::from_millis(250));
    assert_eq!(s.total_timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.limits.requests_per_second_per_ip, Some(50));
    assert_eq!(s.limits.connections_per_ip, Some(100));
    assert_eq!((s.max_fails, s.pool_size, s.max_attempts), (3, 8, 2));
    assert_eq!(s.down_time, Duration::from_millis(1500));
    assert!(s.rewrite_host);
    // No routes: everything to the first upstream.
    assert_eq!(c.router.route(Some("any"), "/x"), Some(0));
}

/// Parses `text` as `bad.toml` and returns the error's text.
fn refused(text: &str) -> String {
    match ProxyConfig::parse(text, "bad.toml", ".".as_ref()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "[[listener]]\naddress = \"tcp://127.0.0.1:0\"\n";

fn with_upstream(rest: &str) -> String {
    format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [\"127.0.0.1:1\"]\n{rest}")
}

#[test]
fn bad_files_are_refused_with_file_line_and_reason() {
    let cases: Vec<(String, &str, &str)> = vec![
        ("[[listener]\n".into(), "bad.toml:1:12:", "unclosed array table"),
        (format!("{HEAD}adress = 1\n"), "bad.toml:3:1:", "unknown field `adress`"),
        (with_upstream("[[route]]\nupstream = \"b\"\n"), "bad.toml:7:12:", "no upstream named \"b\""),
        (with_upstream("balance = \"fastest\"\n"), "bad.toml:6:11:", "unknown balance mode"),
        (with_upstream("hash_key = \"cookie\"\n"), "bad.toml:6:", "unknown hash key"),
        (with_upstream("send_proxy_protocol = \"v3\"\n"), "bad.toml:6:23:", "send_proxy_protocol must be \"v1\" or \"v2\""),
        (with_upstream("protocol = \"spdy\"\n"), "bad.toml:6:12:", "protocol must be \"http1\" or \"h2\""),
        (with_upstream("[log]\naccess = \"xml\"\n"), "bad.toml:7:10:", "access:"),
        (with_upstream("[limits]\nconnections_per_ip = 0\n"), "bad.toml:7:22:", "connections_per_ip must be at least 1"),
        (with_upstream("[limits]\nmax_connections = 0\n"), "bad.toml:7:19:", "max_connections must be at least 1"),
        (with_upstream("").replace("tcp://127.0.0.1:0\"", "tcp://127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.0/8\"]"), "bad.toml:3:19:", "trusted_proxies needs proxy_protocol = true"),
        (with_upstream("").replace("tcp://127.0.0.1:0\"", "tcp://127.0.0.1:0\"\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/99\"]"), "bad.toml:4:20:", ""),
        (with_upstream("health = { rise = 0 }\n"), "bad.toml:6:", "rise must be at least 1"),
        (with_upstream("health = { path = \"h\" }\n"), "bad.toml:6:", "must start with /"),
        (with_upstream("health = { expect = 200 }\n"), "bad.toml:6:", "expect needs a path"),
        (with_upstream("health = { path = \"/\", expect = \"x\" }\n"), "bad.toml:6:", "expect is a status"),
        (with_upstream("health = { interval_ms = 0 }\n"), "bad.toml:6:", "interval_ms must be"),
        (with_upstream("[[route]]\npath_prefix = \"static\"\nupstream = \"a\"\n"), "bad.toml:7:15:", "path prefix"),
        (with_upstream("[[route]]\nupstream = \"a\"\nmax_body = -1\n"), "bad.toml:8:12:", "max_body must be 0 or more bytes"),
        (with_upstream("[[route]]\nhost = \"a b\"\nupstream = \"a\"\n"), "bad.toml:7:8:", "bad host name"),
        (with_upstream("[[upstream]]\nname = \"a\"\nservers = [\"127.0.0.1:2\"]\n"), "bad.toml:7:8:", "a second upstream named \"a\""),
        (with_upstream("[proxy]\npool_size = 0\n"), "bad.toml:7:13:", "pool_size must be at least 1"),
        (with_upstream("[proxy]\nread_timeout_ms = -1\n"), "bad.toml:7:", ""),
        (with_upstream("[proxy]\nfoo = 1\n"), "bad.toml:7:1:", "unknown field `foo`"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = []\n"), "bad.toml:5:11:", "no servers"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = \"127.0.0.1:1\"\n"), "bad.toml:5:11:", "invalid type"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [\"ftp://x:1\"]\n"), "bad.toml:5:12:", "scheme"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [\"h:1 weight=0\"]\n"), "bad.toml:5:12:", "weight must be"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [\"h:1 wait=2\"]\n"), "bad.toml:5:12:", "unknown server option"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [{{ adress = \"h:1\" }}]\n"), "bad.toml:5:12:", "unknown server key"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [7]\n"), "bad.toml:5:12:", "a server is"),
        (format!("{HEAD}[[upstream]]\nname = \"a\"\nservers = [\"h:1\"]\ntls_ca = \"nope.pem\"\n"), "bad.toml:6:10:", "cannot read nope.pem"),
        ("[[listener]]\naddress = \"tcp://x:99999\"\n[[upstream]]\nname = \"a\"\nservers = [\"h:1\"]\n".into(), "bad.toml:2:11:", "port"),
        (with_upstream("").replace("tcp://127.0.0.1:0\"", "tcp://127.0.0.1:0\"\ntls = { cert = \"c.pem\" }"), "bad.toml:3:7:", "both cert and key"),
        (with_upstream("").replace("tcp://127.0.0.1:0\"", "tcp://127.0.0.1:0\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }"), "bad.toml:3:", "cannot read"),
        ("[[upstream]]\nname = \"a\"\nservers = [\"h:1\"]\n".into(), "bad.toml: ", "no [[listener]]"),
        (HEAD.into(), "bad.toml: ", "no [[upstream]]"),
    ];
    for (text, place, what) in cases {
        let e = refused(&text);
        assert!(
            e.starts_with(place) && e.contains(what),
            "got {e:?}, want {place} .. {what:?} for:\n{text}"
        );
    }
}

#[test]
fn a_file_that_cannot_be_read_is_named() {
    let e = ProxyConfig::load("/nonexistent/proxy.toml").unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("/nonexistent/proxy.toml", 0));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/proxy.toml: cannot read it"),
        "{e}"
    );
}

#[test]
fn lines_and_columns_count_characters() {
    let text = "ä = 1\n  é x";
    let e = ConfigError::at("f", text, 12..13, "here");
    assert_eq!((e.line, e.column), (2, 5));
    let inside = ConfigError::at("f", text, 10..11, "inside a character");
    assert_eq!((inside.line, inside.column), (2, 3));
    assert_eq!(ConfigError::at("f", text, 99..99, "end").line, 2);
}

#[test]
fn a_tls_listener_takes_more_certificates_by_server_name() {
    let dir = dir_with_cert();
    let text = "[[listener]]\naddress = \"tcp://127.0.0.1:0\"\n\
                tls = { cert = \"cert.pem\", key = \"key.pem\", sni = [{ names = [\"API.example.test\", \"*.cdn.example.test\"], cert = \"cert.pem\", key = \"key.pem\" }] }\n\
                [[upstream]]\nname = \"a\"\nservers = [\"127.0.0.1:1\"]\n";
    let c = ProxyConfig::parse(text, "sni.toml", &dir).unwrap();
    let names: Vec<&str> = c.listeners[0].sni.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["api.example.test", "*.cdn.example.test"]);
    for (bad, want) in [
        (
            "*.cdn.example.test",
            "\"b*.example.test\" is not a server name",
        ),
        ("API.example.test", "\"a:1\" is not a server name"),
    ] {
        let replace = if bad.starts_with('*') {
            "b*.example.test"
        } else {
            "a:1"
        };
        let e = ProxyConfig::parse(&text.replace(bad, replace), "sni.toml", &dir).unwrap_err();
        assert!(
            e.to_string().starts_with("sni.toml:3:") && e.to_string().contains(want),
            "{e}"
        );
    }
    let e = ProxyConfig::parse(
        &text.replace("[\"API.example.test\", \"*.cdn.example.test\"]", "[]"),
        "sni.toml",
        &dir,
    )
    .unwrap_err();
    assert!(e.to_string().contains("sni needs at least one name"), "{e}");
    let e = ProxyConfig::parse(
        &text.replace("key = \"key.pem\" }]", "key = \"nope.pem\" }]"),
        "sni.toml",
        &dir,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");
}

#[test]
fn a_route_may_limit_request_bodies() {
    let text = with_upstream(
        "[[route]]\npath_prefix = \"/up/\"\nupstream = \"a\"\nmax_body = 1048576\n\
         [[route]]\nupstream = \"a\"\n",
    );
    let c = ProxyConfig::parse(&text, "limit.toml", ".".as_ref()).unwrap();
    let up = c.router.target(Some("h"), "/up/file").unwrap();
    assert_eq!((up.group, up.max_body), (0, Some(1 << 20)));
    assert_eq!(c.router.target(Some("h"), "/other").unwrap().max_body, None);
}
