//! How does a fit count the terms of a whole corpus quickly? Only tokenising is done per token.
//! Everything after it (stop words, compound splitting, stemming) depends on nothing but the token,
//! its completion and the language ([`Analyzer::analyze_token`]), so each distinct token is analysed
//! once and its terms are reused wherever it occurs. In a news archive a token recurs hundreds of
//! times on average, so this removes almost all of the analysis work, and the counts are kept as
//! integer ids in flat arrays instead of a map of strings per article.
//!
//! The fit runs in three passes, each on all cores:
//! 1. [`TokenCounts::gather`]: tokenise every article once; per article, each distinct token with its
//!    count in the title and in the body. Articles are cut into chunks, each with its own token table,
//!    merged into one table afterwards.
//! 2. [`TokenCounts::lexicon`] counts the German tokens for the compound splitter, then
//!    [`TermTable::analyze`] analyses each distinct token once.
//! 3. [`TermTable::article_terms`] turns an article's token counts into term counts (a title
//!    occurrence counts `title_weight`), for the document frequencies and then for the vectors.
//!
//! The token counts are what a snapshot keeps for rebuilds: a rebuild runs passes 2 and 3 again over the
//! live articles' counts, so it learns what `weitere index` over the same articles would (lexicon
//! included) without tokenising any text. A live upsert is analysed the same way, token by token
//! ([`ArticleTokens`]).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, Lang, Lexicon, Term, for_each_token};
use crate::article::Article;
use crate::error::{Error, Result};
use crate::sparse::SparseRef;
use crate::string_table::{PositionIndex, StringTable};
use crate::vector_table::VectorTable;

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

/// Every article's distinct tokens with their counts, the title's and the body's apart: all a fit learns
/// from once the text is tokenised. A snapshot keeps them (`{generation}.tokens.bin` and
/// `{generation}.counts.bin`), so that a rebuild learns lexicon, vocabulary and idf again from the live
/// articles' counts without reading their text ([`TokenCountsBuilder`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenCounts {
    /// Token keys (see [`TokenKey`]), by token id.
    keys: StringTable,
    /// How often each token occurs in the corpus, by token id.
    occurrences: Vec<u32>,
    /// The first articles' rows, left where a snapshot's counts file maps them.
    borrowed: BorrowedRows,
    /// The other articles' rows: row `2 * i` is the title tokens of the `i`-th article after the borrowed
    /// ones, with their counts, by token id; row `2 * i + 1` is its body's.
    rows: VectorTable,
}

/// Articles whose rows stay in another table (a snapshot's mapped counts, as a rebuild finds them), so
/// that a rebuild does not copy them: article `i` has rows `2 * articles[i]` and `2 * articles[i] + 1` of
/// `table`.
#[derive(Clone, Debug, Default, PartialEq)]
struct BorrowedRows {
    table: VectorTable,
    articles: Vec<u32>,
}

/// One chunk's share of [`TokenCounts`], with token ids of its own.
struct Chunk {
    /// The chunk's tokens, counting their occurrences.
    tokens: Interner,
    /// Rows as in [`TokenCounts::rows`]: row `r` is `entries[offsets[r]..offsets[r + 1]]`.
    offsets: Vec<usize>,
    entries: Vec<TokenCount>,
}

/// A token id with its count in one title or body.
type TokenCount = (u32, f32);

impl TokenCounts {
    /// Tokenises every article once. `progress` advances once per article.
    pub(super) fn gather(articles: &[Article], keep_numbers: bool, progress: &ProgressBar) -> Self {
        let chunk_len = MIN_CHUNK_ARTICLES.max(articles.len() / (8 * rayon::current_num_threads()));
        let chunks: Vec<Chunk> = articles
            .par_chunks(chunk_len)
            .map(|chunk| {
                let counted = Self::gather_chunk(chunk, keep_numbers);
                progress.inc(chunk.len() as u64);
                counted
            })
            .collect();
        Self::merge(chunks)
    }

    fn gather_chunk(articles: &[Article], keep_numbers: bool) -> Chunk {
        let mut chunk = Chunk {
            tokens: Interner::default(),
            offsets: vec![0],
            entries: Vec::new(),
        };
        let mut key = String::new();
        for article in articles {
            let lang = article.analysis_lang();
            for text in [&article.title, &article.body] {
                let start = chunk.entries.len();
                for_each_token_key(text, lang, keep_numbers, &mut key, |key| {
                    let id = chunk.tokens.add(key, 1);
                    chunk.entries.push((id, 1.0));
                });
                merge_equal_ids(&mut chunk.entries, start);
                chunk.offsets.push(chunk.entries.len());
            }
        }
        chunk
    }

