//! What does a vectorised article look like? A sparse vector of (term, weight) pairs, sorted by term id and
//! L2-normalised, so that the dot product of two vectors is their cosine similarity.

use serde::{Deserialize, Serialize};

/// Index of a term in the vocabulary.
pub type TermId = u32;

/// A sparse vector. Invariants: `terms` is strictly increasing, `terms.len() == weights.len()`, and (after
/// [`SparseVector::normalized`]) the weights have unit L2 norm, or the vector is empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    terms: Vec<TermId>,
    weights: Vec<f32>,
}

impl SparseVector {
    /// Builds a vector from (term, weight) pairs in any order; weights of repeated terms are summed and zero
    /// weights dropped. The result is L2-normalised.
    pub fn from_pairs(mut pairs: Vec<(TermId, f32)>) -> Self {
        pairs.sort_unstable_by_key(|&(term, _)| term);
        let mut terms = Vec::with_capacity(pairs.len());
        let mut weights: Vec<f32> = Vec::with_capacity(pairs.len());
        for (term, weight) in pairs {
            if terms.last() == Some(&term) {
                *weights.last_mut().expect("weights and terms have equal length") += weight;
            } else {
                terms.push(term);
                weights.push(weight);
            }
        }
        Self { terms, weights }.without_zeros().normalized()
    }

    fn without_zeros(self) -> Self {
        let (terms, weights) = self
            .terms
            .into_iter()
            .zip(self.weights)
            .filter(|&(_, weight)| weight != 0.0)
            .unzip();
        Self { terms, weights }
    }

    /// Scales the vector to unit L2 norm (an empty or all-zero vector stays as it is).
    pub fn normalized(mut self) -> Self {
        let norm = self.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for weight in &mut self.weights {
                *weight /= norm;
            }
        }
        self
    }

    /// The vector borrowed as a [`SparseRef`], the form stored vectors take.
    pub fn view(&self) -> SparseRef<'_> {
        SparseRef {
            terms: &self.terms,
            weights: &self.weights,
        }
    }

    /// Number of non-zero entries.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when no term has weight.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The (term, weight) entries in term order.
    pub fn iter(&self) -> impl Iterator<Item = (TermId, f32)> + '_ {
        self.view().iter()
    }

    /// Dot product; the cosine similarity for normalised vectors.
    pub fn dot(&self, other: &SparseVector) -> f32 {
        self.view().dot(other.view())
    }

    /// A query for stories like `liked` and unlike `unliked`: `2 · mean(liked) − mean(unliked)`, as
    /// Qdrant's `average_vector` recommendation, normalised. Terms only the unliked weigh get a negative
    /// weight: a story sharing them loses score. Empty when nothing is left.
    pub fn contrast(liked: &[SparseRef<'_>], unliked: &[SparseRef<'_>]) -> SparseVector {
        let mut pairs = Vec::new();
        for (vectors, scale) in [(liked, 2.0), (unliked, -1.0)] {
            let share = scale / vectors.len().max(1) as f32;
            pairs.extend(
                vectors
                    .iter()
                    .flat_map(|vector| vector.iter().map(|(term, weight)| (term, share * weight))),
            );
        }
        SparseVector::from_pairs(pairs)
    }

    /// The vector with its negative weights dropped, normalised again: what the postings (non-negative
    /// weights, pruned by them) can search for, as Rocchio's relevance feedback drops negative weights.
    pub fn without_negative_weights(&self) -> SparseVector {
        let (terms, weights) = self.iter().filter(|&(_, weight)| weight > 0.0).unzip();
        SparseVector { terms, weights }.normalized()
    }

    /// True when some weight is negative.
    pub fn has_negative_weights(&self) -> bool {
        self.weights.iter().any(|&weight| weight < 0.0)
    }
}

/// A sparse vector borrowed from wherever it is stored (a [`SparseVector`] or a row of a
/// [`crate::vector_table::VectorTable`]), with the same invariants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseRef<'a> {
    terms: &'a [TermId],
    weights: &'a [f32],
}

impl<'a> SparseRef<'a> {
    /// A view of `terms` and `weights`, which must satisfy [`SparseVector`]'s invariants (the vector
    /// table checks them when it reads a file).
    pub(crate) fn new(terms: &'a [TermId], weights: &'a [f32]) -> Self {
        debug_assert_eq!(terms.len(), weights.len());
        Self { terms, weights }
    }

    /// Number of non-zero entries.
    pub fn len(self) -> usize {
        self.terms.len()
    }

    /// True when no term has weight.
    pub fn is_empty(self) -> bool {
        self.terms.is_empty()
    }

