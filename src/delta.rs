//! What changed since the snapshot was built? Live upserts and deletes kept beside the immutable base
//! index until the next rebuild folds them in: base articles that were replaced or deleted are masked
//! (filtered out during every search), and new or updated articles sit in a small fresh segment that is
//! searched exactly. Fresh articles get slots after the base's, so the rest of the engine sees one slot space.
//!
//! The delta is a persistent value (`imbl`'s structurally shared maps and vectors): cloning it is cheap and
//! a change to the clone copies only the path it touches, so each commit makes a new version while queries
//! go on reading the one they started with.

use std::hash::BuildHasherDefault;
use std::sync::Arc;

use imbl::shared_ptr::DefaultSharedPtr;
use rustc_hash::FxHasher;

use crate::article::Article;
use crate::index::{Neighbor, Slot};
use crate::sparse::SparseVector;

type FxBuild = BuildHasherDefault<FxHasher>;

/// A fresh article with its vector.
pub type FreshArticle = (Article, SparseVector);

/// Changes on top of a base of `base_len` slots.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    base_len: usize,
    masked: imbl::GenericHashSet<Slot, FxBuild, DefaultSharedPtr>,
    /// Slot `base_len + i` is `fresh[i]`; `None` once replaced or deleted again.
    fresh: imbl::Vector<Option<Arc<FreshArticle>>>,
    fresh_by_id: imbl::GenericHashMap<String, Slot, FxBuild, DefaultSharedPtr>,
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

    /// Stores `article` with its `vector`, replacing any fresh version and masking `base_slot`.
    pub fn upsert(&mut self, article: Article, vector: SparseVector, base_slot: Option<Slot>) {
        self.remove_fresh(&article.id);
        if let Some(slot) = base_slot {
            self.masked.insert(slot);
        }
        let slot = (self.base_len + self.fresh.len()) as Slot;
        self.fresh_by_id.insert(article.id.clone(), slot);
        self.fresh.push_back(Some(Arc::new((article, vector))));
        self.changes += 1;
    }

    /// Removes `id`: its fresh version and the base article in `base_slot`. Returns whether anything was live.
    pub fn delete(&mut self, id: &str, base_slot: Option<Slot>) -> bool {
        let fresh = self.remove_fresh(id);
        let base = base_slot.is_some_and(|slot| self.masked.insert(slot).is_none());
        self.changes += 1;
        fresh || base
    }

    fn remove_fresh(&mut self, id: &str) -> bool {
        let Some(slot) = self.fresh_by_id.remove(id) else {
            return false;
        };
        self.fresh.set(slot as usize - self.base_len, None);
        true
    }

    /// Live fresh articles in slot order.
    pub fn live(&self) -> impl Iterator<Item = (Slot, &Article, &SparseVector)> {
        self.fresh.iter().enumerate().filter_map(|(index, entry)| {
            let (article, vector) = entry.as_deref()?;
            Some(((self.base_len + index) as Slot, article, vector))
        })
    }

    /// Fresh articles that `accept` lets through, scored against `query` (similarity above 0 only).
    pub fn search(&self, query: &SparseVector, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        self.live()
            .filter(|&(slot, _, _)| accept(slot))
            .map(|(slot, _, vector)| Neighbor {
                slot,
                similarity: query.dot(vector),
            })
            .filter(|hit| hit.similarity > 0.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;

    fn article(id: &str) -> Article {
        test_article(id, id, "")
    }

    fn vector(term: u32) -> SparseVector {
        SparseVector::from_pairs(vec![(term, 1.0)])
    }

    #[test]
    fn an_update_masks_the_base_and_replaces_the_fresh_version() {
        let mut delta = Delta::new(10);
        delta.upsert(article("a"), vector(1), Some(3));
        delta.upsert(article("a"), vector(2), Some(3));
        assert!(delta.is_masked(3));
        assert_eq!(delta.slot("a"), Some(11));
        assert!(delta.get(10).is_none(), "the first fresh version is gone");
        assert_eq!(delta.fresh_count(), 1);
        assert_eq!(delta.search(&vector(2), &|_| true).len(), 1);
        assert!(delta.search(&vector(1), &|_| true).is_empty());
    }

    #[test]
    fn a_clone_keeps_its_version_while_the_original_changes() {
        let mut delta = Delta::new(10);
        delta.upsert(article("a"), vector(1), Some(3));
        let version = delta.clone();
        delta.upsert(article("b"), vector(2), Some(4));
        delta.delete("a", Some(3));
        assert_eq!((version.fresh_count(), version.masked_count()), (1, 1));
        assert!(version.slot("a").is_some() && !version.is_masked(4));
        assert_eq!((delta.fresh_count(), delta.masked_count()), (1, 2));
        assert!(delta.slot("a").is_none());
    }

    #[test]
    fn delete_reports_whether_anything_was_live() {
        let mut delta = Delta::new(5);
        delta.upsert(article("new"), vector(1), None);
        assert!(delta.delete("new", None));
        assert!(!delta.delete("new", None));
        assert!(delta.delete("old", Some(2)));
        assert!(!delta.delete("old", Some(2)));
        assert_eq!(delta.live().count(), 0);
        assert_eq!(delta.change_count(), 5);
    }
}
