//! Building and finding the example binaries the end-to-end tests run. Shared by the
//! integration tests of both crates (`middleware/tests/common` includes this file).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Builds example `name` into the target directory of this test (same profile) with
/// `$CARGO build -p wireloop --example`, and returns its path. `cargo test` builds examples, but
/// `cargo test --test X` does not, so the test builds what it runs; a second call for the
/// same example is a fast no-op for cargo.
///
/// The variables cargo set for this test (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...) are
/// removed from the build's environment: build scripts that track them (ring's) would see
/// a changed environment and rebuild on every run.
pub fn example_bin(name: &str) -> PathBuf {
    build(name).unwrap_or_else(|e| panic!("{e}"))
}

fn build(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("no deps dir")?;
    let profile_dir = deps.parent().ok_or("no profile dir")?;
    let bin = profile_dir.join("examples").join(name);
    let target_dir = profile_dir.parent().ok_or("no target dir")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "-p",
            "wireloop",
            "--example",
            name,
            "--target-dir",
        ])
        .arg(target_dir)
        .stdin(Stdio::null());
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        // Some other profile or layout: use what `cargo test` built.
        _ => return Ok(bin),
    }
    let status = cmd
        .status()
        .map_err(|e| format!("run cargo build --example {name}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --example {name}: {status}"));
    }
    if !bin.exists() {
        return Err(format!("{} not found after building it", bin.display()));
    }
    Ok(bin)
}

/// The lines a child process writes to one of its pipes, collected by a thread for the
/// child's whole life (so it never blocks on a full pipe) and passed on, so a test can wait
/// for the line that says the child is ready.
pub struct ChildLog {
    /// Every line so far.
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    rx: std::sync::mpsc::Receiver<String>,
}

impl ChildLog {
    /// Starts reading `pipe` (a child's stderr or stdout) line by line.
    pub fn spawn(pipe: impl std::io::Read + Send + 'static) -> ChildLog {
        use std::io::BufRead;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let all = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                all.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        ChildLog { lines, rx }
    }

    /// Waits until a line containing `needle` arrives, up to `timeout`; on failure the
    /// error holds every line so far.
    pub fn wait_for(&self, needle: &str, timeout: std::time::Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(()),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "no line with {needle:?} within {timeout:?}; output: {:?}",
                        self.lines.lock().unwrap()
                    ))
                }
            }
        }
    }
}
