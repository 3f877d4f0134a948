//! How are terms weighted? TF-IDF over analysed title and body: sublinear term frequency `1 + ln(tf)` where a
//! title occurrence counts `title_weight` times, smoothed inverse document frequency
//! `ln((1 + n) / (1 + df)) + 1`, terms pruned by `min_df` and `max_df_ratio`, vectors L2-normalised.
//!
//! [`Vectorizer::fit`] learns the vocabulary from a corpus (index time); [`Vectorizer::vectorize`] turns any
//! text into a vector against that fixed vocabulary (query time), dropping unknown terms, and
//! [`Vectorizer::analyse_until`] keeps them by key for the live index, which gives them ids and idf of their
//! own ([`LiveTerms`]).
//!
//! Defaults, checked with `weitere eval --k 5` on the gnad10k dev half (precision@5 by category): title
//! weight 1 and 2 tie (0.647), 3 is lower (0.643) — gnad's "titles" are teaser sentences, so the product
//! rule "the title counts more" (2) costs nothing there; `min_df` 2 beats 1 (0.647 vs 0.630) and 3 is only
//! 0.005 higher, within noise, while it would keep a new name out of the vocabulary longer; `max_df_ratio`
//! 0.5 beats 0.3 (0.642) and 0.8 (0.646).

use rustc_hash::FxHashMap as HashMap;
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod corpus_counts;
mod live_terms;
mod token_cache;

pub use corpus_counts::{ArticleTokens, TokenCounts, TokenCountsBuilder};
use corpus_counts::{TermTable, analyze_token_key};
pub use live_terms::LiveTerms;
use token_cache::{ResolvedTerm, TokenTermCache};

use crate::analysis::{Analyzer, AnalyzerConfig, Lang, Term};
use crate::article::Article;
use crate::error::{Error, Result};
use crate::sparse::{SparseVector, TermId};
use crate::string_table::{PositionIndex, StringTable};
use crate::vector_table::VectorTable;

/// Term weighting settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TfidfConfig {
    /// How many body occurrences one title occurrence is worth (before the sublinear damping).
    pub title_weight: f32,
    /// Terms in fewer documents than this are dropped: they cannot relate two articles.
    pub min_df: u32,
    /// Terms in more than this share of documents are dropped as near-stop words.
    pub max_df_ratio: f32,
    /// German word forms seen fewer times than this are left out of the compound splitter's lexicon.
    pub lexicon_min_count: u32,
}

impl Default for TfidfConfig {
    fn default() -> Self {
        Self {
            title_weight: 2.0,
            min_df: 2,
            max_df_ratio: 0.5,
            lexicon_min_count: 2,
        }
    }
}

impl TfidfConfig {
    /// Checks that the settings make sense, naming the first one that does not.
    pub fn validate(&self) -> Result<()> {
        if !(self.title_weight.is_finite() && self.title_weight > 0.0) {
            return Err(Error::invalid("title_weight", "must be a positive number"));
        }
        if !(self.max_df_ratio > 0.0 && self.max_df_ratio <= 1.0) {
            return Err(Error::invalid("max_df_ratio", "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// The learned vocabulary: for each [`TermId`], its key, a readable surface form and its idf.
/// Term ids follow the lexical order of keys, so the same corpus always gives the same ids. Keys and
/// surfaces live in [`StringTable`]s, looked up through a [`PositionIndex`] (no string per term on the heap).
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "VocabularyParts")]
pub struct Vocabulary {
    parts: VocabularyParts,
    id_by_key: PositionIndex,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct VocabularyParts {
    keys: StringTable,
    surfaces: StringTable,
    idf: Vec<f32>,
}

impl From<VocabularyParts> for Vocabulary {
    fn from(parts: VocabularyParts) -> Self {
        let id_by_key = PositionIndex::build(parts.keys.len(), |id| parts.keys.get(id));
        Self { parts, id_by_key }
    }
}

/// Writes the parts alone, by reference (serde's `into` would copy the whole vocabulary first).
impl Serialize for Vocabulary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.parts.serialize(serializer)
    }
}

impl Vocabulary {
    /// Number of terms.
    pub fn len(&self) -> usize {
        self.parts.keys.len()
    }

    /// True when no term survived pruning.
    pub fn is_empty(&self) -> bool {
        self.parts.keys.is_empty()
    }

    /// The id of an index term, if it is in the vocabulary.
    pub fn id(&self, key: &str) -> Option<TermId> {
        self.id_by_key
            .find(key, |id| self.parts.keys.get(id))
            .map(|id| id as TermId)
    }

    /// The most frequent way the term was written in the corpus, for explanations.
    pub fn surface(&self, term: TermId) -> &str {
        self.parts.surfaces.get(term as usize)
    }

    /// Inverse document frequency of a term.
    pub fn idf(&self, term: TermId) -> f32 {
        self.parts.idf[term as usize]
    }
}

/// Analyser plus vocabulary: everything needed to turn text into a vector.
pub struct Vectorizer {
    analyzer: Analyzer,
    vocabulary: Vocabulary,
    config: TfidfConfig,
    token_terms: TokenTermCache,
}

/// One article's terms as the analyser found them, with their frequencies (title occurrences already
/// weighted): the vocabulary's by id, the others by key. Weighed by [`Vectorizer::weigh_with`] once the
/// others have ids (or are dropped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalysedText {
    /// Terms of the vocabulary, with their frequencies.
    pub known: Vec<(TermId, f32)>,
    /// Terms the vocabulary lacks.
    pub unknown: Vec<UnknownTerm>,
}

/// A term that the vocabulary lacks, as found in one text.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownTerm {
    /// The index term.
    pub key: String,
    /// The word as first written in the text, for explanations.
    pub surface: String,
    /// Its frequency in the text (title occurrences already weighted).
    pub frequency: f32,
}

