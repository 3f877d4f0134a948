//! Which candidates make the block, in which order? The ranking policy applied after the index returns
//! nearest neighbours: a score floor ("show fewer rather than irrelevant"), a preference for stories
//! published close to the source, and dropping copies of one text. Also the query and result types the
//! CLI, the gRPC layer and evaluation share.
//!
//! **Copies.** A candidate whose text is a near-copy of the source's ([`crate::near_copy`]: word sets,
//! site suffixes off the titles) is dropped; of several copies of one text among the candidates, the
//! best-scoring one is kept and the others are dropped. The best-scoring one, because it is the version
//! the block would show first anyway — the most similar to the source after the time prior — so
//! collapsing never lowers the block's best score, and the choice is deterministic (ties go to the lower
//! slot, the article indexed first). Paraphrases of one story (other wordings, other outlets) are not
//! copies and stay: they are what a related block is for. [`RankingPolicy::duplicate_similarity`], when
//! set, adds the old rule on top: TF-IDF cosine at least that high also counts as a copy.
//!
//! **Time.** A story is more likely to belong to the source's story the closer their publication times
//! are, before or after: a follow-up three days later and the background from the week before both
//! beat a story from another year. The score is the cosine similarity times
//! `1 − w + w · f(|Δt| / τ)`, `Δt` the gap to the source's `published_at` (a draft: now), `τ`
//! [`RankingPolicy::time_scale_hours`], `w` [`RankingPolicy::time_weight`] and `f` the
//! [`TimeShape`] (`1 / (1 + x)` or `e^(−x)`). With an undated source every story gets factor 1 (the prior
//! has nothing to say); with a dated one an undated story gets the floor `1 − w`, as if far away — it
//! cannot be shown to be close, and factor 1 would rank it above every dated story. Ties in score go to
//! the more similar story, then to the lower slot. The scale, weight and shape were chosen on the dev half of
//! og2021-titles and uci-news-stories (README, "Evaluation"). The one-sided recency decay of earlier
//! versions ([`RankingPolicy::recency_half_life_days`]) is still there, off by default.

use serde::{Deserialize, Serialize};

use crate::article::{MAX_LANG_BYTES, MAX_SECTION_BYTES, MAX_TITLE_BYTES, Timestamp, check_id, check_text};
use crate::error::{Error, Result};
use crate::index::Slot;

/// Stories returned when a request asks for 0.
pub const DEFAULT_K: usize = 5;
/// Most stories one request may ask for.
pub const MAX_K: usize = 100;
/// Most ids one filter may exclude.
pub const MAX_EXCLUDE_IDS: usize = 1_000;
/// Most sections one filter may allow.
pub const MAX_FILTER_SECTIONS: usize = 100;
/// Most ids one request may give as `positive_ids`, and as many again as `negative_ids`.
pub const MAX_EXAMPLE_IDS: usize = 100;

/// What to find related stories for.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A stored article, by id; it never appears in its own results.
    Article(String),
    /// Unsaved text, analysed like a stored article.
    Draft(Draft),
}

/// An unsaved article.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draft {
    /// Headline.
    pub title: String,
    /// Text.
    pub body: String,
    /// Language code; empty means German.
    pub lang: String,
}

/// Restrictions on the returned stories; every set field must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Allowed sections (exact match); empty allows all.
    pub sections: Vec<String>,
    /// Required language code; `None` allows all.
    pub lang: Option<String>,
    /// Earliest publication time (inclusive).
    pub published_after: Option<Timestamp>,
    /// Latest publication time (exclusive).
    pub published_before: Option<Timestamp>,
    /// Ids never to return.
    pub exclude_ids: Vec<String>,
}

impl Filter {
    /// True when the filter lets every story through.
    pub fn is_empty(&self) -> bool {
        !self.restricts_metadata() && self.exclude_ids.is_empty()
    }

    /// True when a field other than `exclude_ids` is set: when a story's metadata decides whether it passes.
    pub fn restricts_metadata(&self) -> bool {
        !self.sections.is_empty()
            || self.lang.is_some()
            || self.published_after.is_some()
            || self.published_before.is_some()
    }
}

/// One request for related stories.
///
/// **More than one source.** `positive_ids` are stored articles the stories should be like, besides the
/// source; `negative_ids` ones they should be unlike (a topic page, a reader's history). The search
/// vector is then `2 · mean(positive) − mean(negative)` over the unit TF-IDF vectors of the source and
/// the examples, as Qdrant's `average_vector` recommendation, and a candidate's similarity is its cosine
/// to that contrast: a story sharing the negatives' words loses score. The candidates are searched for
/// with the contrast's positive part (as Rocchio's relevance feedback drops negative weights), since
/// the postings hold non-negative weights. The time prior is centred on the newest of the source and
/// the positive examples (a draft: now), copies of any of them are dropped like copies of the source,
/// and no example is returned.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedQuery {
    /// What the stories should relate to.
    pub source: Source,
    /// How many stories at most, 1 to [`MAX_K`].
    pub k: usize,
    /// Which stories may be returned.
    pub filter: Filter,
    /// More stored articles the stories should be like, at most [`MAX_EXAMPLE_IDS`].
    pub positive_ids: Vec<String>,
    /// Stored articles the stories should be unlike, at most [`MAX_EXAMPLE_IDS`].
    pub negative_ids: Vec<String>,
    /// This request's changes to the server's ranking policy.
    pub controls: RankingControls,
}

