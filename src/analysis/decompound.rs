//! Decompounding: let German compounds match their parts ("Atomprogramm" ~ "Programm").
//!
//! German writes compounds as one word, so without help "Atomprogramm", "Nuklearprogramm" and
//! "Programm" are unrelated terms. Three tools, all for German only:
//!
//! - [`split`]: frequency-based splitting after Koehn & Knight (2003), "Empirical Methods for
//!   Compound Splitting". A word is split into two or three parts of at least `min_part_len`
//!   characters, where a modifier part may end in a linking element (Fugenelement: "s", "es",
//!   "n", "en", "er", "e"; "Bundesregierung" → "Bund" + "Regierung"). A split scores the
//!   geometric mean of its parts' corpus counts ([`Lexicon`]); the word is split only if the
//!   best split beats the count of the word itself, so a frequent word ("Verantwortung") is not
//!   cut into rare pieces.
//! - [`head_start`]: the head of a compound, used to rebuild truncated compounds ("Raketen- und
//!   Nuklearprogrammen" → "Raketenprogrammen"), where the word is known to be a compound.
//! - [`ngrams`]: character n-grams of long words, a lexicon-free fallback that matches shared
//!   pieces of compounds fuzzily.

use std::ops::Range;

use super::Lexicon;

/// Linking elements that may end a modifier part, longest first.
const LINKING_ELEMENTS: &[&str] = &["es", "en", "er", "s", "n", "e"];

/// A two-part split: its score and the byte ranges of modifier and head.
type TwoParts = (f64, [Range<usize>; 2]);

/// A three-part split: its score and the byte ranges of the parts.
type ThreeParts = (f64, [Range<usize>; 3]);

/// Splits the lower-cased German `word` if its parts are more frequent in `lexicon` than the word
/// itself. Replaces the contents of `parts` with the byte ranges of the parts in `word` (linking
/// elements left out) and returns whether the word was split.
pub(super) fn split(word: &str, lexicon: &Lexicon, min_part_len: usize, parts: &mut Vec<Range<usize>>) -> bool {
    parts.clear();
    let Some(candidates) = Candidates::new(word, lexicon, min_part_len) else {
        return false;
    };
    let mut best = f64::from(lexicon.count(word));
    if let Some((score, found)) = candidates.best_two_parts() {
        if score > best {
            best = score;
            parts.extend(found);
        }
    }
    if let Some((score, found)) = candidates.best_three_parts() {
        if score > best {
            parts.clear();
            parts.extend(found);
        }
    }
    !parts.is_empty()
}

/// Byte offset in the lower-cased German compound `word` where its head starts, from the best
/// two-part split whether or not it beats the whole word; `None` if no split has known parts.
pub(super) fn head_start(word: &str, lexicon: &Lexicon, min_part_len: usize) -> Option<usize> {
    Candidates::new(word, lexicon, min_part_len)?
        .best_two_parts()
        .map(|(_, [_, head])| head.start)
}

/// The character n-grams of `word` (n = `n`) if it has more than `2 * n` characters.
pub(super) fn ngrams(word: &str, n: usize) -> impl Iterator<Item = &str> {
    let bounds = char_bounds(word);
    let chars = bounds.len() - 1;
    let count = if n > 0 && chars > 2 * n { chars - n + 1 } else { 0 };
    (0..count).map(move |start| &word[bounds[start]..bounds[start + n]])
}

/// Byte offsets of the characters of `word`, followed by its length.
fn char_bounds(word: &str) -> Vec<usize> {
    word.char_indices()
        .map(|(offset, _)| offset)
        .chain([word.len()])
        .collect()
}

/// The ways to cut one word into parts of at least `min` characters, with the count of every head
/// (`word[boundary..]`) looked up once. A split scores the geometric mean of its parts' counts, so a split
/// with an unknown part scores 0 and never wins (a winning score must exceed 0): each candidate is
/// dropped at its first unknown part, before its other parts are looked up. Most candidate heads of a
/// word are not words, so this skips most lookups; the splits found and their scores are unchanged.
struct Candidates<'a> {
    word: &'a str,
    lexicon: &'a Lexicon,
    min: usize,
    /// Byte offsets of the characters of `word`, followed by its length.
    bounds: Vec<usize>,
    /// `head_counts[boundary - min]` is the count of the head starting at character `boundary`, for
    /// `boundary` in `min..=chars - min`.
    head_counts: Vec<u32>,
    /// The last boundary whose head is known (0 if none is).
    last_known_head: usize,
}

