//! weitere recommends related news stories — the "Weitere Meldungen" / "More on this" block under an
//! article — for German and English news.
//!
//! Data flows one way, one module per stage:
//!
//! | stage | module | question it answers |
//! |---|---|---|
//! | input | [`ingest`], [`article`] | How do articles get in? |
//! | analysis | [`analysis`] | How do we turn an article's text into index terms? |
//! | vectors | [`tfidf`], [`sparse`], [`vector_table`] | How are terms weighted? Where do the vectors live? |
//! | dense projection | [`projection`] | How does a sparse vector become a short dense one for the graph? |
//! | index | [`index`] | Which stored articles are nearest to a vector? |
//! | live changes | [`delta`] | What changed since the snapshot was built? |
//! | persistence | [`snapshot`], [`bodies`], [`dense_file`], [`signature_file`], [`flat_file`] | How does an index outlive the process? Where do bodies live? |
//! | durability | [`store`] | How do acknowledged writes survive a crash? |
//! | ranking | [`recommend`], [`near_copy`] | Which candidates make the block, in which order? Which are copies of one text? |
//! | all together | [`engine`] | Where do the stages meet? |
//! | live writes | [`live`] | How do writes reach the index while it serves? |
//! | archive jobs | [`batch`] | How does an archive get related links for every article? |
//! | offline quality | [`evaluate`] | How good are the recommendations? |
//! | network | [`service`] | How do clients reach it? |
//!
//! ```
//! use weitere::{article::Article, engine::{BuildConfig, Engine}};
//! use weitere::recommend::{Filter, RelatedQuery, Source};
//!
//! let article = |id: &str, title: &str| Article {
//!     id: id.into(), title: title.into(), body: String::new(), published_at: None,
//!     section: "Ausland".into(), lang: "de".into(), url: String::new(), story: None, category: None,
//! };
//! let mut config = BuildConfig::default();
//! config.tfidf.min_df = 1;
//! config.tfidf.max_df_ratio = 1.0;
//! let engine = Engine::build(
//!     vec![
//!         article("1", "Nordkorea testet Rakete"),
//!         article("2", "Neue Rakete aus Nordkorea"),
//!         article("3", "Rapid gewinnt Derby"),
//!     ],
//!     &config,
//!     &indicatif::ProgressBar::hidden(),
//! )?;
//! let query = RelatedQuery::new(Source::Article("1".into()), 5);
//! let related = engine.related(&query)?;
//! assert_eq!(related[0].id, "2");
//! # Ok::<(), weitere::error::Error>(())
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod article;
pub mod article_table;
pub mod background;
pub mod batch;
pub mod bodies;
pub mod delta;
pub mod dense_file;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod flat_file;
pub mod index;
pub mod ingest;
pub mod live;
pub mod near_copy;
pub mod prefetch;
pub mod projection;
pub mod recommend;
pub mod service;
pub mod signature_file;
pub mod snapshot;
pub mod sparse;
pub mod store;
pub mod string_table;
pub mod tfidf;
pub mod vector_table;
