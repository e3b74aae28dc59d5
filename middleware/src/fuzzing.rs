//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test:
//! arbitrary bytes into real layer stacks, driven by [`wireloop::testing::Driver`].
//!
//! The targets keep their drivers between inputs (the crate's `kept` module): each input
//! gets a fresh connection on a kept driver, closed before the next input.

use std::cell::RefCell;
use std::sync::OnceLock;

use wireloop::testing::Driver;
use wireloop::{Action, Conn, Handler};

use crate::kept::{finish, reuse, Drivers};
use crate::{translate, CertKey, ConnInfo, TlsServer, Translate};

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
/// explores every way a stream can be cut into reads; at most 64 of them (each read is a
/// turn of the loop: byte-sized reads of a long input would cost more than the rest).
fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let stream = data.get(1..).unwrap_or_default();
    let step = 1 + data.first().map_or(0, |b| *b as usize % 64);
    stream.chunks(step.max(stream.len().div_ceil(64)))
}

/// Arbitrary bytes, cut into reads, into a TLS server layer above an echo handler: must
/// never panic, and whatever the input, the connection ends closed or still open with
/// nothing but TLS records written.
pub fn tls_server(data: &[u8]) {
    thread_local!(static TLS: Drivers<Stack> = const { RefCell::new(Vec::new()) });
    reuse(&TLS, 0, stack, |d| {
        let c = d.open(1);
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
        finish(d, c);
    });
}

/// The echo handler, under TLS on listener 1 and plain on listener 0.
type Stack = Translate<Echo, TlsServer, fn(&ConnInfo) -> bool>;

fn stack() -> Driver<Stack> {
    fn on_one(c: &ConnInfo) -> bool {
        c.addr_index == 1
    }
    Driver::new(translate(
        Echo,
        on_one as fn(&ConnInfo) -> bool,
        tls_layer(),
    ))
}

/// Arbitrary bytes into a plain and a TLS connection of one translated stack: the plain
/// one must echo exactly, the TLS one must not panic.
pub fn translated_stack(data: &[u8]) {
    thread_local!(static STACK: Drivers<Stack> = const { RefCell::new(Vec::new()) });
    reuse(&STACK, 0, stack, |d| {
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
        finish(d, plain);
        finish(d, tls);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_cut_into_at_most_64_reads() {
        let data = [0u8; 1 + 4096];
        assert_eq!(chunks(&data).count(), 64);
        let data = [1u8; 11];
        assert_eq!(chunks(&data).count(), 5);
    }
}
