//! The one place where engine errors become what a caller sees: a gRPC status code, the field at fault
//! and a message ([`classify`]). gRPC sends that as a [`Status`] ([`to_status`]); the HTTP routes send the
//! same code, field and message as JSON (`http_status.rs`).

use tonic::{Code, Status};

use crate::error::Error;

/// An engine error as callers see it, whatever the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientError {
    /// The gRPC status code (HTTP maps it to a status of its own).
    pub code: Code,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// What went wrong, for the caller; internal details stay in the log.
    pub message: String,
}

impl ClientError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }
}

/// Classifies an engine error for callers. Internal failures are logged in full and reported generically.
pub fn classify(error: Error) -> ClientError {
    match error {
        Error::UnknownArticle(_) => ClientError::new(Code::NotFound, error.to_string()),
        Error::InvalidArgument { field, reason } => ClientError {
            code: Code::InvalidArgument,
            message: format!("{field}: {reason}"),
            field: Some(field),
        },
        Error::Unauthenticated(reason) => ClientError::new(Code::Unauthenticated, reason),
        Error::DeadlineExceeded(_) => ClientError::new(Code::DeadlineExceeded, error.to_string()),
        Error::CorruptSnapshot { .. } => {
            tracing::error!(%error, "snapshot damaged");
            ClientError::new(Code::DataLoss, "the index data is damaged")
        }
        Error::CorruptChangeLog { .. } => {
            tracing::error!(%error, "change log damaged");
            ClientError::new(Code::DataLoss, "the change log is damaged")
        }
        Error::Store { .. } | Error::ChangeLogUnavailable { .. } => {
            tracing::error!(%error, "change log failed");
            ClientError::new(
                Code::Unavailable,
                "the change log is unavailable; the write was not applied",
            )
        }
        Error::MalformedInput { .. }
        | Error::EmptyCorpus(_)
        | Error::Io { .. }
        | Error::IncompatibleSnapshot { .. }
        | Error::Index(_) => {
            tracing::error!(%error, "internal error");
            ClientError::new(Code::Internal, "internal error")
        }
    }
}

/// Maps an engine error to the status a gRPC client sees.
pub fn to_status(error: Error) -> Status {
    let ClientError {
        code,
        field: _,
        message,
    } = classify(error);
    Status::new(code, message)
}

/// The canonical name of a gRPC status code, as in the gRPC spec and the proto3 JSON of `google.rpc.Code`:
/// `OK`, `INVALID_ARGUMENT`, `NOT_FOUND`, …
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_message_and_internal_ones_do_not_leak() {
        let status = to_status(Error::UnknownArticle("x-1".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("x-1"));
        let status = to_status(Error::invalid("k", "too large"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with("k:"));
        let status = to_status(Error::DeadlineExceeded(
            "before the request was processed; nothing was done",
        ));
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().contains("nothing was done"), "{}", status.message());
        let status = to_status(Error::Index("secret detail".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
        let status = to_status(Error::Unauthenticated("invalid token"));
        assert_eq!(status.code(), Code::Unauthenticated);
    }

    #[test]
    fn invalid_arguments_name_their_field() {
        let classified = classify(Error::invalid("filter.sections", "too many"));
        assert_eq!(classified.field.as_deref(), Some("filter.sections"));
        assert_eq!(code_name(classified.code), "INVALID_ARGUMENT");
        assert_eq!(classify(Error::UnknownArticle("x".into())).field, None);
    }
}
