//! Where do the stages meet? [`Engine`] holds one loaded snapshot (analyser, vocabulary, articles, vectors,
//! HNSW graph) and answers queries: source → vector → candidates from the index → ranking policy →
//! [`Recommendation`]s. The CLI, the gRPC service, batch jobs and evaluation all call this one type.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, AnalyzerConfig};
use crate::article::{Article, Timestamp};
use crate::article_table::{ArticleRef, ArticleTable};
use crate::bodies::{self, BodyFile};
use crate::delta::{Delta, FreshArticle, FreshText, FreshTexts};
use crate::error::{Error, Result, check_deadline};
use crate::flat_file::Residency;
use crate::index::{
    ApproximateIndex, ExactIndex, HnswIndex, HnswParams, Neighbor, NeighborIndex, Slot, rank_neighbors,
};
use crate::near_copy::{CopySignature, SignatureTable, are_copies};
use crate::projection::ProjectionConfig;
use crate::recommend::{
    Candidate, Explanation, Filter, LeftOut, LeftOutCandidate, LeftOutReason, Ranked, RankingPolicy, Recommendation,
    RelatedQuery, Relations, Source,
};
use crate::snapshot::{self, CorpusParts, FORMAT_VERSION, Manifest, SnapshotRef, SnapshotWriter, StoredCounts};
use crate::sparse::{SparseRef, SparseVector, TermId};
use crate::store::{Change, ChangeSeq, LogBinding};
use crate::string_table::PositionIndex;
use crate::tfidf::{AnalysedText, ArticleTokens, LiveTerms, TfidfConfig, TokenCounts, TokenCountsBuilder, Vectorizer};
use crate::vector_table::VectorTable;

/// When at most this many articles may be returned (the whole index, or what a filter lets through),
/// [`SearchStrategy::Auto`] scans them exactly. Measured with `cargo bench --bench scale` on generated
/// archives (in process, k = 10, 2 cores, p50; 2026-12-03, snapshot format 6): exact 0.61 ms against
/// approximate 0.79 ms at 10,000 articles, 4.5 against 1.9 ms at 100,000 and 46 against 4.6 ms at
/// 1,000,000. The exact path grows about linearly (0.04 to 0.05 ms per 1,000 articles) and the
/// approximate one slowly, so they cross between 10,000 and 25,000; up to 25,000 the exact path is at
/// most a few tenths of a millisecond slower and has no recall loss.
pub const EXACT_SCAN_LIMIT: usize = 25_000;

/// How the engine finds nearest neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchStrategy {
    /// Exact scan when at most [`EXACT_SCAN_LIMIT`] articles are eligible, the HNSW graph otherwise.
    #[default]
    Auto,
    /// Always scan every eligible article exactly.
    Exact,
    /// Always search the HNSW graph.
    Hnsw,
}

/// Candidates fetched beyond `k`, so that the score floor and duplicate collapsing can drop some.
const CANDIDATE_HEADROOM: usize = 10;

/// The first round fetches this many times `k` + [`CANDIDATE_HEADROOM`]. Both search paths cost almost the
/// same for any count up to a few hundred (the exact scan reads the same postings, the graph path re-ranks
/// the same candidates), while a second round costs a whole search. Measured at 100,000 generated
/// articles with one round of `k` + 10: one graph search 3.6 ms, `Related` 6.3 ms, because duplicate
/// collapsing often sent the search round again.
const FIRST_ROUND_FACTOR: usize = 4;

/// When duplicate collapsing leaves fewer than `k`, the candidate list grows fourfold per round up to this
/// size (many copies of one story must not empty the block).
const MAX_CANDIDATES: usize = 2_000;

/// Most left-out candidates an explanation lists ([`Engine::related_explained_until`]).
pub const LEFT_OUT_LIMIT: usize = 30;

/// Most candidates an explanation lists only because the block was full: beyond the first few, "ranked
/// below the block" explains nothing an editor does not see already.
pub const RUNNERS_UP_LIMIT: usize = 5;

/// A query's ranking: the source's vector, its slot when stored, the block, and how many neighbours the
/// last search round asked for.
struct QueryRanking {
    vector: SparseVector,
    /// The vector's LSA projection, made once for the graph search and the dense blend.
    projected: Vec<f32>,
    /// The stored articles the query names: never among its results.
    named: Vec<Slot>,
    ranked: Vec<Ranked>,
    searched: usize,
}

/// A query's source as the search sees it (see [`RelatedQuery`] for how examples combine).
struct QuerySource {
    /// The search vector: the source's, or combined with the examples' (negative weights dropped).
    vector: SparseVector,
    /// With negative examples whose terms the positives lack: the whole contrast, negative weights
    /// included, which scores the candidates the search vector found.
    scoring: Option<SparseVector>,
    /// The stored source and examples, never returned.
    named: Vec<Slot>,
    /// Where the time prior is centred.
    reference_time: Option<Timestamp>,
    /// Copy signatures of the source and the positive examples.
    signatures: Vec<CopySignature>,
}

/// The dense half of [`RankingPolicy::dense_weight`]'s blend for one query.
struct DenseBlend<'a> {
    /// The query vector's projection.
    source: &'a [f32],
    /// The share of the similarity it takes.
    weight: f32,
}

/// Index-time settings: everything that shapes a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// Text analysis.
    pub analysis: AnalyzerConfig,
    /// Term weighting.
    pub tfidf: TfidfConfig,
    /// HNSW graph.
    pub hnsw: HnswParams,
    /// Dense projection for the graph.
    #[serde(default)]
    pub projection: ProjectionConfig,
}

/// Size and provenance of the loaded snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Articles in the index.
    pub article_count: u64,
    /// Terms in the vocabulary.
    pub vocabulary_size: u64,
    /// Snapshot format version.
    pub snapshot_version: u32,
    /// Build time, seconds since the Unix epoch.
    pub built_at: i64,
}

