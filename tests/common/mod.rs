//! Helpers shared by the integration tests: the binary, trained models, a running server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// The binary under test, with a clean environment for the variables it reads.
pub fn bin() -> Command {
    let mut c = Command::cargo_bin("iris-trainer").expect("binary built by cargo test");
    c.env_remove("MODEL_DIR")
        .env_remove("PORT")
        .env_remove("IRIS_TRAINER_REQUIRE_GPU")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("MLFLOW_TRACKING_TOKEN");
    c
}

/// `bin()` for assert_cmd's fluent assertions.
pub fn cmd() -> assert_cmd::Command {
    assert_cmd::Command::from_std(bin())
}

/// A command that must fail: `cmd.fails(4, &["line 3", "not a number"])` runs it (or takes its
/// finished output) and asserts the exit code, an `error: ` line on stderr, that stderr names
/// each of `needles`, and that nothing panicked. Returns stderr.
pub trait Fails {
    /// Asserts the failure; see the trait.
    fn fails(&mut self, code: i32, needles: &[&str]) -> String;
}

impl Fails for Output {
    #[track_caller]
    fn fails(&mut self, code: i32, needles: &[&str]) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr).into_owned();
        assert_eq!(
            self.status.code(),
            Some(code),
            "exit code; stderr: {stderr}"
        );
        assert!(
            stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error: ` line in: {stderr}"
        );
        for n in needles {
            assert!(stderr.contains(n), "expected `{n}` in: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

impl Fails for Command {
    #[track_caller]
    fn fails(&mut self, code: i32, needles: &[&str]) -> String {
        self.output().unwrap().fails(code, needles)
    }
}

impl Fails for assert_cmd::Command {
    #[track_caller]
    fn fails(&mut self, code: i32, needles: &[&str]) -> String {
        self.output().unwrap().fails(code, needles)
    }
}

/// A model trained once per test binary with the default config into a shared directory.
/// Tests must not modify it; copy it with [`copy_model`] first.
pub fn shared_model() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = bin()
            .args(["--quiet", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// Trains quietly for `epochs` epochs into `out`, asserting success.
pub fn train_into(out: &Path, epochs: u32) {
    cmd()
        .args(["--quiet", "--epochs", &epochs.to_string(), "--out"])
        .arg(out)
        .assert()
        .success();
}

/// Copies a model directory's files into a fresh temporary directory.
pub fn copy_model(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.mpk", "model.json", "metrics.csv", "model.txt"] {
        std::fs::copy(from.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Reads `model.json`.
pub fn metadata(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap()
}

/// Every file in a directory with its bytes, sorted, to compare before and after.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.path().is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                b"<dir>".to_vec()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Writes a file into `dir` and returns its path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// A running `iris-trainer serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the service on an ephemeral loopback port and waits until it listens.
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = bin()
            .args(["serve", "--addr", "127.0.0.1:0", "--model"])
            .arg(model)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", lines.lock().unwrap()));
        Server {
            child,
            base,
            stderr: lines,
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit (up to `limit`), returning its status.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns 4xx/5xx answers instead of errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET, returning status and body.
pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

/// POST JSON text, returning status and body.
pub fn post(url: &str, body: &str) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

/// Parses a JSON body.
pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Runs `predict --format json --input -` with `command` (a CPU or wgpu binary) on CSV `rows`,
/// asserting success, and returns the `predictions` array.
pub fn predict_json(mut command: Command, model: &Path, rows: &str) -> Vec<Value> {
    use std::io::Write;
    let out = command
        .args(["predict", "-f", "json", "--input", "-", "-m"])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(rows.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["predictions"].as_array().unwrap().clone()
}
