use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{self, StatsRequest, UpsertArticlesRequest};
use weitere::service::{Access, Limits, ServerOptions};

use crate::common::sample_articles;
use crate::grpc::{TestServer, WRITE_TOKEN, by_id, is_stored};
use crate::live::{union_story, upsert, with_token};

fn writable(limits: Limits) -> ServerOptions {
    ServerOptions {
        access: Access {
            write_token: Some(WRITE_TOKEN.into()),
            read_token: None,
        },
        limits,
        ..ServerOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_batches_are_refused_with_clear_codes() {
    let server = TestServer::start_with(writable(Limits {
        max_message_bytes: 64 * 1024,
        max_batch: 3,
        request_timeout: None,
    }))
    .await;
    let mut client = server.client().await;

    let huge = proto::Article {
        body: "Gewerkschaft ".repeat(10_000),
        ..union_story("too-large")
    };
    let status = client.upsert_articles(upsert(vec![huge])).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("limit"), "{status}");

    let batch: Vec<_> = (0..4).map(|n| union_story(&format!("batch-{n}"))).collect();
    let status = client.upsert_articles(upsert(batch)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("articles: 4 items"), "{status}");
    assert!(
        !is_stored(&mut client, "batch-0").await,
        "a refused batch wrote something"
    );
    assert!(!is_stored(&mut client, "too-large").await);

    let ids = (0..4).map(|n| format!("gnad-test-{n:05}")).collect();
    let status = client
        .delete_articles(with_token(proto::DeleteArticlesRequest { ids }, WRITE_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        is_stored(&mut client, "gnad-test-00000").await,
        "a refused delete deleted"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_fails_the_call_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let mut late = upsert(vec![union_story("late")]);
    late.set_timeout(Duration::from_micros(1));
    let status = client.upsert_articles(late).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status}"
    );
    let mut late_read = tonic::Request::new(by_id("gnad-test-00000", 5));
    late_read.set_timeout(Duration::from_micros(1));
    let status = client.related(late_read).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status}"
    );

    let mut in_time = tonic::Request::new(by_id("gnad-test-00000", 5));
    in_time.set_timeout(Duration::from_secs(10));
    assert!(client.related(in_time).await.is_ok());
    // The late write's worker saw its deadline and did nothing; give it time to have run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !is_stored(&mut client, "late").await,
        "a write past its deadline was applied"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_imports_batch_by_batch() {
    let server = TestServer::start_with(writable(Limits {
        max_batch: 2,
        ..Limits::default()
    }))
    .await;
    let mut client = server.client().await;

    let batches: Vec<_> = (0..3)
        .map(|batch| UpsertArticlesRequest {
            articles: (0..2).map(|n| union_story(&format!("import-{batch}-{n}"))).collect(),
        })
        .collect();
    let results = client
        .upsert_articles_stream(with_token(tokio_stream::iter(batches), WRITE_TOKEN))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|result| result.accepted));
    for result in &results {
        assert!(is_stored(&mut client, &result.id).await);
    }

    // A batch over the limit ends the stream; the batch before it stays committed.
    let batches = [
        vec![union_story("kept")],
        (0..3).map(|n| union_story(&format!("over-{n}"))).collect(),
    ];
    let stream = tokio_stream::iter(batches).map(|articles| UpsertArticlesRequest { articles });
    let status = client
        .upsert_articles_stream(with_token(stream, WRITE_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(is_stored(&mut client, "kept").await);
    assert!(!is_stored(&mut client, "over-0").await);

    let status = client
        .upsert_articles_stream(tokio_stream::iter(Vec::<UpsertArticlesRequest>::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusted_clients_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();

    let server = TestServer::start_with(ServerOptions {
        tls: Some(weitere::service::tls_identity(&cert_path, &key_path).unwrap()),
        ..ServerOptions::default()
    })
    .await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RelatedStoriesClient::new(channel);
    assert!(client.stats(StatsRequest {}).await.is_ok());
    assert!(
        !client
            .related(by_id("gnad-test-00000", 5))
            .await
            .unwrap()
            .into_inner()
            .stories
            .is_empty()
    );

    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        assert!(RelatedStoriesClient::new(channel).stats(StatsRequest {}).await.is_err());
    }
    server.shutdown().await;

    let missing = weitere::service::tls_identity(&dir.path().join("absent.pem"), &key_path).unwrap_err();
    assert!(missing.to_string().contains("absent.pem"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_searches_beyond_the_search_threads_queue_and_all_answer() {
    let server = TestServer::start_with(ServerOptions {
        query_threads: 1,
        ..ServerOptions::default()
    })
    .await;
    let ids: Vec<&str> = sample_articles()
        .iter()
        .step_by(31)
        .map(|article| article.id.as_str())
        .collect();
    let mut client = server.client().await;
    let mut serial = Vec::new();
    for id in &ids {
        serial.push(client.related(by_id(id, 5)).await.unwrap().into_inner());
    }
    let calls: Vec<_> = ids
        .iter()
        .map(|id| {
            let (mut client, request) = (client.clone(), by_id(id, 5));
            tokio::spawn(async move { client.related(request).await })
        })
        .collect();
    for (call, expected) in calls.into_iter().zip(serial) {
        let answer = call.await.unwrap().unwrap().into_inner();
        assert!(!answer.stories.is_empty());
        assert_eq!(answer, expected, "a queued search answers as a serial one");
    }
    server.shutdown().await;
}
