//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the status
//! OpenAI uses for each.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds, for a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: param.map(str::to_string),
            code: None,
            retry_after: None,
        }
    }

    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: 404,
            kind: "invalid_request_error",
            message: format!("The model `{model}` does not exist or you do not have access to it."),
            param: Some("model".into()),
            code: Some("model_not_found"),
            retry_after: None,
        }
    }

    pub fn unknown_url(method: &str, path: &str) -> ApiError {
        ApiError {
            status: 404,
            kind: "invalid_request_error",
            message: format!("Unknown request URL: {method} {path}."),
            param: None,
            code: Some("unknown_url"),
            retry_after: None,
        }
    }

    /// A simulated rate limit (`--faults 429=…`).
    pub fn rate_limited(model: &str, retry_after: u64) -> ApiError {
        ApiError {
            status: 429,
            kind: "requests",
            message: format!(
                "Rate limit reached for {model} (simulated by reprise serve --faults). Please try again in {retry_after}s."
            ),
            param: None,
            code: Some("rate_limit_exceeded"),
            retry_after: Some(retry_after),
        }
    }

    /// A simulated server failure (`--faults 500=…`).
    pub fn server() -> ApiError {
        ApiError {
            status: 500,
            kind: "server_error",
            message: "The server had an error while processing your request (simulated by reprise serve --faults).".into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// The model's decoder is gone (never expected while the server runs).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 503,
            kind: "server_error",
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