/// Per-request settings of the ranking; each one left `None` keeps the server's
/// [`RankingPolicy`] value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RankingControls {
    /// [`RankingPolicy::min_score`].
    pub min_score: Option<f32>,
    /// [`RankingPolicy::time_scale_hours`].
    pub time_scale_hours: Option<f32>,
    /// [`RankingPolicy::diversity`].
    pub diversity: Option<f32>,
}

impl RankingControls {
    /// Checks each set control, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        RankingPolicy::default().with_controls(self).validate()
    }
}

impl RelatedQuery {
    /// A query for the `k` stories related to `source`, unfiltered, with the server's ranking.
    pub fn new(source: Source, k: usize) -> Self {
        Self {
            source,
            k,
            filter: Filter::default(),
            positive_ids: Vec::new(),
            negative_ids: Vec::new(),
            controls: RankingControls::default(),
        }
    }

    /// A query without a source of its own, for stories like `positive_ids` and unlike `negative_ids`
    /// (a topic page, a reader's history): the first positive example is the source, so the result is
    /// the same as with it named as the source. Without a positive example, an error names `field`.
    pub fn from_examples(
        mut positive_ids: Vec<String>,
        negative_ids: Vec<String>,
        k: usize,
        field: &str,
    ) -> Result<Self> {
        if positive_ids.is_empty() {
            return Err(Error::invalid(field, "give a source or at least one positive id"));
        }
        let first = positive_ids.remove(0);
        Ok(Self {
            positive_ids,
            negative_ids,
            ..Self::new(Source::Article(first), k)
        })
    }

    /// Checks the request, naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.k > MAX_K {
            return Err(Error::invalid(
                "k",
                format!("must be between 1 and {MAX_K}, got {}", self.k),
            ));
        }
        match &self.source {
            Source::Draft(draft) => {
                check_text(&draft.title, MAX_TITLE_BYTES, true)
                    .map_err(|reason| Error::invalid("draft.title", reason))?;
                check_text(&draft.lang, MAX_LANG_BYTES, false)
                    .map_err(|reason| Error::invalid("draft.lang", reason))?;
                if draft.title.trim().is_empty() && draft.body.trim().is_empty() {
                    return Err(Error::invalid("draft", "title and body are both empty"));
                }
            }
            Source::Article(id) => check_id(id).map_err(|reason| Error::invalid("article_id", reason))?,
        }
        let filter = &self.filter;
        check_count("filter.sections", filter.sections.len(), MAX_FILTER_SECTIONS)?;
        for section in &filter.sections {
            check_text(section, MAX_SECTION_BYTES, false)
                .map_err(|reason| Error::invalid("filter.sections", reason))?;
        }
        if let Some(lang) = &filter.lang {
            check_text(lang, MAX_LANG_BYTES, false).map_err(|reason| Error::invalid("filter.lang", reason))?;
        }
        check_count("filter.exclude_ids", filter.exclude_ids.len(), MAX_EXCLUDE_IDS)?;
        for id in &filter.exclude_ids {
            check_id(id).map_err(|reason| Error::invalid("filter.exclude_ids", reason))?;
        }
        if let (Some(after), Some(before)) = (self.filter.published_after, self.filter.published_before) {
            if after >= before {
                return Err(Error::invalid(
                    "filter.published_after",
                    "must be earlier than filter.published_before",
                ));
            }
        }
        for (field, ids) in [
            ("positive_ids", &self.positive_ids),
            ("negative_ids", &self.negative_ids),
        ] {
            check_count(field, ids.len(), MAX_EXAMPLE_IDS)?;
            for id in ids {
                check_id(id).map_err(|reason| Error::invalid(field, reason))?;
            }
        }
        if let Some(id) = self.negative_ids.iter().find(|id| self.is_positive(id)) {
            return Err(Error::invalid(
                "negative_ids",
                format!("{id:?} is also the source or one of positive_ids"),
            ));
        }
        self.controls.validate()
    }

    /// True when `id` is the source or one of the positive examples.
    fn is_positive(&self, id: &str) -> bool {
        matches!(&self.source, Source::Article(source) if source == id) || self.positive_ids.iter().any(|p| p == id)
    }
}

fn check_count(field: &str, count: usize, limit: usize) -> Result<()> {
    if count > limit {
        return Err(Error::invalid(field, format!("{count} entries, the limit is {limit}")));
    }
    Ok(())
}

/// One related story as returned to callers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// Article id.
    pub id: String,
    /// Headline.
    pub title: String,
    /// URL.
    pub url: String,
    /// Section.
    pub section: String,
    /// Publication time; JSON output gives whole seconds since the epoch.
    #[serde(serialize_with = "seconds_only")]
    pub published_at: Option<Timestamp>,
    /// Final score in [0, 1]: similarity (the TF-IDF cosine blended with the projections' cosine, see
    /// [`RankingPolicy::dense_weight`]) times the time prior (and the recency decay, if on).
    pub score: f32,
    /// Why it is related: the shared terms that contribute most, most important first.
    pub shared_terms: Vec<String>,
}

