use indicatif::ProgressBar;
use weitere::batch::related_for_all;
use weitere::engine::{Engine, SearchStrategy};
use weitere::evaluate::{EvalOptions, Label, Split, evaluate};
use weitere::recommend::Filter;

use crate::common::{SAMPLE_ARTICLES, build_sample_engine, ids, query, sample_engine};

fn ids_of(engine: &Engine, id: &str, k: usize) -> Vec<String> {
    ids(engine.related(&query(id, k)).unwrap())
}

#[test]
fn batch_equals_related_for_every_article() {
    let engine = sample_engine();
    let links = related_for_all(engine, &Filter::default(), 5, &ProgressBar::hidden()).unwrap();
    assert_eq!(links.len(), SAMPLE_ARTICLES);
    for (source, article) in links.iter().zip(engine.articles().iter()) {
        assert_eq!(source.id, article.id, "batch keeps slot order");
        let related: Vec<&str> = source.related.iter().map(|story| story.id.as_str()).collect();
        assert_eq!(related, ids_of(engine, article.id, 5));
    }
}

#[test]
fn batch_filter_selects_the_source_articles() {
    let engine = sample_engine();
    let sport = Filter {
        sections: vec!["Sport".into()],
        ..Filter::default()
    };
    let links = related_for_all(engine, &sport, 3, &ProgressBar::hidden()).unwrap();
    let expected = engine
        .articles()
        .iter()
        .filter(|article| article.section == "Sport")
        .count();
    assert!(expected > 0);
    assert_eq!(links.len(), expected);
}

#[test]
fn graph_search_agrees_with_exact_search() {
    let mut graph = build_sample_engine();
    graph.set_search(SearchStrategy::Hnsw);
    let mut exact = build_sample_engine();
    exact.set_search(SearchStrategy::Exact);
    let agreeing = exact
        .articles()
        .iter()
        .filter(|article| ids_of(&graph, article.id, 10) == ids_of(&exact, article.id, 10))
        .count();
    assert!(
        agreeing as f64 >= 0.98 * SAMPLE_ARTICLES as f64,
        "only {agreeing} of {SAMPLE_ARTICLES} lists agree"
    );
}

#[test]
fn evaluation_is_reproducible_and_never_recommends_the_source() {
    let engine = sample_engine();
    let options = EvalOptions {
        label: Label::Category,
        k: 5,
        sample: Some(100),
        seed: 7,
        split: Split::All,
    };
    let first = evaluate(engine, &options).unwrap();
    let second = evaluate(engine, &options).unwrap();
    assert_eq!(first.sources, 100);
    assert_eq!(first.self_recommendations, 0);
    assert_eq!(
        (first.precision_at_k, first.recall_at_k, first.ndcg_at_k, first.mrr),
        (second.precision_at_k, second.recall_at_k, second.ndcg_at_k, second.mrr)
    );
    assert!(first.precision_at_k > 0.5, "precision@5 {}", first.precision_at_k);
    assert!(first.ann_recall_at_k >= 0.98);
    assert!(first.mrr >= first.precision_at_k * 0.5 && first.mrr <= 1.0);
}

#[test]
fn a_missing_label_is_a_clear_error() {
    let options = EvalOptions {
        label: Label::Story,
        k: 5,
        sample: None,
        seed: 1,
        split: Split::All,
    };
    let error = evaluate(sample_engine(), &options).unwrap_err().to_string();
    assert!(error.contains("label"), "{error}");
}
