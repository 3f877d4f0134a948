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

/// Byte offset in the lower-cased German compound `word` where its head starts, from the best
/// two-part split whether or not it beats the whole word; `None` if no split has known parts.
pub(super) fn head_start(word: &str, lexicon: &Lexicon, min_part_len: usize) -> Option<usize> {
    let bounds = char_bounds(word);
    let min = min_part_len.max(1);
    if bounds.len() - 1 < 2 * min {
        return None;
    }
    best_two_parts(word, &bounds, lexicon, min).map(|(_, [_, head])| head.start)
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

/// The most frequent reading of the characters `start..end` of `word` as a modifier part: as
/// written, or without a linking element if at least `min` characters remain. Returns its count
/// and its byte range.
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
        // Linking elements are ASCII, so their byte length is their length in characters.
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
