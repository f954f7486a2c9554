//! The HTTP service: routes, request validation, limits, Prometheus metrics, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::predict::{Prediction, Predictor};

/// The workshop's query parameter names, in Iris feature order.
pub const WORKSHOP_PARAMS: [&str; 4] = ["slength", "swidth", "plength", "pwidth"];

/// How the service listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Most instances in one `POST /predict`.
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    predictions: Family<ClassLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("iris_trainer");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 18))) as fn() -> Histogram,
        );
        let predictions = Family::<ClassLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "predictions",
            "Predicted rows by class",
            predictions.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            predictions,
        }
    }
}

struct AppState {
    predictor: Predictor<Backend>,
    metrics: Metrics,
    max_instances: usize,
    quiet: bool,
    /// The model's metadata as served by `GET /metadata`, serialised once.
    metadata_json: String,
}

type Shared = Arc<AppState>;

/// A 4xx/5xx answer with a JSON body `{"error": ..., "status": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.message, "status": self.status.as_u16()})),
        )
            .into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Input(m) => ApiError::bad(m),
            other => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: other.to_string(),
            },
        }
    }
}

/// Builds the router (without binding), for the server and for in-process tests.
pub fn router(predictor: Predictor<Backend>, opts: &ServeOptions) -> Router {
    let metadata_json = serde_json::to_string(predictor.metadata()).unwrap_or_default();
    let state = Arc::new(AppState {
        predictor,
        metrics: Metrics::new(),
        max_instances: opts.max_instances,
        quiet: opts.quiet,
        metadata_json,
    });
    Router::new()
        .route("/prediction", get(workshop_prediction))
        .route("/predict", post(predict))
        .route("/health", get(health))
        .route("/metadata", get(metadata))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            opts.max_body_bytes,
            refuse_oversized,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(opts.max_concurrency))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            opts.timeout,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Binds, serves until SIGINT or SIGTERM, then lets in-flight requests finish.
pub fn serve(predictor: Predictor<Backend>, opts: ServeOptions) -> Result<()> {
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
            .with_graceful_shutdown(shutdown_signal(opts.quiet))
            .await
            .map_err(io_err)?;
        if !opts.quiet {
            eprintln!("shut down cleanly");
        }
        Ok(())
    })
}

async fn shutdown_signal(quiet: bool) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let name = tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    };
    if !quiet {
        eprintln!("{name} received: finishing in-flight requests");
    }
}

/// Answers 413 from the headers alone when the declared body is over the limit, without waiting
/// for a body that will be refused anyway. (Bodies without a length are cut off as they arrive.)
async fn refuse_oversized(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body is {n} bytes; the limit is {limit} bytes"),
        }
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Counts, times and logs every request.
async fn observe(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // Only standard methods get their own series: a client inventing methods must not grow
    // the metrics without bound.
    let method_label = match method.as_str() {
        "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH" => method.as_str(),
        _ => "other",
    }
    .to_string();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method_label,
            route: route.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    if !state.quiet {
        eprintln!(
            "{method} {path} {status} {:.3}ms",
            elapsed.as_secs_f64() * 1e3
        );
    }
    response
}

fn count_predictions(state: &AppState, predictions: &[Prediction]) {
    for p in predictions {
        state
            .metrics
            .predictions
            .get_or_create(&ClassLabels {
                class: p.species.clone(),
            })
            .inc();
    }
}

fn prediction_json(state: &AppState, p: &Prediction) -> Value {
    let probs: serde_json::Map<String, Value> = state
        .predictor
        .classes()
        .iter()
        .cloned()
        .zip(p.probabilities.iter().map(|&x| json!(x)))
        .collect();
    json!({"species": p.species, "probability": p.probability, "probabilities": probs})
}

/// Runs a batch, off the async workers when it is large.
async fn run_predictions(state: &Shared, values: Vec<f32>) -> Result<Vec<Prediction>, ApiError> {
    let width = state.predictor.features().len().max(1);
    let predictions = if values.len() / width <= 64 {
        state.predictor.predict(&values)?
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.predictor.predict(&values))
            .await
            .map_err(|e| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("prediction failed: {e}"),
            })??
    };
    count_predictions(state, &predictions);
    Ok(predictions)
}

