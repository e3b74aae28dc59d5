//! Helpers of the proxy's integration tests: servers on their own threads, always shut
//! down and joined, backends, and a blocking client; every wait bounded.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wireloop::{Handle, Handler, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_proxy::{Balance, Group, Peer};

#[path = "../../../../tests/common/wait.rs"]
mod wait;
#[allow(unused_imports)]
pub use wait::wait_until;

/// The bound of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; shut down and joined on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

/// Serves `factory`'s handlers on a free port of 127.0.0.1.
pub fn run<H: Handler, F: Fn(usize) -> H + Sync + Send + 'static>(factory: F) -> Running {
    run_on("tcp://127.0.0.1:0", factory)
}

/// Serves `factory`'s handlers on `addr`.
pub fn run_on<H: Handler, F: Fn(usize) -> H + Sync + Send + 'static>(
    addr: &str,
    factory: F,
) -> Running {
    let server = Server::builder().listen(addr).unwrap().build().unwrap();
    let addr = server.local_addrs()[0].inet().unwrap();
    let handle = server.handle();
    let thread = thread::spawn(move || server.serve(factory).expect("serve"));
    Running {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A backend answering `NAME METHOD TARGET` and then every header line it got.
pub fn backend(name: &'static str) -> Running {
    run(move |_| {
        Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
            let mut body = format!("{name} {} {}\n", req.method(), req.target());
            for (n, v) in req.headers() {
                body.push_str(&format!(
                    "{}: {}\n",
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(v)
                ));
            }
            res.header("X-Backend", name).body(body.as_bytes());
        })
    })
}

/// A port nothing listens on.
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A round-robin group of plain peers at `addrs`.
pub fn group(addrs: &[SocketAddr]) -> Group {
    let peers = addrs
        .iter()
        .map(|a| Peer::parse(&format!("http://{a}")).unwrap())
        .collect();
    Group::new("g", peers, Balance::RoundRobin).unwrap()
}

/// Sends `req` and reads the whole answer (the request asks for `Connection: close`).
pub fn get(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("answer within the timeout");
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` with `Host: host`, closing.
pub fn get_path(addr: SocketAddr, host: &str, path: &str) -> String {
    get(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}