impl Vectorizer {
    /// Learns lexicon, vocabulary and idf from `articles` and returns their vectors, in the same order:
    /// [`Vectorizer::tokenize`], then [`Vectorizer::fit_tokenized`]. `progress` advances once per article
    /// tokenised. Each article is tokenised once and each distinct token analysed once (see
    /// `corpus_counts`); the vectors equal what [`Vectorizer::vectorize`] gives.
    pub fn fit(
        articles: &[Article],
        analyzer_config: AnalyzerConfig,
        config: TfidfConfig,
        progress: &ProgressBar,
    ) -> Result<(Self, VectorTable)> {
        let tokens = Self::tokenize(articles, &analyzer_config, &config, progress)?;
        Self::fit_tokenized(&tokens, analyzer_config, config)
    }

    /// The first half of [`Vectorizer::fit`]: tokenises every article, on all cores, into the token counts
    /// that are all [`Vectorizer::fit_tokenized`] needs of the texts (so that the bodies can leave memory
    /// before the vocabulary is learned). `progress` advances once per article.
    pub fn tokenize(
        articles: &[Article],
        analyzer_config: &AnalyzerConfig,
        config: &TfidfConfig,
        progress: &ProgressBar,
    ) -> Result<TokenCounts> {
        config.validate()?;
        Ok(TokenCounts::gather(articles, analyzer_config.keep_numbers, progress))
    }

    /// The second half of [`Vectorizer::fit`]: learns from `counts`, which [`Vectorizer::tokenize`] (or a
    /// [`TokenCountsBuilder`]) made with the same analyser settings, and returns the articles' vectors in
    /// their order.
    pub fn fit_tokenized(
        counts: &TokenCounts,
        analyzer_config: AnalyzerConfig,
        config: TfidfConfig,
    ) -> Result<(Self, VectorTable)> {
        config.validate()?;
        let analyzer = Analyzer::new(analyzer_config, counts.lexicon(config.lexicon_min_count));
        let mut terms = TermTable::analyze(counts, &analyzer);
        let (vocabulary, term_ids) = learn_vocabulary(&mut terms, counts, &config);
        let vectorizer = Self::from_parts(analyzer, vocabulary, config);
        let mut vectors = VectorTable::default();
        let article_count = counts.article_count();
        for start in (0..article_count).step_by(VECTOR_CHUNK) {
            let weighed: Vec<SparseVector> = (start..(start + VECTOR_CHUNK).min(article_count))
                .into_par_iter()
                .map_init(Vec::new, |scratch, article| {
                    terms.article_terms(counts, article, vectorizer.config.title_weight, scratch);
                    vectorizer.weigh(scratch.iter().filter_map(|&(term, tf)| {
                        let id = term_ids[term as usize];
                        (id != DROPPED).then_some((id, tf))
                    }))
                })
                .collect();
            for vector in &weighed {
                vectors.push(vector.view());
            }
        }
        Ok((vectorizer, vectors))
    }

    /// Reassembles a vectorizer from its persisted parts.
    pub fn from_parts(analyzer: Analyzer, vocabulary: Vocabulary, config: TfidfConfig) -> Self {
        Self {
            analyzer,
            vocabulary,
            config,
            token_terms: TokenTermCache::default(),
        }
    }

