use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use weitere::service::proto::related_request::Source;
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{Draft, Filter, GetArticleRequest, RelatedRequest, StatsRequest};

use weitere::live::{LiveIndex, RebuildPolicy};
use weitere::service::{Access, Listeners, MetricsListener, ServerOptions};

use crate::common::{SAMPLE_ARTICLES, build_sample_engine};

/// A server on an ephemeral port over a live index in a temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The JSON-over-HTTP listener, when started with one.
    pub http_addr: Option<SocketAddr>,
    /// Where `/metrics` is served, when it is.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// Where a test server serves `/metrics`.
#[derive(Clone, Copy, Debug)]
pub enum TestMetrics {
    /// Nowhere.
    Off,
    /// On a listener of its own.
    OwnListener,
    /// On the HTTP listener.
    WithHttp,
}

/// The write token of [`TestServer::start`].
pub const WRITE_TOKEN: &str = "test-write-token";

impl TestServer {
    /// The sample, writable with [`WRITE_TOKEN`], reads open.
    pub async fn start() -> Self {
        Self::start_with(ServerOptions {
            access: Access {
                write_token: Some(WRITE_TOKEN.into()),
                read_token: None,
            },
            ..ServerOptions::default()
        })
        .await
    }

    pub async fn start_with(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(LiveIndex::open(dir.path(), build_sample_engine(), RebuildPolicy::default()).unwrap());
        let mut server = Self::serve(index, options).await;
        server._dir = Some(dir);
        server
    }

    /// A server over `index`, wherever it keeps its files.
    pub async fn serve(index: Arc<LiveIndex>, options: ServerOptions) -> Self {
        Self::serve_listening(index, options, false, TestMetrics::Off).await
    }

    /// The sample as [`TestServer::start_with`], also serving JSON over HTTP and the metrics as `metrics`
    /// says.
    pub async fn start_with_http(options: ServerOptions, metrics: TestMetrics) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(LiveIndex::open(dir.path(), build_sample_engine(), RebuildPolicy::default()).unwrap());
        let mut server = Self::serve_listening(index, options, true, metrics).await;
        server._dir = Some(dir);
        server
    }

    /// A server over `index` on ephemeral ports: gRPC, HTTP when `http`, metrics as `metrics` says.
    pub async fn serve_listening(
        index: Arc<LiveIndex>,
        options: ServerOptions,
        http: bool,
        metrics: TestMetrics,
    ) -> Self {
        let ephemeral = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let listener = ephemeral().await;
        let addr = listener.local_addr().unwrap();
        let http = if http { Some(ephemeral().await) } else { None };
        let http_addr = http.as_ref().map(|listener| listener.local_addr().unwrap());
        let (metrics, metrics_addr) = match metrics {
            TestMetrics::Off => (MetricsListener::Off, None),
            TestMetrics::OwnListener => {
                let listener = ephemeral().await;
                let addr = listener.local_addr().unwrap();
                (MetricsListener::Own(listener), Some(addr))
            }
            TestMetrics::WithHttp => (MetricsListener::WithHttp, http_addr),
        };
        let listeners = Listeners {
            grpc: listener.into(),
            http,
            metrics,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            weitere::service::serve(index, options, listeners, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            http_addr,
            metrics_addr,
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        }
    }

    /// `path` on the HTTP listener.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr.expect("started with HTTP"))
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> RelatedStoriesClient<Channel> {
        RelatedStoriesClient::new(self.channel().await)
    }

    pub async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap();
    }
}

pub fn by_id(id: &str, k: u32) -> RelatedRequest {
    RelatedRequest {
        source: Some(Source::ArticleId(id.into())),
        k,
        ..Default::default()
    }
}

/// Whether GetArticle finds `id`; any error other than NOT_FOUND fails the test.
pub async fn is_stored(client: &mut RelatedStoriesClient<Channel>, id: &str) -> bool {
    match client.get_article(GetArticleRequest { id: id.into() }).await {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("GetArticle failed: {status}"),
    }
}