/// Serialises a publication time as whole seconds since the epoch, the JSON output's format since v0.
fn seconds_only<S: serde::Serializer>(at: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
    at.map(Timestamp::seconds).serialize(serializer)
}

/// Query-time ranking settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingPolicy {
    /// Candidates whose cosine similarity is below this are never shown.
    pub min_score: f32,
    /// When set, two candidates at least this similar in TF-IDF cosine to each other (or to the source)
    /// also count as copies, besides the text test of [`crate::near_copy`]. `None` (the default): only
    /// the text test decides, so that paraphrases of one story stay.
    pub duplicate_similarity: Option<f32>,
    /// Scale τ in hours of the time-proximity prior around the source's publication time; 0 turns it off.
    pub time_scale_hours: f32,
    /// Share of the score that the time prior can take away, in [0, 1].
    pub time_weight: f32,
    /// How the time prior falls with the gap.
    pub time_shape: TimeShape,
    /// Half-life in days of the one-sided recency decay (older than the source loses); 0 turns it off
    /// (the default: the symmetric time prior replaced it).
    pub recency_half_life_days: f32,
    /// Share of the score that the recency decay can take away, in [0, 1].
    pub recency_weight: f32,
    /// How many shared terms explain each result.
    pub explain_terms: usize,
    /// Diversity of the block in [0, 1], maximal marginal relevance (Carbonell and Goldstein, 1998)
    /// with λ = 1 − diversity: each next story is the candidate with the highest
    /// `(1 − diversity) · score − diversity · s`, `s` its largest TF-IDF cosine to a story already in the
    /// block. 0 (the default) ranks by score alone; the stories keep their scores either way, so with
    /// diversity the scores need not fall down the block.
    pub diversity: f32,
    /// Share of a candidate's similarity taken from the cosine of the LSA projections (the graph's dense
    /// vectors, negative cosines counted as 0) instead of the TF-IDF cosine, in [0, 1]; 0: TF-IDF alone.
    /// The projection relates words that occur together, so it lifts stories told in other words; the
    /// candidates themselves still come from the TF-IDF search. Default [`DEFAULT_DENSE_WEIGHT`].
    pub dense_weight: f32,
}

/// The form of the time-proximity prior, `f(x)` with `x = |Δt| / τ`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeShape {
    /// `1 / (1 + x)`: falls fast at first, then slowly (a story a year away still keeps a little).
    #[default]
    Hyperbolic,
    /// `e^(−x)`: falls to nothing within a few τ.
    Exponential,
}

/// Default of [`RankingPolicy::time_scale_hours`], chosen on the dev halves (README, "Evaluation"): with
/// the hyperbolic shape and weight 1, mean dev P@10 over og2021-titles (de, en) and uci-news-stories was
/// 0.5732 at 1 h, 0.5730 at 2 h, 0.5718 at 3 h, 0.5681 at 6 h, 0.5533 at 24 h and 0.4578 without the
/// prior. 1 to 3 h are a plateau (within 0.0015, favoured by UCI's 36 hours of headlines); 3 h is its
/// mildest end and, of the plateau, the best for both og2021 corpora (which alone would take 6 to 12 h),
/// so it is the default.
pub const DEFAULT_TIME_SCALE_HOURS: f32 = 3.0;
/// Default of [`RankingPolicy::time_weight`], chosen on the dev halves: every scale did best at weight 1
/// (no floor: a story far away in time keeps almost nothing of its score, so any story of the same days
/// that clears the score floor ranks above it; lower it to keep strong old matches).
pub const DEFAULT_TIME_WEIGHT: f32 = 1.0;
/// Default of [`RankingPolicy::dense_weight`], chosen on the dev halves (README, "Evaluation"): mean dev
/// P@10 over og2021-titles (de, en), uci-news-stories, mind-sample and bbc-full was 0.5773 at 0, 0.5855
/// at 0.2, 0.5868 at 0.3, 0.5865 at 0.4 and 0.5855 at 0.6.
pub const DEFAULT_DENSE_WEIGHT: f32 = 0.3;

impl Default for RankingPolicy {
    fn default() -> Self {
        Self {
            min_score: 0.05,
            duplicate_similarity: None,
            time_scale_hours: DEFAULT_TIME_SCALE_HOURS,
            time_weight: DEFAULT_TIME_WEIGHT,
            time_shape: TimeShape::default(),
            recency_half_life_days: 0.0,
            recency_weight: 0.2,
            explain_terms: 5,
            diversity: 0.0,
            dense_weight: DEFAULT_DENSE_WEIGHT,
        }
    }
}

/// How the candidates relate to the source and to one another: what the ranking policy asks of the
/// engine about stored articles.
pub trait Relations {
    /// TF-IDF cosine similarity of two stored articles.
    fn similarity(&self, a: Slot, b: Slot) -> f32;
    /// True when the stored article in `slot` is a near-copy of the source's text.
    fn copies_source(&self, slot: Slot) -> bool;
    /// True when two stored articles are near-copies of one text.
    fn copies(&self, a: Slot, b: Slot) -> bool;
}