    /// The text analyser.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The learned vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The weighting settings.
    pub fn config(&self) -> &TfidfConfig {
        &self.config
    }

    /// The vector of an article's text against the fixed vocabulary; terms never seen at index time are
    /// dropped.
    pub fn vectorize(&self, article: &Article) -> SparseVector {
        let analysed = self
            .analyse_until(article, None)
            .expect("analysing without a deadline cannot miss it");
        self.weigh(analysed.known.into_iter())
    }

    /// Analyses an article's title and body into its terms, the vocabulary's by id and the others by key;
    /// gives up with [`crate::error::Error::DeadlineExceeded`] once `deadline` has passed.
    pub fn analyse_until(&self, article: &Article, deadline: Option<Instant>) -> Result<AnalysedText> {
        let lang: Lang = article.analysis_lang();
        let mut tally = TermTally::default();
        let mut scratch: Vec<Term> = Vec::new();
        for (text, weight) in [(&article.title, self.config.title_weight), (&article.body, 1.0)] {
            scratch.clear();
            self.analyzer.analyze_until(text, lang, deadline, &mut scratch)?;
            for term in scratch.drain(..) {
                tally.add(&self.vocabulary, term, weight);
            }
        }
        Ok(tally.finish())
    }

    /// Like [`Vectorizer::analyse_until`] for an article already tokenised: each distinct token is
    /// analysed once, or not at all if a recent article had it (the terms of recent tokens are cached).
    /// The same terms and frequencies, which is how a live upsert is analysed.
    pub fn analyse_tokens(&self, tokens: &ArticleTokens) -> AnalysedText {
        let mut tally = TermTally::default();
        for (key, count) in tokens.weighted(self.config.title_weight) {
            let terms = self.token_terms.terms(key, || {
                let mut terms = Vec::new();
                analyze_token_key(&self.analyzer, key, &mut terms);
                terms
                    .into_iter()
                    .map(|term| match self.vocabulary.id(&term.key) {
                        Some(id) => ResolvedTerm::Known(id),
                        None => ResolvedTerm::Unknown(term),
                    })
                    .collect()
            });
            for term in terms.iter() {
                tally.add_resolved(term, count);
            }
        }
        tally.finish()
    }

    /// The vector of raw term frequencies (title occurrences already weighted), with the vocabulary's idf.
    fn weigh(&self, frequencies: impl Iterator<Item = (TermId, f32)>) -> SparseVector {
        self.weigh_with(frequencies, |term| self.vocabulary.idf(term))
    }

    /// The vector of raw term frequencies, each term weighted by `idf`: sublinear term frequency times
    /// idf, L2-normalised.
    pub fn weigh_with(
        &self,
        frequencies: impl Iterator<Item = (TermId, f32)>,
        idf: impl Fn(TermId) -> f32,
    ) -> SparseVector {
        let pairs = frequencies
            .map(|(term, tf)| (term, (1.0 + tf.ln()) * idf(term)))
            .collect();
        SparseVector::from_pairs(pairs)
    }
}

/// One text's terms summed as they are found: the vocabulary's by id, the others by key.
#[derive(Default)]
struct TermTally {
    known: HashMap<TermId, f32>,
    /// By key: the frequency and the surface first seen.
    unknown: HashMap<String, (f32, String)>,
}

impl TermTally {
    fn add(&mut self, vocabulary: &Vocabulary, Term { key, surface }: Term, frequency: f32) {
        match vocabulary.id(&key) {
            Some(id) => *self.known.entry(id).or_default() += frequency,
            None => self.unknown.entry(key).or_insert((0.0, surface)).0 += frequency,
        }
    }

    fn add_resolved(&mut self, term: &ResolvedTerm, frequency: f32) {
        match term {
            ResolvedTerm::Known(id) => *self.known.entry(*id).or_default() += frequency,
            ResolvedTerm::Unknown(term) => match self.unknown.get_mut(&term.key) {
                Some((sum, _)) => *sum += frequency,
                None => {
                    self.unknown.insert(term.key.clone(), (frequency, term.surface.clone()));
                }
            },
        }
    }

    fn finish(self) -> AnalysedText {
        AnalysedText {
            known: self.known.into_iter().collect(),
            unknown: self
                .unknown
                .into_iter()
                .map(|(key, (frequency, surface))| UnknownTerm {
                    key,
                    surface,
                    frequency,
                })
                .collect(),
        }
    }
}

/// Marks a term of the [`TermTable`] that did not make it into the vocabulary.
const DROPPED: TermId = TermId::MAX;

