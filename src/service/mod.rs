//! How do clients reach it? The gRPC service `weitere.v1.RelatedStories` (proto/weitere/v1/related.proto),
//! next to the standard `grpc.health.v1.Health` service and server reflection, so generic tools such as
//! grpcurl and grpc_health_probe work without the proto file.
//!
//! This layer only translates: each handler checks the caller's token ([`Access`]), converts the request
//! into a core call ([`convert`]), runs it on the blocking pool, and maps the result or error back
//! ([`status`]). No ranking or storage logic here.

mod auth;
mod convert;
mod related;
mod status;

use std::future::Future;
use std::sync::Arc;

use tonic::transport::server::TcpIncoming;

pub use auth::Access;
pub use convert::article_from_wire;
pub use related::RelatedStoriesService;
pub use status::to_status;

use crate::live::LiveIndex;

/// Code generated from `proto/weitere/v1/related.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("weitere.v1");

    /// Encoded file descriptors of the service, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("weitere_descriptor");
}

/// Serves `index` on `incoming` until `shutdown` completes; requests in flight then finish first.
pub async fn serve(
    index: Arc<LiveIndex>,
    access: Access,
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
    let related = proto::related_stories_server::RelatedStoriesServer::new(RelatedStoriesService::new(index, access));
    tonic::transport::Server::builder()
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(related)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
