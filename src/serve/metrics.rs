//! Prometheus metrics: requests by method, route and status; latency by route; predictions by
//! class. Every protocol's routes are counted by the same layer.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{ApiError, Shared};
use crate::predict::Prediction;

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

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    predictions: Family<ClassLabels, Counter>,
    unseen: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
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
        let unseen = Counter::default();
        registry.register(
            "unseen_categories",
            "Values of categorical features never seen in training (encoded as all zeros)",
            unseen.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            predictions,
            unseen,
        }
    }

    /// Counts category values the model never saw in training.
    pub fn count_unseen(&self, n: u64) {
        if n > 0 {
            self.unseen.inc_by(n);
        }
    }

    /// Counts predicted rows by class.
    pub fn count(&self, predictions: &[Prediction]) {
        for p in predictions {
            self.predictions
                .get_or_create(&ClassLabels {
                    class: p.class.clone(),
                })
                .inc();
        }
    }
}

/// Counts, times and logs every request.
pub async fn observe(State(state): State<Shared>, req: Request, next: Next) -> Response {
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
    // The route's pattern (`/v2/models/{name}/infer`), never the path itself: the number of
    // series stays bounded whatever names clients send.
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

/// `GET /metrics`: OpenMetrics text.
pub async fn metrics(State(state): State<Shared>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry) {
        return ApiError::internal(format!("cannot encode metrics: {e}")).into_response();
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