/// `GET /prediction?slength=&swidth=&plength=&pwidth=` (or the model's own feature names).
async fn workshop_prediction(
    State(state): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad(format!("bad query string: {e}")))?;
    let features = state.predictor.features();
    let aliases: &[&str] = if features.len() == WORKSHOP_PARAMS.len() {
        &WORKSHOP_PARAMS
    } else {
        &[]
    };
    let mut values: Vec<Option<f32>> = vec![None; features.len()];
    let mut echo = serde_json::Map::new();
    for (key, raw) in &pairs {
        let idx = aliases
            .iter()
            .position(|a| a == key)
            .or_else(|| features.iter().position(|f| f == key))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "unknown parameter `{key}`; expected {}",
                    expected_params(aliases, features)
                ))
            })?;
        if values[idx].is_some() {
            return Err(ApiError::bad(format!(
                "parameter for `{}` given twice",
                features[idx]
            )));
        }
        let v = crate::data::parse_value(raw.trim(), 0, key)
            .map_err(|m| ApiError::bad(m.replacen("line 0, column", "parameter", 1)))?;
        values[idx] = Some(v);
        // Echo the number as sent, not its 32-bit rounding.
        echo.insert(
            key.clone(),
            json!(raw.trim().parse::<f64>().unwrap_or(f64::from(v))),
        );
    }
    let missing: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_none())
        .map(|(i, _)| {
            aliases
                .get(i)
                .map_or(features[i].clone(), |a| a.to_string())
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad(format!(
            "missing parameter(s): {}; expected {}",
            missing.join(", "),
            expected_params(aliases, features)
        )));
    }
    let values: Vec<f32> = values.into_iter().flatten().collect();
    let p = run_predictions(&state, values).await?.remove(0);
    let mut body = echo;
    if let Value::Object(pred) = prediction_json(&state, &p) {
        body.extend(pred);
    }
    Ok(Json(Value::Object(body)))
}

fn expected_params(aliases: &[&str], features: &[String]) -> String {
    if aliases.is_empty() {
        features.join(", ")
    } else {
        format!("{} (or {})", aliases.join(", "), features.join(", "))
    }
}

/// Turns one JSON instance (an object keyed by feature name, or an array) into values.
fn instance_values(
    v: &Value,
    features: &[String],
    at: &str,
    out: &mut Vec<f32>,
) -> Result<(), ApiError> {
    let number = |x: &Value, what: &str| -> Result<f32, ApiError> {
        match x.as_f64() {
            Some(f) if (f as f32).is_finite() => Ok(f as f32),
            Some(_) => Err(ApiError::bad(format!(
                "{at}{what}: {x} is out of range for a 32-bit float"
            ))),
            None => Err(ApiError::bad(format!(
                "{at}{what}: expected a number, got {}",
                truncate_json(x)
            ))),
        }
    };
    match v {
        Value::Array(items) => {
            if items.len() != features.len() {
                return Err(ApiError::bad(format!(
                    "{at}expected {} values ({}), got {}",
                    features.len(),
                    features.join(", "),
                    items.len()
                )));
            }
            for (x, name) in items.iter().zip(features) {
                out.push(number(x, &format!("`{name}`"))?);
            }
        }
        Value::Object(map) => {
            if let Some(extra) = map.keys().find(|k| !features.contains(k)) {
                return Err(ApiError::bad(format!(
                    "{at}unknown field `{extra}`; expected {}",
                    features.join(", ")
                )));
            }
            for name in features {
                let x = map
                    .get(name)
                    .ok_or_else(|| ApiError::bad(format!("{at}missing field `{name}`")))?;
                out.push(number(x, &format!("`{name}`"))?);
            }
        }
        other => {
            return Err(ApiError::bad(format!(
                "{at}expected an object keyed by feature name or an array of {} numbers, got {}",
                features.len(),
                truncate_json(other)
            )));
        }
    }
    Ok(())
}

