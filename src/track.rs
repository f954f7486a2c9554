//! MLflow tracking over MLflow's REST API: a training run logs its resolved config as params,
//! every epoch's metrics (the rows of `metrics.csv`), tags that say what ran where on which data,
//! and the model directory as artifacts, with an MLflow model directory of it (`model/`, see
//! [`crate::mlflow_model`]), and ends FINISHED, FAILED or KILLED as the run did;
//! [`Tracker::register_model`] then registers that model in the server's model registry.
//!
//! [`Tracker::connect`] checks the server before training (an unreachable server is an
//! [`Error::Tracking`]); once training has started, a tracking failure is a warning (through
//! [`TrainObserver::warning`]) after which the run goes on untracked: the model is never lost to
//! tracking. Nothing here prints or panics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use burn::tensor::backend::AutodiffBackend;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::backend::DeviceInfo;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::metadata::{EpochStats, Metadata};
use crate::mlflow_model;
use crate::pipeline::TrainRun;
use crate::train::{Interrupter, TrainObserver};

/// Most metrics in one `runs/log-batch` request (MLflow's limit).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params in one `runs/log-batch` request (MLflow's limit).
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// Most tags in one `runs/log-batch` request (MLflow's limit).
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// Longest param value MLflow stores; longer values are cut to this many characters.
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// Metrics wait at most this long before they are sent, so a long run shows its curves live.
pub const METRICS_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// The tag that makes a run a child of another (MLflow's nested runs).
pub const PARENT_RUN_TAG: &str = "mlflow.parentRunId";

/// Where and how to track, from `--tracking-uri` / `MLFLOW_TRACKING_URI` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackingOptions {
    /// The tracking server, `http://host:port` (a path prefix is allowed).
    pub uri: String,
    /// The experiment's name; `None` is MLflow's default experiment (id 0).
    pub experiment: Option<String>,
    /// The run's name; `None` lets the caller pick one (see [`Tracker::start_run`]).
    pub run_name: Option<String>,
    /// Makes the run a child of this run (a sweep's parent run).
    pub parent_run_id: Option<String>,
    /// Sent as `Authorization: Bearer` (`MLFLOW_TRACKING_TOKEN`, as MLflow's client does).
    pub token: Option<String>,
}

/// How a run ended, as MLflow records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Trained and saved.
    Finished,
    /// Stopped by an error.
    Failed,
    /// Stopped by SIGINT or SIGTERM.
    Killed,
}

impl RunStatus {
    /// MLflow's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// The status that matches how a training run ended.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => RunStatus::Finished,
            Err(Error::Interrupted { .. }) => RunStatus::Killed,
            Err(_) => RunStatus::Failed,
        }
    }
}

/// A connection to a tracking server whose experiment has been found or created.
#[derive(Debug, Clone)]
pub struct Tracker {
    client: Client,
    experiment_id: String,
    options: TrackingOptions,
}

impl Tracker {
    /// Checks `options.uri`, reaches the server and finds (or creates) the experiment. Fails with
    /// [`Error::ConfigValue`] for a URI this build cannot use and [`Error::Tracking`] when the
    /// server cannot be reached or refuses.
    pub fn connect(options: TrackingOptions) -> Result<Self> {
        let client = Client::new(&options.uri, options.token.clone())?;
        let experiment_id = client
            .experiment_id(options.experiment.as_deref())
            .map_err(|e| client.error(e))?;
        Ok(Tracker {
            client,
            experiment_id,
            options,
        })
    }

    /// The tracking server's URI.
    pub fn uri(&self) -> &str {
        &self.client.base
    }

    /// The experiment runs go into.
    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    /// The options it was made with.
    pub fn options(&self) -> &TrackingOptions {
        &self.options
    }

