//! What the service accepts before a handler reads a request: body size, content type, rows.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Answers 413 from the headers alone when the declared body is over the limit, without waiting
/// for a body that will be refused anyway. (Bodies without a length are cut off as they arrive.)
pub async fn refuse_oversized(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is {n} bytes; the limit is {limit} bytes"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// The body, or the reason it could not be read (413 past the limit, 400 otherwise).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError::new(e.status(), e.body_text()))
}

/// Refuses compressed bodies (`Content-Encoding` other than `identity`): the parsers read them
/// as they are.
pub fn identity_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_ENCODING) {
        Some(v) if !v.as_bytes().eq_ignore_ascii_case(b"identity") => {
            Err(ApiError::unsupported_media_type(format!(
                "Content-Encoding `{}` is not supported; send the body uncompressed",
                String::from_utf8_lossy(v.as_bytes())
            )))
        }
        _ => Ok(()),
    }
}

/// The request's `Content-Type`, parsed; `None` without one.
pub fn media_type(headers: &HeaderMap) -> Result<Option<MediaType>, ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        None => Ok(None),
        Some(raw) => raw
            .to_str()
            .map(|text| Some(MediaType::parse(text)))
            .map_err(|_| ApiError::unsupported_media_type("Content-Type is not readable text")),
    }
}

/// A parsed `Content-Type`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    /// The header as sent, for error messages.
    pub text: String,
    /// `type/subtype`, lower-cased.
    pub essence: String,
    /// Parameters, names lower-cased.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype; name=value; ...` (`application/json; charset=utf-8`).
    pub fn parse(text: &str) -> Self {
        let mut parts = text.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let params = parts
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                )
            })
            .filter(|(k, _)| !k.is_empty())
            .collect();
        MediaType {
            text: text.to_string(),
            essence,
            params,
        }
    }

    /// Refuses a `charset` other than UTF-8 (JSON and CSV bodies are read as UTF-8).
    pub fn require_utf8(&self) -> Result<(), ApiError> {
        match self.params.iter().find(|(k, _)| k == "charset") {
            Some((_, v)) if !v.eq_ignore_ascii_case("utf-8") => {
                Err(ApiError::unsupported_media_type(format!(
                    "charset `{v}` is not supported; send UTF-8 (Content-Type `{}`)",
                    self.text
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A request with no rows, or more than the service accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowCountError {
    /// Nothing to predict.
    #[error("no rows to predict")]
    Empty,
    /// Over `--max-instances`.
    #[error("{rows} rows in one request; at most {max} are accepted")]
    TooMany {
        /// Rows sent.
        rows: usize,
        /// Rows accepted.
        max: usize,
    },
}

/// Refuses more rows than the service accepts in one request.
pub fn check_rows(rows: usize, max: usize) -> Result<(), RowCountError> {
    if rows == 0 {
        Err(RowCountError::Empty)
    } else if rows > max {
        Err(RowCountError::TooMany { rows, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn media_types_parse_with_their_parameters() {
        let m = media_type(&headers("Application/JSON; Charset=\"UTF-8\""))
            .unwrap()
            .unwrap();
        assert_eq!(m.essence, "application/json");
        assert_eq!(m.params, vec![("charset".into(), "UTF-8".into())]);
        assert!(m.require_utf8().is_ok());
        let m = media_type(&headers("text/csv; charset=latin-1"))
            .unwrap()
            .unwrap();
        let e = m.require_utf8().unwrap_err();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(e.message().contains("`latin-1`"), "{}", e.message());
        assert_eq!(media_type(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn row_counts_are_bounded() {
        assert!(check_rows(1, 1).is_ok());
        assert_eq!(
            check_rows(0, 5).unwrap_err().to_string(),
            "no rows to predict"
        );
        assert_eq!(
            check_rows(6, 5).unwrap_err().to_string(),
            "6 rows in one request; at most 5 are accepted"
        );
    }
}
