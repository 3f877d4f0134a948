//! How does a fit count the terms of a whole corpus quickly? Only tokenising is done per token.
//! Everything after it (stop words, compound splitting, stemming) depends on nothing but the token,
//! its completion and the language ([`Analyzer::analyze_token`]), so each distinct token is analysed
//! once and its terms are reused wherever it occurs. In a news archive a token recurs hundreds of
//! times on average, so this removes almost all of the analysis work, and the counts are kept as
//! integer ids in flat arrays instead of a map of strings per article.
//!
//! The fit runs in three passes, each on all cores:
//! 1. [`TokenCounts::gather`]: tokenise every article once; per article, each distinct token with its
//!    weighted count (a title occurrence counts `title_weight`). Articles are cut into chunks, each
//!    with its own token table, merged into one table afterwards.
//! 2. [`TokenCounts::lexicon`] counts the German tokens for the compound splitter, then
//!    [`TermTable::analyze`] analyses each distinct token once.
//! 3. [`TermTable::article_terms`] turns an article's token counts into term counts, for the document
//!    frequencies and then for the vectors.

use std::sync::atomic::{AtomicU32, Ordering};

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::analysis::{Analyzer, Lang, Lexicon, Term, for_each_token};
use crate::article::Article;

/// Articles per chunk of [`TokenCounts::gather`] at least; larger corpora get about eight chunks per
/// thread, so that merging the chunks' token tables stays cheap.
const MIN_CHUNK_ARTICLES: usize = 2_048;

/// Separates a token from the word completing it in a token key.
const COMPLETION_SEPARATOR: char = '\0';

/// A distinct token of the corpus: language, the word as tokenised and, for a truncated compound,
/// the completing word. Kept as one string: a language tag, the word, then
/// [`COMPLETION_SEPARATOR`] and the completion if there is one.
#[derive(Debug)]
struct TokenKey<'a> {
    lang: Lang,
    surface: &'a str,
    completion: Option<&'a str>,
}

impl<'a> TokenKey<'a> {
    fn write(lang: Lang, surface: &str, completion: Option<&str>, out: &mut String) {
        out.clear();
        out.push(match lang {
            Lang::De => 'd',
            Lang::En => 'e',
            Lang::Other => 'o',
        });
        out.push_str(surface);
        if let Some(completion) = completion {
            out.push(COMPLETION_SEPARATOR);
            out.push_str(completion);
        }
    }

    fn read(key: &'a str) -> Self {
        let lang = match key.as_bytes()[0] {
            b'd' => Lang::De,
            b'e' => Lang::En,
            _ => Lang::Other,
        };
        let rest = &key[1..];
        let (surface, completion) = match rest.split_once(COMPLETION_SEPARATOR) {
            Some((surface, completion)) => (surface, Some(completion)),
            None => (rest, None),
        };
        Self {
            lang,
            surface,
            completion,
        }
    }
}

/// Interns strings to dense ids in order of first appearance, counting how often each was added.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    /// By id: the sum of the counts added with the key.
    counts: Vec<u32>,
}

impl Interner {
    /// The id of `key`, after adding `count` to its count.
    fn add(&mut self, key: &str, count: u32) -> u32 {
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => self.insert(key.into()),
        };
        self.count(id, count)
    }

    fn insert(&mut self, key: Box<str>) -> u32 {
        let id = self.counts.len() as u32;
        self.ids.insert(key, id);
        self.counts.push(0);
        id
    }

    fn count(&mut self, id: u32, count: u32) -> u32 {
        let total = &mut self.counts[id as usize];
        *total = total.saturating_add(count);
        id
    }

    /// The keys and their counts, by id.
    fn into_parts(self) -> (Vec<Box<str>>, Vec<u32>) {
        let mut keys: Vec<Box<str>> = vec![Box::from(""); self.ids.len()];
        for (key, id) in self.ids {
            keys[id as usize] = key;
        }
        (keys, self.counts)
    }
}

/// A token id with its weighted count in one article.
type TokenCount = (u32, f32);

/// Every article's distinct tokens with their weighted counts, in one flat array.
#[derive(Debug)]
pub(super) struct TokenCounts {
    /// Token keys (see [`TokenKey`]), by token id.
    keys: Vec<Box<str>>,
    /// How often each token occurs in the corpus (unweighted), by token id.
    occurrences: Vec<u32>,
    /// Article `i`'s tokens are `entries[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    entries: Vec<TokenCount>,
}