    /// Creates a run named `options.run_name` (or `default_name`) with `tags` (plus the source,
    /// user and parent tags) and `params`. Fails with [`Error::Tracking`].
    pub fn start_run(
        &self,
        default_name: &str,
        tags: Vec<(String, String)>,
        params: Vec<(String, String)>,
    ) -> Result<ActiveRun> {
        let name = self
            .options
            .run_name
            .clone()
            .unwrap_or_else(|| default_name.to_string());
        let mut all_tags = vec![
            ("mlflow.runName".to_string(), name.clone()),
            ("mlflow.source.name".to_string(), "iris-trainer".to_string()),
            ("mlflow.source.type".to_string(), "LOCAL".to_string()),
        ];
        if let Some(user) = std::env::var("USER")
            .ok()
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|u| !u.is_empty())
        {
            all_tags.push(("mlflow.user".to_string(), user));
        }
        if let Some(parent) = &self.options.parent_run_id {
            all_tags.push((PARENT_RUN_TAG.to_string(), parent.clone()));
        }
        all_tags.extend(tags);
        let run = self
            .client
            .create_run(&self.experiment_id, &name, &all_tags)
            .map_err(|e| self.client.error(e))?;
        let mut active = ActiveRun {
            client: self.client.clone(),
            run_id: run.0,
            artifact_uri: run.1,
            pending: Vec::new(),
            last_flush: Instant::now(),
            failure: None,
        };
        // Tags beyond the first request's, then the params, in batches within MLflow's limits.
        let logged = all_tags
            .chunks(MAX_TAGS_PER_BATCH)
            .skip(1)
            .try_for_each(|chunk| active.client.log_batch(&active.run_id, &[], &[], chunk))
            .and_then(|()| {
                params
                    .chunks(MAX_PARAMS_PER_BATCH)
                    .try_for_each(|chunk| active.client.log_batch(&active.run_id, &[], chunk, &[]))
            });
        if let Err(e) = logged {
            // Not left RUNNING on the server: nothing will train under it.
            active.end(RunStatus::Failed);
            return Err(self.client.error(e));
        }
        Ok(active)
    }

    /// Trains `run` as a tracked MLflow run: creates the run (params, tags), logs every epoch's
    /// metrics, and after the save uploads the model directory and its MLflow model (under
    /// [`mlflow_model::ARTIFACT_PATH`]) and ends the run as it ended.
    ///
    /// Creating the run fails with [`Error::Tracking`] before training starts. After that,
    /// tracking failures are told to `observer` as one warning and the run goes on untracked.
    pub fn train<B: AutodiffBackend>(
        &self,
        run: TrainRun,
        device: &B::Device,
        device_info: DeviceInfo,
        observer: &mut dyn TrainObserver,
        interrupter: &Interrupter,
    ) -> Result<(Metadata, LoggedRun)> {
        let model_dir = run.output().path().to_path_buf();
        let default_name = model_dir.file_name().map_or_else(
            || "iris-trainer".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut tags = vec![
            (
                "iris_trainer.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                "iris_trainer.backend".to_string(),
                device_info.backend.clone(),
            ),
            ("iris_trainer.device".to_string(), device_info.to_string()),
            (
                "iris_trainer.data_sha256".to_string(),
                run.data_info().sha256.clone(),
            ),
            (
                "iris_trainer.data_source".to_string(),
                run.data_info().source.clone(),
            ),
            ("iris_trainer.task".to_string(), run.data().task.to_string()),
            (
                "iris_trainer.model_dir".to_string(),
                model_dir.display().to_string(),
            ),
        ];
        if let Some(sweep) = run.sweep_info() {
            tags.push((
                "iris_trainer.sweep_point".to_string(),
                sweep.index.to_string(),
            ));
        }
        let mut active = self.start_run(&default_name, tags, config_params(run.config()))?;
        let result = {
            let mut tracked = Tracked {
                run: &mut active,
                inner: observer,
            };
            run.run::<B>(device, device_info, &mut tracked, interrupter)
        };
        if let Ok(saved) = &result {
            active.log_final_scores(saved);
            active.upload_dir(&model_dir);
            active.log_model(&model_dir, saved);
        }
        active.end(RunStatus::of(&result));
        let logged = LoggedRun {
            run_id: active.run_id.clone(),
            artifact_uri: active.artifact_uri.clone(),
            complete: !active.failed(),
        };
        if let Some(warning) = active.take_warning() {
            observer.warning(&warning);
        }
        result.map(|saved| (saved, logged))
    }

    /// Registers the MLflow model `run` logged as a new version of the registered model `name`
    /// (created if missing), in the tracking server's model registry. Fails with
    /// [`Error::Registry`] when the run's artifacts did not all reach the server, or the registry
    /// cannot be reached or refuses (a name it does not accept, ...); the model stays saved and
    /// the run logged either way.
    pub fn register_model(&self, run: &LoggedRun, name: &str) -> Result<ModelVersion> {
        let failed = |message: String| Error::Registry {
            uri: self.client.base.clone(),
            name: name.to_string(),
            run_id: run.run_id.clone(),
            message,
        };
        if !run.complete {
            return Err(failed(
                "the run's artifacts did not all reach the server (see the warning above), so \
                 there is no complete model to register"
                    .into(),
            ));
        }
        let source = format!(
            "{}/{}",
            run.artifact_uri.trim_end_matches('/'),
            mlflow_model::ARTIFACT_PATH
        );
        self.client
            .register(name, &source, &run.run_id)
            .map(|version| ModelVersion {
                name: name.to_string(),
                version,
                source,
            })
            .map_err(|e| failed(e.to_string()))
    }
}