/// The base articles' bodies, slot order.
enum BaseBodies {
    /// An engine just built with [`Engine::build`] holds them.
    InMemory(Vec<String>),
    /// A loaded engine, or one built with [`Engine::build_spilling_bodies`], reads them from disk.
    File(BodyFile),
}

/// The base articles' token counts, slot order: what a rebuild learns from.
enum BaseCounts {
    /// An engine just built holds them.
    InMemory(Arc<TokenCounts>),
    /// A loaded engine reads them from its snapshot when a rebuild needs them.
    Stored(StoredCounts),
}

impl BaseCounts {
    fn load(&self) -> Result<Arc<TokenCounts>> {
        match self {
            BaseCounts::InMemory(counts) => Ok(Arc::clone(counts)),
            BaseCounts::Stored(stored) => Ok(Arc::new(stored.load()?)),
        }
    }
}

/// What queries never read: the base articles' bodies and token counts, and the fresh articles' texts.
struct Texts {
    bodies: BaseBodies,
    counts: BaseCounts,
    fresh: FreshTexts,
}

/// A queryable index: one snapshot in memory plus the ranking policy and the live changes on top of it.
/// Cloning is cheap (the snapshot is shared, the changes are persistent values), so a live index makes a
/// new version per commit while queries read the one they started with.
#[derive(Clone)]
pub struct Engine {
    base: Arc<Base>,
    policy: RankingPolicy,
    search: SearchStrategy,
    /// Newest change-log entry the base (and its snapshot) includes.
    base_change: ChangeSeq,
    /// The change log the snapshot expects beside it.
    change_log: Option<LogBinding>,
    delta: Delta,
    /// Terms first seen in live upserts, after the vocabulary's.
    live_terms: LiveTerms,
}

/// The immutable part of an engine: one snapshot.
struct Base {
    vectorizer: Vectorizer,
    /// Base articles' metadata, slot order.
    articles: ArticleTable,
    texts: Texts,
    vectors: Arc<VectorTable>,
    /// Base articles' copy signatures, slot order.
    signatures: SignatureTable,
    slot_by_id: PositionIndex,
    exact: Arc<ExactIndex>,
    approximate: ApproximateIndex,
    built_at: i64,
}

/// A change made ready to apply: upserted text already tokenised and analysed, so applying it is quick (it
/// gives the terms the vocabulary lacks their live ids and weighs them).
#[derive(Clone, Debug)]
pub enum PreparedChange {
    /// Insert or replace this article, with its analysed text, its body and token counts (kept for
    /// `GetArticle` and rebuilds) already in the base's [`FreshTexts`], and its copy signature.
    Upsert(Box<Article>, AnalysedText, FreshText, CopySignature),
    /// Remove the article with this id.
    Delete(String),
}

impl From<PreparedChange> for Change {
    /// The change as it was before it was prepared (to prepare it again against another vocabulary).
    fn from(change: PreparedChange) -> Self {
        match change {
            PreparedChange::Upsert(article, ..) => Change::Upsert(*article),
            PreparedChange::Delete(id) => Change::Delete(id),
        }
    }
}

impl Engine {
    /// Analyses, weights and indexes `articles` (ids must be unique, as [`crate::ingest`] guarantees).
    /// `progress` is re-used for each phase: analysis, then graph insertion.
    pub fn build(articles: Vec<Article>, config: &BuildConfig, progress: &ProgressBar) -> Result<Self> {
        Self::build_inner(articles, config, progress, None)
    }

    /// Like [`Engine::build`], for an engine that is to be saved as a snapshot: once the articles are
    /// tokenised their bodies move to an unlinked scratch file in `scratch_dir` ([`bodies::spill`]), read
    /// back only when the snapshot is written, and the postings are never built in memory: the snapshot
    /// write streams them from the vectors (see [`ExactIndex::write_postings`]). At a million generated
    /// articles that keeps about 2.7 GB of bodies and 1.5 GB of postings out of memory.
    pub fn build_spilling_bodies(
        articles: Vec<Article>,
        config: &BuildConfig,
        progress: &ProgressBar,
        scratch_dir: &Path,
    ) -> Result<Self> {
        Self::build_inner(articles, config, progress, Some(scratch_dir))
    }

    fn build_inner(
        mut articles: Vec<Article>,
        config: &BuildConfig,
        progress: &ProgressBar,
        scratch_dir: Option<&Path>,
    ) -> Result<Self> {
        if articles.is_empty() {
            return Err(Error::EmptyCorpus("the input holds no accepted article".into()));
        }
        config.hnsw.validate()?;
        config.projection.validate()?;
        let phase = start_phase(progress, "analysing", articles.len());
        let counts = Vectorizer::tokenize(&articles, &config.analysis, &config.tfidf, progress)?;
        let signatures = SignatureTable::of_articles(&articles);
        let spilled = scratch_dir.map(|dir| bodies::spill(dir, &mut articles)).transpose()?;
        return_freed_memory();
        let (vectorizer, exact, approximate) =
            Self::index_counts(&counts, config, progress, phase, scratch_dir.is_none())?;
        let table = articles.iter().collect();
        let bodies = match spilled {
            Some(file) => BaseBodies::File(file),
            None => BaseBodies::InMemory(articles.into_iter().map(|article| article.body).collect()),
        };
        let built_at = chrono::Utc::now().timestamp();
        let texts = Texts {
            bodies,
            counts: BaseCounts::InMemory(Arc::new(counts)),
            fresh: FreshTexts::new(scratch_dir.map(Path::to_owned)),
        };
        Ok(Self::assemble(
            vectorizer,
            table,
            texts,
            (exact, signatures),
            approximate,
            built_at,
        ))
    }

