//! The reverse proxy speaking HTTP/2 to its upstreams (`--upstream-protocol h2`) when
//! they misbehave or need TLS: a Python `h2` server that resets a stream, never answers
//! one, drops its connection, or ends a response with trailers; and the http-server
//! example's TLS port reached with ALPN `h2`. Every process is killed and reaped on drop.

mod common;

use common::process::Process;
use common::tools::{curl, text, PyServer, TempDir};

/// An HTTP/2 (h2c) server answering by path: `/ok` 200 `ok`; `/reset` RST_STREAM
/// INTERNAL_ERROR; `/stall` never; `/die` drops its connection; `/trailers` 200 `body`
/// then the trailer `x-checksum: abc`; `/goaway` 200 `ok`, then GOAWAY; `/halfbody` 4 of
/// its 100 bytes, then nothing. With an argument,
/// it allows that many concurrent streams. Prints its port.
const SERVER: &str = r#"
import socket, sys, threading
import h2.config, h2.connection, h2.events, h2.settings

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None

def serve(sock):
    c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    if limit:
        c.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit})
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for e in c.receive_data(data):
            if isinstance(e, h2.events.RequestReceived):
                path, sid = dict(e.headers)[":path"], e.stream_id
                if path == "/ok":
                    c.send_headers(sid, [(":status", "200"), ("content-length", "2")])
                    c.send_data(sid, b"ok", end_stream=True)
                elif path == "/reset":
                    c.reset_stream(sid, error_code=2)
                elif path == "/die":
                    sock.close()
                    return
                elif path == "/goaway":
                    c.send_headers(sid, [(":status", "200"), ("content-length", "2")])
                    c.send_data(sid, b"ok", end_stream=True)
                    c.close_connection(last_stream_id=sid)
                elif path == "/halfbody":
                    c.send_headers(sid, [(":status", "200"), ("content-length", "100")])
                    c.send_data(sid, b"part")
                elif path == "/trailers":
                    c.send_headers(sid, [(":status", "200")])
                    c.send_data(sid, b"body")
                    c.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
            elif isinstance(e, h2.events.DataReceived):
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        sock.sendall(c.data_to_send())

l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
print(l.getsockname()[1], flush=True)
while True:
    s, _ = l.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
"#;

/// The reverse-proxy example on a free plain port in front of `upstream` over HTTP/2,
/// with `more` arguments.
fn proxy(upstream: &str, more: &[&str]) -> (Process, u16) {
    let mut extra = vec!["--upstream-protocol", "h2"];
    extra.extend_from_slice(more);
    let (p, addr) = common::process::reverse_proxy(upstream, &extra);
    (p, addr.port())
}

/// curl's status code and body for `url` (HTTP/1.1 to the proxy).
fn get(url: &str) -> (String, String) {
    let out = text(&curl(&["-s", "--raw", "-w", "\n%{http_code}", url]));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.to_string(), body.to_string())
}

/// [`SERVER`] with `args`.
fn h2_server(args: &[&str]) -> PyServer {
    PyServer::start(SERVER, args, "pip install h2")
}

#[test]
fn requests_wait_for_stream_room_and_move_on_after_goaway() {
    // One stream at a time on one connection: 400 requests from 32 at once queue for it.
    let server = h2_server(&["1"]);
    let up = server.port;
    let (p, port) = proxy(&format!("http://127.0.0.1:{up}"), &["--pool-size", "1"]);
    common::h2::h2load_gets_every_answer(&format!("http://127.0.0.1:{port}/ok"));
    // A GOAWAY after each answer: the next requests go out on new connections.
    for _ in 0..3 {
        assert_eq!(
            get(&format!("http://127.0.0.1:{port}/goaway")),
            ("200".into(), "ok".into()),
            "{}",
            p.output()
        );
    }
    assert_eq!(get(&format!("http://127.0.0.1:{port}/ok")).0, "200");
    // Answered before its 1 MB request body was all sent: the proxy resets the stream
    // (else it stays half open and holds the one stream allowed), so the next request
    // still gets through.
    let dir = TempDir::new("h2-up-early");
    let body = dir.path().join("body");
    std::fs::write(&body, vec![b'x'; 1 << 20]).unwrap();
    let at = format!("@{}", body.display());
    let url = format!("http://127.0.0.1:{port}/ok");
    let out = text(&curl(&["-s", "-m", "10", "--data-binary", &at, &url]));
    assert_eq!(out, "ok", "{}", p.output());
    for _ in 0..3 {
        let out = text(&curl(&["-s", "-m", "5", &url]));
        assert_eq!(out, "ok", "{}", p.output());
    }
}

#[test]
fn upstream_resets_stalls_drops_and_trailers_reach_the_client_right() {
    let server = h2_server(&[]);
    let up = server.port;
    let (p, port) = proxy(
        &format!("http://127.0.0.1:{up}"),
        &[
            "--upstream-timeout",
            "0.5",
            "--read-timeout",
            "0.5",
            "--down-time",
            "0.01",
        ],
    );
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    assert_eq!(
        get(&url("/ok")),
        ("200".into(), "ok".into()),
        "{}",
        p.output()
    );
    // A reset stream: the client gets a 502; the connection carries on.
    assert_eq!(get(&url("/reset")).0, "502", "{}", p.output());
    assert_eq!(get(&url("/ok")).0, "200");
    // No response head within --upstream-timeout: 504, and that stream is reset.
    assert_eq!(get(&url("/stall")).0, "504", "{}", p.output());
    assert_eq!(get(&url("/ok")).0, "200", "{}", p.output());
    // The upstream drops the connection: 502; the next request dials a new one.
    assert_eq!(get(&url("/die")).0, "502", "{}", p.output());
    assert_eq!(get(&url("/ok")).0, "200", "{}", p.output());
    // A body that stops coming: cut off after --read-timeout, not held for ever.
    let (code, body) = common::tools::curl_status(&[&url("/halfbody")]);
    assert_eq!(code, 18, "curl's partial-transfer error; {}", p.output());
    assert_eq!(body, b"part");
    assert_eq!(get(&url("/ok")).0, "200", "{}", p.output());
    // Trailers, in the last chunk's trailer section of an HTTP/1.1 client's response.
    let (code, raw) = get(&url("/trailers"));
    assert_eq!(code, "200");
    assert_eq!(
        raw,
        "4\r\nbody\r\n0\r\nx-checksum: abc\r\n\r\n",
        "{}",
        p.output()
    );
}

#[test]
fn an_https_upstream_is_spoken_to_in_h2_by_alpn() {
    let dir = TempDir::new("h2-up-tls");
    let cert = dir.path().join("cert.pem");
    let (_backend, _, tlsport) = common::process::http_server(Some(&cert));
    let (p, port) = proxy(
        &format!("https://localhost:{tlsport}"),
        &["--upstream-ca", cert.to_str().unwrap()],
    );
    let out = text(&curl(&["-s", "-i", &format!("http://127.0.0.1:{port}/")]));
    assert!(out.contains("Hello World!"), "{out}\n{}", p.output());
    // It came over HTTP/2 (ALPN h2 on the upstream's TLS).
    assert!(
        out.to_ascii_lowercase().contains("via: 2 wireloop"),
        "{out}"
    );
}