/// A run [`Tracker::train`] logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRun {
    /// The run's id.
    pub run_id: String,
    /// Its artifact root.
    pub artifact_uri: String,
    /// Whether everything reached the server (no tracking failure after the run was created).
    pub complete: bool,
}

/// A version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// The version the registry gave it (`1` for the first).
    pub version: String,
    /// Where the registry reads it: the run's MLflow model.
    pub source: String,
}

impl ModelVersion {
    /// The URI MLflow's clients load it by, `models:/NAME/VERSION`.
    pub fn uri(&self) -> String {
        format!("models:/{}/{}", self.name, self.version)
    }
}

/// A run on the tracking server. After its first failed request it sends nothing more and keeps
/// the failure for [`ActiveRun::take_warning`].
#[derive(Debug)]
pub struct ActiveRun {
    client: Client,
    run_id: String,
    artifact_uri: String,
    pending: Vec<Value>,
    last_flush: Instant,
    failure: Option<Failure>,
}

#[derive(Debug)]
enum Failure {
    /// Not yet told to the user.
    New(String),
    /// Told.
    Told,
}

impl ActiveRun {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where the server keeps the run's artifacts (`mlflow-artifacts:/...` when it proxies them).
    pub fn artifact_uri(&self) -> &str {
        &self.artifact_uri
    }

    /// Whether a request has failed (nothing more is sent).
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The first failure, once: a warning for the user.
    pub fn take_warning(&mut self) -> Option<String> {
        match self.failure.replace(Failure::Told) {
            Some(Failure::New(m)) => Some(m),
            Some(Failure::Told) => None,
            None => {
                self.failure = None;
                None
            }
        }
    }

    fn attempt(
        &mut self,
        what: &str,
        f: impl FnOnce(&Client, &str) -> std::result::Result<(), TrackingError>,
    ) {
        if self.failure.is_some() {
            return;
        }
        if let Err(e) = f(&self.client, &self.run_id) {
            self.failure = Some(Failure::New(format!(
                "MLflow tracking at {} failed while {what}: {e}; training goes on and the model is \
                 saved, but run {} is incomplete on the server",
                self.client.base, self.run_id
            )));
        }
    }

