use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// A request the fake server received: method, path with query, body.
type Seen = (String, String, Vec<u8>);

/// A stand-in for an MLflow tracking server on loopback that answers the calls this module
/// makes and records them.
struct FakeMlflow {
    uri: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeMlflow {
    fn start() -> Self {
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
                let created = Arc::new(AtomicBool::new(false));
                let app = axum::Router::new().fallback(
                    move |method: axum::http::Method, uri: axum::http::Uri, body: bytes::Bytes| {
                        let seen = Arc::clone(&seen2);
                        let created = Arc::clone(&created);
                        async move {
                            let path = uri.to_string();
                            seen.lock().unwrap().push((
                                method.to_string(),
                                path.clone(),
                                body.to_vec(),
                            ));
                            let ok = |v: Value| (axum::http::StatusCode::OK, v.to_string());
                            if path.contains("experiments/get?experiment_id=0") {
                                ok(json!({"experiment": {"experiment_id": "0"}}))
                            } else if path.contains("experiments/get-by-name") {
                                if created.load(Ordering::Relaxed) {
                                    ok(json!({"experiment": {"experiment_id": "7"}}))
                                } else {
                                    (
                                        axum::http::StatusCode::NOT_FOUND,
                                        json!({"error_code": "RESOURCE_DOES_NOT_EXIST",
                                               "message": "no such experiment"})
                                        .to_string(),
                                    )
                                }
                            } else if path.ends_with("experiments/create") {
                                created.store(true, Ordering::Relaxed);
                                ok(json!({"experiment_id": "7"}))
                            } else if path.ends_with("runs/create") {
                                ok(json!({"run": {"info": {
                                    "run_id": "r1", "experiment_id": "7",
                                    "artifact_uri": "mlflow-artifacts:/7/r1/artifacts"}}}))
                            } else {
                                ok(json!({}))
                            }
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
        FakeMlflow {
            uri,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The JSON bodies of the requests to `endpoint`.
    fn bodies(&self, endpoint: &str) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|(_, p, _)| p.ends_with(endpoint))
            .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// Shuts the server down: its port refuses connections from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeMlflow {
    fn drop(&mut self) {
        self.stop();
    }
}

fn options(uri: &str) -> TrackingOptions {
    TrackingOptions {
        uri: uri.to_string(),
        experiment: Some("iris".into()),
        ..TrackingOptions::default()
    }
}

#[test]
fn config_params_are_the_resolved_config_flattened() {
    let mut config = TrainConfig::default();
    config.training.learning_rate = 0.03;
    config.model.hidden = vec![32, 16];
    let params = config_params(&config);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("training.learning_rate"), Some("0.03"));
    assert_eq!(get("model.hidden"), Some("[32,16]"));
    assert_eq!(
        get("training.epochs"),
        Some(config.training.epochs.to_string().as_str())
    );
    assert_eq!(get("data.path"), None, "unset values are left out");
    // The recipe the config makes, by name and version.
    assert_eq!(get("recipe.name"), Some(crate::recipe::RECIPE_NAME));
    assert_eq!(
        get("recipe.version"),
        Some(crate::recipe::RECIPE_VERSION.to_string().as_str())
    );
    let keys: std::collections::BTreeSet<_> = params.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys.len(),
        params.len(),
        "keys are unique (MLflow params are immutable)"
    );
    assert!(params.len() <= MAX_PARAMS_PER_BATCH * 2);
}

#[test]
fn long_param_values_are_cut_to_mlflows_limit() {
    let mut out = Vec::new();
    flatten(
        "k",
        &Value::String("é".repeat(MAX_PARAM_VALUE_CHARS + 10)),
        &mut out,
    );
    assert_eq!(out[0].1.chars().count(), MAX_PARAM_VALUE_CHARS);
}

#[test]
fn epoch_metrics_follow_the_columns_of_metrics_csv() {
    let mut s = EpochStats {
        epoch: 3,
        train_loss: 0.5,
        train_accuracy: 0.8,
        valid_loss: None,
        valid_accuracy: None,
        test_loss: 0.6,
        test_accuracy: 0.7,
        train_r2: None,
        valid_r2: None,
        test_r2: None,
        test_rmse: None,
        test_mae: None,
    };
    let keys = |s: &EpochStats| epoch_metrics(s).iter().map(|(k, _)| *k).collect::<Vec<_>>();
    assert_eq!(
        keys(&s),
        ["train_loss", "test_loss", "train_accuracy", "test_accuracy"]
    );
    s.valid_loss = Some(0.55);
    s.valid_accuracy = Some(0.75);
    assert_eq!(keys(&s).len(), 6);
    s.train_r2 = Some(0.9);
    s.test_r2 = Some(0.8);
    s.test_rmse = Some(1.5);
    s.test_mae = Some(1.0);
    assert_eq!(
        keys(&s),
        [
            "train_loss",
            "test_loss",
            "train_r2",
            "valid_loss",
            "test_r2",
            "test_rmse",
            "test_mae"
        ]
    );
}

#[test]
fn artifact_targets_follow_the_runs_artifact_uri() {
    let rel = Path::new("plots/loss curve.svg");
    let t = |root: &str| artifact_target("http://mlflow:5000/", root, rel);
    assert_eq!(
        t("mlflow-artifacts:/7/abc/artifacts"),
        Ok(ArtifactTarget::Http(
            "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/7/abc/artifacts/plots/loss%20curve.svg"
                .into()
        ))
    );
    assert_eq!(
        t("mlflow-artifacts://other:8080/7/abc/artifacts"),
        Ok(ArtifactTarget::Http(
            "http://other:8080/api/2.0/mlflow-artifacts/artifacts/7/abc/artifacts/plots/loss%20curve.svg"
                .into()
        ))
    );
    assert_eq!(
        t("http://store/runs/abc/"),
        Ok(ArtifactTarget::Http(
            "http://store/runs/abc/plots/loss%20curve.svg".into()
        ))
    );
    assert_eq!(
        t("file:///srv/mlruns/7/abc/artifacts"),
        Ok(ArtifactTarget::Local(PathBuf::from(
            "/srv/mlruns/7/abc/artifacts/plots/loss curve.svg"
        )))
    );
    assert_eq!(
        artifact_target(
            "http://proxy/mlflow",
            "mlflow-artifacts:/7/abc/artifacts",
            Path::new("m.json")
        ),
        Ok(ArtifactTarget::Http(
            "http://proxy/mlflow/api/2.0/mlflow-artifacts/artifacts/7/abc/artifacts/m.json".into()
        )),
        "a path prefix of the tracking URI is kept"
    );
    let e = t("s3://bucket/7/abc/artifacts").unwrap_err().to_string();
    assert!(
        e.contains("s3://bucket") && e.contains("--serve-artifacts"),
        "{e}"
    );
}

#[test]
fn uris_this_build_cannot_use_are_config_errors() {
    for (uri, needle) in [
        ("https://mlflow.example", "HTTPS"),
        ("mlruns", "http://HOST:PORT"),
        ("http://", "no host"),
    ] {
        let e = Tracker::connect(options(uri)).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit_code::CONFIG, "{uri}");
        let m = e.to_string();
        assert!(m.contains(uri) && m.contains(needle), "{m}");
    }
}

#[test]
fn an_unreachable_server_is_an_error_naming_its_uri() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let e = Tracker::connect(options(&uri)).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::exit_code::TRACKING);
    let m = e.to_string();
    assert!(m.contains(&uri) && m.contains("nothing was trained"), "{m}");
}

