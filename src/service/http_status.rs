//! The one place where errors become HTTP responses: the status, and a JSON body with the same code name,
//! field and message a gRPC client gets (`{"error": {"code": "INVALID_ARGUMENT", "field": "k",
//! "message": "k: must be between 1 and 100, got 101"}}`). The classification itself is shared with gRPC
//! ([`classify`]).

use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tonic::Code;

use super::status::{ClientError, classify, code_name};
use crate::error::Error;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    error: ClientError,
}

impl From<Error> for HttpError {
    fn from(error: Error) -> Self {
        let error = classify(error);
        Self {
            status: http_status(error.code),
            error,
        }
    }
}

impl From<BytesRejection> for HttpError {
    /// A request body that could not be read: too large (413, `RESOURCE_EXHAUSTED`) or broken.
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            Code::ResourceExhausted
        } else {
            Code::InvalidArgument
        };
        Self {
            status,
            error: ClientError {
                code,
                field: Some("body".into()),
                message: format!("body: {}", rejection.body_text()),
            },
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let ClientError { code, field, message } = self.error;
        let body = serde_json::json!({
            "error": { "code": code_name(code), "field": field, "message": message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The HTTP status for a gRPC code, as Google's HTTP/JSON APIs map them (`google.rpc.Code`).
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 "client closed request", as Google's APIs and nginx use it.
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_a_status_and_name_their_field() {
        let invalid = HttpError::from(Error::invalid("k", "too large"));
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
        assert_eq!(invalid.error.field.as_deref(), Some("k"));
        let unknown = HttpError::from(Error::UnknownArticle("x".into()));
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let refused = HttpError::from(Error::Unauthenticated("invalid token")).into_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()[http::header::WWW_AUTHENTICATE], "Bearer");
        let internal = HttpError::from(Error::Index("secret".into()));
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.error.message.contains("secret"));
    }
}
