//! Who may call what? Bearer tokens from the `authorization` metadata: writes always need the write token
//! (without one configured, writes are refused — never open by accident); reads need the read token when
//! one is configured. Tokens are compared in constant time.

use tonic::{Request, Status};

/// The tokens the service accepts.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Token for `UpsertArticles` and `DeleteArticles`; `None` refuses every write.
    pub write_token: Option<String>,
    /// Token for reads; `None` leaves reads open.
    pub read_token: Option<String>,
}

impl Access {
    /// Lets a write through only with the configured write token.
    pub fn authorise_write<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match &self.write_token {
            None => Err(Status::unauthenticated(
                "writes are disabled: the server has no write token (serve --write-token)",
            )),
            Some(token) => check(request, token),
        }
    }

    /// Lets a read through when reads are open or it carries the read (or write) token.
    pub fn authorise_read<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(read_token) = &self.read_token else {
            return Ok(());
        };
        if self
            .write_token
            .as_deref()
            .is_some_and(|write| check(request, write).is_ok())
        {
            return Ok(());
        }
        check(request, read_token)
    }
}

fn check<T>(request: &Request<T>, token: &str) -> Result<(), Status> {
    let header = request
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("missing authorization metadata (Bearer token)"))?;
    let presented = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("authorization must be \"Bearer <token>\""))?;
    if constant_time_eq::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Status::unauthenticated("invalid token"))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

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
        assert_eq!(
            closed.authorise_write(&request(Some("Bearer x"))).unwrap_err().code(),
            Code::Unauthenticated
        );
        let open = Access {
            write_token: Some("s3cret".into()),
            read_token: None,
        };
        assert!(open.authorise_write(&request(Some("Bearer s3cret"))).is_ok());
        for wrong in [None, Some("Bearer nope"), Some("s3cret"), Some("Basic s3cret")] {
            assert_eq!(
                open.authorise_write(&request(wrong)).unwrap_err().code(),
                Code::Unauthenticated
            );
        }
        assert!(open.authorise_read(&request(None)).is_ok());
    }

    #[test]
    fn a_read_token_protects_reads_and_the_write_token_also_reads() {
        let access = Access {
            write_token: Some("w".into()),
            read_token: Some("r".into()),
        };
        assert!(access.authorise_read(&request(None)).is_err());
        assert!(access.authorise_read(&request(Some("Bearer r"))).is_ok());
        assert!(access.authorise_read(&request(Some("Bearer w"))).is_ok());
        assert!(access.authorise_write(&request(Some("Bearer r"))).is_err());
    }
}
