use reqwest::StatusCode;
use serde_json::{Value, json};
use weitere::service::{Access, ServerOptions};

use crate::common::SAMPLE_ARTICLES;
use crate::grpc::{TestMetrics, TestServer, WRITE_TOKEN, by_id};

const READ_TOKEN: &str = "test-read-token";
const SOURCE_ID: &str = "gnad-test-00000";

/// A server whose reads need [`READ_TOKEN`], with the JSON routes on.
async fn start() -> TestServer {
    TestServer::start_with_http(
        ServerOptions {
            access: Access {
                write_token: Some(WRITE_TOKEN.into()),
                read_token: Some(READ_TOKEN.into()),
            },
            ..ServerOptions::default()
        },
        TestMetrics::Off,
    )
    .await
}

/// Sends `request` with the read token; returns the status and the JSON body.
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.bearer_auth(READ_TOKEN).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn related_over_http_answers_as_grpc_does() {
    let server = start().await;
    let http = reqwest::Client::new();
    let url = server.http_url("/v1/related");
    let (status, body) = send(http.post(&url).json(&json!({"articleId": SOURCE_ID, "k": 3}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stories = body["stories"].as_array().unwrap();
    assert!(!stories.is_empty() && stories.len() <= 3, "{body}");
    assert!(stories.iter().all(|story| story["id"] != SOURCE_ID));
    assert!(
        stories
            .iter()
            .all(|story| !story["sharedTerms"].as_array().unwrap().is_empty())
    );

    // The same ids, in the same order, as the gRPC call: one core call behind both.
    let mut grpc = server.client().await;
    let mut request = tonic::Request::new(by_id(SOURCE_ID, 3));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {READ_TOKEN}").parse().unwrap());
    let grpc_ids: Vec<String> = grpc
        .related(request)
        .await
        .unwrap()
        .into_inner()
        .stories
        .into_iter()
        .map(|story| story.id)
        .collect();
    let http_ids: Vec<&str> = stories.iter().map(|story| story["id"].as_str().unwrap()).collect();
    assert_eq!(http_ids, grpc_ids);

    // The proto field names are accepted too, and a draft with a section filter works.
    let (status, body) = send(http.post(&url).json(&json!({
        "draft": {"title": "Nato: Russland unterstützt Nordkoreas Atomprogramm", "lang": "de"},
        "k": 5,
        "filter": {"sections": ["International"], "exclude_ids": [SOURCE_ID]},
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stories = body["stories"].as_array().unwrap();
    assert!(!stories.is_empty(), "{body}");
    assert!(
        stories.iter().all(|story| story["section"] == "International"),
        "{body}"
    );

    // The per-request controls and examples are JSON fields as well.
    let (status, body) = send(http.post(&url).json(&json!({
        "positiveIds": [SOURCE_ID],
        "k": 5,
        "diversity": 0.3,
        "minScore": 0.05,
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["stories"].as_array().unwrap().is_empty(), "{body}");
    let (status, body) = send(http.post(&url).json(&json!({"articleId": SOURCE_ID, "diversity": 1.5}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("diversity"), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_naming_the_field_and_tokens_are_checked() {
    let server = start().await;
    let http = reqwest::Client::new();
    let url = server.http_url("/v1/related");

    let refused = http
        .post(&url)
        .json(&json!({"articleId": SOURCE_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");
    let wrong = http
        .get(server.http_url("/v1/stats"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The write token also reads, as over gRPC.
    let writer = http
        .get(server.http_url("/v1/stats"))
        .bearer_auth(WRITE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(writer.status(), StatusCode::OK);

    let (status, body) = send(http.post(&url).json(&json!({"articleId": SOURCE_ID, "k": 101}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["field"], "k");
    assert!(body["error"]["message"].as_str().unwrap().contains("100"), "{body}");

    let (status, body) = send(http.post(&url).json(&json!({"draft": {"title": " ", "body": ""}}))).await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("draft"))
    );

    for malformed in [r#"{"articleId": 5}"#, r#"{"articleIdd": "x"}"#, "not json"] {
        let (status, body) = send(
            http.post(&url)
                .header("content-type", "application/json")
                .body(malformed),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {body}");
        assert_eq!(body["error"]["field"], "body", "{malformed}: {body}");
    }

    let (status, body) = send(http.get(server.http_url("/v1/articles/no-such-story"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_stats_and_health_over_http() {
    let server = start().await;
    let http = reqwest::Client::new();

    let (status, article) = send(http.get(server.http_url(&format!("/v1/articles/{SOURCE_ID}")))).await;
    assert_eq!(status, StatusCode::OK, "{article}");
    assert_eq!(article["id"], SOURCE_ID);
    assert_eq!(article["lang"], "de");
    assert!(!article["body"].as_str().unwrap().is_empty());

    let (status, stats) = send(http.get(server.http_url("/v1/stats"))).await;
    assert_eq!(status, StatusCode::OK);
    // proto3 JSON writes 64-bit integers as strings.
    assert_eq!(stats["articleCount"], SAMPLE_ARTICLES.to_string());
    assert_eq!(stats["writesAvailable"], true);

    // Health needs no token.
    let health = http.get(server.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health, json!({"status": "SERVING", "writes": "SERVING"}));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explained_preview_keeps_the_block_and_says_why_the_others_are_out() {
    let server = start().await;
    let http = reqwest::Client::new();
    let (_, source) = send(http.get(server.http_url(&format!("/v1/articles/{SOURCE_ID}")))).await;
    // The stored article pasted as a draft, as an editor previewing an update would: the stored version
    // is a near-copy of the draft. With the filter, the source's own section (Wirtschaft) is kept out.
    let request = |explain: bool, sections: &[&str]| {
        json!({
            "draft": {"title": source["title"], "body": source["body"], "lang": "de"},
            "k": 3,
            "filter": {"sections": sections},
            "explain": explain,
        })
    };
    let url = server.http_url("/v1/related");
    let (_, unfiltered) = send(http.post(&url).json(&request(true, &[]))).await;
    let near_copies: Vec<&Value> = unfiltered["leftOut"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|left| left["reason"] == "NEAR_COPY_OF_SOURCE")
        .collect();
    assert_eq!(near_copies.len(), 1, "{unfiltered}");
    assert_eq!(near_copies[0]["story"]["id"], SOURCE_ID);

    let other_sections = ["Inland", "International", "Etat"];
    let (status, plain) = send(http.post(&url).json(&request(false, &other_sections))).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["leftOut"], json!([]), "nothing is explained unless asked");
    let (status, explained) = send(http.post(&url).json(&request(true, &other_sections))).await;
    assert_eq!(status, StatusCode::OK, "{explained}");
    assert_eq!(
        explained["stories"], plain["stories"],
        "explaining changes nothing in the block"
    );

    let left_out = explained["leftOut"].as_array().unwrap();
    assert!(!left_out.is_empty() && left_out.len() <= weitere::engine::LEFT_OUT_LIMIT);
    assert!(
        left_out
            .iter()
            .any(|left| left["reason"] == "FILTERED_BY_SECTION" && left["story"]["section"] == "Wirtschaft"),
        "{explained}"
    );
    let similarities: Vec<f64> = left_out
        .iter()
        .map(|left| left["story"]["score"].as_f64().unwrap())
        .collect();
    assert!(
        similarities.windows(2).all(|pair| pair[0] >= pair[1]),
        "most similar first"
    );
    let stories = explained["stories"].as_array().unwrap();
    assert!(
        left_out
            .iter()
            .all(|left| stories.iter().all(|story| story["id"] != left["story"]["id"])),
        "a story is either in the block or left out"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_page_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let server = start().await;
    let page = reqwest::get(server.http_url("/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    for needed in [
        r#"<form id="preview""#,
        r#"<label for="body">"#,
        r#"src="/preview.js""#,
        r#"href="/preview.css""#,
    ] {
        assert!(html.contains(needed), "{needed} missing");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page must work offline"
    );
    for (path, media_type) in [("/preview.js", "text/javascript"), ("/preview.css", "text/css")] {
        let asset = reqwest::get(server.http_url(path)).await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media_type)
        );
        assert!(
            !asset.text().await.unwrap().contains("https://"),
            "{path} loads from elsewhere"
        );
    }
    server.shutdown().await;
}
