//! How large and how long may a request be? Message size is enforced by tonic's codec (reported as
//! `RESOURCE_EXHAUSTED`, as the gRPC spec asks), batch size by the write handlers, and deadlines — the
//! client's `grpc-timeout`, capped by an optional server-wide limit — both by tonic, which answers at the
//! deadline, and by the handlers, which skip work whose deadline passed while it waited for a thread
//! ([`crate::error::check_deadline`]).

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Largest `Related` answer, in encoded bytes: 4 MiB, the default receive limit of gRPC clients.
pub const MAX_RELATED_RESPONSE_BYTES: usize = 4 << 20;

/// Request limits of the service.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest encoded request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Most articles in one `UpsertArticles` message, or ids in one `DeleteArticles`.
    pub max_batch: usize,
    /// Longest any request may run, also for clients that send no deadline; `None` leaves it to them.
    pub request_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_batch: 1_000,
            request_timeout: None,
        }
    }
}

impl Limits {
    /// Refuses a write batch of `len` items in `field` when it is larger than [`Limits::max_batch`].
    pub fn check_batch(&self, field: &str, len: usize) -> Result<(), Status> {
        if len > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "{field}: {len} items in one request, the limit is {} (split the batch)",
                self.max_batch
            )));
        }
        Ok(())
    }

    /// When a request received now must be answered: the earlier of the client's `grpc-timeout` and
    /// [`Limits::request_timeout`].
    pub fn deadline(&self, metadata: &MetadataMap) -> Option<Instant> {
        let client = metadata
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        self.deadline_within(client)
    }

    /// When a request received now must be answered: the earlier of `client`'s timeout (HTTP requests
    /// carry none) and [`Limits::request_timeout`].
    pub fn deadline_within(&self, client: Option<Duration>) -> Option<Instant> {
        let timeout = match (client, self.request_timeout) {
            (Some(client), Some(server)) => Some(client.min(server)),
            (client, server) => client.or(server),
        };
        timeout.map(|timeout| Instant::now() + timeout)
    }
}

/// Reports tonic's message-size errors (`OUT_OF_RANGE`, which the service itself never returns) as
/// `RESOURCE_EXHAUSTED`, the code the gRPC spec and other implementations use for them.
pub fn size_error_as_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|status| *status == code_value(Code::OutOfRange))
    {
        headers.insert("grpc-status", code_value(Code::ResourceExhausted));
    }
    response
}

fn code_value(code: Code) -> http::HeaderValue {
    http::HeaderValue::from(code as i32)
}

/// Parses a `grpc-timeout` value: up to eight digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3_600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_parse_as_the_spec_defines_them() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "10s", "1.5S", "-1S", "10"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_earlier_of_client_and_server_deadline_wins() {
        let mut metadata = MetadataMap::new();
        let limits = Limits {
            request_timeout: Some(Duration::from_secs(60)),
            ..Limits::default()
        };
        let server_only = limits.deadline(&metadata).unwrap();
        metadata.insert("grpc-timeout", "100m".parse().unwrap());
        let client = limits.deadline(&metadata).unwrap();
        assert!(client < server_only);
        assert!(client <= Instant::now() + Duration::from_millis(100));
        assert_eq!(Limits::default().deadline(&MetadataMap::new()), None);
    }

    #[test]
    fn batches_over_the_limit_name_the_field() {
        let limits = Limits {
            max_batch: 2,
            ..Limits::default()
        };
        assert!(limits.check_batch("articles", 2).is_ok());
        let refused = limits.check_batch("articles", 3).unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().starts_with("articles: 3 items"));
    }

    #[test]
    fn only_size_errors_are_recoded() {
        let response = |code: Code| {
            http::Response::builder()
                .header("grpc-status", code_value(code))
                .body(())
                .unwrap()
        };
        let recoded = size_error_as_resource_exhausted(response(Code::OutOfRange));
        assert_eq!(recoded.headers()["grpc-status"], code_value(Code::ResourceExhausted));
        let untouched = size_error_as_resource_exhausted(response(Code::NotFound));
        assert_eq!(untouched.headers()["grpc-status"], code_value(Code::NotFound));
    }
}
