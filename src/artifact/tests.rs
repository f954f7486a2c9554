//! The model directory's locking, staging, commit and crash recovery, on real directories.
//! Saves are driven through `replace_files` with plain file contents, so these tests need no
//! trained network and no metadata.

use std::sync::mpsc;
use std::time::Duration;

use super::*;

/// A fresh model directory, write-locked as a training run holds it.
fn locked() -> (tempfile::TempDir, ModelDir, WriteLock) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(tmp.path().join("model"));
    let lock = dir.lock_for_writing().unwrap();
    (tmp, dir, lock)
}

/// The model's files, in the order the assertions below list them.
const NAMES: [&str; 4] = [METRICS_FILE, SUMMARY_FILE, RECORD_FILE, METADATA_FILE];

/// Writes every model file into `dir`, each holding `tag` and its own name.
fn write_files(dir: &Path, tag: &str) {
    for name in NAMES {
        fs::write(dir.join(name), format!("{tag} {name}")).unwrap();
    }
}

/// Which model's version of each file `dir` holds (its tag, or `-` when missing), in `NAMES`
/// order: metrics, summary, record, metadata.
fn tags(dir: &Path) -> Vec<String> {
    NAMES
        .iter()
        .map(|name| match fs::read_to_string(dir.join(name)) {
            Ok(s) => s.split(' ').next().unwrap().to_string(),
            Err(_) => "-".to_string(),
        })
        .collect()
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A staging directory as a save leaves it: `files` written with `tag`, marked complete or not.
fn staging(dir: &Path, name: &str, tag: &str, files: &[&str], complete: bool) -> PathBuf {
    let s = dir.join(format!("{STAGING_PREFIX}{name}"));
    fs::create_dir(&s).unwrap();
    for f in files {
        fs::write(s.join(f), format!("{tag} {f}")).unwrap();
    }
    if complete {
        fs::write(s.join(COMMIT_MARKER), "").unwrap();
    }
    s
}

const ALL_OLD: [&str; 4] = ["old", "old", "old", "old"];
const ALL_NEW: [&str; 4] = ["new", "new", "new", "new"];

#[test]
fn a_save_replaces_every_file_and_leaves_only_the_model_and_its_locks() {
    let (_tmp, dir, lock) = locked();
    write_files(dir.path(), "old");
    dir.replace_files(&lock, |s| {
        write_files(s, "new");
        Ok(())
    })
    .unwrap();
    assert_eq!(tags(dir.path()), ALL_NEW);
    assert_eq!(
        names(dir.path()),
        [
            COMMIT_LOCK_FILE,
            LOCK_FILE,
            METRICS_FILE,
            METADATA_FILE,
            RECORD_FILE,
            SUMMARY_FILE
        ]
    );
    assert!(!has_staging_leftovers(dir.path()));
}

#[test]
fn a_failed_save_keeps_the_previous_files_and_removes_its_staging_directory() {
    let (_tmp, dir, lock) = locked();
    write_files(dir.path(), "old");
    let err = dir
        .replace_files(&lock, |s| {
            fs::write(s.join(RECORD_FILE), "new").unwrap();
            Err(Error::output(s, "disk full"))
        })
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(tags(dir.path()), ALL_OLD);
    assert!(!has_staging_leftovers(dir.path()));
}

#[test]
fn a_commit_that_fails_midway_is_finished_by_the_next_recovery() {
    let (_tmp, dir, lock) = locked();
    write_files(dir.path(), "old");
    // A directory where the metadata goes makes its rename fail (EISDIR) after the others.
    fs::remove_file(dir.path().join(METADATA_FILE)).unwrap();
    fs::create_dir(dir.path().join(METADATA_FILE)).unwrap();
    dir.replace_files(&lock, |s| {
        write_files(s, "new");
        Ok(())
    })
    .unwrap_err();
    // The metadata, which names the record's hash, is moved last: it is the one still waiting,
    // in a staging directory that is still marked complete.
    assert_eq!(tags(dir.path())[..3], ["new", "new", "new"]);
    assert!(has_staging_leftovers(dir.path()));

    fs::remove_dir(dir.path().join(METADATA_FILE)).unwrap();
    recover(dir.path()).unwrap();
    assert_eq!(tags(dir.path()), ALL_NEW);
    assert!(!has_staging_leftovers(dir.path()));
}

#[test]
fn recovery_rolls_a_complete_staging_directory_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Killed after moving metrics, summary and record: only the metadata is left to move.
    write_files(d, "new");
    fs::write(d.join(METADATA_FILE), format!("old {METADATA_FILE}")).unwrap();
    let s = staging(d, "done", "new", &[METADATA_FILE], true);
    recover(d).unwrap();
    assert_eq!(tags(d), ALL_NEW);
    assert!(!s.exists());
    // Killed before moving anything: every file comes from the staging directory.
    write_files(d, "old");
    let s = staging(d, "done", "new", &NAMES, true);
    recover(d).unwrap();
    assert_eq!(tags(d), ALL_NEW);
    assert!(!s.exists());
}