/// A nearest neighbour on its way through the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Slot of the stored article.
    pub slot: Slot,
    /// Cosine similarity to the source.
    pub similarity: f32,
    /// Publication time of the candidate.
    pub published_at: Option<Timestamp>,
}

/// A candidate that made the block, with its final score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Slot of the stored article.
    pub slot: Slot,
    /// Final score.
    pub score: f32,
}

/// Why a candidate is not in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftOutReason {
    /// Less similar than [`RankingPolicy::min_score`]: "show fewer rather than irrelevant".
    BelowScoreFloor,
    /// A near-copy of the source's text (or, when set, at least [`RankingPolicy::duplicate_similarity`]
    /// similar to it).
    NearCopyOfSource,
    /// A near-copy of a better-ranked story in the block (or at least
    /// [`RankingPolicy::duplicate_similarity`] similar to it).
    NearCopyOfBetterStory,
    /// Cleared every rule, but `k` better stories filled the block.
    RankedBelowTheBlock,
    /// Outside the filter's sections.
    FilteredBySection,
    /// Not in the filter's language.
    FilteredByLanguage,
    /// Outside the filter's date window (or undated while the filter has one).
    FilteredByDate,
    /// Named in the filter's `exclude_ids`.
    ExcludedById,
}

/// A candidate that did not make the block, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeftOutCandidate {
    /// Slot of the stored article.
    pub slot: Slot,
    /// Cosine similarity to the source.
    pub similarity: f32,
    /// Why it was left out.
    pub reason: LeftOutReason,
    /// For [`LeftOutReason::NearCopyOfBetterStory`]: the story in the block it is a version of.
    pub near_copy_of: Option<Slot>,
}

/// A story left out of the block, as returned to callers.
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut {
    /// The story, with its cosine similarity to the source as `score` (before the time prior)
    /// and the shared terms.
    pub story: Recommendation,
    /// Why it is not in the block.
    pub reason: LeftOutReason,
    /// For [`LeftOutReason::NearCopyOfBetterStory`]: the id of the story in the block it is a version of.
    pub near_copy_of: Option<String>,
}

/// A block with the explanation of what it left out (the editor's preview).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    /// The block, exactly as [`crate::engine::Engine::related`] returns it.
    pub stories: Vec<Recommendation>,
    /// The most similar candidates that were left out, most similar first (see
    /// [`crate::engine::LEFT_OUT_LIMIT`]).
    pub left_out: Vec<LeftOut>,
}

const SECONDS_PER_DAY: f32 = 86_400.0;
const SECONDS_PER_HOUR: f64 = 3_600.0;

