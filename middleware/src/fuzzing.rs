//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test:
//! arbitrary bytes into real layer stacks, driven by [`wireloop::testing::Driver`].

use std::sync::OnceLock;

use wireloop::testing::Driver;
use wireloop::{Action, Conn, Handler};

use crate::{translate, CertKey, TlsServer};

/// Echoes what it receives (the handler above the layers).
struct Echo;

impl Handler for Echo {
    type State = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let (input, mut out) = conn.split();
        out.write(input);
        let n = input.len();
        conn.consume(n);
        Action::None
    }
}

fn tls_layer() -> TlsServer {
    static TLS: OnceLock<TlsServer> = OnceLock::new();
    TLS.get_or_init(|| {
        let cert = CertKey::self_signed(&["localhost".to_string()]).expect("test certificate");
        TlsServer::builder(cert)
            .alpn(&[b"http/1.1"])
            .build()
            .expect("test TLS layer")
    })
    .clone()
}

/// Splits `data` into chunks whose sizes come from the data itself, so the fuzzer
/// explores every way a stream can be cut into reads.
fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let step = 1 + data.first().map_or(0, |b| *b as usize % 64);
    data.get(1..).unwrap_or_default().chunks(step)
}

/// Arbitrary bytes, cut into reads, into a TLS server layer above an echo handler: must
/// never panic, and whatever the input, the connection ends closed or still open with
/// nothing but TLS records written.
pub fn tls_server(data: &[u8]) {
    let mut d = Driver::new(translate(Echo, |_| true, tls_layer()));
    let c = d.open(0);
    for piece in chunks(data) {
        if !d.feed(c, piece) {
            break;
        }
        let out = d.take_output(c);
        // Anything the layer writes is a TLS record: content type 20..=24.
        if let Some(&t) = out.first() {
            assert!((20..=24).contains(&t), "non-TLS byte {t} written first");
        }
    }
    d.eof(c);
    let _ = d.take_output(c);
}

/// Arbitrary bytes into a plain and a TLS connection of one translated stack: the plain
/// one must echo exactly, the TLS one must not panic.
pub fn translated_stack(data: &[u8]) {
    let mut d = Driver::new(translate(Echo, |c| c.addr_index == 1, tls_layer()));
    let plain = d.open(0);
    let tls = d.open(1);
    let mut echoed = Vec::new();
    for piece in chunks(data) {
        d.feed(plain, piece);
        echoed.extend(d.take_output(plain));
        d.feed(tls, piece);
        let _ = d.take_output(tls);
    }
    assert_eq!(
        echoed,
        data.get(1..).unwrap_or_default(),
        "plain side must echo exactly"
    );
    d.eof(plain);
    d.eof(tls);
}
