//! How do clients reach it? The gRPC service `weitere.v1.RelatedStories` (proto/weitere/v1/related.proto),
//! next to the standard `grpc.health.v1.Health` service and server reflection, so generic tools such as
//! grpcurl and grpc_health_probe work without the proto file.
//!
//! This layer only translates: each handler converts the request into a core query ([`convert`]), runs
//! the engine on the blocking pool, and maps the result or error back ([`status`]). No ranking logic here.

mod convert;
mod related;
mod status;

use std::future::Future;
use std::sync::Arc;

use tonic::transport::server::TcpIncoming;

pub use related::RelatedStoriesService;
pub use status::to_status;

use crate::engine::Engine;

/// Code generated from `proto/weitere/v1/related.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("weitere.v1");

    /// Encoded file descriptors of the service, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("weitere_descriptor");
}

/// Serves `engine` on `incoming` until `shutdown` completes; requests in flight then finish first.
pub async fn serve(
    engine: Arc<Engine>,
    incoming: TcpIncoming,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::related_stories_server::RelatedStoriesServer<RelatedStoriesService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let related = proto::related_stories_server::RelatedStoriesServer::new(RelatedStoriesService::new(engine));
    tonic::transport::Server::builder()
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(related)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
