//! A protocol switch replaces the protocol: after a WebSocket upgrade under TLS, the
//! HTTP/1.1 adapter's state for the connection is gone (dropped, counted out) while TLS
//! still carries the connection, and the upgraded protocol is served directly.
//! Client: tungstenite over rustls.

mod common;

use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use wireloop::layer::Layers;
use wireloop::{Action, Conn, Control, Error, Handler, Server};
use wireloop_middleware::http1::{Http1, Http1Conn, Request, Response};
use wireloop_middleware::ws::{Message, WebSocket, Ws, WsHandler};
use wireloop_middleware::{translate, CertKey, TlsServer, TlsSession};

use common::{recv, TestServer, TIMEOUT};

struct Echo;

impl WsHandler for Echo {
    type State = ();
    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        ws.send(msg);
    }
}

fn no_page(_: &Request<'_>, res: &mut Response<'_>) {
    res.status(404).body(b"");
}

type Page = for<'a, 'b, 'c> fn(&'a Request<'b>, &'c mut Response<'_>);
type App = WebSocket<Page, Echo>;
type State = Http1Conn<<App as wireloop_middleware::http1::App>::State>;

/// What the probe saw after a callback: connections the adapter serves, how many of them
/// still speak HTTP/1.1, whether the connection's own state still holds HTTP, and
/// whether it is under TLS.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    conns: usize,
    http: usize,
    this_is_http: bool,
    tls: bool,
}

/// Passes everything to `translate(Http1(WebSocket))` and reports after each input.
struct Probe {
    inner: wireloop_middleware::Translate<
        Http1<App>,
        TlsServer,
        fn(&wireloop_middleware::ConnInfo) -> bool,
    >,
    tx: Sender<Seen>,
}

impl Probe {
    fn report(&mut self, conn: &Conn<'_, State>) {
        let http = self.inner.inner();
        let _ = self.tx.send(Seen {
            conns: http.connections(),
            http: http.http_connections(),
            this_is_http: conn.state.is_http(),
            tls: conn.layer::<TlsSession>().is_some(),
        });
    }
}

impl Handler for Probe {
    type State = State;
    fn layers(&mut self, layers: &mut Layers<'_>) {
        self.inner.layers(layers)
    }
    fn serving(&mut self, ctl: &mut Control<'_, State>) -> Action {
        self.inner.serving(ctl)
    }
    fn opened(&mut self, conn: &mut Conn<'_, State>) -> Action {
        self.inner.opened(conn)
    }
    fn data(&mut self, conn: &mut Conn<'_, State>) -> Action {
        let a = self.inner.data(conn);
        self.report(conn);
        a
    }
    fn eof(&mut self, conn: &mut Conn<'_, State>) -> Action {
        self.inner.eof(conn)
    }
    fn writable(&mut self, conn: &mut Conn<'_, State>) -> Action {
        self.inner.writable(conn)
    }
    fn woken(&mut self, conn: &mut Conn<'_, State>) -> Action {
        self.inner.woken(conn)
    }
    fn post_write(&mut self, conn: &mut Conn<'_, State>, written: usize) {
        self.inner.post_write(conn, written)
    }
    fn closing(&mut self, conn: &mut Conn<'_, State>) {
        self.inner.closing(conn)
    }
    fn closed(&mut self, conn: &mut Conn<'_, State>, err: Option<Error>) {
        self.inner.closed(conn, err);
        self.report(conn);
    }
}

#[test]
fn websocket_upgrade_under_tls_drops_the_http_state() {
    let cert = CertKey::self_signed(&["localhost".to_string()]).expect("certificate");
    let tls = TlsServer::builder(cert.clone()).build().expect("tls");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .and_then(|b| b.build())
        .expect("server");
    let (tx, rx) = mpsc::channel();
    let srv = TestServer::start(server, move |_| Probe {
        inner: translate(
            Http1::server(WebSocket::new(no_page as Page, Echo)),
            (|_: &wireloop_middleware::ConnInfo| true) as fn(&_) -> bool,
            tls.clone(),
        ),
        tx: tx.clone(),
    });
    let port = srv.tcp_addr(0).port();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            cert.leaf_der().to_vec(),
        ))
        .expect("trust the certificate");
    let cfg =
        rustls::ClientConfig::builder_with_provider(wireloop_middleware::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("TLS client");
    let stream = rustls::StreamOwned::new(conn, tcp);
    let (mut ws, res) = tungstenite::client(format!("wss://localhost:{port}/ws"), stream)
        .unwrap_or_else(|e| panic!("wss handshake: {e}"));
    assert_eq!(res.status(), 101);

    // The upgrade request was HTTP: the report after it shows the switch done.
    let after_upgrade = recv(&rx, TIMEOUT, "report after the upgrade request");
    assert_eq!(
        after_upgrade,
        Seen {
            conns: 1,
            http: 0,
            this_is_http: false,
            tls: true
        },
        "after the 101, Http1 keeps no HTTP state for the connection"
    );

    for text in ["one", "two"] {
        ws.send(tungstenite::Message::text(text)).expect("send");
        match ws.read().expect("echo") {
            tungstenite::Message::Text(t) => assert_eq!(t.as_str(), text),
            other => panic!("unexpected {other:?}"),
        }
        let seen = recv(&rx, TIMEOUT, "report after a frame");
        assert_eq!((seen.http, seen.this_is_http, seen.tls), (0, false, true));
    }
    ws.close(None).expect("close");
    // The server answers the close and closes; tungstenite reads to the end.
    while ws.read().is_ok() {}
    let mut last = recv(&rx, TIMEOUT, "report at close");
    while last.conns != 0 {
        last = recv(&rx, TIMEOUT, "report at close");
    }
    assert_eq!((last.conns, last.http), (0, 0));
    drop(ws);
    srv.stop().expect("stop");
}
