use reqwest::StatusCode;
use tonic::Code;
use weitere::service::proto::{GetArticleRequest, StatsRequest};
use weitere::service::{Access, ServerOptions};

use crate::common::SAMPLE_ARTICLES;
use crate::grpc::{TestMetrics, TestServer, WRITE_TOKEN, by_id};
use crate::live::{union_story, upsert};

const SOURCE_ID: &str = "gnad-test-00000";

fn writable() -> ServerOptions {
    ServerOptions {
        access: Access {
            write_token: Some(WRITE_TOKEN.into()),
            read_token: None,
        },
        ..ServerOptions::default()
    }
}

/// The value of the sample of `name` whose labels include every one of `labels` (`key="value"`).
fn sample(scrape: &str, name: &str, labels: &[&str]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        (metric == name && labels.iter().all(|label| rest.contains(label))).then(|| value.parse().unwrap())
    })
}

/// Asserts the value of each unlabelled metric in `expected`.
fn assert_samples(scrape: &str, expected: &[(&str, f64)]) {
    for &(name, value) in expected {
        assert_eq!(sample(scrape, name, &[]), Some(value), "{name} in\n{scrape}");
    }
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_counts_real_calls_writes_and_the_index() {
    let server = TestServer::start_with_http(writable(), TestMetrics::OwnListener).await;
    let metrics_url = format!("http://{}/metrics", server.metrics_addr.unwrap());
    let before = scrape(&metrics_url).await;
    let sample_articles = SAMPLE_ARTICLES as f64;
    assert_samples(
        &before,
        &[
            ("weitere_articles_live", sample_articles),
            ("weitere_articles_fresh", 0.0),
            ("weitere_change_log_commit_duration_seconds_count", 0.0),
            ("weitere_rebuilds_started_total", 0.0),
        ],
    );
    assert!(sample(&before, "weitere_vocabulary_terms", &[]).unwrap() > 1_000.0);
    assert!(sample(&before, "weitere_snapshot_age_seconds", &[]).is_some());

    let mut client = server.client().await;
    for _ in 0..2 {
        client.related(by_id(SOURCE_ID, 3)).await.unwrap();
    }
    let missing = client
        .get_article(GetArticleRequest {
            id: "no-such-story".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    client.stats(StatsRequest {}).await.unwrap();
    client
        .upsert_articles(upsert(vec![union_story("metrics-1")]))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let answered = http
        .post(server.http_url("/v1/related"))
        .json(&serde_json::json!({"articleId": SOURCE_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let not_found = http.get(server.http_url("/v1/articles/nope")).send().await.unwrap();
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);

    let after = scrape(&metrics_url).await;
    let related = [r#"protocol="grpc""#, r#"method="weitere.v1.RelatedStories/Related""#];
    assert_eq!(
        sample(
            &after,
            "weitere_requests_total",
            &[related[0], related[1], r#"code="OK""#]
        ),
        Some(2.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "weitere_request_duration_seconds_count", &related),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &after,
            "weitere_requests_total",
            &[
                r#"method="weitere.v1.RelatedStories/GetArticle""#,
                r#"code="NOT_FOUND""#
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            "weitere_requests_total",
            &[r#"protocol="http""#, r#"method="POST /v1/related""#, r#"code="200""#]
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "weitere_requests_total",
            &[r#"method="GET /v1/articles/{id}""#, r#"code="404""#]
        ),
        Some(1.0),
        "the route, not the path, labels HTTP calls:\n{after}"
    );
    assert_samples(
        &after,
        &[
            ("weitere_articles_live", sample_articles + 1.0),
            ("weitere_articles_fresh", 1.0),
            ("weitere_articles_base", sample_articles),
            ("weitere_changes_since_snapshot", 1.0),
            ("weitere_change_log_commit_duration_seconds_count", 1.0),
            ("weitere_writes_available", 1.0),
        ],
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_share_the_http_listener() {
    let server = TestServer::start_with_http(writable(), TestMetrics::WithHttp).await;
    let health = reqwest::get(server.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let scraped = scrape(&server.http_url("/metrics")).await;
    assert_eq!(
        sample(
            &scraped,
            "weitere_requests_total",
            &[r#"method="GET /healthz""#, r#"code="200""#]
        ),
        Some(1.0),
        "{scraped}"
    );
    server.shutdown().await;
}