    /// Joins the chunks' tables into one, renumbering their tokens.
    fn merge(chunks: Vec<Chunk>) -> Self {
        let mut tokens = Interner::default();
        let mut rows = VectorTable::default();
        let mut row = Vec::new();
        for chunk in chunks {
            let (keys, counts) = chunk.tokens.into_parts();
            let global_ids: Vec<u32> = keys
                .into_iter()
                .zip(counts)
                .map(|(key, count)| tokens.add(&key, count))
                .collect();
            for bounds in chunk.offsets.windows(2) {
                row.clear();
                row.extend(
                    chunk.entries[bounds[0]..bounds[1]]
                        .iter()
                        .map(|&(id, count)| (global_ids[id as usize], count)),
                );
                row.sort_unstable_by_key(|&(id, _)| id);
                rows.push_pairs(&row);
            }
        }
        let (keys, occurrences) = tokens.into_parts();
        Self {
            keys: keys.iter().collect(),
            occurrences,
            borrowed: BorrowedRows::default(),
            rows,
        }
    }

    /// Reassembles counts from their persisted parts: token keys and rows (see [`TokenCounts::rows`]).
    pub fn from_parts(keys: StringTable, rows: VectorTable) -> Result<Self> {
        Self::from_rows(keys, BorrowedRows::default(), rows)
    }

    /// Counts over `borrowed` and then `rows`, with the occurrences summed over both.
    fn from_rows(keys: StringTable, borrowed: BorrowedRows, rows: VectorTable) -> Result<Self> {
        if rows.len() % 2 != 0 {
            return Err(Error::Index(format!(
                "token counts: {} rows, not a title and a body per article",
                rows.len()
            )));
        }
        let mut counts = Self {
            occurrences: vec![0u32; keys.len()],
            keys,
            borrowed,
            rows,
        };
        let mut occurrences = std::mem::take(&mut counts.occurrences);
        for row in counts.all_rows() {
            for (token, count) in row.iter() {
                let Some(total) = occurrences.get_mut(token as usize) else {
                    return Err(Error::Index(format!(
                        "token counts: a row names token {token} of {}",
                        counts.keys.len()
                    )));
                };
                *total = total.saturating_add(count as u32);
            }
        }
        counts.occurrences = occurrences;
        Ok(counts)
    }

    /// The token keys, by token id.
    pub fn keys(&self) -> &StringTable {
        &self.keys
    }

    /// Writes two rows per article, its title's token counts and then its body's, by token id, as a table
    /// that [`TokenCounts::from_parts`] takes back; the borrowed rows are read where they lie.
    pub fn write_rows(&self, path: &Path) -> Result<()> {
        VectorTable::write_rows(path, || self.all_rows())
    }

    /// Every article's title row and body row, in article order.
    fn all_rows(&self) -> impl Iterator<Item = SparseRef<'_>> + '_ {
        (0..self.article_count()).flat_map(|article| self.article(article))
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
    pub fn article_count(&self) -> usize {
        self.borrowed.articles.len() + self.rows.len() / 2
    }

    /// Article `article`'s title and body tokens with their counts.
    fn article(&self, article: usize) -> [SparseRef<'_>; 2] {
        let (table, row) = match self.borrowed.articles.get(article) {
            Some(&borrowed) => (&self.borrowed.table, 2 * borrowed as usize),
            None => (&self.rows, 2 * (article - self.borrowed.articles.len())),
        };
        [table.get(row), table.get(row + 1)]
    }
}

/// Gathers the token counts of the live articles for a rebuild: a snapshot's articles as it counted them,
/// fresh ones from the [`ArticleTokens`] kept since their upsert. Token ids start as the snapshot's. The
/// snapshot's rows are not copied: the counts refer to them where the snapshot's file maps them.
pub struct TokenCountsBuilder {
    borrowed: BorrowedRows,
    keys: StringTable,
    positions: PositionIndex,
    rows: VectorTable,
    row: Vec<TokenCount>,
}

impl TokenCountsBuilder {
    /// A builder over `base`'s tokens, with no article yet; `base` holds all its rows itself, as a
    /// snapshot's counts do.
    pub fn new(base: &TokenCounts) -> Self {
        assert!(
            base.borrowed.articles.is_empty(),
            "a rebuild starts from counts that hold their rows"
        );
        let keys = base.keys.clone();
        let positions = PositionIndex::build(keys.len(), |position| keys.get(position));
        Self {
            borrowed: BorrowedRows {
                table: base.rows.clone(),
                articles: Vec::new(),
            },
            keys,
            positions,
            rows: VectorTable::default(),
            row: Vec::new(),
        }
    }