    /// Queues `metrics` (key, value) at `step`; sends a batch when [`MAX_METRICS_PER_BATCH`]
    /// are queued or [`METRICS_FLUSH_INTERVAL`] has passed. Non-finite values are left out
    /// (JSON has no NaN).
    pub fn log_metrics(&mut self, step: usize, metrics: &[(&str, f64)]) {
        let timestamp = now_ms();
        for (key, value) in metrics.iter().filter(|(_, v)| v.is_finite()) {
            self.pending.push(json!({
                "key": key, "value": value, "timestamp": timestamp, "step": step
            }));
            if self.pending.len() >= MAX_METRICS_PER_BATCH {
                self.flush();
            }
        }
        if self.last_flush.elapsed() >= METRICS_FLUSH_INTERVAL {
            self.flush();
        }
    }

    /// Sends the queued metrics.
    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        self.attempt("logging metrics", |c, run| {
            for chunk in batch.chunks(MAX_METRICS_PER_BATCH) {
                c.post(
                    "runs/log-batch",
                    &json!({"run_id": run, "metrics": chunk, "params": [], "tags": []}),
                )?;
            }
            Ok(())
        });
    }

    fn log_final_scores(&mut self, saved: &Metadata) {
        let m = &saved.metrics;
        let step = m.epochs_run;
        let mut final_scores = vec![
            ("final_train_loss", m.train.loss()),
            ("final_test_loss", m.test.loss()),
            ("best_epoch", m.best_epoch as f64),
        ];
        for (key, value) in [
            ("final_train_accuracy", m.train.accuracy()),
            ("final_test_accuracy", m.test.accuracy()),
            ("final_test_macro_f1", m.test.macro_f1()),
        ] {
            if let Some(v) = value {
                final_scores.push((key, v));
            }
        }
        if let crate::metrics::Scores::Regression(t) = &m.test {
            final_scores.extend([
                ("final_test_r2", t.r2),
                ("final_test_rmse", t.rmse),
                ("final_test_mae", t.mae),
            ]);
        }
        self.log_metrics(step, &final_scores);
        self.flush();
    }

    /// Uploads every file under `dir` (hidden files and directories, such as locks and
    /// checkpoints, left out) to the run's artifact root, keeping their relative paths.
    pub fn upload_dir(&mut self, dir: &Path) {
        match files_under(dir) {
            Ok(files) => self.upload_files(dir, &files),
            Err(source) => self.attempt("listing the model directory", |_, _| {
                Err(TrackingError::ListDir {
                    dir: dir.to_path_buf(),
                    source,
                })
            }),
        }
    }

    /// Uploads the MLflow model directory of the model saved in `dir` (see [`mlflow_model`]),
    /// built from its `model.onnx`, under [`mlflow_model::ARTIFACT_PATH`].
    pub fn log_model(&mut self, dir: &Path, saved: &Metadata) {
        let onnx_path = dir.join(crate::artifact::ONNX_FILE);
        let onnx = match std::fs::read(&onnx_path) {
            Ok(bytes) => bytes,
            Err(source) => {
                return self.attempt("logging the MLflow model", |_, _| {
                    Err(TrackingError::File {
                        action: "reading",
                        path: onnx_path,
                        source,
                    })
                });
            }
        };
        let root = self.artifact_uri.clone();
        let files = mlflow_model::files(saved, &onnx, Some(&self.run_id));
        for (rel, bytes) in files {
            let rel = Path::new(mlflow_model::ARTIFACT_PATH).join(rel);
            self.attempt("logging the MLflow model", |c, _| {
                c.upload(&root, &rel, &bytes)
            });
        }
    }

    /// Uploads the files `rels` (paths relative to `dir`) to the run's artifact root.
    pub fn upload_files(&mut self, dir: &Path, rels: &[PathBuf]) {
        self.flush();
        let root = self.artifact_uri.clone();
        for rel in rels {
            let path = dir.join(rel);
            self.attempt("uploading artifacts", |c, _| {
                let bytes = std::fs::read(&path).map_err(|source| TrackingError::File {
                    action: "reading",
                    path: path.clone(),
                    source,
                })?;
                c.upload(&root, rel, &bytes)
            });
        }
    }

    /// Sends what is queued and ends the run with `status`.
    pub fn end(&mut self, status: RunStatus) {
        self.flush();
        self.attempt("ending the run", |c, run| {
            c.post(
                "runs/update",
                &json!({"run_id": run, "run_uuid": run, "status": status.as_str(), "end_time": now_ms()}),
            )
            .map(drop)
        });
    }
}