const SOURCE_ID: &str = "gnad-test-00000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_over_a_real_connection() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.article_count, SAMPLE_ARTICLES as u64);
    assert_eq!(stats.snapshot_version, weitere::snapshot::FORMAT_VERSION);
    assert!(stats.vocabulary_size > 1_000);
    assert!(stats.built_at.is_some());

    let source = client
        .get_article(GetArticleRequest { id: SOURCE_ID.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(source.id, SOURCE_ID);
    assert_eq!(source.lang, "de");
    assert!(!source.body.is_empty());

    let stories = client.related(by_id(SOURCE_ID, 0)).await.unwrap().into_inner().stories;
    assert!(!stories.is_empty() && stories.len() <= weitere::recommend::DEFAULT_K);
    assert!(
        stories.iter().all(|story| story.id != SOURCE_ID),
        "the source recommended itself"
    );
    assert!(stories.windows(2).all(|pair| pair[0].score >= pair[1].score));
    assert!(
        stories
            .iter()
            .all(|story| !story.shared_terms.is_empty() && story.score > 0.0)
    );

    let draft = RelatedRequest {
        source: Some(Source::Draft(Draft {
            title: source.title.clone(),
            body: source.body.clone(),
            lang: "de".into(),
        })),
        k: 3,
        ..Default::default()
    };
    let from_draft = client.related(draft).await.unwrap().into_inner().stories;
    assert!(!from_draft.is_empty() && from_draft.len() <= 3);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_restrict_the_results() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let unfiltered = client.related(by_id(SOURCE_ID, 10)).await.unwrap().into_inner().stories;
    let excluded = unfiltered[0].id.clone();
    let section = unfiltered[1].section.clone();
    let request = RelatedRequest {
        filter: Some(Filter {
            sections: vec![section.clone()],
            exclude_ids: vec![excluded.clone()],
            ..Filter::default()
        }),
        ..by_id(SOURCE_ID, 10)
    };
    let stories = client.related(request).await.unwrap().into_inner().stories;
    assert!(!stories.is_empty());
    assert!(
        stories
            .iter()
            .all(|story| story.section == section && story.id != excluded)
    );
    let unknown_lang = RelatedRequest {
        filter: Some(Filter {
            lang: "fr".into(),
            ..Filter::default()
        }),
        ..by_id(SOURCE_ID, 10)
    };
    assert!(
        client
            .related(unknown_lang)
            .await
            .unwrap()
            .into_inner()
            .stories
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_right_code_and_name_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let status = client.related(by_id("no-such-id", 5)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("no-such-id"));

    let status = client
        .get_article(GetArticleRequest { id: "missing-7".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("missing-7"));

    let status = client.related(by_id(SOURCE_ID, 101)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("k:"), "{}", status.message());

    let empty_draft = RelatedRequest {
        source: Some(Source::Draft(Draft::default())),
        k: 5,
        ..Default::default()
    };
    let status = client.related(empty_draft).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("draft:"), "{}", status.message());

    let inverted = RelatedRequest {
        filter: Some(Filter {
            published_after: Some(prost_types::Timestamp {
                seconds: 2_000,
                nanos: 0,
            }),
            published_before: Some(prost_types::Timestamp {
                seconds: 1_000,
                nanos: 0,
            }),
            ..Filter::default()
        }),
        ..by_id(SOURCE_ID, 5)
    };
    let status = client.related(inverted).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("filter.published_after:"),
        "{}",
        status.message()
    );

    let no_source = RelatedRequest {
        source: None,
        k: 5,
        ..Default::default()
    };
    assert_eq!(
        client.related(no_source).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_controls_shape_the_block_and_are_validated() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let plain = client.related(by_id(SOURCE_ID, 10)).await.unwrap().into_inner().stories;
    let ids = |stories: &[weitere::service::proto::RelatedStory]| -> Vec<String> {
        stories.iter().map(|story| story.id.clone()).collect()
    };

    // Examples alone: the first positive is the source.
    let examples_only = RelatedRequest {
        source: None,
        positive_ids: vec![SOURCE_ID.into()],
        k: 10,
        ..Default::default()
    };
    let stories = client.related(examples_only).await.unwrap().into_inner().stories;
    assert_eq!(ids(&stories), ids(&plain));

    // A positive and a negative example: neither of them comes back, nor the source.
    let (liked, unliked) = (plain[1].id.clone(), plain[0].id.clone());
    let with_examples = RelatedRequest {
        positive_ids: vec![liked.clone()],
        negative_ids: vec![unliked.clone()],
        ..by_id(SOURCE_ID, 10)
    };
    let stories = client.related(with_examples).await.unwrap().into_inner().stories;
    assert!(!stories.is_empty());
    assert!(
        ids(&stories)
            .iter()
            .all(|id| *id != liked && *id != unliked && id != SOURCE_ID)
    );

    // Controls: a floor above every score leaves nothing; out-of-range values name their field.
    let strict = RelatedRequest {
        min_score: Some(1.0),
        time_scale_hours: Some(0.0),
        ..by_id(SOURCE_ID, 10)
    };
    let stories = client.related(strict).await.unwrap().into_inner().stories;
    assert!(stories.iter().all(|story| story.score >= 1.0 - 1e-6), "{stories:?}");
    for (request, field) in [
        (
            RelatedRequest {
                diversity: Some(2.0),
                ..by_id(SOURCE_ID, 10)
            },
            "diversity",
        ),
        (
            RelatedRequest {
                time_scale_hours: Some(-3.0),
                ..by_id(SOURCE_ID, 10)
            },
            "time_scale_hours",
        ),
        (
            RelatedRequest {
                negative_ids: vec![SOURCE_ID.into()],
                ..by_id(SOURCE_ID, 10)
            },
            "negative_ids",
        ),
    ] {
        let status = client.related(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "{}",
            status.message()
        );
    }
    let unknown = RelatedRequest {
        positive_ids: vec!["no-such-story".into()],
        ..by_id(SOURCE_ID, 10)
    };
    let status = client.related(unknown).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("no-such-story"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_generic_clients() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "weitere.v1.RelatedStories".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"weitere.v1.RelatedStories".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
    server.shutdown().await;
}
