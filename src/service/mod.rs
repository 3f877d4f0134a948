//! How do clients reach it? The gRPC service `weitere.v1.RelatedStories` (proto/weitere/v1/related.proto),
//! next to the standard `grpc.health.v1.Health` service and server reflection, so generic tools such as
//! grpcurl and grpc_health_probe work without the proto file.
//!
//! Optionally, the same reads as JSON over HTTP (`serve --http-addr`, `http.rs`) and Prometheus metrics
//! (`serve --metrics-addr`, `metrics.rs`).
//!
//! This layer only translates: each handler checks the caller's token ([`Access`]) and the request's size
//! and deadline ([`Limits`]), converts the request into a core call ([`convert`]), runs it off the async
//! workers (searches on a pool of one thread per core, the rest on tokio's blocking pool), and maps the
//! result or error back ([`status`]). The reads are written once (`reads.rs`) for both protocols. No
//! ranking or storage logic here.

mod auth;
mod convert;
mod http;
mod http_status;
mod json;
mod limits;
mod metrics;
mod reads;
mod related;
mod search_pool;
mod status;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::util::MapResponseLayer;

pub use auth::{Access, Credentials};
pub use convert::article_from_wire;
pub use json::JsonCodec;
pub use limits::Limits;
pub use metrics::Metrics;
pub use reads::Reads;
pub use related::RelatedStoriesService;
pub use status::{ClientError, classify, code_name, to_status};

use crate::error::{Error, Result};
use crate::live::{LiveEvents, LiveIndex, WriteHealth};

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

/// Where the service listens: gRPC always; JSON over HTTP and the metrics when asked for.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC service, health checking and reflection.
    pub grpc: TcpIncoming,
    /// The JSON routes (`/v1/…`, `/healthz`); `None` serves no HTTP.
    pub http: Option<TcpListener>,
    /// Where `/metrics` is served.
    pub metrics: MetricsListener,
}

/// Where `/metrics` is served.
#[derive(Debug, Default)]
pub enum MetricsListener {
    /// Nowhere: no metrics are collected.
    #[default]
    Off,
    /// On a listener of its own.
    Own(TcpListener),
    /// On the HTTP listener, beside the JSON routes ([`Listeners::http`] must be set).
    WithHttp,
}

/// Serves `index` on every one of `listeners` until `shutdown` completes; requests in flight then finish
/// first, on every listener.
pub async fn serve(
    index: Arc<LiveIndex>,
    options: ServerOptions,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    options.access.validate()?;
    let Listeners {
        grpc: incoming,
        http: http_listener,
        metrics: metrics_listener,
    } = listeners;
    let (own_metrics_listener, metrics_on_http) = match metrics_listener {
        MetricsListener::Off => (None, false),
        MetricsListener::Own(listener) => (Some(listener), false),
        MetricsListener::WithHttp if http_listener.is_none() => {
            return Err(Error::invalid("metrics_addr", "shares the HTTP listener, but no HTTP address is set").into());
        }
        MetricsListener::WithHttp => (None, true),
    };
    let metrics = (own_metrics_listener.is_some() || metrics_on_http).then(|| {
        let metrics = Arc::new(Metrics::new());
        if !index.report_events_to(Arc::clone(&metrics) as Arc<dyn LiveEvents>) {
            tracing::warn!(
                "the index already reports to another server's metrics: commits and rebuilds are missing here"
            );
        }
        metrics
    });
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
    let (access, limits) = (Arc::new(access), Arc::new(limits));
    let reads = Arc::new(Reads::new(Arc::clone(&index), Arc::clone(&access), query_threads)?);
    let service = RelatedStoriesService::new(Arc::clone(&reads), access, Arc::clone(&limits));
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
    // Every listener stops when `shutdown` completes.
    let (stop, stopped) = watch::channel(false);
    let stop_all = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let grpc = server
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        // Outside the recoding below, so that the metrics count the code the client sees.
        .layer(tower::util::option_layer(metrics.clone().map(|metrics| {
            metrics::RecordLayer::new(metrics, metrics::Protocol::Grpc)
        })))
        .layer(MapResponseLayer::new(limits::size_error_as_resource_exhausted))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(related)
        // Without TCP_NODELAY, small responses wait for the client's delayed ACK: ~40 ms per call.
        .serve_with_incoming_shutdown(incoming.with_nodelay(Some(true)), stop_all);
    let grpc = async { grpc.await.map_err(Into::into) };
    let metrics_routes = metrics
        .clone()
        .map(|metrics| http::metrics_router(metrics, Arc::clone(&index)));
    let (metrics_beside_api, metrics_alone) = match (metrics_on_http, own_metrics_listener) {
        (true, _) => (metrics_routes, None),
        (false, listener) => (None, listener.zip(metrics_routes)),
    };
    let http_server = async {
        let Some(listener) = http_listener else {
            return Ok(());
        };
        let mut router = http::HttpApi::new(reads, limits).router(metrics.clone());
        if let Some(metrics_routes) = metrics_beside_api {
            router = router.merge(metrics_routes);
        }
        serve_http(listener, router, until_stopped(stopped.clone())).await
    };
    let metrics_server = async {
        match metrics_alone {
            Some((listener, routes)) => serve_http(listener, routes, until_stopped(stopped.clone())).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(grpc, http_server, metrics_server)?;
    Ok(())
}

/// Serves `router` as HTTP/1.1 on `listener` until `shutdown` completes.
async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use axum::serve::ListenerExt;
    // As for gRPC: without TCP_NODELAY, small responses wait for the client's delayed ACK.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY on an HTTP connection");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