/// Passes every event on to `inner` and logs each epoch's metrics to `run`.
pub struct Tracked<'a> {
    /// The run the metrics go to.
    pub run: &'a mut ActiveRun,
    /// The observer that also hears everything (e.g. the progress bar).
    pub inner: &'a mut dyn TrainObserver,
}

impl TrainObserver for Tracked<'_> {
    fn started(&mut self, epochs: usize) {
        self.inner.started(epochs);
    }

    fn epoch(&mut self, s: &EpochStats) {
        self.inner.epoch(s);
        self.run.log_metrics(s.epoch, &epoch_metrics(s));
        if let Some(w) = self.run.take_warning() {
            self.inner.warning(&w);
        }
    }

    fn resumed(&mut self, epoch: usize) {
        self.inner.resumed(epoch);
    }

    fn checkpoint_ignored(&mut self, reason: &str) {
        self.inner.checkpoint_ignored(reason);
    }

    fn warning(&mut self, message: &str) {
        self.inner.warning(message);
    }

    fn finished(&mut self) {
        self.run.flush();
        if let Some(w) = self.run.take_warning() {
            self.inner.warning(&w);
        }
        self.inner.finished();
    }
}

/// One epoch's metrics under the column names of `metrics.csv` (absent ones left out).
pub fn epoch_metrics(s: &EpochStats) -> Vec<(&'static str, f64)> {
    let mut v = vec![("train_loss", s.train_loss), ("test_loss", s.test_loss)];
    if s.train_r2.is_some() || s.test_r2.is_some() {
        v.extend(
            [
                ("train_r2", s.train_r2),
                ("valid_loss", s.valid_loss),
                ("valid_r2", s.valid_r2),
                ("test_r2", s.test_r2),
                ("test_rmse", s.test_rmse),
                ("test_mae", s.test_mae),
            ]
            .into_iter()
            .filter_map(|(k, x)| Some((k, x?))),
        );
    } else {
        v.push(("train_accuracy", s.train_accuracy));
        v.push(("test_accuracy", s.test_accuracy));
        v.extend(
            [
                ("valid_loss", s.valid_loss),
                ("valid_accuracy", s.valid_accuracy),
            ]
            .into_iter()
            .filter_map(|(k, x)| Some((k, x?))),
        );
    }
    v
}

