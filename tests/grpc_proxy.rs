//! gRPC through the reverse proxy: Python's `grpcio` client (h2c, prior knowledge) calls
//! a `grpcio` server behind the reverse-proxy example speaking HTTP/2 upstream
//! (`--upstream-protocol h2`): unary, server-streaming, client-streaming and
//! bidirectional calls, and an error status. gRPC needs HTTP/2 and trailers end to end:
//! the status travels in the response's trailer section, `te: trailers` in the request.
//! Every process is killed and reaped on drop.

mod common;

use std::process::{Command, Stdio};

use common::tools::{text, PyServer};

/// A `grpcio` server on a free port with byte-for-byte methods of service `t.Echo`:
/// `Unary` (the request reversed), `Stream` (as many messages as the request's first
/// byte), `Collect` (the total length of the messages received, as text), `Chat` (each
/// message back, upper-cased) and `Fail` (status NOT_FOUND).
const SERVER: &str = r#"
import sys
from concurrent import futures
import grpc

def unary(req, ctx):
    return req[::-1]

def stream(req, ctx):
    for i in range(req[0]):
        yield bytes([i]) * 1000

def collect(reqs, ctx):
    return str(sum(len(r) for r in reqs)).encode()

def chat(reqs, ctx):
    for r in reqs:
        yield r.upper()

def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Collect": grpc.stream_unary_rpc_method_handler(collect),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
"#;

/// The client: each call through the proxy at `argv[1]`, one line of result each.
const CLIENT: &str = r#"
import sys
import grpc

with grpc.insecure_channel(sys.argv[1]) as ch:
    grpc.channel_ready_future(ch).result(timeout=20)
    big = bytes(range(256)) * 400
    got = ch.unary_unary("/t.Echo/Unary")(big, timeout=20)
    print("unary", got == big[::-1], len(got))
    msgs = list(ch.unary_stream("/t.Echo/Stream")(bytes([100]), timeout=20))
    print("stream", len(msgs), all(m == bytes([i]) * 1000 for i, m in enumerate(msgs)))
    total = ch.stream_unary("/t.Echo/Collect")(iter([b"x" * 5000] * 40), timeout=20)
    print("collect", total.decode())
    replies = list(ch.stream_stream("/t.Echo/Chat")(iter([b"a", b"bc", b"def"]), timeout=20))
    print("chat", b",".join(replies).decode())
    try:
        ch.unary_unary("/t.Echo/Fail")(b"?", timeout=20)
        print("fail none")
    except grpc.RpcError as e:
        print("fail", e.code().name, e.details())
"#;

#[test]
fn grpc_calls_pass_through_the_proxy_with_their_trailers() {
    let server = PyServer::start(SERVER, &[], "pip install grpcio");
    let up = server.port;
    let (proxy, addr) = common::process::reverse_proxy(
        &format!("http://127.0.0.1:{up}"),
        &["--upstream-protocol", "h2"],
    );
    let port = addr.port();
    let out = Command::new("python3")
        .args(["-c", CLIENT, &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "grpc client: {}\n{}",
        text(&out.stderr),
        proxy.output()
    );
    assert_eq!(
        text(&out.stdout),
        "unary True 102400\n\
         stream 100 True\n\
         collect 200000\n\
         chat A,BC,DEF\n\
         fail NOT_FOUND no such thing\n",
        "{}",
        proxy.output()
    );
}
