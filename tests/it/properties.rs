use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use weitere::article::{Article, DEFAULT_MAX_BODY_BYTES, Timestamp};
use weitere::error::Error;
use weitere::recommend::{Draft, RelatedQuery, Source};
use weitere::store::Change;

use crate::common::{build_sample_engine, ids, query};

/// Articles as a careless or hostile CMS might send them.
fn any_article() -> impl Strategy<Value = Article> {
    let text = prop_oneof![
        any::<String>(),
        "[A-Za-zÄÖÜäöüß0-9 .,;:!?'\\-–„“]{0,200}",
        "(Gewerkschaft|All-in-Verträge|Atom|programm|Bundes|regierung|und|der|-| ){0,40}",
    ];
    let id = prop_oneof!["[a-z0-9-]{1,12}", any::<String>(), Just("gnad-test-00372".to_string())];
    let lang = prop_oneof![Just("de".to_string()), Just("en".to_string()), any::<String>()];
    (id, text.clone(), text, lang, any::<Option<i64>>()).prop_map(|(id, title, body, lang, published_at)| Article {
        id,
        title,
        body,
        published_at: published_at.map(Timestamp::from_seconds),
        section: "Fuzz".into(),
        lang,
        url: String::new(),
        story: None,
        category: None,
    })
}

/// Cases of [`arbitrary_articles_can_be_upserted_queried_and_deleted`].
const PIPELINE_CASES: u32 = 1_000;

#[test]
fn arbitrary_articles_can_be_upserted_queried_and_deleted() {
    let engine = RefCell::new(build_sample_engine());
    let mut runner = TestRunner::new(Config {
        cases: PIPELINE_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any_article(), any::<bool>());
    runner
        .run(&strategy, |(article, delete_afterwards)| {
            if article.rejection_reason(DEFAULT_MAX_BODY_BYTES).is_some() {
                return Ok(());
            }
            let id = article.id.clone();
            let draft = Draft {
                title: article.title.clone(),
                body: article.body.clone(),
                lang: article.lang.clone(),
            };
            let mut engine = engine.borrow_mut();
            let prepared = engine.prepare(Change::Upsert(article));
            engine.apply(prepared);

            let by_id = engine.related(&query(&id, 10)).unwrap();
            prop_assert!(by_id.iter().all(|story| story.id != id), "{id:?} recommended itself");
            let by_text = RelatedQuery::new(Source::Draft(draft), 10);
            match engine.related(&by_text) {
                Ok(_) | Err(Error::InvalidArgument { .. }) => {}
                Err(other) => prop_assert!(false, "draft query failed: {other}"),
            }

            if delete_afterwards {
                let prepared = engine.prepare(Change::Delete(id.clone()));
                engine.apply(prepared);
                prop_assert!(engine.article(&id).is_err());
                let others = ids(engine.related(&query("gnad-test-00000", 100)).unwrap());
                prop_assert!(!others.contains(&id), "deleted {id:?} still recommended");
            }
            Ok(())
        })
        .unwrap();
}