impl<'a> Candidates<'a> {
    /// The candidates of `word`; `None` if it is too short for two parts of `min_part_len` characters.
    fn new(word: &'a str, lexicon: &'a Lexicon, min_part_len: usize) -> Option<Self> {
        let bounds = char_bounds(word);
        let min = min_part_len.max(1);
        let chars = bounds.len() - 1;
        if chars < 2 * min {
            return None;
        }
        let head_counts: Vec<u32> = (min..=chars - min)
            .map(|boundary| lexicon.count(&word[bounds[boundary]..]))
            .collect();
        let last_known_head = head_counts
            .iter()
            .rposition(|&count| count > 0)
            .map_or(0, |index| index + min);
        Some(Self {
            word,
            lexicon,
            min,
            bounds,
            head_counts,
            last_known_head,
        })
    }

    fn chars(&self) -> usize {
        self.bounds.len() - 1
    }

    fn head(&self, boundary: usize) -> (u32, Range<usize>) {
        (
            self.head_counts[boundary - self.min],
            self.bounds[boundary]..self.word.len(),
        )
    }

    /// The best split into a modifier and a head.
    fn best_two_parts(&self) -> Option<TwoParts> {
        let mut best: Option<TwoParts> = None;
        for boundary in self.min..=self.chars() - self.min {
            let (head_count, head) = self.head(boundary);
            if head_count == 0 {
                continue;
            }
            let (modifier_count, modifier) = self.modifier(0, boundary);
            let score = geometric_mean(&[modifier_count, head_count]);
            if score > best.as_ref().map_or(0.0, |(best, _)| *best) {
                best = Some((score, [modifier, head]));
            }
        }
        best
    }

    /// The best split into two modifiers and a head.
    fn best_three_parts(&self) -> Option<ThreeParts> {
        let (chars, min) = (self.chars(), self.min);
        let mut best: Option<ThreeParts> = None;
        for first_end in min..=chars - 2 * min {
            if first_end + min > self.last_known_head {
                break;
            }
            let (first_count, first) = self.modifier(0, first_end);
            if first_count == 0 {
                continue;
            }
            for second_end in first_end + min..=chars - min {
                let (head_count, head) = self.head(second_end);
                if head_count == 0 {
                    continue;
                }
                let (second_count, second) = self.modifier(first_end, second_end);
                if second_count == 0 {
                    continue;
                }
                let score = geometric_mean(&[first_count, second_count, head_count]);
                if score > best.as_ref().map_or(0.0, |(best, _)| *best) {
                    best = Some((score, [first.clone(), second, head]));
                }
            }
        }
        best
    }

    /// The most frequent reading of the characters `start..end` of the word as a modifier part: as
    /// written, or without a linking element if at least `min` characters remain. Returns its count
    /// and its byte range.
    fn modifier(&self, start: usize, end: usize) -> (u32, Range<usize>) {
        let range = self.bounds[start]..self.bounds[end];
        let piece = &self.word[range.clone()];
        let mut best = (self.lexicon.count(piece), range.clone());
        for link in LINKING_ELEMENTS {
            // Linking elements are ASCII, so their byte length is their length in characters.
            if end - start >= self.min + link.len() && piece.ends_with(link) {
                let without_link = range.start..range.end - link.len();
                let count = self.lexicon.count(&self.word[without_link.clone()]);
                if count > best.0 {
                    best = (count, without_link);
                }
            }
        }
        best
    }
}

