//! Which words has the archive learned since the snapshot? [`LiveTerms`]: the terms that the snapshot's
//! vocabulary lacks, first seen in a live upsert. Each gets an id after the vocabulary's and a document
//! frequency that upserts, updates and deletes keep right, so that a new name relates two fresh articles
//! at once; its idf is smoothed as at fit time, over the live article count. A rebuild folds the terms
//! into the vocabulary (pruned by `min_df` and `max_df_ratio` as every term is). A persistent value, like
//! the delta it belongs with (see [`crate::delta`]): cheap to clone, each commit changes its own version.

use std::hash::BuildHasherDefault;

use imbl::shared_ptr::DefaultSharedPtr;
use rustc_hash::FxHasher;

use crate::sparse::{SparseVector, TermId};

/// Terms first seen after the snapshot, with their live document frequencies.
#[derive(Clone, Debug, Default)]
pub struct LiveTerms {
    /// The id of the first live term: the vocabulary's size.
    first_id: TermId,
    id_by_key: imbl::GenericHashMap<String, TermId, BuildHasherDefault<FxHasher>, DefaultSharedPtr>,
    /// By `id - first_id`: the term as first written, for explanations.
    surfaces: imbl::Vector<String>,
    /// By `id - first_id`: live articles holding the term.
    document_frequencies: imbl::Vector<u32>,
}

impl LiveTerms {
    /// No live term yet, over a vocabulary of `vocabulary_len` terms.
    pub fn new(vocabulary_len: usize) -> Self {
        Self {
            first_id: vocabulary_len as TermId,
            ..Self::default()
        }
    }

    /// Live terms so far (including those no live article holds any more).
    pub fn len(&self) -> usize {
        self.surfaces.len()
    }

    /// True before the first live term.
    pub fn is_empty(&self) -> bool {
        self.surfaces.is_empty()
    }

    /// True when `term` is a live term rather than one of the vocabulary.
    pub fn holds(&self, term: TermId) -> bool {
        term >= self.first_id
    }

    /// The id of a live term.
    pub fn id(&self, key: &str) -> Option<TermId> {
        self.id_by_key.get(key).copied()
    }

    /// The id of `key`, given one (with `surface` for explanations) if it is new.
    pub fn intern(&mut self, key: String, surface: String) -> TermId {
        if let Some(id) = self.id(&key) {
            return id;
        }
        let id = self.first_id + self.surfaces.len() as TermId;
        self.id_by_key.insert(key, id);
        self.surfaces.push_back(surface);
        self.document_frequencies.push_back(0);
        id
    }

    /// How a live term was first written.
    pub fn surface(&self, term: TermId) -> &str {
        &self.surfaces[self.index(term)]
    }

    /// Live articles holding `term`.
    pub fn document_frequency(&self, term: TermId) -> u32 {
        self.document_frequencies[self.index(term)]
    }

    /// Smoothed inverse document frequency of a live term among `live_articles`, as at fit time:
    /// `ln((1 + n) / (1 + df)) + 1`.
    pub fn idf(&self, term: TermId, live_articles: usize) -> f32 {
        let df = self.document_frequency(term) as f32;
        ((1.0 + live_articles as f32) / (1.0 + df)).ln() + 1.0
    }

    /// Counts a new live article holding `terms` (each once).
    pub fn add_document(&mut self, terms: impl IntoIterator<Item = TermId>) {
        for term in terms {
            let index = self.index(term);
            self.document_frequencies[index] += 1;
        }
    }

    /// Uncounts a live article that is replaced or deleted: the live terms of its `vector`.
    pub fn remove_document(&mut self, vector: &SparseVector) {
        for (term, _) in vector.iter() {
            if self.holds(term) {
                let index = self.index(term);
                self.document_frequencies[index] -= 1;
            }
        }
    }

    fn index(&self, term: TermId) -> usize {
        (term - self.first_id) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_term_gets_one_id_after_the_vocabulary_and_counts_its_documents() {
        let mut terms = LiveTerms::new(100);
        let zyphrax = terms.intern("zyphrax".into(), "Zyphrax".into());
        assert_eq!(zyphrax, 100);
        assert_eq!(terms.intern("zyphrax".into(), "ZYPHRAX".into()), 100, "one id per key");
        assert_eq!(terms.surface(zyphrax), "Zyphrax", "as first written");
        assert!(terms.holds(zyphrax) && !terms.holds(99));

        terms.add_document([zyphrax]);
        let once = terms.idf(zyphrax, 1_000);
        terms.add_document([zyphrax]);
        assert_eq!(terms.document_frequency(zyphrax), 2);
        assert!(terms.idf(zyphrax, 1_000) < once, "a commoner term weighs less");

        terms.remove_document(&SparseVector::from_pairs(vec![(7, 1.0), (zyphrax, 0.5)]));
        assert_eq!(terms.document_frequency(zyphrax), 1);
        assert_eq!(terms.idf(zyphrax, 1_000), once);
    }
}
