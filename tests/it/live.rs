use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::ProgressBar;
use tonic::Code;
use tonic::metadata::MetadataValue;
use weitere::article::Article;
use weitere::engine::{BuildConfig, Engine};
use weitere::error::Error;
use weitere::live::{LiveIndex, RebuildPolicy};
use weitere::recommend::{Draft, RelatedQuery, Source};
use weitere::service::proto::{self, DeleteArticlesRequest, GetArticleRequest, StatsRequest, UpsertArticlesRequest};
use weitere::service::{Access, ServerOptions};

use crate::common::{SAMPLE_ARTICLES, build_sample_engine, ids, query};
use crate::grpc::{TestServer, WRITE_TOKEN, by_id, is_stored};

/// A new article about the same topic as sample article `gnad-test-00000` (a union's "All-in" calculator).
pub fn union_story(id: &str) -> proto::Article {
    proto::Article {
        id: id.into(),
        title: "Gewerkschaft GPA-djp kritisiert All-in-Verträge".into(),
        body: "Die Gewerkschaft GPA-djp fordert mehr Transparenz bei All-in-Verträgen. Arbeitnehmer sollen mit \
               dem All-in-Rechner prüfen, ob das Grundgehalt stimmt, sagt Gewerkschaftschef Wolfgang Katzian."
            .into(),
        url: format!("https://example.org/{id}"),
        section: "Wirtschaft".into(),
        lang: "de".into(),
        published_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
    }
}

pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

pub fn upsert(articles: Vec<proto::Article>) -> tonic::Request<UpsertArticlesRequest> {
    with_token(UpsertArticlesRequest { articles }, WRITE_TOKEN)
}

fn delete(ids: &[&str]) -> tonic::Request<DeleteArticlesRequest> {
    let ids = ids.iter().map(|id| id.to_string()).collect();
    with_token(DeleteArticlesRequest { ids }, WRITE_TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_update_and_delete_are_visible_at_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let results = client
        .upsert_articles(upsert(vec![union_story("live-1"), proto::Article::default()]))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 2);
    assert!(results[0].accepted && results[0].id == "live-1");
    assert!(
        !results[1].accepted && results[1].error.contains("empty id"),
        "{:?}",
        results[1]
    );

    let related = client
        .related(by_id("gnad-test-00000", 5))
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert_eq!(related[0].id, "live-1", "the new story is the closest match");
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.article_count, SAMPLE_ARTICLES as u64 + 1);

    let mut updated = union_story("live-1");
    updated.title = "Rapid gewinnt das Wiener Derby".into();
    updated.body =
        "Rapid Wien hat das Derby gegen die Austria mit 3:1 gewonnen, drei Tore in der zweiten Hälfte.".into();
    updated.section = "Sport".into();
    let updated_body = updated.body.clone();
    client.upsert_articles(upsert(vec![updated])).await.unwrap();
    let article = client
        .get_article(GetArticleRequest { id: "live-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(article.section, "Sport");
    assert_eq!(
        article.body, updated_body,
        "a fresh body is read back from the delta's scratch file"
    );
    let related = client
        .related(by_id("gnad-test-00000", 10))
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert!(
        related.iter().all(|story| story.id != "live-1"),
        "the old text no longer matches"
    );

    let results = client
        .delete_articles(delete(&["live-1", "gnad-test-00372", "no-such-id"]))
        .await
        .unwrap()
        .into_inner()
        .results;
    let accepted: Vec<bool> = results.iter().map(|result| result.accepted).collect();
    assert_eq!(accepted, [true, true, false]);
    assert!(results[2].error.contains("unknown"));
    for id in ["live-1", "gnad-test-00372"] {
        assert!(!is_stored(&mut client, id).await, "{id} survived its delete");
    }
    let related = client
        .related(by_id("gnad-test-00000", 20))
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert!(related.iter().all(|story| story.id != "gnad-test-00372"));
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.article_count, SAMPLE_ARTICLES as u64 - 1);
    server.shutdown().await;
}

