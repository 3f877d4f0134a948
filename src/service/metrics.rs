//! What do operators see on their dashboards? Prometheus metrics, kept in one registry per server and
//! rendered in the text exposition format by the `prometheus` crate: per-call counts and latencies (one
//! tower layer, [`RecordLayer`], around the gRPC server and the HTTP routes, so no handler records
//! anything itself), the size of the live index, rebuilds and change-log commits (reported by the
//! [`LiveIndex`](crate::live::LiveIndex) through [`LiveEvents`]), and the snapshot's age. Sizes are read
//! from [`LiveStats`] when `/metrics` is scraped, so they cost nothing between scrapes.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::status::code_name;
use crate::live::{LiveEvents, LiveStats, WriteHealth};

/// Bucket bounds of the call latency histograms, in seconds: `Related` answers in about a millisecond on
/// small archives and a few at a million articles.
const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Bucket bounds of the change-log commit histogram, in seconds (one fsync each).
const COMMIT_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Bucket bounds of the rebuild histogram, in seconds: from a small archive to a million articles.
const REBUILD_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_200.0, 3_600.0,
];

/// Label value for calls to a path that no service serves, so that scanners cannot grow the label set.
const UNKNOWN_METHOD: &str = "other";

/// gRPC services whose methods get a label of their own.
const KNOWN_GRPC_SERVICES: &[&str] = &[
    "weitere.v1.RelatedStories/",
    "grpc.health.v1.Health/",
    "grpc.reflection.",
];

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    articles_live: IntGauge,
    articles_base: IntGauge,
    articles_fresh: IntGauge,
    vocabulary_terms: IntGauge,
    changes_since_snapshot: IntGauge,
    snapshot_age_seconds: IntGauge,
    writes_available: IntGauge,
    rebuilds_started: IntCounter,
    rebuilds_finished: IntCounter,
    rebuilds_failed: IntCounter,
    rebuild_seconds: HistogramVec,
    commit_seconds: Histogram,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "weitere_requests_total",
                "Calls answered, by protocol (grpc, http), method (gRPC service/method, or HTTP method and route) and code (gRPC status name, or HTTP status).",
            ),
            &["protocol", "method", "code"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "weitere_request_duration_seconds",
                "Time from a call's arrival to its response headers, by protocol and method.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["protocol", "method"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let metrics = Self {
            requests,
            request_seconds,
            articles_live: gauge("weitere_articles_live", "Articles that Related can return now."),
            articles_base: gauge(
                "weitere_articles_base",
                "Live articles of the snapshot (neither replaced nor deleted since it was built).",
            ),
            articles_fresh: gauge(
                "weitere_articles_fresh",
                "Articles upserted since the snapshot was built (the live delta).",
            ),
            vocabulary_terms: gauge(
                "weitere_vocabulary_terms",
                "Terms in the vocabulary, live terms included.",
            ),
            changes_since_snapshot: gauge(
                "weitere_changes_since_snapshot",
                "Live changes applied since the snapshot was built: what the next rebuild folds in.",
            ),
            snapshot_age_seconds: gauge(
                "weitere_snapshot_age_seconds",
                "Seconds since the serving snapshot was built.",
            ),
            writes_available: gauge(
                "weitere_writes_available",
                "1 while the change log takes commits, 0 while writes are refused.",
            ),
            rebuilds_started: counter("weitere_rebuilds_started_total", "Background rebuilds started."),
            rebuilds_finished: counter(
                "weitere_rebuilds_finished_total",
                "Background rebuilds that swapped a new index in.",
            ),
            rebuilds_failed: counter(
                "weitere_rebuilds_failed_total",
                "Background rebuilds that failed; the old index kept serving.",
            ),
            rebuild_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "weitere_rebuild_duration_seconds",
                    "Duration of background rebuilds, by outcome (finished, failed).",
                )
                .buckets(REBUILD_BUCKETS.to_vec()),
                &["outcome"],
            )
            .expect("valid metric"),
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "weitere_change_log_commit_duration_seconds",
                    "Duration of successful change-log commits (append and fsync; one per group of writes).",
                )
                .buckets(COMMIT_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 14] = [
            Box::new(self.requests.clone()),
            Box::new(self.request_seconds.clone()),
            Box::new(self.articles_live.clone()),
            Box::new(self.articles_base.clone()),
            Box::new(self.articles_fresh.clone()),
            Box::new(self.vocabulary_terms.clone()),
            Box::new(self.changes_since_snapshot.clone()),
            Box::new(self.snapshot_age_seconds.clone()),
            Box::new(self.writes_available.clone()),
            Box::new(self.rebuilds_started.clone()),
            Box::new(self.rebuilds_finished.clone()),
            Box::new(self.rebuilds_failed.clone()),
            Box::new(self.rebuild_seconds.clone()),
            Box::new(self.commit_seconds.clone()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("each metric is registered once");
        }
    }

    /// Every metric in the Prometheus text format, with the sizes taken from `stats` (read now).
    pub fn render(&self, stats: &LiveStats) -> String {
        let gauge = |gauge: &IntGauge, value: u64| gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        gauge(&self.articles_live, stats.index.article_count);
        gauge(&self.articles_base, stats.base_articles);
        gauge(&self.articles_fresh, stats.fresh_articles);
        gauge(&self.vocabulary_terms, stats.index.vocabulary_size);
        gauge(&self.changes_since_snapshot, stats.changes_since_snapshot);
        let now = chrono::Utc::now().timestamp();
        self.snapshot_age_seconds
            .set(now.saturating_sub(stats.index.built_at).max(0));
        self.writes_available
            .set(i64::from(matches!(stats.writes, WriteHealth::Available)));
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("the text encoder writes to memory");
        String::from_utf8(text).expect("the text format is UTF-8")
    }

    fn record_request(&self, protocol: Protocol, method: &str, code: &str, took: Duration) {
        let protocol = protocol.label();
        self.requests.with_label_values(&[protocol, method, code]).inc();
        self.request_seconds
            .with_label_values(&[protocol, method])
            .observe(took.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveEvents for Metrics {
    fn change_log_committed(&self, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
    }

    fn rebuild_started(&self) {
        self.rebuilds_started.inc();
    }

    fn rebuild_ended(&self, took: Duration, succeeded: bool) {
        let (counter, outcome) = if succeeded {
            (&self.rebuilds_finished, "finished")
        } else {
            (&self.rebuilds_failed, "failed")
        };
        counter.inc();
        self.rebuild_seconds
            .with_label_values(&[outcome])
            .observe(took.as_secs_f64());
    }
}

/// Which listener a call came through; decides how its method and code are labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC: method `package.Service/Method`, code the gRPC status name (`OK`, `NOT_FOUND`, …).
    Grpc,
    /// JSON over HTTP: method `VERB /route` (the route's pattern, not the path), code the HTTP status.
    Http,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }

    fn method<B>(self, request: &http::Request<B>) -> String {
        match self {
            Protocol::Grpc => {
                let path = request.uri().path().trim_start_matches('/');
                if KNOWN_GRPC_SERVICES.iter().any(|service| path.starts_with(service)) {
                    path.to_owned()
                } else {
                    UNKNOWN_METHOD.to_owned()
                }
            }
            Protocol::Http => match request.extensions().get::<axum::extract::MatchedPath>() {
                Some(route) => format!("{} {}", request.method(), route.as_str()),
                None => UNKNOWN_METHOD.to_owned(),
            },
        }
    }

    fn code<B>(self, response: &http::Response<B>) -> Cow<'static, str> {
        match self {
            // A failed unary call is answered with the status in the headers ("trailers only"); a
            // successful one carries `grpc-status: 0` in the trailers, after the message.
            Protocol::Grpc => {
                let code = match response.headers().get("grpc-status") {
                    None => tonic::Code::Ok,
                    Some(value) => value
                        .to_str()
                        .ok()
                        .and_then(|code| code.parse::<i32>().ok())
                        .map_or(tonic::Code::Unknown, tonic::Code::from),
                };
                Cow::Borrowed(code_name(code))
            }
            Protocol::Http => Cow::Owned(response.status().as_str().to_owned()),
        }
    }
}