/// Articles weighed at a time before their vectors join the table, which bounds the vectors held twice.
const VECTOR_CHUNK: usize = 4_096;

/// Keeps the terms whose document frequency passes `min_df` and `max_df_ratio`, numbered in the lexical
/// order of their keys. Returns the vocabulary and, by id in `terms`, each term's [`TermId`] or
/// [`DROPPED`]. The kept terms' keys and surfaces move out of `terms`. A term's surface is the way it was written most often (ties: the smallest string).
fn learn_vocabulary(terms: &mut TermTable, counts: &TokenCounts, config: &TfidfConfig) -> (Vocabulary, Vec<TermId>) {
    let df = terms.document_frequencies(counts);
    let n = counts.article_count() as f32;
    let max_df = (config.max_df_ratio * n).max(1.0);
    let mut kept: Vec<u32> = (0..terms.len() as u32)
        .filter(|&term| {
            let count = df[term as usize];
            count >= config.min_df && count as f32 <= max_df
        })
        .collect();
    kept.sort_unstable_by(|&a, &b| terms.keys[a as usize].cmp(&terms.keys[b as usize]));
    let mut term_ids = vec![DROPPED; terms.len()];
    for (id, &term) in kept.iter().enumerate() {
        term_ids[term as usize] = id as TermId;
    }
    let mut parts = VocabularyParts {
        keys: StringTable::default(),
        surfaces: StringTable::default(),
        idf: Vec::with_capacity(kept.len()),
    };
    for &term in &kept {
        let term = term as usize;
        parts.keys.push(&std::mem::take(&mut terms.keys[term]));
        parts
            .surfaces
            .push(&most_frequent(std::mem::take(&mut terms.surfaces[term])));
        parts.idf.push(((1.0 + n) / (1.0 + df[term] as f32)).ln() + 1.0);
    }
    (Vocabulary::from(parts), term_ids)
}

