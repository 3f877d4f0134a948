//! What changed since the snapshot was built? Live upserts and deletes kept beside the immutable base
//! index until the next rebuild folds them in: base articles that were replaced or deleted are masked
//! (filtered out during every search), and new or updated articles sit in a fresh segment with postings
//! of its own. Fresh articles get slots after the base's, so the rest of the engine sees one slot space.
//!
//! **Searching the fresh segment** costs the same however many changes there are: like the base's pruned
//! scan (see [`crate::index::ApproximateIndex`]), it reads the query's [`FRESH_QUERY_TERMS`] heaviest terms,
//! each through its newest [`FRESH_POSTINGS_PER_TERM`] postings, and re-ranks the
//! [`FRESH_CANDIDATES`] best partial scores by the exact cosine. Until a term's fresh postings outgrow that
//! budget the result is exact; beyond it the newest articles are the ones read, which news favours anyway.
//! Terms first seen live ([`crate::tfidf::LiveTerms`]) have postings here like any other.
//!
//! The delta is a persistent value: cloning it is cheap and each commit makes a new version while queries
//! go on reading the one they started with. Its articles and masks are `imbl`'s structurally shared maps
//! and vectors (a change copies only the path it touches); its postings, a few hundred per article, are
//! one append-only `FreshPostings` store shared by all versions, each reading only the slots it holds.

mod postings;
mod texts;

use std::hash::BuildHasherDefault;
use std::sync::Arc;

use imbl::shared_ptr::DefaultSharedPtr;
use rustc_hash::FxHasher;

use crate::article::Article;
use crate::index::{Neighbor, Slot, rank_neighbors};
use crate::sparse::{SparseVector, TermId};
use postings::FreshPostings;
pub use texts::{FreshText, FreshTexts, StoredText};

type FxBuild = BuildHasherDefault<FxHasher>;

/// A fresh article with its vector, and where its body and token counts are.
#[derive(Clone, Debug, PartialEq)]
pub struct FreshArticle {
    /// The article as upserted, but with an empty body: the body is in `text`.
    pub article: Article,
    /// Its TF-IDF vector.
    pub vector: SparseVector,
    /// Its body and its tokens with their counts (what a rebuild learns from instead of the text), in the
    /// base's [`FreshTexts`].
    pub text: FreshText,
    /// Its copy signature, computed when it was prepared ([`crate::near_copy`]).
    pub signature: crate::near_copy::CopySignature,
    /// Its vector's dense projection (the base's [`crate::projection::Projection`]), computed when it
    /// was applied, so that the dense half of the similarity blend reads it as it reads the base's.
    pub projection: Box<[f32]>,
}

/// Query terms a fresh-segment search reads, heaviest first (as the base's pruned scan).
pub const FRESH_QUERY_TERMS: usize = 64;

/// Postings read per query term in the fresh segment, newest first.
pub const FRESH_POSTINGS_PER_TERM: usize = 2_048;

/// Fresh candidates re-ranked by the exact cosine (at least `k`).
pub const FRESH_CANDIDATES: usize = 400;

/// Changes on top of a base of `base_len` slots.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    base_len: usize,
    masked: imbl::GenericHashSet<Slot, FxBuild, DefaultSharedPtr>,
    /// Slot `base_len + i` is `fresh[i]`; `None` once replaced or deleted again.
    fresh: imbl::Vector<Option<Arc<FreshArticle>>>,
    fresh_by_id: imbl::GenericHashMap<String, Slot, FxBuild, DefaultSharedPtr>,
    /// For each term, the fresh slots whose vector holds it with its weight there; slots replaced or
    /// deleted since stay until the next rebuild and are skipped, slots at or past this version's end
    /// belong to later versions.
    postings: Arc<FreshPostings>,
    changes: usize,
}

impl Delta {
    /// An empty delta over a base of `base_len` articles.
    pub fn new(base_len: usize) -> Self {
        Self {
            base_len,
            ..Self::default()
        }
    }

    /// Changes applied since the base was built.
    pub fn change_count(&self) -> usize {
        self.changes
    }