    /// Everything an index learns from token counts: lexicon, vocabulary and idf, the vectors (their
    /// postings built in memory if `prepare_postings`), the projection and the graph. `progress` shows the
    /// graph's insertions; `analysis` is when the analysis phase began, for the log.
    fn index_counts(
        counts: &TokenCounts,
        config: &BuildConfig,
        progress: &ProgressBar,
        analysis: Instant,
        prepare_postings: bool,
    ) -> Result<(Vectorizer, Arc<ExactIndex>, ApproximateIndex)> {
        let articles = counts.article_count();
        let (vectorizer, vectors) = Vectorizer::fit_tokenized(counts, config.analysis.clone(), config.tfidf.clone())?;
        return_freed_memory();
        let exact = Arc::new(ExactIndex::new(Arc::new(vectors)));
        if prepare_postings {
            exact.prepare();
        }
        end_phase(analysis, "analysed and weighted", articles);
        let phase = start_phase(progress, "projecting, then building graph", articles);
        let approximate = ApproximateIndex::build(
            Arc::clone(&exact),
            vectorizer.vocabulary().len(),
            &config.projection,
            config.hnsw.clone(),
            progress,
        )?;
        end_phase(phase, "projected and built the graph", articles);
        progress.finish_and_clear();
        Ok((vectorizer, exact, approximate))
    }

    /// Loads the snapshot in `dir`, verifying version and checksums.
    pub fn open(dir: &Path) -> Result<Self> {
        let started = Instant::now();
        let (manifest, data) = snapshot::read(dir)?;
        end_phase(
            started,
            "read and verified the snapshot, loaded the graph",
            data.articles.len(),
        );
        let analyzer = Analyzer::new(data.analyzer, data.lexicon);
        let vectorizer = Vectorizer::from_parts(analyzer, data.vocabulary, data.tfidf);
        let exact = Arc::new(data.exact);
        let approximate = ApproximateIndex::from_parts(Arc::clone(&exact), data.projection, data.dense, data.graph);
        let texts = Texts {
            bodies: BaseBodies::File(data.bodies),
            counts: BaseCounts::Stored(data.counts),
            fresh: FreshTexts::new(Some(dir.to_owned())),
        };
        let parts = (exact, data.signatures);
        let mut engine = Self::assemble(vectorizer, data.articles, texts, parts, approximate, manifest.built_at);
        engine.base_change = manifest.applied_change;
        engine.change_log = manifest.change_log;
        Ok(engine)
    }

    fn assemble(
        vectorizer: Vectorizer,
        articles: ArticleTable,
        texts: Texts,
        (exact, signatures): (Arc<ExactIndex>, SignatureTable),
        approximate: ApproximateIndex,
        built_at: i64,
    ) -> Self {
        let slot_by_id = PositionIndex::build(articles.len(), |slot| articles.id(slot));
        Self {
            delta: Delta::new(articles.len()),
            live_terms: LiveTerms::new(vectorizer.vocabulary().len()),
            base_change: 0,
            change_log: None,
            policy: RankingPolicy::default(),
            search: SearchStrategy::default(),
            base: Arc::new(Base {
                texts,
                vectorizer,
                articles,
                vectors: Arc::clone(exact.vectors()),
                signatures,
                exact,
                slot_by_id,
                approximate,
                built_at,
            }),
        }
    }

    /// Writes the engine's base snapshot into `dir`, atomically replacing any snapshot there. Live changes
    /// (see [`Engine::apply`]) are not part of it: they stay in the change log until a rebuild folds them in.
    pub fn save(&self, dir: &Path) -> Result<Manifest> {
        self.save_bound(dir, None)
    }

    /// Like [`Engine::save`], recording in the manifest that the change log `binding` names belongs to it.
    pub fn save_bound(&self, dir: &Path, binding: Option<&LogBinding>) -> Result<Manifest> {
        let counts = self.base.texts.counts.load()?;
        let analyzer = self.base.vectorizer.analyzer();
        let data = SnapshotRef {
            corpus: CorpusParts {
                analyzer: analyzer.config(),
                lexicon: analyzer.lexicon(),
                tfidf: self.base.vectorizer.config(),
                vocabulary: self.base.vectorizer.vocabulary(),
                articles: &self.base.articles,
                projection: self.base.approximate.projection(),
            },
            exact: &self.base.exact,
            counts: &counts,
            signatures: &self.base.signatures,
        };
        let body = |slot: usize| self.body(slot as Slot);
        snapshot::write(
            dir,
            self.base.built_at,
            self.base_change,
            binding,
            &data,
            body,
            &self.base.approximate,
        )
    }

    /// True when both are versions of one snapshot (with the same vocabulary).
    pub fn shares_snapshot_with(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }

    /// Newest change-log entry that the base includes (0 for a snapshot built from files).
    pub fn base_change(&self) -> ChangeSeq {
        self.base_change
    }

    /// The change log the loaded snapshot expects beside it (`None` for a snapshot no server has used).
    pub fn change_log(&self) -> Option<&LogBinding> {
        self.change_log.as_ref()
    }

    /// The settings this engine was built with.
    pub fn build_config(&self) -> BuildConfig {
        BuildConfig {
            analysis: self.base.vectorizer.analyzer().config().clone(),
            tfidf: self.base.vectorizer.config().clone(),
            hnsw: self.base.approximate.params().clone(),
            projection: self.base.approximate.projection().config().clone(),
        }
    }

    /// Tokenises an upsert and analyses it against the current vocabulary; deletes pass through.
    pub fn prepare(&self, change: Change) -> PreparedChange {
        match change {
            Change::Upsert(article) => {
                let vectorizer = &self.base.vectorizer;
                let tokens = ArticleTokens::gather(&article, vectorizer.analyzer().config().keep_numbers);
                let analysed = vectorizer.analyse_tokens(&tokens);
                let text = self.base.texts.fresh.store(&article.body, tokens);
                let signature = CopySignature::of_article(&article);
                PreparedChange::Upsert(Box::new(article), analysed, text, signature)
            }
            Change::Delete(id) => PreparedChange::Delete(id),
        }
    }

