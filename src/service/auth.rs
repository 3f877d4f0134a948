//! Who may call what? Bearer tokens from the `authorization` metadata (gRPC) or header (HTTP), checked by
//! the same code for both ([`Credentials`]): writes always need the write token
//! (without one configured, writes are refused — never open by accident); reads need the read token when
//! one is configured. An empty or blank token is a configuration error ([`Access::validate`]), never a
//! token that an empty header matches. The scheme is matched case-insensitively (RFC 9110 §11.1), a request
//! with more than one `authorization` value is refused, and tokens are compared in constant time.

use tonic::Request;

use crate::error::{Error, Result};

/// The tokens the service accepts.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Token for `UpsertArticles` and `DeleteArticles`; `None` refuses every write.
    pub write_token: Option<String>,
    /// Token for reads; `None` leaves reads open.
    pub read_token: Option<String>,
}

/// The `authorization` values of one call, whichever protocol it came by: gRPC metadata or HTTP headers.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    /// The first value, if any.
    first: Option<&'a [u8]>,
    /// Whether a second value follows it (refused: exactly one is allowed).
    more: bool,
}

impl<'a> Credentials<'a> {
    /// The `authorization` metadata of a gRPC call.
    pub fn grpc<T>(request: &'a Request<T>) -> Self {
        Self::from_values(
            request
                .metadata()
                .get_all("authorization")
                .iter()
                .map(|value| value.as_encoded_bytes()),
        )
    }

    /// The `Authorization` headers of an HTTP request.
    pub fn http(headers: &'a http::HeaderMap) -> Self {
        Self::from_values(
            headers
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }

    fn from_values(mut values: impl Iterator<Item = &'a [u8]>) -> Self {
        let first = values.next();
        Self {
            first,
            more: values.next().is_some(),
        }
    }
}

impl Access {
    /// Refuses a configured token that is empty or only white space: such a token would let in any request
    /// with an empty `authorization: Bearer ` header. The error names the field (`write_token` or
    /// `read_token`).
    pub fn validate(&self) -> Result<()> {
        for (field, token) in [("write_token", &self.write_token), ("read_token", &self.read_token)] {
            if token.as_deref().is_some_and(|token| token.trim().is_empty()) {
                return Err(Error::invalid(
                    field,
                    "is empty or white space, which would let anyone in; set a long random token or leave it unset",
                ));
            }
        }
        Ok(())
    }

    /// Lets a write through only with the configured write token.
    pub fn authorise_write(&self, credentials: Credentials<'_>) -> Result<()> {
        match &self.write_token {
            None => Err(Error::Unauthenticated(
                "writes are disabled: the server has no write token (serve --write-token)",
            )),
            Some(token) => check(credentials, token),
        }
    }

    /// Lets a read through when reads are open or it carries the read (or write) token.
    pub fn authorise_read(&self, credentials: Credentials<'_>) -> Result<()> {
        let Some(read_token) = &self.read_token else {
            return Ok(());
        };
        if self
            .write_token
            .as_deref()
            .is_some_and(|write| check(credentials, write).is_ok())
        {
            return Ok(());
        }
        check(credentials, read_token)
    }
}

fn check(credentials: Credentials<'_>, token: &str) -> Result<()> {
    let header = credentials
        .first
        .ok_or(Error::Unauthenticated("missing authorization metadata (Bearer token)"))?;
    if credentials.more {
        return Err(Error::Unauthenticated(
            "more than one authorization value; send exactly one",
        ));
    }
    let presented = std::str::from_utf8(header)
        .ok()
        .and_then(bearer_token)
        .ok_or(Error::Unauthenticated("authorization must be \"Bearer <token>\""))?;
    if token.is_empty() {
        return Err(Error::Unauthenticated("invalid token"));
    }
    if constant_time_eq::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Unauthenticated("invalid token"))
    }
}

