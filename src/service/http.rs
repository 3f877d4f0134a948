//! JSON over HTTP, for CMSs without a gRPC client (WordPress, Drupal, home-grown PHP), and `/metrics` for
//! Prometheus. Each JSON route is the same adapter as its gRPC twin: authorise with the same tokens
//! (`Authorization: Bearer`), read the proto message from its JSON ([`JsonCodec`]), make the same core
//! call through [`Reads`], write the proto answer as JSON; errors become responses in one place
//! (`http_status.rs`).
//!
//! | route | gRPC twin |
//! |---|---|
//! | `POST /v1/related` (body: `RelatedRequest` as JSON) | `Related` |
//! | `GET /v1/articles/{id}` | `GetArticle` |
//! | `GET /v1/stats` | `Stats` |
//! | `GET /healthz` (no token) | `grpc.health.v1.Health` |
//! | `GET /metrics` (no token; on the metrics listener) | – |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use http::header::CONTENT_TYPE;

use super::auth::Credentials;
use super::http_status::HttpError;
use super::json::JsonCodec;
use super::limits::Limits;
use super::metrics::{Metrics, Protocol, RecordLayer};
use super::proto;
use super::reads::Reads;
use crate::live::{LiveIndex, WriteHealth};

/// Media type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the JSON routes share.
#[derive(Clone)]
pub struct HttpApi {
    reads: Arc<Reads>,
    limits: Arc<Limits>,
    json: Arc<JsonCodec>,
}

impl HttpApi {
    /// Routes that answer through `reads`, within `limits` (body size: `max_message_bytes`; deadline: the
    /// server-wide request timeout, as HTTP clients send no `grpc-timeout`).
    pub fn new(reads: Arc<Reads>, limits: Arc<Limits>) -> Self {
        Self {
            reads,
            limits,
            json: Arc::new(JsonCodec::new()),
        }
    }

    /// The JSON routes; with `metrics`, each call is counted and timed.
    pub fn router(self, metrics: Option<Arc<Metrics>>) -> Router {
        let body_limit = self.limits.max_message_bytes;
        let router = Router::new()
            .route("/v1/related", post(related))
            .route("/v1/articles/{id}", get(article))
            .route("/v1/stats", get(stats))
            .route("/healthz", get(health))
            .with_state(self)
            .layer(DefaultBodyLimit::max(body_limit));
        match metrics {
            // A route layer sees the matched route, so the method label is the route, not the path.
            Some(metrics) => router.route_layer(RecordLayer::new(metrics, Protocol::Http)),
            None => router,
        }
    }

    fn json_response<M: prost::Message + prost::Name>(&self, message: &M) -> Response {
        ([(CONTENT_TYPE, "application/json")], self.json.encode(message)).into_response()
    }
}

/// `/metrics` over `index`.
pub fn metrics_router(metrics: Arc<Metrics>, index: Arc<LiveIndex>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || async move { ([(CONTENT_TYPE, PROMETHEUS_TEXT)], metrics.render(&index.stats())) }),
    )
}

async fn related(
    State(api): State<HttpApi>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let admitted = api.reads.admit(Credentials::http(&headers))?;
    let request: proto::RelatedRequest = api.json.decode(&body?)?;
    let deadline = api.limits.deadline_within(None);
    let response = api.reads.related(admitted, request, deadline).await?;
    Ok(api.json_response(&response))
}

async fn article(
    State(api): State<HttpApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let admitted = api.reads.admit(Credentials::http(&headers))?;
    let deadline = api.limits.deadline_within(None);
    let article = api
        .reads
        .article(admitted, proto::GetArticleRequest { id }, deadline)
        .await?;
    Ok(api.json_response(&article))
}

async fn stats(State(api): State<HttpApi>, headers: HeaderMap) -> Result<Response, HttpError> {
    let admitted = api.reads.admit(Credentials::http(&headers))?;
    Ok(api.json_response(&api.reads.stats(admitted)))
}

/// Like the gRPC health service: reads are served while the process is up; writes as the change log says.
async fn health(State(api): State<HttpApi>) -> Response {
    let writes = match api.reads.index().write_health() {
        WriteHealth::Available => "SERVING",
        WriteHealth::Unavailable(_) => "NOT_SERVING",
    };
    axum::Json(serde_json::json!({ "status": "SERVING", "writes": writes })).into_response()
}
