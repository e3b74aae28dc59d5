//! The examples behave like tools: a bad option value is refused with exit status 2 and an
//! error naming the option and the value, `--loops` 0 and negatives (but -1) are refused,
//! every example has a default port of its own (and the README's table says which), and
//! `--tlsport 0` turns http-server's TLS listener off (a certificate option without a TLS
//! listener is a usage error). Every child is bounded and reaped.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;

use common::process::Process;
use common::{example_bin, TIMEOUT};

/// Every example, with the arguments that come before its options.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("echo-server", &[]),
    ("udp-echo", &[]),
    ("tls-echo", &[]),
    ("http-server", &[]),
    ("reverse-proxy", &[]),
    ("api-gateway", &[]),
    ("websocket-chat", &[]),
    ("websocket-echo", &[]),
    ("redis-server", &[]),
    ("length-prefixed", &["server"]),
    ("tcp-proxy", &[]),
];

fn bin(name: &str) -> PathBuf {
    example_bin(name)
}

/// Runs an example that should exit at once; returns its status, stdout and stderr. A
/// child still running after [`TIMEOUT`] is killed and fails the test.
fn run(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        let _ = tx.send((o, e));
    });
    let Ok((o, e)) = rx.recv_timeout(TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name} {args:?} did not exit within {TIMEOUT:?}");
    };
    let status = child.wait().expect("wait");
    (status, o, e)
}

fn with(prefix: &[&str], args: &[&str]) -> Vec<String> {
    prefix.iter().chain(args).map(|s| s.to_string()).collect()
}

#[test]
fn bad_values_name_the_option_and_the_value() {
    for (name, prefix) in EXAMPLES {
        // tcp-proxy takes addresses, not ports.
        let opt = if *name == "tcp-proxy" {
            "--connect-timeout"
        } else {
            "--port"
        };
        let args = with(prefix, &[opt, "notanumber"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, err) = run(name, &args);
        assert_eq!(status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{opt}: invalid value \"notanumber\"")),
            "{name}: {err}"
        );
    }
    let (status, _, err) = run("echo-server", &["--idle-timeout", "soon"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains(r#"--idle-timeout: invalid value "soon""#),
        "{err}"
    );
}

#[test]
fn loops_zero_and_negatives_are_refused() {
    for (name, prefix) in EXAMPLES {
        for bad in ["0", "-5", "lots"] {
            let args = with(prefix, &["--loops", bad]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (status, _, err) = run(name, &args);
            assert_eq!(status.code(), Some(2), "{name} --loops {bad}: {err}");
            assert!(
                err.contains(&format!("--loops: invalid value \"{bad}\"")),
                "{name} --loops {bad}: {err}"
            );
        }
    }
}

/// The default ports an example's `--help` states: `--port`'s and `--tlsport`'s, or
/// tcp-proxy's default listen address.
fn default_ports(name: &str, help: &str) -> Vec<u16> {
    let number = |text: &str| -> u16 {
        let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("{name}: no port in {text:?}"))
    };
    if name == "tcp-proxy" {
        let at = help
            .find("default tcp://0.0.0.0:")
            .expect("tcp-proxy's default listen");
        return vec![number(&help[at + "default tcp://0.0.0.0:".len()..])];
    }
    let mut ports = Vec::new();
    for opt in ["--port N", "--tlsport N"] {
        let Some(line) = help.lines().find(|l| l.trim_start().starts_with(opt)) else {
            continue;
        };
        let at = line
            .find("(default ")
            .unwrap_or_else(|| panic!("{name}: {line}"));
        let p = number(&line[at + "(default ".len()..]);
        if p != 0 {
            ports.push(p);
        }
    }
    ports
}

#[test]
fn every_example_has_its_own_default_port_and_the_readme_says_which() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut owner: HashMap<u16, &str> = HashMap::new();
    for (name, _) in EXAMPLES {
        let (status, help, err) = run(name, &["--help"]);
        assert!(status.success(), "{name} --help: {err}");
        let ports = default_ports(name, &help);
        assert!(!ports.is_empty(), "{name}: no default port in its help");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{name} is not in the README's table"));
        let column = row.split('|').nth(2).unwrap_or_default();
        for p in ports {
            if let Some(other) = owner.insert(p, name) {
                panic!("{name} and {other} both default to port {p}");
            }
            assert!(
                column.contains(&p.to_string()),
                "README row of {name} does not say port {p}: {column:?}"
            );
        }
    }
}

#[test]
fn http_server_without_tls_serves_plain_http_only() {
    let args: Vec<String> = ["--port", "0", "--tlsport", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let p = Process::start(&bin("http-server"), &args, "http-server: http://", TIMEOUT)
        .unwrap_or_else(|e| panic!("http-server: {e}"));
    let line = p.log.lock().unwrap().last().cloned().unwrap_or_default();
    assert!(!line.contains("https://"), "{line}");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split([',', ' ']).next())
        .expect("address")
        .replace("0.0.0.0", "127.0.0.1");
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.trim_end().ends_with("Hello World!"), "{resp}");
}

#[test]
fn a_certificate_without_a_tls_listener_is_refused() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "http-server",
            &["--tlsport", "0", "--tlscert", "x.pem"],
            "need a --tlsport other than 0",
        ),
        (
            "reverse-proxy",
            &[
                "--upstream",
                "http://127.0.0.1:1",
                "--tlsport",
                "0",
                "--cert-out",
                "x.pem",
            ],
            "need a --tlsport other than 0",
        ),
        (
            "tcp-proxy",
            &["--upstream", "127.0.0.1:1", "--tlscert", "x.pem"],
            "need a --tls-listen",
        ),
    ];
    for (name, args, want) in cases {
        let (status, _, err) = run(name, args);
        assert_eq!(status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}
