#!/usr/bin/env bash
# Feature checks, from the repository root: a scratch crate depending on `wireloop` with
# default features off must build without tokio or hickory in its tree; the middleware
# and the proxy crate must build (with -D warnings) with subsets of their features.
set -euo pipefail
root=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
cat > "$scratch/Cargo.toml" <<TOML
[package]
name = "scratch-no-default"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wireloop = { path = "$root", default-features = false }

[workspace]
TOML
cat > "$scratch/src/main.rs" <<'RS'
fn main() {
    let built = wireloop::Server::builder().listen("tcp://127.0.0.1:0").and_then(|b| b.build());
    println!("a server without default features: {}", built.is_ok());
}
RS
tree=$(cd "$scratch" && cargo tree -e normal --prefix none | grep -v "^scratch-no-default")
echo "$tree" | sort -u
if echo "$tree" | grep -Ei '^(tokio|hickory|log) '; then
  echo "error: wireloop with default features off pulls in tokio, hickory or log" >&2
  exit 1
fi
echo "wireloop without default features: $(echo "$tree" | sort -u | wc -l) crates, no tokio, no hickory, no log"
(cd "$scratch" && CARGO_TARGET_DIR="$root/target/scratch" RUSTFLAGS="-D warnings" cargo build -q)

for f in "" codec http1 h2 "h2,tls,ring" proxy-protocol "ring,http1,ws" "tls,aws-lc-rs" "self-signed,ring,codec"; do
  echo "middleware --no-default-features --features '$f'"
  cargo clippy -q -p wireloop-middleware --no-default-features --features "$f" --lib -- -D warnings
done
# wireloop-proxy always has the middleware's http1, h2 and tls; its own features choose the
# provider, the default roots and dns.
for f in "ring" "aws-lc-rs" "ring,webpki-roots,dns" "aws-lc-rs,config"; do
  echo "wireloop-proxy --no-default-features --features '$f'"
  cargo clippy -q -p wireloop-proxy --no-default-features --features "$f" --lib -- -D warnings
done
echo "resolver without dns: cargo test -p wireloop --no-default-features --lib resolver"
cargo test -q -p wireloop --no-default-features --lib resolver