impl RankingPolicy {
    /// Checks the settings, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(Error::invalid("min_score", "must be in [0, 1]"));
        }
        if self
            .duplicate_similarity
            .is_some_and(|similarity| !(0.0..=1.0).contains(&similarity))
        {
            return Err(Error::invalid("duplicate_similarity", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.time_weight) {
            return Err(Error::invalid("time_weight", "must be in [0, 1]"));
        }
        if !(self.time_scale_hours >= 0.0 && self.time_scale_hours.is_finite()) {
            return Err(Error::invalid("time_scale_hours", "must be a non-negative number"));
        }
        if !(0.0..=1.0).contains(&self.recency_weight) {
            return Err(Error::invalid("recency_weight", "must be in [0, 1]"));
        }
        if !(self.recency_half_life_days >= 0.0 && self.recency_half_life_days.is_finite()) {
            return Err(Error::invalid(
                "recency_half_life_days",
                "must be a non-negative number",
            ));
        }
        if !(0.0..=1.0).contains(&self.dense_weight) {
            return Err(Error::invalid("dense_weight", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.diversity) {
            return Err(Error::invalid("diversity", "must be in [0, 1]"));
        }
        Ok(())
    }

    /// This policy with the set `controls` of one request in place of its own values.
    pub fn with_controls(&self, controls: &RankingControls) -> RankingPolicy {
        RankingPolicy {
            min_score: controls.min_score.unwrap_or(self.min_score),
            time_scale_hours: controls.time_scale_hours.unwrap_or(self.time_scale_hours),
            diversity: controls.diversity.unwrap_or(self.diversity),
            ..self.clone()
        }
    }

    /// Applies floor, time prior and copy collapsing to `candidates` (any order) and keeps the best `k`.
    /// `reference_time` is when the source was published (or now, for a draft); `relations` says which
    /// stored articles are copies of the source or of one another.
    pub fn rank(
        &self,
        candidates: &[Candidate],
        k: usize,
        reference_time: Option<Timestamp>,
        relations: &impl Relations,
    ) -> Vec<Ranked> {
        self.rank_reporting(candidates, k, reference_time, relations, None)
    }

    /// Like [`RankingPolicy::rank`]; with `left_out` (for previews), also appends every candidate it leaves
    /// out there, with the reason. Without it, the ranking stops at `k` and records nothing.
    pub fn rank_reporting(
        &self,
        candidates: &[Candidate],
        k: usize,
        reference_time: Option<Timestamp>,
        relations: &impl Relations,
        mut left_out: Option<&mut Vec<LeftOutCandidate>>,
    ) -> Vec<Ranked> {
        let explaining = left_out.is_some();
        let mut report = |candidate: &Candidate, reason: LeftOutReason, near_copy_of: Option<Slot>| {
            if let Some(left_out) = left_out.as_deref_mut() {
                left_out.push(LeftOutCandidate {
                    slot: candidate.slot,
                    similarity: candidate.similarity,
                    reason,
                    near_copy_of,
                });
            }
        };
        let mut scored: Vec<(Candidate, f32)> = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            if candidate.similarity < self.min_score {
                report(candidate, LeftOutReason::BelowScoreFloor, None);
            } else if relations.copies_source(candidate.slot)
                || self
                    .duplicate_similarity
                    .is_some_and(|threshold| candidate.similarity >= threshold)
            {
                report(candidate, LeftOutReason::NearCopyOfSource, None);
            } else {
                let prior =
                    self.time_factor(reference_time, candidate) * self.recency_factor(reference_time, candidate);
                scored.push((*candidate, candidate.similarity * prior));
            }
        }
        scored.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.0.similarity.total_cmp(&a.0.similarity))
                .then(a.0.slot.cmp(&b.0.slot))
        });
        let mut kept: Vec<Ranked> = Vec::with_capacity(k);
        let mut next = MarginalRelevance::new(scored.len(), self.diversity);
        while kept.len() < k {
            let Some(position) = next.pick(&scored) else {
                break;
            };
            let (candidate, score) = scored[position];
            let better = kept.iter().find(|better| {
                relations.copies(better.slot, candidate.slot)
                    || self
                        .duplicate_similarity
                        .is_some_and(|threshold| relations.similarity(better.slot, candidate.slot) >= threshold)
            });
            match better {
                Some(better) => report(&candidate, LeftOutReason::NearCopyOfBetterStory, Some(better.slot)),
                None => {
                    kept.push(Ranked {
                        slot: candidate.slot,
                        score,
                    });
                    next.chose(candidate.slot, &scored, relations);
                }
            }
        }
        if explaining {
            while let Some(position) = next.pick(&scored) {
                report(&scored[position].0, LeftOutReason::RankedBelowTheBlock, None);
            }
        }
        kept
    }

    /// The time-proximity prior: 1 for a story published at the reference time, falling towards
    /// `1 - time_weight` with the gap in either direction; 1 when the source is undated or the prior is
    /// off, `1 - time_weight` for an undated story.
    fn time_factor(&self, reference_time: Option<Timestamp>, candidate: &Candidate) -> f32 {
        if self.time_scale_hours == 0.0 || self.time_weight == 0.0 {
            return 1.0;
        }
        let Some(reference) = reference_time else {
            return 1.0;
        };
        let Some(published) = candidate.published_at else {
            return 1.0 - self.time_weight;
        };
        let gap_hours = reference.seconds().abs_diff(published.seconds()) as f64 / SECONDS_PER_HOUR;
        let x = gap_hours / f64::from(self.time_scale_hours);
        let proximity = match self.time_shape {
            TimeShape::Hyperbolic => 1.0 / (1.0 + x),
            TimeShape::Exponential => (-x).exp(),
        } as f32;
        1.0 - self.time_weight + self.time_weight * proximity
    }

    /// 1 for a story as new as the reference (or newer), falling towards `1 - recency_weight` with age.
    fn recency_factor(&self, reference_time: Option<Timestamp>, candidate: &Candidate) -> f32 {
        let (Some(reference), Some(published)) = (reference_time, candidate.published_at) else {
            return 1.0;
        };
        if self.recency_half_life_days == 0.0 {
            return 1.0;
        }
        let age_days = reference.seconds().saturating_sub(published.seconds()).max(0) as f32 / SECONDS_PER_DAY;
        let decay = 0.5f32.powf(age_days / self.recency_half_life_days);
        1.0 - self.recency_weight + self.recency_weight * decay
    }
}

/// The greedy choice of maximal marginal relevance over candidates sorted best first (see
/// [`RankingPolicy::diversity`]). With diversity 0 it hands them out in order and computes nothing.
struct MarginalRelevance {
    diversity: f32,
    /// Whether each candidate was handed out.
    picked: Vec<bool>,
    /// Each candidate's largest TF-IDF cosine to a story in the block (only with diversity).
    redundancy: Vec<f32>,
    /// Candidates before this one were all handed out.
    first_open: usize,
}

impl MarginalRelevance {
    fn new(candidates: usize, diversity: f32) -> Self {
        Self {
            diversity,
            picked: vec![false; candidates],
            redundancy: if diversity > 0.0 {
                vec![0.0; candidates]
            } else {
                Vec::new()
            },
            first_open: 0,
        }
    }

    /// The position of the next candidate to consider, marked as handed out; `None` when none is left.
    /// Of equal values the earlier (better-scoring) candidate goes first.
    fn pick(&mut self, scored: &[(Candidate, f32)]) -> Option<usize> {
        while self.picked.get(self.first_open) == Some(&true) {
            self.first_open += 1;
        }
        let mut best = None;
        if self.diversity == 0.0 {
            best = (self.first_open < scored.len()).then_some(self.first_open);
        } else {
            let mut best_value = f32::NEG_INFINITY;
            let open = scored.iter().zip(&self.redundancy).enumerate().skip(self.first_open);
            for (position, ((_, score), redundancy)) in open {
                let value = (1.0 - self.diversity) * score - self.diversity * redundancy;
                if !self.picked[position] && value > best_value {
                    best = Some(position);
                    best_value = value;
                }
            }
        }
        if let Some(position) = best {
            self.picked[position] = true;
        }
        best
    }