    /// The term ids, increasing.
    pub fn terms(self) -> &'a [TermId] {
        self.terms
    }

    /// The weights, in term order.
    pub fn weights(self) -> &'a [f32] {
        self.weights
    }

    /// The (term, weight) entries in term order.
    pub fn iter(self) -> impl Iterator<Item = (TermId, f32)> + 'a {
        self.terms.iter().copied().zip(self.weights.iter().copied())
    }

    /// An owned copy.
    pub fn to_vector(self) -> SparseVector {
        SparseVector {
            terms: self.terms.to_vec(),
            weights: self.weights.to_vec(),
        }
    }

    /// Dot product; the cosine similarity for normalised vectors.
    pub fn dot(self, other: SparseRef<'_>) -> f32 {
        self.shared_products(other).map(|(_, product)| product).sum()
    }

    /// Dot product with the query loaded into `query`; equal to [`SparseRef::dot`] with that query, bit for
    /// bit: the shared terms are summed in the same term order. For re-ranking many candidates against one
    /// query. Each chunk of entries is first sifted through the query's bitmap without a branch, noting the
    /// positions of shared terms, and only those are summed: a stored vector shares few of its terms with
    /// the query, so neither a mispredicted branch per entry nor a chain of additions of zeros is paid.
    pub fn dot_with(self, query: &QueryWeights) -> f32 {
        let mut sum = 0.0;
        let mut shared = [0u8; DOT_CHUNK];
        for (terms, weights) in self.terms.chunks(DOT_CHUNK).zip(self.weights.chunks(DOT_CHUNK)) {
            let mut count = 0;
            for (position, &term) in terms.iter().enumerate() {
                shared[count] = position as u8;
                count += usize::from(query.contains(term));
            }
            for &position in &shared[..count] {
                let position = usize::from(position);
                sum += weights[position] * query.weights[terms[position] as usize];
            }
        }
        sum
    }

    /// The `n` shared terms that contribute most to the dot product, largest contribution first.
    pub fn top_shared_terms(self, other: SparseRef<'_>, n: usize) -> Vec<TermId> {
        let mut shared: Vec<(TermId, f32)> = self.shared_products(other).collect();
        shared.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        shared.into_iter().take(n).map(|(term, _)| term).collect()
    }

    /// Terms present in both vectors with the product of their weights, by merging the two sorted lists.
    fn shared_products(self, other: SparseRef<'_>) -> impl Iterator<Item = (TermId, f32)> {
        let (mut i, mut j) = (0, 0);
        std::iter::from_fn(move || {
            while i < self.terms.len() && j < other.terms.len() {
                match self.terms[i].cmp(&other.terms[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        let shared = (self.terms[i], self.weights[i] * other.weights[j]);
                        i += 1;
                        j += 1;
                        return Some(shared);
                    }
                }
            }
            None
        })
    }
}

/// Entries [`SparseRef::dot_with`] sifts at a time (positions in a chunk fit a byte).
const DOT_CHUNK: usize = 64;

/// One query's weights, laid out for the dot products of that query with many stored vectors: a bitmap
/// of its terms (one bit per vocabulary term: 180 KB at 1.4 million terms, so it stays in the L2 cache)
/// in front of its weights by term id, which are read only for the terms the bitmap says are shared.
/// Reused across queries, so loading one allocates nothing once the arrays have grown.
#[derive(Debug, Default)]
pub struct QueryWeights {
    /// Bit `t % 64` of word `t / 64` is set when term `t` is in the query.
    present: Vec<u64>,
    /// The query's weight by term id; zero for terms not in it.
    weights: Vec<f32>,
    /// The terms loaded, to clear them again.
    loaded: Vec<TermId>,
}

impl QueryWeights {
    /// Replaces the loaded query with `query`.
    pub fn load(&mut self, query: &SparseVector) {
        for term in self.loaded.drain(..) {
            self.present[term as usize / 64] = 0;
            self.weights[term as usize] = 0.0;
        }
        let term_count = query.terms.last().map_or(0, |&term| term as usize + 1);
        if self.weights.len() < term_count {
            self.weights.resize(term_count, 0.0);
            self.present.resize(term_count.div_ceil(64), 0);
        }
        for (term, weight) in query.iter() {
            self.present[term as usize / 64] |= 1 << (term % 64);
            self.weights[term as usize] = weight;
            self.loaded.push(term);
        }
    }

    /// The weight of `term` in the loaded query, 0 when it is absent.
    pub fn weight(&self, term: TermId) -> f32 {
        if self.contains(term) {
            self.weights[term as usize]
        } else {
            0.0
        }
    }