    /// Appends article `article` of the base, as it was counted. Base articles come before any other.
    pub fn push_base(&mut self, article: usize) {
        assert!(self.rows.is_empty(), "base articles are pushed first");
        self.borrowed.articles.push(article as u32);
    }

    /// Appends an article counted on its own.
    pub fn push_tokens(&mut self, tokens: &ArticleTokens) {
        for field in 0..2 {
            self.row.clear();
            for (key, counts) in tokens.iter() {
                if counts[field] == 0 {
                    continue;
                }
                let keys = &self.keys;
                let (id, is_new) = self
                    .positions
                    .find_or_insert(key, keys.len(), |position| keys.get(position));
                if is_new {
                    let pushed = self.keys.push(key);
                    debug_assert_eq!(pushed, id, "a new key goes where the index expects it");
                }
                self.row.push((id as u32, counts[field] as f32));
            }
            self.row.sort_unstable_by_key(|&(id, _)| id);
            self.rows.push_pairs(&self.row);
        }
    }

    /// The counts of every article pushed, in order.
    pub fn finish(self) -> TokenCounts {
        TokenCounts::from_rows(self.keys, self.borrowed, self.rows).expect("the builder keeps rows and keys together")
    }
}

/// One article's distinct tokens in order of first appearance, with how often each occurs in the title and
/// in the body: what a live upsert is analysed from, and kept for the next rebuild. The keys share one
/// string (a fresh article keeps hundreds of them until the next rebuild, and one allocation per key
/// cost more than the key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleTokens {
    /// Token keys (see [`TokenKey`]) one after another; key `i` ends at `ends[i]`.
    keys: String,
    ends: Vec<u32>,
    /// Per token, its counts in the title and in the body.
    counts: Vec<[u32; 2]>,
}

impl ArticleTokens {
    /// Tokenises `article`'s title and body, as [`TokenCounts::gather`] does.
    pub fn gather(article: &Article, keep_numbers: bool) -> Self {
        let lang = article.analysis_lang();
        // Positions of the keys in `tokens`, so that a repeated token costs no allocation.
        let mut positions = PositionIndex::default();
        let mut tokens = Self::default();
        let mut key = String::new();
        for (field, text) in [&article.title, &article.body].into_iter().enumerate() {
            for_each_token_key(text, lang, keep_numbers, &mut key, |key| {
                let next = tokens.counts.len();
                let (position, is_new) = positions.find_or_insert(key, next, |position| tokens.key(position));
                if is_new {
                    tokens.keys.push_str(key);
                    tokens.ends.push(tokens.keys.len() as u32);
                    tokens.counts.push([0, 0]);
                }
                tokens.counts[position][field] += 1;
            });
        }
        tokens.keys.shrink_to_fit();
        tokens.ends.shrink_to_fit();
        tokens.counts.shrink_to_fit();
        tokens
    }

    /// The key of the token at `position`.
    fn key(&self, position: usize) -> &str {
        let start = position.checked_sub(1).map_or(0, |before| self.ends[before] as usize);
        &self.keys[start..self.ends[position] as usize]
    }

    /// Each distinct token's key with its counts in the title and in the body, in order of first appearance.
    fn iter(&self) -> impl Iterator<Item = (&str, [u32; 2])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .zip(&self.counts)
            .map(|((start, &end), &counts)| (&self.keys[start as usize..end as usize], counts))
    }

    /// Each distinct token's key with its weighted count in the article (a title occurrence counts
    /// `title_weight`), in order of first appearance.
    pub(super) fn weighted(&self, title_weight: f32) -> impl Iterator<Item = (&str, f32)> {
        self.iter()
            .map(move |(key, [title, body])| (key, title as f32 * title_weight + body as f32))
    }
}

/// Pushes the terms ([`Analyzer::analyze_token`]) of the token whose key is `key` onto `out`.
pub(super) fn analyze_token_key(analyzer: &Analyzer, key: &str, out: &mut Vec<Term>) {
    let token = TokenKey::read(key);
    analyzer.analyze_token(token.surface, token.completion, token.lang, out);
}