    /// Records that the candidate in `slot` joined the block: the others' redundancy may grow.
    fn chose(&mut self, slot: Slot, scored: &[(Candidate, f32)], relations: &impl Relations) {
        if self.diversity == 0.0 {
            return;
        }
        for (position, (candidate, _)) in scored.iter().enumerate() {
            if !self.picked[position] {
                let similarity = relations.similarity(slot, candidate.slot);
                self.redundancy[position] = self.redundancy[position].max(similarity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_timestamps_do_not_overflow_the_recency_decay() {
        // Found by the pipeline property test: any i64 is a valid `published_at` on the wire.
        let policy = RankingPolicy::default();
        for (reference, published) in [(i64::MAX, i64::MIN), (i64::MIN, i64::MAX), (0, i64::MIN)] {
            let factor = policy.recency_factor(
                Some(Timestamp::from_seconds(reference)),
                &candidate(0, 1.0, Some(published)),
            );
            assert!((1.0 - policy.recency_weight..=1.0).contains(&factor), "{factor}");
        }
    }

    /// Test relations: the listed slots copy the source, the listed pairs copy each other, and every pair
    /// has the given cosine similarity.
    #[derive(Default)]
    struct Pairs {
        source_copies: Vec<Slot>,
        copies: Vec<(Slot, Slot)>,
        similarity: f32,
    }

    impl Relations for Pairs {
        fn similarity(&self, _: Slot, _: Slot) -> f32 {
            self.similarity
        }
        fn copies_source(&self, slot: Slot) -> bool {
            self.source_copies.contains(&slot)
        }
        fn copies(&self, a: Slot, b: Slot) -> bool {
            self.copies.contains(&(a.min(b), a.max(b)))
        }
    }

    fn candidate(slot: Slot, similarity: f32, published_at: Option<i64>) -> Candidate {
        Candidate {
            slot,
            similarity,
            published_at: published_at.map(Timestamp::from_seconds),
        }
    }

    fn query(k: usize) -> RelatedQuery {
        RelatedQuery::new(Source::Article("a".into()), k)
    }

    #[test]
    fn validation_names_the_field() {
        assert!(query(5).validate().is_ok());
        assert!(query(101).validate().unwrap_err().to_string().contains("k"));
        let mut inverted = query(5);
        inverted.filter.published_after = Some(Timestamp::from_seconds(10));
        inverted.filter.published_before = Some(Timestamp::from_seconds(5));
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .contains("filter.published_after")
        );
        let empty_draft = RelatedQuery {
            source: Source::Draft(Draft::default()),
            ..query(5)
        };
        assert!(empty_draft.validate().unwrap_err().to_string().contains("draft"));
    }

    #[test]
    fn every_string_and_list_of_a_query_is_bounded() {
        let field = |query: RelatedQuery| match query.validate() {
            Err(Error::InvalidArgument { field, reason }) => {
                assert!(reason.len() < 200, "{reason}");
                field
            }
            other => panic!("{other:?}"),
        };
        let by_id = |id: String| RelatedQuery {
            source: Source::Article(id),
            ..query(5)
        };
        assert_eq!(field(by_id("x".repeat(17_000))), "article_id");
        assert_eq!(field(by_id("a\0b".into())), "article_id");
        let draft = |title: String, body: &str| RelatedQuery {
            source: Source::Draft(Draft {
                title,
                body: body.into(),
                lang: String::new(),
            }),
            ..query(5)
        };
        assert_eq!(field(draft("T".repeat(MAX_TITLE_BYTES + 1), "")), "draft.title");
        assert!(draft("Titel".into(), "Text").validate().is_ok());
        let mut excluding = query(5);
        excluding.filter.exclude_ids = vec!["a".into(); MAX_EXCLUDE_IDS + 1];
        assert_eq!(field(excluding), "filter.exclude_ids");
        let mut sections = query(5);
        sections.filter.sections = vec!["S".repeat(MAX_SECTION_BYTES + 1)];
        assert_eq!(field(sections), "filter.sections");
        let mut positives = query(5);
        positives.positive_ids = vec!["b".into(); MAX_EXAMPLE_IDS + 1];
        assert_eq!(field(positives), "positive_ids");
        let mut negatives = query(5);
        negatives.negative_ids = vec!["".into()];
        assert_eq!(field(negatives), "negative_ids");
    }

    #[test]
    fn an_example_cannot_be_both_positive_and_negative_and_controls_are_checked() {
        let mut both = query(5);
        both.positive_ids = vec!["b".into()];
        both.negative_ids = vec!["c".into(), "b".into()];
        let error = both.validate().unwrap_err().to_string();
        assert!(error.contains("negative_ids") && error.contains("\"b\""), "{error}");
        both.negative_ids = vec!["a".into()];
        assert!(both.validate().unwrap_err().to_string().contains("the source"));
        both.negative_ids = vec!["c".into()];
        assert!(both.validate().is_ok());
        for (controls, field) in [
            (
                RankingControls {
                    min_score: Some(1.5),
                    ..RankingControls::default()
                },
                "min_score",
            ),
            (
                RankingControls {
                    time_scale_hours: Some(-1.0),
                    ..RankingControls::default()
                },
                "time_scale_hours",
            ),
            (
                RankingControls {
                    time_scale_hours: Some(f32::NAN),
                    ..RankingControls::default()
                },
                "time_scale_hours",
            ),
            (
                RankingControls {
                    diversity: Some(1.01),
                    ..RankingControls::default()
                },
                "diversity",
            ),
        ] {
            let request = RelatedQuery { controls, ..query(5) };
            assert!(request.validate().unwrap_err().to_string().contains(field), "{field}");
        }
    }

    #[test]
    fn controls_replace_only_the_values_they_set() {
        let server = RankingPolicy {
            min_score: 0.1,
            time_weight: 0.5,
            ..RankingPolicy::default()
        };
        assert_eq!(server.with_controls(&RankingControls::default()), server);
        let controlled = server.with_controls(&RankingControls {
            time_scale_hours: Some(48.0),
            diversity: Some(0.3),
            ..RankingControls::default()
        });
        assert_eq!(
            controlled,
            RankingPolicy {
                time_scale_hours: 48.0,
                diversity: 0.3,
                ..server
            }
        );
    }

    /// Relations where the listed pairs have the given cosine similarity, every other pair 0.
    struct Similar(Vec<((Slot, Slot), f32)>);

    impl Relations for Similar {
        fn similarity(&self, a: Slot, b: Slot) -> f32 {
            let pair = (a.min(b), a.max(b));
            self.0
                .iter()
                .find(|(listed, _)| *listed == pair)
                .map_or(0.0, |&(_, s)| s)
        }
        fn copies_source(&self, _: Slot) -> bool {
            false
        }
        fn copies(&self, _: Slot, _: Slot) -> bool {
            false
        }
    }

    #[test]
    fn diversity_lets_a_different_story_past_one_much_like_a_better_one() {
        // 1 and 2 tell one story in other words (cosine 0.8, no copies); 3 is another angle.
        let relations = Similar(vec![((1, 2), 0.8), ((1, 3), 0.1), ((2, 3), 0.1)]);
        let candidates = [
            candidate(1, 0.6, None),
            candidate(2, 0.55, None),
            candidate(3, 0.4, None),
        ];
        let by_score = RankingPolicy::default();
        assert_eq!(slots(&by_score.rank(&candidates, 3, None, &relations)), vec![1, 2, 3]);
        let diverse = RankingPolicy {
            diversity: 0.3,
            ..RankingPolicy::default()
        };
        // After 1: 2 is worth 0.7·0.55 − 0.3·0.8 = 0.145, 3 is worth 0.7·0.4 − 0.3·0.1 = 0.25.
        let ranked = diverse.rank(&candidates, 3, None, &relations);
        assert_eq!(slots(&ranked), vec![1, 3, 2]);
        assert_eq!(ranked[1].score, 0.4, "a story keeps its score");
        // The explained ranking still leaves out the same stories for a full block.
        let mut left_out = Vec::new();
        let explained = diverse.rank_reporting(&candidates, 2, None, &relations, Some(&mut left_out));
        assert_eq!(slots(&explained), vec![1, 3]);
        assert_eq!(left_out.len(), 1);
        assert_eq!(
            (left_out[0].slot, left_out[0].reason),
            (2, LeftOutReason::RankedBelowTheBlock)
        );
    }

    fn slots(ranked: &[Ranked]) -> Vec<Slot> {
        ranked.iter().map(|r| r.slot).collect()
    }

    #[test]
    fn floor_drops_weak_candidates_and_copies_of_the_source_but_keeps_close_paraphrases() {
        let policy = RankingPolicy::default();
        let candidates = [
            candidate(1, 0.9, None),
            candidate(2, 0.3, None),
            candidate(3, 0.01, None),
            candidate(4, 0.95, None),
        ];
        // 4 is a copy of the source's text; 1 is a paraphrase with a high cosine: it stays.
        let relations = Pairs {
            source_copies: vec![4],
            ..Pairs::default()
        };
        assert_eq!(slots(&policy.rank(&candidates, 5, None, &relations)), vec![1, 2]);
        // The old cosine rule, when set, drops the paraphrase as well.
        let cosine = RankingPolicy {
            duplicate_similarity: Some(0.8),
            ..RankingPolicy::default()
        };
        assert_eq!(slots(&cosine.rank(&candidates, 5, None, &relations)), vec![2]);
    }

    #[test]
    fn copies_in_the_block_collapse_to_the_best_scoring_one() {
        let policy = RankingPolicy::default();
        let relations = Pairs {
            copies: vec![(1, 2), (2, 3)],
            ..Pairs::default()
        };
        let ranked = policy.rank(
            &[
                candidate(2, 0.45, None),
                candidate(1, 0.5, None),
                candidate(4, 0.4, None),
                candidate(3, 0.44, None),
            ],
            3,
            None,
            &relations,
        );
        // 2 copies 1 (the better one); 3 copies 2, which is not in the block, so 3 stays.
        assert_eq!(slots(&ranked), vec![1, 3, 4]);
    }

    #[test]
    fn stories_close_in_time_beat_one_from_another_year_on_either_side() {
        let policy = RankingPolicy::default();
        let day = SECONDS_PER_DAY as i64;
        let source = 1_000 * day;
        let candidates = [
            candidate(1, 0.50, Some(source + 365 * day)),
            candidate(2, 0.42, Some(source + 3 * day)),
            candidate(3, 0.42, Some(source - 7 * day)),
            candidate(4, 0.50, Some(source - 400 * day)),
        ];
        let ranked = policy.rank(&candidates, 5, Some(Timestamp::from_seconds(source)), &Pairs::default());
        // The follow-up three days later, then the background a week before, then the stories a year away
        // (the nearer of them first), although those two are more similar in words.
        assert_eq!(slots(&ranked), vec![2, 3, 1, 4]);
        // A dated source: an undated story gets the floor, as if far away; an undated source: no prior.
        let undated = candidate(5, 0.5, None);
        assert_eq!(
            policy.time_factor(Some(Timestamp::from_seconds(source)), &undated),
            1.0 - policy.time_weight
        );
        assert_eq!(policy.time_factor(None, &candidates[0]), 1.0);
        // Symmetric: the same gap before or after gives the same factor.
        let before = policy.time_factor(
            Some(Timestamp::from_seconds(source)),
            &candidate(0, 1.0, Some(source - day)),
        );
        let after = policy.time_factor(
            Some(Timestamp::from_seconds(source)),
            &candidate(0, 1.0, Some(source + day)),
        );
        assert_eq!(before, after);
        assert!(before < 1.0 && before > 1.0 - policy.time_weight, "{before}");
    }

    #[test]
    fn the_time_prior_can_be_switched_off_or_made_exponential() {
        let day = SECONDS_PER_DAY as i64;
        let reference = Some(Timestamp::from_seconds(100 * day));
        let far = candidate(1, 1.0, Some(0));
        let off = RankingPolicy {
            time_scale_hours: 0.0,
            ..RankingPolicy::default()
        };
        assert_eq!(off.time_factor(reference, &far), 1.0);
        let exponential = RankingPolicy {
            time_shape: TimeShape::Exponential,
            time_weight: 1.0,
            ..RankingPolicy::default()
        };
        assert!(exponential.time_factor(reference, &far) < 1e-6);
        let at_tau = candidate(1, 1.0, Some(100 * day - 48 * 3_600));
        let hyperbolic = RankingPolicy {
            time_scale_hours: 48.0,
            time_weight: 1.0,
            ..RankingPolicy::default()
        };
        assert!((hyperbolic.time_factor(reference, &at_tau) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_old_recency_decay_still_works_when_switched_on() {
        let policy = RankingPolicy {
            recency_half_life_days: 30.0,
            time_scale_hours: 0.0,
            ..RankingPolicy::default()
        };
        let day = SECONDS_PER_DAY as i64;
        let reference = Some(Timestamp::from_seconds(100 * day));
        let ranked = policy.rank(
            &[candidate(1, 0.50, Some(10 * day)), candidate(2, 0.48, Some(99 * day))],
            2,
            reference,
            &Pairs::default(),
        );
        assert_eq!(ranked[0].slot, 2);
        assert!(ranked[1].score < 0.5 * 0.85);
    }

    #[test]
    fn the_explained_ranking_keeps_the_same_block_and_says_why_for_the_rest() {
        let policy = RankingPolicy::default();
        let relations = Pairs {
            source_copies: vec![6],
            copies: vec![(1, 2)],
            ..Pairs::default()
        };
        let candidates = [
            candidate(1, 0.5, None),
            candidate(2, 0.45, None),
            candidate(3, 0.4, None),
            candidate(4, 0.35, None),
            candidate(5, 0.01, None),
            candidate(6, 0.9, None),
        ];
        let mut left_out = Vec::new();
        let explained = policy.rank_reporting(&candidates, 2, None, &relations, Some(&mut left_out));
        assert_eq!(explained, policy.rank(&candidates, 2, None, &relations));
        assert_eq!(explained.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![1, 3]);
        let reasons: Vec<(Slot, LeftOutReason, Option<Slot>)> = left_out
            .iter()
            .map(|left| (left.slot, left.reason, left.near_copy_of))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (5, LeftOutReason::BelowScoreFloor, None),
                (6, LeftOutReason::NearCopyOfSource, None),
                (2, LeftOutReason::NearCopyOfBetterStory, Some(1)),
                (4, LeftOutReason::RankedBelowTheBlock, None),
            ]
        );
    }

    #[test]
    fn ties_break_by_slot_so_results_are_deterministic() {
        let policy = RankingPolicy::default();
        let ranked = policy.rank(
            &[candidate(7, 0.4, None), candidate(3, 0.4, None)],
            2,
            None,
            &Pairs::default(),
        );
        assert_eq!(ranked.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![3, 7]);
    }
}