/// One chunk's share of [`TokenCounts`], with token ids of its own.
struct Chunk {
    /// The chunk's tokens, counting their occurrences.
    tokens: Interner,
    offsets: Vec<usize>,
    entries: Vec<TokenCount>,
}

impl TokenCounts {
    /// Tokenises every article once. `progress` advances once per article.
    pub(super) fn gather(articles: &[Article], title_weight: f32, keep_numbers: bool, progress: &ProgressBar) -> Self {
        let chunk_len = MIN_CHUNK_ARTICLES.max(articles.len() / (8 * rayon::current_num_threads()));
        let chunks: Vec<Chunk> = articles
            .par_chunks(chunk_len)
            .map(|chunk| {
                let counted = Self::gather_chunk(chunk, title_weight, keep_numbers);
                progress.inc(chunk.len() as u64);
                counted
            })
            .collect();
        Self::merge(chunks, articles.len())
    }

    fn gather_chunk(articles: &[Article], title_weight: f32, keep_numbers: bool) -> Chunk {
        let mut chunk = Chunk {
            tokens: Interner::default(),
            offsets: vec![0],
            entries: Vec::new(),
        };
        let mut key = String::new();
        for article in articles {
            let lang = article.analysis_lang();
            let start = chunk.entries.len();
            for (text, weight) in [(&article.title, title_weight), (&article.body, 1.0)] {
                for_each_token(text, lang, keep_numbers, |surface, completion| {
                    TokenKey::write(lang, surface, completion, &mut key);
                    let id = chunk.tokens.add(&key, 1);
                    chunk.entries.push((id, weight));
                });
            }
            merge_equal_ids(&mut chunk.entries, start);
            chunk.offsets.push(chunk.entries.len());
        }
        chunk
    }

    /// Joins the chunks' tables into one, renumbering their tokens.
    fn merge(chunks: Vec<Chunk>, article_count: usize) -> Self {
        let mut tokens = Interner::default();
        let mut offsets = Vec::with_capacity(article_count + 1);
        offsets.push(0);
        let mut entries = Vec::new();
        for chunk in chunks {
            let (keys, counts) = chunk.tokens.into_parts();
            let global_ids: Vec<u32> = keys
                .into_iter()
                .zip(counts)
                .map(|(key, count)| tokens.add(&key, count))
                .collect();
            let base = entries.len();
            entries.extend(chunk.entries.iter().map(|&(id, tf)| (global_ids[id as usize], tf)));
            offsets.extend(chunk.offsets[1..].iter().map(|offset| base + offset));
        }
        let (keys, occurrences) = tokens.into_parts();
        Self {
            keys,
            occurrences,
            offsets,
            entries,
        }
    }

    /// The corpus lexicon: how often each German word occurs, without the forms seen fewer than
    /// `min_count` times.
    pub(super) fn lexicon(&self, min_count: u32) -> Lexicon {
        let mut lexicon = Lexicon::new();
        for (key, &count) in self.keys.iter().zip(&self.occurrences) {
            let token = TokenKey::read(key);
            if token.lang == Lang::De {
                lexicon.add_token(token.surface, count);
            }
        }
        lexicon.finish(min_count)
    }

    /// Number of articles.
    pub(super) fn article_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Article `article`'s distinct tokens with their weighted counts.
    fn article(&self, article: usize) -> &[TokenCount] {
        &self.entries[self.offsets[article]..self.offsets[article + 1]]
    }
}

/// Sums the counts of equal ids in `entries[start..]`, leaving one entry per id, sorted by id.
fn merge_equal_ids(entries: &mut Vec<(u32, f32)>, start: usize) {
    entries[start..].sort_unstable_by_key(|&(id, _)| id);
    let mut kept = start;
    for read in start..entries.len() {
        if kept > start && entries[kept - 1].0 == entries[read].0 {
            entries[kept - 1].1 += entries[read].1;
        } else {
            entries[kept] = entries[read];
            kept += 1;
        }
    }
    entries.truncate(kept);
}

/// The terms of every distinct token, as ids into the table of term keys.
#[derive(Debug)]
pub(super) struct TermTable {
    /// Term keys, by term id (in order of first appearance, not lexical).
    pub(super) keys: Vec<String>,
    /// Per term id, the ways it was written, with how often each occurred.
    pub(super) surfaces: Vec<Vec<(String, u64)>>,
    /// Token `t`'s terms are `terms[offsets[t]..offsets[t + 1]]`, with repeats, as analysis gives them.
    offsets: Vec<usize>,
    terms: Vec<u32>,
}