/// A tower layer that counts and times every call of the service it wraps into [`Metrics`].
#[derive(Clone)]
pub struct RecordLayer {
    metrics: Arc<Metrics>,
    protocol: Protocol,
}

impl RecordLayer {
    /// Records calls of `protocol` into `metrics`.
    pub fn new(metrics: Arc<Metrics>, protocol: Protocol) -> Self {
        Self { metrics, protocol }
    }
}

impl<S> tower::Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Record {
            inner,
            metrics: Arc::clone(&self.metrics),
            protocol: self.protocol,
        }
    }
}

/// The service [`RecordLayer`] makes.
#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    metrics: Arc<Metrics>,
    protocol: Protocol,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for Record<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let (metrics, protocol) = (Arc::clone(&self.metrics), self.protocol);
        let method = protocol.method(&request);
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            metrics.record_request(protocol, &method, &protocol.code(&response), started.elapsed());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_get_their_canonical_names() {
        let response = |status: Option<&str>| {
            let mut builder = http::Response::builder();
            if let Some(status) = status {
                builder = builder.header("grpc-status", status);
            }
            builder.body(()).unwrap()
        };
        assert_eq!(Protocol::Grpc.code(&response(None)), "OK");
        assert_eq!(Protocol::Grpc.code(&response(Some("5"))), "NOT_FOUND");
        assert_eq!(Protocol::Grpc.code(&response(Some("3"))), "INVALID_ARGUMENT");
        assert_eq!(Protocol::Grpc.code(&response(Some("garbage"))), "UNKNOWN");
    }

    #[test]
    fn unknown_grpc_paths_share_one_label() {
        let request = |path: &str| http::Request::builder().uri(path).body(()).unwrap();
        assert_eq!(
            Protocol::Grpc.method(&request("/weitere.v1.RelatedStories/Related")),
            "weitere.v1.RelatedStories/Related"
        );
        assert_eq!(Protocol::Grpc.method(&request("/random.Scanner/Probe")), UNKNOWN_METHOD);
    }

    #[test]
    fn events_and_stats_appear_in_the_scrape() {
        let metrics = Metrics::new();
        metrics.change_log_committed(Duration::from_millis(3));
        metrics.rebuild_started();
        metrics.rebuild_ended(Duration::from_secs(2), false);
        let text = metrics.render(&LiveStats {
            index: crate::engine::Stats {
                article_count: 7,
                vocabulary_size: 40,
                snapshot_version: 1,
                built_at: 0,
            },
            writes: WriteHealth::Available,
            changes_since_snapshot: 2,
            rebuilds: crate::live::RebuildCounts::default(),
            log_commits: 1,
            base_articles: 5,
            fresh_articles: 2,
        });
        for line in [
            "weitere_articles_live 7",
            "weitere_articles_base 5",
            "weitere_articles_fresh 2",
            "weitere_vocabulary_terms 40",
            "weitere_change_log_commit_duration_seconds_count 1",
            "weitere_rebuilds_started_total 1",
            "weitere_rebuilds_failed_total 1",
            "weitere_rebuild_duration_seconds_count{outcome=\"failed\"} 1",
            "weitere_writes_available 1",
        ] {
            assert!(
                text.lines().any(|scraped| scraped == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