#[test]
fn recovery_discards_an_incomplete_staging_directory_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_files(d, "old");
    let s = staging(d, "partial", "new", &[RECORD_FILE, METRICS_FILE], false);
    // Not leftovers of a save: a file with the prefix, another directory, another file.
    fs::write(d.join(format!("{STAGING_PREFIX}file")), "x").unwrap();
    fs::create_dir(d.join("point-000")).unwrap();
    fs::write(d.join("notes.txt"), "x").unwrap();
    let before = names(d);
    recover(d).unwrap();
    assert_eq!(tags(d), ALL_OLD);
    assert!(!s.exists());
    assert_eq!(
        names(d),
        before
            .into_iter()
            .filter(|n| *n != format!("{STAGING_PREFIX}partial"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_writer_creates_the_directory_and_cleans_up_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(tmp.path().join("a/b/model"));
    drop(dir.lock_for_writing().unwrap());
    write_files(dir.path(), "old");
    let done = staging(dir.path(), "done", "new", &[METADATA_FILE], true);
    let partial = staging(dir.path(), "partial", "newer", &NAMES, false);
    let _lock = dir.lock_for_writing().unwrap();
    assert_eq!(tags(dir.path()), ["old", "old", "old", "new"]);
    assert!(!done.exists() && !partial.exists());
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let (_tmp, dir, lock) = locked();
    let err = dir.lock_for_writing().unwrap_err();
    assert!(
        err.to_string()
            .contains("another iris-trainer run is writing this directory"),
        "{err}"
    );
    drop(lock);
    dir.lock_for_writing().unwrap();
}

#[test]
fn a_file_in_place_of_the_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model");
    fs::write(&file, "x").unwrap();
    let err = ModelDir::new(&file).lock_for_writing().unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn readers_finish_an_interrupted_save_only_when_no_writer_is_running() {
    let (_tmp, dir, lock) = locked();
    write_files(dir.path(), "old");
    let s = staging(dir.path(), "done", "new", &[METADATA_FILE], true);
    // A writer is running: the staging directory is its own, not a reader's to finish.
    dir.try_recover();
    assert!(s.exists());
    assert_eq!(tags(dir.path()), ALL_OLD);
    drop(lock);
    dir.try_recover();
    assert!(!s.exists());
    assert_eq!(tags(dir.path()), ["old", "old", "old", "new"]);

    // A directory no writer ever locked (copied, or written by hand): a reader creates nothing.
    let copy = tempfile::tempdir().unwrap();
    write_files(copy.path(), "old");
    let s = staging(copy.path(), "done", "new", &[METADATA_FILE], true);
    let before = names(copy.path());
    ModelDir::new(copy.path()).try_recover();
    assert_eq!(names(copy.path()), before);
    assert!(s.join(METADATA_FILE).exists());
}

#[test]
fn a_commit_waits_for_readers_holding_the_commit_lock() {
    let (_tmp, dir, lock) = locked();
    dir.replace_files(&lock, |s| {
        write_files(s, "old");
        Ok(())
    })
    .unwrap();
    let reader = dir
        .read_guard()
        .expect("the commit lock file exists after a save");
    let (done, committed) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            dir.replace_files(&lock, |s| {
                write_files(s, "new");
                Ok(())
            })
            .unwrap();
            done.send(()).unwrap();
        });
        // While the reader holds its shared lock, no file is replaced.
        assert!(committed.recv_timeout(Duration::from_millis(500)).is_err());
        assert_eq!(tags(dir.path()), ALL_OLD);
        drop(reader);
        committed.recv_timeout(Duration::from_secs(60)).unwrap();
    });
    assert_eq!(tags(dir.path()), ALL_NEW);
}

#[test]
fn a_save_removes_optional_files_the_new_model_lacks_and_keeps_those_it_has() {
    let (_tmp, dir, lock) = locked();
    write_files(dir.path(), "old");
    for f in [SAFETENSORS_FILE, CONFUSION_SVG, CONFUSION_PNG] {
        fs::write(dir.path().join(f), "old").unwrap();
    }
    // The new model (a regressor, say) has weights but no confusion matrix.
    dir.replace_files(&lock, |s| {
        write_files(s, "new");
        fs::write(s.join(SAFETENSORS_FILE), "new").unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(tags(dir.path()), ALL_NEW);
    assert_eq!(
        fs::read_to_string(dir.path().join(SAFETENSORS_FILE)).unwrap(),
        "new"
    );
    assert!(!dir.path().join(CONFUSION_SVG).exists());
    assert!(!dir.path().join(CONFUSION_PNG).exists());
}

#[test]
fn recovery_of_a_listing_marker_removes_stale_files_and_can_run_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_files(dir, "old");
    fs::write(dir.join(CURVES_PNG), "old").unwrap();
    let s = staging(dir, "a", "new", &NAMES, false);
    fs::write(s.join(COMMIT_MARKER), NAMES.join("\n")).unwrap();
    // Killed after the first renames: the rest is finished by recovery.
    commit_first(&s, dir, 2);
    recover(dir).unwrap();
    assert_eq!(tags(dir), ALL_NEW);
    assert!(!dir.join(CURVES_PNG).exists());
    assert!(!has_staging_leftovers(dir));
    recover(dir).unwrap();
    assert_eq!(tags(dir), ALL_NEW);
}

#[test]
fn an_empty_marker_from_an_older_version_removes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_files(dir, "old");
    fs::write(dir.join(SAFETENSORS_FILE), "old").unwrap();
    staging(dir, "a", "new", &NAMES, true);
    recover(dir).unwrap();
    assert_eq!(tags(dir), ALL_NEW);
    assert!(dir.join(SAFETENSORS_FILE).exists());
}

/// Moves the first `n` files of `staging` into `dir`, as a commit killed midway leaves them.
fn commit_first(staging: &Path, dir: &Path, n: usize) {
    for name in FILES.iter().filter(|f| staging.join(f).exists()).take(n) {
        fs::rename(staging.join(name), dir.join(name)).unwrap();
    }
}