impl TermTable {
    /// Analyses each distinct token of `counts` once.
    pub(super) fn analyze(counts: &TokenCounts, analyzer: &Analyzer) -> Self {
        let analyzed: Vec<Vec<Term>> = counts
            .keys
            .par_iter()
            .map(|key| {
                let token = TokenKey::read(key);
                let mut terms = Vec::new();
                analyzer.analyze_token(token.surface, token.completion, token.lang, &mut terms);
                terms
            })
            .collect();
        let mut interner = Interner::default();
        let mut surfaces: Vec<Vec<(String, u64)>> = Vec::new();
        let mut offsets = Vec::with_capacity(analyzed.len() + 1);
        offsets.push(0);
        let mut terms = Vec::new();
        for (token_terms, &occurrences) in analyzed.into_iter().zip(&counts.occurrences) {
            for term in token_terms {
                let id = interner.add(&term.key, 0);
                if id as usize == surfaces.len() {
                    surfaces.push(Vec::new());
                }
                let votes = &mut surfaces[id as usize];
                match votes.iter_mut().find(|(surface, _)| *surface == term.surface) {
                    Some((_, count)) => *count += u64::from(occurrences),
                    None => votes.push((term.surface, u64::from(occurrences))),
                }
                terms.push(id);
            }
            offsets.push(terms.len());
        }
        Self {
            keys: interner.into_parts().0.into_iter().map(String::from).collect(),
            surfaces,
            offsets,
            terms,
        }
    }

    /// Number of distinct terms.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Writes article `article`'s terms with their weighted counts to `out`: one entry per term, sorted
    /// by term id.
    pub(super) fn article_terms(&self, counts: &TokenCounts, article: usize, out: &mut Vec<(u32, f32)>) {
        out.clear();
        for &(token, tf) in counts.article(article) {
            let token = token as usize;
            out.extend(
                self.terms[self.offsets[token]..self.offsets[token + 1]]
                    .iter()
                    .map(|&term| (term, tf)),
            );
        }
        merge_equal_ids(out, 0);
    }

    /// How many articles of `counts` contain each term, by term id.
    pub(super) fn document_frequencies(&self, counts: &TokenCounts) -> Vec<u32> {
        let df: Vec<AtomicU32> = (0..self.len()).map(|_| AtomicU32::new(0)).collect();
        (0..counts.article_count())
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, article| {
                self.article_terms(counts, article, scratch);
                for &(term, _) in scratch.iter() {
                    df[term as usize].fetch_add(1, Ordering::Relaxed);
                }
            });
        df.into_iter().map(AtomicU32::into_inner).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article as article;

    #[test]
    fn token_keys_round_trip() {
        let mut key = String::new();
        TokenKey::write(Lang::De, "Raketen", Some("Nuklearprogrammen"), &mut key);
        let token = TokenKey::read(&key);
        assert_eq!(
            (token.lang, token.surface, token.completion),
            (Lang::De, "Raketen", Some("Nuklearprogrammen"))
        );
        TokenKey::write(Lang::En, "election", None, &mut key);
        let token = TokenKey::read(&key);
        assert_eq!(
            (token.lang, token.surface, token.completion),
            (Lang::En, "election", None)
        );
    }

    #[test]
    fn the_lexicon_counts_what_the_analyser_would() {
        let mut english = article("3", "Programm", "Programm in English");
        english.lang = "en".into();
        let articles = vec![
            article(
                "1",
                "Das Programm",
                "Das PROGRAMM und 2024 Nato-Programme, Raketen- und Nuklearprogramme.",
            ),
            article("2", "Programm", "Atom Atom Programm"),
            english,
        ];
        let counts = TokenCounts::gather(&articles, 2.0, false, &ProgressBar::hidden());
        let mut expected = Lexicon::new();
        for article in &articles {
            expected.add_text(&article.title, article.analysis_lang());
            expected.add_text(&article.body, article.analysis_lang());
        }
        assert_eq!(counts.lexicon(1), expected.finish(1));
        assert_eq!(counts.lexicon(1).count("programm"), 4);
    }

    #[test]
    fn equal_ids_are_merged_and_sorted() {
        let mut entries = vec![(9, 1.0), (3, 2.0), (9, 1.0), (1, 1.0), (3, 1.0)];
        merge_equal_ids(&mut entries, 1);
        assert_eq!(entries, vec![(9, 1.0), (1, 1.0), (3, 3.0), (9, 1.0)]);
    }
}
