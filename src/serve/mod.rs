//! The HTTP service: one model, three protocols.
//!
//! - the service's own routes (`/prediction`, `/predict`, `/health`, `/metadata`), in `rest.rs`;
//! - the Open Inference Protocol v2 (`/v2/...`), for KServe and Triton clients: [`oip`];
//! - MLflow's scoring protocol (`/invocations`, `/ping`, `/version`): [`mlflow`].
//!
//! Around them, one file each: limits on bodies, rows, time and concurrency (`limits.rs`),
//! Prometheus metrics (`metrics.rs`), errors in each protocol's shape (`error.rs`), the OpenAPI
//! document (`openapi.rs`) and graceful shutdown (`shutdown.rs`).

mod error;
mod json;
mod limits;
mod metrics;
pub mod mlflow;
pub mod oip;
mod openapi;
mod rest;
mod shutdown;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::backend::Backend;
use crate::data::Table;
use crate::error::{Error, Result};
use crate::predict::{Prediction, Predictions, Predictor, RowPrediction};

use error::ApiError;
pub use mlflow::parse_invocation;
pub use oip::parse_infer_request;
pub use openapi::{ServiceDescription, openapi_document};
pub use rest::{IRIS_QUERY_PARAMS, PredictBodyError, parse_predict_body};

/// The model's name on the v2 routes unless `--model-name` says otherwise: the program's name,
/// so that clients and documentation can name it without knowing where the model was saved.
pub const DEFAULT_MODEL_NAME: &str = "iris-trainer";

/// How the service listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// The model's name on the Open Inference Protocol routes (see [`check_model_name`]).
    pub model_name: String,
    /// Most rows in one request, in every protocol.
    pub max_instances: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Time limit of one request.
    pub timeout: Duration,
    /// Requests handled at once.
    pub max_concurrency: usize,
    /// No request log.
    pub quiet: bool,
}

/// A model name the v2 routes cannot use (see [`check_model_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{}` is not a usable model name: use 1 to 128 letters, digits, `.`, `_` or `-`",
    json::cut(.name, 40)
)]
pub struct BadModelName {
    /// The name as given.
    pub name: String,
}

/// Checks a model name for the v2 routes: 1 to 128 ASCII letters, digits, `.`, `_` or `-`,
/// so that it is one URL path segment as written.
pub fn check_model_name(name: &str) -> std::result::Result<(), BadModelName> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok && name != "." && name != ".." {
        Ok(())
    } else {
        Err(BadModelName {
            name: name.to_string(),
        })
    }
}

/// What the served model answers for a row. The protocols' answers are each one `match` on it:
/// a classifier answers a label and class probabilities, a regressor a number.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerKind {
    /// A class: one of `classes`, with each one's probability.
    Class {
        /// Class names, in output order.
        classes: Vec<String>,
    },
    /// A number.
    Number,
}

