//! How do clients reach it? The gRPC service `weitere.v1.RelatedStories` (proto/weitere/v1/related.proto),
//! next to the standard `grpc.health.v1.Health` service and server reflection, so generic tools such as
//! grpcurl and grpc_health_probe work without the proto file.
//!
//! This layer only translates: each handler checks the caller's token ([`Access`]) and the request's size
//! and deadline ([`Limits`]), converts the request into a core call ([`convert`]), runs it off the async
//! workers (searches on a pool of one thread per core, the rest on tokio's blocking pool), and maps the
//! result or error back ([`status`]). No ranking or storage logic here.

mod auth;
mod convert;
mod limits;
mod related;
mod search_pool;
mod status;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::util::MapResponseLayer;

pub use auth::Access;
pub use convert::article_from_wire;
pub use limits::Limits;
pub use related::RelatedStoriesService;
pub use status::to_status;

use crate::error::{Error, Result};
use crate::live::{LiveIndex, WriteHealth};

/// How the server runs, apart from the index it serves.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Who may read and write.
    pub access: Access,
    /// Message size, batch size and request time limits.
    pub limits: Limits,
    /// Certificate chain and private key to serve TLS with; `None` serves plain HTTP/2.
    pub tls: Option<Identity>,
    /// Threads of the pool that answers `Related` (0: one per core).
    pub query_threads: usize,
}

/// Reads a PEM certificate chain and private key for [`ServerOptions::tls`], and checks them as the TLS
/// stack will: at least one certificate, one private key, and a key that belongs to the first
/// certificate. A problem is an [`Error::InvalidArgument`] for `tls_cert` or `tls_key` that says what is
/// wrong, before the server starts.
pub fn tls_identity(cert: &Path, key: &Path) -> Result<Identity> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let read = |path: &Path| std::fs::read(path).map_err(|err| Error::io(path, err));
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let invalid =
        |field: &str, path: &Path, reason: String| Error::invalid(field, format!("{}: {reason}", path.display()));
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid("tls_cert", cert, format!("not a PEM certificate chain: {err}")))?;
    if chain.is_empty() {
        return Err(invalid("tls_cert", cert, "holds no PEM certificate".into()));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| invalid("tls_key", key, format!("holds no usable PEM private key: {err}")))?;
    // Checks that the key can sign and belongs to the first certificate, as the TLS server will.
    rustls::sign::CertifiedKey::from_der(chain, private_key, &rustls::crypto::ring::default_provider()).map_err(
        |err| {
            let reason = match err {
                rustls::Error::InconsistentKeys(_) => "does not belong to the certificate in",
                _ => "cannot be used with the certificate in",
            };
            invalid("tls_key", key, format!("{reason} {} ({err})", cert.display()))
        },
    )?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}

/// Code generated from `proto/weitere/v1/related.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("weitere.v1");

    /// Encoded file descriptors of the service, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("weitere_descriptor");
}

/// Health service name of the write path: NOT_SERVING while the change log cannot take commits. Reads
/// (`weitere.v1.RelatedStories`) stay SERVING meanwhile.
pub const WRITE_HEALTH_SERVICE: &str = "weitere.v1.RelatedStories.Writes";

/// Reports every later change of the index's write health as [`WRITE_HEALTH_SERVICE`], until the index
/// is dropped.
async fn report_write_health(mut health: watch::Receiver<WriteHealth>, reporter: HealthReporter) {
    while health.changed().await.is_ok() {
        let status = serving_status(&health.borrow_and_update());
        reporter.set_service_status(WRITE_HEALTH_SERVICE, status).await;
    }
}

fn serving_status(health: &WriteHealth) -> ServingStatus {
    match health {
        WriteHealth::Available => ServingStatus::Serving,
        WriteHealth::Unavailable(_) => ServingStatus::NotServing,
    }
}

/// Serves `index` on `incoming` until `shutdown` completes; requests in flight then finish first.
pub async fn serve(
    index: Arc<LiveIndex>,
    options: ServerOptions,
    incoming: TcpIncoming,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    options.access.validate()?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::related_stories_server::RelatedStoriesServer<RelatedStoriesService>>()
        .await;
    // The current state is registered before serving, so that a health check never misses the service.
    let write_health = index.watch_write_health();
    let current = serving_status(&write_health.borrow());
    health_reporter.set_service_status(WRITE_HEALTH_SERVICE, current).await;
    tokio::spawn(report_write_health(write_health, health_reporter.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let ServerOptions {
        access,
        limits,
        tls,
        query_threads,
    } = options;
    let (max_message_bytes, request_timeout) = (limits.max_message_bytes, limits.request_timeout);
    let service = RelatedStoriesService::new(index, access, limits, query_threads)?;
    let related = proto::related_stories_server::RelatedStoriesServer::new(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        server = server.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    if let Some(timeout) = request_timeout {
        server = server.timeout(timeout);
    }
    server
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .layer(MapResponseLayer::new(limits::size_error_as_resource_exhausted))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(related)
        // Without TCP_NODELAY, small responses wait for the client's delayed ACK: ~40 ms per call.
        .serve_with_incoming_shutdown(incoming.with_nodelay(Some(true)), shutdown)
        .await?;
    Ok(())
}
