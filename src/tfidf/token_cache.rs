//! News repeats its words, so live upserts analyse the same tokens over and over. This bounded cache maps
//! a token's key to its terms, already resolved against the vocabulary, so a write stems and splits only
//! the tokens not seen lately. One cache per [`super::Vectorizer`]: the ids are its vocabulary's.

use std::convert::Infallible;
use std::sync::Arc;

use crate::analysis::Term;
use crate::sparse::TermId;

/// Distinct tokens the cache holds (at 100k articles, a full cache added about 30 MB to the serving memory).
const TOKEN_CACHE_CAPACITY: usize = 100_000;

/// A term of a token: the vocabulary's id, or the term itself when the vocabulary lacks it.
#[derive(Debug)]
pub(super) enum ResolvedTerm {
    Known(TermId),
    Unknown(Term),
}

/// Token key → the token's resolved terms, least recently useful entries evicted (S3-FIFO).
pub(super) struct TokenTermCache {
    cache: quick_cache::sync::Cache<String, Arc<[ResolvedTerm]>>,
}

impl Default for TokenTermCache {
    fn default() -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(TOKEN_CACHE_CAPACITY),
        }
    }
}

impl TokenTermCache {
    /// The terms of the token `key`, from the cache or from `resolve` (then kept).
    pub(super) fn terms(&self, key: &str, resolve: impl FnOnce() -> Vec<ResolvedTerm>) -> Arc<[ResolvedTerm]> {
        let Ok(terms) = self
            .cache
            .get_or_insert_with(key, || Ok::<_, Infallible>(resolve().into()));
        terms
    }
}