/// The token of a `Bearer <token>` credential; the scheme is case-insensitive, as in every HTTP
/// authentication scheme.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(outcome: Result<()>) -> bool {
        matches!(outcome, Err(Error::Unauthenticated(_)))
    }

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request.metadata_mut().insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn writes_need_a_configured_token() {
        let closed = Access::default();
        assert!(refused(
            closed.authorise_write(Credentials::grpc(&request(Some("Bearer x"))))
        ));
        let open = Access {
            write_token: Some("s3cret".into()),
            read_token: None,
        };
        assert!(
            open.authorise_write(Credentials::grpc(&request(Some("Bearer s3cret"))))
                .is_ok()
        );
        for wrong in [None, Some("Bearer nope"), Some("s3cret"), Some("Basic s3cret")] {
            assert!(refused(open.authorise_write(Credentials::grpc(&request(wrong)))));
        }
        assert!(open.authorise_read(Credentials::grpc(&request(None))).is_ok());
    }

    #[test]
    fn http_headers_are_checked_like_grpc_metadata() {
        let access = Access {
            write_token: Some("w".into()),
            read_token: Some("r".into()),
        };
        let mut headers = http::HeaderMap::new();
        assert!(refused(access.authorise_read(Credentials::http(&headers))));
        headers.insert(http::header::AUTHORIZATION, "Bearer r".parse().unwrap());
        assert!(access.authorise_read(Credentials::http(&headers)).is_ok());
        headers.append(http::header::AUTHORIZATION, "Bearer r".parse().unwrap());
        assert!(refused(access.authorise_read(Credentials::http(&headers))));
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let access = Access {
            write_token: Some("s3cret".into()),
            read_token: None,
        };
        for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
            let value = format!("{scheme} s3cret");
            assert!(
                access
                    .authorise_write(Credentials::grpc(&request(Some(&value))))
                    .is_ok(),
                "{value}"
            );
        }
    }

    #[test]
    fn a_second_authorization_value_is_refused() {
        let access = Access {
            write_token: Some("s3cret".into()),
            read_token: None,
        };
        let mut twice = request(Some("Bearer s3cret"));
        twice
            .metadata_mut()
            .append("authorization", "Bearer s3cret".parse().unwrap());
        let refusal = access.authorise_write(Credentials::grpc(&twice)).unwrap_err();
        assert!(refusal.to_string().contains("more than one"), "{refusal}");
    }

    #[test]
    fn empty_and_blank_tokens_are_configuration_errors() {
        for blank in ["", " ", "\t \n"] {
            let access = Access {
                write_token: Some(blank.into()),
                read_token: None,
            };
            assert!(
                matches!(access.validate(), Err(Error::InvalidArgument { ref field, .. }) if field == "write_token"),
                "{blank:?}"
            );
            let access = Access {
                write_token: None,
                read_token: Some(blank.into()),
            };
            assert!(
                matches!(access.validate(), Err(Error::InvalidArgument { ref field, .. }) if field == "read_token"),
                "{blank:?}"
            );
        }
        assert!(Access::default().validate().is_ok());
        // Even unvalidated, an empty configured token matches nothing.
        let unvalidated = Access {
            write_token: Some(String::new()),
            read_token: None,
        };
        assert!(
            unvalidated
                .authorise_write(Credentials::grpc(&request(Some("Bearer "))))
                .is_err()
        );
    }

    #[test]
    fn a_read_token_protects_reads_and_the_write_token_also_reads() {
        let access = Access {
            write_token: Some("w".into()),
            read_token: Some("r".into()),
        };
        assert!(access.authorise_read(Credentials::grpc(&request(None))).is_err());
        assert!(
            access
                .authorise_read(Credentials::grpc(&request(Some("Bearer r"))))
                .is_ok()
        );
        assert!(
            access
                .authorise_read(Credentials::grpc(&request(Some("Bearer w"))))
                .is_ok()
        );
        assert!(
            access
                .authorise_write(Credentials::grpc(&request(Some("Bearer r"))))
                .is_err()
        );
    }
}