/// Calls `each` with the key (see [`TokenKey`]) of every token of `text`, in order; `key` is scratch.
fn for_each_token_key(text: &str, lang: Lang, keep_numbers: bool, key: &mut String, mut each: impl FnMut(&str)) {
    for_each_token(text, lang, keep_numbers, |surface, completion| {
        TokenKey::write(lang, surface, completion, key);
        each(key);
    });
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
        let analyzed: Vec<Vec<Term>> = (0..counts.keys.len())
            .into_par_iter()
            .map(|token| {
                let mut terms = Vec::new();
                analyze_token_key(analyzer, counts.keys.get(token), &mut terms);
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
    pub(super) fn article_terms(
        &self,
        counts: &TokenCounts,
        article: usize,
        title_weight: f32,
        out: &mut Vec<(u32, f32)>,
    ) {
        out.clear();
        let [title, body] = counts.article(article);
        for (field, weight) in [(title, title_weight), (body, 1.0)] {
            for (token, count) in field.iter() {
                let token = token as usize;
                out.extend(
                    self.terms[self.offsets[token]..self.offsets[token + 1]]
                        .iter()
                        .map(|&term| (term, count * weight)),
                );
            }
        }
        merge_equal_ids(out, 0);
    }

    /// How many articles of `counts` contain each term, by term id.
    pub(super) fn document_frequencies(&self, counts: &TokenCounts) -> Vec<u32> {
        let df: Vec<AtomicU32> = (0..self.len()).map(|_| AtomicU32::new(0)).collect();
        (0..counts.article_count())
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, article| {
                self.article_terms(counts, article, 1.0, scratch);
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
        let counts = TokenCounts::gather(&articles, false, &ProgressBar::hidden());
        let mut expected = Lexicon::new();
        for article in &articles {
            expected.add_text(&article.title, article.analysis_lang());
            expected.add_text(&article.body, article.analysis_lang());
        }
        assert_eq!(counts.lexicon(1), expected.finish(1));
        assert_eq!(counts.lexicon(1).count("programm"), 4);
    }

    #[test]
    fn counts_rebuilt_from_their_parts_or_article_by_article_agree() {
        let articles = vec![
            article("1", "Zug fällt aus", "Der Zug fällt aus, der Bahnstreik geht weiter."),
            article("2", "Streik", "Ein Streik der Lokführer."),
            article("3", "Bahnstreik endet", "Der Bahnstreik endet, Züge fahren wieder."),
        ];
        let counts = TokenCounts::gather(&articles, false, &ProgressBar::hidden());
        assert_eq!(counts.article_count(), 3);
        assert_eq!(written_and_read(&counts), counts);

        let first_two = TokenCounts::gather(&articles[..2], false, &ProgressBar::hidden());
        let mut builder = TokenCountsBuilder::new(&first_two);
        builder.push_base(0);
        builder.push_tokens(&ArticleTokens::gather(&articles[2], false));
        let built = builder.finish();
        let expected = TokenCounts::gather(
            &[articles[0].clone(), articles[2].clone()],
            false,
            &ProgressBar::hidden(),
        );
        assert_eq!(built.article_count(), 2);
        assert_eq!(built.lexicon(1), expected.lexicon(1));
        let title_tokens = |counts: &TokenCounts, article: usize| -> Vec<(String, f32)> {
            let mut tokens: Vec<(String, f32)> = counts.article(article)[0]
                .iter()
                .map(|(token, count)| (counts.keys().get(token as usize).to_owned(), count))
                .collect();
            tokens.sort_by(|a, b| a.0.cmp(&b.0));
            tokens
        };
        assert_eq!(title_tokens(&built, 1), title_tokens(&expected, 1));
        // The base article's rows are borrowed, not copied, and written out like any other.
        assert_eq!(built.borrowed.articles, [0]);
        let again = written_and_read(&built);
        assert_eq!(again.article_count(), 2);
        for article in 0..2 {
            assert_eq!(again.article(article), built.article(article));
        }
        assert_eq!(again.occurrences, built.occurrences);
    }

    /// `counts` written with [`TokenCounts::write_rows`] and read back.
    fn written_and_read(counts: &TokenCounts) -> TokenCounts {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.bin");
        counts.write_rows(&path).unwrap();
        let (rows, _, _) = VectorTable::read(&path, 2 * counts.article_count()).unwrap();
        TokenCounts::from_parts(counts.keys().clone(), rows).unwrap()
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let counts = TokenCounts::gather(&[article("1", "Zug", "Bahn")], false, &ProgressBar::hidden());
        let keys: StringTable = ["dzug"].into_iter().collect();
        let err = TokenCounts::from_parts(keys, counts.rows.clone()).unwrap_err();
        assert!(err.to_string().contains("names token 1 of 1"), "{err}");
        let mut odd = counts.rows.clone();
        odd.push_pairs(&[]);
        let err = TokenCounts::from_parts(counts.keys().clone(), odd).unwrap_err();
        assert!(err.to_string().contains("3 rows"), "{err}");
    }

    #[test]
    fn equal_ids_are_merged_and_sorted() {
        let mut entries = vec![(9, 1.0), (3, 2.0), (9, 1.0), (1, 1.0), (3, 1.0)];
        merge_equal_ids(&mut entries, 1);
        assert_eq!(entries, vec![(9, 1.0), (1, 1.0), (3, 3.0), (9, 1.0)]);
    }
}