    /// True when `term` is in the loaded query.
    fn contains(&self, term: TermId) -> bool {
        let word = self.present.get(term as usize / 64).copied().unwrap_or(0);
        word >> (term % 64) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array1;

    use super::*;

    fn dense(vector: &SparseVector, dimension: usize) -> Array1<f32> {
        let mut dense = Array1::zeros(dimension);
        for (term, weight) in vector.iter() {
            dense[term as usize] = weight;
        }
        dense
    }

    /// A small deterministic generator, so the comparison covers many shapes without a test dependency.
    fn pseudo_random_vector(seed: u64, dimension: u32) -> SparseVector {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let len = next() % 20;
        let pairs = (0..len)
            .map(|_| (next() % dimension, (next() % 1000) as f32 / 100.0))
            .collect();
        SparseVector::from_pairs(pairs)
    }

    #[test]
    fn a_contrast_leans_towards_the_liked_and_away_from_the_unliked() {
        let liked = [
            SparseVector::from_pairs(vec![(0, 1.0), (1, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0), (2, 1.0)]),
        ];
        let unliked = SparseVector::from_pairs(vec![(1, 1.0), (3, 1.0)]);
        let liked: Vec<SparseRef<'_>> = liked.iter().map(SparseVector::view).collect();
        let query = SparseVector::contrast(&liked, &[unliked.view()]);
        let weight = |vector: &SparseVector, wanted| vector.iter().find(|&(term, _)| term == wanted).map(|(_, w)| w);
        // Term 3 is only the unliked one's: negative. Term 1, liked once and unliked once, loses to term 2.
        assert!(
            weight(&query, 3).unwrap() < 0.0 && query.has_negative_weights(),
            "{query:?}"
        );
        assert!(weight(&query, 0) > weight(&query, 2) && weight(&query, 1).is_none());
        assert!((query.dot(&query) - 1.0).abs() < 1e-6);
        // What the postings can search for: without term 3, unit length again.
        let searchable = query.without_negative_weights();
        assert_eq!(searchable.iter().map(|(term, _)| term).collect::<Vec<_>>(), vec![0, 2]);
        assert!((searchable.dot(&searchable) - 1.0).abs() < 1e-6 && !searchable.has_negative_weights());
        // One liked vector and nothing unliked: the vector itself.
        let alone = SparseVector::contrast(&liked[..1], &[]);
        assert!((alone.view().dot(liked[0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sparse_dot_matches_dense_dot() {
        const DIMENSION: u32 = 50;
        for seed in 0..500 {
            let a = pseudo_random_vector(seed, DIMENSION);
            let b = pseudo_random_vector(seed + 10_000, DIMENSION);
            let expected = dense(&a, DIMENSION as usize).dot(&dense(&b, DIMENSION as usize));
            assert!(
                (a.dot(&b) - expected).abs() < 1e-5,
                "seed {seed}: {} vs {expected}",
                a.dot(&b)
            );
        }
    }

    #[test]
    fn the_dot_with_loaded_query_weights_equals_the_dot_exactly() {
        let mut weights = QueryWeights::default();
        for seed in 0..500 {
            let a = pseudo_random_vector(seed, 60);
            let b = pseudo_random_vector(seed + 10_000, 50);
            weights.load(&b);
            assert_eq!(a.view().dot_with(&weights), b.dot(&a), "seed {seed}");
            assert_eq!(weights.weight(1_000), 0.0);
        }
        let long = SparseVector::from_pairs((0..300).map(|term| (term * 7919, 1.0)).collect());
        weights.load(&long);
        assert!(long.iter().all(|(term, weight)| weights.weight(term) == weight));
        let spanning_chunks = SparseVector::from_pairs(
            (0..500)
                .map(|term| (term * 7919 / 3, 1.0 + (term % 7) as f32))
                .collect(),
        );
        assert_eq!(spanning_chunks.view().dot_with(&weights), long.dot(&spanning_chunks));
    }

    #[test]
    fn from_pairs_sorts_merges_and_normalises() {
        let v = SparseVector::from_pairs(vec![(5, 1.0), (2, 3.0), (5, 3.0), (9, 0.0)]);
        assert_eq!(v.iter().map(|(t, _)| t).collect::<Vec<_>>(), vec![2, 5]);
        assert!((v.dot(&v) - 1.0).abs() < 1e-6);
        assert!(SparseVector::from_pairs(vec![]).is_empty());
    }

    #[test]
    fn top_shared_terms_orders_by_contribution() {
        let a = SparseVector::from_pairs(vec![(1, 1.0), (2, 5.0), (3, 2.0)]);
        let b = SparseVector::from_pairs(vec![(1, 1.0), (2, 1.0), (3, 4.0), (4, 9.0)]);
        assert_eq!(a.view().top_shared_terms(b.view(), 2), vec![3, 2]);
        assert!(a.view().top_shared_terms(SparseVector::default().view(), 3).is_empty());
    }
}