    /// Applies a live change on top of the base: visible to the next query. An upserted term that the
    /// vocabulary lacks becomes a live term ([`LiveTerms`]), weighted by its live document frequency.
    /// Returns false for a delete of an id that is not live.
    pub fn apply(&mut self, change: PreparedChange) -> bool {
        match change {
            PreparedChange::Upsert(mut article, analysed, text, signature) => {
                let is_new = self.slot(&article.id).is_err();
                self.uncount_fresh_version(&article.id);
                let mut frequencies = analysed.known;
                let mut new_terms = Vec::with_capacity(analysed.unknown.len());
                for term in analysed.unknown {
                    let id = self.live_terms.intern(term.key, term.surface);
                    frequencies.push((id, term.frequency));
                    new_terms.push(id);
                }
                self.live_terms.add_document(new_terms);
                let live_articles = self.live_count() + usize::from(is_new);
                let vector = self.weigh_live(frequencies, live_articles);
                let base_slot = self.base_slot(&article.id);
                article.body = String::new();
                let projection = self.base.approximate.projection().project(&vector).into_boxed_slice();
                let fresh = FreshArticle {
                    article: *article,
                    vector,
                    text,
                    signature,
                    projection,
                };
                self.delta.upsert(fresh, base_slot);
                true
            }
            PreparedChange::Delete(id) => {
                self.uncount_fresh_version(&id);
                let base_slot = self.base_slot(&id);
                self.delta.delete(&id, base_slot)
            }
        }
    }

    /// Takes the fresh version of `id`, if there is one, out of the live terms' document frequencies.
    fn uncount_fresh_version(&mut self, id: &str) {
        if let Some(slot) = self.delta.slot(id) {
            let fresh = self.delta.get(slot).expect("the delta's own slot");
            self.live_terms.remove_document(&fresh.vector);
        }
    }

    /// Weighs raw term frequencies: the vocabulary's terms by their idf from the snapshot, live terms by
    /// their live document frequency among `live_articles`.
    fn weigh_live(&self, frequencies: Vec<(TermId, f32)>, live_articles: usize) -> SparseVector {
        let vocabulary = self.base.vectorizer.vocabulary();
        self.base.vectorizer.weigh_with(frequencies.into_iter(), |term| {
            if self.live_terms.holds(term) {
                self.live_terms.idf(term, live_articles)
            } else {
                vocabulary.idf(term)
            }
        })
    }

    /// How a term was written: the vocabulary's surface, or a live term's.
    fn surface(&self, term: TermId) -> &str {
        if self.live_terms.holds(term) {
            self.live_terms.surface(term)
        } else {
            self.base.vectorizer.vocabulary().surface(term)
        }
    }

    /// Articles live now: the base's not replaced or deleted, and the fresh ones.
    pub fn live_count(&self) -> usize {
        self.base.articles.len() - self.delta.masked_count() + self.delta.fresh_count()
    }

    /// True when the live article with `article`'s id is exactly `article`, metadata and body: upserting
    /// it again would change nothing. False also when the stored body cannot be read.
    pub fn holds_identical(&self, article: &Article) -> bool {
        self.slot(&article.id)
            .and_then(|slot| self.article_with_body(slot))
            .is_ok_and(|live| live == *article)
    }

    /// Live changes applied since the base was built.
    pub fn delta(&self) -> &Delta {
        &self.delta
    }

    /// Every live article with its slot: the base's that were neither replaced nor deleted, then the fresh
    /// ones.
    pub fn live(&self) -> impl Iterator<Item = (Slot, ArticleRef<'_>)> {
        let base = (0..self.base.articles.len() as Slot)
            .filter(|&slot| !self.delta.is_masked(slot))
            .map(|slot| (slot, self.base.articles.get(slot as usize)));
        base.chain(self.delta.live().map(|(slot, fresh)| (slot, fresh.article.metadata())))
    }

    /// Writes a new snapshot of the live articles into `dir`, learned from their token counts (the base's
    /// from its snapshot, each fresh article's kept since its upsert): lexicon, vocabulary, idf, vectors,
    /// projection and graph are what `weitere index` over the same articles would give, and no text is
    /// tokenised again; the bodies are copied one at a time from where they are. The new snapshot includes
    /// the change log through `applied_change` (and records `binding`); it is returned opened from `dir`,
    /// its bodies and counts on disk.
    ///
    /// Each part goes to disk as soon as it is built and is let go once the next part no longer needs it,
    /// so that beside the serving engine a rebuild holds one phase's data at a time: the token counts and
    /// the vectors while weighting, the vectors and the dense projections while projecting, the dense
    /// projections and hnsw_rs's graph while inserting. The built index is dropped before the snapshot is
    /// opened, and the snapshot is returned cold ([`Engine::set_residency`]), so that neither the built
    /// index nor the new snapshot's pages are resident beside the serving engine's.
    pub fn rebuild(&self, dir: &Path, applied_change: ChangeSeq, binding: Option<&LogBinding>) -> Result<Engine> {
        {
            let config = self.build_config();
            let mut snapshot = SnapshotWriter::create(dir)?;
            let started = Instant::now();
            let (vectorizer, vectors) = {
                let counts = self.live_token_counts()?;
                if counts.article_count() == 0 {
                    return Err(Error::EmptyCorpus("no live article to rebuild from".into()));
                }
                let fitted = Vectorizer::fit_tokenized(&counts, config.analysis.clone(), config.tfidf.clone())?;
                snapshot.counts(&counts)?;
                fitted
            };
            return_freed_memory();
            let articles = vectors.len();
            end_phase(started, "rebuild: weighted the token counts", articles);
            let exact = ExactIndex::new(Arc::new(vectors));
            snapshot.vectors(&exact)?;
            let phase = Instant::now();
            let (projection, dense) =
                ApproximateIndex::project(exact.vectors(), vectorizer.vocabulary().len(), &config.projection)?;
            drop(exact);
            return_freed_memory();
            snapshot.dense(&dense)?;
            let graph = HnswIndex::build(Arc::new(dense), config.hnsw.clone(), &ProgressBar::hidden())?;
            snapshot.graph(&graph)?;
            drop(graph);
            return_freed_memory();
            end_phase(phase, "rebuild: projected and built the graph", articles);
            let mut table = ArticleTable::default();
            let mut from_slot = Vec::with_capacity(articles);
            for (slot, article) in self.live() {
                table.push(article);
                from_slot.push(slot);
            }
            let analyzer = vectorizer.analyzer();
            let corpus = CorpusParts {
                analyzer: analyzer.config(),
                lexicon: analyzer.lexicon(),
                tfidf: &config.tfidf,
                vocabulary: vectorizer.vocabulary(),
                articles: &table,
                projection: &projection,
            };
            snapshot.corpus(&corpus, |slot| self.body(from_slot[slot]))?;
            snapshot.signatures(&self.signatures_of(&from_slot))?;
            snapshot.commit(chrono::Utc::now().timestamp(), applied_change, binding)?;
        }
        return_freed_memory();
        let engine = Engine::open(dir)?;
        engine.set_residency(Residency::Cold);
        Ok(engine)
    }

