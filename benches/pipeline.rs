//! One criterion group per pipeline stage, on the German sample shipped in `data/` (fixed input, fixed
//! seed). Each bench asserts a count so that a broken build cannot look fast. CI compiles these benches
//! (`--all-targets`) but does not run them; run with `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use indicatif::ProgressBar;
use weitere::analysis::{Analyzer, AnalyzerConfig, Lang, Lexicon};
use weitere::article::Article;
use weitere::engine::{BuildConfig, Engine, SearchStrategy};
use weitere::index::{HnswIndex, HnswParams, InsertionMode};
use weitere::ingest::{self, IngestOptions};
use weitere::recommend::{RelatedQuery, Source};

const SAMPLE: &[u8] = include_bytes!("../data/gnad-sample.jsonl.gz");
const SAMPLE_ARTICLES: usize = 514;
const K: usize = 10;
/// Every n-th article is a query source.
const QUERY_STRIDE: usize = 7;

fn sample() -> Vec<Article> {
    let corpus = ingest::read_gzip_bytes(SAMPLE, "gnad-sample.jsonl.gz", IngestOptions::default()).unwrap();
    assert_eq!(corpus.articles.len(), SAMPLE_ARTICLES);
    corpus.articles
}

fn analysis(c: &mut Criterion) {
    let articles = sample();
    let mut lexicon = Lexicon::new();
    for article in &articles {
        lexicon.add_text(&article.title, Lang::De);
        lexicon.add_text(&article.body, Lang::De);
    }
    let analyzer = Analyzer::new(AnalyzerConfig::default(), lexicon.finish(2));
    let mut terms = Vec::new();
    c.bench_function("analysis/sample_corpus_514_articles", |b| {
        b.iter(|| {
            let mut count = 0;
            for article in &articles {
                terms.clear();
                analyzer.analyze_into(&article.title, Lang::De, &mut terms);
                analyzer.analyze_into(&article.body, Lang::De, &mut terms);
                count += terms.len();
            }
            assert!(count > 100_000, "analysis produced only {count} terms");
            black_box(count)
        })
    });
}

fn vectorising(c: &mut Criterion) {
    let articles = sample();
    c.bench_function("vectorising/fit_sample_corpus", |b| {
        b.iter(|| {
            let (vectorizer, vectors) = weitere::tfidf::Vectorizer::fit(
                &articles,
                AnalyzerConfig::default(),
                weitere::tfidf::TfidfConfig::default(),
                &ProgressBar::hidden(),
            )
            .unwrap();
            assert_eq!(vectors.len(), SAMPLE_ARTICLES);
            black_box(vectorizer.vocabulary().len())
        })
    });
}

fn index_build(c: &mut Criterion) {
    let engine = Engine::build(sample(), &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
    let vectors = Arc::clone(engine.approximate().dense());
    let serial = HnswParams::default().insertion(InsertionMode::Serial);
    let mut group = c.benchmark_group("index_build");
    group.sample_size(10);
    group.bench_function("hnsw_serial_sample_corpus", |b| {
        b.iter_batched(
            || Arc::clone(&vectors),
            |vectors| {
                let index = HnswIndex::build(vectors, serial.clone(), &ProgressBar::hidden()).unwrap();
                black_box(index)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn query(c: &mut Criterion) {
    let articles = sample();
    let mut engine = Engine::build(articles.clone(), &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
    let sources: Vec<RelatedQuery> = articles
        .iter()
        .step_by(QUERY_STRIDE)
        .map(|article| RelatedQuery::new(Source::Article(article.id.clone()), K))
        .collect();
    let drafts: Vec<RelatedQuery> = articles
        .iter()
        .step_by(QUERY_STRIDE)
        .map(|article| {
            RelatedQuery::new(
                Source::Draft(weitere::recommend::Draft {
                    title: article.title.clone(),
                    body: article.body.clone(),
                    lang: article.lang.clone(),
                }),
                K,
            )
        })
        .collect();
    let mut group = c.benchmark_group("query");
    let cases = [
        ("related_by_id_k10_exact", SearchStrategy::Exact, &sources),
        ("related_by_id_k10_hnsw", SearchStrategy::Hnsw, &sources),
        ("related_by_draft_k10_exact", SearchStrategy::Exact, &drafts),
    ];
    for (name, search, queries) in cases {
        engine.set_search(search);
        group.bench_function(name, |b| {
            let mut next = 0;
            b.iter(|| {
                let query = &queries[next % queries.len()];
                next += 1;
                let stories = engine.related(query).unwrap();
                assert!(stories.len() <= K);
                black_box(stories)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, analysis, vectorising, index_build, query);
criterion_main!(benches);