#[test]
fn a_run_is_logged_in_batches_within_mlflows_limits() {
    let server = FakeMlflow::start();
    let tracker = Tracker::connect(options(&server.uri)).unwrap();
    assert_eq!(tracker.experiment_id(), "7");
    assert_eq!(
        server.bodies("experiments/create"),
        [json!({"name": "iris"})]
    );

    let params: Vec<(String, String)> =
        (0..150).map(|i| (format!("p{i}"), i.to_string())).collect();
    let mut run = tracker
        .start_run(
            "artifacts",
            vec![("iris_trainer.data_sha256".into(), "ab".into())],
            params,
        )
        .unwrap();
    assert_eq!(run.run_id(), "r1");
    let create = &server.bodies("runs/create")[0];
    assert_eq!(create["experiment_id"], "7");
    assert_eq!(create["run_name"], "artifacts");
    let tags = create["tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"key": "mlflow.runName", "value": "artifacts"})));
    assert!(tags.contains(&json!({"key": "iris_trainer.data_sha256", "value": "ab"})));

    // 2500 epochs of one metric, plus a NaN that JSON cannot carry.
    for step in 1..=2500 {
        run.log_metrics(
            step,
            &[("train_loss", 1.0 / step as f64), ("acc", f64::NAN)],
        );
    }
    run.flush();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.json"), "{}").unwrap();
    std::fs::create_dir(dir.path().join("plots")).unwrap();
    std::fs::write(dir.path().join("plots/loss.svg"), "<svg/>").unwrap();
    std::fs::write(dir.path().join(".lock"), "").unwrap();
    run.upload_dir(dir.path());
    run.end(RunStatus::Killed);
    assert!(!run.failed());
    assert!(run.take_warning().is_none());

    let batches = server.bodies("runs/log-batch");
    let param_batches: Vec<usize> = batches
        .iter()
        .map(|b| b["params"].as_array().unwrap().len())
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(param_batches, [100, 50]);
    let metric_batches: Vec<usize> = batches
        .iter()
        .map(|b| b["metrics"].as_array().unwrap().len())
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(metric_batches.iter().sum::<usize>(), 2500);
    assert!(
        metric_batches.iter().all(|n| *n <= MAX_METRICS_PER_BATCH),
        "{metric_batches:?}"
    );
    let steps: Vec<u64> = batches
        .iter()
        .flat_map(|b| b["metrics"].as_array().unwrap().clone())
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=2500).collect::<Vec<u64>>(),
        "every epoch once, in order"
    );

    let puts: Vec<(String, Vec<u8>)> = server
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "PUT")
        .map(|(_, p, b)| (p, b))
        .collect();
    assert_eq!(
        puts,
        [
            (
                "/api/2.0/mlflow-artifacts/artifacts/7/r1/artifacts/model.json".to_string(),
                b"{}".to_vec()
            ),
            (
                "/api/2.0/mlflow-artifacts/artifacts/7/r1/artifacts/plots/loss.svg".to_string(),
                b"<svg/>".to_vec()
            ),
        ]
    );
    let update = &server.bodies("runs/update")[0];
    assert_eq!(update["status"], "KILLED");
    assert_eq!(update["run_id"], "r1");
}