    /// Hands the pages of the snapshot's mapped arrays back, or maps those the query path reads
    /// ([`Residency`]). A rebuild opens its snapshot cold, so that until it replaces the serving engine the
    /// two are not both resident, and warms it once the old one is gone ([`crate::live`]). A failure only
    /// leaves pages as they were, so it is logged, not returned.
    pub fn set_residency(&self, residency: Residency) {
        let approximate = &self.base.approximate;
        let advised = self
            .base
            .exact
            .set_residency(residency)
            .and_then(|()| approximate.dense().set_residency(residency))
            .and_then(|()| self.base.signatures.set_residency(residency));
        if let Err(err) = advised {
            tracing::warn!(?residency, %err, "cannot change the residency of the snapshot's pages");
        }
    }

    /// The token counts of every live article, in the order of [`Engine::live`].
    fn live_token_counts(&self) -> Result<TokenCounts> {
        let base = self.base.texts.counts.load()?;
        let mut counts = TokenCountsBuilder::new(&base);
        for (slot, _) in self.live() {
            if (slot as usize) < self.base.articles.len() {
                counts.push_base(slot as usize);
            } else {
                let fresh = self.delta.get(slot).expect("live slots come from the delta");
                counts.push_tokens(&*self.base.texts.fresh.tokens(&fresh.text)?);
            }
        }
        Ok(counts.finish())
    }