/// The resolved config as MLflow params: dotted keys (`training.learning_rate`), lists as JSON
/// (`[16]`), unset values left out, values cut to [`MAX_PARAM_VALUE_CHARS`]; first the recipe
/// the config makes, as `recipe.name` and `recipe.version`.
pub fn config_params(config: &TrainConfig) -> Vec<(String, String)> {
    let recipe = config.recipe();
    let mut out = vec![
        ("recipe.name".to_string(), recipe.name),
        ("recipe.version".to_string(), recipe.version.to_string()),
    ];
    flatten(
        "",
        &serde_json::to_value(config).unwrap_or(Value::Null),
        &mut out,
    );
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let text = match value {
        Value::Null => return,
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
            return;
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    out.push((
        prefix.to_string(),
        text.chars().take(MAX_PARAM_VALUE_CHARS).collect(),
    ));
}

/// The relative paths of the files under `dir`, sorted, hidden entries left out.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root.join(rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &rel.join(&name), out)?;
            } else if kind.is_file() {
                out.push(rel.join(&name));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

/// Milliseconds since the Unix epoch, as MLflow stamps runs and metrics.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Characters escaped in an artifact path segment (RFC 3986's unreserved ones stay).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Characters escaped in a segment of a run's artifact root: as [`SEGMENT`], but `%` is kept.
const ROOT_SEGMENT: &AsciiSet = &SEGMENT.remove(b'%');

/// A minimal MLflow REST client.
#[derive(Debug, Clone)]
struct Client {
    agent: ureq::Agent,
    /// The tracking URI without a trailing slash.
    base: String,
    token: Option<String>,
}

/// Tries per request: a dropped connection or a 5xx/429 is retried after a short pause.
const TRIES: u32 = 3;

impl Client {
    fn new(uri: &str, token: Option<String>) -> Result<Self> {
        let bad = |reason: &str| Error::ConfigValue {
            origin: "--tracking-uri / MLFLOW_TRACKING_URI".into(),
            key: "tracking URI".into(),
            value: uri.to_string(),
            reason: reason.to_string(),
        };
        let uri = uri.trim();
        if uri.starts_with("https://") {
            return Err(bad(
                "HTTPS is not compiled into this build; reach the server over plain HTTP \
                 (e.g. http://host:5000, or a local TLS-terminating proxy)",
            ));
        }
        let host = uri
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected an MLflow tracking server as http://HOST:PORT"))?
            .trim_end_matches('/');
        if host.is_empty() || host.starts_with('/') {
            return Err(bad("has no host: expected http://HOST:PORT"));
        }
        let base = format!("http://{host}");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Client { agent, base, token })
    }

    fn error(&self, e: TrackingError) -> Error {
        Error::Tracking {
            uri: self.base.clone(),
            message: e.to_string(),
        }
    }

    /// Sends a request (retrying transient failures) and returns the JSON answer of a 2xx.
    fn call(
        &self,
        what: &str,
        send: impl Fn(
            &ureq::Agent,
        ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> std::result::Result<Value, TrackingError> {
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * 4u64.pow(attempt - 1)));
            }
            let failed = match send(&self.agent) {
                Err(source) => TrackingError::Unreachable {
                    request: what.to_string(),
                    source,
                },
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let body = r.body_mut().read_to_string().unwrap_or_default();
                    if (200..300).contains(&status) {
                        return Ok(serde_json::from_str(&body).unwrap_or(Value::Null));
                    }
                    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let failed = TrackingError::Refused {
                        request: what.to_string(),
                        status,
                        code: answer["error_code"].as_str().unwrap_or("").to_string(),
                        message: answer["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| body.chars().take(300).collect()),
                    };
                    if status < 500 && status != 429 {
                        return Err(failed);
                    }
                    failed
                }
            };
            attempt += 1;
            if attempt >= TRIES {
                return Err(failed);
            }
        }
    }

    fn auth(
        &self,
        r: ureq::RequestBuilder<ureq::typestate::WithBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        match &self.token {
            Some(t) => r.header("Authorization", format!("Bearer {t}")),
            None => r,
        }
    }

    fn post(&self, endpoint: &str, body: &Value) -> std::result::Result<Value, TrackingError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.call(&format!("POST {endpoint}"), |a| {
            self.auth(a.post(&url)).send_json(body)
        })
    }

    fn get(
        &self,
        endpoint: &str,
        query: (&str, &str),
    ) -> std::result::Result<Value, TrackingError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.call(&format!("GET {endpoint}"), |a| {
            let r = a.get(&url).query(query.0, query.1);
            match &self.token {
                Some(t) => r.header("Authorization", format!("Bearer {t}")).call(),
                None => r.call(),
            }
        })
    }

    /// The id of experiment `name` (created if missing), or of MLflow's default experiment;
    /// either way the server has answered.
    fn experiment_id(&self, name: Option<&str>) -> std::result::Result<String, TrackingError> {
        let id = |v: Value, endpoint: &'static str| match v["experiment"]["experiment_id"].as_str()
        {
            Some(id) => Ok(id.to_string()),
            None => Err(TrackingError::Incomplete {
                endpoint,
                missing: "an experiment id",
                answer: v,
            }),
        };
        let Some(name) = name else {
            // MLflow's default experiment ("Default") has id 0.
            let v = self.get("experiments/get", ("experiment_id", "0"))?;
            return id(v, "experiments/get");
        };
        match self.get("experiments/get-by-name", ("experiment_name", name)) {
            Ok(v) => id(v, "experiments/get-by-name"),
            Err(TrackingError::Refused { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                match self.post("experiments/create", &json!({"name": name})) {
                    Ok(v) => match v["experiment_id"].as_str() {
                        Some(id) => Ok(id.to_string()),
                        None => Err(TrackingError::Incomplete {
                            endpoint: "experiments/create",
                            missing: "an id",
                            answer: v,
                        }),
                    },
                    // Created meanwhile by another run (a sweep's points start together).
                    Err(_) => self
                        .get("experiments/get-by-name", ("experiment_name", name))
                        .and_then(|v| id(v, "experiments/get-by-name")),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a run; returns its id and artifact URI.
    fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> std::result::Result<(String, String), TrackingError> {
        let first: Vec<Value> = tags
            .iter()
            .take(MAX_TAGS_PER_BATCH)
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let v = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": now_ms(),
                "tags": first,
            }),
        )?;
        let info = &v["run"]["info"];
        let Some(id) = info["run_id"]
            .as_str()
            .or_else(|| info["run_uuid"].as_str())
        else {
            return Err(TrackingError::Incomplete {
                endpoint: "runs/create",
                missing: "a run id",
                answer: v,
            });
        };
        let artifact_uri = info["artifact_uri"].as_str().unwrap_or_default();
        Ok((id.to_string(), artifact_uri.to_string()))
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Value],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> std::result::Result<(), TrackingError> {
        let kv = |pairs: &[(String, String)]| -> Vec<Value> {
            pairs
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        };
        self.post(
            "runs/log-batch",
            &json!({"run_id": run_id, "metrics": metrics, "params": kv(params), "tags": kv(tags)}),
        )
        .map(drop)
    }

    /// Creates registered model `name` unless it exists, then a version of it from `source`
    /// logged by `run_id`; returns the version.
    fn register(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
    ) -> std::result::Result<String, TrackingError> {
        match self.post("registered-models/create", &json!({"name": name})) {
            Ok(_) => {}
            Err(TrackingError::Refused { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {}
            Err(e) => return Err(e),
        }
        let v = self.post(
            "model-versions/create",
            &json!({"name": name, "source": source, "run_id": run_id}),
        )?;
        match &v["model_version"]["version"] {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(TrackingError::Incomplete {
                endpoint: "model-versions/create",
                missing: "a version",
                answer: v,
            }),
        }
    }

    /// Stores `bytes` as the artifact `rel` under the run's artifact root `root`.
    fn upload(
        &self,
        root: &str,
        rel: &Path,
        bytes: &[u8],
    ) -> std::result::Result<(), TrackingError> {
        match artifact_target(&self.base, root, rel)? {
            ArtifactTarget::Http(url) => self
                .call(&format!("PUT {}", rel.display()), |a| {
                    self.auth(a.put(&url))
                        .header("Content-Type", "application/octet-stream")
                        .send(bytes)
                })
                .map(drop),
            ArtifactTarget::Local(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| TrackingError::File {
                        action: "creating",
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                std::fs::write(&path, bytes).map_err(|source| TrackingError::File {
                    action: "writing",
                    path,
                    source,
                })
            }
        }
    }
}

/// Where an artifact goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactTarget {
    /// `PUT` to this URL (the server's artifact proxy, or an HTTP artifact store).
    Http(String),
    /// A file on this machine (a `file:` artifact root).
    Local(PathBuf),
}

/// Where the artifact `rel` of a run whose artifact root is `root` goes, for a tracking server
/// at `tracking_uri`: `mlflow-artifacts:/P` is the server's proxy
/// (`PUT {tracking_uri}/api/2.0/mlflow-artifacts/artifacts/P/rel`), `mlflow-artifacts://host:port/P`
/// the proxy of that host, `http://...` a plain HTTP store, `file:` or an absolute path a local
/// directory. Other stores (S3, GCS, ...) need the server to proxy them (`--serve-artifacts`).
pub fn artifact_target(
    tracking_uri: &str,
    root: &str,
    rel: &Path,
) -> std::result::Result<ArtifactTarget, UnwritableArtifactRoot> {
    let segments: Vec<String> = rel
        .components()
        .map(|c| utf8_percent_encode(&c.as_os_str().to_string_lossy(), SEGMENT).to_string())
        .collect();
    let rel_url = segments.join("/");
    let join = |base: &str| format!("{}/{rel_url}", base.trim_end_matches('/'));
    const PROXY: &str = "/api/2.0/mlflow-artifacts/artifacts";
    if let Some(rest) = root.strip_prefix("mlflow-artifacts:") {
        // As MLflow's client resolves it: the tracking URI's scheme and path prefix, the
        // artifact URI's host when it names one.
        let tracking = tracking_uri.trim_end_matches('/');
        let after_scheme = tracking.strip_prefix("http://").unwrap_or(tracking);
        let (tracking_host, prefix) = match after_scheme.find('/') {
            Some(i) => after_scheme.split_at(i),
            None => (after_scheme, ""),
        };
        let (host, path) = match rest.strip_prefix("//") {
            Some(authority_path) => authority_path
                .split_once('/')
                .unwrap_or((authority_path, "")),
            None => (tracking_host, rest),
        };
        let host = if host.is_empty() { tracking_host } else { host };
        // The root's own segments escaped too (an experiment's artifact location is
        // user-chosen); `%` is kept so that an already escaped root stays as it is.
        let path = path
            .trim_matches('/')
            .split('/')
            .map(|seg| utf8_percent_encode(seg, ROOT_SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        return Ok(ArtifactTarget::Http(join(&format!(
            "http://{host}{prefix}{PROXY}/{path}"
        ))));
    }
    if root.starts_with("http://") {
        return Ok(ArtifactTarget::Http(join(root)));
    }
    let local = root
        .strip_prefix("file://")
        .or_else(|| root.strip_prefix("file:"))
        .unwrap_or(root);
    if local.starts_with('/') {
        return Ok(ArtifactTarget::Local(Path::new(local).join(rel)));
    }
    Err(UnwritableArtifactRoot {
        root: root.to_string(),
    })
}

/// Why a request to the tracking server, or an artifact's upload, failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// No answer (connection refused, timeout, ...).
    #[error("{request}: {source}")]
    Unreachable {
        /// The request, e.g. `POST runs/create`.
        request: String,
        /// Why.
        source: ureq::Error,
    },
    /// The server answered with an error.
    #[error("{request} answered {status}: {message}")]
    Refused {
        /// The request, e.g. `POST runs/create`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST` (empty if none).
        code: String,
        /// The server's message (or the start of its body).
        message: String,
    },
    /// A successful answer without what it should hold.
    #[error("{endpoint} answered without {missing}: {answer}")]
    Incomplete {
        /// The endpoint, e.g. `runs/create`.
        endpoint: &'static str,
        /// What it left out, e.g. `a run id`.
        missing: &'static str,
        /// The answer.
        answer: Value,
    },
    /// A file could not be read, or written into a local artifact store.
    #[error("{action} {}: {source}", .path.display())]
    File {
        /// `reading`, `creating` or `writing`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The model directory could not be listed.
    #[error("{}: {source}", .dir.display())]
    ListDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run's artifacts cannot be written from here.
    #[error(transparent)]
    ArtifactRoot(#[from] UnwritableArtifactRoot),
}

/// An artifact root that is neither the server's proxy, HTTP nor a local directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the run's artifact root {root:?} is not one this program can write; start the \
     tracking server with --serve-artifacts (MLflow's default) so it proxies artifact uploads"
)]
pub struct UnwritableArtifactRoot {
    /// The root, e.g. `s3://bucket/7/abc/artifacts`.
    pub root: String,
}

#[cfg(test)]
mod tests;
