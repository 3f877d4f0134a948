use std::sync::Arc;

use indicatif::ProgressBar;
use weitere::article::{Article, Timestamp};
use weitere::engine::{BuildConfig, Engine};
use weitere::error::Error;
use weitere::live::{LiveIndex, RebuildPolicy};
use weitere::recommend::{RankingControls, RankingPolicy, Recommendation, RelatedQuery};

use crate::common::{ids, query, sample_articles};

const DAY: i64 = 86_400;
/// 2021-07-29, a day of the Tokyo Olympics.
const SOURCE_TIME: i64 = 1_627_516_800;

fn article(id: &str, title: &str, body: &str, published_at: Option<i64>) -> Article {
    Article {
        id: id.into(),
        title: title.into(),
        body: body.into(),
        published_at: published_at.map(Timestamp::from_seconds),
        section: "Sport".into(),
        lang: "de".into(),
        url: String::new(),
        story: None,
        category: None,
    }
}

const BILES_TITLE: &str = "Simone Biles zieht sich aus dem Mehrkampf-Finale zurück";
const BILES_BODY: &str = "Die Turnerin Simone Biles verzichtet bei den Olympischen Spielen in Tokio auf das \
                          Mehrkampf-Finale, teilte der Turnverband mit.";

/// The sample and one story: a dpa article, its syndicated copy with WELT's site suffix, and a
/// paraphrase by another outlet.
fn biles_articles() -> Vec<Article> {
    let mut articles = sample_articles().to_vec();
    articles.push(article("biles-dpa", BILES_TITLE, BILES_BODY, Some(SOURCE_TIME)));
    articles.push(article(
        "biles-welt",
        &format!("{BILES_TITLE} - WELT"),
        BILES_BODY,
        Some(SOURCE_TIME + 600),
    ));
    articles.push(article(
        "biles-zdf",
        "Turn-Star Biles verzichtet auch auf das Mehrkampf-Finale in Tokio",
        "Simone Biles tritt im Mehrkampf-Finale der Olympischen Spiele nicht an, das gab der Turnverband \
         am Mittwoch bekannt.",
        Some(SOURCE_TIME + 3_600),
    ));
    articles
}

fn related(engine: &Engine, id: &str) -> Vec<String> {
    ids(engine.related(&query(id, 5)).unwrap())
}

#[test]
fn a_copy_with_a_site_suffix_is_dropped_while_a_paraphrase_of_the_story_stays() {
    let engine = Engine::build(biles_articles(), &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
    let block = related(&engine, "biles-dpa");
    assert_eq!(block.first().map(String::as_str), Some("biles-zdf"), "{block:?}");
    assert!(
        !block.contains(&"biles-welt".to_owned()),
        "the copy is dropped: {block:?}"
    );
    // From the paraphrase's side, the original and its copy are one text: one of them is shown.
    let block = related(&engine, "biles-zdf");
    let versions = block.iter().filter(|id| id.starts_with("biles-")).count();
    assert_eq!(versions, 1, "{block:?}");
    // A draft of the same text finds the paraphrase, not the copies.
    let draft = weitere::recommend::RelatedQuery {
        source: weitere::recommend::Source::Draft(weitere::recommend::Draft {
            title: format!("{BILES_TITLE} | LatestLY"),
            body: BILES_BODY.into(),
            lang: "de".into(),
        }),
        ..query("unused", 5)
    };
    let block = ids(engine.related(&draft).unwrap());
    assert_eq!(block.first().map(String::as_str), Some("biles-zdf"), "{block:?}");
    assert!(
        !block.iter().any(|id| id == "biles-dpa" || id == "biles-welt"),
        "{block:?}"
    );
    // The old cosine rule, set explicitly below the paraphrase's similarity, drops the paraphrase too.
    let mut strict = engine.clone();
    strict
        .set_policy(RankingPolicy {
            duplicate_similarity: Some(0.2),
            ..RankingPolicy::default()
        })
        .unwrap();
    assert!(!related(&strict, "biles-dpa").contains(&"biles-zdf".to_owned()));
}

#[test]
fn copies_upserted_live_are_dropped_and_stay_dropped_after_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = biles_articles();
    let paraphrase = base.pop().unwrap();
    let copy = base.pop().unwrap();
    Engine::build(base, &BuildConfig::default(), &ProgressBar::hidden())
        .unwrap()
        .save(dir.path())
        .unwrap();
    let index =
        Arc::new(LiveIndex::open(dir.path(), Engine::open(dir.path()).unwrap(), RebuildPolicy::default()).unwrap());
    let mut latestly = copy.clone();
    latestly.id = "biles-latestly".into();
    latestly.title = format!("{BILES_TITLE} | LatestLY");
    index.upsert(vec![copy, latestly, paraphrase]).unwrap();
    let check = |engine: &Engine| {
        let block = related(engine, "biles-dpa");
        assert_eq!(block.first().map(String::as_str), Some("biles-zdf"), "{block:?}");
        assert!(
            !block.iter().any(|id| id == "biles-welt" || id == "biles-latestly"),
            "{block:?}"
        );
        // A fresh copy's block: the base original and the other fresh copy are copies of it.
        let block = related(engine, "biles-latestly");
        assert!(
            !block.iter().any(|id| id == "biles-welt" || id == "biles-dpa"),
            "{block:?}"
        );
    };
    check(&index.read());
    index.rebuild().unwrap();
    assert_eq!(index.read().delta().change_count(), 0);
    check(&index.read());
    drop(index);
    check(&Engine::open(dir.path()).unwrap());
}