fn geometric_mean(counts: &[u32]) -> f64 {
    let product: f64 = counts.iter().map(|&count| f64::from(count)).product();
    product.powf(1.0 / counts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon(words: &[(&str, u32)]) -> Lexicon {
        let mut lexicon = Lexicon::new();
        for &(word, count) in words {
            lexicon.add_word(word, count);
        }
        lexicon
    }

    fn news_lexicon() -> Lexicon {
        lexicon(&[
            ("atom", 40),
            ("programm", 120),
            ("programmen", 15),
            ("nuklear", 10),
            ("bund", 80),
            ("bundes", 5),
            ("regierung", 300),
            ("bundesregierung", 60),
            ("verfassung", 30),
            ("gericht", 90),
            ("verantwortung", 120),
            ("verant", 2),
            ("wortung", 1),
            ("rakete", 8),
            ("raketen", 25),
        ])
    }

    fn parts(word: &str, min_part_len: usize) -> Vec<&str> {
        let mut ranges = Vec::new();
        split(word, &news_lexicon(), min_part_len, &mut ranges);
        ranges.into_iter().map(|range| &word[range]).collect()
    }

    #[test]
    fn splits_into_known_parts() {
        assert_eq!(parts("atomprogramm", 4), ["atom", "programm"]);
        assert_eq!(parts("nuklearprogrammen", 4), ["nuklear", "programmen"]);
    }

    #[test]
    fn strips_linking_elements() {
        assert_eq!(parts("bundesregierung", 4), ["bund", "regierung"]);
        assert_eq!(parts("bundesverfassungsgericht", 4), ["bund", "verfassung", "gericht"]);
    }

    #[test]
    fn keeps_frequent_words_whole() {
        assert!(parts("verantwortung", 4).is_empty());
        assert!(parts("verantwortung", 3).is_empty());
    }

    #[test]
    fn keeps_unknown_and_short_words_whole() {
        assert!(parts("quatschwort", 4).is_empty());
        assert!(parts("atomatom", 5).is_empty());
        assert!(parts("", 4).is_empty());
    }

    #[test]
    fn respects_min_part_len() {
        assert_eq!(parts("atomprogramm", 4), ["atom", "programm"]);
        assert!(parts("atomprogramm", 5).is_empty());
    }

    #[test]
    fn finds_heads_of_compounds() {
        let lexicon = news_lexicon();
        let word = "nuklearprogrammen";
        let head = head_start(word, &lexicon, 4).map(|start| &word[start..]);
        assert_eq!(head, Some("programmen"));
        // The whole word being frequent does not matter here.
        let word = "bundesregierung";
        let head = head_start(word, &lexicon, 4).map(|start| &word[start..]);
        assert_eq!(head, Some("regierung"));
        assert_eq!(head_start("quatschwort", &lexicon, 4), None);
    }

    #[test]
    fn makes_ngrams_of_long_words_only() {
        assert_eq!(
            ngrams("atomprogramm", 5).collect::<Vec<_>>(),
            ["atomp", "tompr", "ompro", "mprog", "progr", "rogra", "ogram", "gramm"]
        );
        assert_eq!(ngrams("atomprogr", 5).count(), 0);
        assert_eq!(ngrams("größenwahn", 4).next(), Some("größ"));
        assert_eq!(ngrams("atomprogramm", 0).count(), 0);
    }

    /// The splitter as first written, trying every candidate in full: the reference the pruned
    /// [`Candidates`] must agree with.
    mod naive {
        use super::super::{LINKING_ELEMENTS, Range, ThreeParts, TwoParts, char_bounds, geometric_mean};
        use crate::analysis::Lexicon;

        pub(super) fn split(word: &str, lexicon: &Lexicon, min_part_len: usize, parts: &mut Vec<Range<usize>>) -> bool {
            parts.clear();
            let bounds = char_bounds(word);
            let min = min_part_len.max(1);
            if bounds.len() - 1 < 2 * min {
                return false;
            }
            let mut best = f64::from(lexicon.count(word));
            if let Some((score, found)) = best_two_parts(word, &bounds, lexicon, min) {
                if score > best {
                    best = score;
                    parts.extend(found);
                }
            }
            if let Some((score, found)) = best_three_parts(word, &bounds, lexicon, min) {
                if score > best {
                    parts.clear();
                    parts.extend(found);
                }
            }
            !parts.is_empty()
        }

        pub(super) fn head_start(word: &str, lexicon: &Lexicon, min_part_len: usize) -> Option<usize> {
            let bounds = char_bounds(word);
            let min = min_part_len.max(1);
            if bounds.len() - 1 < 2 * min {
                return None;
            }
            best_two_parts(word, &bounds, lexicon, min).map(|(_, [_, head])| head.start)
        }

        fn best_two_parts(word: &str, bounds: &[usize], lexicon: &Lexicon, min: usize) -> Option<TwoParts> {
            let chars = bounds.len() - 1;
            let mut best: Option<TwoParts> = None;
            for boundary in min..=chars - min {
                let (modifier_count, modifier) = modifier(word, bounds, 0, boundary, lexicon, min);
                let head = bounds[boundary]..word.len();
                let score = geometric_mean(&[modifier_count, lexicon.count(&word[head.clone()])]);
                if score > best.as_ref().map_or(0.0, |(best, _)| *best) {
                    best = Some((score, [modifier, head]));
                }
            }
            best
        }

        fn best_three_parts(word: &str, bounds: &[usize], lexicon: &Lexicon, min: usize) -> Option<ThreeParts> {
            let chars = bounds.len() - 1;
            let mut best: Option<ThreeParts> = None;
            for first_end in min..=chars - min {
                let (first_count, first) = modifier(word, bounds, 0, first_end, lexicon, min);
                if first_count == 0 {
                    continue;
                }
                for second_end in first_end + min..=chars - min {
                    let (second_count, second) = modifier(word, bounds, first_end, second_end, lexicon, min);
                    if second_count == 0 {
                        continue;
                    }
                    let head = bounds[second_end]..word.len();
                    let head_count = lexicon.count(&word[head.clone()]);
                    let score = geometric_mean(&[first_count, second_count, head_count]);
                    if score > best.as_ref().map_or(0.0, |(best, _)| *best) {
                        best = Some((score, [first.clone(), second, head]));
                    }
                }
            }
            best
        }

        fn modifier(
            word: &str,
            bounds: &[usize],
            start: usize,
            end: usize,
            lexicon: &Lexicon,
            min: usize,
        ) -> (u32, Range<usize>) {
            let range = bounds[start]..bounds[end];
            let piece = &word[range.clone()];
            let mut best = (lexicon.count(piece), range.clone());
            for link in LINKING_ELEMENTS {
                if end - start >= min + link.len() && piece.ends_with(link) {
                    let without_link = range.start..range.end - link.len();
                    let count = lexicon.count(&word[without_link.clone()]);
                    if count > best.0 {
                        best = (count, without_link);
                    }
                }
            }
            best
        }
    }

    /// Checks that the pruned splitter splits `word` and finds its head exactly as the naive one does.
    fn assert_agrees_with_naive(word: &str, lexicon: &Lexicon, min_part_len: usize) {
        let (mut pruned, mut reference) = (Vec::new(), Vec::new());
        assert_eq!(
            split(word, lexicon, min_part_len, &mut pruned),
            naive::split(word, lexicon, min_part_len, &mut reference),
            "{word:?}"
        );
        assert_eq!(pruned, reference, "{word:?}");
        assert_eq!(
            head_start(word, lexicon, min_part_len),
            naive::head_start(word, lexicon, min_part_len),
            "{word:?}"
        );
    }

    /// The pruned splitter agrees with the naive one on every German word of a corpus, against the
    /// corpus's own lexicon: the shipped sample, or the gzipped JSON Lines file that
    /// `WEITERE_DECOMPOUND_CORPUS` names (checked on gnad10k that way).
    #[test]
    fn agrees_with_the_naive_splitter_on_a_corpus() {
        let corpus = match std::env::var_os("WEITERE_DECOMPOUND_CORPUS") {
            Some(path) => crate::ingest::read_files(&[path.into()], Default::default()),
            None => crate::ingest::read_gzip_bytes(
                include_bytes!("../../data/gnad-sample.jsonl.gz"),
                "sample",
                Default::default(),
            ),
        }
        .unwrap();
        let mut lexicon = Lexicon::new();
        for article in &corpus.articles {
            for text in [&article.title, &article.body] {
                lexicon.add_text(text, article.analysis_lang());
            }
        }
        let lexicon = lexicon.finish(2);
        let mut words = std::collections::BTreeSet::new();
        for article in &corpus.articles {
            for text in [&article.title, &article.body] {
                crate::analysis::for_each_token(text, article.analysis_lang(), false, |word, completion| {
                    for word in std::iter::once(word).chain(completion) {
                        let mut lower = String::new();
                        crate::analysis::lowercase_into(word, &mut lower);
                        words.insert(lower);
                    }
                });
            }
        }
        let mut split_words = 0;
        for word in &words {
            for min_part_len in [3, 4] {
                assert_agrees_with_naive(word, &lexicon, min_part_len);
            }
            split_words += usize::from(split(word, &lexicon, 4, &mut Vec::new()));
        }
        eprintln!("{} words, {split_words} split", words.len());
        assert!(
            split_words * 20 > words.len(),
            "only {split_words} of {} words split",
            words.len()
        );
    }

    proptest::proptest! {
        #[test]
        fn random_words_split_as_the_naive_splitter_splits(
            word in "[aeinrs]{0,14}",
            pieces in proptest::collection::vec(("[aeinrs]{1,6}", 1u32..6), 0..40),
            min_part_len in 1usize..5,
        ) {
            let lexicon = lexicon(&pieces.iter().map(|(piece, count)| (piece.as_str(), *count)).collect::<Vec<_>>());
            assert_agrees_with_naive(&word, &lexicon, min_part_len);
        }
    }

    #[test]
    fn handles_multibyte_words() {
        let lexicon = lexicon(&[("größe", 10), ("wahn", 10), ("über", 5)]);
        let mut ranges = Vec::new();
        assert!(split("größenwahn", &lexicon, 4, &mut ranges));
        let word = "größenwahn";
        let found: Vec<&str> = ranges.iter().map(|range| &word[range.clone()]).collect();
        assert_eq!(found, ["größe", "wahn"]);
        assert!(!split("üüüüüüüüüüüü", &lexicon, 4, &mut ranges));
    }
}