/// The surface written most often; on a tie, the smallest string.
fn most_frequent(votes: Vec<(String, u64)>) -> String {
    votes
        .into_iter()
        .max_by(|(a, a_votes), (b, b_votes)| a_votes.cmp(b_votes).then_with(|| b.cmp(a)))
        .map(|(surface, _)| surface)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article as article;

    fn corpus() -> Vec<Article> {
        vec![
            article(
                "1",
                "Regierung plant Steuerreform",
                "Die Regierung will die Steuern senken.",
            ),
            article("2", "Steuerreform im Parlament", "Das Parlament berät die Steuern."),
            article("3", "Fußball: Rapid gewinnt", "Rapid gewinnt das Spiel gegen Sturm."),
            article("4", "Sturm verliert Spiel", "Das Spiel gegen Rapid war verloren."),
        ]
    }

    fn config() -> TfidfConfig {
        TfidfConfig {
            min_df: 1,
            max_df_ratio: 1.0,
            ..TfidfConfig::default()
        }
    }

    #[test]
    fn vectors_are_normalised_and_related_articles_score_higher() {
        let (_, vectors) =
            Vectorizer::fit(&corpus(), AnalyzerConfig::default(), config(), &ProgressBar::hidden()).unwrap();
        for vector in vectors.iter() {
            assert!((vector.dot(vector) - 1.0).abs() < 1e-5);
        }
        let cosine = |a: usize, b: usize| vectors.get(a).dot(vectors.get(b));
        assert!(cosine(0, 1) > cosine(0, 2));
        assert!(cosine(2, 3) > cosine(2, 1));
    }

    #[test]
    fn vectorize_matches_fit_for_every_indexed_article() {
        let mut articles = corpus();
        articles.push(article(
            "5",
            "Atomprogramm: Raketen- und Nuklearprogrammen",
            "Das Atomprogramm und das Programm der Raketen- und Nuklearprogrammen. Die Regierung!",
        ));
        let mut english = article(
            "6",
            "Britain's election",
            "The elections in Britain's north, U.S. view.",
        );
        english.lang = "en".into();
        articles.push(english);
        let config = TfidfConfig {
            title_weight: 1.5,
            ..config()
        };
        let (vectorizer, vectors) =
            Vectorizer::fit(&articles, AnalyzerConfig::default(), config, &ProgressBar::hidden()).unwrap();
        for (article, vector) in articles.iter().zip(vectors.iter()) {
            assert_eq!(vectorizer.vectorize(article).view(), vector, "article {}", article.id);
        }
    }

    #[test]
    fn an_article_analysed_token_by_token_has_the_terms_of_its_text() {
        let sorted = |mut analysed: AnalysedText| {
            analysed.known.sort_by_key(|&(term, _)| term);
            analysed.unknown.sort_by(|a, b| a.key.cmp(&b.key));
            analysed
        };
        let (vectorizer, _) =
            Vectorizer::fit(&corpus(), AnalyzerConfig::default(), config(), &ProgressBar::hidden()).unwrap();
        let fresh = article(
            "new",
            "Regierung: Raketen- und Nuklearprogramme",
            "Die Regierung und das Parlament beraten die Steuerreform, die Steuerreform und Zyphrax.",
        );
        let by_text = sorted(vectorizer.analyse_until(&fresh, None).unwrap());
        let tokens = ArticleTokens::gather(&fresh, false);
        let by_tokens = sorted(vectorizer.analyse_tokens(&tokens));
        assert!(by_text.unknown.iter().any(|term| term.key == "zyphrax"));
        assert_eq!(by_tokens, by_text);
        let from_cache = sorted(vectorizer.analyse_tokens(&tokens));
        assert_eq!(
            from_cache, by_text,
            "the second time, every token's terms come from the cache"
        );
    }

    #[test]
    fn fit_gives_the_same_vectors_across_chunks() {
        // More articles than one chunk holds, so token tables of several chunks are merged and the vectors
        // are weighed in two chunks.
        let words = [
            "Regierung",
            "Steuer",
            "Spiel",
            "Rapid",
            "Sturm",
            "Parlament",
            "Reform",
            "Budget",
        ];
        let articles: Vec<Article> = (0..5_000)
            .map(|i| {
                let pick = |k: usize| words[(i * (k + 3) + k) % words.len()];
                let title = format!("{} {}", pick(0), pick(1));
                let body = format!("{} {} {} Wort{}", pick(2), pick(3), pick(4), i % 97);
                article(&i.to_string(), &title, &body)
            })
            .collect();
        let (vectorizer, vectors) =
            Vectorizer::fit(&articles, AnalyzerConfig::default(), config(), &ProgressBar::hidden()).unwrap();
        for index in [0, 1, 2_047, 2_048, 2_049, 4_095, 4_096, 4_999] {
            assert_eq!(
                vectorizer.vectorize(&articles[index]).view(),
                vectors.get(index),
                "article {index}"
            );
        }
        assert!(vectorizer.vocabulary().id("wort5").is_some());
    }

    #[test]
    fn the_surface_is_the_form_written_most_often() {
        let articles = vec![
            article("1", "Programme", "Programme Programme"),
            article("2", "Programm", "Wahl"),
        ];
        let (vectorizer, _) =
            Vectorizer::fit(&articles, AnalyzerConfig::default(), config(), &ProgressBar::hidden()).unwrap();
        let term = vectorizer.vocabulary().id("programm").unwrap();
        assert_eq!(vectorizer.vocabulary().surface(term), "Programme");
    }

    #[test]
    fn min_df_prunes_terms_found_in_one_document() {
        let strict = TfidfConfig { min_df: 2, ..config() };
        let (vectorizer, _) =
            Vectorizer::fit(&corpus(), AnalyzerConfig::default(), strict, &ProgressBar::hidden()).unwrap();
        let (loose, _) =
            Vectorizer::fit(&corpus(), AnalyzerConfig::default(), config(), &ProgressBar::hidden()).unwrap();
        assert!(vectorizer.vocabulary().len() < loose.vocabulary().len());
    }

    #[test]
    fn title_weight_raises_title_terms() {
        let articles = vec![article("1", "Wahl", "Budget Budget"), article("2", "Wahl", "Budget")];
        let heavy = TfidfConfig {
            title_weight: 5.0,
            ..config()
        };
        let (vectorizer, vectors) =
            Vectorizer::fit(&articles, AnalyzerConfig::default(), heavy, &ProgressBar::hidden()).unwrap();
        let wahl = vectorizer.vocabulary().id("wahl").unwrap();
        let budget = vectorizer.vocabulary().id("budget").unwrap();
        let weight = |term| vectors.get(0).iter().find(|&(t, _)| t == term).unwrap().1;
        assert!(weight(wahl) > weight(budget));
    }

    #[test]
    fn invalid_settings_are_named() {
        let bad = TfidfConfig {
            max_df_ratio: 0.0,
            ..config()
        };
        let err = Vectorizer::fit(&corpus(), AnalyzerConfig::default(), bad, &ProgressBar::hidden())
            .err()
            .expect("invalid settings are rejected");
        assert!(err.to_string().contains("max_df_ratio"));
    }
}