impl AnswerKind {
    /// What a loaded model answers.
    pub fn of(predictor: &Predictor<Backend>) -> Self {
        match predictor.task() {
            crate::data::Task::Classification => AnswerKind::Class {
                classes: predictor.classes().to_vec(),
            },
            crate::data::Task::Regression => AnswerKind::Number,
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    predictor: Predictor<Backend>,
    answers: AnswerKind,
    metrics: metrics::Metrics,
    max_instances: usize,
    quiet: bool,
    /// The model's name on the v2 routes.
    model_name: String,
    /// The model's version on the v2 routes: the first 12 hex digits of the record's SHA-256.
    model_version: String,
    /// The model's metadata as served by `GET /metadata`, serialised once.
    metadata_json: String,
}

type Shared = Arc<AppState>;

/// Builds the router (without binding), for the server and for in-process tests.
pub fn router(predictor: Predictor<Backend>, opts: &ServeOptions) -> Router {
    let metadata_json = serde_json::to_string(predictor.metadata()).unwrap_or_default();
    let model_version = predictor
        .metadata()
        .record
        .sha256
        .chars()
        .take(12)
        .collect();
    let state = Arc::new(AppState {
        answers: AnswerKind::of(&predictor),
        predictor,
        metrics: metrics::Metrics::new(),
        max_instances: opts.max_instances,
        quiet: opts.quiet,
        model_name: opts.model_name.clone(),
        model_version,
        metadata_json,
    });
    Router::new()
        .route("/prediction", get(rest::get_prediction))
        .route("/predict", post(rest::predict))
        .route("/health", get(rest::health))
        .route("/metadata", get(rest::metadata))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::model_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::model_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer),
        )
        .route("/invocations", post(mlflow::invocations))
        .route("/ping", get(mlflow::ping))
        .route("/version", get(mlflow::version))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            opts.max_body_bytes,
            limits::refuse_oversized,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(opts.max_concurrency))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            opts.timeout,
        ))
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// Binds, serves until SIGINT or SIGTERM, then lets in-flight requests finish.
pub fn serve(predictor: Predictor<Backend>, opts: ServeOptions) -> Result<()> {
    if let Err(e) = check_model_name(&opts.model_name) {
        return Err(Error::ConfigValue {
            origin: "the command line".into(),
            key: "--model-name".into(),
            value: opts.model_name.clone(),
            reason: e.to_string(),
        });
    }
    let addr = opts.addr;
    let io_err = |source| Error::Serve {
        addr: addr.to_string(),
        source,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err)?;
    runtime.block_on(async move {
        let app = router(predictor, &opts);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(io_err)?;
        let local = listener.local_addr().map_err(io_err)?;
        eprintln!("listening on http://{local}");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown::signal(opts.quiet))
            .await
            .map_err(io_err)?;
        if !opts.quiet {
            eprintln!("shut down cleanly");
        }
        Ok(())
    })
}

/// A batch for the model: row-major numbers in feature order (the query-string route), or a
/// table of raw columns (every request body).
pub(crate) enum Batch {
    /// Numbers, predicted as classes (a regressor refuses them with a 400).
    Values(Vec<f32>),
    /// Raw columns: numbers, categories, missing values.
    Rows(Table),
}

impl Batch {
    fn rows(&self, width: usize) -> usize {
        match self {
            Batch::Values(v) => v.len() / width.max(1),
            Batch::Rows(t) => t.rows(),
        }
    }

    fn predict(&self, predictor: &Predictor<Backend>) -> Result<Predictions> {
        match self {
            Batch::Values(v) => Ok(Predictions {
                rows: predictor
                    .predict(v)?
                    .into_iter()
                    .map(RowPrediction::Class)
                    .collect(),
                unseen: Default::default(),
            }),
            Batch::Rows(t) => predictor.predict_rows(t),
        }
    }
}

/// Runs a batch, off the async workers when it is large; counts its classes and the categories
/// the model never saw.
async fn run_batch(
    state: &Shared,
    batch: Batch,
) -> std::result::Result<Vec<RowPrediction>, ApiError> {
    let predictions = if batch.rows(state.predictor.features().len()) <= 64 {
        batch.predict(&state.predictor)?
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || batch.predict(&state.predictor))
            .await
            .map_err(|e| ApiError::internal(format!("the prediction task failed: {e}")))??
    };
    state.metrics.count_unseen(predictions.unseen.total());
    let classes: Vec<Prediction> = predictions
        .rows
        .iter()
        .filter_map(|p| match p {
            RowPrediction::Class(c) => Some(c.clone()),
            RowPrediction::Number(_) => None,
        })
        .collect();
    state.metrics.count(&classes);
    Ok(predictions.rows)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; see GET /openapi.json",
        json::cut(uri.path(), 200)
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", json::cut(uri.path(), 200)),
    )
}

async fn openapi(State(state): State<Shared>) -> Json<Value> {
    Json(openapi_document(&ServiceDescription {
        features: state.predictor.features(),
        classes: state.predictor.classes(),
        max_instances: state.max_instances,
        model_name: &state.model_name,
        model_version: &state.model_version,
        encoders: &state.predictor.preprocessor().encoding.columns,
        regression: state.predictor.task() == crate::data::Task::Regression,
    }))
}
