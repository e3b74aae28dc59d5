//! Anchor for the WebSocket echo benchmark: tokio-tungstenite on a current-thread tokio
//! runtime (one core), echoing every text and binary message. This is the library's own
//! echo-server example shape: `read.forward(write)`, which batches replies until the read
//! side would block.
//!
//! usage: ws-echo-tungstenite PORT

use futures_util::{StreamExt, TryStreamExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: ws-echo-tungstenite PORT");
            std::process::exit(2)
        });
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
            let (write, read) = ws.split();
            let _ = read
                .try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
                .forward(write)
                .await;
        });
    }
}
