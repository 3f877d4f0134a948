//! The one place where engine errors become gRPC status codes.

use tonic::{Code, Status};

use crate::error::Error;

/// Maps an engine error to the status a client sees. Internal failures are logged in full and reported
/// generically.
pub fn to_status(error: Error) -> Status {
    match error {
        Error::UnknownArticle(_) => Status::not_found(error.to_string()),
        Error::InvalidArgument { field, reason } => Status::invalid_argument(format!("{field}: {reason}")),
        Error::DeadlineExceeded(_) => Status::deadline_exceeded(error.to_string()),
        Error::CorruptSnapshot { .. } => {
            tracing::error!(%error, "snapshot damaged");
            Status::new(Code::DataLoss, "the index data is damaged")
        }
        Error::CorruptChangeLog { .. } => {
            tracing::error!(%error, "change log damaged");
            Status::new(Code::DataLoss, "the change log is damaged")
        }
        Error::Store { .. } | Error::ChangeLogUnavailable { .. } => {
            tracing::error!(%error, "change log failed");
            Status::unavailable("the change log is unavailable; the write was not applied")
        }
        Error::MalformedInput { .. }
        | Error::EmptyCorpus(_)
        | Error::Io { .. }
        | Error::IncompatibleSnapshot { .. }
        | Error::Index(_) => {
            tracing::error!(%error, "internal error");
            Status::internal("internal error")
        }
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
    }
}
