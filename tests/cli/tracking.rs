//! MLflow tracking against a stand-in tracking server on loopback (the real MLflow server and
//! client are checked by `scripts/mlflow-test.sh`): what a run sends, an unreachable or unusable
//! URI, and a server that fails mid-run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Fails, bin};

/// A request the stand-in received: method, path, body.
type Seen = (String, String, Vec<u8>);

/// A stand-in MLflow server that answers what iris-trainer asks and records it; with
/// `fail_after_metrics`, every request after the first one carrying metrics gets a 503.
struct Stand {
    uri: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stand {
    fn start(fail_after_metrics: bool) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let metrics_seen = Arc::new(AtomicUsize::new(0));
                let app = axum::Router::new().fallback(
                    move |method: axum::http::Method, uri: axum::http::Uri, body: bytes::Bytes| {
                        let seen = Arc::clone(&seen2);
                        let metrics_seen = Arc::clone(&metrics_seen);
                        async move {
                            let path = uri.path().to_string();
                            seen.lock().unwrap().push((
                                method.to_string(),
                                path.clone(),
                                body.to_vec(),
                            ));
                            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let has_metrics =
                                json["metrics"].as_array().is_some_and(|m| !m.is_empty());
                            if fail_after_metrics
                                && (metrics_seen.load(Ordering::Relaxed) > 0 || has_metrics)
                            {
                                metrics_seen.fetch_add(1, Ordering::Relaxed);
                                return (
                                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                    "down for maintenance".to_string(),
                                );
                            }
                            let answer = if path.ends_with("experiments/get-by-name")
                                || path.ends_with("experiments/get")
                            {
                                json!({"experiment": {"experiment_id": "3"}})
                            } else if path.ends_with("model-versions/create") {
                                json!({"model_version": {"name": json["name"], "version": "1"}})
                            } else if path.ends_with("runs/create") {
                                json!({"run": {"info": {"run_id": "abc", "experiment_id": "3",
                                    "artifact_uri": "mlflow-artifacts:/3/abc/artifacts"}}})
                            } else {
                                json!({})
                            };
                            (axum::http::StatusCode::OK, answer.to_string())
                        }
                    },
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        while !stop2.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await
                    .unwrap();
            });
        });
        Stand {
            uri,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn bodies(&self, endpoint: &str) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|(_, p, _)| p.ends_with(endpoint))
            .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

impl Drop for Stand {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_tracked_run_sends_params_metrics_tags_artifacts_and_ends_finished() {
    let server = Stand::start(false);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let out = bin()
        .args(["train", "--epochs", "30", "--run-name", "r"])
        .arg("--out")
        .arg(&model)
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .env("MLFLOW_EXPERIMENT_NAME", "iris")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let asked = &server.requests()[0];
    assert_eq!(
        (asked.0.as_str(), asked.1.as_str()),
        ("GET", "/api/2.0/mlflow/experiments/get-by-name")
    );
    let create = &server.bodies("runs/create")[0];
    assert_eq!(create["experiment_id"], "3");
    assert_eq!(create["run_name"], "r");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap();
    let tags = create["tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!({"key": "iris_trainer.data_sha256", "value": meta["data"]["sha256"]}))
    );
    assert!(tags.contains(&json!({"key": "iris_trainer.backend", "value": "flex"})));

    let batches = server.bodies("runs/log-batch");
    let params: Vec<&Value> = batches
        .iter()
        .flat_map(|b| b["params"].as_array().unwrap())
        .collect();
    assert!(
        params.contains(&&json!({"key": "training.epochs", "value": "30"})),
        "{params:?}"
    );
    let losses: Vec<(u64, f64)> = batches
        .iter()
        .flat_map(|b| b["metrics"].as_array().unwrap())
        .filter(|m| m["key"] == "train_loss")
        .map(|m| (m["step"].as_u64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    let csv = std::fs::read_to_string(model.join("metrics.csv")).unwrap();
    let expected: Vec<(u64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    // serde_json's default float parsing may be one ulp off the exact value.
    assert_eq!(
        losses.len(),
        expected.len(),
        "train_loss per epoch, as in metrics.csv"
    );
    for ((step, got), (epoch, want)) in losses.iter().zip(&expected) {
        assert_eq!(step, epoch);
        assert!(
            (got - want).abs() <= 1e-15 * want.abs(),
            "epoch {epoch}: {got} != {want}"
        );
    }

    // Every file of the model directory, nothing hidden (locks), under the run's artifact root,
    // and the MLflow model under model/.
    let mut puts: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "PUT")
        .map(|(_, p, _)| p)
        .collect();
    puts.sort();
    let mut files: Vec<String> = std::fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .chain(
            [
                "MLmodel",
                "model.onnx",
                "code/iris_trainer_pyfunc.py",
                "input_example.json",
                "serving_input_example.json",
                "requirements.txt",
                "python_env.yaml",
                "conda.yaml",
            ]
            .map(|f| format!("model/{f}")),
        )
        .map(|n| format!("/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/{n}"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "{files:?}");
    assert_eq!(puts, files);
    // The logged model names its run.
    let mlmodel = server
        .requests()
        .into_iter()
        .find(|(m, p, _)| m == "PUT" && p.ends_with("/model/MLmodel"))
        .unwrap()
        .2;
    let mlmodel: Value = serde_json::from_slice(&mlmodel).unwrap();
    assert_eq!(mlmodel["run_id"], "abc");
    // Nothing registered without --register-model.
    assert!(server.bodies("model-versions/create").is_empty());
    let update = server.bodies("runs/update");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0]["status"], "FINISHED");
}

#[test]
fn an_unreachable_tracking_server_stops_the_run_before_training() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    bin()
        .args(["train", "--epochs", "5", "--tracking-uri", &uri])
        .arg("--out")
        .arg(&model)
        .fails(9, &[&uri, "nothing was trained", "MLFLOW_TRACKING_URI"]);
    assert!(!model.join("model.json").exists());
}

#[test]
fn tracking_uris_this_build_cannot_use_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args([
            "train",
            "--epochs",
            "5",
            "--tracking-uri",
            "https://mlflow.example",
        ])
        .arg("--out")
        .arg(dir.path().join("m"))
        .fails(3, &["https://mlflow.example", "HTTPS"]);
    bin()
        .args(["train", "--epochs", "5", "--tracking-uri", "./mlruns"])
        .arg("--out")
        .arg(dir.path().join("m"))
        .fails(3, &["./mlruns", "http://HOST:PORT"]);
    assert!(!dir.path().join("m/model.json").exists());
}