fn truncate_json(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// A JSON value whose objects may not repeat a key (plain `serde_json::Value` keeps the last one,
/// which would silently answer for a value the client did not mean).
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrictJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Null))
            }
            fn visit_none<E>(self) -> Result<StrictJson, E> {
                Ok(StrictJson(Value::Null))
            }
            fn visit_some<D2: serde::Deserializer<'de>>(
                self,
                d: D2,
            ) -> Result<StrictJson, D2::Error> {
                serde::Deserialize::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StrictJson, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictJson(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(StrictJson(Value::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictJson, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "field `{key}` is given twice"
                        )));
                    }
                    let StrictJson(v) = map.next_value()?;
                    object.insert(key, v);
                }
                Ok(StrictJson(Value::Object(object)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a `POST /predict` body into row-major values; `Ok((values, batched))`.
pub fn parse_predict_body(
    body: &[u8],
    features: &[String],
    max_instances: usize,
) -> Result<(Vec<f32>, bool), String> {
    let v = serde_json::from_slice::<StrictJson>(body)
        .map_err(|e| format!("body is not valid JSON: {e}"))?
        .0;
    let mut out = Vec::new();
    let as_api = |e: ApiError| e.message;
    match &v {
        Value::Object(map) if map.contains_key("instances") => {
            if map.len() > 1 {
                let extra = map
                    .keys()
                    .find(|k| *k != "instances")
                    .cloned()
                    .unwrap_or_default();
                return Err(format!("unknown field `{extra}` beside `instances`"));
            }
            let Some(Value::Array(items)) = map.get("instances") else {
                return Err("`instances` must be an array".into());
            };
            if items.is_empty() {
                return Err("`instances` is empty".into());
            }
            if items.len() > max_instances {
                return Err(format!(
                    "{} instances in one request; at most {max_instances} are accepted",
                    items.len()
                ));
            }
            out.reserve(items.len() * features.len());
            for (i, item) in items.iter().enumerate() {
                instance_values(item, features, &format!("instances[{i}]: "), &mut out)
                    .map_err(as_api)?;
            }
            Ok((out, true))
        }
        _ => {
            instance_values(&v, features, "", &mut out).map_err(as_api)?;
            Ok((out, false))
        }
    }
}

/// `POST /predict`: one instance, or `{"instances": [...]}`.
async fn predict(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        message: e.body_text(),
    })?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/json") {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: format!("Content-Type must be application/json, got `{ct}`"),
            });
        }
    }
    let (values, batched) =
        parse_predict_body(&body, state.predictor.features(), state.max_instances)
            .map_err(ApiError::bad)?;
    let predictions = run_predictions(&state, values).await?;
    let rows: Vec<Value> = predictions
        .iter()
        .map(|p| prediction_json(&state, p))
        .collect();
    Ok(Json(if batched {
        json!({ "predictions": rows })
    } else {
        rows.into_iter().next().unwrap_or(Value::Null)
    }))
}

async fn health(State(state): State<Shared>) -> Json<Value> {
    let m = state.predictor.metadata();
    Json(json!({
        "status": "ok",
        "model": {
            "created_at": m.created_at,
            "record_sha256": m.record.sha256,
            "classes": m.classes,
            "features": m.features,
        }
    }))
}

async fn metadata(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.metadata_json.clone(),
    )
        .into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry) {
        return ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("cannot encode metrics: {e}"),
        }
        .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route {method} {}; see GET /openapi.json", uri.path()),
    }
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {}", uri.path()),
    }
}

async fn openapi(State(state): State<Shared>) -> Json<Value> {
    Json(openapi_document(
        state.predictor.features(),
        state.predictor.classes(),
        state.max_instances,
    ))
}

