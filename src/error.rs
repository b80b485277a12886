//! One error type for the edges: each variant is a stable snake_case code with its HTTP
//! status (PROTOCOL §3), rendered as `{"error":{"code","message"}}`.

use crate::domain::DomainError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    #[error("missing or unknown token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidTransition(String),
    #[error("the messaging session of this conversation has ended")]
    SessionEnded,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many requests; slow down")]
    RateLimited,
    #[error("{0}")]
    Unavailable(String),
    /// A request body that did not arrive in time (408; beyond PROTOCOL §3's table,
    /// which has no such case: a client that sends its body is never answered this).
    #[error("{0}")]
    Timeout(String),
    /// An `If-Match` that names another version than the one stored (412; beyond
    /// PROTOCOL §3's table: only clients that send `If-Match` ever get it).
    #[error("{0}")]
    PreconditionFailed(String),
}

impl ApiError {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::InvalidTransition(_) => "invalid_transition",
            ApiError::SessionEnded => "session_ended",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Timeout(_) => "timeout",
            ApiError::PreconditionFailed(_) => "precondition_failed",
        }
    }

    /// The JSON body `{"error":{"code","message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }

    /// Shorthand for a 400.
    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::Invalid(msg.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidTransition(_) | ApiError::SessionEnded | ApiError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        // RFC 9110 §10.2.3. Every rate limit refills at 5 a second or more, so a second
        // always frees a slot; a store that failed is reopened at once.
        if matches!(self, ApiError::RateLimited | ApiError::Unavailable(_)) {
            res.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        res.json(self.body())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            e @ DomainError::InvalidTransition { .. } => ApiError::InvalidTransition(e.to_string()),
            DomainError::Forbidden(m) => ApiError::Forbidden(m.to_string()),
            DomainError::SessionEnded => ApiError::SessionEnded,
            DomainError::Conflict(m) => ApiError::Conflict(m.to_string()),
            DomainError::Invalid(m) => ApiError::Invalid(m.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "Store failure answered with 503.");
        ApiError::Unavailable("storage is unavailable; nothing was saved, try again".into())
    }
}
