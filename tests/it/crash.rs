use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{self, GetArticleRequest, UpsertArticlesRequest};

use crate::common::build_sample_engine;
use crate::grpc::by_id;

const TOKEN: &str = "crash-test-token";
const CYCLES: usize = 4;

/// `weitere serve` as a child process on a free port.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    async fn start(model: &std::path::Path) -> (Self, RelatedStoriesClient<Channel>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_weitere"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--addr", &addr, "--write-token", TOKEN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, addr };
        let client = server.connect().await;
        (server, client)
    }

    async fn connect(&self) -> RelatedStoriesClient<Channel> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                return RelatedStoriesClient::new(channel);
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn story(id: &str) -> tonic::Request<UpsertArticlesRequest> {
    let article = proto::Article {
        id: id.into(),
        title: format!("Gewerkschaft GPA-djp startet All-in-Rechner {id}"),
        body: "Die Gewerkschaft fordert Transparenz bei All-in-Verträgen für Arbeitnehmer.".into(),
        section: "Wirtschaft".into(),
        lang: "de".into(),
        ..proto::Article::default()
    };
    let mut request = tonic::Request::new(UpsertArticlesRequest {
        articles: vec![article],
    });
    let value: MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    build_sample_engine().save(dir.path()).unwrap();
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..CYCLES {
        let (server, mut client) = Server::start(dir.path()).await;
        for id in &acked {
            let article = client.get_article(GetArticleRequest { id: id.clone() }).await;
            assert!(article.is_ok(), "cycle {cycle}: acked {id} lost");
        }
        let stories = client
            .related(by_id(acked.last().map_or("gnad-test-00000", String::as_str), 5))
            .await;
        assert!(
            !stories.unwrap().into_inner().stories.is_empty(),
            "cycle {cycle}: not searchable"
        );

        // Stream upserts from a second task and kill the server while they are in flight.
        let streaming = tokio::spawn(async move {
            let mut acked_now = Vec::new();
            for n in 0.. {
                let id = format!("crash-{cycle}-{n}");
                match client.upsert_articles(story(&id)).await {
                    Ok(response) if response.get_ref().results[0].accepted => acked_now.push(id),
                    Ok(response) => panic!("rejected: {:?}", response.get_ref().results),
                    Err(_) => break,
                }
            }
            acked_now
        });
        tokio::time::sleep(Duration::from_millis(300 + 150 * cycle as u64)).await;
        server.kill_hard();
        let acked_now = streaming.await.unwrap();
        assert!(
            !acked_now.is_empty(),
            "cycle {cycle}: no write was acknowledged before the kill"
        );
        acked.extend(acked_now);
    }
    let (server, mut client) = Server::start(dir.path()).await;
    for id in &acked {
        assert!(
            client.get_article(GetArticleRequest { id: id.clone() }).await.is_ok(),
            "acked {id} lost"
        );
    }
    server.kill_hard();
    eprintln!("{CYCLES} kill -9 cycles, {} acknowledged upserts, 0 lost", acked.len());
}
