//! Checkpoints: a run killed part-way and run again ends with the uninterrupted run's model.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use predicates::str::contains;

use crate::common::{bin, cmd, write};

const CHECKPOINT: &str = ".checkpoint.mpk";

/// A seeded table of `rows` rows: six numeric features, three overlapping classes (so training
/// keeps changing the weights for many epochs).
fn synthetic_csv(dir: &Path, rows: usize) -> PathBuf {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: enough to make a reproducible table without a dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("a,b,c,d,e,f,label\n");
    for i in 0..rows {
        let class = i % 3;
        let values: Vec<String> = (0..6)
            .map(|j| format!("{:.4}", (class * (j % 2 + 1)) as f64 * 0.6 + next() * 2.0))
            .collect();
        csv += &format!("{},k{class}\n", values.join(","));
    }
    write(dir, "table.csv", csv)
}

/// The training command every run of a test uses: minibatches, dropout (so the backend's
/// generator matters), early stopping (so its state and the best weights are carried), and a
/// checkpoint every 2 epochs.
fn training(dir: &Path, data: &Path, out: &Path, epochs: usize) -> std::process::Command {
    let config = write(
        dir,
        "run.toml",
        "[model]\nhidden = [24, 12]\ndropout = 0.2\n\
         [training]\nbatch_size = 16\nearly_stopping_patience = 1000\ncheckpoint_every = 2\n",
    );
    let mut c = bin();
    c.arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["--epochs", &epochs.to_string(), "--out"])
        .arg(out);
    c
}

/// Waits until `path` exists (the run has saved a checkpoint), failing if `child` ends first.
fn wait_for(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before writing {}", path.display());
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The model directory's files that must match the uninterrupted run's.
fn results(out: &Path) -> (Vec<u8>, String) {
    (
        std::fs::read(out.join("model.mpk")).unwrap(),
        std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
    )
}

/// Runs the command again to completion and checks it resumed and matched `expected`.
fn resume_and_compare(mut again: std::process::Command, out: &Path, expected: &(Vec<u8>, String)) {
    let done = again.output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming from the checkpoint of epoch"),
        "did not resume: {stderr}"
    );
    let got = results(out);
    assert!(
        got.0 == expected.0,
        "model.mpk differs from the uninterrupted run's"
    );
    assert_eq!(got.1, expected.1, "metrics.csv differs");
    assert!(!out.join(CHECKPOINT).exists(), "checkpoint left behind");
}

#[cfg(unix)]
#[test]
fn a_killed_run_run_again_ends_with_the_uninterrupted_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_csv(dir.path(), 600);
    let epochs = 40;
    let whole = dir.path().join("whole");
    let out = training(dir.path(), &data, &whole, epochs)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!whole.join(CHECKPOINT).exists());
    let expected = results(&whole);

    // SIGKILL at a random point after the first checkpoint: nothing is written on the way out.
    let killed = dir.path().join("killed");
    let mut child = training(dir.path(), &data, &killed, epochs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&killed.join(CHECKPOINT), &mut child);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 200)));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed");
    assert!(!killed.join("model.mpk").exists(), "a model was saved");
    resume_and_compare(
        training(dir.path(), &data, &killed, epochs),
        &killed,
        &expected,
    );

    // SIGTERM: the run saves its progress and exits 143; the model directory keeps no model.
    let termed = dir.path().join("termed");
    let mut child = training(dir.path(), &data, &termed, epochs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&termed.join(CHECKPOINT), &mut child);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("progress saved at epoch"), "{stderr}");
    assert!(!termed.join("model.mpk").exists());
    resume_and_compare(
        training(dir.path(), &data, &termed, epochs),
        &termed,
        &expected,
    );
}

#[test]
fn a_checkpoint_of_another_run_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_csv(dir.path(), 90);
    let out = dir.path().join("m");
    std::fs::create_dir(&out).unwrap();
    let fresh = dir.path().join("fresh");
    training(dir.path(), &data, &fresh, 3)
        .arg("--quiet")
        .output()
        .unwrap();
    // Not a checkpoint at all, then a checkpoint of a run with another seed.
    std::fs::write(out.join(CHECKPOINT), "not a checkpoint").unwrap();
    let mut run = training(dir.path(), &data, &out, 3);
    let done = run.output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("not resuming"), "{stderr}");
    assert_eq!(results(&out), results(&fresh));

    let other = dir.path().join("other");
    let mut child = training(dir.path(), &data, &other, 1000)
        .args(["--seed", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&other.join(CHECKPOINT), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::copy(other.join(CHECKPOINT), out.join(CHECKPOINT)).unwrap();
    let done = training(dir.path(), &data, &out, 3).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("written by a run with other data or settings"),
        "{stderr}"
    );
    assert_eq!(results(&out), results(&fresh));
}

#[test]
fn checkpoint_every_is_validated() {
    cmd()
        .args(["--checkpoint-every", "0", "--epochs", "1", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .assert()
        .code(3)
        .stderr(contains("training.checkpoint_every"));
}