/// The OpenAPI 3.1 description of this service, for a model's features and classes.
pub fn openapi_document(features: &[String], classes: &[String], max_instances: usize) -> Value {
    let feature_props: serde_json::Map<String, Value> = features
        .iter()
        .map(|f| (f.clone(), json!({"type": "number"})))
        .collect();
    let prob_props: serde_json::Map<String, Value> = classes
        .iter()
        .map(|c| {
            (
                c.clone(),
                json!({"type": "number", "minimum": 0, "maximum": 1}),
            )
        })
        .collect();
    let mut query_params: Vec<Value> = Vec::new();
    let names: Vec<&str> = if features.len() == WORKSHOP_PARAMS.len() {
        WORKSHOP_PARAMS.to_vec()
    } else {
        features.iter().map(String::as_str).collect()
    };
    for (name, feature) in names.iter().zip(features) {
        query_params.push(json!({
            "name": name, "in": "query", "required": true,
            "description": format!("`{feature}` (the model's own name is accepted too)"),
            "schema": {"type": "number"}
        }));
    }
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err_resp =
        |d: &str| json!({"description": d, "content": {"application/json": {"schema": error}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "iris-trainer prediction service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Predictions from a model trained by iris-trainer."
        },
        "paths": {
            "/prediction": {"get": {
                "summary": "Predict one row from query parameters (the workshop's request)",
                "parameters": query_params,
                "responses": {
                    "200": {"description": "The inputs echoed, with the prediction",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}},
                    "400": err_resp("Missing, unknown, repeated or non-finite parameters")
                }
            }},
            "/predict": {"post": {
                "summary": "Predict one instance or a batch",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Instance"},
                        {"type": "object", "required": ["instances"], "additionalProperties": false,
                         "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": max_instances,
                                                      "items": {"$ref": "#/components/schemas/Instance"}}}}
                    ]
                }}}},
                "responses": {
                    "200": {"description": "A prediction, or `{\"predictions\": [...]}` for a batch",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Prediction"},
                                {"type": "object", "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}}
                            ]}}}},
                    "400": err_resp("Malformed JSON, missing or extra fields, wrong count, non-finite numbers, too many instances"),
                    "413": err_resp("Body over the size limit"),
                    "415": err_resp("Content-Type is not application/json")
                }
            }},
            "/health": {"get": {"summary": "Liveness and readiness", "responses": {"200": {"description": "The model is loaded"}}}},
            "/metadata": {"get": {"summary": "The model's metadata (model.json)", "responses": {"200": {"description": "Metadata"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (OpenMetrics text)", "responses": {"200": {"description": "Metrics"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}}
        },
        "components": {"schemas": {
            "Instance": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": features, "properties": feature_props},
                {"type": "array", "items": {"type": "number"}, "minItems": features.len(), "maxItems": features.len()}
            ]},
            "Prediction": {"type": "object", "required": ["species", "probability", "probabilities"], "properties": {
                "species": {"type": "string", "enum": classes},
                "probability": {"type": "number"},
                "probabilities": {"type": "object", "properties": prob_props}
            }},
            "Error": {"type": "object", "required": ["error", "status"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"}
            }}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["a", "b"].map(String::from).to_vec()
    }

    #[test]
    fn bodies_parse_as_objects_arrays_and_batches() {
        let f = names();
        assert_eq!(
            parse_predict_body(br#"{"a":1,"b":2}"#, &f, 10).unwrap(),
            (vec![1.0, 2.0], false)
        );
        assert_eq!(
            parse_predict_body(b"[1,2]", &f, 10).unwrap(),
            (vec![1.0, 2.0], false)
        );
        assert_eq!(
            parse_predict_body(br#"{"instances":[[1,2],{"b":4,"a":3}]}"#, &f, 10).unwrap(),
            (vec![1.0, 2.0, 3.0, 4.0], true)
        );
    }

    #[test]
    fn openapi_document_is_valid_openapi_3_1_for_the_model() {
        let doc = openapi_document(&names(), &["x".to_string(), "y".to_string()], 7);
        let spec: oas3::Spec = serde_json::from_value(doc.clone()).expect("valid OpenAPI 3.1");
        assert_eq!(spec.openapi, "3.1.0");
        let paths = spec.paths.expect("paths");
        for p in [
            "/prediction",
            "/predict",
            "/health",
            "/metadata",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        // The model's own names and limits are in the schemas.
        let instance = &doc["components"]["schemas"]["Instance"]["oneOf"][0];
        assert_eq!(instance["required"], serde_json::json!(["a", "b"]));
        assert_eq!(
            doc["components"]["schemas"]["Prediction"]["properties"]["species"]["enum"],
            serde_json::json!(["x", "y"])
        );
        let batch = &doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["oneOf"][1];
        assert_eq!(batch["properties"]["instances"]["maxItems"], 7);
        // Not 4 features: the workshop names do not apply, the feature names are the parameters.
        let params = doc["paths"]["/prediction"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert_eq!(params[0]["name"], "a");
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let f = names();
        let cases: [(&[u8], &str); 11] = [
            (b"{", "not valid JSON"),
            (br#"{"a":1}"#, "missing field `b`"),
            (br#"{"a":1,"b":2,"c":3}"#, "unknown field `c`"),
            (br#"{"a":1,"b":2,"a":3}"#, "field `a` is given twice"),
            (b"[1]", "expected 2 values"),
            (br#"[1,"x"]"#, "expected a number"),
            (b"[1,1e39]", "out of range"),
            (br#"{"instances":[]}"#, "empty"),
            (br#"{"instances":[[1,2],[1,2],[1,2]]}"#, "at most 2"),
            (br#"{"instances":[[1,2],[1]]}"#, "instances[1]"),
            (b"\"hello\"", "expected an object"),
        ];
        for (body, expected) in cases {
            let m = parse_predict_body(body, &f, 2).unwrap_err();
            assert!(
                m.contains(expected),
                "{}: {m}",
                String::from_utf8_lossy(body)
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes never panic the request parser.
            #[test]
            fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Err(m) = parse_predict_body(&body, &names(), 10) {
                    prop_assert!(!m.is_empty());
                }
            }

            /// JSON-shaped text: what parses has exactly whole, finite rows.
            #[test]
            fn json_like_bodies_parse_to_whole_finite_rows(
                body in "(\\{|\\}|\\[|\\]|,|:|\"a\"|\"b\"|\"instances\"|[0-9]{1,3}|-|1e39|null|true){0,40}"
            ) {
                if let Ok((values, _)) = parse_predict_body(body.as_bytes(), &names(), 10) {
                    prop_assert!(!values.is_empty());
                    prop_assert_eq!(values.len() % 2, 0);
                    prop_assert!(values.iter().all(|v| v.is_finite()));
                }
            }
        }
    }
}