    /// Live articles in the fresh segment.
    pub fn fresh_count(&self) -> usize {
        self.fresh_by_id.len()
    }

    /// Base articles no longer live.
    pub fn masked_count(&self) -> usize {
        self.masked.len()
    }

    /// True when the base article in `slot` was replaced or deleted.
    pub fn is_masked(&self, slot: Slot) -> bool {
        !self.masked.is_empty() && self.masked.contains(&slot)
    }

    /// The live fresh slot of `id`, if the article was upserted since the base.
    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.fresh_by_id.get(id).copied()
    }

    /// The fresh article and vector in `slot` (a slot at or after the base's end).
    pub fn get(&self, slot: Slot) -> Option<&FreshArticle> {
        self.fresh.get(slot as usize - self.base_len)?.as_deref()
    }

    /// Stores `fresh`, replacing any fresh version of its article and masking `base_slot`.
    pub fn upsert(&mut self, fresh: FreshArticle, base_slot: Option<Slot>) {
        self.remove_fresh(&fresh.article.id);
        if let Some(slot) = base_slot {
            self.masked.insert(slot);
        }
        let slot = self.postings.append(self.end(), &fresh.vector);
        while self.end() < slot {
            self.fresh.push_back(None);
        }
        self.fresh_by_id.insert(fresh.article.id.clone(), slot);
        self.fresh.push_back(Some(Arc::new(fresh)));
        self.changes += 1;
    }

    /// Removes `id`: its fresh version and the base article in `base_slot`. Returns whether anything was live.
    pub fn delete(&mut self, id: &str, base_slot: Option<Slot>) -> bool {
        let fresh = self.remove_fresh(id);
        let base = base_slot.is_some_and(|slot| self.masked.insert(slot).is_none());
        self.changes += 1;
        fresh || base
    }

    /// One past the last slot this version holds.
    fn end(&self) -> Slot {
        (self.base_len + self.fresh.len()) as Slot
    }

    fn remove_fresh(&mut self, id: &str) -> bool {
        let Some(slot) = self.fresh_by_id.remove(id) else {
            return false;
        };
        self.fresh.set(slot as usize - self.base_len, None);
        true
    }

    /// Live fresh articles in slot order.
    pub fn live(&self) -> impl Iterator<Item = (Slot, &FreshArticle)> {
        self.fresh
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| Some(((self.base_len + index) as Slot, entry.as_deref()?)))
    }

    /// The `k` fresh articles most similar to `query` that `accept` lets through (similarity above 0
    /// only), best first; found through the fresh postings within the budget the module docs describe.
    pub fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        if self.fresh_by_id.is_empty() {
            return Vec::new();
        }
        let mut terms: Vec<(TermId, f32)> = query.iter().collect();
        if terms.len() > FRESH_QUERY_TERMS {
            terms.select_nth_unstable_by(FRESH_QUERY_TERMS - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            terms.truncate(FRESH_QUERY_TERMS);
        }
        let mut partial: rustc_hash::FxHashMap<Slot, f32> = rustc_hash::FxHashMap::default();
        let end = self.end();
        for (term, weight) in terms {
            self.postings
                .visit_newest(term, end, FRESH_POSTINGS_PER_TERM, |slot, stored| {
                    *partial.entry(slot).or_default() += weight * stored;
                });
        }
        let candidates = partial
            .into_iter()
            .filter(|&(slot, _)| self.get(slot).is_some() && accept(slot))
            .map(|(slot, similarity)| Neighbor { slot, similarity })
            .collect();
        let exact = rank_neighbors(candidates, FRESH_CANDIDATES.max(k))
            .into_iter()
            .map(|candidate| Neighbor {
                slot: candidate.slot,
                similarity: query.dot(&self.get(candidate.slot).expect("a live fresh slot").vector),
            })
            .collect();
        rank_neighbors(exact, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;
    use crate::tfidf::ArticleTokens;

    fn article(id: &str) -> Article {
        test_article(id, id, "")
    }

    fn vector(term: u32) -> SparseVector {
        SparseVector::from_pairs(vec![(term, 1.0)])
    }

    fn fresh(id: &str, vector: SparseVector) -> FreshArticle {
        FreshArticle {
            article: article(id),
            text: FreshText::InMemory(Box::new((String::new(), ArticleTokens::default()))),
            vector,
            signature: crate::near_copy::CopySignature::of(id, ""),
            projection: Box::default(),
        }
    }

    #[test]
    fn an_update_masks_the_base_and_replaces_the_fresh_version() {
        let mut delta = Delta::new(10);
        delta.upsert(fresh("a", vector(1)), Some(3));
        delta.upsert(fresh("a", vector(2)), Some(3));
        assert!(delta.is_masked(3));
        assert_eq!(delta.slot("a"), Some(11));
        assert!(delta.get(10).is_none(), "the first fresh version is gone");
        assert_eq!(delta.fresh_count(), 1);
        assert_eq!(delta.search(&vector(2), 10, &|_| true).len(), 1);
        assert!(delta.search(&vector(1), 10, &|_| true).is_empty());
    }

    #[test]
    fn a_clone_keeps_its_version_while_the_original_changes() {
        let mut delta = Delta::new(10);
        delta.upsert(fresh("a", vector(1)), Some(3));
        let version = delta.clone();
        delta.upsert(fresh("b", vector(2)), Some(4));
        delta.delete("a", Some(3));
        assert_eq!((version.fresh_count(), version.masked_count()), (1, 1));
        assert!(version.slot("a").is_some() && !version.is_masked(4));
        assert_eq!((delta.fresh_count(), delta.masked_count()), (1, 2));
        assert!(delta.slot("a").is_none());
        assert!(
            version.search(&vector(2), 10, &|_| true).is_empty(),
            "b came after this version"
        );
        assert_eq!(version.search(&vector(1), 10, &|_| true).len(), 1);
    }

    #[test]
    fn a_discarded_version_leaves_nothing_behind() {
        let mut delta = Delta::new(10);
        let mut discarded = delta.clone();
        discarded.upsert(fresh("x", vector(1)), None);
        delta.upsert(fresh("y", vector(2)), None);
        assert_eq!(delta.slot("y"), Some(11), "the discarded version's slot is not reused");
        assert!(delta.search(&vector(1), 10, &|_| true).is_empty());
        assert_eq!(delta.search(&vector(2), 10, &|_| true).len(), 1);
        assert_eq!(delta.live().count(), 1);
    }

    #[test]
    fn the_fresh_postings_find_what_a_full_scan_finds_within_their_budget() {
        let mut delta = Delta::new(1_000);
        let vector_of = |i: u32| {
            SparseVector::from_pairs(
                (0..12)
                    .map(|j| ((i * 7 + j * 13) % 97, 1.0 + ((i + j) % 5) as f32))
                    .collect(),
            )
        };
        for i in 0..300 {
            delta.upsert(fresh(&format!("f-{i}"), vector_of(i)), None);
        }
        delta.upsert(fresh("f-7", vector_of(1_234)), None);
        let query = vector_of(7);
        let accept = |slot: Slot| slot % 3 != 0;
        let scanned: Vec<Neighbor> = delta
            .live()
            .filter(|&(slot, _)| accept(slot))
            .map(|(slot, fresh)| Neighbor {
                slot,
                similarity: query.dot(&fresh.vector),
            })
            .filter(|hit| hit.similarity > 0.0)
            .collect();
        let expected = rank_neighbors(scanned, 10);
        assert_eq!(expected.len(), 10);
        assert_eq!(delta.search(&query, 10, &accept), expected);
    }

    #[test]
    fn delete_reports_whether_anything_was_live() {
        let mut delta = Delta::new(5);
        delta.upsert(fresh("new", vector(1)), None);
        assert!(delta.delete("new", None));
        assert!(!delta.delete("new", None));
        assert!(delta.delete("old", Some(2)));
        assert!(!delta.delete("old", Some(2)));
        assert_eq!(delta.live().count(), 0);
        assert_eq!(delta.change_count(), 5);
    }
}
