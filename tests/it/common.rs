use std::sync::OnceLock;

use indicatif::ProgressBar;
use weitere::article::Article;
use weitere::engine::{BuildConfig, Engine};
use weitere::ingest::{self, IngestOptions};
use weitere::recommend::{Recommendation, RelatedQuery, Source};

/// The German sample shipped with the repository (514 DER STANDARD articles, 9 categories).
pub const SAMPLE: &[u8] = include_bytes!("../../data/gnad-sample.jsonl.gz");

/// Number of articles in [`SAMPLE`].
pub const SAMPLE_ARTICLES: usize = 514;

/// The sample's articles, bodies included; read once per test binary.
pub fn sample_articles() -> &'static [Article] {
    static ARTICLES: OnceLock<Vec<Article>> = OnceLock::new();
    ARTICLES.get_or_init(|| {
        let corpus = ingest::read_gzip_bytes(SAMPLE, "gnad-sample.jsonl.gz", IngestOptions::default()).unwrap();
        assert_eq!(corpus.articles.len(), SAMPLE_ARTICLES);
        corpus.articles
    })
}

/// The sample, indexed with default settings; built once per test binary.
pub fn sample_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(build_sample_engine)
}

/// A fresh engine over the sample with default settings.
pub fn build_sample_engine() -> Engine {
    Engine::build(
        sample_articles().to_vec(),
        &BuildConfig::default(),
        &ProgressBar::hidden(),
    )
    .unwrap()
}

/// A request for the `k` stories related to stored article `id`, unfiltered.
pub fn query(id: &str, k: usize) -> RelatedQuery {
    RelatedQuery::new(Source::Article(id.into()), k)
}

/// The ids of `stories`, in order.
pub fn ids(stories: Vec<Recommendation>) -> Vec<String> {
    stories.into_iter().map(|story| story.id).collect()
}