    /// The body of the article in `slot`: from memory, or read from the snapshot's body file.
    pub fn body(&self, slot: Slot) -> Result<Cow<'_, str>> {
        let index = slot as usize;
        let texts = &self.base.texts;
        match &texts.bodies {
            _ if index >= self.base.articles.len() => texts
                .fresh
                .body(&self.delta.get(slot).expect("slots come from the engine").text),
            BaseBodies::InMemory(bodies) => Ok(Cow::Borrowed(&bodies[index])),
            BaseBodies::File(file) => Ok(Cow::Owned(file.read(index)?)),
        }
    }

    fn article_with_body(&self, slot: Slot) -> Result<Article> {
        Ok(self.article_at(slot).to_article(self.body(slot)?.into_owned()))
    }

    /// Replaces the ranking policy (validated first).
    pub fn set_policy(&mut self, policy: RankingPolicy) -> Result<()> {
        policy.validate()?;
        self.policy = policy;
        Ok(())
    }

    /// Chooses how nearest neighbours are found; results differ only by the graph's approximation.
    pub fn set_search(&mut self, search: SearchStrategy) {
        self.search = search;
    }

    /// The search strategy in force.
    pub fn search(&self) -> SearchStrategy {
        self.search
    }

    /// The ranking policy in force.
    pub fn policy(&self) -> &RankingPolicy {
        &self.policy
    }

    /// The live article with this id, body included.
    pub fn article(&self, id: &str) -> Result<Article> {
        self.article_with_body(self.slot(id)?)
    }

    /// The base snapshot's articles' metadata, in slot order (live changes not included); [`Engine::body`]
    /// reads a body.
    pub fn articles(&self) -> &ArticleTable {
        &self.base.articles
    }

    /// The base snapshot's vectors, in slot order.
    pub fn vectors(&self) -> &Arc<VectorTable> {
        &self.base.vectors
    }

    /// The approximate index: graph candidates re-ranked exactly.
    pub fn approximate(&self) -> &ApproximateIndex {
        &self.base.approximate
    }

    /// The exact index over the same vectors.
    pub fn exact(&self) -> &ExactIndex {
        &self.base.exact
    }

    /// Size and provenance of the loaded snapshot.
    pub fn stats(&self) -> Stats {
        Stats {
            article_count: self.live_count() as u64,
            vocabulary_size: (self.base.vectorizer.vocabulary().len() + self.live_terms.len()) as u64,
            snapshot_version: FORMAT_VERSION,
            built_at: self.base.built_at,
        }
    }

    /// The slot of a live article.
    pub fn slot(&self, id: &str) -> Result<Slot> {
        self.delta
            .slot(id)
            .or_else(|| self.base_slot(id).filter(|&slot| !self.delta.is_masked(slot)))
            .ok_or_else(|| Error::UnknownArticle(id.to_owned()))
    }

    /// The base slot of `id`, masked or not.
    fn base_slot(&self, id: &str) -> Option<Slot> {
        self.base
            .slot_by_id
            .find(id, |slot| self.base.articles.id(slot))
            .map(|slot| slot as Slot)
    }

    fn article_at(&self, slot: Slot) -> ArticleRef<'_> {
        if (slot as usize) < self.base.articles.len() {
            self.base.articles.get(slot as usize)
        } else {
            self.delta
                .get(slot)
                .expect("slots come from the engine")
                .article
                .metadata()
        }
    }

    /// The copy signatures of the articles in `slots`, in that order: what a rebuild carries over (the
    /// base's by slot, the fresh ones' from their upsert).
    fn signatures_of(&self, slots: &[Slot]) -> SignatureTable {
        slots.iter().map(|&slot| self.signature_at(slot)).collect()
    }

    /// The copy signature of the article in `slot` (see [`crate::near_copy`]).
    fn signature_at(&self, slot: Slot) -> &[u32] {
        if (slot as usize) < self.base.signatures.len() {
            self.base.signatures.get(slot as usize)
        } else {
            &self.delta.get(slot).expect("slots come from the engine").signature.0
        }
    }

    /// The copy signature of a source: stored, or computed from a draft's text (once per query).
    fn source_signature(&self, source: &Source, slot: Option<Slot>) -> CopySignature {
        match (source, slot) {
            (_, Some(slot)) => CopySignature(self.signature_at(slot).try_into().expect("signatures have one length")),
            (Source::Draft(draft), None) => CopySignature::of(&draft.title, &draft.body),
            (Source::Article(_), None) => CopySignature::of("", ""),
        }
    }

    fn vector_at(&self, slot: Slot) -> SparseRef<'_> {
        if (slot as usize) < self.base.vectors.len() {
            self.base.vectors.get(slot as usize)
        } else {
            self.delta.get(slot).expect("slots come from the engine").vector.view()
        }
    }

    /// The vector of a source: stored, or computed from a draft's text (given up once `deadline` passes).
    fn source_vector(
        &self,
        source: &Source,
        deadline: Option<Instant>,
    ) -> Result<(SparseVector, Option<Slot>, Option<Timestamp>)> {
        match source {
            Source::Article(id) => {
                let slot = self.slot(id)?;
                let article = self.article_at(slot);
                Ok((self.vector_at(slot).to_vector(), Some(slot), article.published_at))
            }
            Source::Draft(draft) => {
                let article = Article {
                    id: String::new(),
                    title: draft.title.clone(),
                    body: draft.body.clone(),
                    published_at: None,
                    section: String::new(),
                    lang: if draft.lang.is_empty() {
                        "de".into()
                    } else {
                        draft.lang.clone()
                    },
                    url: String::new(),
                    story: None,
                    category: None,
                };
                let now = Timestamp::from_seconds(chrono::Utc::now().timestamp());
                let analysed = self.base.vectorizer.analyse_until(&article, deadline)?;
                let mut frequencies = analysed.known;
                frequencies.extend(
                    analysed
                        .unknown
                        .iter()
                        .filter_map(|term| Some((self.live_terms.id(&term.key)?, term.frequency))),
                );
                Ok((self.weigh_live(frequencies, self.live_count()), None, Some(now)))
            }
        }
    }

    /// The source of `query` with its examples: the search vector, the stored articles it names, the
    /// centre of the time prior and the signatures whose copies are dropped.
    fn query_source(&self, query: &RelatedQuery, deadline: Option<Instant>) -> Result<QuerySource> {
        let (vector, source_slot, mut reference_time) = self.source_vector(&query.source, deadline)?;
        let mut signatures = vec![self.source_signature(&query.source, source_slot)];
        let mut named: Vec<Slot> = source_slot.into_iter().collect();
        let (vector, scoring) = if query.positive_ids.is_empty() && query.negative_ids.is_empty() {
            (vector, None)
        } else {
            let positives = self.live_slots(&query.positive_ids)?;
            let negatives = self.live_slots(&query.negative_ids)?;
            for &slot in &positives {
                signatures.push(self.source_signature(&query.source, Some(slot)));
                reference_time = reference_time.max(self.article_at(slot).published_at);
            }
            named.extend(positives.iter().chain(&negatives));
            let liked: Vec<SparseRef<'_>> = std::iter::once(vector.view())
                .filter(|vector| !vector.is_empty())
                .chain(positives.iter().map(|&slot| self.vector_at(slot)))
                .collect();
            let unliked: Vec<SparseRef<'_>> = negatives.iter().map(|&slot| self.vector_at(slot)).collect();
            let contrast = SparseVector::contrast(&liked, &unliked);
            if contrast.has_negative_weights() {
                (contrast.without_negative_weights(), Some(contrast))
            } else {
                (contrast, None)
            }
        };
        Ok(QuerySource {
            vector,
            scoring,
            named,
            reference_time,
            signatures,
        })
    }

    /// The slots of the live articles `ids`; an unknown one is an error.
    fn live_slots(&self, ids: &[String]) -> Result<Vec<Slot>> {
        ids.iter().map(|id| self.slot(id)).collect()
    }

    /// The related stories for `query`, best first; never the source itself, at most `query.k`, fewer when
    /// fewer clear the score floor.
    pub fn related(&self, query: &RelatedQuery) -> Result<Vec<Recommendation>> {
        self.related_until(query, None)
    }

    /// Like [`Engine::related`], but gives up with [`Error::DeadlineExceeded`] once `deadline` has passed
    /// (checked while a draft is analysed and before the search).
    pub fn related_until(&self, query: &RelatedQuery, deadline: Option<Instant>) -> Result<Vec<Recommendation>> {
        let QueryRanking { vector, ranked, .. } = self.rank_query(query, deadline, None)?;
        Ok(ranked
            .into_iter()
            .map(|ranked| self.recommendation(&vector, ranked.slot, ranked.score))
            .collect())
    }

    /// The block of [`Engine::related_until`] and the candidates left out of it, with the reasons: below
    /// the score floor, a near-copy of the source or of a better story, ranked below a full block, or
    /// kept out by the filter (an extra search without it finds those). At most [`LEFT_OUT_LIMIT`] are
    /// listed, most similar first, of which at most [`RUNNERS_UP_LIMIT`] only because the block was full.
    pub fn related_explained_until(&self, query: &RelatedQuery, deadline: Option<Instant>) -> Result<Explanation> {
        let mut left_out = Vec::new();
        let QueryRanking {
            vector,
            projected,
            named,
            ranked,
            searched,
        } = self.rank_query(query, deadline, Some(&mut left_out))?;
        if !vector.is_empty() && !query.filter.is_empty() {
            let excluded = self.excluded(&query.filter, &[]);
            let live_and_not_named = |slot: Slot| !named.contains(&slot) && !self.delta.is_masked(slot);
            let unfiltered = self.nearest(&vector, &projected, searched, &Filter::default(), &live_and_not_named);
            for neighbor in unfiltered {
                let reason = if excluded.contains(&neighbor.slot) {
                    Some(LeftOutReason::ExcludedById)
                } else {
                    self.mismatch(&query.filter, neighbor.slot)
                };
                if let Some(reason) = reason {
                    left_out.push(LeftOutCandidate {
                        slot: neighbor.slot,
                        similarity: neighbor.similarity,
                        reason,
                        near_copy_of: None,
                    });
                }
            }
        }
        left_out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.slot.cmp(&b.slot)));
        let mut runners_up = 0;
        left_out.retain(|candidate| {
            runners_up += usize::from(candidate.reason == LeftOutReason::RankedBelowTheBlock);
            candidate.reason != LeftOutReason::RankedBelowTheBlock || runners_up <= RUNNERS_UP_LIMIT
        });
        left_out.truncate(LEFT_OUT_LIMIT);
        Ok(Explanation {
            stories: ranked
                .iter()
                .map(|ranked| self.recommendation(&vector, ranked.slot, ranked.score))
                .collect(),
            left_out: left_out
                .into_iter()
                .map(|candidate| LeftOut {
                    story: self.recommendation(&vector, candidate.slot, candidate.similarity),
                    reason: candidate.reason,
                    near_copy_of: candidate
                        .near_copy_of
                        .map(|better| self.article_at(better).id.to_owned()),
                })
                .collect(),
        })
    }

    /// Searches and ranks for `query`; with `left_out`, the ranking reports there what it leaves out (of
    /// the last search round).
    fn rank_query(
        &self,
        query: &RelatedQuery,
        deadline: Option<Instant>,
        mut left_out: Option<&mut Vec<LeftOutCandidate>>,
    ) -> Result<QueryRanking> {
        query.validate()?;
        let policy = self.policy.with_controls(&query.controls);
        let QuerySource {
            vector,
            scoring,
            named,
            reference_time,
            signatures,
        } = self.query_source(query, deadline)?;
        check_deadline(deadline, "before the search; it was skipped")?;
        if vector.is_empty() {
            return Ok(QueryRanking {
                vector,
                projected: Vec::new(),
                named,
                ranked: Vec::new(),
                searched: 0,
            });
        }
        let projected = self.base.approximate.projection().project(&vector);
        let dense = (policy.dense_weight > 0.0).then_some(DenseBlend {
            source: &projected,
            weight: policy.dense_weight,
        });
        let excluded = self.excluded(&query.filter, &named);
        let accept =
            |slot: Slot| !excluded.contains(&slot) && !self.delta.is_masked(slot) && self.matches(&query.filter, slot);
        let mut wanted = (query.k + CANDIDATE_HEADROOM) * FIRST_ROUND_FACTOR;
        let ranked = loop {
            let neighbors = self.nearest(&vector, &projected, wanted, &query.filter, &accept);
            let candidates: Vec<Candidate> = neighbors
                .iter()
                .map(|neighbor| Candidate {
                    slot: neighbor.slot,
                    similarity: self.candidate_similarity(neighbor, &scoring, &dense),
                    published_at: self.article_at(neighbor.slot).published_at,
                })
                .collect();
            let relations = EngineRelations {
                engine: self,
                sources: &signatures,
            };
            if let Some(left_out) = left_out.as_deref_mut() {
                left_out.clear();
            }
            let ranked = policy.rank_reporting(
                &candidates,
                query.k,
                reference_time,
                &relations,
                left_out.as_deref_mut(),
            );
            let below_floor = neighbors
                .last()
                .is_some_and(|weakest| weakest.similarity < policy.min_score);
            if ranked.len() == query.k || neighbors.len() < wanted || below_floor || wanted >= MAX_CANDIDATES {
                break ranked;
            }
            wanted = (wanted * 4).min(MAX_CANDIDATES);
        };
        Ok(QueryRanking {
            vector,
            projected,
            named,
            ranked,
            searched: wanted,
        })
    }

    /// The similarity of a neighbour the search found, as the policy ranks it: its cosine to the whole
    /// contrast when negative examples made one (`scoring`), else the search's; blended with the
    /// projections' cosine when `dense` is set.
    fn candidate_similarity(
        &self,
        neighbor: &Neighbor,
        scoring: &Option<SparseVector>,
        dense: &Option<DenseBlend<'_>>,
    ) -> f32 {
        let sparse = match scoring {
            Some(contrast) => self.vector_at(neighbor.slot).dot(contrast.view()),
            None => neighbor.similarity,
        };
        match dense {
            Some(dense) => {
                let projected = self.dense_similarity(dense.source, neighbor.slot);
                (1.0 - dense.weight) * sparse + dense.weight * projected.max(0.0)
            }
            None => sparse,
        }
    }

    /// Cosine of the projection `source` and the stored projection of the article in `slot` (the base's,
    /// or the one a fresh article got when it was applied).
    fn dense_similarity(&self, source: &[f32], slot: Slot) -> f32 {
        let dense = self.base.approximate.dense();
        let row = if (slot as usize) < dense.len() {
            dense.row(slot as usize)
        } else {
            &self.delta.get(slot).expect("slots come from the engine").projection
        };
        crate::index::dense_dot(source, row)
    }

    /// The slots of the live articles that `filter.exclude_ids` names, and `named` (the source and the
    /// examples: never their own results).
    fn excluded(&self, filter: &Filter, named: &[Slot]) -> HashSet<Slot> {
        filter
            .exclude_ids
            .iter()
            .filter_map(|id| self.slot(id).ok())
            .chain(named.iter().copied())
            .collect()
    }

    /// Nearest neighbours among the base and the fresh articles; `projected` is the vector's projection.
    fn nearest(
        &self,
        vector: &SparseVector,
        projected: &[f32],
        k: usize,
        filter: &Filter,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let mut hits = self.nearest_in_base(vector, projected, k, filter, accept);
        hits.extend(self.delta.search(vector, k, accept));
        rank_neighbors(hits, k)
    }

    /// Nearest base neighbours by exact scan when few articles are eligible (see [`SearchStrategy`]),
    /// through the graph otherwise.
    fn nearest_in_base(
        &self,
        vector: &SparseVector,
        projected: &[f32],
        k: usize,
        filter: &Filter,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let scan_limit = match self.search {
            SearchStrategy::Hnsw => return self.base.approximate.search_projected(vector, projected, k, accept),
            SearchStrategy::Exact => usize::MAX,
            SearchStrategy::Auto => EXACT_SCAN_LIMIT,
        };
        if self.base.articles.len() <= scan_limit {
            return self.base.exact.search(vector, k, accept);
        }
        if filter.restricts_metadata() {
            let allowed: Vec<Slot> = (0..self.base.articles.len() as Slot)
                .filter(|&slot| accept(slot))
                .take(scan_limit + 1)
                .collect();
            if allowed.len() <= scan_limit {
                return self.base.exact.search_among(vector, &allowed, k);
            }
        }
        self.base.approximate.search_projected(vector, projected, k, accept)
    }

    /// True when the article in `slot` passes every field of `filter` except `exclude_ids`. Reads the
    /// article's metadata only when the filter restricts it (three string tables, a cache miss each).
    pub fn matches(&self, filter: &Filter, slot: Slot) -> bool {
        self.mismatch(filter, slot).is_none()
    }

    /// Which field of `filter` (other than `exclude_ids`) the article in `slot` fails first, if any.
    fn mismatch(&self, filter: &Filter, slot: Slot) -> Option<LeftOutReason> {
        if !filter.restricts_metadata() {
            return None;
        }
        let article = self.article_at(slot);
        if !(filter.sections.is_empty() || filter.sections.iter().any(|section| section == article.section)) {
            return Some(LeftOutReason::FilteredBySection);
        }
        if !filter
            .lang
            .as_ref()
            .is_none_or(|lang| lang.eq_ignore_ascii_case(article.lang))
        {
            return Some(LeftOutReason::FilteredByLanguage);
        }
        let in_window = filter
            .published_after
            .is_none_or(|after| article.published_at.is_some_and(|at| at >= after))
            && filter
                .published_before
                .is_none_or(|before| article.published_at.is_some_and(|at| at < before));
        (!in_window).then_some(LeftOutReason::FilteredByDate)
    }

    fn recommendation(&self, source: &SparseVector, slot: Slot, score: f32) -> Recommendation {
        let article = self.article_at(slot);
        Recommendation {
            id: article.id.to_owned(),
            title: article.title.to_owned(),
            url: article.url.to_owned(),
            section: article.section.to_owned(),
            published_at: article.published_at,
            score,
            shared_terms: source
                .view()
                .top_shared_terms(self.vector_at(slot), self.policy.explain_terms)
                .into_iter()
                .map(|term| self.surface(term).to_owned())
                .collect(),
        }
    }
}