#[test]
fn without_an_experiment_name_the_default_experiment_is_asked_for() {
    let server = FakeMlflow::start();
    let tracker = Tracker::connect(TrackingOptions {
        uri: server.uri.clone(),
        ..TrackingOptions::default()
    })
    .unwrap();
    assert_eq!(tracker.experiment_id(), "0");
    let asked: Vec<String> = server.requests().into_iter().map(|r| r.1).collect();
    assert_eq!(asked, ["/api/2.0/mlflow/experiments/get?experiment_id=0"]);
}

#[test]
fn a_server_gone_mid_run_is_one_warning_and_nothing_more_is_sent() {
    let mut server = FakeMlflow::start();
    let tracker = Tracker::connect(options(&server.uri)).unwrap();
    let mut run = tracker.start_run("x", vec![], vec![]).unwrap();
    server.stop();
    let sent = server.requests().len();
    run.log_metrics(1, &[("train_loss", 0.5)]);
    run.flush();
    assert!(run.failed());
    let w = run.take_warning().expect("a warning");
    assert!(
        w.contains(&server.uri) && w.contains("model is saved"),
        "{w}"
    );
    assert!(run.take_warning().is_none(), "warned once");
    let start = Instant::now();
    run.log_metrics(2, &[("train_loss", 0.4)]);
    run.flush();
    run.end(RunStatus::Finished);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "no more requests are tried"
    );
    assert_eq!(server.requests().len(), sent);
}

#[test]
fn run_status_matches_how_training_ended() {
    use crate::error::Signal;
    assert_eq!(RunStatus::of(&Ok(())), RunStatus::Finished);
    let killed: Result<()> = Err(Error::Interrupted {
        signal: Signal::Terminate,
        checkpoint: None,
    });
    assert_eq!(RunStatus::of(&killed).as_str(), "KILLED");
    let failed: Result<()> = Err(Error::Diverged {
        epoch: 3,
        learning_rate: 1.0,
    });
    assert_eq!(RunStatus::of(&failed).as_str(), "FAILED");
}

proptest::proptest! {
    /// Any text as a tracking URI is accepted as `http://HOST...` or refused with a config
    /// error naming it; never a panic.
    #[test]
    fn any_tracking_uri_is_parsed_or_refused(uri in "\\PC{0,40}", host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?") {
        match Client::new(&uri, None) {
            Ok(c) => proptest::prop_assert!(c.base.starts_with("http://") && c.base.len() > 7),
            Err(e) => {
                proptest::prop_assert_eq!(e.exit_code(), crate::error::exit_code::CONFIG);
                proptest::prop_assert!(e.to_string().contains(uri.as_str()));
            }
        }
        let good = format!("http://{host}/");
        let c = Client::new(&good, None).unwrap();
        proptest::prop_assert_eq!(c.base, format!("http://{host}"));
    }

    /// Any artifact root and file name give a target or a reason, never a panic; the proxy's
    /// URLs stay on the tracking server and keep the file name's segments escaped.
    #[test]
    fn any_artifact_root_gives_a_target_or_a_reason(root in "\\PC{0,40}", name in "\\PC{1,20}") {
        let rel = Path::new(&name);
        let _ = artifact_target("http://mlflow:5000", &root, rel);
        // (`mlflow-artifacts://HOST/...` names another host on purpose.)
        proptest::prop_assume!(!root.starts_with('/'));
        let proxied = artifact_target("http://mlflow:5000", &format!("mlflow-artifacts:/{root}"), rel);
        if let Ok(ArtifactTarget::Http(url)) = proxied {
            proptest::prop_assert!(url.starts_with("http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/"), "{}", url);
            proptest::prop_assert!(!url.contains(' '));
        } else {
            proptest::prop_assert!(false, "a proxied root always gives a URL: {:?}", proxied);
        }
    }
}