/// A fresh story about the invented start-up "Zyphrax", a name the snapshot never saw.
fn zyphrax_story(id: &str, title: &str, body: &str) -> proto::Article {
    proto::Article {
        title: title.into(),
        body: body.into(),
        section: "Wirtschaft".into(),
        ..union_story(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_word_relates_fresh_articles_at_once_and_explains_it() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let vocabulary_before = client
        .stats(StatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .vocabulary_size;
    let first = zyphrax_story(
        "zyphrax-1",
        "Zyphrax stellt Quantencomputer vor",
        "Das Start-up Zyphrax aus Graz hat einen Quantencomputer vorgestellt. Zyphrax will damit einen Rekord \
         aufgestellt haben.",
    );
    let second = zyphrax_story(
        "zyphrax-2",
        "Investoren steigen bei Zyphrax ein",
        "Zyphrax sammelt zwölf Millionen Euro ein. Die Gründer von Zyphrax wollen in Graz Personal aufnehmen.",
    );
    client.upsert_articles(upsert(vec![first, second])).await.unwrap();
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert!(
        stats.vocabulary_size > vocabulary_before,
        "the vocabulary grew: {vocabulary_before} -> {}",
        stats.vocabulary_size
    );

    let related = client
        .related(by_id("zyphrax-2", 5))
        .await
        .unwrap()
        .into_inner()
        .stories;
    assert_eq!(related[0].id, "zyphrax-1", "{related:?}");
    assert!(
        related[0].shared_terms.iter().any(|term| term == "Zyphrax"),
        "the new name explains the link: {:?}",
        related[0].shared_terms
    );
    let draft = proto::RelatedRequest {
        source: Some(proto::related_request::Source::Draft(proto::Draft {
            title: "Was Zyphrax vorhat".into(),
            body: String::new(),
            lang: "de".into(),
        })),
        k: 5,
        ..Default::default()
    };
    let related = client.related(draft.clone()).await.unwrap().into_inner().stories;
    let found: HashSet<&str> = related.iter().take(2).map(|story| story.id.as_str()).collect();
    assert_eq!(
        found,
        HashSet::from(["zyphrax-1", "zyphrax-2"]),
        "a draft finds both by the name"
    );

    client
        .delete_articles(delete(&["zyphrax-1", "zyphrax-2"]))
        .await
        .unwrap();
    let related = client.related(draft).await.unwrap().into_inner().stories;
    assert!(related.is_empty(), "nothing live holds the name any more: {related:?}");
    server.shutdown().await;
}

/// After a rebuild every live article, upserted, updated or from the snapshot, has the vector that
/// `weitere index` over the live articles gives it: the rebuild learns lexicon, vocabulary and idf from
/// the token counts kept in the snapshot and with each upsert.
#[test]
fn after_a_rebuild_an_upserted_article_has_the_vector_index_gives_it() {
    let articles = crate::common::sample_articles();
    let (base, upserted) = articles.split_at(articles.len() - 20);
    let dir = tempfile::tempdir().unwrap();
    Engine::build(base.to_vec(), &BuildConfig::default(), &ProgressBar::hidden())
        .unwrap()
        .save(dir.path())
        .unwrap();
    let index =
        Arc::new(LiveIndex::open(dir.path(), Engine::open(dir.path()).unwrap(), RebuildPolicy::default()).unwrap());
    index.upsert(upserted.to_vec()).unwrap();
    // An update of a base article (it takes another's text), and two deletes.
    let mut updated = base[3].clone();
    updated.title = base[4].title.clone();
    updated.body = base[4].body.clone();
    index.upsert(vec![updated.clone()]).unwrap();
    let deleted = [base[5].id.clone(), base[6].id.clone()];
    index.delete(deleted.to_vec()).unwrap();
    index.rebuild().unwrap();

    let live: Vec<Article> = articles
        .iter()
        .filter(|article| !deleted.contains(&article.id))
        .map(|article| {
            if article.id == updated.id {
                updated.clone()
            } else {
                article.clone()
            }
        })
        .collect();
    let indexed = Engine::build(live.clone(), &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
    let assert_indexed_vectors = |rebuilt: &Engine| {
        assert_eq!(rebuilt.stats().article_count, live.len() as u64);
        assert_eq!(rebuilt.stats().vocabulary_size, indexed.stats().vocabulary_size);
        for article in &live {
            let slot = |engine: &Engine| {
                engine
                    .articles()
                    .iter()
                    .position(|stored| stored.id == article.id)
                    .unwrap()
            };
            let from_rebuild = rebuilt.vectors().get(slot(rebuilt)).to_vector();
            let from_index = indexed.vectors().get(slot(&indexed)).to_vector();
            assert_eq!(from_rebuild, from_index, "{}", article.id);
        }
    };
    assert_indexed_vectors(&index.read());
    // The rebuilt snapshot keeps the counts it learned from, so the next rebuild learns the same.
    index.rebuild().unwrap();
    assert_indexed_vectors(&index.read());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_the_right_token_are_refused_and_write_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let missing = UpsertArticlesRequest {
        articles: vec![union_story("sneaky")],
    };
    assert_eq!(
        client.upsert_articles(missing.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        client
            .upsert_articles(with_token(missing, "wrong"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        client
            .delete_articles(with_token(
                DeleteArticlesRequest {
                    ids: vec!["gnad-test-00000".into()]
                },
                "wrong"
            ))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.article_count, SAMPLE_ARTICLES as u64);
    server.shutdown().await;

    let closed = TestServer::start_with(ServerOptions::default()).await;
    let mut client = closed.client().await;
    let status = client
        .upsert_articles(upsert(vec![union_story("x")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("no write token"));
    closed.shutdown().await;

    let read_protected = TestServer::start_with(ServerOptions {
        access: Access {
            write_token: None,
            read_token: Some("reader".into()),
        },
        ..ServerOptions::default()
    })
    .await;
    let mut client = read_protected.client().await;
    assert_eq!(
        client.stats(StatsRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(client.stats(with_token(StatsRequest {}, "reader")).await.is_ok());
    read_protected.shutdown().await;
}

fn article(id: &str, title: &str, body: &str) -> Article {
    weitere::service::article_from_wire(proto::Article {
        title: title.into(),
        body: body.into(),
        ..union_story(id)
    })
    .unwrap()
}

fn related_ids(index: &LiveIndex, id: &str, k: usize) -> Vec<String> {
    ids(index.related(&query(id, k)).unwrap())
}

#[test]
fn acknowledged_writes_survive_a_restart_and_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    build_sample_engine().save(dir.path()).unwrap();
    let union = union_story("live-union");
    {
        let index =
            Arc::new(LiveIndex::open(dir.path(), Engine::open(dir.path()).unwrap(), RebuildPolicy::default()).unwrap());
        index
            .upsert(vec![weitere::service::article_from_wire(union.clone()).unwrap()])
            .unwrap();
        index.delete(vec!["gnad-test-00372".into()]).unwrap();
    }
    let index =
        Arc::new(LiveIndex::open(dir.path(), Engine::open(dir.path()).unwrap(), RebuildPolicy::default()).unwrap());
    assert_eq!(index.article("live-union").unwrap().title, union.title);
    assert!(index.article("gnad-test-00372").is_err());
    assert_eq!(related_ids(&index, "gnad-test-00000", 5)[0], "live-union");

    index.rebuild().unwrap();
    assert_eq!(
        index.read().delta().change_count(),
        0,
        "the rebuild folded the changes in"
    );
    assert_eq!(related_ids(&index, "gnad-test-00000", 5)[0], "live-union");
    drop(index);
    let reopened = Engine::open(dir.path()).unwrap();
    assert_eq!(reopened.stats().article_count, SAMPLE_ARTICLES as u64);
    assert!(reopened.article("live-union").is_ok() && reopened.article("gnad-test-00372").is_err());
    let index = LiveIndex::open(dir.path(), reopened, RebuildPolicy::default()).unwrap();
    assert_eq!(index.read().delta().change_count(), 0, "no change is replayed twice");
}

#[test]
fn a_body_over_the_limit_is_rejected_alone_and_fails_a_draft_query() {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(
        LiveIndex::open(dir.path(), build_sample_engine(), RebuildPolicy::default())
            .unwrap()
            .with_max_body_bytes(100),
    );
    let long_body = "ä".repeat(51);
    let outcomes = index
        .upsert(vec![
            article("fits", "Gewerkschaft", "Kurzer Text über All-in-Verträge."),
            article("too-long", "Gewerkschaft", &long_body),
        ])
        .unwrap();
    assert_eq!(outcomes[0].rejected, None);
    let rejected = outcomes[1].rejected.as_deref().unwrap();
    assert!(
        rejected.starts_with("body: 102 bytes, the limit is 100 bytes"),
        "{rejected}"
    );
    assert!(index.article("fits").is_ok() && index.article("too-long").is_err());

    let draft = RelatedQuery::new(
        Source::Draft(Draft {
            title: "Gewerkschaft".into(),
            body: long_body,
            lang: "de".into(),
        }),
        5,
    );
    let err = index.related(&draft).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref field, .. } if field == "draft.body"),
        "{err}"
    );
}

#[test]
fn readers_and_writers_run_together_without_losing_or_resurrecting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RebuildPolicy {
        min_changes: 40,
        ratio: 0.0,
        ..RebuildPolicy::default()
    };
    let index = Arc::new(LiveIndex::open(dir.path(), build_sample_engine(), policy).unwrap());
    let sources: Vec<String> = index
        .read()
        .articles()
        .iter()
        .step_by(7)
        .map(|a| a.id.to_owned())
        .collect();
    // Ids enter `deleting` before their delete is sent and `deleted` once it is acknowledged.
    let deleting: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let deleted: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let writing = Arc::new(AtomicBool::new(true));

    let readers: Vec<_> = (0..3)
        .map(|reader| {
            let (index, deleting, deleted, writing, sources) = (
                Arc::clone(&index),
                Arc::clone(&deleting),
                Arc::clone(&deleted),
                Arc::clone(&writing),
                sources.clone(),
            );
            std::thread::spawn(move || {
                let mut queries = 0;
                while writing.load(Ordering::Acquire) || queries < 50 {
                    let source = &sources[(queries * 3 + reader) % sources.len()];
                    let gone_before: HashSet<String> = deleted.lock().unwrap().clone();
                    match index.related(&query(source, 10)) {
                        Ok(stories) => {
                            for story in stories {
                                assert!(!gone_before.contains(&story.id), "deleted {} returned", story.id);
                            }
                        }
                        Err(weitere::error::Error::UnknownArticle(id)) => {
                            assert!(deleting.lock().unwrap().contains(&id), "{id} vanished")
                        }
                        Err(err) => panic!("query failed: {err}"),
                    }
                    queries += 1;
                }
                queries
            })
        })
        .collect();

    let mut upserted = Vec::new();
    for round in 0..60 {
        let id = format!("live-{round}");
        let title = format!("Gewerkschaft verhandelt Kollektivvertrag Runde {round}");
        let body = "Die Gewerkschaft GPA-djp und die Arbeitgeber verhandeln über Löhne und All-in-Verträge.";
        index.upsert(vec![article(&id, &title, body)]).unwrap();
        upserted.push(id);
        if round % 3 == 0 {
            let victim = sources[round % sources.len()].clone();
            let own = upserted.remove(0);
            deleting.lock().unwrap().extend([victim.clone(), own.clone()]);
            let outcomes = index.delete(vec![victim.clone(), own.clone()]).unwrap();
            assert!(
                outcomes.iter().all(|outcome| outcome.rejected.is_none()),
                "{outcomes:?}"
            );
            deleted.lock().unwrap().extend([victim, own]);
        }
    }
    writing.store(false, Ordering::Release);
    let queries: usize = readers.into_iter().map(|reader| reader.join().unwrap()).sum();
    assert!(queries >= 150);

    for id in &upserted {
        assert!(index.article(id).is_ok(), "acked upsert {id} missing");
    }
    for id in deleted.lock().unwrap().iter() {
        assert!(index.article(id).is_err(), "deleted {id} is back");
    }
    let live = index.stats().index.article_count as usize;
    assert_eq!(
        live,
        SAMPLE_ARTICLES + upserted.len() - 20,
        "20 sample articles were deleted"
    );
}

#[test]
fn many_copies_of_one_story_collapse_without_emptying_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(LiveIndex::open(dir.path(), build_sample_engine(), RebuildPolicy::default()).unwrap());
    let copies = (0..40)
        .map(|n| weitere::service::article_from_wire(union_story(&format!("copy-{n}"))).unwrap())
        .collect();
    index.upsert(copies).unwrap();
    let related = related_ids(&index, "copy-0", 5);
    assert_eq!(related.len(), 5, "{related:?}");
    assert!(
        related.iter().all(|id| !id.starts_with("copy-")),
        "copies of the source are collapsed"
    );
    let related = related_ids(&index, "gnad-test-00000", 5);
    assert_eq!(related.len(), 5);
    assert_eq!(
        related.iter().filter(|id| id.starts_with("copy-")).count(),
        1,
        "{related:?}"
    );
}