fn scores(block: &[Recommendation]) -> Vec<(String, f32)> {
    block.iter().map(|story| (story.id.clone(), story.score)).collect()
}

#[test]
fn a_follow_up_and_the_background_beat_the_same_story_a_year_later() {
    let mut articles = sample_articles().to_vec();
    let swim = |id: &str, title: &str, body: &str, at: i64| article(id, title, body, Some(at));
    articles.push(swim(
        "source",
        "Titmus gewinnt Gold über 200 Meter Freistil vor Ledecky",
        "Die Australierin Ariarne Titmus schlägt in Tokio die Amerikanerin Katie Ledecky.",
        SOURCE_TIME,
    ));
    articles.push(swim(
        "follow-up",
        "Nach Gold über 200 Meter: Titmus will auch über 800 Meter starten",
        "Drei Tage nach ihrem Sieg kündigt die Schwimmerin den nächsten Start an.",
        SOURCE_TIME + 3 * DAY,
    ));
    articles.push(swim(
        "background",
        "Vor Olympia: Titmus ist Favoritin über 200 Meter Freistil",
        "Die Trainer erwarten ein enges Rennen mit Ledecky im Becken von Tokio.",
        SOURCE_TIME - 7 * DAY,
    ));
    articles.push(swim(
        "a-year-later",
        "Titmus gewinnt erneut Gold über 200 Meter Freistil",
        "Bei der Weltmeisterschaft schlägt Ariarne Titmus wieder die Amerikanerin Katie Ledecky.",
        SOURCE_TIME + 365 * DAY,
    ));
    let mut engine = Engine::build(articles, &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
    let block = engine.related(&query("source", 3)).unwrap();
    assert_eq!(
        ids(block.clone()),
        ["follow-up", "background", "a-year-later"],
        "{:?}",
        scores(&block)
    );
    // Without the prior, the year-later story wins on words: the prior, not the text, decides.
    engine
        .set_policy(RankingPolicy {
            time_scale_hours: 0.0,
            ..RankingPolicy::default()
        })
        .unwrap();
    let block = engine.related(&query("source", 3)).unwrap();
    assert_eq!(ids(block.clone())[0], "a-year-later", "{:?}", scores(&block));
}

/// The sample and a cycling story: stage reports, a doping inquiry at the Tour, a doping case in
/// athletics and a Giro report, all of one day.
fn cycling_engine() -> Engine {
    let mut articles = sample_articles().to_vec();
    let ride = |id: &str, title: &str, body: &str| article(id, title, body, Some(SOURCE_TIME));
    articles.extend([
        ride(
            "tour-stage-1",
            "Pogačar gewinnt die Bergetappe der Tour de France",
            "Tadej Pogačar siegt vor Jonas Vingegaard am Schlussanstieg und baut das Gelbe Trikot aus.",
        ),
        ride(
            "tour-stage-2",
            "Vingegaard attackiert Pogačar auf der Tour de France",
            "Jonas Vingegaard greift am Anstieg an, Tadej Pogačar verteidigt das Gelbe Trikot der Tour.",
        ),
        ride(
            "tour-doping",
            "Doping-Ermittlungen bei der Tour de France",
            "Die Staatsanwaltschaft ermittelt wegen Doping, Razzia im Teamhotel der Tour, Proben beschlagnahmt.",
        ),
        ride(
            "athletics-doping",
            "Doping-Sperre für Sprinter nach positiver Probe",
            "Die Anti-Doping-Agentur sperrt den Sprinter, die Probe war positiv, Ermittlungen laufen.",
        ),
        ride(
            "giro-stage",
            "Pogačar dominiert den Giro d'Italia",
            "Tadej Pogačar gewinnt die Bergankunft des Giro und trägt das Rosa Trikot.",
        ),
    ]);
    Engine::build(articles, &BuildConfig::default(), &ProgressBar::hidden()).unwrap()
}

fn score_of(block: &[Recommendation], id: &str) -> f32 {
    block
        .iter()
        .find(|story| story.id == id)
        .unwrap_or_else(|| panic!("{id} not in {:?}", scores(block)))
        .score
}

#[test]
fn negative_examples_push_their_topic_down_and_positive_ones_pull_theirs_up() {
    let engine = cycling_engine();
    let plain = engine.related(&query("tour-stage-1", 10)).unwrap();
    let doping_share = |block: &[Recommendation]| score_of(block, "tour-doping") / score_of(block, "tour-stage-2");
    let unlike_doping = RelatedQuery {
        negative_ids: vec!["athletics-doping".into()],
        ..query("tour-stage-1", 10)
    };
    let unlike = engine.related(&unlike_doping).unwrap();
    assert!(
        doping_share(&unlike) < doping_share(&plain),
        "{:?} vs {:?}",
        scores(&unlike),
        scores(&plain)
    );
    assert!(
        !ids(unlike).contains(&"athletics-doping".to_owned()),
        "no example is returned"
    );

    let like_doping = RelatedQuery {
        positive_ids: vec!["athletics-doping".into()],
        ..query("tour-stage-1", 10)
    };
    let like = engine.related(&like_doping).unwrap();
    assert!(
        doping_share(&like) > doping_share(&plain),
        "{:?} vs {:?}",
        scores(&like),
        scores(&plain)
    );
    let rank = |block: &[Recommendation], id: &str| block.iter().position(|story| story.id == id);
    assert!(
        rank(&plain, "tour-doping") > rank(&plain, "giro-stage"),
        "{:?}",
        scores(&plain)
    );
    assert!(
        rank(&like, "tour-doping") < rank(&like, "giro-stage"),
        "{:?}",
        scores(&like)
    );
    assert!(!ids(like).contains(&"athletics-doping".to_owned()));

    // Examples alone: the first positive is the source, the same block as naming it.
    let alone = RelatedQuery::from_examples(vec!["tour-stage-1".into()], Vec::new(), 10, "source").unwrap();
    assert_eq!(engine.related(&alone).unwrap(), plain);
    // An unknown example is an error, not an empty block.
    let unknown = RelatedQuery {
        positive_ids: vec!["no-such-story".into()],
        ..query("tour-stage-1", 10)
    };
    assert!(matches!(engine.related(&unknown), Err(Error::UnknownArticle(id)) if id == "no-such-story"));
}

#[test]
fn per_request_controls_override_the_servers_policy_for_that_request_only() {
    let engine = cycling_engine();
    let plain = engine.related(&query("tour-stage-1", 10)).unwrap();
    let floor = score_of(&plain, "tour-doping") + 1e-4;
    let strict = RelatedQuery {
        controls: RankingControls {
            min_score: Some(floor),
            ..RankingControls::default()
        },
        ..query("tour-stage-1", 10)
    };
    let block = engine.related(&strict).unwrap();
    assert!(
        !block.is_empty() && block.iter().all(|story| story.score >= floor),
        "{:?}",
        scores(&block)
    );
    assert!(!ids(block).contains(&"tour-doping".to_owned()));
    // Diversity chooses and orders, it never rescores: each story keeps its score from the plain ranking
    // of every candidate, and the best story leads either way.
    let diverse = RelatedQuery {
        controls: RankingControls {
            diversity: Some(0.5),
            ..RankingControls::default()
        },
        ..query("tour-stage-1", 10)
    };
    let every_candidate = engine.related(&query("tour-stage-1", 100)).unwrap();
    let reordered = engine.related(&diverse).unwrap();
    assert_eq!(reordered[0], plain[0], "the best story leads either way");
    assert_ne!(
        ids(reordered.clone()),
        ids(plain.clone()),
        "diversity 0.5 changes this block"
    );
    for story in &reordered {
        assert_eq!(Some(story), every_candidate.iter().find(|plain| plain.id == story.id));
    }
    // The server's own policy is untouched.
    assert_eq!(engine.related(&query("tour-stage-1", 10)).unwrap(), plain);
}
