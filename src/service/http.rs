//! JSON over HTTP, for CMSs without a gRPC client (WordPress, Drupal, home-grown PHP), the editor preview
//! page (`preview/`: plain HTML, CSS and JavaScript compiled into the binary, calling `POST /v1/related`
//! with `explain`), and `/metrics` for Prometheus. Each JSON route is the same adapter as its gRPC twin: authorise with the same tokens
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
//! | `GET /` (no token; the page asks for one if reads need it) | – (the editor preview page) |
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

/// The editor preview page and its style sheet and script, compiled in: no build step, nothing fetched
/// from elsewhere, so it works offline.
const PREVIEW_PAGE: &str = include_str!("preview/index.html");
const PREVIEW_CSS: &str = include_str!("preview/preview.css");
const PREVIEW_JS: &str = include_str!("preview/preview.js");

/// The page may load only its own script and style sheet and talk only to this server.
const PREVIEW_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

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
            .route("/", get(|| preview_file(PREVIEW_PAGE, "text/html; charset=utf-8")))
            .route(
                "/preview.css",
                get(|| preview_file(PREVIEW_CSS, "text/css; charset=utf-8")),
            )
            .route(
                "/preview.js",
                get(|| preview_file(PREVIEW_JS, "text/javascript; charset=utf-8")),
            )
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

async fn preview_file(content: &'static str, media_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, media_type),
            (http::header::CONTENT_SECURITY_POLICY, PREVIEW_POLICY),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        content,
    )
        .into_response()
}

/// Like the gRPC health service: reads are served while the process is up; writes as the change log says.
async fn health(State(api): State<HttpApi>) -> Response {
    let writes = match api.reads.index().write_health() {
        WriteHealth::Available => "SERVING",
        WriteHealth::Unavailable(_) => "NOT_SERVING",
    };
    axum::Json(serde_json::json!({ "status": "SERVING", "writes": writes })).into_response()
}
