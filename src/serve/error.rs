//! Failed requests: one error type for every handler, answered in the body shape of the protocol
//! the request's path belongs to.
//!
//! Handlers return [`ApiError`] without knowing which protocol's shape their answer takes; the
//! response carries the error in its extensions and [`render_errors`], the one layer that sees
//! the request's path, writes the body. Answers made outside any handler (unknown route, wrong
//! method, body over the limit) go through the same layer, so a `/v2` client always reads
//! `{"error": ...}` and an MLflow client always reads `{"error_code": ..., "message": ...}`.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// A request the service refuses (4xx, its message names what was wrong) or fails (5xx, its
/// detail is logged in full and the client reads a generic message).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// For internal errors: what went wrong, for the log only.
    detail: Option<String>,
}

/// What clients of a 500 read; the detail is in the service's log.
pub const INTERNAL_MESSAGE: &str = "internal server error; the details are in the service's log";

impl ApiError {
    /// A client error with this status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            detail: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 415 Unsupported Media Type.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// 500: `detail` is logged, the client reads [`INTERNAL_MESSAGE`].
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: INTERNAL_MESSAGE.to_string(),
            detail: Some(detail.to_string()),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client reads.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            // The caller's rows: the message names the row and feature.
            Error::Input(m) => ApiError::bad_request(m),
            Error::Encode { error, .. } => ApiError::bad_request(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// The request parsers' errors are the client's: 400, with the parser's message.
macro_rules! bad_request_from {
    ($($source:ty),* $(,)?) => {
        $(impl From<$source> for ApiError {
            fn from(e: $source) -> Self {
                ApiError::bad_request(e.to_string())
            }
        })*
    };
}

bad_request_from!(
    super::rest::PredictBodyError,
    super::oip::InferRequestError,
    super::mlflow::InvocationError,
    super::limits::RowCountError,
);

impl IntoResponse for ApiError {
    /// An empty response carrying the error; [`render_errors`] writes the body.
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The protocols the service speaks, each with its own error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The service's own routes: `{"error": ..., "status": ...}`.
    Own,
    /// Open Inference Protocol v2 (`/v2/...`): `{"error": ...}`.
    Oip,
    /// MLflow's scoring protocol (`/invocations`, `/ping`, `/version`):
    /// `{"error_code": ..., "message": ...}`.
    Mlflow,
}

impl Protocol {
    /// The protocol a request path belongs to.
    pub fn of_path(path: &str) -> Self {
        if path == "/v2" || path.starts_with("/v2/") {
            Protocol::Oip
        } else if matches!(path, "/invocations" | "/ping" | "/version") {
            Protocol::Mlflow
        } else {
            Protocol::Own
        }
    }

    /// The JSON answer for an error in this protocol.
    pub fn render(self, e: &ApiError) -> Response {
        let body = match self {
            Protocol::Own => json!({"error": e.message, "status": e.status.as_u16()}),
            Protocol::Oip => json!({"error": e.message}),
            Protocol::Mlflow => {
                json!({"error_code": mlflow_error_code(e.status), "message": e.message})
            }
        };
        (e.status, Json(body)).into_response()
    }
}

/// MLflow's error codes (`mlflow.protos.databricks_pb2`) for the statuses this service answers.
fn mlflow_error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "ENDPOINT_NOT_FOUND",
        StatusCode::SERVICE_UNAVAILABLE => "TEMPORARILY_UNAVAILABLE",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "BAD_REQUEST",
    }
}

/// Writes the body of every error response in its protocol's shape; logs internal errors in full.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let protocol = Protocol::of_path(req.uri().path());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    match response.extensions_mut().remove::<ApiError>() {
        Some(e) => {
            if let Some(detail) = &e.detail {
                // Logged even with --quiet: an operator needs to see every 500.
                eprintln!("error: {method} {path}: {detail}");
            }
            protocol.render(&e)
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_protocol() {
        for (path, protocol) in [
            ("/v2", Protocol::Oip),
            ("/v2/models/m/infer", Protocol::Oip),
            ("/v2x", Protocol::Own),
            ("/invocations", Protocol::Mlflow),
            ("/ping", Protocol::Mlflow),
            ("/version", Protocol::Mlflow),
            ("/predict", Protocol::Own),
            ("/", Protocol::Own),
        ] {
            assert_eq!(Protocol::of_path(path), protocol, "{path}");
        }
    }

    #[test]
    fn internal_errors_keep_their_detail_out_of_the_message() {
        let e = ApiError::from(Error::Device("secret adapter state".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message(), INTERNAL_MESSAGE);
        assert_eq!(e.detail.as_deref(), Some("secret adapter state"));
        let e = ApiError::from(Error::Input("row 1: bad".into()));
        assert_eq!(
            (e.status(), e.message()),
            (StatusCode::BAD_REQUEST, "row 1: bad")
        );
        let e = ApiError::from(Error::Encode {
            input: None,
            error: crate::error::EncodeError {
                row: Some(2),
                column: Some("x".into()),
                problem: crate::error::EncodeProblem::BooleanNumber(7.0),
            },
        });
        assert_eq!(
            (e.status(), e.message()),
            (
                StatusCode::BAD_REQUEST,
                "row 3, column `x`: 7 is not a boolean value (0 or 1)"
            )
        );
    }

    #[tokio::test]
    async fn internal_errors_are_answered_generically_in_each_protocol() {
        use axum::body::Body;
        use tower::ServiceExt;
        let app = axum::Router::new()
            .fallback(|| async { ApiError::internal("the disk is on fire at /srv/model") })
            .layer(axum::middleware::from_fn(render_errors));
        for (path, expected) in [
            (
                "/predict",
                json!({"error": INTERNAL_MESSAGE, "status": 500}),
            ),
            ("/v2/models/m/infer", json!({"error": INTERNAL_MESSAGE})),
            (
                "/invocations",
                json!({"error_code": "INTERNAL_ERROR", "message": INTERNAL_MESSAGE}),
            ),
        ] {
            let req = Request::builder().uri(path).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(req).await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v, expected, "{path}");
        }
    }

    #[test]
    fn mlflow_codes_follow_the_status() {
        assert_eq!(mlflow_error_code(StatusCode::BAD_REQUEST), "BAD_REQUEST");
        assert_eq!(
            mlflow_error_code(StatusCode::PAYLOAD_TOO_LARGE),
            "BAD_REQUEST"
        );
        assert_eq!(
            mlflow_error_code(StatusCode::NOT_FOUND),
            "ENDPOINT_NOT_FOUND"
        );
        assert_eq!(
            mlflow_error_code(StatusCode::INTERNAL_SERVER_ERROR),
            "INTERNAL_ERROR"
        );
    }
}