#[test]
fn an_empty_mlflow_tracking_uri_means_no_tracking() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["train", "--quiet", "--epochs", "5"])
        .arg("--out")
        .arg(dir.path().join("m"))
        .env("MLFLOW_TRACKING_URI", "")
        .env("MLFLOW_EXPERIMENT_NAME", "iris-trainer")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("m/model.json").exists());
}

#[test]
fn a_server_failing_mid_run_is_one_warning_and_the_model_is_saved() {
    let server = Stand::start(true);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    // 3000 epochs: 12,000 metrics, so a dozen batches would follow the first failure.
    let out = bin()
        .args([
            "train",
            "--quiet",
            "--epochs",
            "3000",
            "--tracking-uri",
            &server.uri,
        ])
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("warning: MLflow tracking").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(&server.uri) && stderr.contains("503"),
        "{stderr}"
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["metrics"]["epochs_run"], 3000);
    // The failing request was tried a few times, then nothing more was sent.
    let failed: Vec<Seen> = server
        .requests()
        .into_iter()
        .skip_while(|(_, _, b)| {
            serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| v["metrics"].as_array().map(|m| m.is_empty()))
                .unwrap_or(true)
        })
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "{:?}",
        failed.iter().map(|r| &r.1).collect::<Vec<_>>()
    );
}

#[test]
fn a_tracked_sweep_makes_each_point_a_child_of_its_run() {
    let server = Stand::start(false);
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("lr.toml");
    std::fs::write(
        &sweep,
        "[grid]\n\"training.learning_rate\" = [0.01, 0.03]\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "sweep",
            "--quiet",
            "--epochs",
            "5",
            "--jobs",
            "2",
            "--experiment",
            "s",
        ])
        .arg("--sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(dir.path().join("sweep"))
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creates = server.bodies("runs/create");
    assert_eq!(creates.len(), 3, "the parent and two points");
    let tag = |run: &Value, key: &str| {
        run["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| t["value"].clone())
    };
    assert_eq!(creates[0]["run_name"], "sweep lr");
    assert_eq!(tag(&creates[0], "mlflow.parentRunId"), None);
    let mut points: Vec<String> = creates[1..]
        .iter()
        .map(|c| {
            // The stand-in gives every run the id `abc`: the parent's.
            assert_eq!(tag(c, "mlflow.parentRunId"), Some(json!("abc")));
            c["run_name"].as_str().unwrap().to_string()
        })
        .collect();
    points.sort();
    assert_eq!(points, ["point-000", "point-001"]);
    let statuses: Vec<Value> = server
        .bodies("runs/update")
        .iter()
        .map(|u| u["status"].clone())
        .collect();
    assert_eq!(statuses, ["FINISHED", "FINISHED", "FINISHED"]);
    let puts: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains("sweep-report"))
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(puts.len(), 3, "{puts:?}");
}

#[test]
fn register_model_creates_the_registered_model_and_a_version_of_the_logged_model() {
    let server = Stand::start(false);
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "train",
            "--quiet",
            "--epochs",
            "3",
            "--register-model",
            "iris",
            "--out",
        ])
        .arg(dir.path().join("m"))
        .args(["--tracking-uri", &server.uri])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("registered models:/iris/1 as version 1 of \"iris\""),
        "{stdout}"
    );
    assert_eq!(
        server.bodies("registered-models/create"),
        [json!({"name": "iris"})]
    );
    assert_eq!(
        server.bodies("model-versions/create"),
        [
            json!({"name": "iris", "source": "mlflow-artifacts:/3/abc/artifacts/model", "run_id": "abc"})
        ]
    );
    // Registered after the run ended and its model was uploaded.
    let paths: Vec<String> = server.requests().into_iter().map(|(_, p, _)| p).collect();
    let at = |suffix: &str| paths.iter().rposition(|p| p.ends_with(suffix)).unwrap();
    assert!(at("runs/update") < at("registered-models/create"));
    assert!(at("/model/MLmodel") < at("model-versions/create"));
}

#[test]
fn a_registry_that_fails_keeps_the_model_and_exits_10() {
    // Every request after the first metrics is refused: the run goes on untracked, the model is
    // saved, and the registration, which has no complete run to register, fails.
    let server = Stand::start(true);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    let out = bin()
        .args([
            "train",
            "--quiet",
            "--epochs",
            "3",
            "--register-model",
            "iris",
            "--out",
        ])
        .arg(&model)
        .args(["--tracking-uri", &server.uri])
        .output()
        .unwrap()
        .fails(
            10,
            &[
                "registering it as \"iris\"",
                "trained and saved",
                "runs:/abc/model",
            ],
        );
    assert!(out.contains("warning: MLflow tracking"), "{out}");
    assert!(model.join("model.json").is_file());
    assert!(server.bodies("model-versions/create").is_empty());
}
