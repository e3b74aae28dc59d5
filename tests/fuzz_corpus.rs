//! Replays every file of the cargo-fuzz corpora in `fuzz/corpus/<target>/` (the minimised
//! corpora `fuzz/run.sh` keeps) and of `fuzz/regressions/<target>/` (each input that once
//! crashed or hung a target, under a name saying what it was) through the target bodies in
//! `wireloop::fuzzing` and `wireloop_middleware::fuzzing`, so a plain `cargo test` catches
//! regressions on inputs the fuzzer once found (no nightly, no cargo-fuzz needed).

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A fuzz target's name (its corpus is `fuzz/corpus/<name>/`) and its body.
type Target = (&'static str, fn(&[u8]));

/// Fuzz targets and their bodies; add a row for each new target in `fuzz/fuzz_targets/`.
const TARGETS: &[Target] = &[
    ("addr", wireloop::fuzzing::addr as fn(&[u8])),
    ("tls_server", wireloop_middleware::fuzzing::tls_server),
    (
        "translated_stack",
        wireloop_middleware::fuzzing::translated_stack,
    ),
    ("resp", wireloop_middleware::codec::fuzzing::resp),
    (
        "length_prefixed",
        wireloop_middleware::codec::fuzzing::length_prefixed,
    ),
    ("lines", wireloop_middleware::codec::fuzzing::lines),
    (
        "hpack_decode",
        wireloop_middleware::h2::hpack::fuzzing::decode,
    ),
    (
        "http1_request",
        wireloop_middleware::http1::fuzzing::request,
    ),
    ("http1_parse", wireloop_middleware::http1::fuzzing::parse),
    (
        "http1_chunked",
        wireloop_middleware::http1::fuzzing::chunked,
    ),
    (
        "http1_response",
        wireloop_middleware::http1::fuzzing::response,
    ),
    ("ws_frames", wireloop_middleware::ws::fuzzing::frames),
    ("h2_frames", wireloop_middleware::h2::frame::fuzzing::frames),
    ("h2_server", wireloop_middleware::h2::conn::fuzzing::server),
    ("h2_client", wireloop_middleware::h2::conn::fuzzing::client),
    ("sni_hello", wireloop_proxy::fuzzing::sni_hello),
    ("proxy_config", wireloop_proxy::fuzzing::proxy_config),
    (
        "proxy_header",
        wireloop_middleware::proxy_protocol::fuzzing::header,
    ),
];

fn corpus_dir(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// Where the inputs of fixed crashes and timeouts of `target` are kept (may not exist).
fn regressions_dir(target: &str) -> PathBuf {
    fuzz_dir().join("regressions").join(target)
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every regular file under `dir`, recursively, sorted for a stable order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("cannot read corpus directory {}: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn replay_fuzz_corpora() {
    let mut failures = Vec::new();
    let mut total = 0;
    for &(target, run) in TARGETS {
        let dir = corpus_dir(target);
        assert!(
            dir.is_dir(),
            "corpus directory {} is missing for fuzz target {target:?}",
            dir.display()
        );
        let mut inputs = files(&dir);
        assert!(
            !inputs.is_empty(),
            "corpus directory {} is empty",
            dir.display()
        );
        let regressions = regressions_dir(target);
        if regressions.is_dir() {
            inputs.extend(files(&regressions));
        }
        for path in inputs {
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            total += 1;
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let msg = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic payload)");
                failures.push(format!("{target}: {}: {msg}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} corpus inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regressions_belong_to_targets() {
    let dir = fuzz_dir().join("regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let name = entry.expect("regressions entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} names no fuzz target"
        );
    }
}
