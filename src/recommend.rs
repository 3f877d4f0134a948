//! Which candidates make the block, in which order? The ranking policy applied after the index returns
//! nearest neighbours: a score floor ("show fewer rather than irrelevant"), a mild preference for recent
//! stories, and collapsing of near-identical versions of one story. Also the query and result types the
//! CLI, the gRPC layer and evaluation share.

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
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedQuery {
    /// What the stories should relate to.
    pub source: Source,
    /// How many stories at most, 1 to [`MAX_K`].
    pub k: usize,
    /// Which stories may be returned.
    pub filter: Filter,
}

impl RelatedQuery {
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
        Ok(())
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
    /// Final score in [0, 1]: cosine similarity adjusted for recency.
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
    /// Two candidates at least this similar to each other (or to the source) are versions of one story:
    /// only the better one is kept.
    pub duplicate_similarity: f32,
    /// Half-life in days of the recency preference; 0 turns it off.
    pub recency_half_life_days: f32,
    /// Share of the score that recency can take away, in [0, 1].
    pub recency_weight: f32,
    /// How many shared terms explain each result.
    pub explain_terms: usize,
}

impl Default for RankingPolicy {
    fn default() -> Self {
        Self {
            min_score: 0.05,
            duplicate_similarity: 0.8,
            recency_half_life_days: 30.0,
            recency_weight: 0.2,
            explain_terms: 5,
        }
    }
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
    /// At least [`RankingPolicy::duplicate_similarity`] similar to the source: a version of it.
    NearCopyOfSource,
    /// At least [`RankingPolicy::duplicate_similarity`] similar to a better-ranked story in the block.
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
    /// The story, with its cosine similarity to the source as `score` (before any recency adjustment)
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

impl RankingPolicy {
    /// Checks the settings, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(Error::invalid("min_score", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.duplicate_similarity) {
            return Err(Error::invalid("duplicate_similarity", "must be in [0, 1]"));
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
        Ok(())
    }

    /// Applies floor, recency and duplicate collapsing to `candidates` (any order) and keeps the best `k`.
    /// `reference_time` is when the source was published (or now, for a draft); `similarity` compares two
    /// stored articles.
    pub fn rank(
        &self,
        candidates: &[Candidate],
        k: usize,
        reference_time: Option<Timestamp>,
        similarity: impl Fn(Slot, Slot) -> f32,
    ) -> Vec<Ranked> {
        self.rank_reporting(candidates, k, reference_time, similarity, None)
    }

    /// Like [`RankingPolicy::rank`]; with `left_out` (for previews), also appends every candidate it leaves
    /// out there, with the reason. Without it, the ranking stops at `k` and records nothing.
    pub fn rank_reporting(
        &self,
        candidates: &[Candidate],
        k: usize,
        reference_time: Option<Timestamp>,
        similarity: impl Fn(Slot, Slot) -> f32,
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
            } else if candidate.similarity >= self.duplicate_similarity {
                report(candidate, LeftOutReason::NearCopyOfSource, None);
            } else {
                scored.push((
                    *candidate,
                    candidate.similarity * self.recency_factor(reference_time, candidate),
                ));
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.slot.cmp(&b.0.slot)));
        let mut kept: Vec<Ranked> = Vec::with_capacity(k);
        for (candidate, score) in scored {
            if kept.len() == k {
                if !explaining {
                    break;
                }
                report(&candidate, LeftOutReason::RankedBelowTheBlock, None);
                continue;
            }
            let better = kept
                .iter()
                .find(|better| similarity(better.slot, candidate.slot) >= self.duplicate_similarity);
            match better {
                Some(better) => report(&candidate, LeftOutReason::NearCopyOfBetterStory, Some(better.slot)),
                None => kept.push(Ranked {
                    slot: candidate.slot,
                    score,
                }),
            }
        }
        kept
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

    fn candidate(slot: Slot, similarity: f32, published_at: Option<i64>) -> Candidate {
        Candidate {
            slot,
            similarity,
            published_at: published_at.map(Timestamp::from_seconds),
        }
    }

    fn query(k: usize) -> RelatedQuery {
        RelatedQuery {
            source: Source::Article("a".into()),
            k,
            filter: Filter::default(),
        }
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
    }

    #[test]
    fn floor_drops_weak_candidates_and_near_copies_of_the_source() {
        let policy = RankingPolicy::default();
        let ranked = policy.rank(
            &[
                candidate(1, 0.9, None),
                candidate(2, 0.3, None),
                candidate(3, 0.01, None),
            ],
            5,
            None,
            |_, _| 0.0,
        );
        assert_eq!(ranked.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn near_identical_candidates_collapse_to_the_better_one() {
        let policy = RankingPolicy::default();
        let pair_similarity = |a: Slot, b: Slot| if a.min(b) == 1 && a.max(b) == 2 { 0.95 } else { 0.1 };
        let ranked = policy.rank(
            &[
                candidate(1, 0.5, None),
                candidate(2, 0.45, None),
                candidate(3, 0.4, None),
            ],
            3,
            None,
            pair_similarity,
        );
        assert_eq!(ranked.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn recent_stories_win_a_close_call() {
        let policy = RankingPolicy::default();
        let day = SECONDS_PER_DAY as i64;
        let reference = Some(Timestamp::from_seconds(100 * day));
        let ranked = policy.rank(
            &[candidate(1, 0.50, Some(10 * day)), candidate(2, 0.48, Some(99 * day))],
            2,
            reference,
            |_, _| 0.0,
        );
        assert_eq!(ranked[0].slot, 2);
        assert!(ranked[1].score < 0.5 * 0.85);
    }

    #[test]
    fn the_explained_ranking_keeps_the_same_block_and_says_why_for_the_rest() {
        let policy = RankingPolicy::default();
        let pair_similarity = |a: Slot, b: Slot| if a.min(b) == 1 && a.max(b) == 2 { 0.95 } else { 0.1 };
        let candidates = [
            candidate(1, 0.5, None),
            candidate(2, 0.45, None),
            candidate(3, 0.4, None),
            candidate(4, 0.35, None),
            candidate(5, 0.01, None),
            candidate(6, 0.9, None),
        ];
        let mut left_out = Vec::new();
        let explained = policy.rank_reporting(&candidates, 2, None, pair_similarity, Some(&mut left_out));
        assert_eq!(explained, policy.rank(&candidates, 2, None, pair_similarity));
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
        let ranked = policy.rank(&[candidate(7, 0.4, None), candidate(3, 0.4, None)], 2, None, |_, _| 0.0);
        assert_eq!(ranked.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![3, 7]);
    }
}
