//! An HTTP/1.1 backend for proxy tests: it answers every request with `NAME TARGET` and
//! then each header field it received, lower-cased, one per line.

use wireloop::Server;
use wireloop_middleware::http1::{Http1, Request, Response};

use super::TestServer;

/// Starts the backend on a free port of 127.0.0.1.
pub fn header_echo(name: &'static str) -> TestServer {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("backend");
    TestServer::start(server, move |_| {
        Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
            let mut body = format!("{name} {}\n", req.target());
            for (n, v) in req.headers() {
                body.push_str(&format!(
                    "{}: {}\n",
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(v)
                ));
            }
            res.body(body.as_bytes());
        })
    })
}