/// What the ranking policy asks about the candidates of one query: cosine similarity, and copies by the
/// stored signatures ([`crate::near_copy`]).
struct EngineRelations<'a> {
    engine: &'a Engine,
    /// The signatures of the source and the positive examples.
    sources: &'a [CopySignature],
}

impl Relations for EngineRelations<'_> {
    fn similarity(&self, a: Slot, b: Slot) -> f32 {
        self.engine.vector_at(a).dot(self.engine.vector_at(b))
    }

    fn copies_source(&self, slot: Slot) -> bool {
        let signature = self.engine.signature_at(slot);
        self.sources.iter().any(|source| are_copies(&source.0, signature))
    }

    fn copies(&self, a: Slot, b: Slot) -> bool {
        are_copies(self.engine.signature_at(a), self.engine.signature_at(b))
    }
}

/// Hands the heap memory freed so far back to the operating system. The fit's token tables and the
/// spilled bodies are millions of small blocks; glibc keeps freed small blocks for reuse, so without this
/// the graph build would start on top of several gigabytes that nothing uses (measured at 1M articles).
pub(crate) fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap and releases free pages; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Shows `message` on the progress bar for a phase over `length` items; returns when it started.
fn start_phase(progress: &ProgressBar, message: &'static str, length: usize) -> Instant {
    progress.reset();
    progress.set_length(length as u64);
    progress.set_message(message);
    Instant::now()
}

/// Logs how long the phase that began at `started` took.
fn end_phase(started: Instant, what: &'static str, articles: usize) {
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(articles, seconds = format!("{seconds:.1}"), "{what}");
}
